/*
 * Relations between settings, checked by vcfg_check after the file and the
 * command-line flags: a dead timeout shorter than two heartbeat intervals,
 * a suspicion threshold above the dead one, a startup grace shorter than
 * one interval, ... Each message cites the file and the line of the
 * setting at fault while the value is still the one read there (see
 * struct vcfg_origin), and no line when a flag set it.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fmt.h"
#include "api.h"
#include "config_int.h"
#include "hooks.h"
#include "io/vio.h"

/* The line of slot if its value is still the one read from the file, else 0. */
static unsigned at(const struct vcfg *c, int slot, uint64_t print)
{
    const struct vcfg_origin *o = &c->origin[slot];
    return o->line > 0 && o->print == print ? o->line : 0;
}

/* "FILE:LINE: " with the first of two candidate lines that is set (none: no prefix). */
static int cfail(const struct vcfg *c, char *err, size_t cap, unsigned l1, unsigned l2,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int cfail(const struct vcfg *c, char *err, size_t cap, unsigned l1, unsigned l2,
                 const char *fmt, ...)
{
    if (err == NULL || cap == 0)
        return -1;
    unsigned line = l1 ? l1 : l2;
    int n = 0;
    if (line && c->path != NULL)
        n = snprintf(err, cap, "%s:%u: ", c->path, line);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int check_hooks(const struct vcfg *c, char *err, size_t cap)
{
    const struct vcfg_monitor *m = &c->monitor;
    for (size_t i = 0; i < m->n_hooks; i++) {
        const struct vcfg_hook *h = &m->hooks[i];
        const char *p = h->argv[0];
        if (h->kind != VCFG_ACT_EXEC)
            continue; /* the file's reader checked what its kind needs */
        if (p == NULL || *p == '\0')
            return cfail(c, err, cap, 0, 0, "monitor.hooks[%zu] has no command", i);
        if (p[0] != '/' && strchr(p, '/') != NULL)
            return cfail(c, err, cap, 0, 0,
                         "monitor.hooks[%zu]: \"%s\" must be an absolute path or a program "
                         "name to look up in PATH",
                         i, p);
        if (h->timeout <= 0)
            return cfail(c, err, cap, 0, 0, "monitor.hooks[%zu].timeout must be longer than 0s", i);
    }
    return 0;
}

static int check_detector(const struct vcfg *c, char *err, size_t cap)
{
    const struct vcfg_monitor *m = &c->monitor;
    const struct vigil_detector_config *d = &m->core.detector;
    char b1[48], b2[48];
    unsigned li = at(c, O_M_INTERVAL, vcfg__print_int(m->interval));
    unsigned l_sus = at(c, O_M_SUSPECT, vcfg__print_dbl(d->suspect_threshold));
    unsigned l_dead = at(c, O_M_DEAD, vcfg__print_dbl(d->dead_threshold));

    if (d->kind == VIGIL_DETECTOR_FIXED) {
        vigil_time_t sus = vcfg__secs_to_ns(d->suspect_threshold);
        vigil_time_t dead = vcfg__secs_to_ns(d->dead_threshold);
        if (!(d->suspect_threshold > 0) || !(d->dead_threshold > 0) ||
            !isfinite(d->suspect_threshold) || !isfinite(d->dead_threshold))
            return cfail(c, err, cap, l_sus, l_dead,
                         "monitor.detector: suspect_after and dead_after must be longer than "
                         "0s");
        if (dead <= m->interval)
            return cfail(c, err, cap, l_dead, li,
                         "monitor.detector.dead_after (%s) must be longer than "
                         "monitor.heartbeat_interval (%s)",
                         vcfg__fmt_dur(dead, b1, sizeof(b1)),
                         vcfg__fmt_dur(m->interval, b2, sizeof(b2)));
        if (dead < 2 * m->interval)
            return cfail(c, err, cap, l_dead, li,
                         "monitor.detector.dead_after (%s) must be at least twice "
                         "monitor.heartbeat_interval (%s): a dead timeout shorter than two "
                         "heartbeat intervals convicts on one lost datagram",
                         vcfg__fmt_dur(dead, b1, sizeof(b1)),
                         vcfg__fmt_dur(m->interval, b2, sizeof(b2)));
        if (sus >= dead)
            return cfail(c, err, cap, l_sus, l_dead,
                         "monitor.detector.suspect_after (%s) must be shorter than "
                         "monitor.detector.dead_after (%s)",
                         vcfg__fmt_dur(sus, b1, sizeof(b1)), vcfg__fmt_dur(dead, b2, sizeof(b2)));
        if (sus <= m->interval)
            return cfail(c, err, cap, l_sus, li,
                         "monitor.detector.suspect_after (%s) must be longer than "
                         "monitor.heartbeat_interval (%s): every node would be suspect "
                         "between two heartbeats",
                         vcfg__fmt_dur(sus, b1, sizeof(b1)),
                         vcfg__fmt_dur(m->interval, b2, sizeof(b2)));
    } else {
        if (!(d->suspect_threshold > 0) || !isfinite(d->suspect_threshold))
            return cfail(c, err, cap, l_sus, 0,
                         "monitor.detector.suspect_threshold (%g) must be greater than 0",
                         d->suspect_threshold);
        if (!(d->dead_threshold > 0) || !isfinite(d->dead_threshold))
            return cfail(c, err, cap, l_dead, 0,
                         "monitor.detector.dead_threshold (%g) must be greater than 0",
                         d->dead_threshold);
        if (d->suspect_threshold > d->dead_threshold)
            return cfail(c, err, cap, l_sus, l_dead,
                         "monitor.detector.suspect_threshold (%g) must not be above "
                         "monitor.detector.dead_threshold (%g)",
                         d->suspect_threshold, d->dead_threshold);
        if (d->kind == VIGIL_DETECTOR_GRID) {
            if (d->min_std_dev <= 0)
                return cfail(c, err, cap, at(c, O_M_MIN_SD, vcfg__print_int(d->min_std_dev)), li,
                             "monitor.detector.min_std_dev (%s) must be longer than 0s",
                             vcfg__fmt_dur(d->min_std_dev, b1, sizeof(b1)));
            if (d->margin < 0)
                return cfail(c, err, cap, at(c, O_M_MARGIN, vcfg__print_int(d->margin)), 0,
                             "monitor.detector.margin must not be negative");
            if (d->margin >= m->interval)
                return cfail(c, err, cap, at(c, O_M_MARGIN, vcfg__print_int(d->margin)), li,
                             "monitor.detector.margin (%s) must be shorter than "
                             "monitor.heartbeat_interval (%s): a slot is missed only once the "
                             "next one is due",
                             vcfg__fmt_dur(d->margin, b1, sizeof(b1)),
                             vcfg__fmt_dur(m->interval, b2, sizeof(b2)));
        } else if (d->first_estimate <= 0) {
            return cfail(c, err, cap, at(c, O_M_FIRST, vcfg__print_int(d->first_estimate)), li,
                         "monitor.detector.first_estimate (%s) must be longer than 0s",
                         vcfg__fmt_dur(d->first_estimate, b1, sizeof(b1)));
        } else if (d->min_std_dev <= 0) {
            return cfail(c, err, cap, at(c, O_M_MIN_SD, vcfg__print_int(d->min_std_dev)), li,
                         "monitor.detector.min_std_dev (%s) must be longer than 0s",
                         vcfg__fmt_dur(d->min_std_dev, b1, sizeof(b1)));
        } else if (d->acceptable_pause < 0) {
            return cfail(c, err, cap, at(c, O_M_ACC_PAUSE, vcfg__print_int(d->acceptable_pause)), 0,
                         "monitor.detector.acceptable_pause must not be negative");
        }
    }
    /* The grid keeps no interval history. */
    if (d->kind != VIGIL_DETECTOR_GRID &&
        (d->window < VIGIL_PHI_WINDOW_MIN || d->window > VIGIL_PHI_WINDOW_MAX))
        return cfail(c, err, cap, at(c, O_M_WINDOW, vcfg__print_int(d->window)), 0,
                     "monitor.detector.window (%u) must be between %d and %d", d->window,
                     VIGIL_PHI_WINDOW_MIN, VIGIL_PHI_WINDOW_MAX);
    /*
     * The detector's own check, last. What it could still object to is the
     * size of a threshold (phi is capped), so the thresholds' lines are cited.
     */
    const char *why = NULL;
    if (vigil_detector_config_check(d, &why) != 0)
        return cfail(c, err, cap, l_dead, l_sus, "monitor.detector: %s",
                     why != NULL ? why : "invalid settings");
    return 0;
}

static int check_monitor(const struct vcfg *c, char *err, size_t cap)
{
    const struct vcfg_monitor *m = &c->monitor;
    const struct vigil_monitor_config *core = &m->core;
    char b1[48], b2[48];
    struct vigil_addr a;

    unsigned ln = at(c, O_M_LISTEN, vcfg__print_int((int64_t)m->n_listen));
    if (m->n_listen == 0)
        return cfail(c, err, cap, ln, 0, "monitor.listen must hold at least one address");
    if (m->n_listen > VCFG_MAX_LISTEN)
        return cfail(c, err, cap, ln, 0, "monitor.listen holds more than %d addresses",
                     VCFG_MAX_LISTEN);
    for (size_t i = 0; i < m->n_listen; i++) {
        const char *s = m->listen[i];
        if (s == NULL || vigil_addr_parse(s, VIGIL_DEFAULT_PORT, &a) != 0)
            return cfail(c, err, cap, at(c, O_M_LISTEN_0 + (int)i, vcfg__print_str(s)), ln,
                         "monitor.listen[%zu] \"%s\" is not a numeric address (1.2.3.4:%d, "
                         "[::]:%d)",
                         i, s != NULL ? s : "", VIGIL_DEFAULT_PORT, VIGIL_DEFAULT_PORT);
    }
    const char *api = m->api;
    if (api != NULL && *api != '\0' && strcmp(api, "off") != 0 &&
        vigil_addr_parse(api, API_DEFAULT_PORT, &a) != 0)
        return cfail(c, err, cap, at(c, O_M_API, vcfg__print_str(api)), 0,
                     "monitor.api \"%s\" is not a numeric address (127.0.0.1:%d, [::1]:%d) "
                     "or \"off\"",
                     api, API_DEFAULT_PORT, API_DEFAULT_PORT);
    /* Two places for the same marks would disagree after a restart: one of them. */
    if (m->state_file != NULL && m->state_dir != NULL)
        return cfail(c, err, cap, 0, 0,
                     "monitor.state_file and monitor.state_dir are both set: the state "
                     "directory keeps the marks itself; set one of them");
    /* HTTPS needs both halves; one alone is a mistake, not a request for plain HTTP. */
    if ((m->api_tls_cert == NULL) != (m->api_tls_key == NULL)) {
        bool cert = m->api_tls_cert != NULL;
        return cfail(c, err, cap,
                     cert ? at(c, O_M_TLS_CERT, vcfg__print_str(m->api_tls_cert))
                          : at(c, O_M_TLS_KEY, vcfg__print_str(m->api_tls_key)),
                     0, "monitor.%s is set but monitor.%s is not: HTTPS needs both",
                     cert ? "api_tls_cert" : "api_tls_key", cert ? "api_tls_key" : "api_tls_cert");
    }

    unsigned li = at(c, O_M_INTERVAL, vcfg__print_int(m->interval));
    if (m->interval < VCFG_INTERVAL_MIN || m->interval > VCFG_INTERVAL_MAX)
        return cfail(c, err, cap, li, 0,
                     "monitor.heartbeat_interval (%s) must be between 10ms and 1h",
                     vcfg__fmt_dur(m->interval, b1, sizeof(b1)));
    if (check_detector(c, err, cap) != 0)
        return -1;

    unsigned lg = at(c, O_M_GRACE, vcfg__print_int(core->startup_grace));
    if (core->detector.kind == VIGIL_DETECTOR_FIXED) {
        vigil_time_t dead = vcfg__secs_to_ns(core->detector.dead_threshold);
        if (core->startup_grace < dead)
            return cfail(c, err, cap, lg,
                         at(c, O_M_DEAD, vcfg__print_dbl(core->detector.dead_threshold)),
                         "monitor.startup_grace (%s) must be at least monitor.detector.dead_after "
                         "(%s): a declared node must get the time any silent node gets",
                         vcfg__fmt_dur(core->startup_grace, b1, sizeof(b1)),
                         vcfg__fmt_dur(dead, b2, sizeof(b2)));
    } else if (core->startup_grace < m->interval) {
        return cfail(c, err, cap, lg, li,
                     "monitor.startup_grace (%s) must be at least monitor.heartbeat_interval "
                     "(%s): a declared node must get the time to send one heartbeat",
                     vcfg__fmt_dur(core->startup_grace, b1, sizeof(b1)),
                     vcfg__fmt_dur(m->interval, b2, sizeof(b2)));
    }
    if (core->pause_tolerance <= 0)
        return cfail(c, err, cap, at(c, O_M_PAUSE_TOL, vcfg__print_int(core->pause_tolerance)), 0,
                     "monitor.pause_tolerance (%s) must be longer than 0s",
                     vcfg__fmt_dur(core->pause_tolerance, b1, sizeof(b1)));
    if (core->pause_tolerance < VCFG_PAUSE_TOLERANCE_MIN)
        return cfail(c, err, cap, at(c, O_M_PAUSE_TOL, vcfg__print_int(core->pause_tolerance)), 0,
                     "monitor.pause_tolerance (%s) must be at least 10ms: an event loop is "
                     "late by that much on an ordinary host, and every such delay would count "
                     "as a stall of the monitor and reset detection",
                     vcfg__fmt_dur(core->pause_tolerance, b1, sizeof(b1)));
    if (core->rise < 1 || core->rise > VIGIL_MONITOR_RISE_MAX)
        return cfail(c, err, cap, at(c, O_M_RISE, vcfg__print_int(core->rise)), 0,
                     "monitor.rise (%u) must be between 1 and %d", core->rise,
                     VIGIL_MONITOR_RISE_MAX);
    unsigned lm = at(c, O_M_MAX_NODES, vcfg__print_int(core->max_nodes));
    if (core->max_nodes < 1 || core->max_nodes > VIGIL_MONITOR_MAX_NODES_MAX)
        return cfail(c, err, cap, lm, 0, "monitor.max_nodes (%u) must be between 1 and %u",
                     core->max_nodes, VIGIL_MONITOR_MAX_NODES_MAX);
    if (m->n_nodes > core->max_nodes)
        return cfail(c, err, cap, lm, at(c, O_M_NODES, vcfg__print_int((int64_t)m->n_nodes)),
                     "monitor.max_nodes (%u) is smaller than the %zu declared nodes",
                     core->max_nodes, m->n_nodes);
    for (size_t i = 0; i < m->n_nodes; i++) {
        const char *id = m->nodes[i];
        if (id == NULL || !vigil_id_valid(id, strlen(id)))
            return cfail(c, err, cap, 0, 0, "declared node \"%s\" is not a valid node id",
                         vigil_quote(id != NULL ? id : "").s);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(id, m->nodes[j]))
                return cfail(c, err, cap, 0, 0, "node \"%s\" is declared twice", id);
    }
    if (m->event_history < 1 || m->event_history > VCFG_EVENT_HISTORY_MAX)
        return cfail(c, err, cap, at(c, O_M_EVENTS, vcfg__print_int(m->event_history)), 0,
                     "monitor.event_history (%u) must be between 1 and %d", m->event_history,
                     VCFG_EVENT_HISTORY_MAX);
    if (m->hook_queue < 1 || m->hook_queue > HOOK_QUEUE_MAX)
        return cfail(c, err, cap, 0, 0, "monitor.hook_queue (%u) must be between 1 and %d",
                     m->hook_queue, HOOK_QUEUE_MAX);
    if (m->hook_queue_total < 1 || m->hook_queue_total > HOOK_QUEUE_TOTAL_MAX)
        return cfail(c, err, cap, 0, 0, "monitor.hook_queue_total (%u) must be between 1 and %u",
                     m->hook_queue_total, HOOK_QUEUE_TOTAL_MAX);
    if (check_hooks(c, err, cap) != 0)
        return -1;
    if (core->require_sealed && !core->has_key)
        return cfail(c, err, cap, 0, 0,
                     "monitor.encrypt needs a key (monitor.key_file): without one nothing can be "
                     "sealed or opened");
    /* The core's own check, last: everything it could object to is named above. */
    const char *why = NULL;
    if (vigil_monitor_config_check(core, &why) != 0)
        return cfail(c, err, cap, 0, 0, "monitor: %s", why != NULL ? why : "invalid settings");
    return 0;
}

int vcfg_host_id(char *buf, size_t cap)
{
    /* Host names are at most 255 bytes (HOST_NAME_MAX is 64 on Linux). */
    char host[256];
    if (buf == NULL || cap == 0 || vio_hostname(host, sizeof(host)) != 0)
        return -1;
    host[sizeof(host) - 1] = '\0';
    size_t n = strlen(host);
    if (!vigil_id_valid(host, n) || n >= cap)
        return -1;
    memcpy(buf, host, n + 1);
    return 0;
}

static int check_agent(const struct vcfg *c, char *err, size_t cap)
{
    const struct vcfg_agent *a = &c->agent;
    char b1[48];
    if (a->id == NULL) {
        char host[VIGIL_ID_MAX + 1];
        if (vcfg_host_id(host, sizeof(host)) != 0)
            return cfail(c, err, cap, 0, 0,
                         "agent.id is not set and the host name is not a valid node id "
                         "(1 to %d characters of A-Z a-z 0-9 . _ -): set agent.id",
                         VIGIL_ID_MAX);
    } else if (!vigil_id_valid(a->id, strlen(a->id))) {
        return cfail(c, err, cap, at(c, O_A_ID, vcfg__print_str(a->id)), 0,
                     "agent.id \"%s\" is not a valid node id (1 to %d characters of A-Z a-z 0-9 "
                     ". _ -)",
                     a->id, VIGIL_ID_MAX);
    }
    unsigned lm = at(c, O_A_MONITORS, vcfg__print_int((int64_t)a->n_monitors));
    if (a->n_monitors < 1 || a->n_monitors > VIGIL_SENDER_MAX_MONITORS)
        return cfail(c, err, cap, lm, 0,
                     "agent.monitors must hold 1 to %d monitor addresses (it holds %zu)",
                     VIGIL_SENDER_MAX_MONITORS, a->n_monitors);
    for (size_t i = 0; i < a->n_monitors; i++)
        if (a->monitors[i] == NULL || a->monitors[i][0] == '\0')
            return cfail(c, err, cap, lm, 0, "agent.monitors[%zu] is empty", i);
    if (a->interval < VCFG_INTERVAL_MIN || a->interval > VCFG_INTERVAL_MAX)
        return cfail(c, err, cap, at(c, O_A_INTERVAL, vcfg__print_int(a->interval)), 0,
                     "agent.interval (%s) must be between 10ms and 1h",
                     vcfg__fmt_dur(a->interval, b1, sizeof(b1)));
    if (a->encrypt && !a->has_key)
        return cfail(c, err, cap, 0, 0,
                     "agent.encrypt needs a key: the statuses are sealed with the node key "
                     "(agent.key_file)");
    if (a->encrypt && a->wire_version == VIGIL_WIRE_V1)
        return cfail(c, err, cap, 0, 0,
                     "agent.encrypt needs wire_version 2 (version 1 carries the status in clear)");
    return 0;
}

int vcfg_check(const struct vcfg *c, const char *which, char *err, size_t cap)
{
    if (c == NULL || which == NULL)
        return vcfg__errf(err, cap, "invalid arguments");
    if (c->oom)
        return vcfg__errf(err, cap, "out of memory");
    if (!strcmp(which, "monitor"))
        return check_monitor(c, err, cap);
    if (!strcmp(which, "agent"))
        return check_agent(c, err, cap);
    return vcfg__errf(err, cap, "unknown section \"%s\" (monitor or agent)", which);
}
