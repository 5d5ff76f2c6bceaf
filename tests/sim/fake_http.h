/*
 * Fake HTTP for tests and the simulator: a server whose handler a test
 * calls directly, and a client whose requests a test answers.
 *
 * The fake server (struct vio_httpd) opens no socket. A test issues a
 * request with fake_httpd_request(); it goes straight to the registered
 * handler, on the caller's thread, as the real server would hand it over
 * (method, decoded path, raw query string, body), and the response comes
 * back whole.
 *
 * The fake client (struct vio_http) sends nothing either. Each request is
 * recorded and handed at once to a C function the test registered, which
 * decides the answer (a status and a body, or an error) and how long it
 * takes in virtual time; the answer is delivered by a timer on the loop,
 * so the caller's done runs from the loop as with the real client. An
 * answer slower than the request's timeout becomes -ETIMEDOUT at the
 * timeout instead.
 */
#ifndef VIGIL_SIM_FAKE_HTTP_H
#define VIGIL_SIM_FAKE_HTTP_H

#include "io/vio.h"

/* ---- the server ---- */

/*
 * Same contract as vio_httpd_mhd_open, without a socket: addr must parse
 * ("IP:PORT", "[IPv6]:PORT"); port 0 is given a made-up port.
 */
int fake_httpd_open(struct vio_loop *l, const char *addr, vio_http_handler handler, void *arg,
                    struct vio_httpd **out, char *err, size_t cap);

/* A whole response as a client sees it. Free with fake_http_reply_free. */
struct fake_http_reply {
    unsigned status;
    char content_type[128]; /* "" when none */
    char headers[512];      /* the extra header lines, each ending in "\n" */
    char *body;             /* NUL terminated, never NULL */
    size_t body_len;
};
void fake_http_reply_free(struct fake_http_reply *r);

/*
 * Calls the handler with method and target (a handler that defers its
 * answer gets it built by turning the server's loop at the current virtual
 * time until vio_httpd_respond comes) ("/v1/nodes?limit=10": the
 * path is percent-decoded as a real server does, the query passed raw).
 * Fills *status and *body (malloc'd, NUL terminated; the caller frees);
 * either may be NULL. Returns 0, or -VIGIL_ENOMEM.
 */
int fake_httpd_request(struct vio_httpd *h, const char *method, const char *target,
                       unsigned *status, char **body);
/* The same with a request body and the whole reply. */
int fake_httpd_request_full(struct vio_httpd *h, const char *method, const char *target,
                            const char *body, size_t body_len, struct fake_http_reply *reply);
/* The same with an Authorization header (NULL: none). */
int fake_httpd_request_auth(struct vio_httpd *h, const char *method, const char *target,
                            const char *authorization, const char *body, size_t body_len,
                            struct fake_http_reply *reply);
/* Requests the server has answered. */
uint64_t fake_httpd_requests(const struct vio_httpd *h);

/* ---- the client ---- */

/* What the test's function answers; comes zeroed (status 0 and no error: 200). */
struct fake_http_answer {
    int error;       /* -errno: no response (-ECONNREFUSED, ...) */
    const char *why; /* with error; static; NULL: strerror */
    long status;     /* HTTP status */
    char *body;      /* malloc'd (the fake frees it), or NULL */
    size_t body_len;
    vigil_time_t delay; /* virtual time until the answer arrives */
};

/* Decides the answer to one request (called from start, once per request). */
typedef void (*fake_http_answer_fn)(void *arg, const struct vio_http_call *call,
                                    struct fake_http_answer *ans);

/* One request, as recorded (strings copied). */
struct fake_http_record {
    char *method;
    char *url;
    char **headers; /* n_headers lines */
    size_t n_headers;
    char *body;
    size_t body_len;
    vigil_time_t timeout; /* the call's, 0 if it named none */
    vigil_time_t started;
    vigil_time_t finished; /* -1 until done ran (or if the client closed first) */
    int error;             /* what done was told */
    long status;
};

/* A client on l; fn NULL: every request is refused (-ECONNREFUSED) after no delay. */
struct vio_http *fake_http_new(struct vio_loop *l, fake_http_answer_fn fn, void *arg);
/* Requests started so far, and each of them. */
size_t fake_http_calls(const struct vio_http *c);
const struct fake_http_record *fake_http_call_at(const struct vio_http *c, size_t i);
/* Requests started whose done has not run yet. */
size_t fake_http_in_flight(const struct vio_http *c);

#endif
