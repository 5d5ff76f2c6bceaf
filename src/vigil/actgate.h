/*
 * The action gate of redundant monitors: with monitor.etcd set, every
 * monitor detects, but only the leader acts, and each action is claimed in
 * etcd first under the leader's fencing epoch.
 *
 * It sits in front of the hook runner (hook_runner_set_gate). Before the
 * hooks of a node's event start, the gate answers:
 *
 *   - a pause event (this monitor's own stall), a change of leader, or an
 *     event of the local node (etcd as this monitor reaches it): go, on
 *     every monitor, unclaimed;
 *   - not the leader: wait. The node's events are held in its FIFO
 *     (coalescing at the bounds, so the latest state is always kept) and
 *     asked about again when this monitor becomes leader;
 *   - the event is no longer the node's state (a later event superseded
 *     it while it waited): skip it; the later one is asked about next;
 *   - else claim it: read the node's claim, PREFIX/actions/NODE, a JSON
 *     object {"state","epoch","by","event","done"}. If its state is the
 *     event's new state and done is true, some leader has acted on it
 *     already: skip. Otherwise write the claim ({"done": false}) in a
 *     transaction that compares the leader key's create_revision with our
 *     epoch and its value with our id (leader_fence_check), and the
 *     claim's mod_revision with the one read: etcd refuses it once another
 *     leader exists, whatever this monitor believes. Accepted: go, and the
 *     hooks get the epoch in VIGIL_EPOCH. Refused by the fence: wait.
 *
 * When the hooks of a claimed event have all finished, the claim is
 * written again with done true, under the same fence. A leader that dies
 * between the two writes leaves a claim with done false, and its successor
 * runs the event's hooks again: an action interrupted by a leader's death
 * runs at least once more, never zero times, so hooks must be idempotent
 * (every hook must be anyway: a failed run is retried). A retry of a failed
 * hook runs only while the epoch it was claimed under still leads.
 *
 * The gate makes no system call: requests go through a vio_http client on
 * the loop, to the endpoint the leader's candidate uses (leader.h).
 */
#ifndef VIGIL_ACTGATE_H
#define VIGIL_ACTGATE_H

#include "hooks.h"
#include "leader.h"

/* Claims in flight at once; more wait in line (a whole rack failing is one burst). */
#define ACTGATE_MAX_IN_FLIGHT 32
/* A claim that got no answer is tried again this much later. */
#define ACTGATE_RETRY VIGIL_NSEC_PER_SEC
/*
 * Tries of the write that marks a claim done, while its epoch leads: an
 * unfinished claim is harmless (the next leader acts on it again, at least
 * once), so the write is not tried for ever.
 */
#define ACTGATE_DONE_TRIES 10

struct actgate_opts {
    struct vio_loop *loop;
    struct vio_http *http; /* taken over (actgate_free closes it), even on error */
    struct leader *leader; /* whose view, epoch and endpoint the gate follows */
    struct hook_runner *hooks;
    const char *prefix; /* claims live under PREFIX/actions/ */
    /*
     * A node each monitor sees for itself (the "etcd" node: etcd as this
     * monitor reaches it), or NULL: its events go to the hooks on every
     * monitor, unclaimed, like the monitor's own events.
     */
    const char *local_node;
    /* The node's state now, as the core sees it; -1 if it is not known. */
    int (*state_of)(void *arg, const char *node, enum vigil_state *out);
    void (*log)(void *arg, const char *line); /* may be NULL */
    void *arg;
};

struct actgate_stats {
    uint64_t claimed;    /* claims etcd accepted: events whose hooks went */
    uint64_t acted;      /* claims marked done */
    uint64_t done_skip;  /* events skipped: acted on already (by this or an earlier leader) */
    uint64_t superseded; /* events skipped: no longer the node's state */
    uint64_t fenced;     /* claims etcd refused: another leader exists */
    uint64_t rerun;      /* claims taken over from a leader that did not finish */
    uint64_t unfinished; /* unfinished claims a takeover's scan found, acted on again */
    uint64_t failures;   /* requests that got no usable answer */
};

struct actgate;

/* Makes the gate and sets it on o->hooks. 0 or -VIGIL_ENOMEM. */
int actgate_new(const struct actgate_opts *o, struct actgate **out);
/* Removes the gate from the runner (call before freeing the runner) and frees it. */
void actgate_free(struct actgate *g);
/* Tell the gate the leader's view changed: on becoming leader, held events are asked about again.
 */
void actgate_view_changed(struct actgate *g, const struct leader_view *v);
const struct actgate_stats *actgate_stats(const struct actgate *g);

#endif
