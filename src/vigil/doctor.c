/*
 * vigil doctor: checks an agent's configuration against its monitor and
 * says what is wrong, in the order a person would look: the file, the key,
 * the monitor's addresses, then the monitor itself through its API (is it
 * reachable, does it hold the key id, is the node's key the one it
 * expects, are the clocks close enough, does it want sealed statuses, has
 * it heard the node, and what it dropped from it this minute).
 *
 * Nothing here changes the monitor's view of the node: the doctor sends no
 * heartbeat. It reads the API (GET only) and compares fingerprints of keys
 * (vigil_wire_key_fingerprint), never keys. One check sends a probe
 * datagram: a heartbeat for an id of its own ("vigil-doctor-" and random
 * digits, new for every run) with a tag nobody can verify, which the monitor drops as auth_failed
 * and lists in /v1/drops under this host, proving that this host's datagrams reach the monitor's
 * UDP port (a firewall shows as the probe never arriving).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli_tools.h"
#include "cmds.h"
#include "config.h"
#include "io/real.h"
#include "io/vio.h"

/* The probe's id: this prefix and 8 random hex digits, new for every run. */
#define PROBE_PREFIX "vigil-doctor-"
static char probe_id[sizeof(PROBE_PREFIX) + 8];

struct doctor {
    int failures, warnings;
};

static void ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ok(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  ok    ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static void fail(struct doctor *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct doctor *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  FAIL  ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    d->failures++;
}

static void warn(struct doctor *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct doctor *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  warn  ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    d->warnings++;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vigil doctor -c FILE [--api HOST:PORT] [--cacert FILE]\n"
               "Checks the agent section of FILE against its monitor and says what is wrong:\n"
               "the settings, the key, the monitor's addresses, and, through the monitor's\n"
               "API, whether it is reachable, holds this node's key, agrees on the time,\n"
               "has heard the node, and what it dropped from this host. Sends no heartbeat.\n\n"
               "  -c, --config FILE  the agent's configuration\n"
               "      --api ADDR     the monitor's API (default: monitor.api of FILE, else the\n"
               "                     first monitor's host, port 7947)\n"
               "  -h, --help         this help\n\n"
               "Exit status: 0 when every check passed, 1 when one failed, 2 for bad usage.\n");
}

/* The monitor's API address: --api, else monitor.api of the file, else the first monitor's host. */
static void api_address(const struct vcfg *c, const char *api, char *out, size_t cap)
{
    if (api) {
        snprintf(out, cap, "%s", api);
        return;
    }
    if (c->monitor.api && c->monitor.api[0] && strcmp(c->monitor.api, "off") != 0 &&
        strcmp(c->monitor.api, "127.0.0.1:7947") != 0) {
        snprintf(out, cap, "%s", c->monitor.api);
        return;
    }
    struct vigil_addr a;
    if (c->agent.n_monitors &&
        vigil_addr_parse(c->agent.monitors[0], VIGIL_DEFAULT_PORT, &a) == 0) {
        char host[64];
        vigil_addr_format(&a, host, sizeof(host));
        char *colon = strrchr(host, ':');
        if (colon)
            *colon = '\0';
        snprintf(out, cap, "%s:7947", host);
        return;
    }
    snprintf(out, cap, "127.0.0.1:7947");
}

/* Sends the probe datagram (an untagged-looking heartbeat with a wrong tag) to the monitor. */
static int send_probe(struct vio_env *env, const struct vigil_addr *to)
{
    struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    memcpy(hb.id, probe_id, sizeof(probe_id));
    hb.version = VIGIL_WIRE_V2;
    hb.type = VIGIL_MSG_BEAT;
    hb.generation = 1;
    hb.sequence = 1;
    hb.interval_ms = 1000;
    uint8_t junk[VIGIL_WIRE_MAC_KEY_LEN];
    randombytes_buf(junk, sizeof(junk));
    uint8_t buf[VIGIL_WIRE_MAX];
    int n = vigil_wire_encode(&hb, junk, buf, sizeof(buf));
    if (n < 0)
        return -EINVAL;
    struct vio_transport *t = NULL;
    int rc = env->net->ops->open(env->net, env->loop, NULL, to->family, &t);
    if (rc)
        return rc;
    rc = t->ops->send(t, to, buf, (size_t)n);
    vio_transport_close(t);
    return rc;
}

/* The drops of /v1/drops matching id (and, with host, from host); their total. */
static uint64_t drops_for(const json_t *doc, const char *id, const char *reason_out[4],
                          uint64_t counts[4], size_t *n_out)
{
    uint64_t total = 0;
    size_t n = 0;
    json_t *a = json_object_get(doc, "drops");
    for (size_t i = 0; json_is_array(a) && i < json_array_size(a); i++) {
        json_t *e = json_array_get(a, i);
        if (strcmp(json_string_value(json_object_get(e, "node"))
                       ? json_string_value(json_object_get(e, "node"))
                       : "",
                   id) != 0)
            continue;
        uint64_t cnt = (uint64_t)json_integer_value(json_object_get(e, "count"));
        total += cnt;
        if (n < 4) {
            reason_out[n] = json_string_value(json_object_get(e, "hint"));
            counts[n] = cnt;
            n++;
        }
    }
    *n_out = n;
    return total;
}

int cmd_doctor(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"api", required_argument, 0, 'a'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *file = NULL, *api = NULL;
    optind = 0;
    for (int o; (o = getopt_long(argc, argv, "c:a:h", opts, NULL)) != -1;) {
        if (o == 'c')
            file = optarg;
        else if (o == 'a')
            api = optarg;
        else {
            usage(o == 'h' ? stdout : stderr);
            return o == 'h' ? 0 : 2;
        }
    }
    if (!file || optind < argc) {
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "vigil doctor: libsodium failed to initialize\n");
        return 1;
    }
    struct doctor d = {0};
    snprintf(probe_id, sizeof(probe_id), PROBE_PREFIX "%08x", (unsigned)randombytes_random());
    struct vcfg c;
    vcfg_init(&c);
    c.role = "agent";
    char err[512];
    printf("vigil doctor: %s\n", file);
    if (vcfg_load(&c, file, err, sizeof(err)) != 0) {
        fail(&d, "the configuration: %s", err);
        vcfg_free(&c);
        return 1;
    }
    if (vcfg_check(&c, "agent", err, sizeof(err)) != 0) {
        fail(&d, "the agent's settings: %s", err);
        vcfg_free(&c);
        return 1;
    }
    struct vcfg_agent *a = &c.agent;
    char host_id[VIGIL_ID_MAX + 1];
    const char *id = a->id;
    if (!id && vcfg_host_id(host_id, sizeof(host_id)) == 0)
        id = host_id;
    ok("the agent's settings: node id %s, %zu monitor(s), interval %.3gs", id, a->n_monitors,
       (double)a->interval / VIGIL_NSEC_PER_SEC);

    /* The key. */
    uint8_t fp[VIGIL_WIRE_FINGERPRINT_LEN];
    char fphex[2 * VIGIL_WIRE_FINGERPRINT_LEN + 1] = "";
    if (!a->has_key) {
        warn(&d, "no key_file: only a monitor that runs insecure accepts this agent");
    } else if (a->key_node[0] && strcmp(a->key_node, id) != 0) {
        fail(&d, "the key file %s is the node key of %s, not of %s", a->key_file, a->key_node, id);
    } else {
        vigil_wire_key_fingerprint(fp, a->key);
        sodium_bin2hex(fphex, sizeof(fphex), fp, sizeof(fp));
        ok("the key: %s, %s, key id %u", a->key_file,
           a->key_node[0] ? "this node's own key" : "a legacy cluster key", (unsigned)a->key_id);
    }
    sodium_memzero(a->key, sizeof(a->key));

    /* The monitors' addresses, and the probe. */
    struct vio_env *env = NULL;
    if (vio_env_real_new(&env, false) != 0) {
        fail(&d, "cannot set up the network");
        vcfg_free(&c);
        return 1;
    }
    for (size_t i = 0; i < a->n_monitors; i++) {
        struct vigil_addr to;
        const char *why = "invalid address";
        if (env->net->ops->resolve(env->net, a->monitors[i], VIGIL_DEFAULT_PORT, &to, &why) < 0) {
            fail(&d, "monitor %s: %s", a->monitors[i], why);
            continue;
        }
        int rc = send_probe(env, &to);
        if (rc)
            fail(&d, "monitor %s: cannot send to it: %s", a->monitors[i], strerror(-rc));
        else
            ok("monitor %s: a probe datagram went out", a->monitors[i]);
    }

    /* The monitor, through its API. */
    char apiaddr[128];
    api_address(&c, api, apiaddr, sizeof(apiaddr));
    json_t *health = cli_fetch_json("doctor", apiaddr, NULL, "/v1/health", NULL);
    if (!health) {
        fail(&d,
             "the monitor's API at %s does not answer (give --api HOST:PORT, or check "
             "monitor.api and firewalls)",
             apiaddr);
        goto done;
    }
    int64_t now_us = vio_wall_us(env->loop);
    json_int_t theirs = json_integer_value(json_object_get(health, "wall_time_us"));
    double skew = (double)(now_us - (int64_t)theirs) / 1e6;
    double max_ahead = cli_jnum(health, "max_ahead_s", 600);
    const char *version = json_string_value(json_object_get(health, "version"));
    ok("the monitor's API at %s answers (vigil %s)", apiaddr, version ? version : "?");
    if (theirs == 0)
        warn(&d, "the monitor does not say its time (an older version)");
    else if (skew > max_ahead || -skew > max_ahead)
        fail(&d,
             "clock skew: this host is %.1f s %s the monitor; beyond max_ahead (%.0f s) its "
             "heartbeats are refused as from the future (run NTP)",
             skew > 0 ? skew : -skew, skew > 0 ? "ahead of" : "behind", max_ahead);
    else if (skew > 1 || skew < -1)
        warn(&d,
             "clock skew: this host is %.1f s %s the monitor (within max_ahead %.0f s; run "
             "NTP)",
             skew > 0 ? skew : -skew, skew > 0 ? "ahead of" : "behind", max_ahead);
    else
        ok("clocks agree within a second (%+.3f s)", skew);
    const char *auth = json_string_value(json_object_get(health, "authentication"));
    if (!auth)
        auth = "?";
    if (!strcmp(auth, "none") && a->has_key)
        warn(&d, "the monitor runs without a key (insecure): it accepts anything");
    else if (strcmp(auth, "none") != 0 && !a->has_key)
        fail(&d, "the monitor wants authenticated heartbeats and this agent has no key");
    if (json_is_true(json_object_get(health, "statuses_sealed")) && !a->encrypt)
        fail(&d, "the monitor wants sealed statuses (encrypt = true) and this agent sends them "
                 "in clear: set agent.encrypt = true");

    /* The key, compared by fingerprint. */
    if (a->has_key && fphex[0] && strcmp(auth, "none") != 0) {
        char path[256];
        snprintf(path, sizeof(path), "/v1/keycheck?node=%s&key_id=%u&fingerprint=%s", id,
                 (unsigned)a->key_id, fphex);
        json_t *kc = cli_fetch_json("doctor", apiaddr, NULL, path, NULL);
        if (!kc)
            warn(&d, "the monitor could not check the key (an older version?)");
        else if (!json_is_true(json_object_get(kc, "held")))
            fail(&d,
                 "the monitor holds no key with key id %u: it refuses this agent (rotation "
                 "not yet started on the monitor, or the key retired?)",
                 (unsigned)a->key_id);
        else if (!json_is_true(json_object_get(kc, "match")))
            fail(&d,
                 "wrong key: the monitor expects another key of %s under key id %u (a node "
                 "key of another master key, or of another id?)",
                 id, (unsigned)a->key_id);
        else
            ok("the monitor expects exactly this key of %s (key id %u)", id, (unsigned)a->key_id);
        json_decref(kc);
    }

    /* Has the monitor heard the node? */
    char path[128];
    snprintf(path, sizeof(path), "/v1/nodes/%s", id);
    json_t *node = cli_fetch_json("doctor", apiaddr, NULL, path, NULL);
    const char *state = node ? json_string_value(json_object_get(node, "state")) : NULL;
    bool alive = state && !strcmp(state, "alive");
    if (!state)
        warn(&d, "the monitor has not accepted a heartbeat from %s yet (is the agent running?)",
             id);
    else if (!strcmp(state, "alive"))
        ok("the monitor has %s alive", id);
    else
        warn(&d, "the monitor has %s %s", id, state);
    json_decref(node);

    /* What the monitor dropped this minute: from this node's id, and the probe. */
    json_t *drops = cli_fetch_json("doctor", apiaddr, NULL, "/v1/drops", NULL);
    if (drops) {
        const char *hints[4];
        uint64_t counts[4];
        size_t n = 0;
        uint64_t total = drops_for(drops, id, hints, counts, &n);
        for (size_t i = 0; i < n; i++)
            fail(&d, "the monitor dropped %" PRIu64 " datagram(s) claiming %s this minute: %s",
                 counts[i], id, hints[i] ? hints[i] : "?");
        if (total == 0)
            ok("the monitor dropped nothing claiming %s this minute", id);
        size_t np = 0;
        uint64_t probes = drops_for(drops, probe_id, hints, counts, &np);
        if (a->n_monitors && probes == 0 && !alive)
            fail(&d, "the probe datagram did not reach the monitor's UDP port, and the node is "
                     "not alive: a firewall between here and the monitor, or a wrong monitor "
                     "address?");
        else if (a->n_monitors && probes == 0)
            warn(&d, "the probe datagram did not reach the monitor's UDP port (yet): a firewall, "
                     "or a wrong monitor address?");
        else if (probes)
            ok("probe datagrams reach the monitor's UDP port");
        json_decref(drops);
    }
done:
    json_decref(health);
    vio_env_real_free(env);
    vcfg_free(&c);
    printf("%d failure(s), %d warning(s)\n", d.failures, d.warnings);
    return d.failures ? 1 : 0;
}
