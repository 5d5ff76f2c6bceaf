/*
 * The HTTP API: the handler in virtual time, the glue to the real server,
 * and the CLI against it on loopback.
 *
 * A monitor is driven in virtual time (a fake loop's clock) through a
 * scripted half minute: web1 beats throughout, web2 stops and dies, web3 is
 * declared and never heard, web4 says goodbye, web5 dies and sends one
 * heartbeat towards recovery. The API's clock is that fake loop, stopped at
 * the end of the script, so every duration it reports is exact.
 *
 * Most tests hand requests to the handler through the fake server
 * (tests/sim/fake_http.h): no sockets, no waiting. A few go through the
 * real server (libmicrohttpd on 127.0.0.1 port 0, on a real epoll loop on
 * this thread) to prove the glue: headers on the wire, the decoded path
 * and raw query, the body bound, opening errors. The CLI commands run on a
 * second thread with a loop and an HTTP client of their own while this
 * thread serves; their output is captured through a temporary file.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include <vigil/vigil.h>

#include "fake_http.h"
#include "fake_loop.h"
#include "io/real.h"
#include "vigil/api.h"
#include "vigil/cmds.h"
#include "fake_loop.h"
#include "fake_procs.h"

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC

/* Upper bound for anything that waits on the loopback: far beyond any real answer time. */
#define WAIT_LIMIT (10 * S)

/* Where the virtual clock starts: any time will do; not 0, so that "never" (-1) stands out. */
#define VIRTUAL_START (1000 * S)

struct fixture {
    struct vigil_monitor *mon;
    struct evlog *log;
    struct api_ctx ctx;
    vigil_time_t clock;     /* the fake loop's clock */
    struct vio_loop *floop; /* the API's clock */
    struct vio_httpd *fake; /* the handler behind the fake server */
    struct vio_loop *loop;  /* the real loop the real server runs on */
    struct vio_httpd *httpd;
    uint16_t port;
    vigil_time_t base; /* virtual start */
    vigil_time_t end;  /* virtual end of the script */
    uint64_t datagrams;
};

/* ---- driving the monitor ---------------------------------------------- */

static void drain(struct fixture *f)
{
    struct evrec r;
    while (vigil_monitor_poll_event(f->mon, &r.ev)) {
        /* The wall clock of the event: now minus how long ago it was decided. */
        r.wall_us = vio_wall_us(f->floop) - (f->end - r.ev.time) / 1000;
        evlog_push(f->log, &r);
    }
}

static void beat(struct fixture *f, vigil_time_t now, const char *id, uint64_t seq, uint8_t flags)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    snprintf(hb.id, sizeof(hb.id), "%s", id);
    hb.generation = 42;
    hb.sequence = seq;
    hb.flags = flags;
    hb.interval_ms = 1000;
    hb.send_time_us = 1700000000000000LL + (int64_t)seq * 1000000;
    hb.status.load1_milli = 1250;
    hb.status.load5_milli = 500;
    hb.status.load15_milli = 250;
    hb.status.mem_total_kib = 8u << 20;
    hb.status.mem_avail_kib = 2u << 20;
    hb.status.uptime_s = 3 * 86400 + 4 * 3600;
    if (!strcmp(id, "web1")) {
        hb.n_custom = 1;
        snprintf(hb.custom[0].key, sizeof(hb.custom[0].key), "role");
        snprintf(hb.custom[0].value, sizeof(hb.custom[0].value), "db");
    }
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
    assert_true(len > 0);
    struct vigil_addr from = {.family = AF_INET, .port = 4000, .addr = {127, 0, 0, 1}};
    assert_int_equal(vigil_monitor_on_datagram(f->mon, now, buf, (size_t)len, &from), 0);
    f->datagrams++;
}

/* Runs the scripted half minute in 100 ms steps, like the daemon's loop would. */
static void script(struct fixture *f)
{
    assert_int_equal(vigil_monitor_declare(f->mon, "web3", f->base), 0);
    for (int step = 0; step <= 300; step++) {
        vigil_time_t t = f->base + step * 100 * MS;
        if (step % 10 == 0) {
            int sec = step / 10;
            beat(f, t, "web1", (uint64_t)sec + 1, 0);
            if (sec <= 10)
                beat(f, t, "web2", (uint64_t)sec + 1, 0);
            if (sec <= 4)
                beat(f, t, "web4", (uint64_t)sec + 1, sec == 4 ? VIGIL_FLAG_LEAVING : 0);
            if (sec <= 5)
                beat(f, t, "web5", (uint64_t)sec + 1, 0);
        }
        /* One heartbeat of web5 after its death: one of the two that bring it back. */
        if (step == 295)
            beat(f, t, "web5", 100, 0);
        /* Three garbled datagrams. */
        if (step == 50 || step == 51 || step == 52) {
            static const uint8_t junk[] = {0xde, 0xad, 0xbe, 0xef};
            assert_true(vigil_monitor_on_datagram(f->mon, t, junk, sizeof(junk), NULL) < 0);
            f->datagrams++;
        }
        if (t >= vigil_monitor_next_deadline(f->mon))
            vigil_monitor_on_expiry(f->mon, t);
        drain(f);
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    vigil_detector_config_default(&c.detector, VIGIL_DETECTOR_FIXED, S);
    c.detector.suspect_threshold = 2.5;
    c.detector.dead_threshold = 5.0;
    c.rise = 2;
    c.startup_grace = 120 * S; /* web3 stays unknown through the script */
    c.max_nodes = 64;
    f->base = VIRTUAL_START;
    f->end = f->base + 30 * S;
    /* The clock stands at the end of the script throughout: the API answers "now". */
    f->clock = f->end;
    f->floop = fake_loop_new(&f->clock);
    assert_non_null(f->floop);
    assert_int_equal(vigil_monitor_new(&c, f->base, &f->mon), 0);
    f->log = evlog_new(1000);
    assert_non_null(f->log);
    script(f);

    f->ctx.mon = f->mon;
    f->ctx.events = f->log;
    f->ctx.hooks = NULL;
    f->ctx.loop = f->floop;
    f->ctx.started_mono = f->base;
    f->ctx.started_wall_us = vio_wall_us(f->floop) - 30000000;
    f->ctx.recv_errors = 7;
    f->ctx.dropped_log = 2;
    char err[256] = "";
    assert_int_equal(fake_httpd_open(f->floop, "127.0.0.1:0", api_handle_cb, &f->ctx, &f->fake, err,
                                     sizeof(err)),
                     0);
    assert_int_equal(vio_loop_epoll_new(&f->loop), 0);
    if (vio_httpd_mhd_open(f->loop, &(struct vio_httpd_opts){.addr = "127.0.0.1:0"}, api_handle_cb,
                           &f->ctx, &f->httpd, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    f->port = vio_httpd_port(f->httpd);
    assert_true(f->port > 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vio_httpd_close(f->httpd);
    vio_httpd_close(f->fake);
    vio_loop_free(f->loop);
    vio_loop_free(f->floop);
    evlog_free(f->log);
    vigil_monitor_free(f->mon);
    free(f);
    return 0;
}

/* ---- requests: to the handler, and to the real server -------------------- */

struct reply {
    long status;
    char *body;
    size_t len;
    char ctype[256];
    char allow[256];
    char cache[256];
    char auth[256]; /* WWW-Authenticate */
    char csp[512];  /* Content-Security-Policy */
    char nosniff[64];
    char frame[64]; /* X-Frame-Options */
};

/* The value of header name in "Name: value\n" lines, into out ("" if absent). */
static void header_value(const char *lines, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    out[0] = '\0';
    for (const char *p = lines; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!strncasecmp(p, name, n) && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)strcspn(v, "\r\n"), v);
            return;
        }
    }
}

/* One request to the handler, through the fake server, with an Authorization header or none. */
static struct reply request_auth(struct fixture *f, const char *method, const char *path,
                                 const char *authorization)
{
    struct reply r;
    memset(&r, 0, sizeof(r));
    struct fake_http_reply fr;
    assert_int_equal(fake_httpd_request_auth(f->fake, method, path, authorization, NULL, 0, &fr),
                     0);
    r.status = fr.status;
    r.body = fr.body;
    r.len = fr.body_len;
    snprintf(r.ctype, sizeof(r.ctype), "%s", fr.content_type);
    header_value(fr.headers, "Allow", r.allow, sizeof(r.allow));
    header_value(fr.headers, "Cache-Control", r.cache, sizeof(r.cache));
    header_value(fr.headers, "WWW-Authenticate", r.auth, sizeof(r.auth));
    header_value(fr.headers, "Content-Security-Policy", r.csp, sizeof(r.csp));
    header_value(fr.headers, "X-Content-Type-Options", r.nosniff, sizeof(r.nosniff));
    header_value(fr.headers, "X-Frame-Options", r.frame, sizeof(r.frame));
    return r;
}

static struct reply request(struct fixture *f, const char *method, const char *path)
{
    return request_auth(f, method, path, NULL);
}

/* The token the tests use, and one that differs from it in the last character. */
#define GOOD_TOKEN "s3cret-t0ken-0123456789abcdef"
#define BAD_TOKEN  "s3cret-t0ken-0123456789abcdeg"

/* Writes text to a new file of the given mode; returns its path (static buffer). */
static const char *write_file(const char *text, unsigned mode)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/vigil-test-token-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

/* A token loaded from a file holding text (owner-only), as the monitor loads it. */
static struct api_token *make_token(const char *text)
{
    const char *path = write_file(text, 0600);
    struct api_token *t = NULL;
    char err[256];
    if (api_token_load(&vio_fs_real, path, &t, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    unlink(path);
    return t;
}

static void on_stop_timer(void *arg, vigil_time_t now)
{
    (void)now;
    vio_loop_stop(arg);
}

/* Runs the real loop (the real server) for d. */
static void serve_for(struct fixture *f, vigil_time_t d)
{
    struct vio_timer t;
    vio_timer_init(&t, on_stop_timer, f->loop);
    assert_int_equal(vio_timer_arm(f->loop, &t, vio_now(f->loop) + d), 0);
    assert_int_equal(vio_loop_run(f->loop), 0);
    vio_timer_disarm(f->loop, &t);
}

/* A client on a raw socket, read from the real loop until the server closes. */
struct raw {
    struct vio_loop *loop;
    int fd;
    char buf[1 << 16];
    size_t len;
    bool eof;
};

static void raw_readable(void *arg, vigil_time_t now)
{
    struct raw *r = arg;
    (void)now;
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len);
        if (n > 0) {
            r->len += (size_t)n;
            r->buf[r->len] = '\0';
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            r->eof = true;
            vio_loop_stop(r->loop);
        }
        return;
    }
}

/*
 * Sends text (a whole HTTP/1.0 request) to the real server and returns
 * everything it answered, headers and body (static buffer).
 */
static const char *raw_http(struct fixture *f, const char *text, size_t len)
{
    static struct raw r;
    memset(&r, 0, sizeof(r));
    r.loop = f->loop;
    r.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(r.fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(f->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* On loopback the kernel completes the connection without the server's help. */
    assert_int_equal(connect(r.fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    /* A request larger than the socket buffers is written while the server reads. */
    fcntl(r.fd, F_SETFL, O_NONBLOCK);
    size_t off = 0;
    struct vio_source src;
    vio_source_init(&src, raw_readable, &r);
    assert_int_equal(vio_watch_fd(f->loop, r.fd, &src), 0);
    vigil_time_t limit = vigil_clock_mono() + WAIT_LIMIT;
    while (!r.eof && vigil_clock_mono() < limit) {
        while (off < len) {
            ssize_t n = write(r.fd, text + off, len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        serve_for(f, 10 * MS);
    }
    vio_unwatch_fd(f->loop, r.fd);
    vio_source_cancel(f->loop, &src);
    close(r.fd);
    assert_true(r.eof);
    return r.buf;
}

static json_t *get_json(struct fixture *f, const char *path, long want_status)
{
    struct reply r = request(f, "GET", path);
    assert_int_equal(r.status, want_status);
    assert_string_equal(r.ctype, "application/json");
    json_error_t e;
    json_t *doc = json_loadb(r.body, r.len, 0, &e);
    if (!doc)
        fail_msg("%s: invalid JSON: %s\n%s", path, e.text, r.body);
    free(r.body);
    return doc;
}

static const json_t *node_by_id(const json_t *nodes, const char *id)
{
    size_t i;
    json_t *n;
    json_array_foreach((json_t *)nodes, i, n)
    {
        if (!strcmp(json_string_value(json_object_get(n, "id")), id))
            return n;
    }
    fail_msg("node %s missing", id);
    return NULL;
}

static const char *sget(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    if (!s)
        fail_msg("\"%s\" is not a string", k);
    return s;
}

static double nget(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_number(v))
        fail_msg("\"%s\" is not a number", k);
    return json_number_value(v);
}

static json_int_t iget(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        fail_msg("\"%s\" is not an integer", k);
    return json_integer_value(v);
}

/* Events of node id in the log, in order. */
static size_t log_events_of(struct fixture *f, const char *id, uint64_t *seqs, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < evlog_count(f->log); i++) {
        const struct evrec *r = evlog_at(f->log, i);
        if (r->ev.type == VIGIL_EVENT_STATE && !strcmp(r->ev.node, id) && n < cap)
            seqs[n++] = r->ev.seq;
    }
    return n;
}

/* ---- the endpoints ---------------------------------------------------- */

static void test_nodes(void **state)
{
    struct fixture *f = *state;
    json_t *doc = get_json(f, "/v1/nodes", 200);
    const char *now = sget(doc, "now");
    assert_int_equal(strlen(now), 24); /* 2026-11-25T17:00:00.123Z */
    assert_int_equal(now[23], 'Z');
    json_t *nodes = json_object_get(doc, "nodes");
    assert_int_equal(json_array_size(nodes), vigil_monitor_node_count(f->mon));
    assert_int_equal(json_array_size(nodes), 5);
    /* Table order. */
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(sget(json_array_get(nodes, i), "id"),
                            vigil_node_id(vigil_monitor_node_at(f->mon, i)));

    const json_t *w1 = node_by_id(nodes, "web1");
    assert_string_equal(sget(w1, "state"), "alive");
    /* Its last heartbeat came at the end of the script, which is "now". */
    assert_true(nget(w1, "last_heard_s") == 0.0);
    /* Alive since its first heartbeat, 30 s before the end of the script. */
    assert_true(nget(w1, "since_s") == 30.0);
    assert_int_equal(iget(w1, "heartbeats"), 31);
    assert_int_equal(iget(w1, "generation"), 42);
    assert_int_equal(iget(w1, "sequence"), 31);
    assert_true(nget(w1, "interval_s") == 1.0);
    assert_true(nget(w1, "suspect_threshold") == 2.5);
    assert_true(nget(w1, "dead_threshold") == 5.0);
    assert_string_equal(sget(w1, "addr"), "127.0.0.1:4000");
    assert_true(json_is_false(json_object_get(w1, "declared")));
    assert_int_equal(iget(w1, "rise_count"), 0);
    char sent[40];
    vigil_format_wall(1700000000000000LL + 31 * 1000000LL, sent, sizeof(sent));
    assert_string_equal(sget(w1, "send_time"), sent);
    const json_t *st = json_object_get(w1, "status");
    assert_true(nget(st, "load1") == 1.25);
    assert_true(nget(st, "load5") == 0.5);
    assert_true(nget(st, "load15") == 0.25);
    assert_int_equal(iget(st, "mem_total_kib"), 8 << 20);
    assert_int_equal(iget(st, "mem_avail_kib"), 2 << 20);
    assert_int_equal(iget(st, "uptime_s"), 3 * 86400 + 4 * 3600);
    const json_t *cu = json_object_get(w1, "custom");
    assert_int_equal(json_object_size(cu), 1);
    assert_string_equal(sget(cu, "role"), "db");

    const json_t *w2 = node_by_id(nodes, "web2");
    assert_string_equal(sget(w2, "state"), "dead");
    /* Last heard at +10 s of the script: 20 s before its end. */
    assert_true(nget(w2, "last_heard_s") == 20.0);
    /* Dead at +15 s (5 intervals of silence), within a step of the script. */
    assert_true(nget(w2, "since_s") > 14.9);
    assert_true(nget(w2, "since_s") <= 15.0);
    assert_true(nget(w2, "level") >= 20.0);

    const json_t *w3 = node_by_id(nodes, "web3");
    assert_string_equal(sget(w3, "state"), "unknown");
    assert_true(json_is_null(json_object_get(w3, "last_heard_s")));
    assert_true(json_is_null(json_object_get(w3, "send_time")));
    assert_true(json_is_null(json_object_get(w3, "addr")));
    assert_true(json_is_true(json_object_get(w3, "declared")));
    assert_int_equal(iget(w3, "heartbeats"), 0);
    assert_int_equal(json_object_size(json_object_get(w3, "custom")), 0);

    assert_string_equal(sget(node_by_id(nodes, "web4"), "state"), "left");

    const json_t *w5 = node_by_id(nodes, "web5");
    assert_string_equal(sget(w5, "state"), "dead");
    assert_int_equal(iget(w5, "rise_count"), 1);
    assert_int_equal(iget(w5, "rise"), 2);
    json_decref(doc);
}

/* /v1/nodes is served in pages: offsets follow the table order and "next" chains them. */
static void test_nodes_paged(void **state)
{
    struct fixture *f = *state;
    json_t *doc = get_json(f, "/v1/nodes?offset=0&limit=2", 200);
    assert_int_equal(iget(doc, "total"), 5);
    assert_int_equal(iget(doc, "next"), 2);
    json_t *nodes = json_object_get(doc, "nodes");
    assert_int_equal(json_array_size(nodes), 2);
    assert_string_equal(sget(json_array_get(nodes, 1), "id"),
                        vigil_node_id(vigil_monitor_node_at(f->mon, 1)));
    json_decref(doc);
    doc = get_json(f, "/v1/nodes?offset=4&limit=2", 200);
    assert_true(json_is_null(json_object_get(doc, "next")));
    nodes = json_object_get(doc, "nodes");
    assert_int_equal(json_array_size(nodes), 1);
    assert_string_equal(sget(json_array_get(nodes, 0), "id"),
                        vigil_node_id(vigil_monitor_node_at(f->mon, 4)));
    json_decref(doc);
    doc = get_json(f, "/v1/nodes?offset=99", 200);
    assert_int_equal(json_array_size(json_object_get(doc, "nodes")), 0);
    assert_true(json_is_null(json_object_get(doc, "next")));
    json_decref(doc);
    doc = get_json(f, "/v1/nodes?limit=0", 400);
    json_decref(doc);
}

static void test_node_detail_and_404(void **state)
{
    struct fixture *f = *state;
    json_t *doc = get_json(f, "/v1/nodes/web2", 200);
    assert_string_equal(sget(doc, "id"), "web2");
    assert_string_equal(sget(doc, "state"), "dead");
    json_t *evs = json_object_get(doc, "events");
    uint64_t seqs[32];
    size_t n = log_events_of(f, "web2", seqs, 32);
    /* unknown -> alive, alive -> suspect, suspect -> dead. */
    assert_int_equal(n, 3);
    assert_int_equal(json_array_size(evs), n);
    static const char *const want[] = {"alive", "suspect", "dead"};
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(evs, i);
        assert_int_equal(iget(e, "seq"), seqs[i]);
        assert_string_equal(sget(e, "node"), "web2");
        assert_string_equal(sget(e, "new_state"), want[i]);
    }
    json_decref(doc);

    /* The last 20 only, oldest first: web1's single event is there. */
    doc = get_json(f, "/v1/nodes/web1", 200);
    assert_int_equal(json_array_size(json_object_get(doc, "events")), 1);
    json_decref(doc);

    doc = get_json(f, "/v1/nodes/web9", 404);
    assert_non_null(strstr(sget(doc, "error"), "web9"));
    json_decref(doc);
    doc = get_json(f, "/v1/nodes/bad%21id", 404);
    assert_non_null(sget(doc, "error"));
    json_decref(doc);
}

static void test_unknown_path_and_methods(void **state)
{
    {
        /* A path that is not UTF-8 (or is cut inside a character) is a 400, not a 500. */
        struct fixture *f0 = *state;
        unsigned st = 0;
        char *body = NULL;
        assert_int_equal(fake_httpd_request(f0->fake, "GET", "/%ff%fe%c3", &st, &body), 0);
        assert_int_equal(st, 400);
        assert_non_null(strstr(body, "invalid path"));
        free(body);
        assert_int_equal(fake_httpd_request(f0->fake, "GET", "/v1/nodes/%c3%a9t%c3%a9", &st, &body),
                         0);
        assert_int_equal(st, 404);
        free(body);
    }
    struct fixture *f = *state;
    json_t *doc = get_json(f, "/v2/nodes", 404);
    assert_non_null(strstr(sget(doc, "error"), "/v2/nodes"));
    json_decref(doc);
    doc = get_json(f, "/ui/", 404);
    json_decref(doc);

    /* Without a token nothing but reading is allowed: 403, naming the setting. */
    static const char *const methods[] = {"POST", "PUT", "DELETE", "PATCH"};
    for (size_t i = 0; i < 4; i++) {
        struct reply r = request(f, methods[i], "/v1/health");
        assert_int_equal(r.status, 403);
        assert_non_null(strstr(r.body, "api_token_file"));
        free(r.body);
    }
    /* With the token, a read-only endpoint refuses the method. */
    f->ctx.token = make_token(GOOD_TOKEN);
    for (size_t i = 0; i < 4; i++) {
        struct reply r = request_auth(f, methods[i], "/v1/health", "Bearer " GOOD_TOKEN);
        assert_int_equal(r.status, 405);
        assert_string_equal(r.allow, "GET, HEAD");
        assert_string_equal(r.cache, "no-store");
        assert_string_equal(r.ctype, "application/json");
        json_t *e = json_loads(r.body, 0, NULL);
        assert_non_null(strstr(sget(e, "error"), methods[i]));
        json_decref(e);
        free(r.body);
    }
    api_token_free(f->ctx.token);
    f->ctx.token = NULL;
    /* GET and HEAD are both fine. */
    struct reply r = request(f, "HEAD", "/v1/health");
    assert_int_equal(r.status, 200);
    free(r.body);
}

static void test_events_since_and_limit(void **state)
{
    struct fixture *f = *state;
    size_t count = evlog_count(f->log);
    uint64_t newest = evlog_last_seq(f->log);
    assert_true(count >= 8);

    json_t *doc = get_json(f, "/v1/events", 200);
    json_t *evs = json_object_get(doc, "events");
    assert_int_equal(json_array_size(evs), count);
    assert_int_equal(iget(doc, "last_seq"), newest);
    assert_int_equal(iget(doc, "newest_seq"), newest);
    assert_true(json_is_false(json_object_get(doc, "more")));
    for (size_t i = 0; i < count; i++)
        assert_int_equal(iget(json_array_get(evs, i), "seq"), evlog_at(f->log, i)->ev.seq);
    json_decref(doc);

    /* since=K: only seq > K, oldest first. */
    uint64_t k = evlog_at(f->log, 3)->ev.seq;
    char path[128];
    snprintf(path, sizeof(path), "/v1/events?since=%llu", (unsigned long long)k);
    doc = get_json(f, path, 200);
    evs = json_object_get(doc, "events");
    assert_int_equal(json_array_size(evs), count - 4);
    assert_int_equal(iget(json_array_get(evs, 0), "seq"), k + 1);
    json_decref(doc);

    /* limit cuts short, and last_seq says where to go on. */
    snprintf(path, sizeof(path), "/v1/events?since=%llu&limit=2", (unsigned long long)k);
    doc = get_json(f, path, 200);
    evs = json_object_get(doc, "events");
    assert_int_equal(json_array_size(evs), 2);
    assert_int_equal(iget(doc, "last_seq"), k + 2);
    assert_true(json_is_true(json_object_get(doc, "more")));
    json_decref(doc);

    /* Nothing after the newest; the newest is still reported. */
    snprintf(path, sizeof(path), "/v1/events?since=%llu", (unsigned long long)newest);
    doc = get_json(f, path, 200);
    assert_int_equal(json_array_size(json_object_get(doc, "events")), 0);
    assert_int_equal(iget(doc, "last_seq"), newest);
    json_decref(doc);
    snprintf(path, sizeof(path), "/v1/events?since=%llu", (unsigned long long)newest - 1);
    doc = get_json(f, path, 200);
    assert_int_equal(json_array_size(json_object_get(doc, "events")), 1);
    json_decref(doc);

    /* The limit's bounds: 1 and 10000 fine (above is clamped), 0 and junk refused. */
    doc = get_json(f, "/v1/events?limit=1", 200);
    assert_int_equal(json_array_size(json_object_get(doc, "events")), 1);
    json_decref(doc);
    doc = get_json(f, "/v1/events?limit=10000", 200);
    assert_int_equal(json_array_size(json_object_get(doc, "events")), count);
    json_decref(doc);
    doc = get_json(f, "/v1/events?limit=99999999", 200);
    assert_int_equal(json_array_size(json_object_get(doc, "events")), count);
    json_decref(doc);
    static const char *const bad[] = {
        "/v1/events?limit=0",  "/v1/events?limit=abc", "/v1/events?limit=-1",
        "/v1/events?since=-1", "/v1/events?since=1x",  "/v1/events?since=99999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        doc = get_json(f, bad[i], 400);
        assert_non_null(sget(doc, "error"));
        json_decref(doc);
    }
}

static void test_health(void **state)
{
    struct fixture *f = *state;
    const struct vigil_monitor_stats *s = vigil_monitor_stats(f->mon);
    json_t *doc = get_json(f, "/v1/health", 200);
    assert_string_equal(sget(doc, "status"), "ok");
    assert_string_equal(sget(doc, "version"), VIGIL_VERSION_STRING);
    assert_true(nget(doc, "uptime_s") == 30.0);
    const json_t *n = json_object_get(doc, "nodes");
    assert_int_equal(iget(n, "total"), 5);
    assert_int_equal(iget(n, "alive"), 1);
    assert_int_equal(iget(n, "suspect"), 0);
    assert_int_equal(iget(n, "dead"), 2);
    assert_int_equal(iget(n, "left"), 1);
    assert_int_equal(iget(n, "unknown"), 1);
    const json_t *c = json_object_get(doc, "counters");
    assert_int_equal(iget(c, "datagrams"), f->datagrams);
    assert_int_equal(iget(c, "datagrams"), s->datagrams);
    assert_int_equal(iget(c, "accepted"), f->datagrams - 3);
    assert_int_equal(iget(c, "malformed"), 3);
    assert_int_equal(iget(c, "auth_failed"), 0);
    assert_int_equal(iget(c, "stale"), 0);
    assert_int_equal(iget(c, "unknown_node"), 0);
    assert_int_equal(iget(c, "table_full"), 0);
    assert_non_null(json_object_get(c, "qos_lost"));
    assert_int_equal(iget(c, "qos_lost"), s->qos_lost);
    assert_int_equal(iget(c, "events"), s->events);
    assert_int_equal(iget(c, "events"), evlog_last_seq(f->log));
    assert_int_equal(iget(c, "pauses"), 0);
    assert_true(nget(c, "paused_total_s") == 0.0);
    assert_int_equal(iget(c, "recv_errors"), 7);
    assert_int_equal(iget(c, "dropped_log"), 2);
    const json_t *h = json_object_get(doc, "hooks");
    static const char *const hk[] = {"started",   "succeeded",      "failed",
                                     "timed_out", "spawn_errors",   "queued",
                                     "pending",   "events_waiting", "coalesced"};
    for (size_t i = 0; i < sizeof(hk) / sizeof(hk[0]); i++)
        assert_int_equal(iget(h, hk[i]), 0);
    const json_t *d = json_object_get(doc, "detector");
    assert_string_equal(sget(d, "type"), "fixed");
    assert_true(nget(d, "suspect_threshold") == 2.5);
    assert_true(nget(d, "dead_threshold") == 5.0);
    assert_int_equal(iget(doc, "memory_bytes"), vigil_monitor_memory(f->mon));
    assert_true(iget(doc, "memory_bytes") > 0);
    json_decref(doc);
}

/* True if text has line as one whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
        if ((p == text || p[-1] == '\n') && (p[len] == '\n' || p[len] == '\0'))
            return true;
    return false;
}

static void ignore_log(void *arg, const char *line)
{
    (void)arg;
    (void)line;
}

/* Fake programs for the hook runner: "true" exits 0 after 10 ms, "false" exits 1. */
static void prog_true(void *arg, const struct fake_spawn *sp, struct fake_outcome *out)
{
    (void)sp;
    out->exit_code = *(const int *)arg;
    out->runs_for = 10 * VIGIL_NSEC_PER_MSEC;
}

/* With a hook runner: its counters reach /v1/health and /metrics. */
static void test_health_with_hooks(void **state)
{
    struct fixture *f = *state;
    struct vcfg_hook hooks[2];
    memset(hooks, 0, sizeof(hooks));
    char t[] = "true", fl[] = "false";
    hooks[0].argv[0] = t;
    hooks[0].timeout = 5 * S;
    hooks[1].argv[0] = fl;
    hooks[1].timeout = 5 * S;
    /* The hooks run on a virtual clock, as scripted programs. */
    vigil_time_t clock = 1000 * S;
    struct vio_loop *loop = fake_loop_new(&clock);
    struct vio_procs *procs = fake_procs_new(loop);
    assert_non_null(loop);
    assert_non_null(procs);
    static const int zero = 0, one = 1;
    assert_int_equal(fake_procs_register(procs, "true", prog_true, (void *)&zero), 0);
    assert_int_equal(fake_procs_register(procs, "false", prog_true, (void *)&one), 0);
    struct hook_runner *hr;
    assert_int_equal(hook_runner_new(loop, procs, hooks, 2, ignore_log, NULL, &hr), 0);
    assert_int_equal(hook_runner_submit(hr, evlog_at(f->log, 0)), 0);
    f->ctx.hooks = hr;

    /* While they run, "pending" says so. */
    json_t *doc = get_json(f, "/v1/health", 200);
    const json_t *h = json_object_get(doc, "hooks");
    assert_int_equal(iget(h, "pending"), hook_runner_pending(hr));
    json_decref(doc);

    fake_loop_run_until(loop, clock + S);
    assert_int_equal(hook_runner_pending(hr), 0);

    doc = get_json(f, "/v1/health", 200);
    h = json_object_get(doc, "hooks");
    assert_int_equal(iget(h, "started"), 2);
    assert_int_equal(iget(h, "succeeded"), 1);
    assert_int_equal(iget(h, "failed"), 1);
    assert_int_equal(iget(h, "timed_out"), 0);
    assert_int_equal(iget(h, "pending"), 0);
    assert_int_equal(iget(h, "events_waiting"), 0);
    assert_int_equal(iget(h, "coalesced"), 0);
    json_decref(doc);

    struct reply r = request(f, "GET", "/metrics");
    assert_int_equal(r.status, 200);
    assert_true(has_line(r.body, "vigil_hooks_started_total 2"));
    assert_true(has_line(r.body, "vigil_hooks_total{result=\"succeeded\"} 1"));
    assert_true(has_line(r.body, "vigil_hooks_total{result=\"failed\"} 1"));
    assert_true(has_line(r.body, "vigil_hooks_total{result=\"timed_out\"} 0"));
    assert_true(has_line(r.body, "vigil_hooks_pending 0"));
    assert_true(has_line(r.body, "vigil_hook_events_waiting 0"));
    assert_true(has_line(r.body, "vigil_hook_events_coalesced_total 0"));
    free(r.body);

    f->ctx.hooks = NULL;
    hook_runner_free(hr);
    fake_procs_free(procs);
    vio_loop_free(loop);
}

/*
 * Checks text against the rules of the Prometheus text format (0.0.4)
 * that a scraper enforces: every line a HELP, a TYPE or a sample; a
 * family's HELP and TYPE once, before its samples; a family's samples
 * together; names and label names [a-zA-Z_:][a-zA-Z0-9_:]*; label values
 * quoted; a value Go's ParseFloat takes. Returns the number of samples.
 */
static size_t check_exposition(const char *text)
{
    char family[128] = "", seen[8192] = " ";
    size_t samples = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char line[512];
        assert_true((size_t)(nl - p) < sizeof(line));
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        p = nl + 1;
        char name[128], rest[400];
        if (sscanf(line, "# HELP %127s %399[^\n]", name, rest) == 2) {
            /* A new family: never seen before (its samples all come together). */
            char key[132];
            snprintf(key, sizeof(key), " %s ", name);
            if (strstr(seen, key))
                fail_msg("family %s appears twice", name);
            assert_true(strlen(seen) + strlen(key) < sizeof(seen));
            strcat(seen, key + 1);
            snprintf(family, sizeof(family), "%s", name);
            continue;
        }
        if (sscanf(line, "# TYPE %127s %399s", name, rest) == 2) {
            assert_string_equal(name, family);
            assert_true(!strcmp(rest, "counter") || !strcmp(rest, "gauge"));
            if (!strcmp(rest, "counter"))
                assert_true(strlen(name) > 6 && !strcmp(name + strlen(name) - 6, "_total"));
            continue;
        }
        /* A sample: name, optional {labels}, a space, a value. */
        size_t n = strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
        assert_true(n > 0 && !(line[0] >= '0' && line[0] <= '9'));
        if (strlen(family) != n || strncmp(line, family, n) != 0)
            fail_msg("sample outside its family %s: %s", family, line);
        const char *v = line + n;
        if (*v == '{') {
            v++;
            while (*v != '}') {
                size_t ln =
                    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
                assert_true(ln > 0 && v[ln] == '=' && v[ln + 1] == '"');
                v += ln + 2;
                while (*v && *v != '"') {
                    assert_true(*v != '\\' && *v != '\n');
                    v++;
                }
                assert_true(*v == '"');
                v++;
                if (*v == ',')
                    v++;
                else
                    assert_true(*v == '}');
            }
            v++;
        }
        assert_true(*v == ' ');
        v++;
        char *end;
        if (strcmp(v, "+Inf") && strcmp(v, "-Inf") && strcmp(v, "NaN")) {
            (void)strtod(v, &end);
            if (end == v || *end)
                fail_msg("bad value: %s", line);
        }
        samples++;
    }
    return samples;
}

static void test_metrics(void **state)
{
    struct fixture *f = *state;
    const struct vigil_monitor_stats *s = vigil_monitor_stats(f->mon);
    struct reply r = request(f, "GET", "/metrics");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
    char line[128];
    snprintf(line, sizeof(line), "vigil_datagrams_total %llu", (unsigned long long)f->datagrams);
    assert_true(has_line(r.body, line));
    snprintf(line, sizeof(line), "vigil_heartbeats_accepted_total %llu",
             (unsigned long long)f->datagrams - 3);
    assert_true(has_line(r.body, line));
    snprintf(line, sizeof(line), "vigil_events_total %llu", (unsigned long long)s->events);
    assert_true(has_line(r.body, line));
    assert_true(has_line(r.body, "vigil_datagrams_dropped_total{reason=\"malformed\"} 3"));
    assert_true(has_line(r.body, "vigil_datagrams_dropped_total{reason=\"auth_failed\"} 0"));
    assert_true(has_line(r.body, "vigil_datagrams_dropped_total{reason=\"stale\"} 0"));
    assert_true(has_line(r.body, "vigil_nodes{state=\"alive\"} 1"));
    assert_true(has_line(r.body, "vigil_nodes{state=\"dead\"} 2"));
    assert_true(has_line(r.body, "vigil_nodes{state=\"left\"} 1"));
    assert_true(has_line(r.body, "vigil_nodes{state=\"unknown\"} 1"));
    assert_true(has_line(r.body, "vigil_nodes{state=\"suspect\"} 0"));
    assert_true(has_line(r.body, "vigil_monitor_pauses_total 0"));
    assert_true(has_line(r.body, "vigil_receive_errors_total 7"));
    assert_true(has_line(r.body, "vigil_hooks_total{result=\"succeeded\"} 0"));
    assert_true(has_line(r.body, "vigil_hooks_started_total 0"));
    assert_true(has_line(r.body, "# TYPE vigil_datagrams_total counter"));
    assert_true(has_line(r.body, "# TYPE vigil_nodes gauge"));
    /* Per node, labelled by id: one-hot states, and the detector's evidence. */
    static const char *const per_node[] = {
        "vigil_node_state{node=\"web1\",state=\"alive\"} 1",
        "vigil_node_state{node=\"web1\",state=\"dead\"} 0",
        "vigil_node_state{node=\"web2\",state=\"dead\"} 1",
        "vigil_node_state{node=\"web2\",state=\"alive\"} 0",
        "vigil_node_state{node=\"web3\",state=\"unknown\"} 1",
        "vigil_node_state{node=\"web4\",state=\"left\"} 1",
        "vigil_node_state{node=\"web5\",state=\"dead\"} 1",
        "# TYPE vigil_node_state gauge",
        "vigil_node_heartbeat_age_seconds{node=\"web1\"} 0",
        "vigil_node_heartbeat_age_seconds{node=\"web2\"} 20",
        "vigil_node_heartbeat_age_seconds{node=\"web5\"} 0.5",
        "vigil_node_detector_level{node=\"web2\"} 20",
        "vigil_node_detector_level{node=\"web5\"} 0.5",
        "vigil_node_suspect_threshold{node=\"web1\"} 2.5",
        "vigil_node_dead_threshold{node=\"web1\"} 5",
        "vigil_node_interval_mean_seconds{node=\"web1\"} 1",
        "vigil_node_interval_stddev_seconds{node=\"web1\"} 0",
        "# TYPE vigil_node_heartbeats_accepted_total counter",
        "vigil_node_heartbeats_accepted_total{node=\"web1\"} 31",
        "vigil_node_heartbeats_accepted_total{node=\"web2\"} 11",
        "vigil_node_heartbeats_accepted_total{node=\"web3\"} 0",
        "vigil_node_generation{node=\"web1\"} 42",
        "vigil_node_generation{node=\"web3\"} 0",
    };
    for (size_t i = 0; i < sizeof(per_node) / sizeof(per_node[0]); i++)
        if (!has_line(r.body, per_node[i]))
            fail_msg("missing: %s", per_node[i]);
    /* web3 was never heard: no age at all, rather than a made-up one. */
    assert_null(strstr(r.body, "vigil_node_heartbeat_age_seconds{node=\"web3\"}"));
    /* Five nodes: five state samples each, one of them 1. */
    size_t ones = 0, states = 0;
    for (const char *p = strstr(r.body, "\nvigil_node_state{"); p;
         p = strstr(p + 1, "\nvigil_node_state{")) {
        states++;
        ones += !strncmp(strchr(p, '}'), "} 1\n", 4);
    }
    assert_int_equal(states, 25);
    assert_int_equal(ones, 5);
    size_t all = check_exposition(r.body);
    free(r.body);

    /* nodes=0: the monitor-wide metrics alone, for a scraper of a very large table. */
    r = request(f, "GET", "/metrics?nodes=0");
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "vigil_node_"));
    assert_true(has_line(r.body, "vigil_nodes{state=\"alive\"} 1"));
    /* 25 state samples, 4 ages, 5 each of the other seven per-node families. */
    assert_int_equal(check_exposition(r.body), all - 25 - 4 - 7 * 5);
    free(r.body);
    r = request(f, "GET", "/metrics?nodes=2");
    assert_int_equal(r.status, 400);
    free(r.body);
    r = request(f, "GET", "/metrics?nodes=1");
    assert_int_equal(r.status, 200);
    assert_int_equal(check_exposition(r.body), all);
    /* Every line is a comment or "name{labels} value": no blank or broken lines. */
    for (char *p = r.body; *p;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_true(nl > p);
        assert_true(*p == '#' || (*p >= 'a' && *p <= 'z'));
        p = nl + 1;
    }
    free(r.body);
}

/* The source-hash of the text between open and close in page, as a CSP names it. */
static void csp_source(const char *page, const char *open, const char *close, char *out, size_t cap)
{
    const char *a = strstr(page, open);
    assert_non_null(a);
    a += strlen(open);
    const char *b = strstr(a, close);
    assert_non_null(b);
    unsigned char h[crypto_hash_sha256_BYTES];
    char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    crypto_hash_sha256(h, (const unsigned char *)a, (unsigned long long)(b - a));
    sodium_bin2base64(b64, sizeof(b64), h, sizeof(h), sodium_base64_VARIANT_ORIGINAL);
    snprintf(out, cap, "'sha256-%s'", b64);
}

/*
 * The web page: the compiled-in document at / and /ui, as HTML, with a
 * policy that lets the browser run its own inline script and style (by
 * hash) and talk to the API, and load nothing else; a page that loads
 * nothing from elsewhere and never turns data into markup.
 */
static void test_ui_page(void **state)
{
    struct fixture *f = *state;
    const char *page = (const char *)api_ui_html;
    assert_int_equal(strlen(page), api_ui_html_len);
    /* Small: a page, not an application. */
    assert_true(api_ui_html_len > 1000 && api_ui_html_len < 32 * 1024);
    char script[64], style[64];
    csp_source(page, "<script>", "</script>", script, sizeof(script));
    csp_source(page, "<style>", "</style>", style, sizeof(style));
    static const char *const paths[] = {"/", "/ui"};
    for (size_t i = 0; i < 2; i++) {
        struct reply r = request(f, "GET", paths[i]);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.ctype, "text/html; charset=utf-8");
        assert_int_equal(r.len, api_ui_html_len);
        assert_memory_equal(r.body, page, api_ui_html_len);
        assert_string_equal(r.cache, "no-store");
        assert_string_equal(r.nosniff, "nosniff");
        assert_string_equal(r.frame, "DENY");
        /* Nothing by default; the page's own script and style by hash; requests to itself. */
        char want[256];
        assert_non_null(strstr(r.csp, "default-src 'none';"));
        snprintf(want, sizeof(want), "script-src %s;", script);
        assert_non_null(strstr(r.csp, want));
        snprintf(want, sizeof(want), "style-src %s;", style);
        assert_non_null(strstr(r.csp, want));
        assert_non_null(strstr(r.csp, "connect-src 'self';"));
        assert_non_null(strstr(r.csp, "frame-ancestors 'none'"));
        assert_null(strstr(r.csp, "unsafe"));
        assert_null(strstr(r.csp, "*"));
        free(r.body);
    }
    struct reply r = request(f, "HEAD", "/");
    assert_int_equal(r.status, 200);
    free(r.body);
    /* Only those two paths; and writing to them needs the token like anything else. */
    r = request(f, "GET", "/index.html");
    assert_int_equal(r.status, 404);
    free(r.body);
    r = request(f, "POST", "/");
    assert_int_equal(r.status, 403);
    free(r.body);

    /* One inline script and one inline style, and nothing loaded from anywhere. */
    static const char *const never[] = {
        "http:", "https:", "//cdn", " src=", "<link", "@import", "url(", "<iframe", "<img",
        /* data reaches the page as text only */
        "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function(",
        /* and the page reads the API only */
        "method:", "POST", "DELETE", "Authorization"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        if (strstr(page, never[i]))
            fail_msg("the page holds \"%s\"", never[i]);
    const char *first = strstr(page, "<script");
    assert_non_null(first);
    assert_null(strstr(first + 1, "<script"));
    first = strstr(page, "<style");
    assert_non_null(first);
    assert_null(strstr(first + 1, "<style"));
    /* It polls the read-only endpoints, relative to where it is served. */
    assert_non_null(strstr(page, "\"v1/nodes\""));
    assert_non_null(strstr(page, "\"v1/health\""));
    assert_non_null(strstr(page, "\"v1/events?since=\""));
}

/* api_node_json in virtual time: the durations are exact. */
static void test_node_json_exact(void **state)
{
    struct fixture *f = *state;
    const struct vigil_node *n = vigil_monitor_find(f->mon, "web1");
    assert_non_null(n);
    vigil_time_t now = vigil_node_last_heard(n) + 2500 * MS;
    int64_t wall = 1800000000000000LL;
    json_t *j = api_node_json(f->mon, n, now, wall);
    assert_non_null(j);
    assert_true(nget(j, "last_heard_s") == 2.5);
    assert_true(nget(j, "since_s") == (double)(now - vigil_node_state_since(n)) / 1e9);
    assert_true(nget(j, "level") == vigil_monitor_level(f->mon, n, now));
    vigil_time_t mean, sd;
    vigil_detector_stats(vigil_node_detector_state(n), &mean, &sd);
    assert_true(nget(j, "mean_interval_s") == (double)mean / 1e9);
    assert_true(nget(j, "std_dev_s") == (double)sd / 1e9);
    char want[40];
    vigil_format_wall(wall - 2500000, want, sizeof(want));
    assert_string_equal(sget(j, "last_heard"), want);
    json_decref(j);

    /* One nanosecond either side of the state change. */
    j = api_node_json(f->mon, n, vigil_node_state_since(n), wall);
    assert_true(nget(j, "since_s") == 0.0);
    json_decref(j);
    j = api_node_json(f->mon, n, vigil_node_state_since(n) + 1, wall);
    assert_true(nget(j, "since_s") > 0.0);
    assert_true(nget(j, "since_s") < 1e-8);
    json_decref(j);
}

/* ---- the real server ---------------------------------------------------- */

/* The status of a raw HTTP response ("HTTP/1.1 200 OK"), or -1. */
static int status_of(const char *text)
{
    int st = -1;
    if (sscanf(text, "HTTP/1.%*d %d ", &st) != 1)
        return -1;
    return st;
}

/* What the handler answers goes on the wire whole: status, headers, body. */
static void test_server_glue(void **state)
{
    struct fixture *f = *state;
    static const char get[] = "GET /v1/health HTTP/1.0\r\n\r\n";
    const char *text = raw_http(f, get, sizeof(get) - 1);
    assert_int_equal(status_of(text), 200);
    char v[256];
    header_value(text, "Content-Type", v, sizeof(v));
    assert_string_equal(v, "application/json");
    header_value(text, "Cache-Control", v, sizeof(v));
    assert_string_equal(v, "no-store");
    const char *body = strstr(text, "\r\n\r\n");
    assert_non_null(body);
    json_t *doc = json_loads(body + 4, 0, NULL);
    assert_non_null(doc);
    assert_true(nget(doc, "uptime_s") == 30.0);
    json_decref(doc);

    /* Changing anything without a token configured: 403. */
    static const char del[] = "DELETE /v1/health HTTP/1.0\r\n\r\n";
    text = raw_http(f, del, sizeof(del) - 1);
    assert_int_equal(status_of(text), 403);

    /* The Authorization header reaches the handler: 401 with the challenge, or through. */
    f->ctx.token = make_token(GOOD_TOKEN "\n");
    static const char post_bad[] = "POST /v1/keys/reload HTTP/1.0\r\n"
                                   "Authorization: Bearer " BAD_TOKEN "\r\n\r\n";
    text = raw_http(f, post_bad, sizeof(post_bad) - 1);
    assert_int_equal(status_of(text), 401);
    header_value(text, "WWW-Authenticate", v, sizeof(v));
    assert_string_equal(v, "Bearer realm=\"vigil\"");
    static const char post_good[] = "POST /v1/keys/reload HTTP/1.0\r\n"
                                    "Authorization: Bearer " GOOD_TOKEN "\r\n\r\n";
    text = raw_http(f, post_good, sizeof(post_good) - 1);
    assert_int_equal(status_of(text), 501);
    /* 405 with its Allow header. */
    static const char del_auth[] = "DELETE /v1/health HTTP/1.0\r\n"
                                   "Authorization: Bearer " GOOD_TOKEN "\r\n\r\n";
    text = raw_http(f, del_auth, sizeof(del_auth) - 1);
    assert_int_equal(status_of(text), 405);
    header_value(text, "Allow", v, sizeof(v));
    assert_string_equal(v, "GET, HEAD");
    api_token_free(f->ctx.token);
    f->ctx.token = NULL;

    /* The server's counters reach /v1/health: this connection is open, none refused. */
    f->ctx.server = f->httpd;
    text = raw_http(f, get, sizeof(get) - 1);
    f->ctx.server = NULL;
    doc = json_loads(strstr(text, "\r\n\r\n") + 4, 0, NULL);
    assert_non_null(doc);
    const json_t *api = json_object_get(doc, "api");
    assert_int_equal(iget(api, "connections"), 1);
    assert_true(iget(api, "accepted") >= 6);
    assert_int_equal(iget(api, "refused_per_address"), 0);
    assert_int_equal(iget(api, "per_address_limit"), 16);
    assert_true(iget(api, "connection_limit") >= 16 && iget(api, "connection_limit") <= 512);
    json_decref(doc);

    /* The path arrives decoded, the query raw (the handler decodes it). */
    static const char node[] = "GET /v1/nodes/web%32 HTTP/1.0\r\n\r\n";
    text = raw_http(f, node, sizeof(node) - 1);
    assert_int_equal(status_of(text), 200);
    assert_non_null(strstr(text, "\"id\":\"web2\""));
    static const char ev[] = "GET /v1/events?limit=%31&since=0 HTTP/1.0\r\n\r\n";
    text = raw_http(f, ev, sizeof(ev) - 1);
    assert_int_equal(status_of(text), 200);
    doc = json_loads(strstr(text, "\r\n\r\n") + 4, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(doc, "events")), 1);
    json_decref(doc);

    /* HEAD: the headers of a GET, no body. */
    static const char head[] = "HEAD /v1/health HTTP/1.0\r\n\r\n";
    text = raw_http(f, head, sizeof(head) - 1);
    assert_int_equal(status_of(text), 200);
    assert_string_equal(strstr(text, "\r\n\r\n"), "\r\n\r\n");

    /* Idle: the server keeps no timer, and no source is left ready. */
    serve_for(f, 1 * MS);
    assert_int_equal(vio_loop_next(f->loop, vio_now(f->loop)), VIGIL_TIME_NEVER);
}

/* A request body is collected up to 64 KiB; a longer one is refused with 413. */
static void test_server_body_bound(void **state)
{
    struct fixture *f = *state;
    size_t n = 64 * 1024;
    char *req = malloc(n + 256);
    assert_non_null(req);
    int h = snprintf(req, 256, "POST /v1/health HTTP/1.0\r\nContent-Length: %zu\r\n\r\n", n);
    memset(req + h, 'x', n);
    /* At the bound: the handler gets it, and refuses the call (no token). */
    const char *text = raw_http(f, req, (size_t)h + n);
    assert_int_equal(status_of(text), 403);
    /* One byte more, announced: 413 before the body is read. */
    h = snprintf(req, 256, "POST /v1/health HTTP/1.0\r\nContent-Length: %zu\r\n\r\n", n + 1);
    memset(req + h, 'x', n + 1);
    text = raw_http(f, req, (size_t)h + n + 1);
    assert_int_equal(status_of(text), 413);
    free(req);
    /* Chunked, and too long only on the way. */
    size_t chunk = 40 * 1024;
    req = malloc(3 * chunk + 512);
    assert_non_null(req);
    int off = snprintf(req, 256,
                       "POST /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 2; i++) {
        off += snprintf(req + off, 32, "%zx\r\n", chunk);
        memset(req + off, 'y', chunk);
        off += (int)chunk;
        off += snprintf(req + off, 8, "\r\n");
    }
    off += snprintf(req + off, 8, "0\r\n\r\n");
    text = raw_http(f, req, (size_t)off);
    assert_int_equal(status_of(text), 413);
    free(req);
}

static void test_server_open_errors(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct vio_httpd *h = (struct vio_httpd *)1;
    assert_true(vio_httpd_mhd_open(f->loop, &(struct vio_httpd_opts){.addr = "not-an-address"},
                                   api_handle_cb, &f->ctx, &h, err, sizeof(err)) < 0);
    assert_null(h);
    assert_non_null(strstr(err, "not-an-address"));

    /* The port is taken by the fixture's server. */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", f->port);
    err[0] = '\0';
    assert_true(vio_httpd_mhd_open(f->loop, &(struct vio_httpd_opts){.addr = addr}, api_handle_cb,
                                   &f->ctx, &h, err, sizeof(err)) < 0);
    assert_null(h);
    assert_non_null(strstr(err, addr));

    /* IPv6 loopback, where the host has it. */
    int s6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have_v6 = s6 >= 0 && bind(s6, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
    if (s6 >= 0)
        close(s6);
    if (have_v6) {
        assert_int_equal(vio_httpd_mhd_open(f->loop, &(struct vio_httpd_opts){.addr = "[::1]:0"},
                                            api_handle_cb, &f->ctx, &h, err, sizeof(err)),
                         0);
        assert_true(vio_httpd_port(h) > 0);
        vio_httpd_close(h);
    }

    /* The fake server checks addresses the same way. */
    assert_true(fake_httpd_open(f->floop, "nowhere", api_handle_cb, &f->ctx, &h, err, sizeof(err)) <
                0);
    assert_non_null(strstr(err, "nowhere"));
}

/* The query parser: one strict rule for every integer parameter. */
static void test_query_parameters(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *target;
        unsigned status;
        size_t events; /* with 200 */
    } cases[] = {
        {"/v1/events?since=0&limit=3", 200, 3},
        {"/v1/events?limit=3&since=0", 200, 3},
        {"/v1/events?limit=%33", 200, 3},                  /* escapes decoded */
        {"/v1/events?%6cimit=2", 200, 2},                  /* in names too */
        {"/v1/events?limit=2&limit=5", 200, 2},            /* the first counts */
        {"/v1/events?other=x&limit=1", 200, 1},            /* others ignored */
        {"/v1/events?limits=1", 200, 0},                   /* not a prefix match */
        {"/v1/events?limit", 400, 0},                      /* no value */
        {"/v1/events?limit=", 400, 0},                     /* empty */
        {"/v1/events?limit=+1", 400, 0},                   /* a space */
        {"/v1/events?limit=1%", 400, 0},                   /* broken escape */
        {"/v1/events?limit=%00", 400, 0},                  /* NUL */
        {"/v1/events?limit=0x10", 400, 0},                 /* hex */
        {"/v1/nodes?offset=18446744073709551616", 400, 0}, /* 2^64 */
        {"/v1/nodes?offset=18446744073709551615", 400, 0}, /* 2^64 - 1: not echoed as -1 */
        {"/v1/nodes?offset=16777217", 400, 0},             /* past any table */
        {"/v1/nodes?offset=16777216", 200, 0},             /* past the end: empty */
        {"/v1/nodes?offset=-1", 400, 0},                   /* signed */
        {"/v1/events?since=18446744073709551615", 200, 0}, /* sequence numbers are 64 bits */
        {"/v1/events?limit=1\x01", 400, 0},                /* a control byte, raw */
        {"/v1/events?limit=1\xc3\xa9", 400, 0},            /* UTF-8, raw: must be escaped */
    };
    size_t count = evlog_count(f->log);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct reply r = request(f, "GET", cases[i].target);
        if (r.status != cases[i].status)
            fail_msg("%s: want %u, got %ld: %s", cases[i].target, cases[i].status, r.status,
                     r.body);
        json_t *doc = json_loads(r.body, 0, NULL);
        assert_non_null(doc);
        if (r.status == 400) {
            assert_non_null(sget(doc, "error"));
        } else if (!strncmp(cases[i].target, "/v1/events", 10)) {
            size_t want = cases[i].events ? cases[i].events : 0;
            if (!strcmp(cases[i].target, "/v1/events?limits=1"))
                want = count < 100 ? count : 100;
            assert_int_equal(json_array_size(json_object_get(doc, "events")), want);
        }
        json_decref(doc);
        free(r.body);
    }
}

/* ---- changing state: the token ------------------------------------------ */

static int reload_calls;
static int reload_result;

static int fake_reload(void *ud, char *err, size_t cap)
{
    assert_ptr_equal(ud, &reload_calls);
    reload_calls++;
    if (reload_result)
        snprintf(err, cap, "master.key: not a key");
    return reload_result;
}

/* The token file is read like a key file; the check takes only "Bearer TOKEN". */
static void test_token_file(void **state)
{
    (void)state;
    char err[512];
    struct api_token *t = NULL;
    /* Others may read it: refused, in the words of a key file. */
    const char *path = write_file(GOOD_TOKEN, 0644);
    assert_int_equal(api_token_load(&vio_fs_real, path, &t, err, sizeof(err)), -1);
    assert_null(t);
    char want[256];
    snprintf(want, sizeof(want),
             "permissions 0644 for '%s' are too open: a token file must be readable by its "
             "owner only",
             path);
    if (!strstr(err, want))
        fail_msg("%s", err);
    unlink(path);
    /* Too short, spaces inside, empty, not printable: refused, never showing the token. */
    static const char *const bad[] = {
        "short-token", "with space inside-0123456789", "",
        "\n\n",        "tab\tinside-0123456789abcdef", "caf\xc3\xa9-0123456789abcdef"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        path = write_file(bad[i], 0600);
        assert_int_equal(api_token_load(&vio_fs_real, path, &t, err, sizeof(err)), -1);
        assert_null(t);
        assert_non_null(strstr(err, "a token file holds one token of 16 to 256"));
        if (bad[i][0] && bad[i][0] != '\n')
            assert_null(strstr(err, bad[i]));
        unlink(path);
    }
    char longest[API_TOKEN_MAX + 2];
    memset(longest, 'x', sizeof(longest) - 1);
    longest[API_TOKEN_MAX + 1] = '\0';
    path = write_file(longest, 0600);
    assert_int_equal(api_token_load(&vio_fs_real, path, &t, err, sizeof(err)), -1);
    unlink(path);
    longest[API_TOKEN_MAX] = '\0';
    t = make_token(longest);
    assert_string_equal(api_token_value(t), longest);
    api_token_free(t);
    assert_int_equal(api_token_load(&vio_fs_real, "/nonexistent/token", &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open"));

    /* White space around the token is not part of it. */
    t = make_token("  \n" GOOD_TOKEN "\r\n\n");
    assert_string_equal(api_token_value(t), GOOD_TOKEN);
    static const struct {
        const char *header;
        bool ok;
    } cases[] = {
        {NULL, false},
        {"", false},
        {"Bearer " GOOD_TOKEN, true},
        {"bearer " GOOD_TOKEN, true},                   /* the scheme is case-insensitive */
        {"BEARER   " GOOD_TOKEN "  ", true},            /* spaces around */
        {"Bearer " BAD_TOKEN, false},                   /* the last character differs */
        {"Bearer " GOOD_TOKEN "x", false},              /* longer */
        {"Bearer s3cret-t0ken-0123456789abcde", false}, /* a prefix */
        {"Bearer", false},
        {"Bearer ", false},
        {"Bearer" GOOD_TOKEN, false}, /* no space */
        {"Basic " GOOD_TOKEN, false}, /* another scheme */
        {GOOD_TOKEN, false},          /* no scheme */
        {"Bearer "
         "S3CRET-T0KEN-0123456789ABCDEF",
         false}, /* the token is case-sensitive */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (api_token_check(t, cases[i].header) != cases[i].ok)
            fail_msg("'%s': want %d", cases[i].header ? cases[i].header : "(none)", cases[i].ok);
    assert_false(api_token_check(NULL, "Bearer " GOOD_TOKEN));
    api_token_free(t);
    api_token_free(NULL);
}

/* POST /v1/keys/reload: 403 without a token configured, 401 without the right one, then through. */
static void test_mutating_calls(void **state)
{
    struct fixture *f = *state;
    reload_calls = 0;
    reload_result = 0;
    f->ctx.reload_keys = fake_reload;
    f->ctx.reload_keys_ud = &reload_calls;

    /* No token configured: nobody may, whatever they send. */
    struct reply r = request_auth(f, "POST", "/v1/keys/reload", "Bearer " GOOD_TOKEN);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.body, "api_token_file"));
    free(r.body);
    assert_int_equal(reload_calls, 0);

    f->ctx.token = make_token(GOOD_TOKEN);
    /* Missing, wrong, or of another scheme: 401 with the challenge, counted. */
    static const char *const wrong[] = {NULL, "Bearer " BAD_TOKEN, "Basic " GOOD_TOKEN};
    for (size_t i = 0; i < 3; i++) {
        r = request_auth(f, "POST", "/v1/keys/reload", wrong[i]);
        assert_int_equal(r.status, 401);
        assert_string_equal(r.auth, "Bearer realm=\"vigil\"");
        assert_string_equal(r.ctype, "application/json");
        assert_null(strstr(r.body, GOOD_TOKEN));
        free(r.body);
    }
    /* Without the token a client cannot even learn which paths exist. */
    r = request_auth(f, "POST", "/v1/no-such-thing", NULL);
    assert_int_equal(r.status, 401);
    free(r.body);
    assert_int_equal(reload_calls, 0);
    json_t *doc = get_json(f, "/v1/health", 200);
    assert_int_equal(iget(json_object_get(doc, "api"), "auth_failures"), 4);
    assert_true(json_is_true(json_object_get(json_object_get(doc, "api"), "token")));
    json_decref(doc);
    r = request(f, "GET", "/metrics");
    assert_true(has_line(r.body, "vigil_api_auth_failures_total 4"));
    free(r.body);

    /* The right token: the callback runs once per call. */
    r = request_auth(f, "POST", "/v1/keys/reload", "Bearer " GOOD_TOKEN);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"status\":\"ok\""));
    free(r.body);
    assert_int_equal(reload_calls, 1);
    reload_result = -1;
    r = request_auth(f, "POST", "/v1/keys/reload", "Bearer " GOOD_TOKEN);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.body, "cannot reload the keys: master.key: not a key"));
    free(r.body);
    assert_int_equal(reload_calls, 2);
    /* Another path, with the token: 404; another method: 405 with its Allow. */
    r = request_auth(f, "POST", "/v1/no-such-thing", "Bearer " GOOD_TOKEN);
    assert_int_equal(r.status, 404);
    free(r.body);
    r = request_auth(f, "PUT", "/v1/keys/reload", "Bearer " GOOD_TOKEN);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "POST");
    free(r.body);
    r = request(f, "GET", "/v1/keys/reload");
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "POST");
    free(r.body);
    assert_int_equal(reload_calls, 2);

    /* No callback: the monitor cannot do it (yet). */
    f->ctx.reload_keys = NULL;
    r = request_auth(f, "POST", "/v1/keys/reload", "Bearer " GOOD_TOKEN);
    assert_int_equal(r.status, 501);
    free(r.body);
    api_token_free(f->ctx.token);
    f->ctx.token = NULL;
}

/* What cannot be a request: 400, whatever the path or the token. */
static void test_invalid_input(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *method, *target;
        unsigned status;
    } cases[] = {
        {"G\x01T", "/v1/health", 400},                             /* control byte in the method */
        {"GET\x7f", "/v1/health", 400},                            /* DEL */
        {"G\xc3\xa9T", "/v1/health", 400},                         /* not ASCII */
        {"GET POST", "/v1/health", 400},                           /* a space */
        {"", "/v1/health", 400},                                   /* empty */
        {"GETGETGETGETGETGETGETGETGETGETGETG", "/v1/health", 400}, /* 34 characters */
        {"M-SEARCH", "/v1/health", 403},           /* a token: a method, just not allowed */
        {"GET", "/v1/health%0a", 400},             /* a newline in the path */
        {"GET", "/v1/nodes/web1%1b[2J", 400},      /* an escape sequence */
        {"GET", "/v1/nodes/%7f", 400},             /* DEL */
        {"GET", "/v1/nodes/%c0%af", 400},          /* overlong '/' */
        {"GET", "/v1/nodes/%e0%80%af", 400},       /* overlong, three bytes */
        {"GET", "/v1/nodes/%ed%a0%80", 400},       /* a surrogate */
        {"GET", "/v1/nodes/%f4%90%80%80", 400},    /* past U+10FFFF */
        {"GET", "/v1/nodes/%f8%88%80%80%80", 400}, /* five bytes */
        {"GET", "/v1/nodes/%e2%82", 400},          /* cut short */
        {"GET", "/v1/nodes/%80", 400},             /* a lone continuation byte */
        {"GET", "/v1/nodes/%c3%a9", 404},          /* valid UTF-8, no such node */
        {"GET", "/v1/nodes/%f0%9f%92%a5", 404},    /* four bytes, valid */
        {"POST", "/v1/health%0a", 400},            /* before the token is asked for */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct reply r = request(f, cases[i].method, cases[i].target);
        if (r.status != cases[i].status)
            fail_msg("case %zu (%s): want %u, got %ld: %s", i, cases[i].target, cases[i].status,
                     r.status, r.body);
        /* The answer is JSON (valid UTF-8) whatever came in. */
        json_t *doc = json_loadb(r.body, r.len, 0, NULL);
        if (!doc)
            fail_msg("case %zu: invalid JSON: %s", i, r.body);
        json_decref(doc);
        free(r.body);
    }
}

/* Idle connections from one address take 16 slots; another address is still served. */
static void test_server_per_address_limit(void **state)
{
    struct fixture *f = *state;
    enum { IDLE = 20 };
    int fds[IDLE];
    struct sockaddr_in from = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.2", &from.sin_addr);
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(f->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < IDLE; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(bind(fds[i], (struct sockaddr *)&from, sizeof(from)), 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&to, sizeof(to)), 0);
    }
    /* The server takes them all from its backlog. */
    serve_for(f, 50 * MS);
    f->ctx.server = f->httpd;
    static const char get[] = "GET /v1/health HTTP/1.0\r\n\r\n";
    const char *text = raw_http(f, get, sizeof(get) - 1);
    assert_int_equal(status_of(text), 200);
    json_t *doc = json_loads(strstr(text, "\r\n\r\n") + 4, 0, NULL);
    assert_non_null(doc);
    const json_t *api = json_object_get(doc, "api");
    assert_int_equal(iget(api, "connections"), 16 + 1);
    assert_int_equal(iget(api, "refused_per_address"), IDLE - 16);
    json_decref(doc);
    struct reply r = request(f, "GET", "/metrics");
    assert_true(has_line(r.body, "vigil_api_connections_refused_total{reason=\"per_address\"} 4"));
    assert_true(has_line(r.body, "vigil_api_connections_refused_total{reason=\"limit\"} 0"));
    /* The health request's own connection is gone by now. */
    assert_true(has_line(r.body, "vigil_api_connections 16"));
    free(r.body);
    /* The refused ones were closed at once: they read the end of the stream. */
    int closed = 0;
    for (int i = 0; i < IDLE; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        char c;
        if (poll(&p, 1, 0) == 1 && read(fds[i], &c, 1) <= 0)
            closed++;
        close(fds[i]);
    }
    assert_int_equal(closed, IDLE - 16);
    /* Their slots come back when they go. */
    serve_for(f, 50 * MS);
    text = raw_http(f, get, sizeof(get) - 1);
    f->ctx.server = NULL;
    doc = json_loads(strstr(text, "\r\n\r\n") + 4, 0, NULL);
    assert_int_equal(iget(json_object_get(doc, "api"), "connections"), 1);
    json_decref(doc);
}

/* ---- the CLI ---------------------------------------------------------- */

struct cli_run {
    int (*fn)(int, char **);
    int argc;
    char *argv[12];
    int rc;
    volatile int done;
};

static void *cli_thread(void *arg)
{
    struct cli_run *r = arg;
    r->rc = r->fn(r->argc, r->argv);
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Output captured from fd 1 and 2 into temporary files. */
struct capture {
    FILE *out, *err;
    int saved_out, saved_err;
};

static void capture_start(struct capture *c)
{
    fflush(stdout);
    fflush(stderr);
    c->out = tmpfile();
    c->err = tmpfile();
    assert_non_null(c->out);
    assert_non_null(c->err);
    c->saved_out = dup(1);
    c->saved_err = dup(2);
    dup2(fileno(c->out), 1);
    dup2(fileno(c->err), 2);
}

/*
 * The whole file so far, read with pread: the descriptor's offset is shared
 * with fd 1 and must stay at the end, where the writer appends.
 */
static char *read_all(FILE *f)
{
    struct stat st;
    assert_int_equal(fstat(fileno(f), &st), 0);
    char *s = calloc(1, (size_t)st.st_size + 1);
    assert_non_null(s);
    assert_int_equal(pread(fileno(f), s, (size_t)st.st_size, 0), st.st_size);
    return s;
}

static void capture_end(struct capture *c, char **out, char **err)
{
    fflush(stdout);
    fflush(stderr);
    dup2(c->saved_out, 1);
    dup2(c->saved_err, 2);
    close(c->saved_out);
    close(c->saved_err);
    *out = read_all(c->out);
    *err = read_all(c->err);
    fclose(c->out);
    fclose(c->err);
}

/* The line of text that starts with prefix (static buffer), or "" if none. */
static const char *line_of(const char *text, const char *prefix)
{
    static char line[512];
    size_t len = strlen(prefix);
    line[0] = '\0';
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!strncmp(p, prefix, len)) {
            snprintf(line, sizeof(line), "%.*s", (int)strcspn(p, "\n"), p);
            break;
        }
    }
    return line;
}

/*
 * Serves the API until the CLI thread is done (bounded), then joins it.
 * Returns false if it did not finish in time (then it is left running; the
 * caller restores the output before failing, so that the failure is seen).
 */
static bool serve_until_done(struct fixture *f, struct cli_run *r, pthread_t t)
{
    vigil_time_t limit = vigil_clock_mono() + WAIT_LIMIT;
    while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE) && vigil_clock_mono() < limit)
        serve_for(f, 10 * MS);
    if (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE))
        return false;
    pthread_join(t, NULL);
    return true;
}

static int run_cli(struct fixture *f, int (*fn)(int, char **), char **out, char **err, ...)
{
    struct cli_run r = {.fn = fn};
    static char bufs[12][128];
    va_list ap;
    va_start(ap, err);
    const char *a;
    while ((a = va_arg(ap, const char *)) && r.argc < 11) {
        snprintf(bufs[r.argc], sizeof(bufs[0]), "%s", a);
        r.argv[r.argc] = bufs[r.argc];
        r.argc++;
    }
    va_end(ap);
    r.argv[r.argc] = NULL;
    struct capture c;
    capture_start(&c);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cli_thread, &r), 0);
    bool done = serve_until_done(f, &r, t);
    capture_end(&c, out, err);
    if (!done)
        fail_msg("%s did not finish; output so far:\n%s\n%s", r.argv[0], *out, *err);
    return r.rc;
}

/* Most significant digits of any real number in a JSON text (strings skipped). */
static int max_sig_digits(const char *s)
{
    int most = 0;
    while (*s) {
        if (*s == '"') {
            for (s++; *s && *s != '"'; s++)
                if (*s == '\\' && s[1])
                    s++;
            if (*s)
                s++;
            continue;
        }
        if (!(*s >= '0' && *s <= '9')) {
            s++;
            continue;
        }
        int sig = 0;
        bool lead = true, real = false;
        for (; *s && ((*s >= '0' && *s <= '9') || *s == '.'); s++) {
            real |= *s == '.';
            if (*s == '.' || (lead && *s == '0'))
                continue;
            lead = false;
            sig++;
        }
        /* Integers (counters, times in microseconds) are exact: only reals count. */
        if (real && sig > most)
            most = sig;
    }
    return most;
}

static void test_cli_status_table(void **state)
{
    struct fixture *f = *state;
    char api[64], *out, *err;
    snprintf(api, sizeof(api), "127.0.0.1:%u", f->port);
    int rc = run_cli(f, cmd_status, &out, &err, "status", "--api", api, NULL);
    if (rc != 0)
        fail_msg("rc %d, stderr: %s", rc, err);
    /* Header, five nodes sorted by id, summary. */
    assert_int_equal(strncmp(out, "NODE  STATE    FOR", 18), 0);
    const char *p = out;
    static const char *const order[] = {"\nweb1 ", "\nweb2 ", "\nweb3 ", "\nweb4 ", "\nweb5 "};
    for (size_t i = 0; i < 5; i++) {
        const char *q = strstr(p, order[i]);
        if (!q)
            fail_msg("%s missing or out of order:\n%s", order[i] + 1, out);
        p = q + 1;
    }
    assert_true(has_line(out, "5 nodes: 1 alive, 2 dead, 1 left, 1 unknown"));
    /* web1's line: alive, load 1.25, 2048 MiB available, its address. */
    const char *l = line_of(out, "web1 ");
    assert_non_null(strstr(l, " alive "));
    assert_non_null(strstr(l, " 1.25 "));
    assert_non_null(strstr(l, " 2048MiB "));
    assert_non_null(strstr(l, "127.0.0.1:4000"));
    /* web3 never heard; web5 half way back; web2 dead without a recovery. */
    l = line_of(out, "web3 ");
    assert_non_null(strstr(l, " unknown "));
    assert_non_null(strstr(l, " never "));
    l = line_of(out, "web5 ");
    assert_non_null(strstr(l, " dead "));
    assert_non_null(strstr(l, "(recovering 1/2)"));
    l = line_of(out, "web2 ");
    assert_non_null(strstr(l, " dead "));
    assert_null(strstr(l, "recovering"));
    assert_string_equal(err, "");
    free(out);
    free(err);

    /* --json: the API's document as it is. */
    rc = run_cli(f, cmd_status, &out, &err, "status", "--json", "--api", api, NULL);
    assert_int_equal(rc, 0);
    json_t *doc = json_loads(out, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "nodes")), 5);
    json_decref(doc);
    /* Its numbers as the API wrote them: 12 digits at most, never jansson's 17. */
    if (max_sig_digits(out) > 12)
        fail_msg("numbers with more than 12 digits:\n%s", out);
    free(out);
    free(err);
}

static void test_cli_status_node(void **state)
{
    struct fixture *f = *state;
    char api[64], *out, *err;
    snprintf(api, sizeof(api), "http://127.0.0.1:%u", f->port);
    int rc = run_cli(f, cmd_status, &out, &err, "status", "--api", api, "web2", NULL);
    if (rc != 0)
        fail_msg("rc %d, stderr: %s", rc, err);
    assert_int_equal(strncmp(out, "web2: dead for ", 15), 0);
    assert_non_null(strstr(out, "suspect at 2.50, dead at 5.00"));
    assert_non_null(strstr(out, "recent events (oldest first):"));
    /* The evidence: the same line the monitor's log writes for the decision. */
    for (size_t i = 0; i < evlog_count(f->log); i++) {
        const struct evrec *r = evlog_at(f->log, i);
        if (strcmp(r->ev.node, "web2"))
            continue;
        char line[1024], want[1100];
        evrec_format_text(r, line, sizeof(line));
        snprintf(want, sizeof(want), "  %s", line);
        if (!has_line(out, want))
            fail_msg("missing event line:\n%s\nin:\n%s", want, out);
    }
    assert_non_null(strstr(out, "dead (timeout)"));
    free(out);
    free(err);

    rc = run_cli(f, cmd_status, &out, &err, "status", "--api", api, "web9", NULL);
    assert_int_equal(rc, 1);
    assert_string_equal(err, "vigil status: no such node: web9\n");
    free(out);
    free(err);
}

/* Writes text to a new temporary file; returns its path (static buffer). */
static const char *temp_config(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/vigil-test-api-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* The API address from the -c file's monitor.api; "off" and file errors are reported. */
static void test_cli_config_file(void **state)
{
    struct fixture *f = *state;
    char text[256], *out, *err;
    snprintf(text, sizeof(text), "monitor: {\n  api = \"127.0.0.1:%u\";\n};\n", f->port);
    const char *path = temp_config(text);
    int rc = run_cli(f, cmd_status, &out, &err, "status", "-c", path, NULL);
    if (rc != 0)
        fail_msg("rc %d, stderr: %s", rc, err);
    assert_true(has_line(out, "5 nodes: 1 alive, 2 dead, 1 left, 1 unknown"));
    free(out);
    free(err);
    /* --api wins over the file. */
    rc = run_cli(f, cmd_status, &out, &err, "status", "-c", path, "--api", "127.0.0.1:1", NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "http://127.0.0.1:1: "));
    free(out);
    free(err);
    unlink(path);

    path = temp_config("monitor: {\n  api = \"off\";\n};\n");
    rc = run_cli(f, cmd_events, &out, &err, "events", "-c", path, NULL);
    assert_int_equal(rc, 2); /* a usage error: the file says there is no API */
    assert_non_null(strstr(err, "the monitor API is disabled in"));
    assert_non_null(strstr(err, path));
    free(out);
    free(err);
    unlink(path);

    path = temp_config("monitor: {\n  api = 7947;\n};\n");
    rc = run_cli(f, cmd_status, &out, &err, "status", "-c", path, NULL);
    assert_int_equal(rc, 2); /* a bad configuration: 2, as in every command */
    /* The config loader's "FILE:LINE: what is wrong". */
    char where[80];
    snprintf(where, sizeof(where), "vigil status: %s:2: ", path);
    assert_int_equal(strncmp(err, where, strlen(where)), 0);
    free(out);
    free(err);
    unlink(path);
}

static void test_cli_unreachable(void **state)
{
    struct fixture *f = *state;
    /* A port nobody listens on: bind one, note it, close it. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    getsockname(s, (struct sockaddr *)&sin, &len);
    close(s);
    char api[64], want[256], *out, *err;
    snprintf(api, sizeof(api), "127.0.0.1:%u", ntohs(sin.sin_port));
    int rc = run_cli(f, cmd_status, &out, &err, "status", "--api", api, NULL);
    assert_int_equal(rc, 1);
    snprintf(want, sizeof(want),
             "vigil status: cannot reach the monitor API at http://%s: Connection refused\n", api);
    assert_string_equal(err, want);
    assert_string_equal(out, "");
    free(out);
    free(err);
    rc = run_cli(f, cmd_events, &out, &err, "events", "--api", api, NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "vigil events: cannot reach the monitor API at http://"));
    free(out);
    free(err);

    /* Usage errors. */
    rc = run_cli(f, cmd_events, &out, &err, "events", "--limit", "0", NULL);
    assert_int_equal(rc, 2);
    free(out);
    free(err);
    rc = run_cli(f, cmd_status, &out, &err, "status", "bad/id", NULL);
    assert_int_equal(rc, 2);
    free(out);
    free(err);
}

static void test_cli_events(void **state)
{
    struct fixture *f = *state;
    char api[64], *out, *err;
    snprintf(api, sizeof(api), "127.0.0.1:%u", f->port);
    int rc = run_cli(f, cmd_events, &out, &err, "events", "--api", api, "--since", "0", NULL);
    if (rc != 0)
        fail_msg("rc %d, stderr: %s", rc, err);
    /* Every event, oldest first, each the same line as evrec_format_text. */
    const char *p = out;
    for (size_t i = 0; i < evlog_count(f->log); i++) {
        char line[1024];
        evrec_format_text(evlog_at(f->log, i), line, sizeof(line));
        size_t n = strcspn(p, "\n");
        if (n != strlen(line) || strncmp(p, line, n))
            fail_msg("event %zu:\nwant %s\ngot  %.*s", i, line, (int)n, p);
        p += n + (p[n] == '\n');
    }
    assert_string_equal(p, "");
    free(out);
    free(err);

    /* Without --since: the last M events. */
    rc = run_cli(f, cmd_events, &out, &err, "events", "--api", api, "--limit", "2", NULL);
    assert_int_equal(rc, 0);
    char last[1024];
    evrec_format_text(evlog_at(f->log, evlog_count(f->log) - 1), last, sizeof(last));
    size_t lines = 0;
    for (const char *q = out; *q; q++)
        lines += *q == '\n';
    assert_int_equal(lines, 2);
    assert_true(has_line(out, last));
    free(out);
    free(err);
}

/* Pushes a copy of the event at index i of the log as a new event of node id. */
static void push_late(struct fixture *f, size_t i, uint64_t seq, const char *id)
{
    struct evrec e = *evlog_at(f->log, i);
    e.ev.seq = seq;
    snprintf(e.ev.node, sizeof(e.ev.node), "%s", id);
    evlog_push(f->log, &e);
}

/* --follow prints what arrives later, and ends cleanly on SIGINT. */
static void test_cli_events_follow(void **state)
{
    struct fixture *f = *state;
    char api[64];
    snprintf(api, sizeof(api), "127.0.0.1:%u", f->port);
    struct cli_run r = {.fn = cmd_events, .argc = 5};
    char a0[] = "events", a1[] = "--api", a3[] = "--follow", a4[] = "--json";
    r.argv[0] = a0;
    r.argv[1] = a1;
    r.argv[2] = api;
    r.argv[3] = a3;
    r.argv[4] = a4;
    struct capture c;
    capture_start(&c);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cli_thread, &r), 0);

    /* Serve until the history is printed (the handler is installed by then). */
    size_t count = evlog_count(f->log);
    uint64_t newest = evlog_last_seq(f->log);
    vigil_time_t limit = vigil_clock_mono() + WAIT_LIMIT;
    int phase = 0;
    size_t total = count + 2; /* the history and the two late events */
    while (vigil_clock_mono() < limit && !__atomic_load_n(&r.done, __ATOMIC_ACQUIRE)) {
        serve_for(f, 10 * MS);
        char *buf = read_all(c.out);
        size_t nl = 0;
        for (const char *q = buf; *q; q++)
            nl += *q == '\n';
        if (phase == 0 && nl > 0) {
            /* A new event while the CLI follows. */
            push_late(f, count - 1, newest + 1, "late1");
            phase = 1;
        } else if (phase == 1 && strstr(buf, "\"late1\"")) {
            /* Still following after the first new event: a second one, a later poll. */
            push_late(f, count - 1, newest + 2, "late2");
            phase = 2;
        } else if (phase == 2 && strstr(buf, "\"late2\"")) {
            /* The monitor "restarts": the follower starts over and prints everything again. */
            f->ctx.started_wall_us += 1000000;
            phase = 3;
        } else if (phase == 3 && nl == 2 * total) {
            pthread_kill(t, SIGINT);
            phase = 4;
            free(buf);
            break;
        }
        free(buf);
    }
    if (phase != 4)
        pthread_kill(t, SIGINT); /* stop it anyway, so that the failure below is seen */
    bool done = serve_until_done(f, &r, t);
    char *out, *err;
    capture_end(&c, &out, &err);
    if (phase != 4 || !done)
        fail_msg("follow stopped at phase %d (done %d); stdout:\n%s\nstderr:\n%s", phase, done, out,
                 err);
    assert_int_equal(r.rc, 0);
    assert_string_equal(err, "vigil events: the monitor restarted; following its new events\n");
    /* One JSON object per line: all events and the late ones, twice. */
    size_t lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *e = json_loads(line, 0, NULL);
        assert_non_null(e);
        size_t k = lines % total;
        lines++;
        assert_int_equal(iget(e, "seq"),
                         k < count ? evlog_at(f->log, k)->ev.seq : newest + 1 + (k - count));
        json_decref(e);
    }
    assert_int_equal(lines, 2 * total);
    free(out);
    free(err);
}

/* ---- long answers, built a slice per loop turn --------------------------- */

/* Counts the turns of a loop: a source that makes itself ready again each turn. */
struct ticker {
    struct vio_loop *loop;
    struct vio_source src;
    unsigned turns;
};

static void on_tick(void *arg, vigil_time_t now)
{
    struct ticker *t = arg;
    (void)now;
    t->turns++;
    vio_source_ready(t->loop, &t->src);
}

struct got {
    bool done;
    long status;
    char *body;
};

static void on_got(void *arg, const struct vio_http_result *res)
{
    struct got *g = arg;
    g->done = true;
    g->status = res->error ? -1 : res->status;
    if (res->error)
        fprintf(stderr, "real_get: %d %s\n", res->error, res->why ? res->why : "");
    g->body = res->error ? NULL : strndup(res->body, res->body_len);
}

/* GET target from the real server with libcurl on the real loop; the body (malloc'd). */
static char *real_get_text(struct fixture *f, const char *target)
{
    struct vio_http *client = NULL;
    assert_int_equal(vio_http_curl_new(f->loop, &client), 0);
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", f->port, target);
    struct got g = {0};
    struct vio_http_call call = {
        .method = "GET", .url = url, .timeout = WAIT_LIMIT, .body_max = 64u << 20};
    assert_int_equal(vio_http_start(client, &call, on_got, &g), 0);
    for (int i = 0; i < 1000 && !g.done; i++)
        serve_for(f, 10 * MS);
    vio_http_close(client);
    assert_true(g.done);
    assert_int_equal(g.status, 200);
    return g.body;
}

/* GET target from the real server; the parsed body. */
static json_t *real_get(struct fixture *f, const char *target)
{
    char *body = real_get_text(f, target);
    json_error_t e;
    json_t *doc = json_loads(body, 0, &e);
    free(body);
    assert_non_null(doc);
    return doc;
}

/*
 * A page of 1000 nodes and 1000 events is built a slice per turn (the loop
 * turns several times meanwhile) and is the same document as one built at
 * once, through the fake server and through the real one.
 */
static void test_long_answers_in_slices(void **state)
{
    struct fixture *f = *state;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    c.max_nodes = 2000;
    struct vigil_monitor *big;
    assert_int_equal(vigil_monitor_new(&c, f->base, &big), 0);
    for (int i = 0; i < 1000; i++) {
        char id[32];
        snprintf(id, sizeof(id), "n%04d", i);
        assert_int_equal(vigil_monitor_declare(big, id, f->base), 0);
    }
    struct evlog *log = evlog_new(5000);
    assert_non_null(log);
    for (uint64_t i = 1; i <= 1500; i++) {
        struct evrec r;
        memset(&r, 0, sizeof(r));
        r.ev.seq = i;
        r.ev.type = VIGIL_EVENT_STATE;
        snprintf(r.ev.node, sizeof(r.ev.node), "n%04d", (int)(i % 1000));
        r.ev.old_state = VIGIL_STATE_ALIVE;
        r.ev.new_state = VIGIL_STATE_SUSPECT;
        r.ev.reason = "timeout";
        r.wall_us = 1800000000000000 + (int64_t)i;
        evlog_push(log, &r);
    }
    /* At once (no server to defer through) and in slices (the fake server, then the real one). */
    struct api_ctx now_ctx = f->ctx, sliced = f->ctx, real = f->ctx;
    now_ctx.mon = sliced.mon = real.mon = big;
    now_ctx.events = sliced.events = real.events = log;
    now_ctx.server = NULL;
    api_init(&sliced);
    char err[256];
    assert_int_equal(fake_httpd_open(f->floop, "127.0.0.1:0", api_handle_cb, &sliced,
                                     &sliced.server, err, sizeof(err)),
                     0);
    struct vio_httpd *at_once;
    assert_int_equal(fake_httpd_open(f->floop, "127.0.0.1:0", api_handle_cb, &now_ctx, &at_once,
                                     err, sizeof(err)),
                     0);
    real.loop = f->loop;
    api_init(&real);
    struct vio_httpd *real_server;
    assert_int_equal(vio_httpd_mhd_open(f->loop, &(struct vio_httpd_opts){.addr = "127.0.0.1:0"},
                                        api_handle_cb, &real, &real_server, err, sizeof(err)),
                     0);
    real.server = real_server;
    f->port = vio_httpd_port(real_server);

    static const char *const targets[] = {"/v1/nodes?limit=1000", "/v1/nodes?offset=100&limit=700",
                                          "/v1/events?since=0&limit=1000",
                                          "/v1/events?since=1200&limit=1000"};
    for (size_t k = 0; k < sizeof(targets) / sizeof(targets[0]); k++) {
        struct ticker t = {.loop = f->floop};
        vio_source_init(&t.src, on_tick, &t);
        vio_source_ready(f->floop, &t.src);
        unsigned st1 = 0, st2 = 0;
        char *b1 = NULL, *b2 = NULL;
        assert_int_equal(fake_httpd_request(at_once, "GET", targets[k], &st1, &b1), 0);
        unsigned before = t.turns;
        assert_int_equal(fake_httpd_request(sliced.server, "GET", targets[k], &st2, &b2), 0);
        vio_source_cancel(f->floop, &t.src);
        if (st1 != 200 || st2 != 200)
            fail_msg("%s: %u %u %s", targets[k], st1, st2, b2);
        json_error_t e;
        json_t *d1 = json_loads(b1, 0, &e), *d2 = json_loads(b2, 0, &e);
        assert_non_null(d1);
        assert_non_null(d2);
        if (!json_equal(d1, d2))
            fail_msg("%s: sliced answer differs:\n%.300s\n%.300s", targets[k], b1, b2);
        /* 300 to 1000 items at 256 a turn: the loop turned meanwhile, once per slice or more. */
        assert_true(t.turns - before >= (k == 3 ? 2u : 3u));
        /* The real server's clock is another: the same nodes or events, in the same order. */
        json_t *d3 = real_get(f, targets[k]);
        bool nodes = json_object_get(d1, "nodes") != NULL;
        json_t *a1 = json_object_get(d1, nodes ? "nodes" : "events");
        json_t *a3 = json_object_get(d3, nodes ? "nodes" : "events");
        assert_int_equal(json_array_size(a1), json_array_size(a3));
        assert_true(json_array_size(a1) > 0);
        for (size_t i = 0; i < json_array_size(a1); i++)
            assert_true(json_equal(json_object_get(json_array_get(a1, i), nodes ? "id" : "seq"),
                                   json_object_get(json_array_get(a3, i), nodes ? "id" : "seq")));
        assert_true(json_equal(json_object_get(d1, nodes ? "next" : "last_seq"),
                               json_object_get(d3, nodes ? "next" : "last_seq")));
        json_decref(d1);
        json_decref(d2);
        json_decref(d3);
        free(b1);
        free(b2);
    }
    /*
     * The metrics of 1000 nodes (9000 node rows) are built in slices too:
     * the per-node families are the same text as built at once, and a
     * valid exposition through the real server.
     */
    struct ticker t = {.loop = f->floop};
    vio_source_init(&t.src, on_tick, &t);
    vio_source_ready(f->floop, &t.src);
    unsigned st1 = 0, st2 = 0;
    char *b1 = NULL, *b2 = NULL;
    assert_int_equal(fake_httpd_request(at_once, "GET", "/metrics", &st1, &b1), 0);
    unsigned before = t.turns;
    assert_int_equal(fake_httpd_request(sliced.server, "GET", "/metrics", &st2, &b2), 0);
    vio_source_cancel(f->floop, &t.src);
    assert_int_equal(st1, 200);
    assert_int_equal(st2, 200);
    assert_true(t.turns - before >= 2);
    const char *p1 = strstr(b1, "# HELP vigil_node_state "),
               *p2 = strstr(b2, "# HELP vigil_node_state ");
    assert_non_null(p1);
    assert_non_null(p2);
    assert_string_equal(p1, p2);
    assert_int_equal(check_exposition(b2), check_exposition(b1));
    assert_true(has_line(b2, "vigil_node_state{node=\"n0999\",state=\"unknown\"} 1"));
    assert_true(has_line(b2, "vigil_node_generation{node=\"n0999\"} 0"));
    char *b3 = real_get_text(f, "/metrics");
    assert_int_equal(check_exposition(b3), check_exposition(b1));
    free(b1);
    free(b2);
    free(b3);
    /* With nodes=0 there is nothing long to build: answered at once. */
    assert_int_equal(fake_httpd_request(sliced.server, "GET", "/metrics?nodes=0", &st2, &b2), 0);
    assert_int_equal(st2, 200);
    free(b2);

    /* Every one of them was long enough to be built in slices (the last holds 300 events). */
    assert_int_equal(sliced.deferred, 5);
    assert_int_equal(real.deferred, 5);
    api_abort(&real);
    vio_httpd_close(real_server);
    api_abort(&sliced);
    vio_httpd_close(sliced.server);
    vio_httpd_close(at_once);
    evlog_free(log);
    vigil_monitor_free(big);
}

int main(void)
{
    /* A closed connection while writing must not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes_paged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_detail_and_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_path_and_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_since_and_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ui_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_with_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_json_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_parameters, setup, teardown),
        cmocka_unit_test(test_token_file),
        cmocka_unit_test_setup_teardown(test_mutating_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_per_address_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_glue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_answers_in_slices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_body_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_status_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_status_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_config_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_events_follow, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    return rc;
}
