/*
 * ingest_sender: authenticated heartbeats from many node ids, as fast as
 * it can, to one UDP address on loopback. The sender of bench/store_ingest.py,
 * which measures what a real `vigil monitor` takes in with and without its
 * state store.
 *
 *   ingest_sender --target 127.0.0.1:PORT --key FILE --seconds S
 *                 [--nodes N] [--interval-ms MS]
 *                 [--churn-rate R --churn-silence S]
 *
 * It sends the way bench_ingest's sender does: one heartbeat per node id
 * (node-0000000, node-0000001, ...) round after round, each tagged with the
 * key derived from the cluster key in FILE (64 hex digits, as `vigil
 * monitor` reads a legacy cluster key), wire version 1, 100 bytes. Each
 * batch of 64 is encoded just before its sendmmsg on a connected socket,
 * and every round carries the next sequence number, so nothing is stale.
 * The generation is the wall clock in microseconds at start, so that a
 * later run is always newer than an earlier one. Every heartbeat
 * advertises --interval-ms (default nodes / 1000: the time a round takes
 * at a million datagrams a second).
 *
 * Churn: with --churn-rate R, the ids in a window of R x S ids (S =
 * --churn-silence seconds) are skipped, and the window moves forward by R
 * ids a second. So every second about R nodes fall silent for S seconds
 * (the monitor makes them suspect, then dead) and R others come back
 * (alive): a steady flow of events, as many nodes failing and recovering
 * at once would give.
 *
 * Every half second it prints "at T sent N" (T: CLOCK_MONOTONIC seconds,
 * the clock of Python's time.monotonic()), so that a driver can take the
 * rate over any window of the run, and at the end "sent N datagrams in T
 * s (R per second), CPU C s, E send errors". Only loopback targets are
 * accepted, and a run lasts at most 600 s.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vigil/vigil.h>

#include "bench_util.h"

#include "vigil/config.h"

#define BATCH       64
#define SLOT        128
#define ID_SLOT     16
#define ID_FORMAT   "node-%07u"
#define MAX_NODES   10000000u
#define MAX_SECONDS 600.0
/* How often progress is printed, in seconds. */
#define REPORT_EVERY 0.5

static void die(const char *what)
{
    fprintf(stderr, "ingest_sender: %s\n", what);
    exit(2);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A key file, read as the program reads one (src/vigil/config.h); any trouble ends the run. */
static void read_key(const char *path, uint8_t key[VIGIL_WIRE_KEY_LEN])
{
    enum vcfg_key_kind kind;
    char node[VIGIL_ID_MAX + 1], err[512];
    if (vcfg_read_key(path, key, &kind, node, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    const char *target = NULL, *key_path = NULL;
    double seconds = 0, silence = 0;
    unsigned nodes = 100000, interval_ms = 0, churn = 0;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            die("every option takes a value");
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--target"))
            target = v;
        else if (!strcmp(a, "--key"))
            key_path = v;
        else if (!strcmp(a, "--seconds"))
            seconds = atof(v);
        else if (!strcmp(a, "--nodes"))
            nodes = (unsigned)bench_parse_ul("ingest_sender", v, 1, MAX_NODES, "--nodes");
        else if (!strcmp(a, "--interval-ms"))
            interval_ms = (unsigned)bench_parse_ul("ingest_sender", v, 1, 3600000, "--interval-ms");
        else if (!strcmp(a, "--churn-rate"))
            churn = (unsigned)bench_parse_ul("ingest_sender", v, 0, MAX_NODES, "--churn-rate");
        else if (!strcmp(a, "--churn-silence"))
            silence = atof(v);
        else
            die("usage: ingest_sender --target 127.0.0.1:PORT --key FILE --seconds S "
                "[--nodes N] [--interval-ms MS] [--churn-rate R --churn-silence S]");
    }
    if (!target || !key_path || !(seconds > 0 && seconds <= MAX_SECONDS))
        die("--target, --key and --seconds (0 < S <= 600) are needed");
    if (churn && !(silence > 0 && (double)churn * silence < (double)nodes))
        die("--churn-rate R needs --churn-silence S > 0 with R x S below --nodes");
    if (!interval_ms)
        interval_ms = nodes >= 1000 ? nodes / 1000 : 1;

    struct sockaddr_in to = {.sin_family = AF_INET};
    char host[64];
    const char *colon = strrchr(target, ':');
    if (!colon || (size_t)(colon - target) >= sizeof(host))
        die("--target wants 127.0.0.1:PORT");
    snprintf(host, sizeof(host), "%.*s", (int)(colon - target), target);
    if (inet_pton(AF_INET, host, &to.sin_addr) != 1 || (ntohl(to.sin_addr.s_addr) >> 24) != 127)
        die("only loopback targets (127.0.0.0/8)");
    to.sin_port = htons((uint16_t)bench_parse_ul("ingest_sender", colon + 1, 1, 65535, "the port"));

    uint8_t key[VIGIL_WIRE_KEY_LEN], mac[VIGIL_WIRE_MAC_KEY_LEN];
    read_key(key_path, key);
    vigil_wire_mac_key(mac, key);

    char(*ids)[ID_SLOT] = calloc(nodes, ID_SLOT);
    if (!ids)
        die("out of memory");
    for (unsigned i = 0; i < nodes; i++)
        snprintf(ids[i], ID_SLOT, ID_FORMAT, i);

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0)
        die("cannot open a socket to the target");

    static struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    hb.generation = (uint64_t)wall_us();
    hb.send_time_us = wall_us();
    hb.interval_ms = interval_ms;
    hb.status.load1_milli = 420;
    hb.status.load5_milli = 380;
    hb.status.load15_milli = 350;
    hb.status.mem_total_kib = 16u << 20;
    hb.status.mem_avail_kib = 9u << 20;
    hb.status.uptime_s = 86400;

    static uint8_t bufs[BATCH][SLOT];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }

    uint64_t sent = 0, errors = 0, round = 0;
    unsigned next = 0;
    double t0 = mono_s(), end = t0 + seconds, t = t0, next_report = t0;
    uint64_t win_lo = 0, win_len = churn ? (uint64_t)((double)churn * silence) : 0;
    printf("at %.6f sent 0\n", t0);
    fflush(stdout);
    /* Bounded by time: the clock is read after every batch. */
    while (t < end) {
        if (churn)
            win_lo = (uint64_t)((t - t0) * churn) % nodes;
        int n = 0;
        while (n < BATCH) {
            unsigned id = next;
            if (++next == nodes) {
                next = 0;
                round++;
            }
            /* Skip the ids in the silent window [win_lo, win_lo + win_len) (mod nodes). */
            if (win_len && (id + (uint64_t)nodes - win_lo) % nodes < win_len)
                continue;
            memcpy(hb.id, ids[id], ID_SLOT);
            hb.sequence = round + 1;
            int len = vigil_wire_encode(&hb, mac, bufs[n], SLOT);
            if (len < 0)
                die("cannot encode a heartbeat");
            iov[n].iov_len = (size_t)len;
            n++;
        }
        int k = sendmmsg(fd, msgs, BATCH, 0);
        if (k > 0)
            sent += (uint64_t)k;
        if (k < BATCH)
            errors++; /* a refused port (ICMP) or a full buffer: go on */
        t = mono_s();
        if (t >= next_report) {
            printf("at %.6f sent %" PRIu64 "\n", t, sent);
            fflush(stdout);
            next_report = t + REPORT_EVERY;
        }
    }
    close(fd);
    free(ids);
    double took = t - t0;
    printf("at %.6f sent %" PRIu64 "\n", t, sent);
    printf("sent %" PRIu64 " datagrams in %.3f s (%.0f per second), CPU %.3f s, %" PRIu64
           " send errors\n",
           sent, took, took > 0 ? (double)sent / took : 0.0, bench_cpu_s(), errors);
    return 0;
}
