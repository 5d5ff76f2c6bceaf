#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actlog.h"
#include "evlog.h"

int actlog_init(struct actlog *l)
{
    memset(l, 0, sizeof(*l));
    l->ring = calloc(ACTLOG_CAP, sizeof(*l->ring));
    return l->ring ? 0 : -VIGIL_ENOMEM;
}

void actlog_free(struct actlog *l)
{
    free(l->ring);
    l->ring = NULL;
    for (size_t i = 0; i < l->n_reasons; i++)
        free(l->reasons[i]);
    free(l->reasons);
    l->reasons = NULL;
    l->n_reasons = 0;
}

const char *actlog_intern(struct actlog *l, const char *text)
{
    for (size_t i = 0; i < l->n_reasons; i++)
        if (!strcmp(l->reasons[i], text))
            return l->reasons[i];
    if (!l->reasons)
        l->reasons = calloc(ACTLOG_REASONS, sizeof(*l->reasons));
    if (!l->reasons || l->n_reasons == ACTLOG_REASONS)
        return "action";
    char *c = strdup(text);
    if (!c)
        return "action";
    l->reasons[l->n_reasons++] = c;
    return c;
}

void actlog_add_raw(struct actlog *l, int64_t wall_us, const char *action, enum vcfg_act_kind kind,
                    const char *node, uint64_t seq, bool undo, uint32_t attempt,
                    const char *outcome, const char *detail, const char *key)
{
    unsigned k = (unsigned)kind < VCFG_ACT_KINDS ? (unsigned)kind : 0;
    if (!strcmp(outcome, "started"))
        l->started[k]++;
    else if (!strcmp(outcome, "succeeded"))
        l->succeeded[k]++;
    else
        l->failed[k]++;
    if (!strcmp(outcome, "failed"))
        l->gave_up[k]++;
    if (!l->ring)
        return;
    struct actlog_rec *r = &l->ring[l->head];
    l->head = (l->head + 1) % ACTLOG_CAP;
    if (l->n < ACTLOG_CAP)
        l->n++;
    memset(r, 0, sizeof(*r));
    r->wall_us = wall_us;
    snprintf(r->action, sizeof(r->action), "%s", action);
    r->kind = kind;
    snprintf(r->node, sizeof(r->node), "%s", node);
    r->event_seq = seq;
    r->undo = undo;
    r->attempt = attempt;
    snprintf(r->outcome, sizeof(r->outcome), "%s", outcome);
    snprintf(r->detail, sizeof(r->detail), "%s", detail);
    snprintf(r->key, sizeof(r->key), "%s", key);
}

void actlog_add(struct actlog *l, const struct hook_outcome *o, int64_t wall_us)
{
    actlog_add_raw(l, wall_us, o->action, o->kind, evrec_node(o->rec), o->rec->ev.seq, o->undo,
                   o->attempt, o->outcome, o->detail, o->key);
    if (l->n > 0)
        l->ring[(l->head + ACTLOG_CAP - 1) % ACTLOG_CAP].took = o->took;
    if (l->n > 0)
        l->ring[(l->head + ACTLOG_CAP - 1) % ACTLOG_CAP].epoch = o->epoch;
}

const struct actlog_rec *actlog_at(const struct actlog *l, size_t i)
{
    if (!l->ring || i >= l->n)
        return NULL;
    return &l->ring[(l->head + ACTLOG_CAP - 1 - i) % ACTLOG_CAP];
}

json_t *actlog_rec_json(const struct actlog_rec *r)
{
    char when[64];
    vigil_format_wall(r->wall_us, when, sizeof(when));
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:i, s:s, s:s, s:s, s:f, s:I}", "time", when,
                     "action", r->action, "kind", vcfg_act_kind_name(r->kind), "node", r->node,
                     "event_seq", (json_int_t)r->event_seq, "op", r->undo ? "undo" : "do",
                     "attempt", (int)r->attempt, "outcome", r->outcome, "detail", r->detail, "key",
                     r->key, "took_s", (double)r->took / 1e9, "epoch", (json_int_t)r->epoch);
}
