/*
 * The HTTP client on libcurl (src/io/http_curl.c) against the real HTTP
 * server (src/io/httpd_mhd.c) on loopback, both on one real epoll loop on
 * this thread: requests and answers, errors without an answer (refused,
 * timed out, too long, a refused protocol), several at once, and closing
 * with requests in flight. Every wait is bounded by a guard timer.
 *
 * Two small tests of the loop itself sit here too, because the client is
 * what needs them: a source may cancel (and free) another ready in the same
 * turn, and a loop stopped in the middle of a turn runs the rest next time.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <vigil/vigil.h>

#include "fake_loop.h"
#include "io/real.h"

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC

/* Upper bound for anything that waits on the loopback: far beyond any real answer time. */
#define WAIT_LIMIT (10 * S)

struct fixture {
    struct vio_loop *loop;
    struct vio_httpd *httpd;
    struct vio_http *client;
    uint16_t port;
    unsigned handled;
};

/* The test server: /echo says what it got, /missing is 404, /big is 100 KiB. */
static void handler(void *arg, const struct vio_http_request *req, struct vio_http_response *resp)
{
    struct fixture *f = arg;
    f->handled++;
    if (!strcmp(req->path, "/echo")) {
        size_t cap = strlen(req->method) + strlen(req->query) + req->body_len + 8;
        resp->body = malloc(cap);
        assert_non_null(resp->body);
        resp->body_len =
            (size_t)snprintf(resp->body, cap, "%s|%s|%s", req->method, req->query, req->body);
        resp->status = 200;
        resp->content_type = "text/plain";
    } else if (!strcmp(req->path, "/big")) {
        resp->body_len = 100 * 1024;
        resp->body = malloc(resp->body_len);
        assert_non_null(resp->body);
        memset(resp->body, 'b', resp->body_len);
        resp->status = 200;
    } else {
        resp->body = strdup("nope");
        resp->body_len = 4;
        resp->status = 404;
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(vio_loop_epoll_new(&f->loop), 0);
    char err[256];
    if (vio_httpd_mhd_open(f->loop, &(struct vio_httpd_opts){.addr = "127.0.0.1:0"}, handler, f,
                           &f->httpd, err, sizeof(err)))
        fail_msg("%s", err);
    f->port = vio_httpd_port(f->httpd);
    assert_int_equal(vio_http_curl_new(f->loop, &f->client), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vio_http_close(f->client);
    vio_httpd_close(f->httpd);
    vio_loop_free(f->loop);
    free(f);
    return 0;
}

/* One finished request, as done saw it. */
struct outcome {
    struct vio_loop *loop;
    bool done;
    int calls;
    int error;
    char why[256];
    long status;
    char *body;
    size_t len;
    vigil_time_t at;
    size_t *pending; /* with several at once: stop when it reaches 0 */
};

static void on_done(void *arg, const struct vio_http_result *res)
{
    struct outcome *o = arg;
    o->calls++;
    o->done = true;
    o->error = res->error;
    o->status = res->status;
    snprintf(o->why, sizeof(o->why), "%s", res->why ? res->why : "");
    o->body = malloc(res->body_len + 1);
    assert_non_null(o->body);
    memcpy(o->body, res->body, res->body_len);
    o->body[res->body_len] = '\0';
    o->len = res->body_len;
    o->at = vio_now(o->loop);
    if (!o->pending || --*o->pending == 0)
        vio_loop_stop(o->loop);
}

static void on_guard(void *arg, vigil_time_t now)
{
    (void)now;
    vio_loop_stop(arg);
}

/* Runs the loop until stopped (by done) or the guard fires. */
static void run_bounded(struct fixture *f, vigil_time_t limit)
{
    struct vio_timer guard;
    vio_timer_init(&guard, on_guard, f->loop);
    assert_int_equal(vio_timer_arm(f->loop, &guard, vio_now(f->loop) + limit), 0);
    assert_int_equal(vio_loop_run(f->loop), 0);
    vio_timer_disarm(f->loop, &guard);
}

static struct outcome fetch(struct fixture *f, const struct vio_http_call *call)
{
    struct outcome o = {.loop = f->loop};
    assert_int_equal(vio_http_start(f->client, call, on_done, &o), 0);
    run_bounded(f, WAIT_LIMIT);
    if (!o.done)
        fail_msg("%s: no answer in time", call->url);
    assert_int_equal(o.calls, 1);
    return o;
}

static void url_of(struct fixture *f, const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "http://127.0.0.1:%u%s", f->port, path);
}

static void test_get_and_post(void **state)
{
    struct fixture *f = *state;
    char url[128];
    url_of(f, "/echo?a=1&b=%32", url, sizeof(url));
    struct vio_http_call get = {.url = url};
    struct outcome o = fetch(f, &get);
    assert_int_equal(o.error, 0);
    assert_int_equal(o.status, 200);
    assert_string_equal(o.body, "GET|a=1&b=%32|");
    free(o.body);

    static const char *const headers[] = {"Content-Type: application/json", NULL};
    static const char body[] = "{\"x\":1}";
    struct vio_http_call post = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = sizeof(body) - 1,
    };
    o = fetch(f, &post);
    assert_int_equal(o.error, 0);
    assert_int_equal(o.status, 200);
    assert_string_equal(o.body, "POST|a=1&b=%32|{\"x\":1}");
    free(o.body);

    /* Another method with a body; and HEAD, which gets no body. */
    post.method = "PUT";
    o = fetch(f, &post);
    assert_string_equal(o.body, "PUT|a=1&b=%32|{\"x\":1}");
    free(o.body);
    struct vio_http_call head = {.method = "HEAD", .url = url};
    o = fetch(f, &head);
    assert_int_equal(o.error, 0);
    assert_int_equal(o.status, 200);
    assert_int_equal(o.len, 0);
    free(o.body);
}

static void test_not_found(void **state)
{
    struct fixture *f = *state;
    char url[128];
    url_of(f, "/missing", url, sizeof(url));
    struct vio_http_call call = {.url = url};
    struct outcome o = fetch(f, &call);
    /* An answer is an answer: the status says what it was. */
    assert_int_equal(o.error, 0);
    assert_int_equal(o.status, 404);
    assert_string_equal(o.body, "nope");
    free(o.body);
}

/* A port nobody listens on: bind one, note it, close it. */
static uint16_t closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    getsockname(s, (struct sockaddr *)&sin, &len);
    close(s);
    return ntohs(sin.sin_port);
}

static void test_refused(void **state)
{
    struct fixture *f = *state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", closed_port());
    struct vio_http_call call = {.url = url};
    struct outcome o = fetch(f, &call);
    assert_int_equal(o.error, -ECONNREFUSED);
    assert_string_equal(o.why, strerror(ECONNREFUSED));
    assert_int_equal(o.len, 0);
    free(o.body);
}

/* A server that accepts connections (the kernel does) and never answers. */
static void test_timeout(void **state)
{
    struct fixture *f = *state;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(s, 8), 0);
    socklen_t len = sizeof(sin);
    getsockname(s, (struct sockaddr *)&sin, &len);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", ntohs(sin.sin_port));
    struct vio_http_call call = {.url = url, .timeout = 300 * MS};
    vigil_time_t t0 = vio_now(f->loop);
    struct outcome o = fetch(f, &call);
    assert_int_equal(o.error, -ETIMEDOUT);
    assert_true(o.why[0] != '\0');
    /* Not before the timeout; well before the guard. */
    assert_true(o.at - t0 >= 300 * MS);
    assert_true(o.at - t0 < 5 * S);
    free(o.body);
    close(s);
}

static void test_bounds(void **state)
{
    struct fixture *f = *state;
    char url[128];
    url_of(f, "/big", url, sizeof(url));
    struct vio_http_call call = {.url = url, .body_max = 1000};
    struct outcome o = fetch(f, &call);
    assert_int_equal(o.error, -EFBIG);
    free(o.body);
    /* The default bound (1 MiB) takes it. */
    call.body_max = 0;
    o = fetch(f, &call);
    assert_int_equal(o.error, 0);
    assert_int_equal(o.len, 100 * 1024);
    free(o.body);

    /* Only http and https. */
    struct vio_http_call ftp = {.url = "ftp://127.0.0.1/x"};
    o = fetch(f, &ftp);
    assert_int_equal(o.error, -EINVAL);
    free(o.body);
    struct vio_http_call file = {.url = "file:///etc/passwd"};
    o = fetch(f, &file);
    assert_int_equal(o.error, -EINVAL);
    free(o.body);
}

static void test_several_at_once(void **state)
{
    struct fixture *f = *state;
    enum { N = 8 };
    struct outcome o[N];
    size_t pending = N;
    char urls[N][128];
    for (int i = 0; i < N; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/echo?i=%d", i);
        url_of(f, path, urls[i], sizeof(urls[i]));
        memset(&o[i], 0, sizeof(o[i]));
        o[i].loop = f->loop;
        o[i].pending = &pending;
        struct vio_http_call call = {.url = urls[i]};
        assert_int_equal(vio_http_start(f->client, &call, on_done, &o[i]), 0);
    }
    run_bounded(f, WAIT_LIMIT);
    assert_int_equal(pending, 0);
    for (int i = 0; i < N; i++) {
        char want[32];
        snprintf(want, sizeof(want), "GET|i=%d|", i);
        assert_int_equal(o[i].calls, 1);
        assert_string_equal(o[i].body, want);
        free(o[i].body);
    }
}

static void never_called(void *arg, const struct vio_http_result *res)
{
    (void)arg;
    (void)res;
    fail_msg("done called after close");
}

/* Closing cancels what is in flight: done is not called, nothing leaks. */
static void test_close_in_flight(void **state)
{
    struct fixture *f = *state;
    char url[128];
    url_of(f, "/echo", url, sizeof(url));
    struct vio_http_call call = {.url = url};
    assert_int_equal(vio_http_start(f->client, &call, never_called, NULL), 0);
    assert_int_equal(vio_http_start(f->client, &call, never_called, NULL), 0);
    /* Let it connect and send, not finish: one short turn. */
    struct vio_timer guard;
    vio_timer_init(&guard, on_guard, f->loop);
    vio_timer_arm(f->loop, &guard, vio_now(f->loop));
    vio_loop_run(f->loop);
    vio_http_close(f->client);
    f->client = NULL;
    /* The loop goes on without it, and the server still answers others. */
    assert_int_equal(vio_http_curl_new(f->loop, &f->client), 0);
    struct outcome o = fetch(f, &call);
    assert_int_equal(o.status, 200);
    free(o.body);
}

static void close_from_done(void *arg, const struct vio_http_result *res)
{
    struct fixture *f = arg;
    assert_int_equal(res->status, 200);
    vio_http_close(f->client);
    f->client = NULL;
    vio_loop_stop(f->loop);
}

/* Closing the client from its own done callback. */
static void test_close_from_done(void **state)
{
    struct fixture *f = *state;
    char url[128];
    url_of(f, "/echo", url, sizeof(url));
    struct vio_http_call call = {.url = url};
    assert_int_equal(vio_http_start(f->client, &call, close_from_done, f), 0);
    assert_int_equal(vio_http_start(f->client, &call, never_called, NULL), 0);
    run_bounded(f, WAIT_LIMIT);
    assert_null(f->client);
}

/* ---- the loop ------------------------------------------------------------ */

struct turn {
    struct vio_loop *loop;
    struct vio_source *a, *b, *c;
    int ran_a, ran_b, ran_c;
    bool cancel_b, stop_in_a;
};

static void src_a(void *arg, vigil_time_t now)
{
    struct turn *t = arg;
    (void)now;
    t->ran_a++;
    if (t->cancel_b) {
        vio_source_cancel(t->loop, t->b);
        free(t->b);
        t->b = NULL;
    }
    if (t->stop_in_a)
        vio_loop_stop(t->loop);
}

static void src_b(void *arg, vigil_time_t now)
{
    (void)now;
    ((struct turn *)arg)->ran_b++;
}

static void src_c(void *arg, vigil_time_t now)
{
    (void)now;
    ((struct turn *)arg)->ran_c++;
}

static void test_loop_cancel_in_turn(void **state)
{
    (void)state;
    vigil_time_t clock = 0;
    struct turn t = {.loop = fake_loop_new(&clock), .cancel_b = true};
    struct vio_source a, c;
    t.a = &a;
    t.c = &c;
    t.b = malloc(sizeof(*t.b));
    vio_source_init(&a, src_a, &t);
    vio_source_init(t.b, src_b, &t);
    vio_source_init(&c, src_c, &t);
    vio_source_ready(t.loop, &a);
    vio_source_ready(t.loop, t.b);
    vio_source_ready(t.loop, &c);
    /* a cancels and frees b, which was ready in the same turn: c still runs. */
    fake_loop_step(t.loop);
    assert_int_equal(t.ran_a, 1);
    assert_int_equal(t.ran_b, 0);
    assert_int_equal(t.ran_c, 1);
    assert_int_equal(fake_loop_next(t.loop), VIGIL_TIME_NEVER);
    vio_loop_free(t.loop);
}

/* A real loop stopped by one source runs the others of that turn when run again. */
static void test_loop_stop_keeps_the_rest(void **state)
{
    struct fixture *f = *state;
    struct turn t = {.loop = f->loop, .stop_in_a = true};
    struct vio_source a, b;
    t.a = &a;
    t.b = &b;
    vio_source_init(&a, src_a, &t);
    vio_source_init(&b, src_b, &t);
    vio_source_ready(f->loop, &a);
    vio_source_ready(f->loop, &b);
    assert_int_equal(vio_loop_run(f->loop), 0);
    assert_int_equal(t.ran_a, 1);
    assert_int_equal(t.ran_b, 0);
    assert_true(b.ready);
    /* The stop was consumed: the loop runs again, b first. */
    t.stop_in_a = false;
    vio_source_ready(f->loop, &a);
    struct vio_timer guard;
    vio_timer_init(&guard, on_guard, f->loop);
    vio_timer_arm(f->loop, &guard, vio_now(f->loop) + 10 * MS);
    assert_int_equal(vio_loop_run(f->loop), 0);
    assert_int_equal(t.ran_a, 2);
    assert_int_equal(t.ran_b, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_and_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_done, setup, teardown),
        cmocka_unit_test(test_loop_cancel_in_turn),
        cmocka_unit_test_setup_teardown(test_loop_stop_keeps_the_rest, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
