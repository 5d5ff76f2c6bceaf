/*
 * The hook runner: programs the monitor runs when something happens.
 *
 * A hook is a program and its arguments from the configuration. For each
 * event it wants, it is started with the event in environment variables
 * (VIGIL_NODE, VIGIL_NEW_STATE, ...) and as one line of JSON on its standard
 * input. No shell is involved and no event data is ever spliced into a
 * command line: a node id or a reason reaches the hook as data, never as
 * code. The hook's standard output and error are the monitor's own, so what
 * a hook prints lands in the monitor's output or log.
 *
 * Order. keepalived's users learned that notify scripts run out of order
 * confuse whatever consumes them ("dead" handled after the "alive" that
 * followed it). So events are delivered in order per node: every node with
 * work has a FIFO of events, and its next event starts only when the hooks
 * of the previous one have finished. The hooks of one event run one after
 * another, in the order of the configuration. Events of different nodes run
 * concurrently, so one slow hook delays only its own node. The FIFOs live in
 * a hash table keyed by node id (SipHash with a random key, since node ids
 * can come from the network) and exist only while they hold work. Pause
 * events (the monitor itself stalled) have their own FIFO, under the id "",
 * which no node can have.
 *
 * Nothing here waits for a child. Submitting queues and maybe starts a
 * process (posix_spawnp, which returns once the program is executing or has
 * failed to start); polling reaps with waitpid(pid, WNOHANG) for each child
 * it started (never waitpid(-1): the program may have other children) and
 * escalates timeouts. The JSON is small (under 4 KB) and the pipe holds
 * 64 KB, so it is written whole into a non-blocking pipe right after the
 * start and the pipe is closed: a hook that never reads its input cannot
 * stall detection, and one that exits early gives EPIPE, not SIGPIPE.
 *
 * Timeouts. Each hook starts in a process group of its own, so that SIGTERM
 * at start + timeout, and SIGKILL two seconds after that, reach whatever the
 * hook started too (kill(-pgid, sig)), as keepalived and haproxy do with
 * their checks and notify scripts.
 *
 * A hook that fails (non-zero exit, killed, or timed out) is counted and
 * logged with its status and duration, and run again for the same event
 * after retry_delay, doubling, up to `retries` times (VIGIL_ATTEMPT says
 * which run it is). The node's FIFO waits meanwhile, so a retry never
 * delivers an event after a newer one; a hook may see an event twice, so
 * hooks must be idempotent. A hook that cannot be started at all (no such
 * program) is logged and not retried: that does not fix itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "hooks.h"

extern char **environ;

/* SIGKILL follows SIGTERM after this long: the delay hooks.h promises. */
#define HOOK_KILL_DELAY (2 * VIGIL_NSEC_PER_SEC)
/*
 * Most hooks running at once. A mass failure (a rack losing power) makes
 * an event for every node in it at the same moment; without a bound the
 * monitor would fork hundreds of processes together and could hit the
 * user's process limit, failing to start exactly the hooks that matter.
 * 64 keeps a burst short while staying far below common limits. Nodes past
 * the bound wait in line, in the order they became ready.
 */
#define HOOK_MAX_RUNNING 64
/* hook_runner_free waits in steps of 10 ms, 200 of them: the 2 s of hooks.h. */
#define HOOK_FREE_STEP_NS (10 * VIGIL_NSEC_PER_MSEC)
#define HOOK_FREE_STEPS   200
/* Hash buckets to begin with; doubled when there are more FIFOs than buckets. */
#define HOOK_BUCKETS_START 16
/* Log lines are at most this long (a long hook path is cut, never overflows). */
#define HOOK_LOG_MAX 1024
/* Environment variables the runner sets (hook_env_names below). */
#define HOOK_ENV_COUNT 15

/* One event waiting in (or at the head of) a node's FIFO. */
struct hook_job {
    struct hook_job *next;
    struct evrec rec;
};

/* A node's FIFO of events, and the hook it is running. */
struct hook_queue {
    char node[VIGIL_ID_MAX + 1]; /* "" for pause events */
    uint64_t hash;
    struct hook_queue *chain;       /* next in the hash bucket */
    struct hook_queue *prev, *next; /* list of all FIFOs, for poll */
    struct hook_queue *line_next;   /* next waiting for a free slot */
    bool in_line;                   /* waiting for a free slot */
    struct hook_job *head, *tail;   /* head: the event being handled */
    size_t hook;                    /* the hook of head running, or the next to consider */
    pid_t pid;                      /* the running hook (and its process group), or 0 */
    vigil_time_t started;           /* when it started */
    vigil_time_t term_at;           /* when it gets SIGTERM */
    vigil_time_t kill_at;           /* when it gets SIGKILL (set when TERM is sent) */
    int signalled;                  /* last signal sent to it: 0, SIGTERM or SIGKILL */
    size_t run_idx;                 /* its slot in the runner's run[] while pid != 0 */
    uint32_t attempt;               /* retries of the current run so far */
    vigil_time_t retry_at;          /* when a failed run goes again, while in_retry */
    bool in_retry;                  /* waiting to run a failed hook again */
    struct hook_queue *retry_next;  /* next FIFO waiting for a retry */
};

/* A hook, copied from the configuration so that the runner owns it. */
struct hook {
    char **argv;
    vigil_time_t timeout;
    uint32_t on_states;
    uint32_t retries;
    vigil_time_t retry_delay;
};

struct hook_runner {
    struct hook *hooks;
    size_t n_hooks;
    hook_log_fn log;
    void *log_arg;
    struct hook_queue **buckets;
    size_t n_buckets; /* a power of two */
    size_t n_queues;
    struct hook_queue *all;                   /* every FIFO */
    struct hook_queue *line_head, *line_tail; /* FIFOs waiting for a free slot */
    size_t running;                           /* hooks running */
    /*
     * The FIFOs whose hook is running: what poll and the deadline look at,
     * so that a mass failure with thousands of nodes queued costs nothing
     * per loop beyond the (at most HOOK_MAX_RUNNING) running hooks.
     */
    struct hook_queue *run[HOOK_MAX_RUNNING];
    struct hook_queue *retry_head; /* FIFOs waiting to run a failed hook again */
    vigil_time_t retry_min;        /* earliest retry_at among them (NEVER: none) */
    size_t pending;                /* hook runs queued or running */
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    struct hook_stats stats;
};

static const char *const hook_env_names[HOOK_ENV_COUNT] = {
    "VIGIL_EVENT_SEQ", "VIGIL_EVENT_TYPE", "VIGIL_NODE",    "VIGIL_OLD_STATE",
    "VIGIL_NEW_STATE", "VIGIL_REASON",     "VIGIL_TIME",    "VIGIL_SINCE_LAST",
    "VIGIL_LEVEL",     "VIGIL_THRESHOLD",  "VIGIL_MEAN",    "VIGIL_STD_DEV",
    "VIGIL_ADDR",      "VIGIL_GENERATION", "VIGIL_ATTEMPT",
};

static void hook_logf(const struct hook_runner *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void hook_logf(const struct hook_runner *r, const char *fmt, ...)
{
    if (!r->log)
        return;
    char line[HOOK_LOG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    r->log(r->log_arg, line);
}

/* Nanoseconds as seconds with 3 decimals, rounded to the millisecond. */
static void fmt_secs(vigil_time_t ns, char *buf, size_t cap)
{
    const char *sign = "";
    uint64_t u = (uint64_t)ns;
    if (ns < 0) {
        sign = "-";
        u = (uint64_t)0 - (uint64_t)ns;
    }
    /* Half a millisecond, for rounding to the nearest millisecond. */
    uint64_t ms = (u + 500000) / 1000000;
    snprintf(buf, cap, "%s%" PRIu64 ".%03" PRIu64, sign, ms / 1000, ms % 1000);
}

static const char *event_node(const struct evrec *rec)
{
    return rec->ev.type == VIGIL_EVENT_PAUSE ? "" : rec->ev.node;
}

/* The node as log lines show it; pause events are the monitor's own. */
static const char *event_label(const struct evrec *rec)
{
    return rec->ev.type == VIGIL_EVENT_PAUSE ? "monitor pause" : rec->ev.node;
}

static bool hook_wants(const struct hook *h, const struct vigil_event *ev)
{
    if (h->on_states == 0)
        return true;
    if (ev->type == VIGIL_EVENT_PAUSE)
        return false; /* a pause has no new state: only hooks for every event get it */
    unsigned s = (unsigned)ev->new_state;
    /* on_states has one bit per state; a state beyond its 32 bits matches no filter. */
    return s < 32 && (h->on_states & (UINT32_C(1) << s)) != 0;
}

/* ---- the table of FIFOs ---- */

static uint64_t node_hash(const struct hook_runner *r, const char *node)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)node, strlen(node), r->hash_key);
    uint64_t h;
    memcpy(&h, out, sizeof(h));
    return h;
}

static struct hook_queue *queue_find(const struct hook_runner *r, const char *node, uint64_t h)
{
    for (struct hook_queue *q = r->buckets[h & (r->n_buckets - 1)]; q; q = q->chain)
        if (q->hash == h && strcmp(q->node, node) == 0)
            return q;
    return NULL;
}

/* Doubles the buckets; on failure keeps the old ones (longer chains, still correct). */
static void table_grow(struct hook_runner *r)
{
    size_t n = r->n_buckets * 2;
    struct hook_queue **b = calloc(n, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < r->n_buckets; i++) {
        struct hook_queue *q = r->buckets[i];
        while (q) {
            struct hook_queue *nx = q->chain;
            q->chain = b[q->hash & (n - 1)];
            b[q->hash & (n - 1)] = q;
            q = nx;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->n_buckets = n;
}

/* The FIFO of node, created if there is none; NULL when out of memory. */
static struct hook_queue *queue_get(struct hook_runner *r, const char *node)
{
    uint64_t h = node_hash(r, node);
    struct hook_queue *q = queue_find(r, node, h);
    if (q)
        return q;
    q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    snprintf(q->node, sizeof(q->node), "%s", node);
    q->hash = h;
    if (r->n_queues >= r->n_buckets)
        table_grow(r);
    size_t b = h & (r->n_buckets - 1);
    q->chain = r->buckets[b];
    r->buckets[b] = q;
    q->next = r->all;
    if (r->all)
        r->all->prev = q;
    r->all = q;
    r->n_queues++;
    return q;
}

/* Unlinks and frees an idle FIFO (no child, not in line). */
static void queue_remove(struct hook_runner *r, struct hook_queue *q)
{
    struct hook_queue **p = &r->buckets[q->hash & (r->n_buckets - 1)];
    while (*p && *p != q)
        p = &(*p)->chain;
    if (*p)
        *p = q->chain;
    if (q->prev)
        q->prev->next = q->next;
    else
        r->all = q->next;
    if (q->next)
        q->next->prev = q->prev;
    r->n_queues--;
    while (q->head) {
        struct hook_job *j = q->head;
        q->head = j->next;
        free(j);
    }
    free(q);
}

static void line_append(struct hook_runner *r, struct hook_queue *q)
{
    q->in_line = true;
    q->line_next = NULL;
    if (r->line_tail)
        r->line_tail->line_next = q;
    else
        r->line_head = q;
    r->line_tail = q;
}

static struct hook_queue *line_pop(struct hook_runner *r)
{
    struct hook_queue *q = r->line_head;
    if (!q)
        return NULL;
    r->line_head = q->line_next;
    if (!r->line_head)
        r->line_tail = NULL;
    q->in_line = false;
    q->line_next = NULL;
    return q;
}

/* ---- starting a hook ---- */

/* Frees an environment built by build_env: only the runner's own strings. */
static void free_env(char **envp, size_t first_own)
{
    if (!envp)
        return;
    for (size_t i = first_own; envp[i]; i++)
        free(envp[i]);
    free(envp);
}

/* Sets *slot to a new "NAME=value" string; false (and NULL) when out of memory. */
static bool env_add(char **slot, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool env_add(char **slot, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    *slot = n < 0 ? NULL : s;
    return n >= 0;
}

static bool env_overridden(const char *entry)
{
    for (size_t i = 0; i < HOOK_ENV_COUNT; i++) {
        size_t n = strlen(hook_env_names[i]);
        if (strncmp(entry, hook_env_names[i], n) == 0 && entry[n] == '=')
            return true;
    }
    return false;
}

/*
 * The hook's environment: the monitor's own, less any VIGIL_* variable the
 * runner sets, plus the event. The strings of the monitor's environment are
 * borrowed; the event's are allocated, from index *first_own on.
 */
static char **build_env(const struct evrec *rec, uint32_t attempt, size_t *first_own)
{
    const struct vigil_event *ev = &rec->ev;
    size_t n_env = 0;
    for (char **e = environ; e && *e; e++)
        n_env++;
    char **envp = calloc(n_env + HOOK_ENV_COUNT + 1, sizeof(*envp));
    if (!envp)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (!env_overridden(environ[i]))
            envp[k++] = environ[i];
    *first_own = k;

    char when[64], since[32] = "", mean[32], sd[32];
    char addr[64] = ""; /* vigil_addr_format asks for at least 56 bytes */
    vigil_format_wall(rec->wall_us, when, sizeof(when));
    if (ev->since_last >= 0)
        fmt_secs(ev->since_last, since, sizeof(since));
    fmt_secs(ev->mean, mean, sizeof(mean));
    fmt_secs(ev->std_dev, sd, sizeof(sd));
    if (ev->addr.family != 0)
        vigil_addr_format(&ev->addr, addr, sizeof(addr));

    bool ok = env_add(&envp[k++], "VIGIL_EVENT_SEQ=%" PRIu64, ev->seq) &&
              env_add(&envp[k++], "VIGIL_EVENT_TYPE=%s",
                      ev->type == VIGIL_EVENT_PAUSE ? "pause" : "state") &&
              env_add(&envp[k++], "VIGIL_NODE=%s", event_node(rec)) &&
              env_add(&envp[k++], "VIGIL_OLD_STATE=%s", vigil_state_name(ev->old_state)) &&
              env_add(&envp[k++], "VIGIL_NEW_STATE=%s", vigil_state_name(ev->new_state)) &&
              env_add(&envp[k++], "VIGIL_REASON=%s", ev->reason ? ev->reason : "") &&
              env_add(&envp[k++], "VIGIL_TIME=%s", when) &&
              env_add(&envp[k++], "VIGIL_SINCE_LAST=%s", since) &&
              env_add(&envp[k++], "VIGIL_LEVEL=%.3f", ev->level) &&
              env_add(&envp[k++], "VIGIL_THRESHOLD=%.3f", ev->threshold) &&
              env_add(&envp[k++], "VIGIL_MEAN=%s", mean) &&
              env_add(&envp[k++], "VIGIL_STD_DEV=%s", sd) &&
              env_add(&envp[k++], "VIGIL_ADDR=%s", addr) &&
              env_add(&envp[k++], "VIGIL_GENERATION=%" PRIu64, ev->generation) &&
              env_add(&envp[k++], "VIGIL_ATTEMPT=%" PRIu32, attempt + 1);
    if (!ok) {
        for (size_t i = *first_own; i < k; i++)
            free(envp[i]);
        free(envp);
        return NULL;
    }
    envp[k] = NULL;
    return envp;
}

/* The event as one line of JSON, newline included; NULL when out of memory. */
static char *event_json_line(const struct evrec *rec, size_t *len)
{
    json_t *o = evrec_to_json(rec);
    if (!o)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *line = malloc(n + 2);
    if (line) {
        memcpy(line, s, n);
        line[n] = '\n';
        line[n + 1] = '\0';
        *len = n + 1;
    }
    free(s);
    return line;
}

/* Writes the whole buffer into a non-blocking pipe; returns 0 or an errno value. */
static int write_all(int fd, const char *p, size_t n)
{
    /* Each write moves at least a byte or fails, so n + 1 rounds always suffice. */
    for (size_t tries = 0; n > 0 && tries <= n; tries++) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return n == 0 ? 0 : EAGAIN;
}

/*
 * Starts hook q->hook for q's head event. Returns 0 with q->pid set, or a
 * negative error (logged and counted as a spawn error) when it could not.
 */
static int spawn_hook(struct hook_runner *r, struct hook_queue *q, vigil_time_t now)
{
    const struct hook *h = &r->hooks[q->hook];
    const struct evrec *rec = &q->head->rec;
    size_t json_len = 0, first_own = 0;
    char *json = event_json_line(rec, &json_len);
    char **envp = build_env(rec, q->attempt, &first_own);
    int err = 0;
    int fds[2] = {-1, -1};
    bool fa_ok = false, at_ok = false;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    pid_t pid = 0;

    if (!json || !envp) {
        err = ENOMEM;
        goto out;
    }
    /* Close-on-exec: no other child of the monitor may hold this pipe open. */
    if (pipe2(fds, O_CLOEXEC) < 0 || fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0) {
        err = errno;
        goto out;
    }
    if ((err = posix_spawn_file_actions_init(&fa)) != 0)
        goto out;
    fa_ok = true;
    if ((err = posix_spawn_file_actions_adddup2(&fa, fds[0], STDIN_FILENO)) != 0)
        goto out;
    if ((err = posix_spawnattr_init(&at)) != 0)
        goto out;
    at_ok = true;
    /*
     * A process group of its own (so that a timeout reaches the hook's
     * children), no blocked signals and every signal at its default: the
     * monitor ignores SIGPIPE and may block the signals it reads through a
     * signalfd, and a hook must not inherit either (a hook with SIGTERM
     * blocked could not be stopped politely).
     */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    if ((err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                 POSIX_SPAWN_SETSIGDEF)) != 0 ||
        (err = posix_spawnattr_setpgroup(&at, 0)) != 0 ||
        (err = posix_spawnattr_setsigmask(&at, &none)) != 0 ||
        (err = posix_spawnattr_setsigdefault(&at, &all)) != 0)
        goto out;
    err = posix_spawnp(&pid, h->argv[0], &fa, &at, h->argv, envp);
    if (err != 0)
        goto out;

    close(fds[0]);
    fds[0] = -1;
    int werr = write_all(fds[1], json, json_len);
    /* EPIPE: the hook exited or closed its input without reading; that is its choice. */
    if (werr != 0 && werr != EPIPE)
        hook_logf(r, "hook %s for event %" PRIu64 " (%s): event JSON not fully written: %s",
                  h->argv[0], rec->ev.seq, event_label(rec), strerror(werr));

    q->pid = pid;
    q->started = now;
    q->term_at = now + (h->timeout > 0 ? h->timeout : HOOK_TIMEOUT_DEFAULT);
    q->kill_at = VIGIL_TIME_NEVER;
    q->signalled = 0;
    q->run_idx = r->running;
    r->run[r->running++] = q;
    r->stats.started++;
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (at_ok)
        posix_spawnattr_destroy(&at);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    free(json);
    free_env(envp, first_own);
    if (err != 0) {
        r->stats.spawn_errors++;
        hook_logf(r, "hook %s for event %" PRIu64 " (%s): cannot start: %s", h->argv[0],
                  rec->ev.seq, event_label(rec), strerror(err));
        return -VIGIL_ESYS;
    }
    return 0;
}

/*
 * Moves q to the next hook run it owes: skips the hooks that do not want
 * its head event and drops events with no hook left. False when q has no
 * work left.
 */
static bool queue_next_run(struct hook_runner *r, struct hook_queue *q)
{
    while (q->head) {
        while (q->hook < r->n_hooks && !hook_wants(&r->hooks[q->hook], &q->head->rec.ev))
            q->hook++;
        if (q->hook < r->n_hooks)
            return true;
        struct hook_job *j = q->head;
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        free(j);
        q->hook = 0;
    }
    return false;
}

/*
 * Starts q's next hook run if a slot is free (and, unless q comes from the
 * line, nobody is waiting for one); puts q in line otherwise; frees q when
 * it has no work left. q must have no child and not be in line.
 */
static void queue_kick(struct hook_runner *r, struct hook_queue *q, vigil_time_t now,
                       bool from_line)
{
    /* Each round either returns or moves past one hook run: bounded by the runs queued. */
    while (queue_next_run(r, q)) {
        if (r->running >= HOOK_MAX_RUNNING || (!from_line && r->line_head)) {
            line_append(r, q);
            return;
        }
        if (spawn_hook(r, q, now) == 0)
            return;
        /* Could not start: counted and logged; the event goes on to its next hook. */
        r->pending--;
        q->hook++;
        q->attempt = 0;
    }
    queue_remove(r, q);
}

/* Starts FIFOs waiting in line while slots are free. */
static void line_drain(struct hook_runner *r, vigil_time_t now)
{
    while (r->running < HOOK_MAX_RUNNING && r->line_head)
        queue_kick(r, line_pop(r), now, true);
}

/* ---- finishing a hook ---- */

static void signal_group(pid_t pid, int sig)
{
    /* The group is the hook's; if the hook left it, signal the hook itself. */
    if (kill(-pid, sig) < 0 && errno == ESRCH)
        kill(pid, sig);
}

/* Records the end of q's running hook (status known or lost) and logs it. */
static void hook_finished(struct hook_runner *r, struct hook_queue *q, int status, bool known,
                          vigil_time_t now)
{
    const struct hook *h = &r->hooks[q->hook];
    const struct evrec *rec = &q->head->rec;
    char dur[32], what[96];
    fmt_secs(now - q->started, dur, sizeof(dur));
    const char *after = "";
    if (q->signalled == SIGTERM)
        after = " after timeout (SIGTERM)";
    else if (q->signalled == SIGKILL)
        after = " after timeout (SIGKILL)";

    if (!known) {
        r->stats.failed++;
        snprintf(what, sizeof(what), "exit status lost (reaped elsewhere)");
    } else if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        snprintf(what, sizeof(what), "exit %d", code);
        if (q->signalled)
            r->stats.timed_out++;
        else if (code == 0)
            r->stats.succeeded++;
        else
            r->stats.failed++;
    } else {
        int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        snprintf(what, sizeof(what), "killed by signal %d (%s)", sig, strsignal(sig));
        if (q->signalled)
            r->stats.timed_out++;
        else
            r->stats.failed++;
    }
    bool ok = known && WIFEXITED(status) && WEXITSTATUS(status) == 0 && !q->signalled;
    char retry[96] = "";
    if (!ok && q->attempt < h->retries) {
        /* The delay doubles with each retry: retry_delay, 2x, 4x, ... (saturating). */
        vigil_time_t delay = h->retry_delay;
        for (uint32_t i = 0; i < q->attempt && delay < INT64_MAX / 2; i++)
            delay *= 2;
        if (now > INT64_MAX - delay)
            delay = INT64_MAX - now;
        q->attempt++;
        char d[32];
        fmt_secs(delay, d, sizeof(d));
        snprintf(retry, sizeof(retry), "; retry %" PRIu32 " of %" PRIu32 " in %ss", q->attempt,
                 h->retries, d);
        q->retry_at = now + delay;
        q->in_retry = true;
        q->retry_next = r->retry_head;
        r->retry_head = q;
        if (q->retry_at < r->retry_min)
            r->retry_min = q->retry_at;
    } else if (!ok && h->retries > 0) {
        r->stats.gave_up++;
        snprintf(retry, sizeof(retry), "; giving up after %" PRIu32 " runs", q->attempt + 1);
    }
    hook_logf(r, "hook %s for event %" PRIu64 " (%s): %s in %ss%s%s", h->argv[0], rec->ev.seq,
              event_label(rec), what, dur, after, retry);
    q->pid = 0;
    q->signalled = 0;
    /* Out of run[]: the last one takes its slot. */
    struct hook_queue *last = r->run[--r->running];
    r->run[q->run_idx] = last;
    last->run_idx = q->run_idx;
    if (q->in_retry)
        return; /* the run is still owed: pending stays, the hook stays */
    q->attempt = 0;
    q->hook++;
    r->pending--;
}

/* Starts the retries that are due; the rest wait (bounded by the FIFOs in retry). */
static void retries_due(struct hook_runner *r, vigil_time_t now)
{
    if (now < r->retry_min)
        return;
    struct hook_queue **pp = &r->retry_head;
    struct hook_queue *due = NULL;
    r->retry_min = VIGIL_TIME_NEVER;
    while (*pp) {
        struct hook_queue *q = *pp;
        if (q->retry_at <= now) {
            *pp = q->retry_next;
            q->retry_next = due;
            due = q;
        } else {
            if (q->retry_at < r->retry_min)
                r->retry_min = q->retry_at;
            pp = &q->retry_next;
        }
    }
    while (due) {
        struct hook_queue *q = due;
        due = q->retry_next;
        q->in_retry = false;
        q->retry_next = NULL;
        r->stats.retried++;
        queue_kick(r, q, now, false);
    }
}

/* Sends SIGTERM or SIGKILL to q's hook when they are due. */
static void hook_escalate(struct hook_runner *r, struct hook_queue *q, vigil_time_t now)
{
    const struct hook *h = &r->hooks[q->hook];
    const struct evrec *rec = &q->head->rec;
    char dur[32];
    if (q->signalled == 0 && now >= q->term_at) {
        fmt_secs(now - q->started, dur, sizeof(dur));
        hook_logf(r, "hook %s for event %" PRIu64 " (%s): timed out after %ss, sending SIGTERM",
                  h->argv[0], rec->ev.seq, event_label(rec), dur);
        signal_group(q->pid, SIGTERM);
        q->signalled = SIGTERM;
        /* Two seconds from the TERM actually sent, even when poll ran late. */
        q->kill_at = now + HOOK_KILL_DELAY;
    } else if (q->signalled == SIGTERM && now >= q->kill_at) {
        fmt_secs(now - q->started, dur, sizeof(dur));
        hook_logf(r,
                  "hook %s for event %" PRIu64 " (%s): still running after SIGTERM (%ss), "
                  "sending SIGKILL",
                  h->argv[0], rec->ev.seq, event_label(rec), dur);
        signal_group(q->pid, SIGKILL);
        q->signalled = SIGKILL;
    }
}

/* ---- the interface ---- */

static void hooks_free(struct hook *hooks, size_t n)
{
    if (!hooks)
        return;
    for (size_t i = 0; i < n; i++) {
        if (!hooks[i].argv)
            continue;
        for (size_t j = 0; hooks[i].argv[j]; j++)
            free(hooks[i].argv[j]);
        free(hooks[i].argv);
    }
    free(hooks);
}

int hook_runner_new(const struct vcfg_hook *hooks, size_t n, hook_log_fn log, void *log_arg,
                    struct hook_runner **out)
{
    if (!out || (n > 0 && !hooks))
        return -VIGIL_EINVAL;
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (!hooks[i].argv[0] || !hooks[i].argv[0][0])
            return -VIGIL_EINVAL;
    if (sodium_init() < 0)
        return -VIGIL_ESYS;

    struct hook_runner *r = calloc(1, sizeof(*r));
    if (!r)
        return -VIGIL_ENOMEM;
    r->retry_min = VIGIL_TIME_NEVER;
    r->log = log;
    r->log_arg = log_arg;
    r->n_buckets = HOOK_BUCKETS_START;
    r->buckets = calloc(r->n_buckets, sizeof(*r->buckets));
    r->hooks = calloc(n > 0 ? n : 1, sizeof(*r->hooks));
    if (!r->buckets || !r->hooks)
        goto nomem;
    r->n_hooks = n;
    for (size_t i = 0; i < n; i++) {
        size_t argc = 0;
        while (argc < VCFG_MAX_ARGV && hooks[i].argv[argc])
            argc++;
        r->hooks[i].argv = calloc(argc + 1, sizeof(char *));
        if (!r->hooks[i].argv)
            goto nomem;
        for (size_t j = 0; j < argc; j++)
            if (!(r->hooks[i].argv[j] = strdup(hooks[i].argv[j])))
                goto nomem;
        r->hooks[i].timeout = hooks[i].timeout;
        r->hooks[i].on_states = hooks[i].on_states;
        r->hooks[i].retries = hooks[i].retries;
        r->hooks[i].retry_delay =
            hooks[i].retry_delay > 0 ? hooks[i].retry_delay : VIGIL_NSEC_PER_SEC;
    }
    randombytes_buf(r->hash_key, sizeof(r->hash_key));

    /*
     * A hook that exits without reading its input makes our write fail
     * with EPIPE; with SIGPIPE at its default that would kill the monitor.
     * The program ignores SIGPIPE itself, but the runner does not count on
     * it: a handler or an ignore already set is left alone.
     */
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
        old.sa_handler == SIG_DFL) {
        struct sigaction ign;
        memset(&ign, 0, sizeof(ign));
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        sigaction(SIGPIPE, &ign, NULL);
    }
    *out = r;
    return 0;
nomem:
    hooks_free(r->hooks, n);
    free(r->buckets);
    free(r);
    return -VIGIL_ENOMEM;
}

int hook_runner_submit(struct hook_runner *r, const struct evrec *ev, vigil_time_t now)
{
    if (!r || !ev)
        return -VIGIL_EINVAL;
    size_t want = 0;
    for (size_t i = 0; i < r->n_hooks; i++)
        want += hook_wants(&r->hooks[i], &ev->ev);
    if (want == 0)
        return 0;

    struct hook_job *j = malloc(sizeof(*j));
    if (!j)
        return -VIGIL_ENOMEM;
    j->next = NULL;
    j->rec = *ev;
    j->rec.ev.node[VIGIL_ID_MAX] = '\0';
    struct hook_queue *q = queue_get(r, event_node(&j->rec));
    if (!q) {
        free(j);
        return -VIGIL_ENOMEM;
    }
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    /*
     * stats.queued counts hook runs accepted, like the other counters
     * (never decreasing): queued - started - spawn_errors is how many wait
     * right now, and hook_runner_pending() adds those running.
     */
    r->pending += want;
    r->stats.queued += want;
    if (q->pid == 0 && !q->in_line && !q->in_retry)
        queue_kick(r, q, now, false);
    return 0;
}

void hook_runner_poll(struct hook_runner *r, vigil_time_t now)
{
    if (!r)
        return;
    /*
     * One pass over the hooks running now (a copy: finishing one changes
     * run[], and queue_kick may start another or free the FIFO at hand).
     */
    struct hook_queue *now_running[HOOK_MAX_RUNNING];
    size_t n = r->running;
    memcpy(now_running, r->run, n * sizeof(now_running[0]));
    for (size_t i = 0; i < n; i++) {
        struct hook_queue *q = now_running[i];
        if (q->pid == 0)
            continue;
        int status = 0;
        pid_t w = waitpid(q->pid, &status, WNOHANG);
        if (w == 0 || (w < 0 && errno == EINTR)) {
            hook_escalate(r, q, now);
            continue;
        }
        /* w == pid: it ended. w < 0 otherwise (ECHILD): someone else reaped it. */
        hook_finished(r, q, status, w == q->pid, now);
        if (!q->in_retry)
            queue_kick(r, q, now, false);
    }
    retries_due(r, now);
    line_drain(r, now);
}

vigil_time_t hook_runner_next_deadline(const struct hook_runner *r)
{
    vigil_time_t d = VIGIL_TIME_NEVER;
    if (!r)
        return d;
    d = r->retry_min;
    /*
     * Only timeouts are scheduled: a hook that ends is noticed through
     * SIGCHLD, which the program watches and which makes it poll.
     */
    for (size_t i = 0; i < r->running; i++) {
        const struct hook_queue *q = r->run[i];
        if (q->signalled == 0 && q->term_at < d)
            d = q->term_at;
        else if (q->signalled == SIGTERM && q->kill_at < d)
            d = q->kill_at;
    }
    return d;
}

size_t hook_runner_pending(const struct hook_runner *r)
{
    return r ? r->pending : 0;
}

const struct hook_stats *hook_runner_stats(const struct hook_runner *r)
{
    return r ? &r->stats : NULL;
}

void hook_runner_free(struct hook_runner *r)
{
    if (!r)
        return;
    size_t waiting = r->pending - r->running;
    if (waiting > 0)
        hook_logf(r, "hook runner stopping: %zu hook runs not started", waiting);
    for (struct hook_queue *q = r->all; q; q = q->next)
        if (q->pid) {
            hook_logf(r, "hook %s for event %" PRIu64 " (%s): stopping it (SIGTERM)",
                      r->hooks[q->hook].argv[0], q->head->rec.ev.seq, event_label(&q->head->rec));
            signal_group(q->pid, SIGTERM);
        }
    /* Wait up to 2 s for them to go, in short steps. */
    const struct timespec step = {0, HOOK_FREE_STEP_NS};
    for (int i = 0; i < HOOK_FREE_STEPS && r->running > 0; i++) {
        for (struct hook_queue *q = r->all; q; q = q->next) {
            int status;
            if (q->pid && waitpid(q->pid, &status, WNOHANG) != 0) {
                q->pid = 0;
                r->running--;
            }
        }
        if (r->running > 0)
            nanosleep(&step, NULL);
    }
    for (struct hook_queue *q = r->all; q; q = q->next) {
        if (!q->pid)
            continue;
        hook_logf(r, "hook %s for event %" PRIu64 " (%s): still running, sending SIGKILL",
                  r->hooks[q->hook].argv[0], q->head->rec.ev.seq, event_label(&q->head->rec));
        signal_group(q->pid, SIGKILL);
        int status;
        /* SIGKILL cannot be caught: this returns once the kernel has ended it. */
        for (int tries = 0; tries < 100; tries++)
            if (waitpid(q->pid, &status, 0) >= 0 || errno != EINTR)
                break;
        q->pid = 0;
    }
    while (r->all) {
        struct hook_queue *q = r->all;
        q->in_line = false;
        queue_remove(r, q);
    }
    hooks_free(r->hooks, r->n_hooks);
    free(r->buckets);
    free(r);
}
