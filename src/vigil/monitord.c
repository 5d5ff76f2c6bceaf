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
 * For now two loops live side by side: this file's own epoll, and the
 * shared event loop of src/io (struct vio_loop, an epoll loop) which owns
 * the signals (through its signalfd), the hook runner's timers and the
 * reaping of hooks. Its descriptor sits in our epoll; when it is readable
 * the vio loop takes what it has, and every turn dispatches its ready
 * sources and due timers. The log is a struct vio_log (a writer thread).
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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

/* Datagrams taken per recvmmsg call: amortises the system call. */
#define BATCH 64
/* Batches read per socket before timers get a turn, so a flood cannot starve decisions. */
#define MAX_BATCHES 64
/* Requested receive buffer: a few seconds of heartbeats from a large cluster. */
#define RCVBUF_BYTES (8 << 20)

struct monitord {
    struct vcfg cfg;
    struct vigil_monitor *mon;
    struct evlog *events;
    struct hook_runner *hooks;
    struct api *api;
    struct api_ctx api_ctx;
    int socks[VCFG_MAX_LISTEN];
    size_t n_socks;
    int epfd;
    struct vio_loop *vl;     /* signals, the hooks' timers and children */
    struct vio_procs *procs; /* the hooks' children */
    struct vio_log *lg;      /* the log's writer thread, once running */
    uint64_t json_failures;  /* events that could not be rendered as JSON */
    bool log_stuck;          /* the log writer could not finish: exit without stdio */
    bool stop;
    uint8_t bufs[BATCH][VIGIL_WIRE_MAX + 1];
};

/* Writes one line to the log: through the writer thread once it runs. */
static void log_out(struct monitord *d, const char *line)
{
    if (d->lg) {
        d->lg->ops->write(d->lg, line);
    } else {
        fprintf(stdout, "%s\n", line);
        fflush(stdout);
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
#define TAG_VIO 1000
#define TAG_API 1001

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
            hook_runner_submit(d->hooks, &r);
    }
    if (d->lg)
        d->api_ctx.dropped_log = d->json_failures + d->lg->ops->dropped(d->lg);
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

        vigil_time_t wake = vigil_monitor_next_deadline(d->mon);
        wake = min_time(wake, vio_loop_next(d->vl, now));
        if (d->api)
            wake = min_time(wake, api_next_deadline(d->api, now));
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
        for (int i = 0; i < n; i++)
            if (evs[i].data.u32 == TAG_VIO)
                d->vl->ops->wait(d->vl, 0); /* takes what is there, without waiting */
        /* Signals (on_signal below), hook exits (SIGCHLD), hook timeouts and retries. */
        vio_loop_dispatch(d->vl, vio_now(d->vl));
        /* Once per turn: for ready connections and for MHD's own timeouts. */
        if (d->api)
            api_run(d->api);
    }
    return 0;
}

/* TERM and INT stop the monitor; HUP is taken and ignored for now. */
static void on_signal(void *arg, int signo)
{
    struct monitord *d = arg;
    if (signo == SIGTERM || signo == SIGINT)
        d->stop = true;
}

static void cleanup(struct monitord *d)
{
    if (d->hooks)
        hook_runner_free(d->hooks);
    d->hooks = NULL;
    vio_procs_real_free(d->procs);
    d->procs = NULL;
    if (d->api)
        api_stop(d->api);
    for (size_t i = 0; i < d->n_socks; i++)
        close(d->socks[i]);
    if (d->epfd >= 0)
        close(d->epfd);
    evlog_free(d->events);
    vigil_monitor_free(d->mon);
    /* A writer stuck on a full pipe is left to the exit, with its stream. */
    if (d->lg)
        d->log_stuck = d->lg->ops->close(d->lg, 2000) != 0;
    d->lg = NULL;
    vio_loop_free(d->vl);
    d->vl = NULL;
    vcfg_free(&d->cfg);
}

int cmd_monitor(int argc, char **argv)
{
    static struct monitord d_storage;
    struct monitord *d = &d_storage;
    memset(d, 0, sizeof(*d));
    d->epfd = -1;
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

    /* Signals arrive through the loop; a hook that closes its stdin early must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    /* The vio loop blocks TERM, INT, HUP and CHLD and takes them through its signalfd. */
    rc = vio_loop_epoll_new(&d->vl);
    if (rc) {
        fprintf(stderr, "vigil monitor: cannot start the event loop: %s\n", strerror(-rc));
        cleanup(d);
        return 1;
    }
    vio_loop_on_signal(d->vl, on_signal, d);
    /* After the mask: the writer thread must not take the signals the loop reads. */
    char lerr[512];
    rc = vio_log_real_open(mc->log_file, &d->lg, lerr, sizeof(lerr));
    if (rc) {
        fprintf(stderr, "vigil monitor: %s\n", lerr);
        cleanup(d);
        return 1;
    }

    vigil_time_t now = vigil_clock_mono();
    randombytes_buf(mc->core.hash_seed, sizeof(mc->core.hash_seed));
    mc->core.interval = mc->interval;
    rc = vigil_monitor_new(&mc->core, now, &d->mon);
    d->events = evlog_new(mc->event_history);
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (rc || !d->events || d->epfd < 0) {
        fprintf(stderr, "vigil monitor: cannot start: %s\n",
                rc ? vigil_strerror(rc) : strerror(errno));
        cleanup(d);
        return 1;
    }
    struct epoll_event sev = {.events = EPOLLIN, .data.u32 = TAG_VIO};
    epoll_ctl(d->epfd, EPOLL_CTL_ADD, vio_loop_epoll_fd(d->vl), &sev);
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
    if (mc->n_hooks &&
        (vio_procs_real_new(d->vl, &d->procs) ||
         hook_runner_new(d->vl, d->procs, mc->hooks, mc->n_hooks, hook_log, d, &d->hooks))) {
        fprintf(stderr, "vigil monitor: cannot set up hooks\n");
        cleanup(d);
        return 1;
    }
    d->api_ctx.mon = d->mon;
    d->api_ctx.events = d->events;
    d->api_ctx.hooks = d->hooks;
    d->api_ctx.started_mono = now;
    d->api_ctx.started_wall_us = vigil_clock_wall_us();
    if (mc->api && *mc->api && strcmp(mc->api, "off")) {
        char err[256];
        if (api_start(mc->api, &d->api_ctx, &d->api, err, sizeof(err))) {
            fprintf(stderr, "vigil monitor: %s\n", err);
            cleanup(d);
            return 1;
        }
        struct epoll_event aev = {.events = EPOLLIN, .data.u32 = TAG_API};
        epoll_ctl(d->epfd, EPOLL_CTL_ADD, api_fd(d->api), &aev);
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
                 d->api ? mc->api : "off", dc->kind == VIGIL_DETECTOR_PHI ? "phi" : "fixed",
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
