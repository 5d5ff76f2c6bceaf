/*
 * Hook commands run on events. Each hook is a program with arguments (no
 * shell); it gets the event in environment variables (VIGIL_*) and as one
 * JSON object on its standard input. Hooks run asynchronously: submitting
 * never waits for a child. Per node, events are delivered in order: the
 * hooks of a node's next event start only when those of its previous event
 * have finished. A hook that outlives its timeout gets SIGTERM, and SIGKILL
 * two seconds later. A failed run is retried (retries, retry_delay
 * doubling) before the node's next event goes on.
 */
#ifndef VIGIL_HOOKS_H
#define VIGIL_HOOKS_H

#include "config.h"
#include "evlog.h"

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

int hook_runner_new(const struct vcfg_hook *hooks, size_t n, hook_log_fn log, void *log_arg,
                    struct hook_runner **out);
/* Sends SIGTERM to running hooks, waits up to 2 s, then SIGKILL; frees. */
void hook_runner_free(struct hook_runner *r);

/* Queues the hooks that want this event; starts them if the node has none running. */
int hook_runner_submit(struct hook_runner *r, const struct evrec *ev, vigil_time_t now);

/* Reaps finished children (waitpid WNOHANG), escalates timeouts, starts queued work. */
void hook_runner_poll(struct hook_runner *r, vigil_time_t now);

/* When poll next needs to run for a timeout (VIGIL_TIME_NEVER if none). */
vigil_time_t hook_runner_next_deadline(const struct hook_runner *r);

/* Hooks running or queued. */
size_t hook_runner_pending(const struct hook_runner *r);
const struct hook_stats *hook_runner_stats(const struct hook_runner *r);

#endif
