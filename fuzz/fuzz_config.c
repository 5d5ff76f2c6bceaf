/*
 * Fuzz target for the configuration parser (libFuzzer entry point).
 *
 * Every input is loaded as a configuration file (through
 * vcfg_load_string, so no temporary file is needed), then, when it loads,
 * checked for both roles, and freed. Beyond "does not crash, does not leak,
 * does not read out of bounds" (which the sanitizers check), the target
 * asserts the parser's promises and calls abort() when one fails:
 *
 *  - load and check return 0 or -1, never anything else;
 *  - a failure always leaves a message, and every load message starts with
 *    the file's name (it names the file, and the line when there is one);
 *  - a configuration that loads holds only what the parser guarantees:
 *    bounded lists, valid node ids, hooks with a program, valid custom
 *    status pairs;
 *  - the same input loads the same way twice (nothing depends on state
 *    left behind by a previous load).
 *
 * Short inputs are also handed to the duration parser, whose result must
 * lie between 0 and VCFG_DURATION_MAX.
 *
 * Relative key_file paths resolve against the directory of the name
 * "fuzz.conf", the working directory; reading them is bounded (4 KiB,
 * regular files only, never blocking), so a fuzzed path is harmless.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/config.h"
#include "vigil/hooks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int vigil_fuzz_seed(size_t index, uint8_t *buf, size_t cap);

/* The name the input is loaded as; its messages must start with it. */
#define FUZZ_NAME "fuzz.conf"

/* Inputs up to this long also go to the duration parser; durations are short. */
#define DURATION_INPUT_MAX 64

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void check_loaded(const struct vcfg *c)
{
    const struct vcfg_monitor *m = &c->monitor;
    check(m->n_listen <= VCFG_MAX_LISTEN);
    for (size_t i = 0; i < m->n_listen; i++)
        check(m->listen[i] != NULL);
    check(m->n_nodes <= VCFG_MAX_NODES);
    for (size_t i = 0; i < m->n_nodes; i++)
        check(m->nodes[i] != NULL && vigil_id_valid(m->nodes[i], strlen(m->nodes[i])));
    check(m->n_hooks <= VCFG_MAX_HOOKS);
    for (size_t i = 0; i < m->n_hooks; i++) {
        check(m->hooks[i].argv[0] != NULL && m->hooks[i].argv[0][0] != '\0');
        check(m->hooks[i].argv[VCFG_MAX_ARGV] == NULL);
        check(m->hooks[i].timeout > 0);
    }
    check(m->log_format == VCFG_LOG_TEXT || m->log_format == VCFG_LOG_JSON);
    check(m->event_history >= 1);
    check(m->hook_queue >= 1 && m->hook_queue <= HOOK_QUEUE_MAX);
    check(m->hook_queue_total >= 1 && m->hook_queue_total <= HOOK_QUEUE_TOTAL_MAX);
    const struct vcfg_agent *a = &c->agent;
    check(a->id == NULL || vigil_id_valid(a->id, strlen(a->id)));
    check(a->n_monitors <= VIGIL_SENDER_MAX_MONITORS);
    check(a->n_custom <= VIGIL_CUSTOM_MAX);
    for (size_t i = 0; i < a->n_custom; i++)
        check(vigil_custom_key_valid(a->custom[i].key) &&
              vigil_custom_value_valid(a->custom[i].value));
}

/* Loads data; returns the result and leaves the message in err. */
static int load_once(struct vcfg *c, const uint8_t *data, size_t size, char *err, size_t cap)
{
    vcfg_init(c);
    err[0] = '\0';
    int rc = vcfg_load_string(c, FUZZ_NAME, (const char *)data, size, err, cap);
    check(rc == 0 || rc == -1);
    if (rc != 0)
        check(!strncmp(err, FUZZ_NAME ":", strlen(FUZZ_NAME ":")));
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512], err2[512];
    struct vcfg c, again;

    int rc = load_once(&c, data, size, err, sizeof(err));
    if (rc == 0) {
        check_loaded(&c);
        for (int role = 0; role < 2; role++) {
            char cerr[512] = "";
            int crc = vcfg_check(&c, role ? "agent" : "monitor", cerr, sizeof(cerr));
            check(crc == 0 || crc == -1);
            check(crc == 0 || cerr[0] != '\0');
        }
    }
    int rc2 = load_once(&again, data, size, err2, sizeof(err2));
    check(rc2 == rc && !strcmp(err, err2));
    vcfg_free(&again);
    vcfg_free(&c);

    if (size <= DURATION_INPUT_MAX) {
        char s[DURATION_INPUT_MAX + 1];
        memcpy(s, data, size);
        s[size] = '\0';
        vigil_time_t v = -1;
        int drc = vcfg_parse_duration(s, &v);
        check(drc == 0 || drc == -1);
        check(drc != 0 || (v >= 0 && v <= VCFG_DURATION_MAX));
    }
    return 0;
}

/* A few valid configurations, for drivers without the corpus directory. */
static const char *const seeds[] = {
    "monitor = {\n  listen = [ \"0.0.0.0:7946\", \"[::]:7946\" ];\n  api = \"off\";\n"
    "  heartbeat_interval = \"500ms\";\n  detector = { type = \"fixed\"; suspect_after = 2;\n"
    "    dead_after = \"4s\"; };\n  nodes = [ \"web1\", \"web2\" ];\n"
    "  hooks = ( { command = [ \"/bin/true\", \"x\" ]; timeout = 3; on = [ \"dead\" ]; } );\n"
    "  log = { format = \"json\"; };\n};\n",
    "agent = {\n  id = \"web1\";\n  monitors = [ \"10.0.0.5:7946\" ];\n  interval = 0.25;\n"
    "  status_file = \"/run/vigil/status\";\n  custom = { role = \"web\"; zone = \"a\"; };\n};\n",
    "monitor = { detector = { suspect_threshold = 3; dead_threshold = 8.5;\n"
    "  min_std_dev = \"100ms\"; acceptable_pause = \"3s\"; window = 32; };\n"
    "  rise = 2; max_nodes = 100; startup_grace = \"10s\"; pause_tolerance = 1;\n"
    "  event_history = 10000; auto_register = false; };\n",
};

int vigil_fuzz_seed(size_t index, uint8_t *buf, size_t cap)
{
    if (index >= sizeof(seeds) / sizeof(seeds[0]))
        return -1;
    size_t n = strlen(seeds[index]);
    if (n > cap)
        return -1;
    memcpy(buf, seeds[index], n);
    return (int)n;
}
