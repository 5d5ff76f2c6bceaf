/*
 * Tests of the hook runner, in two halves.
 *
 * With real child processes, on a real epoll loop: small /bin/sh scripts
 * written into a temporary directory act as hooks and record what they
 * received (environment, standard input, arguments, signal state) and when
 * they ran, into files that the tests read back and compare. The loop runs
 * (vio_loop_run) until a condition holds, checked by a timer that stops
 * it, for 10 s at most: a bounded wait, never a sleep used as an assertion.
 *
 * On a virtual clock (the fake loop) with scripted programs (fake_procs):
 * every timing claim is checked on both sides of its boundary, as
 * tarantool's SWIM tests do: no TERM at start + timeout - 1 ns, TERM at
 * start + timeout; no KILL 1 ns before the TERM + 2 s, KILL then; a retry
 * not 1 ns before its delay, and at it; the 65th hook not before a slot
 * frees, and exactly when it does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <inttypes.h>

#include "fake_loop.h"
#include "fake_procs.h"
#include "io/real.h"
#include "vigil/hooks.h"

/* Longest a test waits for real children, in ns. */
#define WAIT_MAX (10 * VIGIL_NSEC_PER_SEC)
/* Step of the waiting loops: short, so that tests stay fast. */
#define WAIT_STEP_NS (5 * VIGIL_NSEC_PER_MSEC)
/* The runner's bound on hooks running at once (HOOK_MAX_RUNNING in hooks.c). */
#define MAX_RUNNING 64
/* A virtual start time far from 0, so that arithmetic mistakes show. */
#define T0 (1000 * VIGIL_NSEC_PER_SEC)

/* ---- helpers ---- */

struct logcap {
    char *lines[2048];
    size_t n;
};

static void log_cb(void *arg, const char *line)
{
    struct logcap *c = arg;
    if (c->n < sizeof(c->lines) / sizeof(c->lines[0]))
        c->lines[c->n++] = strdup(line);
}

static size_t log_count(const struct logcap *c, const char *needle)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->lines[i] && strstr(c->lines[i], needle))
            k++;
    return k;
}

static void log_clear(struct logcap *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->lines[i]);
    c->n = 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

struct fix {
    char dir[64];
    struct logcap log;
    struct vio_loop *loop;   /* a real epoll loop */
    struct vio_procs *procs; /* real children, reaped through loop */
};

static int fix_setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/vigil-hooks-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    if (vio_loop_epoll_new(&f->loop) != 0 || vio_procs_real_new(f->loop, &f->procs) != 0) {
        vio_loop_free(f->loop);
        rmdir(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int fix_teardown(void **state)
{
    struct fix *f = *state;
    log_clear(&f->log);
    vio_procs_real_free(f->procs);
    vio_loop_free(f->loop);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void path_in(const struct fix *f, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", f->dir, name);
}

/* Writes an executable /bin/sh script into the test directory; its path goes to path. */
static void write_script(const struct fix *f, const char *name, const char *body, char *path,
                         size_t cap)
{
    path_in(f, name, path, cap);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "#!/bin/sh\n%s\n", body);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(path, 0755), 0);
}

/* The whole file as a string (caller frees), or NULL if it does not exist. */
static char *read_whole(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, fp)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

static char *read_in(const struct fix *f, const char *name)
{
    char p[256];
    path_in(f, name, p, sizeof(p));
    return read_whole(p);
}

static void sleep_step(void)
{
    const struct timespec ts = {0, WAIT_STEP_NS};
    nanosleep(&ts, NULL);
}

/* A bounded run of the loop: a timer checks the condition every step and stops the loop. */
struct run_ctx {
    struct vio_loop *loop;
    bool (*done)(void *arg);
    void *arg;
    vigil_time_t end;
    struct vio_timer tick;
    bool ok;
};

static void run_tick(void *arg, vigil_time_t now)
{
    struct run_ctx *c = arg;
    if (c->done && c->done(c->arg)) {
        c->ok = true;
        vio_loop_stop(c->loop);
    } else if (now >= c->end) {
        vio_loop_stop(c->loop);
    } else {
        assert_int_equal(vio_timer_arm(c->loop, &c->tick, now + WAIT_STEP_NS), 0);
    }
}

/*
 * Runs the real loop (vio_loop_run) until done(arg) holds, checked every
 * WAIT_STEP_NS, or for at most max of real time; true if done came. With
 * done NULL it simply runs for max.
 */
static bool run_until(struct fix *f, bool (*done)(void *), void *arg, vigil_time_t max)
{
    struct run_ctx c = {.loop = f->loop, .done = done, .arg = arg};
    c.end = vio_now(f->loop) + max;
    vio_timer_init(&c.tick, run_tick, &c);
    assert_int_equal(vio_timer_arm(f->loop, &c.tick, vio_now(f->loop)), 0);
    f->loop->stop = false;
    assert_int_equal(vio_loop_run(f->loop), 0);
    f->loop->stop = false;
    vio_timer_disarm(f->loop, &c.tick);
    return c.ok;
}

static bool runner_idle(void *r)
{
    return hook_runner_pending(r) == 0;
}

/* Runs the loop until nothing is pending; false after WAIT_MAX. */
static bool run_until_idle(struct fix *f, struct hook_runner *r)
{
    return run_until(f, runner_idle, r, WAIT_MAX);
}

/* Waits until a file exists in the test directory; false after WAIT_MAX. */
static bool wait_file(const struct fix *f, const char *name)
{
    char p[256];
    path_in(f, name, p, sizeof(p));
    vigil_time_t end = vigil_clock_mono() + WAIT_MAX;
    while (vigil_clock_mono() < end) {
        if (access(p, F_OK) == 0)
            return true;
        sleep_step();
    }
    return false;
}

/* True once pid is gone or a zombie (an orphan that init has not reaped yet). */
static bool process_gone(pid_t pid)
{
    vigil_time_t end = vigil_clock_mono() + WAIT_MAX;
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    while (vigil_clock_mono() < end) {
        char *s = read_whole(p);
        if (!s)
            return true;
        /* The state follows the command name in parentheses: "pid (comm) S ...". */
        char *rp = strrchr(s, ')');
        bool zombie = rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
        free(s);
        if (zombie)
            return true;
        sleep_step();
    }
    return false;
}

static pid_t pid_in(const struct fix *f, const char *name)
{
    char *s = read_in(f, name);
    assert_non_null(s);
    pid_t pid = (pid_t)atoi(s);
    free(s);
    assert_true(pid > 1);
    return pid;
}

/* The value of NAME in "NAME=value" lines, or NULL; copied into buf. */
static const char *env_get(const char *text, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            snprintf(buf, cap, "%.*s", (int)(len - n - 1), p + n + 1);
            return buf;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

static void assert_env(const char *text, const char *name, const char *want)
{
    char buf[256];
    const char *got = env_get(text, name, buf, sizeof(buf));
    if (!got)
        fail_msg("%s missing from the hook's environment", name);
    assert_string_equal(got, want);
}

static struct evrec make_event(uint64_t seq, const char *node, enum vigil_state from,
                               enum vigil_state to)
{
    struct evrec r;
    memset(&r, 0, sizeof(r));
    r.ev.seq = seq;
    r.ev.type = VIGIL_EVENT_STATE;
    r.ev.time = T0;
    snprintf(r.ev.node, sizeof(r.ev.node), "%s", node);
    r.ev.old_state = from;
    r.ev.new_state = to;
    r.ev.reason = "timeout";
    r.ev.since_last = INT64_C(5012000000);
    r.ev.level = 8.31;
    r.ev.threshold = 8.0;
    r.ev.mean = VIGIL_NSEC_PER_SEC;
    r.ev.std_dev = 10 * VIGIL_NSEC_PER_MSEC;
    r.ev.generation = 1795625000;
    r.ev.sequence = 977;
    r.ev.addr.family = AF_INET;
    r.ev.addr.addr[0] = 127;
    r.ev.addr.addr[3] = 1;
    r.ev.addr.port = 40012;
    /* 2026-11-25T17:00:00.123456Z */
    r.wall_us = INT64_C(1795626000) * 1000000 + 123456;
    return r;
}

static struct vcfg_hook hook_of(char *prog, char *a1, char *a2, vigil_time_t timeout,
                                uint32_t on_states)
{
    struct vcfg_hook h;
    memset(&h, 0, sizeof(h));
    h.argv[0] = prog;
    h.argv[1] = a1;
    h.argv[2] = a1 ? a2 : NULL;
    h.timeout = timeout;
    h.on_states = on_states;
    return h;
}

/* ---- tests ---- */

/* The event reaches the hook in its environment and on its standard input, verbatim. */
static void test_env_and_stdin(void **state)
{
    struct fix *f = *state;
    char prog[256];
    write_script(f, "record.sh",
                 /* First, with builtins only: the signal state the hook started with. */
                 "while read -r k v; do case $k in SigIgn:|SigBlk:) echo \"$k $v\";; esac\n"
                 "done < /proc/$$/status > \"$1/sig\"\n"
                 /* The raw environment, as execve gave it (duplicates would show). */
                 "tr '\\0' '\\n' < /proc/$$/environ | grep '^VIGIL' > \"$1/env\"\n"
                 "cat > \"$1/stdin\"\n"
                 "printf '%s' \"$2\" > \"$1/arg\"\n",
                 prog, sizeof(prog));
    /* Shell syntax in an argument stays data: no shell sits between us and the hook. */
    char tricky[] = "$(touch pwned); `id` 'q' \"d\" * ; exit 7";
    struct vcfg_hook h = hook_of(prog, f->dir, tricky, 10 * VIGIL_NSEC_PER_SEC, 0);

    /* The parent's environment is passed on, except what the runner sets itself. */
    setenv("VIGIL_TEST_PARENT", "kept", 1);
    setenv("VIGIL_NODE", "stale", 1);
    /* A blocked and an ignored signal in the monitor must not reach the hook. */
    sigset_t term, old_mask;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old_mask);
    struct sigaction ign, old_hup;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &ign, &old_hup);

    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, &h, 1, log_cb, &f->log, &r), 0);
    struct evrec ev = make_event(12, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &ev), 0);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    unsetenv("VIGIL_NODE");

    assert_true(run_until_idle(f, r));
    const struct hook_stats *st = hook_runner_stats(r);
    assert_int_equal(st->started, 1);
    assert_int_equal(st->succeeded, 1);
    assert_int_equal(st->failed, 0);
    assert_int_equal(st->queued, 1);
    assert_int_equal(log_count(&f->log, "exit 0 in"), 1);
    assert_int_equal(log_count(&f->log, "for event 12 (web3)"), 1);

    char *env = read_in(f, "env");
    assert_non_null(env);
    assert_env(env, "VIGIL_EVENT_SEQ", "12");
    assert_env(env, "VIGIL_EVENT_TYPE", "state");
    assert_env(env, "VIGIL_NODE", "web3");
    assert_env(env, "VIGIL_OLD_STATE", "alive");
    assert_env(env, "VIGIL_NEW_STATE", "dead");
    assert_env(env, "VIGIL_REASON", "timeout");
    assert_env(env, "VIGIL_TIME", "2026-11-25T17:00:00.123Z");
    assert_env(env, "VIGIL_SINCE_LAST", "5.012");
    assert_env(env, "VIGIL_LEVEL", "8.310");
    assert_env(env, "VIGIL_THRESHOLD", "8.000");
    assert_env(env, "VIGIL_MEAN", "1.000");
    assert_env(env, "VIGIL_STD_DEV", "0.010");
    assert_env(env, "VIGIL_ADDR", "127.0.0.1:40012");
    assert_env(env, "VIGIL_GENERATION", "1795625000");
    assert_env(env, "VIGIL_TEST_PARENT", "kept");
    /* Exactly one VIGIL_NODE: the stale one from the parent was replaced, not duplicated. */
    assert_non_null(strstr(env, "VIGIL_NODE=web3\n"));
    assert_null(strstr(env, "VIGIL_NODE=stale"));
    free(env);
    unsetenv("VIGIL_TEST_PARENT");

    char *in = read_in(f, "stdin");
    assert_non_null(in);
    size_t len = strlen(in);
    assert_true(len > 2);
    assert_int_equal(in[len - 1], '\n');
    /* Exactly one line: the only newline is the last byte. */
    assert_ptr_equal(strchr(in, '\n'), in + len - 1);
    json_error_t jerr;
    json_t *o = json_loads(in, 0, &jerr);
    free(in);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 12);
    assert_string_equal(json_string_value(json_object_get(o, "node")), "web3");
    assert_string_equal(json_string_value(json_object_get(o, "new_state")), "dead");
    json_t *evd = json_object_get(o, "evidence");
    assert_true(fabs(json_number_value(json_object_get(evd, "since_last_s")) - 5.012) < 1e-9);
    json_decref(o);

    char *arg = read_in(f, "arg");
    assert_non_null(arg);
    assert_string_equal(arg, tricky);
    free(arg);
    char pwned[256];
    path_in(f, "pwned", pwned, sizeof(pwned));
    assert_int_not_equal(access(pwned, F_OK), 0);

    /* SigBlk all zero; SigIgn without SIGHUP (bit 0) and SIGPIPE (bit 12). */
    char *sig = read_in(f, "sig");
    assert_non_null(sig);
    const char *b = strstr(sig, "SigBlk:");
    const char *i = strstr(sig, "SigIgn:");
    assert_non_null(b);
    assert_non_null(i);
    unsigned long long blocked = strtoull(b + 7, NULL, 16);
    unsigned long long ignored = strtoull(i + 7, NULL, 16);
    free(sig);
    assert_int_equal(blocked, 0);
    assert_int_equal(ignored & 1ULL << (SIGHUP - 1), 0);
    assert_int_equal(ignored & 1ULL << (SIGPIPE - 1), 0);
    hook_runner_free(r);
}

/* A pause event and a node never heard from: the variables that differ. */
static void test_env_pause_and_never_heard(void **state)
{
    struct fix *f = *state;
    char prog[256];
    write_script(f, "record.sh",
                 "env | grep '^VIGIL' > \"$1/env.$VIGIL_EVENT_SEQ\"\ncat > /dev/null\n", prog,
                 sizeof(prog));
    struct vcfg_hook h = hook_of(prog, f->dir, NULL, 10 * VIGIL_NSEC_PER_SEC, 0);
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, &h, 1, log_cb, &f->log, &r), 0);

    struct evrec ev = make_event(1, "db1", VIGIL_STATE_UNKNOWN, VIGIL_STATE_DEAD);
    ev.ev.since_last = -1;
    ev.ev.reason = "startup grace";
    memset(&ev.ev.addr, 0, sizeof(ev.ev.addr));
    assert_int_equal(hook_runner_submit(r, &ev), 0);

    struct evrec p;
    memset(&p, 0, sizeof(p));
    p.ev.seq = 2;
    p.ev.type = VIGIL_EVENT_PAUSE;
    p.ev.reason = "pause";
    p.ev.since_last = INT64_C(12345000000);
    p.wall_us = 0;
    assert_int_equal(hook_runner_submit(r, &p), 0);
    assert_true(run_until_idle(f, r));
    assert_int_equal(hook_runner_stats(r)->succeeded, 2);
    /* A pause event's log lines name the monitor, not a node. */
    assert_int_equal(log_count(&f->log, "for event 2 (monitor pause)"), 1);

    char *env = read_in(f, "env.1");
    assert_non_null(env);
    assert_env(env, "VIGIL_SINCE_LAST", "");
    assert_env(env, "VIGIL_OLD_STATE", "unknown");
    assert_env(env, "VIGIL_REASON", "startup grace");
    assert_env(env, "VIGIL_ADDR", "");
    free(env);
    env = read_in(f, "env.2");
    assert_non_null(env);
    assert_env(env, "VIGIL_EVENT_TYPE", "pause");
    assert_env(env, "VIGIL_NODE", "");
    assert_env(env, "VIGIL_OLD_STATE", "");
    assert_env(env, "VIGIL_NEW_STATE", "");
    assert_env(env, "VIGIL_SINCE_LAST", "12.345");
    assert_env(env, "VIGIL_TIME", "1970-01-01T00:00:00.000Z");
    free(env);
    hook_runner_free(r);
}

/* The n lines of text from line first on, sorted and joined (caller frees). */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *sorted_lines(const char *text, size_t first, size_t n)
{
    char *copy = strdup(text), *save = NULL, *lines[64];
    assert_non_null(copy);
    size_t k = 0;
    for (char *l = strtok_r(copy, "\n", &save); l && k < 64; l = strtok_r(NULL, "\n", &save))
        lines[k++] = l;
    assert_true(first + n <= k);
    qsort(lines + first, n, sizeof(*lines), cmp_str);
    size_t cap = strlen(text) + 2, used = 0;
    char *out = calloc(1, cap);
    assert_non_null(out);
    for (size_t i = first; i < first + n; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s\n", lines[i]);
    free(copy);
    return out;
}

/*
 * Events of one node run in order, and the hooks of one event start
 * together: the quick second hook does not wait for the slow first one,
 * while the node's second event (arrived meanwhile) waits for both.
 */
static void test_order_one_node(void **state)
{
    struct fix *f = *state;
    char a[256], b[256];
    write_script(f, "a.sh",
                 "echo \"A start $VIGIL_EVENT_SEQ\" >> \"$1/log\"\n"
                 "if [ \"$VIGIL_EVENT_SEQ\" = 1 ]; then sleep 0.3; fi\n"
                 "echo \"A end $VIGIL_EVENT_SEQ\" >> \"$1/log\"\n",
                 a, sizeof(a));
    write_script(f, "b.sh", "echo \"B $VIGIL_EVENT_SEQ\" >> \"$1/log\"\n", b, sizeof(b));
    struct vcfg_hook hs[2] = {
        hook_of(a, f->dir, NULL, 10 * VIGIL_NSEC_PER_SEC, 0),
        hook_of(b, f->dir, NULL, 10 * VIGIL_NSEC_PER_SEC, 0),
    };
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, hs, 2, log_cb, &f->log, &r), 0);
    struct evrec e1 = make_event(1, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    struct evrec e2 = make_event(2, "web3", VIGIL_STATE_DEAD, VIGIL_STATE_ALIVE);
    assert_int_equal(hook_runner_submit(r, &e1), 0);
    run_until(f, NULL, NULL, 20 * VIGIL_NSEC_PER_MSEC);
    assert_int_equal(hook_runner_submit(r, &e2), 0);
    /* Both hooks of the first event run; the second event's two runs wait behind them. */
    assert_int_equal(hook_runner_stats(r)->started, 2);
    assert_true(hook_runner_pending(r) >= 3 && hook_runner_pending(r) <= 4);
    assert_int_equal(hook_runner_stats(r)->queued, 4);

    assert_true(run_until_idle(f, r));
    char *log = read_in(f, "log");
    assert_non_null(log);
    /* B ran while A slept: it did not wait for it. */
    assert_non_null(strstr(log, "B 1\n"));
    assert_true(strstr(log, "B 1\n") < strstr(log, "A end 1\n"));
    /* Event 1's three lines, then event 2's. */
    char *first = sorted_lines(log, 0, 3), *second = sorted_lines(log, 3, 3);
    assert_string_equal(first, "A end 1\nA start 1\nB 1\n");
    assert_string_equal(second, "A end 2\nA start 2\nB 2\n");
    free(first);
    free(second);
    free(log);
    assert_int_equal(hook_runner_stats(r)->started, 4);
    assert_int_equal(hook_runner_stats(r)->succeeded, 4);
    hook_runner_free(r);
}

/* Events of two nodes run at the same time: each hook waits to see the other one start. */
static void test_two_nodes_concurrent(void **state)
{
    struct fix *f = *state;
    char prog[256];
    write_script(f, "meet.sh",
                 "touch \"$1/$VIGIL_NODE.up\"\n"
                 "other=a; [ \"$VIGIL_NODE\" = a ] && other=b\n"
                 "i=0\n"
                 "while [ $i -lt 100 ]; do\n"
                 "  [ -e \"$1/$other.up\" ] && exit 0\n"
                 "  sleep 0.05; i=$((i+1))\n"
                 "done\n"
                 "exit 1\n",
                 prog, sizeof(prog));
    struct vcfg_hook h = hook_of(prog, f->dir, NULL, 10 * VIGIL_NSEC_PER_SEC, 0);
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, &h, 1, log_cb, &f->log, &r), 0);
    struct evrec ea = make_event(1, "a", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    struct evrec eb = make_event(2, "b", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &ea), 0);
    assert_int_equal(hook_runner_submit(r, &eb), 0);
    assert_int_equal(hook_runner_stats(r)->started, 2);
    assert_true(run_until_idle(f, r));
    assert_int_equal(hook_runner_stats(r)->succeeded, 2);
    assert_int_equal(hook_runner_stats(r)->failed, 0);
    hook_runner_free(r);
}

/*
 * A hook past its timeout gets TERM, which reaches its children too. (The
 * exact instants, on both sides of each boundary, are checked on a virtual
 * clock below; here the real loop and real processes do it.)
 */
static void test_timeout_term(void **state)
{
    struct fix *f = *state;
    char prog[256];
    write_script(f, "slow.sh",
                 "sleep 30 &\necho $! > \"$1/child.tmp\"\nmv \"$1/child.tmp\" \"$1/child\"\n"
                 "wait\n",
                 prog, sizeof(prog));
    const vigil_time_t timeout = VIGIL_NSEC_PER_SEC;
    struct vcfg_hook h = hook_of(prog, f->dir, NULL, timeout, 0);
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, &h, 1, log_cb, &f->log, &r), 0);
    struct evrec ev = make_event(5, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    vigil_time_t start = vio_now(f->loop);
    assert_int_equal(hook_runner_submit(r, &ev), 0);
    assert_true(wait_file(f, "child"));
    pid_t child = pid_in(f, "child");

    assert_true(run_until_idle(f, r));
    vigil_time_t took = vio_now(f->loop) - start;
    const struct hook_stats *st = hook_runner_stats(r);
    assert_int_equal(st->timed_out, 1);
    assert_int_equal(st->failed, 0);
    assert_int_equal(st->succeeded, 0);
    assert_int_equal(log_count(&f->log, "sending SIGTERM"), 1);
    assert_int_equal(log_count(&f->log, "killed by signal 15"), 1);
    assert_int_equal(log_count(&f->log, "after timeout (SIGTERM)"), 1);
    assert_int_equal(log_count(&f->log, "SIGKILL"), 0);
    assert_true(took >= timeout);
    assert_true(process_gone(child));
    hook_runner_free(r);
}

/* A hook that ignores TERM gets KILL two seconds later; the group goes with it. */
static void test_timeout_kill(void **state)
{
    struct fix *f = *state;
    char prog[256];
    write_script(f, "stubborn.sh",
                 "trap '' TERM\nsleep 30 &\necho $! > \"$1/child.tmp\"\n"
                 "mv \"$1/child.tmp\" \"$1/child\"\nwait\nwait\n",
                 prog, sizeof(prog));
    const vigil_time_t timeout = 500 * VIGIL_NSEC_PER_MSEC;
    struct vcfg_hook h = hook_of(prog, f->dir, NULL, timeout, 0);
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, &h, 1, log_cb, &f->log, &r), 0);
    struct evrec ev = make_event(6, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    vigil_time_t start = vio_now(f->loop);
    assert_int_equal(hook_runner_submit(r, &ev), 0);
    /* The trap is in place once the child is recorded (well before the timeout). */
    assert_true(wait_file(f, "child"));
    pid_t child = pid_in(f, "child");

    assert_true(run_until_idle(f, r));
    vigil_time_t took = vio_now(f->loop) - start;
    assert_int_equal(hook_runner_stats(r)->timed_out, 1);
    assert_int_equal(log_count(&f->log, "sending SIGTERM"), 1);
    assert_int_equal(log_count(&f->log, "still running after SIGTERM"), 1);
    assert_int_equal(log_count(&f->log, "killed by signal 9"), 1);
    assert_int_equal(log_count(&f->log, "after timeout (SIGKILL)"), 1);
    /* The KILL cannot come before timeout + 2 s on the clock that drove it. */
    assert_true(took >= timeout + 2 * VIGIL_NSEC_PER_SEC);
    assert_true(process_gone(child));
    hook_runner_free(r);
}

/* on_states picks the events a hook gets; pause events go only to hooks without a filter. */
static void test_on_states_filter(void **state)
{
    struct fix *f = *state;
    char prog[256];
    write_script(f, "tag.sh", "echo \"$2 $VIGIL_EVENT_SEQ $VIGIL_EVENT_TYPE\" >> \"$1/log\"\n",
                 prog, sizeof(prog));
    struct vcfg_hook hs[3] = {
        hook_of(prog, f->dir, "H1", 10 * VIGIL_NSEC_PER_SEC, 1u << VIGIL_STATE_DEAD),
        hook_of(prog, f->dir, "H2", 10 * VIGIL_NSEC_PER_SEC, 0),
        hook_of(prog, f->dir, "H3", 10 * VIGIL_NSEC_PER_SEC,
                1u << VIGIL_STATE_ALIVE | 1u << VIGIL_STATE_SUSPECT),
    };
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, hs, 3, log_cb, &f->log, &r), 0);

    struct evrec e1 = make_event(1, "n1", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &e1), 0);
    assert_int_equal(hook_runner_pending(r), 2);
    assert_true(run_until_idle(f, r));

    struct evrec p;
    memset(&p, 0, sizeof(p));
    p.ev.seq = 2;
    p.ev.type = VIGIL_EVENT_PAUSE;
    /* A pause carries no new state; a stray value must not select H1 or H3. */
    p.ev.new_state = VIGIL_STATE_DEAD;
    assert_int_equal(hook_runner_submit(r, &p), 0);
    assert_int_equal(hook_runner_pending(r), 1);
    assert_true(run_until_idle(f, r));

    struct evrec e3 = make_event(3, "n1", VIGIL_STATE_DEAD, VIGIL_STATE_ALIVE);
    assert_int_equal(hook_runner_submit(r, &e3), 0);
    assert_int_equal(hook_runner_pending(r), 2);
    assert_true(run_until_idle(f, r));

    char *log = read_in(f, "log");
    assert_non_null(log);
    /* The hooks of one event run together: in any order within it. */
    char *lines = sorted_lines(log, 0, 5);
    assert_string_equal(lines, "H1 1 state\nH2 1 state\nH2 2 pause\nH2 3 state\nH3 3 state\n");
    free(lines);
    free(log);
    assert_int_equal(hook_runner_stats(r)->queued, 5);
    assert_int_equal(hook_runner_stats(r)->succeeded, 5);
    hook_runner_free(r);

    /* With only filtered hooks, an event nobody wants queues nothing. */
    assert_int_equal(hook_runner_new(f->loop, f->procs, hs, 1, log_cb, &f->log, &r), 0);
    struct evrec e4 = make_event(4, "n1", VIGIL_STATE_SUSPECT, VIGIL_STATE_ALIVE);
    assert_int_equal(hook_runner_submit(r, &e4), 0);
    assert_int_equal(hook_runner_pending(r), 0);
    assert_int_equal(hook_runner_stats(r)->queued, 0);
    assert_int_equal(hook_runner_stats(r)->started, 0);
    assert_int_equal(hook_runner_submit(r, &p), 0);
    assert_int_equal(hook_runner_pending(r), 0);
    hook_runner_free(r);
}

/* A hook that cannot start is counted and logged, and the next hook still runs. */
static void test_spawn_errors(void **state)
{
    struct fix *f = *state;
    char ok[256], noexec[256];
    write_script(f, "ok.sh", "echo ran > \"$1/ran\"\n", ok, sizeof(ok));
    write_script(f, "noexec.sh", "exit 0\n", noexec, sizeof(noexec));
    assert_int_equal(chmod(noexec, 0644), 0);
    struct vcfg_hook hs[4] = {
        hook_of("/nonexistent/vigil-hook", NULL, NULL, 10 * VIGIL_NSEC_PER_SEC, 0),
        hook_of("vigil-no-such-hook-in-path", NULL, NULL, 10 * VIGIL_NSEC_PER_SEC, 0),
        hook_of(noexec, NULL, NULL, 10 * VIGIL_NSEC_PER_SEC, 0),
        hook_of(ok, f->dir, NULL, 10 * VIGIL_NSEC_PER_SEC, 0),
    };
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, hs, 4, log_cb, &f->log, &r), 0);
    struct evrec ev = make_event(9, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &ev), 0);
    const struct hook_stats *st = hook_runner_stats(r);
    assert_int_equal(st->spawn_errors, 3);
    assert_int_equal(st->started, 1);
    assert_int_equal(hook_runner_pending(r), 1);
    assert_int_equal(log_count(&f->log, "cannot start"), 3);
    assert_int_equal(log_count(&f->log, "/nonexistent/vigil-hook for event 9 (web3): cannot "
                                        "start: No such file or directory"),
                     1);
    assert_int_equal(log_count(&f->log, "Permission denied"), 1);
    assert_true(run_until_idle(f, r));
    assert_int_equal(st->succeeded, 1);
    char *ran = read_in(f, "ran");
    assert_non_null(ran);
    free(ran);
    hook_runner_free(r);
}

/* Non-zero exit and death by a signal nobody sent count as failed, not timed out. */
static void test_failures(void **state)
{
    struct fix *f = *state;
    char prog[256];
    write_script(f, "fail.sh",
                 "if [ \"$VIGIL_EVENT_SEQ\" = 1 ]; then exit 3; fi\nkill -USR1 $$\nsleep 5\n", prog,
                 sizeof(prog));
    struct vcfg_hook h = hook_of(prog, NULL, NULL, 10 * VIGIL_NSEC_PER_SEC, 0);
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, &h, 1, log_cb, &f->log, &r), 0);
    struct evrec e1 = make_event(1, "a", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    struct evrec e2 = make_event(2, "b", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &e1), 0);
    assert_int_equal(hook_runner_submit(r, &e2), 0);
    assert_true(run_until_idle(f, r));
    const struct hook_stats *st = hook_runner_stats(r);
    assert_int_equal(st->failed, 2);
    assert_int_equal(st->timed_out, 0);
    assert_int_equal(st->succeeded, 0);
    assert_int_equal(log_count(&f->log, "for event 1 (a): exit 3 in"), 1);
    char want[64];
    snprintf(want, sizeof(want), "for event 2 (b): killed by signal %d", SIGUSR1);
    assert_int_equal(log_count(&f->log, want), 1);
    /* Not retried. */
    assert_int_equal(st->started, 2);
    hook_runner_free(r);
}

/*
 * A failed run goes again after retry_delay, doubling, up to `retries`
 * times; the node's next event waits for it, and VIGIL_ATTEMPT counts.
 */
static void test_retries(void **state)
{
    struct fix *f = *state;
    char prog[256];
    write_script(
        f, "flaky.sh",
        "c=\"$1/count-$VIGIL_NODE-$VIGIL_EVENT_SEQ\"\n"
        "n=$(cat \"$c\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$c\"\n"
        "echo \"$VIGIL_NODE $VIGIL_EVENT_SEQ attempt $VIGIL_ATTEMPT\" >> \"$1/log-$VIGIL_NODE\"\n"
        "if [ \"$VIGIL_NODE\" = z ]; then exit 7; fi\n"
        "if [ \"$VIGIL_EVENT_SEQ\" = 1 ] && [ $n -lt 2 ]; then exit 1; fi\n",
        prog, sizeof(prog));
    struct vcfg_hook h = hook_of(prog, f->dir, NULL, 10 * VIGIL_NSEC_PER_SEC, 0);
    h.retries = 2;
    h.retry_delay = 50 * VIGIL_NSEC_PER_MSEC;
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, &h, 1, log_cb, &f->log, &r), 0);
    struct evrec e1 = make_event(1, "a", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    struct evrec e2 = make_event(2, "a", VIGIL_STATE_DEAD, VIGIL_STATE_ALIVE);
    struct evrec e3 = make_event(3, "z", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &e1), 0);
    assert_int_equal(hook_runner_submit(r, &e2), 0);
    assert_int_equal(hook_runner_submit(r, &e3), 0);
    assert_true(run_until_idle(f, r));
    char *log = read_in(f, "log-a");
    assert_non_null(log);
    /* Event 1 failed once and went again before event 2 started. */
    assert_string_equal(log, "a 1 attempt 1\na 1 attempt 2\na 2 attempt 1\n");
    free(log);
    log = read_in(f, "log-z");
    assert_non_null(log);
    assert_string_equal(log, "z 3 attempt 1\nz 3 attempt 2\nz 3 attempt 3\n");
    free(log);
    const struct hook_stats *st = hook_runner_stats(r);
    assert_int_equal(st->started, 6);
    assert_int_equal(st->retried, 3);
    assert_int_equal(st->gave_up, 1);
    assert_int_equal(st->succeeded, 2);
    assert_int_equal(st->failed, 4);
    assert_int_equal(log_count(&f->log, "retry 1 of 2 in 50ms"), 2);
    assert_int_equal(log_count(&f->log, "retry 2 of 2 in 100ms"), 1);
    assert_int_equal(log_count(&f->log, "giving up after 3 runs"), 1);
    hook_runner_free(r);
}

/* hook_runner_free stops running hooks: TERM, and KILL for one that ignores it. */
static void test_free_stops_hooks(void **state)
{
    struct fix *f = *state;
    char prog[256];
    write_script(f, "hang.sh",
                 "if [ \"$VIGIL_NODE\" = stubborn ]; then trap '' TERM; fi\n"
                 "sleep 30 &\necho $! > \"$1/$VIGIL_NODE.tmp\"\n"
                 "mv \"$1/$VIGIL_NODE.tmp\" \"$1/$VIGIL_NODE\"\nwait\nwait\n",
                 prog, sizeof(prog));
    struct vcfg_hook h = hook_of(prog, f->dir, NULL, 60 * VIGIL_NSEC_PER_SEC, 0);
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, &h, 1, log_cb, &f->log, &r), 0);
    struct evrec e1 = make_event(1, "polite", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    struct evrec e2 = make_event(2, "stubborn", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    struct evrec e3 = make_event(3, "stubborn", VIGIL_STATE_DEAD, VIGIL_STATE_ALIVE);
    assert_int_equal(hook_runner_submit(r, &e1), 0);
    assert_int_equal(hook_runner_submit(r, &e2), 0);
    assert_int_equal(hook_runner_submit(r, &e3), 0);
    assert_true(wait_file(f, "polite"));
    assert_true(wait_file(f, "stubborn"));
    pid_t p1 = pid_in(f, "polite"), p2 = pid_in(f, "stubborn");
    hook_runner_free(r);
    assert_int_equal(log_count(&f->log, "1 hook runs not started"), 1);
    assert_int_equal(log_count(&f->log, "stopping it (SIGTERM)"), 2);
    assert_int_equal(log_count(&f->log, "(stubborn): still running, sending SIGKILL"), 1);
    assert_int_equal(log_count(&f->log, "(polite): still running"), 0);
    assert_true(process_gone(p1));
    assert_true(process_gone(p2));
}

/* A burst larger than the bound runs MAX_RUNNING at a time, then the rest. */
static void test_concurrency_bound(void **state)
{
    struct fix *f = *state;
    char prog[256];
    write_script(f, "gate.sh",
                 "i=0\n"
                 "while [ $i -lt 200 ]; do\n"
                 "  [ -e \"$1/go\" ] && exit 0\n"
                 "  sleep 0.05; i=$((i+1))\n"
                 "done\n"
                 "exit 1\n",
                 prog, sizeof(prog));
    struct vcfg_hook h = hook_of(prog, f->dir, NULL, 30 * VIGIL_NSEC_PER_SEC, 0);
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, &h, 1, log_cb, &f->log, &r), 0);
    const size_t n = MAX_RUNNING + 6;
    for (size_t i = 0; i < n; i++) {
        char node[16];
        snprintf(node, sizeof(node), "n%zu", i);
        struct evrec ev = make_event(i + 1, node, VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
        assert_int_equal(hook_runner_submit(r, &ev), 0);
    }
    assert_int_equal(hook_runner_stats(r)->started, MAX_RUNNING);
    assert_int_equal(hook_runner_pending(r), n);
    /* The loop turns while all of them wait for "go": nobody else starts. */
    run_until(f, NULL, NULL, 100 * VIGIL_NSEC_PER_MSEC);
    assert_int_equal(hook_runner_stats(r)->started, MAX_RUNNING);

    char go[256];
    path_in(f, "go", go, sizeof(go));
    FILE *fp = fopen(go, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_true(run_until_idle(f, r));
    assert_int_equal(hook_runner_stats(r)->started, n);
    assert_int_equal(hook_runner_stats(r)->succeeded, n);
    hook_runner_free(r);
}

/*
 * Hooks that never read their input: writing it may meet EPIPE, which is
 * not an error (SIGPIPE is ignored; see test_procs_real for that).
 */
static void test_unread_stdin(void **state)
{
    struct fix *f = *state;
    struct vcfg_hook h = hook_of("/bin/true", NULL, NULL, 10 * VIGIL_NSEC_PER_SEC, 0);
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(f->loop, f->procs, &h, 1, log_cb, &f->log, &r), 0);
    /* Room for all 20 (16 wait per node by default): none is coalesced. */
    assert_int_equal(hook_runner_set_limits(r, 32, 32), 0);
    for (uint64_t i = 1; i <= 20; i++) {
        struct evrec ev = make_event(i, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
        assert_int_equal(hook_runner_submit(r, &ev), 0);
    }
    assert_true(run_until_idle(f, r));
    assert_int_equal(hook_runner_stats(r)->succeeded, 20);
    assert_int_equal(hook_runner_stats(r)->coalesced, 0);
    hook_runner_free(r);
}

static void test_bad_arguments(void **state)
{
    struct fix *f = *state;
    struct hook_runner *r = NULL;
    struct vcfg_hook empty;
    memset(&empty, 0, sizeof(empty));
    assert_int_equal(hook_runner_new(f->loop, f->procs, &empty, 1, NULL, NULL, &r), -VIGIL_EINVAL);
    assert_null(r);
    assert_int_equal(hook_runner_new(f->loop, f->procs, NULL, 1, NULL, NULL, &r), -VIGIL_EINVAL);
    assert_int_equal(hook_runner_new(NULL, f->procs, NULL, 0, NULL, NULL, &r), -VIGIL_EINVAL);
    assert_int_equal(hook_runner_new(f->loop, NULL, NULL, 0, NULL, NULL, &r), -VIGIL_EINVAL);
    /* No hooks at all is valid: every event is simply not queued. */
    assert_int_equal(hook_runner_new(f->loop, f->procs, NULL, 0, NULL, NULL, &r), 0);
    struct evrec ev = make_event(1, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &ev), 0);
    assert_int_equal(hook_runner_pending(r), 0);
    assert_int_equal(hook_runner_submit(r, NULL), -VIGIL_EINVAL);
    assert_int_equal(f->loop->n_timers, 0);
    hook_runner_free(r);
    hook_runner_free(NULL);
}

/* ---- virtual time: the fake loop and scripted programs ---- */

/*
 * These run the runner on a fake loop (tests/sim/fake_loop.h) with fake
 * children (fake_procs.h), so that every instant is exact: a claim such
 * as "TERM at start + timeout" is checked at start + timeout - 1 ns (not
 * yet) and at start + timeout (now).
 */
struct vfix {
    vigil_time_t clock;
    struct vio_loop *loop;
    struct vio_procs *procs;
    struct logcap log;
};

/* What a scripted program does: in its arg. */
struct prog_spec {
    int exit_code;
    vigil_time_t runs_for;
    bool ignore_term;
    uint32_t fail_until; /* exit 1 while VIGIL_ATTEMPT is below this (0: never) */
};

static void prog_run(void *arg, const struct fake_spawn *sp, struct fake_outcome *out)
{
    const struct prog_spec *p = arg;
    out->exit_code = p->exit_code;
    out->runs_for = p->runs_for;
    out->ignore_term = p->ignore_term;
    const char *attempt = fake_spawn_env(sp, "VIGIL_ATTEMPT");
    if (p->fail_until && attempt && (uint32_t)atoi(attempt) < p->fail_until)
        out->exit_code = 1;
}

static const struct prog_spec P_QUICK = {.runs_for = 10 * VIGIL_NSEC_PER_MSEC};
static const struct prog_spec P_HANG = {.runs_for = FAKE_PROC_FOREVER};
static const struct prog_spec P_STUBBORN = {.runs_for = FAKE_PROC_FOREVER, .ignore_term = true};
static const struct prog_spec P_FAIL = {.exit_code = 1, .runs_for = 100 * VIGIL_NSEC_PER_MSEC};
/* Fails its first run, succeeds on the second. */
static const struct prog_spec P_FLAKY = {.runs_for = 100 * VIGIL_NSEC_PER_MSEC, .fail_until = 2};
static const struct prog_spec P_LONG = {.runs_for = 10 * VIGIL_NSEC_PER_SEC};

/* Events up to this sequence number hold the "hold" program for a minute; later ones are quick. */
static uint64_t hold_through;
#define HOLD_FOR (60 * VIGIL_NSEC_PER_SEC)

static void hold_run(void *arg, const struct fake_spawn *sp, struct fake_outcome *out)
{
    (void)arg;
    const char *seq = fake_spawn_env(sp, "VIGIL_EVENT_SEQ");
    bool hold = seq && strtoull(seq, NULL, 10) <= hold_through;
    out->runs_for = hold ? HOLD_FOR : 10 * VIGIL_NSEC_PER_MSEC;
}

static int vfix_setup(void **state)
{
    struct vfix *v = calloc(1, sizeof(*v));
    if (!v)
        return -1;
    v->clock = T0;
    v->loop = fake_loop_new(&v->clock);
    v->procs = v->loop ? fake_procs_new(v->loop) : NULL;
    if (!v->procs) {
        vio_loop_free(v->loop);
        free(v);
        return -1;
    }
    const struct {
        const char *name;
        const struct prog_spec *spec;
    } progs[] = {{"quick", &P_QUICK}, {"hang", &P_HANG},   {"stubborn", &P_STUBBORN},
                 {"fail", &P_FAIL},   {"flaky", &P_FLAKY}, {"long", &P_LONG}};
    for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++)
        if (fake_procs_register(v->procs, progs[i].name, prog_run, (void *)progs[i].spec) != 0)
            return -1;
    if (fake_procs_register(v->procs, "hold", hold_run, NULL) != 0)
        return -1;
    *state = v;
    return 0;
}

static int vfix_teardown(void **state)
{
    struct vfix *v = *state;
    log_clear(&v->log);
    fake_procs_free(v->procs);
    vio_loop_free(v->loop);
    free(v);
    return 0;
}

static struct hook_runner *vrunner(struct vfix *v, const struct vcfg_hook *hs, size_t n)
{
    struct hook_runner *r = NULL;
    assert_int_equal(hook_runner_new(v->loop, v->procs, hs, n, log_cb, &v->log, &r), 0);
    return r;
}

static const struct fake_spawn *spawn_at(const struct vfix *v, size_t i)
{
    const struct fake_spawn *sp = fake_procs_spawn_at(v->procs, i);
    assert_non_null(sp);
    return sp;
}

/* The event reaches the program in its environment and on its standard input. */
static void test_v_env_and_stdin(void **state)
{
    struct vfix *v = *state;
    struct vcfg_hook h = hook_of("quick", "--flag", NULL, 10 * VIGIL_NSEC_PER_SEC, 0);
    struct hook_runner *r = vrunner(v, &h, 1);
    struct evrec ev = make_event(12, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &ev), 0);
    assert_int_equal(fake_procs_count(v->procs), 1);
    const struct fake_spawn *sp = spawn_at(v, 0);
    assert_string_equal(sp->argv[0], "quick");
    assert_string_equal(sp->argv[1], "--flag");
    assert_null(sp->argv[2]);
    assert_string_equal(fake_spawn_env(sp, "VIGIL_NODE"), "web3");
    assert_string_equal(fake_spawn_env(sp, "VIGIL_EVENT_SEQ"), "12");
    assert_string_equal(fake_spawn_env(sp, "VIGIL_ATTEMPT"), "1");
    assert_int_equal(sp->start, T0);
    json_error_t jerr;
    json_t *o = json_loads(sp->stdin_data, 0, &jerr);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 12);
    json_decref(o);
    assert_int_equal(sp->stdin_data[sp->stdin_len - 1], '\n');

    fake_loop_run_until(v->loop, T0 + VIGIL_NSEC_PER_SEC);
    assert_int_equal(sp->end, T0 + 10 * VIGIL_NSEC_PER_MSEC);
    assert_int_equal(hook_runner_stats(r)->succeeded, 1);
    assert_int_equal(log_count(&v->log, "hook quick for event 12 (web3): exit 0 in 10ms"), 1);
    hook_runner_free(r);
}

/* TERM exactly at start + timeout, not a nanosecond before; a polite hook ends there. */
static void test_v_term_exact(void **state)
{
    struct vfix *v = *state;
    const vigil_time_t timeout = 3 * VIGIL_NSEC_PER_SEC;
    struct vcfg_hook h = hook_of("hang", NULL, NULL, timeout, 0);
    struct hook_runner *r = vrunner(v, &h, 1);
    fake_loop_run_until(v->loop, T0 + 7); /* the start need not be a round number */
    const vigil_time_t start = v->clock;
    struct evrec ev = make_event(5, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &ev), 0);
    const struct fake_spawn *sp = spawn_at(v, 0);
    assert_int_equal(sp->start, start);

    fake_loop_run_until(v->loop, start + timeout - 1);
    assert_int_equal(sp->term_at, VIGIL_TIME_NEVER);
    assert_int_equal(sp->n_signals, 0);
    assert_int_equal(log_count(&v->log, "SIGTERM"), 0);
    assert_int_equal(hook_runner_pending(r), 1);

    fake_loop_run_until(v->loop, start + timeout);
    assert_int_equal(sp->term_at, start + timeout);
    assert_int_equal(sp->end, start + timeout);
    assert_int_equal(sp->kill_at, VIGIL_TIME_NEVER);
    assert_int_equal(log_count(&v->log, "timed out after 3s, sending SIGTERM"), 1);
    assert_int_equal(log_count(&v->log, "killed by signal 15"), 1);
    assert_int_equal(hook_runner_pending(r), 0);
    assert_int_equal(hook_runner_stats(r)->timed_out, 1);

    /* Nothing is left to fire: no KILL for a hook that is gone. */
    assert_int_equal(fake_loop_next(v->loop), VIGIL_TIME_NEVER);
    hook_runner_free(r);
}

/* KILL exactly 2 s after the TERM, not before, for a hook that ignores TERM. */
static void test_v_kill_exact(void **state)
{
    struct vfix *v = *state;
    const vigil_time_t timeout = 500 * VIGIL_NSEC_PER_MSEC;
    const vigil_time_t term_at = T0 + timeout, kill_at = term_at + 2 * VIGIL_NSEC_PER_SEC;
    struct vcfg_hook h = hook_of("stubborn", NULL, NULL, timeout, 0);
    struct hook_runner *r = vrunner(v, &h, 1);
    struct evrec ev = make_event(6, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &ev), 0);
    const struct fake_spawn *sp = spawn_at(v, 0);

    fake_loop_run_until(v->loop, term_at);
    assert_int_equal(sp->term_at, term_at);
    assert_int_equal(sp->end, VIGIL_TIME_NEVER);

    fake_loop_run_until(v->loop, kill_at - 1);
    assert_int_equal(sp->kill_at, VIGIL_TIME_NEVER);
    assert_int_equal(sp->end, VIGIL_TIME_NEVER);
    assert_int_equal(log_count(&v->log, "SIGKILL"), 0);
    assert_int_equal(hook_runner_stats(r)->timed_out, 0);
    assert_int_equal(hook_runner_pending(r), 1);

    fake_loop_run_until(v->loop, kill_at);
    assert_int_equal(sp->kill_at, kill_at);
    assert_int_equal(sp->end, kill_at);
    assert_int_equal(log_count(&v->log, "still running after SIGTERM (2.5s), sending SIGKILL"), 1);
    assert_int_equal(log_count(&v->log, "killed by signal 9"), 1);
    assert_int_equal(log_count(&v->log, "in 2.5s after timeout (SIGKILL)"), 1);
    assert_int_equal(hook_runner_stats(r)->timed_out, 1);
    assert_int_equal(hook_runner_pending(r), 0);
    hook_runner_free(r);
}

/*
 * Retries start exactly retry_delay, 2 x retry_delay, 4 x retry_delay after
 * each failed run ends, and not a nanosecond before; then it gives up.
 */
static void test_v_retry_exact(void **state)
{
    struct vfix *v = *state;
    const vigil_time_t run = P_FAIL.runs_for, delay = VIGIL_NSEC_PER_SEC;
    struct vcfg_hook h = hook_of("fail", NULL, NULL, 10 * VIGIL_NSEC_PER_SEC, 0);
    h.retries = 3;
    h.retry_delay = delay;
    struct hook_runner *r = vrunner(v, &h, 1);
    struct evrec ev = make_event(8, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &ev), 0);

    vigil_time_t start = T0;
    for (uint32_t k = 0; k < 3; k++) {
        const struct fake_spawn *sp = spawn_at(v, k);
        assert_int_equal(sp->start, start);
        char want[8];
        snprintf(want, sizeof(want), "%" PRIu32, k + 1);
        assert_string_equal(fake_spawn_env(sp, "VIGIL_ATTEMPT"), want);
        vigil_time_t next = start + run + (delay << k);
        fake_loop_run_until(v->loop, next - 1);
        assert_int_equal(fake_procs_count(v->procs), k + 1);
        assert_int_equal(hook_runner_pending(r), 1);
        fake_loop_run_until(v->loop, next);
        assert_int_equal(fake_procs_count(v->procs), k + 2);
        start = next;
    }
    const struct fake_spawn *last = spawn_at(v, 3);
    assert_int_equal(last->start, start);
    assert_string_equal(fake_spawn_env(last, "VIGIL_ATTEMPT"), "4");
    fake_loop_run_until(v->loop, start + 60 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(fake_procs_count(v->procs), 4);
    assert_int_equal(hook_runner_pending(r), 0);
    const struct hook_stats *st = hook_runner_stats(r);
    assert_int_equal(st->started, 4);
    assert_int_equal(st->retried, 3);
    assert_int_equal(st->failed, 4);
    assert_int_equal(st->gave_up, 1);
    assert_int_equal(log_count(&v->log, "retry 1 of 3 in 1s"), 1);
    assert_int_equal(log_count(&v->log, "retry 2 of 3 in 2s"), 1);
    assert_int_equal(log_count(&v->log, "retry 3 of 3 in 4s"), 1);
    assert_int_equal(log_count(&v->log, "giving up after 4 runs"), 1);
    hook_runner_free(r);
}

/* A scripted gate: what it answers, and what it was asked and told. */
struct tgate {
    enum hook_verdict answer; /* to every ask */
    int64_t epoch;            /* given with HOOK_GO */
    bool allow_retry;
    unsigned asks, done_calls, done_ok, retry_asks;
    uint64_t last_ticket;
    char last_node[VIGIL_ID_MAX + 1];
    int64_t done_epoch;
};

static enum hook_verdict tg_ask(void *arg, const struct evrec *ev, uint64_t ticket, int64_t *epoch)
{
    struct tgate *g = arg;
    g->asks++;
    g->last_ticket = ticket;
    snprintf(g->last_node, sizeof(g->last_node), "%s", ev->ev.node);
    *epoch = g->epoch;
    return g->answer;
}

static bool tg_may_retry(void *arg, const struct evrec *ev, int64_t epoch)
{
    struct tgate *g = arg;
    (void)ev;
    (void)epoch;
    g->retry_asks++;
    return g->allow_retry;
}

static void tg_done(void *arg, const struct evrec *ev, int64_t epoch, bool ok)
{
    struct tgate *g = arg;
    (void)ev;
    g->done_calls++;
    g->done_ok += ok;
    g->done_epoch = epoch;
}

/*
 * The gate: a held event waits (and its node's later events behind it)
 * until answered; GO runs it with the epoch in VIGIL_EPOCH; SKIP drops
 * it; an answer with a stale ticket is ignored; a retry the gate refuses
 * sends the event back to the gate, whole, to run again when it says go.
 */
static void test_v_gate(void **state)
{
    struct vfix *v = *state;
    struct vcfg_hook h = hook_of("flaky", NULL, NULL, 10 * VIGIL_NSEC_PER_SEC, 0);
    h.retries = 2;
    h.retry_delay = VIGIL_NSEC_PER_SEC;
    struct hook_runner *r = vrunner(v, &h, 1);
    struct tgate g = {.answer = HOOK_WAIT, .allow_retry = true};
    struct hook_gate hg = {.ask = tg_ask, .may_retry = tg_may_retry, .done = tg_done, .arg = &g};
    hook_runner_set_gate(r, &hg);

    struct evrec e1 = make_event(1, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    struct evrec e2 = make_event(2, "web3", VIGIL_STATE_DEAD, VIGIL_STATE_ALIVE);
    assert_int_equal(hook_runner_submit(r, &e1), 0);
    assert_int_equal(hook_runner_submit(r, &e2), 0);
    assert_int_equal(g.asks, 1); /* only the head is asked about */
    assert_int_equal(hook_runner_held(r), 1);
    fake_loop_run_until(v->loop, T0 + 10 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(fake_procs_count(v->procs), 0); /* held: nothing runs */

    /* A stale ticket changes nothing; the right one drops e1, and e2 is asked about. */
    uint64_t t1 = g.last_ticket;
    hook_runner_gate_answer(r, "web3", t1 + 100, HOOK_GO, 7);
    assert_int_equal(hook_runner_held(r), 1);
    hook_runner_gate_answer(r, "web3", t1, HOOK_SKIP, 0);
    assert_int_equal(g.asks, 2);
    assert_int_equal(fake_procs_count(v->procs), 0);
    assert_int_equal(g.done_calls, 0); /* a skipped event is not done */

    /* GO with epoch 7: e2 runs (its first run fails; the retry is asked about). */
    g.allow_retry = false;
    hook_runner_gate_answer(r, "web3", g.last_ticket, HOOK_GO, 7);
    assert_int_equal(hook_runner_held(r), 0);
    assert_int_equal(fake_procs_count(v->procs), 1);
    assert_string_equal(fake_spawn_env(spawn_at(v, 0), "VIGIL_EPOCH"), "7");
    assert_string_equal(fake_spawn_env(spawn_at(v, 0), "VIGIL_EVENT_SEQ"), "2");
    vigil_time_t t = v->clock;
    fake_loop_run_until(v->loop, t + 2 * VIGIL_NSEC_PER_SEC);
    /* The retry was refused: no second run, and e2 is back at the gate. */
    assert_int_equal(g.retry_asks, 1);
    assert_int_equal(fake_procs_count(v->procs), 1);
    assert_int_equal(log_count(&v->log, "retry put off"), 1);
    assert_int_equal(g.asks, 3);
    assert_int_equal(hook_runner_held(r), 1);
    assert_int_equal(g.done_calls, 0);
    assert_int_equal(hook_runner_pending(r), 1);

    /* Asked again (a new leader) and let go under epoch 9: it runs whole again and is done. */
    g.answer = HOOK_GO;
    g.epoch = 9;
    g.allow_retry = true;
    hook_runner_gate_reask(r);
    assert_int_equal(hook_runner_held(r), 0);
    assert_int_equal(fake_procs_count(v->procs), 2);
    assert_string_equal(fake_spawn_env(spawn_at(v, 1), "VIGIL_EPOCH"), "9");
    assert_string_equal(fake_spawn_env(spawn_at(v, 1), "VIGIL_ATTEMPT"), "1");
    fake_loop_run_until(v->loop, v->clock + 5 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(fake_procs_count(v->procs), 3); /* its retry, allowed now, succeeds */
    assert_int_equal(g.done_calls, 1);
    assert_int_equal(g.done_ok, 1);
    assert_int_equal(g.done_epoch, 9);
    assert_int_equal(hook_runner_pending(r), 0);

    /* A synchronous SKIP drops the event at once. */
    g.answer = HOOK_SKIP;
    struct evrec e3 = make_event(3, "web4", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &e3), 0);
    assert_int_equal(hook_runner_pending(r), 0);
    assert_int_equal(hook_runner_held(r), 0);
    assert_int_equal(fake_procs_count(v->procs), 3);
    hook_runner_free(r);
}

/*
 * Actions that undo run in turn, in the list's order, and their undos in
 * the reverse order: each starts when the one before it ended.
 */
static void test_v_ordered_and_undo(void **state)
{
    struct vfix *v = *state;
    struct vcfg_hook hs[3] = {
        hook_of("quick", "fence", NULL, 10 * VIGIL_NSEC_PER_SEC, 1u << VIGIL_STATE_DEAD),
        hook_of("quick", "lb", NULL, 10 * VIGIL_NSEC_PER_SEC, 1u << VIGIL_STATE_DEAD),
        hook_of("quick", "notify", NULL, 10 * VIGIL_NSEC_PER_SEC, 0),
    };
    hs[0].undo = hs[1].undo = true;
    struct hook_runner *r = vrunner(v, hs, 3);
    struct evrec e1 = make_event(1, "a", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    struct evrec e2 = make_event(2, "a", VIGIL_STATE_DEAD, VIGIL_STATE_ALIVE);
    assert_int_equal(hook_runner_submit(r, &e1), 0);
    assert_int_equal(hook_runner_submit(r, &e2), 0);
    fake_loop_run_until(v->loop, T0 + 10 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(hook_runner_pending(r), 0);
    /* (seq, action, do/undo, start): notify starts with its event, the others in turn. */
    const char *want[] = {"1 notify do", "1 fence do", "1 lb do",
                          "2 notify do", "2 lb undo",  "2 fence undo"};
    assert_int_equal(fake_procs_count(v->procs), 6);
    vigil_time_t prev_start = 0;
    for (size_t i = 0; i < 6; i++) {
        const struct fake_spawn *sp = spawn_at(v, i);
        char got[64];
        snprintf(got, sizeof(got), "%s %s %s", fake_spawn_env(sp, "VIGIL_EVENT_SEQ"), sp->argv[1],
                 fake_spawn_env(sp, "VIGIL_ACTION"));
        assert_string_equal(got, want[i]);
        /* An ordered run starts when the one before it ended (quick: 10 ms). */
        if (i == 2 || i == 5)
            assert_int_equal(sp->start - prev_start, 10 * VIGIL_NSEC_PER_MSEC);
        prev_start = sp->start;
    }
    /* The idempotency key names the node, the generation, the event and the action. */
    char key[96];
    snprintf(key, sizeof(key), "a:%" PRIu64 ":2:exec-2:undo", e2.ev.generation);
    assert_string_equal(fake_spawn_env(spawn_at(v, 4), "VIGIL_IDEMPOTENCY_KEY"), key);
    hook_runner_free(r);
}

/*
 * A refused retry of an ordered action sends the event back to the gate,
 * and the ordered actions after it wait for the new claim rather than
 * holding the node's queue for ever.
 */
static void test_v_gate_ordered(void **state)
{
    struct vfix *v = *state;
    struct vcfg_hook hs[2] = {
        hook_of("flaky", "fence", NULL, 10 * VIGIL_NSEC_PER_SEC, 1u << VIGIL_STATE_DEAD),
        hook_of("quick", "lb", NULL, 10 * VIGIL_NSEC_PER_SEC, 1u << VIGIL_STATE_DEAD),
    };
    hs[0].undo = hs[1].undo = true;
    hs[0].retries = 2;
    hs[0].retry_delay = VIGIL_NSEC_PER_SEC;
    struct hook_runner *r = vrunner(v, hs, 2);
    struct tgate g = {.answer = HOOK_GO, .epoch = 7, .allow_retry = false};
    struct hook_gate hg = {.ask = tg_ask, .may_retry = tg_may_retry, .done = tg_done, .arg = &g};
    hook_runner_set_gate(r, &hg);
    g.answer = HOOK_WAIT;
    struct evrec e1 = make_event(1, "a", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &e1), 0);
    hook_runner_gate_answer(r, "a", g.last_ticket, HOOK_GO, 7);
    fake_loop_run_until(v->loop, T0 + 5 * VIGIL_NSEC_PER_SEC);
    /* fence failed, its retry was refused: lb never started, and the event is at the gate. */
    assert_int_equal(fake_procs_count(v->procs), 1);
    assert_int_equal(g.retry_asks, 1);
    assert_int_equal(hook_runner_held(r), 1);
    assert_int_equal(hook_runner_pending(r), 2);
    /* A new leader lets it go: both run again, in order, and the queue empties. */
    g.answer = HOOK_GO;
    g.epoch = 9;
    g.allow_retry = true;
    hook_runner_gate_reask(r);
    fake_loop_run_until(v->loop, v->clock + 10 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(hook_runner_pending(r), 0);
    assert_int_equal(hook_runner_held(r), 0);
    assert_int_equal(fake_procs_count(v->procs), 4); /* fence (fails), its retry, lb */
    assert_string_equal(spawn_at(v, 3)->argv[1], "lb");
    assert_string_equal(fake_spawn_env(spawn_at(v, 3), "VIGIL_EPOCH"), "9");
    assert_int_equal(g.done_calls, 1);
    hook_runner_free(r);
}

/*
 * Per node, events go in order even while one waits for a retry; another
 * node is not held up by it.
 */
static void test_v_order_under_retries(void **state)
{
    struct vfix *v = *state;
    struct vcfg_hook hs[2] = {
        hook_of("flaky", "first", NULL, 10 * VIGIL_NSEC_PER_SEC, 0),
        hook_of("quick", "second", NULL, 10 * VIGIL_NSEC_PER_SEC, 0),
    };
    hs[0].retries = 2;
    hs[0].retry_delay = VIGIL_NSEC_PER_SEC;
    struct hook_runner *r = vrunner(v, hs, 2);
    struct evrec e1 = make_event(1, "a", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    struct evrec e2 = make_event(2, "a", VIGIL_STATE_DEAD, VIGIL_STATE_ALIVE);
    struct evrec e3 = make_event(3, "b", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &e1), 0);
    assert_int_equal(hook_runner_submit(r, &e2), 0);
    assert_int_equal(hook_runner_submit(r, &e3), 0);
    fake_loop_run_until(v->loop, T0 + 60 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(hook_runner_pending(r), 0);

    /*
     * Node a's runs, in the order they started: (seq, hook, attempt). The
     * two hooks of an event start together; the retry of the first comes
     * after its delay; the second event waits for all of it.
     */
    const char *want_a[] = {"1 first 1", "1 second 1", "1 first 2",
                            "2 first 1", "2 second 1", "2 first 2"};
    size_t ka = 0;
    vigil_time_t event1_end = 0;
    for (size_t i = 0; i < fake_procs_count(v->procs); i++) {
        const struct fake_spawn *sp = spawn_at(v, i);
        if (strcmp(fake_spawn_env(sp, "VIGIL_NODE"), "a") != 0)
            continue;
        char got[64];
        snprintf(got, sizeof(got), "%s %s %s", fake_spawn_env(sp, "VIGIL_EVENT_SEQ"), sp->argv[1],
                 fake_spawn_env(sp, "VIGIL_ATTEMPT"));
        assert_true(ka < 6);
        assert_string_equal(got, want_a[ka++]);
        if (ka == 1 || ka == 4) /* the first runs of an event start together */
            assert_int_equal(spawn_at(v, i + 1)->start, sp->start);
        /* No run of event 2 before every run of event 1 ended. */
        if (ka <= 3 && sp->end > event1_end)
            event1_end = sp->end;
        if (ka == 4)
            assert_int_equal(sp->start, event1_end);
    }
    assert_int_equal(ka, 6);
    /* Node b started at once, beside a, and was not held up by a's retries. */
    const struct fake_spawn *b1 = spawn_at(v, 2);
    assert_string_equal(fake_spawn_env(b1, "VIGIL_NODE"), "b");
    assert_int_equal(b1->start, T0);
    /* Its first hook failed once too: three retries in all, every run owed done. */
    assert_int_equal(hook_runner_stats(r)->retried, 3);
    assert_int_equal(hook_runner_stats(r)->failed, 3);
    assert_int_equal(hook_runner_stats(r)->succeeded, 6);
    hook_runner_free(r);
}

/*
 * The hooks of one event start together: a hook that hangs until its
 * timeout (and is retried) does not delay the pager beside it. The node's
 * next event waits for both, retries included.
 */
static void test_v_hanging_hook_does_not_delay_pager(void **state)
{
    struct vfix *v = *state;
    const vigil_time_t timeout = 5 * VIGIL_NSEC_PER_SEC;
    struct vcfg_hook hs[2] = {
        hook_of("hang", NULL, NULL, timeout, 0),
        hook_of("quick", "pager", NULL, timeout, 0),
    };
    hs[0].retries = 1;
    hs[0].retry_delay = VIGIL_NSEC_PER_SEC;
    struct hook_runner *r = vrunner(v, hs, 2);
    struct evrec e1 = make_event(1, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    struct evrec e2 = make_event(2, "web3", VIGIL_STATE_DEAD, VIGIL_STATE_ALIVE);
    assert_int_equal(hook_runner_submit(r, &e1), 0);
    assert_int_equal(hook_runner_submit(r, &e2), 0);

    /* Both hooks of event 1 start at once; the pager's run takes its own 10 ms. */
    assert_int_equal(fake_procs_count(v->procs), 2);
    const struct fake_spawn *hang = spawn_at(v, 0), *pager = spawn_at(v, 1);
    assert_string_equal(hang->argv[0], "hang");
    assert_string_equal(pager->argv[0], "quick");
    assert_int_equal(pager->start, T0);
    assert_string_equal(fake_spawn_env(pager, "VIGIL_EVENT_SEQ"), "1");
    fake_loop_run_until(v->loop, T0 + P_QUICK.runs_for);
    assert_int_equal(spawn_at(v, 1)->end, T0 + P_QUICK.runs_for);
    assert_int_equal(hook_runner_stats(r)->succeeded, 1);

    /*
     * The hanging hook: TERM at T0 + 5 s, its retry at T0 + 6 s, TERM again
     * at T0 + 11 s. Only then does event 2 start, both hooks together.
     */
    const vigil_time_t event1_done = T0 + timeout + VIGIL_NSEC_PER_SEC + timeout;
    fake_loop_run_until(v->loop, event1_done - 1);
    assert_int_equal(fake_procs_count(v->procs), 3); /* the hang's retry */
    assert_string_equal(fake_spawn_env(spawn_at(v, 2), "VIGIL_ATTEMPT"), "2");
    fake_loop_run_until(v->loop, event1_done);
    assert_int_equal(fake_procs_count(v->procs), 5);
    for (size_t i = 3; i < 5; i++) {
        assert_int_equal(spawn_at(v, i)->start, event1_done);
        assert_string_equal(fake_spawn_env(spawn_at(v, i), "VIGIL_EVENT_SEQ"), "2");
    }
    assert_int_equal(hook_runner_stats(r)->timed_out, 2);
    assert_int_equal(hook_runner_stats(r)->gave_up, 1);
    hook_runner_free(r);
}

/* The 65th hook waits for a free slot: it starts exactly when one of the 64 ends. */
static void test_v_concurrency_bound(void **state)
{
    struct vfix *v = *state;
    struct vcfg_hook hs[2] = {
        hook_of("long", NULL, NULL, 60 * VIGIL_NSEC_PER_SEC, 0),
        hook_of("quick", NULL, NULL, 60 * VIGIL_NSEC_PER_SEC, 0),
    };
    /* The long hook only for dead events, the quick one only for alive ones. */
    hs[0].on_states = 1u << VIGIL_STATE_DEAD;
    hs[1].on_states = 1u << VIGIL_STATE_ALIVE;
    struct hook_runner *r = vrunner(v, hs, 2);
    for (size_t i = 0; i < MAX_RUNNING; i++) {
        char node[16];
        snprintf(node, sizeof(node), "n%zu", i);
        struct evrec ev = make_event(i + 1, node, VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
        assert_int_equal(hook_runner_submit(r, &ev), 0);
    }
    /* A 65th run comes later: every slot is taken until the long hooks end, at T0 + 10 s. */
    fake_loop_run_until(v->loop, T0 + VIGIL_NSEC_PER_SEC);
    struct evrec extra = make_event(100, "late", VIGIL_STATE_SUSPECT, VIGIL_STATE_ALIVE);
    assert_int_equal(hook_runner_submit(r, &extra), 0);
    assert_int_equal(fake_procs_count(v->procs), MAX_RUNNING);
    assert_int_equal(hook_runner_pending(r), MAX_RUNNING + 1);

    const vigil_time_t first_end = T0 + P_LONG.runs_for;
    fake_loop_run_until(v->loop, first_end - 1);
    assert_int_equal(fake_procs_count(v->procs), MAX_RUNNING);
    fake_loop_run_until(v->loop, first_end);
    assert_int_equal(fake_procs_count(v->procs), MAX_RUNNING + 1);
    const struct fake_spawn *late = spawn_at(v, MAX_RUNNING);
    assert_string_equal(fake_spawn_env(late, "VIGIL_NODE"), "late");
    assert_int_equal(late->start, first_end);
    assert_int_equal(fake_procs_max_running(v->procs), MAX_RUNNING);
    fake_loop_run_until(v->loop, first_end + VIGIL_NSEC_PER_SEC);
    assert_int_equal(hook_runner_pending(r), 0);
    assert_int_equal(hook_runner_stats(r)->succeeded, MAX_RUNNING + 1);
    hook_runner_free(r);
}

/* A program that does not exist: -ENOENT from the spawn, logged, the next hook runs. */
static void test_v_spawn_error(void **state)
{
    struct vfix *v = *state;
    struct vcfg_hook hs[2] = {
        hook_of("no-such-program", NULL, NULL, 10 * VIGIL_NSEC_PER_SEC, 0),
        hook_of("quick", NULL, NULL, 10 * VIGIL_NSEC_PER_SEC, 0),
    };
    hs[0].retries = 3;
    struct hook_runner *r = vrunner(v, hs, 2);
    struct evrec ev = make_event(9, "web3", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &ev), 0);
    assert_int_equal(hook_runner_stats(r)->spawn_errors, 1);
    assert_int_equal(
        log_count(
            &v->log,
            "hook no-such-program for event 9 (web3): cannot start: No such file or directory"),
        1);
    assert_int_equal(fake_procs_count(v->procs), 1);
    fake_loop_run_until(v->loop, T0 + 60 * VIGIL_NSEC_PER_SEC);
    /* Not retried: a missing program does not fix itself. */
    assert_int_equal(fake_procs_count(v->procs), 1);
    assert_int_equal(hook_runner_stats(r)->retried, 0);
    assert_int_equal(hook_runner_stats(r)->succeeded, 1);
    hook_runner_free(r);
}

/* Freeing the runner: TERM to each running hook, KILL to the one that ignores it. */
static void test_v_free(void **state)
{
    struct vfix *v = *state;
    struct vcfg_hook h = hook_of("hang", NULL, NULL, 60 * VIGIL_NSEC_PER_SEC, 0);
    struct vcfg_hook h2 = hook_of("stubborn", NULL, NULL, 60 * VIGIL_NSEC_PER_SEC, 0);
    struct vcfg_hook hs[2] = {h, h2};
    hs[0].on_states = 1u << VIGIL_STATE_DEAD;
    hs[1].on_states = 1u << VIGIL_STATE_SUSPECT;
    struct hook_runner *r = vrunner(v, hs, 2);
    struct evrec e1 = make_event(1, "polite", VIGIL_STATE_ALIVE, VIGIL_STATE_DEAD);
    struct evrec e2 = make_event(2, "stubborn", VIGIL_STATE_ALIVE, VIGIL_STATE_SUSPECT);
    struct evrec e3 = make_event(3, "stubborn", VIGIL_STATE_SUSPECT, VIGIL_STATE_DEAD);
    assert_int_equal(hook_runner_submit(r, &e1), 0);
    assert_int_equal(hook_runner_submit(r, &e2), 0);
    assert_int_equal(hook_runner_submit(r, &e3), 0);
    fake_loop_run_until(v->loop, T0 + VIGIL_NSEC_PER_SEC);
    hook_runner_free(r);
    assert_int_equal(log_count(&v->log, "1 hook runs not started"), 1);
    assert_int_equal(log_count(&v->log, "stopping it (SIGTERM)"), 2);
    assert_int_equal(log_count(&v->log, "(stubborn): still running, sending SIGKILL"), 1);
    assert_int_equal(log_count(&v->log, "(polite): still running"), 0);
    const struct fake_spawn *p = spawn_at(v, 0), *s = spawn_at(v, 1);
    assert_int_equal(p->term_at, T0 + VIGIL_NSEC_PER_SEC);
    assert_int_equal(p->kill_at, VIGIL_TIME_NEVER);
    assert_int_equal(s->kill_at, T0 + VIGIL_NSEC_PER_SEC);
    assert_int_equal(fake_procs_running(v->procs), 0);
    assert_int_equal(fake_procs_count(v->procs), 2);
    /* Nothing of the runner is left on the loop. */
    assert_int_equal(v->loop->n_timers, 0);
}

/* ---- bounded queues: coalescing on the virtual clock ---- */

/* alive -> suspect -> dead -> alive -> ...: the k-th transition (k >= 1) of a flapping node. */
static const enum vigil_state flap_cycle[3] = {VIGIL_STATE_ALIVE, VIGIL_STATE_SUSPECT,
                                               VIGIL_STATE_DEAD};

static struct evrec flap_event(uint64_t seq, const char *node, uint64_t k)
{
    return make_event(seq, node, flap_cycle[(k - 1) % 3], flap_cycle[k % 3]);
}

/*
 * The runs of node, in the order they started, must make sense to a hook:
 * sequence numbers increase, no event goes from a state to itself, each
 * starts where the one before it ended, and the JSON says what the
 * environment says. Returns the new state of the last run (NULL: none);
 * *runs gets their number and *merged how many stood for earlier events.
 */
static const char *check_chain(const struct vfix *v, const char *node, size_t *runs, size_t *merged)
{
    const char *last = NULL;
    uint64_t prev_seq = 0;
    *runs = *merged = 0;
    for (size_t i = 0; i < fake_procs_count(v->procs); i++) {
        const struct fake_spawn *sp = spawn_at(v, i);
        if (strcmp(fake_spawn_env(sp, "VIGIL_NODE"), node) != 0)
            continue;
        uint64_t seq = strtoull(fake_spawn_env(sp, "VIGIL_EVENT_SEQ"), NULL, 10);
        const char *from = fake_spawn_env(sp, "VIGIL_OLD_STATE");
        const char *to = fake_spawn_env(sp, "VIGIL_NEW_STATE");
        assert_true(seq > prev_seq);
        assert_string_not_equal(from, to);
        if (last)
            assert_string_equal(from, last);
        const char *c = fake_spawn_env(sp, "VIGIL_COALESCED");
        assert_non_null(c);
        json_error_t jerr;
        json_t *o = json_loads(sp->stdin_data, 0, &jerr);
        assert_non_null(o);
        assert_int_equal(json_integer_value(json_object_get(o, "coalesced")),
                         strtoull(c, NULL, 10));
        assert_string_equal(json_string_value(json_object_get(o, "old_state")), from);
        json_decref(o);
        *merged += strcmp(c, "0") != 0;
        last = to;
        prev_seq = seq;
        (*runs)++;
    }
    return last;
}

/* The number after "; " and before " in all" in the last line that has one, or 0. */
static uint64_t last_in_all(const struct logcap *c)
{
    uint64_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        const char *p = c->lines[i] ? strstr(c->lines[i], " in all") : NULL;
        if (!p || !strstr(c->lines[i], "more since the last report"))
            continue;
        while (p > c->lines[i] && p[-1] >= '0' && p[-1] <= '9')
            p--;
        n = strtoull(p, NULL, 10);
    }
    return n;
}

/*
 * A node flaps 1,000 times (every 10 ms) while its hook hangs on the first
 * event for a minute: at no moment do more than 16 events wait; what the
 * hook is told afterwards is a chain from its first event to the node's
 * latest state; every event left out is counted and the log says so, in
 * one line and then at most one a second.
 */
static void test_v_flapping_bounded(void **state)
{
    struct vfix *v = *state;
    hold_through = 1;
    struct vcfg_hook h = hook_of("hold", NULL, NULL, 120 * VIGIL_NSEC_PER_SEC, 0);
    struct hook_runner *r = vrunner(v, &h, 1);
    const uint64_t flaps = 1000;
    const char *latest = NULL;
    size_t most = 0;
    for (uint64_t k = 1; k <= flaps; k++) {
        struct evrec ev = flap_event(k, "web3", k);
        latest = vigil_state_name(ev.ev.new_state);
        assert_int_equal(hook_runner_submit(r, &ev), 0);
        assert_true(hook_runner_waiting(r) <= HOOK_QUEUE_DEFAULT);
        assert_true(hook_runner_pending(r) <= HOOK_QUEUE_DEFAULT + 1);
        if (hook_runner_waiting(r) > most)
            most = hook_runner_waiting(r);
        fake_loop_run_until(v->loop, v->clock + 10 * VIGIL_NSEC_PER_MSEC);
    }
    assert_int_equal(most, HOOK_QUEUE_DEFAULT);
    /* Only the first event has reached the hook, and it still runs. */
    assert_int_equal(fake_procs_count(v->procs), 1);
    assert_int_equal(fake_procs_running(v->procs), 1);

    fake_loop_run_until(v->loop, T0 + 10 * HOLD_FOR);
    assert_int_equal(hook_runner_pending(r), 0);
    assert_int_equal(hook_runner_waiting(r), 0);
    size_t runs = 0, merged = 0;
    const char *last = check_chain(v, "web3", &runs, &merged);
    assert_non_null(last);
    assert_string_equal(last, latest);
    assert_true(runs >= 2 && runs <= HOOK_QUEUE_DEFAULT + 1);
    assert_true(merged > 0);
    assert_string_equal(fake_spawn_env(spawn_at(v, 0), "VIGIL_EVENT_SEQ"), "1");

    /* Every event is either delivered or counted. */
    const struct hook_stats *st = hook_runner_stats(r);
    assert_int_equal(st->coalesced + runs, flaps);
    assert_int_equal(st->started, runs);
    assert_int_equal(st->succeeded, runs);
    assert_int_equal(st->queued, flaps);

    /* The first coalescing in detail, the rest as counts, at most one line a second. */
    assert_int_equal(log_count(&v->log, "hook events coalesced for web3 (17 waiting, limit 16 per "
                                        "node): events 2 (suspect -> dead) and 3 (dead -> alive) "
                                        "dropped, a round trip"),
                     0);
    assert_int_equal(log_count(&v->log, "hook events coalesced for web3 (17 waiting, limit 16 per "
                                        "node): event 2 (suspect -> dead) merged into event 3, "
                                        "now suspect -> alive"),
                     1);
    size_t lines = log_count(&v->log, "hook events coalesced");
    size_t reports = log_count(&v->log, "more since the last report, the last for web3");
    assert_int_equal(lines, reports + 1);
    assert_true(reports >= 5 && reports <= 11); /* 10 s of flapping */
    assert_int_equal(last_in_all(&v->log), st->coalesced);
    /* Nothing is left on the loop. */
    assert_int_equal(fake_loop_next(v->loop), VIGIL_TIME_NEVER);
    hook_runner_free(r);
}

/*
 * Forty nodes flap while their hooks hang on their first events: with a
 * total bound of 64, no more than 64 events ever wait in all (far below
 * 40 x 16), and every node's hook still ends with that node's latest
 * state, told as a chain.
 */
static void test_v_total_bound(void **state)
{
    struct vfix *v = *state;
    enum { NODES = 40, ROUNDS = 30, TOTAL = 64 };
    hold_through = NODES; /* the first event of every node */
    struct vcfg_hook h = hook_of("hold", NULL, NULL, 120 * VIGIL_NSEC_PER_SEC, 0);
    struct hook_runner *r = vrunner(v, &h, 1);
    assert_int_equal(hook_runner_set_limits(r, 0, TOTAL), -VIGIL_EINVAL);
    assert_int_equal(hook_runner_set_limits(r, 16, 0), -VIGIL_EINVAL);
    assert_int_equal(hook_runner_set_limits(r, 16, TOTAL), 0);
    enum vigil_state latest[NODES];
    uint64_t seq = 0;
    size_t most = 0;
    for (uint64_t k = 1; k <= ROUNDS; k++) {
        for (int i = 0; i < NODES; i++) {
            char node[16];
            snprintf(node, sizeof(node), "n%d", i);
            /* Node i is i transitions ahead, so that the nodes are not all alike. */
            struct evrec ev = flap_event(++seq, node, k + (uint64_t)i);
            latest[i] = ev.ev.new_state;
            assert_int_equal(hook_runner_submit(r, &ev), 0);
            assert_true(hook_runner_waiting(r) <= TOTAL);
            if (hook_runner_waiting(r) > most)
                most = hook_runner_waiting(r);
        }
        fake_loop_run_until(v->loop, v->clock + 100 * VIGIL_NSEC_PER_MSEC);
    }
    assert_int_equal(most, TOTAL);
    assert_int_equal(fake_procs_count(v->procs), NODES);
    const struct hook_stats *st = hook_runner_stats(r);
    assert_true(st->coalesced > 0);
    assert_int_equal(log_count(&v->log, "waiting in all, limit 64)"), 1);

    fake_loop_run_until(v->loop, T0 + 10 * HOLD_FOR);
    assert_int_equal(hook_runner_pending(r), 0);
    size_t delivered = 0;
    for (int i = 0; i < NODES; i++) {
        char node[16];
        snprintf(node, sizeof(node), "n%d", i);
        size_t runs = 0, merged = 0;
        const char *last = check_chain(v, node, &runs, &merged);
        assert_non_null(last);
        assert_string_equal(last, vigil_state_name(latest[i]));
        delivered += runs;
    }
    const uint64_t coalesced = st->coalesced;
    assert_int_equal(coalesced + delivered, (uint64_t)NODES * ROUNDS);
    hook_runner_free(r);
    /* The last count comes, at the latest, when the runner stops. */
    assert_int_equal(last_in_all(&v->log), coalesced);
}

/*
 * More nodes waiting than the total bound: each keeps one waiting event,
 * its latest state (the total is then one per node); a second event of a
 * node merges into its first. With one event allowed per node, every new
 * one merges into the one waiting.
 */
static void test_v_total_one_per_node(void **state)
{
    struct vfix *v = *state;
    enum { NODES = 100, TOTAL = 10 };
    hold_through = NODES;
    struct vcfg_hook h = hook_of("hold", NULL, NULL, 120 * VIGIL_NSEC_PER_SEC, 0);
    struct hook_runner *r = vrunner(v, &h, 1);
    assert_int_equal(hook_runner_set_limits(r, 1, TOTAL), 0);
    uint64_t seq = 0;
    for (uint64_t k = 1; k <= 2; k++)
        for (int i = 0; i < NODES; i++) {
            char node[16];
            snprintf(node, sizeof(node), "n%d", i);
            struct evrec ev = flap_event(++seq, node, k);
            assert_int_equal(hook_runner_submit(r, &ev), 0);
        }
    /* Heads: 100 running; one waiting per node (suspect -> dead), beyond the total of 10. */
    assert_int_equal(hook_runner_waiting(r), NODES);
    assert_int_equal(hook_runner_stats(r)->coalesced, 0);
    /* A third event of n7: merged into its waiting one (per node: 1), the total does not grow. */
    struct evrec ev = flap_event(++seq, "n7", 3);
    assert_int_equal(hook_runner_submit(r, &ev), 0);
    assert_int_equal(hook_runner_waiting(r), NODES);
    assert_int_equal(hook_runner_stats(r)->coalesced, 1);
    assert_int_equal(log_count(&v->log, "hook events coalesced for n7 (2 waiting, limit 1 per "
                                        "node): event 108 (suspect -> dead) merged into event "
                                        "201, now suspect -> alive"),
                     1);
    /* A fourth goes back to suspect: with the waiting suspect -> alive, a round trip. */
    ev = flap_event(++seq, "n7", 4);
    assert_int_equal(hook_runner_submit(r, &ev), 0);
    assert_int_equal(hook_runner_waiting(r), NODES - 1);
    assert_int_equal(hook_runner_stats(r)->coalesced, 3);
    fake_loop_run_until(v->loop, T0 + 10 * HOLD_FOR);
    size_t runs = 0, merged = 0;
    assert_string_equal(check_chain(v, "n7", &runs, &merged), "suspect");
    assert_int_equal(runs, 1);
    assert_string_equal(check_chain(v, "n8", &runs, &merged), "dead");
    assert_int_equal(runs, 2);
    assert_int_equal(merged, 0);
    hook_runner_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_env_and_stdin, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_env_pause_and_never_heard, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_order_one_node, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes_concurrent, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_term, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kill, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_on_states_filter, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_spawn_errors, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_failures, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_retries, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_free_stops_hooks, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_bound, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_unread_stdin, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_v_env_and_stdin, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_term_exact, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_kill_exact, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_retry_exact, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_hanging_hook_does_not_delay_pager, vfix_setup,
                                        vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_order_under_retries, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_gate, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_ordered_and_undo, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_gate_ordered, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_concurrency_bound, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_spawn_error, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_free, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_flapping_bounded, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_total_bound, vfix_setup, vfix_teardown),
        cmocka_unit_test_setup_teardown(test_v_total_one_per_node, vfix_setup, vfix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
