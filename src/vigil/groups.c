/*
 * Failover groups: the record of each group, its choice of a replica, and
 * the promote and demote commands (groups.h says what and why).
 *
 * The record. Per group: the primary, the epoch, whether the primary's
 * promote command has succeeded, and the members still to demote (former
 * primaries). It is written to the store's outbox as an entry of kind
 * "group" in state "current", the newer entry first and then the older
 * marked "done": a crash in between leaves two current entries, and the
 * one of the higher epoch wins when the monitor starts again.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "evlog.h"
#include "fmt.h"
#include "groups.h"

extern char **environ;

struct group {
    struct groups *gs;
    const struct vcfg_group *c;
    size_t primary; /* index in c->nodes */
    uint64_t epoch;
    bool promoted;                        /* the primary's promote command succeeded */
    bool stale[VCFG_MAX_MEMBERS];         /* former primaries not demoted yet */
    uint64_t failed_at[VCFG_MAX_MEMBERS]; /* promote failed under this epoch: skip it */
    int64_t store_id;
    bool said_none; /* "no replica alive" said for this outage */
    /* The command running (one at a time per group). */
    struct vio_child *child;
    size_t target;
    bool promoting;
    uint32_t tries;
    struct vio_timer timer; /* a retry, or the command's timeout */
    bool killed;
};

struct groups {
    struct groups_opts o;
    struct group *g;
    size_t n;
};

static void glog(struct groups *gs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void glog(struct groups *gs, const char *fmt, ...)
{
    if (!gs->o.log)
        return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    gs->o.log(gs->o.arg, line);
}

static void note(struct group *g, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(struct group *g, const char *node, const char *fmt, ...)
{
    char text[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (g->gs->o.note)
        g->gs->o.note(g->gs->o.arg, node, text);
}

static enum vigil_state state(struct group *g, size_t i)
{
    enum vigil_state s = VIGIL_STATE_UNKNOWN;
    if (g->gs->o.state_of(g->gs->o.arg, g->c->nodes[i], &s) != 0)
        return VIGIL_STATE_UNKNOWN;
    return s;
}

static bool held(struct group *g, size_t i)
{
    return g->gs->o.held && g->gs->o.held(g->gs->o.arg, g->c->nodes[i]) != NULL;
}

/* The member's rank_key value as a number (lower is better); +inf when unknown. */
static double rank(struct group *g, size_t i)
{
    if (!g->c->rank_key || !g->gs->o.custom_of)
        return 0;
    char v[VIGIL_CUSTOM_VAL_MAX + 1];
    if (g->gs->o.custom_of(g->gs->o.arg, g->c->nodes[i], g->c->rank_key, v, sizeof(v)) != 0)
        return 1e300;
    char *end = NULL;
    double d = strtod(v, &end);
    return end != v && *end == '\0' ? d : 1e300;
}

/* ---- the record ---- */

static void record(struct group *g)
{
    struct vio_store *st = g->gs->o.store;
    if (!st)
        return;
    json_t *stale = json_array();
    for (size_t i = 0; i < g->c->n_nodes; i++)
        if (g->stale[i])
            json_array_append_new(stale, json_string(g->c->nodes[i]));
    json_t *p = json_pack("{s:s, s:s, s:I, s:b, s:o}", "group", g->c->name, "primary",
                          g->c->nodes[g->primary], "epoch", (json_int_t)g->epoch, "promoted",
                          g->promoted, "stale", stale);
    char *s = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    int64_t id = 0;
    if (!s || st->ops->outbox_add(st, 0, "group", s, &id) != 0 ||
        st->ops->outbox_set(st, id, "current") != 0) {
        glog(g->gs, "group %s: cannot write its record (epoch %" PRIu64 ") to the store: %s",
             g->c->name, g->epoch, st->ops->error(st));
        free(s);
        return;
    }
    free(s);
    if (g->store_id > 0)
        st->ops->outbox_set(st, g->store_id, "done");
    g->store_id = id;
}

static int find_member(const struct vcfg_group *c, const char *node)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (!strcmp(c->nodes[i], node))
            return (int)i;
    return -1;
}

static int load_one(void *arg, const struct vio_store_outbox *e)
{
    struct groups *gs = arg;
    if (strcmp(e->kind, "group") != 0)
        return 0;
    json_t *p = json_loads(e->payload, 0, NULL);
    const char *name = p ? json_string_value(json_object_get(p, "group")) : NULL;
    const char *primary = p ? json_string_value(json_object_get(p, "primary")) : NULL;
    json_int_t epoch = p ? json_integer_value(json_object_get(p, "epoch")) : 0;
    for (size_t k = 0; name && primary && k < gs->n; k++) {
        struct group *g = &gs->g[k];
        int m = find_member(g->c, primary);
        if (strcmp(g->c->name, name) != 0 || m < 0 || (uint64_t)epoch < g->epoch)
            continue;
        if (g->store_id > 0)
            gs->o.store->ops->outbox_set(gs->o.store, g->store_id, "done");
        g->primary = (size_t)m;
        g->epoch = (uint64_t)epoch;
        g->promoted = json_is_true(json_object_get(p, "promoted"));
        memset(g->stale, 0, sizeof(g->stale));
        json_t *stale = json_object_get(p, "stale");
        for (size_t i = 0; i < json_array_size(stale); i++) {
            int s = find_member(g->c, json_string_value(json_array_get(stale, i))
                                          ? json_string_value(json_array_get(stale, i))
                                          : "");
            if (s >= 0)
                g->stale[s] = true;
        }
        g->store_id = e->id;
    }
    if (!name || !primary)
        gs->o.store->ops->outbox_set(gs->o.store, e->id, "done");
    json_decref(p);
    return 0;
}

/* ---- commands ---- */

static void run_next(struct group *g);

static void cmd_exited(void *arg, struct vio_child *c, int status)
{
    struct group *g = arg;
    struct groups *gs = g->gs;
    gs->o.procs->ops->release(gs->o.procs, c);
    g->child = NULL;
    vio_timer_disarm(gs->o.loop, &g->timer);
    bool ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && !g->killed;
    const char *what = g->promoting ? "promote" : "demote";
    const char *node = g->c->nodes[g->target];
    if (ok) {
        glog(gs, "group %s: %s %s (epoch %" PRIu64 "): done", g->c->name, what, node, g->epoch);
        note(g, node, "group %s %s succeeded", g->c->name, what);
        if (g->promoting)
            g->promoted = true;
        else
            g->stale[g->target] = false;
        g->tries = 0;
        record(g);
        run_next(g);
        return;
    }
    char why[64];
    if (g->killed)
        snprintf(why, sizeof(why), "timed out");
    else if (status != -1 && WIFEXITED(status))
        snprintf(why, sizeof(why), "exit %d", WEXITSTATUS(status));
    else
        snprintf(why, sizeof(why), "killed by a signal");
    if (g->tries < GROUP_TRIES) {
        vigil_time_t delay = GROUP_RETRY << (g->tries - 1);
        glog(gs, "group %s: %s %s (epoch %" PRIu64 "): %s; try %" PRIu32 " of %d in %" PRId64 "s",
             g->c->name, what, node, g->epoch, why, g->tries + 1, GROUP_TRIES,
             delay / VIGIL_NSEC_PER_SEC);
        vio_timer_arm(gs->o.loop, &g->timer, vio_now(gs->o.loop) + delay);
        return;
    }
    glog(gs, "group %s: %s %s (epoch %" PRIu64 "): %s; giving up after %d tries", g->c->name, what,
         node, g->epoch, why, GROUP_TRIES);
    note(g, node, "group %s %s failed", g->c->name, what);
    g->tries = 0;
    if (g->promoting) {
        /* Not this one: the next best replica is promoted, under a new epoch. */
        g->failed_at[g->target] = g->epoch;
        g->stale[g->target] = true;
    }
    run_next(g);
}

static int spawn(struct group *g)
{
    struct groups *gs = g->gs;
    char *const *argv = g->promoting ? g->c->promote : g->c->demote;
    size_t n_env = 0;
    for (char **e = environ; e && *e; e++)
        n_env++;
    char **envp = calloc(n_env + 8, sizeof(*envp));
    char own[6][200];
    if (!envp)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(environ[i], "VIGIL_", 6) != 0)
            envp[k++] = environ[i];
    snprintf(own[0], sizeof(own[0]), "VIGIL_GROUP=%s", g->c->name);
    snprintf(own[1], sizeof(own[1]), "VIGIL_NODE=%s", g->c->nodes[g->target]);
    snprintf(own[2], sizeof(own[2]), "VIGIL_EPOCH=%" PRIu64, g->epoch);
    snprintf(own[3], sizeof(own[3]), "VIGIL_ACTION=%s", g->promoting ? "promote" : "demote");
    snprintf(own[4], sizeof(own[4]), "VIGIL_PRIMARY=%s", g->c->nodes[g->primary]);
    snprintf(own[5], sizeof(own[5]), "VIGIL_ATTEMPT=%" PRIu32, g->tries);
    for (size_t i = 0; i < 6; i++)
        envp[k++] = own[i];
    envp[k] = NULL;
    struct vio_spawn req = {.argv = argv, .envp = envp, .on_exit = cmd_exited, .arg = g};
    int rc = gs->o.procs->ops->spawn(gs->o.procs, &req, &g->child);
    free(envp);
    if (rc == 0) {
        g->killed = false;
        vio_timer_arm(gs->o.loop, &g->timer, vio_now(gs->o.loop) + g->c->timeout);
    }
    return rc;
}

/* The group's timer: a command past its timeout, or the next try of one that failed. */
static void on_timer(void *arg, vigil_time_t now)
{
    (void)now;
    struct group *g = arg;
    if (g->child) {
        g->killed = true;
        g->gs->o.procs->ops->signal(g->gs->o.procs, g->child, SIGKILL);
        return;
    }
    g->tries++;
    if (spawn(g) != 0) {
        glog(g->gs, "group %s: cannot start %s", g->c->name,
             (g->promoting ? g->c->promote : g->c->demote)[0]);
        note(g, g->c->nodes[g->target], "group %s %s failed", g->c->name,
             g->promoting ? "promote" : "demote");
        g->tries = 0;
        if (g->promoting) {
            g->failed_at[g->target] = g->epoch;
            g->stale[g->target] = true;
        }
        run_next(g);
    }
}

static void start(struct group *g, size_t target, bool promoting)
{
    g->target = target;
    g->promoting = promoting;
    g->tries = 0;
    /* Through the timer, so that a failure to start takes the same path as a failed run. */
    vio_timer_arm(g->gs->o.loop, &g->timer, vio_now(g->gs->o.loop));
}

/* The best replica to promote: alive, not held, not failed under this epoch; -1 if none. */
static int best(struct group *g)
{
    int b = -1;
    double br = 0;
    for (size_t i = 0; i < g->c->n_nodes; i++) {
        if (i == g->primary || state(g, i) != VIGIL_STATE_ALIVE || held(g, i) ||
            (g->failed_at[i] && g->failed_at[i] == g->epoch))
            continue;
        double r = rank(g, i);
        if (b < 0 || g->c->priority[i] > g->c->priority[b] ||
            (g->c->priority[i] == g->c->priority[b] && r < br)) {
            b = (int)i;
            br = r;
        }
    }
    return b;
}

/* Makes `to` the primary under a new epoch: recorded before any command runs. */
static void elect(struct group *g, size_t to, const char *why)
{
    size_t old = g->primary;
    g->stale[old] = true;
    g->stale[to] = false;
    g->primary = to;
    g->epoch++;
    g->promoted = false;
    g->said_none = false;
    record(g);
    glog(g->gs, "group %s: %s is the primary under epoch %" PRIu64 " (%s; was %s)", g->c->name,
         g->c->nodes[to], g->epoch, why, g->c->nodes[old]);
    note(g, g->c->nodes[to], "group %s primary (%s)", g->c->name, why);
}

/* What the group needs next, if nothing runs: demote first, then promote, then fail over. */
static void run_next(struct group *g)
{
    struct groups *gs = g->gs;
    if (g->child || vio_timer_armed(&g->timer))
        return;
    if (gs->o.may_act && !gs->o.may_act(gs->o.arg))
        return;
    /* Former primaries that are up: demoted, so that two never run as primaries. */
    for (size_t i = 0; i < g->c->n_nodes; i++) {
        if (!g->stale[i] || i == g->primary)
            continue;
        if (!g->c->demote[0]) {
            g->stale[i] = false;
            continue;
        }
        if (state(g, i) == VIGIL_STATE_ALIVE && !held(g, i)) {
            start(g, i, false);
            return;
        }
    }
    enum vigil_state ps = state(g, g->primary);
    bool down =
        ps == VIGIL_STATE_DEAD || ps == VIGIL_STATE_LEFT || g->failed_at[g->primary] == g->epoch;
    if (down && !held(g, g->primary)) {
        int b = best(g);
        if (b < 0) {
            if (!g->said_none) {
                g->said_none = true;
                glog(gs,
                     "group %s: ERROR: the primary %s is %s and no replica is alive: nothing "
                     "is promoted",
                     g->c->name, g->c->nodes[g->primary], vigil_state_name(ps));
                note(g, g->c->nodes[g->primary], "group %s: no replica alive", g->c->name);
            }
            return;
        }
        elect(g, (size_t)b, g->failed_at[g->primary] == g->epoch ? "promote failed" : "failover");
    }
    if (!g->promoted && state(g, g->primary) == VIGIL_STATE_ALIVE && !held(g, g->primary)) {
        start(g, g->primary, true);
        return;
    }
    /* preempt: a member of higher priority than the primary, alive again, takes over. */
    if (g->c->preempt && g->promoted) {
        for (size_t i = 0; i < g->c->n_nodes; i++)
            if (g->c->priority[i] > g->c->priority[g->primary] &&
                state(g, i) == VIGIL_STATE_ALIVE && !held(g, i) && g->failed_at[i] != g->epoch) {
                elect(g, i, "preempt");
                run_next(g);
                return;
            }
    }
}

void groups_check(struct groups *gs)
{
    for (size_t i = 0; gs && i < gs->n; i++)
        run_next(&gs->g[i]);
}

int groups_switchover(struct groups *gs, const char *name, const char *to, char *err, size_t cap)
{
    struct group *g = NULL;
    for (size_t i = 0; i < gs->n && !g; i++)
        if (!strcmp(gs->g[i].c->name, name))
            g = &gs->g[i];
    if (!g) {
        snprintf(err, cap, "no group %s", name);
        return -1;
    }
    if (g->child || vio_timer_armed(&g->timer)) {
        snprintf(err, cap, "group %s is busy (a command runs); try again", name);
        return -1;
    }
    if (gs->o.may_act && !gs->o.may_act(gs->o.arg)) {
        snprintf(err, cap, "this monitor does not lead: ask the leader");
        return -1;
    }
    int t;
    if (to) {
        t = find_member(g->c, to);
        if (t < 0) {
            snprintf(err, cap, "%s is not in group %s", to, name);
            return -1;
        }
        if ((size_t)t == g->primary) {
            snprintf(err, cap, "%s is the primary already", to);
            return -1;
        }
        if (state(g, (size_t)t) != VIGIL_STATE_ALIVE) {
            snprintf(err, cap, "%s is not alive", to);
            return -1;
        }
    } else if ((t = best(g)) < 0) {
        snprintf(err, cap, "no replica of group %s is alive", name);
        return -1;
    }
    elect(g, (size_t)t, "switchover");
    run_next(g);
    return 0;
}

json_t *groups_json(struct groups *gs)
{
    json_t *arr = json_array();
    for (size_t k = 0; gs && k < gs->n; k++) {
        struct group *g = &gs->g[k];
        json_t *nodes = json_array();
        for (size_t i = 0; i < g->c->n_nodes; i++) {
            double r = rank(g, i);
            json_array_append_new(
                nodes,
                json_pack("{s:s, s:s, s:i, s:o, s:s}", "id", g->c->nodes[i], "state",
                          vigil_state_name(state(g, i)), "priority", g->c->priority[i], "rank",
                          g->c->rank_key && r < 1e299 ? json_real(r) : json_null(), "role",
                          i == g->primary ? "primary"
                          : g->stale[i]   ? "to demote"
                                          : "replica"));
        }
        const char *busy = g->child                     ? (g->promoting ? "promoting" : "demoting")
                           : vio_timer_armed(&g->timer) ? "retrying"
                                                        : "idle";
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:I, s:b, s:b, s:s, s:o}", "name", g->c->name, "primary",
                           g->c->nodes[g->primary], "epoch", (json_int_t)g->epoch, "promoted",
                           g->promoted, "no_replica", g->said_none, "work", busy, "nodes", nodes));
    }
    return json_pack("{s:o}", "groups", arr);
}

int groups_new(const struct groups_opts *o, const json_t *prev, struct groups **out, char *err,
               size_t cap)
{
    *out = NULL;
    struct groups *gs = calloc(1, sizeof(*gs));
    if (!gs || !(gs->g = calloc(o->n_groups ? o->n_groups : 1, sizeof(*gs->g)))) {
        free(gs);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    gs->o = *o;
    gs->n = o->n_groups;
    for (size_t k = 0; k < gs->n; k++) {
        struct group *g = &gs->g[k];
        g->gs = gs;
        g->c = &o->groups[k];
        g->epoch = 1;
        g->promoted = true; /* the configured primary is taken as it is */
        int p = g->c->primary ? find_member(g->c, g->c->primary) : 0;
        g->primary = p < 0 ? 0 : (size_t)p;
        vio_timer_init(&g->timer, on_timer, g);
    }
    if (o->store)
        o->store->ops->outbox_list(o->store, "current", load_one, gs);
    json_t *olds = json_object_get(prev, "groups");
    for (size_t k = 0; prev && k < gs->n; k++) {
        struct group *g = &gs->g[k];
        const json_t *old = NULL;
        for (size_t j = 0; j < json_array_size(olds) && !old; j++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(olds, j), "name")),
                        g->c->name))
                old = json_array_get(olds, j);
        uint64_t epoch = (uint64_t)json_integer_value(json_object_get(old, "epoch"));
        if (!old || epoch < g->epoch)
            continue;
        const char *primary = json_string_value(json_object_get(old, "primary"));
        int p = primary ? find_member(g->c, primary) : -1;
        const char *work = json_string_value(json_object_get(old, "work"));
        g->epoch = epoch;
        /* A promotion cut short by the reload is made again. */
        g->promoted =
            json_is_true(json_object_get(old, "promoted")) && !(work && !strcmp(work, "promoting"));
        memset(g->stale, 0, sizeof(g->stale));
        const json_t *nodes = json_object_get(old, "nodes");
        for (size_t i = 0; i < json_array_size(nodes); i++) {
            const json_t *n = json_array_get(nodes, i);
            const char *role = json_string_value(json_object_get(n, "role"));
            int m = find_member(g->c, json_string_value(json_object_get(n, "id"))
                                          ? json_string_value(json_object_get(n, "id"))
                                          : "");
            if (m >= 0 && role && !strcmp(role, "to demote"))
                g->stale[m] = true;
        }
        if (p >= 0) {
            g->primary = (size_t)p;
        } else {
            /* Its primary left the group: the first member leads, under a new epoch. */
            g->primary = 0;
            g->epoch++;
            g->promoted = false;
        }
        record(g);
    }
    for (size_t k = 0; k < gs->n; k++)
        if (gs->g[k].store_id == 0)
            record(&gs->g[k]);
    *out = gs;
    return 0;
}

void groups_free(struct groups *gs)
{
    if (!gs)
        return;
    for (size_t k = 0; k < gs->n; k++) {
        struct group *g = &gs->g[k];
        vio_timer_disarm(gs->o.loop, &g->timer);
        if (g->child) {
            /* Left to finish on its own: its record says what is still to do. */
            gs->o.procs->ops->release(gs->o.procs, g->child);
        }
    }
    free(gs->g);
    free(gs);
}
