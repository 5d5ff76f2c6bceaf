/*
 * The monitor core: a bounded node table, one failure detector per node,
 * the node state machine, scheduled deadlines and the event queue.
 *
 * Pure code, in the manner of ngtcp2: it never reads a clock and never
 * touches a socket. The caller hands it the time and the datagrams, asks
 * when it next needs to be called, calls it then, and drains the events:
 *
 *   vigil_monitor_on_datagram(m, now, bytes, len, &from);   for each datagram
 *   if (now >= vigil_monitor_next_deadline(m)) vigil_monitor_on_expiry(m, now);
 *   while (vigil_monitor_poll_event(m, &ev)) ...;
 *   sleep until vigil_monitor_next_deadline(m)
 *
 * Not thread safe: one thread owns a monitor.
 */
#ifndef VIGIL_MONITOR_H
#define VIGIL_MONITOR_H

#include "common.h"
#include "detector.h"
#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vigil_state {
    VIGIL_STATE_UNKNOWN = 0, /* declared in the config, never heard */
    VIGIL_STATE_ALIVE = 1,
    VIGIL_STATE_SUSPECT = 2,
    VIGIL_STATE_DEAD = 3,
    VIGIL_STATE_LEFT = 4, /* said goodbye */
};

const char *vigil_state_name(enum vigil_state s);
/* Parses a state name; returns -1 if none matches. */
int vigil_state_parse(const char *name);

struct vigil_monitor_config {
    struct vigil_detector_config detector;
    /*
     * The heartbeat interval the detector settings were made for. With
     * adapt_interval, a node that says it sends at another interval is
     * judged with the detector's times scaled to its own interval (phi:
     * first estimate, minimum deviation and acceptable pause; fixed: both
     * timeouts), so that one monitor serves fast and slow senders alike.
     */
    vigil_time_t interval;
    bool adapt_interval;
    /* Consecutive timely heartbeats that bring a dead or left node back to alive. */
    uint32_t rise;
    /* A declared node not heard within this long of its declaration is dead. */
    vigil_time_t startup_grace;
    /* Nodes not declared register themselves on their first valid heartbeat. */
    bool auto_register;
    /* Most nodes the table holds; a heartbeat from a new id beyond it is dropped. */
    uint32_t max_nodes;
    /*
     * If the monitor is called this much later than its own earliest
     * deadline, it was not running (SIGSTOP, a VM pause, starvation): it
     * convicts nobody for heartbeats it failed to read, and gives every
     * monitored node a fresh detection period from now.
     */
    vigil_time_t pause_tolerance;
    /* Cluster key; with has_key, unauthenticated datagrams are dropped. */
    bool has_key;
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    /* Seed of the id hash (random per process, against hash flooding). */
    uint8_t hash_seed[16];
};

/* Largest rise: a hundred heartbeats, recovery well past any flapping. */
#define VIGIL_MONITOR_RISE_MAX 100
/* Largest max_nodes: 16777216, the node table's own limit. */
#define VIGIL_MONITOR_MAX_NODES_MAX (1u << 24)

/* Defaults: phi detector for heartbeats every 1 s, adapted per node; rise 2; auto-register on. */
void vigil_monitor_config_default(struct vigil_monitor_config *cfg);

/* Checks relations between settings; returns 0 or -VIGIL_EINVAL with *why set. */
int vigil_monitor_config_check(const struct vigil_monitor_config *cfg, const char **why);

/* Counters of the monitor's own work. */
struct vigil_monitor_stats {
    uint64_t datagrams;        /* all datagrams handed in */
    uint64_t accepted;         /* heartbeats that refreshed a node */
    uint64_t malformed;        /* failed decoding (truncated, garbled, bad version, ...) */
    uint64_t auth_failed;      /* tag missing or wrong */
    uint64_t stale;            /* old or replayed (generation, sequence) */
    uint64_t unknown_node;     /* from an undeclared id with auto-registration off */
    uint64_t table_full;       /* from a new id with the table full */
    uint64_t events;           /* events produced */
    uint64_t events_lost;      /* events not queued for want of memory */
    uint64_t pauses;           /* times the monitor found it had not run */
    vigil_time_t paused_total; /* their summed length */
};

enum vigil_event_type {
    VIGIL_EVENT_STATE = 1, /* a node changed state */
    VIGIL_EVENT_PAUSE = 2, /* the monitor found it had not run for a while */
};

/*
 * An event. State changes carry their evidence: the numbers that made the
 * decision, so that "why is web3 dead?" has an answer.
 */
struct vigil_event {
    uint64_t seq; /* 1, 2, 3, ... per monitor */
    enum vigil_event_type type;
    vigil_time_t time; /* monotonic time of the decision */
    char node[VIGIL_ID_MAX + 1];
    enum vigil_state old_state, new_state;
    const char *reason;      /* static string: "heartbeat", "timeout", "goodbye", ... */
    vigil_time_t since_last; /* time since the last heartbeat (-1: never heard) */
    double level;            /* detector level at the decision */
    double threshold;        /* the threshold crossed (0 when none) */
    vigil_time_t mean;       /* interval mean and standard deviation */
    vigil_time_t std_dev;
    uint64_t generation;
    uint64_t sequence;
    struct vigil_addr addr;
};

/* A node, as the monitor knows it. Read-only for callers. */
struct vigil_node {
    char id[VIGIL_ID_MAX + 1];
    uint8_t state;    /* enum vigil_state */
    uint8_t declared; /* from the config, not self-registered */
    uint8_t flags;    /* last heartbeat's flags */
    uint8_t n_custom;
    uint8_t skip_learn;   /* the next interval is not learned (after a pause of the monitor) */
    uint32_t rise_count;  /* timely heartbeats towards recovery */
    uint32_t interval_ms; /* the sender's interval */
    uint64_t generation;
    uint64_t sequence;
    uint64_t heartbeats;      /* accepted heartbeats */
    vigil_time_t state_since; /* monotonic time of the last state change */
    vigil_time_t last_heard;  /* monotonic time of the last accepted heartbeat, or -1 */
    vigil_time_t deadline;    /* when the monitor next looks at the node (never later than
                                 its next decision), or VIGIL_TIME_NEVER */
    int64_t send_time_us;     /* sender's wall clock in the last heartbeat */
    struct vigil_status status;
    struct vigil_addr addr;
    struct vigil_detector det;
    struct vigil_custom *custom; /* n_custom pairs, or NULL */
};

/* The monitor itself: opaque. */
struct vigil_monitor;

int vigil_monitor_new(const struct vigil_monitor_config *cfg, vigil_time_t now,
                      struct vigil_monitor **out);
void vigil_monitor_free(struct vigil_monitor *m);

/* Declares a node (from the config): state unknown, dead after startup_grace. */
int vigil_monitor_declare(struct vigil_monitor *m, const char *id, vigil_time_t now);

/*
 * Handles one datagram received at now from from. Returns 0 if it was
 * accepted, or the negative reason it was dropped (each reason is also
 * counted in the stats). Never acts on a datagram that fails verification.
 */
int vigil_monitor_on_datagram(struct vigil_monitor *m, vigil_time_t now, const uint8_t *buf,
                              size_t len, const struct vigil_addr *from);

/* The earliest time the monitor needs to be called, or VIGIL_TIME_NEVER. */
vigil_time_t vigil_monitor_next_deadline(const struct vigil_monitor *m);

/* Makes every decision due at or before now. */
void vigil_monitor_on_expiry(struct vigil_monitor *m, vigil_time_t now);

/* Takes the oldest pending event; false when there is none. */
bool vigil_monitor_poll_event(struct vigil_monitor *m, struct vigil_event *ev);

/* Lookup and iteration; pointers stay valid until the next call that may add a node. */
const struct vigil_node *vigil_monitor_find(const struct vigil_monitor *m, const char *id);
size_t vigil_monitor_node_count(const struct vigil_monitor *m);
const struct vigil_node *vigil_monitor_node_at(const struct vigil_monitor *m, size_t i);

/*
 * The detector settings the node is judged with: the monitor's own, scaled
 * to the node's advertised interval (see adapt_interval). Returns cfg or tmp.
 */
const struct vigil_detector_config *vigil_monitor_node_detector(const struct vigil_monitor *m,
                                                                const struct vigil_node *n,
                                                                struct vigil_detector_config *tmp);

/* The node's detector level now. */
double vigil_monitor_level(const struct vigil_monitor *m, const struct vigil_node *n,
                           vigil_time_t now);
const struct vigil_monitor_config *vigil_monitor_config(const struct vigil_monitor *m);
const struct vigil_monitor_stats *vigil_monitor_stats(const struct vigil_monitor *m);

/* Bytes the monitor has allocated (tables, rings, heap, events). */
size_t vigil_monitor_memory(const struct vigil_monitor *m);

#ifdef __cplusplus
}
#endif

#endif
