/*
 * Hook commands run on events. Each hook is a program with arguments (no
 * shell); it gets the event in environment variables (VIGIL_*) and as one
 * JSON object on its standard input. Hooks run asynchronously: submitting
 * never waits for a child. Per node, events are delivered in order: the
 * hooks of a node's next event start only when those of its previous event
 * have finished. A hook that outlives its timeout gets SIGTERM, and SIGKILL
 * two seconds later. A failed run is retried (retries, retry_delay
 * doubling) before the node's next event goes on. At most 64 hooks run at
 * once; the rest wait in line.
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
/* Most retries: ten doublings of the delay already wait over a thousand times the first. */
#define HOOK_RETRIES_MAX 10

struct hook_runner;

struct hook_stats {
    uint64_t started, succeeded, failed, timed_out, spawn_errors, queued;
    uint64_t retried; /* runs started again after a failure */
    uint64_t gave_up; /* runs that failed on their last retry */
};

/* Called with a line for the log (e.g. "hook /x/notify.sh for event 12 (web3): exit 0 in 0.013s").
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

/* Hooks running or queued. */
size_t hook_runner_pending(const struct hook_runner *r);
const struct hook_stats *hook_runner_stats(const struct hook_runner *r);

#endif
