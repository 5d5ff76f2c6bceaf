/*
 * `vigil tune`: detector settings from goals instead of knobs.
 *
 * Given a detection goal (a crashed node declared dead within D of its last
 * heartbeat) and a budget of false alarms (false dead verdicts per node per
 * unit of time), and the heartbeat stream of each node as a running
 * monitor measured it (jitter and loss; or as given on the command line),
 * it picks the longest heartbeat interval that can meet both goals and the
 * detector settings that put the dead verdict at D (for the grid: the
 * thresholds the budget asks for, dead at log10(G / e) and suspect half a
 * decade lower, and the interval whose k slots fit D), and prints them with
 * the reasoning: the budget per gap, the information limit k, the
 * predicted detection time and mistake rates. The model and its arithmetic
 * are core/qos.c's; docs/tuning.md explains both.
 *
 * With -c FILE it also checks the file: refusals (vcfg_check) and warnings
 * (vcfg_warnings) are printed without any monitor running, and the file's
 * monitor.goals stand in for the flags.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fmt.h"
#include "api.h"
#include "cli_tools.h"
#include "cmds.h"
#include "config.h"
#include "core/qos.h"

/*
 * The intervals tune chooses from: round values from the shortest the
 * configuration accepts (10 ms) to a minute. Longer intervals cost less
 * traffic, so the longest that meets the goals wins.
 */
static const double intervals[] = {0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5,
                                   1,    2,    5,     10,   15,  30,  60};

/*
 * Suspicion only holds actions back, so it may be wrong a hundred times
 * as often as a dead verdict.
 */
#define SUSPECT_BUDGET_FACTOR 100.0

/* The dead threshold tune keeps for phi (the reference default): it moves the pause instead. */
#define PHI_DEAD 8.0
/* ... and the suspect threshold (the monitor's default). */
#define PHI_SUSPECT 3.0

struct plan {
    bool ok;      /* the goals can be met */
    double h;     /* heartbeat interval */
    double b;     /* budget per gap */
    double gps;   /* gaps per second */
    unsigned k;   /* information limit, in intervals */
    double c_min; /* the shortest dead silence the budget allows */
    double c;     /* the dead silence chosen (the goal) */
    double c_s;   /* the suspect silence chosen */
    /* phi settings that put the verdicts there */
    double phi_suspect, phi_dead, pause, min_sd;
    /* grid: thresholds from the budget, and the estimates they meet */
    double grid_suspect, grid_dead;
    struct vigil__qos_grid g;
    struct vigil__qos q;
};

/* The stream at interval h: jitter and loss do not depend on the interval. */
static struct vigil__qos_net at_h(double h, double jitter, double loss)
{
    struct vigil__qos_net n = {.h = h, .jitter = jitter, .loss = loss};
    return n;
}

/* Half a decade below the dead threshold: suspicion is an alarm too (docs/detection.md). */
#define GRID_SUSPECT_BELOW 0.5
/* Lowest grid dead threshold tune gives: a budget above one false verdict in ten gaps is none. */
#define GRID_DEAD_MIN 1.0

/*
 * The grid at interval h: dead at Phi = log10(G / e) = -log10(budget per
 * gap), suspect half a decade lower, with the estimates the detector
 * settles at on the stream (the measured loss raised by its standard
 * error, at least the floor; the jitter).
 */
static void grid_at(double h, double jitter, double loss, double rate, struct plan *p)
{
    struct vigil__qos_net n = at_h(h, jitter, loss);
    struct vigil_detector_config dc;
    vigil_detector_config_default(&dc, VIGIL_DETECTOR_GRID, (vigil_time_t)llround(h * 1e9));
    double phi = -log10(rate / vigil__qos_gaps_per_s(&n));
    /* Rounded up to hundredths, for the file: never looser than the budget. */
    p->grid_dead = ceil(fmax(phi, GRID_DEAD_MIN) * 100 - 1e-9) / 100;
    p->grid_suspect = p->grid_dead - GRID_SUSPECT_BELOW;
    dc.dead_threshold = p->grid_dead;
    dc.suspect_threshold = p->grid_suspect;
    vigil__qos_grid_steady(&dc, loss, jitter / M_SQRT2, &p->g);
    vigil__qos_predict_grid(&dc, &p->g, &n, &p->q);
    p->h = h;
    p->c_min = p->q.dead_silence;
    p->c = p->q.dead_silence;
    p->c_s = p->q.suspect_silence;
}

/*
 * The grid: the longest interval whose dead verdict, k slots plus the
 * margin after the last heartbeat's, fits the goal.
 */
static void plan_grid(double jitter, double loss, double goal, double rate, struct plan *p)
{
    for (size_t i = sizeof(intervals) / sizeof(intervals[0]); i-- > 0;) {
        grid_at(intervals[i], jitter, loss, rate, p);
        if (p->q.dead_silence <= goal) {
            p->ok = true;
            break;
        }
    }
    if (!p->ok)
        grid_at(intervals[0], jitter, loss, rate, p);
    struct vigil__qos_net n = at_h(p->h, jitter, loss);
    p->gps = vigil__qos_gaps_per_s(&n);
    p->b = rate / p->gps;
    p->k = vigil__qos_k(loss, p->b);
}

static void plan_for(double jitter, double loss, double goal, double rate,
                     enum vigil_detector_kind kind, struct plan *p)
{
    memset(p, 0, sizeof(*p));
    if (kind == VIGIL_DETECTOR_GRID) {
        plan_grid(jitter, loss, goal, rate, p);
        return;
    }
    /* The longest interval whose fastest safe verdict fits the goal (and two intervals). */
    for (size_t i = sizeof(intervals) / sizeof(intervals[0]); i-- > 0;) {
        double h = intervals[i];
        struct vigil__qos_net n = at_h(h, jitter, loss);
        double c_min = vigil__qos_min_silence(&n, rate);
        if (c_min <= goal && 2 * h <= goal) {
            p->ok = true;
            p->h = h;
            p->c_min = c_min;
            break;
        }
    }
    if (!p->ok) {
        /* Report the best there is: the shortest interval. */
        p->h = intervals[0];
        struct vigil__qos_net n = at_h(p->h, jitter, loss);
        p->c_min = vigil__qos_min_silence(&n, rate);
    }
    struct vigil__qos_net n = at_h(p->h, jitter, loss);
    p->gps = vigil__qos_gaps_per_s(&n);
    p->b = rate / p->gps;
    p->k = vigil__qos_k(loss, p->b);
    p->c = p->ok ? goal : fmax(p->c_min, 2 * p->h);
    /* Suspect early, inside (1.25 h, 0.9 c): the config wants it above one interval. */
    p->c_s = vigil__qos_min_silence(&n, rate * SUSPECT_BUDGET_FACTOR);
    p->c_s = fmin(fmax(p->c_s, 1.25 * p->h), 0.9 * p->c);

    struct vigil_detector_config dc;
    vigil_detector_config_default(&dc, kind, (vigil_time_t)llround(p->h * 1e9));
    double mean, sd;
    vigil__qos_gap_moments(&n, &mean, &sd);
    if (kind == VIGIL_DETECTOR_FIXED) {
        dc.suspect_threshold = p->c_s;
        dc.dead_threshold = p->c;
    } else {
        /* Keep the dead threshold and move the pause; below a zero pause, move the threshold. */
        p->min_sd = (double)dc.min_std_dev / 1e9;
        double sd2 = fmax(sd, p->min_sd);
        p->phi_dead = PHI_DEAD;
        p->pause = p->c - mean - vigil_phi_quantile(PHI_DEAD) * sd2;
        if (p->pause < 0) {
            p->pause = 0;
            p->phi_dead = vigil_phi((vigil_time_t)llround(p->c * 1e9), mean * 1e9, sd2 * 1e9);
        }
        p->pause = floor(p->pause * 1000) / 1000; /* whole milliseconds, for the file */
        p->phi_dead = floor(p->phi_dead * 100) / 100;
        /*
         * Phi's pause delays both verdicts alike, so the suspicion keeps the
         * default odds (phi 3, 1 in 1000) and comes earlier by the deviation
         * alone; half the dead threshold when that is lower.
         */
        p->phi_suspect = floor(fmin(PHI_SUSPECT, p->phi_dead / 2) * 100) / 100;
        if (p->phi_suspect < 0.01)
            p->phi_suspect = 0.01;
        dc.suspect_threshold = p->phi_suspect;
        dc.dead_threshold = p->phi_dead;
        dc.acceptable_pause = (vigil_time_t)llround(p->pause * 1e9);
    }
    vigil__qos_predict(&dc, mean, sd, &n, &p->q);
}

static void fmt_ms(double s, char *buf, size_t cap)
{
    double ms = s * 1000;
    if (ms >= 1000 && fmod(ms, 1000) < 1e-6)
        snprintf(buf, cap, "%s", vigil_dur_s(ms / 1000).s);
    else
        snprintf(buf, cap, "%.0fms", ceil(ms - 1e-9));
}

static void print_plan(const char *who, double jitter, double loss, double goal, double rate,
                       enum vigil_detector_kind kind, const struct plan *p)
{
    char r1[64], r2[64], r3[64];
    printf("%s: jitter %s, loss %.2f%%\n", who, vigil_dur_s(jitter).s, loss * 100);
    printf("  budget      %.3g false deaths per node per day = %.3g per gap (at %.3g gaps per "
           "second: one heartbeat every %s, %.2f%% lost)\n",
           rate * 86400, p->b, p->gps, vigil_dur_s(p->h).s, loss * 100);
    if (p->k <= 1)
        printf("  limit       k = 1: without enough loss to matter, the limit is the heartbeat "
               "itself: no verdict before k x h = %s of silence\n",
               vigil_dur_s(p->h).s);
    else
        printf("  limit       k = %u: %u heartbeats lost in a row happen more often than the "
               "budget per gap allows, so no detector can be both that safe and faster than "
               "k x h = %s\n",
               p->k, p->k - 1, vigil_dur_s(p->k * p->h).s);
    if (kind == VIGIL_DETECTOR_GRID && p->ok)
        printf("  choice      a heartbeat every %s: dead at %.2f = log10(G / e) for the "
               "budget per gap, i.e. after %u missed heartbeats at the %.2f%% loss the detector "
               "will assume, plus a margin of %s: %s after the last heartbeat's slot, "
               "within the goal of %s\n",
               vigil_dur_s(p->h).s, p->grid_dead, p->g.k_dead, p->g.loss_used * 100,
               vigil_dur_s(p->g.margin).s, vigil_dur_s(p->c).s, vigil_dur_s(goal).s);
    else if (kind == VIGIL_DETECTOR_GRID)
        printf("  choice      cannot meet both goals: even a heartbeat every %s takes %u "
               "missed heartbeats at the %.2f%% loss the detector will assume, %s, more than "
               "the goal of %s (relax one of them)\n",
               vigil_dur_s(p->h).s, p->g.k_dead, p->g.loss_used * 100, vigil_dur_s(p->c).s,
               vigil_dur_s(goal).s);
    else if (p->ok)
        printf("  choice      a heartbeat every %s: its fastest safe verdict is %s of "
               "silence (%.1f intervals), within the goal of %s; dead at the goal itself\n",
               vigil_dur_s(p->h).s, vigil_dur_s(p->c_min).s, p->c_min / p->h, vigil_dur_s(goal).s);
    else
        printf("  choice      cannot meet both goals: even a heartbeat every %s needs %s "
               "of silence for the budget, more than the goal of %s (relax one of them)\n",
               vigil_dur_s(p->h).s, vigil_dur_s(p->c_min).s, vigil_dur_s(goal).s);
    if (kind == VIGIL_DETECTOR_FIXED)
        printf("  settings    heartbeat_interval %s, fixed: suspect_after %s, dead_after "
               "%s\n",
               vigil_dur_s(p->h).s, vigil_dur_s(p->c_s).s, vigil_dur_s(p->c).s);
    else if (kind == VIGIL_DETECTOR_GRID)
        printf("  settings    heartbeat_interval %s, grid: suspect_threshold %.2f (after %u "
               "missed heartbeats, %s), dead_threshold %.2f (after %u, %s)\n",
               vigil_dur_s(p->h).s, p->grid_suspect, p->g.k_suspect,
               vigil_dur_s(p->q.suspect_silence).s, p->grid_dead, p->g.k_dead,
               vigil_dur_s(p->q.dead_silence).s);
    else
        printf("  settings    heartbeat_interval %s, phi: suspect_threshold %.2f (after %s "
               "of silence), dead_threshold %.2f (after %s), acceptable_pause %s, "
               "min_std_dev %s\n",
               vigil_dur_s(p->h).s, p->phi_suspect, vigil_dur_s(p->q.suspect_silence).s,
               p->phi_dead, vigil_dur_s(p->q.dead_silence).s, vigil_dur_s(p->pause).s,
               vigil_dur_s(p->min_sd).s);
    cli_format_rate(p->q.false_death_rate * 3600, r1, sizeof(r1));
    cli_format_rate(rate * 3600, r2, sizeof(r2));
    cli_format_rate(p->q.suspect_rate * 3600, r3, sizeof(r3));
    printf("  predicted   detection %s on average, at most %s; false deaths %s (budget "
           "%s); false suspicions %s, lasting %s; accuracy %.9g\n",
           vigil_dur_s(p->q.detection).s, vigil_dur_s(p->q.dead_silence).s, r1, r2, r3,
           vigil_dur_s(p->q.mistake_duration).s, p->q.accuracy);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vigil tune [--api ADDR] [-c FILE] [--detection DUR] [--false-alarms RATE]\n"
            "                  [--node ID] [--detector phi|grid|fixed] [--jitter DUR --loss P%%]\n"
            "  --detection DUR      a crashed node is to be declared dead within DUR of its\n"
            "                       last heartbeat (default: monitor.goals.detection of -c)\n"
            "  --false-alarms RATE  false dead verdicts per node, at most: 1/month, 0.5/day\n"
            "                       (default: monitor.goals.false_alarms of -c)\n"
            "  --api ADDR           the running monitor whose measurements to use\n"
            "                       (default: monitor.api of -c, else %s)\n"
            "  -c FILE              check this configuration (refusals and warnings; no monitor\n"
            "                       needed) and take its goals and detector type\n"
            "  --node ID            tune for this node only\n"
            "  --detector KIND      phi, grid or fixed (default: the type of -c, else phi)\n"
            "  --jitter DUR, --loss P%%\n"
            "                       describe the stream instead of asking a monitor\n",
            API_DEFAULT_ADDR);
}

static void print_warning(void *arg, const char *msg)
{
    (void)arg;
    printf("warning: %s\n", msg);
}

/* "5%", "5", "0.5%": a percentage, as a fraction in [0, 1). */
static int parse_percent(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || (*end && strcmp(end, "%")) || !(v >= 0) || !(v < 100))
        return -1;
    *out = v / 100;
    return 0;
}

int cmd_tune(int argc, char **argv)
{
    enum { OPT_DET = 256, OPT_FA, OPT_NODE, OPT_DETECTOR, OPT_JITTER, OPT_LOSS };
    static const struct option opts[] = {
        {"api", required_argument, NULL, 'a'},
        {"config", required_argument, NULL, 'c'},
        {"detection", required_argument, NULL, OPT_DET},
        {"false-alarms", required_argument, NULL, OPT_FA},
        {"node", required_argument, NULL, OPT_NODE},
        {"detector", required_argument, NULL, OPT_DETECTOR},
        {"jitter", required_argument, NULL, OPT_JITTER},
        {"loss", required_argument, NULL, OPT_LOSS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *api = NULL, *cfg_path = NULL, *node = NULL;
    vigil_time_t goal = 0, jit = -1;
    double rate = 0, loss = -1;
    int kind = -1;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "a:c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'a':
            api = optarg;
            break;
        case 'c':
            cfg_path = optarg;
            break;
        case OPT_DET:
            if (vcfg_parse_duration(optarg, &goal) || goal <= 0) {
                fprintf(stderr, "vigil tune: --detection wants a duration such as 800ms\n");
                return 2;
            }
            break;
        case OPT_FA:
            if (vcfg_parse_rate(optarg, &rate) || !(rate > 0)) {
                fprintf(stderr, "vigil tune: --false-alarms wants a rate such as 1/month\n");
                return 2;
            }
            break;
        case OPT_NODE:
            node = optarg;
            break;
        case OPT_DETECTOR:
            kind = vigil_detector_kind_parse(optarg);
            if (kind < 0) {
                fprintf(stderr, "vigil tune: --detector must be phi, grid or fixed\n");
                return 2;
            }
            break;
        case OPT_JITTER:
            if (vcfg_parse_duration(optarg, &jit)) {
                fprintf(stderr, "vigil tune: --jitter wants a duration such as 5ms\n");
                return 2;
            }
            break;
        case OPT_LOSS:
            if (parse_percent(optarg, &loss)) {
                fprintf(stderr, "vigil tune: --loss wants a percentage such as 5%%\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }

    struct vcfg c;
    vcfg_init(&c);
    c.role = "client"; /* reads settings only: no key file is read */
    int rc = 0;
    if (cfg_path) {
        char err[512];
        if (vcfg_load(&c, cfg_path, err, sizeof(err)) ||
            vcfg_check(&c, "monitor", err, sizeof(err))) {
            /* A bad file is a usage error here as in every command that reads one. */
            fprintf(stderr, "vigil tune: refused: %s\n", err);
            vcfg_free(&c);
            return 2;
        }
        int nw = vcfg_warnings(&c, print_warning, NULL);
        printf("%s: the monitor would start%s\n", cfg_path,
               nw ? " (with the warnings above)" : "; no warnings");
        if (!goal)
            goal = c.monitor.goal_detection;
        if (!(rate > 0))
            rate = c.monitor.goal_false_alarms;
        if (kind < 0)
            kind = (int)c.monitor.core.detector.kind;
    }
    if (kind < 0)
        kind = VIGIL_DETECTOR_PHI;
    if (!goal || !(rate > 0)) {
        if (!cfg_path) {
            fprintf(stderr, "vigil tune: give --detection and --false-alarms (or monitor.goals "
                            "in the file of -c)\n");
            rc = 2;
        }
        vcfg_free(&c);
        return rc;
    }
    double D = (double)goal / 1e9;
    char r1[64];
    cli_format_rate(rate * 3600, r1, sizeof(r1));
    printf("goals: a crashed node declared dead within %s of its last heartbeat; false dead "
           "verdicts at most %s per node\n\n",
           vigil_dur_s(D).s, r1);

    /* The streams: given, or measured by a running monitor, or nominal. */
    double worst_j = 0, worst_p = 0;
    size_t count = 0;
    struct plan p;
    if (jit >= 0 || loss >= 0) {
        worst_j = jit >= 0 ? (double)jit / 1e9 : 0;
        worst_p = loss >= 0 ? loss : 0;
        count = 1;
    } else {
        char path[128];
        if (node)
            snprintf(path, sizeof(path), "/v1/nodes/%s", node);
        json_t *doc = cli_fetch_json("tune", api, cfg_path, node ? path : NULL, NULL);
        if (!doc) {
            double h = (double)c.monitor.interval / 1e9;
            worst_j = h / 10;
            printf("no measurements (see above): tuning for a nominal stream, jitter %s "
                   "(a tenth of the interval), no loss; give --jitter and --loss to describe "
                   "yours\n\n",
                   vigil_dur_s(worst_j).s);
            count = 1;
        } else {
            json_t *one = json_array();
            json_t *nodes = node ? one : json_object_get(doc, "nodes");
            if (node)
                json_array_append(one, doc);
            size_t i;
            json_t *n;
            json_array_foreach(nodes, i, n)
            {
                const json_t *m = json_object_get(json_object_get(n, "qos"), "model");
                if (cli_jnum(n, "heartbeats", 0) < 2)
                    continue;
                double j = cli_jnum(m, "jitter_s", 0), l = cli_jnum(m, "loss", 0);
                plan_for(j, l, D, rate, (enum vigil_detector_kind)kind, &p);
                print_plan(json_string_value(json_object_get(n, "id")), j, l, D, rate,
                           (enum vigil_detector_kind)kind, &p);
                printf("\n");
                worst_j = fmax(worst_j, j);
                worst_p = fmax(worst_p, l);
                count++;
            }
            json_decref(one);
            json_decref(doc);
            if (count == 0) {
                printf("no node has sent two heartbeats yet: nothing measured to tune for\n");
                vcfg_free(&c);
                return 1;
            }
        }
    }
    plan_for(worst_j, worst_p, D, rate, (enum vigil_detector_kind)kind, &p);
    print_plan(count > 1 ? "all nodes (the worst jitter and the worst loss)" : "the stream",
               worst_j, worst_p, D, rate, (enum vigil_detector_kind)kind, &p);

    char hb[32], s1[32], s2[32], g1[32];
    fmt_ms(p.h, hb, sizeof(hb));
    fmt_ms(D, g1, sizeof(g1));
    printf("\nrecommended settings%s:\n\nmonitor = {\n  heartbeat_interval = \"%s\";\n",
           p.ok ? "" : " (the closest there is: the goals cannot both be met)", hb);
    if (kind == VIGIL_DETECTOR_GRID) {
        printf("  detector = { type = \"grid\"; suspect_threshold = %.2f; dead_threshold = %.2f; "
               "};\n",
               p.grid_suspect, p.grid_dead);
    } else if (kind == VIGIL_DETECTOR_FIXED) {
        fmt_ms(p.c_s, s1, sizeof(s1));
        fmt_ms(p.c, s2, sizeof(s2));
        printf("  detector = { type = \"fixed\"; suspect_after = \"%s\"; dead_after = \"%s\"; "
               "};\n",
               s1, s2);
    } else {
        fmt_ms(p.pause, s1, sizeof(s1));
        printf("  detector = { type = \"phi\"; suspect_threshold = %.2f; dead_threshold = %.2f; "
               "acceptable_pause = \"%s\"; };\n",
               p.phi_suspect, p.phi_dead, s1);
    }
    printf("  goals = { detection = \"%s\"; false_alarms = \"%.3g/day\"; };\n};\nagent = { "
           "interval = \"%s\"; };\n",
           g1, rate * 86400, hb);
    vcfg_free(&c);
    return p.ok ? 0 : 3;
}
