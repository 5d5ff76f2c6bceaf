/*
 * Settings that are allowed but unwise: the warnings of vcfg_warnings.
 * config_check.c refuses what cannot work at all; this file names what
 * works badly, judged against the quality-of-service model of core/qos.c
 * (docs/tuning.md) on a nominal heartbeat stream: the configured interval,
 * a jitter of a tenth of it (the phi detector's default floor on the
 * deviation) but never under WARN_JITTER_FLOOR, no loss. A real stream is never better than that,
 * so a setting that misbehaves on it misbehaves everywhere. The monitor logs these at start-up;
 * `vigil tune -c FILE` prints them without a monitor. What the measured stream of each node says is
 * the API's part (api_qos.c).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "fmt.h"
#include "config_int.h"
#include "core/qos.h"

/* One false suspicion or dead verdict per node per hour on a nominal stream is too many. */
#define WARN_RATE_MAX (1.0 / 3600)

/*
 * The least jitter any real stream has, in seconds: an agent's timer and a
 * monitor's wake-up on an ordinary, somewhat loaded host are each a
 * millisecond or two late now and then. At intervals of tens of
 * milliseconds a tenth of the interval is less than that, and settings
 * judged against it look safe while they convict healthy nodes by the
 * dozen (fixed 10/15/20 ms did, about 25 times a minute).
 */
#define WARN_JITTER_FLOOR 0.002

struct warn {
    const struct vcfg *c;
    void (*emit)(void *arg, const char *msg);
    void *arg;
    int count;
};

/* The line of slot if its value is still the one read from the file, else 0. */
static unsigned at(const struct vcfg *c, int slot, uint64_t print)
{
    const struct vcfg_origin *o = &c->origin[slot];
    return o->line > 0 && o->print == print ? o->line : 0;
}

static void warnf(struct warn *w, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void warnf(struct warn *w, unsigned line, const char *fmt, ...)
{
    char msg[640];
    int n = 0;
    if (line && w->c->path != NULL)
        n = snprintf(msg, sizeof(msg), "%s:%u: ", w->c->path, line);
    if (n < 0 || (size_t)n >= sizeof(msg))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    w->emit(w->arg, msg);
    w->count++;
}

/* Seconds of silence before a regular stream's node is declared dead, as the settings stand. */
static double dead_silence(const struct vcfg_monitor *m)
{
    double h = (double)m->interval / 1e9;
    double jitter = h / 10 > WARN_JITTER_FLOOR ? h / 10 : WARN_JITTER_FLOOR;
    struct vigil__qos_net net = {.h = h, .jitter = jitter, .loss = 0};
    struct vigil__qos q;
    vigil__qos_predict(&m->core.detector, h, jitter, &net, &q);
    return q.dead_silence;
}

vigil_time_t vcfg_startup_grace_auto(const struct vcfg_monitor *m)
{
    if (!m->state_dir && !m->state_file)
        return m->core.startup_grace;
    double need = 2 * (double)m->state_flush / 1e9 + dead_silence(m);
    if (!(need < 86400))
        return m->core.startup_grace;
    vigil_time_t t = (vigil_time_t)ceil(need) * VIGIL_NSEC_PER_SEC;
    return t > m->core.startup_grace ? t : m->core.startup_grace;
}

int vcfg_warnings(const struct vcfg *c, void (*emit)(void *arg, const char *msg), void *arg)
{
    struct warn w = {.c = c, .emit = emit, .arg = arg};
    const struct vcfg_monitor *m = &c->monitor;
    const struct vigil_detector_config *d = &m->core.detector;
    char b1[48], b2[48];
    double h = (double)m->interval / 1e9;
    unsigned li = at(c, O_M_INTERVAL, vcfg__print_int(m->interval));
    unsigned l_sus = at(c, O_M_SUSPECT, vcfg__print_dbl(d->suspect_threshold));
    unsigned l_dead = at(c, O_M_DEAD, vcfg__print_dbl(d->dead_threshold));

    if (!(h > 0))
        return 0;
    if (m->core.pause_tolerance < m->interval) {
        unsigned lp = at(c, O_M_PAUSE_TOL, vcfg__print_int(m->core.pause_tolerance));
        warnf(&w, lp ? lp : li,
              "monitor.pause_tolerance (%s) is shorter than monitor.heartbeat_interval (%s): "
              "a stall of the monitor too short to hide a single heartbeat gives every node a "
              "fresh detection period, which delays the verdict on a real crash",
              vcfg__fmt_dur(m->core.pause_tolerance, b1, sizeof(b1)),
              vcfg__fmt_dur(m->interval, b2, sizeof(b2)));
    }

    double jitter = h / 10 > WARN_JITTER_FLOOR ? h / 10 : WARN_JITTER_FLOOR;
    struct vigil__qos_net net = {.h = h, .jitter = jitter, .loss = 0};
    struct vigil__qos q;
    vigil__qos_predict(d, h, jitter, &net, &q);
    if (d->kind == VIGIL_DETECTOR_FIXED) {
        /* The rule of thumb: two intervals (one lost heartbeat) and three deviations of jitter. */
        double need = 2 * h + 3 * jitter;
        if (q.dead_silence < need)
            warnf(&w, l_dead,
                  "monitor.detector.dead_after (%s) leaves no room for jitter: with heartbeats "
                  "every %s, a healthy node that loses one heartbeat and sends the next "
                  "%s late (three times an ordinary scheduling delay) is silent for %s "
                  "and is declared dead; use at least %s",
                  vigil_dur_s(q.dead_silence).s, vigil_dur_s(h).s, vigil_dur_s(3 * jitter).s,
                  vigil_dur_s(need).s, vigil_dur_s(need).s);
        else if (q.false_death_rate > WARN_RATE_MAX)
            warnf(&w, l_dead,
                  "monitor.detector.dead_after (%s) is so short that even a regular stream "
                  "would be declared dead %.3g times per node per hour",
                  vigil_dur_s(q.dead_silence).s, q.false_death_rate * 3600);
        if (q.suspect_rate > WARN_RATE_MAX)
            warnf(&w, l_sus,
                  "monitor.detector.suspect_after (%s) is so short that even a regular "
                  "stream would be suspected %.3g times per node per hour",
                  vigil_dur_s(q.suspect_silence).s, q.suspect_rate * 3600);
    }
    if (d->kind == VIGIL_DETECTOR_PHI) {
        if (q.suspect_rate > WARN_RATE_MAX)
            warnf(&w, l_sus,
                  "monitor.detector.suspect_threshold (%g) is so low that even a regular stream "
                  "(jitter a tenth of the interval, no loss) would be suspected %.3g times per "
                  "node per hour: the threshold is reached after %s of silence",
                  d->suspect_threshold, q.suspect_rate * 3600, vigil_dur_s(q.suspect_silence).s);
        if (q.false_death_rate > WARN_RATE_MAX)
            warnf(&w, l_dead,
                  "monitor.detector.dead_threshold (%g) is so low that even a regular stream "
                  "would be declared dead %.3g times per node per hour",
                  d->dead_threshold, q.false_death_rate * 3600);
        else if (q.dead_silence < 2 * h)
            warnf(&w, l_dead ? l_dead : at(c, O_M_ACC_PAUSE, vcfg__print_int(d->acceptable_pause)),
                  "the phi detector declares a node dead after %s of silence, less than two "
                  "heartbeat intervals (%s): one lost heartbeat convicts; raise "
                  "monitor.detector.acceptable_pause",
                  vigil_dur_s(q.dead_silence).s, vigil_dur_s(2 * h).s);
    }

    /*
     * After a restart with the state store, a known node's marks are raised
     * by two flush intervals of heartbeats: its first heartbeats past the
     * raised mark come up to that long after it restarts sending, and the
     * node then needs its detection time again. A shorter grace declares
     * live nodes dead after every restart of the monitor.
     */
    if ((m->state_dir || m->state_file) && !m->startup_grace_auto &&
        (double)m->core.startup_grace / 1e9 < 2 * (double)m->state_flush / 1e9 + q.dead_silence)
        warnf(&w, at(c, O_M_GRACE, vcfg__print_int(m->core.startup_grace)),
              "monitor.startup_grace (%s) is shorter than two state_flush intervals (%s) plus "
              "the time to declare a node dead (%s): after a restart of the monitor, a live "
              "node whose first heartbeats fall under its raised high-water mark is declared "
              "dead; use at least %s",
              vcfg__fmt_dur(m->core.startup_grace, b1, sizeof(b1)),
              vcfg__fmt_dur(2 * m->state_flush, b2, sizeof(b2)), vigil_dur_s(q.dead_silence).s,
              vigil_dur_s(2 * (double)m->state_flush / 1e9 + q.dead_silence).s);
    if (m->goal_detection > 0 && q.dead_silence > (double)m->goal_detection / 1e9)
        warnf(&w, at(c, O_M_GOAL_DET, vcfg__print_int(m->goal_detection)),
              "the settings miss monitor.goals.detection (%s): a crashed node is declared dead "
              "up to %s after its last heartbeat (run vigil tune for settings that meet it)",
              vcfg__fmt_dur(m->goal_detection, b1, sizeof(b1)), vigil_dur_s(q.dead_silence).s);
    if (m->goal_false_alarms > 0 && q.false_death_rate > m->goal_false_alarms)
        warnf(&w, at(c, O_M_GOAL_FALSE, vcfg__print_dbl(m->goal_false_alarms)),
              "the settings miss monitor.goals.false_alarms (%.3g per node per day): even a "
              "regular stream would see %.3g false deaths per node per day",
              m->goal_false_alarms * 86400, q.false_death_rate * 86400);
    return w.count;
}
