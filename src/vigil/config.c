/*
 * Configuration of the vigil program: the embedded defaults and the
 * loading of the configuration file. The other config_*.c files hold the
 * rest of the layer (config_int.h lists them); config.h is its interface.
 *
 * The file is in libconfig syntax with two optional sections, "monitor" and
 * "agent" (docs/configuration.md lists every setting). The rule throughout
 * is that nothing is guessed: a setting the layer does not know is an
 * error (a typo must not silently fall back to a default), a value of the
 * wrong type is an error, and every error names the file, the line and
 * what is wrong, so that the program refuses to start with a message an
 * operator can act on.
 *
 * Loading happens in three steps. First the raw text is pre-scanned for
 * what libconfig 1.5 would get wrong (config_lex.c says what and why).
 * Then libconfig parses the text. Then every group is walked member by
 * member against a table of the settings it may hold (config_monitor.c,
 * config_agent.c), and each value is type-checked, range-checked and
 * stored.
 *
 * Relations between settings (a dead timeout shorter than two heartbeat
 * intervals, a suspicion threshold above the dead one, ...) are checked
 * later by vcfg_check (config_check.c), after command-line flags have been
 * applied on top of the file. To still name the file and the line of an
 * offending setting there, loading records each related setting's line
 * with a fingerprint of the value read; vcfg_check cites the line only
 * while the value is still that one, so that a flag that overrode a
 * setting is never blamed on the file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api.h"
#include "config_int.h"
#include "io/vio.h"
#include "holds.h"
#include "hooks.h"

/*
 * The largest configuration file read. 4096 declared nodes of 64
 * characters each, with comments, fit well under 1 MiB; 4 MiB leaves room
 * and still bounds what a wrong path (a log, a device) can make us read.
 */
#define FILE_MAX (4u << 20)

/* --- defaults ------------------------------------------------------------- */

static char *dup_or_flag(struct vcfg *c, const char *s)
{
    char *r = strdup(s);
    if (r == NULL)
        c->oom = true;
    return r;
}

vigil_time_t vcfg_pause_tolerance_auto(vigil_time_t interval)
{
    vigil_time_t t =
        interval > VCFG_PAUSE_TOLERANCE_AUTO_MAX / 2 ? VCFG_PAUSE_TOLERANCE_AUTO_MAX : 2 * interval;
    return t < VCFG_PAUSE_TOLERANCE_AUTO_MIN ? VCFG_PAUSE_TOLERANCE_AUTO_MIN : t;
}

void vcfg_init(struct vcfg *c)
{
    memset(c, 0, sizeof(*c));
    /*
     * The defaults of docs/configuration.md: heartbeats on every IPv4
     * address at vigil's port, the API on loopback only (reading it needs
     * no token), an agent that sends to a monitor on the same host.
     */
    struct vcfg_monitor *m = &c->monitor;
    m->listen[0] = dup_or_flag(c, VCFG_LISTEN_DEFAULT);
    m->n_listen = m->listen[0] != NULL ? 1 : 0;
    m->receive_threads = 1;
    m->receive_buffer_mb = 8;
    m->api = dup_or_flag(c, API_DEFAULT_ADDR);
    vigil_monitor_config_default(&m->core);
    m->interval = m->core.interval;
    m->pause_tolerance_auto = true;
    m->core.pause_tolerance = vcfg_pause_tolerance_auto(m->interval);
    m->startup_grace_auto = true;
    m->log_format = VCFG_LOG_TEXT;
    m->log_level = VCFG_LOG_INFO;
    m->log_file = NULL;
    m->event_history = VCFG_EVENT_HISTORY_DEFAULT;
    m->hook_queue = HOOK_QUEUE_DEFAULT;
    m->damping.on = true;
    m->damping.half_life = HOLDS_HALF_LIFE_DEFAULT;
    m->damping.penalty = HOLDS_PENALTY_DEFAULT;
    m->damping.suppress = HOLDS_SUPPRESS_DEFAULT;
    m->damping.reuse = HOLDS_REUSE_DEFAULT;
    m->hook_queue_total = HOOK_QUEUE_TOTAL_DEFAULT;
    m->state_flush = VCFG_STATE_FLUSH_DEFAULT;

    struct vcfg_agent *a = &c->agent;
    a->monitors[0] = dup_or_flag(c, VCFG_MONITOR_DEFAULT);
    a->n_monitors = a->monitors[0] != NULL ? 1 : 0;
    a->interval = VIGIL_SENDER_INTERVAL_DEFAULT;
    a->status_every = VIGIL_SENDER_STATUS_EVERY_DEFAULT;
    a->wire_version = VIGIL_WIRE_V2;
    vcfg_peer_default(&c->peer);
}

void vcfg_hook_default(struct vcfg_hook *h)
{
    memset(h, 0, sizeof(*h));
    h->timeout = HOOK_TIMEOUT_DEFAULT;
    h->retries = HOOK_RETRIES_DEFAULT;
    h->retry_delay = HOOK_RETRY_DELAY_DEFAULT;
}

static const char *const act_kind_names[VCFG_ACT_KINDS] = {"exec", "haproxy", "webhook",
                                                           "alertmanager", "restart"};

const char *vcfg_act_kind_name(enum vcfg_act_kind k)
{
    return (unsigned)k < VCFG_ACT_KINDS ? act_kind_names[k] : "?";
}

int vcfg_act_kind_parse(const char *s)
{
    for (int i = 0; i < VCFG_ACT_KINDS; i++)
        if (!strcmp(s, act_kind_names[i]))
            return i;
    return -1;
}

void vcfg_group_free(struct vcfg_group *g)
{
    free(g->name);
    free(g->primary);
    free(g->rank_key);
    for (size_t j = 0; j < g->n_nodes; j++)
        free(g->nodes[j]);
    for (size_t j = 0; j < VCFG_MAX_ARGV + 1; j++) {
        free(g->promote[j]);
        free(g->demote[j]);
    }
    memset(g, 0, sizeof(*g));
}

void vcfg_hook_free(struct vcfg_hook *h)
{
    for (size_t j = 0; j < VCFG_MAX_ARGV + 1; j++)
        free(h->argv[j]);
    for (size_t j = 0; j < h->n_nodes; j++)
        free(h->nodes[j]);
    for (size_t j = 0; j < h->n_checks; j++)
        free(h->checks[j]);
    for (size_t j = 0; j < h->n_servers; j++)
        free(h->servers[j]);
    for (size_t j = 0; j < h->n_labels; j++)
        free(h->labels[j]);
    free(h->name);
    free(h->match_key);
    free(h->match_value);
    free(h->target);
    free(h->server_key);
    free(h->secret_file);
    free(h->escalate);
    enum vcfg_act_kind k = h->kind;
    vcfg_hook_default(h);
    h->kind = k;
}

static bool dup_str(char **dst, const char *src)
{
    *dst = NULL;
    return !src || (*dst = strdup(src)) != NULL;
}

int vcfg_hook_copy(struct vcfg_hook *dst, const struct vcfg_hook *src)
{
    *dst = *src;
    /* Every pointer is replaced by a copy of its own (NULL until then), so that freeing is safe. */
    memset(dst->argv, 0, sizeof(dst->argv));
    memset(dst->nodes, 0, sizeof(dst->nodes));
    memset(dst->checks, 0, sizeof(dst->checks));
    memset(dst->servers, 0, sizeof(dst->servers));
    memset(dst->labels, 0, sizeof(dst->labels));
    dst->name = dst->match_key = dst->match_value = dst->target = NULL;
    dst->server_key = dst->secret_file = dst->escalate = NULL;
    bool ok = dup_str(&dst->name, src->name) && dup_str(&dst->match_key, src->match_key) &&
              dup_str(&dst->match_value, src->match_value) && dup_str(&dst->target, src->target) &&
              dup_str(&dst->server_key, src->server_key) &&
              dup_str(&dst->secret_file, src->secret_file) &&
              dup_str(&dst->escalate, src->escalate);
    for (size_t j = 0; ok && j < VCFG_MAX_ARGV && src->argv[j]; j++)
        ok = dup_str(&dst->argv[j], src->argv[j]);
    for (size_t j = 0; ok && j < src->n_nodes; j++)
        ok = dup_str(&dst->nodes[j], src->nodes[j]);
    for (size_t j = 0; ok && j < src->n_checks; j++)
        ok = dup_str(&dst->checks[j], src->checks[j]);
    for (size_t j = 0; ok && j < src->n_servers; j++)
        ok = dup_str(&dst->servers[j], src->servers[j]);
    for (size_t j = 0; ok && j < src->n_labels; j++)
        ok = dup_str(&dst->labels[j], src->labels[j]);
    if (!ok) {
        vcfg_hook_free(dst);
        return -1;
    }
    return 0;
}

const char *vcfg_hook_name(const struct vcfg_hook *h, size_t i, char *buf, size_t cap)
{
    if (h->name)
        snprintf(buf, cap, "%s", h->name);
    else
        snprintf(buf, cap, "%s-%zu", vcfg_act_kind_name(h->kind), i + 1);
    return buf;
}

void vcfg__free_strs(char **v, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        free(v[i]);
        v[i] = NULL;
    }
    *n = 0;
}

void vcfg_agent_free(struct vcfg_agent *a)
{
    free(a->listen);
    for (size_t i = 0; i < a->n_checks; i++)
        vcfg_check_free(&a->checks[i]);
    free(a->id);
    vcfg__free_strs(a->monitors, &a->n_monitors);
    free(a->status_file);
    free(a->generation_file);
    free(a->key_file);
    sodium_memzero(a->key, sizeof(a->key));
    memset(a, 0, sizeof(*a));
}

void vcfg_free(struct vcfg *c)
{
    if (c == NULL)
        return;
    struct vcfg_monitor *m = &c->monitor;
    free(c->path);
    vcfg__free_strs(m->listen, &m->n_listen);
    free(m->api);
    vcfg__free_strs(m->nodes, &m->n_nodes);
    for (size_t i = 0; i < m->n_hooks; i++)
        vcfg_hook_free(&m->hooks[i]);
    for (size_t i = 0; i < m->n_groups; i++)
        vcfg_group_free(&m->groups[i]);
    for (size_t i = 0; i < m->n_checks; i++)
        vcfg_check_free(&m->checks[i]);
    free(m->checks);
    m->checks = NULL;
    m->n_checks = 0;
    vcfg__free_strs(m->poll_only, &m->n_poll_only);
    vcfg_agent_free(&c->agent);
    free(m->log_file);
    free(m->state_file);
    free(m->state_dir);
    vcfg__free_strs(m->etcd, &m->n_etcd);
    vcfg__free_strs(m->peers, &m->n_peers);
    free(m->etcd_prefix);
    free(m->name);
    free(m->api_token_file);
    free(m->api_tls_cert);
    free(m->api_tls_key);
    vcfg_monitor_keys_clear(m);
    vcfg_peer_free(&c->peer);
    memset(c, 0, sizeof(*c));
}

/* --- loading ------------------------------------------------------------- */

static int load_string(struct vcfg *c, struct vio_fs *fs, const char *name, const char *text,
                       size_t len, char *err, size_t cap);

int vcfg_load_string(struct vcfg *c, const char *name, const char *text, size_t len, char *err,
                     size_t cap)
{
    return load_string(c, &vio_fs_real, name, text, len, err, cap);
}

static int load_string(struct vcfg *c, struct vio_fs *fs, const char *name, const char *text,
                       size_t len, char *err, size_t cap)
{
    static const struct vcfg__field top[] = {
        {"monitor", vcfg__ld_monitor},
        {"agent", vcfg__ld_agent},
        {"peer", vcfg__ld_peer},
    };
    if (c == NULL || name == NULL || (text == NULL && len > 0))
        return vcfg__errf(err, cap, "invalid arguments");
    if (c->oom)
        return vcfg__errf(err, cap, "%s: out of memory", name);
    char *path = strdup(name);
    if (path == NULL)
        return vcfg__errf(err, cap, "%s: out of memory", name);
    free(c->path);
    c->path = path;

    struct vcfg__ld l = {.c = c, .file = c->path, .err = err, .cap = cap, .fs = fs};
    const char *slash = strrchr(c->path, '/');
    l.dir_len = slash != NULL ? (size_t)(slash - c->path) + 1 : 0;

    if (len > FILE_MAX)
        return vcfg__errf(err, cap, "%s: larger than %u bytes; not a configuration file", name,
                          FILE_MAX);
    struct vcfg__scan sc;
    vcfg__prescan(text, len, &sc);
    if (sc.nul_line)
        return vcfg__errf(err, cap, "%s:%u: the file holds a NUL byte", name, sc.nul_line);
    if (sc.include_line)
        return vcfg__errf(err, cap, "%s:%u: @include is not supported: vigil reads one file", name,
                          sc.include_line);
    /* Found before libconfig parses: it would leak, accept, or recurse on these. */
    if (sc.open_line)
        return vcfg__errf(err, cap, "%s:%u: syntax error: unterminated string", name, sc.open_line);
    if (sc.string_line)
        return vcfg__errf(err, cap, "%s:%u: syntax error: unexpected string", name, sc.string_line);
    if (sc.deep_line)
        return vcfg__errf(err, cap, "%s:%u: syntax error: nested deeper than %d levels", name,
                          sc.deep_line, VCFG_NEST_MAX);

    char *buf = malloc(len + 1);
    if (buf == NULL)
        return vcfg__errf(err, cap, "%s: out of memory", name);
    if (len > 0)
        memcpy(buf, text, len);
    buf[len] = '\0';
    config_t cf;
    config_init(&cf);
    int rc = -1;
    if (!config_read_string(&cf, buf)) {
        const char *why = config_error_text(&cf);
        vcfg__errf(err, cap, "%s:%d: syntax error: %s", name, config_error_line(&cf),
                   why != NULL ? why : "unknown");
        goto out;
    }
    if (sc.int_line) {
        vcfg__errf(err, cap, "%s:%u: integer %s is out of range", name, sc.int_line, sc.int_text);
        goto out;
    }
    rc = vcfg__walk(&l, config_root_setting(&cf), top, sizeof(top) / sizeof(top[0]));
out:
    config_destroy(&cf);
    free(buf);
    return rc;
}

int vcfg_load(struct vcfg *c, const char *path, char *err, size_t cap)
{
    return vcfg_load_fs(c, &vio_fs_real, path, err, cap);
}

int vcfg_load_fs(struct vcfg *c, struct vio_fs *fs, const char *path, char *err, size_t cap)
{
    if (c == NULL || path == NULL)
        return vcfg__errf(err, cap, "invalid arguments");
    /* A file may be a pipe (-c <(...)): the read goes to the end, bounded by FILE_MAX. */
    char *buf = NULL;
    size_t len = 0;
    int rc = fs->ops->read(fs, path, FILE_MAX, &buf, &len);
    if (rc == -EFBIG)
        return vcfg__errf(err, cap, "%s: larger than %u bytes; not a configuration file", path,
                          FILE_MAX);
    if (rc)
        return vcfg__errf(err, cap, "%s: cannot open: %s", path, strerror(-rc));
    rc = load_string(c, fs, path, buf, len, err, cap);
    free(buf);
    return rc;
}
