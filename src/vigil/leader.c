/*
 * Leader election through etcd v3: the state machine described in leader.h.
 *
 * Requests, each at most one in flight at a time (a fixed slot per kind, so
 * nothing is allocated per request and the answer of a request the
 * candidate no longer cares about is recognised by the lease it was made
 * for):
 *
 *   grant      when no lease is held; retried every period until one is.
 *   keepalive  every period while a lease is held. An acknowledgement moves
 *              the local deadline to (its send time + TTL - margin); an
 *              answer without a TTL means etcd no longer knows the lease.
 *   campaign   once a lease is granted, and whenever a poll finds the key
 *              gone.
 *   poll       every period while a lease is held: who holds the key.
 *   revoke     fire and forget, when a lease is given up.
 *
 * One timer ticks every period (TTL/3) and starts what is due; another
 * fires at the local deadline and gives the lease up. The role is derived
 * from the key as last read: LEADER if its value is our id and it is
 * attached to our current lease, FOLLOWER if someone else's, NONE if the
 * key is absent or we hold no lease.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "leader.h"

enum req_kind { REQ_GRANT, REQ_KEEPALIVE, REQ_CAMPAIGN, REQ_POLL, REQ_REVOKE, REQ_KINDS };

static const char *const req_path[REQ_KINDS] = {
    "/v3/lease/grant", "/v3/lease/keepalive", "/v3/kv/txn", "/v3/kv/range", "/v3/lease/revoke",
};

/* Largest answer taken: a range of one key, or a txn, is a few hundred bytes. */
#define LEADER_BODY_MAX (64u * 1024)

struct leader_req {
    struct leader *ld;
    enum req_kind kind;
    bool busy;
    vigil_time_t sent; /* when it was started */
    int64_t lease;     /* the lease it was made for (0: none) */
    size_t endpoint;   /* the endpoint it went to */
};

struct leader {
    struct vio_loop *loop;
    struct vio_http *http;
    char **endpoints; /* without a trailing '/' */
    size_t n_endpoints, cur;
    char *key, *id;
    char *key_b64;
    vigil_time_t ttl, margin;
    vigil_time_t period; /* TTL/3: keepalives, polls and retries */
    vigil_time_t first_tick;
    size_t ka_again; /* keepalives sent again at once this period (to the next endpoint) */
    leader_change_fn on_change;
    void (*on_renewed)(void *arg);
    void *arg;

    bool running;
    int64_t lease;         /* 0: none held */
    vigil_time_t deadline; /* local end of the lease; VIGIL_TIME_NEVER without one */
    struct vio_timer tick, expire;
    struct leader_req req[REQ_KINDS];

    struct leader_view view;
    struct leader_stats stats;
};

/* ---- JSON and base64 helpers --------------------------------------------- */

char *leader_b64(const void *data, size_t len)
{
    size_t cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *out = malloc(cap);
    if (!out)
        return NULL;
    sodium_bin2base64(out, cap, data, len, sodium_base64_VARIANT_ORIGINAL);
    return out;
}

long leader_unb64(const char *b64, char *out, size_t cap)
{
    size_t len = 0;
    if (cap == 0 || sodium_base642bin((unsigned char *)out, cap - 1, b64, strlen(b64), NULL, &len,
                                      NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
        return -VIGIL_EINVAL;
    out[len] = '\0';
    return (long)len;
}

/* A 64-bit integer the gateway sends as a string (or, leniently, as a number); def if absent. */
int64_t leader_jint64(const json_t *o, const char *name, int64_t def)
{
    const json_t *v = json_object_get(o, name);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_string(v)) {
        char *end;
        errno = 0;
        long long x = strtoll(json_string_value(v), &end, 10);
        if (!errno && end != json_string_value(v) && *end == '\0')
            return (int64_t)x;
    }
    return def;
}

json_t *leader_jstr_int64(int64_t x)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, x);
    return json_string(buf);
}

/* A new JSON string holding the base64 of s. */
json_t *leader_jb64(const char *s)
{
    char *b = leader_b64(s, strlen(s));
    json_t *j = b ? json_string(b) : NULL;
    free(b);
    return j;
}

json_t *leader_put_op(const char *key, const char *value)
{
    return json_pack("{s:{s:o,s:o}}", "request_put", "key", leader_jb64(key), "value",
                     leader_jb64(value));
}

json_t *leader_fence_check(const char *key, const char *id, int64_t epoch, json_t *success)
{
    if (!json_is_array(success)) {
        json_decref(success);
        return NULL;
    }
    return json_pack("{s:[{s:o,s:s,s:s,s:o},{s:o,s:s,s:s,s:o}],s:o,s:[]}", "compare", "key",
                     leader_jb64(key), "target", "CREATE", "result", "EQUAL", "create_revision",
                     leader_jstr_int64(epoch), "key", leader_jb64(key), "target", "VALUE", "result",
                     "EQUAL", "value", leader_jb64(id), "success", success, "failure");
}

int leader_txn_succeeded(const char *body, size_t len)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    if (!json_is_object(doc) || !json_is_object(json_object_get(doc, "header"))) {
        json_decref(doc);
        return -VIGIL_EINVAL;
    }
    /* The gateway leaves false out. */
    int ok = json_is_true(json_object_get(doc, "succeeded")) ? 1 : 0;
    json_decref(doc);
    return ok;
}

const char *leader_role_name(enum leader_role r)
{
    switch (r) {
    case LEADER_ROLE_LEADER:
        return "leader";
    case LEADER_ROLE_FOLLOWER:
        return "follower";
    default:
        return "none";
    }
}

/* ---- the view ------------------------------------------------------------ */

static void set_view(struct leader *ld, enum leader_role role, int64_t epoch, const char *who)
{
    struct leader_view v = {.role = role, .epoch = epoch};
    snprintf(v.leader_id, sizeof(v.leader_id), "%s", who ? who : "");
    if (v.role == ld->view.role && v.epoch == ld->view.epoch &&
        !strcmp(v.leader_id, ld->view.leader_id))
        return;
    ld->view = v;
    if (ld->on_change)
        ld->on_change(ld->arg, &ld->view);
}

/* ---- requests ------------------------------------------------------------ */

static void on_answer(void *arg, const struct vio_http_result *res);

/* Starts a request of kind with body o (taken over). 0, or -errno (o freed either way). */
static int send_req(struct leader *ld, enum req_kind kind, json_t *o)
{
    struct leader_req *r = &ld->req[kind];
    if (r->busy) {
        json_decref(o);
        return -EBUSY;
    }
    r->sent = vio_now(ld->loop);
    r->lease = ld->lease;
    r->endpoint = ld->cur;
    /*
     * A request ends well before the next period's starts (three quarters
     * of a period): a keepalive that hangs is a failed one, and does not
     * also hold back the next.
     */
    int rc = leader_post(ld->http, ld->endpoints[ld->cur], req_path[kind], o,
                         ld->period - ld->period / 4, LEADER_BODY_MAX, on_answer, r);
    if (rc == 0)
        r->busy = true;
    return rc;
}

int leader_post(struct vio_http *http, const char *endpoint, const char *path, json_t *o,
                vigil_time_t timeout, size_t body_max, vio_http_done done, void *arg)
{
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body)
        return -ENOMEM;
    char url[1024];
    if ((size_t)snprintf(url, sizeof(url), "%s%s", endpoint, path) >= sizeof(url)) {
        free(body);
        return -EINVAL;
    }
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    struct vio_http_call call = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = strlen(body),
        .timeout = timeout,
        .body_max = body_max,
    };
    int rc = vio_http_start(http, &call, done, arg);
    free(body);
    return rc;
}

static json_t *lease_body(int64_t lease)
{
    return json_pack("{s:o}", "ID", leader_jstr_int64(lease));
}

static void grant(struct leader *ld)
{
    if (ld->lease || ld->req[REQ_GRANT].busy)
        return;
    ld->stats.grants++;
    send_req(ld, REQ_GRANT, json_pack("{s:I}", "TTL", (json_int_t)(ld->ttl / VIGIL_NSEC_PER_SEC)));
}

static void campaign(struct leader *ld)
{
    if (!ld->lease || ld->req[REQ_CAMPAIGN].busy)
        return;
    ld->stats.campaigns++;
    json_t *o =
        json_pack("{s:[{s:o,s:s,s:s,s:s}],s:[{s:{s:o,s:o,s:o}}],s:[{s:{s:o}}]}", "compare", "key",
                  json_string(ld->key_b64), "target", "CREATE", "result", "EQUAL",
                  "create_revision", "0", "success", "request_put", "key", json_string(ld->key_b64),
                  "value", leader_jb64(ld->id), "lease", leader_jstr_int64(ld->lease), "failure",
                  "request_range", "key", json_string(ld->key_b64));
    send_req(ld, REQ_CAMPAIGN, o);
}

static void poll_key(struct leader *ld)
{
    if (!ld->lease || ld->req[REQ_POLL].busy || ld->req[REQ_CAMPAIGN].busy)
        return;
    ld->stats.polls++;
    send_req(ld, REQ_POLL, json_pack("{s:o}", "key", json_string(ld->key_b64)));
}

/*
 * Gives the lease up: we are no longer leader, whatever etcd says later.
 * The lease is revoked (so that the key goes at once if etcd still has it),
 * and a new one is asked for.
 */
static void lease_lost(struct leader *ld)
{
    if (ld->lease) {
        ld->stats.lease_losses++;
        send_req(ld, REQ_REVOKE, lease_body(ld->lease));
    }
    ld->lease = 0;
    ld->deadline = VIGIL_TIME_NEVER;
    vio_timer_disarm(ld->loop, &ld->expire);
    /* We do not know who leads now: the next poll with a new lease will tell. */
    set_view(ld, LEADER_ROLE_NONE, 0, NULL);
    if (ld->running)
        grant(ld);
}

/* Moves the local deadline to sent + ttl - margin (never back), and arms its timer. */
static void extend(struct leader *ld, vigil_time_t sent, vigil_time_t ttl)
{
    vigil_time_t d = sent + ttl - ld->margin;
    if (ld->deadline == VIGIL_TIME_NEVER || d > ld->deadline)
        ld->deadline = d;
    vio_timer_arm(ld->loop, &ld->expire, ld->deadline);
}

/* The key as read (kv NULL: absent): who leads. */
static void apply_kv(struct leader *ld, const json_t *kv)
{
    if (!kv) {
        set_view(ld, LEADER_ROLE_NONE, 0, NULL);
        campaign(ld);
        return;
    }
    char who[LEADER_ID_MAX + 1] = "";
    const json_t *v = json_object_get(kv, "value");
    if (!json_is_string(v) || leader_unb64(json_string_value(v), who, sizeof(who)) < 0)
        snprintf(who, sizeof(who), "?");
    int64_t epoch = leader_jint64(kv, "create_revision", 0);
    int64_t lease = leader_jint64(kv, "lease", 0);
    bool ours =
        ld->lease && lease == ld->lease && !strcmp(who, ld->id) && vio_now(ld->loop) < ld->deadline;
    set_view(ld, ours ? LEADER_ROLE_LEADER : LEADER_ROLE_FOLLOWER, epoch, who);
}

static void on_grant(struct leader *ld, const struct leader_req *r, const json_t *doc)
{
    int64_t id = leader_jint64(doc, "ID", 0);
    int64_t ttl = leader_jint64(doc, "TTL", 0);
    if (!id || ttl <= 0)
        return; /* the tick asks again */
    if (!ld->running || ld->lease) {
        send_req(ld, REQ_REVOKE, lease_body(id)); /* not wanted any more */
        return;
    }
    ld->lease = id;
    ld->deadline = VIGIL_TIME_NEVER;
    extend(ld, r->sent, (vigil_time_t)ttl * VIGIL_NSEC_PER_SEC);
    if (vio_now(ld->loop) >= ld->deadline) {
        lease_lost(ld);
        return;
    }
    campaign(ld);
}

static void on_keepalive(struct leader *ld, const struct leader_req *r, const json_t *doc)
{
    /* One answer of the gateway's stream: {"result": {...}}. */
    const json_t *res = json_object_get(doc, "result");
    if (!json_is_object(res))
        res = doc;
    int64_t ttl = leader_jint64(res, "TTL", 0);
    if (ttl <= 0) {
        lease_lost(ld); /* etcd no longer knows the lease */
        return;
    }
    extend(ld, r->sent, (vigil_time_t)ttl * VIGIL_NSEC_PER_SEC);
    /* A pause may have held this answer past the deadline. */
    if (vio_now(ld->loop) >= ld->deadline)
        lease_lost(ld);
    else if (ld->on_renewed)
        ld->on_renewed(ld->arg);
}

static void on_campaign(struct leader *ld, const json_t *doc)
{
    if (json_is_true(json_object_get(doc, "succeeded"))) {
        /* The put created the key at the transaction's revision: our epoch. */
        const json_t *hdr = json_object_get(doc, "header");
        int64_t rev = leader_jint64(hdr, "revision", 0);
        if (rev > 0 && vio_now(ld->loop) < ld->deadline)
            set_view(ld, LEADER_ROLE_LEADER, rev, ld->id);
        return;
    }
    const json_t *resp = json_array_get(json_object_get(doc, "responses"), 0);
    const json_t *range = json_object_get(resp, "response_range");
    const json_t *kv = json_array_get(json_object_get(range, "kvs"), 0);
    if (kv)
        apply_kv(ld, kv); /* gone between the compare and now: the next poll campaigns */
}

static void on_answer(void *arg, const struct vio_http_result *res)
{
    struct leader_req *r = arg;
    struct leader *ld = r->ld;
    r->busy = false;
    bool ok = !res->error && res->status == 200;
    if ((res->error || res->status >= 500) && r->endpoint == ld->cur)
        ld->cur = (ld->cur + 1) % ld->n_endpoints;
    if (r->kind == REQ_KEEPALIVE) {
        if (ok)
            ld->stats.keepalives++;
        else
            ld->stats.keepalive_failures++;
    }
    /* Revocations are fire and forget; answers for a lease given up since are stale. */
    if (r->kind == REQ_REVOKE || (r->kind != REQ_GRANT && (!ld->running || r->lease != ld->lease)))
        return;
    /*
     * A pause may have held this answer past the deadline: the lease goes
     * before the key as read is believed. A keepalive's acknowledgement
     * still counts, from its send time (etcd refreshed the lease after it).
     */
    if (r->kind != REQ_KEEPALIVE && r->kind != REQ_GRANT && vio_now(ld->loop) >= ld->deadline) {
        lease_lost(ld);
        return;
    }
    json_t *doc = ok ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    if (!json_is_object(doc)) {
        /*
         * No answer: wait for the next period (the deadline covers the
         * lease). A 404 to a keepalive would be a lease etcd no longer
         * knows, but the gateway answers 200 without a TTL for that. A
         * keepalive, though, goes at once to the next member, once per
         * other member in a period: a member that died (or one that lost
         * the cluster's leader and has not yet found the new one) must
         * not cost the lease, which has only TTL - margin to be renewed.
         */
        json_decref(doc);
        if (r->kind == REQ_KEEPALIVE && ld->ka_again + 1 < ld->n_endpoints) {
            ld->ka_again++;
            if (send_req(ld, REQ_KEEPALIVE, lease_body(ld->lease)) != 0)
                ld->stats.keepalive_failures++;
        }
        return;
    }
    switch (r->kind) {
    case REQ_GRANT:
        on_grant(ld, r, doc);
        break;
    case REQ_KEEPALIVE:
        on_keepalive(ld, r, doc);
        break;
    case REQ_CAMPAIGN:
        on_campaign(ld, doc);
        break;
    case REQ_POLL:
        apply_kv(ld, json_array_get(json_object_get(doc, "kvs"), 0));
        break;
    default:
        break;
    }
    json_decref(doc);
}

/* ---- timers -------------------------------------------------------------- */

static void on_tick(void *arg, vigil_time_t now)
{
    struct leader *ld = arg;
    if (!ld->running)
        return;
    if (!ld->lease) {
        grant(ld);
    } else {
        /* One in flight at a time (a slow one ends before the next tick, by its timeout). */
        ld->ka_again = 0;
        int rc = send_req(ld, REQ_KEEPALIVE, lease_body(ld->lease));
        if (rc != 0 && rc != -EBUSY)
            ld->stats.keepalive_failures++;
        poll_key(ld);
    }
    vio_timer_arm(ld->loop, &ld->tick, now + ld->period);
}

static void on_expire(void *arg, vigil_time_t now)
{
    struct leader *ld = arg;
    (void)now;
    lease_lost(ld);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void free_strings(struct leader *ld)
{
    for (size_t i = 0; ld->endpoints && i < ld->n_endpoints; i++)
        free(ld->endpoints[i]);
    free(ld->endpoints);
    free(ld->key);
    free(ld->id);
    free(ld->key_b64);
}

int leader_new(struct vio_loop *loop, struct vio_http *http, const struct leader_opts *o,
               struct leader **out)
{
    *out = NULL;
    vigil_time_t ttl = o->ttl ? o->ttl : LEADER_TTL_DEFAULT;
    vigil_time_t margin = o->margin ? o->margin : ttl / 5;
    const char *const *eps = o->n_endpoints ? o->endpoints : &o->endpoint;
    size_t n_eps = o->n_endpoints ? o->n_endpoints : 1;
    for (size_t i = 0; i < n_eps; i++)
        if (!eps[i] || !*eps[i])
            return -VIGIL_EINVAL;
    if (!o->id || !*o->id || strlen(o->id) > LEADER_ID_MAX || ttl < LEADER_TTL_MIN ||
        ttl > LEADER_TTL_MAX || ttl % VIGIL_NSEC_PER_SEC || margin <= 0 || margin >= ttl / 2 ||
        (o->key && !*o->key))
        return -VIGIL_EINVAL;
    struct leader *ld = calloc(1, sizeof(*ld));
    if (!ld)
        return -VIGIL_ENOMEM;
    const char *key = o->key ? o->key : LEADER_KEY_DEFAULT;
    ld->endpoints = calloc(n_eps, sizeof(*ld->endpoints));
    ld->key = strdup(key);
    ld->id = strdup(o->id);
    ld->key_b64 = leader_b64(key, strlen(key));
    bool ok = ld->endpoints && ld->key && ld->id && ld->key_b64;
    for (size_t i = 0; ok && i < n_eps; i++) {
        ld->endpoints[i] = strdup(eps[i]);
        ok = ld->endpoints[i] != NULL;
        ld->n_endpoints = i + 1;
    }
    if (!ok) {
        free_strings(ld);
        free(ld);
        return -VIGIL_ENOMEM;
    }
    for (size_t i = 0; i < n_eps; i++) {
        size_t n = strlen(ld->endpoints[i]);
        while (n > 0 && ld->endpoints[i][n - 1] == '/')
            ld->endpoints[i][--n] = '\0';
    }
    ld->loop = loop;
    ld->http = http;
    ld->ttl = ttl;
    ld->margin = margin;
    ld->period = ttl / 3;
    ld->on_change = o->on_change;
    ld->on_renewed = o->on_renewed;
    ld->first_tick = o->first_tick > 0 && o->first_tick < ld->period ? o->first_tick : ld->period;
    ld->arg = o->arg;
    ld->deadline = VIGIL_TIME_NEVER;
    for (int k = 0; k < REQ_KINDS; k++) {
        ld->req[k].ld = ld;
        ld->req[k].kind = (enum req_kind)k;
    }
    vio_timer_init(&ld->tick, on_tick, ld);
    vio_timer_init(&ld->expire, on_expire, ld);
    *out = ld;
    return 0;
}

int leader_start(struct leader *ld)
{
    if (ld->running)
        return 0;
    ld->running = true;
    if (vio_timer_arm(ld->loop, &ld->tick, vio_now(ld->loop) + ld->first_tick) != 0)
        return -ENOMEM;
    grant(ld);
    return 0;
}

void leader_resign(struct leader *ld)
{
    ld->running = false;
    vio_timer_disarm(ld->loop, &ld->tick);
    lease_lost(ld);
}

void leader_free(struct leader *ld)
{
    if (!ld)
        return;
    vio_timer_disarm(ld->loop, &ld->tick);
    vio_timer_disarm(ld->loop, &ld->expire);
    vio_http_close(ld->http);
    free_strings(ld);
    free(ld);
}

void leader_view(struct leader *ld, struct leader_view *out)
{
    /* The deadline holds even if the loop has not turned since it passed. */
    if (ld->view.role == LEADER_ROLE_LEADER && vio_now(ld->loop) >= ld->deadline)
        lease_lost(ld);
    *out = ld->view;
}

bool leader_is_leader(struct leader *ld)
{
    struct leader_view v;
    leader_view(ld, &v);
    return v.role == LEADER_ROLE_LEADER;
}

const char *leader_endpoint(const struct leader *ld)
{
    return ld->endpoints[ld->cur];
}

void leader_endpoint_failed(struct leader *ld, const char *endpoint)
{
    if (!strcmp(endpoint, ld->endpoints[ld->cur]))
        ld->cur = (ld->cur + 1) % ld->n_endpoints;
}

vigil_time_t leader_ttl(const struct leader *ld)
{
    return ld->ttl;
}

const char *leader_key(const struct leader *ld)
{
    return ld->key;
}

const char *leader_id(const struct leader *ld)
{
    return ld->id;
}

vigil_time_t leader_deadline(const struct leader *ld)
{
    return ld->deadline;
}

const struct leader_stats *leader_stats(const struct leader *ld)
{
    return &ld->stats;
}
