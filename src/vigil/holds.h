/*
 * Nodes whose actions are held: in maintenance (an operator said so, for
 * a while or until told otherwise) or flapping (changing state too often).
 * The node is still watched, and its events still recorded; its actions
 * wait in its FIFO of the hook runner, coalescing, until the hold ends.
 * Then the runner goes on from where the actions left the node: a node
 * that went down and came back during the hold is not acted on at all.
 *
 * Flap damping works as route-flap damping does (RFC 2439): each change of
 * state into or out of dead adds a penalty, which decays by half every
 * half_life. Past `suppress` the node is flapping; it settles when the
 * penalty decays below `reuse`. Each hold's start and end is reported
 * (on_change), once.
 */
#ifndef VIGIL_HOLDS_H
#define VIGIL_HOLDS_H

#include "core/idtable.h"
#include "evlog.h"
#include "io/vio.h"

struct holds_opts {
    bool damping; /* flap damping on */
    vigil_time_t half_life;
    double penalty, suppress, reuse;
};

/* The defaults: a node flaps when it died and came back twice within a minute or so. */
#define HOLDS_HALF_LIFE_DEFAULT (60 * VIGIL_NSEC_PER_SEC)
#define HOLDS_PENALTY_DEFAULT   1000.0
#define HOLDS_SUPPRESS_DEFAULT  3000.0
#define HOLDS_REUSE_DEFAULT     750.0

/* A hold began or ended: what is "flapping", "settled", "maintenance on", "maintenance off". */
typedef void (*holds_change_fn)(void *arg, const char *node, const char *what);

struct hold_rec {
    char node[VIGIL_ID_MAX + 1];
    double penalty;
    vigil_time_t at; /* when penalty was last brought up to date */
    bool flapping;
    vigil_time_t maint_until; /* 0: not in maintenance; VIGIL_TIME_NEVER: until told */
    int64_t maint_id;         /* its entry in the store's outbox (0: none), for its owner */
};

struct holds {
    struct vio_loop *loop;
    struct holds_opts o;
    holds_change_fn change;
    void *arg;
    struct vigil__idtable ids;
    struct hold_rec *recs;
    uint32_t n, cap;
    struct vio_timer timer; /* the next end of a hold */
};

int holds_init(struct holds *h, struct vio_loop *loop, const struct holds_opts *o,
               holds_change_fn change, void *arg);
void holds_destroy(struct holds *h);
void holds_set_opts(struct holds *h, const struct holds_opts *o);
/* A node's change of state, before it goes to the runner. */
void holds_note(struct holds *h, const struct evrec *r);
/* Why node's actions are held ("maintenance", "flapping"), or NULL. */
const char *holds_reason(const struct holds *h, const char *node);
/*
 * Maintenance for node until `until` (monotonic; VIGIL_TIME_NEVER: until
 * told), or off (until 0). 0, or -VIGIL_ENOMEM.
 */
int holds_maint(struct holds *h, const char *node, vigil_time_t until);
/* node's record, or NULL. */
struct hold_rec *holds_find(struct holds *h, const char *node);
/* The penalty now (decayed), 0 for a node without a record. */
double holds_penalty(const struct holds *h, const char *node);

#endif
