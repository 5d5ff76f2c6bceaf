/*
 * Health checks on the loop (checks.h).
 *
 * Scheduling. Each check has one timer. Its first run is planned at a
 * point of the interval given by a hash of its node and name, so that a
 * thousand checks with one interval start spread over it rather than
 * together. After a run the next start is planned one period after the
 * planned start of the run that ended (a fixed rate, which never drifts);
 * a run that outlasts that is followed at the next slot of the grid after
 * its end: runs of one check never overlap, and a checker that fell behind
 * (overloaded, stopped) skips the slots it missed rather than running
 * them in a burst.
 * The period is, as HAProxy chooses it: fastinter while the status is
 * changing (a result in a row that differs from it), downinter while it
 * is critical, the interval otherwise.
 *
 * The rise and fall rule (check_apply). The first result sets the status.
 * After that, results worse than the status (passing < warning <
 * critical) count towards fall, better ones towards rise, and one equal
 * to the status clears both counts; fall results worse in a row (or rise
 * better ones) make the newest of them the status.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <sodium.h>

#include "checks.h"
#include "core/idtable.h"

/* A command that ignored SIGTERM this long after its timeout gets SIGKILL. */
#define CHECK_KILL_AFTER (2 * VIGIL_NSEC_PER_SEC)
/* Most bytes of an answer read (tcp, http): the pattern must be in them. */
#define CHECK_ANSWER_MAX (64 * 1024)

struct check {
    struct check_info info;
    struct check_set *set;
    struct vio_timer timer;  /* the next run, or the run's timeout (exec) */
    vigil_time_t planned;    /* the planned start of the run in flight, or of the next */
    vigil_time_t started;    /* the actual start of the run in flight */
    struct vio_exchange *x;  /* tcp in flight */
    bool http_busy;          /* http in flight */
    struct vio_child *child; /* exec in flight */
    int term_sent;           /* exec: 0, 1 TERM sent, 2 KILL sent */
    struct vigil_addr to;    /* ping: the agent (family 0: the target did not resolve) */
    uint64_t token;          /* ping: the token in flight (0: none) */
};

struct check_set {
    struct vio_env *env;
    struct vio_http *http;
    struct check *checks;
    size_t n;
    check_change_fn fn;
    void *arg;
    struct check_lateness late;
    bool freeing;
    struct vio_transport *udp[2]; /* ping: IPv4, IPv6 (opened when first needed) */
    check_key_fn key_of;
    void *key_arg;
    uint64_t bad_pongs;
    size_t *by_node; /* the checks' indexes, ordered by their (interned) node */
};

/* ---- names ---- */

static const char *const status_names[] = {"unknown", "passing", "warning", "critical"};

const char *check_status_name(enum check_status s)
{
    return (unsigned)s < 4 ? status_names[s] : "unknown";
}

int check_status_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, status_names[i]))
            return i;
    int st = vigil_state_parse(s);
    return st >= 0 && st <= VIGIL_STATE_DEAD ? st : -1;
}

/* ---- interning: names that outlive a reload ---- */

static struct {
    char **slot;
    size_t cap, n;
} interned;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The interned copy of s, or NULL if s was never interned. */
static const char *intern_find(const char *s)
{
    if (interned.cap == 0)
        return NULL;
    size_t j = fnv1a(s) & (interned.cap - 1);
    while (interned.slot[j]) {
        if (!strcmp(interned.slot[j], s))
            return interned.slot[j];
        j = (j + 1) & (interned.cap - 1);
    }
    return NULL;
}

const char *check_intern(const char *s)
{
    if (interned.n * 2 >= interned.cap) {
        size_t cap = interned.cap ? interned.cap * 2 : 256;
        char **slot = calloc(cap, sizeof(*slot));
        if (!slot)
            return NULL;
        for (size_t i = 0; i < interned.cap; i++) {
            if (!interned.slot[i])
                continue;
            size_t j = fnv1a(interned.slot[i]) & (cap - 1);
            while (slot[j])
                j = (j + 1) & (cap - 1);
            slot[j] = interned.slot[i];
        }
        free(interned.slot);
        interned.slot = slot;
        interned.cap = cap;
    }
    size_t j = fnv1a(s) & (interned.cap - 1);
    while (interned.slot[j]) {
        if (!strcmp(interned.slot[j], s))
            return interned.slot[j];
        j = (j + 1) & (interned.cap - 1);
    }
    char *c = strdup(s);
    if (!c)
        return NULL;
    interned.slot[j] = c;
    interned.n++;
    return c;
}

/* ---- the rule ---- */

bool check_apply(enum check_status *status, uint32_t *good, uint32_t *bad, uint32_t rise,
                 uint32_t fall, enum check_status result)
{
    if (*status == CHECK_UNKNOWN) {
        *status = result;
        *good = *bad = 0;
        return result != CHECK_UNKNOWN;
    }
    if (result == *status) {
        *good = *bad = 0;
        return false;
    }
    if (result > *status) {
        *good = 0;
        if (++*bad >= fall) {
            *status = result;
            *bad = 0;
            return true;
        }
        return false;
    }
    *bad = 0;
    if (++*good >= rise) {
        *status = result;
        *good = 0;
        return true;
    }
    return false;
}

/* ---- lateness ---- */

static void late_add(struct check_lateness *l, vigil_time_t late)
{
    if (late < 0)
        late = 0;
    unsigned b = 0;
    while (b < 63 && ((vigil_time_t)1 << b) <= late)
        b++;
    l->buckets[b]++;
    l->n++;
    if (late > l->max)
        l->max = late;
}

void check_set_lateness(const struct check_set *s, struct check_lateness *out)
{
    *out = s->late;
}

vigil_time_t check_lateness_quantile(const struct check_lateness *l, double q)
{
    if (l->n == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)l->n);
    if (want >= l->n)
        want = l->n - 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < 64; b++) {
        seen += l->buckets[b];
        if (seen > want)
            return b == 0 ? 0 : ((vigil_time_t)1 << b) - 1;
    }
    return l->max;
}

/* ---- runs ---- */

static vigil_time_t period(const struct check *c)
{
    const struct vcfg_check *cfg = c->info.cfg;
    if ((c->info.good || c->info.bad) && cfg->fastinter > 0)
        return cfg->fastinter;
    if (c->info.status == CHECK_CRITICAL && cfg->downinter > 0)
        return cfg->downinter;
    return cfg->interval;
}

static void run_start(void *arg, vigil_time_t now);

static void plan_next(struct check *c, vigil_time_t now)
{
    vigil_time_t p = period(c);
    vigil_time_t at = c->planned + p;
    if (at < now) {
        /*
         * The run outlasted its period: the next starts at the next slot
         * of its grid, never overlapping and never in a burst of the slots
         * missed (an overloaded checker catches up rather than falling
         * further behind).
         */
        at = c->planned + ((now - c->planned) / p + 1) * p;
    }
    c->planned = at;
    c->info.next = at;
    vio_timer_init(&c->timer, run_start, c);
    (void)vio_timer_arm(c->set->env->loop, &c->timer, at);
}

/* One run ended with r. */
static void run_end(struct check *c, struct check_result *r)
{
    struct check_set *s = c->set;
    vigil_time_t now = vio_now(s->env->loop);
    c->info.running = false;
    r->latency = now - c->started;
    c->info.last = *r;
    c->info.last_at = now;
    c->info.runs++;
    if (r->status == CHECK_PASSING)
        c->info.passing++;
    else if (r->status == CHECK_WARNING)
        c->info.warning++;
    else
        c->info.critical++;
    enum check_status old = c->info.status;
    if (check_apply(&c->info.status, &c->info.good, &c->info.bad, c->info.cfg->rise,
                    c->info.cfg->fall, r->status)) {
        c->info.since = now;
        c->info.changes++;
        if (s->fn)
            s->fn(s->arg, &c->info, old, r, now);
    }
    plan_next(c, now);
}

static void set_detail(struct check_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_detail(struct check_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
    va_end(ap);
}

/* An excerpt of an answer for the evidence: printable bytes, the rest as '.'. */
static void excerpt(struct check_result *r, const char *p, size_t len)
{
    size_t n = len < sizeof(r->detail) - 1 ? len : sizeof(r->detail) - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        r->detail[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : (ch == '\n' ? ' ' : '.');
    }
    r->detail[n] = '\0';
    while (n > 0 && r->detail[n - 1] == ' ')
        r->detail[--n] = '\0';
}

/* -- tcp -- */

static void tcp_done(void *arg, int error, const char *answer, size_t len)
{
    struct check *c = arg;
    c->x = NULL;
    const struct vcfg_check *cfg = c->info.cfg;
    struct check_result r = {.status = CHECK_PASSING};
    if (error) {
        r.status = CHECK_CRITICAL;
        set_detail(&r, "%s: %s", cfg->target, error == -ETIMEDOUT ? "timed out" : strerror(-error));
    } else if (cfg->expect && !memmem(answer, len, cfg->expect, strlen(cfg->expect))) {
        r.status = CHECK_CRITICAL;
        struct check_result tmp;
        excerpt(&tmp, answer, len);
        set_detail(&r, "reply without \"%.24s\": \"%.64s\"", cfg->expect, tmp.detail);
    } else if (cfg->expect) {
        excerpt(&r, answer, len);
    } else {
        set_detail(&r, "connected to %s", cfg->target);
    }
    run_end(c, &r);
}

static int tcp_start(struct check *c)
{
    struct vio_env *env = c->set->env;
    const struct vcfg_check *cfg = c->info.cfg;
    if (!env->exchange_opts)
        return -ENOTSUP;
    struct vio_exchange_opts o = {
        .target = cfg->target,
        .req = cfg->send,
        .len = cfg->send ? strlen(cfg->send) : 0,
        .max = CHECK_ANSWER_MAX,
        .timeout = cfg->timeout,
        .connect_only = !cfg->send && !cfg->expect,
        .until = cfg->expect,
    };
    return env->exchange_opts(env, &o, tcp_done, c, &c->x);
}

/* -- http -- */

static bool status_ok(const struct vcfg_check *cfg, long st)
{
    if (cfg->n_status == 0)
        return st >= 200 && st < 400;
    for (size_t i = 0; i < cfg->n_status; i++)
        if (cfg->status[i] == st)
            return true;
    return false;
}

static void http_done(void *arg, const struct vio_http_result *res)
{
    struct check *c = arg;
    if (!c->http_busy)
        return;
    c->http_busy = false;
    const struct vcfg_check *cfg = c->info.cfg;
    struct check_result r = {.status = CHECK_PASSING};
    if (res->error) {
        r.status = CHECK_CRITICAL;
        set_detail(&r, "%s", res->why ? res->why : strerror(-res->error));
    } else {
        r.code = res->status;
        if (!status_ok(cfg, res->status)) {
            /* Consul's reading: 429 (too many requests) is a warning, not a failure. */
            r.status = res->status == 429 && cfg->n_status == 0 ? CHECK_WARNING : CHECK_CRITICAL;
            struct check_result tmp;
            excerpt(&tmp, res->body ? res->body : "", res->body ? res->body_len : 0);
            set_detail(&r, "HTTP %ld: %.96s", res->status, tmp.detail);
        } else if (cfg->body &&
                   !(res->body && memmem(res->body, res->body_len, cfg->body, strlen(cfg->body)))) {
            r.status = CHECK_CRITICAL;
            struct check_result tmp;
            excerpt(&tmp, res->body ? res->body : "", res->body ? res->body_len : 0);
            set_detail(&r, "HTTP %ld, body without \"%.24s\": %.64s", res->status, cfg->body,
                       tmp.detail);
        } else {
            struct check_result tmp;
            excerpt(&tmp, res->body ? res->body : "", res->body ? res->body_len : 0);
            set_detail(&r, "HTTP %ld: %.100s", res->status, tmp.detail);
        }
    }
    run_end(c, &r);
}

static int http_start(struct check *c)
{
    struct check_set *s = c->set;
    const struct vcfg_check *cfg = c->info.cfg;
    if (!s->http)
        return -ENOTSUP;
    struct vio_http_call call = {
        .method = cfg->method,
        .url = cfg->url,
        .headers = cfg->n_headers ? (const char *const *)cfg->headers : NULL,
        .timeout = cfg->timeout,
        .body_max = CHECK_ANSWER_MAX,
        .cainfo = cfg->ca_file,
        .insecure = !cfg->tls_verify,
        .fresh = true,
    };
    c->http_busy = true;
    int rc = vio_http_start(s->http, &call, http_done, c);
    if (rc != 0)
        c->http_busy = false;
    return rc;
}

/* -- exec -- */

static void exec_exited(void *arg, struct vio_child *ch, int status)
{
    struct check *c = arg;
    struct vio_procs *procs = c->set->env->procs;
    struct check_result r = {.status = CHECK_CRITICAL};
    size_t len = 0;
    const char *out = procs->ops->output ? procs->ops->output(ch, &len) : "";
    if (c->term_sent) {
        set_detail(&r, "timed out after %" PRId64 " ms%s", c->info.cfg->timeout / 1000000,
                   c->term_sent > 1 ? " (killed)" : "");
        r.code = status >= 0 && WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
    } else if (status < 0) {
        set_detail(&r, "exit status lost");
        r.code = -1;
    } else if (WIFSIGNALED(status)) {
        r.code = 128 + WTERMSIG(status);
        set_detail(&r, "killed by signal %d", WTERMSIG(status));
    } else {
        int code = WEXITSTATUS(status);
        r.code = code;
        r.status = code == 0 ? CHECK_PASSING : code == 1 ? CHECK_WARNING : CHECK_CRITICAL;
        excerpt(&r, out, len);
        if (!r.detail[0])
            set_detail(&r, "exit %d", code);
    }
    procs->ops->release(procs, ch);
    c->child = NULL;
    vio_timer_disarm(c->set->env->loop, &c->timer);
    run_end(c, &r);
}

static void exec_timeout(void *arg, vigil_time_t now)
{
    struct check *c = arg;
    struct vio_procs *procs = c->set->env->procs;
    if (!c->child)
        return;
    if (c->term_sent == 0) {
        c->term_sent = 1;
        procs->ops->signal(procs, c->child, SIGTERM);
        vio_timer_init(&c->timer, exec_timeout, c);
        (void)vio_timer_arm(c->set->env->loop, &c->timer, now + CHECK_KILL_AFTER);
    } else if (c->term_sent == 1) {
        c->term_sent = 2;
        procs->ops->signal(procs, c->child, SIGKILL);
    }
}

static int exec_start(struct check *c)
{
    struct vio_env *env = c->set->env;
    const struct vcfg_check *cfg = c->info.cfg;
    if (!env->procs)
        return -ENOTSUP;
    static char *const envp[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
    struct vio_spawn req = {
        .argv = (char *const *)cfg->argv,
        .envp = envp,
        .output_max = VCFG_CHECK_OUTPUT_MAX,
        .on_exit = exec_exited,
        .arg = c,
    };
    c->term_sent = 0;
    int rc = env->procs->ops->spawn(env->procs, &req, &c->child);
    if (rc != 0)
        return rc;
    vio_timer_init(&c->timer, exec_timeout, c);
    (void)vio_timer_arm(env->loop, &c->timer, vio_now(env->loop) + cfg->timeout);
    return 0;
}

/* -- ping -- */

static void ping_end(struct check *c, struct check_result *r)
{
    c->token = 0;
    vio_timer_disarm(c->set->env->loop, &c->timer);
    run_end(c, r);
}

static void ping_timeout(void *arg, vigil_time_t now)
{
    (void)now;
    struct check *c = arg;
    struct check_result r = {.status = CHECK_CRITICAL};
    set_detail(&r, "no answer from %s within %" PRId64 " ms", c->info.cfg->target,
               c->info.cfg->timeout / VIGIL_NSEC_PER_MSEC);
    ping_end(c, &r);
}

/* An answer: a pong for a ping in flight, from that node, with its tag. */
static void take_pong(struct check_set *s, const struct vio_dgram *dg)
{
    struct vigil_echo e;
    if (vigil_wire_decode_echo(dg->buf, dg->len, NULL, &e) != 0 || e.type != VIGIL_MSG_PONG) {
        s->bad_pongs++;
        return;
    }
    uint64_t idx = e.token & 0xffffffffu;
    struct check *c = idx < s->n ? &s->checks[idx] : NULL;
    if (!c || c->info.cfg->kind != VCFG_CHECK_PING || c->token == 0 || c->token != e.token ||
        strcmp(e.id, c->info.node) != 0) {
        s->bad_pongs++;
        return;
    }
    uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN];
    uint8_t kid = 0;
    bool keyed = s->key_of && s->key_of(s->key_arg, c->info.node, mac, &kid) == 0;
    int rc = vigil_wire_decode_echo(dg->buf, dg->len, keyed ? mac : NULL, &e);
    sodium_memzero(mac, sizeof mac);
    if (rc != 0) {
        s->bad_pongs++;
        return;
    }
    struct check_result r = {.status = CHECK_PASSING};
    char from[64];
    vigil_addr_format(&dg->from, from, sizeof from);
    vigil_time_t rtt = dg->arrival - c->started;
    set_detail(&r, "answer from %s in %" PRId64 " us", from, rtt > 0 ? rtt / 1000 : 0);
    ping_end(c, &r);
}

/* Reads the answers waiting on both sockets (a bounded number a turn). */
static void on_pongs(void *arg, vigil_time_t now)
{
    struct check_set *s = arg;
    (void)now;
    uint8_t bufs[16][VIGIL_WIRE_ECHO_MAX + 1];
    for (int k = 0; k < 2; k++) {
        for (int round = 0; s->udp[k] && round < 64; round++) {
            struct vio_dgram dg[16];
            for (int i = 0; i < 16; i++) {
                dg[i].buf = bufs[i];
                dg[i].cap = VIGIL_WIRE_ECHO_MAX;
            }
            int n = vio_recv(s->udp[k], dg, 16);
            for (int i = 0; i < n; i++) {
                if (dg[i].len > VIGIL_WIRE_ECHO_MAX)
                    s->bad_pongs++;
                else
                    take_pong(s, &dg[i]);
            }
            if (n < 16)
                break;
            if (round == 63) /* more waiting: the rest on the next turn */
                vio_source_ready(s->env->loop, &s->udp[k]->readable);
        }
    }
}

static int ping_start(struct check *c)
{
    struct check_set *s = c->set;
    struct vio_env *env = s->env;
    if (!env->net || c->to.family == 0)
        return -ENOTSUP;
    int k = c->to.family == AF_INET6 ? 1 : 0;
    if (!s->udp[k]) {
        /* Bound to any address and an ephemeral port: a bound socket is watched for answers. */
        struct vigil_addr any;
        memset(&any, 0, sizeof any);
        any.family = (uint16_t)(k ? AF_INET6 : AF_INET);
        int rc = env->net->ops->open(env->net, env->loop, &any, any.family, &s->udp[k]);
        if (rc != 0)
            return rc;
        vio_source_init(&s->udp[k]->readable, on_pongs, s);
    }
    uint32_t rnd = 0;
    while (rnd == 0) {
        if (env->random)
            env->random(env, &rnd, sizeof rnd);
        else
            rnd = (uint32_t)randombytes_random();
    }
    struct vigil_echo e = {.type = VIGIL_MSG_PING,
                           .token = (uint64_t)rnd << 32 | (uint64_t)(c - s->checks)};
    snprintf(e.id, sizeof e.id, "%s", c->info.node);
    uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN];
    bool keyed = s->key_of && s->key_of(s->key_arg, c->info.node, mac, &e.key_id) == 0;
    uint8_t buf[VIGIL_WIRE_ECHO_MAX];
    int n = vigil_wire_encode_echo(&e, keyed ? mac : NULL, buf, sizeof buf);
    sodium_memzero(mac, sizeof mac);
    if (n < 0)
        return -EINVAL;
    int rc = vio_send(s->udp[k], &c->to, buf, (size_t)n);
    if (rc != 0)
        return rc;
    c->token = e.token;
    vio_timer_init(&c->timer, ping_timeout, c);
    (void)vio_timer_arm(env->loop, &c->timer, vio_now(env->loop) + c->info.cfg->timeout);
    return 0;
}

static void run_start(void *arg, vigil_time_t now)
{
    struct check *c = arg;
    /* The time now, not the turn's: a busy turn would hide how late the run starts. */
    now = vio_now(c->set->env->loop);
    late_add(&c->set->late, now - c->planned);
    c->started = now;
    c->info.running = true;
    int rc;
    switch (c->info.cfg->kind) {
    case VCFG_CHECK_TCP:
        rc = tcp_start(c);
        break;
    case VCFG_CHECK_HTTP:
        rc = http_start(c);
        break;
    case VCFG_CHECK_PING:
        rc = ping_start(c);
        break;
    default:
        rc = exec_start(c);
        break;
    }
    if (rc != 0) {
        struct check_result r = {.status = CHECK_CRITICAL};
        set_detail(&r, "could not start: %s",
                   rc == -ENOTSUP ? "not available here" : strerror(-rc));
        run_end(c, &r);
    }
}

/* ---- the set ---- */

/* Ordering the checks by node: by the interned pointer (one per name), then index. */
static const struct check_set *sort_set;

static int by_node_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    uintptr_t px = (uintptr_t)sort_set->checks[x].info.node;
    uintptr_t py = (uintptr_t)sort_set->checks[y].info.node;
    if (px != py)
        return px < py ? -1 : 1;
    return x < y ? -1 : x > y;
}

size_t check_set_of_node(const struct check_set *s, const char *node, const size_t **idx)
{
    *idx = NULL;
    const char *in = s && s->by_node ? intern_find(node) : NULL;
    if (!in)
        return 0;
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)s->checks[s->by_node[mid]].info.node < (uintptr_t)in)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < s->n && s->checks[s->by_node[end]].info.node == in)
        end++;
    *idx = s->by_node + lo;
    return end - lo;
}

int check_set_new(struct vio_env *env, const struct vcfg_check *cfgs, size_t n, check_change_fn fn,
                  void *arg, struct check_set **out, char *err, size_t cap)
{
    *out = NULL;
    struct check_set *s = calloc(1, sizeof(*s));
    if (!s || (n > 0 && !(s->checks = calloc(n, sizeof(*s->checks))))) {
        free(s);
        snprintf(err, cap, "out of memory");
        return -ENOMEM;
    }
    s->env = env;
    s->fn = fn;
    s->arg = arg;
    bool want_http = false;
    for (size_t i = 0; i < n; i++)
        want_http |= cfgs[i].kind == VCFG_CHECK_HTTP;
    if (want_http && env->http_open && env->http_open(env, &s->http) != 0) {
        s->http = NULL; /* its checks report "not available here" */
    }
    vigil_time_t now = vio_now(env->loop);
    for (size_t i = 0; i < n; i++) {
        struct check *c = &s->checks[i];
        c->set = s;
        c->info.cfg = &cfgs[i];
        c->info.node = cfgs[i].node ? check_intern(cfgs[i].node) : "";
        c->info.name = check_intern(cfgs[i].name);
        if (!c->info.node || !c->info.name) {
            s->n = i;
            check_set_free(s);
            snprintf(err, cap, "out of memory");
            return -ENOMEM;
        }
        c->info.since = -1;
        if (cfgs[i].kind == VCFG_CHECK_PING && env->net) {
            const char *why = NULL;
            if (env->net->ops->resolve(env->net, cfgs[i].target, 0, &c->to, &why) < 0)
                c->to.family = 0; /* each run says it could not start */
        }
        /* The first run at a point of the interval its node and name choose. */
        char key[VIGIL_ID_MAX + VCFG_CHECK_NAME_MAX + 2];
        snprintf(key, sizeof key, "%s/%s", c->info.node, c->info.name);
        vigil_time_t iv = cfgs[i].interval > 0 ? cfgs[i].interval : VCFG_CHECK_INTERVAL_DEFAULT;
        c->planned = now + (vigil_time_t)(fnv1a(key) % (uint64_t)iv);
        c->info.next = c->planned;
        vio_timer_init(&c->timer, run_start, c);
        if (vio_timer_arm(env->loop, &c->timer, c->planned) != 0) {
            s->n = i + 1;
            check_set_free(s);
            snprintf(err, cap, "out of memory");
            return -ENOMEM;
        }
    }
    s->n = n;
    if (n > 0) {
        s->by_node = malloc(n * sizeof(*s->by_node));
        if (!s->by_node) {
            check_set_free(s);
            snprintf(err, cap, "out of memory");
            return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
            s->by_node[i] = i;
        sort_set = s;
        qsort(s->by_node, n, sizeof(*s->by_node), by_node_cmp);
    }
    *out = s;
    return 0;
}

void check_set_free(struct check_set *s)
{
    if (!s)
        return;
    s->freeing = true;
    for (size_t i = 0; i < s->n; i++) {
        struct check *c = &s->checks[i];
        vio_timer_disarm(s->env->loop, &c->timer);
        if (c->x && s->env->exchange_cancel)
            s->env->exchange_cancel(s->env, c->x);
        c->x = NULL;
        if (c->child) {
            /* Killed, and reaped when it ends: no zombie left by a reload. */
            struct vio_procs *pr = s->env->procs;
            pr->ops->signal(pr, c->child, SIGKILL);
            if (pr->ops->disown)
                pr->ops->disown(pr, c->child);
            else
                pr->ops->release(pr, c->child);
            c->child = NULL;
        }
    }
    /* Cancels the requests in flight (their done is not called). */
    vio_http_close(s->http);
    for (int k = 0; k < 2; k++)
        vio_transport_close(s->udp[k]);
    free(s->checks);
    free(s->by_node);
    free(s);
}

void check_set_keys(struct check_set *s, check_key_fn fn, void *arg)
{
    s->key_of = fn;
    s->key_arg = arg;
}

uint64_t check_set_bad_pongs(const struct check_set *s)
{
    return s ? s->bad_pongs : 0;
}

size_t check_set_count(const struct check_set *s)
{
    return s ? s->n : 0;
}

const struct check_info *check_set_at(const struct check_set *s, size_t i)
{
    return &s->checks[i].info;
}

const struct check_info *check_set_find(const struct check_set *s, const char *node,
                                        const char *name)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (!strcmp(s->checks[i].info.node, node) && !strcmp(s->checks[i].info.name, name))
            return &s->checks[i].info;
    return NULL;
}

void check_set_inherit(struct check_set *s, const struct check_set *old)
{
    for (size_t i = 0; s && old && i < s->n; i++) {
        const struct check_info *o =
            check_set_find(old, s->checks[i].info.node, s->checks[i].info.name);
        if (!o)
            continue;
        struct check_info *n = &s->checks[i].info;
        n->status = o->status;
        n->since = o->since;
        n->last = o->last;
        n->last_at = o->last_at;
        n->runs = o->runs;
        n->passing = o->passing;
        n->warning = o->warning;
        n->critical = o->critical;
        n->changes = o->changes;
    }
}

/* ---- reported checks ---- */

void check_pair_format(const char *name, enum check_status st, bool means_dead,
                       const struct check_result *r, char key[VIGIL_CUSTOM_KEY_MAX + 1],
                       char value[VIGIL_CUSTOM_VAL_MAX + 1])
{
    snprintf(key, VIGIL_CUSTOM_KEY_MAX + 1, CHECK_PAIR_PREFIX "%.*s", CHECK_PAIR_NAME_MAX, name);
    long long ms = (long long)(r->latency / VIGIL_NSEC_PER_MSEC);
    char head[VIGIL_CUSTOM_VAL_MAX + 1];
    int hl = snprintf(head, sizeof head, "%s%s %lld %" PRId64 " ", check_status_name(st),
                      means_dead ? "!" : "", ms, r->code);
    size_t h = hl < 0 ? 0 : (size_t)hl > sizeof head - 1 ? sizeof head - 1 : (size_t)hl;
    size_t dl = strlen(r->detail);
    if (dl > sizeof head - 1 - h)
        dl = sizeof head - 1 - h;
    memcpy(value, head, h);
    memcpy(value + h, r->detail, dl);
    value[h + dl] = '\0';
    /* Printable ASCII only (the detail is, already); no trailing space. */
    size_t n = strlen(value);
    while (n > 0 && value[n - 1] == ' ')
        value[--n] = '\0';
}

bool check_pair_parse(const struct vigil_custom *p, char name[CHECK_PAIR_NAME_MAX + 1],
                      enum check_status *st, bool *means_dead, struct check_result *r)
{
    size_t pl = strlen(CHECK_PAIR_PREFIX);
    if (strncmp(p->key, CHECK_PAIR_PREFIX, pl) != 0 || !p->key[pl] ||
        strlen(p->key + pl) > CHECK_PAIR_NAME_MAX)
        return false;
    char word[16];
    long long ms = 0;
    long long code = 0;
    int used = 0;
    if (sscanf(p->value, "%15s %lld %lld %n", word, &ms, &code, &used) < 3 &&
        sscanf(p->value, "%15s %lld %lld%n", word, &ms, &code, &used) < 3)
        return false;
    size_t wl = strlen(word);
    *means_dead = wl > 0 && word[wl - 1] == '!';
    if (*means_dead)
        word[wl - 1] = '\0';
    int s = -1;
    for (int i = 1; i < 4; i++)
        if (!strcmp(word, status_names[i]))
            s = i;
    if (s < 0 || ms < 0)
        return false;
    snprintf(name, CHECK_PAIR_NAME_MAX + 1, "%s", p->key + pl);
    *st = (enum check_status)s;
    memset(r, 0, sizeof(*r));
    r->status = *st;
    r->latency = (vigil_time_t)ms * VIGIL_NSEC_PER_MSEC;
    r->code = (int64_t)code;
    snprintf(r->detail, sizeof(r->detail), "%s", used > 0 ? p->value + used : "");
    return true;
}

/* A node's reported checks (at most VCFG_AGENT_MAX_CHECKS), by index in v. */
struct rnode {
    char id[VIGIL_ID_MAX + 1];
    uint32_t checks[VCFG_AGENT_MAX_CHECKS];
    uint32_t n;
};

struct rchecks {
    struct rcheck **v;
    uint32_t n, cap;
    struct vigil__idtable ids;
    struct rnode **nodes;
    uint32_t n_nodes, cap_nodes;
    struct vigil__idtable node_ids;
};

static const char *rnode_id_of(const void *ctx, uint32_t idx)
{
    return ((const struct rchecks *)ctx)->nodes[idx]->id;
}

static struct rnode *rnode_get(struct rchecks *r, const char *node, bool create)
{
    size_t len = strlen(node);
    uint32_t idx = vigil__idtable_find(&r->node_ids, node, len, rnode_id_of);
    if (idx != VIGIL__IDTABLE_NONE)
        return r->nodes[idx];
    if (!create)
        return NULL;
    if (r->n_nodes == r->cap_nodes) {
        uint32_t cap = r->cap_nodes ? r->cap_nodes * 2 : 16;
        struct rnode **v = realloc(r->nodes, cap * sizeof(*v));
        if (!v)
            return NULL;
        r->nodes = v;
        r->cap_nodes = cap;
    }
    struct rnode *rn = calloc(1, sizeof(*rn));
    if (!rn)
        return NULL;
    memcpy(rn->id, node, len + 1);
    r->nodes[r->n_nodes] = rn;
    if (vigil__idtable_insert(&r->node_ids, rn->id, len, r->n_nodes) != 0) {
        free(rn);
        return NULL;
    }
    r->n_nodes++;
    return rn;
}

static const char *rcheck_id_of(const void *ctx, uint32_t idx)
{
    return ((const struct rchecks *)ctx)->v[idx]->key;
}

struct rchecks *rchecks_new(void)
{
    struct rchecks *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (vigil__idtable_init(&r->ids, 64, NULL, NULL, rcheck_id_of, r) != 0) {
        free(r);
        return NULL;
    }
    if (vigil__idtable_init(&r->node_ids, 64, NULL, NULL, rnode_id_of, r) != 0) {
        vigil__idtable_destroy(&r->ids);
        free(r);
        return NULL;
    }
    return r;
}

void rchecks_free(struct rchecks *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->n; i++)
        free(r->v[i]);
    free(r->v);
    for (uint32_t i = 0; i < r->n_nodes; i++)
        free(r->nodes[i]);
    free(r->nodes);
    vigil__idtable_destroy(&r->ids);
    vigil__idtable_destroy(&r->node_ids);
    free(r);
}

size_t rchecks_count(const struct rchecks *r)
{
    return r ? r->n : 0;
}

const struct rcheck *rchecks_at(const struct rchecks *r, size_t i)
{
    return r->v[i];
}

static struct rcheck *rcheck_get(struct rchecks *r, const char *node, const char *name,
                                 bool *created)
{
    char key[sizeof(((struct rcheck *)0)->key)];
    int kl = snprintf(key, sizeof key, "%s/%s", node, name);
    *created = false;
    uint32_t idx = vigil__idtable_find(&r->ids, key, (size_t)kl, rcheck_id_of);
    if (idx != VIGIL__IDTABLE_NONE)
        return r->v[idx];
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 16;
        struct rcheck **v = realloc(r->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        r->v = v;
        r->cap = cap;
    }
    struct rcheck *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    memcpy(c->key, key, (size_t)kl + 1);
    c->node = check_intern(node);
    c->name = check_intern(name);
    c->since = -1;
    r->v[r->n] = c;
    if (!c->node || !c->name || vigil__idtable_insert(&r->ids, c->key, (size_t)kl, r->n) != 0) {
        free(c);
        return NULL;
    }
    r->n++;
    *created = true;
    return c;
}

size_t rchecks_of_node(const struct rchecks *r, const char *node, const struct rcheck **out,
                       size_t max)
{
    struct rnode *rn = r ? rnode_get((struct rchecks *)r, node, false) : NULL;
    size_t k = 0;
    for (uint32_t i = 0; rn && i < rn->n && k < max; i++)
        out[k++] = r->v[rn->checks[i]];
    return k;
}

int rchecks_update(struct rchecks *r, const char *node, const struct vigil_custom *pairs, size_t n,
                   vigil_time_t now, rcheck_change_fn fn, void *arg)
{
    int rc = 0;
    struct rnode *rn = rnode_get(r, node, false);
    bool seen[VCFG_AGENT_MAX_CHECKS] = {false};
    for (size_t i = 0; i < n; i++) {
        char name[CHECK_PAIR_NAME_MAX + 1];
        enum check_status st;
        bool dead;
        struct check_result res;
        if (!check_pair_parse(&pairs[i], name, &st, &dead, &res))
            continue;
        bool created;
        struct rcheck *c = rcheck_get(r, node, name, &created);
        if (!c) {
            rc = -VIGIL_ENOMEM;
            continue;
        }
        if (created) {
            if (!rn)
                rn = rnode_get(r, node, true);
            if (rn && rn->n < VCFG_AGENT_MAX_CHECKS)
                rn->checks[rn->n++] = r->n - 1;
        }
        for (uint32_t k = 0; rn && k < rn->n; k++)
            if (r->v[rn->checks[k]] == c)
                seen[k] = true;
        c->last = res;
        c->last_at = now;
        c->means_dead = dead;
        if (c->status != st) {
            enum check_status old = c->status;
            c->status = st;
            c->since = now;
            c->changes++;
            if (fn)
                fn(arg, c, old, now);
        }
    }
    /*
     * A full status names every check the agent runs: one it no longer
     * names (its configuration changed) is unknown from now on, and
     * decides nothing.
     */
    for (uint32_t k = 0; rn && k < rn->n; k++) {
        struct rcheck *c = r->v[rn->checks[k]];
        if (seen[k] || c->status == CHECK_UNKNOWN)
            continue;
        enum check_status old = c->status;
        c->status = CHECK_UNKNOWN;
        c->means_dead = false;
        c->since = now;
        c->changes++;
        memset(&c->last, 0, sizeof(c->last));
        snprintf(c->last.detail, sizeof(c->last.detail), "no longer reported");
        if (fn)
            fn(arg, c, old, now);
    }
    return rc;
}
