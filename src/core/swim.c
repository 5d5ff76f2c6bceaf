/*
 * SWIM with Lifeguard (swim.h; docs/peer.md has the protocol).
 *
 * A protocol period: the member probes the next member of a shuffled
 * round-robin list (every member is probed once a pass, in a new order
 * each pass) with a ping and waits probe_timeout for its ack. Without
 * one it asks indirect_checks other members to probe it (ping-req); they
 * relay the ack, or answer with a nack when they got none (Lifeguard), so
 * that a member whose own messages are lost can tell that from a dead
 * target. Without any ack by the end of the period the target is
 * suspected, and the suspicion is gossiped.
 *
 * A suspicion becomes a death when its timeout runs out. The timeout
 * shrinks with independent confirmations (Lifeguard's dynamic suspicion,
 * from Max down to Min as log(C + 1) / log(K + 1)). A suspected member
 * that hears of it refutes with a higher incarnation. A death heard from
 * another member is taken only for a member this one already suspects:
 * it ends the suspicion at once. For one believed alive it is only a
 * suspicion here, which the member can refute: so no member can be
 * declared dead by a single other's word, only by the protocol's own
 * evidence (a suspicion nobody refuted).
 *
 * Lifeguard's local health multiplier (awareness) stretches this
 * member's own probe interval and timeout while its probes fail, its
 * nacks go missing or it has to refute suspicions of itself: a slow
 * member probes less and waits longer rather than accusing healthy ones.
 *
 * Updates (alive, suspect, dead, left) are piggybacked on every message,
 * fewest transmissions first, each sent retransmit_mult * ceil(log10(n+1))
 * times, and gossiped to gossip_nodes members every gossip_interval while
 * any are pending. Every sync_interval (scaled up with the cluster's size)
 * the whole state is exchanged with one member, so that a partition
 * heals.
 *
 * Datagrams: the layout is in docs/peer.md; each is tagged with the
 * cluster key's tag key (SipHash-2-4-128), and the decoder checks the tag
 * before it reads anything past the header. With encrypt, everything after
 * the 8-byte header is sealed instead (XChaCha20-Poly1305 under a key of
 * its own, derived from the cluster key), and opened before it is read.
 *
 * Signed leaves: a member with a signing key and a certificate from the
 * cluster's CA signs its leave (the cluster key's fingerprint, its id and
 * its incarnation); the leave carries the certificate and the signature,
 * and every member that takes it keeps both with the member's left state,
 * so that anti-entropy hands on the proof with the state. A member with
 * the CA's public key checks both before it takes a leave. Alives are
 * signed the same way (incarnation, address, metadata), kept with the
 * member's state and checked when they are news, so that with
 * require_signed_alive nobody but a member itself refutes for it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <vigil/swim.h>

#include "idtable.h"

/* ---- constants ---- */

#define SWIM_MAGIC0    0x56
#define SWIM_MAGIC1    0x47
#define SWIM_VERSION   3
#define SWIM_HDR       8 /* magic, version, type, flags, sender id length, reserved (2) */
#define SWIM_FLAG_AUTH 0x02
#define SWIM_TAG_LEN   16
/* Everything after the header sealed; no SipHash tag (docs/peer.md "Encryption"). */
#define SWIM_FLAG_SEALED 0x04
#define SWIM_NONCE_LEN   24
#define SWIM_SEAL_TAG    16
/* The seal key: subkey 1 of the cluster key under a context no other key of vigil's uses. */
#define SWIM_SEAL_SUBKEY_ID 1
#define SWIM_SEAL_CONTEXT   "vigilswm"
_Static_assert(sizeof SWIM_SEAL_CONTEXT - 1 == crypto_kdf_CONTEXTBYTES, "KDF context length");
_Static_assert(SWIM_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
               "an XChaCha20 nonce");
_Static_assert(SWIM_SEAL_TAG == crypto_aead_xchacha20poly1305_ietf_ABYTES, "a Poly1305 tag");
_Static_assert(VIGIL_SWIM_SEAL_OVERHEAD == SWIM_NONCE_LEN + SWIM_SEAL_TAG, "seal overhead");
_Static_assert(VIGIL_SWIM_NONCE_PREFIX_LEN + 8 == SWIM_NONCE_LEN, "nonce: prefix and counter");
/* A sealed datagram opens into at most this many bytes (its header included). */
#define SWIM_PLAIN_MAX 1280

/* Signed leaves: what the CA and a leaving member sign, after these domain strings. */
#define SWIM_CERT_DOMAIN  "vigil swim cert v1"
#define SWIM_LEAVE_DOMAIN "vigil swim leave v1"
#define SWIM_ALIVE_DOMAIN "vigil swim alive v1"
/* A leave's proof: the certificate, then the member's signature. */
#define SWIM_PROOF_MAX (VIGIL_SWIM_CERT_MAX + VIGIL_SWIM_SIG_LEN)
_Static_assert(SWIM_PROOF_MAX <= UINT8_MAX, "a proof's length fits in a byte");
_Static_assert(VIGIL_SWIM_SIGN_PK_LEN == crypto_sign_PUBLICKEYBYTES, "Ed25519 public key");
_Static_assert(VIGIL_SWIM_SIGN_SK_LEN == crypto_sign_SECRETKEYBYTES, "Ed25519 secret key");
_Static_assert(VIGIL_SWIM_SIG_LEN == crypto_sign_BYTES, "Ed25519 signature");

enum swim_msg {
    MSG_PING = 1,     /* seq, target id: "are you there?" */
    MSG_ACK = 2,      /* seq */
    MSG_PING_REQ = 3, /* seq, target id, target address: probe it for me */
    MSG_NACK = 4,     /* seq: I asked it and got nothing */
    MSG_GOSSIP = 5,   /* updates only */
    MSG_SYNC = 6,     /* the sender's state, as updates; answer with yours */
    MSG_SYNC_REPLY = 7,
};

/*
 * UPD_LEFT_SIGNED and UPD_ALIVE_SIGNED are a left and an alive with their
 * proofs (certificate, signature); once read, a UPD_LEFT or a UPD_ALIVE
 * with a proof.
 */
enum swim_kind {
    UPD_ALIVE = 1,
    UPD_SUSPECT = 2,
    UPD_DEAD = 3,
    UPD_LEFT = 4,
    UPD_LEFT_SIGNED = 5,
    UPD_ALIVE_SIGNED = 6,
};

/* struct vigil_addr's families (Linux's AF_INET and AF_INET6; the core includes no socket header).
 */
#define SWIM_AF_INET  2
#define SWIM_AF_INET6 10

/* Independent confirmations remembered per suspicion (each sender once). */
#define SWIM_CONFIRM_MAX 8
/* Probes in flight as an intermediary (ping-req we relay), at most. */
#define SWIM_RELAYS_MAX 64
/* Outgoing datagrams queued, at most (a sync of a large cluster is many). */
#define SWIM_OUT_MAX    4096
#define SWIM_EVENTS_MAX 65536
/* With signed alives, the most an accusation may lead this member's own incarnation by. */
#define SWIM_JUMP_MAX (1u << 20)

/* ---- the member table ---- */

struct member {
    const char *id;         /* interned by the caller (cfg.intern), or allocated here */
    struct vigil_addr addr; /* 19 bytes */
    uint8_t state;          /* enum vigil_state; 0: not in use */
    uint32_t incarnation;
    uint32_t susp; /* its suspicion (index in susp), or UINT32_MAX */
    vigil_time_t state_since;
    /*
     * meta_len bytes of metadata, then proof_len bytes of the proof of
     * the member's state: of its leave while it is left, of its alive
     * (incarnation, address, metadata) otherwise; one allocation, so that
     * the record keeps its 64 bytes. NULL: neither.
     */
    uint8_t *meta;
    uint8_t meta_len;
    uint8_t proof_len;
};

/* A suspicion in progress. */
struct suspicion {
    uint32_t member;
    uint32_t k;     /* confirmations expected */
    uint8_t n_from; /* who suspected it (hashes), the first the accuser */
    uint64_t from[SWIM_CONFIRM_MAX];
    vigil_time_t start, deadline;
};

/* An update waiting to be disseminated: the latest about one member (or this one). */
struct update {
    uint32_t member; /* index, or UINT32_MAX: this member itself */
    uint8_t kind;
    uint32_t incarnation;
    char from[VIGIL_ID_MAX + 1]; /* suspect, dead: the accuser */
    uint32_t transmits;
};

/* A probe we make for another member (a ping-req). */
struct relay {
    bool used;
    uint32_t our_seq, their_seq;
    struct vigil_addr requester;
    vigil_time_t deadline;
};

struct outmsg {
    struct vigil_addr to;
    uint16_t len;
    uint8_t buf[1280];
};

struct vigil_swim {
    struct vigil_swim_config cfg;
    struct vigil_allocator al;
    uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN];
    uint8_t seal[crypto_aead_xchacha20poly1305_ietf_KEYBYTES]; /* with cfg.encrypt */
    uint64_t seal_count;                                       /* the nonces' counter */
    uint8_t fingerprint[VIGIL_WIRE_FINGERPRINT_LEN]; /* of the cluster key, in signatures */
    uint8_t self_proof[SWIM_PROOF_MAX];              /* this member's signed leave */
    uint8_t self_proof_len;
    uint8_t self_alive[SWIM_PROOF_MAX]; /* its signed alive at its incarnation now */
    uint8_t self_alive_len;
    char self[VIGIL_ID_MAX + 1];
    size_t self_len;
    uint32_t incarnation;
    bool leaving;
    uint8_t meta[VIGIL_SWIM_META_MAX];
    uint8_t meta_len;
    uint64_t rng;

    struct member *m;
    uint32_t n, cap;
    struct vigil__idtable ids;
    uint32_t live; /* members alive or suspect */

    /* Probing. */
    uint32_t *order; /* the round-robin list of member indexes */
    uint32_t n_order, order_at;
    uint32_t seq;
    vigil_time_t next_probe;
    uint32_t probe_target; /* UINT32_MAX: no probe in flight */
    uint32_t probe_seq;
    vigil_time_t probe_timeout_at, probe_end;
    bool probe_acked, indirect_sent;
    uint32_t nacks_expected, nacks_got;
    uint32_t awareness;

    /* Suspicions in progress (few at a time): their deadlines are scanned. */
    struct suspicion *susp;
    uint32_t n_susp, cap_susp;

    struct relay relays[SWIM_RELAYS_MAX];

    struct update *upd;
    uint32_t n_upd, cap_upd;
    vigil_time_t next_gossip, next_sync, next_reconnect;

    struct outmsg *out; /* a ring of out_cap, grown up to SWIM_OUT_MAX */
    uint32_t out_head, out_len, out_cap;

    struct vigil_swim_event *ev;
    uint32_t ev_head, ev_len, ev_cap;
    uint64_t ev_seq;

    struct vigil_swim_stats stats;
};

/* ---- small things ---- */

static void *s_calloc(const struct vigil_allocator *al, size_t n, size_t size)
{
    return al->calloc(al->ud, n, size);
}

static void s_free(const struct vigil_allocator *al, void *p)
{
    if (p)
        al->free(al->ud, p);
}

static void *libc_calloc(void *ud, size_t n, size_t size)
{
    (void)ud;
    return calloc(n, size);
}

static void libc_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

/* splitmix64: the member's random choices, replayable from the seed. */
static uint64_t rnd(struct vigil_swim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t rnd_below(struct vigil_swim *s, uint32_t n)
{
    return n ? (uint32_t)(rnd(s) % n) : 0;
}

/* Copies an id (or "" for NULL) into a VIGIL_ID_MAX + 1 buffer. */
static void copy_id(char *dst, const char *src)
{
    size_t n = src ? strnlen(src, VIGIL_ID_MAX) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static uint64_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return h;
}

static const char *member_id_of(const void *ctx, uint32_t idx)
{
    return ((const struct vigil_swim *)ctx)->m[idx].id;
}

static uint32_t find(const struct vigil_swim *s, const char *id)
{
    return vigil__idtable_find(&s->ids, id, strlen(id), member_id_of);
}

static uint32_t ceil_log10(uint32_t n)
{
    uint32_t k = 0;
    for (uint64_t p = 1; p < n; p *= 10)
        k++;
    return k ? k : 1;
}

/* ---- Lifeguard's arithmetic ---- */

uint32_t vigil_swim_awareness_apply(uint32_t score, int delta, uint32_t max)
{
    int64_t v = (int64_t)score + delta;
    if (v < 0)
        v = 0;
    if (max > 0 && v > (int64_t)max - 1)
        v = (int64_t)max - 1;
    return (uint32_t)v;
}

vigil_time_t vigil_swim_suspicion_timeout(uint32_t c, uint32_t k, vigil_time_t min,
                                          vigil_time_t max)
{
    double frac = k > 0 ? log((double)c + 1.0) / log((double)k + 1.0) : 1.0;
    double raw = (double)max - (double)(max - min) * frac;
    /* Floored to the millisecond, then never below min (memberlist's reading). */
    vigil_time_t t = (vigil_time_t)floor(raw / (double)VIGIL_NSEC_PER_MSEC) * VIGIL_NSEC_PER_MSEC;
    return t < min ? min : t;
}

static void awareness(struct vigil_swim *s, int delta)
{
    if (s->cfg.lifeguard)
        s->awareness = vigil_swim_awareness_apply(s->awareness, delta, s->cfg.awareness_max);
}

static vigil_time_t scaled(const struct vigil_swim *s, vigil_time_t t)
{
    return t * (vigil_time_t)(s->awareness + 1);
}

/* The suspicion timeout's bounds for a cluster of n members (memberlist's). */
static void suspicion_bounds(const struct vigil_swim *s, vigil_time_t *min, vigil_time_t *max,
                             uint32_t *k)
{
    uint32_t n = s->live + 1;
    double scale = n > 1 ? log10((double)n) : 0;
    if (scale < 1)
        scale = 1;
    *min = (vigil_time_t)((double)s->cfg.suspicion_mult * scale * (double)s->cfg.probe_interval);
    *max = s->cfg.lifeguard ? *min * (vigil_time_t)s->cfg.suspicion_max_mult : *min;
    *k = s->cfg.suspicion_mult > 2 ? s->cfg.suspicion_mult - 2 : 0;
    if (n < 2 || n - 2 < *k)
        *k = 0;
}

/* ---- certificates and signed leaves ---- */

/* A certificate's signed part: version, id length, id, member public key. */
static size_t cert_body_len(size_t id_len)
{
    return 2 + id_len + VIGIL_SWIM_SIGN_PK_LEN;
}

/* What the CA signs: the domain string, then the certificate's signed part. */
static size_t cert_message(const uint8_t *cert, size_t body, uint8_t *msg)
{
    size_t dl = sizeof SWIM_CERT_DOMAIN - 1;
    memcpy(msg, SWIM_CERT_DOMAIN, dl);
    memcpy(msg + dl, cert, body);
    return dl + body;
}

int vigil_swim_cert_issue(const uint8_t ca_sk[VIGIL_SWIM_SIGN_SK_LEN], const char *id,
                          const uint8_t member_pk[VIGIL_SWIM_SIGN_PK_LEN], uint8_t *cert,
                          size_t cap)
{
    size_t n = id ? strlen(id) : 0;
    if (!id || !vigil_id_valid(id, n))
        return -VIGIL_EBADID;
    size_t body = cert_body_len(n);
    if (cap < body + VIGIL_SWIM_SIG_LEN)
        return -VIGIL_ETOOBIG;
    cert[0] = VIGIL_SWIM_CERT_VERSION;
    cert[1] = (uint8_t)n;
    memcpy(cert + 2, id, n);
    memcpy(cert + 2 + n, member_pk, VIGIL_SWIM_SIGN_PK_LEN);
    uint8_t msg[sizeof SWIM_CERT_DOMAIN + VIGIL_SWIM_CERT_MAX];
    size_t ml = cert_message(cert, body, msg);
    crypto_sign_detached(cert + body, NULL, msg, ml, ca_sk);
    return (int)(body + VIGIL_SWIM_SIG_LEN);
}

int vigil_swim_cert_parse(const uint8_t *cert, size_t len, struct vigil_swim_cert *out)
{
    if (len < 2 || cert[0] != VIGIL_SWIM_CERT_VERSION)
        return -VIGIL_EBADFIELD;
    size_t n = cert[1];
    if (n == 0 || n > VIGIL_ID_MAX || len != cert_body_len(n) + VIGIL_SWIM_SIG_LEN ||
        !vigil_id_valid((const char *)cert + 2, n))
        return -VIGIL_EBADFIELD;
    if (out) {
        memcpy(out->id, cert + 2, n);
        out->id[n] = '\0';
        memcpy(out->pk, cert + 2 + n, VIGIL_SWIM_SIGN_PK_LEN);
    }
    return 0;
}

int vigil_swim_cert_verify(const uint8_t ca_pk[VIGIL_SWIM_SIGN_PK_LEN], const uint8_t *cert,
                           size_t len, struct vigil_swim_cert *out)
{
    struct vigil_swim_cert c;
    int rc = vigil_swim_cert_parse(cert, len, &c);
    if (rc != 0)
        return rc;
    size_t body = len - VIGIL_SWIM_SIG_LEN;
    uint8_t msg[sizeof SWIM_CERT_DOMAIN + VIGIL_SWIM_CERT_MAX];
    size_t ml = cert_message(cert, body, msg);
    if (crypto_sign_verify_detached(cert + body, msg, ml, ca_pk) != 0)
        return -VIGIL_EAUTH;
    if (out)
        *out = c;
    return 0;
}

/*
 * What a leaving member signs: the domain string, the cluster key's
 * fingerprint (zeros without a key: a leave of one cluster is worth
 * nothing in another), its id (length, bytes) and the incarnation it
 * leaves at (big-endian).
 */
static size_t leave_message(const struct vigil_swim *s, const char *id, uint32_t inc, uint8_t *msg)
{
    size_t dl = sizeof SWIM_LEAVE_DOMAIN - 1, n = strlen(id);
    memcpy(msg, SWIM_LEAVE_DOMAIN, dl);
    memcpy(msg + dl, s->fingerprint, sizeof s->fingerprint);
    size_t at = dl + sizeof s->fingerprint;
    msg[at++] = (uint8_t)n;
    memcpy(msg + at, id, n);
    at += n;
    msg[at++] = (uint8_t)(inc >> 24);
    msg[at++] = (uint8_t)(inc >> 16);
    msg[at++] = (uint8_t)(inc >> 8);
    msg[at++] = (uint8_t)inc;
    return at;
}
#define SWIM_LEAVE_MSG_MAX                                                                         \
    (sizeof SWIM_LEAVE_DOMAIN + VIGIL_WIRE_FINGERPRINT_LEN + VIGIL_ID_MAX + 5)

/*
 * A proof (a certificate, then a signature) of member id's message msg:
 * the certificate names id and verifies under the CA's key, and the
 * signature verifies under the certificate's key. Without the CA's key
 * there is nothing to check it with: taken.
 */
static bool proof_ok(const struct vigil_swim *s, const char *id, const uint8_t *proof, size_t plen,
                     const uint8_t *msg, size_t ml)
{
    if (!s->cfg.has_leave_ca)
        return true;
    struct vigil_swim_cert c;
    if (plen < VIGIL_SWIM_SIG_LEN)
        return false;
    size_t cl = plen - VIGIL_SWIM_SIG_LEN;
    if (vigil_swim_cert_verify(s->cfg.leave_ca_pk, proof, cl, &c) != 0 || strcmp(c.id, id) != 0)
        return false;
    return crypto_sign_verify_detached(proof + cl, msg, ml, c.pk) == 0;
}

/*
 * Whether a leave of member id at incarnation inc, with its proof (NULL:
 * unsigned), may be taken: an unsigned one unless signatures are required;
 * a signed one when its certificate names id and verifies under the CA's
 * key and its signature verifies under the certificate's key (without the
 * CA's key there is nothing to check it with: taken, and its proof kept
 * for the members that can).
 */
static bool leave_ok(const struct vigil_swim *s, const char *id, uint32_t inc, const uint8_t *proof,
                     size_t plen)
{
    if (!proof)
        return !s->cfg.require_signed_leave;
    uint8_t msg[SWIM_LEAVE_MSG_MAX];
    return proof_ok(s, id, proof, plen, msg, leave_message(s, id, inc, msg));
}

/*
 * What a member signs with its alive: the domain string, the cluster
 * key's fingerprint, then the alive's fields as the update carries them
 * (incarnation, id length, id, address family, port, address, metadata
 * length, metadata). Returns the length.
 */
static size_t alive_message(const struct vigil_swim *s, uint32_t inc, const char *id,
                            const struct vigil_addr *a, const uint8_t *meta, uint8_t ml,
                            uint8_t *msg);
#define SWIM_ALIVE_MSG_MAX                                                                         \
    (sizeof SWIM_ALIVE_DOMAIN + VIGIL_WIRE_FINGERPRINT_LEN + 4 + 1 + VIGIL_ID_MAX + 3 + 16 + 1 +   \
     VIGIL_SWIM_META_MAX)

/*
 * Whether an alive that would be taken may be: as a leave (leave_ok), the
 * signature over the alive's fields; unsigned ones unless
 * require_signed_alive.
 */
static bool alive_ok(const struct vigil_swim *s, uint32_t inc, const char *id,
                     const struct vigil_addr *a, const uint8_t *meta, uint8_t ml,
                     const uint8_t *proof, size_t plen)
{
    if (!proof)
        return !s->cfg.require_signed_alive;
    uint8_t msg[SWIM_ALIVE_MSG_MAX];
    return proof_ok(s, id, proof, plen, msg, alive_message(s, inc, id, a, meta, ml, msg));
}

/* Signs this member's alive at its incarnation now (with a signing key; after every change). */
static void sign_alive(struct vigil_swim *s)
{
    if (!s->cfg.has_sign_key)
        return;
    uint8_t msg[SWIM_ALIVE_MSG_MAX];
    size_t ml = alive_message(s, s->incarnation, s->self, &s->cfg.addr, s->meta, s->meta_len, msg);
    memcpy(s->self_alive, s->cfg.cert, s->cfg.cert_len);
    crypto_sign_detached(s->self_alive + s->cfg.cert_len, NULL, msg, ml, s->cfg.sign_sk);
    s->self_alive_len = (uint8_t)(s->cfg.cert_len + VIGIL_SWIM_SIG_LEN);
}

/* ---- events and the outgoing queue ---- */

/* Doubles a ring of *cap elements of size sz (head, len kept in order) up to max; false if not. */
static bool ring_grow(struct vigil_swim *s, void **ring, uint32_t *head, uint32_t len,
                      uint32_t *cap, size_t sz, uint32_t max)
{
    if (*cap >= max)
        return false;
    uint32_t ncap = *cap ? *cap * 2 : 8;
    if (ncap > max)
        ncap = max;
    uint8_t *n = s_calloc(&s->al, ncap, sz);
    if (!n)
        return false;
    for (uint32_t i = 0; i < len; i++)
        memcpy(n + i * sz, (uint8_t *)*ring + ((*head + i) % *cap) * sz, sz);
    s_free(&s->al, *ring);
    *ring = n;
    *head = 0;
    *cap = ncap;
    return true;
}

static void event(struct vigil_swim *s, vigil_time_t now, const struct member *m,
                  enum vigil_state old, const char *reason, uint32_t confirmations)
{
    if (s->ev_len == s->ev_cap && !ring_grow(s, (void **)&s->ev, &s->ev_head, s->ev_len, &s->ev_cap,
                                             sizeof(*s->ev), SWIM_EVENTS_MAX))
        return; /* the caller does not drain: the state itself stands */
    struct vigil_swim_event *e = &s->ev[(s->ev_head + s->ev_len++) % s->ev_cap];
    memset(e, 0, sizeof(*e));
    e->seq = ++s->ev_seq;
    e->time = now;
    copy_id(e->id, m->id);
    e->old_state = old;
    e->new_state = (enum vigil_state)m->state;
    e->incarnation = m->incarnation;
    e->reason = reason;
    e->confirmations = confirmations;
}

bool vigil_swim_poll_event(struct vigil_swim *s, struct vigil_swim_event *ev)
{
    if (s->ev_len == 0)
        return false;
    *ev = s->ev[s->ev_head];
    s->ev_head = (s->ev_head + 1) % s->ev_cap;
    s->ev_len--;
    return true;
}

bool vigil_swim_poll_send(struct vigil_swim *s, struct vigil_swim_send *out)
{
    if (s->out_len == 0)
        return false;
    struct outmsg *o = &s->out[s->out_head];
    out->to = o->to;
    out->len = o->len;
    memcpy(out->buf, o->buf, o->len);
    s->out_head = (s->out_head + 1) % s->out_cap;
    s->out_len--;
    return true;
}

/* ---- updates ---- */

static uint32_t retransmit_limit(const struct vigil_swim *s)
{
    return s->cfg.retransmit_mult * ceil_log10(s->live + 2);
}

/* Queues an update about member idx (UINT32_MAX: this one), replacing an older one. */
static void queue_update(struct vigil_swim *s, uint32_t idx, uint8_t kind, uint32_t inc,
                         const char *from)
{
    struct update *u = NULL;
    for (uint32_t i = 0; i < s->n_upd; i++)
        if (s->upd[i].member == idx) {
            u = &s->upd[i];
            break;
        }
    if (!u) {
        if (s->n_upd == s->cap_upd) {
            uint32_t cap = s->cap_upd ? s->cap_upd * 2 : 64;
            struct update *nu = s_calloc(&s->al, cap, sizeof(*nu));
            if (!nu)
                return;
            if (s->upd)
                memcpy(nu, s->upd, s->n_upd * sizeof(*nu));
            s_free(&s->al, s->upd);
            s->upd = nu;
            s->cap_upd = cap;
        }
        u = &s->upd[s->n_upd++];
    }
    u->member = idx;
    u->kind = kind;
    u->incarnation = inc;
    copy_id(u->from, from);
    u->transmits = 0;
}

/* ---- encoding ---- */

struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool full;
};

static void w_u8(struct wbuf *w, uint8_t v)
{
    if (w->len + 1 > w->cap) {
        w->full = true;
        return;
    }
    w->p[w->len++] = v;
}

static void w_u16(struct wbuf *w, uint16_t v)
{
    w_u8(w, (uint8_t)(v >> 8));
    w_u8(w, (uint8_t)v);
}

static void w_u32(struct wbuf *w, uint32_t v)
{
    w_u16(w, (uint16_t)(v >> 16));
    w_u16(w, (uint16_t)v);
}

static void w_bytes(struct wbuf *w, const void *b, size_t n)
{
    if (w->len + n > w->cap) {
        w->full = true;
        return;
    }
    if (n > 0)
        memcpy(w->p + w->len, b, n); /* b may be NULL when n is 0 (no metadata) */
    w->len += n;
}

static void w_id(struct wbuf *w, const char *id)
{
    size_t n = strlen(id);
    w_u8(w, (uint8_t)n);
    w_bytes(w, id, n);
}

static void w_addr(struct wbuf *w, const struct vigil_addr *a)
{
    w_u8(w, a->family == SWIM_AF_INET6 ? 6 : a->family ? 4 : 0);
    w_u16(w, a->port);
    w_bytes(w, a->addr, a->family == SWIM_AF_INET6 ? 16 : 4);
}

/*
 * The proof an update of kind (left or alive) about member (UINT32_MAX:
 * this one) travels with; *len 0: none. A member's stored proof is that of
 * its state: its leave while it is left, its alive otherwise.
 */
static const uint8_t *update_proof(const struct vigil_swim *s, uint8_t kind, uint32_t member,
                                   size_t *len)
{
    *len = 0;
    if (member == UINT32_MAX) {
        if (kind == UPD_LEFT)
            *len = s->self_proof_len;
        else if (kind == UPD_ALIVE)
            *len = s->self_alive_len;
        return kind == UPD_LEFT ? s->self_proof : s->self_alive;
    }
    const struct member *m = &s->m[member];
    bool left = m->state == VIGIL_STATE_LEFT;
    if ((kind == UPD_LEFT && left) || (kind == UPD_ALIVE && !left))
        *len = m->proof_len;
    return *len ? m->meta + m->meta_len : NULL;
}

/* The bytes an update takes. */
static size_t update_size(const struct vigil_swim *s, const struct update *u)
{
    const char *id = u->member == UINT32_MAX ? s->self : s->m[u->member].id;
    size_t n = 1 + 4 + 1 + strlen(id), pl;
    (void)update_proof(s, u->kind, u->member, &pl);
    n += pl;
    if (u->kind == UPD_ALIVE) {
        const struct vigil_addr *a = u->member == UINT32_MAX ? &s->cfg.addr : &s->m[u->member].addr;
        size_t ml = u->member == UINT32_MAX ? s->meta_len : s->m[u->member].meta_len;
        n += 3 + (a->family == SWIM_AF_INET6 ? 16 : 4) + 1 + ml;
    } else if (u->kind == UPD_SUSPECT || u->kind == UPD_DEAD) {
        n += 1 + strlen(u->from);
    }
    return n;
}

/*
 * An alive's fields after its kind: incarnation, id, address, metadata.
 * The same bytes are what an alive's signature covers.
 */
static void w_alive_body(struct wbuf *w, uint32_t inc, const char *id, const struct vigil_addr *a,
                         const uint8_t *meta, uint8_t ml)
{
    w_u32(w, inc);
    w_id(w, id);
    w_addr(w, a);
    w_u8(w, ml);
    w_bytes(w, meta, ml);
}

static size_t alive_message(const struct vigil_swim *s, uint32_t inc, const char *id,
                            const struct vigil_addr *a, const uint8_t *meta, uint8_t ml,
                            uint8_t *msg)
{
    size_t dl = sizeof SWIM_ALIVE_DOMAIN - 1;
    memcpy(msg, SWIM_ALIVE_DOMAIN, dl);
    memcpy(msg + dl, s->fingerprint, sizeof s->fingerprint);
    struct wbuf w = {.p = msg, .len = dl + sizeof s->fingerprint, .cap = SWIM_ALIVE_MSG_MAX};
    w_alive_body(&w, inc, id, a, meta, ml);
    return w.len;
}

static void w_update(struct vigil_swim *s, struct wbuf *w, uint8_t kind, uint32_t member,
                     uint32_t inc, const char *from)
{
    bool me = member == UINT32_MAX;
    size_t pl = 0;
    const uint8_t *proof = update_proof(s, kind, member, &pl);
    w_u8(w, !pl ? kind : kind == UPD_LEFT ? UPD_LEFT_SIGNED : UPD_ALIVE_SIGNED);
    if (kind == UPD_ALIVE) {
        w_alive_body(w, inc, me ? s->self : s->m[member].id, me ? &s->cfg.addr : &s->m[member].addr,
                     me ? s->meta : s->m[member].meta, me ? s->meta_len : s->m[member].meta_len);
        w_bytes(w, proof, pl);
        return;
    }
    w_u32(w, inc);
    w_id(w, me ? s->self : s->m[member].id);
    if (pl)
        w_bytes(w, proof, pl);
    if (kind == UPD_SUSPECT || kind == UPD_DEAD) {
        w_id(w, from ? from : "");
    }
}

/* Starts a datagram of type t with seq; the body follows. */
static void w_begin(struct vigil_swim *s, struct wbuf *w, uint8_t *buf, uint8_t type, uint32_t seq)
{
    w->p = buf;
    w->len = 0;
    /* What sealing or the tag adds comes off the room for updates. */
    size_t extra = s->cfg.encrypt ? VIGIL_SWIM_SEAL_OVERHEAD : s->cfg.has_key ? SWIM_TAG_LEN : 0;
    w->cap = (s->cfg.mtu < 1280 ? s->cfg.mtu : 1280) - extra;
    w->full = false;
    w_u8(w, SWIM_MAGIC0);
    w_u8(w, SWIM_MAGIC1);
    w_u8(w, SWIM_VERSION);
    w_u8(w, type);
    w_u8(w, s->cfg.encrypt ? SWIM_FLAG_SEALED : s->cfg.has_key ? SWIM_FLAG_AUTH : 0);
    w_u8(w, (uint8_t)s->self_len);
    w_u16(w, 0);
    w_u32(w, seq);
    w_bytes(w, s->self, s->self_len);
}

/*
 * Piggybacks pending updates, fewest transmissions first, each at most
 * once, as many as fit; first (the buddy system) the suspicion of member
 * `first`, if one is pending: a suspect is told before anyone else.
 */
static void w_piggyback(struct vigil_swim *s, struct wbuf *w, uint32_t first)
{
    size_t count_at = w->len;
    w_u8(w, 0);
    if (w->full)
        return;
    uint32_t n = 0;
    uint32_t limit = retransmit_limit(s);
    uint32_t taken[64];
    uint32_t n_taken = 0;
    if (first != UINT32_MAX && s->cfg.lifeguard && s->m[first].state == VIGIL_STATE_SUSPECT) {
        /* Always, whether or not the suspicion is still being disseminated. */
        struct update u = {
            .member = first, .kind = UPD_SUSPECT, .incarnation = s->m[first].incarnation};
        copy_id(u.from, s->self);
        if (w->len + update_size(s, &u) <= w->cap) {
            w_update(s, w, u.kind, first, u.incarnation, u.from);
            n++;
        }
        for (uint32_t i = 0; i < s->n_upd && n_taken < 64; i++)
            if (s->upd[i].member == first && s->upd[i].kind == UPD_SUSPECT)
                taken[n_taken++] = i; /* not twice */
    }
    while (n < 255 && n_taken < 64) {
        uint32_t best = UINT32_MAX;
        for (uint32_t i = 0; i < s->n_upd; i++) {
            bool used = false;
            for (uint32_t k = 0; k < n_taken && !used; k++)
                used = taken[k] == i;
            if (used || w->len + update_size(s, &s->upd[i]) > w->cap)
                continue;
            if (best == UINT32_MAX || s->upd[i].transmits < s->upd[best].transmits)
                best = i;
        }
        if (best == UINT32_MAX)
            break;
        struct update *u = &s->upd[best];
        w_update(s, w, u->kind, u->member, u->incarnation, u->from);
        taken[n_taken++] = best;
        n++;
    }
    w->p[count_at] = (uint8_t)n;
    s->stats.updates_sent += n;
    for (uint32_t k = 0; k < n_taken; k++)
        s->upd[taken[k]].transmits++;
    /* Updates sent as often as they need are done. */
    uint32_t j = 0;
    for (uint32_t i = 0; i < s->n_upd; i++)
        if (s->upd[i].transmits < limit)
            s->upd[j++] = s->upd[i];
    s->n_upd = j;
}

/*
 * Seals the datagram in w (header, then the rest in clear) into out: the
 * header, the nonce (the caller's random prefix, then the counter,
 * big-endian), the ciphertext of the rest and the Poly1305 tag, with the
 * header and the nonce as associated data. Returns its length.
 */
static size_t seal(struct vigil_swim *s, const struct wbuf *w, uint8_t *out)
{
    memcpy(out, w->p, SWIM_HDR);
    memcpy(out + SWIM_HDR, s->cfg.nonce_prefix, VIGIL_SWIM_NONCE_PREFIX_LEN);
    uint64_t c = ++s->seal_count;
    for (int i = 0; i < 8; i++)
        out[SWIM_HDR + VIGIL_SWIM_NONCE_PREFIX_LEN + i] = (uint8_t)(c >> (56 - 8 * i));
    size_t ad = SWIM_HDR + SWIM_NONCE_LEN;
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + ad, &clen, w->p + SWIM_HDR, w->len - SWIM_HDR,
                                               out, ad, NULL, out + SWIM_HDR, s->seal);
    return ad + (size_t)clen;
}

/* Tags (or seals) and queues the datagram. */
static void w_send(struct vigil_swim *s, struct wbuf *w, const struct vigil_addr *to)
{
    if (w->full || !to || to->family == 0)
        return;
    if (s->out_len == s->out_cap && !ring_grow(s, (void **)&s->out, &s->out_head, s->out_len,
                                               &s->out_cap, sizeof(*s->out), SWIM_OUT_MAX))
        return;
    struct outmsg *o = &s->out[(s->out_head + s->out_len++) % s->out_cap];
    o->to = *to;
    if (s->cfg.encrypt) {
        w->len = seal(s, w, o->buf);
        o->len = (uint16_t)w->len;
        s->stats.sent++;
        s->stats.bytes_sent += w->len;
        return;
    }
    if (s->cfg.has_key) {
        crypto_shorthash_siphashx24(w->p + w->len, w->p, w->len, s->mac);
        w->len += SWIM_TAG_LEN;
    }
    o->len = (uint16_t)w->len;
    memcpy(o->buf, w->p, w->len);
    s->stats.sent++;
    s->stats.bytes_sent += w->len;
}

static void send_simple(struct vigil_swim *s, uint8_t type, uint32_t seq,
                        const struct vigil_addr *to, uint32_t buddy, const char *target,
                        const struct vigil_addr *target_addr)
{
    uint8_t buf[1280];
    struct wbuf w;
    w_begin(s, &w, buf, type, seq);
    if (type == MSG_PING || type == MSG_PING_REQ)
        w_id(&w, target ? target : "");
    if (type == MSG_PING_REQ)
        w_addr(&w, target_addr);
    w_piggyback(s, &w, buddy);
    w_send(s, &w, to);
}

/* Sends the whole state to `to`, in as many datagrams as it takes. */
static void send_state(struct vigil_swim *s, uint8_t type, const struct vigil_addr *to)
{
    uint8_t buf[1280];
    struct wbuf w;
    uint32_t i = 0;
    bool me_done = false;
    s->stats.syncs++;
    while (!me_done || i < s->n) {
        w_begin(s, &w, buf, type, 0);
        size_t count_at = w.len;
        w_u8(&w, 0);
        uint8_t n = 0;
        if (!me_done) {
            w_update(s, &w, s->leaving ? UPD_LEFT : UPD_ALIVE, UINT32_MAX, s->incarnation, NULL);
            n++;
            me_done = true;
        }
        while (i < s->n && n < 255) {
            const struct member *m = &s->m[i];
            if (!m->state) {
                i++;
                continue;
            }
            struct update u = {.member = i,
                               .kind = m->state == VIGIL_STATE_ALIVE     ? UPD_ALIVE
                                       : m->state == VIGIL_STATE_SUSPECT ? UPD_SUSPECT
                                       : m->state == VIGIL_STATE_DEAD    ? UPD_DEAD
                                                                         : UPD_LEFT,
                               .incarnation = m->incarnation};
            copy_id(u.from, s->self);
            if (w.len + update_size(s, &u) > w.cap)
                break;
            /* A suspicion travels as this member's own word (it is one). */
            w_update(s, &w, u.kind, i, m->incarnation, s->self);
            n++;
            i++;
        }
        w.p[count_at] = n;
        w_send(s, &w, to);
        if (n == 0)
            break;
        /* A sync to a cluster larger than the queue waits for the next one. */
        if (s->out_len >= SWIM_OUT_MAX - 1)
            break;
    }
}

/* ---- the member table ---- */

static void probe_list_add(struct vigil_swim *s, uint32_t idx)
{
    /* At a random place, so that a new member is probed within one pass. */
    uint32_t at = rnd_below(s, s->n_order + 1);
    s->order[s->n_order++] = s->order[at];
    s->order[at] = idx;
}

static uint32_t add_member(struct vigil_swim *s, const char *id, vigil_time_t now)
{
    size_t len = strlen(id);
    if (s->n == s->cap) {
        if (s->cap >= s->cfg.max_members)
            return UINT32_MAX;
        uint32_t cap = s->cap ? s->cap * 2 : 16;
        if (cap > s->cfg.max_members)
            cap = s->cfg.max_members;
        struct member *nm = s_calloc(&s->al, cap, sizeof(*nm));
        uint32_t *no = s_calloc(&s->al, cap, sizeof(*no));
        if (!nm || !no) {
            s_free(&s->al, nm);
            s_free(&s->al, no);
            return UINT32_MAX;
        }
        if (s->m)
            memcpy(nm, s->m, s->n * sizeof(*nm));
        if (s->order)
            memcpy(no, s->order, s->n_order * sizeof(*no));
        s_free(&s->al, s->m);
        s_free(&s->al, s->order);
        s->m = nm;
        s->order = no;
        s->cap = cap;
    }
    const char *kept;
    if (s->cfg.intern) {
        kept = s->cfg.intern(s->cfg.intern_ud, id);
    } else {
        char *c = s_calloc(&s->al, 1, len + 1);
        if (c)
            memcpy(c, id, len);
        kept = c;
    }
    if (!kept)
        return UINT32_MAX;
    uint32_t idx = s->n;
    struct member *m = &s->m[idx];
    memset(m, 0, sizeof(*m));
    m->id = kept;
    m->susp = UINT32_MAX;
    m->state_since = now;
    if (vigil__idtable_insert(&s->ids, m->id, len, idx) != 0) {
        if (!s->cfg.intern)
            s_free(&s->al, (void *)kept);
        return UINT32_MAX;
    }
    s->n++;
    probe_list_add(s, idx);
    return idx;
}

/*
 * Keeps meta_len bytes of metadata and proof_len bytes of a leave's proof
 * for member m, in one allocation that follows their size (reused when
 * the size stays; meta may point into the old one). Out of memory: none.
 */
static void set_tail(struct vigil_swim *s, struct member *m, const uint8_t *meta, uint8_t meta_len,
                     const uint8_t *proof, uint8_t proof_len)
{
    size_t n = (size_t)meta_len + proof_len;
    uint8_t *p = m->meta;
    if (n != (size_t)m->meta_len + m->proof_len || (n && !p)) {
        p = n ? s_calloc(&s->al, 1, n) : NULL;
        if (n && !p) {
            s_free(&s->al, m->meta);
            m->meta = NULL;
            m->meta_len = m->proof_len = 0;
            return;
        }
    }
    if (meta_len)
        memmove(p, meta, meta_len);
    if (proof_len)
        memmove(p + meta_len, proof, proof_len);
    if (p != m->meta)
        s_free(&s->al, m->meta);
    m->meta = p;
    m->meta_len = meta_len;
    m->proof_len = proof_len;
}

static void set_state(struct vigil_swim *s, uint32_t idx, enum vigil_state to, vigil_time_t now,
                      const char *reason, uint32_t confirmations)
{
    struct member *m = &s->m[idx];
    enum vigil_state old = (enum vigil_state)m->state;
    bool was_live = old == VIGIL_STATE_ALIVE || old == VIGIL_STATE_SUSPECT;
    bool is_live = to == VIGIL_STATE_ALIVE || to == VIGIL_STATE_SUSPECT;
    if (was_live && !is_live)
        s->live--;
    else if (!was_live && is_live)
        s->live++;
    m->state = (uint8_t)to;
    m->state_since = now;
    if (to != VIGIL_STATE_SUSPECT && m->susp != UINT32_MAX) {
        /* The suspicion ends: the last one takes its place. */
        uint32_t at = m->susp;
        s->susp[at] = s->susp[--s->n_susp];
        if (at < s->n_susp)
            s->m[s->susp[at].member].susp = at;
        m->susp = UINT32_MAX;
    }
    event(s, now, m, old, reason, confirmations);
}

/* Starts a suspicion of member idx; NULL when out of memory. */
static struct suspicion *susp_new(struct vigil_swim *s, uint32_t idx)
{
    if (s->m[idx].susp != UINT32_MAX)
        return &s->susp[s->m[idx].susp];
    if (s->n_susp == s->cap_susp) {
        uint32_t cap = s->cap_susp ? s->cap_susp * 2 : 16;
        struct suspicion *ns = s_calloc(&s->al, cap, sizeof(*ns));
        if (!ns)
            return NULL;
        if (s->susp)
            memcpy(ns, s->susp, s->n_susp * sizeof(*ns));
        s_free(&s->al, s->susp);
        s->susp = ns;
        s->cap_susp = cap;
    }
    struct suspicion *p = &s->susp[s->n_susp];
    memset(p, 0, sizeof(*p));
    p->member = idx;
    s->m[idx].susp = s->n_susp++;
    return p;
}

/* Suspects member idx at incarnation inc on from's word (from: an id, this one's included). */
static void suspect(struct vigil_swim *s, uint32_t idx, uint32_t inc, const char *from,
                    vigil_time_t now)
{
    struct member *m = &s->m[idx];
    uint64_t fh = id_hash(from);
    if (m->state == VIGIL_STATE_SUSPECT && inc == m->incarnation && m->susp != UINT32_MAX) {
        /* A confirmation, if independent: each member once. */
        struct suspicion *p = &s->susp[m->susp];
        for (uint32_t i = 0; i < p->n_from; i++)
            if (p->from[i] == fh)
                return;
        if (p->n_from < SWIM_CONFIRM_MAX)
            p->from[p->n_from++] = fh;
        vigil_time_t min, max;
        uint32_t k;
        suspicion_bounds(s, &min, &max, &k);
        uint32_t c = p->n_from > 1 ? p->n_from - 1u : 0;
        vigil_time_t d = p->start + vigil_swim_suspicion_timeout(c, p->k, min, max);
        if (d < p->deadline)
            p->deadline = d;
        queue_update(s, idx, UPD_SUSPECT, inc, from);
        return;
    }
    if (!(m->state == VIGIL_STATE_ALIVE && inc >= m->incarnation) &&
        !(m->state == VIGIL_STATE_SUSPECT && inc > m->incarnation))
        return;
    m->incarnation = inc;
    if (m->state != VIGIL_STATE_SUSPECT) {
        s->stats.suspicions++;
        set_state(s, idx, VIGIL_STATE_SUSPECT, now, "suspected", 0);
    }
    struct suspicion *p = susp_new(s, idx);
    if (!p)
        return;
    vigil_time_t min, max;
    uint32_t k;
    suspicion_bounds(s, &min, &max, &k);
    p->start = now;
    p->k = k;
    p->n_from = 1;
    p->from[0] = fh;
    p->deadline = now + vigil_swim_suspicion_timeout(0, k, min, max);
    queue_update(s, idx, UPD_SUSPECT, inc, from);
}

/* Someone says this member is suspect or dead: refute with a higher incarnation. */
static void refute(struct vigil_swim *s, uint32_t inc)
{
    if (s->leaving)
        return;
    if (inc >= s->incarnation)
        s->incarnation = inc + 1;
    else
        s->incarnation++;
    s->stats.refutations++;
    awareness(s, +1);
    sign_alive(s);
    queue_update(s, UINT32_MAX, UPD_ALIVE, s->incarnation, NULL);
}

/*
 * Whether this member's own suspicion of m is younger than the shortest
 * suspicion timeout: then another member's word that m is dead is not
 * taken yet (it counts as a confirmation), so that nobody, an insider
 * holding the key included, can make a suspicion and a death in one
 * breath: m has the shortest timeout to refute, as the protocol promises.
 * An honest death arrives about when this member's own timer would fire.
 */
static bool suspicion_young(const struct vigil_swim *s, const struct member *m, vigil_time_t now)
{
    if (m->susp == UINT32_MAX)
        return false;
    vigil_time_t min, max;
    uint32_t k;
    suspicion_bounds(s, &min, &max, &k);
    return now - s->susp[m->susp].start < min;
}

/*
 * Applies one update heard from sender at now; a left with its proof
 * (proof_len bytes; NULL: unsigned).
 */
static void apply(struct vigil_swim *s, uint8_t kind, uint32_t inc, const char *id,
                  const struct vigil_addr *addr, const uint8_t *meta, uint8_t meta_len,
                  const char *from, const uint8_t *proof, uint8_t proof_len, vigil_time_t now)
{
    if (kind == UPD_LEFT && !leave_ok(s, id, inc, proof, proof_len)) {
        s->stats.leaves_refused++;
        return;
    }
    bool me = !strcmp(id, s->self);
    uint32_t idx = me ? VIGIL__IDTABLE_NONE : find(s, id);
    /* An alive that would be taken (it is news) needs its signature checked first. */
    if (kind == UPD_ALIVE &&
        (me ? inc > s->incarnation : idx == VIGIL__IDTABLE_NONE || inc > s->m[idx].incarnation) &&
        !alive_ok(s, inc, id, addr, meta, meta_len, proof, proof_len)) {
        s->stats.alives_refused++;
        return;
    }
    if (me) {
        /*
         * With signed alives, an accusation far above this member's own
         * incarnation is forged (an earlier life of this id never got that
         * far): taking it would push the incarnation to the top, where the
         * member could no longer refute.
         */
        if ((kind == UPD_SUSPECT || kind == UPD_DEAD || kind == UPD_LEFT) &&
            s->cfg.require_signed_alive && inc > s->incarnation &&
            inc - s->incarnation > SWIM_JUMP_MAX) {
            s->stats.accusations_refused++;
            return;
        }
        if ((kind == UPD_SUSPECT || kind == UPD_DEAD) && inc >= s->incarnation)
            refute(s, inc);
        else if (kind == UPD_ALIVE && inc > s->incarnation)
            refute(s, inc); /* an old self of ours: move past it */
        else if (kind == UPD_LEFT && inc >= s->incarnation)
            refute(s, inc); /* not leaving (refute() knows): a replayed or forged leave, or
                               one of an earlier life of this id */
        return;
    }
    if (idx == VIGIL__IDTABLE_NONE) {
        if (kind != UPD_ALIVE)
            return; /* learned of through its alive, not through an accusation */
        idx = add_member(s, id, now);
        if (idx == UINT32_MAX)
            return;
        struct member *m = &s->m[idx];
        m->incarnation = inc;
        m->addr = *addr;
        set_tail(s, m, meta, meta_len, proof, proof ? proof_len : 0);
        set_state(s, idx, VIGIL_STATE_ALIVE, now, "joined", 0);
        queue_update(s, idx, UPD_ALIVE, inc, NULL);
        return;
    }
    struct member *m = &s->m[idx];
    /*
     * With signed alives, nobody honest knows a member at an incarnation
     * above the one it signed: an accusation there is forged.
     */
    if ((kind == UPD_SUSPECT || kind == UPD_DEAD) && s->cfg.require_signed_alive &&
        inc > m->incarnation) {
        s->stats.accusations_refused++;
        return;
    }
    switch (kind) {
    case UPD_ALIVE:
        /* {Alive, i} overrides suspect and alive of lower incarnations; dead and left too. */
        if (inc > m->incarnation || (m->state != VIGIL_STATE_ALIVE &&
                                     m->state != VIGIL_STATE_SUSPECT && inc > m->incarnation)) {
            enum vigil_state old = (enum vigil_state)m->state;
            m->incarnation = inc;
            m->addr = *addr;
            /* Its proof, if signed, replaces the one of its last alive or of its leave. */
            set_tail(s, m, meta, meta_len, proof, proof ? proof_len : 0);
            if (old != VIGIL_STATE_ALIVE)
                set_state(s, idx, VIGIL_STATE_ALIVE, now,
                          old == VIGIL_STATE_SUSPECT ? "refuted" : "rejoined", 0);
            queue_update(s, idx, UPD_ALIVE, inc, NULL);
        }
        break;
    case UPD_SUSPECT:
        suspect(s, idx, inc, from, now);
        break;
    case UPD_DEAD:
        /*
         * Another member's word is not enough: a death is taken only for a
         * member suspected here already (it ends the suspicion); otherwise
         * it is a suspicion, which the member can refute.
         */
        if (m->state == VIGIL_STATE_SUSPECT && inc >= m->incarnation &&
            !suspicion_young(s, m, now)) {
            m->incarnation = inc;
            s->stats.deaths++;
            set_state(s, idx, VIGIL_STATE_DEAD, now, "confirmed dead",
                      m->susp != UINT32_MAX ? s->susp[m->susp].n_from : 0);
            queue_update(s, idx, UPD_DEAD, inc, from);
        } else if (m->state == VIGIL_STATE_ALIVE || m->state == VIGIL_STATE_SUSPECT) {
            suspect(s, idx, inc, from, now); /* a suspicion, or a confirmation of ours */
        }
        break;
    case UPD_LEFT:
        if (inc >= m->incarnation && m->state != VIGIL_STATE_LEFT) {
            m->incarnation = inc;
            set_state(s, idx, VIGIL_STATE_LEFT, now, "left", 0);
            set_tail(s, m, m->meta, m->meta_len, proof, proof ? proof_len : 0);
            queue_update(s, idx, UPD_LEFT, inc, NULL);
        } else if (m->state == VIGIL_STATE_LEFT && inc == m->incarnation && proof &&
                   !m->proof_len) {
            /* Taken unsigned before: kept with its proof now, for members that need one. */
            set_tail(s, m, m->meta, m->meta_len, proof, proof_len);
        }
        break;
    }
}

/* ---- decoding ---- */

struct rbuf {
    const uint8_t *p;
    size_t len, at;
    bool bad;
};

static uint8_t r_u8(struct rbuf *r)
{
    if (r->at + 1 > r->len) {
        r->bad = true;
        return 0;
    }
    return r->p[r->at++];
}

static uint16_t r_u16(struct rbuf *r)
{
    uint16_t v = (uint16_t)(r_u8(r) << 8);
    return (uint16_t)(v | r_u8(r));
}

static uint32_t r_u32(struct rbuf *r)
{
    uint32_t v = (uint32_t)r_u16(r) << 16;
    return v | r_u16(r);
}

static void r_id(struct rbuf *r, char out[VIGIL_ID_MAX + 1], bool empty_ok)
{
    size_t n = r_u8(r);
    out[0] = '\0';
    if (r->bad || n > VIGIL_ID_MAX || r->at + n > r->len) {
        r->bad = true;
        return;
    }
    memcpy(out, r->p + r->at, n);
    out[n] = '\0';
    r->at += n;
    if (n == 0 ? !empty_ok : !vigil_id_valid(out, n))
        r->bad = true;
}

static void r_addr(struct rbuf *r, struct vigil_addr *a)
{
    memset(a, 0, sizeof(*a));
    uint8_t f = r_u8(r);
    a->port = r_u16(r);
    size_t n = f == 6 ? 16 : 4;
    if (f != 4 && f != 6 && f != 0) {
        r->bad = true;
        return;
    }
    if (r->at + n > r->len) {
        r->bad = true;
        return;
    }
    memcpy(a->addr, r->p + r->at, n);
    r->at += n;
    a->family = f == 6 ? SWIM_AF_INET6 : f == 4 ? SWIM_AF_INET : 0;
}

/* A left's proof at r: a certificate's length (from its id length), and a signature. */
static size_t r_proof(struct rbuf *r)
{
    if (r->bad || r->at + 2 > r->len) {
        r->bad = true;
        return 0;
    }
    size_t n = 2 + (size_t)r->p[r->at + 1] + VIGIL_SWIM_SIGN_PK_LEN + 2 * VIGIL_SWIM_SIG_LEN;
    if (n > SWIM_PROOF_MAX || r->at + n > r->len) {
        r->bad = true;
        return 0;
    }
    r->at += n;
    return n;
}

/*
 * Opens a sealed datagram into plain (SWIM_PLAIN_MAX bytes): its header
 * (flags cleared), then what was sealed. Returns the length, or 0 if it
 * does not open.
 */
static size_t unseal(const struct vigil_swim *s, const uint8_t *buf, size_t len, uint8_t *plain)
{
    size_t ad = SWIM_HDR + SWIM_NONCE_LEN;
    if (len < ad + 4 + SWIM_SEAL_TAG || len - ad - SWIM_SEAL_TAG > SWIM_PLAIN_MAX - SWIM_HDR)
        return 0;
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain + SWIM_HDR, &mlen, NULL, buf + ad,
                                                   len - ad, buf, ad, buf + SWIM_HDR, s->seal) != 0)
        return 0;
    memcpy(plain, buf, SWIM_HDR);
    plain[4] = 0;
    return SWIM_HDR + (size_t)mlen;
}

int vigil_swim_on_datagram(struct vigil_swim *s, vigil_time_t now, const uint8_t *buf, size_t len,
                           const struct vigil_addr *from)
{
    s->stats.received++;
    s->stats.bytes_received += len;
    if (len < SWIM_HDR + 4 || buf[0] != SWIM_MAGIC0 || buf[1] != SWIM_MAGIC1 ||
        buf[2] != SWIM_VERSION) {
        s->stats.malformed++;
        return -VIGIL_EMAGIC;
    }
    /*
     * Sealed or not, as this member is: a member that seals reads nothing
     * in clear, and one that does not cannot open a sealed datagram.
     */
    uint8_t plain[SWIM_PLAIN_MAX];
    if (s->cfg.encrypt || (buf[4] & SWIM_FLAG_SEALED)) {
        size_t pl = s->cfg.encrypt && buf[4] == SWIM_FLAG_SEALED ? unseal(s, buf, len, plain) : 0;
        if (pl == 0) {
            s->stats.auth_failed++;
            return -VIGIL_EAUTH;
        }
        buf = plain;
        len = pl;
    } else if (s->cfg.has_key) {
        uint8_t tag[SWIM_TAG_LEN];
        if (!(buf[4] & SWIM_FLAG_AUTH) || len < SWIM_HDR + 4 + SWIM_TAG_LEN) {
            s->stats.auth_failed++;
            return -VIGIL_EAUTH;
        }
        crypto_shorthash_siphashx24(tag, buf, len - SWIM_TAG_LEN, s->mac);
        if (sodium_memcmp(tag, buf + len - SWIM_TAG_LEN, SWIM_TAG_LEN) != 0) {
            s->stats.auth_failed++;
            return -VIGIL_EAUTH;
        }
        len -= SWIM_TAG_LEN;
    } else if (buf[4] & SWIM_FLAG_AUTH) {
        /* Nothing to check it with: skipped, if it is there at all. */
        if (len < SWIM_HDR + 4 + SWIM_TAG_LEN) {
            s->stats.malformed++;
            return -VIGIL_ETRUNC;
        }
        len -= SWIM_TAG_LEN;
    }
    if ((buf[4] & ~SWIM_FLAG_AUTH) != 0 || buf[6] != 0 || buf[7] != 0) {
        s->stats.malformed++;
        return -VIGIL_EBADFIELD;
    }
    struct rbuf r = {.p = buf, .len = len, .at = 3};
    uint8_t type = r_u8(&r);
    (void)r_u8(&r); /* flags */
    r.at = 5;
    char sender[VIGIL_ID_MAX + 1];
    size_t sl = r_u8(&r);
    (void)r_u16(&r);
    uint32_t seq = r_u32(&r);
    if (sl == 0 || sl > VIGIL_ID_MAX || r.at + sl > r.len) {
        s->stats.malformed++;
        return -VIGIL_EBADID;
    }
    memcpy(sender, buf + r.at, sl);
    sender[sl] = '\0';
    r.at += sl;
    if (!vigil_id_valid(sender, sl) || !strcmp(sender, s->self)) {
        s->stats.malformed++;
        return -VIGIL_EBADID;
    }
    char target[VIGIL_ID_MAX + 1] = "";
    struct vigil_addr taddr;
    memset(&taddr, 0, sizeof(taddr));
    if (type == MSG_PING || type == MSG_PING_REQ)
        r_id(&r, target, type == MSG_PING);
    if (type == MSG_PING_REQ)
        r_addr(&r, &taddr);
    if (type < MSG_PING || type > MSG_SYNC_REPLY || r.bad) {
        s->stats.malformed++;
        return -VIGIL_ETYPE;
    }
    /* The updates, checked whole before any is applied. */
    size_t upd_at = r.at;
    uint8_t nu = r_u8(&r);
    for (uint8_t i = 0; i < nu && !r.bad; i++) {
        uint8_t kind = r_u8(&r);
        (void)r_u32(&r);
        char id[VIGIL_ID_MAX + 1];
        r_id(&r, id, false);
        if (kind == UPD_ALIVE || kind == UPD_ALIVE_SIGNED) {
            struct vigil_addr a;
            r_addr(&r, &a);
            uint8_t ml = r_u8(&r);
            if (ml > VIGIL_SWIM_META_MAX || r.at + ml > r.len)
                r.bad = true;
            else
                r.at += ml;
            if (kind == UPD_ALIVE_SIGNED)
                (void)r_proof(&r);
        } else if (kind == UPD_SUSPECT || kind == UPD_DEAD) {
            char f[VIGIL_ID_MAX + 1];
            r_id(&r, f, false);
        } else if (kind == UPD_LEFT_SIGNED) {
            (void)r_proof(&r);
        } else if (kind != UPD_LEFT) {
            r.bad = true;
        }
    }
    if (r.bad || r.at != r.len) {
        s->stats.malformed++;
        return -VIGIL_ETRUNC;
    }
    /* The sender is alive: what it says of itself comes first among its updates, if at all. */
    r.at = upd_at;
    nu = r_u8(&r);
    for (uint8_t i = 0; i < nu; i++) {
        uint8_t kind = r_u8(&r);
        uint32_t inc = r_u32(&r);
        char id[VIGIL_ID_MAX + 1], f[VIGIL_ID_MAX + 1] = "";
        r_id(&r, id, false);
        struct vigil_addr a;
        memset(&a, 0, sizeof(a));
        const uint8_t *meta = NULL, *proof = NULL;
        uint8_t ml = 0, pl = 0;
        if (kind == UPD_ALIVE || kind == UPD_ALIVE_SIGNED) {
            r_addr(&r, &a);
            ml = r_u8(&r);
            meta = buf + r.at;
            r.at += ml;
            if (kind == UPD_ALIVE_SIGNED) {
                proof = buf + r.at;
                pl = (uint8_t)r_proof(&r);
                kind = UPD_ALIVE;
            }
        } else if (kind == UPD_SUSPECT || kind == UPD_DEAD) {
            r_id(&r, f, false);
        } else if (kind == UPD_LEFT_SIGNED) {
            proof = buf + r.at;
            pl = (uint8_t)r_proof(&r);
            kind = UPD_LEFT;
        }
        apply(s, kind, inc, id, &a, meta, ml, f, proof, pl, now);
    }
    uint32_t sidx = find(s, sender);
    switch (type) {
    case MSG_PING:
        if (target[0] && strcmp(target, s->self) != 0)
            return 0; /* meant for someone who had this address before */
        send_simple(s, MSG_ACK, seq, from, sidx == VIGIL__IDTABLE_NONE ? UINT32_MAX : sidx, NULL,
                    NULL);
        break;
    case MSG_ACK:
        if (s->probe_target != UINT32_MAX && seq == s->probe_seq) {
            if (!s->probe_acked)
                awareness(s, -1);
            s->probe_acked = true;
        } else {
            /* An ack to a probe we made for someone: relay it. */
            for (int i = 0; i < SWIM_RELAYS_MAX; i++) {
                struct relay *rl = &s->relays[i];
                if (rl->used && rl->our_seq == seq) {
                    send_simple(s, MSG_ACK, rl->their_seq, &rl->requester, UINT32_MAX, NULL, NULL);
                    rl->used = false;
                }
            }
        }
        break;
    case MSG_NACK:
        if (s->probe_target != UINT32_MAX && seq == s->probe_seq)
            s->nacks_got++;
        break;
    case MSG_PING_REQ: {
        int free_slot = -1;
        for (int i = 0; i < SWIM_RELAYS_MAX && free_slot < 0; i++)
            if (!s->relays[i].used)
                free_slot = i;
        if (free_slot < 0)
            break;
        struct relay *rl = &s->relays[free_slot];
        rl->used = true;
        rl->our_seq = ++s->seq;
        rl->their_seq = seq;
        rl->requester = *from;
        rl->deadline = now + scaled(s, s->cfg.probe_timeout);
        uint32_t t = find(s, target);
        send_simple(s, MSG_PING, rl->our_seq, &taddr, t == VIGIL__IDTABLE_NONE ? UINT32_MAX : t,
                    target, NULL);
        break;
    }
    case MSG_SYNC:
        send_state(s, MSG_SYNC_REPLY, from);
        break;
    default:
        break;
    }
    return 0;
}

/* ---- the protocol period ---- */

static uint32_t next_target(struct vigil_swim *s)
{
    for (uint32_t tries = 0; tries < s->n_order + 1; tries++) {
        if (s->order_at >= s->n_order) {
            /* A new pass in a new order (Fisher-Yates). */
            for (uint32_t i = s->n_order; i > 1; i--) {
                uint32_t j = rnd_below(s, i);
                uint32_t t = s->order[i - 1];
                s->order[i - 1] = s->order[j];
                s->order[j] = t;
            }
            s->order_at = 0;
            if (s->n_order == 0)
                return UINT32_MAX;
        }
        uint32_t idx = s->order[s->order_at++];
        uint8_t st = s->m[idx].state;
        if (st == VIGIL_STATE_ALIVE || st == VIGIL_STATE_SUSPECT)
            return idx;
    }
    return UINT32_MAX;
}

/*
 * Up to k members other than except, chosen at random: alive ones, and with
 * suspects, suspected ones too (gossip reaches a suspect, who can then
 * refute; only alive members are asked to probe for us).
 */
static uint32_t pick(struct vigil_swim *s, uint32_t k, uint32_t except, bool suspects,
                     uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t tries = 0; n < k && tries < 4 * k + 16 && s->n > 0; tries++) {
        uint32_t idx = rnd_below(s, s->n);
        uint8_t st = s->m[idx].state;
        if (idx == except || !(st == VIGIL_STATE_ALIVE || (suspects && st == VIGIL_STATE_SUSPECT)))
            continue;
        bool dup = false;
        for (uint32_t i = 0; i < n; i++)
            dup |= out[i] == idx;
        if (!dup)
            out[n++] = idx;
    }
    return n;
}

static void probe_start(struct vigil_swim *s, vigil_time_t now)
{
    uint32_t t = next_target(s);
    vigil_time_t period = scaled(s, s->cfg.probe_interval);
    s->next_probe = now + period;
    if (t == UINT32_MAX) {
        s->probe_target = UINT32_MAX;
        return;
    }
    s->probe_target = t;
    s->probe_seq = ++s->seq;
    s->probe_acked = false;
    s->indirect_sent = false;
    s->nacks_expected = s->nacks_got = 0;
    s->probe_timeout_at = now + scaled(s, s->cfg.probe_timeout);
    s->probe_end = now + period;
    s->stats.probes++;
    send_simple(s, MSG_PING, s->probe_seq, &s->m[t].addr, t, s->m[t].id, NULL);
}

static void probe_timeout(struct vigil_swim *s, vigil_time_t now)
{
    (void)now;
    s->indirect_sent = true;
    if (s->probe_acked)
        return;
    uint32_t via[16];
    uint32_t k = s->cfg.indirect_checks < 16 ? s->cfg.indirect_checks : 16;
    uint32_t n = pick(s, k, s->probe_target, false, via);
    const struct member *t = &s->m[s->probe_target];
    for (uint32_t i = 0; i < n; i++) {
        send_simple(s, MSG_PING_REQ, s->probe_seq, &s->m[via[i]].addr, UINT32_MAX, t->id, &t->addr);
        s->stats.indirect_probes++;
    }
    /*
     * And a second ping of our own, on the direct path: under loss the
     * first ping or its ack is the likeliest thing lost, and one more
     * datagram on a failed probe is cheap (memberlist tries TCP here).
     */
    send_simple(s, MSG_PING, s->probe_seq, &t->addr, s->probe_target, t->id, NULL);
    s->nacks_expected = s->cfg.lifeguard ? n : 0;
}

static void probe_end(struct vigil_swim *s, vigil_time_t now)
{
    uint32_t t = s->probe_target;
    s->probe_target = UINT32_MAX;
    if (s->probe_acked)
        return;
    s->stats.probes_failed++;
    /*
     * Lifeguard: each nack that never came says we may be the slow one;
     * with nobody to ask, the failed probe itself does. Nacks that all
     * came say the target is down, not us (memberlist's rule).
     */
    if (s->nacks_expected == 0) {
        awareness(s, +1);
    } else if (s->nacks_got < s->nacks_expected) {
        s->stats.nacks_missed += s->nacks_expected - s->nacks_got;
        awareness(s, (int)(s->nacks_expected - s->nacks_got));
    }
    /* A suspect already: this failed probe is an independent confirmation. */
    if (t < s->n && (s->m[t].state == VIGIL_STATE_ALIVE || s->m[t].state == VIGIL_STATE_SUSPECT))
        suspect(s, t, s->m[t].incarnation, s->self, now);
}

static void gossip(struct vigil_swim *s, vigil_time_t now)
{
    s->next_gossip = now + s->cfg.gossip_interval;
    if (s->n_upd == 0)
        return;
    uint32_t to[16];
    uint32_t n = pick(s, s->cfg.gossip_nodes < 16 ? s->cfg.gossip_nodes : 16, UINT32_MAX, true, to);
    for (uint32_t i = 0; i < n && s->n_upd > 0; i++)
        send_simple(s, MSG_GOSSIP, 0, &s->m[to[i]].addr, to[i], NULL, NULL);
}

static vigil_time_t sync_period(const struct vigil_swim *s)
{
    /* memberlist's scaling: longer past 32 members, so that the cost per member stays flat. */
    uint32_t n = s->live + 1;
    double mult = n > 32 ? ceil(log2((double)n) - log2(32.0)) + 1.0 : 1.0;
    return (vigil_time_t)((double)s->cfg.sync_interval * mult);
}

/*
 * A member believed dead, at random, is pinged with its death and this
 * member's own alive: if it is alive (a partition healed) it refutes in
 * its ack, and is alive here again; and it learns of this member.
 */
static void reconnect(struct vigil_swim *s, vigil_time_t now)
{
    s->next_reconnect = now + s->cfg.reconnect_interval;
    uint32_t t = UINT32_MAX;
    for (uint32_t tries = 0; tries < 16 && s->n > 0 && t == UINT32_MAX; tries++) {
        uint32_t idx = rnd_below(s, s->n);
        if (s->m[idx].state == VIGIL_STATE_DEAD)
            t = idx;
    }
    if (t == UINT32_MAX)
        return;
    uint8_t buf[1280];
    struct wbuf w;
    w_begin(s, &w, buf, MSG_PING, ++s->seq);
    w_id(&w, s->m[t].id);
    w_u8(&w, 2);
    w_update(s, &w, UPD_DEAD, t, s->m[t].incarnation, s->self);
    w_update(s, &w, UPD_ALIVE, UINT32_MAX, s->incarnation, NULL);
    w_send(s, &w, &s->m[t].addr);
}

static void sync_one(struct vigil_swim *s, vigil_time_t now)
{
    s->next_sync = now + sync_period(s);
    uint32_t t;
    if (pick(s, 1, UINT32_MAX, false, &t) == 1)
        send_state(s, MSG_SYNC, &s->m[t].addr);
}

vigil_time_t vigil_swim_next_deadline(const struct vigil_swim *s)
{
    vigil_time_t at = s->next_probe;
    if (s->probe_target != UINT32_MAX) {
        if (!s->indirect_sent && s->probe_timeout_at < at)
            at = s->probe_timeout_at;
        if (s->probe_end < at)
            at = s->probe_end;
    }
    if (s->n_upd > 0 && s->next_gossip < at)
        at = s->next_gossip;
    if (s->next_sync < at)
        at = s->next_sync;
    if (s->next_reconnect < at)
        at = s->next_reconnect;
    for (uint32_t i = 0; i < s->n_susp; i++)
        if (s->susp[i].deadline < at)
            at = s->susp[i].deadline;
    for (int i = 0; i < SWIM_RELAYS_MAX; i++)
        if (s->relays[i].used && s->relays[i].deadline < at)
            at = s->relays[i].deadline;
    return at;
}

void vigil_swim_on_expiry(struct vigil_swim *s, vigil_time_t now)
{
    /*
     * Called long after the deadline: this member was stalled. Its
     * suspicions get the stall's length again, as if the stall had not
     * been: nobody was told of them meanwhile, so nobody could refute.
     */
    vigil_time_t due = vigil_swim_next_deadline(s);
    vigil_time_t tolerance =
        s->cfg.pause_tolerance ? s->cfg.pause_tolerance : s->cfg.probe_interval;
    if (due != VIGIL_TIME_NEVER && now > due && now - due > tolerance) {
        vigil_time_t gap = now - due;
        s->stats.pauses++;
        for (uint32_t i = 0; i < s->n_susp; i++) {
            s->susp[i].start += gap;
            s->susp[i].deadline += gap;
        }
    }
    /* Suspicions that ran out: dead (set_state ends each, moving the last into its place). */
    for (uint32_t i = 0; i < s->n_susp;) {
        struct suspicion *p = &s->susp[i];
        if (p->deadline > now) {
            i++;
            continue;
        }
        uint32_t idx = p->member;
        uint32_t c = p->n_from;
        s->stats.deaths++;
        set_state(s, idx, VIGIL_STATE_DEAD, now, "suspicion timed out", c);
        queue_update(s, idx, UPD_DEAD, s->m[idx].incarnation, s->self);
    }
    /* Relayed probes without an answer: nack (Lifeguard). */
    for (int i = 0; i < SWIM_RELAYS_MAX; i++) {
        struct relay *rl = &s->relays[i];
        if (rl->used && rl->deadline <= now) {
            if (s->cfg.lifeguard) {
                send_simple(s, MSG_NACK, rl->their_seq, &rl->requester, UINT32_MAX, NULL, NULL);
                s->stats.nacks_sent++;
            }
            rl->used = false;
        }
    }
    if (s->probe_target != UINT32_MAX) {
        if (!s->indirect_sent && now >= s->probe_timeout_at)
            probe_timeout(s, now);
        if (now >= s->probe_end)
            probe_end(s, now);
    }
    if (s->probe_target == UINT32_MAX && now >= s->next_probe)
        probe_start(s, now);
    if (now >= s->next_gossip)
        gossip(s, now);
    if (now >= s->next_sync)
        sync_one(s, now);
    if (now >= s->next_reconnect)
        reconnect(s, now);
}

/* ---- life ---- */

void vigil_swim_config_default(struct vigil_swim_config *c)
{
    memset(c, 0, sizeof(*c));
    c->probe_interval = VIGIL_NSEC_PER_SEC;
    c->probe_timeout = 500 * VIGIL_NSEC_PER_MSEC;
    c->indirect_checks = 3;
    c->retransmit_mult = 4;
    c->suspicion_mult = 4;
    c->suspicion_max_mult = 6;
    c->awareness_max = VIGIL_SWIM_AWARENESS_MAX_DEFAULT;
    c->gossip_interval = 200 * VIGIL_NSEC_PER_MSEC;
    c->gossip_nodes = 3;
    c->sync_interval = 30 * VIGIL_NSEC_PER_SEC;
    c->reconnect_interval = 30 * VIGIL_NSEC_PER_SEC;
    c->lifeguard = true;
    c->max_members = 65536;
    c->mtu = 1200;
}

int vigil_swim_new(const struct vigil_swim_config *cfg, vigil_time_t now, struct vigil_swim **out)
{
    *out = NULL;
    if (!cfg->id || !vigil_id_valid(cfg->id, strlen(cfg->id)))
        return -VIGIL_EBADID;
    if (cfg->probe_interval <= 0 || cfg->probe_timeout <= 0 ||
        cfg->probe_timeout > cfg->probe_interval || cfg->mtu < 256 || cfg->max_members < 1 ||
        cfg->suspicion_mult < 1 || cfg->suspicion_max_mult < 1 || cfg->awareness_max < 1 ||
        cfg->gossip_interval <= 0 || cfg->sync_interval <= 0 || cfg->reconnect_interval <= 0)
        return -VIGIL_EINVAL;
    /* Sealing needs the key, and a prefix that keeps this member's nonces its own. */
    if (cfg->encrypt &&
        (!cfg->has_key || sodium_is_zero(cfg->nonce_prefix, sizeof cfg->nonce_prefix)))
        return -VIGIL_EINVAL;
    if ((cfg->require_signed_leave || cfg->require_signed_alive) && !cfg->has_leave_ca)
        return -VIGIL_EINVAL;
    if (cfg->has_sign_key) {
        /* The certificate names this member and the signing key's public half (and verifies). */
        struct vigil_swim_cert c;
        uint8_t pk[VIGIL_SWIM_SIGN_PK_LEN];
        crypto_sign_ed25519_sk_to_pk(pk, cfg->sign_sk);
        if (cfg->cert_len > sizeof cfg->cert ||
            vigil_swim_cert_parse(cfg->cert, cfg->cert_len, &c) != 0 || strcmp(c.id, cfg->id) ||
            sodium_memcmp(c.pk, pk, sizeof pk) != 0 ||
            (cfg->has_leave_ca &&
             vigil_swim_cert_verify(cfg->leave_ca_pk, cfg->cert, cfg->cert_len, NULL) != 0))
            return -VIGIL_EINVAL;
    }
    struct vigil_allocator al = cfg->allocator;
    if (!al.calloc) {
        al.calloc = libc_calloc;
        al.free = libc_free;
    }
    struct vigil_swim *s = s_calloc(&al, 1, sizeof(*s));
    if (!s)
        return -VIGIL_ENOMEM;
    s->cfg = *cfg;
    s->al = al;
    if (cfg->has_key) {
        vigil_wire_mac_key(s->mac, cfg->key);
        vigil_wire_key_fingerprint(s->fingerprint, cfg->key);
    }
    if (cfg->encrypt)
        (void)crypto_kdf_derive_from_key(s->seal, sizeof s->seal, SWIM_SEAL_SUBKEY_ID,
                                         SWIM_SEAL_CONTEXT, cfg->key);
    sodium_memzero(s->cfg.key, sizeof(s->cfg.key));
    s->self_len = strlen(cfg->id);
    memcpy(s->self, cfg->id, s->self_len + 1);
    s->cfg.id = s->self;
    sign_alive(s);
    s->rng = cfg->seed ^ id_hash(cfg->id);
    s->probe_target = UINT32_MAX;
    if (vigil__idtable_init(&s->ids, 16, &al, NULL, member_id_of, s) != 0) {
        s_free(&al, s);
        return -VIGIL_ENOMEM;
    }
    /* Staggered: members started together do not probe in step. */
    s->next_probe = now + (vigil_time_t)(rnd(s) % (uint64_t)cfg->probe_interval);
    s->next_gossip = now + cfg->gossip_interval;
    s->next_sync = now + cfg->sync_interval + (vigil_time_t)(rnd(s) % (uint64_t)cfg->sync_interval);
    s->next_reconnect =
        now + (vigil_time_t)(rnd(s) % (uint64_t)cfg->reconnect_interval) + cfg->reconnect_interval;
    *out = s;
    return 0;
}

void vigil_swim_free(struct vigil_swim *s)
{
    if (!s)
        return;
    vigil__idtable_destroy(&s->ids);
    for (uint32_t i = 0; i < s->n; i++) {
        if (!s->cfg.intern)
            s_free(&s->al, (void *)s->m[i].id);
        s_free(&s->al, s->m[i].meta);
    }
    s_free(&s->al, s->m);
    s_free(&s->al, s->order);
    s_free(&s->al, s->susp);
    s_free(&s->al, s->upd);
    s_free(&s->al, s->out);
    s_free(&s->al, s->ev);
    sodium_memzero(s->mac, sizeof(s->mac));
    sodium_memzero(s->seal, sizeof(s->seal));
    sodium_memzero(s->cfg.sign_sk, sizeof(s->cfg.sign_sk));
    struct vigil_allocator al = s->al;
    s_free(&al, s);
}

void vigil_swim_join(struct vigil_swim *s, vigil_time_t now, const struct vigil_addr *seeds,
                     size_t n)
{
    (void)now;
    for (size_t i = 0; i < n; i++)
        send_state(s, MSG_SYNC, &seeds[i]);
}

void vigil_swim_leave(struct vigil_swim *s, vigil_time_t now)
{
    (void)now;
    s->leaving = true;
    if (s->cfg.has_sign_key) {
        /* Signed: the proof goes with every copy of this leave, syncs included. */
        uint8_t msg[SWIM_LEAVE_MSG_MAX];
        size_t ml = leave_message(s, s->self, s->incarnation, msg);
        memcpy(s->self_proof, s->cfg.cert, s->cfg.cert_len);
        crypto_sign_detached(s->self_proof + s->cfg.cert_len, NULL, msg, ml, s->cfg.sign_sk);
        s->self_proof_len = (uint8_t)(s->cfg.cert_len + VIGIL_SWIM_SIG_LEN);
    }
    queue_update(s, UINT32_MAX, UPD_LEFT, s->incarnation, NULL);
    /* Told to a few members at once; gossip carries it on. */
    uint32_t to[8];
    uint32_t k = pick(s, 8, UINT32_MAX, true, to);
    for (uint32_t i = 0; i < k; i++)
        send_simple(s, MSG_GOSSIP, 0, &s->m[to[i]].addr, UINT32_MAX, NULL, NULL);
}

int vigil_swim_add(struct vigil_swim *s, vigil_time_t now, const char *id,
                   const struct vigil_addr *addr)
{
    if (!vigil_id_valid(id, strlen(id)))
        return -VIGIL_EBADID;
    if (!strcmp(id, s->self) || find(s, id) != VIGIL__IDTABLE_NONE)
        return -VIGIL_EEXIST;
    uint32_t idx = add_member(s, id, now);
    if (idx == UINT32_MAX)
        return -VIGIL_EFULL;
    /* Alive, silently: configured members are no news. */
    s->m[idx].addr = *addr;
    s->m[idx].state = VIGIL_STATE_ALIVE;
    s->live++;
    return 0;
}

int vigil_swim_set_meta(struct vigil_swim *s, vigil_time_t now, const uint8_t *meta, size_t len)
{
    (void)now;
    if (len > VIGIL_SWIM_META_MAX)
        return -VIGIL_ETOOBIG;
    memcpy(s->meta, meta, len);
    s->meta_len = (uint8_t)len;
    s->incarnation++;
    sign_alive(s);
    queue_update(s, UINT32_MAX, UPD_ALIVE, s->incarnation, NULL);
    return 0;
}

/* ---- reading ---- */

size_t vigil_swim_member_count(const struct vigil_swim *s)
{
    return s->n;
}

static void fill(const struct member *m, struct vigil_swim_member *out)
{
    out->id = m->id;
    out->addr = m->addr;
    out->state = (enum vigil_state)m->state;
    out->incarnation = m->incarnation;
    out->state_since = m->state_since;
    out->meta = m->meta;
    out->meta_len = m->meta_len;
}

bool vigil_swim_member_at(const struct vigil_swim *s, size_t i, struct vigil_swim_member *out)
{
    if (i >= s->n)
        return false;
    fill(&s->m[i], out);
    return true;
}

bool vigil_swim_find(const struct vigil_swim *s, const char *id, struct vigil_swim_member *out)
{
    uint32_t idx = find(s, id);
    if (idx == VIGIL__IDTABLE_NONE)
        return false;
    fill(&s->m[idx], out);
    return true;
}

uint32_t vigil_swim_incarnation(const struct vigil_swim *s)
{
    return s->incarnation;
}

uint32_t vigil_swim_awareness(const struct vigil_swim *s)
{
    return s->awareness;
}

const struct vigil_swim_stats *vigil_swim_stats(const struct vigil_swim *s)
{
    return &s->stats;
}
