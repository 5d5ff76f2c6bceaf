/*
 * vio: the interfaces through which the vigil program talks to the world.
 *
 * The daemon code (src/vigil) never calls the operating system itself. It
 * is written against the small interfaces below, each of which has a real
 * implementation here in src/io (epoll, UDP sockets, posix_spawn, files,
 * libmicrohttpd, libcurl) and a fake one in tests/sim (a virtual clock, a
 * simulated network, scripted child processes, an in-memory file system),
 * in the manner of tarantool's SWIM (swim_transport.h and its fake event
 * loop). The fakes let the simulator run whole programs, a monitor with
 * its hooks, log and API and hundreds of agents, on one virtual clock,
 * deterministically, while the integration tests prove the real ones.
 *
 * The interfaces:
 *
 *   vio_loop       the event loop: a clock, timers at absolute times,
 *                  sources that become ready, signals, stop.
 *   vio_transport  a datagram endpoint: receive batches (with the arrival
 *                  time taken by the kernel), send, its local address.
 *   vio_procs      child processes: spawn with argv, environment and a
 *                  standard input; exit reported through the loop; signal
 *                  the child's process group.
 *   vio_fs         files: read whole, replace atomically and durably,
 *                  append, stat.
 *   vio_log        the log: lines written without ever blocking the loop.
 *   vio_httpd      the HTTP server the API uses: a handler called with a
 *                  request, answering with a complete response.
 *   vio_http       an HTTP client: asynchronous requests with a timeout.
 *   vio_store      the monitor's durable state: marks, events, outbox.
 *   vio_exchange   one request and its answer on a stream socket (HAProxy).
 *
 * A struct vio_env bundles one of each; the program's main builds the real
 * one (vio_env_real), the simulator a fake one per simulated process.
 *
 * Every interface is a struct whose first member points at its operations;
 * callers use the inline wrappers. Nothing here is thread safe: one loop
 * owns everything made from it, except where a real implementation says it
 * runs work on a thread of its own (the log writer).
 */
#ifndef VIGIL_IO_VIO_H
#define VIGIL_IO_VIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vigil/common.h>
#include <vigil/monitor.h>
#include <vigil/wire.h>

/* ------------------------------------------------------------------ loop */

struct vio_loop;

/*
 * A timer, owned by the caller: fires once at or after `at`, on the loop's
 * thread. Timers with equal times fire in the order they were armed, so
 * runs are deterministic. Re-arming an armed timer moves it.
 */
typedef void (*vio_timer_fn)(void *arg, vigil_time_t now);
struct vio_timer {
    vigil_time_t at;
    uint64_t order; /* arming order, the tie breaker */
    size_t slot;    /* index in the loop's heap, or VIO_NOT_ARMED */
    vio_timer_fn fn;
    void *arg;
};
#define VIO_NOT_ARMED SIZE_MAX

/*
 * A source: something that becomes ready (a socket with data, a child that
 * exited, an HTTP server with work). The implementation behind it marks it
 * ready; the loop calls fn on its next turn, before any timer of that turn,
 * so data that arrived is always read before a deadline is judged.
 */
typedef void (*vio_source_fn)(void *arg, vigil_time_t now);
struct vio_source {
    vio_source_fn fn;
    void *arg;
    struct vio_source *next_ready;
    bool ready;
};

/* Signals the loop delivers (real: through signalfd; fake: injected). */
typedef void (*vio_signal_fn)(void *arg, int signo);

struct vio_loop_ops {
    /* Monotonic time, ns. */
    vigil_time_t (*now)(struct vio_loop *l);
    /* Wall clock, microseconds since the epoch (display only). */
    int64_t (*wall_us)(struct vio_loop *l);
    /*
     * Waits until `until` (VIGIL_TIME_NEVER: no limit) or until a source is
     * ready or a signal arrived, marking what became ready. Real loops
     * only; a fake loop is stepped by its simulator instead.
     */
    int (*wait)(struct vio_loop *l, vigil_time_t until);
    /* Watches a file descriptor for readability (real loops only). */
    int (*watch_fd)(struct vio_loop *l, int fd, struct vio_source *src);
    /*
     * Watches fd for the events (VIO_READ | VIO_WRITE), or changes the
     * events and the source of an fd already watched (real loops only).
     * The source does not say which event happened: its owner asks the fd
     * (a client library such as libcurl checks the socket itself).
     */
    int (*watch_fd_events)(struct vio_loop *l, int fd, unsigned events, struct vio_source *src);
    void (*unwatch_fd)(struct vio_loop *l, int fd);
    void (*destroy)(struct vio_loop *l);
};

/* Events for watch_fd_events. */
#define VIO_READ  1u
#define VIO_WRITE 2u

/* The part every loop shares: timers, ready sources, signals. */
struct vio_loop {
    const struct vio_loop_ops *ops;
    struct vio_timer **heap;
    size_t n_timers, cap_timers;
    uint64_t order;
    struct vio_source *ready_head, *ready_tail;
    /* The sources of the turn being dispatched that have not run yet. */
    struct vio_source *turn_head, *turn_tail;
    vio_signal_fn on_signal;
    void *signal_arg;
    bool stop;
};

void vio_loop_base_init(struct vio_loop *l, const struct vio_loop_ops *ops);
void vio_loop_base_destroy(struct vio_loop *l);

static inline vigil_time_t vio_now(struct vio_loop *l)
{
    return l->ops->now(l);
}
static inline int64_t vio_wall_us(struct vio_loop *l)
{
    return l->ops->wall_us(l);
}
/* Watches fd for readability: src is marked ready while it is readable. */
static inline int vio_watch_fd(struct vio_loop *l, int fd, struct vio_source *src)
{
    return l->ops->watch_fd(l, fd, src);
}
/* Watches fd for VIO_READ and/or VIO_WRITE; called again, changes what is watched. */
static inline int vio_watch_fd_events(struct vio_loop *l, int fd, unsigned events,
                                      struct vio_source *src)
{
    return l->ops->watch_fd_events(l, fd, events, src);
}
static inline void vio_unwatch_fd(struct vio_loop *l, int fd)
{
    l->ops->unwatch_fd(l, fd);
}

void vio_timer_init(struct vio_timer *t, vio_timer_fn fn, void *arg);
/* Returns 0 or -VIGIL_ENOMEM (the heap could not grow; the timer stays as it was). */
int vio_timer_arm(struct vio_loop *l, struct vio_timer *t, vigil_time_t at);
void vio_timer_disarm(struct vio_loop *l, struct vio_timer *t);
static inline bool vio_timer_armed(const struct vio_timer *t)
{
    return t->slot != VIO_NOT_ARMED;
}

void vio_source_init(struct vio_source *s, vio_source_fn fn, void *arg);
/* Marks s ready (idempotent): fn runs on the loop's next turn. */
void vio_source_ready(struct vio_loop *l, struct vio_source *s);
/* Forgets s if it is ready; call before freeing it. */
void vio_source_cancel(struct vio_loop *l, struct vio_source *s);

/* One handler for every signal the program takes (SIGTERM, SIGINT, SIGHUP). */
void vio_loop_on_signal(struct vio_loop *l, vio_signal_fn fn, void *arg);
/* Delivers a signal to the handler (the real loop's signalfd, or a simulator). */
void vio_loop_signal(struct vio_loop *l, int signo);

/* The earliest timer, or VIGIL_TIME_NEVER; `now`-ish if a source is ready. */
vigil_time_t vio_loop_next(const struct vio_loop *l, vigil_time_t now);
/* One turn at now: every ready source, then every timer due at or before now. */
void vio_loop_dispatch(struct vio_loop *l, vigil_time_t now);
/*
 * Runs turns until vio_loop_stop (real loops). Returns 0, or -errno if
 * waiting failed. The stop is consumed on return, so the loop can be run
 * again (a command line tool runs it once per request). Sources that were
 * ready but had not run when it stopped run on the next turn.
 */
int vio_loop_run(struct vio_loop *l);
void vio_loop_stop(struct vio_loop *l);

static inline void vio_loop_free(struct vio_loop *l)
{
    if (l)
        l->ops->destroy(l);
}

/* ------------------------------------------------------------- transport */

/* One received datagram. The caller provides buf and cap. */
struct vio_dgram {
    uint8_t *buf;
    size_t cap;
    size_t len; /* bytes received; cap + 1 when it was longer than cap */
    struct vigil_addr from;
    vigil_time_t arrival; /* monotonic time it reached the host (the kernel's stamp) */
    bool stamped;         /* arrival is the kernel's; false: only the time it was read */
    uint32_t dropped;     /* datagrams the host dropped (buffer full) since the last reported */
};

struct vio_transport;
struct vio_transport_ops {
    /*
     * Takes up to n queued datagrams; returns how many (0: none) or
     * -errno. It may point d[i].buf at memory of its own instead of
     * filling the caller's: that stays valid until the next recv on t.
     */
    int (*recv)(struct vio_transport *t, struct vio_dgram *d, size_t n);
    /*
     * True while datagrams that already reached the host may still come
     * out of recv later (read by threads of the transport's own, not yet
     * handed out). NULL: recv itself reads everything that arrived.
     */
    bool (*pending)(struct vio_transport *t);
    /* Sends one datagram; returns 0 or -errno (it may still be lost on the way). */
    int (*send)(struct vio_transport *t, const struct vigil_addr *to, const uint8_t *buf,
                size_t len);
    void (*local)(const struct vio_transport *t, struct vigil_addr *out);
    void (*close)(struct vio_transport *t);
};

/*
 * A datagram endpoint. `readable` is marked ready when datagrams wait; the
 * owner sets its fn and arg (vio_source_init) before the first turn.
 */
struct vio_transport {
    const struct vio_transport_ops *ops;
    struct vio_source readable;
};

static inline int vio_recv(struct vio_transport *t, struct vio_dgram *d, size_t n)
{
    return t->ops->recv(t, d, n);
}
static inline bool vio_pending(struct vio_transport *t)
{
    return t->ops->pending && t->ops->pending(t);
}
static inline int vio_send(struct vio_transport *t, const struct vigil_addr *to, const uint8_t *buf,
                           size_t len)
{
    return t->ops->send(t, to, buf, len);
}
static inline void vio_transport_close(struct vio_transport *t)
{
    if (t)
        t->ops->close(t);
}

/* Opens transports: bound to an address (a listener) or to any (a sender). */
struct vio_net;
struct vio_net_ops {
    /*
     * bind NULL: an unbound sender of the family of `family` (AF_INET or
     * AF_INET6). Returns 0 or -errno.
     */
    int (*open)(struct vio_net *n, struct vio_loop *l, const struct vigil_addr *bind, int family,
                struct vio_transport **out);
    /* Resolves "host:port" to an address; 0 or -VIGIL_EINVAL / -VIGIL_ESYS. */
    int (*resolve)(struct vio_net *n, const char *spec, uint16_t default_port,
                   struct vigil_addr *out, const char **why);
    /*
     * A listener read by `threads` receive threads (at most
     * VIO_RECV_THREADS_MAX), each with a socket of its own on the same
     * address, the kernel spreading the senders over them (SO_REUSEPORT:
     * one sender's datagrams always reach the same socket). recv hands
     * out what the threads read, in the order each thread read it, with
     * the kernel's arrival times. threads 0 or 1: read in the caller's
     * thread, as open. rcvbuf: each socket's receive buffer in bytes (0:
     * the default, 8 MB). A net without this operation (NULL): use open.
     */
    int (*listen)(struct vio_net *n, struct vio_loop *l, const struct vigil_addr *bind,
                  unsigned threads, size_t rcvbuf, struct vio_transport **out);
};

/* The most receive threads a listener can have. */
#define VIO_RECV_THREADS_MAX 16
struct vio_net {
    const struct vio_net_ops *ops;
};

/* ----------------------------------------------------------- processes */

struct vio_child;
/*
 * Called once, from the loop (or from wait_all), when the child has exited:
 * status as from waitpid, or -1 if it was lost (reaped by someone else).
 */
typedef void (*vio_exit_fn)(void *arg, struct vio_child *c, int status);

struct vio_spawn {
    char *const *argv;      /* argv[0] looked up in PATH */
    char *const *envp;      /* the whole environment */
    const char *stdin_data; /* written whole to the child's standard input, then closed */
    size_t stdin_len;
    /*
     * With output_max > 0, the child's standard output and error go into a
     * pipe the loop reads: the first output_max bytes are kept (the rest is
     * read and dropped, so a chatty child never blocks), readable through
     * vio_procs_output once the exit is reported. 0: both are inherited.
     */
    size_t output_max;
    vio_exit_fn on_exit;
    void *arg;
};

struct vio_procs;
struct vio_procs_ops {
    /*
     * Starts a child in a process group of its own. Returns 0 and *out, or
     * -errno when it could not be started (no such program, no resources).
     */
    int (*spawn)(struct vio_procs *p, const struct vio_spawn *req, struct vio_child **out);
    /* Sends sig to the child's process group (or the child, if the group is gone). */
    void (*signal)(struct vio_procs *p, struct vio_child *c, int sig);
    /*
     * Forgets a child whose exit was reported (on_exit calls it, or the
     * owner later). Before that, the child keeps running unwatched: use
     * signal first.
     */
    void (*release)(struct vio_procs *p, struct vio_child *c);
    /*
     * Gives a running child up: its exit is never reported, and it is
     * reaped and forgotten when it exits (its owner is going away and has
     * signalled it). NULL: not supported (release it instead).
     */
    void (*disown)(struct vio_procs *p, struct vio_child *c);
    /* Process id, for log lines (fakes number their children). */
    long (*pid)(const struct vio_child *c);
    /*
     * The output kept (vio_spawn.output_max), NUL terminated, *len its
     * length; "" when none was asked for. Valid until release.
     */
    const char *(*output)(const struct vio_child *c, size_t *len);
    /*
     * Waits (blocking, real processes only; fakes run to completion) up to
     * timeout for every child to exit, reporting each; returns how many are
     * still running.
     */
    size_t (*wait_all)(struct vio_procs *p, vigil_time_t timeout);
};
struct vio_procs {
    const struct vio_procs_ops *ops;
};

/* -------------------------------------------------------------- files */

struct vio_stat {
    uint64_t ino, size;
    int64_t mtime_ns;
    uint32_t mode;
};

struct vio_fs;
struct vio_fs_ops {
    /*
     * Reads a whole file of at most cap bytes into a new buffer (*out, NUL
     * terminated, freed by the caller). Returns 0, -ENOENT, -EFBIG if it is
     * larger than cap, or another -errno.
     */
    int (*read)(struct vio_fs *fs, const char *path, size_t cap, char **out, size_t *len);
    /*
     * Replaces path with data atomically and durably: a temporary file in
     * the same directory, written, fsynced, renamed over path, the directory
     * fsynced. A reader sees the old content or the new, never a mix.
     */
    int (*replace)(struct vio_fs *fs, const char *path, const void *data, size_t len,
                   uint32_t mode);
    /* Appends data to path (created with mode), fsynced when sync. */
    int (*append)(struct vio_fs *fs, const char *path, const void *data, size_t len, uint32_t mode,
                  bool sync);
    int (*stat)(struct vio_fs *fs, const char *path, struct vio_stat *st);
    /*
     * Creates a new file (never an existing one, never through a symbolic
     * link) holding data with exactly mode, durably. -EEXIST if it exists.
     */
    int (*create)(struct vio_fs *fs, const char *path, const void *data, size_t len, uint32_t mode);
};
struct vio_fs {
    const struct vio_fs_ops *ops;
};

/* ---------------------------------------------------------------- log */

struct vio_log;
struct vio_log_ops {
    /* Appends one line (a newline is added). Never blocks; drops and counts when full. */
    void (*write)(struct vio_log *g, const char *line);
    uint64_t (*dropped)(struct vio_log *g);
    /*
     * Writes what is buffered within timeout_ms and frees g. Returns 0, or
     * -1 if the writer is stuck (the real one then leaves its stream open).
     */
    int (*close)(struct vio_log *g, int timeout_ms);
};
struct vio_log {
    const struct vio_log_ops *ops;
};

/* --------------------------------------------------------- HTTP server */

struct vio_http_request {
    const char *method;
    const char *path;  /* without the query, percent-escapes decoded */
    const char *query; /* the raw query string after '?', or "" */
    const char *body;  /* NUL terminated (body_len excludes the NUL), never NULL */
    size_t body_len;
    /* The Authorization header as sent, or NULL when none came. */
    const char *authorization;
};

struct vio_http_response {
    unsigned status;
    const char *content_type; /* static string, or NULL */
    /* More header lines ("Name: value"), NULL-terminated, static; or NULL. */
    const char *const *headers;
    char *body; /* malloc'd; the server frees it */
    size_t body_len;
    /*
     * Set by the server before the handler runs: the request's token. A
     * handler that cannot answer at once (a long page built a slice per
     * turn, so that the loop keeps reading heartbeats meanwhile) sets
     * `deferred`, keeps the token, and answers later, exactly once, with
     * vio_httpd_respond. Every deferred request must be answered before
     * the server is closed.
     */
    void *exchange;
    bool deferred;
};

/*
 * Answers one request completely, or defers it (see above). Called on the
 * loop's thread; never sees a request before its whole body arrived. The
 * response comes zeroed but for `exchange`; a handler that leaves the
 * status 0 answers 500.
 */
typedef void (*vio_http_handler)(void *arg, const struct vio_http_request *req,
                                 struct vio_http_response *resp);

/* How the server is opened. */
struct vio_httpd_opts {
    const char *addr; /* numeric "IP:PORT" or "[IPv6]:PORT" */
    /*
     * HTTPS: the certificate (chain) and its private key, PEM, NUL
     * terminated; both NULL for plain HTTP. The server copies them while
     * opening (libmicrohttpd hands them to GnuTLS, which keeps its own
     * copy): the caller may wipe and free them once open returned, and
     * integ_test_api_hardening serves HTTPS after the monitor did.
     */
    const char *tls_cert;
    const char *tls_key;
};

/* What the server counts about its connections (for the API's health and metrics). */
struct vio_httpd_stats {
    uint64_t connections;         /* open now */
    uint64_t connection_limit;    /* open at most, all clients together */
    uint64_t per_address_limit;   /* open at most from one client address */
    uint64_t accepted;            /* connections taken, since the start */
    uint64_t refused_per_address; /* closed at once: their address had too many open */
    uint64_t refused_limit;       /* closed at once: the server had too many open */
};

struct vio_httpd;
struct vio_httpd_ops {
    uint16_t (*port)(const struct vio_httpd *h);
    /* Answers a deferred request (resp's body is taken over; its exchange is ignored). */
    void (*respond)(struct vio_httpd *h, void *exchange, struct vio_http_response *resp);
    void (*close)(struct vio_httpd *h);
    /* Fills st (NULL: the server counts nothing; st is then zeroed by the wrapper). */
    void (*stats)(const struct vio_httpd *h, struct vio_httpd_stats *st);
};
struct vio_httpd {
    const struct vio_httpd_ops *ops;
};

static inline uint16_t vio_httpd_port(const struct vio_httpd *h)
{
    return h->ops->port(h);
}
static inline void vio_httpd_respond(struct vio_httpd *h, void *exchange,
                                     struct vio_http_response *resp)
{
    h->ops->respond(h, exchange, resp);
}
static inline void vio_httpd_close(struct vio_httpd *h)
{
    if (h)
        h->ops->close(h);
}
static inline void vio_httpd_stats(const struct vio_httpd *h, struct vio_httpd_stats *st)
{
    *st = (struct vio_httpd_stats){0};
    if (h && h->ops->stats)
        h->ops->stats(h, st);
}

/* --------------------------------------------------------- HTTP client */

struct vio_http_call {
    const char *method; /* "GET", "POST", ...; NULL: GET */
    const char *url;
    const char *const *headers; /* "Name: value", NULL-terminated, or NULL */
    const char *body;
    size_t body_len;
    vigil_time_t timeout;         /* the whole request; 0: VIO_HTTP_TIMEOUT */
    vigil_time_t connect_timeout; /* connecting only; 0: the whole timeout */
    size_t body_max;              /* most response bytes taken; 0: VIO_HTTP_BODY_MAX */
    /* https: the CA certificates (PEM file) the server's must chain to; NULL: the system's. */
    const char *cainfo;
    /* https: take any certificate, for any name (health checks that say so); false: verify. */
    bool insecure;
    /*
     * A new connection, closed after the answer (health checks: each one
     * proves the service accepts connections, and the client never
     * searches a pool of thousands of idle ones).
     */
    bool fresh;
};

/* A request's time limit when the call names none: a webhook that hangs must end. */
#define VIO_HTTP_TIMEOUT (30 * VIGIL_NSEC_PER_SEC)
/* Response bytes taken when the call names no bound: webhooks answer in a few bytes. */
#define VIO_HTTP_BODY_MAX (1u << 20)

struct vio_http_result {
    /*
     * 0, or -errno when no response came: -ECONNREFUSED (and the other
     * errors of connecting), -ETIMEDOUT, -EFBIG (the body was longer than
     * body_max), -EINVAL (a URL the client refuses), -EIO (anything else).
     */
    int error;
    const char *why;  /* with error: what went wrong, for people */
    long status;      /* HTTP status */
    const char *body; /* valid during the callback; NUL terminated */
    size_t body_len;
};

typedef void (*vio_http_done)(void *arg, const struct vio_http_result *res);

struct vio_http;
struct vio_http_ops {
    /* Starts a request; done is called once, from the loop. Returns 0 or -errno. */
    int (*start)(struct vio_http *c, const struct vio_http_call *call, vio_http_done done,
                 void *arg);
    /* Cancels every request in flight (their done is not called) and frees c. */
    void (*close)(struct vio_http *c);
};
struct vio_http {
    const struct vio_http_ops *ops;
};

static inline int vio_http_start(struct vio_http *c, const struct vio_http_call *call,
                                 vio_http_done done, void *arg)
{
    return c->ops->start(c, call, done, arg);
}
static inline void vio_http_close(struct vio_http *c)
{
    if (c)
        c->ops->close(c);
}

/* ---------------------------------------------------- stream exchange */

/*
 * One request and its answer over a stream socket: connect to a unix
 * socket (an absolute path) or HOST:PORT (TCP), write the request, read
 * until the peer closes. HAProxy's runtime API answers one command this
 * way. done is called once, from the loop: error 0 with the answer (NUL
 * terminated, valid during the call), or -errno (-ECONNREFUSED, -ENOENT,
 * -ETIMEDOUT, -EFBIG past max bytes, ...).
 */
typedef void (*vio_exchange_done)(void *arg, int error, const char *answer, size_t len);
struct vio_exchange;
/* Starts an exchange on loop; *out is its handle for vio_exchange_cancel. 0 or -errno. */
int vio_exchange_start(struct vio_loop *loop, const char *target, const char *req, size_t len,
                       size_t max, vigil_time_t timeout, vio_exchange_done done, void *arg,
                       struct vio_exchange **out);
/* Stops an exchange in flight (done is not called) and frees it. */
void vio_exchange_cancel(struct vio_exchange *x);

/* An exchange with the choices health checks need. */
struct vio_exchange_opts {
    const char *target; /* as for vio_exchange_start */
    const char *req;    /* written once connected (len bytes; 0: nothing) */
    size_t len;
    size_t max;           /* most answer bytes (0: 64 KB) */
    vigil_time_t timeout; /* the whole exchange */
    bool connect_only;    /* done (error 0, "") as soon as the connection is made */
    const char *until;    /* done as soon as the answer holds this; NULL: when the peer closes */
};
int vio_exchange_start_opts(struct vio_loop *loop, const struct vio_exchange_opts *o,
                            vio_exchange_done done, void *arg, struct vio_exchange **out);

/* ---------------------------------------------------------------- store */

/*
 * The monitor's durable state (monitor.state_dir): per node the newest
 * (generation, sequence) accepted and its state, the event log, and an
 * outbox of work that must survive a restart. The real one is SQLite in
 * WAL mode (store_sqlite.c); every write is one transaction, so a crash
 * leaves either all of a batch or none of it. The caller batches: it
 * never writes on the heartbeat path.
 */
struct vio_store_node {
    const char *id;
    uint64_t generation, sequence; /* the high-water mark */
    uint32_t interval_ms;          /* advertised when the mark was taken (0: not heard since) */
    enum vigil_state state;
};

struct vio_store_event {
    uint64_t seq;     /* never repeats; the store refuses one it holds */
    int64_t wall_us;  /* wall clock of the event */
    const char *node; /* "" for the monitor's own events */
    const char *json; /* the event as the API serves it */
};

/* One transaction: events appended, node rows inserted or replaced. */
struct vio_store_batch {
    const struct vio_store_event *events;
    size_t n_events;
    const struct vio_store_node *nodes;
    size_t n_nodes;
};

/* An outbox entry: work handed over to later (a hook to run, a call to make). */
struct vio_store_outbox {
    int64_t id;         /* assigned by the store, increasing */
    int64_t created_us; /* wall clock */
    const char *kind;
    const char *payload; /* JSON */
    const char *state;   /* "pending", "done", ... as its user names them */
};

/* Callbacks of the readers; a nonzero return stops the walk and is returned. */
typedef int (*vio_store_node_fn)(void *arg, const struct vio_store_node *n);
typedef int (*vio_store_event_fn)(void *arg, const struct vio_store_event *e);
typedef int (*vio_store_outbox_fn)(void *arg, const struct vio_store_outbox *o);

struct vio_store;
/*
 * Every operation returns 0 or a negative errno (-EIO for what SQLite
 * reports; its message from error). Pointers handed to the callbacks are
 * valid during the call only.
 */
struct vio_store_ops {
    int (*write)(struct vio_store *s, const struct vio_store_batch *b);
    /* Every node row, in id order. */
    int (*nodes)(struct vio_store *s, vio_store_node_fn fn, void *arg);
    /* The newest `max` events with seq > after, oldest first. */
    int (*events)(struct vio_store *s, uint64_t after, size_t max, vio_store_event_fn fn,
                  void *arg);
    /* The largest event sequence number ever stored (0: none). */
    int (*last_seq)(struct vio_store *s, uint64_t *out);
    int (*outbox_add)(struct vio_store *s, int64_t created_us, const char *kind,
                      const char *payload, int64_t *id);
    /* Sets an entry's state; -ENOENT when there is no such entry. */
    int (*outbox_set)(struct vio_store *s, int64_t id, const char *state);
    /* The entries in state (NULL: all), by id. */
    int (*outbox_list)(struct vio_store *s, const char *state, vio_store_outbox_fn fn, void *arg);
    /* Deletes the entries in state; *n (may be NULL) how many. */
    int (*outbox_purge)(struct vio_store *s, const char *state, size_t *n);
    /* What went wrong last, for people. */
    const char *(*error)(const struct vio_store *s);
    void (*close)(struct vio_store *s);
};
struct vio_store {
    const struct vio_store_ops *ops;
};

static inline int vio_store_write(struct vio_store *s, const struct vio_store_batch *b)
{
    return s->ops->write(s, b);
}
static inline void vio_store_close(struct vio_store *s)
{
    if (s)
        s->ops->close(s);
}

/*
 * Opens (creating) the SQLite store in directory dir (created 0700 if
 * missing): dir/vigil.db, owner-only, WAL mode, synchronous FULL. One
 * process at a time: a second one is refused (dir/vigil.lock, flock).
 * Returns 0, or -errno with the reason in err.
 */
int vio_store_sqlite_open(const char *dir, struct vio_store **out, char *err, size_t cap);

/* -------------------------------------------------------- environment */

/* Everything a program needs from the world. */
struct vio_env {
    struct vio_loop *loop;
    struct vio_net *net;
    struct vio_procs *procs;
    struct vio_fs *fs;
    /* Opens the HTTP server as opts say, serving handler. NULL when unavailable. */
    int (*httpd_open)(struct vio_env *env, const struct vio_httpd_opts *opts,
                      vio_http_handler handler, void *arg, struct vio_httpd **out, char *err,
                      size_t cap);
    /* Opens the log (path NULL: standard output). */
    int (*log_open)(struct vio_env *env, const char *path, struct vio_log **out, char *err,
                    size_t cap);
    /* An HTTP client on the loop. */
    int (*http_open)(struct vio_env *env, struct vio_http **out);
    /* Samples load, memory and uptime. */
    int (*sample_status)(struct vio_env *env, struct vigil_status *st);
    /* Fills buf with random bytes (keys, hash seeds). */
    void (*random)(struct vio_env *env, void *buf, size_t len);
    /*
     * Tells the service manager how the daemon stands, in sd_notify(3)'s
     * words, for systemd units of Type=notify: "READY=1" once it serves
     * (listeners and API open), "RELOADING=1" as a reload (SIGHUP) begins
     * and "READY=1" again when it is done, whatever its outcome,
     * "STOPPING=1" as it begins to stop. Never fails and never blocks:
     * without a service manager it does nothing. The real one also keeps
     * systemd's watchdog fed (WatchdogSec=) from the loop, between READY=1
     * and STOPPING=1. NULL: nobody to tell (vio_notify checks).
     */
    void (*notify)(struct vio_env *env, const char *state);
    /* vio_exchange_start on the env's loop (NULL: no stream sockets here). */
    int (*exchange)(struct vio_env *env, const char *target, const char *req, size_t len,
                    size_t max, vigil_time_t timeout, vio_exchange_done done, void *arg,
                    struct vio_exchange **out);
    void (*exchange_cancel)(struct vio_env *env, struct vio_exchange *x);
    /* vio_exchange_start_opts on the env's loop (NULL: no stream sockets here). */
    int (*exchange_opts)(struct vio_env *env, const struct vio_exchange_opts *o,
                         vio_exchange_done done, void *arg, struct vio_exchange **out);
    /* Opens the state store in dir (vio_store_sqlite_open). NULL: no store here. */
    int (*store_open)(struct vio_env *env, const char *dir, struct vio_store **out, char *err,
                      size_t cap);
    void *impl;
};

static inline void vio_notify(struct vio_env *env, const char *state)
{
    if (env->notify)
        env->notify(env, state);
}

/* This host's name (for the default node id); 0, or -errno. */
int vio_hostname(char *buf, size_t cap);

/*
 * Ends the process as signo's default action would (a command line tool
 * that takes signals through a loop, and has no use for this one).
 */
void vio_raise_default(int signo);

/* The real file system (also for one-shot commands that need no loop). */
extern struct vio_fs vio_fs_real;

/*
 * The real world: epoll, sockets, files, libmicrohttpd, libcurl, and child
 * processes when with_procs (which also sets SIGPIPE to ignored if it was
 * at its default; a command line tool that writes to a pipe wants neither).
 */
int vio_env_real_new(struct vio_env **out, bool with_procs);
/*
 * The same without libmicrohttpd, libcurl, SQLite and the log thread:
 * httpd_open, http_open, store_open and log_open are NULL (env_base.c).
 * What the agent needs, and all the small agent program links.
 */
int vio_env_base_new(struct vio_env **out, bool with_procs);
/* Frees either. */
void vio_env_real_free(struct vio_env *env);

/*
 * Replaces this process with the program called name in the directory of
 * this one (/proc/self/exe), with argv. Returns only on failure: -errno.
 */
int vio_exec_beside(const char *name, char *const argv[]);

/*
 * Gives the memory free()d so far back to the system (malloc_trim): for a
 * daemon that allocated much to start (a configuration) and little after.
 */
void vio_trim_heap(void);

#endif
