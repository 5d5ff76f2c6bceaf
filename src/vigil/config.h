/*
 * Configuration of the vigil program: one file (libconfig syntax) with an
 * "agent" and/or a "monitor" section, then command-line flags on top.
 * docs/configuration.md documents every setting and its default.
 */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include <vigil/vigil.h>

#define VCFG_MAX_LISTEN   8
#define VCFG_MAX_NODES    4096 /* nodes declared in the file */
#define VCFG_MAX_HOOKS    16
#define VCFG_MAX_ARGV     32

enum vcfg_log_format { VCFG_LOG_TEXT = 0, VCFG_LOG_JSON = 1 };

struct vcfg_hook {
    char *argv[VCFG_MAX_ARGV + 1]; /* NULL terminated; argv[0] is the program */
    vigil_time_t timeout;          /* TERM after this, KILL 2 s later; default 10 s */
    uint32_t on_states;            /* bit (1 << enum vigil_state) per new state; 0: all */
};

struct vcfg_monitor {
    char *listen[VCFG_MAX_LISTEN]; /* "0.0.0.0:7946", "[::]:7946" */
    size_t n_listen;
    char *api;                     /* "127.0.0.1:7947"; "" or "off" disables */
    struct vigil_monitor_config core; /* detector, rise, grace, key, ... */
    vigil_time_t interval;         /* expected heartbeat interval (validation, phi seed) */
    char *nodes[VCFG_MAX_NODES];   /* declared node ids */
    size_t n_nodes;
    struct vcfg_hook hooks[VCFG_MAX_HOOKS];
    size_t n_hooks;
    enum vcfg_log_format log_format;
    char *log_file;                /* NULL: standard output */
    uint32_t event_history;        /* events kept for the API; default 10000 */
};

struct vcfg_agent {
    char *id;                      /* default: the host name (if a valid id) */
    char *monitors[VIGIL_SENDER_MAX_MONITORS];
    size_t n_monitors;
    vigil_time_t interval;         /* default 1 s */
    bool has_key;
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    char *status_file;             /* custom key=value lines, re-read when changed */
    struct vigil_custom custom[VIGIL_CUSTOM_MAX]; /* static custom status */
    size_t n_custom;
};

struct vcfg {
    char *path;                    /* the file read, or NULL */
    struct vcfg_monitor monitor;
    struct vcfg_agent agent;
};

/* Fills every default (the embedded defaults: no file needed). */
void vcfg_init(struct vcfg *c);
void vcfg_free(struct vcfg *c);

/*
 * Reads path into c (on top of the defaults). On error returns -1 and writes
 * "FILE:LINE: what is wrong" into err (cap bytes); nothing is guessed.
 */
int vcfg_load(struct vcfg *c, const char *path, char *err, size_t cap);

/*
 * Checks relations between settings after the file and the flags (a dead
 * timeout shorter than the heartbeat interval, ...). which: "monitor" or
 * "agent". Returns 0, or -1 with the reason in err (with FILE:LINE when the
 * setting came from the file).
 */
int vcfg_check(const struct vcfg *c, const char *which, char *err, size_t cap);

/* Reads a cluster key file: 64 hex digits (surrounding white space ignored). */
int vcfg_read_key(const char *path, uint8_t key[VIGIL_WIRE_KEY_LEN], char *err, size_t cap);

/* Parses a duration "1.5", "1500ms", "2s", "1m" into ns; returns -1 if invalid. */
int vcfg_parse_duration(const char *s, vigil_time_t *out);

#endif
