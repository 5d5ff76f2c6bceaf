/*
 * The real event loop: epoll for readiness, a signalfd for signals, and
 * CLOCK_MONOTONIC for time. Waits use epoll_pwait2 with a nanosecond
 * timeout where the kernel has it (Linux 5.11), else epoll_wait rounded up
 * to the millisecond, so the loop never wakes early only to spin.
 *
 * A watched descriptor is level triggered: its source is marked ready on
 * every wait while it stays readable (or writable, when asked), so a source
 * that reads only part of what is there is called again on the next turn.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <vigil/sender.h>

#include "io/real.h"

/* Readiness reports taken per wait. */
#define EPOLL_BATCH 32
/* The longest single wait: a bound on how long a lost wake-up could last. */
#define EPOLL_MAX_WAIT (60 * VIGIL_NSEC_PER_SEC)

struct epoll_loop {
    struct vio_loop base;
    int epfd, sigfd;
    sigset_t mask;
    sigset_t old_mask; /* the thread's mask before: given back on destroy */
    bool mask_set;
    struct vio_source signals; /* the signalfd's own source */
    struct vio_source *child_source;
    bool no_pwait2;
};

static vigil_time_t el_now(struct vio_loop *l)
{
    (void)l;
    return vigil_clock_mono();
}

static int64_t el_wall_us(struct vio_loop *l)
{
    (void)l;
    return vigil_clock_wall_us();
}

static int el_wait(struct vio_loop *l, vigil_time_t until)
{
    struct epoll_loop *e = (struct epoll_loop *)l;
    struct epoll_event evs[EPOLL_BATCH];
    vigil_time_t dt = EPOLL_MAX_WAIT;
    if (until != VIGIL_TIME_NEVER) {
        vigil_time_t now = vigil_clock_mono();
        dt = until > now ? until - now : 0;
        if (dt > EPOLL_MAX_WAIT)
            dt = EPOLL_MAX_WAIT;
    }
    int n = -1;
    if (!e->no_pwait2) {
        struct timespec ts = {.tv_sec = dt / VIGIL_NSEC_PER_SEC,
                              .tv_nsec = dt % VIGIL_NSEC_PER_SEC};
        n = epoll_pwait2(e->epfd, evs, EPOLL_BATCH, &ts, NULL);
        if (n < 0 && errno == ENOSYS)
            e->no_pwait2 = true;
    }
    if (e->no_pwait2) {
        vigil_time_t ms = (dt + VIGIL_NSEC_PER_MSEC - 1) / VIGIL_NSEC_PER_MSEC;
        n = epoll_wait(e->epfd, evs, EPOLL_BATCH, (int)ms);
    }
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++)
        vio_source_ready(l, evs[i].data.ptr);
    return 0;
}

static int el_watch_fd(struct vio_loop *l, int fd, struct vio_source *src)
{
    struct epoll_loop *e = (struct epoll_loop *)l;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = src};
    return epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int el_watch_fd_events(struct vio_loop *l, int fd, unsigned events, struct vio_source *src)
{
    struct epoll_loop *e = (struct epoll_loop *)l;
    struct epoll_event ev = {.data.ptr = src};
    if (events & VIO_READ)
        ev.events |= EPOLLIN;
    if (events & VIO_WRITE)
        ev.events |= EPOLLOUT;
    /* Changing what is watched is the common case for a client's sockets: try that first. */
    if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
        return 0;
    if (errno != ENOENT)
        return -errno;
    return epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static void el_unwatch_fd(struct vio_loop *l, int fd)
{
    struct epoll_loop *e = (struct epoll_loop *)l;
    epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void el_destroy(struct vio_loop *l)
{
    struct epoll_loop *e = (struct epoll_loop *)l;
    if (e->sigfd >= 0)
        close(e->sigfd);
    if (e->epfd >= 0)
        close(e->epfd);
    if (e->mask_set)
        sigprocmask(SIG_SETMASK, &e->old_mask, NULL);
    vio_loop_base_destroy(l);
    free(e);
}

static const struct vio_loop_ops epoll_ops = {
    .now = el_now,
    .wait = el_wait,
    .wall_us = el_wall_us,
    .watch_fd = el_watch_fd,
    .watch_fd_events = el_watch_fd_events,
    .unwatch_fd = el_unwatch_fd,
    .destroy = el_destroy,
};

static void on_signalfd(void *arg, vigil_time_t now)
{
    struct epoll_loop *e = arg;
    struct signalfd_siginfo si;
    (void)now;
    while (read(e->sigfd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
            if (e->child_source)
                vio_source_ready(&e->base, e->child_source);
        } else {
            vio_loop_signal(&e->base, (int)si.ssi_signo);
        }
    }
}

int vio_loop_epoll_new(struct vio_loop **out)
{
    struct epoll_loop *e = calloc(1, sizeof(*e));
    if (!e)
        return -VIGIL_ENOMEM;
    vio_loop_base_init(&e->base, &epoll_ops);
    e->epfd = e->sigfd = -1;
    sigemptyset(&e->mask);
    sigaddset(&e->mask, SIGTERM);
    sigaddset(&e->mask, SIGINT);
    sigaddset(&e->mask, SIGHUP);
    sigaddset(&e->mask, SIGCHLD);
    int err = 0;
    if (sigprocmask(SIG_BLOCK, &e->mask, &e->old_mask) || !(e->mask_set = true) ||
        (e->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (e->sigfd = signalfd(-1, &e->mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
        err = -errno;
    if (!err) {
        vio_source_init(&e->signals, on_signalfd, e);
        err = el_watch_fd(&e->base, e->sigfd, &e->signals);
    }
    if (err) {
        el_destroy(&e->base);
        return err;
    }
    *out = &e->base;
    return 0;
}

void vio_loop_epoll_set_child_source(struct vio_loop *l, struct vio_source *src)
{
    ((struct epoll_loop *)l)->child_source = src;
}
