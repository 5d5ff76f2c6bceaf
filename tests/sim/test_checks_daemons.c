/*
 * Service checks in whole daemons, in virtual time: the real monitor and
 * agents (monitord, agentd) on the simulated world, with the checks' fake
 * commands deciding when a service is up.
 *
 *   - agent_check_sent_at_once: a service that fails on a host whose agent
 *     runs is known to the monitor one network delay after the agent's
 *     check decided, not at the next heartbeat; the node stays alive; the
 *     action on the check runs once, and its undo once.
 *   - agent_check_under_loss: at 20 % loss the change still arrives (the
 *     repeats), and the node is never suspected.
 *   - critical_means_dead: a heartbeat node whose deciding check fails is
 *     dead at the exact run that made the check critical, and alive at the
 *     exact run that made it pass, while its heartbeats never stopped.
 *   - monitor_pauses: a monitor stopped for 0.3 s again and again (SIGSTOP),
 *     with ping checks of 50 ms timeouts, convicts no service: answers that
 *     came while it was stopped are read before any timeout is judged.
 *   - agent_pause_ping: a stopped agent's ping check fails (fall runs), and
 *     passes again (rise runs) when it resumes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "fake_procs.h"
#include "sim_world.h"
#include "vigil/agentd.h"
#include "vigil/checks.h"
#include "vigil/monitord.h"

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC

static char *xstrdup(const char *s)
{
    char *r = strdup(s);
    assert_non_null(r);
    return r;
}

/* The services: up (exit 0) or down (exit 2), one per agent. */
static int svc_exit[8];

static void prog_svc(void *arg, const struct fake_spawn *sp, struct fake_outcome *out)
{
    (void)sp;
    out->exit_code = svc_exit[(size_t)(uintptr_t)arg];
    out->runs_for = 2 * MS;
    out->output = out->exit_code ? "connection refused" : "ok";
}

static void prog_ok(void *arg, const struct fake_spawn *sp, struct fake_outcome *out)
{
    (void)arg;
    (void)sp;
    out->runs_for = 5 * MS;
}

struct world {
    struct sim_world *w;
    struct sim_proc *mon_p;
    struct monitord *mon;
    struct sim_proc *ag_p[8];
    struct agentd *ag[8];
    size_t n;
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    vigil_time_t t0; /* the world's clock at the start: the tests' times are after it */
};

static void agent_ip(size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.1.0.%zu", i + 1);
}

static void agent_id(size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "web%zu", i + 1);
}

/* An exec check of the fake program prog, every interval. */
static void exec_check(struct vcfg_check *c, const char *node, const char *name, const char *prog,
                       vigil_time_t interval, uint32_t rise, uint32_t fall)
{
    vcfg_check_default(c);
    c->name = xstrdup(name);
    c->node = node ? xstrdup(node) : NULL;
    c->kind = VCFG_CHECK_EXEC;
    c->argv[0] = xstrdup(prog);
    c->interval = interval;
    c->timeout = interval / 2;
    c->rise = rise;
    c->fall = fall;
}

/*
 * n agents at 1 s heartbeats; agent i runs a local check "http" of service
 * i every 100 ms (fall 1, rise 2) and answers pings. The monitor: an exec
 * action on check "http" (do and undo), and what mon_checks adds.
 */
static void world_start(struct world *wd, uint64_t seed, size_t n,
                        const struct sim_net_model *model,
                        void (*mon_checks)(struct world *wd, struct vcfg *cfg))
{
    memset(wd, 0, sizeof(*wd));
    printf("# seed %" PRIu64 "\n", seed);
    wd->w = sim_world_new(seed);
    assert_non_null(wd->w);
    if (model)
        sim_world_set_model(wd->w, model);
    wd->n = n;
    wd->t0 = sim_now(wd->w);
    for (size_t i = 0; i < sizeof(wd->key); i++)
        wd->key[i] = (uint8_t)(sim_rand(wd->w) >> 56);
    wd->mon_p = sim_proc_new(wd->w, "monitor", "127.0.0.1");
    assert_non_null(wd->mon_p);
    assert_int_equal(fake_procs_register(sim_proc_procs(wd->mon_p), "act", prog_ok, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "svc%zu", i);
        assert_int_equal(
            fake_procs_register(sim_proc_procs(wd->mon_p), name, prog_svc, (void *)(uintptr_t)i),
            0);
    }
    struct vcfg cfg;
    vcfg_init(&cfg);
    struct vcfg_hook *h = &cfg.monitor.hooks[0];
    vcfg_hook_default(h);
    h->argv[0] = xstrdup("act");
    h->checks[0] = xstrdup("http");
    h->n_checks = 1;
    h->on_states = 1u << VIGIL_STATE_DEAD;
    h->undo = true;
    cfg.monitor.n_hooks = 1;
    cfg.monitor.core.has_key = true;
    cfg.monitor.core.key_is_master = true;
    memcpy(cfg.monitor.core.key, wd->key, sizeof(wd->key));
    cfg.monitor.interval = S;
    vigil_detector_config_default(&cfg.monitor.core.detector, VIGIL_DETECTOR_PHI, S);
    if (mon_checks)
        mon_checks(wd, &cfg);
    char err[256];
    if (monitord_new(sim_proc_env(wd->mon_p), &cfg, &wd->mon, err, sizeof(err)))
        fail_msg("monitor: %s", err);
    for (size_t i = 0; i < n; i++) {
        char ip[32], id[32], listen[48], svc[32];
        agent_ip(i, ip, sizeof ip);
        agent_id(i, id, sizeof id);
        snprintf(listen, sizeof listen, "%s:7948", ip);
        snprintf(svc, sizeof svc, "svc%zu", i);
        wd->ag_p[i] = sim_proc_new(wd->w, id, ip);
        assert_non_null(wd->ag_p[i]);
        assert_int_equal(
            fake_procs_register(sim_proc_procs(wd->ag_p[i]), svc, prog_svc, (void *)(uintptr_t)i),
            0);
        struct vcfg a;
        vcfg_init(&a);
        a.agent.id = xstrdup(id);
        a.agent.interval = S;
        a.agent.has_key = true;
        assert_int_equal(vigil_wire_node_key(a.agent.key, wd->key, id), 0);
        a.agent.listen = xstrdup(listen);
        exec_check(&a.agent.checks[0], NULL, "http", svc, 100 * MS, 2, 1);
        a.agent.n_checks = 1;
        struct agent_pairs base = {.n = 0};
        if (agentd_new(sim_proc_env(wd->ag_p[i]), &a, &base, sim_proc_log(wd->ag_p[i]), &wd->ag[i],
                       err, sizeof err))
            fail_msg("agent %zu: %s", i, err);
    }
}

static void world_stop(struct world *wd)
{
    for (size_t i = 0; i < wd->n; i++)
        agentd_free(wd->ag[i]);
    assert_int_equal(monitord_free(wd->mon), 0);
    sim_world_free(wd->w);
}

static void run_until(struct world *wd, vigil_time_t t)
{
    assert_true(sim_world_run_until(wd->w, wd->t0 + t));
}

/* Events of node: of type (state or check), check name (NULL: any), entering state (-1: any). */
static size_t count(struct world *wd, int type, const char *node, const char *check, int state,
                    vigil_time_t from, vigil_time_t *first)
{
    struct evlog *h = monitord_events(wd->mon);
    size_t n = 0;
    for (size_t i = 0; i < evlog_count(h); i++) {
        const struct vigil_event *e = &evlog_at(h, i)->ev;
        if ((int)e->type != type || e->time - wd->t0 < from || strcmp(e->node, node) != 0)
            continue;
        if (check && (!e->check || strcmp(e->check, check) != 0))
            continue;
        if (state >= 0 && (int)e->new_state != state)
            continue;
        if (n++ == 0 && first)
            *first = e->time - wd->t0;
    }
    return n;
}

/* Runs of the action for node with VIGIL_ACTION = what. */
static size_t action_runs(struct world *wd, const char *node, const char *what)
{
    struct vio_procs *p = sim_proc_procs(wd->mon_p);
    size_t n = 0;
    for (size_t i = 0; i < fake_procs_count(p); i++) {
        const struct fake_spawn *sp = fake_procs_spawn_at(p, i);
        if (strcmp(sp->argv[0], "act") != 0)
            continue;
        const char *nd = fake_spawn_env(sp, "VIGIL_NODE");
        const char *act = fake_spawn_env(sp, "VIGIL_ACTION");
        const char *ck = fake_spawn_env(sp, "VIGIL_CHECK");
        if (nd && act && ck && !strcmp(nd, node) && !strcmp(act, what) && !strcmp(ck, "http"))
            n++;
    }
    return n;
}

/* When the agent's log says its check changed to what, at or after from (-1: never). */
static vigil_time_t spawn_time_of_change(struct world *wd, size_t i, vigil_time_t from)
{
    /* The agent's check runs are its fake spawns; the one that decided ends 2 ms after its start.
     */
    struct vio_procs *p = sim_proc_procs(wd->ag_p[i]);
    for (size_t k = 0; k < fake_procs_count(p); k++) {
        const struct fake_spawn *sp = fake_procs_spawn_at(p, k);
        if (sp->start - wd->t0 >= from && sp->end != VIGIL_TIME_NEVER && (sp->status >> 8) != 0)
            return sp->end - wd->t0;
    }
    return -1;
}

static void test_agent_check_sent_at_once(void **state)
{
    (void)state;
    struct world wd;
    static const struct sim_net_model net = {.delay = 300 * 1000, .jitter = 200 * 1000};
    memset(svc_exit, 0, sizeof svc_exit);
    world_start(&wd, 20261202, 3, &net, NULL);
    run_until(&wd, 5 * S);
    assert_int_equal(count(&wd, VIGIL_EVENT_CHECK, "web2", "http", VIGIL_STATE_ALIVE, 0, NULL), 1);
    /* The service of web2 dies at 5.05 s; its host and agent stay up. */
    run_until(&wd, 5 * S + 50 * MS);
    svc_exit[1] = 2;
    run_until(&wd, 7 * S);
    vigil_time_t decided = spawn_time_of_change(&wd, 1, 5 * S + 50 * MS);
    vigil_time_t seen = -1;
    assert_true(decided > 0);
    assert_int_equal(count(&wd, VIGIL_EVENT_CHECK, "web2", "http", VIGIL_STATE_DEAD, 5 * S, &seen),
                     1);
    /* Within one network delay (0.3 to 0.5 ms) of the decision: not at the next heartbeat. */
    printf("# decided at %.4f s, known to the monitor at %.4f s\n", (double)decided / S,
           (double)seen / S);
    assert_true(seen - decided >= 300 * 1000 && seen - decided <= 500 * 1000);
    /* At most one check period (100 ms) after the service died, plus the run (2 ms). */
    assert_true(decided - (5 * S + 50 * MS) <= 102 * MS);
    /* The node itself stays alive; the action ran once, for this check. */
    assert_int_equal(count(&wd, VIGIL_EVENT_STATE, "web2", NULL, -1, 1 * S, NULL), 0);
    assert_int_equal(action_runs(&wd, "web2", "do"), 1);
    assert_int_equal(action_runs(&wd, "web1", "do"), 0);
    /* Back: rise 2 runs, then the undo, once. */
    svc_exit[1] = 0;
    run_until(&wd, 9 * S);
    assert_int_equal(count(&wd, VIGIL_EVENT_CHECK, "web2", "http", VIGIL_STATE_ALIVE, 7 * S, NULL),
                     1);
    assert_int_equal(action_runs(&wd, "web2", "undo"), 1);
    assert_int_equal(action_runs(&wd, "web2", "do"), 1);
    world_stop(&wd);
}

static void test_agent_check_under_loss(void **state)
{
    (void)state;
    static const struct sim_net_model net = {.loss = 0.2, .delay = 300 * 1000, .jitter = MS};
    uint64_t seeds[] = {1, 2, 3, 4, 5};
    for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
        struct world wd;
        memset(svc_exit, 0, sizeof svc_exit);
        world_start(&wd, seeds[k], 4, &net, NULL);
        run_until(&wd, 10 * S);
        for (size_t i = 0; i < 4; i++)
            svc_exit[i] = 2;
        run_until(&wd, 20 * S);
        for (size_t i = 0; i < 4; i++) {
            char id[16];
            agent_id(i, id, sizeof id);
            /* Each change arrives, once, and the node is never suspected (phi, 20 % loss). */
            assert_int_equal(
                count(&wd, VIGIL_EVENT_CHECK, id, "http", VIGIL_STATE_DEAD, 10 * S, NULL), 1);
            assert_int_equal(count(&wd, VIGIL_EVENT_STATE, id, NULL, VIGIL_STATE_SUSPECT, 0, NULL),
                             0);
        }
        world_stop(&wd);
    }
}

/* web1's service checked by the monitor, deciding web1's state: every 200 ms, fall 2, rise 2. */
static void deciding_check(struct world *wd, struct vcfg *cfg)
{
    (void)wd;
    cfg->monitor.checks = calloc(1, sizeof(struct vcfg_check));
    assert_non_null(cfg->monitor.checks);
    exec_check(&cfg->monitor.checks[0], "web1", "svc", "svc0", 200 * MS, 2, 2);
    cfg->monitor.checks[0].critical_means_dead = 1;
    cfg->monitor.n_checks = 1;
}

static void test_critical_means_dead(void **state)
{
    (void)state;
    struct world wd;
    memset(svc_exit, 0, sizeof svc_exit);
    world_start(&wd, 99, 2, NULL, deciding_check);
    run_until(&wd, 5 * S);
    char id[] = "web1";
    assert_int_equal(vigil_node_state(vigil_monitor_find(monitord_core(wd.mon), id)),
                     VIGIL_STATE_ALIVE);
    svc_exit[0] = 2;
    run_until(&wd, 8 * S);
    /* The monitor's runs of svc0: the second failing one decided (fall 2). */
    struct vio_procs *p = sim_proc_procs(wd.mon_p);
    vigil_time_t fails[2] = {-1, -1};
    size_t nf = 0;
    for (size_t k = 0; k < fake_procs_count(p) && nf < 2; k++) {
        const struct fake_spawn *sp = fake_procs_spawn_at(p, k);
        if (!strcmp(sp->argv[0], "svc0") && sp->start - wd.t0 >= 5 * S && (sp->status >> 8) == 2)
            fails[nf++] = sp->end - wd.t0;
    }
    assert_int_equal(nf, 2);
    vigil_time_t dead_at = -1;
    assert_int_equal(count(&wd, VIGIL_EVENT_STATE, id, NULL, VIGIL_STATE_DEAD, 5 * S, &dead_at), 1);
    assert_int_equal(dead_at, fails[1]);
    vigil_time_t check_at = -1;
    assert_int_equal(count(&wd, VIGIL_EVENT_CHECK, id, "svc", VIGIL_STATE_DEAD, 5 * S, &check_at),
                     1);
    assert_int_equal(check_at, fails[1]);
    /* The heartbeats never stopped: still dead 3 s on, with no way back while the check fails. */
    assert_int_equal(vigil_node_state(vigil_monitor_find(monitord_core(wd.mon), id)),
                     VIGIL_STATE_DEAD);
    svc_exit[0] = 0;
    run_until(&wd, 10 * S);
    vigil_time_t ok[2] = {-1, -1};
    size_t no = 0;
    for (size_t k = 0; k < fake_procs_count(p) && no < 2; k++) {
        const struct fake_spawn *sp = fake_procs_spawn_at(p, k);
        if (!strcmp(sp->argv[0], "svc0") && sp->start - wd.t0 >= 8 * S && (sp->status >> 8) == 0)
            ok[no++] = sp->end - wd.t0;
    }
    assert_int_equal(no, 2);
    vigil_time_t alive_at = -1;
    assert_int_equal(count(&wd, VIGIL_EVENT_STATE, id, NULL, VIGIL_STATE_ALIVE, 8 * S, &alive_at),
                     1);
    assert_int_equal(alive_at, ok[1]);
    /* web2, whose check decides nothing, was never touched. */
    assert_int_equal(count(&wd, VIGIL_EVENT_STATE, "web2", NULL, -1, 1 * S, NULL), 0);
    world_stop(&wd);
}

/* A ping check of every agent: every 100 ms, timeout 50 ms, fall 2, rise 2. */
static void ping_checks(struct world *wd, struct vcfg *cfg)
{
    cfg->monitor.checks = calloc(8, sizeof(struct vcfg_check));
    assert_non_null(cfg->monitor.checks);
    for (size_t i = 0; i < 8; i++) {
        char ip[32], id[32], target[48];
        agent_ip(i, ip, sizeof ip);
        agent_id(i, id, sizeof id);
        snprintf(target, sizeof target, "%s:7948", ip);
        struct vcfg_check *c = &cfg->monitor.checks[i];
        vcfg_check_default(c);
        c->name = xstrdup("ping");
        c->node = xstrdup(id);
        c->kind = VCFG_CHECK_PING;
        c->target = xstrdup(target);
        c->interval = 100 * MS;
        c->timeout = 50 * MS;
        c->rise = 2;
        c->fall = 2;
    }
    cfg->monitor.n_checks = wd->n;
    /* The rest are not used: freed with the configuration all the same. */
    for (size_t i = wd->n; i < 8; i++)
        vcfg_check_free(&cfg->monitor.checks[i]);
}

static void test_monitor_pauses(void **state)
{
    (void)state;
    struct world wd;
    static const struct sim_net_model net = {.delay = 300 * 1000, .jitter = 2 * MS};
    memset(svc_exit, 0, sizeof svc_exit);
    world_start(&wd, 4242, 4, &net, ping_checks);
    run_until(&wd, 3 * S);
    for (size_t i = 0; i < 4; i++) {
        char id[16];
        agent_id(i, id, sizeof id);
        assert_int_equal(count(&wd, VIGIL_EVENT_CHECK, id, "ping", VIGIL_STATE_ALIVE, 0, NULL), 1);
    }
    /* Twenty stops of 0.3 s, one every 1.3 s: pings in flight each time. */
    vigil_time_t t = 3 * S;
    for (int k = 0; k < 20; k++) {
        t += 1 * S + (vigil_time_t)k * 7 * MS;
        run_until(&wd, t);
        sim_proc_pause(wd.mon_p, true);
        run_until(&wd, t + 300 * MS);
        sim_proc_pause(wd.mon_p, false);
        t += 300 * MS;
    }
    run_until(&wd, t + 2 * S);
    for (size_t i = 0; i < 4; i++) {
        char id[16];
        agent_id(i, id, sizeof id);
        assert_int_equal(count(&wd, VIGIL_EVENT_CHECK, id, "ping", VIGIL_STATE_DEAD, 0, NULL), 0);
        assert_int_equal(count(&wd, VIGIL_EVENT_STATE, id, NULL, VIGIL_STATE_DEAD, 0, NULL), 0);
    }
    world_stop(&wd);
}

static void test_agent_pause_ping(void **state)
{
    (void)state;
    struct world wd;
    static const struct sim_net_model net = {.delay = 300 * 1000};
    memset(svc_exit, 0, sizeof svc_exit);
    world_start(&wd, 77, 2, &net, ping_checks);
    run_until(&wd, 3 * S);
    sim_proc_pause(wd.ag_p[0], true);
    run_until(&wd, 4 * S);
    vigil_time_t down = -1;
    assert_int_equal(count(&wd, VIGIL_EVENT_CHECK, "web1", "ping", VIGIL_STATE_DEAD, 3 * S, &down),
                     1);
    /* Two runs of 100 ms, each judged 50 ms after its start: within 250 ms of the stop. */
    assert_true(down > 3 * S && down <= 3 * S + 250 * MS);
    sim_proc_pause(wd.ag_p[0], false);
    run_until(&wd, 5 * S);
    vigil_time_t up = -1;
    assert_int_equal(count(&wd, VIGIL_EVENT_CHECK, "web1", "ping", VIGIL_STATE_ALIVE, 4 * S, &up),
                     1);
    assert_true(up > 4 * S && up <= 4 * S + 250 * MS);
    /* The other agent's ping never failed; the round trip is kept. */
    assert_int_equal(count(&wd, VIGIL_EVENT_CHECK, "web2", "ping", VIGIL_STATE_DEAD, 0, NULL), 0);
    world_stop(&wd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_check_sent_at_once),
        cmocka_unit_test(test_agent_check_under_loss),
        cmocka_unit_test(test_critical_means_dead),
        cmocka_unit_test(test_monitor_pauses),
        cmocka_unit_test(test_agent_pause_ping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
