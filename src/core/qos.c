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

double vigil__qos_silence(const struct vigil_detector_config *dc, double mean, double sd,
                          double threshold)
{
    if (dc->kind == VIGIL_DETECTOR_FIXED)
        return threshold;
    double sd2 = fmax(sd, (double)dc->min_std_dev / 1e9);
    return mean + (double)dc->acceptable_pause / 1e9 + vigil_phi_quantile(threshold) * sd2;
}

void vigil__qos_predict(const struct vigil_detector_config *dc, double mean, double sd,
                        const struct vigil__qos_net *net, struct vigil__qos *out)
{
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
