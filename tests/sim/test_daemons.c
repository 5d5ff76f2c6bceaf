/*
 * Whole programs in virtual time: the real monitor daemon (its loop, its
 * listeners, its event pipeline, history and log) and hundreds of real
 * agent daemons, all on one simulated world (sim_world.h), with seeded
 * loss, delay, duplication, reordering, partitions and process pauses.
 *
 * Every scenario runs for several seeds. Each seed is printed; set
 * VIGIL_SIM_SEED=N to replay one run exactly, and VIGIL_SIM_SOAK=SECONDS
 * to stretch the steady-state scenario into a long soak.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "fake_http.h"
#include "fake_procs.h"
#include "sim_world.h"
#include "vigil/agentd.h"
#include "vigil/monitord.h"

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC

/* The seeds every scenario runs with (plus VIGIL_SIM_SEED alone, when set). */
static uint64_t seeds[4] = {20261201, 7, 424242, 0};
static size_t n_seeds = 3;
static vigil_time_t soak = 0;

struct cluster {
    struct sim_world *w;
    struct sim_proc *mon_p;
    struct monitord *mon;
    size_t n;
    struct sim_proc **ag_p;
    struct agentd **ag;
    vigil_time_t *killed_at; /* VIGIL_TIME_NEVER: still running */
    vigil_time_t interval;
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    uint64_t seed;
    /* Keys in files (a configuration file for the monitor, a key file per agent), so that SIGHUP
     * can reload them. */
    bool key_files;
    /*
     * What the network really let through, from the world's tap: each
     * agent's last heartbeat to arrive, and every silence of at least
     * SILENCE intervals between two arrivals. A suspicion during such a
     * silence is the detector doing its job (the heartbeats were lost),
     * not a false alarm.
     */
    vigil_time_t *last_arrival;
    struct silence {
        size_t node;
        vigil_time_t from, to;
    } * silences;
    size_t n_silences, cap_silences;
};

/*
 * The default phi detector (acceptable pause of 3 intervals) does not
 * rise until three heartbeats in a row are missing: nothing may be
 * suspected before 4 intervals without an arrival. At 1 % loss four in a
 * row are lost about once in 10^8 heartbeats, so a long run meets it now
 * and then, and only then may a live node be suspected.
 */
#define SILENCE 4

static char *xstrdup(const char *s)
{
    char *r = strdup(s);
    assert_non_null(r);
    return r;
}

static void agent_ip(size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.1.%zu.%zu", i / 200, i % 200 + 1);
}

static void agent_id(size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "node-%04zu", i);
}

/* A key file's text: the header line, then the key in hex. */
static void key_text(char *buf, size_t cap, const char *header,
                     const uint8_t key[VIGIL_WIRE_KEY_LEN])
{
    char hex[2 * VIGIL_WIRE_KEY_LEN + 1];
    sodium_bin2hex(hex, sizeof(hex), key, VIGIL_WIRE_KEY_LEN);
    snprintf(buf, cap, "%s\n%s\n", header, hex);
}

/* Writes agent i's node key under master key mk, with key id kid, into its key file. */
static void put_node_key(struct cluster *c, size_t i, const uint8_t *mk, unsigned kid)
{
    char id[32], hdr[96], text[256];
    uint8_t nk[VIGIL_WIRE_KEY_LEN];
    agent_id(i, id, sizeof(id));
    assert_int_equal(vigil_wire_node_key(nk, mk, id), 0);
    snprintf(hdr, sizeof(hdr), "vigil-node-key %s key-id=%u", id, kid);
    key_text(text, sizeof(text), hdr, nk);
    assert_int_equal(sim_proc_put_file(c->ag_p[i], "/etc/vigil/node.key", text, 0600), 0);
}

static void start_agent(struct cluster *c, size_t i)
{
    char ip[32], id[32], err[256];
    agent_ip(i, ip, sizeof(ip));
    agent_id(i, id, sizeof(id));
    c->ag_p[i] = sim_proc_new(c->w, id, ip);
    assert_non_null(c->ag_p[i]);
    /* A persistent generation file, so that a restart is newer whatever the clock says. */
    struct vcfg cfg;
    vcfg_init(&cfg);
    cfg.agent.id = xstrdup(id);
    cfg.agent.interval = c->interval;
    /* Each agent holds only its own node key, derived from the monitor's master key. */
    cfg.agent.has_key = true;
    assert_int_equal(vigil_wire_node_key(cfg.agent.key, c->key, id), 0);
    if (c->key_files) {
        put_node_key(c, i, c->key, 0);
        cfg.agent.key_file = xstrdup("/etc/vigil/node.key");
        cfg.agent.encrypt = true; /* and the statuses sealed */
    }
    cfg.agent.generation_file = xstrdup("/var/lib/vigil/generation");
    struct agent_pairs base = {.n = 0};
    agent_pairs_set(&base, "role", i % 2 ? "web" : "db");
    int rc = agentd_new(sim_proc_env(c->ag_p[i]), &cfg, &base, sim_proc_log(c->ag_p[i]), &c->ag[i],
                        err, sizeof(err));
    if (rc)
        fail_msg("agent %zu: %s", i, err);
    c->killed_at[i] = VIGIL_TIME_NEVER;
}

static void notify(void *arg, const struct fake_spawn *sp, struct fake_outcome *out)
{
    (void)arg;
    (void)sp;
    out->exit_code = 0;
    out->runs_for = 50 * MS;
}

/* Hook runs for node entering state. */
static size_t hook_runs(struct cluster *c, const char *node, const char *state)
{
    struct vio_procs *p = sim_proc_procs(c->mon_p);
    size_t n = 0;
    for (size_t i = 0; i < fake_procs_count(p); i++) {
        const struct fake_spawn *sp = fake_procs_spawn_at(p, i);
        const char *nd = fake_spawn_env(sp, "VIGIL_NODE");
        const char *st = fake_spawn_env(sp, "VIGIL_NEW_STATE");
        if (nd && st && !strcmp(nd, node) && !strcmp(st, state))
            n++;
    }
    return n;
}

/* GET target from the monitor's API; the status, and the body in *body (freed by the caller). */
static unsigned api_get(struct cluster *c, const char *target, char **body)
{
    unsigned status = 0;
    assert_int_equal(fake_httpd_request(sim_proc_httpd(c->mon_p), "GET", target, &status, body), 0);
    return status;
}

static void on_arrival(void *arg, const struct vigil_addr *from, const struct vigil_addr *to,
                       vigil_time_t arrival)
{
    (void)to;
    struct cluster *c = arg;
    char a[64];
    unsigned x, y;
    vigil_addr_format(from, a, sizeof(a));
    if (sscanf(a, "127.1.%u.%u:", &x, &y) != 2 || y == 0)
        return;
    size_t i = (size_t)x * 200 + (y - 1);
    if (i >= c->n)
        return;
    vigil_time_t last = c->last_arrival[i];
    if (last != VIGIL_TIME_NEVER && arrival - last >= SILENCE * c->interval) {
        if (c->n_silences == c->cap_silences) {
            c->cap_silences = c->cap_silences ? 2 * c->cap_silences : 16;
            c->silences = realloc(c->silences, c->cap_silences * sizeof(*c->silences));
            assert_non_null(c->silences);
        }
        c->silences[c->n_silences++] = (struct silence){i, last, arrival};
    }
    c->last_arrival[i] = arrival;
}

/*
 * Whether node i, entering a bad state at t, had then been unheard for
 * SILENCE intervals by the network's own account: the silence was real.
 */
static bool silent_at(const struct cluster *c, size_t i, vigil_time_t t, vigil_time_t *since)
{
    vigil_time_t need = SILENCE * c->interval;
    for (size_t k = 0; k < c->n_silences; k++) {
        const struct silence *q = &c->silences[k];
        if (q->node == i && t >= q->from + need && t <= q->to) {
            *since = q->from;
            return true;
        }
    }
    vigil_time_t last = c->last_arrival[i];
    *since = last;
    return last == VIGIL_TIME_NEVER || t >= last + need;
}

static void cluster_start_ex(struct cluster *c, uint64_t seed, size_t n, vigil_time_t interval,
                             const struct sim_net_model *model, bool key_files)
{
    memset(c, 0, sizeof(*c));
    c->key_files = key_files;
    printf("# seed %" PRIu64 " (VIGIL_SIM_SEED=%" PRIu64 " replays it)\n", seed, seed);
    c->seed = seed;
    c->w = sim_world_new(seed);
    assert_non_null(c->w);
    if (model)
        sim_world_set_model(c->w, model);
    c->n = n;
    c->last_arrival = malloc(n * sizeof(*c->last_arrival));
    assert_non_null(c->last_arrival);
    for (size_t i = 0; i < n; i++)
        c->last_arrival[i] = VIGIL_TIME_NEVER;
    sim_world_set_tap(c->w, on_arrival, c);
    c->interval = interval;
    for (size_t i = 0; i < sizeof(c->key); i++)
        c->key[i] = (uint8_t)(sim_rand(c->w) >> 56);
    c->mon_p = sim_proc_new(c->w, "monitor", "127.0.0.1");
    assert_non_null(c->mon_p);
    struct vcfg cfg;
    vcfg_init(&cfg);
    /* A hook on every event: the notifier takes 50 ms and succeeds. */
    assert_int_equal(fake_procs_register(sim_proc_procs(c->mon_p), "notify", notify, NULL), 0);
    vcfg_hook_default(&cfg.monitor.hooks[0]);
    cfg.monitor.hooks[0].argv[0] = xstrdup("notify");
    cfg.monitor.n_hooks = 1;
    cfg.monitor.core.has_key = true;
    cfg.monitor.core.key_is_master = true;
    memcpy(cfg.monitor.core.key, c->key, sizeof(c->key));
    cfg.monitor.interval = interval;
    vigil_detector_config_default(&cfg.monitor.core.detector, VIGIL_DETECTOR_PHI, interval);
    if (key_files) {
        /* The key set comes from the configuration file, which names one key file. */
        char text[256];
        key_text(text, sizeof(text), "vigil-master-key", c->key);
        assert_int_equal(sim_proc_put_file(c->mon_p, "/etc/vigil/master-0.key", text, 0600), 0);
        const char *conf = "monitor = { key_file = \"master-0.key\"; encrypt = true; };\n";
        assert_int_equal(sim_proc_put_file(c->mon_p, "/etc/vigil/monitor.conf", conf, 0644), 0);
        cfg.path = xstrdup("/etc/vigil/monitor.conf");
        cfg.monitor.key_files[0] = xstrdup("/etc/vigil/master-0.key");
        cfg.monitor.n_key_files = 1;
        cfg.monitor.core.require_sealed = true;
    }
    char err[256];
    if (monitord_new(sim_proc_env(c->mon_p), &cfg, &c->mon, err, sizeof(err)))
        fail_msg("monitor: %s", err);
    c->ag_p = calloc(n, sizeof(*c->ag_p));
    c->ag = calloc(n, sizeof(*c->ag));
    c->killed_at = calloc(n, sizeof(*c->killed_at));
    assert_true(c->ag_p && c->ag && c->killed_at);
    for (size_t i = 0; i < n; i++)
        start_agent(c, i);
}

static void cluster_start(struct cluster *c, uint64_t seed, size_t n, vigil_time_t interval,
                          const struct sim_net_model *model)
{
    cluster_start_ex(c, seed, n, interval, model, false);
}

static void run_for(struct cluster *c, vigil_time_t d)
{
    assert_true(sim_world_run_until(c->w, sim_now(c->w) + d));
}

static void kill_agent(struct cluster *c, size_t i)
{
    sim_proc_kill(c->ag_p[i]);
    c->killed_at[i] = sim_now(c->w);
}

/* Frees a killed agent's daemon and process, and starts it again on the same address. */
static void restart_agent(struct cluster *c, size_t i)
{
    /* The file system survives the crash: the generation file with it. */
    agentd_free(c->ag[i]);
    c->ag[i] = NULL;
    char ip[32], id[32];
    agent_ip(i, ip, sizeof(ip));
    agent_id(i, id, sizeof(id));
    sim_proc_free(c->ag_p[i]);
    start_agent(c, i);
}

static void cluster_stop(struct cluster *c)
{
    for (size_t i = 0; i < c->n; i++)
        agentd_free(c->ag[i]);
    assert_int_equal(monitord_free(c->mon), 0);
    sim_world_free(c->w);
    free(c->ag_p);
    free(c->ag);
    free(c->killed_at);
    free(c->last_arrival);
    free(c->silences);
}

/* Events in the monitor's history for node (NULL: any) entering state (-1: any). */
static size_t count_events(struct cluster *c, const char *node, int state, vigil_time_t from)
{
    struct evlog *h = monitord_events(c->mon);
    size_t n = 0;
    for (size_t i = 0; i < evlog_count(h); i++) {
        const struct vigil_event *e = &evlog_at(h, i)->ev;
        if (e->type != VIGIL_EVENT_STATE || e->time < from)
            continue;
        if (node && strcmp(e->node, node))
            continue;
        if (state >= 0 && (int)e->new_state != state)
            continue;
        n++;
    }
    return n;
}

/*
 * Events of a node entering state (suspect or dead) at or after from
 * while its heartbeats were arriving: the false alarms. Those during a
 * silence the network made are counted in *real, when given.
 */
static size_t false_alarms(struct cluster *c, int state, vigil_time_t from, size_t *real)
{
    struct evlog *h = monitord_events(c->mon);
    size_t n = 0;
    for (size_t i = 0; i < evlog_count(h); i++) {
        const struct vigil_event *e = &evlog_at(h, i)->ev;
        size_t node;
        if (e->type != VIGIL_EVENT_STATE || e->time < from || (int)e->new_state != state)
            continue;
        assert_int_equal(sscanf(e->node, "node-%zu", &node), 1);
        assert_true(node < c->n);
        vigil_time_t since;
        if (silent_at(c, node, e->time, &since)) {
            if (real)
                (*real)++;
            if (c->killed_at[node] == VIGIL_TIME_NEVER)
                printf("# %s %s after %.1f s in which the network delivered nothing of it\n",
                       e->node, state == VIGIL_STATE_DEAD ? "dead" : "suspected",
                       since == VIGIL_TIME_NEVER ? 0.0 : (double)(e->time - since) / S);
        } else
            n++;
    }
    return n;
}

/* Time of the first event of node entering state at or after from, or -1. */
static vigil_time_t first_event(struct cluster *c, const char *node, int state, vigil_time_t from)
{
    struct evlog *h = monitord_events(c->mon);
    for (size_t i = 0; i < evlog_count(h); i++) {
        const struct vigil_event *e = &evlog_at(h, i)->ev;
        if (e->type == VIGIL_EVENT_STATE && e->time >= from && !strcmp(e->node, node) &&
            (int)e->new_state == state)
            return e->time;
    }
    return -1;
}

static enum vigil_state node_state(struct cluster *c, size_t i)
{
    char id[32];
    agent_id(i, id, sizeof(id));
    const struct vigil_node *n = vigil_monitor_find(monitord_core(c->mon), id);
    return n ? vigil_node_state(n) : VIGIL_STATE_UNKNOWN;
}

static const struct sim_net_model lossy = {
    .loss = 0.01,
    .dup = 0.01,
    .delay = 300 * 1000, /* 0.3 ms */
    .jitter = 5 * MS,    /* reorders heartbeats sent close together */
    .spike_p = 0.005,
    .spike = 400 * MS,
};

/*
 * 200 agents at 1 s on a lossy, jittery network that duplicates and
 * reorders: ten quiet minutes without one suspicion, then five crashes,
 * each detected after it happened and within the bound, and nothing else.
 */
static void test_steady_then_crashes(void **state)
{
    (void)state;
    for (size_t s = 0; s < n_seeds; s++) {
        struct cluster c;
        cluster_start(&c, seeds[s], 200, S, &lossy);
        run_for(&c, 5 * S);
        vigil_time_t quiet_from = sim_now(c.w);
        for (size_t i = 0; i < c.n; i++)
            assert_int_equal(node_state(&c, i), VIGIL_STATE_ALIVE);
        run_for(&c, soak ? soak : 600 * S);
        /*
         * No suspicion of a node whose heartbeats were arriving. Four lost
         * in a row (a real silence) may happen once in a long run; more
         * would mean the network model is not what this test assumes.
         */
        size_t real = 0;
        assert_int_equal(false_alarms(&c, VIGIL_STATE_SUSPECT, quiet_from, &real), 0);
        assert_int_equal(false_alarms(&c, VIGIL_STATE_DEAD, quiet_from, NULL), 0);
        assert_true(real <= (soak ? (size_t)(soak / (60 * S)) + 2 : 2));

        vigil_time_t crash_from = sim_now(c.w);
        for (size_t k = 0; k < 5; k++) {
            kill_agent(&c, k * 37 + 3);
            run_for(&c, 1234 * MS);
        }
        run_for(&c, 20 * S);
        for (size_t k = 0; k < 5; k++) {
            size_t i = k * 37 + 3;
            char id[32];
            agent_id(i, id, sizeof(id));
            vigil_time_t dead = first_event(&c, id, VIGIL_STATE_DEAD, crash_from);
            assert_true(dead > c.killed_at[i]);
            /* The bound the operations guide states for 1 s heartbeats with phi: under 10 s. */
            assert_true(dead - c.killed_at[i] < 10 * S);
            assert_int_equal(node_state(&c, i), VIGIL_STATE_DEAD);
            /* The hook ran once for the death, and the API says so. */
            assert_int_equal(hook_runs(&c, id, "dead"), 1);
            char target[64], *body = NULL;
            snprintf(target, sizeof(target), "/v1/nodes/%s", id);
            assert_int_equal(api_get(&c, target, &body), 200);
            assert_non_null(strstr(body, "\"state\":\"dead\""));
            free(body);
        }
        char *body = NULL;
        assert_int_equal(api_get(&c, "/v1/nodes?limit=1000", &body), 200);
        assert_non_null(strstr(body, "node-0199"));
        free(body);
        /* Nobody else was touched (but by a real silence, as above). */
        assert_int_equal(false_alarms(&c, VIGIL_STATE_DEAD, crash_from, NULL), 0);
        assert_int_equal(false_alarms(&c, VIGIL_STATE_SUSPECT, crash_from, NULL), 0);
        printf("# seed %" PRIu64 ": %" PRIu64 " datagrams sent, %" PRIu64 " lost, %" PRIu64
               " duplicated\n",
               c.seed, sim_world_stats(c.w)->sent, sim_world_stats(c.w)->lost,
               sim_world_stats(c.w)->duplicated);
        cluster_stop(&c);
    }
}

/*
 * The monitor stopped (SIGSTOP) for 0.2, 0.5, 1, 4 and 15 s while the
 * agents go on: what they sent waits in the monitor's socket with its
 * arrival time, so nobody is suspected; an agent killed during the
 * longest stop is still found dead.
 */
static void run_pauses(vigil_time_t interval, size_t n)
{
    static const vigil_time_t stops[] = {200 * MS, 500 * MS, 1 * S, 4 * S, 15 * S};
    for (size_t s = 0; s < n_seeds; s++) {
        struct cluster c;
        struct sim_net_model m = lossy;
        m.loss = 0.001;
        m.spike_p = 0;
        cluster_start(&c, seeds[s] ^ (uint64_t)interval, n, interval, &m);
        run_for(&c, 10 * S);
        vigil_time_t from = sim_now(c.w);
        vigil_time_t resumed = 0;
        for (size_t k = 0; k < sizeof(stops) / sizeof(stops[0]); k++) {
            sim_proc_signal(c.mon_p, SIGSTOP);
            if (k == 4)
                run_for(&c, 2 * S), kill_agent(&c, 0), run_for(&c, stops[k] - 2 * S);
            else
                run_for(&c, stops[k]);
            sim_proc_signal(c.mon_p, SIGCONT);
            if (k == 4)
                resumed = sim_now(c.w);
            run_for(&c, 5 * S + 100 * interval);
        }
        /* The killed agent, and only it. */
        assert_int_equal(count_events(&c, NULL, VIGIL_STATE_SUSPECT, from) -
                             count_events(&c, "node-0000", VIGIL_STATE_SUSPECT, from),
                         0);
        assert_int_equal(count_events(&c, NULL, VIGIL_STATE_DEAD, from), 1);
        assert_int_equal(node_state(&c, 0), VIGIL_STATE_DEAD);
        /*
         * Found dead the moment the monitor runs again: every heartbeat of
         * the stop was read with its arrival time, so its silence during
         * the stop counts (nothing to forgive: nothing was lost unread).
         */
        vigil_time_t dead = first_event(&c, "node-0000", VIGIL_STATE_DEAD, from);
        assert_true(dead > c.killed_at[0]);
        assert_true(dead - resumed < 50 * MS);
        assert_true(sim_proc_log_count(c.mon_p, "paused") >= 1);
        cluster_stop(&c);
    }
}

static void test_monitor_pauses_1s(void **state)
{
    (void)state;
    run_pauses(S, 50);
}

static void test_monitor_pauses_20ms(void **state)
{
    (void)state;
    run_pauses(20 * MS, 10);
}

/*
 * A stop long enough to overflow the monitor's socket buffer: the newest
 * heartbeats of the stop are lost unread, so the silence they leave says
 * nothing about the nodes. Nobody is convicted; the pause is reported.
 */
static void test_monitor_overflow(void **state)
{
    (void)state;
    for (size_t s = 0; s < n_seeds; s++) {
        struct cluster c;
        struct sim_net_model m = lossy;
        m.spike_p = 0;
        /* 100 agents at 20 ms: 5,000 datagrams a second, the buffer holds 16,384. */
        cluster_start(&c, seeds[s] + 5, 100, 20 * MS, &m);
        run_for(&c, 5 * S);
        vigil_time_t from = sim_now(c.w);
        uint64_t overflow = sim_world_stats(c.w)->overflow;
        sim_proc_signal(c.mon_p, SIGSTOP);
        run_for(&c, 10 * S);
        sim_proc_signal(c.mon_p, SIGCONT);
        run_for(&c, 10 * S);
        assert_true(sim_world_stats(c.w)->overflow > overflow + 10000);
        assert_int_equal(count_events(&c, NULL, VIGIL_STATE_DEAD, from), 0);
        for (size_t i = 0; i < c.n; i++)
            assert_int_equal(node_state(&c, i), VIGIL_STATE_ALIVE);
        assert_true(sim_proc_log_count(c.mon_p, "paused") >= 1);
        cluster_stop(&c);
    }
}

/* Ten agents cut off for 30 s are declared dead; after the cut heals they come back. */
static void test_partition_heals(void **state)
{
    (void)state;
    for (size_t s = 0; s < n_seeds; s++) {
        struct cluster c;
        cluster_start(&c, seeds[s] + 1, 40, S, &lossy);
        run_for(&c, 20 * S);
        vigil_time_t from = sim_now(c.w);
        for (size_t i = 0; i < 10; i++)
            sim_proc_cut(c.ag_p[i], true);
        run_for(&c, 30 * S);
        for (size_t i = 0; i < c.n; i++)
            assert_int_equal(node_state(&c, i), i < 10 ? VIGIL_STATE_DEAD : VIGIL_STATE_ALIVE);
        for (size_t i = 0; i < 10; i++)
            sim_proc_cut(c.ag_p[i], false);
        run_for(&c, 5 * S);
        for (size_t i = 0; i < c.n; i++)
            assert_int_equal(node_state(&c, i), VIGIL_STATE_ALIVE);
        assert_int_equal(count_events(&c, NULL, VIGIL_STATE_DEAD, from), 10);
        cluster_stop(&c);
    }
}

/* SIGTERM: the goodbye makes the node left at once, never dead; a restart brings it back. */
static void test_goodbye_and_restart(void **state)
{
    (void)state;
    for (size_t s = 0; s < n_seeds; s++) {
        struct cluster c;
        cluster_start(&c, seeds[s] + 2, 20, S, &lossy);
        run_for(&c, 10 * S);
        vigil_time_t from = sim_now(c.w);
        sim_proc_signal(c.ag_p[4], SIGTERM);
        run_for(&c, 50 * MS);
        assert_int_equal(agentd_stop_signal(c.ag[4]), SIGTERM);
        assert_int_equal(node_state(&c, 4), VIGIL_STATE_LEFT);
        run_for(&c, 30 * S);
        assert_int_equal(node_state(&c, 4), VIGIL_STATE_LEFT);
        assert_int_equal(count_events(&c, "node-0004", VIGIL_STATE_DEAD, from), 0);

        /* A crash and a restart with the generation file kept: alive again, a newer generation. */
        uint64_t gen = agentd_generation(c.ag[7]);
        kill_agent(&c, 7);
        run_for(&c, 15 * S);
        assert_int_equal(node_state(&c, 7), VIGIL_STATE_DEAD);
        restart_agent(&c, 7);
        assert_true(agentd_generation(c.ag[7]) > gen);
        run_for(&c, 5 * S);
        assert_int_equal(node_state(&c, 7), VIGIL_STATE_ALIVE);
        cluster_stop(&c);
    }
}

/*
 * What the daemons tell their service manager (systemd, Type=notify): ready
 * once started, stopping when told to stop, and nothing else on the way.
 */
static void test_service_notify(void **state)
{
    (void)state;
    struct cluster c;
    cluster_start(&c, seeds[0], 3, S, NULL);
    assert_string_equal(sim_proc_notified(c.mon_p), "READY=1\n");
    assert_string_equal(sim_proc_notified(c.ag_p[1]), "READY=1\n");
    run_for(&c, 5 * S);
    sim_proc_signal(c.ag_p[1], SIGTERM);
    run_for(&c, 50 * MS);
    assert_string_equal(sim_proc_notified(c.ag_p[1]), "READY=1\nSTOPPING=1\n");
    assert_string_equal(sim_proc_notified(c.ag_p[0]), "READY=1\n");
    assert_string_equal(sim_proc_notified(c.mon_p), "READY=1\n");
    /* A reload is bracketed, so that systemd knows when it is done. */
    sim_proc_signal(c.mon_p, SIGHUP);
    sim_proc_signal(c.ag_p[0], SIGHUP);
    run_for(&c, 50 * MS);
    assert_string_equal(sim_proc_notified(c.mon_p), "READY=1\nRELOADING=1\nREADY=1\n");
    assert_string_equal(sim_proc_notified(c.ag_p[0]), "READY=1\nRELOADING=1\nREADY=1\n");
    assert_int_equal(monitord_free(c.mon), 0);
    c.mon = NULL;
    assert_string_equal(sim_proc_notified(c.mon_p), "READY=1\nRELOADING=1\nREADY=1\nSTOPPING=1\n");
    cluster_stop(&c);
}

/*
 * A master key rotation on a running cluster of 50 agents on the lossy
 * network, statuses sealed: the monitor is given the next key (its
 * configuration file now lists two, SIGHUP), the agents move to their new
 * node keys one by one (new key file, SIGHUP), the old key is retired
 * (the file lists one again, SIGHUP). No heartbeat fails verification, no
 * node is suspected, and after the retirement the old key is refused: an
 * agent put back on it is unheard, then dead.
 */
static void test_key_rotation_live(void **state)
{
    (void)state;
    for (size_t s = 0; s < n_seeds; s++) {
        struct cluster c;
        const size_t n = 50;
        cluster_start_ex(&c, seeds[s] + 9, n, S, &lossy, true);
        run_for(&c, 20 * S);
        vigil_time_t from = sim_now(c.w);
        const struct vigil_monitor_stats *st = vigil_monitor_stats(monitord_core(c.mon));
        uint64_t failed0 = st->auth_failed;

        uint8_t next[VIGIL_WIRE_KEY_LEN];
        for (size_t i = 0; i < sizeof(next); i++)
            next[i] = (uint8_t)(sim_rand(c.w) >> 56);
        char text[256];
        key_text(text, sizeof(text), "vigil-master-key key-id=1", next);
        assert_int_equal(sim_proc_put_file(c.mon_p, "/etc/vigil/master-1.key", text, 0600), 0);
        assert_int_equal(
            sim_proc_put_file(c.mon_p, "/etc/vigil/monitor.conf",
                              "monitor = { key_file = [\"master-0.key\", \"master-1.key\"]; };\n",
                              0644),
            0);
        sim_proc_signal(c.mon_p, SIGHUP);
        run_for(&c, 1 * S);
        assert_int_equal(sim_proc_log_count(c.mon_p, "keys (key ids 0, 1)"), 1);

        /* The agents move over, one every 100 ms, at any point of their schedule. */
        for (size_t i = 0; i < n; i++) {
            put_node_key(&c, i, next, 1);
            sim_proc_signal(c.ag_p[i], SIGHUP);
            run_for(&c, 100 * MS);
        }
        run_for(&c, 2 * S);
        for (size_t i = 0; i < n; i++) {
            char id[32];
            agent_id(i, id, sizeof(id));
            assert_int_equal(sim_proc_log_count(c.ag_p[i], "key reloaded"), 1);
            assert_int_equal(vigil_node_key_id(vigil_monitor_find(monitord_core(c.mon), id)), 1);
        }
        /* The API says when the rotation is complete: no node left on key 0. */
        char *body = NULL;
        assert_int_equal(api_get(&c, "/v1/health", &body), 200);
        assert_non_null(strstr(body, "\"keys\":[{\"id\":0,\"nodes\":0},{\"id\":1,\"nodes\":50}]"));
        free(body);
        assert_int_equal(sim_proc_put_file(c.mon_p, "/etc/vigil/monitor.conf",
                                           "monitor = { key_file = \"master-1.key\"; };\n", 0644),
                         0);
        sim_proc_signal(c.mon_p, SIGHUP);
        run_for(&c, 20 * S);
        assert_int_equal(sim_proc_log_count(c.mon_p, "keys (key ids 1)"), 1);
        /* Not one heartbeat refused, nobody suspected, everybody alive. */
        assert_int_equal(st->auth_failed, failed0);
        assert_int_equal(st->unsealed, 0);
        assert_int_equal(false_alarms(&c, VIGIL_STATE_SUSPECT, from, NULL), 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(node_state(&c, i), VIGIL_STATE_ALIVE);

        /* The retired key: an agent put back on it is refused, and dies. */
        put_node_key(&c, 3, c.key, 0);
        sim_proc_signal(c.ag_p[3], SIGHUP);
        run_for(&c, 20 * S);
        assert_true(st->unknown_key >= 15);
        assert_int_equal(node_state(&c, 3), VIGIL_STATE_DEAD);
        /* A bad file changes nothing: the keys stay, and the log says why. */
        assert_int_equal(sim_proc_put_file(c.mon_p, "/etc/vigil/monitor.conf",
                                           "monitor = { key_file = \"missing.key\"; };\n", 0644),
                         0);
        sim_proc_signal(c.mon_p, SIGHUP);
        run_for(&c, 2 * S);
        assert_int_equal(
            sim_proc_log_count(c.mon_p, "configuration not reloaded, the running one stays"), 1);
        assert_int_equal(node_state(&c, 4), VIGIL_STATE_ALIVE);
        cluster_stop(&c);
    }
}

/*
 * An agent with the wrong key (another cluster's master key, or a copy of
 * a node key from before a rotation): every heartbeat is dropped, and once
 * a minute the monitor says from where, for which id, and what is likely
 * wrong. The real node of that id is not disturbed.
 */
static void test_drops_summarized(void **state)
{
    (void)state;
    struct cluster c;
    cluster_start(&c, seeds[0] + 11, 5, S, NULL);
    struct sim_proc *rogue = sim_proc_new(c.w, "rogue", "127.2.0.1");
    assert_non_null(rogue);
    struct vcfg cfg;
    vcfg_init(&cfg);
    cfg.agent.id = xstrdup("node-0001");
    cfg.agent.interval = S;
    cfg.agent.has_key = true;
    uint8_t other[VIGIL_WIRE_KEY_LEN] = {42};
    assert_int_equal(vigil_wire_node_key(cfg.agent.key, other, "node-0001"), 0);
    struct agent_pairs base = {.n = 0};
    struct agentd *ra;
    char err[256];
    if (agentd_new(sim_proc_env(rogue), &cfg, &base, sim_proc_log(rogue), &ra, err, sizeof(err)))
        fail_msg("rogue agent: %s", err);
    run_for(&c, 61 * S);
    const char *want = "dropped in the last 60s: 60 datagrams from 127.2.0.1 claiming node-0001 "
                       "failed authentication: wrong key? (auth_failed)";
    if (sim_proc_log_count(c.mon_p, want) != 1)
        fail_msg("no summary line; the monitor's log:\n%s", sim_proc_log_text(c.mon_p));
    assert_int_equal(node_state(&c, 1), VIGIL_STATE_ALIVE);
    /* A quiet minute says nothing. */
    agentd_free(ra);
    sim_proc_kill(rogue);
    run_for(&c, 60 * S);
    assert_int_equal(sim_proc_log_count(c.mon_p, "dropped in the last"), 2);
    run_for(&c, 60 * S);
    assert_int_equal(sim_proc_log_count(c.mon_p, "dropped in the last"), 2);
    sim_proc_free(rogue);
    cluster_stop(&c);
}

/*
 * An agent whose sends fail (its interface went down) says so, says when
 * sending works again, and says that a goodbye it could not send was not
 * sent (and exits 1 for it): the monitor will see a death, not a goodbye.
 */
static void test_agent_send_errors(void **state)
{
    (void)state;
    struct cluster c;
    cluster_start(&c, seeds[0] + 12, 3, S, NULL);
    run_for(&c, 5 * S);
    sim_proc_send_error(c.ag_p[0], ENETUNREACH);
    run_for(&c, 10 * S);
    assert_true(sim_proc_log_count(c.ag_p[0], "send error(s)") >= 1);
    assert_int_equal(sim_proc_log_count(c.ag_p[0], "sending works again"), 0);
    sim_proc_send_error(c.ag_p[0], 0);
    run_for(&c, 2 * S);
    assert_int_equal(sim_proc_log_count(c.ag_p[0], "sending works again, after 10 send error(s)"),
                     1);
    run_for(&c, 10 * S);
    assert_int_equal(node_state(&c, 0), VIGIL_STATE_ALIVE);
    /* A goodbye that cannot be sent. */
    sim_proc_send_error(c.ag_p[1], ENETUNREACH);
    sim_proc_signal(c.ag_p[1], SIGTERM);
    run_for(&c, 100 * MS);
    assert_int_equal(sim_proc_log_count(c.ag_p[1], "the goodbye could NOT be sent"), 1);
    assert_true(agentd_goodbye_failed(c.ag[1]));
    assert_false(agentd_goodbye_failed(c.ag[2]));
    run_for(&c, 20 * S);
    assert_int_equal(node_state(&c, 1), VIGIL_STATE_DEAD);
    cluster_stop(&c);
}

/*
 * An agent stopped (SIGSTOP) for 30 s is dead meanwhile and alive again
 * soon after SIGCONT, on its old generation; on resuming it sends one
 * heartbeat, not the thirty it owes, and says so. The others see nothing.
 */
static void test_agent_pause(void **state)
{
    (void)state;
    for (size_t s = 0; s < n_seeds; s++) {
        struct cluster c;
        cluster_start(&c, seeds[s] + 3, 20, S, &lossy);
        run_for(&c, 10 * S);
        vigil_time_t from = sim_now(c.w);
        uint64_t sent = agentd_sent(c.ag[5]);
        sim_proc_signal(c.ag_p[5], SIGSTOP);
        run_for(&c, 30 * S);
        assert_int_equal(node_state(&c, 5), VIGIL_STATE_DEAD);
        assert_int_equal(agentd_sent(c.ag[5]), sent);
        sim_proc_signal(c.ag_p[5], SIGCONT);
        run_for(&c, 10 * MS);
        assert_int_equal(agentd_sent(c.ag[5]), sent + 1);
        assert_int_equal(sim_proc_log_count(c.ag_p[5], "heartbeat(s) skipped"), 1);
        run_for(&c, 5 * S);
        assert_int_equal(node_state(&c, 5), VIGIL_STATE_ALIVE);
        assert_int_equal(count_events(&c, "node-0005", VIGIL_STATE_DEAD, from), 1);
        assert_int_equal(false_alarms(&c, VIGIL_STATE_DEAD, from, NULL), 0);
        assert_int_equal(false_alarms(&c, VIGIL_STATE_SUSPECT, from, NULL), 0);
        cluster_stop(&c);
    }
}

/* A digest of the monitor's whole history: equal digests, equal runs. */
static uint64_t history_digest(struct cluster *c)
{
    struct evlog *h = monitord_events(c->mon);
    uint64_t d = 1469598103934665603ULL;
    for (size_t i = 0; i < evlog_count(h); i++) {
        const struct vigil_event *e = &evlog_at(h, i)->ev;
        uint64_t v[4] = {e->seq, (uint64_t)e->time, (uint64_t)e->old_state << 8 | e->new_state,
                         e->generation};
        for (size_t k = 0; k < 4; k++)
            d = (d ^ v[k]) * 1099511628211ULL;
        for (const char *p = e->node; *p; p++)
            d = (d ^ (uint8_t)*p) * 1099511628211ULL;
    }
    return d;
}

/* The same seed gives the same run, event for event and nanosecond for nanosecond. */
static void test_replays_exactly(void **state)
{
    (void)state;
    uint64_t digest[2];
    size_t events[2];
    struct sim_net_model m = lossy;
    m.loss = 0.2; /* plenty of suspicions to compare */
    for (int r = 0; r < 2; r++) {
        struct cluster c;
        cluster_start(&c, seeds[0], 30, 100 * MS, &m);
        run_for(&c, 30 * S);
        kill_agent(&c, 3);
        sim_proc_signal(c.mon_p, SIGSTOP);
        run_for(&c, 700 * MS);
        sim_proc_signal(c.mon_p, SIGCONT);
        run_for(&c, 30 * S);
        digest[r] = history_digest(&c);
        events[r] = evlog_count(monitord_events(c.mon));
        cluster_stop(&c);
    }
    assert_true(events[0] > 3);
    assert_int_equal(events[0], events[1]);
    assert_int_equal(digest[0], digest[1]);
}

int main(void)
{
    const char *env = getenv("VIGIL_SIM_SEED");
    if (env) {
        seeds[0] = strtoull(env, NULL, 10);
        n_seeds = 1;
    } else {
        /* The fixed seeds, and one new each run (printed, so it can be replayed). */
        seeds[3] = (uint64_t)time(NULL);
        n_seeds = 4;
    }
    const char *soak_env = getenv("VIGIL_SIM_SOAK");
    if (soak_env)
        soak = (vigil_time_t)strtoll(soak_env, NULL, 10) * S;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_then_crashes), cmocka_unit_test(test_monitor_pauses_1s),
        cmocka_unit_test(test_monitor_pauses_20ms), cmocka_unit_test(test_monitor_overflow),
        cmocka_unit_test(test_partition_heals),     cmocka_unit_test(test_goodbye_and_restart),
        cmocka_unit_test(test_agent_pause),         cmocka_unit_test(test_replays_exactly),
        cmocka_unit_test(test_key_rotation_live),   cmocka_unit_test(test_drops_summarized),
        cmocka_unit_test(test_agent_send_errors),   cmocka_unit_test(test_service_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
