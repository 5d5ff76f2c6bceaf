/* The window of dropped datagrams: counting, bounds, the summary's order and text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vigil/drops.h"

static char lines[16][512];
static size_t n_lines;

static void collect(void *arg, const char *text)
{
    (void)arg;
    assert_true(n_lines < 16);
    snprintf(lines[n_lines++], sizeof(lines[0]), "%s", text);
}

static struct vigil_addr host(uint8_t last, uint16_t port)
{
    struct vigil_addr a = {.family = 2, .port = port, .addr = {10, 0, 0, last}};
    return a;
}

static void test_reasons(void **st)
{
    (void)st;
    assert_int_equal(drops_reason(0, false, false), -1);
    assert_int_equal(drops_reason(-VIGIL_EAUTH, false, false), DROP_AUTH);
    assert_int_equal(drops_reason(-VIGIL_EAUTH, true, false), DROP_UNKNOWN_KEY);
    assert_int_equal(drops_reason(-VIGIL_EAUTH, false, true), DROP_UNSEALED);
    assert_int_equal(drops_reason(-VIGIL_ESTALE, false, false), DROP_STALE);
    assert_int_equal(drops_reason(-VIGIL_EFUTURE, false, false), DROP_FUTURE);
    assert_int_equal(drops_reason(-VIGIL_EUNKNOWN, false, false), DROP_UNKNOWN_NODE);
    assert_int_equal(drops_reason(-VIGIL_EFULL, false, false), DROP_TABLE_FULL);
    assert_int_equal(drops_reason(-VIGIL_ETRUNC, false, false), DROP_MALFORMED);
    for (int r = 0; r < DROP_REASONS; r++) {
        assert_true(strlen(drops_reason_name((enum drop_reason)r)) > 3);
        assert_true(strlen(drops_reason_hint((enum drop_reason)r)) > 10);
    }
}

static void test_summary(void **st)
{
    (void)st;
    struct drops *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    assert_int_equal(drops_flush(t, 60, collect, NULL), 0); /* nothing dropped: silence */
    struct vigil_addr a = host(5, 40000), b = host(6, 40001);
    for (int i = 0; i < 12; i++)
        drops_note(t, &a, "web1", 4, DROP_AUTH);
    /* Another source port of the same host counts with it. */
    struct vigil_addr a2 = host(5, 40099);
    drops_note(t, &a2, "web1", 4, DROP_AUTH);
    for (int i = 0; i < 3; i++)
        drops_note(t, &b, "db2", 3, DROP_FUTURE);
    drops_note(t, &b, NULL, 0, DROP_MALFORMED);
    n_lines = 0;
    assert_int_equal(drops_flush(t, 60, collect, NULL), 3);
    assert_string_equal(lines[0], "dropped in the last 60s: 13 datagrams from 10.0.0.5 claiming "
                                  "web1 failed authentication: wrong key? (auth_failed)");
    assert_non_null(
        strstr(lines[1], "3 datagrams from 10.0.0.6 claiming db2 came from the future"));
    assert_non_null(strstr(lines[2], "1 datagram from 10.0.0.6 were malformed"));
    /* The window starts over. */
    assert_int_equal(drops_flush(t, 60, collect, NULL), 0);
    free(t);
}

/* A flood of distinct sources fills the table once; the rest is counted, and at most 11 lines. */
static void test_bounded(void **st)
{
    (void)st;
    struct drops *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    char id[32];
    for (unsigned i = 0; i < 10000; i++) {
        struct vigil_addr a = host((uint8_t)(i % 250), 1);
        a.addr[2] = (uint8_t)(i / 250);
        int n = snprintf(id, sizeof(id), "id-%u", i);
        drops_note(t, &a, id, (size_t)n, DROP_AUTH);
    }
    for (int i = 0; i < 50; i++)
        drops_note(t, NULL, "x", 1, DROP_STALE);
    assert_int_equal(t->n, DROPS_USED);
    assert_int_equal(t->total, 10050);
    n_lines = 0;
    assert_int_equal(drops_flush(t, 60, collect, NULL), DROPS_LINES + 1);
    /*
     * The table holds the first DROPS_USED keys of the window; what came
     * later (the 50 stale ones too) is in the last line, by reason.
     */
    assert_non_null(strstr(lines[0], "1 datagram from 10.0.0."));
    char want[160];
    snprintf(want, sizeof(want),
             "%d more datagrams from other sources, ids or reasons (10050 in all: auth_failed "
             "10000 stale 50)",
             10050 - DROPS_LINES);
    assert_non_null(strstr(lines[DROPS_LINES], want));
    /* An over-long claimed id is not kept (it cannot be a valid one). */
    char big[VIGIL_ID_MAX + 10];
    memset(big, 'a', sizeof(big));
    drops_note(t, NULL, big, sizeof(big), DROP_MALFORMED);
    n_lines = 0;
    assert_int_equal(drops_flush(t, 60, collect, NULL), 1);
    assert_null(strstr(lines[0], "claiming"));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
