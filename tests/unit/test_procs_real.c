/*
 * Tests of the real child processes (src/io/procs_real.c) on a real epoll
 * loop: the standard input arrives whole, the exit status comes back
 * through the loop, a signal reaches the child's whole process group,
 * children ending together are all reported, a missing program fails the
 * spawn, wait_all waits a bounded time, and SIGPIPE is set to ignored.
 * Waiting is a bounded run of the loop (10 s at most), stopped by a timer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vigil/sender.h>

#include "io/real.h"

extern char **environ;

/* Longest a test waits for real children. */
#define WAIT_MAX (10 * VIGIL_NSEC_PER_SEC)
/* Step of the waiting loops. */
#define WAIT_STEP_NS (5 * VIGIL_NSEC_PER_MSEC)
/* Children started at once to make their SIGCHLDs coalesce. */
#define N_TOGETHER 8

struct fix {
    char dir[64];
    struct vio_loop *loop;
    struct vio_procs *procs;
    int exits;       /* exits reported */
    int status[16];  /* their statuses, in order */
    long pids[16];   /* their pids, in order */
    char output[64]; /* the last one's kept output */
    size_t output_len;
};

static int fix_setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/vigil-procs-XXXXXX");
    if (!mkdtemp(f->dir) || vio_loop_epoll_new(&f->loop) != 0 ||
        vio_procs_real_new(f->loop, &f->procs) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int fix_teardown(void **state)
{
    struct fix *f = *state;
    vio_procs_real_free(f->procs);
    vio_loop_free(f->loop);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Records the exit and forgets the child, as an owner does. */
static void on_exit_cb(void *arg, struct vio_child *c, int status)
{
    struct fix *f = arg;
    size_t len = 0;
    const char *out = f->procs->ops->output(c, &len);
    snprintf(f->output, sizeof f->output, "%s", out);
    f->output_len = len;
    if (f->exits < 16) {
        f->status[f->exits] = status;
        f->pids[f->exits] = f->procs->ops->pid(c);
    }
    f->exits++;
    f->procs->ops->release(f->procs, c);
}

struct run_ctx {
    struct fix *f;
    int want;
    vigil_time_t end;
    struct vio_timer tick;
};

static void run_tick(void *arg, vigil_time_t now)
{
    struct run_ctx *c = arg;
    if (c->f->exits >= c->want || now >= c->end)
        vio_loop_stop(c->f->loop);
    else
        assert_int_equal(vio_timer_arm(c->f->loop, &c->tick, now + WAIT_STEP_NS), 0);
}

/* Runs the loop until `want` exits were reported; false after WAIT_MAX. */
static bool run_until_exits(struct fix *f, int want)
{
    struct run_ctx c = {.f = f, .want = want, .end = vio_now(f->loop) + WAIT_MAX};
    vio_timer_init(&c.tick, run_tick, &c);
    assert_int_equal(vio_timer_arm(f->loop, &c.tick, vio_now(f->loop)), 0);
    f->loop->stop = false;
    assert_int_equal(vio_loop_run(f->loop), 0);
    f->loop->stop = false;
    vio_timer_disarm(f->loop, &c.tick);
    return f->exits >= want;
}

static int spawn_sh(struct fix *f, const char *script, const char *in, struct vio_child **out)
{
    char *argv[] = {"sh", "-c", (char *)script, "sh", f->dir, NULL};
    struct vio_spawn req = {
        .argv = argv,
        .envp = environ,
        .stdin_data = in,
        .stdin_len = in ? strlen(in) : 0,
        .on_exit = on_exit_cb,
        .arg = f,
    };
    return f->procs->ops->spawn(f->procs, &req, out);
}

static char *read_in(const struct fix *f, const char *name)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", f->dir, name);
    FILE *fp = fopen(p, "r");
    if (!fp)
        return NULL;
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* Waits until a file exists in the test directory; false after WAIT_MAX. */
static bool wait_file(const struct fix *f, const char *name)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", f->dir, name);
    const struct timespec step = {0, WAIT_STEP_NS};
    for (vigil_time_t end = vigil_clock_mono() + WAIT_MAX; vigil_clock_mono() < end;) {
        if (access(p, F_OK) == 0)
            return true;
        nanosleep(&step, NULL);
    }
    return false;
}

/* True once pid is gone or a zombie; false after WAIT_MAX. */
static bool process_gone(long pid)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%ld/stat", pid);
    const struct timespec step = {0, WAIT_STEP_NS};
    for (vigil_time_t end = vigil_clock_mono() + WAIT_MAX; vigil_clock_mono() < end;) {
        FILE *fp = fopen(p, "r");
        if (!fp)
            return true;
        char buf[512] = "";
        size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        char *rp = strrchr(buf, ')');
        if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
            return true;
        nanosleep(&step, NULL);
    }
    return false;
}

/* Standard input arrives whole and closed; the exit status comes back through the loop. */
static void test_stdin_and_status(void **state)
{
    struct fix *f = *state;
    /* Larger than one write of a small buffer, well under the pipe's 64 KB. */
    char in[20000];
    for (size_t i = 0; i < sizeof(in) - 1; i++)
        in[i] = (char)('a' + i % 26);
    in[sizeof(in) - 1] = '\0';
    struct vio_child *c = NULL;
    assert_int_equal(spawn_sh(f, "cat > \"$1/in\"; exit 3", in, &c), 0);
    assert_non_null(c);
    assert_true(f->procs->ops->pid(c) > 1);
    /* Never reported from spawn itself. */
    assert_int_equal(f->exits, 0);
    assert_true(run_until_exits(f, 1));
    assert_true(WIFEXITED(f->status[0]));
    assert_int_equal(WEXITSTATUS(f->status[0]), 3);
    char *got = read_in(f, "in");
    assert_non_null(got);
    assert_string_equal(got, in);
    free(got);
}

/* A signal goes to the child's process group: a grandchild goes too. */
static void test_group_signal(void **state)
{
    struct fix *f = *state;
    struct vio_child *c = NULL;
    assert_int_equal(spawn_sh(f,
                              "sleep 30 & echo $! > \"$1/gc.tmp\"; mv \"$1/gc.tmp\" \"$1/gc\"; "
                              "wait",
                              NULL, &c),
                     0);
    assert_true(wait_file(f, "gc"));
    char *s = read_in(f, "gc");
    assert_non_null(s);
    long gc = atol(s);
    free(s);
    assert_true(gc > 1);
    f->procs->ops->signal(f->procs, c, SIGTERM);
    assert_true(run_until_exits(f, 1));
    assert_true(WIFSIGNALED(f->status[0]));
    assert_int_equal(WTERMSIG(f->status[0]), SIGTERM);
    assert_true(process_gone(gc));
}

/* Children ending together (one SIGCHLD may stand for several) are all reported. */
static void test_exits_together(void **state)
{
    struct fix *f = *state;
    for (int i = 0; i < N_TOGETHER; i++) {
        struct vio_child *c = NULL;
        char script[64];
        snprintf(script, sizeof(script), "exit %d", i + 1);
        assert_int_equal(spawn_sh(f, script, NULL, &c), 0);
    }
    assert_true(run_until_exits(f, N_TOGETHER));
    assert_int_equal(f->exits, N_TOGETHER);
    int seen = 0;
    for (int i = 0; i < N_TOGETHER; i++) {
        assert_true(WIFEXITED(f->status[i]));
        seen |= 1 << (WEXITSTATUS(f->status[i]) - 1);
    }
    assert_int_equal(seen, (1 << N_TOGETHER) - 1);
}

/* A program that does not exist: the spawn fails with -ENOENT, nothing is reported. */
static void test_missing_program(void **state)
{
    struct fix *f = *state;
    char *argv[] = {"vigil-no-such-program-anywhere", NULL};
    struct vio_spawn req = {.argv = argv, .envp = environ, .on_exit = on_exit_cb, .arg = f};
    struct vio_child *c = NULL;
    assert_int_equal(f->procs->ops->spawn(f->procs, &req, &c), -ENOENT);
    assert_null(c);
    char *argv2[] = {"/nonexistent/program", NULL};
    req.argv = argv2;
    assert_int_equal(f->procs->ops->spawn(f->procs, &req, &c), -ENOENT);
}

/* wait_all: reports what ends within the timeout, and says how many did not. */
static void test_wait_all(void **state)
{
    struct fix *f = *state;
    struct vio_child *polite = NULL, *stubborn = NULL;
    assert_int_equal(spawn_sh(f, "touch \"$1/p\"; sleep 30", NULL, &polite), 0);
    assert_int_equal(
        spawn_sh(f, "trap '' TERM; touch \"$1/s\"; while :; do sleep 1; done", NULL, &stubborn), 0);
    assert_true(wait_file(f, "p"));
    assert_true(wait_file(f, "s"));
    f->procs->ops->signal(f->procs, polite, SIGTERM);
    f->procs->ops->signal(f->procs, stubborn, SIGTERM);
    vigil_time_t t0 = vigil_clock_mono();
    assert_int_equal(f->procs->ops->wait_all(f->procs, 300 * VIGIL_NSEC_PER_MSEC), 1);
    vigil_time_t took = vigil_clock_mono() - t0;
    assert_true(took >= 300 * VIGIL_NSEC_PER_MSEC);
    assert_true(took < 5 * VIGIL_NSEC_PER_SEC);
    assert_int_equal(f->exits, 1);
    assert_int_equal(WTERMSIG(f->status[0]), SIGTERM);
    f->procs->ops->signal(f->procs, stubborn, SIGKILL);
    assert_int_equal(f->procs->ops->wait_all(f->procs, WAIT_MAX), 0);
    assert_int_equal(f->exits, 2);
    assert_int_equal(WTERMSIG(f->status[1]), SIGKILL);
}

/* SIGPIPE at its default is set to ignored; a handler the program set is left alone. */
static void sigpipe_handler(int sig)
{
    (void)sig;
}

/* Output capture: what the child writes is kept up to output_max, the rest read and dropped. */
static void test_output(void **state)
{
    struct fix *f = *state;
    char *argv[] = {
        "sh", "-c",
        "printf 'hello '; echo world >&2; head -c 200000 /dev/zero | tr '\\0' x; exit 1", NULL};
    struct vio_spawn req = {
        .argv = argv, .envp = environ, .output_max = 16, .on_exit = on_exit_cb, .arg = f};
    struct vio_child *c = NULL;
    assert_int_equal(f->procs->ops->spawn(f->procs, &req, &c), 0);
    assert_true(run_until_exits(f, 1));
    assert_int_equal(WEXITSTATUS(f->status[0]), 1);
    assert_int_equal(f->output_len, 16);
    assert_string_equal(f->output, "hello world\nxxxx");
}

/* A disowned child is reaped when it ends: no zombie, and no report. */
static void test_disown(void **state)
{
    struct fix *f = *state;
    struct vio_child *c = NULL;
    assert_int_equal(spawn_sh(f, "sleep 30", NULL, &c), 0);
    long pid = f->procs->ops->pid(c);
    f->procs->ops->signal(f->procs, c, SIGKILL);
    f->procs->ops->disown(f->procs, c);
    /* A second child, to run the loop until the first one's end has been taken too. */
    struct vio_child *c2 = NULL;
    assert_int_equal(spawn_sh(f, "sleep 0.2", NULL, &c2), 0);
    assert_true(run_until_exits(f, 1));
    assert_int_equal(f->exits, 1); /* only the second was reported (and released) */
    /* The first was reaped: waitpid finds no such child any more. */
    assert_true(waitpid((pid_t)pid, NULL, WNOHANG) < 0 && errno == ECHILD);
}

static void test_sigpipe(void **state)
{
    (void)state;
    struct sigaction dfl, cur, saved, mine;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, &saved);
    struct vio_loop *l = NULL;
    struct vio_procs *p = NULL;
    assert_int_equal(vio_loop_epoll_new(&l), 0);
    assert_int_equal(vio_procs_real_new(l, &p), 0);
    sigaction(SIGPIPE, NULL, &cur);
    assert_true(cur.sa_handler == SIG_IGN);
    vio_procs_real_free(p);

    memset(&mine, 0, sizeof(mine));
    mine.sa_handler = sigpipe_handler;
    sigaction(SIGPIPE, &mine, NULL);
    assert_int_equal(vio_procs_real_new(l, &p), 0);
    sigaction(SIGPIPE, NULL, &cur);
    assert_true(cur.sa_handler == sigpipe_handler);
    vio_procs_real_free(p);
    vio_loop_free(l);
    sigaction(SIGPIPE, &saved, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stdin_and_status, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_group_signal, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_exits_together, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_missing_program, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_wait_all, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_output, fix_setup, fix_teardown),
        cmocka_unit_test_setup_teardown(test_disown, fix_setup, fix_teardown),
        cmocka_unit_test(test_sigpipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
