/*
 * The monitor's HTTP API (libmicrohttpd, driven from the monitor's own event
 * loop: no extra thread touches the core). JSON everywhere:
 *   GET /v1/nodes?offset=N *   GET /v1/nodes              every nodelimit=M   the nodes, a page at
 * a time GET /v1/nodes/ID           one node, with its last events GET /v1/events?since=N&limit=M
 * events with seq > N (oldest first) GET /v1/health             the monitor's own health and
 * counters GET /metrics               the same counters for Prometheus
 */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include "config.h"
#include "evlog.h"
#include "hooks.h"

/* What the API reads. Owned by the monitor program; all pointers outlive the api. */
struct api_ctx {
    struct vigil_monitor *mon;
    struct evlog *events;
    struct hook_runner *hooks; /* may be NULL */
    vigil_time_t started_mono; /* when the monitor started */
    int64_t started_wall_us;
    uint64_t recv_errors; /* socket receive errors (the program updates it) */
    uint64_t dropped_log; /* events the log could not write */
};

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

struct api;

/* Listens on addr ("127.0.0.1:7947", "[::1]:7947"). Returns 0 or -1 with err set. */
int api_start(const char *addr, struct api_ctx *ctx, struct api **out, char *err, size_t cap);
void api_stop(struct api *a);
/* The TCP port the API listens on (the one the system chose when addr said port 0). */
uint16_t api_port(const struct api *a);
/* A file descriptor to wait on for readability (MHD's epoll fd). */
int api_fd(const struct api *a);
/* Does all pending work (call when api_fd is readable, and at api_next_deadline). */
void api_run(struct api *a);
/* When api_run must next be called for MHD's own timeouts (VIGIL_TIME_NEVER if none). */
vigil_time_t api_next_deadline(const struct api *a, vigil_time_t now);

/* JSON of one node at time now (monotonic) and wall time now_wall_us. New reference. */
json_t *api_node_json(const struct vigil_monitor *m, const struct vigil_node *n, vigil_time_t now,
                      int64_t now_wall_us);

#endif
