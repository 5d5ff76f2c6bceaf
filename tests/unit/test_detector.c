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
static void feed(const struct vigil_detector_config *cfg, struct vigil_detector *d, vigil_time_t *t,
                 vigil_time_t interval, bool learn)
{
    *t += interval;
    vigil_detector_arrival(cfg, d, *t, learn);
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
 * A detector whose reference point is set but whose history is empty, as
 * if seeded with nothing: the intervals fed next are all it knows.
 */
static void unseeded(struct vigil_detector *d, vigil_time_t t)
{
    vigil_detector_init(d);
    d->last = t;
}

/*
 * A detector fed ten alternating 900/1100 ms intervals and nothing else
 * (window 20: ten intervals are averaged plainly) has
 * exactly mean 1000 ms and sd 100 ms, and then gives the reference values
 * as levels.
 */
static void test_phi_reference_detector(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    vigil_time_t t = 5 * SEC, mean, sd;

    (void)state;
    ref_config(&cfg, 20);
    assert_int_equal(vigil_detector_config_check(&cfg, NULL), 0);
    unseeded(&d, t);
    for (int i = 0; i < 10; i++)
        feed(&cfg, &d, &t, (i % 2) ? 1100 * MS : 900 * MS, true);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 1000 * MS);
    assert_int_equal(sd, 100 * MS);
    assert_int_equal(d.n, 10);
    assert_true(d.weight == 10.0f);
    for (size_t i = 0; i < N_REF; i++) {
        vigil_time_t dt = akka_ref[i].dt_ms * MS;
        double level = vigil_detector_level(&cfg, &d, t + dt);
        assert_true(fabs(level - akka_ref[i].phi) <= 0.1);
        assert_true(level == vigil_phi(dt, 1000.0 * MS, 100.0 * MS));
    }
    /* The crossing of phi(1600 ms) is exactly 1600 ms after the last arrival. */
    double th = vigil_phi(1600 * MS, 1000.0 * MS, 100.0 * MS);
    assert_int_equal(vigil_detector_crossing(&cfg, &d, th), t + 1600 * MS);
    /* With the seeds (750 and 1250 ms) in the history the deviation differs. */
    vigil_detector_init(&d);
    t = 0;
    vigil_detector_arrival(&cfg, &d, t, true);
    for (int i = 0; i < 10; i++)
        feed(&cfg, &d, &t, (i % 2) ? 1100 * MS : 900 * MS, true);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(d.n, 12);
    assert_true(sd != 100 * MS);
}

static void test_population_stats(void **state)
{
    static const int64_t iv_ms[] = {100, 200, 125, 340, 130};
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    vigil_time_t t = 0, mean, sd;

    (void)state;
    /* Window 10: the first 10 / 2 = 5 intervals are averaged plainly. */
    ref_config(&cfg, 10);
    unseeded(&d, t);
    for (int i = 0; i < 5; i++)
        feed(&cfg, &d, &t, iv_ms[i] * MS, true);
    assert_int_equal(d.n, 5);
    assert_true(d.weight == 5.0f);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 179 * MS);
    /* Variance from the running sums, in ms^2: population, not sample (9480). */
    double m_us = d.sum_us / d.weight;
    double var_ms2 = (d.sumsq_us / d.weight - m_us * m_us) / 1e6;
    assert_true(fabs(var_ms2 - 7584.0) < 1e-6);
    /* And through stats(), which rounds sd to the nanosecond. */
    double sd_ms = (double)sd / (double)MS;
    assert_true(fabs(sd_ms * sd_ms - 7584.0) < 1e-3);
}

static void test_bootstrap(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
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
    vigil_detector_arrival(&cfg, &d, 3 * SEC, false);
    assert_int_equal(d.last, 3 * SEC);
    assert_int_equal(d.n, 2);
    assert_true(d.weight == 2.0f);
    assert_true(d.sum_us == 750000.0 + 1250000.0);
    assert_true(d.sumsq_us == 750000.0 * 750000.0 + 1250000.0 * 1250000.0);
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
    vigil_time_t t = 0, mean0, sd0, mean1, sd1;

    (void)state;
    ref_config(&cfg, 8);
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, t, true);
    feed(&cfg, &d, &t, 1000 * MS, true);
    feed(&cfg, &d, &t, 1100 * MS, true);
    vigil_detector_stats(&d, &mean0, &sd0);
    struct vigil_detector before = d;
    /* A 30 s gap not learned: statistics untouched, reference point moved. */
    feed(&cfg, &d, &t, 30 * SEC, false);
    vigil_detector_stats(&d, &mean1, &sd1);
    assert_int_equal(mean1, mean0);
    assert_int_equal(sd1, sd0);
    assert_int_equal(d.n, before.n);
    assert_true(d.weight == before.weight);
    assert_true(d.sum_us == before.sum_us && d.sumsq_us == before.sumsq_us);
    assert_int_equal(d.last, t);
    assert_true(vigil_detector_level(&cfg, &d, t) < 0.01);
    /* The same gap learned does change them. */
    feed(&cfg, &d, &t, 30 * SEC, true);
    vigil_detector_stats(&d, &mean1, &sd1);
    assert_true(mean1 > mean0 && sd1 > sd0);
    assert_int_equal(d.n, before.n + 1);
}

static void test_rebase(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    vigil_time_t t = 0;

    (void)state;
    ref_config(&cfg, 8);
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, t, true);
    feed(&cfg, &d, &t, 1000 * MS, true);
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
    vigil_time_t t = 0, mean, sd;

    (void)state;
    /*
     * Perfectly regular 1 s heartbeats and nothing else (window 8: four
     * intervals are averaged plainly): the measured deviation is 0.
     */
    ref_config(&cfg, 8);
    cfg.min_std_dev = 100 * MS;
    unseeded(&d, t);
    for (int i = 0; i < 4; i++)
        feed(&cfg, &d, &t, SEC, true);
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
    t = 0;
    unseeded(&d, t);
    for (int i = 0; i < 4; i++)
        feed(&cfg, &d, &t, (i % 2) ? 1100 * MS : 900 * MS, true);
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
    vigil_time_t t = 0;

    (void)state;
    /* Exactly mean 1000 ms and sd 100 ms, as in test_phi_reference_detector. */
    ref_config(&cfg, 8);
    unseeded(&d, t);
    for (int i = 0; i < 4; i++)
        feed(&cfg, &d, &t, (i % 2) ? 1100 * MS : 900 * MS, true);
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

/*
 * The running moments: plain sums up to a weight of window / 2, then
 * exponentially weighted with 2 / window for the newest interval. Window
 * 5: plain up to 2.5, then a weight of 0.4 for each new interval.
 */
static void test_moments_decay(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    vigil_time_t t = 0, mean, sd;

    (void)state;
    ref_config(&cfg, 5);
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, t, true); /* 750, 1250: weight 2 */
    assert_true(d.weight == 2.0f);
    /* 1000 fills the weight to the cap: the seeds scaled by 1.5 / 2. */
    feed(&cfg, &d, &t, 1000 * MS, true);
    assert_true(d.weight == 2.5f);
    assert_true(d.sum_us == 2500000.0);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 1000 * MS);
    /* From here on a moving average: 0.6 * 1000 + 0.4 * 2000 = 1400. */
    feed(&cfg, &d, &t, 2000 * MS, true);
    assert_true(d.weight == 2.5f);
    assert_int_equal(d.n, 4);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 1400 * MS);
    /* 0.6 * 1400 + 0.4 * 500 = 1040. */
    feed(&cfg, &d, &t, 500 * MS, true);
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, 1040 * MS);
    /*
     * The variance is the exponentially weighted one, var' = (1 - a) (var +
     * a (x - mean)^2), checked against that recurrence over some more
     * intervals.
     */
    double a = 0.4, em = 1040000, ev;
    {
        double m0 = d.sum_us / d.weight;
        ev = d.sumsq_us / d.weight - m0 * m0;
    }
    static const int64_t more_ms[] = {1000, 1300, 700, 5000, 1000, 1000};
    for (size_t i = 0; i < sizeof(more_ms) / sizeof(more_ms[0]); i++) {
        double x = (double)more_ms[i] * 1000;
        feed(&cfg, &d, &t, more_ms[i] * MS, true);
        ev = (1 - a) * (ev + a * (x - em) * (x - em));
        em += a * (x - em);
        double m = d.sum_us / d.weight, v = d.sumsq_us / d.weight - m * m;
        assert_true(fabs(m - em) <= 1e-9 * em);
        assert_true(fabs(v - ev) <= 1e-9 * (ev + em * em));
    }
    /* Sub-microsecond parts round to the nearest microsecond. */
    cfg.window = VIGIL_PHI_WINDOW_MAX;
    unseeded(&d, t);
    feed(&cfg, &d, &t, 1000 * MS + 499, true);
    assert_true(d.sum_us == 1000000.0);
    feed(&cfg, &d, &t, 1000 * MS + 500, true);
    assert_true(d.sum_us == 2000001.0);
    /* Intervals beyond the uint32 range of microseconds saturate. */
    unseeded(&d, t);
    feed(&cfg, &d, &t, 5000 * SEC, true);
    assert_true(d.sum_us == (double)UINT32_MAX);
    feed(&cfg, &d, &t, 4294967295 * INT64_C(1000), true);
    assert_true(d.sum_us == 2.0 * UINT32_MAX);
    feed(&cfg, &d, &t, 4294967294 * INT64_C(1000), true);
    assert_true(d.sum_us == 3.0 * UINT32_MAX - 1);
    /* A window shrunk under a detector scales its history to the new weight. */
    cfg.window = 4;
    feed(&cfg, &d, &t, 700 * MS, true);
    assert_true(d.weight == 2.0f);
    vigil_detector_stats(&d, &mean, &sd);
    assert_true(mean > 700 * MS && mean < (vigil_time_t)UINT32_MAX * 1000);
}

/*
 * 100,000 intervals in phases of huge (hours, some saturated) and ordinary
 * (about a second) values, against the same moments computed in long
 * double by the recurrence of the exponentially weighted mean and variance.
 * Old terms are scaled down, never subtracted, so rounding errors fade with
 * them: the mean and variance stay within 1e-9 of the second moment of the
 * reference at every step.
 */
static void drift_run(uint32_t window, uint64_t seed)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    vigil_time_t t = 0;
    long double rm = 0, rv = 0, rw = 0, cap = (long double)window / 2;

    ref_config(&cfg, window);
    unseeded(&d, t);
    for (int done = 0; done < 100000;) {
        bool huge = rng_next(&seed) & 1;
        int len = (int)window * (int)rng_range(&seed, 1, 3);
        for (int i = 0; i < len && done < 100000; i++, done++) {
            vigil_time_t iv = huge ? rng_range(&seed, 2000 * SEC, 5000 * SEC)
                                   : rng_range(&seed, 500 * MS, 1500 * MS);
            long double x = iv >= 4294967295 * INT64_C(1000) ? (long double)UINT32_MAX
                                                             : (long double)((iv + 500) / 1000);
            long double a;
            rw = rw + 1 > cap ? cap : rw + 1;
            a = 1 / rw;
            rv = (1 - a) * (rv + a * (x - rm) * (x - rm));
            rm += a * (x - rm);
            feed(&cfg, &d, &t, iv, true);
            double m = d.sum_us / d.weight, v = d.sumsq_us / d.weight - m * m;
            long double scale = rv + rm * rm;
            assert_true(fabsl((long double)m - rm) <= 1e-9L * rm);
            assert_true(fabsl((long double)v - rv) <= 1e-9L * scale);
        }
    }
}

static void test_drift(void **state)
{
    (void)state;
    print_message("drift seed %llx\n", (unsigned long long)TEST_SEED);
    drift_run(7, TEST_SEED);
    drift_run(1000, TEST_SEED + 1);
}

/* --- the running moments against the windowed history they replace ------ */

/*
 * A reference copy of the windowed estimator the running moments replace
 * (the reference implementation's): a ring of the last W intervals in
 * microseconds, seeded with first_estimate -/+ a quarter; mean and
 * population deviation recomputed from the ring.
 */
struct old_window {
    uint32_t v[VIGIL_PHI_WINDOW_MAX];
    uint32_t n, head, window;
    vigil_time_t last;
};

static void old_push(struct old_window *o, vigil_time_t iv)
{
    o->v[o->head] = (uint32_t)((iv + 500) / 1000);
    o->head = (o->head + 1) % o->window;
    if (o->n < o->window)
        o->n++;
}

static void old_arrival(struct old_window *o, const struct vigil_detector_config *cfg,
                        vigil_time_t now, bool learn)
{
    if (o->last == VIGIL_TIME_NEVER) {
        vigil_time_t fe = cfg->first_estimate;
        o->n = o->head = 0;
        o->window = cfg->window;
        old_push(o, fe - fe / 4);
        old_push(o, fe + fe / 4);
    } else if (learn) {
        old_push(o, now - o->last);
    }
    o->last = now;
}

/* The old estimator's crossing of threshold th (closed form, as the monitor estimates it). */
static vigil_time_t old_crossing(const struct old_window *o,
                                 const struct vigil_detector_config *cfg, double th)
{
    double sum = 0, sumsq = 0;
    for (uint32_t i = 0; i < o->n; i++) {
        sum += (double)o->v[i];
        sumsq += (double)o->v[i] * (double)o->v[i];
    }
    double m = sum / o->n, var = sumsq / o->n - m * m;
    double sd = fmax(sqrt(var > 0 ? var : 0) * 1000, (double)cfg->min_std_dev);
    return o->last + (vigil_time_t)ceil(m * 1000 + (double)cfg->acceptable_pause +
                                        vigil_phi_quantile(th) * sd);
}

/* A normal deviate (Box-Muller), for jitter. */
static double rng_normal(uint64_t *s)
{
    double u = rng_unit(s), v = rng_unit(s);
    return sqrt(-2 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v);
}

enum trace_kind { T_STEADY, T_JITTER, T_LOSS, T_GC, T_CHANGE, T_KINDS };

static const char *const trace_names[T_KINDS] = {"steady, 20 ms jitter", "heavy jitter (200 ms)",
                                                 "3 % loss and bursts", "sender pauses (GC)",
                                                 "interval changes"};

/*
 * The arrival times of a live sender for 4,000 heartbeat slots at 1 s: on
 * a fixed grid, with jitter, losses, stalls of the sender (it skips the
 * slots it sleeps through and sends late, as a GC pause does) or a change
 * of its interval. Returns the number of arrivals.
 */
static int make_trace(enum trace_kind k, uint64_t *seed, vigil_time_t *at, int cap)
{
    vigil_time_t h = SEC, t = 0, stall_end = 0;
    int n = 0;

    for (int slot = 0; slot < 4000 && n < cap; slot++) {
        if (k == T_CHANGE)
            h = slot < 1300 ? SEC : slot < 2600 ? 2 * SEC : 500 * MS;
        t += h;
        double jit_ms = k == T_JITTER ? 200 : 20;
        vigil_time_t a = t + (vigil_time_t)(fabs(rng_normal(seed)) * jit_ms * (double)MS);
        if (k == T_LOSS) {
            if (rng_unit(seed) < 0.03)
                continue;
            /* Now and then a burst: 2 or 3 heartbeats in a row lost. */
            if (rng_unit(seed) < 0.004) {
                slot += (int)rng_range(seed, 1, 2);
                t += 2 * h;
                continue;
            }
        }
        if (k == T_GC && stall_end <= t && rng_unit(seed) < 0.01)
            stall_end = t + rng_range(seed, 1000 * MS, 4000 * MS);
        if (a < stall_end)
            a = stall_end;
        if (n > 0 && a <= at[n - 1])
            continue;
        at[n++] = a;
    }
    return n;
}

struct verdicts {
    int suspicions, deaths; /* wrong: the sender was alive all along */
    double td_sum, td_max;  /* detection time after a crash just after each heartbeat, s */
    int crashes;
};

/*
 * Replays a trace through one estimator, as the monitor would: after a
 * heartbeat that came after the node was already dead, the interval that
 * spans the outage is not learned. A crash right after every heartbeat is
 * considered: its detection time is the crossing of the dead threshold
 * from that heartbeat.
 */
static void replay(const struct vigil_detector_config *cfg, const vigil_time_t *at, int n, bool old,
                   struct verdicts *v)
{
    static struct old_window o;
    struct vigil_detector d;
    bool dead = false;

    memset(v, 0, sizeof(*v));
    vigil_detector_init(&d);
    o.last = VIGIL_TIME_NEVER;
    for (int i = 0; i < n; i++) {
        if (i > 0) {
            vigil_time_t cs = old ? old_crossing(&o, cfg, cfg->suspect_threshold)
                                  : vigil_detector_crossing(cfg, &d, cfg->suspect_threshold);
            vigil_time_t cd = old ? old_crossing(&o, cfg, cfg->dead_threshold)
                                  : vigil_detector_crossing(cfg, &d, cfg->dead_threshold);
            if (cs < at[i])
                v->suspicions++;
            dead = cd < at[i];
            if (dead)
                v->deaths++;
        }
        if (old)
            old_arrival(&o, cfg, at[i], !dead);
        else
            vigil_detector_arrival(cfg, &d, at[i], !dead);
        vigil_time_t cd = old ? old_crossing(&o, cfg, cfg->dead_threshold)
                              : vigil_detector_crossing(cfg, &d, cfg->dead_threshold);
        double td = (double)(cd - at[i]) / (double)SEC;
        v->td_sum += td;
        v->td_max = fmax(v->td_max, td);
        v->crashes++;
    }
}

/* Traces of each kind replayed (each 4,000 heartbeat slots). */
#define TRACE_RUNS 60

/*
 * Proof that the running moments keep the detector's verdicts: realistic
 * traces (steady, heavy jitter, loss with bursts, sender pauses, interval
 * changes), TRACE_RUNS of each, replayed through the windowed estimator of
 * the reference (window 32, the default) and through the running moments,
 * with the default settings at 1 s. Over each kind's 240,000 heartbeats
 * the moments must make no more wrong suspicions and no more wrong deaths
 * than the window, and detect a crash after a heartbeat as fast: on
 * average within 1 % of the window's time, at worst within 2.5 s of the
 * window's worst. A single crash can be detected later (the moments
 * remember an outlier longer than half a window, in exchange for
 * forgetting it gradually rather than all at once); the worst such case
 * is printed.
 */
static void test_moments_vs_window(void **state)
{
    static vigil_time_t at[4000];
    struct vigil_detector_config cfg;
    uint64_t seed = TEST_SEED ^ 0x77;

    (void)state;
    vigil_detector_config_default(&cfg, VIGIL_DETECTOR_PHI, SEC);
    print_message("moments against window seed %llx\n", (unsigned long long)seed);
    for (int k = 0; k < T_KINDS; k++) {
        struct verdicts to = {0}, tn = {0};
        double worst = -1e9;
        for (int r = 0; r < TRACE_RUNS; r++) {
            int n = make_trace((enum trace_kind)k, &seed, at, 4000);
            struct verdicts vo, vn;
            replay(&cfg, at, n, true, &vo);
            replay(&cfg, at, n, false, &vn);
            to.suspicions += vo.suspicions;
            to.deaths += vo.deaths;
            to.td_sum += vo.td_sum;
            to.crashes += vo.crashes;
            tn.suspicions += vn.suspicions;
            tn.deaths += vn.deaths;
            tn.td_sum += vn.td_sum;
            tn.crashes += vn.crashes;
            to.td_max = fmax(to.td_max, vo.td_max);
            tn.td_max = fmax(tn.td_max, vn.td_max);
            /* Per crash point: how much later the moments detect than the window. */
            struct old_window *o = calloc(1, sizeof(*o));
            struct vigil_detector d;
            assert_non_null(o);
            o->last = VIGIL_TIME_NEVER;
            vigil_detector_init(&d);
            bool dead_o = false, dead_n = false;
            for (int i = 0; i < n; i++) {
                if (i > 0) {
                    dead_o = old_crossing(o, &cfg, cfg.dead_threshold) < at[i];
                    dead_n = vigil_detector_crossing(&cfg, &d, cfg.dead_threshold) < at[i];
                }
                old_arrival(o, &cfg, at[i], !dead_o);
                vigil_detector_arrival(&cfg, &d, at[i], !dead_n);
                double diff = (double)(vigil_detector_crossing(&cfg, &d, cfg.dead_threshold) -
                                       old_crossing(o, &cfg, cfg.dead_threshold)) /
                              (double)SEC;
                worst = fmax(worst, diff);
            }
            free(o);
        }
        double mo = to.td_sum / to.crashes, mn = tn.td_sum / tn.crashes;
        print_message("%-22s window: %3d suspicions %3d deaths, T_D mean %.3f s max %.3f s; "
                      "moments: %3d suspicions %3d deaths, T_D mean %.3f s max %.3f s; "
                      "worst extra %.3f s\n",
                      trace_names[k], to.suspicions, to.deaths, mo, to.td_max, tn.suspicions,
                      tn.deaths, mn, tn.td_max, worst);
        assert_true(tn.suspicions <= to.suspicions);
        assert_true(tn.deaths <= to.deaths);
        assert_true(mn <= mo * 1.01);
        assert_true(tn.td_max <= to.td_max + 2.5);
    }
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
    vigil_detector_arrival(&cfg, &d, t0, true);
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
    vigil_detector_arrival(&cfg, &d, t0 + 2 * SEC, false);
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
                               struct vigil_detector *d)
{
    vigil_time_t interval = rng_range(seed, 10 * MS, 10 * SEC);
    vigil_time_t t = rng_range(seed, 0, 1000 * SEC);

    vigil_detector_config_default(cfg, VIGIL_DETECTOR_PHI, interval);
    cfg->window = (uint32_t)rng_range(seed, 2, 64);
    cfg->min_std_dev = rng_range(seed, 1000, interval);
    cfg->acceptable_pause = (rng_next(seed) & 1) ? rng_range(seed, 0, 3 * interval) : 0;
    assert_int_equal(vigil_detector_config_check(cfg, NULL), 0);
    vigil_detector_init(d);
    vigil_detector_arrival(cfg, d, t, true);
    int n = (int)rng_range(seed, 0, 100);
    vigil_time_t jitter = rng_range(seed, 0, interval / 2);
    for (int i = 0; i < n; i++)
        feed(cfg, d, &t, interval + rng_range(seed, -jitter, jitter), rng_next(seed) % 8);
    return t;
}

static void test_phi_crossing_property(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    uint64_t seed = TEST_SEED;
    static const double special[] = {1e-6, 0.01, 0.3,   0.30103, 0.302, 1.0, 5.0,
                                     8.0,  12.0, 100.0, 1000.0,  1e5,   1e6};

    (void)state;
    print_message("crossing seed %llx\n", (unsigned long long)seed);
    for (int iter = 0; iter < 500; iter++) {
        vigil_time_t last = random_phi(&seed, &cfg, &d);
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
    uint64_t seed = TEST_SEED ^ 1;

    (void)state;
    for (int iter = 0; iter < 200; iter++) {
        vigil_time_t last = random_phi(&seed, &cfg, &d);
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

static void test_phi_no_window(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;

    (void)state;
    /* A phi detector without a window (unchecked settings) keeps no history but stays usable. */
    vigil_detector_config_default(&cfg, VIGIL_DETECTOR_PHI, SEC);
    cfg.window = 0;
    vigil_detector_init(&d);
    vigil_detector_arrival(&cfg, &d, SEC, true);
    vigil_detector_arrival(&cfg, &d, 2 * SEC, true);
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
    vigil_detector_config_default(&cfg, VIGIL_DETECTOR_PHI, SEC);
    vigil_detector_init(&d);
    vigil_time_t t = 0;
    for (int i = 0; i < 50; i++) {
        t += SEC + (i % 5) * 37 * MS;
        vigil_detector_arrival(&cfg, &d, t, true);
        for (size_t k = 0; k < sizeof(thresholds) / sizeof(thresholds[0]); k++) {
            vigil_time_t exact = vigil_detector_crossing(&cfg, &d, thresholds[k]);
            vigil_time_t est = vigil_detector_crossing_estimate(&cfg, &d, thresholds[k],
                                                                vigil_phi_quantile(thresholds[k]));
            assert_true(llabs(exact - est) < 1000);
        }
    }
}

/* --- the grid detector ---------------------------------------------------- */

/*
 * A grid at 100 ms whose loss rate sits on the floor: a floor of 10 % makes
 * every missed slot worth exactly 1, jitter floor 1 ms and margin 5 ms make
 * the margin 5 + 4 * 1 = 9 ms once the jitter has decayed.
 */
static void grid_config(struct vigil_detector_config *cfg)
{
    vigil_detector_config_default(cfg, VIGIL_DETECTOR_GRID, 100 * MS);
    cfg->loss_floor = 0.1;
    cfg->min_std_dev = 1 * MS;
    cfg->margin = 5 * MS;
}

/* Heartbeats first..last, exactly on a grid whose slot 0 is expected at t0. */
static void grid_feed(const struct vigil_detector_config *cfg, struct vigil_detector *d,
                      vigil_time_t t0, uint64_t first, uint64_t last)
{
    for (uint64_t s = first; s <= last; s++)
        vigil_detector_heartbeat(cfg, d, t0 + (vigil_time_t)s * cfg->interval, s,
                                 d->last != VIGIL_TIME_NEVER);
}

/* The loss rate the detector should assume for decayed counts lost/slots. */
static double grid_expected_loss(const struct vigil_detector_config *cfg, double lost, double slots)
{
    double n = slots + 50, p = (lost + 0.1 * 50) / n;
    p += sqrt(p * (1 - p) / n);
    return fmin(fmax(p, cfg->loss_floor), 0.9);
}

static void test_grid_defaults(void **state)
{
    struct vigil_detector_config cfg;

    (void)state;
    vigil_detector_config_default(&cfg, VIGIL_DETECTOR_GRID, 100 * MS);
    assert_int_equal(cfg.kind, VIGIL_DETECTOR_GRID);
    assert_true(cfg.suspect_threshold == 6.0);
    assert_true(cfg.dead_threshold == 6.5);
    assert_int_equal(cfg.interval, 100 * MS);
    assert_int_equal(cfg.margin, 5 * MS);
    assert_int_equal(cfg.min_std_dev, 500 * 1000);
    assert_true(cfg.loss_floor == 0.01);
    assert_int_equal(cfg.loss_window, 1000);
    assert_int_equal(cfg.window, 0);
    assert_int_equal(vigil_detector_config_check(&cfg, NULL), 0);
    assert_string_equal(vigil_detector_kind_name(VIGIL_DETECTOR_GRID), "grid");
    assert_string_equal(vigil_detector_kind_name(VIGIL_DETECTOR_PHI), "phi");
    assert_string_equal(vigil_detector_kind_name(VIGIL_DETECTOR_FIXED), "fixed");
    assert_string_equal(vigil_detector_kind_name((enum vigil_detector_kind)7), "invalid");
    assert_int_equal(vigil_detector_kind_parse("grid"), VIGIL_DETECTOR_GRID);
    assert_int_equal(vigil_detector_kind_parse("fixed"), VIGIL_DETECTOR_FIXED);
    assert_int_equal(vigil_detector_kind_parse("Grid"), -1);
    assert_int_equal(vigil_detector_kind_parse(NULL), -1);

    /* Every grid setting out of its range is refused. */
    struct vigil_detector_config c = cfg;
    c.interval = 0;
    expect_bad(&c);
    c = cfg;
    c.min_std_dev = 0;
    expect_bad(&c);
    c = cfg;
    c.margin = -1;
    expect_bad(&c);
    c = cfg;
    c.loss_floor = 0;
    expect_bad(&c);
    c.loss_floor = 0.51;
    expect_bad(&c);
    c.loss_floor = NAN;
    expect_bad(&c);
    c.loss_floor = 0.5;
    expect_good(&c);
    c = cfg;
    c.loss_window = VIGIL_GRID_WINDOW_MIN - 1;
    expect_bad(&c);
    c.loss_window = VIGIL_GRID_WINDOW_MAX + 1;
    expect_bad(&c);
    c.loss_window = VIGIL_GRID_WINDOW_MIN;
    expect_good(&c);
    c = cfg;
    c.dead_threshold = 2e6;
    expect_bad(&c);
}

/* Exact crossings on both sides of every slot boundary of a known grid. */
static void test_grid_boundaries(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    const vigil_time_t t0 = 7 * SEC, h = 100 * MS;

    (void)state;
    grid_config(&cfg);
    vigil_detector_init(&d);
    /* Before any heartbeat: no level, no crossing, no evidence. */
    assert_true(vigil_detector_level(&cfg, &d, t0) == 0);
    assert_int_equal(vigil_detector_crossing(&cfg, &d, 1), VIGIL_TIME_NEVER);
    assert_true(vigil_detector_loss(&cfg, &d) == 0);
    assert_int_equal(vigil_detector_missed(&cfg, &d, t0), 0);
    /* 2000 heartbeats on the grid: no loss (the floor rules), jitter decayed to its floor. */
    grid_feed(&cfg, &d, t0, 1, 2000);
    vigil_time_t last = t0 + 2000 * h;
    assert_int_equal(d.last, last);
    assert_int_equal(d.expect, last);
    assert_true(vigil_detector_loss(&cfg, &d) == 0.1);
    vigil_time_t mean, sd;
    vigil_detector_stats(&d, &mean, &sd);
    assert_int_equal(mean, h);
    assert_true(sd < 1000);

    /* Slot i is missed at last + i * h + 9 ms, and not a nanosecond before. */
    for (uint64_t i = 1; i <= 12; i++) {
        vigil_time_t at = last + (vigil_time_t)i * h + 9 * MS;
        assert_true(vigil_detector_level(&cfg, &d, at - 1) == (double)(i - 1));
        assert_true(vigil_detector_level(&cfg, &d, at) == (double)i);
        assert_int_equal(vigil_detector_missed(&cfg, &d, at - 1), i - 1);
        assert_int_equal(vigil_detector_missed(&cfg, &d, at), i);
        /* A threshold of exactly i is reached at slot i; a hair above it, one slot later. */
        assert_int_equal(vigil_detector_crossing(&cfg, &d, (double)i), at);
        assert_int_equal(vigil_detector_crossing(&cfg, &d, (double)i + 1e-9), at + h);
        assert_int_equal(vigil_detector_crossing(&cfg, &d, (double)i - 0.5), at);
        assert_int_equal(vigil_detector_crossing_estimate(&cfg, &d, (double)i, 0), at);
    }
    /* Before the last arrival, and at it, the level is 0. */
    assert_true(vigil_detector_level(&cfg, &d, last - SEC) == 0);
    assert_true(vigil_detector_level(&cfg, &d, last + h + 9 * MS - 1) == 0);
    assert_int_equal(vigil_detector_crossing(&cfg, &d, 2e6), VIGIL_TIME_NEVER);
    assert_int_equal(vigil_detector_crossing(&cfg, &d, NAN), VIGIL_TIME_NEVER);

    /* A lower floor makes a slot worth more: 1 % is 2 per slot, so 6.5 takes 4 slots. */
    cfg.loss_floor = 0.01;
    double loss = vigil_detector_loss(&cfg, &d);
    assert_true(loss >= 0.01 && loss < 0.02);
    double per = -log10(loss);
    uint64_t k = (uint64_t)ceil(6.5 / per);
    vigil_time_t c = vigil_detector_crossing(&cfg, &d, 6.5);
    assert_int_equal(c, last + (vigil_time_t)k * h + 9 * MS);
    assert_true(vigil_detector_level(&cfg, &d, c - 1) < 6.5);
    assert_true(vigil_detector_level(&cfg, &d, c) >= 6.5);
}

/* The loss rate from sequence gaps: the prior, the decay, the upper bound, the floor. */
static void test_grid_loss_estimate(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    const vigil_time_t t0 = SEC, h = 100 * MS;

    (void)state;
    grid_config(&cfg);
    cfg.loss_floor = VIGIL_GRID_LOSS_FLOOR_MIN;
    vigil_detector_init(&d);
    /* The first heartbeat: the prior alone, 10 % on the strength of 50, plus one standard error. */
    vigil_detector_heartbeat(&cfg, &d, t0 + h, 1, false);
    assert_true(fabs(vigil_detector_loss(&cfg, &d) - (0.1 + sqrt(0.09 / 50))) < 1e-12);

    /* Every tenth heartbeat lost, for 5000 heartbeats due: follow the decayed counts. */
    double lam = 1 - 1.0 / cfg.loss_window, lost = 0, slots = 0;
    uint64_t s = 1;
    while (s < 5000) {
        uint64_t next = s + ((s + 1) % 10 == 0 ? 2 : 1);
        vigil_detector_heartbeat(&cfg, &d, t0 + (vigil_time_t)next * h, next, true);
        double g = (double)(next - s), f = pow(lam, g);
        slots = slots * f + g;
        lost = lost * f + (g - 1);
        s = next;
    }
    double want = grid_expected_loss(&cfg, lost, slots);
    assert_true(fabs(vigil_detector_loss(&cfg, &d) - want) < 1e-5);
    /* About 10 %, and above it: the upper bound, never overconfident. */
    assert_true(want > 0.1 && want < 0.115);

    /* A clean run after it: the estimate decays towards 0 and stops at the floor. */
    grid_feed(&cfg, &d, t0, s + 1, s + 20000);
    assert_true(vigil_detector_loss(&cfg, &d) < 0.01);
    cfg.loss_floor = 0.02;
    assert_true(vigil_detector_loss(&cfg, &d) == 0.02);

    /* A heartbeat after its deadline (slot + margin) counts as missed, one just inside does not. */
    struct vigil_detector a = d, b = d;
    uint64_t n = s + 20001;
    vigil_time_t slot = t0 + (vigil_time_t)n * h;
    vigil_time_t margin = 5 * MS + 4 * MS; /* jitter at its floor */
    vigil_detector_heartbeat(&cfg, &a, slot + margin, n, true);
    vigil_detector_heartbeat(&cfg, &b, slot + margin + 1, n, true);
    assert_true(a.lost * 1.0001 < b.lost && b.lost > 0.99);
    /* Other kinds report no loss and no missed heartbeats. */
    struct vigil_detector_config phi;
    vigil_detector_config_default(&phi, VIGIL_DETECTOR_PHI, h);
    assert_true(vigil_detector_loss(&phi, &d) == 0);
    assert_int_equal(vigil_detector_missed(&phi, &d, slot + 10 * SEC), 0);
}

/*
 * Sequence numbers place heartbeats: a newer heartbeat after lost ones lands
 * on its own slot (the lost ones counted); one that is not newer, a new
 * generation (learn false) or a stalled sender re-anchors or renumbers
 * without counting anything.
 */
static void test_grid_sequences(void **state)
{
    struct vigil_detector_config cfg;
    struct vigil_detector d;
    const vigil_time_t t0 = SEC, h = 100 * MS, mg = 9 * MS;

    (void)state;
    grid_config(&cfg);
    vigil_detector_init(&d);
    grid_feed(&cfg, &d, t0, 1, 1000);
    float lost0 = d.lost;

    /* 1001 and 1002 lost; 1003 arrives on its slot, late by 2 ms: on the grid. */
    vigil_time_t at = t0 + 1003 * h + 2 * MS;
    vigil_detector_heartbeat(&cfg, &d, at, 1003, true);
    assert_true(d.lost > lost0 + 1.99f && d.lost < lost0 + 2.01f);
    /* The expected arrival moved by a sixteenth of the residual, not to the arrival. */
    assert_true(d.expect > t0 + 1003 * h && d.expect < t0 + 1003 * h + 2 * MS);
    assert_int_equal(d.seq, 1003);
    assert_int_equal(vigil_detector_missed(&cfg, &d, at), 0);
    assert_int_equal(vigil_detector_missed(&cfg, &d, d.expect + h + mg + 500000), 1);

    /* The same number again (not newer): the grid is anchored at the arrival, nothing counted. */
    float lost1 = d.lost, slots1 = d.slots;
    vigil_detector_heartbeat(&cfg, &d, at + 30 * MS, 1003, true);
    assert_int_equal(d.expect, at + 30 * MS);
    assert_true(d.lost == lost1 && d.slots == slots1);
    assert_int_equal(d.learned, 0);

    /* An older number (out of order): the same. */
    vigil_detector_heartbeat(&cfg, &d, at + 40 * MS, 900, true);
    assert_int_equal(d.expect, at + 40 * MS);
    assert_int_equal(d.seq, 900);
    assert_true(d.lost == lost1 && d.slots == slots1);

    /* A new generation (learn false) numbers afresh from 1: anchored, estimates kept. */
    vigil_time_t g0 = at + 5 * SEC + 37 * MS;
    vigil_detector_heartbeat(&cfg, &d, g0, 1, false);
    assert_int_equal(d.expect, g0);
    assert_int_equal(d.seq, 1);
    assert_true(d.lost == lost1 && d.slots == slots1);
    /* The first slot of the new grid is missed at g0 + h + margin. */
    assert_int_equal(vigil_detector_missed(&cfg, &d, g0 + h + mg - 1), 0);
    assert_int_equal(vigil_detector_missed(&cfg, &d, g0 + h + mg), 1);
    /* After it, the anchor is averaged with the next arrivals (a cumulative mean). */
    vigil_detector_heartbeat(&cfg, &d, g0 + h + 4 * MS, 2, true);
    assert_int_equal(d.expect, g0 + h + 2 * MS);
    assert_int_equal(d.learned, 1);

    /* The sender stalls for 5 slots and goes on with the next number: renumbered, no loss. */
    vigil_time_t stall = g0 + 7 * h + 1 * MS;
    float lost2 = d.lost;
    vigil_detector_heartbeat(&cfg, &d, stall, 3, true);
    assert_true(d.lost == lost2);
    assert_int_equal(d.expect, g0 + 2 * MS + 7 * h);
    assert_int_equal(vigil_detector_missed(&cfg, &d, stall), 0);

    /* vigil_detector_arrival on a grid is the next sequence number. */
    vigil_detector_arrival(&cfg, &d, d.expect + h, true);
    assert_int_equal(d.seq, 4);

    /* Rebase: a whole detection period from now. */
    vigil_time_t now = stall + 10 * SEC;
    vigil_detector_rebase(&d, now);
    assert_int_equal(vigil_detector_missed(&cfg, &d, now + h + mg - 1), 0);
    assert_int_equal(vigil_detector_crossing(&cfg, &d, 3.0), now + 3 * h + mg);

    /* A grid state read as phi, then fed as phi: a fresh phi history. */
    struct vigil_detector_config phi;
    vigil_detector_config_default(&phi, VIGIL_DETECTOR_PHI, h);
    vigil_detector_arrival(&phi, &d, now + h, true);
    assert_int_equal(d.grid, 0);
    assert_int_equal(d.n, 1);
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
        cmocka_unit_test(test_moments_decay),
        cmocka_unit_test(test_drift),
        cmocka_unit_test(test_moments_vs_window),
        cmocka_unit_test(test_fixed_boundaries),
        cmocka_unit_test(test_phi_crossing_property),
        cmocka_unit_test(test_level_monotonic),
        cmocka_unit_test(test_phi_no_window),
        cmocka_unit_test(test_config_default),
        cmocka_unit_test(test_quantile_and_estimate),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_grid_defaults),
        cmocka_unit_test(test_grid_boundaries),
        cmocka_unit_test(test_grid_loss_estimate),
        cmocka_unit_test(test_grid_sequences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
