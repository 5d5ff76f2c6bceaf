/*
 * The monitor's private records: the node record, the deadline heap entry
 * and the monitor itself. Internal to libvigil; callers see struct
 * vigil_node and struct vigil_monitor only as opaque types and read nodes
 * through the vigil_node_*() accessors of <vigil/monitor.h>.
 */
#ifndef VIGIL_CORE_MONITOR_INT_H
#define VIGIL_CORE_MONITOR_INT_H

#include <vigil/monitor.h>

#include "core/idtable.h"

/*
 * Ids of up to this many bytes, NUL included, are kept in the node record;
 * longer ones in the monitor's id store (monitor.c). 16 holds host names
 * of up to 15 characters ("web-eu-003", "node-0000042") at the cost of a
 * pointer.
 */
#define VIGIL__ID_INLINE 16

/*
 * The bytes at the start of a node record that a steady heartbeat reads
 * and writes (see below): vigil_monitor_on_batch fetches them ahead.
 */
#define VIGIL__NODE_HOT 144

/*
 * A node, as the monitor knows it. A million of them are the monitor's
 * main cost in memory, so the record is packed: the fields a heartbeat
 * reads and writes first (the id compared by the table's probe, the tag
 * key, the high-water mark, the detector, the state and the address), in
 * the record's first 144 bytes (VIGIL__NODE_HOT), then what only a state
 * change, a full status or a reader of the node touches. The deadline is
 * not kept here: it is the node's heap entry's (monitor.c node_deadline).
 */
struct vigil_node {
    union {
        char in[VIGIL__ID_INLINE]; /* ids shorter than VIGIL__ID_INLINE, NUL terminated */
        const char *out;           /* longer ones (id_out): in the monitor's id store */
    } id;
    /*
     * The node's own tag key under master key mac_id (master key mode),
     * when mac_ok: derived from its first datagram verified with that key,
     * and again when the node moves to another key.
     */
    uint8_t mac_key[VIGIL_WIRE_MAC_KEY_LEN];
    uint64_t generation;
    uint64_t sequence;
    vigil_time_t last_heard; /* monotonic time of the last accepted heartbeat, or -1 */
    struct vigil_detector det;
    uint64_t heartbeats;      /* accepted heartbeats */
    vigil_time_t first_heard; /* first accepted heartbeat, or -1 */
    uint32_t interval_ms;     /* the sender's interval */
    uint8_t state;            /* enum vigil_state */
    uint8_t flags;            /* last heartbeat's flags */
    uint8_t declared : 1;     /* from the config, not self-registered */
    uint8_t polled : 1;       /* its state comes from checks only (vigil_monitor_declare_polled) */
    uint8_t check_down : 1;   /* held dead by a failing check (vigil_monitor_set_check_down) */
    uint8_t member : 1;       /* polled, by the membership protocol (vigil_monitor_set_member) */
    uint8_t skip_learn : 1;   /* the next interval is not learned (after a pause of the monitor) */
    uint8_t mac_ok : 1;       /* mac_key holds the node's tag key under mac_id */
    uint8_t id_out : 1;       /* the id is in the id store (id.out), not in the record */
    /*
     * 1 where the node's heap entry may be earlier than its real next
     * decision: a steady heartbeat only moves an alive node's deadline
     * later, so instead of moving the entry on every heartbeat, the entry
     * stays and is re-keyed once when it reaches the top. That takes the
     * exact crossing and the heap move off the heartbeat path.
     */
    uint8_t stale : 1;
    /* Key ids are 0 to VIGIL_WIRE_KEY_ID_MAX (15): four bits each. */
    uint8_t mac_id : 4; /* the master key mac_key was derived under */
    uint8_t key_id : 4; /* the key id of the last accepted datagram */
    /* Timely heartbeats towards recovery: at most rise, which is at most 100. */
    uint8_t rise_count : 7;
    /*
     * 1 while the node's current status is not the one stored: a beat
     * announced another version, or a new generation began, and no full
     * status has come since.
     */
    uint8_t status_stale : 1;
    uint8_t n_custom : 5;    /* at most VIGIL_CUSTOM_MAX (16) */
    uint8_t status_wide : 1; /* the status is in status.wide (see there) */
    /* The status version of the stored status (version 2 senders; 0 for version 1). */
    uint16_t status_version;
    struct vigil_addr addr;

    /* What a state change, a full status or a reader touches. */
    vigil_time_t state_since; /* monotonic time of the last state change */
    int64_t send_time_us;     /* sender's wall clock in the last full status */
    /*
     * The status of the last full status (vigil_node_status), in 24 bytes
     * instead of 40: its 64-bit figures in 32 bits while they fit, as they
     * do for any real host (4 TiB of memory counted in KiB, 136 years of
     * uptime in seconds); a status with a larger one is kept whole in an
     * allocated copy (status_wide), so nothing a node reports is cut.
     */
    union {
        struct {
            uint32_t load1_milli, load5_milli, load15_milli;
            uint32_t mem_total_kib, mem_avail_kib, uptime_s;
        } narrow;
        struct vigil_status *wide;
    } status;
    struct vigil_custom *custom; /* n_custom pairs, or NULL */
    /*
     * The observed quality of service (vigil_monitor_node_qos). The loss
     * count of the current generation: heartbeats accepted before it, and
     * the sequence numbers it skipped (saturated; a version 2 sequence
     * number is 32 bits, so only a version 1 sender could reach the limit).
     */
    uint64_t gen_hb0;
    uint32_t gen_missing;
    /*
     * 1 + the index of the node's suspicion record (struct vigil__susp) in
     * the monitor's store, 0 while the node was never suspected. Most
     * nodes never are, so the open suspicion's start and the wrong ones'
     * counts live there and not in every record.
     */
    uint32_t susp;
};

/*
 * A node's suspicions, for the observed quality of service: the start of
 * the open one, and the wrong ones, counted when a heartbeat of the same
 * generation ends them. Allocated at the node's first suspicion, in chunks
 * of VIGIL__SUSP_CHUNK that never move (monitor.c susp_get).
 */
struct vigil__susp {
    vigil_time_t suspected_at; /* start of the open suspicion, or -1 */
    vigil_time_t mistake_time; /* summed length of the wrong suspicions */
    uint32_t mistakes;         /* wrong suspicions */
    uint32_t false_deaths;     /* of those, the ones that had reached dead */
};

/* Suspicion records per chunk of the store: 2048 of 24 bytes, 48 KiB. */
#define VIGIL__SUSP_CHUNK_BITS 11
#define VIGIL__SUSP_CHUNK      (1u << VIGIL__SUSP_CHUNK_BITS)

/* The node's id: in the record, or in the id store. */
static inline const char *vigil__node_id(const struct vigil_node *n)
{
    return n->id_out ? n->id.out : n->id.in;
}

/* The node's suspicion record, or NULL while it was never suspected. */
static inline struct vigil__susp *vigil__node_susp(const struct vigil_monitor *m,
                                                   const struct vigil_node *n);

/*
 * A key the monitor holds (vigil_monitor_set_keys), in locked memory: the
 * key itself, and for a legacy cluster key the tag and seal keys derived
 * from it once (a master key's are per node).
 */
struct vigil__keyslot {
    uint8_t id;
    bool master;
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN];
    uint8_t seal[VIGIL_WIRE_SEAL_KEY_LEN];
};

/*
 * A deadline in the heap: when, insertion order for ties, and whose. The
 * order is 32 bits, compared as a serial number (RFC 1982): equal
 * deadlines are set at about the same time, never 2^31 schedulings apart,
 * so the difference of their orders says which came first even across a
 * wrap, and 16 bytes instead of 24 keep the heap of a million nodes at
 * 16 MB.
 */
struct vigil__heap_ent {
    vigil_time_t at;
    uint32_t order;
    uint32_t node;
};

struct vigil_monitor {
    struct vigil_monitor_config cfg; /* with the key wiped: the keys live in keys */
    struct vigil_allocator al;       /* cfg.allocator, or the C library's */

    struct vigil_node *nodes; /* max_nodes records, allocated once */
    uint32_t n_nodes;
    /* The node whose full status the last datagram handed in carried, or NONE. */
    uint32_t last_status;
    /* VIGIL_KEYS_MAX slots (sodium_malloc, read-only between changes), or NULL: no key. */
    struct vigil__keyslot *keys;
    uint32_t n_keys;
    int64_t wall_us; /* the wall clock at wall_mono (set_wall) */
    vigil_time_t wall_mono;
    bool wall_set;
    double suspect_quantile; /* vigil_phi_quantile(suspect threshold), computed once */

    struct vigil__idtable ids; /* node id -> index in nodes, for max_nodes */

    struct vigil__heap_ent *heap;
    /*
     * Each node's index in the heap (NO_POS: none). Kept apart from the
     * node records: a heap move writes the positions of the entries it
     * passes, and a dense array of them stays in cache where scattered
     * node records would not.
     */
    uint32_t *heap_pos;
    uint32_t heap_len;
    uint32_t heap_order;

    /*
     * The id store: ids of VIGIL__ID_INLINE bytes or more, each where the
     * previous one ended, in chunks of VIGIL__ID_CHUNK bytes allocated as
     * long ids arrive (nodes are never removed, so nothing is ever freed
     * before the monitor). Pointers into it stay valid for good.
     */
    char **id_chunks; /* id_chunks_cap slots */
    uint32_t id_chunks_cap, id_chunks_len;
    uint32_t id_chunk_used; /* bytes used in the last chunk */

    /*
     * The store of suspicion records: susp_chunks_cap slots (enough for
     * max_nodes), the first susp_len records used.
     */
    struct vigil__susp **susp_chunks;
    uint32_t susp_chunks_cap, susp_len;

    struct vigil_event *evq; /* ring of pending events */
    size_t ev_head, ev_len, ev_cap;
    uint64_t ev_seq;

    struct vigil_monitor_stats stats;
    size_t mem;
};

static inline struct vigil__susp *vigil__node_susp(const struct vigil_monitor *m,
                                                   const struct vigil_node *n)
{
    if (n->susp == 0)
        return NULL;
    uint32_t i = n->susp - 1;
    return &m->susp_chunks[i >> VIGIL__SUSP_CHUNK_BITS][i & (VIGIL__SUSP_CHUNK - 1)];
}

#endif
