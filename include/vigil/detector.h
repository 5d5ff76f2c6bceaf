/*
 * Failure detectors. Every detector answers three questions about one node:
 * record an arrival; what is the suspicion level at time t; and, for
 * scheduling, at what time will the level reach a given threshold. The
 * monitor keeps one vigil_detector per node and one vigil_detector_config
 * for all of them. Pure code: time comes in as arguments.
 *
 * Levels: for the fixed-timeout detector the level is the number of seconds
 * since the last arrival, and thresholds are seconds; for phi accrual the
 * level is phi and thresholds are phi values; for the grid detector the
 * level is -log10 of the probability that every heartbeat missed since the
 * last one was lost (docs/detection.md), and thresholds are on the same
 * scale as phi's.
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
    /*
     * Sequence numbers on the sender's fixed grid: the expected arrival of
     * every heartbeat and the loss rate are estimated, and the level counts
     * the heartbeats missed since the last one (docs/detection.md).
     */
    VIGIL_DETECTOR_GRID = 2,
};

/* "fixed", "phi", "grid"; "invalid" for anything else. */
VIGIL_EXPORT const char *vigil_detector_kind_name(enum vigil_detector_kind kind);
/* Parses a kind name; returns -1 if none matches. */
VIGIL_EXPORT int vigil_detector_kind_parse(const char *name);

/*
 * Longest window a phi detector averages its intervals over. The window
 * costs no memory (the history is running moments in the detector state),
 * but beyond 1000 intervals the estimate follows a changed sender too
 * slowly to be of use.
 */
#define VIGIL_PHI_WINDOW_MAX 1000
/* Shortest: a mean and a deviation need two intervals. */
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
    /*
     * The intervals the mean and deviation are averaged over:
     * VIGIL_PHI_WINDOW_MIN..MAX. Kept as running moments, exponentially
     * weighted with 2 / window for the newest interval (the moving
     * average equivalent to a window of that many intervals); the first
     * window / 2 intervals are averaged plainly.
     */
    uint32_t window;
    /*
     * Grid only (min_std_dev is the grid's floor on the arrival jitter too).
     * The monitor sets interval per node from the interval its heartbeats
     * advertise: the grid is the sender's, not a setting.
     */
    vigil_time_t interval; /* the sender's heartbeat interval: the grid step */
    vigil_time_t margin;   /* fixed slack after each expected arrival */
    double loss_floor;     /* the smallest loss rate ever assumed: VIGIL_GRID_LOSS_FLOOR_MIN..MAX */
    uint32_t
        loss_window; /* heartbeats the loss rate is averaged over: VIGIL_GRID_WINDOW_MIN..MAX */
};

/*
 * Bounds of the grid's settings. A floor below 10^-6 would claim a path
 * that loses less than one datagram in a million; above one half, two
 * heartbeats in three could be lost, and detection takes dozens of
 * intervals. The loss window needs a few dozen heartbeats to mean anything
 * and is a float count, exact up to 2^24.
 */
#define VIGIL_GRID_LOSS_FLOOR_MIN 1e-6
#define VIGIL_GRID_LOSS_FLOOR_MAX 0.5
#define VIGIL_GRID_WINDOW_MIN     32
#define VIGIL_GRID_WINDOW_MAX     1000000

/* Fills cfg with the defaults for kind, for heartbeats every interval. */
VIGIL_EXPORT void vigil_detector_config_default(struct vigil_detector_config *cfg,
                                                enum vigil_detector_kind kind,
                                                vigil_time_t interval);

/*
 * Per-node detector state, the whole history included: phi and the fixed
 * detector (when its window is set) keep running moments of the intervals
 * (phi decides on them, the fixed detector reports them as evidence); the
 * grid detector keeps its own running estimates.
 */
struct vigil_detector {
    vigil_time_t last; /* last arrival; VIGIL_TIME_NEVER before the first */
    union {
        struct {
            double sum_us;   /* weighted sum of the intervals, in microseconds */
            double sumsq_us; /* weighted sum of their squares */
            float weight;    /* the sum of the weights: mean = sum_us / weight */
            uint16_t n;      /* intervals learned (the seeds included), saturated at 65535 */
        };
        struct {
            vigil_time_t expect; /* grid: expected arrival of the last heartbeat's slot */
            uint32_t seq;        /* grid: the last sequence number (low 32 bits) */
            float var;           /* grid: arrival jitter variance, ns^2 */
            float lost;          /* grid: decayed count of heartbeats missed */
            float slots;         /* grid: decayed count of heartbeats due */
        };
    };
    uint32_t step_us; /* grid: the interval the state was built with, in us */
    uint8_t grid;     /* 1 when the state holds grid estimates */
    uint8_t learned;  /* grid: heartbeats learned since the grid was last anchored */
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
                                         struct vigil_detector *d, vigil_time_t now, bool learn);

/*
 * Records a heartbeat with its sender's sequence number, which must be newer
 * than the previous one's within the same boot generation. The grid
 * detector places the heartbeat on the sender's grid by it and counts the
 * heartbeats in between as lost; the other kinds ignore it and behave as
 * vigil_detector_arrival. With learn false the grid is re-anchored at this
 * arrival and nothing is learned from it: after a failure, a pause of the
 * monitor, or a new boot generation (whose numbering starts afresh).
 * vigil_detector_arrival is this call with the next sequence number.
 */
VIGIL_EXPORT void vigil_detector_heartbeat(const struct vigil_detector_config *cfg,
                                           struct vigil_detector *d, vigil_time_t now,
                                           uint64_t sequence, bool learn);

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

/*
 * Interval statistics of the history (the running moments' mean and
 * population standard deviation), in nanoseconds (0 when empty). For
 * the grid detector: the grid step and the standard deviation of arrivals
 * around their expected times.
 */
VIGIL_EXPORT void vigil_detector_stats(const struct vigil_detector *d, vigil_time_t *mean,
                                       vigil_time_t *std_dev);

/*
 * The grid detector's evidence: the loss rate it assumes (its estimate,
 * raised to an upper confidence bound and to the floor) and the heartbeats
 * missed in a row by now. 0 for the other kinds and before any arrival.
 */
VIGIL_EXPORT double vigil_detector_loss(const struct vigil_detector_config *cfg,
                                        const struct vigil_detector *d);
VIGIL_EXPORT uint64_t vigil_detector_missed(const struct vigil_detector_config *cfg,
                                            const struct vigil_detector *d, vigil_time_t now);

/* Phi of an interval dt for given mean and standard deviation (all ns). */
VIGIL_EXPORT double vigil_phi(vigil_time_t dt, double mean, double std_dev);

/* Checks a configuration; returns 0 or -VIGIL_EINVAL with *why set. */
VIGIL_EXPORT int vigil_detector_config_check(const struct vigil_detector_config *cfg,
                                             const char **why);

#ifdef __cplusplus
}
#endif

#endif
