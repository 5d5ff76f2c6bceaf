/*
 * Tests of the configuration: the embedded defaults, a file that sets every
 * setting, every kind of error with its exact FILE:LINE and reason, the
 * relations vcfg_check enforces (both sides of each boundary), the
 * duration parser and the key file reader.
 *
 * Every configuration is written to a file in a fresh mkdtemp directory,
 * as the program reads it, and every error message is compared whole: a
 * message that names the wrong line or the wrong setting is a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/vio.h"
#include "vigil/config.h"
#include "vigil/holds.h" /* HOLDS_*_DEFAULT */
#include "vigil/hooks.h" /* HOOK_*, ACT_* defaults */

/* A valid key: bytes 0x00, 0x11, ..., 0xff, 0x00, ... (32 bytes, 64 hex digits). */
static const char KEY_HEX[] = "00112233445566778899aabbccddeeff"
                              "00112233445566778899AABBCCDDEEFF";

static char dir[64];
/* Files created in dir, removed at teardown; the tests create far fewer. */
static char created[32][160];
static size_t n_created;
static char conf_path[160];
static char err[1024];
static char expect[1024];

static const char *write_file(const char *name, const char *text, size_t len)
{
    static char path[160];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    /* Files here may hold keys: readable by their owner only, as vigil requires. */
    assert_int_equal(chmod(path, 0600), 0);
    bool known = false;
    for (size_t i = 0; i < n_created; i++)
        known = known || !strcmp(created[i], path);
    if (!known) {
        assert_true(n_created < sizeof(created) / sizeof(created[0]));
        snprintf(created[n_created++], sizeof(created[0]), "%s", path);
    }
    return path;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vigil-test-config-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    n_created = 0;
    snprintf(conf_path, sizeof(conf_path), "%s/vigil.conf", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_created; i++)
        unlink(created[i]);
    return rmdir(dir);
}

/* Writes text as vigil.conf and loads it into a fresh c. */
static int load(struct vcfg *c, const char *text)
{
    write_file("vigil.conf", text, strlen(text));
    vcfg_init(c);
    err[0] = '\0';
    return vcfg_load(c, conf_path, err, sizeof(err));
}

/* The message expected, with "%s" standing for the configuration file's path. */
static const char *msg(const char *fmt)
{
    const char *p = strstr(fmt, "%s");
    if (p == NULL)
        snprintf(expect, sizeof(expect), "%s", fmt);
    else
        snprintf(expect, sizeof(expect), "%.*s%s%s", (int)(p - fmt), fmt, conf_path, p + 2);
    return expect;
}

/* --- defaults -------------------------------------------------------------- */

static void assert_defaults(const struct vcfg *c)
{
    const struct vcfg_monitor *m = &c->monitor;
    assert_int_equal(m->n_listen, 1);
    assert_string_equal(m->listen[0], "0.0.0.0:7946");
    assert_string_equal(m->api, "127.0.0.1:7947");
    assert_int_equal(m->interval, VIGIL_NSEC_PER_SEC);
    struct vigil_detector_config d;
    vigil_detector_config_default(&d, VIGIL_DETECTOR_PHI, VIGIL_NSEC_PER_SEC);
    assert_int_equal(m->core.detector.kind, VIGIL_DETECTOR_PHI);
    assert_true(m->core.detector.suspect_threshold == d.suspect_threshold);
    assert_true(m->core.detector.dead_threshold == d.dead_threshold);
    assert_int_equal(m->core.detector.first_estimate, d.first_estimate);
    assert_int_equal(m->core.detector.min_std_dev, d.min_std_dev);
    assert_int_equal(m->core.detector.acceptable_pause, d.acceptable_pause);
    assert_int_equal(m->core.detector.window, d.window);
    assert_int_equal(m->core.rise, 2);
    assert_int_equal(m->core.startup_grace, 10 * VIGIL_NSEC_PER_SEC);
    assert_true(m->core.auto_register);
    assert_int_equal(m->core.max_nodes, 65536);
    assert_int_equal(m->receive_threads, 1);
    assert_int_equal(m->receive_buffer_mb, 8);
    assert_int_equal(m->core.pause_tolerance, VIGIL_NSEC_PER_SEC);
    assert_false(m->core.has_key);
    assert_int_equal(m->n_nodes, 0);
    assert_int_equal(m->n_hooks, 0);
    assert_int_equal(m->log_format, VCFG_LOG_TEXT);
    assert_null(m->log_file);
    assert_int_equal(m->event_history, 10000);
    assert_int_equal(m->hook_queue, 16);
    assert_int_equal(m->hook_queue_total, 65536);
    assert_int_equal(m->n_groups, 0);
    /* Flap damping is on by default, with RFC 2439's kind of numbers (docs/actions.md). */
    assert_true(m->damping.on);
    assert_int_equal(m->damping.half_life, 60 * VIGIL_NSEC_PER_SEC);
    assert_true(m->damping.penalty == 1000.0);
    assert_true(m->damping.suppress == 3000.0);
    assert_true(m->damping.reuse == 750.0);

    const struct vcfg_agent *a = &c->agent;
    assert_null(a->id);
    assert_int_equal(a->n_monitors, 1);
    assert_string_equal(a->monitors[0], "127.0.0.1:7946");
    assert_int_equal(a->interval, VIGIL_NSEC_PER_SEC);
    assert_false(a->has_key);
    assert_null(a->status_file);
    assert_int_equal(a->n_custom, 0);
}

static void test_defaults(void **state)
{
    (void)state;
    struct vcfg c;
    vcfg_init(&c);
    assert_null(c.path);
    assert_defaults(&c);
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), 0);
    /* The agent needs an id: the host name when valid, else it must be set. */
    char host[VIGIL_ID_MAX + 1];
    if (vcfg_host_id(host, sizeof(host)) == 0) {
        assert_int_equal(vcfg_check(&c, "agent", err, sizeof(err)), 0);
    } else {
        assert_int_equal(vcfg_check(&c, "agent", err, sizeof(err)), -1);
        assert_non_null(strstr(err, "agent.id is not set"));
    }
    c.agent.id = strdup("web1");
    assert_int_equal(vcfg_check(&c, "agent", err, sizeof(err)), 0);
    assert_int_equal(vcfg_check(&c, "peer", err, sizeof(err)), -1);
    assert_string_equal(err, "unknown section \"peer\" (monitor or agent)");
    vcfg_free(&c);
    vcfg_free(&c); /* freeing twice is harmless */
}

/* An empty file and a file of comments change nothing. */
static void test_empty_file(void **state)
{
    (void)state;
    struct vcfg c;
    assert_int_equal(load(&c, ""), 0);
    assert_string_equal(c.path, conf_path);
    assert_defaults(&c);
    vcfg_free(&c);
    assert_int_equal(load(&c, "# nothing\n// at all\n/* here */\nmonitor = { };\nagent = {};\n"),
                     0);
    assert_defaults(&c);
    vcfg_free(&c);
}

/* examples/vigil.conf shows the defaults: loading it changes nothing. */
static void test_example_is_defaults(void **state)
{
    (void)state;
    char path[512];
    const char *src = __FILE__;
    const char *tail = strstr(src, "tests/unit/test_config.c");
    snprintf(path, sizeof(path), "%.*sexamples/vigil.conf", tail ? (int)(tail - src) : 0, src);
    if (access(path, R_OK) != 0)
        skip();
    struct vcfg c;
    vcfg_init(&c);
    assert_int_equal(vcfg_load(&c, path, err, sizeof(err)), 0);
    assert_defaults(&c);
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), 0);
    vcfg_free(&c);
}

/* --- a file with every setting ---------------------------------------------- */

static void test_full_file(void **state)
{
    (void)state;
    char key_line[160];
    write_file("cluster.key", KEY_HEX, strlen(KEY_HEX));
    snprintf(key_line, sizeof(key_line), "%s\n", KEY_HEX);
    write_file("agent.key", key_line, strlen(key_line));
    struct vcfg c;
    int rc = load(&c, "# every setting\n"
                      "monitor = {\n"
                      "  listen = [ \"0.0.0.0:7000\", \"[::]:7001\" ];\n"
                      "  api = \"off\";\n"
                      "  key_file = \"cluster.key\";\n"
                      "  heartbeat_interval = \"500ms\";\n"
                      "  auto_register = false;\n"
                      "  max_nodes = 100;\n"
                      "  receive_threads = 4;\n"
                      "  receive_buffer_mb = 256;\n"
                      "  startup_grace = \"30s\";\n"
                      "  rise = 3;\n"
                      "  pause_tolerance = 2.5;\n"
                      "  detector = {\n"
                      "    type = \"phi\";\n"
                      "    suspect_threshold = 4;\n"
                      "    dead_threshold = 9.5;\n"
                      "    first_estimate = \"600ms\";\n"
                      "    min_std_dev = \"250us\";\n"
                      "    acceptable_pause = \"1m\";\n"
                      "    window = 100;\n"
                      "  };\n"
                      "  nodes = [ \"web1\", \"web-2.example\", \"db_3\" ];\n"
                      "  hooks = (\n"
                      "    { command = [ \"/usr/local/bin/notify\", \"--flag\", \"\" ];\n"
                      "      timeout = \"1.5s\"; on = [ \"dead\", \"alive\" ];\n"
                      "      retries = 5; retry_delay = \"250ms\"; },\n"
                      "    { command = [ \"logger\" ]; }\n"
                      "  );\n"
                      "  log = { format = \"json\"; file = \"/var/log/vigil/events.log\"; };\n"
                      "  event_history = 1000000;\n"
                      "  hook_queue = 4; hook_queue_total = 1000;\n"
                      "};\n"
                      "agent = {\n"
                      "  id = \"web1\";\n"
                      "  monitors = [ \"10.0.0.5:7946\", \"[fd00::5]:7946\", \"mon.example\" ];\n"
                      "  interval = 0.25;\n"
                      "  key_file = \"agent.key\";\n"
                      "  status_file = \"/run/vigil/status\";\n"
                      "  custom = { role = \"web\"; zone = \"a b\"; empty = \"\"; };\n"
                      "};\n");
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    const struct vcfg_monitor *m = &c.monitor;
    assert_int_equal(m->n_listen, 2);
    assert_string_equal(m->listen[0], "0.0.0.0:7000");
    assert_string_equal(m->listen[1], "[::]:7001");
    assert_string_equal(m->api, "off");
    assert_true(m->core.has_key);
    for (size_t i = 0; i < VIGIL_WIRE_KEY_LEN; i++)
        assert_int_equal(m->core.key[i], (uint8_t)((i % 16) * 0x11));
    assert_int_equal(m->interval, 500 * VIGIL_NSEC_PER_MSEC);
    assert_false(m->core.auto_register);
    assert_int_equal(m->core.max_nodes, 100);
    assert_int_equal(m->receive_threads, 4);
    assert_int_equal(m->receive_buffer_mb, 256);
    assert_int_equal(m->core.startup_grace, 30 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(m->core.rise, 3);
    assert_int_equal(m->core.pause_tolerance, 2500 * VIGIL_NSEC_PER_MSEC);
    assert_int_equal(m->core.detector.kind, VIGIL_DETECTOR_PHI);
    assert_true(m->core.detector.suspect_threshold == 4.0);
    assert_true(m->core.detector.dead_threshold == 9.5);
    assert_int_equal(m->core.detector.first_estimate, 600 * VIGIL_NSEC_PER_MSEC);
    assert_int_equal(m->core.detector.min_std_dev, 250000);
    assert_int_equal(m->core.detector.acceptable_pause, 60 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(m->core.detector.window, 100);
    assert_int_equal(m->n_nodes, 3);
    assert_string_equal(m->nodes[0], "web1");
    assert_string_equal(m->nodes[1], "web-2.example");
    assert_string_equal(m->nodes[2], "db_3");
    assert_int_equal(m->n_hooks, 2);
    assert_string_equal(m->hooks[0].argv[0], "/usr/local/bin/notify");
    assert_string_equal(m->hooks[0].argv[1], "--flag");
    assert_string_equal(m->hooks[0].argv[2], "");
    assert_null(m->hooks[0].argv[3]);
    assert_int_equal(m->hooks[0].timeout, 1500 * VIGIL_NSEC_PER_MSEC);
    assert_int_equal(m->hooks[0].on_states, (1u << VIGIL_STATE_DEAD) | (1u << VIGIL_STATE_ALIVE));
    assert_string_equal(m->hooks[1].argv[0], "logger");
    assert_null(m->hooks[1].argv[1]);
    assert_int_equal(m->hooks[0].retries, 5);
    assert_int_equal(m->hooks[0].retry_delay, 250 * VIGIL_NSEC_PER_MSEC);
    assert_int_equal(m->hooks[1].timeout, 10 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(m->hooks[1].retries, 2);
    assert_int_equal(m->hooks[1].retry_delay, VIGIL_NSEC_PER_SEC);
    assert_int_equal(m->hooks[1].on_states, 0);
    assert_int_equal(m->log_format, VCFG_LOG_JSON);
    assert_string_equal(m->log_file, "/var/log/vigil/events.log");
    assert_int_equal(m->event_history, 1000000);
    assert_int_equal(m->hook_queue, 4);
    assert_int_equal(m->hook_queue_total, 1000);

    const struct vcfg_agent *a = &c.agent;
    assert_string_equal(a->id, "web1");
    assert_int_equal(a->n_monitors, 3);
    assert_string_equal(a->monitors[0], "10.0.0.5:7946");
    assert_string_equal(a->monitors[1], "[fd00::5]:7946");
    assert_string_equal(a->monitors[2], "mon.example");
    assert_int_equal(a->interval, 250 * VIGIL_NSEC_PER_MSEC);
    assert_true(a->has_key);
    assert_memory_equal(a->key, m->core.key, VIGIL_WIRE_KEY_LEN);
    assert_string_equal(a->status_file, "/run/vigil/status");
    assert_int_equal(a->n_custom, 3);
    assert_string_equal(a->custom[0].key, "role");
    assert_string_equal(a->custom[0].value, "web");
    assert_string_equal(a->custom[1].key, "zone");
    assert_string_equal(a->custom[1].value, "a b");
    assert_string_equal(a->custom[2].key, "empty");
    assert_string_equal(a->custom[2].value, "");

    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), 0);
    assert_int_equal(vcfg_check(&c, "agent", err, sizeof(err)), 0);
    vcfg_free(&c);
}

/* The fixed detector: durations become thresholds in seconds. */
static void test_fixed_detector(void **state)
{
    (void)state;
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = {\n"
                              "  heartbeat_interval = 2;\n"
                              "  detector = { type = \"fixed\"; suspect_after = \"4500ms\";\n"
                              "               dead_after = 12; window = 10; };\n"
                              "  startup_grace = \"12s\";\n"
                              "};\n"),
                     0);
    const struct vigil_detector_config *d = &c.monitor.core.detector;
    assert_int_equal(d->kind, VIGIL_DETECTOR_FIXED);
    assert_true(d->suspect_threshold == 4.5);
    assert_true(d->dead_threshold == 12.0);
    assert_int_equal(d->window, 10);
    assert_int_equal(c.monitor.interval, 2 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), 0);
    vcfg_free(&c);

    /* Only the type set: the fixed defaults for the interval. */
    assert_int_equal(load(&c, "monitor = { heartbeat_interval = 2; startup_grace = 60;\n"
                              "  detector = { type = \"fixed\"; }; };\n"),
                     0);
    struct vigil_detector_config want;
    vigil_detector_config_default(&want, VIGIL_DETECTOR_FIXED, 2 * VIGIL_NSEC_PER_SEC);
    assert_true(c.monitor.core.detector.suspect_threshold == want.suspect_threshold);
    assert_true(c.monitor.core.detector.dead_threshold == want.dead_threshold);
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), 0);
    vcfg_free(&c);
}

/* A heartbeat interval recomputes the detector's defaults; explicit settings win. */
static void test_interval_recomputes_defaults(void **state)
{
    (void)state;
    struct vcfg c;
    struct vigil_detector_config want;
    vigil_detector_config_default(&want, VIGIL_DETECTOR_PHI, 5 * VIGIL_NSEC_PER_SEC);

    /* The detector block may come before the interval: order does not matter. */
    assert_int_equal(load(&c, "monitor = {\n"
                              "  detector = { min_std_dev = \"300ms\"; };\n"
                              "  heartbeat_interval = \"5s\";\n"
                              "};\n"),
                     0);
    const struct vigil_detector_config *d = &c.monitor.core.detector;
    assert_int_equal(d->kind, VIGIL_DETECTOR_PHI);
    assert_int_equal(d->first_estimate, want.first_estimate);
    assert_int_equal(d->first_estimate, 5 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(d->acceptable_pause, want.acceptable_pause);
    assert_int_equal(d->min_std_dev, 300 * VIGIL_NSEC_PER_MSEC);
    assert_int_equal(d->window, want.window);
    vcfg_free(&c);

    /* Without a detector block as well. */
    assert_int_equal(load(&c, "monitor = { heartbeat_interval = 5; };\n"), 0);
    assert_int_equal(c.monitor.core.detector.first_estimate, want.first_estimate);
    assert_int_equal(c.monitor.core.detector.min_std_dev, want.min_std_dev);
    assert_int_equal(c.monitor.core.detector.acceptable_pause, want.acceptable_pause);
    vcfg_free(&c);
}

/* A second file replaces lists instead of appending to them, and leaks nothing. */
static void test_load_twice(void **state)
{
    (void)state;
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = { listen = [\"1.2.3.4\", \"5.6.7.8\"]; nodes = [\"a\"];\n"
                              "  hooks = ({ command = [\"x\", \"y\"]; }); };\n"
                              "agent = { id = \"a\"; custom = { k = \"v\"; }; };\n"),
                     0);
    const char *second = "monitor = { listen = [\"::1\"]; nodes = [\"b\", \"c\"];\n"
                         "  hooks = ({ command = [\"/z\"]; }); };\n"
                         "agent = { id = \"b\"; custom = { k2 = \"v2\"; }; };\n";
    write_file("second.conf", second, strlen(second));
    char path[160];
    snprintf(path, sizeof(path), "%s/second.conf", dir);
    assert_int_equal(vcfg_load(&c, path, err, sizeof(err)), 0);
    assert_string_equal(c.path, path);
    assert_int_equal(c.monitor.n_listen, 1);
    assert_string_equal(c.monitor.listen[0], "::1");
    assert_int_equal(c.monitor.n_nodes, 2);
    assert_string_equal(c.monitor.nodes[1], "c");
    assert_int_equal(c.monitor.n_hooks, 1);
    assert_string_equal(c.monitor.hooks[0].argv[0], "/z");
    assert_null(c.monitor.hooks[0].argv[1]);
    assert_string_equal(c.agent.id, "b");
    assert_int_equal(c.agent.n_custom, 1);
    assert_string_equal(c.agent.custom[0].key, "k2");
    /* Empty lists, written either way, empty the lists. */
    const char *third = "monitor = { hooks = [ ]; nodes = ( ); };\nagent = { custom = { }; };\n";
    write_file("second.conf", third, strlen(third));
    assert_int_equal(vcfg_load(&c, path, err, sizeof(err)), 0);
    assert_int_equal(c.monitor.n_hooks, 0);
    assert_int_equal(c.monitor.n_nodes, 0);
    assert_int_equal(c.agent.n_custom, 0);
    assert_int_equal(c.monitor.n_listen, 1);
    vcfg_free(&c);
}

/* Relative paths are relative to the file's directory. */
static void test_relative_paths(void **state)
{
    (void)state;
    struct vcfg c;
    write_file("k.key", KEY_HEX, strlen(KEY_HEX));
    assert_int_equal(load(&c, "monitor = { key_file = \"k.key\"; log = { file = \"ev.log\"; }; };\n"
                              "agent = { status_file = \"status\"; key_file = \"k.key\"; };\n"),
                     0);
    char want[200];
    snprintf(want, sizeof(want), "%s/ev.log", dir);
    assert_string_equal(c.monitor.log_file, want);
    snprintf(want, sizeof(want), "%s/status", dir);
    assert_string_equal(c.agent.status_file, want);
    assert_true(c.monitor.core.has_key);
    assert_true(c.agent.has_key);
    vcfg_free(&c);
}

/* --- errors while loading ------------------------------------------------------ */

struct err_case {
    const char *text;
    const char *want; /* "%s" stands for the file */
};

static void run_err_cases(const struct err_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct vcfg c;
        int rc = load(&c, cases[i].text);
        if (rc != -1 || strcmp(err, msg(cases[i].want)) != 0)
            print_error("case %zu: rc %d\n  got:  %s\n  want: %s\n", i, rc, err, expect);
        assert_int_equal(rc, -1);
        assert_string_equal(err, expect);
        vcfg_free(&c);
    }
}

static void test_syntax_errors(void **state)
{
    (void)state;
    static const struct err_case cases[] = {
        {"monitor = {\n  rise = 2;\n  max_nodes = = 5;\n};\n", "%s:3: syntax error: syntax error"},
        {"monitor = {\n  rise = 2;\n", "%s:3: syntax error: syntax error"},
        {"a = 1;\na = 2;\n", "%s:2: syntax error: duplicate setting name"},
        {"monitor = {\n  listen = [ \"a\", 1 ];\n};\n",
         "%s:2: syntax error: mismatched element type in array"},
        {"# included\n  @include \"/etc/passwd\"\n",
         "%s:2: @include is not supported: vigil reads one file"},
        {"monitor = {\n\n  rise = 4294967298;\n};\n", "%s:3: integer 4294967298 is out of range"},
        /* Strings where libconfig admits none (it would leak them), found first. */
        {"monitor = {\n  rise = 2, \"x\" = 3;\n};\n", "%s:2: syntax error: unexpected string"},
        {"\n\"monitor\" = { };\n", "%s:2: syntax error: unexpected string"},
        {"monitor = {\n  \"x\" };\n", "%s:2: syntax error: unexpected string"},
        {"monitor = { listen = [ \"x\" ]\n  \"y\"; };\n", "%s:2: syntax error: unexpected string"},
        {"monitor = { api = \"x\";\n\"y\" };\n", "%s:2: syntax error: unexpected string"},
        {"monitor = {\n  api = \"127.0.0.1\n", "%s:2: syntax error: unterminated string"},
        {"monitor = { api = \"a\" \"b\n };\n", "%s:1: syntax error: unterminated string"},
        {"a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ ]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]];\n",
         "%s:1: syntax error: nested deeper than 32 levels"},
        {"a = (((((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))))));\n",
         "%s:1: syntax error: nested deeper than 32 levels"},
        {"a = ((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))));\n",
         "%s:1: unknown setting a"},
        {"monitor = { rise = -2147483649; };\n", "%s:1: integer -2147483649 is out of range"},
        {"monitor = { rise = 0x80000000; };\n", "%s:1: integer 0x80000000 is out of range"},
        {"monitor = { rise = 99999999999999999999L; };\n",
         "%s:1: integer 99999999999999999999L is out of range"},
    };
    run_err_cases(cases, sizeof(cases) / sizeof(cases[0]));

    /* The edges of the integer scan: the largest literals are read as they are. */
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = { rise = 2147483647; };\n"), -1);
    assert_string_equal(err, msg("%s:1: monitor.rise (2147483647) must be between 1 and 100"));
    vcfg_free(&c);
    assert_int_equal(load(&c, "monitor = { rise = -2147483648; };\n"), -1);
    assert_string_equal(err, msg("%s:1: monitor.rise (-2147483648) must be between 1 and 100"));
    vcfg_free(&c);
    assert_int_equal(load(&c, "monitor = { rise = 9223372036854775807L; };\n"), -1);
    assert_string_equal(err,
                        msg("%s:1: monitor.rise (9223372036854775807) must be between 1 and 100"));
    vcfg_free(&c);
    /* Strings where values stand: after = and :, in arrays and lists, concatenated. */
    assert_int_equal(
        load(&c, "monitor = { listen = ( \"1.2.3.4\", \"::1\" ); api: \"12\" \"7.0.0.1\";\n"
                 "  nodes = [ \"a\",\n \"b\" ]; hooks = ( { command = ( \"x\", \"\" ); },\n"
                 "  { command = [ \"y\" ]; } ); };\n"),
        0);
    assert_string_equal(c.monitor.api, "127.0.0.1");
    assert_int_equal(c.monitor.n_nodes, 2);
    assert_int_equal(c.monitor.n_hooks, 2);
    vcfg_free(&c);
    /* Numbers inside strings, comments and floats are not integer literals. */
    assert_int_equal(load(&c, "# 99999999999\nmonitor = { /* 99999999999 */\n"
                              "  api = \"99999999999\"; // 99999999999\n"
                              "  pause_tolerance = 1.25e1; }; // 99999999999L\n"),
                     0);
    assert_int_equal(c.monitor.core.pause_tolerance, 12500 * VIGIL_NSEC_PER_MSEC);
    vcfg_free(&c);

    /* A NUL byte: libconfig would silently stop reading there. */
    vcfg_init(&c);
    static const char nul[] = "monitor = {\n  rise = 3;\0 max_nodes = 1;\n};\n";
    assert_int_equal(vcfg_load_string(&c, "mem.conf", nul, sizeof(nul) - 1, err, sizeof(err)), -1);
    assert_string_equal(err, "mem.conf:2: the file holds a NUL byte");
    vcfg_free(&c);
}

static void test_unknown_settings(void **state)
{
    (void)state;
    static const struct err_case cases[] = {
        {"monitor = {\n  rise = 2;\n  raise = 3;\n};\n", "%s:3: unknown setting monitor.raise"},
        {"\nmonitors = { };\n", "%s:2: unknown setting monitors"},
        {"agent = { id = \"a\"; zone = \"b\"; };\n", "%s:1: unknown setting agent.zone"},
        {"monitor = {\n  detector = {\n    type = \"phi\";\n    treshold = 8;\n  };\n};\n",
         "%s:4: unknown setting monitor.detector.treshold"},
        {"monitor = { hooks = ( { command = [\"x\"]; },\n  { command = [\"y\"]; timout = 5; } ); "
         "};\n",
         "%s:2: unknown setting monitor.hooks[1].timout"},
        {"monitor = { log = { colour = \"red\"; }; };\n",
         "%s:1: unknown setting monitor.log.colour"},
        {"Monitor = { };\n", "%s:1: unknown setting Monitor"},
    };
    run_err_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_wrong_types(void **state)
{
    (void)state;
    static const struct err_case cases[] = {
        {"monitor = {\n  max_nodes = \"many\";\n};\n",
         "%s:2: monitor.max_nodes must be an integer, not a string"},
        {"monitor = { max_nodes = 10.0; };\n",
         "%s:1: monitor.max_nodes must be an integer, not a floating-point number"},
        {"monitor = { auto_register = 1; };\n",
         "%s:1: monitor.auto_register must be a boolean (true or false), not an integer"},
        {"monitor = { listen = \"0.0.0.0:7946\"; };\n",
         "%s:1: monitor.listen must be a list of strings [ \"...\", ... ], not a string"},
        {"monitor = 5;\n", "%s:1: monitor must be a group { ... }, not an integer"},
        {"agent = ( );\n", "%s:1: agent must be a group { ... }, not a list ( ... )"},
        {"monitor = { detector = \"phi\"; };\n",
         "%s:1: monitor.detector must be a group { type = \"phi\"; ... }, not a string"},
        {"monitor = { detector = { type = 1; }; };\n",
         "%s:1: monitor.detector.type must be a string, not an integer"},
        {"monitor = { detector = { type = \"accrual\"; }; };\n",
         "%s:1: monitor.detector.type must be \"phi\", \"grid\" or \"fixed\", not \"accrual\""},
        {"monitor = { detector = { dead_threshold = \"8\"; }; };\n",
         "%s:1: monitor.detector.dead_threshold must be a number, not a string"},
        {"monitor = { startup_grace = true; };\n",
         "%s:1: monitor.startup_grace must be a duration (seconds, or a string such as "
         "\"1500ms\"), not a boolean"},
        {"monitor = { hooks = { command = [\"x\"]; }; };\n",
         "%s:1: monitor.hooks must be a list of groups ( { kind = \"...\"; ... }, ... ), not a "
         "group { ... }"},
        {"monitor = { hooks = ( \"x\" ); };\n",
         "%s:1: monitor.hooks[0] must be a group { ... }, not a string"},
        {"monitor = { hooks = ( { command = \"/bin/x\"; } ); };\n",
         "%s:1: monitor.hooks[0].command must be a list of strings [ \"...\", ... ], not a "
         "string"},
        {"monitor = { api = 7947; };\n",
         "%s:1: monitor.api must be a string (an address, or \"off\"), not an integer"},
        {"monitor = { log = { format = \"xml\"; }; };\n",
         "%s:1: monitor.log.format must be \"text\" or \"json\", not \"xml\""},
        {"monitor = { log = { file = \"\"; }; };\n", "%s:1: monitor.log.file must not be empty"},
        {"agent = { custom = { zone = 1; }; };\n",
         "%s:1: agent.custom.zone must be a string, not an integer"},
        {"agent = { id = \"\"; };\n", "%s:1: agent.id must not be empty"},
        {"monitor = {\n  listen = ( \"1.2.3.4\",\n    [ \"x\" ] );\n};\n",
         "%s:3: monitor.listen[1] must be a string, not an array [ ... ]"},
    };
    run_err_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* The peer section (vigil peer): every setting read, the defaults, and the errors. */
static void test_peer_section(void **state)
{
    (void)state;
    struct vcfg c;
    write_file("cluster.key", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
               65);
    assert_int_equal(load(&c, "peer = {\n"
                              "  id = \"m1\";\n"
                              "  listen = \"10.0.0.1:7946\";\n"
                              "  seeds = [ \"10.0.0.2:7946\", \"[::1]:7946\" ];\n"
                              "  key_file = \"cluster.key\";\n"
                              "  interval = \"500ms\";\n"
                              "  probe_timeout = \"200ms\";\n"
                              "  suspicion_mult = 3;\n"
                              "  lifeguard = false;\n"
                              "  status_interval = 0;\n"
                              "  custom = { role = \"db\"; };\n"
                              "};\n"),
                     0);
    assert_true(c.peer.given);
    assert_false(c.peer.on); /* vigil peer runs a member; a monitor reading the file does not */
    assert_string_equal(c.peer.id, "m1");
    assert_string_equal(c.peer.listen, "10.0.0.1:7946");
    assert_int_equal(c.peer.n_seeds, 2);
    assert_string_equal(c.peer.seeds[1], "[::1]:7946");
    assert_non_null(strstr(c.peer.key_file, "cluster.key"));
    assert_int_equal(c.peer.interval, 500 * VIGIL_NSEC_PER_MSEC);
    assert_int_equal(c.peer.probe_timeout, 200 * VIGIL_NSEC_PER_MSEC);
    assert_int_equal(c.peer.suspicion_mult, 3);
    assert_false(c.peer.lifeguard);
    assert_int_equal(c.peer.status_interval, 0);
    assert_int_equal(c.peer.n_custom, 1);
    /* Left alone: memberlist's LAN defaults. */
    assert_int_equal(c.peer.indirect_checks, 3);
    assert_int_equal(c.peer.retransmit_mult, 4);
    assert_int_equal(c.peer.suspicion_max_mult, 6);
    assert_int_equal(c.peer.gossip_interval, 200 * VIGIL_NSEC_PER_MSEC);
    vcfg_free(&c);
    /* No section: not a member. */
    assert_int_equal(load(&c, "monitor = { };\n"), 0);
    assert_false(c.peer.given);
    vcfg_free(&c);

    static const struct err_case cases[] = {
        {"peer = {\n  listen = \"10.0.0.1\";\n};\n",
         "%s:2: peer.listen \"10.0.0.1\" must be ADDRESS:PORT (\"10.0.0.1:7946\", "
         "\"[::1]:7946\")"},
        {"peer = { seeds = [ \"a:1\", \"b\" ]; };\n",
         "%s:1: peer.seeds[1] \"b\" must be ADDRESS:PORT (\"10.0.0.1:7946\", \"[::1]:7946\")"},
        {"peer = { id = \"a b\"; };\n",
         "%s:1: peer.id \"a b\" is not a valid member id (1 to 64 characters of A-Z a-z 0-9 . _ "
         "-)"},
        {"peer = { interval = \"5ms\"; };\n",
         "%s:1: peer.interval (5ms) must be between 10ms and 1m00s"},
        {"peer = { suspicion_mult = 0; };\n",
         "%s:1: peer.suspicion_mult (0) must be between 1 and 64"},
        {"peer = { status_interval = \"10ms\"; };\n",
         "%s:1: peer.status_interval must be 0 (never) or between 1 s and 1 h"},
        {"peer = { key_file = \"missing.key\"; };\n", NULL},
        {"peer = { probes = 3; };\n", "%s:1: unknown setting peer.probes"},
        {"peer = 1;\n", "%s:1: peer must be a group { ... }, not an integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(load(&c, cases[i].text), -1);
        if (cases[i].want)
            assert_string_equal(err, msg(cases[i].want));
        else
            assert_non_null(strstr(err, "vigil.conf:1: peer.key_file ")); /* and why */
        vcfg_free(&c);
    }
}

static void test_bad_values(void **state)
{
    (void)state;
    static const struct err_case cases[] = {
        {"monitor = {\n  startup_grace = \"10 s\";\n};\n",
         "%s:2: monitor.startup_grace \"10 s\" is not a duration (seconds as a number, or a "
         "number with a unit: ns, us, ms, s, m, h, as in \"1500ms\")"},
        {"monitor = { heartbeat_interval = \"1sec\"; };\n",
         "%s:1: monitor.heartbeat_interval \"1sec\" is not a duration (seconds as a number, or "
         "a number with a unit: ns, us, ms, s, m, h, as in \"1500ms\")"},
        {"monitor = { pause_tolerance = -1; };\n",
         "%s:1: monitor.pause_tolerance (-1) must be a duration of 0s or more"},
        {"monitor = { pause_tolerance = -0.5; };\n",
         "%s:1: monitor.pause_tolerance (-0.5) must be a duration of 0s or more"},
        {"monitor = { pause_tolerance = 1e300; };\n",
         "%s:1: monitor.pause_tolerance (1e+300s) is longer than any duration vigil accepts"},
        {"monitor = {\n  nodes = [ \"web1\",\n    \"bad id\" ];\n};\n",
         "%s:3: monitor.nodes[1] \"bad id\" is not a valid node id (1 to 64 characters of A-Z "
         "a-z 0-9 . _ -)"},
        {"monitor = {\n  nodes = [ \"web1\",\n    \"web2\", \"web1\" ];\n};\n",
         "%s:3: monitor.nodes[2] \"web1\" is declared twice (also on line 2)"},
        {"monitor = {\n  hooks = ( { command = [\"/bin/notify\"];\n"
         "              on = [ \"dead\", \"daed\" ]; } );\n};\n",
         "%s:3: monitor.hooks[0].on[1] \"daed\" is not a state (states: unknown, alive, "
         "suspect, dead, left; for checks: passing, warning, critical)"},
        {"monitor = {\n  checks = ( { node = \"w\"; name = \"c\";\n    type = \"udp\"; } );\n};\n",
         "%s:3: monitor.checks[0].type \"udp\" is not a check type (tcp, http, https, exec, ping)"},
        {"monitor = { checks = ( { name = \"c\"; type = \"tcp\"; target = \"1.2.3.4:5\"; } ); };\n",
         "%s:1: monitor.checks[0] has no node (node = \"web1\": the node whose service it checks)"},
        {"monitor = {\n  checks = ( { node = \"w\"; name = \"c\"; type = \"tcp\";\n"
         "    target = \"db.example:5432\"; } );\n};\n",
         "%s:3: monitor.checks[0].target \"db.example:5432\" must be a numeric address and port "
         "(\"10.0.0.5:5432\", \"[fd00::5]:5432\")"},
        {"monitor = { checks = ( { node = \"w\"; name = \"c\"; type = \"tcp\";\n"
         "  target = \"1.2.3.4:5\"; url = \"http://x/\"; } ); };\n",
         "%s:2: monitor.checks[0].url is not a setting of tcp checks"},
        {"monitor = { checks = (\n { node = \"w\"; name = \"c\"; type = \"exec\"; command = "
         "[\"/a\"]; },\n"
         " { node = \"w\"; name = \"c\"; type = \"exec\"; command = [\"/b\"]; } ); };\n",
         "%s:3: monitor.checks[1].name \"c\" names another check of this node already"},
        {"agent = { checks = ( { name = \"p\"; type = \"ping\"; target = \"1.2.3.4:5\"; } ); };\n",
         "%s:1: agent.checks[0].type is not for agents: a ping check is the monitor's poll of an "
         "agent"},
        {"agent = { checks = ( { node = \"w\"; name = \"c\"; type = \"exec\"; command = [\"/a\"]; "
         "} ); };\n",
         "%s:1: agent.checks[0].node is not an agent setting: an agent checks its own host"},
        {"monitor = { checks = ( { node = \"w\"; name = \"c\"; type = \"http\";\n"
         "  url = \"http://1.2.3.4/\"; headers = [ \"no colon\" ]; } ); };\n",
         "%s:2: monitor.checks[0].headers[0] \"no colon\" must be \"Name: value\" on one line"},
        {"monitor = { hooks = ( { command = [\"/bin/notify\"]; on = [ ]; } ); };\n",
         "%s:1: monitor.hooks[0].on must name at least one state (leave it out for all states)"},
        {"monitor = {\n  hooks = ( { command = [\"bin/notify\"]; } );\n};\n",
         "%s:2: monitor.hooks[0].command[0] \"bin/notify\" must be an absolute path or a "
         "program name to look up in PATH"},
        {"monitor = { hooks = ( { command = [ ]; } ); };\n",
         "%s:1: monitor.hooks[0].command must name a program (and its arguments)"},
        {"monitor = {\n  hooks = ( { command = [\"/a\"]; },\n   { timeout = 3; } );\n};\n",
         "%s:3: monitor.hooks[1] has no command (command = [ \"/path/to/program\", ... ])"},
        {"monitor = { hooks = ( { command = [\"/a\"]; timeout = 0; } ); };\n",
         "%s:1: monitor.hooks[0].timeout must be longer than 0s"},
        {"monitor = { hooks = ( { command = [\"/a\"]; retry_delay = 0; } ); };\n",
         "%s:1: monitor.hooks[0].retry_delay must be longer than 0s"},
        {"monitor = {\n  detector = { dead_after = 5; };\n};\n",
         "%s:2: monitor.detector.dead_after belongs to the fixed detector, but the detector type "
         "is \"phi\" (the default; set type)"},
        {"monitor = { detector = { type = \"fixed\"; min_std_dev = 5; }; };\n",
         "%s:1: monitor.detector.min_std_dev belongs to the phi and grid detectors, but the "
         "detector type is \"fixed\""},
        {"monitor = {\n  detector = {\n    type = \"grid\";\n    loss_floor = 0.7;\n  };\n};\n",
         "%s:4: monitor.detector.loss_floor must be between 0.000001 and 0.5, not 0.7"},
        {"monitor = {\n  detector = {\n    type = \"grid\";\n    loss_window = 10;\n  };\n};\n",
         "%s:4: monitor.detector.loss_window (10) must be between 32 and 1000000"},
        {"monitor = {\n  detector = {\n    type = \"grid\";\n    window = 32;\n  };\n};\n",
         "%s:4: monitor.detector.window belongs to the fixed and phi detectors, but the detector "
         "type is \"grid\""},
        {"monitor = {\n  detector = {\n    loss_floor = 0.02;\n  };\n};\n",
         "%s:3: monitor.detector.loss_floor belongs to the grid detector, but the detector type is "
         "\"phi\" (the default; set type)"},
        {"monitor = { detector = { window = 1; }; };\n",
         "%s:1: monitor.detector.window (1) must be between 2 and 1000"},
        {"monitor = { detector = { window = 1001; }; };\n",
         "%s:1: monitor.detector.window (1001) must be between 2 and 1000"},
        {"monitor = { rise = 0; };\n", "%s:1: monitor.rise (0) must be between 1 and 100"},
        {"monitor = { rise = 101; };\n", "%s:1: monitor.rise (101) must be between 1 and 100"},
        {"monitor = { max_nodes = 0; };\n",
         "%s:1: monitor.max_nodes (0) must be between 1 and 16777216"},
        {"monitor = { max_nodes = 16777217; };\n",
         "%s:1: monitor.max_nodes (16777217) must be between 1 and 16777216"},
        {"monitor = { receive_threads = 0; };\n",
         "%s:1: monitor.receive_threads (0) must be between 1 and 16"},
        {"monitor = { receive_threads = 17; };\n",
         "%s:1: monitor.receive_threads (17) must be between 1 and 16"},
        {"monitor = { receive_buffer_mb = 0; };\n",
         "%s:1: monitor.receive_buffer_mb (0) must be between 1 and 1024"},
        {"monitor = { event_history = 0; };\n",
         "%s:1: monitor.event_history (0) must be between 1 and 1000000"},
        {"monitor = { event_history = 1000001; };\n",
         "%s:1: monitor.event_history (1000001) must be between 1 and 1000000"},
        {"monitor = { hook_queue = 0; };\n",
         "%s:1: monitor.hook_queue (0) must be between 1 and 65536"},
        {"monitor = { hook_queue_total = 16777217; };\n",
         "%s:1: monitor.hook_queue_total (16777217) must be between 1 and 16777216"},
        {"monitor = { listen = [\"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]; "
         "};\n",
         "%s:1: monitor.listen holds 9 entries; at most 8 are allowed"},
        {"agent = { monitors = [\"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]; "
         "};\n",
         "%s:1: agent.monitors holds 9 entries; at most 8 are allowed"},
        {"agent = {\n  id = \"web 1\";\n};\n",
         "%s:2: agent.id \"web 1\" is not a valid node id (1 to 64 characters of A-Z a-z 0-9 . _ "
         "-)"},
        {"agent = { custom = { role = \"tab\\there\"; }; };\n",
         /* The tab is shown escaped: a message never prints a control character. */
         "%s:1: agent.custom.role \"tab\\there\" is not a valid value (at most 48 printable "
         "ASCII "
         "bytes)"},
        {"agent = { custom = { role = \"0123456789012345678901234567890123456789012345678\"; }; "
         "};\n",
         "%s:1: agent.custom.role \"0123456789012345678901234567890123456789012345678\" is not a "
         "valid value (at most 48 printable ASCII bytes)"},
        {"agent = { custom = { a*b = \"x\"; }; };\n",
         "%s:1: agent.custom: \"a*b\" is not a valid key (1 to 32 characters of A-Z a-z 0-9 . _ "
         "-)"},
        {"agent = { custom = { k1 = \"1\"; k2 = \"2\"; k3 = \"3\"; k4 = \"4\"; k5 = \"5\"; k6 = "
         "\"6\"; k7 = \"7\"; k8 = \"8\"; k9 = \"9\"; k10 = \"10\"; k11 = \"11\"; k12 = \"12\"; "
         "k13 = \"13\"; k14 = \"14\"; k15 = \"15\"; k16 = \"16\"; k17 = \"17\"; }; };\n",
         "%s:1: agent.custom holds 17 pairs; at most 16 are allowed"},
    };
    run_err_cases(cases, sizeof(cases) / sizeof(cases[0]));

    /* The accepted sides of the same boundaries. */
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = { rise = 1; max_nodes = 1; event_history = 1;\n"
                              "  detector = { window = 2; }; };\n"),
                     0);
    assert_int_equal(c.monitor.core.rise, 1);
    assert_int_equal(c.monitor.core.max_nodes, 1);
    assert_int_equal(c.monitor.event_history, 1);
    assert_int_equal(c.monitor.core.detector.window, 2);
    vcfg_free(&c);
    assert_int_equal(load(&c, "monitor = { rise = 100; max_nodes = 16777216; "
                              "event_history = 1000000;\n  detector = { window = 1000; }; };\n"
                              "agent = { custom = { role = "
                              "\"012345678901234567890123456789012345678901234567\"; }; };\n"),
                     0);
    assert_int_equal(c.monitor.core.rise, 100);
    assert_int_equal(c.monitor.core.max_nodes, 16777216);
    assert_int_equal(c.monitor.event_history, 1000000);
    assert_int_equal(c.monitor.core.detector.window, 1000);
    assert_int_equal(strlen(c.agent.custom[0].value), 48);
    vcfg_free(&c);
}

/* --- key files ---------------------------------------------------------------- */

/* Reads a key file, whatever its kind. */
static int read_key(const char *path, uint8_t key[VIGIL_WIRE_KEY_LEN])
{
    enum vcfg_key_kind kind;
    char id[VIGIL_ID_MAX + 1];
    return vcfg_read_key(path, key, &kind, id, err, sizeof(err));
}

static void test_key_kinds(void **state)
{
    (void)state;
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    enum vcfg_key_kind kind;
    char id[VIGIL_ID_MAX + 1], text[256];
    const char *p;

    snprintf(text, sizeof(text), "vigil-master-key\n%s\n", KEY_HEX);
    p = write_file("master.key", text, strlen(text));
    assert_int_equal(vcfg_read_key(p, key, &kind, id, err, sizeof(err)), 0);
    assert_int_equal(kind, VCFG_KEY_MASTER);
    assert_int_equal(key[1], 0x11);
    snprintf(text, sizeof(text), "vigil-node-key web1\n%s\n", KEY_HEX);
    p = write_file("web1.key", text, strlen(text));
    assert_int_equal(vcfg_read_key(p, key, &kind, id, err, sizeof(err)), 0);
    assert_int_equal(kind, VCFG_KEY_NODE);
    assert_string_equal(id, "web1");
    snprintf(text, sizeof(text), "%s\n", KEY_HEX);
    p = write_file("legacy.key", text, strlen(text));
    assert_int_equal(vcfg_read_key(p, key, &kind, id, err, sizeof(err)), 0);
    assert_int_equal(kind, VCFG_KEY_CLUSTER);
    snprintf(text, sizeof(text), "vigil-node-key bad id\n%s\n", KEY_HEX);
    p = write_file("badid.key", text, strlen(text));
    assert_int_equal(vcfg_read_key(p, key, &kind, id, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect), "%s: the header names no valid node id", p);
    assert_string_equal(err, expect);

    /* Readable by group or others: refused, as ssh refuses such private keys. */
    p = write_file("open.key", text, strlen(text));
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(vcfg_read_key(p, key, &kind, id, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect),
             "permissions 0644 for '%s' are too open: a key file must be readable by its owner "
             "only (chmod 600 '%s')",
             p, p);
    assert_string_equal(err, expect);
    assert_int_equal(chmod(p, 0640), 0);
    assert_int_equal(vcfg_read_key(p, key, &kind, id, err, sizeof(err)), -1);

    /* The monitor takes a master key or a legacy key, never a node key. */
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = { key_file = \"master.key\"; };\n"), 0);
    assert_true(c.monitor.core.has_key);
    assert_true(c.monitor.core.key_is_master);
    vcfg_free(&c);
    assert_int_equal(load(&c, "monitor = { key_file = \"legacy.key\"; };\n"), 0);
    assert_true(c.monitor.core.has_key);
    assert_false(c.monitor.core.key_is_master);
    vcfg_free(&c);
    assert_int_equal(load(&c, "monitor = { key_file = \"web1.key\"; };\n"), -1);
    assert_non_null(strstr(err, "a node key (of web1); a monitor needs the master key"));
    vcfg_free(&c);
    /* The agent takes a node key (and remembers its id) or a legacy key, never the master. */
    assert_int_equal(load(&c, "agent = { key_file = \"web1.key\"; };\n"), 0);
    assert_true(c.agent.has_key);
    assert_string_equal(c.agent.key_node, "web1");
    vcfg_free(&c);
    assert_int_equal(load(&c, "agent = { key_file = \"master.key\"; };\n"), -1);
    assert_non_null(strstr(err, "the master key; an agent needs its own node key"));
    vcfg_free(&c);
    /* insecure, max_ahead, state_file. */
    assert_int_equal(load(&c, "monitor = { insecure = true; max_ahead = \"1m\"; "
                              "state_file = \"hwm\"; state_flush = \"2s\"; };\n"),
                     0);
    assert_true(c.monitor.insecure);
    assert_int_equal(c.monitor.core.max_ahead, 60 * VIGIL_NSEC_PER_SEC);
    assert_non_null(strstr(c.monitor.state_file, "/hwm"));
    assert_int_equal(c.monitor.state_flush, 2 * VIGIL_NSEC_PER_SEC);
    vcfg_free(&c);
}

static void test_key_files(void **state)
{
    (void)state;
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    char text[256];
    const char *p;

    /* White space around the digits is allowed; upper and lower case both read. */
    snprintf(text, sizeof(text), "\n  %s \t\n", KEY_HEX);
    p = write_file("good.key", text, strlen(text));
    assert_int_equal(read_key(p, key), 0);
    assert_int_equal(key[0], 0x00);
    assert_int_equal(key[1], 0x11);
    assert_int_equal(key[15], 0xff);
    assert_int_equal(key[31], 0xff);

    struct {
        const char *text;
        const char *want; /* after "PATH: " */
    } bad[] = {
        {"00112233", "8 hex digits; a key file holds 64 (a 32-byte key)"},
        {"00112233445566778899aabbccddeeff00112233445566778899aabbccddeef",
         "63 hex digits; a key file holds 64 (a 32-byte key)"},
        {"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0",
         "65 hex digits; a key file holds 64 (a 32-byte key)"},
        {"00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg",
         "byte 64 is not a hex digit; a key file holds 64 hex digits"},
        {" 0011223344556677 8899aabbccddeeff00112233445566778899aabbccddeeff",
         "byte 18 is not a hex digit; a key file holds 64 hex digits"},
        {"  \n", "empty; a key file holds 64 hex digits (vigil keygen writes one)"},
        {"", "empty; a key file holds 64 hex digits (vigil keygen writes one)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = write_file("bad.key", bad[i].text, strlen(bad[i].text));
        memset(key, 0xAA, sizeof(key));
        assert_int_equal(read_key(p, key), -1);
        snprintf(expect, sizeof(expect), "%s: %s", p, bad[i].want);
        assert_string_equal(err, expect);
        /* A failed read leaves no partial key behind. */
        for (size_t k = 0; k < sizeof(key); k++)
            assert_int_equal(key[k], 0);
    }

    /* Longer than 4096 bytes. */
    char big[4200];
    memset(big, ' ', sizeof(big));
    memcpy(big, KEY_HEX, 64);
    p = write_file("big.key", big, sizeof(big));
    assert_int_equal(read_key(p, key), -1);
    snprintf(expect, sizeof(expect), "%s: longer than 4096 bytes; a key file holds 64 hex digits",
             p);
    assert_string_equal(err, expect);
    /* 4096 bytes exactly: read whole. */
    p = write_file("big.key", big, 4096);
    assert_int_equal(read_key(p, key), 0);

    /* Not a regular file; missing. */
    assert_int_equal(read_key(dir, key), -1);
    snprintf(expect, sizeof(expect), "%s: not a regular file", dir);
    assert_string_equal(err, expect);
    snprintf(text, sizeof(text), "%s/missing.key", dir);
    assert_int_equal(read_key(text, key), -1);
    snprintf(expect, sizeof(expect), "%s: cannot open: No such file or directory", text);
    assert_string_equal(err, expect);

    /* Through the configuration: the setting's line, then the key file's problem. */
    write_file("short.key", "abcd\n", 5);
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = {\n  key_file = \"short.key\";\n};\n"), -1);
    snprintf(text, sizeof(text),
             "%%s:2: monitor.key_file cannot be used: %s/short.key: 4 hex digits; a key file "
             "holds 64 (a 32-byte key)",
             dir);
    assert_string_equal(err, msg(text));
    assert_false(c.monitor.core.has_key);
    vcfg_free(&c);
    write_file("nonhex.key", "xyz\n", 4);
    assert_int_equal(load(&c, "\nagent = { key_file = \"nonhex.key\"; };\n"), -1);
    snprintf(text, sizeof(text),
             "%%s:2: agent.key_file cannot be used: %s/nonhex.key: the first line is neither "
             "\"vigil-master-key [key-id=N]\" nor \"vigil-node-key ID [key-id=N]\"",
             dir);
    assert_string_equal(err, msg(text));
    vcfg_free(&c);
}

/* Key ids in the header line; a monitor's list of keys (a rotation). */
static void test_key_ids_and_lists(void **state)
{
    (void)state;
    uint8_t key[VIGIL_WIRE_KEY_LEN], kid = 99;
    enum vcfg_key_kind kind;
    char node[VIGIL_ID_MAX + 1], text[256];
    const char *p;
    snprintf(text, sizeof(text), "vigil-master-key key-id=7\n%s\n", KEY_HEX);
    p = write_file("m7.key", text, strlen(text));
    assert_int_equal(vcfg_read_key_fs(&vio_fs_real, p, key, &kind, node, &kid, err, sizeof(err)),
                     0);
    assert_int_equal(kind, VCFG_KEY_MASTER);
    assert_int_equal(kid, 7);
    snprintf(text, sizeof(text), "vigil-node-key web-1 key-id=15\n%s\n", KEY_HEX);
    p = write_file("n15.key", text, strlen(text));
    assert_int_equal(vcfg_read_key_fs(&vio_fs_real, p, key, &kind, node, &kid, err, sizeof(err)),
                     0);
    assert_int_equal(kind, VCFG_KEY_NODE);
    assert_string_equal(node, "web-1");
    assert_int_equal(kid, 15);
    /* No key-id: 0. */
    snprintf(text, sizeof(text), "vigil-node-key web-2\n%s\n", KEY_HEX);
    p = write_file("n0.key", text, strlen(text));
    assert_int_equal(vcfg_read_key_fs(&vio_fs_real, p, key, &kind, node, &kid, err, sizeof(err)),
                     0);
    assert_int_equal(kid, 0);
    assert_string_equal(node, "web-2");
    const char *bad[] = {"key-id=16", "key-id=-1", "key-id=x", "key-id=1000000000000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "vigil-master-key %s\n%s\n", bad[i], KEY_HEX);
        p = write_file("bad-id.key", text, strlen(text));
        assert_int_equal(
            vcfg_read_key_fs(&vio_fs_real, p, key, &kind, node, &kid, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "key-id is not a number from 0 to 15"));
    }

    /* A monitor's list: two master keys with distinct ids. */
    snprintf(text, sizeof(text), "vigil-master-key key-id=1\n%s\n", KEY_HEX);
    write_file("m1.key", text, strlen(text));
    snprintf(text, sizeof(text), "vigil-master-key\n%s\n", KEY_HEX);
    write_file("m0.key", text, strlen(text));
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = { key_file = [\"m0.key\", \"m1.key\"]; };\n"), 0);
    assert_int_equal(c.monitor.n_keys, 2);
    assert_int_equal(c.monitor.n_key_files, 2);
    assert_int_equal(c.monitor.keys[1].id, 1);
    assert_true(c.monitor.keys[0].master && c.monitor.core.has_key &&
                c.monitor.core.key_is_master && c.monitor.core.key_id == 0);
    vcfg_free(&c);
    /* The same id twice, a node key, too many files: refused, with the file and line. */
    assert_int_equal(load(&c, "monitor = {\n key_file = (\"m0.key\",\n \"m0.key\"); };\n"), -1);
    assert_non_null(strstr(err, ":3: monitor.key_file"));
    assert_non_null(strstr(err, "key id 0 again"));
    vcfg_free(&c);
    assert_int_equal(load(&c, "monitor = { key_file = [\"m0.key\", \"n15.key\"]; };\n"), -1);
    assert_non_null(strstr(err, "a node key (of web-1)"));
    vcfg_free(&c);
    assert_int_equal(load(&c,
                          "monitor = { key_file = [\"m0.key\", \"m1.key\", \"m7.key\", \"m0.key\", "
                          "\"m1.key\"]; };\n"),
                     -1);
    assert_non_null(strstr(err, "lists 1 to 4 key files, not 5"));
    vcfg_free(&c);
    /* encrypt: the agent needs a key and version 2; the monitor a key. */
    assert_int_equal(
        load(&c, "agent = { id = \"a\"; monitors = [\"127.0.0.1\"]; encrypt = true; };\n"), 0);
    assert_int_equal(vcfg_check(&c, "agent", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "agent.encrypt needs a key"));
    vcfg_free(&c);
    assert_int_equal(load(&c, "monitor = { encrypt = true; insecure = true; };\n"), 0);
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "monitor.encrypt needs a key"));
    vcfg_free(&c);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct vcfg c;
    char path[200];
    snprintf(path, sizeof(path), "%s/nope.conf", dir);
    vcfg_init(&c);
    assert_int_equal(vcfg_load(&c, path, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect), "%s: cannot open: No such file or directory", path);
    assert_string_equal(err, expect);
    vcfg_free(&c);
    /* A message longer than the buffer is cut, still terminated. */
    char small[8];
    vcfg_init(&c);
    assert_int_equal(vcfg_load(&c, path, small, sizeof(small)), -1);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(vcfg_load(&c, path, NULL, 0), -1);
    vcfg_free(&c);
}

/* --- relations (vcfg_check) ------------------------------------------------------ */

struct check_case {
    const char *text;
    const char *which;
    const char *want; /* NULL: the check passes; a final '*': the rest is the core's reason */
};

static void run_check_cases(const struct check_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct vcfg c;
        int rc = load(&c, cases[i].text);
        if (rc != 0)
            print_error("case %zu: load failed: %s\n", i, err);
        assert_int_equal(rc, 0);
        err[0] = '\0';
        rc = vcfg_check(&c, cases[i].which, err, sizeof(err));
        if (cases[i].want == NULL) {
            if (rc != 0)
                print_error("case %zu: unexpected: %s\n", i, err);
            assert_int_equal(rc, 0);
        } else {
            size_t wl = strlen(msg(cases[i].want));
            bool prefix = wl > 0 && expect[wl - 1] == '*';
            bool same = prefix ? strlen(err) > wl - 1 && !strncmp(err, expect, wl - 1)
                               : !strcmp(err, expect);
            if (rc != -1 || !same)
                print_error("case %zu: rc %d\n  got:  %s\n  want: %s\n", i, rc, err, expect);
            assert_int_equal(rc, -1);
            assert_true(same);
        }
        vcfg_free(&c);
    }
}

static void test_check_fixed(void **state)
{
    (void)state;
    static const struct check_case cases[] = {
        /* dead_after no longer than the interval. */
        {"monitor = {\n  heartbeat_interval = 2;\n  detector = {\n    type = \"fixed\";\n"
         "    dead_after = 1.5;\n    suspect_after = 1;\n  };\n};\n",
         "monitor",
         "%s:5: monitor.detector.dead_after (1.5s) must be longer than "
         "monitor.heartbeat_interval (2s)"},
        {"monitor = {\n  heartbeat_interval = 2;\n  detector = { type = \"fixed\";\n"
         "    dead_after = 2; suspect_after = 1; };\n};\n",
         "monitor",
         "%s:4: monitor.detector.dead_after (2s) must be longer than "
         "monitor.heartbeat_interval (2s)"},
        /* Below two intervals, and exactly two. */
        {"monitor = {\n  heartbeat_interval = 2;\n  detector = { type = \"fixed\";\n"
         "    suspect_after = 2.5;\n    dead_after = \"3999ms\"; };\n};\n",
         "monitor",
         "%s:5: monitor.detector.dead_after (3.999s) must be at least twice "
         "monitor.heartbeat_interval (2s): a dead timeout shorter than two heartbeat intervals "
         "convicts on one lost datagram"},
        {"monitor = {\n  heartbeat_interval = 2;\n  detector = { type = \"fixed\";\n"
         "    suspect_after = 2.5;\n    dead_after = 4; };\n};\n",
         "monitor", NULL},
        /* suspect_after not below dead_after, and just below. */
        {"monitor = {\n  detector = { type = \"fixed\";\n    suspect_after = 5;\n"
         "    dead_after = 5; };\n};\n",
         "monitor",
         "%s:3: monitor.detector.suspect_after (5s) must be shorter than "
         "monitor.detector.dead_after (5s)"},
        {"monitor = {\n  detector = { type = \"fixed\";\n    suspect_after = 6;\n"
         "    dead_after = 5; };\n};\n",
         "monitor",
         "%s:3: monitor.detector.suspect_after (6s) must be shorter than "
         "monitor.detector.dead_after (5s)"},
        {"monitor = {\n  detector = { type = \"fixed\";\n    suspect_after = 4.999;\n"
         "    dead_after = 5; };\n};\n",
         "monitor", NULL},
        /* suspect_after not beyond the interval, and just beyond. */
        {"monitor = {\n  heartbeat_interval = \"500ms\";\n  detector = { type = \"fixed\";\n"
         "    suspect_after = \"500ms\"; dead_after = 5; };\n};\n",
         "monitor",
         "%s:4: monitor.detector.suspect_after (500ms) must be longer than "
         "monitor.heartbeat_interval (500ms): every node would be suspect between two "
         "heartbeats"},
        {"monitor = {\n  heartbeat_interval = \"500ms\";\n  detector = { type = \"fixed\";\n"
         "    suspect_after = \"501ms\"; dead_after = 5; };\n};\n",
         "monitor", NULL},
        /* Zero thresholds. */
        {"monitor = {\n  detector = { type = \"fixed\";\n    suspect_after = 0;\n"
         "    dead_after = 5; };\n};\n",
         "monitor", "%s:3: monitor.detector: suspect_after and dead_after must be longer than 0s"},
        /* startup_grace below the dead timeout, and equal to it. */
        {"monitor = {\n  detector = { type = \"fixed\"; dead_after = 20; };\n"
         "  startup_grace = \"19.5s\";\n};\n",
         "monitor",
         "%s:3: monitor.startup_grace (19.5s) must be at least monitor.detector.dead_after "
         "(20s): a declared node must get the time any silent node gets"},
        {"monitor = {\n  detector = { type = \"fixed\";\n    dead_after = 20; };\n};\n", "monitor",
         "%s:3: monitor.startup_grace (10s) must be at least monitor.detector.dead_after (20s): "
         "a declared node must get the time any silent node gets"},
        {"monitor = {\n  detector = { type = \"fixed\"; dead_after = 20; };\n"
         "  startup_grace = \"20s\";\n};\n",
         "monitor", NULL},
    };
    run_check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_check_phi(void **state)
{
    (void)state;
    static const struct check_case cases[] = {
        {"monitor = {\n  detector = {\n    suspect_threshold = 9;\n    dead_threshold = 8;\n"
         "  };\n};\n",
         "monitor",
         "%s:3: monitor.detector.suspect_threshold (9) must not be above "
         "monitor.detector.dead_threshold (8)"},
        {"monitor = {\n  detector = {\n    suspect_threshold = 8;\n    dead_threshold = 8;\n"
         "  };\n};\n",
         "monitor", NULL},
        {"monitor = {\n  detector = {\n    suspect_threshold = 0;\n  };\n};\n", "monitor",
         "%s:3: monitor.detector.suspect_threshold (0) must be greater than 0"},
        {"monitor = {\n  detector = {\n    dead_threshold = -1;\n  };\n};\n", "monitor",
         "%s:3: monitor.detector.dead_threshold (-1) must be greater than 0"},
        {"monitor = {\n  detector = {\n    min_std_dev = 0;\n  };\n};\n", "monitor",
         "%s:3: monitor.detector.min_std_dev (0s) must be longer than 0s"},
        {"monitor = {\n  detector = {\n    first_estimate = 0;\n  };\n};\n", "monitor",
         "%s:3: monitor.detector.first_estimate (0s) must be longer than 0s"},
        {"monitor = {\n  detector = {\n    min_std_dev = \"1ns\"; first_estimate = \"1ns\";\n"
         "  };\n};\n",
         "monitor", NULL},
        /* Phi is capped at 10^6: a threshold beyond can never be reached. */
        {"monitor = {\n  detector = {\n    dead_threshold = 1000001;\n  };\n};\n", "monitor",
         "%s:3: monitor.detector: *"},
        {"monitor = {\n  detector = {\n    dead_threshold = 1000000;\n  };\n};\n", "monitor", NULL},
        {"monitor = {\n  detector = {\n    acceptable_pause = 0;\n  };\n};\n", "monitor", NULL},
        /* startup_grace below the interval, and equal to it. */
        {"monitor = {\n  heartbeat_interval = 20;\n  startup_grace = \"19s\";\n};\n", "monitor",
         "%s:3: monitor.startup_grace (19s) must be at least monitor.heartbeat_interval (20s): "
         "a declared node must get the time to send one heartbeat"},
        {"monitor = {\n  heartbeat_interval = 20;\n};\n", "monitor",
         "%s:2: monitor.startup_grace (10s) must be at least monitor.heartbeat_interval (20s): "
         "a declared node must get the time to send one heartbeat"},
        {"monitor = {\n  heartbeat_interval = 20;\n  startup_grace = 20;\n};\n", "monitor", NULL},
    };
    run_check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_check_grid(void **state)
{
    (void)state;
    static const struct check_case cases[] = {
        {"monitor = {\n  heartbeat_interval = \"100ms\";\n  detector = { type = \"grid\"; };\n};\n",
         "monitor", NULL},
        {"monitor = {\n  detector = {\n    type = \"grid\"; suspect_threshold = 7;\n"
         "    dead_threshold = 6.5;\n  };\n};\n",
         "monitor",
         "%s:3: monitor.detector.suspect_threshold (7) must not be above "
         "monitor.detector.dead_threshold (6.5)"},
        {"monitor = {\n  detector = {\n    type = \"grid\";\n    margin = \"1s\";\n  };\n};\n",
         "monitor",
         "%s:4: monitor.detector.margin (1s) must be shorter than monitor.heartbeat_interval "
         "(1s): a slot is missed only once the next one is due"},
        {"monitor = {\n  detector = {\n    type = \"grid\";\n    min_std_dev = 0;\n  };\n};\n",
         "monitor", "%s:4: monitor.detector.min_std_dev (0s) must be longer than 0s"},
        {"monitor = {\n  detector = {\n    type = \"grid\"; loss_floor = 0.02;\n"
         "    loss_window = 5000; margin = \"3ms\"; min_std_dev = \"1ms\";\n  };\n};\n",
         "monitor", NULL},
    };
    run_check_cases(cases, sizeof(cases) / sizeof(cases[0]));

    /* The grid's settings reach the core configuration. */
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = { heartbeat_interval = \"100ms\"; detector = { type = "
                              "\"grid\"; loss_floor = 0.02; loss_window = 5000; margin = \"3ms\"; "
                              "}; };\n"),
                     0);
    const struct vigil_detector_config *d = &c.monitor.core.detector;
    assert_int_equal(d->kind, VIGIL_DETECTOR_GRID);
    assert_true(d->loss_floor == 0.02);
    assert_int_equal(d->loss_window, 5000);
    assert_int_equal(d->margin, 3 * VIGIL_NSEC_PER_MSEC);
    assert_int_equal(d->interval, 100 * VIGIL_NSEC_PER_MSEC);
    assert_true(d->dead_threshold == 6.5);
    vcfg_free(&c);
}

static void test_check_monitor_misc(void **state)
{
    (void)state;
    static const struct check_case cases[] = {
        {"monitor = {\n  listen = [ ];\n};\n", "monitor",
         "%s:2: monitor.listen must hold at least one address"},
        {"monitor = {\n  listen = [ \"0.0.0.0:7946\",\n     \"localhost:7946\" ];\n};\n", "monitor",
         "%s:3: monitor.listen[1] \"localhost:7946\" is not a numeric address (1.2.3.4:7946, "
         "[::]:7946)"},
        {"monitor = {\n  listen = [ \"0.0.0.0:79460\" ];\n};\n", "monitor",
         "%s:2: monitor.listen[0] \"0.0.0.0:79460\" is not a numeric address (1.2.3.4:7946, "
         "[::]:7946)"},
        {"monitor = { listen = [ \"[::]:7946\", \"127.0.0.1\", \"::1\" ]; };\n", "monitor", NULL},
        {"monitor = {\n\n  api = \"localhost\";\n};\n", "monitor",
         "%s:3: monitor.api \"localhost\" is not a numeric address (127.0.0.1:7947, [::1]:7947) "
         "or \"off\""},
        {"monitor = { api = \"\"; };\n", "monitor", NULL},
        {"monitor = { api = \"[::1]:8000\"; };\n", "monitor", NULL},
        {"monitor = {\n  pause_tolerance = 0;\n};\n", "monitor",
         "%s:2: monitor.pause_tolerance (0s) must be longer than 0s"},
        {"monitor = {\n  pause_tolerance = \"9ms\";\n};\n", "monitor",
         "%s:2: monitor.pause_tolerance (9ms) must be at least 10ms: an event loop is late by "
         "that much on an ordinary host, and every such delay would count as a stall of the "
         "monitor and reset detection"},
        {"monitor = { pause_tolerance = \"10ms\"; };\n", "monitor", NULL},
        {"monitor = {\n  heartbeat_interval = \"9ms\";\n};\n", "monitor",
         "%s:2: monitor.heartbeat_interval (9ms) must be between 10ms and 1h"},
        {"monitor = {\n  heartbeat_interval = \"10ms\";\n};\n", "monitor", NULL},
        {"monitor = {\n  heartbeat_interval = \"1h\"; startup_grace = \"1h\";\n};\n", "monitor",
         NULL},
        {"monitor = {\n  heartbeat_interval = 3601;\n};\n", "monitor",
         "%s:2: monitor.heartbeat_interval (1h00m01s) must be between 10ms and 1h"},
        {"monitor = {\n  max_nodes = 2;\n  nodes = [ \"a\", \"b\", \"c\" ];\n};\n", "monitor",
         "%s:2: monitor.max_nodes (2) is smaller than the 3 declared nodes"},
        {"monitor = {\n  max_nodes = 3;\n  nodes = [ \"a\", \"b\", \"c\" ];\n};\n", "monitor",
         NULL},
    };
    run_check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_check_agent(void **state)
{
    (void)state;
    static const struct check_case cases[] = {
        {"agent = {\n  id = \"web1\";\n  monitors = [ ];\n};\n", "agent",
         "%s:3: agent.monitors must hold 1 to 8 monitor addresses (it holds 0)"},
        {"agent = {\n  id = \"web1\";\n  monitors = [ \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", "
         "\"7\", \"8\" ];\n};\n",
         "agent", NULL},
        {"agent = {\n  id = \"web1\";\n  interval = \"9999us\";\n};\n", "agent",
         "%s:3: agent.interval (9.999ms) must be between 10ms and 1h"},
        {"agent = {\n  id = \"web1\";\n  interval = \"10ms\";\n};\n", "agent", NULL},
        {"agent = {\n  id = \"web1\";\n  interval = \"60m\";\n};\n", "agent", NULL},
        {"agent = {\n  id = \"web1\";\n  interval = \"3600001ms\";\n};\n", "agent",
         "%s:3: agent.interval (1h00m00.001s) must be between 10ms and 1h"},
        /* The monitor section is not checked for an agent, and the other way round. */
        {"agent = { id = \"web1\"; };\nmonitor = { listen = [ ]; };\n", "agent", NULL},
        {"agent = { monitors = [ ]; };\n", "monitor", NULL},
    };
    run_check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* A setting a flag overrode after loading is not blamed on the file's line. */
static void test_check_after_override(void **state)
{
    (void)state;
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = {\n  heartbeat_interval = 2;\n  detector = {\n"
                              "    type = \"fixed\"; suspect_after = 3; dead_after = 5; };\n};\n"
                              "agent = {\n  id = \"web1\";\n  interval = 1;\n};\n"),
                     0);
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), 0);
    /* As --interval 3 would: the interval no longer comes from line 2. */
    c.monitor.interval = 3 * VIGIL_NSEC_PER_SEC;
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), -1);
    assert_string_equal(err, msg("%s:4: monitor.detector.dead_after (5s) must be at least twice "
                                 "monitor.heartbeat_interval (3s): a dead timeout shorter than "
                                 "two heartbeat intervals convicts on one lost datagram"));
    /* And a threshold overridden too: no line to cite at all. */
    c.monitor.core.detector.dead_threshold = 5.5;
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), -1);
    assert_string_equal(err, "monitor.detector.dead_after (5.5s) must be at least twice "
                             "monitor.heartbeat_interval (3s): a dead timeout shorter than two "
                             "heartbeat intervals convicts on one lost datagram");
    c.agent.interval = 2 * 3600 * VIGIL_NSEC_PER_SEC;
    assert_int_equal(vcfg_check(&c, "agent", err, sizeof(err)), -1);
    assert_string_equal(err, "agent.interval (2h00m) must be between 10ms and 1h");
    free(c.agent.id);
    c.agent.id = strdup("bad id");
    assert_int_equal(vcfg_check(&c, "agent", err, sizeof(err)), -1);
    assert_string_equal(err, "agent.id \"bad id\" is not a valid node id (1 to 64 characters of "
                             "A-Z a-z 0-9 . _ -)");
    vcfg_free(&c);

    /* Hooks and nodes added by flags are checked as well. */
    vcfg_init(&c);
    c.monitor.hooks[0].argv[0] = strdup("./notify");
    c.monitor.hooks[0].timeout = VIGIL_NSEC_PER_SEC;
    c.monitor.n_hooks = 1;
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), -1);
    assert_string_equal(err, "monitor.hooks[0]: \"./notify\" must be an absolute path or a "
                             "program name to look up in PATH");
    free(c.monitor.hooks[0].argv[0]);
    c.monitor.hooks[0].argv[0] = strdup("notify");
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), 0);
    c.monitor.nodes[0] = strdup("a");
    c.monitor.nodes[1] = strdup("a");
    c.monitor.n_nodes = 2;
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), -1);
    assert_string_equal(err, "node \"a\" is declared twice");
    vcfg_free(&c);
}

/* --- durations ------------------------------------------------------------------ */

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        vigil_time_t ns;
    } good[] = {
        {"0", 0},
        {"1", VIGIL_NSEC_PER_SEC},
        {"1.5", 1500 * VIGIL_NSEC_PER_MSEC},
        {".5", 500 * VIGIL_NSEC_PER_MSEC},
        {"0.1", 100 * VIGIL_NSEC_PER_MSEC},
        {"1500ms", 1500 * VIGIL_NSEC_PER_MSEC},
        {"1.5s", 1500 * VIGIL_NSEC_PER_MSEC},
        {"2s", 2 * VIGIL_NSEC_PER_SEC},
        {"2m", 120 * VIGIL_NSEC_PER_SEC},
        {"1.5m", 90 * VIGIL_NSEC_PER_SEC},
        {"1h", 3600 * VIGIL_NSEC_PER_SEC},
        {"250us", 250000},
        {"0.5us", 500},
        {"7ns", 7},
        {"0.0000000015", 2}, /* 1.5 ns rounds to 2 */
        {"0.0000000014", 1}, /* 1.4 ns rounds to 1 */
        {"0.1ms", 100000},
        {"007s", 7 * VIGIL_NSEC_PER_SEC},
        {"2305843009s", INT64_C(2305843009) * VIGIL_NSEC_PER_SEC},
        {"2305843009213693951ns", VCFG_DURATION_MAX},
        {"2305843009213693951.4ns", VCFG_DURATION_MAX},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        vigil_time_t v = -1;
        if (vcfg_parse_duration(good[i].s, &v) != 0 || v != good[i].ns)
            print_error("\"%s\": got %lld, want %lld\n", good[i].s, (long long)v,
                        (long long)good[i].ns);
        assert_int_equal(vcfg_parse_duration(good[i].s, &v), 0);
        assert_int_equal(v, good[i].ns);
    }
    static const char *const bad[] = {
        "",
        "s",
        "ms",
        ".",
        "1.",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1 s",
        "1sec",
        "1S",
        "1e3",
        "1.5.5",
        "1,5",
        "0x10",
        "1d",
        "1msms",
        "inf",
        "nan",
        "2305843010s",
        "2305843009213693952ns",
        "2305843009213693951.5ns",
        "99999999999999999999",
        "1..5",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vigil_time_t v = 12345;
        if (vcfg_parse_duration(bad[i], &v) != -1)
            print_error("\"%s\" was accepted as %lld\n", bad[i], (long long)v);
        assert_int_equal(vcfg_parse_duration(bad[i], &v), -1);
        assert_int_equal(v, 12345); /* untouched on failure */
    }
    vigil_time_t v;
    assert_int_equal(vcfg_parse_duration(NULL, &v), -1);
    assert_int_equal(vcfg_parse_duration("1", NULL), -1);

    /* Numbers in the file: integer and floating-point seconds. */
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = { startup_grace = 30; pause_tolerance = 0.001; };\n"
                              "agent = { interval = 2.5; };\n"),
                     0);
    assert_int_equal(c.monitor.core.startup_grace, 30 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(c.monitor.core.pause_tolerance, VIGIL_NSEC_PER_MSEC);
    assert_int_equal(c.agent.interval, 2500 * VIGIL_NSEC_PER_MSEC);
    vcfg_free(&c);
}

/* The one integer parser: the whole string, digits only, no overflow, at most max. */
static void test_parse_u64(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t max;
        int rc;
        uint64_t v;
    } cases[] = {
        {"0", UINT64_MAX, 0, 0},
        {"42", UINT64_MAX, 0, 42},
        {"007", UINT64_MAX, 0, 7},
        {"18446744073709551615", UINT64_MAX, 0, UINT64_MAX},
        {"18446744073709551616", UINT64_MAX, -1, 0},
        {"99999999999999999999", UINT64_MAX, -1, 0},
        {"10000", 10000, 0, 10000},
        {"10001", 10000, -1, 0},
        {"9", 5, -1, 0},
        {"0", 0, 0, 0},
        {"1", 0, -1, 0},
        {"", UINT64_MAX, -1, 0},
        {"-1", UINT64_MAX, -1, 0},
        {"+1", UINT64_MAX, -1, 0},
        {" 1", UINT64_MAX, -1, 0},
        {"1 ", UINT64_MAX, -1, 0},
        {"1\n", UINT64_MAX, -1, 0},
        {"0x10", UINT64_MAX, -1, 0},
        {"1e3", UINT64_MAX, -1, 0},
        {"1.0", UINT64_MAX, -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 12345;
        int rc = vcfg_parse_u64(cases[i].s, cases[i].max, &v);
        if (rc != cases[i].rc)
            print_error("case %zu: \"%s\" gave %d\n", i, cases[i].s, rc);
        assert_int_equal(rc, cases[i].rc);
        assert_true(v == (rc == 0 ? cases[i].v : 12345));
    }
    uint64_t v;
    assert_int_equal(vcfg_parse_u64(NULL, UINT64_MAX, &v), -1);
}

/* pause_tolerance follows the interval unless the file sets it. */
static void test_pause_tolerance_auto(void **state)
{
    (void)state;
    const vigil_time_t ms = VIGIL_NSEC_PER_MSEC;
    assert_int_equal(vcfg_pause_tolerance_auto(10 * ms), 100 * ms);
    assert_int_equal(vcfg_pause_tolerance_auto(50 * ms), 100 * ms);
    assert_int_equal(vcfg_pause_tolerance_auto(51 * ms), 102 * ms);
    assert_int_equal(vcfg_pause_tolerance_auto(250 * ms), 500 * ms);
    assert_int_equal(vcfg_pause_tolerance_auto(500 * ms), 1000 * ms);
    assert_int_equal(vcfg_pause_tolerance_auto(3600 * 1000 * ms), 1000 * ms);
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = { heartbeat_interval = \"100ms\"; };\n"), 0);
    assert_true(c.monitor.pause_tolerance_auto);
    vcfg_free(&c);
    assert_int_equal(
        load(&c, "monitor = { heartbeat_interval = \"100ms\"; pause_tolerance = \"3s\"; };\n"), 0);
    assert_false(c.monitor.pause_tolerance_auto);
    assert_int_equal(c.monitor.core.pause_tolerance, 3000 * ms);
    vcfg_free(&c);
}

/* The API's files: paths relative to the file's directory; HTTPS needs both halves. */
static void test_api_files(void **state)
{
    (void)state;
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = { api_token_file = \"api.token\";\n"
                              "  api_tls_cert = \"/etc/vigil/api.crt\";\n"
                              "  api_tls_key = \"tls/api.key\"; };\n"),
                     0);
    char want[512];
    snprintf(want, sizeof(want), "%s/api.token", dir);
    assert_string_equal(c.monitor.api_token_file, want);
    assert_string_equal(c.monitor.api_tls_cert, "/etc/vigil/api.crt");
    snprintf(want, sizeof(want), "%s/tls/api.key", dir);
    assert_string_equal(c.monitor.api_tls_key, want);
    c.monitor.insecure = true;
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), 0);
    vcfg_free(&c);

    assert_int_equal(load(&c, "monitor = {\n  api_tls_cert = \"api.crt\"; };\n"), 0);
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), -1);
    assert_string_equal(
        err, msg("%s:2: monitor.api_tls_cert is set but monitor.api_tls_key is not: HTTPS needs "
                 "both"));
    vcfg_free(&c);
    assert_int_equal(load(&c, "monitor = {\n\n  api_tls_key = \"api.key\"; };\n"), 0);
    assert_int_equal(vcfg_check(&c, "monitor", err, sizeof(err)), -1);
    assert_string_equal(
        err, msg("%s:3: monitor.api_tls_key is set but monitor.api_tls_cert is not: HTTPS needs "
                 "both"));
    vcfg_free(&c);

    assert_int_equal(load(&c, "monitor = { api_token_file = \"\"; };\n"), -1);
    assert_non_null(strstr(err, "must not be empty"));
    vcfg_free(&c);
    assert_int_equal(load(&c, "monitor = { api_tls_cert = 5; };\n"), -1);
    vcfg_free(&c);
}

/* --- actions (monitor.actions, monitor.hooks) ------------------------------------ */

#define SEC VIGIL_NSEC_PER_SEC

/* The action's name as everything else sees it: its own, or "KIND-N". */
static const char *act_name(const struct vcfg_monitor *m, size_t i)
{
    static char buf[VCFG_ACTION_NAME_MAX + 24];
    return vcfg_hook_name(&m->hooks[i], i, buf, sizeof(buf));
}

/* Every field an action has, at the value a fresh action of its kind has it. */
static void assert_untouched_fields(const struct vcfg_hook *h)
{
    assert_null(h->name);
    assert_int_equal(h->n_nodes, 0);
    assert_null(h->match_key);
    assert_null(h->match_value);
    assert_int_equal(h->n_labels, 0);
    assert_null(h->secret_file);
    assert_null(h->escalate);
    assert_int_equal(h->repeat, 0);
}

/* Each kind with only what it needs: the defaults of docs/actions.md. */
static void test_action_defaults(void **state)
{
    (void)state;
    struct vcfg c;
    assert_int_equal(load(&c,
                          "monitor = {\n"
                          "  actions = (\n"
                          "    { command = [ \"/bin/notify\" ]; },\n"
                          "    { kind = \"haproxy\"; socket = \"/run/haproxy/admin.sock\";\n"
                          "      servers = [ \"web/%n\" ]; },\n"
                          "    { kind = \"webhook\"; url = \"https://hooks.example.com/v\"; },\n"
                          "    { kind = \"alertmanager\"; url = \"http://127.0.0.1:9093\"; },\n"
                          "    { kind = \"restart\"; command = [ \"/usr/sbin/restart-app\" ]; }\n"
                          "  );\n"
                          "};\n"),
                     0);
    const struct vcfg_monitor *m = &c.monitor;
    assert_int_equal(m->n_hooks, 5);
    const uint32_t dead = 1u << VIGIL_STATE_DEAD;

    /* exec: every state, no undo, twice more 1 s then 2 s later, no cap, 10 s. */
    const struct vcfg_hook *h = &m->hooks[0];
    assert_int_equal(h->kind, VCFG_ACT_EXEC);
    assert_string_equal(act_name(m, 0), "exec-1");
    assert_string_equal(h->argv[0], "/bin/notify");
    assert_null(h->argv[1]);
    assert_int_equal(h->on_states, 0);
    assert_false(h->undo);
    assert_int_equal(h->retries, 2);
    assert_int_equal(h->retries, HOOK_RETRIES_DEFAULT);
    assert_int_equal(h->retry_delay, SEC);
    assert_int_equal(h->retry_max, 0);
    assert_int_equal(h->timeout, 10 * SEC);
    assert_int_equal(h->timeout, HOOK_TIMEOUT_DEFAULT);
    assert_null(h->target);
    assert_int_equal(h->restart_wait, 0);
    assert_int_equal(h->reset_after, 0);
    assert_untouched_fields(h);

    /* haproxy: on dead, undone on the way back, 5 retries from 1 s to 30 s, 5 s. */
    h = &m->hooks[1];
    assert_int_equal(h->kind, VCFG_ACT_HAPROXY);
    assert_string_equal(act_name(m, 1), "haproxy-2");
    assert_null(h->argv[0]);
    assert_int_equal(h->on_states, dead);
    assert_true(h->undo);
    assert_int_equal(h->retries, 5);
    assert_int_equal(h->retries, ACT_RETRIES_DEFAULT);
    assert_int_equal(h->retry_delay, SEC);
    assert_int_equal(h->retry_max, 30 * SEC);
    assert_int_equal(h->retry_max, ACT_RETRY_MAX_DEFAULT);
    assert_int_equal(h->timeout, 5 * SEC);
    assert_int_equal(h->timeout, ACT_HAPROXY_TIMEOUT);
    assert_string_equal(h->target, "/run/haproxy/admin.sock");
    assert_int_equal(h->n_servers, 1);
    assert_string_equal(h->servers[0], "web/%n");
    assert_null(h->server_key);
    assert_false(h->drain);
    assert_untouched_fields(h);

    /* webhook: every state, no undo, the built-in kinds' retries, 10 s. */
    h = &m->hooks[2];
    assert_int_equal(h->kind, VCFG_ACT_WEBHOOK);
    assert_string_equal(act_name(m, 2), "webhook-3");
    assert_int_equal(h->on_states, 0);
    assert_false(h->undo);
    assert_int_equal(h->retries, ACT_RETRIES_DEFAULT);
    assert_int_equal(h->retry_delay, SEC);
    assert_int_equal(h->retry_max, ACT_RETRY_MAX_DEFAULT);
    assert_int_equal(h->timeout, HOOK_TIMEOUT_DEFAULT);
    assert_string_equal(h->target, "https://hooks.example.com/v");
    assert_int_equal(h->n_servers, 0);
    assert_untouched_fields(h);

    /* alertmanager: on dead, resolved on the way back; repeat 0 stands for 60 s. */
    h = &m->hooks[3];
    assert_int_equal(h->kind, VCFG_ACT_ALERTMANAGER);
    assert_string_equal(act_name(m, 3), "alertmanager-4");
    assert_int_equal(h->on_states, dead);
    assert_true(h->undo);
    assert_int_equal(h->retries, ACT_RETRIES_DEFAULT);
    assert_int_equal(h->retry_max, ACT_RETRY_MAX_DEFAULT);
    assert_int_equal(h->timeout, HOOK_TIMEOUT_DEFAULT);
    assert_string_equal(h->target, "http://127.0.0.1:9093");
    assert_untouched_fields(h);

    /* restart: CrashLoopBackOff's numbers; 7 min for a restart and its wait. */
    h = &m->hooks[4];
    assert_int_equal(h->kind, VCFG_ACT_RESTART);
    assert_string_equal(act_name(m, 4), "restart-5");
    assert_string_equal(h->argv[0], "/usr/sbin/restart-app");
    assert_int_equal(h->on_states, dead);
    assert_false(h->undo);
    assert_int_equal(h->retries, 4);
    assert_int_equal(h->retries, ACT_RESTART_RETRIES);
    assert_int_equal(h->retry_delay, 10 * SEC);
    assert_int_equal(h->retry_delay, ACT_RESTART_BACKOFF);
    assert_int_equal(h->retry_max, 300 * SEC);
    assert_int_equal(h->retry_max, ACT_RESTART_BACKOFF_MAX);
    assert_int_equal(h->restart_wait, 60 * SEC);
    assert_int_equal(h->restart_wait, ACT_RESTART_WAIT);
    assert_int_equal(h->reset_after, 600 * SEC);
    assert_int_equal(h->reset_after, ACT_RESTART_RESET);
    assert_int_equal(h->timeout, 420 * SEC);
    assert_null(h->target);
    assert_untouched_fields(h);
    vcfg_free(&c);

    /* kind = "exec" said outright is the default kind; the defaults do not depend on order. */
    assert_int_equal(load(&c, "monitor = { actions = ( { command = [ \"x\" ]; kind = \"exec\"; }"
                              " ); };\n"),
                     0);
    assert_int_equal(c.monitor.hooks[0].kind, VCFG_ACT_EXEC);
    assert_int_equal(c.monitor.hooks[0].retries, HOOK_RETRIES_DEFAULT);
    assert_int_equal(c.monitor.hooks[0].retry_max, 0);
    vcfg_free(&c);
    /* A built-in kind's defaults apply whatever the place of kind in its group. */
    assert_int_equal(load(&c, "monitor = { actions = ( { url = \"http://am:9093\";\n"
                              "  kind = \"alertmanager\"; } ); };\n"),
                     0);
    assert_int_equal(c.monitor.hooks[0].kind, VCFG_ACT_ALERTMANAGER);
    assert_int_equal(c.monitor.hooks[0].on_states, 1u << VIGIL_STATE_DEAD);
    assert_true(c.monitor.hooks[0].undo);
    vcfg_free(&c);
}

/* Every setting of every kind, read into its field. */
static void test_action_fields(void **state)
{
    (void)state;
    struct vcfg c;
    assert_int_equal(
        load(&c,
             "monitor = {\n"
             "  actions = (\n"
             "    { name = \"notify\"; command = [ \"notify-send\", \"--urgent\" ];\n"
             "      on = [ \"dead\", \"alive\" ]; nodes = [ \"web*\", \"db[12]\" ];\n"
             "      match = \"role=web\"; timeout = \"3s\"; retries = 0;\n"
             "      retry_delay = \"250ms\"; retry_max = \"4s\"; },\n"
             "    { name = \"lb\"; kind = \"haproxy\"; socket = \"10.0.0.1:9999\";\n"
             "      servers = [ \"web/%n\", \"web-tls/%n\" ]; mode = \"drain\";\n"
             "      on = [ \"dead\", \"suspect\" ]; retries = 10; timeout = \"2s\"; },\n"
             "    { name = \"lb.key\"; kind = \"haproxy\"; socket = \"/run/h.sock\";\n"
             "      server_key = \"served_by\"; mode = \"maint\"; undo = false; },\n"
             "    { name = \"page\"; kind = \"webhook\"; url = \"https://hooks.example.com/v\";\n"
             "      secret_file = \"webhook.secret\"; on = [ \"dead\" ]; undo = true;\n"
             "      match = \"zone=eu=west\"; },\n"
             "    { name = \"page_abs\"; kind = \"webhook\"; url = \"http://h/\";\n"
             "      secret_file = \"/etc/vigil/webhook.secret\"; },\n"
             "    { name = \"pager\"; kind = \"alertmanager\"; url = \"http://127.0.0.1:9093\";\n"
             "      labels = [ \"severity=page\", \"_team=db\" ]; repeat = \"2m\"; },\n"
             "    { name = \"restart-app\"; kind = \"restart\"; command = [ \"/usr/sbin/r\" ];\n"
             "      restart_wait = \"90s\"; reset_after = \"20m\"; escalate = \"page\";\n"
             "      retry_max = \"2m\"; retry_delay = \"5s\"; retries = 1; }\n"
             "  );\n"
             "};\n"),
        0);
    const struct vcfg_monitor *m = &c.monitor;
    assert_int_equal(m->n_hooks, 7);

    const struct vcfg_hook *h = &m->hooks[0];
    assert_string_equal(h->name, "notify");
    assert_string_equal(act_name(m, 0), "notify");
    assert_string_equal(h->argv[0], "notify-send");
    assert_string_equal(h->argv[1], "--urgent");
    assert_null(h->argv[2]);
    assert_int_equal(h->on_states, (1u << VIGIL_STATE_DEAD) | (1u << VIGIL_STATE_ALIVE));
    assert_int_equal(h->n_nodes, 2);
    assert_string_equal(h->nodes[0], "web*");
    assert_string_equal(h->nodes[1], "db[12]");
    assert_string_equal(h->match_key, "role");
    assert_string_equal(h->match_value, "web");
    assert_int_equal(h->timeout, 3 * SEC);
    assert_int_equal(h->retries, 0);
    assert_int_equal(h->retry_delay, 250 * VIGIL_NSEC_PER_MSEC);
    assert_int_equal(h->retry_max, 4 * SEC);

    h = &m->hooks[1];
    assert_int_equal(h->kind, VCFG_ACT_HAPROXY);
    assert_string_equal(h->name, "lb");
    assert_string_equal(h->target, "10.0.0.1:9999");
    assert_int_equal(h->n_servers, 2);
    assert_string_equal(h->servers[0], "web/%n");
    assert_string_equal(h->servers[1], "web-tls/%n");
    assert_null(h->server_key);
    assert_true(h->drain);
    assert_int_equal(h->on_states, (1u << VIGIL_STATE_DEAD) | (1u << VIGIL_STATE_SUSPECT));
    assert_true(h->undo);
    assert_int_equal(h->retries, 10);
    assert_int_equal(h->timeout, 2 * SEC);
    assert_int_equal(h->retry_max, ACT_RETRY_MAX_DEFAULT);

    h = &m->hooks[2];
    assert_string_equal(h->name, "lb.key");
    assert_string_equal(h->target, "/run/h.sock");
    assert_int_equal(h->n_servers, 0);
    assert_string_equal(h->server_key, "served_by");
    assert_false(h->drain);
    assert_false(h->undo);
    assert_int_equal(h->on_states, 1u << VIGIL_STATE_DEAD);

    /* A relative secret_file is relative to the file's directory; the value after the first '='
     * is the whole value. */
    h = &m->hooks[3];
    assert_int_equal(h->kind, VCFG_ACT_WEBHOOK);
    assert_string_equal(h->target, "https://hooks.example.com/v");
    char want[200];
    snprintf(want, sizeof(want), "%s/webhook.secret", dir);
    assert_string_equal(h->secret_file, want);
    assert_int_equal(h->on_states, 1u << VIGIL_STATE_DEAD);
    assert_true(h->undo);
    assert_string_equal(h->match_key, "zone");
    assert_string_equal(h->match_value, "eu=west");
    h = &m->hooks[4];
    assert_string_equal(h->secret_file, "/etc/vigil/webhook.secret");
    assert_string_equal(h->target, "http://h/");

    h = &m->hooks[5];
    assert_int_equal(h->kind, VCFG_ACT_ALERTMANAGER);
    assert_int_equal(h->n_labels, 2);
    assert_string_equal(h->labels[0], "severity=page");
    assert_string_equal(h->labels[1], "_team=db");
    assert_int_equal(h->repeat, 120 * SEC);

    h = &m->hooks[6];
    assert_int_equal(h->kind, VCFG_ACT_RESTART);
    assert_string_equal(h->name, "restart-app");
    assert_string_equal(h->argv[0], "/usr/sbin/r");
    assert_int_equal(h->restart_wait, 90 * SEC);
    assert_int_equal(h->reset_after, 20 * 60 * SEC);
    assert_string_equal(h->escalate, "page");
    assert_int_equal(h->retry_max, 120 * SEC);
    assert_int_equal(h->retry_delay, 5 * SEC);
    assert_int_equal(h->retries, 1);
    assert_int_equal(h->on_states, 1u << VIGIL_STATE_DEAD);
    vcfg_free(&c);

    /* An escalation may name an action by its default name, and an alertmanager action. */
    assert_int_equal(load(&c, "monitor = { actions = (\n"
                              "  { kind = \"restart\"; command = [ \"/r\" ]; escalate = "
                              "\"alertmanager-2\"; },\n"
                              "  { kind = \"alertmanager\"; url = \"http://am:9093\"; } ); };\n"),
                     0);
    assert_string_equal(c.monitor.hooks[0].escalate, "alertmanager-2");
    vcfg_free(&c);
}

static void test_action_errors(void **state)
{
    (void)state;
    static const struct err_case cases[] = {
        /* The kind. */
        {"monitor = {\n  actions = (\n    { kind = \"nginx\"; command = [ \"/x\" ]; }\n  );\n};\n",
         "%s:3: monitor.actions[0].kind \"nginx\" is not a kind of action (exec, haproxy, "
         "webhook, alertmanager, restart)"},
        {"monitor = { actions = ( { kind = \"HAProxy\"; } ); };\n",
         "%s:1: monitor.actions[0].kind \"HAProxy\" is not a kind of action (exec, haproxy, "
         "webhook, alertmanager, restart)"},
        {"monitor = { actions = ( { kind = 1; } ); };\n",
         "%s:1: monitor.actions[0].kind must be a string, not an integer"},
        /* A setting of another kind. */
        {"monitor = {\n  actions = (\n"
         "    { kind = \"haproxy\"; socket = \"/run/h.sock\"; servers = [ \"web/%n\" ];\n"
         "      url = \"http://x/\"; }\n  );\n};\n",
         "%s:4: monitor.actions[0].url does not apply to a haproxy action"},
        {"monitor = {\n  actions = (\n    { kind = \"webhook\"; url = \"http://x/\";\n"
         "      command = [ \"/x\" ]; }\n  );\n};\n",
         "%s:4: monitor.actions[0].command does not apply to a webhook action"},
        {"monitor = { actions = ( { command = [ \"/x\" ];\n  socket = \"/run/h.sock\"; } ); };\n",
         "%s:2: monitor.actions[0].socket does not apply to a exec action"},
        {"monitor = { actions = ( { command = [ \"/x\" ];\n  escalate = \"page\"; } ); };\n",
         "%s:2: monitor.actions[0].escalate does not apply to a exec action"},
        {"monitor = { actions = ( { kind = \"webhook\"; url = \"http://x/\";\n"
         "  labels = [ \"a=b\" ]; } ); };\n",
         "%s:2: monitor.actions[0].labels does not apply to a webhook action"},
        {"monitor = { actions = ( { kind = \"alertmanager\"; url = \"http://x/\";\n"
         "  secret_file = \"s\"; } ); };\n",
         "%s:2: monitor.actions[0].secret_file does not apply to a alertmanager action"},
        {"monitor = { actions = ( { kind = \"restart\"; command = [ \"/r\" ];\n"
         "  mode = \"drain\"; } ); };\n",
         "%s:2: monitor.actions[0].mode does not apply to a restart action"},
        {"monitor = { actions = ( { kind = \"webhook\"; url = \"http://x/\";\n"
         "  restart_wait = \"1m\"; } ); };\n",
         "%s:2: monitor.actions[0].restart_wait does not apply to a webhook action"},
        {"monitor = { actions = ( { kind = \"haproxy\"; socket = \"/s\"; servers = [ \"b/s\" "
         "];\n  repeat = \"1m\"; } ); };\n",
         "%s:2: monitor.actions[0].repeat does not apply to a haproxy action"},
        /* What a kind needs. */
        {"monitor = {\n  actions = (\n    { kind = \"haproxy\";\n"
         "      servers = [ \"web/%n\" ]; }\n  );\n};\n",
         "%s:3: monitor.actions[0] has no socket (socket = \"/run/haproxy/admin.sock\")"},
        {"monitor = {\n  actions = (\n    { kind = \"haproxy\";\n"
         "      socket = \"/run/h.sock\"; }\n  );\n};\n",
         "%s:3: monitor.actions[0] names no server (servers = [ \"BACKEND/%n\" ] or server_key)"},
        {"monitor = {\n  actions = (\n    { kind = \"webhook\"; on = [ \"dead\" ]; }\n  );\n};\n",
         "%s:3: monitor.actions[0] has no url"},
        {"monitor = { actions = ( { kind = \"alertmanager\"; } ); };\n",
         "%s:1: monitor.actions[0] has no url"},
        {"monitor = {\n  actions = (\n    { kind = \"restart\"; }\n  );\n};\n",
         "%s:3: monitor.actions[0] has no command (command = [ \"/path/to/program\", ... ])"},
        /* Values. */
        {"monitor = {\n  actions = (\n    { kind = \"webhook\";\n"
         "      url = \"ftp://hooks.example.com/\"; }\n  );\n};\n",
         "%s:4: monitor.actions[0].url \"ftp://hooks.example.com/\" must be an http:// or "
         "https:// URL"},
        {"monitor = { actions = ( { kind = \"alertmanager\"; url = \"alertmanager:9093\"; } ); "
         "};\n",
         "%s:1: monitor.actions[0].url \"alertmanager:9093\" must be an http:// or https:// URL"},
        {"monitor = { actions = ( { kind = \"haproxy\"; socket = \"run/h.sock\";\n"
         "  servers = [ \"web/%n\" ]; } ); };\n",
         "%s:1: monitor.actions[0].socket \"run/h.sock\" must be a unix socket's absolute path or "
         "IP:PORT of HAProxy's runtime API (a numeric address: 127.0.0.1:9999, [::1]:9999)"},
        {"monitor = { actions = ( { kind = \"haproxy\"; socket = \"lb.example:9999\";\n"
         "  servers = [ \"web/%n\" ]; } ); };\n",
         "%s:1: monitor.actions[0].socket \"lb.example:9999\" must be a unix socket's absolute "
         "path "
         "or IP:PORT of HAProxy's runtime API (a numeric address: 127.0.0.1:9999, [::1]:9999)"},
        {"monitor = { actions = ( { kind = \"haproxy\"; socket = \"/s\";\n"
         "  servers = [ \"web/%n\",\n     \"web\" ]; } ); };\n",
         "%s:3: monitor.actions[0].servers[1] \"web\" must be BACKEND/SERVER (%n stands for the "
         "node id)"},
        {"monitor = { actions = ( { kind = \"haproxy\"; socket = \"/s\";\n"
         "  servers = [ \"a/b/c\" ]; } ); };\n",
         "%s:2: monitor.actions[0].servers[0] \"a/b/c\" must be BACKEND/SERVER (%n stands for the "
         "node id)"},
        {"monitor = { actions = ( { kind = \"haproxy\"; socket = \"/s\";\n"
         "  servers = [ \"/web1\" ]; } ); };\n",
         "%s:2: monitor.actions[0].servers[0] \"/web1\" must be BACKEND/SERVER (%n stands for the "
         "node id)"},
        {"monitor = { actions = ( { kind = \"haproxy\"; socket = \"/s\";\n"
         "  servers = [ \"web/web1; shutdown\" ]; } ); };\n",
         "%s:2: monitor.actions[0].servers[0] \"web/web1; shutdown\" must be BACKEND/SERVER (%n "
         "stands for the node id)"},
        {"monitor = { actions = ( { kind = \"haproxy\"; socket = \"/s\";\n"
         "  servers = [ ]; } ); };\n",
         "%s:2: monitor.actions[0].servers must not be empty (leave it out instead)"},
        {"monitor = { actions = ( { kind = \"haproxy\"; socket = \"/s\"; servers = [ \"b/s\" ];\n"
         "  mode = \"ready\"; } ); };\n",
         "%s:2: monitor.actions[0].mode must be \"maint\" or \"drain\", not \"ready\""},
        {"monitor = {\n  actions = (\n    { command = [ \"/x\" ];\n"
         "      match = \"role\"; }\n  );\n};\n",
         "%s:4: monitor.actions[0].match \"role\" must be KEY=VALUE, a custom status value "
         "(role=web)"},
        {"monitor = { actions = ( { command = [ \"/x\" ]; match = \"=web\"; } ); };\n",
         "%s:1: monitor.actions[0].match \"=web\" must be KEY=VALUE, a custom status value "
         "(role=web)"},
        {"monitor = { actions = ( { kind = \"alertmanager\"; url = \"http://am/\";\n"
         "  labels = [ \"severity=page\",\n    \"1team=db\" ]; } ); };\n",
         "%s:3: monitor.actions[0].labels[1] \"1team=db\" must be NAME=VALUE with a Prometheus "
         "label name"},
        {"monitor = { actions = ( { kind = \"alertmanager\"; url = \"http://am/\";\n"
         "  labels = [ \"team-a=db\" ]; } ); };\n",
         "%s:2: monitor.actions[0].labels[0] \"team-a=db\" must be NAME=VALUE with a Prometheus "
         "label name"},
        {"monitor = { actions = ( { kind = \"alertmanager\"; url = \"http://am/\";\n"
         "  labels = [ \"severity\" ]; } ); };\n",
         "%s:2: monitor.actions[0].labels[0] \"severity\" must be NAME=VALUE with a Prometheus "
         "label name"},
        {"monitor = { actions = ( { kind = \"alertmanager\"; url = \"http://am/\";\n"
         "  repeat = \"500ms\"; } ); };\n",
         "%s:2: monitor.actions[0].repeat must be at least 1s"},
        {"monitor = { actions = ( { kind = \"restart\"; command = [ \"/r\" ];\n"
         "  restart_wait = 0; } ); };\n",
         "%s:2: monitor.actions[0].restart_wait must be longer than 0s"},
        {"monitor = { actions = ( { kind = \"restart\"; command = [ \"/r\" ];\n"
         "  reset_after = 0; } ); };\n",
         "%s:2: monitor.actions[0].reset_after must be longer than 0s"},
        {"monitor = { actions = ( { command = [ \"/x\" ]; retries = 11; } ); };\n",
         "%s:1: monitor.actions[0].retries (11) must be between 0 and 10"},
        {"monitor = { actions = ( { command = [ \"/x\" ]; retry_max = 0; } ); };\n",
         "%s:1: monitor.actions[0].retry_max must be longer than 0s"},
        /* Names. */
        {"monitor = { actions = ( { command = [ \"/x\" ]; name = \"page me\"; } ); };\n",
         "%s:1: monitor.actions[0].name \"page me\": only letters, digits, '-', '_' and '.' are "
         "allowed"},
        {"monitor = { actions = ( { command = [ \"/x\" ];\n"
         "  name = \"abcdefghijklmnopqrstuvwxyz0123456\"; } ); };\n",
         "%s:2: monitor.actions[0].name must be 1 to 32 characters"},
        {"monitor = {\n  actions = (\n    { name = \"lb\"; command = [ \"/x\" ]; },\n"
         "    { command = [ \"/y\" ];\n      name = \"lb\"; }\n  );\n};\n",
         "%s:5: monitor.actions[1].name \"lb\" names another action already"},
        /* Undo. */
        {"monitor = {\n  actions = (\n    { command = [ \"/x\" ]; undo = true;\n"
         "      on = [ \"dead\", \"alive\" ]; }\n  );\n};\n",
         "%s:3: monitor.actions[0] has undo = true for \"alive\": undo runs on the way back to it"},
        {"monitor = { actions = ( { kind = \"haproxy\"; socket = \"/s\"; servers = [ \"b/s\" ];\n"
         "  on = [ \"alive\" ]; } ); };\n",
         "%s:1: monitor.actions[0] has undo = true for \"alive\": undo runs on the way back to it"},
        {"monitor = {\n  actions = (\n    { command = [ \"/x\" ];\n      undo = true; }\n  "
         ");\n};\n",
         "%s:3: monitor.actions[0] has undo = true but no states to undo (on = [ \"dead\" ])"},
        {"monitor = { actions = ( { kind = \"webhook\"; url = \"http://x/\"; undo = true; } ); "
         "};\n",
         "%s:1: monitor.actions[0] has undo = true but no states to undo (on = [ \"dead\" ])"},
        /* Escalations: to a webhook or an alertmanager action of the list. */
        {"monitor = {\n  actions = (\n    { kind = \"restart\"; command = [ \"/r\" ];\n"
         "      escalate = \"pager\"; },\n"
         "    { name = \"page\"; kind = \"webhook\"; url = \"http://x/\"; }\n  );\n};\n",
         "%s:4: monitor.actions[0].escalate \"pager\" names no webhook or alertmanager action of "
         "the list"},
        {"monitor = {\n  actions = (\n    { name = \"n\"; command = [ \"/n\" ]; },\n"
         "    { kind = \"restart\"; command = [ \"/r\" ];\n      escalate = \"n\"; }\n  );\n};\n",
         "%s:5: monitor.actions[1].escalate \"n\" names no webhook or alertmanager action of the "
         "list"},
        {"monitor = { actions = ( { kind = \"restart\"; command = [ \"/r\" ];\n"
         "  escalate = \"restart-1\"; } ); };\n",
         "%s:2: monitor.actions[0].escalate \"restart-1\" names no webhook or alertmanager action "
         "of the list"},
        /* The bound, over hooks and actions together. */
        {"monitor = {\n  actions = ( {command=[\"/1\"];}, {command=[\"/2\"];}, "
         "{command=[\"/3\"];},\n    {command=[\"/4\"];}, {command=[\"/5\"];}, {command=[\"/6\"];},"
         " {command=[\"/7\"];},\n    {command=[\"/8\"];}, {command=[\"/9\"];}, "
         "{command=[\"/10\"];} );\n"
         "  hooks = ( {command=[\"/11\"];}, {command=[\"/12\"];}, {command=[\"/13\"];},\n"
         "    {command=[\"/14\"];}, {command=[\"/15\"];}, {command=[\"/16\"];}, "
         "{command=[\"/17\"];} );\n};\n",
         "%s:5: monitor.hooks makes 17 actions; at most 16 are allowed"},
        {"monitor = { actions = ( {command=[\"/1\"];}, {command=[\"/2\"];}, {command=[\"/3\"];}, "
         "{command=[\"/4\"];}, {command=[\"/5\"];}, {command=[\"/6\"];}, {command=[\"/7\"];}, "
         "{command=[\"/8\"];}, {command=[\"/9\"];}, {command=[\"/10\"];}, {command=[\"/11\"];}, "
         "{command=[\"/12\"];}, {command=[\"/13\"];}, {command=[\"/14\"];}, {command=[\"/15\"];}, "
         "{command=[\"/16\"];}, {command=[\"/17\"];} ); };\n",
         "%s:1: monitor.actions makes 17 actions; at most 16 are allowed"},
        /* Names are unique over hooks and actions together. */
        {"monitor = {\n  hooks = ( { name = \"a\"; command = [ \"/x\" ]; } );\n"
         "  actions = ( { name = \"a\"; command = [ \"/y\" ]; } );\n};\n",
         "%s:3: monitor.actions[0].name \"a\" names another action already"},
    };
    run_err_cases(cases, sizeof(cases) / sizeof(cases[0]));

    /* The accepted sides: 16 actions, 10 retries, a 32-character name, a 1 s repeat. */
    struct vcfg c;
    assert_int_equal(
        load(&c, "monitor = {\n  hooks = ( {command=[\"/1\"];}, {command=[\"/2\"];}, "
                 "{command=[\"/3\"];},\n    {command=[\"/4\"];}, {command=[\"/5\"];}, "
                 "{command=[\"/6\"];}, {command=[\"/7\"];},\n    {command=[\"/8\"];}, "
                 "{command=[\"/9\"];}, {command=[\"/10\"];} );\n"
                 "  actions = ( {command=[\"/11\"];}, {command=[\"/12\"];}, "
                 "{command=[\"/13\"]; retries = 10;},\n    {command=[\"/14\"];}, "
                 "{command=[\"/15\"];}, { kind = \"alertmanager\"; url = \"http://am/\";\n"
                 "      name = \"abcdefghijklmnopqrstuvwxyz012345\"; repeat = 1; } );\n};\n"),
        0);
    assert_int_equal(c.monitor.n_hooks, 16);
    assert_int_equal(c.monitor.hooks[12].retries, 10);
    assert_string_equal(c.monitor.hooks[15].name, "abcdefghijklmnopqrstuvwxyz012345");
    assert_int_equal(c.monitor.hooks[15].repeat, SEC);
    vcfg_free(&c);
}

/* monitor.hooks and monitor.actions are one list, in the order of the file. */
static void test_hooks_and_actions_combine(void **state)
{
    (void)state;
    struct vcfg c;
    assert_int_equal(load(&c,
                          "monitor = {\n"
                          "  hooks = ( { command = [ \"/a\" ]; }, { command = [ \"/b\" ]; } );\n"
                          "  actions = ( { kind = \"webhook\"; url = \"http://c/\"; } );\n"
                          "};\n"),
                     0);
    assert_int_equal(c.monitor.n_hooks, 3);
    assert_string_equal(c.monitor.hooks[0].argv[0], "/a");
    assert_string_equal(c.monitor.hooks[1].argv[0], "/b");
    assert_string_equal(c.monitor.hooks[2].target, "http://c/");
    assert_string_equal(act_name(&c.monitor, 2), "webhook-3");
    vcfg_free(&c);

    assert_int_equal(load(&c,
                          "monitor = {\n"
                          "  actions = ( { kind = \"webhook\"; url = \"http://c/\"; } );\n"
                          "  hooks = ( { command = [ \"/a\" ]; }, { command = [ \"/b\" ]; } );\n"
                          "};\n"),
                     0);
    assert_int_equal(c.monitor.n_hooks, 3);
    assert_string_equal(c.monitor.hooks[0].target, "http://c/");
    assert_string_equal(act_name(&c.monitor, 0), "webhook-1");
    assert_string_equal(c.monitor.hooks[1].argv[0], "/a");
    assert_string_equal(c.monitor.hooks[2].argv[0], "/b");
    assert_string_equal(act_name(&c.monitor, 2), "exec-3");
    vcfg_free(&c);

    /* monitor.hooks holds actions of any kind; an escalation may name one of the other list. */
    assert_int_equal(load(&c, "monitor = {\n"
                              "  actions = ( { kind = \"restart\"; command = [ \"/r\" ];\n"
                              "                escalate = \"page\"; } );\n"
                              "  hooks = ( { name = \"page\"; kind = \"webhook\"; url = "
                              "\"http://p/\"; } );\n"
                              "};\n"),
                     0);
    assert_int_equal(c.monitor.n_hooks, 2);
    assert_string_equal(c.monitor.hooks[0].escalate, "page");
    assert_int_equal(c.monitor.hooks[1].kind, VCFG_ACT_WEBHOOK);
    vcfg_free(&c);
    assert_int_equal(load(&c, "monitor = {\n"
                              "  hooks = ( { kind = \"restart\"; command = [ \"/r\" ];\n"
                              "              escalate = \"page\"; } );\n"
                              "  actions = ( { name = \"page\"; kind = \"alertmanager\"; url = "
                              "\"http://am/\"; } );\n"
                              "};\n"),
                     0);
    assert_int_equal(c.monitor.n_hooks, 2);
    vcfg_free(&c);

    /* Empty lists add nothing; written either way. */
    assert_int_equal(load(&c, "monitor = { hooks = [ ]; actions = ( { command = [ \"/a\" ]; } );"
                              " };\n"),
                     0);
    assert_int_equal(c.monitor.n_hooks, 1);
    vcfg_free(&c);
}

/* A default name ("KIND-N") is a name like another: no action may take it. */
static void test_action_default_names_unique(void **state)
{
    (void)state;
    static const struct err_case cases[] = {
        {"monitor = {\n  actions = (\n    { name = \"exec-2\"; command = [ \"/a\" ]; },\n"
         "    { command = [ \"/b\" ]; }\n  );\n};\n",
         "%s:3: monitor.actions[0].name \"exec-2\" names another action already (the default "
         "name of action 2)"},
        {"monitor = {\n  hooks = ( { command = [ \"/a\" ]; } );\n"
         "  actions = ( { kind = \"webhook\"; url = \"http://x/\";\n"
         "                name = \"exec-1\"; } );\n};\n",
         "%s:4: monitor.actions[0].name \"exec-1\" names another action already (the default "
         "name of action 1)"},
    };
    run_err_cases(cases, sizeof(cases) / sizeof(cases[0]));
    /* A name that only looks like another kind's or place's default is fine. */
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = { actions = ( { name = \"exec-1\"; command = [ \"/a\" ]; "
                              "},\n  { name = \"webhook-2\"; command = [ \"/b\" ]; },\n"
                              "  { command = [ \"/c\" ]; } ); };\n"),
                     0);
    assert_string_equal(act_name(&c.monitor, 0), "exec-1");
    assert_string_equal(act_name(&c.monitor, 1), "webhook-2");
    assert_string_equal(act_name(&c.monitor, 2), "exec-3");
    vcfg_free(&c);
}

/* A second file replaces the actions, of either list, and leaks nothing. */
static void test_actions_load_twice(void **state)
{
    (void)state;
    struct vcfg c;
    assert_int_equal(load(&c,
                          "monitor = {\n"
                          "  hooks = ( { name = \"n\"; command = [ \"/n\" ]; } );\n"
                          "  actions = (\n"
                          "    { name = \"am\"; kind = \"alertmanager\"; url = \"http://am/\";\n"
                          "      labels = [ \"a=b\" ]; match = \"role=db\"; },\n"
                          "    { kind = \"haproxy\"; socket = \"/s\"; servers = [ \"b/%n\" ]; "
                          "} );\n"
                          "  groups = ( { name = \"g\"; nodes = [ \"a\", \"b\" ]; "
                          "promote = [ \"/p\" ]; } );\n"
                          "};\n"),
                     0);
    assert_int_equal(c.monitor.n_hooks, 3);
    assert_int_equal(c.monitor.n_groups, 1);
    const char *second = "monitor = {\n"
                         "  actions = ( { kind = \"webhook\"; url = \"http://w/\"; } );\n"
                         "  groups = ( { name = \"h\"; nodes = [ \"c\", \"d\", \"e\" ]; "
                         "promote = [ \"/q\" ]; } );\n"
                         "};\n";
    write_file("second.conf", second, strlen(second));
    char path[160];
    snprintf(path, sizeof(path), "%s/second.conf", dir);
    assert_int_equal(vcfg_load(&c, path, err, sizeof(err)), 0);
    assert_int_equal(c.monitor.n_hooks, 1);
    const struct vcfg_hook *h = &c.monitor.hooks[0];
    assert_int_equal(h->kind, VCFG_ACT_WEBHOOK);
    assert_null(h->name);
    assert_string_equal(act_name(&c.monitor, 0), "webhook-1");
    assert_string_equal(h->target, "http://w/");
    assert_int_equal(h->n_labels, 0);
    assert_null(h->match_key);
    assert_int_equal(h->on_states, 0);
    assert_false(h->undo);
    assert_int_equal(c.monitor.n_groups, 1);
    assert_string_equal(c.monitor.groups[0].name, "h");
    assert_int_equal(c.monitor.groups[0].n_nodes, 3);
    /* The name the first file gave is free again: not "another action" of this list. */
    const char *third = "monitor = { hooks = ( { name = \"n\"; command = [ \"/n2\" ]; } ); };\n";
    write_file("second.conf", third, strlen(third));
    assert_int_equal(vcfg_load(&c, path, err, sizeof(err)), 0);
    assert_int_equal(c.monitor.n_hooks, 1);
    assert_string_equal(c.monitor.hooks[0].name, "n");
    assert_string_equal(c.monitor.hooks[0].argv[0], "/n2");
    /* Groups not in the file stay as they were, as any setting does. */
    assert_int_equal(c.monitor.n_groups, 1);
    vcfg_free(&c);
}

/* --- failover groups (monitor.groups) ------------------------------------------ */

static void test_groups(void **state)
{
    (void)state;
    struct vcfg c;
    assert_int_equal(load(&c, "monitor = {\n"
                              "  groups = (\n"
                              "    { name = \"db\"; nodes = [ \"db1\", \"db2\", \"db3\" ];\n"
                              "      priority = [ 1, 0, -2 ]; rank_key = \"lag\";\n"
                              "      primary = \"db2\"; preempt = true; timeout = \"45s\";\n"
                              "      promote = [ \"/usr/sbin/db-promote\", \"--force\" ];\n"
                              "      demote = [ \"db-demote\" ]; },\n"
                              "    { name = \"cache\"; promote = [ \"/p\" ];\n"
                              "      nodes = [ \"c1\", \"c2\" ]; }\n"
                              "  );\n"
                              "};\n"),
                     0);
    const struct vcfg_monitor *m = &c.monitor;
    assert_int_equal(m->n_groups, 2);
    const struct vcfg_group *g = &m->groups[0];
    assert_string_equal(g->name, "db");
    assert_int_equal(g->n_nodes, 3);
    assert_string_equal(g->nodes[0], "db1");
    assert_string_equal(g->nodes[1], "db2");
    assert_string_equal(g->nodes[2], "db3");
    assert_int_equal(g->priority[0], 1);
    assert_int_equal(g->priority[1], 0);
    assert_int_equal(g->priority[2], -2);
    assert_string_equal(g->rank_key, "lag");
    assert_string_equal(g->primary, "db2");
    assert_true(g->preempt);
    assert_int_equal(g->timeout, 45 * SEC);
    assert_string_equal(g->promote[0], "/usr/sbin/db-promote");
    assert_string_equal(g->promote[1], "--force");
    assert_null(g->promote[2]);
    assert_string_equal(g->demote[0], "db-demote");
    assert_null(g->demote[1]);
    /* The defaults: priorities 0, the first node primary, no rank key, no preempt, 30 s. */
    g = &m->groups[1];
    assert_string_equal(g->name, "cache");
    assert_int_equal(g->n_nodes, 2);
    assert_string_equal(g->nodes[1], "c2");
    assert_int_equal(g->priority[0], 0);
    assert_int_equal(g->priority[1], 0);
    assert_null(g->primary);
    assert_null(g->rank_key);
    assert_false(g->preempt);
    assert_int_equal(g->timeout, 30 * SEC);
    assert_string_equal(g->promote[0], "/p");
    assert_null(g->demote[0]);
    vcfg_free(&c);

    /* 16 members, the most; no groups at all. */
    assert_int_equal(load(&c, "monitor = { groups = ( { name = \"big\"; promote = [ \"/p\" ];\n"
                              "  nodes = [ \"n1\", \"n2\", \"n3\", \"n4\", \"n5\", \"n6\", \"n7\", "
                              "\"n8\", \"n9\", \"n10\", \"n11\", \"n12\", \"n13\", \"n14\", "
                              "\"n15\", \"n16\" ]; } ); };\n"),
                     0);
    assert_int_equal(c.monitor.groups[0].n_nodes, 16);
    assert_string_equal(c.monitor.groups[0].nodes[15], "n16");
    vcfg_free(&c);
    assert_int_equal(load(&c, "monitor = { groups = ( ); };\n"), 0);
    assert_int_equal(c.monitor.n_groups, 0);
    vcfg_free(&c);
}

static void test_group_errors(void **state)
{
    (void)state;
    static const struct err_case cases[] = {
        {"monitor = {\n  groups = (\n    { name = \"db\"; promote = [ \"/p\" ];\n"
         "      nodes = [ \"db1\" ]; }\n  );\n};\n",
         "%s:4: monitor.groups[0].nodes needs at least two nodes (a primary and a replica)"},
        {"monitor = {\n  groups = (\n    { name = \"db\"; promote = [ \"/p\" ];\n"
         "      nodes = [ \"db1\", \"db2\",\n        \"db1\" ]; }\n  );\n};\n",
         "%s:5: monitor.groups[0].nodes[2] \"db1\" is listed twice"},
        {"monitor = { groups = ( { name = \"db\"; promote = [ \"/p\" ];\n"
         "  nodes = [ \"db1\", \"db 2\" ]; } ); };\n",
         "%s:2: monitor.groups[0].nodes[1] \"db 2\" is not a node id"},
        {"monitor = { groups = ( { name = \"db\"; promote = [ \"/p\" ];\n"
         "  nodes = [ \"n1\", \"n2\", \"n3\", \"n4\", \"n5\", \"n6\", \"n7\", \"n8\", \"n9\", "
         "\"n10\", \"n11\", \"n12\", \"n13\", \"n14\", \"n15\", \"n16\", \"n17\" ]; } ); };\n",
         "%s:2: monitor.groups[0].nodes holds 17 entries; at most 16 are allowed"},
        {"monitor = {\n  groups = (\n    { name = \"db\"; promote = [ \"/p\" ];\n"
         "      nodes = [ \"db1\", \"db2\", \"db3\" ];\n      priority = [ 1, 0 ]; }\n  );\n};\n",
         "%s:5: monitor.groups[0].priority has 2 entries for 3 nodes"},
        {"monitor = { groups = ( { name = \"db\"; promote = [ \"/p\" ];\n"
         "  priority = [ 1, 0, 0, 0 ];\n  nodes = [ \"db1\", \"db2\", \"db3\" ]; } ); };\n",
         "%s:2: monitor.groups[0].priority has 4 entries for 3 nodes"},
        {"monitor = { groups = ( { name = \"db\"; promote = [ \"/p\" ];\n"
         "  nodes = [ \"db1\", \"db2\" ]; priority = ( 1, \"high\" ); } ); };\n",
         "%s:2: monitor.groups[0].priority[1] must be an integer, not a string"},
        {"monitor = {\n  groups = (\n    { name = \"db\"; promote = [ \"/p\" ];\n"
         "      nodes = [ \"db1\", \"db2\" ];\n      primary = \"db9\"; }\n  );\n};\n",
         "%s:5: monitor.groups[0].primary \"db9\" is not one of the group's nodes"},
        {"monitor = {\n  groups = (\n    { name = \"db\";\n"
         "      nodes = [ \"db1\", \"db2\" ]; }\n  );\n};\n",
         "%s:3: monitor.groups[0] has no promote command (promote = [ \"/path\", ... ])"},
        {"monitor = { groups = ( { name = \"db\"; nodes = [ \"db1\", \"db2\" ];\n"
         "  promote = [ \"bin/promote\" ]; } ); };\n",
         "%s:2: monitor.groups[0].promote \"bin/promote\" must be an absolute path or a program "
         "name"},
        {"monitor = {\n  groups = (\n    { nodes = [ \"db1\", \"db2\" ]; promote = [ \"/p\" ]; "
         "}\n  );\n};\n",
         "%s:3: monitor.groups[0] has no name"},
        {"monitor = {\n  groups = (\n    { name = \"db\"; promote = [ \"/p\" ]; }\n  );\n};\n",
         "%s:3: monitor.groups[0] has no nodes (nodes = [ \"db1\", \"db2\" ])"},
        {"monitor = {\n  groups = (\n"
         "    { name = \"db\"; nodes = [ \"a1\", \"a2\" ]; promote = [ \"/p\" ]; },\n"
         "    { nodes = [ \"b1\", \"b2\" ]; promote = [ \"/p\" ];\n      name = \"db\"; }\n"
         "  );\n};\n",
         "%s:5: monitor.groups[1].name \"db\" names another group already"},
        {"monitor = {\n  groups = (\n    { name = \"db/main\"; nodes = [ \"db1\", \"db2\" ];\n"
         "      promote = [ \"/p\" ]; }\n  );\n};\n",
         "%s:3: monitor.groups[0].name \"db/main\" is not a valid name (a node id's characters)"},
        {"monitor = { groups = ( { name = \"db\"; nodes = [ \"db1\", \"db2\" ]; promote = [ "
         "\"/p\" ];\n  timeout = 0; } ); };\n",
         "%s:2: monitor.groups[0].timeout must be longer than 0s"},
        {"monitor = { groups = { name = \"db\"; }; };\n",
         "%s:1: monitor.groups must be a list of groups ( { name = \"...\"; ... }, ... ), not a "
         "group { ... }"},
        {"monitor = { groups = ( { name = \"db\"; nodes = [ \"db1\", \"db2\" ]; promote = [ "
         "\"/p\" ];\n  role = \"x\"; } ); };\n",
         "%s:2: unknown setting monitor.groups[0].role"},
    };
    run_err_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* --- flap damping (monitor.flap_damping) ---------------------------------------- */

static void test_flap_damping(void **state)
{
    (void)state;
    struct vcfg c;
    /* The defaults are holds.h's. */
    assert_int_equal(load(&c, "monitor = { };\n"), 0);
    assert_true(c.monitor.damping.on);
    assert_int_equal(c.monitor.damping.half_life, HOLDS_HALF_LIFE_DEFAULT);
    assert_true(c.monitor.damping.penalty == HOLDS_PENALTY_DEFAULT);
    assert_true(c.monitor.damping.suppress == HOLDS_SUPPRESS_DEFAULT);
    assert_true(c.monitor.damping.reuse == HOLDS_REUSE_DEFAULT);
    vcfg_free(&c);
    /* An empty group changes nothing. */
    assert_int_equal(load(&c, "monitor = { flap_damping = { }; };\n"), 0);
    assert_true(c.monitor.damping.on);
    assert_int_equal(c.monitor.damping.half_life, 60 * SEC);
    assert_true(c.monitor.damping.suppress == 3000.0);
    vcfg_free(&c);

    assert_int_equal(load(&c, "monitor = {\n  flap_damping = { half_life = \"90s\"; penalty = "
                              "500.5;\n    suppress = 2000; reuse = 250.25; };\n};\n"),
                     0);
    assert_true(c.monitor.damping.on);
    assert_int_equal(c.monitor.damping.half_life, 90 * SEC);
    assert_true(c.monitor.damping.penalty == 500.5);
    assert_true(c.monitor.damping.suppress == 2000.0);
    assert_true(c.monitor.damping.reuse == 250.25);
    vcfg_free(&c);

    /* Off, and the shortest half life. */
    assert_int_equal(load(&c, "monitor = { flap_damping = { enabled = false; half_life = 1; }; "
                              "};\n"),
                     0);
    assert_false(c.monitor.damping.on);
    assert_int_equal(c.monitor.damping.half_life, SEC);
    assert_true(c.monitor.damping.penalty == HOLDS_PENALTY_DEFAULT);
    vcfg_free(&c);
    /* reuse just below suppress. */
    assert_int_equal(load(&c, "monitor = { flap_damping = { suppress = 751; }; };\n"), 0);
    assert_true(c.monitor.damping.suppress == 751.0);
    assert_true(c.monitor.damping.reuse == 750.0);
    vcfg_free(&c);

    static const struct err_case cases[] = {
        {"monitor = {\n  flap_damping = {\n    suppress = 1000.0;\n    reuse = 1000.0;\n  };\n};\n",
         "%s:2: monitor.flap_damping needs reuse (1000) below suppress (1000)"},
        {"monitor = {\n  flap_damping = { reuse = 5000; };\n};\n",
         "%s:2: monitor.flap_damping needs reuse (5000) below suppress (3000)"},
        /* The default reuse (750) counts too. */
        {"monitor = { flap_damping = { suppress = 700; }; };\n",
         "%s:1: monitor.flap_damping needs reuse (750) below suppress (700)"},
        {"monitor = {\n  flap_damping = {\n    half_life = \"999ms\"; };\n};\n",
         "%s:3: monitor.flap_damping.half_life must be at least 1s"},
        {"monitor = { flap_damping = { half_life = 0; }; };\n",
         "%s:1: monitor.flap_damping.half_life must be at least 1s"},
        {"monitor = { flap_damping = { penalty = 0; }; };\n",
         "%s:1: monitor.flap_damping.penalty must be a number above 0"},
        {"monitor = { flap_damping = { suppress = -3000.0; }; };\n",
         "%s:1: monitor.flap_damping.suppress must be a number above 0"},
        {"monitor = { flap_damping = { reuse = \"750\"; }; };\n",
         "%s:1: monitor.flap_damping.reuse must be a number, not a string"},
        {"monitor = { flap_damping = { enabled = 1; }; };\n",
         "%s:1: monitor.flap_damping.enabled must be a boolean (true or false), not an integer"},
        {"monitor = { flap_damping = true; };\n",
         "%s:1: monitor.flap_damping must be a group { half_life = \"60s\"; ... }, not a boolean"},
        {"monitor = { flap_damping = { half_lif = \"60s\"; }; };\n",
         "%s:1: unknown setting monitor.flap_damping.half_lif"},
    };
    run_err_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_is_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixed_detector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval_recomputes_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_ids_and_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_phi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_grid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_monitor_misc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_after_override, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_u64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_tolerance_auto, setup, teardown),
        cmocka_unit_test_setup_teardown(test_action_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_action_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_action_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hooks_and_actions_combine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_action_default_names_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actions_load_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flap_damping, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
