/*
 * The HTTP client (struct vio_http) on libcurl's multi interface, driven
 * from a vio loop.
 *
 * libcurl says which sockets it wants watched and for what
 * (CURLMOPT_SOCKETFUNCTION) and when it next needs to be called
 * (CURLMOPT_TIMERFUNCTION); it never waits itself. Each socket becomes a
 * source of the loop (watch_fd_events, read and/or write), the deadline a
 * loop timer, and both call curl_multi_socket_action. A finished transfer
 * is reported to its caller's done callback with the status and the body,
 * then freed. So requests run beside everything else on the loop's thread,
 * and a slow or hanging server costs a socket and a timer, never a wait.
 *
 * Every request is bounded: in time (the call's timeout, VIO_HTTP_TIMEOUT
 * by default), in the bytes of the answer kept (body_max), in protocols
 * (http and https only, also after a redirect, which is not followed
 * anyway), and it never goes through a proxy named in the environment:
 * the program talks to the hosts its configuration names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include <vigil/vigil.h>

#include "io/real.h"

struct curl_http;

/* A socket libcurl asked to have watched. */
struct curl_sock {
    struct curl_http *c;
    curl_socket_t fd;
    struct vio_source src;
    struct curl_sock *prev, *next;
};

/* One request in flight. */
struct curl_req {
    struct curl_http *c;
    CURL *easy;
    struct curl_slist *headers;
    vio_http_done done;
    void *arg;
    char *body;
    size_t len, cap, max;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
    struct curl_req *prev, *next;
};

struct curl_http {
    struct vio_http base;
    struct vio_loop *loop;
    CURLM *multi;
    struct vio_timer timer;
    struct curl_req *reqs;   /* in flight, to cancel on close */
    struct curl_sock *socks; /* watched, to forget on close */
    int depth;               /* done callbacks running: close waits for them to return */
    bool close_pending;
};

/* ---- the loop's side ---------------------------------------------------- */

static void check_done(struct curl_http *c);

static void on_sock(void *arg, vigil_time_t now)
{
    struct curl_sock *s = arg;
    struct curl_http *c = s->c;
    int running;
    (void)now;
    /* 0: libcurl looks at the socket itself (the source does not say read or write). */
    curl_multi_socket_action(c->multi, s->fd, 0, &running);
    check_done(c);
}

static void on_timer(void *arg, vigil_time_t now)
{
    struct curl_http *c = arg;
    int running;
    (void)now;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static void sock_forget(struct curl_sock *s)
{
    struct curl_http *c = s->c;
    vio_unwatch_fd(c->loop, s->fd);
    vio_source_cancel(c->loop, &s->src);
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch, change or forget one socket. */
static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct curl_http *c = userp;
    struct curl_sock *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        /* libcurl says so before it closes the socket: the number is not reused yet. */
        if (s) {
            sock_forget(s);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->c = c;
        s->fd = fd;
        vio_source_init(&s->src, on_sock, s);
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    unsigned events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= VIO_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= VIO_WRITE;
    return vio_watch_fd_events(c->loop, fd, events, &s->src) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: when libcurl next wants to be called (-1: never). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct curl_http *c = userp;
    (void)multi;
    if (timeout_ms < 0) {
        vio_timer_disarm(c->loop, &c->timer);
        return 0;
    }
    /* 0: at once, which is the loop's next turn (libcurl must not be called from here). */
    vigil_time_t at = vio_now(c->loop) + (vigil_time_t)timeout_ms * VIGIL_NSEC_PER_MSEC;
    return vio_timer_arm(c->loop, &c->timer, at) == 0 ? 0 : -1;
}

/* ---- requests ----------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct curl_req *r = arg;
    size_t add = size * n;
    if (add > r->max - r->len) {
        r->too_big = true;
        return 0; /* makes libcurl fail the transfer */
    }
    if (r->len + add + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4096;
        while (cap < r->len + add + 1)
            cap *= 2;
        char *p = realloc(r->body, cap);
        if (!p)
            return 0;
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

static void req_free(struct curl_req *r)
{
    struct curl_http *c = r->c;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (r->easy) {
        curl_multi_remove_handle(c->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r);
}

/* What went wrong with a transfer that got no answer: an errno and words for people. */
static int failure(struct curl_req *r, CURLcode rc, char *why, size_t cap)
{
    long os_errno = 0;
    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
    if (r->too_big) {
        snprintf(why, cap, "response larger than %zu bytes", r->max);
        return -EFBIG;
    }
    if (rc == CURLE_COULDNT_CONNECT && os_errno > 0) {
        snprintf(why, cap, "%s", strerror((int)os_errno));
        return -(int)os_errno;
    }
    snprintf(why, cap, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return -EINVAL;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

static void http_free_all(struct curl_http *c);

/* Reports every finished transfer to its caller. */
static void check_done(struct curl_http *c)
{
    CURLMsg *msg;
    int left;
    c->depth++;
    while (!c->close_pending && (msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        struct curl_req *r = (struct curl_req *)priv;
        if (!r)
            continue;
        char why[CURL_ERROR_SIZE + 64];
        struct vio_http_result res = {.body = r->body ? r->body : "", .body_len = r->len};
        if (msg->data.result == CURLE_OK) {
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
        } else {
            res.error = failure(r, msg->data.result, why, sizeof(why));
            res.why = why;
            res.body = "";
            res.body_len = 0;
        }
        /* Out of the multi handle first: the callback may start new requests. */
        curl_multi_remove_handle(c->multi, r->easy);
        r->done(r->arg, &res);
        req_free(r);
    }
    if (--c->depth == 0 && c->close_pending)
        http_free_all(c);
}

static int http_start(struct vio_http *base, const struct vio_http_call *call, vio_http_done done,
                      void *arg)
{
    struct curl_http *c = (struct curl_http *)base;
    if (!call->url || !done)
        return -EINVAL;
    struct curl_req *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->c = c;
    r->done = done;
    r->arg = arg;
    r->max = call->body_max ? call->body_max : VIO_HTTP_BODY_MAX;
    r->easy = curl_easy_init();
    if (!r->easy) {
        free(r);
        return -ENOMEM;
    }
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;

    CURL *e = r->easy;
    const char *method = call->method ? call->method : "GET";
    vigil_time_t timeout = call->timeout > 0 ? call->timeout : VIO_HTTP_TIMEOUT;
    /* Milliseconds, rounded up: a timeout under 1 ms is not "none". */
    long timeout_ms = (long)((timeout + VIGIL_NSEC_PER_MSEC - 1) / VIGIL_NSEC_PER_MSEC);
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, call->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK;
    if (call->fresh) {
        bad |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK;
    }
    if (call->insecure) {
        bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK;
    }
    if (call->connect_timeout > 0) {
        long ms = (long)((call->connect_timeout + VIGIL_NSEC_PER_MSEC - 1) / VIGIL_NSEC_PER_MSEC);
        bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms) != CURLE_OK;
    }
    /* The program talks to the hosts it was configured with: no proxy from the environment. */
    bad |= curl_easy_setopt(e, CURLOPT_NOPROXY, "*") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "vigil/" VIGIL_VERSION_STRING) != CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
#else
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) !=
           CURLE_OK;
#endif
    if (!strcmp(method, "HEAD")) {
        bad |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L) != CURLE_OK;
    } else if (call->body || !strcmp(method, "POST")) {
        /* Copied: the caller's buffer need not outlive this call. */
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)call->body_len) != CURLE_OK;
        bad |=
            curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, call->body ? call->body : "") != CURLE_OK;
        if (strcmp(method, "POST") != 0)
            bad |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
    } else if (strcmp(method, "GET") != 0) {
        bad |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
    }
    for (const char *const *h = call->headers; h && *h && !bad; h++) {
        struct curl_slist *l = curl_slist_append(r->headers, *h);
        if (!l)
            bad = 1;
        else
            r->headers = l;
    }
    if (r->headers)
        bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK;
    if (call->cainfo)
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, call->cainfo) != CURLE_OK;
    if (bad) {
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        req_free(r);
        return -EINVAL;
    }
    /* libcurl now calls timer_cb to be started on the loop's next turn. */
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        req_free(r);
        return -ENOMEM;
    }
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------- */

static void http_free_all(struct curl_http *c)
{
    while (c->reqs)
        req_free(c->reqs);
    /*
     * Sockets still open (the connection cache) are forgotten before
     * libcurl closes them, so that no other descriptor that later gets
     * the same number is unwatched by mistake.
     */
    while (c->socks) {
        curl_multi_assign(c->multi, c->socks->fd, NULL);
        sock_forget(c->socks);
    }
    curl_multi_cleanup(c->multi);
    vio_timer_disarm(c->loop, &c->timer);
    free(c);
    curl_global_cleanup();
}

static void http_close(struct vio_http *base)
{
    struct curl_http *c = (struct curl_http *)base;
    /* From a done callback: the client goes once the callback returned. */
    if (c->depth > 0) {
        c->close_pending = true;
        return;
    }
    http_free_all(c);
}

static const struct vio_http_ops curl_ops = {
    .start = http_start,
    .close = http_close,
};

int vio_http_curl_new(struct vio_loop *l, struct vio_http **out)
{
    *out = NULL;
    /* Counted by libcurl: each client holds one reference, released in close. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -ENOMEM;
    struct curl_http *c = calloc(1, sizeof(*c));
    if (!c) {
        curl_global_cleanup();
        return -ENOMEM;
    }
    c->base.ops = &curl_ops;
    c->loop = l;
    vio_timer_init(&c->timer, on_timer, c);
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        curl_global_cleanup();
        return -ENOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    *out = &c->base;
    return 0;
}
