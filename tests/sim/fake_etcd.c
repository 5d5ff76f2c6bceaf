/*
 * The simulator's etcd: see fake_etcd.h. Keys and leases live in small
 * arrays searched linearly: a simulation holds tens of keys.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fake_etcd.h"
#include "vigil/leader.h"

#define FE_KEYS   512
#define FE_LEASES 1024
#define FE_KEY    256
#define FE_VALUE  1024

struct fe_kv {
    bool live;
    char key[FE_KEY];
    char value[FE_VALUE];
    int64_t create_rev, mod_rev, version, lease;
};

struct fe_lease {
    bool live;
    int64_t id;
    vigil_time_t ttl, expiry;
};

struct fake_etcd {
    vigil_time_t *clock;
    int64_t rev, next_lease;
    struct fe_kv kvs[FE_KEYS];
    struct fe_lease leases[FE_LEASES];
    size_t n_leases;
};

struct fake_etcd *fake_etcd_new(vigil_time_t *clock)
{
    struct fake_etcd *e = calloc(1, sizeof(*e));
    if (e) {
        e->clock = clock;
        e->rev = 1;
        e->next_lease = 7587000000000000001;
    }
    return e;
}

void fake_etcd_free(struct fake_etcd *e)
{
    free(e);
}

int64_t fake_etcd_revision(const struct fake_etcd *e)
{
    return e->rev;
}

static struct fe_kv *find(struct fake_etcd *e, const char *key)
{
    for (size_t i = 0; i < FE_KEYS; i++)
        if (e->kvs[i].live && !strcmp(e->kvs[i].key, key))
            return &e->kvs[i];
    return NULL;
}

static struct fe_lease *lease_find(struct fake_etcd *e, int64_t id)
{
    for (size_t i = 0; i < e->n_leases; i++)
        if (e->leases[i].live && e->leases[i].id == id)
            return &e->leases[i];
    return NULL;
}

static void lease_drop(struct fake_etcd *e, struct fe_lease *l)
{
    l->live = false;
    bool any = false;
    for (size_t i = 0; i < FE_KEYS; i++)
        if (e->kvs[i].live && e->kvs[i].lease == l->id) {
            e->kvs[i].live = false;
            any = true;
        }
    if (any)
        e->rev++;
}

void fake_etcd_expire(struct fake_etcd *e)
{
    for (size_t i = 0; i < e->n_leases; i++)
        if (e->leases[i].live && *e->clock >= e->leases[i].expiry)
            lease_drop(e, &e->leases[i]);
}

const char *fake_etcd_get(struct fake_etcd *e, const char *key, int64_t *create_rev)
{
    fake_etcd_expire(e);
    struct fe_kv *kv = find(e, key);
    if (create_rev)
        *create_rev = kv ? kv->create_rev : 0;
    return kv ? kv->value : NULL;
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

/* A base64 field of o decoded into out; false when absent or not base64. */
static bool unb64(const json_t *o, const char *name, char *out, size_t cap)
{
    const json_t *v = json_object_get(o, name);
    return json_is_string(v) && leader_unb64(json_string_value(v), out, cap) >= 0;
}

static json_t *header(struct fake_etcd *e)
{
    return json_pack("{s:o}", "revision", jnum(e->rev));
}

static json_t *kv_json(const struct fe_kv *kv)
{
    char *k = leader_b64(kv->key, strlen(kv->key));
    char *v = leader_b64(kv->value, strlen(kv->value));
    json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:o}", "key", k, "value", v, "create_revision",
                          jnum(kv->create_rev), "mod_revision", jnum(kv->mod_rev), "version",
                          jnum(kv->version));
    if (kv->lease)
        json_object_set_new(o, "lease", jnum(kv->lease));
    free(k);
    free(v);
    return o;
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp((*(const struct fe_kv *const *)a)->key, (*(const struct fe_kv *const *)b)->key);
}

/* One key, or with range_end every key in [key, range_end), sorted, at most limit (0: all). */
static json_t *range(struct fake_etcd *e, const json_t *req)
{
    char key[FE_KEY], end[FE_KEY];
    json_t *o = json_pack("{s:o}", "header", header(e));
    if (!unb64(req, "key", key, sizeof(key)))
        return o;
    if (!unb64(req, "range_end", end, sizeof(end))) {
        struct fe_kv *kv = find(e, key);
        if (kv) {
            json_object_set_new(o, "kvs", json_pack("[o]", kv_json(kv)));
            json_object_set_new(o, "count", jnum(1));
        }
        return o;
    }
    static struct fe_kv *hits[FE_KEYS];
    size_t n = 0;
    for (size_t i = 0; i < FE_KEYS; i++)
        if (e->kvs[i].live && strcmp(e->kvs[i].key, key) >= 0 && strcmp(e->kvs[i].key, end) < 0)
            hits[n++] = &e->kvs[i];
    qsort(hits, n, sizeof(hits[0]), kv_cmp);
    size_t limit = (size_t)jint(req, "limit");
    size_t take = limit && limit < n ? limit : n;
    if (take) {
        json_t *kvs = json_array();
        for (size_t i = 0; i < take; i++)
            json_array_append_new(kvs, kv_json(hits[i]));
        json_object_set_new(o, "kvs", kvs);
    }
    if (take < n)
        json_object_set_new(o, "more", json_true());
    if (n)
        json_object_set_new(o, "count", jnum((int64_t)n));
    return o;
}

/* A put: 0, or -1 (a lease that does not exist, a key or value too long). */
static int put(struct fake_etcd *e, const json_t *req)
{
    char key[FE_KEY], value[FE_VALUE];
    if (!unb64(req, "key", key, sizeof(key)) || !unb64(req, "value", value, sizeof(value)))
        return -1;
    int64_t lease = jint(req, "lease");
    if (lease && !lease_find(e, lease))
        return -1;
    struct fe_kv *kv = find(e, key);
    e->rev++;
    if (!kv) {
        for (size_t i = 0; i < FE_KEYS && !kv; i++)
            if (!e->kvs[i].live)
                kv = &e->kvs[i];
        if (!kv)
            return -1;
        memset(kv, 0, sizeof(*kv));
        kv->live = true;
        snprintf(kv->key, sizeof(kv->key), "%s", key);
        kv->create_rev = e->rev;
    }
    snprintf(kv->value, sizeof(kv->value), "%s", value);
    kv->mod_rev = e->rev;
    kv->version++;
    kv->lease = lease;
    return 0;
}

/* One compare: true when it holds. A missing key has revisions and version 0 and no value. */
static bool compare(struct fake_etcd *e, const json_t *c)
{
    char key[FE_KEY];
    if (!unb64(c, "key", key, sizeof(key)))
        return false;
    const char *result = json_string_value(json_object_get(c, "result"));
    if (result && strcmp(result, "EQUAL"))
        return false; /* only EQUAL is used */
    const char *target = json_string_value(json_object_get(c, "target"));
    struct fe_kv *kv = find(e, key);
    if (!target)
        target = "VERSION";
    if (!strcmp(target, "CREATE"))
        return (kv ? kv->create_rev : 0) == jint(c, "create_revision");
    if (!strcmp(target, "MOD"))
        return (kv ? kv->mod_rev : 0) == jint(c, "mod_revision");
    if (!strcmp(target, "VERSION"))
        return (kv ? kv->version : 0) == jint(c, "version");
    char v[FE_VALUE];
    return kv && unb64(c, "value", v, sizeof(v)) && !strcmp(v, kv->value);
}

static json_t *txn(struct fake_etcd *e, const json_t *req, long *status)
{
    bool ok = true;
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(req, "compare"), i, c) ok = ok && compare(e, c);
    json_t *responses = json_array();
    const json_t *op;
    json_array_foreach(json_object_get(req, ok ? "success" : "failure"), i, op)
    {
        const json_t *p = json_object_get(op, "request_put");
        const json_t *r = json_object_get(op, "request_range");
        if (p) {
            if (put(e, p) != 0) {
                *status = 400;
                json_decref(responses);
                return json_pack("{s:s,s:i}", "error", "bad put", "code", 3);
            }
            json_array_append_new(responses,
                                  json_pack("{s:{s:o}}", "response_put", "header", header(e)));
        } else if (r) {
            json_array_append_new(responses, json_pack("{s:o}", "response_range", range(e, r)));
        }
    }
    json_t *o = json_pack("{s:o,s:o}", "header", header(e), "responses", responses);
    if (ok)
        json_object_set_new(o, "succeeded", json_true());
    return o;
}

void fake_etcd_answer(struct fake_etcd *e, const struct vio_http_call *call,
                      struct fake_http_answer *ans)
{
    fake_etcd_expire(e);
    json_t *req = json_loadb(call->body ? call->body : "", call->body_len, 0, NULL);
    const char *path = strstr(call->url, "/v3/");
    json_t *out = NULL;
    long status = 200;
    if (!json_is_object(req) || !path) {
        status = 400;
        out = json_pack("{s:s,s:i}", "error", "bad request", "code", 3);
    } else if (!strcmp(path, "/v3/lease/grant")) {
        int64_t ttl = jint(req, "TTL");
        struct fe_lease *l = NULL;
        for (size_t i = 0; i < e->n_leases && !l; i++)
            if (!e->leases[i].live)
                l = &e->leases[i];
        if (!l && e->n_leases < FE_LEASES)
            l = &e->leases[e->n_leases++];
        if (!l || ttl <= 0) {
            status = 400;
            out = json_pack("{s:s,s:i}", "error", "no lease", "code", 3);
        } else {
            l->live = true;
            l->id = e->next_lease++;
            l->ttl = ttl * VIGIL_NSEC_PER_SEC;
            l->expiry = *e->clock + l->ttl;
            out = json_pack("{s:o,s:o,s:o}", "header", header(e), "ID", jnum(l->id), "TTL",
                            jnum(ttl));
        }
    } else if (!strcmp(path, "/v3/lease/keepalive")) {
        int64_t id = jint(req, "ID");
        struct fe_lease *l = lease_find(e, id);
        json_t *res = json_pack("{s:o,s:o}", "header", header(e), "ID", jnum(id));
        if (l) {
            l->expiry = *e->clock + l->ttl;
            json_object_set_new(res, "TTL", jnum(l->ttl / VIGIL_NSEC_PER_SEC));
        }
        out = json_pack("{s:o}", "result", res);
    } else if (!strcmp(path, "/v3/lease/revoke")) {
        struct fe_lease *l = lease_find(e, jint(req, "ID"));
        if (l) {
            lease_drop(e, l);
            out = json_pack("{s:o}", "header", header(e));
        } else {
            status = 404;
            out =
                json_pack("{s:s,s:i}", "error", "etcdserver: requested lease not found", "code", 5);
        }
    } else if (!strcmp(path, "/v3/kv/range")) {
        out = range(e, req);
    } else if (!strcmp(path, "/v3/kv/put")) {
        if (put(e, req) == 0) {
            out = json_pack("{s:o}", "header", header(e));
        } else {
            status = 400;
            out = json_pack("{s:s,s:i}", "error", "bad put", "code", 3);
        }
    } else if (!strcmp(path, "/v3/kv/txn")) {
        out = txn(e, req, &status);
    } else {
        status = 404;
        out = json_pack("{s:s,s:i}", "error", "Not Found", "code", 5);
    }
    json_decref(req);
    ans->status = status;
    ans->body = json_dumps(out, JSON_COMPACT);
    ans->body_len = ans->body ? strlen(ans->body) : 0;
    json_decref(out);
}
