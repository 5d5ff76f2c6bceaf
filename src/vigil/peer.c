/*
 * vigil peer: a member of a peer-to-peer cluster (docs/peer.md). A thin
 * loop around the SWIM core (src/core/swim.c) on the vio environment: one
 * UDP socket, one timer at the core's next deadline, the seeds asked again
 * every second until a member answers, and a small JSON API of the
 * members as this one sees them. SIGTERM or SIGINT: the member leaves
 * (tells the others, who mark it left) and exits.
 *
 * Not yet: the monitor's API, CLI, hooks and actions against a peer; a
 * configuration section (flags only for now).
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cmds.h"
#include "config.h"
#include "fmt.h"
#include "io/vio.h"
#include <vigil/swim.h>

#define PEER_SEEDS_MAX  8
#define PEER_EVENTS_MAX 1000
#define PEER_JOIN_EVERY VIGIL_NSEC_PER_SEC

struct peer {
    struct vio_env *env;
    struct vio_loop *loop;
    struct vigil_swim *swim;
    struct vio_transport *t;
    struct vio_timer timer, join_timer;
    struct vio_httpd *httpd;
    struct vigil_addr seeds[PEER_SEEDS_MAX];
    size_t n_seeds;
    struct vigil_swim_event events[PEER_EVENTS_MAX]; /* a ring of the latest */
    size_t ev_head, ev_len;
    bool leaving;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vigil peer: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static void arm(struct peer *p)
{
    vigil_time_t at = vigil_swim_next_deadline(p->swim);
    vio_timer_disarm(p->loop, &p->timer);
    (void)vio_timer_arm(p->loop, &p->timer, at);
}

/* Sends what the core wants sent, and takes its events. */
static void pump(struct peer *p)
{
    struct vigil_swim_send out;
    while (vigil_swim_poll_send(p->swim, &out))
        (void)vio_send(p->t, &out.to, out.buf, out.len);
    struct vigil_swim_event e;
    while (vigil_swim_poll_event(p->swim, &e)) {
        say("event %" PRIu64 ": %s %s -> %s (%s, incarnation %" PRIu32 ")", e.seq, e.id,
            vigil_state_name(e.old_state), vigil_state_name(e.new_state), e.reason, e.incarnation);
        p->events[(p->ev_head + p->ev_len) % PEER_EVENTS_MAX] = e;
        if (p->ev_len < PEER_EVENTS_MAX)
            p->ev_len++;
        else
            p->ev_head = (p->ev_head + 1) % PEER_EVENTS_MAX;
    }
    arm(p);
}

static void on_timer(void *arg, vigil_time_t now)
{
    struct peer *p = arg;
    vigil_swim_on_expiry(p->swim, now);
    pump(p);
}

static void on_readable(void *arg, vigil_time_t now)
{
    struct peer *p = arg;
    uint8_t bufs[16][1300];
    for (int round = 0; round < 64; round++) {
        struct vio_dgram dg[16];
        for (int i = 0; i < 16; i++) {
            dg[i].buf = bufs[i];
            dg[i].cap = 1280;
        }
        int n = vio_recv(p->t, dg, 16);
        for (int i = 0; i < n; i++)
            if (dg[i].len <= 1280)
                (void)vigil_swim_on_datagram(p->swim, dg[i].arrival > now ? now : dg[i].arrival,
                                             dg[i].buf, dg[i].len, &dg[i].from);
        if (n < 16)
            break;
        if (round == 63)
            vio_source_ready(p->loop, &p->t->readable);
    }
    if (now >= vigil_swim_next_deadline(p->swim))
        vigil_swim_on_expiry(p->swim, now);
    pump(p);
}

/* Until a member is known, the seeds are asked again every second. */
static void on_join(void *arg, vigil_time_t now)
{
    struct peer *p = arg;
    if (p->n_seeds == 0 || vigil_swim_member_count(p->swim) > 0)
        return;
    vigil_swim_join(p->swim, now, p->seeds, p->n_seeds);
    pump(p);
    (void)vio_timer_arm(p->loop, &p->join_timer, now + PEER_JOIN_EVERY);
}

static void on_signal(void *arg, int signo)
{
    struct peer *p = arg;
    if (signo != SIGTERM && signo != SIGINT)
        return;
    say("%s: leaving", signo == SIGTERM ? "SIGTERM" : "SIGINT");
    vigil_swim_leave(p->swim, vio_now(p->loop));
    pump(p);
    vio_loop_stop(p->loop);
}

/* GET /v1/members: this member and the others as it sees them; GET /v1/events. */
static void handle(void *arg, const struct vio_http_request *req, struct vio_http_response *resp)
{
    struct peer *p = arg;
    json_t *o = NULL;
    vigil_time_t now = vio_now(p->loop);
    if (!strcmp(req->path, "/v1/members")) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < vigil_swim_member_count(p->swim); i++) {
            struct vigil_swim_member m;
            if (!vigil_swim_member_at(p->swim, i, &m))
                continue;
            char addr[64];
            vigil_addr_format(&m.addr, addr, sizeof addr);
            json_array_append_new(a, json_pack("{sssssssIsf}", "id", m.id, "addr", addr, "state",
                                               vigil_state_name(m.state), "incarnation",
                                               (json_int_t)m.incarnation, "since_s",
                                               (double)(now - m.state_since) / VIGIL_NSEC_PER_SEC));
        }
        const struct vigil_swim_stats *st = vigil_swim_stats(p->swim);
        o = json_pack(
            "{sIsIso*s{sIsIsIsIsIsI}}", "incarnation", (json_int_t)vigil_swim_incarnation(p->swim),
            "awareness", (json_int_t)vigil_swim_awareness(p->swim), "members", a, "stats", "sent",
            (json_int_t)st->sent, "received", (json_int_t)st->received, "probes",
            (json_int_t)st->probes, "probes_failed", (json_int_t)st->probes_failed, "suspicions",
            (json_int_t)st->suspicions, "refutations", (json_int_t)st->refutations);
    } else if (!strcmp(req->path, "/v1/events")) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < p->ev_len; i++) {
            const struct vigil_swim_event *e = &p->events[(p->ev_head + i) % PEER_EVENTS_MAX];
            json_array_append_new(a,
                                  json_pack("{sIsssssssssI}", "seq", (json_int_t)e->seq, "node",
                                            e->id, "old_state", vigil_state_name(e->old_state),
                                            "new_state", vigil_state_name(e->new_state), "reason",
                                            e->reason, "incarnation", (json_int_t)e->incarnation));
        }
        o = json_pack("{so*}", "events", a);
    }
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    resp->status = s ? 200 : 404;
    resp->content_type = "application/json";
    if (!s)
        s = strdup("{\"error\":\"not found\"}");
    resp->body = s;
    resp->body_len = s ? strlen(s) : 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vigil peer --id ID --listen IP:PORT [--seed IP:PORT]... (--key-file FILE | "
               "--insecure)\n"
               "                  [--api IP:PORT] [--interval DURATION] [--no-lifeguard]\n"
               "  A member of a peer-to-peer cluster (SWIM with Lifeguard; docs/peer.md).\n"
               "  --key-file FILE  the cluster's key (vigil keygen): every message is tagged with "
               "it\n"
               "  --api IP:PORT    GET /v1/members and /v1/events (default: none)\n"
               "SIGTERM or SIGINT: leave (the others mark this member left) and exit 0.\n");
}

int cmd_peer(int argc, char **argv)
{
    const char *id = NULL, *listen = NULL, *key_file = NULL, *api = NULL;
    const char *seeds[PEER_SEEDS_MAX];
    size_t n_seeds = 0;
    bool insecure = false, lifeguard = true;
    vigil_time_t interval = VIGIL_NSEC_PER_SEC;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--insecure")) {
            insecure = true;
        } else if (!strcmp(a, "--no-lifeguard")) {
            lifeguard = false;
        } else if (v && !strcmp(a, "--id")) {
            id = v, i++;
        } else if (v && !strcmp(a, "--listen")) {
            listen = v, i++;
        } else if (v && !strcmp(a, "--key-file")) {
            key_file = v, i++;
        } else if (v && !strcmp(a, "--api")) {
            api = v, i++;
        } else if (v && !strcmp(a, "--seed") && n_seeds < PEER_SEEDS_MAX) {
            seeds[n_seeds++] = v, i++;
        } else if (v && !strcmp(a, "--interval")) {
            if (vcfg_parse_duration(v, &interval) != 0 || interval < 10 * VIGIL_NSEC_PER_MSEC) {
                fprintf(stderr, "vigil peer: --interval %s: a duration of 10ms or more\n", v);
                return 2;
            }
            i++;
        } else {
            fprintf(stderr, "vigil peer: unknown or incomplete option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!id || !vigil_id_valid(id, strlen(id)) || !listen || (!key_file && !insecure)) {
        fprintf(stderr, "vigil peer: --id (a node id), --listen and --key-file (or --insecure) "
                        "are needed\n");
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    struct vigil_swim_config c;
    vigil_swim_config_default(&c);
    c.id = id;
    c.lifeguard = lifeguard;
    c.probe_interval = interval;
    c.probe_timeout = interval / 2;
    if (key_file) {
        enum vcfg_key_kind kind;
        char node[VIGIL_ID_MAX + 1], err[512];
        if (vcfg_read_key(key_file, c.key, &kind, node, err, sizeof err) != 0) {
            fprintf(stderr, "vigil peer: %s\n", err);
            return 1;
        }
        c.has_key = true;
    }
    struct vio_env *env;
    if (vio_env_real_new(&env, false) != 0)
        return 1;
    struct peer p;
    memset(&p, 0, sizeof(p));
    p.env = env;
    p.loop = env->loop;
    const char *why = "invalid address";
    struct vigil_addr la;
    if (env->net->ops->resolve(env->net, listen, 7946, &la, &why) < 0) {
        fprintf(stderr, "vigil peer: --listen %s: %s\n", listen, why);
        vio_env_real_free(env);
        return 2;
    }
    for (size_t i = 0; i < n_seeds; i++)
        if (env->net->ops->resolve(env->net, seeds[i], 7946, &p.seeds[p.n_seeds++], &why) < 0) {
            fprintf(stderr, "vigil peer: --seed %s: %s\n", seeds[i], why);
            vio_env_real_free(env);
            return 2;
        }
    c.addr = la;
    env->random(env, &c.seed, sizeof c.seed);
    int rc = vigil_swim_new(&c, vio_now(p.loop), &p.swim);
    sodium_memzero(c.key, sizeof c.key);
    if (rc == 0)
        rc = env->net->ops->open(env->net, p.loop, &la, la.family, &p.t);
    if (rc != 0) {
        fprintf(stderr, "vigil peer: cannot start on %s: %s\n", listen,
                rc < 0 && rc > -200 ? strerror(-rc) : vigil_strerror(rc));
        vigil_swim_free(p.swim);
        vio_env_real_free(env);
        return 1;
    }
    vio_source_init(&p.t->readable, on_readable, &p);
    vio_timer_init(&p.timer, on_timer, &p);
    vio_timer_init(&p.join_timer, on_join, &p);
    if (api) {
        char err[256];
        struct vio_httpd_opts o = {.addr = api};
        if (!env->httpd_open || env->httpd_open(env, &o, handle, &p, &p.httpd, err, sizeof err)) {
            fprintf(stderr, "vigil peer: api %s: %s\n", api, err);
            vio_transport_close(p.t);
            vigil_swim_free(p.swim);
            vio_env_real_free(env);
            return 1;
        }
    }
    vio_loop_on_signal(p.loop, on_signal, &p);
    say("id=%s listen=%s seeds=%zu lifeguard=%s%s", id, listen, p.n_seeds, lifeguard ? "on" : "off",
        c.has_key ? "" : " (insecure: no key)");
    (void)vio_timer_arm(p.loop, &p.join_timer, vio_now(p.loop));
    arm(&p);
    vio_loop_run(p.loop);
    vio_timer_disarm(p.loop, &p.timer);
    vio_timer_disarm(p.loop, &p.join_timer);
    vio_httpd_close(p.httpd);
    vio_transport_close(p.t);
    vigil_swim_free(p.swim);
    vio_env_real_free(env);
    return 0;
}
