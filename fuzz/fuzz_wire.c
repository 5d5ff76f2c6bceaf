/*
 * Fuzz target for the wire codec (libFuzzer entry point).
 *
 * Every input is decoded twice: without a key and with a fixed fuzzing key.
 * Beyond "does not crash and does not read out of bounds" (which the
 * sanitizers check), the target asserts the codec's properties and calls
 * abort() when one fails:
 *
 *  - decode returns 0 or one of the documented negative codes;
 *  - vigil_wire_peek_id() is the decoder's first step: when it fails, the
 *    decoder fails with the same code; when decode succeeds, peek finds
 *    the same id;
 *  - a decoded heartbeat re-encodes, the result decodes again to the same
 *    heartbeat, and the bytes are the input's own (the encoding is
 *    canonical; without a key, minus the tag and the AUTH flag);
 *  - the encoder, handed the input's bytes as a heartbeat struct, either
 *    refuses it or produces a datagram that decodes.
 *
 * The fuzzing key is the tag key derived (vigil_wire_mac_key()) from the
 * cluster key 0, 1, ..., 31, the key the seeds in fuzz/corpus/wire/ are
 * authenticated with, so that mutations of an authenticated seed reach the
 * body parser through a valid tag whenever they leave the authenticated
 * bytes alone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* The header length of wire v1 (docs/protocol.md). */
#define FUZZ_HDR 72
/* Offset of the flags byte. */
#define FUZZ_OFF_FLAGS 4

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool hb_equal(const struct vigil_heartbeat *a, const struct vigil_heartbeat *b)
{
    if (strcmp(a->id, b->id) != 0 || a->flags != b->flags || a->generation != b->generation ||
        a->sequence != b->sequence || a->send_time_us != b->send_time_us ||
        a->interval_ms != b->interval_ms || a->status.load1_milli != b->status.load1_milli ||
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

static void check_decode(const uint8_t *data, size_t size, const uint8_t *key)
{
    struct vigil_heartbeat hb;
    int rc = vigil_wire_decode(data, size, key, &hb);
    check(rc <= 0 && rc > -VIGIL_ERROR_COUNT_);

    const char *id = NULL;
    size_t id_len = 0;
    int prc = vigil_wire_peek_id(data, size, &id, &id_len);
    if (prc < 0) {
        check(rc == prc);
        return;
    }
    check(id_len >= 1 && id_len <= VIGIL_ID_MAX && id == (const char *)data + FUZZ_HDR);
    if (rc < 0)
        return;

    check(strlen(hb.id) == id_len && memcmp(hb.id, id, id_len) == 0);
    check(key == NULL || (hb.flags & VIGIL_FLAG_AUTH));

    uint8_t out[VIGIL_WIRE_MAX];
    int n = vigil_wire_encode(&hb, key, out, sizeof out);
    check(n > 0);

    /* Canonical encoding: the same bytes, minus a skipped tag when unkeyed. */
    bool dropped_tag = key == NULL && (hb.flags & VIGIL_FLAG_AUTH);
    size_t expect_len = dropped_tag ? size - VIGIL_WIRE_TAG_LEN : size;
    check((size_t)n == expect_len);
    check(memcmp(out, data, FUZZ_OFF_FLAGS) == 0);
    check(out[FUZZ_OFF_FLAGS] ==
          (dropped_tag ? data[FUZZ_OFF_FLAGS] & ~VIGIL_FLAG_AUTH : data[FUZZ_OFF_FLAGS]));
    check(memcmp(out + FUZZ_OFF_FLAGS + 1, data + FUZZ_OFF_FLAGS + 1,
                 expect_len - FUZZ_OFF_FLAGS - 1) == 0);

    struct vigil_heartbeat again;
    check(vigil_wire_decode(out, (size_t)n, key, &again) == 0);
    if (dropped_tag)
        hb.flags &= (uint8_t)~VIGIL_FLAG_AUTH;
    check(hb_equal(&hb, &again));
}

/* The input's bytes as a heartbeat struct: the encoder refuses it or its output decodes. */
static void check_encode(const uint8_t *data, size_t size)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof hb);
    memcpy(&hb, data, size < sizeof hb ? size : sizeof hb);
    const uint8_t *key = size > 0 && (data[0] & 1) ? fuzz_key() : NULL;
    uint8_t out[VIGIL_WIRE_MAX];
    int n = vigil_wire_encode(&hb, key, out, sizeof out);
    check(n <= VIGIL_WIRE_MAX && n > -VIGIL_ERROR_COUNT_);
    if (n < 0)
        return;
    struct vigil_heartbeat back;
    check(vigil_wire_decode(out, (size_t)n, key, &back) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_decode(data, size, NULL);
    check_decode(data, size, fuzz_key());
    check_encode(data, size);
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
