/*
 * The monitor's HTTP API.
 *
 * The API is how operators and their tools see what the monitor knows: the
 * node table, the recent events with their evidence, the monitor's own
 * health, the same counters and each node's state and evidence in the
 * Prometheus text format, and a web page that shows it all live (at / and
 * /ui, api_ui.c). Reading needs nothing; the one call that changes
 * anything (POST /v1/keys/reload) needs the token (api_auth.c), and so
 * does every method other than GET and HEAD, whatever its path: a client
 * without the token learns nothing about what it could have done.
 *
 * What a client sends is checked before it is looked at: a method that is
 * not an HTTP token, a path with control bytes or that is not UTF-8, a
 * query with bytes a URL cannot hold, a number out of its range: 400.
 *
 * This file is a pure handler: api_handle takes one whole request (method,
 * path, raw query string) and fills one whole response; the HTTP server
 * behind src/io/vio.h (libmicrohttpd in the program, a fake in the
 * simulator) does the sockets. The server calls the handler on the thread
 * of the loop that owns the monitor core, between two heartbeats, so the
 * handler reads the core directly without locks and always sees a
 * consistent table. The price is that a request holds up heartbeat
 * processing while it is built; the bounds below (nodes per page, events
 * per response) keep that time short. Time comes from the loop (ctx->loop),
 * never from the system clock, so the answers are exact in virtual time.
 *
 * Errors are JSON too: {"error": "what is wrong"}.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "actlog.h"
#include "groups.h"
#include "holds.h"
#include "api.h"
#include "checks.h"
#include "actgate.h"
#include "api_qos.h"
#include "leader.h"
#include "drops.h"

/*
 * Nodes in a /v1/nodes page: 1000 take a few milliseconds to render, and
 * the detection loop waits while a page is rendered; 10000 at most.
 */
#define API_NODES_DEFAULT_LIMIT 1000
#define API_NODES_MAX_LIMIT     10000

/* Events of one node shown with /v1/nodes/ID: enough to see a flapping pattern. */
#define API_NODE_EVENTS 20

/*
 * Significant digits of JSON numbers. Durations are in seconds; 12 digits
 * keep microseconds for durations up to about eleven days and print loads
 * like 0.25 as 0.25 instead of the 17-digit 0.25000000000000000.
 */
#define API_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

/* Room for a numeric address formatted by vigil_addr_format ("[v6]:port"). */
#define API_ADDR_BUF 64

/* Room for an RFC 3339 time with milliseconds ("2026-11-25T17:00:00.123Z"). */
#define API_TIME_BUF 40

/*
 * Longest query parameter value looked at: a 64-bit number has 20 digits,
 * and anything longer is invalid anyway (as percent-escapes, three times).
 */
#define API_QUERY_VALUE_MAX 64

/* Longest query parameter name compared. */
#define API_QUERY_KEY_MAX 32

/* ---- small helpers ---------------------------------------------------- */

static double ns_to_s(vigil_time_t ns)
{
    return (double)ns / (double)VIGIL_NSEC_PER_SEC;
}

/* A JSON number, or null when x is not finite (JSON has no infinity). */
static json_t *jreal(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

/* A JSON integer from an unsigned counter (clamped: JSON integers are signed here). */
static json_t *juint(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v);
}

/* Sets key in o, stealing v; returns nonzero on failure (v NULL or no memory). */
static int put(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new(o, key, v) != 0;
}

static json_t *jwall(int64_t wall_us)
{
    char buf[API_TIME_BUF];
    vigil_format_wall(wall_us, buf, sizeof(buf));
    return json_string(buf);
}

/* A growable text buffer for the metrics page. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    /* Two rounds: the second always fits, because the buffer grew to the measured size. */
    for (int round = 0; round < 2 && !b->failed; round++) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t want = b->len + (size_t)n + 1;
        /* Grow at least by half, starting at 4 KiB (the page is a few KiB). */
        size_t cap = b->cap ? b->cap + b->cap / 2 : 4096;
        if (cap < want)
            cap = want;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes the n bytes at s (form encoding: %XX escapes, '+' a space) into
 * out (cap bytes, NUL terminated). Returns -1 when it does not fit, an
 * escape is broken, or it decodes to a NUL.
 */
static int query_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (n - i < 3)
                return -1;
            int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

enum query_result { QUERY_ABSENT, QUERY_OK, QUERY_INVALID };

/*
 * The text parameter key of a raw query string ("since=5&limit=10"),
 * decoded into out (cap bytes): the first occurrence counts. A key with
 * no '=', a broken escape or a value longer than cap is QUERY_INVALID.
 */
static enum query_result query_str(const char *query, const char *key, char *out, size_t cap)
{
    const char *p = query ? query : "";
    while (*p) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        size_t klen = eq ? (size_t)(eq - p) : n;
        char k[API_QUERY_KEY_MAX];
        if (klen > 0 && query_decode(p, klen, k, sizeof(k)) == 0 && !strcmp(k, key))
            return eq && query_decode(eq + 1, n - klen - 1, out, cap) == 0 ? QUERY_OK
                                                                           : QUERY_INVALID;
        p += n;
        if (*p == '&')
            p++;
    }
    return QUERY_ABSENT;
}

/*
 * The integer parameter key (as query_str): a value that is not a whole
 * decimal number that fits 64 bits (empty, signed, too long, with other
 * characters, or a key with no '=') is QUERY_INVALID, which the handlers
 * answer with 400.
 */
static enum query_result query_u64(const char *query, const char *key, uint64_t *out)
{
    char v[API_QUERY_VALUE_MAX];
    enum query_result r = query_str(query, key, v, sizeof(v));
    if (r == QUERY_OK && vcfg_parse_u64(v, UINT64_MAX, out) != 0)
        return QUERY_INVALID;
    return r;
}

/* Appends n bytes of text. */
static void sb_put(struct sbuf *b, const char *text, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap + b->cap / 2 : 4096;
        if (cap < b->len + n + 1)
            cap = b->len + n + 1;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, text, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Appends doc (stolen) as compact JSON; false when it could not. */
static bool sb_json(struct sbuf *b, json_t *doc);

/* ---- JSON documents --------------------------------------------------- */

json_t *api_node_json(const struct vigil_monitor *m, const struct vigil_node *n, vigil_time_t now,
                      int64_t now_wall_us)
{
    const struct vigil_monitor_config *cfg = vigil_monitor_config(m);
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;

    vigil_time_t in_state = now - vigil_node_state_since(n);
    if (in_state < 0)
        in_state = 0;
    vigil_time_t mean = 0, sd = 0;
    vigil_detector_stats(vigil_node_detector_state(n), &mean, &sd);

    bad |= put(o, "id", json_string(vigil_node_id(n)));
    bad |= put(o, "state", json_string(vigil_state_name(vigil_node_state(n))));
    bad |= put(o, "since_s", json_real(ns_to_s(in_state)));
    bad |= put(o, "state_since", jwall(now_wall_us - in_state / 1000));
    if (vigil_node_member(n))
        bad |= put(o, "member", json_true());
    if (vigil_node_last_heard(n) >= 0) {
        vigil_time_t ago = now - vigil_node_last_heard(n);
        if (ago < 0)
            ago = 0;
        bad |= put(o, "last_heard_s", json_real(ns_to_s(ago)));
        bad |= put(o, "last_heard", jwall(now_wall_us - ago / 1000));
    } else {
        bad |= put(o, "last_heard_s", json_null());
        bad |= put(o, "last_heard", json_null());
    }
    bad |= put(o, "level", vigil_json_level(vigil_monitor_level(m, n, now)));
    struct vigil_detector_config tmp;
    const struct vigil_detector_config *dc = vigil_monitor_node_detector(m, n, &tmp);
    bad |= put(o, "suspect_threshold", jreal(dc->suspect_threshold));
    bad |= put(o, "dead_threshold", jreal(dc->dead_threshold));
    bad |= put(o, "mean_interval_s", json_real(ns_to_s(mean)));
    bad |= put(o, "std_dev_s", json_real(ns_to_s(sd)));
    if (dc->kind == VIGIL_DETECTOR_GRID) {
        /* The grid's own evidence: the loss rate it assumes, heartbeats missed now. */
        bad |= put(o, "loss", jreal(vigil_detector_loss(dc, vigil_node_detector_state(n))));
        bad |=
            put(o, "missed", juint(vigil_detector_missed(dc, vigil_node_detector_state(n), now)));
    }
    bad |= put(o, "generation", juint(vigil_node_generation(n)));
    bad |= put(o, "key_id", juint(vigil_node_key_id(n)));
    bad |= put(o, "sequence", juint(vigil_node_sequence(n)));
    bad |= put(o, "heartbeats", juint(vigil_node_heartbeats(n)));
    bad |= put(o, "interval_s", json_real(ns_to_s(vigil_node_interval(n))));
    if (vigil_node_addr(n)->family) {
        char abuf[API_ADDR_BUF];
        vigil_addr_format(vigil_node_addr(n), abuf, sizeof(abuf));
        bad |= put(o, "addr", json_string(abuf));
    } else {
        bad |= put(o, "addr", json_null());
    }
    bad |= put(o, "declared", json_boolean(vigil_node_declared(n)));
    bad |= put(o, "rise_count", json_integer(vigil_node_rise_count(n)));
    bad |= put(o, "rise", json_integer(cfg->rise));
    bad |= put(o, "send_time",
               vigil_node_send_time_us(n) ? jwall(vigil_node_send_time_us(n)) : json_null());

    json_t *st = json_object();
    if (st) {
        struct vigil_status stored = vigil_node_status(n);
        const struct vigil_status *ns = &stored;
        bad |= put(st, "load1", json_real(ns->load1_milli / 1000.0));
        bad |= put(st, "load5", json_real(ns->load5_milli / 1000.0));
        bad |= put(st, "load15", json_real(ns->load15_milli / 1000.0));
        bad |= put(st, "mem_total_kib", juint(ns->mem_total_kib));
        bad |= put(st, "mem_avail_kib", juint(ns->mem_avail_kib));
        bad |= put(st, "uptime_s", juint(ns->uptime_s));
    }
    bad |= put(o, "status", st);
    bad |= put(o, "status_stale", json_boolean(vigil_node_status_stale(n)));

    json_t *cu = json_object();
    for (size_t i = 0; cu && i < vigil_node_custom_count(n); i++)
        bad |= put(cu, vigil_node_custom(n, i)->key, json_string(vigil_node_custom(n, i)->value));
    bad |= put(o, "custom", cu);
    bad |= put(o, "qos", api_qos_json(m, n, now));
    bad |= put(o, "warnings", api_qos_warnings(m, n));

    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/*
 * One page of the node table, in table order (nodes are never removed, so
 * offsets are stable). Paged because the API runs in the detection loop: a
 * page of 1000 nodes takes milliseconds, the whole of a large table would
 * take a second during which no heartbeat is read.
 */
static json_t *nodes_json(const struct api_ctx *c, uint64_t offset, uint64_t limit,
                          vigil_time_t now, int64_t now_wall)
{
    json_t *o = json_object();
    json_t *arr = json_array();
    int bad = !o || !arr;
    size_t count = vigil_monitor_node_count(c->mon);
    size_t end = offset < count ? (size_t)offset : count;
    end = count - end > limit ? end + (size_t)limit : count;
    for (size_t i = (size_t)(offset < count ? offset : count); !bad && i < end; i++) {
        const struct vigil_node *n = vigil_monitor_node_at(c->mon, i);
        if (n)
            bad |= json_array_append_new(arr, api_node_json(c->mon, n, now, now_wall)) != 0;
    }
    if (o) {
        bad |= put(o, "now", jwall(now_wall));
        bad |= put(o, "total", json_integer((json_int_t)count));
        bad |= put(o, "offset", json_integer((json_int_t)offset));
        bad |= put(o, "next", end < count ? json_integer((json_int_t)end) : json_null());
        bad |= put(o, "nodes", arr);
        arr = NULL;
    }
    json_decref(arr);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The last API_NODE_EVENTS state events of node id, oldest first. */
static json_t *node_events_json(const struct evlog *l, const char *id)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    size_t picked[API_NODE_EVENTS];
    size_t n = 0;
    /* Newest first, bounded by the history's length. */
    for (size_t i = evlog_count(l); i > 0 && n < API_NODE_EVENTS; i--) {
        const struct evrec *r = evlog_at(l, i - 1);
        if (r && (r->ev.type == VIGIL_EVENT_STATE || r->ev.type == VIGIL_EVENT_CHECK) &&
            strcmp(r->ev.node, id) == 0)
            picked[n++] = i - 1;
    }
    for (size_t k = n; k > 0; k--) {
        if (json_array_append_new(arr, evrec_to_json(evlog_at(l, picked[k - 1]))) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* Index of the oldest held event with seq > since (evlog_count if none). */
static size_t evlog_first_after(const struct evlog *l, uint64_t since)
{
    /* The history is in sequence order: binary search. */
    size_t lo = 0, hi = evlog_count(l);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (evlog_at(l, mid)->ev.seq <= since)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * {"events":[...],"last_seq":K,"more":bool,"newest_seq":L,"started":T}.
 * last_seq is the sequence number of the last event returned, so that
 * "since=last_seq" fetches the next page; with no event returned it is the
 * newest sequence number the monitor has. more is true when the limit cut
 * the answer short. newest_seq is always the newest sequence number, so that
 * a client can ask for "the last M events" (since = newest_seq - M).
 * started is when this monitor process started: sequence numbers start over
 * with a new process, and a follower that sees started change (or
 * newest_seq fall below its since) knows to start over too.
 */
static json_t *events_json(const struct api_ctx *c, uint64_t since, uint64_t limit)
{
    const struct evlog *l = c->events;
    json_t *o = json_object();
    json_t *arr = json_array();
    int bad = !o || !arr;
    size_t count = evlog_count(l);
    size_t i = evlog_first_after(l, since);
    uint64_t last = evlog_last_seq(l);
    uint64_t taken = 0;
    for (; !bad && i < count && taken < limit; i++, taken++) {
        const struct evrec *r = evlog_at(l, i);
        bad |= json_array_append_new(arr, evrec_to_json(r)) != 0;
        last = r->ev.seq;
    }
    if (o) {
        bad |= put(o, "events", arr);
        arr = NULL;
        bad |= put(o, "last_seq", juint(last));
        bad |= put(o, "more", json_boolean(i < count));
        bad |= put(o, "newest_seq", juint(evlog_last_seq(l)));
        bad |= put(o, "started", jwall(c->started_wall_us));
    }
    json_decref(arr);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Nodes per state, indexed by enum vigil_state. */
#define API_STATES 5

static void count_states(const struct vigil_monitor *m, uint64_t counts[API_STATES])
{
    memset(counts, 0, API_STATES * sizeof(counts[0]));
    size_t n = vigil_monitor_node_count(m);
    for (size_t i = 0; i < n; i++) {
        const struct vigil_node *node = vigil_monitor_node_at(m, i);
        if (node && vigil_node_state(node) < API_STATES)
            counts[vigil_node_state(node)]++;
    }
}

/*
 * Who acts: {"mode": "single"} for a monitor alone (it acts itself), else
 * the election's view from this monitor and the action gate's counters.
 */
static json_t *leader_json(const struct api_ctx *c, vigil_time_t now)
{
    if (!c->leader)
        return json_pack("{s:s,s:s}", "mode", "single", "role", "alone");
    struct leader_view v;
    leader_view(c->leader, &v);
    const struct leader_stats *ls = leader_stats(c->leader);
    vigil_time_t dl = leader_deadline(c->leader);
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:o,s:I,s:s,s:o,s:{s:o,s:o,s:o,s:o,s:o}}", "mode", "etcd", "name",
                  c->name, "role", leader_role_name(v.role), "leader",
                  v.leader_id[0] ? json_string(v.leader_id) : json_null(), "epoch",
                  (json_int_t)v.epoch, "endpoint", leader_endpoint(c->leader), "lease_left_s",
                  dl == VIGIL_TIME_NEVER || dl < now ? json_null() : json_real(ns_to_s(dl - now)),
                  "election", "grants", juint(ls->grants), "keepalives", juint(ls->keepalives),
                  "keepalive_failures", juint(ls->keepalive_failures), "campaigns",
                  juint(ls->campaigns), "lease_losses", juint(ls->lease_losses));
    if (o && c->gate) {
        const struct actgate_stats *g = actgate_stats(c->gate);
        json_t *a =
            json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "claimed", juint(g->claimed),
                      "acted", juint(g->acted), "acted_already", juint(g->done_skip), "superseded",
                      juint(g->superseded), "fenced", juint(g->fenced), "rerun", juint(g->rerun),
                      "unfinished", juint(g->unfinished), "failures", juint(g->failures), "held",
                      juint(c->hooks ? hook_runner_held(c->hooks) : 0));
        if (!a || json_object_set_new(o, "actions", a) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *health_json(const struct api_ctx *c, vigil_time_t now)
{
    const struct vigil_monitor_stats *s = vigil_monitor_stats(c->mon);
    const struct vigil_monitor_config *cfg = vigil_monitor_config(c->mon);
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= put(o, "status", json_string("ok"));
    bad |= put(o, "version", json_string(VIGIL_VERSION_STRING));
    bad |= put(o, "uptime_s", json_real(ns_to_s(now - c->started_mono)));
    bad |= put(o, "started", jwall(c->started_wall_us));
    /* The monitor's wall clock now: a client compares it with its own (vigil doctor). */
    bad |= put(o, "wall_time_us", json_integer((json_int_t)vio_wall_us(c->loop)));
    bad |= put(o, "max_ahead_s", json_real(ns_to_s(cfg->max_ahead)));
    /*
     * How datagrams are authenticated: "per-node" (a master key), "cluster"
     * (a legacy shared key), or "none"; insecure is true without a key.
     */
    const struct vigil_monitor_config *mc = vigil_monitor_config(c->mon);
    bool keyed = c->peer_auth ? strcmp(c->peer_auth, "none") != 0 : mc->has_key;
    bad |= put(o, "authentication",
               json_string(c->peer_auth        ? c->peer_auth
                           : !mc->has_key      ? "none"
                           : mc->key_is_master ? "per-node"
                                               : "cluster"));
    bad |= put(o, "insecure", json_boolean(!keyed));
    if (c->peer_health)
        bad |= put(o, "peer", c->peer_health(c->peer_ud, now));
    bad |= put(o, "statuses_sealed", json_boolean(mc->require_sealed));
    /*
     * The keys held, and how many nodes last spoke with each: a rotation
     * is complete when the old key id has no node left.
     */
    uint8_t ids[VIGIL_KEYS_MAX];
    size_t n_ids = vigil_monitor_key_ids(c->mon, ids, VIGIL_KEYS_MAX);
    uint64_t by_id[VIGIL_WIRE_KEY_ID_MAX + 1] = {0};
    size_t n_nodes = vigil_monitor_node_count(c->mon);
    for (size_t i = 0; i < n_nodes; i++) {
        const struct vigil_node *nd = vigil_monitor_node_at(c->mon, i);
        if (nd && vigil_node_heartbeats(nd) > 0 && vigil_node_key_id(nd) <= VIGIL_WIRE_KEY_ID_MAX)
            by_id[vigil_node_key_id(nd)]++;
    }
    json_t *keys = json_array();
    for (size_t i = 0; keys && i < n_ids && i < VIGIL_KEYS_MAX; i++) {
        json_t *e = json_object();
        if (e) {
            bad |= put(e, "id", juint(ids[i]));
            bad |= put(e, "nodes", juint(by_id[ids[i]]));
        }
        bad |= json_array_append_new(keys, e) != 0;
    }
    bad |= put(o, "keys", keys);

    uint64_t counts[API_STATES];
    count_states(c->mon, counts);
    json_t *nodes = json_object();
    if (nodes) {
        bad |= put(nodes, "total", juint(vigil_monitor_node_count(c->mon)));
        for (int st = 0; st < API_STATES; st++)
            bad |= put(nodes, vigil_state_name((enum vigil_state)st), juint(counts[st]));
    }
    bad |= put(o, "nodes", nodes);

    json_t *k = json_object();
    if (k) {
        bad |= put(k, "datagrams", juint(s->datagrams));
        bad |= put(k, "accepted", juint(s->accepted));
        bad |= put(k, "malformed", juint(s->malformed));
        bad |= put(k, "auth_failed", juint(s->auth_failed));
        bad |= put(k, "stale", juint(s->stale));
        bad |= put(k, "future", juint(s->future));
        bad |= put(k, "unknown_key", juint(s->unknown_key));
        bad |= put(k, "unsealed", juint(s->unsealed));
        bad |= put(k, "unknown_node", juint(s->unknown_node));
        bad |= put(k, "table_full", juint(s->table_full));
        bad |= put(k, "events", juint(s->events));
        bad |= put(k, "events_lost", juint(s->events_lost));
        bad |= put(k, "qos_lost", juint(s->qos_lost));
        bad |= put(k, "pauses", juint(s->pauses));
        bad |= put(k, "paused_total_s", json_real(ns_to_s(s->paused_total)));
        bad |= put(k, "recv_errors", juint(c->recv_errors));
        bad |= put(k, "recv_drops", juint(c->recv_drops));
        bad |= put(k, "dropped_log", juint(c->dropped_log));
    }
    bad |= put(o, "counters", k);

    /* Without hooks the same shape, all zero, so that consumers need no special case. */
    struct hook_stats hs = {0};
    uint64_t pending = 0, waiting = 0;
    if (c->hooks) {
        hs = *hook_runner_stats(c->hooks);
        pending = hook_runner_pending(c->hooks);
        waiting = hook_runner_waiting(c->hooks);
    }
    json_t *h = json_object();
    if (h) {
        bad |= put(h, "started", juint(hs.started));
        bad |= put(h, "succeeded", juint(hs.succeeded));
        bad |= put(h, "failed", juint(hs.failed));
        bad |= put(h, "timed_out", juint(hs.timed_out));
        bad |= put(h, "spawn_errors", juint(hs.spawn_errors));
        bad |= put(h, "retried", juint(hs.retried));
        bad |= put(h, "gave_up", juint(hs.gave_up));
        bad |= put(h, "queued", juint(hs.queued));
        bad |= put(h, "pending", juint(pending));
        bad |= put(h, "events_waiting", juint(waiting));
        bad |= put(h, "coalesced", juint(hs.coalesced));
    }
    bad |= put(o, "hooks", h);
    bad |= put(o, "leadership", leader_json(c, now));

    /* The API itself: how it is protected, and the clients it turned away. */
    struct vio_httpd_stats hst;
    vio_httpd_stats(c->server, &hst);
    json_t *a = json_object();
    if (a) {
        bad |= put(a, "tls", json_boolean(c->tls));
        bad |= put(a, "token", json_boolean(c->token != NULL));
        bad |= put(a, "connections", juint(hst.connections));
        bad |= put(a, "connection_limit", juint(hst.connection_limit));
        bad |= put(a, "per_address_limit", juint(hst.per_address_limit));
        bad |= put(a, "accepted", juint(hst.accepted));
        bad |= put(a, "refused_per_address", juint(hst.refused_per_address));
        bad |= put(a, "refused_limit", juint(hst.refused_limit));
        bad |= put(a, "auth_failures", juint(c->auth_failures));
    }
    bad |= put(o, "api", a);

    json_t *d = json_object();
    if (d) {
        bad |= put(d, "type", json_string(vigil_detector_kind_name(cfg->detector.kind)));
        bad |= put(d, "suspect_threshold", jreal(cfg->detector.suspect_threshold));
        bad |= put(d, "dead_threshold", jreal(cfg->detector.dead_threshold));
    }
    bad |= put(o, "detector", d);
    bad |= put(o, "memory_bytes", juint(vigil_monitor_memory(c->mon)));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/*
 * The Prometheus text exposition format (version 0.0.4): the monitor-wide
 * part, appended to b. Its cost does not grow with the table beyond one
 * pass over the node states.
 */
static void metrics_head(const struct api_ctx *c, vigil_time_t now, struct sbuf *b)
{
    const struct vigil_monitor_stats *s = vigil_monitor_stats(c->mon);
#define COUNTER(name, help, value)                                                                 \
    sb_printf(b, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n",             \
              (unsigned long long)(value))
#define GAUGE_HEAD(name, help) sb_printf(b, "# HELP " name " " help "\n# TYPE " name " gauge\n")

    COUNTER("vigil_datagrams_total", "Datagrams handed to the monitor.", s->datagrams);
    COUNTER("vigil_heartbeats_accepted_total", "Heartbeats that refreshed a node.", s->accepted);
    sb_printf(b, "# HELP vigil_datagrams_dropped_total Datagrams dropped, by reason.\n"
                 "# TYPE vigil_datagrams_dropped_total counter\n");
    const struct {
        const char *reason;
        uint64_t value;
    } drops[] = {
        {"malformed", s->malformed},   {"auth_failed", s->auth_failed},
        {"stale", s->stale},           {"future", s->future},
        {"unsealed", s->unsealed},     {"unknown_node", s->unknown_node},
        {"table_full", s->table_full},
    };
    for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++)
        sb_printf(b, "vigil_datagrams_dropped_total{reason=\"%s\"} %llu\n", drops[i].reason,
                  (unsigned long long)drops[i].value);
    if (c->peer_metrics) {
        char *text = c->peer_metrics(c->peer_ud);
        if (text)
            sb_printf(b, "%s", text);
        else
            b->failed = true;
        free(text);
    }
    COUNTER("vigil_receive_errors_total", "Socket receive errors.", c->recv_errors);
    COUNTER("vigil_receive_drops_total",
            "Datagrams the kernel dropped for a full receive buffer (read unread: not late, lost).",
            c->recv_drops);

    uint64_t counts[API_STATES];
    count_states(c->mon, counts);
    GAUGE_HEAD("vigil_nodes", "Nodes in the table, by state.");
    for (int st = 0; st < API_STATES; st++)
        sb_printf(b, "vigil_nodes{state=\"%s\"} %llu\n", vigil_state_name((enum vigil_state)st),
                  (unsigned long long)counts[st]);

    COUNTER("vigil_events_total", "Events the monitor produced.", s->events);
    COUNTER("vigil_events_log_dropped_total", "Events the log could not write.", c->dropped_log);
    COUNTER("vigil_monitor_pauses_total", "Times the monitor found it had not run.", s->pauses);
    sb_printf(b,
              "# HELP vigil_monitor_paused_seconds_total Summed length of those pauses.\n"
              "# TYPE vigil_monitor_paused_seconds_total counter\n"
              "vigil_monitor_paused_seconds_total %.6f\n",
              ns_to_s(s->paused_total));

    struct hook_stats hs = {0};
    uint64_t pending = 0, waiting = 0;
    if (c->hooks) {
        hs = *hook_runner_stats(c->hooks);
        pending = hook_runner_pending(c->hooks);
        waiting = hook_runner_waiting(c->hooks);
    }
    COUNTER("vigil_hooks_started_total", "Hook runs started.", hs.started);
    sb_printf(b, "# HELP vigil_hooks_total Hook runs, by result.\n"
                 "# TYPE vigil_hooks_total counter\n");
    const struct {
        const char *result;
        uint64_t value;
    } hooks[] = {
        {"succeeded", hs.succeeded},
        {"failed", hs.failed},
        {"timed_out", hs.timed_out},
        {"spawn_error", hs.spawn_errors},
    };
    for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++)
        sb_printf(b, "vigil_hooks_total{result=\"%s\"} %llu\n", hooks[i].result,
                  (unsigned long long)hooks[i].value);
    sb_printf(b,
              "# HELP vigil_hook_retries_total Hook runs started again after a failure.\n"
              "# TYPE vigil_hook_retries_total counter\n"
              "vigil_hook_retries_total %llu\n"
              "# HELP vigil_hook_gave_up_total Hook runs that failed on their last retry.\n"
              "# TYPE vigil_hook_gave_up_total counter\n"
              "vigil_hook_gave_up_total %llu\n",
              (unsigned long long)hs.retried, (unsigned long long)hs.gave_up);
    if (c->actlog) {
        sb_printf(b, "# HELP vigil_actions_total Attempts of actions, by kind and outcome.\n"
                     "# TYPE vigil_actions_total counter\n");
        for (int k = 0; k < VCFG_ACT_KINDS; k++) {
            const char *kn = vcfg_act_kind_name((enum vcfg_act_kind)k);
            sb_printf(b,
                      "vigil_actions_total{kind=\"%s\",outcome=\"started\"} %llu\n"
                      "vigil_actions_total{kind=\"%s\",outcome=\"succeeded\"} %llu\n"
                      "vigil_actions_total{kind=\"%s\",outcome=\"failed\"} %llu\n",
                      kn, (unsigned long long)c->actlog->started[k], kn,
                      (unsigned long long)c->actlog->succeeded[k], kn,
                      (unsigned long long)c->actlog->failed[k]);
        }
        sb_printf(b,
                  "# HELP vigil_actions_gave_up_total Actions that failed on their last attempt.\n"
                  "# TYPE vigil_actions_gave_up_total counter\n");
        for (int k = 0; k < VCFG_ACT_KINDS; k++)
            sb_printf(b, "vigil_actions_gave_up_total{kind=\"%s\"} %llu\n",
                      vcfg_act_kind_name((enum vcfg_act_kind)k),
                      (unsigned long long)c->actlog->gave_up[k]);
    }
    GAUGE_HEAD("vigil_hooks_pending", "Hooks running or queued.");
    sb_printf(b, "vigil_hooks_pending %llu\n", (unsigned long long)pending);
    GAUGE_HEAD("vigil_hook_events_waiting", "Events waiting for their node's hooks.");
    sb_printf(b, "vigil_hook_events_waiting %llu\n", (unsigned long long)waiting);
    COUNTER("vigil_hook_events_coalesced_total",
            "Events merged into a later event of their node at a hook queue bound.", hs.coalesced);

    struct vio_httpd_stats hst;
    vio_httpd_stats(c->server, &hst);
    GAUGE_HEAD("vigil_api_connections", "Connections to the API open now.");
    sb_printf(b, "vigil_api_connections %llu\n", (unsigned long long)hst.connections);
    COUNTER("vigil_api_connections_accepted_total", "Connections the API took.", hst.accepted);
    sb_printf(b,
              "# HELP vigil_api_connections_refused_total Connections the API closed at once, "
              "by reason.\n"
              "# TYPE vigil_api_connections_refused_total counter\n"
              "vigil_api_connections_refused_total{reason=\"per_address\"} %llu\n"
              "vigil_api_connections_refused_total{reason=\"limit\"} %llu\n",
              (unsigned long long)hst.refused_per_address, (unsigned long long)hst.refused_limit);
    COUNTER("vigil_api_auth_failures_total", "API calls refused for a missing or wrong token.",
            c->auth_failures);

    GAUGE_HEAD("vigil_memory_bytes", "Bytes the monitor core has allocated.");
    sb_printf(b, "vigil_memory_bytes %llu\n", (unsigned long long)vigil_monitor_memory(c->mon));
    GAUGE_HEAD("vigil_uptime_seconds", "Seconds since the monitor started.");
    sb_printf(b, "vigil_uptime_seconds %.3f\n", ns_to_s(now - c->started_mono));
    if (check_set_count(c->checks) || rchecks_count(c->rchecks)) {
        size_t np = check_set_count(c->checks), na = rchecks_count(c->rchecks);
        GAUGE_HEAD("vigil_check_status",
                   "A check's status: 0 unknown, 1 passing, 2 warning, 3 critical.");
        for (size_t i = 0; i < np; i++) {
            const struct check_info *k = check_set_at(c->checks, i);
            sb_printf(b, "vigil_check_status{node=\"%s\",check=\"%s\",source=\"poll\"} %d\n",
                      k->node, k->name, (int)k->status);
        }
        for (size_t i = 0; i < na; i++) {
            const struct rcheck *k = rchecks_at(c->rchecks, i);
            sb_printf(b, "vigil_check_status{node=\"%s\",check=\"%s\",source=\"agent\"} %d\n",
                      k->node, k->name, (int)k->status);
        }
        GAUGE_HEAD("vigil_check_latency_seconds", "How long a check's last run took.");
        for (size_t i = 0; i < np; i++) {
            const struct check_info *k = check_set_at(c->checks, i);
            sb_printf(b,
                      "vigil_check_latency_seconds{node=\"%s\",check=\"%s\",source=\"poll\"} "
                      "%.6f\n",
                      k->node, k->name, ns_to_s(k->last.latency));
        }
        for (size_t i = 0; i < na; i++) {
            const struct rcheck *k = rchecks_at(c->rchecks, i);
            sb_printf(b,
                      "vigil_check_latency_seconds{node=\"%s\",check=\"%s\",source=\"agent\"} "
                      "%.6f\n",
                      k->node, k->name, ns_to_s(k->last.latency));
        }
        sb_printf(b, "# HELP vigil_check_runs_total Runs of the monitor's checks, by result.\n"
                     "# TYPE vigil_check_runs_total counter\n");
        for (size_t i = 0; i < np; i++) {
            const struct check_info *k = check_set_at(c->checks, i);
            sb_printf(b,
                      "vigil_check_runs_total{node=\"%s\",check=\"%s\",result=\"passing\"} %llu\n"
                      "vigil_check_runs_total{node=\"%s\",check=\"%s\",result=\"warning\"} %llu\n"
                      "vigil_check_runs_total{node=\"%s\",check=\"%s\",result=\"critical\"} "
                      "%llu\n",
                      k->node, k->name, (unsigned long long)k->passing, k->node, k->name,
                      (unsigned long long)k->warning, k->node, k->name,
                      (unsigned long long)k->critical);
        }
    }
    GAUGE_HEAD("vigil_build_info", "Version of the running monitor (always 1).");
    sb_printf(b, "vigil_build_info{version=\"%s\"} 1\n", VIGIL_VERSION_STRING);
#undef COUNTER
#undef GAUGE_HEAD
}

/*
 * Per-node metrics: one family per quantity, each labelled by node id (ids
 * are [A-Za-z0-9._-], safe in a label value as they are). The text format
 * wants all samples of a family together, so the families come one after
 * the other, each over the whole table: a cursor (family, node) says where
 * rendering stands, so that a large table is rendered a slice per loop
 * turn like the other long answers. The table only grows (nodes are never
 * removed), so the nodes present when the answer began are there to its
 * end, and every family covers the same nodes.
 */
enum node_family {
    NF_STATE,
    NF_AGE,
    NF_LEVEL,
    NF_SUSPECT,
    NF_DEAD,
    NF_MEAN,
    NF_STD_DEV,
    NF_HEARTBEATS,
    NF_GENERATION,
    NF_COUNT
};

static const struct {
    const char *name, *type, *help;
} node_families[NF_COUNT] = {
    [NF_STATE] = {"vigil_node_state", "gauge",
                  "1 for the node's current state, 0 for the others "
                  "(unknown, alive, suspect, dead, left)."},
    [NF_AGE] = {"vigil_node_heartbeat_age_seconds", "gauge",
                "Seconds since the node's last accepted heartbeat (no sample if never heard)."},
    [NF_LEVEL] = {"vigil_node_detector_level", "gauge",
                  "The node's failure detector level now (phi for phi and grid, seconds for "
                  "fixed)."},
    [NF_SUSPECT] = {"vigil_node_suspect_threshold", "gauge",
                    "Detector level at which the node becomes suspect."},
    [NF_DEAD] = {"vigil_node_dead_threshold", "gauge",
                 "Detector level at which the node becomes dead."},
    [NF_MEAN] = {"vigil_node_interval_mean_seconds", "gauge",
                 "Mean of the node's recent heartbeat intervals."},
    [NF_STD_DEV] = {"vigil_node_interval_stddev_seconds", "gauge",
                    "Standard deviation of the node's recent heartbeat intervals."},
    [NF_HEARTBEATS] = {"vigil_node_heartbeats_accepted_total", "counter",
                       "Heartbeats accepted from the node since the monitor started."},
    [NF_GENERATION] = {"vigil_node_generation", "gauge",
                       "Boot generation of the node's last accepted heartbeat (0 before any)."},
};

/*
 * Node rows per item of API_SLICE: a row (one node's sample, or its five
 * state samples) is a few formatted numbers. Measured through the real
 * server on 4000 nodes, a row costs about 0.6 us and a node's JSON object
 * about 25 us, so 16 rows for every object a slice could have rendered
 * keep a metrics slice (about 2.5 ms) shorter than a nodes slice.
 */
#define API_METRIC_ROWS 16

/* Where a per-node metrics answer stands: the family, its next node, and the nodes covered. */
struct metrics_cursor {
    unsigned family;
    bool head; /* the family's HELP and TYPE lines are out */
    size_t i, end;
};

/* A sample value as the text format spells it (Go's ParseFloat: +Inf, -Inf, NaN). */
static void sb_value(struct sbuf *b, double x)
{
    if (isnan(x))
        sb_put(b, "NaN\n", 4);
    else if (isinf(x))
        sb_printf(b, "%sInf\n", x > 0 ? "+" : "-");
    else
        sb_printf(b, "%.9g\n", x);
}

static void node_metric_row(const struct vigil_monitor *m, unsigned family,
                            const struct vigil_node *n, vigil_time_t now, struct sbuf *b)
{
    const char *name = node_families[family].name, *id = vigil_node_id(n);
    struct vigil_detector_config tmp;
    const struct vigil_detector_config *dc;
    vigil_time_t mean = 0, sd = 0;
    switch ((enum node_family)family) {
    case NF_STATE:
        for (int st = 0; st < API_STATES; st++)
            sb_printf(b, "%s{node=\"%s\",state=\"%s\"} %d\n", name, id,
                      vigil_state_name((enum vigil_state)st), (int)vigil_node_state(n) == st);
        return;
    case NF_AGE:
        if (vigil_node_last_heard(n) < 0)
            return;
        sb_printf(b, "%s{node=\"%s\"} ", name, id);
        sb_value(b, ns_to_s(now > vigil_node_last_heard(n) ? now - vigil_node_last_heard(n) : 0));
        return;
    case NF_LEVEL:
        sb_printf(b, "%s{node=\"%s\"} ", name, id);
        sb_value(b, vigil_monitor_level(m, n, now));
        return;
    case NF_SUSPECT:
    case NF_DEAD:
        dc = vigil_monitor_node_detector(m, n, &tmp);
        sb_printf(b, "%s{node=\"%s\"} ", name, id);
        sb_value(b, family == NF_SUSPECT ? dc->suspect_threshold : dc->dead_threshold);
        return;
    case NF_MEAN:
    case NF_STD_DEV:
        vigil_detector_stats(vigil_node_detector_state(n), &mean, &sd);
        sb_printf(b, "%s{node=\"%s\"} ", name, id);
        sb_value(b, ns_to_s(family == NF_MEAN ? mean : sd));
        return;
    case NF_HEARTBEATS:
        sb_printf(b, "%s{node=\"%s\"} %llu\n", name, id,
                  (unsigned long long)vigil_node_heartbeats(n));
        return;
    case NF_GENERATION:
        sb_printf(b, "%s{node=\"%s\"} %llu\n", name, id,
                  (unsigned long long)vigil_node_generation(n));
        return;
    case NF_COUNT:
        break;
    }
}

/*
 * Renders at most *rows node rows from where cur stands, counting them
 * off *rows; true when every family is complete.
 */
static bool node_metrics(const struct api_ctx *c, struct metrics_cursor *cur, vigil_time_t now,
                         struct sbuf *b, size_t *rows)
{
    while (cur->family < NF_COUNT && !b->failed) {
        if (!cur->head) {
            sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", node_families[cur->family].name,
                      node_families[cur->family].help, node_families[cur->family].name,
                      node_families[cur->family].type);
            cur->head = true;
        }
        for (; cur->i < cur->end; cur->i++) {
            if (*rows == 0)
                return false;
            (*rows)--;
            const struct vigil_node *n = vigil_monitor_node_at(c->mon, cur->i);
            if (n)
                node_metric_row(c->mon, cur->family, n, now, b);
        }
        cur->family++;
        cur->head = false;
        cur->i = 0;
    }
    return true;
}

/* ---- responses --------------------------------------------------------- */

/* The type of the Prometheus text format. */
#define API_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The answers describe this instant; a cache would show stale states. */
static const char *const hdr_plain[] = {"Cache-Control: no-store", NULL};
static const char *const hdr_read_only[] = {"Cache-Control: no-store", "Allow: GET, HEAD", NULL};
static const char *const hdr_post_only[] = {"Cache-Control: no-store", "Allow: POST", NULL};
static const char *const hdr_bearer[] = {"Cache-Control: no-store",
                                         "WWW-Authenticate: Bearer realm=\"vigil\"", NULL};

static void respond(struct vio_http_response *resp, unsigned status, char *body, size_t len,
                    const char *type)
{
    resp->status = status;
    resp->content_type = type;
    resp->headers = status == 405 ? hdr_read_only : hdr_plain;
    resp->body = body;
    resp->body_len = len;
}

/* Answers with doc (stolen) as JSON; a NULL doc (no memory) is a 500. */
static void respond_json(struct vio_http_response *resp, unsigned status, json_t *doc)
{
    char *body = doc ? json_dumps(doc, API_JSON_FLAGS) : NULL;
    json_decref(doc);
    if (!body) {
        static const char oom[] = "{\"error\":\"out of memory\"}\n";
        /* The server frees the body: a copy, or none at all when even that fails. */
        char *copy = malloc(sizeof(oom));
        if (copy)
            memcpy(copy, oom, sizeof(oom));
        respond(resp, 500, copy, copy ? sizeof(oom) - 1 : 0, "application/json");
        return;
    }
    /* A final newline, so that `curl .../v1/health` leaves the shell prompt on its own line. */
    size_t len = strlen(body);
    char *nl = realloc(body, len + 2);
    if (nl) {
        body = nl;
        body[len++] = '\n';
        body[len] = '\0';
    }
    respond(resp, status, body, len, "application/json");
}

static void respond_error(struct vio_http_response *resp, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void respond_error(struct vio_http_response *resp, unsigned status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /*
     * The message may quote what the client sent (a path, a method): bytes
     * outside printable ASCII become '?', so that the answer is valid JSON
     * (UTF-8) whatever came in, and never a 500.
     */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    respond_json(resp, status, json_pack("{ss}", "error", msg));
}

/* ---- long answers, a slice per turn ------------------------------------- */

/*
 * A page of thousands of nodes or events takes tens of milliseconds to
 * render, and the loop that renders it is the loop that reads heartbeats
 * and judges deadlines. So a long answer is deferred (vio_httpd_respond)
 * and built as text a slice at a time: each turn of the loop renders at
 * most API_SLICE items, across all such requests, before the loop reads
 * its sockets and runs its timers again. Eight clients paging 10,000 nodes
 * at once then cost the detection path about a millisecond per turn, not
 * a quarter of a second.
 */
#define API_SLICE 256

enum job_kind { JOB_NODES, JOB_EVENTS, JOB_METRICS };

struct api_job {
    struct api_job *next;
    void *exchange;
    vigil_time_t wait_until; /* a long poll: answered by then, events or not */
    enum job_kind kind;
    size_t i, end;                 /* nodes: the next index, one past the last */
    uint64_t upto;                 /* events: the newest sequence number the answer may hold */
    uint64_t last;                 /* events: the last sequence number put (since, at first) */
    uint64_t left;                 /* events: how many more the answer may hold */
    bool first;                    /* no item put yet (no comma before the next) */
    struct metrics_cursor metrics; /* metrics: where the per-node families stand */
    struct sbuf body;
};

static bool sb_json(struct sbuf *b, json_t *doc)
{
    char *text = doc ? json_dumps(doc, API_JSON_FLAGS | JSON_ENCODE_ANY) : NULL;
    json_decref(doc);
    if (!text) {
        b->failed = true;
        return false;
    }
    sb_put(b, text, strlen(text));
    free(text);
    return !b->failed;
}

/* The head of a document whose last member (an array) is still to come: `{...,"key":[`. */
static void sb_open_tail(struct sbuf *b, json_t *head, const char *key)
{
    char *text = head ? json_dumps(head, API_JSON_FLAGS) : NULL;
    json_decref(head);
    size_t n = text ? strlen(text) : 0;
    if (n < 2 || text[n - 1] != '}') {
        free(text);
        b->failed = true;
        return;
    }
    sb_put(b, text, n - 1);
    free(text);
    sb_printf(b, "%s\"%s\":[", n > 2 ? "," : "", key);
}

static void job_enqueue(struct api_ctx *c, struct api_job *j, struct vio_http_response *resp)
{
    j->exchange = resp->exchange;
    j->first = true;
    resp->deferred = true;
    j->next = NULL;
    if (c->jobs_tail)
        c->jobs_tail->next = j;
    else
        c->jobs = j;
    c->jobs_tail = j;
    c->deferred++;
    vio_source_ready(c->loop, &c->work);
}

/* Hands the finished (or failed) answer of j to the server and frees j. */
static void job_finish(struct api_ctx *c, struct api_job *j, unsigned status)
{
    struct vio_http_response resp;
    memset(&resp, 0, sizeof(resp));
    if (j->body.failed || status != 200) {
        free(j->body.p);
        respond_error(&resp, j->body.failed ? 500 : status, "%s",
                      j->body.failed ? "out of memory" : "the monitor is stopping");
    } else if (j->kind == JOB_METRICS) {
        respond(&resp, 200, j->body.p, j->body.len, API_METRICS_TYPE);
    } else {
        sb_put(&j->body, "\n", 1);
        respond(&resp, 200, j->body.p, j->body.len, "application/json");
    }
    vio_httpd_respond(c->server, j->exchange, &resp);
    free(j);
}

/* Renders up to budget items of j; true when j is complete. */
static bool job_slice(struct api_ctx *c, struct api_job *j, size_t *budget)
{
    vigil_time_t now = vio_now(c->loop);
    int64_t now_wall = vio_wall_us(c->loop);
    if (j->kind == JOB_METRICS) {
        size_t rows = *budget * API_METRIC_ROWS, had = rows;
        bool done = node_metrics(c, &j->metrics, now, &j->body, &rows);
        /* Whole items off the budget, at least one: every slice makes progress and ends. */
        size_t used = (had - rows + API_METRIC_ROWS - 1) / API_METRIC_ROWS;
        *budget -= used > 0 ? (used < *budget ? used : *budget) : 1;
        return done || j->body.failed;
    }
    if (j->kind == JOB_NODES) {
        for (; *budget > 0 && j->i < j->end && !j->body.failed; j->i++, (*budget)--) {
            const struct vigil_node *n = vigil_monitor_node_at(c->mon, j->i);
            if (!n)
                continue;
            if (!j->first)
                sb_put(&j->body, ",", 1);
            j->first = false;
            sb_json(&j->body, api_node_json(c->mon, n, now, now_wall));
        }
        if (j->i < j->end && !j->body.failed)
            return false;
        sb_put(&j->body, "]}", 2);
        return true;
    }
    /* Events: by sequence number, since the history is a ring that moves on meanwhile. */
    const struct evlog *l = c->events;
    size_t i = evlog_first_after(l, j->last), count = evlog_count(l);
    for (; *budget > 0 && j->left > 0 && i < count && !j->body.failed; i++, (*budget)--) {
        const struct evrec *r = evlog_at(l, i);
        if (r->ev.seq > j->upto)
            break;
        if (!j->first)
            sb_put(&j->body, ",", 1);
        j->first = false;
        sb_json(&j->body, evrec_to_json(r));
        j->last = r->ev.seq;
        j->left--;
    }
    bool done = j->left == 0 || i >= count || evlog_at(l, i)->ev.seq > j->upto;
    if (!done && !j->body.failed)
        return false;
    sb_printf(&j->body, "],\"last_seq\":%llu,\"more\":%s,\"newest_seq\":%llu,\"started\":",
              (unsigned long long)j->last, evlog_last_seq(l) > j->last ? "true" : "false",
              (unsigned long long)evlog_last_seq(l));
    sb_json(&j->body, jwall(c->started_wall_us));
    sb_put(&j->body, "}", 1);
    return true;
}

/* The work source: one slice of the waiting answers per turn, oldest first. */
static void on_work(void *arg, vigil_time_t now)
{
    struct api_ctx *c = arg;
    (void)now;
    size_t budget = API_SLICE;
    while (c->jobs && budget > 0) {
        struct api_job *j = c->jobs;
        bool done = job_slice(c, j, &budget);
        c->jobs = j->next;
        if (!c->jobs)
            c->jobs_tail = NULL;
        if (done) {
            job_finish(c, j, 200);
        } else {
            /* To the back of the line: the other answers get their turn. */
            j->next = NULL;
            if (c->jobs_tail)
                c->jobs_tail->next = j;
            else
                c->jobs = j;
            c->jobs_tail = j;
        }
    }
    if (c->jobs)
        vio_source_ready(c->loop, &c->work);
}

/* ---- long polls of the events ---------------------------------------- */

/* Arms the waiters' timer at the earliest deadline among them (or disarms it). */
static void waiters_arm(struct api_ctx *c)
{
    vigil_time_t first = VIGIL_TIME_NEVER;
    for (struct api_job *j = c->waiters; j; j = j->next)
        if (j->wait_until < first)
            first = j->wait_until;
    if (first == VIGIL_TIME_NEVER)
        vio_timer_disarm(c->loop, &c->wait_timer);
    else
        vio_timer_arm(c->loop, &c->wait_timer, first);
}

/* Moves the waiters that have events to show, or whose wait is over, to the answer queue. */
static void waiters_release(struct api_ctx *c, vigil_time_t now)
{
    uint64_t newest = evlog_last_seq(c->events);
    struct api_job **pp = &c->waiters;
    while (*pp) {
        struct api_job *j = *pp;
        if (newest > j->last || now >= j->wait_until) {
            *pp = j->next;
            c->n_waiters--;
            j->upto = newest;
            struct vio_http_response r = {.exchange = j->exchange};
            job_enqueue(c, j, &r);
        } else {
            pp = &j->next;
        }
    }
    waiters_arm(c);
}

static void on_wait_timer(void *arg, vigil_time_t now)
{
    waiters_release(arg, now);
}

void api_events_wake(struct api_ctx *c)
{
    if (c->waiters)
        waiters_release(c, vio_now(c->loop));
}

void api_init(struct api_ctx *c)
{
    vio_source_init(&c->work, on_work, c);
    vio_timer_init(&c->wait_timer, on_wait_timer, c);
}

void api_abort(struct api_ctx *c)
{
    while (c->waiters) {
        struct api_job *j = c->waiters;
        c->waiters = j->next;
        struct vio_http_response r = {.exchange = j->exchange};
        job_enqueue(c, j, &r);
    }
    c->n_waiters = 0;
    vio_timer_disarm(c->loop, &c->wait_timer);
    while (c->jobs) {
        struct api_job *j = c->jobs;
        c->jobs = j->next;
        job_finish(c, j, 503);
    }
    c->jobs_tail = NULL;
    vio_source_cancel(c->loop, &c->work);
}

/* ---- what the client sent ---------------------------------------------- */

/* Longest method taken: the longest standard one (OPTIONS) is 7 characters. */
#define API_METHOD_MAX 32

/* An HTTP method: 1 to API_METHOD_MAX token characters (RFC 9110, "tchar"). */
static bool method_valid(const char *m)
{
    size_t n = 0;
    for (; m[n]; n++) {
        unsigned char c = (unsigned char)m[n];
        if (n >= API_METHOD_MAX || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                     (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c)))
            return false;
    }
    return n > 0;
}

/*
 * A decoded path: valid UTF-8 (no overlong forms, no surrogates, nothing
 * past U+10FFFF) without control characters (C0, DEL).
 */
static bool path_valid(const char *p)
{
    const unsigned char *s = (const unsigned char *)p;
    while (*s) {
        unsigned char c = *s;
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return false; /* also the NUL at the end */
            cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        s += n + 1;
    }
    return true;
}

/* A raw query string: only what a URL may carry as it is (printable ASCII, no space). */
static bool query_valid(const char *q)
{
    for (const unsigned char *s = (const unsigned char *)(q ? q : ""); *s; s++)
        if (*s <= 0x20 || *s >= 0x7f)
            return false;
    return true;
}

/* ---- routes ------------------------------------------------------------ */

enum route {
    ROUTE_NONE,
    ROUTE_NODES,
    ROUTE_NODE,
    ROUTE_EVENTS,
    ROUTE_HEALTH,
    ROUTE_METRICS,
    ROUTE_KEYS_RELOAD,
    ROUTE_DROPS,
    ROUTE_KEYCHECK,
    ROUTE_LEADER,
    ROUTE_ACTIONS,
    ROUTE_MAINT_LIST,
    ROUTE_MAINT,
    ROUTE_GROUPS,
    ROUTE_CHECKS,
    ROUTE_FAILOVER,
    ROUTE_MEMBERS,
    ROUTE_UI,
};

static enum route route_of(const char *path, const char **id)
{
    static const char node_prefix[] = "/v1/nodes/";
    if (!strcmp(path, "/v1/nodes"))
        return ROUTE_NODES;
    if (!strncmp(path, node_prefix, sizeof(node_prefix) - 1) && path[sizeof(node_prefix) - 1]) {
        *id = path + sizeof(node_prefix) - 1;
        return ROUTE_NODE;
    }
    if (!strcmp(path, "/v1/events"))
        return ROUTE_EVENTS;
    if (!strcmp(path, "/v1/health"))
        return ROUTE_HEALTH;
    if (!strcmp(path, "/metrics"))
        return ROUTE_METRICS;
    if (!strcmp(path, "/v1/keys/reload"))
        return ROUTE_KEYS_RELOAD;
    if (!strcmp(path, "/v1/drops"))
        return ROUTE_DROPS;
    if (!strcmp(path, "/v1/keycheck"))
        return ROUTE_KEYCHECK;
    if (!strcmp(path, "/v1/leader"))
        return ROUTE_LEADER;
    if (!strcmp(path, "/v1/actions"))
        return ROUTE_ACTIONS;
    if (!strcmp(path, "/v1/groups"))
        return ROUTE_GROUPS;
    if (!strcmp(path, "/v1/checks"))
        return ROUTE_CHECKS;
    if (!strcmp(path, "/v1/members"))
        return ROUTE_MEMBERS;
    static const char groups_prefix[] = "/v1/groups/", failover_suffix[] = "/failover";
    size_t plen = strlen(path);
    if (!strncmp(path, groups_prefix, sizeof(groups_prefix) - 1) &&
        plen > sizeof(groups_prefix) - 1 + sizeof(failover_suffix) - 1 &&
        !strcmp(path + plen - (sizeof(failover_suffix) - 1), failover_suffix)) {
        *id = path + sizeof(groups_prefix) - 1;
        return ROUTE_FAILOVER;
    }
    static const char maint_prefix[] = "/v1/maint/";
    if (!strcmp(path, "/v1/maint"))
        return ROUTE_MAINT_LIST;
    if (!strncmp(path, maint_prefix, sizeof(maint_prefix) - 1) && path[sizeof(maint_prefix) - 1]) {
        *id = path + sizeof(maint_prefix) - 1;
        return ROUTE_MAINT;
    }
    if (!strcmp(path, "/") || !strcmp(path, "/ui"))
        return ROUTE_UI;
    return ROUTE_NONE;
}

static void work_json(void *arg, const struct hook_work *w)
{
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:i, s:i}", "node", w->node, "event_seq",
                          (json_int_t)w->rec->ev.seq, "action", w->action ? w->action : "", "state",
                          w->state, "op", w->undo ? "undo" : "do", "attempt", (int)w->attempt,
                          "events_waiting", (int)w->waiting);
    if (o)
        json_array_append_new(arg, o);
}

/* POST /v1/groups/NAME/failover[?to=NODE]: a planned switchover. */
static void handle_failover(struct api_ctx *c, const char *rest, const char *query,
                            struct vio_http_response *resp)
{
    char name[VIGIL_ID_MAX + 1];
    size_t n = strlen(rest) - strlen("/failover");
    if (n == 0 || n > VIGIL_ID_MAX) {
        respond_error(resp, 404, "no such group");
        return;
    }
    memcpy(name, rest, n);
    name[n] = '\0';
    char to[API_QUERY_VALUE_MAX];
    enum query_result t = query_str(query, "to", to, sizeof(to));
    if (t == QUERY_INVALID || (t == QUERY_OK && !vigil_id_valid(to, strlen(to)))) {
        respond_error(resp, 400, "to must be a node id");
        return;
    }
    if (!c->failover) {
        respond_error(resp, 501, "failover is not available here");
        return;
    }
    char err[200];
    if (c->failover(c->failover_ud, name, t == QUERY_OK ? to : NULL, err, sizeof(err)) != 0) {
        respond_error(resp, 409, "%s", err);
        return;
    }
    respond_json(resp, 200, groups_json(c->groups));
}

/* GET /v1/maint: the nodes whose actions are held, and why. */
static json_t *holds_json(const struct api_ctx *c)
{
    json_t *arr = json_array();
    struct holds *h = c->holds;
    vigil_time_t now = vio_now(c->loop);
    int64_t wall = vio_wall_us(c->loop);
    for (uint32_t i = 0; h && arr && i < h->n; i++) {
        const struct hold_rec *r = &h->recs[i];
        const char *why = holds_reason(h, r->node);
        if (!why)
            continue;
        json_t *o = json_pack("{s:s, s:s, s:f}", "node", r->node, "reason", why, "penalty",
                              holds_penalty(h, r->node));
        if (o && r->maint_until > 0) {
            if (r->maint_until == VIGIL_TIME_NEVER) {
                json_object_set_new(o, "until", json_null());
            } else {
                char when[64];
                vigil_format_wall(wall + (r->maint_until - now) / 1000, when, sizeof(when));
                json_object_set_new(o, "until", json_string(when));
                json_object_set_new(o, "left_s", json_real((double)(r->maint_until - now) / 1e9));
            }
        }
        if (o)
            json_array_append_new(arr, o);
    }
    return json_pack("{s:o}", "held", arr ? arr : json_array());
}

/* POST /v1/maint/NODE?for=DURATION (or no for: until told), ?off=1: maintenance off. */
static void handle_maint(struct api_ctx *c, const char *node, const char *query,
                         struct vio_http_response *resp)
{
    if (!vigil_id_valid(node, strlen(node))) {
        respond_error(resp, 400, "not a node id: %.100s", node);
        return;
    }
    if (!c->maint) {
        respond_error(resp, 501, "maintenance is not available here");
        return;
    }
    char v[API_QUERY_VALUE_MAX];
    vigil_time_t len = VIGIL_TIME_NEVER;
    enum query_result off = query_str(query, "off", v, sizeof(v));
    if (off == QUERY_INVALID || (off == QUERY_OK && strcmp(v, "1") && strcmp(v, "true"))) {
        respond_error(resp, 400, "off must be 1");
        return;
    }
    if (off == QUERY_OK) {
        len = 0;
    } else {
        enum query_result f = query_str(query, "for", v, sizeof(v));
        if (f == QUERY_INVALID ||
            (f == QUERY_OK && (vcfg_parse_duration(v, &len) != 0 || len <= 0))) {
            respond_error(resp, 400, "for must be a duration (30m, 2h)");
            return;
        }
    }
    char err[200];
    if (c->maint(c->maint_ud, node, len, err, sizeof(err)) != 0) {
        respond_error(resp, 500, "%s", err);
        return;
    }
    respond_json(resp, 200, json_pack("{s:s, s:b}", "node", node, "maintenance", len != 0));
}

/* GET /v1/actions: the actions, the work in hand, the recent outcomes (?limit=N, newest first). */
static void handle_actions(struct api_ctx *c, const char *query, struct vio_http_response *resp)
{
    uint64_t limit = 100;
    if (query_u64(query, "limit", &limit) == QUERY_INVALID || limit > ACTLOG_CAP) {
        respond_error(resp, 400, "limit must be a number from 0 to %d", ACTLOG_CAP);
        return;
    }
    json_t *actions = json_array(), *pending = json_array(), *recent = json_array(),
           *totals = json_object();
    for (size_t i = 0; c->hooks && i < hook_runner_actions(c->hooks); i++)
        json_array_append_new(actions, json_string(hook_runner_action_name(c->hooks, i)));
    if (c->hooks)
        hook_runner_each(c->hooks, work_json, pending);
    if (c->actlog) {
        for (size_t i = 0; i < limit; i++) {
            const struct actlog_rec *r = actlog_at(c->actlog, i);
            if (!r)
                break;
            json_array_append_new(recent, actlog_rec_json(r));
        }
        for (int k = 0; k < VCFG_ACT_KINDS; k++)
            json_object_set_new(totals, vcfg_act_kind_name((enum vcfg_act_kind)k),
                                json_pack("{s:I, s:I, s:I, s:I}", "started",
                                          (json_int_t)c->actlog->started[k], "succeeded",
                                          (json_int_t)c->actlog->succeeded[k], "failed",
                                          (json_int_t)c->actlog->failed[k], "gave_up",
                                          (json_int_t)c->actlog->gave_up[k]));
    }
    respond_json(resp, 200,
                 json_pack("{s:o, s:o, s:o, s:o}", "actions", actions, "pending", pending, "recent",
                           recent, "totals", totals));
}

static void handle_nodes(struct api_ctx *c, const char *query, struct vio_http_response *resp,
                         vigil_time_t now, int64_t now_wall)
{
    uint64_t offset = 0, limit = API_NODES_DEFAULT_LIMIT;
    /* No table holds more nodes: a larger offset is a mistake, and would not print as JSON. */
    if (query_u64(query, "offset", &offset) == QUERY_INVALID ||
        offset > VIGIL_MONITOR_MAX_NODES_MAX) {
        respond_error(resp, 400, "offset must be a number from 0 to %u",
                      (unsigned)VIGIL_MONITOR_MAX_NODES_MAX);
        return;
    }
    enum query_result l = query_u64(query, "limit", &limit);
    if (l == QUERY_INVALID || (l == QUERY_OK && limit == 0)) {
        respond_error(resp, 400, "limit must be a number from 1 to %d", API_NODES_MAX_LIMIT);
        return;
    }
    if (limit > API_NODES_MAX_LIMIT)
        limit = API_NODES_MAX_LIMIT;
    size_t count = vigil_monitor_node_count(c->mon);
    size_t start = offset < count ? (size_t)offset : count;
    size_t end = count - start > limit ? start + (size_t)limit : count;
    if (end - start <= API_SLICE || !c->server) {
        respond_json(resp, 200, nodes_json(c, offset, limit, now, now_wall));
        return;
    }
    struct api_job *j = calloc(1, sizeof(*j));
    json_t *head = json_object();
    if (!j || !head || put(head, "now", jwall(now_wall)) ||
        put(head, "total", json_integer((json_int_t)count)) ||
        put(head, "offset", json_integer((json_int_t)offset)) ||
        put(head, "next", end < count ? json_integer((json_int_t)end) : json_null())) {
        free(j);
        json_decref(head);
        respond_json(resp, 500, NULL);
        return;
    }
    j->kind = JOB_NODES;
    j->i = start;
    j->end = end;
    sb_open_tail(&j->body, head, "nodes");
    job_enqueue(c, j, resp);
}

static void handle_events(struct api_ctx *c, const char *query, struct vio_http_response *resp)
{
    uint64_t since = 0, limit = API_EVENTS_DEFAULT_LIMIT;
    if (query_u64(query, "since", &since) == QUERY_INVALID) {
        respond_error(resp, 400, "since must be an event sequence number (0 or more)");
        return;
    }
    enum query_result l = query_u64(query, "limit", &limit);
    if (l == QUERY_INVALID || (l == QUERY_OK && limit == 0)) {
        respond_error(resp, 400, "limit must be a number from 1 to %d", API_EVENTS_MAX_LIMIT);
        return;
    }
    if (limit > API_EVENTS_MAX_LIMIT)
        limit = API_EVENTS_MAX_LIMIT;
    uint64_t wait = 0;
    if (query_u64(query, "wait", &wait) == QUERY_INVALID || wait > API_EVENTS_MAX_WAIT_S) {
        respond_error(resp, 400, "wait must be a number of seconds from 0 to %d",
                      API_EVENTS_MAX_WAIT_S);
        return;
    }
    /*
     * A long poll: nothing after since yet, so the answer waits (at most
     * wait seconds) for the next event instead of the client asking again
     * and again. Waiters are bounded; beyond the bound the answer is at once.
     */
    if (wait > 0 && c->server && evlog_last_seq(c->events) <= since &&
        c->n_waiters < API_EVENTS_MAX_WAITERS) {
        struct api_job *w = calloc(1, sizeof(*w));
        if (w) {
            w->kind = JOB_EVENTS;
            w->last = since;
            w->left = limit;
            w->first = true;
            w->exchange = resp->exchange;
            w->wait_until = vio_now(c->loop) + (vigil_time_t)wait * VIGIL_NSEC_PER_SEC;
            sb_put(&w->body, "{\"events\":[", 11);
            resp->deferred = true;
            w->next = c->waiters;
            c->waiters = w;
            c->n_waiters++;
            waiters_arm(c);
            return;
        }
    }
    size_t avail = evlog_count(c->events) - evlog_first_after(c->events, since);
    if ((avail < limit ? avail : limit) <= API_SLICE || !c->server) {
        respond_json(resp, 200, events_json(c, since, limit));
        return;
    }
    struct api_job *j = calloc(1, sizeof(*j));
    if (!j) {
        respond_json(resp, 500, NULL);
        return;
    }
    j->kind = JOB_EVENTS;
    j->last = since;
    j->left = limit;
    j->upto = evlog_last_seq(c->events);
    sb_put(&j->body, "{\"events\":[", 11);
    job_enqueue(c, j, resp);
}

/*
 * GET /metrics: the monitor-wide metrics at once, then the per-node
 * families (unless "nodes=0"), at once for a small table and a slice per
 * turn for a large one.
 */
static void handle_metrics(struct api_ctx *c, const char *query, struct vio_http_response *resp,
                           vigil_time_t now)
{
    uint64_t per_node = 1;
    if (query_u64(query, "nodes", &per_node) == QUERY_INVALID || per_node > 1) {
        respond_error(resp, 400, "nodes must be 0 (monitor-wide metrics only) or 1");
        return;
    }
    struct metrics_cursor cur = {.family = per_node ? 0 : NF_COUNT,
                                 .end = vigil_monitor_node_count(c->mon)};
    struct sbuf b = {0};
    metrics_head(c, now, &b);
    if (per_node && c->server && cur.end * NF_COUNT > (size_t)API_SLICE * API_METRIC_ROWS &&
        !b.failed) {
        struct api_job *j = calloc(1, sizeof(*j));
        if (!j) {
            free(b.p);
            respond_json(resp, 500, NULL);
            return;
        }
        j->kind = JOB_METRICS;
        j->metrics = cur;
        j->body = b;
        job_enqueue(c, j, resp);
        return;
    }
    size_t unbounded = SIZE_MAX;
    node_metrics(c, &cur, now, &b, &unbounded);
    if (b.failed) {
        free(b.p);
        respond_json(resp, 500, NULL);
        return;
    }
    respond(resp, 200, b.p, b.len, API_METRICS_TYPE);
}

/* put, true when it worked. */
static bool pok(json_t *o, const char *key, json_t *v)
{
    return put(o, key, v) == 0;
}

/* A check as the API shows it. */
static json_t *check_json(const char *node, const char *name, const char *source, const char *type,
                          enum check_status st, vigil_time_t since, const struct check_result *last,
                          vigil_time_t last_at, bool means_dead, uint64_t changes, vigil_time_t now,
                          int64_t now_wall)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    bool ok = pok(o, "node", json_string(node)) && pok(o, "check", json_string(name)) &&
              pok(o, "source", json_string(source)) && pok(o, "type", json_string(type)) &&
              pok(o, "status", json_string(check_status_name(st))) &&
              pok(o, "critical_means_dead", json_boolean(means_dead)) &&
              pok(o, "changes", json_integer((json_int_t)changes));
    ok = ok && pok(o, "since", since < 0 ? json_null() : jwall(now_wall - (now - since) / 1000));
    if (ok && last_at > 0) {
        json_t *l = json_object();
        ok = l && pok(l, "status", json_string(check_status_name(last->status))) &&
             pok(l, "latency_s", json_real(ns_to_s(last->latency))) &&
             pok(l, "code", json_integer((json_int_t)last->code)) &&
             pok(l, "detail", json_string(last->detail)) &&
             pok(l, "age_s", json_real(ns_to_s(now - last_at)));
        if (!ok)
            json_decref(l);
        ok = ok && pok(o, "last", l);
    } else if (ok) {
        ok = pok(o, "last", json_null());
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/*
 * The checks (of node; NULL: all), polled then reported, from the offset-th
 * on, at most limit of them.
 */
static json_t *checks_page(const struct api_ctx *c, const char *node, size_t offset, size_t limit,
                           vigil_time_t now, int64_t now_wall)
{
    size_t at = 0;
    json_t *a = json_array();
    /* One node's: through the index by node. */
    const size_t *idx = NULL;
    size_t count = node ? check_set_of_node(c->checks, node, &idx) : check_set_count(c->checks);
    for (size_t i = 0; a && i < count; i++) {
        if (at++ < offset || json_array_size(a) >= limit)
            continue;
        const struct check_info *k = check_set_at(c->checks, idx ? idx[i] : i);
        const struct vigil_node *n = vigil_monitor_find(c->mon, k->node);
        bool dead = k->cfg->critical_means_dead >= 0 ? k->cfg->critical_means_dead == 1
                                                     : n && vigil_node_polled(n);
        json_t *j =
            check_json(k->node, k->name, "poll", vcfg_check_kind_name(k->cfg->kind), k->status,
                       k->since, &k->last, k->last_at, dead, k->changes, now, now_wall);
        if (!j || json_array_append_new(a, j) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    const struct rcheck *rk[VCFG_AGENT_MAX_CHECKS];
    size_t nr = node ? rchecks_of_node(c->rchecks, node, rk, VCFG_AGENT_MAX_CHECKS)
                     : rchecks_count(c->rchecks);
    for (size_t i = 0; a && i < nr; i++) {
        if (at++ < offset || json_array_size(a) >= limit)
            continue;
        const struct rcheck *k = node ? rk[i] : rchecks_at(c->rchecks, i);
        json_t *j = check_json(k->node, k->name, "agent", "agent", k->status, k->since, &k->last,
                               k->last_at, k->means_dead, k->changes, now, now_wall);
        if (!j || json_array_append_new(a, j) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *checks_json(const struct api_ctx *c, const char *node, vigil_time_t now,
                           int64_t now_wall)
{
    return checks_page(c, node, 0, SIZE_MAX, now, now_wall);
}

/* GET /v1/checks?node=ID&offset=N&limit=M: a page of the checks. */
static void handle_checks(struct api_ctx *c, const char *query, struct vio_http_response *resp)
{
    char node[VIGIL_ID_MAX + 2] = "";
    uint64_t offset = 0, limit = API_NODES_DEFAULT_LIMIT;
    enum query_result nq = query_str(query, "node", node, sizeof node);
    if (nq == QUERY_INVALID || (nq == QUERY_OK && !vigil_id_valid(node, strlen(node)))) {
        respond_error(resp, 400, "node must be a node id");
        return;
    }
    enum query_result l = query_u64(query, "limit", &limit);
    if (query_u64(query, "offset", &offset) == QUERY_INVALID || offset > VCFG_MAX_CHECKS * 2 ||
        l == QUERY_INVALID || (l == QUERY_OK && limit == 0)) {
        respond_error(resp, 400, "offset must be a number from 0 to %d, limit from 1 to %d",
                      VCFG_MAX_CHECKS * 2, API_NODES_MAX_LIMIT);
        return;
    }
    if (limit > API_NODES_MAX_LIMIT)
        limit = API_NODES_MAX_LIMIT;
    vigil_time_t now = vio_now(c->loop);
    const char *nd = nq == QUERY_OK ? node : NULL;
    size_t total;
    if (nd) {
        const size_t *idx;
        const struct rcheck *rk[VCFG_AGENT_MAX_CHECKS];
        total = check_set_of_node(c->checks, nd, &idx) +
                rchecks_of_node(c->rchecks, nd, rk, VCFG_AGENT_MAX_CHECKS);
    } else {
        total = check_set_count(c->checks) + rchecks_count(c->rchecks);
    }
    size_t end =
        total - (offset < total ? offset : total) > limit ? (size_t)(offset + limit) : total;
    respond_json(
        resp, 200,
        json_pack("{so*sIsIso}", "checks",
                  checks_page(c, nd, (size_t)offset, (size_t)limit, now, vio_wall_us(c->loop)),
                  "total", (json_int_t)total, "offset", (json_int_t)offset, "next",
                  end < total ? json_integer((json_int_t)end) : json_null()));
}

static void handle_node(struct api_ctx *c, const char *id, struct vio_http_response *resp,
                        vigil_time_t now, int64_t now_wall)
{
    size_t len = strlen(id);
    const struct vigil_node *n = vigil_id_valid(id, len) ? vigil_monitor_find(c->mon, id) : NULL;
    if (!n) {
        /* Print at most the id's maximum length of what the client sent. */
        respond_error(resp, 404, "no such node: %.*s", VIGIL_ID_MAX, id);
        return;
    }
    json_t *o = api_node_json(c->mon, n, now, now_wall);
    if (o && (put(o, "checks", checks_json(c, vigil_node_id(n), now, now_wall)) ||
              put(o, "polled", json_boolean(vigil_node_polled(n))))) {
        json_decref(o);
        o = NULL;
    }
    if (o && put(o, "events", node_events_json(c->events, vigil_node_id(n)))) {
        json_decref(o);
        o = NULL;
    }
    respond_json(resp, 200, o);
}

/* POST /v1/keys/reload, from a client that showed the token. */
static void handle_keys_reload(struct api_ctx *c, struct vio_http_response *resp)
{
    if (!c->reload_keys) {
        respond_error(resp, 501, "reloading the keys is not supported by this monitor");
        return;
    }
    char why[256] = "";
    if (c->reload_keys(c->reload_keys_ud, why, sizeof(why)) != 0) {
        respond_error(resp, 500, "cannot reload the keys: %s", why[0] ? why : "failed");
        return;
    }
    respond_json(resp, 200, json_pack("{ss}", "status", "ok"));
}

/*
 * GET /v1/drops: the datagrams dropped in the current window (a minute),
 * by source host, claimed id and reason: what the monitor will summarize
 * in its log at the end of the window (drops.h).
 */
static void handle_drops(struct api_ctx *c, struct vio_http_response *resp)
{
    json_t *o = json_object(), *a = json_array();
    bool bad = !o || !a;
    const struct drops *t = c->drops;
    for (size_t i = 0; t && a && i < DROPS_ENTRIES; i++) {
        const struct drop_entry *e = &t->e[i];
        if (!e->count)
            continue;
        char host[64] = "";
        if (e->host.family) {
            vigil_addr_format(&e->host, host, sizeof(host));
            size_t hl = strlen(host);
            if (hl > 2 && !strcmp(host + hl - 2, ":0"))
                host[hl - 2] = '\0';
        }
        json_t *x = json_pack("{ss ss ss ss sI}", "host", host, "node", e->id, "reason",
                              drops_reason_name((enum drop_reason)e->reason), "hint",
                              drops_reason_hint((enum drop_reason)e->reason), "count",
                              (json_int_t)e->count);
        bad |= !x || json_array_append_new(a, x) != 0;
    }
    if (o) {
        bad |= json_object_set_new(o, "drops", a) != 0;
        bad |= json_object_set_new(o, "other", juint(t ? t->other : 0)) != 0;
        bad |= json_object_set_new(o, "total", juint(t ? t->total : 0)) != 0;
    }
    if (bad) {
        json_decref(o);
        respond_json(resp, 500, NULL);
        return;
    }
    respond_json(resp, 200, o);
}

/*
 * GET /v1/keycheck?node=ID&key_id=N&fingerprint=HEX: whether the key a
 * node holds (given by its fingerprint, vigil_wire_key_fingerprint) is
 * the one the monitor expects of it under key id N. Fingerprints reveal
 * nothing of a key; this only answers "the same or not".
 */
static void handle_keycheck(struct api_ctx *c, const char *query, struct vio_http_response *resp)
{
    char node[VIGIL_ID_MAX + 1], hex[2 * VIGIL_WIRE_FINGERPRINT_LEN + 1];
    uint64_t key_id = 0;
    if (query_str(query, "node", node, sizeof(node)) != QUERY_OK ||
        !vigil_id_valid(node, strlen(node))) {
        respond_error(resp, 400, "node: a valid node id is needed");
        return;
    }
    if (query_u64(query, "key_id", &key_id) == QUERY_INVALID || key_id > VIGIL_WIRE_KEY_ID_MAX) {
        respond_error(resp, 400, "key_id: 0 to %d", VIGIL_WIRE_KEY_ID_MAX);
        return;
    }
    uint8_t theirs[VIGIL_WIRE_FINGERPRINT_LEN], ours[VIGIL_WIRE_FINGERPRINT_LEN];
    if (query_str(query, "fingerprint", hex, sizeof(hex)) != QUERY_OK ||
        strlen(hex) != 2 * VIGIL_WIRE_FINGERPRINT_LEN) {
        respond_error(resp, 400, "fingerprint: %d hex digits", 2 * VIGIL_WIRE_FINGERPRINT_LEN);
        return;
    }
    for (size_t i = 0; i < VIGIL_WIRE_FINGERPRINT_LEN; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            respond_error(resp, 400, "fingerprint: %d hex digits", 2 * VIGIL_WIRE_FINGERPRINT_LEN);
            return;
        }
        theirs[i] = (uint8_t)(hi * 16 + lo);
    }
    int rc = vigil_monitor_key_fingerprint(c->mon, node, (unsigned)key_id, ours);
    json_t *o =
        json_pack("{ss sI sb sb}", "node", node, "key_id", (json_int_t)key_id, "held", rc == 0,
                  "match", rc == 0 && sodium_memcmp(ours, theirs, sizeof(ours)) == 0);
    respond_json(resp, o ? 200 : 500, o);
}

/*
 * A call that may change state: allowed only with the token. Returns true
 * when the request may go on; otherwise the answer is in resp.
 */
static bool authorized(struct api_ctx *c, const struct vio_http_request *req,
                       struct vio_http_response *resp)
{
    if (!c->token) {
        respond_error(resp, 403,
                      "changing state through the API needs a token, and this monitor has none "
                      "(set monitor.api_token_file)");
        return false;
    }
    if (!api_token_check(c->token, req->authorization)) {
        c->auth_failures++;
        respond_error(resp, 401, "%s",
                      req->authorization ? "wrong token"
                                         : "this call needs \"Authorization: Bearer TOKEN\"");
        resp->headers = hdr_bearer;
        return false;
    }
    return true;
}

void api_handle(struct api_ctx *c, const struct vio_http_request *req,
                struct vio_http_response *resp)
{
    const char *id = NULL;

    /* What cannot be a request is refused before anything looks at it. */
    if (!method_valid(req->method)) {
        respond_error(resp, 400, "invalid method");
        return;
    }
    if (!path_valid(req->path)) {
        respond_error(resp, 400, "invalid path: control characters, or not UTF-8");
        return;
    }
    if (!query_valid(req->query)) {
        respond_error(resp, 400, "invalid query: bytes a URL must escape");
        return;
    }
    bool reading = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    /* Anything but reading needs the token, before a client learns what exists. */
    if (!reading && !authorized(c, req, resp))
        return;

    enum route r = route_of(req->path, &id);
    /* No endpoint takes a body: one that came is ignored. */
    if (r == ROUTE_NONE) {
        respond_error(resp, 404, "no such endpoint: %.200s", req->path);
        return;
    }
    if (r == ROUTE_FAILOVER) {
        if (strcmp(req->method, "POST") != 0) {
            respond_error(resp, 405, "method %.32s not allowed: this endpoint takes POST",
                          req->method);
            resp->headers = hdr_post_only;
            return;
        }
        handle_failover(c, id, req->query, resp);
        return;
    }
    if (r == ROUTE_MAINT) {
        if (strcmp(req->method, "POST") != 0) {
            respond_error(resp, 405, "method %.32s not allowed: this endpoint takes POST",
                          req->method);
            resp->headers = hdr_post_only;
            return;
        }
        handle_maint(c, id, req->query, resp);
        return;
    }
    if (r == ROUTE_KEYS_RELOAD) {
        if (strcmp(req->method, "POST") != 0) {
            respond_error(resp, 405, "method %.32s not allowed: this endpoint takes POST",
                          req->method);
            resp->headers = hdr_post_only;
            return;
        }
        handle_keys_reload(c, resp);
        return;
    }
    if (!reading) {
        respond_error(resp, 405, "method %.32s not allowed: this endpoint only reads (GET)",
                      req->method);
        return;
    }

    vigil_time_t now = vio_now(c->loop);
    int64_t now_wall = vio_wall_us(c->loop);
    switch (r) {
    case ROUTE_NODES:
        handle_nodes(c, req->query, resp, now, now_wall);
        return;
    case ROUTE_NODE:
        handle_node(c, id, resp, now, now_wall);
        return;
    case ROUTE_EVENTS:
        handle_events(c, req->query, resp);
        return;
    case ROUTE_HEALTH:
        respond_json(resp, 200, health_json(c, now));
        return;
    case ROUTE_METRICS:
        handle_metrics(c, req->query, resp, now);
        return;
    case ROUTE_UI:
        api_ui_respond(c, resp);
        return;
    case ROUTE_DROPS:
        handle_drops(c, resp);
        return;
    case ROUTE_KEYCHECK:
        handle_keycheck(c, req->query, resp);
        return;
    case ROUTE_LEADER:
        respond_json(resp, 200, leader_json(c, now));
        return;
    case ROUTE_MEMBERS:
        if (c->peer_members)
            respond_json(resp, 200, c->peer_members(c->peer_ud, now));
        else
            respond_error(resp, 404, "not a member of a peer-to-peer cluster (vigil peer)");
        return;
    case ROUTE_ACTIONS:
        handle_actions(c, req->query, resp);
        return;
    case ROUTE_MAINT_LIST:
        respond_json(resp, 200, holds_json(c));
        return;
    case ROUTE_GROUPS:
        respond_json(resp, 200, groups_json(c->groups));
        return;
    case ROUTE_CHECKS:
        handle_checks(c, req->query, resp);
        return;
    case ROUTE_MAINT:
    case ROUTE_FAILOVER:
    case ROUTE_KEYS_RELOAD:
    case ROUTE_NONE:
        break;
    }
}

void api_handle_cb(void *arg, const struct vio_http_request *req, struct vio_http_response *resp)
{
    api_handle(arg, req, resp);
}
