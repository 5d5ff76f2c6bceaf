/*
 * Configuration of the vigil program: the embedded defaults, the parser of
 * the configuration file, and the checks of relations between settings.
 *
 * The file is in libconfig syntax with two optional sections, "monitor" and
 * "agent" (docs/configuration.md lists every setting). The rule throughout
 * is that nothing is guessed: a setting this file does not know is an
 * error (a typo must not silently fall back to a default), a value of the
 * wrong type is an error, and every error names the file, the line and
 * what is wrong, so that the program refuses to start with a message an
 * operator can act on.
 *
 * Loading happens in three steps. First the raw text is scanned for what
 * libconfig (1.5, as Debian ships it) would get wrong: a NUL byte (libconfig
 * stops reading there), an @include (vigil reads exactly one file, and a
 * fuzzed or mistyped include could make libconfig open any path), integer
 * literals beyond 32 bits, which libconfig wraps around without a word
 * (4294967298 would read as 2), a string still open at the end of the text
 * (libconfig accepts it), a string where the grammar admits none (libconfig
 * leaks it) and absurdly deep nesting. Then libconfig parses the text. Then
 * every group is walked member by member against a table of the settings
 * it may hold, and each value is type-checked, range-checked and stored.
 *
 * Relations between settings (a dead timeout shorter than two heartbeat
 * intervals, a suspicion threshold above the dead one, ...) are checked
 * later by vcfg_check, after command-line flags have been applied on top of
 * the file. To still name the file and the line of an offending setting
 * there, loading records each related setting's line with a fingerprint of
 * the value read; vcfg_check cites the line only while the value is still
 * that one, so that a flag that overrode a setting is never blamed on the
 * file.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>
#include <sodium.h>

#include "config.h"

/*
 * The largest configuration file read. 4096 declared nodes of 64
 * characters each, with comments, fit well under 1 MiB; 4 MiB leaves room
 * and still bounds what a wrong path (a log, a device) can make us read.
 */
#define FILE_MAX (4u << 20)

/*
 * The largest key file read: 64 hex digits and white space. 4 KiB is far
 * more than any sane formatting needs and stops at once on a wrong file.
 */
#define KEY_FILE_MAX 4096

/* The API's port when monitor.api names none: the heartbeat port plus one. */
#define DEFAULT_API_PORT 7947

/*
 * Heartbeat intervals from 10 ms to 1 h. Below 10 ms the scheduling jitter
 * of an ordinary host is of the order of the interval itself; above an hour
 * a failure detector is no longer detecting anything useful.
 */
#define INTERVAL_MIN (10 * VIGIL_NSEC_PER_MSEC)
#define INTERVAL_MAX (3600 * VIGIL_NSEC_PER_SEC)

/* Ranges of integer settings; the reason for each bound is in docs/configuration.md. */
#define RISE_MAX          100       /* a hundred heartbeats: recovery well past any flapping */
#define MAX_NODES_MAX     (1 << 24) /* 16777216 nodes: the node table's own limit */
#define EVENT_HISTORY_MAX 1000000   /* a million events: a few hundred MB at most */

/* Hook timeout when none is set: time for a notification over a slow network. */
#define HOOK_TIMEOUT_DEFAULT (10 * VIGIL_NSEC_PER_SEC)
/* A failed hook runs twice more, 1 s and then 2 s later: enough for a
 * transient failure (a load balancer restarting), short enough that the
 * node's next events are not held back for long. */
#define HOOK_RETRIES_DEFAULT     2
#define HOOK_RETRY_DELAY_DEFAULT VIGIL_NSEC_PER_SEC

/* Longest setting path in a message ("monitor.hooks[15].command[31]" and the like). */
#define PATH_MAX_LEN 160

/* Deepest nesting a setting path is built from; the schema nests four levels at most. */
#define PATH_DEPTH 8

/*
 * Settings whose origin is recorded for vcfg_check. A list has a slot for
 * itself (its count is the fingerprint); listen addresses also have one
 * slot each, indexed by position.
 */
enum {
    O_M_LISTEN,   /* monitor.listen (the list: its count) */
    O_M_LISTEN_0, /* monitor.listen[i] */
    O_M_API = O_M_LISTEN_0 + VCFG_MAX_LISTEN,
    O_M_INTERVAL,
    O_M_DETECTOR, /* monitor.detector.type */
    O_M_SUSPECT,  /* suspect_after or suspect_threshold */
    O_M_DEAD,     /* dead_after or dead_threshold */
    O_M_FIRST,
    O_M_MIN_SD,
    O_M_ACC_PAUSE,
    O_M_WINDOW,
    O_M_GRACE,
    O_M_PAUSE_TOL,
    O_M_RISE,
    O_M_MAX_NODES,
    O_M_NODES,
    O_M_EVENTS,
    O_A_ID,
    O_A_MONITORS,
    O_A_INTERVAL,
    O_COUNT_
};
_Static_assert(O_COUNT_ <= VCFG_ORIGINS, "VCFG_ORIGINS too small");

/* --- small helpers ------------------------------------------------------ */

static void put_err(char *err, size_t cap, const char *fmt, va_list ap)
{
    if (err != NULL && cap > 0)
        vsnprintf(err, cap, fmt, ap);
}

static int errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put_err(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* 64-bit FNV-1a of a string: the fingerprint of a string setting. */
static uint64_t print_str(const char *s)
{
    /* FNV-1a's offset basis and prime, as published; NULL and "" differ. */
    uint64_t h = UINT64_C(14695981039346656037);
    if (s == NULL)
        return 0;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static uint64_t print_dbl(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

static uint64_t print_int(int64_t v)
{
    return (uint64_t)v;
}

/* Formats a duration for a message: "2 s", "1.5 s", "250 ms", "40 us". */
static const char *fmt_dur(vigil_time_t ns, char *buf, size_t cap)
{
    double v = (double)ns;
    /* Ten significant digits show any setting written to the millisecond exactly. */
    if (ns == 0 || ns >= VIGIL_NSEC_PER_SEC || ns <= -VIGIL_NSEC_PER_SEC)
        snprintf(buf, cap, "%.10g s", v / 1e9);
    else if (ns >= VIGIL_NSEC_PER_MSEC || ns <= -VIGIL_NSEC_PER_MSEC)
        snprintf(buf, cap, "%.10g ms", v / 1e6);
    else
        snprintf(buf, cap, "%.10g us", v / 1e3);
    return buf;
}

/* Seconds (a fixed detector's threshold) to ns, clamped to the duration range. */
static vigil_time_t secs_to_ns(double s)
{
    if (!(s > 0))
        return 0;
    if (s * 1e9 >= (double)VCFG_DURATION_MAX)
        return VCFG_DURATION_MAX;
    return (vigil_time_t)llround(s * 1e9);
}

/* --- durations ------------------------------------------------------------ */

int vcfg_parse_duration(const char *s, vigil_time_t *out)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"ms", VIGIL_NSEC_PER_MSEC},
        {"s", VIGIL_NSEC_PER_SEC},
        {"m", 60 * VIGIL_NSEC_PER_SEC},
        {"h", 3600 * VIGIL_NSEC_PER_SEC},
    };
    if (s == NULL || out == NULL)
        return -1;
    /* Digits, an optional fraction, an optional unit; nothing else. */
    const char *p = s;
    int64_t whole = 0;
    bool overflow = false;
    size_t nd = 0;
    for (; *p >= '0' && *p <= '9'; p++, nd++) {
        if (whole > (INT64_MAX - 9) / 10)
            overflow = true;
        else
            whole = whole * 10 + (*p - '0');
    }
    const char *frac = NULL;
    size_t nf = 0;
    if (*p == '.') {
        frac = ++p;
        for (; *p >= '0' && *p <= '9'; p++)
            nf++;
        if (nf == 0)
            return -1; /* "1." */
    }
    if (nd == 0 && nf == 0)
        return -1;
    int64_t unit = VIGIL_NSEC_PER_SEC; /* a bare number is seconds */
    if (*p != '\0') {
        size_t u = 0;
        for (; u < sizeof(units) / sizeof(units[0]); u++)
            if (!strcmp(p, units[u].name))
                break;
        if (u == sizeof(units) / sizeof(units[0]))
            return -1;
        unit = units[u].ns;
    }
    if (overflow || whole > VCFG_DURATION_MAX / unit)
        return -1;
    /*
     * The fraction times the unit, exactly, by Horner's rule from the last
     * digit: q + t = (digit * unit + q' + t') / 10, where q is the integer
     * part and t in [0, 1) the rest. The remainder of the first step alone
     * decides rounding: t >= 0.5 exactly when that remainder is 5 or more.
     * Every intermediate is below 10 * unit, far inside int64_t.
     */
    int64_t q = 0, r = 0;
    for (size_t i = nf; i > 0; i--) {
        int64_t num = (frac[i - 1] - '0') * unit + q;
        q = num / 10;
        r = num % 10;
    }
    int64_t ns = whole * unit;
    if (q + (r >= 5) > VCFG_DURATION_MAX - ns)
        return -1;
    *out = ns + q + (r >= 5);
    return 0;
}

/* --- key files ------------------------------------------------------------ */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int vcfg_read_key(const char *path, uint8_t key[VIGIL_WIRE_KEY_LEN], char *err, size_t cap)
{
    char buf[KEY_FILE_MAX + 1];
    size_t len = 0;
    int rc = -1;

    memset(key, 0, VIGIL_WIRE_KEY_LEN);
    if (path == NULL || *path == '\0')
        return errf(err, cap, "no key file named");
    /* Non-blocking, so that a FIFO or a device named by mistake cannot hang us. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return errf(err, cap, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        errf(err, cap, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        errf(err, cap, "%s: not a regular file", path);
        goto out;
    }
    /* Each read returns at least a byte or ends the loop; EINTR is retried a few times. */
    for (int intr = 0; len < sizeof(buf) && intr < 100;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR) {
            intr++;
            continue;
        }
        if (n < 0) {
            errf(err, cap, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > KEY_FILE_MAX) {
        errf(err, cap, "%s: longer than %d bytes; a key file holds 64 hex digits", path,
             KEY_FILE_MAX);
        goto out;
    }
    size_t b = 0, e = len;
    while (b < e && isspace((unsigned char)buf[b]))
        b++;
    while (e > b && isspace((unsigned char)buf[e - 1]))
        e--;
    if (b == e) {
        errf(err, cap, "%s: empty; a key file holds 64 hex digits (vigil keygen writes one)", path);
        goto out;
    }
    for (size_t i = b; i < e; i++) {
        if (hexval((unsigned char)buf[i]) < 0) {
            /* The offending byte is not shown: the file holds a secret. */
            errf(err, cap, "%s: byte %zu is not a hex digit; a key file holds 64 hex digits", path,
                 i + 1);
            goto out;
        }
    }
    if (e - b != 2 * VIGIL_WIRE_KEY_LEN) {
        errf(err, cap, "%s: %zu hex digits; a key file holds 64 (a %d-byte key)", path, e - b,
             VIGIL_WIRE_KEY_LEN);
        goto out;
    }
    for (size_t i = 0; i < VIGIL_WIRE_KEY_LEN; i++)
        key[i] = (uint8_t)(hexval((unsigned char)buf[b + 2 * i]) << 4 |
                           hexval((unsigned char)buf[b + 2 * i + 1]));
    rc = 0;
out:
    sodium_memzero(buf, sizeof(buf));
    close(fd);
    return rc;
}

/* --- defaults ------------------------------------------------------------- */

static char *dup_or_flag(struct vcfg *c, const char *s)
{
    char *r = strdup(s);
    if (r == NULL)
        c->oom = true;
    return r;
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
    m->listen[0] = dup_or_flag(c, "0.0.0.0:7946");
    m->n_listen = m->listen[0] != NULL ? 1 : 0;
    m->api = dup_or_flag(c, "127.0.0.1:7947");
    vigil_monitor_config_default(&m->core);
    m->interval = VIGIL_NSEC_PER_SEC;
    m->log_format = VCFG_LOG_TEXT;
    m->log_file = NULL;
    /* Ten thousand events: hours of a busy cluster's history, a few MB. */
    m->event_history = 10000;

    struct vcfg_agent *a = &c->agent;
    a->monitors[0] = dup_or_flag(c, "127.0.0.1:7946");
    a->n_monitors = a->monitors[0] != NULL ? 1 : 0;
    a->interval = VIGIL_NSEC_PER_SEC;
}

static void free_hook(struct vcfg_hook *h)
{
    for (size_t j = 0; j < VCFG_MAX_ARGV + 1; j++) {
        free(h->argv[j]);
        h->argv[j] = NULL;
    }
}

static void free_strs(char **v, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        free(v[i]);
        v[i] = NULL;
    }
    *n = 0;
}

void vcfg_free(struct vcfg *c)
{
    if (c == NULL)
        return;
    struct vcfg_monitor *m = &c->monitor;
    free(c->path);
    free_strs(m->listen, &m->n_listen);
    free(m->api);
    free_strs(m->nodes, &m->n_nodes);
    for (size_t i = 0; i < m->n_hooks; i++)
        free_hook(&m->hooks[i]);
    free(m->log_file);
    struct vcfg_agent *a = &c->agent;
    free(a->id);
    free_strs(a->monitors, &a->n_monitors);
    free(a->status_file);
    free(a->generation_file);
    sodium_memzero(m->core.key, sizeof(m->core.key));
    sodium_memzero(a->key, sizeof(a->key));
    memset(c, 0, sizeof(*c));
}

/* --- the raw text ---------------------------------------------------------- */

struct scan {
    unsigned nul_line;     /* first line with a NUL byte */
    unsigned include_line; /* first @include */
    unsigned string_line;  /* first string where no value may stand */
    unsigned open_line;    /* a string still open at the end of the text */
    unsigned deep_line;    /* first bracket nested deeper than NEST_MAX */
    unsigned int_line;     /* first integer literal out of range */
    char int_text[48];
};

/*
 * Deepest nesting of groups, arrays and lists accepted. The schema nests
 * four levels; 32 leaves room for any mistake worth a clear message and
 * bounds the bracket stack of the scan.
 */
#define NEST_MAX 32

static bool is_name_char(int ch)
{
    return isalnum(ch) || ch == '-' || ch == '_' || ch == '*';
}

/*
 * Records an integer literal t[b..e) that libconfig would wrap around: one
 * beyond 32 bits without an L suffix, or beyond 64 bits with one.
 */
static void scan_integer(struct scan *sc, const char *t, size_t b, size_t n, unsigned line,
                         size_t *next)
{
    bool neg = b > 0 && t[b - 1] == '-';
    bool hex = b + 1 < n && t[b] == '0' && (t[b + 1] == 'x' || t[b + 1] == 'X');
    size_t i = hex ? b + 2 : b;
    unsigned long long v = 0;
    bool huge = false;
    for (; i < n && (hex ? isxdigit((unsigned char)t[i]) : isdigit((unsigned char)t[i])); i++) {
        unsigned d = (unsigned)(hex ? hexval((unsigned char)t[i]) : t[i] - '0');
        unsigned long long base = hex ? 16 : 10;
        if (v > (ULLONG_MAX - d) / base)
            huge = true;
        else
            v = v * base + d;
    }
    if (!hex && i < n && (t[i] == '.' || t[i] == 'e' || t[i] == 'E')) {
        /* A floating-point literal: its digits and exponent are not an integer. */
        while (i < n &&
               (isdigit((unsigned char)t[i]) || t[i] == '.' || t[i] == 'e' || t[i] == 'E' ||
                ((t[i] == '-' || t[i] == '+') && (t[i - 1] == 'e' || t[i - 1] == 'E'))))
            i++;
        *next = i;
        return;
    }
    bool wide = i < n && t[i] == 'L';
    /* The suffix is L or LL; it belongs to the literal shown in the message. */
    for (int k = 0; k < 2 && i < n && t[i] == 'L'; k++)
        i++;
    unsigned long long lim;
    if (wide)
        lim = neg && !hex ? (unsigned long long)INT64_MAX + 1 : (unsigned long long)INT64_MAX;
    else
        lim = neg && !hex ? (unsigned long long)INT32_MAX + 1 : (unsigned long long)INT32_MAX;
    if ((huge || v > lim) && sc->int_line == 0) {
        size_t len = i - b;
        size_t max = sizeof(sc->int_text) - 4;
        sc->int_line = line;
        snprintf(sc->int_text, sizeof(sc->int_text), "%s%.*s%s", neg ? "-" : "",
                 (int)(len < max ? len : max), t + b, len < max ? "" : "...");
    }
    *next = i;
}

static void prescan(const char *t, size_t n, struct scan *sc)
{
    memset(sc, 0, sizeof(*sc));
    /* NUL bytes and @include lines, state-free: libconfig's include rule is per line. */
    unsigned line = 1;
    for (size_t i = 0; i < n; line++) {
        size_t j = i;
        while (j < n && (t[j] == ' ' || t[j] == '\t'))
            j++;
        if (sc->include_line == 0 && n - j >= 8 && !memcmp(t + j, "@include", 8))
            sc->include_line = line;
        const char *nl = memchr(t + i, '\n', n - i);
        size_t end = nl != NULL ? (size_t)(nl - t) : n;
        if (sc->nul_line == 0 && memchr(t + i, '\0', end - i) != NULL)
            sc->nul_line = line;
        i = end + 1;
    }
    /*
     * Tokens, outside strings and comments: integer literals, and the
     * places strings stand in. libconfig 1.5 leaks a string that stands
     * where the grammar admits none (after a "{" or a ";", or after a ","
     * in a group), so such a string is a syntax error found here, before
     * libconfig sees it. A string may follow "=" or ":", "[" or "(", a ","
     * inside an array or a list, or another string (they concatenate).
     */
    enum { P_NONE, P_VALUE, P_OPEN_LIST, P_COMMA, P_STRING, P_OTHER } prev = P_NONE;
    char stack[NEST_MAX];
    size_t depth = 0;
    line = 1;
    for (size_t i = 0; i < n;) {
        char ch = t[i];
        if (ch == '\n') {
            line++;
            i++;
        } else if (ch == '"') {
            bool ok = prev == P_VALUE || prev == P_OPEN_LIST || prev == P_STRING ||
                      (prev == P_COMMA && depth > 0 && stack[depth - 1] != '{');
            if (!ok && sc->string_line == 0)
                sc->string_line = line;
            unsigned start = line;
            for (i++; i < n && t[i] != '"'; i++) {
                if (t[i] == '\\' && i + 1 < n)
                    i++;
                if (t[i] == '\n')
                    line++;
            }
            if (i >= n && sc->open_line == 0)
                sc->open_line = start;
            i++;
            prev = P_STRING;
        } else if (ch == '#' || (ch == '/' && i + 1 < n && t[i + 1] == '/')) {
            while (i < n && t[i] != '\n')
                i++;
        } else if (ch == '/' && i + 1 < n && t[i + 1] == '*') {
            for (i += 2; i < n && !(t[i] == '*' && i + 1 < n && t[i + 1] == '/'); i++)
                if (t[i] == '\n')
                    line++;
            i += 2;
        } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v') {
            i++;
        } else if (isalpha((unsigned char)ch) || ch == '*') {
            while (i < n && is_name_char((unsigned char)t[i]))
                i++;
            prev = P_OTHER;
        } else if (isdigit((unsigned char)ch)) {
            scan_integer(sc, t, i, n, line, &i);
            prev = P_OTHER;
        } else if (ch == '.') {
            /* ".5e3": a floating-point literal starting with its point. */
            for (i++;
                 i < n && (isdigit((unsigned char)t[i]) || t[i] == 'e' || t[i] == 'E' ||
                           ((t[i] == '-' || t[i] == '+') && (t[i - 1] == 'e' || t[i - 1] == 'E')));)
                i++;
            prev = P_OTHER;
        } else {
            if (ch == '{' || ch == '[' || ch == '(') {
                if (depth == NEST_MAX) {
                    if (sc->deep_line == 0)
                        sc->deep_line = line;
                } else {
                    stack[depth++] = ch;
                }
                prev = ch == '{' ? P_OTHER : P_OPEN_LIST;
            } else if (ch == '}' || ch == ']' || ch == ')') {
                if (depth > 0)
                    depth--;
                prev = P_OTHER;
            } else if (ch == '=' || ch == ':') {
                prev = P_VALUE;
            } else if (ch == ',') {
                prev = P_COMMA;
            } else {
                prev = P_OTHER;
            }
            i++;
        }
    }
}

/* --- loading: context, messages, typed readers ------------------------------ */

struct ld {
    struct vcfg *c;
    const char *file; /* for messages */
    size_t dir_len;   /* length of file's directory prefix, with its '/' */
    char *err;
    size_t cap;
    bool interval_set; /* monitor.heartbeat_interval was in the file */
};

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

static unsigned sline(const config_setting_t *s)
{
    return s != NULL ? config_setting_source_line(s) : 0;
}

/* "FILE:LINE: " and the message. */
static int lfail(struct ld *l, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int lfail(struct ld *l, const config_setting_t *s, const char *fmt, ...)
{
    if (l->err == NULL || l->cap == 0)
        return -1;
    int n;
    if (sline(s) > 0)
        n = snprintf(l->err, l->cap, "%s:%u: ", l->file, sline(s));
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
static int sfail(struct ld *l, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sfail(struct ld *l, const config_setting_t *s, const char *fmt, ...)
{
    char path[PATH_MAX_LEN], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return lfail(l, s, "%s %s", spath(s, path, sizeof(path)), msg);
}

static int oom(struct ld *l, const config_setting_t *s)
{
    return lfail(l, s, "out of memory");
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

static int wrong_type(struct ld *l, const config_setting_t *s, const char *want)
{
    return sfail(l, s, "must be %s, not %s", want, type_desc(s));
}

static void set_origin(struct ld *l, int slot, const config_setting_t *s, uint64_t print)
{
    l->c->origin[slot].line = sline(s);
    l->c->origin[slot].print = print;
}

static int rd_string(struct ld *l, const config_setting_t *s, const char **out)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return wrong_type(l, s, "a string");
    *out = config_setting_get_string(s);
    if (*out == NULL || **out == '\0')
        return sfail(l, s, "must not be empty");
    return 0;
}

static int rd_bool(struct ld *l, const config_setting_t *s, bool *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return wrong_type(l, s, "a boolean (true or false)");
    *out = config_setting_get_bool(s) != 0;
    return 0;
}

static int rd_int(struct ld *l, const config_setting_t *s, long long lo, long long hi,
                  long long *out)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return wrong_type(l, s, "an integer");
    long long v = config_setting_get_int64(s);
    if (v < lo || v > hi)
        return sfail(l, s, "(%lld) must be between %lld and %lld", v, lo, hi);
    *out = v;
    return 0;
}

static int rd_number(struct ld *l, const config_setting_t *s, double *out)
{
    int t = config_setting_type(s);
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
        *out = (double)config_setting_get_int64(s);
    else if (t == CONFIG_TYPE_FLOAT)
        *out = config_setting_get_float(s);
    else
        return wrong_type(l, s, "a number");
    if (!isfinite(*out))
        return sfail(l, s, "must be a finite number");
    return 0;
}

static int rd_duration(struct ld *l, const config_setting_t *s, vigil_time_t *out)
{
    int t = config_setting_type(s);
    if (t == CONFIG_TYPE_STRING) {
        const char *v = config_setting_get_string(s);
        if (vcfg_parse_duration(v, out) != 0)
            return sfail(l, s,
                         "\"%s\" is not a duration (seconds as a number, or a number with a "
                         "unit: ns, us, ms, s, m, h, as in \"1500ms\")",
                         v);
        return 0;
    }
    double v;
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
        v = (double)config_setting_get_int64(s);
    else if (t == CONFIG_TYPE_FLOAT)
        v = config_setting_get_float(s);
    else
        return wrong_type(l, s, "a duration (seconds, or a string such as \"1500ms\")");
    if (!isfinite(v) || v < 0)
        return sfail(l, s, "(%g) must be a duration of 0 s or more", v);
    if (v * 1e9 > (double)VCFG_DURATION_MAX)
        return sfail(l, s, "(%g s) is longer than any duration vigil accepts", v);
    *out = (vigil_time_t)llround(v * 1e9);
    return 0;
}

/*
 * A list of strings: an array [ "a", "b" ] or a list ( "a", "b" ), at most
 * max; with empty_from, strings at that index and after may be empty.
 */
static int rd_strings(struct ld *l, const config_setting_t *s, size_t max, size_t empty_from,
                      size_t *n)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return wrong_type(l, s, "a list of strings [ \"...\", ... ]");
    size_t len = (size_t)config_setting_length(s);
    if (len > max)
        return sfail(l, s, "holds %zu entries; at most %zu are allowed", len, max);
    for (size_t i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = NULL;
        if (i >= empty_from && config_setting_type(e) == CONFIG_TYPE_STRING)
            continue;
        if (rd_string(l, e, &v) != 0)
            return -1;
    }
    *n = len;
    return 0;
}

static const char *elem_str(const config_setting_t *s, size_t i)
{
    return config_setting_get_string(config_setting_get_elem(s, (unsigned)i));
}

static int set_str(struct ld *l, const config_setting_t *s, char **dst, const char *v)
{
    char *d = strdup(v);
    if (d == NULL)
        return oom(l, s);
    free(*dst);
    *dst = d;
    return 0;
}

/* A path setting: relative paths are taken relative to the file's directory. */
static int set_path(struct ld *l, const config_setting_t *s, char **dst, const char *v)
{
    if (v[0] == '/' || l->dir_len == 0)
        return set_str(l, s, dst, v);
    size_t n = strlen(v);
    char *d = malloc(l->dir_len + n + 1);
    if (d == NULL)
        return oom(l, s);
    memcpy(d, l->file, l->dir_len);
    memcpy(d + l->dir_len, v, n + 1);
    free(*dst);
    *dst = d;
    return 0;
}

static int rd_key(struct ld *l, const config_setting_t *s, uint8_t *key, bool *has_key)
{
    const char *v = NULL;
    char *path = NULL, msg[384];
    if (rd_string(l, s, &v) != 0 || set_path(l, s, &path, v) != 0)
        return -1;
    int rc = vcfg_read_key(path, key, msg, sizeof(msg));
    free(path);
    if (rc != 0)
        return sfail(l, s, "cannot be used: %s", msg);
    *has_key = true;
    return 0;
}

/*
 * Walks the members of group g: each must be named in the table, and its
 * handler reads it. Unknown members are errors, so that a typo is found.
 */
typedef int (*handler_fn)(struct ld *l, const config_setting_t *s);

struct field {
    const char *name;
    handler_fn fn;
};

static int walk(struct ld *l, const config_setting_t *g, const struct field *f, size_t nf)
{
    char path[PATH_MAX_LEN];
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return wrong_type(l, g, "a group { ... }");
    int len = config_setting_length(g);
    for (int i = 0; i < len; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        size_t k = 0;
        while (k < nf && strcmp(f[k].name, config_setting_name(s)) != 0)
            k++;
        if (k == nf)
            return lfail(l, s, "unknown setting %s", spath(s, path, sizeof(path)));
        if (f[k].fn != NULL && f[k].fn(l, s) != 0)
            return -1;
    }
    return 0;
}

/* --- the monitor section -------------------------------------------------- */

static int m_listen(struct ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    size_t n = 0;
    if (rd_strings(l, s, VCFG_MAX_LISTEN, SIZE_MAX, &n) != 0)
        return -1;
    free_strs(m->listen, &m->n_listen);
    for (size_t i = 0; i < n; i++) {
        m->listen[i] = strdup(elem_str(s, i));
        if (m->listen[i] == NULL)
            return oom(l, s);
        m->n_listen = i + 1;
        set_origin(l, O_M_LISTEN_0 + (int)i, config_setting_get_elem(s, (unsigned)i),
                   print_str(m->listen[i]));
    }
    set_origin(l, O_M_LISTEN, s, print_int((int64_t)n));
    return 0;
}

static int m_api(struct ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return wrong_type(l, s, "a string (an address, or \"off\")");
    const char *v = config_setting_get_string(s);
    if (set_str(l, s, &m->api, v) != 0)
        return -1;
    set_origin(l, O_M_API, s, print_str(m->api));
    return 0;
}

static int m_key_file(struct ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    return rd_key(l, s, m->core.key, &m->core.has_key);
}

static int m_interval(struct ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    if (rd_duration(l, s, &m->interval) != 0)
        return -1;
    l->interval_set = true;
    set_origin(l, O_M_INTERVAL, s, print_int(m->interval));
    return 0;
}

static int m_auto_register(struct ld *l, const config_setting_t *s)
{
    return rd_bool(l, s, &l->c->monitor.core.auto_register);
}

static int m_adapt_interval(struct ld *l, const config_setting_t *s)
{
    return rd_bool(l, s, &l->c->monitor.core.adapt_interval);
}

static int m_max_nodes(struct ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (rd_int(l, s, 1, MAX_NODES_MAX, &v) != 0)
        return -1;
    l->c->monitor.core.max_nodes = (uint32_t)v;
    set_origin(l, O_M_MAX_NODES, s, print_int(v));
    return 0;
}

static int m_startup_grace(struct ld *l, const config_setting_t *s)
{
    struct vigil_monitor_config *core = &l->c->monitor.core;
    if (rd_duration(l, s, &core->startup_grace) != 0)
        return -1;
    set_origin(l, O_M_GRACE, s, print_int(core->startup_grace));
    return 0;
}

static int m_rise(struct ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (rd_int(l, s, 1, RISE_MAX, &v) != 0)
        return -1;
    l->c->monitor.core.rise = (uint32_t)v;
    set_origin(l, O_M_RISE, s, print_int(v));
    return 0;
}

static int m_pause_tolerance(struct ld *l, const config_setting_t *s)
{
    struct vigil_monitor_config *core = &l->c->monitor.core;
    if (rd_duration(l, s, &core->pause_tolerance) != 0)
        return -1;
    set_origin(l, O_M_PAUSE_TOL, s, print_int(core->pause_tolerance));
    return 0;
}

static int m_event_history(struct ld *l, const config_setting_t *s)
{
    long long v = 0;
    if (rd_int(l, s, 1, EVENT_HISTORY_MAX, &v) != 0)
        return -1;
    l->c->monitor.event_history = (uint32_t)v;
    set_origin(l, O_M_EVENTS, s, print_int(v));
    return 0;
}

static int m_nodes(struct ld *l, const config_setting_t *s)
{
    struct vcfg_monitor *m = &l->c->monitor;
    size_t n = 0;
    if (rd_strings(l, s, VCFG_MAX_NODES, SIZE_MAX, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *id = config_setting_get_string(e);
        if (!vigil_id_valid(id, strlen(id)))
            return sfail(l, e,
                         "\"%s\" is not a valid node id (1 to %d characters of A-Z a-z 0-9 . _ -)",
                         id, VIGIL_ID_MAX);
        for (size_t j = 0; j < i; j++) {
            const config_setting_t *p = config_setting_get_elem(s, (unsigned)j);
            if (!strcmp(id, config_setting_get_string(p)))
                return sfail(l, e, "\"%s\" is declared twice (also on line %u)", id, sline(p));
        }
    }
    free_strs(m->nodes, &m->n_nodes);
    for (size_t i = 0; i < n; i++) {
        m->nodes[i] = strdup(elem_str(s, i));
        if (m->nodes[i] == NULL)
            return oom(l, s);
        m->n_nodes = i + 1;
    }
    set_origin(l, O_M_NODES, s, print_int((int64_t)n));
    return 0;
}

/* The hook being read (hooks are read one at a time). */
static struct vcfg_hook *cur_hook(struct ld *l)
{
    return &l->c->monitor.hooks[l->c->monitor.n_hooks - 1];
}

static int h_command(struct ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    size_t n = 0;
    if (rd_strings(l, s, VCFG_MAX_ARGV, 1, &n) != 0)
        return -1;
    if (n == 0)
        return sfail(l, s, "must name a program (and its arguments)");
    const config_setting_t *e0 = config_setting_get_elem(s, 0);
    const char *prog = config_setting_get_string(e0);
    if (prog[0] != '/' && strchr(prog, '/') != NULL)
        return sfail(l, e0, "\"%s\" must be an absolute path or a program name to look up in PATH",
                     prog);
    free_hook(h);
    for (size_t i = 0; i < n; i++) {
        h->argv[i] = strdup(elem_str(s, i));
        if (h->argv[i] == NULL)
            return oom(l, s);
    }
    return 0;
}

static int h_timeout(struct ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    if (rd_duration(l, s, &h->timeout) != 0)
        return -1;
    if (h->timeout <= 0)
        return sfail(l, s, "must be longer than 0 s");
    return 0;
}

static int h_retries(struct ld *l, const config_setting_t *s)
{
    long long v = 0;
    /* Ten doublings of the delay already wait over a thousand times the first. */
    if (rd_int(l, s, 0, 10, &v) != 0)
        return -1;
    cur_hook(l)->retries = (uint32_t)v;
    return 0;
}

static int h_retry_delay(struct ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    if (rd_duration(l, s, &h->retry_delay) != 0)
        return -1;
    if (h->retry_delay <= 0)
        return sfail(l, s, "must be longer than 0 s");
    return 0;
}

static int h_on(struct ld *l, const config_setting_t *s)
{
    struct vcfg_hook *h = cur_hook(l);
    size_t n = 0;
    if (rd_strings(l, s, VCFG_MAX_ARGV, SIZE_MAX, &n) != 0)
        return -1;
    if (n == 0)
        return sfail(l, s, "must name at least one state (leave it out for all states)");
    uint32_t mask = 0;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_get_string(e);
        int st = vigil_state_parse(name);
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
            return sfail(l, e, "\"%s\" is not a state (states: %s)", name, names);
        }
        mask |= 1u << st;
    }
    h->on_states = mask;
    return 0;
}

static int m_hooks(struct ld *l, const config_setting_t *s)
{
    static const struct field fields[] = {
        {"command", h_command}, {"timeout", h_timeout},         {"on", h_on},
        {"retries", h_retries}, {"retry_delay", h_retry_delay},
    };
    struct vcfg_monitor *m = &l->c->monitor;
    /* An empty array, "hooks = [ ];", says "no hooks" as well as "( )". */
    bool empty_array = config_setting_type(s) == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0;
    if (config_setting_type(s) != CONFIG_TYPE_LIST && !empty_array)
        return wrong_type(l, s, "a list of groups ( { command = [ ... ]; }, ... )");
    size_t len = (size_t)config_setting_length(s);
    if (len > VCFG_MAX_HOOKS)
        return sfail(l, s, "holds %zu hooks; at most %d are allowed", len, VCFG_MAX_HOOKS);
    for (size_t i = 0; i < m->n_hooks; i++)
        free_hook(&m->hooks[i]);
    m->n_hooks = 0;
    for (size_t i = 0; i < len; i++) {
        const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
        struct vcfg_hook *h = &m->hooks[m->n_hooks++];
        memset(h, 0, sizeof(*h));
        h->timeout = HOOK_TIMEOUT_DEFAULT;
        h->retries = HOOK_RETRIES_DEFAULT;
        h->retry_delay = HOOK_RETRY_DELAY_DEFAULT;
        if (walk(l, g, fields, sizeof(fields) / sizeof(fields[0])) != 0)
            return -1;
        if (h->argv[0] == NULL)
            return sfail(l, g, "has no command (command = [ \"/path/to/program\", ... ])");
    }
    return 0;
}

static int lg_format(struct ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (rd_string(l, s, &v) != 0)
        return -1;
    if (!strcmp(v, "text"))
        l->c->monitor.log_format = VCFG_LOG_TEXT;
    else if (!strcmp(v, "json"))
        l->c->monitor.log_format = VCFG_LOG_JSON;
    else
        return sfail(l, s, "must be \"text\" or \"json\", not \"%s\"", v);
    return 0;
}

static int lg_file(struct ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (rd_string(l, s, &v) != 0)
        return -1;
    return set_path(l, s, &l->c->monitor.log_file, v);
}

static int m_log(struct ld *l, const config_setting_t *s)
{
    static const struct field fields[] = {
        {"format", lg_format},
        {"file", lg_file},
    };
    return walk(l, s, fields, sizeof(fields) / sizeof(fields[0]));
}

/* The detector block: settings of both kinds, each allowed only with its kind. */
static const char *kind_name(enum vigil_detector_kind k)
{
    return k == VIGIL_DETECTOR_FIXED ? "fixed" : "phi";
}

static int want_kind(struct ld *l, const config_setting_t *s, enum vigil_detector_kind k)
{
    enum vigil_detector_kind have = l->c->monitor.core.detector.kind;
    if (have == k)
        return 0;
    return sfail(l, s, "belongs to the %s detector, but the detector type is \"%s\"%s",
                 kind_name(k), kind_name(have),
                 l->c->origin[O_M_DETECTOR].line ? "" : " (the default; set type)");
}

static int d_type(struct ld *l, const config_setting_t *s)
{
    (void)l;
    (void)s;
    return 0; /* read first, by m_detector */
}

static int d_after(struct ld *l, const config_setting_t *s, double *thr, int slot)
{
    vigil_time_t v = 0;
    if (want_kind(l, s, VIGIL_DETECTOR_FIXED) != 0 || rd_duration(l, s, &v) != 0)
        return -1;
    /* The fixed detector's level is seconds since the last heartbeat. */
    *thr = (double)v / 1e9;
    set_origin(l, slot, s, print_dbl(*thr));
    return 0;
}

static int d_suspect_after(struct ld *l, const config_setting_t *s)
{
    return d_after(l, s, &l->c->monitor.core.detector.suspect_threshold, O_M_SUSPECT);
}

static int d_dead_after(struct ld *l, const config_setting_t *s)
{
    return d_after(l, s, &l->c->monitor.core.detector.dead_threshold, O_M_DEAD);
}

static int d_threshold(struct ld *l, const config_setting_t *s, double *thr, int slot)
{
    if (want_kind(l, s, VIGIL_DETECTOR_PHI) != 0 || rd_number(l, s, thr) != 0)
        return -1;
    set_origin(l, slot, s, print_dbl(*thr));
    return 0;
}

static int d_suspect_threshold(struct ld *l, const config_setting_t *s)
{
    return d_threshold(l, s, &l->c->monitor.core.detector.suspect_threshold, O_M_SUSPECT);
}

static int d_dead_threshold(struct ld *l, const config_setting_t *s)
{
    return d_threshold(l, s, &l->c->monitor.core.detector.dead_threshold, O_M_DEAD);
}

static int d_phi_duration(struct ld *l, const config_setting_t *s, vigil_time_t *v, int slot)
{
    if (want_kind(l, s, VIGIL_DETECTOR_PHI) != 0 || rd_duration(l, s, v) != 0)
        return -1;
    set_origin(l, slot, s, print_int(*v));
    return 0;
}

static int d_first_estimate(struct ld *l, const config_setting_t *s)
{
    return d_phi_duration(l, s, &l->c->monitor.core.detector.first_estimate, O_M_FIRST);
}

static int d_min_std_dev(struct ld *l, const config_setting_t *s)
{
    return d_phi_duration(l, s, &l->c->monitor.core.detector.min_std_dev, O_M_MIN_SD);
}

static int d_acceptable_pause(struct ld *l, const config_setting_t *s)
{
    return d_phi_duration(l, s, &l->c->monitor.core.detector.acceptable_pause, O_M_ACC_PAUSE);
}

static int d_window(struct ld *l, const config_setting_t *s)
{
    long long v = 0;
    /* Both kinds keep the history: phi decides on it, and events report its statistics. */
    if (rd_int(l, s, 2, VIGIL_PHI_WINDOW_MAX, &v) != 0)
        return -1;
    l->c->monitor.core.detector.window = (uint32_t)v;
    set_origin(l, O_M_WINDOW, s, print_int(v));
    return 0;
}

/*
 * Reads the detector block, or (d NULL) only applies a new heartbeat
 * interval: the defaults of the detector kind are recomputed for the
 * interval, then the explicit settings override them.
 */
static int m_detector(struct ld *l, const config_setting_t *d)
{
    static const struct field fields[] = {
        {"type", d_type},
        {"suspect_after", d_suspect_after},
        {"dead_after", d_dead_after},
        {"suspect_threshold", d_suspect_threshold},
        {"dead_threshold", d_dead_threshold},
        {"first_estimate", d_first_estimate},
        {"min_std_dev", d_min_std_dev},
        {"acceptable_pause", d_acceptable_pause},
        {"window", d_window},
    };
    struct vcfg_monitor *m = &l->c->monitor;
    enum vigil_detector_kind kind = m->core.detector.kind;
    const config_setting_t *type = NULL;
    if (d != NULL) {
        if (config_setting_type(d) != CONFIG_TYPE_GROUP)
            return wrong_type(l, d, "a group { type = \"phi\"; ... }");
        type = config_setting_get_member(d, "type");
    }
    if (type != NULL) {
        const char *v = NULL;
        if (rd_string(l, type, &v) != 0)
            return -1;
        if (!strcmp(v, "phi"))
            kind = VIGIL_DETECTOR_PHI;
        else if (!strcmp(v, "fixed"))
            kind = VIGIL_DETECTOR_FIXED;
        else
            return sfail(l, type, "must be \"phi\" or \"fixed\", not \"%s\"", v);
        set_origin(l, O_M_DETECTOR, type, print_int(kind));
    }
    if (type != NULL || l->interval_set)
        vigil_detector_config_default(&m->core.detector, kind, m->interval);
    if (d == NULL)
        return 0;
    return walk(l, d, fields, sizeof(fields) / sizeof(fields[0]));
}

static int m_detector_later(struct ld *l, const config_setting_t *s)
{
    (void)l;
    (void)s;
    return 0; /* read after the walk, when the heartbeat interval is known */
}

static int ld_monitor(struct ld *l, const config_setting_t *s)
{
    static const struct field fields[] = {
        {"listen", m_listen},
        {"api", m_api},
        {"key_file", m_key_file},
        {"heartbeat_interval", m_interval},
        {"auto_register", m_auto_register},
        {"adapt_interval", m_adapt_interval},
        {"max_nodes", m_max_nodes},
        {"startup_grace", m_startup_grace},
        {"rise", m_rise},
        {"pause_tolerance", m_pause_tolerance},
        {"detector", m_detector_later},
        {"nodes", m_nodes},
        {"hooks", m_hooks},
        {"log", m_log},
        {"event_history", m_event_history},
    };
    if (walk(l, s, fields, sizeof(fields) / sizeof(fields[0])) != 0)
        return -1;
    return m_detector(l, config_setting_get_member(s, "detector"));
}

/* --- the agent section ---------------------------------------------------- */

static int a_id(struct ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (rd_string(l, s, &v) != 0)
        return -1;
    if (!vigil_id_valid(v, strlen(v)))
        return sfail(l, s,
                     "\"%s\" is not a valid node id (1 to %d characters of A-Z a-z 0-9 . _ -)", v,
                     VIGIL_ID_MAX);
    if (set_str(l, s, &l->c->agent.id, v) != 0)
        return -1;
    set_origin(l, O_A_ID, s, print_str(v));
    return 0;
}

static int a_monitors(struct ld *l, const config_setting_t *s)
{
    struct vcfg_agent *a = &l->c->agent;
    size_t n = 0;
    if (rd_strings(l, s, VIGIL_SENDER_MAX_MONITORS, SIZE_MAX, &n) != 0)
        return -1;
    free_strs(a->monitors, &a->n_monitors);
    for (size_t i = 0; i < n; i++) {
        a->monitors[i] = strdup(elem_str(s, i));
        if (a->monitors[i] == NULL)
            return oom(l, s);
        a->n_monitors = i + 1;
    }
    set_origin(l, O_A_MONITORS, s, print_int((int64_t)n));
    return 0;
}

static int a_interval(struct ld *l, const config_setting_t *s)
{
    struct vcfg_agent *a = &l->c->agent;
    if (rd_duration(l, s, &a->interval) != 0)
        return -1;
    set_origin(l, O_A_INTERVAL, s, print_int(a->interval));
    return 0;
}

static int a_key_file(struct ld *l, const config_setting_t *s)
{
    return rd_key(l, s, l->c->agent.key, &l->c->agent.has_key);
}

static int a_status_file(struct ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (rd_string(l, s, &v) != 0)
        return -1;
    return set_path(l, s, &l->c->agent.status_file, v);
}

static int a_generation_file(struct ld *l, const config_setting_t *s)
{
    const char *v = NULL;
    if (rd_string(l, s, &v) != 0)
        return -1;
    return set_path(l, s, &l->c->agent.generation_file, v);
}

static int a_custom(struct ld *l, const config_setting_t *s)
{
    struct vcfg_agent *a = &l->c->agent;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return wrong_type(l, s, "a group { key = \"value\"; ... }");
    size_t len = (size_t)config_setting_length(s);
    if (len > VIGIL_CUSTOM_MAX)
        return sfail(l, s, "holds %zu pairs; at most %d are allowed", len, VIGIL_CUSTOM_MAX);
    for (size_t i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *key = config_setting_name(e);
        if (!vigil_custom_key_valid(key))
            return lfail(l, e,
                         "agent.custom: \"%s\" is not a valid key (1 to %d characters of "
                         "A-Z a-z 0-9 . _ -)",
                         key, VIGIL_CUSTOM_KEY_MAX);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return wrong_type(l, e, "a string");
        const char *v = config_setting_get_string(e);
        if (!vigil_custom_value_valid(v))
            return sfail(l, e, "\"%s\" is not a valid value (at most %d printable ASCII bytes)", v,
                         VIGIL_CUSTOM_VAL_MAX);
    }
    a->n_custom = 0;
    for (size_t i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        struct vigil_custom *p = &a->custom[a->n_custom++];
        /* Both fit: the validators bound the lengths by the buffer sizes. */
        snprintf(p->key, sizeof(p->key), "%s", config_setting_name(e));
        snprintf(p->value, sizeof(p->value), "%s", config_setting_get_string(e));
    }
    return 0;
}

static int ld_agent(struct ld *l, const config_setting_t *s)
{
    static const struct field fields[] = {
        {"id", a_id},
        {"monitors", a_monitors},
        {"interval", a_interval},
        {"key_file", a_key_file},
        {"status_file", a_status_file},
        {"generation_file", a_generation_file},
        {"custom", a_custom},
    };
    return walk(l, s, fields, sizeof(fields) / sizeof(fields[0]));
}

/* --- loading ------------------------------------------------------------- */

int vcfg_load_string(struct vcfg *c, const char *name, const char *text, size_t len, char *err,
                     size_t cap)
{
    static const struct field top[] = {
        {"monitor", ld_monitor},
        {"agent", ld_agent},
    };
    if (c == NULL || name == NULL || (text == NULL && len > 0))
        return errf(err, cap, "invalid arguments");
    if (c->oom)
        return errf(err, cap, "%s: out of memory", name);
    char *path = strdup(name);
    if (path == NULL)
        return errf(err, cap, "%s: out of memory", name);
    free(c->path);
    c->path = path;

    struct ld l = {.c = c, .file = c->path, .err = err, .cap = cap};
    const char *slash = strrchr(c->path, '/');
    l.dir_len = slash != NULL ? (size_t)(slash - c->path) + 1 : 0;

    if (len > FILE_MAX)
        return errf(err, cap, "%s: larger than %u bytes; not a configuration file", name, FILE_MAX);
    struct scan sc;
    prescan(text, len, &sc);
    if (sc.nul_line)
        return errf(err, cap, "%s:%u: the file holds a NUL byte", name, sc.nul_line);
    if (sc.include_line)
        return errf(err, cap, "%s:%u: @include is not supported: vigil reads one file", name,
                    sc.include_line);
    /* Found before libconfig parses: it would leak, accept, or recurse on these. */
    if (sc.open_line)
        return errf(err, cap, "%s:%u: syntax error: unterminated string", name, sc.open_line);
    if (sc.string_line)
        return errf(err, cap, "%s:%u: syntax error: unexpected string", name, sc.string_line);
    if (sc.deep_line)
        return errf(err, cap, "%s:%u: syntax error: nested deeper than %d levels", name,
                    sc.deep_line, NEST_MAX);

    char *buf = malloc(len + 1);
    if (buf == NULL)
        return errf(err, cap, "%s: out of memory", name);
    if (len > 0)
        memcpy(buf, text, len);
    buf[len] = '\0';
    config_t cf;
    config_init(&cf);
    int rc = -1;
    if (!config_read_string(&cf, buf)) {
        const char *why = config_error_text(&cf);
        errf(err, cap, "%s:%d: syntax error: %s", name, config_error_line(&cf),
             why != NULL ? why : "unknown");
        goto out;
    }
    if (sc.int_line) {
        errf(err, cap, "%s:%u: integer %s is out of range", name, sc.int_line, sc.int_text);
        goto out;
    }
    rc = walk(&l, config_root_setting(&cf), top, sizeof(top) / sizeof(top[0]));
out:
    config_destroy(&cf);
    free(buf);
    return rc;
}

int vcfg_load(struct vcfg *c, const char *path, char *err, size_t cap)
{
    if (c == NULL || path == NULL)
        return errf(err, cap, "invalid arguments");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errf(err, cap, "%s: cannot open: %s", path, strerror(errno));
    /* A file may be a pipe (-c <(...)): read until the end, bounded by FILE_MAX. */
    size_t cap_buf = 4096, len = 0;
    char *buf = malloc(cap_buf);
    int rc = -1;
    if (buf == NULL) {
        errf(err, cap, "%s: out of memory", path);
        goto out;
    }
    for (int intr = 0; len <= FILE_MAX && intr < 100;) {
        if (len == cap_buf) {
            char *nb = realloc(buf, cap_buf * 2);
            if (nb == NULL) {
                errf(err, cap, "%s: out of memory", path);
                goto out;
            }
            buf = nb;
            cap_buf *= 2;
        }
        ssize_t n = read(fd, buf + len, cap_buf - len);
        if (n < 0 && errno == EINTR) {
            intr++;
            continue;
        }
        if (n < 0) {
            errf(err, cap, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    rc = vcfg_load_string(c, path, buf, len, err, cap);
out:
    free(buf);
    close(fd);
    return rc;
}

/* --- relations ----------------------------------------------------------- */

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
        if (p == NULL || *p == '\0')
            return cfail(c, err, cap, 0, 0, "monitor.hooks[%zu] has no command", i);
        if (p[0] != '/' && strchr(p, '/') != NULL)
            return cfail(c, err, cap, 0, 0,
                         "monitor.hooks[%zu]: \"%s\" must be an absolute path or a program "
                         "name to look up in PATH",
                         i, p);
        if (h->timeout <= 0)
            return cfail(c, err, cap, 0, 0, "monitor.hooks[%zu].timeout must be longer than 0 s",
                         i);
    }
    return 0;
}

static int check_detector(const struct vcfg *c, char *err, size_t cap)
{
    const struct vcfg_monitor *m = &c->monitor;
    const struct vigil_detector_config *d = &m->core.detector;
    char b1[48], b2[48];
    unsigned li = at(c, O_M_INTERVAL, print_int(m->interval));
    unsigned l_sus = at(c, O_M_SUSPECT, print_dbl(d->suspect_threshold));
    unsigned l_dead = at(c, O_M_DEAD, print_dbl(d->dead_threshold));

    if (d->kind == VIGIL_DETECTOR_FIXED) {
        vigil_time_t sus = secs_to_ns(d->suspect_threshold);
        vigil_time_t dead = secs_to_ns(d->dead_threshold);
        if (!(d->suspect_threshold > 0) || !(d->dead_threshold > 0) ||
            !isfinite(d->suspect_threshold) || !isfinite(d->dead_threshold))
            return cfail(c, err, cap, l_sus, l_dead,
                         "monitor.detector: suspect_after and dead_after must be longer than "
                         "0 s");
        if (dead <= m->interval)
            return cfail(c, err, cap, l_dead, li,
                         "monitor.detector.dead_after (%s) must be longer than "
                         "monitor.heartbeat_interval (%s)",
                         fmt_dur(dead, b1, sizeof(b1)), fmt_dur(m->interval, b2, sizeof(b2)));
        if (dead < 2 * m->interval)
            return cfail(c, err, cap, l_dead, li,
                         "monitor.detector.dead_after (%s) must be at least twice "
                         "monitor.heartbeat_interval (%s): a dead timeout shorter than two "
                         "heartbeat intervals convicts on one lost datagram",
                         fmt_dur(dead, b1, sizeof(b1)), fmt_dur(m->interval, b2, sizeof(b2)));
        if (sus >= dead)
            return cfail(c, err, cap, l_sus, l_dead,
                         "monitor.detector.suspect_after (%s) must be shorter than "
                         "monitor.detector.dead_after (%s)",
                         fmt_dur(sus, b1, sizeof(b1)), fmt_dur(dead, b2, sizeof(b2)));
        if (sus <= m->interval)
            return cfail(c, err, cap, l_sus, li,
                         "monitor.detector.suspect_after (%s) must be longer than "
                         "monitor.heartbeat_interval (%s): every node would be suspect "
                         "between two heartbeats",
                         fmt_dur(sus, b1, sizeof(b1)), fmt_dur(m->interval, b2, sizeof(b2)));
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
        if (d->first_estimate <= 0)
            return cfail(c, err, cap, at(c, O_M_FIRST, print_int(d->first_estimate)), li,
                         "monitor.detector.first_estimate (%s) must be longer than 0 s",
                         fmt_dur(d->first_estimate, b1, sizeof(b1)));
        if (d->min_std_dev <= 0)
            return cfail(c, err, cap, at(c, O_M_MIN_SD, print_int(d->min_std_dev)), li,
                         "monitor.detector.min_std_dev (%s) must be longer than 0 s",
                         fmt_dur(d->min_std_dev, b1, sizeof(b1)));
        if (d->acceptable_pause < 0)
            return cfail(c, err, cap, at(c, O_M_ACC_PAUSE, print_int(d->acceptable_pause)), 0,
                         "monitor.detector.acceptable_pause must not be negative");
    }
    if (d->window < 2 || d->window > VIGIL_PHI_WINDOW_MAX)
        return cfail(c, err, cap, at(c, O_M_WINDOW, print_int(d->window)), 0,
                     "monitor.detector.window (%u) must be between 2 and %d", d->window,
                     VIGIL_PHI_WINDOW_MAX);
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

    unsigned ln = at(c, O_M_LISTEN, print_int((int64_t)m->n_listen));
    if (m->n_listen == 0)
        return cfail(c, err, cap, ln, 0, "monitor.listen must hold at least one address");
    if (m->n_listen > VCFG_MAX_LISTEN)
        return cfail(c, err, cap, ln, 0, "monitor.listen holds more than %d addresses",
                     VCFG_MAX_LISTEN);
    for (size_t i = 0; i < m->n_listen; i++) {
        const char *s = m->listen[i];
        if (s == NULL || vigil_addr_parse(s, VIGIL_DEFAULT_PORT, &a) != 0)
            return cfail(c, err, cap, at(c, O_M_LISTEN_0 + (int)i, print_str(s)), ln,
                         "monitor.listen[%zu] \"%s\" is not a numeric address (1.2.3.4:%d, "
                         "[::]:%d)",
                         i, s != NULL ? s : "", VIGIL_DEFAULT_PORT, VIGIL_DEFAULT_PORT);
    }
    const char *api = m->api;
    if (api != NULL && *api != '\0' && strcmp(api, "off") != 0 &&
        vigil_addr_parse(api, DEFAULT_API_PORT, &a) != 0)
        return cfail(c, err, cap, at(c, O_M_API, print_str(api)), 0,
                     "monitor.api \"%s\" is not a numeric address (127.0.0.1:%d, [::1]:%d) "
                     "or \"off\"",
                     api, DEFAULT_API_PORT, DEFAULT_API_PORT);

    unsigned li = at(c, O_M_INTERVAL, print_int(m->interval));
    if (m->interval < INTERVAL_MIN || m->interval > INTERVAL_MAX)
        return cfail(c, err, cap, li, 0,
                     "monitor.heartbeat_interval (%s) must be between 10 ms and 1 h",
                     fmt_dur(m->interval, b1, sizeof(b1)));
    if (check_detector(c, err, cap) != 0)
        return -1;

    unsigned lg = at(c, O_M_GRACE, print_int(core->startup_grace));
    if (core->detector.kind == VIGIL_DETECTOR_FIXED) {
        vigil_time_t dead = secs_to_ns(core->detector.dead_threshold);
        if (core->startup_grace < dead)
            return cfail(c, err, cap, lg, at(c, O_M_DEAD, print_dbl(core->detector.dead_threshold)),
                         "monitor.startup_grace (%s) must be at least monitor.detector.dead_after "
                         "(%s): a declared node must get the time any silent node gets",
                         fmt_dur(core->startup_grace, b1, sizeof(b1)),
                         fmt_dur(dead, b2, sizeof(b2)));
    } else if (core->startup_grace < m->interval) {
        return cfail(c, err, cap, lg, li,
                     "monitor.startup_grace (%s) must be at least monitor.heartbeat_interval "
                     "(%s): a declared node must get the time to send one heartbeat",
                     fmt_dur(core->startup_grace, b1, sizeof(b1)),
                     fmt_dur(m->interval, b2, sizeof(b2)));
    }
    if (core->pause_tolerance <= 0)
        return cfail(c, err, cap, at(c, O_M_PAUSE_TOL, print_int(core->pause_tolerance)), 0,
                     "monitor.pause_tolerance (%s) must be longer than 0 s",
                     fmt_dur(core->pause_tolerance, b1, sizeof(b1)));
    if (core->rise < 1 || core->rise > RISE_MAX)
        return cfail(c, err, cap, at(c, O_M_RISE, print_int(core->rise)), 0,
                     "monitor.rise (%u) must be between 1 and %d", core->rise, RISE_MAX);
    unsigned lm = at(c, O_M_MAX_NODES, print_int(core->max_nodes));
    if (core->max_nodes < 1 || core->max_nodes > MAX_NODES_MAX)
        return cfail(c, err, cap, lm, 0, "monitor.max_nodes (%u) must be between 1 and %d",
                     core->max_nodes, MAX_NODES_MAX);
    if (m->n_nodes > core->max_nodes)
        return cfail(c, err, cap, lm, at(c, O_M_NODES, print_int((int64_t)m->n_nodes)),
                     "monitor.max_nodes (%u) is smaller than the %zu declared nodes",
                     core->max_nodes, m->n_nodes);
    for (size_t i = 0; i < m->n_nodes; i++) {
        const char *id = m->nodes[i];
        if (id == NULL || !vigil_id_valid(id, strlen(id)))
            return cfail(c, err, cap, 0, 0, "declared node \"%s\" is not a valid node id",
                         id != NULL ? id : "");
        for (size_t j = 0; j < i; j++)
            if (!strcmp(id, m->nodes[j]))
                return cfail(c, err, cap, 0, 0, "node \"%s\" is declared twice", id);
    }
    if (m->event_history < 1 || m->event_history > EVENT_HISTORY_MAX)
        return cfail(c, err, cap, at(c, O_M_EVENTS, print_int(m->event_history)), 0,
                     "monitor.event_history (%u) must be between 1 and %d", m->event_history,
                     EVENT_HISTORY_MAX);
    if (check_hooks(c, err, cap) != 0)
        return -1;
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
    if (buf == NULL || cap == 0 || gethostname(host, sizeof(host)) != 0)
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
        return cfail(c, err, cap, at(c, O_A_ID, print_str(a->id)), 0,
                     "agent.id \"%s\" is not a valid node id (1 to %d characters of A-Z a-z 0-9 "
                     ". _ -)",
                     a->id, VIGIL_ID_MAX);
    }
    unsigned lm = at(c, O_A_MONITORS, print_int((int64_t)a->n_monitors));
    if (a->n_monitors < 1 || a->n_monitors > VIGIL_SENDER_MAX_MONITORS)
        return cfail(c, err, cap, lm, 0,
                     "agent.monitors must hold 1 to %d monitor addresses (it holds %zu)",
                     VIGIL_SENDER_MAX_MONITORS, a->n_monitors);
    for (size_t i = 0; i < a->n_monitors; i++)
        if (a->monitors[i] == NULL || a->monitors[i][0] == '\0')
            return cfail(c, err, cap, lm, 0, "agent.monitors[%zu] is empty", i);
    if (a->interval < INTERVAL_MIN || a->interval > INTERVAL_MAX)
        return cfail(c, err, cap, at(c, O_A_INTERVAL, print_int(a->interval)), 0,
                     "agent.interval (%s) must be between 10 ms and 1 h",
                     fmt_dur(a->interval, b1, sizeof(b1)));
    return 0;
}

int vcfg_check(const struct vcfg *c, const char *which, char *err, size_t cap)
{
    if (c == NULL || which == NULL)
        return errf(err, cap, "invalid arguments");
    if (c->oom)
        return errf(err, cap, "out of memory");
    if (!strcmp(which, "monitor"))
        return check_monitor(c, err, cap);
    if (!strcmp(which, "agent"))
        return check_agent(c, err, cap);
    return errf(err, cap, "unknown section \"%s\" (monitor or agent)", which);
}
