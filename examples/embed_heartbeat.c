/*
 * embed_heartbeat: an application that reports its own liveness to a vigil
 * monitor by embedding libvigil, with no agent process beside it.
 *
 * A process that sends its own heartbeats says more than a host agent can:
 * the heartbeats stop when the application hangs, not only when the machine
 * dies, and they carry the application's own numbers. This one pretends to
 * serve requests: every heartbeat carries a growing "requests" counter and
 * a "queue_depth" that goes up and down, and the last one says it is
 * "draining". After COUNT heartbeats it sends the goodbye, so the monitor
 * marks it "left" at once instead of waiting to convict it as dead.
 *
 * The sender runs no thread and no timer of its own: the application
 * beats, then sleeps until vigil_sender_next(), an absolute time on
 * CLOCK_MONOTONIC, so the rhythm does not drift however long each pass
 * takes.
 *
 * With --key-file it authenticates its heartbeats, as a monitor with a
 * master key requires: the file is a node key as `vigil keygen --node ID
 * --master FILE` writes it (a header line "vigil-node-key ID [key-id=N]",
 * then 64 hex digits), readable by its owner only, and its ID must be the
 * one given. The key is read here with nothing but libc: libvigil takes
 * the 32 bytes and the key id, and keeps only what it derives from them.
 *
 *   usage: embed_heartbeat [--key-file FILE] ID MONITOR [COUNT]
 *   e.g.   embed_heartbeat --key-file app1.key app1 127.0.0.1:7946 5
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <vigil/vigil.h>

/* Heartbeats sent when COUNT is not given. */
#define DEFAULT_COUNT 5
/* The largest COUNT accepted: about eleven days at one heartbeat a second. */
#define MAX_COUNT 1000000
/*
 * A sleep interrupted by this many signals in a row gives up early and
 * beats: a late heartbeat is better than a loop that never ends.
 */
#define MAX_EINTR 100

/* A node key file is two short lines: a header and 64 hex digits; more is not a key file. */
#define KEY_FILE_MAX 256

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Reads the node key of id from path: owner-only permissions, the header
 * "vigil-node-key ID [key-id=N]" naming id, then 64 hex digits. Returns 0
 * with key and *key_id set, or -1 after saying why.
 */
static int read_node_key(const char *prog, const char *path, const char *id,
                         uint8_t key[VIGIL_WIRE_KEY_LEN], uint8_t *key_id)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        fprintf(stderr, "%s: %s must be a file readable by its owner only (chmod 600)\n", prog,
                path);
        fclose(f);
        return -1;
    }
    char text[KEY_FILE_MAX + 1];
    size_t len = fread(text, 1, sizeof(text), f);
    fclose(f);
    if (len > KEY_FILE_MAX) {
        fprintf(stderr, "%s: %s: too long for a key file\n", prog, path);
        return -1;
    }
    text[len] = '\0';
    /* The header: "vigil-node-key ID" and maybe " key-id=N". */
    char *nl = strchr(text, '\n');
    static const char magic[] = "vigil-node-key ";
    if (!nl || strncmp(text, magic, sizeof(magic) - 1) != 0) {
        fprintf(stderr, "%s: %s: not a node key (vigil keygen --node ID --master FILE)\n", prog,
                path);
        return -1;
    }
    *nl = '\0';
    char *who = text + sizeof(magic) - 1, *opt = strchr(who, ' ');
    unsigned long kid = 0;
    if (opt) {
        *opt++ = '\0';
        char *end;
        if (strncmp(opt, "key-id=", 7) != 0 ||
            (kid = strtoul(opt + 7, &end, 10)) > VIGIL_WIRE_KEY_ID_MAX || end == opt + 7 ||
            *end != '\0') {
            fprintf(stderr, "%s: %s: a bad key-id in the header\n", prog, path);
            return -1;
        }
    }
    if (strcmp(who, id) != 0) {
        fprintf(stderr, "%s: %s is the key of another node, not of %s\n", prog, path, id);
        return -1;
    }
    /* The key: 64 hex digits, then only white space. */
    const char *h = nl + 1;
    for (size_t i = 0; i < VIGIL_WIRE_KEY_LEN; i++) {
        int hi = hex_value(h[2 * i]), lo = hi < 0 ? -1 : hex_value(h[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            fprintf(stderr, "%s: %s: the key is not 64 hex digits\n", prog, path);
            return -1;
        }
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    for (const char *t = h + 2 * VIGIL_WIRE_KEY_LEN; *t; t++)
        if (*t != '\n' && *t != ' ' && *t != '\t' && *t != '\r') {
            fprintf(stderr, "%s: %s: the key is not 64 hex digits\n", prog, path);
            return -1;
        }
    *key_id = (uint8_t)kid;
    return 0;
}

/* Sleeps until t on CLOCK_MONOTONIC, the clock libvigil schedules on. */
static void sleep_until(vigil_time_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / VIGIL_NSEC_PER_SEC),
                          .tv_nsec = (long)(t % VIGIL_NSEC_PER_SEC)};
    for (int i = 0; i < MAX_EINTR; i++)
        if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != EINTR)
            return;
}

int main(int argc, char **argv)
{
    const char *prog = argv[0], *key_file = NULL;
    if (argc >= 3 && strcmp(argv[1], "--key-file") == 0) {
        key_file = argv[2];
        argc -= 2;
        argv += 2;
    }
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s [--key-file FILE] ID MONITOR [COUNT]\n", prog);
        return 2;
    }
    long count = DEFAULT_COUNT;
    if (argc == 4) {
        char *end;
        errno = 0;
        count = strtol(argv[3], &end, 10);
        if (errno != 0 || *end != '\0' || end == argv[3] || count < 1 || count > MAX_COUNT) {
            fprintf(stderr, "%s: COUNT must be 1 to %d\n", prog, MAX_COUNT);
            return 2;
        }
    }
    uint8_t key[VIGIL_WIRE_KEY_LEN];
    uint8_t key_id = 0;
    if (key_file && read_node_key(prog, key_file, argv[1], key, &key_id) != 0)
        return 2;

    struct vigil_sender_config cfg;
    vigil_sender_config_default(&cfg); /* 1 s interval, load and memory from /proc */
    cfg.id = argv[1];
    cfg.monitors[0] = argv[2];
    cfg.n_monitors = 1;
    if (key_file) {
        cfg.key = key; /* the sender keeps what it derives, not the key itself */
        cfg.key_id = key_id;
    }
    struct vigil_sender *s;
    int rc = vigil_sender_new(&cfg, &s);
    /* Wiped once the sender has what it needs (volatile: the compiler must not skip it). */
    for (size_t i = 0; i < sizeof(key); i++)
        ((volatile uint8_t *)key)[i] = 0;
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, vigil_strerror(rc));
        return 1;
    }
    printf("sending as %s (generation %" PRIu64 ") to %s%s\n", argv[1], vigil_sender_generation(s),
           argv[2], key_file ? ", authenticated" : "");

    uint64_t requests = 0;
    for (long i = 1; i <= count; i++) {
        /* The "work" between heartbeats: some requests served, a queue that moves. */
        requests += 40 + (uint64_t)(i * 13 % 25);
        unsigned queue = (unsigned)(i * 7 % 11);
        const char *phase = i < count ? "serving" : "draining";
        char req[24], q[16]; /* a uint64_t has at most 20 digits, an unsigned 10 */
        snprintf(req, sizeof(req), "%" PRIu64, requests);
        snprintf(q, sizeof(q), "%u", queue);
        vigil_sender_set_custom(s, "requests", req);
        vigil_sender_set_custom(s, "queue_depth", q);
        vigil_sender_set_custom(s, "phase", phase);

        rc = vigil_sender_beat(s, false);
        if (rc == 0)
            printf("heartbeat %ld: requests=%s queue_depth=%s phase=%s\n", i, req, q, phase);
        else
            printf("heartbeat %ld: not sent: %s\n", i, vigil_strerror(rc));
        fflush(stdout);
        if (i < count)
            sleep_until(vigil_sender_next(s));
    }

    rc = vigil_sender_beat(s, true);
    printf("goodbye %s; %" PRIu64 " datagrams sent, %" PRIu64 " send errors\n",
           rc == 0 ? "sent" : "not sent", vigil_sender_sent(s), vigil_sender_errors(s));
    vigil_sender_free(s);
    return rc == 0 ? 0 : 1;
}
