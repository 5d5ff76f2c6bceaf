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
 *
 * A listener with receive threads (udp_listen) spreads the reading over
 * cores. Each thread has a socket of its own on the same address
 * (SO_REUSEPORT: the kernel picks the socket by the sender's address and
 * port, so one sender's datagrams always reach the same thread, in order)
 * and reads it with recvmmsg straight into a ring of slots it shares with
 * the loop's thread alone: one writer, one reader, no lock. A thread
 * stamps what it read exactly as above, so the arrival times and drop
 * counts are the same as with one socket. The loop's thread is woken
 * through an eventfd only when it said it was about to sleep. When a ring
 * is full its thread stops reading and the kernel's buffer holds the rest
 * (and counts what it must drop), as it does for a loop that is slow.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vigil/sender.h>
#include <vigil/wire.h>

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

/* One recvmmsg call's headers, for up to UDP_BATCH datagrams. */
struct udp_batch {
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_storage from[UDP_BATCH];
    /* Room for the timestamp and the drop count of each datagram. */
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(uint32_t))];
        struct cmsghdr align;
    } ctl[UDP_BATCH];
};

/* Points header i of b at d's buffer. */
static void batch_prepare(struct udp_batch *b, size_t i, struct vio_dgram *d)
{
    b->iov[i].iov_base = d->buf;
    /* One byte more than the caller's limit, so oversize is seen, not cut. */
    b->iov[i].iov_len = d->cap + 1;
    memset(&b->msgs[i].msg_hdr, 0, sizeof(b->msgs[i].msg_hdr));
    b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
    b->msgs[i].msg_hdr.msg_iovlen = 1;
    b->msgs[i].msg_hdr.msg_name = &b->from[i];
    b->msgs[i].msg_hdr.msg_namelen = sizeof(b->from[i]);
    b->msgs[i].msg_hdr.msg_control = b->ctl[i].buf;
    b->msgs[i].msg_hdr.msg_controllen = sizeof(b->ctl[i].buf);
}

/*
 * Fills in the got datagrams a recvmmsg call returned: length, sender,
 * arrival time and drops. *ovfl is the socket's drop count last seen.
 */
static void batch_finish(struct udp_batch *b, int got, struct vio_dgram *d, uint32_t *ovfl)
{
    struct mmsghdr *msgs = b->msgs;
    /*
     * Both clocks, together: the offset maps kernel stamps onto the
     * monotonic clock. The realtime clock is read between two monotonic
     * readings, and again if they lie far apart (the thread was preempted
     * in between), so the offset is right to a few microseconds.
     */
    vigil_time_t mono = 0, real = 0;
    for (int tries = 0; tries < 4; tries++) {
        struct timespec rt;
        vigil_time_t m0 = vigil_clock_mono();
        clock_gettime(CLOCK_REALTIME, &rt);
        vigil_time_t m1 = vigil_clock_mono();
        mono = m0 + (m1 - m0) / 2;
        real = (vigil_time_t)rt.tv_sec * VIGIL_NSEC_PER_SEC + rt.tv_nsec;
        if (m1 - m0 < 20 * 1000)
            break;
    }
    for (int i = 0; i < got; i++) {
        struct msghdr *h = &msgs[i].msg_hdr;
        d[i].len = msgs[i].msg_len;
        if (h->msg_flags & MSG_TRUNC || d[i].len > d[i].cap)
            d[i].len = d[i].cap + 1;
        vigil__addr_from_sockaddr((struct sockaddr *)&b->from[i], &d[i].from);
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
                d[i].dropped = total - *ovfl;
                *ovfl = total;
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
}

static int udp_recv(struct vio_transport *t, struct vio_dgram *d, size_t n)
{
    struct udp *u = (struct udp *)t;
    struct udp_batch b;
    if (n > UDP_BATCH)
        n = UDP_BATCH;
    for (size_t i = 0; i < n; i++)
        batch_prepare(&b, i, &d[i]);
    int got = recvmmsg(u->fd, b.msgs, (unsigned)n, MSG_DONTWAIT, NULL);
    if (got < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
    batch_finish(&b, got, d, &u->ovfl);
    return got;
}

/* Sends one datagram on fd. */
static int send_on(int fd, const struct vigil_addr *to, const uint8_t *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (vigil__addr_to_sockaddr(to, &ss, &sl))
        return -EINVAL;
    for (int tries = 0; tries < 3; tries++) {
        if (sendto(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl) >= 0)
            return 0;
        if (errno != EINTR)
            break;
    }
    return -errno;
}

static int udp_send(struct vio_transport *t, const struct vigil_addr *to, const uint8_t *buf,
                    size_t len)
{
    return send_on(((struct udp *)t)->fd, to, buf, len);
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

/*
 * A socket of family (bind_to's, when given), bound to bind_to with the
 * listener's options, or unbound; non-blocking. group: a member of a
 * SO_REUSEPORT group. Returns the fd, or -errno.
 */
static int socket_open(const struct vigil_addr *bind_to, int family, bool group, size_t rcvbuf)
{
    if (bind_to)
        family = bind_to->family;
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    int size = rcvbuf == 0              ? UDP_RCVBUF_BYTES
               : rcvbuf > INT32_MAX / 2 ? INT32_MAX / 2
                                        : (int)rcvbuf;
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (!bind_to)
        return fd;
    /* FORCE passes rmem_max when privileged; otherwise the plain request is capped. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
    int err = 0;
    if (group && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
        err = -errno;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!err && vigil__addr_to_sockaddr(bind_to, &ss, &sl))
        err = -EINVAL;
    else if (!err && bind(fd, (struct sockaddr *)&ss, sl))
        err = -errno;
    if (err) {
        close(fd);
        return err;
    }
    return fd;
}

/* The address fd is bound to. */
static void socket_local(int fd, struct vigil_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        vigil__addr_from_sockaddr((struct sockaddr *)&ss, out);
}

/* A socket bound (a listener, watched by the loop) or not (a sender); rcvbuf as listen's. */
static int open_plain(struct vio_loop *l, const struct vigil_addr *bind_to, int family,
                      size_t rcvbuf, struct vio_transport **out)
{
    struct udp *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->base.ops = &udp_ops;
    u->loop = l;
    vio_source_init(&u->base.readable, NULL, NULL);
    u->fd = socket_open(bind_to, family, false, rcvbuf);
    if (u->fd < 0) {
        int err = u->fd;
        free(u);
        return err;
    }
    if (bind_to) {
        int err = l->ops->watch_fd(l, u->fd, &u->base.readable);
        if (err) {
            close(u->fd);
            free(u);
            return err;
        }
    }
    socket_local(u->fd, &u->local);
    *out = &u->base;
    return 0;
}

static int udp_open(struct vio_net *n, struct vio_loop *l, const struct vigil_addr *bind_to,
                    int family, struct vio_transport **out)
{
    (void)n;
    return open_plain(l, bind_to, family, 0, out);
}

/* --- a listener with receive threads ---------------------------------- */

/* Slots in each thread's ring (a power of two): about 2.5 MB. */
#define UDP_RING_SLOTS 2048u
#define UDP_RING_MASK  (UDP_RING_SLOTS - 1)
/* How long a thread waits at most in poll: it looks at the stop flag that often. */
#define UDP_GROUP_WAKE_MS 100
/* How long a thread whose ring is full waits before it looks again. */
#define UDP_FULL_WAIT_NS (200 * 1000)
/*
 * How long a thread waits after a short batch before it reads again, so
 * that what comes meanwhile is read in one call, not one wakeup each. The
 * arrival times are the kernel's, so this costs no accuracy; the loop
 * waits for a thread with datagrams in its socket before it judges.
 */
#define UDP_COALESCE_NS (500 * 1000)

/* A datagram read by a receive thread: as the loop's thread will be given it. */
struct udp_slot {
    struct vio_dgram d;
    uint8_t data[VIGIL_WIRE_MAX + 1];
};

struct udp_group;

/* A receive thread, its socket and its ring. */
struct udp_rx {
    struct udp_group *g;
    int fd;
    uint32_t ovfl; /* the socket's drop count last seen (the thread's) */
    pthread_t thread;
    bool started;
    struct udp_slot *slots;
    /* Written by the thread: the slots before head are filled. */
    _Alignas(64) _Atomic uint32_t head;
    /* The thread is reading its socket or holds datagrams not yet published. */
    _Atomic bool reading;
    /*
     * Every datagram of the socket that arrived before mark (monotonic
     * time) is published: written by the thread after head.
     */
    _Atomic int64_t mark;
    /* Written by the loop's thread: the slots before tail are free again. */
    _Alignas(64) _Atomic uint32_t tail;
    /* The loop's thread's own: the slots before taken are handed out (taken - tail: in use). */
    uint32_t taken;
};

struct udp_group {
    struct vio_transport base;
    struct vio_loop *loop;
    int efd;     /* an eventfd the loop watches: written when armed */
    int stop_fd; /* an eventfd the threads poll beside their sockets: written to stop them */
    /* The loop's thread found the rings empty and may sleep: wake it. */
    _Atomic bool armed;
    /* The loop holds datagrams back until a thread says it has nothing older (group_recv). */
    _Atomic bool held;
    _Atomic bool stop;
    _Atomic int error; /* a thread's last receive error (errno), reported once */
    struct vigil_addr local;
    unsigned n;
    struct udp_rx rx[VIO_RECV_THREADS_MAX];
};

/*
 * Wakes the loop if it said it may sleep. Everything the thread changed
 * (head, mark, reading) is stored before; the loop arms, then looks at
 * all three again (group_recv): one of the two sees the other.
 */
static void wake_loop(struct udp_group *g)
{
    if (atomic_exchange(&g->armed, false)) {
        uint64_t one = 1;
        ssize_t w = write(g->efd, &one, sizeof(one));
        (void)w; /* a full counter wakes the loop as well */
    }
}

static void *rx_main(void *arg)
{
    struct udp_rx *r = arg;
    struct udp_group *g = r->g;
    /* Named, so that top -H and perf tell the receive threads from the loop's. */
    pthread_setname_np(pthread_self(), "vigil-recv");
    struct udp_batch b;
    struct vio_dgram d[UDP_BATCH];
    struct pollfd pf[2] = {{.fd = r->fd, .events = POLLIN}, {.fd = g->stop_fd, .events = POLLIN}};
    while (!atomic_load_explicit(&g->stop, memory_order_relaxed)) {
        uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (UDP_RING_SLOTS - (head - tail) < UDP_BATCH) {
            /* The loop is behind: leave the rest in the kernel's buffer. */
            struct timespec ts = {.tv_sec = 0, .tv_nsec = UDP_FULL_WAIT_NS};
            nanosleep(&ts, NULL);
            continue;
        }
        /*
         * reading is 1 from before the socket is read until the socket was
         * found empty: while the socket holds datagrams or this thread has
         * some in hand, the loop can tell (group_pending).
         */
        atomic_store(&r->reading, true);
        vigil_time_t before = vigil_clock_mono();
        for (unsigned i = 0; i < UDP_BATCH; i++) {
            struct udp_slot *sl = &r->slots[(head + i) & UDP_RING_MASK];
            d[i].buf = sl->data;
            d[i].cap = VIGIL_WIRE_MAX;
            batch_prepare(&b, i, &d[i]);
        }
        int got = recvmmsg(r->fd, b.msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0) {
            int e = got < 0 ? errno : 0;
            if (e == EINTR)
                continue;
            if (e && e != EAGAIN && e != EWOULDBLOCK) {
                atomic_store(&r->reading, false);
                atomic_store(&g->error, e);
                struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
                continue;
            }
            /* Empty at `before`: everything that came earlier is published. */
            atomic_store(&r->mark, before);
            atomic_store(&r->reading, false);
            if (atomic_load(&g->held))
                wake_loop(g);
            poll(pf, 2, UDP_GROUP_WAKE_MS);
            continue;
        }
        batch_finish(&b, got, d, &r->ovfl);
        for (int i = 0; i < got; i++)
            r->slots[(head + (uint32_t)i) & UDP_RING_MASK].d = d[i];
        /*
         * Publish, then wake the loop if it said it may sleep. Both are
         * sequentially consistent, as are the loop's arming and its look
         * at head: one of the two always sees the other.
         */
        atomic_store(&r->head, head + (uint32_t)got);
        /*
         * The socket is read in order: what came before the last datagram
         * is published with it, and a short batch emptied the socket at
         * `before`, so everything older than that is published too.
         */
        vigil_time_t last = d[got - 1].arrival;
        atomic_store(&r->mark, got < UDP_BATCH && before > last ? before : last);
        if (got < UDP_BATCH)
            atomic_store(&r->reading, false);
        wake_loop(g);
        if (got < UDP_BATCH) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = UDP_COALESCE_NS};
            nanosleep(&ts, NULL);
        }
    }
    atomic_store(&r->reading, false);
    return NULL;
}

static bool rings_empty(struct udp_group *g)
{
    for (unsigned k = 0; k < g->n; k++)
        if (atomic_load(&g->rx[k].head) != g->rx[k].taken)
            return false;
    return true;
}

/*
 * True while datagrams that already reached the host may not have been
 * handed out yet: a ring holds some, a thread is reading or has some in
 * hand, or a socket holds some (a thread that has not run since they
 * came: the whole process was stopped, say). The loop waits for them
 * before it judges, as it reads its own socket before judging.
 */
static bool group_pending(struct vio_transport *t)
{
    struct udp_group *g = (struct udp_group *)t;
    if (!rings_empty(g))
        return true;
    for (unsigned k = 0; k < g->n; k++) {
        struct udp_rx *r = &g->rx[k];
        int queued = 0;
        if (atomic_load(&r->reading))
            return true;
        if (ioctl(r->fd, SIOCINQ, &queued) == 0 && queued > 0)
            return true;
        /* Published after the look at the rings above. */
        if (atomic_load(&r->head) != r->taken)
            return true;
    }
    return false;
}

/* What the loop saw of a ring: for group_recv's second look, after arming. */
struct ring_view {
    uint32_t head;
    int64_t mark;
    bool reading;
};

/*
 * How far ring r can be trusted to be complete, for a ring with nothing
 * left to hand out: every datagram of its socket that arrived before the
 * time returned is handed out. A thread at rest (not reading, its socket
 * empty) is complete up to now, read before the looks; otherwise up to
 * the mark it published.
 */
static int64_t ring_complete(struct udp_rx *r, int64_t now, struct ring_view *v)
{
    /* A thread at work is complete up to its mark: no need to ask its socket (a system call). */
    bool empty = false;
    if (!atomic_load(&r->reading)) {
        int queued = 0;
        empty = ioctl(r->fd, SIOCINQ, &queued) == 0 && queued == 0;
    }
    /*
     * Looked at again after the socket: a thread that took datagrams from
     * it meanwhile had said it was reading before, and says so until it
     * has published them (then head has moved).
     */
    v->reading = atomic_load(&r->reading);
    v->mark = atomic_load(&r->mark);
    v->head = atomic_load(&r->head);
    if (v->head != r->taken)
        return INT64_MAX; /* more was published meanwhile: not a limit */
    return empty && !v->reading ? now : v->mark;
}

/*
 * Takes up to n datagrams from the rings in the order they reached the
 * host: each ring is in its socket's order, and the rings are merged by
 * arrival time. A datagram is handed out only once every other ring is
 * known to hold nothing older: a thread that has not caught up yet (the
 * whole process was stopped, say, and its socket still holds what came
 * meanwhile) holds the newer datagrams of the others back until it has.
 * So the monitor sees every node's heartbeats at their arrival times and
 * in order, as with one socket.
 *
 * No copy: each d[i].buf is pointed at the slot the thread read into,
 * which stays the caller's until its next call (only then is the slot
 * given back to the thread). When it gives fewer than n, the caller may
 * stop reading: the loop is armed to be woken by the next change.
 */
static int group_recv(struct vio_transport *t, struct vio_dgram *d, size_t n)
{
    struct udp_group *g = (struct udp_group *)t;
    for (unsigned k = 0; k < g->n; k++) {
        struct udp_rx *r = &g->rx[k];
        if (r->taken != atomic_load_explicit(&r->tail, memory_order_relaxed))
            atomic_store_explicit(&r->tail, r->taken, memory_order_release);
    }
    int e = atomic_exchange(&g->error, 0);
    if (e)
        return -e;
    uint32_t head[VIO_RECV_THREADS_MAX];
    struct ring_view seen[VIO_RECV_THREADS_MAX];
    int64_t now = vigil_clock_mono();
    /* Before the heads: a mark is stored after its head (see rx_main). */
    for (unsigned k = 0; k < g->n; k++)
        head[k] = atomic_load_explicit(&g->rx[k].head, memory_order_acquire);
    /* Each empty ring's limit (ring_complete), looked at once per call: INT64_MIN, not yet. */
    int64_t lim[VIO_RECV_THREADS_MAX];
    for (unsigned k = 0; k < g->n; k++)
        lim[k] = INT64_MIN;
    size_t got = 0;
    bool held = false;
    while (got < n) {
        /* The oldest datagram at the front of a ring, and the limit of the rings with none. */
        int best = -1;
        int64_t best_at = INT64_MAX, limit = INT64_MAX;
        for (unsigned k = 0; k < g->n; k++) {
            struct udp_rx *r = &g->rx[k];
            if (r->taken == head[k] && lim[k] == INT64_MIN) {
                lim[k] = ring_complete(r, now, &seen[k]);
                if (lim[k] == INT64_MAX) { /* published meanwhile: into the merge */
                    head[k] = seen[k].head;
                    lim[k] = INT64_MIN;
                }
            }
            if (r->taken != head[k]) {
                int64_t at = r->slots[r->taken & UDP_RING_MASK].d.arrival;
                if (at < best_at)
                    best_at = at, best = (int)k;
            } else if (lim[k] < limit) {
                limit = lim[k];
            }
        }
        if (best < 0 || best_at > limit) {
            held = best >= 0;
            break;
        }
        struct udp_rx *r = &g->rx[best];
        struct udp_slot *sl = &r->slots[r->taken & UDP_RING_MASK];
        struct vio_dgram *o = &d[got++];
        size_t cap = o->cap;
        *o = sl->d;
        o->cap = cap;
        if (o->len > cap) /* longer than the caller takes: oversize, as recv says it */
            o->len = cap + 1;
        r->taken++;
    }
    /* Held back for a thread not caught up: it must wake the loop once it is. */
    atomic_store(&g->held, held);
    if (got < n) {
        for (unsigned k = 0; k < g->n; k++) {
            /* A ring emptied by the last pass, for the look after arming. */
            if (g->rx[k].taken == head[k] && lim[k] == INT64_MIN)
                (void)ring_complete(&g->rx[k], now, &seen[k]);
        }
        uint64_t v;
        ssize_t rd = read(g->efd, &v, sizeof(v)); /* clears it; nothing to read is fine */
        (void)rd;
        atomic_store(&g->armed, true);
        /* A thread that changed anything before the arming: come back for it. */
        for (unsigned k = 0; k < g->n; k++) {
            struct udp_rx *r = &g->rx[k];
            if (atomic_load(&r->head) != head[k] ||
                (r->taken == head[k] && (atomic_load(&r->mark) != seen[k].mark ||
                                         atomic_load(&r->reading) != seen[k].reading))) {
                vio_source_ready(g->loop, &t->readable);
                break;
            }
        }
    }
    return (int)got;
}

static int group_send(struct vio_transport *t, const struct vigil_addr *to, const uint8_t *buf,
                      size_t len)
{
    return send_on(((struct udp_group *)t)->rx[0].fd, to, buf, len);
}

static void group_local(const struct vio_transport *t, struct vigil_addr *out)
{
    *out = ((const struct udp_group *)t)->local;
}

static void group_close(struct vio_transport *t)
{
    struct udp_group *g = (struct udp_group *)t;
    atomic_store(&g->stop, true);
    if (g->stop_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(g->stop_fd, &one, sizeof(one));
        (void)w; /* the threads also look at the flag every UDP_GROUP_WAKE_MS */
    }
    for (unsigned k = 0; k < g->n; k++) {
        /* Each thread sees the flag within UDP_GROUP_WAKE_MS. */
        if (g->rx[k].started)
            pthread_join(g->rx[k].thread, NULL);
        if (g->rx[k].fd >= 0)
            close(g->rx[k].fd);
        free(g->rx[k].slots);
    }
    if (g->loop) {
        vio_source_cancel(g->loop, &t->readable);
        if (g->efd >= 0)
            g->loop->ops->unwatch_fd(g->loop, g->efd);
    }
    if (g->efd >= 0)
        close(g->efd);
    if (g->stop_fd >= 0)
        close(g->stop_fd);
    free(g);
}

static const struct vio_transport_ops group_ops = {
    .recv = group_recv,
    .pending = group_pending,
    .send = group_send,
    .local = group_local,
    .close = group_close,
};

static int udp_listen(struct vio_net *n, struct vio_loop *l, const struct vigil_addr *bind_to,
                      unsigned threads, size_t rcvbuf, struct vio_transport **out)
{
    (void)n;
    if (threads <= 1)
        return open_plain(l, bind_to, bind_to->family, rcvbuf, out);
    if (threads > VIO_RECV_THREADS_MAX)
        return -EINVAL;
    struct udp_group *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->base.ops = &group_ops;
    vio_source_init(&g->base.readable, NULL, NULL);
    g->efd = -1;
    g->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (g->stop_fd < 0) {
        int err = -errno;
        free(g);
        return err;
    }
    for (unsigned k = 0; k < VIO_RECV_THREADS_MAX; k++)
        g->rx[k].fd = -1;
    int err = 0;
    struct vigil_addr at = *bind_to;
    for (unsigned k = 0; k < threads && !err; k++) {
        struct udp_rx *r = &g->rx[k];
        r->g = g;
        g->n = k + 1;
        r->slots = calloc(UDP_RING_SLOTS, sizeof(*r->slots));
        if (!r->slots) {
            err = -ENOMEM;
            break;
        }
        r->fd = socket_open(&at, at.family, true, rcvbuf);
        if (r->fd < 0) {
            err = r->fd;
            break;
        }
        if (k == 0) {
            /* The others join the first on its port (the one the kernel chose, for port 0). */
            socket_local(r->fd, &g->local);
            at.port = g->local.port;
        }
    }
    if (!err) {
        g->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (g->efd < 0)
            err = -errno;
    }
    if (!err) {
        err = l->ops->watch_fd(l, g->efd, &g->base.readable);
        if (!err)
            g->loop = l;
    }
    atomic_store(&g->armed, true);
    for (unsigned k = 0; k < g->n && !err; k++) {
        int rc = pthread_create(&g->rx[k].thread, NULL, rx_main, &g->rx[k]);
        if (rc)
            err = -rc;
        else
            g->rx[k].started = true;
    }
    if (err) {
        group_close(&g->base);
        return err;
    }
    *out = &g->base;
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

struct vio_net vio_net_udp = {.ops = &(const struct vio_net_ops){
                                  .open = udp_open, .resolve = udp_resolve, .listen = udp_listen}};
