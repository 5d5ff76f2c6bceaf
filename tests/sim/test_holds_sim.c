/*
 * Held actions in virtual time: flap damping and maintenance (holds.c) in
 * front of the hook runner (hooks.c), wired as monitord.c wires them. Each
 * change of a node's state goes to holds_note and then to the runner; the
 * runner asks holds_reason before a node's next event goes to its action;
 * when a hold ends (holds' change callback) and the node has no reason
 * left, the runner is told to release it.
 *
 * The action is one exec action on dead with undo, a fake program that
 * records what it was started for (VIGIL_NODE, VIGIL_ACTION) and when.
 * Detection is the test's: it sets each node's state at times it chooses,
 * from a seeded generator. The damping model is computed here from the
 * times of the changes alone (a penalty that decays by half every
 * half-life, summed over every change into or out of dead), independently
 * of holds.c, and the run is checked against it:
 *
 *   - random_flaps: while the model says a node flaps, no action starts
 *     for it; one "flapping" and one "settled" per episode, at the model's
 *     times; after it settles, one action for the state it is in (at
 *     once, or when a slow action from before the episode ends), or none
 *     when its held events went there and back; do and undo alternate.
 *   - settle_time: after a burst, "settled" fires within 1 ms of
 *     t + half_life * log2(P / reuse), never before.
 *   - maintenance: a node that dies and comes back during it is never
 *     acted on; one that stays dead is acted on at its end, to the
 *     nanosecond; ending it by hand releases at once; an action already
 *     running when it begins runs to its end, and if the maintenance ends
 *     first, the events that came during it still collapse.
 *   - many_nodes: 200 nodes flapping, in and out of maintenance, and
 *     now and then half of them lost at once (more actions than may run
 *     together), for ten minutes: once all holds have ended nothing is
 *     left pending or waiting, and every node's last action is for its
 *     final state.
 *
 * A failure names its seed. VIGIL_SIM_SEEDS=N runs seeds 1 to N of each
 * seeded test, VIGIL_SIM_SEED=N seed N alone (a failing seed replays
 * exactly), and VIGIL_SIM_DEBUG=1 prints the world's changes, the holds'
 * and the runner's log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_loop.h"
#include "fake_procs.h"
#include "vigil/holds.h"
#include "vigil/hooks.h"

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC
#define US (VIGIL_NSEC_PER_MSEC / 1000)
#define T0 (1000 * S)

/* The damping of random_flaps: a node flaps at its fourth change within a few seconds. */
#define HALF_LIFE (10 * S)
#define PENALTY   1000.0
#define SUPPRESS  3000.0
#define REUSE     750.0

#define SEEDS_FLAPS  100
#define SEEDS_SETTLE 50
#define SEEDS_MANY   4
#define MAX_NODES    200
/* Changes of one node in random_flaps: ten minutes of storms at most make a few hundred. */
#define MAX_FLIPS 2048

enum op { OP_NONE, OP_DO, OP_UNDO };

/* An action started, as the fake program saw it. */
struct act {
    int node;
    enum op op;
    unsigned attempt;
    vigil_time_t at;
    size_t spawn; /* its record in the fake procs (its end) */
};

/* A hold began or ended (holds' change callback). */
struct change {
    int node;
    char what[24];
    vigil_time_t at;
};

struct node {
    char id[16];
    enum vigil_state state; /* what detection says now */
    enum op last;           /* the last action started for it (first attempts) */
    /* many_nodes: the node's next change, and what it is to */
    vigil_time_t next_at;
    enum vigil_state next_to;
    bool flappy;               /* has storms */
    bool storm;                /* in one now */
    vigil_time_t phase_end;    /* the storm, or the calm, ends then */
    unsigned flapping, maints; /* holds begun and not yet ended, by the callback */
};

struct sim {
    uint64_t seed;
    vigil_time_t clock;
    uint64_t rng;
    uint64_t seq;
    struct vio_loop *loop;
    struct vio_procs *procs;
    struct hook_runner *runner;
    struct holds holds;
    struct node nodes[MAX_NODES];
    int n_nodes;
    vigil_time_t run_min, run_max; /* an action runs this long, at random */
    double slow;                   /* ... but this share of them 15 to 45 s (a slow API) */
    double fail;                   /* the share of first attempts that fail (retried) */
    struct act *acts;
    size_t n_acts, cap_acts;
    struct change *changes;
    size_t n_changes, cap_changes;
    unsigned broken; /* actions out of turn: two do in a row, or an undo first */
    unsigned paired; /* holds ended that had not begun, or began twice */
    /*
     * Runs that started while their node was held: retries, and runs that
     * waited in line for a slot, of events that went before the hold began.
     */
    unsigned held_retries, held_from_line;
    char why[256];
};

/* ---- the world ---- */

static uint64_t rnd(struct sim *s)
{
    /* xorshift64* */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * UINT64_C(2685821657736338717);
}

static double urand(struct sim *s)
{
    return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

static vigil_time_t between(struct sim *s, vigil_time_t a, vigil_time_t b)
{
    return a + (vigil_time_t)(urand(s) * (double)(b - a));
}

static double secs(vigil_time_t t)
{
    return (double)(t - T0) / S;
}

/* The seed being run (0: none), named when a check fails inside it. */
static uint64_t running_seed;

/* Seeds 1..N (N: VIGIL_SIM_SEEDS, else dflt), or the one VIGIL_SIM_SEED names. */
static void seed_range(unsigned dflt, uint64_t *first, uint64_t *last)
{
    const char *one = getenv("VIGIL_SIM_SEED");
    const char *n = getenv("VIGIL_SIM_SEEDS");
    *first = one ? strtoull(one, NULL, 10) : 1;
    *last = one ? *first : n ? strtoull(n, NULL, 10) : dflt;
}

/* After each test: a failure inside a seed says which, so that it can be run alone. */
static int report_seed(void **state)
{
    (void)state;
    if (running_seed)
        printf("failed in seed %" PRIu64 " (VIGIL_SIM_SEED=%" PRIu64 " runs it alone)\n",
               running_seed, running_seed);
    running_seed = 0;
    return 0;
}

static int node_index(const struct sim *s, const char *id)
{
    assert_non_null(id);
    assert_true(id[0] == 'n');
    int i = atoi(id + 1);
    assert_true(i >= 0 && i < s->n_nodes);
    return i;
}

/* What the actions last said of a node: do means dead, undo (or nothing yet) alive. */
static bool op_says_dead(enum op op)
{
    return op == OP_DO;
}

/* The action: records what it was started for, and checks that do and undo take turns. */
static void act_prog(void *arg, const struct fake_spawn *sp, struct fake_outcome *out)
{
    struct sim *s = arg;
    const char *node = fake_spawn_env(sp, "VIGIL_NODE");
    const char *action = fake_spawn_env(sp, "VIGIL_ACTION");
    const char *attempt = fake_spawn_env(sp, "VIGIL_ATTEMPT");
    assert_non_null(action);
    assert_non_null(attempt);
    int i = node_index(s, node);
    struct node *n = &s->nodes[i];
    enum op op = !strcmp(action, "undo") ? OP_UNDO : OP_DO;
    assert_true(op == OP_UNDO || !strcmp(action, "do"));
    unsigned att = (unsigned)strtoul(attempt, NULL, 10);
    if (s->n_acts == s->cap_acts) {
        s->cap_acts = s->cap_acts ? 2 * s->cap_acts : 256;
        s->acts = realloc(s->acts, s->cap_acts * sizeof(*s->acts));
        assert_non_null(s->acts);
    }
    s->acts[s->n_acts++] = (struct act){
        .node = i, .op = op, .attempt = att, .at = s->clock, .spawn = fake_procs_count(s->procs)};
    if (att == 1) {
        bool in_turn = op == OP_DO ? n->last != OP_DO : n->last == OP_DO;
        if (!in_turn && s->broken++ == 0)
            snprintf(s->why, sizeof(s->why), "t=%.6fs: %s got %s after %s", secs(s->clock), n->id,
                     action,
                     n->last == OP_DO     ? "do"
                     : n->last == OP_UNDO ? "undo"
                                          : "none");
        n->last = op;
    }
    if (holds_reason(&s->holds, n->id))
        (*(att == 1 ? &s->held_from_line : &s->held_retries))++;
    out->exit_code = att == 1 && s->fail > 0 && urand(s) < s->fail ? 1 : 0;
    out->runs_for = s->slow > 0 && urand(s) < s->slow ? between(s, 15 * S, 45 * S)
                                                      : between(s, s->run_min, s->run_max);
}

/* ---- the monitor's wiring (monitord.c) ---- */

static const char *hold_reason(void *arg, const char *node)
{
    struct sim *s = arg;
    return holds_reason(&s->holds, node);
}

static void hold_changed(void *arg, const char *node, const char *what)
{
    struct sim *s = arg;
    int i = node_index(s, node);
    struct node *n = &s->nodes[i];
    if (getenv("VIGIL_SIM_DEBUG"))
        printf("%11.6f holds: %s %s (penalty %.1f)\n", secs(s->clock), node, what,
               holds_penalty(&s->holds, node));
    if (s->n_changes == s->cap_changes) {
        s->cap_changes = s->cap_changes ? 2 * s->cap_changes : 64;
        s->changes = realloc(s->changes, s->cap_changes * sizeof(*s->changes));
        assert_non_null(s->changes);
    }
    struct change *c = &s->changes[s->n_changes++];
    c->node = i;
    c->at = s->clock;
    snprintf(c->what, sizeof(c->what), "%s", what);
    /* Each hold begins and ends in turn. */
    unsigned *count = !strncmp(what, "maintenance", 11) ? &n->maints : &n->flapping;
    bool begins = !strcmp(what, "flapping") || !strcmp(what, "maintenance on");
    if (begins ? *count != 0 : *count != 1)
        s->paired++;
    *count = begins;
    if (!holds_reason(&s->holds, node))
        hook_runner_release(s->runner, node);
}

static void runner_log(void *arg, const char *line)
{
    struct sim *s = arg;
    if (getenv("VIGIL_SIM_DEBUG"))
        printf("%11.6f runner: %s\n", secs(s->clock), line);
}

/* Detection says node i is now st: the event goes to the holds, then to the runner. */
static void sim_set(struct sim *s, int i, enum vigil_state st)
{
    struct node *n = &s->nodes[i];
    if (n->state == st)
        return;
    struct evrec r;
    memset(&r, 0, sizeof(r));
    r.ev.seq = ++s->seq;
    r.ev.type = VIGIL_EVENT_STATE;
    r.ev.time = s->clock;
    snprintf(r.ev.node, sizeof(r.ev.node), "%s", n->id);
    r.ev.old_state = n->state;
    r.ev.new_state = st;
    r.ev.reason = st == VIGIL_STATE_ALIVE ? "heartbeat" : "timeout";
    r.wall_us = INT64_C(1800000000000000) + s->clock / 1000;
    n->state = st;
    if (getenv("VIGIL_SIM_DEBUG"))
        printf("%11.6f world: %s %s -> %s\n", secs(s->clock), n->id,
               vigil_state_name(r.ev.old_state), vigil_state_name(st));
    holds_note(&s->holds, &r);
    assert_int_equal(hook_runner_submit(s->runner, &r), 0);
}

static void sim_run_until(struct sim *s, vigil_time_t t)
{
    assert_true(t >= s->clock);
    fake_loop_run_until(s->loop, t);
    assert_true(s->clock == t);
}

static struct sim *sim_new(uint64_t seed, int n_nodes, const struct holds_opts *o)
{
    struct sim *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->seed = seed;
    s->clock = T0;
    s->rng = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
    s->loop = fake_loop_new(&s->clock);
    assert_non_null(s->loop);
    s->procs = fake_procs_new(s->loop);
    assert_non_null(s->procs);
    assert_int_equal(fake_procs_register(s->procs, "act", act_prog, s), 0);
    static char prog[] = "act";
    struct vcfg_hook h;
    vcfg_hook_default(&h);
    h.kind = VCFG_ACT_EXEC;
    h.argv[0] = prog;
    h.on_states = 1u << VIGIL_STATE_DEAD;
    h.undo = true;
    h.timeout = 60 * S; /* longer than the slowest action: none times out here */
    assert_int_equal(hook_runner_new(s->loop, s->procs, &h, 1, runner_log, s, &s->runner), 0);
    assert_int_equal(holds_init(&s->holds, s->loop, o, hold_changed, s), 0);
    hook_runner_set_hold(s->runner, hold_reason, s);
    s->run_min = 50 * MS;
    s->run_max = 3 * S;
    assert_true(n_nodes <= MAX_NODES);
    s->n_nodes = n_nodes;
    for (int i = 0; i < n_nodes; i++) {
        snprintf(s->nodes[i].id, sizeof(s->nodes[i].id), "n%d", i);
        s->nodes[i].state = VIGIL_STATE_UNKNOWN;
    }
    return s;
}

/* Every node first heard, alive: a first verdict, which neither counts as a flap nor acts. */
static void sim_hear_all(struct sim *s)
{
    for (int i = 0; i < s->n_nodes; i++)
        sim_set(s, i, VIGIL_STATE_ALIVE);
}

static void sim_free(struct sim *s)
{
    hook_runner_free(s->runner);
    holds_destroy(&s->holds);
    fake_procs_free(s->procs);
    vio_loop_free(s->loop);
    free(s->acts);
    free(s->changes);
    free(s);
}

static const struct holds_opts damping_opts = {
    .damping = true,
    .half_life = HALF_LIFE,
    .penalty = PENALTY,
    .suppress = SUPPRESS,
    .reuse = REUSE,
};

/* The last action started for node at or before t (first attempts), or NULL. */
static const struct act *last_act_by(const struct sim *s, int node, vigil_time_t t)
{
    const struct act *a = NULL;
    for (size_t k = 0; k < s->n_acts && s->acts[k].at <= t; k++)
        if (s->acts[k].node == node && s->acts[k].attempt == 1)
            a = &s->acts[k];
    return a;
}

/* When the run of a (an action's first attempt, which succeeds) ended. */
static vigil_time_t act_end(const struct sim *s, const struct act *a)
{
    const struct fake_spawn *sp = fake_procs_spawn_at(s->procs, a->spawn);
    assert_non_null(sp);
    return sp->end;
}

/* Actions started for node in [from, to). */
static size_t acts_in(const struct sim *s, int node, vigil_time_t from, vigil_time_t to,
                      const struct act **first)
{
    size_t n = 0;
    for (size_t k = 0; k < s->n_acts; k++) {
        const struct act *a = &s->acts[k];
        if (a->node == node && a->at >= from && a->at < to) {
            if (n++ == 0 && first)
                *first = a;
        }
    }
    return n;
}

static void check_turns(const struct sim *s)
{
    if (s->broken)
        fail_msg("seed %" PRIu64 ": %u actions out of turn; the first: %s", s->seed, s->broken,
                 s->why);
    if (s->paired)
        fail_msg("seed %" PRIu64 ": %u holds began or ended out of turn", s->seed, s->paired);
}

/* ---- the damping model ---- */

/* A change of a node's state, as the test scripts it. */
struct flip {
    vigil_time_t at;
    enum vigil_state from, to;
    bool counts;   /* into or out of dead: a flap */
    double pen;    /* the model's penalty just after it (counting ones) */
    bool flapping; /* the model says the node flaps just after it */
};

struct episode {
    vigil_time_t start;   /* the change that made the node flap */
    double end;           /* when its penalty falls below reuse */
    vigil_time_t flap_cb; /* when "flapping" and "settled" came (VIGIL_TIME_NEVER: not) */
    vigil_time_t settle_cb;
};

/*
 * The penalty of each counting flip, as the sum over every counting flip
 * so far of PENALTY * 2^(-age / half_life); the episodes of flapping,
 * each from the flip that brings the penalty to suppress to the moment
 * the decayed penalty falls below reuse with no flip in between.
 */
static size_t model(struct flip *f, size_t n, vigil_time_t half_life, struct episode *ep,
                    size_t cap)
{
    size_t n_ep = 0;
    bool flapping = false;
    size_t last = SIZE_MAX; /* the last counting flip */
    for (size_t i = 0; i < n; i++) {
        if (!f[i].counts) {
            f[i].flapping = flapping;
            continue;
        }
        double p = 0;
        for (size_t k = 0; k <= i; k++)
            if (f[k].counts)
                p += PENALTY * exp2(-(double)(f[i].at - f[k].at) / (double)half_life);
        f[i].pen = p;
        if (flapping) {
            double end = (double)f[last].at + (double)half_life * log2(f[last].pen / REUSE);
            if (end < (double)f[i].at) {
                ep[n_ep - 1].end = end;
                flapping = false;
            }
        }
        if (!flapping && p >= SUPPRESS) {
            assert_true(n_ep < cap);
            ep[n_ep++] = (struct episode){.start = f[i].at};
            flapping = true;
        }
        f[i].flapping = flapping;
        last = i;
    }
    if (flapping)
        ep[n_ep - 1].end = (double)f[last].at + (double)half_life * log2(f[last].pen / REUSE);
    return n_ep;
}

/* Matches the holds' changes of node against the model's episodes, one for one. */
static void match_episodes(const struct sim *s, int node, struct episode *ep, size_t n_ep)
{
    size_t k = 0;
    for (size_t c = 0; c < s->n_changes; c++) {
        const struct change *ch = &s->changes[c];
        if (ch->node != node)
            continue;
        if (!strcmp(ch->what, "flapping")) {
            if (k >= n_ep || ch->at != ep[k].start)
                fail_msg("seed %" PRIu64 ": %s flapping at %.6fs, the model says %.6fs", s->seed,
                         s->nodes[node].id, secs(ch->at), k < n_ep ? secs(ep[k].start) : -1.0);
            ep[k].flap_cb = ch->at;
        } else if (!strcmp(ch->what, "settled")) {
            double d = k < n_ep ? (double)ch->at - ep[k].end : 0;
            if (k >= n_ep || d < -1.0 * US || d > 1.0 * MS)
                fail_msg("seed %" PRIu64 ": %s settled at %.6fs, the model says %.6fs", s->seed,
                         s->nodes[node].id, secs(ch->at),
                         k < n_ep ? (ep[k].end - (double)T0) / S : -1.0);
            ep[k++].settle_cb = ch->at;
        } else {
            fail_msg("seed %" PRIu64 ": %s: unexpected %s", s->seed, s->nodes[node].id, ch->what);
        }
    }
    if (k != n_ep)
        fail_msg("seed %" PRIu64 ": %s settled %zu times, the model has %zu episodes", s->seed,
                 s->nodes[node].id, k, n_ep);
}

/* ---- a. a node flapping at random ---- */

/*
 * One node's changes: its first verdict (alive, or dead when it was never
 * heard), then ten minutes of calm spells (a change every 5 to 40 s) and
 * storms (every 0.3 to 4 s). Dying goes through suspect; one time
 * in five the node is only suspected and comes back (no flap). No two
 * flaps are 80 s apart, so the holds never forget a penalty the model
 * still counts (a penalty below 1 is forgotten).
 */
static size_t script_one(struct sim *s, struct flip *f, size_t cap)
{
    size_t n = 0;
    vigil_time_t t = T0 + S, last_flap = t;
    /* The first verdict (declared, then heard or never heard): not a flap. */
    enum vigil_state st = urand(s) < 0.3 ? VIGIL_STATE_DEAD : VIGIL_STATE_ALIVE;
    f[n++] = (struct flip){.at = t, .from = VIGIL_STATE_UNKNOWN, .to = st};
    bool storm = false;
    vigil_time_t phase_end = t + between(s, 20 * S, 60 * S);
    while (t < T0 + 600 * S && n + 2 <= cap) {
        if (t >= phase_end) {
            storm = !storm;
            phase_end = t + (storm ? between(s, 10 * S, 60 * S) : between(s, 30 * S, 120 * S));
        }
        t += storm ? between(s, 300 * MS, 4 * S) : between(s, 5 * S, 40 * S);
        if (st == VIGIL_STATE_DEAD) {
            f[n++] = (struct flip){.at = t, .from = st, .to = VIGIL_STATE_ALIVE, .counts = true};
            st = VIGIL_STATE_ALIVE;
            last_flap = t;
            continue;
        }
        bool only_suspected = urand(s) < 0.2 && t - last_flap < 30 * S;
        f[n++] = (struct flip){.at = t, .from = st, .to = VIGIL_STATE_SUSPECT};
        t += between(s, 10 * MS, 500 * MS);
        st = only_suspected ? VIGIL_STATE_ALIVE : VIGIL_STATE_DEAD;
        f[n++] = (struct flip){
            .at = t, .from = VIGIL_STATE_SUSPECT, .to = st, .counts = !only_suspected};
        if (!only_suspected)
            last_flap = t;
    }
    return n;
}

struct flap_totals {
    unsigned episodes, acted_after, quiet_after, acts;
    unsigned slow_settle; /* settled while the last action still ran */
    unsigned overrun;     /* ... and it ran on past the node's next change: not checked */
};

static void flaps_seed(uint64_t seed, struct flap_totals *tot)
{
    running_seed = seed;
    struct sim *s = sim_new(seed, 1, &damping_opts);
    s->slow = 0.25;
    static struct flip f[MAX_FLIPS];
    static struct episode ep[MAX_FLIPS];
    size_t n = script_one(s, f, MAX_FLIPS);
    size_t n_ep = model(f, n, HALF_LIFE, ep, MAX_FLIPS);
    for (size_t k = 0; k < n_ep; k++)
        ep[k].flap_cb = ep[k].settle_cb = VIGIL_TIME_NEVER;

    for (size_t i = 0; i < n; i++) {
        sim_run_until(s, f[i].at);
        sim_set(s, 0, f[i].to);
        /* The holds agree with the model after every change. */
        const char *why = holds_reason(&s->holds, "n0");
        if (f[i].counts && (why != NULL) != f[i].flapping)
            fail_msg("seed %" PRIu64 ": t=%.6fs: holds say %s, the model %s (penalty %.3f, "
                     "model %.3f)",
                     seed, secs(f[i].at), why ? why : "not held",
                     f[i].flapping ? "flapping" : "not flapping", holds_penalty(&s->holds, "n0"),
                     f[i].pen);
    }
    vigil_time_t end = f[n - 1].at + 300 * S;
    for (size_t k = 0; k < n_ep; k++)
        assert_true(ep[k].end + (double)(10 * S) < (double)end);
    sim_run_until(s, end);

    check_turns(s);
    match_episodes(s, 0, ep, n_ep);
    for (size_t k = 0; k < n_ep; k++) {
        /* No action starts while the model says the node flaps. */
        for (size_t a = 0; a < s->n_acts; a++)
            if (s->acts[a].at > ep[k].start && (double)s->acts[a].at < ep[k].end - 1.0)
                fail_msg("seed %" PRIu64 ": an action started at %.6fs while n0 flapped (%.6fs "
                         "to %.6fs)",
                         seed, secs(s->acts[a].at), secs(ep[k].start), (ep[k].end - T0) / S);
        /*
         * Settled: the node's state then, against what its actions said
         * when it began to flap (the last one started; events behind it
         * were held). They differ: one action for the state, at once, or
         * when that last action ends if it still runs (a slow one). They
         * agree (the held events went there and back): none.
         */
        vigil_time_t at = ep[k].settle_cb, next = VIGIL_TIME_NEVER;
        enum vigil_state now = VIGIL_STATE_ALIVE;
        for (size_t i = 0; i < n; i++) {
            if (f[i].at <= at)
                now = f[i].to;
            else if (f[i].counts) {
                next = f[i].at;
                break;
            }
        }
        bool dead = now == VIGIL_STATE_DEAD;
        const struct act *said = last_act_by(s, 0, ep[k].start);
        bool said_dead = op_says_dead(said ? said->op : OP_NONE);
        vigil_time_t go = said && act_end(s, said) > at ? act_end(s, said) : at;
        if (go >= next) {
            /* Still running when the node changed again: what follows queues behind it. */
            tot->overrun++;
            continue;
        }
        if (go > at)
            tot->slow_settle++;
        const struct act *first = NULL;
        size_t got = acts_in(s, 0, at, next, &first);
        if (dead == said_dead) {
            if (got != 0)
                fail_msg("seed %" PRIu64 ": n0 settled at %.6fs %s, as its actions said; yet %zu "
                         "actions started after",
                         seed, secs(at), vigil_state_name(now), got);
            tot->quiet_after++;
        } else {
            if (got != 1 || first->at != go || first->op != (dead ? OP_DO : OP_UNDO))
                fail_msg("seed %" PRIu64 ": n0 settled at %.6fs %s: %zu actions after, the "
                         "first %s at %.6fs",
                         seed, secs(at), vigil_state_name(now), got,
                         got ? (first->op == OP_DO ? "do" : "undo") : "-",
                         got ? secs(first->at) : 0.0);
            tot->acted_after++;
        }
    }
    /* The node ends alive or dead, and its last action says so. */
    enum vigil_state final = f[n - 1].to;
    assert_true(final == VIGIL_STATE_ALIVE || final == VIGIL_STATE_DEAD);
    if (op_says_dead(s->nodes[0].last) != (final == VIGIL_STATE_DEAD))
        fail_msg("seed %" PRIu64 ": n0 ends %s, its last action is %s", seed,
                 vigil_state_name(final), s->nodes[0].last == OP_DO ? "do" : "undo or none");
    assert_null(holds_reason(&s->holds, "n0"));
    assert_int_equal(hook_runner_pending(s->runner), 0);
    assert_int_equal(hook_runner_waiting(s->runner), 0);
    assert_int_equal(s->held_retries + s->held_from_line, 0);
    tot->episodes += (unsigned)n_ep;
    tot->acts += (unsigned)s->n_acts;
    sim_free(s);
    running_seed = 0;
}

static void test_random_flaps(void **state)
{
    (void)state;
    struct flap_totals tot = {0};
    uint64_t first, last;
    seed_range(SEEDS_FLAPS, &first, &last);
    for (uint64_t seed = first; seed <= last; seed++)
        flaps_seed(seed, &tot);
    uint64_t n = last - first + 1;
    printf("random flaps, %" PRIu64 " seeds: %u flapping episodes (%u settled to a new state and "
           "acted once, %u back where they began and not acted on; %u settled while a slow "
           "action ran, %u of them not checked: it ran past the next change), %u actions\n",
           n, tot.episodes, tot.acted_after, tot.quiet_after, tot.slow_settle, tot.overrun,
           tot.acts);
    /* The storms bite, both ways of settling happen, and slow actions outlast episodes. */
    if (n >= 20) {
        assert_true(tot.episodes > 2 * n);
        assert_true(tot.acted_after > 0);
        assert_true(tot.quiet_after > 0);
        assert_true(tot.slow_settle > 0);
    }
}

/* ---- b. the settle time ---- */

static void settle_seed(uint64_t seed, const struct holds_opts *o)
{
    running_seed = seed;
    struct sim *s = sim_new(seed, 1, o);
    sim_hear_all(s);
    s->run_min = 100 * MS;
    s->run_max = 5 * S;
    /* A burst of 4 to 11 flaps, 10 to 800 ms apart, from alive: it flaps. */
    size_t k = 4 + rnd(s) % 8;
    vigil_time_t t = T0 + S, flap_at = VIGIL_TIME_NEVER;
    vigil_time_t at[16];
    double p = 0;
    for (size_t i = 0; i < k; i++) {
        at[i] = t;
        sim_run_until(s, t);
        sim_set(s, 0, i % 2 == 0 ? VIGIL_STATE_DEAD : VIGIL_STATE_ALIVE);
        p = 0;
        for (size_t j = 0; j <= i; j++)
            p += o->penalty * exp2(-(double)(at[i] - at[j]) / (double)o->half_life);
        if (p >= o->suppress && flap_at == VIGIL_TIME_NEVER)
            flap_at = t;
        t += between(s, 10 * MS, 800 * MS);
    }
    assert_true(flap_at != VIGIL_TIME_NEVER);
    vigil_time_t last = at[k - 1];
    /* The penalty decays as the model says. */
    assert_true(fabs(holds_penalty(&s->holds, "n0") - p) < 1e-9 * p);
    double pred = (double)last + (double)o->half_life * log2(p / o->reuse);
    vigil_time_t before = (vigil_time_t)pred - MS;
    sim_run_until(s, before);
    assert_string_equal(holds_reason(&s->holds, "n0"), "flapping");
    double decayed = p * exp2(-(double)(before - last) / (double)o->half_life);
    assert_true(decayed >= o->reuse);
    assert_true(fabs(holds_penalty(&s->holds, "n0") - decayed) < 1e-9 * p);
    sim_run_until(s, (vigil_time_t)pred + MS);
    assert_null(holds_reason(&s->holds, "n0"));

    vigil_time_t flapping = VIGIL_TIME_NEVER, settled = VIGIL_TIME_NEVER;
    for (size_t c = 0; c < s->n_changes; c++) {
        if (!strcmp(s->changes[c].what, "flapping")) {
            assert_true(flapping == VIGIL_TIME_NEVER);
            flapping = s->changes[c].at;
        } else {
            assert_string_equal(s->changes[c].what, "settled");
            assert_true(settled == VIGIL_TIME_NEVER);
            settled = s->changes[c].at;
        }
    }
    assert_true(flapping == flap_at);
    /* At the first timer time when the decayed penalty is below reuse, never before it. */
    double d = (double)settled - pred;
    if (d < -1.0 * US || d > 1.0 * MS)
        fail_msg("seed %" PRIu64 ": settled at %.9fs, predicted %.9fs (P=%.3f)", seed,
                 secs(settled), (pred - T0) / S, p);
    /* (A relative 1e-12 is a hundredth of a nanosecond of decay: rounding, not time.) */
    assert_true(p * exp2(-(double)(settled - last) / (double)o->half_life) <
                o->reuse * (1 + 1e-12));

    /* Then one action for the burst's end, unless the actions say so already. */
    sim_run_until(s, settled + 60 * S);
    check_turns(s);
    bool dead = s->nodes[0].state == VIGIL_STATE_DEAD;
    const struct act *said = last_act_by(s, 0, flap_at);
    bool said_dead = op_says_dead(said ? said->op : OP_NONE);
    const struct act *first = NULL;
    size_t got = acts_in(s, 0, flap_at + 1, VIGIL_TIME_NEVER, &first);
    assert_int_equal(got, dead != said_dead);
    if (got) {
        assert_true(first->at == settled);
        assert_int_equal(first->op, dead ? OP_DO : OP_UNDO);
    }
    assert_int_equal(hook_runner_pending(s->runner), 0);
    assert_int_equal(hook_runner_waiting(s->runner), 0);
    sim_free(s);
    running_seed = 0;
}

static void test_settle_time(void **state)
{
    (void)state;
    uint64_t first, last;
    seed_range(SEEDS_SETTLE, &first, &last);
    struct holds_opts defaults = {
        .damping = true,
        .half_life = HOLDS_HALF_LIFE_DEFAULT,
        .penalty = HOLDS_PENALTY_DEFAULT,
        .suppress = HOLDS_SUPPRESS_DEFAULT,
        .reuse = HOLDS_REUSE_DEFAULT,
    };
    for (uint64_t seed = first; seed <= last; seed++) {
        settle_seed(seed, &damping_opts);
        settle_seed(seed, &defaults);
    }
}

/* ---- c. maintenance ---- */

struct held_count {
    unsigned maintenance, other;
};

static void count_held(void *arg, const struct hook_work *w)
{
    struct held_count *c = arg;
    if (w->state && !strcmp(w->state, "held: maintenance"))
        c->maintenance++;
    else
        c->other++;
}

static const struct change *change_of(const struct sim *s, int node, size_t nth)
{
    for (size_t c = 0; c < s->n_changes; c++)
        if (s->changes[c].node == node && nth-- == 0)
            return &s->changes[c];
    return NULL;
}

static void test_maintenance(void **state)
{
    (void)state;
    struct sim *s = sim_new(1, 5, &damping_opts);
    sim_hear_all(s);
    /* Every action runs 5 s. */
    s->run_min = s->run_max = 5 * S;
    enum { N_BACK, N_STAYS, N_BY_HAND, N_RUNNING, N_SHORT };

    /* n3 dies: its do starts at once, and runs 5 s. */
    sim_run_until(s, T0 + 1 * S);
    sim_set(s, N_RUNNING, VIGIL_STATE_DEAD);
    assert_int_equal(s->n_acts, 1);
    assert_true(s->acts[0].node == N_RUNNING && s->acts[0].op == OP_DO);
    assert_true(s->acts[0].at == T0 + 1 * S);

    /* Maintenance: n0 and n1 for 30 s, n2 until told, n3 for 40 s while its do runs. */
    sim_run_until(s, T0 + 2 * S);
    assert_int_equal(holds_maint(&s->holds, "n0", T0 + 32 * S), 0);
    assert_int_equal(holds_maint(&s->holds, "n1", T0 + 32 * S), 0);
    assert_int_equal(holds_maint(&s->holds, "n2", VIGIL_TIME_NEVER), 0);
    assert_int_equal(holds_maint(&s->holds, "n3", T0 + 42 * S), 0);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(holds_reason(&s->holds, s->nodes[i].id), "maintenance");
        assert_string_equal(change_of(s, i, 0)->what, "maintenance on");
    }

    /* During it: n0 dies and comes back, n1 and n2 die, n3 comes back. */
    sim_run_until(s, T0 + 4 * S);
    sim_set(s, N_RUNNING, VIGIL_STATE_ALIVE);
    sim_run_until(s, T0 + 7 * S);
    sim_set(s, N_BACK, VIGIL_STATE_DEAD);
    sim_set(s, N_STAYS, VIGIL_STATE_DEAD);
    sim_set(s, N_BY_HAND, VIGIL_STATE_DEAD);
    sim_run_until(s, T0 + 12 * S);
    sim_set(s, N_BACK, VIGIL_STATE_ALIVE);

    /* n3's do ran to its end, untouched by its maintenance. */
    const struct fake_spawn *sp = fake_procs_spawn_at(s->procs, 0);
    assert_non_null(sp);
    assert_true(sp->start == T0 + 1 * S);
    assert_true(sp->end == T0 + 6 * S);
    assert_int_equal(sp->status, 0);
    assert_true(sp->term_at == VIGIL_TIME_NEVER);
    assert_int_equal(sp->n_signals, 0);

    /* All four held: n0 with two events (one waiting), n1, n2, n3 with one each. */
    assert_int_equal(s->n_acts, 1);
    assert_int_equal(hook_runner_waiting(s->runner), 1);
    assert_int_equal(hook_runner_pending(s->runner), 5);
    struct held_count hc = {0};
    hook_runner_each(s->runner, count_held, &hc);
    assert_int_equal(hc.maintenance, 4);
    assert_int_equal(hc.other, 0);

    /* n2's maintenance ended by hand: its do starts at once. */
    sim_run_until(s, T0 + 15 * S);
    assert_int_equal(holds_maint(&s->holds, "n2", 0), 0);
    assert_string_equal(change_of(s, N_BY_HAND, 1)->what, "maintenance off");
    assert_true(change_of(s, N_BY_HAND, 1)->at == T0 + 15 * S);
    assert_null(holds_reason(&s->holds, "n2"));
    assert_int_equal(s->n_acts, 2);
    assert_true(s->acts[1].node == N_BY_HAND && s->acts[1].op == OP_DO);
    assert_true(s->acts[1].at == T0 + 15 * S);

    /* n0 and n1: nothing until their maintenance ends, to the nanosecond. */
    sim_run_until(s, T0 + 32 * S - 1);
    assert_int_equal(s->n_acts, 2);
    assert_string_equal(holds_reason(&s->holds, "n1"), "maintenance");
    sim_run_until(s, T0 + 32 * S);
    assert_null(holds_reason(&s->holds, "n0"));
    assert_null(holds_reason(&s->holds, "n1"));
    for (int i = N_BACK; i <= N_STAYS; i++) {
        const struct change *c = change_of(s, i, 1);
        assert_non_null(c);
        assert_string_equal(c->what, "maintenance off");
        assert_true(c->at == T0 + 32 * S);
    }
    /* n0 went down and came back: never acted on. n1 stayed dead: its do, now. */
    assert_int_equal(s->n_acts, 3);
    assert_true(s->acts[2].node == N_STAYS && s->acts[2].op == OP_DO);
    assert_true(s->acts[2].at == T0 + 32 * S);
    assert_int_equal(hook_runner_stats(s->runner)->coalesced, 2);

    /* n3: back during its maintenance; its undo at the end of it. */
    sim_run_until(s, T0 + 42 * S - 1);
    assert_int_equal(s->n_acts, 3);
    sim_run_until(s, T0 + 42 * S);
    assert_int_equal(s->n_acts, 4);
    assert_true(s->acts[3].node == N_RUNNING && s->acts[3].op == OP_UNDO);
    assert_true(s->acts[3].at == T0 + 42 * S);

    /*
     * n4: a maintenance that begins and ends while its do runs, and the
     * node comes back and dies again during it. When the do is done, the
     * held events go as at a release: there and back, so nothing more.
     */
    sim_run_until(s, T0 + 50 * S);
    sim_set(s, N_SHORT, VIGIL_STATE_DEAD);
    assert_int_equal(s->n_acts, 5);
    sim_run_until(s, T0 + 51 * S);
    assert_int_equal(holds_maint(&s->holds, "n4", T0 + 53 * S), 0);
    sim_run_until(s, T0 + 51 * S + 500 * MS);
    sim_set(s, N_SHORT, VIGIL_STATE_ALIVE);
    sim_run_until(s, T0 + 52 * S);
    sim_set(s, N_SHORT, VIGIL_STATE_DEAD);
    sim_run_until(s, T0 + 53 * S);
    assert_null(holds_reason(&s->holds, "n4"));
    assert_int_equal(hook_runner_waiting(s->runner), 2); /* behind the do, still running */
    sim_run_until(s, T0 + 55 * S);
    assert_true(fake_procs_spawn_at(s->procs, 4)->end == T0 + 55 * S);
    assert_int_equal(hook_runner_waiting(s->runner), 0);
    assert_int_equal(hook_runner_pending(s->runner), 0);

    sim_run_until(s, T0 + 120 * S);
    assert_int_equal(s->n_acts, 5);
    assert_int_equal(acts_in(s, N_BACK, 0, VIGIL_TIME_NEVER, NULL), 0);
    assert_int_equal(acts_in(s, N_SHORT, 0, VIGIL_TIME_NEVER, NULL), 1);
    for (size_t c = 0; c < s->n_changes; c++)
        assert_true(!strncmp(s->changes[c].what, "maintenance", 11)); /* no flapping */
    assert_int_equal(s->n_changes, 10);
    check_turns(s);
    assert_int_equal(hook_runner_pending(s->runner), 0);
    assert_int_equal(hook_runner_waiting(s->runner), 0);
    assert_int_equal(fake_procs_running(s->procs), 0);
    sim_free(s);
}

/* ---- d. many nodes ---- */

#define MANY_END (T0 + 600 * S)

/* The node's next change after the one it just made. */
static void many_schedule(struct sim *s, struct node *n)
{
    vigil_time_t now = s->clock;
    if (n->state == VIGIL_STATE_SUSPECT) {
        /* Suspected: dead, or back (one time in five), soon. */
        n->next_to = urand(s) < 0.2 ? VIGIL_STATE_ALIVE : VIGIL_STATE_DEAD;
        n->next_at = now + between(s, 10 * MS, 500 * MS);
        return;
    }
    if (n->flappy && now >= n->phase_end) {
        n->storm = !n->storm;
        n->phase_end = now + (n->storm ? between(s, 10 * S, 90 * S) : between(s, 30 * S, 150 * S));
    }
    vigil_time_t gap = n->storm ? between(s, 200 * MS, 3 * S) : between(s, 20 * S, 240 * S);
    n->next_to = n->state == VIGIL_STATE_ALIVE ? VIGIL_STATE_SUSPECT : VIGIL_STATE_ALIVE;
    n->next_at = now + gap;
}

static void many_seed(uint64_t seed, unsigned *flap_eps, unsigned *maints, size_t *acts,
                      unsigned held[2], size_t *max_running)
{
    running_seed = seed;
    struct sim *s = sim_new(seed, MAX_NODES, &damping_opts);
    sim_hear_all(s);
    s->run_min = 10 * MS;
    s->run_max = 2 * S;
    s->fail = 0.05; /* retried once, 1 s later, and then it succeeds */
    s->slow = 0.05;
    for (int i = 0; i < s->n_nodes; i++) {
        struct node *n = &s->nodes[i];
        n->flappy = urand(s) < 0.25;
        n->phase_end = T0 + between(s, 0, 60 * S);
        many_schedule(s, n);
    }
    vigil_time_t next_maint = T0 + between(s, 500 * MS, 3 * S);
    vigil_time_t next_rack = T0 + between(s, 30 * S, 120 * S);
    /* Each turn makes one change, one maintenance call or one rack's loss: bounded. */
    unsigned guard = 0;
    for (; guard < 1000000u; guard++) {
        vigil_time_t t = next_maint < next_rack ? next_maint : next_rack;
        int who = -1;
        for (int i = 0; i < s->n_nodes; i++)
            if (s->nodes[i].next_at < t) {
                t = s->nodes[i].next_at;
                who = i;
            }
        if (t >= MANY_END)
            break;
        sim_run_until(s, t);
        if (who >= 0) {
            struct node *n = &s->nodes[who];
            sim_set(s, who, n->next_to);
            many_schedule(s, n);
            continue;
        }
        if (t == next_rack) {
            /*
             * A rack loses power: nearly half the nodes are suspected at
             * once and die soon after, more actions than may run at once
             * (64): the rest wait in line.
             */
            for (int i = 0; i < s->n_nodes; i++) {
                struct node *n = &s->nodes[i];
                if (n->state != VIGIL_STATE_ALIVE || urand(s) >= 0.45)
                    continue;
                sim_set(s, i, VIGIL_STATE_SUSPECT);
                n->next_to = VIGIL_STATE_DEAD;
                n->next_at = t + between(s, 10 * MS, 200 * MS);
            }
            next_rack = t + between(s, 60 * S, 180 * S);
            continue;
        }
        /* An operator: maintenance on for 5 to 90 s or until told, or off. */
        int i = (int)(rnd(s) % (uint64_t)s->n_nodes);
        const char *id = s->nodes[i].id;
        const char *why = holds_reason(&s->holds, id);
        if (why && !strcmp(why, "maintenance") && urand(s) < 0.5)
            assert_int_equal(holds_maint(&s->holds, id, 0), 0);
        else
            assert_int_equal(
                holds_maint(&s->holds, id,
                            urand(s) < 0.3 ? VIGIL_TIME_NEVER : t + between(s, 5 * S, 90 * S)),
                0);
        next_maint = t + between(s, 500 * MS, 3 * S);
    }
    assert_true(guard < 1000000u);

    /* The end: the suspected make up their minds, every maintenance ends, all settle. */
    sim_run_until(s, MANY_END);
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].state == VIGIL_STATE_SUSPECT)
            sim_set(s, i, urand(s) < 0.5 ? VIGIL_STATE_ALIVE : VIGIL_STATE_DEAD);
    sim_run_until(s, MANY_END + 100 * S);
    for (int i = 0; i < s->n_nodes; i++)
        assert_int_equal(holds_maint(&s->holds, s->nodes[i].id, 0), 0);
    sim_run_until(s, MANY_END + 1200 * S);

    check_turns(s);
    for (int i = 0; i < s->n_nodes; i++) {
        const struct node *n = &s->nodes[i];
        if (holds_reason(&s->holds, n->id))
            fail_msg("seed %" PRIu64 ": %s still held (%s)", seed, n->id,
                     holds_reason(&s->holds, n->id));
        if (op_says_dead(n->last) != (n->state == VIGIL_STATE_DEAD))
            fail_msg("seed %" PRIu64 ": %s ends %s, its last action is %s", seed, n->id,
                     vigil_state_name(n->state), n->last == OP_DO ? "do" : "undo or none");
    }
    assert_int_equal(hook_runner_pending(s->runner), 0);
    assert_int_equal(hook_runner_waiting(s->runner), 0);
    assert_int_equal(fake_procs_running(s->procs), 0);
    assert_true(hook_runner_stats(s->runner)->coalesced > 0);
    for (size_t c = 0; c < s->n_changes; c++) {
        *flap_eps += !strcmp(s->changes[c].what, "flapping");
        *maints += !strcmp(s->changes[c].what, "maintenance on");
    }
    *acts += s->n_acts;
    held[0] += s->held_retries;
    held[1] += s->held_from_line;
    if (fake_procs_max_running(s->procs) > *max_running)
        *max_running = fake_procs_max_running(s->procs);
    sim_free(s);
    running_seed = 0;
}

static void test_many_nodes(void **state)
{
    (void)state;
    unsigned flap_eps = 0, maints = 0, held[2] = {0, 0};
    size_t acts = 0, max_running = 0;
    uint64_t first, last;
    seed_range(SEEDS_MANY, &first, &last);
    for (uint64_t seed = first; seed <= last; seed++)
        many_seed(seed, &flap_eps, &maints, &acts, held, &max_running);
    uint64_t n = last - first + 1;
    printf("many nodes, %" PRIu64 " seeds of %d nodes for 10 min: %u flapping episodes, %u "
           "maintenance windows, %zu runs, at most %zu at once; runs of events from before a "
           "hold that started during it: %u retries, %u from the line\n",
           n, MAX_NODES, flap_eps, maints, acts, max_running, held[0], held[1]);
    assert_true(flap_eps > 50 * n);
    assert_true(maints > 100 * n);
    assert_int_equal(max_running, 64); /* the rack's losses filled every slot: the line was used */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_random_flaps, report_seed),
        cmocka_unit_test_teardown(test_settle_time, report_seed),
        cmocka_unit_test_teardown(test_maintenance, report_seed),
        cmocka_unit_test_teardown(test_many_nodes, report_seed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
