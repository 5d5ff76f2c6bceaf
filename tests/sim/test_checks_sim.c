/*
 * Health checks in virtual time (checks.c): the schedule and the rise and
 * fall rule, exactly, on the fake loop with fake child processes.
 *
 *   - rule: check_apply against a table of sequences.
 *   - schedule: interval, fastinter while the status changes, downinter
 *     while critical; every run's start and every change's time to the
 *     nanosecond.
 *   - timeout: a command that ignores TERM gets TERM at the timeout and KILL
 *     2 s later; the result is critical and says so; runs never overlap.
 *   - output: the first bytes of what a command writes are the evidence.
 *   - spread: a thousand checks with one interval start spread over it.
 *   - pairs: the agent's report of a check survives formatting and parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fake_loop.h"
#include "fake_procs.h"
#include "vigil/checks.h"

#define MS VIGIL_NSEC_PER_MSEC
#define S  VIGIL_NSEC_PER_SEC
#define T0 (1000 * S)

/* The service the fake command checks: its exit code, its output, how long it takes. */
static int svc_code;
static const char *svc_output;
static vigil_time_t svc_runs = 10 * MS;

static void prog_svc(void *arg, const struct fake_spawn *sp, struct fake_outcome *out)
{
    (void)arg;
    (void)sp;
    out->exit_code = svc_code;
    out->runs_for = svc_runs;
    out->output = svc_output;
}

static void prog_hang(void *arg, const struct fake_spawn *sp, struct fake_outcome *out)
{
    (void)arg;
    (void)sp;
    out->runs_for = FAKE_PROC_FOREVER;
    out->ignore_term = true;
}

struct change {
    vigil_time_t at;
    enum check_status from, to;
    char detail[VIGIL_EVENT_DETAIL_MAX + 1];
};

struct world {
    vigil_time_t clock;
    struct vio_loop *loop;
    struct vio_procs *procs;
    struct vio_env env;
    struct change changes[64];
    size_t n_changes;
};

static void on_change(void *arg, const struct check_info *c, enum check_status old,
                      const struct check_result *r, vigil_time_t now)
{
    struct world *w = arg;
    (void)c;
    if (w->n_changes < 64) {
        struct change *ch = &w->changes[w->n_changes++];
        ch->at = now;
        ch->from = old;
        ch->to = c->status;
        snprintf(ch->detail, sizeof ch->detail, "%s", r->detail);
    }
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    w->clock = T0;
    w->loop = fake_loop_new(&w->clock);
    assert_non_null(w->loop);
    w->procs = fake_procs_new(w->loop);
    assert_non_null(w->procs);
    assert_int_equal(fake_procs_register(w->procs, "svc", prog_svc, NULL), 0);
    assert_int_equal(fake_procs_register(w->procs, "hang", prog_hang, NULL), 0);
    w->env.loop = w->loop;
    w->env.procs = w->procs;
    svc_code = 0;
    svc_output = NULL;
    svc_runs = 10 * MS;
}

static void world_free(struct world *w)
{
    fake_procs_free(w->procs);
    vio_loop_free(w->loop);
}

static void exec_check(struct vcfg_check *c, const char *prog)
{
    vcfg_check_default(c);
    c->name = (char *)"svc";
    c->node = (char *)"web1";
    c->kind = VCFG_CHECK_EXEC;
    c->argv[0] = (char *)prog;
}

/* ---- the rule ---- */

static void test_rule(void **state)
{
    (void)state;
    enum check_status P = CHECK_PASSING, W = CHECK_WARNING, C = CHECK_CRITICAL;
    struct {
        uint32_t rise, fall;
        enum check_status in[12];
        size_t n;
        enum check_status want[12]; /* the status after each result */
    } cases[] = {
        /* The first result decides at once. */
        {2, 3, {C}, 1, {C}},
        /* fall 3: two failures change nothing, a pass clears them, three in a row do. */
        {2, 3, {P, C, C, P, C, C, C}, 7, {P, P, P, P, P, P, C}},
        /* rise 2: one pass is not enough, a failure clears it, two in a row are. */
        {2, 3, {C, P, C, P, P}, 5, {C, C, C, C, P}},
        /* Worse results of mixed kinds count together; the newest is the status. */
        {2, 3, {P, W, C, W}, 4, {P, P, P, W}},
        /* From warning: a critical is worse, a pass better. */
        {1, 2, {W, C, C, P}, 4, {W, W, C, P}},
        /* rise 1, fall 1: every change at once. */
        {1, 1, {P, C, P, W, P}, 5, {P, C, P, W, P}},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        enum check_status st = CHECK_UNKNOWN;
        uint32_t good = 0, bad = 0;
        for (size_t i = 0; i < cases[k].n; i++) {
            enum check_status before = st;
            bool changed =
                check_apply(&st, &good, &bad, cases[k].rise, cases[k].fall, cases[k].in[i]);
            if (st != cases[k].want[i])
                fail_msg("case %zu result %zu: status %d, want %d", k, i, (int)st,
                         (int)cases[k].want[i]);
            assert_int_equal(changed, before != st);
        }
    }
}

/* ---- the schedule ---- */

static void test_schedule(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct vcfg_check c;
    exec_check(&c, "svc");
    c.interval = 1 * S;
    c.timeout = 500 * MS;
    c.fastinter = 100 * MS;
    c.downinter = 5 * S;
    c.rise = 2;
    c.fall = 3;
    struct check_set *s = NULL;
    char err[128];
    assert_int_equal(check_set_new(&w.env, &c, 1, on_change, &w, &s, err, sizeof err), 0);
    const struct check_info *ci = check_set_at(s, 0);
    vigil_time_t p0 = ci->next;
    assert_true(p0 >= T0 && p0 < T0 + 1 * S); /* the first run inside the first interval */

    /* Passing at once: unknown -> passing at the end of the first run. */
    fake_loop_run_until(w.loop, p0 + 20 * MS);
    assert_int_equal(w.n_changes, 1);
    assert_int_equal(w.changes[0].at, p0 + 10 * MS);
    assert_int_equal(w.changes[0].to, CHECK_PASSING);

    /* Down at p0 + 2.5 s: runs at p0 + 3 s, then fastinter: 3.1 s, 3.2 s; critical after the third.
     */
    fake_loop_run_until(w.loop, p0 + 2500 * MS);
    svc_code = 2;
    fake_loop_run_until(w.loop, p0 + 3150 * MS);
    assert_int_equal(w.n_changes, 1);
    assert_int_equal(ci->bad, 2);
    fake_loop_run_until(w.loop, p0 + 3300 * MS);
    assert_int_equal(w.n_changes, 2);
    assert_int_equal(w.changes[1].at, p0 + 3210 * MS);
    assert_int_equal(w.changes[1].to, CHECK_CRITICAL);
    assert_string_equal(w.changes[1].detail, "exit 2");
    /* Critical: the next run after downinter, from the run that decided. */
    assert_int_equal(ci->next, p0 + 8200 * MS);

    /* Up again at p0 + 4 s: seen at 8.2 s, confirmed at 8.3 s (fastinter), then the interval. */
    fake_loop_run_until(w.loop, p0 + 4 * S);
    svc_code = 0;
    fake_loop_run_until(w.loop, p0 + 8250 * MS);
    assert_int_equal(w.n_changes, 2);
    assert_int_equal(ci->good, 1);
    assert_int_equal(ci->next, p0 + 8300 * MS);
    fake_loop_run_until(w.loop, p0 + 8400 * MS);
    assert_int_equal(w.n_changes, 3);
    assert_int_equal(w.changes[2].at, p0 + 8310 * MS);
    assert_int_equal(w.changes[2].to, CHECK_PASSING);
    assert_int_equal(ci->next, p0 + 9300 * MS);

    /* Every start was where the schedule put it: no lateness at all on the fake loop. */
    struct check_lateness lt;
    check_set_lateness(s, &lt);
    assert_true(lt.n >= 8);
    assert_int_equal(lt.max, 0);

    /* Exactly the runs the schedule says: 0..3 s (4), 3.1, 3.2, 8.2, 8.3. */
    assert_int_equal(ci->runs, 8);
    assert_int_equal(fake_procs_count(w.procs), 8);
    for (size_t i = 0; i < fake_procs_count(w.procs); i++) {
        static const vigil_time_t at[] = {0, 1000, 2000, 3000, 3100, 3200, 8200, 8300};
        assert_int_equal(fake_procs_spawn_at(w.procs, i)->start, p0 + at[i] * MS);
    }
    check_set_free(s);
    world_free(&w);
}

/* A warning (exit 1) counts as worse than passing, with fall and fastinter as a failure. */
static void test_warning(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct vcfg_check c;
    exec_check(&c, "svc");
    c.interval = 1 * S;
    c.timeout = 500 * MS;
    c.fastinter = 200 * MS;
    c.fall = 2;
    svc_output = "DISK WARNING - free space: / 812 MB (9%)\n";
    svc_code = 1;
    struct check_set *s = NULL;
    char err[128];
    assert_int_equal(check_set_new(&w.env, &c, 1, on_change, &w, &s, err, sizeof err), 0);
    fake_loop_run_until(w.loop, T0 + 3 * S);
    assert_int_equal(w.n_changes, 1);
    assert_int_equal(w.changes[0].to, CHECK_WARNING);
    /* The output is the evidence: printable, the newline made a space and trimmed. */
    assert_string_equal(w.changes[0].detail, "DISK WARNING - free space: / 812 MB (9%)");
    assert_int_equal(check_set_at(s, 0)->last.code, 1);
    check_set_free(s);
    world_free(&w);
}

/* ---- the timeout ---- */

static void test_timeout(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct vcfg_check c;
    exec_check(&c, "hang");
    c.interval = 10 * S;
    c.timeout = 300 * MS;
    c.fall = 1;
    struct check_set *s = NULL;
    char err[128];
    assert_int_equal(check_set_new(&w.env, &c, 1, on_change, &w, &s, err, sizeof err), 0);
    const struct check_info *ci = check_set_at(s, 0);
    vigil_time_t p0 = ci->next;
    fake_loop_run_until(w.loop, p0 + 5 * S);
    const struct fake_spawn *sp = fake_procs_spawn_at(w.procs, 0);
    assert_int_equal(sp->term_at, p0 + 300 * MS);
    assert_int_equal(sp->kill_at, p0 + 2300 * MS);
    assert_int_equal(sp->end, p0 + 2300 * MS);
    assert_int_equal(w.n_changes, 1);
    assert_int_equal(w.changes[0].to, CHECK_CRITICAL);
    assert_int_equal(w.changes[0].at, p0 + 2300 * MS);
    assert_string_equal(w.changes[0].detail, "timed out after 300 ms (killed)");
    assert_int_equal(ci->last.code, 128 + SIGKILL);
    /* One run at a time, and the next where the interval puts it. */
    assert_int_equal(fake_procs_max_running(w.procs), 1);
    assert_int_equal(ci->next, p0 + 10 * S);
    check_set_free(s);
    world_free(&w);
}

/* A run that outlasts its period: the next starts when it ends, never alongside. */
static void test_no_overlap(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct vcfg_check c;
    exec_check(&c, "svc");
    c.interval = 100 * MS;
    c.timeout = 250 * MS; /* longer than the interval: allowed */
    svc_runs = 130 * MS;  /* each run outlasts its period */
    struct check_set *s = NULL;
    char err[128];
    assert_int_equal(check_set_new(&w.env, &c, 1, on_change, &w, &s, err, sizeof err), 0);
    fake_loop_run_until(w.loop, T0 + 2 * S);
    assert_int_equal(fake_procs_max_running(w.procs), 1);
    size_t n = fake_procs_count(w.procs);
    /* 130 ms runs at a 100 ms interval: one every other slot, 200 ms apart. */
    assert_true(n >= 9 && n <= 11);
    for (size_t i = 1; i < n; i++) {
        assert_true(fake_procs_spawn_at(w.procs, i)->start >=
                    fake_procs_spawn_at(w.procs, i - 1)->end);
        /* On the grid: the missed slot is skipped, never run late. */
        assert_int_equal(fake_procs_spawn_at(w.procs, i)->start -
                             fake_procs_spawn_at(w.procs, i - 1)->start,
                         200 * MS);
    }
    check_set_free(s);
    world_free(&w);
}

/* ---- spread ---- */

static void test_spread(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    enum { N = 1000 };
    static const char *const nodes[7] = {"n0", "n1", "n2", "n3", "n4", "n5", "n6"};
    struct vcfg_check *cs = calloc(N, sizeof(*cs));
    char(*names)[16] = calloc(N, sizeof(*names));
    assert_non_null(cs);
    assert_non_null(names);
    for (size_t i = 0; i < N; i++) {
        exec_check(&cs[i], "svc");
        snprintf(names[i], sizeof names[i], "c%zu", i);
        cs[i].name = names[i];
        cs[i].node = (char *)nodes[i % 7];
        cs[i].interval = 1 * S;
    }
    struct check_set *s = NULL;
    char err[128];
    assert_int_equal(check_set_new(&w.env, cs, N, on_change, &w, &s, err, sizeof err), 0);
    /* First starts by tenth of the interval: each tenth holds 10 % give or take 3.5 %. */
    unsigned tenth[10] = {0};
    for (size_t i = 0; i < N; i++) {
        vigil_time_t off = check_set_at(s, i)->next - T0;
        assert_true(off >= 0 && off < 1 * S);
        tenth[off / (100 * MS)]++;
    }
    for (int k = 0; k < 10; k++)
        if (tenth[k] < 65 || tenth[k] > 135)
            fail_msg("tenth %d of the interval holds %u first runs of %d", k, tenth[k], N);
    /* The index by node: each node's checks, all of them and only them, in list order. */
    size_t total = 0;
    for (int k = 0; k < 7; k++) {
        const size_t *idx;
        size_t cnt = check_set_of_node(s, nodes[k], &idx);
        assert_int_equal(cnt, N / 7 + (k < N % 7 ? 1 : 0));
        for (size_t i = 0; i < cnt; i++) {
            assert_string_equal(check_set_at(s, idx[i])->node, nodes[k]);
            assert_int_equal(idx[i] % 7, (size_t)k);
            if (i > 0)
                assert_true(idx[i] > idx[i - 1]);
        }
        total += cnt;
    }
    assert_int_equal(total, N);
    const size_t *none;
    assert_int_equal(check_set_of_node(s, "n7", &none), 0);
    /* A second of virtual time: every check ran once, at most a few at once. */
    fake_loop_run_until(w.loop, T0 + 1 * S);
    assert_int_equal(fake_procs_count(w.procs), N);
    assert_true(fake_procs_max_running(w.procs) < 40);
    check_set_free(s);
    free(cs);
    free(names);
    world_free(&w);
}

/* ---- the agent's pairs ---- */

static void test_pairs(void **state)
{
    (void)state;
    struct check_result r = {.status = CHECK_CRITICAL, .latency = 12 * MS + 400, .code = 503};
    snprintf(r.detail, sizeof r.detail, "HTTP 503: <html><body>Service Unavailable for a while");
    char key[VIGIL_CUSTOM_KEY_MAX + 1], val[VIGIL_CUSTOM_VAL_MAX + 1];
    check_pair_format("http", CHECK_CRITICAL, true, &r, key, val);
    assert_string_equal(key, "check.http");
    assert_true(strlen(val) <= VIGIL_CUSTOM_VAL_MAX);
    assert_true(vigil_custom_value_valid(val));
    assert_true(vigil_custom_key_valid(key));
    struct vigil_custom p;
    snprintf(p.key, sizeof p.key, "%s", key);
    snprintf(p.value, sizeof p.value, "%s", val);
    char name[CHECK_PAIR_NAME_MAX + 1];
    enum check_status st;
    bool dead;
    struct check_result back;
    assert_true(check_pair_parse(&p, name, &st, &dead, &back));
    assert_string_equal(name, "http");
    assert_int_equal(st, CHECK_CRITICAL);
    assert_true(dead);
    assert_int_equal(back.latency, 12 * MS);
    assert_int_equal(back.code, 503);
    assert_true(strncmp(back.detail, "HTTP 503: <html>", 16) == 0);
    /* Not a check's pair, or a garbled one: refused. */
    static const char *const bad[][2] = {
        {"role", "passing 1 0"},      {"check.", "passing 1 0"},   {"check.x", "fine 1 0"},
        {"check.x", "passing"},       {"check.x", "passing -1 0"}, {"check.x", "unknown 1 0"},
        {"check.x", "critical! x 0"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(p.key, sizeof p.key, "%s", bad[i][0]);
        snprintf(p.value, sizeof p.value, "%s", bad[i][1]);
        if (check_pair_parse(&p, name, &st, &dead, &back))
            fail_msg("\"%s\" = \"%s\" parsed", bad[i][0], bad[i][1]);
    }
    /* rchecks: a change is reported once; the same status again is not a change. */
    struct rchecks *rc = rchecks_new();
    assert_non_null(rc);
    struct vigil_custom pairs[2];
    snprintf(pairs[0].key, sizeof pairs[0].key, "role");
    snprintf(pairs[0].value, sizeof pairs[0].value, "web");
    snprintf(pairs[1].key, sizeof pairs[1].key, "check.http");
    snprintf(pairs[1].value, sizeof pairs[1].value, "passing 1 200 ok");
    assert_int_equal(rchecks_update(rc, "web1", pairs, 2, T0, NULL, NULL), 0);
    assert_int_equal(rchecks_count(rc), 1);
    assert_int_equal(rchecks_at(rc, 0)->status, CHECK_PASSING);
    assert_int_equal(rchecks_at(rc, 0)->changes, 1);
    assert_int_equal(rchecks_update(rc, "web1", pairs, 2, T0 + S, NULL, NULL), 0);
    assert_int_equal(rchecks_at(rc, 0)->changes, 1);
    snprintf(pairs[1].value, sizeof pairs[1].value, "critical 2 0 Connection refused");
    assert_int_equal(rchecks_update(rc, "web1", pairs, 2, T0 + 2 * S, NULL, NULL), 0);
    assert_int_equal(rchecks_at(rc, 0)->status, CHECK_CRITICAL);
    assert_int_equal(rchecks_at(rc, 0)->since, T0 + 2 * S);
    assert_string_equal(rchecks_at(rc, 0)->last.detail, "Connection refused");
    /* Another node's check of the same name is another check. */
    assert_int_equal(rchecks_update(rc, "web2", pairs, 2, T0 + 2 * S, NULL, NULL), 0);
    assert_int_equal(rchecks_count(rc), 2);
    /* A check the agent no longer reports is unknown, and decides nothing. */
    snprintf(pairs[1].value, sizeof pairs[1].value, "critical! 2 0 Connection refused");
    assert_int_equal(rchecks_update(rc, "web1", pairs, 2, T0 + 3 * S, NULL, NULL), 0);
    assert_true(rchecks_at(rc, 0)->means_dead);
    assert_int_equal(rchecks_update(rc, "web1", pairs, 1, T0 + 4 * S, NULL, NULL), 0);
    assert_int_equal(rchecks_at(rc, 0)->status, CHECK_UNKNOWN);
    assert_false(rchecks_at(rc, 0)->means_dead);
    assert_int_equal(rchecks_at(rc, 0)->since, T0 + 4 * S);
    assert_int_equal(rchecks_at(rc, 1)->status, CHECK_CRITICAL); /* web2's stays */
    rchecks_free(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule),       cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_warning),    cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_no_overlap), cmocka_unit_test(test_spread),
        cmocka_unit_test(test_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
