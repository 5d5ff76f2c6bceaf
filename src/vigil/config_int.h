/*
 * Internals shared by the files of the configuration layer (config*.c);
 * nothing outside the layer includes this header, config.h is its public
 * face.
 *
 *   config.c          the entry points: defaults, freeing, loading a file
 *   config_lex.c      the pre-scan of the raw text, before libconfig parses it
 *   config_read.c     typed readers of libconfig settings, the member walk
 *   config_monitor.c  the settings of the "monitor" section
 *   config_agent.c    the settings of the "agent" section
 *   config_peer.c     the settings of the "peer" section
 *   config_values.c   value syntax: durations, integers, key files; messages
 *   config_check.c    relations between settings (vcfg_check)
 */
#ifndef VIGIL_CONFIG_INT_H
#define VIGIL_CONFIG_INT_H

#include <string.h>

#include <libconfig.h>

#include "config.h"

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
    O_M_MARGIN,      /* grid: margin */
    O_M_LOSS_FLOOR,  /* grid: loss_floor */
    O_M_LOSS_WINDOW, /* grid: loss_window */
    O_M_GRACE,
    O_M_PAUSE_TOL,
    O_M_RISE,
    O_M_MAX_NODES,
    O_M_NODES,
    O_M_EVENTS,
    O_A_ID,
    O_A_MONITORS,
    O_A_INTERVAL,
    O_M_GOAL_DET,   /* monitor.goals.detection */
    O_M_GOAL_FALSE, /* monitor.goals.false_alarms */
    O_M_TLS_CERT,   /* monitor.api_tls_cert */
    O_M_TLS_KEY,    /* monitor.api_tls_key */
    O_COUNT_
};
_Static_assert(O_COUNT_ <= VCFG_ORIGINS, "VCFG_ORIGINS too small");

/*
 * Heartbeat intervals (monitor.heartbeat_interval, agent.interval) from
 * 10 ms to the longest the wire carries, an hour. Below 10 ms the
 * scheduling jitter of an ordinary host is of the order of the interval
 * itself, so the program asks for more than the library's 1 ms.
 */
#define VCFG_INTERVAL_MIN (10 * VIGIL_NSEC_PER_MSEC)
#define VCFG_INTERVAL_MAX VIGIL_SENDER_INTERVAL_MAX
/*
 * The shortest pause_tolerance: the event loop of an ordinary host fires a
 * timer up to about this late, so a shorter tolerance would take every
 * ordinary delay for a stall of the monitor and keep resetting detection.
 */
#define VCFG_PAUSE_TOLERANCE_MIN (10 * VIGIL_NSEC_PER_MSEC)
/* The messages of config_check.c say "between 10 ms and 1 h". */
_Static_assert(VCFG_INTERVAL_MIN == 10 * VIGIL_NSEC_PER_MSEC &&
                   VCFG_INTERVAL_MAX == 3600 * VIGIL_NSEC_PER_SEC,
               "the interval messages name other bounds");

/* --- config_values.c: messages, fingerprints, value syntax ---------------- */

/* Writes the message into err (cap bytes; err may be NULL) and returns -1. */
int vcfg__errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A fingerprint of a value as read from the file (see struct vcfg_origin). */
uint64_t vcfg__print_str(const char *s);

static inline uint64_t vcfg__print_dbl(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

static inline uint64_t vcfg__print_int(int64_t v)
{
    return (uint64_t)v;
}

/* Formats a duration for a message: "2 s", "1.5 s", "250 ms", "40 us". Returns buf. */
const char *vcfg__fmt_dur(vigil_time_t ns, char *buf, size_t cap);

/* Seconds (a fixed detector's threshold) to ns, clamped to the duration range. */
vigil_time_t vcfg__secs_to_ns(double s);

/* The value of a hex digit, or -1. */
int vcfg__hexval(int ch);

/* --- config.c: freeing ---------------------------------------------------- */

void vcfg__free_strs(char **v, size_t *n);

/* --- config_lex.c: the pre-scan of the raw text --------------------------- */

/*
 * Deepest nesting of groups, arrays and lists accepted. The schema nests
 * four levels; 32 leaves room for any mistake worth a clear message and
 * bounds the bracket stack of the scan.
 */
#define VCFG_NEST_MAX 32

/* What the pre-scan found: the first line of each kind of trouble (0: none). */
struct vcfg__scan {
    unsigned nul_line;     /* first line with a NUL byte */
    unsigned include_line; /* first @include */
    unsigned string_line;  /* first string where no value may stand */
    unsigned open_line;    /* a string still open at the end of the text */
    unsigned deep_line;    /* first bracket nested deeper than VCFG_NEST_MAX */
    unsigned int_line;     /* first integer literal out of range */
    char int_text[48];     /* that literal, as written (cut short with "...") */
};

/* Scans the n bytes of t (not NUL terminated) into sc. */
void vcfg__prescan(const char *t, size_t n, struct vcfg__scan *sc);

/* --- config_read.c: reading settings out of libconfig --------------------- */

/* The state of one load. */
struct vcfg__ld {
    struct vcfg *c;
    const char *file; /* for messages */
    size_t dir_len;   /* length of file's directory prefix, with its '/' */
    char *err;
    size_t cap;
    bool interval_set;        /* monitor.heartbeat_interval was in the file */
    struct vio_fs *fs;        /* where key files are read */
    bool actions_seen;        /* monitor.hooks or monitor.actions read: the other adds to it */
    size_t group_priorities;  /* entries of the group's priority list being read */
    struct vcfg_check *check; /* the check being read */
    /*
     * The name and escalate settings of each action read (by its place in
     * the list; NULL: not given), for the checks of the whole list once
     * both monitor.hooks and monitor.actions are read.
     */
    const config_setting_t *act_name[VCFG_MAX_HOOKS];
    const config_setting_t *act_escalate[VCFG_MAX_HOOKS];
};

/* The line of a setting in the file (0 if unknown). */
unsigned vcfg__sline(const config_setting_t *s);

/* Each writes "FILE:LINE: " and a message into l->err and returns -1. */
int vcfg__lfail(struct vcfg__ld *l, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As vcfg__lfail, with the setting's path ("monitor.hooks[0].timeout") first. */
int vcfg__sfail(struct vcfg__ld *l, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int vcfg__oom(struct vcfg__ld *l, const config_setting_t *s);
int vcfg__wrong_type(struct vcfg__ld *l, const config_setting_t *s, const char *want);

/* Records where the setting of slot (O_*) came from, with the value's fingerprint. */
void vcfg__set_origin(struct vcfg__ld *l, int slot, const config_setting_t *s, uint64_t print);

/* Typed readers: each returns 0, or -1 with the message written. */
int vcfg__rd_string(struct vcfg__ld *l, const config_setting_t *s, const char **out);
int vcfg__rd_bool(struct vcfg__ld *l, const config_setting_t *s, bool *out);
int vcfg__rd_int(struct vcfg__ld *l, const config_setting_t *s, long long lo, long long hi,
                 long long *out);
int vcfg__rd_number(struct vcfg__ld *l, const config_setting_t *s, double *out);
int vcfg__rd_duration(struct vcfg__ld *l, const config_setting_t *s, vigil_time_t *out);
int vcfg__rd_strings(struct vcfg__ld *l, const config_setting_t *s, size_t max, size_t empty_from,
                     size_t *n);
int vcfg__rd_key(struct vcfg__ld *l, const config_setting_t *s, bool monitor);
/* Adds path, read through fs, to the monitor's keys (at most VIGIL_KEYS_MAX, distinct ids). */
int vcfg__monitor_key_add(struct vcfg_monitor *m, struct vio_fs *fs, const char *path, char *err,
                          size_t cap);
/* vcfg_agent_key through fs. */
int vcfg__agent_key(struct vcfg_agent *a, struct vio_fs *fs, const char *path, char *err,
                    size_t cap);

/* Element i of a list of strings that vcfg__rd_strings accepted. */
const char *vcfg__elem_str(const config_setting_t *s, size_t i);
/* A name (an action's, a check's): 1 to max of [A-Za-z0-9._-]; *out as for vcfg__rd_string. */
int vcfg__rd_name(struct vcfg__ld *l, const config_setting_t *s, size_t max, const char **out);
/*
 * A command: a list of 1 to VCFG_MAX_ARGV strings, the program an absolute
 * path or a name looked up in PATH; replaces argv (VCFG_MAX_ARGV + 1 slots).
 */
int vcfg__rd_argv(struct vcfg__ld *l, const config_setting_t *s, char **argv);

/*
 * Custom status pairs (agent.custom, peer.custom; what names the setting in
 * messages): a group of at most VIGIL_CUSTOM_MAX string values into out
 * (that many slots), *n of them.
 */
int vcfg__rd_custom(struct vcfg__ld *l, const config_setting_t *s, const char *what,
                    struct vigil_custom *out, size_t *n);

/* Replaces *dst by a copy of v; vcfg__set_path takes v relative to the file's directory. */
int vcfg__set_str(struct vcfg__ld *l, const config_setting_t *s, char **dst, const char *v);
int vcfg__set_path(struct vcfg__ld *l, const config_setting_t *s, char **dst, const char *v);

/*
 * Walks the members of group g: each must be named in the table, and its
 * handler reads it. Unknown members are errors, so that a typo is found.
 */
typedef int (*vcfg__handler_fn)(struct vcfg__ld *l, const config_setting_t *s);

struct vcfg__field {
    const char *name;
    vcfg__handler_fn fn; /* NULL: accepted, read elsewhere */
};

int vcfg__walk(struct vcfg__ld *l, const config_setting_t *g, const struct vcfg__field *f,
               size_t nf);

/* --- the sections (config_monitor.c, config_agent.c) ---------------------- */

int vcfg__ld_monitor(struct vcfg__ld *l, const config_setting_t *s);
int vcfg__ld_agent(struct vcfg__ld *l, const config_setting_t *s);
int vcfg__ld_peer(struct vcfg__ld *l, const config_setting_t *s);
/*
 * monitor.checks (agent false) or agent.checks (agent true): reads the
 * list s into *checks (n of them, at most max), replacing what was there.
 * fixed: checks points to an array of max entries (else it is allocated).
 */
int vcfg__ld_checks(struct vcfg__ld *l, const config_setting_t *s, bool agent,
                    struct vcfg_check **checks, size_t *n, size_t max, bool fixed);

#endif
