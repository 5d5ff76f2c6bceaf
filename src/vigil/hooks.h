/*
 * Hook commands run on events. Each hook is a program with arguments (no
 * shell); it gets the event in environment variables (VIGIL_*) and as one
 * JSON object on its standard input. Hooks run asynchronously: submitting
 * never waits for a child. The hooks of one event start together, each
 * with its own timeout and retries, so a hook that hangs does not delay
 * the others. Per node, events are delivered in order: the hooks of a
 * node's next event start only when all those of its previous event have
 * finished. A hook that outlives its timeout gets SIGTERM, and SIGKILL two
 * seconds later. A failed run is retried (retries, retry_delay doubling)
 * before the node's next event goes on. At most 64 hooks run at once; the
 * rest wait in line.
 *
 * Bounded. Events waiting for a node's hooks are at most `per_node` (16)
 * per node and `total` (65,536) in all; at a bound the oldest waiting
 * events are coalesced so that the latest state wins (the rule is in
 * hooks.c's header). Every coalesced event is counted and logged.
 *
 * The runner lives on a loop and starts children through a vio_procs
 * (src/io/vio.h): its timeouts and retries are timers on the loop, and the
 * end of a hook arrives through the loop, so the runner needs nothing but
 * the loop to be turning. It makes no system call itself.
 */
#ifndef VIGIL_HOOKS_H
#define VIGIL_HOOKS_H

#include "config.h"
#include "evlog.h"
#include "io/vio.h"

/* A hook's timeout when none is set: time for a notification over a slow network. */
#define HOOK_TIMEOUT_DEFAULT (10 * VIGIL_NSEC_PER_SEC)
/*
 * A failed hook runs twice more, 1 s and then 2 s later: enough for a
 * transient failure (a load balancer restarting), short enough that the
 * node's next events are not held back for long.
 */
#define HOOK_RETRIES_DEFAULT     2
#define HOOK_RETRY_DELAY_DEFAULT VIGIL_NSEC_PER_SEC
/*
 * The built-in kinds (haproxy, webhook, alertmanager) try harder: what
 * they drive is often briefly away (HAProxy reloading, a receiver
 * restarting), and a missed call matters more than a late one. Five
 * retries from 1 s, doubling, capped at 30 s: about a minute in all.
 */
#define ACT_RETRIES_DEFAULT   5
#define ACT_RETRY_MAX_DEFAULT (30 * VIGIL_NSEC_PER_SEC)
/*
 * restart: CrashLoopBackOff's numbers. A restart waits 10 s, doubling, up
 * to 5 min; after five failed restarts (the node not alive within
 * restart_wait, 60 s, of its command) the action escalates; ten minutes up
 * and a node starts again from no backoff.
 */
#define ACT_RESTART_RETRIES     4
#define ACT_RESTART_BACKOFF     (10 * VIGIL_NSEC_PER_SEC)
#define ACT_RESTART_BACKOFF_MAX (300 * VIGIL_NSEC_PER_SEC)
#define ACT_RESTART_WAIT        (60 * VIGIL_NSEC_PER_SEC)
#define ACT_RESTART_RESET       (600 * VIGIL_NSEC_PER_SEC)
/* HAProxy answers its runtime API at once: 5 s is a stuck socket. */
#define ACT_HAPROXY_TIMEOUT (5 * VIGIL_NSEC_PER_SEC)
/* Most retries: ten doublings of the delay already wait over a thousand times the first. */
#define HOOK_RETRIES_MAX 10

/*
 * Events that may wait for one node's hooks (besides the one being
 * handled). A node's hooks seldom fall behind by more than a couple of
 * events; 16 keeps every transition of a node that flaps a few times
 * while its hook is slow, and bounds one that flaps forever (or a hook
 * that hangs) to 16 events, about 4 KB.
 */
#define HOOK_QUEUE_DEFAULT 16
#define HOOK_QUEUE_MAX     65536
/*
 * Events that may wait in all. 65,536 (about 16 MB) is one for every node
 * of a default-sized node table (max_nodes), so that a whole cluster
 * changing state at once (a rack losing power, a network partition) is
 * queued without coalescing anything, and 4,096 nodes can each hold a
 * full queue. A node always keeps its latest state, so with more nodes
 * than this waiting at once, the total is at most one per node.
 */
#define HOOK_QUEUE_TOTAL_DEFAULT 65536
#define HOOK_QUEUE_TOTAL_MAX     (1u << 24)

struct hook_runner;

struct hook_stats {
    uint64_t started, succeeded, failed, timed_out, spawn_errors, queued;
    uint64_t retried; /* runs started again after a failure */
    uint64_t gave_up; /* runs that failed on their last retry */
    /*
     * Events no hook will see as such: merged into a later event of their
     * node, or dropped with the later event that undid them, at a queue
     * bound (hooks.c). Events, not runs.
     */
    uint64_t coalesced;
};

/* Called with a line for the log (e.g. "hook /x/notify.sh for event 12 (web3): exit 0 in 13ms").
 */
typedef void (*hook_log_fn)(void *arg, const char *line);

/*
 * A runner for n hooks (copied), on loop, starting children through procs.
 * loop and procs must outlive the runner; log may be NULL.
 */
int hook_runner_new(struct vio_loop *loop, struct vio_procs *procs, const struct vcfg_hook *hooks,
                    size_t n, hook_log_fn log, void *log_arg, struct hook_runner **out);
/*
 * Sends SIGTERM to running hooks, waits up to 2 s (procs->wait_all, which
 * blocks), then SIGKILL; frees. Hooks not started are dropped (logged).
 */
void hook_runner_free(struct hook_runner *r);

/*
 * Queues the hooks that want this event; starts them now (the loop's time)
 * if the node has none running and a slot is free.
 */
int hook_runner_submit(struct hook_runner *r, const struct evrec *ev);

/*
 * Sets the bounds on waiting events: per node and in all (both >= 1; the
 * defaults are HOOK_QUEUE_DEFAULT and HOOK_QUEUE_TOTAL_DEFAULT). They
 * apply to events submitted from then on. Returns 0 or -VIGIL_EINVAL.
 */
int hook_runner_set_limits(struct hook_runner *r, uint32_t per_node, uint32_t total);

/*
 * A gate in front of the hooks: with redundant monitors (monitor.etcd),
 * only the leader acts, and each event's actions are claimed in etcd
 * first (actgate.h). Without a gate every event goes.
 */
enum hook_verdict {
    HOOK_GO,   /* start the event's hooks now */
    HOOK_SKIP, /* drop the event: done already, or superseded */
    HOOK_WAIT, /* hold the node's events until hook_runner_gate_answer or _reask */
};

struct hook_gate {
    /*
     * Asked before the hooks of a node's event start (the head of its
     * FIFO: a node's later events wait behind it, coalescing at the
     * bounds). With HOOK_GO, *epoch is the fencing epoch the hooks get in
     * VIGIL_EPOCH (0: none). HOOK_WAIT: the answer comes later through
     * hook_runner_gate_answer with this ticket.
     */
    enum hook_verdict (*ask)(void *arg, const struct evrec *ev, uint64_t ticket, int64_t *epoch);
    /* Before a failed hook is run again: false abandons the retry (it counts as given up). */
    bool (*may_retry)(void *arg, const struct evrec *ev, int64_t epoch);
    /* Every hook of an event that went has finished; ok: each of them succeeded. */
    void (*done)(void *arg, const struct evrec *ev, int64_t epoch, bool ok);
    void *arg;
};

/* Sets the gate (copied; NULL: none). Events already going are not asked again. */
void hook_runner_set_gate(struct hook_runner *r, const struct hook_gate *g);
/*
 * The answer to an ask that returned HOOK_WAIT (v is HOOK_GO, HOOK_SKIP,
 * or HOOK_WAIT to stay held until the next _reask). An answer whose
 * ticket is not the node's latest question is ignored.
 */
void hook_runner_gate_answer(struct hook_runner *r, const char *node, uint64_t ticket,
                             enum hook_verdict v, int64_t epoch);
/* Asks the gate again about every event held (e.g. this monitor just became leader). */
void hook_runner_gate_reask(struct hook_runner *r);
/* Events held at the gate (FIFO heads waiting for an answer). */
size_t hook_runner_held(const struct hook_runner *r);

/* What an action does for an event. */
enum { HOOK_OP_NONE = 0, HOOK_OP_DO = 1, HOOK_OP_UNDO = 2 };

/* An idempotency key's longest: node, generation, sequence, action name, ":undo". */
#define HOOK_KEY_MAX (VIGIL_ID_MAX + 2 * 21 + VCFG_ACTION_NAME_MAX + 24 + 8)

/*
 * A call of a built-in action (haproxy, webhook, alertmanager), for its
 * driver (actions.h). Pointers are valid during start only.
 */
struct hook_call {
    const struct vcfg_hook *action;
    const char *name;
    const struct evrec *rec;
    bool undo;          /* the node came back: undo what the action did */
    uint32_t attempt;   /* 1, 2, ... */
    int64_t epoch;      /* the leader's fencing epoch (0: none) */
    uint32_t coalesced; /* earlier events this one stands for */
    const char *key;    /* the idempotency key: NODE:GENERATION:SEQ:ACTION[:undo] */
    /* Not the runner's: an escalation (a restart action gave up); says why. NULL: the runner's. */
    const char *escalated;
};

/*
 * The driver of the built-in kinds. start begins a call and must end it
 * later, from the loop (never from within start), with exactly one
 * hook_runner_call_done(token, ...), unless cancel is called first
 * (*call is the driver's handle of it). Returns 0 or -errno.
 */
struct hook_driver {
    int (*start)(void *arg, const struct hook_call *c, void *token, void **call);
    void (*cancel)(void *arg, void *call);
    void *arg;
};
void hook_runner_set_driver(struct hook_runner *r, const struct hook_driver *d);
/* How a driver's call ended. */
enum hook_call_result {
    HOOK_CALL_OK = 0,
    HOOK_CALL_FAILED = 1,  /* retried while retries are left (a timeout, a 5xx, refused) */
    HOOK_CALL_REFUSED = 2, /* not retried: trying again cannot help (a 4xx) */
};
/* The end of a driver's call, and what happened for the log ("HTTP 200", ...). */
void hook_runner_call_done(struct hook_runner *r, void *token, enum hook_call_result res,
                           const char *detail);

/*
 * A node's custom status value of key into buf: 0, or -1 when the node or
 * the key is unknown. For actions that match = "KEY=VALUE".
 */
typedef int (*hook_match_fn)(void *arg, const char *node, const char *key, char *buf, size_t cap);
void hook_runner_set_matcher(struct hook_runner *r, hook_match_fn fn, void *arg);

/* An attempt or an outcome of an action, for the record (hook_runner_set_observer). */
struct hook_outcome {
    const char *action; /* its name */
    enum vcfg_act_kind kind;
    const struct evrec *rec; /* the event */
    bool undo;
    uint32_t attempt;
    const char *outcome; /* "started", "succeeded", "retrying", "failed" */
    const char *detail;  /* "exit 0", "HTTP 503", ... */
    const char *key;     /* idempotency key */
    vigil_time_t took;   /* the attempt's duration (0 for "started") */
    int64_t epoch;
};
typedef void (*hook_observe_fn)(void *arg, const struct hook_outcome *o);
void hook_runner_set_observer(struct hook_runner *r, hook_observe_fn fn, void *arg);

/*
 * Holds (holds.h): asked before a node's next event goes to its actions;
 * a reason ("maintenance", "flapping") holds the node's FIFO, its later
 * events coalescing behind, until hook_runner_release(node), which
 * collapses them by the coalescing rule (hooks.c) and goes on. An event
 * already being handled when the hold began runs to its end; if the hold
 * ends first, the events that came behind it collapse when it is done.
 */
typedef const char *(*hook_hold_fn)(void *arg, const char *node);
void hook_runner_set_hold(struct hook_runner *r, hook_hold_fn fn, void *arg);
void hook_runner_release(struct hook_runner *r, const char *node);

/* An action in the runner's list: its name, kind and label. NULL past the end. */
const char *hook_runner_action_name(const struct hook_runner *r, size_t i);
size_t hook_runner_actions(const struct hook_runner *r);

/*
 * The work in hand, per node: the event being handled (its seq, and per
 * action "running", "retrying", "in line", "waiting for the leader" or
 * "waiting for its turn") and how many events wait behind it.
 */
struct hook_work {
    const char *node; /* "" for the monitor's own */
    const struct evrec *rec;
    uint32_t waiting;
    const char *action;
    const char *state;
    bool undo;
    uint32_t attempt;
};
void hook_runner_each(const struct hook_runner *r, void (*fn)(void *arg, const struct hook_work *w),
                      void *arg);

/*
 * Is anything of the runner's under way: a run going, waiting for its
 * retry or for a slot? A runner that is not busy can be replaced (a
 * reload of the actions) by handing its events to another.
 */
bool hook_runner_busy(const struct hook_runner *r);
/* Starts no new event from now on (what runs goes on): the runner is about to be replaced. */
void hook_runner_freeze(struct hook_runner *r);
/*
 * Hands every event of the runner to fn, per node in order (the order
 * across nodes is the runner's), and empties it, but for the nodes with a
 * run under way (busy): hook_runner_free stops those.
 */
void hook_runner_take(struct hook_runner *r, void (*fn)(void *arg, const struct evrec *ev),
                      void *arg);

/* Hooks running or queued. */
size_t hook_runner_pending(const struct hook_runner *r);
/* Events waiting for their node's hooks (not counting those being handled). */
size_t hook_runner_waiting(const struct hook_runner *r);
const struct hook_stats *hook_runner_stats(const struct hook_runner *r);

#endif
