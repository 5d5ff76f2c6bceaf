/*
 * The monitor core in virtual time: every timing claim is checked on both
 * sides of its boundary (not yet at T - 1 ns, done at T).
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

static const uint8_t KEY[VIGIL_WIRE_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

/* A fixed-timeout monitor: suspect after 2.5 s, dead after 5 s, rise 2. */
static struct vigil_monitor *fixed_monitor(void)
{
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    vigil_detector_config_default(&c.detector, VIGIL_DETECTOR_FIXED, S);
    c.detector.suspect_threshold = 2.5;
    c.detector.dead_threshold = 5.0;
    c.rise = 2;
    c.startup_grace = 10 * S;
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    return m;
}

static int send_hb(struct vigil_monitor *m, vigil_time_t now, const char *id, uint64_t gen,
                   uint64_t seq, uint8_t flags, const uint8_t *key)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    snprintf(hb.id, sizeof(hb.id), "%s", id);
    hb.generation = gen;
    hb.sequence = seq;
    hb.flags = flags;
    hb.interval_ms = 1000;
    hb.send_time_us = 1700000000000000LL;
    hb.status.load1_milli = 250;
    hb.status.mem_total_kib = 1024;
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, key, buf, sizeof(buf));
    assert_true(len > 0);
    struct vigil_addr from = {.family = 2, .port = 4000, .addr = {127, 0, 0, 1}};
    return vigil_monitor_on_datagram(m, now, buf, (size_t)len, &from);
}

/* Calls the monitor at now if it is due, like the daemon loop. */
static void tick(struct vigil_monitor *m, vigil_time_t now)
{
    if (now >= vigil_monitor_next_deadline(m))
        vigil_monitor_on_expiry(m, now);
}

static int state_of(struct vigil_monitor *m, const char *id)
{
    const struct vigil_node *n = vigil_monitor_find(m, id);
    assert_non_null(n);
    return vigil_node_state(n);
}

/* Takes the next event, which must exist. */
static struct vigil_event next_event(struct vigil_monitor *m)
{
    struct vigil_event ev;
    assert_true(vigil_monitor_poll_event(m, &ev));
    return ev;
}

static void no_event(struct vigil_monitor *m)
{
    struct vigil_event ev;
    assert_false(vigil_monitor_poll_event(m, &ev));
}

static void test_first_heartbeat_registers(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    assert_int_equal(send_hb(m, 1 * S, "web1", 7, 1, 0, NULL), 0);
    struct vigil_event ev = next_event(m);
    assert_int_equal(ev.seq, 1);
    assert_int_equal(ev.type, VIGIL_EVENT_STATE);
    assert_string_equal(ev.node, "web1");
    assert_int_equal(ev.old_state, VIGIL_STATE_UNKNOWN);
    assert_int_equal(ev.new_state, VIGIL_STATE_ALIVE);
    assert_int_equal(ev.generation, 7);
    no_event(m);
    const struct vigil_node *n = vigil_monitor_find(m, "web1");
    assert_int_equal(vigil_node_status(n).load1_milli, 250);
    assert_int_equal(vigil_node_addr(n)->port, 4000);
    assert_int_equal(vigil_monitor_next_deadline(m), 1 * S + 2500 * MS);
    vigil_monitor_free(m);
}

static void test_suspect_then_dead_boundaries(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    send_hb(m, 0, "a", 1, 1, 0, NULL);
    next_event(m);
    tick(m, 2500 * MS - 1);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_ALIVE);
    no_event(m);
    tick(m, 2500 * MS);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_SUSPECT);
    struct vigil_event ev = next_event(m);
    assert_int_equal(ev.new_state, VIGIL_STATE_SUSPECT);
    assert_string_equal(ev.reason, "timeout");
    assert_int_equal(ev.since_last, 2500 * MS);
    tick(m, 5 * S - 1);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_SUSPECT);
    no_event(m);
    tick(m, 5 * S);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_DEAD);
    ev = next_event(m);
    assert_int_equal(ev.old_state, VIGIL_STATE_SUSPECT);
    assert_int_equal(ev.new_state, VIGIL_STATE_DEAD);
    assert_int_equal(ev.since_last, 5 * S);
    assert_true(ev.level >= 5.0 && ev.level < 5.001);
    assert_true(ev.threshold == 5.0);
    /* A dead node has nothing left to decide. */
    assert_int_equal(vigil_monitor_next_deadline(m), VIGIL_TIME_NEVER);
    vigil_monitor_free(m);
}

/* A check holds a heartbeat node dead; passing again brings it back at once if it kept sending. */
static void test_check_down(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    assert_int_equal(send_hb(m, 0, "web1", 1, 1, 0, NULL), 0);
    next_event(m);
    assert_int_equal(vigil_monitor_set_check_down(m, 500 * MS, "web1", true, "check http critical"),
                     0);
    struct vigil_event ev = next_event(m);
    assert_int_equal(ev.new_state, VIGIL_STATE_DEAD);
    assert_string_equal(ev.reason, "check http critical");
    assert_true(vigil_node_check_down(vigil_monitor_find(m, "web1")));
    /* Heartbeats go on: taken, but no way back while the check fails (rise 2 is not enough). */
    for (uint64_t k = 2; k <= 6; k++) {
        assert_int_equal(send_hb(m, (vigil_time_t)(k - 1) * S, "web1", 1, k, 0, NULL), 0);
        tick(m, (vigil_time_t)(k - 1) * S);
    }
    assert_int_equal(state_of(m, "web1"), VIGIL_STATE_DEAD);
    no_event(m);
    /* The check passes: alive at once, its detector never crossed. */
    assert_int_equal(vigil_monitor_set_check_down(m, 5500 * MS, "web1", false, "checks passing"),
                     0);
    ev = next_event(m);
    assert_int_equal(ev.old_state, VIGIL_STATE_DEAD);
    assert_int_equal(ev.new_state, VIGIL_STATE_ALIVE);
    assert_string_equal(ev.reason, "checks passing");
    /* And judged by its heartbeats again: suspect 2.5 s after the last one (5 s). */
    assert_int_equal(vigil_monitor_next_deadline(m), 7500 * MS);
    /* A node whose heartbeats stopped while a check held it stays dead when the check passes. */
    assert_int_equal(vigil_monitor_set_check_down(m, 6 * S, "web1", true, "check http critical"),
                     0);
    next_event(m);
    assert_int_equal(vigil_monitor_set_check_down(m, 20 * S, "web1", false, "checks passing"), 0);
    assert_int_equal(state_of(m, "web1"), VIGIL_STATE_DEAD);
    no_event(m);
    assert_int_equal(vigil_monitor_set_check_down(m, 20 * S, "nobody", true, NULL),
                     -VIGIL_EUNKNOWN);
    vigil_monitor_free(m);
}

/* A member (vigil peer): the membership protocol decides; no detector, no deadline. */
static void test_member(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    struct vigil_addr a = {.family = 2, .port = 7946, .addr = {10, 0, 0, 7}};
    assert_int_equal(vigil_monitor_set_member(m, S, "m7", VIGIL_STATE_ALIVE, "joined", &a), 0);
    struct vigil_event ev = next_event(m);
    assert_int_equal(ev.old_state, VIGIL_STATE_UNKNOWN);
    assert_int_equal(ev.new_state, VIGIL_STATE_ALIVE);
    assert_string_equal(ev.reason, "joined");
    assert_int_equal(ev.addr.port, 7946);
    const struct vigil_node *n = vigil_monitor_find(m, "m7");
    assert_true(vigil_node_member(n) && vigil_node_polled(n));
    assert_int_equal(vigil_node_last_heard(n), S);
    /* Silent for an hour: the protocol said alive, so alive. */
    assert_int_equal(vigil_monitor_next_deadline(m), VIGIL_TIME_NEVER);
    tick(m, 3600 * S);
    assert_int_equal(state_of(m, "m7"), VIGIL_STATE_ALIVE);
    no_event(m);
    /* The same state again is no event; each change is one. */
    assert_int_equal(vigil_monitor_set_member(m, 3601 * S, "m7", VIGIL_STATE_ALIVE, "x", NULL), 0);
    no_event(m);
    assert_int_equal(
        vigil_monitor_set_member(m, 3602 * S, "m7", VIGIL_STATE_SUSPECT, "probe failed", NULL), 0);
    ev = next_event(m);
    assert_int_equal(ev.new_state, VIGIL_STATE_SUSPECT);
    assert_int_equal(ev.since_last, S); /* "alive" again at 3601 s counted as hearing from it */
    assert_int_equal(
        vigil_monitor_set_member(m, 3606 * S, "m7", VIGIL_STATE_DEAD, "suspicion timed out", NULL),
        0);
    ev = next_event(m);
    assert_int_equal(ev.old_state, VIGIL_STATE_SUSPECT);
    assert_int_equal(ev.new_state, VIGIL_STATE_DEAD);
    assert_int_equal(vigil_node_addr(vigil_monitor_find(m, "m7"))->port, 7946);
    assert_int_equal(vigil_monitor_set_member(m, 3607 * S, "m7", VIGIL_STATE_LEFT, "left", NULL),
                     0);
    assert_int_equal(next_event(m).new_state, VIGIL_STATE_LEFT);
    /* Its status, as its metadata carries it. */
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    snprintf(hb.id, sizeof hb.id, "m7");
    hb.status.load1_milli = 1500;
    hb.status.mem_total_kib = 1 << 20;
    hb.n_custom = 1;
    snprintf(hb.custom[0].key, sizeof hb.custom[0].key, "role");
    snprintf(hb.custom[0].value, sizeof hb.custom[0].value, "primary");
    assert_int_equal(vigil_monitor_set_member_status(m, 3608 * S, &hb), 0);
    n = vigil_monitor_find(m, "m7");
    assert_int_equal(vigil_node_status(n).load1_milli, 1500);
    assert_int_equal(vigil_node_custom_count(n), 1);
    assert_string_equal(vigil_node_custom(n, 0)->value, "primary");
    hb.n_custom = 0;
    assert_int_equal(vigil_monitor_set_member_status(m, 3609 * S, &hb), 0);
    assert_int_equal(vigil_node_custom_count(vigil_monitor_find(m, "m7")), 0);
    no_event(m);
    /* Refused: unknown as a state, a bad id, a status for a node that is not a member. */
    assert_int_equal(vigil_monitor_set_member(m, 0, "m8", VIGIL_STATE_UNKNOWN, NULL, NULL),
                     -VIGIL_EINVAL);
    assert_int_equal(vigil_monitor_set_member(m, 0, "a b", VIGIL_STATE_ALIVE, NULL, NULL),
                     -VIGIL_EBADID);
    assert_int_equal(send_hb(m, 3610 * S, "web1", 1, 1, 0, NULL), 0);
    next_event(m);
    snprintf(hb.id, sizeof hb.id, "web1");
    assert_int_equal(vigil_monitor_set_member_status(m, 3610 * S, &hb), -VIGIL_EUNKNOWN);
    snprintf(hb.id, sizeof hb.id, "nobody");
    assert_int_equal(vigil_monitor_set_member_status(m, 3610 * S, &hb), -VIGIL_EUNKNOWN);
    vigil_monitor_free(m);
}

/* A polled node: its checks alone decide; heartbeats from it change nothing. */
static void test_polled_node(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    assert_int_equal(vigil_monitor_declare_polled(m, "db1", 0), 0);
    assert_true(vigil_node_polled(vigil_monitor_find(m, "db1")));
    /* No detector deadline: not dead after startup_grace. */
    assert_int_equal(vigil_monitor_next_deadline(m), VIGIL_TIME_NEVER);
    tick(m, 60 * S);
    assert_int_equal(state_of(m, "db1"), VIGIL_STATE_UNKNOWN);
    assert_int_equal(vigil_monitor_set_check_down(m, 61 * S, "db1", false, "checks passing"), 0);
    struct vigil_event ev = next_event(m);
    assert_int_equal(ev.new_state, VIGIL_STATE_ALIVE);
    assert_int_equal(vigil_monitor_next_deadline(m), VIGIL_TIME_NEVER);
    /* Silent for a minute: still alive. A heartbeat is recorded, and changes no state. */
    tick(m, 121 * S);
    assert_int_equal(send_hb(m, 121 * S, "db1", 1, 1, 0, NULL), 0);
    assert_int_equal(vigil_node_heartbeats(vigil_monitor_find(m, "db1")), 1);
    assert_int_equal(vigil_monitor_set_check_down(m, 122 * S, "db1", true, "check pg critical"), 0);
    ev = next_event(m);
    assert_int_equal(ev.new_state, VIGIL_STATE_DEAD);
    assert_string_equal(ev.reason, "check pg critical");
    assert_int_equal(send_hb(m, 123 * S, "db1", 1, 2, 0, NULL), 0);
    assert_int_equal(state_of(m, "db1"), VIGIL_STATE_DEAD);
    no_event(m);
    /* A check event carries its evidence, cut to its room. */
    char longd[300];
    memset(longd, 'x', sizeof longd - 1);
    longd[sizeof longd - 1] = '\0';
    struct vigil_check_note note = {.check = "pg",
                                    .old_state = VIGIL_STATE_ALIVE,
                                    .new_state = VIGIL_STATE_DEAD,
                                    .reason = "polled",
                                    .latency = 3 * MS,
                                    .code = 7,
                                    .detail = longd};
    vigil_monitor_note_check(m, 124 * S, "db1", &note);
    ev = next_event(m);
    assert_int_equal(ev.type, VIGIL_EVENT_CHECK);
    assert_string_equal(ev.check, "pg");
    assert_string_equal(ev.node, "db1");
    assert_int_equal(ev.latency, 3 * MS);
    assert_int_equal(ev.code, 7);
    assert_int_equal(strlen(ev.detail), VIGIL_EVENT_DETAIL_MAX);
    assert_int_equal(ev.generation, 1);
    vigil_monitor_free(m);
}

static void test_heartbeats_keep_alive(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    for (int i = 0; i < 100; i++) {
        tick(m, i * S);
        assert_int_equal(send_hb(m, i * S, "a", 1, (uint64_t)i + 1, 0, NULL), 0);
    }
    next_event(m);
    no_event(m);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_ALIVE);
    const struct vigil_node *n = vigil_monitor_find(m, "a");
    assert_int_equal(vigil_node_heartbeats(n), 100);
    vigil_monitor_free(m);
}

static void test_suspect_back_to_alive(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    send_hb(m, 0, "a", 1, 1, 0, NULL);
    tick(m, 3 * S);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_SUSPECT);
    send_hb(m, 3 * S, "a", 1, 2, 0, NULL);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_ALIVE);
    next_event(m);
    next_event(m);
    struct vigil_event ev = next_event(m);
    assert_int_equal(ev.old_state, VIGIL_STATE_SUSPECT);
    assert_int_equal(ev.new_state, VIGIL_STATE_ALIVE);
    vigil_monitor_free(m);
}

static void test_recovery_needs_rise(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    send_hb(m, 0, "a", 1, 1, 0, NULL);
    tick(m, 2500 * MS);
    tick(m, 5 * S);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_DEAD);
    while (vigil_monitor_poll_event(m, &(struct vigil_event){0}))
        ;
    /* One heartbeat is not enough. */
    send_hb(m, 20 * S, "a", 1, 2, 0, NULL);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_DEAD);
    no_event(m);
    /* A run interrupted by a missed heartbeat starts over. */
    tick(m, 22500 * MS);
    assert_int_equal(vigil_node_rise_count(vigil_monitor_find(m, "a")), 0);
    send_hb(m, 30 * S, "a", 1, 3, 0, NULL);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_DEAD);
    send_hb(m, 31 * S, "a", 1, 4, 0, NULL);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_ALIVE);
    struct vigil_event ev = next_event(m);
    assert_int_equal(ev.old_state, VIGIL_STATE_DEAD);
    assert_string_equal(ev.reason, "recovered");
    no_event(m);
    vigil_monitor_free(m);
}

static void test_goodbye_is_left_not_dead(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    send_hb(m, 0, "a", 1, 1, 0, NULL);
    send_hb(m, 1 * S, "a", 1, 2, VIGIL_FLAG_LEAVING, NULL);
    next_event(m);
    struct vigil_event ev = next_event(m);
    assert_int_equal(ev.new_state, VIGIL_STATE_LEFT);
    assert_string_equal(ev.reason, "goodbye");
    assert_int_equal(vigil_monitor_next_deadline(m), VIGIL_TIME_NEVER);
    tick(m, 100 * S);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_LEFT);
    no_event(m);
    /* A heartbeat of the same generation does not undo the goodbye at once. */
    send_hb(m, 150 * S, "a", 1, 3, 0, NULL);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_LEFT);
    /* A new generation (a restart) brings it back at once: the goodbye does not outlive it. */
    send_hb(m, 200 * S, "a", 2, 1, 0, NULL);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_ALIVE);
    do
        ev = next_event(m);
    while (ev.type != VIGIL_EVENT_STATE);
    assert_string_equal(ev.reason, "rejoined");
    send_hb(m, 201 * S, "a", 2, 2, 0, NULL);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_ALIVE);
    vigil_monitor_free(m);
}

static void test_replay_does_not_refresh(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    send_hb(m, 0, "a", 5, 10, 0, NULL);
    vigil_time_t d = vigil_monitor_next_deadline(m);
    assert_int_equal(send_hb(m, 1 * S, "a", 5, 10, 0, NULL), -VIGIL_ESTALE);
    assert_int_equal(send_hb(m, 1 * S, "a", 5, 9, 0, NULL), -VIGIL_ESTALE);
    assert_int_equal(send_hb(m, 1 * S, "a", 4, 99, 0, NULL), -VIGIL_ESTALE);
    assert_int_equal(vigil_monitor_next_deadline(m), d);
    assert_int_equal(vigil_node_last_heard(vigil_monitor_find(m, "a")), 0);
    assert_int_equal(vigil_monitor_stats(m)->stale, 3);
    /* A replayed goodbye cannot make the node leave either. */
    assert_int_equal(send_hb(m, 1 * S, "a", 5, 10, VIGIL_FLAG_LEAVING, NULL), -VIGIL_ESTALE);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_ALIVE);
    /* A restart: a larger generation, sequence from 1. */
    assert_int_equal(send_hb(m, 1 * S, "a", 6, 1, 0, NULL), 0);
    assert_int_equal(vigil_node_last_heard(vigil_monitor_find(m, "a")), 1 * S);
    /* The replays did not push the decision back: suspect 2.5 s after the last real one. */
    tick(m, 3500 * MS - 1);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_ALIVE);
    tick(m, 3500 * MS);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_SUSPECT);
    vigil_monitor_free(m);
}

static void test_authentication(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    c.has_key = true;
    memcpy(c.key, KEY, sizeof(KEY));
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    /* Senders tag with the key derived from the cluster key, as the monitor checks. */
    uint8_t mac_key[VIGIL_WIRE_MAC_KEY_LEN];
    vigil_wire_mac_key(mac_key, KEY);
    uint8_t other_cluster[VIGIL_WIRE_KEY_LEN] = {9, 9, 9};
    uint8_t other[VIGIL_WIRE_MAC_KEY_LEN];
    vigil_wire_mac_key(other, other_cluster);
    assert_int_equal(send_hb(m, 0, "a", 1, 1, 0, NULL), -VIGIL_EAUTH);
    assert_int_equal(send_hb(m, 0, "a", 1, 1, 0, other), -VIGIL_EAUTH);
    /* The cluster key itself (its first 16 bytes) is not the tag key. */
    assert_int_equal(send_hb(m, 0, "a", 1, 1, 0, KEY), -VIGIL_EAUTH);
    assert_int_equal(vigil_monitor_stats(m)->auth_failed, 3);
    assert_int_equal(vigil_monitor_node_count(m), 0);
    no_event(m);
    assert_int_equal(send_hb(m, 0, "a", 1, 1, 0, mac_key), 0);
    assert_int_equal(vigil_monitor_node_count(m), 1);
    vigil_monitor_free(m);
}

/* A monitor with the master key KEY: every node has its own key. */
static struct vigil_monitor *master_monitor(void)
{
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    vigil_detector_config_default(&c.detector, VIGIL_DETECTOR_FIXED, S);
    c.detector.suspect_threshold = 2.5;
    c.detector.dead_threshold = 5.0;
    c.has_key = true;
    c.key_is_master = true;
    memcpy(c.key, KEY, sizeof(KEY));
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    static const uint8_t zero[VIGIL_WIRE_KEY_LEN];
    /* The monitor's copy of its settings holds no key. */
    assert_memory_equal(vigil_monitor_config(m)->key, zero, sizeof(zero));
    return m;
}

/* The tag key a node holding only its own node key uses. */
static void node_tag_key(const char *id, uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN])
{
    uint8_t node[VIGIL_WIRE_KEY_LEN];
    assert_int_equal(vigil_wire_node_key(node, KEY, id), 0);
    vigil_wire_mac_key(mac, node);
}

static void test_per_node_keys(void **st)
{
    (void)st;
    struct vigil_monitor *m = master_monitor();
    assert_int_equal(vigil_monitor_declare(m, "web1", 0), 0);
    uint8_t k1[VIGIL_WIRE_MAC_KEY_LEN], k2[VIGIL_WIRE_MAC_KEY_LEN];
    node_tag_key("web1", k1);
    node_tag_key("web2", k2);
    assert_int_equal(send_hb(m, 0, "web1", 1, 1, 0, k1), 0);
    assert_int_equal(send_hb(m, 0, "web2", 1, 1, 0, k2), 0);
    next_event(m);
    next_event(m);
    /*
     * The attack: web2, holding only its own key, forges a goodbye for
     * web1 with the largest generation, to mark it left forever.
     */
    assert_int_equal(send_hb(m, 1 * S, "web1", UINT64_MAX, 1, VIGIL_FLAG_LEAVING, k2),
                     -VIGIL_EAUTH);
    assert_int_equal(send_hb(m, 1 * S, "web1", 1, 2, VIGIL_FLAG_LEAVING, k2), -VIGIL_EAUTH);
    assert_int_equal(vigil_monitor_stats(m)->auth_failed, 2);
    assert_int_equal(state_of(m, "web1"), VIGIL_STATE_ALIVE);
    no_event(m);
    /* Neither the master key's own tag key nor web1's key for another id. */
    uint8_t km[VIGIL_WIRE_MAC_KEY_LEN];
    vigil_wire_mac_key(km, KEY);
    assert_int_equal(send_hb(m, 1 * S, "web1", 1, 2, 0, km), -VIGIL_EAUTH);
    assert_int_equal(send_hb(m, 1 * S, "web3", 1, 1, 0, k1), -VIGIL_EAUTH);
    assert_null(vigil_monitor_find(m, "web3"));
    /* web1's own key works, for web1. */
    assert_int_equal(send_hb(m, 1 * S, "web1", 1, 2, 0, k1), 0);
    assert_int_equal(vigil_node_sequence(vigil_monitor_find(m, "web1")), 2);
    vigil_monitor_free(m);
}

/* A datagram of the mixed stream of test_batch_same_as_single. */
struct mixed {
    uint8_t buf[VIGIL_WIRE_MAX];
    size_t len;
    vigil_time_t at;
};

/*
 * Builds a hostile, realistic stream: heartbeats from more ids than the
 * table takes, in order and repeated (stale), with the wrong node's key,
 * goodbyes, restarts (new generations), cut and flipped datagrams, and
 * nodes falling silent long enough to be suspected and declared dead.
 */
static size_t mixed_stream(struct mixed *out, size_t cap)
{
    enum { IDS = 300 };
    static uint64_t seq[IDS], gen[IDS];
    uint32_t rnd = 2463534242u;
    vigil_time_t now = 0;
    size_t n = 0;
    for (int i = 0; i < IDS; i++)
        gen[i] = 1, seq[i] = 0;
    while (n < cap) {
        rnd ^= rnd << 13, rnd ^= rnd >> 17, rnd ^= rnd << 5;
        int id = (int)(rnd % IDS);
        /* A tenth of the ids are silent in every other 30 s: suspect, dead, back. */
        if (id % 10 == 0 && (now / (30 * S)) % 2 == 1) {
            now += 3 * MS;
            continue;
        }
        char name[16];
        snprintf(name, sizeof(name), "node-%03d", id);
        struct vigil_heartbeat hb;
        memset(&hb, 0, sizeof(hb));
        snprintf(hb.id, sizeof(hb.id), "%s", name);
        unsigned kind = (rnd >> 8) % 100;
        if (kind == 0)
            gen[id]++, seq[id] = 0; /* a restart */
        hb.generation = gen[id];
        hb.sequence = kind == 1 && seq[id] > 0 ? seq[id] : ++seq[id]; /* 1: a replay */
        hb.flags = kind == 2 ? VIGIL_FLAG_LEAVING : 0;
        hb.interval_ms = 1000;
        hb.send_time_us = 1700000000000000LL;
        hb.status.load1_milli = (uint32_t)(rnd % 4000);
        uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN];
        /* 3: signed with another node's key. */
        node_tag_key(kind == 3 ? "node-999" : name, mac);
        int len = vigil_wire_encode(&hb, mac, out[n].buf, sizeof(out[n].buf));
        assert_true(len > 0);
        out[n].len = (size_t)len;
        if (kind == 4)
            out[n].len = (size_t)len / 2; /* cut */
        if (kind == 5)
            out[n].buf[(rnd >> 16) % (unsigned)len] ^= 0x40; /* flipped */
        now += (vigil_time_t)(rnd % 7) * MS;
        out[n].at = now;
        n++;
    }
    return n;
}

static void expect_same_events(struct vigil_monitor *a, struct vigil_monitor *b)
{
    struct vigil_event ea, eb;
    for (;;) {
        bool ha = vigil_monitor_poll_event(a, &ea), hb = vigil_monitor_poll_event(b, &eb);
        assert_int_equal(ha, hb);
        if (!ha)
            return;
        assert_int_equal(ea.seq, eb.seq);
        assert_int_equal(ea.time, eb.time);
        assert_string_equal(ea.node, eb.node);
        assert_int_equal(ea.old_state, eb.old_state);
        assert_int_equal(ea.new_state, eb.new_state);
        assert_string_equal(ea.reason, eb.reason);
        assert_true(ea.level == eb.level);
    }
}

/*
 * vigil_monitor_on_batch does exactly what as many calls of
 * vigil_monitor_on_datagram do: the same answer for every datagram, the
 * same events at the same times, the same counters and nodes. Batches of
 * every size from 1 to 130, the daemon's deadlines between them.
 */
static void test_batch_same_as_single(void **st)
{
    (void)st;
    enum { N = 40000 };
    struct mixed *d = malloc(N * sizeof(*d));
    assert_non_null(d);
    size_t n = mixed_stream(d, N);
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    c.has_key = true;
    c.key_is_master = true;
    memcpy(c.key, KEY, sizeof(KEY));
    c.max_nodes = 250;
    struct vigil_monitor *a, *b;
    assert_int_equal(vigil_monitor_new(&c, 0, &a), 0);
    assert_int_equal(vigil_monitor_new(&c, 0, &b), 0);
    struct vigil_addr from = {.family = 2, .port = 4000, .addr = {127, 0, 0, 1}};
    static struct vigil_monitor_dgram md[130];
    size_t accepted = 0, refused = 0, step = 1;
    for (size_t i = 0; i < n; i += step, step = step % 130 + 1) {
        size_t k = n - i < step ? n - i : step;
        for (size_t j = 0; j < k; j++)
            md[j] = (struct vigil_monitor_dgram){
                .buf = d[i + j].buf, .len = d[i + j].len, .at = d[i + j].at, .from = &from};
        vigil_monitor_on_batch(b, md, k);
        for (size_t j = 0; j < k; j++) {
            int rc = vigil_monitor_on_datagram(a, d[i + j].at, d[i + j].buf, d[i + j].len, &from);
            assert_int_equal(md[j].rc, rc);
            rc == 0 ? accepted++ : refused++;
        }
        vigil_time_t t = d[i + k - 1].at;
        tick(a, t);
        tick(b, t);
        expect_same_events(a, b);
    }
    /* The stream was what it meant to be: mostly accepted, every kind of refusal. */
    const struct vigil_monitor_stats *sa = vigil_monitor_stats(a), *sb = vigil_monitor_stats(b);
    assert_true(accepted > n / 2 && refused > n / 50);
    assert_true(sa->stale > 0 && sa->auth_failed > 0 && sa->malformed > 0 && sa->table_full > 0);
    assert_true(sa->events > 300);
    assert_memory_equal(sa, sb, sizeof(*sa));
    assert_int_equal(vigil_monitor_node_count(a), vigil_monitor_node_count(b));
    for (size_t i = 0; i < vigil_monitor_node_count(a); i++) {
        const struct vigil_node *na = vigil_monitor_node_at(a, i);
        const struct vigil_node *nb = vigil_monitor_find(b, vigil_node_id(na));
        assert_non_null(nb);
        assert_int_equal(vigil_node_state(na), vigil_node_state(nb));
        assert_int_equal(vigil_node_sequence(na), vigil_node_sequence(nb));
        assert_int_equal(vigil_node_generation(na), vigil_node_generation(nb));
    }
    vigil_monitor_free(a);
    vigil_monitor_free(b);
    free(d);
}

static void test_future_refused(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    const int64_t wall = 1700000000000000LL; /* send_hb's send time */
    /* Before the monitor knows the time, nothing is in the future. */
    assert_int_equal(send_hb(m, 0, "a", UINT64_MAX - 1, 1, 0, NULL), 0);
    vigil_monitor_set_wall(m, 0, wall);
    const uint64_t ahead = 600ull * 1000000; /* the default max_ahead, in us */
    assert_int_equal(send_hb(m, 1 * S, "b", (uint64_t)wall + 1000000 + ahead + 1, 1, 0, NULL),
                     -VIGIL_EFUTURE);
    assert_int_equal(vigil_monitor_stats(m)->future, 1);
    assert_null(vigil_monitor_find(m, "b"));
    /* The window moves with the monitor's clock: 1 s later, that is exactly the limit. */
    assert_int_equal(send_hb(m, 2 * S, "b", (uint64_t)wall + 1000000 + ahead + 1, 1, 0, NULL), 0);
    /* Old generations are fine (a node may run for years); small counters too. */
    assert_int_equal(send_hb(m, 2 * S, "c", 1, 1, 0, NULL), 0);
    /* The forged goodbye with the largest generation is refused. */
    assert_int_equal(send_hb(m, 2 * S, "c", UINT64_MAX, 1, VIGIL_FLAG_LEAVING, NULL),
                     -VIGIL_EFUTURE);
    assert_int_equal(state_of(m, "c"), VIGIL_STATE_ALIVE);
    vigil_monitor_free(m);

    /* A send time far ahead is refused too (send_hb sends wall + 0). */
    m = fixed_monitor();
    vigil_monitor_set_wall(m, 0, wall - (int64_t)ahead - 1);
    assert_int_equal(send_hb(m, 0, "a", 1, 1, 0, NULL), -VIGIL_EFUTURE);
    vigil_monitor_set_wall(m, 0, wall - (int64_t)ahead);
    assert_int_equal(send_hb(m, 0, "a", 1, 1, 0, NULL), 0);
    vigil_monitor_free(m);
}

static void test_restore_high_water_mark(void **st)
{
    (void)st;
    struct vigil_monitor *m = master_monitor();
    uint8_t k[VIGIL_WIRE_MAC_KEY_LEN];
    node_tag_key("web1", k);
    assert_int_equal(vigil_monitor_restore(m, "web1", 7, 100, 0), 0);
    assert_int_equal(vigil_monitor_restore(m, "bad id", 7, 100, 0), -VIGIL_EBADID);
    /* A lower mark changes nothing. */
    assert_int_equal(vigil_monitor_restore(m, "web1", 7, 50, 0), 0);
    assert_int_equal(state_of(m, "web1"), VIGIL_STATE_UNKNOWN);
    assert_int_equal(vigil_monitor_next_deadline(m), VIGIL_TIME_NEVER);
    /* Replays up to the mark change nothing. */
    assert_int_equal(send_hb(m, 1 * S, "web1", 7, 100, 0, k), -VIGIL_ESTALE);
    assert_int_equal(send_hb(m, 1 * S, "web1", 6, 500, VIGIL_FLAG_LEAVING, k), -VIGIL_ESTALE);
    assert_int_equal(state_of(m, "web1"), VIGIL_STATE_UNKNOWN);
    no_event(m);
    /* The node's next real heartbeat is taken, with the key derived at restore. */
    assert_int_equal(send_hb(m, 1 * S, "web1", 7, 101, 0, k), 0);
    assert_int_equal(state_of(m, "web1"), VIGIL_STATE_ALIVE);
    vigil_monitor_free(m);
}

/* A restarted monitor continues the numbering of its events; it never goes back. */
static void test_event_seq_continues(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    vigil_monitor_set_event_seq(m, 41);
    struct vigil_event ev;
    assert_int_equal(send_hb(m, 0, "a", 1, 1, 0, NULL), 0);
    assert_true(vigil_monitor_poll_event(m, &ev));
    assert_int_equal(ev.seq, 42);
    /* Lower than what was handed out: ignored. */
    vigil_monitor_set_event_seq(m, 10);
    assert_int_equal(send_hb(m, 0, "b", 1, 1, 0, NULL), 0);
    assert_true(vigil_monitor_poll_event(m, &ev));
    assert_int_equal(ev.seq, 43);
    vigil_monitor_free(m);
}

/*
 * A storm of events (70,000 nodes registering with nobody reading) grows
 * the queue of pending events; they all come out, in order, across a wrap
 * of the ring, and once the queue is empty its memory goes back to a few
 * thousand slots. Events after that still come in order.
 */
static void test_event_queue_shrinks_after_storm(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    vigil_detector_config_default(&c.detector, VIGIL_DETECTOR_FIXED, S);
    c.max_nodes = 80000;
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    size_t mem0 = vigil_monitor_memory(m);
    char id[32];
    const unsigned storm = 70000;
    for (unsigned i = 0; i < storm; i++) {
        snprintf(id, sizeof(id), "n%05u", i);
        assert_int_equal(send_hb(m, 0, id, 1, 1, 0, NULL), 0);
    }
    size_t mem_full = vigil_monitor_memory(m);
    /* 131,072 slots for 70,000 events: the queue is most of the growth. */
    assert_true(mem_full - mem0 >= (131072 - 64) * sizeof(struct vigil_event));
    uint64_t seq = 0;
    unsigned got = 0;
    for (; got < storm / 2; got++) {
        struct vigil_event ev = next_event(m);
        snprintf(id, sizeof(id), "n%05u", got);
        assert_string_equal(ev.node, id);
        assert_true(seq == 0 || ev.seq == seq + 1);
        seq = ev.seq;
    }
    /* More while half drained: behind the others, and the queue keeps its size meanwhile. */
    for (unsigned i = storm; i < storm + 10; i++) {
        snprintf(id, sizeof(id), "n%05u", i);
        assert_int_equal(send_hb(m, 0, id, 1, 1, 0, NULL), 0);
    }
    assert_int_equal(vigil_monitor_memory(m), mem_full);
    for (; got < storm + 10; got++) {
        struct vigil_event ev = next_event(m);
        snprintf(id, sizeof(id), "n%05u", got);
        assert_string_equal(ev.node, id);
        assert_int_equal(ev.seq, seq + 1);
        seq = ev.seq;
    }
    no_event(m);
    assert_int_equal(vigil_monitor_memory(m),
                     mem_full - (131072 - 4096) * sizeof(struct vigil_event));
    /* The small queue works: one event, and 5,000 (past its 4,096 slots), in order. */
    for (unsigned i = 0; i < 5001; i++) {
        snprintf(id, sizeof(id), "n%05u", storm + 10 + i);
        assert_int_equal(send_hb(m, 0, id, 1, 1, 0, NULL), 0);
        if (i == 0) {
            struct vigil_event ev = next_event(m);
            assert_int_equal(ev.seq, ++seq);
            no_event(m);
        }
    }
    for (unsigned i = 1; i < 5001; i++) {
        struct vigil_event ev = next_event(m);
        snprintf(id, sizeof(id), "n%05u", storm + 10 + i);
        assert_string_equal(ev.node, id);
        assert_int_equal(ev.seq, ++seq);
    }
    no_event(m);
    vigil_monitor_free(m);
}

static void test_garbage_counted(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    uint8_t junk[64] = {'V', 'G', 1, 1, 0, 200};
    assert_true(vigil_monitor_on_datagram(m, 0, junk, sizeof(junk), NULL) < 0);
    assert_true(vigil_monitor_on_datagram(m, 0, junk, 0, NULL) < 0);
    assert_int_equal(vigil_monitor_stats(m)->malformed, 2);
    assert_int_equal(vigil_monitor_stats(m)->datagrams, 2);
    assert_int_equal(vigil_monitor_node_count(m), 0);
    vigil_monitor_free(m);
}

static void test_declared_never_heard(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    assert_int_equal(vigil_monitor_declare(m, "db1", 0), 0);
    assert_int_equal(vigil_monitor_declare(m, "db1", 0), -VIGIL_EEXIST);
    assert_int_equal(vigil_monitor_declare(m, "bad id", 0), -VIGIL_EBADID);
    assert_int_equal(state_of(m, "db1"), VIGIL_STATE_UNKNOWN);
    tick(m, 10 * S - 1);
    assert_int_equal(state_of(m, "db1"), VIGIL_STATE_UNKNOWN);
    tick(m, 10 * S);
    assert_int_equal(state_of(m, "db1"), VIGIL_STATE_DEAD);
    struct vigil_event ev = next_event(m);
    assert_string_equal(ev.reason, "never heard");
    assert_int_equal(ev.since_last, -1);
    vigil_monitor_free(m);
}

static void test_declared_then_heard(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    vigil_monitor_declare(m, "db1", 0);
    send_hb(m, 3 * S, "db1", 1, 1, 0, NULL);
    assert_int_equal(state_of(m, "db1"), VIGIL_STATE_ALIVE);
    tick(m, 5500 * MS);
    tick(m, 8 * S);
    /* The grace deadline is gone; the detector's deadline replaced it. */
    assert_int_equal(state_of(m, "db1"), VIGIL_STATE_DEAD);
    assert_true(vigil_node_declared(vigil_monitor_find(m, "db1")));
    vigil_monitor_free(m);
}

static void test_no_auto_register(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    c.auto_register = false;
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    vigil_monitor_declare(m, "known", 0);
    assert_int_equal(send_hb(m, 0, "stranger", 1, 1, 0, NULL), -VIGIL_EUNKNOWN);
    assert_int_equal(send_hb(m, 0, "known", 1, 1, 0, NULL), 0);
    assert_int_equal(vigil_monitor_stats(m)->unknown_node, 1);
    assert_int_equal(vigil_monitor_node_count(m), 1);
    vigil_monitor_free(m);
}

/*
 * A status is kept in 24 bytes while its 64-bit figures fit in 32 bits,
 * and whole otherwise: every figure reads back exactly, either way.
 */
static void test_status_wide_figures(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    snprintf(hb.id, sizeof(hb.id), "big");
    hb.generation = 1;
    hb.interval_ms = 1000;
    size_t mem0 = vigil_monitor_memory(m);
    for (uint64_t seq = 1; seq <= 4; seq++) {
        bool wide = seq % 2 == 0;
        hb.sequence = seq;
        hb.status.load1_milli = UINT32_MAX;
        hb.status.load15_milli = (uint32_t)seq;
        hb.status.mem_total_kib = wide ? UINT64_MAX : UINT32_MAX;
        hb.status.mem_avail_kib = wide ? (UINT64_C(1) << 40) + seq : seq;
        hb.status.uptime_s = wide ? (UINT64_C(1) << 32) : UINT32_MAX - 1;
        uint8_t buf[VIGIL_WIRE_MAX];
        int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
        assert_true(len > 0);
        assert_int_equal(
            vigil_monitor_on_datagram(m, (vigil_time_t)seq * S, buf, (size_t)len, NULL), 0);
        struct vigil_status got = vigil_node_status(vigil_monitor_find(m, "big"));
        assert_int_equal(got.load1_milli, hb.status.load1_milli);
        assert_int_equal(got.load5_milli, hb.status.load5_milli);
        assert_int_equal(got.load15_milli, hb.status.load15_milli);
        assert_true(got.mem_total_kib == hb.status.mem_total_kib);
        assert_true(got.mem_avail_kib == hb.status.mem_avail_kib);
        assert_true(got.uptime_s == hb.status.uptime_s);
        assert_false(vigil_node_status_stale(vigil_monitor_find(m, "big")));
        /* A whole status is counted while it is kept, and given back after. */
        assert_int_equal(vigil_monitor_memory(m), mem0 + (wide ? sizeof(struct vigil_status) : 0));
    }
    vigil_monitor_free(m);
}

static void test_table_full_keeps_known_nodes(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    c.max_nodes = 2;
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    assert_int_equal(send_hb(m, 0, "a", 1, 1, 0, NULL), 0);
    assert_int_equal(send_hb(m, 0, "b", 1, 1, 0, NULL), 0);
    char id[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "spray%d", i);
        assert_int_equal(send_hb(m, 0, id, 1, 1, 0, NULL), -VIGIL_EFULL);
    }
    assert_int_equal(vigil_monitor_stats(m)->table_full, 1000);
    assert_int_equal(send_hb(m, 1 * S, "a", 1, 2, 0, NULL), 0);
    assert_non_null(vigil_monitor_find(m, "b"));
    assert_null(vigil_monitor_find(m, "spray1"));
    vigil_monitor_free(m);
}

static void test_monitor_pause_convicts_nobody(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    for (int i = 0; i < 10; i++) {
        send_hb(m, i * S, "a", 1, (uint64_t)i + 1, 0, NULL);
        send_hb(m, i * S, "b", 1, (uint64_t)i + 1, 0, NULL);
    }
    next_event(m);
    next_event(m);
    /* The monitor is stopped from 9.2 s to 60 s; heartbeats wait in the socket. */
    tick(m, 60 * S);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_ALIVE);
    assert_int_equal(state_of(m, "b"), VIGIL_STATE_ALIVE);
    struct vigil_event ev = next_event(m);
    assert_int_equal(ev.type, VIGIL_EVENT_PAUSE);
    assert_true(ev.since_last > 48 * S);
    no_event(m);
    assert_int_equal(vigil_monitor_stats(m)->pauses, 1);
    /* Backlogged heartbeats of a arrive; b really died during the pause. */
    for (int i = 0; i <= 5; i++) {
        tick(m, (60 + i) * S - 1);
        send_hb(m, (60 + i) * S - 1, "a", 1, 11 + (uint64_t)i, 0, NULL);
        if (i == 2) {
            tick(m, 62500 * MS - 1);
            assert_int_equal(state_of(m, "b"), VIGIL_STATE_ALIVE);
            tick(m, 62500 * MS);
            assert_int_equal(state_of(m, "b"), VIGIL_STATE_SUSPECT);
        }
    }
    /* b gets a full detection period from the end of the pause, not more. */
    tick(m, 65 * S - 1);
    assert_int_equal(state_of(m, "b"), VIGIL_STATE_SUSPECT);
    tick(m, 65 * S);
    assert_int_equal(state_of(m, "b"), VIGIL_STATE_DEAD);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_ALIVE);
    vigil_monitor_free(m);
}

/* Heartbeats that queued up during a pause arrive together: their gaps are not learned. */
static void test_backlog_after_pause_not_learned(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    uint64_t seq = 1;
    for (int i = 0; i < 40; i++) {
        tick(m, i * S);
        send_hb(m, i * S, "q", 1, seq++, 0, NULL);
    }
    const struct vigil_node *n = vigil_monitor_find(m, "q");
    vigil_time_t mean0, sd0, mean, sd;
    vigil_detector_stats(vigil_node_detector_state(n), &mean0, &sd0);
    /* Stopped from 39 s to 50 s; ten heartbeats are read at 50 s, then steady again. */
    for (int i = 0; i < 10; i++)
        send_hb(m, 50 * S + i * 1000, "q", 1, seq++, 0, NULL);
    assert_int_equal(vigil_monitor_stats(m)->pauses, 1);
    for (int i = 51; i < 55; i++) {
        tick(m, i * S);
        send_hb(m, i * S, "q", 1, seq++, 0, NULL);
    }
    vigil_detector_stats(vigil_node_detector_state(n), &mean, &sd);
    assert_true(mean > 990 * MS && mean < 1010 * MS);
    assert_true(sd < sd0 + 10 * MS);
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_ALIVE);
    vigil_monitor_free(m);
}

static void test_small_lateness_is_not_a_pause(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    vigil_detector_config_default(&c.detector, VIGIL_DETECTOR_FIXED, S);
    c.detector.suspect_threshold = 2.5;
    c.detector.dead_threshold = 5.0;
    c.pause_tolerance = 4 * S;
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    send_hb(m, 0, "a", 1, 1, 0, NULL);
    next_event(m);
    /* Three seconds late, within a 4 s tolerance: decisions go ahead. */
    tick(m, 5500 * MS);
    assert_int_equal(state_of(m, "a"), VIGIL_STATE_DEAD);
    assert_int_equal(vigil_monitor_stats(m)->pauses, 0);
    /* Both transitions are reported, in order. */
    assert_int_equal(next_event(m).new_state, VIGIL_STATE_SUSPECT);
    assert_int_equal(next_event(m).new_state, VIGIL_STATE_DEAD);
    vigil_monitor_free(m);
}

static void test_equal_deadlines_fire_in_order(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    const char *ids[] = {"n3", "n1", "n4", "n0", "n2"};
    for (int i = 0; i < 5; i++)
        send_hb(m, 0, ids[i], 1, 1, 0, NULL);
    for (int i = 0; i < 5; i++)
        next_event(m);
    tick(m, 2500 * MS);
    for (int i = 0; i < 5; i++)
        assert_string_equal(next_event(m).node, ids[i]);
    vigil_monitor_free(m);
}

static void test_phi_detection_boundary(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    /* Steady heartbeats with a little jitter, then silence. */
    vigil_time_t t = 0;
    for (int i = 1; i <= 60; i++) {
        t += S + (i % 3 - 1) * 20 * MS;
        tick(m, t);
        send_hb(m, t, "p", 1, (uint64_t)i, 0, NULL);
    }
    const struct vigil_node *n = vigil_monitor_find(m, "p");
    vigil_time_t dead_at = vigil_detector_crossing(&c.detector, vigil_node_detector_state(n),
                                                   c.detector.dead_threshold);
    vigil_time_t suspect_at = vigil_detector_crossing(&c.detector, vigil_node_detector_state(n),
                                                      c.detector.suspect_threshold);
    assert_true(suspect_at > t + S);
    assert_true(dead_at > suspect_at);
    /* Detection within a few seconds of the last heartbeat with the defaults. */
    assert_true(dead_at - t < 5 * S);
    tick(m, suspect_at - 1);
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_ALIVE);
    tick(m, suspect_at);
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_SUSPECT);
    tick(m, dead_at - 1);
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_SUSPECT);
    tick(m, dead_at);
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_DEAD);
    struct vigil_event ev;
    while (vigil_monitor_poll_event(m, &ev))
        ;
    assert_int_equal(ev.new_state, VIGIL_STATE_DEAD);
    assert_true(ev.level >= c.detector.dead_threshold);
    assert_true(ev.mean > 990 * MS && ev.mean < 1010 * MS);
    assert_true(ev.std_dev > 0);
    vigil_monitor_free(m);
}

static void test_custom_status_stored(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    strcpy(hb.id, "c");
    hb.generation = 1;
    hb.sequence = 1;
    hb.interval_ms = 1000;
    hb.n_custom = 2;
    strcpy(hb.custom[0].key, "role");
    strcpy(hb.custom[0].value, "web");
    strcpy(hb.custom[1].key, "queue");
    strcpy(hb.custom[1].value, "17");
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
    assert_int_equal(vigil_monitor_on_datagram(m, 0, buf, (size_t)len, NULL), 0);
    const struct vigil_node *n = vigil_monitor_find(m, "c");
    assert_int_equal(vigil_node_custom_count(n), 2);
    assert_string_equal(vigil_node_custom(n, 1)->key, "queue");
    assert_string_equal(vigil_node_custom(n, 1)->value, "17");
    size_t mem = vigil_monitor_memory(m);
    /* The same status again allocates nothing. */
    hb.sequence = 2;
    len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
    vigil_monitor_on_datagram(m, S, buf, (size_t)len, NULL);
    assert_int_equal(vigil_monitor_memory(m), mem);
    hb.sequence = 3;
    hb.n_custom = 0;
    len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
    vigil_monitor_on_datagram(m, 2 * S, buf, (size_t)len, NULL);
    assert_int_equal(vigil_node_custom_count(n), 0);
    assert_null(vigil_node_custom(n, 0));
    vigil_monitor_free(m);
}

static int send_hb_interval(struct vigil_monitor *m, vigil_time_t now, const char *id, uint64_t seq,
                            uint32_t interval_ms)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    snprintf(hb.id, sizeof(hb.id), "%s", id);
    hb.generation = 1;
    hb.sequence = seq;
    hb.interval_ms = interval_ms;
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
    assert_true(len > 0);
    return vigil_monitor_on_datagram(m, now, buf, (size_t)len, NULL);
}

/* A node that says it sends every 200 ms is judged on its own time scale. */
static void test_timeouts_follow_sender_interval(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    send_hb_interval(m, 0, "fast", 1, 200);
    send_hb_interval(m, 0, "slow", 1, 2000);
    /* fixed 2.5 s / 5 s for 1 s heartbeats: 0.5 s / 1 s at 200 ms, 5 s / 10 s at 2 s. */
    tick(m, 500 * MS - 1);
    assert_int_equal(state_of(m, "fast"), VIGIL_STATE_ALIVE);
    tick(m, 500 * MS);
    assert_int_equal(state_of(m, "fast"), VIGIL_STATE_SUSPECT);
    tick(m, 1000 * MS - 1);
    assert_int_equal(state_of(m, "fast"), VIGIL_STATE_SUSPECT);
    tick(m, 1000 * MS);
    assert_int_equal(state_of(m, "fast"), VIGIL_STATE_DEAD);
    struct vigil_detector_config tmp;
    const struct vigil_node *slow = vigil_monitor_find(m, "slow");
    assert_true(vigil_monitor_node_detector(m, slow, &tmp)->dead_threshold == 10.0);
    for (vigil_time_t t = 1500 * MS; t < 5 * S; t += 500 * MS)
        tick(m, t);
    assert_int_equal(state_of(m, "slow"), VIGIL_STATE_ALIVE);
    tick(m, 5 * S);
    assert_int_equal(state_of(m, "slow"), VIGIL_STATE_SUSPECT);
    vigil_monitor_free(m);

    /* Without adaptation the monitor's own settings hold for everyone. */
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    vigil_detector_config_default(&c.detector, VIGIL_DETECTOR_FIXED, S);
    c.adapt_interval = false;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    send_hb_interval(m, 0, "fast", 1, 200);
    tick(m, 2500 * MS - 1);
    assert_int_equal(state_of(m, "fast"), VIGIL_STATE_ALIVE);
    vigil_monitor_free(m);

    /* Phi: a 100 ms sender is convicted within half a second of silence, not 4.5 s. */
    vigil_monitor_config_default(&c);
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    for (int i = 0; i < 40; i++) {
        tick(m, i * 100 * MS);
        send_hb_interval(m, i * 100 * MS, "p", (uint64_t)i + 1, 100);
    }
    const struct vigil_node *p = vigil_monitor_find(m, "p");
    vigil_time_t dead_at = vigil_detector_crossing(vigil_monitor_node_detector(m, p, &tmp),
                                                   vigil_node_detector_state(p), 8.0);
    assert_true(dead_at - 3900 * MS > 400 * MS && dead_at - 3900 * MS < 500 * MS);
    vigil_monitor_free(m);
}

/*
 * The heartbeat path leaves a steady node's heap entry in place and re-keys
 * it when it comes up. Whatever the intervals (including long ones that are
 * learned while suspect and later evicted, which pull the crossing
 * earlier), every suspicion must fall exactly on the detector's crossing.
 */
static void test_decisions_exact_despite_lazy_deadlines(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    c.detector.window = 8;
    c.pause_tolerance = 3600 * S;
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    uint64_t rng = 88172645463325252ULL;
    vigil_time_t t = 0;
    send_hb(m, t, "z", 1, 1, 0, NULL);
    const struct vigil_node *n = vigil_monitor_find(m, "z");
    int suspicions = 0;
    for (uint64_t seq = 2; seq < 3000; seq++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        vigil_time_t cross = vigil_detector_crossing(&c.detector, vigil_node_detector_state(n),
                                                     c.detector.suspect_threshold);
        /* Mostly regular, sometimes late past the crossing, rarely very late. */
        vigil_time_t gap = (vigil_time_t)(800 + rng % 400) * MS;
        if (rng % 23 == 0)
            gap = cross - t + (vigil_time_t)(rng % 2000) * MS;
        if (rng % 97 == 0)
            gap = 30 * S;
        vigil_time_t next = t + gap;
        if (next >= cross && vigil_node_state(n) == VIGIL_STATE_ALIVE) {
            tick(m, cross - 1);
            assert_int_equal(vigil_node_state(n), VIGIL_STATE_ALIVE);
            tick(m, cross);
            assert_int_equal(vigil_node_state(n), VIGIL_STATE_SUSPECT);
            suspicions++;
        }
        for (vigil_time_t at = vigil_monitor_next_deadline(m); at < next;
             at = vigil_monitor_next_deadline(m))
            tick(m, at);
        t = next;
        tick(m, t);
        send_hb(m, t, "z", 1, seq, 0, NULL);
        if (vigil_node_state(n) == VIGIL_STATE_DEAD) {
            /* Bring it back for the next round. */
            for (uint32_t r = 1; r < c.rise; r++) {
                t += S;
                tick(m, t);
                send_hb(m, t, "z", 1, ++seq, 0, NULL);
            }
        }
        assert_int_equal(vigil_node_state(n), VIGIL_STATE_ALIVE);
    }
    assert_true(suspicions > 50);
    vigil_monitor_free(m);
}

static void test_config_check(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    const char *why = NULL;
    vigil_monitor_config_default(&c);
    assert_int_equal(vigil_monitor_config_check(&c, &why), 0);
    c.rise = 0;
    assert_int_equal(vigil_monitor_config_check(&c, &why), -VIGIL_EINVAL);
    assert_non_null(why);
    vigil_monitor_config_default(&c);
    c.max_nodes = 0;
    assert_int_equal(vigil_monitor_config_check(&c, &why), -VIGIL_EINVAL);
    vigil_monitor_config_default(&c);
    c.pause_tolerance = 0;
    assert_int_equal(vigil_monitor_config_check(&c, &why), -VIGIL_EINVAL);
    assert_int_equal(vigil_state_parse("dead"), VIGIL_STATE_DEAD);
    assert_int_equal(vigil_state_parse("zombie"), -1);
    assert_string_equal(vigil_state_name(VIGIL_STATE_LEFT), "left");
}

/* ---- wire version 2: beats and full statuses ----------------------------- */

/*
 * Sends a version 2 datagram: a beat (role NULL) or a full status with
 * load1 and, if role is not empty, the custom pair role=<role>.
 */
static int send_v2(struct vigil_monitor *m, vigil_time_t now, uint64_t gen, uint64_t seq,
                   uint16_t status_version, const char *role, uint32_t load1, const uint8_t *key)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    strcpy(hb.id, "n2");
    hb.version = VIGIL_WIRE_V2;
    hb.type = role ? VIGIL_MSG_STATUS : VIGIL_MSG_BEAT;
    hb.status_version = status_version;
    hb.generation = gen;
    hb.sequence = seq;
    hb.interval_ms = 1000;
    hb.send_time_us = 1700000000000000LL + (int64_t)seq;
    hb.status.load1_milli = load1;
    hb.status.uptime_s = 99;
    if (role && *role) {
        hb.n_custom = 1;
        strcpy(hb.custom[0].key, "role");
        strcpy(hb.custom[0].value, role);
    }
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, key, buf, sizeof(buf));
    assert_true(len > 0);
    if (!role)
        assert_true(len <= VIGIL_WIRE_BEAT_MAX);
    return vigil_monitor_on_datagram(m, now, buf, (size_t)len, NULL);
}

static struct vigil_monitor *keyed_fixed_monitor(void)
{
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    vigil_detector_config_default(&c.detector, VIGIL_DETECTOR_FIXED, S);
    c.detector.suspect_threshold = 2.5;
    c.detector.dead_threshold = 5.0;
    c.has_key = true;
    memcpy(c.key, KEY, sizeof(c.key));
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    return m;
}

static const char *role_of(const struct vigil_node *n)
{
    return vigil_node_custom_count(n) == 1 ? vigil_node_custom(n, 0)->value : NULL;
}

static void test_v2_status_kept_across_beats(void **st)
{
    (void)st;
    uint8_t mk[VIGIL_WIRE_MAC_KEY_LEN];
    vigil_wire_mac_key(mk, KEY);
    struct vigil_monitor *m = keyed_fixed_monitor();
    assert_int_equal(send_v2(m, 0, 5, 1, 1, "db", 250, mk), 0);
    const struct vigil_node *n = vigil_monitor_find(m, "n2");
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_ALIVE);
    assert_false(vigil_node_status_stale(n));
    assert_string_equal(role_of(n), "db");
    size_t mem = vigil_monitor_memory(m);
    /* Beats refresh liveness exactly as v1 heartbeats do, and keep the status. */
    for (uint64_t seq = 2; seq <= 10; seq++) {
        assert_int_equal(send_v2(m, (vigil_time_t)(seq - 1) * S, 5, seq, 1, NULL, 0, mk), 0);
        tick(m, (vigil_time_t)(seq - 1) * S);
    }
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_ALIVE);
    assert_int_equal(vigil_node_heartbeats(n), 10);
    assert_int_equal(vigil_node_sequence(n), 10);
    assert_int_equal(vigil_node_last_heard(n), 9 * S);
    assert_false(vigil_node_status_stale(n));
    assert_string_equal(role_of(n), "db");
    assert_int_equal(vigil_node_status(n).load1_milli, 250);
    assert_int_equal(vigil_node_status(n).uptime_s, 99);
    assert_true(vigil_node_send_time_us(n) == 1700000000000001LL);
    assert_int_equal(vigil_monitor_memory(m), mem);
    /* Suspect 2.5 s after the last beat, not before. */
    tick(m, 9 * S + 2500 * MS - 1);
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_ALIVE);
    tick(m, 9 * S + 2500 * MS);
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_SUSPECT);
    assert_int_equal(vigil_monitor_stats(m)->accepted, 10);
    vigil_monitor_free(m);
}

static void test_v2_stale_until_full_status(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    assert_int_equal(send_v2(m, 0, 5, 1, 1, "db", 250, NULL), 0);
    const struct vigil_node *n = vigil_monitor_find(m, "n2");
    /* A beat names version 2: the stored status stays, marked stale. */
    assert_int_equal(send_v2(m, 1 * S, 5, 2, 2, NULL, 0, NULL), 0);
    assert_true(vigil_node_status_stale(n));
    assert_string_equal(role_of(n), "db");
    assert_int_equal(vigil_node_status(n).load1_milli, 250);
    /* Only a full status clears it, not a beat that names the old version again. */
    assert_int_equal(send_v2(m, 2 * S, 5, 3, 1, NULL, 0, NULL), 0);
    assert_true(vigil_node_status_stale(n));
    assert_int_equal(send_v2(m, 3 * S, 5, 4, 2, "replica", 500, NULL), 0);
    assert_false(vigil_node_status_stale(n));
    assert_string_equal(role_of(n), "replica");
    assert_int_equal(vigil_node_status(n).load1_milli, 500);
    assert_int_equal(send_v2(m, 4 * S, 5, 5, 2, NULL, 0, NULL), 0);
    assert_false(vigil_node_status_stale(n));
    /* A full status that arrives after a newer beat is stale like any old datagram. */
    assert_int_equal(send_v2(m, 5 * S, 5, 7, 3, NULL, 0, NULL), 0);
    assert_int_equal(send_v2(m, 5 * S + 1, 5, 6, 3, "late", 1, NULL), -VIGIL_ESTALE);
    assert_true(vigil_node_status_stale(n));
    assert_string_equal(role_of(n), "replica");
    /* An empty custom status is a status too. */
    assert_int_equal(send_v2(m, 6 * S, 5, 8, 3, "", 0, NULL), 0);
    assert_false(vigil_node_status_stale(n));
    assert_int_equal(vigil_node_custom_count(n), 0);
    vigil_monitor_free(m);
}

static void test_v2_new_generation_resets_status(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    assert_int_equal(send_v2(m, 0, 5, 1, 1, "primary", 250, NULL), 0);
    const struct vigil_node *n = vigil_monitor_find(m, "n2");
    assert_int_equal(send_v2(m, 1 * S, 5, 2, 1, NULL, 0, NULL), 0);
    /* The node restarted; its new generation happens to use the same status version. */
    assert_int_equal(send_v2(m, 2 * S, 6, 1, 1, NULL, 0, NULL), 0);
    assert_int_equal(vigil_node_generation(n), 6);
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_ALIVE);
    assert_true(vigil_node_status_stale(n));
    assert_int_equal(vigil_node_custom_count(n), 0);
    assert_int_equal(vigil_node_status(n).load1_milli, 0);
    assert_true(vigil_node_send_time_us(n) == 0);
    assert_int_equal(send_v2(m, 3 * S, 6, 2, 1, NULL, 0, NULL), 0);
    assert_true(vigil_node_status_stale(n));
    /* The old generation's full status is refused: (generation, sequence) is old. */
    assert_int_equal(send_v2(m, 3 * S + 1, 5, 3, 1, "primary", 250, NULL), -VIGIL_ESTALE);
    assert_true(vigil_node_status_stale(n));
    assert_int_equal(send_v2(m, 4 * S, 6, 3, 1, "replica", 300, NULL), 0);
    assert_false(vigil_node_status_stale(n));
    assert_string_equal(role_of(n), "replica");
    /* A node whose first datagram is a beat is alive, with no status yet. */
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    strcpy(hb.id, "fresh");
    hb.version = VIGIL_WIRE_V2;
    hb.type = VIGIL_MSG_BEAT;
    hb.sequence = 1;
    hb.interval_ms = 1000;
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, NULL, buf, sizeof(buf));
    assert_int_equal(vigil_monitor_on_datagram(m, 5 * S, buf, (size_t)len, NULL), 0);
    n = vigil_monitor_find(m, "fresh");
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_ALIVE);
    assert_true(vigil_node_status_stale(n));
    vigil_monitor_free(m);
}

static void test_v1_and_v2_together(void **st)
{
    (void)st;
    uint8_t mk[VIGIL_WIRE_MAC_KEY_LEN];
    vigil_wire_mac_key(mk, KEY);
    struct vigil_monitor *m = keyed_fixed_monitor();
    /* An old agent: version 1 only. */
    assert_int_equal(send_hb(m, 0, "old", 1, 1, 0, mk), 0);
    assert_int_equal(send_hb(m, 1 * S, "old", 1, 2, 0, mk), 0);
    const struct vigil_node *n = vigil_monitor_find(m, "old");
    assert_false(vigil_node_status_stale(n));
    assert_int_equal(vigil_node_status(n).load1_milli, 250);
    assert_int_equal(vigil_node_heartbeats(n), 2);
    /* A new agent beside it; unauthenticated and wrongly keyed beats are refused. */
    assert_int_equal(send_v2(m, 1 * S, 9, 1, 1, "x", 1, mk), 0);
    assert_int_equal(send_v2(m, 2 * S, 9, 2, 1, NULL, 0, NULL), -VIGIL_EAUTH);
    uint8_t bad[VIGIL_WIRE_MAC_KEY_LEN];
    memcpy(bad, mk, sizeof(bad));
    bad[0] ^= 1;
    assert_int_equal(send_v2(m, 2 * S, 9, 2, 1, NULL, 0, bad), -VIGIL_EAUTH);
    assert_int_equal(vigil_monitor_stats(m)->auth_failed, 2);
    assert_int_equal(send_v2(m, 2 * S, 9, 2, 1, NULL, 0, mk), 0);
    /* A replayed beat does not refresh. */
    assert_int_equal(send_v2(m, 3 * S, 9, 2, 1, NULL, 0, mk), -VIGIL_ESTALE);
    assert_int_equal(vigil_node_last_heard(vigil_monitor_find(m, "n2")), 2 * S);
    /* A goodbye can be a beat. */
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    strcpy(hb.id, "n2");
    hb.version = VIGIL_WIRE_V2;
    hb.type = VIGIL_MSG_BEAT;
    hb.flags = VIGIL_FLAG_LEAVING;
    hb.status_version = 1;
    hb.generation = 9;
    hb.sequence = 3;
    hb.interval_ms = 1000;
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode(&hb, mk, buf, sizeof(buf));
    assert_int_equal(vigil_monitor_on_datagram(m, 3 * S, buf, (size_t)len, NULL), 0);
    assert_int_equal(state_of(m, "n2"), VIGIL_STATE_LEFT);
    assert_false(vigil_node_status_stale(vigil_monitor_find(m, "n2")));
    vigil_monitor_free(m);
}

/* A v2 heartbeat made with key id kid and the keys of master key mk (seal: a sealed status). */
static int send_keyed(struct vigil_monitor *m, vigil_time_t now, const char *id, uint64_t seq,
                      const uint8_t *mk, uint8_t kid, uint8_t type, bool seal)
{
    uint8_t node[VIGIL_WIRE_KEY_LEN], mac[VIGIL_WIRE_MAC_KEY_LEN], sk[VIGIL_WIRE_SEAL_KEY_LEN];
    assert_int_equal(vigil_wire_node_key(node, mk, id), 0);
    vigil_wire_mac_key(mac, node);
    vigil_wire_seal_key(sk, node);
    static const uint8_t nonce[VIGIL_WIRE_SEAL_NONCE_LEN] = {9, 9, 9};
    const struct vigil_wire_keys k = {.mac = mac, .seal = seal ? sk : NULL, .nonce = nonce};
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    snprintf(hb.id, sizeof(hb.id), "%s", id);
    hb.version = VIGIL_WIRE_V2;
    hb.type = type;
    hb.key_id = kid;
    hb.generation = 1;
    hb.sequence = seq;
    hb.interval_ms = 1000;
    hb.n_custom = 1;
    strcpy(hb.custom[0].key, "role");
    strcpy(hb.custom[0].value, "db");
    uint8_t buf[VIGIL_WIRE_MAX];
    int len = vigil_wire_encode_keys(&hb, &k, buf, sizeof(buf));
    assert_true(len > 0);
    return vigil_monitor_on_datagram(m, now, buf, (size_t)len, NULL);
}

/*
 * A master key rotation on a running monitor: the new key is added, nodes
 * move over one by one, the old key is dropped. Not one valid heartbeat
 * is refused on the way, nobody is suspected, and the old key is refused
 * once it is retired.
 */
static void test_key_rotation(void **st)
{
    (void)st;
    static const uint8_t NEW[VIGIL_WIRE_KEY_LEN] = {7, 7, 7, 7, 7};
    struct vigil_monitor *m = master_monitor();
    const char *ids[] = {"a", "b", "c", "d"};
    uint64_t seq = 1;
    vigil_time_t t = 0;
    /* Each round: one heartbeat per node per second; node i moves at round 3 + i. */
    struct vigil_key keys[2] = {{.id = 0, .master = true}, {.id = 1, .master = true}};
    memcpy(keys[0].key, KEY, sizeof(KEY));
    memcpy(keys[1].key, NEW, sizeof(NEW));
    for (int round = 0; round < 12; round++, seq++, t += S) {
        if (round == 2) {
            assert_int_equal(vigil_monitor_set_keys(m, keys, 2), 0);
            uint8_t held[VIGIL_KEYS_MAX];
            assert_int_equal(vigil_monitor_key_ids(m, held, VIGIL_KEYS_MAX), 2);
            assert_true(held[0] == 0 && held[1] == 1);
        }
        if (round == 8) /* every node has moved: retire key 0 */
            assert_int_equal(vigil_monitor_set_keys(m, &keys[1], 1), 0);
        for (int i = 0; i < 4; i++) {
            bool moved = round >= 3 + i;
            assert_int_equal(send_keyed(m, t, ids[i], seq, moved ? NEW : KEY, moved ? 1 : 0,
                                        seq % 5 ? VIGIL_MSG_BEAT : VIGIL_MSG_STATUS, false),
                             0);
            assert_int_equal(vigil_node_key_id(vigil_monitor_find(m, ids[i])), moved ? 1 : 0);
        }
        vigil_monitor_on_expiry(m, t);
    }
    const struct vigil_monitor_stats *s = vigil_monitor_stats(m);
    assert_int_equal(s->auth_failed, 0);
    assert_int_equal(s->accepted, 48);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(state_of(m, ids[i]), VIGIL_STATE_ALIVE);
        next_event(m); /* the first heartbeat: unknown -> alive */
    }
    no_event(m); /* nobody was ever suspected */
    /* Retired: key id 0 is unknown now, even with a valid tag and a new sequence. */
    assert_int_equal(send_keyed(m, t, "a", 100, KEY, 0, VIGIL_MSG_BEAT, false), -VIGIL_EAUTH);
    assert_int_equal(s->unknown_key, 1);
    /* The old key under the new id is wrong too. */
    assert_int_equal(send_keyed(m, t, "a", 101, KEY, 1, VIGIL_MSG_BEAT, false), -VIGIL_EAUTH);
    assert_int_equal(s->auth_failed, 2);
    assert_int_equal(send_keyed(m, t, "a", 102, NEW, 1, VIGIL_MSG_BEAT, false), 0);
    /* Bad sets change nothing. */
    struct vigil_key dup[2] = {keys[1], keys[1]};
    assert_int_equal(vigil_monitor_set_keys(m, dup, 2), -VIGIL_EINVAL);
    assert_int_equal(vigil_monitor_set_keys(m, keys, 0), -VIGIL_EINVAL);
    struct vigil_key big = keys[1];
    big.id = 16;
    assert_int_equal(vigil_monitor_set_keys(m, &big, 1), -VIGIL_EINVAL);
    assert_int_equal(send_keyed(m, t, "a", 103, NEW, 1, VIGIL_MSG_BEAT, false), 0);
    /* The same id with other key bytes: cached node keys are dropped, not trusted. */
    struct vigil_key swapped = {.id = 1, .master = true};
    memcpy(swapped.key, KEY, sizeof(KEY));
    assert_int_equal(vigil_monitor_set_keys(m, &swapped, 1), 0);
    assert_int_equal(send_keyed(m, t, "a", 104, NEW, 1, VIGIL_MSG_BEAT, false), -VIGIL_EAUTH);
    assert_int_equal(send_keyed(m, t, "a", 105, KEY, 1, VIGIL_MSG_BEAT, false), 0);
    vigil_monitor_free(m);

    /* A keyless monitor cannot be given keys later. */
    m = fixed_monitor();
    assert_int_equal(vigil_monitor_set_keys(m, keys, 1), -VIGIL_EINVAL);
    vigil_monitor_free(m);
}

/* From a legacy cluster key to a master key, without a refused heartbeat. */
static void test_key_legacy_to_master(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    c.has_key = true;
    memcpy(c.key, KEY, sizeof(KEY)); /* a legacy cluster key, id 0 */
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    uint8_t legacy[VIGIL_WIRE_MAC_KEY_LEN];
    vigil_wire_mac_key(legacy, KEY);
    assert_int_equal(send_hb(m, 0, "web1", 1, 1, 0, legacy), 0);
    static const uint8_t MASTER[VIGIL_WIRE_KEY_LEN] = {42};
    struct vigil_key keys[2] = {{.id = 0, .master = false}, {.id = 1, .master = true}};
    memcpy(keys[0].key, KEY, sizeof(KEY));
    memcpy(keys[1].key, MASTER, sizeof(MASTER));
    assert_int_equal(vigil_monitor_set_keys(m, keys, 2), 0);
    assert_int_equal(send_hb(m, S, "web1", 1, 2, 0, legacy), 0);
    assert_int_equal(send_keyed(m, 2 * S, "web1", 3, MASTER, 1, VIGIL_MSG_STATUS, true), 0);
    /* With only the master key left, the shared key speaks for nobody. */
    assert_int_equal(vigil_monitor_set_keys(m, &keys[1], 1), 0);
    assert_int_equal(send_hb(m, 3 * S, "web1", 1, 4, 0, legacy), -VIGIL_EAUTH);
    assert_int_equal(send_keyed(m, 3 * S, "web1", 5, MASTER, 1, VIGIL_MSG_BEAT, false), 0);
    assert_int_equal(vigil_node_custom_count(vigil_monitor_find(m, "web1")), 1);
    vigil_monitor_free(m);
}

/* require_sealed: full statuses in clear are refused and counted; beats pass. */
static void test_require_sealed(void **st)
{
    (void)st;
    struct vigil_monitor_config c;
    vigil_monitor_config_default(&c);
    c.has_key = true;
    c.key_is_master = true;
    c.require_sealed = true;
    memcpy(c.key, KEY, sizeof(KEY));
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&c, 0, &m), 0);
    assert_int_equal(send_keyed(m, 0, "db1", 1, KEY, 0, VIGIL_MSG_STATUS, false), -VIGIL_EAUTH);
    assert_int_equal(vigil_monitor_stats(m)->unsealed, 1);
    assert_null(vigil_monitor_find(m, "db1"));
    uint8_t k1[VIGIL_WIRE_MAC_KEY_LEN];
    node_tag_key("db1", k1);
    assert_int_equal(send_hb(m, 0, "db1", 1, 1, 0, k1), -VIGIL_EAUTH); /* version 1 */
    assert_int_equal(vigil_monitor_stats(m)->unsealed, 2);
    assert_int_equal(send_keyed(m, 0, "db1", 2, KEY, 0, VIGIL_MSG_STATUS, true), 0);
    assert_int_equal(send_keyed(m, S, "db1", 3, KEY, 0, VIGIL_MSG_BEAT, false), 0);
    const struct vigil_node *n = vigil_monitor_find(m, "db1");
    assert_int_equal(vigil_node_custom_count(n), 1);
    assert_false(vigil_node_status_stale(n));
    vigil_monitor_free(m);
    /* It needs a key. */
    vigil_monitor_config_default(&c);
    c.require_sealed = true;
    const char *why;
    assert_int_equal(vigil_monitor_config_check(&c, &why), -VIGIL_EINVAL);
}

/* A reload changes the thresholds of a running monitor; states and histories stay. */
static void test_reconfigure(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor(); /* suspect 2.5 s, dead 5 s, rise 2 */
    assert_int_equal(send_hb(m, 0, "a", 1, 1, 0, NULL), 0);
    assert_int_equal(send_hb(m, 0, "b", 1, 1, 0, NULL), 0);
    next_event(m);
    next_event(m);
    for (uint64_t seq = 2; seq <= 5; seq++) {
        assert_int_equal(send_hb(m, (vigil_time_t)(seq - 1) * S, "a", 1, seq, 0, NULL), 0);
        assert_int_equal(send_hb(m, (vigil_time_t)(seq - 1) * S, "b", 1, seq, 0, NULL), 0);
    }
    /* Both last heard at 4 s. At 5 s the timeouts become 1.5 s and 3 s. */
    struct vigil_monitor_config c = *vigil_monitor_config(m);
    c.detector.suspect_threshold = 1.5;
    c.detector.dead_threshold = 3.0;
    c.rise = 3;
    bool restart = true;
    assert_int_equal(vigil_monitor_reconfigure(m, 5 * S, &c, &restart), 0);
    assert_false(restart);
    no_event(m); /* the change itself decides nothing */
    assert_int_equal(vigil_monitor_config(m)->rise, 3);
    /* b keeps sending; a is silent: suspect at 4 + 1.5 s, dead at 4 + 3 s. */
    assert_int_equal(vigil_monitor_next_deadline(m), 4 * S + 3 * S / 2);
    assert_int_equal(send_hb(m, 5 * S, "b", 1, 6, 0, NULL), 0);
    vigil_monitor_on_expiry(m, 4 * S + 3 * S / 2);
    struct vigil_event ev = next_event(m);
    assert_string_equal(ev.node, "a");
    assert_int_equal(ev.new_state, VIGIL_STATE_SUSPECT);
    assert_int_equal(send_hb(m, 6 * S, "b", 1, 7, 0, NULL), 0);
    vigil_monitor_on_expiry(m, 7 * S);
    ev = next_event(m);
    assert_string_equal(ev.node, "a");
    assert_int_equal(ev.new_state, VIGIL_STATE_DEAD);
    no_event(m);
    assert_int_equal(state_of(m, "b"), VIGIL_STATE_ALIVE);
    /* Raising the thresholds again: b's next decision moves out. */
    c.detector.suspect_threshold = 20;
    c.detector.dead_threshold = 40;
    assert_int_equal(vigil_monitor_reconfigure(m, 7 * S, &c, NULL), 0);
    vigil_monitor_on_expiry(m, 20 * S);
    no_event(m);
    /* What shapes the tables stays, and the caller is told a restart is needed. */
    struct vigil_monitor_config other = c;
    other.detector.kind = VIGIL_DETECTOR_PHI;
    other.max_nodes = 7;
    other.auto_register = false;
    assert_int_equal(vigil_monitor_reconfigure(m, 20 * S, &other, &restart), 0);
    assert_true(restart);
    assert_int_equal(vigil_monitor_config(m)->detector.kind, VIGIL_DETECTOR_FIXED);
    assert_int_not_equal(vigil_monitor_config(m)->max_nodes, 7);
    assert_false(vigil_monitor_config(m)->auto_register);
    /* Invalid settings change nothing. */
    struct vigil_monitor_config bad = c;
    bad.detector.dead_threshold = 1; /* below suspect */
    assert_int_equal(vigil_monitor_reconfigure(m, 20 * S, &bad, NULL), -VIGIL_EINVAL);
    bad = c;
    bad.rise = 0;
    assert_int_equal(vigil_monitor_reconfigure(m, 20 * S, &bad, NULL), -VIGIL_EINVAL);
    assert_true(vigil_monitor_config(m)->detector.suspect_threshold == 20);
    vigil_monitor_free(m);
}

/*
 * An action's record is an event of the monitor's own sequence: queued in
 * order with the state changes, its fields as given, the node's state untouched.
 */
static void test_note_action(void **st)
{
    (void)st;
    struct vigil_monitor *m = fixed_monitor();
    assert_int_equal(send_hb(m, 1 * S, "web1", 3, 1, 0, NULL), 0);
    static const char reason[] = "lb do succeeded";
    vigil_monitor_note_action(m, 2 * S, "web1", reason, 1, 2);
    vigil_monitor_note_action(m, 3 * S, "ghost", "flapping", 0, 0);
    struct vigil_event ev = next_event(m);
    assert_int_equal(ev.seq, 1);
    assert_int_equal(ev.type, VIGIL_EVENT_STATE);
    ev = next_event(m);
    assert_int_equal(ev.seq, 2);
    assert_int_equal(ev.type, VIGIL_EVENT_ACTION);
    assert_int_equal(ev.time, 2 * S);
    assert_string_equal(ev.node, "web1");
    assert_ptr_equal(ev.reason, reason); /* kept, not copied: the caller's string */
    assert_int_equal(ev.generation, 1);  /* the event acted on */
    assert_int_equal(ev.sequence, 2);    /* the attempt */
    assert_int_equal(ev.since_last, -1);
    assert_true(ev.level == 0);
    assert_true(ev.threshold == 0);
    assert_int_equal(ev.addr.family, 0);
    ev = next_event(m);
    assert_int_equal(ev.seq, 3);
    assert_int_equal(ev.type, VIGIL_EVENT_ACTION);
    assert_int_equal(ev.time, 3 * S);
    assert_string_equal(ev.node, "ghost");
    assert_string_equal(ev.reason, "flapping");
    assert_int_equal(ev.generation, 0);
    assert_int_equal(ev.sequence, 0);
    no_event(m);
    /* Acting on a node changes nothing about it, and names no node into being. */
    assert_int_equal(state_of(m, "web1"), VIGIL_STATE_ALIVE);
    assert_null(vigil_monitor_find(m, "ghost"));
    assert_int_equal(vigil_monitor_node_count(m), 1);
    assert_int_equal(vigil_monitor_stats(m)->events, 3);

    /* No node, no reason: "" for both; a node id too long is cut to an id's length. */
    char longname[VIGIL_ID_MAX + 10];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    vigil_monitor_note_action(m, 4 * S, NULL, NULL, 0, 0);
    vigil_monitor_note_action(m, 4 * S, "", "group db: no replica alive", 0, 0);
    vigil_monitor_note_action(m, 4 * S, longname, "x", UINT64_MAX, UINT64_MAX - 1);
    ev = next_event(m);
    assert_int_equal(ev.seq, 4);
    assert_string_equal(ev.node, "");
    assert_non_null(ev.reason);
    assert_string_equal(ev.reason, "");
    ev = next_event(m);
    assert_int_equal(ev.seq, 5);
    assert_string_equal(ev.node, "");
    assert_string_equal(ev.reason, "group db: no replica alive");
    ev = next_event(m);
    assert_int_equal(ev.seq, 6);
    assert_int_equal(strlen(ev.node), VIGIL_ID_MAX);
    assert_memory_equal(ev.node, longname, VIGIL_ID_MAX);
    assert_true(ev.generation == UINT64_MAX);
    assert_true(ev.sequence == UINT64_MAX - 1);
    no_event(m);

    /* The next change of state goes on from the actions' numbers. */
    tick(m, 1 * S + 2500 * MS);
    ev = next_event(m);
    assert_int_equal(ev.seq, 7);
    assert_int_equal(ev.type, VIGIL_EVENT_STATE);
    assert_int_equal(ev.new_state, VIGIL_STATE_SUSPECT);
    /* After a restart the numbers go on from the store's (vigil_monitor_set_event_seq). */
    vigil_monitor_set_event_seq(m, 100);
    vigil_monitor_note_action(m, 5 * S, "web1", "lb do started", 7, 1);
    ev = next_event(m);
    assert_int_equal(ev.seq, 101);
    assert_int_equal(ev.generation, 7);
    /* Many at once, more than the queue first holds: all kept, in order. */
    for (uint64_t i = 0; i < 1000; i++)
        vigil_monitor_note_action(m, 6 * S, "web1", "page do queued", 101, i + 1);
    for (uint64_t i = 0; i < 1000; i++) {
        ev = next_event(m);
        assert_int_equal(ev.seq, 102 + i);
        assert_int_equal(ev.sequence, i + 1);
    }
    no_event(m);
    vigil_monitor_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_heartbeat_registers),
        cmocka_unit_test(test_suspect_then_dead_boundaries),
        cmocka_unit_test(test_heartbeats_keep_alive),
        cmocka_unit_test(test_check_down),
        cmocka_unit_test(test_polled_node),
        cmocka_unit_test(test_suspect_back_to_alive),
        cmocka_unit_test(test_recovery_needs_rise),
        cmocka_unit_test(test_goodbye_is_left_not_dead),
        cmocka_unit_test(test_replay_does_not_refresh),
        cmocka_unit_test(test_authentication),
        cmocka_unit_test(test_per_node_keys),
        cmocka_unit_test(test_batch_same_as_single),
        cmocka_unit_test(test_key_rotation),
        cmocka_unit_test(test_reconfigure),
        cmocka_unit_test(test_key_legacy_to_master),
        cmocka_unit_test(test_require_sealed),
        cmocka_unit_test(test_future_refused),
        cmocka_unit_test(test_restore_high_water_mark),
        cmocka_unit_test(test_event_seq_continues),
        cmocka_unit_test(test_event_queue_shrinks_after_storm),
        cmocka_unit_test(test_garbage_counted),
        cmocka_unit_test(test_declared_never_heard),
        cmocka_unit_test(test_declared_then_heard),
        cmocka_unit_test(test_no_auto_register),
        cmocka_unit_test(test_status_wide_figures),
        cmocka_unit_test(test_table_full_keeps_known_nodes),
        cmocka_unit_test(test_monitor_pause_convicts_nobody),
        cmocka_unit_test(test_backlog_after_pause_not_learned),
        cmocka_unit_test(test_small_lateness_is_not_a_pause),
        cmocka_unit_test(test_equal_deadlines_fire_in_order),
        cmocka_unit_test(test_phi_detection_boundary),
        cmocka_unit_test(test_custom_status_stored),
        cmocka_unit_test(test_timeouts_follow_sender_interval),
        cmocka_unit_test(test_decisions_exact_despite_lazy_deadlines),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_v2_status_kept_across_beats),
        cmocka_unit_test(test_v2_stale_until_full_status),
        cmocka_unit_test(test_v2_new_generation_resets_status),
        cmocka_unit_test(test_v1_and_v2_together),
        cmocka_unit_test(test_note_action),
        cmocka_unit_test(test_member),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
