/*
 * Health checks in the configuration: monitor.checks (polls of the nodes'
 * services, each naming its node) and agent.checks (the host's own
 * services, reported in the heartbeats). One reader for both; the kind
 * decides which settings a check may have, and a setting of another kind
 * is an error that names the kinds it belongs to (docs/checks.md).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "config_int.h"

static const char *const kind_names[] = {"tcp", "http", "exec", "ping"};

const char *vcfg_check_kind_name(enum vcfg_check_kind k)
{
    return (unsigned)k < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[k] : "?";
}

void vcfg_check_default(struct vcfg_check *c)
{
    memset(c, 0, sizeof(*c));
    c->interval = VCFG_CHECK_INTERVAL_DEFAULT;
    c->timeout = VCFG_CHECK_TIMEOUT_DEFAULT;
    c->rise = VCFG_CHECK_RISE_DEFAULT;
    c->fall = VCFG_CHECK_FALL_DEFAULT;
    c->tls_verify = true;
    c->critical_means_dead = -1;
}

void vcfg_check_free(struct vcfg_check *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->node);
    free(c->target);
    free(c->send);
    free(c->expect);
    free(c->url);
    free(c->method);
    vcfg__free_strs(c->headers, &c->n_headers);
    free(c->body);
    free(c->ca_file);
    for (size_t i = 0; i < VCFG_MAX_ARGV + 1; i++)
        free(c->argv[i]);
    vcfg_check_default(c);
}

static int dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (src && !(*dst = strdup(src)))
        return -1;
    return 0;
}

int vcfg_check_copy(struct vcfg_check *dst, const struct vcfg_check *src)
{
    *dst = *src;
    int bad = 0;
    bad |= dup_str(&dst->name, src->name);
    bad |= dup_str(&dst->node, src->node);
    bad |= dup_str(&dst->target, src->target);
    bad |= dup_str(&dst->send, src->send);
    bad |= dup_str(&dst->expect, src->expect);
    bad |= dup_str(&dst->url, src->url);
    bad |= dup_str(&dst->method, src->method);
    for (size_t i = 0; i < src->n_headers; i++)
        bad |= dup_str(&dst->headers[i], src->headers[i]);
    bad |= dup_str(&dst->body, src->body);
    bad |= dup_str(&dst->ca_file, src->ca_file);
    for (size_t i = 0; i < VCFG_MAX_ARGV + 1; i++)
        bad |= dup_str(&dst->argv[i], src->argv[i]);
    if (bad) {
        vcfg_check_free(dst);
        return -1;
    }
    return 0;
}

static int c_name(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_name(l, s, VCFG_CHECK_NAME_MAX, &v) != 0)
        return -1;
    return vcfg__set_str(l, s, &l->check->name, v);
}

static int c_node(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (!vigil_id_valid(v, strlen(v)))
        return vcfg__sfail(
            l, s, "\"%s\" is not a valid node id (1 to %d characters of A-Z a-z 0-9 . _ -)",
            vigil_quote(v).s, VIGIL_ID_MAX);
    return vcfg__set_str(l, s, &l->check->node, v);
}

/* The type was read before the walk: here it is only accepted. */
static int c_type(struct vcfg__ld *l, const config_setting_t *s)
{
    (void)l;
    (void)s;
    return 0;
}

static int c_target(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    /* A numeric address: checks never wait on a name lookup. */
    char host[64];
    const char *colon = strrchr(v, ':');
    bool ok = false;
    if (colon && colon > v && colon[1]) {
        size_t hl = (size_t)(colon - v);
        const char *h = v;
        if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
            h++;
            hl -= 2;
        }
        char *end = NULL;
        long port = strtol(colon + 1, &end, 10);
        unsigned char buf[16];
        if (hl < sizeof(host) && *end == '\0' && port > 0 && port < 65536) {
            memcpy(host, h, hl);
            host[hl] = '\0';
            ok = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
        }
    }
    if (!ok)
        return vcfg__sfail(l, s,
                           "\"%s\" must be a numeric address and port (\"10.0.0.5:5432\", "
                           "\"[fd00::5]:5432\")",
                           vigil_quote(v).s);
    return vcfg__set_str(l, s, &l->check->target, v);
}

static int c_send(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    return vcfg__set_str(l, s, &l->check->send, v);
}

static int c_expect(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (!v[0])
        return vcfg__sfail(l, s, "must not be empty (leave it out instead)");
    return vcfg__set_str(l, s, &l->check->expect, v);
}

static int c_url(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
        return vcfg__sfail(l, s, "\"%s\" must be an http:// or https:// URL", vigil_quote(v).s);
    return vcfg__set_str(l, s, &l->check->url, v);
}

static int c_method(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    size_t n = strlen(v);
    bool ok = n > 0 && n <= 16;
    for (size_t i = 0; ok && i < n; i++)
        ok = isupper((unsigned char)v[i]) != 0;
    if (!ok)
        return vcfg__sfail(l, s, "\"%s\" must be an HTTP method in capitals (GET, HEAD, ...)",
                           vigil_quote(v).s);
    return vcfg__set_str(l, s, &l->check->method, v);
}

static int c_headers(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_check *c = l->check;
    size_t k = 0;
    if (vcfg__rd_strings(l, s, VCFG_MAX_MATCH, SIZE_MAX, &k) != 0)
        return -1;
    for (size_t i = 0; i < k; i++) {
        const char *h = vcfg__elem_str(s, i);
        const char *colon = strchr(h, ':');
        if (!colon || colon == h || strpbrk(h, "\r\n"))
            return vcfg__sfail(l, config_setting_get_elem(s, (unsigned)i),
                               "\"%s\" must be \"Name: value\" on one line", vigil_quote(h).s);
    }
    vcfg__free_strs(c->headers, &c->n_headers);
    for (size_t i = 0; i < k; i++) {
        if (!(c->headers[i] = strdup(vcfg__elem_str(s, i))))
            return vcfg__oom(l, s);
        c->n_headers = i + 1;
    }
    return 0;
}

static int c_status(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_check *c = l->check;
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return vcfg__wrong_type(l, s, "a list of HTTP statuses ([200, 204])");
    size_t n = (size_t)config_setting_length(s);
    if (n == 0 || n > VCFG_CHECK_STATUS_MAX)
        return vcfg__sfail(l, s, "must name 1 to %d statuses", VCFG_CHECK_STATUS_MAX);
    for (size_t i = 0; i < n; i++) {
        long long v = 0;
        if (vcfg__rd_int(l, config_setting_get_elem(s, (unsigned)i), 100, 599, &v) != 0)
            return -1;
        c->status[i] = (int)v;
    }
    c->n_status = n;
    return 0;
}

static int c_body(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (!v[0])
        return vcfg__sfail(l, s, "must not be empty (leave it out instead)");
    return vcfg__set_str(l, s, &l->check->body, v);
}

static int c_tls_verify(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_bool(l, s, &l->check->tls_verify);
}

static int c_ca_file(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    return vcfg__set_path(l, s, &l->check->ca_file, v);
}

static int c_command(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_argv(l, s, l->check->argv);
}

static int rd_positive(struct vcfg__ld *l, const config_setting_t *s, vigil_time_t *out)
{
    if (vcfg__rd_duration(l, s, out) != 0)
        return -1;
    if (*out < VIGIL_NSEC_PER_MSEC)
        return vcfg__sfail(l, s, "must be 1ms or longer");
    return 0;
}

static int c_interval(struct vcfg__ld *l, const config_setting_t *s)
{
    return rd_positive(l, s, &l->check->interval);
}

static int c_timeout(struct vcfg__ld *l, const config_setting_t *s)
{
    return rd_positive(l, s, &l->check->timeout);
}

static int c_fastinter(struct vcfg__ld *l, const config_setting_t *s)
{
    return rd_positive(l, s, &l->check->fastinter);
}

static int c_downinter(struct vcfg__ld *l, const config_setting_t *s)
{
    return rd_positive(l, s, &l->check->downinter);
}

static int c_rise(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, 1, VCFG_CHECK_RISE_MAX, &v) != 0)
        return -1;
    l->check->rise = (uint32_t)v;
    return 0;
}

static int c_fall(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, 1, VCFG_CHECK_RISE_MAX, &v) != 0)
        return -1;
    l->check->fall = (uint32_t)v;
    return 0;
}

static int c_critical_means_dead(struct vcfg__ld *l, const config_setting_t *s)
{
    bool v = false;
    if (vcfg__rd_bool(l, s, &v) != 0)
        return -1;
    l->check->critical_means_dead = v ? 1 : 0;
    return 0;
}

/* Which kinds each setting belongs to (bit per kind; all: every kind). */
#define K_TCP  (1u << VCFG_CHECK_TCP)
#define K_HTTP (1u << VCFG_CHECK_HTTP)
#define K_EXEC (1u << VCFG_CHECK_EXEC)
#define K_PING (1u << VCFG_CHECK_PING)

static const struct {
    const char *name;
    unsigned kinds;
} owners[] = {
    {"target", K_TCP | K_PING}, {"send", K_TCP},     {"expect", K_TCP},   {"url", K_HTTP},
    {"method", K_HTTP},         {"headers", K_HTTP}, {"status", K_HTTP},  {"body", K_HTTP},
    {"tls_verify", K_HTTP},     {"ca_file", K_HTTP}, {"command", K_EXEC},
};

static int read_one(struct vcfg__ld *l, const config_setting_t *g, bool agent, struct vcfg_check *c)
{
    static const struct vcfg__field fields[] = {
        {"name", c_name},
        {"node", c_node},
        {"type", c_type},
        {"target", c_target},
        {"send", c_send},
        {"expect", c_expect},
        {"url", c_url},
        {"method", c_method},
        {"headers", c_headers},
        {"status", c_status},
        {"body", c_body},
        {"tls_verify", c_tls_verify},
        {"ca_file", c_ca_file},
        {"command", c_command},
        {"interval", c_interval},
        {"timeout", c_timeout},
        {"fastinter", c_fastinter},
        {"downinter", c_downinter},
        {"rise", c_rise},
        {"fall", c_fall},
        {"critical_means_dead", c_critical_means_dead},
    };
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return vcfg__wrong_type(l, g, "a group { name = \"...\"; type = \"...\"; ... }");
    const config_setting_t *ty = config_setting_get_member(g, "type");
    if (!ty)
        return vcfg__sfail(l, g, "has no type (type = \"tcp\", \"http\" or \"exec\")");
    const char *tv = NULL;
    if (vcfg__rd_string(l, ty, &tv) != 0)
        return -1;
    if (!strcmp(tv, "tcp"))
        c->kind = VCFG_CHECK_TCP;
    else if (!strcmp(tv, "http") || !strcmp(tv, "https"))
        c->kind = VCFG_CHECK_HTTP;
    else if (!strcmp(tv, "exec"))
        c->kind = VCFG_CHECK_EXEC;
    else if (!strcmp(tv, "ping") && !agent)
        c->kind = VCFG_CHECK_PING;
    else if (!strcmp(tv, "ping"))
        return vcfg__sfail(l, ty,
                           "is not for agents: a ping check is the monitor's poll of an agent");
    else
        return vcfg__sfail(l, ty, "\"%s\" is not a check type (tcp, http, https, exec, ping)",
                           vigil_quote(tv).s);
    for (size_t i = 0; i < sizeof(owners) / sizeof(owners[0]); i++) {
        const config_setting_t *m = config_setting_get_member(g, owners[i].name);
        if (m && !(owners[i].kinds & (1u << c->kind)))
            return vcfg__sfail(l, m, "is not a setting of %s checks", tv);
    }
    if (agent) {
        const config_setting_t *m = config_setting_get_member(g, "node");
        if (m)
            return vcfg__sfail(l, m, "is not an agent setting: an agent checks its own host");
    }
    l->check = c;
    if (vcfg__walk(l, g, fields, sizeof(fields) / sizeof(fields[0])) != 0)
        return -1;
    if (!c->name)
        return vcfg__sfail(l, g, "has no name (name = \"http\")");
    if (agent && strlen(c->name) > VCFG_CHECK_NAME_MAX - 6)
        return vcfg__sfail(l, config_setting_get_member(g, "name"),
                           "is longer than %d characters, the most an agent reports",
                           VCFG_CHECK_NAME_MAX - 6);
    if (!agent && !c->node)
        return vcfg__sfail(l, g, "has no node (node = \"web1\": the node whose service it checks)");
    if (c->kind == VCFG_CHECK_TCP && !c->target)
        return vcfg__sfail(l, g, "has no target (target = \"10.0.0.5:5432\")");
    if (c->kind == VCFG_CHECK_PING && !c->target)
        return vcfg__sfail(l, g, "has no target (target = \"10.0.0.5:7948\": the agent's listen)");
    if (c->kind == VCFG_CHECK_HTTP && !c->url)
        return vcfg__sfail(l, g, "has no url (url = \"http://10.0.0.5:8080/health\")");
    if (c->kind == VCFG_CHECK_EXEC && !c->argv[0])
        return vcfg__sfail(l, g, "has no command (command = [ \"/path/to/check\", ... ])");
    if (c->kind == VCFG_CHECK_HTTP && !strcmp(tv, "https") && strncmp(c->url, "https://", 8) != 0)
        return vcfg__sfail(l, config_setting_get_member(g, "url"),
                           "must be an https:// URL for an https check");
    if (c->send && !c->expect && c->kind == VCFG_CHECK_TCP) {
        /* Sending without expecting anything proves no more than connecting: allowed. */
    }
    return 0;
}

/* Sorting by (node, name), for the duplicate check in O(n log n). */
static const struct vcfg_check *sort_base;

static int by_node_name(const void *a, const void *b)
{
    const struct vcfg_check *x = &sort_base[*(const size_t *)a],
                            *y = &sort_base[*(const size_t *)b];
    int d = strcmp(x->node ? x->node : "", y->node ? y->node : "");
    if (d == 0)
        d = strcmp(x->name, y->name);
    if (d == 0)
        d = *(const size_t *)a < *(const size_t *)b ? -1 : 1;
    return d;
}

/* Two checks of one node with one name: the later one is the error. */
static int dup_names(struct vcfg__ld *l, const config_setting_t *s, const struct vcfg_check *c,
                     size_t n)
{
    if (n < 2)
        return 0;
    size_t *ix = malloc(n * sizeof(*ix));
    if (!ix)
        return vcfg__oom(l, s);
    for (size_t i = 0; i < n; i++)
        ix[i] = i;
    sort_base = c;
    qsort(ix, n, sizeof(*ix), by_node_name);
    for (size_t i = 1; i < n; i++) {
        const struct vcfg_check *a = &c[ix[i - 1]], *b = &c[ix[i]];
        if (!strcmp(a->node ? a->node : "", b->node ? b->node : "") && !strcmp(a->name, b->name)) {
            const config_setting_t *g = config_setting_get_elem(s, (unsigned)ix[i]);
            free(ix);
            return vcfg__sfail(l, config_setting_get_member(g, "name"),
                               b->node ? "\"%s\" names another check of this node already"
                                       : "\"%s\" names another check already",
                               b->name);
        }
    }
    free(ix);
    return 0;
}

int vcfg__ld_checks(struct vcfg__ld *l, const config_setting_t *s, bool agent,
                    struct vcfg_check **checks, size_t *n, size_t max, bool fixed)
{
    bool empty_array = config_setting_type(s) == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0;
    if (config_setting_type(s) != CONFIG_TYPE_LIST && !empty_array)
        return vcfg__wrong_type(l, s,
                                "a list of checks ( { name = \"...\"; type = \"...\"; ... } )");
    size_t len = (size_t)config_setting_length(s);
    if (len > max)
        return vcfg__sfail(l, s, "holds %zu checks; at most %zu are allowed", len, max);
    for (size_t i = 0; i < *n; i++)
        vcfg_check_free(&(*checks)[i]);
    *n = 0;
    if (!fixed) {
        free(*checks);
        *checks = NULL;
        if (len > 0 && !(*checks = calloc(len, sizeof(**checks))))
            return vcfg__oom(l, s);
    }
    for (size_t i = 0; i < len; i++) {
        struct vcfg_check *c = &(*checks)[i];
        vcfg_check_default(c);
        *n = i + 1;
        const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
        if (read_one(l, g, agent, c) != 0)
            return -1;
    }
    return dup_names(l, s, *checks, len);
}
