/*
 * Predicted quality of service of a detector configuration.
 *
 * Chen, Toueg and Aguilera measure a failure detector by its detection
 * time T_D (from a crash to the verdict), its mistake recurrence time T_MR
 * (between two wrong suspicions; the mistake rate is lambda_M =
 * 1 / E(T_MR)), its mistake duration T_M and its query accuracy P_A =
 * 1 - E(T_M) / E(T_MR). This file predicts them for vigil's detectors.
 *
 * The model. A sender keeps a fixed grid of period h; each heartbeat is
 * lost independently with probability p; the ones that arrive are moved
 * by a normal jitter. So the gap G between two received heartbeats spans m
 * intervals, m >= 1 with P(m) = (1 - p) p^(m - 1), plus a normal error of
 * standard deviation s:
 *
 *     P(G > c) = sum over m of (1 - p) p^(m-1) Q((c - m h) / s),
 *
 * Q the normal upper tail. Both of vigil's detectors reach a threshold at
 * a fixed silence c since the last heartbeat (fixed: the timeout; phi:
 * mean + acceptable pause + y sd, with y the quantile of the threshold),
 * so a gap is a mistake exactly when G > c. There are (1 - p) / h gaps per
 * second, hence
 *
 *     lambda = (1 - p) / h * P(G > c)
 *
 * wrong suspicions (c = the suspect silence) or wrong deaths (c = the dead
 * silence) per second. A wrong suspicion lasts until the late heartbeat
 * comes: E(T_M) = E(G - c | G > c). A crash at a random moment comes
 * h/2 after the last heartbeat sent, and another h p / (1 - p) after the
 * last one received, so E(T_D) = c_dead - h/2 - h p / (1 - p); the worst
 * case, a crash just after a heartbeat arrived, is c_dead.
 *
 * The information limit. Whatever the detector, a silence of k intervals
 * happens by loss alone with probability p^k per gap. A verdict after less
 * than k intervals, with p^k above the budget of false verdicts per gap, is
 * wrong more often than the budget allows: k h is the shortest detection
 * time the network permits (vigil__qos_k).
 *
 * The grid detector counts slots instead of timing a silence: it is dead
 * once k = ceil(Phi / -log10 p_used) slots after the last heartbeat's have
 * passed their deadlines, E + margin + k h, with p_used the loss rate it
 * assumes (its estimate, raised). A false verdict needs the k heartbeats
 * after a received one all lost (p^k per gap) or the last of them later
 * than the margin (p^(k-1) Q(margin / s)); a crash uniformly placed on the
 * grid is dead (k - 1/2) h + margin - h p / (1 - p) later on average, at
 * most k h + margin (vigil__qos_predict_grid).
 *
 * Pure code: no clock, no I/O, no allocation.
 */
#include <math.h>

#include "core/qos.h"

/* Terms of a geometric sum below this weight are dropped (far below any budget). */
#define QOS_WEIGHT_MIN 1e-30
/* A standardised distance beyond which Q is 0 or 1 to double precision. */
#define QOS_Z_FAR 40.0
/* Most terms summed: bounds the loop for loss rates close to 1. */
#define QOS_TERMS_MAX 100000
/* Bisection steps of vigil__qos_min_silence: 2^-100 of the bracket. */
#define QOS_BISECT_STEPS 100

/* The normal upper tail. */
static double q_tail(double z)
{
    return 0.5 * erfc(z / M_SQRT2);
}

void vigil__qos_net_from_stats(double h, double mean, double sd, double loss,
                               struct vigil__qos_net *net)
{
    if (!(mean > 0))
        mean = h;
    if (!(h > 0))
        h = mean;
    if (!(loss >= 0)) {
        /* Unknown: what the mean says (a grid of h has mean h / (1 - p)). */
        loss = h > 0 && mean > h ? 1 - h / mean : 0;
    }
    if (loss >= 1)
        loss = 0.999;
    double var = sd * sd - h * h * loss / ((1 - loss) * (1 - loss));
    net->h = h > 0 ? h : 1;
    net->loss = loss;
    net->jitter = var > 0 ? sqrt(var) : 0;
}

void vigil__qos_gap_moments(const struct vigil__qos_net *net, double *mean, double *sd)
{
    double p = net->loss;
    *mean = net->h / (1 - p);
    *sd = sqrt(net->jitter * net->jitter + net->h * net->h * p / ((1 - p) * (1 - p)));
}

double vigil__qos_gaps_per_s(const struct vigil__qos_net *net)
{
    return (1 - net->loss) / net->h;
}

/*
 * Walks the terms m = 1, 2, ... of the gap mixture: adds each term's
 * P(X_m > c) to *tail and E((X_m - c)+) to *excess, weighted. Once a
 * term's mean lies far beyond c, all later terms are certainly beyond it,
 * and their rest is summed in closed form.
 */
static void mixture(const struct vigil__qos_net *net, double c, double *tail, double *excess)
{
    double p = net->loss, h = net->h, s = net->jitter;
    double w = 1 - p; /* weight of term m */
    double rest = 1;  /* weight of terms m and later: p^(m-1) */
    *tail = 0;
    *excess = 0;
    for (unsigned m = 1; m <= QOS_TERMS_MAX && rest > QOS_WEIGHT_MIN; m++) {
        double mu = m * h;
        if (s > 0 ? (mu - c) / s > QOS_Z_FAR : mu > c) {
            /* Terms m, m+1, ...: all beyond c; E(j | j >= m) = m + p / (1 - p). */
            *tail += rest;
            *excess += rest * (h * (m + p / (1 - p)) - c);
            return;
        }
        if (s > 0) {
            double z = (c - mu) / s;
            double q = q_tail(z);
            double pdf = exp(-0.5 * z * z) / sqrt(2 * M_PI);
            *tail += w * q;
            *excess += w * (s * pdf - (c - mu) * q);
        } else if (mu > c) {
            *tail += w;
            *excess += w * (mu - c);
        }
        if (p <= 0)
            return;
        rest *= p;
        w *= p;
    }
}

double vigil__qos_gap_tail(const struct vigil__qos_net *net, double c)
{
    double tail, excess;
    mixture(net, c, &tail, &excess);
    return tail > 1 ? 1 : tail;
}

double vigil__qos_overshoot(const struct vigil__qos_net *net, double c)
{
    double tail, excess;
    mixture(net, c, &tail, &excess);
    if (tail > 1e-300)
        return excess / tail;
    /* Too far in the tail to sum: the Mills ratio of the first term, s / z. */
    double z = net->jitter > 0 ? (c - net->h) / net->jitter : 0;
    return z > 0 ? net->jitter / z : 0;
}

/* --- the grid detector -------------------------------------------------- */

/*
 * Fills g from a probe copy of a grid state, moved so that the last
 * heartbeat's slot is expected at time 0: the detector's own crossing is
 * then margin + k h, and its own count of missed slots at that time is k.
 */
static void grid_probe(const struct vigil_detector_config *dc, struct vigil_detector *d,
                       struct vigil__qos_grid *g)
{
    double h = (double)(dc->interval > 0 ? dc->interval : 1);
    d->expect = 0;
    d->last = 0;
    g->loss_used = vigil_detector_loss(dc, d);
    g->arrival_sd = d->var > 0 ? sqrt((double)d->var) / 1e9 : 0;
    vigil_time_t ts = vigil_detector_crossing(dc, d, dc->suspect_threshold);
    vigil_time_t td = vigil_detector_crossing(dc, d, dc->dead_threshold);
    uint64_t ks = ts == VIGIL_TIME_NEVER ? 0 : vigil_detector_missed(dc, d, ts);
    uint64_t kd = td == VIGIL_TIME_NEVER ? 0 : vigil_detector_missed(dc, d, td);
    g->k_suspect = ks > UINT32_MAX ? UINT32_MAX : (unsigned)ks;
    g->k_dead = kd > UINT32_MAX ? UINT32_MAX : (unsigned)kd;
    /* The margin: the crossing less its whole slots (k >= 1 for a threshold above 0). */
    g->margin = td == VIGIL_TIME_NEVER ? 0 : ((double)td - (double)kd * h) / 1e9;
    if (g->margin < 0)
        g->margin = 0;
}

/* A fresh grid state, as the detector makes it at a node's first heartbeat. */
static void grid_fresh(const struct vigil_detector_config *dc, struct vigil_detector *d)
{
    vigil_detector_init(d);
    vigil_detector_heartbeat(dc, d, 0, 1, false);
}

void vigil__qos_grid_from_state(const struct vigil_detector_config *dc,
                                const struct vigil_detector *d, struct vigil__qos_grid *g)
{
    struct vigil_detector probe = *d;
    if (!probe.grid || probe.last == VIGIL_TIME_NEVER)
        grid_fresh(dc, &probe);
    grid_probe(dc, &probe, g);
}

void vigil__qos_grid_steady(const struct vigil_detector_config *dc, double loss, double arrival_sd,
                            struct vigil__qos_grid *g)
{
    struct vigil_detector probe;
    grid_fresh(dc, &probe);
    /* Decayed by 1 - 1/W per heartbeat due, the counts settle at W due and W p lost. */
    double w = (double)(dc->loss_window > 0 ? dc->loss_window : 1);
    probe.slots = (float)w;
    probe.lost = (float)(w * (loss > 0 ? loss : 0));
    double var = arrival_sd * 1e9 * arrival_sd * 1e9;
    probe.var = (float)(var > 0 ? var : 0);
    grid_probe(dc, &probe, g);
}

/*
 * The chance, per gap, that the k heartbeats after a received one all fail
 * to arrive before the k-th slot's deadline: slot i is lost, or later than
 * (k - i) h + margin after its expected arrival.
 */
static double grid_fail(const struct vigil__qos_grid *g, double h, double p, double sa, unsigned k)
{
    double prob = 1;
    for (unsigned i = 1; i <= k && prob > 0; i++) {
        double slack = (double)(k - i) * h + g->margin;
        double late = sa > 0 ? q_tail(slack / sa) : (slack > 0 ? 0 : 1);
        prob *= p + (1 - p) * late;
    }
    return k > 0 ? prob : 1;
}

void vigil__qos_predict_grid(const struct vigil_detector_config *dc,
                             const struct vigil__qos_grid *g, const struct vigil__qos_net *net,
                             struct vigil__qos *out)
{
    (void)dc;
    double h = net->h, p = net->loss, mg = g->margin;
    double sa = net->jitter / M_SQRT2;
    double gps = vigil__qos_gaps_per_s(net);
    out->suspect_silence = g->k_suspect * h + mg;
    out->dead_silence = g->k_dead * h + mg;
    /*
     * A crash falls uniformly on the grid, on average h / 2 after the last
     * heartbeat was sent; heartbeats lost just before it (h p / (1 - p) on
     * average) had already been counted as missed.
     */
    out->detection = fmax(0, out->dead_silence - h / 2 - h * p / (1 - p));
    out->suspect_rate = gps * grid_fail(g, h, p, sa, g->k_suspect);
    out->false_death_rate = gps * grid_fail(g, h, p, sa, g->k_dead);
    out->recurrence = out->suspect_rate > 0 ? 1 / out->suspect_rate : INFINITY;
    /*
     * A false suspicion at slot k's deadline ends with the k-th heartbeat if
     * it was only late (after E(d - margin | d > margin), the normal's Mills
     * ratio), or else with the next one that gets through, h / (1 - p)
     * after the k-th slot on average.
     */
    unsigned k = g->k_suspect > 0 ? g->k_suspect : 1;
    double z = sa > 0 ? mg / sa : INFINITY;
    double q = sa > 0 ? q_tail(z) : 0;
    double w_late = pow(p, k - 1) * (1 - p) * q, w_lost = pow(p, k);
    double d_late = 0;
    if (q > 1e-300)
        d_late = fmax(0, sa * exp(-0.5 * z * z) / sqrt(2 * M_PI) / q - mg);
    else if (sa > 0 && z > 0)
        d_late = sa / z;
    double d_lost = fmax(0, h / (1 - p) - mg);
    out->mistake_duration =
        w_late + w_lost > 0 ? (w_late * d_late + w_lost * d_lost) / (w_late + w_lost) : d_lost;
    out->accuracy = fmin(1, fmax(0, 1 - out->suspect_rate * out->mistake_duration));
}

double vigil__qos_silence(const struct vigil_detector_config *dc, double mean, double sd,
                          double threshold)
{
    if (dc->kind == VIGIL_DETECTOR_FIXED)
        return threshold;
    if (dc->kind == VIGIL_DETECTOR_GRID) {
        struct vigil_detector_config one = *dc;
        struct vigil__qos_grid g;
        (void)mean;
        one.dead_threshold = threshold;
        vigil__qos_grid_steady(&one, 0, sd / M_SQRT2, &g);
        return g.k_dead * (double)dc->interval / 1e9 + g.margin;
    }
    double sd2 = fmax(sd, (double)dc->min_std_dev / 1e9);
    return mean + (double)dc->acceptable_pause / 1e9 + vigil_phi_quantile(threshold) * sd2;
}

void vigil__qos_predict(const struct vigil_detector_config *dc, double mean, double sd,
                        const struct vigil__qos_net *net, struct vigil__qos *out)
{
    if (dc->kind == VIGIL_DETECTOR_GRID) {
        struct vigil__qos_grid g;
        (void)mean;
        (void)sd;
        vigil__qos_grid_steady(dc, net->loss, net->jitter / M_SQRT2, &g);
        vigil__qos_predict_grid(dc, &g, net, out);
        return;
    }
    double h = net->h, p = net->loss;
    double gps = vigil__qos_gaps_per_s(net);
    out->suspect_silence = vigil__qos_silence(dc, mean, sd, dc->suspect_threshold);
    out->dead_silence = vigil__qos_silence(dc, mean, sd, dc->dead_threshold);
    out->detection = fmax(0, out->dead_silence - h / 2 - h * p / (1 - p));
    out->suspect_rate = gps * vigil__qos_gap_tail(net, out->suspect_silence);
    out->false_death_rate = gps * vigil__qos_gap_tail(net, out->dead_silence);
    out->recurrence = out->suspect_rate > 0 ? 1 / out->suspect_rate : INFINITY;
    out->mistake_duration = vigil__qos_overshoot(net, out->suspect_silence);
    out->accuracy = fmin(1, fmax(0, 1 - out->suspect_rate * out->mistake_duration));
}

double vigil__qos_min_silence(const struct vigil__qos_net *net, double rate)
{
    double gps = vigil__qos_gaps_per_s(net);
    if (!(rate > 0))
        return INFINITY;
    double lo = 0, hi = net->h;
    /* Bounded: each doubling at least doubles hi; 2^200 h is beyond any use. */
    for (int i = 0; i < 200 && gps * vigil__qos_gap_tail(net, hi) > rate; i++) {
        lo = hi;
        hi *= 2;
    }
    if (gps * vigil__qos_gap_tail(net, hi) > rate)
        return INFINITY;
    for (int i = 0; i < QOS_BISECT_STEPS; i++) {
        double mid = (lo + hi) / 2;
        if (gps * vigil__qos_gap_tail(net, mid) > rate)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

unsigned vigil__qos_k(double loss, double budget)
{
    if (!(budget > 0))
        return 0;
    if (loss <= 0 || budget >= 1)
        return 1;
    double k = ceil(log(budget) / log(loss) - 1e-9);
    if (k < 1)
        return 1;
    return k > 1e9 ? 0 : (unsigned)k;
}
