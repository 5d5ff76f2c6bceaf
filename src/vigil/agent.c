/*
 * vigil agent, vigil set and vigil keygen: the node side of vigil.
 *
 * vigil agent (and the small program vigil-agent, main_agent.c) parses
 * its flags and configuration, builds the environment its program chose
 * (src/io/vio.h) and runs the agent daemon on it (agentd.c: the heartbeat
 * grid, the status file, the goodbye on SIGTERM). The status file format
 * is parsed here, shared with vigil set:
 *
 * Custom status comes from three places, applied in this order, later ones
 * winning for the same key: the config file's static pairs, --set flags,
 * and the status file (see agentd.c for how it is watched). A bad line is
 * reported with its file name and line number and skipped; the other lines
 * still apply.
 *
 * vigil set edits a status file safely while the agent may be reading it:
 * it replaces the file atomically (vio_fs replace: a temporary file in the
 * same directory, renamed over the old one), so a reader sees the old file
 * or the new one, never half of one. Comments and the order of lines are kept.
 *
 * vigil keygen prints a new master key (a "vigil-master-key" line, then 32
 * random bytes from libsodium as 64 hex digits), or, with --node and
 * --master, the node key of one node derived from it; or writes the key
 * to a new file only its owner can read.
 *
 * Exit status: 0 on success (and on a signalled agent's clean stop), 1 when
 * something fails at run time, 2 for a usage or configuration error.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include <vigil/vigil.h>

#include "fmt.h"
#include "agent.h"
#include "agentd.h"
#include "cmds.h"
#include "config.h"

/*
 * Longest --set or vigil set argument: a 32-byte key, '=', a 48-byte value
 * and generous room for white space around them.
 */
#define AGENT_ARG_MAX 256

/* Host names are at most 255 bytes (POSIX HOST_NAME_MAX on Linux is 64). */
#define AGENT_HOSTNAME_MAX 256

/* Room for a config error: "FILE:LINE: " and a sentence; longer ones are cut. */
#define AGENT_ERR_MAX 512

/* ---- status file format ------------------------------------------------ */

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

enum agent_line agent_status_line(char *line, size_t len, char **key, char **value,
                                  const char **why)
{
    if (memchr(line, '\0', len) != NULL) {
        *why = "NUL byte in line";
        return AGENT_LINE_BAD;
    }
    size_t s = 0, e = len;
    while (s < e && is_blank(line[s]))
        s++;
    while (e > s && is_blank(line[e - 1]))
        e--;
    if (s == e || line[s] == '#')
        return AGENT_LINE_SKIP;
    char *eq = memchr(line + s, '=', e - s);
    if (eq == NULL) {
        *why = "expected key=value";
        return AGENT_LINE_BAD;
    }
    size_t ke = (size_t)(eq - line), vs = ke + 1;
    while (ke > s && is_blank(line[ke - 1]))
        ke--;
    while (vs < e && is_blank(line[vs]))
        vs++;
    line[ke] = '\0';
    line[e] = '\0';
    if (ke == s) {
        *why = "empty key";
        return AGENT_LINE_BAD;
    }
    if (!vigil_custom_key_valid(line + s)) {
        *why = "invalid key (1 to 32 characters of A-Z a-z 0-9 . _ -)";
        return AGENT_LINE_BAD;
    }
    if (!vigil_custom_value_valid(line + vs)) {
        *why = "invalid value (at most 48 printable ASCII characters)";
        return AGENT_LINE_BAD;
    }
    *key = line + s;
    *value = line + vs;
    return AGENT_LINE_PAIR;
}

int agent_pairs_set(struct agent_pairs *l, const char *key, const char *value)
{
    if (!vigil_custom_key_valid(key) || (value != NULL && !vigil_custom_value_valid(value)))
        return -VIGIL_EINVAL;
    size_t i = 0;
    while (i < l->n && strcmp(l->p[i].key, key) != 0)
        i++;
    if (value == NULL) {
        if (i < l->n) {
            memmove(&l->p[i], &l->p[i + 1], (l->n - i - 1) * sizeof(l->p[0]));
            l->n--;
        }
        return 0;
    }
    if (i == l->n) {
        if (l->n == VIGIL_CUSTOM_MAX)
            return -VIGIL_EFULL;
        l->n++;
        snprintf(l->p[i].key, sizeof(l->p[i].key), "%s", key);
    }
    snprintf(l->p[i].value, sizeof(l->p[i].value), "%s", value);
    return 0;
}

int agent_status_load(struct vio_fs *fs, const char *path, const struct agent_pairs *base,
                      struct agent_pairs *out, void (*report)(void *arg, const char *line),
                      void *arg)
{
    *out = *base;
    size_t len = 0;
    char *buf = NULL;
    char line[AGENT_ERR_MAX];
    int err = fs->ops->read(fs, path, AGENT_STATUS_FILE_MAX, &buf, &len);
    if (err) {
        if (err == -ENOENT)
            return 0;
        if (err == -EFBIG)
            snprintf(line, sizeof(line), "%s: larger than %d bytes; ignored", path,
                     AGENT_STATUS_FILE_MAX);
        else
            snprintf(line, sizeof(line), "%s: %s", path, strerror(-err));
        report(arg, line);
        return -1;
    }
    char *p = buf, *end = buf + len;
    unsigned lineno = 0;
    /* Every pass consumes one line, so the file's length bounds the loop. */
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        char *key, *value;
        const char *why = "";
        lineno++;
        enum agent_line r = agent_status_line(p, l, &key, &value, &why);
        if (r == AGENT_LINE_BAD) {
            snprintf(line, sizeof(line), "%s:%u: %s; line skipped", path, lineno, why);
            report(arg, line);
        } else if (r == AGENT_LINE_PAIR && agent_pairs_set(out, key, value) == -VIGIL_EFULL) {
            snprintf(line, sizeof(line), "%s:%u: more than %d custom pairs; '%s' skipped", path,
                     lineno, VIGIL_CUSTOM_MAX, vigil_quote(key).s);
            report(arg, line);
        }
        p = nl != NULL ? nl + 1 : end;
    }
    free(buf);
    return 0;
}

static void report_to_file(void *arg, const char *line)
{
    fprintf(arg, "%s\n", line);
}

int agent_status_read(const char *path, const struct agent_pairs *base, struct agent_pairs *out,
                      FILE *errf)
{
    return agent_status_load(&vio_fs_real, path, base, out, report_to_file, errf);
}

/* ---- vigil agent --------------------------------------------------------- */

/* What the flags and the file give the agent before it starts. */
struct agent {
    struct vcfg cfg;
    struct agent_pairs base; /* config pairs, then --set pairs */
};

static void agent_usage(FILE *f, const char *name)
{
    fprintf(f,
            "usage: %s [options]\n"
            "Sends heartbeats with this node's status to one or more monitors.\n\n"
            "  -c, --config FILE       read the agent section of FILE\n"
            "      --id ID             node id (default: the host name)\n"
            "  -m, --monitor ADDR      a monitor, host:port or [v6]:port (default port %d);\n"
            "                          repeat for several (replaces the file's list)\n"
            "  -i, --interval DUR      heartbeat interval: 1s, 500ms, 1.5 (default 1s)\n"
            "  -k, --key-file FILE     this node's key file (vigil keygen --node ID)\n"
            "      --encrypt           seal (encrypt) the full statuses; needs a key\n"
            "      --status-file FILE  custom status as key=value lines, re-read on change\n"
            "      --generation-file FILE  keep the boot generation here, so that a restart\n"
            "                          is always newer even if the clock went back\n"
            "      --set KEY=VALUE     static custom status (repeatable)\n"
            "      --status-every N    send the full status at least every N heartbeats\n"
            "                          (default %d; it also goes out when it changes)\n"
            "  -h, --help              this help\n\n"
            "SIGTERM or SIGINT: send a goodbye heartbeat and exit 0. SIGHUP: read the\n"
            "key file again and send with that key from the next heartbeat on.\n",
            name, VIGIL_DEFAULT_PORT, VIGIL_SENDER_STATUS_EVERY_DEFAULT);
}

static char *agent_strdup(const char *s)
{
    char *r = strdup(s);
    if (r == NULL) {
        fprintf(stderr, "vigil agent: out of memory\n");
        exit(1);
    }
    return r;
}

/* Adds one "key=value" argument to l; returns 0 or prints why not and returns -1. */
static int add_set_arg(struct agent_pairs *l, const char *arg, const char *who)
{
    char tmp[AGENT_ARG_MAX];
    size_t len = strlen(arg);
    char *key, *value;
    const char *why = "line too long";
    if (len >= sizeof(tmp)) {
        fprintf(stderr, "%s: '%s': too long\n", who, vigil_quote(arg).s);
        return -1;
    }
    memcpy(tmp, arg, len + 1);
    enum agent_line r = agent_status_line(tmp, len, &key, &value, &why);
    if (r == AGENT_LINE_SKIP)
        why = "expected key=value";
    if (r != AGENT_LINE_PAIR) {
        fprintf(stderr, "%s: '%s': %s\n", who, vigil_quote(arg).s, why);
        return -1;
    }
    if (agent_pairs_set(l, key, value) < 0) {
        fprintf(stderr, "%s: more than %d custom pairs\n", who, VIGIL_CUSTOM_MAX);
        return -1;
    }
    return 0;
}

/*
 * Reads the config file and the flags into a. Returns 0 to run, -1 after
 * --help, or an exit status.
 */
/*
 * The agent's settings: the file, then the flags on top (also for a
 * reload: the same file and flags again). Returns 0; -1 after --help; or
 * 2 with the reason in msg (cap bytes) and, with usage_name (the
 * program's name; NULL for a reload), the usage printed.
 */
static int agent_setup(struct agent *a, int argc, char **argv, char *msg, size_t cap,
                       const char *usage_name)
{
    bool usage_on_error = usage_name != NULL;
    enum {
        OPT_ID = 256,
        OPT_STATUS_FILE,
        OPT_SET,
        OPT_GENERATION_FILE,
        OPT_STATUS_EVERY,
        OPT_ENCRYPT
    };
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"id", required_argument, 0, OPT_ID},
        {"monitor", required_argument, 0, 'm'},
        {"interval", required_argument, 0, 'i'},
        {"key-file", required_argument, 0, 'k'},
        {"status-file", required_argument, 0, OPT_STATUS_FILE},
        {"generation-file", required_argument, 0, OPT_GENERATION_FILE},
        {"set", required_argument, 0, OPT_SET},
        {"status-every", required_argument, 0, OPT_STATUS_EVERY},
        {"encrypt", no_argument, 0, OPT_ENCRYPT},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    static const char *shortopts = "c:m:i:k:h";
    struct vcfg_agent *ac = &a->cfg.agent;
    char err[AGENT_ERR_MAX];

    msg[0] = '\0';
    opterr = usage_on_error;
    a->cfg.role = "agent"; /* a monitor section's key files are not this host's to read */
    /* The file first, so that flags override it wherever they stand. */
    optind = 0;
    for (int o; (o = getopt_long(argc, argv, shortopts, opts, NULL)) != -1;) {
        if (o == 'h') {
            agent_usage(stdout, usage_name ? usage_name : "vigil agent");
            return -1;
        }
        if (o == '?') {
            if (usage_on_error)
                agent_usage(stderr, usage_name);
            return 2;
        }
        if (o == 'c' && vcfg_load(&a->cfg, optarg, err, sizeof(err)) != 0) {
            snprintf(msg, cap, "%s", err);
            return 2;
        }
    }
    if (optind < argc) {
        snprintf(msg, cap, "unexpected argument '%s'", vigil_quote(argv[optind]).s);
        if (usage_on_error)
            agent_usage(stderr, usage_name);
        return 2;
    }
    for (size_t i = 0; i < ac->n_custom; i++)
        if (agent_pairs_set(&a->base, ac->custom[i].key, ac->custom[i].value) < 0) {
            snprintf(msg, cap, "invalid custom pair '%s' in the config",
                     vigil_quote(ac->custom[i].key).s);
            return 2;
        }

    bool monitors_set = false;
    optind = 0;
    for (int o; (o = getopt_long(argc, argv, shortopts, opts, NULL)) != -1;) {
        switch (o) {
        case OPT_ID:
            free(ac->id);
            ac->id = agent_strdup(optarg);
            break;
        case 'm':
            if (!monitors_set) {
                for (size_t i = 0; i < ac->n_monitors; i++) {
                    free(ac->monitors[i]);
                    ac->monitors[i] = NULL;
                }
                ac->n_monitors = 0;
                monitors_set = true;
            }
            if (ac->n_monitors == VIGIL_SENDER_MAX_MONITORS) {
                snprintf(msg, cap, "at most %d monitors", VIGIL_SENDER_MAX_MONITORS);
                return 2;
            }
            ac->monitors[ac->n_monitors++] = agent_strdup(optarg);
            break;
        case 'i':
            if (vcfg_parse_duration(optarg, &ac->interval) != 0) {
                snprintf(msg, cap, "bad --interval '%s'", vigil_quote(optarg).s);
                return 2;
            }
            break;
        case 'k':
            if (vcfg_agent_key(ac, optarg, err, sizeof(err)) != 0) {
                snprintf(msg, cap, "%s", err);
                return 2;
            }
            break;
        case OPT_STATUS_FILE:
            free(ac->status_file);
            ac->status_file = agent_strdup(optarg);
            break;
        case OPT_ENCRYPT:
            ac->encrypt = true;
            break;
        case OPT_STATUS_EVERY: {
            char *end = NULL;
            unsigned long v = strtoul(optarg, &end, 10);
            if (end == optarg || *end != '\0' || optarg[0] == '-' || v < 1 ||
                v > VIGIL_SENDER_STATUS_EVERY_MAX) {
                snprintf(msg, cap, "bad --status-every '%s' (1 to %d)", vigil_quote(optarg).s,
                         VIGIL_SENDER_STATUS_EVERY_MAX);
                return 2;
            }
            ac->status_every = (uint32_t)v;
            break;
        }
        case OPT_GENERATION_FILE:
            free(ac->generation_file);
            ac->generation_file = agent_strdup(optarg);
            break;
        case OPT_SET:
            if (add_set_arg(&a->base, optarg, "vigil agent: --set") != 0)
                return 2;
            break;
        default:
            break;
        }
    }

    if (ac->id == NULL) {
        /* The host name, if it is a valid id; if not, vcfg_check() explains. */
        char host[AGENT_HOSTNAME_MAX];
        if (vcfg_host_id(host, sizeof(host)) == 0)
            ac->id = agent_strdup(host);
    }
    if (vcfg_check(&a->cfg, "agent", err, sizeof(err)) != 0) {
        snprintf(msg, cap, "%s", err);
        return 2;
    }
    if (ac->id == NULL) {
        snprintf(msg, cap, "no node id; set one with --id");
        return 2;
    }
    if (ac->n_monitors == 0) {
        snprintf(msg, cap, "no monitor; add one with --monitor HOST:PORT");
        return 2;
    }
    return 0;
}

/*
 * The boot generation, made persistent: the larger of the wall clock (in
 * microseconds) and one more than the generation stored in path, written
 * back (to a temporary file, then renamed) before the first heartbeat. A
 * monitor ignores heartbeats whose generation is not newer than the last
 * it accepted, so an agent that restarts with its clock behind (no
 * real-time clock, a restored snapshot, NTP not yet synchronised) would be
 * locked out without this.
 *
 * A file that cannot serve (empty, not a number, a number that cannot
 * grow, a directory, unreadable) must not stop the agent: under a service
 * manager that is a restart loop and a node that never sends. The agent
 * then starts over from the wall clock, which is what a valid file gives
 * at the least, says so (return 1, the reason in err) and writes the file
 * anew. A file that cannot be written is said the same way: the agent runs,
 * only without the protection against a clock that goes back.
 */
int agent_generation_next(struct vio_fs *fs, const char *path, uint64_t wall_us, uint64_t *out,
                          char *err, size_t cap)
{
    uint64_t stored = 0;
    char *text = NULL;
    size_t len = 0;
    char bad[AGENT_ERR_MAX] = "";
    /* One number and white space; 64 bytes hold any uint64_t and a newline. */
    int rc = fs->ops->read(fs, path, 64, &text, &len);
    if (rc == 0) {
        size_t b = 0, n = len;
        while (b < n && isspace((unsigned char)text[b]))
            b++;
        while (n > b && isspace((unsigned char)text[n - 1]))
            text[--n] = '\0';
        if (n == b)
            snprintf(bad, sizeof(bad), "%.200s is empty", path);
        else if (vcfg_parse_u64(text + b, UINT64_MAX, &stored) != 0)
            snprintf(bad, sizeof(bad), "%.200s does not hold a generation number", path);
        else if (stored == UINT64_MAX)
            snprintf(bad, sizeof(bad), "the generation in %.200s cannot grow any more", path);
        free(text);
        if (bad[0])
            stored = 0;
    } else if (rc != -ENOENT) {
        snprintf(bad, sizeof(bad), "cannot read %.200s: %s", path,
                 rc == -EFBIG ? "too large for a generation number" : strerror(-rc));
    }
    uint64_t gen = wall_us > stored ? wall_us : stored + 1;
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)gen);
    rc = fs->ops->replace(fs, path, buf, (size_t)n, 0644);
    *out = gen;
    if (bad[0] && rc)
        snprintf(err, cap,
                 "%s, and it cannot be written anew (%s): generation %llu from the clock, not kept "
                 "for the next start",
                 bad, strerror(-rc), (unsigned long long)gen);
    else if (bad[0])
        snprintf(err, cap, "%s: starting over with generation %llu from the clock, written to it",
                 bad, (unsigned long long)gen);
    else if (rc)
        snprintf(err, cap,
                 "cannot write %.200s (%s): generation %llu is not kept for the next start, so a "
                 "restart with the clock behind may be refused as stale",
                 path, strerror(-rc), (unsigned long long)gen);
    else
        return 0;
    return 1;
}

int agent_next_generation(const char *path, uint64_t wall_us, uint64_t *out)
{
    char err[AGENT_ERR_MAX];
    if (agent_generation_next(&vio_fs_real, path, wall_us, out, err, sizeof(err)) != 0)
        fprintf(stderr, "vigil agent: warning: %s\n", err);
    return 0;
}

struct agent_cmdline {
    int argc;
    char **argv;
};

/* The agent's settings from its command line again, for a reload. */
static int agent_reload(void *arg, struct vcfg *cfg, struct agent_pairs *base, char *err,
                        size_t cap)
{
    const struct agent_cmdline *cl = arg;
    /* On the heap: see agent_command. */
    struct agent *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    vcfg_init(&a->cfg);
    int rc = agent_setup(a, cl->argc, cl->argv, err, cap, NULL);
    if (rc != 0) {
        if (!err[0])
            snprintf(err, cap, "the command line no longer parses");
        vcfg_free(&a->cfg);
        free(a);
        return -1;
    }
    vcfg_free(cfg);
    *cfg = a->cfg;
    *base = a->base;
    free(a);
    return 0;
}

/* The agent's checks need an HTTP client (an http check). */
static bool agent_needs_http(const struct vcfg_agent *ac)
{
    for (size_t i = 0; i < ac->n_checks; i++)
        if (ac->checks[i].kind == VCFG_CHECK_HTTP)
            return true;
    return false;
}

/*
 * The environment lacks what the configuration needs: the program vigil
 * beside this one runs the agent instead, as `vigil agent` with the same
 * flags, in this process (the same pid, so a service manager sees no
 * change). Returns only when that fails.
 */
static int agent_handover(int argc, char **argv, const char *name, const char *why)
{
    char **args = calloc((size_t)argc + 2, sizeof(*args));
    if (!args) {
        fprintf(stderr, "%s: out of memory\n", name);
        return 1;
    }
    args[0] = "vigil";
    args[1] = "agent";
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    fprintf(stderr, "%s: %s: handing over to vigil agent\n", name, why);
    int rc = vio_exec_beside("vigil", args);
    fprintf(stderr, "%s: cannot run vigil agent (the program vigil beside this one): %s\n", name,
            strerror(-rc));
    free(args);
    return 1;
}

int agent_command(int argc, char **argv, const struct agent_host *host)
{
    /*
     * On the heap, freed once the agent has taken its section: a whole
     * configuration is 100 KB (the monitor's settings), which on the stack
     * would stay resident for as long as the agent runs.
     */
    struct agent *a = calloc(1, sizeof(*a));
    if (!a) {
        fprintf(stderr, "%s: out of memory\n", host->name);
        return 1;
    }
    vcfg_init(&a->cfg);
    char msg[AGENT_ERR_MAX];
    int rc = agent_setup(a, argc, argv, msg, sizeof(msg), host->name);
    if (rc == 0 && sodium_init() < 0) {
        snprintf(msg, sizeof(msg), "libsodium failed to initialize");
        rc = 1;
    }
    struct vio_env *env = NULL;
    /* Child processes only for checks (exec): an agent without them starts none. */
    if (rc == 0 && (rc = host->env_new(&env, a->cfg.agent.n_checks > 0)) != 0) {
        snprintf(msg, sizeof(msg), "cannot start: %s", strerror(-rc));
        rc = 1;
    }
    bool handover = rc == 0 && !env->http_open && agent_needs_http(&a->cfg.agent);
    struct agentd *d = NULL;
    if (rc == 0 && !handover && agentd_new(env, &a->cfg, &a->base, NULL, &d, msg, sizeof(msg)))
        rc = 1;
    vcfg_free(&a->cfg);
    free(a);
    if (rc != 0 || handover) {
        if (rc > 0 && msg[0])
            fprintf(stderr, "%s: %s\n", host->name, msg);
        vio_env_real_free(env);
        if (handover)
            return agent_handover(argc, argv, host->name, "an http check needs the HTTP client");
        return rc < 0 ? 0 : rc;
    }
    /* What starting took (the configuration, libconfig's tree) goes back to the system. */
    vio_trim_heap();
    /* SIGHUP reads the same file and flags again. */
    struct agent_cmdline cl = {argc, argv};
    agentd_set_reload(d, agent_reload, &cl);
    rc = vio_loop_run(env->loop);
    if (rc)
        fprintf(stderr, "%s: the event loop failed: %s\n", host->name, strerror(-rc));
    int sig = agentd_stop_signal(d);
    bool goodbye_failed = agentd_goodbye_failed(d);
    agentd_free(d);
    vio_env_real_free(env);
    return sig && !goodbye_failed ? 0 : 1;
}

/* ---- vigil set ------------------------------------------------------------- */

static void set_usage(FILE *f)
{
    fprintf(f, "usage: vigil set (--status-file FILE | -c CONFIG) KEY=VALUE... KEY=...\n"
               "Sets (KEY=VALUE) or removes (KEY=) custom status in an agent's status file.\n"
               "The file is replaced atomically; the agent applies it at its next heartbeat.\n\n"
               "  -c, --config FILE       take the status file from the agent section of FILE\n"
               "      --status-file FILE  the status file to edit\n"
               "  -h, --help              this help\n");
}

/* One assignment of vigil set: value NULL removes the key. */
struct set_assign {
    char key[VIGIL_CUSTOM_KEY_MAX + 1];
    char value[VIGIL_CUSTOM_VAL_MAX + 1];
    bool remove;     /* "KEY=": take the key out */
    bool overridden; /* a later argument sets the same key */
    bool done;       /* written into the output already */
};

/* The assignment that decides key, or -1. */
static int set_find(const struct set_assign *as, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!as[i].overridden && strcmp(as[i].key, key) == 0)
            return i;
    return -1;
}

/* Appends n bytes to the output buffer (sized beforehand for everything). */
static void out_put(char *out, size_t *len, const char *s, size_t n)
{
    memcpy(out + *len, s, n);
    *len += n;
}

int cmd_set(int argc, char **argv)
{
    enum { OPT_STATUS_FILE = 256 };
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"status-file", required_argument, 0, OPT_STATUS_FILE},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *path = NULL, *config = NULL;
    optind = 0;
    for (int o; (o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1;) {
        if (o == 'h') {
            set_usage(stdout);
            return 0;
        }
        if (o == 'c')
            config = optarg;
        else if (o == OPT_STATUS_FILE)
            path = optarg;
        else {
            set_usage(stderr);
            return 2;
        }
    }
    int n_assign = argc - optind;
    if (n_assign <= 0) {
        fprintf(stderr, "vigil set: nothing to set\n");
        set_usage(stderr);
        return 2;
    }

    /* Every assignment is checked before the file is touched. */
    struct set_assign *as = calloc((size_t)n_assign, sizeof(*as));
    struct vcfg cfg;
    vcfg_init(&cfg);
    cfg.role = "client"; /* reads settings only: no key file is read */
    char *buf = NULL, *out = NULL;
    int status = 2;
    if (as == NULL) {
        fprintf(stderr, "vigil set: out of memory\n");
        status = 1;
        goto done;
    }
    for (int i = 0; i < n_assign; i++) {
        const char *arg = argv[optind + i];
        char tmp[AGENT_ARG_MAX];
        size_t len = strlen(arg);
        char *key, *value;
        const char *why = "too long";
        enum agent_line r = AGENT_LINE_BAD;
        if (len < sizeof(tmp)) {
            memcpy(tmp, arg, len + 1);
            r = agent_status_line(tmp, len, &key, &value, &why);
        }
        if (r == AGENT_LINE_SKIP)
            why = "expected KEY=VALUE or KEY=";
        if (r != AGENT_LINE_PAIR) {
            fprintf(stderr, "vigil set: '%s': %s\n", vigil_quote(arg).s, why);
            goto done;
        }
        snprintf(as[i].key, sizeof(as[i].key), "%s", key);
        snprintf(as[i].value, sizeof(as[i].value), "%s", value);
        as[i].remove = value[0] == '\0';
        /* The same key twice: the last one wins. */
        for (int j = 0; j < i; j++)
            if (strcmp(as[j].key, as[i].key) == 0)
                as[j].overridden = true;
    }

    if (path == NULL && config != NULL) {
        char err[AGENT_ERR_MAX];
        if (vcfg_load(&cfg, config, err, sizeof(err)) != 0) {
            fprintf(stderr, "vigil set: %s\n", err);
            goto done;
        }
        path = cfg.agent.status_file;
    }
    if (path == NULL) {
        fprintf(stderr, "vigil set: no status file; use --status-file FILE\n");
        goto done;
    }

    size_t len = 0;
    uint32_t mode = 0644; /* readable by an agent running as another user */
    struct vio_fs *fs = &vio_fs_real;
    int err = fs->ops->read(fs, path, AGENT_STATUS_FILE_MAX, &buf, &len);
    if (err && err != -ENOENT) {
        fprintf(stderr, "vigil set: %s: %s\n", path,
                err == -EFBIG ? "too large for a status file" : strerror(-err));
        status = 1;
        goto done;
    }
    struct vio_stat st;
    if (buf != NULL && fs->ops->stat(fs, path, &st) == 0)
        mode = st.mode & 07777;

    /* The old content, one new line per assignment, and a newline to end the old. */
    out = malloc(len + (size_t)n_assign * (AGENT_ARG_MAX + 1) + 1);
    if (out == NULL) {
        fprintf(stderr, "vigil set: out of memory\n");
        status = 1;
        goto done;
    }
    size_t olen = 0;
    struct agent_pairs result = {.n = 0};
    char *p = buf, *end = buf != NULL ? buf + len : NULL;
    unsigned lineno = 0;
    char line[AGENT_ARG_MAX];
    /* Every pass consumes one line, so the file's length bounds the loop. */
    while (p != NULL && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        char *key = NULL, *value = NULL;
        const char *why = "line too long";
        enum agent_line r = AGENT_LINE_BAD;
        lineno++;
        if (l < sizeof(line)) {
            memcpy(line, p, l);
            line[l] = '\0';
            r = agent_status_line(line, l, &key, &value, &why);
        }
        int hit = r == AGENT_LINE_PAIR ? set_find(as, n_assign, key) : -1;
        if (r == AGENT_LINE_BAD)
            fprintf(stderr, "vigil set: %s:%u: %s (line kept as it is)\n", path, lineno, why);
        if (hit < 0) {
            out_put(out, &olen, p, l);
            out_put(out, &olen, "\n", 1);
            if (r == AGENT_LINE_PAIR && agent_pairs_set(&result, key, value) < 0) {
                fprintf(stderr, "vigil set: %s would hold more than %d pairs\n", path,
                        VIGIL_CUSTOM_MAX);
                goto done;
            }
        } else if (!as[hit].done) {
            /* The key's first line takes the new value; its later lines go. */
            as[hit].done = true;
            if (!as[hit].remove) {
                char nb[AGENT_ARG_MAX];
                int n = snprintf(nb, sizeof(nb), "%s=%s\n", as[hit].key, as[hit].value);
                out_put(out, &olen, nb, (size_t)n);
                agent_pairs_set(&result, as[hit].key, as[hit].value);
            }
        }
        p = nl != NULL ? nl + 1 : end;
    }
    for (int i = 0; i < n_assign; i++) {
        if (as[i].done || as[i].remove || as[i].overridden)
            continue;
        char nb[AGENT_ARG_MAX];
        int n = snprintf(nb, sizeof(nb), "%s=%s\n", as[i].key, as[i].value);
        out_put(out, &olen, nb, (size_t)n);
        if (agent_pairs_set(&result, as[i].key, as[i].value) < 0) {
            fprintf(stderr, "vigil set: %s would hold more than %d pairs\n", path,
                    VIGIL_CUSTOM_MAX);
            goto done;
        }
    }
    if ((err = fs->ops->replace(fs, path, out, olen, mode)) != 0) {
        fprintf(stderr, "vigil set: %s: %s\n", path, strerror(-err));
        status = 1;
        goto done;
    }
    status = 0;
done:
    free(out);
    free(buf);
    free(as);
    vcfg_free(&cfg);
    return status;
}

/* ---- vigil keygen ---------------------------------------------------------- */

int cmd_keygen(int argc, char **argv)
{
    enum { OPT_NODE = 256, OPT_MASTER, OPT_KEY_ID };
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},
        {"node", required_argument, 0, OPT_NODE},
        {"master", required_argument, 0, OPT_MASTER},
        {"key-id", required_argument, 0, OPT_KEY_ID},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *path = NULL, *node = NULL, *master = NULL;
    int key_id = -1;
    optind = 0;
    for (int o; (o = getopt_long(argc, argv, "o:h", opts, NULL)) != -1;) {
        if (o == 'o') {
            path = optarg;
        } else if (o == OPT_NODE) {
            node = optarg;
        } else if (o == OPT_MASTER) {
            master = optarg;
        } else if (o == OPT_KEY_ID) {
            char *end = NULL;
            unsigned long v = strtoul(optarg, &end, 10);
            if (end == optarg || *end != '\0' || optarg[0] == '-' || v > VIGIL_WIRE_KEY_ID_MAX) {
                fprintf(stderr, "vigil keygen: --key-id must be a number from 0 to %d\n",
                        VIGIL_WIRE_KEY_ID_MAX);
                return 2;
            }
            key_id = (int)v;
        } else {
            FILE *f = o == 'h' ? stdout : stderr;
            fprintf(f, "usage: vigil keygen [--key-id N] [-o FILE]\n"
                       "       vigil keygen --node ID --master FILE [-o FILE]\n"
                       "The first form makes a new random master key, for the monitor; the\n"
                       "second derives the node key of ID from the master key in FILE, for\n"
                       "the agent of that node only. Prints the key file, or writes it to a\n"
                       "new FILE readable by its owner only (an existing FILE is kept).\n"
                       "--key-id N (0 to 15) numbers a new master key, so that a monitor can\n"
                       "hold it beside the current one during a rotation; a node key takes\n"
                       "the id of its master key.\n");
            return o == 'h' ? 0 : 2;
        }
    }
    if (master && key_id >= 0) {
        fprintf(stderr, "vigil keygen: --key-id numbers a new master key; a node key takes the "
                        "id of its master key\n");
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "vigil keygen: unexpected argument '%s'\n", vigil_quote(argv[optind]).s);
        return 2;
    }
    if (!node != !master) {
        fprintf(stderr, "vigil keygen: --node and --master go together\n");
        return 2;
    }
    if (node && !vigil_id_valid(node, strlen(node))) {
        fprintf(stderr, "vigil keygen: invalid node id '%s' (1 to %d of A-Z a-z 0-9 . _ -)\n",
                vigil_quote(node).s, VIGIL_ID_MAX);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "vigil keygen: libsodium failed to initialize\n");
        return 1;
    }
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    if (master) {
        uint8_t mk[VIGIL_WIRE_KEY_LEN];
        enum vcfg_key_kind kind;
        char err[512];
        uint8_t mid = 0;
        if (vcfg_read_key_fs(&vio_fs_real, master, mk, &kind, NULL, &mid, err, sizeof(err)) != 0) {
            fprintf(stderr, "vigil keygen: %s\n", err);
            return 1;
        }
        if (kind != VCFG_KEY_MASTER) {
            sodium_memzero(mk, sizeof(mk));
            fprintf(stderr, "vigil keygen: %s: not a master key (no \"vigil-master-key\" line)\n",
                    master);
            return 1;
        }
        (void)vigil_wire_node_key(key, mk, node);
        sodium_memzero(mk, sizeof(mk));
        key_id = mid;
    } else {
        randombytes_buf(key, sizeof(key));
    }
    /* The header line ("vigil-node-key ", an id, " key-id=N"), the hex digits, newlines, NUL. */
    char text[48 + VIGIL_ID_MAX + 2 * VIGIL_WIRE_KEY_LEN + 2];
    char idw[24] = ""; /* " key-id=" and any int: room for what the compiler cannot bound */
    if (key_id > 0)
        snprintf(idw, sizeof(idw), " key-id=%d", key_id);
    int hl = node ? snprintf(text, sizeof(text), "vigil-node-key %s%s\n", node, idw)
                  : snprintf(text, sizeof(text), "vigil-master-key%s\n", idw);
    size_t len = (size_t)hl;
    sodium_bin2hex(text + len, sizeof(text) - len, key, sizeof(key));
    sodium_memzero(key, sizeof(key));
    len += 2 * VIGIL_WIRE_KEY_LEN;
    text[len++] = '\n';
    text[len] = '\0';

    int status = 0;
    if (path == NULL) {
        if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
            fprintf(stderr, "vigil keygen: %s\n", strerror(errno));
            status = 1;
        }
    } else {
        /* Exclusive: never overwrite a key (losing one locks every node out). */
        int err = vio_fs_real.ops->create(&vio_fs_real, path, text, len, 0600);
        if (err) {
            fprintf(stderr, "vigil keygen: %s: %s\n", path, strerror(-err));
            status = 1;
        }
    }
    sodium_memzero(text, sizeof(text));
    return status;
}
