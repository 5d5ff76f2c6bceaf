/*
 * The fake HTTP server and client (fake_http.h) in virtual time: answers
 * arrive exactly after their delay, a slow answer becomes a timeout at the
 * timeout, every call is recorded, closing cancels what is in flight, and
 * the fake server hands requests to its handler as the real one does.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_http.h"
#include "fake_loop.h"

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC

/* The webhook the tests talk to: 201 after 50 ms; /slow takes a minute; /down refuses. */
static void answer(void *arg, const struct vio_http_call *call, struct fake_http_answer *ans)
{
    int *asked = arg;
    (*asked)++;
    if (strstr(call->url, "/down")) {
        ans->error = -ECONNREFUSED;
        return;
    }
    ans->delay = strstr(call->url, "/slow") ? 60 * S : 50 * MS;
    ans->status = 201;
    ans->body = strdup("{\"ok\":true}");
    ans->body_len = strlen(ans->body);
}

struct seen {
    struct vio_loop *loop;
    int calls;
    int error;
    long status;
    char body[64];
    vigil_time_t at;
};

static void on_done(void *arg, const struct vio_http_result *res)
{
    struct seen *s = arg;
    s->calls++;
    s->error = res->error;
    s->status = res->status;
    snprintf(s->body, sizeof(s->body), "%.*s", (int)res->body_len, res->body);
    s->at = vio_now(s->loop);
}

static void test_client(void **state)
{
    (void)state;
    vigil_time_t clock = 5 * S;
    struct vio_loop *l = fake_loop_new(&clock);
    int asked = 0;
    struct vio_http *c = fake_http_new(l, answer, &asked);
    assert_non_null(c);

    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    struct vio_http_call call = {
        .method = "POST",
        .url = "http://hooks.example/event",
        .headers = hdrs,
        .body = "{}",
        .body_len = 2,
        .timeout = 2 * S,
    };
    struct seen a = {.loop = l}, b = {.loop = l}, d = {.loop = l};
    assert_int_equal(vio_http_start(c, &call, on_done, &a), 0);
    call.url = "http://hooks.example/slow";
    assert_int_equal(vio_http_start(c, &call, on_done, &b), 0);
    call.url = "http://hooks.example/down";
    assert_int_equal(vio_http_start(c, &call, on_done, &d), 0);
    assert_int_equal(asked, 3);
    assert_int_equal(fake_http_in_flight(c), 3);
    /* Nothing is delivered from start itself. */
    assert_int_equal(a.calls + b.calls + d.calls, 0);

    /* The refusal comes on the next turn; the answer not a nanosecond before 50 ms. */
    fake_loop_run_until(l, 5 * S + 50 * MS - 1);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.error, -ECONNREFUSED);
    assert_int_equal(d.at, 5 * S);
    assert_int_equal(a.calls, 0);
    fake_loop_run_until(l, 5 * S + 50 * MS);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.error, 0);
    assert_int_equal(a.status, 201);
    assert_string_equal(a.body, "{\"ok\":true}");
    assert_int_equal(a.at, 5 * S + 50 * MS);

    /* Slower than its timeout: -ETIMEDOUT at the timeout. */
    fake_loop_run_until(l, 7 * S - 1);
    assert_int_equal(b.calls, 0);
    fake_loop_run_until(l, 7 * S);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.error, -ETIMEDOUT);
    assert_int_equal(fake_http_in_flight(c), 0);

    /* The record of each call. */
    assert_int_equal(fake_http_calls(c), 3);
    const struct fake_http_record *r = fake_http_call_at(c, 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "http://hooks.example/event");
    assert_int_equal(r->n_headers, 1);
    assert_string_equal(r->headers[0], "Content-Type: application/json");
    assert_int_equal(r->body_len, 2);
    assert_string_equal(r->body, "{}");
    assert_int_equal(r->started, 5 * S);
    assert_int_equal(r->finished, 5 * S + 50 * MS);
    assert_int_equal(r->status, 201);
    assert_int_equal(fake_http_call_at(c, 1)->error, -ETIMEDOUT);
    assert_null(fake_http_call_at(c, 3));

    /* Closing with a request in flight: its done never runs. */
    call.url = "http://hooks.example/event";
    struct seen e = {.loop = l};
    assert_int_equal(vio_http_start(c, &call, on_done, &e), 0);
    vio_http_close(c);
    fake_loop_run_until(l, 10 * S);
    assert_int_equal(e.calls, 0);
    vio_loop_free(l);
}

static void echo(void *arg, const struct vio_http_request *req, struct vio_http_response *resp)
{
    static const char *const hdrs[] = {"X-Echo: yes", NULL};
    (void)arg;
    char buf[256];
    int n =
        snprintf(buf, sizeof(buf), "%s|%s|%s|%s", req->method, req->path, req->query, req->body);
    resp->status = 202;
    resp->content_type = "text/plain";
    resp->headers = hdrs;
    resp->body = strdup(buf);
    resp->body_len = (size_t)n;
}

static void test_server(void **state)
{
    (void)state;
    vigil_time_t clock = 0;
    struct vio_loop *l = fake_loop_new(&clock);
    struct vio_httpd *h;
    char err[128];
    assert_int_equal(fake_httpd_open(l, "127.0.0.1:0", echo, NULL, &h, err, sizeof(err)), 0);
    assert_true(vio_httpd_port(h) > 0);
    unsigned status;
    char *body;
    assert_int_equal(fake_httpd_request(h, "GET", "/v1/a%2Fb?x=%31&y", &status, &body), 0);
    assert_int_equal(status, 202);
    assert_string_equal(body, "GET|/v1/a/b|x=%31&y|");
    free(body);
    struct fake_http_reply r;
    assert_int_equal(fake_httpd_request_full(h, "POST", "/p", "data", 4, &r), 0);
    assert_string_equal(r.body, "POST|/p||data");
    assert_string_equal(r.content_type, "text/plain");
    assert_string_equal(r.headers, "X-Echo: yes\n");
    fake_http_reply_free(&r);
    assert_int_equal(fake_httpd_requests(h), 2);
    vio_httpd_close(h);
    vio_loop_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client),
        cmocka_unit_test(test_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
