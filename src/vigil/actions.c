/*
 * The built-in kinds of action: HAProxy's runtime API, webhooks and
 * Alertmanager (actions.h says what each does). The hook runner owns the
 * order, the timeouts and the retries; a call here is one attempt.
 *
 * Outbox. A webhook's document is written to the store's outbox (state
 * "pending") before its first attempt, and marked "done" when a receiver
 * took it (2xx) or refused it (4xx), "failed" when its last attempt
 * failed. A monitor killed in between finds it pending when it starts
 * again and delivers it then (actions_resume): a receiver sees every
 * idempotency key at least once, and twice only when the monitor died
 * between the receiver's answer and the write of "done". A firing alert
 * is kept the same way (state "firing") until it is resolved.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>
#include <sodium.h>

#include "actions.h"
#include "evlog.h"
#include "fmt.h"

/* Most servers one haproxy call changes (its servers list, or what server_key names). */
#define HAP_SERVERS_MAX 16
#define HAP_NAME_MAX    256
/* HAProxy's answers are short; a "show servers state" of a big backend is not. */
#define HAP_ANSWER_MAX (4u << 20)
/* A resumed delivery waits this long before its first try, then doubles up to the cap. */
#define RESUME_DELAY     VIGIL_NSEC_PER_SEC
#define RESUME_DELAY_MAX (30 * VIGIL_NSEC_PER_SEC)
#define ACT_HTTP_TIMEOUT (10 * VIGIL_NSEC_PER_SEC)
/* A restarted node is looked at this often until it is alive or restart_wait has passed. */
#define ACT_RESTART_POLL (250 * VIGIL_NSEC_PER_MSEC)

struct actions;

/*
 * A document on its way (a webhook, an alert's resolution), delivered in
 * the background with its own retries: a receiver that is down never holds
 * back a node's other actions (the load balancer). A webhook's is kept in
 * the outbox until it is done.
 */
struct delivery {
    struct delivery *next;
    struct actions *a;
    int64_t id; /* in the outbox; 0: not kept */
    char *key;  /* idempotency key (NULL: an alert's resolution) */
    char *url;
    char *body;
    char sig[80]; /* "sha256=HEX", or "" */
    char action[VCFG_ACTION_NAME_MAX + 40];
    char node[VIGIL_ID_MAX + 1];
    enum vcfg_act_kind kind;
    uint64_t seq; /* the event it is about */
    bool undo;
    uint32_t attempt;    /* tries made */
    uint32_t tries_left; /* after the one in flight */
    vigil_time_t delay, delay_max;
    struct vio_timer timer;
    bool in_flight;
};

/* restart: per action and node, the restarts since the node was last up long enough. */
struct restart_rec {
    struct restart_rec *next;
    char action[VCFG_ACTION_NAME_MAX + 24];
    char node[VIGIL_ID_MAX + 1];
    uint32_t count;     /* restarts in a row */
    vigil_time_t up_at; /* when a restart last brought it back (0: never) */
};

/* An alert firing: re-posted every `repeat`. */
struct alert {
    struct alert *next;
    int64_t id; /* in the outbox (state "firing"); 0: not kept */
    char action[VCFG_ACTION_NAME_MAX + 40];
    char node[VIGIL_ID_MAX + 1];
    char *url;
    char *body;        /* the alert as posted, without endsAt (an array of one) */
    char *labels_json; /* its labels, to resolve it */
    vigil_time_t repeat;
    vigil_time_t next_at;
    uint64_t serial;    /* names it to the answers of its posts (it may be gone by then) */
    uint64_t seq;       /* the event that fired it */
    uint32_t posts;     /* posts made */
    bool posted;        /* Alertmanager took it once */
    vigil_time_t retry; /* after a failed post: the next in this long, doubling up to repeat */
    vigil_time_t first_retry;
};

/* A webhook's HMAC key: the secret file's bytes, less a final newline. */
#define SECRET_MAX 1024
struct secret {
    uint8_t key[SECRET_MAX];
    size_t len;
    bool set;
};

struct alert_post;

struct actions {
    struct actions_opts o;
    struct vio_loop *loop;
    struct vio_http *http;
    struct secret secrets[VCFG_MAX_HOOKS];
    struct delivery *deliveries; /* webhooks pending (this run's, and resumed ones) */
    struct alert *alerts;
    struct vio_timer alert_timer;
    struct act_call *calls; /* every call not freed yet (cancelled ones included) */
    struct restart_rec *restarts;
    uint64_t alert_serial;
    struct alert_post *posts; /* alert posts in flight */
};

/* One attempt of one action (the runner's call). */
struct act_call {
    struct act_call *prev, *next; /* in a->calls */
    struct actions *a;
    void *token;
    bool cancelled; /* the runner gave up on it; an answer still to come frees it */
    enum vcfg_act_kind kind;
    struct vio_exchange *x;
    /* haproxy */
    char servers[HAP_SERVERS_MAX][HAP_NAME_MAX];
    size_t n_servers, at;
    bool verifying;
    bool drain, undo;
    char what[160]; /* haproxy: the socket; webhook, alertmanager: what the call did */
    /* restart */
    const struct vcfg_hook *action;
    struct restart_rec *rr;
    char node[VIGIL_ID_MAX + 1];
    struct vio_child *child;
    struct vio_timer timer; /* the backoff before the command, then the wait for the node */
    vigil_time_t wait_until;
    char **envp;
    int phase; /* 0: backing off, 1: the command runs, 2: waiting for the node */
};

static void alert_free(struct alert *al);
static void alog(struct actions *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void alog(struct actions *a, const char *fmt, ...)
{
    if (!a->o.log)
        return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    a->o.log(a->o.arg, line);
}

static void call_free(struct act_call *c)
{
    vio_timer_disarm(c->a->loop, &c->timer);
    if (c->child) {
        c->a->o.env->procs->ops->signal(c->a->o.env->procs, c->child, SIGKILL);
        c->a->o.env->procs->ops->release(c->a->o.env->procs, c->child);
    }
    if (c->envp) {
        for (size_t i = 0; c->envp[i]; i++)
            if (!strncmp(c->envp[i], "VIGIL_", 6))
                free(c->envp[i]);
        free(c->envp);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        c->a->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

static void call_finish(struct act_call *c, enum hook_call_result res, const char *detail)
{
    struct actions *a = c->a;
    void *token = c->token;
    bool cancelled = c->cancelled;
    /* detail may live in c (its what): copied before c goes. */
    char text[640];
    snprintf(text, sizeof(text), "%s", detail ? detail : "");
    detail = text;
    call_free(c);
    if (!token) {
        /* An escalation: nobody waits for it but the log. */
        alog(a, "escalation: %s", detail);
        return;
    }
    if (!cancelled)
        hook_runner_call_done(a->o.runner, token, res, detail);
}

/* ---- outbox ---- */

static int64_t outbox_add(struct actions *a, const char *kind, json_t *payload, const char *state)
{
    if (!a->o.store)
        return 0;
    char *s = json_dumps(payload, JSON_COMPACT);
    int64_t id = 0;
    int rc = s ? a->o.store->ops->outbox_add(a->o.store, vio_wall_us(a->loop), kind, s, &id) : -1;
    free(s);
    if (rc != 0) {
        alog(a, "cannot keep a %s in the outbox: %s; it is tried, but not kept across a restart",
             kind, a->o.store->ops->error(a->o.store));
        return 0;
    }
    if (strcmp(state, "pending") != 0)
        a->o.store->ops->outbox_set(a->o.store, id, state);
    return id;
}

static void outbox_set(struct actions *a, int64_t id, const char *state)
{
    if (!a->o.store || id <= 0)
        return;
    if (a->o.store->ops->outbox_set(a->o.store, id, state) != 0)
        alog(a, "cannot mark outbox entry %" PRId64 " %s: %s", id, state,
             a->o.store->ops->error(a->o.store));
}

/* ---- haproxy ---- */

static int hap_next(struct act_call *c);
static void hap_step(struct act_call *c);

/* The admin state of BE/SRV in a "show servers state BE" answer, or -1. */
static long hap_admin_state(const char *answer, const char *be, const char *srv)
{
    const char *line = answer;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 0 && line[0] != '#' && len < 4096) {
            char buf[4096];
            memcpy(buf, line, len);
            buf[len] = '\0';
            char *f[8] = {0};
            size_t n = 0;
            char *save = NULL;
            for (char *t = strtok_r(buf, " \t", &save); t && n < 8;
                 t = strtok_r(NULL, " \t", &save))
                f[n++] = t;
            /* be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ... */
            if (n >= 7 && !strcmp(f[1], be) && !strcmp(f[3], srv))
                return strtol(f[6], NULL, 10);
        }
        line = end ? end + 1 : NULL;
    }
    return -1;
}

static void hap_answer(void *arg, int error, const char *answer, size_t len)
{
    struct act_call *c = arg;
    c->x = NULL;
    if (c->cancelled) {
        call_free(c);
        return;
    }
    const char *name = c->servers[c->at];
    char detail[640];
    if (error != 0) {
        snprintf(detail, sizeof(detail), "%s: runtime API: %s", name, strerror(-error));
        call_finish(c, HOOK_CALL_FAILED, detail);
        return;
    }
    /* Trailing white space aside, a "set" answers nothing; anything else is HAProxy's error. */
    while (len > 0 && (answer[len - 1] == '\n' || answer[len - 1] == ' '))
        len--;
    if (!c->verifying) {
        if (len > 0) {
            snprintf(detail, sizeof(detail), "%s: HAProxy says: %.*s", name,
                     (int)(len > 200 ? 200 : len), answer);
            /* No such backend or server: a configuration error, not worth retrying at once. */
            call_finish(c, HOOK_CALL_FAILED, detail);
            return;
        }
        c->verifying = true;
        hap_step(c);
        return;
    }
    char be[HAP_NAME_MAX];
    snprintf(be, sizeof(be), "%s", name);
    char *slash = strchr(be, '/');
    *slash = '\0';
    long st = hap_admin_state(answer, be, slash + 1);
    long want = c->undo ? 0 : c->drain ? 0x08 : 0x01;
    bool ok = st >= 0 && (c->undo ? (st & 0x09) == 0 : (st & want) != 0);
    if (!ok) {
        snprintf(detail, sizeof(detail), "%s: admin state %ld after the change (want %s)", name, st,
                 c->undo    ? "ready"
                 : c->drain ? "drain"
                            : "maint");
        call_finish(c, HOOK_CALL_FAILED, detail);
        return;
    }
    c->verifying = false;
    c->at++;
    if (c->at == c->n_servers) {
        snprintf(detail, sizeof(detail), "%zu server%s %s (%s%s)", c->n_servers,
                 c->n_servers == 1 ? "" : "s",
                 c->undo    ? "ready"
                 : c->drain ? "drain"
                            : "maint",
                 c->servers[0], c->n_servers > 1 ? ", ..." : "");
        call_finish(c, HOOK_CALL_OK, detail);
        return;
    }
    hap_step(c);
}

/* Sends the command for servers[at]: its change, or the read back of it. 0 or -errno. */
static int hap_next(struct act_call *c)
{
    char be[HAP_NAME_MAX];
    snprintf(be, sizeof(be), "%s", c->servers[c->at]);
    *strchr(be, '/') = '\0';
    char cmd[2 * HAP_NAME_MAX + 64];
    if (c->verifying)
        snprintf(cmd, sizeof(cmd), "show servers state %s\n", be);
    else
        snprintf(cmd, sizeof(cmd), "set server %s state %s\n", c->servers[c->at],
                 c->undo    ? "ready"
                 : c->drain ? "drain"
                            : "maint");
    struct vio_env *env = c->a->o.env;
    return env->exchange ? env->exchange(env, c->what, cmd, strlen(cmd), HAP_ANSWER_MAX,
                                         ACT_HAPROXY_TIMEOUT, hap_answer, c, &c->x)
                         : -ENOSYS;
}

/* The next step from an answer: a failure to send it ends the call. */
static void hap_step(struct act_call *c)
{
    int rc = hap_next(c);
    if (rc != 0) {
        char detail[640];
        snprintf(detail, sizeof(detail), "%s: runtime API %s: %s", c->servers[c->at], c->what,
                 strerror(-rc));
        call_finish(c, HOOK_CALL_FAILED, detail);
    }
}

/* Adds "BE/SRV" (with %n replaced by node, %c by the check) to c's servers. */
static int hap_add(struct act_call *c, const char *tmpl, const char *node, const char *check)
{
    if (c->n_servers == HAP_SERVERS_MAX)
        return -1;
    char *out = c->servers[c->n_servers];
    size_t k = 0;
    for (const char *p = tmpl; *p; p++) {
        const char *piece = p;
        size_t n = 1;
        if (p[0] == '%' && p[1] == 'n') {
            piece = node;
            n = strlen(node);
            p++;
        } else if (p[0] == '%' && p[1] == 'c') {
            piece = check ? check : "";
            n = strlen(piece);
            p++;
        }
        if (k + n >= HAP_NAME_MAX)
            return -1;
        memcpy(out + k, piece, n);
        k += n;
    }
    out[k] = '\0';
    const char *slash = strchr(out, '/');
    if (!slash || slash == out || !slash[1] || strpbrk(out, " \t;\n\r"))
        return -1;
    c->n_servers++;
    return 0;
}

/* ---- webhook and alertmanager: HTTP ---- */

static int http_post(struct actions *a, const char *url, const char *body, const char *key,
                     const char *sig, uint32_t attempt, vio_http_done done, void *arg)
{
    char h_key[HOOK_KEY_MAX + 40], h_sig[120], h_att[48];
    const char *headers[6];
    size_t n = 0;
    headers[n++] = "Content-Type: application/json";
    if (key) {
        snprintf(h_key, sizeof(h_key), "X-Vigil-Idempotency-Key: %s", key);
        headers[n++] = h_key;
        snprintf(h_att, sizeof(h_att), "X-Vigil-Attempt: %" PRIu32, attempt);
        headers[n++] = h_att;
    }
    if (sig && sig[0]) {
        snprintf(h_sig, sizeof(h_sig), "X-Vigil-Signature: %s", sig);
        headers[n++] = h_sig;
    }
    headers[n] = NULL;
    struct vio_http_call call = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = strlen(body),
        .timeout = ACT_HTTP_TIMEOUT,
        .body_max = 65536,
    };
    return vio_http_start(a->http, &call, done, arg);
}

/* What an HTTP answer means: 2xx done, 4xx refused (a retry cannot help), else failed. */
static enum hook_call_result http_result(const struct vio_http_result *res, char *detail,
                                         size_t cap)
{
    if (res->error) {
        snprintf(detail, cap, "no answer: %s", res->why ? res->why : strerror(-res->error));
        return HOOK_CALL_FAILED;
    }
    snprintf(detail, cap, "HTTP %ld", res->status);
    if (res->status >= 200 && res->status < 300)
        return HOOK_CALL_OK;
    if (res->status >= 400 && res->status < 500 && res->status != 408 && res->status != 429)
        return HOOK_CALL_REFUSED;
    return HOOK_CALL_FAILED;
}

static void delivery_free(struct delivery *d)
{
    if (!d)
        return;
    vio_timer_disarm(d->a->loop, &d->timer);
    free(d->key);
    free(d->url);
    free(d->body);
    free(d);
}

static void delivery_unlink(struct actions *a, struct delivery *d)
{
    for (struct delivery **p = &a->deliveries; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            return;
        }
}

static void alert_free(struct alert *al)
{
    if (!al)
        return;
    free(al->url);
    free(al->body);
    free(al->labels_json);
    free(al);
}

static void delivery_free(struct delivery *d);
static void delivery_unlink(struct actions *a, struct delivery *d);

/* An attempt of a background delivery, for the record (vigil actions, events, metrics). */
static void record(struct actions *a, const struct delivery *d, const char *outcome,
                   const char *detail)
{
    if (a->o.record)
        a->o.record(a->o.arg, d->action, d->kind, d->node, d->seq, d->undo, d->attempt, outcome,
                    detail, d->key ? d->key : "");
}

static void deliver(void *arg, vigil_time_t now);

static void delivered(void *arg, const struct vio_http_result *res)
{
    struct delivery *d = arg;
    struct actions *a = d->a;
    d->in_flight = false;
    char detail[200];
    enum hook_call_result r = http_result(res, detail, sizeof(detail));
    if (r == HOOK_CALL_FAILED && d->tries_left > 0) {
        d->tries_left--;
        char dd[32];
        vigil_format_duration(d->delay, dd, sizeof(dd));
        alog(a, "%s %s for %s (attempt %" PRIu32 "): %s; again in %s", d->action,
             d->key ? "delivery" : "resolution", d->node, d->attempt, detail, dd);
        record(a, d, "retrying", detail);
        vio_timer_arm(a->loop, &d->timer, vio_now(a->loop) + d->delay);
        d->delay = d->delay * 2 > d->delay_max ? d->delay_max : d->delay * 2;
        return;
    }
    const char *how = r == HOOK_CALL_OK        ? "delivered"
                      : r == HOOK_CALL_REFUSED ? "refused by the receiver, not retried"
                                               : "giving up";
    alog(a, "%s %s for %s (attempt %" PRIu32 "): %s; %s", d->action,
         d->key ? "delivery" : "resolution", d->node, d->attempt, detail, how);
    record(a, d, r == HOOK_CALL_OK ? "succeeded" : "failed", detail);
    outbox_set(a, d->id, r == HOOK_CALL_OK ? "done" : "failed");
    delivery_unlink(a, d);
    delivery_free(d);
}

static void deliver(void *arg, vigil_time_t now)
{
    (void)now;
    struct delivery *d = arg;
    d->attempt++;
    d->in_flight = true;
    record(d->a, d, "started", "");
    if (http_post(d->a, d->url, d->body, d->key, d->sig, d->attempt, delivered, d) != 0) {
        struct vio_http_result res = {.error = -ENOMEM, .why = "cannot start the request"};
        delivered(d, &res);
    }
}

/* A delivery of body to url, tried now and then again as configured; owns nothing given. */
static struct delivery *delivery_new(struct actions *a, const char *url, const char *body,
                                     const char *key, const char *action, const char *node,
                                     enum vcfg_act_kind kind, uint64_t seq, bool undo,
                                     uint32_t retries, vigil_time_t delay, vigil_time_t max)
{
    struct delivery *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->a = a;
    d->url = strdup(url);
    d->body = strdup(body);
    d->key = key ? strdup(key) : NULL;
    if (!d->url || !d->body || (key && !d->key)) {
        free(d->url);
        free(d->body);
        free(d->key);
        free(d);
        return NULL;
    }
    snprintf(d->action, sizeof(d->action), "%s", action);
    snprintf(d->node, sizeof(d->node), "%s", node);
    d->kind = kind;
    d->seq = seq;
    d->undo = undo;
    d->tries_left = retries;
    d->delay = delay > 0 ? delay : RESUME_DELAY;
    d->delay_max = max > 0 ? max : RESUME_DELAY_MAX;
    vio_timer_init(&d->timer, deliver, d);
    d->next = a->deliveries;
    a->deliveries = d;
    return d;
}

/* A call that is done as soon as it started (its work goes on in the background). */
static void queued_timer(void *arg, vigil_time_t now)
{
    (void)now;
    struct act_call *c = arg;
    call_finish(c, HOOK_CALL_OK, c->what);
}

/* The webhook's document (docs/actions.md, "Webhook document"). */
static json_t *webhook_doc(struct actions *a, const struct hook_call *hc)
{
    json_t *ev = evrec_to_json(hc->rec);
    if (!ev)
        return NULL;
    json_object_set_new(ev, "coalesced", json_integer(hc->coalesced));
    char when[64];
    vigil_format_wall(vio_wall_us(a->loop), when, sizeof(when));
    return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:o}", "version",
                     ACT_WEBHOOK_VERSION, "key", hc->key, "action", hc->name, "op",
                     hc->undo ? "undo" : "do", "node", evrec_node(hc->rec), "monitor",
                     a->o.monitor ? a->o.monitor : "", "epoch", (json_int_t)hc->epoch, "sent", when,
                     "event", ev);
}

/* The document, with why it was sent when it is an escalation. */
static json_t *webhook_doc_full(struct actions *a, const struct hook_call *hc)
{
    json_t *d = webhook_doc(a, hc);
    if (d && hc->escalated)
        json_object_set_new(d, "escalated", json_string(hc->escalated));
    return d;
}

static void sign(const struct secret *s, const char *body, char *out, size_t cap)
{
    out[0] = '\0';
    if (!s->set)
        return;
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, s->key, s->len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
    crypto_auth_hmacsha256_final(&st, mac);
    char hex[2 * sizeof(mac) + 1];
    sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
    snprintf(out, cap, "sha256=%s", hex);
}

static struct delivery *delivery_find(struct actions *a, const char *key)
{
    for (struct delivery *d = a->deliveries; d; d = d->next)
        if (d->key && !strcmp(d->key, key)) /* an alert's resolution has no key */
            return d;
    return NULL;
}

static int webhook_start(struct actions *a, size_t idx, const struct hook_call *hc,
                         struct act_call *c)
{
    /*
     * The document is written to the outbox, then delivered in the
     * background (its own retries: 5xx and timeouts, not 4xx). The action
     * itself is done once the document is kept: a receiver that is down
     * must not hold back the node's next actions.
     */
    vio_timer_init(&c->timer, queued_timer, c);
    if (delivery_find(a, hc->key)) {
        /* The same event again (a leader's rerun): on its way already. */
        snprintf(c->what, sizeof(c->what), "on its way already");
        return vio_timer_arm(a->loop, &c->timer, vio_now(a->loop)) == 0 ? 0 : -ENOMEM;
    }
    json_t *doc = webhook_doc_full(a, hc);
    char *body = doc ? json_dumps(doc, JSON_COMPACT | VIGIL_JSON_REAL) : NULL;
    json_decref(doc);
    if (!body)
        return -ENOMEM;
    struct delivery *d =
        delivery_new(a, hc->action->target, body, hc->key, hc->name, evrec_node(hc->rec),
                     VCFG_ACT_WEBHOOK, hc->rec->ev.seq, hc->undo, hc->action->retries,
                     hc->action->retry_delay, hc->action->retry_max);
    free(body);
    if (!d)
        return -ENOMEM;
    if (idx < VCFG_MAX_HOOKS)
        sign(&a->secrets[idx], d->body, d->sig, sizeof(d->sig));
    json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b}", "url", d->url, "key", d->key,
                          "action", hc->name, "node", d->node, "body", d->body, "sig", d->sig,
                          "seq", (json_int_t)d->seq, "undo", d->undo);
    if (p)
        d->id = outbox_add(a, "webhook", p, "pending");
    json_decref(p);
    vio_timer_arm(a->loop, &d->timer, vio_now(a->loop));
    snprintf(c->what, sizeof(c->what), "queued for delivery%s",
             d->id ? " (kept in the outbox)" : "");
    return vio_timer_arm(a->loop, &c->timer, vio_now(a->loop)) == 0 ? 0 : -ENOMEM;
}

/* Alertmanager's URL for posting alerts: the configured base with /api/v2/alerts. */
static char *am_url(const char *base)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    char *u = malloc(n + 32);
    if (u) {
        memcpy(u, base, n);
        strcpy(u + n, "/api/v2/alerts");
    }
    return u;
}

/* The alert's labels: they identify it, so the undo builds the same ones. */
static json_t *am_labels(const struct hook_call *hc)
{
    const struct vigil_event *ev = &hc->rec->ev;
    enum vigil_state st = hc->undo ? ev->old_state : ev->new_state;
    json_t *l = json_pack("{s:s, s:s, s:s, s:s}", "alertname",
                          hc->escalated ? "VigilRestartFailed" : "VigilNodeDown", "node", ev->node,
                          "state", vigil_state_name(st), "vigil_action", hc->name);
    for (size_t i = 0; l && i < hc->action->n_labels; i++) {
        const char *kv = hc->action->labels[i], *eq = strchr(kv, '=');
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - kv), kv);
        json_object_set_new(l, name, json_string(eq + 1));
    }
    return l;
}

static void resolve_alert(struct actions *a, const char *url, const char *labels_json,
                          const char *action, const char *node, uint64_t seq);

static int alertmanager_start(struct actions *a, const struct hook_call *hc, struct act_call *c)
{
    const struct evrec *rec = hc->rec;
    char when[64], now_s[64], since[32] = "never";
    vigil_format_wall(rec->wall_us, when, sizeof(when));
    vigil_format_wall(vio_wall_us(a->loop), now_s, sizeof(now_s));
    if (rec->ev.since_last >= 0)
        vigil_format_duration(rec->ev.since_last, since, sizeof(since));
    json_t *labels = am_labels(hc);
    char summary[300];
    if (hc->escalated)
        snprintf(summary, sizeof(summary), "%s is %s: %s", rec->ev.node,
                 vigil_state_name(rec->ev.new_state), hc->escalated);
    else
        snprintf(summary, sizeof(summary), "%s is %s (%s)", rec->ev.node,
                 vigil_state_name(hc->undo ? rec->ev.old_state : rec->ev.new_state),
                 rec->ev.reason ? rec->ev.reason : "");
    /* Annotations are strings, every one of them. */
    char seq[24];
    snprintf(seq, sizeof(seq), "%" PRIu64, rec->ev.seq);
    json_t *ann = json_pack("{s:s, s:s, s:s, s:s, s:s}", "summary", summary, "reason",
                            rec->ev.reason ? rec->ev.reason : "", "since_last", since, "event_seq",
                            seq, "monitor", a->o.monitor ? a->o.monitor : "");
    char lvl[64];
    snprintf(lvl, sizeof(lvl), "%.3f / %.3f", rec->ev.level, rec->ev.threshold);
    if (ann)
        json_object_set_new(ann, "level", json_string(lvl));
    char *labels_s = labels ? json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_t *alert = json_pack("{s:o, s:o, s:s}", "labels", labels, "annotations", ann, "startsAt",
                              hc->undo ? now_s : when);
    if (alert && hc->undo)
        json_object_set_new(alert, "endsAt", json_string(now_s));
    json_t *arr = alert ? json_pack("[o]", alert) : NULL;
    char *body = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    char *url = am_url(hc->action->target);
    int rc = -ENOMEM;
    if (body && url && labels_s) {
        rc = 0;
        if (!hc->undo) {
            /*
             * Firing: kept, and posted from the list at once, then every
             * `repeat` (sooner again after a failed post) until its undo.
             */
            struct alert *al = calloc(1, sizeof(*al));
            if (al) {
                snprintf(al->action, sizeof(al->action), "%s", hc->name);
                snprintf(al->node, sizeof(al->node), "%s", rec->ev.node);
                al->url = strdup(url);
                al->body = strdup(body);
                al->labels_json = strdup(labels_s);
                al->repeat = hc->action->repeat > 0 ? hc->action->repeat : ACT_AM_REPEAT_DEFAULT;
                al->retry = hc->action->retry_delay > 0 ? hc->action->retry_delay : RESUME_DELAY;
                al->first_retry = al->retry;
                al->seq = rec->ev.seq;
                al->serial = ++a->alert_serial;
                if (!al->url || !al->body || !al->labels_json) {
                    alert_free(al);
                    al = NULL;
                    rc = -ENOMEM;
                }
            }
            if (al) {
                /* One alert per action and node: a rerun of the event replaces it. */
                for (struct alert **pp = &a->alerts; *pp;) {
                    struct alert *old = *pp;
                    if (!strcmp(old->action, hc->name) && !strcmp(old->node, rec->ev.node)) {
                        *pp = old->next;
                        outbox_set(a, old->id, "done");
                        alert_free(old);
                        continue;
                    }
                    pp = &old->next;
                }
                /* In the outbox while it fires: a restarted monitor goes on re-posting it. */
                json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "url", url, "action",
                                      hc->name, "node", rec->ev.node, "body", body, "labels",
                                      labels_s, "repeat_ns", (json_int_t)al->repeat);
                if (p)
                    al->id = outbox_add(a, "alert", p, "firing");
                json_decref(p);
                al->next_at = vio_now(a->loop);
                al->next = a->alerts;
                a->alerts = al;
                vio_timer_arm(a->loop, &a->alert_timer, al->next_at);
                snprintf(c->what, sizeof(c->what), "firing: posted now, then every %" PRId64 "s",
                         al->repeat / VIGIL_NSEC_PER_SEC);
            }
        } else {
            /*
             * Resolving: it fires no more here. Each alert firing for this
             * action and node is resolved with the labels it fired with;
             * none known (a restart without a store): the labels of the
             * state left. Delivered in the background.
             */
            bool any = false;
            for (struct alert **pp = &a->alerts; *pp;) {
                struct alert *al = *pp;
                if (!strcmp(al->action, hc->name) && !strcmp(al->node, rec->ev.node)) {
                    *pp = al->next;
                    resolve_alert(a, al->url, al->labels_json, al->action, al->node, rec->ev.seq);
                    outbox_set(a, al->id, "done");
                    alert_free(al);
                    any = true;
                    continue;
                }
                pp = &al->next;
            }
            struct delivery *d =
                any ? NULL
                    : delivery_new(a, url, body, NULL, hc->name, rec->ev.node,
                                   VCFG_ACT_ALERTMANAGER, rec->ev.seq, true, hc->action->retries,
                                   hc->action->retry_delay, hc->action->retry_max);
            if (d)
                vio_timer_arm(a->loop, &d->timer, vio_now(a->loop));
            else if (!any)
                rc = -ENOMEM;
            snprintf(c->what, sizeof(c->what), "resolution queued");
        }
        if (rc == 0) {
            vio_timer_init(&c->timer, queued_timer, c);
            rc = vio_timer_arm(a->loop, &c->timer, vio_now(a->loop)) == 0 ? 0 : -ENOMEM;
        }
    }
    free(labels_s);
    free(body);
    free(url);
    return rc;
}

/*
 * Resolves the alert of these labels (JSON) at url (Alertmanager's
 * /api/v2/alerts) now, as a delivery in the background with retries.
 */
static void resolve_alert(struct actions *a, const char *url, const char *labels_json,
                          const char *action, const char *node, uint64_t seq)
{
    json_t *labels = json_loads(labels_json, 0, NULL);
    char now_s[64];
    vigil_format_wall(vio_wall_us(a->loop), now_s, sizeof(now_s));
    json_t *arr = labels ? json_pack("[{s:o, s:s, s:s}]", "labels", labels, "startsAt", now_s,
                                     "endsAt", now_s)
                         : NULL;
    char *body = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    struct delivery *d =
        body ? delivery_new(a, url, body, NULL, action, node, VCFG_ACT_ALERTMANAGER, seq, true,
                            ACT_RETRIES_DEFAULT, RESUME_DELAY, RESUME_DELAY_MAX)
             : NULL;
    free(body);
    if (d)
        vio_timer_arm(a->loop, &d->timer, vio_now(a->loop));
    else
        alog(a, "cannot resolve the alert for %s: out of memory", node);
}

/* The answer to a firing alert's post: arg is its serial (the alert may be gone). */
struct alert_post {
    struct alert_post *prev, *next; /* in a->posts: freed at the end if no answer came */
    struct actions *a;
    uint64_t serial;
};

static void post_unlink(struct actions *a, struct alert_post *ap)
{
    if (ap->prev)
        ap->prev->next = ap->next;
    else
        a->posts = ap->next;
    if (ap->next)
        ap->next->prev = ap->prev;
}

static void alert_answer(void *arg, const struct vio_http_result *res)
{
    struct alert_post *ap = arg;
    struct actions *a = ap->a;
    struct alert *al = a->alerts;
    while (al && al->serial != ap->serial)
        al = al->next;
    post_unlink(a, ap);
    free(ap);
    if (!al)
        return;
    char detail[200];
    bool ok = http_result(res, detail, sizeof(detail)) == HOOK_CALL_OK;
    struct delivery rec = {.kind = VCFG_ACT_ALERTMANAGER, .seq = al->seq, .attempt = al->posts};
    snprintf(rec.action, sizeof(rec.action), "%s", al->action);
    snprintf(rec.node, sizeof(rec.node), "%s", al->node);
    if (ok) {
        /* After an outage, the next failure starts again from the first retry delay. */
        al->retry = al->first_retry;
    }
    if (ok && !al->posted) {
        al->posted = true;
        record(a, &rec, "succeeded", detail);
    } else if (!ok) {
        alog(a,
             "alertmanager: posting the alert for %s (post %" PRIu32 "): %s; again in %" PRId64 "s",
             al->node, al->posts, detail, al->retry / VIGIL_NSEC_PER_SEC);
        if (!al->posted)
            record(a, &rec, "retrying", detail);
        vigil_time_t now = vio_now(a->loop);
        al->next_at = now + al->retry;
        al->retry = al->retry * 2 > al->repeat ? al->repeat : al->retry * 2;
        if (!vio_timer_armed(&a->alert_timer) || a->alert_timer.at > al->next_at)
            vio_timer_arm(a->loop, &a->alert_timer, al->next_at);
    }
}

static void alert_timer(void *arg, vigil_time_t now)
{
    struct actions *a = arg;
    vigil_time_t next = VIGIL_TIME_NEVER;
    for (struct alert *al = a->alerts; al; al = al->next) {
        if (al->next_at <= now) {
            struct vio_http_call call = {
                .method = "POST",
                .url = al->url,
                .headers = (const char *const[]){"Content-Type: application/json", NULL},
                .body = al->body,
                .body_len = strlen(al->body),
                .timeout = ACT_HTTP_TIMEOUT,
            };
            struct alert_post *ap = calloc(1, sizeof(*ap));
            if (ap) {
                ap->a = a;
                ap->serial = al->serial;
                ap->next = a->posts;
                if (a->posts)
                    a->posts->prev = ap;
                a->posts = ap;
                if (vio_http_start(a->http, &call, alert_answer, ap) != 0) {
                    post_unlink(a, ap);
                    free(ap);
                }
            }
            al->posts++;
            al->next_at = now + al->repeat;
        }
        if (al->next_at < next)
            next = al->next_at;
    }
    if (next != VIGIL_TIME_NEVER)
        vio_timer_arm(a->loop, &a->alert_timer, next);
}

/* ---- restart ---- */

static struct restart_rec *restart_get(struct actions *a, const char *action, const char *node)
{
    for (struct restart_rec *r = a->restarts; r; r = r->next)
        if (!strcmp(r->action, action) && !strcmp(r->node, node))
            return r;
    struct restart_rec *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    snprintf(r->action, sizeof(r->action), "%s", action);
    snprintf(r->node, sizeof(r->node), "%s", node);
    r->next = a->restarts;
    a->restarts = r;
    return r;
}

static void restart_exited(void *arg, struct vio_child *ch, int status)
{
    struct act_call *c = arg;
    struct actions *a = c->a;
    a->o.env->procs->ops->release(a->o.env->procs, ch);
    c->child = NULL;
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char detail[96];
        if (status != -1 && WIFEXITED(status))
            snprintf(detail, sizeof(detail), "restart command exit %d", WEXITSTATUS(status));
        else
            snprintf(detail, sizeof(detail), "restart command killed or lost");
        call_finish(c, HOOK_CALL_FAILED, detail);
        return;
    }
    /* The command ran: the restart worked only if the node comes back. */
    c->phase = 2;
    vigil_time_t now = vio_now(a->loop);
    c->wait_until = now + c->action->restart_wait;
    vio_timer_arm(a->loop, &c->timer, now + ACT_RESTART_POLL);
}

static void restart_timer(void *arg, vigil_time_t now)
{
    struct act_call *c = arg;
    struct actions *a = c->a;
    enum vigil_state st = VIGIL_STATE_UNKNOWN;
    bool alive =
        a->o.state_of && a->o.state_of(a->o.arg, c->node, &st) == 0 && st == VIGIL_STATE_ALIVE;
    if (c->phase == 0 && alive) {
        /* Back on its own while the restart waited: nothing to restart. */
        call_finish(c, HOOK_CALL_OK, "alive again before the restart");
        return;
    }
    if (c->phase == 0) {
        c->phase = 1;
        struct vio_spawn req = {
            .argv = c->action->argv, .envp = c->envp, .on_exit = restart_exited, .arg = c};
        int rc = a->o.env->procs->ops->spawn(a->o.env->procs, &req, &c->child);
        if (rc != 0) {
            char detail[160];
            snprintf(detail, sizeof(detail), "cannot start %s: %s", c->action->argv[0],
                     strerror(-rc));
            call_finish(c, HOOK_CALL_FAILED, detail);
            return;
        }
        if (c->rr)
            c->rr->count++;
        return;
    }
    if (alive) {
        char detail[96], d[32];
        vigil_format_duration(now - (c->wait_until - c->action->restart_wait), d, sizeof(d));
        snprintf(detail, sizeof(detail), "alive again %s after the restart (restart %" PRIu32 ")",
                 d, c->rr ? c->rr->count : 0);
        if (c->rr)
            c->rr->up_at = now;
        call_finish(c, HOOK_CALL_OK, detail);
        return;
    }
    if (now >= c->wait_until) {
        char detail[96], d[32];
        vigil_format_duration(c->action->restart_wait, d, sizeof(d));
        snprintf(detail, sizeof(detail), "not alive within %s of the restart (restart %" PRIu32 ")",
                 d, c->rr ? c->rr->count : 0);
        call_finish(c, HOOK_CALL_FAILED, detail);
        return;
    }
    vio_timer_arm(a->loop, &c->timer, now + ACT_RESTART_POLL);
}

static char **restart_env(const struct hook_call *hc)
{
    extern char **environ;
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    char **envp = calloc(n + 8, sizeof(*envp));
    if (!envp)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "VIGIL_", 6) != 0)
            envp[k++] = environ[i];
    char buf[6][HOOK_KEY_MAX + 40];
    snprintf(buf[0], sizeof(buf[0]), "VIGIL_NODE=%s", hc->rec->ev.node);
    snprintf(buf[1], sizeof(buf[1]), "VIGIL_ACTION=restart");
    snprintf(buf[2], sizeof(buf[2]), "VIGIL_ACTION_NAME=%s", hc->name);
    snprintf(buf[3], sizeof(buf[3]), "VIGIL_ATTEMPT=%" PRIu32, hc->attempt);
    snprintf(buf[4], sizeof(buf[4]), "VIGIL_EPOCH=%" PRId64, hc->epoch);
    snprintf(buf[5], sizeof(buf[5]), "VIGIL_IDEMPOTENCY_KEY=%s", hc->key);
    for (size_t i = 0; i < 6; i++)
        if (!(envp[k++] = strdup(buf[i]))) {
            for (size_t j = 0; j < k; j++)
                if (envp[j] && !strncmp(envp[j], "VIGIL_", 6))
                    free(envp[j]);
            free(envp);
            return NULL;
        }
    envp[k] = NULL;
    return envp;
}

static int restart_start(struct actions *a, const struct hook_call *hc, struct act_call *c)
{
    if (!a->o.env->procs)
        return -ENOSYS;
    c->action = hc->action;
    snprintf(c->node, sizeof(c->node), "%s", hc->rec->ev.node);
    c->rr = restart_get(a, hc->name, hc->rec->ev.node);
    c->envp = restart_env(hc);
    if (!c->rr || !c->envp)
        return -ENOMEM;
    vigil_time_t now = vio_now(a->loop), delay = 0;
    if (hc->attempt == 1) {
        /* A node up long enough since its last restart starts again from no backoff. */
        if (c->rr->up_at && now - c->rr->up_at >= hc->action->reset_after)
            c->rr->count = 0;
        /* Crash after crash: each first restart waits as the retries do (the runner's backoff). */
        if (c->rr->count > 0) {
            delay = hc->action->retry_delay;
            for (uint32_t i = 1; i < c->rr->count && delay < hc->action->retry_max; i++)
                delay *= 2;
            if (hc->action->retry_max > 0 && delay > hc->action->retry_max)
                delay = hc->action->retry_max;
        }
    }
    c->phase = 0;
    return vio_timer_arm(a->loop, &c->timer, now + delay) == 0 ? 0 : -ENOMEM;
}

/* ---- the driver ---- */

static int drv_start(void *arg, const struct hook_call *hc, void *token, void **out)
{
    struct actions *a = arg;
    /* The action's place in the list (for its secret): an escalation hands the list's own. */
    size_t idx = 0;
    while (idx < a->o.n_hooks && hc->action != &a->o.hooks[idx])
        idx++;
    if (idx == a->o.n_hooks)
        for (idx = 0; idx < a->o.n_hooks; idx++)
            if (!strcmp(hook_runner_action_name(a->o.runner, idx), hc->name))
                break;
    struct act_call *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->a = a;
    c->token = token;
    c->kind = hc->action->kind;
    vio_timer_init(&c->timer, restart_timer, c);
    c->next = a->calls;
    if (a->calls)
        a->calls->prev = c;
    a->calls = c;
    int rc = -ENOSYS;
    switch (hc->action->kind) {
    case VCFG_ACT_HAPROXY: {
        const struct vcfg_hook *h = hc->action;
        c->undo = hc->undo;
        c->drain = h->drain;
        snprintf(c->what, sizeof(c->what), "%s", h->target);
        bool bad = false;
        for (size_t i = 0; i < h->n_servers && !bad; i++)
            bad = hap_add(c, h->servers[i], hc->rec->ev.node, hc->rec->ev.check) != 0;
        if (h->server_key && a->o.custom_of) {
            char v[VIGIL_CUSTOM_VAL_MAX + 1];
            if (a->o.custom_of(a->o.arg, hc->rec->ev.node, h->server_key, v, sizeof(v)) == 0) {
                char *save = NULL;
                for (char *t = strtok_r(v, ", ", &save); t && !bad; t = strtok_r(NULL, ", ", &save))
                    bad = hap_add(c, t, hc->rec->ev.node, hc->rec->ev.check) != 0;
            }
        }
        if (bad || c->n_servers == 0) {
            call_free(c);
            return -EINVAL;
        }
        rc = hap_next(c);
        break;
    }
    case VCFG_ACT_WEBHOOK:
        rc = webhook_start(a, idx, hc, c);
        break;
    case VCFG_ACT_ALERTMANAGER:
        rc = alertmanager_start(a, hc, c);
        break;
    case VCFG_ACT_RESTART:
        rc = restart_start(a, hc, c);
        break;
    default:
        break;
    }
    if (rc != 0) {
        call_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void drv_cancel(void *arg, void *call)
{
    (void)arg;
    struct actions *a = arg;
    struct act_call *c = call;
    if (!c)
        return;
    if (c->kind == VCFG_ACT_RESTART || c->kind == VCFG_ACT_WEBHOOK ||
        c->kind == VCFG_ACT_ALERTMANAGER) {
        /* Its timer stops, its child (a restart command) is killed: nothing of it goes on. */
        call_free(c);
        return;
    }
    if (c->x) {
        a->o.env->exchange_cancel(a->o.env, c->x);
        call_free(c);
        return;
    }
    /* An HTTP request cannot be taken back: its answer frees the call, telling nobody. */
    c->cancelled = true;
}

/* ---- escalation ---- */

void actions_escalate(struct actions *a, const char *target, const char *from,
                      const struct evrec *rec)
{
    if (!a)
        return;
    const struct vcfg_hook *t = NULL;
    char nm[VCFG_ACTION_NAME_MAX + 24];
    for (size_t i = 0; i < a->o.n_hooks && !t; i++)
        if (!strcmp(vcfg_hook_name(&a->o.hooks[i], i, nm, sizeof(nm)), target))
            t = &a->o.hooks[i];
    if (!t)
        return;
    char why[160], key[HOOK_KEY_MAX], name[VCFG_ACTION_NAME_MAX + 40];
    snprintf(why, sizeof(why), "the restarts of action %s gave up", from);
    snprintf(key, sizeof(key), "%s:%" PRIu64 ":%" PRIu64 ":%s:escalated", rec->ev.node,
             rec->ev.generation, rec->ev.seq, from);
    /* Its alert is kept apart from the action's own (resolved with the node, not by an undo). */
    snprintf(name, sizeof(name), "%s:escalated", nm);
    struct hook_call hc = {
        .action = t,
        .name = name,
        .rec = rec,
        .attempt = 1,
        .key = key,
        .escalated = why,
    };
    void *call = NULL;
    int rc = drv_start(a, &hc, NULL, &call);
    alog(a, "escalation of %s for %s to %s: %s", from, rec->ev.node, nm,
         rc == 0 ? "sent" : strerror(-rc));
}

void actions_node_alive(struct actions *a, const char *node)
{
    if (!a)
        return;
    for (struct alert **p = &a->alerts; *p;) {
        struct alert *al = *p;
        size_t n = strlen(al->action);
        if (strcmp(al->node, node) != 0 || n < 10 || strcmp(al->action + n - 10, ":escalated")) {
            p = &al->next;
            continue;
        }
        *p = al->next;
        resolve_alert(a, al->url, al->labels_json, al->action, node, al->seq);
        outbox_set(a, al->id, "done");
        alog(a, "escalated alert for %s resolved: the node is alive", node);
        alert_free(al);
    }
}

/* ---- resuming what an earlier run left ---- */

static const char *jstr(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static int resume_one(void *arg, const struct vio_store_outbox *e)
{
    struct actions *a = arg;
    json_t *p = json_loads(e->payload, 0, NULL);
    if (!p) {
        alog(a, "outbox entry %" PRId64 " (%s) is not JSON: dropped", e->id, e->kind);
        outbox_set(a, e->id, "failed");
        return 0;
    }
    if (!strcmp(e->kind, "webhook") && !strcmp(e->state, "pending")) {
        json_int_t seq = json_integer_value(json_object_get(p, "seq"));
        struct delivery *d = delivery_new(a, jstr(p, "url"), jstr(p, "body"), jstr(p, "key"),
                                          jstr(p, "action"), jstr(p, "node"), VCFG_ACT_WEBHOOK,
                                          (uint64_t)seq, json_is_true(json_object_get(p, "undo")),
                                          ACT_RESUME_TRIES - 1, RESUME_DELAY, RESUME_DELAY_MAX);
        if (d) {
            d->id = e->id;
            snprintf(d->sig, sizeof(d->sig), "%s", jstr(p, "sig"));
            alog(a, "webhook %s: left pending by the last run, delivering it again", d->key);
            vio_timer_arm(a->loop, &d->timer, vio_now(a->loop));
        }
    } else if (!strcmp(e->kind, "alert") && !strcmp(e->state, "firing")) {
        const char *node = jstr(p, "node");
        enum vigil_state st = VIGIL_STATE_UNKNOWN;
        bool alive =
            a->o.state_of && a->o.state_of(a->o.arg, node, &st) == 0 && st == VIGIL_STATE_ALIVE;
        struct alert *al = calloc(1, sizeof(*al));
        if (al) {
            al->id = e->id;
            snprintf(al->action, sizeof(al->action), "%s", jstr(p, "action"));
            snprintf(al->node, sizeof(al->node), "%s", node);
            al->url = strdup(jstr(p, "url"));
            al->labels_json = strdup(jstr(p, "labels"));
            json_int_t rep = json_integer_value(json_object_get(p, "repeat_ns"));
            al->repeat = rep >= VIGIL_NSEC_PER_SEC ? rep : ACT_AM_REPEAT_DEFAULT;
            al->retry = al->first_retry = RESUME_DELAY;
            al->serial = ++a->alert_serial;
            if (alive) {
                /* Back while no monitor ran: resolved now, with the labels it fired with. */
                if (al->url && al->labels_json)
                    resolve_alert(a, al->url, al->labels_json, al->action, node, 0);
                alog(a, "alert for %s: the node is alive again; resolved", node);
                outbox_set(a, e->id, "done");
                alert_free(al);
            } else {
                al->body = strdup(jstr(p, "body"));
                if (!al->url || !al->body || !al->labels_json) {
                    alert_free(al);
                } else {
                    al->next_at = vio_now(a->loop);
                    al->next = a->alerts;
                    a->alerts = al;
                    alog(a, "alert for %s: firing since the last run, re-posted", node);
                    vio_timer_arm(a->loop, &a->alert_timer, al->next_at);
                }
            }
        }
    }
    json_decref(p);
    return 0;
}

void actions_resume(struct actions *a)
{
    if (!a || !a->o.store)
        return;
    /* What is done is of no more use: the outbox keeps what is still to do, and failures. */
    size_t purged = 0;
    if (a->o.store->ops->outbox_purge(a->o.store, "done", &purged) == 0 && purged > 0)
        alog(a, "outbox: %zu entries done since the last start removed", purged);
    a->o.store->ops->outbox_list(a->o.store, "pending", resume_one, a);
    a->o.store->ops->outbox_list(a->o.store, "firing", resume_one, a);
}

int actions_new(const struct actions_opts *o, struct actions **out, char *err, size_t cap)
{
    *out = NULL;
    struct actions *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    a->o = *o;
    a->loop = o->env->loop;
    vio_timer_init(&a->alert_timer, alert_timer, a);
    for (size_t i = 0; i < o->n_hooks && i < VCFG_MAX_HOOKS; i++) {
        const struct vcfg_hook *h = &o->hooks[i];
        if (h->kind != VCFG_ACT_WEBHOOK || !h->secret_file)
            continue;
        char *sec = NULL;
        size_t len = 0;
        char why[300];
        if (vcfg_read_secret(o->env->fs, h->secret_file, SECRET_MAX + 2, "a webhook secret file",
                             "", &sec, &len, why, sizeof(why)) != 0) {
            snprintf(err, cap, "%s", why);
            actions_free(a);
            return -1;
        }
        while (len > 0 && (sec[len - 1] == '\n' || sec[len - 1] == '\r'))
            len--;
        if (len == 0 || len > sizeof(a->secrets[i].key)) {
            snprintf(err, cap, "%s: must hold 1 to %zu bytes", h->secret_file,
                     sizeof(a->secrets[i].key));
            sodium_memzero(sec, len);
            free(sec);
            actions_free(a);
            return -1;
        }
        memcpy(a->secrets[i].key, sec, len);
        a->secrets[i].len = len;
        a->secrets[i].set = true;
        sodium_memzero(sec, len);
        free(sec);
    }
    if (!o->env->http_open || o->env->http_open(o->env, &a->http) != 0) {
        snprintf(err, cap, "cannot open an HTTP client for the actions");
        actions_free(a);
        return -1;
    }
    struct hook_driver d = {.start = drv_start, .cancel = drv_cancel, .arg = a};
    hook_runner_set_driver(o->runner, &d);
    *out = a;
    return 0;
}

void actions_free(struct actions *a)
{
    if (!a)
        return;
    /* The runner is gone already (hook_runner_free cancelled its calls): it is not touched. */
    vio_timer_disarm(a->loop, &a->alert_timer);
    vio_http_close(a->http); /* answers still to come are not delivered */
    while (a->calls) {
        struct act_call *c = a->calls;
        if (c->x)
            a->o.env->exchange_cancel(a->o.env, c->x);
        call_free(c);
    }
    while (a->deliveries) {
        struct delivery *d = a->deliveries;
        a->deliveries = d->next;
        delivery_free(d);
    }
    while (a->alerts) {
        struct alert *al = a->alerts;
        a->alerts = al->next;
        alert_free(al);
    }
    while (a->restarts) {
        struct restart_rec *r = a->restarts;
        a->restarts = r->next;
        free(r);
    }
    while (a->posts) { /* their answers never come: the client is closed */
        struct alert_post *ap = a->posts;
        a->posts = ap->next;
        free(ap);
    }
    sodium_memzero(a->secrets, sizeof(a->secrets));
    free(a);
}
