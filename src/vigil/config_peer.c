/*
 * The settings of the "peer" section (docs/peer.md, docs/configuration.md):
 * a member of a peer-to-peer cluster. One handler per member, each reading
 * its value with the typed readers of config_read.c into struct vcfg_peer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fmt.h"
#include "config_int.h"
#include <vigil/swim.h>

void vcfg_peer_default(struct vcfg_peer *p)
{
    struct vigil_swim_config d;
    vigil_swim_config_default(&d);
    memset(p, 0, sizeof(*p));
    p->interval = d.probe_interval;
    p->probe_timeout = 0; /* half the interval */
    p->gossip_interval = d.gossip_interval;
    p->sync_interval = d.sync_interval;
    p->reconnect_interval = d.reconnect_interval;
    p->indirect_checks = d.indirect_checks;
    p->retransmit_mult = d.retransmit_mult;
    p->suspicion_mult = d.suspicion_mult;
    p->suspicion_max_mult = d.suspicion_max_mult;
    p->gossip_nodes = d.gossip_nodes;
    p->awareness_max = d.awareness_max;
    p->max_members = d.max_members;
    p->lifeguard = true;
    p->status_interval = 10 * VIGIL_NSEC_PER_SEC;
    p->require_signed = -1;
}

void vcfg_peer_free(struct vcfg_peer *p)
{
    free(p->id);
    free(p->listen);
    free(p->key_file);
    free(p->member_file);
    free(p->ca_file);
    vcfg__free_strs(p->seeds, &p->n_seeds);
    p->id = p->listen = p->key_file = p->member_file = p->ca_file = NULL;
}

static int addr_ok(struct vcfg__ld *l, const config_setting_t *s, const char *v)
{
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == v || !end || *end || port <= 0 || port > 65535)
        return vcfg__sfail(l, s, "\"%s\" must be ADDRESS:PORT (\"10.0.0.1:7946\", \"[::1]:7946\")",
                           vigil_quote(v).s);
    return 0;
}

static int p_id(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    if (!vigil_id_valid(v, strlen(v)))
        return vcfg__sfail(
            l, s, "\"%s\" is not a valid member id (1 to %d characters of A-Z a-z 0-9 . _ -)",
            vigil_quote(v).s, VIGIL_ID_MAX);
    return vcfg__set_str(l, s, &l->c->peer.id, v);
}

static int p_listen(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0 || addr_ok(l, s, v) != 0)
        return -1;
    return vcfg__set_str(l, s, &l->c->peer.listen, v);
}

static int p_seeds(struct vcfg__ld *l, const config_setting_t *s)
{
    struct vcfg_peer *p = &l->c->peer;
    size_t n = 0;
    if (vcfg__rd_strings(l, s, VCFG_PEER_MAX_SEEDS, SIZE_MAX, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (addr_ok(l, config_setting_get_elem(s, (unsigned)i), vcfg__elem_str(s, i)) != 0)
            return -1;
    vcfg__free_strs(p->seeds, &p->n_seeds);
    for (size_t i = 0; i < n; i++) {
        p->seeds[i] = strdup(vcfg__elem_str(s, i));
        if (!p->seeds[i])
            return vcfg__oom(l, s);
        p->n_seeds = i + 1;
    }
    return 0;
}

static int p_key_file(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    /* Read now (by a member only), so that a missing or open file stops start-up here. */
    if (l->c->role && strcmp(l->c->role, "peer") != 0)
        return vcfg__set_path(l, s, &l->c->peer.key_file, v);
    char path[4096];
    if (v[0] == '/' || l->dir_len == 0)
        snprintf(path, sizeof path, "%s", v);
    else
        snprintf(path, sizeof path, "%.*s%s", (int)l->dir_len, l->file, v);
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    enum vcfg_key_kind kind;
    char node[VIGIL_ID_MAX + 1], why[512];
    int rc = vcfg_read_key_fs(l->fs, path, key, &kind, node, NULL, why, sizeof why);
    sodium_memzero(key, sizeof key);
    if (rc != 0)
        return vcfg__sfail(l, s, "%s", why);
    return vcfg__set_path(l, s, &l->c->peer.key_file, v);
}

static int p_insecure(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_bool(l, s, &l->c->peer.insecure);
}

static int p_encrypt(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_bool(l, s, &l->c->peer.encrypt);
}

static int p_member_file(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    return vcfg__set_path(l, s, &l->c->peer.member_file, v);
}

static int p_ca_file(struct vcfg__ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (vcfg__rd_string(l, s, &v) != 0)
        return -1;
    return vcfg__set_path(l, s, &l->c->peer.ca_file, v);
}

static int p_require_signed(struct vcfg__ld *l, const config_setting_t *s)
{
    bool v = false;
    if (vcfg__rd_bool(l, s, &v) != 0)
        return -1;
    l->c->peer.require_signed = v;
    return 0;
}

static int p_lifeguard(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_bool(l, s, &l->c->peer.lifeguard);
}

/* A duration between lo and hi. */
static int dur(struct vcfg__ld *l, const config_setting_t *s, vigil_time_t lo, vigil_time_t hi,
               vigil_time_t *out)
{
    vigil_time_t v = 0;
    if (vcfg__rd_duration(l, s, &v) != 0)
        return -1;
    if (v < lo || v > hi) {
        char a[32], b[32], c[32];
        return vcfg__sfail(l, s, "(%s) must be between %s and %s", vcfg__fmt_dur(v, c, sizeof c),
                           vcfg__fmt_dur(lo, a, sizeof a), vcfg__fmt_dur(hi, b, sizeof b));
    }
    *out = v;
    return 0;
}

#define MS(x) ((vigil_time_t)(x)*VIGIL_NSEC_PER_MSEC)
#define S(x)  ((vigil_time_t)(x)*VIGIL_NSEC_PER_SEC)

static int p_interval(struct vcfg__ld *l, const config_setting_t *s)
{
    return dur(l, s, MS(10), S(60), &l->c->peer.interval);
}

static int p_probe_timeout(struct vcfg__ld *l, const config_setting_t *s)
{
    return dur(l, s, MS(1), S(60), &l->c->peer.probe_timeout);
}

static int p_gossip_interval(struct vcfg__ld *l, const config_setting_t *s)
{
    return dur(l, s, MS(10), S(60), &l->c->peer.gossip_interval);
}

static int p_sync_interval(struct vcfg__ld *l, const config_setting_t *s)
{
    return dur(l, s, S(1), S(3600), &l->c->peer.sync_interval);
}

static int p_reconnect_interval(struct vcfg__ld *l, const config_setting_t *s)
{
    return dur(l, s, S(1), S(3600), &l->c->peer.reconnect_interval);
}

static int p_pause_tolerance(struct vcfg__ld *l, const config_setting_t *s)
{
    return dur(l, s, MS(10), S(3600), &l->c->peer.pause_tolerance);
}

static int p_status_interval(struct vcfg__ld *l, const config_setting_t *s)
{
    vigil_time_t v = 0;
    if (vcfg__rd_duration(l, s, &v) != 0)
        return -1;
    if (v != 0 && (v < S(1) || v > S(3600)))
        return vcfg__sfail(l, s, "must be 0 (never) or between 1 s and 1 h");
    l->c->peer.status_interval = v;
    return 0;
}

static int uint_in(struct vcfg__ld *l, const config_setting_t *s, long long lo, long long hi,
                   uint32_t *out)
{
    long long v = 0;
    if (vcfg__rd_int(l, s, lo, hi, &v) != 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int p_indirect_checks(struct vcfg__ld *l, const config_setting_t *s)
{
    return uint_in(l, s, 0, 16, &l->c->peer.indirect_checks);
}

static int p_retransmit_mult(struct vcfg__ld *l, const config_setting_t *s)
{
    return uint_in(l, s, 1, 32, &l->c->peer.retransmit_mult);
}

static int p_suspicion_mult(struct vcfg__ld *l, const config_setting_t *s)
{
    return uint_in(l, s, 1, 64, &l->c->peer.suspicion_mult);
}

static int p_suspicion_max_mult(struct vcfg__ld *l, const config_setting_t *s)
{
    return uint_in(l, s, 1, 64, &l->c->peer.suspicion_max_mult);
}

static int p_gossip_nodes(struct vcfg__ld *l, const config_setting_t *s)
{
    return uint_in(l, s, 0, 64, &l->c->peer.gossip_nodes);
}

static int p_awareness_max(struct vcfg__ld *l, const config_setting_t *s)
{
    return uint_in(l, s, 1, 64, &l->c->peer.awareness_max);
}

static int p_max_members(struct vcfg__ld *l, const config_setting_t *s)
{
    return uint_in(l, s, 1, 1 << 24, &l->c->peer.max_members);
}

static int p_custom(struct vcfg__ld *l, const config_setting_t *s)
{
    return vcfg__rd_custom(l, s, "peer.custom", l->c->peer.custom, &l->c->peer.n_custom);
}

int vcfg__ld_peer(struct vcfg__ld *l, const config_setting_t *s)
{
    static const struct vcfg__field fields[] = {
        {"id", p_id},
        {"listen", p_listen},
        {"seeds", p_seeds},
        {"key_file", p_key_file},
        {"insecure", p_insecure},
        {"encrypt", p_encrypt},
        {"member_file", p_member_file},
        {"ca_file", p_ca_file},
        {"require_signed", p_require_signed},
        {"lifeguard", p_lifeguard},
        {"interval", p_interval},
        {"probe_timeout", p_probe_timeout},
        {"indirect_checks", p_indirect_checks},
        {"retransmit_mult", p_retransmit_mult},
        {"suspicion_mult", p_suspicion_mult},
        {"suspicion_max_mult", p_suspicion_max_mult},
        {"gossip_interval", p_gossip_interval},
        {"gossip_nodes", p_gossip_nodes},
        {"sync_interval", p_sync_interval},
        {"reconnect_interval", p_reconnect_interval},
        {"awareness_max", p_awareness_max},
        {"max_members", p_max_members},
        {"pause_tolerance", p_pause_tolerance},
        {"status_interval", p_status_interval},
        {"custom", p_custom},
    };
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return vcfg__wrong_type(l, s, "a group { ... }");
    l->c->peer.given = true;
    return vcfg__walk(l, s, fields, sizeof(fields) / sizeof(fields[0]));
}
