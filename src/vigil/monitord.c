/*
 * vigil monitor: the program around the monitor core.
 *
 * One thread, one epoll loop. The loop moves bytes and time between the OS
 * and the pure core, and events from the core to the log, the history, the
 * hooks and the API:
 *
 *   now = clock; read every ready datagram (recvmmsg, in batches) into the core;
 *   if now >= the core's next deadline: let it decide;
 *   drain its events: history, log line, hooks;
 *   reap hooks, serve the API;
 *   sleep until the earliest of the core's, the hooks' and the API's deadlines.
 *
 * The HTTP API runs in this same loop (libmicrohttpd without threads of its
 * own), so no lock guards the core. Hooks run as child processes and are
 * never waited for.
 *
 * For now the API server lives on a vio loop (src/io) nested in this one:
 * its epoll descriptor is one more tag here, and each turn runs it
 * without waiting. That loop reads TERM and INT too (whichever of the two
 * signal descriptors reads first takes them), and they stop the monitor
 * either way.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "api.h"
#include "cmds.h"
#include "config.h"
#include "evlog.h"
#include "hooks.h"
#include "io/netaddr.h"
#include "io/real.h"
#include "logq.h"

/* Datagrams taken per recvmmsg call: amortises the system call. */
#define BATCH 64
/* Batches read per socket before timers get a turn, so a flood cannot starve decisions. */
#define MAX_BATCHES 64
/* The log's buffer: some 20,000 event lines before any is dropped. */
#define LOG_BUFFER_BYTES (4 << 20)
/* Requested receive buffer: a few seconds of heartbeats from a large cluster. */
#define RCVBUF_BYTES (8 << 20)

struct monitord {
    struct vcfg cfg;
    struct vigil_monitor *mon;
    struct evlog *events;
    struct hook_runner *hooks;
    struct vio_loop *loop;   /* the API server's loop, nested in this one */
    struct vio_httpd *httpd; /* the API server, or NULL */
    struct api_ctx api_ctx;
    int socks[VCFG_MAX_LISTEN];
    size_t n_socks;
    int epfd, sigfd;
    FILE *log;
    struct logq *lq;        /* the log's writer thread, once running */
    uint64_t json_failures; /* events that could not be rendered as JSON */
    bool log_stuck;         /* the log writer could not finish: exit without stdio */
    bool stop;
    uint8_t bufs[BATCH][VIGIL_WIRE_MAX + 1];
};

/* Writes one line to the log: through the writer thread once it runs. */
static void log_out(struct monitord *d, const char *line)
{
    if (d->lq) {
        logq_write(d->lq, line);
    } else {
        fprintf(d->log, "%s\n", line);
        fflush(d->log);
    }
}

static void log_line(struct monitord *d, const char *line)
{
    char ts[40];
    vigil_format_wall(vigil_clock_wall_us(), ts, sizeof(ts));
    if (d->cfg.monitor.log_format == VCFG_LOG_JSON) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "time", ts, "type", "log", "message", line);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            log_out(d, s);
        free(s);
        json_decref(o);
    } else {
        char buf[2048];
        snprintf(buf, sizeof(buf), "%s %s", ts, line);
        log_out(d, buf);
    }
}

static void hook_log(void *arg, const char *line)
{
    log_line(arg, line);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vigil monitor [options]\n"
               "  -c, --config FILE      read settings from FILE (see docs/configuration.md)\n"
               "  -l, --listen ADDR      UDP address for heartbeats (repeatable; default "
               "0.0.0.0:7946)\n"
               "  -a, --api ADDR         HTTP API address (default 127.0.0.1:7947; 'off')\n"
               "  -k, --key-file FILE    cluster key: authenticate every datagram\n"
               "  -n, --node ID          declare a node (repeatable)\n"
               "  -d, --detector KIND    phi or fixed\n"
               "  -i, --interval DUR     the agents' heartbeat interval (default 1s)\n"
               "      --hook PROGRAM     run PROGRAM on every event (repeatable)\n"
               "      --no-auto-register accept heartbeats only from declared nodes\n"
               "      --log-format F     text or json\n"
               "      --log-file FILE    append the log to FILE (default standard output)\n");
}

static char *xstrdup(const char *s)
{
    char *r = strdup(s);
    if (!r) {
        fprintf(stderr, "vigil monitor: out of memory\n");
        exit(1);
    }
    return r;
}

/* Parses flags on top of the file. Returns 0, or an exit status. */
static int parse_args(struct monitord *d, int argc, char **argv)
{
    enum { OPT_HOOK = 256, OPT_NOAUTO, OPT_LOGFMT, OPT_LOGFILE };
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"listen", required_argument, 0, 'l'},
                                         {"api", required_argument, 0, 'a'},
                                         {"key-file", required_argument, 0, 'k'},
                                         {"node", required_argument, 0, 'n'},
                                         {"detector", required_argument, 0, 'd'},
                                         {"interval", required_argument, 0, 'i'},
                                         {"hook", required_argument, 0, OPT_HOOK},
                                         {"no-auto-register", no_argument, 0, OPT_NOAUTO},
                                         {"log-format", required_argument, 0, OPT_LOGFMT},
                                         {"log-file", required_argument, 0, OPT_LOGFILE},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    char err[512];
    struct vcfg *c = &d->cfg;
    struct vcfg_monitor *mc = &c->monitor;

    /* The file first, so that flags override it wherever they stand. */
    optind = 1;
    for (int o; (o = getopt_long(argc, argv, "c:l:a:k:n:d:i:h", opts, NULL)) != -1;) {
        if (o == 'h') {
            usage(stdout);
            return -1;
        }
        if (o == '?') {
            usage(stderr);
            return 2;
        }
        if (o == 'c' && vcfg_load(c, optarg, err, sizeof(err))) {
            fprintf(stderr, "vigil monitor: %s\n", err);
            return 2;
        }
    }
    bool listen_set = false;
    optind = 1;
    for (int o; (o = getopt_long(argc, argv, "c:l:a:k:n:d:i:h", opts, NULL)) != -1;) {
        switch (o) {
        case 'l':
            if (!listen_set) {
                for (size_t i = 0; i < mc->n_listen; i++)
                    free(mc->listen[i]);
                mc->n_listen = 0;
                listen_set = true;
            }
            if (mc->n_listen == VCFG_MAX_LISTEN) {
                fprintf(stderr, "vigil monitor: at most %d listen addresses\n", VCFG_MAX_LISTEN);
                return 2;
            }
            mc->listen[mc->n_listen++] = xstrdup(optarg);
            break;
        case 'a':
            free(mc->api);
            mc->api = xstrdup(optarg);
            break;
        case 'k':
            if (vcfg_read_key(optarg, mc->core.key, err, sizeof(err))) {
                fprintf(stderr, "vigil monitor: %s\n", err);
                return 2;
            }
            mc->core.has_key = true;
            break;
        case 'n':
            if (mc->n_nodes == VCFG_MAX_NODES) {
                fprintf(stderr, "vigil monitor: too many declared nodes\n");
                return 2;
            }
            mc->nodes[mc->n_nodes++] = xstrdup(optarg);
            break;
        case 'd':
        case 'i': {
            vigil_time_t iv = mc->interval;
            enum vigil_detector_kind k = mc->core.detector.kind;
            if (o == 'i' && vcfg_parse_duration(optarg, &iv)) {
                fprintf(stderr, "vigil monitor: bad --interval '%s'\n", optarg);
                return 2;
            }
            if (o == 'd') {
                if (!strcmp(optarg, "phi"))
                    k = VIGIL_DETECTOR_PHI;
                else if (!strcmp(optarg, "fixed"))
                    k = VIGIL_DETECTOR_FIXED;
                else {
                    fprintf(stderr, "vigil monitor: --detector must be phi or fixed\n");
                    return 2;
                }
            }
            mc->interval = iv;
            vigil_detector_config_default(&mc->core.detector, k, iv);
            break;
        }
        case OPT_HOOK: {
            if (mc->n_hooks == VCFG_MAX_HOOKS) {
                fprintf(stderr, "vigil monitor: too many hooks\n");
                return 2;
            }
            struct vcfg_hook *h = &mc->hooks[mc->n_hooks++];
            memset(h, 0, sizeof(*h));
            h->argv[0] = xstrdup(optarg);
            h->timeout = 10 * VIGIL_NSEC_PER_SEC;
            /* The same as a hook from the file: two retries, 1 s then 2 s later. */
            h->retries = 2;
            h->retry_delay = VIGIL_NSEC_PER_SEC;
            break;
        }
        case OPT_NOAUTO:
            mc->core.auto_register = false;
            break;
        case OPT_LOGFMT:
            if (!strcmp(optarg, "json"))
                mc->log_format = VCFG_LOG_JSON;
            else if (!strcmp(optarg, "text"))
                mc->log_format = VCFG_LOG_TEXT;
            else {
                fprintf(stderr, "vigil monitor: --log-format must be text or json\n");
                return 2;
            }
            break;
        case OPT_LOGFILE:
            free(mc->log_file);
            mc->log_file = xstrdup(optarg);
            break;
        default:
            break;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vigil monitor: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (vcfg_check(c, "monitor", err, sizeof(err))) {
        fprintf(stderr, "vigil monitor: %s\n", err);
        return 2;
    }
    return 0;
}

static int open_socket(struct monitord *d, const char *spec)
{
    struct vigil_addr a;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (vigil_addr_parse(spec, VIGIL_DEFAULT_PORT, &a) || vigil__addr_to_sockaddr(&a, &ss, &sl)) {
        fprintf(stderr, "vigil monitor: bad listen address '%s'\n", spec);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "vigil monitor: socket for %s: %s\n", spec, strerror(errno));
        return -1;
    }
    int one = 1, size = RCVBUF_BYTES;
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    /* FORCE passes rmem_max when privileged; otherwise the plain request is capped. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    if (bind(fd, (struct sockaddr *)&ss, sl)) {
        fprintf(stderr, "vigil monitor: cannot listen on %s: %s\n", spec, strerror(errno));
        close(fd);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)d->n_socks};
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev)) {
        close(fd);
        return -1;
    }
    d->socks[d->n_socks++] = fd;
    return 0;
}

/* epoll data tags besides socket indices. */
#define TAG_SIGNAL 1000
#define TAG_LOOP   1001

static void drain_events(struct monitord *d, vigil_time_t now)
{
    struct evrec r;
    int64_t wall = vigil_clock_wall_us();
    while (vigil_monitor_poll_event(d->mon, &r.ev)) {
        r.wall_us = wall - (now - r.ev.time) / 1000;
        evlog_push(d->events, &r);
        if (d->cfg.monitor.log_format == VCFG_LOG_JSON) {
            json_t *o = evrec_to_json(&r);
            char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
            if (s)
                log_out(d, s);
            else
                d->json_failures++;
            free(s);
            json_decref(o);
        } else {
            char line[1024];
            evrec_format_text(&r, line, sizeof(line));
            log_out(d, line);
        }
        if (d->hooks)
            hook_runner_submit(d->hooks, &r, now);
    }
    if (d->lq)
        d->api_ctx.dropped_log = d->json_failures + logq_dropped(d->lq);
}

static void read_socket(struct monitord *d, int fd)
{
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_storage from[BATCH];
    for (int b = 0; b < MAX_BATCHES; b++) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = d->bufs[i];
            /* One byte more than the protocol allows, so oversize is seen, not cut. */
            iov[i].iov_len = VIGIL_WIRE_MAX + 1;
            memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &from[i];
            msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                d->api_ctx.recv_errors++;
            return;
        }
        vigil_time_t now = vigil_clock_mono();
        for (int i = 0; i < n; i++) {
            struct vigil_addr a;
            size_t len = msgs[i].msg_len;
            if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
                len = VIGIL_WIRE_MAX + 1;
            vigil__addr_from_sockaddr((struct sockaddr *)&from[i], &a);
            vigil_monitor_on_datagram(d->mon, now, d->bufs[i], len, &a);
        }
        if (n < BATCH)
            return;
    }
}

/* A signal the API server's loop read (see the top of this file). */
static void on_loop_signal(void *arg, int signo)
{
    struct monitord *d = arg;
    if (signo == SIGTERM || signo == SIGINT)
        d->stop = true;
}

static vigil_time_t min_time(vigil_time_t a, vigil_time_t b)
{
    return a < b ? a : b;
}

static int run(struct monitord *d)
{
    struct epoll_event evs[16];
    while (!d->stop) {
        vigil_time_t now = vigil_clock_mono();
        if (now >= vigil_monitor_next_deadline(d->mon))
            vigil_monitor_on_expiry(d->mon, now);
        drain_events(d, now);
        if (d->hooks)
            hook_runner_poll(d->hooks, now);

        vigil_time_t wake = vigil_monitor_next_deadline(d->mon);
        if (d->hooks)
            wake = min_time(wake, hook_runner_next_deadline(d->hooks));
        wake = min_time(wake, vio_loop_next(d->loop, now));
        int timeout = -1;
        if (wake != VIGIL_TIME_NEVER) {
            /* The clock again: the work above took time, and the sleep must not add it. */
            now = vigil_clock_mono();
            vigil_time_t dt = wake > now ? wake - now : 0;
            /* Round up: waking a little early would only spin. */
            vigil_time_t ms = (dt + VIGIL_NSEC_PER_MSEC - 1) / VIGIL_NSEC_PER_MSEC;
            timeout = ms > 60000 ? 60000 : (int)ms;
        }
        int n = epoll_wait(d->epfd, evs, 16, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_line(d, "epoll_wait failed");
            return 1;
        }
        /* Heartbeats first: an API client must never delay them. */
        for (int i = 0; i < n; i++) {
            uint32_t tag = evs[i].data.u32;
            if (tag < d->n_socks)
                read_socket(d, d->socks[tag]);
        }
        for (int i = 0; i < n; i++) {
            uint32_t tag = evs[i].data.u32;
            if (tag == TAG_SIGNAL) {
                struct signalfd_siginfo si;
                while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
                    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                        d->stop = true;
                    /* SIGCHLD: the hook runner reaps at the top of the loop. */
                }
            }
        }
        /* Once per turn, without waiting: ready connections and the server's own timeouts. */
        d->loop->ops->wait(d->loop, 0);
        vio_loop_dispatch(d->loop, vio_now(d->loop));
    }
    return 0;
}

static void cleanup(struct monitord *d)
{
    if (d->hooks)
        hook_runner_free(d->hooks);
    vio_httpd_close(d->httpd);
    vio_loop_free(d->loop);
    for (size_t i = 0; i < d->n_socks; i++)
        close(d->socks[i]);
    if (d->sigfd >= 0)
        close(d->sigfd);
    if (d->epfd >= 0)
        close(d->epfd);
    evlog_free(d->events);
    vigil_monitor_free(d->mon);
    /* A writer stuck on a full pipe is left to the exit, with its stream. */
    d->log_stuck = logq_free(d->lq, 2000) != 0;
    d->lq = NULL;
    if (d->log && d->log != stdout && !d->log_stuck)
        fclose(d->log);
    vcfg_free(&d->cfg);
}

int cmd_monitor(int argc, char **argv)
{
    static struct monitord d_storage;
    struct monitord *d = &d_storage;
    memset(d, 0, sizeof(*d));
    d->epfd = d->sigfd = -1;
    d->log = stdout;
    vcfg_init(&d->cfg);
    int rc = parse_args(d, argc, argv);
    if (rc) {
        vcfg_free(&d->cfg);
        return rc < 0 ? 0 : rc;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "vigil monitor: libsodium failed to initialise\n");
        vcfg_free(&d->cfg);
        return 1;
    }
    struct vcfg_monitor *mc = &d->cfg.monitor;
    if (mc->log_file) {
        d->log = fopen(mc->log_file, "ae"); /* close-on-exec: not for hooks */
        if (!d->log) {
            fprintf(stderr, "vigil monitor: cannot open log file %s: %s\n", mc->log_file,
                    strerror(errno));
            d->log = stdout;
            cleanup(d);
            return 1;
        }
    }

    /* Signals arrive through the loop; a hook that closes its stdin early must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    /* After the mask: the writer thread must not take the signals the loop reads. */
    d->lq = logq_new(d->log, LOG_BUFFER_BYTES);
    if (!d->lq) {
        fprintf(stderr, "vigil monitor: cannot start the log writer\n");
        cleanup(d);
        return 1;
    }

    vigil_time_t now = vigil_clock_mono();
    randombytes_buf(mc->core.hash_seed, sizeof(mc->core.hash_seed));
    mc->core.interval = mc->interval;
    rc = vigil_monitor_new(&mc->core, now, &d->mon);
    d->events = evlog_new(mc->event_history);
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    int lrc = rc || !d->events || d->epfd < 0 || d->sigfd < 0 ? 0 : vio_loop_epoll_new(&d->loop);
    if (rc || !d->events || d->epfd < 0 || d->sigfd < 0 || lrc) {
        fprintf(stderr, "vigil monitor: cannot start: %s\n",
                rc ? vigil_strerror(rc) : strerror(lrc ? -lrc : errno));
        cleanup(d);
        return 1;
    }
    vio_loop_on_signal(d->loop, on_loop_signal, d);
    struct epoll_event sev = {.events = EPOLLIN, .data.u32 = TAG_SIGNAL};
    epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &sev);
    struct epoll_event lev = {.events = EPOLLIN, .data.u32 = TAG_LOOP};
    epoll_ctl(d->epfd, EPOLL_CTL_ADD, vio_loop_epoll_fd(d->loop), &lev);
    for (size_t i = 0; i < mc->n_nodes; i++) {
        int drc = vigil_monitor_declare(d->mon, mc->nodes[i], now);
        if (drc && drc != -VIGIL_EEXIST) {
            fprintf(stderr, "vigil monitor: cannot declare node %s: %s\n", mc->nodes[i],
                    vigil_strerror(drc));
            cleanup(d);
            return 1;
        }
    }
    for (size_t i = 0; i < mc->n_listen; i++)
        if (open_socket(d, mc->listen[i])) {
            cleanup(d);
            return 1;
        }
    if (mc->n_hooks && hook_runner_new(mc->hooks, mc->n_hooks, hook_log, d, &d->hooks)) {
        fprintf(stderr, "vigil monitor: cannot set up hooks\n");
        cleanup(d);
        return 1;
    }
    d->api_ctx.mon = d->mon;
    d->api_ctx.events = d->events;
    d->api_ctx.hooks = d->hooks;
    d->api_ctx.loop = d->loop;
    d->api_ctx.started_mono = now;
    d->api_ctx.started_wall_us = vigil_clock_wall_us();
    if (mc->api && *mc->api && strcmp(mc->api, "off")) {
        char err[256];
        if (vio_httpd_mhd_open(d->loop, mc->api, api_handle_cb, &d->api_ctx, &d->httpd, err,
                               sizeof(err))) {
            fprintf(stderr, "vigil monitor: %s\n", err);
            cleanup(d);
            return 1;
        }
    }

    char line[1024];
    const struct vigil_detector_config *dc = &mc->core.detector;
    int off = snprintf(line, sizeof(line), "vigil monitor %s: listening on", VIGIL_VERSION_STRING);
    for (size_t i = 0; i < mc->n_listen && off < (int)sizeof(line); i++)
        off += snprintf(line + off, sizeof(line) - (size_t)off, " %s", mc->listen[i]);
    if (off < (int)sizeof(line))
        snprintf(line + off, sizeof(line) - (size_t)off,
                 ", api %s, detector %s (suspect %.2f, dead %.2f), %zu declared nodes, "
                 "auto-register %s, authentication %s, %zu hooks",
                 d->httpd ? mc->api : "off", dc->kind == VIGIL_DETECTOR_PHI ? "phi" : "fixed",
                 dc->suspect_threshold, dc->dead_threshold, mc->n_nodes,
                 mc->core.auto_register ? "on" : "off", mc->core.has_key ? "on" : "off",
                 mc->n_hooks);
    log_line(d, line);

    rc = run(d);
    log_line(d, "vigil monitor: stopping");
    drain_events(d, vigil_clock_mono());
    cleanup(d);
    if (d->log_stuck) {
        /*
         * The writer still holds the log stream in a write nobody reads:
         * exit() would wait on that stream's lock to flush it, and standard
         * error may be the same pipe. Leave now, saying nothing more.
         */
        _exit(rc);
    }
    return rc;
}
