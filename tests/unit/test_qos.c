/*
 * Tests of the quality-of-service model (src/core/qos.c) against values
 * worked out by hand, and of the mistakes the monitor core counts per node
 * (vigil_monitor_node_qos), in virtual time.
 *
 * The hand values: with no jitter the gap between received heartbeats is
 * m intervals, P(m) = (1 - p) p^(m-1), so P(gap > c) is p^k for c in
 * [k h, (k + 1) h); with jitter and no loss it is the normal tail Q.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <vigil/vigil.h>

#include "core/qos.h"

#define MS VIGIL_NSEC_PER_MSEC
#define S  VIGIL_NSEC_PER_SEC

static void close_to(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.12g, want %.12g (+/- %g)", got, want, tol);
}

/* No loss, no jitter: every gap is exactly one interval. */
static void test_tail_regular(void **st)
{
    (void)st;
    struct vigil__qos_net n = {.h = 1, .jitter = 0, .loss = 0};
    close_to(vigil__qos_gap_tail(&n, 0.5), 1, 1e-12);
    close_to(vigil__qos_gap_tail(&n, 1.5), 0, 1e-12);
    close_to(vigil__qos_overshoot(&n, 0.5), 0.5, 1e-12);
    close_to(vigil__qos_gaps_per_s(&n), 1, 1e-12);
}

/* 10 % loss, no jitter: a gap beyond 2.5 s needs two losses in a row, p^2 = 0.01. */
static void test_tail_loss(void **st)
{
    (void)st;
    struct vigil__qos_net n = {.h = 1, .jitter = 0, .loss = 0.1};
    close_to(vigil__qos_gap_tail(&n, 2.5), 0.01, 1e-12);
    close_to(vigil__qos_gap_tail(&n, 5), 1e-5, 1e-15);
    /* E(m | m >= 3) = 3 + p / (1 - p) = 3.1111; minus 2.5. */
    close_to(vigil__qos_overshoot(&n, 2.5), 0.5 + 0.1 / 0.9, 1e-9);
    close_to(vigil__qos_gaps_per_s(&n), 0.9, 1e-12);
    double mean, sd;
    vigil__qos_gap_moments(&n, &mean, &sd);
    close_to(mean, 1 / 0.9, 1e-12);
    close_to(sd, sqrt(0.1) / 0.9, 1e-12);
}

/* No loss, jitter 0.1 s: P(gap > 1.2 s) = Q(2) = 0.0227501; overshoot sd (phi(2)/Q(2) - 2). */
static void test_tail_jitter(void **st)
{
    (void)st;
    struct vigil__qos_net n = {.h = 1, .jitter = 0.1, .loss = 0};
    close_to(vigil__qos_gap_tail(&n, 1.2), 0.022750131948179, 1e-12);
    close_to(vigil__qos_overshoot(&n, 1.2), 0.1 * (0.053990966513188 / 0.022750131948179 - 2),
             1e-9);
    /* Far in the tail the sum underflows; the Mills ratio s / z stands in. */
    close_to(vigil__qos_overshoot(&n, 101), 0.1 / 1000, 1e-6);
}

/* Statistics to a stream: mean 1.25 at h 1 means 20 % loss; the rest of the variance is jitter. */
static void test_net_from_stats(void **st)
{
    (void)st;
    struct vigil__qos_net n;
    double sd = sqrt(0.2 / 0.64 + 0.01);
    vigil__qos_net_from_stats(1, 1.25, sd, -1, &n);
    close_to(n.loss, 0.2, 1e-12);
    close_to(n.jitter, 0.1, 1e-9);
    close_to(n.h, 1, 0);
    /* A known loss wins over the mean. */
    vigil__qos_net_from_stats(1, 1.25, 0.05, 0, &n);
    close_to(n.loss, 0, 0);
    close_to(n.jitter, 0.05, 1e-12);
    /* No interval known: the mean stands in. */
    vigil__qos_net_from_stats(0, 0.5, 0.01, -1, &n);
    close_to(n.h, 0.5, 0);
    close_to(n.loss, 0, 0);
}

/* k = ceil(log budget / log p). */
static void test_k(void **st)
{
    (void)st;
    /* log 1e-6 / log 0.05 = 4.61 */
    assert_int_equal(vigil__qos_k(0.05, 1e-6), 5);
    /* Exactly 2, not 3 by rounding. */
    assert_int_equal(vigil__qos_k(0.01, 1e-4), 2);
    assert_int_equal(vigil__qos_k(0, 1e-9), 1);
    assert_int_equal(vigil__qos_k(0.5, 0), 0);
}

/* The fixed detector at 10 % loss: the numbers of the file's comment, by hand. */
static void test_predict_fixed(void **st)
{
    (void)st;
    struct vigil_detector_config dc;
    vigil_detector_config_default(&dc, VIGIL_DETECTOR_FIXED, S);
    struct vigil__qos_net n = {.h = 1, .jitter = 0, .loss = 0.1};
    struct vigil__qos q;
    vigil__qos_predict(&dc, 1, 0, &n, &q);
    close_to(q.suspect_silence, 2.5, 1e-12);
    close_to(q.dead_silence, 5, 1e-12);
    /* 0.9 gaps/s x p^2; 0.9 x p^5. */
    close_to(q.suspect_rate, 0.009, 1e-12);
    close_to(q.false_death_rate, 0.9e-5, 1e-15);
    close_to(q.recurrence, 1 / 0.009, 1e-6);
    /* 5 - 1/2 - 0.1 / 0.9 */
    close_to(q.detection, 5 - 0.5 - 0.1 / 0.9, 1e-12);
    close_to(q.mistake_duration, 0.5 + 0.1 / 0.9, 1e-9);
    close_to(q.accuracy, 1 - 0.009 * (0.5 + 0.1 / 0.9), 1e-9);
}

/* Phi: the silence is where the detector's own phi reaches the threshold. */
static void test_predict_phi(void **st)
{
    (void)st;
    struct vigil_detector_config dc;
    vigil_detector_config_default(&dc, VIGIL_DETECTOR_PHI, S);
    double c = vigil__qos_silence(&dc, 1.0, 0.05, 8);
    /* sd 0.05 is under the floor 0.1: phi(c - pause; mean 1, sd 0.1) = 8. */
    close_to(vigil_phi((vigil_time_t)((c - 3) * 1e9), 1e9, 0.1e9), 8, 1e-6);
    assert_true(c > 4.0 && c < 4.6);
    struct vigil__qos_net n = {.h = 1, .jitter = 0.05, .loss = 0};
    struct vigil__qos q;
    vigil__qos_predict(&dc, 1, 0.05, &n, &q);
    /* Three intervals of slack without loss: no mistake in the lifetime of the universe. */
    assert_true(q.suspect_rate < 1e-100);
    close_to(q.accuracy, 1, 1e-12);
    assert_true(isinf(q.recurrence));
}

/*
 * The grid's figures from a detector state, by hand: 50 of 1000 heartbeats
 * due were lost, so p_used = (50 + 5) / 1050 + sqrt(pe (1 - pe) / 1050) =
 * 0.0592565, a slot adds -log10 p_used = 1.22726, suspect 6 takes
 * ceil(4.889) = 5 slots and dead 6.5 ceil(5.296) = 6; the margin is
 * 5 ms + 4 x 2 ms. The settled estimates at 5 % loss are the same.
 */
static void test_grid_from_state(void **st)
{
    (void)st;
    struct vigil_detector_config dc;
    vigil_detector_config_default(&dc, VIGIL_DETECTOR_GRID, 100 * MS);
    struct vigil_detector d;
    vigil_detector_init(&d);
    vigil_detector_heartbeat(&dc, &d, 5 * S, 7, false);
    d.slots = 1000;
    d.lost = 50;
    d.var = 2e6f * 2e6f;
    struct vigil__qos_grid g, g2;
    vigil__qos_grid_from_state(&dc, &d, &g);
    close_to(g.loss_used, 0.0592565260, 1e-8);
    close_to(g.arrival_sd, 0.002, 1e-9); /* var is a float */
    close_to(g.margin, 0.013, 1e-9);
    assert_int_equal(g.k_suspect, 5);
    assert_int_equal(g.k_dead, 6);
    vigil__qos_grid_steady(&dc, 0.05, 0.002, &g2);
    close_to(g2.loss_used, g.loss_used, 1e-8);
    close_to(g2.margin, 0.013, 1e-9);
    assert_int_equal(g2.k_dead, 6);
    /* No loss: the floor of 1 % speaks, 2 a slot: 3 slots to suspect, 4 to die. */
    vigil__qos_grid_steady(&dc, 0, 0, &g2);
    close_to(g2.loss_used, 0.01, 1e-12);
    assert_int_equal(g2.k_suspect, 3);
    assert_int_equal(g2.k_dead, 4);
    /* The floor of the jitter: 5 ms + 4 x 0.5 ms. */
    close_to(g2.margin, 0.007, 1e-9);
    /* Never heard: the prior, 10 % worth 50 heartbeats plus one standard error. */
    vigil_detector_init(&d);
    vigil__qos_grid_from_state(&dc, &d, &g2);
    close_to(g2.loss_used, 0.1 + sqrt(0.09 / 50), 1e-7);
    assert_int_equal(g2.k_dead, 8);
}

/*
 * The grid's QoS by hand: it assumes 10 % loss (one per slot: suspect 6
 * after 6 slots, dead 6.5 after 7), the stream loses 5 %, arrivals have a
 * 1 ms deviation and the margin is 9 ms (9 deviations: the tail is nil).
 */
static void test_predict_grid(void **st)
{
    (void)st;
    struct vigil_detector_config dc;
    vigil_detector_config_default(&dc, VIGIL_DETECTOR_GRID, 100 * MS);
    struct vigil__qos_grid g = {
        .loss_used = 0.1, .arrival_sd = 0.001, .margin = 0.009, .k_suspect = 6, .k_dead = 7};
    struct vigil__qos_net n = {.h = 0.1, .jitter = 0.001 * M_SQRT2, .loss = 0.05};
    struct vigil__qos q;
    vigil__qos_predict_grid(&dc, &g, &n, &q);
    close_to(q.suspect_silence, 0.609, 1e-12);
    close_to(q.dead_silence, 0.709, 1e-12);
    /* 9.5 gaps a second x 0.05^6 and x 0.05^7. */
    close_to(q.suspect_rate, 9.5 * 1.5625e-8, 1e-18);
    close_to(q.false_death_rate, 9.5 * 7.8125e-10, 1e-19);
    /* (7 - 1/2) x 0.1 + 0.009 - 0.1 x 0.05 / 0.95 */
    close_to(q.detection, 0.659 - 0.005 / 0.95, 1e-12);
    /* The next heartbeat that gets through: 0.1 / 0.95 after the 6th slot, less the margin. */
    close_to(q.mistake_duration, 0.1 / 0.95 - 0.009, 1e-12);
    close_to(q.accuracy, 1 - 9.5 * 1.5625e-8 * (0.1 / 0.95 - 0.009), 1e-15);

    /*
     * No loss, a margin of two deviations (9 ms, 4.5 ms), suspect after 1
     * slot: only the jitter's tail makes mistakes, Q(2) = 0.0227501 per gap,
     * each lasting 4.5 ms x (phi(2) / Q(2) - 2) = 1.67947 ms; dead after 2
     * slots needs a heartbeat 109 ms late as well: none.
     */
    struct vigil__qos_grid g2 = {
        .loss_used = 0.01, .arrival_sd = 0.0045, .margin = 0.009, .k_suspect = 1, .k_dead = 2};
    struct vigil__qos_net n2 = {.h = 0.1, .jitter = 0.0045 * M_SQRT2, .loss = 0};
    vigil__qos_predict_grid(&dc, &g2, &n2, &q);
    close_to(q.suspect_rate, 10 * 0.0227501319, 1e-9);
    assert_true(q.false_death_rate < 1e-100);
    close_to(q.mistake_duration, 0.00167946990, 1e-10);
    close_to(q.detection, 0.2 + 0.009 - 0.05, 1e-12);
    close_to(q.dead_silence, 0.209, 1e-12);

    /* vigil__qos_predict on a grid configuration: the settled estimates at 5 % loss. */
    vigil__qos_predict(&dc, 0, 0, &(struct vigil__qos_net){.h = 0.1, .jitter = 0, .loss = 0.05},
                       &q);
    /* 6 slots; the margin at the jitter's floor, 7 ms. */
    close_to(q.dead_silence, 0.607, 1e-9);
    close_to(q.false_death_rate, 9.5 * pow(0.05, 6), 1e-15);
}

/* The fastest verdict for a budget: at 10 % loss, 0.01 per gap needs 2 intervals, 0.0099 needs 3.
 */
static void test_min_silence(void **st)
{
    (void)st;
    struct vigil__qos_net n = {.h = 1, .jitter = 0, .loss = 0.1};
    close_to(vigil__qos_min_silence(&n, 0.00901), 2, 1e-9);
    close_to(vigil__qos_min_silence(&n, 0.0089), 3, 1e-9);
    assert_true(isinf(vigil__qos_min_silence(&n, 0)));
    /* With jitter, no loss: Q((c - 1) / 0.1) = 0.0227501 at c = 1.2. */
    struct vigil__qos_net j = {.h = 1, .jitter = 0.1, .loss = 0};
    close_to(vigil__qos_min_silence(&j, 0.022750131948179), 1.2, 1e-6);
}

/* --- the core's observed counters ----------------------------------------- */

static void beat(struct vigil_monitor *m, const char *id, uint64_t gen, uint64_t seq,
                 vigil_time_t now)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    snprintf(hb.id, sizeof(hb.id), "%s", id);
    hb.generation = gen;
    hb.sequence = seq;
    hb.interval_ms = 1000;
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(vigil_monitor_on_datagram(m, now, buf, (size_t)len, NULL), 0);
}

/* Takes the events the monitor has queued, as the daemon's loop does. */
static void drain(struct vigil_monitor *m)
{
    struct vigil_event ev;
    while (vigil_monitor_poll_event(m, &ev))
        ;
}

/* Calls the monitor at each of its deadlines up to t, as its loop would, events drained. */
static void run_until(struct vigil_monitor *m, vigil_time_t t)
{
    for (int i = 0; i < 100000 && vigil_monitor_next_deadline(m) <= t; i++) {
        vigil_monitor_on_expiry(m, vigil_monitor_next_deadline(m));
        drain(m);
    }
}

/*
 * Fixed detector at 1 s: suspect after 2.5 s, dead after 5 s. A suspicion
 * ended by the same generation is a mistake; a death ended by the same
 * generation is a false death too; a new generation is a real restart.
 */
static void test_observed_mistakes(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    vigil_detector_config_default(&c.detector, VIGIL_DETECTOR_FIXED, S);
    c.max_nodes = 4;
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    uint64_t seq = 0;
    vigil_time_t t = 0;
    for (int i = 0; i < 5; i++, t += S)
        beat(m, "n1", 1, ++seq, t);
    /* Last heartbeat at 4 s; suspect at 6.5 s; the next comes at 7 s (seq skips two: lost). */
    run_until(m, 6500 * MS);
    const struct vigil_node *n = vigil_monitor_find(m, "n1");
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_SUSPECT);
    seq += 2;
    beat(m, "n1", 1, ++seq, 7 * S);
    struct vigil_node_qos q;
    vigil_monitor_node_qos(m, n, &q);
    assert_int_equal(q.mistakes, 1);
    assert_int_equal(q.false_deaths, 0);
    assert_int_equal(q.mistake_time, 500 * MS);
    assert_int_equal(q.first_heard, 0);
    assert_int_equal(q.received, 6);
    assert_int_equal(q.expected, 8);

    /* Silent from 7 s: suspect at 9.5 s, dead at 12 s; back at 13 s, same generation. */
    run_until(m, 12 * S);
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_DEAD);
    seq += 5;
    beat(m, "n1", 1, ++seq, 13 * S);
    vigil_monitor_node_qos(m, n, &q);
    assert_int_equal(q.mistakes, 2);
    assert_int_equal(q.false_deaths, 1);
    assert_int_equal(q.mistake_time, 500 * MS + 3500 * MS);
    /* The rest of the recovery run counts nothing more. */
    beat(m, "n1", 1, ++seq, 14 * S);
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_ALIVE);
    vigil_monitor_node_qos(m, n, &q);
    assert_int_equal(q.mistakes, 2);

    /* A real crash: dead, then a new generation. Not a mistake; the loss count starts over. */
    run_until(m, 20 * S);
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_DEAD);
    beat(m, "n1", 2, 1, 21 * S);
    vigil_monitor_node_qos(m, n, &q);
    assert_int_equal(q.mistakes, 2);
    assert_int_equal(q.false_deaths, 1);
    assert_int_equal(q.received, 1);
    assert_int_equal(q.expected, 1);
    vigil_monitor_free(m);
}

/*
 * Suspicion records are entered at a node's first suspicion, in chunks of
 * 2048: of 5000 nodes, 3500 are wrongly suspected once, and each keeps its
 * own count and time across the chunks; nodes never suspected have none
 * and cost nothing; the memory the monitor reports grows by the chunks.
 */
static void test_observed_many_nodes(void **st)
{
    (void)st;
    enum { N = 5000 };
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    vigil_detector_config_default(&c.detector, VIGIL_DETECTOR_FIXED, S);
    c.max_nodes = N;
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    char id[32];
    /* Every node beats at 0..4 s; the first N/2 + 1000 are then silent for 3 s (suspect at 6.5 s).
     */
    for (vigil_time_t t = 0; t <= 4 * S; t += S)
        for (int i = 0; i < N; i++) {
            snprintf(id, sizeof(id), "n%d", i);
            beat(m, id, 1, (uint64_t)(t / S) + 1, t + i);
            drain(m);
        }
    size_t mem0 = vigil_monitor_memory(m);
    const int silent = N / 2 + 1000;
    for (vigil_time_t t = 5 * S; t <= 9 * S; t += S)
        for (int i = 0; i < N; i++) {
            snprintf(id, sizeof(id), "n%d", i);
            if (i < silent && t < 8 * S)
                continue;
            run_until(m, t + i);
            beat(m, id, 1, (uint64_t)(t / S) + 1, t + i);
            drain(m);
        }
    /* 3500 records: two chunks of 2048 records of 24 bytes. */
    assert_int_equal(vigil_monitor_memory(m) - mem0, 2 * 2048 * 24);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "n%d", i);
        const struct vigil_node *n = vigil_monitor_find(m, id);
        struct vigil_node_qos q;
        vigil_monitor_node_qos(m, n, &q);
        assert_int_equal(vigil_node_state(n), VIGIL_STATE_ALIVE);
        /* Suspected at 6.5 s after the last beat at 4 s, back at 8 s. */
        assert_int_equal(q.mistakes, i < silent ? 1 : 0);
        assert_int_equal(q.mistake_time, i < silent ? 1500 * MS : 0);
        assert_int_equal(q.false_deaths, 0);
        assert_int_equal(q.received, i < silent ? 7 : 10);
        assert_int_equal(q.expected, 10);
    }
    assert_int_equal(vigil_monitor_stats(m)->qos_lost, 0);
    vigil_monitor_free(m);
}

/*
 * The loss count of a generation: a version 1 sequence number may jump by
 * more than 2^32, and the count of missing numbers saturates instead of
 * wrapping; a restored high-water mark counts what it skipped; a new
 * generation starts afresh.
 */
static void test_observed_loss_count(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    c.max_nodes = 4;
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    beat(m, "a", 1, 10, 0);
    beat(m, "a", 1, 20, S);
    const struct vigil_node *n = vigil_monitor_find(m, "a");
    struct vigil_node_qos q;
    vigil_monitor_node_qos(m, n, &q);
    assert_int_equal(q.received, 2);
    assert_int_equal(q.expected, 11);
    assert_int_equal(vigil_monitor_restore(m, "a", 1, 30, 2 * S), 0);
    beat(m, "a", 1, 31, 2 * S);
    vigil_monitor_node_qos(m, n, &q);
    assert_int_equal(q.received, 3);
    assert_int_equal(q.expected, 22);
    beat(m, "a", 1, (uint64_t)1 << 40, 3 * S);
    vigil_monitor_node_qos(m, n, &q);
    assert_int_equal(q.received, 4);
    assert_int_equal(q.expected, 4 + (uint64_t)UINT32_MAX);
    beat(m, "a", 2, 5, 4 * S);
    vigil_monitor_node_qos(m, n, &q);
    assert_int_equal(q.received, 1);
    assert_int_equal(q.expected, 1);
    vigil_monitor_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tail_regular),
        cmocka_unit_test(test_tail_loss),
        cmocka_unit_test(test_tail_jitter),
        cmocka_unit_test(test_net_from_stats),
        cmocka_unit_test(test_k),
        cmocka_unit_test(test_predict_fixed),
        cmocka_unit_test(test_predict_phi),
        cmocka_unit_test(test_grid_from_state),
        cmocka_unit_test(test_predict_grid),
        cmocka_unit_test(test_min_silence),
        cmocka_unit_test(test_observed_mistakes),
        cmocka_unit_test(test_observed_many_nodes),
        cmocka_unit_test(test_observed_loss_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
