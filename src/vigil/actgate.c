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
/*
 * A request is waited for as long as two leases (10 s with the default
 * TTL): etcd under load answers late rather than never, and a late answer
 * is harmless, since a claim is fenced in etcd and checked against the
 * local deadline before anything runs. A shorter wait would only retry
 * sooner what etcd is still working on.
 */
#define ACTGATE_TIMEOUT_LEASES 2

enum claim_step { STEP_READ, STEP_WRITE, STEP_DONE, STEP_SCAN };

/* Claims read per request of a takeover's scan. */
#define SCAN_PAGE 200

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
    int64_t mod_rev;        /* the claim's mod_revision as read */
    bool raced;             /* the claim changed between read and write once already */
    bool ok;                /* STEP_DONE: every hook succeeded */
    unsigned tries;         /* STEP_DONE: writes tried */
    struct vio_timer timer; /* STEP_DONE: the next try */
    char endpoint[256];
};

/* A claim written and its hooks going: the revision to mark done (one per node at most). */
struct going {
    struct going *next;
    char node[VIGIL_ID_MAX + 1];
    uint64_t seq;
    int64_t rev;
};

struct actgate {
    struct going *going;
    bool scan_again; /* a takeover's scan failed: start it again */
    struct vio_loop *loop;
    struct vio_http *http;
    struct leader *leader;
    struct hook_runner *hooks;
    char *prefix;
    char local_node[VIGIL_ID_MAX + 1];
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
    vio_timer_disarm(g->loop, &c->timer);
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
    if (c->step == STEP_SCAN) {
        /* Every claim from c->node (a key; "" the first) on, a page at a time. */
        char from[VIGIL_ID_MAX + 256], end[VIGIL_ID_MAX + 256];
        snprintf(from, sizeof(from), "%s/actions/%s%s", g->prefix, c->node,
                 c->node[0] ? "\x01" : "");
        snprintf(end, sizeof(end), "%s/actions0", g->prefix); /* '0' follows '/' */
        return json_pack("{s:o,s:o,s:I}", "key", leader_jb64(from), "range_end", leader_jb64(end),
                         "limit", (json_int_t)SCAN_PAGE);
    }
    const char *lkey = leader_key(g->leader), *id = leader_id(g->leader);
    json_t *val = claim_value(c, id, c->step == STEP_DONE);
    char *text = val ? json_dumps(val, JSON_COMPACT) : NULL;
    json_decref(val);
    if (!text)
        return NULL;
    json_t *txn =
        leader_fence_check(lkey, id, c->epoch, json_pack("[o]", leader_put_op(key, text)));
    free(text);
    if (!txn)
        return NULL;
    /*
     * The claim must still be the one read (or, to mark it done, the one
     * written), and a refusal says who holds the leader key.
     */
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
    c->tries++;
    snprintf(c->endpoint, sizeof(c->endpoint), "%s", leader_endpoint(g->leader));
    int rc =
        leader_post(g->http, c->endpoint,
                    c->step == STEP_READ || c->step == STEP_SCAN ? "/v3/kv/range" : "/v3/kv/txn",
                    claim_body(g, c), ACTGATE_TIMEOUT_LEASES * leader_ttl(g->leader),
                    ACTGATE_BODY_MAX, on_answer, c);
    if (rc != 0) {
        g->stats.failures++;
        glog(g, "claim for event %" PRIu64 " (%s): cannot ask etcd (error %d); trying again",
             c->seq, c->node, rc);
        if (c->step == STEP_SCAN)
            g->scan_again = true;
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
        /*
         * A pause between etcd's write and this answer may have outlived
         * the lease: the claim stands (unfinished, so the next leader acts
         * on it), but this monitor acts only while it still leads.
         */
        struct leader_view v;
        leader_view(g->leader, &v);
        if (v.role != LEADER_ROLE_LEADER || v.epoch != c->epoch) {
            glog(g,
                 "claim for event %" PRIu64 " (%s -> %s) accepted, but epoch %" PRId64
                 " no longer leads: the next leader acts on it",
                 c->seq, c->node, vigil_state_name(c->state), c->epoch);
            answer(g, c, HOOK_WAIT);
            return;
        }
        /* The put's revision is the claim's mod_revision: marking it done compares it. */
        int64_t rev = leader_jint64(json_object_get(doc, "header"), "revision", 0);
        struct going **pp = &g->going;
        while (*pp && strcmp((*pp)->node, c->node))
            pp = &(*pp)->next;
        struct going *o = *pp ? *pp : calloc(1, sizeof(*o));
        if (o && !*pp) {
            o->next = g->going;
            g->going = o;
        }
        if (o) {
            snprintf(o->node, sizeof(o->node), "%s", c->node);
            o->seq = c->seq;
            o->rev = rev;
        }
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

static void scan_start(struct actgate *g, const char *after);

struct held_find {
    const char *node;
    enum vigil_state state;
    bool found;
};

static void held_find(void *arg, const struct hook_work *w)
{
    struct held_find *f = arg;
    if (!strcmp(w->node, f->node) && w->rec->ev.type == VIGIL_EVENT_STATE &&
        w->rec->ev.new_state == f->state)
        f->found = true;
}

/*
 * A page of the takeover's scan: every claim left unfinished (done false)
 * by an earlier leader, for a node still in the claimed state, goes to the
 * hooks as an event of its own ("unfinished"), to be claimed and run
 * again: the leader that claimed it may have died before or during its
 * hooks, and this monitor may hold no event of the node any more (it
 * handled them as a follower's, or under an earlier epoch of its own).
 * A node whose own event for that state waits at the gate gets no copy:
 * that event acts. An event the node's FIFO holds behind its head runs
 * first and marks the claim done; the copy then finds it done.
 */
static void on_scan(struct actgate *g, struct claim *c, const json_t *doc)
{
    const json_t *kvs = json_object_get(doc, "kvs");
    char last[VIGIL_ID_MAX + 1] = "";
    size_t plen = strlen(g->prefix) + strlen("/actions/");
    size_t i;
    const json_t *kv;
    json_array_foreach(kvs, i, kv)
    {
        char key[VIGIL_ID_MAX + 256];
        const json_t *k = json_object_get(kv, "key");
        if (!json_is_string(k) || leader_unb64(json_string_value(k), key, sizeof(key)) < 0 ||
            strlen(key) <= plen)
            continue;
        const char *node = key + plen;
        snprintf(last, sizeof(last), "%s", node);
        char state[32], by[LEADER_ID_MAX + 1];
        bool done;
        int64_t epoch;
        read_claim(kv, state, sizeof(state), &done, &epoch, by, sizeof(by));
        enum vigil_state now;
        if (done || !vigil_id_valid(node, strlen(node)) || !g->state_of ||
            g->state_of(g->arg, node, &now) != 0 || strcmp(state, vigil_state_name(now)))
            continue;
        /*
         * The node's own event for that state already waits at the gate:
         * it claims and acts. A copy beside it would read the same
         * unfinished claim, lose the race to write it, read it again as
         * this leader's own and act a second time.
         */
        struct held_find f = {.node = node, .state = now};
        hook_runner_each(g->hooks, held_find, &f);
        if (f.found) {
            glog(g,
                 "%s -> %s: claimed by %s under epoch %" PRId64
                 " and not finished: its event here acts on it",
                 node, state, by[0] ? by : "?", epoch);
            continue;
        }
        struct evrec r;
        memset(&r, 0, sizeof(r));
        r.ev.type = VIGIL_EVENT_STATE;
        r.ev.time = vio_now(g->loop);
        snprintf(r.ev.node, sizeof(r.ev.node), "%s", node);
        r.ev.old_state = VIGIL_STATE_UNKNOWN;
        r.ev.new_state = now;
        r.ev.reason = "unfinished";
        r.ev.since_last = -1;
        r.wall_us = vio_wall_us(g->loop);
        g->stats.unfinished++;
        glog(g, "%s -> %s: claimed by %s under epoch %" PRId64 " and not finished: acting again",
             node, state, by[0] ? by : "?", epoch);
        hook_runner_submit(g->hooks, &r);
    }
    bool more = json_is_true(json_object_get(doc, "more"));
    claim_free(g, c);
    if (more && last[0] && leader_is_leader(g->leader))
        scan_start(g, last);
    line_drain(g);
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
        struct leader_view v;
        leader_view(g->leader, &v);
        if (c->step == STEP_SCAN) {
            g->scan_again = true; /* on_retry starts it again, while this monitor leads */
            claim_free(g, c);
            retry_later(g);
        } else if (c->step == STEP_DONE && v.role == LEADER_ROLE_LEADER &&
                   c->tries < ACTGATE_DONE_TRIES) {
            /*
             * Still ours to finish (this monitor ran the hooks, and leads,
             * perhaps under a new epoch): the write again, a little later.
             */
            vio_timer_arm(g->loop, &c->timer, vio_now(g->loop) + ACTGATE_RETRY);
        } else if (c->step == STEP_DONE) {
            claim_free(g, c); /* the next leader acts again: at least once */
            line_drain(g);
        } else {
            answer(g, c, HOOK_WAIT);
            retry_later(g);
        }
        return;
    }
    switch (c->step) {
    case STEP_SCAN:
        on_scan(g, c, doc);
        break;
    case STEP_READ:
        on_read(g, c, doc);
        break;
    case STEP_WRITE:
        on_write(g, c, doc);
        break;
    case STEP_DONE: {
        struct leader_view v;
        leader_view(g->leader, &v);
        bool ok = json_is_true(json_object_get(doc, "succeeded"));
        if (!ok && v.role == LEADER_ROLE_LEADER && v.epoch != c->epoch &&
            c->tries < ACTGATE_DONE_TRIES) {
            /* This monitor leads again, under a new epoch: it marks its own work done under it. */
            vio_timer_arm(g->loop, &c->timer, vio_now(g->loop));
            break;
        }
        if (ok)
            g->stats.acted++;
        else
            glog(g,
                 "event %" PRIu64 " (%s): could not mark it done: epoch %" PRId64
                 " no longer leads, or the claim moved on",
                 c->seq, c->node, c->epoch);
        claim_free(g, c);
        line_drain(g);
        break;
    }
    }
    json_decref(doc);
}

/* ---- the gate ------------------------------------------------------------- */

static void on_done_retry(void *arg, vigil_time_t now)
{
    struct claim *c = arg;
    struct actgate *g = c->g;
    (void)now;
    struct leader_view v;
    leader_view(g->leader, &v);
    if (v.role != LEADER_ROLE_LEADER) {
        claim_free(g, c); /* the next leader acts again: at least once */
        line_drain(g);
        return;
    }
    c->epoch = v.epoch;
    claim_send(g, c);
}

static struct claim *claim_new(struct actgate *g, const struct evrec *ev, uint64_t ticket,
                               int64_t epoch, enum claim_step step)
{
    struct claim *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    vio_timer_init(&c->timer, on_done_retry, c);
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
    if (evrec_is_own(ev) || (g->local_node[0] && !strcmp(ev->ev.node, g->local_node))) {
        *epoch = v.role == LEADER_ROLE_LEADER ? v.epoch : 0;
        return HOOK_GO; /* this monitor's own (a stall, a change of leader): its own to report */
    }
    if (ev->ev.type == VIGIL_EVENT_CHECK) {
        /* Each monitor runs its checks: the leader acts on its own results, the others not. */
        if (v.role != LEADER_ROLE_LEADER)
            return HOOK_SKIP;
        *epoch = v.epoch;
        return HOOK_GO;
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
    if (evrec_is_own(ev) || epoch == 0 || ev->ev.type == VIGIL_EVENT_CHECK ||
        (g->local_node[0] && !strcmp(ev->ev.node, g->local_node)))
        return;
    /* The claim as this monitor wrote it: marked done only if nobody changed it since. */
    struct going **pp = &g->going;
    while (*pp && (strcmp((*pp)->node, ev->ev.node) || (*pp)->seq != ev->ev.seq))
        pp = &(*pp)->next;
    struct going *o = *pp;
    if (!o)
        return; /* the next leader acts again: at least once */
    *pp = o->next;
    int64_t rev = o->rev;
    free(o);
    struct claim *c = claim_new(g, ev, 0, epoch, STEP_DONE);
    if (!c)
        return;
    c->ok = ok;
    c->mod_rev = rev;
    claim_queue(g, c);
}

static void scan_start(struct actgate *g, const char *after)
{
    struct claim *c = calloc(1, sizeof(*c));
    if (!c) {
        g->scan_again = true;
        retry_later(g);
        return;
    }
    c->g = g;
    c->step = STEP_SCAN;
    vio_timer_init(&c->timer, on_done_retry, c);
    snprintf(c->node, sizeof(c->node), "%s", after);
    claim_queue(g, c);
}

static void on_retry(void *arg, vigil_time_t now)
{
    struct actgate *g = arg;
    (void)now;
    if (!leader_is_leader(g->leader))
        return;
    if (g->scan_again) {
        g->scan_again = false;
        scan_start(g, "");
    }
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
    snprintf(g->local_node, sizeof(g->local_node), "%s", o->local_node ? o->local_node : "");
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
        vio_timer_disarm(g->loop, &c->timer);
        free(c);
    }
    while (g->line_head) {
        struct claim *c = g->line_head;
        g->line_head = c->next;
        free(c);
    }
    while (g->going) {
        struct going *o = g->going;
        g->going = o->next;
        free(o);
    }
    free(g->prefix);
    free(g);
}

void actgate_view_changed(struct actgate *g, const struct leader_view *v)
{
    bool was = g->view.role == LEADER_ROLE_LEADER;
    g->view = *v;
    if (v->role == LEADER_ROLE_LEADER && !was) {
        hook_runner_gate_reask(g->hooks);
        scan_start(g, "");
    }
}

const struct actgate_stats *actgate_stats(const struct actgate *g)
{
    return &g->stats;
}
