/*
 * Failure detectors: fixed timeout, phi accrual and the sender's grid.
 *
 * A detector turns "when did we last hear from this node, and how regular
 * has it been?" into a number, the suspicion level, that the monitor
 * compares with its thresholds. Besides the level at a given time, every
 * detector answers the inverse question, "at what time will the level reach
 * this threshold?", so that the monitor can schedule one deadline per node
 * instead of scanning all nodes periodically.
 *
 * The fixed-timeout detector's level is simply the number of seconds since
 * the last arrival. It needs no history.
 *
 * The phi accrual detector (Hayashibara et al., 2004) is computed as the
 * reference implementation (Akka's PhiAccrualFailureDetector) does, except
 * for how the mean and deviation of the intervals are estimated: the
 * reference keeps a ring of the last W intervals and their sum and sum of
 * squares; here the sums are running moments that need no ring (below).
 * They give the mean and the population standard deviation; the standard
 * deviation gets a floor and the mean gets an acceptable pause added; and
 * the probability that a heartbeat is still to come after dt is estimated
 * with the logistic approximation of the normal distribution,
 *
 *     e = exp(-y * (1.5976 + 0.070566 * y^2)),  y = (dt - mean) / sd,
 *     phi = -log10(e / (1 + e)).
 *
 * The reference writes this with two branches that are the same function
 * and only differ in how they round; both equal log10(1 + exp(z)) with
 * z = y * (1.5976 + 0.070566 * y^2). We evaluate that form with the
 * softplus identity, log(1 + exp(z)) = z + log1p(exp(-z)) for z > 0 and
 * log1p(exp(z)) otherwise, which never overflows nor underflows to zero for
 * a finite z: where the reference returns +inf in the far tail, phi here
 * stays finite and keeps growing, and the numbers agree with the reference
 * to rounding everywhere else. Only degenerate arguments (a zero standard
 * deviation, NaN) could still give a non-finite value; such values, and
 * anything larger than PHI_LEVEL_MAX, are reported as PHI_LEVEL_MAX, so
 * that a level can always be printed and compared.
 *
 * The history is three numbers in the detector state: a weighted sum and
 * sum of squares of the intervals (doubles, in whole microseconds) and
 * their total weight. Up to W / 2 intervals (the two seeds included)
 * they are the plain sums of a window that has not filled yet, so a young
 * history is exactly the reference's. From then on they are exponentially
 * weighted with a weight of 2 / W for the newest interval, the moving
 * average equivalent to a window of W: samples about as old on average
 * and an estimated mean about as steady, but nothing to evict, so a node's history costs no memory
 * beyond its detector state, whatever the window (a ring of 32 intervals took 128 bytes per node).
 * Where the two differ, the weighted moments forget an outlier gradually
 * rather than all at once W intervals later (tests/unit/test_detector.c
 * replays traces through both and compares their verdicts).
 *
 * The crossing time of phi is found by inverting the formula: for the
 * threshold, solve log10(1 + exp(z)) = threshold for z, then the cubic
 * 0.070566 y^3 + 1.5976 y - z = 0 for y (one real root, Cardano), and
 * t = last + mean + y * sd. Floating-point rounding can leave that estimate
 * a few nanoseconds off, so it is then refined against the level function
 * itself (a bounded doubling search and a bisection), which makes the
 * answer exact: level(t) >= threshold and level(t - 1) < threshold. The
 * monitor compares levels at its deadlines, so the deadline and the level
 * must agree to the nanosecond.
 *
 * The grid detector (docs/detection.md has the model and how to choose its
 * thresholds) uses what phi ignores: every heartbeat carries a sequence
 * number, and senders keep a fixed grid of absolute deadlines. So the
 * monitor can estimate when each heartbeat is due, as Chen, Toueg and
 * Aguilera's NFD-E does: the expected arrival E of the last heartbeat's
 * slot is an average of A_i - h * s_i plus s * h, kept as a running
 * estimate (a cumulative mean for the first heartbeats after the grid is
 * anchored, then an exponentially weighted one), and the jitter of
 * arrivals around it gives a standard deviation sd. Sequence gaps give the
 * loss rate: of the heartbeats due, the share that never arrived or arrived
 * after their deadline, as exponentially decayed counts with a prior, raised
 * to an upper confidence bound and to a floor (p). Slot i after the last
 * heartbeat is missed once E + i * h + margin has passed, with margin = the
 * fixed margin + GRID_Z * sd, and with m slots missed the level is
 *
 *     m * -log10(p),
 *
 * -log10 of the chance that a live node's m heartbeats were all lost: the
 * same meaning as phi. The level is a step function of time, so its
 * crossing is closed-form and exact: E + margin + k * h with k the least
 * whole number of slots whose level reaches the threshold.
 *
 * A heartbeat that lands more than half an interval away from its predicted
 * slot is put on the nearest slot of the same grid instead (the sender
 * skipped slots while it was stalled, keeping its numbering; or the path's
 * delay changed): the phase is kept, and nothing is learned from it.
 *
 * Pure code: no clock, no I/O, no allocation, no globals.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include <vigil/detector.h>
#include "core/detector_int.h"

/*
 * Coefficients of the logistic approximation of the normal CDF used by the
 * reference implementation (Bowling et al., 2009); the reference values of
 * phi in the tests depend on exactly these.
 */
#define LOGISTIC_A 1.5976
#define LOGISTIC_B 0.070566

/*
 * The largest phi reported. A phi of a million stands for odds of
 * 10^-1000000 that the node is merely late; no one sets a threshold
 * anywhere near it, and it keeps levels finite for printing and JSON.
 */
#define PHI_LEVEL_MAX 1e6

/* Nanoseconds per microsecond: intervals are learned in microseconds. */
#define NSEC_PER_USEC 1000

/*
 * Bound on the doubling steps of the crossing search: 64 doublings of a
 * 1 ns step cover the whole range of a 64-bit time.
 */
#define SEARCH_STEPS_MAX 64

/*
 * The grid detector's fixed choices.
 *
 * GRID_Z: the jitter margin in standard deviations. A heartbeat later than
 * its deadline counts as missed (and is counted in the loss rate, so the
 * model stays honest if the tail is heavier than normal); four deviations
 * keep that rare (3 in 10^5 for normal jitter) for a few milliseconds at
 * 100 ms heartbeats.
 *
 * GRID_GAIN_MAX: the expected arrival and the jitter follow new heartbeats
 * with weight 1/16, as TCP's round-trip estimators do (1/8, 1/4): quick
 * enough to follow a clock-rate difference or a route change within a few
 * seconds at 100 ms, slow enough that one late heartbeat moves little.
 *
 * GRID_PRIOR_LOSS, GRID_PRIOR_SLOTS: before the path has shown its loss
 * rate, assume 10 % on the strength of 50 heartbeats. A new node then needs
 * a few more heartbeats missed before it is suspected (8 instead of 4 with
 * the default dead threshold), and at 100 ms the prior has faded within a
 * minute on a clean path.
 *
 * GRID_UCB_Z: the loss rate used is the estimate plus one standard error, so
 * that a short lucky run does not make the detector overconfident.
 *
 * GRID_LOSS_MAX: past 90 % loss a heartbeat says almost nothing; the cap
 * keeps the level rising (by 0.046 a slot) so that a silent node is still
 * convicted, after about 140 intervals with the default thresholds.
 */
#define GRID_Z           4.0
#define GRID_GAIN_MAX    16
#define GRID_PRIOR_LOSS  0.1
#define GRID_PRIOR_SLOTS 50.0
#define GRID_UCB_Z       1.0
#define GRID_LOSS_MAX    0.9

static const char *const kind_names[] = {"fixed", "phi", "grid"};

const char *vigil_detector_kind_name(enum vigil_detector_kind kind)
{
    if ((unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]))
        return kind_names[kind];
    return "invalid";
}

int vigil_detector_kind_parse(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
        if (!strcmp(name, kind_names[i]))
            return (int)i;
    return -1;
}

void vigil_detector_config_default(struct vigil_detector_config *cfg, enum vigil_detector_kind kind,
                                   vigil_time_t interval)
{
    double interval_s = (double)interval / (double)VIGIL_NSEC_PER_SEC;

    cfg->kind = kind;
    /* The grid's settings, for every kind, so that switching kinds is clean. */
    cfg->interval = interval;
    /*
     * A twentieth of the interval (5 ms at 100 ms) on top of the jitter
     * margin: the sender's own timer and the monitor's scheduling add
     * delays that a quiet path's deviation does not show.
     */
    cfg->margin = interval / 20;
    /*
     * No path is assumed better than 1 % loss: with less, the first few
     * heartbeats lost in a row after a long clean spell would convict.
     * With it, a node is dead after 4 missed heartbeats (default thresholds).
     */
    cfg->loss_floor = 0.01;
    /*
     * The loss rate is averaged over about 1000 heartbeats (100 s at 100 ms):
     * enough for a standard error of 0.7 % at 5 % loss, short enough to
     * follow a path that gets worse within minutes.
     */
    cfg->loss_window = 1000;
    if (kind == VIGIL_DETECTOR_GRID) {
        /*
         * Levels are -log10 of the chance that a live node's missed
         * heartbeats were all lost, so a threshold Phi allows about
         * G * 10^-Phi false alarms over G heartbeats (docs/detection.md).
         * Dead at 6.5: one in 3 million heartbeats, a 10-minute run of
         * 5 nodes at 100 ms with a 1 % chance of any false death; it
         * convicts after 4 missed heartbeats at up to 1 % loss, 6 at 5 %,
         * 10 at 20 %. Suspect at 6: one slot earlier than dead at those
         * rates, and still safe, since a false suspicion is also counted.
         */
        cfg->suspect_threshold = 6.0;
        cfg->dead_threshold = 6.5;
        cfg->first_estimate = interval;
        /*
         * Floor on the jitter's deviation: a two-hundredth of the
         * interval (0.5 ms at 100 ms), so that a perfectly quiet path
         * still gets a margin of a few deviations.
         */
        cfg->min_std_dev = interval / 200;
        cfg->acceptable_pause = 0;
        /* No interval history: the grid's estimates live in the node record. */
        cfg->window = 0;
    } else if (kind == VIGIL_DETECTOR_PHI) {
        /*
         * Phi 3 means odds of about 1 in 1,000 that a node suspected
         * now is merely late: suspicion is cheap (it only holds actions
         * back), so it may come early. Phi 8 is the reference
         * implementation's default for conviction: odds of 1 in 10^8.
         */
        cfg->suspect_threshold = 3.0;
        cfg->dead_threshold = 8.0;
        /* Before any history exists, the sender's interval is the best guess. */
        cfg->first_estimate = interval;
        /*
         * A floor of a tenth of the interval: a perfectly regular sender
         * would otherwise have a deviation near zero, and one late packet
         * would send phi through the roof.
         */
        cfg->min_std_dev = interval / 10;
        /*
         * Three intervals of slack on top of the mean (the reference
         * implementation's 3 s at 1 s heartbeats): phi does not rise until
         * three heartbeats in a row are missing. With only one interval of
         * slack, two lost datagrams in a row convict; at 1 % loss that is a
         * false death per node every few hours (tests/sim shows it), while
         * three intervals keep 300 nodes free of false alarms for hours at
         * 1 % loss and still convict a crashed node within about 5 s.
         */
        cfg->acceptable_pause = 3 * interval;
        /*
         * Averaged over about 32 intervals: a stable mean and deviation
         * that still follow a changed sender within half a minute at one
         * heartbeat a second. The window costs no memory (running moments).
         */
        cfg->window = 32;
    } else {
        /*
         * Suspect after 2.5 intervals without a heartbeat: two lost
         * heartbeats in a row are not yet a suspicion, the half interval
         * absorbs jitter. Dead after 5 intervals: twice the suspicion
         * time, so that a suspicion has time to clear before conviction.
         */
        cfg->suspect_threshold = 2.5 * interval_s;
        cfg->dead_threshold = 5.0 * interval_s;
        /*
         * The fixed detector decides on elapsed time alone; it keeps the
         * same running moments as phi only to report interval statistics
         * as evidence with its events.
         */
        cfg->first_estimate = 0;
        cfg->min_std_dev = 0;
        cfg->acceptable_pause = 0;
        cfg->window = 32;
    }
}

int vigil_detector_config_check(const struct vigil_detector_config *cfg, const char **why)
{
    const char *reason = NULL;

    if (cfg == NULL)
        reason = "no detector configuration";
    else if (cfg->kind != VIGIL_DETECTOR_FIXED && cfg->kind != VIGIL_DETECTOR_PHI &&
             cfg->kind != VIGIL_DETECTOR_GRID)
        reason = "unknown detector kind";
    else if (!(cfg->suspect_threshold > 0) || !(cfg->dead_threshold > 0))
        reason = "detector thresholds must be greater than 0";
    else if (!isfinite(cfg->suspect_threshold) || !isfinite(cfg->dead_threshold))
        reason = "detector thresholds must be finite";
    else if (cfg->suspect_threshold > cfg->dead_threshold)
        reason = "the suspect threshold must not exceed the dead threshold";
    else if (cfg->window > VIGIL_PHI_WINDOW_MAX)
        reason = "the history window must hold at most 1000 intervals";
    else if (cfg->kind == VIGIL_DETECTOR_PHI) {
        if (cfg->dead_threshold > PHI_LEVEL_MAX)
            reason = "phi thresholds above 1000000 can never be reached";
        else if (cfg->window < VIGIL_PHI_WINDOW_MIN || cfg->window > VIGIL_PHI_WINDOW_MAX)
            reason = "the phi window must hold 2 to 1000 intervals";
        else if (cfg->first_estimate <= 0)
            reason = "the phi first estimate must be greater than 0";
        else if (cfg->min_std_dev <= 0)
            reason = "the phi minimum standard deviation must be greater than 0";
        else if (cfg->acceptable_pause < 0)
            reason = "the phi acceptable pause must not be negative";
    } else if (cfg->kind == VIGIL_DETECTOR_GRID) {
        if (cfg->dead_threshold > PHI_LEVEL_MAX)
            reason = "grid thresholds above 1000000 can never be reached";
        else if (cfg->interval <= 0)
            reason = "the grid interval must be greater than 0";
        else if (cfg->min_std_dev <= 0)
            reason = "the grid minimum standard deviation must be greater than 0";
        else if (cfg->margin < 0)
            reason = "the grid margin must not be negative";
        else if (!(cfg->loss_floor >= VIGIL_GRID_LOSS_FLOOR_MIN &&
                   cfg->loss_floor <= VIGIL_GRID_LOSS_FLOOR_MAX))
            reason = "the grid loss floor must be between 0.000001 and 0.5";
        else if (cfg->loss_window < VIGIL_GRID_WINDOW_MIN ||
                 cfg->loss_window > VIGIL_GRID_WINDOW_MAX)
            reason = "the grid loss window must be 32 to 1000000 heartbeats";
    }
    if (reason == NULL)
        return 0;
    if (why != NULL)
        *why = reason;
    return -VIGIL_EINVAL;
}

void vigil_detector_init(struct vigil_detector *d)
{
    memset(d, 0, sizeof(*d));
    d->last = VIGIL_TIME_NEVER;
}

/*
 * Time from last to now, never negative (a time before the last arrival
 * counts as 0) and saturated rather than overflowing for extreme times.
 */
static vigil_time_t since(vigil_time_t now, vigil_time_t last)
{
    uint64_t diff;

    if (now <= last)
        return 0;
    diff = (uint64_t)now - (uint64_t)last;
    return diff > (uint64_t)INT64_MAX ? INT64_MAX : (vigil_time_t)diff;
}

/* An interval in nanoseconds as whole microseconds: rounded, saturated. */
static uint32_t interval_to_us(vigil_time_t ns)
{
    if (ns <= 0)
        return 0;
    if (ns / NSEC_PER_USEC >= (vigil_time_t)UINT32_MAX)
        return UINT32_MAX;
    return (uint32_t)((ns + NSEC_PER_USEC / 2) / NSEC_PER_USEC);
}

static void moments_reset(struct vigil_detector *d)
{
    d->sum_us = 0;
    d->sumsq_us = 0;
    d->weight = 0;
    d->n = 0;
}

/*
 * The weight the running moments settle at for a window of W intervals:
 * W / 2, so that the newest interval weighs 2 / W. That is the exponential
 * moving average equivalent to a window of W: its samples are as old on
 * average (W / 2 - 1 intervals, against (W - 1) / 2 in the window) and its
 * estimate of the mean is as steady (a variance of sigma^2 / (W - 1),
 * against sigma^2 / W). At least 2, so that the two seeds always weigh the
 * same. Exact in a float: a whole or a half number up to 500.
 */
static double moments_cap(uint32_t window)
{
    double cap = (double)window / 2;
    return cap > 2 ? cap : 2;
}

/*
 * Adds one interval to the running moments. Until their weight reaches
 * the cap, the sums are plain sums with weight 1 per interval, exactly
 * those of a window that has not filled yet (the reference's ring before
 * its first eviction). From then on each new interval first scales the
 * sums down so that their total weight stays at the cap: an exponentially
 * weighted mean and variance whose weights decay by 1 - 2 / W per
 * interval. Nothing is ever evicted, so the sums are all there is to keep;
 * and since old terms are scaled down rather than subtracted, rounding
 * errors fade with them instead of accumulating.
 */
static void moments_push(struct vigil_detector *d, uint32_t window, uint32_t us)
{
    double v = (double)us, cap = moments_cap(window), w = (double)d->weight;

    if (w + 1 > cap) {
        double scale = w > 0 ? (cap - 1) / w : 0;
        d->sum_us *= scale;
        d->sumsq_us *= scale;
        w = cap;
    } else {
        w += 1;
    }
    d->sum_us += v;
    d->sumsq_us += v * v;
    d->weight = (float)w;
    if (d->n < UINT16_MAX)
        d->n++;
}

/* --- the grid detector ------------------------------------------------ */

/* The grid step: the sender's interval (never 0, so that it can divide). */
static vigil_time_t grid_step(const struct vigil_detector_config *cfg)
{
    return cfg->interval > 0 ? cfg->interval : 1;
}

/* a / b rounded towards minus infinity, for b > 0. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && a < 0)
        q--;
    return q;
}

/*
 * The loss rate the level is computed with: the decayed share of missed
 * heartbeats with the prior mixed in, plus GRID_UCB_Z standard errors,
 * then clamped to [loss_floor, GRID_LOSS_MAX].
 */
static double grid_loss(const struct vigil_detector_config *cfg, const struct vigil_detector *d)
{
    double lost = d->grid ? (double)d->lost : 0, slots = d->grid ? (double)d->slots : 0;
    double n = slots + GRID_PRIOR_SLOTS;
    double p = (lost + GRID_PRIOR_LOSS * GRID_PRIOR_SLOTS) / n;

    /* Corrupt counts (NaN, negative) are read as the worst case. */
    if (!(p >= 0) || p > 1)
        p = GRID_LOSS_MAX;
    p += GRID_UCB_Z * sqrt(p * (1 - p) / n);
    if (!(p >= cfg->loss_floor))
        p = cfg->loss_floor;
    if (p > GRID_LOSS_MAX)
        p = GRID_LOSS_MAX;
    return p;
}

/* The margin after each expected arrival: fixed + GRID_Z deviations, in ns. */
static vigil_time_t grid_margin(const struct vigil_detector_config *cfg,
                                const struct vigil_detector *d)
{
    double sd = d->grid ? sqrt((double)d->var) : 0;
    double mg;

    if (!(sd >= (double)cfg->min_std_dev))
        sd = (double)cfg->min_std_dev;
    mg = (double)(cfg->margin > 0 ? cfg->margin : 0) + ceil(GRID_Z * sd);
    /* An interval of an hour gives margins of minutes; 2^61 ns is 73 years. */
    if (!(mg < 0x1p61))
        mg = 0x1p61;
    return (vigil_time_t)mg;
}

/* Starts grid estimates: no loss seen yet (the prior speaks), jitter a twentieth of h. */
static void grid_init(const struct vigil_detector_config *cfg, struct vigil_detector *d)
{
    double sd0 = fmax((double)grid_step(cfg) / 20, (double)cfg->min_std_dev);

    d->grid = 1;
    d->lost = 0;
    d->slots = 0;
    d->var = (float)(sd0 * sd0);
    d->learned = 0;
}

/*
 * Anchors the grid at this arrival: its slot is expected now. The loss
 * counts and the jitter are kept (they describe the path, not this run of
 * heartbeats); the expected arrival is learned afresh.
 */
static void grid_anchor(const struct vigil_detector_config *cfg, struct vigil_detector *d,
                        vigil_time_t now, uint64_t sequence)
{
    if (!d->grid)
        grid_init(cfg, d);
    d->expect = now;
    d->seq = (uint32_t)sequence;
    d->learned = 0;
    d->last = now;
}

static void grid_arrival(const struct vigil_detector_config *cfg, struct vigil_detector *d,
                         vigil_time_t now, uint64_t sequence, bool learn)
{
    vigil_time_t h = grid_step(cfg), pred, r, mg;
    uint64_t h_us = (uint64_t)h / NSEC_PER_USEC;
    uint32_t g = (uint32_t)sequence - d->seq; /* heartbeats since the last, modulo 2^32 */
    int64_t j;
    double lam, f, rc;
    unsigned w;

    d->step_us = h_us > UINT32_MAX ? UINT32_MAX : (uint32_t)h_us;
    /*
     * Anchor instead of learning: on request, on the first arrival, and
     * when the number is not newer (a new numbering) or so far ahead that
     * the predicted slot would leave the range of time.
     */
    if (!learn || !d->grid || d->last == VIGIL_TIME_NEVER || g == 0 || g > UINT32_MAX / 2 ||
        (double)g * (double)h > 0x1p61 || d->expect > INT64_MAX - (int64_t)g * h ||
        d->expect < -(INT64_C(1) << 62) || now > (INT64_C(1) << 62) || now < -(INT64_C(1) << 62)) {
        grid_anchor(cfg, d, now, sequence);
        return;
    }
    pred = d->expect + (vigil_time_t)g * h;
    if (pred > (INT64_C(1) << 62)) {
        grid_anchor(cfg, d, now, sequence);
        return;
    }
    r = now - pred;
    /* The nearest slot of the grid; 0 when the heartbeat is where it belongs. */
    j = floor_div(r + h / 2, h);
    if (j != 0) {
        /*
         * More than half an interval off: the sender skipped slots (it was
         * stalled and keeps its numbering), or the path's delay jumped. Keep
         * the phase, move to the nearest slot, learn and count nothing.
         */
        d->expect = pred + j * h;
        d->seq = (uint32_t)sequence;
        d->last = now;
        return;
    }
    mg = grid_margin(cfg, d);
    /*
     * Loss counts, decayed by one factor per heartbeat due: the g - 1
     * heartbeats that never came, and this one if it came after its
     * deadline (from the level's point of view it was missed).
     */
    lam = 1.0 - 1.0 / (double)(cfg->loss_window >= 1 ? cfg->loss_window : 1);
    f = g == 1 ? lam : pow(lam, (double)g);
    d->slots = (float)((double)d->slots * f + (double)g);
    d->lost = (float)((double)d->lost * f + (double)(g - 1) + (r > mg ? 1.0 : 0.0));
    /*
     * The expected arrival follows the residual, clipped to the margin so
     * that one straggler moves it little while a real shift still gets
     * through in a few heartbeats: a cumulative mean just after anchoring
     * (the anchor counts as one sample), then weight 1/GRID_GAIN_MAX. The
     * jitter learns from the second heartbeat after anchoring on, when the
     * expected arrival rests on more than one sample.
     */
    rc = (double)r;
    if (rc > (double)mg)
        rc = (double)mg;
    if (rc < -(double)mg)
        rc = -(double)mg;
    w = d->learned + 2u;
    if (w > GRID_GAIN_MAX)
        w = GRID_GAIN_MAX;
    d->expect = pred + (vigil_time_t)llround(rc / w);
    if (d->learned > 0)
        d->var = (float)((double)d->var + (rc * rc - (double)d->var) / GRID_GAIN_MAX);
    if (d->learned < UINT8_MAX)
        d->learned++;
    d->seq = (uint32_t)sequence;
    d->last = now;
}

/* --- arrivals ----------------------------------------------------------- */

void vigil_detector_heartbeat(const struct vigil_detector_config *cfg, struct vigil_detector *d,
                              vigil_time_t now, uint64_t sequence, bool learn)
{
    if (cfg->kind == VIGIL_DETECTOR_GRID)
        grid_arrival(cfg, d, now, sequence, learn);
    else
        vigil_detector_arrival(cfg, d, now, learn);
}

void vigil_detector_arrival(const struct vigil_detector_config *cfg, struct vigil_detector *d,
                            vigil_time_t now, bool learn)
{
    /* Both detectors keep moments when they have a window; only phi seeds and uses them. */
    bool hist = cfg->window >= VIGIL_PHI_WINDOW_MIN && cfg->window <= VIGIL_PHI_WINDOW_MAX;
    bool phi = cfg->kind == VIGIL_DETECTOR_PHI && hist;

    if (cfg->kind == VIGIL_DETECTOR_GRID) {
        /* Without a sequence number: the next one. */
        grid_arrival(cfg, d, now, (uint64_t)d->seq + 1u, learn);
        return;
    }
    if (d->grid) {
        /* Grid estimates under another kind: start that kind's history afresh. */
        vigil_time_t last = d->last;
        vigil_detector_init(d);
        d->last = last;
    }

    if (d->last == VIGIL_TIME_NEVER) {
        if (phi) {
            /*
             * Seed the history with two intervals a quarter either side of
             * the expected one, as the reference does: mean first_estimate
             * and a deviation of a quarter of it, so that phi is usable from
             * the second heartbeat on. The learn flag does not apply: there
             * is no interval yet to learn or to skip.
             */
            vigil_time_t fe = cfg->first_estimate;
            vigil_time_t hi = fe > INT64_MAX - fe / 4 ? INT64_MAX : fe + fe / 4;
            moments_reset(d);
            moments_push(d, cfg->window, interval_to_us(fe - fe / 4));
            moments_push(d, cfg->window, interval_to_us(hi));
        }
    } else if (hist && learn) {
        moments_push(d, cfg->window, interval_to_us(since(now, d->last)));
    }
    d->last = now;
}

void vigil_detector_rebase(struct vigil_detector *d, vigil_time_t now)
{
    d->last = now;
    /* The grid's next slot is a whole interval away, as after an arrival now. */
    if (d->grid) {
        d->expect = now;
        d->learned = 0;
    }
}

/* Mean and population standard deviation of the history, in nanoseconds. */
static void moments_ns(const struct vigil_detector *d, double *mean, double *sd)
{
    double m, var;

    if (d->grid) {
        /* The grid: its step, and the jitter of arrivals around their slots. */
        *mean = (double)d->step_us * NSEC_PER_USEC;
        *sd = d->var > 0 ? sqrt((double)d->var) : 0;
        return;
    }
    if (!(d->weight > 0)) {
        *mean = 0;
        *sd = 0;
        return;
    }
    m = d->sum_us / (double)d->weight;
    var = d->sumsq_us / (double)d->weight - m * m;
    /* Rounding can push the variance of near-equal samples just below 0. */
    if (var < 0)
        var = 0;
    *mean = m * NSEC_PER_USEC;
    *sd = sqrt(var) * NSEC_PER_USEC;
}

void vigil_detector_stats(const struct vigil_detector *d, vigil_time_t *mean, vigil_time_t *std_dev)
{
    double m, sd;

    moments_ns(d, &m, &sd);
    if (mean != NULL)
        *mean = (vigil_time_t)llround(m);
    if (std_dev != NULL)
        *std_dev = (vigil_time_t)llround(sd);
}

/* log(1 + exp(z)) without overflow or underflow to 0 for finite z. */
static double softplus(double z)
{
    if (z > 0)
        return z + log1p(exp(-z));
    return log1p(exp(z));
}

/* The inverse of softplus: the z with log(1 + exp(z)) = s, for s > 0. */
static double softplus_inv(double s)
{
    /* Above 1, exp(-s) is small and log1p keeps it exact; below, expm1 does. */
    if (s > 1)
        return s + log1p(-exp(-s));
    return log(expm1(s));
}

/* Phi of dt (ns) for an adjusted mean and standard deviation (ns). */
static double phi_of(double dt, double mean, double sd)
{
    double y, z, phi;

    /* A zero (or NaN) deviation would divide by zero: use the smallest one. */
    if (!(sd > 0))
        sd = DBL_MIN;
    y = (dt - mean) / sd;
    z = y * (LOGISTIC_A + LOGISTIC_B * y * y);
    phi = softplus(z) / M_LN10;
    /* Also maps NaN (from NaN arguments) to the maximum: suspicious input. */
    if (!(phi <= PHI_LEVEL_MAX))
        return PHI_LEVEL_MAX;
    return phi;
}

double vigil_phi(vigil_time_t dt, double mean, double std_dev)
{
    return phi_of((double)dt, mean, std_dev);
}

/*
 * Everything the level at a time depends on, computed once: the kind, the
 * reference point and, for phi, the adjusted mean and deviation.
 */
struct level_params {
    bool phi;
    bool grid;
    vigil_time_t last;
    double mean;       /* mean + acceptable pause, ns */
    double sd;         /* max(sd, min_std_dev), ns */
    vigil_time_t base; /* grid: expected arrival of the last slot + margin */
    vigil_time_t step; /* grid: the interval */
    double per_slot;   /* grid: -log10 of the loss rate, the level a missed slot adds */
};

static void level_params(const struct vigil_detector_config *cfg, const struct vigil_detector *d,
                         struct level_params *p)
{
    double mean, sd;

    p->phi = cfg->kind == VIGIL_DETECTOR_PHI;
    p->grid = cfg->kind == VIGIL_DETECTOR_GRID;
    p->last = d->last;
    p->mean = 0;
    p->sd = 0;
    p->base = 0;
    p->step = 1;
    p->per_slot = 0;
    if (p->grid) {
        p->step = grid_step(cfg);
        p->per_slot = -log10(grid_loss(cfg, d));
        /* Never heard, or a state of another kind: no slot is known. */
        if (!d->grid)
            p->last = VIGIL_TIME_NEVER;
        else
            p->base = d->expect + grid_margin(cfg, d);
        return;
    }
    if (p->phi) {
        moments_ns(d, &mean, &sd);
        p->mean = mean + (double)cfg->acceptable_pause;
        p->sd = fmax(sd, (double)cfg->min_std_dev);
    }
}

/* Grid slots after the last heartbeat whose deadline (base + i * step) is at or before now. */
static uint64_t slots_missed(const struct level_params *p, vigil_time_t now)
{
    if (p->last == VIGIL_TIME_NEVER || now < p->last || now < p->base)
        return 0;
    return ((uint64_t)now - (uint64_t)p->base) / (uint64_t)p->step;
}

static double level_at(const struct level_params *p, vigil_time_t now)
{
    vigil_time_t dt;

    if (p->last == VIGIL_TIME_NEVER)
        return 0;
    if (p->grid) {
        double level = (double)slots_missed(p, now) * p->per_slot;
        return level < PHI_LEVEL_MAX ? level : PHI_LEVEL_MAX;
    }
    dt = since(now, p->last);
    if (p->phi)
        return phi_of((double)dt, p->mean, p->sd);
    return (double)dt / (double)VIGIL_NSEC_PER_SEC;
}

double vigil_detector_level(const struct vigil_detector_config *cfg, const struct vigil_detector *d,
                            vigil_time_t now)
{
    struct level_params p;

    level_params(cfg, d, &p);
    return level_at(&p, now);
}

/*
 * The estimated offset from last (ns) at which phi reaches threshold: the
 * inverse of phi = softplus(z) / ln 10, then the real root of the
 * depressed cubic y^3 + P y + Q = 0 with P = A / B > 0 (so exactly one real
 * root) and Q = -z / B, by Cardano's formula in the form that avoids
 * subtracting two large cube roots, then one Newton step to polish.
 */
double vigil_phi_quantile(double threshold)
{
    double z = softplus_inv(threshold * M_LN10);
    double pp = LOGISTIC_A / LOGISTIC_B;
    double hq = fabs(z) / (2 * LOGISTIC_B); /* |Q| / 2 */
    double u = cbrt(hq + sqrt(hq * hq + pp * pp * pp / 27));
    double y = u - pp / (3 * u);

    if (z < 0)
        y = -y;
    y -= (LOGISTIC_B * y * y * y + LOGISTIC_A * y - z) / (3 * LOGISTIC_B * y * y + LOGISTIC_A);
    return y;
}

static double phi_offset(const struct level_params *p, double threshold)
{
    return p->mean + vigil_phi_quantile(threshold) * p->sd;
}

/*
 * The grid's crossing, closed-form: the deadline of the k-th slot, with k
 * the least whole number of slots with k * per_slot >= threshold. k is
 * computed by division and then checked with the very expression level_at
 * uses, so that the level and the deadline agree exactly. The level at
 * the last arrival is known to be below the threshold.
 */
static vigil_time_t grid_crossing(const struct level_params *p, double threshold)
{
    double kd;
    uint64_t k;

    if (threshold > PHI_LEVEL_MAX || !(p->per_slot > 0))
        return VIGIL_TIME_NEVER;
    kd = ceil(threshold / p->per_slot);
    if (kd < 1)
        kd = 1;
    /* Beyond 2^62 ns after the base a crossing is as good as never. */
    if (!(kd * (double)p->step < 0x1p62))
        return VIGIL_TIME_NEVER;
    k = (uint64_t)kd;
    while ((double)k * p->per_slot < threshold)
        k++;
    while (k > 1 && (double)(k - 1) * p->per_slot >= threshold)
        k--;
    if (p->base > INT64_MAX - (int64_t)(k * (uint64_t)p->step) - 1)
        return VIGIL_TIME_NEVER;
    return p->base + (vigil_time_t)(k * (uint64_t)p->step);
}

vigil_time_t vigil_detector_crossing(const struct vigil_detector_config *cfg,
                                     const struct vigil_detector *d, double threshold)
{
    return vigil__detector_crossing_q(cfg, d, threshold, NAN);
}

vigil_time_t vigil__detector_crossing_q(const struct vigil_detector_config *cfg,
                                        const struct vigil_detector *d, double threshold,
                                        double quantile)
{
    struct level_params p;
    double offset;
    vigil_time_t lo, hi, off, step;
    int i;

    if (d->last == VIGIL_TIME_NEVER || isnan(threshold))
        return VIGIL_TIME_NEVER;
    level_params(cfg, d, &p);
    if (p.last == VIGIL_TIME_NEVER)
        return VIGIL_TIME_NEVER;
    /* Already there at the last arrival: that is the earliest time. */
    if (level_at(&p, d->last) >= threshold)
        return d->last;
    if (p.grid)
        return grid_crossing(&p, threshold);
    if (p.phi) {
        if (threshold > PHI_LEVEL_MAX)
            return VIGIL_TIME_NEVER;
        offset = isnan(quantile) ? phi_offset(&p, threshold) : p.mean + quantile * p.sd;
    } else {
        offset = ceil(threshold * (double)VIGIL_NSEC_PER_SEC);
    }
    /*
     * Beyond 2^62 ns (146 years) after the last arrival a crossing is as
     * good as never, and staying below it keeps the arithmetic in range.
     */
    if (!(offset < 0x1p62))
        return VIGIL_TIME_NEVER;
    off = offset > 1 ? (vigil_time_t)ceil(offset) : 1;
    if (d->last > INT64_MAX - 1 - off)
        return VIGIL_TIME_NEVER;

    /*
     * Refine the estimate against level_at itself: find lo < hi with
     * level(lo) < threshold <= level(hi) by doubling steps away from the
     * estimate, then bisect down to hi = lo + 1. The level is monotonic in
     * time, so hi is then the earliest time at or above the threshold.
     * level(last) < threshold is known, so last is always a valid lo.
     */
    lo = d->last;
    hi = d->last + off;
    step = 1;
    if (level_at(&p, hi) >= threshold) {
        for (i = 0; i < SEARCH_STEPS_MAX && (uint64_t)hi - (uint64_t)lo > (uint64_t)step; i++) {
            if (level_at(&p, hi - step) < threshold) {
                lo = hi - step;
                break;
            }
            hi -= step;
            if (step > INT64_MAX / 2)
                break;
            step *= 2;
        }
    } else {
        lo = hi;
        hi = VIGIL_TIME_NEVER;
        for (i = 0; i < SEARCH_STEPS_MAX && lo <= INT64_MAX - 1 - step; i++) {
            if (level_at(&p, lo + step) >= threshold) {
                hi = lo + step;
                break;
            }
            lo += step;
            if (step > INT64_MAX / 2)
                break;
            step *= 2;
        }
        if (hi == VIGIL_TIME_NEVER)
            return VIGIL_TIME_NEVER;
    }
    /* At most 64 halvings: the bracket is at most 2^64 ns wide. */
    for (i = 0; i < SEARCH_STEPS_MAX && (uint64_t)hi - (uint64_t)lo > 1; i++) {
        vigil_time_t mid = lo + (vigil_time_t)(((uint64_t)hi - (uint64_t)lo) / 2);
        if (level_at(&p, mid) >= threshold)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

vigil_time_t vigil_detector_crossing_estimate(const struct vigil_detector_config *cfg,
                                              const struct vigil_detector *d, double threshold,
                                              double quantile)
{
    struct level_params p;
    double offset;

    if (d->last == VIGIL_TIME_NEVER || !(threshold > 0) || threshold > PHI_LEVEL_MAX)
        return VIGIL_TIME_NEVER;
    /* The grid's crossing is closed-form already: exact and cheap. */
    if (cfg->kind == VIGIL_DETECTOR_GRID)
        return vigil_detector_crossing(cfg, d, threshold);
    level_params(cfg, d, &p);
    offset = p.phi ? p.mean + quantile * p.sd : threshold * (double)VIGIL_NSEC_PER_SEC;
    if (!(offset < 0x1p62) || d->last > INT64_MAX - (vigil_time_t)0x1p62)
        return VIGIL_TIME_NEVER;
    return d->last + (offset > 0 ? (vigil_time_t)offset : 0);
}

double vigil_detector_loss(const struct vigil_detector_config *cfg, const struct vigil_detector *d)
{
    if (cfg->kind != VIGIL_DETECTOR_GRID || !d->grid || d->last == VIGIL_TIME_NEVER)
        return 0;
    return grid_loss(cfg, d);
}

uint64_t vigil_detector_missed(const struct vigil_detector_config *cfg,
                               const struct vigil_detector *d, vigil_time_t now)
{
    struct level_params p;

    if (cfg->kind != VIGIL_DETECTOR_GRID)
        return 0;
    level_params(cfg, d, &p);
    return slots_missed(&p, now);
}
