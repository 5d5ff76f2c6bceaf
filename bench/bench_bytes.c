/*
 * bench_bytes: the network cost of one node's heartbeats, in bytes per second.
 *
 * Runs the real sender (src/io/sender.c, through its caller-supplied clock
 * and transport) in virtual time and counts what it hands to the network,
 * so the figures follow the real encoder and the real choice between beat
 * and full status. For each case it runs 10 minutes of warm-up, then
 * counts one hour:
 *
 *   - wire version 1 (every heartbeat with the full status), and version 2
 *     steady (beats, and the full status every status_every heartbeats), and
 *     version 2 with a status change every minute (a custom pair rewritten);
 *   - heartbeats every 1 s and every 100 ms;
 *   - a 5-byte id ("web-1") and a 32-byte id, the longest the 64-byte bound
 *     of docs/protocol.md covers;
 *   - always authenticated, with two custom pairs (role=primary,
 *     zone=eu-west-1) and the default status_every (30).
 *
 * "UDP" is the UDP payload. "wire" adds the 42 bytes of headers every
 * datagram carries on an Ethernet link: IPv4 (20), UDP (8), Ethernet (14).
 * The physical link adds 24 more per frame (frame check sequence 4,
 * preamble 8, inter-frame gap 12), given separately. Over IPv6, add 20.
 *
 * Usage: bench_bytes [--status-every N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <vigil/sender.h>

#include "io/sender_io.h"

/* Bytes of headers outside the UDP payload (see above). */
#define HDR_IP_UDP_ETH 42
#define HDR_PHY_EXTRA  24
#define WARMUP_S       600
#define MEASURE_S      3600

struct count {
    vigil_time_t now;
    int counting;
    unsigned long long datagrams, bytes;
    size_t smallest, largest;
};

static vigil_time_t c_now(void *arg)
{
    return ((struct count *)arg)->now;
}

static int64_t c_wall_us(void *arg)
{
    return INT64_C(1700000000000000) + ((struct count *)arg)->now / 1000;
}

static int c_send(void *arg, const struct vigil_addr *to, const uint8_t *buf, size_t len)
{
    struct count *c = arg;
    (void)to;
    (void)buf;
    if (!c->counting)
        return 0;
    c->datagrams++;
    c->bytes += len;
    if (c->smallest == 0 || len < c->smallest)
        c->smallest = len;
    if (len > c->largest)
        c->largest = len;
    return 0;
}

static int c_sample(void *arg, struct vigil_status *st)
{
    struct count *c = arg;
    /* Numbers that move, as /proc's do; their size on the wire is fixed. */
    st->load1_milli = (uint32_t)(c->now / VIGIL_NSEC_PER_SEC % 4000);
    st->load5_milli = 900;
    st->load15_milli = 700;
    st->mem_total_kib = 16384000;
    st->mem_avail_kib = 8000000 + (uint64_t)(c->now / VIGIL_NSEC_PER_MSEC % 1000);
    st->uptime_s = (uint64_t)(c->now / VIGIL_NSEC_PER_SEC);
    return 0;
}

/* One case; prints one table row. */
static int run(const char *id, vigil_time_t interval, uint8_t wire_version, bool change,
               uint32_t status_every)
{
    static const uint8_t key[VIGIL_WIRE_KEY_LEN] = {1, 2, 3};
    struct count c;
    memset(&c, 0, sizeof(c));
    struct vigil_sender_config sc;
    vigil_sender_config_default(&sc);
    sc.id = id;
    sc.interval = interval;
    sc.key = key;
    sc.generation = 1;
    sc.status_every = status_every;
    sc.wire_version = wire_version;
    struct vigil_addr dest = {.family = AF_INET, .port = VIGIL_DEFAULT_PORT};
    struct vigil__sender_io io = {c_now, c_wall_us, c_send, c_sample, &c};
    struct vigil_sender *s;
    int rc = vigil__sender_new_io(&sc, &dest, 1, &io, &s);
    if (rc < 0) {
        fprintf(stderr, "bench_bytes: %s\n", vigil_strerror(rc));
        return -1;
    }
    vigil_sender_set_custom(s, "role", "primary");
    vigil_sender_set_custom(s, "zone", "eu-west-1");
    long long beats = (long long)((WARMUP_S + MEASURE_S) * VIGIL_NSEC_PER_SEC / interval);
    long long warm = (long long)(WARMUP_S * VIGIL_NSEC_PER_SEC / interval);
    long long per_minute = (long long)(60 * VIGIL_NSEC_PER_SEC / interval);
    unsigned changes = 0;
    for (long long i = 0; i < beats; i++) {
        c.now = i * interval;
        c.counting = i >= warm;
        if (change && i > 0 && i % per_minute == 0) {
            char v[16];
            snprintf(v, sizeof(v), "%u", ++changes);
            vigil_sender_set_custom(s, "deploy", v);
        }
        if (vigil_sender_beat(s, false) < 0) {
            fprintf(stderr, "bench_bytes: beat failed\n");
            vigil_sender_free(s);
            return -1;
        }
    }
    vigil_sender_free(s);
    double udp = (double)c.bytes / MEASURE_S;
    double wire = (double)(c.bytes + c.datagrams * HDR_IP_UDP_ETH) / MEASURE_S;
    double phy = wire + (double)c.datagrams * HDR_PHY_EXTRA / MEASURE_S;
    printf("| %-2zu | %s | v%u %-7s | %3zu..%-3zu | %8.1f | %9.1f | %9.1f |\n", strlen(id),
           interval == VIGIL_NSEC_PER_SEC ? "1 s   " : "100 ms", wire_version,
           wire_version == VIGIL_WIRE_V1 ? ""
           : change                      ? "change"
                                         : "steady",
           c.smallest, c.largest, udp, wire, phy);
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t every = VIGIL_SENDER_STATUS_EVERY_DEFAULT;
    if (argc == 3 && strcmp(argv[1], "--status-every") == 0) {
        every = (uint32_t)strtoul(argv[2], NULL, 10);
    } else if (argc != 1) {
        fprintf(stderr, "usage: bench_bytes [--status-every N]\n");
        return 2;
    }
    static const char *ids[] = {"web-1", "node-0123456789.dc1.example.org1"};
    static const vigil_time_t intervals[] = {VIGIL_NSEC_PER_SEC, 100 * VIGIL_NSEC_PER_MSEC};
    printf("Bytes per second for one node, authenticated, two custom pairs, "
           "status_every %u; one hour after 10 minutes of warm-up.\n"
           "wire = UDP + %d (IPv4, UDP, Ethernet headers); phy = wire + %d "
           "(FCS, preamble, gap) per datagram.\n\n",
           every, HDR_IP_UDP_ETH, HDR_PHY_EXTRA);
    printf("| id | interval | version | UDP bytes | UDP B/s | wire B/s | phy B/s |\n");
    printf("| --- | --- | --- | --- | ---: | ---: | ---: |\n");
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 2; j++)
            if (run(ids[i], intervals[j], VIGIL_WIRE_V1, false, every) < 0 ||
                run(ids[i], intervals[j], VIGIL_WIRE_V2, false, every) < 0 ||
                run(ids[i], intervals[j], VIGIL_WIRE_V2, true, every) < 0)
                return 1;
    return 0;
}
