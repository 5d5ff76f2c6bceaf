/*
 * Fuzz target for the wire codec (libFuzzer entry point).
 *
 * Every input is decoded twice: without a key and with a fixed fuzzing key,
 * in either wire version (version 1 heartbeats, version 2 beats and full
 * statuses).
 * Beyond "does not crash and does not read out of bounds" (which the
 * sanitizers check), the target asserts the codec's properties and calls
 * abort() when one fails:
 *
 *  - decode returns 0 or one of the documented negative codes, and reports
 *    the version and type of what it decoded (a beat with no status);
 *  - vigil_wire_peek_id() is the decoder's first step: when it fails, the
 *    decoder fails with the same code; when decode succeeds, peek finds
 *    the same id;
 *  - a decoded heartbeat re-encodes, the result decodes again to the same
 *    heartbeat, and the bytes are the input's own (the encoding is
 *    canonical; without a key, minus the tag, the AUTH flag and the key id;
 *    a sealed status re-sealed with its own nonce is the same ciphertext);
 *  - the encoder, handed the input's bytes as a heartbeat struct, either
 *    refuses it or produces a datagram that decodes;
 *  - two monitors (without and with the key) take every input, and one
 *    they accept with the full status holds a current status.
 *
 * The fuzzing keys are the tag and seal keys derived (vigil_wire_mac_key(),
 * vigil_wire_seal_key()) from the cluster key 0, 1, ..., 31, the key the seeds in fuzz/corpus/wire/
 * are authenticated with, so that mutations of an authenticated seed reach the body parser through
 * a valid tag whenever they leave the authenticated bytes alone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/monitor.h"
#include "vigil/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int vigil_fuzz_seed(size_t index, uint8_t *buf, size_t cap);

static const uint8_t FUZZ_CLUSTER_KEY[VIGIL_WIRE_KEY_LEN] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

/*
 * The tag key derived from FUZZ_CLUSTER_KEY, computed on first use (by the
 * first input or the first seed, whichever comes first) and kept.
 */
static const uint8_t *fuzz_key(void)
{
    static uint8_t key[VIGIL_WIRE_MAC_KEY_LEN];
    static bool derived;
    if (!derived) {
        vigil_wire_mac_key(key, FUZZ_CLUSTER_KEY);
        derived = true;
    }
    return key;
}

/* The seal key derived from FUZZ_CLUSTER_KEY (vigil_wire_seal_key()), likewise. */
static const uint8_t *fuzz_seal_key(void)
{
    static uint8_t key[VIGIL_WIRE_SEAL_KEY_LEN];
    static bool derived;
    if (!derived) {
        vigil_wire_seal_key(key, FUZZ_CLUSTER_KEY);
        derived = true;
    }
    return key;
}

/* The header lengths of wire v1 and v2 (docs/protocol.md): where the id starts. */
#define FUZZ_HDR    72
#define FUZZ_HDR_V2 24
/* Offset of the version byte. */
#define FUZZ_OFF_VERSION 2
/* Offset of the flags byte. */
#define FUZZ_OFF_FLAGS 4

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool hb_equal(const struct vigil_heartbeat *a, const struct vigil_heartbeat *b)
{
    if (strcmp(a->id, b->id) != 0 || a->version != b->version || a->type != b->type ||
        a->status_version != b->status_version || a->flags != b->flags || a->key_id != b->key_id ||
        a->generation != b->generation || a->sequence != b->sequence ||
        a->send_time_us != b->send_time_us || a->interval_ms != b->interval_ms ||
        a->status.load1_milli != b->status.load1_milli ||
        a->status.load5_milli != b->status.load5_milli ||
        a->status.load15_milli != b->status.load15_milli ||
        a->status.mem_total_kib != b->status.mem_total_kib ||
        a->status.mem_avail_kib != b->status.mem_avail_kib ||
        a->status.uptime_s != b->status.uptime_s || a->n_custom != b->n_custom)
        return false;
    for (unsigned i = 0; i < a->n_custom; i++)
        if (strcmp(a->custom[i].key, b->custom[i].key) != 0 ||
            strcmp(a->custom[i].value, b->custom[i].value) != 0)
            return false;
    return true;
}

static void check_decode(const uint8_t *data, size_t size, bool keyed)
{
    struct vigil_heartbeat hb;
    struct vigil_wire_keys k = {0};
    if (keyed) {
        k.mac = fuzz_key();
        k.seal = fuzz_seal_key();
    }
    int rc = vigil_wire_decode_keys(data, size, &k, &hb);
    check(rc <= 0 && rc > -VIGIL_ERROR_COUNT_);

    const char *id = NULL;
    size_t id_len = 0;
    int prc = vigil_wire_peek_id(data, size, &id, &id_len);
    if (prc < 0) {
        check(rc == prc);
        return;
    }
    size_t hdr = data[FUZZ_OFF_VERSION] == VIGIL_WIRE_V2 ? FUZZ_HDR_V2 : FUZZ_HDR;
    check(id_len >= 1 && id_len <= VIGIL_ID_MAX && id == (const char *)data + hdr);
    if (rc < 0)
        return;
    check(hb.version == data[FUZZ_OFF_VERSION] && hb.type == data[FUZZ_OFF_VERSION + 1]);
    /* A version 2 beat carries no status: the decoder reports none. */
    if (hb.version == VIGIL_WIRE_V2 && hb.type == VIGIL_MSG_BEAT)
        check(hb.n_custom == 0 && hb.send_time_us == 0 && hb.status.uptime_s == 0);

    check(strlen(hb.id) == id_len && memcmp(hb.id, id, id_len) == 0);
    check(!keyed || (hb.flags & VIGIL_FLAG_AUTH));
    check(hb.flags == (data[FUZZ_OFF_FLAGS] & 0x0f) && hb.key_id == data[FUZZ_OFF_FLAGS] >> 4);
    /* Only a keyed receiver opens a sealed status; it re-seals with the same nonce. */
    bool sealed = hb.flags & VIGIL_FLAG_SEALED;
    check(!sealed || (keyed && hb.version == VIGIL_WIRE_V2 && hb.type == VIGIL_MSG_STATUS));
    if (sealed)
        k.nonce = data + hdr + id_len;
    else
        k.seal = NULL;

    uint8_t out[VIGIL_WIRE_MAX];
    int n = vigil_wire_encode_keys(&hb, &k, out, sizeof out);
    check(n > 0);

    /*
     * Canonical encoding: the same bytes, minus a skipped tag when unkeyed
     * (and the AUTH flag and key id with it).
     */
    bool dropped_tag = !keyed && (hb.flags & VIGIL_FLAG_AUTH);
    size_t tag_len = hb.version == VIGIL_WIRE_V2 ? VIGIL_WIRE_V2_TAG_LEN : VIGIL_WIRE_TAG_LEN;
    size_t expect_len = dropped_tag ? size - tag_len : size;
    check((size_t)n == expect_len);
    check(memcmp(out, data, FUZZ_OFF_FLAGS) == 0);
    check(out[FUZZ_OFF_FLAGS] ==
          (dropped_tag ? data[FUZZ_OFF_FLAGS] & 0x0f & ~VIGIL_FLAG_AUTH : data[FUZZ_OFF_FLAGS]));
    check(memcmp(out + FUZZ_OFF_FLAGS + 1, data + FUZZ_OFF_FLAGS + 1,
                 expect_len - FUZZ_OFF_FLAGS - 1) == 0);

    struct vigil_heartbeat again;
    k.seal = keyed ? fuzz_seal_key() : NULL;
    check(vigil_wire_decode_keys(out, (size_t)n, &k, &again) == 0);
    if (dropped_tag) {
        hb.flags &= (uint8_t)~VIGIL_FLAG_AUTH;
        hb.key_id = 0;
    }
    check(hb_equal(&hb, &again));
}

/* The input's bytes as a heartbeat struct: the encoder refuses it or its output decodes. */
static void check_encode(const uint8_t *data, size_t size)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof hb);
    memcpy(&hb, data, size < sizeof hb ? size : sizeof hb);
    /* The first byte picks the keys: a tag key, and a seal key with a nonce from the input. */
    struct vigil_wire_keys k = {0};
    if (size > 0 && (data[0] & 1))
        k.mac = fuzz_key();
    if (size > VIGIL_WIRE_SEAL_NONCE_LEN && (data[0] & 2)) {
        k.seal = fuzz_seal_key();
        k.nonce = data + 1;
    }
    uint8_t out[VIGIL_WIRE_MAX];
    int n = vigil_wire_encode_keys(&hb, &k, out, sizeof out);
    check(n <= VIGIL_WIRE_MAX && n > -VIGIL_ERROR_COUNT_);
    if (n < 0)
        return;
    struct vigil_heartbeat back;
    check(vigil_wire_decode_keys(out, (size_t)n, &k, &back) == 0);
    check(back.key_id == (k.mac ? hb.key_id : 0));
}

/*
 * Every input also goes to two monitors, one without a key and one with the
 * fuzzing key, so that the apply path of both versions (status stored,
 * kept across beats, marked stale, reset by a new generation) runs on what
 * the decoder lets through. They live for the whole run, on a virtual clock
 * that moves 100 ms per input, with a small table.
 */
static void check_monitor(const uint8_t *data, size_t size)
{
    static struct vigil_monitor *mons[2];
    static vigil_time_t now;
    if (mons[0] == NULL) {
        for (int i = 0; i < 2; i++) {
            struct vigil_monitor_config c;
            vigil_monitor_config_default(&c);
            c.max_nodes = 64;
            c.has_key = i == 1;
            memcpy(c.key, FUZZ_CLUSTER_KEY, sizeof c.key);
            check(vigil_monitor_new(&c, 0, &mons[i]) == 0);
        }
    }
    now += 100 * VIGIL_NSEC_PER_MSEC;
    for (int i = 0; i < 2; i++) {
        int rc = vigil_monitor_on_datagram(mons[i], now, data, size, NULL);
        check(rc <= 0 && rc > -VIGIL_ERROR_COUNT_);
        vigil_monitor_on_expiry(mons[i], now);
        struct vigil_event ev;
        while (vigil_monitor_poll_event(mons[i], &ev))
            ;
        const char *id = NULL;
        size_t id_len = 0;
        if (rc != 0 || vigil_wire_peek_id(data, size, &id, &id_len) != 0)
            continue;
        char name[VIGIL_ID_MAX + 1];
        memcpy(name, id, id_len);
        name[id_len] = '\0';
        const struct vigil_node *n = vigil_monitor_find(mons[i], name);
        check(n != NULL && vigil_node_custom_count(n) <= VIGIL_CUSTOM_MAX);
        /* A heartbeat that carries the full status makes it current (memory allowing). */
        if (data[FUZZ_OFF_VERSION] == VIGIL_WIRE_V1 ||
            data[FUZZ_OFF_VERSION + 1] == VIGIL_MSG_STATUS)
            check(!vigil_node_status_stale(n));
    }
}

/*
 * Echoes (ping checks): a decode with the key must accept only what the
 * key tagged, and whatever decodes encodes back to the same bytes.
 */
static void check_echo(const uint8_t *data, size_t size)
{
    struct vigil_echo e;
    for (int keyed = 0; keyed < 2; keyed++) {
        const uint8_t *key = keyed ? fuzz_key() : NULL;
        if (vigil_wire_decode_echo(data, size, key, &e) != 0)
            continue;
        check(e.type == VIGIL_MSG_PING || e.type == VIGIL_MSG_PONG);
        check(vigil_id_valid(e.id, strlen(e.id)));
        bool tagged = (data[FUZZ_OFF_FLAGS] & VIGIL_FLAG_AUTH) != 0;
        check(!keyed || tagged);
        uint8_t out[VIGIL_WIRE_ECHO_MAX];
        int n = vigil_wire_encode_echo(&e, tagged ? fuzz_key() : NULL, out, sizeof out);
        /* Keyed: the same bytes. Unkeyed, a tag is not checked: the bytes before it match. */
        if (keyed || !tagged) {
            check(n == (int)size && memcmp(out, data, size) == 0);
        } else {
            check(n == (int)size && memcmp(out, data, size - VIGIL_WIRE_TAG_LEN) == 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_echo(data, size);
    check_decode(data, size, false);
    check_decode(data, size, true);
    check_encode(data, size);
    check_monitor(data, size);
    return 0;
}

/*
 * Valid datagrams for fuzz/replay_main.c to mutate, so that the replay run
 * starts from real heartbeats even without a corpus directory. Returns the
 * length of seed number index, or -1 when there are no more.
 */
int vigil_fuzz_seed(size_t index, uint8_t *buf, size_t cap)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof hb);
    memcpy(hb.id, "node-1.example", sizeof "node-1.example");
    hb.generation = UINT64_C(1700000000000000);
    hb.sequence = 7;
    hb.send_time_us = INT64_C(1700000000123456);
    hb.interval_ms = 1000;
    hb.status.load1_milli = 1250;
    hb.status.mem_total_kib = 16384000;
    hb.status.uptime_s = 3600;
    hb.n_custom = 2;
    memcpy(hb.custom[0].key, "role", sizeof "role");
    memcpy(hb.custom[0].value, "db primary", sizeof "db primary");
    memcpy(hb.custom[1].key, "zone", sizeof "zone");

    switch (index) {
    case 0:
        return vigil_wire_encode(&hb, NULL, buf, cap);
    case 1:
        return vigil_wire_encode(&hb, fuzz_key(), buf, cap);
    case 2:
        hb.flags = VIGIL_FLAG_LEAVING;
        hb.n_custom = 0;
        return vigil_wire_encode(&hb, fuzz_key(), buf, cap);
    case 4:
    case 5:
        /* Version 2: a full status, then a beat (its status fields are not sent). */
        hb.version = VIGIL_WIRE_V2;
        hb.type = index == 4 ? VIGIL_MSG_STATUS : VIGIL_MSG_BEAT;
        hb.status_version = 3;
        return vigil_wire_encode(&hb, fuzz_key(), buf, cap);
    case 6:
        hb.version = VIGIL_WIRE_V2;
        hb.type = VIGIL_MSG_BEAT;
        hb.flags = VIGIL_FLAG_LEAVING;
        return vigil_wire_encode(&hb, NULL, buf, cap);
    case 7:
    case 8: {
        /* Version 2 with key ids: a sealed full status (key 3), a beat (key 5). */
        static const uint8_t nonce[VIGIL_WIRE_SEAL_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
        struct vigil_wire_keys k = {.mac = fuzz_key(), .seal = fuzz_seal_key(), .nonce = nonce};
        hb.version = VIGIL_WIRE_V2;
        hb.type = index == 7 ? VIGIL_MSG_STATUS : VIGIL_MSG_BEAT;
        hb.key_id = index == 7 ? 3 : 5;
        return vigil_wire_encode_keys(&hb, &k, buf, cap);
    }
    case 9:
    case 10: {
        /* Echoes: a tagged ping (key id 2) and an untagged pong. */
        struct vigil_echo e = {.type = index == 9 ? VIGIL_MSG_PING : VIGIL_MSG_PONG,
                               .key_id = index == 9 ? 2 : 0,
                               .token = UINT64_C(0x0123456789abcdef)};
        memcpy(e.id, hb.id, sizeof hb.id);
        return vigil_wire_encode_echo(&e, index == 9 ? fuzz_key() : NULL, buf, cap);
    }
    case 3:
        hb.n_custom = VIGIL_CUSTOM_MAX;
        for (int i = 0; i < VIGIL_CUSTOM_MAX; i++) {
            memcpy(hb.custom[i].key, "k-00", sizeof "k-00");
            hb.custom[i].key[2] = (char)('0' + i / 10);
            hb.custom[i].key[3] = (char)('0' + i % 10);
            memcpy(hb.custom[i].value, "v = ~!", sizeof "v = ~!");
        }
        return vigil_wire_encode(&hb, NULL, buf, cap);
    default:
        return -1;
    }
}
