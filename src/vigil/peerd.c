/*
 * A member of a peer-to-peer cluster inside the daemon: see peerd.h and
 * docs/peer.md.
 *
 * The loop around the SWIM core: one UDP socket, read in batches, each
 * datagram at its kernel arrival time; one timer at the core's next
 * deadline; the seeds asked again every second until a member answers;
 * this member's status sampled every status_interval and gossiped as its
 * metadata when it changed. What the core decides goes to the monitor
 * core as member states (and statuses), where the daemon's events, API,
 * hooks and actions take it as they take a monitor's verdicts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "evlog.h"
#include "fmt.h"
#include "peercert.h"
#include "peerd.h"
#include <vigil/swim.h>

#define PEER_JOIN_EVERY VIGIL_NSEC_PER_SEC
/* How often the others' metadata is compared with what the monitor core holds. */
#define PEER_SCAN_EVERY VIGIL_NSEC_PER_SEC
#define PEER_BATCH      16
/* This member's status goes out at least this often, changed or not. */
#define PEER_STATUS_REFRESH (600 * VIGIL_NSEC_PER_SEC)
#define PEER_DGRAM_MAX      1280
/* Metadata format 1 (docs/peer.md, "Status"). */
#define META_FORMAT 1
#define META_HEAD   26

struct peerd {
    struct vio_env *env;
    struct vio_loop *loop;
    struct vcfg_peer cfg; /* the strings are borrowed from the daemon's settings */
    struct vigil_monitor *mon;
    struct vigil_swim *swim;
    struct vio_transport *t;
    struct vio_timer timer, join_timer, status_timer, scan_timer;
    struct vigil_addr self_addr;
    struct vigil_addr seeds[VCFG_PEER_MAX_SEEDS];
    size_t n_seeds;
    bool keyed;
    bool sealed;   /* datagrams encrypted */
    bool signing;  /* this member signs its leave and alives */
    bool checking; /* others' leaves and alives checked against the CA */
    bool leaving;
    uint8_t meta[VIGIL_SWIM_META_MAX];
    size_t meta_len;
    struct vigil_status sent; /* the status in meta */
    vigil_time_t sent_at;
    void (*changed)(void *arg, vigil_time_t now);
    void (*log)(void *arg, const char *line);
    void *arg;
    uint8_t bufs[PEER_BATCH][PEER_DGRAM_MAX + 1];
};

static void say(struct peerd *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct peerd *p, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(line, sizeof line, "vigil peer: ");
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (p->log)
        p->log(p->arg, line);
}

/* ---- status as metadata ---------------------------------------------- */

static void put32(uint8_t *b, uint64_t v)
{
    if (v > UINT32_MAX)
        v = UINT32_MAX;
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

size_t peerd_meta_encode(const struct vigil_status *st, const struct vigil_custom *custom,
                         size_t n_custom, uint8_t *buf, size_t *kept)
{
    buf[0] = META_FORMAT;
    buf[1] = 0;
    put32(buf + 2, st->load1_milli);
    put32(buf + 6, st->load5_milli);
    put32(buf + 10, st->load15_milli);
    /* Memory in MiB: a u32 holds 4 PiB. */
    put32(buf + 14, st->mem_total_kib / 1024);
    put32(buf + 18, st->mem_avail_kib / 1024);
    put32(buf + 22, st->uptime_s);
    size_t len = META_HEAD;
    size_t k = 0;
    for (; k < n_custom && k < VIGIL_CUSTOM_MAX; k++) {
        size_t kl = strlen(custom[k].key), vl = strlen(custom[k].value);
        if (len + 2 + kl + vl > VIGIL_SWIM_META_MAX)
            break;
        buf[len++] = (uint8_t)kl;
        memcpy(buf + len, custom[k].key, kl);
        len += kl;
        buf[len++] = (uint8_t)vl;
        memcpy(buf + len, custom[k].value, vl);
        len += vl;
    }
    if (kept)
        *kept = k;
    return len;
}

int peerd_meta_decode(const uint8_t *buf, size_t len, struct vigil_heartbeat *hb)
{
    if (len < META_HEAD || buf[0] != META_FORMAT || len > VIGIL_SWIM_META_MAX)
        return -1;
    hb->status.load1_milli = get32(buf + 2);
    hb->status.load5_milli = get32(buf + 6);
    hb->status.load15_milli = get32(buf + 10);
    hb->status.mem_total_kib = (uint64_t)get32(buf + 14) * 1024;
    hb->status.mem_avail_kib = (uint64_t)get32(buf + 18) * 1024;
    hb->status.uptime_s = get32(buf + 22);
    hb->n_custom = 0;
    size_t at = META_HEAD;
    while (at < len) {
        if (hb->n_custom >= VIGIL_CUSTOM_MAX)
            return -1;
        struct vigil_custom *c = &hb->custom[hb->n_custom];
        size_t kl = buf[at++];
        if (kl == 0 || kl > VIGIL_CUSTOM_KEY_MAX || at + kl >= len)
            return -1;
        memcpy(c->key, buf + at, kl);
        c->key[kl] = '\0';
        at += kl;
        size_t vl = buf[at++];
        if (vl > VIGIL_CUSTOM_VAL_MAX || at + vl > len)
            return -1;
        memcpy(c->value, buf + at, vl);
        c->value[vl] = '\0';
        at += vl;
        if (!vigil_custom_key_valid(c->key) || !vigil_custom_value_valid(c->value))
            return -1;
        hb->n_custom++;
    }
    return 0;
}

/*
 * This member's status, rounded so that an idle host's metadata stays the
 * same from one sample to the next: loads to a tenth, memory to 16 MiB,
 * uptime to the hour (each change is gossiped to every member).
 */
static void sample(struct peerd *p, struct vigil_status *st)
{
    memset(st, 0, sizeof(*st));
    if (!p->env->sample_status || p->env->sample_status(p->env, st) != 0)
        memset(st, 0, sizeof(*st));
    st->load1_milli = (st->load1_milli + 50) / 100 * 100;
    st->load5_milli = (st->load5_milli + 50) / 100 * 100;
    st->load15_milli = (st->load15_milli + 50) / 100 * 100;
    st->mem_total_kib = st->mem_total_kib / 16384 * 16384;
    st->mem_avail_kib = st->mem_avail_kib / 16384 * 16384;
    st->uptime_s = st->uptime_s / 3600 * 3600;
}

/* Hands a member's metadata to the monitor core when it differs from what it holds. */
static void take_meta(struct peerd *p, vigil_time_t now, const char *id, const uint8_t *meta,
                      size_t len)
{
    const struct vigil_node *n = vigil_monitor_find(p->mon, id);
    if (!n || !vigil_node_member(n))
        return;
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    if (len && peerd_meta_decode(meta, len, &hb) != 0)
        return; /* another format: the status stays as it was */
    struct vigil_status stored = vigil_node_status(n);
    const struct vigil_status *st = &stored;
    bool same = st->load1_milli == hb.status.load1_milli &&
                st->load5_milli == hb.status.load5_milli &&
                st->load15_milli == hb.status.load15_milli &&
                st->mem_total_kib == hb.status.mem_total_kib &&
                st->mem_avail_kib == hb.status.mem_avail_kib &&
                st->uptime_s == hb.status.uptime_s && vigil_node_custom_count(n) == hb.n_custom;
    for (size_t i = 0; same && i < hb.n_custom; i++) {
        const struct vigil_custom *c = vigil_node_custom(n, i);
        same = c && !strcmp(c->key, hb.custom[i].key) && !strcmp(c->value, hb.custom[i].value);
    }
    if (same)
        return;
    snprintf(hb.id, sizeof hb.id, "%s", id);
    (void)vigil_monitor_set_member_status(p->mon, now, &hb);
}

/* ---- the loop ---------------------------------------------------------- */

static void arm(struct peerd *p)
{
    vigil_time_t at = vigil_swim_next_deadline(p->swim);
    vio_timer_disarm(p->loop, &p->timer);
    (void)vio_timer_arm(p->loop, &p->timer, at);
}

/* Sends what the core wants sent, takes its events into the monitor core. */
static void pump(struct peerd *p, vigil_time_t now)
{
    struct vigil_swim_send out;
    while (vigil_swim_poll_send(p->swim, &out))
        (void)vio_send(p->t, &out.to, out.buf, out.len);
    struct vigil_swim_event e;
    bool any = false;
    while (vigil_swim_poll_event(p->swim, &e)) {
        say(p, "event %" PRIu64 ": %s %s -> %s (%s, incarnation %" PRIu32 ")", e.seq, e.id,
            vigil_state_name(e.old_state), vigil_state_name(e.new_state), e.reason, e.incarnation);
        struct vigil_swim_member m;
        bool known = vigil_swim_find(p->swim, e.id, &m);
        int rc = vigil_monitor_set_member(p->mon, now, e.id, e.new_state, e.reason,
                                          known ? &m.addr : NULL);
        if (rc != 0)
            say(p, "member %s not kept: %s", e.id, vigil_strerror(rc));
        else if (known)
            take_meta(p, now, e.id, m.meta, m.meta_len);
        any = true;
    }
    if (any && p->changed)
        p->changed(p->arg, now);
    if (!p->leaving)
        arm(p);
}

/* Reads what waits in the socket, each datagram at its kernel arrival time. */
static void read_all(struct peerd *p, vigil_time_t now)
{
    for (int round = 0; round < 64; round++) {
        struct vio_dgram dg[PEER_BATCH];
        for (int i = 0; i < PEER_BATCH; i++) {
            dg[i].buf = p->bufs[i];
            dg[i].cap = sizeof p->bufs[i];
        }
        int n = vio_recv(p->t, dg, PEER_BATCH);
        for (int i = 0; i < n; i++)
            if (dg[i].len <= PEER_DGRAM_MAX)
                (void)vigil_swim_on_datagram(p->swim, dg[i].arrival > now ? now : dg[i].arrival,
                                             dg[i].buf, dg[i].len, &dg[i].from);
        if (n < PEER_BATCH)
            break;
        if (round == 63)
            vio_source_ready(p->loop, &p->t->readable); /* more next turn */
    }
}

/*
 * The core's deadline: what waits in the socket is read first (an ack or
 * a refutation that came while this member was stalled counts), then the
 * core judges what is due.
 */
static void on_timer(void *arg, vigil_time_t now)
{
    struct peerd *p = arg;
    read_all(p, now);
    vigil_swim_on_expiry(p->swim, now);
    pump(p, now);
}

static void on_readable(void *arg, vigil_time_t now)
{
    struct peerd *p = arg;
    read_all(p, now);
    if (now >= vigil_swim_next_deadline(p->swim))
        vigil_swim_on_expiry(p->swim, now);
    pump(p, now);
}

/* Until a member is known, the seeds are asked again every second. */
static void on_join(void *arg, vigil_time_t now)
{
    struct peerd *p = arg;
    if (p->n_seeds == 0 || vigil_swim_member_count(p->swim) > 0 || p->leaving)
        return;
    vigil_swim_join(p->swim, now, p->seeds, p->n_seeds);
    pump(p, now);
    (void)vio_timer_arm(p->loop, &p->join_timer, now + PEER_JOIN_EVERY);
}

/*
 * Whether the status changed enough to tell everyone: each change costs an
 * update that every member sends on a few times, so load and memory go out
 * when they moved materially (load1 by half a point or a quarter, memory
 * available by a sixteenth of the total), custom pairs whenever they
 * change, and everything at least every PEER_STATUS_REFRESH.
 */
static bool material(const struct vigil_status *a, const struct vigil_status *b)
{
    uint32_t d = a->load1_milli > b->load1_milli ? a->load1_milli - b->load1_milli
                                                 : b->load1_milli - a->load1_milli;
    uint32_t hi = a->load1_milli > b->load1_milli ? a->load1_milli : b->load1_milli;
    if (d >= 500 || (hi > 0 && d >= hi / 4 && d >= 200))
        return true;
    uint64_t m = a->mem_avail_kib > b->mem_avail_kib ? a->mem_avail_kib - b->mem_avail_kib
                                                     : b->mem_avail_kib - a->mem_avail_kib;
    return a->mem_total_kib != b->mem_total_kib || m >= a->mem_total_kib / 16;
}

/* This member's status: gossiped (a new incarnation) only when it changed enough. */
static void refresh_status(struct peerd *p, vigil_time_t now, bool first)
{
    struct vigil_status st;
    sample(p, &st);
    uint8_t meta[VIGIL_SWIM_META_MAX];
    size_t kept = 0;
    size_t len = peerd_meta_encode(&st, p->cfg.custom, p->cfg.n_custom, meta, &kept);
    if (first && kept < p->cfg.n_custom)
        say(p,
            "peer.custom: %zu of %zu pairs fit in the %d bytes of a member's status; the rest "
            "are not sent",
            kept, p->cfg.n_custom, VIGIL_SWIM_META_MAX);
    if (!first) {
        bool pairs = len != p->meta_len ||
                     memcmp(meta + META_HEAD, p->meta + META_HEAD, len - META_HEAD) != 0;
        if (!pairs && !material(&st, &p->sent) && now - p->sent_at < PEER_STATUS_REFRESH)
            return;
    }
    memcpy(p->meta, meta, len);
    p->meta_len = len;
    p->sent = st;
    p->sent_at = now;
    (void)vigil_swim_set_meta(p->swim, now, meta, len);
    take_meta(p, now, p->cfg.id, meta, len);
}

static void on_status(void *arg, vigil_time_t now)
{
    struct peerd *p = arg;
    refresh_status(p, now, false);
    pump(p, now);
    (void)vio_timer_arm(p->loop, &p->status_timer, now + p->cfg.status_interval);
}

/* The others' metadata changes without a change of state: compared every second. */
static void on_scan(void *arg, vigil_time_t now)
{
    struct peerd *p = arg;
    size_t n = vigil_swim_member_count(p->swim);
    for (size_t i = 0; i < n; i++) {
        struct vigil_swim_member m;
        if (vigil_swim_member_at(p->swim, i, &m) && m.state != VIGIL_STATE_DEAD &&
            m.state != VIGIL_STATE_LEFT)
            take_meta(p, now, m.id, m.meta, m.meta_len);
    }
    (void)vio_timer_arm(p->loop, &p->scan_timer, now + PEER_SCAN_EVERY);
}

/* ---- start and stop ---------------------------------------------------- */

int peerd_new(const struct peerd_opts *o, struct peerd **out, char *err, size_t cap)
{
    *out = NULL;
    const struct vcfg_peer *c = o->cfg;
    struct vio_env *env = o->env;
    if (!c->listen) {
        snprintf(err, cap, "peer.listen is needed: the IP:PORT this member listens on");
        return -1;
    }
    if (!c->key_file && !c->insecure) {
        snprintf(err, cap,
                 "no key: give peer.key_file (the cluster's key, vigil keygen -o FILE), or set "
                 "peer.insecure = true to let anyone speak to the members");
        return -1;
    }
    struct peerd *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    p->env = env;
    p->loop = env->loop;
    p->cfg = *c;
    p->mon = o->mon;
    p->changed = o->changed;
    p->log = o->log;
    p->arg = o->arg;
    vio_timer_init(&p->timer, on_timer, p);
    vio_timer_init(&p->join_timer, on_join, p);
    vio_timer_init(&p->status_timer, on_status, p);
    vio_timer_init(&p->scan_timer, on_scan, p);

    struct vigil_swim_config sc;
    vigil_swim_config_default(&sc);
    sc.id = c->id;
    sc.lifeguard = c->lifeguard;
    sc.probe_interval = c->interval;
    sc.probe_timeout = c->probe_timeout ? c->probe_timeout : c->interval / 2;
    sc.indirect_checks = c->indirect_checks;
    sc.retransmit_mult = c->retransmit_mult;
    sc.suspicion_mult = c->suspicion_mult;
    sc.suspicion_max_mult = c->suspicion_max_mult;
    sc.gossip_interval = c->gossip_interval;
    sc.gossip_nodes = c->gossip_nodes;
    sc.sync_interval = c->sync_interval;
    sc.reconnect_interval = c->reconnect_interval;
    sc.awareness_max = c->awareness_max;
    sc.max_members = c->max_members;
    sc.pause_tolerance = c->pause_tolerance;
    if (sc.probe_timeout >= sc.probe_interval) {
        snprintf(err, cap, "peer.probe_timeout must be shorter than peer.interval");
        free(p);
        return -1;
    }
    if (c->key_file) {
        enum vcfg_key_kind kind;
        char node[VIGIL_ID_MAX + 1];
        if (vcfg_read_key_fs(env->fs, c->key_file, sc.key, &kind, node, NULL, err, cap) != 0) {
            free(p);
            return -1;
        }
        sc.has_key = true;
        p->keyed = true;
    }
    if (c->encrypt && !sc.has_key) {
        snprintf(err, cap, "peer.encrypt needs the cluster's key (peer.key_file)");
        free(p);
        return -1;
    }
    sc.encrypt = c->encrypt;
    if (c->encrypt)
        env->random(env, sc.nonce_prefix, sizeof sc.nonce_prefix);
    /* Signed leaves and alives (docs/peer.md, "Signed leaves"). */
    if (c->ca_file) {
        if (peercert_read_ca_pk(env->fs, c->ca_file, sc.leave_ca_pk, err, cap) != 0) {
            sodium_memzero(sc.key, sizeof sc.key);
            free(p);
            return -1;
        }
        sc.has_leave_ca = true;
        bool req = c->require_signed != 0; /* -1, the default, requires them */
        sc.require_signed_leave = req;
        sc.require_signed_alive = req;
    } else if (c->require_signed == 1) {
        snprintf(err, cap, "peer.require_signed needs the CA's public key (peer.ca_file)");
        sodium_memzero(sc.key, sizeof sc.key);
        free(p);
        return -1;
    }
    if (c->member_file) {
        char mid[VIGIL_ID_MAX + 1];
        if (peercert_read_member(env->fs, c->member_file, mid, sc.sign_sk, sc.cert, &sc.cert_len,
                                 sc.has_leave_ca ? sc.leave_ca_pk : NULL, err, cap) != 0) {
            sodium_memzero(sc.key, sizeof sc.key);
            free(p);
            return -1;
        }
        if (strcmp(mid, c->id) != 0) {
            snprintf(err, cap, "peer.member_file %s is member %s's, not %s's", c->member_file, mid,
                     c->id);
            sodium_memzero(sc.key, sizeof sc.key);
            sodium_memzero(sc.sign_sk, sizeof sc.sign_sk);
            free(p);
            return -1;
        }
        sc.has_sign_key = true;
        p->signing = true;
    } else if (sc.require_signed_alive) {
        snprintf(err, cap,
                 "peer.ca_file makes the members require signed leaves and alives: give this "
                 "member its own key and certificate (peer.member_file, vigil peer-cert issue), "
                 "or set peer.require_signed = false");
        sodium_memzero(sc.key, sizeof sc.key);
        free(p);
        return -1;
    }
    p->sealed = c->encrypt;
    p->checking = sc.has_leave_ca;
    const char *why = "invalid address";
    if (env->net->ops->resolve(env->net, c->listen, 7946, &p->self_addr, &why) < 0) {
        snprintf(err, cap, "peer.listen %s: %s", c->listen, why);
        sodium_memzero(sc.key, sizeof sc.key);
        free(p);
        return -1;
    }
    for (size_t i = 0; i < c->n_seeds; i++)
        if (env->net->ops->resolve(env->net, c->seeds[i], 7946, &p->seeds[p->n_seeds++], &why) <
            0) {
            snprintf(err, cap, "peer.seeds: %s: %s", c->seeds[i], why);
            sodium_memzero(sc.key, sizeof sc.key);
            free(p);
            return -1;
        }
    sc.addr = p->self_addr;
    env->random(env, &sc.seed, sizeof sc.seed);
    vigil_time_t now = vio_now(p->loop);
    int rc = vigil_swim_new(&sc, now, &p->swim);
    sodium_memzero(sc.key, sizeof sc.key);
    sodium_memzero(sc.sign_sk, sizeof sc.sign_sk);
    if (rc == 0)
        rc = env->net->ops->open(env->net, p->loop, &p->self_addr, p->self_addr.family, &p->t);
    if (rc != 0) {
        snprintf(err, cap, "cannot start on %s: %s", c->listen,
                 rc < 0 && rc > -200 ? strerror(-rc) : vigil_strerror(rc));
        peerd_free(p);
        return -1;
    }
    vio_source_init(&p->t->readable, on_readable, p);
    rc = vigil_monitor_set_member(p->mon, now, c->id, VIGIL_STATE_ALIVE, "this member",
                                  &p->self_addr);
    if (rc != 0) {
        snprintf(err, cap, "cannot keep this member: %s", vigil_strerror(rc));
        peerd_free(p);
        return -1;
    }
    refresh_status(p, now, true);
    say(p, "id=%s listen=%s seeds=%zu lifeguard=%s interval=%s%s%s%s%s", c->id, c->listen,
        p->n_seeds, c->lifeguard ? "on" : "off",
        vigil_dur_s((double)c->interval / VIGIL_NSEC_PER_SEC).s,
        p->keyed ? "" : " (insecure: no key)", p->sealed ? ", sealed" : "",
        p->signing ? ", signs its leave and alives" : "",
        p->checking ? (sc.require_signed_alive ? ", requires signed leaves and alives"
                                               : ", checks signed leaves and alives")
                    : "");
    (void)vio_timer_arm(p->loop, &p->join_timer, now);
    if (c->status_interval)
        (void)vio_timer_arm(p->loop, &p->status_timer, now + c->status_interval);
    (void)vio_timer_arm(p->loop, &p->scan_timer, now + PEER_SCAN_EVERY);
    if (p->changed)
        p->changed(p->arg, now);
    arm(p);
    *out = p;
    return 0;
}

void peerd_leave(struct peerd *p)
{
    if (!p || p->leaving)
        return;
    vigil_time_t now = vio_now(p->loop);
    vigil_swim_leave(p->swim, now);
    p->leaving = true;
    pump(p, now);
    vio_timer_disarm(p->loop, &p->timer);
    vio_timer_disarm(p->loop, &p->join_timer);
    vio_timer_disarm(p->loop, &p->status_timer);
    vio_timer_disarm(p->loop, &p->scan_timer);
}

void peerd_free(struct peerd *p)
{
    if (!p)
        return;
    vio_timer_disarm(p->loop, &p->timer);
    vio_timer_disarm(p->loop, &p->join_timer);
    vio_timer_disarm(p->loop, &p->status_timer);
    vio_timer_disarm(p->loop, &p->scan_timer);
    vio_transport_close(p->t);
    vigil_swim_free(p->swim);
    free(p);
}

const char *peerd_auth(const struct peerd *p)
{
    return !p->keyed ? "none" : p->sealed ? "cluster, sealed" : "cluster";
}

/* ---- the API ----------------------------------------------------------- */

json_t *peerd_members_json(void *arg, vigil_time_t now)
{
    struct peerd *p = arg;
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
    return json_pack("{sssIsIso*s{sIsIsIsIsIsIsIsIsIsIsIsI}}", "id", p->cfg.id, "incarnation",
                     (json_int_t)vigil_swim_incarnation(p->swim), "awareness",
                     (json_int_t)vigil_swim_awareness(p->swim), "members", a, "stats", "sent",
                     (json_int_t)st->sent, "received", (json_int_t)st->received, "bytes_sent",
                     (json_int_t)st->bytes_sent, "bytes_received", (json_int_t)st->bytes_received,
                     "malformed", (json_int_t)st->malformed, "auth_failed",
                     (json_int_t)st->auth_failed, "probes", (json_int_t)st->probes, "probes_failed",
                     (json_int_t)st->probes_failed, "suspicions", (json_int_t)st->suspicions,
                     "refutations", (json_int_t)st->refutations, "deaths", (json_int_t)st->deaths,
                     "syncs", (json_int_t)st->syncs);
}

json_t *peerd_health_json(void *arg, vigil_time_t now)
{
    struct peerd *p = arg;
    (void)now;
    size_t count[5] = {0};
    for (size_t i = 0; i < vigil_swim_member_count(p->swim); i++) {
        struct vigil_swim_member m;
        if (vigil_swim_member_at(p->swim, i, &m) && (unsigned)m.state < 5)
            count[m.state]++;
    }
    return json_pack(
        "{sssssIsIsIsIsIsI}", "id", p->cfg.id, "listen", p->cfg.listen, "incarnation",
        (json_int_t)vigil_swim_incarnation(p->swim), "awareness",
        (json_int_t)vigil_swim_awareness(p->swim), "alive", (json_int_t)count[VIGIL_STATE_ALIVE],
        "suspect", (json_int_t)count[VIGIL_STATE_SUSPECT], "dead",
        (json_int_t)count[VIGIL_STATE_DEAD], "left", (json_int_t)count[VIGIL_STATE_LEFT]);
}

char *peerd_metrics_text(void *arg)
{
    struct peerd *p = arg;
    const struct vigil_swim_stats *st = vigil_swim_stats(p->swim);
    size_t count[5] = {0};
    for (size_t i = 0; i < vigil_swim_member_count(p->swim); i++) {
        struct vigil_swim_member m;
        if (vigil_swim_member_at(p->swim, i, &m) && (unsigned)m.state < 5)
            count[m.state]++;
    }
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;
#define C(name, help, v)                                                                           \
    fprintf(f, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n",               \
            (unsigned long long)(v))
    C("vigil_peer_messages_sent_total", "Datagrams this member sent.", st->sent);
    C("vigil_peer_messages_received_total", "Datagrams this member received.", st->received);
    C("vigil_peer_bytes_sent_total", "Bytes of the datagrams this member sent.", st->bytes_sent);
    C("vigil_peer_bytes_received_total", "Bytes of the datagrams this member received.",
      st->bytes_received);
    fprintf(f,
            "# HELP vigil_peer_messages_dropped_total Datagrams dropped, by reason.\n"
            "# TYPE vigil_peer_messages_dropped_total counter\n"
            "vigil_peer_messages_dropped_total{reason=\"malformed\"} %llu\n"
            "vigil_peer_messages_dropped_total{reason=\"auth_failed\"} %llu\n",
            (unsigned long long)st->malformed, (unsigned long long)st->auth_failed);
    C("vigil_peer_probes_total", "Members this one probed.", st->probes);
    C("vigil_peer_probes_failed_total", "Probes with no ack, direct or indirect.",
      st->probes_failed);
    C("vigil_peer_indirect_probes_total", "Probes asked of other members.", st->indirect_probes);
    C("vigil_peer_suspicions_total", "Members this one began to suspect.", st->suspicions);
    C("vigil_peer_refutations_total", "Suspicions of this member it refuted.", st->refutations);
    C("vigil_peer_deaths_total", "Members this one holds dead.", st->deaths);
    C("vigil_peer_syncs_total", "Full state exchanges.", st->syncs);
    C("vigil_peer_pauses_total", "Stalls of this member longer than pause_tolerance.", st->pauses);
    C("vigil_peer_leaves_refused_total", "Leaves refused: unsigned, or a signature that failed.",
      st->leaves_refused);
    C("vigil_peer_alives_refused_total", "Alives refused: unsigned, or a signature that failed.",
      st->alives_refused);
    C("vigil_peer_accusations_refused_total",
      "Suspicions and deaths refused: at an incarnation the member never signed.",
      st->accusations_refused);
#undef C
    fprintf(f,
            "# HELP vigil_peer_incarnation This member's incarnation number.\n"
            "# TYPE vigil_peer_incarnation gauge\nvigil_peer_incarnation %u\n"
            "# HELP vigil_peer_local_health Lifeguard's local health multiplier (0 is best).\n"
            "# TYPE vigil_peer_local_health gauge\nvigil_peer_local_health %u\n"
            "# HELP vigil_peer_members The other members as this one sees them, by state.\n"
            "# TYPE vigil_peer_members gauge\n",
            (unsigned)vigil_swim_incarnation(p->swim), (unsigned)vigil_swim_awareness(p->swim));
    static const char *const names[] = {"alive", "suspect", "dead", "left"};
    for (unsigned s = 1; s <= 4; s++)
        fprintf(f, "vigil_peer_members{state=\"%s\"} %zu\n", names[s - 1], count[s]);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}
