/*
 * The running agent: a thin loop around a vigil_sender, on a vio
 * environment (so the simulator runs the same code as `vigil agent`).
 *
 * A timer at the sender's next slot of the heartbeat grid (an absolute
 * deadline on the monotonic clock, so the rhythm never drifts) refreshes
 * the custom status and beats. The sender samples load, memory and uptime
 * through the environment and sends through one transport per address
 * family in use. On SIGTERM or SIGINT (delivered by the loop, so one that
 * arrives while the agent works is taken at the next turn, never lost) the
 * agent sends the goodbye heartbeat (the LEAVING flag, twice against one
 * lost datagram), so the monitors mark the node "left" at once instead of
 * convicting it as dead a few seconds later, and stops the loop.
 *
 * Custom status comes from three places, applied in this order, later ones
 * winning for the same key: the config file's static pairs, --set flags,
 * and the status file. The status file is how other programs on the node
 * (a deploy script, a health check, vigil set) publish state without
 * talking to the agent: before each beat the agent stats it and re-reads
 * it only when its inode, size or modification time changed, so an
 * unchanged file costs one system call per heartbeat. A bad line is
 * reported once (when the file changes) with its file name and line number
 * and skipped; the other lines still apply.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sys/socket.h>

#include "fmt.h"
#include "agentd.h"
#include "checks.h"
#include "core/schedule.h"
#include "io/sender_io.h"

/* At most one line per this long for each kind of recurring complaint. */
#define AGENT_LOG_EVERY (10 * VIGIL_NSEC_PER_SEC)
/* Room for one log line; longer ones are cut. */
#define AGENT_LINE_MAX 1024
/*
 * Room for one monitor in the start-up line: "[v6 address]:port" is at most
 * 54 bytes, and a host name that does not fit is cut, not overflowed.
 */
#define AGENT_MONITOR_LOG 64

/* At most one line per AGENT_LOG_EVERY. */
struct ratelimit {
    vigil_time_t last;
    bool used;
};

struct agentd {
    struct vio_env *env;
    struct vio_loop *loop;
    struct vio_log *log; /* NULL: standard error */
    /*
     * The agent section alone, taken out of the configuration: the whole
     * of it is 100 KB, mostly the monitor's settings, and a small agent
     * keeps none of that resident.
     */
    struct vcfg_agent ac;
    struct vigil_sender *sender;
    struct vio_transport *t4, *t6; /* one sender socket per family in use */
    struct agent_pairs base;       /* config pairs, then --set pairs */
    bool file_seen;                /* the status file existed at the last look */
    struct vio_stat file_st;       /* and was this one */
    bool file_checked;             /* the status file was looked at once */
    struct ratelimit send_log, late_log;
    bool failing;               /* the last heartbeat had send errors */
    vigil_time_t failing_since; /* since when */
    uint64_t failing_errors;    /* the error count when it began */
    bool goodbye_failed;        /* neither goodbye reached every monitor */
    uint64_t errors_reported;
    struct vio_timer beat;
    int stop_signal;
    agentd_load_fn load; /* SIGHUP: the settings again (NULL: the key file only) */
    void *load_arg;
    /* agent.checks: the host's services, reported as custom pairs (check.NAME). */
    struct check_set *checks;
    struct vigil_custom check_pairs[VCFG_AGENT_MAX_CHECKS];
    size_t n_check_pairs;
    uint64_t check_sends; /* heartbeats sent at once for a check's change */
    /* agent.listen: the monitors' pings (ping checks) answered here. */
    struct vio_transport *echo;
    uint8_t echo_mac[VIGIL_WIRE_MAC_KEY_LEN]; /* the node's tag key (with a key) */
    uint8_t echo_key_id;
    vigil_time_t echo_window; /* the second the answers are counted in */
    uint32_t echo_sent;       /* answers in it, at most AGENT_ECHO_PER_S */
    struct ratelimit echo_log;
};

/* Answers to pings a second, at most: an agent cannot be made to flood anyone. */
#define AGENT_ECHO_PER_S 1000

static void say(struct agentd *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct agentd *a, const char *fmt, ...)
{
    char line[AGENT_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (a->log)
        a->log->ops->write(a->log, line);
    else
        fprintf(stderr, "%s\n", line);
}

static bool ratelimit_ok(struct ratelimit *r, vigil_time_t now)
{
    if (r->used && now - r->last < AGENT_LOG_EVERY)
        return false;
    r->used = true;
    r->last = now;
    return true;
}

/* Makes pairs the sender's custom status; reports what does not fit. */
static void apply_pairs(struct agentd *a, const struct agent_pairs *pairs)
{
    vigil_sender_clear_custom(a->sender);
    /* The checks' pairs first: a status file full of pairs does not push them out. */
    for (size_t i = 0; i < a->n_check_pairs; i++)
        (void)vigil_sender_set_custom(a->sender, a->check_pairs[i].key, a->check_pairs[i].value);
    for (size_t i = 0; i < pairs->n; i++) {
        int rc = vigil_sender_set_custom(a->sender, pairs->p[i].key, pairs->p[i].value);
        if (rc < 0)
            say(a, "vigil agent: custom status '%s' dropped: %s", vigil_quote(pairs->p[i].key).s,
                vigil_strerror(rc));
    }
}

/* Collects the lines agent_status_read reports. */
static void say_line(void *arg, const char *line)
{
    say(arg, "vigil agent: %s", line);
}

/* Re-reads the status file if it changed since the last look (always the first time). */
static void refresh_status(struct agentd *a)
{
    const char *path = a->ac.status_file;
    if (path == NULL) {
        if (!a->file_checked)
            apply_pairs(a, &a->base);
        a->file_checked = true;
        return;
    }
    struct vio_fs *fs = a->env->fs;
    struct vio_stat st;
    int rc = fs->ops->stat(fs, path, &st);
    bool seen = rc == 0;
    if (!seen && rc != -ENOENT && (!a->file_checked || a->file_seen))
        say(a, "vigil agent: %s: %s", path, strerror(-rc));
    if (a->file_checked && seen == a->file_seen &&
        (!seen || (st.ino == a->file_st.ino && st.size == a->file_st.size &&
                   st.mtime_ns == a->file_st.mtime_ns)))
        return;
    a->file_checked = true;
    a->file_seen = seen;
    if (seen)
        a->file_st = st;
    struct agent_pairs pairs;
    if (seen)
        agent_status_load(fs, path, &a->base, &pairs, say_line, a);
    else
        pairs = a->base;
    apply_pairs(a, &pairs);
}

/* One heartbeat, and a (rate-limited) line about send errors. */
/*
 * One heartbeat, and what went wrong: send errors (rate limited) while
 * they last, and one line when sending works again. Returns true if the
 * heartbeat reached every monitor's socket.
 */
static bool beat(struct agentd *a, bool leaving)
{
    errno = 0;
    uint64_t before = vigil_sender_errors(a->sender);
    int rc = vigil_sender_beat(a->sender, leaving);
    int err = errno;
    uint64_t total = vigil_sender_errors(a->sender);
    vigil_time_t now = vio_now(a->loop);
    if (rc < 0 && rc != -VIGIL_ESYS)
        say(a, "vigil agent: heartbeat not sent: %s", vigil_strerror(rc));
    bool ok = rc == 0 && total == before;
    if (!ok && !a->failing) {
        a->failing = true;
        a->failing_since = now;
        a->failing_errors = before;
    }
    if (total > a->errors_reported && (leaving || ratelimit_ok(&a->send_log, now))) {
        say(a, "vigil agent: %" PRIu64 " send error(s) (%" PRIu64 " in all), the last: %s",
            total - a->errors_reported, total, err != 0 ? strerror(err) : "unknown");
        a->errors_reported = total;
    }
    if (ok && a->failing) {
        a->failing = false;
        say(a, "vigil agent: sending works again, after %" PRIu64 " send error(s) over %.1fs",
            total - a->failing_errors, (double)(now - a->failing_since) / VIGIL_NSEC_PER_SEC);
        a->errors_reported = total;
    }
    return ok;
}

/*
 * A check of the host changed its status: its pair changes, and a
 * heartbeat with the full status goes out at once rather than at the next
 * slot (the sender owes it VIGIL_SENDER_STATUS_REPEAT times, so the next
 * heartbeats repeat it); the schedule of heartbeats does not move.
 */
static void on_check_change(void *arg, const struct check_info *c, enum check_status old,
                            const struct check_result *r, vigil_time_t now)
{
    struct agentd *a = arg;
    (void)now;
    char key[VIGIL_CUSTOM_KEY_MAX + 1], value[VIGIL_CUSTOM_VAL_MAX + 1];
    check_pair_format(c->name, c->status, c->cfg->critical_means_dead == 1, r, key, value);
    size_t i = 0;
    while (i < a->n_check_pairs && strcmp(a->check_pairs[i].key, key) != 0)
        i++;
    if (i == a->n_check_pairs) {
        if (a->n_check_pairs == VCFG_AGENT_MAX_CHECKS)
            return;
        a->n_check_pairs++;
    }
    snprintf(a->check_pairs[i].key, sizeof(a->check_pairs[i].key), "%s", key);
    snprintf(a->check_pairs[i].value, sizeof(a->check_pairs[i].value), "%s", value);
    int rc = vigil_sender_set_custom(a->sender, key, value);
    if (rc < 0)
        say(a, "vigil agent: check %s not reported: %s", c->name, vigil_strerror(rc));
    say(a, "vigil agent: check %s %s -> %s: %s", c->name, check_status_name(old),
        check_status_name(c->status), r->detail);
    if (rc == 0) {
        a->check_sends++;
        beat(a, false);
    }
}

/* Pings from the monitors: each valid one for this node gets its pong, to where it came from. */
static void on_pings(void *arg, vigil_time_t now)
{
    struct agentd *a = arg;
    struct vcfg_agent *ac = &a->ac;
    uint8_t bufs[16][VIGIL_WIRE_ECHO_MAX + 1];
    for (int round = 0; round < 64; round++) {
        struct vio_dgram dg[16];
        for (int i = 0; i < 16; i++) {
            dg[i].buf = bufs[i];
            dg[i].cap = VIGIL_WIRE_ECHO_MAX;
        }
        int n = vio_recv(a->echo, dg, 16);
        for (int i = 0; i < n; i++) {
            struct vigil_echo e;
            int rc = dg[i].len > VIGIL_WIRE_ECHO_MAX
                         ? -VIGIL_ETOOBIG
                         : vigil_wire_decode_echo(dg[i].buf, dg[i].len,
                                                  ac->has_key ? a->echo_mac : NULL, &e);
            if (rc == 0 && (e.type != VIGIL_MSG_PING || strcmp(e.id, ac->id) != 0))
                rc = -VIGIL_EBADID;
            if (rc != 0) {
                if (ratelimit_ok(&a->echo_log, now))
                    say(a, "vigil agent: a ping refused: %s", vigil_strerror(rc));
                continue;
            }
            if (now - a->echo_window >= VIGIL_NSEC_PER_SEC) {
                a->echo_window = now;
                a->echo_sent = 0;
            }
            if (a->echo_sent >= AGENT_ECHO_PER_S)
                continue;
            a->echo_sent++;
            e.type = VIGIL_MSG_PONG;
            e.key_id = a->echo_key_id;
            uint8_t out[VIGIL_WIRE_ECHO_MAX];
            int len = vigil_wire_encode_echo(&e, ac->has_key ? a->echo_mac : NULL, out, sizeof out);
            if (len > 0)
                (void)vio_send(a->echo, &dg[i].from, out, (size_t)len);
        }
        if (n < 16)
            break;
        if (round == 63) /* more waiting: the rest on the next turn */
            vio_source_ready(a->loop, &a->echo->readable);
    }
}

static void on_beat(void *arg, vigil_time_t now)
{
    struct agentd *a = arg;
    vigil_time_t due = a->beat.at;
    refresh_status(a);
    uint64_t missed = vigil__sched_missed(due, a->ac.interval, now);
    if (missed > 0 && ratelimit_ok(&a->late_log, now))
        say(a, "vigil agent: ran %s late (stopped or starved); %" PRIu64 " heartbeat(s) skipped",
            vigil_dur(now - due).s, missed);
    beat(a, false);
    vio_timer_arm(a->loop, &a->beat, vigil_sender_next(a->sender));
}

/*
 * SIGHUP: reads the key file again and sends with that key from the next
 * heartbeat on (a key rotation). A key file that cannot be used now
 * changes nothing: the agent keeps the key it has and says why.
 */
static void reload_key(struct agentd *a)
{
    struct vcfg_agent *ac = &a->ac;
    if (!ac->has_key || !ac->key_file) {
        say(a, "vigil agent: SIGHUP: no key file to read again (only the key is reloaded)");
        return;
    }
    uint8_t key[VIGIL_WIRE_KEY_LEN], kid = 0;
    enum vcfg_key_kind kind;
    char node[VIGIL_ID_MAX + 1], err[512];
    const char *why = NULL;
    if (vcfg_read_key_fs(a->env->fs, ac->key_file, key, &kind, node, &kid, err, sizeof(err)))
        why = err;
    else if (kind == VCFG_KEY_MASTER)
        why = "the master key; an agent needs its own node key";
    else if (kind == VCFG_KEY_NODE && strcmp(node, ac->id) != 0)
        why = "the node key of another id";
    else if (vigil_sender_set_key(a->sender, key, kid) != 0)
        why = "the sender refused it";
    if (!why) {
        vigil_wire_mac_key(a->echo_mac, key);
        a->echo_key_id = kid;
    }
    sodium_memzero(key, sizeof(key));
    if (why) {
        say(a, "vigil agent: SIGHUP: key file %s not used, the key stays: %s", ac->key_file, why);
        return;
    }
    say(a, "vigil agent: SIGHUP: key reloaded from %s: key id %u", ac->key_file, (unsigned)kid);
}

void agentd_set_reload(struct agentd *a, agentd_load_fn load, void *arg)
{
    a->load = load;
    a->load_arg = arg;
}

int agentd_reload(struct agentd *a, char *err, size_t cap)
{
    if (!a->load) {
        reload_key(a);
        return 0;
    }
    /* On the heap, freed before the return: a configuration is 100 KB (see struct agentd). */
    struct vcfg *fresh = malloc(sizeof(*fresh));
    struct agent_pairs base;
    if (!fresh) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    vcfg_init(fresh);
    if (a->load(a->load_arg, fresh, &base, err, cap) != 0) {
        vcfg_free(fresh);
        free(fresh);
        return -1;
    }
    struct vcfg_agent *na = &fresh->agent, *oa = &a->ac;
    int rc = 0;
    if (na->has_key && na->key_node[0] && strcmp(na->key_node, oa->id) != 0) {
        snprintf(err, cap, "the key file is the node key of %s, not of %s", na->key_node, oa->id);
        rc = -1;
    } else if (oa->has_key && !na->has_key) {
        snprintf(err, cap, "the configuration names no key now; a running agent keeps its key");
        rc = -1;
    }
    char applied[256] = "", restart[256] = "";
    if (rc == 0) {
        if (na->has_key && oa->has_key) {
            if (vigil_sender_set_key(a->sender, na->key, na->key_id) == 0) {
                vigil_wire_mac_key(a->echo_mac, na->key);
                a->echo_key_id = na->key_id;
                char w[48];
                snprintf(w, sizeof(w), "key (key id %u)", (unsigned)na->key_id);
                vigil_list_append(applied, sizeof(applied), w);
                oa->key_id = na->key_id;
                free(oa->key_file);
                oa->key_file = na->key_file;
                na->key_file = NULL;
            }
        } else if (na->has_key) {
            vigil_list_append(restart, sizeof(restart), "key_file (the agent runs without a key)");
        }
        /* The custom status: the file's pairs and --set, then the status file on top. */
        a->base = base;
        free(oa->status_file);
        oa->status_file = na->status_file;
        na->status_file = NULL;
        a->file_checked = false;
        refresh_status(a);
        vigil_list_append(applied, sizeof(applied), "custom status");
        if (!vigil_str_same(na->id, oa->id))
            vigil_list_append(restart, sizeof(restart), "id");
        bool monitors_same = na->n_monitors == oa->n_monitors;
        for (size_t i = 0; monitors_same && i < na->n_monitors; i++)
            monitors_same = vigil_str_same(na->monitors[i], oa->monitors[i]);
        if (!monitors_same)
            vigil_list_append(restart, sizeof(restart), "monitors");
        if (na->interval != oa->interval)
            vigil_list_append(restart, sizeof(restart), "interval");
        if (na->encrypt != oa->encrypt)
            vigil_list_append(restart, sizeof(restart), "encrypt");
        if (na->wire_version != oa->wire_version || na->status_every != oa->status_every)
            vigil_list_append(restart, sizeof(restart), "wire_version or status_every");
        if (!vigil_str_same(na->generation_file, oa->generation_file))
            vigil_list_append(restart, sizeof(restart), "generation_file");
        bool checks_same = na->n_checks == oa->n_checks;
        for (size_t i = 0; checks_same && i < na->n_checks; i++) {
            const struct vcfg_check *x = &na->checks[i], *y = &oa->checks[i];
            checks_same = vigil_str_same(x->name, y->name) && x->kind == y->kind &&
                          vigil_str_same(x->target, y->target) && vigil_str_same(x->url, y->url) &&
                          vigil_str_same(x->argv[0], y->argv[0]) && x->interval == y->interval &&
                          x->timeout == y->timeout && x->rise == y->rise && x->fall == y->fall;
        }
        if (!checks_same)
            vigil_list_append(restart, sizeof(restart), "checks");
    }
    sodium_memzero(na->key, sizeof(na->key));
    vcfg_free(fresh);
    free(fresh);
    vio_trim_heap();
    if (rc)
        return -1;
    say(a, "vigil agent: configuration reloaded: applied %s%s%s", applied,
        restart[0] ? "; changed but kept until a restart: " : "", restart);
    return 0;
}

static void on_signal(void *arg, int signo)
{
    struct agentd *a = arg;
    if (signo == SIGHUP) {
        char err[512];
        vio_notify(a->env, "RELOADING=1");
        int rrc = agentd_reload(a, err, sizeof(err));
        vio_notify(a->env, "READY=1");
        if (rrc != 0)
            say(a, "vigil agent: SIGHUP: configuration not reloaded, the running one stays: %s",
                err);
        return;
    }
    if (signo != SIGTERM && signo != SIGINT) {
        say(a, "vigil agent: signal %d ignored", signo);
        return;
    }
    if (a->stop_signal)
        return;
    a->stop_signal = signo;
    vio_notify(a->env, "STOPPING=1");
    /*
     * The goodbye: twice, so that one lost datagram does not turn a clean
     * shutdown into a death (the monitor ignores the second once the node
     * has left).
     */
    bool sent = beat(a, true);
    sent |= beat(a, true);
    a->goodbye_failed = !sent;
    if (sent)
        say(a, "vigil agent: %s: goodbye sent, exiting",
            signo == SIGTERM ? "Terminated" : "Interrupt");
    else
        say(a,
            "vigil agent: %s: the goodbye could NOT be sent to every monitor (send errors "
            "above); a monitor that did not get it will declare this node dead, exiting",
            signo == SIGTERM ? "Terminated" : "Interrupt");
    vio_timer_disarm(a->loop, &a->beat);
    vio_loop_stop(a->loop);
}

/* The sender's view of the world: the environment's clock, sampling and transports. */
static vigil_time_t io_now(void *arg)
{
    return vio_now(((struct agentd *)arg)->loop);
}

static int64_t io_wall_us(void *arg)
{
    return vio_wall_us(((struct agentd *)arg)->loop);
}

static int io_send(void *arg, const struct vigil_addr *to, const uint8_t *buf, size_t len)
{
    struct agentd *a = arg;
    struct vio_transport **t = to->family == AF_INET6 ? &a->t6 : &a->t4;
    if (!*t) {
        int rc = a->env->net->ops->open(a->env->net, a->loop, NULL, to->family, t);
        if (rc)
            return rc;
    }
    return vio_send(*t, to, buf, len);
}

static int io_sample(void *arg, struct vigil_status *st)
{
    struct agentd *a = arg;
    return a->env->sample_status(a->env, st);
}

int agentd_new(struct vio_env *env, struct vcfg *cfg, const struct agent_pairs *base,
               struct vio_log *log, struct agentd **out, char *err, size_t cap)
{
    *out = NULL;
    struct agentd *a = calloc(1, sizeof(*a));
    if (!a) {
        if (log)
            log->ops->close(log, 1000);
        vcfg_free(cfg);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    a->env = env;
    a->loop = env->loop;
    a->log = log;
    a->ac = cfg->agent;
    memset(&cfg->agent, 0, sizeof(cfg->agent));
    vcfg_free(cfg);
    a->base = *base;
    vio_timer_init(&a->beat, on_beat, a);
    struct vcfg_agent *ac = &a->ac;

    /* A node key speaks for one id: the monitor would refuse every heartbeat of another. */
    if (ac->has_key && ac->key_node[0] && strcmp(ac->key_node, ac->id) != 0) {
        snprintf(err, cap, "the key file is the node key of %s, not of %s", ac->key_node, ac->id);
        agentd_free(a);
        return -1;
    }
    struct vigil_sender_config sc;
    vigil_sender_config_default(&sc);
    /* A generation file that cannot serve is warned about, never fatal (see agent.c). */
    if (ac->generation_file &&
        agent_generation_next(env->fs, ac->generation_file, (uint64_t)vio_wall_us(a->loop),
                              &sc.generation, err, cap) != 0) {
        say(a, "vigil agent: warning: %s", err);
        err[0] = '\0';
    }
    struct vigil_addr dests[VIGIL_SENDER_MAX_MONITORS];
    for (size_t i = 0; i < ac->n_monitors; i++) {
        const char *why = "invalid address";
        if (env->net->ops->resolve(env->net, ac->monitors[i], VIGIL_DEFAULT_PORT, &dests[i], &why) <
            0) {
            snprintf(err, cap, "monitor '%s': %s", vigil_quote(ac->monitors[i]).s, why);
            agentd_free(a);
            return -1;
        }
    }
    sc.id = ac->id;
    sc.interval = ac->interval;
    sc.key = ac->has_key ? ac->key : NULL;
    sc.key_id = ac->key_id;
    sc.seal = ac->encrypt;
    sc.sample_proc = true;
    sc.status_every = ac->status_every;
    sc.wire_version = ac->wire_version;
    struct vigil__sender_io io = {
        .now = io_now, .wall_us = io_wall_us, .send = io_send, .sample = io_sample, .arg = a};
    int rc = vigil__sender_new_io(&sc, dests, ac->n_monitors, &io, &a->sender);
    if (ac->has_key) {
        vigil_wire_mac_key(a->echo_mac, ac->key);
        a->echo_key_id = ac->key_id;
    }
    /* The sender keeps the tag key it derived; the node key itself is not needed again. */
    sodium_memzero(ac->key, sizeof(ac->key));
    if (rc < 0) {
        snprintf(err, cap, "cannot start: %s", vigil_strerror(rc));
        agentd_free(a);
        return -1;
    }
    vio_loop_on_signal(a->loop, on_signal, a);

    char monitors[VIGIL_SENDER_MAX_MONITORS * AGENT_MONITOR_LOG] = "";
    char iv[32]; /* "3600000ms" at most: an int64 and a unit */
    for (size_t i = 0; i < ac->n_monitors; i++) {
        size_t used = strlen(monitors);
        snprintf(monitors + used, sizeof(monitors) - used, "%s%.*s", i ? "," : "",
                 AGENT_MONITOR_LOG - 2, ac->monitors[i]);
    }
    vigil_format_duration(ac->interval, iv, sizeof(iv));
    say(a, "vigil agent: id=%s generation=%" PRIu64 " monitors=%s interval=%s", ac->id,
        vigil_sender_generation(a->sender), monitors, iv);
    if (ac->listen) {
        struct vigil_addr la;
        const char *why = "invalid address";
        int orc = 0;
        if (env->net->ops->resolve(env->net, ac->listen, 0, &la, &why) < 0 ||
            (orc = env->net->ops->open(env->net, a->loop, &la, la.family, &a->echo)) != 0) {
            snprintf(err, cap, "cannot answer pings on %s: %s", ac->listen,
                     orc ? strerror(-orc) : why);
            agentd_free(a);
            return -1;
        }
        vio_source_init(&a->echo->readable, on_pings, a);
        say(a, "vigil agent: answering pings on %s", ac->listen);
    }
    if (ac->n_checks > 0) {
        for (size_t i = 0; i < ac->n_checks; i++)
            if (ac->checks[i].critical_means_dead < 0)
                ac->checks[i].critical_means_dead = 0;
        if (check_set_new(env, ac->checks, ac->n_checks, on_check_change, a, &a->checks, err,
                          cap) != 0) {
            agentd_free(a);
            return -1;
        }
        say(a, "vigil agent: %zu check(s) of this host, reported in the heartbeats", ac->n_checks);
    }
    vio_timer_arm(a->loop, &a->beat, vigil_sender_next(a->sender));
    vio_notify(env, "READY=1");
    *out = a;
    return 0;
}

bool agentd_goodbye_failed(const struct agentd *a)
{
    return a->goodbye_failed;
}

int agentd_stop_signal(const struct agentd *a)
{
    return a->stop_signal;
}

uint64_t agentd_sent(const struct agentd *a)
{
    return a->sender ? vigil_sender_sent(a->sender) : 0;
}

uint64_t agentd_generation(const struct agentd *a)
{
    return a->sender ? vigil_sender_generation(a->sender) : 0;
}

void agentd_free(struct agentd *a)
{
    if (!a)
        return;
    vio_timer_disarm(a->loop, &a->beat);
    check_set_free(a->checks);
    vio_transport_close(a->echo);
    sodium_memzero(a->echo_mac, sizeof(a->echo_mac));
    vigil_sender_free(a->sender);
    vio_transport_close(a->t4);
    vio_transport_close(a->t6);
    if (a->log)
        a->log->ops->close(a->log, 1000);
    vcfg_agent_free(&a->ac);
    free(a);
}
