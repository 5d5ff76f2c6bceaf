/*
 * The real notify of struct vio_env: the daemon's state told to systemd,
 * for units of Type=notify (examples/systemd, installed as
 * vigil-monitor.service and vigil-agent.service).
 *
 * systemd names a datagram socket in NOTIFY_SOCKET; a message is a few
 * "NAME=value" lines ("READY=1"). With libsystemd (HAVE_LIBSYSTEMD) it is
 * sd_notify(3); without it, the same datagram sent here, the protocol
 * being a stable, documented interface of systemd. Either way a daemon
 * not started by systemd (no NOTIFY_SOCKET) sends nothing, and a message
 * that cannot be sent is dropped: telling the service manager must never
 * stop the daemon.
 *
 * The watchdog: a unit with WatchdogSec= gets WATCHDOG_USEC (and
 * WATCHDOG_PID, our pid) and must send "WATCHDOG=1" more often than that,
 * or systemd kills and restarts it. From READY=1 on, a timer on the loop
 * sends it every half of that interval; STOPPING=1 ends it. The timer runs
 * only while the loop turns, so a loop that hangs starves the watchdog,
 * which is what it is for.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "io/real.h"

/* The shortest keep-alive period: a watchdog of a few ms would keep the loop busy for nothing. */
#define WATCHDOG_MIN_PERIOD (10 * VIGIL_NSEC_PER_MSEC)

struct vio_notifier {
    struct vio_loop *loop;
    struct vio_timer watchdog;
    vigil_time_t period; /* half of WATCHDOG_USEC; 0: no watchdog */
    bool stopping;       /* STOPPING=1 was sent: no more keep-alives */
};

#ifndef HAVE_LIBSYSTEMD
/* sd_notify(0, msg) without libsystemd: 1 sent, 0 nobody to tell, or -errno. */
static int notify_send(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    /* A path, or an abstract socket written with a leading '@'. */
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
        return -EINVAL;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&sa,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    int rc = n < 0 ? -errno : 1;
    close(fd);
    return rc;
}

/* sd_watchdog_enabled(0, &usec) without libsystemd. */
static int watchdog_usec(uint64_t *usec)
{
    const char *s = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0)
        return -EINVAL;
    /* The watchdog is meant for the process systemd started, not for its children. */
    if (pid && *pid && strtol(pid, NULL, 10) != (long)getpid())
        return 0;
    *usec = v;
    return 1;
}
#else
static int notify_send(const char *msg)
{
    return sd_notify(0, msg);
}

static int watchdog_usec(uint64_t *usec)
{
    return sd_watchdog_enabled(0, usec);
}
#endif

static void on_watchdog(void *arg, vigil_time_t now)
{
    struct vio_notifier *n = arg;
    notify_send("WATCHDOG=1");
    vio_timer_arm(n->loop, &n->watchdog, now + n->period);
}

int vio_notifier_new(struct vio_loop *l, struct vio_notifier **out)
{
    struct vio_notifier *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->loop = l;
    vio_timer_init(&n->watchdog, on_watchdog, n);
    uint64_t usec = 0;
    if (watchdog_usec(&usec) > 0) {
        vigil_time_t half = (vigil_time_t)(usec > INT64_MAX / 1000 ? INT64_MAX / 1000 : usec) * 500;
        n->period = half < WATCHDOG_MIN_PERIOD ? WATCHDOG_MIN_PERIOD : half;
    }
    *out = n;
    return 0;
}

void vio_notifier_send(struct vio_notifier *n, const char *state)
{
    if (n->stopping)
        return;
    if (strcmp(state, "RELOADING=1") == 0) {
        /*
         * systemd 253 and later want the time the reload began with it
         * (Type=notify-reload); older ones ignore the line.
         */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        char msg[64];
        snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
                 (unsigned long long)ts.tv_sec * 1000000ull +
                     (unsigned long long)ts.tv_nsec / 1000);
        notify_send(msg);
        return;
    }
    notify_send(state);
    if (strcmp(state, "STOPPING=1") == 0) {
        n->stopping = true;
        vio_timer_disarm(n->loop, &n->watchdog);
    } else if (strcmp(state, "READY=1") == 0 && n->period > 0 && !vio_timer_armed(&n->watchdog)) {
        vio_timer_arm(n->loop, &n->watchdog, vio_now(n->loop) + n->period);
    }
}

void vio_notifier_free(struct vio_notifier *n)
{
    if (!n)
        return;
    vio_timer_disarm(n->loop, &n->watchdog);
    free(n);
}
