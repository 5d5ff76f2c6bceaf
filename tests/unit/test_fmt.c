/*
 * Tests of src/vigil/fmt.c: durations with their units, and outside
 * strings made safe for a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/fmt.h"

static void test_duration(void **state)
{
    (void)state;
    static const struct {
        vigil_time_t ns;
        const char *want;
    } cases[] = {
        {0, "0s"},
        {1, "1ns"},
        {750, "750ns"},
        {1500, "1.5us"},
        {40000, "40us"},
        {999999, "1ms"}, /* 999.999 us rounds to 1000 us: the next unit */
        {1500000, "1.5ms"},
        {15000000, "15ms"},
        {15250000, "15.25ms"},
        {250000000, "250ms"},
        {999960000, "1s"},
        {1000000000, "1s"},
        {1500000000, "1.5s"},
        {4529000000, "4.529s"},
        {4529400000, "4.529s"},
        {10000000000, "10s"},
        {59990000000, "59.99s"},
        {59999900000, "1m00s"},
        {60000000000, "1m00s"},
        {150000000000, "2m30s"},
        {INT64_C(3599400000000), "59m59.4s"},
        {INT64_C(3599999600000), "1h00m"},
        {INT64_C(3601000000000), "1h00m01s"},
        {INT64_C(3600001000000), "1h00m00.001s"},
        {INT64_C(90061500000000), "1d01h01m01.5s"},
        {INT64_C(7380000000000), "2h03m"},
        {INT64_C(86400000000000), "1d00h"},
        {INT64_C(273600000000000), "3d04h"},
        {-1500000000, "-1.5s"},
        {INT64_MAX, "106751d23h47m16.855s"},
        {INT64_MIN, "-106751d23h47m16.855s"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[VIGIL_DURATION_BUF];
        vigil_format_duration(cases[i].ns, buf, sizeof(buf));
        if (strcmp(buf, cases[i].want))
            fail_msg("%lld ns: want %s, got %s", (long long)cases[i].ns, cases[i].want, buf);
        assert_string_equal(vigil_dur(cases[i].ns).s, cases[i].want);
    }
    /* Seconds from JSON: unknown is "-". */
    assert_string_equal(vigil_dur_s(0.015).s, "15ms");
    assert_string_equal(vigil_dur_s(150).s, "2m30s");
    assert_string_equal(vigil_dur_s(-0.1).s, "-");
    assert_string_equal(vigil_dur_s(NAN).s, "-");
    assert_string_equal(vigil_dur_s(INFINITY).s, "-");
    assert_string_equal(vigil_dur_s(1e12).s, "11574074d");
    /* A small buffer is cut, never overrun. */
    char small[4];
    vigil_format_duration(INT64_C(4529000000), small, sizeof(small));
    assert_string_equal(small, "4.5");
}

static void test_quote(void **state)
{
    (void)state;
    assert_string_equal(vigil_quote("web3").s, "web3");
    assert_string_equal(vigil_quote("").s, "");
    assert_string_equal(vigil_quote(NULL).s, "(null)");
    assert_string_equal(vigil_quote("a\nb\tc\rd\\e").s, "a\\nb\\tc\\rd\\\\e");
    /* A terminal escape and DEL, and bytes beyond ASCII, are shown as bytes. */
    assert_string_equal(vigil_quote("\x1b[2Jx\x7f\xc3\xa9").s, "\\x1b[2Jx\\x7f\\xc3\\xa9");
    /* 64 bytes pass whole; 65 are cut. */
    char s[10 * 1024 + 1];
    memset(s, 'a', sizeof(s) - 1);
    s[64] = '\0';
    assert_string_equal(vigil_quote(s).s, s);
    s[64] = 'a';
    s[sizeof(s) - 1] = '\0';
    struct vigil_quoted q = vigil_quote(s);
    assert_int_equal(strlen(q.s), 64 + 3);
    assert_memory_equal(q.s, s, 64);
    assert_string_equal(q.s + 64, "...");
    /* The worst case: every byte escaped, then cut. */
    memset(s, '\x01', sizeof(s) - 1);
    q = vigil_quote(s);
    assert_int_equal(strlen(q.s), 64 * 4 + 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
