/*
 * The SQLite state store (src/io/store_sqlite.c) on a temporary directory:
 * batches written and read back, sequence numbers that never repeat,
 * numbers above 2^63, the outbox, the lock against a second process, a
 * batch that fails leaving nothing, and what survives closing and opening.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/vio.h"
#include "vigil/config.h"
#include "vigil/evlog.h"
#include "vigil/mstore.h"

static char dir[64], err[512];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vigil-test-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static struct vio_store *open_store(void)
{
    struct vio_store *s = NULL;
    int rc = vio_store_sqlite_open(dir, &s, err, sizeof(err));
    if (rc)
        fail_msg("open: %s", err);
    return s;
}

struct seen {
    uint64_t seqs[64];
    char json[64][64];
    size_t n;
    struct vio_store_node nodes[8];
    char ids[8][72];
    size_t n_nodes;
};

static int on_event(void *arg, const struct vio_store_event *e)
{
    struct seen *s = arg;
    s->seqs[s->n] = e->seq;
    snprintf(s->json[s->n], sizeof(s->json[0]), "%s", e->json);
    s->n++;
    return 0;
}

static int on_node(void *arg, const struct vio_store_node *n)
{
    struct seen *s = arg;
    snprintf(s->ids[s->n_nodes], sizeof(s->ids[0]), "%s", n->id);
    s->nodes[s->n_nodes] = *n;
    s->nodes[s->n_nodes].id = s->ids[s->n_nodes];
    s->n_nodes++;
    return 0;
}

static void write_events(struct vio_store *s, uint64_t from, uint64_t to)
{
    struct vio_store_event ev[64];
    char json[64][32];
    size_t n = 0;
    for (uint64_t q = from; q <= to; q++, n++) {
        snprintf(json[n], sizeof(json[n]), "{\"seq\":%llu}", (unsigned long long)q);
        ev[n] = (struct vio_store_event){
            .seq = q, .wall_us = (int64_t)q * 1000, .node = "web1", .json = json[n]};
    }
    struct vio_store_batch b = {.events = ev, .n_events = n};
    assert_int_equal(vio_store_write(s, &b), 0);
}

static void test_empty(void **state)
{
    (void)state;
    struct vio_store *s = open_store();
    uint64_t last = 99;
    assert_int_equal(s->ops->last_seq(s, &last), 0);
    assert_int_equal(last, 0);
    struct seen seen = {0};
    assert_int_equal(s->ops->events(s, 0, 10, on_event, &seen), 0);
    assert_int_equal(s->ops->nodes(s, on_node, &seen), 0);
    assert_int_equal(seen.n + seen.n_nodes, 0);
    vio_store_close(s);
    /* Owner-only: the database holds the marks that keep replays out. */
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/vigil.db", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
}

static void test_events_survive_reopen(void **state)
{
    (void)state;
    struct vio_store *s = open_store();
    write_events(s, 1, 5);
    write_events(s, 6, 7);
    vio_store_close(s);
    s = open_store();
    uint64_t last = 0;
    assert_int_equal(s->ops->last_seq(s, &last), 0);
    assert_int_equal(last, 7);
    /* The newest 3 after 2, oldest first. */
    struct seen seen = {0};
    assert_int_equal(s->ops->events(s, 2, 3, on_event, &seen), 0);
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.seqs[0], 5);
    assert_int_equal(seen.seqs[2], 7);
    assert_string_equal(seen.json[0], "{\"seq\":5}");
    /* Everything after 2: 3..7. */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(s->ops->events(s, 2, 100, on_event, &seen), 0);
    assert_int_equal(seen.n, 5);
    assert_int_equal(seen.seqs[0], 3);
    vio_store_close(s);
}

static void test_duplicate_seq_refused_whole_batch(void **state)
{
    (void)state;
    struct vio_store *s = open_store();
    write_events(s, 1, 3);
    /* 4 is new, 3 is held: the batch fails and 4 is not kept either. */
    struct vio_store_event ev[2] = {{.seq = 4, .node = "", .json = "{}"},
                                    {.seq = 3, .node = "", .json = "{}"}};
    struct vio_store_node node = {.id = "web9", .generation = 1, .sequence = 1};
    struct vio_store_batch b = {.events = ev, .n_events = 2, .nodes = &node, .n_nodes = 1};
    assert_int_equal(vio_store_write(s, &b), -EIO);
    assert_non_null(strstr(s->ops->error(s), "appending an event"));
    uint64_t last = 0;
    assert_int_equal(s->ops->last_seq(s, &last), 0);
    assert_int_equal(last, 3);
    struct seen seen = {0};
    assert_int_equal(s->ops->nodes(s, on_node, &seen), 0);
    assert_int_equal(seen.n_nodes, 0);
    /* The store still works after the failed batch. */
    write_events(s, 4, 4);
    assert_int_equal(s->ops->last_seq(s, &last), 0);
    assert_int_equal(last, 4);
    vio_store_close(s);
}

static void test_nodes_replace_and_big_numbers(void **state)
{
    (void)state;
    struct vio_store *s = open_store();
    struct vio_store_node n[2] = {
        {.id = "web1",
         .generation = 10,
         .sequence = 5,
         .interval_ms = 1000,
         .state = VIGIL_STATE_ALIVE},
        {.id = "db.2",
         .generation = UINT64_MAX,
         .sequence = (1ull << 63) + 7,
         .interval_ms = 100,
         .state = VIGIL_STATE_DEAD},
    };
    struct vio_store_batch b = {.nodes = n, .n_nodes = 2};
    assert_int_equal(vio_store_write(s, &b), 0);
    n[0].sequence = 6;
    n[0].state = VIGIL_STATE_LEFT;
    b.n_nodes = 1;
    assert_int_equal(vio_store_write(s, &b), 0);
    vio_store_close(s);
    s = open_store();
    struct seen seen = {0};
    assert_int_equal(s->ops->nodes(s, on_node, &seen), 0);
    assert_int_equal(seen.n_nodes, 2);
    /* In id order: "db.2" < "web1". */
    assert_string_equal(seen.nodes[0].id, "db.2");
    assert_true(seen.nodes[0].generation == UINT64_MAX);
    assert_true(seen.nodes[0].sequence == (1ull << 63) + 7);
    assert_int_equal(seen.nodes[0].state, VIGIL_STATE_DEAD);
    assert_int_equal(seen.nodes[0].interval_ms, 100);
    assert_string_equal(seen.nodes[1].id, "web1");
    assert_int_equal(seen.nodes[1].sequence, 6);
    assert_int_equal(seen.nodes[1].state, VIGIL_STATE_LEFT);
    vio_store_close(s);
}

struct obx {
    int64_t ids[8];
    char kinds[8][16], states[8][16];
    size_t n;
};

static int on_outbox(void *arg, const struct vio_store_outbox *o)
{
    struct obx *x = arg;
    x->ids[x->n] = o->id;
    snprintf(x->kinds[x->n], sizeof(x->kinds[0]), "%s", o->kind);
    snprintf(x->states[x->n], sizeof(x->states[0]), "%s", o->state);
    x->n++;
    return 0;
}

static void test_outbox(void **state)
{
    (void)state;
    struct vio_store *s = open_store();
    int64_t a = 0, b = 0, c = 0;
    assert_int_equal(s->ops->outbox_add(s, 1000, "hook", "{\"seq\":1}", &a), 0);
    assert_int_equal(s->ops->outbox_add(s, 2000, "webhook", "{\"seq\":2}", &b), 0);
    assert_true(b > a);
    assert_int_equal(s->ops->outbox_set(s, a, "done"), 0);
    assert_int_equal(s->ops->outbox_set(s, 12345, "done"), -ENOENT);
    vio_store_close(s);
    s = open_store();
    struct obx x = {0};
    assert_int_equal(s->ops->outbox_list(s, "pending", on_outbox, &x), 0);
    assert_int_equal(x.n, 1);
    assert_true(x.ids[0] == b);
    assert_string_equal(x.kinds[0], "webhook");
    memset(&x, 0, sizeof(x));
    assert_int_equal(s->ops->outbox_list(s, NULL, on_outbox, &x), 0);
    assert_int_equal(x.n, 2);
    assert_string_equal(x.states[0], "done");
    size_t purged = 0;
    assert_int_equal(s->ops->outbox_purge(s, "done", &purged), 0);
    assert_int_equal(purged, 1);
    /* Ids are never reused, even after a purge. */
    assert_int_equal(s->ops->outbox_add(s, 3000, "hook", "{}", &c), 0);
    assert_true(c > b);
    vio_store_close(s);
}

static int stop_at_two(void *arg, const struct vio_store_event *e)
{
    (void)e;
    return ++*(int *)arg == 2 ? 42 : 0;
}

static void test_callback_stops_walk(void **state)
{
    (void)state;
    struct vio_store *s = open_store();
    write_events(s, 1, 5);
    int calls = 0;
    assert_int_equal(s->ops->events(s, 0, 10, stop_at_two, &calls), 42);
    assert_int_equal(calls, 2);
    /* The statement was reset: the next walk starts over. */
    struct seen seen = {0};
    assert_int_equal(s->ops->events(s, 0, 10, on_event, &seen), 0);
    assert_int_equal(seen.n, 5);
    vio_store_close(s);
}

static void test_second_process_refused(void **state)
{
    (void)state;
    struct vio_store *s = open_store();
    struct vio_store *t = NULL;
    assert_int_not_equal(vio_store_sqlite_open(dir, &t, err, sizeof(err)), 0);
    assert_null(t);
    assert_non_null(strstr(err, "in use"));
    vio_store_close(s);
    /* Closed: free again. */
    s = open_store();
    vio_store_close(s);
}

static void test_missing_dir_created_and_bad_dir(void **state)
{
    (void)state;
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/state", dir);
    struct vio_store *s = NULL;
    assert_int_equal(vio_store_sqlite_open(sub, &s, err, sizeof(err)), 0);
    vio_store_close(s);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    snprintf(sub, sizeof(sub), "%s/no/such/dir", dir);
    assert_int_not_equal(vio_store_sqlite_open(sub, &s, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "cannot create"));
}

static void test_not_a_database(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/vigil.db", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not an SQLite database, but a file of text long enough to be looked at\n", f);
    fclose(f);
    struct vio_store *s = NULL;
    assert_int_not_equal(vio_store_sqlite_open(dir, &s, err, sizeof(err)), 0);
    assert_null(s);
    assert_non_null(strstr(err, "vigil.db"));
}

/* What a batch costs: printed, for docs/operations.md; bounded loosely. */
/*
 * The monitor's save in slices (mstore_save_slice): slices of 7 nodes
 * cover a table of 50 exactly once, and a monitor opened on the store
 * afterwards finds every mark, raised as on any load.
 */
static void test_save_in_slices(void **state)
{
    (void)state;
    struct vio_env *env = NULL;
    assert_int_equal(vio_env_real_new(&env, false), 0);
    struct vcfg cfg;
    vcfg_init(&cfg);
    cfg.monitor.state_dir = strdup(dir);
    assert_non_null(cfg.monitor.state_dir);
    struct vigil_monitor_config mc;
    vigil_monitor_config_default(&mc);
    struct vigil_monitor *m = NULL;
    assert_int_equal(vigil_monitor_new(&mc, 1000, &m), 0);
    struct evlog *hist = evlog_new(16);
    struct mstore *st = NULL;
    struct mstore_loaded ld;
    assert_int_equal(mstore_open(env, &cfg.monitor, m, hist, 1000, &st, &ld, err, sizeof(err)), 0);
    /* 50 nodes heard, each with its own mark. */
    for (int i = 0; i < 50; i++) {
        struct vigil_heartbeat hb;
        memset(&hb, 0, sizeof(hb));
        snprintf(hb.id, sizeof(hb.id), "n%02d", i);
        hb.generation = 1000 + (uint64_t)i;
        hb.sequence = 7;
        hb.interval_ms = 1000;
        hb.send_time_us = 1;
        uint8_t buf[VIGIL_WIRE_MAX];
        int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
        assert_true(len > 0);
        assert_int_equal(vigil_monitor_on_datagram(m, 2000, buf, (size_t)len, NULL), 0);
    }
    size_t from = 0, slices = 0;
    while (from < vigil_monitor_node_count(m) && slices < 100) {
        size_t before = from;
        assert_int_equal(mstore_save_slice(st, m, &from, 7), 0);
        assert_true(from - before <= 7 && from > before);
        slices++;
    }
    assert_int_equal(slices, 8); /* 7 x 7 + 1 */
    assert_int_equal(from, 50);
    mstore_free(st);
    vigil_monitor_free(m);
    evlog_free(hist);

    /* A new monitor on the store: all 50 marks, each at least what was written. */
    assert_int_equal(vigil_monitor_new(&mc, 1000, &m), 0);
    hist = evlog_new(16);
    assert_int_equal(mstore_open(env, &cfg.monitor, m, hist, 1000, &st, &ld, err, sizeof(err)), 0);
    assert_int_equal(ld.nodes, 50);
    for (int i = 0; i < 50; i++) {
        char id[8];
        snprintf(id, sizeof(id), "n%02d", i);
        const struct vigil_node *n = vigil_monitor_find(m, id);
        assert_non_null(n);
        assert_int_equal(vigil_node_generation(n), 1000 + (uint64_t)i);
        assert_true(vigil_node_sequence(n) >= 7);
    }
    mstore_free(st);
    vigil_monitor_free(m);
    evlog_free(hist);
    vcfg_free(&cfg);
    vio_env_real_free(env);
}

static void test_batch_cost(void **state)
{
    (void)state;
    struct vio_store *s = open_store();
    enum { NODES = 10000 };
    static struct vio_store_node n[NODES];
    static char ids[NODES][16];
    for (int i = 0; i < NODES; i++) {
        snprintf(ids[i], sizeof(ids[i]), "node%05d", i);
        n[i] = (struct vio_store_node){
            .id = ids[i], .generation = 1, .sequence = (uint64_t)i, .interval_ms = 1000};
    }
    struct vio_store_batch b = {.nodes = n, .n_nodes = NODES};
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(vio_store_write(s, &b), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (uint64_t q = 1; q <= 100; q++)
        write_events(s, q, q);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    double marks_ms =
        (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    double ev_ms =
        ((double)(t2.tv_sec - t1.tv_sec) * 1e3 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e6) / 100;
    printf("store: %d node marks in one batch %.1f ms; a one-event batch %.2f ms\n", NODES,
           marks_ms, ev_ms);
    vio_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_in_slices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_seq_refused_whole_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes_replace_and_big_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_stops_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_process_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_dir_created_and_bad_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_cost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
