/*
 * The quality of service of a node, as `vigil status NODE` prints it: what
 * its settings predict for its measured heartbeat stream beside what the
 * monitor observed (the API's "qos" object; docs/tuning.md), and the
 * node's warnings.
 */
#include <math.h>
#include <stdio.h>

#include "cli_tools.h"
#include "cmds.h"

double cli_jnum(const json_t *o, const char *key, double def)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : def;
}

void cli_format_rate(double per_h, char *buf, size_t cap)
{
    char d[32];
    if (!(per_h >= 0) || !isfinite(per_h)) {
        snprintf(buf, cap, "-");
    } else if (per_h < 1e-12) {
        snprintf(buf, cap, "none expected");
    } else if (per_h >= 1) {
        snprintf(buf, cap, "%.3g per hour", per_h);
    } else if (3600 / per_h > 100 * 365.0 * 86400) {
        snprintf(buf, cap, "%.3g per hour (less than one a century)", per_h);
    } else {
        cli_format_duration(3600 / per_h, d, sizeof(d));
        snprintf(buf, cap, "%.3g per hour (one in %s)", per_h, d);
    }
}

void cli_print_qos(const json_t *n)
{
    const json_t *q = json_object_get(n, "qos");
    if (!json_is_object(q))
        return;
    const json_t *p = json_object_get(q, "predicted");
    const json_t *o = json_object_get(q, "observed");
    const json_t *mo = json_object_get(q, "model");
    char r1[64], r2[64], d1[32];

    printf("\nquality of service (predicted from the settings and the measured stream; "
           "observed):\n");
    double loss = cli_jnum(o, "loss", -1);
    char lossbuf[48] = "not counted yet";
    if (loss >= 0)
        snprintf(lossbuf, sizeof(lossbuf), "%.2f%% counted", loss * 100);
    printf("  stream        interval %.3fs, jitter %.3fs, loss %.2f%% (%s)\n",
           cli_jnum(mo, "interval_s", 0), cli_jnum(mo, "jitter_s", 0),
           cli_jnum(mo, "loss", 0) * 100, lossbuf);
    const json_t *g = json_object_get(q, "grid");
    if (json_is_object(g))
        printf("  verdicts      suspect after %.0f missed heartbeats (%.3fs after the last one's "
               "slot), dead after %.0f (%.3fs); loss assumed %.2f%%, margin %.3fs\n",
               cli_jnum(g, "suspect_after_slots", 0), cli_jnum(q, "silence_to_suspect_s", 0),
               cli_jnum(g, "dead_after_slots", 0), cli_jnum(q, "silence_to_dead_s", 0),
               cli_jnum(g, "loss_used", 0) * 100, cli_jnum(g, "margin_s", 0));
    else
        printf("  verdicts      suspect after %.3fs of silence, dead after %.3fs\n",
               cli_jnum(q, "silence_to_suspect_s", 0), cli_jnum(q, "silence_to_dead_s", 0));
    printf("  detection     predicted: %.3fs on average, at most %.3fs after the last heartbeat\n",
           cli_jnum(p, "detection_s", 0), cli_jnum(p, "detection_max_s", 0));
    cli_format_duration(cli_jnum(o, "monitored_s", 0), d1, sizeof(d1));
    cli_format_rate(cli_jnum(p, "mistake_rate_per_h", -1), r1, sizeof(r1));
    cli_format_rate(cli_jnum(o, "mistake_rate_per_h", -1), r2, sizeof(r2));
    printf("  mistakes      predicted: %s; observed: %.0f in %s (%s)\n", r1,
           cli_jnum(o, "mistakes", 0), d1, r2);
    cli_format_rate(cli_jnum(p, "false_death_rate_per_h", -1), r1, sizeof(r1));
    cli_format_rate(cli_jnum(o, "false_death_rate_per_h", -1), r2, sizeof(r2));
    printf("  false deaths  predicted: %s; observed: %.0f (%s)\n", r1,
           cli_jnum(o, "false_deaths", 0), r2);
    double od = cli_jnum(o, "mistake_duration_s", -1);
    if (od >= 0)
        printf("  mistake lasts predicted: %.3fs; observed: %.3fs on average\n",
               cli_jnum(p, "mistake_duration_s", 0), od);
    else
        printf("  mistake lasts predicted: %.3fs; observed: none yet\n",
               cli_jnum(p, "mistake_duration_s", 0));
    printf("  accuracy      predicted: %.9g; observed: %.9g (the chance a look finds the "
           "verdict right)\n",
           cli_jnum(p, "query_accuracy", 1), cli_jnum(o, "query_accuracy", 1));

    const json_t *w = json_object_get(n, "warnings");
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)w, i, e)
    {
        printf("  warning       %s\n", json_string_value(e) ? json_string_value(e) : "");
    }
}
