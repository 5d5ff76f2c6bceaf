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
 */
double vigil__qos_silence(const struct vigil_detector_config *dc, double mean, double sd,
                          double threshold);

/* Predicts the QoS of dc for a node with history mean and sd (s) on net. */
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
