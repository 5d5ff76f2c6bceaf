/*
 * Quality of service of a detector configuration: the numbers of Chen,
 * Toueg and Aguilera (IEEE TC 2002) predicted from a model of the
 * heartbeat stream. Internal to libvigil and the vigil program (the
 * vigil__qos_ prefix); docs/tuning.md explains the model. Pure functions
 * of their arguments: no clock, no state. All times are in seconds,
 * all rates per second.
 */
#ifndef VIGIL_CORE_QOS_H
#define VIGIL_CORE_QOS_H

#include <vigil/detector.h>

/*
 * The heartbeat stream as the monitor sees it: a sender on a fixed grid of
 * period h, each datagram lost independently with probability loss, and
 * the arrival of the ones that get through moved by a normal jitter of
 * standard deviation jitter (the deviation of one inter-arrival gap, not of
 * one delay).
 */
struct vigil__qos_net {
    double h;      /* heartbeat interval, s (> 0) */
    double jitter; /* standard deviation of an inter-arrival gap, s (>= 0) */
    double loss;   /* probability that a heartbeat is lost, [0, 1) */
};

/* What a configuration is predicted to do on a network. */
struct vigil__qos {
    double suspect_silence;  /* silence since the last heartbeat at which a node is suspect */
    double dead_silence;     /* ... and dead; also the worst-case detection time */
    double detection;        /* E(T_D): mean time from a crash to the dead verdict */
    double suspect_rate;     /* lambda_M = 1 / E(T_MR): false suspicions per second */
    double false_death_rate; /* false dead verdicts per second */
    double recurrence;       /* E(T_MR), s (infinity when no mistake is expected) */
    double mistake_duration; /* E(T_M): how long a false suspicion lasts */
    double accuracy;         /* P_A = 1 - E(T_M) / E(T_MR) */
};

/*
 * The grid detector's side of the model (docs/detection.md): the level
 * after m slots missed is m x -log10(loss_used), so a threshold Phi is
 * reached once k = ceil(Phi / -log10(loss_used)) slots have passed their
 * deadlines, at E + margin + k h (E the expected arrival of the last
 * heartbeat's slot). The detector's own arithmetic gives k and the margin
 * (vigil_detector_crossing on a probe state), so the model cannot drift
 * from it.
 */
struct vigil__qos_grid {
    double loss_used;   /* the loss rate the level is computed with (vigil_detector_loss) */
    double arrival_sd;  /* deviation of arrivals around their slots, s */
    double margin;      /* slack after each slot's expected arrival: margin + 4 sd, s */
    unsigned k_suspect; /* slots missed in a row to be suspect */
    unsigned k_dead;    /* ... and dead */
};

/*
 * The grid's figures for a node's live detector state d (its loss
 * estimate and jitter); a state that holds no grid estimates (never heard)
 * is read as the detector's first one, the prior.
 */
void vigil__qos_grid_from_state(const struct vigil_detector_config *dc,
                                const struct vigil_detector *d, struct vigil__qos_grid *g);

/*
 * The grid's figures once its estimates have settled on a stream with this
 * loss and this deviation of arrivals (s): the loss counts over a whole
 * loss window, with the prior and the confidence bound the detector adds.
 */
void vigil__qos_grid_steady(const struct vigil_detector_config *dc, double loss, double arrival_sd,
                            struct vigil__qos_grid *g);

/*
 * Predicts the QoS of the grid detector g on net (whose jitter is a gap's:
 * one arrival's deviation is jitter / sqrt 2). Verdicts come k h + margin
 * after the last heartbeat's slot; a false one needs the k heartbeats
 * after a received one all lost or later than their deadlines:
 *
 *     P_k = prod over i = 1..k of (p + (1 - p) Q(((k - i) h + margin) / s_a))
 *
 * per gap, about p^k, or p^(k-1) Q(margin / s_a) for the jitter's tail.
 */
void vigil__qos_predict_grid(const struct vigil_detector_config *dc,
                             const struct vigil__qos_grid *g, const struct vigil__qos_net *net,
                             struct vigil__qos *out);

/*
 * The stream that explains measured statistics: the interval mean and
 * standard deviation the detector's history reports (both include the
 * longer gaps of lost heartbeats), the loss when known (negative: not
 * known) and the interval the sender says it keeps (0: not known). Without
 * a known loss it is estimated from the mean (a fixed grid of h has mean
 * h / (1 - loss)); the jitter is what remains of the variance once the
 * variance that loss causes, h^2 loss / (1 - loss)^2, is taken out.
 */
void vigil__qos_net_from_stats(double h, double mean, double sd, double loss,
                               struct vigil__qos_net *net);

/* Mean and standard deviation of the gaps between received heartbeats on net. */
void vigil__qos_gap_moments(const struct vigil__qos_net *net, double *mean, double *sd);

/* P(gap > c): the chance that one gap between received heartbeats outlasts c. */
double vigil__qos_gap_tail(const struct vigil__qos_net *net, double c);

/* E(gap - c | gap > c): how long a gap that outlasts c goes on after c. */
double vigil__qos_overshoot(const struct vigil__qos_net *net, double c);

/* Gaps (received heartbeats) per second: (1 - loss) / h. */
double vigil__qos_gaps_per_s(const struct vigil__qos_net *net);

/*
 * The silence since the last heartbeat at which the detector reaches
 * threshold, for a node whose history has this mean and standard
 * deviation (s). Fixed: the threshold itself. Phi: mean + acceptable
 * pause + y * max(sd, min_std_dev), y = vigil_phi_quantile(threshold).
 * Grid: k h + margin for the estimates it settles at without loss and
 * with arrivals sd / sqrt 2 around their slots (vigil__qos_grid_steady).
 */
double vigil__qos_silence(const struct vigil_detector_config *dc, double mean, double sd,
                          double threshold);

/*
 * Predicts the QoS of dc for a node with history mean and sd (s) on net.
 * The grid detector ignores mean and sd: it is predicted with the
 * estimates it settles at on net (vigil__qos_grid_steady).
 */
void vigil__qos_predict(const struct vigil_detector_config *dc, double mean, double sd,
                        const struct vigil__qos_net *net, struct vigil__qos *out);

/*
 * The shortest silence c with gaps_per_s * P(gap > c) <= rate: the fastest
 * dead verdict that keeps false ones at or under rate per second.
 */
double vigil__qos_min_silence(const struct vigil__qos_net *net, double rate);

/*
 * The information limit of loss alone: the fewest intervals k of silence
 * after which a verdict is wrong with probability at most budget per gap
 * (k consecutive heartbeats all lost has probability loss^k). 1 without
 * loss; 0 when no k is enough (budget <= 0).
 */
unsigned vigil__qos_k(double loss, double budget);

#endif
