/*
 * `vigil status` and `vigil events`: the operator's view of a running
 * monitor, as clients of its HTTP API (the vio HTTP client on the real
 * event loop to fetch, jansson to read).
 *
 * The CLI holds no state of its own and never talks to the core: everything
 * it prints comes from the API's JSON, so what an operator sees on the
 * terminal is exactly what a script or a dashboard gets. --json prints that
 * JSON untouched for the scripts.
 *
 * `vigil status` prints one line per node, sorted by id, with durations
 * made readable (3.2s, 4m10s, 2h03m) and a summary line; with a node id it
 * prints that node's details and its recent events, so that "why is web3
 * dead?" is answered with the numbers that made the decision.
 *
 * `vigil events` prints one line per event, the same line the monitor's text
 * log writes (the API's JSON read back into the event and rendered by
 * evlog.c, as the log renders it); --follow keeps polling for new ones until interrupted. The
 * poll runs every 500 ms and a SIGINT (Ctrl-C) ends it cleanly, also in the
 * middle of a request.
 *
 * Each request is started on the HTTP client and the loop runs until it is
 * done; the loop also takes SIGINT, SIGTERM and SIGHUP (through its
 * signalfd). `vigil events` ends cleanly on INT and TERM; anything else
 * such a signal ends as it would without the loop (see on_loop_signal).
 *
 * Where is the API: --api ADDR, else the "monitor.api" setting of the file
 * given with -c, else the default 127.0.0.1:7947. The file also says
 * whether it speaks HTTPS (monitor.api_tls_cert, then also the certificate
 * to trust unless --cacert names another) and where its token is
 * (monitor.api_token_file, unless --token-file names another). An address
 * given as https://HOST:PORT is reached over HTTPS, trusting the system's
 * CAs or --cacert.
 *
 * `vigil keys reload` asks the monitor to read its keys again: the one
 * call that changes state, so it sends "Authorization: Bearer TOKEN". The
 * token is read like a key file (owner-only), kept in sodium_malloc memory
 * and sent to that call only, never with a read.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "fmt.h"
#include "api.h"
#include "cli_tools.h"
#include "cmds.h"
#include "config.h"
#include "evlog.h"
#include "io/vio.h"

/* Room for the API's base URL ("http://" and a formatted address, or what the user gave). */
#define CLI_URL_MAX 512

/*
 * Most bytes of one API response the CLI accepts. The largest answer is
 * 10000 events of about 500 bytes each; 64 MiB leaves a wide margin while a
 * wrong address that streams forever cannot eat the machine's memory.
 */
#define CLI_BODY_MAX (64u << 20)

/* A monitor on loopback answers in milliseconds; 3 s to connect means it is not there. */
#define CLI_CONNECT_TIMEOUT (3 * VIGIL_NSEC_PER_SEC)

/* Whole request, including a large event list from a busy monitor. */
#define CLI_REQUEST_TIMEOUT (15 * VIGIL_NSEC_PER_SEC)

/* Room for a file name given on the command line or in the file (--cacert, --token-file). */
#define CLI_PATH_MAX 4096

/* Room for the reason a request failed. */
#define CLI_WHY_MAX 320

/*
 * --follow waits for new events with a long poll (GET /v1/events?wait=S):
 * the monitor answers as soon as one exists. Against a monitor that
 * answers at once anyway (one without long polls) it asks again after
 * CLI_FOLLOW_INTERVAL_MS, and as often after an error.
 */
#define CLI_FOLLOW_WAIT_S      30
#define CLI_FOLLOW_INTERVAL_MS 500

/* Columns of the status table. */
enum { COL_NODE, COL_STATE, COL_FOR, COL_HEARD, COL_LEVEL, COL_LOAD, COL_MEM, COL_ADDR, NCOL };

/* Room for one cell: a node id (64) is the longest, an address (up to 55) next. */
#define CELL_MAX 80

static const char *const col_names[NCOL] = {
    "NODE", "STATE", "FOR", "LAST-HEARD", "LEVEL", "LOAD1", "MEM-AVAIL", "ADDRESS",
};

/* Set by SIGINT/SIGTERM while `vigil events` runs (from the loop: no async handler). */
static bool cli_interrupted;

/* ---- formatting ------------------------------------------------------- */

/*
 * A measured duration for the status table: whole seconds from a minute on
 * ("2h03m05s", not "2h03m05.234s"), fmt.c's form otherwise.
 */
static void table_duration(double s, char *buf, size_t cap)
{
    vigil_format_seconds(s >= 60 ? round(s) : s, buf, cap);
}

static const char *jstr(const json_t *o, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : def;
}

/* A number (integer or real); def when absent or null. */
static double jnum(const json_t *o, const char *key, double def)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : def;
}

static unsigned long long jull(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return (unsigned long long)json_integer_value(v);
    return 0;
}

/*
 * One event of the API's JSON as the monitor's text log writes it: read back
 * into the event and rendered by evlog.c, the one renderer of events. An
 * event that does not read back (not from this program's API) is shown as
 * its JSON rather than as a line with guessed fields.
 */
static void event_line(const json_t *e, char *buf, size_t cap)
{
    struct evrec r;
    if (evrec_from_json(e, &r) == 0) {
        evrec_format_text(&r, buf, cap);
        return;
    }
    char *s = json_dumps(e, JSON_COMPACT | VIGIL_JSON_REAL);
    snprintf(buf, cap, "unreadable event: %s", s ? s : "?");
    free(s);
}

static void print_event(const json_t *e, bool as_json)
{
    if (as_json) {
        char *s = json_dumps(e, JSON_COMPACT | VIGIL_JSON_REAL);
        if (s) {
            puts(s);
            free(s);
        }
        return;
    }
    char line[1024];
    event_line(e, line, sizeof(line));
    puts(line);
}

/* ---- HTTP ------------------------------------------------------------- */

struct http {
    struct vio_loop *loop;
    struct vio_http *client;
    struct vio_env *env;
    bool catch_interrupt;   /* INT and TERM end the command cleanly (vigil events) */
    char base[CLI_URL_MAX]; /* "http://127.0.0.1:7947" */
    const char *cacert;     /* CAs to trust for https (NULL: the system's) */
    /* "Authorization: Bearer TOKEN" for the calls that change state (sodium_malloc'd), or NULL. */
    char *auth;
    const char *cmd; /* "status" or "events", for messages */
    char *body;
    size_t len;
    bool quiet;           /* do not report an unreachable API (--follow already said so) */
    vigil_time_t timeout; /* of a request; 0: CLI_REQUEST_TIMEOUT */
    /* The request in flight: filled by on_done. */
    bool done;
    int error;
    long status;
    char why[CLI_WHY_MAX];
};

/*
 * TERM, INT and HUP reach the CLI through the loop. `vigil events` ends on
 * INT and TERM cleanly (the request in flight is abandoned, --follow stops);
 * otherwise the signal ends the process as it would have without the loop:
 * its default action, at once.
 */
static void on_loop_signal(void *arg, int signo)
{
    struct http *h = arg;
    if (h->catch_interrupt && (signo == SIGINT || signo == SIGTERM)) {
        cli_interrupted = true;
        vio_loop_stop(h->loop);
        return;
    }
    vio_raise_default(signo);
}

static void on_done(void *arg, const struct vio_http_result *res)
{
    struct http *h = arg;
    h->done = true;
    h->error = res->error;
    h->status = res->status;
    if (res->error) {
        snprintf(h->why, sizeof(h->why), "%s", res->why ? res->why : "request failed");
    } else {
        h->body = malloc(res->body_len + 1);
        if (h->body) {
            memcpy(h->body, res->body, res->body_len);
            h->body[res->body_len] = '\0';
            h->len = res->body_len;
        } else {
            h->error = -ENOMEM;
            snprintf(h->why, sizeof(h->why), "out of memory");
        }
    }
    vio_loop_stop(h->loop);
}

/*
 * Turns what the user gave (an address, or a URL) into the API's base URL;
 * an address without a scheme gets https:// when https, else http://.
 */
static int api_base_url(const char *api, bool https, char *out, size_t cap)
{
    struct vigil_addr a;
    size_t n;
    const char *scheme = https ? "https" : "http";
    if (!strncmp(api, "http://", 7) || !strncmp(api, "https://", 8)) {
        n = (size_t)snprintf(out, cap, "%s", api);
    } else if (vigil_addr_parse(api, API_DEFAULT_PORT, &a) == 0) {
        char buf[64];
        vigil_addr_format(&a, buf, sizeof(buf));
        n = (size_t)snprintf(out, cap, "%s://%s", scheme, buf);
    } else {
        /* A host name ("localhost:7947"): the HTTP client resolves it. */
        n = (size_t)snprintf(out, cap, "%s://%s", scheme, api);
    }
    if (n >= cap)
        return -1;
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
    return 0;
}

/* Where and how to reach the API: the flags, then the -c file. */
struct cli_target {
    char addr[CLI_URL_MAX];        /* an address, or a URL */
    bool https;                    /* the file serves HTTPS (monitor.api_tls_cert) */
    char cacert[CLI_PATH_MAX];     /* "": the system's CAs */
    char token_file[CLI_PATH_MAX]; /* "": none known */
};

static int http_init(struct http *h, const char *cmd, const struct cli_target *t,
                     bool catch_interrupt)
{
    memset(h, 0, sizeof(*h));
    h->cmd = cmd;
    h->catch_interrupt = catch_interrupt;
    h->cacert = t->cacert[0] ? t->cacert : NULL;
    cli_interrupted = false;
    if (api_base_url(t->addr, t->https, h->base, sizeof(h->base)) != 0) {
        fprintf(stderr, "vigil %s: API address too long: %s\n", cmd, vigil_quote(t->addr).s);
        return -1;
    }
    /* The loop blocks the signals it takes; freeing it gives the mask back. */
    int rc = vio_env_real_new(&h->env, false);
    if (rc) {
        fprintf(stderr, "vigil %s: cannot start the event loop: %s\n", cmd, strerror(-rc));
        return -1;
    }
    h->loop = h->env->loop;
    vio_loop_on_signal(h->loop, on_loop_signal, h);
    if (h->env->http_open(h->env, &h->client) != 0) {
        fprintf(stderr, "vigil %s: cannot initialise libcurl\n", cmd);
        return -1;
    }
    return 0;
}

static void http_free(struct http *h)
{
    /* Closing the client abandons a request still in flight (after an interrupt). */
    vio_http_close(h->client);
    h->client = NULL;
    vio_env_real_free(h->env);
    h->env = NULL;
    h->loop = NULL;
    free(h->body);
    h->body = NULL;
    if (h->auth)
        sodium_free(h->auth); /* wiped as it is freed */
    h->auth = NULL;
}

/*
 * Sends method to base + path (with the token when authorized): starts the
 * request and runs the loop until it is done or the user interrupts.
 * Returns the HTTP status with the body in h->body, or -1 when no answer
 * came (the reason in why).
 */
static long http_call(struct http *h, const char *method, const char *path, bool authorized,
                      char *why, size_t cap)
{
    char url[CLI_URL_MAX + 128];
    snprintf(url, sizeof(url), "%s%s", h->base, path);
    free(h->body);
    h->body = NULL;
    h->len = 0;
    h->done = false;
    h->error = 0;
    h->why[0] = '\0';
    if (cli_interrupted) {
        snprintf(why, cap, "interrupted");
        return -1;
    }
    const char *headers[] = {authorized ? h->auth : NULL, NULL};
    struct vio_http_call call = {
        .method = method,
        .url = url,
        .headers = headers[0] ? headers : NULL,
        .timeout = h->timeout ? h->timeout : CLI_REQUEST_TIMEOUT,
        .connect_timeout = CLI_CONNECT_TIMEOUT,
        .body_max = CLI_BODY_MAX,
        .cainfo = h->cacert,
    };
    int rc = vio_http_start(h->client, &call, on_done, h);
    if (rc) {
        snprintf(why, cap, "%s", strerror(-rc));
        return -1;
    }
    while (!h->done && !cli_interrupted) {
        rc = vio_loop_run(h->loop);
        if (rc < 0) {
            snprintf(why, cap, "waiting failed: %s", strerror(-rc));
            return -1;
        }
    }
    if (!h->done) {
        snprintf(why, cap, "interrupted");
        return -1;
    }
    if (h->error == -EFBIG) {
        snprintf(why, cap, "answer larger than %u MiB", CLI_BODY_MAX >> 20);
        return -1;
    }
    if (h->error) {
        snprintf(why, cap, "%s", h->why);
        return -1;
    }
    if (!h->body) {
        h->body = calloc(1, 1);
        if (!h->body) {
            snprintf(why, cap, "out of memory");
            return -1;
        }
    }
    return h->status;
}

/*
 * Sends method to path (with the token when authorized) and parses the
 * JSON answer of a 200. On any failure prints why and returns NULL. The
 * raw text stays available in h->body.
 */
static json_t *api_call_json(struct http *h, const char *method, const char *path, bool authorized)
{
    char why[CLI_WHY_MAX + 64];
    long status = http_call(h, method, path, authorized, why, sizeof(why));
    if (status < 0) {
        if (!cli_interrupted && !h->quiet)
            fprintf(stderr, "vigil %s: cannot reach the monitor API at %s: %s\n", h->cmd, h->base,
                    why);
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(h->body, h->len, 0, &jerr);
    if (status != 200) {
        const char *msg = json_string_value(json_object_get(doc, "error"));
        if (msg) /* from whatever answers at that address: bounded, escaped */
            fprintf(stderr, "vigil %s: %s\n", h->cmd, vigil_quote_msg(msg).s);
        else
            fprintf(stderr, "vigil %s: the monitor API at %s answered HTTP %ld\n", h->cmd, h->base,
                    status);
        json_decref(doc);
        return NULL;
    }
    if (!json_is_object(doc)) {
        fprintf(stderr, "vigil %s: the monitor API at %s sent invalid JSON: %s\n", h->cmd, h->base,
                doc ? "not an object" : jerr.text);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* GETs path and parses the JSON answer of a 200 (see api_call_json). */
static json_t *api_get_json(struct http *h, const char *path)
{
    return api_call_json(h, "GET", path, false);
}

/*
 * Every node, page by page (the API serves at most a page per request so
 * that no request holds up the monitor's detection loop). Returns one
 * document {"now", "total", "nodes": [...]} or NULL after printing why.
 */
static json_t *api_get_all_nodes(struct http *h)
{
    json_t *all = NULL;
    uint64_t offset = 0;
    /* Bounded: a table holds at most 2^24 nodes, 1000 per page. */
    for (int page = 0; page < 20000; page++) {
        char path[96];
        snprintf(path, sizeof(path), "/v1/nodes?offset=%llu&limit=1000",
                 (unsigned long long)offset);
        json_t *doc = api_get_json(h, path);
        if (!doc) {
            json_decref(all);
            return NULL;
        }
        json_t *next = json_object_get(doc, "next");
        bool more = json_is_integer(next) && json_integer_value(next) > (json_int_t)offset;
        if (more)
            offset = (uint64_t)json_integer_value(next);
        if (!all) {
            all = doc;
        } else {
            json_array_extend(json_object_get(all, "nodes"), json_object_get(doc, "nodes"));
            json_decref(doc);
        }
        if (!more)
            break;
    }
    json_object_del(all, "next");
    json_object_del(all, "offset");
    return all;
}

/*
 * Where the API is and how to reach it: --api, else monitor.api of the -c
 * file, else the default; --cacert, else the file's monitor.api_tls_cert
 * (a self-signed certificate is its own CA); --token-file, else the file's
 * monitor.api_token_file. Flags may be NULL. Returns 0, or -1 after saying why.
 */
static int find_api(const char *cmd, const char *api, const char *cfg_path, const char *cacert,
                    const char *token_file, struct cli_target *t)
{
    memset(t, 0, sizeof(*t));
    if ((cacert &&
         snprintf(t->cacert, sizeof(t->cacert), "%s", cacert) >= (int)sizeof(t->cacert)) ||
        (token_file && snprintf(t->token_file, sizeof(t->token_file), "%s", token_file) >=
                           (int)sizeof(t->token_file))) {
        fprintf(stderr, "vigil %s: file name too long\n", cmd);
        return -1;
    }
    if (!cfg_path) {
        snprintf(t->addr, sizeof(t->addr), "%s", api ? api : API_DEFAULT_ADDR);
        return 0;
    }
    struct vcfg c;
    char err[512];
    vcfg_init(&c);
    c.role = "client"; /* reads settings only: no key file is read */
    if (vcfg_load(&c, cfg_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "vigil %s: %s\n", cmd, err);
        vcfg_free(&c);
        return -1;
    }
    int rc = 0;
    const struct vcfg_monitor *m = &c.monitor;
    if (api) {
        snprintf(t->addr, sizeof(t->addr), "%s", api);
    } else if (!m->api || !m->api[0] || !strcmp(m->api, "off")) {
        fprintf(stderr, "vigil %s: the monitor API is disabled in %s (monitor.api)\n", cmd,
                cfg_path);
        rc = -1;
    } else if ((size_t)snprintf(t->addr, sizeof(t->addr), "%s", m->api) >= sizeof(t->addr)) {
        fprintf(stderr, "vigil %s: monitor.api in %s is too long\n", cmd, cfg_path);
        rc = -1;
    }
    t->https = m->api_tls_cert != NULL;
    if (!t->cacert[0] && m->api_tls_cert)
        snprintf(t->cacert, sizeof(t->cacert), "%s", m->api_tls_cert);
    if (!t->token_file[0] && m->api_token_file)
        snprintf(t->token_file, sizeof(t->token_file), "%s", m->api_token_file);
    vcfg_free(&c);
    return rc;
}

/* ---- vigil status ----------------------------------------------------- */

static void node_cells(const json_t *n, char cells[NCOL][CELL_MAX])
{
    snprintf(cells[COL_NODE], CELL_MAX, "%s", jstr(n, "id", "?"));
    snprintf(cells[COL_STATE], CELL_MAX, "%s", jstr(n, "state", "?"));
    table_duration(jnum(n, "since_s", -1), cells[COL_FOR], CELL_MAX);
    double heard = jnum(n, "last_heard_s", -1);
    if (heard < 0) {
        snprintf(cells[COL_HEARD], CELL_MAX, "never");
    } else {
        char d[32];
        table_duration(heard, d, sizeof(d));
        snprintf(cells[COL_HEARD], CELL_MAX, "%s ago", d);
    }
    json_t *lv = json_object_get(n, "level");
    bool member = json_is_true(json_object_get(n, "member"));
    if (member) /* the membership protocol decides: no detector level */
        snprintf(cells[COL_LEVEL], CELL_MAX, "-");
    else if (json_is_number(lv))
        snprintf(cells[COL_LEVEL], CELL_MAX, "%.2f", json_number_value(lv));
    else
        snprintf(cells[COL_LEVEL], CELL_MAX, "inf");
    const json_t *st = json_object_get(n, "status");
    /* A sender that never sent, or that does not know its memory, has nothing to show. */
    if (jull(n, "heartbeats") == 0 && !member)
        snprintf(cells[COL_LOAD], CELL_MAX, "-");
    else
        snprintf(cells[COL_LOAD], CELL_MAX, "%.2f", jnum(st, "load1", 0));
    if (jull(st, "mem_total_kib") == 0)
        snprintf(cells[COL_MEM], CELL_MAX, "-");
    else
        snprintf(cells[COL_MEM], CELL_MAX, "%lluMiB", jull(st, "mem_avail_kib") / 1024);
    snprintf(cells[COL_ADDR], CELL_MAX, "%s", jstr(n, "addr", "-"));
}

/* The "recovering 1/2" note of a dead or left node on its way back, or "". */
static void recovery_note(const json_t *n, char *buf, size_t cap)
{
    const char *state = jstr(n, "state", "");
    unsigned long long rc = jull(n, "rise_count"), rise = jull(n, "rise");
    buf[0] = '\0';
    if ((!strcmp(state, "dead") || !strcmp(state, "left")) && rc > 0) {
        if (rise)
            snprintf(buf, cap, "recovering %llu/%llu", rc, rise);
        else
            snprintf(buf, cap, "recovering %llu", rc);
    }
}

static int cmp_node_id(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    return strcmp(jstr(x, "id", ""), jstr(y, "id", ""));
}

static const char *const state_order[] = {"alive", "suspect", "dead", "left", "unknown"};

static int print_table(json_t *doc)
{
    json_t *nodes = json_object_get(doc, "nodes");
    size_t n = json_array_size(nodes);
    const json_t **rows = n ? malloc(n * sizeof(*rows)) : NULL;
    if (n && !rows) {
        fprintf(stderr, "vigil status: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        rows[i] = json_array_get(nodes, i);
    if (n > 1) /* qsort must not be given NULL, even for no rows */
        qsort(rows, n, sizeof(*rows), cmp_node_id);

    /* Two passes: the widths first, then the lines. */
    size_t width[NCOL];
    for (int c = 0; c < NCOL; c++)
        width[c] = strlen(col_names[c]);
    char cells[NCOL][CELL_MAX];
    for (size_t i = 0; i < n; i++) {
        node_cells(rows[i], cells);
        for (int c = 0; c < NCOL; c++)
            if (strlen(cells[c]) > width[c])
                width[c] = strlen(cells[c]);
    }
    for (int c = 0; c < NCOL; c++)
        printf("%-*s%s", c == NCOL - 1 ? 0 : (int)width[c], col_names[c],
               c == NCOL - 1 ? "\n" : "  ");
    size_t counts[sizeof(state_order) / sizeof(state_order[0])] = {0};
    for (size_t i = 0; i < n; i++) {
        char note[64];
        node_cells(rows[i], cells);
        recovery_note(rows[i], note, sizeof(note));
        for (int c = 0; c < NCOL - 1; c++)
            printf("%-*s  ", (int)width[c], cells[c]);
        if (note[0])
            printf("%-*s  (%s)\n", (int)width[COL_ADDR], cells[COL_ADDR], note);
        else
            printf("%s\n", cells[COL_ADDR]);
        for (size_t s = 0; s < sizeof(state_order) / sizeof(state_order[0]); s++)
            if (!strcmp(cells[COL_STATE], state_order[s]))
                counts[s]++;
    }
    free(rows);

    printf("%zu node%s", n, n == 1 ? "" : "s");
    const char *sep = ": ";
    for (size_t s = 0; s < sizeof(state_order) / sizeof(state_order[0]); s++) {
        if (counts[s]) {
            printf("%s%zu %s", sep, counts[s], state_order[s]);
            sep = ", ";
        }
    }
    printf("\n");
    return 0;
}

static void print_node(const json_t *n)
{
    char d[32], d2[32], note[64];
    const json_t *st = json_object_get(n, "status");

    table_duration(jnum(n, "since_s", -1), d, sizeof(d));
    recovery_note(n, note, sizeof(note));
    printf("%s: %s for %s%s%s%s\n", jstr(n, "id", "?"), jstr(n, "state", "?"), d,
           note[0] ? " (" : "", note, note[0] ? ")" : "");

    double heard = jnum(n, "last_heard_s", -1);
    if (heard < 0) {
        printf("  last heard    never\n");
    } else {
        table_duration(heard, d, sizeof(d));
        printf("  last heard    %s ago (%s)\n", d, jstr(n, "last_heard", "?"));
    }
    bool member = json_is_true(json_object_get(n, "member"));
    json_t *lv = json_object_get(n, "level");
    char level[32];
    if (json_is_number(lv))
        snprintf(level, sizeof(level), "%.2f", json_number_value(lv));
    else
        snprintf(level, sizeof(level), "inf");
    if (!member) { /* a member has no detector here: the membership protocol decides */
        printf("  level         %s (suspect at %.2f, dead at %.2f)\n", level,
               jnum(n, "suspect_threshold", 0), jnum(n, "dead_threshold", 0));
        printf("  intervals     mean %s, sd %s (the sender says every %s)\n",
               vigil_dur_s(jnum(n, "mean_interval_s", 0)).s, vigil_dur_s(jnum(n, "std_dev_s", 0)).s,
               vigil_dur_s(jnum(n, "interval_s", 0)).s);
        printf("  heartbeats    %llu (generation %llu, sequence %llu)\n", jull(n, "heartbeats"),
               jull(n, "generation"), jull(n, "sequence"));
    }
    printf("  address       %s\n", jstr(n, "addr", "-"));
    if (!member)
        printf("  sent at       %s (the sender's clock)\n", jstr(n, "send_time", "-"));
    if (jull(n, "heartbeats") > 0 || member) {
        printf("  load          %.2f %.2f %.2f\n", jnum(st, "load1", 0), jnum(st, "load5", 0),
               jnum(st, "load15", 0));
        if (jull(st, "mem_total_kib"))
            printf("  memory        %llu MiB available of %llu MiB\n",
                   jull(st, "mem_avail_kib") / 1024, jull(st, "mem_total_kib") / 1024);
        if (jull(st, "uptime_s")) {
            table_duration((double)jull(st, "uptime_s"), d2, sizeof(d2));
            printf("  uptime        %s\n", d2);
        }
    }
    const json_t *custom = json_object_get(n, "custom");
    if (json_object_size(custom) > 0) {
        const char *k;
        json_t *v;
        printf("  custom       ");
        json_object_foreach((json_t *)custom, k, v)
        {
            printf(" %s=%s", k, json_string_value(v) ? json_string_value(v) : "");
        }
        printf("\n");
    }
    printf("  declared      %s\n", json_is_true(json_object_get(n, "member"))
                                       ? "a member (peer-to-peer: the membership protocol decides)"
                                   : json_is_true(json_object_get(n, "polled"))
                                       ? "yes, polled (no heartbeats: its checks decide)"
                                   : json_is_true(json_object_get(n, "declared"))
                                       ? "yes (in the configuration)"
                                       : "no (registered itself)");
    const json_t *checks = json_object_get(n, "checks");
    if (json_array_size(checks) > 0) {
        printf("  checks\n");
        size_t ci;
        json_t *c;
        json_array_foreach((json_t *)checks, ci, c)
        {
            const json_t *last = json_object_get(c, "last");
            char lat[32] = "-", age[32] = "-";
            if (json_is_object(last)) {
                snprintf(lat, sizeof lat, "%s", vigil_dur_s(jnum(last, "latency_s", 0)).s);
                table_duration(jnum(last, "age_s", 0), age, sizeof age);
            }
            printf("    %-16s %-8s %-5s %s%s  last: %s ago, took %s, code %lld: %s\n",
                   jstr(c, "check", "?"), jstr(c, "status", "?"), jstr(c, "type", "?"),
                   jstr(c, "source", "?"),
                   json_is_true(json_object_get(c, "critical_means_dead")) ? ", decides" : "", age,
                   lat, json_is_object(last) ? (long long)jnum(last, "code", 0) : 0LL,
                   json_is_object(last) ? jstr(last, "detail", "") : "never run");
        }
    }
    if (!json_is_true(json_object_get(n, "polled")))
        cli_print_qos(n);

    const json_t *events = json_object_get(n, "events");
    if (json_array_size(events) == 0) {
        printf("\nno recent events\n");
        return;
    }
    printf("\nrecent events (oldest first):\n");
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)events, i, e)
    {
        char line[1024];
        event_line(e, line, sizeof(line));
        printf("  %s\n", line);
    }
}

static void status_usage(FILE *f)
{
    fprintf(f,
            "usage: vigil status [--api ADDR] [-c FILE] [--cacert FILE] [--json] [NODE]\n"
            "  --api ADDR    the monitor's API (default: monitor.api of -c, else %s)\n"
            "  -c FILE       read the API address (and its HTTPS) from this configuration file\n"
            "  --cacert FILE trust the certificates in FILE for an https API\n"
            "  --json        print the API's JSON (with no NODE: all pages merged)\n"
            "  NODE          show one node in detail, with its recent events\n",
            API_DEFAULT_ADDR);
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"api", required_argument, NULL, 'a'},    {"config", required_argument, NULL, 'c'},
        {"cacert", required_argument, NULL, 'C'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *api = NULL, *cfg = NULL, *cacert = NULL;
    bool as_json = false;
    int o;
    optind = 0; /* glibc: start over, also when called twice in one process */
    while ((o = getopt_long(argc, argv, "a:c:jh", opts, NULL)) != -1) {
        switch (o) {
        case 'a':
            api = optarg;
            break;
        case 'c':
            cfg = optarg;
            break;
        case 'C':
            cacert = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 'h':
            status_usage(stdout);
            return 0;
        default:
            status_usage(stderr);
            return 2;
        }
    }
    if (argc - optind > 1) {
        status_usage(stderr);
        return 2;
    }
    const char *node = optind < argc ? argv[optind] : NULL;
    if (node && !vigil_id_valid(node, strlen(node))) {
        fprintf(stderr, "vigil status: invalid node id '%s' (1 to %d of A-Z a-z 0-9 . _ -)\n",
                vigil_quote(node).s, VIGIL_ID_MAX);
        return 2;
    }

    struct cli_target target;
    if (find_api("status", api, cfg, cacert, NULL, &target) != 0)
        return CLI_EXIT_USAGE;
    struct http h;
    int rc = 1;
    if (http_init(&h, "status", &target, false) == 0) {
        char path[128];
        json_t *doc;
        if (node) {
            snprintf(path, sizeof(path), "/v1/nodes/%s", node);
            doc = api_get_json(&h, path);
        } else {
            doc = api_get_all_nodes(&h);
        }
        if (doc) {
            if (as_json) {
                char *text = json_dumps(doc, JSON_INDENT(2) | VIGIL_JSON_REAL);
                if (text)
                    puts(text);
                free(text);
                rc = text ? 0 : 1;
            } else if (node) {
                print_node(doc);
                rc = 0;
            } else {
                rc = print_table(doc);
                /* A monitor that checks nothing must not look like one that does. */
                json_t *health = api_get_json(&h, "/v1/health");
                if (health && json_is_true(json_object_get(health, "insecure")))
                    printf("warning: the monitor runs insecure (no key): it accepts heartbeats "
                           "from anyone\n");
                /* The monitor's own counters: what it took in and what it dropped, and why. */
                json_t *cnt = health ? json_object_get(health, "counters") : NULL;
                json_t *peer = health ? json_object_get(health, "peer") : NULL;
                if (json_is_object(peer)) {
                    /* A member: what the membership protocol says of itself. */
                    printf("member %s (incarnation %" JSON_INTEGER_FORMAT
                           ", local health %" JSON_INTEGER_FORMAT ", 0 is best)\n",
                           jstr(peer, "id", "?"),
                           json_integer_value(json_object_get(peer, "incarnation")),
                           json_integer_value(json_object_get(peer, "awareness")));
                    cnt = NULL;
                }
                if (json_is_object(cnt)) {
                    static const char *const dropped[] = {
                        "malformed", "auth_failed",  "unknown_key", "unsealed",  "stale",
                        "future",    "unknown_node", "table_full",  "recv_drops"};
                    printf("datagrams %" JSON_INTEGER_FORMAT ", accepted %" JSON_INTEGER_FORMAT,
                           json_integer_value(json_object_get(cnt, "datagrams")),
                           json_integer_value(json_object_get(cnt, "accepted")));
                    const char *sep = "; dropped:";
                    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
                        json_int_t v = json_integer_value(json_object_get(cnt, dropped[i]));
                        if (v > 0) {
                            printf("%s %s %" JSON_INTEGER_FORMAT, sep, dropped[i], v);
                            sep = ",";
                        }
                    }
                    json_int_t pauses = json_integer_value(json_object_get(cnt, "pauses"));
                    if (pauses > 0)
                        printf("; monitor pauses %" JSON_INTEGER_FORMAT, pauses);
                    printf("\n");
                }
                /* Redundant monitors: who leads, under which epoch, and this one's role. */
                json_t *lead = health ? json_object_get(health, "leadership") : NULL;
                const char *mode = json_string_value(json_object_get(lead, "mode"));
                if (mode && !strcmp(mode, "etcd")) {
                    const char *who = json_string_value(json_object_get(lead, "leader"));
                    const char *role = json_string_value(json_object_get(lead, "role"));
                    const char *me = json_string_value(json_object_get(lead, "name"));
                    if (who)
                        printf(
                            "leader: %s (epoch %" JSON_INTEGER_FORMAT "); this monitor, %s, %s\n",
                            who, json_integer_value(json_object_get(lead, "epoch")), me ? me : "?",
                            role && !strcmp(role, "leader") ? "leads" : "follows");
                    else
                        printf("leader: none known (etcd unreachable, or an election under way): "
                               "actions wait; this monitor is %s\n",
                               me ? me : "?");
                }
                /* More than one key held: a rotation under way, and how far it got. */
                json_t *keys = health ? json_object_get(health, "keys") : NULL;
                if (json_is_array(keys) && json_array_size(keys) > 1) {
                    printf("keys held (a rotation in progress):");
                    for (size_t i = 0; i < json_array_size(keys); i++) {
                        json_t *k = json_array_get(keys, i);
                        printf("%s key id %" JSON_INTEGER_FORMAT " used by %" JSON_INTEGER_FORMAT
                               " nodes",
                               i ? "," : "", json_integer_value(json_object_get(k, "id")),
                               json_integer_value(json_object_get(k, "nodes")));
                    }
                    printf("\n");
                }
                json_decref(health);
                /* Nodes whose actions are held: in maintenance, or flapping. */
                json_t *held = api_get_json(&h, "/v1/maint");
                json_t *list = held ? json_object_get(held, "held") : NULL;
                for (size_t i = 0; json_is_array(list) && i < json_array_size(list); i++) {
                    json_t *e = json_array_get(list, i);
                    const char *until = json_string_value(json_object_get(e, "until"));
                    const char *why = json_string_value(json_object_get(e, "reason"));
                    printf("held: %s, %s%s%s: its actions wait\n",
                           json_string_value(json_object_get(e, "node")), why ? why : "?",
                           until                                ? " until "
                           : why && !strcmp(why, "maintenance") ? " until told"
                                                                : "",
                           until ? until : "");
                }
                json_decref(held);
                /* Failover groups: the primary of each, its epoch, and trouble. */
                json_t *gr = api_get_json(&h, "/v1/groups");
                json_t *gl = gr ? json_object_get(gr, "groups") : NULL;
                for (size_t i = 0; json_is_array(gl) && i < json_array_size(gl); i++) {
                    json_t *g = json_array_get(gl, i);
                    printf("group %s: primary %s, epoch %" JSON_INTEGER_FORMAT "%s%s\n",
                           json_string_value(json_object_get(g, "name")),
                           json_string_value(json_object_get(g, "primary")),
                           json_integer_value(json_object_get(g, "epoch")),
                           json_is_true(json_object_get(g, "promoted")) ? ""
                                                                        : ", promotion pending",
                           json_is_true(json_object_get(g, "no_replica"))
                               ? "; ERROR: the primary is down and no replica is alive"
                               : "");
                }
                json_decref(gr);
            }
            json_decref(doc);
        }
    }
    http_free(&h);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}

/* ---- vigil events ----------------------------------------------------- */

static void events_usage(FILE *f)
{
    fprintf(f,
            "usage: vigil events [--api ADDR] [-c FILE] [--cacert FILE] [--since N] [--limit M] "
            "[--json] [--follow]\n"
            "  --api ADDR    the monitor's API (default: monitor.api of -c, else %s)\n"
            "  -c FILE       read the API address (and its HTTPS) from this configuration file\n"
            "  --cacert FILE trust the certificates in FILE for an https API\n"
            "  --since N     events after sequence number N (default: the last M events)\n"
            "  --limit M     at most M events (1 to %d, default %d)\n"
            "  --json        print the API's JSON (with --follow: one event per line)\n"
            "  -f, --follow  keep printing new events until interrupted\n",
            API_DEFAULT_ADDR, API_EVENTS_MAX_LIMIT, API_EVENTS_DEFAULT_LIMIT);
}

static void on_nap_end(void *arg, vigil_time_t now)
{
    (void)now;
    vio_loop_stop(arg);
}

/* Runs the loop for ms milliseconds or until a signal ends it (the caller checks the flag). */
static void nap(struct http *h, long ms)
{
    struct vio_timer t;
    vio_timer_init(&t, on_nap_end, h->loop);
    if (vio_timer_arm(h->loop, &t, vio_now(h->loop) + ms * VIGIL_NSEC_PER_MSEC) != 0)
        return;
    vio_loop_run(h->loop);
    vio_timer_disarm(h->loop, &t);
}

/*
 * Fetches events after *since (at most limit), prints them and moves *since
 * to the last one. Returns 0, or -1 when the request failed (already said).
 * Sets *more when the limit cut the answer short. When started (the monitor
 * process's start time, "" at first) differs from the answer's, or the
 * newest event is older than *since, the monitor restarted and its sequence
 * numbers started over: nothing is printed, *restarted is set and started
 * updated.
 */
static int events_page(struct http *h, unsigned long long *since, unsigned long long limit,
                       unsigned wait_s, bool as_json, bool *more, bool *restarted, char *started,
                       size_t cap)
{
    char path[160];
    snprintf(path, sizeof(path), "/v1/events?since=%llu&limit=%llu", *since, limit);
    if (wait_s)
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "&wait=%u", wait_s);
    json_t *doc = api_get_json(h, path);
    if (!doc)
        return -1;
    const char *st = jstr(doc, "started", "");
    *restarted = (started[0] && strcmp(started, st)) || jull(doc, "newest_seq") < *since;
    snprintf(started, cap, "%s", st);
    if (*restarted) {
        *more = true;
        json_decref(doc);
        return 0;
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "events"), i, e)
    {
        print_event(e, as_json);
        unsigned long long seq = jull(e, "seq");
        if (seq > *since)
            *since = seq;
    }
    *more = json_is_true(json_object_get(doc, "more"));
    json_decref(doc);
    return 0;
}

/* The sequence number after which the last `limit` events begin. */
static int tail_start(struct http *h, unsigned long long limit, unsigned long long *since)
{
    /* since = the largest number: no event comes back, only newest_seq. */
    json_t *doc = api_get_json(h, "/v1/events?since=18446744073709551615&limit=1");
    if (!doc)
        return -1;
    unsigned long long newest = jull(doc, "newest_seq");
    *since = newest > limit ? newest - limit : 0;
    json_decref(doc);
    return 0;
}

static int follow(struct http *h, unsigned long long since, bool as_json, char *started, size_t cap)
{
    bool unreachable = false;
    /* Bounded by the user: it runs until SIGINT or SIGTERM. */
    while (!cli_interrupted) {
        bool more = false, restarted = false;
        h->quiet = unreachable;
        /* The long poll: the answer comes with the next event, or after the wait. */
        h->timeout = (CLI_FOLLOW_WAIT_S + 15) * VIGIL_NSEC_PER_SEC;
        vigil_time_t asked = vio_now(h->loop);
        unsigned long long before = since;
        if (events_page(h, &since, API_EVENTS_MAX_LIMIT, CLI_FOLLOW_WAIT_S, as_json, &more,
                        &restarted, started, cap) != 0) {
            if (cli_interrupted)
                break;
            if (!unreachable)
                fprintf(stderr, "vigil events: retrying every %d ms\n", CLI_FOLLOW_INTERVAL_MS);
            unreachable = true;
        } else {
            if (unreachable)
                fprintf(stderr, "vigil events: the monitor API is back\n");
            unreachable = false;
            if (restarted) {
                fprintf(stderr, "vigil events: the monitor restarted; following its new events\n");
                since = 0;
            }
        }
        if (fflush(stdout) != 0)
            return 1;
        /*
         * A cut-short page means more is waiting: ask again at once; so does
         * a long poll that waited. An empty answer that came at once (a
         * monitor without long polls) or an error waits a moment first.
         */
        bool quick_empty =
            since == before && !restarted && vio_now(h->loop) - asked < VIGIL_NSEC_PER_SEC;
        if (unreachable || (!more && quick_empty))
            nap(h, CLI_FOLLOW_INTERVAL_MS);
    }
    return 0;
}

int cmd_events(int argc, char **argv)
{
    static const struct option opts[] = {
        {"api", required_argument, NULL, 'a'},
        {"config", required_argument, NULL, 'c'},
        {"since", required_argument, NULL, 's'},
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"follow", no_argument, NULL, 'f'},
        {"cacert", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *api = NULL, *cfg = NULL, *cacert = NULL;
    bool as_json = false, do_follow = false, has_since = false;
    unsigned long long since = 0, limit = API_EVENTS_DEFAULT_LIMIT;
    uint64_t num = 0;
    int o;
    optind = 0; /* glibc: start over, also when called twice in one process */
    while ((o = getopt_long(argc, argv, "a:c:s:n:jfh", opts, NULL)) != -1) {
        switch (o) {
        case 'a':
            api = optarg;
            break;
        case 'c':
            cfg = optarg;
            break;
        case 's':
            if (vcfg_parse_u64(optarg, UINT64_MAX, &num) != 0) {
                fprintf(stderr, "vigil events: --since wants an event number, not '%s'\n",
                        vigil_quote(optarg).s);
                return 2;
            }
            since = num;
            has_since = true;
            break;
        case 'n':
            if (vcfg_parse_u64(optarg, API_EVENTS_MAX_LIMIT, &num) != 0 || num < 1) {
                fprintf(stderr, "vigil events: --limit wants a number from 1 to %d, not '%s'\n",
                        API_EVENTS_MAX_LIMIT, vigil_quote(optarg).s);
                return 2;
            }
            limit = num;
            break;
        case 'j':
            as_json = true;
            break;
        case 'f':
            do_follow = true;
            break;
        case 'C':
            cacert = optarg;
            break;
        case 'h':
            events_usage(stdout);
            return 0;
        default:
            events_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        events_usage(stderr);
        return 2;
    }

    struct cli_target target;
    if (find_api("events", api, cfg, cacert, NULL, &target) != 0)
        return CLI_EXIT_USAGE;

    /* Ctrl-C ends --follow cleanly, also in the middle of a request or a pause. */
    struct http h;
    int rc = 1;
    if (http_init(&h, "events", &target, true) != 0)
        goto out;
    if (!has_since && tail_start(&h, limit, &since) != 0)
        goto out;
    if (as_json && !do_follow) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/events?since=%llu&limit=%llu", since, limit);
        json_t *doc = api_get_json(&h, path);
        if (doc) {
            fwrite(h.body, 1, h.len, stdout);
            if (h.len && h.body[h.len - 1] != '\n')
                putchar('\n');
            json_decref(doc);
            rc = 0;
        }
        goto out;
    }
    bool more = false, restarted = false;
    char started[64] = "";
    if (events_page(&h, &since, limit, 0, as_json, &more, &restarted, started, sizeof(started)) !=
        0)
        goto out;
    rc = 0;
    if (do_follow) {
        if (fflush(stdout) != 0)
            rc = 1;
        else
            rc = follow(&h, since, as_json, started, sizeof(started));
    }
out:
    http_free(&h);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}

/* ---- for the other commands of the CLI (cli_tools.h) ------------------- */

json_t *cli_fetch_json(const char *cmd, const char *api, const char *cfg_path, const char *path,
                       int *exit_code)
{
    struct cli_target target;
    if (exit_code)
        *exit_code = CLI_EXIT_USAGE;
    if (find_api(cmd, api, cfg_path, NULL, NULL, &target) != 0)
        return NULL;
    if (exit_code)
        *exit_code = CLI_EXIT_FAILURE;
    struct http h;
    json_t *doc = NULL;
    if (http_init(&h, cmd, &target, false) == 0)
        doc = path ? api_get_json(&h, path) : api_get_all_nodes(&h);
    http_free(&h);
    return doc;
}

/* ---- vigil actions, vigil maint ----------------------------------------- */

static int load_auth(struct http *h, const char *path);

/*
 * POSTs path to the monitor of target with the API's token (what needs
 * it: the reason for messages). Returns the answer (the caller decrefs,
 * and h is open for its base until http_free), NULL after saying why, or
 * NULL with *usage set when no token is known.
 */
static json_t *post_with_token(const char *cmd, const char *what, struct cli_target *target,
                               struct http *h, const char *path, int *usage)
{
    *usage = 0;
    memset(h, 0, sizeof(*h));
    if (!target->token_file[0]) {
        fprintf(stderr,
                "vigil %s: %s needs the API's token: give --token-file FILE, or -c FILE with "
                "monitor.api_token_file\n",
                cmd, what);
        *usage = 1;
        return NULL;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "vigil %s: libsodium failed to initialise\n", cmd);
        return NULL;
    }
    if (http_init(h, cmd, target, false) != 0 || load_auth(h, target->token_file) != 0)
        return NULL;
    return api_call_json(h, "POST", path, true);
}

static void actions_usage(FILE *f)
{
    fprintf(f, "usage: vigil actions [--api ADDR] [-c FILE] [--cacert FILE] [--limit N] [--json]\n"
               "  the actions of a running monitor: those pending or running, then the latest\n"
               "  attempts and outcomes (newest first)\n");
}

int cmd_actions(int argc, char **argv)
{
    static const struct option opts[] = {
        {"api", required_argument, NULL, 'a'},
        {"config", required_argument, NULL, 'c'},
        {"cacert", required_argument, NULL, 'C'},
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *api = NULL, *cfg = NULL, *cacert = NULL, *limit = "20";
    bool as_json = false;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "a:c:n:jh", opts, NULL)) != -1) {
        switch (o) {
        case 'a':
            api = optarg;
            break;
        case 'c':
            cfg = optarg;
            break;
        case 'C':
            cacert = optarg;
            break;
        case 'n':
            limit = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 'h':
            actions_usage(stdout);
            return 0;
        default:
            actions_usage(stderr);
            return 2;
        }
    }
    uint64_t lim = 0;
    if (optind != argc || vcfg_parse_u64(limit, 1000, &lim) != 0) {
        actions_usage(stderr);
        return 2;
    }
    struct cli_target target;
    if (find_api("actions", api, cfg, cacert, NULL, &target) != 0)
        return CLI_EXIT_USAGE;
    struct http h;
    if (http_init(&h, "actions", &target, false) != 0)
        return 1;
    char path[64];
    snprintf(path, sizeof(path), "/v1/actions?limit=%" PRIu64, lim);
    json_t *doc = api_get_json(&h, path);
    int rc = doc ? 0 : 1;
    if (doc && as_json) {
        char *text = json_dumps(doc, JSON_INDENT(2) | VIGIL_JSON_REAL);
        if (text)
            puts(text);
        free(text);
    } else if (doc) {
        json_t *acts = json_object_get(doc, "actions"), *pend = json_object_get(doc, "pending"),
               *rec = json_object_get(doc, "recent");
        printf("actions:");
        for (size_t i = 0; i < json_array_size(acts); i++)
            printf("%s %s", i ? "," : "", json_string_value(json_array_get(acts, i)));
        printf("%s\n", json_array_size(acts) ? "" : " none");
        printf("pending: %zu\n", json_array_size(pend));
        for (size_t i = 0; i < json_array_size(pend); i++) {
            json_t *p = json_array_get(pend, i);
            const char *act = json_string_value(json_object_get(p, "action"));
            printf("  %-20s event %-8" JSON_INTEGER_FORMAT
                   " %-12s %-6s %s (attempt %" JSON_INTEGER_FORMAT ", %" JSON_INTEGER_FORMAT
                   " events behind)\n",
                   json_string_value(json_object_get(p, "node")),
                   json_integer_value(json_object_get(p, "event_seq")), act && *act ? act : "-",
                   json_string_value(json_object_get(p, "op")),
                   json_string_value(json_object_get(p, "state")),
                   json_integer_value(json_object_get(p, "attempt")),
                   json_integer_value(json_object_get(p, "events_waiting")));
        }
        printf("recent (newest first):\n");
        for (size_t i = 0; i < json_array_size(rec); i++) {
            json_t *r = json_array_get(rec, i);
            printf("  %s %-20s %-12s %-4s %-9s attempt %" JSON_INTEGER_FORMAT " %s\n",
                   json_string_value(json_object_get(r, "time")),
                   json_string_value(json_object_get(r, "node")),
                   json_string_value(json_object_get(r, "action")),
                   json_string_value(json_object_get(r, "op")),
                   json_string_value(json_object_get(r, "outcome")),
                   json_integer_value(json_object_get(r, "attempt")),
                   *json_string_value(json_object_get(r, "detail"))
                       ? json_string_value(json_object_get(r, "detail"))
                       : "-");
        }
    }
    json_decref(doc);
    http_free(&h);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}

static void maint_usage(FILE *f)
{
    fprintf(f, "usage: vigil maint NODE [--for DURATION] [--off] [--api ADDR] [-c FILE]\n"
               "                  [--token-file FILE] [--cacert FILE]\n"
               "  hold NODE's actions (it is still watched): for DURATION (30m, 2h), or until\n"
               "  --off; needs the API's token\n");
}

int cmd_maint(int argc, char **argv)
{
    static const struct option opts[] = {
        {"for", required_argument, NULL, 'f'},
        {"off", no_argument, NULL, 'o'},
        {"api", required_argument, NULL, 'a'},
        {"config", required_argument, NULL, 'c'},
        {"token-file", required_argument, NULL, 'T'},
        {"cacert", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *api = NULL, *cfg = NULL, *token_file = NULL, *cacert = NULL, *len = NULL;
    bool off = false;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "a:c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'f':
            len = optarg;
            break;
        case 'o':
            off = true;
            break;
        case 'a':
            api = optarg;
            break;
        case 'c':
            cfg = optarg;
            break;
        case 'T':
            token_file = optarg;
            break;
        case 'C':
            cacert = optarg;
            break;
        case 'h':
            maint_usage(stdout);
            return 0;
        default:
            maint_usage(stderr);
            return 2;
        }
    }
    vigil_time_t d = 0;
    if (argc - optind != 1 || (off && len) || (len && (vcfg_parse_duration(len, &d) || d <= 0))) {
        maint_usage(stderr);
        return 2;
    }
    const char *node = argv[optind];
    if (!vigil_id_valid(node, strlen(node))) {
        fprintf(stderr, "vigil maint: \"%s\" is not a node id\n", node);
        return 2;
    }
    struct cli_target target;
    if (find_api("maint", api, cfg, cacert, token_file, &target) != 0)
        return CLI_EXIT_USAGE;
    char path[200];
    if (off)
        snprintf(path, sizeof(path), "/v1/maint/%s?off=1", node);
    else if (len)
        snprintf(path, sizeof(path), "/v1/maint/%s?for=%s", node, len);
    else
        snprintf(path, sizeof(path), "/v1/maint/%s", node);
    struct http h;
    int rc = 1, usage = 0;
    json_t *doc = post_with_token("maint", "maintenance", &target, &h, path, &usage);
    if (usage)
        return 2;
    {
        if (doc) {
            if (off)
                printf("%s: maintenance off; its actions go on\n", node);
            else
                printf("%s: in maintenance %s%s; it is watched, its actions wait\n", node,
                       len ? "for " : "until vigil maint --off", len ? len : "");
            json_decref(doc);
            rc = 0;
        }
    }
    http_free(&h);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}

static void failover_usage(FILE *f)
{
    fprintf(f,
            "usage: vigil failover GROUP [--to NODE] [--api ADDR] [-c FILE] [--token-file FILE]\n"
            "                       [--cacert FILE]\n"
            "  a planned switchover of GROUP's primary to NODE (default: the best replica),\n"
            "  through the same path as a failover; needs the API's token\n");
}

int cmd_failover(int argc, char **argv)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},
        {"api", required_argument, NULL, 'a'},
        {"config", required_argument, NULL, 'c'},
        {"token-file", required_argument, NULL, 'T'},
        {"cacert", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *api = NULL, *cfg = NULL, *token_file = NULL, *cacert = NULL, *to = NULL;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "a:c:h", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            to = optarg;
            break;
        case 'a':
            api = optarg;
            break;
        case 'c':
            cfg = optarg;
            break;
        case 'T':
            token_file = optarg;
            break;
        case 'C':
            cacert = optarg;
            break;
        case 'h':
            failover_usage(stdout);
            return 0;
        default:
            failover_usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 1) {
        failover_usage(stderr);
        return 2;
    }
    const char *group = argv[optind];
    if (!vigil_id_valid(group, strlen(group)) || (to && !vigil_id_valid(to, strlen(to)))) {
        fprintf(stderr, "vigil failover: a group's name and a node id only\n");
        return 2;
    }
    struct cli_target target;
    if (find_api("failover", api, cfg, cacert, token_file, &target) != 0)
        return CLI_EXIT_USAGE;
    char path[200];
    snprintf(path, sizeof(path), "/v1/groups/%s/failover%s%s", group, to ? "?to=" : "",
             to ? to : "");
    struct http h;
    int rc = 1, usage = 0;
    json_t *doc = post_with_token("failover", "a switchover", &target, &h, path, &usage);
    if (usage)
        return 2;
    {
        if (doc) {
            json_t *gl = json_object_get(doc, "groups");
            for (size_t i = 0; i < json_array_size(gl); i++) {
                json_t *g = json_array_get(gl, i);
                if (strcmp(json_string_value(json_object_get(g, "name")), group) != 0)
                    continue;
                printf("group %s: %s is the primary under epoch %" JSON_INTEGER_FORMAT
                       "; the former primary is demoted first\n",
                       group, json_string_value(json_object_get(g, "primary")),
                       json_integer_value(json_object_get(g, "epoch")));
            }
            json_decref(doc);
            rc = 0;
        }
    }
    http_free(&h);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}

/* ---- vigil keys ------------------------------------------------------- */

static void keys_usage(FILE *f)
{
    fprintf(f,
            "usage: vigil keys reload [--api ADDR] [-c FILE] [--token-file FILE] [--cacert FILE]\n"
            "  reload            ask the monitor to read its keys again\n"
            "  --api ADDR        the monitor's API (default: monitor.api of -c, else %s)\n"
            "  -c FILE           read the API address, its HTTPS and its token file from this\n"
            "                    configuration file\n"
            "  --token-file FILE the API's token (default: monitor.api_token_file of -c)\n"
            "  --cacert FILE     trust the certificates in FILE for an https API\n",
            API_DEFAULT_ADDR);
}

/* Reads the token file into h->auth, "Authorization: Bearer TOKEN". Returns 0, or -1 (said). */
static int load_auth(struct http *h, const char *path)
{
    struct api_token *t = NULL;
    char err[512];
    if (api_token_load(&vio_fs_real, path, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, "vigil %s: %s\n", h->cmd, err);
        return -1;
    }
    static const char prefix[] = "Authorization: Bearer ";
    size_t n = sizeof(prefix) + strlen(api_token_value(t));
    h->auth = sodium_malloc(n);
    if (!h->auth) {
        api_token_free(t);
        fprintf(stderr, "vigil %s: out of memory\n", h->cmd);
        return -1;
    }
    snprintf(h->auth, n, "%s%s", prefix, api_token_value(t));
    api_token_free(t);
    return 0;
}

int cmd_keys(int argc, char **argv)
{
    static const struct option opts[] = {
        {"api", required_argument, NULL, 'a'},
        {"config", required_argument, NULL, 'c'},
        {"token-file", required_argument, NULL, 'T'},
        {"cacert", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *api = NULL, *cfg = NULL, *token_file = NULL, *cacert = NULL;
    int o;
    optind = 0; /* glibc: start over, also when called twice in one process */
    while ((o = getopt_long(argc, argv, "a:c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'a':
            api = optarg;
            break;
        case 'c':
            cfg = optarg;
            break;
        case 'T':
            token_file = optarg;
            break;
        case 'C':
            cacert = optarg;
            break;
        case 'h':
            keys_usage(stdout);
            return 0;
        default:
            keys_usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 1 || strcmp(argv[optind], "reload") != 0) {
        keys_usage(stderr);
        return 2;
    }
    struct cli_target target;
    if (find_api("keys", api, cfg, cacert, token_file, &target) != 0)
        return CLI_EXIT_USAGE;
    struct http h;
    int rc = 1, usage = 0;
    json_t *doc = post_with_token("keys", "reloading", &target, &h, "/v1/keys/reload", &usage);
    if (usage)
        return 2;
    {
        if (doc) {
            printf("the monitor at %s reloaded its keys\n", h.base);
            json_decref(doc);
            rc = 0;
        }
    }
    http_free(&h);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}
