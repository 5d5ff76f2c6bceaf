/*
 * The built-in kinds of action (docs/actions.md): the driver the hook
 * runner calls for haproxy, webhook and alertmanager actions.
 *
 *   haproxy       HAProxy's runtime API: each of the node's servers is put
 *                 into maint (or drain) and, on undo, back to ready; every
 *                 change is read back with "show servers state".
 *   webhook       a JSON document POSTed to a URL, signed with HMAC-SHA256
 *                 when a secret is set. The document is written to the
 *                 store's outbox and delivered in the background: 2xx is
 *                 done, 4xx refused (not retried), anything else retried
 *                 with the action's backoff. A monitor killed before it was
 *                 done delivers it after its restart (actions_resume).
 *   alertmanager  an alert POSTed to /api/v2/alerts on the node's failure,
 *                 re-posted every `repeat` while it fires (kept in the
 *                 outbox too), and posted with endsAt on its undo.
 *   restart       a command run for the node, then a wait for the node to
 *                 be alive again; CrashLoopBackOff's backoff across
 *                 crashes, and an escalation when the restarts give up.
 *
 * Notifications (webhook, alertmanager) are done for the runner as soon as
 * they are queued: a receiver that is down must never hold back a node's
 * other actions (taking it out of the load balancer). Their attempts are
 * recorded all the same (opts.record).
 *
 * No system call here: requests go through vio_http and vio_exchange on
 * the loop, and the outbox through vio_store.
 */
#ifndef VIGIL_ACTIONS_H
#define VIGIL_ACTIONS_H

#include "config.h"
#include "hooks.h"
#include "io/vio.h"

/* An alert is re-posted this often while it fires: well within Alertmanager's 5 min
 * resolve_timeout. */
#define ACT_AM_REPEAT_DEFAULT (60 * VIGIL_NSEC_PER_SEC)
/* A webhook left pending by an earlier run is tried this many times after a restart. */
#define ACT_RESUME_TRIES 8
/* The webhook's document version (docs/actions.md). */
#define ACT_WEBHOOK_VERSION 1

struct actions_opts {
    struct vio_env *env;     /* its loop, exchange and http_open */
    struct vio_store *store; /* the outbox (NULL: deliveries are not kept across restarts) */
    struct hook_runner *runner;
    const struct vcfg_hook *hooks; /* the runner's list, for the secrets and the names */
    size_t n_hooks;
    const char *monitor; /* this monitor's name, in documents */
    /* A node's custom status value (for server_key); 0 or -1. */
    int (*custom_of)(void *arg, const char *node, const char *key, char *buf, size_t cap);
    /* The node's state now (-1: unknown), for alerts resumed after a restart. */
    int (*state_of)(void *arg, const char *node, enum vigil_state *out);
    void (*log)(void *arg, const char *line);
    /*
     * An attempt or outcome of a delivery made in the background (a
     * webhook, an alert's post): outcome "started", "succeeded",
     * "retrying" or "failed". NULL: not recorded.
     */
    void (*record)(void *arg, const char *action, enum vcfg_act_kind kind, const char *node,
                   uint64_t seq, bool undo, uint32_t attempt, const char *outcome,
                   const char *detail, const char *key);
    void *arg;
};

struct actions;

/*
 * Makes the driver and sets it on the runner; reads the webhooks' secret
 * files. 0, or -1 with the reason in err.
 */
int actions_new(const struct actions_opts *o, struct actions **out, char *err, size_t cap);
/*
 * Takes up what an earlier run left in the outbox: webhooks not delivered
 * are delivered, alerts still firing are re-posted (or resolved, for a node
 * alive again). Call once the core's node states are restored.
 */
void actions_resume(struct actions *a);
/*
 * A restart action gave up on node: runs the action named target (a
 * webhook or an alertmanager action) once for rec, outside the runner, as
 * an escalation; an alert it fires is resolved when the node is alive
 * again (actions_node_alive).
 */
void actions_escalate(struct actions *a, const char *target, const char *from,
                      const struct evrec *rec);
/* node is alive: escalated alerts about it are resolved. */
void actions_node_alive(struct actions *a, const char *node);
/* Frees; call after hook_runner_free (which cancels the calls in flight), never before. */
void actions_free(struct actions *a);

#endif
