/*
 * The quality of service of a node, as `vigil status NODE` prints it: what
 * its settings predict for its measured heartbeat stream beside what the
 * monitor observed (the API's "qos" object; docs/tuning.md), and the
 * node's warnings.
 */
#include <math.h>
#include <stdio.h>

#include "fmt.h"
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
        vigil_format_seconds(3600 / per_h, d, sizeof(d));
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
    printf("  stream        interval %s, jitter %s, loss %.2f%% (%s)\n",
           vigil_dur_s(cli_jnum(mo, "interval_s", 0)).s, vigil_dur_s(cli_jnum(mo, "jitter_s", 0)).s,
           cli_jnum(mo, "loss", 0) * 100, lossbuf);
    const json_t *g = json_object_get(q, "grid");
    if (json_is_object(g))
        printf("  verdicts      suspect after %.0f missed heartbeats (%s after the last one's "
               "slot), dead after %.0f (%s); loss assumed %.2f%%, margin %s\n",
               cli_jnum(g, "suspect_after_slots", 0),
               vigil_dur_s(cli_jnum(q, "silence_to_suspect_s", 0)).s,
               cli_jnum(g, "dead_after_slots", 0),
               vigil_dur_s(cli_jnum(q, "silence_to_dead_s", 0)).s,
               cli_jnum(g, "loss_used", 0) * 100, vigil_dur_s(cli_jnum(g, "margin_s", 0)).s);
    else
        printf("  verdicts      suspect after %s of silence, dead after %s\n",
               vigil_dur_s(cli_jnum(q, "silence_to_suspect_s", 0)).s,
               vigil_dur_s(cli_jnum(q, "silence_to_dead_s", 0)).s);
    printf("  detection     predicted: %s on average, at most %s after the last heartbeat\n",
           vigil_dur_s(cli_jnum(p, "detection_s", 0)).s,
           vigil_dur_s(cli_jnum(p, "detection_max_s", 0)).s);
    vigil_format_seconds(cli_jnum(o, "monitored_s", 0), d1, sizeof(d1));
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
        printf("  mistake lasts predicted: %s; observed: %s on average\n",
               vigil_dur_s(cli_jnum(p, "mistake_duration_s", 0)).s, vigil_dur_s(od).s);
    else
        printf("  mistake lasts predicted: %s; observed: none yet\n",
               vigil_dur_s(cli_jnum(p, "mistake_duration_s", 0)).s);
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
