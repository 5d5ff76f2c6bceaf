/*
 * A stream exchange (vio.h): one request written, the answer read until
 * the peer closes, all non-blocking on the loop. The socket is watched for
 * writing while the request goes out (a TCP connect completes as the
 * socket becomes writable) and for reading after; a timer bounds the
 * whole exchange. HAProxy's runtime API answers a command and closes the
 * connection when the command does not ask for the interactive mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "netaddr.h"
#include "vio.h"

struct vio_exchange {
    struct vio_loop *loop;
    int fd;
    char *req;
    size_t req_len, sent;
    char *buf;
    size_t len, max;
    bool reading;
    bool connect_only; /* done once connected */
    char *until;       /* done once the answer holds this (NULL: when the peer closes) */
    int error;         /* a failure to connect found at once, reported from the loop */
    struct vio_source src;
    struct vio_timer timer;
    vio_exchange_done done;
    void *arg;
};

static void x_free(struct vio_exchange *x)
{
    vio_timer_disarm(x->loop, &x->timer);
    vio_source_cancel(x->loop, &x->src);
    if (x->fd >= 0) {
        vio_unwatch_fd(x->loop, x->fd);
        close(x->fd);
    }
    free(x->req);
    free(x->buf);
    free(x->until);
    free(x);
}

static void x_end(struct vio_exchange *x, int error)
{
    vio_exchange_done done = x->done;
    void *arg = x->arg;
    char *buf = x->buf;
    size_t len = x->len;
    x->buf = NULL;
    x_free(x);
    done(arg, error, error == 0 ? buf : NULL, error == 0 ? len : 0);
    free(buf);
}

static void x_timeout(void *arg, vigil_time_t now)
{
    (void)now;
    x_end(arg, -ETIMEDOUT);
}

static void x_ready(void *arg, vigil_time_t now)
{
    (void)now;
    struct vio_exchange *x = arg;
    if (x->error) {
        x_end(x, x->error);
        return;
    }
    if (!x->reading) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr != 0) {
            x_end(x, -soerr);
            return;
        }
        if (x->connect_only) {
            /* Writable with no error: connected (still connecting gives ENOTCONN below). */
            struct sockaddr_storage peer;
            socklen_t pl = sizeof(peer);
            if (getpeername(x->fd, (struct sockaddr *)&peer, &pl) == 0) {
                x_end(x, 0);
                return;
            }
            if (errno != ENOTCONN) {
                x_end(x, -errno);
                return;
            }
            return;
        }
        while (x->sent < x->req_len) {
            ssize_t n = send(x->fd, x->req + x->sent, x->req_len - x->sent, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)
                    return; /* still connecting, or the buffer is full: writable again later */
                x_end(x, -errno);
                return;
            }
            x->sent += (size_t)n;
        }
        x->reading = true;
        if (vio_watch_fd_events(x->loop, x->fd, VIO_READ, &x->src) != 0) {
            x_end(x, -ENOMEM);
            return;
        }
    }
    for (int rounds = 0; rounds < 64; rounds++) {
        char tmp[4096];
        ssize_t n = recv(x->fd, tmp, sizeof(tmp), 0);
        if (n == 0) {
            x_end(x, 0);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            x_end(x, -errno);
            return;
        }
        if (x->len + (size_t)n > x->max) {
            x_end(x, -EFBIG);
            return;
        }
        memcpy(x->buf + x->len, tmp, (size_t)n);
        x->len += (size_t)n;
        x->buf[x->len] = '\0';
        if (x->until && memmem(x->buf, x->len, x->until, strlen(x->until))) {
            x_end(x, 0);
            return;
        }
    }
    /* More to read: the fd stays readable, and the loop comes back. */
}

int vio_exchange_start(struct vio_loop *loop, const char *target, const char *req, size_t len,
                       size_t max, vigil_time_t timeout, vio_exchange_done done, void *arg,
                       struct vio_exchange **out)
{
    struct vio_exchange_opts o = {
        .target = target, .req = req, .len = len, .max = max, .timeout = timeout};
    return vio_exchange_start_opts(loop, &o, done, arg, out);
}

int vio_exchange_start_opts(struct vio_loop *loop, const struct vio_exchange_opts *o,
                            vio_exchange_done done, void *arg, struct vio_exchange **out)
{
    const char *target = o->target, *req = o->req ? o->req : "";
    size_t len = o->len, max = o->max;
    vigil_time_t timeout = o->timeout;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    memset(&ss, 0, sizeof(ss));
    if (target[0] == '/') {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        if (strlen(target) >= sizeof(un->sun_path))
            return -ENAMETOOLONG;
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, target);
        sl = sizeof(*un);
    } else if (vigil__addr_resolve(target, 0, &ss, &sl, NULL) != 0) {
        return -EINVAL;
    }
    struct vio_exchange *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->loop = loop;
    x->fd = -1;
    x->max = max ? max : 65536;
    x->req = malloc(len ? len : 1);
    x->buf = malloc(x->max + 1);
    x->done = done;
    x->arg = arg;
    vio_source_init(&x->src, x_ready, x);
    vio_timer_init(&x->timer, x_timeout, x);
    if (!x->req || !x->buf) {
        x_free(x);
        return -ENOMEM;
    }
    memcpy(x->req, req, len);
    x->req_len = len;
    x->connect_only = o->connect_only;
    if (o->until && o->until[0] && !(x->until = strdup(o->until))) {
        x_free(x);
        return -ENOMEM;
    }
    x->buf[0] = '\0';
    x->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (x->fd < 0) {
        int e = -errno;
        x_free(x);
        return e;
    }
    /*
     * A refused connection (nothing listening on the socket yet: HAProxy
     * restarting) is an answer like any, given from the loop, so that the
     * caller sees one path for every failure.
     */
    if (connect(x->fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS &&
        errno != EAGAIN) {
        x->error = -errno;
        if (vio_timer_arm(loop, &x->timer, loop->ops->now(loop) + timeout) != 0) {
            x_free(x);
            return -ENOMEM;
        }
        vio_source_ready(loop, &x->src);
        *out = x;
        return 0;
    }
    if (vio_watch_fd_events(loop, x->fd, VIO_WRITE, &x->src) != 0 ||
        vio_timer_arm(loop, &x->timer, loop->ops->now(loop) + timeout) != 0) {
        x_free(x);
        return -ENOMEM;
    }
    *out = x;
    return 0;
}

void vio_exchange_cancel(struct vio_exchange *x)
{
    if (x)
        x_free(x);
}
