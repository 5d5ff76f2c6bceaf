/*
 * A member that stalls (SIGSTOP, a swapped-out process) in the middle of a
 * suspicion must not wake up and declare the suspect dead at once: nobody
 * heard of the suspicion while it was away, so nobody could refute it
 * (swim.h, pause_tolerance). Two members on a hand-driven network, in
 * virtual time (two, so that no third one can answer for b):
 *
 *   a's probes of b fail (b's answers to a are dropped) until a suspects b;
 *   a stalls at that very moment, before it sent anything more, for 30 s
 *   (longer than any suspicion timeout); b's link to a is healed.
 *
 * With the default tolerance, a extends its suspicion by the stall, tells
 * b, b refutes, and a never declares b dead. With the tolerance set beyond
 * the stall (the guard off), a declares b dead the moment it resumes: the
 * test shows the guard is what saves b.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <vigil/swim.h>

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC
#define N  2

struct pkt {
    vigil_time_t at;
    int to, from;
    size_t len;
    uint8_t buf[1280];
};

struct net {
    struct vigil_swim *m[N];
    struct vigil_addr addr[N];
    struct pkt q[4096];
    size_t nq;
    bool drop_b_to_a;
    vigil_time_t stalled_until[N];
    size_t dead_b_at_a, suspect_b_at_a, alive_b_at_a;
};

static const char *const ids[N] = {"a", "b"};

static int by_port(const struct net *n, const struct vigil_addr *to)
{
    for (int i = 0; i < N; i++)
        if (n->addr[i].port == to->port)
            return i;
    return -1;
}

/* Member i's events: a's view of b counted. */
static void events(struct net *n, int i, vigil_time_t now)
{
    struct vigil_swim_event e;
    while (vigil_swim_poll_event(n->m[i], &e)) {
        printf("# %.3f s: %s sees %s %s (%s, incarnation %u)\n", (double)now / S, ids[i], e.id,
               vigil_state_name(e.new_state), e.reason, (unsigned)e.incarnation);
        if (i != 0 || strcmp(e.id, "b") != 0)
            continue;
        if (e.new_state == VIGIL_STATE_DEAD)
            n->dead_b_at_a++;
        else if (e.new_state == VIGIL_STATE_SUSPECT)
            n->suspect_b_at_a++;
        else if (e.new_state == VIGIL_STATE_ALIVE)
            n->alive_b_at_a++;
    }
}

/* Takes what member i sends onto the network, or throws it away. */
static void sends(struct net *n, int i, vigil_time_t now, bool discard)
{
    struct vigil_swim_send out;
    while (vigil_swim_poll_send(n->m[i], &out)) {
        int to = by_port(n, &out.to);
        if (discard || to < 0 || (i == 1 && to == 0 && n->drop_b_to_a))
            continue;
        assert_true(n->nq < sizeof(n->q) / sizeof(n->q[0]));
        struct pkt *p = &n->q[n->nq++];
        p->at = now + MS;
        p->to = to;
        p->from = i;
        p->len = out.len;
        memcpy(p->buf, out.buf, out.len);
    }
}

/* Runs the network from t to until in 1 ms steps; returns when a first suspects b (if stop). */
static vigil_time_t run(struct net *n, vigil_time_t t, vigil_time_t until, bool stop_at_suspect)
{
    for (; t < until; t += MS) {
        /* Deliveries due, to members not stalled (a stalled member's wait in its socket). */
        for (size_t k = 0; k < n->nq;) {
            struct pkt *p = &n->q[k];
            if (p->at <= t && n->stalled_until[p->to] <= t) {
                vigil_time_t at = p->at;
                (void)vigil_swim_on_datagram(n->m[p->to], at, p->buf, p->len, &n->addr[p->from]);
                *p = n->q[--n->nq];
                continue;
            }
            k++;
        }
        for (int i = 0; i < N; i++) {
            if (n->stalled_until[i] > t)
                continue;
            if (t >= vigil_swim_next_deadline(n->m[i]))
                vigil_swim_on_expiry(n->m[i], t);
            size_t before = n->suspect_b_at_a;
            events(n, i, t);
            /* a suspects b: it stalls before anything it would now send leaves. */
            if (stop_at_suspect && i == 0 && n->suspect_b_at_a > before) {
                sends(n, i, t, true);
                return t;
            }
            sends(n, i, t, false);
        }
    }
    return until;
}

static void start(struct net *n, vigil_time_t tolerance)
{
    memset(n, 0, sizeof(*n));
    for (int i = 0; i < N; i++) {
        n->addr[i].family = 2;
        n->addr[i].port = (uint16_t)(7000 + i);
        n->addr[i].addr[0] = 127;
        n->addr[i].addr[3] = 1;
    }
    for (int i = 0; i < N; i++) {
        struct vigil_swim_config c;
        vigil_swim_config_default(&c);
        c.id = ids[i];
        c.addr = n->addr[i];
        c.seed = (uint64_t)i + 1;
        c.pause_tolerance = tolerance;
        assert_int_equal(vigil_swim_new(&c, 0, &n->m[i]), 0);
        for (int j = 0; j < N; j++)
            if (j != i)
                assert_int_equal(vigil_swim_add(n->m[i], 0, ids[j], &n->addr[j]), 0);
    }
}

static void stop(struct net *n)
{
    for (int i = 0; i < N; i++)
        vigil_swim_free(n->m[i]);
}

/* The scenario; returns a's stats' pauses. */
static uint64_t scenario(struct net *n, vigil_time_t tolerance)
{
    start(n, tolerance);
    vigil_time_t t = run(n, 0, 5 * S, false);
    assert_int_equal(n->suspect_b_at_a, 0);
    n->drop_b_to_a = true;
    t = run(n, t, 60 * S, true);
    assert_int_equal(n->suspect_b_at_a, 1);
    /* a stalls right there, and runs nothing for 30 s. */
    n->stalled_until[0] = t + 30 * S;
    n->drop_b_to_a = false;
    run(n, t + MS, t + 90 * S, false);
    uint64_t pauses = vigil_swim_stats(n->m[0])->pauses;
    stop(n);
    return pauses;
}

static void test_stalled_member_does_not_convict(void **state)
{
    (void)state;
    struct net n;
    uint64_t pauses = scenario(&n, 0);
    printf("# guard on: a saw b suspect %zu, dead %zu, alive again %zu; pauses %llu\n",
           n.suspect_b_at_a, n.dead_b_at_a, n.alive_b_at_a, (unsigned long long)pauses);
    assert_true(pauses >= 1);
    assert_int_equal(n.dead_b_at_a, 0);
    assert_true(n.alive_b_at_a >= 1);
}

static void test_without_the_guard_b_dies(void **state)
{
    (void)state;
    struct net n;
    uint64_t pauses = scenario(&n, 3600 * S);
    printf("# guard off: a saw b suspect %zu, dead %zu, alive again %zu; pauses %llu\n",
           n.suspect_b_at_a, n.dead_b_at_a, n.alive_b_at_a, (unsigned long long)pauses);
    assert_int_equal(pauses, 0);
    assert_true(n.dead_b_at_a >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_member_does_not_convict),
        cmocka_unit_test(test_without_the_guard_b_dies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
