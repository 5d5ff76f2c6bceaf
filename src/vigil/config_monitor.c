/*
 * The settings of the "monitor" section: one handler per member, each
 * reading its value with the typed readers of config_read.c into struct
 * vcfg_monitor, and recording the origin of the settings vcfg_check
 * relates. The detector block is read last, once the heartbeat interval
 * is known, because its defaults derive from the interval.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "config_int.h"
#include "hooks.h"
#include "leader.h"

static int m_listen(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    size_t n = 0;
    if (vcfg__rd_strings(l, s, VCFG_MAX_LISTEN, SIZE_MAX, &n) != 0)
        return -1;
    vcfg__free_strs(m->listen, &m->n_listen);
    for (size_t i = 0; i < n; i++) {
        m->listen[i] = strdup(vcfg__elem_str(s, i));
        if (m->listen[i] == NULL)
            return vcfg__oom(l, s);
        m->n_listen = i + 1;
        vcfg__set_origin(l, O_M_LISTEN_0 + (int)i, config_setting_get_elem(s, (unsigned)i),
                         vcfg__print_str(m->listen[i]));
    }
    vcfg__set_origin(l, O_M_LISTEN, s, vcfg__print_int((int64_t)n));
    return 0;
}

static int m_api(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return vcfg__wrong_type(l, s, "a string (an address, or \"off\")");
    const char *v = config_setting_get_string(s);
    if (vcfg__set_str(l, s, &m->api, v) != 0)
        return -1;
    vcfg__set_origin(l, O_M_API, s, vcfg__print_str(m->api));
    return 0;
}

/* A path setting of the API (token, certificate, key), its origin kept when slot >= 0. */
static int api_path(struct vcfg__ld *l, const config_setting_t *s, char **dst, int slot)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (vcfg__set_path(l, s, dst, v) != 0)
        return -1;
    if (slot >= 0)
        vcfg__set_origin(l, slot, s, vcfg__print_str(*dst));
    return 0;
}

static int m_api_token_file(struct vcfg__ld *l, const config_setting_t *s)
{
    return api_path(l, s, &l->c->monitor.api_token_file, -1);
}

static int m_api_tls_cert(struct vcfg__ld *l, const config_setting_t *s)
{
    return api_path(l, s, &l->c->monitor.api_tls_cert, O_M_TLS_CERT);
}

static int m_api_tls_key(struct vcfg__ld *l, const config_setting_t *s)
{
    return api_path(l, s, &l->c->monitor.api_tls_key, O_M_TLS_KEY);
}

static int m_key_file(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_key(l, s, true);
}

static int m_encrypt(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_bool(l, s, &l->c->monitor.core.require_sealed);
}

static int m_insecure(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_bool(l, s, &l->c->monitor.insecure);
}

static int m_max_ahead(struct vcfg__ld *l, const config_setting_t *s)
{
    if (vcfg__rd_duration(l, s, &l->c->monitor.core.max_ahead) != 0)
        return -1;
    if (l->c->monitor.core.max_ahead <= 0)
        return vcfg__sfail(l, s, "must be positive");
    return 0;
}

static int m_state_file(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    return vcfg__set_path(l, s, &l->c->monitor.state_file, v);
}

static int m_state_dir(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    return vcfg__set_path(l, s, &l->c->monitor.state_dir, v);
}

static int m_state_flush(struct vcfg__ld *l, const config_setting_t *s)
{
    if (vcfg__rd_duration(l, s, &l->c->monitor.state_flush) != 0)
        return -1;
    if (l->c->monitor.state_flush < 100 * VIGIL_NSEC_PER_MSEC ||
        l->c->monitor.state_flush > 3600 * VIGIL_NSEC_PER_SEC)
        return vcfg__sfail(l, s, "must be between 100ms and 1h");
    return 0;
}

static int m_name(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (!vigil_id_valid(v, strlen(v)))
        return vcfg__sfail(
            l, s,
            "\"%s\" is not a valid monitor name (1 to %d characters of A-Z a-z 0-9 . "
            "_ -)",
            vigil_quote(v).s, VIGIL_ID_MAX);
    return vcfg__set_str(l, s, &l->c->monitor.name, v);
}

static int m_peers(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    size_t n = 0;
    if (vcfg__rd_strings(l, s, VCFG_MAX_PEERS, SIZE_MAX, &n) != 0)
        return -1;
    vcfg__free_strs(m->peers, &m->n_peers);
    for (size_t i = 0; i < n; i++) {
        m->peers[i] = strdup(vcfg__elem_str(s, i));
        if (m->peers[i] == NULL)
            return vcfg__oom(l, s);
        m->n_peers = i + 1;
    }
    return 0;
}

static int e_endpoints(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    size_t n = 0;
    if (vcfg__rd_strings(l, s, VCFG_MAX_ETCD, SIZE_MAX, &n) != 0)
        return -1;
    if (n == 0)
        return vcfg__sfail(l, s, "must name at least one etcd endpoint");
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
            return vcfg__sfail(l, e, "\"%s\" is not an etcd URL (http://HOST:PORT or https://...)",
                               vigil_quote(v).s);
    }
    vcfg__free_strs(m->etcd, &m->n_etcd);
    for (size_t i = 0; i < n; i++) {
        m->etcd[i] = strdup(vcfg__elem_str(s, i));
        if (m->etcd[i] == NULL)
            return vcfg__oom(l, s);
        m->n_etcd = i + 1;
    }
    return 0;
}

static int e_prefix(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (v[0] != '/' || strlen(v) > 128)
        return vcfg__sfail(l, s, "must be a key prefix starting with '/' (at most 128 bytes)");
    return vcfg__set_str(l, s, &l->c->monitor.etcd_prefix, v);
}

static int e_ttl(struct vcfg__ld *l, const config_setting_t *s)
{
    vigil_time_t *t = &l->c->monitor.etcd_ttl;
    if (vcfg__rd_duration(l, s, t) != 0)
        return -1;
    if (*t < LEADER_TTL_MIN || *t > LEADER_TTL_MAX || *t % VIGIL_NSEC_PER_SEC)
        return vcfg__sfail(l, s, "must be whole seconds between 2s and 1h");
    return 0;
}

static int m_etcd(struct vcfg__ld *l, const config_setting_t *s)
{
    static const struct vcfg__field fields[] = {
        {"endpoints", e_endpoints},
        {"prefix", e_prefix},
        {"ttl", e_ttl},
    };
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return vcfg__wrong_type(l, s, "a group { endpoints = [\"http://...\"]; ... }");
    if (config_setting_get_member(s, "endpoints") == NULL)
        return vcfg__sfail(l, s, "needs endpoints = [\"http://HOST:2379\", ...]");
    return vcfg__walk(l, s, fields, sizeof(fields) / sizeof(fields[0]));
}

static int fd_enabled(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_bool(l, s, &l->c->monitor.damping.on);
}

static int fd_half_life(struct vcfg__ld *l, const config_setting_t *s)
{
    vigil_time_t *v = &l->c->monitor.damping.half_life;
    if (vcfg__rd_duration(l, s, v) != 0)
        return -1;
    if (*v < VIGIL_NSEC_PER_SEC)
        return vcfg__sfail(l, s, "must be at least 1s");
    return 0;
}

static int fd_number(struct vcfg__ld *l, const config_setting_t *s, double *v)
{
    if (vcfg__rd_number(l, s, v) != 0)
        return -1;
    if (!(*v > 0) || *v > 1e9)
        return vcfg__sfail(l, s, "must be a number above 0");
    return 0;
}

static int fd_penalty(struct vcfg__ld *l, const config_setting_t *s)
{
    return fd_number(l, s, &l->c->monitor.damping.penalty);
}

static int fd_suppress(struct vcfg__ld *l, const config_setting_t *s)
{
    return fd_number(l, s, &l->c->monitor.damping.suppress);
}

static int fd_reuse(struct vcfg__ld *l, const config_setting_t *s)
{
    return fd_number(l, s, &l->c->monitor.damping.reuse);
}

static int m_flap_damping(struct vcfg__ld *l, const config_setting_t *s)
{
    static const struct vcfg__field fields[] = {
        {"enabled", fd_enabled},   {"half_life", fd_half_life}, {"penalty", fd_penalty},
        {"suppress", fd_suppress}, {"reuse", fd_reuse},
    };
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return vcfg__wrong_type(l, s, "a group { half_life = \"60s\"; ... }");
    if (vcfg__walk(l, s, fields, sizeof(fields) / sizeof(fields[0])) != 0)
        return -1;
    const struct vcfg_monitor *m = &l->c->monitor;
    if (m->damping.reuse >= m->damping.suppress)
        return vcfg__sfail(l, s, "needs reuse (%g) below suppress (%g)", m->damping.reuse,
                           m->damping.suppress);
    return 0;
}

static int m_interval(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    if (vcfg__rd_duration(l, s, &m->interval) != 0)
        return -1;
    l->interval_set = true;
    vcfg__set_origin(l, O_M_INTERVAL, s, vcfg__print_int(m->interval));
    return 0;
}

static int m_auto_register(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_bool(l, s, &l->c->monitor.core.auto_register);
}

static int m_adapt_interval(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_bool(l, s, &l->c->monitor.core.adapt_interval);
}

static int m_max_nodes(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, 1, VIGIL_MONITOR_MAX_NODES_MAX, &v) != 0)
        return -1;
    l->c->monitor.core.max_nodes = (uint32_t)v;
    vcfg__set_origin(l, O_M_MAX_NODES, s, vcfg__print_int(v));
    return 0;
}

static int m_receive_threads(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, 1, VCFG_MAX_RECEIVE_THREADS, &v) != 0)
        return -1;
    l->c->monitor.receive_threads = (unsigned)v;
    return 0;
}

static int m_receive_buffer_mb(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, 1, 1024, &v) != 0)
        return -1;
    l->c->monitor.receive_buffer_mb = (unsigned)v;
    return 0;
}

static int m_startup_grace(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vigil_monitor_config *core = &l->c->monitor.core;
    if (vcfg__rd_duration(l, s, &core->startup_grace) != 0)
        return -1;
    l->c->monitor.startup_grace_auto = false;
    vcfg__set_origin(l, O_M_GRACE, s, vcfg__print_int(core->startup_grace));
    return 0;
}

static int m_rise(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, 1, VIGIL_MONITOR_RISE_MAX, &v) != 0)
        return -1;
    l->c->monitor.core.rise = (uint32_t)v;
    vcfg__set_origin(l, O_M_RISE, s, vcfg__print_int(v));
    return 0;
}

static int m_pause_tolerance(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vigil_monitor_config *core = &l->c->monitor.core;
    l->c->monitor.pause_tolerance_auto = false;
    if (vcfg__rd_duration(l, s, &core->pause_tolerance) != 0)
        return -1;
    vcfg__set_origin(l, O_M_PAUSE_TOL, s, vcfg__print_int(core->pause_tolerance));
    return 0;
}

static int m_event_history(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, 1, VCFG_EVENT_HISTORY_MAX, &v) != 0)
        return -1;
    l->c->monitor.event_history = (uint32_t)v;
    vcfg__set_origin(l, O_M_EVENTS, s, vcfg__print_int(v));
    return 0;
}

static int m_hook_queue(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, 1, HOOK_QUEUE_MAX, &v) != 0)
        return -1;
    l->c->monitor.hook_queue = (uint32_t)v;
    return 0;
}

static int m_hook_queue_total(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, 1, HOOK_QUEUE_TOTAL_MAX, &v) != 0)
        return -1;
    l->c->monitor.hook_queue_total = (uint32_t)v;
    return 0;
}

static int g_detection(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    if (vcfg__rd_duration(l, s, &m->goal_detection) != 0)
        return -1;
    if (m->goal_detection <= 0)
        return vcfg__sfail(l, s, "must be longer than 0s");
    vcfg__set_origin(l, O_M_GOAL_DET, s, vcfg__print_int(m->goal_detection));
    return 0;
}

static int g_false_alarms(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (vcfg_parse_rate(v, &m->goal_false_alarms) != 0 || !(m->goal_false_alarms > 0))
        return vcfg__sfail(l, s,
                           "\"%s\" is not a rate above 0 (a number per unit: \"1/month\", "
                           "\"0.5/day\"; units s, m, h, d, w, month, y)",
                           vigil_quote(v).s);
    vcfg__set_origin(l, O_M_GOAL_FALSE, s, vcfg__print_dbl(m->goal_false_alarms));
    return 0;
}

/* monitor.goals: what vigil tune aims for and the start-up warnings hold the settings to. */
static int m_goals(struct vcfg__ld *l, const config_setting_t *s)
{
    static const struct vcfg__field fields[] = {
        {"detection", g_detection},
        {"false_alarms", g_false_alarms},
    };
    return vcfg__walk(l, s, fields, sizeof(fields) / sizeof(fields[0]));
}

static int m_nodes(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    size_t n = 0;
    if (vcfg__rd_strings(l, s, VCFG_MAX_NODES, SIZE_MAX, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *id = config_setting_get_string(e);
        if (!vigil_id_valid(id, strlen(id)))
            return vcfg__sfail(
                l, e, "\"%s\" is not a valid node id (1 to %d characters of A-Z a-z 0-9 . _ -)",
                vigil_quote(id).s, VIGIL_ID_MAX);
        for (size_t j = 0; j < i; j++) {
            const config_setting_t *p = config_setting_get_elem(s, (unsigned)j);
            if (!strcmp(id, config_setting_get_string(p)))
                return vcfg__sfail(l, e, "\"%s\" is declared twice (also on line %u)", id,
                                   vcfg__sline(p));
        }
    }
    vcfg__free_strs(m->nodes, &m->n_nodes);
    for (size_t i = 0; i < n; i++) {
        m->nodes[i] = strdup(vcfg__elem_str(s, i));
        if (m->nodes[i] == NULL)
            return vcfg__oom(l, s);
        m->n_nodes = i + 1;
    }
    vcfg__set_origin(l, O_M_NODES, s, vcfg__print_int((int64_t)n));
    return 0;
}

/* The hook being read (hooks are read one at a time). */
static struct vcfg_hook *cur_hook(struct vcfg__ld *l)
{
    return &l->c->monitor.hooks[l->c->monitor.n_hooks - 1];
}

static int h_command(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_argv(l, s, cur_hook(l)->argv);
}

static int h_timeout(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    if (vcfg__rd_duration(l, s, &h->timeout) != 0)
        return -1;
    if (h->timeout <= 0)
        return vcfg__sfail(l, s, "must be longer than 0s");
    return 0;
}

static int h_retries(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, 0, HOOK_RETRIES_MAX, &v) != 0)
        return -1;
    cur_hook(l)->retries = (uint32_t)v;
    return 0;
}

static int h_retry_delay(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    if (vcfg__rd_duration(l, s, &h->retry_delay) != 0)
        return -1;
    if (h->retry_delay <= 0)
        return vcfg__sfail(l, s, "must be longer than 0s");
    return 0;
}

static int h_on(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    size_t n = 0;
    if (vcfg__rd_strings(l, s, VCFG_MAX_ARGV, SIZE_MAX, &n) != 0)
        return -1;
    if (n == 0)
        return vcfg__sfail(l, s, "must name at least one state (leave it out for all states)");
    uint32_t mask = 0;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_get_string(e);
        int st = vigil_state_parse(name);
        /* A check's statuses stand for states (actions on checks, docs/checks.md). */
        if (st < 0)
            st = !strcmp(name, "passing")    ? VIGIL_STATE_ALIVE
                 : !strcmp(name, "warning")  ? VIGIL_STATE_SUSPECT
                 : !strcmp(name, "critical") ? VIGIL_STATE_DEAD
                                             : -1;
        /* A state number beyond 31 would not fit the mask; none exists. */
        if (st < 0 || st > 31) {
            char names[128] = "";
            size_t off = 0;
            for (int k = VIGIL_STATE_UNKNOWN; k <= VIGIL_STATE_LEFT && off < sizeof(names); k++) {
                int w = snprintf(names + off, sizeof(names) - off, "%s%s", k ? ", " : "",
                                 vigil_state_name((enum vigil_state)k));
                if (w < 0)
                    break;
                off += (size_t)w;
            }
            return vcfg__sfail(l, e,
                               "\"%s\" is not a state (states: %s; for checks: passing, "
                               "warning, critical)",
                               vigil_quote(name).s, names);
        }
        mask |= 1u << st;
    }
    h->on_states = mask;
    return 0;
}

static int h_retry_max(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    if (vcfg__rd_duration(l, s, &h->retry_max) != 0)
        return -1;
    if (h->retry_max <= 0)
        return vcfg__sfail(l, s, "must be longer than 0s");
    return 0;
}

static int h_name(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_name(l, s, VCFG_ACTION_NAME_MAX, &v) != 0)
        return -1;
    for (size_t i = 0; i + 1 < l->c->monitor.n_hooks; i++) {
        const char *o = l->c->monitor.hooks[i].name;
        if (o && !strcmp(o, v))
            return vcfg__sfail(l, s, "\"%s\" names another action already", v);
    }
    l->act_name[l->c->monitor.n_hooks - 1] = s;
    return vcfg__set_str(l, s, &cur_hook(l)->name, v);
}

/* The kind was read before the walk (m_hooks): here it is only accepted. */
static int h_kind(struct vcfg__ld *l, const config_setting_t *s)
{
    (void)l;
    (void)s;
    return 0;
}

static int h_undo(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_bool(l, s, &cur_hook(l)->undo);
}

/* Reads a list of 1 to VCFG_MAX_MATCH strings into v (n of them), replacing what was there. */
static int rd_list(struct vcfg__ld *l, const config_setting_t *s, size_t max, char **v, size_t *n)
{
    size_t k = 0;
    if (vcfg__rd_strings(l, s, max, SIZE_MAX, &k) != 0)
        return -1;
    if (k == 0)
        return vcfg__sfail(l, s, "must not be empty (leave it out instead)");
    vcfg__free_strs(v, n);
    for (size_t i = 0; i < k; i++) {
        if (!(v[i] = strdup(vcfg__elem_str(s, i))))
            return vcfg__oom(l, s);
        *n = i + 1;
    }
    return 0;
}

static int h_nodes(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    return rd_list(l, s, VCFG_MAX_MATCH, h->nodes, &h->n_nodes);
}

static int h_checks(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    return rd_list(l, s, VCFG_MAX_MATCH, h->checks, &h->n_checks);
}

static int h_match(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || (size_t)(eq - v) > VIGIL_CUSTOM_KEY_MAX ||
        strlen(eq + 1) > VIGIL_CUSTOM_VAL_MAX)
        return vcfg__sfail(l, s, "\"%s\" must be KEY=VALUE, a custom status value (role=web)",
                           vigil_quote(v).s);
    struct vcfg_hook *h = cur_hook(l);
    free(h->match_key);
    free(h->match_value);
    h->match_key = strndup(v, (size_t)(eq - v));
    h->match_value = strdup(eq + 1);
    if (!h->match_key || !h->match_value)
        return vcfg__oom(l, s);
    return 0;
}

static int h_url(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
        return vcfg__sfail(l, s, "\"%s\" must be an http:// or https:// URL", vigil_quote(v).s);
    return vcfg__set_str(l, s, &cur_hook(l)->target, v);
}

static int h_socket(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (v[0] == '/')
        return vcfg__set_str(l, s, &cur_hook(l)->target, v);
    /*
     * A numeric address only: a host name would be looked up on the
     * monitor's loop at every call, and a slow DNS server would stall it.
     */
    const char *colon = strrchr(v, ':');
    char host[64] = "";
    size_t hl = colon ? (size_t)(colon - v) : 0;
    if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']')
        snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), v + 1);
    else if (hl > 0 && hl < sizeof(host))
        snprintf(host, sizeof(host), "%.*s", (int)hl, v);
    unsigned char buf[16];
    bool numeric = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!numeric || !colon[1] || *end || port < 1 || port > 65535)
        return vcfg__sfail(l, s,
                           "\"%s\" must be a unix socket's absolute path or IP:PORT of "
                           "HAProxy's runtime API (a numeric address: 127.0.0.1:9999, [::1]:9999)",
                           vigil_quote(v).s);
    return vcfg__set_str(l, s, &cur_hook(l)->target, v);
}

static int h_servers(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    if (rd_list(l, s, VCFG_MAX_MATCH, h->servers, &h->n_servers) != 0)
        return -1;
    for (size_t i = 0; i < h->n_servers; i++) {
        const char *v = h->servers[i], *slash = strchr(v, '/');
        if (!slash || slash == v || !slash[1] || strchr(slash + 1, '/') || strpbrk(v, " \t;\n"))
            return vcfg__sfail(l, config_setting_get_elem(s, (unsigned)i),
                               "\"%s\" must be BACKEND/SERVER (%%n stands for the node id)",
                               vigil_quote(v).s);
    }
    return 0;
}

static int h_server_key(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (!v[0] || strlen(v) > VIGIL_CUSTOM_KEY_MAX)
        return vcfg__sfail(l, s, "must be a custom status key (1 to %d characters)",
                           VIGIL_CUSTOM_KEY_MAX);
    return vcfg__set_str(l, s, &cur_hook(l)->server_key, v);
}

static int h_mode(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (strcmp(v, "maint") && strcmp(v, "drain"))
        return vcfg__sfail(l, s, "must be \"maint\" or \"drain\", not \"%s\"", vigil_quote(v).s);
    cur_hook(l)->drain = !strcmp(v, "drain");
    return 0;
}

static int h_secret_file(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    return vcfg__set_path(l, s, &cur_hook(l)->secret_file, v);
}

static int h_labels(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    if (rd_list(l, s, VCFG_MAX_LABELS, h->labels, &h->n_labels) != 0)
        return -1;
    for (size_t i = 0; i < h->n_labels; i++) {
        const char *v = h->labels[i], *eq = strchr(v, '=');
        bool ok = eq && eq > v && (isalpha((unsigned char)v[0]) || v[0] == '_');
        for (const char *p = v; ok && p < eq; p++)
            ok = isalnum((unsigned char)*p) || *p == '_';
        if (!ok)
            return vcfg__sfail(l, config_setting_get_elem(s, (unsigned)i),
                               "\"%s\" must be NAME=VALUE with a Prometheus label name",
                               vigil_quote(v).s);
    }
    return 0;
}

static int h_repeat(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    if (vcfg__rd_duration(l, s, &h->repeat) != 0)
        return -1;
    if (h->repeat < VIGIL_NSEC_PER_SEC)
        return vcfg__sfail(l, s, "must be at least 1s");
    return 0;
}

static int h_restart_wait(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    if (vcfg__rd_duration(l, s, &h->restart_wait) != 0)
        return -1;
    if (h->restart_wait <= 0)
        return vcfg__sfail(l, s, "must be longer than 0s");
    return 0;
}

static int h_reset_after(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    if (vcfg__rd_duration(l, s, &h->reset_after) != 0)
        return -1;
    if (h->reset_after <= 0)
        return vcfg__sfail(l, s, "must be longer than 0s");
    return 0;
}

static int h_escalate(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    l->act_escalate[l->c->monitor.n_hooks - 1] = s;
    return vcfg__set_str(l, s, &cur_hook(l)->escalate, v);
}

/* The defaults of an action of kind k (docs/actions.md). */
static void kind_defaults(struct vcfg_hook *h, enum vcfg_act_kind k)
{
    vcfg_hook_default(h);
    h->kind = k;
    if (k == VCFG_ACT_HAPROXY || k == VCFG_ACT_ALERTMANAGER) {
        h->on_states = 1u << VIGIL_STATE_DEAD;
        h->undo = true;
    }
    if (k != VCFG_ACT_EXEC) {
        h->retries = ACT_RETRIES_DEFAULT;
        h->retry_max = ACT_RETRY_MAX_DEFAULT;
    }
    if (k == VCFG_ACT_HAPROXY)
        h->timeout = ACT_HAPROXY_TIMEOUT;
    if (k == VCFG_ACT_RESTART) {
        /* CrashLoopBackOff: 10 s doubling to 5 min; five failed restarts and it escalates. */
        h->on_states = 1u << VIGIL_STATE_DEAD;
        h->retries = ACT_RESTART_RETRIES;
        h->retry_delay = ACT_RESTART_BACKOFF;
        h->retry_max = ACT_RESTART_BACKOFF_MAX;
        h->restart_wait = ACT_RESTART_WAIT;
        h->reset_after = ACT_RESTART_RESET;
        h->timeout = ACT_RESTART_BACKOFF_MAX + ACT_RESTART_WAIT + 60 * VIGIL_NSEC_PER_SEC;
    }
}

/* Settings that only some kinds take: a mistake when given to another kind. */
static int kind_fields(struct vcfg__ld *l, const config_setting_t *g, const struct vcfg_hook *h)
{
    static const struct {
        const char *name;
        unsigned kinds; /* bit per kind */
    } only[] = {
        {"command", (1u << VCFG_ACT_EXEC) | (1u << VCFG_ACT_RESTART)},
        {"restart_wait", 1u << VCFG_ACT_RESTART},
        {"reset_after", 1u << VCFG_ACT_RESTART},
        {"escalate", 1u << VCFG_ACT_RESTART},
        {"socket", 1u << VCFG_ACT_HAPROXY},
        {"servers", 1u << VCFG_ACT_HAPROXY},
        {"server_key", 1u << VCFG_ACT_HAPROXY},
        {"mode", 1u << VCFG_ACT_HAPROXY},
        {"url", (1u << VCFG_ACT_WEBHOOK) | (1u << VCFG_ACT_ALERTMANAGER)},
        {"secret_file", 1u << VCFG_ACT_WEBHOOK},
        {"labels", 1u << VCFG_ACT_ALERTMANAGER},
        {"repeat", 1u << VCFG_ACT_ALERTMANAGER},
    };
    for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++) {
        const config_setting_t *m = config_setting_get_member(g, only[i].name);
        if (m && !(only[i].kinds & (1u << h->kind)))
            return vcfg__sfail(l, m, "does not apply to a %s action", vcfg_act_kind_name(h->kind));
    }
    switch (h->kind) {
    case VCFG_ACT_EXEC:
    case VCFG_ACT_RESTART:
        if (h->argv[0] == NULL)
            return vcfg__sfail(l, g, "has no command (command = [ \"/path/to/program\", ... ])");
        break;
    case VCFG_ACT_HAPROXY:
        if (!h->target)
            return vcfg__sfail(l, g, "has no socket (socket = \"/run/haproxy/admin.sock\")");
        if (!h->n_servers && !h->server_key)
            return vcfg__sfail(l, g,
                               "names no server (servers = [ \"BACKEND/%%n\" ] or server_key)");
        break;
    case VCFG_ACT_WEBHOOK:
    case VCFG_ACT_ALERTMANAGER:
        if (!h->target)
            return vcfg__sfail(l, g, "has no url");
        break;
    }
    if (h->undo && h->on_states == 0)
        return vcfg__sfail(l, g, "has undo = true but no states to undo (on = [ \"dead\" ])");
    if (h->undo && (h->on_states & (1u << VIGIL_STATE_ALIVE)))
        return vcfg__sfail(l, g, "has undo = true for \"alive\": undo runs on the way back to it");
    return 0;
}

static int m_hooks(struct vcfg__ld *l, const config_setting_t *s)
{
    static const struct vcfg__field fields[] = {
        {"command", h_command},
        {"timeout", h_timeout},
        {"on", h_on},
        {"retries", h_retries},
        {"retry_delay", h_retry_delay},
        {"retry_max", h_retry_max},
        {"kind", h_kind},
        {"name", h_name},
        {"undo", h_undo},
        {"nodes", h_nodes},
        {"checks", h_checks},
        {"match", h_match},
        {"socket", h_socket},
        {"url", h_url},
        {"servers", h_servers},
        {"server_key", h_server_key},
        {"mode", h_mode},
        {"secret_file", h_secret_file},
        {"labels", h_labels},
        {"repeat", h_repeat},
        {"restart_wait", h_restart_wait},
        {"reset_after", h_reset_after},
        {"escalate", h_escalate},
    };
    struct vcfg_monitor *m = &l->c->monitor;
    /* An empty array, "hooks = [ ];", says "no hooks" as well as "( )". */
    bool empty_array = config_setting_type(s) == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0;
    if (config_setting_type(s) != CONFIG_TYPE_LIST && !empty_array)
        return vcfg__wrong_type(l, s, "a list of groups ( { kind = \"...\"; ... }, ... )");
    /* monitor.hooks and monitor.actions make one list, in the order of the file. */
    if (!l->actions_seen) {
        for (size_t i = 0; i < m->n_hooks; i++)
            vcfg_hook_free(&m->hooks[i]);
        m->n_hooks = 0;
        l->actions_seen = true;
    }
    size_t len = (size_t)config_setting_length(s);
    if (len > VCFG_MAX_HOOKS - m->n_hooks)
        return vcfg__sfail(l, s, "makes %zu actions; at most %d are allowed", len + m->n_hooks,
                           VCFG_MAX_HOOKS);
    for (size_t i = 0; i < len; i++) {
        const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
        struct vcfg_hook *h = &m->hooks[m->n_hooks++];
        vcfg_hook_default(h);
        if (config_setting_type(g) != CONFIG_TYPE_GROUP)
            return vcfg__wrong_type(l, g, "a group { ... }");
        /* The kind first: the defaults of the other settings depend on it. */
        int kind = VCFG_ACT_EXEC;
        const config_setting_t *ks = config_setting_get_member(g, "kind");
        if (ks) {
            const char *v = NULL;
            if (vcfg__rd_string(l, ks, &v) != 0)
                return -1;
            if ((kind = vcfg_act_kind_parse(v)) < 0)
                return vcfg__sfail(l, ks,
                                   "\"%s\" is not a kind of action (exec, haproxy, webhook, "
                                   "alertmanager, restart)",
                                   vigil_quote(v).s);
        }
        kind_defaults(h, (enum vcfg_act_kind)kind);
        if (vcfg__walk(l, g, fields, sizeof(fields) / sizeof(fields[0])) != 0)
            return -1;
        if (kind_fields(l, g, h) != 0)
            return -1;
    }
    return 0;
}

/*
 * The checks of the whole list of actions, once monitor.hooks and
 * monitor.actions are both read (they make one list, in the order of the
 * file): no name is another action's default name ("KIND-N", by its place
 * in the list), and escalate names a webhook or alertmanager action of the
 * list.
 */
static int actions_check(struct vcfg__ld *l)
{
    const struct vcfg_monitor *m = &l->c->monitor;
    char nm[VCFG_ACTION_NAME_MAX + 24];
    for (size_t i = 0; i < m->n_hooks; i++) {
        const char *name = m->hooks[i].name;
        for (size_t j = 0; name && j < m->n_hooks; j++)
            if (!m->hooks[j].name && !strcmp(vcfg_hook_name(&m->hooks[j], j, nm, sizeof(nm)), name))
                return vcfg__sfail(l, l->act_name[i],
                                   "\"%s\" names another action already (the default name of "
                                   "action %zu)",
                                   name, j + 1);
    }
    for (size_t i = 0; i < m->n_hooks; i++) {
        const struct vcfg_hook *h = &m->hooks[i];
        if (!h->escalate)
            continue;
        const struct vcfg_hook *t = NULL;
        for (size_t j = 0; j < m->n_hooks && !t; j++)
            if (!strcmp(vcfg_hook_name(&m->hooks[j], j, nm, sizeof(nm)), h->escalate))
                t = &m->hooks[j];
        if (!t || (t->kind != VCFG_ACT_WEBHOOK && t->kind != VCFG_ACT_ALERTMANAGER))
            return vcfg__sfail(l, l->act_escalate[i],
                               "\"%s\" names no webhook or alertmanager action of the list",
                               vigil_quote(h->escalate).s);
    }
    return 0;
}

/* ---- monitor.groups ---- */

static struct vcfg_group *cur_group(struct vcfg__ld *l)
{
    return &l->c->monitor.groups[l->c->monitor.n_groups - 1];
}

static int g_name(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (!vigil_id_valid(v, strlen(v)))
        return vcfg__sfail(l, s, "\"%s\" is not a valid name (a node id's characters)",
                           vigil_quote(v).s);
    for (size_t i = 0; i + 1 < l->c->monitor.n_groups; i++)
        if (l->c->monitor.groups[i].name && !strcmp(l->c->monitor.groups[i].name, v))
            return vcfg__sfail(l, s, "\"%s\" names another group already", v);
    return vcfg__set_str(l, s, &cur_group(l)->name, v);
}

static int g_nodes(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_group *g = cur_group(l);
    size_t n = 0;
    if (vcfg__rd_strings(l, s, VCFG_MAX_MEMBERS, SIZE_MAX, &n) != 0)
        return -1;
    if (n < 2)
        return vcfg__sfail(l, s, "needs at least two nodes (a primary and a replica)");
    for (size_t i = 0; i < n; i++) {
        const char *v = vcfg__elem_str(s, i);
        if (!vigil_id_valid(v, strlen(v)))
            return vcfg__sfail(l, config_setting_get_elem(s, (unsigned)i),
                               "\"%s\" is not a node id", vigil_quote(v).s);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(v, vcfg__elem_str(s, j)))
                return vcfg__sfail(l, config_setting_get_elem(s, (unsigned)i),
                                   "\"%s\" is listed twice", v);
    }
    vcfg__free_strs(g->nodes, &g->n_nodes);
    for (size_t i = 0; i < n; i++) {
        if (!(g->nodes[i] = strdup(vcfg__elem_str(s, i))))
            return vcfg__oom(l, s);
        g->n_nodes = i + 1;
    }
    return 0;
}

static int g_priority(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_group *g = cur_group(l);
    if (config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST)
        return vcfg__wrong_type(l, s, "a list of integers, one per node");
    int n = config_setting_length(s);
    if (n < 1 || n > VCFG_MAX_MEMBERS)
        return vcfg__sfail(l, s, "must have one integer per node");
    for (int i = 0; i < n; i++) {
        long long v = 0;
        if (vcfg__rd_int(l, config_setting_get_elem(s, (unsigned)i), -1000000, 1000000, &v) != 0)
            return -1;
        g->priority[i] = (int)v;
    }
    /* Checked against the nodes once the group is read (they may come after). */
    l->group_priorities = (size_t)n;
    return 0;
}

static int g_primary(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    return vcfg__set_str(l, s, &cur_group(l)->primary, v);
}

static int g_rank_key(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (!v[0] || strlen(v) > VIGIL_CUSTOM_KEY_MAX)
        return vcfg__sfail(l, s, "must be a custom status key");
    return vcfg__set_str(l, s, &cur_group(l)->rank_key, v);
}

static int g_preempt(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_bool(l, s, &cur_group(l)->preempt);
}

static int g_argv(struct vcfg__ld *l, const config_setting_t *s, char **argv)
{
    size_t n = 0;
    if (vcfg__rd_strings(l, s, VCFG_MAX_ARGV, 1, &n) != 0)
        return -1;
    if (n == 0)
        return vcfg__sfail(l, s, "must name a program (and its arguments)");
    const char *prog = vcfg__elem_str(s, 0);
    if (prog[0] != '/' && strchr(prog, '/') != NULL)
        return vcfg__sfail(l, s, "\"%s\" must be an absolute path or a program name",
                           vigil_quote(prog).s);
    for (size_t i = 0; i < VCFG_MAX_ARGV + 1; i++) {
        free(argv[i]);
        argv[i] = NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!(argv[i] = strdup(vcfg__elem_str(s, i))))
            return vcfg__oom(l, s);
    return 0;
}

static int g_promote(struct vcfg__ld *l, const config_setting_t *s)
{
    return g_argv(l, s, cur_group(l)->promote);
}

static int g_demote(struct vcfg__ld *l, const config_setting_t *s)
{
    return g_argv(l, s, cur_group(l)->demote);
}

static int g_timeout(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_group *g = cur_group(l);
    if (vcfg__rd_duration(l, s, &g->timeout) != 0)
        return -1;
    if (g->timeout <= 0)
        return vcfg__sfail(l, s, "must be longer than 0s");
    return 0;
}

static int m_checks(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    return vcfg__ld_checks(l, s, false, &m->checks, &m->n_checks, VCFG_MAX_CHECKS, false);
}

static int m_poll_only(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    size_t n = 0;
    if (vcfg__rd_strings(l, s, VCFG_MAX_NODES, SIZE_MAX, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *id = config_setting_get_string(e);
        if (!vigil_id_valid(id, strlen(id)))
            return vcfg__sfail(
                l, e, "\"%s\" is not a valid node id (1 to %d characters of A-Z a-z 0-9 . _ -)",
                vigil_quote(id).s, VIGIL_ID_MAX);
    }
    vcfg__free_strs(m->poll_only, &m->n_poll_only);
    for (size_t i = 0; i < n; i++) {
        if (!(m->poll_only[i] = strdup(vcfg__elem_str(s, i))))
            return vcfg__oom(l, s);
        m->n_poll_only = i + 1;
    }
    return 0;
}

static int m_groups(struct vcfg__ld *l, const config_setting_t *s)
{
    static const struct vcfg__field fields[] = {
        {"name", g_name},       {"nodes", g_nodes},       {"priority", g_priority},
        {"primary", g_primary}, {"rank_key", g_rank_key}, {"preempt", g_preempt},
        {"promote", g_promote}, {"demote", g_demote},     {"timeout", g_timeout},
    };
    struct vcfg_monitor *m = &l->c->monitor;
    bool empty_array = config_setting_type(s) == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0;
    if (config_setting_type(s) != CONFIG_TYPE_LIST && !empty_array)
        return vcfg__wrong_type(l, s, "a list of groups ( { name = \"...\"; ... }, ... )");
    size_t len = (size_t)config_setting_length(s);
    if (len > VCFG_MAX_GROUPS)
        return vcfg__sfail(l, s, "holds %zu groups; at most %d are allowed", len, VCFG_MAX_GROUPS);
    for (size_t i = 0; i < m->n_groups; i++)
        vcfg_group_free(&m->groups[i]);
    m->n_groups = 0;
    for (size_t i = 0; i < len; i++) {
        const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(g) != CONFIG_TYPE_GROUP)
            return vcfg__wrong_type(l, g, "a group { ... }");
        struct vcfg_group *gr = &m->groups[m->n_groups++];
        memset(gr, 0, sizeof(*gr));
        gr->timeout = 30 * VIGIL_NSEC_PER_SEC;
        l->group_priorities = 0;
        if (vcfg__walk(l, g, fields, sizeof(fields) / sizeof(fields[0])) != 0)
            return -1;
        if (!gr->name)
            return vcfg__sfail(l, g, "has no name");
        if (gr->n_nodes == 0)
            return vcfg__sfail(l, g, "has no nodes (nodes = [ \"db1\", \"db2\" ])");
        if (!gr->promote[0])
            return vcfg__sfail(l, g, "has no promote command (promote = [ \"/path\", ... ])");
        if (l->group_priorities && l->group_priorities != gr->n_nodes)
            return vcfg__sfail(l, config_setting_get_member(g, "priority"),
                               "has %zu entries for %zu nodes", l->group_priorities, gr->n_nodes);
        if (gr->primary) {
            bool member = false;
            for (size_t j = 0; j < gr->n_nodes; j++)
                member |= !strcmp(gr->nodes[j], gr->primary);
            if (!member)
                return vcfg__sfail(l, config_setting_get_member(g, "primary"),
                                   "\"%s\" is not one of the group's nodes", gr->primary);
        }
    }
    return 0;
}

static int lg_format(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (!strcmp(v, "text"))
        l->c->monitor.log_format = VCFG_LOG_TEXT;
    else if (!strcmp(v, "json"))
        l->c->monitor.log_format = VCFG_LOG_JSON;
    else
        return vcfg__sfail(l, s, "must be \"text\" or \"json\", not \"%s\"", vigil_quote(v).s);
    return 0;
}

static int lg_level(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    int lv = vcfg_log_level_parse(v);
    if (lv < 0)
        return vcfg__sfail(l, s,
                           "must be \"error\", \"warn\", \"info\" or \"debug\", not \"%.32s\"", v);
    l->c->monitor.log_level = (enum vcfg_log_level)lv;
    return 0;
}

int vcfg_log_level_parse(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, names[i]))
            return i;
    return -1;
}

static int lg_file(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    return vcfg__set_path(l, s, &l->c->monitor.log_file, v);
}

static int m_log(struct vcfg__ld *l, const config_setting_t *s)
{
    static const struct vcfg__field fields[] = {
        {"format", lg_format},
        {"file", lg_file},
        {"level", lg_level},
    };
    return vcfg__walk(l, s, fields, sizeof(fields) / sizeof(fields[0]));
}

/* The detector block: settings of every kind, each allowed only with its kinds. */
static const char *kind_name(enum vigil_detector_kind k)
{
    return k == VIGIL_DETECTOR_FIXED ? "fixed" : k == VIGIL_DETECTOR_GRID ? "grid" : "phi";
}

/* Bits of the kinds a setting belongs to. */
#define K_FIXED (1u << VIGIL_DETECTOR_FIXED)
#define K_PHI   (1u << VIGIL_DETECTOR_PHI)
#define K_GRID  (1u << VIGIL_DETECTOR_GRID)

static int want_kinds(struct vcfg__ld *l, const config_setting_t *s, unsigned kinds)
{
    enum vigil_detector_kind have = l->c->monitor.core.detector.kind;
    char names[48] = "";
    if (kinds & (1u << have))
        return 0;
    for (unsigned k = 0; k <= VIGIL_DETECTOR_GRID; k++) {
        if (!(kinds & (1u << k)))
            continue;
        if (names[0] != '\0')
            strcat(names, " and ");
        strcat(names, kind_name((enum vigil_detector_kind)k));
    }
    return vcfg__sfail(l, s, "belongs to the %s detector%s, but the detector type is \"%s\"%s",
                       names, strchr(names, ' ') ? "s" : "", kind_name(have),
                       l->c->origin[O_M_DETECTOR].line ? "" : " (the default; set type)");
}

static int want_kind(struct vcfg__ld *l, const config_setting_t *s, enum vigil_detector_kind k)
{
    return want_kinds(l, s, 1u << k);
}

static int d_type(struct vcfg__ld *l, const config_setting_t *s)
{
    (void)l;
    (void)s;
    return 0; /* read first, by m_detector */
}

static int d_after(struct vcfg__ld *l, const config_setting_t *s, double *thr, int slot)
{
    vigil_time_t v = 0;
    if (want_kind(l, s, VIGIL_DETECTOR_FIXED) != 0 || vcfg__rd_duration(l, s, &v) != 0)
        return -1;
    /* The fixed detector's level is seconds since the last heartbeat. */
    *thr = (double)v / 1e9;
    vcfg__set_origin(l, slot, s, vcfg__print_dbl(*thr));
    return 0;
}

static int d_suspect_after(struct vcfg__ld *l, const config_setting_t *s)
{
    return d_after(l, s, &l->c->monitor.core.detector.suspect_threshold, O_M_SUSPECT);
}

static int d_dead_after(struct vcfg__ld *l, const config_setting_t *s)
{
    return d_after(l, s, &l->c->monitor.core.detector.dead_threshold, O_M_DEAD);
}

static int d_threshold(struct vcfg__ld *l, const config_setting_t *s, double *thr, int slot)
{
    /* Phi and the grid share the scale: -log10 of a probability. */
    if (want_kinds(l, s, K_PHI | K_GRID) != 0 || vcfg__rd_number(l, s, thr) != 0)
        return -1;
    vcfg__set_origin(l, slot, s, vcfg__print_dbl(*thr));
    return 0;
}

static int d_suspect_threshold(struct vcfg__ld *l, const config_setting_t *s)
{
    return d_threshold(l, s, &l->c->monitor.core.detector.suspect_threshold, O_M_SUSPECT);
}

static int d_dead_threshold(struct vcfg__ld *l, const config_setting_t *s)
{
    return d_threshold(l, s, &l->c->monitor.core.detector.dead_threshold, O_M_DEAD);
}

static int d_phi_duration(struct vcfg__ld *l, const config_setting_t *s, vigil_time_t *v, int slot)
{
    if (want_kind(l, s, VIGIL_DETECTOR_PHI) != 0 || vcfg__rd_duration(l, s, v) != 0)
        return -1;
    vcfg__set_origin(l, slot, s, vcfg__print_int(*v));
    return 0;
}

static int d_first_estimate(struct vcfg__ld *l, const config_setting_t *s)
{
    return d_phi_duration(l, s, &l->c->monitor.core.detector.first_estimate, O_M_FIRST);
}

static int d_min_std_dev(struct vcfg__ld *l, const config_setting_t *s)
{
    vigil_time_t *v = &l->c->monitor.core.detector.min_std_dev;
    /* Phi's floor on the intervals' deviation, the grid's on the arrivals' jitter. */
    if (want_kinds(l, s, K_PHI | K_GRID) != 0 || vcfg__rd_duration(l, s, v) != 0)
        return -1;
    vcfg__set_origin(l, O_M_MIN_SD, s, vcfg__print_int(*v));
    return 0;
}

static int d_margin(struct vcfg__ld *l, const config_setting_t *s)
{
    vigil_time_t *v = &l->c->monitor.core.detector.margin;
    if (want_kind(l, s, VIGIL_DETECTOR_GRID) != 0 || vcfg__rd_duration(l, s, v) != 0)
        return -1;
    vcfg__set_origin(l, O_M_MARGIN, s, vcfg__print_int(*v));
    return 0;
}

static int d_loss_floor(struct vcfg__ld *l, const config_setting_t *s)
{
    double *v = &l->c->monitor.core.detector.loss_floor;
    if (want_kind(l, s, VIGIL_DETECTOR_GRID) != 0 || vcfg__rd_number(l, s, v) != 0)
        return -1;
    if (!(*v >= VIGIL_GRID_LOSS_FLOOR_MIN && *v <= VIGIL_GRID_LOSS_FLOOR_MAX))
        return vcfg__sfail(l, s, "must be between 0.000001 and 0.5, not %g", *v);
    vcfg__set_origin(l, O_M_LOSS_FLOOR, s, vcfg__print_dbl(*v));
    return 0;
}

static int d_loss_window(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (want_kind(l, s, VIGIL_DETECTOR_GRID) != 0 ||
        vcfg__rd_int(l, s, VIGIL_GRID_WINDOW_MIN, VIGIL_GRID_WINDOW_MAX, &v) != 0)
        return -1;
    l->c->monitor.core.detector.loss_window = (uint32_t)v;
    vcfg__set_origin(l, O_M_LOSS_WINDOW, s, vcfg__print_int(v));
    return 0;
}

static int d_acceptable_pause(struct vcfg__ld *l, const config_setting_t *s)
{
    return d_phi_duration(l, s, &l->c->monitor.core.detector.acceptable_pause, O_M_ACC_PAUSE);
}

static int d_window(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    /*
     * Phi decides on the history and the fixed detector reports its
     * statistics; the grid keeps none.
     */
    if (want_kinds(l, s, K_PHI | K_FIXED) != 0 ||
        vcfg__rd_int(l, s, VIGIL_PHI_WINDOW_MIN, VIGIL_PHI_WINDOW_MAX, &v) != 0)
        return -1;
    l->c->monitor.core.detector.window = (uint32_t)v;
    vcfg__set_origin(l, O_M_WINDOW, s, vcfg__print_int(v));
    return 0;
}

/*
 * Reads the detector block, or (d NULL) only applies a new heartbeat
 * interval: the defaults of the detector kind are recomputed for the
 * interval, then the explicit settings override them.
 */
static int m_detector(struct vcfg__ld *l, const config_setting_t *d)
{
    static const struct vcfg__field fields[] = {
        {"type", d_type},
        {"suspect_after", d_suspect_after},
        {"dead_after", d_dead_after},
        {"suspect_threshold", d_suspect_threshold},
        {"dead_threshold", d_dead_threshold},
        {"first_estimate", d_first_estimate},
        {"min_std_dev", d_min_std_dev},
        {"acceptable_pause", d_acceptable_pause},
        {"window", d_window},
        {"margin", d_margin},
        {"loss_floor", d_loss_floor},
        {"loss_window", d_loss_window},
    };
    struct vcfg_monitor *m = &l->c->monitor;
    enum vigil_detector_kind kind = m->core.detector.kind;
    const config_setting_t *type = NULL;
    if (d != NULL) {
        if (config_setting_type(d) != CONFIG_TYPE_GROUP)
            return vcfg__wrong_type(l, d, "a group { type = \"phi\"; ... }");
        type = config_setting_get_member(d, "type");
    }
    if (type != NULL) {
        const char *v = NULL;
        if (vcfg__rd_string(l, type, &v) != 0)
            return -1;
        if (!strcmp(v, "phi"))
            kind = VIGIL_DETECTOR_PHI;
        else if (!strcmp(v, "fixed"))
            kind = VIGIL_DETECTOR_FIXED;
        else if (!strcmp(v, "grid"))
            kind = VIGIL_DETECTOR_GRID;
        else
            return vcfg__sfail(l, type, "must be \"phi\", \"grid\" or \"fixed\", not \"%s\"",
                               vigil_quote(v).s);
        vcfg__set_origin(l, O_M_DETECTOR, type, vcfg__print_int(kind));
    }
    if (type != NULL || l->interval_set)
        vigil_detector_config_default(&m->core.detector, kind, m->interval);
    if (d == NULL)
        return 0;
    return vcfg__walk(l, d, fields, sizeof(fields) / sizeof(fields[0]));
}

static int m_detector_later(struct vcfg__ld *l, const config_setting_t *s)
{
    (void)l;
    (void)s;
    return 0; /* read after the walk, when the heartbeat interval is known */
}

int vcfg__ld_monitor(struct vcfg__ld *l, const config_setting_t *s)
{
    static const struct vcfg__field fields[] = {
        {"listen", m_listen},
        {"api", m_api},
        {"api_token_file", m_api_token_file},
        {"api_tls_cert", m_api_tls_cert},
        {"api_tls_key", m_api_tls_key},
        {"key_file", m_key_file},
        {"insecure", m_insecure},
        {"encrypt", m_encrypt},
        {"max_ahead", m_max_ahead},
        {"state_file", m_state_file},
        {"state_flush", m_state_flush},
        {"state_dir", m_state_dir},
        {"name", m_name},
        {"etcd", m_etcd},
        {"peers", m_peers},
        {"heartbeat_interval", m_interval},
        {"auto_register", m_auto_register},
        {"adapt_interval", m_adapt_interval},
        {"max_nodes", m_max_nodes},
        {"receive_threads", m_receive_threads},
        {"receive_buffer_mb", m_receive_buffer_mb},
        {"startup_grace", m_startup_grace},
        {"rise", m_rise},
        {"pause_tolerance", m_pause_tolerance},
        {"detector", m_detector_later},
        {"nodes", m_nodes},
        {"hooks", m_hooks},
        {"actions", m_hooks},
        {"flap_damping", m_flap_damping},
        {"groups", m_groups},
        {"checks", m_checks},
        {"poll_only", m_poll_only},
        {"hook_queue", m_hook_queue},
        {"hook_queue_total", m_hook_queue_total},
        {"log", m_log},
        {"event_history", m_event_history},
        {"goals", m_goals},
    };
    if (vcfg__walk(l, s, fields, sizeof(fields) / sizeof(fields[0])) != 0)
        return -1;
    if (l->actions_seen && actions_check(l) != 0)
        return -1;
    return m_detector(l, config_setting_get_member(s, "detector"));
}
