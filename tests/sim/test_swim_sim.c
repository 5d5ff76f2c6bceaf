/*
 * SWIM with Lifeguard (src/core/swim.c) in virtual time: thousands of
 * members in one process on a simulated network (a delay, jitter, loss),
 * deterministic from a seed, checked against the SWIM paper's analysis
 * and Lifeguard's reference values.
 *
 *   - lifeguard_vectors: the awareness score and the dynamic suspicion
 *     timeout against docs/peer.md's vectors (Lifeguard's, as memberlist
 *     computes them).
 *   - scale: 10,000 members (1,000 under the sanitizers, whose memory and
 *     time a 10,000-member run would exceed): steady traffic per member per
 *     period, the same at a tenth of the size; then crashes: the first
 *     suspicion within about e/(e-1) periods on average, every survivor
 *     knowing within the suspicion timeout and O(log n) periods more, no
 *     live member ever declared dead.
 *   - loss: 5, 10 and 20 % loss on every datagram, with and without the
 *     Lifeguard refinements: live members declared dead, counted.
 *   - pauses: members stopped for seconds at a time (a slow member): the
 *     others must not be declared dead on their account.
 *   - small: five members, one killed and one paused, a partition that
 *     heals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vigil/swim.h>

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC

/*
 * The members of the scale test: 10,000 (a few GB of tables: each member
 * knows every other); 1,000 under AddressSanitizer, whose shadow memory
 * and checks a 10,000-member run would exceed. VIGIL_SWIM_MEMBERS overrides.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SCALE_DEFAULT 1000
#else
#define SCALE_DEFAULT 10000
#endif
static uint32_t SCALE_N = SCALE_DEFAULT;

/* ---- the simulated network ---- */

struct pkt {
    uint32_t to, from;
    uint16_t len;
    uint8_t *buf;
};

struct hev {
    vigil_time_t at;
    uint64_t order;
    uint32_t member; /* wake: the member; delivery: UINT32_MAX */
    uint32_t pkt;
};

struct victim {
    uint32_t idx;
    vigil_time_t killed_at, first_suspect, first_dead, last_dead;
    uint32_t seen_dead;
};

struct net {
    uint32_t n;
    struct vigil_swim **m;
    bool *down;
    vigil_time_t *paused_until;
    vigil_time_t *wake; /* the wake each member has in the heap (VIGIL_TIME_NEVER: none) */
    char **ids;
    struct hev *heap;
    size_t heap_len, heap_cap;
    uint64_t order;
    struct pkt *pkts;
    uint32_t *free_pkts;
    size_t n_pkts, cap_pkts, n_free;
    vigil_time_t now;
    double loss;
    vigil_time_t delay, jitter;
    uint64_t rng;
    /* What the members saw. */
    struct victim *victims;
    size_t n_victims;
    uint64_t false_deaths, false_suspicions, delivered, dropped;
    bool *was_paused; /* ever stopped: its own death may be fair */
    uint32_t split;   /* a partition: members below split and the others cannot talk (0: none) */
    uint64_t false_deaths_of_paused;
};

static uint64_t next_rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit(struct net *nt)
{
    return (double)(next_rnd(&nt->rng) >> 11) / (double)(1ull << 53);
}

/*
 * Time order; at equal times deliveries first, as the daemon reads its
 * socket before it runs its timers (a member resuming from a stop reads
 * what waited for it before it judges anyone).
 */
static bool before(const struct hev *a, const struct hev *b)
{
    if (a->at != b->at)
        return a->at < b->at;
    bool ad = a->member == UINT32_MAX, bd = b->member == UINT32_MAX;
    if (ad != bd)
        return ad;
    return a->order < b->order;
}

static void heap_push(struct net *nt, struct hev e)
{
    if (nt->heap_len == nt->heap_cap) {
        nt->heap_cap = nt->heap_cap ? nt->heap_cap * 2 : 1024;
        nt->heap = realloc(nt->heap, nt->heap_cap * sizeof(*nt->heap));
        assert_non_null(nt->heap);
    }
    e.order = nt->order++;
    size_t i = nt->heap_len++;
    while (i > 0 && before(&e, &nt->heap[(i - 1) / 2])) {
        nt->heap[i] = nt->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    nt->heap[i] = e;
}

static struct hev heap_pop(struct net *nt)
{
    struct hev top = nt->heap[0], last = nt->heap[--nt->heap_len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= nt->heap_len)
            break;
        if (c + 1 < nt->heap_len && before(&nt->heap[c + 1], &nt->heap[c]))
            c++;
        if (!before(&nt->heap[c], &last))
            break;
        nt->heap[i] = nt->heap[c];
        i = c;
    }
    if (nt->heap_len > 0)
        nt->heap[i] = last;
    return top;
}

static struct vigil_addr addr_of(uint32_t i)
{
    struct vigil_addr a;
    memset(&a, 0, sizeof(a));
    a.family = 2;
    a.addr[0] = 10;
    a.addr[1] = (uint8_t)(i >> 16);
    a.addr[2] = (uint8_t)(i >> 8);
    a.addr[3] = (uint8_t)i;
    a.port = 7946;
    return a;
}

static uint32_t index_of(const struct vigil_addr *a)
{
    return (uint32_t)a->addr[1] << 16 | (uint32_t)a->addr[2] << 8 | a->addr[3];
}

static uint32_t index_of_id(const char *id)
{
    return (uint32_t)strtoul(id + 1, NULL, 10);
}

/* One copy of each id for every member's table. */
static const char *intern(void *ud, const char *id)
{
    struct net *nt = ud;
    uint32_t i = index_of_id(id);
    return i < nt->n && !strcmp(nt->ids[i], id) ? nt->ids[i] : NULL;
}

static void victim_saw(struct net *nt, const struct vigil_swim_event *e, uint32_t observer)
{
    uint32_t about = index_of_id(e->id);
    struct victim *v = NULL;
    for (size_t k = 0; k < nt->n_victims; k++)
        if (nt->victims[k].idx == about)
            v = &nt->victims[k];
    if (!v) {
        /* A live member: a suspicion is fine if refuted, a death is a false one. */
        if (e->new_state == VIGIL_STATE_DEAD) {
            /* A member that was stopped may fairly be dead; one that never stopped not. */
            if (nt->was_paused[about])
                nt->false_deaths_of_paused++;
            else
                nt->false_deaths++;
        } else if (e->new_state == VIGIL_STATE_SUSPECT) {
            nt->false_suspicions++;
        }
        return;
    }
    if (e->new_state == VIGIL_STATE_SUSPECT && v->first_suspect < 0)
        v->first_suspect = nt->now;
    if (e->new_state == VIGIL_STATE_DEAD) {
        if (v->first_dead < 0)
            v->first_dead = nt->now;
        v->last_dead = nt->now;
        v->seen_dead++;
    }
}

/* After a member ran: its datagrams go out, its events are read, its next wake is set. */
static void after(struct net *nt, uint32_t i)
{
    struct vigil_swim *s = nt->m[i];
    struct vigil_swim_send out;
    while (vigil_swim_poll_send(s, &out)) {
        uint32_t to = index_of(&out.to);
        bool cut = nt->split > 0 && (i < nt->split) != (to < nt->split);
        if (to >= nt->n || cut || unit(nt) < nt->loss) {
            nt->dropped++;
            continue;
        }
        uint32_t p;
        if (nt->n_free > 0) {
            p = nt->free_pkts[--nt->n_free];
        } else {
            if (nt->n_pkts == nt->cap_pkts) {
                nt->cap_pkts = nt->cap_pkts ? nt->cap_pkts * 2 : 1024;
                nt->pkts = realloc(nt->pkts, nt->cap_pkts * sizeof(*nt->pkts));
                nt->free_pkts = realloc(nt->free_pkts, nt->cap_pkts * sizeof(*nt->free_pkts));
                assert_non_null(nt->pkts);
                assert_non_null(nt->free_pkts);
            }
            p = (uint32_t)nt->n_pkts++;
            nt->pkts[p].buf = malloc(1280);
            assert_non_null(nt->pkts[p].buf);
        }
        nt->pkts[p].to = to;
        nt->pkts[p].from = i;
        nt->pkts[p].len = (uint16_t)out.len;
        memcpy(nt->pkts[p].buf, out.buf, out.len);
        vigil_time_t d = nt->delay + (vigil_time_t)(unit(nt) * (double)nt->jitter);
        heap_push(nt, (struct hev){.at = nt->now + d, .member = UINT32_MAX, .pkt = p});
    }
    struct vigil_swim_event e;
    while (vigil_swim_poll_event(s, &e))
        victim_saw(nt, &e, i);
    vigil_time_t w = vigil_swim_next_deadline(s);
    if (w < nt->now)
        w = nt->now;
    if (w != nt->wake[i]) {
        nt->wake[i] = w;
        heap_push(nt, (struct hev){.at = w, .member = i});
    }
}

static void net_init_ex(struct net *nt, uint32_t n, uint64_t seed, bool lifeguard, double loss,
                        vigil_time_t sync_interval)
{
    memset(nt, 0, sizeof(*nt));
    nt->n = n;
    nt->rng = seed;
    nt->loss = loss;
    nt->delay = 200 * 1000; /* 0.2 ms */
    nt->jitter = 300 * 1000;
    nt->now = 1000 * S;
    nt->m = calloc(n, sizeof(*nt->m));
    nt->down = calloc(n, sizeof(*nt->down));
    nt->was_paused = calloc(n, sizeof(*nt->was_paused));
    nt->paused_until = calloc(n, sizeof(*nt->paused_until));
    nt->wake = calloc(n, sizeof(*nt->wake));
    nt->ids = calloc(n, sizeof(*nt->ids));
    nt->victims = calloc(64, sizeof(*nt->victims));
    assert_true(nt->m && nt->down && nt->paused_until && nt->wake && nt->ids && nt->victims &&
                nt->was_paused);
    for (uint32_t i = 0; i < n; i++) {
        nt->ids[i] = malloc(16);
        assert_non_null(nt->ids[i]);
        snprintf(nt->ids[i], 16, "m%05u", i);
    }
    for (uint32_t i = 0; i < n; i++) {
        struct vigil_swim_config c;
        vigil_swim_config_default(&c);
        c.id = nt->ids[i];
        c.addr = addr_of(i);
        c.lifeguard = lifeguard;
        c.seed = seed * 1000003u + i;
        c.max_members = n;
        c.intern = intern;
        c.intern_ud = nt;
        c.has_key = true;
        memset(c.key, 7, sizeof(c.key));
        if (sync_interval > 0)
            c.sync_interval = sync_interval;
        assert_int_equal(vigil_swim_new(&c, nt->now, &nt->m[i]), 0);
        /* A static cluster: every member knows the others from the start. */
        for (uint32_t j = 0; j < n; j++) {
            if (j == i)
                continue;
            struct vigil_addr a = addr_of(j);
            assert_int_equal(vigil_swim_add(nt->m[i], nt->now, nt->ids[j], &a), 0);
        }
        nt->wake[i] = VIGIL_TIME_NEVER;
        after(nt, i);
    }
}

static void net_init(struct net *nt, uint32_t n, uint64_t seed, bool lifeguard, double loss)
{
    net_init_ex(nt, n, seed, lifeguard, loss, 0);
}

/* How many (observer, member) pairs see the member in state st. */
static uint32_t pairs_in(struct net *nt, enum vigil_state st)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < nt->n; i++)
        for (uint32_t j = 0; j < nt->n; j++) {
            struct vigil_swim_member m;
            if (i != j && vigil_swim_find(nt->m[i], nt->ids[j], &m) && m.state == st)
                k++;
        }
    return k;
}

static void net_free(struct net *nt)
{
    for (uint32_t i = 0; i < nt->n; i++) {
        vigil_swim_free(nt->m[i]);
        free(nt->ids[i]);
    }
    for (size_t p = 0; p < nt->n_pkts; p++)
        free(nt->pkts[p].buf);
    free(nt->pkts);
    free(nt->free_pkts);
    free(nt->heap);
    free(nt->m);
    free(nt->down);
    free(nt->was_paused);
    free(nt->paused_until);
    free(nt->wake);
    free(nt->ids);
    free(nt->victims);
}

/* Runs everything due up to t. */
static void run_until(struct net *nt, vigil_time_t t)
{
    while (nt->heap_len > 0 && nt->heap[0].at <= t) {
        struct hev e = heap_pop(nt);
        nt->now = e.at;
        if (e.member != UINT32_MAX) {
            uint32_t i = e.member;
            if (nt->wake[i] != e.at || nt->down[i])
                continue; /* replaced by a later wake, or dead */
            if (nt->paused_until[i] > nt->now) {
                /* Stopped: it runs when it resumes. */
                nt->wake[i] = nt->paused_until[i];
                heap_push(nt, (struct hev){.at = nt->wake[i], .member = i});
                continue;
            }
            nt->wake[i] = VIGIL_TIME_NEVER;
            vigil_swim_on_expiry(nt->m[i], nt->now);
            after(nt, i);
            continue;
        }
        struct pkt *p = &nt->pkts[e.pkt];
        uint32_t to = p->to;
        if (nt->down[to]) {
            nt->free_pkts[nt->n_free++] = e.pkt;
            continue;
        }
        if (nt->paused_until[to] > nt->now) {
            /* Waits in its socket. */
            heap_push(nt,
                      (struct hev){.at = nt->paused_until[to], .member = UINT32_MAX, .pkt = e.pkt});
            continue;
        }
        struct vigil_addr from = addr_of(p->from);
        nt->delivered++;
        (void)vigil_swim_on_datagram(nt->m[to], nt->now, p->buf, p->len, &from);
        nt->free_pkts[nt->n_free++] = e.pkt;
        if (nt->now >= vigil_swim_next_deadline(nt->m[to]))
            vigil_swim_on_expiry(nt->m[to], nt->now);
        after(nt, to);
    }
    nt->now = t;
}

static void kill_member(struct net *nt, uint32_t i)
{
    nt->down[i] = true;
    struct victim *v = &nt->victims[nt->n_victims++];
    v->idx = i;
    v->killed_at = nt->now;
    v->first_suspect = v->first_dead = v->last_dead = -1;
}

static uint64_t total_sent(const struct net *nt, uint64_t *bytes)
{
    uint64_t n = 0, b = 0;
    for (uint32_t i = 0; i < nt->n; i++) {
        n += vigil_swim_stats(nt->m[i])->sent;
        b += vigil_swim_stats(nt->m[i])->bytes_sent;
    }
    if (bytes)
        *bytes = b;
    return n;
}

/* ---- Lifeguard's reference values ---- */

static void test_lifeguard_vectors(void **state)
{
    (void)state;
    /* Awareness, S = 8: delta -> score. */
    static const int deltas[] = {0, -1, -10, +1, -1, +10, -1, -1, -1, -1, -1, -1, -1, -1};
    static const uint32_t scores[] = {0, 0, 0, 1, 0, 7, 6, 5, 4, 3, 2, 1, 0, 0};
    uint32_t sc = 0;
    for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
        sc = vigil_swim_awareness_apply(sc, deltas[i], 8);
        assert_int_equal(sc, scores[i]);
    }
    /* Suspicion: K = 3, Min 2 s, Max 30 s; remaining(C, elapsed). */
    static const struct {
        uint32_t c;
        vigil_time_t elapsed, remaining;
    } sus[] = {{0, 0, 30 * S},     {1, 2 * S, 14 * S}, {2, 3 * S, 4810 * MS},
               {3, 4 * S, -2 * S}, {4, 5 * S, -3 * S}, {5, 10 * S, -8 * S}};
    for (size_t i = 0; i < sizeof(sus) / sizeof(sus[0]); i++) {
        vigil_time_t t = vigil_swim_suspicion_timeout(sus[i].c, 3, 2 * S, 30 * S);
        if (t - sus[i].elapsed != sus[i].remaining)
            fail_msg("C %u: %" PRId64 " ms, want %" PRId64, sus[i].c, (t - sus[i].elapsed) / MS,
                     sus[i].remaining / MS);
    }
    /*
     * The timer with Min 500 ms, Max 2 s, K 3: 2 s, 1250 ms, 810 ms (the
     * reference's value, which its test takes with a 25 ms tolerance; the
     * formula floored to the millisecond gives 811 ms), 500 ms.
     */
    assert_int_equal(vigil_swim_suspicion_timeout(0, 3, 500 * MS, 2 * S), 2 * S);
    assert_int_equal(vigil_swim_suspicion_timeout(1, 3, 500 * MS, 2 * S), 1250 * MS);
    assert_int_equal(vigil_swim_suspicion_timeout(2, 3, 500 * MS, 2 * S), 811 * MS);
    assert_int_equal(vigil_swim_suspicion_timeout(3, 3, 500 * MS, 2 * S), 500 * MS);
    assert_int_equal(vigil_swim_suspicion_timeout(7, 3, 500 * MS, 2 * S), 500 * MS);
}

/* ---- at scale ---- */

/* Steady traffic: datagrams and bytes per member per protocol period, over `secs`. */
static void steady(struct net *nt, int secs, double *msgs, double *bytes)
{
    uint64_t b0, b1;
    uint64_t m0 = total_sent(nt, &b0);
    run_until(nt, nt->now + (vigil_time_t)secs * S);
    uint64_t m1 = total_sent(nt, &b1);
    *msgs = (double)(m1 - m0) / nt->n / secs;
    *bytes = (double)(b1 - b0) / nt->n / secs;
}

static void test_scale(void **state)
{
    (void)state;
    /*
     * Without anti-entropy (its full-state exchanges, O(n) each, are
     * measured apart): the probes and the gossip, which SWIM keeps constant
     * per member.
     */
    struct net small;
    net_init_ex(&small, SCALE_N / 10, 11, true, 0, 3600 * S);
    run_until(&small, small.now + 5 * S);
    double sm, sb;
    steady(&small, 20, &sm, &sb);
    net_free(&small);

    struct net nt;
    net_init_ex(&nt, SCALE_N, 12, true, 0, 3600 * S);
    run_until(&nt, nt.now + 5 * S);
    double m, b;
    steady(&nt, 20, &m, &b);
    printf("# %u members: %.2f datagrams and %.0f bytes per member per period; %u members: "
           "%.2f and %.0f\n",
           SCALE_N / 10, sm, sb, SCALE_N, m, b);
    /* Constant in n: a ping and its ack each way per period, and nothing else in steady state. */
    assert_true(m > 1.8 && m < 2.2);
    assert_true(fabs(m - sm) / sm < 0.05);
    assert_int_equal(nt.false_deaths, 0);
    assert_int_equal(nt.false_suspicions, 0);

    /* Crashes, one every 7.3 s. */
    enum { VICTIMS = 20 };
    uint64_t r = 99;
    for (int k = 0; k < VICTIMS; k++) {
        uint32_t i;
        do
            i = (uint32_t)(next_rnd(&r) % nt.n);
        while (nt.down[i]);
        kill_member(&nt, i);
        run_until(&nt, nt.now + 7300 * MS);
    }
    /* Long enough for the last suspicion (at most 6 * Min) and its dissemination. */
    run_until(&nt, nt.now + 200 * S);
    double first_sum = 0, spread_max = 0, total_max = 0;
    for (int k = 0; k < VICTIMS; k++) {
        struct victim *v = &nt.victims[k];
        if (v->first_suspect < 0 || v->first_dead < 0)
            fail_msg("victim %u: never suspected or never declared dead", v->idx);
        double first = (double)(v->first_suspect - v->killed_at) / S;
        double spread = (double)(v->last_dead - v->first_dead) / S;
        double total = (double)(v->last_dead - v->killed_at) / S;
        first_sum += first;
        if (spread > spread_max)
            spread_max = spread;
        if (total > total_max)
            total_max = total;
        /* Every survivor knows (the other victims excepted, dead or about to be). */
        if (v->seen_dead < nt.n - VICTIMS)
            fail_msg("victim %u: %u of %u survivors saw it dead", v->idx, v->seen_dead,
                     nt.n - VICTIMS);
    }
    double first_mean = first_sum / VICTIMS;
    double log_n = log((double)nt.n);
    printf("# first suspicion %.2f periods after the crash on average (SWIM: e/(e-1) = 1.58 "
           "periods to the first probe of it, plus that probe's own period, less the half period "
           "the crash falls into on average: about 2.1); dead everywhere within %.1f periods of "
           "the first death (ln n = %.1f); %.1f s from crash to the last survivor's verdict at "
           "worst (the suspicion timeout's shortest here: %.1f s)\n",
           first_mean, spread_max, log_n, total_max,
           4.0 * (log10((double)nt.n) > 1 ? log10((double)nt.n) : 1));
    assert_true(first_mean > 1.0 && first_mean < 3.3);
    assert_true(spread_max < 3 * log_n);
    assert_int_equal(nt.false_deaths, 0);
    net_free(&nt);
}

/* ---- loss ---- */

static void run_loss(uint32_t n, double loss, bool lifeguard, uint64_t seed, uint64_t *deaths,
                     uint64_t *suspicions)
{
    struct net nt;
    net_init(&nt, n, seed, lifeguard, loss);
    run_until(&nt, nt.now + 300 * S);
    *deaths = nt.false_deaths;
    *suspicions = nt.false_suspicions;
    net_free(&nt);
}

static void test_loss(void **state)
{
    (void)state;
    static const double losses[] = {0.05, 0.10, 0.20};
    for (size_t i = 0; i < 3; i++) {
        uint64_t dl, sl, dp, sp;
        run_loss(100, losses[i], true, 40 + i, &dl, &sl);
        run_loss(100, losses[i], false, 40 + i, &dp, &sp);
        printf("# %.0f %% loss, 100 members, 300 s: Lifeguard %" PRIu64 " false deaths (%" PRIu64
               " suspicions refuted); plain SWIM %" PRIu64 " (%" PRIu64 ")\n",
               losses[i] * 100, dl, sl, dp, sp);
        assert_true(dl <= dp);
        if (losses[i] <= 0.10)
            assert_int_equal(dl, 0);
    }
}

/* ---- slow members ---- */

static void run_pauses(bool lifeguard, uint64_t *deaths, uint64_t *deaths_of_paused)
{
    struct net nt;
    net_init(&nt, 100, 77, lifeguard, 0.01);
    run_until(&nt, nt.now + 10 * S);
    uint64_t r = 5;
    for (int k = 0; k < 60; k++) {
        /*
         * A member stops for 0.5 to 10 s (a GC, a stalled VM: up to longer
         * than the suspicion timeout, 8 s here), then goes on, with its
         * probes of before the stop unanswered.
         */
        uint32_t i = (uint32_t)(next_rnd(&r) % 100);
        nt.was_paused[i] = true;
        nt.paused_until[i] = nt.now + 500 * MS + (vigil_time_t)(next_rnd(&r) % 9500) * MS;
        run_until(&nt, nt.now + 2 * S);
    }
    run_until(&nt, nt.now + 60 * S);
    *deaths = nt.false_deaths;
    *deaths_of_paused = nt.false_deaths_of_paused;
    net_free(&nt);
}

static void test_pauses(void **state)
{
    (void)state;
    uint64_t dl, pl, dp, pp;
    run_pauses(true, &dl, &pl);
    run_pauses(false, &dp, &pp);
    printf("# 60 stops of 0.5 to 10 s among 100 members: Lifeguard declared %" PRIu64
           " members that never stopped dead (and %" PRIu64 " verdicts on stopped ones); plain "
           "SWIM %" PRIu64 " (%" PRIu64 ")\n",
           dl, pl, dp, pp);
    assert_int_equal(dl, 0);
    assert_true(dl <= dp);
}

/* ---- a partition that heals ---- */

static void test_partition_heals(void **state)
{
    (void)state;
    struct net nt;
    net_init(&nt, 20, 8, true, 0);
    run_until(&nt, nt.now + 10 * S);
    uint32_t all = 20 * 19;
    assert_int_equal(pairs_in(&nt, VIGIL_STATE_ALIVE), all);
    /* Ten and ten cannot talk for a minute: each side declares the other dead. */
    nt.split = 10;
    run_until(&nt, nt.now + 60 * S);
    assert_int_equal(pairs_in(&nt, VIGIL_STATE_DEAD), 2 * 10 * 10);
    assert_int_equal(pairs_in(&nt, VIGIL_STATE_ALIVE), 2 * 10 * 9);
    /* Healed: members believed dead are pinged (every 30 s), refute, and are alive again. */
    nt.split = 0;
    vigil_time_t healed = nt.now, whole = -1;
    for (int k = 0; k < 240 && whole < 0; k++) {
        run_until(&nt, nt.now + 500 * MS);
        if (pairs_in(&nt, VIGIL_STATE_ALIVE) == all)
            whole = nt.now;
    }
    if (whole < 0)
        fail_msg("two minutes after the partition healed, %u of %u views are alive",
                 pairs_in(&nt, VIGIL_STATE_ALIVE), all);
    printf("# a partition of 20 members into 10 and 10 for 60 s: whole again %.1f s after it "
           "healed (members believed dead pinged every 30 s)\n",
           (double)(whole - healed) / S);
    net_free(&nt);
}

/* ---- five members ---- */

static void test_small(void **state)
{
    (void)state;
    struct net nt;
    net_init(&nt, 5, 3, true, 0);
    run_until(&nt, nt.now + 5 * S);
    kill_member(&nt, 4);
    nt.was_paused[3] = true;
    nt.paused_until[3] = nt.now + 2 * S; /* shorter than the suspicion timeout (4 s) */
    run_until(&nt, nt.now + 40 * S);
    struct victim *v = &nt.victims[0];
    assert_true(v->first_dead > 0);
    assert_int_equal(v->seen_dead, 4); /* 0, 1, 2 and the paused 3 */
    for (uint32_t i = 0; i < 4; i++) {
        struct vigil_swim_member mm;
        assert_true(vigil_swim_find(nt.m[i], "m00004", &mm));
        assert_int_equal(mm.state, VIGIL_STATE_DEAD);
        for (uint32_t j = 0; j < 4; j++) {
            if (j == i)
                continue;
            assert_true(vigil_swim_find(nt.m[i], nt.ids[j], &mm));
            assert_int_equal(mm.state, VIGIL_STATE_ALIVE);
        }
    }
    assert_int_equal(nt.false_deaths + nt.false_deaths_of_paused, 0);
    net_free(&nt);
}

int main(void)
{
    const char *env = getenv("VIGIL_SWIM_MEMBERS");
    if (env && atoi(env) >= 100)
        SCALE_N = (uint32_t)atoi(env);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifeguard_vectors),
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_partition_heals),
        cmocka_unit_test(test_loss),
        cmocka_unit_test(test_pauses),
        cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
