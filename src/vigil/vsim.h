/*
 * The simulator behind `vigil sim`: the real monitor core (vigil_monitor_*)
 * fed by simulated agents over a modelled network, in virtual time. No
 * clock, no socket: the same seed gives the same run on every machine.
 * See vsim.c for the model and docs/tuning.md for its use.
 */
#ifndef VIGIL_VSIM_H
#define VIGIL_VSIM_H

#include <vigil/vigil.h>

/* Most simulated nodes: a run keeps a few dozen bytes per node besides the core. */
#define VSIM_NODES_MAX 100000

struct vsim_params {
    struct vigil_monitor_config mon; /* the monitor's settings (mon.interval included) */
    vigil_time_t interval;           /* the agents' heartbeat interval */
    uint32_t nodes;
    vigil_time_t duration;
    double loss;              /* probability that a datagram is lost */
    vigil_time_t delay;       /* fixed part of the one-way delay */
    vigil_time_t jitter;      /* mean of the exponential part of the delay (also its deviation) */
    double spike_p;           /* probability that a datagram is held up by a spike */
    vigil_time_t spike;       /* the extra delay of a spike */
    uint32_t crashes;         /* nodes that crash during the run */
    vigil_time_t pause;       /* the monitor stops for this long ... */
    vigil_time_t pause_every; /* ... every this long (0: never) */
    uint64_t seed;
};

/* Fills the defaults: 100 nodes for an hour, 0.2 ms of delay, nothing else. */
void vsim_params_default(struct vsim_params *p);

struct vsim_result {
    uint64_t sent, delivered;
    uint32_t crashed;    /* nodes that crashed */
    uint32_t undetected; /* crashed nodes not declared dead by the end */
    /* Detection times (crash to dead verdict), sorted: n_detect of them. */
    vigil_time_t *detect;
    uint32_t n_detect;
    uint64_t false_suspicions; /* suspect verdicts on nodes that had not crashed */
    uint64_t false_deaths;     /* dead verdicts on nodes that had not crashed */
    uint64_t core_mistakes;    /* the core's own count (vigil_monitor_node_qos), summed */
    uint64_t core_false_deaths;
    uint64_t pauses;   /* pauses the monitor reported */
    double node_hours; /* time nodes were up and monitored, summed */
};

/* Runs a simulation. Returns 0, or -1 with err set (cap bytes). Free r with vsim_result_free. */
int vsim_run(const struct vsim_params *p, struct vsim_result *r, char *err, size_t cap);
void vsim_result_free(struct vsim_result *r);

/* The q-quantile (0..1) of the sorted detection times; -1 when there are none. */
vigil_time_t vsim_quantile(const struct vsim_result *r, double q);

/*
 * The standard deviation of one inter-arrival gap on the network of p
 * (two independent delays: exponential jitter and spikes): what the QoS
 * model calls the jitter.
 */
double vsim_gap_jitter(const struct vsim_params *p);

#endif
