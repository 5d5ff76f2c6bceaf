/*
 * Health checks: polls of services (TCP, HTTP(S), a command) on the loop,
 * with HAProxy's scheduling (rise, fall, fastinter, downinter) and
 * Consul's statuses (passing, warning, critical). The monitor runs them
 * against its nodes (monitor.checks); the agent runs them against its own
 * host (agent.checks) and reports them in its heartbeats. docs/checks.md
 * has the model.
 *
 * No thread and no process per check: every check is a timer on the loop,
 * and each run is one non-blocking exchange, one request on the shared
 * libcurl multi handle, or one child process. First runs are spread over
 * the interval (a hash of the node and the name), so that checks do not
 * fire together.
 */
#ifndef VIGIL_CHECKS_H
#define VIGIL_CHECKS_H

#include "config.h"
#include "io/vio.h"

/* A check's status; the values are the states events use for it (VIGIL_EVENT_CHECK). */
enum check_status {
    CHECK_UNKNOWN = VIGIL_STATE_UNKNOWN, /* not checked yet */
    CHECK_PASSING = VIGIL_STATE_ALIVE,
    CHECK_WARNING = VIGIL_STATE_SUSPECT,
    CHECK_CRITICAL = VIGIL_STATE_DEAD,
};

const char *check_status_name(enum check_status s);
/* Parses a status name (or the state names alive, suspect, dead); -1 if none. */
int check_status_parse(const char *s);

/* One run's result. */
struct check_result {
    enum check_status status;
    vigil_time_t latency;                    /* how long the run took */
    int64_t code;                            /* HTTP status, exit status (128 + signal), or 0 */
    char detail[VIGIL_EVENT_DETAIL_MAX + 1]; /* what went wrong, or an excerpt of the answer */
};

/* A check as it stands, for the API, the status and the metrics. */
struct check_info {
    const struct vcfg_check *cfg;
    const char *node; /* the node it is of ("" in the agent) */
    const char *name; /* interned: outlives the check set */
    enum check_status status;
    vigil_time_t since;                        /* when the status last changed (-1: never) */
    uint32_t good, bad;                        /* results in a row towards a change (rise, fall) */
    struct check_result last;                  /* the last run's (status CHECK_UNKNOWN: none yet) */
    vigil_time_t last_at;                      /* when it ended */
    uint64_t runs, passing, warning, critical; /* runs by result */
    uint64_t changes;
    bool running;
    vigil_time_t next; /* the next run's planned start */
};

struct check_set;

/* A status change: old to c->status, decided by result r at now. */
typedef void (*check_change_fn)(void *arg, const struct check_info *c, enum check_status old,
                                const struct check_result *r, vigil_time_t now);

/*
 * Starts the checks of cfgs (n of them; the set keeps pointers into cfgs,
 * which must outlive it). env gives the loop, the HTTP client (opened
 * only when an http check is among them), stream exchanges and child
 * processes. Returns 0, or -errno with err set.
 */
int check_set_new(struct vio_env *env, const struct vcfg_check *cfgs, size_t n, check_change_fn fn,
                  void *arg, struct check_set **out, char *err, size_t cap);
/*
 * Ping checks: the tag key of node's echoes (vigil_monitor_node_mac).
 * Returns 0, or -VIGIL_EUNKNOWN when there is no key (echoes go untagged,
 * and untagged answers are taken). Without it set, echoes are untagged.
 */
typedef int (*check_key_fn)(void *arg, const char *node, uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN],
                            uint8_t *key_id);
void check_set_keys(struct check_set *s, check_key_fn fn, void *arg);
/* Answers to pings that were refused: garbled, forged, or for no ping in flight. */
uint64_t check_set_bad_pongs(const struct check_set *s);

/* Stops every run in flight (children get SIGKILL) and frees the set. */
void check_set_free(struct check_set *s);

size_t check_set_count(const struct check_set *s);
const struct check_info *check_set_at(const struct check_set *s, size_t i);
/*
 * The checks of node: returns how many, and in *idx their indexes (for
 * check_set_at), valid while the set is. O(log n).
 */
size_t check_set_of_node(const struct check_set *s, const char *node, const size_t **idx);
/* The check of node named name; NULL if none. Linear. */
const struct check_info *check_set_find(const struct check_set *s, const char *node,
                                        const char *name);

/*
 * Takes over the statuses of old's checks with the same node and name
 * (a reload): status, since, counters. Each one taken starts from its
 * status without an event.
 */
void check_set_inherit(struct check_set *s, const struct check_set *old);

/* Lateness of run starts (actual start - planned start), summed over the set. */
struct check_lateness {
    uint64_t n;
    vigil_time_t max;
    uint64_t buckets[64]; /* by power of two of the lateness in ns */
};
void check_set_lateness(const struct check_set *s, struct check_lateness *out);
/* The q-quantile (0 to 1) of the lateness, in ns (an upper bound: the bucket's top). */
vigil_time_t check_lateness_quantile(const struct check_lateness *l, double q);

/*
 * The rise and fall rule, applied to one result: the status, and the
 * counts in a row, are updated; returns true if the status changed.
 * Exposed for the tests.
 */
bool check_apply(enum check_status *status, uint32_t *good, uint32_t *bad, uint32_t rise,
                 uint32_t fall, enum check_status result);

/* Interns s (checks' names and reasons outlive reloads); NULL when out of memory. */
const char *check_intern(const char *s);

#endif

/* ---- checks the agents report (agent.checks), as the monitor sees them ---- */

/*
 * How an agent reports a check in its custom status: the pair
 * "check.NAME" = "STATUS[!] LATENCY_MS CODE DETAIL" (docs/protocol.md),
 * "!" when a critical status means the node is dead. The value is cut to
 * VIGIL_CUSTOM_VAL_MAX bytes. Names of agent checks are at most
 * CHECK_PAIR_NAME_MAX characters, so that the key fits.
 */
#define CHECK_PAIR_PREFIX   "check."
#define CHECK_PAIR_NAME_MAX (VIGIL_CUSTOM_KEY_MAX - 6)
void check_pair_format(const char *name, enum check_status st, bool means_dead,
                       const struct check_result *r, char key[VIGIL_CUSTOM_KEY_MAX + 1],
                       char value[VIGIL_CUSTOM_VAL_MAX + 1]);
/* Reads a pair written so; false if it is not one (another custom pair, or garbled). */
bool check_pair_parse(const struct vigil_custom *p, char name[CHECK_PAIR_NAME_MAX + 1],
                      enum check_status *st, bool *means_dead, struct check_result *r);

struct rcheck {
    char key[VIGIL_ID_MAX + CHECK_PAIR_NAME_MAX + 2]; /* "NODE/NAME" */
    const char *node, *name;                          /* interned */
    enum check_status status;
    bool means_dead;
    vigil_time_t since;       /* when the status last changed, on the monitor's clock */
    vigil_time_t last_at;     /* when the agent last reported it */
    struct check_result last; /* as reported */
    uint64_t changes;
};

struct rchecks;
struct rchecks *rchecks_new(void);
void rchecks_free(struct rchecks *r);
size_t rchecks_count(const struct rchecks *r);
const struct rcheck *rchecks_at(const struct rchecks *r, size_t i);

/* The reported checks of node, at most max of them into out; returns how many. */
size_t rchecks_of_node(const struct rchecks *r, const char *node, const struct rcheck **out,
                       size_t max);

/* A reported check's status change (old to c->status). */
typedef void (*rcheck_change_fn)(void *arg, const struct rcheck *c, enum check_status old,
                                 vigil_time_t now);
/*
 * Takes the check pairs among node's custom pairs (n of them), at now:
 * calls fn for every check whose status changed (a new one counts, from
 * unknown). Returns -VIGIL_ENOMEM if a new check could not be kept.
 */
int rchecks_update(struct rchecks *r, const char *node, const struct vigil_custom *pairs, size_t n,
                   vigil_time_t now, rcheck_change_fn fn, void *arg);
