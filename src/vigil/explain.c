/*
 * `vigil explain NODE`: why a node is in its state, in plain words, from
 * the monitor's API: the heartbeats it saw, the detector's level over time
 * (the node's recent events, then now), the thresholds, and what would
 * change the verdict. Everything it says comes from the node's JSON
 * (/v1/nodes/ID) and the detector's kind (/v1/health), so it says what a
 * script reading the API would conclude.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "fmt.h"
#include "api.h"
#include "cli_tools.h"
#include "cmds.h"

static const char *js(const json_t *o, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : def;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vigil explain [--api ADDR] [-c FILE] NODE\n"
            "  --api ADDR    the monitor's API (default: monitor.api of -c, else %s)\n"
            "  -c FILE       read the API address from this configuration file\n"
            "  NODE          the node to explain\n",
            API_DEFAULT_ADDR);
}

/* "the level" in the detector's own unit. */
static void level_words(bool phi, bool grid, double level, char *buf, size_t cap)
{
    if (grid)
        snprintf(buf, cap, "level %.2f", level);
    else if (phi)
        snprintf(buf, cap, "phi %.2f", level);
    else
        snprintf(buf, cap, "%s of silence", vigil_dur_s(level).s);
}

static void print_history(const json_t *n, bool phi, bool grid)
{
    const json_t *events = json_object_get(n, "events");
    size_t i;
    json_t *e;
    char lv[48];
    printf("\nThe detector's level over time (recent events, then now):\n");
    json_array_foreach((json_t *)events, i, e)
    {
        const json_t *ev = json_object_get(e, "evidence");
        double since = cli_jnum(ev, "since_last_s", -1), thr = cli_jnum(ev, "threshold", 0);
        level_words(phi, grid, cli_jnum(ev, "level", 0), lv, sizeof(lv));
        printf("  %s  %s -> %s (%s): %s", js(e, "time", "?"), js(e, "old_state", "?"),
               js(e, "new_state", "?"), js(e, "reason", ""), lv);
        if (thr > 0)
            printf(", reached the threshold %.2f", thr);
        if (grid && cli_jnum(ev, "missed", 0) > 0)
            printf(", %.0f heartbeats missed in a row", cli_jnum(ev, "missed", 0));
        if (since >= 0)
            printf(", %s after the last heartbeat", vigil_dur_s(since).s);
        printf("\n");
    }
    level_words(phi, grid, cli_jnum(n, "level", 0), lv, sizeof(lv));
    printf("  now  %s: %s (suspect at %.2f, dead at %.2f)\n", js(n, "state", "?"), lv,
           cli_jnum(n, "suspect_threshold", 0), cli_jnum(n, "dead_threshold", 0));
}

/*
 * "slots due at +0.063s, +0.163s, ... +0.563s from now": the deadlines of
 * the next count slots after the first not yet missed, from the expected
 * arrival of the last heartbeat's slot (ago seconds ago).
 */
static void slot_words(double ago, double h, double margin, double missed, double count, char *buf,
                       size_t cap)
{
    size_t len = 0;
    for (double i = 1; i <= count && len < cap; i++) {
        if (count > 4 && i == 3) {
            /* The first two, then the last: the rest follow one interval apart. */
            len += (size_t)snprintf(buf + len, cap - len, ", ...");
            i = count;
        }
        double at = (missed + i) * h + margin - ago;
        len += (size_t)snprintf(buf + len, cap - len, "%s%s%s", i > 1 ? ", " : "",
                                at >= 0 ? "+" : "", vigil_dur((vigil_time_t)llround(at * 1e9)).s);
    }
}

/* The grid's words: counts of heartbeats, each slot's deadline, the loss assumed. */
static void explain_grid_detector(const json_t *n, const json_t *g)
{
    double loss = cli_jnum(g, "loss_used", 0);
    printf("Detector: grid; each heartbeat is due on the sender's grid, and the level is "
           "-log10 of the chance that every heartbeat missed since the last one was lost: %.2f "
           "a missed heartbeat at the loss rate it assumes, %.2f%% (its estimate from the "
           "sequence numbers, raised by one standard error, at least the floor). A heartbeat "
           "is missed once its slot's expected arrival plus a margin of %s has passed. "
           "Suspect at %.2f, after %.0f missed heartbeats in a row; dead at %.2f, after %.0f.\n",
           loss > 0 && loss < 1 ? -log10(loss) : 0, loss * 100,
           vigil_dur_s(cli_jnum(g, "margin_s", 0)).s, cli_jnum(n, "suspect_threshold", 0),
           cli_jnum(g, "suspect_after_slots", 0), cli_jnum(n, "dead_threshold", 0),
           cli_jnum(g, "dead_after_slots", 0));
}

static void explain_grid_why(const json_t *n, const json_t *g, const char *state, double ago)
{
    double h = cli_jnum(n, "interval_s", 0), mg = cli_jnum(g, "margin_s", 0);
    double eago = cli_jnum(g, "expected_ago_s", ago), missed = cli_jnum(n, "missed", 0);
    double ks = cli_jnum(g, "suspect_after_slots", 0), kd = cli_jnum(g, "dead_after_slots", 0);
    char s1[160], s2[160];
    if (!strcmp(state, "alive")) {
        printf("  It is alive: the last heartbeat came %s ago; %.0f heartbeats missed since "
               "(suspect after %.0f).\n",
               vigil_dur_s(ago).s, missed, ks);
        slot_words(eago, h, mg, missed, ks - missed, s1, sizeof(s1));
        slot_words(eago, h, mg, missed, kd - missed, s2, sizeof(s2));
        printf("  It would become suspect if the next %.0f heartbeats (deadlines %s from now) "
               "all fail to arrive, and be declared dead if the next %.0f heartbeats "
               "(deadlines %s) all fail to arrive.\n",
               ks - missed, s1, kd - missed, s2);
    } else if (!strcmp(state, "suspect")) {
        printf("  It is suspect: %.0f heartbeats missed in a row (the last one came %s ago), "
               "at least the %.0f that make a node suspect.\n",
               missed, vigil_dur_s(ago).s, ks);
        slot_words(eago, h, mg, missed, kd - missed, s2, sizeof(s2));
        printf("  It comes back to alive with the next heartbeat; it would be declared dead if "
               "the next %.0f heartbeats (deadlines %s from now) all fail to arrive.\n",
               kd - missed, s2);
    }
}

static void explain(const json_t *n, const json_t *health)
{
    const char *id = js(n, "id", "?"), *state = js(n, "state", "?");
    const json_t *qos = json_object_get(n, "qos");
    const json_t *obs = json_object_get(qos, "observed");
    const json_t *pred = json_object_get(qos, "predicted");
    const char *kind = js(json_object_get(health, "detector"), "type", "phi");
    bool grid = !strcmp(kind, "grid");
    const json_t *gq = json_object_get(qos, "grid");
    bool phi = strcmp(kind, "fixed") != 0 && !grid;
    double ago = cli_jnum(n, "last_heard_s", -1);
    double to_suspect = cli_jnum(qos, "silence_to_suspect_s", 0);
    double to_dead = cli_jnum(qos, "silence_to_dead_s", 0);
    double rise = cli_jnum(n, "rise", 1), rise_count = cli_jnum(n, "rise_count", 0);
    char d1[32], r1[64];

    vigil_format_seconds(cli_jnum(n, "since_s", 0), d1, sizeof(d1));
    printf("%s is %s, for %s.\n\n", id, state, d1);

    double hb = cli_jnum(n, "heartbeats", 0);
    if (hb <= 0 || ago < 0) {
        printf("Heartbeats: none received yet.\n");
    } else {
        printf("Heartbeats: %.0f received (generation %.0f, sequence %.0f); the last one %s "
               "ago.\n",
               hb, cli_jnum(n, "generation", 0), cli_jnum(n, "sequence", 0), vigil_dur_s(ago).s);
        printf("Intervals: mean %s, standard deviation %s (the sender says every %s).\n",
               vigil_dur_s(cli_jnum(n, "mean_interval_s", 0)).s,
               vigil_dur_s(cli_jnum(n, "std_dev_s", 0)).s,
               vigil_dur_s(cli_jnum(n, "interval_s", 0)).s);
        double loss = cli_jnum(obs, "loss", -1);
        if (loss >= 0)
            printf("Loss: %.2f%% (%.0f of %.0f sequence numbers of this generation arrived)",
                   loss * 100, cli_jnum(obs, "received", 0), cli_jnum(obs, "expected", 0));
        else
            printf("Loss: not counted yet (too few sequence numbers)");
        if (grid && gq)
            printf("; the detector's estimate, raised by one standard error: %.2f%%",
                   cli_jnum(gq, "loss_used", 0) * 100);
        printf(".\n");
    }
    if (grid && gq)
        explain_grid_detector(n, gq);
    else if (phi)
        printf("Detector: phi accrual; the level is phi, -log10 of the chance that a heartbeat "
               "this late is merely late. Suspect at phi %.2f, reached after %s of silence; "
               "dead at phi %.2f, after %s.\n",
               cli_jnum(n, "suspect_threshold", 0), vigil_dur_s(to_suspect).s,
               cli_jnum(n, "dead_threshold", 0), vigil_dur_s(to_dead).s);
    else
        printf("Detector: fixed timeout; the level is the silence since the last heartbeat. "
               "Suspect after %s, dead after %s.\n",
               vigil_dur_s(to_suspect).s, vigil_dur_s(to_dead).s);

    print_history(n, phi, grid);

    printf("\nWhy:\n");
    if (grid && gq && ago >= 0 && (!strcmp(state, "alive") || !strcmp(state, "suspect"))) {
        explain_grid_why(n, gq, state, ago);
    } else if (!strcmp(state, "alive")) {
        printf("  It is alive: the last heartbeat came %s ago, before the %s of silence "
               "that make a node suspect.\n",
               vigil_dur_s(ago).s, vigil_dur_s(to_suspect).s);
        printf("  It would become suspect if no heartbeat arrives for another %s, and be "
               "declared dead if none arrives for another %s.\n",
               vigil_dur_s(to_suspect - ago > 0 ? to_suspect - ago : 0).s,
               vigil_dur_s(to_dead - ago > 0 ? to_dead - ago : 0).s);
    } else if (!strcmp(state, "suspect")) {
        printf("  It is suspect: no heartbeat for %s, past the %s that make a node "
               "suspect.\n",
               vigil_dur_s(ago).s, vigil_dur_s(to_suspect).s);
        printf("  It comes back to alive with the next heartbeat; it would be declared dead if "
               "no heartbeat arrives for another %s.\n",
               vigil_dur_s(to_dead - ago > 0 ? to_dead - ago : 0).s);
    } else if (!strcmp(state, "dead") || !strcmp(state, "left")) {
        if (!strcmp(state, "dead") && ago >= 0 && grid && gq)
            printf("  It was declared dead once %.0f heartbeats in a row had missed their "
                   "deadlines (%s after the last heartbeat's slot); the last heartbeat came "
                   "%s ago.\n",
                   cli_jnum(gq, "dead_after_slots", 0), vigil_dur_s(to_dead).s, vigil_dur_s(ago).s);
        else if (!strcmp(state, "dead") && ago >= 0)
            printf("  It was declared dead after %s of silence; the last heartbeat came %s "
                   "ago.\n",
                   vigil_dur_s(to_dead).s, vigil_dur_s(ago).s);
        else if (!strcmp(state, "dead"))
            printf("  It was declared in the configuration and never heard within the start-up "
                   "grace.\n");
        else
            printf("  It said goodbye (it was shut down on purpose).\n");
        printf("  It comes back after %.0f timely heartbeats (rise); %.0f so far. A heartbeat is "
               "timely if it comes within %s of the one before.\n",
               rise, rise_count, vigil_dur_s(to_suspect).s);
    } else {
        printf("  It is declared in the configuration and was never heard. It becomes alive "
               "with its first heartbeat, or dead when the start-up grace runs out.\n");
    }

    double mistakes = cli_jnum(obs, "mistakes", 0);
    cli_format_rate(cli_jnum(pred, "mistake_rate_per_h", -1), r1, sizeof(r1));
    vigil_format_seconds(cli_jnum(obs, "monitored_s", 0), d1, sizeof(d1));
    printf("\nMistakes: %.0f false suspicions and %.0f false deaths observed in %s (predicted "
           "false suspicions: %s).\n",
           mistakes, cli_jnum(obs, "false_deaths", 0), d1, r1);
    const json_t *w = json_object_get(n, "warnings");
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)w, i, e)
    {
        printf("Warning: %s\n", json_string_value(e) ? json_string_value(e) : "");
    }
}

int cmd_explain(int argc, char **argv)
{
    static const struct option opts[] = {
        {"api", required_argument, NULL, 'a'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *api = NULL, *cfg = NULL;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "a:c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'a':
            api = optarg;
            break;
        case 'c':
            cfg = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 1) {
        usage(stderr);
        return 2;
    }
    const char *node = argv[optind];
    if (!vigil_id_valid(node, strlen(node))) {
        fprintf(stderr, "vigil explain: invalid node id '%s' (1 to %d of A-Z a-z 0-9 . _ -)\n",
                vigil_quote(node).s, VIGIL_ID_MAX);
        return 2;
    }
    char path[128];
    snprintf(path, sizeof(path), "/v1/nodes/%s", node);
    int exit_code = 1;
    json_t *n = cli_fetch_json("explain", api, cfg, path, &exit_code);
    if (!n)
        return exit_code;
    json_t *health = cli_fetch_json("explain", api, cfg, "/v1/health", NULL);
    explain(n, health);
    json_decref(health);
    json_decref(n);
    return fflush(stdout) != 0;
}
