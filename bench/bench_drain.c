/*
 * bench_drain: the receive path at the limit of its cores.
 *
 * A receiver that keeps up with its sender spends part of its time
 * waiting and waking, and on a machine of two cores the sender needs one
 * of them. Neither says what a core can take. So here the receiver is
 * stopped (SIGSTOP) while a sender fills its socket buffers with a paced
 * stream, then continued: it drains what waits at full speed, alone on
 * its cores, and its own CPU time per datagram is what a core costs.
 *
 * The stream is the production one: 100,000 node ids, each with its own
 * key under a master key, wire version 2, a full status (with a custom
 * pair) in every 30 heartbeats and beats in between, as `vigil agent`
 * sends by default. The sender paces it at two heartbeats per node per
 * second (--rate), so the kernel's arrival times are those of a real
 * cluster and the monitor learns the intervals it would. Each node sends
 * from one of 64 sockets, always the same. A warm-up round registers the
 * nodes; then each drain is --rounds rounds (by default 2 s of heartbeats).
 * Each receiver runs --drains drains, and the receivers take turns
 * --repeat times, so that what else the machine does falls on all alike.
 *
 * Receivers, each a fresh process, pinned:
 *
 *   bare-1   one socket with the daemon's options (8 MB buffer made 1 GB
 *            here to hold a drain, kernel timestamps, drop counts),
 *            recvmmsg in batches of 64 (--batch: other sizes, side by
 *            side), counting: the ceiling of one core.
 *   uring-1  the same socket read with io_uring's multishot recvmsg and a
 *            ring of provided buffers (built when liburing is found).
 *   mon-1    the monitor on one core: the real transport (src/io/udp.c)
 *            in the epoll loop, each batch through vigil_monitor_on_batch
 *            at the kernel's arrival time, deadlines run when due, events
 *            drained: the daemon's read path (src/vigil/monitord.c).
 *   bare-2   two sockets in a SO_REUSEPORT group, a thread each, on two
 *            cores.
 *   mon-2    the monitor with receive_threads = 2 on two cores: two
 *            receive threads and the loop's thread that judges.
 *
 * It prints, for each, datagrams per second of the drain (wall clock) and
 * per CPU-second of the receiver, and the ratios the targets name: mon-1
 * against bare-1 per CPU-second and by the split of mon-1's time between
 * receiving and the core, and the scaling from one core to two of the
 * monitor beside the bare loop's. Nothing is asserted.
 *
 *   bench_drain [--nodes N] [--rounds R] [--drains D] [--rate R] [--only LIST]
 *               [--batch N]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <vigil/monitor.h>
#include <vigil/sender.h>
#include <vigil/wire.h>

#include "io/real.h"

#ifdef VIGIL_HAVE_URING
#include <liburing.h>
#endif

#define BATCH        64
#define BATCH_MAX    1024
#define MAX_BATCHES  64
#define SENDER_SOCKS 64
#define ID_FORMAT    "node-%07u"
#define ID_SLOT      16
#define DGRAM_MAX    192
#define RCVBUF_BYTES (1 << 30)
#define MAX_DRAINS   9
#define MAX_REPEAT   5
#define DRAIN_WAIT_S 120
#define IDLE_END_MS  500
#define STATUS_EVERY VIGIL_SENDER_STATUS_EVERY_DEFAULT
#define TARGET_RATE  1000000.0
#define TARGET_RATIO 0.80
#define TARGET_SCALE 1.8

enum kind { BARE1, URING1, MON1, BARE2, MON2, KINDS };
static const char *const kind_name[KINDS] = {"bare-1", "uring-1", "mon-1", "bare-2", "mon-2"};
static const unsigned kind_cores[KINDS] = {1, 1, 1, 2, 2};

struct opts {
    unsigned nodes, rounds, drains, repeat;
    double rate; /* heartbeats per node per second */
    bool only[KINDS];
};

/* Shared with the receiver (mapped before fork). */
struct shared {
    _Atomic int ready;
    _Atomic uint16_t port;
    _Atomic uint64_t expect;   /* datagrams the receiver must have counted, all drains so far */
    _Atomic uint64_t received; /* datagrams it counted */
    _Atomic uint64_t accepted; /* heartbeats the monitor accepted */
    _Atomic uint64_t drops;    /* the kernel's drops, as the receiver saw them */
    _Atomic unsigned drain;    /* the drain the receiver works on (1, 2, ...; 0: warm-up) */
    _Atomic unsigned done;     /* the last drain it finished */
    /* Per drain: the receiver's wall time, CPU time, and mon-1's split. */
    int64_t t_cont[MAX_DRAINS + 1];
    int64_t wall_ns[MAX_DRAINS + 1], cpu_ns[MAX_DRAINS + 1];
    int64_t recv_ns[MAX_DRAINS + 1], core_ns[MAX_DRAINS + 1];
    uint64_t count[MAX_DRAINS + 1];
};

static void die(const char *what)
{
    fprintf(stderr, "bench_drain: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int64_t proc_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static void pin(unsigned cores)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (unsigned c = 0; c < cores; c++)
        CPU_SET(c, &set);
    sched_setaffinity(0, sizeof(set), &set);
}

static void sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    nanosleep(&ts, NULL);
}

/* --- the stream ------------------------------------------------------- */

static uint8_t master[VIGIL_WIRE_KEY_LEN];

/* The node's tag key under the master key, as its agent holds it. */
static void node_mac(unsigned i, uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN])
{
    char id[ID_SLOT];
    snprintf(id, sizeof(id), ID_FORMAT, i);
    uint8_t nk[VIGIL_WIRE_KEY_LEN];
    if (vigil_wire_node_key(nk, master, id))
        die("node key");
    vigil_wire_mac_key(mac, nk);
}

/*
 * The sender: rounds [r0, r0 + n) of the stream to port, paced at
 * nodes x rate per second, node i always on socket i % SENDER_SOCKS.
 */
static void send_rounds(const struct opts *o, uint8_t (*macs)[VIGIL_WIRE_MAC_KEY_LEN],
                        uint16_t port, unsigned r0, unsigned n)
{
    int fds[SENDER_SOCKS];
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int j = 0; j < SENDER_SOCKS; j++) {
        fds[j] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fds[j] < 0 || connect(fds[j], (struct sockaddr *)&to, sizeof(to)))
            die("sender socket");
    }
    static uint8_t buf[SENDER_SOCKS][BATCH][DGRAM_MAX];
    static struct mmsghdr msgs[SENDER_SOCKS][BATCH];
    static struct iovec iov[SENDER_SOCKS][BATCH];
    unsigned fill[SENDER_SOCKS] = {0};
    static struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    hb.version = VIGIL_WIRE_V2;
    hb.generation = 1;
    hb.interval_ms = (uint32_t)(1000.0 / o->rate);
    hb.send_time_us = vigil_clock_wall_us();
    hb.status.load1_milli = 420;
    hb.status.mem_total_kib = 16u << 20;
    hb.status.mem_avail_kib = 9u << 20;
    hb.status.uptime_s = 86400;
    hb.n_custom = 1;
    strcpy(hb.custom[0].key, "role");
    strcpy(hb.custom[0].value, "db-replica");
    double per_s = (double)o->nodes * o->rate;
    int64_t t0 = vigil_clock_mono();
    uint64_t sent = 0;
    for (unsigned r = r0; r < r0 + n; r++) {
        for (unsigned i = 0; i < o->nodes; i++) {
            unsigned j = i % SENDER_SOCKS;
            snprintf(hb.id, sizeof(hb.id), ID_FORMAT, i);
            hb.sequence = r + 1;
            hb.status_version = 1; /* the status never changes: every full status is the same */
            hb.type = (r + i) % STATUS_EVERY == 0 ? VIGIL_MSG_STATUS : VIGIL_MSG_BEAT;
            const struct vigil_wire_keys k = {.mac = macs[i]};
            int len = vigil_wire_encode_keys(&hb, &k, buf[j][fill[j]], DGRAM_MAX);
            if (len < 0) {
                fprintf(stderr, "bench_drain: encode: %s\n", vigil_strerror(len));
                exit(1);
            }
            iov[j][fill[j]] = (struct iovec){.iov_base = buf[j][fill[j]], .iov_len = (size_t)len};
            msgs[j][fill[j]].msg_hdr =
                (struct msghdr){.msg_iov = &iov[j][fill[j]], .msg_iovlen = 1};
            if (++fill[j] == BATCH) {
                if (sendmmsg(fds[j], msgs[j], BATCH, 0) != BATCH)
                    die("sendmmsg");
                fill[j] = 0;
            }
            /* Pace: every 1,024 heartbeats, wait for their time. */
            if (++sent % 1024 == 0)
                sleep_ns(t0 + (int64_t)((double)sent / per_s * 1e9) - vigil_clock_mono());
        }
    }
    for (int j = 0; j < SENDER_SOCKS; j++) {
        if (fill[j] && sendmmsg(fds[j], msgs[j], fill[j], 0) != (int)fill[j])
            die("sendmmsg");
        close(fds[j]);
    }
}

/* --- the bare receivers ----------------------------------------------- */

/* A socket with the daemon's options, in a SO_REUSEPORT group on port (0: any). */
static int bare_socket(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1, size = RCVBUF_BYTES;
    if (fd < 0)
        die("socket");
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(*port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)))
        die("bind");
    socklen_t sl = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &sl);
    *port = ntohs(a.sin_port);
    return fd;
}

static struct shared *sh;

/* Counts n datagrams read. */
static void count(uint64_t n)
{
    atomic_fetch_add(&sh->received, n);
}

/* The bare loops' recvmmsg batch (--batch); the monitor's is the daemon's, 64. */
static unsigned bare_batch = BATCH;

static void *bare_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static _Thread_local uint8_t bufs[BATCH_MAX][VIGIL_WIRE_MAX + 1];
    static _Thread_local char ctl[BATCH_MAX][64];
    static _Thread_local struct mmsghdr msgs[BATCH_MAX];
    static _Thread_local struct iovec iov[BATCH_MAX];
    static _Thread_local struct sockaddr_storage from[BATCH_MAX];
    for (;;) {
        for (unsigned i = 0; i < bare_batch; i++) {
            iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = sizeof(bufs[i])};
            msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i],
                                              .msg_iovlen = 1,
                                              .msg_name = &from[i],
                                              .msg_namelen = sizeof(from[i]),
                                              .msg_control = ctl[i],
                                              .msg_controllen = sizeof(ctl[i])};
        }
        int n = recvmmsg(fd, msgs, bare_batch, MSG_WAITFORONE, NULL);
        if (n > 0)
            count((uint64_t)n);
    }
    return NULL;
}

#ifdef VIGIL_HAVE_URING
#define URING_BUFS 4096
#define URING_BUF  256
static void *uring_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct io_uring ring;
    if (io_uring_queue_init(256, &ring, 0))
        die("io_uring_queue_init");
    struct io_uring_buf_ring *br = mmap(NULL, URING_BUFS * sizeof(struct io_uring_buf),
                                        PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    uint8_t *mem = malloc((size_t)URING_BUFS * URING_BUF);
    if (br == MAP_FAILED || !mem)
        die("uring buffers");
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (unsigned long)br, .ring_entries = URING_BUFS, .bgid = 1};
    if (io_uring_register_buf_ring(&ring, &reg, 0))
        die("io_uring_register_buf_ring");
    for (int i = 0; i < URING_BUFS; i++)
        io_uring_buf_ring_add(br, mem + (size_t)i * URING_BUF, URING_BUF, (unsigned short)i,
                              io_uring_buf_ring_mask(URING_BUFS), i);
    io_uring_buf_ring_advance(br, URING_BUFS);
    struct msghdr mh = {.msg_namelen = sizeof(struct sockaddr_in), .msg_controllen = 64};
    bool armed = false;
    for (;;) {
        if (!armed) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_recvmsg_multishot(sqe, fd, &mh, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = 1;
            armed = true;
        }
        io_uring_submit_and_wait(&ring, 1);
        struct io_uring_cqe *cqes[256];
        unsigned n = io_uring_peek_batch_cqe(&ring, cqes, 256);
        uint64_t got = 0;
        for (unsigned i = 0; i < n; i++) {
            struct io_uring_cqe *c = cqes[i];
            if (!(c->flags & IORING_CQE_F_MORE))
                armed = false;
            if (c->res < 0)
                continue;
            unsigned bid = c->flags >> IORING_CQE_BUFFER_SHIFT;
            if (io_uring_recvmsg_validate(mem + (size_t)bid * URING_BUF, c->res, &mh))
                got++;
            io_uring_buf_ring_add(br, mem + (size_t)bid * URING_BUF, URING_BUF, (unsigned short)bid,
                                  io_uring_buf_ring_mask(URING_BUFS), 0);
            io_uring_buf_ring_advance(br, 1);
        }
        io_uring_cq_advance(&ring, n);
        if (got)
            count(got);
    }
    return NULL;
}
#endif

/* --- the monitor receiver --------------------------------------------- */

struct mon {
    struct vio_loop *l;
    struct vio_transport *t;
    struct vigil_monitor *m;
    vigil_time_t fed;
    int64_t recv_ns, core_ns;
    uint8_t bufs[BATCH][VIGIL_WIRE_MAX + 1];
};

/* As read_listener and on_readable in src/vigil/monitord.c. */
static void mon_readable(void *arg, vigil_time_t now)
{
    (void)now;
    struct mon *x = arg;
    struct vio_dgram dg[BATCH];
    struct vigil_monitor_dgram md[BATCH];
    bool more = true;
    for (int b = 0; b < MAX_BATCHES; b++) {
        for (int i = 0; i < BATCH; i++) {
            dg[i].buf = x->bufs[i];
            dg[i].cap = VIGIL_WIRE_MAX;
        }
        int64_t t0 = vigil_clock_mono();
        int n = vio_recv(x->t, dg, BATCH);
        int64_t t1 = vigil_clock_mono();
        x->recv_ns += t1 - t0;
        if (n <= 0) {
            more = false;
            break;
        }
        uint64_t drops = 0;
        for (int i = 0; i < n; i++) {
            drops += dg[i].dropped;
            vigil_time_t at = dg[i].arrival > x->fed ? dg[i].arrival : x->fed;
            x->fed = at;
            md[i] = (struct vigil_monitor_dgram){
                .buf = dg[i].buf, .len = dg[i].len, .at = at, .from = &dg[i].from};
        }
        vigil_monitor_on_batch(x->m, md, (size_t)n);
        /* Judged at the last arrival fed: the stop is no silence (the daemon's pause rule). */
        if (x->fed >= vigil_monitor_next_deadline(x->m))
            vigil_monitor_on_expiry(x->m, x->fed);
        struct vigil_event ev;
        while (vigil_monitor_poll_event(x->m, &ev))
            ;
        x->core_ns += vigil_clock_mono() - t1;
        if (drops)
            atomic_fetch_add(&sh->drops, drops);
        atomic_store(&sh->accepted, vigil_monitor_stats(x->m)->accepted);
        count((uint64_t)n);
        if (n < BATCH) {
            more = false;
            break;
        }
    }
    if (more)
        vio_source_ready(x->l, &x->t->readable);
}

/*
 * The drain bookkeeping, every 2 ms: whether the drain in progress is
 * complete (every datagram counted, or none for IDLE_END_MS), and if so
 * its figures. The CPU time runs from the end of the previous drain: in
 * between the receiver was idle or stopped.
 */
static void drain_watch(struct shared *s, struct mon *x, int64_t *cpu0, int64_t *recv0,
                        int64_t *core0, uint64_t *got0, int64_t *last_progress, uint64_t *seen)
{
    unsigned d = atomic_load(&s->drain);
    if (d == 0) {
        /* The warm-up (registering every node) is no part of a drain. */
        *cpu0 = proc_cpu_ns();
        *got0 = *seen = atomic_load(&s->received);
        if (x) {
            *recv0 = x->recv_ns;
            *core0 = x->core_ns;
        }
        return;
    }
    if (atomic_load(&s->done) >= d)
        return;
    uint64_t got = atomic_load(&s->received);
    int64_t now = vigil_clock_mono();
    bool complete = got >= atomic_load(&s->expect);
    if (!complete && got != *seen) {
        *seen = got;
        *last_progress = now;
        return;
    }
    if (!complete && now - *last_progress < IDLE_END_MS * 1000000LL)
        return;
    if (!complete && now - s->t_cont[d] < IDLE_END_MS * 1000000LL)
        return;
    int64_t cpu = proc_cpu_ns();
    s->wall_ns[d] = (complete ? now : *last_progress) - s->t_cont[d];
    s->cpu_ns[d] = cpu - *cpu0;
    s->count[d] = got - *got0;
    if (x) {
        s->recv_ns[d] = x->recv_ns - *recv0;
        s->core_ns[d] = x->core_ns - *core0;
        *recv0 = x->recv_ns;
        *core0 = x->core_ns;
    }
    *cpu0 = cpu;
    *got0 = got;
    atomic_store(&s->done, d);
}

struct watch_state {
    struct vio_loop *l;
    struct vio_timer tm;
    struct mon *x;
    int64_t cpu0, recv0, core0, last;
    uint64_t got0, seen;
};

static void on_watch(void *arg, vigil_time_t now)
{
    struct watch_state *w = arg;
    drain_watch(sh, w->x, &w->cpu0, &w->recv0, &w->core0, &w->got0, &w->last, &w->seen);
    vio_timer_arm(w->l, &w->tm, now + 2 * VIGIL_NSEC_PER_MSEC);
}

/* The receiver process: sets up kind k, says its port, and reads until killed. */
static void receiver(enum kind k, const struct opts *o)
{
    pin(kind_cores[k]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "drain-rx");
    uint16_t port = 0;
    if (k == MON1 || k == MON2) {
        struct mon *x = calloc(1, sizeof(*x));
        struct watch_state *w = calloc(1, sizeof(*w));
        if (!x || !w || vio_loop_epoll_new(&x->l))
            die("loop");
        struct vigil_monitor_config cfg;
        vigil_monitor_config_default(&cfg);
        cfg.max_nodes = o->nodes;
        cfg.has_key = true;
        cfg.key_is_master = true;
        memcpy(cfg.key, master, sizeof(master));
        randombytes_buf(cfg.hash_seed, sizeof(cfg.hash_seed));
        if (vigil_monitor_new(&cfg, vigil_clock_mono(), &x->m))
            die("vigil_monitor_new");
        struct vigil_addr at;
        vigil_addr_parse("127.0.0.1:0", 0, &at);
        int rc = vio_net_udp.ops->listen(&vio_net_udp, x->l, &at, k == MON2 ? 2 : 1, RCVBUF_BYTES,
                                         &x->t);
        if (rc) {
            errno = -rc;
            die("listen");
        }
        vio_source_init(&x->t->readable, mon_readable, x);
        struct vigil_addr local;
        x->t->ops->local(x->t, &local);
        port = local.port;
        w->l = x->l;
        w->x = x;
        w->cpu0 = proc_cpu_ns();
        vio_timer_init(&w->tm, on_watch, w);
        vio_timer_arm(x->l, &w->tm, vigil_clock_mono());
        atomic_store(&sh->port, port);
        atomic_store(&sh->ready, 1);
        vio_loop_run(x->l);
        exit(0);
    }
    unsigned socks = k == BARE2 ? 2 : 1;
    for (unsigned s = 0; s < socks; s++) {
        int fd = bare_socket(&port);
        pthread_t t;
        void *(*fn)(void *) = bare_thread;
#ifdef VIGIL_HAVE_URING
        if (k == URING1)
            fn = uring_thread;
#endif
        if (pthread_create(&t, NULL, fn, (void *)(intptr_t)fd))
            die("pthread_create");
    }
    atomic_store(&sh->port, port);
    atomic_store(&sh->ready, 1);
    struct watch_state w = {.cpu0 = proc_cpu_ns()};
    for (;;) {
        drain_watch(sh, NULL, &w.cpu0, &w.recv0, &w.core0, &w.got0, &w.last, &w.seen);
        sleep_ns(2000000);
    }
}

/* --- the driver ------------------------------------------------------- */

static bool wait_until(_Atomic unsigned *v, unsigned want, int seconds)
{
    for (int i = 0; i < seconds * 1000; i++) {
        if (atomic_load(v) >= want)
            return true;
        sleep_ns(1000000);
    }
    return false;
}

/* Every drain of a receiver kind, over the repeats. */
#define MAX_RESULTS (MAX_DRAINS * MAX_REPEAT)
struct result {
    double rate_wall[MAX_RESULTS], rate_cpu[MAX_RESULTS];
    double recv_ns[MAX_RESULTS], core_ns[MAX_RESULTS];
    unsigned n;
    uint64_t drops, short_by, accepted, received;
    bool ran;
};

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, unsigned n)
{
    double t[MAX_RESULTS];
    memcpy(t, v, n * sizeof(*t));
    qsort(t, n, sizeof(*t), cmp_d);
    return n == 0 ? 0 : n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void run_kind(enum kind k, const struct opts *o, uint8_t (*macs)[VIGIL_WIRE_MAC_KEY_LEN],
                     struct result *res)
{
    memset(sh, 0, sizeof(*sh));
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0)
        receiver(k, o);
    for (int i = 0; i < 10000 && !atomic_load(&sh->ready); i++)
        sleep_ns(1000000);
    if (!atomic_load(&sh->ready)) {
        fprintf(stderr, "bench_drain: %s did not start\n", kind_name[k]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return;
    }
    uint16_t port = atomic_load(&sh->port);
    /* Warm-up: one round with the receiver running, which registers every node. */
    atomic_store(&sh->expect, o->nodes);
    send_rounds(o, macs, port, 0, 1);
    for (int i = 0; i < 20000 && atomic_load(&sh->received) < o->nodes; i++)
        sleep_ns(1000000);
    sleep_ns(20000000); /* the receiver's baselines move past the warm-up (drain_watch) */
    uint64_t base = atomic_load(&sh->received);
    uint64_t acc_base = atomic_load(&sh->accepted);
    res->ran = true;
    for (unsigned d = 1; d <= o->drains; d++) {
        kill(pid, SIGSTOP);
        int st;
        waitpid(pid, &st, WUNTRACED);
        send_rounds(o, macs, port, 1 + (d - 1) * o->rounds, o->rounds);
        /* Loopback delivery is done by the time sendmmsg returns. */
        uint64_t want = base + (uint64_t)d * o->rounds * o->nodes;
        atomic_store(&sh->expect, want);
        sh->t_cont[d] = vigil_clock_mono();
        atomic_store(&sh->drain, d);
        kill(pid, SIGCONT);
        if (!wait_until(&sh->done, d, DRAIN_WAIT_S)) {
            fprintf(stderr, "bench_drain: %s: drain %u did not end\n", kind_name[k], d);
            break;
        }
        uint64_t c = sh->count[d];
        double wall = (double)sh->wall_ns[d] / 1e9, cpu = (double)sh->cpu_ns[d] / 1e9;
        res->rate_wall[res->n] = wall > 0 ? (double)c / wall : 0;
        res->rate_cpu[res->n] = cpu > 0 ? (double)c / cpu : 0;
        double rs = (double)sh->recv_ns[d], cs = (double)sh->core_ns[d];
        /* The receiver's CPU per datagram, split in proportion to the clock times. */
        double per = c ? (double)sh->cpu_ns[d] / (double)c : 0;
        res->recv_ns[res->n] = rs + cs > 0 ? per * rs / (rs + cs) : per;
        res->core_ns[res->n] = rs + cs > 0 ? per * cs / (rs + cs) : 0;
        res->n++;
        printf("  %-8s drain %u: %" PRIu64 " datagrams in %.3f s: %.0f/s, CPU %.3f s: %.0f per "
               "CPU-second, %.0f ns each\n",
               kind_name[k], d, c, wall, res->rate_wall[res->n - 1], cpu, res->rate_cpu[res->n - 1],
               per);
        fflush(stdout);
    }
    uint64_t received = atomic_load(&sh->received) - base;
    res->received += received;
    res->accepted += atomic_load(&sh->accepted) - acc_base;
    res->drops += atomic_load(&sh->drops);
    uint64_t want = (uint64_t)o->drains * o->rounds * o->nodes;
    res->short_by += received < want ? want - received : 0;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_drain [--nodes N] [--rounds R] [--drains D] [--repeat K] [--rate R] "
               "[--only bare-1,mon-1,...] [--batch N]\n"
               "  --nodes N   node ids (default 100000)\n"
               "  --rounds R  heartbeats per node in each drain (default 4)\n"
               "  --drains D  drains per receiver process (default 2, at most 9)\n"
               "  --repeat K  times every receiver runs, in turn (default 3, at most 5)\n"
               "  --rate R    heartbeats per node per second the sender paces at (default 2)\n"
               "  --only L    receivers to run (default all: bare-1,uring-1,mon-1,bare-2,mon-2)\n"
               "  --batch N   datagrams per recvmmsg call of the bare loops (default 64, the\n"
               "              daemon's; at most 1024)\n");
}

int main(int argc, char **argv)
{
    struct opts o = {.nodes = 100000, .rounds = 4, .drains = 2, .repeat = 3, .rate = 2.0};
    for (int k = 0; k < KINDS; k++)
        o.only[k] = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (v && !strcmp(a, "--nodes")) {
            o.nodes = (unsigned)strtoul(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--rounds")) {
            o.rounds = (unsigned)strtoul(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--repeat")) {
            o.repeat = (unsigned)strtoul(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--drains")) {
            o.drains = (unsigned)strtoul(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--batch")) {
            bare_batch = (unsigned)strtoul(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--rate")) {
            o.rate = strtod(v, NULL), i++;
        } else if (v && !strcmp(a, "--only")) {
            for (int k = 0; k < KINDS; k++)
                o.only[k] = strstr(v, kind_name[k]) != NULL;
            i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.nodes < 1000 || o.nodes > 10000000 || o.rounds < 1 || o.rounds > 60 || o.drains < 1 ||
        o.repeat < 1 || o.repeat > MAX_REPEAT || o.drains > MAX_DRAINS ||
        !(o.rate >= 0.01 && o.rate <= 100) || bare_batch < 1 || bare_batch > BATCH_MAX) {
        usage(stderr);
        return 2;
    }
#ifndef VIGIL_HAVE_URING
    o.only[URING1] = false;
#endif
    if (sodium_init() < 0)
        die("sodium_init");
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct utsname u;
    uname(&u);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("bench_drain: the receive path at the limit of its cores\n");
    printf("machine: %ld CPUs, %s %s\n", ncpu, u.sysname, u.release);
    printf("stream: %u nodes, per-node keys under a master key, wire version 2, a full status "
           "in %u; paced at %.2f heartbeats per node per second; each drain %u rounds "
           "(%u datagrams)\n",
           o.nodes, STATUS_EVERY, o.rate, o.rounds, o.rounds * o.nodes);
    randombytes_buf(master, sizeof(master));
    uint8_t(*macs)[VIGIL_WIRE_MAC_KEY_LEN] = malloc((size_t)o.nodes * sizeof(*macs));
    if (!macs)
        die("malloc");
    for (unsigned i = 0; i < o.nodes; i++)
        node_mac(i, macs[i]);
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("mmap");
    static struct result res[KINDS];
    /* The receivers in turn, repeat times: what the machine does meanwhile falls on all. */
    for (unsigned r = 0; r < o.repeat; r++) {
        for (int k = 0; k < KINDS; k++) {
            if (!o.only[k] || kind_cores[k] > (unsigned)ncpu)
                continue;
            run_kind((enum kind)k, &o, macs, &res[k]);
        }
    }
    printf("summary (medians over %u drains of each receiver):\n", o.repeat * o.drains);
    printf("  %-8s %6s %14s %16s %10s %10s %10s\n", "receiver", "cores", "datagrams/s",
           "per CPU-second", "ns each", "drops", "short");
    double wall[KINDS] = {0}, cpu[KINDS] = {0};
    for (int k = 0; k < KINDS; k++) {
        if (!res[k].ran)
            continue;
        wall[k] = median(res[k].rate_wall, res[k].n);
        cpu[k] = median(res[k].rate_cpu, res[k].n);
        printf("  %-8s %6u %14.0f %16.0f %10.0f %10" PRIu64 " %10" PRIu64 "\n", kind_name[k],
               kind_cores[k], wall[k], cpu[k], cpu[k] > 0 ? 1e9 / cpu[k] : 0.0, res[k].drops,
               res[k].short_by);
        if (k == MON1 || k == MON2)
            printf("  %-8s accepted %" PRIu64 " of %" PRIu64 " received\n", "", res[k].accepted,
                   res[k].received);
    }
    printf("targets (printed, not asserted):\n");
    if (res[MON1].ran)
        printf("  >= %.0f authenticated heartbeats per receiver CPU-second: mon-1 %.0f\n",
               TARGET_RATE, cpu[MON1]);
    if (res[MON1].ran && res[BARE1].ran) {
        double r = median(res[MON1].recv_ns, res[MON1].n),
               c = median(res[MON1].core_ns, res[MON1].n);
        printf("  >= %.0f%% of the bare loop: mon-1/bare-1 per CPU-second %.0f%%; by the split, "
               "receiving %.0f ns and the core %.0f ns of mon-1's, receiving's share %.0f%%\n",
               100 * TARGET_RATIO, 100 * cpu[MON1] / cpu[BARE1], r, c,
               r + c > 0 ? 100 * r / (r + c) : 0.0);
    }
    if (res[URING1].ran && res[BARE1].ran)
        printf("  io_uring multishot against recvmmsg, per CPU-second: %.0f%%\n",
               100 * cpu[URING1] / cpu[BARE1]);
    if (res[MON1].ran && res[MON2].ran && res[BARE1].ran && res[BARE2].ran)
        printf("  >= %.1fx from one core to two: mon-2/mon-1 %.2fx (bare loop: bare-2/bare-1 "
               "%.2fx), datagrams per second of the drain\n",
               TARGET_SCALE, wall[MON2] / wall[MON1], wall[BARE2] / wall[BARE1]);
    free(macs);
    return 0;
}
