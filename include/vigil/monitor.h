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

VIGIL_EXPORT const char *vigil_state_name(enum vigil_state s);
/* Parses a state name; returns -1 if none matches. */
VIGIL_EXPORT int vigil_state_parse(const char *name);

struct vigil_monitor_config {
    struct vigil_detector_config detector;
    /*
     * The heartbeat interval the detector settings were made for. With
     * adapt_interval, a node that says it sends at another interval is
     * judged with the detector's times scaled to its own interval (phi:
     * first estimate, minimum deviation and acceptable pause; fixed: both
     * timeouts; grid: margin and minimum deviation), so that one monitor
     * serves fast and slow senders alike. The grid detector's step is
     * always the node's own advertised interval.
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
    /*
     * The caller hands every datagram in with the time it reached the host
     * (a kernel timestamp), not the time it was read. A late call then says
     * nothing about the nodes, so the monitor does not forgive on its own
     * (above): the caller reports its stalls (vigil_monitor_note_pause) and,
     * when datagrams of a stall were lost before they could be stamped (a
     * full socket buffer), asks for forgiveness (vigil_monitor_forgive).
     */
    bool arrival_times;
    /*
     * The key; with has_key, unauthenticated datagrams are dropped. With
     * key_is_master, key is the cluster master key and each node is
     * verified with its own key (vigil_wire_node_key()), derived once when
     * the node enters the table: a node's key speaks for that node only.
     * The monitor then keeps the master key in locked memory
     * (sodium_malloc) and wipes it when freed. Without key_is_master, key
     * is a legacy cluster key shared by every node (any holder speaks for
     * any node), and the monitor keeps only the tag key derived from it.
     * Either way its own copy of the configuration (vigil_monitor_config())
     * has key zeroed; the caller should wipe its copy once the monitor is
     * created.
     */
    bool has_key;
    bool key_is_master;
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    /*
     * The key id of key (0 to VIGIL_WIRE_KEY_ID_MAX): datagrams made with
     * it carry this id. More keys, for a rotation: vigil_monitor_set_keys.
     */
    uint8_t key_id;
    /*
     * Refuse a full status that is not sealed (encrypted): a version 1
     * heartbeat, or a version 2 full status without the SEALED flag, is
     * dropped and counted (stats.unsealed). Beats carry no status and are
     * accepted either way. Needs a key.
     */
    bool require_sealed;
    /*
     * How far ahead of the monitor's wall clock a generation or a send time
     * may be: a datagram beyond it is refused (-VIGIL_EFUTURE, counted in
     * stats.future). Agents take their generation from the wall clock at
     * start, so a larger one is a forgery or a badly wrong clock; without
     * this bound a single datagram with generation 2^64 - 1 would make
     * every later real heartbeat of that node look stale. The default, 10
     * minutes, is far beyond the offset of hosts kept by NTP. Checked only
     * once the caller has told the monitor the time (vigil_monitor_set_wall).
     */
    vigil_time_t max_ahead;
    /* Seed of the id hash (random per process, against hash flooding). */
    uint8_t hash_seed[16];
    /* Where the monitor gets its memory; all NULL (the default): malloc() and free(). */
    struct vigil_allocator allocator;
};

/* Largest rise: a hundred heartbeats, recovery well past any flapping. */
#define VIGIL_MONITOR_RISE_MAX 100
/* Largest max_nodes: 16777216, the node table's own limit. */
#define VIGIL_MONITOR_MAX_NODES_MAX (1u << 24)

/* Defaults: phi detector for heartbeats every 1 s, adapted per node; rise 2; auto-register on. */
VIGIL_EXPORT void vigil_monitor_config_default(struct vigil_monitor_config *cfg);

/* Checks relations between settings; returns 0 or -VIGIL_EINVAL with *why set. */
VIGIL_EXPORT int vigil_monitor_config_check(const struct vigil_monitor_config *cfg,
                                            const char **why);

/*
 * One of the keys a monitor holds. id: the key id datagrams made with it
 * carry (0 to VIGIL_WIRE_KEY_ID_MAX); master: a master key (each node
 * verified with its own node key) or a legacy cluster key.
 */
struct vigil_key {
    uint8_t id;
    bool master;
    uint8_t key[VIGIL_WIRE_KEY_LEN];
};

/* Most keys held at once: the current, the next, and one to spare. */
#define VIGIL_KEYS_MAX 4

/* Counters of the monitor's own work. */
struct vigil_monitor_stats {
    uint64_t datagrams;    /* all datagrams handed in */
    uint64_t accepted;     /* heartbeats that refreshed a node */
    uint64_t malformed;    /* failed decoding (truncated, garbled, bad version, ...) */
    uint64_t auth_failed;  /* tag missing or wrong */
    uint64_t stale;        /* old or replayed (generation, sequence) */
    uint64_t future;       /* generation or send time too far ahead (max_ahead) */
    uint64_t unknown_key;  /* made with a key id the monitor does not hold (in auth_failed too) */
    uint64_t unsealed;     /* a full status in clear, with require_sealed */
    uint64_t unknown_node; /* from an undeclared id with auto-registration off */
    uint64_t table_full;   /* from a new id with the table full (or no memory for a long id) */
    uint64_t events;       /* events produced */
    uint64_t events_lost;  /* events not queued for want of memory */
    uint64_t custom_lost;  /* status changes (custom pairs, or a status with figures
                              beyond 32 bits) not stored for want of memory */
    uint64_t qos_lost;     /* suspicions not timed for want of memory: a wrong one
                              is not counted in vigil_monitor_node_qos */
    uint64_t pauses;       /* times the monitor found it had not run */
    vigil_time_t paused_total; /* their summed length */
};

enum vigil_event_type {
    VIGIL_EVENT_STATE = 1, /* a node changed state */
    VIGIL_EVENT_PAUSE = 2, /* the monitor found it had not run for a while */
    /*
     * Redundant monitors: who leads changed, as this monitor sees it
     * (vigil_monitor_note_leader): node is the leader's name ("" when no
     * leader is known), generation the leader's epoch, reason what it means
     * here ("this monitor leads", "another monitor leads", "no leader").
     */
    VIGIL_EVENT_LEADER = 3,
    /*
     * Acting on a node (vigil_monitor_note_action): an action's attempt or
     * outcome, a node held for flapping or maintenance, a failover. node is
     * the node ("" for none), reason says what (a static or interned
     * string: "lb do succeeded", "flapping", ...), generation the sequence
     * number of the event acted on (0: none), sequence the attempt (0: not
     * an attempt).
     */
    VIGIL_EVENT_ACTION = 4,
    /*
     * A check of a node's service changed its status
     * (vigil_monitor_note_check): node is the node, check the check's name,
     * and the states stand for the check's statuses: alive is passing,
     * suspect is warning, dead is critical, unknown is not yet checked.
     * The evidence is latency, code (HTTP status, exit status, or 0) and
     * detail (an excerpt of the answer or output, or what went wrong).
     */
    VIGIL_EVENT_CHECK = 5,
};

/* Room for a check event's detail (an output excerpt), not counting the NUL. */
#define VIGIL_EVENT_DETAIL_MAX 119

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
    double loss;     /* grid detector: the loss rate assumed (0 for the other kinds) */
    uint64_t missed; /* grid detector: heartbeats missed in a row (0 for the other kinds) */
    uint64_t generation;
    uint64_t sequence;
    struct vigil_addr addr;
    /* VIGIL_EVENT_CHECK (NULL and 0 otherwise): the check, and its evidence. */
    const char *check;    /* its name: static or kept by the caller for good */
    vigil_time_t latency; /* how long the check took */
    int64_t code;         /* HTTP status, exit status, or 0 */
    char detail[VIGIL_EVENT_DETAIL_MAX + 1];
};

/*
 * A node, as the monitor knows it: opaque, read through the vigil_node_*()
 * accessors below. Node pointers come from vigil_monitor_find() and
 * vigil_monitor_node_at(), valid as those functions say.
 */
struct vigil_node;

/* The monitor itself: opaque. */
struct vigil_monitor;

VIGIL_EXPORT int vigil_monitor_new(const struct vigil_monitor_config *cfg, vigil_time_t now,
                                   struct vigil_monitor **out);
VIGIL_EXPORT void vigil_monitor_free(struct vigil_monitor *m);

/*
 * Declares a node (from the config): state unknown, dead after startup_grace.
 * Like every call that may enter a node, -VIGIL_ENOMEM when the id is
 * 16 characters or longer and the monitor could not get
 * memory to keep it (ids are kept in 64 KiB chunks, allocated as needed).
 */
VIGIL_EXPORT int vigil_monitor_declare(struct vigil_monitor *m, const char *id, vigil_time_t now);

/*
 * Handles one datagram received at now from from. Returns 0 if it was
 * accepted, or the negative reason it was dropped (each reason is also
 * counted in the stats). Never acts on a datagram that fails verification.
 */
VIGIL_EXPORT int vigil_monitor_on_datagram(struct vigil_monitor *m, vigil_time_t now,
                                           const uint8_t *buf, size_t len,
                                           const struct vigil_addr *from);

/* One datagram of a batch (vigil_monitor_on_batch): what it is, then what became of it. */
struct vigil_monitor_dgram {
    const uint8_t *buf;
    size_t len;
    vigil_time_t at;               /* when it arrived: the now of vigil_monitor_on_datagram */
    const struct vigil_addr *from; /* or NULL */
    int rc;                        /* out: what vigil_monitor_on_datagram would return */
    /* out: the node whose full status it carried (vigil_monitor_last_status), or NULL */
    const struct vigil_node *status;
    /* out, with rc -VIGIL_EAUTH: its key id is unknown; it was a status in clear */
    bool unknown_key, unsealed;
};

/*
 * Handles n datagrams, in order, exactly as n calls of
 * vigil_monitor_on_datagram would, but faster at many nodes: the memory
 * they need is fetched for many datagrams at once. Each datagram's at must
 * not be earlier than the one before it.
 */
VIGIL_EXPORT void vigil_monitor_on_batch(struct vigil_monitor *m, struct vigil_monitor_dgram *d,
                                         size_t n);

/* The earliest time the monitor needs to be called, or VIGIL_TIME_NEVER. */
VIGIL_EXPORT vigil_time_t vigil_monitor_next_deadline(const struct vigil_monitor *m);

/* Makes every decision due at or before now. */
VIGIL_EXPORT void vigil_monitor_on_expiry(struct vigil_monitor *m, vigil_time_t now);

/*
 * Tells the monitor that its caller did not run for `length` until now (a
 * stop, a VM pause, starvation) while the datagrams of that time were kept
 * with their arrival times (the kernel's stamps) and handed in since. No
 * node needs forgiving, then: each is judged by when its heartbeats really
 * arrived. The pause is counted and reported as an event of its true
 * length. (Without arrival times, the monitor's own guard, pause_tolerance,
 * forgives instead.)
 */
/*
 * Reports a change of leadership among redundant monitors as an event
 * (VIGIL_EVENT_LEADER): leader is the leader's name (NULL or "": none
 * known, longer than VIGIL_ID_MAX: cut), epoch its fencing epoch, reason a
 * static string saying what it means for this monitor.
 */
VIGIL_EXPORT void vigil_monitor_note_leader(struct vigil_monitor *m, vigil_time_t now,
                                            const char *leader, uint64_t epoch, const char *reason);

/*
 * Reports something done or decided about acting on a node, as an event
 * (VIGIL_EVENT_ACTION): node (NULL or "": none), reason (a string that
 * outlives the event: static, or kept by the caller for good), about the
 * event seq acted on (0: none), attempt (0: not an attempt).
 */
VIGIL_EXPORT void vigil_monitor_note_action(struct vigil_monitor *m, vigil_time_t now,
                                            const char *node, const char *reason, uint64_t about,
                                            uint64_t attempt);

/*
 * A check's status change, for vigil_monitor_note_check. The states stand
 * for the statuses (VIGIL_EVENT_CHECK); check and reason must outlive the
 * event (static, or kept by the caller for good); detail is copied (cut at
 * VIGIL_EVENT_DETAIL_MAX bytes; NULL: none).
 */
struct vigil_check_note {
    const char *check;
    enum vigil_state old_state, new_state;
    const char *reason;
    vigil_time_t latency;
    int64_t code;
    const char *detail;
};

/* Reports a check's status change as an event (VIGIL_EVENT_CHECK) of node. */
VIGIL_EXPORT void vigil_monitor_note_check(struct vigil_monitor *m, vigil_time_t now,
                                           const char *node, const struct vigil_check_note *c);

/*
 * The node whose full status (status and custom pairs) the last datagram
 * handed to vigil_monitor_on_datagram carried and the monitor accepted;
 * NULL when it carried none (a beat) or was dropped. For callers that read
 * what nodes report in their custom pairs (agent checks) only when it
 * changes hands. Valid until the next call that may add a node.
 */
VIGIL_EXPORT const struct vigil_node *vigil_monitor_last_status(const struct vigil_monitor *m);

/*
 * Declares a node that sends no heartbeats: its state comes from its
 * checks only (vigil_monitor_set_check_down), never from a detector. It
 * stays unknown until the first verdict. Heartbeats from it are accepted
 * and recorded (status, address, high-water mark) but do not change its
 * state. A node already in the table (a restored mark) becomes polled.
 * Returns 0 or -VIGIL_EBADID, -VIGIL_EFULL.
 */
VIGIL_EXPORT int vigil_monitor_declare_polled(struct vigil_monitor *m, const char *id,
                                              vigil_time_t now);

/*
 * What the node's checks say about the node as a whole: down (a check
 * whose failure means the node is dead is failing) or not.
 *
 * A heartbeat node that goes down is dead at once (reason, e.g. "check
 * web failed"); its heartbeats are still taken but do not bring it back
 * while it is down. When it is up again it is alive at once if its
 * detector is below the suspect threshold (its heartbeats never stopped),
 * else it recovers as a dead node does, by rise timely heartbeats.
 *
 * A polled node is dead while down and alive while up.
 *
 * Returns 0, -VIGIL_EUNKNOWN (no such node), -VIGIL_EBADID.
 */
VIGIL_EXPORT int vigil_monitor_set_check_down(struct vigil_monitor *m, vigil_time_t now,
                                              const char *id, bool down, const char *reason);

/*
 * Peer-to-peer mode (vigil peer): the membership protocol decides the
 * node's state, as its checks decide a polled node's. Enters the node if
 * new (polled and a member: no detector, no deadline) and moves it to
 * state (alive, suspect, dead or left) with reason (static, or kept by the
 * caller for good), an event when the state changes. addr (NULL: kept) is
 * where the member is reached; alive counts as hearing from it.
 * Returns 0, -VIGIL_EBADID, -VIGIL_EINVAL (unknown as a state), -VIGIL_EFULL.
 */
VIGIL_EXPORT int vigil_monitor_set_member(struct vigil_monitor *m, vigil_time_t now, const char *id,
                                          enum vigil_state state, const char *reason,
                                          const struct vigil_addr *addr);
/*
 * A member's status as it gossips it (load, memory, uptime, custom pairs
 * and the sender's clock of hb; the rest of hb is not read), stored as a
 * full status from a heartbeat would be. Returns 0, -VIGIL_EUNKNOWN (no
 * such member), -VIGIL_EBADID, -VIGIL_ENOMEM (the custom pairs not kept).
 */
VIGIL_EXPORT int vigil_monitor_set_member_status(struct vigil_monitor *m, vigil_time_t now,
                                                 const struct vigil_heartbeat *hb);

VIGIL_EXPORT void vigil_monitor_note_pause(struct vigil_monitor *m, vigil_time_t now,
                                           vigil_time_t length);

/*
 * Tells the monitor that its caller did not run for `length` until now and
 * that heartbeats of that time may be lost unread (a full socket buffer):
 * nobody is convicted for that time; every monitored node gets a fresh
 * detection period from now. Counted and reported as a pause event.
 */
VIGIL_EXPORT void vigil_monitor_forgive(struct vigil_monitor *m, vigil_time_t now,
                                        vigil_time_t length);

/*
 * Tells the monitor that the wall clock read wall_us (microseconds since
 * the epoch) at monotonic time now. The monitor follows the wall clock from
 * there on its monotonic one, for the max_ahead check only; call again now
 * and then to follow a stepped clock. Until the first call nothing is
 * refused as being in the future.
 */
VIGIL_EXPORT void vigil_monitor_set_wall(struct vigil_monitor *m, vigil_time_t now,
                                         int64_t wall_us);

/*
 * Replaces the keys the monitor holds (1 to VIGIL_KEYS_MAX, distinct ids;
 * the kinds may differ, so a cluster can move from a legacy cluster key to
 * a master key). A datagram is verified with the key its key id names; one
 * made with a key no longer held is refused (-VIGIL_EAUTH, counted in
 * auth_failed and unknown_key). The rotation: add the new key, move the
 * nodes over, drop the old key; no valid heartbeat is refused on the way.
 * The monitor copies the keys into locked memory; the caller wipes its
 * array. A monitor made without a key cannot be given keys later (nor a
 * keyed one none): -VIGIL_EINVAL, as for duplicate ids or an id above
 * VIGIL_WIRE_KEY_ID_MAX. -VIGIL_ENOMEM leaves the old keys in place.
 */
VIGIL_EXPORT int vigil_monitor_set_keys(struct vigil_monitor *m, const struct vigil_key *keys,
                                        size_t n);

/*
 * Applies new settings to a running monitor (a configuration reload),
 * keeping every node's state and history: the detector's thresholds and
 * times, interval, adapt_interval, rise, startup_grace, auto_register,
 * pause_tolerance, max_ahead and require_sealed. What shapes the tables
 * or the histories cannot change: the detector kind and window,
 * max_nodes, hash_seed, allocator, arrival_times (nor the keys:
 * vigil_monitor_set_keys). Those
 * fields of cfg are ignored; *restart (may be NULL) is set to true if any
 * of them differs from the running value, so that the caller can say a
 * restart is needed. -VIGIL_EINVAL for settings
 * vigil_monitor_config_check refuses (nothing changes then). Every node's
 * next decision is recomputed at once from its history under the new
 * settings; one already due is decided at the next
 * vigil_monitor_on_expiry(). now: the current time.
 */
VIGIL_EXPORT int vigil_monitor_reconfigure(struct vigil_monitor *m, vigil_time_t now,
                                           const struct vigil_monitor_config *cfg, bool *restart);

/*
 * The fingerprint (vigil_wire_key_fingerprint) of the key that node id
 * must use under key id key_id: its node key, or the legacy cluster key.
 * Returns 0, -VIGIL_EUNKNOWN when the monitor holds no key of that id (or
 * none at all), -VIGIL_EBADID for an invalid id.
 */
VIGIL_EXPORT int vigil_monitor_key_fingerprint(const struct vigil_monitor *m, const char *id,
                                               unsigned key_id,
                                               uint8_t fp[VIGIL_WIRE_FINGERPRINT_LEN]);

/*
 * The tag key node id uses (its node key's, or the legacy cluster key's),
 * for the monitor's own authenticated polls of it (ping checks): under the
 * key id of the node's last accepted datagram if the monitor still holds
 * it, else under the first key held. *key_id is that id. Returns 0,
 * -VIGIL_EUNKNOWN when the monitor has no key, -VIGIL_EBADID.
 */
VIGIL_EXPORT int vigil_monitor_node_mac(const struct vigil_monitor *m, const char *id,
                                        uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN], uint8_t *key_id);

/* The key ids the monitor holds, in ids (cap entries at most); returns how many it holds. */
VIGIL_EXPORT size_t vigil_monitor_key_ids(const struct vigil_monitor *m, uint8_t *ids, size_t cap);

/*
 * Restores a node's high-water mark, saved before a restart: datagrams of
 * id not newer than (generation, sequence) are refused as stale. A node not
 * in the table enters it (state unknown, no deadline, not declared) unless
 * auto-registration is off (-VIGIL_EUNKNOWN). A mark lower than the node's
 * current one changes nothing. Returns 0 or -VIGIL_EBADID, -VIGIL_EUNKNOWN,
 * -VIGIL_EFULL.
 */
VIGIL_EXPORT int vigil_monitor_restore(struct vigil_monitor *m, const char *id, uint64_t generation,
                                       uint64_t sequence, vigil_time_t now);

/*
 * Numbers the next event last + 1 (events are numbered 1, 2, 3, ... from
 * vigil_monitor_new otherwise): a monitor restarted on a store continues
 * after the largest number it handed out before, so that no number is
 * ever used twice. Never moves the numbering back: a last below the
 * number of the newest event changes nothing.
 */
VIGIL_EXPORT void vigil_monitor_set_event_seq(struct vigil_monitor *m, uint64_t last);

/* Takes the oldest pending event; false when there is none. */
VIGIL_EXPORT bool vigil_monitor_poll_event(struct vigil_monitor *m, struct vigil_event *ev);

/* Lookup and iteration; pointers stay valid until the next call that may add a node. */
VIGIL_EXPORT const struct vigil_node *vigil_monitor_find(const struct vigil_monitor *m,
                                                         const char *id);
VIGIL_EXPORT size_t vigil_monitor_node_count(const struct vigil_monitor *m);
VIGIL_EXPORT const struct vigil_node *vigil_monitor_node_at(const struct vigil_monitor *m,
                                                            size_t i);

/*
 * The detector settings the node is judged with: the monitor's own, scaled
 * to the node's advertised interval (see adapt_interval). Returns cfg or tmp.
 */
VIGIL_EXPORT const struct vigil_detector_config *
vigil_monitor_node_detector(const struct vigil_monitor *m, const struct vigil_node *n,
                            struct vigil_detector_config *tmp);

/* The node's detector level now. */
VIGIL_EXPORT double vigil_monitor_level(const struct vigil_monitor *m, const struct vigil_node *n,
                                        vigil_time_t now);
/* The monitor's settings, as given to vigil_monitor_new() but with key zeroed. */
VIGIL_EXPORT const struct vigil_monitor_config *vigil_monitor_config(const struct vigil_monitor *m);
VIGIL_EXPORT const struct vigil_monitor_stats *vigil_monitor_stats(const struct vigil_monitor *m);

/* Bytes the monitor has allocated (node records, id table, heap, events). */
VIGIL_EXPORT size_t vigil_monitor_memory(const struct vigil_monitor *m);

/* --- reading a node ------------------------------------------------------ */

/* The node id (NUL terminated, 1 to VIGIL_ID_MAX characters). */
VIGIL_EXPORT const char *vigil_node_id(const struct vigil_node *n);
VIGIL_EXPORT enum vigil_state vigil_node_state(const struct vigil_node *n);
/* Monotonic time of the last state change (of the declaration, before any). */
VIGIL_EXPORT vigil_time_t vigil_node_state_since(const struct vigil_node *n);
/* Monotonic time of the last accepted heartbeat, or -1 if never heard. */
VIGIL_EXPORT vigil_time_t vigil_node_last_heard(const struct vigil_node *n);
/* Boot generation and sequence of the last accepted heartbeat (0 before any). */
VIGIL_EXPORT uint64_t vigil_node_generation(const struct vigil_node *n);
VIGIL_EXPORT uint64_t vigil_node_sequence(const struct vigil_node *n);
/* Heartbeats accepted from the node. */
VIGIL_EXPORT uint64_t vigil_node_heartbeats(const struct vigil_node *n);
/* The key id of the node's last accepted datagram (0 before any, and without keys). */
VIGIL_EXPORT unsigned vigil_node_key_id(const struct vigil_node *n);
/* The heartbeat interval the node advertises (0 before its first heartbeat). */
VIGIL_EXPORT vigil_time_t vigil_node_interval(const struct vigil_node *n);
/*
 * The sender's wall clock in the last heartbeat that carried the full
 * status, microseconds since the epoch (0: none). Version 2 beats do not
 * carry it.
 */
VIGIL_EXPORT int64_t vigil_node_send_time_us(const struct vigil_node *n);
/* True if the node was declared (vigil_monitor_declare), false if it registered itself. */
VIGIL_EXPORT bool vigil_node_declared(const struct vigil_node *n);
/* True if the node's state comes from its checks only (vigil_monitor_declare_polled). */
VIGIL_EXPORT bool vigil_node_polled(const struct vigil_node *n);
/* True if the membership protocol decides the node's state (vigil_monitor_set_member). */
VIGIL_EXPORT bool vigil_node_member(const struct vigil_node *n);
/* True while a check holds the node dead (vigil_monitor_set_check_down). */
VIGIL_EXPORT bool vigil_node_check_down(const struct vigil_node *n);
/* Timely heartbeats so far in a recovery run of a dead or left node (0: none running). */
VIGIL_EXPORT uint32_t vigil_node_rise_count(const struct vigil_node *n);
/* Where the last heartbeat came from (family 0: unknown). */
VIGIL_EXPORT const struct vigil_addr *vigil_node_addr(const struct vigil_node *n);
/*
 * The status (load, memory, uptime) of the last heartbeat that carried it:
 * every version 1 heartbeat, a version 2 full status. Version 2 beats in
 * between leave it as it is. A copy: the monitor keeps statuses in a
 * narrower form (all zero before any).
 */
VIGIL_EXPORT struct vigil_status vigil_node_status(const struct vigil_node *n);
/*
 * True while the stored status (vigil_node_status(), vigil_node_custom())
 * is not the node's current one: a version 2 beat named another status
 * version than the stored one, or began a new generation (which also
 * clears the stored status), and no full status has arrived since. False
 * for a node never heard and for version 1 senders.
 */
VIGIL_EXPORT bool vigil_node_status_stale(const struct vigil_node *n);
/*
 * The custom key=value status of the last full status: count pairs, and pair
 * i (NULL when i >= count). A pair pointer stays valid until the next
 * vigil_monitor_on_datagram() call.
 */
VIGIL_EXPORT size_t vigil_node_custom_count(const struct vigil_node *n);
VIGIL_EXPORT const struct vigil_custom *vigil_node_custom(const struct vigil_node *n, size_t i);
/*
 * The node's detector state, for vigil_detector_stats() (interval mean and
 * standard deviation) and, with vigil_monitor_node_detector(), for
 * vigil_detector_level() and vigil_detector_crossing().
 */
VIGIL_EXPORT const struct vigil_detector *vigil_node_detector_state(const struct vigil_node *n);

/*
 * What the monitor observed of its own quality of service for a node (the
 * metrics of Chen, Toueg and Aguilera; docs/tuning.md). A mistake is a
 * suspicion that a heartbeat of the same generation ended: the node was
 * alive all along. Its duration runs from the suspicion to that heartbeat.
 */
struct vigil_node_qos {
    uint32_t mistakes;         /* wrong suspicions */
    uint32_t false_deaths;     /* of those, the ones that had reached dead */
    vigil_time_t mistake_time; /* their summed duration */
    vigil_time_t first_heard;  /* monotonic time of the first heartbeat, or -1 */
    uint64_t received;         /* heartbeats accepted in the current generation */
    uint64_t expected;         /* sequence numbers that generation spans so far */
};

/* A node's quality of service: n must be a node of m. */
VIGIL_EXPORT void vigil_monitor_node_qos(const struct vigil_monitor *m, const struct vigil_node *n,
                                         struct vigil_node_qos *out);

#ifdef __cplusplus
}
#endif

#endif
