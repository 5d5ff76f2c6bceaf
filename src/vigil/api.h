/*
 * The monitor's HTTP API, as a handler of the vio HTTP server (src/io/vio.h):
 * it answers one whole request with one whole response and never touches a
 * socket. JSON everywhere:
 *   GET /v1/nodes?offset=N&limit=M   the nodes, a page at a time
 *   GET /v1/nodes/ID                 one node, with its last events
 *   GET /v1/events?since=N&limit=M   events with seq > N (oldest first)
 *   GET /v1/health                   the monitor's own health and counters
 *   GET /metrics                     the same counters for Prometheus
 *
 * The program opens the server and hands it the handler:
 *   env->httpd_open(env, addr, api_handle_cb, &ctx, &httpd, err, cap);
 */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include "config.h"
#include "evlog.h"
#include "hooks.h"
#include "io/vio.h"

/* What the API reads. Owned by the monitor program; all pointers outlive the server. */
struct api_ctx {
    struct vigil_monitor *mon;
    struct evlog *events;
    struct hook_runner *hooks; /* may be NULL */
    struct vio_loop *loop;     /* the clocks the answers are computed against */
    vigil_time_t started_mono; /* when the monitor started */
    int64_t started_wall_us;
    uint64_t recv_errors; /* socket receive errors (the program updates it) */
    uint64_t recv_drops;  /* datagrams the kernel dropped for a full receive buffer */
    uint64_t dropped_log; /* events the log could not write */
    /*
     * The server answering through api_handle, for long answers built a
     * slice per turn (NULL: every answer is built at once). Private below.
     */
    struct vio_httpd *server;
    struct api_job *jobs, *jobs_tail;
    struct vio_source work;
    uint64_t deferred; /* answers built in slices so far */
};

/* Sets up the context's work source; call once before the server opens. */
void api_init(struct api_ctx *c);
/* Answers every long answer still being built with 503; call before closing the server. */
void api_abort(struct api_ctx *c);

/*
 * Where the API listens when neither the file nor a flag says: loopback
 * only (reading it needs no token), at the heartbeat port plus one; the
 * port also stands in when an address names none.
 */
#define API_DEFAULT_PORT 7947
#define API_DEFAULT_ADDR "127.0.0.1:" VCFG_STR(API_DEFAULT_PORT)

/* Events in a /v1/events response when the client does not say ("limit"). */
#define API_EVENTS_DEFAULT_LIMIT 100

/*
 * Most events in one /v1/events response. The default history
 * (VCFG_EVENT_HISTORY_DEFAULT) fits; one response may carry all of it (a
 * few megabytes of JSON) but no more, so that one request cannot stall the
 * event loop for long.
 */
#define API_EVENTS_MAX_LIMIT 10000

/* Answers one request (resp comes zeroed; its body is malloc'd for the server to free). */
void api_handle(struct api_ctx *ctx, const struct vio_http_request *req,
                struct vio_http_response *resp);

/* api_handle as a vio_http_handler: arg is the struct api_ctx. */
void api_handle_cb(void *arg, const struct vio_http_request *req, struct vio_http_response *resp);

/* JSON of one node at time now (monotonic) and wall time now_wall_us. New reference. */
json_t *api_node_json(const struct vigil_monitor *m, const struct vigil_node *n, vigil_time_t now,
                      int64_t now_wall_us);

#endif
