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
 *   usage: embed_heartbeat ID MONITOR [COUNT]
 *   e.g.   embed_heartbeat app1 127.0.0.1:7946 5
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s ID MONITOR [COUNT]\n", argv[0]);
        return 2;
    }
    long count = DEFAULT_COUNT;
    if (argc == 4) {
        char *end;
        errno = 0;
        count = strtol(argv[3], &end, 10);
        if (errno != 0 || *end != '\0' || end == argv[3] || count < 1 || count > MAX_COUNT) {
            fprintf(stderr, "%s: COUNT must be 1 to %d\n", argv[0], MAX_COUNT);
            return 2;
        }
    }

    struct vigil_sender_config cfg;
    vigil_sender_config_default(&cfg); /* 1 s interval, load and memory from /proc */
    cfg.id = argv[1];
    cfg.monitors[0] = argv[2];
    cfg.n_monitors = 1;
    struct vigil_sender *s;
    int rc = vigil_sender_new(&cfg, &s);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], vigil_strerror(rc));
        return 1;
    }
    printf("sending as %s (generation %" PRIu64 ") to %s\n", argv[1], vigil_sender_generation(s),
           argv[2]);

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
