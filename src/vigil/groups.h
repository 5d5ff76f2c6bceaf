/*
 * Failover groups (monitor.groups; docs/actions.md, "Failover groups"): a
 * named set of nodes with one primary. When the primary is dead (or has
 * left) and not held (maintenance, flapping), exactly one replica is
 * promoted: the alive one of highest priority, then of lowest rank_key
 * value (replication lag), then first in the list. Each promotion raises
 * the group's fencing epoch by one; the epoch goes to the promote and
 * demote commands (VIGIL_EPOCH), so that a storage layer can refuse writes
 * from an older one. vigil's record of the group (primary, epoch, what is
 * left to do) is written to the store before any command runs, so it never
 * names two primaries, and a monitor restarted in the middle finishes the
 * work. A replaced primary that comes back is demoted, and stays a
 * replica unless preempt is set. With no replica alive, the group says so
 * (an event, an error in the log, /v1/groups) and does nothing.
 *
 * The work is level triggered: groups_check looks at every group and does
 * what its record and the nodes' states call for, one command at a time
 * per group. Demotions go first, so that a planned switchover (vigil
 * failover) never has two primaries running.
 */
#ifndef VIGIL_GROUPS_H
#define VIGIL_GROUPS_H

#include <jansson.h>

#include "config.h"
#include "io/vio.h"

/* A command's tries, the first retry after GROUP_RETRY, doubling. */
#define GROUP_TRIES 3
#define GROUP_RETRY (2 * VIGIL_NSEC_PER_SEC)

struct groups_opts {
    struct vio_loop *loop;
    struct vio_procs *procs;
    struct vio_store *store; /* the group records (NULL: kept in memory only) */
    const struct vcfg_group *groups;
    size_t n_groups;
    int (*state_of)(void *arg, const char *node, enum vigil_state *out);
    int (*custom_of)(void *arg, const char *node, const char *key, char *buf, size_t cap);
    const char *(*held)(void *arg, const char *node); /* maintenance, flapping: NULL if not */
    bool (*may_act)(void *arg); /* false: another monitor leads (redundant monitors) */
    /* An event about node: text is kept by the callee (an event's reason). */
    void (*note)(void *arg, const char *node, const char *text);
    void (*log)(void *arg, const char *line);
    void *arg;
};

struct groups;

/*
 * The groups of o; prev (NULL: none) is groups_json() of the set replaced
 * on a reload: each record carries over to the group of the same name
 * (the higher epoch of it and the store's wins; a primary no longer a
 * member gives way to the first node, under a new epoch).
 */
int groups_new(const struct groups_opts *o, const json_t *prev, struct groups **out, char *err,
               size_t cap);
void groups_free(struct groups *g);
/* Does what each group's record and its nodes' states call for. */
void groups_check(struct groups *g);
/*
 * A planned switchover of group name to node `to` (NULL: the best
 * replica), through the same path as a failover. 0, or -1 with err.
 */
int groups_switchover(struct groups *g, const char *name, const char *to, char *err, size_t cap);
/* {"groups":[{name, primary, epoch, promoted, nodes:[{id, state, priority, rank, role}]}]} */
json_t *groups_json(struct groups *g);

#endif
