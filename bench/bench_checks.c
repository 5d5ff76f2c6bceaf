/*
 * bench_checks: how many health checks a second vigil's check engine runs
 * on one core, measured against a bare libcurl multi loop doing the same
 * work in the same run.
 *
 * The requirement: 10,000 checks at a 1 s interval run on one core. This
 * program starts two local servers, each in a child process of its own
 * (fork), so that their CPU time is not counted in the checker's:
 *
 *   - a TCP listener on 127.0.0.1 that accepts and closes;
 *   - a small HTTP/1.1 server on 127.0.0.1 (an epoll loop) that answers
 *     every request with 200 "ok" and Connection: close.
 *
 * Both bind to port 0 and the ports are read back before the fork. Then,
 * in this process, two phases run one after the other:
 *
 *   (A) vigil: N checks (half tcp, connecting only; half http, GET with
 *       the default status rule) at a 1 s interval and a 1 s timeout,
 *       through check_set_new on the real environment (epoll loop,
 *       stream exchanges, the libcurl client), exactly as the monitor
 *       runs monitor.checks.
 *   (B) the bare loop: the same N/2 HTTP requests per second on one
 *       libcurl multi handle (curl_multi_socket_action on an epoll of its
 *       own, easy handles reused from a pool, no proxy, the same timeout)
 *       and N/2 non-blocking TCP connects per second, planned evenly over
 *       each second. As in the engine, a check never has two runs at once:
 *       a start that finds the previous run in flight is skipped and
 *       counted. This is what the machine can do with libcurl and plain
 *       sockets: the reference.
 *
 * Each phase has a warm-up (default 3 s), then a measured window (default
 * 20 s) sampled every second. Over the window it reports:
 *
 *   - checks completed per second (A: the sum of check_info.runs);
 *   - this process's CPU time (getrusage RUSAGE_SELF, user + system) and
 *     its share of one core; on loopback the kernel's TCP work for both
 *     ends runs largely in the system time of whoever sends, so much of it
 *     lands here;
 *   - lateness of starts, actual minus planned: for (A) the engine's own
 *     count (check_set_lateness, whose clock is read once per loop turn),
 *     and for both phases the clock read at the call that starts the
 *     request (A: a wrapper around the environment's exchange and HTTP
 *     client; B: the loop itself). Quantiles are the upper bounds of
 *     power-of-two buckets, as check_lateness_quantile gives them. The
 *     engine's max cannot be taken over a window: it is since the start;
 *   - results that were not passing (should be 0);
 *   - the servers' CPU and what else ran on the machine (/proc/stat),
 *     flagged when other work took more than a tenth of the machine (all
 *     its CPUs), as bench_ingest does; an idle machine shows a few percent
 *     of a core here (kernel threads, softirqs run outside any process).
 *
 * Both phases use libcurl's defaults for connection reuse, and every HTTP
 * check goes to the one server: libcurl then looks through all of its
 * connections to that host, in use or not, for one to reuse before each
 * request. Past the machine's capacity, requests pile up and that walk
 * grows with them (docs/performance.md, Health checks); --fresh turns
 * reuse off in (B), to show what the walk costs.
 *
 * Nothing here asserts on speed: the program prints figures and the target
 * beside them, and exits 0 unless something could not run. --phase a or b
 * runs one phase alone (for a profiler).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include <vigil/sender.h>

#include "io/vio.h"
#include "vigil/checks.h"
#include "vigil/config.h"

#define NS_PER_S         VIGIL_NSEC_PER_SEC
#define CHECK_TIMEOUT_NS VIGIL_NSEC_PER_SEC
#define SAMPLES_MAX      601

struct opts {
    unsigned n;       /* checks (A) and requests plus connects per second (B) */
    unsigned seconds; /* measured window */
    unsigned warmup;
    bool a, b;  /* the phases to run */
    bool fresh; /* (B): CURLOPT_FRESH_CONNECT and CURLOPT_FORBID_REUSE */
};

static int64_t now_ns(void)
{
    return vigil_clock_mono();
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* ------------------------------------------------------------ servers */

static int listen_local(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A connection of the HTTP server: what arrived of the request. */
#define REQ_MAX 2048
struct hconn {
    size_t len;
    char buf[REQ_MAX];
};

static const char http_answer[] = "HTTP/1.1 200 OK\r\n"
                                  "Content-Type: text/plain\r\n"
                                  "Content-Length: 2\r\n"
                                  "Connection: close\r\n"
                                  "\r\n"
                                  "ok";

/* Reads what came; answers and closes once the head is complete. Returns false when closed. */
static bool http_serve_conn(int fd, struct hconn *c)
{
    for (;;) {
        ssize_t n = recv(fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            break;
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
        if (strstr(c->buf, "\r\n\r\n")) {
            (void)send(fd, http_answer, sizeof(http_answer) - 1, MSG_NOSIGNAL);
            break;
        }
        if (c->len == sizeof(c->buf) - 1)
            break;
    }
    close(fd);
    return false;
}

/* The child's loop: never returns. */
static void serve(int lfd, bool http)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0)
        _exit(1);
    /* Connections by descriptor (a request that did not come whole with the accept). */
    size_t cap = 65536;
    struct hconn **conns = calloc(cap, sizeof(*conns));
    if (!conns)
        _exit(1);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno != EINTR)
            _exit(1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    if (!http || (size_t)cfd >= cap) {
                        close(cfd);
                        continue;
                    }
                    struct hconn tmp = {0};
                    if (!http_serve_conn(cfd, &tmp))
                        continue;
                    struct hconn *c = malloc(sizeof(*c));
                    if (!c) {
                        close(cfd);
                        continue;
                    }
                    *c = tmp;
                    conns[cfd] = c;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) != 0) {
                        close(cfd);
                        free(c);
                        conns[cfd] = NULL;
                    }
                }
                continue;
            }
            struct hconn *c = conns[fd];
            if (c && !http_serve_conn(fd, c)) {
                free(c);
                conns[fd] = NULL;
            }
        }
    }
}

static pid_t start_server(bool http, uint16_t *port)
{
    int lfd = listen_local(port);
    if (lfd < 0) {
        fprintf(stderr, "bench_checks: listen on 127.0.0.1: %s\n", strerror(errno));
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "bench_checks: fork: %s\n", strerror(errno));
        close(lfd);
        return -1;
    }
    if (pid == 0) {
        serve(lfd, http);
        _exit(0);
    }
    close(lfd);
    return pid;
}

static void stop_server(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* ----------------------------------------------------------- measures */

static void hist_add(struct check_lateness *l, int64_t late)
{
    /* The engine's buckets (checks.c), so that the figures compare. */
    if (late < 0)
        late = 0;
    unsigned b = 0;
    while (b < 63 && ((int64_t)1 << b) <= late)
        b++;
    l->buckets[b]++;
    l->n++;
    if (late > l->max)
        l->max = late;
}

static struct check_lateness hist_sub(const struct check_lateness *b,
                                      const struct check_lateness *a)
{
    struct check_lateness d = {.n = b->n - a->n, .max = b->max};
    for (int i = 0; i < 64; i++)
        d.buckets[i] = b->buckets[i] - a->buckets[i];
    return d;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* CPU seconds of a process (the servers), from /proc/PID/stat; 0 if unreadable. */
static double cpu_of(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Busy CPU seconds of the whole machine, all CPUs (/proc/stat). */
static double machine_busy(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    unsigned long long v[8] = {0};
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                     &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (got < 4)
        return 0;
    /* user nice system idle iowait irq softirq steal: all but idle and iowait. */
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

struct sample {
    int64_t t;
    uint64_t runs, bad;
    double user, sys;          /* this process */
    double servers;            /* both servers */
    double busy;               /* the whole machine */
    struct check_lateness eng; /* (A) the engine's own count, cumulative */
    struct check_lateness at;  /* at the start call, cumulative; max: since the previous sample */
};

static pid_t server_pids[2];

static void sample_take(struct sample *s, uint64_t runs, uint64_t bad,
                        const struct check_lateness *eng, struct check_lateness *at)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s->t = now_ns();
    s->runs = runs;
    s->bad = bad;
    s->user = tv_s(ru.ru_utime);
    s->sys = tv_s(ru.ru_stime);
    s->servers = cpu_of(server_pids[0]) + cpu_of(server_pids[1]);
    s->busy = machine_busy();
    if (eng)
        s->eng = *eng;
    else
        memset(&s->eng, 0, sizeof(s->eng));
    s->at = *at;
    at->max = 0;
}

struct result {
    const char *name;
    double secs, rate, user, sys, share;
    uint64_t runs, bad;
    int64_t p50, p99, max; /* the row's lateness */
    bool max_since_start;
    bool eng;                       /* the engine's count shown too */
    int64_t e_p50, e_p99, e_max;    /* the engine's count */
    int64_t at_p50, at_p99, at_max; /* at the start call */
    double servers_share, other_share;
};

static void fmt_ns(char *buf, size_t cap, int64_t ns)
{
    if (ns < 1000)
        snprintf(buf, cap, "%" PRId64 " ns", ns);
    else if (ns < 1000000)
        snprintf(buf, cap, "%.0f us", (double)ns / 1e3);
    else if (ns < 100000000)
        snprintf(buf, cap, "%.1f ms", (double)ns / 1e6);
    else
        snprintf(buf, cap, "%.0f ms", (double)ns / 1e6);
}

static void fmt_int(char *buf, size_t cap, double v)
{
    char raw[32];
    snprintf(raw, sizeof(raw), "%.0f", v < 0 ? 0 : v);
    size_t len = strlen(raw), o = 0;
    for (size_t i = 0; i < len && o + 2 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
}

/* Other work, in percent of one core, worth a flag: more than a tenth of the machine. */
static bool other_busy(double share)
{
    return share > 10.0 * (double)sysconf(_SC_NPROCESSORS_ONLN);
}

/* Reads the window (samples 0..k) into r and prints the phase's lines. */
static void phase_report(const struct sample *s, unsigned k, bool eng, struct result *r)
{
    const struct sample *a = &s[0], *b = &s[k];
    double secs = (double)(b->t - a->t) / 1e9;
    r->secs = secs;
    r->runs = b->runs - a->runs;
    r->bad = b->bad - a->bad;
    r->rate = (double)r->runs / secs;
    r->user = b->user - a->user;
    r->sys = b->sys - a->sys;
    r->share = (r->user + r->sys) / secs * 100;
    r->servers_share = (b->servers - a->servers) / secs * 100;
    double other = (b->busy - a->busy) - (r->user + r->sys) - (b->servers - a->servers);
    r->other_share = other > 0 ? other / secs * 100 : 0;
    struct check_lateness at = hist_sub(&b->at, &a->at);
    at.max = 0;
    for (unsigned i = 1; i <= k; i++)
        if (s[i].at.max > at.max)
            at.max = s[i].at.max;
    /* A bucket's top can lie above the largest value in it. */
    r->at_max = at.max;
    r->at_p50 = min64(check_lateness_quantile(&at, 0.5), at.max);
    r->at_p99 = min64(check_lateness_quantile(&at, 0.99), at.max);
    r->eng = eng;
    if (eng) {
        struct check_lateness e = hist_sub(&b->eng, &a->eng);
        r->e_max = b->eng.max;
        r->e_p50 = min64(check_lateness_quantile(&e, 0.5), r->e_max);
        r->e_p99 = min64(check_lateness_quantile(&e, 0.99), r->e_max);
        r->p50 = r->e_p50;
        r->p99 = r->e_p99;
        r->max = r->e_max;
        r->max_since_start = true;
    } else {
        r->p50 = r->at_p50;
        r->p99 = r->at_p99;
        r->max = r->at_max;
        r->max_since_start = false;
    }

    char t1[32], t2[32], t3[32], t4[32];
    for (unsigned i = 0; i < k; i += 5) {
        unsigned j = i + 5 < k ? i + 5 : k;
        const struct sample *x = &s[i], *y = &s[j];
        double dt = (double)(y->t - x->t) / 1e9;
        struct check_lateness h = hist_sub(eng ? &y->eng : &y->at, eng ? &x->eng : &x->at);
        fmt_int(t1, sizeof(t1), (double)(y->runs - x->runs) / dt);
        fmt_ns(t2, sizeof(t2), check_lateness_quantile(&h, 0.99));
        printf("    s %2u-%2u: %8s checks/s  CPU %3.0f%%  lateness p99 %s  not passing %" PRIu64
               "\n",
               i, j, t1, (y->user + y->sys - x->user - x->sys) / dt * 100, t2, y->bad - x->bad);
    }
    fmt_int(t1, sizeof(t1), (double)r->runs);
    fmt_int(t2, sizeof(t2), r->rate);
    printf("  window %.2f s: %s checks completed, %s/s; not passing %" PRIu64 "\n", secs, t1, t2,
           r->bad);
    printf("  CPU %.2f s (user %.2f, system %.2f): %.1f%% of one core\n", r->user + r->sys, r->user,
           r->sys, r->share);
    if (eng) {
        fmt_ns(t1, sizeof(t1), r->e_p50);
        fmt_ns(t2, sizeof(t2), r->e_p99);
        fmt_ns(t3, sizeof(t3), r->e_max);
        printf("  lateness, the engine's count (check_set_lateness): p50 %s  p99 %s  max %s "
               "(max since the start)\n",
               t1, t2, t3);
    }
    fmt_ns(t1, sizeof(t1), r->at_p50);
    fmt_ns(t2, sizeof(t2), r->at_p99);
    fmt_ns(t4, sizeof(t4), r->at_max);
    printf("  lateness at the call that starts the request: p50 %s  p99 %s  max %s\n", t1, t2, t4);
    printf("  servers' CPU %.1f%% of one core; other work on the machine %.1f%% of one core%s\n",
           r->servers_share, r->other_share, other_busy(r->other_share) ? "  <- other load" : "");
}

/* ------------------------------------------------------ (A) the engine */

/* A check's strings, in one block: a pointer into it tells the check. */
struct cstrings {
    char node[16];
    char target[32];
    char url[64];
};

static struct {
    struct vio_env *env;
    struct check_set *set;
    struct cstrings *strs;
    size_t n;
    struct check_lateness at;
    struct vio_timer tick;
    int64_t t_win;
    unsigned k, seconds;
    struct sample *samples;
    int (*exchange_opts)(struct vio_env *env, const struct vio_exchange_opts *o,
                         vio_exchange_done done, void *arg, struct vio_exchange **out);
    int (*http_open)(struct vio_env *env, struct vio_http **out);
} A;

/*
 * The lateness of a start, the clock read at the call. The engine hands
 * the exchange and the HTTP client its configuration's own strings
 * (cfg->target, cfg->url), so the pointer tells the check; while a run is
 * in flight, check_info.next still holds its planned start (the engine
 * plans the next run when this one ends).
 */
static void a_started(const char *p, size_t off)
{
    uintptr_t base = (uintptr_t)A.strs + off, at = (uintptr_t)p;
    if (!A.set || at < base)
        return;
    size_t i = (at - base) / sizeof(struct cstrings);
    if (i >= check_set_count(A.set))
        return;
    hist_add(&A.at, now_ns() - check_set_at(A.set, i)->next);
}

static int a_exchange_opts(struct vio_env *env, const struct vio_exchange_opts *o,
                           vio_exchange_done done, void *arg, struct vio_exchange **out)
{
    a_started(o->target, offsetof(struct cstrings, target));
    return A.exchange_opts(env, o, done, arg, out);
}

struct a_http {
    struct vio_http base;
    struct vio_http *inner;
};

static int a_http_start(struct vio_http *c, const struct vio_http_call *call, vio_http_done done,
                        void *arg)
{
    a_started(call->url, offsetof(struct cstrings, url));
    return vio_http_start(((struct a_http *)c)->inner, call, done, arg);
}

static void a_http_close(struct vio_http *c)
{
    struct a_http *w = (struct a_http *)c;
    vio_http_close(w->inner);
    free(w);
}

static const struct vio_http_ops a_http_ops = {.start = a_http_start, .close = a_http_close};

static int a_http_open(struct vio_env *env, struct vio_http **out)
{
    struct a_http *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    int rc = A.http_open(env, &w->inner);
    if (rc != 0) {
        free(w);
        return rc;
    }
    w->base.ops = &a_http_ops;
    *out = &w->base;
    return 0;
}

static void a_sums(uint64_t *runs, uint64_t *bad)
{
    *runs = *bad = 0;
    for (size_t i = 0; i < check_set_count(A.set); i++) {
        const struct check_info *c = check_set_at(A.set, i);
        *runs += c->runs;
        *bad += c->warning + c->critical;
    }
}

/* The loop takes SIGTERM and SIGINT (signalfd): they end the run. */
static bool a_signalled;
static void a_signal(void *arg, int signo)
{
    (void)arg;
    (void)signo;
    a_signalled = true;
    vio_loop_stop(A.env->loop);
}

static void a_tick(void *arg, vigil_time_t now)
{
    (void)arg;
    (void)now;
    uint64_t runs, bad;
    struct check_lateness eng;
    a_sums(&runs, &bad);
    check_set_lateness(A.set, &eng);
    sample_take(&A.samples[A.k], runs, bad, &eng, &A.at);
    if (A.k == A.seconds) {
        vio_loop_stop(A.env->loop);
        return;
    }
    A.k++;
    (void)vio_timer_arm(A.env->loop, &A.tick, A.t_win + (int64_t)A.k * NS_PER_S);
}

static int phase_a(const struct opts *o, uint16_t tcp_port, uint16_t http_port, struct result *r)
{
    int rc = vio_env_real_new(&A.env, true);
    if (rc != 0) {
        fprintf(stderr, "bench_checks: vio_env_real_new: %s\n", strerror(-rc));
        return -1;
    }
    A.n = o->n;
    A.seconds = o->seconds;
    A.strs = calloc(o->n, sizeof(*A.strs));
    struct vcfg_check *cfgs = calloc(o->n, sizeof(*cfgs));
    A.samples = calloc(o->seconds + 1, sizeof(*A.samples));
    if (!A.strs || !cfgs || !A.samples) {
        fprintf(stderr, "bench_checks: out of memory\n");
        return -1;
    }
    static char name_tcp[] = "tcp", name_http[] = "http";
    for (unsigned i = 0; i < o->n; i++) {
        struct cstrings *s = &A.strs[i];
        struct vcfg_check *c = &cfgs[i];
        vcfg_check_default(c);
        snprintf(s->node, sizeof(s->node), "node-%05u", i);
        c->node = s->node;
        c->interval = NS_PER_S;
        c->timeout = CHECK_TIMEOUT_NS;
        if (i % 2 == 0) {
            c->kind = VCFG_CHECK_HTTP;
            c->name = name_http;
            snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u/health", http_port);
            c->url = s->url;
        } else {
            c->kind = VCFG_CHECK_TCP;
            c->name = name_tcp;
            snprintf(s->target, sizeof(s->target), "127.0.0.1:%u", tcp_port);
            c->target = s->target;
        }
    }
    /* The clock read where each run starts its request. */
    A.exchange_opts = A.env->exchange_opts;
    A.http_open = A.env->http_open;
    A.env->exchange_opts = a_exchange_opts;
    A.env->http_open = a_http_open;

    char err[256];
    int64_t t0 = now_ns();
    rc = check_set_new(A.env, cfgs, o->n, NULL, NULL, &A.set, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "bench_checks: check_set_new: %s\n", err);
        return -1;
    }
    A.t_win = t0 + (int64_t)o->warmup * NS_PER_S;
    A.k = 0;
    vio_timer_init(&A.tick, a_tick, NULL);
    (void)vio_timer_arm(A.env->loop, &A.tick, A.t_win);
    printf("(A) vigil's check engine: %u checks (%u http, %u tcp), interval 1 s, timeout 1 s; "
           "%u s warm-up, %u s measured\n",
           o->n, (o->n + 1) / 2, o->n / 2, o->warmup, o->seconds);
    fflush(stdout);
    vio_loop_on_signal(A.env->loop, a_signal, NULL);
    rc = vio_loop_run(A.env->loop);
    if (rc != 0 || a_signalled) {
        if (rc != 0)
            fprintf(stderr, "bench_checks: vio_loop_run: %s\n", strerror(-rc));
        else
            fprintf(stderr, "bench_checks: stopped by a signal\n");
        return -1;
    }
    phase_report(A.samples, A.seconds, true, r);
    r->name = "(A) vigil check engine";
    if (r->bad > 0) {
        for (size_t i = 0; i < check_set_count(A.set); i++) {
            const struct check_info *c = check_set_at(A.set, i);
            if (c->last.status != CHECK_PASSING && c->last.status != CHECK_UNKNOWN) {
                printf("  e.g. %s/%s: %s: %s\n", c->node, c->name,
                       check_status_name(c->last.status), c->last.detail);
                break;
            }
        }
    }
    vio_timer_disarm(A.env->loop, &A.tick);
    check_set_free(A.set);
    A.set = NULL;
    vio_env_real_free(A.env);
    free(cfgs);
    free(A.strs);
    free(A.samples);
    return 0;
}

/* --------------------------------------------------- (B) the bare loop */

enum { K_TCP, K_CURL };

/* What an epoll event points at: a TCP connect in flight, or a socket of libcurl's. */
struct bconn {
    int kind;
    int fd;
    uint32_t check; /* K_TCP: the check it is a run of */
    int64_t started;
    struct bconn *prev, *next;
};

static struct {
    int ep;
    CURLM *multi;
    int64_t curl_at;    /* libcurl's deadline; -1: none */
    CURL **all, **pool; /* every easy handle made; those free */
    size_t n_all, n_pool, cap;
    struct bconn *head, *tail; /* TCP connects in flight, oldest first */
    struct bconn *free_conns;
    uint64_t runs, bad;
    uint64_t skipped; /* starts not made: the check's previous run was still in flight */
    bool *busy;       /* by check: a run in flight */
    struct check_lateness at;
    char url[64];
    struct sockaddr_in tcp_addr;
    bool fresh;
} B;

static size_t b_discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

static int b_sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp)
{
    (void)e;
    (void)userp;
    struct bconn *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            epoll_ctl(B.ep, EPOLL_CTL_DEL, fd, NULL);
            curl_multi_assign(B.multi, fd, NULL);
            free(s);
        }
        return 0;
    }
    int op = EPOLL_CTL_MOD;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->kind = K_CURL;
        s->fd = fd;
        curl_multi_assign(B.multi, fd, s);
        op = EPOLL_CTL_ADD;
    }
    struct epoll_event ev = {.data.ptr = s};
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev.events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(B.ep, op, fd, &ev) != 0) {
        if (op == EPOLL_CTL_ADD && errno == EEXIST)
            return epoll_ctl(B.ep, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -1;
        return -1;
    }
    return 0;
}

static int b_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    (void)userp;
    B.curl_at = timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * VIGIL_NSEC_PER_MSEC;
    return 0;
}

static void b_curl_done(void)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(B.multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        long code = 0;
        char *priv = NULL;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        B.busy[(uintptr_t)priv] = false;
        B.runs++;
        if (msg->data.result != CURLE_OK || code != 200)
            B.bad++;
        curl_multi_remove_handle(B.multi, e);
        B.pool[B.n_pool++] = e;
    }
}

static CURL *b_easy(void)
{
    if (B.n_pool > 0)
        return B.pool[--B.n_pool];
    if (B.n_all == B.cap) {
        size_t cap = B.cap ? B.cap * 2 : 256;
        CURL **a = realloc(B.all, cap * sizeof(*a));
        if (a)
            B.all = a;
        CURL **p = a ? realloc(B.pool, cap * sizeof(*p)) : NULL;
        if (!p)
            return NULL;
        B.pool = p;
        B.cap = cap;
    }
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, B.url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, b_discard);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(CHECK_TIMEOUT_NS / VIGIL_NSEC_PER_MSEC));
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    if (B.fresh) {
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    B.all[B.n_all++] = e;
    return e;
}

static void b_conn_unlink(struct bconn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        B.head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        B.tail = c->prev;
    c->next = B.free_conns;
    B.free_conns = c;
}

static void b_tcp_end(struct bconn *c, bool ok)
{
    close(c->fd);
    B.busy[c->check] = false;
    B.runs++;
    if (!ok)
        B.bad++;
    b_conn_unlink(c);
}

/* Starts check i's run planned at planned, unless its previous run is still in flight. */
static void b_start(uint32_t i, int64_t planned)
{
    if (B.busy[i]) {
        B.skipped++;
        return;
    }
    int64_t t = now_ns();
    hist_add(&B.at, t - planned);
    if (i % 2 == 0) {
        CURL *e = b_easy();
        if (e)
            curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)(uintptr_t)i);
        if (!e || curl_multi_add_handle(B.multi, e) != CURLM_OK) {
            B.runs++;
            B.bad++;
            if (e)
                B.pool[B.n_pool++] = e;
            return;
        }
        B.busy[i] = true;
        return;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        B.runs++;
        B.bad++;
        return;
    }
    if (connect(fd, (struct sockaddr *)&B.tcp_addr, sizeof(B.tcp_addr)) == 0) {
        close(fd);
        B.runs++;
        return;
    }
    if (errno != EINPROGRESS) {
        close(fd);
        B.runs++;
        B.bad++;
        return;
    }
    struct bconn *c = B.free_conns;
    if (c)
        B.free_conns = c->next;
    else
        c = malloc(sizeof(*c));
    if (!c) {
        close(fd);
        B.runs++;
        B.bad++;
        return;
    }
    *c = (struct bconn){.kind = K_TCP, .fd = fd, .check = i, .started = t, .prev = B.tail};
    B.busy[i] = true;
    if (B.tail)
        B.tail->next = c;
    else
        B.head = c;
    B.tail = c;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(B.ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        b_tcp_end(c, false);
}

static int phase_b(const struct opts *o, uint16_t tcp_port, uint16_t http_port, struct result *r)
{
    memset(&B, 0, sizeof(B));
    B.curl_at = -1;
    B.fresh = o->fresh;
    B.ep = epoll_create1(EPOLL_CLOEXEC);
    B.multi = curl_multi_init();
    B.busy = calloc(o->n, sizeof(*B.busy));
    struct sample *samples = calloc(o->seconds + 1, sizeof(*samples));
    if (B.ep < 0 || !B.multi || !B.busy || !samples) {
        fprintf(stderr, "bench_checks: (B) setup failed\n");
        return -1;
    }
    snprintf(B.url, sizeof(B.url), "http://127.0.0.1:%u/health", http_port);
    B.tcp_addr.sin_family = AF_INET;
    B.tcp_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    B.tcp_addr.sin_port = htons(tcp_port);
    curl_multi_setopt(B.multi, CURLMOPT_SOCKETFUNCTION, b_sock_cb);
    curl_multi_setopt(B.multi, CURLMOPT_TIMERFUNCTION, b_timer_cb);

    printf("(B) bare loop: %u checks (%u http on one libcurl multi handle, socket API and epoll; "
           "%u non-blocking tcp connects), starts spread evenly over each second, one run of a "
           "check at a time; timeout 1 s;%s %u s warm-up, %u s measured\n",
           o->n, (o->n + 1) / 2, o->n / 2, o->fresh ? " no connection reuse (--fresh);" : "",
           o->warmup, o->seconds);
    fflush(stdout);

    int64_t t0 = now_ns();
    int64_t t_win = t0 + (int64_t)o->warmup * NS_PER_S;
    uint64_t j = 0;
    unsigned k = 0;
    struct epoll_event evs[256];
    for (;;) {
        int64_t now = now_ns();
        if (now >= t_win + (int64_t)k * NS_PER_S) {
            sample_take(&samples[k], B.runs, B.bad, NULL, &B.at);
            if (k == o->seconds)
                break;
            k++;
        }
        /*
         * The starts due at the turn's time, each planned at t0 + j / n
         * seconds (b_start reads the clock for its lateness). Those that
         * come due meanwhile wait for the next turn, so that a loop behind
         * its schedule still reads its sockets, as the engine's does.
         */
        int64_t planned;
        while ((planned = t0 + (int64_t)(j * (uint64_t)NS_PER_S / o->n)) <= now) {
            b_start((uint32_t)(j % o->n), planned);
            j++;
        }
        now = now_ns();
        while (B.head && B.head->started + CHECK_TIMEOUT_NS <= now)
            b_tcp_end(B.head, false);
        int running;
        if (B.curl_at >= 0 && B.curl_at <= now) {
            B.curl_at = -1;
            curl_multi_socket_action(B.multi, CURL_SOCKET_TIMEOUT, 0, &running);
            b_curl_done();
        }
        int64_t until = min64(planned, t_win + (int64_t)k * NS_PER_S);
        if (B.curl_at >= 0)
            until = min64(until, B.curl_at);
        if (B.head)
            until = min64(until, B.head->started + CHECK_TIMEOUT_NS);
        int64_t dt = until - now_ns();
        if (dt < 0)
            dt = 0;
        struct timespec ts = {.tv_sec = dt / NS_PER_S, .tv_nsec = dt % NS_PER_S};
        int n = epoll_pwait2(B.ep, evs, 256, &ts, NULL);
        if (n < 0 && errno == ENOSYS)
            n = epoll_wait(B.ep, evs, 256, (int)((dt + 999999) / 1000000));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "bench_checks: epoll: %s\n", strerror(errno));
            return -1;
        }
        for (int i = 0; i < n; i++) {
            struct bconn *c = evs[i].data.ptr;
            if (c->kind == K_TCP) {
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                bool ok = getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0;
                b_tcp_end(c, ok);
                continue;
            }
            int flags = 0;
            if (evs[i].events & EPOLLIN)
                flags |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                flags |= CURL_CSELECT_ERR;
            curl_multi_socket_action(B.multi, c->fd, flags, &running);
        }
        if (n > 0)
            b_curl_done();
    }
    phase_report(samples, o->seconds, false, r);
    r->name = "(B) bare libcurl + connect";
    if (B.skipped)
        printf("  starts skipped since the start (the check's previous run still in flight): "
               "%" PRIu64 "\n",
               B.skipped);

    while (B.head)
        b_tcp_end(B.head, false);
    while (B.free_conns) {
        struct bconn *c = B.free_conns;
        B.free_conns = c->next;
        free(c);
    }
    /* Requests in flight leave the multi handle first (removing an idle one does nothing). */
    for (size_t i = 0; i < B.n_all; i++) {
        curl_multi_remove_handle(B.multi, B.all[i]);
        curl_easy_cleanup(B.all[i]);
    }
    free(B.all);
    free(B.pool);
    curl_multi_cleanup(B.multi);
    close(B.ep);
    free(B.busy);
    free(samples);
    return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_checks [--n N] [--seconds S] [--warmup W] [--phase ab] [--fresh]\n"
               "  --n N        checks, half http and half tcp, at a 1 s interval (default 10000)\n"
               "  --seconds S  measured window of each phase (default 20)\n"
               "  --warmup W   seconds before the window (default 3)\n"
               "  --phase P    a (vigil), b (the bare loop) or ab (default)\n"
               "  --fresh      (b): CURLOPT_FRESH_CONNECT and CURLOPT_FORBID_REUSE, so that\n"
               "               libcurl never looks for a connection to reuse\n");
}

static bool parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out, const char *what)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_checks: %s must be %u..%u\n", what, lo, hi);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* what was printed survives a kill */
    struct opts o = {.n = 10000, .seconds = 20, .warmup = 3, .a = true, .b = true};
    static const struct option longs[] = {{"n", required_argument, NULL, 'n'},
                                          {"seconds", required_argument, NULL, 's'},
                                          {"warmup", required_argument, NULL, 'w'},
                                          {"phase", required_argument, NULL, 'p'},
                                          {"fresh", no_argument, NULL, 'f'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "n:s:w:p:fh", longs, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!parse_uint(optarg, 2, VCFG_MAX_CHECKS, &o.n, "--n"))
                return 2;
            break;
        case 's':
            if (!parse_uint(optarg, 1, SAMPLES_MAX - 1, &o.seconds, "--seconds"))
                return 2;
            break;
        case 'w':
            if (!parse_uint(optarg, 0, 60, &o.warmup, "--warmup"))
                return 2;
            break;
        case 'p':
            o.a = strchr(optarg, 'a') != NULL;
            o.b = strchr(optarg, 'b') != NULL;
            if (!o.a && !o.b) {
                usage(stderr);
                return 2;
            }
            break;
        case 'f':
            o.fresh = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }

    double load[3] = {0};
    if (getloadavg(load, 3) < 0)
        load[0] = load[1] = load[2] = -1;
    printf("machine: %ld CPUs online; load average %.2f %.2f %.2f; %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2], curl_version());

    uint16_t tcp_port = 0, http_port = 0;
    server_pids[0] = start_server(false, &tcp_port);
    server_pids[1] = server_pids[0] > 0 ? start_server(true, &http_port) : -1;
    if (server_pids[0] <= 0 || server_pids[1] <= 0) {
        stop_server(server_pids[0]);
        return 1;
    }
    printf("servers (child processes): tcp accept-and-close on 127.0.0.1:%u (pid %ld), "
           "http 200 \"ok\", Connection: close, on 127.0.0.1:%u (pid %ld)\n\n",
           tcp_port, (long)server_pids[0], http_port, (long)server_pids[1]);
    fflush(stdout);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "bench_checks: curl_global_init failed\n");
        stop_server(server_pids[0]);
        stop_server(server_pids[1]);
        return 1;
    }
    struct result ra = {0}, rb = {0};
    int rc = o.a ? phase_a(&o, tcp_port, http_port, &ra) : 0;
    if (rc == 0 && o.b) {
        if (o.a)
            printf("\n");
        rc = phase_b(&o, tcp_port, http_port, &rb);
    }
    stop_server(server_pids[0]);
    stop_server(server_pids[1]);
    curl_global_cleanup();
    if (rc != 0)
        return 1;

    char t[6][32];
    printf("\n%-28s %10s %7s %9s %9s %9s %9s %11s\n", "", "checks/s", "CPU s", "CPU share",
           "late p50", "late p99", "late max", "not passing");
    const struct result *rows[2] = {o.a ? &ra : NULL, o.b ? &rb : NULL};
    for (int i = 0; i < 2; i++) {
        const struct result *r = rows[i];
        if (!r)
            continue;
        fmt_int(t[0], sizeof(t[0]), r->rate);
        fmt_ns(t[1], sizeof(t[1]), r->p50);
        fmt_ns(t[2], sizeof(t[2]), r->p99);
        fmt_ns(t[3], sizeof(t[3]), r->max);
        printf("%-28s %10s %7.2f %8.1f%% %9s %9s %9s %11" PRIu64 "\n", r->name, t[0],
               r->user + r->sys, r->share, t[1], t[2], t[3], r->bad);
    }
    if (o.a) {
        fmt_ns(t[1], sizeof(t[1]), ra.at_p50);
        fmt_ns(t[2], sizeof(t[2]), ra.at_p99);
        fmt_ns(t[3], sizeof(t[3]), ra.at_max);
        printf("%-28s %10s %7s %9s %9s %9s %9s\n", "(A) at the request's start", "", "", "", t[1],
               t[2], t[3]);
    }
    printf("lateness: (A) the engine's count (check_set_lateness), max since the start; (B) and\n"
           "\"at the request's start\": the clock at the call that starts each request;\n"
           "p50 and p99 are tops of power-of-two buckets\n");
    fmt_int(t[0], sizeof(t[0]), o.n);
    printf("\ntarget: %s checks/s at a 1 s interval on one core: CPU share < 100%%\n", t[0]);
    for (int i = 0; i < 2; i++) {
        const struct result *r = rows[i];
        if (!r)
            continue;
        bool met = r->rate >= 0.99 * o.n && r->share < 100 && r->bad == 0;
        printf("  %.3s %.1f%% of one core at %.0f checks/s, %" PRIu64 " not passing: %s\n", r->name,
               r->share, r->rate, r->bad, met ? "met" : "not met");
    }
    if (o.a && o.b && rb.share > 0)
        printf("  CPU per check, (A)/(B): %.2f\n", (ra.share / ra.rate) / (rb.share / rb.rate));
    double other = 0;
    for (int i = 0; i < 2; i++)
        if (rows[i] && rows[i]->other_share > other)
            other = rows[i]->other_share;
    if (other_busy(other))
        printf("note: other work took up to %.0f%% of a core during the run; run again on a quiet "
               "machine\n",
               other);
    return 0;
}
