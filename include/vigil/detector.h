/*
 * Failure detectors. Every detector answers three questions about one node:
 * record an arrival; what is the suspicion level at time t; and, for
 * scheduling, at what time will the level reach a given threshold. The
 * monitor keeps one vigil_detector per node and one vigil_detector_config
 * for all of them. Pure code: time comes in as arguments.
 *
 * Levels: for the fixed-timeout detector the level is the number of seconds
 * since the last arrival, and thresholds are seconds; for phi accrual the
 * level is phi and thresholds are phi values.
 */
#ifndef VIGIL_DETECTOR_H
#define VIGIL_DETECTOR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vigil_detector_kind {
    VIGIL_DETECTOR_FIXED = 0,
    VIGIL_DETECTOR_PHI = 1,
};

/* Most intervals a phi detector keeps per node (its memory is 4 bytes each). */
#define VIGIL_PHI_WINDOW_MAX 1000
/* Fewest: a mean and a deviation need two intervals. */
#define VIGIL_PHI_WINDOW_MIN 2

struct vigil_detector_config {
    enum vigil_detector_kind kind;
    /* Thresholds on the level: suspect at >= suspect, dead at >= dead. */
    double suspect_threshold;
    double dead_threshold;
    /* Phi only. */
    vigil_time_t first_estimate;   /* expected interval; seeds the history */
    vigil_time_t min_std_dev;      /* floor on the standard deviation */
    vigil_time_t acceptable_pause; /* added to the mean */
    uint32_t window;               /* intervals kept: VIGIL_PHI_WINDOW_MIN..MAX */
};

/* Fills cfg with the defaults for kind, for heartbeats every interval. */
VIGIL_EXPORT void vigil_detector_config_default(struct vigil_detector_config *cfg,
                                                enum vigil_detector_kind kind,
                                                vigil_time_t interval);

/*
 * Per-node detector state. The interval history itself lives in a
 * caller-owned array of cfg->window uint32_t (intervals in microseconds),
 * passed to each call as ring, so that node records stay small and flat.
 * Phi needs it; the fixed detector only keeps it (when given one) to report
 * interval statistics, and works with NULL.
 */
struct vigil_detector {
    vigil_time_t last; /* last arrival; VIGIL_TIME_NEVER before the first */
    double sum_us;     /* running sum of the intervals in the ring */
    double sumsq_us;   /* running sum of their squares */
    uint16_t n;        /* intervals in the ring */
    uint16_t head;     /* next slot to write */
};

VIGIL_EXPORT void vigil_detector_init(struct vigil_detector *d);

/*
 * Records an arrival at now. With learn false the interval since the
 * previous arrival is not added to the history (the first interval after a
 * failure, or after a pause of the monitor); the arrival still counts as
 * the new reference point. The first arrival seeds a phi history with
 * first_estimate -/+ a quarter, as the reference implementation does.
 */
VIGIL_EXPORT void vigil_detector_arrival(const struct vigil_detector_config *cfg,
                                         struct vigil_detector *d, uint32_t *ring, vigil_time_t now,
                                         bool learn);

/* Moves the reference point to now without learning (a fresh grace period). */
VIGIL_EXPORT void vigil_detector_rebase(struct vigil_detector *d, vigil_time_t now);

/* The suspicion level at now (0 before the first arrival). */
VIGIL_EXPORT double vigil_detector_level(const struct vigil_detector_config *cfg,
                                         const struct vigil_detector *d, vigil_time_t now);

/*
 * The earliest time t (to the nanosecond, rounded up) at which
 * vigil_detector_level(t) >= threshold. VIGIL_TIME_NEVER before the first
 * arrival.
 */
VIGIL_EXPORT vigil_time_t vigil_detector_crossing(const struct vigil_detector_config *cfg,
                                                  const struct vigil_detector *d, double threshold);

/*
 * The standardised deviation y at which phi reaches threshold: phi(mean' +
 * y * sd') = threshold for any mean' and sd'. Depends on the threshold
 * alone, so a caller can compute it once.
 */
VIGIL_EXPORT double vigil_phi_quantile(double threshold);

/*
 * The closed-form estimate of vigil_detector_crossing, without its exact
 * refinement: cheaper, and within a microsecond of the exact crossing for
 * any sane configuration. For deciding whether a deadline must move, not
 * for the deadline itself. quantile is vigil_phi_quantile(threshold) for
 * phi (ignored for the fixed detector).
 */
VIGIL_EXPORT vigil_time_t vigil_detector_crossing_estimate(const struct vigil_detector_config *cfg,
                                                           const struct vigil_detector *d,
                                                           double threshold, double quantile);

/* Interval statistics of the history, in nanoseconds (0 when empty). */
VIGIL_EXPORT void vigil_detector_stats(const struct vigil_detector *d, vigil_time_t *mean,
                                       vigil_time_t *std_dev);

/* Phi of an interval dt for given mean and standard deviation (all ns). */
VIGIL_EXPORT double vigil_phi(vigil_time_t dt, double mean, double std_dev);

/* Checks a configuration; returns 0 or -VIGIL_EINVAL with *why set. */
VIGIL_EXPORT int vigil_detector_config_check(const struct vigil_detector_config *cfg,
                                             const char **why);

#ifdef __cplusplus
}
#endif

#endif
