/*
 * The monitor's HTTP API, as a handler of the vio HTTP server (src/io/vio.h):
 * it answers one whole request with one whole response and never touches a
 * socket. JSON everywhere:
 *   GET /v1/nodes?offset=N&limit=M   the nodes, a page at a time
 *   GET /v1/nodes/ID                 one node, with its last events
 *   GET /v1/events?since=N&limit=M   events with seq > N (oldest first)
 *   GET /v1/health                   the monitor's own health and counters
 *   GET /metrics                     the same counters, and per node, for Prometheus
 *   GET / and /ui                    a web page of the cluster (HTML; api_ui.c)
 *   POST /v1/keys/reload             reads the keys again (needs the token)
 *
 * Reading needs nothing; every other method needs "Authorization: Bearer
 * TOKEN" (403 when the monitor has no token, 401 when it is missing or
 * wrong). The program opens the server as its settings say with api_open.
 */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include "config.h"
#include "evlog.h"
#include "hooks.h"
#include "io/vio.h"

/*
 * Room for the web page's Content-Security-Policy header: its directives
 * and two hashes take about 250 bytes.
 */
#define API_UI_CSP_MAX 512
/* The web page's headers, with the NULL that ends them. */
#define API_UI_HEADERS 6

/* What the API reads. Owned by the monitor program; all pointers outlive the server. */
struct check_set;
struct rchecks;

struct api_ctx {
    struct vigil_monitor *mon;
    struct evlog *events;
    struct hook_runner *hooks; /* may be NULL */
    struct actlog *actlog;     /* the record of actions (NULL with no actions) */
    struct holds *holds;       /* nodes in maintenance or flapping (NULL: none kept) */
    /* POST /v1/maint/NODE: len 0 off, VIGIL_TIME_NEVER until told. 0, or -1 with err. */
    int (*maint)(void *ud, const char *node, vigil_time_t len, char *err, size_t cap);
    void *maint_ud;
    struct groups *groups;    /* failover groups (NULL: none) */
    struct check_set *checks; /* monitor.checks (NULL: none) */
    struct rchecks *rchecks;  /* the checks agents report (NULL: none) */
    /* POST /v1/groups/NAME/failover: a planned switchover (to NULL: the best replica). */
    int (*failover)(void *ud, const char *group, const char *to, char *err, size_t cap);
    void *failover_ud;
    /* monitor.etcd: the election and the action gate (NULL: this monitor acts alone). */
    struct leader *leader;
    struct actgate *gate;
    char name[VIGIL_ID_MAX + 1]; /* this monitor's name among its peers ("" without etcd) */
    struct vio_loop *loop;       /* the clocks the answers are computed against */
    vigil_time_t started_mono;   /* when the monitor started */
    int64_t started_wall_us;
    uint64_t recv_errors;      /* socket receive errors (the program updates it) */
    uint64_t recv_drops;       /* datagrams the kernel dropped for a full receive buffer */
    uint64_t dropped_log;      /* events the log could not write */
    const struct drops *drops; /* this minute's dropped datagrams (GET /v1/drops); may be NULL */
    /*
     * The token that changing state needs (api_open reads it; NULL: every
     * such call is answered 403), and whether the API speaks HTTPS.
     */
    struct api_token *token;
    bool tls;
    uint64_t auth_failures; /* calls answered 401 (no token, or a wrong one) */
    /*
     * POST /v1/keys/reload: reads the keys again. Returns 0, or nonzero with
     * the reason in err (cap bytes). NULL: answered 501, not implemented.
     */
    int (*reload_keys)(void *ud, char *err, size_t cap);
    void *reload_keys_ud;
    /*
     * Peer-to-peer mode (vigil peer; NULL: a monitor): GET /v1/members,
     * the membership as this member sees it, and the "peer" member of
     * /v1/health; peer_auth names how the members authenticate ("cluster"
     * or "none").
     */
    json_t *(*peer_members)(void *ud, vigil_time_t now);
    json_t *(*peer_health)(void *ud, vigil_time_t now);
    /* The protocol's metrics, Prometheus text (malloc'd; NULL: none), added to /metrics. */
    char *(*peer_metrics)(void *ud);
    void *peer_ud;
    const char *peer_auth;
    /*
     * The server answering through api_handle, for long answers built a
     * slice per turn (NULL: every answer is built at once). Private below.
     */
    struct vio_httpd *server;
    struct api_job *jobs, *jobs_tail;
    struct api_job *waiters; /* long polls of /v1/events waiting for an event */
    size_t n_waiters;
    struct vio_timer wait_timer;
    struct vio_source work;
    uint64_t deferred; /* answers built in slices so far */
    /*
     * The web page's headers (api_ui.c), set on its first request: the
     * Content-Security-Policy names the hashes of the page's inline script
     * and style. Zeroed: not set yet.
     */
    char ui_csp[API_UI_CSP_MAX];
    const char *ui_headers[API_UI_HEADERS];
};

/*
 * Opens the API's server on mc->api as mc says: its token file and HTTPS
 * (certificate and key files), read through env->fs; sets c->server,
 * c->token and c->tls. Returns 0, or -1 with the reason in err (naming the
 * setting). The caller closes the server (api_abort first), then frees
 * c->token with api_token_free.
 */
int api_open(struct api_ctx *c, struct vio_env *env, const struct vcfg_monitor *mc,
             struct vio_httpd **out, char *err, size_t cap);

/*
 * The API's token (api_auth.c). A token is 16 to 256 printable ASCII
 * characters without spaces (in its file, white space around it is
 * ignored): 16 random hex digits are 64 bits, and 256 characters is more
 * than any generator writes.
 */
#define API_TOKEN_MIN 16
#define API_TOKEN_MAX 256
struct api_token;
/*
 * Reads a token file: a regular file only its owner may read, holding one
 * token. Returns 0 with *out (sodium_malloc'd, read-only), or -1 with the
 * reason in err (never the token).
 */
int api_token_load(struct vio_fs *fs, const char *path, struct api_token **out, char *err,
                   size_t cap);
/* Wipes and frees t (NULL is fine). */
void api_token_free(struct api_token *t);
/* The token, for a client to send; valid until t is freed. */
const char *api_token_value(const struct api_token *t);
/*
 * True when authorization (an Authorization header, or NULL) is "Bearer
 * TOKEN" with t's token; compared in time independent of the token.
 */
bool api_token_check(const struct api_token *t, const char *authorization);

/* Sets up the context's work source; call once before the server opens. */
void api_init(struct api_ctx *c);
/*
 * Answers every long answer still being built with 503, and every long
 * poll at once; call before closing the server.
 */
void api_abort(struct api_ctx *c);
/* New events are in the history: answers the long polls waiting for them. */
void api_events_wake(struct api_ctx *c);

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
/*
 * GET /v1/events?since=N&wait=S: a long poll, answered as soon as an event
 * after N exists, or after S seconds (at most 60) with none. At most 256
 * wait at once; another is answered at once (the client asks again).
 */
#define API_EVENTS_MAX_WAIT_S  60
#define API_EVENTS_MAX_WAITERS 256

/* Answers one request (resp comes zeroed; its body is malloc'd for the server to free). */
void api_handle(struct api_ctx *ctx, const struct vio_http_request *req,
                struct vio_http_response *resp);

/* api_handle as a vio_http_handler: arg is the struct api_ctx. */
void api_handle_cb(void *arg, const struct vio_http_request *req, struct vio_http_response *resp);

/*
 * Answers GET / and /ui: the web page, text/html, with its
 * Content-Security-Policy (api_ui.c).
 */
void api_ui_respond(struct api_ctx *c, struct vio_http_response *resp);

/*
 * The web page, src/vigil/ui.html compiled in by cmake/embed.cmake: its
 * api_ui_html_len bytes, then a NUL.
 */
extern const unsigned char api_ui_html[];
extern const size_t api_ui_html_len;

/* JSON of one node at time now (monotonic) and wall time now_wall_us. New reference. */
json_t *api_node_json(const struct vigil_monitor *m, const struct vigil_node *n, vigil_time_t now,
                      int64_t now_wall_us);

#endif
