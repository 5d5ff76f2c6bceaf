/*
 * The monitor and its state store (mstore.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hwm.h"
#include "mstore.h"

/* An event waiting for its transaction. */
struct qevent {
    uint64_t seq;
    int64_t wall_us;
    char node[VIGIL_ID_MAX + 1];
    char *json;
};

/*
 * The reasons of events read back: the history holds events whose reason
 * is a static string, so each distinct reason read from the store is kept
 * here once, for as long as the store is open.
 */
/* Reasons of state changes are a handful; actions' records add a few per action. */
#define REASONS_MAX 1024

struct mstore {
    struct vio_store *st;
    struct qevent *q;
    size_t n_q, cap_q;
    uint64_t lost;
    char *reasons[REASONS_MAX];
    size_t n_reasons;
    char err[300];
};

static const char *intern_reason(struct mstore *s, const char *r)
{
    for (size_t i = 0; i < s->n_reasons; i++)
        if (!strcmp(s->reasons[i], r))
            return s->reasons[i];
    if (s->n_reasons == REASONS_MAX)
        return "restored";
    char *c = strdup(r);
    if (!c)
        return "restored";
    s->reasons[s->n_reasons++] = c;
    return c;
}

struct load_ctx {
    struct mstore *s;
    const struct vcfg_monitor *mc;
    struct vigil_monitor *m;
    struct evlog *history;
    vigil_time_t now;
    struct mstore_loaded *loaded;
};

static int load_event(void *arg, const struct vio_store_event *e)
{
    struct load_ctx *c = arg;
    json_error_t jerr;
    json_t *o = json_loads(e->json, 0, &jerr);
    struct evrec r;
    /* A row this vigil cannot read is skipped: its number is still never used again. */
    if (o && evrec_from_json(o, &r) == 0 && r.ev.seq == e->seq) {
        r.ev.reason = intern_reason(c->s, r.ev.reason ? r.ev.reason : "");
        evlog_push(c->history, &r);
        c->loaded->events++;
    }
    json_decref(o);
    return 0;
}

static int load_node(void *arg, const struct vio_store_node *n)
{
    struct load_ctx *c = arg;
    uint64_t slack = hwm_slack(c->mc->state_flush, n->interval_ms);
    uint64_t seq = n->sequence > UINT64_MAX - slack ? UINT64_MAX : n->sequence + slack;
    /*
     * Known and not gone: watched again from now, with startup_grace to be
     * heard. Declaring needs a node the configuration would accept.
     */
    if (n->state != VIGIL_STATE_LEFT && c->mc->core.auto_register &&
        vigil_monitor_declare(c->m, n->id, c->now) == 0)
        c->loaded->declared++;
    int rc = vigil_monitor_restore(c->m, n->id, n->generation, seq, c->now);
    if (rc == 0)
        c->loaded->nodes++;
    /* Not accepted now (auto-registration off, a full table, a bad id): nothing to guard. */
    return 0;
}

int mstore_open(struct vio_env *env, const struct vcfg_monitor *mc, struct vigil_monitor *m,
                struct evlog *history, vigil_time_t now, struct mstore **out,
                struct mstore_loaded *loaded, char *err, size_t cap)
{
    *out = NULL;
    memset(loaded, 0, sizeof(*loaded));
    if (!env->store_open) {
        snprintf(err, cap, "monitor.state_dir: no state store in this environment");
        return -1;
    }
    struct mstore *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    char why[400];
    if (env->store_open(env, mc->state_dir, &s->st, why, sizeof(why)) != 0) {
        snprintf(err, cap, "monitor.state_dir: %s", why);
        free(s);
        return -1;
    }
    struct load_ctx c = {s, mc, m, history, now, loaded};
    const char *what = "reading the last event number";
    int rc = s->st->ops->last_seq(s->st, &loaded->last_seq);
    if (!rc) {
        vigil_monitor_set_event_seq(m, loaded->last_seq);
        what = "reading the events";
        rc = s->st->ops->events(s->st, 0, mc->event_history, load_event, &c);
    }
    if (!rc) {
        what = "reading the nodes";
        rc = s->st->ops->nodes(s->st, load_node, &c);
    }
    if (rc) {
        snprintf(err, cap, "monitor.state_dir %s: %s: %s", mc->state_dir, what,
                 s->st->ops->error(s->st));
        mstore_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void mstore_add_event(struct mstore *s, const struct evrec *r, const char *json)
{
    char *copy = json ? strdup(json) : NULL;
    if (!copy) {
        s->lost++;
        return;
    }
    if (s->n_q == s->cap_q) {
        size_t cap = s->cap_q ? 2 * s->cap_q : 16;
        struct qevent *q = s->n_q < MSTORE_QUEUE_MAX ? realloc(s->q, cap * sizeof(*q)) : NULL;
        if (!q && s->n_q == 0) {
            free(copy);
            s->lost++;
            return;
        }
        if (!q) {
            /* The store has been refusing writes for long: the oldest goes. */
            free(s->q[0].json);
            memmove(s->q, s->q + 1, (s->n_q - 1) * sizeof(*s->q));
            s->n_q--;
            s->lost++;
        } else {
            s->q = q;
            s->cap_q = cap;
        }
    }
    struct qevent *e = &s->q[s->n_q++];
    e->seq = r->ev.seq;
    e->wall_us = r->wall_us;
    snprintf(e->node, sizeof(e->node), "%s", r->ev.node);
    e->json = copy;
}

static int write_batch(struct mstore *s, struct vio_store_node *nodes, size_t n_nodes)
{
    struct vio_store_event *evs = NULL;
    if (s->n_q) {
        evs = malloc(s->n_q * sizeof(*evs));
        if (!evs)
            return snprintf(s->err, sizeof(s->err), "out of memory"), -ENOMEM;
        for (size_t i = 0; i < s->n_q; i++)
            evs[i] = (struct vio_store_event){.seq = s->q[i].seq,
                                              .wall_us = s->q[i].wall_us,
                                              .node = s->q[i].node,
                                              .json = s->q[i].json};
    }
    struct vio_store_batch b = {
        .events = evs, .n_events = s->n_q, .nodes = nodes, .n_nodes = n_nodes};
    int rc = vio_store_write(s->st, &b);
    free(evs);
    if (rc) {
        snprintf(s->err, sizeof(s->err), "%s", s->st->ops->error(s->st));
        return rc;
    }
    for (size_t i = 0; i < s->n_q; i++)
        free(s->q[i].json);
    s->n_q = 0;
    return 0;
}

int mstore_commit(struct mstore *s)
{
    return s->n_q ? write_batch(s, NULL, 0) : 0;
}

int mstore_save(struct mstore *s, const struct vigil_monitor *m)
{
    size_t from = 0;
    return mstore_save_slice(s, m, &from, SIZE_MAX);
}

int mstore_save_slice(struct mstore *s, const struct vigil_monitor *m, size_t *from, size_t max)
{
    size_t total = vigil_monitor_node_count(m), k = 0;
    size_t first = *from < total ? *from : total;
    size_t n = total - first < max ? total - first : max;
    struct vio_store_node *nodes = n ? malloc(n * sizeof(*nodes)) : NULL;
    if (n && !nodes)
        return snprintf(s->err, sizeof(s->err), "out of memory"), -ENOMEM;
    for (size_t i = first; i < first + n; i++) {
        const struct vigil_node *node = vigil_monitor_node_at(m, i);
        uint64_t gen = vigil_node_generation(node), seq = vigil_node_sequence(node);
        if (gen == 0 && seq == 0)
            continue; /* never heard: no mark, and nothing known to keep */
        nodes[k++] = (struct vio_store_node){
            .id = vigil_node_id(node),
            .generation = gen,
            .sequence = seq,
            .interval_ms = (uint32_t)(vigil_node_interval(node) / VIGIL_NSEC_PER_MSEC),
            .state = vigil_node_state(node),
        };
    }
    int rc = write_batch(s, nodes, k);
    free(nodes);
    if (rc == 0)
        *from = first + n;
    return rc;
}

uint64_t mstore_lost(const struct mstore *s)
{
    return s ? s->lost : 0;
}

struct vio_store *mstore_store(struct mstore *s)
{
    return s ? s->st : NULL;
}

const char *mstore_error(const struct mstore *s)
{
    return s->err;
}

void mstore_free(struct mstore *s)
{
    if (!s)
        return;
    vio_store_close(s->st);
    for (size_t i = 0; i < s->n_q; i++)
        free(s->q[i].json);
    free(s->q);
    for (size_t i = 0; i < s->n_reasons; i++)
        free(s->reasons[i]);
    free(s);
}
