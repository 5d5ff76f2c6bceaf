/*
 * Tests of the failure detectors (src/core/detector.c).
 *
 * The phi numbers are checked against the reference values of Akka's
 * PhiAccrualFailureDetector, both through vigil_phi() and through a
 * detector whose history was fed so that its statistics are exactly the
 * reference ones. Timing is checked in virtual time, on both sides of every
 * boundary: the level one nanosecond before a crossing is below the
 * threshold, the level at the crossing is at or above it. The randomised
 * tests use a fixed seed, print it, and are bounded.
 */
#include <math.h>
#include <stdlib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <vigil/detector.h>

#define MS  VIGIL_NSEC_PER_MSEC
#define SEC VIGIL_NSEC_PER_SEC

/* Seed of the randomised tests; a failure replays with the same seed. */
#define TEST_SEED UINT64_C(0x5eed0fd37ec7041)

/* A small deterministic generator (splitmix64), so runs are reproducible. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A uniform integer in [lo, hi]. */
static int64_t rng_range(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* A uniform double in [0, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

/* The reference setting: pause 0 and a minimum deviation far below 100 ms. */
static void ref_config(struct vigil_detector_config *cfg, uint32_t window)
{
    vigil_detector_config_default(cfg, VIGIL_DETECTOR_PHI, SEC);
    cfg->min_std_dev = 1 * MS;
    cfg->acceptable_pause = 0;
    cfg->window = window;
}

/* Arrival of the next heartbeat interval ns after the previous one. */
static void feed(const struct vigil_detector_config *cfg, struct vigil_detector *d, uint32_t *ring,
                 vigil_time_t *t, vigil_time_t interval, bool learn)
{
    *t += interval;
    vigil_detector_arrival(cfg, d, ring, *t, learn);
}

/* Reference values: dt (ms) and phi, for mean 1000 ms and sd 100 ms. */
static const struct {
    int64_t dt_ms;
    double phi;
} akka_ref[] = {
    {0, 0.0}, {500, 0.1}, {1000, 0.3}, {1200, 1.6}, {1400, 4.7}, {1600, 10.8}, {1700, 15.3},
};

#define N_REF (sizeof(akka_ref) / sizeof(akka_ref[0]))

static void test_phi_reference_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_REF; i++) {
        double phi = vigil_phi(akka_ref[i].dt_ms * MS, 1000.0 * MS, 100.0 * MS);
        assert_true(fabs(phi - akka_ref[i].phi) <= 0.1);
    }
    /* At the mean, y = 0 and e = 1: phi is exactly -log10(1/2). */
    assert_true(fabs(vigil_phi(1000 * MS, 1000.0 * MS, 100.0 * MS) - log10(2.0)) < 1e-12);
    /* Units cancel: the same numbers in milliseconds give the same phi. */
    assert_true(fabs(vigil_phi(1600, 1000.0, 100.0) - vigil_phi(1600 * MS, 1e9, 1e8)) < 1e-9);
}

static void test_phi_tails_finite(void **state)
{
    (void)state;
    /*
     * y = 50: the reference's e = exp(-8900) underflows to 0 and its phi is
     * +inf; here phi stays finite and equals z / ln 10 to rounding.
     */
    double y = 50, z = y * (1.5976 + 0.070566 * y * y);
    double phi = vigil_phi(1500 * MS, 1000.0 * MS, 10.0 * MS);
    assert_true(isfinite(phi));
    assert_true(fabs(phi - z / log(10.0)) <= 1e-9 * phi);
    /* Further out it is capped at 1e6, never inf. */
    assert_true(vigil_phi(2 * SEC, 1000.0 * MS, 1.0 * MS) == 1e6);
    assert_true(vigil_phi(INT64_MAX, 1000.0 * MS, 1.0) == 1e6);
    /* Far below the mean phi is 0 or a tiny positive number, never negative. */
    double low = vigil_phi(0, 1000.0 * MS, 1.0 * MS);
    assert_true(low >= 0 && low < 1e-300);
    /* A zero deviation is a step at the mean. */
    assert_true(vigil_phi(1001, 1000.0, 0.0) == 1e6);
    assert_true(vigil_phi(999, 1000.0, 0.0) == 0.0);
    assert_true(fabs(vigil_phi(1000, 1000.0, 0.0) - log10(2.0)) < 1e-12);
    assert_true(vigil_phi(1000, NAN, 1.0) == 1e6);
}

/*
 * A detector fed alternating 900/1100 ms intervals until the seeds are
 * evicted has exactly mean 1000 ms and sd 100 ms, and then gives the
 * reference values as levels.
 */
static void test_phi_reference_detector(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    uint32_t ring[10];
    vigil_time_t t = 5 * SEC, mean, sd;

    (void)state;
    ref_config(&cfg, 10);
    assert_int_equal(vigil_detector_config_check(&cfg, NULL), 0);
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, ring, t, true);
    for (int i = 0; i < 10; i++)
        feed(&cfg, &d, ring, &t, (i % 2) ? 1100 * MS : 900 * MS, true);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 1000 * MS);
    assert_int_equal(sd, 100 * MS);
    assert_int_equal(d.n, 10);
    for (size_t i = 0; i < N_REF; i++) {
        vigil_time_t dt = akka_ref[i].dt_ms * MS;
        double level = vigil_detector_level(&cfg, &d, t + dt);
        assert_true(fabs(level - akka_ref[i].phi) <= 0.1);
        assert_true(level == vigil_phi(dt, 1000.0 * MS, 100.0 * MS));
    }
    /* The crossing of phi(1600 ms) is exactly 1600 ms after the last arrival. */
    double th = vigil_phi(1600 * MS, 1000.0 * MS, 100.0 * MS);
    assert_int_equal(vigil_detector_crossing(&cfg, &d, th), t + 1600 * MS);
    /* One seed left (window 11 after 10 intervals) and the statistics differ. */
    uint32_t ring11[11];
    cfg.window = 11;
    vigil_detector_init(&d);
    t = 0;
    vigil_detector_arrival(&cfg, &d, ring11, t, true);
    for (int i = 0; i < 10; i++)
        feed(&cfg, &d, ring11, &t, (i % 2) ? 1100 * MS : 900 * MS, true);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(d.n, 11);
    assert_true(mean != 1000 * MS);
}

static void test_population_stats(void **state)
{
    static const int64_t iv_ms[] = {100, 200, 125, 340, 130};
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    uint32_t ring[5];
    vigil_time_t t = 0, mean, sd;

    (void)state;
    ref_config(&cfg, 5);
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, ring, t, true);
    for (int i = 0; i < 5; i++)
        feed(&cfg, &d, ring, &t, iv_ms[i] * MS, true);
    assert_int_equal(d.n, 5);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 179 * MS);
    /* Variance from the running sums, in ms^2: population, not sample (9480). */
    double m_us = d.sum_us / d.n;
    double var_ms2 = (d.sumsq_us / d.n - m_us * m_us) / 1e6;
    assert_true(fabs(var_ms2 - 7584.0) < 1e-6);
    /* And through stats(), which rounds sd to the nanosecond. */
    double sd_ms = (double)sd / (double)MS;
    assert_true(fabs(sd_ms * sd_ms - 7584.0) < 1e-3);
}

static void test_bootstrap(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    uint32_t ring[32];
    vigil_time_t mean = -1, sd = -1;

    (void)state;
    vigil_detector_config_default(&cfg, VIGIL_DETECTOR_PHI, SEC);
    vigil_detector_init(&d);
    /* Before the first arrival: no level, no crossing, no statistics. */
    assert_true(vigil_detector_level(&cfg, &d, 0) == 0.0);
    assert_true(vigil_detector_level(&cfg, &d, 100 * SEC) == 0.0);
    assert_true(vigil_detector_crossing(&cfg, &d, 5.0) == VIGIL_TIME_NEVER);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 0);
    assert_int_equal(sd, 0);
    /* The first arrival seeds 750 and 1250 ms, whatever the learn flag says. */
    vigil_detector_arrival(&cfg, &d, ring, 3 * SEC, false);
    assert_int_equal(d.last, 3 * SEC);
    assert_int_equal(d.n, 2);
    assert_int_equal(ring[0], 750000);
    assert_int_equal(ring[1], 1250000);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 1000 * MS);
    assert_int_equal(sd, 250 * MS);
    /* Now the level rises from the arrival on. */
    assert_true(vigil_detector_level(&cfg, &d, 3 * SEC) < 0.01);
    assert_true(vigil_detector_level(&cfg, &d, 8 * SEC) > 1.0);
    assert_true(vigil_detector_crossing(&cfg, &d, 5.0) != VIGIL_TIME_NEVER);
}

static void test_learn_false(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    uint32_t ring[8];
    vigil_time_t t = 0, mean0, sd0, mean1, sd1;

    (void)state;
    ref_config(&cfg, 8);
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, ring, t, true);
    feed(&cfg, &d, ring, &t, 1000 * MS, true);
    feed(&cfg, &d, ring, &t, 1100 * MS, true);
    vigil_detector_stats(&d, &mean0, &sd0);
    struct vigil_detector before = d;
    /* A 30 s gap not learned: statistics untouched, reference point moved. */
    feed(&cfg, &d, ring, &t, 30 * SEC, false);
    vigil_detector_stats(&d, &mean1, &sd1);
    assert_int_equal(mean1, mean0);
    assert_int_equal(sd1, sd0);
    assert_int_equal(d.n, before.n);
    assert_int_equal(d.head, before.head);
    assert_true(d.sum_us == before.sum_us && d.sumsq_us == before.sumsq_us);
    assert_int_equal(d.last, t);
    assert_true(vigil_detector_level(&cfg, &d, t) < 0.01);
    /* The same gap learned does change them. */
    feed(&cfg, &d, ring, &t, 30 * SEC, true);
    vigil_detector_stats(&d, &mean1, &sd1);
    assert_true(mean1 > mean0 && sd1 > sd0);
    assert_int_equal(d.n, before.n + 1);
}

static void test_rebase(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    uint32_t ring[8];
    vigil_time_t t = 0;

    (void)state;
    ref_config(&cfg, 8);
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, ring, t, true);
    feed(&cfg, &d, ring, &t, 1000 * MS, true);
    struct vigil_detector before = d;
    vigil_time_t c0 = vigil_detector_crossing(&cfg, &d, 8.0);
    vigil_detector_rebase(&d, t + 7 * SEC);
    assert_int_equal(d.last, t + 7 * SEC);
    assert_int_equal(d.n, before.n);
    assert_true(d.sum_us == before.sum_us && d.sumsq_us == before.sumsq_us);
    assert_int_equal(vigil_detector_crossing(&cfg, &d, 8.0), c0 + 7 * SEC);
    assert_true(vigil_detector_level(&cfg, &d, t + 7 * SEC) < 0.01);
}

static void test_min_std_dev(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    uint32_t ring[4];
    vigil_time_t t = 0, mean, sd;

    (void)state;
    /* Perfectly regular 1 s heartbeats: the measured deviation is 0. */
    ref_config(&cfg, 4);
    cfg.min_std_dev = 100 * MS;
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, ring, t, true);
    for (int i = 0; i < 4; i++)
        feed(&cfg, &d, ring, &t, SEC, true);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, SEC);
    assert_int_equal(sd, 0);
    /* The floor takes the deviation's place: phi(1200 ms) is the reference 1.6. */
    double l100 = vigil_detector_level(&cfg, &d, t + 1200 * MS);
    assert_true(l100 == vigil_phi(1200 * MS, 1e9, 1e8));
    assert_true(fabs(l100 - 1.6) <= 0.1);
    /* A higher floor lowers phi past the mean, a lower one raises it. */
    cfg.min_std_dev = 200 * MS;
    double l200 = vigil_detector_level(&cfg, &d, t + 1200 * MS);
    assert_true(l200 == vigil_phi(1200 * MS, 1e9, 2e8));
    assert_true(l200 < l100);
    cfg.min_std_dev = 50 * MS;
    assert_true(vigil_detector_level(&cfg, &d, t + 1200 * MS) > l100);
    /* A floor below the measured deviation has no effect. */
    vigil_detector_init(&d);
    t = 0;
    vigil_detector_arrival(&cfg, &d, ring, t, true);
    for (int i = 0; i < 4; i++)
        feed(&cfg, &d, ring, &t, (i % 2) ? 1100 * MS : 900 * MS, true);
    double a = vigil_detector_level(&cfg, &d, t + 1300 * MS);
    cfg.min_std_dev = 1 * MS;
    assert_true(vigil_detector_level(&cfg, &d, t + 1300 * MS) == a);
    assert_true(a == vigil_phi(1300 * MS, 1e9, 1e8));
    /* And one just above it does. */
    cfg.min_std_dev = 100 * MS + 1;
    assert_true(vigil_detector_level(&cfg, &d, t + 1300 * MS) < a);
}

static void test_acceptable_pause(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    uint32_t ring[4];
    vigil_time_t t = 0;

    (void)state;
    ref_config(&cfg, 4);
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, ring, t, true);
    for (int i = 0; i < 4; i++)
        feed(&cfg, &d, ring, &t, (i % 2) ? 1100 * MS : 900 * MS, true);
    double no_pause = vigil_detector_level(&cfg, &d, t + 1600 * MS);
    assert_true(fabs(no_pause - 10.8) <= 0.1);
    /* A 3 s pause shifts the curve by 3 s: phi(4600 ms) is what phi(1600 ms) was. */
    cfg.acceptable_pause = 3 * SEC;
    double lp = vigil_detector_level(&cfg, &d, t + 4600 * MS);
    assert_true(lp == vigil_phi(4600 * MS, 4e9, 1e8));
    assert_true(fabs(lp - no_pause) < 1e-9);
    assert_true(vigil_detector_level(&cfg, &d, t + 1600 * MS) < 1e-6);
    /* At mean + pause, phi is log10(2) exactly. */
    assert_true(fabs(vigil_detector_level(&cfg, &d, t + 4 * SEC) - log10(2.0)) < 1e-12);
    vigil_time_t c8 = vigil_detector_crossing(&cfg, &d, 8.0);
    cfg.acceptable_pause = 0;
    assert_int_equal(vigil_detector_crossing(&cfg, &d, 8.0) + 3 * SEC, c8);
}

static void test_window_eviction(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    uint32_t ring[4];
    vigil_time_t t = 0, mean, sd;

    (void)state;
    ref_config(&cfg, 4);
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, ring, t, true); /* 750, 1250 */
    feed(&cfg, &d, ring, &t, 1000 * MS, true);
    feed(&cfg, &d, ring, &t, 1000 * MS, true);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.head, 0);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 1000 * MS);
    /* 2000 evicts the oldest, 750: 1250 + 1000 + 1000 + 2000. */
    feed(&cfg, &d, ring, &t, 2000 * MS, true);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.head, 1);
    assert_int_equal(ring[0], 2000000);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 1312500 * 1000);
    /* 500 evicts 1250: 1000 + 1000 + 2000 + 500. */
    feed(&cfg, &d, ring, &t, 500 * MS, true);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 1125 * MS);
    /* Sub-microsecond parts round to the nearest microsecond. */
    feed(&cfg, &d, ring, &t, 1000 * MS + 499, true);
    assert_int_equal(ring[2], 1000000);
    feed(&cfg, &d, ring, &t, 1000 * MS + 500, true);
    assert_int_equal(ring[3], 1000001);
    /* Intervals beyond the uint32 range of microseconds saturate. */
    feed(&cfg, &d, ring, &t, 5000 * SEC, true);
    assert_int_equal(ring[0], UINT32_MAX);
    feed(&cfg, &d, ring, &t, 4294967295 * INT64_C(1000), true);
    assert_int_equal(ring[1], UINT32_MAX);
    feed(&cfg, &d, ring, &t, 4294967294 * INT64_C(1000), true);
    assert_int_equal(ring[2], UINT32_MAX - 1);
    /* A window shrunk under a detector restarts its history safely. */
    cfg.window = 2;
    feed(&cfg, &d, ring, &t, 700 * MS, true);
    assert_int_equal(d.n, 1);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 700 * MS);
}

/* Checks the running sums against a direct recomputation from the ring. */
static void check_sums(const struct vigil_detector *d, const uint32_t *ring, bool exact)
{
    double sum = 0, sumsq = 0;

    for (uint32_t i = 0; i < d->n; i++) {
        sum += (double)ring[i];
        sumsq += (double)ring[i] * (double)ring[i];
    }
    if (exact) {
        assert_true(d->sum_us == sum);
        assert_true(d->sumsq_us == sumsq);
    } else {
        assert_true(fabs(d->sum_us - sum) <= 1e-6 * sum);
        assert_true(fabs(d->sumsq_us - sumsq) <= 1e-6 * sumsq);
    }
}

/*
 * 100,000 intervals in phases of huge (hours, some saturated) and ordinary
 * (about a second) values. Without the periodic recomputation the sum of
 * squares keeps the rounding error of the huge phase, which is larger than
 * the whole sum of an ordinary phase; with it the sums are exact at every
 * wrap and within 1e-6 of the truth at every step.
 */
static void drift_run(uint32_t window, uint64_t seed)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    static uint32_t ring[VIGIL_PHI_WINDOW_MAX];
    vigil_time_t t = 0;
    int done = 0;

    ref_config(&cfg, window);
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, ring, t, true);
    /* Fill to a wrap so that every phase starts at slot 0. */
    while (d.head != 0)
        feed(&cfg, &d, ring, &t, SEC, true);
    while (done < 100000) {
        bool huge = rng_next(&seed) & 1;
        int len = (int)window * (int)rng_range(&seed, 1, 3);
        for (int i = 0; i < len && done < 100000; i++, done++) {
            vigil_time_t iv = huge ? rng_range(&seed, 2000 * SEC, 5000 * SEC)
                                   : rng_range(&seed, 500 * MS, 1500 * MS);
            feed(&cfg, &d, ring, &t, iv, true);
            assert_int_equal(ring[(d.head + window - 1) % window],
                             iv >= 4294967295 * INT64_C(1000) ? UINT32_MAX
                                                              : (uint32_t)((iv + 500) / 1000));
            check_sums(&d, ring, d.head == 0);
        }
    }
}

static void test_drift_recompute(void **state)
{
    (void)state;
    print_message("drift seed %llx\n", (unsigned long long)TEST_SEED);
    drift_run(7, TEST_SEED);
    drift_run(1000, TEST_SEED + 1);
}

static void test_fixed_boundaries(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    vigil_time_t t0 = 10 * SEC, mean = -1, sd = -1;

    (void)state;
    vigil_detector_config_default(&cfg, VIGIL_DETECTOR_FIXED, SEC);
    vigil_detector_init(&d);
    assert_true(vigil_detector_level(&cfg, &d, t0) == 0.0);
    assert_true(vigil_detector_crossing(&cfg, &d, 2.5) == VIGIL_TIME_NEVER);
    vigil_detector_arrival(&cfg, &d, NULL, t0, true);
    assert_int_equal(d.n, 0);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 0);
    assert_int_equal(sd, 0);
    /* Level: seconds since the last arrival, 0 before it. */
    assert_true(vigil_detector_level(&cfg, &d, t0) == 0.0);
    assert_true(vigil_detector_level(&cfg, &d, t0 - SEC) == 0.0);
    assert_true(vigil_detector_level(&cfg, &d, t0 + 1500 * MS) == 1.5);
    /* Suspect at 2.5 s: not 1 ns before, exactly at. */
    assert_true(vigil_detector_level(&cfg, &d, t0 + 2500 * MS - 1) < cfg.suspect_threshold);
    assert_true(vigil_detector_level(&cfg, &d, t0 + 2500 * MS) >= cfg.suspect_threshold);
    assert_int_equal(vigil_detector_crossing(&cfg, &d, cfg.suspect_threshold), t0 + 2500 * MS);
    assert_true(vigil_detector_level(&cfg, &d, t0 + 5 * SEC - 1) < cfg.dead_threshold);
    assert_true(vigil_detector_level(&cfg, &d, t0 + 5 * SEC) >= cfg.dead_threshold);
    assert_int_equal(vigil_detector_crossing(&cfg, &d, cfg.dead_threshold), t0 + 5 * SEC);
    /* Thresholds that are not whole nanoseconds round up. */
    assert_int_equal(vigil_detector_crossing(&cfg, &d, 1e-9), t0 + 1);
    assert_int_equal(vigil_detector_crossing(&cfg, &d, 1.5e-9), t0 + 2);
    assert_int_equal(vigil_detector_crossing(&cfg, &d, 0.1), t0 + 100 * MS);
    /* A threshold of 0 or less is reached at the arrival itself. */
    assert_int_equal(vigil_detector_crossing(&cfg, &d, 0.0), t0);
    /* Unreachable thresholds never cross. */
    assert_true(vigil_detector_crossing(&cfg, &d, 1e300) == VIGIL_TIME_NEVER);
    assert_true(vigil_detector_crossing(&cfg, &d, INFINITY) == VIGIL_TIME_NEVER);
    assert_true(vigil_detector_crossing(&cfg, &d, NAN) == VIGIL_TIME_NEVER);
    /* A later arrival moves everything; learn does not matter. */
    vigil_detector_arrival(&cfg, &d, NULL, t0 + 2 * SEC, false);
    assert_int_equal(vigil_detector_crossing(&cfg, &d, 2.5), t0 + 4500 * MS);
    /* Random thresholds: exact on both sides. */
    uint64_t seed = TEST_SEED;
    for (int i = 0; i < 2000; i++) {
        double th = rng_unit(&seed) * 100.0 + 1e-9;
        vigil_time_t c = vigil_detector_crossing(&cfg, &d, th);
        assert_true(c > d.last);
        assert_true(vigil_detector_level(&cfg, &d, c) >= th);
        assert_true(vigil_detector_level(&cfg, &d, c - 1) < th);
    }
}

/* A random phi configuration and history; returns the time of the last arrival. */
static vigil_time_t random_phi(uint64_t *seed, struct vigil_detector_config *cfg,
                               struct vigil_detector *d, uint32_t *ring)
{
    vigil_time_t interval = rng_range(seed, 10 * MS, 10 * SEC);
    vigil_time_t t = rng_range(seed, 0, 1000 * SEC);

    vigil_detector_config_default(cfg, VIGIL_DETECTOR_PHI, interval);
    cfg->window = (uint32_t)rng_range(seed, 2, 64);
    cfg->min_std_dev = rng_range(seed, 1000, interval);
    cfg->acceptable_pause = (rng_next(seed) & 1) ? rng_range(seed, 0, 3 * interval) : 0;
    assert_int_equal(vigil_detector_config_check(cfg, NULL), 0);
    vigil_detector_init(d);
    vigil_detector_arrival(cfg, d, ring, t, true);
    int n = (int)rng_range(seed, 0, 100);
    vigil_time_t jitter = rng_range(seed, 0, interval / 2);
    for (int i = 0; i < n; i++)
        feed(cfg, d, ring, &t, interval + rng_range(seed, -jitter, jitter), rng_next(seed) % 8);
    return t;
}

static void test_phi_crossing_property(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    uint32_t ring[64];
    uint64_t seed = TEST_SEED;
    static const double special[] = {1e-6, 0.01, 0.3,   0.30103, 0.302, 1.0, 5.0,
                                     8.0,  12.0, 100.0, 1000.0,  1e5,   1e6};

    (void)state;
    print_message("crossing seed %llx\n", (unsigned long long)seed);
    for (int iter = 0; iter < 500; iter++) {
        vigil_time_t last = random_phi(&seed, &cfg, &d, ring);
        for (int k = 0; k < 20; k++) {
            double th = k < 13 ? special[k] : exp(rng_unit(&seed) * 10.0 - 3.0);
            vigil_time_t c = vigil_detector_crossing(&cfg, &d, th);
            assert_true(c != VIGIL_TIME_NEVER);
            assert_true(c >= last);
            assert_true(vigil_detector_level(&cfg, &d, c) >= th);
            if (c > last) {
                /* The earliest such time: one nanosecond earlier is below. */
                assert_true(vigil_detector_level(&cfg, &d, c - 1) < th);
            } else {
                assert_true(vigil_detector_level(&cfg, &d, last) >= th);
            }
            if (c - 1000 >= last)
                assert_true(vigil_detector_level(&cfg, &d, c - 1000) < th);
        }
        /* Above the largest level there is no crossing. */
        assert_true(vigil_detector_crossing(&cfg, &d, 1e6 * 1.5) == VIGIL_TIME_NEVER);
        assert_true(vigil_detector_crossing(&cfg, &d, NAN) == VIGIL_TIME_NEVER);
    }
}

static void test_level_monotonic(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    uint32_t ring[64];
    uint64_t seed = TEST_SEED ^ 1;

    (void)state;
    for (int iter = 0; iter < 200; iter++) {
        vigil_time_t last = random_phi(&seed, &cfg, &d, ring);
        vigil_time_t mean, sd;
        vigil_detector_stats(&d, &mean, &sd);
        vigil_time_t span = 10 * (mean + cfg.acceptable_pause + sd + cfg.min_std_dev);
        double prev = vigil_detector_level(&cfg, &d, last);
        assert_true(prev >= 0);
        vigil_time_t t = last;
        for (int k = 0; k < 500; k++) {
            t += rng_range(&seed, 1, span / 250);
            double l = vigil_detector_level(&cfg, &d, t);
            assert_true(isfinite(l));
            assert_true(l >= prev);
            prev = l;
        }
        /* Nanosecond steps around the suspicion crossing. */
        vigil_time_t c = vigil_detector_crossing(&cfg, &d, cfg.suspect_threshold);
        prev = vigil_detector_level(&cfg, &d, c - 100);
        for (vigil_time_t u = c - 99; u <= c + 100; u++) {
            double l = vigil_detector_level(&cfg, &d, u);
            assert_true(l >= prev);
            prev = l;
        }
    }
}

static void test_phi_no_ring(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;

    (void)state;
    /* A phi detector without a ring keeps no history but stays usable. */
    vigil_detector_config_default(&cfg, VIGIL_DETECTOR_PHI, SEC);
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, NULL, SEC, true);
    vigil_detector_arrival(&cfg, &d, NULL, 2 * SEC, true);
    assert_int_equal(d.n, 0);
    assert_int_equal(d.last, 2 * SEC);
    /* mean' = pause (3 s), sd' = min_std_dev (100 ms). */
    assert_true(vigil_detector_level(&cfg, &d, 5200 * MS) == vigil_phi(3200 * MS, 3e9, 1e8));
}

static void test_config_default(void **state)
{
    struct vigil_detector_config cfg;

    (void)state;
    vigil_detector_config_default(&cfg, VIGIL_DETECTOR_FIXED, SEC);
    assert_int_equal(cfg.kind, VIGIL_DETECTOR_FIXED);
    assert_true(cfg.suspect_threshold == 2.5);
    assert_true(cfg.dead_threshold == 5.0);
    assert_int_equal(vigil_detector_config_check(&cfg, NULL), 0);
    vigil_detector_config_default(&cfg, VIGIL_DETECTOR_FIXED, 200 * MS);
    assert_true(fabs(cfg.suspect_threshold - 0.5) < 1e-12);
    assert_true(fabs(cfg.dead_threshold - 1.0) < 1e-12);
    vigil_detector_config_default(&cfg, VIGIL_DETECTOR_PHI, 2 * SEC);
    assert_int_equal(cfg.kind, VIGIL_DETECTOR_PHI);
    assert_true(cfg.suspect_threshold == 3.0);
    assert_true(cfg.dead_threshold == 8.0);
    assert_int_equal(cfg.first_estimate, 2 * SEC);
    assert_int_equal(cfg.min_std_dev, 200 * MS);
    assert_int_equal(cfg.acceptable_pause, 6 * SEC);
    assert_int_equal(cfg.window, 32);
    assert_int_equal(vigil_detector_config_check(&cfg, NULL), 0);
}

/* Expects cfg to be rejected with a reason. */
static void expect_bad(const struct vigil_detector_config *cfg)
{
    const char *why = NULL;
    assert_int_equal(vigil_detector_config_check(cfg, &why), -VIGIL_EINVAL);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
}

/* Expects cfg to be accepted and why left alone. */
static void expect_good(const struct vigil_detector_config *cfg)
{
    const char *why = "untouched";
    assert_int_equal(vigil_detector_config_check(cfg, &why), 0);
    assert_string_equal(why, "untouched");
}

static void test_config_check(void **state)
{
    struct vigil_detector_config base, c;

    (void)state;
    expect_bad(NULL);
    for (int kind = 0; kind < 2; kind++) {
        vigil_detector_config_default(&base, (enum vigil_detector_kind)kind, SEC);
        expect_good(&base);
        c = base;
        c.suspect_threshold = 0;
        expect_bad(&c);
        c.suspect_threshold = -1;
        expect_bad(&c);
        c.suspect_threshold = NAN;
        expect_bad(&c);
        c = base;
        c.dead_threshold = 0;
        expect_bad(&c);
        c.dead_threshold = NAN;
        expect_bad(&c);
        c.dead_threshold = INFINITY;
        expect_bad(&c);
        /* suspect <= dead: equal is fine, one above is not. */
        c = base;
        c.suspect_threshold = c.dead_threshold;
        expect_good(&c);
        c.suspect_threshold = nextafter(c.dead_threshold, INFINITY);
        expect_bad(&c);
        c = base;
        c.suspect_threshold = 1e-9;
        expect_good(&c);
    }
    c = base;
    c.kind = (enum vigil_detector_kind)7;
    expect_bad(&c);
    /* Phi: window 2..1000. */
    vigil_detector_config_default(&base, VIGIL_DETECTOR_PHI, SEC);
    c = base;
    c.window = 1;
    expect_bad(&c);
    c.window = 0;
    expect_bad(&c);
    c.window = 2;
    expect_good(&c);
    c.window = VIGIL_PHI_WINDOW_MAX;
    expect_good(&c);
    c.window = VIGIL_PHI_WINDOW_MAX + 1;
    expect_bad(&c);
    c = base;
    c.first_estimate = 0;
    expect_bad(&c);
    c.first_estimate = -SEC;
    expect_bad(&c);
    c.first_estimate = 1;
    expect_good(&c);
    c = base;
    c.min_std_dev = 0;
    expect_bad(&c);
    c.min_std_dev = -1;
    expect_bad(&c);
    c.min_std_dev = 1;
    expect_good(&c);
    c = base;
    c.acceptable_pause = -1;
    expect_bad(&c);
    c.acceptable_pause = 0;
    expect_good(&c);
    c = base;
    c.dead_threshold = 1e6;
    expect_good(&c);
    c.dead_threshold = 1.5e6;
    expect_bad(&c);
    /* The fixed detector ignores the phi settings. */
    vigil_detector_config_default(&c, VIGIL_DETECTOR_FIXED, SEC);
    c.window = 0;
    c.first_estimate = 0;
    c.min_std_dev = 0;
    expect_good(&c);
}

/* The quantile inverts phi, and the estimate built on it sits within a microsecond of the exact
 * crossing. */
static void test_quantile_and_estimate(void **state)
{
    (void)state;
    const double thresholds[] = {0.5, 1.0, 3.0, 5.0, 8.0, 12.0, 16.0};
    for (size_t i = 0; i < sizeof(thresholds) / sizeof(thresholds[0]); i++) {
        double y = vigil_phi_quantile(thresholds[i]);
        double phi = vigil_phi((vigil_time_t)(1e9 + y * 1e8), 1e9, 1e8);
        assert_true(fabs(phi - thresholds[i]) < 1e-3);
    }
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    uint32_t ring[32];
    vigil_detector_config_default(&cfg, VIGIL_DETECTOR_PHI, SEC);
    vigil_detector_init(&d);
    vigil_time_t t = 0;
    for (int i = 0; i < 50; i++) {
        t += SEC + (i % 5) * 37 * MS;
        vigil_detector_arrival(&cfg, &d, ring, t, true);
        for (size_t k = 0; k < sizeof(thresholds) / sizeof(thresholds[0]); k++) {
            vigil_time_t exact = vigil_detector_crossing(&cfg, &d, thresholds[k]);
            vigil_time_t est = vigil_detector_crossing_estimate(&cfg, &d, thresholds[k],
                                                                vigil_phi_quantile(thresholds[k]));
            assert_true(llabs(exact - est) < 1000);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phi_reference_values),
        cmocka_unit_test(test_phi_tails_finite),
        cmocka_unit_test(test_phi_reference_detector),
        cmocka_unit_test(test_population_stats),
        cmocka_unit_test(test_bootstrap),
        cmocka_unit_test(test_learn_false),
        cmocka_unit_test(test_rebase),
        cmocka_unit_test(test_min_std_dev),
        cmocka_unit_test(test_acceptable_pause),
        cmocka_unit_test(test_window_eviction),
        cmocka_unit_test(test_drift_recompute),
        cmocka_unit_test(test_fixed_boundaries),
        cmocka_unit_test(test_phi_crossing_property),
        cmocka_unit_test(test_level_monotonic),
        cmocka_unit_test(test_phi_no_ring),
        cmocka_unit_test(test_config_default),
        cmocka_unit_test(test_quantile_and_estimate),
        cmocka_unit_test(test_config_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
