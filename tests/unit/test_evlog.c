/*
 * Tests of the event history ring and the two renderings of an event (JSON
 * and the readable line), with every field checked against the value it
 * was computed from.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "vigil/evlog.h"

/* 2026-11-25T17:00:00Z in seconds since the epoch (calendar.timegm). */
#define WALL_2026_11_25_17 INT64_C(1795626000)

/* The event of the header's example: web3 alive -> dead, convicted on timeout. */
static struct evrec example_event(void)
{
    struct evrec r;
    memset(&r, 0, sizeof(r));
    r.ev.seq = 12;
    r.ev.type = VIGIL_EVENT_STATE;
    r.ev.time = 42 * VIGIL_NSEC_PER_SEC;
    strcpy(r.ev.node, "web3");
    r.ev.old_state = VIGIL_STATE_ALIVE;
    r.ev.new_state = VIGIL_STATE_DEAD;
    r.ev.reason = "timeout";
    r.ev.since_last = INT64_C(5012000000);
    r.ev.level = 8.31;
    r.ev.threshold = 8.0;
    r.ev.mean = VIGIL_NSEC_PER_SEC;
    r.ev.std_dev = 10 * VIGIL_NSEC_PER_MSEC;
    r.ev.generation = 1795625000;
    r.ev.sequence = 977;
    r.ev.addr.family = AF_INET;
    r.ev.addr.addr[0] = 127;
    r.ev.addr.addr[3] = 1;
    r.ev.addr.port = 40012;
    r.wall_us = WALL_2026_11_25_17 * 1000000 + 123456;
    return r;
}

static struct evrec pause_event(void)
{
    struct evrec r;
    memset(&r, 0, sizeof(r));
    r.ev.seq = 13;
    r.ev.type = VIGIL_EVENT_PAUSE;
    r.ev.reason = "pause";
    r.ev.since_last = INT64_C(12345000000);
    r.wall_us = WALL_2026_11_25_17 * 1000000 + 500000;
    return r;
}

static void test_ring_before_wrap(void **state)
{
    (void)state;
    struct evlog *l = evlog_new(3);
    assert_non_null(l);
    assert_int_equal(evlog_count(l), 0);
    assert_int_equal(evlog_last_seq(l), 0);
    assert_null(evlog_at(l, 0));

    struct evrec r = example_event();
    r.ev.seq = 1;
    evlog_push(l, &r);
    r.ev.seq = 2;
    evlog_push(l, &r);
    assert_int_equal(evlog_count(l), 2);
    assert_int_equal(evlog_at(l, 0)->ev.seq, 1);
    assert_int_equal(evlog_at(l, 1)->ev.seq, 2);
    assert_null(evlog_at(l, 2));
    assert_int_equal(evlog_last_seq(l), 2);

    /* A push copies: changing the caller's record afterwards changes nothing held. */
    strcpy(r.ev.node, "changed");
    assert_string_equal(evlog_at(l, 1)->ev.node, "web3");
    evlog_free(l);
}

static void test_ring_wrap(void **state)
{
    (void)state;
    struct evlog *l = evlog_new(3);
    assert_non_null(l);
    struct evrec r = example_event();
    for (uint64_t s = 1; s <= 5; s++) {
        r.ev.seq = s;
        r.ev.since_last = (vigil_time_t)s * VIGIL_NSEC_PER_SEC;
        evlog_push(l, &r);
        /* Full after the third push, never more than the cap. */
        assert_int_equal(evlog_count(l), s < 3 ? s : 3);
    }
    assert_int_equal(evlog_count(l), 3);
    for (size_t i = 0; i < 3; i++) {
        const struct evrec *h = evlog_at(l, i);
        assert_non_null(h);
        assert_int_equal(h->ev.seq, 3 + i);
        assert_int_equal(h->ev.since_last, (vigil_time_t)(3 + i) * VIGIL_NSEC_PER_SEC);
    }
    assert_null(evlog_at(l, 3));
    assert_int_equal(evlog_last_seq(l), 5);

    /* One more: 4..6. */
    r.ev.seq = 6;
    evlog_push(l, &r);
    assert_int_equal(evlog_at(l, 0)->ev.seq, 4);
    assert_int_equal(evlog_at(l, 2)->ev.seq, 6);
    evlog_free(l);
}

static void test_ring_cap_one_and_zero(void **state)
{
    (void)state;
    struct evrec r = example_event();
    struct evlog *one = evlog_new(1);
    assert_non_null(one);
    r.ev.seq = 7;
    evlog_push(one, &r);
    r.ev.seq = 8;
    evlog_push(one, &r);
    assert_int_equal(evlog_count(one), 1);
    assert_int_equal(evlog_at(one, 0)->ev.seq, 8);
    assert_null(evlog_at(one, 1));
    evlog_free(one);

    /* Cap 0 keeps nothing but still knows the newest sequence number. */
    struct evlog *none = evlog_new(0);
    assert_non_null(none);
    evlog_push(none, &r);
    assert_int_equal(evlog_count(none), 0);
    assert_null(evlog_at(none, 0));
    assert_int_equal(evlog_last_seq(none), 8);
    evlog_free(none);
    evlog_free(NULL);
}

static void test_format_wall(void **state)
{
    (void)state;
    char buf[64];
    vigil_format_wall(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    vigil_format_wall(WALL_2026_11_25_17 * 1000000 + 123456, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-25T17:00:00.123Z");
    /* Milliseconds are cut, not rounded: .999999 stays in its second. */
    vigil_format_wall(WALL_2026_11_25_17 * 1000000 + 999999, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-25T17:00:00.999Z");
    vigil_format_wall(WALL_2026_11_25_17 * 1000000 + 1000000, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-25T17:00:01.000Z");
    /* Before 1970: one microsecond before the epoch. */
    vigil_format_wall(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    /* A short buffer is cut and terminated. */
    char small[8];
    memset(small, 'x', sizeof(small));
    vigil_format_wall(0, small, sizeof(small));
    assert_string_equal(small, "1970-01");
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_non_null(v);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_non_null(v);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static void test_json_state_event(void **state)
{
    (void)state;
    struct evrec r = example_event();
    json_t *o = evrec_to_json(&r);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 12);
    assert_true(json_is_integer(json_object_get(o, "seq")));
    assert_string_equal(str(o, "type"), "state");
    assert_string_equal(str(o, "time"), "2026-11-25T17:00:00.123Z");
    assert_true(json_is_integer(json_object_get(o, "time_us")));
    assert_true(json_integer_value(json_object_get(o, "time_us")) == r.wall_us);
    assert_string_equal(str(o, "node"), "web3");
    assert_string_equal(str(o, "old_state"), "alive");
    assert_string_equal(str(o, "new_state"), "dead");
    assert_string_equal(str(o, "reason"), "timeout");
    assert_true(json_integer_value(json_object_get(o, "generation")) == 1795625000);
    assert_int_equal(json_integer_value(json_object_get(o, "sequence")), 977);
    assert_string_equal(str(o, "addr"), "127.0.0.1:40012");

    json_t *e = json_object_get(o, "evidence");
    assert_non_null(e);
    assert_true(json_is_object(e));
    assert_true(fabs(num(e, "since_last_s") - 5.012) < 1e-9);
    assert_true(fabs(num(e, "level") - 8.31) < 1e-9);
    assert_true(fabs(num(e, "threshold") - 8.0) < 1e-9);
    assert_true(fabs(num(e, "mean_s") - 1.0) < 1e-9);
    assert_true(fabs(num(e, "std_dev_s") - 0.010) < 1e-9);
    /* Not a grid event: no loss rate, no missed heartbeats. */
    assert_true(num(e, "loss") == 0);
    assert_int_equal(json_integer_value(json_object_get(e, "missed")), 0);
    assert_int_equal(json_object_size(e), 7);
    assert_int_equal(json_object_size(o), 12);
    json_decref(o);
}

static void test_json_never_heard_and_edge_values(void **state)
{
    (void)state;
    struct evrec r = example_event();
    r.ev.old_state = VIGIL_STATE_UNKNOWN;
    r.ev.since_last = -1;
    r.ev.level = INFINITY;
    r.ev.reason = NULL;
    memset(&r.ev.addr, 0, sizeof(r.ev.addr));
    json_t *o = evrec_to_json(&r);
    assert_non_null(o);
    json_t *e = json_object_get(o, "evidence");
    assert_true(json_is_null(json_object_get(e, "since_last_s")));
    /* JSON has no infinity: an infinite level is null, the rest of the event survives. */
    assert_true(json_is_null(json_object_get(e, "level")));
    assert_string_equal(str(o, "old_state"), "unknown");
    assert_string_equal(str(o, "reason"), "");
    assert_string_equal(str(o, "addr"), "");
    json_decref(o);

    /* since_last 0 is a real value (heard right now), not "never". */
    r.ev.since_last = 0;
    o = evrec_to_json(&r);
    assert_true(json_is_real(json_object_get(json_object_get(o, "evidence"), "since_last_s")));
    json_decref(o);
    assert_null(evrec_to_json(NULL));
}

static struct evrec leader_event(const char *leader, uint64_t epoch, const char *reason)
{
    struct evrec r;
    memset(&r, 0, sizeof(r));
    r.ev.seq = 21;
    r.ev.type = VIGIL_EVENT_LEADER;
    snprintf(r.ev.node, sizeof(r.ev.node), "%s", leader);
    r.ev.generation = epoch;
    r.ev.reason = reason;
    r.ev.since_last = -1;
    r.wall_us = WALL_2026_11_25_17 * 1000000 + 250000;
    return r;
}

static void test_leader_event(void **state)
{
    (void)state;
    struct evrec r = leader_event("mon-b", 42, "another monitor leads and acts");
    json_t *o = evrec_to_json(&r);
    assert_non_null(o);
    assert_string_equal(str(o, "type"), "leader");
    assert_string_equal(str(o, "leader"), "mon-b");
    assert_int_equal(json_integer_value(json_object_get(o, "epoch")), 42);
    /* The monitor's own: no node, no states, no evidence. */
    assert_null(json_object_get(o, "node"));
    assert_null(json_object_get(o, "new_state"));
    assert_null(json_object_get(o, "evidence"));
    json_decref(o);
    assert_string_equal(evrec_node(&r), "");
    assert_true(evrec_is_own(&r));
    char line[256];
    evrec_format_text(&r, line, sizeof(line));
    assert_string_equal(line, "2026-11-25T17:00:00.250Z event 21: leadership: mon-b leads under "
                              "epoch 42 (another monitor leads and acts)");

    /* No leader known: null in JSON. */
    r = leader_event("", 0, "no leader: actions wait");
    o = evrec_to_json(&r);
    assert_true(json_is_null(json_object_get(o, "leader")));
    json_decref(o);
    evrec_format_text(&r, line, sizeof(line));
    assert_string_equal(line, "2026-11-25T17:00:00.250Z event 21: leadership: no leader known "
                              "(no leader: actions wait)");

    /* The core reports it so, a name too long cut to a node id's length. */
    struct vigil_monitor_config mc;
    vigil_monitor_config_default(&mc);
    struct vigil_monitor *m;
    assert_int_equal(vigil_monitor_new(&mc, 1000, &m), 0);
    char longname[VIGIL_ID_MAX + 10];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    vigil_monitor_note_leader(m, 2000, "mon-a", 7, "this monitor leads: it acts");
    vigil_monitor_note_leader(m, 3000, longname, 8, "another monitor leads and acts");
    vigil_monitor_note_leader(m, 4000, NULL, 0, "no leader: actions wait");
    struct vigil_event ev;
    assert_true(vigil_monitor_poll_event(m, &ev));
    assert_int_equal(ev.type, VIGIL_EVENT_LEADER);
    assert_string_equal(ev.node, "mon-a");
    assert_int_equal(ev.generation, 7);
    assert_int_equal(ev.time, 2000);
    assert_true(vigil_monitor_poll_event(m, &ev));
    assert_int_equal(strlen(ev.node), VIGIL_ID_MAX);
    assert_true(vigil_monitor_poll_event(m, &ev));
    assert_string_equal(ev.node, "");
    assert_string_equal(ev.reason, "no leader: actions wait");
    assert_false(vigil_monitor_poll_event(m, &ev));
    vigil_monitor_free(m);
}

static void test_json_pause_event(void **state)
{
    (void)state;
    struct evrec r = pause_event();
    json_t *o = evrec_to_json(&r);
    assert_non_null(o);
    assert_string_equal(str(o, "type"), "pause");
    /* The monitor's own: no node, no states, no evidence; when it began and how long. */
    assert_null(json_object_get(o, "node"));
    assert_null(json_object_get(o, "old_state"));
    assert_null(json_object_get(o, "new_state"));
    assert_null(json_object_get(o, "evidence"));
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 13);
    assert_string_equal(str(o, "time"), "2026-11-25T17:00:00.500Z");
    assert_true(fabs(num(o, "pause_s") - 12.345) < 1e-9);
    assert_string_equal(str(o, "paused_since"), "2026-11-25T16:59:48.155Z");
    json_decref(o);

    /* A JSON round trip through text keeps the values. */
    r = example_event();
    o = evrec_to_json(&r);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    assert_non_null(s);
    json_error_t err;
    json_t *back = json_loads(s, 0, &err);
    free(s);
    assert_non_null(back);
    assert_string_equal(str(back, "node"), "web3");
    assert_true(fabs(num(json_object_get(back, "evidence"), "since_last_s") - 5.012) < 1e-9);
    json_decref(back);
}

/* Most significant digits of any real number in a JSON text. */
static int max_sig_digits(const char *s)
{
    int most = 0;
    while (*s) {
        if (*s == '"') { /* skip strings: times and addresses are not numbers */
            for (s++; *s && *s != '"'; s++)
                if (*s == '\\' && s[1])
                    s++;
            if (*s)
                s++;
            continue;
        }
        if (!((*s >= '0' && *s <= '9') || *s == '-')) {
            s++;
            continue;
        }
        int sig = 0;
        bool lead = true, real = false;
        for (; *s && ((*s >= '0' && *s <= '9') || *s == '.' || *s == '-'); s++) {
            if (*s < '0' || *s > '9') {
                real |= *s == '.';
                continue;
            }
            if (lead && *s == '0')
                continue;
            lead = false;
            sig++;
        }
        /* An exponent: its digits are not significant ones. */
        if (*s == 'e' || *s == 'E')
            for (s++; *s && ((*s >= '0' && *s <= '9') || *s == '-' || *s == '+'); s++)
                ;
        /* Integers (counters, times in microseconds) are exact: only reals count. */
        if (real && sig > most)
            most = sig;
    }
    return most;
}

/* JSON numbers as people read them: no 0.67000000000000004, no level of 1e-137. */
static void test_json_numbers_sensible(void **state)
{
    (void)state;
    struct evrec r = example_event();
    r.ev.level = 1e-137;      /* phi just after a heartbeat */
    r.ev.threshold = 0.67;    /* 0.67000000000000004 with 17 digits */
    r.ev.mean = 670000000;    /* 0.67 s */
    r.ev.std_dev = 1000000;   /* 0.001 s */
    r.ev.since_last = 300000; /* 0.0003 s */
    json_t *o = evrec_to_json(&r);
    assert_non_null(o);
    char *s = json_dumps(o, JSON_COMPACT | VIGIL_JSON_REAL);
    json_decref(o);
    assert_non_null(s);
    if (max_sig_digits(s) > 12 || strstr(s, "e-") || strstr(s, "E-"))
        fail_msg("unreadable numbers: %s", s);
    assert_non_null(strstr(s, "\"level\":0.0"));
    assert_non_null(strstr(s, "\"threshold\":0.67"));
    assert_non_null(strstr(s, "\"mean_s\":0.67,"));
    assert_non_null(strstr(s, "\"since_last_s\":0.0003"));
    free(s);
    /* The level helper: null beyond numbers, the value otherwise. */
    o = vigil_json_level(INFINITY);
    assert_true(json_is_null(o));
    json_decref(o);
    o = vigil_json_level(8.3125);
    assert_true(json_real_value(o) == 8.3125);
    json_decref(o);
}

static void test_text_state_event(void **state)
{
    (void)state;
    struct evrec r = example_event();
    char buf[512];
    evrec_format_text(&r, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-25T17:00:00.123Z event 12: web3 alive -> dead (timeout) "
                             "since_last=5.012s level=8.31 threshold=8.00 mean=1s "
                             "sd=10ms addr=127.0.0.1:40012");

    /* Never heard, no address; durations to 4 significant digits, with their units. */
    r.ev.old_state = VIGIL_STATE_UNKNOWN;
    r.ev.since_last = -1;
    r.ev.mean = INT64_C(999500000);  /* 999.5 ms */
    r.ev.std_dev = INT64_C(1499999); /* rounds up to 1.5 ms */
    memset(&r.ev.addr, 0, sizeof(r.ev.addr));
    evrec_format_text(&r, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-25T17:00:00.123Z event 12: web3 unknown -> dead (timeout) "
                             "since_last=never level=8.31 threshold=8.00 mean=999.5ms "
                             "sd=1.5ms addr=-");

    /* The grid detector's evidence follows, and reaches the JSON too. */
    r.ev.loss = 0.0512;
    r.ev.missed = 6;
    evrec_format_text(&r, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-25T17:00:00.123Z event 12: web3 unknown -> dead (timeout) "
                             "since_last=never level=8.31 threshold=8.00 mean=999.5ms "
                             "sd=1.5ms addr=- loss=0.0512 missed=6");
    json_t *o = evrec_to_json(&r);
    assert_non_null(o);
    json_t *e = json_object_get(o, "evidence");
    assert_true(fabs(num(e, "loss") - 0.0512) < 1e-12);
    assert_int_equal(json_integer_value(json_object_get(e, "missed")), 6);
    json_decref(o);

    /* A short buffer is cut and terminated, never overrun. */
    char small[17];
    memset(small, 'x', sizeof(small));
    evrec_format_text(&r, small, 12);
    assert_string_equal(small, "2026-11-25T");
    assert_int_equal(small[12], 'x');
}

static void test_text_pause_event(void **state)
{
    (void)state;
    struct evrec r = pause_event();
    char buf[512];
    evrec_format_text(&r, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-25T17:00:00.500Z event 13: monitor paused for 12.35s: "
                             "no node convicted for heartbeats it could not read");
}

/* evrec_to_json then evrec_from_json: the same text line as the event itself. */
static void assert_round_trip(const struct evrec *r)
{
    char want[512], got[512];
    evrec_format_text(r, want, sizeof(want));
    json_t *o = evrec_to_json(r);
    assert_non_null(o);
    /* Through text too, as the CLI gets it from the API. */
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    assert_non_null(s);
    o = json_loads(s, 0, NULL);
    free(s);
    assert_non_null(o);
    struct evrec back;
    memset(&back, 0xa5, sizeof(back));
    assert_int_equal(evrec_from_json(o, &back), 0);
    evrec_format_text(&back, got, sizeof(got));
    assert_string_equal(got, want);
    assert_int_equal(back.ev.seq, r->ev.seq);
    assert_int_equal(back.ev.type, r->ev.type);
    assert_int_equal(back.wall_us, r->wall_us);
    assert_int_equal(back.ev.since_last, r->ev.since_last);
    assert_int_equal(back.ev.mean, r->ev.mean);
    assert_int_equal(back.ev.std_dev, r->ev.std_dev);
    assert_int_equal(back.ev.generation, r->ev.generation);
    assert_int_equal(back.ev.sequence, r->ev.sequence);
    assert_memory_equal(&back.ev.addr, &r->ev.addr, sizeof(r->ev.addr));
    json_decref(o);
}

static void test_json_round_trip(void **state)
{
    (void)state;
    /* A state event for every pair of states, with and without a threshold crossed. */
    for (int from = VIGIL_STATE_UNKNOWN; from <= VIGIL_STATE_LEFT; from++) {
        for (int to = VIGIL_STATE_UNKNOWN; to <= VIGIL_STATE_LEFT; to++) {
            struct evrec r = example_event();
            r.ev.old_state = (enum vigil_state)from;
            r.ev.new_state = (enum vigil_state)to;
            r.ev.seq = (uint64_t)(from * 5 + to + 1);
            r.ev.threshold = to == VIGIL_STATE_ALIVE ? 0 : 8.0;
            assert_round_trip(&r);
        }
    }
    /* A pause. */
    struct evrec r = pause_event();
    assert_round_trip(&r);
    /* A change of leadership, and no leader. */
    r = leader_event("mon-c", UINT64_C(9007199254740993), "this monitor leads: it acts");
    assert_round_trip(&r);
    r = leader_event("", 0, "no leader: actions wait");
    assert_round_trip(&r);
    /* Never heard, no address, durations on the millisecond rounding edges. */
    r = example_event();
    r.ev.since_last = -1;
    r.ev.mean = INT64_C(999500000);
    r.ev.std_dev = INT64_C(1499999);
    memset(&r.ev.addr, 0, sizeof(r.ev.addr));
    assert_round_trip(&r);
    /* An infinite level, sent as null. */
    r = example_event();
    r.ev.level = INFINITY;
    assert_round_trip(&r);
    char line[512];
    evrec_format_text(&r, line, sizeof(line));
    assert_non_null(strstr(line, " level=inf "));
    /* An IPv6 address, a long silence and the largest counters. */
    r = example_event();
    r.ev.addr.family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::17", r.ev.addr.addr), 1);
    r.ev.addr.port = 7946;
    r.ev.since_last = INT64_C(86400123456789);
    r.ev.generation = UINT64_MAX;
    r.ev.sequence = UINT64_MAX - 1;
    r.ev.seq = UINT64_MAX;
    assert_round_trip(&r);
    evrec_format_text(&r, line, sizeof(line));
    assert_non_null(strstr(line, " addr=[2001:db8::17]:7946"));
    /* A time before 1970. */
    r = example_event();
    r.wall_us = -1500;
    assert_round_trip(&r);
    /* The grid detector's evidence: the loss rate and the heartbeats missed. */
    r = example_event();
    r.ev.loss = 0.0525;
    r.ev.missed = 6;
    assert_round_trip(&r);
    evrec_format_text(&r, line, sizeof(line));
    assert_non_null(strstr(line, " loss=0.0525 missed=6"));
}

/* The reason points into the JSON; anything missing or mistyped is refused. */
static void test_json_from_strict(void **state)
{
    (void)state;
    struct evrec r = example_event(), back;
    json_t *o = evrec_to_json(&r);
    assert_non_null(o);
    assert_int_equal(evrec_from_json(o, &back), 0);
    assert_ptr_equal(back.ev.reason, json_string_value(json_object_get(o, "reason")));
    assert_string_equal(back.ev.node, "web3");
    assert_int_equal(back.ev.time, 0);

    static const char *const required[] = {"seq",      "type",       "time",      "time_us",
                                           "node",     "old_state",  "new_state", "reason",
                                           "evidence", "generation", "sequence",  "addr"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        json_t *c = json_deep_copy(o);
        json_object_del(c, required[i]);
        if (evrec_from_json(c, &back) != -VIGIL_EINVAL)
            fail_msg("accepted without %s", required[i]);
        json_decref(c);
    }
    static const char *const evidence[] = {"since_last_s", "level", "threshold", "mean_s",
                                           "std_dev_s"};
    for (size_t i = 0; i < sizeof(evidence) / sizeof(evidence[0]); i++) {
        json_t *c = json_deep_copy(o);
        json_object_del(json_object_get(c, "evidence"), evidence[i]);
        if (evrec_from_json(c, &back) != -VIGIL_EINVAL)
            fail_msg("accepted without evidence.%s", evidence[i]);
        json_decref(c);
    }
    /* Wrong values. */
    struct {
        const char *key;
        json_t *value;
    } bad[] = {
        {"seq", json_string("12")},
        {"type", json_string("other")},
        {"node", json_string("bad/id")},
        {"node", json_string("")},
        {"old_state", json_string("gone")},
        {"new_state", json_integer(1)},
        {"addr", json_string("nowhere")},
        {"time_us", json_real(1.5)},
        {"reason", json_null()},
        {"evidence", json_array()},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *c = json_deep_copy(o);
        json_object_set_new(c, bad[i].key, bad[i].value);
        if (evrec_from_json(c, &back) != -VIGIL_EINVAL)
            fail_msg("accepted a wrong %s", bad[i].key);
        json_decref(c);
    }
    json_t *c = json_deep_copy(o);
    json_object_set_new(json_object_get(c, "evidence"), "mean_s", json_real(-1));
    assert_int_equal(evrec_from_json(c, &back), -VIGIL_EINVAL);
    json_object_set_new(json_object_get(c, "evidence"), "mean_s", json_null());
    assert_int_equal(evrec_from_json(c, &back), -VIGIL_EINVAL);
    json_decref(c);
    /* A pause has no node, no states and no evidence. */
    c = json_deep_copy(o);
    json_object_set_new(c, "type", json_string("pause"));
    json_object_set_new(c, "pause_s", json_real(1.5));
    json_object_set_new(c, "paused_since", json_string("2026-11-25T16:59:48.155Z"));
    assert_int_equal(evrec_from_json(c, &back), -VIGIL_EINVAL);
    json_decref(c);
    assert_int_equal(evrec_from_json(NULL, &back), -VIGIL_EINVAL);
    assert_int_equal(evrec_from_json(json_object_get(o, "node"), &back), -VIGIL_EINVAL);
    json_decref(o);
}

/* An action's record: web2's lb action, attempt 2 on event 17. */
static struct evrec action_event(const char *node, const char *reason, uint64_t about,
                                 uint64_t attempt)
{
    struct evrec r;
    memset(&r, 0, sizeof(r));
    r.ev.seq = 31;
    r.ev.type = VIGIL_EVENT_ACTION;
    r.ev.time = 43 * VIGIL_NSEC_PER_SEC;
    snprintf(r.ev.node, sizeof(r.ev.node), "%s", node);
    r.ev.reason = reason;
    r.ev.generation = about;
    r.ev.sequence = attempt;
    r.ev.since_last = -1;
    r.wall_us = WALL_2026_11_25_17 * 1000000 + 750000;
    return r;
}

static void test_action_event(void **state)
{
    (void)state;
    struct evrec r = action_event("web2", "lb do succeeded", 17, 2);
    json_t *o = evrec_to_json(&r);
    assert_non_null(o);
    /* Exactly these fields: no states, no evidence, no address. */
    assert_int_equal(json_object_size(o), 8);
    assert_true(json_is_integer(json_object_get(o, "seq")));
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 31);
    assert_string_equal(str(o, "type"), "action");
    assert_string_equal(str(o, "time"), "2026-11-25T17:00:00.750Z");
    assert_true(json_is_integer(json_object_get(o, "time_us")));
    assert_true(json_integer_value(json_object_get(o, "time_us")) == r.wall_us);
    assert_string_equal(str(o, "node"), "web2");
    assert_string_equal(str(o, "reason"), "lb do succeeded");
    assert_true(json_is_integer(json_object_get(o, "about")));
    assert_int_equal(json_integer_value(json_object_get(o, "about")), 17);
    assert_true(json_is_integer(json_object_get(o, "attempt")));
    assert_int_equal(json_integer_value(json_object_get(o, "attempt")), 2);
    json_decref(o);

    /* Its node is the node acted on; the monitor's other own events have none. */
    assert_string_equal(evrec_type_name(&r), "action");
    assert_true(evrec_is_own(&r));
    assert_string_equal(evrec_node(&r), "web2");
    struct evrec p = pause_event();
    strcpy(p.ev.node, "web2"); /* whatever the record holds */
    assert_string_equal(evrec_node(&p), "");
    struct evrec l = leader_event("mon-a", 3, "this monitor leads: it acts");
    assert_string_equal(evrec_node(&l), "");
    struct evrec s = example_event();
    assert_string_equal(evrec_node(&s), "web3");

    /* The line: the node, what, and the event and attempt when there are. */
    char line[256];
    evrec_format_text(&r, line, sizeof(line));
    assert_string_equal(line, "2026-11-25T17:00:00.750Z event 31: action: web2 lb do succeeded "
                              "(event 17, attempt 2)");
    r = action_event("web2", "page do delivery retrying", 17, 0);
    evrec_format_text(&r, line, sizeof(line));
    assert_string_equal(line, "2026-11-25T17:00:00.750Z event 31: action: web2 page do delivery "
                              "retrying (event 17)");
    r = action_event("web2", "flapping", 0, 0);
    evrec_format_text(&r, line, sizeof(line));
    assert_string_equal(line, "2026-11-25T17:00:00.750Z event 31: action: web2 flapping");
    r = action_event("", "group db: no replica alive", 0, 0);
    evrec_format_text(&r, line, sizeof(line));
    assert_string_equal(line,
                        "2026-11-25T17:00:00.750Z event 31: action: group db: no replica alive");
    o = evrec_to_json(&r);
    assert_string_equal(str(o, "node"), "");
    json_decref(o);
    /* No reason: "" in JSON. */
    r = action_event("web2", NULL, 9, 1);
    o = evrec_to_json(&r);
    assert_string_equal(str(o, "reason"), "");
    json_decref(o);
}

/* To JSON and back: the same record, and the same line. */
/* A check's change: its own fields, and back again exactly. */
static void test_check_event(void **state)
{
    (void)state;
    struct evrec r;
    memset(&r, 0, sizeof(r));
    r.ev.seq = 40;
    r.ev.type = VIGIL_EVENT_CHECK;
    r.ev.time = 44 * VIGIL_NSEC_PER_SEC;
    snprintf(r.ev.node, sizeof(r.ev.node), "web1");
    r.ev.check = "http";
    r.ev.old_state = VIGIL_STATE_ALIVE;
    r.ev.new_state = VIGIL_STATE_DEAD;
    r.ev.reason = "agent";
    r.ev.latency = 12345678;
    r.ev.code = 503;
    r.ev.generation = 9;
    r.ev.since_last = -1;
    snprintf(r.ev.detail, sizeof(r.ev.detail), "HTTP 503: down for \"maintenance\"");
    r.wall_us = WALL_2026_11_25_17 * 1000000 + 125000;
    json_t *o = evrec_to_json(&r);
    assert_non_null(o);
    assert_string_equal(str(o, "type"), "check");
    assert_string_equal(str(o, "check"), "http");
    assert_string_equal(str(o, "old_status"), "passing");
    assert_string_equal(str(o, "new_status"), "critical");
    assert_string_equal(str(o, "reason"), "agent");
    json_t *e = json_object_get(o, "evidence");
    assert_true(json_is_object(e));
    assert_int_equal(json_integer_value(json_object_get(e, "code")), 503);
    assert_string_equal(json_string_value(json_object_get(e, "detail")),
                        "HTTP 503: down for \"maintenance\"");
    assert_false(evrec_is_own(&r));
    assert_string_equal(evrec_node(&r), "web1");
    struct evrec back;
    memset(&back, 0xa5, sizeof(back));
    assert_int_equal(evrec_from_json(o, &back), 0);
    assert_int_equal(back.ev.type, VIGIL_EVENT_CHECK);
    assert_string_equal(back.ev.check, "http");
    assert_int_equal(back.ev.old_state, VIGIL_STATE_ALIVE);
    assert_int_equal(back.ev.new_state, VIGIL_STATE_DEAD);
    assert_int_equal(back.ev.latency, 12345678);
    assert_int_equal(back.ev.code, 503);
    assert_int_equal(back.ev.generation, 9);
    assert_string_equal(back.ev.detail, r.ev.detail);
    assert_int_equal(back.wall_us, r.wall_us);
    char want[512], got[512];
    evrec_format_text(&r, want, sizeof(want));
    evrec_format_text(&back, got, sizeof(got));
    assert_string_equal(got, want);
    /* A status that is not one, or no check: refused. */
    json_object_set_new(o, "new_status", json_string("dead"));
    assert_int_equal(evrec_from_json(o, &back), -VIGIL_EINVAL);
    json_object_set_new(o, "new_status", json_string("critical"));
    json_object_del(o, "check");
    assert_int_equal(evrec_from_json(o, &back), -VIGIL_EINVAL);
    json_decref(o);
}

static void test_action_event_round_trip(void **state)
{
    (void)state;
    struct evrec r = action_event("web2", "lb do succeeded", 17, 2);
    assert_round_trip(&r);
    json_t *o = evrec_to_json(&r);
    struct evrec back;
    memset(&back, 0xa5, sizeof(back));
    assert_int_equal(evrec_from_json(o, &back), 0);
    assert_int_equal(back.ev.type, VIGIL_EVENT_ACTION);
    assert_int_equal(back.ev.seq, 31);
    assert_string_equal(back.ev.node, "web2");
    assert_ptr_equal(back.ev.reason, json_string_value(json_object_get(o, "reason")));
    assert_int_equal(back.ev.generation, 17);
    assert_int_equal(back.ev.sequence, 2);
    assert_int_equal(back.ev.since_last, -1);
    assert_int_equal(back.ev.time, 0);
    assert_true(back.wall_us == r.wall_us);
    assert_int_equal(back.ev.addr.family, 0);
    json_decref(o);
    /* No node (the monitor's own action), nothing acted on, the largest numbers. */
    r = action_event("", "group db primary (failover)", 0, 0);
    assert_round_trip(&r);
    r = action_event("db1", "maintenance on", 0, 0);
    assert_round_trip(&r);
    r = action_event("a-very.long_node-id-of-sixty-four-characters-0123456789abcdefghi", "x",
                     UINT64_MAX, UINT64_MAX);
    assert_int_equal(strlen(r.ev.node), VIGIL_ID_MAX);
    r.ev.seq = UINT64_MAX;
    assert_round_trip(&r);
}

/* Back from JSON, an action's record is read as strictly as any event. */
static void test_action_event_from_strict(void **state)
{
    (void)state;
    struct evrec r = action_event("web2", "lb do succeeded", 17, 2), back;
    json_t *o = evrec_to_json(&r);
    assert_non_null(o);
    assert_int_equal(evrec_from_json(o, &back), 0);
    static const char *const required[] = {"seq",  "type",   "time",  "time_us",
                                           "node", "reason", "about", "attempt"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        json_t *c = json_deep_copy(o);
        assert_int_equal(json_object_del(c, required[i]), 0);
        if (evrec_from_json(c, &back) != -VIGIL_EINVAL)
            fail_msg("accepted without %s", required[i]);
        json_decref(c);
    }
    struct {
        const char *key;
        json_t *value;
    } bad[] = {
        {"seq", json_string("31")},
        {"time_us", json_real(1.5)},
        {"time", json_null()},
        {"node", json_integer(2)},
        {"node", json_null()},
        {"node", json_string("bad/id")},
        {"node", json_string("web 2")},
        {"node", json_string("a-very.long_node-id-of-sixty-five-characters-0123456789abcdefghij")},
        {"reason", json_null()},
        {"reason", json_integer(0)},
        {"about", json_string("17")},
        {"about", json_real(17.0)},
        {"about", json_null()},
        {"attempt", json_string("2")},
        {"attempt", json_true()},
        {"type", json_string("actions")},
        /* An action has no evidence. */
        {"evidence", json_object()},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *c = json_deep_copy(o);
        json_object_set_new(c, bad[i].key, bad[i].value);
        if (evrec_from_json(c, &back) != -VIGIL_EINVAL)
            fail_msg("accepted a wrong %s (case %zu)", bad[i].key, i);
        json_decref(c);
    }
    /* A node of exactly an id's longest length is one. */
    json_t *c = json_deep_copy(o);
    json_object_set_new(
        c, "node", json_string("a-very.long_node-id-of-sixty-four-characters-0123456789abcdefghi"));
    assert_int_equal(evrec_from_json(c, &back), 0);
    assert_int_equal(strlen(back.ev.node), VIGIL_ID_MAX);
    json_decref(c);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_before_wrap),
        cmocka_unit_test(test_ring_wrap),
        cmocka_unit_test(test_ring_cap_one_and_zero),
        cmocka_unit_test(test_format_wall),
        cmocka_unit_test(test_json_state_event),
        cmocka_unit_test(test_json_never_heard_and_edge_values),
        cmocka_unit_test(test_json_pause_event),
        cmocka_unit_test(test_leader_event),
        cmocka_unit_test(test_json_numbers_sensible),
        cmocka_unit_test(test_text_state_event),
        cmocka_unit_test(test_text_pause_event),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_from_strict),
        cmocka_unit_test(test_action_event),
        cmocka_unit_test(test_action_event_round_trip),
        cmocka_unit_test(test_check_event),
        cmocka_unit_test(test_action_event_from_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
