/* Fake HTTP server and client: see fake_http.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include <vigil/sender.h>

#include "fake_http.h"

/* Ports given to servers opened on port 0, counting up (as an ephemeral range would). */
#define FAKE_HTTPD_FIRST_PORT 40000

/* ---- the server ---------------------------------------------------------- */

/* Turns a deferred request may take to be answered before the fake gives up (a bug). */
#define FAKE_HTTPD_MAX_TURNS 10000000L

/* A request being answered: the handler's answer, now or deferred. */
struct fake_exchange {
    struct vio_http_response resp;
    bool answered;
};

struct fake_httpd {
    struct vio_httpd base;
    struct vio_loop *loop;
    vio_http_handler handler;
    void *arg;
    uint16_t port;
    uint64_t requests;
};

static void fh_respond(struct vio_httpd *h, void *exchange, struct vio_http_response *resp)
{
    (void)h;
    struct fake_exchange *x = exchange;
    x->resp = *resp;
    x->answered = true;
}

static uint16_t next_port = FAKE_HTTPD_FIRST_PORT;

static uint16_t fh_port(const struct vio_httpd *h)
{
    return ((const struct fake_httpd *)h)->port;
}

static void fh_close(struct vio_httpd *h)
{
    free(h);
}

static const struct vio_httpd_ops fake_httpd_ops = {
    .port = fh_port,
    .respond = fh_respond,
    .close = fh_close,
};

int fake_httpd_open(struct vio_loop *l, const char *addr, vio_http_handler handler, void *arg,
                    struct vio_httpd **out, char *err, size_t cap)
{
    struct vigil_addr va;
    *out = NULL;
    if (!addr || vigil_addr_parse(addr, 7947, &va) != 0 ||
        (va.family != AF_INET && va.family != AF_INET6)) {
        snprintf(err, cap,
                 "invalid API address '%s' (want a numeric \"IP:PORT\" or \"[IPv6]:PORT\")",
                 addr ? addr : "");
        return -VIGIL_EINVAL;
    }
    struct fake_httpd *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, cap, "out of memory");
        return -VIGIL_ENOMEM;
    }
    h->base.ops = &fake_httpd_ops;
    h->loop = l;
    h->handler = handler;
    h->arg = arg;
    h->port = va.port ? va.port : next_port++;
    *out = &h->base;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes n bytes of s into a new string (a broken escape stays as it is). */
static char *decode_path(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0 && (hi || lo)) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

void fake_http_reply_free(struct fake_http_reply *r)
{
    free(r->body);
    r->body = NULL;
}

int fake_httpd_request_full(struct vio_httpd *base, const char *method, const char *target,
                            const char *body, size_t body_len, struct fake_http_reply *reply)
{
    return fake_httpd_request_auth(base, method, target, NULL, body, body_len, reply);
}

int fake_httpd_request_auth(struct vio_httpd *base, const char *method, const char *target,
                            const char *authorization, const char *body, size_t body_len,
                            struct fake_http_reply *reply)
{
    struct fake_httpd *h = (struct fake_httpd *)base;
    memset(reply, 0, sizeof(*reply));
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    char *path = decode_path(target, plen);
    /* The real server hands over a NUL-terminated copy of the body. */
    char *copy = malloc(body_len + 1);
    if (!path || !copy) {
        free(path);
        free(copy);
        return -VIGIL_ENOMEM;
    }
    if (body_len)
        memcpy(copy, body, body_len);
    copy[body_len] = '\0';
    struct vio_http_request req = {
        .method = method,
        .path = path,
        .query = q ? q + 1 : "",
        .body = copy,
        .body_len = body_len,
        .authorization = authorization,
    };
    struct fake_exchange x;
    memset(&x, 0, sizeof(x));
    x.resp.exchange = &x;
    h->handler(h->arg, &req, &x.resp);
    h->requests++;
    free(path);
    free(copy);
    if (x.resp.deferred) {
        /*
         * Answered later, a slice per turn: turn the loop at this same
         * virtual time (the work is ready, not timed) until the answer is in.
         */
        free(x.resp.body);
        memset(&x.resp, 0, sizeof(x.resp));
        for (long i = 0; i < FAKE_HTTPD_MAX_TURNS && !x.answered; i++)
            vio_loop_dispatch(h->loop, vio_now(h->loop));
        if (!x.answered)
            abort(); /* a deferred request never answered: the handler's bug */
    }
    struct vio_http_response resp = x.resp;

    reply->status = resp.status ? resp.status : 500;
    snprintf(reply->content_type, sizeof(reply->content_type), "%s",
             resp.content_type ? resp.content_type : "");
    size_t off = 0;
    for (const char *const *l = resp.headers; l && *l; l++) {
        int n = snprintf(reply->headers + off, sizeof(reply->headers) - off, "%s\n", *l);
        if (n < 0 || (size_t)n >= sizeof(reply->headers) - off)
            break;
        off += (size_t)n;
    }
    /* As on the wire: the body, NUL terminated for the test's convenience. */
    reply->body = malloc(resp.body_len + 1);
    if (!reply->body) {
        free(resp.body);
        return -VIGIL_ENOMEM;
    }
    if (resp.body_len)
        memcpy(reply->body, resp.body, resp.body_len);
    reply->body[resp.body_len] = '\0';
    reply->body_len = resp.body_len;
    free(resp.body);
    return 0;
}

int fake_httpd_request(struct vio_httpd *h, const char *method, const char *target,
                       unsigned *status, char **body)
{
    struct fake_http_reply r;
    int rc = fake_httpd_request_full(h, method, target, NULL, 0, &r);
    if (rc)
        return rc;
    if (status)
        *status = r.status;
    if (body)
        *body = r.body;
    else
        free(r.body);
    return 0;
}

uint64_t fake_httpd_requests(const struct vio_httpd *h)
{
    return ((const struct fake_httpd *)h)->requests;
}

/* ---- the client ---------------------------------------------------------- */

struct fake_call {
    struct fake_client *c;
    size_t index; /* in the records */
    struct fake_http_answer ans;
    vio_http_done done;
    void *arg;
    struct vio_timer timer;
    struct fake_call *prev, *next;
};

struct fake_client {
    struct vio_http base;
    struct vio_loop *loop;
    fake_http_answer_fn fn;
    void *arg;
    struct fake_http_record *records;
    size_t n_records, cap_records;
    struct fake_call *calls; /* in flight */
    size_t in_flight;
};

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void record_free(struct fake_http_record *r)
{
    for (size_t k = 0; r->headers && k < r->n_headers; k++)
        free(r->headers[k]);
    free(r->headers);
    free(r->method);
    free(r->url);
    free(r->body);
}

static void call_unlink(struct fake_call *f)
{
    struct fake_client *c = f->c;
    if (f->prev)
        f->prev->next = f->next;
    else
        c->calls = f->next;
    if (f->next)
        f->next->prev = f->prev;
    c->in_flight--;
}

static void on_answer(void *arg, vigil_time_t now)
{
    struct fake_call *f = arg;
    struct fake_client *c = f->c;
    struct fake_http_record *rec = &c->records[f->index];
    struct vio_http_result res = {
        .error = f->ans.error,
        .status = f->ans.error    ? 0
                  : f->ans.status ? f->ans.status
                                  : 200,
        .body = f->ans.error || !f->ans.body ? "" : f->ans.body,
        .body_len = f->ans.error ? 0 : f->ans.body_len,
    };
    if (res.error)
        res.why = f->ans.why ? f->ans.why : strerror(-res.error);
    rec->finished = now;
    rec->error = res.error;
    rec->status = res.status;
    call_unlink(f);
    f->done(f->arg, &res);
    free(f->ans.body);
    free(f);
}

static int fc_start(struct vio_http *base, const struct vio_http_call *call, vio_http_done done,
                    void *arg)
{
    struct fake_client *c = (struct fake_client *)base;
    if (!call->url || !done)
        return -EINVAL;
    if (c->n_records == c->cap_records) {
        size_t cap = c->cap_records ? c->cap_records * 2 : 16;
        struct fake_http_record *r = realloc(c->records, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        c->records = r;
        c->cap_records = cap;
    }
    struct fake_call *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    struct fake_http_record *rec = &c->records[c->n_records];
    memset(rec, 0, sizeof(*rec));
    size_t nh = 0;
    while (call->headers && call->headers[nh])
        nh++;
    rec->method = strdup(call->method ? call->method : "GET");
    rec->url = strdup(call->url);
    rec->body = dup_bytes(call->body ? call->body : "", call->body ? call->body_len : 0);
    rec->body_len = call->body ? call->body_len : 0;
    rec->headers = calloc(nh + 1, sizeof(char *));
    bool bad = !rec->method || !rec->url || !rec->body || !rec->headers;
    for (size_t i = 0; !bad && i < nh; i++) {
        rec->headers[i] = strdup(call->headers[i]);
        bad = !rec->headers[i];
        rec->n_headers = i + 1;
    }
    if (bad) {
        record_free(rec);
        free(f);
        return -ENOMEM;
    }
    vigil_time_t now = vio_now(c->loop);
    rec->timeout = call->timeout;
    rec->started = now;
    rec->finished = -1;
    f->c = c;
    f->index = c->n_records++;
    f->done = done;
    f->arg = arg;
    if (c->fn) {
        c->fn(c->arg, call, &f->ans);
    } else {
        f->ans.error = -ECONNREFUSED;
    }
    /* Slower than the timeout: the timeout answers first, and the answer is dropped. */
    vigil_time_t limit = call->timeout > 0 ? call->timeout : VIO_HTTP_TIMEOUT;
    vigil_time_t delay = f->ans.delay > 0 ? f->ans.delay : 0;
    if (delay > limit) {
        free(f->ans.body);
        memset(&f->ans, 0, sizeof(f->ans));
        f->ans.error = -ETIMEDOUT;
        f->ans.why = "timed out";
        delay = limit;
    }
    vio_timer_init(&f->timer, on_answer, f);
    if (vio_timer_arm(c->loop, &f->timer, now + delay) != 0) {
        free(f->ans.body);
        free(f);
        record_free(&c->records[--c->n_records]);
        return -ENOMEM;
    }
    f->next = c->calls;
    if (c->calls)
        c->calls->prev = f;
    c->calls = f;
    c->in_flight++;
    return 0;
}

static void fc_close(struct vio_http *base)
{
    struct fake_client *c = (struct fake_client *)base;
    while (c->calls) {
        struct fake_call *f = c->calls;
        vio_timer_disarm(c->loop, &f->timer);
        call_unlink(f);
        free(f->ans.body);
        free(f);
    }
    for (size_t i = 0; i < c->n_records; i++)
        record_free(&c->records[i]);
    free(c->records);
    free(c);
}

static const struct vio_http_ops fake_client_ops = {
    .start = fc_start,
    .close = fc_close,
};

struct vio_http *fake_http_new(struct vio_loop *l, fake_http_answer_fn fn, void *arg)
{
    struct fake_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->base.ops = &fake_client_ops;
    c->loop = l;
    c->fn = fn;
    c->arg = arg;
    return &c->base;
}

size_t fake_http_calls(const struct vio_http *c)
{
    return ((const struct fake_client *)c)->n_records;
}

const struct fake_http_record *fake_http_call_at(const struct vio_http *base, size_t i)
{
    const struct fake_client *c = (const struct fake_client *)base;
    return i < c->n_records ? &c->records[i] : NULL;
}

size_t fake_http_in_flight(const struct vio_http *c)
{
    return ((const struct fake_client *)c)->in_flight;
}
