/*
 * Configuration of the vigil program: one file (libconfig syntax) with an
 * "agent" and/or a "monitor" section, then command-line flags on top.
 * docs/configuration.md documents every setting and its default.
 */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include <vigil/vigil.h>

struct vio_fs;

#define VCFG_MAX_LISTEN 8
/* Most other monitors in monitor.peers (a sender's destinations, less this monitor itself). */
#define VCFG_MAX_PEERS 7
/* Most etcd endpoints (members) in monitor.etcd. */
#define VCFG_MAX_ETCD  9
#define VCFG_MAX_NODES 4096 /* nodes declared in the file */
#define VCFG_MAX_HOOKS 16
#define VCFG_MAX_ARGV  32

/* A macro's value as a string literal: VCFG_STR(VIGIL_DEFAULT_PORT) is "7946". */
#define VCFG_STR_(x) #x
#define VCFG_STR(x)  VCFG_STR_(x)

/* Where a monitor listens and where an agent sends, unless told otherwise. */
#define VCFG_LISTEN_DEFAULT  "0.0.0.0:" VCFG_STR(VIGIL_DEFAULT_PORT)
#define VCFG_MONITOR_DEFAULT "127.0.0.1:" VCFG_STR(VIGIL_DEFAULT_PORT)

enum vcfg_log_format { VCFG_LOG_TEXT = 0, VCFG_LOG_JSON = 1 };
/*
 * How much the monitor logs: errors, warnings, info (the default: events,
 * start and stop, summaries of dropped datagrams) or debug (also every
 * dropped datagram, rate limited).
 */
enum vcfg_log_level { VCFG_LOG_ERROR = 0, VCFG_LOG_WARN, VCFG_LOG_INFO, VCFG_LOG_DEBUG };
/* Parses "error", "warn", "info" or "debug"; -1 for anything else. */
int vcfg_log_level_parse(const char *s);

/*
 * The kinds of action (docs/actions.md). exec runs a program (the hooks of
 * earlier versions); the others are built in and drive a program of their
 * own: HAProxy's runtime API, an HTTP receiver, Alertmanager.
 */
enum vcfg_act_kind {
    VCFG_ACT_EXEC = 0,
    VCFG_ACT_HAPROXY = 1,
    VCFG_ACT_WEBHOOK = 2,
    VCFG_ACT_ALERTMANAGER = 3,
    VCFG_ACT_RESTART = 4,
};
#define VCFG_ACT_KINDS 5
/* The kind's name in the file ("exec", "haproxy", ...), and back (-1: none). */
const char *vcfg_act_kind_name(enum vcfg_act_kind k);
int vcfg_act_kind_parse(const char *s);

/* Most node patterns, HAProxy servers and Alertmanager labels of one action. */
#define VCFG_MAX_MATCH       16
#define VCFG_MAX_LABELS      16
#define VCFG_ACTION_NAME_MAX 32

/*
 * An action (monitor.actions; monitor.hooks is the same list, of exec
 * actions by default). The hook runner (hooks.h) runs them.
 */
struct vcfg_hook {
    enum vcfg_act_kind kind;
    /* Its name in logs, the API and idempotency keys (NULL: "KIND-N", N its place in the list). */
    char *name;
    char *argv[VCFG_MAX_ARGV + 1]; /* exec: NULL terminated; argv[0] is the program */
    vigil_time_t timeout;          /* exec: TERM after this, KILL 2 s later; others: given up */
    uint32_t on_states;            /* bit (1 << enum vigil_state) per new state; 0: all */
    uint32_t retries;              /* runs again after a failure */
    vigil_time_t retry_delay;      /* before the first retry, doubling */
    vigil_time_t retry_max;        /* ... up to this (0: no cap) */
    /* The defaults are hooks.h's (see vcfg_hook_default). */
    /*
     * undo: when the node comes back (a new state alive, from a state in
     * on_states), the action's undo runs: HAProxy's server is made ready,
     * the alert resolved, an exec program run with VIGIL_ACTION=undo.
     */
    bool undo;
    /* The nodes it is for: globs on the node id (none: every node) ... */
    char *nodes[VCFG_MAX_MATCH];
    size_t n_nodes;
    /*
     * The checks it is for: globs on check names. With any, the action acts
     * on those checks' status changes (critical, warning and passing stand
     * for dead, suspect and alive in on_states) and not on node states;
     * with none, on node states only.
     */
    char *checks[VCFG_MAX_MATCH];
    size_t n_checks;
    /* ... and a custom status value the node must have ("role=web": key and value; NULL: any). */
    char *match_key, *match_value;
    /* haproxy: the runtime API ("/run/haproxy/admin.sock" or "HOST:PORT"). webhook, alertmanager:
     * the URL. */
    char *target;
    /* haproxy: "BACKEND/SERVER" each, %n replaced by the node id. */
    char *servers[VCFG_MAX_MATCH];
    size_t n_servers;
    /* haproxy: a custom status key whose value names the node's "BACKEND/SERVER"s (comma
     * separated). */
    char *server_key;
    bool drain; /* haproxy: "drain" rather than "maint" */
    /* webhook: a file holding the HMAC-SHA256 key of the X-Vigil-Signature header (NULL: none). */
    char *secret_file;
    /* alertmanager: extra labels "NAME=VALUE". */
    char *labels[VCFG_MAX_LABELS];
    size_t n_labels;
    /* alertmanager: re-posted this often while firing (0: ACT_AM_REPEAT_DEFAULT). */
    vigil_time_t repeat;
    /* restart: the node must be alive this long after the command, or the restart failed. */
    vigil_time_t restart_wait;
    /* restart: a node up this long since its last restart starts again from no backoff. */
    vigil_time_t reset_after;
    /* restart: the action (webhook or alertmanager) run when the restarts gave up; NULL: none. */
    char *escalate;
};

/* ---- health checks (docs/checks.md) ---- */

enum vcfg_check_kind {
    VCFG_CHECK_TCP = 0,  /* connect; optionally send, and expect a pattern in the reply */
    VCFG_CHECK_HTTP = 1, /* an HTTP(S) request; status set and body pattern */
    VCFG_CHECK_EXEC = 2, /* a command: exit 0 passing, 1 warning, else critical */
    VCFG_CHECK_PING = 3, /* vigil's authenticated UDP echo to an agent (agent.listen) */
};
const char *vcfg_check_kind_name(enum vcfg_check_kind k);

#define VCFG_CHECK_NAME_MAX 32
/* Checks one monitor runs (monitor.checks), and one agent (agent.checks). */
#define VCFG_MAX_CHECKS       100000
#define VCFG_AGENT_MAX_CHECKS 8
#define VCFG_CHECK_STATUS_MAX 16
/* Output of an exec check kept (the event shows its first VIGIL_EVENT_DETAIL_MAX bytes). */
#define VCFG_CHECK_OUTPUT_MAX 4096

/* Defaults: HAProxy's (inter 2s, rise 2, fall 3), with a timeout of 1 s. */
#define VCFG_CHECK_INTERVAL_DEFAULT (2 * VIGIL_NSEC_PER_SEC)
#define VCFG_CHECK_TIMEOUT_DEFAULT  VIGIL_NSEC_PER_SEC
#define VCFG_CHECK_RISE_DEFAULT     2
#define VCFG_CHECK_FALL_DEFAULT     3
#define VCFG_CHECK_RISE_MAX         100

struct vcfg_check {
    char *name; /* unique per node */
    char *node; /* monitor.checks: the node it is of (agent.checks: NULL, the agent's own) */
    enum vcfg_check_kind kind;
    char *target; /* tcp, ping: "IP:PORT" ("[v6]:PORT") */
    char *send;   /* tcp: written once connected (NULL: nothing) */
    char *expect; /* tcp: the reply must contain this (NULL: connecting is enough) */
    char *url;    /* http */
    char *method; /* http: NULL: GET */
    char *headers[VCFG_MAX_MATCH + 1]; /* http: "Name: value", NULL-terminated */
    size_t n_headers;
    int status[VCFG_CHECK_STATUS_MAX]; /* http: the statuses that pass (none: 200-399) */
    size_t n_status;
    char *body;      /* http: the body must contain this (NULL: any) */
    bool tls_verify; /* https: verify the certificate (default true) */
    char *ca_file;   /* https: the CA certificates to verify with (NULL: the system's) */
    char *argv[VCFG_MAX_ARGV + 1]; /* exec */
    vigil_time_t interval;         /* between checks */
    vigil_time_t timeout;          /* one check; exec: TERM, then KILL 2 s later */
    vigil_time_t fastinter;        /* between checks while the status is changing (0: interval) */
    vigil_time_t downinter;        /* between checks while critical (0: interval) */
    uint32_t rise, fall;           /* consecutive results that make a change */
    /* A critical status makes the node dead: -1 unset (polled nodes: yes; others: no). */
    int critical_means_dead;
};

void vcfg_check_default(struct vcfg_check *c);
void vcfg_check_free(struct vcfg_check *c);
int vcfg_check_copy(struct vcfg_check *dst, const struct vcfg_check *src);

/* Most failover groups, and members of one. */
#define VCFG_MAX_GROUPS  16
#define VCFG_MAX_MEMBERS 16

/*
 * A failover group (monitor.groups, groups.h): nodes of which one is the
 * primary; when it dies one replica is promoted, chosen by priority, then
 * by a custom status value (rank_key, lowest first), then by list order.
 */
struct vcfg_group {
    char *name;
    char *nodes[VCFG_MAX_MEMBERS];
    int priority[VCFG_MAX_MEMBERS]; /* higher first; 0 by default */
    size_t n_nodes;
    char *primary;  /* the first primary (NULL: the first node) */
    char *rank_key; /* custom status key, lower first (replication lag); NULL: none */
    bool preempt;   /* a returning primary of higher priority takes over again */
    char *promote[VCFG_MAX_ARGV + 1];
    char *demote[VCFG_MAX_ARGV + 1]; /* [0] NULL: none */
    vigil_time_t timeout;
};

/* The most receive threads per listen address (io/vio.h's VIO_RECV_THREADS_MAX). */
#define VCFG_MAX_RECEIVE_THREADS 16

struct vcfg_monitor {
    char *listen[VCFG_MAX_LISTEN]; /* "0.0.0.0:7946", "[::]:7946" */
    size_t n_listen;
    /* Receive threads per listen address (1: read in the daemon's own thread). */
    unsigned receive_threads;
    /* Each receive socket's buffer, in MB. */
    unsigned receive_buffer_mb;
    char *api; /* "127.0.0.1:7947"; "" or "off" disables */
    /*
     * The API's token (a file holding it, owner-only): changing state
     * through the API needs it (NULL: no call can). Read when the API opens.
     */
    char *api_token_file;
    /* HTTPS for the API: certificate (chain) and private key, PEM files (NULL: plain HTTP). */
    char *api_tls_cert;
    char *api_tls_key;
    struct vigil_monitor_config core; /* detector, rise, grace, key, max_ahead, ... */
    /*
     * The key files (monitor.key_file: one, or a list during a rotation),
     * read again on SIGHUP, and the keys read from them at start (the first
     * is also core's key). The keys are wiped once the monitor holds them.
     */
    char *key_files[VIGIL_KEYS_MAX];
    size_t n_key_files;
    struct vigil_key keys[VIGIL_KEYS_MAX];
    size_t n_keys;
    bool key_from_flag; /* the key came from --key-file, not the file */
    /* Run without a key: must be said explicitly (the monitor refuses to start otherwise). */
    bool insecure;
    /*
     * The high-water marks of the nodes, kept across restarts (NULL: not
     * kept), written every state_flush and at exit.
     */
    char *state_file;
    /*
     * The state store's directory (NULL: none): marks, node states and the
     * event log in SQLite (src/io/store_sqlite.c), instead of state_file.
     * Marks are written every state_flush and at exit; events as they come.
     */
    char *state_dir;
    vigil_time_t state_flush;
    vigil_time_t interval; /* expected heartbeat interval (validation, phi seed) */
    /*
     * core.pause_tolerance was not set: it follows the interval
     * (vcfg_pause_tolerance_auto) when the monitor starts.
     */
    bool pause_tolerance_auto;
    /*
     * core.startup_grace was not set: with a state store it is raised when
     * the monitor starts to what a restart needs (vcfg_startup_grace_auto).
     */
    bool startup_grace_auto;
    char *nodes[VCFG_MAX_NODES]; /* declared node ids */
    size_t n_nodes;
    struct vcfg_hook hooks[VCFG_MAX_HOOKS]; /* monitor.actions (and monitor.hooks) */
    size_t n_hooks;
    struct vcfg_group groups[VCFG_MAX_GROUPS];
    size_t n_groups;
    /* monitor.checks: polls of the nodes' services (NULL: none). */
    struct vcfg_check *checks;
    size_t n_checks;
    /* monitor.poll_only: nodes that send no heartbeats; their checks decide their state. */
    char *poll_only[VCFG_MAX_NODES];
    size_t n_poll_only;
    /*
     * monitor.etcd: redundant monitors led through etcd (leader.h,
     * actgate.h): the members' URLs, the prefix of vigil's keys and the
     * leader lease's TTL. n_etcd 0: this monitor acts alone.
     */
    char *etcd[VCFG_MAX_ETCD];
    size_t n_etcd;
    char *etcd_prefix;     /* NULL: "/vigil" */
    vigil_time_t etcd_ttl; /* 0: LEADER_TTL_DEFAULT */
    char *name;            /* monitor.name: this monitor among its peers (NULL: the host name) */
    /*
     * monitor.peers: the other monitors' listening addresses. This monitor
     * sends them heartbeats as node `name`, so that each watches the others
     * like any node (and an etcd node appears with monitor.etcd).
     */
    char *peers[VCFG_MAX_PEERS];
    size_t n_peers;
    enum vcfg_log_format log_format;
    enum vcfg_log_level log_level;
    char *log_file;         /* NULL: standard output */
    uint32_t event_history; /* events kept for the API (VCFG_EVENT_HISTORY_*) */
    /*
     * monitor.flap_damping (holds.h): a node whose state changes too often
     * has its actions held until it settles.
     */
    struct {
        bool on;
        vigil_time_t half_life;
        double penalty, suppress, reuse;
    } damping;
    /* Events waiting for hooks, per node and in all (hooks.h, HOOK_QUEUE_*). */
    uint32_t hook_queue, hook_queue_total;
    /* monitor.goals, for vigil tune and the start-up warnings (0: not set). */
    vigil_time_t goal_detection; /* a crash declared dead within this */
    double goal_false_alarms;    /* false dead verdicts per node per second, at most */
};

struct vcfg_agent {
    char *id; /* default: the host name (if a valid id) */
    char *monitors[VIGIL_SENDER_MAX_MONITORS];
    size_t n_monitors;
    vigil_time_t interval; /* default 1 s */
    bool has_key;
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    uint8_t key_id;
    char *key_file; /* read again on SIGHUP */
    /* The id a node key file names (the agent's id must be that one); "" for a legacy key. */
    char key_node[VIGIL_ID_MAX + 1];
    bool encrypt;          /* seal the full statuses (agent.encrypt) */
    char *status_file;     /* custom key=value lines, re-read when changed */
    char *listen;          /* "IP:PORT" where the agent answers the monitors' pings (NULL: none) */
    char *generation_file; /* the last boot generation, kept across restarts */
    uint32_t status_every; /* full status at least every N heartbeats (wire version 2) */
    uint8_t wire_version;  /* 2, or 1 for monitors older than version 2 */
    struct vigil_custom custom[VIGIL_CUSTOM_MAX]; /* static custom status */
    size_t n_custom;
    /* agent.checks: the host's own services, reported in the heartbeats. */
    struct vcfg_check checks[VCFG_AGENT_MAX_CHECKS];
    size_t n_checks;
};

/* Seeds a member asks to join through. */
#define VCFG_PEER_MAX_SEEDS 16

/*
 * The "peer" section: this process is a member of a peer-to-peer cluster
 * (docs/peer.md) instead of a monitor of heartbeats. The monitor section
 * still gives the API, the log, the event history, the hooks, the actions
 * and the leadership; its listen addresses and keys are not used.
 */
struct vcfg_peer {
    bool on;      /* run as a member: vigil peer sets it (a monitor reading the file does not) */
    bool given;   /* the section was in the file */
    char *id;     /* default: the host name (if a valid id) */
    char *listen; /* "IP:PORT" of the member's UDP socket */
    char *seeds[VCFG_PEER_MAX_SEEDS];
    size_t n_seeds;
    char *key_file;    /* the cluster key: every message tagged with it */
    bool insecure;     /* no key: anyone may speak (must be asked for) */
    bool encrypt;      /* every datagram sealed with the cluster key */
    char *member_file; /* this member's signing key and certificate (vigil peer-cert issue) */
    char *ca_file;     /* the CA's public key (vigil peer-cert ca): leaves and alives checked */
    /* Unsigned leaves and alives refused (default: true when ca_file is given). */
    int require_signed; /* -1: the default */
    vigil_time_t interval, probe_timeout, gossip_interval, sync_interval, reconnect_interval;
    vigil_time_t pause_tolerance; /* 0: the interval */
    uint32_t indirect_checks, retransmit_mult, suspicion_mult, suspicion_max_mult, gossip_nodes;
    uint32_t awareness_max, max_members;
    bool lifeguard;
    /* This member's status in its metadata: sampled this often (0: never), custom pairs. */
    vigil_time_t status_interval;
    struct vigil_custom custom[VIGIL_CUSTOM_MAX];
    size_t n_custom;
};

/*
 * Where a setting came from (private to the configuration layer): its line
 * in the file and a fingerprint of the value read there. vcfg_check cites
 * FILE:LINE only while the value is still the one read from the file, so
 * that a setting a command-line flag has overridden is never blamed on the
 * file.
 */
struct vcfg_origin {
    unsigned line;  /* line in path; 0: not from the file */
    uint64_t print; /* the value as read: its bits, or a hash of a string */
};

/* Settings whose origin is kept: the ones vcfg_check relates (config_int.h lists them). */
#define VCFG_ORIGINS 40

struct vcfg {
    char *path; /* the file read, or NULL */
    /*
     * Who reads the file: "monitor" or "agent" (NULL: both). The key files
     * of the other role's section are not read, only named, so that one
     * file can serve both roles on hosts that hold only their own key.
     */
    const char *role;
    struct vcfg_monitor monitor;
    struct vcfg_agent agent;
    struct vcfg_peer peer;
    /* Private to the configuration layer (config*.c). */
    bool oom; /* vcfg_init could not allocate a default */
    struct vcfg_origin origin[VCFG_ORIGINS];
};

/*
 * Events kept for the API (monitor.event_history): by default ten
 * thousand, hours of a busy cluster's history in a few MB; at most a
 * million, a few hundred MB.
 */
#define VCFG_EVENT_HISTORY_DEFAULT 10000
#define VCFG_EVENT_HISTORY_MAX     1000000

/*
 * The monitor's own stall worth reporting, when the configuration does not
 * say: two heartbeat intervals (a shorter stall is within ordinary jitter),
 * at least VCFG_PAUSE_TOLERANCE_AUTO_MIN (a loaded host's scheduling hiccups are
 * not pauses) and at most 1 s.
 */
#define VCFG_PAUSE_TOLERANCE_AUTO_MIN (100 * VIGIL_NSEC_PER_MSEC)
#define VCFG_PAUSE_TOLERANCE_AUTO_MAX VIGIL_NSEC_PER_SEC
vigil_time_t vcfg_pause_tolerance_auto(vigil_time_t interval);
/*
 * The startup grace a monitor with a state store (state_dir or
 * state_file) needs so that a restart kills no live node: two state_flush
 * intervals (a known node's marks are raised by that many heartbeats) plus
 * the detector's time to declare a silent node dead, rounded up to the
 * second; never less than what m has. Without a store, m's own.
 */
vigil_time_t vcfg_startup_grace_auto(const struct vcfg_monitor *m);

/* Fills every default (the embedded defaults: no file needed). */
void vcfg_init(struct vcfg *c);
/* The peer section's defaults (memberlist's LAN profile; docs/peer.md); frees nothing. */
void vcfg_peer_default(struct vcfg_peer *p);
void vcfg_peer_free(struct vcfg_peer *p);
/* Frees what the agent section owns, wipes its key and clears it (vcfg_free does this too). */
void vcfg_agent_free(struct vcfg_agent *a);
void vcfg_free(struct vcfg *c);

/*
 * Clears h (it must own no strings) and fills a hook's defaults: every
 * state, the timeout and retries of hooks.h; argv is left empty. Used for
 * a hook of the file and for one given with --hook alike.
 */
void vcfg_hook_default(struct vcfg_hook *h);
/* A deep copy of src into dst (which owns nothing). 0, or -1 when out of memory (dst freed). */
int vcfg_hook_copy(struct vcfg_hook *dst, const struct vcfg_hook *src);
/* Frees what g owns and clears it. */
void vcfg_group_free(struct vcfg_group *g);
/* Frees what h owns and clears it. */
void vcfg_hook_free(struct vcfg_hook *h);
/* The action's name: its own, or "KIND-N" for the i-th (from 0) of the list, in buf. */
const char *vcfg_hook_name(const struct vcfg_hook *h, size_t i, char *buf, size_t cap);

/*
 * Reads path into c (on top of the defaults). On error returns -1 and writes
 * "FILE:LINE: what is wrong" into err (cap bytes); nothing is guessed.
 */
int vcfg_load(struct vcfg *c, const char *path, char *err, size_t cap);
/* vcfg_load, with the file and the key files it names read through fs. */
struct vio_fs;
int vcfg_load_fs(struct vcfg *c, struct vio_fs *fs, const char *path, char *err, size_t cap);

/*
 * Checks relations between settings after the file and the flags (a dead
 * timeout shorter than the heartbeat interval, ...). which: "monitor" or
 * "agent". Returns 0, or -1 with the reason in err (with FILE:LINE when the
 * setting came from the file).
 */
int vcfg_check(const struct vcfg *c, const char *which, char *err, size_t cap);

/* What a key file holds (docs/protocol.md, "Key files"). */
enum vcfg_key_kind {
    VCFG_KEY_CLUSTER = 0, /* 64 hex digits alone: a legacy key shared by all nodes */
    VCFG_KEY_MASTER = 1,  /* "vigil-master-key", then the key */
    VCFG_KEY_NODE = 2,    /* "vigil-node-key ID", then the node's own key */
};

/*
 * Reads a key file: an optional header line, then 64 hex digits (surrounding
 * white space ignored). Refuses a file its group or others may read. Sets
 * *kind and, for a node key, node_id (VIGIL_ID_MAX + 1 bytes; "" otherwise).
 * Returns 0 or -1 with the reason in err.
 */
int vcfg_read_key(const char *path, uint8_t key[VIGIL_WIRE_KEY_LEN], enum vcfg_key_kind *kind,
                  char *node_id, char *err, size_t cap);
/*
 * vcfg_read_key through fs, also giving the key id of the header line (0
 * when it names none; key_id may be NULL).
 */
struct vio_fs;
int vcfg_read_key_fs(struct vio_fs *fs, const char *path, uint8_t key[VIGIL_WIRE_KEY_LEN],
                     enum vcfg_key_kind *kind, char *node_id, uint8_t *key_id, char *err,
                     size_t cap);
/*
 * Reads a file that holds a secret (a key, a token, a TLS private key):
 * a regular file of at most max bytes that neither its group nor others
 * may read. what names it in messages ("a key file"); too_long is added to
 * the message when it is longer than max. Returns 0 with *out (malloc'd, NUL
 * terminated; wipe it, then free it) and *len, or -1 with the reason in err.
 */
int vcfg_read_secret(struct vio_fs *fs, const char *path, size_t max, const char *what,
                     const char *too_long, char **out, size_t *len, char *err, size_t cap);

/* Reads path as the monitor's only key (a master key, or a legacy cluster key). */
int vcfg_monitor_key(struct vcfg_monitor *m, const char *path, char *err, size_t cap);
/* Forgets the monitor's key files and keys. */
void vcfg_monitor_keys_clear(struct vcfg_monitor *m);
/*
 * Reads n key files (1 to VIGIL_KEYS_MAX) as a monitor's key set: no node
 * keys, distinct key ids. On error keys is wiped and err says which file
 * and why.
 */
int vcfg_monitor_read_keys(struct vio_fs *fs, char *const *paths, size_t n,
                           struct vigil_key keys[VIGIL_KEYS_MAX], char *err, size_t cap);
/* Reads path as the agent's key (a node key, or a legacy cluster key). */
int vcfg_agent_key(struct vcfg_agent *a, const char *path, char *err, size_t cap);

/* How often the monitor writes its state_file, unless told otherwise. */
#define VCFG_STATE_FLUSH_DEFAULT (5 * VIGIL_NSEC_PER_SEC)

/*
 * Parses a duration into ns: a number of seconds ("1.5") or a number with
 * a unit ("250us", "1500ms", "2s", "1m", "1h"; also "ns"), rounded to the
 * nearest nanosecond. Returns 0, or -1 if invalid (sign, space, exponent,
 * unknown unit, or longer than VCFG_DURATION_MAX).
 */
int vcfg_parse_duration(const char *s, vigil_time_t *out);

/*
 * Parses a decimal unsigned integer, strictly: the whole string, digits
 * only (no sign, space, prefix or exponent), at most max. Returns 0 with
 * the value in *out, or -1 (*out untouched). The one integer parser of the
 * program: flags, API query parameters and state files all use it.
 */
int vcfg_parse_u64(const char *s, uint64_t max, uint64_t *out);

/*
 * Parses a rate of events: "N/UNIT" with N a decimal number (digits and an
 * optional fraction) and UNIT one of s, m (or min), h, d (or day), w (or
 * week), month (30 days), y (or year, 365 days), e.g. "1/month", "0.5/h".
 * Returns 0 with the rate per second in *per_s, or -1 if invalid.
 */
int vcfg_parse_rate(const char *s, double *per_s);

/*
 * Settings that are allowed but unwise (docs/tuning.md): a phi threshold so
 * low that a regular stream is suspected more than once an hour, a dead
 * verdict after less than two intervals of silence, a pause_tolerance
 * shorter than the interval, settings that miss monitor.goals, ... Calls
 * emit once per warning, with "FILE:LINE: " first when the setting came from
 * the file. Returns the number of warnings.
 */
int vcfg_warnings(const struct vcfg *c, void (*emit)(void *arg, const char *msg), void *arg);

/*
 * The longest duration accepted: a quarter of the range of vigil_time_t
 * (about 73 years), so that sums of a few durations can never overflow.
 */
#define VCFG_DURATION_MAX (INT64_MAX / 4)

/*
 * As vcfg_load, but reads the configuration from text (len bytes, need not
 * be NUL terminated); name stands for the file in messages and relative
 * paths are taken relative to its directory.
 */
int vcfg_load_string(struct vcfg *c, const char *name, const char *text, size_t len, char *err,
                     size_t cap);

/*
 * The default agent id: the host name, if it is a valid node id. Returns 0
 * with the id in buf, or -1 (no host name, or not a valid id: the agent
 * then needs agent.id or a flag).
 */
int vcfg_host_id(char *buf, size_t cap);

#endif
