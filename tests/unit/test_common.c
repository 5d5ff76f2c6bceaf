/*
 * Tests of src/core/common.c: error strings, node id validation and
 * address formatting.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "vigil/common.h"

static const char ID_ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";

static void test_strerror_every_code(void **state)
{
    (void)state;
    const char *seen[VIGIL_ERROR_COUNT_];
    for (int e = 0; e < VIGIL_ERROR_COUNT_; e++) {
        const char *pos = vigil_strerror(e);
        const char *neg = vigil_strerror(-e);
        assert_non_null(pos);
        assert_ptr_equal(pos, neg);
        assert_true(strlen(pos) > 0);
        assert_string_not_equal(pos, "unknown error");
        /* Every code has its own message. */
        for (int j = 0; j < e; j++)
            assert_string_not_equal(pos, seen[j]);
        seen[e] = pos;
    }
    assert_string_equal(vigil_strerror(0), "success");
    assert_string_equal(vigil_strerror(-VIGIL_EAUTH), "authentication tag missing or wrong");
    assert_string_equal(vigil_strerror(VIGIL_ETRUNC), "datagram shorter than its fields say");
    assert_string_equal(vigil_strerror(-VIGIL_ESYS), "system call failed");
}

static void test_strerror_unknown(void **state)
{
    (void)state;
    assert_string_equal(vigil_strerror(VIGIL_ERROR_COUNT_), "unknown error");
    assert_string_equal(vigil_strerror(-VIGIL_ERROR_COUNT_), "unknown error");
    assert_string_equal(vigil_strerror(1000), "unknown error");
    assert_string_equal(vigil_strerror(INT_MAX), "unknown error");
    assert_string_equal(vigil_strerror(INT_MIN), "unknown error");
    assert_string_equal(vigil_strerror(-INT_MAX), "unknown error");
    /* The last real code is still known: the boundary from the other side. */
    assert_string_not_equal(vigil_strerror(VIGIL_ERROR_COUNT_ - 1), "unknown error");
}

static void test_id_lengths(void **state)
{
    (void)state;
    char id[VIGIL_ID_MAX + 2];
    memset(id, 'a', sizeof id);
    assert_false(vigil_id_valid(id, 0));
    assert_true(vigil_id_valid(id, 1));
    assert_true(vigil_id_valid(id, 2));
    assert_true(vigil_id_valid(id, VIGIL_ID_MAX - 1));
    assert_true(vigil_id_valid(id, VIGIL_ID_MAX));
    assert_false(vigil_id_valid(id, VIGIL_ID_MAX + 1));
    assert_false(vigil_id_valid(id, SIZE_MAX));
    assert_false(vigil_id_valid(NULL, 0));
    assert_false(vigil_id_valid(NULL, 5));
    assert_true(vigil_id_valid("web-3.example_org", 17));
}

static void test_id_every_byte(void **state)
{
    (void)state;
    /* Each of the 256 byte values, alone and in the middle of a valid id. */
    int allowed = 0;
    for (int c = 0; c < 256; c++) {
        bool expect = c != 0 && strchr(ID_ALPHABET, c) != NULL;
        char one[1] = {(char)c};
        char mid[5] = {'n', 'o', (char)c, 'd', 'e'};
        assert_int_equal(vigil_id_valid(one, 1), expect);
        assert_int_equal(vigil_id_valid(mid, 5), expect);
        allowed += expect;
    }
    /* 26 + 26 + 10 letters and digits, plus '.', '_' and '-'. */
    assert_int_equal(allowed, 65);
}

static void test_id_disallowed_sample(void **state)
{
    (void)state;
    static const char *const bad[] = {"a b", "a/b", "a\\b", "a:b",  "a@b",    "a\"b",      "a'b",
                                      "a$b", "a;b", "a|b",  "a\nb", "a\tb",   "a*b",       "a~b",
                                      "a+b", "a=b", "a,b",  "a%b",  "a\x7fz", "a\xc3\xa9", "a\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(vigil_id_valid(bad[i], strlen(bad[i])));
    /* A NUL inside the stated length is not part of any id. */
    assert_false(vigil_id_valid("ab\0cd", 5));
    /* Only the first len bytes count: a bad byte after them is not looked at. */
    assert_true(vigil_id_valid("ab cd", 2));
    assert_false(vigil_id_valid("ab cd", 3));
}

/* Fills all 56 bytes of buf with 'X', then formats into its first cap bytes. */
static void format(const struct vigil_addr *a, char *buf, size_t cap)
{
    memset(buf, 'X', 56);
    vigil_addr_format(a, buf, cap);
}

static void test_addr_v4(void **state)
{
    (void)state;
    char buf[56];
    struct vigil_addr a = {.addr = {1, 2, 3, 4}, .port = 5, .family = AF_INET};
    format(&a, buf, sizeof buf);
    assert_string_equal(buf, "1.2.3.4:5");

    struct vigil_addr b = {.addr = {127, 0, 0, 1}, .port = 7946, .family = AF_INET};
    format(&b, buf, sizeof buf);
    assert_string_equal(buf, "127.0.0.1:7946");

    struct vigil_addr c = {.addr = {255, 255, 255, 255}, .port = 65535, .family = AF_INET};
    format(&c, buf, sizeof buf);
    assert_string_equal(buf, "255.255.255.255:65535");

    /* Bytes past the first four are ignored for IPv4. */
    struct vigil_addr d = {.addr = {10, 0, 0, 9, 99, 99}, .port = 0, .family = AF_INET};
    format(&d, buf, sizeof buf);
    assert_string_equal(buf, "10.0.0.9:0");
}

static void test_addr_v6(void **state)
{
    (void)state;
    char buf[56];
    struct vigil_addr a = {.addr = {[15] = 1}, .port = 5, .family = AF_INET6};
    format(&a, buf, sizeof buf);
    assert_string_equal(buf, "[::1]:5");

    struct vigil_addr b = {
        .addr = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x01}, .port = 7946, .family = AF_INET6};
    format(&b, buf, sizeof buf);
    assert_string_equal(buf, "[2001:db8::1]:7946");

    struct vigil_addr c = {.port = 65535, .family = AF_INET6};
    memset(c.addr, 0xff, sizeof c.addr);
    format(&c, buf, sizeof buf);
    assert_string_equal(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

    /* The longest text form inet_ntop produces, with the longest port, fits 56 bytes. */
    struct vigil_addr d = {
        .addr = {[10] = 0xff, [11] = 0xff, 255, 255, 255, 255}, .port = 65535, .family = AF_INET6};
    format(&d, buf, sizeof buf);
    assert_string_equal(buf, "[::ffff:255.255.255.255]:65535");

    struct vigil_addr e = {.port = 1, .family = AF_INET6};
    format(&e, buf, sizeof buf);
    assert_string_equal(buf, "[::]:1");
}

static void test_addr_none_and_small_buffers(void **state)
{
    (void)state;
    char buf[56];
    struct vigil_addr none = {.port = 80, .family = 0};
    format(&none, buf, sizeof buf);
    assert_string_equal(buf, "-");
    format(NULL, buf, sizeof buf);
    assert_string_equal(buf, "-");

    /* A family the library never creates is not guessed at. */
    struct vigil_addr odd = {.addr = {1, 2, 3, 4}, .port = 5, .family = 99};
    format(&odd, buf, sizeof buf);
    assert_string_equal(buf, "?");

    /* A short buffer is truncated and still terminated. */
    struct vigil_addr a = {.addr = {192, 168, 100, 200}, .port = 12345, .family = AF_INET};
    format(&a, buf, 8);
    assert_string_equal(buf, "192.168");
    assert_int_equal(buf[8], 'X');
    format(&a, buf, 1);
    assert_string_equal(buf, "");
    assert_int_equal(buf[1], 'X');

    /* cap 0 writes nothing at all. */
    memset(buf, 'X', sizeof buf);
    vigil_addr_format(&a, buf, 0);
    assert_int_equal(buf[0], 'X');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_every_code),
        cmocka_unit_test(test_strerror_unknown),
        cmocka_unit_test(test_id_lengths),
        cmocka_unit_test(test_id_every_byte),
        cmocka_unit_test(test_id_disallowed_sample),
        cmocka_unit_test(test_addr_v4),
        cmocka_unit_test(test_addr_v6),
        cmocka_unit_test(test_addr_none_and_small_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
