/*
 * Fuzz target for the API's request handling (api_handle).
 *
 * The input is one request: its first line is "METHOD TARGET" (or just
 * TARGET, then the method is GET), TARGET is the path and, after the
 * first '?', the raw query; the rest of the input is the body. The
 * handler answers from a small monitor core built once: five declared
 * nodes in every state (up, suspect and dead, left, never heard), their
 * events in an event log, and a fake loop (tests/sim/fake_loop.h) as the
 * clock. There is no server (ctx.server is NULL), so every answer is built
 * at once. Beyond the sanitizers' checks, the target asserts the
 * handler's promises and calls abort() when one fails:
 *
 *  - every answer has a status in 200..599, a content type and a body of
 *    the length it states;
 *  - an answer in JSON is one JSON document;
 *  - the same request answers the same way twice (the handler changes
 *    nothing it reads).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fake_loop.h"
#include "vigil/api.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC
/* Where the virtual clock starts: not 0, so that "never" (-1) stands out. */
#define FUZZ_START (1000 * S)
/* Events the log keeps: fewer than the script makes, so that it wraps. */
#define FUZZ_EVENTS 16

static const char *const NODES[] = {"web1", "web2", "web3", "web4", "db-1.example"};
#define N_NODES (sizeof(NODES) / sizeof(NODES[0]))

static void check(bool ok)
{
    if (!ok)
        abort();
}

struct core {
    struct vigil_monitor *mon;
    struct evlog *log;
    vigil_time_t clock;
    struct vio_loop *loop;
    struct api_ctx ctx;
};

static void drain(struct core *c)
{
    struct evrec r;
    while (vigil_monitor_poll_event(c->mon, &r.ev)) {
        r.wall_us = vio_wall_us(c->loop) - (c->clock - r.ev.time) / 1000;
        evlog_push(c->log, &r);
    }
}

static void beat(struct core *c, vigil_time_t now, const char *id, uint64_t seq, uint8_t flags)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    snprintf(hb.id, sizeof(hb.id), "%s", id);
    hb.generation = 42;
    hb.sequence = seq;
    hb.flags = flags;
    hb.interval_ms = 1000;
    hb.send_time_us = INT64_C(1700000000000000) + (int64_t)seq * 1000000;
    hb.status.load1_milli = 1250;
    hb.status.mem_total_kib = 8u << 20;
    hb.status.uptime_s = 3600;
    hb.n_custom = 1;
    snprintf(hb.custom[0].key, sizeof(hb.custom[0].key), "role");
    snprintf(hb.custom[0].value, sizeof(hb.custom[0].value), "db \"primary\"");
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
    check(len > 0);
    check(vigil_monitor_on_datagram(c->mon, now, buf, (size_t)len, NULL) == 0);
}

/*
 * Twenty virtual seconds in 100 ms steps: web1 beats throughout, web2
 * stops after five seconds, web4 leaves after three, db-1 beats once,
 * web3 is never heard.
 */
static struct core *core_new(void)
{
    static struct core c;
    struct vigil_monitor_config mc;
    vigil_monitor_config_default(&mc);
    vigil_detector_config_default(&mc.detector, VIGIL_DETECTOR_FIXED, S);
    mc.max_nodes = 64;
    mc.startup_grace = 120 * S;
    c.clock = FUZZ_START + 20 * S;
    c.loop = fake_loop_new(&c.clock);
    check(c.loop != NULL);
    check(vigil_monitor_new(&mc, FUZZ_START, &c.mon) == 0);
    for (size_t i = 0; i < N_NODES; i++)
        check(vigil_monitor_declare(c.mon, NODES[i], FUZZ_START) == 0);
    c.log = evlog_new(FUZZ_EVENTS);
    check(c.log != NULL);
    uint64_t seq = 0;
    for (vigil_time_t t = FUZZ_START; t <= FUZZ_START + 20 * S; t += 100 * MS) {
        if ((t - FUZZ_START) % S == 0) {
            seq++;
            beat(&c, t, "web1", seq, 0);
            if (t < FUZZ_START + 5 * S)
                beat(&c, t, "web2", seq, 0);
            if (t < FUZZ_START + 3 * S)
                beat(&c, t, "web4", seq, t == FUZZ_START + 2 * S ? VIGIL_FLAG_LEAVING : 0);
            if (t == FUZZ_START + 10 * S)
                beat(&c, t, "db-1.example", seq, 0);
        }
        vigil_monitor_on_expiry(c.mon, t);
        drain(&c);
    }
    c.ctx.mon = c.mon;
    c.ctx.events = c.log;
    c.ctx.hooks = NULL;
    c.ctx.loop = c.loop;
    c.ctx.started_mono = FUZZ_START;
    c.ctx.started_wall_us = vio_wall_us(c.loop) - 20000000;
    c.ctx.recv_errors = 3;
    c.ctx.dropped_log = 1;
    c.ctx.server = NULL;
    api_init(&c.ctx);
    return &c;
}

static void answer(struct core *c, const struct vio_http_request *req,
                   struct vio_http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    api_handle(&c->ctx, req, resp);
    check(resp->status >= 200 && resp->status <= 599);
    check(resp->content_type != NULL && resp->body != NULL);
    check(strlen(resp->body) == resp->body_len);
    check(!resp->deferred);
}

/*
 * The core, built once, before the first input (LLVMFuzzerInitialize) or by
 * it (a driver without that hook). Inputs stay independent: the handler
 * changes nothing it reads, which every input checks.
 */
static struct core *core;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (!core)
        core = core_new();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!core)
        core = core_new();
    struct core *c = core;

    /* The input as text, NUL terminated, split in place. */
    char *text = malloc(size + 1);
    check(text != NULL);
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';
    char *nl = memchr(text, '\n', size);
    const char *body = "";
    size_t body_len = 0;
    if (nl) {
        *nl = '\0';
        body = nl + 1;
        body_len = size - (size_t)(nl + 1 - text);
    }
    const char *method = "GET";
    char *target = text;
    char *sp = strchr(text, ' ');
    if (sp) {
        *sp = '\0';
        method = text;
        target = sp + 1;
    }
    const char *query = "";
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        query = q + 1;
    }
    struct vio_http_request req = {
        .method = method, .path = target, .query = query, .body = body, .body_len = body_len};

    struct vio_http_response first, second;
    answer(c, &req, &first);
    if (!strncmp(first.content_type, "application/json", strlen("application/json"))) {
        json_t *doc = json_loadb(first.body, first.body_len, 0, NULL);
        check(doc != NULL);
        json_decref(doc);
    }
    /* The second answer is the first byte for byte, so it is JSON when the first is. */
    answer(c, &req, &second);
    check(first.status == second.status && first.body_len == second.body_len &&
          !strcmp(first.content_type, second.content_type) &&
          memcmp(first.body, second.body, first.body_len) == 0);
    free(first.body);
    free(second.body);
    free(text);
    return 0;
}
