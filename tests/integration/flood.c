/*
 * vigil_flood: a test helper for tests/integration/test_flood.py. Sends
 * datagrams to one UDP address as fast as it can, for a given time, and
 * says how many it sent.
 *
 *   vigil_flood --target 127.0.0.1:PORT --seconds S [--seed N]
 *               [--node ID=KEYFILE]... [--replay FILE]
 *
 * It builds a pool of datagrams once and sends it round and round with
 * sendmmsg, 64 at a time, through a connected socket. The pool mixes, in
 * turn:
 *
 *  - random bytes, 0 to 1300 of them;
 *  - valid datagrams of a real node (made with its key, wire versions 1
 *    and 2, generation 1: older than any real generation), cut short;
 *  - the same with one to three bits flipped;
 *  - the same whole: valid, and stale (a replay made with the key);
 *  - replays of real heartbeats captured by the test (--replay: a file of
 *    datagrams, each a 2-byte big-endian length and its bytes);
 *  - spoofed ids: well-formed datagrams for the real nodes' ids and for
 *    random ids, tagged with a key that is not theirs.
 *
 * Without --node only random bytes and spoofed random ids are sent. The
 * last line of output is "sent N datagrams in T s (R per second)". Only
 * loopback addresses are accepted, so the helper cannot flood anything
 * else by mistake.
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vigil/vigil.h>

#include "vigil/config.h"

/* Datagrams in the pool: enough variety, small enough to stay in cache. */
#define POOL 4096
/* Datagrams per sendmmsg. */
#define BATCH 64
/* Real nodes the helper may be given. */
#define MAX_NODES 16
/* Longest flood: the helper never runs away. */
#define MAX_SECONDS 120
/* Random datagrams go up to this many bytes: past the 1200 the wire allows. */
#define RANDOM_MAX 1300

struct node {
    char id[VIGIL_ID_MAX + 1];
    uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN];
};

static uint64_t rng_state;

/* xorshift64*: fast, and the same run for the same seed. */
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static double now_s(void)
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

static void die(const char *what)
{
    fprintf(stderr, "vigil_flood: %s\n", what);
    exit(2);
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

/* A well-formed heartbeat of id; its version and type vary with k. */
static void make_hb(struct vigil_heartbeat *hb, const char *id, uint64_t k)
{
    memset(hb, 0, sizeof(*hb));
    snprintf(hb->id, sizeof(hb->id), "%s", id);
    hb->version = (k & 1) ? VIGIL_WIRE_V1 : VIGIL_WIRE_V2;
    hb->type = (k & 2) ? VIGIL_MSG_STATUS : VIGIL_MSG_BEAT;
    if (hb->version == VIGIL_WIRE_V1)
        hb->type = VIGIL_MSG_HEARTBEAT;
    hb->generation = 1; /* older than any real node's: stale if ever valid */
    hb->sequence = k + 1;
    hb->send_time_us = wall_us();
    hb->interval_ms = 100;
    hb->status.load1_milli = 250;
    hb->status.mem_total_kib = 1 << 20;
    hb->status.mem_avail_kib = 1 << 19;
    hb->status.uptime_s = 1000;
}

/* Encodes hb with the tag key mac into d; returns its length (>= 0). */
static size_t encode(const struct vigil_heartbeat *hb, const uint8_t *mac, uint8_t *d)
{
    int n = vigil_wire_encode(hb, mac, d, VIGIL_WIRE_MAX);
    if (n < 0)
        die("cannot encode a heartbeat");
    return (size_t)n;
}

int main(int argc, char **argv)
{
    const char *target = NULL, *replay = NULL;
    double seconds = 0;
    uint64_t seed = 1;
    struct node nodes[MAX_NODES];
    size_t n_nodes = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--target")) {
            target = argv[i + 1];
        } else if (!strcmp(argv[i], "--seconds")) {
            seconds = atof(argv[i + 1]);
        } else if (!strcmp(argv[i], "--seed")) {
            seed = strtoull(argv[i + 1], NULL, 10);
        } else if (!strcmp(argv[i], "--replay")) {
            replay = argv[i + 1];
        } else if (!strcmp(argv[i], "--node") && n_nodes < MAX_NODES) {
            char *eq = strchr(argv[i + 1], '=');
            if (!eq || eq == argv[i + 1] || (size_t)(eq - argv[i + 1]) > VIGIL_ID_MAX)
                die("--node wants ID=KEYFILE");
            struct node *nd = &nodes[n_nodes++];
            snprintf(nd->id, sizeof(nd->id), "%.*s", (int)(eq - argv[i + 1]), argv[i + 1]);
            uint8_t key[VIGIL_WIRE_KEY_LEN];
            read_key(eq + 1, key);
            vigil_wire_mac_key(nd->mac, key);
        } else {
            die("usage: vigil_flood --target 127.0.0.1:PORT --seconds S [--seed N] "
                "[--node ID=KEYFILE]... [--replay FILE]");
        }
    }
    if (!target || seconds <= 0 || seconds > MAX_SECONDS)
        die("--target and --seconds (0 < S <= 120) are needed");
    rng_state = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;

    struct sockaddr_in to = {.sin_family = AF_INET};
    char host[64];
    const char *colon = strrchr(target, ':');
    if (!colon || (size_t)(colon - target) >= sizeof(host))
        die("--target wants 127.0.0.1:PORT");
    snprintf(host, sizeof(host), "%.*s", (int)(colon - target), target);
    if (inet_pton(AF_INET, host, &to.sin_addr) != 1 || (ntohl(to.sin_addr.s_addr) >> 24) != 127)
        die("only loopback targets (127.0.0.0/8)");
    to.sin_port = htons((uint16_t)atoi(colon + 1));

    /* Captured datagrams to replay. */
    static uint8_t caught[POOL][VIGIL_WIRE_MAX];
    static size_t caught_len[POOL];
    size_t n_caught = 0;
    if (replay) {
        FILE *f = fopen(replay, "rb");
        if (!f)
            die("cannot open the replay file");
        uint8_t hdr[2];
        while (n_caught < POOL && fread(hdr, 1, 2, f) == 2) {
            size_t len = (size_t)hdr[0] << 8 | hdr[1];
            if (len > VIGIL_WIRE_MAX || fread(caught[n_caught], 1, len, f) != len)
                break;
            caught_len[n_caught++] = len;
        }
        fclose(f);
    }

    /* The pool. */
    static uint8_t pool[POOL][RANDOM_MAX];
    static size_t pool_len[POOL];
    size_t kinds[6] = {0};
    for (size_t i = 0; i < POOL; i++) {
        uint8_t *d = pool[i];
        struct vigil_heartbeat hb;
        unsigned kind = (unsigned)(i % 6);
        if (n_nodes == 0 && kind != 0)
            kind = 5;
        if (kind == 4 && n_caught == 0)
            kind = 3;
        const struct node *nd = n_nodes ? &nodes[rnd() % n_nodes] : NULL;
        switch (kind) {
        case 0: /* random bytes */
            pool_len[i] = rnd() % (RANDOM_MAX + 1);
            for (size_t b = 0; b < pool_len[i]; b++)
                d[b] = (uint8_t)rnd();
            break;
        case 1: /* a valid datagram cut short */
            make_hb(&hb, nd->id, i);
            pool_len[i] = rnd() % encode(&hb, nd->mac, d);
            break;
        case 2: { /* a valid datagram with one to three bits flipped */
            make_hb(&hb, nd->id, i);
            size_t len = encode(&hb, nd->mac, d);
            for (uint64_t f = rnd() % 3 + 1; f > 0; f--) {
                size_t bit = rnd() % (len * 8);
                d[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
            pool_len[i] = len;
            break;
        }
        case 3: /* a valid datagram, whole: stale */
            make_hb(&hb, nd->id, i);
            pool_len[i] = encode(&hb, nd->mac, d);
            break;
        case 4: { /* a captured real heartbeat, replayed */
            size_t c = rnd() % n_caught;
            memcpy(d, caught[c], caught_len[c]);
            pool_len[i] = caught_len[c];
            break;
        }
        default: { /* a spoofed id: well formed, the wrong tag */
            char id[VIGIL_ID_MAX + 1];
            if (nd && (rnd() & 1))
                snprintf(id, sizeof(id), "%s", nd->id);
            else
                snprintf(id, sizeof(id), "spoof-%" PRIu64, rnd() % 1000000);
            uint8_t wrong[VIGIL_WIRE_MAC_KEY_LEN];
            for (size_t b = 0; b < sizeof(wrong); b++)
                wrong[b] = (uint8_t)rnd();
            make_hb(&hb, id, i);
            hb.generation = (uint64_t)wall_us();
            pool_len[i] = encode(&hb, wrong, d);
            break;
        }
        }
        kinds[kind]++;
    }

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0)
        die("cannot open a socket to the target");
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

    static struct mmsghdr msgs[POOL];
    static struct iovec iov[POOL];
    for (size_t i = 0; i < POOL; i++) {
        iov[i].iov_base = pool[i];
        iov[i].iov_len = pool_len[i];
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }

    uint64_t sent = 0, errors = 0;
    size_t at = 0;
    double t0 = now_s(), end = t0 + seconds, t = t0;
    /* Bounded by time: each round is one system call. */
    while (t < end) {
        int n = sendmmsg(fd, &msgs[at], BATCH, 0);
        if (n > 0)
            sent += (uint64_t)n;
        else
            errors++; /* a refused port (ICMP) or a full buffer: go on */
        at = (at + BATCH) % POOL;
        t = now_s();
    }
    close(fd);
    double took = t - t0;
    printf("kinds: random %zu, truncated %zu, flipped %zu, stale %zu, replayed %zu, "
           "spoofed %zu; captured %zu\n",
           kinds[0], kinds[1], kinds[2], kinds[3], kinds[4], kinds[5], n_caught);
    printf("sent %" PRIu64 " datagrams in %.3f s (%.0f per second), %" PRIu64 " send errors\n",
           sent, took, took > 0 ? (double)sent / took : 0.0, errors);
    return 0;
}
