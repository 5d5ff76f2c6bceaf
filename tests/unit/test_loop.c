/*
 * The event loop (src/io/loop.c, loop_epoll.c): timer order, one turn's
 * rules (ready sources before due timers, each timer at most once per
 * turn), cancelling, and on the real epoll loop, that a descriptor gets its
 * turn even while another source keeps the loop busy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_loop.h"
#include "io/real.h"

#define MS VIGIL_NSEC_PER_MSEC

struct rec {
    char log[256];
    size_t len;
};

static void note(struct rec *r, char c)
{
    if (r->len + 1 < sizeof(r->log)) {
        r->log[r->len++] = c;
        r->log[r->len] = '\0';
    }
}

struct tagged {
    struct rec *r;
    char tag;
    struct vio_loop *l;
    struct vio_timer *rearm; /* re-armed at now when it fires, once */
};

static void on_timer(void *arg, vigil_time_t now)
{
    struct tagged *t = arg;
    note(t->r, t->tag);
    if (t->rearm) {
        struct vio_timer *re = t->rearm;
        t->rearm = NULL;
        vio_timer_arm(t->l, re, now);
    }
}

static void on_source(void *arg, vigil_time_t now)
{
    (void)now;
    struct tagged *t = arg;
    note(t->r, t->tag);
}

/* Equal times fire in arming order; moving a timer puts it after the others. */
static void test_timer_order(void **state)
{
    (void)state;
    vigil_time_t clock = 1000 * MS;
    struct vio_loop *l = fake_loop_new(&clock);
    struct rec r = {0};
    struct tagged tg[5];
    struct vio_timer t[5];
    for (int i = 0; i < 5; i++) {
        tg[i] = (struct tagged){.r = &r, .tag = (char)('a' + i), .l = l};
        vio_timer_init(&t[i], on_timer, &tg[i]);
    }
    assert_int_equal(vio_timer_arm(l, &t[0], 2000 * MS), 0);
    assert_int_equal(vio_timer_arm(l, &t[1], 1500 * MS), 0);
    assert_int_equal(vio_timer_arm(l, &t[2], 2000 * MS), 0);
    assert_int_equal(vio_timer_arm(l, &t[3], 2000 * MS), 0);
    assert_int_equal(vio_timer_arm(l, &t[4], 3000 * MS), 0);
    vio_timer_arm(l, &t[0], 1999 * MS);
    vio_timer_arm(l, &t[0], 2000 * MS); /* moved: now after c and d */
    vio_timer_disarm(l, &t[4]);
    assert_false(vio_timer_armed(&t[4]));
    assert_int_equal(fake_loop_next(l), 1500 * MS);
    fake_loop_run_until(l, 1999 * MS);
    assert_string_equal(r.log, "b");
    fake_loop_run_until(l, 5000 * MS);
    assert_string_equal(r.log, "bcda");
    assert_int_equal(fake_loop_next(l), VIGIL_TIME_NEVER);
    vio_loop_free(l);
}

/* A turn: ready sources first, then due timers; a timer re-armed at now waits for the next turn. */
static void test_turn_rules(void **state)
{
    (void)state;
    vigil_time_t clock = 1000 * MS;
    struct vio_loop *l = fake_loop_new(&clock);
    struct rec r = {0};
    struct tagged ts = {.r = &r, .tag = 'S', .l = l}, tt = {.r = &r, .tag = 'T', .l = l};
    struct tagged tc = {.r = &r, .tag = 'C', .l = l};
    struct vio_source s, c;
    struct vio_timer t;
    vio_source_init(&s, on_source, &ts);
    vio_source_init(&c, on_source, &tc);
    vio_timer_init(&t, on_timer, &tt);
    tt.rearm = &t;
    vio_timer_arm(l, &t, 1000 * MS);
    vio_source_ready(l, &s);
    vio_source_ready(l, &s); /* idempotent */
    vio_source_ready(l, &c);
    vio_source_cancel(l, &c);
    vio_loop_dispatch(l, clock);
    assert_string_equal(r.log, "ST");
    assert_true(vio_timer_armed(&t));
    vio_loop_dispatch(l, clock);
    assert_string_equal(r.log, "STT");
    assert_false(vio_timer_armed(&t));
    vio_loop_free(l);
}

/* A source that makes itself ready every turn, and stops the loop after enough turns. */
struct busy {
    struct vio_loop *l;
    struct vio_source src;
    unsigned turns;
    bool saw_pipe;
};

static void on_busy(void *arg, vigil_time_t now)
{
    (void)now;
    struct busy *b = arg;
    if (++b->turns >= 100000)
        vio_loop_stop(b->l);
    else
        vio_source_ready(b->l, &b->src);
}

struct piper {
    struct vio_loop *l;
    struct busy *b;
    int fd;
    unsigned at_turn;
};

static void on_pipe(void *arg, vigil_time_t now)
{
    (void)now;
    struct piper *p = arg;
    char c;
    if (read(p->fd, &c, 1) == 1 && !p->b->saw_pipe) {
        p->b->saw_pipe = true;
        p->at_turn = p->b->turns;
        vio_loop_stop(p->l);
    }
}

/* On the epoll loop, a readable descriptor gets its turn while another source never rests. */
static void test_busy_source_does_not_starve_fds(void **state)
{
    (void)state;
    struct vio_loop *l;
    assert_int_equal(vio_loop_epoll_new(&l), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct busy b = {.l = l};
    struct piper p = {.l = l, .b = &b, .fd = fds[0]};
    struct vio_source ps;
    vio_source_init(&b.src, on_busy, &b);
    vio_source_init(&ps, on_pipe, &p);
    assert_int_equal(vio_watch_fd(l, fds[0], &ps), 0);
    vio_source_ready(l, &b.src);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(vio_loop_run(l), 0);
    /* Seen on the first turns, not after the busy source gave up. */
    assert_true(b.saw_pipe);
    assert_true(p.at_turn < 10);
    vio_unwatch_fd(l, fds[0]);
    close(fds[0]);
    close(fds[1]);
    vio_loop_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_order),
        cmocka_unit_test(test_turn_rules),
        cmocka_unit_test(test_busy_source_does_not_starve_fds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
