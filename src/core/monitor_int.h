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

/* A node, as the monitor knows it. */
struct vigil_node {
    char id[VIGIL_ID_MAX + 1];
    uint8_t state;    /* enum vigil_state */
    uint8_t declared; /* from the config, not self-registered */
    uint8_t flags;    /* last heartbeat's flags */
    uint8_t n_custom;
    uint8_t skip_learn;   /* the next interval is not learned (after a pause of the monitor) */
    uint8_t polled;       /* its state comes from checks only (vigil_monitor_declare_polled) */
    uint8_t check_down;   /* held dead by a failing check (vigil_monitor_set_check_down) */
    uint8_t member;       /* polled, by the membership protocol (vigil_monitor_set_member) */
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
    /*
     * The status version of the stored status (version 2 senders; 0 for
     * version 1), and 1 while the node's current status is not the one
     * stored: a beat announced another version, or a new generation began,
     * and no full status has come since. Both sit in padding after addr.
     */
    uint16_t status_version;
    uint8_t status_stale;
    struct vigil_detector det;
    struct vigil_custom *custom; /* n_custom pairs, or NULL */
    /*
     * The observed quality of service (vigil_node_qos): wrong suspicions
     * are counted when a heartbeat of the same generation ends them.
     */
    vigil_time_t suspected_at; /* start of the open suspicion, or -1 */
    vigil_time_t mistake_time; /* summed length of the wrong suspicions */
    vigil_time_t first_heard;  /* first accepted heartbeat, or -1 */
    uint64_t gen_seq0;         /* first sequence number seen in this generation */
    uint64_t gen_hb0;          /* heartbeats accepted before this generation */
    uint32_t mistakes;         /* wrong suspicions */
    uint32_t false_deaths;     /* of those, the ones that had reached dead */
    /*
     * The node's own tag key under master key mac_id (master key mode),
     * when mac_ok: derived from its first datagram verified with that key,
     * and again when the node moves to another key.
     */
    uint8_t mac_key[VIGIL_WIRE_MAC_KEY_LEN];
    uint8_t mac_id;
    uint8_t mac_ok;
    uint8_t key_id; /* the key id of the last accepted datagram */
};

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

/* A deadline in the heap: when, insertion order for ties, and whose. */
struct vigil__heap_ent {
    vigil_time_t at;
    uint64_t order;
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
    /*
     * 1 where the node's heap entry may be earlier than its real next
     * decision: a steady heartbeat only moves an alive node's deadline
     * later, so instead of moving the entry on every heartbeat, the entry
     * stays and is re-keyed once when it reaches the top. That takes the
     * exact crossing and the heap move off the heartbeat path.
     */
    uint8_t *stale;
    uint32_t heap_len;
    uint64_t heap_order;

    struct vigil_event *evq; /* ring of pending events */
    size_t ev_head, ev_len, ev_cap;
    uint64_t ev_seq;

    struct vigil_monitor_stats stats;
    size_t mem;
};

#endif
