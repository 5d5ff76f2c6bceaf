/*
 * bench_memory: what the monitor costs in memory per node.
 *
 * A monitor for a million nodes must fit on an ordinary machine, so the
 * design sets a budget of 200 bytes per node. This program checks it from
 * two sides, for each node count (100,000 and 1,000,000 by default) and for
 * each detector (phi accrual with the default window of 32 intervals, the
 * fixed timeout with its defaults, and the grid; every detector keeps its
 * whole history in the node record):
 *
 *   - what the monitor says it allocated, vigil_monitor_memory(), divided
 *     by the number of nodes;
 *   - what the process really gained in resident memory (VmRSS): read just
 *     before the monitor is created and again after every node has sent two
 *     authenticated heartbeats (two, so that every phi history holds a
 *     learned interval and every node has a deadline in the heap).
 *
 * The two differ on purpose: the monitor allocates its tables once for
 * max_nodes, and the kernel backs only the pages that are written. Both
 * are printed, with the resident size right after creation too, so that
 * the reserved-but-untouched part is visible.
 *
 * Each case runs in a fresh child process (fork), so that one case's
 * freed memory (which the allocator may keep) does not lower the next
 * one's growth. Heartbeats arrive in virtual time, one a second per node,
 * spread evenly over the second; events are drained as the daemon drains
 * them, so that the event queue holds what it holds in a running monitor.
 *
 * The program prints figures and the target; it never fails on them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include <vigil/monitor.h>
#include <vigil/sender.h>
#include <vigil/wire.h>

#include "core/monitor_int.h" /* sizeof(struct vigil_node) */

/* The design's budget per node. */
#define TARGET_BYTES 200.0
/* More node counts than this on one command line is a typing mistake. */
#define MAX_CASES 8
/* The monitor's table limit (monitor.c checks max_nodes against 2^24). */
#define MAX_NODES (1u << 24)
/* Events are drained every 64 heartbeats, the daemon's receive batch. */
#define BATCH 64
/* "node-0000042": 12 characters, the length of a typical host name. */
#define ID_FORMAT "node-%07u"

/* Resident set size of this process in bytes, from /proc/self/statm. */
static long long rss_bytes(void)
{
    long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%lld %lld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* Peak resident size in bytes (VmHWM in /proc/self/status). */
static long long peak_rss_bytes(void)
{
    char line[256];
    long long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    /* /proc/self/status has about 60 lines; 1,000 bounds the loop generously. */
    for (int i = 0; i < 1000 && fgets(line, sizeof(line), f); i++)
        if (sscanf(line, "VmHWM: %lld kB", &kib) == 1)
            break;
    fclose(f);
    /* The kernel counts in KiB: 1024 bytes each. */
    return kib < 0 ? -1 : kib * 1024;
}

/* One case, run in a child: N nodes, one detector kind. Returns the exit status. */
static int measure(unsigned n, enum vigil_detector_kind kind, const uint8_t *key)
{
    struct vigil_monitor_config cfg;
    vigil_monitor_config_default(&cfg);
    if (kind != VIGIL_DETECTOR_PHI)
        vigil_detector_config_default(&cfg.detector, kind, VIGIL_NSEC_PER_SEC);
    cfg.max_nodes = n;
    cfg.has_key = true;
    memcpy(cfg.key, key, VIGIL_WIRE_KEY_LEN);
    randombytes_buf(cfg.hash_seed, sizeof(cfg.hash_seed));
    /* The monitor derives its tag key from cfg.key; the heartbeats are tagged with the same. */
    uint8_t mac_key[VIGIL_WIRE_MAC_KEY_LEN];
    vigil_wire_mac_key(mac_key, key);

    static struct vigil_heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    hb.generation = 1;
    /* One heartbeat a second, the default interval. */
    hb.interval_ms = 1000;
    hb.send_time_us = vigil_clock_wall_us();
    struct vigil_addr from = {.family = AF_INET, .port = 40000, .addr = {127, 0, 0, 1}};
    uint8_t buf[VIGIL_WIRE_MAX];
    struct vigil_event ev;

    long long rss0 = rss_bytes();
    struct vigil_monitor *m;
    int rc = vigil_monitor_new(&cfg, 0, &m);
    if (rc) {
        fprintf(stderr, "bench_memory: vigil_monitor_new: %s\n", vigil_strerror(rc));
        return 1;
    }
    long long rss1 = rss_bytes();

    vigil_time_t step = VIGIL_NSEC_PER_SEC / n;
    /* Two rounds: the first registers every node, the second teaches each history an interval. */
    for (unsigned r = 0; r < 2; r++) {
        vigil_time_t base = (vigil_time_t)(r + 1) * VIGIL_NSEC_PER_SEC;
        hb.sequence = r + 1;
        for (unsigned i = 0; i < n; i++) {
            snprintf(hb.id, sizeof(hb.id), ID_FORMAT, i);
            int len = vigil_wire_encode(&hb, mac_key, buf, sizeof(buf));
            if (len < 0) {
                fprintf(stderr, "bench_memory: encode: %s\n", vigil_strerror(len));
                return 1;
            }
            vigil_time_t now = base + (vigil_time_t)i * step;
            vigil_monitor_on_datagram(m, now, buf, (size_t)len, &from);
            if (i % BATCH == BATCH - 1 || i == n - 1) {
                if (now >= vigil_monitor_next_deadline(m))
                    vigil_monitor_on_expiry(m, now);
                while (vigil_monitor_poll_event(m, &ev))
                    ;
            }
        }
    }
    long long rss2 = rss_bytes();
    size_t mem = vigil_monitor_memory(m);
    const struct vigil_monitor_stats *st = vigil_monitor_stats(m);
    double per_mem = (double)mem / n;
    double per_rss = (double)(rss2 - rss0) / n;

    printf("%9u  %-5s  %8.1f  %8.1f  %8.1f   %5zu + %5.1f   %9zu  %10llu  %6.0f MB\n", n,
           vigil_detector_kind_name(kind), per_mem, per_rss, (double)(rss1 - rss0) / n,
           sizeof(struct vigil_node), per_mem - (double)sizeof(struct vigil_node),
           vigil_monitor_node_count(m), (unsigned long long)st->accepted,
           (double)peak_rss_bytes() / 1e6);
    bool ok = vigil_monitor_node_count(m) == n && st->accepted == 2ull * n;
    if (!ok)
        printf("           warning: expected %u nodes and %llu accepted heartbeats\n", n, 2ull * n);
    fflush(stdout);
    vigil_monitor_free(m);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_memory [--nodes N[,N...]]\n"
               "  --nodes LIST   node counts, comma separated (default 100000,1000000)\n");
}

int main(int argc, char **argv)
{
    unsigned counts[MAX_CASES] = {100000, 1000000};
    unsigned n_counts = 2;
    static const struct option longs[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "n:h", longs, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        if (c != 'n') {
            usage(stderr);
            return 2;
        }
        n_counts = 0;
        char *s = optarg;
        while (*s && n_counts < MAX_CASES) {
            char *e;
            errno = 0;
            unsigned long v = strtoul(s, &e, 10);
            if (errno || e == s || v < 1 || v > MAX_NODES || (*e && *e != ',')) {
                fprintf(stderr, "bench_memory: --nodes takes counts of 1..%u, comma separated\n",
                        MAX_NODES);
                return 2;
            }
            counts[n_counts++] = (unsigned)v;
            s = *e ? e + 1 : e;
        }
    }
    if (optind < argc || n_counts == 0) {
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "bench_memory: sodium_init failed\n");
        return 1;
    }
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    randombytes_buf(key, sizeof(key));

    printf(
        "monitor memory per node: defaults (phi window 32), the fixed and the grid detector; every "
        "node sent 2 authenticated heartbeats\n");
    printf("target: <= %.0f bytes per node\n", TARGET_BYTES);
    printf("    nodes  det    monitor  RSS grow  RSS new   node + rest        nodes    "
           "accepted   peak RSS\n");
    printf("                  B/node    B/node    B/node   (B/node, monitor)\n");
    int failed = 0;
    enum vigil_detector_kind kinds[3] = {VIGIL_DETECTOR_PHI, VIGIL_DETECTOR_FIXED,
                                         VIGIL_DETECTOR_GRID};
    for (unsigned i = 0; i < n_counts; i++) {
        for (int k = 0; k < 3; k++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0) {
                perror("bench_memory: fork");
                return 1;
            }
            if (pid == 0)
                _exit(measure(counts[i], kinds[k], key));
            int status;
            if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                failed = 1;
        }
    }
    printf("monitor: vigil_monitor_memory() / N. RSS grow: resident growth from before creation "
           "to after feeding, / N.\n"
           "RSS new: growth right after creation (tables reserved, not yet touched). rest: hash "
           "slots, deadline heap, long ids, events.\n");
    return failed;
}
