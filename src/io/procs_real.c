/*
 * Real child processes: struct vio_procs on posix_spawnp, reaped through
 * the epoll loop's SIGCHLD source.
 *
 * Starting. posix_spawnp returns once the program is executing or has
 * failed to start, so a missing program is an error of spawn itself, not an
 * exit status later. Each child starts in a process group of its own, so
 * that a signal (a timeout's SIGTERM, and SIGKILL after it) reaches whatever
 * the child started too (kill(-pgid, sig)), as keepalived and haproxy do
 * with their checks and notify scripts. The child also starts with no
 * blocked signals and every signal at its default: the program ignores
 * SIGPIPE and blocks the signals it reads through a signalfd, and a child
 * must not inherit either (one with SIGTERM blocked could not be stopped
 * politely).
 *
 * Standard input. The data a caller hands over is small (a hook's event is
 * under 4 KB) and a pipe holds 64 KB, so it is written whole into a
 * non-blocking pipe right after the start and the pipe is closed: a child
 * that never reads its input cannot stall the loop, and one that exits
 * early gives EPIPE, not SIGPIPE. The pipe is close-on-exec, so that no
 * other child of the program holds it open (and keeps a reader from ever
 * seeing end of file).
 *
 * Reaping. The loop marks the child source ready on SIGCHLD; the source
 * then calls waitpid(pid, WNOHANG) for every child it started and has not
 * reaped, never waitpid(-1): the program may have other children that are
 * not ours to reap. Signals of one kind coalesce (two children ending
 * together may make one SIGCHLD), so every child is checked each time, not
 * just one. Exits are reported from the loop, never from spawn or signal.
 *
 * A child whose exit was reaped is never signalled again: its pid may
 * already belong to another process.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vigil/sender.h>

#include "io/real.h"

/* wait_all polls in steps of 10 ms: short enough that shutdown is prompt. */
#define PROCS_WAIT_STEP_NS (10 * VIGIL_NSEC_PER_MSEC)

struct procs_real;

struct vio_child {
    struct procs_real *owner;
    struct vio_child *prev, *next; /* the children not yet released */
    pid_t pid;                     /* also the id of its process group */
    vio_exit_fn on_exit;
    void *arg;
    int status;
    bool exited;   /* reaped (or lost): never signal it again */
    bool reported; /* on_exit was called */
    bool disowned; /* forgotten once reaped (vio_procs_ops.disown) */
    /* Output capture (vio_spawn.output_max): the pipe's read end, or -1. */
    int out_fd;
    char *out;
    size_t out_len, out_max;
    struct vio_source out_src;
};

struct procs_real {
    struct vio_procs base;
    struct vio_loop *loop;
    struct vio_source child_source; /* ready on SIGCHLD */
    struct vio_child *children;
};

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

static void on_output(void *arg, vigil_time_t now);
static void pr_release(struct vio_procs *p, struct vio_child *c);

static int pr_spawn(struct vio_procs *p, const struct vio_spawn *req, struct vio_child **out)
{
    struct procs_real *pr = (struct procs_real *)p;
    int err = 0;
    int fds[2] = {-1, -1};
    bool fa_ok = false, at_ok = false;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    pid_t pid = 0;

    if (!req || !req->argv || !req->argv[0] || !out)
        return -EINVAL;
    int ofd[2] = {-1, -1};
    struct vio_child *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->out_fd = -1;
    if (req->output_max > 0) {
        c->out = malloc(req->output_max + 1);
        if (!c->out) {
            err = ENOMEM;
            goto out;
        }
        c->out[0] = '\0';
        c->out_max = req->output_max;
        if (pipe2(ofd, O_CLOEXEC) < 0 || fcntl(ofd[0], F_SETFL, O_NONBLOCK) < 0) {
            err = errno;
            goto out;
        }
    }
    if (pipe2(fds, O_CLOEXEC) < 0 || fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0) {
        err = errno;
        goto out;
    }
    if ((err = posix_spawn_file_actions_init(&fa)) != 0)
        goto out;
    fa_ok = true;
    if ((err = posix_spawn_file_actions_adddup2(&fa, fds[0], STDIN_FILENO)) != 0)
        goto out;
    if (ofd[1] >= 0 && ((err = posix_spawn_file_actions_adddup2(&fa, ofd[1], STDOUT_FILENO)) != 0 ||
                        (err = posix_spawn_file_actions_adddup2(&fa, ofd[1], STDERR_FILENO)) != 0))
        goto out;
    if ((err = posix_spawnattr_init(&at)) != 0)
        goto out;
    at_ok = true;
    /* A group of its own, no blocked signals, every signal at its default (see above). */
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
    err = posix_spawnp(&pid, req->argv[0], &fa, &at, req->argv,
                       req->envp ? req->envp : (char *const[]){NULL});
    if (err != 0)
        goto out;

    close(fds[0]);
    fds[0] = -1;
    if (req->stdin_len > 0) {
        /*
         * EPIPE: the child exited or closed its input without reading; that
         * is its choice. Anything else (the pipe full, which the sizes make
         * impossible) leaves the child with a cut input, which it sees.
         */
        (void)write_all(fds[1], req->stdin_data, req->stdin_len);
    }

    c->owner = pr;
    c->pid = pid;
    if (ofd[0] >= 0) {
        close(ofd[1]);
        ofd[1] = -1;
        c->out_fd = ofd[0];
        ofd[0] = -1;
        vio_source_init(&c->out_src, on_output, c);
        if (vio_watch_fd(pr->loop, c->out_fd, &c->out_src) != 0) {
            /* Not watched: read at the exit only (a child writing more than a pipe holds waits). */
        }
    }
    c->on_exit = req->on_exit;
    c->arg = req->arg;
    c->next = pr->children;
    if (pr->children)
        pr->children->prev = c;
    pr->children = c;
    *out = c;
out:
    for (int i = 0; i < 2; i++)
        if (ofd[i] >= 0)
            close(ofd[i]);
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (at_ok)
        posix_spawnattr_destroy(&at);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    if (err != 0) {
        free(c->out);
        free(c);
        return -err;
    }
    return 0;
}

/* Reads what the child wrote so far, keeping the first out_max bytes; at end of file, closes. */
static void out_drain(struct vio_child *c)
{
    char tmp[4096];
    while (c->out_fd >= 0) {
        ssize_t n = read(c->out_fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 || errno != EAGAIN) {
                vio_unwatch_fd(c->owner->loop, c->out_fd);
                close(c->out_fd);
                c->out_fd = -1;
            }
            return;
        }
        size_t take = c->out_max - c->out_len;
        if ((size_t)n < take)
            take = (size_t)n;
        memcpy(c->out + c->out_len, tmp, take);
        c->out_len += take;
        c->out[c->out_len] = '\0';
    }
}

static void on_output(void *arg, vigil_time_t now)
{
    (void)now;
    out_drain(arg);
}

static void out_close(struct vio_child *c)
{
    if (c->out_fd >= 0) {
        vio_unwatch_fd(c->owner->loop, c->out_fd);
        close(c->out_fd);
        c->out_fd = -1;
    }
    vio_source_cancel(c->owner->loop, &c->out_src);
}

/* Takes the exit of every child that ended (WNOHANG); true if any did. */
static bool reap(struct procs_real *pr)
{
    bool any = false;
    for (struct vio_child *c = pr->children; c; c = c->next) {
        if (c->exited)
            continue;
        int status = 0;
        pid_t w;
        do
            w = waitpid(c->pid, &status, WNOHANG);
        while (w < 0 && errno == EINTR);
        if (w == 0)
            continue;
        /* w == pid: it ended. w < 0 otherwise (ECHILD): someone else reaped it. */
        c->exited = true;
        c->status = w == c->pid ? status : -1;
        any = true;
    }
    return any;
}

/*
 * Reports each reaped child once. A callback may release its child, start
 * others or release others, so the scan starts over after every report
 * (the list is short: the children running).
 */
static void report(struct procs_real *pr)
{
    for (;;) {
        struct vio_child *c = pr->children;
        while (c && !(c->exited && !c->reported))
            c = c->next;
        if (!c)
            return;
        c->reported = true;
        /* What the child wrote before it ended is in the pipe now. */
        out_drain(c);
        out_close(c);
        if (c->disowned)
            pr_release(&pr->base, c);
        else if (c->on_exit)
            c->on_exit(c->arg, c, c->status);
    }
}

static void on_sigchld(void *arg, vigil_time_t now)
{
    struct procs_real *pr = arg;
    (void)now;
    if (reap(pr))
        report(pr);
}

static void pr_signal(struct vio_procs *p, struct vio_child *c, int sig)
{
    (void)p;
    if (!c || c->exited)
        return;
    /* The group is the child's; if the child left it, signal the child itself. */
    if (kill(-c->pid, sig) < 0 && errno == ESRCH)
        kill(c->pid, sig);
}

static void pr_release(struct vio_procs *p, struct vio_child *c)
{
    struct procs_real *pr = (struct procs_real *)p;
    if (!c)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        pr->children = c->next;
    if (c->next)
        c->next->prev = c->prev;
    out_close(c);
    free(c->out);
    free(c);
}

static void pr_disown(struct vio_procs *p, struct vio_child *c)
{
    if (!c)
        return;
    if (c->exited && c->reported) {
        pr_release(p, c);
        return;
    }
    c->disowned = true;
    c->on_exit = NULL;
}

static const char *pr_output(const struct vio_child *c, size_t *len)
{
    *len = c && c->out ? c->out_len : 0;
    return c && c->out ? c->out : "";
}

static long pr_pid(const struct vio_child *c)
{
    return c ? (long)c->pid : 0;
}

static size_t pr_wait_all(struct vio_procs *p, vigil_time_t timeout)
{
    struct procs_real *pr = (struct procs_real *)p;
    vigil_time_t end = vigil_clock_mono() + (timeout > 0 ? timeout : 0);
    const struct timespec step = {0, PROCS_WAIT_STEP_NS};
    for (;;) {
        if (reap(pr))
            report(pr);
        size_t running = 0;
        for (struct vio_child *c = pr->children; c; c = c->next)
            running += !c->exited;
        if (running == 0 || vigil_clock_mono() >= end)
            return running;
        nanosleep(&step, NULL);
    }
}

static const struct vio_procs_ops real_procs_ops = {
    .spawn = pr_spawn,
    .signal = pr_signal,
    .release = pr_release,
    .pid = pr_pid,
    .output = pr_output,
    .disown = pr_disown,
    .wait_all = pr_wait_all,
};

int vio_procs_real_new(struct vio_loop *l, struct vio_procs **out)
{
    if (!l || !out)
        return -VIGIL_EINVAL;
    struct procs_real *pr = calloc(1, sizeof(*pr));
    if (!pr)
        return -VIGIL_ENOMEM;
    pr->base.ops = &real_procs_ops;
    pr->loop = l;
    vio_source_init(&pr->child_source, on_sigchld, pr);
    vio_loop_epoll_set_child_source(l, &pr->child_source);
    /*
     * A child that exits without reading its input makes our write fail
     * with EPIPE; with SIGPIPE at its default that would kill the program.
     * The program ignores SIGPIPE itself, but this does not count on it: a
     * handler or an ignore already set is left alone.
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
    /* A SIGCHLD that came before the source existed is not lost: check once. */
    vio_source_ready(l, &pr->child_source);
    *out = &pr->base;
    return 0;
}

void vio_procs_real_free(struct vio_procs *p)
{
    struct procs_real *pr = (struct procs_real *)p;
    if (!pr)
        return;
    vio_loop_epoll_set_child_source(pr->loop, NULL);
    vio_source_cancel(pr->loop, &pr->child_source);
    /* Children not released keep running, unwatched. */
    while (pr->children)
        pr_release(p, pr->children);
    free(pr);
}
