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

/*
 * Sealed datagrams (encrypt, docs/peer.md "Encryption"): the nonce is the
 * caller's 16-byte random prefix and a 64-bit counter; a sealed datagram
 * carries the 24-byte nonce and a 16-byte Poly1305 tag instead of the
 * 16-byte SipHash tag, so it takes 24 bytes more than the same datagram
 * tagged.
 */
#define VIGIL_SWIM_NONCE_PREFIX_LEN 16
#define VIGIL_SWIM_SEAL_OVERHEAD    40 /* nonce (24) and tag (16) */

/*
 * Signed leaves (docs/peer.md "Signed leaves"): Ed25519 keys, as
 * libsodium's crypto_sign makes them. A member certificate is
 *
 *   version (1) || id length (1..64) || id || member public key (32)
 *   || the CA's signature (64) over "vigil swim cert v1" and every byte
 *   before it
 *
 * 98 + id length bytes, at most VIGIL_SWIM_CERT_MAX.
 */
#define VIGIL_SWIM_SIGN_PK_LEN  32
#define VIGIL_SWIM_SIGN_SK_LEN  64
#define VIGIL_SWIM_SIG_LEN      64
#define VIGIL_SWIM_CERT_VERSION 1
#define VIGIL_SWIM_CERT_MAX     (2 + VIGIL_ID_MAX + VIGIL_SWIM_SIGN_PK_LEN + VIGIL_SWIM_SIG_LEN)

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
    /*
     * Every datagram sealed (XChaCha20-Poly1305 under a key derived from
     * the cluster key) instead of tagged: needs has_key. A member with
     * encrypt refuses datagrams in clear, and one without it refuses
     * sealed ones (both counted as auth_failed), so a whole cluster turns
     * it on together.
     */
    bool encrypt;
    /*
     * With encrypt: 16 random bytes, drawn anew from the OS's generator
     * (randombytes_buf) every time a member is made, never all zero
     * (-VIGIL_EINVAL). The nonce of each sealed datagram is this prefix
     * and a counter from 1: it never repeats within a member's life, and
     * the random prefix keeps members, and a member's restarts, apart.
     */
    uint8_t nonce_prefix[VIGIL_SWIM_NONCE_PREFIX_LEN];
    /*
     * This member's own signing key (has_sign_key) and its certificate
     * from the cluster's CA (vigil peer-cert issue): its leave is signed
     * with them, and carries both. The certificate must name this
     * member's id and the public key of sign_sk (-VIGIL_EINVAL).
     */
    bool has_sign_key;
    uint8_t sign_sk[VIGIL_SWIM_SIGN_SK_LEN];
    uint8_t cert[VIGIL_SWIM_CERT_MAX];
    size_t cert_len;
    /*
     * The CA's public key (has_leave_ca; it checks signed alives too, see
     * require_signed_alive): a signed leave of member X is
     * taken only if its certificate names X, verifies under this key, and
     * X's signature over the leave verifies; a signed leave that fails is
     * ignored and counted (leaves_refused). With require_signed_leave
     * (which needs has_leave_ca) an unsigned leave is refused too, from
     * gossip and from anti-entropy alike; without it an unsigned leave is
     * taken as before (a cluster moving to signed leaves).
     */
    bool has_leave_ca;
    uint8_t leave_ca_pk[VIGIL_SWIM_SIGN_PK_LEN];
    bool require_signed_leave;
    /*
     * Signed alives (docs/peer.md, "Signed alives"): a member with
     * has_sign_key signs every alive of its own (its incarnation, address
     * and metadata), refutations included, and members keep and hand on
     * each member's signed alive as they do a leave's proof. With
     * has_leave_ca an alive that is news (a new member, or a higher
     * incarnation) and signed is checked as a leave is, and refused when
     * it fails (alives_refused); with require_signed_alive (which needs
     * has_leave_ca) an unsigned one is refused too, so that nobody but a
     * member itself can refute for it, bring it back from left, or raise
     * its incarnation.
     */
    bool require_signed_alive;
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
    /* Leaves ignored: a signature or certificate that failed, or none where one is required. */
    uint64_t leaves_refused;
    /* Alives ignored: as leaves_refused (require_signed_alive for unsigned ones). */
    uint64_t alives_refused;
    /* Suspicions and deaths ignored: with signed alives, at an incarnation never signed. */
    uint64_t accusations_refused;
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
/*
 * Leaves: tells the others, who mark it left (the caller sends, then
 * stops). With has_sign_key the leave is signed (docs/peer.md, "Signed
 * leaves"); without it, members that require signed leaves refuse it and
 * will find this member dead instead.
 */
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

/* ---- member certificates ---- */

struct vigil_swim_cert {
    char id[VIGIL_ID_MAX + 1];
    uint8_t pk[VIGIL_SWIM_SIGN_PK_LEN]; /* the member's public key */
};

/*
 * Makes the certificate of member id with public key member_pk, signed
 * with the CA's secret key ca_sk, into cert (cap bytes). Returns its
 * length, -VIGIL_EBADID, or -VIGIL_ETOOBIG when cap is too small.
 */
VIGIL_EXPORT int vigil_swim_cert_issue(const uint8_t ca_sk[VIGIL_SWIM_SIGN_SK_LEN], const char *id,
                                       const uint8_t member_pk[VIGIL_SWIM_SIGN_PK_LEN],
                                       uint8_t *cert, size_t cap);
/*
 * Reads a certificate's id and public key (out may be NULL), without
 * checking its signature: 0, or -VIGIL_EBADFIELD if it is not one whole
 * certificate (wrong version, bad id, wrong length).
 */
VIGIL_EXPORT int vigil_swim_cert_parse(const uint8_t *cert, size_t len,
                                       struct vigil_swim_cert *out);
/* As vigil_swim_cert_parse, and the CA's signature checked: -VIGIL_EAUTH if it fails. */
VIGIL_EXPORT int vigil_swim_cert_verify(const uint8_t ca_pk[VIGIL_SWIM_SIGN_PK_LEN],
                                        const uint8_t *cert, size_t len,
                                        struct vigil_swim_cert *out);

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
