/*
 * The action gate: the claim protocol of actgate.h.
 *
 * A claim goes through two requests to etcd's v3 gateway, each a POST on
 * the loop's HTTP client:
 *
 *   read   /v3/kv/range of PREFIX/actions/NODE: the claim as it stands and
 *          its mod_revision (0 when there is none);
 *   write  /v3/kv/txn: if the leader key still has our epoch and id, and
 *          the claim's mod_revision is still the one read, put the new
 *          claim; else read the leader key (to tell a fence from a race).
 *
 * Each claim is a struct claim, alive from the question to the answer; at
 * most ACTGATE_MAX_IN_FLIGHT are in flight, the others wait in a FIFO. A
 * claim that gets no usable answer (etcd down, a timeout) leaves its event
 * held, and a timer asks the runner to ask again ACTGATE_RETRY later, as
 * long as this monitor leads. The hook runner ignores an answer whose
 * ticket is not its latest question, so a late answer is harmless.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actgate.h"
#include "evlog.h"

/* Largest answer taken: a range of one key, or a txn. */
#define ACTGATE_BODY_MAX (64u * 1024)
/* Timeout of one request: etcd answers in milliseconds when it can. */
#define ACTGATE_TIMEOUT (2 * VIGIL_NSEC_PER_SEC)

enum claim_step { STEP_READ, STEP_WRITE, STEP_DONE };

struct claim {
    struct actgate *g;
    struct claim *next; /* in the line, or in the list in flight */
    struct claim *prev;
    enum claim_step step;
    char node[VIGIL_ID_MAX + 1];
    enum vigil_state state; /* the event's new state */
    uint64_t seq;           /* the event's sequence number, for the log and the claim */
    uint64_t ticket;
    int64_t epoch;
    int64_t mod_rev; /* the claim's mod_revision as read */
    bool raced;      /* the claim changed between read and write once already */
    bool ok;         /* STEP_DONE: every hook succeeded */
    char endpoint[256];
};

struct actgate {
    struct vio_loop *loop;
    struct vio_http *http;
    struct leader *leader;
    struct hook_runner *hooks;
    char *prefix;
    int (*state_of)(void *arg, const char *node, enum vigil_state *out);
    void (*log)(void *arg, const char *line);
    void *arg;
    struct claim *line_head, *line_tail; /* waiting to be sent */
    struct claim *flight;                /* sent, answer pending */
    size_t in_flight;
    struct vio_timer retry;
    struct leader_view view;
    struct actgate_stats stats;
};

static void glog(const struct actgate *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void glog(const struct actgate *g, const char *fmt, ...)
{
    if (!g->log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    g->log(g->arg, line);
}

/* PREFIX/actions/NODE into buf. */
static void claim_key(const struct actgate *g, const char *node, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/actions/%s", g->prefix, node);
}

static void on_answer(void *arg, const struct vio_http_result *res);

static void claim_free(struct actgate *g, struct claim *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        g->flight = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g->in_flight--;
    free(c);
}

/* Asks the runner again about held events, soon, while this monitor leads. */
static void retry_later(struct actgate *g)
{
    if (!vio_timer_armed(&g->retry))
        vio_timer_arm(g->loop, &g->retry, vio_now(g->loop) + ACTGATE_RETRY);
}

static json_t *claim_value(const struct claim *c, const char *id, bool done)
{
    json_t *o =
        json_pack("{s:s,s:I,s:s,s:I,s:b}", "state", vigil_state_name(c->state), "epoch",
                  (json_int_t)c->epoch, "by", id, "event", (json_int_t)c->seq, "done", done);
    if (o && done && json_object_set_new(o, "ok", json_boolean(c->ok)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The body of c's request for its step (NULL when out of memory). */
static json_t *claim_body(struct actgate *g, struct claim *c)
{
    char key[VIGIL_ID_MAX + 256];
    claim_key(g, c->node, key, sizeof(key));
    if (c->step == STEP_READ)
        return json_pack("{s:o}", "key", leader_jb64(key));
    const char *lkey = leader_key(g->leader), *id = leader_id(g->leader);
    json_t *val = claim_value(c, id, c->step == STEP_DONE);
    char *text = val ? json_dumps(val, JSON_COMPACT) : NULL;
    json_decref(val);
    if (!text)
        return NULL;
    json_t *txn =
        leader_fence_check(lkey, id, c->epoch, json_pack("[o]", leader_put_op(key, text)));
    free(text);
    if (!txn || c->step == STEP_DONE)
        return txn;
    /* The claim must still be the one read, and a refusal says who holds the leader key. */
    json_t *cmp = json_pack("{s:o,s:s,s:s,s:o}", "key", leader_jb64(key), "target", "MOD", "result",
                            "EQUAL", "mod_revision", leader_jstr_int64(c->mod_rev));
    json_t *fail = json_pack("[{s:{s:o}}]", "request_range", "key", leader_jb64(lkey));
    if (!cmp || !fail || json_array_append_new(json_object_get(txn, "compare"), cmp) != 0 ||
        json_object_set_new(txn, "failure", fail) != 0) {
        json_decref(txn);
        return NULL;
    }
    return txn;
}

/* Sends c (in flight already). On failure c is answered as unanswered. */
static void claim_send(struct actgate *g, struct claim *c)
{
    json_t *o = claim_body(g, c);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    snprintf(c->endpoint, sizeof(c->endpoint), "%s", leader_endpoint(g->leader));
    char url[512];
    snprintf(url, sizeof(url), "%s%s", c->endpoint,
             c->step == STEP_READ ? "/v3/kv/range" : "/v3/kv/txn");
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    struct vio_http_call call = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout = ACTGATE_TIMEOUT,
        .body_max = ACTGATE_BODY_MAX,
    };
    int rc = body ? vio_http_start(g->http, &call, on_answer, c) : -VIGIL_ENOMEM;
    free(body);
    if (rc != 0) {
        g->stats.failures++;
        glog(g, "claim for event %" PRIu64 " (%s): cannot ask etcd (error %d); trying again",
             c->seq, c->node, rc);
        claim_free(g, c);
        retry_later(g);
    }
}

/* Moves claims from the line to flight while there is room. */
static void line_drain(struct actgate *g)
{
    while (g->line_head && g->in_flight < ACTGATE_MAX_IN_FLIGHT) {
        struct claim *c = g->line_head;
        g->line_head = c->next;
        if (!g->line_head)
            g->line_tail = NULL;
        c->prev = NULL;
        c->next = g->flight;
        if (g->flight)
            g->flight->prev = c;
        g->flight = c;
        g->in_flight++;
        claim_send(g, c);
    }
}

static void claim_queue(struct actgate *g, struct claim *c)
{
    c->next = NULL;
    c->prev = NULL;
    if (g->line_tail)
        g->line_tail->next = c;
    else
        g->line_head = c;
    g->line_tail = c;
    line_drain(g);
}

/* The claim as read: {"state", "done", "epoch", "by"} from a range answer's first kv. */
static void read_claim(const json_t *kv, char *state, size_t cap, bool *done, int64_t *epoch,
                       char *by, size_t by_cap)
{
    state[0] = by[0] = '\0';
    *done = false;
    *epoch = 0;
    const json_t *v = json_object_get(kv, "value");
    char text[1024];
    if (!json_is_string(v) || leader_unb64(json_string_value(v), text, sizeof(text)) < 0)
        return;
    json_t *o = json_loads(text, 0, NULL);
    const char *s = json_string_value(json_object_get(o, "state"));
    const char *b = json_string_value(json_object_get(o, "by"));
    snprintf(state, cap, "%s", s ? s : "");
    snprintf(by, by_cap, "%s", b ? b : "");
    *done = json_is_true(json_object_get(o, "done"));
    *epoch = json_is_integer(json_object_get(o, "epoch"))
                 ? (int64_t)json_integer_value(json_object_get(o, "epoch"))
                 : 0;
    json_decref(o);
}

static void answer(struct actgate *g, struct claim *c, enum hook_verdict v)
{
    char node[VIGIL_ID_MAX + 1];
    memcpy(node, c->node, sizeof(node));
    uint64_t ticket = c->ticket;
    int64_t epoch = c->epoch;
    claim_free(g, c);
    line_drain(g);
    hook_runner_gate_answer(g->hooks, node, ticket, v, epoch);
}

static void on_read(struct actgate *g, struct claim *c, const json_t *doc)
{
    const json_t *kv = json_array_get(json_object_get(doc, "kvs"), 0);
    c->mod_rev = kv ? leader_jint64(kv, "mod_revision", 0) : 0;
    if (kv) {
        char state[32], by[LEADER_ID_MAX + 1];
        bool done;
        int64_t epoch;
        read_claim(kv, state, sizeof(state), &done, &epoch, by, sizeof(by));
        if (!strcmp(state, vigil_state_name(c->state))) {
            if (done) {
                g->stats.done_skip++;
                glog(g,
                     "event %" PRIu64 " (%s -> %s): acted on already, by %s under epoch %" PRId64,
                     c->seq, c->node, state, by[0] ? by : "?", epoch);
                answer(g, c, HOOK_SKIP);
                return;
            }
            if (epoch != c->epoch) {
                g->stats.rerun++;
                glog(g,
                     "event %" PRIu64 " (%s -> %s): claimed by %s under epoch %" PRId64
                     " and not finished: acting again",
                     c->seq, c->node, state, by[0] ? by : "?", epoch);
            }
        }
    }
    c->step = STEP_WRITE;
    claim_send(g, c);
}

static void on_write(struct actgate *g, struct claim *c, const json_t *doc)
{
    if (json_is_true(json_object_get(doc, "succeeded"))) {
        g->stats.claimed++;
        answer(g, c, HOOK_GO);
        return;
    }
    /* Refused: by the fence (another leader), or because the claim moved. */
    const json_t *resp = json_array_get(json_object_get(doc, "responses"), 0);
    const json_t *kv =
        json_array_get(json_object_get(json_object_get(resp, "response_range"), "kvs"), 0);
    char who[LEADER_ID_MAX + 1] = "";
    const json_t *v = json_object_get(kv, "value");
    if (json_is_string(v))
        leader_unb64(json_string_value(v), who, sizeof(who));
    bool ours = kv && leader_jint64(kv, "create_revision", 0) == c->epoch &&
                !strcmp(who, leader_id(g->leader));
    if (ours && !c->raced) {
        c->raced = true;
        c->step = STEP_READ;
        claim_send(g, c);
        return;
    }
    g->stats.fenced++;
    glog(g,
         "claim for event %" PRIu64 " (%s -> %s) refused by etcd: epoch %" PRId64
         " no longer leads (leader now %s); not acting",
         c->seq, c->node, vigil_state_name(c->state), c->epoch, who[0] ? who : "unknown");
    answer(g, c, HOOK_WAIT);
}

static void on_answer(void *arg, const struct vio_http_result *res)
{
    struct claim *c = arg;
    struct actgate *g = c->g;
    json_t *doc = NULL;
    if (!res->error && res->status == 200)
        doc = json_loadb(res->body, res->body_len, 0, NULL);
    if (!json_is_object(doc)) {
        g->stats.failures++;
        if (res->error || res->status >= 500)
            leader_endpoint_failed(g->leader, c->endpoint);
        glog(g, "claim for event %" PRIu64 " (%s) at %s: %s; trying again", c->seq, c->node,
             c->endpoint,
             res->error ? (res->why ? res->why : "no answer") : "an answer that is not etcd's");
        json_decref(doc);
        if (c->step == STEP_DONE) {
            claim_free(g, c); /* a successor will act again: at least once */
            line_drain(g);
        } else {
            answer(g, c, HOOK_WAIT);
            retry_later(g);
        }
        return;
    }
    switch (c->step) {
    case STEP_READ:
        on_read(g, c, doc);
        break;
    case STEP_WRITE:
        on_write(g, c, doc);
        break;
    case STEP_DONE:
        if (json_is_true(json_object_get(doc, "succeeded")))
            g->stats.acted++;
        else
            glog(g,
                 "event %" PRIu64 " (%s): could not mark it done: epoch %" PRId64
                 " no longer leads",
                 c->seq, c->node, c->epoch);
        claim_free(g, c);
        line_drain(g);
        break;
    }
    json_decref(doc);
}

/* ---- the gate ------------------------------------------------------------- */

static struct claim *claim_new(struct actgate *g, const struct evrec *ev, uint64_t ticket,
                               int64_t epoch, enum claim_step step)
{
    struct claim *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->g = g;
    c->step = step;
    snprintf(c->node, sizeof(c->node), "%s", ev->ev.node);
    c->state = ev->ev.new_state;
    c->seq = ev->ev.seq;
    c->ticket = ticket;
    c->epoch = epoch;
    return c;
}

static enum hook_verdict gate_ask(void *arg, const struct evrec *ev, uint64_t ticket,
                                  int64_t *epoch)
{
    struct actgate *g = arg;
    struct leader_view v;
    leader_view(g->leader, &v);
    if (ev->ev.type == VIGIL_EVENT_PAUSE) {
        *epoch = v.role == LEADER_ROLE_LEADER ? v.epoch : 0;
        return HOOK_GO; /* this monitor's own stall: its own to report */
    }
    if (v.role != LEADER_ROLE_LEADER)
        return HOOK_WAIT;
    enum vigil_state now;
    if (g->state_of && g->state_of(g->arg, ev->ev.node, &now) == 0 && now != ev->ev.new_state) {
        g->stats.superseded++;
        glog(g, "event %" PRIu64 " (%s -> %s): not acted on, the node is %s now", ev->ev.seq,
             ev->ev.node, vigil_state_name(ev->ev.new_state), vigil_state_name(now));
        return HOOK_SKIP;
    }
    struct claim *c = claim_new(g, ev, ticket, v.epoch, STEP_READ);
    if (!c) {
        retry_later(g);
        return HOOK_WAIT;
    }
    claim_queue(g, c);
    return HOOK_WAIT;
}

static bool gate_may_retry(void *arg, const struct evrec *ev, int64_t epoch)
{
    struct actgate *g = arg;
    (void)ev;
    struct leader_view v;
    leader_view(g->leader, &v);
    return epoch == 0 || (v.role == LEADER_ROLE_LEADER && v.epoch == epoch);
}

static void gate_done(void *arg, const struct evrec *ev, int64_t epoch, bool ok)
{
    struct actgate *g = arg;
    if (ev->ev.type == VIGIL_EVENT_PAUSE || epoch == 0)
        return;
    struct claim *c = claim_new(g, ev, 0, epoch, STEP_DONE);
    if (!c)
        return; /* a successor acts again: at least once */
    c->ok = ok;
    claim_queue(g, c);
}

static void on_retry(void *arg, vigil_time_t now)
{
    struct actgate *g = arg;
    (void)now;
    if (leader_is_leader(g->leader))
        hook_runner_gate_reask(g->hooks);
}

int actgate_new(const struct actgate_opts *o, struct actgate **out)
{
    *out = NULL;
    struct actgate *g = calloc(1, sizeof(*g));
    char *prefix = strdup(o->prefix ? o->prefix : "/vigil");
    if (!g || !prefix) {
        free(g);
        free(prefix);
        vio_http_close(o->http);
        return -VIGIL_ENOMEM;
    }
    size_t n = strlen(prefix);
    while (n > 0 && prefix[n - 1] == '/')
        prefix[--n] = '\0';
    g->loop = o->loop;
    g->http = o->http;
    g->leader = o->leader;
    g->hooks = o->hooks;
    g->prefix = prefix;
    g->state_of = o->state_of;
    g->log = o->log;
    g->arg = o->arg;
    vio_timer_init(&g->retry, on_retry, g);
    struct hook_gate hg = {
        .ask = gate_ask, .may_retry = gate_may_retry, .done = gate_done, .arg = g};
    hook_runner_set_gate(g->hooks, &hg);
    *out = g;
    return 0;
}

void actgate_free(struct actgate *g)
{
    if (!g)
        return;
    hook_runner_set_gate(g->hooks, NULL);
    vio_timer_disarm(g->loop, &g->retry);
    vio_http_close(g->http); /* answers in flight are dropped */
    while (g->flight) {
        struct claim *c = g->flight;
        g->flight = c->next;
        free(c);
    }
    while (g->line_head) {
        struct claim *c = g->line_head;
        g->line_head = c->next;
        free(c);
    }
    free(g->prefix);
    free(g);
}

void actgate_view_changed(struct actgate *g, const struct leader_view *v)
{
    bool was = g->view.role == LEADER_ROLE_LEADER;
    g->view = *v;
    if (v->role == LEADER_ROLE_LEADER && !was)
        hook_runner_gate_reask(g->hooks);
}

const struct actgate_stats *actgate_stats(const struct actgate *g)
{
    return &g->stats;
}
