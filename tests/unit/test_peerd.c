/*
 * A member's status as its metadata (peerd.h, docs/peer.md "Status"):
 * round trips, what does not fit, and every malformed form refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vigil/peerd.h"
#include <vigil/swim.h>

static void test_round_trip(void **st)
{
    (void)st;
    struct vigil_status s = {.load1_milli = 1200,
                             .load5_milli = 800,
                             .load15_milli = 100,
                             .mem_total_kib = 24ull << 20,
                             .mem_avail_kib = 3ull << 20,
                             .uptime_s = 86400};
    struct vigil_custom c[2];
    snprintf(c[0].key, sizeof c[0].key, "role");
    snprintf(c[0].value, sizeof c[0].value, "primary");
    snprintf(c[1].key, sizeof c[1].key, "zone");
    c[1].value[0] = '\0';
    uint8_t buf[VIGIL_SWIM_META_MAX];
    size_t kept = 99;
    size_t len = peerd_meta_encode(&s, c, 2, buf, &kept);
    assert_int_equal(kept, 2);
    assert_int_equal(len, 26 + 2 + 4 + 7 + 2 + 4);
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof hb);
    assert_int_equal(peerd_meta_decode(buf, len, &hb), 0);
    assert_int_equal(hb.status.load1_milli, 1200);
    assert_int_equal(hb.status.load5_milli, 800);
    assert_int_equal(hb.status.load15_milli, 100);
    assert_int_equal(hb.status.mem_total_kib, 24ull << 20);
    assert_int_equal(hb.status.mem_avail_kib, 3ull << 20);
    assert_int_equal(hb.status.uptime_s, 86400);
    assert_int_equal(hb.n_custom, 2);
    assert_string_equal(hb.custom[0].value, "primary");
    assert_string_equal(hb.custom[1].key, "zone");
    assert_string_equal(hb.custom[1].value, "");
    /* No pairs: the status alone. */
    len = peerd_meta_encode(&s, NULL, 0, buf, &kept);
    assert_int_equal(len, 26);
    assert_int_equal(peerd_meta_decode(buf, len, &hb), 0);
    assert_int_equal(hb.n_custom, 0);
}

/* Pairs that do not fit in the 128 bytes are left out, whole. */
static void test_too_many_pairs(void **st)
{
    (void)st;
    struct vigil_status s = {0};
    struct vigil_custom c[4];
    for (int i = 0; i < 4; i++) {
        snprintf(c[i].key, sizeof c[i].key, "key%d-%s", i, "aaaaaaaaaaaaaaaaaaaa");
        snprintf(c[i].value, sizeof c[i].value, "%s", "vvvvvvvvvvvvvvvvvvvvvvvv");
    }
    uint8_t buf[VIGIL_SWIM_META_MAX];
    size_t kept = 0;
    size_t len = peerd_meta_encode(&s, c, 4, buf, &kept);
    assert_int_equal(kept, 2); /* 26 + 2 * 51 = 128 */
    assert_true(len <= VIGIL_SWIM_META_MAX);
    struct vigil_heartbeat hb;
    assert_int_equal(peerd_meta_decode(buf, len, &hb), 0);
    assert_int_equal(hb.n_custom, 2);
}

/* Every truncation, another format, bad keys and values: refused. */
static void test_malformed(void **st)
{
    (void)st;
    struct vigil_status s = {.load1_milli = 5};
    struct vigil_custom c[1];
    snprintf(c[0].key, sizeof c[0].key, "role");
    snprintf(c[0].value, sizeof c[0].value, "x");
    uint8_t buf[VIGIL_SWIM_META_MAX];
    size_t len = peerd_meta_encode(&s, c, 1, buf, NULL);
    struct vigil_heartbeat hb;
    for (size_t cut = 0; cut < len; cut++)
        if (cut != 26) /* the status alone is a whole form */
            assert_int_equal(peerd_meta_decode(buf, cut, &hb), -1);
    uint8_t b2[VIGIL_SWIM_META_MAX];
    memcpy(b2, buf, len);
    b2[0] = 2;
    assert_int_equal(peerd_meta_decode(b2, len, &hb), -1);
    memcpy(b2, buf, len);
    b2[26] = 0; /* an empty key */
    assert_int_equal(peerd_meta_decode(b2, len, &hb), -1);
    memcpy(b2, buf, len);
    b2[27] = ' '; /* a key with a space */
    assert_int_equal(peerd_meta_decode(b2, len, &hb), -1);
    memcpy(b2, buf, len);
    b2[len - 1] = 0x07; /* a value that is not printable */
    assert_int_equal(peerd_meta_decode(b2, len, &hb), -1);
    /* Seventeen pairs: more than a status holds. */
    uint8_t many[VIGIL_SWIM_META_MAX];
    memcpy(many, buf, 26);
    size_t at = 26;
    for (int i = 0; i < 17 && at + 3 <= sizeof many; i++) {
        many[at++] = 1;
        many[at++] = (uint8_t)('a' + i);
        many[at++] = 0;
    }
    assert_int_equal(peerd_meta_decode(many, at, &hb), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_too_many_pairs),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
