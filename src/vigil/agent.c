/*
 * vigil agent, vigil set and vigil keygen: the node side of vigil.
 *
 * vigil agent runs on every monitored node. It is a thin loop around a
 * vigil_sender: sleep until the next slot of the heartbeat grid (an
 * absolute deadline on the monotonic clock, so the rhythm never drifts),
 * refresh the custom status, beat. The sender samples load, memory and
 * uptime from /proc itself. On SIGTERM or SIGINT the agent sends the
 * goodbye heartbeat (the LEAVING flag, twice against one lost datagram), so
 * the monitors mark the node "left" at once instead of convicting it as
 * dead a few seconds later, and exits 0. SIGTERM and SIGINT stay blocked
 * and the loop sleeps in sigtimedwait(), which takes a pending signal at
 * once: one that arrives while the agent works is not lost or delayed.
 *
 * Custom status comes from three places, applied in this order, later ones
 * winning for the same key: the config file's static pairs, --set flags,
 * and the status file. The status file is how other programs on the node
 * (a deploy script, a health check, vigil set) publish state without
 * talking to the agent: before each beat the agent stat()s it and re-reads
 * it only when its inode, size or modification time changed, so an
 * unchanged file costs one system call per heartbeat. A bad line is
 * reported once (when the file changes) with its file name and line number
 * and skipped; the other lines still apply.
 *
 * vigil set edits a status file safely while the agent may be reading it:
 * it writes the merged content to a temporary file in the same directory
 * and rename()s it over the old one, so a reader sees the old file or the
 * new one, never half of one. Comments and the order of lines are kept.
 *
 * vigil keygen prints a new cluster key: 32 random bytes from libsodium as
 * 64 hex digits, or writes them to a new file only its owner can read.
 *
 * Exit status: 0 on success (and on a signalled agent's clean stop), 1 when
 * something fails at run time, 2 for a usage or configuration error.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <vigil/vigil.h>

#include "agent.h"
#include "cmds.h"
#include "config.h"
#include "core/schedule.h"
#include "io/netaddr.h"

/* At most one line per this long for each kind of recurring complaint. */
#define AGENT_LOG_EVERY (10 * VIGIL_NSEC_PER_SEC)

/*
 * Longest --set or vigil set argument: a 32-byte key, '=', a 48-byte value
 * and generous room for white space around them.
 */
#define AGENT_ARG_MAX 256

/* Host names are at most 255 bytes (POSIX HOST_NAME_MAX on Linux is 64). */
#define AGENT_HOSTNAME_MAX 256

/* Room for a config error: "FILE:LINE: " and a sentence; longer ones are cut. */
#define AGENT_ERR_MAX 512

/*
 * Room for one monitor in the start-up line: "[v6 address]:port" is at most
 * 54 bytes, and a host name that does not fit is cut, not overflowed.
 */
#define AGENT_MONITOR_LOG 64

/* Set by the signal handler, read by the loop: the signal that asks us to stop. */
static volatile sig_atomic_t agent_stop_signal;

static void agent_on_signal(int sig)
{
    agent_stop_signal = sig;
}

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

/*
 * Reads a whole status file (at most AGENT_STATUS_FILE_MAX bytes) into a
 * new NUL-terminated buffer. NULL with *err = errno on failure; EFBIG if
 * the file is larger than allowed.
 */
static char *read_status_file(const char *path, size_t *len, int *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        return NULL;
    }
    /* One byte more than allowed, to notice a file that is too large. */
    char *buf = malloc(AGENT_STATUS_FILE_MAX + 2);
    if (buf == NULL) {
        close(fd);
        *err = ENOMEM;
        return NULL;
    }
    size_t got = 0;
    /* Every pass reads at least one byte or ends the loop. */
    while (got < AGENT_STATUS_FILE_MAX + 1) {
        ssize_t n = read(fd, buf + got, AGENT_STATUS_FILE_MAX + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = errno;
            close(fd);
            free(buf);
            return NULL;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got > AGENT_STATUS_FILE_MAX) {
        free(buf);
        *err = EFBIG;
        return NULL;
    }
    buf[got] = '\0';
    *len = got;
    return buf;
}

int agent_status_read(const char *path, const struct agent_pairs *base, struct agent_pairs *out,
                      FILE *errf)
{
    *out = *base;
    size_t len = 0;
    int err = 0;
    char *buf = read_status_file(path, &len, &err);
    if (buf == NULL) {
        if (err == ENOENT)
            return 0;
        if (err == EFBIG)
            fprintf(errf, "%s: larger than %d bytes; ignored\n", path, AGENT_STATUS_FILE_MAX);
        else
            fprintf(errf, "%s: %s\n", path, strerror(err));
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
        if (r == AGENT_LINE_BAD)
            fprintf(errf, "%s:%u: %s; line skipped\n", path, lineno, why);
        else if (r == AGENT_LINE_PAIR && agent_pairs_set(out, key, value) == -VIGIL_EFULL)
            fprintf(errf, "%s:%u: more than %d custom pairs; '%s' skipped\n", path, lineno,
                    VIGIL_CUSTOM_MAX, key);
        p = nl != NULL ? nl + 1 : end;
    }
    free(buf);
    return 0;
}

/* ---- vigil agent --------------------------------------------------------- */

/* At most one line per AGENT_LOG_EVERY. */
struct ratelimit {
    vigil_time_t last;
    bool used;
};

static bool ratelimit_ok(struct ratelimit *r, vigil_time_t now)
{
    if (r->used && now - r->last < AGENT_LOG_EVERY)
        return false;
    r->used = true;
    r->last = now;
    return true;
}

struct agent {
    struct vcfg cfg;
    struct vigil_sender *sender;
    struct agent_pairs base; /* config pairs, then --set pairs */
    bool file_seen;          /* the status file existed at the last look */
    struct stat file_st;     /* and was this one */
    bool file_checked;       /* the status file was looked at once */
    struct ratelimit send_log, late_log;
    uint64_t errors_reported;
};

static void agent_usage(FILE *f)
{
    fprintf(f,
            "usage: vigil agent [options]\n"
            "Sends heartbeats with this node's status to one or more monitors.\n\n"
            "  -c, --config FILE       read the agent section of FILE\n"
            "      --id ID             node id (default: the host name)\n"
            "  -m, --monitor ADDR      a monitor, host:port or [v6]:port (default port %d);\n"
            "                          repeat for several (replaces the file's list)\n"
            "  -i, --interval DUR      heartbeat interval: 1s, 500ms, 1.5 (default 1s)\n"
            "  -k, --key-file FILE     cluster key file (64 hex digits, see vigil keygen)\n"
            "      --status-file FILE  custom status as key=value lines, re-read on change\n"
            "      --generation-file FILE  keep the boot generation here, so that a restart\n"
            "                          is always newer even if the clock went back\n"
            "      --set KEY=VALUE     static custom status (repeatable)\n"
            "  -h, --help              this help\n\n"
            "SIGTERM or SIGINT: send a goodbye heartbeat and exit 0.\n",
            VIGIL_DEFAULT_PORT);
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
        fprintf(stderr, "%s: '%s': too long\n", who, arg);
        return -1;
    }
    memcpy(tmp, arg, len + 1);
    enum agent_line r = agent_status_line(tmp, len, &key, &value, &why);
    if (r == AGENT_LINE_SKIP)
        why = "expected key=value";
    if (r != AGENT_LINE_PAIR) {
        fprintf(stderr, "%s: '%s': %s\n", who, arg, why);
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
static int agent_setup(struct agent *a, int argc, char **argv)
{
    enum { OPT_ID = 256, OPT_STATUS_FILE, OPT_SET, OPT_GENERATION_FILE };
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"id", required_argument, 0, OPT_ID},
        {"monitor", required_argument, 0, 'm'},
        {"interval", required_argument, 0, 'i'},
        {"key-file", required_argument, 0, 'k'},
        {"status-file", required_argument, 0, OPT_STATUS_FILE},
        {"generation-file", required_argument, 0, OPT_GENERATION_FILE},
        {"set", required_argument, 0, OPT_SET},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    static const char *shortopts = "c:m:i:k:h";
    struct vcfg_agent *ac = &a->cfg.agent;
    char err[AGENT_ERR_MAX];

    /* The file first, so that flags override it wherever they stand. */
    optind = 0;
    for (int o; (o = getopt_long(argc, argv, shortopts, opts, NULL)) != -1;) {
        if (o == 'h') {
            agent_usage(stdout);
            return -1;
        }
        if (o == '?') {
            agent_usage(stderr);
            return 2;
        }
        if (o == 'c' && vcfg_load(&a->cfg, optarg, err, sizeof(err)) != 0) {
            fprintf(stderr, "vigil agent: %s\n", err);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vigil agent: unexpected argument '%s'\n", argv[optind]);
        agent_usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < ac->n_custom; i++)
        if (agent_pairs_set(&a->base, ac->custom[i].key, ac->custom[i].value) < 0) {
            fprintf(stderr, "vigil agent: invalid custom pair '%s' in the config\n",
                    ac->custom[i].key);
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
                fprintf(stderr, "vigil agent: at most %d monitors\n", VIGIL_SENDER_MAX_MONITORS);
                return 2;
            }
            ac->monitors[ac->n_monitors++] = agent_strdup(optarg);
            break;
        case 'i':
            if (vcfg_parse_duration(optarg, &ac->interval) != 0) {
                fprintf(stderr, "vigil agent: bad --interval '%s'\n", optarg);
                return 2;
            }
            break;
        case 'k':
            if (vcfg_read_key(optarg, ac->key, err, sizeof(err)) != 0) {
                fprintf(stderr, "vigil agent: %s\n", err);
                return 2;
            }
            ac->has_key = true;
            break;
        case OPT_STATUS_FILE:
            free(ac->status_file);
            ac->status_file = agent_strdup(optarg);
            break;
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
        if (gethostname(host, sizeof(host)) == 0) {
            host[sizeof(host) - 1] = '\0';
            if (vigil_id_valid(host, strlen(host)))
                ac->id = agent_strdup(host);
        }
    }
    if (vcfg_check(&a->cfg, "agent", err, sizeof(err)) != 0) {
        fprintf(stderr, "vigil agent: %s\n", err);
        return 2;
    }
    if (ac->id == NULL) {
        fprintf(stderr, "vigil agent: no node id; set one with --id\n");
        return 2;
    }
    if (ac->n_monitors == 0) {
        fprintf(stderr, "vigil agent: no monitor; add one with --monitor HOST:PORT\n");
        return 2;
    }
    return 0;
}

/* Formats a duration the way the flags take it: "1s", "250ms", "1500us". */
static void format_duration(vigil_time_t ns, char *buf, size_t cap)
{
    if (ns % VIGIL_NSEC_PER_SEC == 0)
        snprintf(buf, cap, "%" PRId64 "s", ns / VIGIL_NSEC_PER_SEC);
    else if (ns % VIGIL_NSEC_PER_MSEC == 0)
        snprintf(buf, cap, "%" PRId64 "ms", ns / VIGIL_NSEC_PER_MSEC);
    else if (ns % 1000 == 0)
        snprintf(buf, cap, "%" PRId64 "us", ns / 1000);
    else
        snprintf(buf, cap, "%" PRId64 "ns", ns);
}

/* Makes pairs the sender's custom status; reports what does not fit. */
static void agent_apply_pairs(struct agent *a, const struct agent_pairs *pairs)
{
    vigil_sender_clear_custom(a->sender);
    for (size_t i = 0; i < pairs->n; i++) {
        int rc = vigil_sender_set_custom(a->sender, pairs->p[i].key, pairs->p[i].value);
        if (rc < 0)
            fprintf(stderr, "vigil agent: custom status '%s' dropped: %s\n", pairs->p[i].key,
                    vigil_strerror(rc));
    }
}

/* Re-reads the status file if it changed since the last look (always the first time). */
static void agent_refresh_status(struct agent *a)
{
    const char *path = a->cfg.agent.status_file;
    if (path == NULL) {
        if (!a->file_checked)
            agent_apply_pairs(a, &a->base);
        a->file_checked = true;
        return;
    }
    struct stat st;
    bool seen = stat(path, &st) == 0;
    if (!seen && errno != ENOENT && (!a->file_checked || a->file_seen))
        fprintf(stderr, "vigil agent: %s: %s\n", path, strerror(errno));
    if (a->file_checked && seen == a->file_seen &&
        (!seen ||
         (st.st_dev == a->file_st.st_dev && st.st_ino == a->file_st.st_ino &&
          st.st_size == a->file_st.st_size && st.st_mtim.tv_sec == a->file_st.st_mtim.tv_sec &&
          st.st_mtim.tv_nsec == a->file_st.st_mtim.tv_nsec)))
        return;
    a->file_checked = true;
    a->file_seen = seen;
    if (seen)
        a->file_st = st;
    struct agent_pairs pairs;
    if (seen)
        agent_status_read(path, &a->base, &pairs, stderr);
    else
        pairs = a->base;
    agent_apply_pairs(a, &pairs);
}

/*
 * The boot generation, made persistent: the larger of the wall clock (in
 * microseconds) and one more than the generation stored in path, written
 * back (to a temporary file, then renamed) before the first heartbeat. A
 * monitor ignores heartbeats whose generation is not newer than the last
 * it accepted, so an agent that restarts with its clock behind (no
 * real-time clock, a restored snapshot, NTP not yet synchronised) would be
 * locked out without this.
 */
int agent_next_generation(const char *path, uint64_t wall_us, uint64_t *out)
{
    uint64_t stored = 0;
    FILE *f = fopen(path, "re");
    if (f) {
        /* One number and white space; 64 bytes hold any uint64_t and a newline. */
        char text[64];
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = '\0';
        size_t b = 0;
        while (b < n && isspace((unsigned char)text[b]))
            b++;
        while (n > b && isspace((unsigned char)text[n - 1]))
            text[--n] = '\0';
        if (vcfg_parse_u64(text + b, UINT64_MAX, &stored) != 0) {
            fprintf(stderr, "vigil agent: %s: not a generation number\n", path);
            return -1;
        }
    } else if (errno != ENOENT) {
        fprintf(stderr, "vigil agent: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (stored == UINT64_MAX) {
        fprintf(stderr, "vigil agent: %s: the generation cannot grow any more\n", path);
        return -1;
    }
    uint64_t gen = wall_us > stored ? wall_us : stored + 1;
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        fprintf(stderr, "vigil agent: %s: path too long\n", path);
        return -1;
    }
    f = fopen(tmp, "we");
    if (!f || fprintf(f, "%llu\n", (unsigned long long)gen) < 0 || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        fprintf(stderr, "vigil agent: cannot write %s: %s\n", tmp, strerror(errno));
        if (f)
            fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "vigil agent: cannot replace %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    *out = gen;
    return 0;
}

/* One heartbeat, and a (rate-limited) line about send errors. */
static void agent_beat(struct agent *a, bool leaving)
{
    errno = 0;
    int rc = vigil_sender_beat(a->sender, leaving);
    int err = errno;
    uint64_t total = vigil_sender_errors(a->sender);
    if (rc < 0 && rc != -VIGIL_ESYS)
        fprintf(stderr, "vigil agent: heartbeat not sent: %s\n", vigil_strerror(rc));
    if (total > a->errors_reported && (leaving || ratelimit_ok(&a->send_log, vigil_clock_mono()))) {
        fprintf(stderr,
                "vigil agent: %" PRIu64 " send error(s) (%" PRIu64 " in all), the last: %s\n",
                total - a->errors_reported, total, err != 0 ? strerror(err) : "unknown");
        a->errors_reported = total;
    }
}

/* The heartbeat loop: until a signal asks to stop. */
static void agent_run(struct agent *a)
{
    const vigil_time_t interval = a->cfg.agent.interval;
    /* The loop ends when a signal sets agent_stop_signal; each pass sleeps or beats once. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    while (!agent_stop_signal) {
        /*
         * SIGTERM and SIGINT are blocked: one that comes while the agent
         * works stays pending, and sigtimedwait takes it at once, so no
         * signal can slip in between a check and the sleep.
         */
        vigil_time_t due = vigil_sender_next(a->sender);
        vigil_time_t wait = due - vigil_clock_mono();
        if (wait > 0) {
            struct timespec ts = {.tv_sec = (time_t)(wait / VIGIL_NSEC_PER_SEC),
                                  .tv_nsec = (long)(wait % VIGIL_NSEC_PER_SEC)};
            int sig = sigtimedwait(&stop, NULL, &ts);
            if (sig > 0) {
                agent_stop_signal = sig;
                break;
            }
            if (sig < 0 && errno != EAGAIN && errno != EINTR) {
                fprintf(stderr, "vigil agent: sigtimedwait: %s\n", strerror(errno));
                return;
            }
            if (vigil_clock_mono() < due)
                continue; /* woken early by another signal */
        }
        agent_refresh_status(a);
        vigil_time_t now = vigil_clock_mono();
        uint64_t missed = vigil__sched_missed(due, interval, now);
        if (missed > 0 && ratelimit_ok(&a->late_log, now))
            fprintf(stderr,
                    "vigil agent: ran %.1f s late (stopped or starved); %" PRIu64
                    " heartbeat(s) skipped\n",
                    (double)(now - due) / (double)VIGIL_NSEC_PER_SEC, missed);
        agent_beat(a, false);
    }
}

/* Explains which monitor could not be used, or why the sender failed. */
static void agent_sender_error(const struct vcfg_agent *ac, int rc)
{
    for (size_t i = 0; i < ac->n_monitors; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        const char *why = "";
        if (vigil__addr_resolve(ac->monitors[i], VIGIL_DEFAULT_PORT, &ss, &len, &why) < 0) {
            fprintf(stderr, "vigil agent: monitor '%s': %s\n", ac->monitors[i], why);
            return;
        }
    }
    fprintf(stderr, "vigil agent: cannot start: %s\n", vigil_strerror(rc));
}

int cmd_agent(int argc, char **argv)
{
    struct agent a;
    memset(&a, 0, sizeof(a));
    vcfg_init(&a.cfg);
    int rc = agent_setup(&a, argc, argv);
    if (rc != 0) {
        vcfg_free(&a.cfg);
        return rc < 0 ? 0 : rc;
    }
    struct vcfg_agent *ac = &a.cfg.agent;
    if (sodium_init() < 0) {
        fprintf(stderr, "vigil agent: libsodium failed to initialize\n");
        vcfg_free(&a.cfg);
        return 1;
    }

    struct vigil_sender_config sc;
    vigil_sender_config_default(&sc);
    if (ac->generation_file &&
        agent_next_generation(ac->generation_file, (uint64_t)vigil_clock_wall_us(),
                              &sc.generation) != 0) {
        vcfg_free(&a.cfg);
        return 1;
    }
    sc.id = ac->id;
    for (size_t i = 0; i < ac->n_monitors; i++)
        sc.monitors[i] = ac->monitors[i];
    sc.n_monitors = ac->n_monitors;
    sc.interval = ac->interval;
    sc.key = ac->has_key ? ac->key : NULL;
    sc.sample_proc = true;
    rc = vigil_sender_new(&sc, &a.sender);
    if (rc < 0) {
        agent_sender_error(ac, rc);
        vcfg_free(&a.cfg);
        return 1;
    }

    /* No SA_RESTART: the signal must cut the sleep short. */
    struct sigaction sa, old_term, old_int;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = agent_on_signal;
    sigemptyset(&sa.sa_mask);
    agent_stop_signal = 0;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    sigset_t stop, old_mask;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, &old_mask);

    char monitors[VIGIL_SENDER_MAX_MONITORS * AGENT_MONITOR_LOG] = "";
    char iv[32]; /* "3600000ms" at most: an int64 and a unit */
    for (size_t i = 0; i < ac->n_monitors; i++) {
        size_t used = strlen(monitors);
        snprintf(monitors + used, sizeof(monitors) - used, "%s%s", i ? "," : "", ac->monitors[i]);
    }
    format_duration(ac->interval, iv, sizeof(iv));
    fprintf(stderr, "vigil agent: id=%s generation=%" PRIu64 " monitors=%s interval=%s\n", ac->id,
            vigil_sender_generation(a.sender), monitors, iv);

    agent_run(&a);

    /*
     * The goodbye, however the loop ended: twice, so that one lost datagram
     * does not turn a clean shutdown into a death (the monitor ignores the
     * second once the node has left).
     */
    agent_beat(&a, true);
    agent_beat(&a, true);
    if (agent_stop_signal)
        fprintf(stderr, "vigil agent: %s: goodbye sent, exiting\n", strsignal(agent_stop_signal));
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    vigil_sender_free(a.sender);
    vcfg_free(&a.cfg);
    return agent_stop_signal ? 0 : 1;
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

/* Writes len bytes to path atomically: a temporary file in its directory, then rename(). */
static int write_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
    size_t plen = strlen(path);
    /* The path, ".XXXXXX" for mkostemp() and the NUL: 8 bytes more. */
    char *tmp = malloc(plen + 8);
    char *dir = strdup(path);
    int fd = -1, rc = -1;
    if (tmp == NULL || dir == NULL) {
        errno = ENOMEM;
        goto out;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".XXXXXX", 8);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        goto out;
    if (fchmod(fd, mode) != 0)
        goto fail;
    size_t off = 0;
    /* Every pass writes at least one byte or fails. */
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    /* Make the rename itself durable; a failure here loses nothing already visible. */
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    rc = 0;
    goto out;
fail : {
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = e;
}
out:
    free(tmp);
    free(dir);
    return rc;
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
            fprintf(stderr, "vigil set: '%s': %s\n", arg, why);
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
    int err = 0;
    mode_t mode = 0644; /* readable by an agent running as another user */
    buf = read_status_file(path, &len, &err);
    if (buf == NULL && err != ENOENT) {
        fprintf(stderr, "vigil set: %s: %s\n", path,
                err == EFBIG ? "too large for a status file" : strerror(err));
        status = 1;
        goto done;
    }
    struct stat st;
    if (buf != NULL && stat(path, &st) == 0)
        mode = st.st_mode & 07777;

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
    if (write_atomic(path, out, olen, mode) != 0) {
        fprintf(stderr, "vigil set: %s: %s\n", path, strerror(errno));
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
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *path = NULL;
    optind = 0;
    for (int o; (o = getopt_long(argc, argv, "o:h", opts, NULL)) != -1;) {
        if (o == 'o') {
            path = optarg;
        } else {
            FILE *f = o == 'h' ? stdout : stderr;
            fprintf(f, "usage: vigil keygen [-o FILE]\n"
                       "Prints a new random cluster key (64 hex digits), or writes it to a\n"
                       "new FILE readable by its owner only (an existing FILE is kept).\n");
            return o == 'h' ? 0 : 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vigil keygen: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "vigil keygen: libsodium failed to initialize\n");
        return 1;
    }
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    /* Two hex digits per byte, a newline and the NUL. */
    char hex[2 * VIGIL_WIRE_KEY_LEN + 2];
    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
    sodium_memzero(key, sizeof(key));
    size_t len = 2 * VIGIL_WIRE_KEY_LEN;
    hex[len++] = '\n';
    hex[len] = '\0';

    int status = 0;
    if (path == NULL) {
        if (fwrite(hex, 1, len, stdout) != len || fflush(stdout) != 0) {
            fprintf(stderr, "vigil keygen: %s\n", strerror(errno));
            status = 1;
        }
    } else {
        /* O_EXCL: never overwrite a key (losing one locks every node out). */
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        ssize_t n = -1;
        if (fd >= 0) {
            n = write(fd, hex, len);
            /* The umask can only narrow 0600; make sure nothing widened it. */
            if (n == (ssize_t)len && (fchmod(fd, 0600) != 0 || fsync(fd) != 0))
                n = -1;
        }
        if (fd < 0 || n != (ssize_t)len) {
            fprintf(stderr, "vigil keygen: %s: %s\n", path,
                    n >= 0 && fd >= 0 ? "short write" : strerror(errno));
            if (fd >= 0)
                unlink(path);
            status = 1;
        }
        if (fd >= 0 && close(fd) != 0 && status == 0) {
            fprintf(stderr, "vigil keygen: %s: %s\n", path, strerror(errno));
            status = 1;
        }
    }
    sodium_memzero(hex, sizeof(hex));
    return status;
}
