/*
 * The simulator behind `vigil sim`.
 *
 * One real monitor core, the pure vigil_monitor_* of libvigil, and a number
 * of simulated agents, on one virtual clock. Each agent sends on a fixed
 * grid (its interval, from a random phase) until it crashes; each datagram
 * is lost with probability loss, or arrives after delay + an exponential
 * jitter (mean jitter) + a spike (extra delay spike, with probability
 * spike_p), which also reorders datagrams. The monitor stops for `pause`
 * every `pause_every`: datagrams that arrive meanwhile wait in the socket
 * and are handed in when it resumes, with their arrival times, as the
 * monitor program does (monitord.c), which also reports the stall
 * (vigil_monitor_note_pause) once it is longer than pause_tolerance.
 *
 * Crashes hit distinct random nodes at random times between a tenth and
 * four fifths of the run, so that every crash has time to be detected.
 * A suspect or dead verdict on a node that has not crashed is false.
 *
 * Everything is driven by one event heap ordered by (time, insertion
 * order) and one seeded generator: a seed replays a run exactly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsim.h"

enum { EV_SEND, EV_ARRIVE, EV_RESUME };

struct ev {
    vigil_time_t at;
    uint64_t order;
    uint32_t node;
    uint32_t kind;
    uint64_t seq;
};

struct held {
    vigil_time_t at;
    uint32_t node;
    uint64_t seq;
};

struct sim {
    const struct vsim_params *p;
    uint64_t rng;
    struct vigil_monitor *mon;
    struct ev *heap;
    size_t len, cap;
    uint64_t order;
    struct held *held;
    size_t n_held, cap_held;
    vigil_time_t fed; /* the latest time handed to the core */
    uint64_t *seq;
    vigil_time_t *crash_at;
    uint8_t *detected;
    struct vsim_result *r;
    size_t cap_detect;
    bool oom;
};

/* splitmix64 for the seed, xorshift64* for the stream: small, fast, the same everywhere. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(0x2545F4914F6CDD1D);
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

void vsim_params_default(struct vsim_params *p)
{
    memset(p, 0, sizeof(*p));
    vigil_monitor_config_default(&p->mon);
    p->interval = p->mon.interval;
    p->nodes = 100;
    p->duration = 3600 * VIGIL_NSEC_PER_SEC;
    /* A fifth of a millisecond: a datagram across a quiet data-centre network. */
    p->delay = 200000;
    p->seed = 1;
}

static bool before(const struct ev *a, const struct ev *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void push(struct sim *s, struct ev e)
{
    if (s->len == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        struct ev *h = realloc(s->heap, ncap * sizeof(*h));
        if (!h) {
            s->oom = true;
            return;
        }
        s->heap = h;
        s->cap = ncap;
    }
    e.order = s->order++;
    size_t i = s->len++;
    while (i > 0 && before(&e, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
}

static struct ev pop(struct sim *s)
{
    struct ev top = s->heap[0], e = s->heap[--s->len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->len)
            break;
        if (c + 1 < s->len && before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!before(&s->heap[c], &e))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    s->heap[i] = e;
    return top;
}

static void node_id(uint32_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "sim-%06u", i);
}

static vigil_time_t net_delay(struct sim *s)
{
    const struct vsim_params *p = s->p;
    double d = (double)p->delay;
    if (p->jitter > 0)
        d += -(double)p->jitter * log1p(-rng_unit(&s->rng) * 0.999999999);
    if (p->spike_p > 0 && rng_unit(&s->rng) < p->spike_p)
        d += (double)p->spike;
    return (vigil_time_t)d;
}

static bool in_pause(const struct vsim_params *p, vigil_time_t t)
{
    if (p->pause_every <= 0 || p->pause <= 0 || t < p->pause_every)
        return false;
    return t % p->pause_every < p->pause;
}

static void add_detect(struct sim *s, vigil_time_t td)
{
    struct vsim_result *r = s->r;
    if (r->n_detect == s->cap_detect) {
        size_t ncap = s->cap_detect ? s->cap_detect * 2 : 64;
        vigil_time_t *d = realloc(r->detect, ncap * sizeof(*d));
        if (!d) {
            s->oom = true;
            return;
        }
        r->detect = d;
        s->cap_detect = ncap;
    }
    r->detect[r->n_detect++] = td;
}

static void drain(struct sim *s)
{
    struct vigil_event ev;
    while (vigil_monitor_poll_event(s->mon, &ev)) {
        if (ev.type == VIGIL_EVENT_PAUSE) {
            s->r->pauses++;
            continue;
        }
        uint32_t i = (uint32_t)strtoul(ev.node + 4, NULL, 10);
        if (i >= s->p->nodes)
            continue;
        bool crashed = ev.time >= s->crash_at[i];
        if (ev.new_state == VIGIL_STATE_SUSPECT && !crashed)
            s->r->false_suspicions++;
        if (ev.new_state == VIGIL_STATE_DEAD) {
            if (!crashed) {
                s->r->false_deaths++;
            } else if (!s->detected[i]) {
                s->detected[i] = 1;
                add_detect(s, ev.time - s->crash_at[i]);
            }
        }
    }
}

static void deliver(struct sim *s, uint32_t node, uint64_t seq, vigil_time_t at)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    node_id(node, hb.id, sizeof(hb.id));
    hb.generation = 1;
    hb.sequence = seq;
    hb.interval_ms = (uint32_t)(s->p->interval / VIGIL_NSEC_PER_MSEC);
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
    if (len <= 0)
        return;
    /* The core's clock only moves forward, as in the monitor program. */
    if (at > s->fed)
        s->fed = at;
    vigil_monitor_on_datagram(s->mon, s->fed, buf, (size_t)len, NULL);
    s->r->delivered++;
    drain(s);
}

static void resume(struct sim *s, vigil_time_t now)
{
    for (size_t i = 0; i < s->n_held; i++)
        deliver(s, s->held[i].node, s->held[i].seq, s->held[i].at);
    s->n_held = 0;
    if (now > s->fed)
        s->fed = now;
    if (s->p->pause > s->p->mon.pause_tolerance)
        vigil_monitor_note_pause(s->mon, s->fed, s->p->pause);
    if (vigil_monitor_next_deadline(s->mon) <= s->fed)
        vigil_monitor_on_expiry(s->mon, s->fed);
    drain(s);
}

static void hold(struct sim *s, const struct ev *e)
{
    if (s->n_held == s->cap_held) {
        size_t ncap = s->cap_held ? s->cap_held * 2 : 256;
        struct held *h = realloc(s->held, ncap * sizeof(*h));
        if (!h) {
            s->oom = true;
            return;
        }
        s->held = h;
        s->cap_held = ncap;
    }
    s->held[s->n_held++] = (struct held){.at = e->at, .node = e->node, .seq = e->seq};
}

static int cmp_time(const void *a, const void *b)
{
    vigil_time_t x = *(const vigil_time_t *)a, y = *(const vigil_time_t *)b;
    return x < y ? -1 : x > y;
}

static void run(struct sim *s)
{
    const struct vsim_params *p = s->p;
    vigil_time_t end = p->duration;
    while (!s->oom) {
        vigil_time_t due = vigil_monitor_next_deadline(s->mon);
        vigil_time_t next = s->len ? s->heap[0].at : VIGIL_TIME_NEVER;
        if (due <= next && due <= end && !in_pause(p, due)) {
            if (due > s->fed)
                s->fed = due;
            vigil_monitor_on_expiry(s->mon, s->fed);
            drain(s);
            continue;
        }
        if (next > end)
            return;
        struct ev e = pop(s);
        switch (e.kind) {
        case EV_SEND:
            if (e.at >= s->crash_at[e.node])
                break; /* crashed: sends nothing more */
            s->seq[e.node]++;
            s->r->sent++;
            if (rng_unit(&s->rng) >= p->loss)
                push(s, (struct ev){.at = e.at + net_delay(s),
                                    .node = e.node,
                                    .kind = EV_ARRIVE,
                                    .seq = s->seq[e.node]});
            push(s, (struct ev){.at = e.at + p->interval, .node = e.node, .kind = EV_SEND});
            break;
        case EV_ARRIVE:
            if (in_pause(p, e.at))
                hold(s, &e);
            else
                deliver(s, e.node, e.seq, e.at);
            break;
        case EV_RESUME:
            resume(s, e.at);
            break;
        }
    }
}

int vsim_run(const struct vsim_params *p, struct vsim_result *r, char *err, size_t cap)
{
    memset(r, 0, sizeof(*r));
    if (p->nodes < 1 || p->nodes > VSIM_NODES_MAX || p->duration <= 0 || p->interval <= 0 ||
        !(p->loss >= 0 && p->loss < 1) || p->crashes > p->nodes || p->delay < 0 || p->jitter < 0 ||
        !(p->spike_p >= 0 && p->spike_p <= 1) || p->pause < 0) {
        snprintf(err, cap, "invalid simulation parameters");
        return -1;
    }
    struct sim s;
    memset(&s, 0, sizeof(s));
    s.p = p;
    s.r = r;
    uint64_t z = p->seed + UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    s.rng = (z ^ (z >> 31)) | 1;

    struct vigil_monitor_config mc = p->mon;
    if (mc.max_nodes < p->nodes)
        mc.max_nodes = p->nodes;
    int rc = vigil_monitor_new(&mc, 0, &s.mon);
    if (rc) {
        snprintf(err, cap, "cannot create the monitor: %s", vigil_strerror(rc));
        return -1;
    }
    s.seq = calloc(p->nodes, sizeof(*s.seq));
    s.crash_at = calloc(p->nodes, sizeof(*s.crash_at));
    s.detected = calloc(p->nodes, 1);
    uint32_t *order = calloc(p->nodes, sizeof(*order));
    if (!s.seq || !s.crash_at || !s.detected || !order) {
        s.oom = true;
        goto out;
    }
    for (uint32_t i = 0; i < p->nodes; i++) {
        s.crash_at[i] = VIGIL_TIME_NEVER;
        order[i] = i;
        push(&s, (struct ev){.at = (vigil_time_t)(rng_unit(&s.rng) * (double)p->interval),
                             .node = i,
                             .kind = EV_SEND});
    }
    /* Distinct nodes (a partial Fisher-Yates shuffle) crash between 10 % and 80 % of the run. */
    for (uint32_t k = 0; k < p->crashes; k++) {
        uint32_t j = k + (uint32_t)(rng_unit(&s.rng) * (p->nodes - k));
        uint32_t t = order[k];
        order[k] = order[j];
        order[j] = t;
        s.crash_at[order[k]] =
            p->duration / 10 + (vigil_time_t)(rng_unit(&s.rng) * 0.7 * (double)p->duration);
    }
    r->crashed = p->crashes;
    if (p->pause_every > 0 && p->pause > 0)
        for (vigil_time_t t = p->pause_every; t + p->pause <= p->duration; t += p->pause_every)
            push(&s, (struct ev){.at = t + p->pause, .kind = EV_RESUME});
    run(&s);
    if (s.oom)
        goto out;

    for (uint32_t i = 0; i < p->nodes; i++) {
        const struct vigil_node *n;
        char id[32];
        node_id(i, id, sizeof(id));
        if (s.crash_at[i] != VIGIL_TIME_NEVER && !s.detected[i])
            r->undetected++;
        n = vigil_monitor_find(s.mon, id);
        if (n) {
            struct vigil_node_qos q;
            vigil_monitor_node_qos(s.mon, n, &q);
            r->core_mistakes += q.mistakes;
            r->core_false_deaths += q.false_deaths;
            vigil_time_t up = s.crash_at[i] < p->duration ? s.crash_at[i] : p->duration;
            if (q.first_heard >= 0 && up > q.first_heard)
                r->node_hours += (double)(up - q.first_heard) / 3.6e12;
        }
    }
    qsort(r->detect, r->n_detect, sizeof(*r->detect), cmp_time);
out:
    vigil_monitor_free(s.mon);
    free(s.heap);
    free(s.held);
    free(s.seq);
    free(s.crash_at);
    free(s.detected);
    free(order);
    if (s.oom) {
        vsim_result_free(r);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    return 0;
}

void vsim_result_free(struct vsim_result *r)
{
    free(r->detect);
    r->detect = NULL;
    r->n_detect = 0;
}

vigil_time_t vsim_quantile(const struct vsim_result *r, double q)
{
    if (r->n_detect == 0)
        return -1;
    /* Nearest rank: the smallest value with at least q of the values at or below it. */
    double rank = ceil(q * r->n_detect);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    if (i >= r->n_detect)
        i = r->n_detect - 1;
    return r->detect[i];
}

double vsim_gap_jitter(const struct vsim_params *p)
{
    double j = (double)p->jitter / 1e9, sp = (double)p->spike / 1e9;
    double var_delay = j * j + p->spike_p * (1 - p->spike_p) * sp * sp;
    return sqrt(2 * var_delay);
}
