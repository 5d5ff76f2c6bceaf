/*
 * Tests of leader election (src/vigil/leader.c) in virtual time.
 *
 * The candidates talk to a small etcd written here, behind the fake HTTP
 * client: leases with a TTL that expire on the virtual clock (taking the
 * keys attached to them), one leader key with its create_revision, a
 * revision counter, and the four gateway calls the candidates make
 * (lease grant/keepalive/revoke, kv range and txn with CREATE and VALUE
 * compares), answered in the gateway's JSON (64-bit integers as strings,
 * false and zero left out, base64 keys and values). Every answer takes
 * DELAY of virtual time; a candidate's link can be cut.
 *
 * Timing claims are checked on both sides of their boundary: a leader
 * whose keepalives fail is leader 1 ns before its local deadline and not
 * at it, and that deadline comes before etcd lets the lease go.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fake_http.h"
#include "fake_loop.h"
#include "vigil/leader.h"

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC
/* A virtual start time far from 0, so that arithmetic mistakes show. */
#define T0 (1000 * S)
/* Each answer of the fake etcd arrives this long after its request. */
#define DELAY (10 * MS)
#define TTL   (5 * S)
/* leader.c's default margin: a fifth of the TTL. */
#define MARGIN (TTL / 5)
#define KEY    "/vigil/leader"

/* ---- a small etcd ---- */

struct fake_lease {
    int64_t id;
    vigil_time_t ttl, expiry;
    bool live;
};

struct fake_etcd {
    vigil_time_t *clock;
    int64_t rev, next_lease;
    struct fake_lease leases[32];
    size_t n_leases;
    bool has_key;
    char value[128];
    int64_t create_rev, key_lease;
    unsigned other_puts; /* puts to keys other than the leader key (fenced writes) */
};

/* One candidate's link to the fake etcd. */
struct link {
    struct fake_etcd *e;
    bool down;             /* every request refused */
    vigil_time_t ka_delay; /* keepalives answered this late; 0: DELAY */
    bool ka_hang_once;     /* the next keepalive is lost on its way (never answered) */
    const char *dead;      /* requests to URLs starting with this are refused (a dead member) */
};

static void fe_delete_key(struct fake_etcd *e)
{
    if (e->has_key) {
        e->has_key = false;
        e->rev++;
    }
}

static struct fake_lease *fe_lease(struct fake_etcd *e, int64_t id)
{
    for (size_t i = 0; i < e->n_leases; i++)
        if (e->leases[i].id == id && e->leases[i].live)
            return &e->leases[i];
    return NULL;
}

static void fe_drop_lease(struct fake_etcd *e, struct fake_lease *l)
{
    l->live = false;
    if (e->has_key && e->key_lease == l->id)
        fe_delete_key(e);
}

/* Leases whose time has come go, with their key (etcd checks about every 500 ms; here exactly). */
static void fe_expire(struct fake_etcd *e)
{
    for (size_t i = 0; i < e->n_leases; i++)
        if (e->leases[i].live && *e->clock >= e->leases[i].expiry)
            fe_drop_lease(e, &e->leases[i]);
}

static int64_t fe_new_lease(struct fake_etcd *e, vigil_time_t ttl)
{
    assert_true(e->n_leases < sizeof(e->leases) / sizeof(e->leases[0]));
    struct fake_lease *l = &e->leases[e->n_leases++];
    l->id = e->next_lease++;
    l->ttl = ttl;
    l->expiry = *e->clock + ttl;
    l->live = true;
    return l->id;
}

static void fe_put_key(struct fake_etcd *e, const char *value, int64_t lease)
{
    e->rev++;
    if (!e->has_key)
        e->create_rev = e->rev;
    e->has_key = true;
    snprintf(e->value, sizeof(e->value), "%s", value);
    e->key_lease = lease;
}

static int64_t jint(const json_t *o, const char *name)
{
    const json_t *v = json_object_get(o, name);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static json_t *jnum(int64_t x)
{
    char b[32];
    snprintf(b, sizeof(b), "%" PRId64, x);
    return json_string(b);
}

static json_t *fe_header(struct fake_etcd *e)
{
    return json_pack("{s:o}", "revision", jnum(e->rev));
}

static json_t *fe_kv(struct fake_etcd *e)
{
    char *k = leader_b64(KEY, strlen(KEY));
    char *v = leader_b64(e->value, strlen(e->value));
    json_t *kv =
        json_pack("{s:s,s:s,s:o,s:o,s:o}", "key", k, "value", v, "create_revision",
                  jnum(e->create_rev), "mod_revision", jnum(e->rev), "lease", jnum(e->key_lease));
    free(k);
    free(v);
    return kv;
}

/* The range answer's body: kvs left out when the key is absent, as the gateway does. */
static json_t *fe_range(struct fake_etcd *e)
{
    json_t *o = json_pack("{s:o}", "header", fe_header(e));
    if (e->has_key)
        json_object_set_new(o, "kvs", json_pack("[o]", fe_kv(e)));
    return o;
}

static bool fe_is_key(const json_t *o)
{
    char k[256];
    const json_t *kj = json_object_get(o, "key");
    return json_is_string(kj) && leader_unb64(json_string_value(kj), k, sizeof(k)) >= 0 &&
           !strcmp(k, KEY);
}

static bool fe_compare(struct fake_etcd *e, const json_t *c)
{
    assert_true(fe_is_key(c));
    const char *target = json_string_value(json_object_get(c, "target"));
    assert_string_equal(json_string_value(json_object_get(c, "result")), "EQUAL");
    if (!strcmp(target, "CREATE"))
        return (e->has_key ? e->create_rev : 0) == jint(c, "create_revision");
    assert_string_equal(target, "VALUE");
    char v[128];
    assert_true(leader_unb64(json_string_value(json_object_get(c, "value")), v, sizeof(v)) >= 0);
    return e->has_key && !strcmp(v, e->value);
}

static json_t *fe_txn(struct fake_etcd *e, const json_t *req)
{
    bool ok = true;
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(req, "compare"), i, c) ok = ok && fe_compare(e, c);
    const json_t *ops = json_object_get(req, ok ? "success" : "failure");
    json_t *responses = json_array();
    const json_t *op;
    json_array_foreach(ops, i, op)
    {
        const json_t *put = json_object_get(op, "request_put");
        const json_t *range = json_object_get(op, "request_range");
        if (put && fe_is_key(put)) {
            char v[128];
            leader_unb64(json_string_value(json_object_get(put, "value")), v, sizeof(v));
            int64_t lease = jint(put, "lease");
            assert_true(lease == 0 || fe_lease(e, lease));
            fe_put_key(e, v, lease);
            json_array_append_new(responses, json_pack("{s:{}}", "response_put"));
        } else if (put) {
            e->rev++;
            e->other_puts++;
            json_array_append_new(responses, json_pack("{s:{}}", "response_put"));
        } else {
            assert_non_null(range);
            json_array_append_new(responses, json_pack("{s:o}", "response_range", fe_range(e)));
        }
    }
    json_t *o = json_pack("{s:o,s:o}", "header", fe_header(e), "responses", responses);
    if (ok)
        json_object_set_new(o, "succeeded", json_true());
    return o;
}

static void answer(void *arg, const struct vio_http_call *call, struct fake_http_answer *ans)
{
    struct link *lk = arg;
    struct fake_etcd *e = lk->e;
    if (lk->down || (lk->dead && !strncmp(call->url, lk->dead, strlen(lk->dead)))) {
        ans->error = -ECONNREFUSED;
        return;
    }
    fe_expire(e);
    json_t *req = json_loadb(call->body, call->body_len, 0, NULL);
    assert_non_null(req);
    assert_string_equal(call->method, "POST");
    json_t *out = NULL;
    long status = 200;
    const char *path = strstr(call->url, "/v3/");
    assert_non_null(path);
    if (!strcmp(path, "/v3/lease/grant")) {
        int64_t ttl = jint(req, "TTL");
        int64_t id = fe_new_lease(e, ttl * S);
        out = json_pack("{s:o,s:o,s:o}", "header", fe_header(e), "ID", jnum(id), "TTL", jnum(ttl));
    } else if (!strcmp(path, "/v3/lease/keepalive") && lk->ka_hang_once) {
        lk->ka_hang_once = false;
        ans->delay = 3600 * S;
        json_decref(req);
        return;
    } else if (!strcmp(path, "/v3/lease/keepalive")) {
        int64_t id = jint(req, "ID");
        struct fake_lease *l = fe_lease(e, id);
        json_t *res = json_pack("{s:o,s:o}", "header", fe_header(e), "ID", jnum(id));
        if (l) {
            l->expiry = *e->clock + l->ttl;
            json_object_set_new(res, "TTL", jnum(l->ttl / S));
        }
        out = json_pack("{s:o}", "result", res);
    } else if (!strcmp(path, "/v3/lease/revoke")) {
        struct fake_lease *l = fe_lease(e, jint(req, "ID"));
        if (l) {
            fe_drop_lease(e, l);
            out = json_pack("{s:o}", "header", fe_header(e));
        } else {
            status = 404;
            out =
                json_pack("{s:s,s:i}", "error", "etcdserver: requested lease not found", "code", 5);
        }
    } else if (!strcmp(path, "/v3/kv/range")) {
        assert_true(fe_is_key(req));
        out = fe_range(e);
    } else if (!strcmp(path, "/v3/kv/txn")) {
        out = fe_txn(e, req);
    } else {
        fail_msg("unexpected call %s", call->url);
    }
    json_decref(req);
    ans->status = status;
    ans->body = json_dumps(out, JSON_COMPACT);
    ans->body_len = strlen(ans->body);
    ans->delay = lk->ka_delay && strstr(path, "keepalive") ? lk->ka_delay : DELAY;
    json_decref(out);
}

/* ---- candidates ---- */

struct cand {
    struct link link;
    struct vio_http *http;
    struct leader *ld;
    unsigned changes;
    struct leader_view last;
    struct leader_view seen[64]; /* every view reported, in order (the first 64) */
};

struct world {
    vigil_time_t clock;
    struct vio_loop *loop;
    struct fake_etcd etcd;
    struct cand c[3];
};

static void on_change(void *arg, const struct leader_view *v)
{
    struct cand *c = arg;
    if (c->changes < sizeof(c->seen) / sizeof(c->seen[0]))
        c->seen[c->changes] = *v;
    c->changes++;
    c->last = *v;
}

static void cand_start(struct world *w, int i, const char *id)
{
    struct cand *c = &w->c[i];
    c->link.e = &w->etcd;
    c->http = fake_http_new(w->loop, answer, &c->link);
    assert_non_null(c->http);
    struct leader_opts o = {
        .endpoint = "http://etcd.test:2379/",
        .id = id,
        .ttl = TTL,
        .on_change = on_change,
        .arg = c,
    };
    assert_int_equal(leader_new(w->loop, c->http, &o, &c->ld), 0);
    assert_int_equal(leader_start(c->ld), 0);
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->clock = T0;
    w->loop = fake_loop_new(&w->clock);
    w->etcd.clock = &w->clock;
    w->etcd.rev = 1;
    w->etcd.next_lease = 7000;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    for (int i = 0; i < 3; i++)
        leader_free(w->c[i].ld);
    vio_loop_free(w->loop);
    free(w);
    return 0;
}

static void run_to(struct world *w, vigil_time_t t)
{
    fake_loop_run_until(w->loop, t);
}

static size_t count_calls(const struct vio_http *h, const char *path)
{
    size_t n = 0;
    for (size_t i = 0; i < fake_http_calls(h); i++)
        if (strstr(fake_http_call_at(h, i)->url, path))
            n++;
    return n;
}

/* ---- tests ---- */

static void test_elected(void **state)
{
    struct world *w = *state;
    cand_start(w, 0, "mon-a");
    struct leader *a = w->c[0].ld;
    assert_false(leader_is_leader(a));
    /* Grant, then the campaign: leader after two round trips, not before. */
    run_to(w, T0 + 2 * DELAY - 1);
    assert_false(leader_is_leader(a));
    run_to(w, T0 + 2 * DELAY);
    assert_true(leader_is_leader(a));
    struct leader_view v;
    leader_view(a, &v);
    assert_int_equal(v.role, LEADER_ROLE_LEADER);
    assert_int_equal(v.epoch, w->etcd.create_rev);
    assert_int_equal(v.epoch, 2);
    assert_string_equal(v.leader_id, "mon-a");
    assert_string_equal(w->etcd.value, "mon-a");
    assert_int_equal(w->c[0].changes, 1);
    /* The URLs: the endpoint's trailing slash dropped. */
    assert_string_equal(fake_http_call_at(w->c[0].http, 0)->url,
                        "http://etcd.test:2379/v3/lease/grant");
    assert_string_equal(fake_http_call_at(w->c[0].http, 1)->url, "http://etcd.test:2379/v3/kv/txn");
    /* The deadline: the grant's send time + TTL - margin. */
    assert_int_equal(leader_deadline(a), T0 + TTL - MARGIN);

    /* A minute on: still leader, one keepalive and one poll every TTL/3, nothing lost. */
    run_to(w, T0 + 60 * S);
    assert_true(leader_is_leader(a));
    assert_int_equal(w->c[0].changes, 1);
    size_t ka = count_calls(w->c[0].http, "/keepalive");
    assert_true(ka >= 35 && ka <= 36);
    assert_int_equal(leader_stats(a)->keepalive_failures, 0);
    assert_int_equal(leader_stats(a)->lease_losses, 0);
    assert_int_equal(leader_stats(a)->grants, 1);
    /* The deadline follows the last keepalive's send time. */
    assert_true(leader_deadline(a) > T0 + 60 * S);
    assert_true(leader_deadline(a) <= T0 + 60 * S + TTL - MARGIN);
}

/* first_tick: the first keepalive and poll at that offset, then one every period. */
static void test_first_tick(void **state)
{
    struct world *w = *state;
    struct cand *c = &w->c[0];
    c->link.e = &w->etcd;
    c->http = fake_http_new(w->loop, answer, &c->link);
    assert_non_null(c->http);
    const vigil_time_t first = 400 * MS, period = TTL / 3;
    struct leader_opts o = {
        .endpoint = "http://etcd.test:2379",
        .id = "mon-a",
        .ttl = TTL,
        .first_tick = first,
        .on_change = on_change,
        .arg = c,
    };
    assert_int_equal(leader_new(w->loop, c->http, &o, &c->ld), 0);
    assert_int_equal(leader_start(c->ld), 0);
    run_to(w, T0 + first - 1);
    assert_int_equal(count_calls(c->http, "/keepalive"), 0);
    run_to(w, T0 + first);
    assert_int_equal(count_calls(c->http, "/keepalive"), 1);
    run_to(w, T0 + first + period - 1);
    assert_int_equal(count_calls(c->http, "/keepalive"), 1);
    run_to(w, T0 + first + period);
    assert_int_equal(count_calls(c->http, "/keepalive"), 2);
    /* The renewal acknowledged moves the deadline from its send time. */
    run_to(w, T0 + first + period + DELAY);
    assert_int_equal(leader_deadline(c->ld), T0 + first + period + TTL - MARGIN);
}

/*
 * Several endpoints: when the member in use dies, the keepalive goes at
 * once to the next one, and the lease (and the leadership) lives on.
 */
static void test_member_dies(void **state)
{
    struct world *w = *state;
    struct cand *c = &w->c[0];
    c->link.e = &w->etcd;
    c->http = fake_http_new(w->loop, answer, &c->link);
    assert_non_null(c->http);
    static const char *const eps[] = {"http://m1.test:2379", "http://m2.test:2379"};
    struct leader_opts o = {
        .endpoints = eps,
        .n_endpoints = 2,
        .id = "mon-a",
        .ttl = TTL,
        .on_change = on_change,
        .arg = c,
    };
    assert_int_equal(leader_new(w->loop, c->http, &o, &c->ld), 0);
    assert_int_equal(leader_start(c->ld), 0);
    run_to(w, T0 + 10 * S);
    assert_true(leader_is_leader(c->ld));
    assert_string_equal(leader_endpoint(c->ld), "http://m1.test:2379");
    int64_t epoch = w->etcd.create_rev;
    /* m1 dies: the next keepalive is refused there and sent to m2 at once. */
    c->link.dead = "http://m1.test";
    size_t before = count_calls(c->http, "m2.test:2379/v3/lease/keepalive");
    run_to(w, T0 + 10 * S + TTL / 3 + DELAY);
    assert_int_equal(count_calls(c->http, "m2.test:2379/v3/lease/keepalive"), before + 1);
    assert_string_equal(leader_endpoint(c->ld), "http://m2.test:2379");
    run_to(w, T0 + 60 * S);
    assert_true(leader_is_leader(c->ld));
    assert_int_equal(w->etcd.create_rev, epoch);
    assert_int_equal(c->changes, 1);
    assert_int_equal(leader_stats(c->ld)->lease_losses, 0);
}

static void test_follower(void **state)
{
    struct world *w = *state;
    cand_start(w, 0, "mon-a");
    run_to(w, T0 + S);
    cand_start(w, 1, "mon-b");
    run_to(w, T0 + S + 2 * DELAY);
    struct leader_view vb;
    leader_view(w->c[1].ld, &vb);
    assert_int_equal(vb.role, LEADER_ROLE_FOLLOWER);
    assert_string_equal(vb.leader_id, "mon-a");
    assert_int_equal(vb.epoch, 2);
    assert_true(leader_is_leader(w->c[0].ld));
    /* They stay so. */
    run_to(w, T0 + 30 * S);
    assert_true(leader_is_leader(w->c[0].ld));
    assert_false(leader_is_leader(w->c[1].ld));
    assert_int_equal(w->c[1].changes, 1);
    assert_true(leader_stats(w->c[1].ld)->polls >= 15);
}

/*
 * A leader's link fails: it stops being leader at its local deadline (1 ns
 * before it, it still is), which is before etcd lets its lease go; the
 * follower takes over only after that, with a new epoch. Never two leaders.
 */
static void test_lease_lost(void **state)
{
    struct world *w = *state;
    cand_start(w, 0, "mon-a");
    run_to(w, T0 + S);
    cand_start(w, 1, "mon-b");
    /* Cut just after a keepalive's answer came (T0 + 6 periods + DELAY). */
    run_to(w, T0 + 10 * S + 100 * MS);
    struct leader *a = w->c[0].ld, *b = w->c[1].ld;
    assert_true(leader_is_leader(a));
    int64_t epoch_a = w->c[0].last.epoch;

    w->c[0].link.down = true;
    /* The last keepalive etcd acknowledged was sent before the cut. */
    vigil_time_t last_ok = -1;
    for (size_t i = 0; i < fake_http_calls(w->c[0].http); i++) {
        const struct fake_http_record *r = fake_http_call_at(w->c[0].http, i);
        if (strstr(r->url, "/keepalive") && r->error == 0 && r->finished >= 0)
            last_ok = r->started;
    }
    assert_true(last_ok > T0 + 8 * S);
    vigil_time_t deadline = last_ok + TTL - MARGIN;
    assert_int_equal(leader_deadline(a), deadline);
    /* etcd's lease ends TTL after it received that keepalive. */
    const struct fake_lease *la = fe_lease(&w->etcd, w->etcd.key_lease);
    assert_non_null(la);
    assert_int_equal(la->expiry, last_ok + TTL);

    bool b_took_over = false;
    vigil_time_t b_at = 0;
    for (vigil_time_t t = T0 + 10 * S + 100 * MS; t <= T0 + 30 * S; t += MS) {
        run_to(w, t);
        bool la_ = leader_is_leader(a), lb = leader_is_leader(b);
        assert_false(la_ && lb);
        if (t < deadline)
            assert_true(la_);
        else
            assert_false(la_);
        if (lb && !b_took_over) {
            b_took_over = true;
            b_at = t;
        }
    }
    assert_true(b_took_over);
    /* Not before etcd let a's lease go; within one poll period (and a round trip) after. */
    assert_true(b_at >= last_ok + TTL);
    assert_true(b_at <= last_ok + TTL + TTL / 3 + 2 * DELAY);
    struct leader_view vb;
    leader_view(b, &vb);
    assert_true(vb.epoch > epoch_a);
    assert_string_equal(vb.leader_id, "mon-b");
    assert_true(leader_stats(a)->lease_losses >= 1);
    assert_true(leader_stats(a)->keepalive_failures >= 2);

    /* The link back: a gets a new lease and follows b. */
    w->c[0].link.down = false;
    run_to(w, T0 + 40 * S);
    struct leader_view va;
    leader_view(a, &va);
    assert_int_equal(va.role, LEADER_ROLE_FOLLOWER);
    assert_string_equal(va.leader_id, "mon-b");
    assert_int_equal(va.epoch, vb.epoch);
    assert_true(leader_is_leader(b));
}

/*
 * A keepalive that hangs times out three quarters of a period after it
 * went, so the next tick sends the next one: one lost keepalive costs
 * nothing (the deadline is TTL - margin after the last acknowledged one).
 */
static void test_keepalive_hangs(void **state)
{
    struct world *w = *state;
    cand_start(w, 0, "mon-a");
    run_to(w, T0 + 10 * S + 100 * MS);
    struct leader *a = w->c[0].ld;
    assert_true(leader_is_leader(a));
    w->c[0].link.ka_hang_once = true;
    for (vigil_time_t t = T0 + 10 * S + 100 * MS; t <= T0 + 20 * S; t += MS) {
        run_to(w, t);
        assert_true(leader_is_leader(a));
    }
    assert_int_equal(leader_stats(a)->keepalive_failures, 1);
    assert_int_equal(leader_stats(a)->lease_losses, 0);
    assert_int_equal(w->c[0].changes, 1);
    const struct fake_http_record *hung = NULL;
    for (size_t i = 0; i < fake_http_calls(w->c[0].http); i++) {
        const struct fake_http_record *r = fake_http_call_at(w->c[0].http, i);
        if (r->error == -ETIMEDOUT)
            hung = r;
    }
    assert_non_null(hung);
    assert_int_equal(hung->finished - hung->started, TTL / 3 - TTL / 3 / 4);
}

/* The leader key goes (an operator deleted it): the follower campaigns and wins a new epoch. */
static void test_key_deleted(void **state)
{
    struct world *w = *state;
    /* Someone else leads, on a lease that never ends. */
    int64_t l = fe_new_lease(&w->etcd, 3600 * S);
    fe_put_key(&w->etcd, "mon-x", l);
    int64_t old_epoch = w->etcd.create_rev;
    cand_start(w, 1, "mon-b");
    run_to(w, T0 + 10 * S);
    struct leader *b = w->c[1].ld;
    assert_int_equal(w->c[1].last.role, LEADER_ROLE_FOLLOWER);
    assert_string_equal(w->c[1].last.leader_id, "mon-x");
    assert_int_equal(w->c[1].last.epoch, old_epoch);

    vigil_time_t gone = w->clock;
    fe_delete_key(&w->etcd);
    vigil_time_t won = 0;
    for (vigil_time_t t = gone; t <= gone + 10 * S && !won; t += MS) {
        run_to(w, t);
        if (leader_is_leader(b))
            won = t;
    }
    assert_true(won > 0);
    /* One poll period finds it gone, a campaign round trip takes it (+ the 1 ms step here). */
    assert_true(won <= gone + TTL / 3 + 2 * DELAY + MS);
    struct leader_view v;
    leader_view(b, &v);
    assert_string_equal(v.leader_id, "mon-b");
    assert_true(v.epoch > old_epoch);
    assert_int_equal(v.epoch, w->etcd.create_rev);
}

/* A paused process: once the clock passed the deadline, the role says so before any timer ran. */
static void test_paused_past_deadline(void **state)
{
    struct world *w = *state;
    cand_start(w, 0, "mon-a");
    run_to(w, T0 + 3 * S);
    struct leader *a = w->c[0].ld;
    assert_true(leader_is_leader(a));
    vigil_time_t d = leader_deadline(a);
    fake_loop_pause(w->loop, true);
    w->clock = d - 1;
    assert_true(leader_is_leader(a));
    w->clock = d;
    assert_false(leader_is_leader(a));
    assert_int_equal(w->c[0].last.role, LEADER_ROLE_NONE);
    fake_loop_pause(w->loop, false);
    /* On resuming it starts again with a new lease; its old key still stands until etcd expires it.
     */
    run_to(w, d + 10 * S);
    assert_true(leader_is_leader(a));
    assert_true(w->c[0].last.epoch > 2);
    assert_int_equal(leader_stats(a)->grants, 2);
}

/*
 * Answers held by a pause. A keepalive sent before the pause and read after
 * it still counts from its send time: woken before (that send + TTL -
 * margin), the candidate is rightly still leader. Woken after it, it is
 * not, and a poll answer read late (before the keepalive's) must not make
 * it a follower of its own stale claim either: the lease goes first.
 */
static void paused_with_answers_in_flight(struct world *w, vigil_time_t wake_after_ka,
                                          vigil_time_t ka_delay)
{
    cand_start(w, 0, "mon-a");
    w->c[0].link.ka_delay = ka_delay;
    vigil_time_t period = TTL / 3;
    /* A keepalive and a poll are in flight at 3 periods + 1 ns. */
    run_to(w, T0 + 3 * period + 1);
    assert_true(leader_is_leader(w->c[0].ld));
    assert_int_equal(fake_http_in_flight(w->c[0].http), 2);
    assert_int_equal(leader_deadline(w->c[0].ld), T0 + 2 * period + TTL - MARGIN);
    fake_loop_pause(w->loop, true);
    w->clock = T0 + 3 * period + TTL - MARGIN + wake_after_ka;
    fake_loop_pause(w->loop, false);
    run_to(w, w->clock);
}

static void test_answer_after_pause_counts(void **state)
{
    struct world *w = *state;
    paused_with_answers_in_flight(w, -1, 0);
    assert_true(leader_is_leader(w->c[0].ld));
    assert_int_equal(leader_deadline(w->c[0].ld), T0 + 3 * (TTL / 3) + TTL - MARGIN);
    assert_int_equal(w->c[0].changes, 1);
}

static void test_answer_after_deadline(void **state)
{
    struct world *w = *state;
    /* The poll's answer is read first, with the old deadline passed. */
    paused_with_answers_in_flight(w, 0, 5 * DELAY);
    struct leader *a = w->c[0].ld;
    assert_false(leader_is_leader(a));
    for (unsigned i = 0; i < w->c[0].changes; i++)
        assert_false(w->c[0].seen[i].role == LEADER_ROLE_FOLLOWER &&
                     !strcmp(w->c[0].seen[i].leader_id, "mon-a"));
    assert_int_equal(w->c[0].seen[1].role, LEADER_ROLE_NONE);
    assert_int_equal(leader_stats(a)->lease_losses, 1);
}

/* etcd forgot the lease (revoked behind our back): the next keepalive says so, and we step down. */
static void test_lease_unknown(void **state)
{
    struct world *w = *state;
    cand_start(w, 0, "mon-a");
    run_to(w, T0 + S);
    struct leader *a = w->c[0].ld;
    assert_true(leader_is_leader(a));
    fe_drop_lease(&w->etcd, fe_lease(&w->etcd, w->etcd.key_lease));
    assert_false(w->etcd.has_key);
    /* The next keepalive goes at one period, its answer DELAY later: no longer leader then. */
    vigil_time_t at = T0 + TTL / 3 + DELAY;
    run_to(w, at - 1);
    assert_true(leader_is_leader(a)); /* it cannot know before */
    run_to(w, at);
    assert_false(leader_is_leader(a));
    assert_true(at < leader_deadline(a) || leader_deadline(a) == VIGIL_TIME_NEVER);
    /* A new lease and a new term, at once. */
    run_to(w, at + 3 * DELAY);
    assert_true(leader_is_leader(a));
    assert_true(w->c[0].last.epoch > 2);
    assert_int_equal(leader_stats(a)->grants, 2);
}

/* The fencing transaction: a write made under an epoch runs only while that epoch leads. */
static void test_fence_check(void **state)
{
    struct world *w = *state;
    json_t *ops = json_pack("[o]", leader_put_op("/vigil/actions/web3", "drain"));
    json_t *txn = leader_fence_check(KEY, "mon-a", 2, ops);
    assert_non_null(txn);
    /* The shape the gateway wants. */
    char *s = json_dumps(txn, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(strstr(s, "\"create_revision\":\"2\""));
    assert_non_null(strstr(s, "\"target\":\"VALUE\""));
    assert_non_null(strstr(s, "\"value\":\"bW9uLWE=\"")); /* mon-a */
    assert_non_null(strstr(s, "\"failure\":[]"));
    free(s);

    struct link lk = {.e = &w->etcd};
    struct vio_http_call call = {.method = "POST", .url = "http://e/v3/kv/txn"};
    struct fake_http_answer ans;
    char *body = json_dumps(txn, JSON_COMPACT);
    call.body = body;
    call.body_len = strlen(body);

    /* No leader: refused. */
    memset(&ans, 0, sizeof(ans));
    answer(&lk, &call, &ans);
    assert_int_equal(leader_txn_succeeded(ans.body, ans.body_len), 0);
    free(ans.body);
    /* mon-a leads at epoch 2: done. */
    fe_put_key(&w->etcd, "mon-a", 0);
    assert_int_equal(w->etcd.create_rev, 2);
    memset(&ans, 0, sizeof(ans));
    answer(&lk, &call, &ans);
    assert_int_equal(leader_txn_succeeded(ans.body, ans.body_len), 1);
    assert_int_equal(w->etcd.other_puts, 1);
    free(ans.body);
    /* A new mon-a term (a new epoch): the old epoch's write is refused. */
    fe_delete_key(&w->etcd);
    fe_put_key(&w->etcd, "mon-a", 0);
    memset(&ans, 0, sizeof(ans));
    answer(&lk, &call, &ans);
    assert_int_equal(leader_txn_succeeded(ans.body, ans.body_len), 0);
    assert_int_equal(w->etcd.other_puts, 1);
    free(ans.body);
    free(body);
    json_decref(txn);

    assert_int_equal(leader_txn_succeeded("{}", 2), -VIGIL_EINVAL);
    assert_int_equal(leader_txn_succeeded("nope", 4), -VIGIL_EINVAL);
    /* Not an array: NULL, nothing leaked. */
    assert_null(leader_fence_check(KEY, "a", 1, json_object()));
}

static void test_b64_and_options(void **state)
{
    (void)state;
    char *b = leader_b64("/vigil/leader", 13);
    assert_string_equal(b, "L3ZpZ2lsL2xlYWRlcg==");
    char out[32];
    assert_int_equal(leader_unb64(b, out, sizeof(out)), 13);
    assert_string_equal(out, "/vigil/leader");
    assert_int_equal(leader_unb64(b, out, 5), -VIGIL_EINVAL); /* too small */
    assert_int_equal(leader_unb64("!!", out, sizeof(out)), -VIGIL_EINVAL);
    free(b);

    vigil_time_t clock = 0;
    struct vio_loop *l = fake_loop_new(&clock);
    struct vio_http *h = fake_http_new(l, NULL, NULL);
    struct leader *ld;
    struct leader_opts o = {.endpoint = "http://e", .id = "a"};
    o.ttl = S; /* below etcd's minimum */
    assert_int_equal(leader_new(l, h, &o, &ld), -VIGIL_EINVAL);
    o.ttl = 5 * S + 1; /* not whole seconds */
    assert_int_equal(leader_new(l, h, &o, &ld), -VIGIL_EINVAL);
    o.ttl = 0;
    o.margin = 3 * S; /* past TTL/2 */
    assert_int_equal(leader_new(l, h, &o, &ld), -VIGIL_EINVAL);
    o.margin = 0;
    o.id = "";
    assert_int_equal(leader_new(l, h, &o, &ld), -VIGIL_EINVAL);
    o.id = "a";
    assert_int_equal(leader_new(l, h, &o, &ld), 0);
    /* etcd unreachable: no leader, and grants retried every period. */
    assert_int_equal(leader_start(ld), 0);
    fake_loop_run_until(l, 10 * S);
    assert_false(leader_is_leader(ld));
    assert_int_equal(leader_stats(ld)->grants, 7);
    leader_free(ld);
    vio_loop_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_elected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follower, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_tick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_dies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_hangs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paused_past_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_after_pause_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_after_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fence_check, setup, teardown),
        cmocka_unit_test(test_b64_and_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
