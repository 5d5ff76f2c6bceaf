/*
 * vigil peer as whole daemons, in virtual time: the real monitord with a
 * peer section (the SWIM member of peerd.c inside it) in each of several
 * simulated processes, on the simulated network, with their hooks as fake
 * programs. What a user of `vigil peer` sees, tried the way the world
 * would break it:
 *
 *   - kill_and_hooks: five members find each other through one seed; one
 *     is killed (SIGKILL); every survivor's own history has it dead within
 *     the protocol's bound, nobody else is ever suspected dead, each
 *     survivor's hook runs once for it (no leadership configured: every
 *     member acts), and the members' custom status pairs are known to the
 *     others through the metadata.
 *   - short_stops: a member stopped for 0.3 s twenty times (SIGSTOP), then
 *     the others stopped in turn: nobody is ever declared dead, and no hook
 *     runs.
 *   - leave_is_not_death: SIGTERM makes a member leave: left everywhere,
 *     never dead, and the hooks run for left.
 *   - restart_rejoins: a member killed and started again under the same
 *     id (a restart in the middle of work) is alive again everywhere, at a
 *     new incarnation above the one it died with.
 *   - isolation_heals: a member cut off the network for 60 s is dead to
 *     the others and sees them dead; when the cut heals, every member sees
 *     every other alive again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "fake_procs.h"
#include "sim_world.h"
#include "vigil/evlog.h"
#include "vigil/monitord.h"

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC
#define N  5

static char *xstrdup(const char *s)
{
    char *r = strdup(s);
    assert_non_null(r);
    return r;
}

static void prog_ok(void *arg, const struct fake_spawn *sp, struct fake_outcome *out)
{
    (void)arg;
    (void)sp;
    out->runs_for = 5 * MS;
}

struct world {
    struct sim_world *w;
    struct sim_proc *p[N];
    struct monitord *d[N];
    char key_hex[65];
    vigil_time_t t0;
};

static void member_id(size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "m%zu", i + 1);
}

static void member_start(struct world *wd, size_t i)
{
    char ip[32], id[16], listen[48], proc[24];
    snprintf(ip, sizeof ip, "127.2.0.%zu", i + 1);
    member_id(i, id, sizeof id);
    snprintf(listen, sizeof listen, "%s:7946", ip);
    snprintf(proc, sizeof proc, "%s", id);
    wd->p[i] = sim_proc_new(wd->w, proc, ip);
    assert_non_null(wd->p[i]);
    assert_int_equal(fake_procs_register(sim_proc_procs(wd->p[i]), "act", prog_ok, NULL), 0);
    char keyfile[80];
    snprintf(keyfile, sizeof keyfile, "%s\n", wd->key_hex);
    assert_int_equal(sim_proc_put_file(wd->p[i], "/etc/vigil/cluster.key", keyfile, 0600), 0);
    struct vcfg cfg;
    vcfg_init(&cfg);
    cfg.role = "peer";
    struct vcfg_peer *pc = &cfg.peer;
    pc->on = true;
    pc->id = xstrdup(id);
    pc->listen = xstrdup(listen);
    pc->seeds[0] = xstrdup("127.2.0.1:7946");
    pc->n_seeds = 1;
    pc->key_file = xstrdup("/etc/vigil/cluster.key");
    snprintf(pc->custom[0].key, sizeof pc->custom[0].key, "role");
    snprintf(pc->custom[0].value, sizeof pc->custom[0].value, "db-%s", id);
    pc->n_custom = 1;
    struct vcfg_hook *h = &cfg.monitor.hooks[0];
    vcfg_hook_default(h);
    h->argv[0] = xstrdup("act");
    h->on_states = 1u << VIGIL_STATE_DEAD | 1u << VIGIL_STATE_LEFT;
    cfg.monitor.n_hooks = 1;
    char err[256];
    if (monitord_new(sim_proc_env(wd->p[i]), &cfg, &wd->d[i], err, sizeof err))
        fail_msg("member %zu: %s", i, err);
}

static void member_stop(struct world *wd, size_t i)
{
    if (wd->d[i])
        assert_int_equal(monitord_free(wd->d[i]), 0);
    wd->d[i] = NULL;
    sim_proc_free(wd->p[i]);
    wd->p[i] = NULL;
}

static void world_start(struct world *wd, uint64_t seed, const struct sim_net_model *model)
{
    memset(wd, 0, sizeof(*wd));
    printf("# seed %" PRIu64 "\n", seed);
    wd->w = sim_world_new(seed);
    assert_non_null(wd->w);
    if (model)
        sim_world_set_model(wd->w, model);
    wd->t0 = sim_now(wd->w);
    for (size_t i = 0; i < 32; i++)
        snprintf(wd->key_hex + 2 * i, 3, "%02x", (unsigned)(sim_rand(wd->w) >> 56));
    for (size_t i = 0; i < N; i++)
        member_start(wd, i);
}

static void world_stop(struct world *wd)
{
    for (size_t i = 0; i < N; i++)
        if (wd->p[i])
            member_stop(wd, i);
    sim_world_free(wd->w);
}

static void run_until(struct world *wd, vigil_time_t t)
{
    assert_true(sim_world_run_until(wd->w, wd->t0 + t));
}

/* State events in member i's history about node entering state (-1: any), at or after from. */
static size_t count(struct world *wd, size_t i, const char *node, int state, vigil_time_t from,
                    vigil_time_t *first)
{
    struct evlog *h = monitord_events(wd->d[i]);
    size_t n = 0;
    for (size_t k = 0; k < evlog_count(h); k++) {
        const struct vigil_event *e = &evlog_at(h, k)->ev;
        if (e->type != VIGIL_EVENT_STATE || e->time - wd->t0 < from)
            continue;
        if (node && strcmp(e->node, node) != 0)
            continue;
        if (state >= 0 && (int)e->new_state != state)
            continue;
        if (n++ == 0 && first)
            *first = e->time - wd->t0;
    }
    return n;
}

/* Member i's view of node now. */
static enum vigil_state state_of(struct world *wd, size_t i, const char *node)
{
    const struct vigil_node *n = vigil_monitor_find(monitord_core(wd->d[i]), node);
    return n ? vigil_node_state(n) : VIGIL_STATE_UNKNOWN;
}

/* Hook runs at member i for node entering state (a name). */
static size_t hook_runs(struct world *wd, size_t i, const char *node, const char *state)
{
    struct vio_procs *p = sim_proc_procs(wd->p[i]);
    size_t n = 0;
    for (size_t k = 0; k < fake_procs_count(p); k++) {
        const struct fake_spawn *sp = fake_procs_spawn_at(p, k);
        const char *nd = fake_spawn_env(sp, "VIGIL_NODE");
        const char *st = fake_spawn_env(sp, "VIGIL_NEW_STATE");
        if (nd && st && (!node || !strcmp(nd, node)) && (!state || !strcmp(st, state)))
            n++;
    }
    return n;
}

/* Every live member sees every other live member alive. */
static void assert_all_alive(struct world *wd, const bool *up)
{
    for (size_t i = 0; i < N; i++) {
        if (!up[i])
            continue;
        for (size_t j = 0; j < N; j++) {
            char id[16];
            member_id(j, id, sizeof id);
            if (up[j] && state_of(wd, i, id) != VIGIL_STATE_ALIVE)
                fail_msg("m%zu sees %s %s", i + 1, id, vigil_state_name(state_of(wd, i, id)));
        }
    }
}

static const struct sim_net_model lan = {.delay = 200 * 1000, .jitter = 300 * 1000};

static void test_kill_and_hooks(void **state)
{
    (void)state;
    struct world wd;
    world_start(&wd, 20261202, &lan);
    run_until(&wd, 5 * S);
    bool up[N] = {true, true, true, true, true};
    assert_all_alive(&wd, up);
    /* The status pairs travelled with the membership. */
    const struct vigil_node *n3 = vigil_monitor_find(monitord_core(wd.d[0]), "m3");
    assert_non_null(n3);
    assert_true(vigil_node_member(n3));
    assert_int_equal(vigil_node_custom_count(n3), 1);
    assert_string_equal(vigil_node_custom(n3, 0)->key, "role");
    assert_string_equal(vigil_node_custom(n3, 0)->value, "db-m3");

    const vigil_time_t kill_at = 10 * S + 123 * MS;
    run_until(&wd, kill_at);
    sim_proc_kill(wd.p[4]);
    up[4] = false;
    run_until(&wd, 40 * S);
    for (size_t i = 0; i < 4; i++) {
        vigil_time_t dead_at = -1;
        assert_int_equal(count(&wd, i, "m5", VIGIL_STATE_DEAD, kill_at, &dead_at), 1);
        vigil_time_t took = dead_at - kill_at;
        printf("# m%zu: m5 dead %.3f s after the kill\n", i + 1, (double)took / S);
        /*
         * The bound: a probe within a period or two, then the suspicion
         * timeout, at most suspicion_max_mult (6) times its shortest (4 s
         * for fewer than 10 members) and much less with confirmations.
         */
        assert_true(took > 0 && took < 12 * S);
        /* Nobody else was ever dead or suspect, anywhere. */
        for (size_t j = 0; j < 4; j++) {
            char id[16];
            member_id(j, id, sizeof id);
            assert_int_equal(count(&wd, i, id, VIGIL_STATE_DEAD, 0, NULL), 0);
            assert_int_equal(count(&wd, i, id, VIGIL_STATE_SUSPECT, 0, NULL), 0);
        }
        /* Each survivor acted once on it: no leadership is configured. */
        assert_int_equal(hook_runs(&wd, i, "m5", "dead"), 1);
        assert_int_equal(hook_runs(&wd, i, NULL, NULL), 1);
    }
    assert_all_alive(&wd, up);
    world_stop(&wd);
}

static void test_short_stops(void **state)
{
    (void)state;
    struct world wd;
    world_start(&wd, 7, &lan);
    run_until(&wd, 5 * S);
    vigil_time_t t = 5 * S;
    /* m3 stopped for 0.3 s twenty times, every 1.7 s; then each other member ten times. */
    for (size_t k = 0; k < 20; k++) {
        sim_proc_pause(wd.p[2], true);
        run_until(&wd, t + 300 * MS);
        sim_proc_pause(wd.p[2], false);
        t += 1700 * MS;
        run_until(&wd, t);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < 10; k++) {
            sim_proc_pause(wd.p[i], true);
            run_until(&wd, t + 300 * MS);
            sim_proc_pause(wd.p[i], false);
            t += 1300 * MS;
            run_until(&wd, t);
        }
    run_until(&wd, t + 20 * S);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(count(&wd, i, NULL, VIGIL_STATE_DEAD, 0, NULL), 0);
        assert_int_equal(hook_runs(&wd, i, NULL, NULL), 0);
    }
    bool up[N] = {true, true, true, true, true};
    assert_all_alive(&wd, up);
    world_stop(&wd);
}

static void test_leave_is_not_death(void **state)
{
    (void)state;
    struct world wd;
    world_start(&wd, 99, &lan);
    run_until(&wd, 5 * S);
    sim_proc_signal(wd.p[1], SIGTERM);
    run_until(&wd, 6 * S);
    /* The leaving member stopped its loop; its daemon is freed as `vigil peer` would. */
    member_stop(&wd, 1);
    run_until(&wd, 30 * S);
    for (size_t i = 0; i < N; i++) {
        if (i == 1)
            continue;
        assert_int_equal(state_of(&wd, i, "m2"), VIGIL_STATE_LEFT);
        assert_int_equal(count(&wd, i, "m2", VIGIL_STATE_DEAD, 0, NULL), 0);
        assert_int_equal(count(&wd, i, "m2", VIGIL_STATE_SUSPECT, 0, NULL), 0);
        assert_int_equal(hook_runs(&wd, i, "m2", "left"), 1);
    }
    world_stop(&wd);
}

static void test_restart_rejoins(void **state)
{
    (void)state;
    struct world wd;
    world_start(&wd, 4242, &lan);
    run_until(&wd, 5 * S);
    sim_proc_kill(wd.p[3]);
    run_until(&wd, 30 * S);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(state_of(&wd, i, "m4"), VIGIL_STATE_DEAD);
    /* Started again under the same id, in the middle of the others' work. */
    member_stop(&wd, 3);
    member_start(&wd, 3);
    run_until(&wd, 45 * S);
    bool up[N] = {true, true, true, true, true};
    assert_all_alive(&wd, up);
    for (size_t i = 0; i < N; i++) {
        if (i == 3)
            continue;
        vigil_time_t back = -1;
        assert_int_equal(count(&wd, i, "m4", VIGIL_STATE_ALIVE, 6 * S, &back), 1);
        printf("# m%zu: m4 alive again %.3f s after its restart at 30 s\n", i + 1,
               (double)(back - 30 * S) / S);
        assert_true(back - 30 * S < 5 * S);
    }
    world_stop(&wd);
}

static void test_isolation_heals(void **state)
{
    (void)state;
    struct world wd;
    world_start(&wd, 31337, &lan);
    run_until(&wd, 5 * S);
    sim_proc_cut(wd.p[2], true);
    run_until(&wd, 65 * S);
    for (size_t i = 0; i < N; i++) {
        if (i == 2)
            continue;
        assert_int_equal(state_of(&wd, i, "m3"), VIGIL_STATE_DEAD);
        /*
         * The cut-off member's own probes all fail: Lifeguard makes it
         * slow to accuse (its probes stretched, its suspicions long and
         * unconfirmed), but within a minute it holds the others dead.
         */
        char id[16];
        member_id(i, id, sizeof id);
        printf("# m3 sees %s %s\n", id, vigil_state_name(state_of(&wd, 2, id)));
        assert_int_equal(state_of(&wd, 2, id), VIGIL_STATE_DEAD);
    }
    sim_proc_cut(wd.p[2], false);
    /* The dead are pinged every reconnect_interval (30 s): whole again within it and a sync. */
    vigil_time_t whole = -1;
    bool up[N] = {true, true, true, true, true};
    for (vigil_time_t t = 66 * S; t <= 160 * S && whole < 0; t += S) {
        run_until(&wd, t);
        bool all = true;
        for (size_t i = 0; i < N && all; i++)
            for (size_t j = 0; j < N && all; j++) {
                char id[16];
                member_id(j, id, sizeof id);
                all = state_of(&wd, i, id) == VIGIL_STATE_ALIVE;
            }
        if (all)
            whole = t;
    }
    printf("# whole again %.0f s after the heal\n", (double)(whole - 65 * S) / S);
    assert_true(whole > 0 && whole - 65 * S <= 65 * S);
    assert_all_alive(&wd, up);
    world_stop(&wd);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_and_hooks),     cmocka_unit_test(test_short_stops),
        cmocka_unit_test(test_leave_is_not_death), cmocka_unit_test(test_restart_rejoins),
        cmocka_unit_test(test_isolation_heals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
