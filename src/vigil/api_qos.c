/*
 * The quality of service of one node, for the API.
 *
 * Predicted: the node's own detector settings (scaled to its interval as
 * the monitor judges it) against a model of its heartbeat stream built
 * from what the monitor measured: the interval the sender advertises, the
 * mean and deviation of its recent gaps, and its loss, counted from the
 * sequence numbers of its current generation. core/qos.c does the
 * arithmetic; docs/tuning.md explains it.
 *
 * Observed: the mistakes the core counted for the node (suspicions that a
 * heartbeat of the same generation ended), over the time it has been
 * monitored.
 *
 * Warnings: the settings meet the measured stream badly: a fixed timeout
 * inside the ordinary spread of the gaps, or a predicted rate of mistakes
 * above API_QOS_SUSPECT_RATE_MAX or API_QOS_DEATH_RATE_MAX.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "fmt.h"
#include "api_qos.h"

/* Sequence numbers a generation must span before its loss is counted, not guessed. */
#define QOS_LOSS_MIN_EXPECTED 10

static double ns_s(vigil_time_t ns)
{
    return (double)ns / 1e9;
}

static json_t *jnum(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

/* The measured loss of the node's current generation, or -1 when too little is known. */
static double measured_loss(const struct vigil_monitor *m, const struct vigil_node *n)
{
    struct vigil_node_qos q;
    vigil_monitor_node_qos(m, n, &q);
    if (q.expected < QOS_LOSS_MIN_EXPECTED || q.received > q.expected)
        return -1;
    return 1 - (double)q.received / (double)q.expected;
}

void api_qos_net(const struct vigil_monitor *m, const struct vigil_node *n,
                 struct vigil__qos_net *net)
{
    vigil_time_t mean = 0, sd = 0, iv = vigil_node_interval(n);
    vigil_detector_stats(vigil_node_detector_state(n), &mean, &sd);
    if (iv <= 0)
        iv = vigil_monitor_config(m)->interval;
    vigil__qos_net_from_stats(ns_s(iv), ns_s(mean), ns_s(sd), measured_loss(m, n), net);
}

/*
 * The grid detector is judged by its own estimates: the loss rate it
 * assumes and the jitter of arrivals around their slots (a gap's jitter is
 * sqrt 2 times that); the stream's loss is the one counted, else the
 * assumed one.
 */
static void predict_grid(const struct vigil_monitor *m, const struct vigil_node *n,
                         const struct vigil_detector_config *dc, struct vigil__qos_net *net,
                         struct vigil__qos *q, struct vigil__qos_grid *g)
{
    vigil_time_t iv = vigil_node_interval(n);
    double loss = measured_loss(m, n);
    vigil__qos_grid_from_state(dc, vigil_node_detector_state(n), g);
    if (iv <= 0)
        iv = vigil_monitor_config(m)->interval;
    net->h = ns_s(iv);
    net->jitter = g->arrival_sd * M_SQRT2;
    net->loss = loss >= 0 ? loss : g->loss_used;
    if (net->loss >= 1)
        net->loss = 0.999;
    vigil__qos_predict_grid(dc, g, net, q);
}

static void predict(const struct vigil_monitor *m, const struct vigil_node *n,
                    struct vigil__qos_net *net, struct vigil__qos *q)
{
    struct vigil_detector_config tmp;
    const struct vigil_detector_config *dc = vigil_monitor_node_detector(m, n, &tmp);
    vigil_time_t mean = 0, sd = 0;
    if (dc->kind == VIGIL_DETECTOR_GRID) {
        struct vigil__qos_grid g;
        predict_grid(m, n, dc, net, q, &g);
        return;
    }
    vigil_detector_stats(vigil_node_detector_state(n), &mean, &sd);
    api_qos_net(m, n, net);
    double gm, gsd;
    vigil__qos_gap_moments(net, &gm, &gsd);
    /* Before any history, the detector's model is the stream's. */
    vigil__qos_predict(dc, mean > 0 ? ns_s(mean) : gm, mean > 0 ? ns_s(sd) : gsd, net, q);
}

json_t *api_qos_json(const struct vigil_monitor *m, const struct vigil_node *n, vigil_time_t now)
{
    struct vigil__qos_net net;
    struct vigil__qos q;
    predict(m, n, &net, &q);
    struct vigil_node_qos o;
    vigil_monitor_node_qos(m, n, &o);
    double monitored = o.first_heard >= 0 && now > o.first_heard ? ns_s(now - o.first_heard) : 0;
    double hours = monitored / 3600;
    double loss = measured_loss(m, n);

    json_t *model = json_pack("{s:o, s:o, s:o}", "interval_s", jnum(net.h), "jitter_s",
                              jnum(net.jitter), "loss", jnum(net.loss));
    json_t *pred = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "detection_s", jnum(q.detection),
        "detection_max_s", jnum(q.dead_silence), "mistake_rate_per_h", jnum(q.suspect_rate * 3600),
        "false_death_rate_per_h", jnum(q.false_death_rate * 3600), "mistake_recurrence_s",
        jnum(q.recurrence), "mistake_duration_s", jnum(q.mistake_duration), "query_accuracy",
        jnum(q.accuracy), "suspect_silence_s", jnum(q.suspect_silence));
    json_t *obs = json_pack(
        "{s:o, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:I, s:I}", "monitored_s", jnum(monitored),
        "mistakes", (json_int_t)o.mistakes, "false_deaths", (json_int_t)o.false_deaths,
        "mistake_rate_per_h", hours > 0 ? jnum(o.mistakes / hours) : json_null(),
        "false_death_rate_per_h", hours > 0 ? jnum(o.false_deaths / hours) : json_null(),
        "mistake_duration_s", o.mistakes ? jnum(ns_s(o.mistake_time) / o.mistakes) : json_null(),
        "query_accuracy",
        monitored > 0 ? jnum(fmax(0, 1 - ns_s(o.mistake_time) / monitored)) : json_null(), "loss",
        loss >= 0 ? jnum(loss) : json_null(), "received", (json_int_t)o.received, "expected",
        (json_int_t)o.expected);
    json_t *doc = json_pack("{s:o, s:o, s:o, s:o, s:o}", "model", model, "silence_to_suspect_s",
                            jnum(q.suspect_silence), "silence_to_dead_s", jnum(q.dead_silence),
                            "predicted", pred, "observed", obs);
    struct vigil_detector_config tmp;
    const struct vigil_detector_config *dc = vigil_monitor_node_detector(m, n, &tmp);
    if (doc && dc->kind == VIGIL_DETECTOR_GRID) {
        /*
         * The grid's own terms: the slots a verdict takes and when the last
         * heartbeat's slot was expected, from which every later slot's
         * deadline follows (slot i: expected_ago_s - i h, plus the margin).
         */
        struct vigil__qos_grid g;
        const struct vigil_detector *d = vigil_node_detector_state(n);
        predict_grid(m, n, dc, &net, &q, &g);
        json_t *gj = json_pack(
            "{s:o, s:o, s:o, s:I, s:I, s:o}", "loss_used", jnum(g.loss_used), "arrival_jitter_s",
            jnum(g.arrival_sd), "margin_s", jnum(g.margin), "suspect_after_slots",
            (json_int_t)g.k_suspect, "dead_after_slots", (json_int_t)g.k_dead, "expected_ago_s",
            d->grid && d->last != VIGIL_TIME_NEVER ? jnum(ns_s(now - d->expect)) : json_null());
        if (!gj || json_object_set_new(doc, "grid", gj)) {
            json_decref(doc);
            return NULL;
        }
    }
    return doc;
}

static void add(json_t *arr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(json_t *arr, const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(arr, json_string(buf));
}

json_t *api_qos_warnings(const struct vigil_monitor *m, const struct vigil_node *n)
{
    json_t *arr = json_array();
    if (!arr || vigil_node_heartbeats(n) < API_QOS_MIN_HEARTBEATS)
        return arr;
    struct vigil__qos_net net;
    struct vigil__qos q;
    predict(m, n, &net, &q);
    struct vigil_detector_config tmp;
    const struct vigil_detector_config *dc = vigil_monitor_node_detector(m, n, &tmp);
    if (dc->kind == VIGIL_DETECTOR_FIXED) {
        /* Three deviations: a gap beyond them is a 1-in-740 event, not a failure. */
        double need = 2 * net.h + 3 * net.jitter;
        if (q.dead_silence < need)
            add(arr,
                "dead_after (%s) is shorter than two intervals plus three times the measured "
                "jitter (2 x %s + 3 x %s = %s): one lost heartbeat and a late one "
                "convict the node",
                vigil_dur_s(q.dead_silence).s, vigil_dur_s(net.h).s, vigil_dur_s(net.jitter).s,
                vigil_dur_s(need).s);
        need = net.h + 3 * net.jitter;
        if (q.suspect_silence < need)
            add(arr,
                "suspect_after (%s) is shorter than one interval plus three times the measured "
                "jitter (%s): ordinary late heartbeats make the node suspect",
                vigil_dur_s(q.suspect_silence).s, vigil_dur_s(need).s);
    }
    if (q.suspect_rate > API_QOS_SUSPECT_RATE_MAX)
        add(arr,
            "the predicted rate of false suspicions is %.3g per hour (more than one per hour) for "
            "the measured jitter %s and loss %.2f%%: raise the suspect threshold or the "
            "interval's slack (docs/tuning.md)",
            q.suspect_rate * 3600, vigil_dur_s(net.jitter).s, net.loss * 100);
    if (q.false_death_rate > API_QOS_DEATH_RATE_MAX)
        add(arr,
            "the predicted rate of false deaths is %.3g per day (more than one per day) for the "
            "measured jitter %s and loss %.2f%%: run vigil tune for settings that fit",
            q.false_death_rate * 86400, vigil_dur_s(net.jitter).s, net.loss * 100);
    return arr;
}
