/*
 * Tests of monitor.goals, rates ("1/month") and the warnings of
 * vcfg_warnings (src/vigil/config_warn.c): each unwise setting warns with
 * the file and line of the setting, and the defaults warn about nothing.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vigil/config.h"

static char got[8][700];
static int n_got;

static void collect(void *arg, const char *msg)
{
    (void)arg;
    if (n_got < 8)
        snprintf(got[n_got++], sizeof(got[0]), "%s", msg);
}

/* Loads text as "t.conf", checks it, and collects its warnings. */
static int warnings_of(const char *text)
{
    struct vcfg c;
    char err[512];
    vcfg_init(&c);
    n_got = 0;
    if (vcfg_load_string(&c, "t.conf", text, strlen(text), err, sizeof(err)) ||
        vcfg_check(&c, "monitor", err, sizeof(err)))
        fail_msg("refused: %s", err);
    int n = vcfg_warnings(&c, collect, NULL);
    vcfg_free(&c);
    assert_int_equal(n, n_got);
    return n;
}

static bool has(const char *needle)
{
    for (int i = 0; i < n_got; i++)
        if (strstr(got[i], needle))
            return true;
    return false;
}

static void test_startup_grace_with_store(void **st)
{
    (void)st;
    /* Set too short with a store: a warning on its line, saying what is needed. */
    assert_int_equal(warnings_of("monitor = {\n  state_dir = \"/tmp/x\";\n"
                                 "  startup_grace = \"5s\";\n};\n"),
                     1);
    assert_true(has("t.conf:3: "));
    assert_true(has("monitor.startup_grace (5s) is shorter than two state_flush intervals (10s)"));
    /* Not set: no warning, and the monitor raises it at start to what a restart needs. */
    assert_int_equal(warnings_of("monitor = {\n  state_dir = \"/tmp/x\";\n};\n"), 0);
    struct vcfg c;
    char err[256];
    const char *t = "monitor = {\n  state_dir = \"/tmp/x\";\n  detector = { type = \"fixed\"; "
                    "dead_after = \"3s\"; };\n};\n";
    vcfg_init(&c);
    assert_int_equal(vcfg_load_string(&c, "t.conf", t, strlen(t), err, sizeof(err)), 0);
    assert_true(c.monitor.startup_grace_auto);
    /* Two flushes of 5 s and 3 s to declare a node dead. */
    assert_int_equal(vcfg_startup_grace_auto(&c.monitor), 13 * VIGIL_NSEC_PER_SEC);
    vcfg_free(&c);
    /* Without a store, the default stands. */
    t = "monitor = {\n  detector = { type = \"fixed\"; dead_after = \"3s\"; };\n};\n";
    vcfg_init(&c);
    assert_int_equal(vcfg_load_string(&c, "t.conf", t, strlen(t), err, sizeof(err)), 0);
    assert_int_equal(vcfg_startup_grace_auto(&c.monitor), 10 * VIGIL_NSEC_PER_SEC);
    vcfg_free(&c);
}

static void test_rates(void **st)
{
    (void)st;
    double r;
    assert_int_equal(vcfg_parse_rate("1/month", &r), 0);
    assert_true(fabs(r - 1.0 / (30 * 86400)) < 1e-18);
    assert_int_equal(vcfg_parse_rate("0.5/h", &r), 0);
    assert_true(fabs(r - 0.5 / 3600) < 1e-15);
    assert_int_equal(vcfg_parse_rate("2/day", &r), 0);
    assert_true(fabs(r - 2.0 / 86400) < 1e-15);
    assert_int_equal(vcfg_parse_rate("1/y", &r), 0);
    assert_int_equal(vcfg_parse_rate("1/fortnight", &r), -1);
    assert_int_equal(vcfg_parse_rate("-1/h", &r), -1);
    assert_int_equal(vcfg_parse_rate("1e3/h", &r), -1);
    assert_int_equal(vcfg_parse_rate("/h", &r), -1);
    assert_int_equal(vcfg_parse_rate("1.2.3/h", &r), -1);
    assert_int_equal(vcfg_parse_rate("1", &r), -1);
}

static void test_goals(void **st)
{
    (void)st;
    struct vcfg c;
    char err[512];
    const char *t = "monitor = {\n  goals = { detection = \"800ms\"; false_alarms = \"1/month\"; "
                    "};\n};\n";
    vcfg_init(&c);
    assert_int_equal(vcfg_load_string(&c, "t.conf", t, strlen(t), err, sizeof(err)), 0);
    assert_int_equal(c.monitor.goal_detection, 800 * VIGIL_NSEC_PER_MSEC);
    assert_true(fabs(c.monitor.goal_false_alarms - 1.0 / (30 * 86400)) < 1e-18);
    vcfg_free(&c);
    const char *bad = "monitor = {\n  goals = {\n    false_alarms = \"often\"; };\n};\n";
    vcfg_init(&c);
    assert_int_equal(vcfg_load_string(&c, "t.conf", bad, strlen(bad), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.conf:3: monitor.goals.false_alarms \"often\" is not a rate"));
    vcfg_free(&c);
    const char *typo = "monitor = {\n  goals = { detect = \"1s\"; };\n};\n";
    vcfg_init(&c);
    assert_int_equal(vcfg_load_string(&c, "t.conf", typo, strlen(typo), err, sizeof(err)), -1);
    vcfg_free(&c);
}

static void test_defaults_quiet(void **st)
{
    (void)st;
    assert_int_equal(warnings_of("monitor = { };\n"), 0);
    assert_int_equal(warnings_of("monitor = { detector = { type = \"fixed\"; }; };\n"), 0);
    assert_int_equal(warnings_of("monitor = { heartbeat_interval = \"100ms\"; };\n"), 0);
}

static void test_unwise(void **st)
{
    (void)st;
    assert_int_equal(warnings_of("monitor = {\n  pause_tolerance = \"500ms\";\n};\n"), 1);
    assert_true(has("t.conf:2: monitor.pause_tolerance (500ms) is shorter than "
                    "monitor.heartbeat_interval (1s)"));
    /* Phi 0.5 at a zero pause: reached before the mean interval, every gap. */
    warnings_of("monitor = {\n  detector = {\n    suspect_threshold = 0.5;\n    acceptable_pause "
                "= 0;\n  };\n};\n");
    assert_true(has("t.conf:3: monitor.detector.suspect_threshold (0.5) is so low"));
    assert_true(has("one lost heartbeat convicts"));
    /* A dead threshold of phi 1: a tenth of regular gaps would convict. */
    warnings_of("monitor = {\n  detector = { dead_threshold = 1; suspect_threshold = 1; "
                "acceptable_pause = 0; };\n};\n");
    assert_true(has("t.conf:2: monitor.detector.dead_threshold (1) is so low"));
    /* Goals the settings miss. */
    assert_int_equal(warnings_of("monitor = {\n  goals = {\n    detection = \"2s\";\n  };\n};\n"),
                     1);
    assert_true(has("t.conf:3: the settings miss monitor.goals.detection (2s)"));
    assert_int_equal(warnings_of("monitor = { goals = { detection = \"10s\"; false_alarms = "
                                 "\"1/year\"; }; };\n"),
                     0);
    /*
     * The fastest fixed settings the configuration accepts (10/15/20 ms):
     * one lost heartbeat and ordinary scheduling delay already convict.
     */
    assert_int_equal(warnings_of("monitor = {\n  heartbeat_interval = \"10ms\";\n  detector = {\n"
                                 "    type = \"fixed\";\n    suspect_after = \"15ms\";\n"
                                 "    dead_after = \"20ms\";\n  };\n};\n"),
                     2);
    assert_true(has("t.conf:6: monitor.detector.dead_after (20ms) leaves no room for jitter"));
    assert_true(has("use at least 26ms"));
    assert_true(has("t.conf:5: monitor.detector.suspect_after (15ms) is so short"));
    /* With room for one loss and the jitter, quiet. */
    assert_int_equal(warnings_of("monitor = {\n  heartbeat_interval = \"10ms\";\n  detector = {\n"
                                 "    type = \"fixed\";\n    suspect_after = \"30ms\";\n"
                                 "    dead_after = \"40ms\";\n  };\n};\n"),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rates),  cmocka_unit_test(test_startup_grace_with_store),
        cmocka_unit_test(test_goals),  cmocka_unit_test(test_defaults_quiet),
        cmocka_unit_test(test_unwise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
