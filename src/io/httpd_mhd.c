/*
 * The HTTP server (struct vio_httpd) on libmicrohttpd, driven from a vio
 * loop.
 *
 * libmicrohttpd runs in "external epoll" mode: it starts no thread of its
 * own. Its epoll descriptor is watched as a source of the loop, and a loop
 * timer stands for MHD's own timeouts (idle connections); either runs
 * MHD_run, after which the timer is set again from MHD_get_timeout (which
 * says 0 when MHD still has work in hand). Every request is therefore
 * answered on the loop's thread, between two turns of whatever else the
 * loop serves, so a handler may read the program's state without locks.
 * The price is that a request holds up the loop while it is answered; the
 * bounds below (connection count, body size) keep that short.
 *
 * A request is collected whole before the handler sees it: the raw query
 * string (taken from the request line through MHD's URI log callback, as
 * MHD itself only offers the decoded arguments), the path as MHD decoded
 * it, and the body up to HTTPD_BODY_MAX bytes. The handler fills a
 * complete response in one buffer, which MHD sends and then frees, so MHD
 * never calls back into the program after the handler returned.
 *
 * A handler with a long answer to build (thousands of nodes) defers it:
 * the connection is suspended (MHD_suspend_connection) while the program
 * builds the answer a slice per loop turn, and resumed when
 * vio_httpd_respond hands it over; MHD then calls on_request once more,
 * which queues the stored response. The loop keeps reading heartbeats and
 * judging deadlines between the slices.
 *
 * Clients that connect and say nothing, or say it slowly, must not lock
 * the API: connections are bounded per client address (the accept policy
 * refuses the 17th from one address, and counts it) and in all, and a
 * connection silent for a few seconds is closed. With a certificate and
 * key the server speaks HTTPS only (GnuTLS inside libmicrohttpd).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include <vigil/sender.h>

#include "io/netaddr.h"
#include "io/real.h"

/* The port when the address names none: the API's (the heartbeat port plus one). */
#define HTTPD_DEFAULT_PORT 7947

/*
 * Concurrent connections, all clients together. The API serves operators,
 * scripts and a few scrapers; 512 leaves room for all of them from many
 * hosts while the monitor never holds thousands of sockets and buffers. It
 * is lowered to half the process's descriptor limit when that is smaller,
 * so that the API can never take the descriptors the listeners, the log
 * and the hooks need.
 */
#define HTTPD_CONNECTION_LIMIT 512

/*
 * Concurrent connections from one client address. One address opening
 * connections in a loop (or holding them idle) takes at most 16 slots, and
 * a client from any other address is still served: it takes 32 addresses
 * to fill the server. 16 is far more than any real client keeps open.
 */
#define HTTPD_PER_ADDRESS_LIMIT 16

/*
 * Seconds a connection may stay silent: idle between requests, or sending
 * its request (headers, body) no faster than a byte in that time; then it
 * is closed. libmicrohttpd (0.9) has one inactivity timeout and no separate
 * deadline for the headers, so a client that trickles a byte every few
 * seconds keeps its slot: the per-address limit bounds what that costs. 5 s
 * is long for a request on a loaded host, short enough that abandoned
 * connections free their slots quickly.
 */
#define HTTPD_CONNECTION_TIMEOUT_S 5

/*
 * Most bytes of a request body. The API's endpoints take no body or a small
 * JSON document; 64 KiB per request keeps the worst case at 32 MiB for all
 * 512 connections. A longer body is answered 413 without being kept.
 */
#define HTTPD_BODY_MAX (64u << 10)

/* Room for a numeric address formatted by vigil_addr_format ("[v6]:port"). */
#define HTTPD_ADDR_BUF 64

struct mhd_httpd {
    struct vio_httpd base;
    struct vio_loop *loop;
    struct MHD_Daemon *daemon;
    vio_http_handler handler;
    void *arg;
    struct mhd_req *deferred; /* requests waiting for vio_httpd_respond */
    struct vio_source ready;  /* MHD's epoll descriptor is readable */
    struct vio_timer timer;   /* MHD's own timeouts */
    int epfd;
    /* The last message MHD logged; while starting, it becomes the error. */
    char log[256];
    /*
     * Open connections by client address, for the per-address limit and
     * its count of refusals (MHD's own per-IP limit refuses silently). At
     * most `limit` addresses have connections, so a plain array scanned
     * on each new connection is enough; a slot with count 0 is free.
     */
    struct peer *peers;
    size_t n_peers; /* slots in use or used (free ones have count 0) */
    struct vio_httpd_stats stats;
};

/* One client address and its open connections. */
struct peer {
    int family;
    uint8_t addr[16];
    uint32_t count;
};

/* One request being collected (MHD's per-request context). */
struct mhd_req {
    char *query; /* the raw query string, "" when none */
    char *body;
    size_t len, cap;
    bool headers_seen;
    bool too_big;  /* the body passed HTTPD_BODY_MAX: answered 413 */
    bool deferred; /* suspended, waiting for vio_httpd_respond */
    bool answered; /* `answer` holds the deferred response */
    struct MHD_Connection *conn;
    struct vio_http_response answer;
    struct mhd_req *next_deferred; /* in the server's list, while deferred */
};

/* ---- connections -------------------------------------------------------- */

/* The address part of a client's socket address (no port); false if neither IPv4 nor IPv6. */
static bool peer_key(const struct sockaddr *sa, int *family, uint8_t addr[16])
{
    memset(addr, 0, 16);
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(addr, &in->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(addr, &in6->sin6_addr, 16);
    } else {
        return false;
    }
    *family = sa->sa_family;
    return true;
}

/* The slot of an address with open connections, or NULL. */
static struct peer *peer_find(struct mhd_httpd *h, int family, const uint8_t addr[16])
{
    for (size_t i = 0; i < h->n_peers; i++)
        if (h->peers[i].count && h->peers[i].family == family &&
            !memcmp(h->peers[i].addr, addr, 16))
            return &h->peers[i];
    return NULL;
}

/*
 * MHD's accept policy: called for every connection accepted, before MHD
 * sets it up. Refuses (MHD closes it at once) when its address already has
 * HTTPD_PER_ADDRESS_LIMIT open, or the server its limit.
 */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    struct mhd_httpd *h = cls;
    (void)addrlen;
    int family;
    uint8_t key[16];
    if (h->stats.connections >= h->stats.connection_limit) {
        h->stats.refused_limit++;
        return MHD_NO;
    }
    if (peer_key(addr, &family, key)) {
        const struct peer *p = peer_find(h, family, key);
        if (p && p->count >= HTTPD_PER_ADDRESS_LIMIT) {
            h->stats.refused_per_address++;
            return MHD_NO;
        }
    }
    return MHD_YES;
}

/* MHD's connection notice: a connection set up, or closed. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct mhd_httpd *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        h->stats.connections++;
        h->stats.accepted++;
        *socket_context = NULL;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        int family;
        uint8_t key[16];
        if (!ci || !peer_key(ci->client_addr, &family, key))
            return;
        struct peer *p = peer_find(h, family, key);
        for (size_t i = 0; !p && i < h->n_peers; i++)
            if (h->peers[i].count == 0)
                p = &h->peers[i];
        /* Never more addresses than connections: there is always a slot. */
        if (!p && h->n_peers < h->stats.connection_limit)
            p = &h->peers[h->n_peers++];
        if (!p)
            return;
        if (p->count == 0) {
            p->family = family;
            memcpy(p->addr, key, 16);
        }
        p->count++;
        *socket_context = p;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (h->stats.connections > 0)
            h->stats.connections--;
        struct peer *p = *socket_context;
        if (p && p->count > 0)
            p->count--;
        *socket_context = NULL;
    }
}

/* ---- requests ---------------------------------------------------------- */

/* MHD's URI log callback: the first sight of a request, with its URI as sent. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    struct mhd_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    const char *q = uri ? strchr(uri, '?') : NULL;
    r->query = strdup(q ? q + 1 : "");
    if (!r->query) {
        free(r);
        return NULL;
    }
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct mhd_req *r = *req_cls;
    if (r) {
        free(r->query);
        free(r->body);
        free(r->answer.body);
        free(r);
    }
    *req_cls = NULL;
}

/* A fixed JSON error, for when the server itself cannot go on (no memory, too big a body). */
static enum MHD_Result queue_static(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result too_big(struct MHD_Connection *conn)
{
    return queue_static(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                        "{\"error\":\"request body too large\"}\n");
}

/* Takes one piece of the body; false when it passed the bound. */
static bool take_body(struct mhd_req *r, const char *data, size_t n)
{
    if (n > HTTPD_BODY_MAX - r->len)
        return false;
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        while (cap < r->len + n + 1)
            cap *= 2;
        if (cap > HTTPD_BODY_MAX + 1)
            cap = HTTPD_BODY_MAX + 1;
        char *p = realloc(r->body, cap);
        if (!p)
            return false;
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return true;
}

/* Sends what the handler answered; MHD frees the body when it is sent. */
static enum MHD_Result send_response(struct MHD_Connection *conn, struct vio_http_response *out)
{
    struct MHD_Response *resp;
    if (out->body) {
        resp = MHD_create_response_from_buffer_with_free_callback(out->body_len, out->body, free);
        if (!resp)
            free(out->body);
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    if (out->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, out->content_type);
    for (const char *const *h = out->headers; h && *h; h++) {
        /* "Name: value": MHD wants the two apart. */
        const char *colon = strchr(*h, ':');
        char name[128];
        if (!colon || (size_t)(colon - *h) >= sizeof(name))
            continue;
        memcpy(name, *h, (size_t)(colon - *h));
        name[colon - *h] = '\0';
        const char *value = colon + 1;
        while (*value == ' ')
            value++;
        MHD_add_response_header(resp, name, value);
    }
    enum MHD_Result ret = MHD_queue_response(conn, out->status ? out->status : 500, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct mhd_httpd *h = cls;
    struct mhd_req *r = *req_cls;
    (void)version;
    if (!r)
        return queue_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                            "{\"error\":\"out of memory\"}\n");

    if (!r->headers_seen) {
        /* The headers only. A body announced too long is refused before it is read. */
        r->headers_seen = true;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > HTTPD_BODY_MAX) {
            r->too_big = true;
            return too_big(conn);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* A chunked body that grows too long is read to its end and dropped. */
        if (!r->too_big && !take_body(r, upload_data, *upload_data_size))
            r->too_big = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->too_big)
        return too_big(conn);
    if (r->deferred) {
        /* Resumed: the deferred answer is in. */
        if (!r->answered)
            return MHD_YES;
        r->deferred = false;
        struct vio_http_response out = r->answer;
        memset(&r->answer, 0, sizeof(r->answer));
        return send_response(conn, &out);
    }

    struct vio_http_request req = {
        .method = method,
        .path = url,
        .query = r->query,
        .body = r->body ? r->body : "",
        .body_len = r->len,
        .authorization =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
    };
    struct vio_http_response out;
    memset(&out, 0, sizeof(out));
    out.exchange = r;
    r->conn = conn;
    h->handler(h->arg, &req, &out);
    if (out.deferred) {
        free(out.body);
        r->deferred = true;
        r->next_deferred = h->deferred;
        h->deferred = r;
        MHD_suspend_connection(conn);
        return MHD_YES;
    }
    return send_response(conn, &out);
}

static void mhd_respond(struct vio_httpd *base, void *exchange, struct vio_http_response *resp)
{
    struct mhd_httpd *h = (struct mhd_httpd *)base;
    struct mhd_req *r = exchange;
    for (struct mhd_req **pp = &h->deferred; *pp; pp = &(*pp)->next_deferred)
        if (*pp == r) {
            *pp = r->next_deferred;
            break;
        }
    r->answer = *resp;
    r->answer.exchange = NULL;
    r->answer.deferred = false;
    r->answered = true;
    MHD_resume_connection(r->conn);
    /* MHD takes the resumed connection on its next run: at once, on this turn's end. */
    vio_source_ready(h->loop, &h->ready);
}

/* ---- driving MHD from the loop ----------------------------------------- */

/* Sets the timer from MHD's next timeout (0 when it has work in hand). */
static void rearm(struct mhd_httpd *h)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(h->daemon, &ms) != MHD_YES) {
        vio_timer_disarm(h->loop, &h->timer);
        return;
    }
    /* A timeout too long to represent is as good as none. */
    if (ms > (MHD_UNSIGNED_LONG_LONG)(INT64_MAX / VIGIL_NSEC_PER_MSEC / 2)) {
        vio_timer_disarm(h->loop, &h->timer);
        return;
    }
    vigil_time_t now = vio_now(h->loop);
    vigil_time_t d = (vigil_time_t)ms * VIGIL_NSEC_PER_MSEC;
    /* On failure (no memory for the heap) the descriptor still wakes the server. */
    vio_timer_arm(h->loop, &h->timer, now > VIGIL_TIME_NEVER - d ? VIGIL_TIME_NEVER : now + d);
}

static void run_mhd(struct mhd_httpd *h)
{
    MHD_run(h->daemon);
    rearm(h);
}

static void on_ready(void *arg, vigil_time_t now)
{
    (void)now;
    run_mhd(arg);
}

static void on_timer(void *arg, vigil_time_t now)
{
    (void)now;
    run_mhd(arg);
}

/* MHD's log: kept (the last message) so that opening can say why it failed. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct mhd_httpd *h = cls;
    vsnprintf(h->log, sizeof(h->log), fmt, ap);
    size_t n = strlen(h->log);
    while (n > 0 && (h->log[n - 1] == '\n' || h->log[n - 1] == '\r'))
        h->log[--n] = '\0';
    /* Past the accept policy (it refuses first), MHD's own limit only says so in its log. */
    if (!strncmp(h->log, "Server reached connection limit", 31))
        h->stats.refused_limit++;
}

/* ---- lifecycle ---------------------------------------------------------- */

/* The TCP port (the one the system picked when the address said port 0), or 0. */
static uint16_t mhd_port(const struct vio_httpd *base)
{
    const struct mhd_httpd *h = (const struct mhd_httpd *)base;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

static void mhd_close(struct vio_httpd *base)
{
    struct mhd_httpd *h = (struct mhd_httpd *)base;
    /* MHD cannot stop with connections suspended: answer what is still deferred. */
    while (h->deferred) {
        struct vio_http_response gone = {.status = 503};
        mhd_respond(base, h->deferred, &gone);
    }
    if (h->daemon)
        MHD_run(h->daemon);
    if (h->epfd >= 0)
        vio_unwatch_fd(h->loop, h->epfd);
    vio_source_cancel(h->loop, &h->ready);
    vio_timer_disarm(h->loop, &h->timer);
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    free(h->peers);
    free(h);
}

static void mhd_stats(const struct vio_httpd *base, struct vio_httpd_stats *st)
{
    *st = ((const struct mhd_httpd *)base)->stats;
}

static const struct vio_httpd_ops mhd_ops = {
    .port = mhd_port,
    .respond = mhd_respond,
    .close = mhd_close,
    .stats = mhd_stats,
};

/* The connection limit: HTTPD_CONNECTION_LIMIT, or half the descriptors the process may open. */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    unsigned limit = HTTPD_CONNECTION_LIMIT;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 2 < limit)
        limit = (unsigned)(rl.rlim_cur / 2);
    /* A process with almost no descriptors still serves a few clients. */
    return limit < HTTPD_PER_ADDRESS_LIMIT ? HTTPD_PER_ADDRESS_LIMIT : limit;
}

int vio_httpd_mhd_open(struct vio_loop *l, const struct vio_httpd_opts *opts,
                       vio_http_handler handler, void *arg, struct vio_httpd **out, char *err,
                       size_t cap)
{
    struct vigil_addr va;
    const char *addr = opts->addr;
    bool tls = opts->tls_cert || opts->tls_key;
    *out = NULL;
    if (!addr || vigil_addr_parse(addr, HTTPD_DEFAULT_PORT, &va) != 0 ||
        (va.family != AF_INET && va.family != AF_INET6)) {
        snprintf(err, cap,
                 "invalid API address '%s' (want a numeric \"IP:PORT\" or \"[IPv6]:PORT\")",
                 addr ? addr : "");
        return -VIGIL_EINVAL;
    }

    struct sockaddr_storage ss;
    socklen_t sslen;
    vigil__addr_to_sockaddr(&va, &ss, &sslen);
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (va.family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls) {
        if (!opts->tls_cert || !opts->tls_key) {
            snprintf(err, cap, "HTTPS needs both a certificate and its private key");
            return -VIGIL_EINVAL;
        }
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, cap,
                     "cannot serve the API over HTTPS: this libmicrohttpd was built without TLS");
            return -VIGIL_EINVAL;
        }
        flags |= MHD_USE_TLS;
    }

    struct mhd_httpd *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, cap, "out of memory");
        return -VIGIL_ENOMEM;
    }
    h->base.ops = &mhd_ops;
    h->loop = l;
    h->handler = handler;
    h->arg = arg;
    h->epfd = -1;
    unsigned limit = connection_limit();
    h->stats.connection_limit = limit;
    h->stats.per_address_limit = HTTPD_PER_ADDRESS_LIMIT;
    h->peers = calloc(limit, sizeof(*h->peers));
    if (!h->peers) {
        free(h);
        snprintf(err, cap, "out of memory");
        return -VIGIL_ENOMEM;
    }
    vio_source_init(&h->ready, on_ready, h);
    vio_timer_init(&h->timer, on_timer, h);
    errno = 0;
    /*
     * MHD's own limits stand one above the accept policy's, so that the
     * policy refuses first and counts; they remain as a backstop. The TLS
     * options come last: without TLS the first of them is MHD_OPTION_END,
     * which ends the list there.
     */
    h->daemon = MHD_start_daemon(
        flags, va.port, on_accept, h, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, limit + 1, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)HTTPD_PER_ADDRESS_LIMIT + 1, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)HTTPD_CONNECTION_TIMEOUT_S, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
        opts->tls_cert, MHD_OPTION_HTTPS_MEM_KEY, opts->tls_key, MHD_OPTION_END);
    char abuf[HTTPD_ADDR_BUF];
    vigil_addr_format(&va, abuf, sizeof(abuf));
    if (!h->daemon) {
        int e = errno;
        snprintf(err, cap, "cannot serve the API on %s: %s", abuf,
                 h->log[0] ? h->log
                 : e       ? strerror(e)
                           : "libmicrohttpd failed to start");
        free(h->peers);
        free(h);
        return -VIGIL_ESYS;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    int rc = info ? vio_watch_fd(l, info->epoll_fd, &h->ready) : -VIGIL_EINVAL;
    if (rc) {
        snprintf(err, cap, "cannot serve the API on %s: cannot watch the server (%s)", abuf,
                 rc < 0 && rc != -VIGIL_EINVAL ? strerror(-rc) : "no event loop");
        mhd_close(&h->base);
        return rc;
    }
    h->epfd = info->epoll_fd;
    rearm(h);
    *out = &h->base;
    return 0;
}
