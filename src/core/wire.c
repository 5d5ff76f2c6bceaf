/*
 * The wire protocol: heartbeat datagrams, encoded and strictly decoded.
 *
 * A heartbeat is one UDP datagram. In version 1 it is a fixed 72-byte
 * header of big-endian integers, the node id, up to 16 custom key=value
 * pairs, and, when the cluster has a key, a 16-byte tag over every byte
 * before it: every heartbeat carries the whole status, at least 90 bytes
 * with a tag.
 *
 * Version 2 splits liveness from status. A beat is a 24-byte header (the
 * generation, a 32-bit sequence, the interval and a 16-bit status
 * version), the id and an 8-byte tag: 64 bytes for an id of 32 bytes.
 * A full status is the same header and id followed by the status block
 * (send time, loads, memory, uptime, custom pairs). The sender sends the
 * full status when its status version changes, a few times over against
 * loss, and every N beats; receivers keep the last one. Both versions
 * share the first six bytes (magic, version, type, flags, id length), so
 * one decoder serves old and new senders, and a version 1 receiver
 * rejects a version 2 datagram cleanly, by its version byte.
 *
 * Version 2's tag is the first 8 bytes of the same SipHash-2-4-128 tag
 * under the same key. A truncated pseudorandom function is still one, so
 * a blind forgery succeeds with probability 2^-64 per try; keeping one
 * function and one key (rather than adding 64-bit SipHash under the same
 * key, a pairing nobody has analysed) leaves the version byte, which every
 * tag covers, to separate the two versions' messages.
 * docs/protocol.md holds the byte diagrams and the rules for other clients.
 *
 * The tag is SipHash-2-4 with 128-bit output (libsodium's
 * crypto_shorthash_siphashx24). SipHash (Aumasson and Bernstein, 2012) is a
 * pseudorandom function made to authenticate short inputs under a 128-bit
 * key; the paper gives it a 64-bit output, and its authors specified the
 * 128-bit output used here later, in the reference implementation. A
 * heartbeat is about a hundred bytes, which SipHash covers with two cheap
 * rounds per 8-byte word and eight more to finish; keyed BLAKE2b, used
 * before, needs one compression for the key block and one for the
 * message, and cost about six times as much per datagram, enough to
 * dominate the monitor's per-heartbeat cost.
 *
 * SipHash takes a 16-byte key, so the 32-byte cluster key is not used
 * directly: vigil_wire_mac_key() derives the tag key from it once, with
 * libsodium's BLAKE2b-based KDF (subkey 1, context "vigilmac"), and encode
 * and decode take the derived key. Deriving also keeps the tag key
 * separate from anything else the cluster key might one day be used for.
 *
 * The decoder treats every byte as hostile. It never reads a byte before
 * checking that the byte is inside the buffer, it rejects anything it does
 * not understand instead of skipping it (unknown flags, a non-zero reserved
 * byte, trailing bytes), and with a key it verifies the tag before it looks
 * at the body, so that a forged body is never parsed. The tag sits at the
 * end of the datagram, so the header and the overall length are all that
 * is needed to find it. Only the header and the node id are checked before
 * the tag: that first step is also vigil_wire_peek_id(), which lets a
 * receiver find the node before paying for the full decode.
 *
 * The decoder is on the monitor's hot path (the target is 500,000
 * datagrams per second on one core), so it does not allocate and it does
 * not clear the whole 1.3 KB output struct: it sets each field and only the
 * custom slots in use. Integers are assembled from bytes with shifts, which
 * compilers turn into a load and a byte swap, and which work on any
 * alignment and any host byte order.
 *
 * The encoder checks everything the decoder checks, so that a datagram it
 * produces always decodes, and re-encoding a decoded heartbeat yields the
 * same bytes: there is exactly one encoding of every heartbeat.
 *
 * libsodium's SipHash, KDF and constant-time comparison work without
 * sodium_init(); the program calls sodium_init() at start so that the
 * fastest implementations are picked.
 */
#include "vigil/wire.h"
#include "core/wire_int.h"

#include <sodium.h>
#include <string.h>

/* "VG": the first two bytes of every vigil datagram. */
#define WIRE_MAGIC0 0x56
#define WIRE_MAGIC1 0x47

/* Offsets of the fixed header fields; see docs/protocol.md. */
#define OFF_VERSION    2
#define OFF_TYPE       3
#define OFF_FLAGS      4
#define OFF_ID_LEN     5
#define OFF_N_CUSTOM   6
#define OFF_RESERVED   7
#define OFF_GENERATION 8
#define OFF_SEQUENCE   16
#define OFF_SEND_TIME  24
#define OFF_INTERVAL   32
#define OFF_LOAD1      36
#define OFF_LOAD5      40
#define OFF_LOAD15     44
#define OFF_MEM_TOTAL  48
#define OFF_MEM_AVAIL  56
#define OFF_UPTIME     64
/* The header ends where the node id begins. */
#define WIRE_HEADER_LEN 72

/*
 * Version 2: the common header of beats and full statuses, then the id;
 * a full status then has its status block (offsets from the block's start).
 */
#define V2_OFF_STATUS_VER 6
#define V2_OFF_GENERATION 8
#define V2_OFF_SEQUENCE   16
#define V2_OFF_INTERVAL   20
#define V2_HEADER_LEN     24
#define V2_ST_STATUS      8  /* after send_time_us */
#define V2_ST_N_CUSTOM    44 /* after the 36 bytes of status */
#define V2_STATUS_LEN     45

_Static_assert(V2_HEADER_LEN + VIGIL_WIRE_BEAT_ID_MAX + VIGIL_WIRE_V2_TAG_LEN ==
                   VIGIL_WIRE_BEAT_MAX,
               "an authenticated beat of a 32-byte id is 64 bytes");

/*
 * The flags byte: four flag bits, then the key id in the upper four bits.
 * Flags both versions understand; any other bit of the lower four set is
 * an error, and so is a key id on a datagram without a tag.
 */
#define WIRE_FLAGS_KNOWN  (VIGIL_FLAG_LEAVING | VIGIL_FLAG_AUTH | VIGIL_FLAG_SEALED)
#define WIRE_FLAGS_MASK   0x0f
#define WIRE_KEY_ID_SHIFT 4

/* Each custom pair costs one key length byte and one value length byte. */
#define WIRE_PAIR_OVERHEAD 2

_Static_assert(VIGIL_CUSTOM_MAX <= UINT8_MAX, "n_custom fits in one byte");
_Static_assert(VIGIL_CUSTOM_KEY_MAX <= UINT8_MAX, "key length fits in one byte");
_Static_assert(VIGIL_CUSTOM_VAL_MAX <= UINT8_MAX, "value length fits in one byte");
_Static_assert(VIGIL_ID_MAX <= UINT8_MAX, "id length fits in one byte");
_Static_assert(VIGIL_WIRE_TAG_LEN == crypto_shorthash_siphashx24_BYTES, "tag is SipHash-128");
_Static_assert(VIGIL_WIRE_MAC_KEY_LEN == crypto_shorthash_siphashx24_KEYBYTES,
               "tag key is a SipHash key");
_Static_assert(VIGIL_WIRE_KEY_LEN == crypto_kdf_KEYBYTES, "cluster key is a KDF master key");
_Static_assert(VIGIL_WIRE_MAC_KEY_LEN >= crypto_kdf_BYTES_MIN &&
                   VIGIL_WIRE_MAC_KEY_LEN <= crypto_kdf_BYTES_MAX,
               "the KDF can derive a tag key");

/*
 * The KDF subkey id and context of the tag key. The context is exactly
 * crypto_kdf_CONTEXTBYTES (8) characters; the id is 1 so that other keys
 * derived from the cluster key later can take other ids.
 */
#define WIRE_MAC_SUBKEY_ID 1
#define WIRE_MAC_CONTEXT   "vigilmac"
_Static_assert(sizeof WIRE_MAC_CONTEXT - 1 == crypto_kdf_CONTEXTBYTES, "KDF context length");
/* The seal key: subkey 2 of the same key, under a context of its own. */
#define WIRE_SEAL_SUBKEY_ID 2
#define WIRE_SEAL_CONTEXT   "vigilenc"
_Static_assert(sizeof WIRE_SEAL_CONTEXT - 1 == crypto_kdf_CONTEXTBYTES, "KDF context length");
_Static_assert(VIGIL_WIRE_SEAL_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
               "seal key is an XChaCha20-Poly1305 key");
_Static_assert(VIGIL_WIRE_SEAL_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "seal tag is a Poly1305 tag");
/*
 * The 24-byte XChaCha20 nonce of a sealed status: the generation (8
 * bytes), the sequence (4), four zero bytes, and the 8 random bytes the
 * datagram carries. (generation, sequence) never repeats within a boot;
 * the random part keeps nonces apart when a sender reuses a generation
 * (a clock set back, a lost generation file).
 */
_Static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES ==
                   8 + 4 + 4 + VIGIL_WIRE_SEAL_NONCE_LEN,
               "nonce layout");

static inline void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static inline uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* Two's complement reinterpretation without implementation-defined casts. */
static inline uint64_t i64_to_u64(int64_t v)
{
    return (uint64_t)v;
}

static inline int64_t u64_to_i64(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX)
        return (int64_t)v;
    return -(int64_t)(UINT64_MAX - v) - 1;
}

/* The length of s, looking at no more than max bytes (strnlen without feature macros). */
static inline size_t bounded_len(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n] != '\0')
        n++;
    return n;
}

/* Printable ASCII, space (0x20) to tilde (0x7e): safe in logs and JSON. */
static inline bool value_bytes_valid(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return false;
    return true;
}

bool vigil_custom_key_valid(const char *key)
{
    if (key == NULL)
        return false;
    /* Custom keys use the node id alphabet, with a shorter length limit. */
    size_t len = bounded_len(key, VIGIL_CUSTOM_KEY_MAX + 1);
    return len >= 1 && len <= VIGIL_CUSTOM_KEY_MAX && vigil_id_valid(key, len);
}

bool vigil_custom_value_valid(const char *value)
{
    if (value == NULL)
        return false;
    size_t len = bounded_len(value, VIGIL_CUSTOM_VAL_MAX + 1);
    return len <= VIGIL_CUSTOM_VAL_MAX && value_bytes_valid((const uint8_t *)value, len);
}

void vigil_wire_mac_key(uint8_t mac_key[VIGIL_WIRE_MAC_KEY_LEN],
                        const uint8_t cluster_key[VIGIL_WIRE_KEY_LEN])
{
    /* Cannot fail: the output length is within the KDF's range (asserted above). */
    (void)crypto_kdf_derive_from_key(mac_key, VIGIL_WIRE_MAC_KEY_LEN, WIRE_MAC_SUBKEY_ID,
                                     WIRE_MAC_CONTEXT, cluster_key);
}

/*
 * The personalization of the node key derivation: 16 bytes, the name
 * padded with zeros, so that the same master key used with BLAKE2b for
 * anything else can never give a node key.
 */
static const unsigned char WIRE_NODE_PERSONAL[crypto_generichash_blake2b_PERSONALBYTES] =
    "vigil-node-key";

void vigil_wire_seal_key(uint8_t seal_key[VIGIL_WIRE_SEAL_KEY_LEN],
                         const uint8_t cluster_key[VIGIL_WIRE_KEY_LEN])
{
    (void)crypto_kdf_derive_from_key(seal_key, VIGIL_WIRE_SEAL_KEY_LEN, WIRE_SEAL_SUBKEY_ID,
                                     WIRE_SEAL_CONTEXT, cluster_key);
}

void vigil_wire_key_fingerprint(uint8_t fp[VIGIL_WIRE_FINGERPRINT_LEN],
                                const uint8_t key[VIGIL_WIRE_KEY_LEN])
{
    static const char what[] = "vigil key fingerprint";
    (void)crypto_generichash(fp, VIGIL_WIRE_FINGERPRINT_LEN, (const unsigned char *)what,
                             sizeof(what) - 1, key, VIGIL_WIRE_KEY_LEN);
}

/* The nonce of a sealed status (see WIRE_SEAL_CONTEXT above). */
static void seal_nonce(uint8_t npub[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES], uint64_t gen,
                       uint32_t seq, const uint8_t *rnd)
{
    put_u64(npub, gen);
    put_u32(npub + 8, seq);
    memset(npub + 12, 0, 4);
    memcpy(npub + 16, rnd, VIGIL_WIRE_SEAL_NONCE_LEN);
}

int vigil_wire_node_key(uint8_t node_key[VIGIL_WIRE_KEY_LEN],
                        const uint8_t master_key[VIGIL_WIRE_KEY_LEN], const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (!vigil_id_valid(id, len)) {
        sodium_memzero(node_key, VIGIL_WIRE_KEY_LEN);
        return -VIGIL_EBADID;
    }
    /* Cannot fail: output, key and personalization lengths are within BLAKE2b's limits. */
    (void)crypto_generichash_blake2b_salt_personal(node_key, VIGIL_WIRE_KEY_LEN,
                                                   (const unsigned char *)id, len, master_key,
                                                   VIGIL_WIRE_KEY_LEN, NULL, WIRE_NODE_PERSONAL);
    return 0;
}

/*
 * Checks the custom pairs of hb and adds their encoded size to *total,
 * keeping each key and value length for the encoder. Returns 0 or
 * -VIGIL_EBADFIELD.
 */
static int pairs_check(const struct vigil_heartbeat *hb, size_t klen[], size_t vlen[],
                       size_t *total)
{
    if (hb->n_custom > VIGIL_CUSTOM_MAX)
        return -VIGIL_EBADFIELD;
    for (unsigned i = 0; i < hb->n_custom; i++) {
        const struct vigil_custom *c = &hb->custom[i];
        if (!vigil_custom_key_valid(c->key) || !vigil_custom_value_valid(c->value))
            return -VIGIL_EBADFIELD;
        klen[i] = strlen(c->key);
        vlen[i] = strlen(c->value);
        *total += WIRE_PAIR_OVERHEAD + klen[i] + vlen[i];
    }
    return 0;
}

/* Writes the custom pairs checked by pairs_check() at buf + p; returns the new offset. */
static size_t pairs_put(const struct vigil_heartbeat *hb, const size_t klen[], const size_t vlen[],
                        uint8_t *buf, size_t p)
{
    for (unsigned i = 0; i < hb->n_custom; i++) {
        buf[p++] = (uint8_t)klen[i];
        memcpy(buf + p, hb->custom[i].key, klen[i]);
        p += klen[i];
        buf[p++] = (uint8_t)vlen[i];
        memcpy(buf + p, hb->custom[i].value, vlen[i]);
        p += vlen[i];
    }
    return p;
}

/* The status fields, in the order both versions carry them (36 bytes). */
static void status_put(uint8_t *p, const struct vigil_status *st)
{
    put_u32(p, st->load1_milli);
    put_u32(p + 4, st->load5_milli);
    put_u32(p + 8, st->load15_milli);
    put_u64(p + 12, st->mem_total_kib);
    put_u64(p + 20, st->mem_avail_kib);
    put_u64(p + 28, st->uptime_s);
}

static void status_get(const uint8_t *p, struct vigil_status *st)
{
    st->load1_milli = get_u32(p);
    st->load5_milli = get_u32(p + 4);
    st->load15_milli = get_u32(p + 8);
    st->mem_total_kib = get_u64(p + 12);
    st->mem_avail_kib = get_u64(p + 20);
    st->uptime_s = get_u64(p + 28);
}

/*
 * The flags byte an encoder writes: hb's flags without AUTH and SEALED
 * (the keys decide those), and the key id when there is a tag. Returns
 * -1 when hb's flags or key id are invalid.
 */
static int flags_byte(const struct vigil_heartbeat *hb, const uint8_t *key, bool sealed)
{
    uint8_t flags = hb->flags & (uint8_t) ~(VIGIL_FLAG_AUTH | VIGIL_FLAG_SEALED);
    if (flags & ~WIRE_FLAGS_KNOWN)
        return -1;
    if (key == NULL)
        return flags;
    if (hb->key_id > VIGIL_WIRE_KEY_ID_MAX)
        return -1;
    flags |= VIGIL_FLAG_AUTH | (sealed ? VIGIL_FLAG_SEALED : 0);
    return flags | hb->key_id << WIRE_KEY_ID_SHIFT;
}

static int encode_v1(const struct vigil_heartbeat *hb, const uint8_t *key, uint8_t *buf, size_t cap)
{
    /* Validate everything first, in the order the decoder checks it. */
    int fb = flags_byte(hb, key, false);
    if (fb < 0)
        return -VIGIL_EBADFIELD;
    uint8_t flags = (uint8_t)fb;
    size_t id_len = bounded_len(hb->id, sizeof hb->id);
    if (id_len == 0 || id_len > VIGIL_ID_MAX)
        return -VIGIL_EBADID;
    if (hb->n_custom > VIGIL_CUSTOM_MAX)
        return -VIGIL_EBADFIELD;
    if (!vigil_id_valid(hb->id, id_len))
        return -VIGIL_EBADID;
    if (hb->sequence == 0)
        return -VIGIL_EBADFIELD;
    if (hb->interval_ms == 0 || hb->interval_ms > VIGIL_WIRE_INTERVAL_MAX_MS)
        return -VIGIL_EBADFIELD;

    size_t klen[VIGIL_CUSTOM_MAX], vlen[VIGIL_CUSTOM_MAX];
    size_t total = WIRE_HEADER_LEN + id_len;
    int rc = pairs_check(hb, klen, vlen, &total);
    if (rc < 0)
        return rc;
    if (key != NULL)
        total += VIGIL_WIRE_TAG_LEN;
    if (total > VIGIL_WIRE_MAX || total > cap)
        return -VIGIL_ETOOBIG;

    buf[0] = WIRE_MAGIC0;
    buf[1] = WIRE_MAGIC1;
    buf[OFF_VERSION] = VIGIL_WIRE_V1;
    buf[OFF_TYPE] = VIGIL_MSG_HEARTBEAT;
    buf[OFF_FLAGS] = flags;
    buf[OFF_ID_LEN] = (uint8_t)id_len;
    buf[OFF_N_CUSTOM] = hb->n_custom;
    buf[OFF_RESERVED] = 0;
    put_u64(buf + OFF_GENERATION, hb->generation);
    put_u64(buf + OFF_SEQUENCE, hb->sequence);
    put_u64(buf + OFF_SEND_TIME, i64_to_u64(hb->send_time_us));
    put_u32(buf + OFF_INTERVAL, hb->interval_ms);
    status_put(buf + OFF_LOAD1, &hb->status);

    size_t p = WIRE_HEADER_LEN;
    memcpy(buf + p, hb->id, id_len);
    p += id_len;
    p = pairs_put(hb, klen, vlen, buf, p);
    if (key != NULL) {
        crypto_shorthash_siphashx24(buf + p, buf, p, key);
        p += VIGIL_WIRE_TAG_LEN;
    }
    return (int)p;
}

static int encode_v2(const struct vigil_heartbeat *hb, const struct vigil_wire_keys *k,
                     uint8_t *buf, size_t cap)
{
    /* Validate everything first, in the order the decoder checks it. */
    if (hb->type != VIGIL_MSG_BEAT && hb->type != VIGIL_MSG_STATUS)
        return -VIGIL_ETYPE;
    const uint8_t *key = k->mac;
    bool sealed = key != NULL && k->seal != NULL && hb->type == VIGIL_MSG_STATUS;
    if (sealed && k->nonce == NULL)
        return -VIGIL_EINVAL;
    int fb = flags_byte(hb, key, sealed);
    if (fb < 0)
        return -VIGIL_EBADFIELD;
    uint8_t flags = (uint8_t)fb;
    size_t id_len = bounded_len(hb->id, sizeof hb->id);
    if (id_len == 0 || id_len > VIGIL_ID_MAX || !vigil_id_valid(hb->id, id_len))
        return -VIGIL_EBADID;
    if (hb->sequence == 0 || hb->sequence > UINT32_MAX)
        return -VIGIL_EBADFIELD;
    if (hb->interval_ms == 0 || hb->interval_ms > VIGIL_WIRE_INTERVAL_MAX_MS)
        return -VIGIL_EBADFIELD;

    size_t klen[VIGIL_CUSTOM_MAX], vlen[VIGIL_CUSTOM_MAX];
    size_t total = V2_HEADER_LEN + id_len;
    if (hb->type == VIGIL_MSG_STATUS) {
        total += V2_STATUS_LEN;
        int rc = pairs_check(hb, klen, vlen, &total);
        if (rc < 0)
            return rc;
    }
    if (sealed)
        total += VIGIL_WIRE_SEAL_NONCE_LEN + VIGIL_WIRE_SEAL_TAG_LEN;
    else if (key != NULL)
        total += VIGIL_WIRE_V2_TAG_LEN;
    if (total > VIGIL_WIRE_MAX || total > cap)
        return -VIGIL_ETOOBIG;

    buf[0] = WIRE_MAGIC0;
    buf[1] = WIRE_MAGIC1;
    buf[OFF_VERSION] = VIGIL_WIRE_V2;
    buf[OFF_TYPE] = hb->type;
    buf[OFF_FLAGS] = flags;
    buf[OFF_ID_LEN] = (uint8_t)id_len;
    buf[V2_OFF_STATUS_VER] = (uint8_t)(hb->status_version >> 8);
    buf[V2_OFF_STATUS_VER + 1] = (uint8_t)hb->status_version;
    put_u64(buf + V2_OFF_GENERATION, hb->generation);
    put_u32(buf + V2_OFF_SEQUENCE, (uint32_t)hb->sequence);
    put_u32(buf + V2_OFF_INTERVAL, hb->interval_ms);

    size_t p = V2_HEADER_LEN;
    memcpy(buf + p, hb->id, id_len);
    p += id_len;
    if (sealed) {
        memcpy(buf + p, k->nonce, VIGIL_WIRE_SEAL_NONCE_LEN);
        p += VIGIL_WIRE_SEAL_NONCE_LEN;
    }
    size_t clear_end = p; /* a sealed status encrypts from here on */
    if (hb->type == VIGIL_MSG_STATUS) {
        put_u64(buf + p, i64_to_u64(hb->send_time_us));
        status_put(buf + p + V2_ST_STATUS, &hb->status);
        buf[p + V2_ST_N_CUSTOM] = hb->n_custom;
        p += V2_STATUS_LEN;
        p = pairs_put(hb, klen, vlen, buf, p);
    }
    if (sealed) {
        /* In place; everything before the ciphertext is associated data. */
        uint8_t npub[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
        seal_nonce(npub, hb->generation, (uint32_t)hb->sequence, k->nonce);
        (void)crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
            buf + clear_end, buf + p, NULL, buf + clear_end, p - clear_end, buf, clear_end, NULL,
            npub, k->seal);
        p += VIGIL_WIRE_SEAL_TAG_LEN;
    } else if (key != NULL) {
        /* The first 8 bytes of the 128-bit tag: see the note at the top. */
        uint8_t tag[VIGIL_WIRE_TAG_LEN];
        crypto_shorthash_siphashx24(tag, buf, p, key);
        memcpy(buf + p, tag, VIGIL_WIRE_V2_TAG_LEN);
        p += VIGIL_WIRE_V2_TAG_LEN;
    }
    return (int)p;
}

int vigil_wire_encode_keys(const struct vigil_heartbeat *hb, const struct vigil_wire_keys *k,
                           uint8_t *buf, size_t cap)
{
    static const struct vigil_wire_keys none = {0};
    if (hb == NULL || (buf == NULL && cap > 0))
        return -VIGIL_EINVAL;
    if (k == NULL)
        k = &none;
    if (hb->version == 0 || hb->version == VIGIL_WIRE_V1)
        return k->seal != NULL ? -VIGIL_EINVAL : encode_v1(hb, k->mac, buf, cap);
    if (hb->version == VIGIL_WIRE_V2)
        return encode_v2(hb, k, buf, cap);
    return -VIGIL_EVERSION;
}

int vigil_wire_encode(const struct vigil_heartbeat *hb, const uint8_t *key, uint8_t *buf,
                      size_t cap)
{
    const struct vigil_wire_keys k = {.mac = key};
    return vigil_wire_encode_keys(hb, &k, buf, cap);
}

/*
 * The first step of decoding, shared by vigil_wire_peek_id() and
 * vigil_wire_decode(): the header checks in the documented order, then the
 * node id. On success the id's offset and length are stored in *id_off
 * and *id_len and the datagram is known to hold at least its version's
 * header and a valid id. Checking the id here, before any tag is
 * verified, costs little and lets a receiver look the node up before it
 * pays for the tag; an invalid id is rejected either way.
 */
static int check_header(const uint8_t *buf, size_t len, size_t *id_off, size_t *id_len)
{
    if (len > VIGIL_WIRE_MAX)
        return -VIGIL_ETOOBIG;
    if (len < 2 || buf == NULL || buf[0] != WIRE_MAGIC0 || buf[1] != WIRE_MAGIC1)
        return -VIGIL_EMAGIC;
    if (len <= OFF_VERSION)
        return -VIGIL_ETRUNC;
    size_t hdr;
    if (buf[OFF_VERSION] == VIGIL_WIRE_V1)
        hdr = WIRE_HEADER_LEN;
    else if (buf[OFF_VERSION] == VIGIL_WIRE_V2)
        hdr = V2_HEADER_LEN;
    else
        return -VIGIL_EVERSION;
    if (len < hdr)
        return -VIGIL_ETRUNC;
    /*
     * Flags: no unknown bit; a key id only with a tag; SEALED only on an
     * authenticated version 2 full status.
     */
    uint8_t fl = buf[OFF_FLAGS];
    bool flags_ok = (fl & WIRE_FLAGS_MASK & ~WIRE_FLAGS_KNOWN) == 0 &&
                    ((fl & VIGIL_FLAG_AUTH) || (fl >> WIRE_KEY_ID_SHIFT) == 0);
    if (hdr == WIRE_HEADER_LEN) {
        if (buf[OFF_TYPE] != VIGIL_MSG_HEARTBEAT)
            return -VIGIL_ETYPE;
        if (!flags_ok || (fl & VIGIL_FLAG_SEALED) || buf[OFF_RESERVED] != 0)
            return -VIGIL_EBADFIELD;
    } else {
        if (buf[OFF_TYPE] != VIGIL_MSG_BEAT && buf[OFF_TYPE] != VIGIL_MSG_STATUS)
            return -VIGIL_ETYPE;
        if (!flags_ok || ((fl & VIGIL_FLAG_SEALED) &&
                          (buf[OFF_TYPE] != VIGIL_MSG_STATUS || !(fl & VIGIL_FLAG_AUTH))))
            return -VIGIL_EBADFIELD;
    }
    size_t n = buf[OFF_ID_LEN];
    if (n == 0 || n > VIGIL_ID_MAX)
        return -VIGIL_EBADID;
    if (hdr == WIRE_HEADER_LEN && buf[OFF_N_CUSTOM] > VIGIL_CUSTOM_MAX)
        return -VIGIL_EBADFIELD;
    if (len - hdr < n)
        return -VIGIL_ETRUNC;
    if (!vigil_id_valid((const char *)buf + hdr, n))
        return -VIGIL_EBADID;
    *id_off = hdr;
    *id_len = n;
    return 0;
}

int vigil_wire_peek(const uint8_t *buf, size_t len, struct vigil_wire_peek *out)
{
    size_t off = 0, n = 0;
    int rc = check_header(buf, len, &off, &n);
    if (rc < 0)
        return rc;
    out->id = (const char *)buf + off;
    out->id_len = n;
    out->version = buf[OFF_VERSION];
    out->type = buf[OFF_TYPE];
    out->flags = buf[OFF_FLAGS] & WIRE_FLAGS_MASK;
    out->key_id = buf[OFF_FLAGS] >> WIRE_KEY_ID_SHIFT;
    return 0;
}

int vigil_wire_peek_id(const uint8_t *buf, size_t len, const char **id, size_t *id_len)
{
    size_t off = 0, n = 0;
    int rc = check_header(buf, len, &off, &n);
    if (rc < 0)
        return rc;
    if (id != NULL)
        *id = (const char *)buf + off;
    if (id_len != NULL)
        *id_len = n;
    return 0;
}

/*
 * Decodes n custom pairs from buf[*p] up to end into hb; every length is
 * checked against end before use. Returns 0 or a negative error.
 */
static int pairs_get(const uint8_t *buf, size_t *pp, size_t end, unsigned n,
                     struct vigil_heartbeat *hb)
{
    size_t p = *pp;
    for (unsigned i = 0; i < n; i++) {
        struct vigil_custom *c = &hb->custom[i];
        if (p >= end)
            return -VIGIL_ETRUNC;
        size_t kl = buf[p++];
        if (kl == 0 || kl > VIGIL_CUSTOM_KEY_MAX)
            return -VIGIL_EBADFIELD;
        if (end - p < kl)
            return -VIGIL_ETRUNC;
        if (!vigil_id_valid((const char *)buf + p, kl))
            return -VIGIL_EBADFIELD;
        memcpy(c->key, buf + p, kl);
        c->key[kl] = '\0';
        p += kl;

        if (p >= end)
            return -VIGIL_ETRUNC;
        size_t vl = buf[p++];
        if (vl > VIGIL_CUSTOM_VAL_MAX)
            return -VIGIL_EBADFIELD;
        if (end - p < vl)
            return -VIGIL_ETRUNC;
        if (!value_bytes_valid(buf + p, vl))
            return -VIGIL_EBADFIELD;
        memcpy(c->value, buf + p, vl);
        c->value[vl] = '\0';
        p += vl;
    }
    hb->n_custom = (uint8_t)n;
    *pp = p;
    return 0;
}

/*
 * Finds the tag (tag_len bytes at the end) and, with a key, verifies it in
 * constant time. body is where the id ends; *end becomes one past the last
 * byte the tag covers. Returns 0, -VIGIL_ETRUNC or -VIGIL_EAUTH.
 */
static int check_tag(const uint8_t *buf, size_t len, size_t body, size_t tag_len,
                     const uint8_t *key, size_t *end)
{
    *end = len;
    if (buf[OFF_FLAGS] & VIGIL_FLAG_AUTH) {
        if (len - body < tag_len)
            return -VIGIL_ETRUNC;
        *end = len - tag_len;
        if (key != NULL) {
            uint8_t tag[VIGIL_WIRE_TAG_LEN];
            crypto_shorthash_siphashx24(tag, buf, *end, key);
            /*
             * Constant time, at a fraction of sodium_memcmp's cost: the
             * 16-byte tag with crypto_verify_16, the 8-byte one as one
             * word (a single compare of the XOR, whatever bytes differ).
             */
            bool same;
            if (tag_len == crypto_verify_16_BYTES) {
                same = crypto_verify_16(tag, buf + *end) == 0;
            } else if (tag_len == sizeof(uint64_t)) {
                uint64_t a, b;
                memcpy(&a, tag, sizeof(a));
                memcpy(&b, buf + *end, sizeof(b));
                same = (a ^ b) == 0;
            } else {
                same = sodium_memcmp(tag, buf + *end, tag_len) == 0;
            }
            if (!same)
                return -VIGIL_EAUTH;
        }
    } else if (key != NULL) {
        return -VIGIL_EAUTH;
    }
    return 0;
}

static int decode_v1(const uint8_t *buf, size_t len, const uint8_t *key, size_t id_len,
                     struct vigil_heartbeat *hb)
{
    size_t end; /* one past the last body byte */
    int rc = check_tag(buf, len, WIRE_HEADER_LEN + id_len, VIGIL_WIRE_TAG_LEN, key, &end);
    if (rc < 0)
        return rc;

    /* The fixed fields: all present, since len >= WIRE_HEADER_LEN. */
    hb->version = VIGIL_WIRE_V1;
    hb->type = VIGIL_MSG_HEARTBEAT;
    hb->flags = buf[OFF_FLAGS] & WIRE_FLAGS_MASK;
    hb->key_id = buf[OFF_FLAGS] >> WIRE_KEY_ID_SHIFT;
    hb->status_version = 0;
    hb->generation = get_u64(buf + OFF_GENERATION);
    hb->sequence = get_u64(buf + OFF_SEQUENCE);
    if (hb->sequence == 0)
        return -VIGIL_EBADFIELD;
    hb->send_time_us = u64_to_i64(get_u64(buf + OFF_SEND_TIME));
    hb->interval_ms = get_u32(buf + OFF_INTERVAL);
    if (hb->interval_ms == 0 || hb->interval_ms > VIGIL_WIRE_INTERVAL_MAX_MS)
        return -VIGIL_EBADFIELD;
    status_get(buf + OFF_LOAD1, &hb->status);

    /* The id: check_header() made sure it is inside the buffer and valid. */
    size_t p = WIRE_HEADER_LEN;
    memcpy(hb->id, buf + p, id_len);
    hb->id[id_len] = '\0';
    p += id_len;

    rc = pairs_get(buf, &p, end, buf[OFF_N_CUSTOM], hb);
    if (rc < 0)
        return rc;
    if (p != end)
        return -VIGIL_ETOOBIG;
    return 0;
}

/*
 * Opens a sealed full status: buf[body, len) is the 8 nonce bytes, the
 * ciphertext and the 16-byte tag; everything before the ciphertext is the
 * associated data. The plaintext goes to plain; *plain_len is its length.
 * Returns 0, -VIGIL_ETRUNC or -VIGIL_EAUTH.
 */
static int open_sealed(const uint8_t *buf, size_t len, size_t body, const uint8_t *seal_key,
                       uint8_t *plain, size_t *plain_len)
{
    if (len - body < VIGIL_WIRE_SEAL_NONCE_LEN + VIGIL_WIRE_SEAL_TAG_LEN)
        return -VIGIL_ETRUNC;
    if (seal_key == NULL)
        return -VIGIL_EAUTH;
    size_t ad_len = body + VIGIL_WIRE_SEAL_NONCE_LEN;
    size_t c_len = len - ad_len - VIGIL_WIRE_SEAL_TAG_LEN;
    uint8_t npub[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    seal_nonce(npub, get_u64(buf + V2_OFF_GENERATION), get_u32(buf + V2_OFF_SEQUENCE), buf + body);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(plain, NULL, buf + ad_len, c_len,
                                                            buf + ad_len + c_len, buf, ad_len, npub,
                                                            seal_key) != 0)
        return -VIGIL_EAUTH;
    *plain_len = c_len;
    return 0;
}

static int decode_v2(const uint8_t *buf, size_t len, const struct vigil_wire_keys *k, size_t id_len,
                     struct vigil_heartbeat *hb)
{
    size_t end;
    size_t body = V2_HEADER_LEN + id_len;
    /* A sealed status is read from its plaintext; everything else in place. */
    uint8_t plain[VIGIL_WIRE_MAX];
    const uint8_t *src = buf;
    size_t p = body;
    int rc;
    if (buf[OFF_FLAGS] & VIGIL_FLAG_SEALED) {
        rc = open_sealed(buf, len, body, k->seal, plain, &end);
        src = plain;
        p = 0;
    } else {
        rc = check_tag(buf, len, body, VIGIL_WIRE_V2_TAG_LEN, k->mac, &end);
    }
    if (rc < 0)
        return rc;

    hb->version = VIGIL_WIRE_V2;
    hb->type = buf[OFF_TYPE];
    hb->flags = buf[OFF_FLAGS] & WIRE_FLAGS_MASK;
    hb->key_id = buf[OFF_FLAGS] >> WIRE_KEY_ID_SHIFT;
    hb->status_version = (uint16_t)(buf[V2_OFF_STATUS_VER] << 8 | buf[V2_OFF_STATUS_VER + 1]);
    hb->generation = get_u64(buf + V2_OFF_GENERATION);
    hb->sequence = get_u32(buf + V2_OFF_SEQUENCE);
    if (hb->sequence == 0)
        return -VIGIL_EBADFIELD;
    hb->interval_ms = get_u32(buf + V2_OFF_INTERVAL);
    if (hb->interval_ms == 0 || hb->interval_ms > VIGIL_WIRE_INTERVAL_MAX_MS)
        return -VIGIL_EBADFIELD;

    memcpy(hb->id, buf + V2_HEADER_LEN, id_len);
    hb->id[id_len] = '\0';

    if (hb->type == VIGIL_MSG_BEAT) {
        /* A beat carries no status: the fields read as "unknown". */
        hb->send_time_us = 0;
        memset(&hb->status, 0, sizeof hb->status);
        hb->n_custom = 0;
    } else {
        if (end - p < V2_STATUS_LEN)
            return -VIGIL_ETRUNC;
        hb->send_time_us = u64_to_i64(get_u64(src + p));
        status_get(src + p + V2_ST_STATUS, &hb->status);
        unsigned n_custom = src[p + V2_ST_N_CUSTOM];
        if (n_custom > VIGIL_CUSTOM_MAX)
            return -VIGIL_EBADFIELD;
        p += V2_STATUS_LEN;
        rc = pairs_get(src, &p, end, n_custom, hb);
        if (rc < 0)
            return rc;
    }
    if (p != end)
        return -VIGIL_ETOOBIG;
    return 0;
}

int vigil_wire_decode_keys(const uint8_t *buf, size_t len, const struct vigil_wire_keys *k,
                           struct vigil_heartbeat *hb)
{
    static const struct vigil_wire_keys none = {0};
    if (hb == NULL)
        return -VIGIL_EINVAL;
    if (k == NULL)
        k = &none;
    size_t id_off = 0, id_len = 0;
    int rc = check_header(buf, len, &id_off, &id_len);
    if (rc < 0)
        return rc;
    if (id_off == WIRE_HEADER_LEN)
        return decode_v1(buf, len, k->mac, id_len, hb);
    return decode_v2(buf, len, k, id_len, hb);
}

int vigil__wire_decode_peeked(const uint8_t *buf, size_t len, const struct vigil_wire_peek *pk,
                              const struct vigil_wire_keys *k, struct vigil_heartbeat *hb)
{
    static const struct vigil_wire_keys none = {0};
    if (k == NULL)
        k = &none;
    if ((const uint8_t *)pk->id - buf == WIRE_HEADER_LEN)
        return decode_v1(buf, len, k->mac, pk->id_len, hb);
    return decode_v2(buf, len, k, pk->id_len, hb);
}

int vigil_wire_decode(const uint8_t *buf, size_t len, const uint8_t *key,
                      struct vigil_heartbeat *hb)
{
    const struct vigil_wire_keys k = {.mac = key};
    return vigil_wire_decode_keys(buf, len, &k, hb);
}

/* --- echoes ------------------------------------------------------------ */

#define ECHO_OFF_TOKEN  8
#define ECHO_HEADER_LEN 16

int vigil_wire_encode_echo(const struct vigil_echo *e, const uint8_t *key, uint8_t *buf, size_t cap)
{
    if (e->type != VIGIL_MSG_PING && e->type != VIGIL_MSG_PONG)
        return -VIGIL_ETYPE;
    size_t id_len = strnlen(e->id, VIGIL_ID_MAX + 1);
    if (!vigil_id_valid(e->id, id_len))
        return -VIGIL_EBADID;
    if (e->key_id > VIGIL_WIRE_KEY_ID_MAX)
        return -VIGIL_EBADFIELD;
    size_t len = ECHO_HEADER_LEN + id_len + (key ? VIGIL_WIRE_TAG_LEN : 0);
    if (len > cap)
        return -VIGIL_ETOOBIG;
    memset(buf, 0, ECHO_HEADER_LEN);
    buf[0] = WIRE_MAGIC0;
    buf[1] = WIRE_MAGIC1;
    buf[OFF_VERSION] = VIGIL_WIRE_V2;
    buf[OFF_TYPE] = e->type;
    buf[OFF_FLAGS] = key ? (uint8_t)(VIGIL_FLAG_AUTH | e->key_id << WIRE_KEY_ID_SHIFT) : 0;
    buf[OFF_ID_LEN] = (uint8_t)id_len;
    put_u64(buf + ECHO_OFF_TOKEN, e->token);
    memcpy(buf + ECHO_HEADER_LEN, e->id, id_len);
    if (key)
        crypto_shorthash_siphashx24(buf + ECHO_HEADER_LEN + id_len, buf, ECHO_HEADER_LEN + id_len,
                                    key);
    return (int)len;
}

int vigil_wire_decode_echo(const uint8_t *buf, size_t len, const uint8_t *key, struct vigil_echo *e)
{
    if (len < ECHO_HEADER_LEN)
        return -VIGIL_ETRUNC;
    if (len > VIGIL_WIRE_ECHO_MAX)
        return -VIGIL_ETOOBIG;
    if (buf[0] != WIRE_MAGIC0 || buf[1] != WIRE_MAGIC1)
        return -VIGIL_EMAGIC;
    if (buf[OFF_VERSION] != VIGIL_WIRE_V2)
        return -VIGIL_EVERSION;
    uint8_t type = buf[OFF_TYPE];
    if (type != VIGIL_MSG_PING && type != VIGIL_MSG_PONG)
        return -VIGIL_ETYPE;
    uint8_t flags = buf[OFF_FLAGS] & WIRE_FLAGS_MASK;
    /* An untagged echo names no key: one encoding only. */
    if ((flags & ~VIGIL_FLAG_AUTH) != 0 || buf[6] != 0 || buf[7] != 0 ||
        (!(flags & VIGIL_FLAG_AUTH) && (buf[OFF_FLAGS] >> WIRE_KEY_ID_SHIFT) != 0))
        return -VIGIL_EBADFIELD;
    size_t id_len = buf[OFF_ID_LEN];
    size_t tag = (flags & VIGIL_FLAG_AUTH) ? VIGIL_WIRE_TAG_LEN : 0;
    if (id_len == 0 || id_len > VIGIL_ID_MAX)
        return -VIGIL_EBADID;
    if (len != ECHO_HEADER_LEN + id_len + tag)
        return len < ECHO_HEADER_LEN + id_len + tag ? -VIGIL_ETRUNC : -VIGIL_ETOOBIG;
    if (!vigil_id_valid((const char *)buf + ECHO_HEADER_LEN, id_len))
        return -VIGIL_EBADID;
    if (key) {
        if (!tag)
            return -VIGIL_EAUTH;
        uint8_t want[VIGIL_WIRE_TAG_LEN];
        crypto_shorthash_siphashx24(want, buf, ECHO_HEADER_LEN + id_len, key);
        if (sodium_memcmp(want, buf + ECHO_HEADER_LEN + id_len, VIGIL_WIRE_TAG_LEN) != 0)
            return -VIGIL_EAUTH;
    }
    e->type = type;
    e->key_id = (uint8_t)(buf[OFF_FLAGS] >> WIRE_KEY_ID_SHIFT);
    memcpy(e->id, buf + ECHO_HEADER_LEN, id_len);
    e->id[id_len] = '\0';
    e->token = get_u64(buf + ECHO_OFF_TOKEN);
    return 0;
}
