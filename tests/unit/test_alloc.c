/*
 * Allocation failures in the monitor core, in the manner of nghttp2's
 * failmalloc: the monitor gets a counting allocator that fails its Nth
 * allocation, and each path is run with N = 1, 2, 3, ... until it completes
 * without reaching the failure. Every run must end in a clean
 * -VIGIL_ENOMEM, or, where the API has no error to return, in a counted
 * degradation (events_lost, custom_lost); with nothing leaked, and with the
 * monitor still working afterwards.
 *
 * Paths that must not allocate at all (declaring, registering and refreshing
 * nodes up to max_nodes, decoding, the detectors) are run with every
 * allocation failing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vigil/vigil.h>

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC

/* Most allocations any path below makes; a loop that reaches it is broken. */
#define MAX_ALLOCS 64

/* The test allocator: counts calls and live blocks, fails call fail_at (1-based). */
struct talloc {
    long calls;   /* allocations asked for */
    long live;    /* blocks handed out and not yet freed */
    long fail_at; /* the call that fails; 0: none */
    bool fail_all;
};

static void *t_calloc(void *ud, size_t nmemb, size_t size)
{
    struct talloc *t = ud;
    t->calls++;
    if (t->fail_all || t->calls == t->fail_at)
        return NULL;
    void *p = calloc(nmemb, size);
    if (p)
        t->live++;
    return p;
}

static void t_free(void *ud, void *ptr)
{
    struct talloc *t = ud;
    assert_non_null(ptr);
    t->live--;
    free(ptr);
}

/* Fails the allocation that comes fail_at calls from now (0: none). */
static void fail_next(struct talloc *t, long fail_at)
{
    t->calls = 0;
    t->fail_at = fail_at;
    t->fail_all = false;
}

static void config(struct vigil_monitor_config *c, struct talloc *t, enum vigil_detector_kind kind)
{
    vigil_monitor_config_default(c);
    vigil_detector_config_default(&c->detector, kind, S);
    c->max_nodes = 256;
    c->allocator.calloc = t_calloc;
    c->allocator.free = t_free;
    c->allocator.ud = t;
}

static struct vigil_monitor *monitor(struct talloc *t, enum vigil_detector_kind kind)
{
    struct vigil_monitor_config c;
    config(&c, t, kind);
    struct vigil_monitor *m = NULL;
    fail_next(t, 0);
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    return m;
}

static int send_hb(struct vigil_monitor *m, vigil_time_t now, const char *id, uint64_t seq,
                   const char *custom_value)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    snprintf(hb.id, sizeof(hb.id), "%s", id);
    hb.generation = 1;
    hb.sequence = seq;
    hb.interval_ms = 1000;
    if (custom_value) {
        hb.n_custom = 1;
        snprintf(hb.custom[0].key, sizeof(hb.custom[0].key), "role");
        snprintf(hb.custom[0].value, sizeof(hb.custom[0].value), "%s", custom_value);
    }
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
    assert_true(len > 0);
    struct vigil_addr from = {.family = 2, .port = 4000, .addr = {127, 0, 0, 1}};
    return vigil_monitor_on_datagram(m, now, buf, (size_t)len, &from);
}

static size_t drain(struct vigil_monitor *m, uint64_t *last_seq)
{
    struct vigil_event ev;
    size_t n = 0;
    while (vigil_monitor_poll_event(m, &ev)) {
        assert_true(ev.seq == *last_seq + 1); /* no gap, no repeat */
        *last_seq = ev.seq;
        n++;
    }
    return n;
}

static void free_and_check(struct vigil_monitor *m, struct talloc *t)
{
    vigil_monitor_free(m);
    assert_int_equal(t->live, 0);
}

/* A monitor that works: a node goes alive, suspect and dead on time. */
static void check_works(struct vigil_monitor *m, vigil_time_t t0, const char *id)
{
    struct vigil_event ev;
    while (vigil_monitor_poll_event(m, &ev))
        ;
    assert_int_equal(send_hb(m, t0, id, 1000, NULL), 0);
    assert_int_equal(send_hb(m, t0 + S, id, 1001, NULL), 0);
    assert_int_equal(vigil_node_state(vigil_monitor_find(m, id)), VIGIL_STATE_ALIVE);
    for (vigil_time_t now = t0 + S; now < t0 + 120 * S; now += 100 * MS)
        if (now >= vigil_monitor_next_deadline(m))
            vigil_monitor_on_expiry(m, now);
    assert_int_equal(vigil_node_state(vigil_monitor_find(m, id)), VIGIL_STATE_DEAD);
    while (vigil_monitor_poll_event(m, &ev))
        ;
}

/* vigil_monitor_new: every allocation fails in turn, for both detectors. */
static void test_create(void **st)
{
    (void)st;
    enum vigil_detector_kind kinds[] = {VIGIL_DETECTOR_PHI, VIGIL_DETECTOR_FIXED};
    for (size_t k = 0; k < 2; k++) {
        for (uint32_t window = 0; window <= 32; window += 32) {
            struct talloc t = {0};
            struct vigil_monitor_config c;
            config(&c, &t, kinds[k]);
            if (kinds[k] == VIGIL_DETECTOR_FIXED)
                c.detector.window = window; /* 0: no interval statistics */
            else if (window == 0)
                continue;
            long n;
            for (n = 1; n < MAX_ALLOCS; n++) {
                struct vigil_monitor *m = (struct vigil_monitor *)&t; /* must stay untouched */
                fail_next(&t, n);
                int rc = vigil_monitor_new(&c, 0, &m);
                if (t.calls < n) { /* got through without reaching the failure */
                    assert_int_equal(rc, 0);
                    check_works(m, 0, "a");
                    free_and_check(m, &t);
                    break;
                }
                assert_int_equal(rc, -VIGIL_ENOMEM);
                assert_ptr_equal(m, (struct vigil_monitor *)&t);
                assert_int_equal(t.live, 0);
            }
            assert_true(n > 1 && n < MAX_ALLOCS);
        }
    }
}

/*
 * Declaring nodes, registering them on their first heartbeat, refreshing
 * them, filling the table to max_nodes and the deadline heap with it and
 * decoding their datagrams allocate nothing, and deciding their fate needs
 * no memory: with every allocation failing, all of it works. Nothing is
 * lost but the events beyond the queue's first allocation and the timing
 * of the suspicions, whose records (allocated at a node's first suspicion)
 * could not be had: counted in qos_lost, one per node.
 */
static void test_heartbeat_paths_do_not_allocate(void **st)
{
    (void)st;
    struct talloc t = {0};
    struct vigil_monitor *m = monitor(&t, VIGIL_DETECTOR_FIXED);
    t.calls = 0;
    t.fail_all = true;
    uint64_t last_seq = 0;
    char id[VIGIL_ID_MAX + 1];
    /*
     * Half the table declared, half self-registered, each node on its own
     * phase so that decisions come a few at a time, and the events drained
     * often enough that the queue never needs to grow.
     */
    for (int i = 0; i < 128; i++) {
        snprintf(id, sizeof(id), "decl%d", i);
        assert_int_equal(vigil_monitor_declare(m, id, 0), 0);
    }
    for (uint64_t seq = 1; seq < 10; seq++) {
        for (int i = 0; i < 256; i++) {
            snprintf(id, sizeof(id), i < 128 ? "decl%d" : "auto%d", i);
            vigil_time_t now = (vigil_time_t)seq * S + i * (S / 512);
            assert_int_equal(send_hb(m, now, id, seq, NULL), 0);
            if (i % 32 == 31)
                drain(m, &last_seq);
        }
        if (seq == 1) {
            assert_int_equal(vigil_monitor_node_count(m), 256);
            assert_int_equal(send_hb(m, 1 * S + S / 2, "onemore", 1, NULL), -VIGIL_EFULL);
            assert_int_equal(vigil_monitor_declare(m, "onemore", 1 * S + S / 2), -VIGIL_EFULL);
        }
    }
    /* Then silence: suspect and dead for all. */
    for (vigil_time_t now = 10 * S; now < 30 * S; now += 1 * MS) {
        if (now >= vigil_monitor_next_deadline(m))
            vigil_monitor_on_expiry(m, now);
        drain(m, &last_seq);
    }
    for (size_t i = 0; i < vigil_monitor_node_count(m); i++)
        assert_int_equal(vigil_node_state(vigil_monitor_node_at(m, i)), VIGIL_STATE_DEAD);
    /* Only the suspicion records asked, one chunk each time, and were refused. */
    assert_int_equal(t.calls, 256);
    const struct vigil_monitor_stats *s = vigil_monitor_stats(m);
    assert_int_equal(s->events_lost, 0);
    assert_int_equal(s->events, last_seq);
    assert_int_equal(s->qos_lost, 256);
    /* A node back in the same generation: its suspicion was not timed, so no mistake counted. */
    assert_int_equal(send_hb(m, 30 * S, "decl0", 10, NULL), 0);
    struct vigil_node_qos q;
    vigil_monitor_node_qos(m, vigil_monitor_find(m, "decl0"), &q);
    assert_int_equal(q.mistakes, 0);
    assert_int_equal(q.received, 10);
    assert_int_equal(q.expected, 10);
    assert_int_equal(t.calls, 256);
    /* The detector and the decoder on their own take no allocator at all. */
    free_and_check(m, &t);
}

/*
 * Ids of 16 characters or more are kept in the monitor's id store, whose
 * 64 KiB chunks are allocated as long ids arrive: with allocation failing,
 * a new long id is refused like one beyond a full table (declare:
 * -VIGIL_ENOMEM; a heartbeat: -VIGIL_EFULL, counted in table_full), short
 * ids and nodes already in need nothing, and once memory is back long ids
 * enter; every id stays where it was stored.
 */
static void test_long_ids(void **st)
{
    (void)st;
    struct talloc t = {0};
    struct vigil_monitor *m = monitor(&t, VIGIL_DETECTOR_PHI);
    char id[VIGIL_ID_MAX + 1];
    const char *kept[200];
    memset(id, 'x', VIGIL_ID_MAX);
    id[VIGIL_ID_MAX] = '\0';
    t.fail_all = true;
    assert_int_equal(vigil_monitor_declare(m, "a-long-node-id-01", 0), -VIGIL_ENOMEM);
    assert_int_equal(send_hb(m, 1 * S, "a-long-node-id-02", 1, NULL), -VIGIL_EFULL);
    assert_int_equal(vigil_monitor_stats(m)->table_full, 1);
    assert_int_equal(send_hb(m, 1 * S, "fifteen-chars-0", 1, NULL), 0);
    assert_int_equal(vigil_monitor_node_count(m), 1);
    t.fail_all = false;
    /* 200 ids of 64 characters: 13,000 bytes, in the first chunk. */
    for (int i = 0; i < 200; i++) {
        snprintf(id + VIGIL_ID_MAX - 4, 5, "%04d", i);
        assert_int_equal(send_hb(m, 2 * S, id, 1, NULL), 0);
        kept[i] = vigil_node_id(vigil_monitor_find(m, id));
        assert_string_equal(kept[i], id);
    }
    assert_int_equal(vigil_monitor_node_count(m), 201);
    for (int i = 0; i < 200; i++) {
        snprintf(id + VIGIL_ID_MAX - 4, 5, "%04d", i);
        assert_ptr_equal(vigil_node_id(vigil_monitor_find(m, id)), kept[i]);
        assert_int_equal(send_hb(m, 3 * S, id, 2, NULL), 0);
    }
    assert_string_equal(vigil_node_id(vigil_monitor_find(m, "fifteen-chars-0")), "fifteen-chars-0");
    /* The events carry the whole id. */
    struct vigil_event ev;
    assert_true(vigil_monitor_poll_event(m, &ev));
    assert_string_equal(ev.node, "fifteen-chars-0");
    assert_true(vigil_monitor_poll_event(m, &ev));
    snprintf(id + VIGIL_ID_MAX - 4, 5, "%04d", 0);
    assert_string_equal(ev.node, id);
    free_and_check(m, &t);
}

/*
 * A status with a figure beyond 32 bits is kept whole in an allocated
 * copy: when that fails, the old status stays, marked stale, and the loss
 * is counted in custom_lost; the next one stores.
 */
static void test_wide_status(void **st)
{
    (void)st;
    struct talloc t = {0};
    struct vigil_monitor *m = monitor(&t, VIGIL_DETECTOR_FIXED);
    struct vigil_heartbeat hb;
    uint8_t buf[VIGIL_WIRE_MAX];
    memset(&hb, 0, sizeof(hb));
    snprintf(hb.id, sizeof(hb.id), "big");
    hb.generation = 1;
    hb.interval_ms = 1000;
    for (uint64_t seq = 1; seq <= 3; seq++) {
        hb.sequence = seq;
        hb.status.uptime_s = seq == 1 ? 5 : UINT64_C(1) << 33;
        t.fail_all = seq == 2;
        int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
        assert_true(len > 0);
        assert_int_equal(
            vigil_monitor_on_datagram(m, (vigil_time_t)seq * S, buf, (size_t)len, NULL), 0);
        const struct vigil_node *n = vigil_monitor_find(m, "big");
        assert_true(vigil_node_status(n).uptime_s == (seq == 3 ? UINT64_C(1) << 33 : 5));
        assert_int_equal(vigil_node_status_stale(n), seq == 2);
        assert_int_equal(vigil_monitor_stats(m)->custom_lost, seq >= 2 ? 1 : 0);
    }
    t.fail_all = false;
    free_and_check(m, &t);
}

/*
 * The event queue grows when events pile up unpolled: the growth fails in
 * turn; the state changes stand, the lost events are counted, the rest
 * arrive in order, and the next growth succeeds.
 */
static void test_event_queue_growth(void **st)
{
    (void)st;
    for (long n = 1;; n++) {
        assert_true(n < MAX_ALLOCS);
        struct talloc t = {0};
        struct vigil_monitor *m = monitor(&t, VIGIL_DETECTOR_FIXED);
        fail_next(&t, n);
        char id[VIGIL_ID_MAX + 1];
        /* 200 first heartbeats: 200 events, three doublings of a 64-event queue. */
        for (int i = 0; i < 200; i++) {
            snprintf(id, sizeof(id), "n%d", i);
            assert_int_equal(send_hb(m, 1 * S, id, 1, NULL), 0);
            assert_int_equal(vigil_node_state(vigil_monitor_find(m, id)), VIGIL_STATE_ALIVE);
        }
        const struct vigil_monitor_stats *s = vigil_monitor_stats(m);
        uint64_t last_seq = 0;
        size_t got = drain(m, &last_seq);
        assert_int_equal(got + s->events_lost, 200);
        assert_int_equal(got, s->events);
        bool reached = t.calls >= n;
        assert_int_equal(s->events_lost, reached ? 1 : 0);
        check_works(m, 2 * S, "n0");
        free_and_check(m, &t);
        if (!reached)
            break;
    }
}

/*
 * A node's custom status is copied when it changes, on its first heartbeat
 * too: a failed copy keeps the previous status (none, for a new node),
 * counts custom_lost, and does not cost the heartbeat.
 */
static void test_custom_status(void **st)
{
    (void)st;
    for (long n = 1;; n++) {
        assert_true(n < MAX_ALLOCS);
        struct talloc t = {0};
        struct vigil_monitor *m = monitor(&t, VIGIL_DETECTOR_PHI);
        fail_next(&t, n);
        /* First heartbeat of a self-registering node, with a custom status. */
        assert_int_equal(send_hb(m, 1 * S, "c", 1, "web"), 0);
        const struct vigil_node *c = vigil_monitor_find(m, "c");
        assert_non_null(c);
        assert_int_equal(vigil_node_state(c), VIGIL_STATE_ALIVE);
        const struct vigil_monitor_stats *s = vigil_monitor_stats(m);
        bool first_lost = s->custom_lost == 1;
        assert_int_equal(vigil_node_custom_count(c), first_lost ? 0 : 1);
        /* A change of status. */
        assert_int_equal(send_hb(m, 2 * S, "c", 2, "db"), 0);
        bool second_lost = s->custom_lost == (first_lost ? 2u : 1u);
        assert_int_equal(vigil_node_heartbeats(c), 2);
        if (second_lost) {
            /* The old status stays. */
            assert_int_equal(vigil_node_custom_count(c), 1);
            assert_string_equal(vigil_node_custom(c, 0)->value, "web");
        } else {
            assert_int_equal(vigil_node_custom_count(c), 1);
            assert_string_equal(vigil_node_custom(c, 0)->value, "db");
        }
        assert_int_equal(s->custom_lost, (first_lost ? 1 : 0) + (second_lost ? 1 : 0));
        /* The next heartbeat stores it, and dropping the status frees it. */
        assert_int_equal(send_hb(m, 3 * S, "c", 3, "db"), 0);
        assert_string_equal(vigil_node_custom(c, 0)->value, "db");
        assert_int_equal(send_hb(m, 4 * S, "c", 4, NULL), 0);
        assert_int_equal(vigil_node_custom_count(c), 0);
        assert_null(vigil_node_custom(c, 0));
        assert_int_equal(send_hb(m, 5 * S, "c", 5, "cache"), 0);
        bool reached = t.calls >= n;
        assert_int_equal(reached, s->custom_lost > 0);
        check_works(m, 6 * S, "c");
        free_and_check(m, &t); /* frees the last custom status */
        if (!reached)
            break;
    }
}

/* The pause event goes through the same queue: a failed growth loses only it. */
static void test_pause_event(void **st)
{
    (void)st;
    struct talloc t = {0};
    struct vigil_monitor *m = monitor(&t, VIGIL_DETECTOR_FIXED);
    char id[VIGIL_ID_MAX + 1];
    for (int i = 0; i < 64; i++) { /* exactly fills the queue */
        snprintf(id, sizeof(id), "n%d", i);
        assert_int_equal(send_hb(m, 1 * S, id, 1, NULL), 0);
    }
    t.fail_all = true;
    /* Called a minute late: a pause, forgiven; its event does not fit. */
    vigil_monitor_on_expiry(m, 60 * S);
    const struct vigil_monitor_stats *s = vigil_monitor_stats(m);
    assert_int_equal(s->pauses, 1);
    assert_int_equal(s->events_lost, 1);
    uint64_t last_seq = 0;
    assert_int_equal(drain(m, &last_seq), 64);
    for (int i = 0; i < 64; i++) {
        snprintf(id, sizeof(id), "n%d", i);
        assert_int_equal(vigil_node_state(vigil_monitor_find(m, id)), VIGIL_STATE_ALIVE);
    }
    t.fail_all = false;
    free_and_check(m, &t);
}

/* An allocator is both functions or none; and the monitor does not keep the key. */
static void test_config(void **st)
{
    (void)st;
    struct talloc t = {0};
    struct vigil_monitor_config c;
    const char *why = NULL;
    config(&c, &t, VIGIL_DETECTOR_PHI);
    assert_int_equal(vigil_monitor_config_check(&c, &why), 0);
    c.allocator.free = NULL;
    assert_int_equal(vigil_monitor_config_check(&c, &why), -VIGIL_EINVAL);
    assert_non_null(why);
    config(&c, &t, VIGIL_DETECTOR_PHI);
    c.allocator.calloc = NULL;
    assert_int_equal(vigil_monitor_config_check(&c, &why), -VIGIL_EINVAL);
    struct vigil_monitor *m = NULL;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), -VIGIL_EINVAL);

    /* The C library's allocator, with a key. */
    vigil_monitor_config_default(&c);
    c.has_key = true;
    memset(c.key, 0x5a, sizeof(c.key));
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    const struct vigil_monitor_config *mc = vigil_monitor_config(m);
    assert_true(mc->has_key);
    uint8_t zero[VIGIL_WIRE_KEY_LEN] = {0};
    assert_memory_equal(mc->key, zero, sizeof(zero));
    assert_null(mc->allocator.calloc);
    vigil_monitor_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_heartbeat_paths_do_not_allocate),
        cmocka_unit_test(test_long_ids),
        cmocka_unit_test(test_wide_status),
        cmocka_unit_test(test_event_queue_growth),
        cmocka_unit_test(test_custom_status),
        cmocka_unit_test(test_pause_event),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
