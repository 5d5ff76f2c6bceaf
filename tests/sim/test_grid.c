/*
 * Simulation of the grid detector near the information limit: agents at
 * 100 ms heartbeats on their fixed grids, a lossy and jittery network, one
 * monitor core, all in virtual time. Each run is seeded and prints its
 * seed; VIGIL_SIM_SEED=N replays it exactly, and VIGIL_SIM_NODE_HOURS=N
 * sets the node-hours of each long run (default 1000).
 *
 * Agents crash now and then (they stop sending at a random moment) and
 * restart a few seconds later with a new boot generation on a new grid, so
 * one run holds both thousands of node-hours of live nodes, where every
 * suspicion or conviction is a false alarm, and hundreds of crashes, whose
 * detection times are measured from the moment of the crash.
 *
 * With heartbeat interval h, loss p, G heartbeat gaps in a run and a
 * false-alarm budget e, no detector can be sure before k * h, with
 * k = ceil(log(e / G) / log p) heartbeats missed in a row. Two kinds of run:
 *
 *   - the default thresholds at the scale they are made for (a budget of
 *     a 1 % chance of a false death over about 10^5 to 10^6 heartbeats):
 *     at 0 % and 5 % loss, 0 false alarms and a median detection time of at
 *     most 0.6 s after the crash; at 20 %, 0 false deaths and a median
 *     within 1.5 times the limit;
 *   - the thresholds chosen for a long run's own G and e, as
 *     docs/detection.md explains (dead at log10(G / e), suspect half a
 *     decade lower): 0 false deaths over hundreds of node-hours at 0, 5 and
 *     20 % loss, 0 false suspicions at 0 and 5 %, and a median within 1.5
 *     times the limit at every loss rate.
 *
 * The network: a one-way delay of 0.1 ms plus an exponential tail (mean
 * 0.3 ms), and 1 datagram in 5000 delayed by up to 300 ms more (which
 * reorders it behind the next ones); the agents' timers fire 20 us plus an
 * exponential tail (mean 0.1 ms) after their slot, and 1 beat in 10000 up
 * to 10 ms late (a busy host).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vigil/vigil.h>

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC
#define US INT64_C(1000)

/* The heartbeat interval of every run. */
#define H (100 * MS)
/* A crashed agent comes back this long after its crash. */
#define RESTART_AFTER (3 * S)

static uint64_t seed_base;

/* xorshift64*: small, fast, and the same on every machine. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

/* An exponential variate of the given mean (ns). */
static vigil_time_t rng_exp(uint64_t *s, double mean)
{
    return (vigil_time_t)(-mean * log1p(-rng_unit(s) * 0.999999));
}

enum { EV_SEND = 0, EV_ARRIVE = 1, EV_RESTART = 2 };

struct simev {
    vigil_time_t at;
    uint64_t order;
    uint32_t node;
    uint32_t kind;
    uint64_t gen, seq, slot;
};

struct node {
    uint64_t gen, seq;
    vigil_time_t start;    /* the grid's first slot */
    vigil_time_t crash_at; /* the next crash */
    vigil_time_t crashed;  /* when it crashed, or -1 while it runs */
    bool suspected, dead;  /* this crash seen by the monitor */
};

struct times {
    double *v;
    size_t n, cap;
};

struct gsim {
    uint64_t rng;
    struct vigil_monitor *mon;
    uint32_t n;
    struct simev *heap;
    size_t len, cap;
    uint64_t order;
    struct node *nodes;
    double loss;
    vigil_time_t crash_mean; /* mean time between crashes of one agent */
    /* counts */
    uint64_t false_suspects, false_deads, crashes, sent;
    struct times td_dead, td_suspect;
};

static void times_add(struct times *t, double v)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 256;
        t->v = realloc(t->v, t->cap * sizeof(*t->v));
        assert_non_null(t->v);
    }
    t->v[t->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of the times; NAN when there are none. */
static double quantile(struct times *t, double q)
{
    if (t->n == 0)
        return NAN;
    qsort(t->v, t->n, sizeof(*t->v), cmp_double);
    size_t i = (size_t)ceil(q * (double)t->n);
    return t->v[i > 0 ? i - 1 : 0];
}

static bool before(const struct simev *a, const struct simev *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void push(struct gsim *s, struct simev e)
{
    if (s->len == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->heap = realloc(s->heap, s->cap * sizeof(*s->heap));
        assert_non_null(s->heap);
    }
    e.order = s->order++;
    size_t i = s->len++;
    while (i > 0 && before(&e, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
}

static struct simev pop(struct gsim *s)
{
    struct simev top = s->heap[0], e = s->heap[--s->len];
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

/* The agent's timer: 20 us plus an exponential tail, 1 in 10000 up to 10 ms late. */
static vigil_time_t sched_noise(struct gsim *s)
{
    vigil_time_t d = 20 * US + rng_exp(&s->rng, 100 * US);
    if (rng_unit(&s->rng) < 1e-4)
        d += (vigil_time_t)(rng_unit(&s->rng) * 10 * MS);
    return d;
}

/* One-way delay: 0.1 ms plus an exponential tail; 1 in 5000 up to 300 ms more. */
static vigil_time_t net_delay(struct gsim *s)
{
    vigil_time_t d = 100 * US + rng_exp(&s->rng, 300 * US);
    if (rng_unit(&s->rng) < 2e-4)
        d += (vigil_time_t)(rng_unit(&s->rng) * 300 * MS);
    return d;
}

/* Starts agent i (again) at t: a new generation on a new grid, and its next crash. */
static void agent_start(struct gsim *s, uint32_t i, vigil_time_t t)
{
    struct node *nd = &s->nodes[i];
    nd->gen++;
    nd->seq = 0;
    nd->start = t + (vigil_time_t)(rng_unit(&s->rng) * H);
    nd->crashed = -1;
    nd->suspected = nd->dead = false;
    nd->crash_at =
        s->crash_mean > 0 ? t + 10 * S + rng_exp(&s->rng, (double)s->crash_mean) : VIGIL_TIME_NEVER;
    push(s, (struct simev){.at = nd->start + sched_noise(s), .node = i, .kind = EV_SEND});
}

static void gsim_init(struct gsim *s, uint32_t n, double loss, vigil_time_t crash_mean,
                      double suspect, double dead, uint64_t salt)
{
    memset(s, 0, sizeof(*s));
    s->rng = seed_base ^ (salt * 0x9E3779B97F4A7C15ULL);
    if (!s->rng)
        s->rng = 1;
    s->n = n;
    s->loss = loss;
    s->crash_mean = crash_mean;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    c.interval = H;
    vigil_detector_config_default(&c.detector, VIGIL_DETECTOR_GRID, H);
    if (suspect > 0) {
        c.detector.suspect_threshold = suspect;
        c.detector.dead_threshold = dead;
    }
    c.max_nodes = n;
    assert_int_equal(vigil_monitor_new(&c, 0, &s->mon), 0);
    s->nodes = calloc(n, sizeof(*s->nodes));
    assert_non_null(s->nodes);
    for (uint32_t i = 0; i < n; i++)
        agent_start(s, i, 0);
}

static void gsim_free(struct gsim *s)
{
    vigil_monitor_free(s->mon);
    free(s->heap);
    free(s->nodes);
    free(s->td_dead.v);
    free(s->td_suspect.v);
}

static void drain(struct gsim *s)
{
    struct vigil_event ev;
    while (vigil_monitor_poll_event(s->mon, &ev)) {
        assert_int_equal(ev.type, VIGIL_EVENT_STATE);
        uint32_t i = (uint32_t)strtoul(ev.node + 5, NULL, 10);
        struct node *nd = &s->nodes[i];
        bool down = nd->crashed >= 0 && ev.time >= nd->crashed;
        if (ev.new_state == VIGIL_STATE_SUSPECT) {
            if (!down) {
                s->false_suspects++;
                printf("# false suspicion: %s at %.3f s, level %.2f, loss %.4f, missed %llu\n",
                       ev.node, (double)ev.time / S, ev.level, ev.loss,
                       (unsigned long long)ev.missed);
            } else if (!nd->suspected) {
                nd->suspected = true;
                times_add(&s->td_suspect, (double)(ev.time - nd->crashed) / S);
            }
        }
        if (ev.new_state == VIGIL_STATE_DEAD) {
            if (!down) {
                s->false_deads++;
                printf("# false death: %s at %.3f s, level %.2f, loss %.4f, missed %llu\n", ev.node,
                       (double)ev.time / S, ev.level, ev.loss, (unsigned long long)ev.missed);
            } else if (!nd->dead) {
                nd->dead = true;
                times_add(&s->td_dead, (double)(ev.time - nd->crashed) / S);
            }
        }
    }
}

static void node_id(uint32_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "node-%05u", i);
}

static void deliver(struct gsim *s, const struct simev *e)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    node_id(e->node, hb.id, sizeof(hb.id));
    hb.generation = e->gen;
    hb.sequence = e->seq;
    hb.interval_ms = (uint32_t)(H / MS);
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
    assert_true(len > 0);
    int rc = vigil_monitor_on_datagram(s->mon, e->at, buf, (size_t)len, NULL);
    /* Reordered datagrams are stale; nothing else may be refused. */
    assert_true(rc == 0 || rc == -VIGIL_ESTALE);
}

static void gsim_run(struct gsim *s, vigil_time_t end)
{
    for (;;) {
        vigil_time_t due = vigil_monitor_next_deadline(s->mon);
        vigil_time_t next = s->len ? s->heap[0].at : VIGIL_TIME_NEVER;
        if (due <= next && due <= end) {
            vigil_monitor_on_expiry(s->mon, due);
            drain(s);
            continue;
        }
        if (next > end)
            return;
        struct simev e = pop(s);
        struct node *nd = &s->nodes[e.node];
        if (e.kind == EV_RESTART) {
            agent_start(s, e.node, e.at);
        } else if (e.kind == EV_SEND) {
            if (e.gen != nd->gen && e.slot != 0)
                continue; /* a timer of the agent before its restart */
            if (e.at >= nd->crash_at) {
                /* It crashed before this beat: it sends nothing more. */
                nd->crashed = nd->crash_at;
                nd->crash_at = VIGIL_TIME_NEVER;
                s->crashes++;
                push(s, (struct simev){
                            .at = nd->crashed + RESTART_AFTER, .node = e.node, .kind = EV_RESTART});
                continue;
            }
            s->sent++;
            uint64_t seq = ++nd->seq;
            if (rng_unit(&s->rng) >= s->loss)
                push(s, (struct simev){.at = e.at + net_delay(s),
                                       .node = e.node,
                                       .kind = EV_ARRIVE,
                                       .gen = nd->gen,
                                       .seq = seq});
            /* The next slot of the fixed grid, whatever this beat's lateness. */
            uint64_t slot = e.slot + 1;
            push(s, (struct simev){.at = nd->start + (vigil_time_t)slot * H + sched_noise(s),
                                   .node = e.node,
                                   .kind = EV_SEND,
                                   .gen = nd->gen,
                                   .slot = slot});
        } else {
            deliver(s, &e);
            drain(s);
        }
    }
}

static void print_seed(const char *name)
{
    printf("# %s: seed %llu (replay with VIGIL_SIM_SEED=%llu)\n", name,
           (unsigned long long)seed_base, (unsigned long long)seed_base);
}

/* Node-hours of each long run (VIGIL_SIM_NODE_HOURS, default 1000). */
static double node_hours(void)
{
    const char *env = getenv("VIGIL_SIM_NODE_HOURS");
    double v = env ? strtod(env, NULL) : 1000;
    return v > 0 ? v : 1000;
}

/* The information limit in heartbeat intervals: ceil(log(e / G) / log p). */
static double limit_slots(double loss, double gaps, double budget)
{
    if (loss <= 0)
        return 1;
    return ceil(log(budget / gaps) / log(loss));
}

struct outcome {
    double median, p95, s_median, limit_s;
};

/*
 * Runs n agents for secs seconds at the given loss, crashing on average
 * every crash_mean; thresholds (suspect, dead), or the defaults when 0.
 * Prints the figures and returns them.
 */
static struct outcome run(const char *name, uint32_t n, double secs, double loss,
                          vigil_time_t crash_mean, double suspect, double dead, double budget,
                          uint64_t salt)
{
    struct gsim s;
    struct outcome o;
    gsim_init(&s, n, loss, crash_mean, suspect, dead, salt);
    gsim_run(&s, (vigil_time_t)(secs * S));
    double gaps = (double)vigil_monitor_stats(s.mon)->accepted;
    struct vigil_detector_config dc;
    vigil_detector_config_default(&dc, VIGIL_DETECTOR_GRID, H);
    if (suspect > 0) {
        dc.suspect_threshold = suspect;
        dc.dead_threshold = dead;
    }
    o.limit_s = limit_slots(loss, gaps, budget) * (double)H / S;
    o.median = quantile(&s.td_dead, 0.5);
    o.p95 = quantile(&s.td_dead, 0.95);
    o.s_median = quantile(&s.td_suspect, 0.5);
    printf("# %s: %u agents x %.0f s = %.0f node-hours at %.0f%% loss, thresholds %.2f/%.2f\n",
           name, n, secs, n * secs / 3600, loss * 100, dc.suspect_threshold, dc.dead_threshold);
    printf("#   %llu heartbeats sent, G = %.0f gaps, %llu crashes; false suspicions %llu, "
           "false deaths %llu\n",
           (unsigned long long)s.sent, gaps, (unsigned long long)s.crashes,
           (unsigned long long)s.false_suspects, (unsigned long long)s.false_deads);
    printf("#   detection after the crash: dead median %.3f s, p95 %.3f s (%zu crashes); suspect "
           "median %.3f s\n",
           o.median, o.p95, s.td_dead.n, o.s_median);
    if (loss > 0)
        printf("#   limit for G and e = %g: k = %.0f, k*h = %.3f s; median / limit = %.2f\n",
               budget, o.limit_s * S / (double)H, o.limit_s, o.median / o.limit_s);
    assert_int_equal(s.false_deads, 0);
    if (loss <= 0.05)
        assert_int_equal(s.false_suspects, 0);
    /* Every crash whose detection fell inside the run was detected. */
    assert_true(s.td_dead.n + n >= s.crashes);
    assert_true(s.td_dead.n >= 20);
    gsim_free(&s);
    return o;
}

/*
 * The default thresholds at the scale they are made for: 20 agents for 10
 * minutes (G about 1.2 * 10^5), crashing about once a minute.
 */
static void test_defaults_goal(void **st)
{
    (void)st;
    print_seed("defaults_goal");
    static const double losses[] = {0.0, 0.05, 0.20};
    for (size_t i = 0; i < sizeof(losses) / sizeof(losses[0]); i++) {
        struct outcome o =
            run("defaults", 20, 600, losses[i], 60 * S, 0, 0, 0.01, 10 + (uint64_t)i);
        if (losses[i] <= 0.05)
            assert_true(o.median <= 0.6);
        else
            assert_true(o.median <= 1.5 * o.limit_s);
    }
}

/*
 * Thresholds chosen for the run's own size, node-hours at 0, 5 and 20 %
 * loss: dead at log10(G / e) with e = 0.01, suspect half a decade lower.
 */
static void test_budget_long(void **st)
{
    (void)st;
    print_seed("budget_long");
    static const double losses[] = {0.0, 0.05, 0.20};
    const uint32_t n = 200;
    double secs = node_hours() * 3600 / n;
    double gaps = n * secs * (double)S / (double)H;
    double dead = log10(gaps / 0.01), suspect = dead - 0.5;
    for (size_t i = 0; i < sizeof(losses) / sizeof(losses[0]); i++) {
        struct outcome o =
            run("budget", n, secs, losses[i], 10 * 60 * S, suspect, dead, 0.01, 20 + (uint64_t)i);
        if (losses[i] <= 0)
            assert_true(o.median <= 0.6);
        else
            assert_true(o.median <= 1.5 * o.limit_s);
    }
}

int main(void)
{
    const char *env = getenv("VIGIL_SIM_SEED");
    seed_base = env ? strtoull(env, NULL, 10) : 20261125ULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_goal),
        cmocka_unit_test(test_budget_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
