/*
 * The high-water mark file (src/vigil/hwm.c): the slack, a round trip
 * through a real file, and damaged files refused with their line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/hwm.h"

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC

static char dir[64], path[128], err[512];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vigil-test-hwm-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/hwm", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

static struct vigil_monitor *new_monitor(void)
{
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    return m;
}

static int send_hb(struct vigil_monitor *m, const char *id, uint64_t gen, uint64_t seq,
                   uint32_t interval_ms)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    snprintf(hb.id, sizeof(hb.id), "%s", id);
    hb.generation = gen;
    hb.sequence = seq;
    hb.interval_ms = interval_ms;
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
    assert_true(len > 0);
    return vigil_monitor_on_datagram(m, 0, buf, (size_t)len, NULL);
}

static void write_text(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_slack(void **state)
{
    (void)state;
    /* Two flush intervals of heartbeats, plus one. */
    assert_int_equal(hwm_slack(5 * S, 1000), 11);
    assert_int_equal(hwm_slack(5 * S, 250), 41);
    assert_int_equal(hwm_slack(5 * S, 3000), 5); /* rounded up: 3.33 -> 4 */
    /* A mark restored and never heard since was raised already. */
    assert_int_equal(hwm_slack(5 * S, 0), 0);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct vigil_monitor *m = new_monitor();
    assert_int_equal(send_hb(m, "web1", 7, 100, 1000), 0);
    assert_int_equal(send_hb(m, "web2", 9, 5, 250), 0);
    assert_int_equal(vigil_monitor_declare(m, "never", 0), 0);
    assert_int_equal(hwm_save(&vio_fs_real, path, m), 0);
    vigil_monitor_free(m);

    m = new_monitor();
    assert_int_equal(hwm_load(&vio_fs_real, path, m, 5 * S, 0, err, sizeof(err)), 2);
    /* The marks, raised by the slack; a node never heard has none. */
    assert_int_equal(vigil_node_sequence(vigil_monitor_find(m, "web1")), 100 + 11);
    assert_int_equal(vigil_node_generation(vigil_monitor_find(m, "web2")), 9);
    assert_int_equal(vigil_node_sequence(vigil_monitor_find(m, "web2")), 5 + 41);
    assert_null(vigil_monitor_find(m, "never"));
    assert_int_equal(send_hb(m, "web1", 7, 111, 1000), -VIGIL_ESTALE);
    assert_int_equal(send_hb(m, "web1", 7, 112, 1000), 0);
    /* Saved again with web2 not heard since: its mark is not raised twice. */
    assert_int_equal(hwm_save(&vio_fs_real, path, m), 0);
    vigil_monitor_free(m);
    m = new_monitor();
    assert_int_equal(hwm_load(&vio_fs_real, path, m, 5 * S, 0, err, sizeof(err)), 2);
    assert_int_equal(vigil_node_sequence(vigil_monitor_find(m, "web2")), 46);
    assert_int_equal(vigil_node_sequence(vigil_monitor_find(m, "web1")), 112 + 11);
    vigil_monitor_free(m);
}

static void test_missing_and_damaged(void **state)
{
    (void)state;
    struct vigil_monitor *m = new_monitor();
    /* No file yet: nothing to restore. */
    assert_int_equal(hwm_load(&vio_fs_real, path, m, 5 * S, 0, err, sizeof(err)), 0);
    const struct {
        const char *text;
        const char *want; /* after "PATH" */
    } bad[] = {
        {"garbage\n", ":1: not a high-water mark file (\"vigil-hwm 1\" expected)"},
        {"vigil-hwm 1\nweb1 1 2\n", ":2: expected ID GENERATION SEQUENCE INTERVAL_MS"},
        {"vigil-hwm 1\nweb1 1 2 3 4\n", ":2: expected ID GENERATION SEQUENCE INTERVAL_MS"},
        {"vigil-hwm 1\nweb1 -1 2 3\n", ":2: expected ID GENERATION SEQUENCE INTERVAL_MS"},
        {"vigil-hwm 1\nweb1 1 2 3600001\n", ":2: expected ID GENERATION SEQUENCE INTERVAL_MS"},
        {"vigil-hwm 1\nweb1 1 2 3\nbad!id 1 2 3\n", ":3: invalid node id"},
    };
    char want[600];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_text(bad[i].text);
        assert_int_equal(hwm_load(&vio_fs_real, path, m, 5 * S, 0, err, sizeof(err)), -1);
        snprintf(want, sizeof(want), "%s%s", path, bad[i].want);
        assert_string_equal(err, want);
    }
    /* The largest sequence is not wrapped by the slack. */
    write_text("vigil-hwm 1\nweb1 1 18446744073709551615 1000\n");
    assert_int_equal(hwm_load(&vio_fs_real, path, m, 5 * S, 0, err, sizeof(err)), 1);
    assert_true(vigil_node_sequence(vigil_monitor_find(m, "web1")) == UINT64_MAX);
    vigil_monitor_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slack),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_damaged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
