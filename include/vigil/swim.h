/*
 * Peer-to-peer membership and failure detection: SWIM (Das, Gupta and
 * Motivala, 2002) with the Lifeguard refinements (Dadgar, Phillips and
 * Currey, 2018). docs/peer.md has the protocol, its messages and the
 * parameters.
 *
 * Pure code, like the monitor core: it never reads a clock, never touches
 * a socket and draws its randomness from a seeded generator. The caller
 * hands it the time and the datagrams, takes the datagrams it wants sent,
 * asks when to call it next, and drains the events:
 *
 *   vigil_swim_on_datagram(s, now, bytes, len, &from);    each datagram
 *   if (now >= vigil_swim_next_deadline(s)) vigil_swim_on_expiry(s, now);
 *   while (vigil_swim_poll_send(s, &out)) send out.buf to out.to;
 *   while (vigil_swim_poll_event(s, &ev)) ...;
 *
 * Not thread safe: one thread owns a member.
 */
#ifndef VIGIL_SWIM_H
#define VIGIL_SWIM_H

#include "common.h"
#include "monitor.h"
#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most bytes of a member's metadata (its status, as the agent's custom pairs carry it). */
#define VIGIL_SWIM_META_MAX 128
/* Lifeguard's local health multiplier: a score from 0 to awareness_max - 1. */
#define VIGIL_SWIM_AWARENESS_MAX_DEFAULT 8

struct vigil_swim_config {
    const char *id;         /* this member's id */
    struct vigil_addr addr; /* where the others reach it */
    /* memberlist's LAN defaults. */
    vigil_time_t probe_interval;  /* 1 s: one probe per period */
    vigil_time_t probe_timeout;   /* 500 ms: a direct probe's wait for its ack */
    uint32_t indirect_checks;     /* 3: members asked to probe for us (k) */
    uint32_t retransmit_mult;     /* 4: each update is sent mult * ceil(log10(n + 1)) times */
    uint32_t suspicion_mult;      /* 4: the suspicion timeout's base, in probe intervals */
    uint32_t suspicion_max_mult;  /* 6: its longest, in multiples of the shortest */
    uint32_t awareness_max;       /* 8: Lifeguard's local health multiplier bound (S) */
    vigil_time_t gossip_interval; /* 200 ms: updates sent to gossip_nodes members */
    uint32_t gossip_nodes;        /* 3 */
    vigil_time_t sync_interval;   /* 30 s: full state exchange (scaled up past 32 members) */
    /*
     * 30 s: a member believed dead is pinged, with the news that it is
     * thought dead, so that after a partition it refutes and the two sides
     * find each other again (each side does it: a partition heals both
     * ways).
     */
    vigil_time_t reconnect_interval;
    /*
     * The Lifeguard refinements: local health awareness (probe interval
     * and timeout stretched while this member's own probes fail), dynamic
     * suspicion timeouts (shorter with independent confirmations), the
     * buddy system (a suspect is told first) and nacks. false: plain SWIM,
     * with a fixed suspicion timeout (the dynamic one's shortest).
     */
    bool lifeguard;
    /*
     * 0: the probe interval. A call to vigil_swim_on_expiry later than the
     * core's deadline by more than this is a stall of this member (a stop,
     * a swapped-out process): the time it was away says nothing about the
     * others, so every suspicion in progress is extended by the stall, and
     * the others' refutations get the time they would have had.
     */
    vigil_time_t pause_tolerance;
    /* The cluster key: every datagram tagged with its tag key (has_key false: none). */
    bool has_key;
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    uint64_t seed;        /* of the random choices (probe order, indirect members) */
    uint32_t max_members; /* 65536 */
    size_t mtu;           /* largest datagram sent: 1200 */
    struct vigil_allocator allocator;
    /*
     * Member ids are kept as the strings intern returns (the same pointer
     * for the same id, alive as long as the member is): a process that
     * runs many members (a simulation) keeps each id once. NULL: each
     * member allocates its own copies.
     */
    const char *(*intern)(void *ud, const char *id);
    void *intern_ud;
};

VIGIL_EXPORT void vigil_swim_config_default(struct vigil_swim_config *c);

/* A datagram to send. */
struct vigil_swim_send {
    struct vigil_addr to;
    size_t len;
    uint8_t buf[1280];
};

/* A member's change of state, as this member sees it. */
struct vigil_swim_event {
    uint64_t seq;
    vigil_time_t time;
    char id[VIGIL_ID_MAX + 1];
    enum vigil_state old_state, new_state; /* alive, suspect, dead, left */
    uint32_t incarnation;
    const char *reason;     /* static: "joined", "probe failed", "suspected by ...", ... */
    uint32_t confirmations; /* independent suspicions when it was declared dead */
};

/* Counters of the member's own work. */
struct vigil_swim_stats {
    uint64_t sent, received, bytes_sent, bytes_received;
    uint64_t malformed, auth_failed;
    uint64_t probes, probes_failed, indirect_probes, nacks_sent, nacks_missed;
    uint64_t suspicions, refutations, deaths, false_deaths_refuted;
    uint64_t updates_sent, syncs;
    uint64_t pauses; /* stalls of this member longer than pause_tolerance */
};

struct vigil_swim;

VIGIL_EXPORT int vigil_swim_new(const struct vigil_swim_config *cfg, vigil_time_t now,
                                struct vigil_swim **out);
VIGIL_EXPORT void vigil_swim_free(struct vigil_swim *s);

/* Asks the members at seeds (n of them) for their state: a join (retried by the caller). */
VIGIL_EXPORT void vigil_swim_join(struct vigil_swim *s, vigil_time_t now,
                                  const struct vigil_addr *seeds, size_t n);
/*
 * Adds a member known from the configuration (a static cluster), alive at
 * incarnation 0, without gossiping it: each member is expected to know it
 * too. Returns 0, -VIGIL_EBADID, -VIGIL_EEXIST (this member, or known),
 * -VIGIL_EFULL.
 */
VIGIL_EXPORT int vigil_swim_add(struct vigil_swim *s, vigil_time_t now, const char *id,
                                const struct vigil_addr *addr);
/* Leaves: tells the others, who mark it left (the caller sends, then stops). */
VIGIL_EXPORT void vigil_swim_leave(struct vigil_swim *s, vigil_time_t now);
/* Sets this member's metadata (len <= VIGIL_SWIM_META_MAX); gossiped with a new incarnation. */
VIGIL_EXPORT int vigil_swim_set_meta(struct vigil_swim *s, vigil_time_t now, const uint8_t *meta,
                                     size_t len);

/* Handles one datagram; 0 or the negative reason it was dropped (counted). */
VIGIL_EXPORT int vigil_swim_on_datagram(struct vigil_swim *s, vigil_time_t now, const uint8_t *buf,
                                        size_t len, const struct vigil_addr *from);
VIGIL_EXPORT vigil_time_t vigil_swim_next_deadline(const struct vigil_swim *s);
VIGIL_EXPORT void vigil_swim_on_expiry(struct vigil_swim *s, vigil_time_t now);
/* Takes the next datagram to send; false when there is none. */
VIGIL_EXPORT bool vigil_swim_poll_send(struct vigil_swim *s, struct vigil_swim_send *out);
VIGIL_EXPORT bool vigil_swim_poll_event(struct vigil_swim *s, struct vigil_swim_event *ev);

/* ---- reading ---- */

struct vigil_swim_member {
    const char *id;
    struct vigil_addr addr;
    enum vigil_state state;
    uint32_t incarnation;
    vigil_time_t state_since;
    const uint8_t *meta;
    size_t meta_len;
};

/* Members known, this one excluded. */
VIGIL_EXPORT size_t vigil_swim_member_count(const struct vigil_swim *s);
VIGIL_EXPORT bool vigil_swim_member_at(const struct vigil_swim *s, size_t i,
                                       struct vigil_swim_member *out);
VIGIL_EXPORT bool vigil_swim_find(const struct vigil_swim *s, const char *id,
                                  struct vigil_swim_member *out);
VIGIL_EXPORT uint32_t vigil_swim_incarnation(const struct vigil_swim *s);
/* Lifeguard's local health multiplier now (0: healthy). */
VIGIL_EXPORT uint32_t vigil_swim_awareness(const struct vigil_swim *s);
VIGIL_EXPORT const struct vigil_swim_stats *vigil_swim_stats(const struct vigil_swim *s);

/*
 * Lifeguard's arithmetic, exposed for the tests (docs/peer.md):
 * the awareness score after applying delta (clamped to [0, max - 1]), and
 * the suspicion timeout with c independent confirmations, k expected,
 * between min and max, floored to the millisecond.
 */
VIGIL_EXPORT uint32_t vigil_swim_awareness_apply(uint32_t score, int delta, uint32_t max);
VIGIL_EXPORT vigil_time_t vigil_swim_suspicion_timeout(uint32_t c, uint32_t k, vigil_time_t min,
                                                       vigil_time_t max);

#ifdef __cplusplus
}
#endif

#endif
