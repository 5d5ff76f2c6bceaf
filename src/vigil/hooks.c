/*
 * The hook runner: programs the monitor runs when something happens.
 *
 * A hook is a program and its arguments from the configuration. For each
 * event it wants, it is started with the event in environment variables
 * (VIGIL_NODE, VIGIL_NEW_STATE, ...) and as one line of JSON on its standard
 * input, both with the fields as evlog.c renders them for the log and the
 * API. No shell is involved and no event data is ever spliced into a
 * command line: a node id or a reason reaches the hook as data, never as
 * code. The hook's standard output and error are the monitor's own, so what
 * a hook prints lands in the monitor's output or log.
 *
 * Order. keepalived's users learned that notify scripts run out of order
 * confuse whatever consumes them ("dead" handled after the "alive" that
 * followed it). So events are delivered in order per node: every node with
 * work has a FIFO of events, and its next event starts only when all the
 * hooks of the previous one have finished, retries included. The hooks of
 * one event start together (in the order of the configuration, as slots
 * allow), each with its own timeout and retries: a hook that hangs until
 * its timeout does not hold back the pager beside it. Events of different
 * nodes run concurrently, so one slow hook delays only its own node. The
 * FIFOs are
 * found through the id table of core/idtable.h, the monitor's own (SipHash
 * with a random key, since node ids can come from the network), as indices
 * into a dense array of them; they exist only while they hold work. Pause
 * events (the monitor itself stalled) have their own FIFO, under the id "",
 * which no node can have.
 *
 * The world. The runner makes no system call of its own: it starts
 * children through a struct vio_procs and keeps time with timers on a
 * struct vio_loop (src/io/vio.h). In the program these are real processes
 * (each started in a process group of its own, the JSON written whole into
 * a non-blocking pipe, exits reaped per child on SIGCHLD: see
 * src/io/procs_real.c) and the epoll loop; in tests and the simulator they
 * are scripted programs on a virtual clock, so that every timing claim
 * below is an exact assertion. Nothing here waits for a child: submitting
 * queues and maybe starts a process, and the end of a child arrives later
 * through its exit callback, from the loop.
 *
 * Timeouts. Each run of a hook for a FIFO's head event (struct hook_run,
 * one per hook in every FIFO) has one timer. While the hook runs, the
 * timer is the timeout: SIGTERM at start + timeout, and SIGKILL two
 * seconds after the TERM, both to the hook's process group, so that they
 * reach whatever the hook started too, as keepalived and haproxy do with
 * their checks and notify scripts.
 *
 * A hook that fails (non-zero exit, killed, or timed out) is counted and
 * logged with its status and duration, and run again for the same event
 * after retry_delay, doubling, up to `retries` times (VIGIL_ATTEMPT says
 * which run it is); the run's timer then says when. The node's FIFO waits
 * meanwhile, so a retry never delivers an event after a newer one; a hook
 * may see an event twice, so hooks must be idempotent. A hook that cannot
 * be started at all (no such program) is logged and not retried: that does
 * not fix itself.
 *
 * Bounds and coalescing. A hook that hangs holds its node's FIFO for its
 * whole timeout (and retries), and a node that flaps meanwhile, or an
 * attacker who makes it flap, would grow the FIFO without end. So the
 * events waiting behind a FIFO's head are bounded, per node (per_node, 16
 * by default) and in all (total, 65,536), and at a bound the oldest
 * waiting events are coalesced so that the latest state wins. The rule:
 *
 *  - The head of a FIFO (the event being handled, or waiting for a slot or
 *    a retry) is never touched, and nothing is ever reordered.
 *  - Coalescing merges the two oldest waiting events of one FIFO, A then
 *    B, into one: B with its time, evidence, reason and sequence number,
 *    but with A's old state, so that it reads "A.old -> B.new". Told
 *    "alive -> suspect" and "suspect -> dead", a hook gets "alive -> dead".
 *  - When the merged event would go back where A started (A.old ==
 *    B.new: "alive -> dead" then "dead -> alive"), it is a round trip and
 *    both are dropped: the next event starts from the state A started
 *    from, so a hook is never told "alive" after a "dead" it was not told,
 *    and never "X -> X".
 *  - Hence a node's waiting events always chain (each starts where the one
 *    before it ended), and the newest waiting event's new state is the
 *    node's latest state; or, when a round trip was dropped last, the
 *    latest state is the one the hook is told already. Either way a
 *    node's hooks end with its latest state.
 *  - Pause events (the monitor's own, in FIFO "") have no states: of two,
 *    the older is dropped and the newer kept.
 *  - VIGIL_COALESCED (and "coalesced" in the JSON) tells a hook how many
 *    earlier events an event stands for: 0 unless something was merged.
 *
 * At the per-node bound the node's own FIFO is coalesced. At the total
 * bound, the submitting node's FIFO if it has two events waiting, or else
 * the FIFO that has had two or more waiting the longest (a list kept in
 * that order, so finding it costs nothing). A node always keeps one waiting
 * event, its latest state: when no FIFO has two, the total may exceed its
 * bound, by at most one event per node, and never beyond the node table.
 * Memory is thus bounded by min(per_node x nodes, max(total, nodes)) events
 * waiting, plus one being handled per node.
 *
 * Every coalesced event is counted (hook_stats.coalesced: /v1/health and
 * /metrics) and logged: the first at once, with the events and the bound
 * hit; the rest, at most once a second, as a count. *
 * The gate (redundant monitors, actgate.h). With a gate set, the head of a
 * FIFO is asked about before its runs start: go (with the epoch its hooks
 * get in VIGIL_EPOCH), skip (dropped as if run; the next event is asked
 * about), or wait (held: the FIFO stops there, later events coalescing
 * behind it as above, until the gate answers that question's ticket or
 * the runner is told to ask again). When the runs of an event that went
 * have all ended, the gate is told (done). A failed run's retry is asked
 * about too (may_retry); refused, the event goes back to the gate whole
 * once its other runs end, and all its hooks run again when it goes.
 */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <signal.h> /* SIGTERM and SIGKILL, the numbers only */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h> /* the macros that read an exit status */

#include <sodium.h>

#include "fmt.h"
#include "core/idtable.h"
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
/* hook_runner_free waits this long after SIGTERM: the 2 s of hooks.h. */
#define HOOK_FREE_WAIT (2 * VIGIL_NSEC_PER_SEC)
/*
 * And this long after SIGKILL, which cannot be caught: only a child stuck
 * in the kernel (uninterruptible I/O) takes longer, and is then left.
 */
#define HOOK_FREE_KILL_WAIT (1 * VIGIL_NSEC_PER_SEC)
/* FIFOs the table and the array have room for at first; both double as needed. */
#define HOOK_QUEUES_START 8
/* Log lines are at most this long (a long hook path is cut, never overflows). */
#define HOOK_LOG_MAX 1024
/* Environment variables the runner sets (hook_env_names below). */
#define HOOK_ENV_COUNT 21
/*
 * Coalescing is logged in detail at most once a second, the events
 * coalesced in between as a count: a node flapping thousands of times a
 * second must not flood the log that would report it.
 */
#define HOOK_COALESCE_LOG_EVERY VIGIL_NSEC_PER_SEC

/* One event waiting in (or at the head of) a node's FIFO. */
struct hook_job {
    struct hook_job *next;
    struct evrec rec;
    uint32_t match;     /* bit per action: the node is one the action is for (at submission) */
    uint32_t coalesced; /* earlier events of the node this one stands for */
    int64_t epoch;      /* the fencing epoch the gate gave it (VIGIL_EPOCH; 0: none) */
};

struct hook_runner;
struct hook_queue;

/* One hook's run for the event at the head of a FIFO: one per hook in every FIFO. */
struct hook_run {
    struct hook_queue *q;
    size_t hook;             /* its index in runner->hooks */
    bool owed;               /* the head event wants this hook, and it has not finished */
    struct vio_child *child; /* the running hook (and its process group), or NULL */
    vigil_time_t started;    /* when it started */
    int signalled;           /* last signal sent to it: 0, SIGTERM or SIGKILL */
    uint32_t attempt;        /* retries of this run so far */
    bool in_retry;           /* waiting to run the failed hook again */
    bool in_line;            /* waiting for a free slot */
    void *call;              /* a built-in action's call in flight (the driver's), or NULL */
    bool calling;            /* the driver has a call of this run's in flight */
    uint8_t op;              /* HOOK_OP_DO or HOOK_OP_UNDO, for the head event */
    bool ordered;            /* runs in turn with the event's other ordered runs */
    struct hook_run *line_next;
    /*
     * While child is set: the next escalation (SIGTERM at start + timeout,
     * then SIGKILL). While in_retry: when the failed run goes again.
     */
    struct vio_timer timer;
};

/* A node's FIFO of events, and the runs of the hooks for its head event. */
struct hook_queue {
    char node[VIGIL_ID_MAX + 1]; /* "" for pause events */
    uint32_t idx;                /* in runner->queues, the value of node in runner->ids */
    struct hook_runner *runner;
    struct hook_queue *prev, *next; /* list of all FIFOs, newest first */
    struct hook_job *head, *tail;   /* head: the event being handled */
    uint32_t waiting;               /* events after head */
    /* In the runner's list of FIFOs with two or more waiting, oldest first. */
    struct hook_queue *merge_prev, *merge_next;
    bool in_merge;
    bool head_started;      /* the head's runs were started (or put in line) */
    bool head_held;         /* the head waits for the gate's answer to ticket */
    bool paused;            /* held (maintenance, flapping) until hook_runner_release */
    bool held_behind;       /* an event came during a hold while the head ran: collapse after it */
    enum hook_verdict gate; /* the gate's answer about the head, once it came (else WAIT) */
    bool head_failed;       /* a run of the head gave up (or could not start) */
    bool head_again;        /* the gate refused a retry: the head goes back to the gate */
    uint64_t ticket;        /* the gate's latest question about the head */
    size_t runs_left;       /* runs of the head not finished: the next event waits for 0 */
    /*
     * The ordered runs of the head go one after another: seq_pos is the
     * next place in the order to look at, seq_active the one running.
     */
    size_t seq_pos;
    struct hook_run *seq_active;
    bool seq_reverse;      /* the head undoes: the order is the list's, reversed */
    struct hook_run *runs; /* n_hooks of them */
};

/* An action, copied from the configuration so that the runner owns it. */
struct hook {
    struct vcfg_hook c;
    char name[VCFG_ACTION_NAME_MAX + 24]; /* its own, or KIND-N */
    char label[160];                      /* for the log: "hook PROGRAM" or "action NAME (KIND)" */
    /*
     * Built-in kinds and actions that undo run in turn (the list's order;
     * undo, the reverse); an exec action that does not undo (a hook of old)
     * starts with the event at once, beside the others.
     */
    bool ordered;
};

struct hook_runner {
    struct vio_loop *loop;
    struct vio_procs *procs;
    struct hook *hooks;
    size_t n_hooks;
    hook_log_fn log;
    void *log_arg;
    struct vigil__idtable ids;  /* node -> index in queues */
    struct hook_queue **queues; /* the FIFOs, dense: n_queues of cap_queues */
    uint32_t n_queues, cap_queues;
    struct hook_queue *all;                 /* every FIFO */
    struct hook_run *line_head, *line_tail; /* runs waiting for a free slot */
    size_t running;                         /* hooks running */
    size_t pending;                         /* hook runs queued or running */
    bool stopping;                          /* in hook_runner_free: start nothing */
    bool frozen;                            /* about to be replaced: no new event starts */
    struct hook_stats stats;
    struct hook_driver driver; /* the built-in kinds (driver.start NULL: none) */
    hook_match_fn match;       /* custom status of nodes, for match = "KEY=VALUE" */
    void *match_arg;
    hook_hold_fn hold; /* nodes whose actions are held (NULL: none) */
    void *hold_arg;
    hook_observe_fn observe; /* told of every attempt and outcome (NULL: nobody) */
    void *observe_arg;
    struct hook_gate gate;                      /* gate.ask NULL: no gate */
    uint64_t tickets;                           /* the gate's questions so far */
    size_t held;                                /* FIFO heads waiting for the gate */
    uint32_t max_waiting;                       /* per node */
    uint32_t max_total;                         /* in all */
    size_t waiting;                             /* events waiting, all FIFOs */
    struct hook_queue *merge_head, *merge_tail; /* FIFOs with two or more waiting */
    /* The log of coalescing: a line at most every HOOK_COALESCE_LOG_EVERY. */
    vigil_time_t clog_next;            /* the next detailed line may come then */
    uint64_t clog_quiet;               /* events coalesced since the last line */
    char clog_node[VIGIL_ID_MAX + 16]; /* the node of the last of them */
    struct vio_timer clog_timer;       /* reports clog_quiet */
};

static const char *const hook_env_names[HOOK_ENV_COUNT] = {
    "VIGIL_EVENT_SEQ", "VIGIL_EVENT_TYPE", "VIGIL_NODE",        "VIGIL_OLD_STATE",
    "VIGIL_NEW_STATE", "VIGIL_REASON",     "VIGIL_TIME",        "VIGIL_SINCE_LAST",
    "VIGIL_LEVEL",     "VIGIL_THRESHOLD",  "VIGIL_MEAN",        "VIGIL_STD_DEV",
    "VIGIL_ADDR",      "VIGIL_GENERATION", "VIGIL_ATTEMPT",     "VIGIL_COALESCED",
    "VIGIL_EPOCH",     "VIGIL_ACTION",     "VIGIL_ACTION_NAME", "VIGIL_IDEMPOTENCY_KEY",
    "VIGIL_CHECK",
};

static void run_timer(void *arg, vigil_time_t now);
static void hook_exited(void *arg, struct vio_child *c, int status);
static void collapse_held(struct hook_runner *r, struct hook_queue *q);

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

/* The node as log lines show it; pause events are the monitor's own. */
static const char *event_label(const struct evrec *rec)
{
    return rec->ev.type == VIGIL_EVENT_PAUSE    ? "monitor pause"
           : rec->ev.type == VIGIL_EVENT_LEADER ? "leadership"
                                                : rec->ev.node;
}

/* What an action does for an event: nothing, its work, or the undo of it. */
static int hook_op(const struct hook *h, const struct vigil_event *ev)
{
    uint32_t on = h->c.on_states;
    /* Actions on checks act on check events only; the others never on them. */
    if ((ev->type == VIGIL_EVENT_CHECK) != (h->c.n_checks > 0))
        return HOOK_OP_NONE;
    if (on == 0)
        return HOOK_OP_DO;
    if (ev->type != VIGIL_EVENT_STATE && ev->type != VIGIL_EVENT_CHECK)
        return HOOK_OP_NONE; /* the monitor's own: no new state, only actions for every event */
    /* on_states has one bit per state; a state beyond its 32 bits matches no filter. */
    unsigned s = (unsigned)ev->new_state, o = (unsigned)ev->old_state;
    if (s < 32 && (on & (UINT32_C(1) << s)) != 0)
        return HOOK_OP_DO;
    /*
     * Back to alive from a state the action acts on: undo. A node's events
     * chain (coalescing keeps it so), so the action was told of that state.
     */
    if (h->c.undo && ev->new_state == VIGIL_STATE_ALIVE && o < 32 && (on & (UINT32_C(1) << o)))
        return HOOK_OP_UNDO;
    return HOOK_OP_NONE;
}

/* Does action i want job's event? */
static int job_op(const struct hook_runner *r, const struct hook_job *j, size_t i)
{
    if (!(j->match & (UINT32_C(1) << i)))
        return HOOK_OP_NONE;
    return hook_op(&r->hooks[i], &j->rec.ev);
}

/* Is node one that action h is for (its globs and its custom status value)? */
static bool hook_matches(const struct hook_runner *r, const struct hook *h, const struct evrec *rec)
{
    bool own = evrec_is_own(rec); /* the monitor's own: no node to match */
    if (h->c.n_checks > 0) {
        bool any = false;
        for (size_t i = 0; i < h->c.n_checks && !any && rec->ev.check; i++)
            any = fnmatch(h->c.checks[i], rec->ev.check, 0) == 0;
        if (!any)
            return false;
    }
    if (h->c.n_nodes > 0) {
        if (own)
            return false;
        bool any = false;
        for (size_t i = 0; i < h->c.n_nodes && !any; i++)
            any = fnmatch(h->c.nodes[i], rec->ev.node, 0) == 0;
        if (!any)
            return false;
    }
    if (h->c.match_key) {
        if (own || !r->match)
            return false;
        char v[VIGIL_CUSTOM_VAL_MAX + 1];
        if (r->match(r->match_arg, rec->ev.node, h->c.match_key, v, sizeof(v)) != 0 ||
            strcmp(v, h->c.match_value) != 0)
            return false;
    }
    return true;
}

/* ---- the table of FIFOs ---- */

/* The node of FIFO idx, for the id table. */
static const char *queue_id_of(const void *ctx, uint32_t idx)
{
    return ((const struct hook_runner *)ctx)->queues[idx]->node;
}

/* The FIFO of node, created if there is none; NULL when out of memory. */
static struct hook_queue *queue_get(struct hook_runner *r, const char *node)
{
    size_t len = strlen(node);
    uint32_t idx = vigil__idtable_find(&r->ids, node, len, queue_id_of);
    if (idx != VIGIL__IDTABLE_NONE)
        return r->queues[idx];
    if (r->n_queues == r->cap_queues) {
        uint32_t cap = r->cap_queues * 2;
        struct hook_queue **qs = reallocarray(r->queues, cap, sizeof(*qs));
        if (!qs)
            return NULL;
        r->queues = qs;
        r->cap_queues = cap;
    }
    struct hook_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->runs = calloc(r->n_hooks > 0 ? r->n_hooks : 1, sizeof(*q->runs));
    if (!q->runs) {
        free(q);
        return NULL;
    }
    snprintf(q->node, sizeof(q->node), "%s", node);
    q->gate = HOOK_WAIT;
    q->idx = r->n_queues;
    r->queues[q->idx] = q;
    if (vigil__idtable_insert(&r->ids, node, len, q->idx) != 0) {
        free(q->runs);
        free(q);
        return NULL;
    }
    r->n_queues++;
    q->runner = r;
    for (size_t i = 0; i < r->n_hooks; i++) {
        q->runs[i].q = q;
        q->runs[i].hook = i;
        vio_timer_init(&q->runs[i].timer, run_timer, &q->runs[i]);
    }
    q->next = r->all;
    if (r->all)
        r->all->prev = q;
    r->all = q;
    return q;
}

/* Keeps q in the list of FIFOs with two or more waiting exactly while it has them. */
static void merge_list_update(struct hook_runner *r, struct hook_queue *q)
{
    bool want = q->waiting >= 2;
    if (want == q->in_merge)
        return;
    q->in_merge = want;
    if (want) {
        q->merge_next = NULL;
        q->merge_prev = r->merge_tail;
        if (r->merge_tail)
            r->merge_tail->merge_next = q;
        else
            r->merge_head = q;
        r->merge_tail = q;
        return;
    }
    if (q->merge_prev)
        q->merge_prev->merge_next = q->merge_next;
    else
        r->merge_head = q->merge_next;
    if (q->merge_next)
        q->merge_next->merge_prev = q->merge_prev;
    else
        r->merge_tail = q->merge_prev;
    q->merge_prev = q->merge_next = NULL;
}

/* Unlinks and frees an idle FIFO (no child, no run in line). */
static void queue_remove(struct hook_runner *r, struct hook_queue *q)
{
    for (size_t i = 0; i < r->n_hooks; i++)
        vio_timer_disarm(r->loop, &q->runs[i].timer);
    vigil__idtable_remove_slot(&r->ids,
                               vigil__idtable_slot(&r->ids, q->node, strlen(q->node), queue_id_of));
    /* The last FIFO of the array takes q's place, and its index in the table follows. */
    struct hook_queue *last = r->queues[--r->n_queues];
    if (last != q) {
        r->queues[q->idx] = last;
        last->idx = q->idx;
        vigil__idtable_set(
            vigil__idtable_slot(&r->ids, last->node, strlen(last->node), queue_id_of), last->idx);
    }
    if (q->prev)
        q->prev->next = q->next;
    else
        r->all = q->next;
    if (q->next)
        q->next->prev = q->prev;
    r->waiting -= q->waiting;
    q->waiting = 0;
    if (q->head_held)
        r->held--;
    merge_list_update(r, q);
    while (q->head) {
        struct hook_job *j = q->head;
        q->head = j->next;
        free(j);
    }
    free(q->runs);
    free(q);
}

static void line_append(struct hook_runner *r, struct hook_run *run)
{
    run->in_line = true;
    run->line_next = NULL;
    if (r->line_tail)
        r->line_tail->line_next = run;
    else
        r->line_head = run;
    r->line_tail = run;
}

static struct hook_run *line_pop(struct hook_runner *r)
{
    struct hook_run *run = r->line_head;
    if (!run)
        return NULL;
    r->line_head = run->line_next;
    if (!r->line_head)
        r->line_tail = NULL;
    run->in_line = false;
    run->line_next = NULL;
    return run;
}

/* ---- bounds: coalescing waiting events ---- */

/* Runs an event owes: one per action that wants it. */
static size_t event_runs(const struct hook_runner *r, const struct hook_job *j)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_hooks; i++)
        n += job_op(r, j, i) != HOOK_OP_NONE;
    return n;
}

/* a + b + 1 events, saturating: what a merged event stands for. */
static uint32_t add_coalesced(uint32_t a, uint32_t b)
{
    uint64_t n = (uint64_t)a + b + 1;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* Drops j, the first waiting event of q: its runs are owed no more. Counted. */
static void drop_first_waiting(struct hook_runner *r, struct hook_queue *q)
{
    struct hook_job *j = q->head->next;
    q->head->next = j->next;
    if (q->tail == j)
        q->tail = q->head;
    r->pending -= event_runs(r, j);
    q->waiting--;
    r->waiting--;
    r->stats.coalesced++;
    free(j);
}

/* Reports the events coalesced since the last line, if any. */
static void clog_report(struct hook_runner *r, vigil_time_t now)
{
    if (r->clog_quiet == 0)
        return;
    hook_logf(r,
              "hook events coalesced: %" PRIu64 " more since the last report, the last for %s; "
              "%" PRIu64 " in all",
              r->clog_quiet, r->clog_node, r->stats.coalesced);
    r->clog_quiet = 0;
    r->clog_next = now + HOOK_COALESCE_LOG_EVERY;
}

static void clog_timer_fired(void *arg, vigil_time_t now)
{
    clog_report(arg, now);
}

/*
 * May a coalescing be logged in detail now? If not, its n events are
 * counted for the next report, which a timer makes sure comes.
 */
static bool clog_now(struct hook_runner *r, const char *label, uint32_t n)
{
    vigil_time_t now = vio_now(r->loop);
    if (now >= r->clog_next && r->clog_quiet == 0) {
        r->clog_next = now + HOOK_COALESCE_LOG_EVERY;
        return true;
    }
    r->clog_quiet += n;
    snprintf(r->clog_node, sizeof(r->clog_node), "%s", label);
    if (!vio_timer_armed(&r->clog_timer))
        vio_timer_arm(r->loop, &r->clog_timer, r->clog_next > now ? r->clog_next : now);
    return false;
}

/*
 * Coalesces the two oldest waiting events of q, A then B (the rule is in
 * this file's header): B takes A's old state, or both go when that makes
 * a round trip; of two pauses the older goes. q must have two waiting.
 * in_all says which bound was hit, for the log.
 */
static void coalesce(struct hook_runner *r, struct hook_queue *q, bool in_all)
{
    struct hook_job *a = q->head->next, *b = a->next;
    const struct vigil_event *ae = &a->rec.ev;
    struct vigil_event *be = &b->rec.ev;
    /*
     * The monitor's own, or two events about different things (the node and
     * one of its checks, two checks): the newer wins.
     */
    bool pause = be->type != VIGIL_EVENT_STATE && be->type != VIGIL_EVENT_CHECK;
    pause |= ae->type != be->type ||
             (be->type == VIGIL_EVENT_CHECK &&
              strcmp(ae->check ? ae->check : "", be->check ? be->check : "") != 0);
    bool round_trip = !pause && ae->old_state == be->new_state;
    const char *label = event_label(&b->rec);
    char bound[96];
    if (in_all)
        snprintf(bound, sizeof(bound), "%zu waiting in all, limit %" PRIu32, r->waiting,
                 r->max_total);
    else
        snprintf(bound, sizeof(bound), "%" PRIu32 " waiting, limit %" PRIu32 " per node",
                 q->waiting, r->max_waiting);
    if (clog_now(r, label, round_trip ? 2 : 1)) {
        if (pause)
            hook_logf(r,
                      "hook events coalesced for %s (%s): event %" PRIu64
                      " dropped for the newer event %" PRIu64,
                      label, bound, ae->seq, be->seq);
        else if (round_trip)
            hook_logf(r,
                      "hook events coalesced for %s (%s): events %" PRIu64
                      " (%s -> %s) and %" PRIu64 " (%s -> %s) dropped, a round trip",
                      label, bound, ae->seq, vigil_state_name(ae->old_state),
                      vigil_state_name(ae->new_state), be->seq, vigil_state_name(be->old_state),
                      vigil_state_name(be->new_state));
        else
            hook_logf(r,
                      "hook events coalesced for %s (%s): event %" PRIu64
                      " (%s -> %s) merged into event %" PRIu64 ", now %s -> %s",
                      label, bound, ae->seq, vigil_state_name(ae->old_state),
                      vigil_state_name(ae->new_state), be->seq, vigil_state_name(ae->old_state),
                      vigil_state_name(be->new_state));
    }
    if (round_trip) {
        /* The next event, if any, starts where A started: it stands for both. */
        uint32_t both = add_coalesced(a->coalesced, b->coalesced);
        if (b->next)
            b->next->coalesced = add_coalesced(b->next->coalesced, both);
        drop_first_waiting(r, q);
        drop_first_waiting(r, q);
    } else {
        if (!pause) {
            /* B's old state changes, and with it what B owes (an undo depends on it). */
            r->pending -= event_runs(r, b);
            be->old_state = ae->old_state;
            b->match |= a->match;
            r->pending += event_runs(r, b);
        }
        b->coalesced = add_coalesced(a->coalesced, b->coalesced);
        drop_first_waiting(r, q);
    }
    merge_list_update(r, q);
}

/*
 * Coalesces until q is within the per-node bound and the runner within
 * the total, or no FIFO has two events waiting (a node keeps its latest
 * state). Each round removes at least one waiting event.
 */
static void enforce_bounds(struct hook_runner *r, struct hook_queue *q)
{
    while (q->waiting > r->max_waiting) /* >= 2, since max_waiting >= 1 */
        coalesce(r, q, false);
    while (r->waiting > r->max_total) {
        struct hook_queue *v = q->waiting >= 2 ? q : r->merge_head;
        if (!v)
            break;
        coalesce(r, v, true);
    }
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

/* A state as the event names it: a check's events name its statuses (passing, ...). */
static const char *state_text(const struct vigil_event *ev, enum vigil_state s)
{
    if (ev->type != VIGIL_EVENT_CHECK)
        return vigil_state_name(s);
    return s == VIGIL_STATE_ALIVE     ? "passing"
           : s == VIGIL_STATE_SUSPECT ? "warning"
           : s == VIGIL_STATE_DEAD    ? "critical"
                                      : "unknown";
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
static char **build_env(const struct hook_job *job, const struct hook_run *run, const char *name,
                        const char *key, size_t *first_own)
{
    uint32_t attempt = run->attempt;
    const struct evrec *rec = &job->rec;
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

    /* The fields as evlog.c renders them; since_last is "" when never heard. */
    char when[64], since[32] = "", mean[32], sd[32];
    char addr[64]; /* vigil_addr_format asks for at least 56 bytes */
    vigil_format_wall(rec->wall_us, when, sizeof(when));
    if (ev->since_last >= 0)
        vigil_format_secs(ev->since_last, since, sizeof(since));
    vigil_format_secs(ev->mean, mean, sizeof(mean));
    vigil_format_secs(ev->std_dev, sd, sizeof(sd));
    evrec_format_addr(rec, addr, sizeof(addr));

    /* A pause is the monitor's own: no node, no states (VIGIL_SINCE_LAST is its length). */
    bool pause = ev->type != VIGIL_EVENT_STATE && ev->type != VIGIL_EVENT_CHECK;
    bool ok =
        env_add(&envp[k++], "VIGIL_CHECK=%s",
                ev->type == VIGIL_EVENT_CHECK && ev->check ? ev->check : "") &&
        env_add(&envp[k++], "VIGIL_EVENT_SEQ=%" PRIu64, ev->seq) &&
        env_add(&envp[k++], "VIGIL_EVENT_TYPE=%s", evrec_type_name(rec)) &&
        env_add(&envp[k++], "VIGIL_NODE=%s", evrec_node(rec)) &&
        env_add(&envp[k++], "VIGIL_OLD_STATE=%s", pause ? "" : state_text(ev, ev->old_state)) &&
        env_add(&envp[k++], "VIGIL_NEW_STATE=%s", pause ? "" : state_text(ev, ev->new_state)) &&
        env_add(&envp[k++], "VIGIL_REASON=%s", ev->reason ? ev->reason : "") &&
        env_add(&envp[k++], "VIGIL_TIME=%s", when) &&
        env_add(&envp[k++], "VIGIL_SINCE_LAST=%s", since) &&
        env_add(&envp[k++], "VIGIL_LEVEL=%.3f", ev->level) &&
        env_add(&envp[k++], "VIGIL_THRESHOLD=%.3f", ev->threshold) &&
        env_add(&envp[k++], "VIGIL_MEAN=%s", mean) && env_add(&envp[k++], "VIGIL_STD_DEV=%s", sd) &&
        env_add(&envp[k++], "VIGIL_ADDR=%s", addr) &&
        env_add(&envp[k++], "VIGIL_GENERATION=%" PRIu64, ev->generation) &&
        env_add(&envp[k++], "VIGIL_ATTEMPT=%" PRIu32, attempt + 1) &&
        env_add(&envp[k++], "VIGIL_COALESCED=%" PRIu32, job->coalesced) &&
        env_add(&envp[k++], "VIGIL_EPOCH=%" PRId64, job->epoch) &&
        env_add(&envp[k++], "VIGIL_ACTION=%s", run->op == HOOK_OP_UNDO ? "undo" : "do") &&
        env_add(&envp[k++], "VIGIL_ACTION_NAME=%s", name) &&
        env_add(&envp[k++], "VIGIL_IDEMPOTENCY_KEY=%s", key);
    if (!ok) {
        for (size_t i = *first_own; i < k; i++)
            free(envp[i]);
        free(envp);
        return NULL;
    }
    envp[k] = NULL;
    return envp;
}

/*
 * The event as one line of JSON, newline included, with "coalesced" added
 * to what the API shows; NULL when out of memory.
 */
static char *event_json_line(const struct hook_job *job, size_t *len)
{
    json_t *o = evrec_to_json(&job->rec);
    if (o && json_object_set_new(o, "coalesced", json_integer(job->coalesced)) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (!o)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT | VIGIL_JSON_REAL);
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

/* The idempotency key of run for its head event: NODE:GENERATION:SEQ:ACTION[:undo]. */
static void run_key(const struct hook_runner *r, const struct hook_run *run, char *buf, size_t cap)
{
    const struct vigil_event *ev = &run->q->head->rec.ev;
    snprintf(buf, cap, "%s:%" PRIu64 ":%" PRIu64 ":%s%s", ev->node, ev->generation, ev->seq,
             r->hooks[run->hook].name, run->op == HOOK_OP_UNDO ? ":undo" : "");
}

static void observe(struct hook_runner *r, const struct hook_run *run, const char *outcome,
                    const char *detail, vigil_time_t took)
{
    if (!r->observe)
        return;
    const struct hook *h = &r->hooks[run->hook];
    char key[HOOK_KEY_MAX];
    run_key(r, run, key, sizeof(key));
    struct hook_outcome o = {
        .action = h->name,
        .kind = h->c.kind,
        .rec = &run->q->head->rec,
        .undo = run->op == HOOK_OP_UNDO,
        .attempt = run->attempt + 1,
        .outcome = outcome,
        .detail = detail ? detail : "",
        .key = key,
        .took = took,
        .epoch = run->q->head->epoch,
    };
    r->observe(r->observe_arg, &o);
}

/*
 * Starts run's action for its FIFO's head event: a child for exec, a call
 * through the driver for the built-in kinds. Returns 0 with the run
 * started and its timeout armed, or a negative error (logged and counted
 * as a spawn error) when it could not.
 */
static int start_run(struct hook_runner *r, struct hook_run *run, vigil_time_t now)
{
    struct hook_queue *q = run->q;
    const struct hook *h = &r->hooks[run->hook];
    const struct evrec *rec = &q->head->rec;
    char key[HOOK_KEY_MAX];
    run_key(r, run, key, sizeof(key));
    struct vio_child *child = NULL;
    int err = -ENOMEM;
    if (h->c.kind == VCFG_ACT_EXEC) {
        size_t json_len = 0, first_own = 0;
        char *json = event_json_line(q->head, &json_len);
        char **envp = build_env(q->head, run, h->name, key, &first_own);
        if (json && envp) {
            struct vio_spawn req = {
                .argv = h->c.argv,
                .envp = envp,
                .stdin_data = json,
                .stdin_len = json_len,
                .on_exit = hook_exited,
                .arg = run,
            };
            err = r->procs->ops->spawn(r->procs, &req, &child);
        }
        free(json);
        free_env(envp, first_own);
    } else if (!r->driver.start) {
        err = -ENOSYS;
    } else {
        struct hook_call call = {
            .action = &h->c,
            .name = h->name,
            .rec = rec,
            .undo = run->op == HOOK_OP_UNDO,
            .attempt = run->attempt + 1,
            .epoch = q->head->epoch,
            .coalesced = q->head->coalesced,
            .key = key,
        };
        run->calling = true;
        err = r->driver.start(r->driver.arg, &call, run, &run->call);
        if (err != 0) {
            run->calling = false;
            run->call = NULL;
        }
    }
    if (err == 0) {
        /* The timeout: a failure to arm it would leave the run without one. */
        vigil_time_t timeout = h->c.timeout > 0 ? h->c.timeout : HOOK_TIMEOUT_DEFAULT;
        int terr = vio_timer_arm(r->loop, &run->timer, now + timeout);
        if (terr != 0) {
            if (child) {
                r->procs->ops->signal(r->procs, child, SIGKILL);
                r->procs->ops->release(r->procs, child);
            } else {
                r->driver.cancel(r->driver.arg, run->call);
                run->calling = false;
                run->call = NULL;
            }
            err = -ENOMEM;
        }
    }
    if (err != 0) {
        r->stats.spawn_errors++;
        hook_logf(r, "%s for event %" PRIu64 " (%s): cannot start: %s", h->label, rec->ev.seq,
                  event_label(rec), err == -ENOSYS ? "no driver for this kind" : strerror(-err));
        observe(r, run, "failed", "cannot start", 0);
        return -VIGIL_ESYS;
    }
    run->child = child;
    run->started = now;
    run->signalled = 0;
    r->running++;
    r->stats.started++;
    observe(r, run, "started", "", 0);
    return 0;
}

/* A run owed no more: it ended (not to be retried) or could not start. */
static void run_end(struct hook_runner *r, struct hook_run *run)
{
    run->owed = false;
    run->attempt = 0;
    run->q->runs_left--;
    r->pending--;
    if (run->q->seq_active == run)
        run->q->seq_active = NULL;
}

/*
 * Starts run if a slot is free (and, unless it comes from the line, nobody
 * is waiting for one), else puts it in line. A run that cannot start is
 * counted and logged, and ended: the FIFO's caller moves on when it was
 * the last (queue_pump).
 */
static void run_kick(struct hook_runner *r, struct hook_run *run, vigil_time_t now, bool from_line)
{
    if (r->running >= HOOK_MAX_RUNNING || (!from_line && r->line_head)) {
        line_append(r, run);
        return;
    }
    if (start_run(r, run, now) != 0) {
        run->q->head_failed = true;
        run_end(r, run);
    }
}

/*
 * Starts the next ordered run of q's head, unless one is running (or in
 * line, or waiting to retry), or the head goes back to the gate. Runs
 * that cannot start end at once, and the next is tried.
 */
static void seq_next(struct hook_runner *r, struct hook_queue *q, vigil_time_t now)
{
    if (q->head_again) {
        /*
         * The event goes back to the gate whole: the ordered runs not
         * started yet are not owed now (all run again once it is claimed
         * again), so that the head can go back as soon as the others end.
         */
        for (size_t i = 0; i < r->n_hooks; i++) {
            struct hook_run *run = &q->runs[i];
            if (run->owed && run->ordered && run != q->seq_active && !run->child && !run->calling &&
                !run->in_retry && !run->in_line)
                run_end(r, run);
        }
        q->seq_pos = r->n_hooks;
        return;
    }
    while (!q->seq_active && q->seq_pos < r->n_hooks) {
        size_t p = q->seq_pos++;
        size_t i = q->seq_reverse ? r->n_hooks - 1 - p : p;
        struct hook_run *run = &q->runs[i];
        if (!run->owed || !run->ordered)
            continue;
        q->seq_active = run;
        run_kick(r, run, now, false);
    }
}

/*
 * Moves q on: starts the runs of its head event, all of them at once (as
 * slots allow), and when every run of the head has finished, drops it and
 * starts the next event's; frees q when it has no work left. Iterative:
 * events whose hooks cannot start at all pass in one call.
 */
static void queue_pump(struct hook_runner *r, struct hook_queue *q, vigil_time_t now)
{
    /* Each round starts the head or drops it: bounded by the events queued. */
    while (q->head) {
        if (!q->head_started && r->frozen)
            return; /* waits for the runner that replaces this one */
        if (!q->head_started && r->hold && q->node[0]) {
            if (r->hold(r->hold_arg, q->node)) {
                q->paused = true;
                return; /* hook_runner_release goes on */
            }
            if (q->held_behind) {
                /*
                 * A hold began and ended while the event before ran, and
                 * events came during it: they collapse now, with those
                 * waiting beside them, as at hook_runner_release.
                 */
                q->held_behind = false;
                collapse_held(r, q);
                continue;
            }
        }
        if (!q->head_started && r->gate.ask && q->gate == HOOK_WAIT) {
            if (q->head_held)
                return; /* the gate's answer comes through hook_runner_gate_answer */
            q->ticket = ++r->tickets;
            int64_t epoch = 0;
            uint64_t ticket = q->ticket;
            enum hook_verdict v = r->gate.ask(r->gate.arg, &q->head->rec, ticket, &epoch);
            /*
             * A gate that handed events on while asked (re-entering the
             * runner) may have moved this FIFO already: its answer then
             * no longer applies.
             */
            if (q->ticket != ticket || q->head_started || q->head_held)
                return;
            if (v == HOOK_WAIT) {
                q->head_held = true;
                r->held++;
                return;
            }
            q->gate = v;
            q->head->epoch = epoch;
        }
        bool skip = r->gate.ask && q->gate == HOOK_SKIP;
        if (!q->head_started && !skip) {
            q->head_started = true;
            q->head_failed = false;
            q->seq_pos = 0;
            q->seq_active = NULL;
            q->seq_reverse = false;
            for (size_t i = 0; i < r->n_hooks; i++) {
                struct hook_run *run = &q->runs[i];
                int op = job_op(r, q->head, i);
                run->owed = op != HOOK_OP_NONE;
                run->op = (uint8_t)op;
                run->ordered = r->hooks[i].ordered;
                run->attempt = 0;
                q->runs_left += run->owed;
                q->seq_reverse |= op == HOOK_OP_UNDO;
            }
            for (size_t i = 0; i < r->n_hooks; i++)
                if (q->runs[i].owed && !q->runs[i].ordered)
                    run_kick(r, &q->runs[i], now, false);
            seq_next(r, q, now);
        }
        if (q->runs_left > 0)
            return;
        if (q->head_again) {
            /* Back to the gate, whole: its hooks run again once it is claimed again. */
            q->head_again = false;
            q->head_started = false;
            q->gate = HOOK_WAIT;
            r->pending += event_runs(r, q->head);
            continue;
        }
        /* Every hook of the head is done: the first waiting event becomes the one handled. */
        struct hook_job *j = q->head;
        if (skip)
            r->pending -= event_runs(r, j); /* owed, never run */
        else if (r->gate.done)
            r->gate.done(r->gate.arg, &j->rec, j->epoch, !q->head_failed);
        q->head = j->next;
        q->head_started = false;
        q->gate = HOOK_WAIT;
        if (q->head) {
            q->waiting--;
            r->waiting--;
            merge_list_update(r, q);
        } else {
            q->tail = NULL;
        }
        free(j);
    }
    queue_remove(r, q);
}

/* Starts runs waiting in line while slots are free. */
static void line_drain(struct hook_runner *r, vigil_time_t now)
{
    while (r->running < HOOK_MAX_RUNNING && r->line_head) {
        struct hook_run *run = line_pop(r);
        struct hook_queue *q = run->q;
        run_kick(r, run, now, true);
        seq_next(r, q, now);
        if (q->runs_left == 0)
            queue_pump(r, q, now);
    }
}

/* ---- finishing a hook ---- */

/*
 * Records the end of run: an exec child's exit status (known, or -1: lost),
 * or, with call_what set, a built-in call's outcome (call_ok). Logs it,
 * and arms the retry of a failure that has retries left, unless final (a
 * refusal that trying again cannot change).
 */
static void hook_finished(struct hook_runner *r, struct hook_run *run, int status,
                          const char *call_what, bool call_ok, bool final, vigil_time_t now)
{
    const struct hook *h = &r->hooks[run->hook];
    const struct evrec *rec = &run->q->head->rec;
    char dur[32], what[160];
    vigil_time_t took = now - run->started;
    vigil_format_duration(took, dur, sizeof(dur));
    const char *after = "";
    if (run->signalled == SIGTERM)
        after = " after timeout (SIGTERM)";
    else if (run->signalled == SIGKILL)
        after = " after timeout (SIGKILL)";
    bool ok;
    if (call_what) {
        snprintf(what, sizeof(what), "%s", call_what);
        ok = call_ok;
        if (run->signalled)
            r->stats.timed_out++;
        else if (ok)
            r->stats.succeeded++;
        else
            r->stats.failed++;
    } else if (status == -1) {
        r->stats.failed++;
        snprintf(what, sizeof(what), "exit status lost (reaped elsewhere)");
        ok = false;
    } else if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        snprintf(what, sizeof(what), "exit %d", code);
        if (run->signalled)
            r->stats.timed_out++;
        else if (code == 0)
            r->stats.succeeded++;
        else
            r->stats.failed++;
        ok = code == 0 && !run->signalled;
    } else {
        int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        snprintf(what, sizeof(what), "killed by signal %d (%s)", sig, strsignal(sig));
        if (run->signalled)
            r->stats.timed_out++;
        else
            r->stats.failed++;
        ok = false;
    }
    char retry[96] = "";
    vio_timer_disarm(r->loop, &run->timer);
    bool again = false;
    if (!ok && !final && run->attempt < h->c.retries) {
        /* The delay doubles with each retry: retry_delay, 2x, 4x, ... up to retry_max. */
        vigil_time_t delay = h->c.retry_delay;
        for (uint32_t i = 0; i < run->attempt && delay < INT64_MAX / 2; i++)
            delay *= 2;
        if (h->c.retry_max > 0 && delay > h->c.retry_max)
            delay = h->c.retry_max;
        if (now > INT64_MAX - delay)
            delay = INT64_MAX - now;
        char d[32];
        vigil_format_duration(delay, d, sizeof(d));
        if (vio_timer_arm(r->loop, &run->timer, now + delay) == 0) {
            again = true;
            snprintf(retry, sizeof(retry), "; retry %" PRIu32 " of %" PRIu32 " in %s",
                     run->attempt + 1, h->c.retries, d);
        } else {
            r->stats.gave_up++;
            snprintf(retry, sizeof(retry), "; giving up after %" PRIu32 " runs (out of memory)",
                     run->attempt + 1);
        }
    } else if (!ok && h->c.retries > 0) {
        r->stats.gave_up++;
        snprintf(retry, sizeof(retry), "; giving up after %" PRIu32 " runs", run->attempt + 1);
    }
    hook_logf(r, "%s for event %" PRIu64 " (%s)%s: %s in %s%s%s", h->label, rec->ev.seq,
              event_label(rec), run->op == HOOK_OP_UNDO ? " undo" : "", what, dur, after, retry);
    char detail[256];
    snprintf(detail, sizeof(detail), "%s%s", what, after);
    observe(r, run, ok ? "succeeded" : again ? "retrying" : "failed", detail, took);
    run->child = NULL;
    run->signalled = 0;
    r->running--;
    if (again) {
        run->attempt++;
        run->in_retry = true;
        return; /* the run is still owed: pending stays */
    }
    if (!ok)
        run->q->head_failed = true;
    run_end(r, run);
}

/* After a run of q ended: the next ordered run, or the next event, and runs in line. */
static void after_run(struct hook_runner *r, struct hook_queue *q, vigil_time_t now)
{
    seq_next(r, q, now);
    if (q->runs_left == 0)
        queue_pump(r, q, now);
    line_drain(r, now);
}

/* The exit of run's hook, from the loop. */
static void hook_exited(void *arg, struct vio_child *c, int status)
{
    struct hook_run *run = arg;
    struct hook_queue *q = run->q;
    struct hook_runner *r = q->runner;
    r->procs->ops->release(r->procs, c);
    if (r->stopping) {
        /* hook_runner_free is waiting for it: nothing more starts. */
        run->child = NULL;
        r->running--;
        return;
    }
    vigil_time_t now = vio_now(r->loop);
    hook_finished(r, run, status, NULL, false, false, now);
    after_run(r, q, now);
}

void hook_runner_call_done(struct hook_runner *r, void *token, enum hook_call_result res,
                           const char *detail)
{
    bool ok = res == HOOK_CALL_OK;
    struct hook_run *run = token;
    if (!r || !run || !run->calling)
        return;
    run->calling = false;
    run->call = NULL;
    if (r->stopping) {
        r->running--;
        return;
    }
    struct hook_queue *q = run->q;
    vigil_time_t now = vio_now(r->loop);
    hook_finished(r, run, 0,
                  detail && detail[0] ? detail
                  : ok                ? "ok"
                                      : "failed",
                  ok, res == HOOK_CALL_REFUSED, now);
    after_run(r, q, now);
}

/* Sends SIGTERM, or SIGKILL two seconds after it, to run's hook. */
static void hook_escalate(struct hook_runner *r, struct hook_run *run, vigil_time_t now)
{
    const struct hook *h = &r->hooks[run->hook];
    if (run->calling) {
        /* A built-in call that outlived its timeout: cancelled, and a failure like any. */
        r->driver.cancel(r->driver.arg, run->call);
        run->calling = false;
        run->call = NULL;
        run->signalled = -1; /* timed out, no signal */
        struct hook_queue *q = run->q;
        char d[32], what[64];
        vigil_format_duration(h->c.timeout, d, sizeof(d));
        snprintf(what, sizeof(what), "no answer within %s", d);
        hook_finished(r, run, 0, what, false, false, now);
        after_run(r, q, now);
        return;
    }
    const struct evrec *rec = &run->q->head->rec;
    char dur[32];
    vigil_format_duration(now - run->started, dur, sizeof(dur));
    if (run->signalled == 0) {
        hook_logf(r, "%s for event %" PRIu64 " (%s): timed out after %s, sending SIGTERM", h->label,
                  rec->ev.seq, event_label(rec), dur);
        r->procs->ops->signal(r->procs, run->child, SIGTERM);
        run->signalled = SIGTERM;
        /*
         * Two seconds from the TERM actually sent, even when the loop ran
         * late. Should the timer not arm (no memory), the KILL comes with
         * hook_runner_free at the latest.
         */
        vio_timer_arm(r->loop, &run->timer, now + HOOK_KILL_DELAY);
    } else if (run->signalled == SIGTERM) {
        hook_logf(r,
                  "%s for event %" PRIu64 " (%s): still running after SIGTERM (%s), "
                  "sending SIGKILL",
                  h->label, rec->ev.seq, event_label(rec), dur);
        r->procs->ops->signal(r->procs, run->child, SIGKILL);
        run->signalled = SIGKILL;
    }
}

/* run's timer: an escalation while its hook runs, else its retry. */
static void run_timer(void *arg, vigil_time_t now)
{
    struct hook_run *run = arg;
    struct hook_queue *q = run->q;
    struct hook_runner *r = q->runner;
    if (run->child || run->calling) {
        hook_escalate(r, run, now);
        return;
    }
    if (!run->in_retry)
        return;
    run->in_retry = false;
    const struct hook_job *head = q->head;
    if (r->gate.may_retry && !r->gate.may_retry(r->gate.arg, &head->rec, head->epoch)) {
        /*
         * Not here, not now: the event goes back to the gate once its
         * other runs end, to be claimed again by whoever leads (this
         * monitor too, under a new epoch).
         */
        hook_logf(r,
                  "%s for event %" PRIu64 " (%s): retry put off: this monitor no longer "
                  "leads under epoch %" PRId64 "; the event waits for the leader",
                  r->hooks[run->hook].label, head->rec.ev.seq, event_label(&head->rec),
                  head->epoch);
        q->head_again = true;
        run_end(r, run);
    } else {
        r->stats.retried++;
        run_kick(r, run, now, false);
    }
    after_run(r, q, now);
}

/* ---- the interface ---- */

static void hooks_free(struct hook *hooks, size_t n)
{
    if (!hooks)
        return;
    for (size_t i = 0; i < n; i++)
        vcfg_hook_free(&hooks[i].c);
    free(hooks);
}

int hook_runner_new(struct vio_loop *loop, struct vio_procs *procs, const struct vcfg_hook *hooks,
                    size_t n, hook_log_fn log, void *log_arg, struct hook_runner **out)
{
    if (!out)
        return -VIGIL_EINVAL;
    *out = NULL;
    if (!loop || !procs || (n > 0 && !hooks) || n > 32)
        return -VIGIL_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (hooks[i].kind == VCFG_ACT_EXEC && (!hooks[i].argv[0] || !hooks[i].argv[0][0]))
            return -VIGIL_EINVAL;
    if (sodium_init() < 0)
        return -VIGIL_ESYS;

    struct hook_runner *r = calloc(1, sizeof(*r));
    if (!r)
        return -VIGIL_ENOMEM;
    r->loop = loop;
    r->procs = procs;
    r->log = log;
    r->log_arg = log_arg;
    r->max_waiting = HOOK_QUEUE_DEFAULT;
    r->max_total = HOOK_QUEUE_TOTAL_DEFAULT;
    vio_timer_init(&r->clog_timer, clog_timer_fired, r);
    /* A random key: only the layout of the table depends on it, runs are the same whatever it is.
     */
    int ids_rc = vigil__idtable_init(&r->ids, HOOK_QUEUES_START, NULL, NULL, queue_id_of, r);
    r->cap_queues = HOOK_QUEUES_START;
    r->queues = calloc(r->cap_queues, sizeof(*r->queues));
    r->hooks = calloc(n > 0 ? n : 1, sizeof(*r->hooks));
    if (ids_rc != 0 || !r->queues || !r->hooks)
        goto nomem;
    r->n_hooks = n;
    for (size_t i = 0; i < n; i++) {
        struct hook *h = &r->hooks[i];
        if (vcfg_hook_copy(&h->c, &hooks[i]) != 0)
            goto nomem;
        if (h->c.retry_delay <= 0)
            h->c.retry_delay = VIGIL_NSEC_PER_SEC;
        vcfg_hook_name(&h->c, i, h->name, sizeof(h->name));
        if (h->c.kind == VCFG_ACT_EXEC && !h->c.name)
            snprintf(h->label, sizeof(h->label), "hook %s", h->c.argv[0]);
        else
            snprintf(h->label, sizeof(h->label), "action %s (%s)", h->name,
                     vcfg_act_kind_name(h->c.kind));
        h->ordered = h->c.kind != VCFG_ACT_EXEC || h->c.undo;
    }
    *out = r;
    return 0;
nomem:
    hooks_free(r->hooks, n);
    vigil__idtable_destroy(&r->ids);
    free(r->queues);
    free(r);
    return -VIGIL_ENOMEM;
}

int hook_runner_submit(struct hook_runner *r, const struct evrec *ev)
{
    if (!r || !ev)
        return -VIGIL_EINVAL;
    /* The node match of every action (coalescing may later change what an event owes). */
    struct hook_job probe = {.rec = *ev};
    for (size_t i = 0; i < r->n_hooks; i++)
        if (hook_op(&r->hooks[i], &ev->ev) != HOOK_OP_NONE || r->hooks[i].c.undo)
            if (hook_matches(r, &r->hooks[i], ev))
                probe.match |= UINT32_C(1) << i;
    size_t want = event_runs(r, &probe);
    if (want == 0)
        return 0;

    struct hook_job *j = malloc(sizeof(*j));
    if (!j)
        return -VIGIL_ENOMEM;
    *j = probe;
    j->coalesced = 0;
    j->epoch = 0;
    j->rec.ev.node[VIGIL_ID_MAX] = '\0';
    struct hook_queue *q = queue_get(r, evrec_node(&j->rec));
    if (!q) {
        free(j);
        return -VIGIL_ENOMEM;
    }
    if (q->tail) {
        q->tail->next = j;
        q->waiting++;
        r->waiting++;
        merge_list_update(r, q);
    } else {
        q->head = j;
    }
    q->tail = j;
    if (q->head_started && r->hold && q->node[0] && r->hold(r->hold_arg, q->node))
        q->held_behind = true; /* held behind an event from before the hold */
    /*
     * stats.queued counts hook runs accepted, like the other counters
     * (never decreasing); hook_runner_pending() says how many are owed
     * right now, running or waiting (runs of coalesced events are not).
     */
    r->pending += want;
    r->stats.queued += want;
    enforce_bounds(r, q);
    if (!q->head_started)
        queue_pump(r, q, vio_now(r->loop));
    return 0;
}

int hook_runner_set_limits(struct hook_runner *r, uint32_t per_node, uint32_t total)
{
    if (!r || per_node < 1 || per_node > HOOK_QUEUE_MAX || total < 1 ||
        total > HOOK_QUEUE_TOTAL_MAX)
        return -VIGIL_EINVAL;
    r->max_waiting = per_node;
    r->max_total = total;
    return 0;
}

void hook_runner_set_gate(struct hook_runner *r, const struct hook_gate *g)
{
    if (g)
        r->gate = *g;
    else
        memset(&r->gate, 0, sizeof(r->gate));
}

void hook_runner_gate_answer(struct hook_runner *r, const char *node, uint64_t ticket,
                             enum hook_verdict v, int64_t epoch)
{
    uint32_t idx = vigil__idtable_find(&r->ids, node, strlen(node), queue_id_of);
    if (idx == VIGIL__IDTABLE_NONE)
        return;
    struct hook_queue *q = r->queues[idx];
    if (!q->head_held || q->ticket != ticket || v == HOOK_WAIT)
        return;
    q->head_held = false;
    r->held--;
    q->gate = v;
    q->head->epoch = epoch;
    vigil_time_t now = vio_now(r->loop);
    queue_pump(r, q, now);
    line_drain(r, now);
}

void hook_runner_gate_reask(struct hook_runner *r)
{
    /* Answers may come at once and free FIFOs: walk a snapshot of the held ones' names. */
    size_t n = r->held;
    if (n == 0)
        return;
    char(*names)[VIGIL_ID_MAX + 1] = calloc(n, sizeof(*names));
    if (!names)
        return;
    size_t k = 0;
    for (struct hook_queue *q = r->all; q && k < n; q = q->next)
        if (q->head_held)
            memcpy(names[k++], q->node, sizeof(names[0]));
    vigil_time_t now = vio_now(r->loop);
    for (size_t i = 0; i < k; i++) {
        uint32_t idx = vigil__idtable_find(&r->ids, names[i], strlen(names[i]), queue_id_of);
        if (idx == VIGIL__IDTABLE_NONE)
            continue;
        struct hook_queue *q = r->queues[idx];
        if (!q->head_held)
            continue;
        q->head_held = false;
        r->held--;
        queue_pump(r, q, now);
    }
    free(names);
    line_drain(r, now);
}

void hook_runner_set_driver(struct hook_runner *r, const struct hook_driver *d)
{
    if (d)
        r->driver = *d;
    else
        memset(&r->driver, 0, sizeof(r->driver));
}

/*
 * A FIFO held from its head on (maintenance, flapping) was never acted on:
 * its head may be coalesced too, by the rule of this file's header, so
 * that a node that went down and came back during the hold is not acted
 * on at all, and one that changed for good is told of it once.
 */
static void collapse_held(struct hook_runner *r, struct hook_queue *q)
{
    if (q->head_held && q->head && q->head->next) {
        /* The gate's answer about this head would apply to whatever replaces it: asked anew. */
        q->head_held = false;
        r->held--;
        q->ticket = ++r->tickets;
    }
    while (!q->head_started && q->head && q->head->next &&
           q->head->rec.ev.type == VIGIL_EVENT_STATE) {
        struct hook_job *a = q->head, *b = a->next;
        r->pending -= event_runs(r, a) + event_runs(r, b);
        uint32_t both = add_coalesced(a->coalesced, b->coalesced);
        q->waiting--;
        r->waiting--;
        r->stats.coalesced++;
        if (a->rec.ev.old_state == b->rec.ev.new_state) {
            q->head = b->next;
            if (q->head) {
                q->waiting--;
                r->waiting--;
                q->head->coalesced = add_coalesced(q->head->coalesced, both);
            } else {
                q->tail = NULL;
            }
            r->stats.coalesced++;
            free(a);
            free(b);
        } else {
            b->rec.ev.old_state = a->rec.ev.old_state;
            b->match |= a->match;
            b->coalesced = both;
            r->pending += event_runs(r, b);
            q->head = b;
            free(a);
        }
    }
    merge_list_update(r, q);
}

void hook_runner_set_hold(struct hook_runner *r, hook_hold_fn fn, void *arg)
{
    r->hold = fn;
    r->hold_arg = arg;
}

void hook_runner_release(struct hook_runner *r, const char *node)
{
    if (!r)
        return;
    uint32_t idx = vigil__idtable_find(&r->ids, node, strlen(node), queue_id_of);
    if (idx == VIGIL__IDTABLE_NONE)
        return;
    struct hook_queue *q = r->queues[idx];
    if (!q->paused)
        return; /* not held, or its head still runs: queue_pump collapses after it */
    q->paused = false;
    q->held_behind = false;
    collapse_held(r, q);
    vigil_time_t now = vio_now(r->loop);
    queue_pump(r, q, now);
    line_drain(r, now);
}

void hook_runner_set_matcher(struct hook_runner *r, hook_match_fn fn, void *arg)
{
    r->match = fn;
    r->match_arg = arg;
}

void hook_runner_set_observer(struct hook_runner *r, hook_observe_fn fn, void *arg)
{
    r->observe = fn;
    r->observe_arg = arg;
}

size_t hook_runner_actions(const struct hook_runner *r)
{
    return r ? r->n_hooks : 0;
}

const char *hook_runner_action_name(const struct hook_runner *r, size_t i)
{
    return r && i < r->n_hooks ? r->hooks[i].name : NULL;
}

void hook_runner_each(const struct hook_runner *r, void (*fn)(void *arg, const struct hook_work *w),
                      void *arg)
{
    for (const struct hook_queue *q = r->all; q; q = q->next) {
        if (!q->head)
            continue;
        struct hook_work w = {.node = q->node, .rec = &q->head->rec, .waiting = q->waiting};
        if (q->paused) {
            const char *why = r->hold ? r->hold(r->hold_arg, q->node) : NULL;
            w.state = why && !strcmp(why, "flapping") ? "held: flapping" : "held: maintenance";
            fn(arg, &w);
            continue;
        }
        if (q->head_held || (!q->head_started && q->gate == HOOK_WAIT && r->gate.ask)) {
            w.state = "waiting for the leader";
            fn(arg, &w);
            continue;
        }
        for (size_t i = 0; i < r->n_hooks; i++) {
            const struct hook_run *run = &q->runs[i];
            if (!run->owed)
                continue;
            w.action = r->hooks[i].name;
            w.undo = run->op == HOOK_OP_UNDO;
            w.attempt = run->attempt + 1;
            w.state = run->child || run->calling ? "running"
                      : run->in_retry            ? "retrying"
                      : run->in_line             ? "in line"
                                                 : "waiting for its turn";
            fn(arg, &w);
        }
    }
}

void hook_runner_freeze(struct hook_runner *r)
{
    if (r)
        r->frozen = true;
}

bool hook_runner_busy(const struct hook_runner *r)
{
    if (!r)
        return false;
    if (r->running > 0 || r->line_head)
        return true;
    for (const struct hook_queue *q = r->all; q; q = q->next)
        for (size_t i = 0; i < r->n_hooks; i++)
            if (q->runs[i].in_retry || q->runs[i].child || q->runs[i].calling)
                return true;
    return false;
}

void hook_runner_take(struct hook_runner *r, void (*fn)(void *arg, const struct evrec *ev),
                      void *arg)
{
    struct hook_queue *q = r->all;
    while (q) {
        struct hook_queue *next = q->next;
        for (const struct hook_job *j = q->head; j; j = j->next)
            fn(arg, &j->rec);
        /* A FIFO with a run under way stays for hook_runner_free, which stops it. */
        bool active = false;
        for (size_t i = 0; i < r->n_hooks; i++)
            active |=
                q->runs[i].child || q->runs[i].calling || q->runs[i].in_retry || q->runs[i].in_line;
        if (!active)
            queue_remove(r, q);
        q = next;
    }
    r->pending = r->running;
}

size_t hook_runner_held(const struct hook_runner *r)
{
    return r->held;
}

size_t hook_runner_pending(const struct hook_runner *r)
{
    return r ? r->pending : 0;
}

size_t hook_runner_waiting(const struct hook_runner *r)
{
    return r ? r->waiting : 0;
}

const struct hook_stats *hook_runner_stats(const struct hook_runner *r)
{
    return r ? &r->stats : NULL;
}

void hook_runner_free(struct hook_runner *r)
{
    if (!r)
        return;
    r->stopping = true;
    vio_timer_disarm(r->loop, &r->clog_timer);
    clog_report(r, vio_now(r->loop));
    size_t waiting = r->pending - r->running;
    if (waiting > 0 && r->held > 0)
        hook_logf(r,
                  "hook runner stopping: %zu hook runs not started; the events of %zu nodes "
                  "were held for the leader (redundant monitors: the leader acts on them)",
                  waiting, r->held);
    else if (waiting > 0)
        hook_logf(r, "hook runner stopping: %zu hook runs not started", waiting);
    for (struct hook_queue *q = r->all; q; q = q->next) {
        for (size_t i = 0; i < r->n_hooks; i++) {
            struct hook_run *run = &q->runs[i];
            vio_timer_disarm(r->loop, &run->timer);
            if (run->calling) {
                hook_logf(r, "%s for event %" PRIu64 " (%s): call abandoned at stop",
                          r->hooks[i].label, q->head->rec.ev.seq, event_label(&q->head->rec));
                r->driver.cancel(r->driver.arg, run->call);
                run->calling = false;
                run->call = NULL;
                r->running--;
            }
            if (run->child) {
                hook_logf(r, "%s for event %" PRIu64 " (%s): stopping it (SIGTERM)",
                          r->hooks[i].label, q->head->rec.ev.seq, event_label(&q->head->rec));
                r->procs->ops->signal(r->procs, run->child, SIGTERM);
            }
        }
    }
    /* Up to 2 s for them to go; each exit comes back through hook_exited. */
    if (r->running > 0)
        r->procs->ops->wait_all(r->procs, HOOK_FREE_WAIT);
    bool killed = false;
    for (struct hook_queue *q = r->all; q; q = q->next) {
        for (size_t i = 0; i < r->n_hooks; i++) {
            if (!q->runs[i].child)
                continue;
            hook_logf(r, "%s for event %" PRIu64 " (%s): still running, sending SIGKILL",
                      r->hooks[i].label, q->head->rec.ev.seq, event_label(&q->head->rec));
            r->procs->ops->signal(r->procs, q->runs[i].child, SIGKILL);
            killed = true;
        }
    }
    if (killed)
        r->procs->ops->wait_all(r->procs, HOOK_FREE_KILL_WAIT);
    for (struct hook_queue *q = r->all; q; q = q->next) {
        for (size_t i = 0; i < r->n_hooks; i++) {
            if (!q->runs[i].child)
                continue;
            /* Not gone even after SIGKILL: it is left to run unwatched. */
            r->procs->ops->release(r->procs, q->runs[i].child);
            q->runs[i].child = NULL;
        }
    }
    r->line_head = r->line_tail = NULL;
    while (r->all)
        queue_remove(r, r->all);
    hooks_free(r->hooks, r->n_hooks);
    vigil__idtable_destroy(&r->ids);
    free(r->queues);
    free(r);
}
