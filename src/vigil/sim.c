/*
 * `vigil sim`: a configuration on a modelled network, in virtual time.
 *
 * Reads the monitor section of a configuration file (detector, thresholds,
 * interval), takes a network model from the command line, runs the real
 * monitor core against simulated agents (vsim.c) and prints what an
 * operator wants to know before deploying the settings: the distribution
 * of detection times, the false suspicions and false deaths, what the
 * QoS model (core/qos.c) predicts for the same network, and the
 * information limit k x h of the run's loss for a budget of false alarms.
 * The same seed gives the same output.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fmt.h"
#include "cli_tools.h"
#include "cmds.h"
#include "config.h"
#include "core/qos.h"
#include "vsim.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: vigil sim [-c FILE] [options]\n"
               "  -c, --config FILE      the monitor section to simulate (detector, thresholds,\n"
               "                         heartbeat_interval, pause_tolerance, rise)\n"
               "  -i, --interval DUR     heartbeat interval (resets the detector to its defaults)\n"
               "  -d, --detector KIND    phi, grid or fixed (resets the detector to its defaults)\n"
               "      --nodes N          simulated agents (default 100)\n"
               "      --duration DUR     virtual time simulated (default 1h)\n"
               "      --loss P%%          datagrams lost at random (default 0%%)\n"
               "      --delay DUR        fixed one-way delay (default 0.2ms)\n"
               "      --jitter DUR       mean of an exponential extra delay (default 0)\n"
               "      --spikes P%%:DUR    P%% of datagrams delayed by another DUR\n"
               "      --crashes N        nodes that crash at random times (default 0)\n"
               "      --monitor-pauses LEN@EVERY\n"
               "                         the monitor stops for LEN every EVERY (0.5s@10m)\n"
               "      --budget RATE      false alarms per node allowed, for the information\n"
               "                         limit (default 1/month)\n"
               "      --seed N           seed of the run (default 1); the same seed, the same run\n"
               "      --json             print the result as JSON\n");
}

static int parse_percent(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || (*end && strcmp(end, "%")) || !(v >= 0) || !(v <= 100))
        return -1;
    *out = v / 100;
    return 0;
}

/* "A:B" split at the first sep into two strings of at most 63 bytes. */
static int split2(const char *s, char sep, char *a, char *b)
{
    const char *m = strchr(s, sep);
    if (!m || m == s || !m[1] || (size_t)(m - s) > 63 || strlen(m + 1) > 63)
        return -1;
    memcpy(a, s, (size_t)(m - s));
    a[m - s] = '\0';
    strcpy(b, m + 1);
    return 0;
}

static double sec(vigil_time_t t)
{
    return (double)t / 1e9;
}

/* What the model predicts for the run, and the information limit. */
struct model {
    struct vigil__qos q;
    struct vigil__qos_grid g; /* the grid detector's settled estimates */
    struct vigil__qos_net net;
    double b; /* budget per gap */
    unsigned k;
};

static void predict(const struct vsim_params *p, double budget, struct model *m)
{
    m->net.h = sec(p->interval);
    m->net.jitter = vsim_gap_jitter(p);
    m->net.loss = p->loss;
    double mean, sd;
    vigil__qos_gap_moments(&m->net, &mean, &sd);
    vigil__qos_predict(&p->mon.detector, mean, sd, &m->net, &m->q);
    memset(&m->g, 0, sizeof(m->g));
    if (p->mon.detector.kind == VIGIL_DETECTOR_GRID) {
        /* The grid's step is the agents' interval, as the monitor takes it from their heartbeats.
         */
        struct vigil_detector_config dc = p->mon.detector;
        dc.interval = p->interval;
        vigil__qos_grid_steady(&dc, p->loss, m->net.jitter / M_SQRT2, &m->g);
        vigil__qos_predict_grid(&dc, &m->g, &m->net, &m->q);
    }
    m->b = budget / vigil__qos_gaps_per_s(&m->net);
    m->k = vigil__qos_k(p->loss, m->b);
}

static json_t *jt(vigil_time_t t)
{
    return t < 0 ? json_null() : json_real(sec(t));
}

static json_t *jnum_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static void print_json(const struct vsim_params *p, const struct vsim_result *r,
                       const struct model *m, double budget)
{
    double mean = 0;
    for (uint32_t i = 0; i < r->n_detect; i++)
        mean += sec(r->detect[i]) / r->n_detect;
    json_t *o = json_pack(
        "{s:I, s:f, s:f, s:s, s:I, s:I, s:I, s:I, s:I, "
        "s:{s:o, s:o, s:o, s:o, s:o, s:o, s:I}, "
        "s:I, s:I, s:I, s:I, s:I, s:f, "
        "s:{s:o, s:o, s:o, s:o, s:o}, "
        "s:{s:f, s:f, s:f, s:o, s:I, s:o}}",
        "seed", (json_int_t)p->seed, "duration_s", sec(p->duration), "interval_s", sec(p->interval),
        "detector", vigil_detector_kind_name(p->mon.detector.kind), "nodes", (json_int_t)p->nodes,
        "sent", (json_int_t)r->sent, "delivered", (json_int_t)r->delivered, "crashes",
        (json_int_t)r->crashed, "undetected", (json_int_t)r->undetected, "detection", "min_s",
        jt(vsim_quantile(r, 0)), "median_s", jt(vsim_quantile(r, 0.5)), "p95_s",
        jt(vsim_quantile(r, 0.95)), "p99_s", jt(vsim_quantile(r, 0.99)), "max_s",
        jt(vsim_quantile(r, 1)), "mean_s", r->n_detect ? json_real(mean) : json_null(), "count",
        (json_int_t)r->n_detect, "false_suspicions", (json_int_t)r->false_suspicions,
        "false_deaths", (json_int_t)r->false_deaths, "core_mistakes", (json_int_t)r->core_mistakes,
        "core_false_deaths", (json_int_t)r->core_false_deaths, "pauses", (json_int_t)r->pauses,
        "node_hours", r->node_hours, "predicted", "detection_mean_s", jnum_or_null(m->q.detection),
        "detection_max_s", jnum_or_null(m->q.dead_silence), "false_suspicions",
        jnum_or_null(m->q.suspect_rate * 3600 * r->node_hours), "false_deaths",
        jnum_or_null(m->q.false_death_rate * 3600 * r->node_hours), "jitter_s",
        jnum_or_null(m->net.jitter), "limit", "loss", p->loss, "gaps_per_s",
        vigil__qos_gaps_per_s(&m->net), "budget_per_s", budget, "budget_per_gap",
        jnum_or_null(m->b), "k", (json_int_t)m->k, "k_h_s", jnum_or_null(m->k * m->net.h));
    if (o && p->mon.detector.kind == VIGIL_DETECTOR_GRID)
        json_object_set_new(json_object_get(o, "predicted"), "grid",
                            json_pack("{s:f, s:f, s:I, s:I}", "loss_used", m->g.loss_used,
                                      "margin_s", m->g.margin, "suspect_after_slots",
                                      (json_int_t)m->g.k_suspect, "dead_after_slots",
                                      (json_int_t)m->g.k_dead));
    char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) : NULL;
    if (s)
        puts(s);
    free(s);
    json_decref(o);
}

static void print_text(const struct vsim_params *p, const struct vsim_result *r,
                       const struct model *m, double budget)
{
    char d1[32], r1[64];
    const struct vigil_detector_config *dc = &p->mon.detector;
    vigil_format_seconds(sec(p->duration), d1, sizeof(d1));
    printf("vigil sim: %u nodes for %s, a heartbeat every %s, seed %llu\n", p->nodes, d1,
           vigil_dur_s(sec(p->interval)).s, (unsigned long long)p->seed);
    if (dc->kind == VIGIL_DETECTOR_FIXED)
        printf("detector: fixed, suspect after %s, dead after %s\n",
               vigil_dur_s(dc->suspect_threshold).s, vigil_dur_s(dc->dead_threshold).s);
    else if (dc->kind == VIGIL_DETECTOR_GRID)
        printf("detector: grid, suspect at %.2f, dead at %.2f, margin %s + 4 deviations, loss "
               "floor %.2f%%, loss window %u; settled at this loss it assumes %.2f%%: suspect "
               "after %u missed heartbeats, dead after %u\n",
               dc->suspect_threshold, dc->dead_threshold, vigil_dur_s(sec(dc->margin)).s,
               dc->loss_floor * 100, dc->loss_window, m->g.loss_used * 100, m->g.k_suspect,
               m->g.k_dead);
    else
        printf("detector: phi, suspect at %.2f, dead at %.2f, acceptable pause %s, minimum "
               "deviation %s\n",
               dc->suspect_threshold, dc->dead_threshold, vigil_dur_s(sec(dc->acceptable_pause)).s,
               vigil_dur_s(sec(dc->min_std_dev)).s);
    printf("network: loss %.2f%%, delay %s + exponential jitter %s, spikes %.2f%% x %s",
           p->loss * 100, vigil_dur_s(sec(p->delay)).s, vigil_dur_s(sec(p->jitter)).s,
           p->spike_p * 100, vigil_dur_s(sec(p->spike)).s);
    if (p->pause_every > 0 && p->pause > 0)
        printf(", monitor pauses %s every %s", vigil_dur_s(sec(p->pause)).s,
               vigil_dur_s(sec(p->pause_every)).s);
    printf("\nheartbeats: %llu sent, %llu delivered\n", (unsigned long long)r->sent,
           (unsigned long long)r->delivered);
    printf("crashes: %u, detected %u, undetected by the end %u\n", r->crashed, r->n_detect,
           r->undetected);
    if (r->n_detect) {
        double mean = 0;
        for (uint32_t i = 0; i < r->n_detect; i++)
            mean += sec(r->detect[i]) / r->n_detect;
        printf("detection time: min %s, median %s, p95 %s, p99 %s, max %s, mean "
               "%s\n",
               vigil_dur_s(sec(vsim_quantile(r, 0))).s, vigil_dur_s(sec(vsim_quantile(r, 0.5))).s,
               vigil_dur_s(sec(vsim_quantile(r, 0.95))).s,
               vigil_dur_s(sec(vsim_quantile(r, 0.99))).s, vigil_dur_s(sec(vsim_quantile(r, 1))).s,
               vigil_dur_s(mean).s);
    }
    printf("  predicted: mean %s, at most %s (plus the network's delay)\n",
           vigil_dur_s(m->q.detection).s, vigil_dur_s(m->q.dead_silence).s);
    printf("false suspicions: %llu (predicted %.3g); false deaths: %llu (predicted %.3g), over "
           "%.1f node-hours\n",
           (unsigned long long)r->false_suspicions, m->q.suspect_rate * 3600 * r->node_hours,
           (unsigned long long)r->false_deaths, m->q.false_death_rate * 3600 * r->node_hours,
           r->node_hours);
    printf("  ended by a heartbeat of the same generation (the monitor's own count): %llu "
           "suspicions, %llu deaths\n",
           (unsigned long long)r->core_mistakes, (unsigned long long)r->core_false_deaths);
    if (p->pause_every > 0 && p->pause > 0)
        printf("monitor pauses reported: %llu\n", (unsigned long long)r->pauses);
    cli_format_rate(budget * 3600, r1, sizeof(r1));
    printf("information limit: loss %.2f%%, G = %.3g gaps per node per second, budget %s per "
           "node = %.3g per gap, so k = %u and k x h = %s: no detector declares a crash "
           "sooner than that after the last heartbeat without exceeding the budget\n",
           p->loss * 100, vigil__qos_gaps_per_s(&m->net), r1, m->b, m->k,
           vigil_dur_s(m->k * m->net.h).s);
}

int cmd_sim(int argc, char **argv)
{
    enum {
        OPT_NODES = 256,
        OPT_DURATION,
        OPT_LOSS,
        OPT_DELAY,
        OPT_JITTER,
        OPT_SPIKES,
        OPT_CRASHES,
        OPT_PAUSES,
        OPT_BUDGET,
        OPT_SEED,
        OPT_JSON
    };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"interval", required_argument, NULL, 'i'},
        {"detector", required_argument, NULL, 'd'},
        {"nodes", required_argument, NULL, OPT_NODES},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"loss", required_argument, NULL, OPT_LOSS},
        {"delay", required_argument, NULL, OPT_DELAY},
        {"jitter", required_argument, NULL, OPT_JITTER},
        {"spikes", required_argument, NULL, OPT_SPIKES},
        {"crashes", required_argument, NULL, OPT_CRASHES},
        {"monitor-pauses", required_argument, NULL, OPT_PAUSES},
        {"budget", required_argument, NULL, OPT_BUDGET},
        {"seed", required_argument, NULL, OPT_SEED},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct vcfg c;
    struct vsim_params p;
    char err[512], a[64], b[64];
    double budget = 1.0 / (30 * 86400);
    bool as_json = false;
    uint64_t num;
    int o, rc = 2;
    vcfg_init(&c);
    c.role = "client"; /* reads settings only: no key file is read */
    vsim_params_default(&p);
    /* The file first, so that flags override it wherever they stand. */
    optind = 0;
    while ((o = getopt_long(argc, argv, "c:i:d:h", opts, NULL)) != -1) {
        if (o == 'h') {
            usage(stdout);
            vcfg_free(&c);
            return 0;
        }
        if (o == '?')
            goto usage;
        if (o == 'c' && vcfg_load(&c, optarg, err, sizeof(err))) {
            fprintf(stderr, "vigil sim: %s\n", err);
            goto out;
        }
    }
    optind = 0;
    while ((o = getopt_long(argc, argv, "c:i:d:h", opts, NULL)) != -1) {
        vigil_time_t t;
        switch (o) {
        case 'i':
            if (vcfg_parse_duration(optarg, &t))
                goto bad;
            c.monitor.interval = t;
            vigil_detector_config_default(&c.monitor.core.detector, c.monitor.core.detector.kind,
                                          t);
            break;
        case 'd':
            if (vigil_detector_kind_parse(optarg) < 0)
                goto bad;
            vigil_detector_config_default(
                &c.monitor.core.detector,
                (enum vigil_detector_kind)vigil_detector_kind_parse(optarg), c.monitor.interval);
            break;
        case OPT_NODES:
            if (vcfg_parse_u64(optarg, VSIM_NODES_MAX, &num) || num < 1)
                goto bad;
            p.nodes = (uint32_t)num;
            break;
        case OPT_DURATION:
            if (vcfg_parse_duration(optarg, &p.duration) || p.duration <= 0)
                goto bad;
            break;
        case OPT_LOSS:
            if (parse_percent(optarg, &p.loss) || p.loss >= 1)
                goto bad;
            break;
        case OPT_DELAY:
            if (vcfg_parse_duration(optarg, &p.delay))
                goto bad;
            break;
        case OPT_JITTER:
            if (vcfg_parse_duration(optarg, &p.jitter))
                goto bad;
            break;
        case OPT_SPIKES:
            if (split2(optarg, ':', a, b) || parse_percent(a, &p.spike_p) ||
                vcfg_parse_duration(b, &p.spike))
                goto bad;
            break;
        case OPT_CRASHES:
            if (vcfg_parse_u64(optarg, VSIM_NODES_MAX, &num))
                goto bad;
            p.crashes = (uint32_t)num;
            break;
        case OPT_PAUSES:
            if (split2(optarg, '@', a, b) || vcfg_parse_duration(a, &p.pause) ||
                vcfg_parse_duration(b, &p.pause_every) || p.pause >= p.pause_every)
                goto bad;
            break;
        case OPT_BUDGET:
            if (vcfg_parse_rate(optarg, &budget) || !(budget > 0))
                goto bad;
            break;
        case OPT_SEED:
            if (vcfg_parse_u64(optarg, UINT64_MAX, &p.seed))
                goto bad;
            break;
        case OPT_JSON:
            as_json = true;
            break;
        default:
            break;
        }
    }
    if (optind < argc)
        goto usage;
    if (p.crashes > p.nodes) {
        fprintf(stderr, "vigil sim: --crashes must not exceed --nodes\n");
        goto out;
    }
    if (vcfg_check(&c, "monitor", err, sizeof(err))) {
        fprintf(stderr, "vigil sim: %s\n", err);
        goto out;
    }
    p.mon = c.monitor.core;
    p.mon.interval = c.monitor.interval;
    p.interval = c.monitor.interval;
    p.mon.auto_register = true;

    struct vsim_result r;
    if (vsim_run(&p, &r, err, sizeof(err))) {
        fprintf(stderr, "vigil sim: %s\n", err);
        rc = 1;
        goto out;
    }
    struct model m;
    predict(&p, budget, &m);
    if (as_json)
        print_json(&p, &r, &m, budget);
    else
        print_text(&p, &r, &m, budget);
    vsim_result_free(&r);
    rc = fflush(stdout) != 0;
    goto out;
bad:
    fprintf(stderr, "vigil sim: bad value for --%s: '%s'\n",
            o == 'i'   ? "interval"
            : o == 'd' ? "detector"
                       : opts[o - OPT_NODES + 3].name,
            vigil_quote(optarg).s);
    goto out;
usage:
    usage(stderr);
out:
    vcfg_free(&c);
    return rc;
}
