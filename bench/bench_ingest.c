/*
 * bench_ingest: how many authenticated heartbeats per second the monitor
 * takes in on one core, measured against the limit of the machine.
 *
 * A figure such as "800,000 heartbeats per second" means little on its own:
 * it depends on the CPU, the kernel and the socket setup. So this program
 * measures, in one run and with one socket setup, three things:
 *
 *   (a) the bare receive loop: recvmmsg in batches of 64 and count, nothing
 *       else. This is the most any monitor could take in on this machine.
 *   (b) the monitor: the same loop, plus vigil_monitor_on_batch() for
 *       every datagram, the monotonic clock read once per batch, deadlines
 *       handled and events drained, as src/vigil/monitord.c does it (minus
 *       the logging of events, which a quiet cluster does not produce).
 *   (c) vigil_monitor_on_datagram() alone on datagrams already in memory,
 *       in virtual time: no sockets at all, the core's own ceiling.
 *   (d) the same on wire version 2 with per-node keys, with and without
 *       sealed (encrypted) full statuses: what `encrypt = true` costs.
 *
 * For (a) and (b) a sender process (fork, pinned to the second core when
 * there is one) encodes one heartbeat per node id, tagged with the key
 * derived from the cluster key (as vigil agent does; the monitor derives
 * the same key from the cluster key in its config), in batches of 64 just
 * before each sendmmsg, so that every round through the ids carries a
 * larger sequence number and nothing is stale, and sends them as fast as
 * it can to 127.0.0.1. The receiver (this process, pinned to core 0) opens
 * its socket as the monitor does: SO_RCVBUFFORCE of 8 MB, non-blocking,
 * and sleeps in epoll_wait when the socket is empty, exactly like the
 * daemon (not a busy loop). Phases (a) and (b) alternate, a b a b
 * a b, so that a drift of the machine (another tenant, frequency scaling)
 * hits both alike, and each gets a fresh start: the sender is stopped, the
 * socket drained, and for (b) a new monitor created, between phases.
 *
 * Every rate is reported twice: per second of wall-clock time, and per
 * second of the receiver's CPU time (getrusage). On loopback the kernel
 * does the UDP receive work (the stack, the socket queue, the wakeup) on
 * the *sender's* CPU, and the sender also pays for a SipHash tag per
 * datagram, so the sender can be the bottleneck: the receiver then sleeps
 * part of the time and its wall-clock rate is the sender's. Per CPU-second
 * is what one core of receiver could do. Phase (b) also reads the clock
 * once more per batch, before recvmmsg, to split the receiver's CPU time
 * per datagram between the kernel (recvmmsg on full batches: the bare
 * loop's own cost) and the monitor.
 *
 * The machine may be shared. Each phase compares the busy time of all CPUs
 * (/proc/stat) with the two processes' own CPU time and flags the phase
 * when something else took more than a tenth of the machine.
 *
 * Nothing here asserts on speed: the program prints figures and the
 * targets beside them, and always exits 0 unless the setup itself fails.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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

/* The daemon's own conversion, so that (b) pays what the daemon pays. */
#include "../src/io/netaddr.h"

/* Datagrams per recvmmsg and sendmmsg call, as in the daemon. */
#define BATCH 64
/* Batches read per wakeup before the loop looks at the clock, as in the daemon. */
#define MAX_BATCHES 64
/* The daemon's receive buffer request. */
#define RCVBUF_BYTES (8 << 20)

/* 100,000 nodes: a large cluster, and a node table far bigger than the caches. */
#define DEFAULT_NODES 100000
/* Ten million ids still fit the id format below and the monitor's table limit. */
#define MAX_NODES 10000000
/* Five seconds per phase smooths out scheduler noise; three rounds give a median. */
#define DEFAULT_SECONDS 5
#define MAX_SECONDS     60
#define DEFAULT_ROUNDS  3
#define MAX_ROUNDS      9
/* Phase (c): two seconds of CPU, or this many rounds through the ids, whichever first. */
#define DEFAULT_C_SECONDS 2.0
#define DEFAULT_C_ROUNDS  100

/* "node-0000042": 12 characters, the length of a typical host name. */
#define ID_FORMAT "node-%07u"
/* Room for the id and its NUL: eight digits at most below MAX_NODES. */
#define ID_SLOT 16
/* A packed datagram slot for phase (c): 72-byte header, id, 16-byte tag. */
#define DGRAM_SLOT 128

/* The targets from the design: one core, and the share of the bare loop. */
#define TARGET_RATE  500000.0
#define TARGET_RATIO 0.70

/* A stop request is acknowledged within microseconds; five seconds means a hung sender. */
#define STOP_WAIT_MS 5000
/* Wait for the sender's set-up (one allocation and a table of ids). */
#define READY_WAIT_MS 10000
/* epoll_wait timeout cap, so that the phase end is seen promptly. */
#define EPOLL_CAP_MS 100

/*
 * Shared between the receiver and the sender (an anonymous shared mapping
 * made before fork). phase is written by the receiver: odd while the
 * sender must send, even while it must stay idle. ack is the last phase
 * value the sender has acted on; once ack equals an even phase, the sender
 * has stopped and sent and tx_cpu_ns are final for that phase.
 */
struct shared {
    _Atomic unsigned phase;
    _Atomic unsigned ack;
    _Atomic int ready;
    _Atomic int pinned; /* the sender runs on CPU 1 only */
    _Atomic int quit;
    _Atomic uint64_t sent;
    _Atomic uint64_t send_errors;
    _Atomic uint64_t tx_cpu_ns;
    _Atomic uint64_t tx_encode_ns;
};

struct opts {
    unsigned nodes;
    unsigned seconds;
    unsigned rounds;
    bool run_ab, run_c, run_d;
    double c_seconds;
    unsigned c_rounds;
};

struct phase_res {
    char kind;         /* 'a' or 'b' */
    double wall_s;     /* length of the measured window */
    double rx_cpu_s;   /* receiver CPU time in the window */
    double tx_cpu_s;   /* sender CPU time in the phase */
    double tx_enc_s;   /* of which encoding the datagrams */
    double busy_s;     /* busy time of all CPUs in the window, from /proc/stat */
    uint64_t sent;     /* datagrams the sender sent in the phase */
    uint64_t received; /* datagrams read in the window */
    uint64_t late;     /* datagrams still queued at the end, drained after */
    uint64_t accepted; /* (b): heartbeats the monitor accepted in the window */
    uint64_t calls;    /* recvmmsg calls that returned datagrams */
    uint64_t wakeups;  /* epoll_wait returns with the socket ready */
    double recv_s;     /* (b): time inside full-batch recvmmsg calls */
    double mon_s;      /* (b): time inside the monitor */
};

struct rx {
    int fd, ep;
    uint16_t port;
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_storage from[BATCH];
    uint8_t bufs[BATCH][VIGIL_WIRE_MAX + 1];
    uint64_t received, calls;
    /* Phase (b) only: time inside recvmmsg and inside the monitor, summed over batches. */
    int64_t recv_ns, mon_ns;
};

/* --- utilities --------------------------------------------------------- */

static void die(const char *what)
{
    fprintf(stderr, "bench_ingest: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* timeval: seconds and microseconds, 1000 ns each. */
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * VIGIL_NSEC_PER_SEC +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/*
 * Busy time of all CPUs together, in seconds, from the first line of
 * /proc/stat: everything but idle and iowait. Compared with the two
 * processes' own CPU time it shows how much else ran during a phase: the
 * kernel's loopback work in softirq context, and any other program.
 */
static double cpus_busy_s(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8)
        return 0;
    /* user nice system idle iowait irq softirq steal: all but idle (3) and iowait (4). */
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

/* CPU time of the calling thread: what encoding costs, whatever else runs. */
static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * VIGIL_NSEC_PER_SEC + ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static unsigned cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set))
        return 1;
    return (unsigned)CPU_COUNT(&set);
}

/* Pins the calling process to one CPU; returns false if that failed. */
static bool pin_to(unsigned cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set) == 0;
}

/* Formats v as an integer with thousands separators: 1,234,567. */
static const char *grp(char *buf, size_t cap, double v)
{
    char raw[32];
    snprintf(raw, sizeof(raw), "%.0f", v < 0 ? 0 : v);
    size_t n = strlen(raw), o = 0;
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
    return buf;
}

static void print_machine(void)
{
    char model[128] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        /* The first "model name" line names the CPU; 10,000 lines is far past it. */
        for (int i = 0; i < 10000 && fgets(line, sizeof(line), f); i++) {
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) {
                    c += c[1] == ' ' ? 2 : 1;
                    c[strcspn(c, "\n")] = '\0';
                    snprintf(model, sizeof(model), "%s", c);
                }
                break;
            }
        }
        fclose(f);
    }
    struct utsname u;
    if (uname(&u))
        memset(&u, 0, sizeof(u));
    printf("machine: %s; nproc %ld; kernel %s %s\n", model, sysconf(_SC_NPROCESSORS_ONLN),
           u.sysname, u.release);
}

/* Fills ids with N ids of the form ID_FORMAT. */
static char (*make_ids(unsigned n))[ID_SLOT]
{
    char(*ids)[ID_SLOT] = calloc(n, ID_SLOT);
    if (!ids)
        die("calloc ids");
    for (unsigned i = 0; i < n; i++)
        snprintf(ids[i], ID_SLOT, ID_FORMAT, i);
    return ids;
}

/* The heartbeat every simulated node sends, but for its id and sequence. */
static void heartbeat_template(struct vigil_heartbeat *hb, uint32_t interval_ms)
{
    memset(hb, 0, sizeof(*hb));
    hb->generation = 1;
    hb->sequence = 1;
    hb->send_time_us = vigil_clock_wall_us();
    /*
     * The interval the node claims. The monitor does not learn gaps far
     * shorter than it (they come from queueing), so it must match the rate
     * at which each node really arrives, or the benchmark would skip work.
     */
    hb->interval_ms = interval_ms;
    /* Plausible status values; their size on the wire is fixed anyway. */
    hb->status.load1_milli = 420;
    hb->status.load5_milli = 380;
    hb->status.load15_milli = 350;
    hb->status.mem_total_kib = 16u << 20;
    hb->status.mem_avail_kib = 9u << 20;
    hb->status.uptime_s = 86400;
}

/* The monitor as the daemon would configure it: defaults, key set, room for every id. */
static struct vigil_monitor *make_monitor(unsigned nodes, const uint8_t *key, vigil_time_t now)
{
    struct vigil_monitor_config cfg;
    vigil_monitor_config_default(&cfg);
    if (cfg.max_nodes < nodes)
        cfg.max_nodes = nodes;
    cfg.has_key = true;
    memcpy(cfg.key, key, VIGIL_WIRE_KEY_LEN);
    randombytes_buf(cfg.hash_seed, sizeof(cfg.hash_seed));
    struct vigil_monitor *m;
    int rc = vigil_monitor_new(&cfg, now, &m);
    if (rc) {
        fprintf(stderr, "bench_ingest: vigil_monitor_new: %s\n", vigil_strerror(rc));
        exit(1);
    }
    return m;
}

static void drain_events(struct vigil_monitor *m)
{
    struct vigil_event ev;
    while (vigil_monitor_poll_event(m, &ev))
        ;
}

/* --- the sender ------------------------------------------------------- */

/*
 * Runs in the child: sends round after round of heartbeats while the
 * phase is odd, idles while it is even, exits on quit, on the parent's
 * death (PR_SET_PDEATHSIG) or at the hard deadline, whichever comes first.
 */
static void sender_main(struct shared *sh, const struct opts *o, const uint8_t *mac_key,
                        uint16_t port, bool pin, vigil_time_t hard_deadline)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The mask inherited from the receiver holds CPU 0 only: ask for CPU 1 explicitly. */
    if (pin && pin_to(1))
        atomic_store(&sh->pinned, 1);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("sender socket");
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Connected: the route is looked up once, not per datagram. */
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)))
        die("sender connect");

    char(*ids)[ID_SLOT] = make_ids(o->nodes);
    static struct vigil_heartbeat hb;
    /*
     * Over loopback every node comes round every nodes / rate seconds:
     * about nodes / 1000 ms at a million datagrams a second.
     */
    heartbeat_template(&hb, o->nodes >= 1000 ? o->nodes / 1000 : 1);
    static uint8_t bufs[BATCH][DGRAM_SLOT];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    atomic_store(&sh->ready, 1);

    uint64_t encode_ns = 0; /* time spent encoding, published with each stop */
    unsigned next = 0;      /* next id to send */
    uint64_t round = 0;     /* rounds completed: the sequence is round + 1 */
    unsigned checks = 0;
    while (!atomic_load(&sh->quit)) {
        unsigned p = atomic_load(&sh->phase);
        /* The clock is read every 256 batches: the deadline is only a safety net. */
        if ((++checks & 255) == 0 && vigil_clock_mono() > hard_deadline)
            break;
        if ((p & 1) == 0) {
            if (atomic_load(&sh->ack) != p) {
                atomic_store(&sh->tx_cpu_ns, (uint64_t)cpu_ns());
                atomic_store(&sh->tx_encode_ns, encode_ns);
                atomic_store(&sh->ack, p);
            }
            sleep_ms(1);
            continue;
        }
        if (atomic_load(&sh->ack) != p)
            atomic_store(&sh->ack, p);
        int64_t e0 = thread_cpu_ns();
        for (int i = 0; i < BATCH; i++) {
            memcpy(hb.id, ids[next], ID_SLOT);
            hb.sequence = round + 1;
            int len = vigil_wire_encode(&hb, mac_key, bufs[i], sizeof(bufs[i]));
            if (len < 0) {
                fprintf(stderr, "bench_ingest: encode: %s\n", vigil_strerror(len));
                _exit(1);
            }
            iov[i].iov_len = (size_t)len;
            if (++next == o->nodes) {
                next = 0;
                round++;
            }
        }
        encode_ns += (uint64_t)(thread_cpu_ns() - e0);
        int n = sendmmsg(fd, msgs, BATCH, 0);
        if (n > 0)
            atomic_fetch_add(&sh->sent, (uint64_t)n);
        if (n < BATCH)
            atomic_fetch_add(&sh->send_errors, 1);
    }
    free(ids);
    close(fd);
    _exit(0);
}

/* --- the receiver ----------------------------------------------------- */

static void rx_open(struct rx *rx)
{
    rx->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (rx->fd < 0)
        die("socket");
    int size = RCVBUF_BYTES;
    /* As the daemon: FORCE passes rmem_max when privileged, else the plain request. */
    if (setsockopt(rx->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
        setsockopt(rx->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(rx->fd, (struct sockaddr *)&sin, sizeof(sin)))
        die("bind");
    socklen_t sl = sizeof(sin);
    if (getsockname(rx->fd, (struct sockaddr *)&sin, &sl))
        die("getsockname");
    rx->port = ntohs(sin.sin_port);
    rx->ep = epoll_create1(EPOLL_CLOEXEC);
    if (rx->ep < 0)
        die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
    if (epoll_ctl(rx->ep, EPOLL_CTL_ADD, rx->fd, &ev))
        die("epoll_ctl");
}

/*
 * One wakeup's worth of reading, as read_socket() in the daemon: up to
 * MAX_BATCHES batches, until a batch comes back short. With m NULL the
 * datagrams are only counted (phase a); otherwise each goes to the monitor
 * with the time read once per batch (phase b).
 */
static void rx_read(struct rx *rx, struct vigil_monitor *m)
{
    for (int b = 0; b < MAX_BATCHES; b++) {
        for (int i = 0; i < BATCH; i++) {
            rx->iov[i].iov_base = rx->bufs[i];
            /* One byte more than the protocol allows, so oversize is seen, not cut. */
            rx->iov[i].iov_len = VIGIL_WIRE_MAX + 1;
            memset(&rx->msgs[i].msg_hdr, 0, sizeof(rx->msgs[i].msg_hdr));
            rx->msgs[i].msg_hdr.msg_iov = &rx->iov[i];
            rx->msgs[i].msg_hdr.msg_iovlen = 1;
            rx->msgs[i].msg_hdr.msg_name = &rx->from[i];
            rx->msgs[i].msg_hdr.msg_namelen = sizeof(rx->from[i]);
        }
        /* Phase (b) splits its time: one more clock read per batch, a few ns per 64 datagrams. */
        vigil_time_t before = m ? vigil_clock_mono() : 0;
        int n = recvmmsg(rx->fd, rx->msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        rx->calls++;
        rx->received += (uint64_t)n;
        if (m) {
            vigil_time_t now = vigil_clock_mono();
            rx->recv_ns += now - before;
            struct vigil_addr a[BATCH];
            struct vigil_monitor_dgram md[BATCH];
            for (int i = 0; i < n; i++) {
                size_t len = rx->msgs[i].msg_len;
                if (rx->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
                    len = VIGIL_WIRE_MAX + 1;
                vigil__addr_from_sockaddr((struct sockaddr *)&rx->from[i], &a[i]);
                md[i] = (struct vigil_monitor_dgram){
                    .buf = rx->bufs[i], .len = len, .at = now, .from = &a[i]};
            }
            /* As the daemon: the whole batch at once. */
            vigil_monitor_on_batch(m, md, (size_t)n);
            rx->mon_ns += vigil_clock_mono() - now;
        }
        if (n < BATCH)
            return;
    }
}

/*
 * Reads whatever is still queued after the sender stopped. Loopback
 * delivery can lag the sender's return by a softirq, so the socket must
 * be found empty twice, 10 ms apart. Bounded by the receive buffer: at
 * most a few tens of thousands of datagrams fit, 100,000 calls is far more.
 */
static uint64_t rx_drain(struct rx *rx)
{
    uint64_t before = rx->received;
    int empty = 0;
    for (int i = 0; i < 100000 && empty < 2; i++) {
        uint64_t r = rx->received;
        rx_read(rx, NULL);
        if (rx->received == r) {
            empty++;
            sleep_ms(10);
        } else {
            empty = 0;
        }
    }
    return rx->received - before;
}

static bool wait_ack(struct shared *sh, unsigned phase)
{
    for (int i = 0; i < STOP_WAIT_MS; i++) {
        if (atomic_load(&sh->ack) == phase)
            return true;
        sleep_ms(1);
    }
    return false;
}

static void run_phase(struct rx *rx, struct shared *sh, const struct opts *o, const uint8_t *key,
                      char kind, struct phase_res *r)
{
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    struct vigil_monitor *m = NULL;
    if (kind == 'b')
        m = make_monitor(o->nodes, key, vigil_clock_mono());
    rx_drain(rx);

    uint64_t sent0 = atomic_load(&sh->sent);
    uint64_t tx0 = atomic_load(&sh->tx_cpu_ns);
    uint64_t enc0 = atomic_load(&sh->tx_encode_ns);
    double busy0 = cpus_busy_s();
    rx->received = rx->calls = 0;
    rx->recv_ns = rx->mon_ns = 0;
    uint64_t acc0 = m ? vigil_monitor_stats(m)->accepted : 0;

    unsigned phase = atomic_load(&sh->phase) + 1;
    int64_t c0 = cpu_ns();
    vigil_time_t t0 = vigil_clock_mono();
    vigil_time_t end = t0 + (vigil_time_t)o->seconds * VIGIL_NSEC_PER_SEC;
    atomic_store(&sh->phase, phase);

    /* The daemon's loop: deadlines and events, then sleep until the socket is ready. */
    for (;;) {
        vigil_time_t now = vigil_clock_mono();
        if (now >= end)
            break;
        if (m) {
            if (now >= vigil_monitor_next_deadline(m))
                vigil_monitor_on_expiry(m, now);
            drain_events(m);
        }
        /* Round up, so the loop does not spin through the last millisecond. */
        int timeout = (int)((end - now + VIGIL_NSEC_PER_MSEC - 1) / VIGIL_NSEC_PER_MSEC);
        if (timeout > EPOLL_CAP_MS)
            timeout = EPOLL_CAP_MS;
        struct epoll_event ev;
        int n = epoll_wait(rx->ep, &ev, 1, timeout);
        if (n > 0) {
            r->wakeups++;
            rx_read(rx, m);
        }
    }
    vigil_time_t t1 = vigil_clock_mono();
    int64_t c1 = cpu_ns();
    r->wall_s = (double)(t1 - t0) / VIGIL_NSEC_PER_SEC;
    r->rx_cpu_s = (double)(c1 - c0) / VIGIL_NSEC_PER_SEC;
    r->busy_s = cpus_busy_s() - busy0;
    r->received = rx->received;
    r->calls = rx->calls;
    r->recv_s = (double)rx->recv_ns / VIGIL_NSEC_PER_SEC;
    r->mon_s = (double)rx->mon_ns / VIGIL_NSEC_PER_SEC;
    if (m)
        r->accepted = vigil_monitor_stats(m)->accepted - acc0;

    atomic_store(&sh->phase, phase + 1);
    if (!wait_ack(sh, phase + 1)) {
        fprintf(stderr, "bench_ingest: the sender did not stop\n");
        exit(1);
    }
    r->sent = atomic_load(&sh->sent) - sent0;
    r->tx_cpu_s = (double)(atomic_load(&sh->tx_cpu_ns) - tx0) / VIGIL_NSEC_PER_SEC;
    r->tx_enc_s = (double)(atomic_load(&sh->tx_encode_ns) - enc0) / VIGIL_NSEC_PER_SEC;
    r->late = rx_drain(rx);
    vigil_monitor_free(m);
}

/* CPU time that neither process used during the phase: other programs, stray kernel work. */
static double other_load(const struct phase_res *r)
{
    double ours = r->rx_cpu_s + r->tx_cpu_s;
    return r->busy_s > ours ? r->busy_s - ours : 0;
}

/*
 * A run is flagged when something else took more than a tenth of the
 * machine: then both processes may have waited for a CPU, and the
 * wall-clock rates understate what the code can do.
 */
static bool noisy(const struct phase_res *r)
{
    return other_load(r) > 0.1 * r->wall_s * (double)sysconf(_SC_NPROCESSORS_ONLN);
}

/*
 * The receiver's CPU time per datagram in phase (b), split between
 * recvmmsg and the monitor in the proportion of the time measured around
 * each inside the loop. Wall time around a call includes any preemption,
 * but preemption falls on both in proportion, so the split holds while the
 * absolute CPU figure comes from getrusage.
 */
static void split_ns(const struct phase_res *r, double *recv_ns, double *mon_ns)
{
    double per = r->received ? r->rx_cpu_s * 1e9 / (double)r->received : 0;
    double in = r->recv_s + r->mon_s;
    double frac = in > 0 ? r->recv_s / in : 0;
    *recv_ns = per * frac;
    *mon_ns = per * (1 - frac);
}

static void print_phase(const struct phase_res *r, unsigned run)
{
    char b1[32], b2[32], b3[32], b4[32], b5[32];
    double rate = (double)r->received / r->wall_s;
    uint64_t got = r->received + r->late;
    uint64_t drops = r->sent > got ? r->sent - got : 0;
    printf("  (%c) run %u: %.2f s  sent %s/s  received %s/s  drops %s (%.1f%%)\n", r->kind, run,
           r->wall_s, grp(b1, sizeof(b1), (double)r->sent / r->wall_s), grp(b2, sizeof(b2), rate),
           grp(b3, sizeof(b3), (double)drops),
           r->sent ? 100.0 * (double)drops / (double)r->sent : 0.0);
    printf("      receiver CPU %.2f s (%.0f%% of one core), %s datagrams per CPU-second; "
           "%.1f per recvmmsg, %s wakeups\n",
           r->rx_cpu_s, 100.0 * r->rx_cpu_s / r->wall_s,
           grp(b4, sizeof(b4), r->rx_cpu_s > 0 ? (double)r->received / r->rx_cpu_s : 0),
           r->calls ? (double)r->received / (double)r->calls : 0.0,
           grp(b5, sizeof(b5), (double)r->wakeups));
    if (r->kind == 'b' && r->received > 0) {
        printf("      accepted %s heartbeats/s, %s per CPU-second\n",
               grp(b1, sizeof(b1), (double)r->accepted / r->wall_s),
               grp(b2, sizeof(b2), r->rx_cpu_s > 0 ? (double)r->accepted / r->rx_cpu_s : 0));
        double rcv, mon;
        split_ns(r, &rcv, &mon);
        printf("      receiver CPU per datagram: %.0f ns in recvmmsg, %.0f ns in the monitor\n",
               rcv, mon);
    }
    double other = other_load(r);
    printf("      sender CPU %.2f s (%.0f%% of one core, %.0f%% of it encoding); all CPUs "
           "busy %.2f s, %.2f s of it outside the two processes%s\n",
           r->tx_cpu_s, 100.0 * r->tx_cpu_s / r->wall_s,
           r->tx_cpu_s > 0 ? 100.0 * r->tx_enc_s / r->tx_cpu_s : 0.0, r->busy_s, other,
           noisy(r) ? "  <- other load: less reliable" : "");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double best(const double *v, unsigned n)
{
    double b = v[0];
    for (unsigned i = 1; i < n; i++)
        if (v[i] > b)
            b = v[i];
    return b;
}

struct summary {
    double a_rate_med, a_cpu_med, b_acc_med, b_acc_cpu_med, full_ratio_med;
};

static void print_line(const char *what, double *v, unsigned n, double *med_out)
{
    char b1[32], b2[32];
    double bst = best(v, n), med = median(v, n);
    printf("  %-44s best %11s  median %11s\n", what, grp(b1, sizeof(b1), bst),
           grp(b2, sizeof(b2), med));
    if (med_out)
        *med_out = med;
}

static void summarize(const struct phase_res *ra, const struct phase_res *rb, unsigned n,
                      struct summary *s)
{
    double v[MAX_ROUNDS];
    char b[32];
    printf("summary over %u runs of each:\n", n);
    for (unsigned i = 0; i < n; i++)
        v[i] = (double)ra[i].received / ra[i].wall_s;
    print_line("(a) bare loop, received datagrams/s", v, n, &s->a_rate_med);
    for (unsigned i = 0; i < n; i++)
        v[i] = ra[i].rx_cpu_s > 0 ? (double)ra[i].received / ra[i].rx_cpu_s : 0;
    print_line("(a) bare loop, datagrams per CPU-second", v, n, &s->a_cpu_med);
    for (unsigned i = 0; i < n; i++)
        v[i] = (double)rb[i].received / rb[i].wall_s;
    print_line("(b) monitor, received datagrams/s", v, n, NULL);
    for (unsigned i = 0; i < n; i++)
        v[i] = (double)rb[i].accepted / rb[i].wall_s;
    print_line("(b) monitor, accepted heartbeats/s", v, n, &s->b_acc_med);
    for (unsigned i = 0; i < n; i++)
        v[i] = rb[i].rx_cpu_s > 0 ? (double)rb[i].accepted / rb[i].rx_cpu_s : 0;
    print_line("(b) monitor, accepted per CPU-second", v, n, &s->b_acc_cpu_med);
    printf("  ratio (b)/(a), wall-clock medians:            %.0f%%\n",
           s->a_rate_med > 0 ? 100.0 * s->b_acc_med / s->a_rate_med : 0.0);
    printf("  ratio (b)/(a), per CPU-second medians:        %.0f%%\n",
           s->a_cpu_med > 0 ? 100.0 * s->b_acc_cpu_med / s->a_cpu_med : 0.0);
    double rv[MAX_ROUNDS], mv[MAX_ROUNDS];
    unsigned flagged = 0;
    for (unsigned i = 0; i < n; i++) {
        split_ns(&rb[i], &rv[i], &mv[i]);
        v[i] = rb[i].recv_s + rb[i].mon_s > 0 ? rb[i].recv_s / (rb[i].recv_s + rb[i].mon_s) : 0;
        flagged += noisy(&ra[i]) + noisy(&rb[i]);
    }
    double rmed = median(rv, n), mmed = median(mv, n);
    s->full_ratio_med = median(v, n);
    printf("  (b) receiver CPU per datagram, medians: %.0f ns in recvmmsg (full batches), %.0f ns "
           "in the monitor\n",
           rmed, mmed);
    printf("  ratio at full batches, recvmmsg / (recvmmsg + monitor): %.0f%%  (bare loop at full "
           "batches: about %s/s)\n",
           100.0 * s->full_ratio_med, grp(b, sizeof(b), rmed > 0 ? 1e9 / rmed : 0));
    if (flagged)
        printf("  %u of %u phases ran with other load on the machine (flagged above)\n", flagged,
               2 * n);
}

/* --- phase (c): the core alone ----------------------------------------- */

/*
 * Feeds on_datagram() datagrams from memory in virtual time: round r
 * arrives during second r + 1, the ids evenly spread over it, so that every
 * node heartbeats once a second as configured and no deadline ever fires.
 * Each round is encoded (untimed) before it is fed (timed). The first
 * round registers every node and is reported apart from the steady rounds.
 * key is the cluster key, for the monitor's config; mac_key the tag key
 * derived from it, for the encoder.
 */
static double run_inmem(const struct opts *o, const uint8_t *key, const uint8_t *mac_key,
                        bool batch)
{
    char(*ids)[ID_SLOT] = make_ids(o->nodes);
    uint8_t *arena = malloc((size_t)o->nodes * DGRAM_SLOT);
    uint16_t *lens = malloc((size_t)o->nodes * sizeof(*lens));
    if (!arena || !lens)
        die("malloc arena");
    static struct vigil_heartbeat hb;
    heartbeat_template(&hb, 1000); /* one heartbeat per node per virtual second */
    struct vigil_monitor *m = make_monitor(o->nodes, key, 0);
    struct vigil_addr from = {.family = AF_INET, .port = 40000, .addr = {127, 0, 0, 1}};
    vigil_time_t step = VIGIL_NSEC_PER_SEC / o->nodes;

    double first_cpu = 0, steady_cpu = 0, steady_wall = 0;
    uint64_t steady_acc = 0, first_acc = 0;
    unsigned steady_rounds = 0;
    for (unsigned r = 0; r <= o->c_rounds; r++) {
        for (unsigned i = 0; i < o->nodes; i++) {
            memcpy(hb.id, ids[i], ID_SLOT);
            hb.sequence = r + 1;
            int len = vigil_wire_encode(&hb, mac_key, arena + (size_t)i * DGRAM_SLOT, DGRAM_SLOT);
            if (len < 0) {
                fprintf(stderr, "bench_ingest: encode: %s\n", vigil_strerror(len));
                exit(1);
            }
            lens[i] = (uint16_t)len;
        }
        uint64_t acc0 = vigil_monitor_stats(m)->accepted;
        vigil_time_t base = (vigil_time_t)(r + 1) * VIGIL_NSEC_PER_SEC;
        int64_t c0 = cpu_ns();
        vigil_time_t t0 = vigil_clock_mono();
        for (unsigned i = 0; i < o->nodes; i += BATCH) {
            unsigned lim = o->nodes - i < BATCH ? o->nodes - i : BATCH;
            vigil_time_t now = base;
            if (batch) {
                struct vigil_monitor_dgram dg[BATCH];
                for (unsigned j = 0; j < lim; j++) {
                    now = base + (vigil_time_t)(i + j) * step;
                    dg[j] =
                        (struct vigil_monitor_dgram){.buf = arena + (size_t)(i + j) * DGRAM_SLOT,
                                                     .len = lens[i + j],
                                                     .at = now,
                                                     .from = &from};
                }
                vigil_monitor_on_batch(m, dg, lim);
            } else {
                for (unsigned j = i; j < i + lim; j++) {
                    now = base + (vigil_time_t)j * step;
                    vigil_monitor_on_datagram(m, now, arena + (size_t)j * DGRAM_SLOT, lens[j],
                                              &from);
                }
            }
            if (now >= vigil_monitor_next_deadline(m))
                vigil_monitor_on_expiry(m, now);
            drain_events(m);
        }
        vigil_time_t t1 = vigil_clock_mono();
        int64_t c1 = cpu_ns();
        uint64_t acc = vigil_monitor_stats(m)->accepted - acc0;
        if (r == 0) {
            first_cpu = (double)(c1 - c0) / VIGIL_NSEC_PER_SEC;
            first_acc = acc;
        } else {
            steady_cpu += (double)(c1 - c0) / VIGIL_NSEC_PER_SEC;
            steady_wall += (double)(t1 - t0) / VIGIL_NSEC_PER_SEC;
            steady_acc += acc;
            steady_rounds++;
            if (steady_cpu >= o->c_seconds)
                break;
        }
    }
    const struct vigil_monitor_stats *st = vigil_monitor_stats(m);
    char b1[32], b2[32], b3[32];
    printf("(c%s) %s alone, datagrams in memory, virtual time, %u nodes:\n", batch ? "2" : "",
           batch ? "on_batch (64 at a time)" : "on_datagram", o->nodes);
    printf("  first round (registers every node):  %s heartbeats per CPU-second\n",
           grp(b1, sizeof(b1), first_cpu > 0 ? (double)first_acc / first_cpu : 0));
    double rate = steady_cpu > 0 ? (double)steady_acc / steady_cpu : 0;
    printf("  steady state, %u rounds:             %s heartbeats per CPU-second "
           "(%s/s wall), %.0f ns each\n",
           steady_rounds, grp(b2, sizeof(b2), rate),
           grp(b3, sizeof(b3), steady_wall > 0 ? (double)steady_acc / steady_wall : 0),
           steady_acc ? steady_cpu * 1e9 / (double)steady_acc : 0.0);
    printf("  monitor stats: %llu datagrams, %llu accepted, %llu rejected, %llu events, "
           "%llu pauses\n",
           (unsigned long long)st->datagrams, (unsigned long long)st->accepted,
           (unsigned long long)(st->malformed + st->auth_failed + st->stale + st->unknown_node +
                                st->table_full),
           (unsigned long long)st->events, (unsigned long long)st->pauses);
    vigil_monitor_free(m);
    free(lens);
    free(arena);
    free(ids);
    return rate;
}

/* --- phase (d): version 2, with and without sealing ------------------- */

/*
 * How the monitor's CPU cost per heartbeat changes with encryption, on the
 * production path: a master key (each node verified with its own key),
 * wire version 2, in virtual time as in (c). Five streams over the same
 * nodes: beats only; full statuses only, in clear and sealed; and the
 * steady mix of an agent (one full status every VIGIL_SENDER_STATUS_EVERY_DEFAULT
 * heartbeats, the rest beats), in clear and sealed. Sealing costs the
 * monitor the AEAD and, per sealed datagram, the derivation of the
 * node's seal key (two BLAKE2b calls); beats are never sealed.
 */
#define D_SLOT 192 /* a sealed full status of a 12-byte id: 117 bytes */

enum d_stream { D_BEATS, D_STATUS, D_STATUS_SEALED, D_MIX, D_MIX_SEALED, D_STREAMS };

static double run_d_stream(const struct opts *o, enum d_stream kind, const uint8_t *master,
                           char (*ids)[ID_SLOT], const uint8_t (*macs)[VIGIL_WIRE_MAC_KEY_LEN],
                           const uint8_t (*seals)[VIGIL_WIRE_SEAL_KEY_LEN], uint8_t *arena,
                           uint16_t *lens)
{
    struct vigil_monitor_config cfg;
    vigil_monitor_config_default(&cfg);
    if (cfg.max_nodes < o->nodes)
        cfg.max_nodes = o->nodes;
    cfg.has_key = true;
    cfg.key_is_master = true;
    memcpy(cfg.key, master, VIGIL_WIRE_KEY_LEN);
    randombytes_buf(cfg.hash_seed, sizeof(cfg.hash_seed));
    struct vigil_monitor *m;
    if (vigil_monitor_new(&cfg, 0, &m) != 0)
        die("vigil_monitor_new");
    static struct vigil_heartbeat hb;
    heartbeat_template(&hb, 1000);
    hb.version = VIGIL_WIRE_V2;
    hb.n_custom = 1;
    strcpy(hb.custom[0].key, "role");
    strcpy(hb.custom[0].value, "db-replica");
    struct vigil_addr from = {.family = AF_INET, .port = 40000, .addr = {127, 0, 0, 1}};
    vigil_time_t step = VIGIL_NSEC_PER_SEC / o->nodes;
    const unsigned every = VIGIL_SENDER_STATUS_EVERY_DEFAULT;
    double cpu = 0;
    uint64_t acc = 0;
    for (unsigned r = 0; r <= o->c_rounds; r++) {
        for (unsigned i = 0; i < o->nodes; i++) {
            memcpy(hb.id, ids[i], ID_SLOT);
            hb.sequence = r + 1;
            bool status = kind == D_STATUS || kind == D_STATUS_SEALED ||
                          ((kind == D_MIX || kind == D_MIX_SEALED) && (r + i) % every == 0);
            bool sealed = status && (kind == D_STATUS_SEALED || kind == D_MIX_SEALED);
            hb.type = status ? VIGIL_MSG_STATUS : VIGIL_MSG_BEAT;
            uint8_t nonce[VIGIL_WIRE_SEAL_NONCE_LEN];
            randombytes_buf(nonce, sizeof(nonce));
            const struct vigil_wire_keys k = {
                .mac = macs[i], .seal = sealed ? seals[i] : NULL, .nonce = nonce};
            int len = vigil_wire_encode_keys(&hb, &k, arena + (size_t)i * D_SLOT, D_SLOT);
            if (len < 0) {
                fprintf(stderr, "bench_ingest: encode: %s\n", vigil_strerror(len));
                exit(1);
            }
            lens[i] = (uint16_t)len;
        }
        uint64_t acc0 = vigil_monitor_stats(m)->accepted;
        vigil_time_t base = (vigil_time_t)(r + 1) * VIGIL_NSEC_PER_SEC;
        int64_t c0 = cpu_ns();
        for (unsigned i = 0; i < o->nodes; i += BATCH) {
            unsigned lim = o->nodes - i < BATCH ? o->nodes - i : BATCH;
            vigil_time_t now = base;
            for (unsigned j = i; j < i + lim; j++) {
                now = base + (vigil_time_t)j * step;
                vigil_monitor_on_datagram(m, now, arena + (size_t)j * D_SLOT, lens[j], &from);
            }
            if (now >= vigil_monitor_next_deadline(m))
                vigil_monitor_on_expiry(m, now);
            drain_events(m);
        }
        int64_t c1 = cpu_ns();
        /* Round 0 registers the nodes (and derives their tag keys): not steady state. */
        if (r > 0) {
            cpu += (double)(c1 - c0) / VIGIL_NSEC_PER_SEC;
            acc += vigil_monitor_stats(m)->accepted - acc0;
            if (cpu >= o->c_seconds / 2)
                break;
        }
    }
    const struct vigil_monitor_stats *st = vigil_monitor_stats(m);
    if (st->auth_failed || st->malformed || st->unsealed)
        fprintf(stderr, "bench_ingest: (d) refused datagrams: %llu auth, %llu malformed\n",
                (unsigned long long)st->auth_failed, (unsigned long long)st->malformed);
    vigil_monitor_free(m);
    return cpu > 0 ? (double)acc / cpu : 0;
}

static void run_sealed(const struct opts *o)
{
    char(*ids)[ID_SLOT] = make_ids(o->nodes);
    uint8_t(*macs)[VIGIL_WIRE_MAC_KEY_LEN] = malloc((size_t)o->nodes * sizeof(*macs));
    uint8_t(*seals)[VIGIL_WIRE_SEAL_KEY_LEN] = malloc((size_t)o->nodes * sizeof(*seals));
    uint8_t *arena = malloc((size_t)o->nodes * D_SLOT);
    uint16_t *lens = malloc((size_t)o->nodes * sizeof(*lens));
    if (!macs || !seals || !arena || !lens)
        die("malloc (d)");
    uint8_t master[VIGIL_WIRE_KEY_LEN];
    randombytes_buf(master, sizeof(master));
    /* Each agent's own keys, derived once as the agent does at start (untimed). */
    for (unsigned i = 0; i < o->nodes; i++) {
        uint8_t nk[VIGIL_WIRE_KEY_LEN];
        (void)vigil_wire_node_key(nk, master, ids[i]);
        vigil_wire_mac_key(macs[i], nk);
        vigil_wire_seal_key(seals[i], nk);
    }
    static const char *const names[D_STREAMS] = {
        "beats only (never sealed)",
        "full statuses, clear",
        "full statuses, sealed",
        "agent mix (1 status in 30), clear",
        "agent mix (1 status in 30), sealed",
    };
    double rate[D_STREAMS];
    printf("(d) wire version 2, per-node keys, %u nodes, heartbeats per CPU-second:\n", o->nodes);
    for (int k = 0; k < D_STREAMS; k++) {
        rate[k] = run_d_stream(o, (enum d_stream)k, master, ids,
                               (const uint8_t(*)[VIGIL_WIRE_MAC_KEY_LEN])macs,
                               (const uint8_t(*)[VIGIL_WIRE_SEAL_KEY_LEN])seals, arena, lens);
        char b[32];
        printf("  %-38s %11s  (%.0f ns each)\n", names[k], grp(b, sizeof(b), rate[k]),
               rate[k] > 0 ? 1e9 / rate[k] : 0.0);
    }
    printf("  sealed / clear: full statuses %.0f%%, agent mix %.0f%%\n",
           rate[D_STATUS] > 0 ? 100 * rate[D_STATUS_SEALED] / rate[D_STATUS] : 0.0,
           rate[D_MIX] > 0 ? 100 * rate[D_MIX_SEALED] / rate[D_MIX] : 0.0);
    sodium_memzero(master, sizeof(master));
    free(lens);
    free(arena);
    free(seals);
    free(macs);
    free(ids);
}

/* --- main -------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_ingest [--nodes N] [--seconds S] [--rounds R] [--phase abcd]\n"
               "                    [--c-seconds S] [--c-rounds R]\n"
               "  --nodes N      distinct node ids (default 100000)\n"
               "  --seconds S    length of each (a) and (b) phase (default 5)\n"
               "  --rounds R     how many times (a) and (b) alternate (default 3)\n"
               "  --phase P      which phases to run: any of a, b, c, d (a and b go together;\n"
               "                 default abcd; 'c' alone suits callgrind)\n"
               "  --c-seconds S  CPU seconds of steady rounds in (c) (default 2)\n"
               "  --c-rounds R   at most R steady rounds in (c) (default 100)\n");
}

static unsigned parse_uint(const char *s, unsigned lo, unsigned hi, const char *what)
{
    char *e;
    errno = 0;
    unsigned long v = strtoul(s, &e, 10);
    if (errno || *e || e == s || v < lo || v > hi) {
        fprintf(stderr, "bench_ingest: %s must be %u..%u\n", what, lo, hi);
        exit(2);
    }
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    struct opts o = {
        .nodes = DEFAULT_NODES,
        .seconds = DEFAULT_SECONDS,
        .rounds = DEFAULT_ROUNDS,
        .run_ab = true,
        .run_c = true,
        .run_d = true,
        .c_seconds = DEFAULT_C_SECONDS,
        .c_rounds = DEFAULT_C_ROUNDS,
    };
    static const struct option longs[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"seconds", required_argument, NULL, 's'},
        {"rounds", required_argument, NULL, 'r'},
        {"phase", required_argument, NULL, 'p'},
        {"c-seconds", required_argument, NULL, 'C'},
        {"c-rounds", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "n:s:r:p:h", longs, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.nodes = parse_uint(optarg, 1, MAX_NODES, "--nodes");
            break;
        case 's':
            o.seconds = parse_uint(optarg, 1, MAX_SECONDS, "--seconds");
            break;
        case 'r':
            o.rounds = parse_uint(optarg, 1, MAX_ROUNDS, "--rounds");
            break;
        case 'p':
            o.run_ab = strchr(optarg, 'a') || strchr(optarg, 'b');
            o.run_c = strchr(optarg, 'c') != NULL;
            o.run_d = strchr(optarg, 'd') != NULL;
            break;
        case 'C':
            o.c_seconds = parse_uint(optarg, 0, MAX_SECONDS, "--c-seconds");
            break;
        case 'R':
            o.c_rounds = parse_uint(optarg, 1, 100000, "--c-rounds");
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || (!o.run_ab && !o.run_c && !o.run_d)) {
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "bench_ingest: sodium_init failed\n");
        return 1;
    }
    /* The cluster key goes into the monitor's config; senders tag with the derived key. */
    uint8_t key[VIGIL_WIRE_KEY_LEN], mac_key[VIGIL_WIRE_MAC_KEY_LEN];
    randombytes_buf(key, sizeof(key));
    vigil_wire_mac_key(mac_key, key);

    print_machine();
    unsigned ncpu = cpu_count();
    bool pinned = ncpu >= 2 && pin_to(0);
    printf("setup: %u node ids, authenticated (SipHash-2-4-128 tag, key derived from the "
           "cluster key on both sides), monitor defaults (phi, window 32)\n",
           o.nodes);

    double c_rate = 0;
    struct summary s = {0};
    if (o.run_ab) {
        static struct rx rx;
        rx_open(&rx);
        int got = 0;
        socklen_t gl = sizeof(got);
        getsockopt(rx.fd, SOL_SOCKET, SO_RCVBUF, &got, &gl);
        printf("receiver: %s; SO_RCVBUF %d bytes; non-blocking; epoll_wait, then recvmmsg "
               "batches of %d (up to %d per wakeup)\n",
               pinned ? "pinned to CPU 0" : "not pinned (one CPU)", got, BATCH, MAX_BATCHES);

        struct shared *sh =
            mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sh == MAP_FAILED)
            die("mmap");
        memset(sh, 0, sizeof(*sh));
        /* Every phase plus its set-up and drain, with a generous margin. */
        vigil_time_t hard =
            vigil_clock_mono() +
            (vigil_time_t)(o.rounds * 2 * (o.seconds + 10) + 30) * VIGIL_NSEC_PER_SEC;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            sender_main(sh, &o, mac_key, rx.port, ncpu >= 2, hard);
        for (int i = 0; i < READY_WAIT_MS && !atomic_load(&sh->ready); i++)
            sleep_ms(1);
        if (!atomic_load(&sh->ready)) {
            fprintf(stderr, "bench_ingest: the sender did not start\n");
            kill(pid, SIGKILL);
            return 1;
        }
        printf("sender: fork, %s; encodes each batch of %d just before sendmmsg; connected "
               "socket to 127.0.0.1:%u\n",
               atomic_load(&sh->pinned) ? "pinned to CPU 1" : "NOT pinned (shares the CPUs)", BATCH,
               rx.port);

        struct phase_res ra[MAX_ROUNDS], rb[MAX_ROUNDS];
        printf("phases (a) bare loop and (b) monitor, alternating, %u s each:\n", o.seconds);
        for (unsigned i = 0; i < o.rounds; i++) {
            run_phase(&rx, sh, &o, key, 'a', &ra[i]);
            print_phase(&ra[i], i + 1);
            run_phase(&rx, sh, &o, key, 'b', &rb[i]);
            print_phase(&rb[i], i + 1);
            fflush(stdout);
        }
        atomic_store(&sh->quit, 1);
        int status = 0;
        /* The sender sleeps at most 1 ms between looks at quit; two seconds is plenty. */
        bool reaped = false;
        for (int i = 0; i < 2000 && !reaped; i++) {
            if (waitpid(pid, &status, WNOHANG) == pid)
                reaped = true;
            else
                sleep_ms(1);
        }
        if (!reaped) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        if (atomic_load(&sh->send_errors))
            printf("note: %llu sendmmsg calls sent fewer than %d datagrams\n",
                   (unsigned long long)atomic_load(&sh->send_errors), BATCH);
        summarize(ra, rb, o.rounds, &s);
        munmap(sh, sizeof(*sh));
        close(rx.ep);
        close(rx.fd);
    }
    if (o.run_c) {
        run_inmem(&o, key, mac_key, false);
        c_rate = run_inmem(&o, key, mac_key, true);
    }
    if (o.run_d)
        run_sealed(&o);

    char b1[32], b2[32], b3[32];
    printf("targets (printed, not asserted):\n");
    if (o.run_ab) {
        printf("  >= %s heartbeats/s on one core: (b) %s/s wall, %s per CPU-second\n",
               grp(b1, sizeof(b1), TARGET_RATE), grp(b2, sizeof(b2), s.b_acc_med),
               grp(b3, sizeof(b3), s.b_acc_cpu_med));
        printf("  >= %.0f%% of the bare loop: (b)/(a) %.0f%% wall, %.0f%% per CPU-second\n",
               100 * TARGET_RATIO, s.a_rate_med > 0 ? 100.0 * s.b_acc_med / s.a_rate_med : 0.0,
               s.a_cpu_med > 0 ? 100.0 * s.b_acc_cpu_med / s.a_cpu_med : 0.0);
    }
    if (o.run_c)
        printf("  core ceiling (c): %s heartbeats per CPU-second (target %s)\n",
               grp(b1, sizeof(b1), c_rate), grp(b2, sizeof(b2), TARGET_RATE));
    return 0;
}
