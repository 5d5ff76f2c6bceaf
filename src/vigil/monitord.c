/*
 * vigil monitor: the program around the monitor core.
 *
 * A monitord is the whole daemon, built on a struct vio_env (src/io/vio.h):
 * it never calls the OS itself, so the same code runs for real (the epoll
 * loop, UDP sockets, child processes, libmicrohttpd) and in the simulator
 * (a virtual clock, a simulated network, scripted hooks). It is driven
 * entirely by its loop:
 *
 *   a listener is readable: read its datagrams (in batches) into the core,
 *     each at its arrival time, the kernel's;
 *   the core's deadline is due: read what is queued first, then let the
 *     core decide what is due;
 *   after either: events to the history, the log and the hooks; the timer
 *     moved to the core's next deadline;
 *   SIGTERM or SIGINT: stop the loop; monitord_free drains and cleans up.
 *
 * The HTTP API answers in this same loop, so no lock guards the core. Hooks
 * run as child processes and are never waited for; the log is written by a
 * writer that never blocks the loop.
 */
#include <getopt.h>
#include <inttypes.h>
#include <sys/socket.h> /* AF_INET, AF_INET6: the numbers only */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fmt.h"
#include "api.h"
#include "cmds.h"
#include "config.h"
#include "evlog.h"
#include "actgate.h"
#include "actions.h"
#include "actlog.h"
#include "groups.h"
#include "holds.h"
#include "hooks.h"
#include "checks.h"
#include "leader.h"
#include "io/sender_io.h"
#include "hwm.h"
#include "mstore.h"
#include "drops.h"
#include "monitord.h"
#include "peerd.h"

/* Datagrams taken per receive call: amortises the system call. */
#define BATCH 64
/* Batches read per listener in one turn, so a flood cannot starve decisions. */
#define MAX_BATCHES 64
/* Batches read before judging a deadline: 65,536 datagrams, a few milliseconds. */
#define MAX_DRAIN 1024
/* Turns in a row a judgement waits for a backlog: some 16 million datagrams. */
#define MAX_DEFERRALS 256
/*
 * How long a judgement waits, each turn, for receive threads that have
 * datagrams in hand or not yet read (vio_pending): at most MAX_DEFERRALS
 * times, some 50 ms in all.
 */
#define PENDING_WAIT (VIGIL_NSEC_PER_MSEC / 5)
struct monitord;

/* One listening address and the transport behind it. */
struct listener {
    struct monitord *d;
    struct vio_transport *t;
};

struct monitord {
    struct vio_env *env;
    struct vio_loop *loop;
    struct vcfg cfg;
    struct vigil_monitor *mon;
    struct evlog *events;
    struct hook_runner *hooks;
    struct actions *actions;  /* the built-in kinds of action (NULL: only exec actions) */
    struct actlog actlog;     /* every attempt and outcome of an action */
    struct holds holds;       /* nodes in maintenance, or flapping: their actions held */
    struct groups *groups;    /* failover groups (NULL: none) */
    struct check_set *checks; /* monitor.checks, polled (NULL: none) */
    struct rchecks *rchecks;  /* the checks agents report in their heartbeats */
    struct peerd *peer;       /* vigil peer: this process is a member, not a monitor (NULL) */
    /*
     * A reload's new list of actions, applied once nothing runs
     * (apply_actions; the timer tries again): the waiting events carry over.
     */
    struct vcfg_hook next_hooks[VCFG_MAX_HOOKS];
    size_t n_next_hooks;
    bool next_pending;
    vigil_time_t next_deadline; /* applied then even if actions still run (they stop) */
    struct vio_timer actions_timer;
    bool holds_ready;
    /* monitor.etcd: the election, and the gate that lets only the leader act (else NULL). */
    struct leader *leader;
    struct actgate *gate;
    struct vio_timer resign_timer; /* stops the loop once a resignation had time to reach etcd */
    /*
     * Hands on the events left for the next turn (drain_events), and
     * those the election added (on_leader_change).
     */
    struct vio_timer drain_timer;
    size_t drain_max; /* events handed on a turn, at most (DRAIN_MAX; all at exit) */
    /* A save of the marks in slices (MSTORE_SLICE nodes a turn), every state_flush. */
    struct vio_timer sweep_timer;
    size_t sweep_at;         /* the next node of the sweep under way */
    bool sweeping;           /* a sweep is under way */
    uint64_t sweep_accepted; /* stats.accepted when it began */
    /*
     * The monitoring layer watched: heartbeats as node `name` to the
     * other monitors (monitor.peers), and, with etcd, heartbeats for node
     * "etcd" handed to this monitor's own core whenever etcd renewed the
     * lease (each monitor holds one), so that etcd's health is a node's.
     */
    struct vigil_sender *peer_sender, *etcd_sender;
    struct vio_transport *peer_t4, *peer_t6;
    struct vio_timer peer_timer;
    struct vigil_key *own; /* the keys, until the watch heartbeats take theirs (sodium_malloc) */
    size_t n_own;
    struct vio_httpd *httpd;
    struct api_ctx api_ctx;
    char key_ids[80];    /* " (key ids 0, 1)" at start, for the start-up line */
    struct drops *drops; /* this minute's dropped datagrams, by source, id and reason */
    struct vio_timer drops_timer;
    vigil_time_t debug_window; /* debug lines: this second's count */
    unsigned debug_lines;
    vigil_time_t drops_since; /* start of the current window */
    int argc;                 /* the command line, read again on a reload (NULL: none) */
    char **argv;
    bool keys_from_flag; /* the key files came from -k: SIGHUP reads them again */
    struct listener socks[VCFG_MAX_LISTEN];
    size_t n_socks;
    struct vio_log *log;
    struct vio_timer deadline; /* the core's next deadline */
    /*
     * Every state_flush: the wall clock handed to the core again (it
     * follows a stepped clock) and the high-water marks written, if they
     * changed, to the state file.
     */
    struct vio_timer housekeeping;
    uint64_t saved_accepted;     /* stats.accepted when the marks were last written */
    struct mstore *store;        /* the state store (monitor.state_dir), or NULL */
    struct mstore_loaded loaded; /* what the store held at start */
    bool store_dirty;            /* events since the marks and states were last written */
    bool store_failing;          /* the last write failed (logged once until one succeeds) */
    bool marks_loaded;           /* the state file was read: writing it loses nothing */
    int marks_restored;          /* marks read from it at start */
    vigil_time_t fed;            /* latest time handed to the core: it never goes back */
    vigil_time_t stall_end;      /* end of the last stall reported: older lags are part of it */
    vigil_time_t stall_since;    /* a stall noted and not yet reported began then (or NEVER) */
    bool lost_unread;            /* datagrams lost unread (or unstamped) since the last settling */
    unsigned deferrals;          /* judgements put off in a row for a backlog still unread */
    uint64_t json_failures;      /* events that could not be rendered as JSON */
    uint8_t bufs[BATCH][VIGIL_WIRE_MAX + 1];
};

/* Writes one line to the log: through the writer thread once it runs. */
static void log_out(struct monitord *d, const char *line)
{
    if (d->log)
        d->log->ops->write(d->log, line);
}

static void log_line(struct monitord *d, const char *line)
{
    char ts[40];
    vigil_format_wall(vio_wall_us(d->loop), ts, sizeof(ts));
    if (d->cfg.monitor.log_format == VCFG_LOG_JSON) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "time", ts, "type", "log", "message", line);
        char *s = o ? json_dumps(o, JSON_COMPACT | VIGIL_JSON_REAL) : NULL;
        if (s)
            log_out(d, s);
        free(s);
        json_decref(o);
    } else {
        char buf[2048];
        snprintf(buf, sizeof(buf), "%s %s", ts, line);
        log_out(d, buf);
    }
}

/* A line at a level: written only when the configured level includes it. */
static void log_at(struct monitord *d, enum vcfg_log_level level, const char *line)
{
    if (level <= d->cfg.monitor.log_level)
        log_line(d, line);
}

static void hook_log(void *arg, const char *line)
{
    log_line(arg, line);
}

static void actions_log(void *arg, const char *line)
{
    char buf[700];
    snprintf(buf, sizeof(buf), "vigil monitor: actions: %s", line);
    log_line(arg, buf);
}

/* A node's custom status value (match = "KEY=VALUE", server_key). */
static int node_custom(void *arg, const char *node, const char *key, char *buf, size_t cap)
{
    struct monitord *d = arg;
    const struct vigil_node *n = vigil_monitor_find(d->mon, node);
    if (!n)
        return -1;
    for (size_t i = 0; i < vigil_node_custom_count(n); i++) {
        const struct vigil_custom *c = vigil_node_custom(n, i);
        if (!strcmp(c->key, key)) {
            snprintf(buf, cap, "%s", c->value);
            return 0;
        }
    }
    return -1;
}

static const char *hold_reason(void *arg, const char *node)
{
    struct monitord *d = arg;
    return holds_reason(&d->holds, node);
}

/* Maintenance kept across restarts: an outbox entry "maint", active while it lasts. */
static void maint_store(struct monitord *d, struct hold_rec *r)
{
    struct vio_store *st = mstore_store(d->store);
    if (!st || !r)
        return;
    if (r->maint_id > 0) {
        st->ops->outbox_set(st, r->maint_id, "done");
        r->maint_id = 0;
    }
    if (r->maint_until == 0)
        return;
    int64_t until_us = 0; /* 0: until told */
    if (r->maint_until != VIGIL_TIME_NEVER)
        until_us = vio_wall_us(d->loop) + (r->maint_until - vio_now(d->loop)) / 1000;
    json_t *p = json_pack("{s:s, s:I}", "node", r->node, "until_us", (json_int_t)until_us);
    char *s = p ? json_dumps(p, JSON_COMPACT) : NULL;
    int64_t id = 0;
    if (s && st->ops->outbox_add(st, vio_wall_us(d->loop), "maint", s, &id) == 0 &&
        st->ops->outbox_set(st, id, "active") == 0)
        r->maint_id = id;
    free(s);
    json_decref(p);
}

static bool may_act(void *arg)
{
    struct monitord *d = arg;
    if (!d->leader)
        return true;
    struct leader_view v;
    leader_view(d->leader, &v);
    return v.role == LEADER_ROLE_LEADER;
}

static void group_note(void *arg, const char *node, const char *text)
{
    struct monitord *d = arg;
    vigil_monitor_note_action(d->mon, vio_now(d->loop), node, actlog_intern(&d->actlog, text), 0,
                              0);
    if (!vio_timer_armed(&d->drain_timer))
        vio_timer_arm(d->loop, &d->drain_timer, vio_now(d->loop));
}

static void groups_log(void *arg, const char *line)
{
    char buf[700];
    snprintf(buf, sizeof(buf), "vigil monitor: groups: %s", line);
    log_line(arg, buf);
}

static int api_failover(void *ud, const char *group, const char *to, char *err, size_t cap)
{
    struct monitord *d = ud;
    if (!d->groups) {
        snprintf(err, cap, "no failover groups are configured");
        return -1;
    }
    return groups_switchover(d->groups, group, to, err, cap);
}

static void hold_changed(void *arg, const char *node, const char *what)
{
    struct monitord *d = arg;
    vigil_monitor_note_action(d->mon, vio_now(d->loop), node, what, 0, 0);
    if (!vio_timer_armed(&d->drain_timer))
        vio_timer_arm(d->loop, &d->drain_timer, vio_now(d->loop));
    if (!strncmp(what, "maintenance", 11))
        maint_store(d, holds_find(&d->holds, node));
    if (!holds_reason(&d->holds, node))
        hook_runner_release(d->hooks, node);
    groups_check(d->groups);
}

/* Collects the maintenance entries of the store (applied after the walk: applying writes). */
static int collect_maint(void *arg, const struct vio_store_outbox *e)
{
    if (strcmp(e->kind, "maint") != 0)
        return 0;
    json_t *p = json_loads(e->payload, 0, NULL);
    if (p) {
        json_object_set_new(p, "id", json_integer(e->id));
        json_array_append_new(arg, p);
    }
    return 0;
}

static void restore_maint(struct monitord *d)
{
    struct vio_store *st = mstore_store(d->store);
    json_t *all = json_array();
    if (!st || !all || st->ops->outbox_list(st, "active", collect_maint, all) != 0) {
        json_decref(all);
        return;
    }
    int64_t now_us = vio_wall_us(d->loop);
    for (size_t i = 0; i < json_array_size(all); i++) {
        json_t *p = json_array_get(all, i);
        const char *node = json_string_value(json_object_get(p, "node"));
        json_int_t until_us = json_integer_value(json_object_get(p, "until_us"));
        int64_t id = json_integer_value(json_object_get(p, "id"));
        /* The entry is done: holds_maint writes the maintenance again, under a new entry. */
        st->ops->outbox_set(st, id, "done");
        if (node && vigil_id_valid(node, strlen(node)) && (until_us == 0 || until_us > now_us))
            holds_maint(&d->holds, node,
                        until_us == 0 ? VIGIL_TIME_NEVER
                                      : vio_now(d->loop) + (until_us - now_us) * 1000);
    }
    json_decref(all);
}

/* POST /v1/maint/NODE: maintenance on for `len` (VIGIL_TIME_NEVER: until told), or off (0). */
static int api_maint(void *ud, const char *node, vigil_time_t len, char *err, size_t cap)
{
    struct monitord *d = ud;
    vigil_time_t until = len == 0                  ? 0
                         : len == VIGIL_TIME_NEVER ? VIGIL_TIME_NEVER
                                                   : vio_now(d->loop) + len;
    if (holds_maint(&d->holds, node, until) != 0) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    return 0;
}

/* A background delivery's attempt or outcome: recorded, and an event like the runner's. */
static void delivery_recorded(void *arg, const char *action, enum vcfg_act_kind kind,
                              const char *node, uint64_t seq, bool undo, uint32_t attempt,
                              const char *outcome, const char *detail, const char *key)
{
    struct monitord *d = arg;
    actlog_add_raw(&d->actlog, vio_wall_us(d->loop), action, kind, node, seq, undo, attempt,
                   outcome, detail, key);
    char text[128];
    snprintf(text, sizeof(text), "%s %s delivery %s", action, undo ? "undo" : "do", outcome);
    vigil_monitor_note_action(d->mon, vio_now(d->loop), node, actlog_intern(&d->actlog, text), seq,
                              attempt);
    if (!vio_timer_armed(&d->drain_timer))
        vio_timer_arm(d->loop, &d->drain_timer, vio_now(d->loop));
}

static void action_observed(void *arg, const struct hook_outcome *o)
{
    struct monitord *d = arg;
    actlog_add(&d->actlog, o, vio_wall_us(d->loop));
    /* A restart action that gave up escalates (an alert, a page), once per event. */
    if (o->kind == VCFG_ACT_RESTART && !strcmp(o->outcome, "failed")) {
        const struct vcfg_monitor *mc = &d->cfg.monitor;
        char nm[VCFG_ACTION_NAME_MAX + 24];
        for (size_t i = 0; i < mc->n_hooks; i++)
            if (mc->hooks[i].escalate &&
                !strcmp(vcfg_hook_name(&mc->hooks[i], i, nm, sizeof(nm)), o->action))
                actions_escalate(d->actions, mc->hooks[i].escalate, o->action, o->rec);
    }
    /* An event too (vigil events, the store, the web page), handed on with the next drain. */
    char text[128];
    snprintf(text, sizeof(text), "%s %s %s", o->action, o->undo ? "undo" : "do", o->outcome);
    vigil_monitor_note_action(d->mon, vio_now(d->loop), evrec_node(o->rec),
                              actlog_intern(&d->actlog, text), o->rec->ev.seq, o->attempt);
    if (!vio_timer_armed(&d->drain_timer))
        vio_timer_arm(d->loop, &d->drain_timer, vio_now(d->loop));
}

/* ---- redundant monitors (monitor.etcd) ---- */

/*
 * Events handed on (logged, stored in one commit, given to the hooks) in
 * one turn of the loop, at most: about 5 ms of work with the store.
 */
#define DRAIN_MAX 1024
/* Nodes whose marks one transaction of a sweep writes: a few milliseconds. */
#define MSTORE_SLICE 1000

/* A resigning leader's revocation has this long to reach etcd before the monitor exits. */
#define RESIGN_WAIT (300 * VIGIL_NSEC_PER_MSEC)

static void drain_events(struct monitord *d, vigil_time_t now);
static void arm_deadline(struct monitord *d);

/* ---- health checks: the node's state from its checks (docs/checks.md) ---- */

/* Whether a poll check's critical status makes its node dead. */
static bool poll_means_dead(struct monitord *d, const struct check_info *c)
{
    if (c->cfg->critical_means_dead >= 0)
        return c->cfg->critical_means_dead == 1;
    const struct vigil_node *n = vigil_monitor_find(d->mon, c->node);
    return n && vigil_node_polled(n);
}

/*
 * The checks' verdict on node: *down when a check whose failure means the
 * node is dead is critical (*why names it), *up when one of them has a
 * status and none of them is critical.
 */
static void checks_verdict(struct monitord *d, const char *node, bool *down, bool *up,
                           const char **why)
{
    *down = *up = false;
    *why = NULL;
    bool any = false;
    const size_t *idx;
    size_t np = check_set_of_node(d->checks, node, &idx);
    for (size_t i = 0; i < np; i++) {
        const struct check_info *c = check_set_at(d->checks, idx[i]);
        if (!poll_means_dead(d, c) || c->status == CHECK_UNKNOWN)
            continue;
        any = true;
        if (c->status == CHECK_CRITICAL && !*down) {
            *down = true;
            *why = c->name;
        }
    }
    const struct rcheck *rc[VCFG_AGENT_MAX_CHECKS];
    size_t nr = rchecks_of_node(d->rchecks, node, rc, VCFG_AGENT_MAX_CHECKS);
    for (size_t i = 0; i < nr; i++) {
        const struct rcheck *c = rc[i];
        if (!c->means_dead || c->status == CHECK_UNKNOWN)
            continue;
        any = true;
        if (c->status == CHECK_CRITICAL && !*down) {
            *down = true;
            *why = c->name;
        }
    }
    *up = any && !*down;
}

/* Applies the checks' verdict to node's state in the core. */
static void health_apply(struct monitord *d, const char *node, vigil_time_t now)
{
    const struct vigil_node *n = vigil_monitor_find(d->mon, node);
    if (!n)
        return;
    bool down, up;
    const char *why;
    checks_verdict(d, node, &down, &up, &why);
    char text[96];
    if (down && !vigil_node_check_down(n)) {
        snprintf(text, sizeof text, "check %s critical", why);
        const char *reason = check_intern(text);
        vigil_monitor_set_check_down(d->mon, now, node, true, reason ? reason : "check critical");
    } else if (!down && (vigil_node_check_down(n) || (up && vigil_node_polled(n) &&
                                                      vigil_node_state(n) != VIGIL_STATE_ALIVE))) {
        vigil_monitor_set_check_down(d->mon, now, node, false, "checks passing");
    }
}

static void note_check(struct monitord *d, const char *node, const char *name,
                       enum check_status old, enum check_status st, const struct check_result *r,
                       const char *reason, vigil_time_t now)
{
    struct vigil_check_note note = {
        .check = name,
        .old_state = (enum vigil_state)old,
        .new_state = (enum vigil_state)st,
        .reason = reason,
        .latency = r->latency,
        .code = r->code,
        .detail = r->detail,
    };
    /* The check's event first, then the node's, if the check changes it. */
    vigil_monitor_note_check(d->mon, now, node, &note);
    health_apply(d, node, now);
    arm_deadline(d);
    vio_timer_arm(d->loop, &d->drain_timer, now);
}

static void on_check_change(void *arg, const struct check_info *c, enum check_status old,
                            const struct check_result *r, vigil_time_t now)
{
    struct monitord *d = arg;
    /* Times on the core's clock never go back. */
    if (now < d->fed)
        now = d->fed;
    d->fed = now;
    note_check(d, c->node, c->name, old, c->status, r, "polled", now);
}

static void on_rcheck_change(void *arg, const struct rcheck *c, enum check_status old,
                             vigil_time_t now)
{
    note_check(arg, c->node, c->name, old, c->status, &c->last, "agent", now);
}

/* The checks among a full status a node just sent (agent.checks). */
static void take_reports(struct monitord *d, const struct vigil_node *n, vigil_time_t now)
{
    size_t k = vigil_node_custom_count(n);
    struct vigil_custom pairs[VIGIL_CUSTOM_MAX];
    size_t m = 0;
    for (size_t i = 0; i < k && m < VIGIL_CUSTOM_MAX; i++) {
        const struct vigil_custom *p = vigil_node_custom(n, i);
        if (!strncmp(p->key, CHECK_PAIR_PREFIX, strlen(CHECK_PAIR_PREFIX)))
            pairs[m++] = *p;
    }
    if (m == 0)
        return;
    char id[VIGIL_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", vigil_node_id(n));
    if (rchecks_update(d->rchecks, id, pairs, m, now, on_rcheck_change, d) != 0)
        log_line(d, "vigil monitor: out of memory keeping an agent's checks");
}

static int ping_key(void *arg, const char *node, uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN],
                    uint8_t *key_id)
{
    struct monitord *d = arg;
    return vigil_monitor_node_mac(d->mon, node, mac, key_id);
}

static int setup_checks(struct monitord *d, char *err, size_t cap)
{
    struct vcfg_monitor *mc = &d->cfg.monitor;
    vigil_time_t now = vio_now(d->loop);
    for (size_t i = 0; i < mc->n_poll_only; i++) {
        int rc = vigil_monitor_declare_polled(d->mon, mc->poll_only[i], now);
        if (rc) {
            snprintf(err, cap, "cannot declare node %s: %s", mc->poll_only[i], vigil_strerror(rc));
            return -1;
        }
    }
    /* A node a check is of is declared: it must send heartbeats, unless it is polled. */
    for (size_t i = 0; i < mc->n_checks; i++) {
        int rc = vigil_monitor_declare(d->mon, mc->checks[i].node, now);
        if (rc && rc != -VIGIL_EEXIST) {
            snprintf(err, cap, "cannot declare node %s: %s", mc->checks[i].node,
                     vigil_strerror(rc));
            return -1;
        }
    }
    if (!(d->rchecks = rchecks_new())) {
        snprintf(err, cap, "cannot start: out of memory");
        return -1;
    }
    d->api_ctx.rchecks = d->rchecks;
    if (mc->n_checks == 0)
        return 0;
    if (check_set_new(d->env, mc->checks, mc->n_checks, on_check_change, d, &d->checks, err, cap) !=
        0)
        return -1;
    check_set_keys(d->checks, ping_key, d);
    d->api_ctx.checks = d->checks;
    return 0;
}

static void on_leader_change(void *arg, const struct leader_view *v)
{
    struct monitord *d = arg;
    char line[512];
    const char *me = d->api_ctx.name;
    switch (v->role) {
    case LEADER_ROLE_LEADER:
        snprintf(line, sizeof(line),
                 "vigil monitor: leadership: %s leads under epoch %" PRId64 "; it acts from now on",
                 me, v->epoch);
        break;
    case LEADER_ROLE_FOLLOWER:
        snprintf(line, sizeof(line),
                 "vigil monitor: leadership: %s follows %s (epoch %" PRId64
                 "); it detects, the leader acts",
                 me, v->leader_id, v->epoch);
        break;
    default:
        snprintf(line, sizeof(line),
                 "vigil monitor: leadership: %s knows no leader (etcd at %s unreachable, or an "
                 "election under way); detection goes on, actions wait for a leader",
                 me, leader_endpoint(d->leader));
        break;
    }
    log_line(d, line);
    /* In the event history too, so that readers of the events (and hooks) learn of it. */
    const char *why = v->role == LEADER_ROLE_LEADER     ? "this monitor leads: it acts"
                      : v->role == LEADER_ROLE_FOLLOWER ? "another monitor leads and acts"
                                                        : "no leader: actions wait";
    vigil_monitor_note_leader(d->mon, vio_now(d->loop), v->leader_id, (uint64_t)v->epoch, why);
    /*
     * Handed on from the loop, not from here: a change can be found while
     * an event is being handed to the hooks (the gate asks for the role,
     * and the deadline may have passed), and handing events on must not
     * start again inside itself.
     */
    vio_timer_arm(d->loop, &d->drain_timer, vio_now(d->loop));
    if (d->gate)
        actgate_view_changed(d->gate, v);
    groups_check(d->groups);
}

static void on_drain_timer(void *arg, vigil_time_t now)
{
    struct monitord *d = arg;
    drain_events(d, now);
}

static void on_resigned(void *arg, vigil_time_t now)
{
    struct monitord *d = arg;
    (void)now;
    vio_loop_stop(d->loop);
}

static int node_state(void *arg, const char *node, enum vigil_state *out)
{
    struct monitord *d = arg;
    const struct vigil_node *n = vigil_monitor_find(d->mon, node);
    if (!n)
        return -1;
    *out = vigil_node_state(n);
    return 0;
}

static void gate_log(void *arg, const char *line)
{
    char buf[600];
    snprintf(buf, sizeof(buf), "vigil monitor: actions: %s", line);
    log_line(arg, buf);
}

/* ---- the monitoring layer watched (monitor.peers, and etcd as a node) ---- */

/* The node id etcd has in every monitor's table when monitor.etcd is set. */
#define ETCD_NODE "etcd"

static vigil_time_t watch_now(void *arg)
{
    return vio_now(((struct monitord *)arg)->loop);
}

static int64_t watch_wall_us(void *arg)
{
    return vio_wall_us(((struct monitord *)arg)->loop);
}

static int watch_sample(void *arg, struct vigil_status *st)
{
    struct monitord *d = arg;
    return d->env->sample_status ? d->env->sample_status(d->env, st) : -VIGIL_EINVAL;
}

static int local_send(void *arg, const struct vigil_addr *to, const uint8_t *buf, size_t len);

/*
 * A heartbeat of this monitor to a peer, from a socket of its own per
 * family; to port 0, to this monitor itself (so that every monitor's table
 * shows every monitor, itself included, and its own name in `nodes` is
 * not declared dead).
 */
static int peer_send(void *arg, const struct vigil_addr *to, const uint8_t *buf, size_t len)
{
    struct monitord *d = arg;
    if (to->port == 0)
        return local_send(arg, to, buf, len);
    struct vio_transport **t = to->family == AF_INET6 ? &d->peer_t6 : &d->peer_t4;
    if (!*t) {
        int rc = d->env->net->ops->open(d->env->net, d->loop, NULL, to->family, t);
        if (rc)
            return rc;
    }
    return vio_send(*t, to, buf, len);
}

static void arm_deadline(struct monitord *d);

/* A heartbeat of this monitor's own (etcd's, or its own), handed to its core as if it arrived. */
static int local_send(void *arg, const struct vigil_addr *to, const uint8_t *buf, size_t len)
{
    struct monitord *d = arg;
    (void)to;
    vigil_time_t now = vio_now(d->loop);
    int rc = vigil_monitor_on_datagram(d->mon, now, buf, len, NULL);
    drain_events(d, now);
    arm_deadline(d);
    return rc;
}

static void on_peer_beat(void *arg, vigil_time_t now)
{
    struct monitord *d = arg;
    (void)now;
    vigil_sender_beat(d->peer_sender, false);
    vio_timer_arm(d->loop, &d->peer_timer, vigil_sender_next(d->peer_sender));
}

/* etcd renewed this monitor's lease: a heartbeat of the etcd node (every TTL/3 while it does). */
static void on_renewed(void *arg)
{
    struct monitord *d = arg;
    if (d->etcd_sender)
        vigil_sender_beat(d->etcd_sender, false);
}

/*
 * The key this monitor's own heartbeats go under, for id: the last key
 * held (the newest during a rotation), a node's key derived from it if it
 * is a master key. false without a key.
 */
static bool own_key(const struct vigil_key *keys, size_t n, const char *id,
                    uint8_t out[VIGIL_WIRE_KEY_LEN], uint8_t *key_id)
{
    if (n == 0)
        return false;
    const struct vigil_key *k = &keys[n - 1];
    *key_id = k->id;
    if (k->master)
        return vigil_wire_node_key(out, k->key, id) == 0;
    memcpy(out, k->key, VIGIL_WIRE_KEY_LEN);
    return true;
}

/* A sender for id to n destinations, sending through send; its key from keys. */
static int watch_sender(struct monitord *d, const char *id, const struct vigil_addr *dests,
                        size_t n, vigil_time_t interval, const struct vigil_key *keys,
                        size_t n_keys,
                        int (*send)(void *, const struct vigil_addr *, const uint8_t *, size_t),
                        struct vigil_sender **out)
{
    struct vigil_sender_config sc;
    vigil_sender_config_default(&sc);
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    uint8_t kid = 0;
    bool keyed = own_key(keys, n_keys, id, key, &kid);
    sc.id = id;
    sc.interval = interval;
    sc.key = keyed ? key : NULL;
    sc.key_id = kid;
    sc.sample_proc = send == peer_send;
    struct vigil__sender_io io = {
        .now = watch_now, .wall_us = watch_wall_us, .send = send, .sample = watch_sample, .arg = d};
    int rc = vigil__sender_new_io(&sc, dests, n, &io, out);
    sodium_memzero(key, sizeof(key));
    return rc;
}

/* A rotation: the watch heartbeats go under the newest key from the next one on. */
static void watch_rekey(struct monitord *d, const struct vigil_key *keys, size_t n)
{
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    uint8_t kid = 0;
    if (d->peer_sender && own_key(keys, n, d->api_ctx.name, key, &kid))
        vigil_sender_set_key(d->peer_sender, key, kid);
    if (d->etcd_sender && own_key(keys, n, ETCD_NODE, key, &kid))
        vigil_sender_set_key(d->etcd_sender, key, kid);
    sodium_memzero(key, sizeof(key));
}

/* Starts the watch heartbeats (before the keys are wiped). 0, or -1 with err set. */
static int start_watch(struct monitord *d, const struct vigil_key *keys, size_t n_keys, char *err,
                       size_t cap)
{
    const struct vcfg_monitor *mc = &d->cfg.monitor;
    if (mc->n_peers) {
        struct vigil_addr dests[VCFG_MAX_PEERS + 1];
        memset(&dests[mc->n_peers], 0, sizeof(dests[0])); /* port 0: this monitor itself */
        dests[mc->n_peers].family = AF_INET;
        for (size_t i = 0; i < mc->n_peers; i++) {
            const char *why = "invalid address";
            if (d->env->net->ops->resolve(d->env->net, mc->peers[i], VIGIL_DEFAULT_PORT, &dests[i],
                                          &why) < 0) {
                snprintf(err, cap, "monitor.peers: '%s': %s", vigil_quote(mc->peers[i]).s, why);
                return -1;
            }
        }
        if (watch_sender(d, d->api_ctx.name, dests, mc->n_peers + 1, mc->interval, keys, n_keys,
                         peer_send, &d->peer_sender) != 0) {
            snprintf(err, cap, "monitor.peers: cannot start the heartbeats to the peers");
            return -1;
        }
        vio_timer_init(&d->peer_timer, on_peer_beat, d);
        vio_timer_arm(d->loop, &d->peer_timer, vigil_sender_next(d->peer_sender));
    }
    if (d->leader) {
        struct vigil_addr self;
        memset(&self, 0, sizeof(self));
        self.family = AF_INET;
        if (watch_sender(d, ETCD_NODE, &self, 1, leader_ttl(d->leader) / 3, keys, n_keys,
                         local_send, &d->etcd_sender) != 0) {
            snprintf(err, cap, "monitor.etcd: cannot start watching etcd");
            return -1;
        }
    }
    return 0;
}

/* This monitor's name among its peers: monitor.name, or the host name. 0, or -1 with err set. */
static int monitor_name(struct monitord *d, char *err, size_t cap)
{
    const struct vcfg_monitor *mc = &d->cfg.monitor;
    if (mc->name)
        snprintf(d->api_ctx.name, sizeof(d->api_ctx.name), "%s", mc->name);
    else if (d->cfg.peer.on && d->cfg.peer.id) /* a member leads under its own id */
        snprintf(d->api_ctx.name, sizeof(d->api_ctx.name), "%s", d->cfg.peer.id);
    else if (vcfg_host_id(d->api_ctx.name, sizeof(d->api_ctx.name)) != 0) {
        snprintf(err, cap, "monitor.%s needs monitor.name: the host name is not a valid name",
                 mc->n_etcd ? "etcd" : "peers");
        return -1;
    }
    return 0;
}

/* Starts the candidate and, with hooks, the gate in front of them. 0, or -1 with err set. */
/*
 * The failover groups of the configuration; prev (NULL: none) is the set
 * they replace on a reload, whose records carry over by group name.
 */
static int setup_groups(struct monitord *d, const json_t *prev, char *err, size_t cap)
{
    const struct vcfg_monitor *mc = &d->cfg.monitor;
    if (!mc->n_groups)
        return 0;
    struct groups_opts go = {
        .loop = d->loop,
        .procs = d->env->procs,
        .store = mstore_store(d->store),
        .groups = mc->groups,
        .n_groups = mc->n_groups,
        .state_of = node_state,
        .custom_of = node_custom,
        .held = hold_reason,
        .may_act = may_act,
        .note = group_note,
        .log = groups_log,
        .arg = d,
    };
    return groups_new(&go, prev, &d->groups, err, cap);
}

/* The runner of the configuration's actions, with its driver for the built-in kinds. */
static int setup_actions(struct monitord *d, char *err, size_t cap)
{
    const struct vcfg_monitor *mc = &d->cfg.monitor;
    if (!mc->n_hooks)
        return 0;
    if (hook_runner_new(d->loop, d->env->procs, mc->hooks, mc->n_hooks, hook_log, d, &d->hooks) ||
        hook_runner_set_limits(d->hooks, mc->hook_queue, mc->hook_queue_total)) {
        snprintf(err, cap, "cannot set up the actions");
        return -1;
    }
    hook_runner_set_hold(d->hooks, hold_reason, d);
    hook_runner_set_matcher(d->hooks, node_custom, d);
    hook_runner_set_observer(d->hooks, action_observed, d);
    bool builtin = false;
    for (size_t i = 0; i < mc->n_hooks; i++)
        builtin |= mc->hooks[i].kind != VCFG_ACT_EXEC;
    struct actions_opts ao = {
        .env = d->env,
        .store = mstore_store(d->store),
        .runner = d->hooks,
        .hooks = mc->hooks,
        .n_hooks = mc->n_hooks,
        .monitor = mc->name,
        .custom_of = node_custom,
        .state_of = node_state,
        .log = actions_log,
        .record = delivery_recorded,
        .arg = d,
    };
    if (builtin && actions_new(&ao, &d->actions, err, cap) != 0)
        return -1;
    actions_resume(d->actions);
    d->api_ctx.hooks = d->hooks;
    d->api_ctx.actlog = d->hooks ? &d->actlog : NULL;
    return 0;
}

/* With an election and actions: the gate that lets only the leader act, in front of the runner. */
static int setup_gate(struct monitord *d, char *err, size_t cap);

/*
 * A reload's new list of actions waits this long at most for the running
 * ones to end (new events wait meanwhile): then they are stopped, and
 * their events run again under the new list (actions are idempotent).
 */
#define ACTIONS_RELOAD_WAIT (30 * VIGIL_NSEC_PER_SEC)

struct evbuf {
    struct evrec *v;
    size_t n, cap;
    bool oom;
};

static void collect_event(void *arg, const struct evrec *ev)
{
    struct evbuf *b = arg;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        struct evrec *v = realloc(b->v, cap * sizeof(*v));
        if (!v) {
            b->oom = true;
            return;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = *ev;
}

/*
 * Puts a reload's new list of actions in place once nothing runs (else
 * tries again shortly): the runner, its driver and the gate are made anew,
 * and the events waiting for the old list are handed to the new one, in
 * order. Whatever the outbox keeps (webhooks, alerts firing) resumes.
 */
static void apply_actions(struct monitord *d)
{
    if (!d->next_pending)
        return;
    hook_runner_freeze(d->hooks); /* the events waiting now go to the new list */
    vigil_time_t now = vio_now(d->loop);
    if (hook_runner_busy(d->hooks) && now < d->next_deadline) {
        vio_timer_arm(d->loop, &d->actions_timer, now + 200 * VIGIL_NSEC_PER_MSEC);
        return;
    }
    if (hook_runner_busy(d->hooks))
        log_line(d, "vigil monitor: actions: still running after the reload's wait: stopped, "
                    "and their events run again under the new list");
    struct evbuf b = {0};
    if (d->hooks)
        hook_runner_take(d->hooks, collect_event, &b);
    actgate_free(d->gate);
    d->gate = NULL;
    d->api_ctx.gate = NULL;
    hook_runner_free(d->hooks);
    d->hooks = NULL;
    d->api_ctx.hooks = NULL;
    d->api_ctx.actlog = NULL;
    actions_free(d->actions);
    d->actions = NULL;
    struct vcfg_monitor *om = &d->cfg.monitor;
    for (size_t i = 0; i < om->n_hooks; i++)
        vcfg_hook_free(&om->hooks[i]);
    memcpy(om->hooks, d->next_hooks, d->n_next_hooks * sizeof(om->hooks[0]));
    om->n_hooks = d->n_next_hooks;
    d->n_next_hooks = 0;
    d->next_pending = false;
    char err[400], line[600];
    if (setup_actions(d, err, sizeof(err)) != 0 || setup_gate(d, err, sizeof(err)) != 0) {
        snprintf(line, sizeof(line), "vigil monitor: actions: cannot apply the new list: %s", err);
        log_line(d, line);
    }
    size_t carried = 0;
    for (size_t i = 0; i < b.n && d->hooks; i++)
        carried += hook_runner_submit(d->hooks, &b.v[i]) == 0;
    snprintf(line, sizeof(line),
             "vigil monitor: actions: the new list of %zu actions applies; %zu waiting events "
             "carried over%s",
             om->n_hooks, carried, b.oom ? " (some lost: out of memory)" : "");
    log_line(d, line);
    free(b.v);
}

static void on_actions_timer(void *arg, vigil_time_t now)
{
    (void)now;
    apply_actions(arg);
}
static int setup_gate(struct monitord *d, char *err, size_t cap)
{
    if (!d->leader || !d->hooks)
        return 0;
    const struct vcfg_monitor *mc = &d->cfg.monitor;
    struct vio_http *h2 = NULL;
    if (d->env->http_open(d->env, &h2) != 0) {
        snprintf(err, cap, "monitor.etcd: no HTTP client for the actions' claims");
        return -1;
    }
    struct actgate_opts go = {
        .loop = d->loop,
        .http = h2,
        .leader = d->leader,
        .hooks = d->hooks,
        .prefix = mc->etcd_prefix ? mc->etcd_prefix : "/vigil",
        .local_node = ETCD_NODE,
        .state_of = node_state,
        .log = gate_log,
        .arg = d,
    };
    if (actgate_new(&go, &d->gate) != 0) {
        snprintf(err, cap, "monitor.etcd: out of memory");
        return -1;
    }
    d->api_ctx.gate = d->gate;
    return 0;
}

static int start_election(struct monitord *d, struct vio_env *env, char *err, size_t cap)
{
    const struct vcfg_monitor *mc = &d->cfg.monitor;
    const char *prefix = mc->etcd_prefix ? mc->etcd_prefix : "/vigil";
    char key[256];
    snprintf(key, sizeof(key), "%s/leader", prefix);
    struct vio_http *h1 = NULL;
    if (!env->http_open || env->http_open(env, &h1) != 0) {
        snprintf(err, cap, "monitor.etcd: no HTTP client in this environment");
        return -1;
    }
    struct leader_opts lo = {
        .endpoints = (const char *const *)mc->etcd,
        .n_endpoints = mc->n_etcd,
        .key = key,
        .id = d->api_ctx.name,
        .ttl = mc->etcd_ttl,
        .on_change = on_leader_change,
        .on_renewed = on_renewed,
        .arg = d,
    };
    uint64_t r = 0;
    env->random(env, &r, sizeof(r));
    vigil_time_t period = (mc->etcd_ttl ? mc->etcd_ttl : LEADER_TTL_DEFAULT) / 3;
    lo.first_tick = 1 + (vigil_time_t)(r % (uint64_t)(period - 1));
    if (leader_new(d->loop, h1, &lo, &d->leader) != 0) {
        vio_http_close(h1);
        snprintf(err, cap, "monitor.etcd: cannot set up the election");
        return -1;
    }
    d->api_ctx.leader = d->leader;
    vio_timer_init(&d->resign_timer, on_resigned, d);
    if (setup_gate(d, err, cap) != 0)
        return -1;
    if (leader_start(d->leader) != 0) {
        snprintf(err, cap, "monitor.etcd: cannot start the election");
        return -1;
    }
    char line[512];
    snprintf(line, sizeof(line),
             "vigil monitor: redundant monitors: %s campaigns for %s at %s%s (lease %llds); "
             "actions wait for leadership",
             d->api_ctx.name, key, mc->etcd[0], mc->n_etcd > 1 ? " and the other members" : "",
             (long long)((mc->etcd_ttl ? mc->etcd_ttl : LEADER_TTL_DEFAULT) / VIGIL_NSEC_PER_SEC));
    log_line(d, line);
    return 0;
}

/* Drops: summarized once a minute at the default level; each one at debug. */
#define DROPS_WINDOW      (60 * VIGIL_NSEC_PER_SEC)
#define DROPS_DEBUG_LINES 20 /* per second, at most */

static void drops_line(void *arg, const char *text)
{
    char line[600];
    snprintf(line, sizeof(line), "vigil monitor: %s", text);
    log_at(arg, VCFG_LOG_WARN, line);
}

static void on_drops_window(void *arg, vigil_time_t now)
{
    struct monitord *d = arg;
    drops_flush(d->drops, (double)DROPS_WINDOW / VIGIL_NSEC_PER_SEC, drops_line, d);
    d->drops_since = now;
    vio_timer_arm(d->loop, &d->drops_timer, now + DROPS_WINDOW);
}

/* A datagram the core refused (rc): noted for the summary, and logged at debug level. */
static void note_drop(struct monitord *d, int rc, const struct vio_dgram *dg, bool unknown_key,
                      bool unsealed, vigil_time_t now)
{
    int r = drops_reason(rc, unknown_key, unsealed);
    if (r < 0 || !d->drops)
        return;
    const char *id = NULL;
    size_t id_len = 0;
    if (vigil_wire_peek_id(dg->buf, dg->len, &id, &id_len) != 0)
        id_len = 0;
    drops_note(d->drops, &dg->from, id, id_len, (enum drop_reason)r);
    if (d->cfg.monitor.log_level < VCFG_LOG_DEBUG)
        return;
    if (now - d->debug_window >= VIGIL_NSEC_PER_SEC) {
        d->debug_window = now;
        d->debug_lines = 0;
    }
    if (d->debug_lines++ >= DROPS_DEBUG_LINES)
        return;
    char addr[64], line[400];
    vigil_addr_format(&dg->from, addr, sizeof(addr));
    snprintf(line, sizeof(line), "vigil monitor: dropped %zu bytes from %s%s%.*s: %s (%s)", dg->len,
             addr, id_len ? " claiming " : "", (int)id_len, id_len ? id : "",
             drops_reason_name((enum drop_reason)r), drops_reason_hint((enum drop_reason)r));
    log_line(d, line);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vigil monitor [options]\n"
               "  -c, --config FILE      read settings from FILE (see docs/configuration.md)\n"
               "  -l, --listen ADDR      UDP address for heartbeats (repeatable; "
               "default " VCFG_LISTEN_DEFAULT ")\n"
               "  -a, --api ADDR         HTTP API address (default " API_DEFAULT_ADDR "; 'off')\n"
               "  -k, --key-file FILE    master key: every node authenticates with its own key\n"
               "      --insecure         run without a key (accept anything), said explicitly\n"
               "      --encrypt          refuse full statuses that are not sealed (encrypted)\n"
               "      --check            check the configuration (file, flags, keys) and exit\n"
               "      --state-file FILE  keep the nodes' high-water marks in FILE\n"
               "      --state-dir DIR    keep marks, node states and events in DIR (SQLite)\n"
               "  -n, --node ID          declare a node (repeatable)\n"
               "  -d, --detector KIND    phi, grid or fixed\n"
               "  -i, --interval DUR     the agents' heartbeat interval (default 1s)\n"
               "      --hook PROGRAM     run PROGRAM on every event (repeatable)\n"
               "      --no-auto-register accept heartbeats only from declared nodes\n"
               "      --log-format F     text or json\n"
               "      --log-file FILE    append the log to FILE (default standard output)\n"
               "      --log-level L      error, warn, info (default) or debug (every dropped\n"
               "                         datagram, with its source and reason)\n\n"
               "SIGTERM or SIGINT: stop. SIGHUP: read the configuration file (and these\n"
               "flags) again and apply it, keeping every node's state; a bad file changes\n"
               "nothing. Settings that need a restart are named in the log.\n");
}

static char *xstrdup(const char *s)
{
    char *r = strdup(s);
    if (!r) {
        fprintf(stderr, "vigil monitor: out of memory\n");
        exit(1);
    }
    return r;
}

/*
 * Parses flags on top of the file (also for a reload: the same file and
 * flags again). Returns 0; -1 after --help; or an exit status, with the
 * reason in msg (cap bytes) and, with usage_on_error, the usage printed.
 */
/* --check was given (set by parse_args). */
static bool check_only;

static int parse_args(struct vcfg *c, int argc, char **argv, char *msg, size_t cap,
                      bool usage_on_error)
{
    enum {
        OPT_HOOK = 256,
        OPT_NOAUTO,
        OPT_LOGFMT,
        OPT_LOGFILE,
        OPT_INSECURE,
        OPT_STATE_FILE,
        OPT_STATE_DIR,
        OPT_ENCRYPT,
        OPT_CHECK,
        OPT_LOGLEVEL
    };
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"listen", required_argument, 0, 'l'},
                                         {"api", required_argument, 0, 'a'},
                                         {"key-file", required_argument, 0, 'k'},
                                         {"node", required_argument, 0, 'n'},
                                         {"detector", required_argument, 0, 'd'},
                                         {"interval", required_argument, 0, 'i'},
                                         {"hook", required_argument, 0, OPT_HOOK},
                                         {"no-auto-register", no_argument, 0, OPT_NOAUTO},
                                         {"log-format", required_argument, 0, OPT_LOGFMT},
                                         {"log-file", required_argument, 0, OPT_LOGFILE},
                                         {"insecure", no_argument, 0, OPT_INSECURE},
                                         {"encrypt", no_argument, 0, OPT_ENCRYPT},
                                         {"state-file", required_argument, 0, OPT_STATE_FILE},
                                         {"state-dir", required_argument, 0, OPT_STATE_DIR},
                                         {"check", no_argument, 0, OPT_CHECK},
                                         {"log-level", required_argument, 0, OPT_LOGLEVEL},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    char err[512];
    struct vcfg_monitor *mc = &c->monitor;
    msg[0] = '\0';
    opterr = usage_on_error;
    c->role = "monitor"; /* an agent section's key file is not this host's to read */

    /* The file first, so that flags override it wherever they stand. */
    optind = 1;
    for (int o; (o = getopt_long(argc, argv, "c:l:a:k:n:d:i:h", opts, NULL)) != -1;) {
        if (o == 'h') {
            usage(stdout);
            return -1;
        }
        if (o == '?') {
            if (usage_on_error)
                usage(stderr);
            return 2;
        }
        if (o == 'c' && vcfg_load(c, optarg, err, sizeof(err))) {
            snprintf(msg, cap, "%s", err);
            return 2;
        }
    }
    bool listen_set = false;
    optind = 1;
    for (int o; (o = getopt_long(argc, argv, "c:l:a:k:n:d:i:h", opts, NULL)) != -1;) {
        switch (o) {
        case 'l':
            if (!listen_set) {
                for (size_t i = 0; i < mc->n_listen; i++)
                    free(mc->listen[i]);
                mc->n_listen = 0;
                listen_set = true;
            }
            if (mc->n_listen == VCFG_MAX_LISTEN) {
                snprintf(msg, cap, "at most %d listen addresses", VCFG_MAX_LISTEN);
                return 2;
            }
            mc->listen[mc->n_listen++] = xstrdup(optarg);
            break;
        case 'a':
            free(mc->api);
            mc->api = xstrdup(optarg);
            break;
        case 'k':
            if (vcfg_monitor_key(mc, optarg, err, sizeof(err))) {
                snprintf(msg, cap, "%s", err);
                return 2;
            }
            mc->key_from_flag = true;
            break;
        case OPT_ENCRYPT:
            mc->core.require_sealed = true;
            break;
        case OPT_CHECK:
            check_only = true;
            break;
        case OPT_INSECURE:
            mc->insecure = true;
            break;
        case OPT_STATE_FILE:
            free(mc->state_file);
            mc->state_file = xstrdup(optarg);
            break;
        case OPT_STATE_DIR:
            free(mc->state_dir);
            mc->state_dir = xstrdup(optarg);
            break;
        case 'n':
            if (mc->n_nodes == VCFG_MAX_NODES) {
                snprintf(msg, cap, "too many declared nodes");
                return 2;
            }
            mc->nodes[mc->n_nodes++] = xstrdup(optarg);
            break;
        case 'd':
        case 'i': {
            vigil_time_t iv = mc->interval;
            enum vigil_detector_kind k = mc->core.detector.kind;
            if (o == 'i' && vcfg_parse_duration(optarg, &iv)) {
                snprintf(msg, cap, "bad --interval '%s'", vigil_quote(optarg).s);
                return 2;
            }
            if (o == 'd') {
                int pk = vigil_detector_kind_parse(optarg);
                if (pk < 0) {
                    snprintf(msg, cap, "--detector must be phi, grid or fixed");
                    return 2;
                }
                k = (enum vigil_detector_kind)pk;
            }
            mc->interval = iv;
            vigil_detector_config_default(&mc->core.detector, k, iv);
            break;
        }
        case OPT_HOOK: {
            if (mc->n_hooks == VCFG_MAX_HOOKS) {
                snprintf(msg, cap, "too many hooks");
                return 2;
            }
            struct vcfg_hook *h = &mc->hooks[mc->n_hooks++];
            vcfg_hook_default(h); /* the same as a hook from the file */
            h->argv[0] = xstrdup(optarg);
            break;
        }
        case OPT_NOAUTO:
            mc->core.auto_register = false;
            break;
        case OPT_LOGFMT:
            if (!strcmp(optarg, "json"))
                mc->log_format = VCFG_LOG_JSON;
            else if (!strcmp(optarg, "text"))
                mc->log_format = VCFG_LOG_TEXT;
            else {
                snprintf(msg, cap, "--log-format must be text or json");
                return 2;
            }
            break;
        case OPT_LOGLEVEL: {
            int lv = vcfg_log_level_parse(optarg);
            if (lv < 0) {
                snprintf(msg, cap, "--log-level must be error, warn, info or debug");
                return 2;
            }
            mc->log_level = (enum vcfg_log_level)lv;
            break;
        }
        case OPT_LOGFILE:
            free(mc->log_file);
            mc->log_file = xstrdup(optarg);
            break;
        default:
            break;
        }
    }
    if (optind < argc) {
        snprintf(msg, cap, "unexpected argument '%s'", vigil_quote(argv[optind]).s);
        return 2;
    }
    /*
     * The state store by default where the monitor has a state directory:
     * systemd's StateDirectory= (the units' /var/lib/vigil) says so in
     * STATE_DIRECTORY (the first, if several). A configuration that names
     * a state_file or a state_dir keeps its own.
     */
    const char *sd = getenv("STATE_DIRECTORY");
    if (!c->monitor.state_dir && !c->monitor.state_file && sd && sd[0] == '/') {
        size_t n = strcspn(sd, ":");
        c->monitor.state_dir = xstrdup(sd);
        c->monitor.state_dir[n] = '\0';
    }
    if (vcfg_check(c, "monitor", err, sizeof(err))) {
        snprintf(msg, cap, "%s", err);
        return 2;
    }
    return 0;
}

static void on_readable(void *arg, vigil_time_t now);

static int open_listener(struct monitord *d, const char *spec, char *err, size_t cap)
{
    struct vigil_addr a;
    if (vigil_addr_parse(spec, VIGIL_DEFAULT_PORT, &a)) {
        snprintf(err, cap, "bad listen address '%s'", vigil_quote(spec).s);
        return -1;
    }
    struct listener *l = &d->socks[d->n_socks];
    struct vio_net *net = d->env->net;
    unsigned threads = d->cfg.monitor.receive_threads;
    size_t rcvbuf = (size_t)d->cfg.monitor.receive_buffer_mb << 20;
    int rc = net->ops->listen ? net->ops->listen(net, d->loop, &a, threads, rcvbuf, &l->t)
                              : net->ops->open(net, d->loop, &a, a.family, &l->t);
    if (rc) {
        snprintf(err, cap, "cannot listen on %s: %s", spec, strerror(-rc));
        return -1;
    }
    l->d = d;
    vio_source_init(&l->t->readable, on_readable, l);
    d->n_socks++;
    return 0;
}

/* Logs a store write that failed (once until one succeeds again). */
static void store_result(struct monitord *d, int rc)
{
    char line[600];
    if (rc && !d->store_failing) {
        snprintf(line, sizeof(line),
                 "vigil monitor: cannot write the state store in %s: %s (kept in memory, "
                 "written again with the next batch)",
                 d->cfg.monitor.state_dir, mstore_error(d->store));
        log_line(d, line);
    } else if (!rc && d->store_failing) {
        snprintf(line, sizeof(line), "vigil monitor: the state store in %s is written again",
                 d->cfg.monitor.state_dir);
        log_line(d, line);
    }
    d->store_failing = rc != 0;
}

/* Hands every pending event of the core to the history, the log, the store and the hooks. */
static void drain_events(struct monitord *d, vigil_time_t now)
{
    struct evrec r;
    int64_t wall = vio_wall_us(d->loop);
    bool any = false;
    /*
     * At most DRAIN_MAX events a turn (the rest on the next, through
     * drain_timer): a burst of a hundred thousand (a cluster registering,
     * a rack losing power) is logged, stored and handed to the hooks in
     * slices of a few milliseconds, with the sockets read in between,
     * rather than in one long turn that lets the kernel drop heartbeats.
     * Events are shown to the API only once committed, so no reader sees
     * one that a crash could lose.
     */
    size_t handed = 0;
    while (handed < d->drain_max && vigil_monitor_poll_event(d->mon, &r.ev)) {
        handed++;
        any = true;
        r.wall_us = wall - (now - r.ev.time) / 1000;
        evlog_push(d->events, &r);
        bool json_log = d->cfg.monitor.log_format == VCFG_LOG_JSON;
        if (json_log || d->store) {
            json_t *o = evrec_to_json(&r);
            char *s = o ? json_dumps(o, JSON_COMPACT | VIGIL_JSON_REAL) : NULL;
            if (!s)
                d->json_failures++;
            else if (json_log)
                log_out(d, s);
            if (d->store)
                mstore_add_event(d->store, &r, s);
            free(s);
            json_decref(o);
        }
        /* An action's attempt has its line from the runner already, with more in it. */
        bool attempt = r.ev.type == VIGIL_EVENT_ACTION && r.ev.sequence > 0;
        if (!json_log && !attempt) {
            char line[1024];
            evrec_format_text(&r, line, sizeof(line));
            log_out(d, line);
        }
        /* Actions act on changes of state, never on their own records (no loop). */
        if (d->holds_ready)
            holds_note(&d->holds, &r);
        if (r.ev.type == VIGIL_EVENT_STATE && r.ev.new_state == VIGIL_STATE_ALIVE)
            actions_node_alive(d->actions, r.ev.node);
        if (d->hooks && r.ev.type != VIGIL_EVENT_ACTION)
            hook_runner_submit(d->hooks, &r);
    }
    /*
     * One transaction for the turn's events, before the API can serve
     * them: an event a reader saw is on disk, and its number is never
     * handed out again.
     */
    if (any && d->store) {
        d->store_dirty = true;
        store_result(d, mstore_commit(d->store));
    }
    if (any)
        groups_check(d->groups);
    if (d->log)
        d->api_ctx.dropped_log = d->json_failures + d->log->ops->dropped(d->log);
    /* Long polls of the events learn of the new ones at once. */
    if (any && d->httpd)
        api_events_wake(&d->api_ctx);
    if (handed == d->drain_max)
        vio_timer_arm(d->loop, &d->drain_timer, vio_now(d->loop)); /* perhaps more */
}

/*
 * Notes that the loop could not run from `since` until now: a datagram
 * waited that long to be read, or a timer fired that late. Past
 * pause_tolerance that is a stall of the monitor (settled in
 * settle_stall once the backlog is read).
 */
static void note_lag(struct monitord *d, vigil_time_t since, vigil_time_t now)
{
    if (since >= d->stall_end && now - since > d->cfg.monitor.core.pause_tolerance &&
        since < d->stall_since)
        d->stall_since = since;
}

/*
 * Reads what waits on one listener, at most max_batches batches; true if
 * more may wait. Each datagram goes to the core at its arrival time (the
 * kernel's), never earlier than a time the core has already seen: the
 * core's clock only moves forward.
 */
static bool read_listener(struct listener *l, int max_batches)
{
    struct monitord *d = l->d;
    struct vio_dgram dg[BATCH];
    struct vigil_monitor_dgram md[BATCH];
    for (int b = 0; b < max_batches; b++) {
        for (int i = 0; i < BATCH; i++) {
            dg[i].buf = d->bufs[i];
            dg[i].cap = VIGIL_WIRE_MAX;
        }
        int n = vio_recv(l->t, dg, BATCH);
        if (n < 0) {
            d->api_ctx.recv_errors++;
            return false;
        }
        vigil_time_t now = n > 0 ? vio_now(d->loop) : 0;
        for (int i = 0; i < n; i++) {
            note_lag(d, dg[i].arrival, now);
            if (dg[i].dropped || !dg[i].stamped) {
                d->lost_unread = true;
                d->api_ctx.recv_drops += dg[i].dropped;
            }
            vigil_time_t at = dg[i].arrival > d->fed ? dg[i].arrival : d->fed;
            d->fed = at;
            md[i] = (struct vigil_monitor_dgram){
                .buf = dg[i].buf, .len = dg[i].len, .at = at, .from = &dg[i].from};
        }
        /* The whole batch at once: the core fetches the nodes' records together. */
        vigil_monitor_on_batch(d->mon, md, (size_t)n);
        for (int i = 0; i < n; i++) {
            if (md[i].rc)
                note_drop(d, md[i].rc, &dg[i], md[i].unknown_key, md[i].unsealed, md[i].at);
            else if (md[i].status && vigil_node_custom_count(md[i].status) > 0)
                take_reports(d, md[i].status, md[i].at);
        }
        if (n < BATCH)
            return false;
    }
    return true;
}

/*
 * Once the backlog is read: a stall noted meanwhile is reported once, with
 * its length. Nobody needs forgiving for it when every heartbeat of that
 * time went to the core with its arrival time. When some were lost unread
 * (the socket buffer overflowed) or came without a stamp, the silence of a
 * node during the stall proves nothing: every node gets a fresh detection
 * period instead, and what is read later is taken as arriving now.
 */
static void settle_stall(struct monitord *d, vigil_time_t now)
{
    if (d->stall_since != VIGIL_TIME_NEVER) {
        if (d->lost_unread) {
            vigil_monitor_forgive(d->mon, now, now - d->stall_since);
            if (d->fed < now)
                d->fed = now;
        } else {
            vigil_monitor_note_pause(d->mon, now, now - d->stall_since);
        }
        d->stall_end = now;
        d->stall_since = VIGIL_TIME_NEVER;
    }
    d->lost_unread = false;
}

static void arm_deadline(struct monitord *d)
{
    vigil_time_t next = vigil_monitor_next_deadline(d->mon);
    if (next == VIGIL_TIME_NEVER)
        vio_timer_disarm(d->loop, &d->deadline);
    else
        vio_timer_arm(d->loop, &d->deadline, next);
}

static void on_readable(void *arg, vigil_time_t now)
{
    struct listener *l = arg;
    struct monitord *d = l->d;
    if (read_listener(l, MAX_BATCHES)) {
        vio_source_ready(d->loop, &l->t->readable); /* the rest on the next turn */
    } else {
        bool caught_up = true;
        for (size_t i = 0; i < d->n_socks; i++)
            caught_up &= !d->socks[i].t->readable.ready;
        if (caught_up)
            settle_stall(d, vio_now(d->loop));
    }
    drain_events(d, now);
    arm_deadline(d);
}

/*
 * The core's deadline. Everything queued on the listeners is read first
 * (up to MAX_DRAIN batches), so that no node is judged by heartbeats that
 * reached the host but were not read yet; then the core decides what is
 * due. A backlog larger than that (a long stall of a large cluster) is
 * read over the next turns before anything is judged, at most
 * MAX_DEFERRALS turns in a row, so that a flood cannot stop judgement.
 */
static void on_deadline(void *arg, vigil_time_t now)
{
    struct monitord *d = arg;
    bool more = false, pending = false;
    for (size_t i = 0; i < d->n_socks; i++) {
        if (read_listener(&d->socks[i], MAX_DRAIN)) {
            vio_source_ready(d->loop, &d->socks[i].t->readable);
            more = true;
        } else if (vio_pending(d->socks[i].t)) {
            /* Receive threads not caught up (after a stop of the whole process, say). */
            pending = true;
        }
    }
    now = vio_now(d->loop);
    note_lag(d, d->deadline.at, now);
    if ((more || pending) && d->deferrals < MAX_DEFERRALS) {
        d->deferrals++;
        vio_timer_arm(d->loop, &d->deadline, more ? now : now + PENDING_WAIT);
        drain_events(d, now);
        return;
    }
    d->deferrals = 0;
    settle_stall(d, now);
    if (now < d->fed)
        now = d->fed;
    d->fed = now;
    if (now >= vigil_monitor_next_deadline(d->mon))
        vigil_monitor_on_expiry(d->mon, now);
    drain_events(d, now);
    arm_deadline(d);
}

/* Writes the high-water marks if a heartbeat was accepted since the last write. */
static void save_marks(struct monitord *d, bool always)
{
    const char *path = d->cfg.monitor.state_file;
    uint64_t accepted = vigil_monitor_stats(d->mon)->accepted;
    if (d->store) {
        if (!always) {
            /* A sweep in slices, one a turn (on_sweep), unless one is still under way. */
            if (!d->sweeping &&
                (d->store_dirty || accepted != d->saved_accepted || d->store_failing)) {
                d->sweeping = true;
                d->sweep_at = 0;
                d->sweep_accepted = accepted;
                d->store_dirty = false;
                vio_timer_arm(d->loop, &d->sweep_timer, vio_now(d->loop));
            }
            return;
        }
        d->sweeping = false;
        {
            int rc = mstore_save(d->store, d->mon);
            store_result(d, rc);
            if (rc == 0) {
                d->saved_accepted = accepted;
                d->store_dirty = false;
            }
        }
        return;
    }
    if (!path || !d->marks_loaded || (!always && accepted == d->saved_accepted))
        return;
    int rc = hwm_save(d->env->fs, path, d->mon);
    if (rc) {
        char line[512];
        snprintf(line, sizeof(line), "vigil monitor: cannot write %s: %s", path, strerror(-rc));
        log_line(d, line);
        return;
    }
    d->saved_accepted = accepted;
}

/* One slice of the sweep: MSTORE_SLICE nodes' marks, in their own transaction. */
static void on_sweep(void *arg, vigil_time_t now)
{
    struct monitord *d = arg;
    if (!d->sweeping || !d->store)
        return;
    int rc = mstore_save_slice(d->store, d->mon, &d->sweep_at, MSTORE_SLICE);
    store_result(d, rc);
    if (rc != 0) {
        d->sweeping = false; /* the next state_flush tries again (store_failing) */
        d->store_dirty = true;
        return;
    }
    if (d->sweep_at >= vigil_monitor_node_count(d->mon)) {
        d->sweeping = false;
        d->saved_accepted = d->sweep_accepted;
        return;
    }
    vio_timer_arm(d->loop, &d->sweep_timer, now);
}

static void on_housekeeping(void *arg, vigil_time_t now)
{
    struct monitord *d = arg;
    vigil_monitor_set_wall(d->mon, now, vio_wall_us(d->loop));
    save_marks(d, false);
    vio_timer_arm(d->loop, &d->housekeeping, now + d->cfg.monitor.state_flush);
}

/* "0, 1" for the key ids of keys. */
static void key_ids_text(const struct vigil_key *keys, size_t n, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%u", i ? ", " : "", (unsigned)keys[i].id);
}

int monitord_reload_keys(struct monitord *d, char *err, size_t cap)
{
    struct vcfg_monitor *mc = &d->cfg.monitor;
    if (mc->n_key_files == 0)
        return snprintf(err, cap,
                        "the monitor runs without a key; keys cannot be added while it "
                        "runs (restart it with monitor.key_file)"),
               -1;
    /*
     * The list of key files comes from the configuration file as it is
     * now (a rotation edits monitor.key_file), unless the key was given
     * on the command line: then the same files are read again.
     */
    struct vcfg fresh;
    vcfg_init(&fresh);
    char *const *paths = mc->key_files;
    size_t n = mc->n_key_files;
    if (d->cfg.path && !d->keys_from_flag) {
        if (vcfg_load_fs(&fresh, d->env->fs, d->cfg.path, err, cap) != 0) {
            vcfg_free(&fresh);
            return -1;
        }
        if (fresh.monitor.n_key_files == 0) {
            vcfg_free(&fresh);
            return snprintf(err, cap, "%s names no monitor.key_file now", d->cfg.path), -1;
        }
        paths = fresh.monitor.key_files;
        n = fresh.monitor.n_key_files;
    }
    struct vigil_key keys[VIGIL_KEYS_MAX];
    int rc = vcfg_monitor_read_keys(d->env->fs, paths, n, keys, err, cap);
    if (rc == 0) {
        rc = vigil_monitor_set_keys(d->mon, keys, n);
        if (rc)
            snprintf(err, cap, "%s", vigil_strerror(rc));
    }
    if (rc == 0) {
        char ids[64], line[160];
        watch_rekey(d, keys, n);
        key_ids_text(keys, n, ids, sizeof(ids));
        snprintf(line, sizeof(line), "vigil monitor: keys reloaded: %zu held, key ids %s", n, ids);
        log_line(d, line);
        /* The files now held are the ones read again next time. */
        if (paths != mc->key_files) {
            for (size_t i = 0; i < mc->n_key_files; i++)
                free(mc->key_files[i]);
            memcpy(mc->key_files, fresh.monitor.key_files, sizeof(mc->key_files));
            mc->n_key_files = fresh.monitor.n_key_files;
            memset(fresh.monitor.key_files, 0, sizeof(fresh.monitor.key_files));
            fresh.monitor.n_key_files = 0;
        }
    }
    sodium_memzero(keys, sizeof(keys));
    vcfg_free(&fresh);
    return rc ? -1 : 0;
}

/* POST /v1/keys/reload: what SIGHUP does, asked through the API (with the token). */
static int api_reload_keys(void *ud, char *err, size_t cap)
{
    return monitord_reload_keys(ud, err, cap);
}

static bool same_strs(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!vigil_str_same(a[i], b[i]))
            return false;
    return true;
}

/* Two optional strings alike (both NULL, or equal). */
static bool same_opt(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool same_hooks(const struct vcfg_monitor *a, const struct vcfg_monitor *b)
{
    if (a->n_hooks != b->n_hooks)
        return false;
    for (size_t i = 0; i < a->n_hooks; i++) {
        const struct vcfg_hook *x = &a->hooks[i], *y = &b->hooks[i];
        size_t n = 0;
        while (n < VCFG_MAX_ARGV && (x->argv[n] || y->argv[n]))
            n++;
        if (!same_strs(x->argv, n, y->argv, n) || x->timeout != y->timeout ||
            x->on_states != y->on_states || x->retries != y->retries ||
            x->retry_delay != y->retry_delay || x->kind != y->kind ||
            x->retry_max != y->retry_max || x->undo != y->undo || x->drain != y->drain ||
            x->repeat != y->repeat || x->restart_wait != y->restart_wait ||
            x->reset_after != y->reset_after || !same_opt(x->name, y->name) ||
            !same_opt(x->match_key, y->match_key) || !same_opt(x->match_value, y->match_value) ||
            !same_opt(x->target, y->target) || !same_opt(x->server_key, y->server_key) ||
            !same_opt(x->secret_file, y->secret_file) || !same_opt(x->escalate, y->escalate) ||
            !same_strs(x->nodes, x->n_nodes, y->nodes, y->n_nodes) ||
            !same_strs(x->checks, x->n_checks, y->checks, y->n_checks) ||
            !same_strs(x->servers, x->n_servers, y->servers, y->n_servers) ||
            !same_strs(x->labels, x->n_labels, y->labels, y->n_labels))
            return false;
    }
    return true;
}

static bool same_groups(const struct vcfg_monitor *a, const struct vcfg_monitor *b)
{
    if (a->n_groups != b->n_groups)
        return false;
    for (size_t i = 0; i < a->n_groups; i++) {
        const struct vcfg_group *x = &a->groups[i], *y = &b->groups[i];
        size_t np = 0, nd = 0;
        while (np < VCFG_MAX_ARGV && (x->promote[np] || y->promote[np]))
            np++;
        while (nd < VCFG_MAX_ARGV && (x->demote[nd] || y->demote[nd]))
            nd++;
        if (!same_opt(x->name, y->name) || !same_strs(x->nodes, x->n_nodes, y->nodes, y->n_nodes) ||
            memcmp(x->priority, y->priority, sizeof(x->priority)) ||
            !same_opt(x->primary, y->primary) || !same_opt(x->rank_key, y->rank_key) ||
            x->preempt != y->preempt || x->timeout != y->timeout ||
            !same_strs(x->promote, np, y->promote, np) || !same_strs(x->demote, nd, y->demote, nd))
            return false;
    }
    return true;
}

int monitord_reload(struct monitord *d, char *err, size_t cap)
{
    struct vcfg_monitor *om = &d->cfg.monitor;
    if (!d->argv && !d->cfg.path)
        return monitord_reload_keys(d, err, cap); /* nothing but the key files to read */
    struct vcfg fresh;
    vcfg_init(&fresh);
    fresh.role = d->cfg.role; /* a member reads its own key files, not a monitor's */
    int rc;
    if (d->argv) {
        char msg[600];
        rc = parse_args(&fresh, d->argc, d->argv, msg, sizeof(msg), false);
        if (rc)
            snprintf(err, cap, "%s", msg[0] ? msg : "the command line no longer parses");
    } else {
        rc = vcfg_load_fs(&fresh, d->env->fs, d->cfg.path, err, cap) ||
             vcfg_check(&fresh, "monitor", err, cap);
    }
    struct vcfg_monitor *nm = &fresh.monitor;
    if (rc == 0 && om->core.has_key && nm->n_keys == 0) {
        snprintf(err, cap, "the configuration names no key now; a running monitor keeps its keys");
        rc = -1;
    }
    char applied[512] = "", restart[512] = "";
    vigil_time_t now = vio_now(d->loop);
    if (rc == 0) {
        /* The core's settings: all of them or none (vigil_monitor_reconfigure checks first). */
        nm->core.interval = nm->interval;
        nm->core.arrival_times = true;
        if (nm->pause_tolerance_auto)
            nm->core.pause_tolerance = vcfg_pause_tolerance_auto(nm->interval);
        if (nm->startup_grace_auto)
            nm->core.startup_grace = vcfg_startup_grace_auto(nm);
        bool need_restart = false;
        rc = vigil_monitor_reconfigure(d->mon, now, &nm->core, &need_restart);
        if (rc)
            snprintf(err, cap, "the detector settings: %s", vigil_strerror(rc));
        if (need_restart)
            vigil_list_append(restart, sizeof(restart), "detector type, window or max_nodes");
    }
    if (rc == 0) {
        vigil_list_append(applied, sizeof(applied), "detector, rise, grace and timing settings");
        struct vigil_monitor_config kept = *vigil_monitor_config(d->mon);
        om->core = kept;
        om->interval = nm->interval;
        om->pause_tolerance_auto = nm->pause_tolerance_auto;
        om->startup_grace_auto = nm->startup_grace_auto;
        if (nm->n_keys && om->core.has_key) {
            int krc = vigil_monitor_set_keys(d->mon, nm->keys, nm->n_keys);
            if (krc) {
                vigil_list_append(restart, sizeof(restart), "keys (not changed: out of memory)");
            } else {
                char ids[64], w[96];
                watch_rekey(d, nm->keys, nm->n_keys);
                key_ids_text(nm->keys, nm->n_keys, ids, sizeof(ids));
                snprintf(w, sizeof(w), "keys (key ids %s)", ids);
                vigil_list_append(applied, sizeof(applied), w);
                for (size_t i = 0; i < om->n_key_files; i++)
                    free(om->key_files[i]);
                memcpy(om->key_files, nm->key_files, sizeof(om->key_files));
                om->n_key_files = nm->n_key_files;
                memset(nm->key_files, 0, sizeof(nm->key_files));
                nm->n_key_files = 0;
            }
        } else if (nm->n_keys) {
            vigil_list_append(restart, sizeof(restart),
                              "key_file (the monitor runs without a key)");
        }
        /* Nodes declared now and not yet known. */
        size_t added = 0;
        for (size_t i = 0; i < nm->n_nodes; i++)
            added += vigil_monitor_declare(d->mon, nm->nodes[i], now) == 0;
        if (added) {
            char w[64];
            snprintf(w, sizeof(w), "%zu more declared nodes", added);
            vigil_list_append(applied, sizeof(applied), w);
        }
        if (d->hooks &&
            (nm->hook_queue != om->hook_queue || nm->hook_queue_total != om->hook_queue_total)) {
            if (hook_runner_set_limits(d->hooks, nm->hook_queue, nm->hook_queue_total) == 0) {
                om->hook_queue = nm->hook_queue;
                om->hook_queue_total = nm->hook_queue_total;
                vigil_list_append(applied, sizeof(applied), "hook queue limits");
            }
        }
        if (nm->log_level != om->log_level) {
            om->log_level = nm->log_level;
            vigil_list_append(applied, sizeof(applied), "log level");
        }
        if (!same_hooks(om, nm)) {
            /* In place once nothing runs: the waiting events carry over to the new list. */
            for (size_t i = 0; i < d->n_next_hooks; i++)
                vcfg_hook_free(&d->next_hooks[i]);
            d->n_next_hooks = 0;
            bool ok = true;
            for (size_t i = 0; i < nm->n_hooks && ok; i++) {
                ok = vcfg_hook_copy(&d->next_hooks[i], &nm->hooks[i]) == 0;
                d->n_next_hooks += ok;
            }
            d->next_pending = ok;
            d->next_deadline = vio_now(d->loop) + ACTIONS_RELOAD_WAIT;
            if (ok) {
                bool busy = hook_runner_busy(d->hooks);
                apply_actions(d);
                vigil_list_append(applied, sizeof(applied),
                                  busy ? "actions (once the running ones end)" : "actions");
            } else {
                vigil_list_append(restart, sizeof(restart), "actions (out of memory)");
            }
        }
        if (!same_groups(om, nm)) {
            /* Made anew; each group's record (primary, epoch) carries over by its name. */
            json_t *snap = groups_json(d->groups);
            groups_free(d->groups);
            d->groups = NULL;
            d->api_ctx.groups = NULL;
            for (size_t i = 0; i < om->n_groups; i++)
                vcfg_group_free(&om->groups[i]);
            memcpy(om->groups, nm->groups, nm->n_groups * sizeof(om->groups[0]));
            om->n_groups = nm->n_groups;
            memset(nm->groups, 0, sizeof(nm->groups));
            nm->n_groups = 0;
            for (size_t g = 0; g < om->n_groups; g++)
                for (size_t i = 0; i < om->groups[g].n_nodes; i++)
                    vigil_monitor_declare(d->mon, om->groups[g].nodes[i], vio_now(d->loop));
            char gerr[300];
            if (setup_groups(d, snap, gerr, sizeof(gerr)) != 0) {
                char line[400];
                snprintf(line, sizeof(line), "vigil monitor: groups: cannot apply: %s", gerr);
                log_line(d, line);
            }
            d->api_ctx.groups = d->groups;
            json_decref(snap);
            vigil_list_append(applied, sizeof(applied), "groups");
            groups_check(d->groups);
        }
        if (om->damping.on != nm->damping.on || om->damping.half_life != nm->damping.half_life ||
            om->damping.penalty != nm->damping.penalty ||
            om->damping.suppress != nm->damping.suppress ||
            om->damping.reuse != nm->damping.reuse) {
            struct holds_opts ho = {
                .damping = nm->damping.on,
                .half_life = nm->damping.half_life,
                .penalty = nm->damping.penalty,
                .suppress = nm->damping.suppress,
                .reuse = nm->damping.reuse,
            };
            holds_set_opts(&d->holds, &ho);
            om->damping = nm->damping;
            vigil_list_append(applied, sizeof(applied), "flap damping");
        }
        if (om->n_checks || nm->n_checks || om->n_poll_only || nm->n_poll_only) {
            /* The checks start anew, keeping the status of those that stay (node and name). */
            struct check_set *ns = NULL;
            char cerr[256] = "";
            if (nm->n_checks && check_set_new(d->env, nm->checks, nm->n_checks, on_check_change, d,
                                              &ns, cerr, sizeof cerr) != 0) {
                vigil_list_append(restart, sizeof(restart), "checks (could not start them)");
            } else {
                if (ns)
                    check_set_keys(ns, ping_key, d);
                check_set_inherit(ns, d->checks);
                check_set_free(d->checks);
                d->checks = ns;
                d->api_ctx.checks = ns;
                for (size_t i = 0; i < om->n_checks; i++)
                    vcfg_check_free(&om->checks[i]);
                free(om->checks);
                om->checks = nm->checks;
                om->n_checks = nm->n_checks;
                nm->checks = NULL;
                nm->n_checks = 0;
                for (size_t i = 0; i < nm->n_poll_only; i++)
                    (void)vigil_monitor_declare_polled(d->mon, nm->poll_only[i], vio_now(d->loop));
                for (size_t i = 0; i < om->n_checks; i++)
                    (void)vigil_monitor_declare(d->mon, om->checks[i].node, vio_now(d->loop));
                if (!same_strs(om->poll_only, om->n_poll_only, nm->poll_only, nm->n_poll_only)) {
                    for (size_t i = 0; i < om->n_poll_only; i++) {
                        bool listed = false;
                        for (size_t j = 0; j < nm->n_poll_only && !listed; j++)
                            listed = !strcmp(om->poll_only[i], nm->poll_only[j]);
                        if (!listed) {
                            vigil_list_append(restart, sizeof(restart),
                                              "poll_only (a node no longer listed stays polled)");
                            break;
                        }
                    }
                    for (size_t i = 0; i < om->n_poll_only; i++)
                        free(om->poll_only[i]);
                    for (size_t i = 0; i < nm->n_poll_only; i++)
                        om->poll_only[i] = nm->poll_only[i];
                    om->n_poll_only = nm->n_poll_only;
                    nm->n_poll_only = 0;
                }
                /* A node a removed check held dead is judged again by what remains. */
                for (size_t i = 0; i < vigil_monitor_node_count(d->mon); i++) {
                    const struct vigil_node *n = vigil_monitor_node_at(d->mon, i);
                    if (vigil_node_check_down(n) || vigil_node_polled(n)) {
                        char id[VIGIL_ID_MAX + 1];
                        snprintf(id, sizeof id, "%s", vigil_node_id(n));
                        health_apply(d, id, vio_now(d->loop));
                    }
                }
                arm_deadline(d);
                vio_timer_arm(d->loop, &d->drain_timer, vio_now(d->loop));
                vigil_list_append(applied, sizeof(applied), "checks");
            }
        }
        if (!same_strs(om->listen, om->n_listen, nm->listen, nm->n_listen))
            vigil_list_append(restart, sizeof(restart), "listen");
        if (om->receive_threads != nm->receive_threads ||
            om->receive_buffer_mb != nm->receive_buffer_mb)
            vigil_list_append(restart, sizeof(restart), "receive_threads or receive_buffer_mb");
        if (!vigil_str_same(om->api, nm->api) ||
            !vigil_str_same(om->api_token_file, nm->api_token_file) ||
            !vigil_str_same(om->api_tls_cert, nm->api_tls_cert) ||
            !vigil_str_same(om->api_tls_key, nm->api_tls_key))
            vigil_list_append(restart, sizeof(restart), "api settings");
        if (!vigil_str_same(om->state_file, nm->state_file) || om->state_flush != nm->state_flush)
            vigil_list_append(restart, sizeof(restart), "state_file or state_flush");
        if (!vigil_str_same(om->state_dir, nm->state_dir))
            vigil_list_append(restart, sizeof(restart), "state_dir");
        if (!vigil_str_same(om->log_file, nm->log_file) || om->log_format != nm->log_format)
            vigil_list_append(restart, sizeof(restart), "log settings");
        if (om->event_history != nm->event_history)
            vigil_list_append(restart, sizeof(restart), "event_history");
        if (om->insecure != nm->insecure && !om->core.has_key)
            vigil_list_append(restart, sizeof(restart), "insecure");
        arm_deadline(d);
    }
    sodium_memzero(nm->keys, sizeof(nm->keys));
    vcfg_free(&fresh);
    if (rc)
        return -1;
    char line[1200];
    snprintf(line, sizeof(line), "vigil monitor: configuration reloaded%s%s: applied %s%s%s",
             d->cfg.path ? " from " : "", d->cfg.path ? d->cfg.path : "", applied,
             restart[0] ? "; changed but kept until a restart: " : "", restart);
    log_line(d, line);
    return 0;
}

static void on_signal(void *arg, int signo)
{
    struct monitord *d = arg;
    if (signo == SIGTERM || signo == SIGINT) {
        /* A member tells the others it leaves: they mark it left, not dead. */
        peerd_leave(d->peer);
        if (d->leader && !vio_timer_armed(&d->resign_timer)) {
            /*
             * The lease is revoked first, and the loop turns a little
             * longer for the revocation to reach etcd: a follower takes
             * over at once rather than after the lease's TTL. A second
             * signal stops at once.
             */
            leader_resign(d->leader);
            vio_timer_arm(d->loop, &d->resign_timer, vio_now(d->loop) + RESIGN_WAIT);
            return;
        }
        vio_loop_stop(d->loop);
    } else if (signo == SIGHUP) {
        char err[512], line[600];
        /* systemd waits for READY=1 again before it calls the reload done. */
        vio_notify(d->env, "RELOADING=1");
        int rrc = monitord_reload(d, err, sizeof(err));
        vio_notify(d->env, "READY=1");
        if (rrc != 0) {
            snprintf(line, sizeof(line),
                     "vigil monitor: SIGHUP: configuration not reloaded, the running one stays: %s",
                     err);
            log_line(d, line);
        }
    }
}

int monitord_free(struct monitord *d)
{
    if (!d)
        return 0;
    if (d->mon) {
        if (d->drops)
            drops_flush(d->drops, (double)(vio_now(d->loop) - d->drops_since) / VIGIL_NSEC_PER_SEC,
                        drops_line, d);
        log_line(d, "vigil monitor: stopping");
        vio_notify(d->env, "STOPPING=1");
        if (d->leader)
            leader_resign(d->leader); /* the lease goes now: a follower takes over at once */
        d->drain_max = SIZE_MAX;      /* everything, now */
        drain_events(d, vio_now(d->loop));
        save_marks(d, true);
    }
    check_set_free(d->checks);
    d->checks = NULL;
    rchecks_free(d->rchecks);
    d->rchecks = NULL;
    free(d->drops);
    actgate_free(d->gate);
    if (d->peer_sender) {
        vio_timer_disarm(d->loop, &d->peer_timer);
        vigil_sender_free(d->peer_sender);
    }
    if (d->etcd_sender)
        vigil_sender_free(d->etcd_sender);
    vio_transport_close(d->peer_t4);
    vio_transport_close(d->peer_t6);
    if (d->own)
        sodium_free(d->own);
    if (d->hooks)
        hook_runner_free(d->hooks);
    actions_free(d->actions); /* after the runner, which cancels its calls first */
    groups_free(d->groups);
    vio_timer_disarm(d->loop, &d->actions_timer);
    for (size_t i = 0; i < d->n_next_hooks; i++)
        vcfg_hook_free(&d->next_hooks[i]);
    if (d->holds_ready)
        holds_destroy(&d->holds);
    actlog_free(&d->actlog);
    leader_free(d->leader);
    if (d->httpd) {
        api_abort(&d->api_ctx);
        vio_httpd_close(d->httpd);
    }
    api_token_free(d->api_ctx.token);
    peerd_free(d->peer); /* after the API, which reads it */
    d->peer = NULL;
    for (size_t i = 0; i < d->n_socks; i++)
        vio_transport_close(d->socks[i].t);
    vio_timer_disarm(d->loop, &d->deadline);
    vio_timer_disarm(d->loop, &d->housekeeping);
    vio_timer_disarm(d->loop, &d->drops_timer);
    if (d->leader)
        vio_timer_disarm(d->loop, &d->resign_timer);
    vio_timer_disarm(d->loop, &d->drain_timer);
    vio_timer_disarm(d->loop, &d->sweep_timer);
    mstore_free(d->store);
    evlog_free(d->events);
    vigil_monitor_free(d->mon);
    /* A writer stuck on a full pipe is left to the exit, with its stream. */
    bool stuck = d->log && d->log->ops->close(d->log, 2000) != 0;
    vcfg_free(&d->cfg);
    free(d);
    return stuck ? -1 : 0;
}

struct vigil_monitor *monitord_core(struct monitord *d)
{
    return d->mon;
}

struct evlog *monitord_events(struct monitord *d)
{
    return d->events;
}

struct vio_httpd *monitord_httpd(struct monitord *d)
{
    return d->httpd;
}

/* A setting that works badly (config_warn.c), in the log at start-up. */
static void log_warning(void *arg, const char *msg)
{
    char line[1024];
    snprintf(line, sizeof(line), "vigil monitor: warning: %s", msg);
    log_line(arg, line);
}

static void log_started(struct monitord *d)
{
    const struct vcfg_monitor *mc = &d->cfg.monitor;
    char line[1024];
    const struct vigil_detector_config *dc = &mc->core.detector;
    const char *ids = d->key_ids;
    if (d->peer) {
        /* A member: peerd said where it listens and how; the rest of the daemon here. */
        snprintf(line, sizeof(line),
                 "vigil peer %s: a member, api %s, %zu hooks, authentication %s, leadership %s",
                 VIGIL_VERSION_STRING, d->httpd ? mc->api : "off", mc->n_hooks,
                 d->cfg.peer.key_file ? "the cluster key" : "OFF (insecure)",
                 mc->n_etcd ? "etcd (only the leader acts)" : "none (every member acts)");
        log_line(d, line);
        if (!d->cfg.peer.key_file)
            log_line(d, "vigil peer: warning: running insecure: no key, so any host that can "
                        "reach the member's port can make any member alive, dead or left");
        return;
    }
    int off = snprintf(line, sizeof(line), "vigil monitor %s: listening on", VIGIL_VERSION_STRING);
    for (size_t i = 0; i < mc->n_listen && off < (int)sizeof(line); i++)
        off += snprintf(line + off, sizeof(line) - (size_t)off, " %s", mc->listen[i]);
    if (off < (int)sizeof(line))
        snprintf(line + off, sizeof(line) - (size_t)off,
                 ", api %s, detector %s (suspect %.2f, dead %.2f), %zu declared nodes, "
                 "auto-register %s, authentication %s%s%s, %zu hooks",
                 d->httpd ? mc->api : "off", vigil_detector_kind_name(dc->kind),
                 dc->suspect_threshold, dc->dead_threshold, mc->n_nodes,
                 mc->core.auto_register ? "on" : "off",
                 !mc->core.has_key        ? "OFF (insecure)"
                 : mc->core.key_is_master ? "per-node keys"
                                          : "legacy cluster key",
                 ids, mc->core.require_sealed ? ", statuses sealed" : "", mc->n_hooks);
    log_line(d, line);
    if (mc->state_file) {
        snprintf(line, sizeof(line), "vigil monitor: %d high-water marks restored from %s",
                 d->marks_restored, mc->state_file);
        log_line(d, line);
    }
    if (d->store) {
        const struct mstore_loaded *ld = &d->loaded;
        snprintf(line, sizeof(line),
                 "vigil monitor: state store %s: %zu nodes restored (%zu watched again with "
                 "startup_grace), %zu events in the history, the next event is %llu",
                 mc->state_dir, ld->nodes, ld->declared, ld->events,
                 (unsigned long long)ld->last_seq + 1);
        log_line(d, line);
    }
    if (!mc->core.has_key)
        log_line(d, "vigil monitor: warning: running insecure: no key, so any host that can "
                    "reach the listening port can make any node alive, dead or left");
    else if (!mc->core.key_is_master)
        log_line(d, "vigil monitor: warning: a legacy cluster key: every node can speak for "
                    "every other; use a master key and node keys (docs/security.md)");
}

static void peer_changed(void *arg, vigil_time_t now)
{
    struct monitord *d = arg;
    drain_events(d, now);
    arm_deadline(d);
}

/* vigil peer: the membership protocol on its socket, its verdicts into the core. */
static int start_peer(struct monitord *d, char *err, size_t cap)
{
    struct peerd_opts o = {
        .env = d->env,
        .cfg = &d->cfg.peer,
        .mon = d->mon,
        .changed = peer_changed,
        .log = hook_log,
        .arg = d,
    };
    if (peerd_new(&o, &d->peer, err, cap) != 0)
        return -1;
    d->api_ctx.peer_members = peerd_members_json;
    d->api_ctx.peer_health = peerd_health_json;
    d->api_ctx.peer_metrics = peerd_metrics_text;
    d->api_ctx.peer_ud = d->peer;
    d->api_ctx.peer_auth = peerd_auth(d->peer);
    return 0;
}

int monitord_new(struct vio_env *env, struct vcfg *cfg, struct monitord **out, char *err,
                 size_t cap)
{
    *out = NULL;
    struct monitord *d = calloc(1, sizeof(*d));
    if (!d) {
        vcfg_free(cfg);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    d->env = env;
    d->loop = env->loop;
    d->cfg = *cfg; /* the daemon owns the settings from here on */
    memset(cfg, 0, sizeof(*cfg));
    vio_timer_init(&d->deadline, on_deadline, d);
    vio_timer_init(&d->housekeeping, on_housekeeping, d);
    vio_timer_init(&d->drain_timer, on_drain_timer, d);
    vio_timer_init(&d->actions_timer, on_actions_timer, d);
    vio_timer_init(&d->sweep_timer, on_sweep, d);
    d->drain_max = DRAIN_MAX;
    vio_timer_init(&d->drops_timer, on_drops_window, d);
    struct vcfg_monitor *mc = &d->cfg.monitor;
    /* Safe by default: accepting anything from anyone must be asked for. */
    if (!mc->core.has_key && !mc->insecure && !d->cfg.peer.on) {
        snprintf(err, cap,
                 "no key: give monitor.key_file (a master key, vigil keygen -o FILE), or set "
                 "monitor.insecure = true (--insecure) to accept unauthenticated heartbeats");
        monitord_free(d);
        return -1;
    }
    if (env->log_open(env, mc->log_file, &d->log, err, cap)) {
        monitord_free(d);
        return -1;
    }

    vigil_time_t now = vio_now(d->loop);
    d->fed = now;
    d->stall_end = now;
    d->stall_since = VIGIL_TIME_NEVER;
    env->random(env, mc->core.hash_seed, sizeof(mc->core.hash_seed));
    mc->core.interval = mc->interval;
    /* Every datagram comes with its arrival time (see read_listener and settle_stall). */
    mc->core.arrival_times = true;
    if (mc->pause_tolerance_auto)
        mc->core.pause_tolerance = vcfg_pause_tolerance_auto(mc->interval);
    if (mc->startup_grace_auto)
        mc->core.startup_grace = vcfg_startup_grace_auto(mc);
    int rc = vigil_monitor_new(&mc->core, now, &d->mon);
    d->keys_from_flag = mc->key_from_flag;
    if (mc->n_keys) {
        char ids[64];
        key_ids_text(mc->keys, mc->n_keys, ids, sizeof(ids));
        snprintf(d->key_ids, sizeof(d->key_ids), " (key id%s %s)", mc->n_keys > 1 ? "s" : "", ids);
    }
    /* More keys than the first: a rotation in progress. */
    if (rc == 0 && mc->n_keys > 1)
        rc = vigil_monitor_set_keys(d->mon, mc->keys, mc->n_keys);
    /*
     * The core keeps what it needs of the keys; these copies go now, but
     * for the one the monitor's own heartbeats need, until they start.
     */
    d->own = sodium_malloc(sizeof(*d->own) * VIGIL_KEYS_MAX);
    if (d->own) {
        d->n_own = mc->n_keys;
        memcpy(d->own, mc->keys, sizeof(*d->own) * VIGIL_KEYS_MAX);
        if (d->n_own == 0 && mc->core.has_key) {
            d->own[0].id = mc->core.key_id;
            d->own[0].master = mc->core.key_is_master;
            memcpy(d->own[0].key, mc->core.key, sizeof(d->own[0].key));
            d->n_own = 1;
        }
    }
    sodium_memzero(mc->core.key, sizeof(mc->core.key));
    sodium_memzero(mc->keys, sizeof(mc->keys));
    d->events = evlog_new(mc->event_history);
    if (rc || !d->events) {
        snprintf(err, cap, "cannot start: %s", vigil_strerror(rc ? rc : -VIGIL_ENOMEM));
        monitord_free(d);
        return -1;
    }
    for (size_t i = 0; i < mc->n_nodes; i++) {
        int drc = vigil_monitor_declare(d->mon, mc->nodes[i], now);
        if (drc && drc != -VIGIL_EEXIST) {
            snprintf(err, cap, "cannot declare node %s: %s", mc->nodes[i], vigil_strerror(drc));
            monitord_free(d);
            return -1;
        }
    }
    /*
     * A failover group's members are declared: one that never reports is
     * dead after startup_grace, so that a primary that did not come back
     * while the monitor was down is failed over all the same.
     */
    for (size_t g = 0; g < mc->n_groups; g++)
        for (size_t i = 0; i < mc->groups[g].n_nodes; i++) {
            int drc = vigil_monitor_declare(d->mon, mc->groups[g].nodes[i], now);
            if (drc && drc != -VIGIL_EEXIST) {
                snprintf(err, cap, "cannot declare node %s: %s", mc->groups[g].nodes[i],
                         vigil_strerror(drc));
                monitord_free(d);
                return -1;
            }
        }
    vigil_monitor_set_wall(d->mon, now, vio_wall_us(d->loop));
    if (mc->state_file) {
        int n = hwm_load(env->fs, mc->state_file, d->mon, mc->state_flush, now, err, cap);
        if (n < 0) {
            monitord_free(d);
            return -1;
        }
        d->saved_accepted = vigil_monitor_stats(d->mon)->accepted;
        d->marks_loaded = true;
        d->marks_restored = n;
    }
    if (mc->state_dir) {
        if (mstore_open(env, mc, d->mon, d->events, now, &d->store, &d->loaded, err, cap)) {
            monitord_free(d);
            return -1;
        }
        d->saved_accepted = vigil_monitor_stats(d->mon)->accepted;
    }
    vio_timer_arm(d->loop, &d->housekeeping, now + mc->state_flush);
    d->drops = calloc(1, sizeof(*d->drops));
    d->api_ctx.drops = d->drops;
    d->drops_since = now;
    if (d->drops)
        vio_timer_arm(d->loop, &d->drops_timer, now + DROPS_WINDOW);
    /* A member takes no heartbeats: its socket is the membership protocol's (peerd). */
    for (size_t i = 0; i < mc->n_listen && !d->cfg.peer.on; i++)
        if (open_listener(d, mc->listen[i], err, cap)) {
            monitord_free(d);
            return -1;
        }
    struct holds_opts ho = {
        .damping = mc->damping.on,
        .half_life = mc->damping.half_life,
        .penalty = mc->damping.penalty,
        .suppress = mc->damping.suppress,
        .reuse = mc->damping.reuse,
    };
    if (holds_init(&d->holds, d->loop, &ho, hold_changed, d) != 0) {
        snprintf(err, cap, "cannot start: out of memory");
        monitord_free(d);
        return -1;
    }
    d->holds_ready = true;
    restore_maint(d);
    actlog_init(&d->actlog);
    if (setup_groups(d, NULL, err, cap) != 0 || setup_actions(d, err, cap) != 0 ||
        setup_checks(d, err, cap) != 0) {
        monitord_free(d);
        return -1;
    }
    if (!d->own) {
        snprintf(err, cap, "cannot start: out of memory");
        monitord_free(d);
        return -1;
    }
    if (((mc->n_etcd || mc->n_peers) && monitor_name(d, err, cap)) ||
        (mc->n_etcd && start_election(d, env, err, cap)) ||
        start_watch(d, d->own, d->n_own, err, cap)) {
        monitord_free(d);
        return -1;
    }
    sodium_free(d->own); /* sodium_free wipes it */
    d->own = NULL;
    d->api_ctx.mon = d->mon;
    d->api_ctx.reload_keys = api_reload_keys;
    d->api_ctx.reload_keys_ud = d;
    d->api_ctx.events = d->events;
    d->api_ctx.hooks = d->hooks;
    d->api_ctx.actlog = d->hooks ? &d->actlog : NULL;
    d->api_ctx.holds = &d->holds;
    d->api_ctx.groups = d->groups;
    d->api_ctx.failover = api_failover;
    d->api_ctx.failover_ud = d;
    d->api_ctx.maint = api_maint;
    d->api_ctx.maint_ud = d;
    d->api_ctx.loop = d->loop;
    d->api_ctx.started_mono = now;
    d->api_ctx.started_wall_us = vio_wall_us(d->loop);
    api_init(&d->api_ctx);
    if (mc->api && *mc->api && strcmp(mc->api, "off")) {
        /* The token file and HTTPS as the settings say (api_serve.c). */
        if (api_open(&d->api_ctx, env, mc, &d->httpd, err, cap)) {
            monitord_free(d);
            return -1;
        }
    }
    if (d->cfg.peer.on && start_peer(d, err, cap)) {
        monitord_free(d);
        return -1;
    }
    vio_loop_on_signal(d->loop, on_signal, d);
    log_started(d);
    vcfg_warnings(&d->cfg, log_warning, d);
    arm_deadline(d);
    /* Listeners and API are open: systemd may start what depends on the monitor. */
    vio_notify(env, "READY=1");
    *out = d;
    return 0;
}

int cmd_monitor(int argc, char **argv)
{
    struct vcfg cfg;
    vcfg_init(&cfg);
    char msg[600];
    int rc = parse_args(&cfg, argc, argv, msg, sizeof(msg), true);
    if (rc) {
        if (rc > 0 && msg[0])
            fprintf(stderr, "vigil monitor: %s\n", msg);
        vcfg_free(&cfg);
        return rc < 0 ? 0 : rc;
    }
    /* --check: the file and the flags are valid (keys read, relations checked); nothing runs. */
    if (check_only) {
        char more[64] = "";
        if (cfg.monitor.n_checks || cfg.monitor.n_poll_only)
            snprintf(more, sizeof more, ", %zu checks, %zu polled nodes", cfg.monitor.n_checks,
                     cfg.monitor.n_poll_only);
        printf("%s: the monitor's configuration is valid (%zu declared nodes, %zu hooks, %zu "
               "keys%s)\n",
               cfg.path ? cfg.path : "(no file)", cfg.monitor.n_nodes, cfg.monitor.n_hooks,
               cfg.monitor.n_keys, more);
        vcfg_free(&cfg);
        return 0;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "vigil monitor: libsodium failed to initialise\n");
        vcfg_free(&cfg);
        return 1;
    }
    /* A hook that closes its stdin early must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    struct vio_env *env;
    rc = vio_env_real_new(&env, true);
    if (rc) {
        fprintf(stderr, "vigil monitor: cannot start: %s\n", strerror(-rc));
        vcfg_free(&cfg);
        return 1;
    }
    struct monitord *d;
    char err[512];
    if (monitord_new(env, &cfg, &d, err, sizeof(err))) {
        fprintf(stderr, "vigil monitor: %s\n", err);
        vio_env_real_free(env);
        return 1;
    }
    /* A reload (SIGHUP) reads the same file and flags again. */
    d->argc = argc;
    d->argv = argv;
    rc = vio_loop_run(env->loop);
    if (rc)
        log_line(d, "vigil monitor: the event loop failed");
    bool stuck = monitord_free(d) != 0;
    vio_env_real_free(env);
    if (stuck) {
        /*
         * The writer still holds the log stream in a write nobody reads:
         * exit() would wait on that stream's lock to flush it, and standard
         * error may be the same pipe. Leave now, saying nothing more.
         */
        _exit(rc ? 1 : 0);
    }
    return rc ? 1 : 0;
}
