/*
 * The real datagram transport: a non-blocking UDP socket, read in batches
 * with recvmmsg() and written with sendto().
 *
 * Arrival time is the kernel's. Each datagram carries the time the kernel
 * received it (SO_TIMESTAMPNS, CLOCK_REALTIME), and recv maps it onto the
 * monotonic clock by the offset between the two clocks read together at
 * the end of the batch. A heartbeat that waited in the socket buffer while
 * the monitor was stopped, slow, or busy is therefore judged by when it
 * reached the host, not when it was read. A stamp that is missing, or that
 * the mapping places in the future or more than an hour back (the wall
 * clock was stepped meanwhile), is replaced by the read time (and the
 * datagram says so): no worse than having no stamps at all.
 *
 * Drops are the kernel's too: with SO_RXQ_OVFL each datagram carries the
 * socket's count of datagrams dropped for a full buffer, and recv reports
 * how many were lost since the last it reported. A monitor that stalled
 * long enough to overflow its buffer knows that heartbeats of the stall
 * are missing, not late.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vigil/sender.h>

#include "io/netaddr.h"
#include "io/real.h"

/* Datagrams taken per recvmmsg call: amortises the system call. */
#define UDP_BATCH 64
/* Requested receive buffer: a few seconds of heartbeats from a large cluster. */
#define UDP_RCVBUF_BYTES (8 << 20)
/* A mapped stamp older than this is not believed (see above). */
#define UDP_STAMP_MAX_AGE (3600 * VIGIL_NSEC_PER_SEC)

struct udp {
    struct vio_transport base;
    struct vio_loop *loop;
    int fd;
    struct vigil_addr local;
    uint32_t ovfl; /* the kernel's count of drops (SO_RXQ_OVFL) last seen */
};

static int udp_recv(struct vio_transport *t, struct vio_dgram *d, size_t n)
{
    struct udp *u = (struct udp *)t;
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_storage from[UDP_BATCH];
    /* Room for the timestamp and the drop count of each datagram. */
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(uint32_t))];
        struct cmsghdr align;
    } ctl[UDP_BATCH];
    if (n > UDP_BATCH)
        n = UDP_BATCH;
    for (size_t i = 0; i < n; i++) {
        iov[i].iov_base = d[i].buf;
        /* One byte more than the caller's limit, so oversize is seen, not cut. */
        iov[i].iov_len = d[i].cap + 1;
        memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
        msgs[i].msg_hdr.msg_control = ctl[i].buf;
        msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
    }
    int got = recvmmsg(u->fd, msgs, (unsigned)n, MSG_DONTWAIT, NULL);
    if (got < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
    /* Both clocks, together: the offset maps kernel stamps onto the monotonic clock. */
    vigil_time_t mono = vigil_clock_mono();
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    vigil_time_t real = (vigil_time_t)rt.tv_sec * VIGIL_NSEC_PER_SEC + rt.tv_nsec;
    for (int i = 0; i < got; i++) {
        struct msghdr *h = &msgs[i].msg_hdr;
        d[i].len = msgs[i].msg_len;
        if (h->msg_flags & MSG_TRUNC || d[i].len > d[i].cap)
            d[i].len = d[i].cap + 1;
        vigil__addr_from_sockaddr((struct sockaddr *)&from[i], &d[i].from);
        d[i].arrival = mono;
        d[i].stamped = false;
        d[i].dropped = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
            if (c->cmsg_level != SOL_SOCKET)
                continue;
            if (c->cmsg_type == SO_RXQ_OVFL) {
                /* The socket's running count of drops: report what is new. */
                uint32_t total;
                memcpy(&total, CMSG_DATA(c), sizeof(total));
                d[i].dropped = total - u->ovfl;
                u->ovfl = total;
                continue;
            }
            if (c->cmsg_type != SCM_TIMESTAMPNS)
                continue;
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof(ts));
            vigil_time_t age = real - ((vigil_time_t)ts.tv_sec * VIGIL_NSEC_PER_SEC + ts.tv_nsec);
            if (age >= 0 && age <= UDP_STAMP_MAX_AGE) {
                d[i].arrival = mono - age;
                d[i].stamped = true;
            }
        }
    }
    return got;
}

static int udp_send(struct vio_transport *t, const struct vigil_addr *to, const uint8_t *buf,
                    size_t len)
{
    struct udp *u = (struct udp *)t;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (vigil__addr_to_sockaddr(to, &ss, &sl))
        return -EINVAL;
    for (int tries = 0; tries < 3; tries++) {
        if (sendto(u->fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl) >= 0)
            return 0;
        if (errno != EINTR)
            break;
    }
    return -errno;
}

static void udp_local(const struct vio_transport *t, struct vigil_addr *out)
{
    *out = ((const struct udp *)t)->local;
}

static void udp_close(struct vio_transport *t)
{
    struct udp *u = (struct udp *)t;
    vio_source_cancel(u->loop, &t->readable);
    if (u->fd >= 0) {
        u->loop->ops->unwatch_fd(u->loop, u->fd);
        close(u->fd);
    }
    free(u);
}

static const struct vio_transport_ops udp_ops = {
    .recv = udp_recv,
    .send = udp_send,
    .local = udp_local,
    .close = udp_close,
};

/* Opens a socket: bound (a listener, watched by the loop) or not (a sender). */
static int udp_open(struct vio_net *n, struct vio_loop *l, const struct vigil_addr *bind_to,
                    int family, struct vio_transport **out)
{
    (void)n;
    struct udp *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->base.ops = &udp_ops;
    u->loop = l;
    vio_source_init(&u->base.readable, NULL, NULL);
    if (bind_to)
        family = bind_to->family;
    u->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0) {
        int err = -errno;
        free(u);
        return err;
    }
    int one = 1, size = UDP_RCVBUF_BYTES;
    if (family == AF_INET6)
        setsockopt(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind_to) {
        /* FORCE passes rmem_max when privileged; otherwise the plain request is capped. */
        if (setsockopt(u->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
            setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        setsockopt(u->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
        setsockopt(u->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
        struct sockaddr_storage ss;
        socklen_t sl;
        int err = 0;
        if (vigil__addr_to_sockaddr(bind_to, &ss, &sl))
            err = -EINVAL;
        else if (bind(u->fd, (struct sockaddr *)&ss, sl))
            err = -errno;
        else
            err = l->ops->watch_fd(l, u->fd, &u->base.readable);
        if (err) {
            close(u->fd);
            free(u);
            return err;
        }
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(u->fd, (struct sockaddr *)&ss, &sl) == 0)
        vigil__addr_from_sockaddr((struct sockaddr *)&ss, &u->local);
    *out = &u->base;
    return 0;
}

static int udp_resolve(struct vio_net *n, const char *spec, uint16_t default_port,
                       struct vigil_addr *out, const char **why)
{
    (void)n;
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = vigil__addr_resolve(spec, default_port, &ss, &sl, why);
    if (rc == 0)
        vigil__addr_from_sockaddr((struct sockaddr *)&ss, out);
    return rc;
}

struct vio_net vio_net_udp = {
    .ops = &(const struct vio_net_ops){.open = udp_open, .resolve = udp_resolve}};
