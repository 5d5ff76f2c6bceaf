/*
 * fleet_sender: a fleet of simulated agents in one process, the sender of
 * bench/whole_path.py, which runs the real `vigil monitor` against it.
 *
 *   fleet_sender --target 127.0.0.1:PORT --key FILE --seconds S
 *                [--nodes N] [--interval-ms MS] [--socks M] [--gso]
 *                [--stop K --stop-at T]
 *
 * Each of N nodes (node-0000000, ...) sends one heartbeat every MS
 * milliseconds (default 1000), as `vigil agent` does: wire version 2, a
 * full status with a custom pair in every 30 and beats in between, tagged
 * with the node's own key when FILE holds a master key (with the cluster
 * key's tag key otherwise). The nodes are spread evenly over the interval,
 * so the stream is N / MS heartbeats a millisecond, paced on the monotonic
 * clock: node i sends at i x MS / N into each interval.
 *
 * Node i always sends from socket i % M (default 64), so a node keeps one
 * source address and port, as a real agent does, and the monitor's
 * receive threads each get a share of the nodes. With --gso the datagrams
 * of a socket that are due together leave in one sendmsg with
 * UDP_SEGMENT: the kernel cuts them into the same datagrams the monitor
 * would get one by one (it does not ask for UDP_GRO), at a fraction of
 * the sender's cost, so that one sender process can play a large fleet.
 *
 * With --stop K, K nodes spread over the ids stop sending at T seconds
 * (as if killed); each is printed as "stopped ID at MONO LAST" (MONO: the
 * CLOCK_MONOTONIC second of the stop, LAST: that of its last heartbeat).
 *
 * Every second it prints "at T sent N behind B" (B: seconds the sender
 * was behind its schedule at worst in that second), and at the end
 * "sent N datagrams in T s (R per second), CPU C s, behind at worst B s,
 * E send errors". Only loopback targets are accepted; a run lasts at most
 * 1,800 s.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <vigil/vigil.h>

#include "bench_util.h"

#include "vigil/config.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define BATCH        64
#define SLOT         192
#define ID_FORMAT    "node-%07u"
#define MAX_NODES    10000000u
#define MAX_SOCKS    256
#define MAX_SECONDS  1800.0
#define MAX_STOP     1000
#define STATUS_EVERY VIGIL_SENDER_STATUS_EVERY_DEFAULT
/* The pacing step: what is due is sent every millisecond. */
#define TICK_NS 1000000LL

static void die(const char *what)
{
    fprintf(stderr, "fleet_sender: %s\n", what);
    exit(2);
}

/* A socket's datagrams waiting to go: beats and statuses apart (each kind has one size). */
struct queue {
    uint8_t buf[BATCH][SLOT];
    size_t len[BATCH];
    unsigned n;
};

struct sock {
    int fd;
    struct queue q[2];
};

static bool gso;
static uint64_t send_errors, sent;

static void flush(struct sock *s, struct queue *q)
{
    if (q->n == 0)
        return;
    if (gso && q->n > 1) {
        /* One buffer, cut by the kernel into q->n datagrams of len[0] bytes. */
        static uint8_t flat[BATCH * SLOT];
        for (unsigned i = 0; i < q->n; i++)
            memcpy(flat + (size_t)i * q->len[0], q->buf[i], q->len[0]);
        struct iovec iov = {.iov_base = flat, .iov_len = (size_t)q->n * q->len[0]};
        union {
            char b[CMSG_SPACE(sizeof(uint16_t))];
            struct cmsghdr align;
        } ctl;
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = ctl.b,
                            .msg_controllen = sizeof(ctl.b)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t seg = (uint16_t)q->len[0];
        memcpy(CMSG_DATA(c), &seg, sizeof(seg));
        if (sendmsg(s->fd, &mh, 0) < 0)
            send_errors++;
        else
            sent += q->n;
    } else {
        struct mmsghdr msgs[BATCH];
        struct iovec iov[BATCH];
        for (unsigned i = 0; i < q->n; i++) {
            iov[i] = (struct iovec){.iov_base = q->buf[i], .iov_len = q->len[i]};
            msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
        }
        int r = sendmmsg(s->fd, msgs, q->n, 0);
        if (r < 0)
            send_errors++;
        else
            sent += (uint64_t)r;
        if (r >= 0 && (unsigned)r < q->n)
            send_errors++;
    }
    q->n = 0;
}

int main(int argc, char **argv)
{
    const char *target = NULL, *key_path = NULL;
    double seconds = 0, stop_at = 0;
    unsigned nodes = 1000000, interval_ms = 1000, nsocks = 64, nstop = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--gso")) {
            gso = true;
            continue;
        }
        if (i + 1 >= argc)
            die("every option but --gso takes a value");
        const char *v = argv[++i];
        if (!strcmp(a, "--target"))
            target = v;
        else if (!strcmp(a, "--key"))
            key_path = v;
        else if (!strcmp(a, "--seconds"))
            seconds = atof(v);
        else if (!strcmp(a, "--nodes"))
            nodes = (unsigned)bench_parse_ul("fleet_sender", v, 1, MAX_NODES, "--nodes");
        else if (!strcmp(a, "--interval-ms"))
            interval_ms = (unsigned)bench_parse_ul("fleet_sender", v, 10, 3600000, "--interval-ms");
        else if (!strcmp(a, "--socks"))
            nsocks = (unsigned)bench_parse_ul("fleet_sender", v, 1, MAX_SOCKS, "--socks");
        else if (!strcmp(a, "--stop"))
            nstop = (unsigned)bench_parse_ul("fleet_sender", v, 0, MAX_STOP, "--stop");
        else if (!strcmp(a, "--stop-at"))
            stop_at = atof(v);
        else
            die("usage: fleet_sender --target 127.0.0.1:PORT --key FILE --seconds S [--nodes N] "
                "[--interval-ms MS] [--socks M] [--gso] [--stop K --stop-at T]");
    }
    if (!target || !key_path || !(seconds > 0 && seconds <= MAX_SECONDS))
        die("--target, --key and --seconds (at most 1800) are needed");
    if (nstop > nodes || (nstop && !(stop_at > 0 && stop_at < seconds)))
        die("--stop K needs K <= --nodes and 0 < --stop-at < --seconds");
    struct vigil_addr to;
    if (vigil_addr_parse(target, 0, &to) || to.family != AF_INET || to.addr[0] != 127)
        die("--target must be a 127.x.x.x:port address");
    if (sodium_init() < 0)
        die("sodium_init failed");

    uint8_t key[VIGIL_WIRE_KEY_LEN];
    enum vcfg_key_kind kind;
    char kid[VIGIL_ID_MAX + 1], err[512];
    if (vcfg_read_key(key_path, key, &kind, kid, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    bool master = kind == VCFG_KEY_MASTER;
    /* The tag keys: one per node under a master key, or the cluster's. */
    uint8_t(*macs)[VIGIL_WIRE_MAC_KEY_LEN] = malloc((size_t)(master ? nodes : 1) * sizeof(*macs));
    /* 1: a node to stop; 2: stopped. */
    uint8_t *stopped = calloc(nodes, 1);
    int64_t *last_sent = calloc(nstop ? nodes : 1, sizeof(*last_sent));
    if (!macs || !stopped || !last_sent)
        die("out of memory");
    for (unsigned s = 0; s < nstop; s++)
        stopped[(uint64_t)s * nodes / nstop] = 1;
    if (master) {
        for (unsigned i = 0; i < nodes; i++) {
            char id[16];
            uint8_t nk[VIGIL_WIRE_KEY_LEN];
            snprintf(id, sizeof(id), ID_FORMAT, i);
            if (vigil_wire_node_key(nk, key, id))
                die("node key");
            vigil_wire_mac_key(macs[i], nk);
        }
    } else {
        vigil_wire_mac_key(macs[0], key);
    }

    struct sock *socks = calloc(nsocks, sizeof(*socks));
    if (!socks)
        die("out of memory");
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(to.port)};
    memcpy(&sin.sin_addr, to.addr, 4);
    for (unsigned j = 0; j < nsocks; j++) {
        socks[j].fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int size = 4 << 20;
        setsockopt(socks[j].fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        if (socks[j].fd < 0 || connect(socks[j].fd, (struct sockaddr *)&sin, sizeof(sin)))
            die("socket");
    }

    static struct vigil_heartbeat hb;
    hb.version = VIGIL_WIRE_V2;
    hb.generation = (uint64_t)vigil_clock_wall_us();
    hb.interval_ms = interval_ms;
    hb.status.load1_milli = 420;
    hb.status.load5_milli = 380;
    hb.status.load15_milli = 350;
    hb.status.mem_total_kib = 16u << 20;
    hb.status.mem_avail_kib = 9u << 20;
    hb.status.uptime_s = 86400;
    hb.status_version = 1;
    hb.n_custom = 1;
    strcpy(hb.custom[0].key, "role");
    strcpy(hb.custom[0].value, "db-replica");

    /* Heartbeat k (k = round x nodes + i) is due at t0 + k x step. */
    double step = (double)interval_ms * 1e6 / nodes;
    int64_t t0 = vigil_clock_mono(), end = t0 + (int64_t)(seconds * 1e9);
    int64_t stop_ns = nstop ? t0 + (int64_t)(stop_at * 1e9) : INT64_MAX;
    int64_t next_report = t0 + 1000000000;
    uint64_t k = 0;
    double worst = 0, worst_second = 0;
    bool stops_done = false;
    for (;;) {
        int64_t now = vigil_clock_mono();
        if (now >= end)
            break;
        if (!stops_done && now >= stop_ns) {
            stops_done = true;
            for (unsigned s = 0; s < nstop; s++) {
                unsigned id = (unsigned)((uint64_t)s * nodes / nstop);
                stopped[id] = 2;
                printf("stopped " ID_FORMAT " at %.6f %.6f\n", id, (double)now / 1e9,
                       (double)last_sent[id] / 1e9);
            }
            fflush(stdout);
        }
        uint64_t due = (uint64_t)((double)(now - t0) / step) + 1;
        if (due > k) {
            double behind = ((double)(now - t0) - (double)k * step) / 1e9;
            if (behind > worst_second)
                worst_second = behind;
        }
        for (; k < due; k++) {
            unsigned i = (unsigned)(k % nodes);
            if (stopped[i] == 2)
                continue;
            uint64_t round = k / nodes;
            snprintf(hb.id, sizeof(hb.id), ID_FORMAT, i);
            hb.sequence = round + 1;
            bool status = (round + i) % STATUS_EVERY == 0;
            hb.type = status ? VIGIL_MSG_STATUS : VIGIL_MSG_BEAT;
            if (status)
                hb.send_time_us = vigil_clock_wall_us();
            struct sock *s = &socks[i % nsocks];
            struct queue *q = &s->q[status];
            const struct vigil_wire_keys wk = {.mac = macs[master ? i : 0]};
            int len = vigil_wire_encode_keys(&hb, &wk, q->buf[q->n], SLOT);
            if (len < 0)
                die("encode");
            q->len[q->n++] = (size_t)len;
            if (q->n == BATCH)
                flush(s, q);
            if (stopped[i] == 1)
                last_sent[i] = now; /* a node to stop: when it last sent */
        }
        /* What is due this tick leaves now, in part batches too. */
        for (unsigned j = 0; j < nsocks; j++) {
            flush(&socks[j], &socks[j].q[0]);
            flush(&socks[j], &socks[j].q[1]);
        }
        if (now >= next_report) {
            printf("at %.3f sent %" PRIu64 " behind %.3f\n", (double)now / 1e9, sent, worst_second);
            fflush(stdout);
            if (worst_second > worst)
                worst = worst_second;
            worst_second = 0;
            next_report += 1000000000;
        }
        int64_t next = t0 + (int64_t)((double)k * step);
        int64_t wait = next - vigil_clock_mono();
        if (wait > TICK_NS)
            wait = TICK_NS;
        if (wait > 0) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = wait};
            nanosleep(&ts, NULL);
        }
    }
    double el = (double)(vigil_clock_mono() - t0) / 1e9;
    if (worst_second > worst)
        worst = worst_second;
    printf("sent %" PRIu64 " datagrams in %.3f s (%.0f per second), CPU %.3f s, behind at worst "
           "%.3f s, %" PRIu64 " send errors\n",
           sent, el, (double)sent / el, bench_cpu_s(), worst, send_errors);
    for (unsigned j = 0; j < nsocks; j++)
        close(socks[j].fd);
    free(socks);
    free(last_sent);
    free(stopped);
    free(macs);
    return 0;
}
