/*
 * The record of actions: every attempt and outcome of every action, the
 * last ones kept for GET /v1/actions and `vigil actions`, all of them
 * counted for /metrics. The log has the same lines (the hook runner's).
 */
#ifndef VIGIL_ACTLOG_H
#define VIGIL_ACTLOG_H

#include <jansson.h>

#include "hooks.h"

/* Outcomes kept: the recent past of a busy cluster, a few hundred KB. */
#define ACTLOG_CAP 1000

struct actlog_rec {
    int64_t wall_us;
    char action[VCFG_ACTION_NAME_MAX + 24];
    enum vcfg_act_kind kind;
    char node[VIGIL_ID_MAX + 1];
    uint64_t event_seq;
    bool undo;
    uint32_t attempt;
    char outcome[12]; /* started, succeeded, retrying, failed */
    char detail[160];
    char key[HOOK_KEY_MAX];
    vigil_time_t took;
    int64_t epoch;
};

struct actlog {
    /* The reasons of action events (evlog keeps pointers): kept until actlog_free. */
    char **reasons;
    size_t n_reasons;
    struct actlog_rec *ring;
    size_t head, n;
    uint64_t seq;
    /* Counted per kind: attempts started, succeeded, failed (retrying or not), given up. */
    uint64_t started[VCFG_ACT_KINDS], succeeded[VCFG_ACT_KINDS], failed[VCFG_ACT_KINDS],
        gave_up[VCFG_ACT_KINDS];
};

int actlog_init(struct actlog *l);
void actlog_free(struct actlog *l);
void actlog_add(struct actlog *l, const struct hook_outcome *o, int64_t wall_us);
/* The same for an attempt with no runner behind it (a background delivery). */
void actlog_add_raw(struct actlog *l, int64_t wall_us, const char *action, enum vcfg_act_kind kind,
                    const char *node, uint64_t seq, bool undo, uint32_t attempt,
                    const char *outcome, const char *detail, const char *key);
/* The i-th newest record (0: the newest), or NULL. */
/*
 * text, kept for as long as l (at most ACTLOG_REASONS distinct texts, then
 * "action"): the reason of an action event.
 */
#define ACTLOG_REASONS 1024
const char *actlog_intern(struct actlog *l, const char *text);
const struct actlog_rec *actlog_at(const struct actlog *l, size_t i);
json_t *actlog_rec_json(const struct actlog_rec *r);

#endif
