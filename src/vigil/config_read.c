/*
 * Reading settings out of libconfig's tree: typed readers that check a
 * value's type and range, and the walk of a group against the table of
 * members it may hold. Every failure writes "FILE:LINE: PATH what is
 * wrong" (PATH as in "monitor.hooks[0].timeout").
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "config_int.h"

/* Longest setting path in a message ("monitor.hooks[15].command[31]" and the like). */
#define PATH_MAX_LEN 160

/* Deepest nesting a setting path is built from; the schema nests four levels at most. */
#define PATH_DEPTH 8

/* "monitor.hooks[0].command[1]": the path of a setting, for messages. */
static const char *spath(const config_setting_t *s, char *buf, size_t cap)
{
    const config_setting_t *chain[PATH_DEPTH];
    size_t depth = 0;
    for (; s != NULL && !config_setting_is_root(s) && depth < PATH_DEPTH;
         s = config_setting_parent(s))
        chain[depth++] = s;
    size_t off = 0;
    buf[0] = '\0';
    while (depth > 0 && off < cap) {
        const config_setting_t *e = chain[--depth];
        int n;
        if (config_setting_name(e) != NULL)
            n = snprintf(buf + off, cap - off, "%s%s", off ? "." : "", config_setting_name(e));
        else
            n = snprintf(buf + off, cap - off, "[%d]", config_setting_index(e));
        if (n < 0)
            break;
        off += (size_t)n;
    }
    return buf;
}

unsigned vcfg__sline(const config_setting_t *s)
{
    return s != NULL ? config_setting_source_line(s) : 0;
}

/* "FILE:LINE: " and the message. */
int vcfg__lfail(struct vcfg__ld *l, const config_setting_t *s, const char *fmt, ...)
{
    if (l->err == NULL || l->cap == 0)
        return -1;
    int n;
    if (vcfg__sline(s) > 0)
        n = snprintf(l->err, l->cap, "%s:%u: ", l->file, vcfg__sline(s));
    else
        n = snprintf(l->err, l->cap, "%s: ", l->file);
    if (n < 0 || (size_t)n >= l->cap)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err + n, l->cap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* "FILE:LINE: PATH " and the message. */
int vcfg__sfail(struct vcfg__ld *l, const config_setting_t *s, const char *fmt, ...)
{
    char path[PATH_MAX_LEN], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return vcfg__lfail(l, s, "%s %s", spath(s, path, sizeof(path)), msg);
}

int vcfg__oom(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__lfail(l, s, "out of memory");
}

static const char *type_desc(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a floating-point number";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array [ ... ]";
    case CONFIG_TYPE_LIST:
        return "a list ( ... )";
    case CONFIG_TYPE_GROUP:
        return "a group { ... }";
    default:
        return "nothing";
    }
}

int vcfg__wrong_type(struct vcfg__ld *l, const config_setting_t *s, const char *want)
{
    return vcfg__sfail(l, s, "must be %s, not %s", want, type_desc(s));
}

void vcfg__set_origin(struct vcfg__ld *l, int slot, const config_setting_t *s, uint64_t print)
{
    l->c->origin[slot].line = vcfg__sline(s);
    l->c->origin[slot].print = print;
}

int vcfg__rd_string(struct vcfg__ld *l, const config_setting_t *s, const char **out)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return vcfg__wrong_type(l, s, "a string");
    *out = config_setting_get_string(s);
    if (*out == NULL || **out == '\0')
        return vcfg__sfail(l, s, "must not be empty");
    return 0;
}

int vcfg__rd_bool(struct vcfg__ld *l, const config_setting_t *s, bool *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return vcfg__wrong_type(l, s, "a boolean (true or false)");
    *out = config_setting_get_bool(s) != 0;
    return 0;
}

int vcfg__rd_int(struct vcfg__ld *l, const config_setting_t *s, long long lo, long long hi,
                 long long *out)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return vcfg__wrong_type(l, s, "an integer");
    long long v = config_setting_get_int64(s);
    if (v < lo || v > hi)
        return vcfg__sfail(l, s, "(%lld) must be between %lld and %lld", v, lo, hi);
    *out = v;
    return 0;
}

int vcfg__rd_number(struct vcfg__ld *l, const config_setting_t *s, double *out)
{
    int t = config_setting_type(s);
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
        *out = (double)config_setting_get_int64(s);
    else if (t == CONFIG_TYPE_FLOAT)
        *out = config_setting_get_float(s);
    else
        return vcfg__wrong_type(l, s, "a number");
    if (!isfinite(*out))
        return vcfg__sfail(l, s, "must be a finite number");
    return 0;
}

int vcfg__rd_duration(struct vcfg__ld *l, const config_setting_t *s, vigil_time_t *out)
{
    int t = config_setting_type(s);
    if (t == CONFIG_TYPE_STRING) {
        const char *v = config_setting_get_string(s);
        if (vcfg_parse_duration(v, out) != 0)
            return vcfg__sfail(l, s,
                               "\"%s\" is not a duration (seconds as a number, or a number with a "
                               "unit: ns, us, ms, s, m, h, as in \"1500ms\")",
                               vigil_quote(v).s);
        return 0;
    }
    double v;
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
        v = (double)config_setting_get_int64(s);
    else if (t == CONFIG_TYPE_FLOAT)
        v = config_setting_get_float(s);
    else
        return vcfg__wrong_type(l, s, "a duration (seconds, or a string such as \"1500ms\")");
    if (!isfinite(v) || v < 0)
        return vcfg__sfail(l, s, "(%g) must be a duration of 0s or more", v);
    if (v * 1e9 > (double)VCFG_DURATION_MAX)
        return vcfg__sfail(l, s, "(%gs) is longer than any duration vigil accepts", v);
    *out = (vigil_time_t)llround(v * 1e9);
    return 0;
}

/*
 * A list of strings: an array [ "a", "b" ] or a list ( "a", "b" ), at most
 * max; with empty_from, strings at that index and after may be empty.
 */
int vcfg__rd_strings(struct vcfg__ld *l, const config_setting_t *s, size_t max, size_t empty_from,
                     size_t *n)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return vcfg__wrong_type(l, s, "a list of strings [ \"...\", ... ]");
    size_t len = (size_t)config_setting_length(s);
    if (len > max)
        return vcfg__sfail(l, s, "holds %zu entries; at most %zu are allowed", len, max);
    for (size_t i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = NULL;
        if (i >= empty_from && config_setting_type(e) == CONFIG_TYPE_STRING)
            continue;
        if (vcfg__rd_string(l, e, &v) != 0)
            return -1;
    }
    *n = len;
    return 0;
}

const char *vcfg__elem_str(const config_setting_t *s, size_t i)
{
    return config_setting_get_string(config_setting_get_elem(s, (unsigned)i));
}

int vcfg__set_str(struct vcfg__ld *l, const config_setting_t *s, char **dst, const char *v)
{
    char *d = strdup(v);
    if (d == NULL)
        return vcfg__oom(l, s);
    free(*dst);
    *dst = d;
    return 0;
}

/* A path setting: relative paths are taken relative to the file's directory. */
int vcfg__set_path(struct vcfg__ld *l, const config_setting_t *s, char **dst, const char *v)
{
    if (v[0] == '/' || l->dir_len == 0)
        return vcfg__set_str(l, s, dst, v);
    size_t n = strlen(v);
    char *d = malloc(l->dir_len + n + 1);
    if (d == NULL)
        return vcfg__oom(l, s);
    memcpy(d, l->file, l->dir_len);
    memcpy(d + l->dir_len, v, n + 1);
    free(*dst);
    *dst = d;
    return 0;
}

int vcfg__rd_key(struct vcfg__ld *l, const config_setting_t *s, bool monitor)
{
    const char *v = NULL;
    char *path = NULL, msg[512];
    /* The other role's key is not ours to read: its type is checked, the file left alone. */
    const char *role = l->c->role;
    if (role && strcmp(role, monitor ? "monitor" : "agent") != 0) {
        int type = config_setting_type(s);
        if (type == CONFIG_TYPE_STRING)
            return 0;
        if (monitor && (type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY))
            return 0;
        return vcfg__wrong_type(l, s, monitor ? "a file name, or a list of them" : "a file name");
    }
    /* A monitor may hold several keys during a rotation: a list of files. */
    int type = config_setting_type(s);
    if (monitor && (type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY)) {
        int n = config_setting_length(s);
        if (n < 1 || n > VIGIL_KEYS_MAX)
            return vcfg__sfail(l, s, "lists 1 to %d key files, not %d", VIGIL_KEYS_MAX, n);
        vcfg_monitor_keys_clear(&l->c->monitor);
        for (int i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (vcfg__rd_string(l, e, &v) != 0 || vcfg__set_path(l, e, &path, v) != 0)
                return -1;
            int rc = vcfg__monitor_key_add(&l->c->monitor, l->fs, path, msg, sizeof(msg));
            free(path);
            path = NULL;
            if (rc != 0)
                return vcfg__sfail(l, e, "cannot be used: %s", msg);
        }
        return 0;
    }
    if (vcfg__rd_string(l, s, &v) != 0 || vcfg__set_path(l, s, &path, v) != 0)
        return -1;
    int rc;
    if (monitor) {
        vcfg_monitor_keys_clear(&l->c->monitor);
        rc = vcfg__monitor_key_add(&l->c->monitor, l->fs, path, msg, sizeof(msg));
    } else {
        rc = vcfg__agent_key(&l->c->agent, l->fs, path, msg, sizeof(msg));
    }
    free(path);
    if (rc != 0)
        return vcfg__sfail(l, s, "cannot be used: %s", msg);
    return 0;
}

/*
 * Walks the members of group g: each must be named in the table, and its
 * handler reads it. Unknown members are errors, so that a typo is found.
 */
int vcfg__walk(struct vcfg__ld *l, const config_setting_t *g, const struct vcfg__field *f,
               size_t nf)
{
    char path[PATH_MAX_LEN];
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return vcfg__wrong_type(l, g, "a group { ... }");
    int len = config_setting_length(g);
    for (int i = 0; i < len; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        size_t k = 0;
        while (k < nf && strcmp(f[k].name, config_setting_name(s)) != 0)
            k++;
        if (k == nf)
            return vcfg__lfail(l, s, "unknown setting %s", spath(s, path, sizeof(path)));
        if (f[k].fn != NULL && f[k].fn(l, s) != 0)
            return -1;
    }
    return 0;
}

int vcfg__rd_name(struct vcfg__ld *l, const config_setting_t *s, size_t max, const char **out)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    size_t n = strlen(v);
    if (n == 0 || n > max)
        return vcfg__sfail(l, s, "must be 1 to %zu characters", max);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i]) && !strchr("-_.", v[i]))
            return vcfg__sfail(l, s, "\"%s\": only letters, digits, '-', '_' and '.' are allowed",
                               vigil_quote(v).s);
    *out = v;
    return 0;
}

int vcfg__rd_argv(struct vcfg__ld *l, const config_setting_t *s, char **argv)
{
    size_t n = 0;
    if (vcfg__rd_strings(l, s, VCFG_MAX_ARGV, 1, &n) != 0)
        return -1;
    if (n == 0)
        return vcfg__sfail(l, s, "must name a program (and its arguments)");
    const config_setting_t *e0 = config_setting_get_elem(s, 0);
    const char *prog = config_setting_get_string(e0);
    if (prog[0] != '/' && strchr(prog, '/') != NULL)
        return vcfg__sfail(l, e0,
                           "\"%s\" must be an absolute path or a program name to look up in PATH",
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

int vcfg__rd_custom(struct vcfg__ld *l, const config_setting_t *s, const char *what,
                    struct vigil_custom *out, size_t *n)
{
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return vcfg__wrong_type(l, s, "a group { key = \"value\"; ... }");
    size_t len = (size_t)config_setting_length(s);
    if (len > VIGIL_CUSTOM_MAX)
        return vcfg__sfail(l, s, "holds %zu pairs; at most %d are allowed", len, VIGIL_CUSTOM_MAX);
    for (size_t i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *key = config_setting_name(e);
        if (!vigil_custom_key_valid(key))
            return vcfg__lfail(l, e,
                               "%s: \"%s\" is not a valid key (1 to %d characters of "
                               "A-Z a-z 0-9 . _ -)",
                               what, vigil_quote(key).s, VIGIL_CUSTOM_KEY_MAX);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return vcfg__wrong_type(l, e, "a string");
        const char *v = config_setting_get_string(e);
        if (!vigil_custom_value_valid(v))
            return vcfg__sfail(l, e,
                               "\"%s\" is not a valid value (at most %d printable ASCII bytes)",
                               vigil_quote(v).s, VIGIL_CUSTOM_VAL_MAX);
    }
    *n = 0;
    for (size_t i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        struct vigil_custom *p = &out[(*n)++];
        /* Both fit: the validators bound the lengths by the buffer sizes. */
        snprintf(p->key, sizeof(p->key), "%s", config_setting_name(e));
        snprintf(p->value, sizeof(p->value), "%s", config_setting_get_string(e));
    }
    return 0;
}
