/*
 * The settings of the "agent" section: one handler per member, each
 * reading its value with the typed readers of config_read.c into struct
 * vcfg_agent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "config_int.h"

static int a_id(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (!vigil_id_valid(v, strlen(v)))
        return vcfg__sfail(
            l, s, "\"%s\" is not a valid node id (1 to %d characters of A-Z a-z 0-9 . _ -)",
            vigil_quote(v).s, VIGIL_ID_MAX);
    if (vcfg__set_str(l, s, &l->c->agent.id, v) != 0)
        return -1;
    vcfg__set_origin(l, O_A_ID, s, vcfg__print_str(v));
    return 0;
}

static int a_monitors(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_agent *a = &l->c->agent;
    size_t n = 0;
    if (vcfg__rd_strings(l, s, VIGIL_SENDER_MAX_MONITORS, SIZE_MAX, &n) != 0)
        return -1;
    vcfg__free_strs(a->monitors, &a->n_monitors);
    for (size_t i = 0; i < n; i++) {
        a->monitors[i] = strdup(vcfg__elem_str(s, i));
        if (a->monitors[i] == NULL)
            return vcfg__oom(l, s);
        a->n_monitors = i + 1;
    }
    vcfg__set_origin(l, O_A_MONITORS, s, vcfg__print_int((int64_t)n));
    return 0;
}

static int a_interval(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_agent *a = &l->c->agent;
    if (vcfg__rd_duration(l, s, &a->interval) != 0)
        return -1;
    vcfg__set_origin(l, O_A_INTERVAL, s, vcfg__print_int(a->interval));
    return 0;
}

static int a_key_file(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_key(l, s, false);
}

static int a_encrypt(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_bool(l, s, &l->c->agent.encrypt);
}

static int a_status_file(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    return vcfg__set_path(l, s, &l->c->agent.status_file, v);
}

static int a_listen(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == v || !end || *end || port <= 0 || port > 65535)
        return vcfg__sfail(l, s, "\"%s\" must be ADDRESS:PORT (\"0.0.0.0:7948\", \"[::]:7948\")",
                           vigil_quote(v).s);
    return vcfg__set_str(l, s, &l->c->agent.listen, v);
}

static int a_generation_file(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    return vcfg__set_path(l, s, &l->c->agent.generation_file, v);
}

static int a_status_every(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, 1, VIGIL_SENDER_STATUS_EVERY_MAX, &v) != 0)
        return -1;
    l->c->agent.status_every = (uint32_t)v;
    return 0;
}

static int a_wire_version(struct vcfg__ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, VIGIL_WIRE_V1, VIGIL_WIRE_V2, &v) != 0)
        return -1;
    l->c->agent.wire_version = (uint8_t)v;
    return 0;
}

static int a_custom(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_custom(l, s, "agent.custom", l->c->agent.custom, &l->c->agent.n_custom);
}

static int a_checks(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_agent *a = &l->c->agent;
    struct vcfg_check *c = a->checks;
    return vcfg__ld_checks(l, s, true, &c, &a->n_checks, VCFG_AGENT_MAX_CHECKS, true);
}

int vcfg__ld_agent(struct vcfg__ld *l, const config_setting_t *s)
{
    static const struct vcfg__field fields[] = {
        {"id", a_id},
        {"monitors", a_monitors},
        {"interval", a_interval},
        {"key_file", a_key_file},
        {"encrypt", a_encrypt},
        {"status_file", a_status_file},
        {"generation_file", a_generation_file},
        {"status_every", a_status_every},
        {"wire_version", a_wire_version},
        {"custom", a_custom},
        {"checks", a_checks},
        {"listen", a_listen},
    };
    return vcfg__walk(l, s, fields, sizeof(fields) / sizeof(fields[0]));
}
