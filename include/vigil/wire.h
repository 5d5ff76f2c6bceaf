/*
 * Wire protocol: encoding and strict decoding of heartbeat datagrams,
 * version 1 (every heartbeat carries the full status) and version 2 (small
 * beats, and the full status only when it changed or every N beats).
 * docs/protocol.md holds the byte diagrams. Pure code: no I/O, no clock.
 */
#ifndef VIGIL_WIRE_H
#define VIGIL_WIRE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VIGIL_WIRE_V1          1             /* every heartbeat with the full status */
#define VIGIL_WIRE_V2          2             /* small beats; the full status when needed */
#define VIGIL_WIRE_VERSION     VIGIL_WIRE_V2 /* the newest version */
#define VIGIL_WIRE_MAX         1200          /* no datagram is ever longer */
#define VIGIL_WIRE_TAG_LEN     16            /* version 1: SipHash-2-4-128 tag */
#define VIGIL_WIRE_V2_TAG_LEN  8  /* version 2: its first 8 bytes (docs/protocol.md says why) */
#define VIGIL_WIRE_KEY_LEN     32 /* a master, node or legacy cluster key, as in key files */
#define VIGIL_WIRE_MAC_KEY_LEN 16 /* the tag key derived from a node (or cluster) key */
#define VIGIL_CUSTOM_MAX       16 /* custom key=value pairs per heartbeat */
#define VIGIL_CUSTOM_KEY_MAX   32 /* key: 1..32 of [A-Za-z0-9._-] */
#define VIGIL_CUSTOM_VAL_MAX   48 /* value: 0..48 printable ASCII bytes */

/*
 * The longest interval a sender may announce (interval_ms): one hour.
 * Receivers derive timeouts from it; a larger value would only be a mistake
 * or an attempt to keep a dead node "alive" for days. The shortest is 1 ms
 * (interval_ms 0 is refused).
 */
#define VIGIL_WIRE_INTERVAL_MAX_MS 3600000u

/*
 * The size promise of version 2: an authenticated beat of a node whose id
 * is at most VIGIL_WIRE_BEAT_ID_MAX bytes is at most VIGIL_WIRE_BEAT_MAX
 * bytes of UDP payload (24 bytes of header, the id, an 8-byte tag).
 */
#define VIGIL_WIRE_BEAT_MAX    64
#define VIGIL_WIRE_BEAT_ID_MAX 32

/* Message types; their meaning depends on the version. */
enum vigil_msg_type {
    VIGIL_MSG_HEARTBEAT = 1, /* version 1: a heartbeat, always with the full status */
    VIGIL_MSG_BEAT = 1,      /* version 2: liveness and the status version only */
    VIGIL_MSG_STATUS = 2,    /* version 2: liveness and the full status */
    VIGIL_MSG_PING = 3,      /* version 2 echo: a monitor's poll of an agent (a ping check) */
    VIGIL_MSG_PONG = 4,      /* version 2 echo: the agent's answer */
};

/* Header flags. */
#define VIGIL_FLAG_LEAVING 0x01 /* graceful goodbye: the sender is shutting down */
#define VIGIL_FLAG_AUTH    0x02 /* a tag ends the datagram (16 bytes in v1, 8 in v2) */
#define VIGIL_FLAG_SEALED  0x04 /* v2 full status: the status is encrypted (AEAD) */

/*
 * Key ids: the upper four bits of the flags byte of an authenticated
 * datagram say which key made it (0 to 15), so that a receiver holding
 * several keys (during a rotation) knows which one to verify with.
 */
#define VIGIL_WIRE_KEY_ID_MAX 15

/*
 * Sealed full statuses (version 2, docs/protocol.md "Encryption"): the
 * status block and the custom pairs under XChaCha20-Poly1305 with a
 * 32-byte seal key derived from the node (or cluster) key; the datagram
 * carries 8 random nonce bytes before the ciphertext and a 16-byte
 * Poly1305 tag instead of the 8-byte SipHash tag.
 */
#define VIGIL_WIRE_SEAL_KEY_LEN   32
#define VIGIL_WIRE_SEAL_NONCE_LEN 8
#define VIGIL_WIRE_SEAL_TAG_LEN   16

/*
 * Status of the sending node. Loads are fixed point, thousandths
 * (load 1.25 is 1250); memory in KiB; uptime in seconds. A field the
 * sender does not know is 0.
 */
struct vigil_status {
    uint32_t load1_milli, load5_milli, load15_milli;
    uint64_t mem_total_kib, mem_avail_kib;
    uint64_t uptime_s;
};

struct vigil_custom {
    char key[VIGIL_CUSTOM_KEY_MAX + 1];
    char value[VIGIL_CUSTOM_VAL_MAX + 1];
};

/*
 * A decoded heartbeat. The decoder fills it without allocating; strings are
 * NUL terminated copies.
 *
 * version and type say what it carries. A version 1 heartbeat and a version
 * 2 VIGIL_MSG_STATUS carry the full status (send_time_us, status, custom
 * pairs); a version 2 VIGIL_MSG_BEAT carries none of it (the decoder sets
 * those fields to 0) and only says, in status_version, which status is the
 * sender's current one. version 0 encodes as version 1, so that a struct
 * cleared with memset() and filled as before still encodes.
 */
struct vigil_heartbeat {
    char id[VIGIL_ID_MAX + 1];
    uint8_t version;         /* VIGIL_WIRE_V1 or VIGIL_WIRE_V2 */
    uint8_t type;            /* enum vigil_msg_type */
    uint8_t flags;           /* VIGIL_FLAG_* as received (the lower four bits) */
    uint8_t key_id;          /* the key id (0..15) of an authenticated datagram */
    uint16_t status_version; /* v2: the sender's status version (v1: 0) */
    uint64_t generation;     /* boot generation: larger after a restart */
    uint64_t sequence;       /* 1, 2, 3, ... within a generation (v2: at most UINT32_MAX) */
    int64_t send_time_us;    /* sender's wall clock, microseconds since the epoch */
    uint32_t interval_ms;    /* the sender's heartbeat interval */
    struct vigil_status status;
    uint8_t n_custom;
    struct vigil_custom custom[VIGIL_CUSTOM_MAX];
};

/* True if key is a valid custom key, value a valid custom value. */
VIGIL_EXPORT bool vigil_custom_key_valid(const char *key);
VIGIL_EXPORT bool vigil_custom_value_valid(const char *value);

/*
 * Derives the 16-byte tag key from the 32-byte cluster key (libsodium's
 * crypto_kdf_derive_from_key, subkey 1, context "vigilmac"). Done once when
 * a key is loaded; encode and decode take the derived key.
 */
VIGIL_EXPORT void vigil_wire_mac_key(uint8_t mac_key[VIGIL_WIRE_MAC_KEY_LEN],
                                     const uint8_t cluster_key[VIGIL_WIRE_KEY_LEN]);

/*
 * Derives the 32-byte seal key of sealed full statuses from the 32-byte
 * node (or cluster) key: crypto_kdf_derive_from_key, subkey 2, context
 * "vigilenc". Separate from the tag key, so that neither reveals the other.
 */
VIGIL_EXPORT void vigil_wire_seal_key(uint8_t seal_key[VIGIL_WIRE_SEAL_KEY_LEN],
                                      const uint8_t cluster_key[VIGIL_WIRE_KEY_LEN]);

/*
 * A fingerprint of a 32-byte key (node, master or cluster key): 16 bytes of
 * BLAKE2b keyed with it over the text "vigil key fingerprint". It tells
 * whether two parties hold the same key (vigil doctor asks the monitor)
 * and reveals nothing about the key itself.
 */
#define VIGIL_WIRE_FINGERPRINT_LEN 16
VIGIL_EXPORT void vigil_wire_key_fingerprint(uint8_t fp[VIGIL_WIRE_FINGERPRINT_LEN],
                                             const uint8_t key[VIGIL_WIRE_KEY_LEN]);

/*
 * Derives a node's own 32-byte key from the cluster master key and the node
 * id: BLAKE2b-256 keyed with the master key, over the id's bytes, with the
 * personalization "vigil-node-key" (zero padded to 16 bytes) and no salt
 * (docs/protocol.md, "Per-node keys", has a test vector). A node key is
 * used as a cluster key is: vigil_wire_mac_key() turns it into the node's
 * tag key. Knowing one node key reveals nothing about the master key or
 * any other node's key. Returns 0, or -VIGIL_EBADID if id is not a valid
 * node id (node_key is then zeroed).
 */
VIGIL_EXPORT int vigil_wire_node_key(uint8_t node_key[VIGIL_WIRE_KEY_LEN],
                                     const uint8_t master_key[VIGIL_WIRE_KEY_LEN], const char *id);

/*
 * Encodes hb into buf (cap bytes), in hb->version (0 or 1: version 1; 2:
 * version 2, a beat or a full status as hb->type says). With key non-NULL
 * the datagram is authenticated: the AUTH flag is set and a tag over every
 * byte before it is appended (SipHash-2-4-128; version 2 keeps its first 8
 * bytes). key is the derived tag key (VIGIL_WIRE_MAC_KEY_LEN bytes, from
 * vigil_wire_mac_key()), not the 32-byte cluster key. A version 2 beat
 * ignores the status fields and the custom pairs. Returns the length
 * written, or a negative error: -VIGIL_EVERSION, -VIGIL_ETYPE,
 * -VIGIL_EBADID, -VIGIL_EBADFIELD (bad custom pair, interval 0, sequence 0
 * or, in version 2, above UINT32_MAX), -VIGIL_ETOOBIG (would exceed cap or
 * VIGIL_WIRE_MAX).
 */
VIGIL_EXPORT int vigil_wire_encode(const struct vigil_heartbeat *hb, const uint8_t *key,
                                   uint8_t *buf, size_t cap);

/*
 * Decodes and, with key non-NULL, verifies a datagram of version 1 or 2
 * (hb->version and hb->type say which it was). key is the derived
 * tag key (VIGIL_WIRE_MAC_KEY_LEN bytes, from vigil_wire_mac_key()), as for
 * vigil_wire_encode(); the tag is compared in constant time. With a key, a
 * datagram without the AUTH flag or with a wrong tag is -VIGIL_EAUTH.
 * Without a key, a tag that is present is not checked (nothing to check it
 * with) and is skipped. Every length is checked against the buffer before it
 * is read; trailing bytes are an error. Returns 0 or a negative error:
 * -VIGIL_ETRUNC, -VIGIL_ETOOBIG, -VIGIL_EMAGIC, -VIGIL_EVERSION,
 * -VIGIL_ETYPE, -VIGIL_EBADID, -VIGIL_EBADFIELD, -VIGIL_EAUTH.
 */
VIGIL_EXPORT int vigil_wire_decode(const uint8_t *buf, size_t len, const uint8_t *key,
                                   struct vigil_heartbeat *hb);

/*
 * The keys of vigil_wire_encode_keys() and vigil_wire_decode_keys().
 * mac: the tag key (VIGIL_WIRE_MAC_KEY_LEN bytes), or NULL: no
 * authentication. seal: the seal key (VIGIL_WIRE_SEAL_KEY_LEN bytes), or
 * NULL. The encoder seals a version 2 full status when seal (and mac) are
 * given, with nonce (VIGIL_WIRE_SEAL_NONCE_LEN random bytes, new for every
 * datagram); beats are never sealed. The decoder opens a sealed datagram
 * with seal, and refuses one it has no seal key for (-VIGIL_EAUTH).
 */
struct vigil_wire_keys {
    const uint8_t *mac;
    const uint8_t *seal;
    const uint8_t *nonce;
};

/*
 * vigil_wire_encode() and vigil_wire_decode() with a seal key as well
 * (those are these with only k->mac). hb->key_id goes into the flags byte
 * when k->mac is given (-VIGIL_EBADFIELD above VIGIL_WIRE_KEY_ID_MAX) and is
 * ignored otherwise. Sealing a version 1 heartbeat is -VIGIL_EINVAL.
 */
VIGIL_EXPORT int vigil_wire_encode_keys(const struct vigil_heartbeat *hb,
                                        const struct vigil_wire_keys *k, uint8_t *buf, size_t cap);
VIGIL_EXPORT int vigil_wire_decode_keys(const uint8_t *buf, size_t len,
                                        const struct vigil_wire_keys *k,
                                        struct vigil_heartbeat *hb);

/*
 * What the header says, before anything is verified (vigil_wire_peek):
 * the node id inside the datagram, the version, type, flags (lower four
 * bits) and key id. Nothing here is authenticated.
 */
struct vigil_wire_peek {
    const char *id;
    size_t id_len;
    uint8_t version, type, flags, key_id;
};
VIGIL_EXPORT int vigil_wire_peek(const uint8_t *buf, size_t len, struct vigil_wire_peek *out);

/*
 * The decoder's first step alone: checks the header and returns a pointer to
 * the node id inside buf and its length, without verifying the tag (so it
 * needs no key, and nothing it returns is authenticated). Lets a receiver
 * find the node before the full decode. Returns 0 or a negative
 * error as vigil_wire_decode.
 */
VIGIL_EXPORT int vigil_wire_peek_id(const uint8_t *buf, size_t len, const char **id,
                                    size_t *id_len);

/*
 * Echoes (docs/protocol.md, "Echo"): a monitor's authenticated poll of an
 * agent and its answer, for ping checks. A ping names the node it is for
 * and carries a token; the pong names the same node and echoes the token.
 * Both are tagged with the node's tag key (the full 16-byte SipHash tag),
 * and the type, which the tag covers, tells them apart, so that neither can
 * stand for the other; a pong answers one token only. 16 bytes of header,
 * the id, the tag: at most VIGIL_WIRE_ECHO_MAX bytes.
 */
#define VIGIL_WIRE_ECHO_MAX (16 + VIGIL_ID_MAX + VIGIL_WIRE_TAG_LEN)

struct vigil_echo {
    uint8_t type; /* VIGIL_MSG_PING or VIGIL_MSG_PONG */
    uint8_t key_id;
    char id[VIGIL_ID_MAX + 1];
    uint64_t token;
};

/*
 * Encodes e into buf; with key (the node's tag key) non-NULL, tagged.
 * Returns the length, or -VIGIL_ETYPE, -VIGIL_EBADID, -VIGIL_EBADFIELD
 * (key_id above VIGIL_WIRE_KEY_ID_MAX), -VIGIL_ETOOBIG.
 */
VIGIL_EXPORT int vigil_wire_encode_echo(const struct vigil_echo *e, const uint8_t *key,
                                        uint8_t *buf, size_t cap);
/*
 * Decodes an echo; with key non-NULL, verifies its tag first (-VIGIL_EAUTH
 * if it is missing or wrong). Without a key, a tag is not checked: a
 * receiver decodes once without one to learn the id (and the key id), then
 * again with that node's key. Returns 0 or a negative error, as
 * vigil_wire_decode does.
 */
VIGIL_EXPORT int vigil_wire_decode_echo(const uint8_t *buf, size_t len, const uint8_t *key,
                                        struct vigil_echo *e);

#ifdef __cplusplus
}
#endif

#endif
