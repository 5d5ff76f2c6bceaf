/* The simulated world: see sim_world.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h> /* S_IFREG: what stat() says of a file */

#include <vigil/sender.h>

#include "fake_http.h"
#include "fake_loop.h"
#include "fake_procs.h"
#include "sim_world.h"

/* Datagrams a transport queues before it drops (a socket buffer of ~4 MB of heartbeats). */
#define SIM_QUEUE_MAX 16384
/* Steps one sim_world_run_until may take before it calls the run runaway. */
#define SIM_MAX_STEPS 2000000000L
/* Bytes of log kept per process; older lines are forgotten, the count is kept. */
#define SIM_LOG_MAX (1 << 20)
/* Files in one process's fake file system. */
#define SIM_FILES_MAX 64
/* First port handed to an unbound transport. */
#define SIM_EPHEMERAL_PORT 40000

struct sim_dgram {
    vigil_time_t at;
    uint64_t order;
    struct vigil_addr from, to;
    uint16_t len;
    uint8_t buf[VIGIL_WIRE_MAX + 1];
};

struct sim_queued {
    struct vigil_addr from;
    vigil_time_t arrival;
    uint16_t len;
    uint8_t buf[VIGIL_WIRE_MAX + 1];
};

struct sim_transport {
    struct vio_transport base;
    struct sim_proc *proc;
    struct sim_transport *next; /* in the world's list */
    struct vigil_addr local;
    struct sim_queued *q; /* ring of SIM_QUEUE_MAX, allocated on first delivery */
    size_t head, len;
    uint32_t overflow; /* dropped for a full queue, not yet reported by recv */
};

struct sim_file {
    char *path;
    char *data;
    size_t len;
    uint32_t mode;
    uint64_t ino;
    int64_t mtime;
};

struct sim_log {
    struct vio_log base;
    struct sim_proc *proc;
};

struct sim_proc {
    struct sim_world *w;
    char name[64];
    struct vigil_addr ip;
    struct vio_loop *loop;
    struct vio_env env;
    struct vio_net net;
    struct vio_procs *procs;
    struct vio_httpd *httpd; /* the last one opened, for sim_proc_httpd */
    struct vio_fs fs;
    bool killed, cut;
    int send_error; /* sends fail with -send_error (0: they work) */
    uint16_t next_port;
    struct sim_file files[SIM_FILES_MAX];
    size_t n_files;
    char *log;
    size_t log_len;
    size_t log_lines;
    struct sim_proc *next; /* in the world's list */
    /* Signals waiting for the next turn of the loop. */
    int pending_sig[8];
    size_t n_sig;
    struct vio_source sig_src;
    /* What the process told its service manager, in order, one state per line. */
    char notified[256];
};

struct sim_world {
    vigil_time_t clock;
    uint64_t rng;
    uint64_t order;
    uint64_t ino;
    struct sim_net_model model;
    struct sim_net_stats stats;
    struct sim_dgram **heap; /* datagrams in flight */
    size_t n, cap;
    struct sim_proc *procs;
    struct sim_transport *transports;
    sim_tap_fn tap; /* told of every datagram queued for a reader */
    void *tap_arg;
};

/* ---- randomness --------------------------------------------------------- */

uint64_t sim_rand(struct sim_world *w)
{
    /* xorshift64*: small, fast, and the same on every machine. */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 0x2545F4914F6CDD1DULL;
}

double sim_unit(struct sim_world *w)
{
    return (double)(sim_rand(w) >> 11) / 9007199254740992.0;
}

static vigil_time_t rand_below(struct sim_world *w, vigil_time_t n)
{
    return n > 0 ? (vigil_time_t)(sim_rand(w) % (uint64_t)n) : 0;
}

/* ---- datagrams in flight -------------------------------------------------- */

static bool dg_before(const struct sim_dgram *a, const struct sim_dgram *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static int heap_push(struct sim_world *w, struct sim_dgram *d)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        struct sim_dgram **h = realloc(w->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        w->heap = h;
        w->cap = cap;
    }
    size_t i = w->n++;
    while (i > 0 && dg_before(d, w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = d;
    return 0;
}

static struct sim_dgram *heap_pop(struct sim_world *w)
{
    struct sim_dgram *top = w->heap[0];
    struct sim_dgram *last = w->heap[--w->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->n)
            break;
        if (c + 1 < w->n && dg_before(w->heap[c + 1], w->heap[c]))
            c++;
        if (!dg_before(w->heap[c], last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->n)
        w->heap[i] = last;
    return top;
}

static bool addr_eq(const struct vigil_addr *a, const struct vigil_addr *b)
{
    return a->family == b->family && a->port == b->port && !memcmp(a->addr, b->addr, 4);
}

static struct sim_transport *find_transport(struct sim_world *w, const struct vigil_addr *a)
{
    for (struct sim_transport *t = w->transports; t; t = t->next)
        if (addr_eq(&t->local, a))
            return t;
    return NULL;
}

static void deliver(struct sim_world *w, struct sim_dgram *d)
{
    struct sim_transport *t = find_transport(w, &d->to);
    if (!t || t->proc->killed) {
        w->stats.no_listener++;
        return;
    }
    if (t->proc->cut) {
        w->stats.cut++;
        return;
    }
    if (!t->q && !(t->q = malloc(SIM_QUEUE_MAX * sizeof(*t->q)))) {
        w->stats.overflow++;
        return;
    }
    if (t->len == SIM_QUEUE_MAX) {
        w->stats.overflow++;
        t->overflow++;
        return;
    }
    struct sim_queued *q = &t->q[(t->head + t->len++) % SIM_QUEUE_MAX];
    q->from = d->from;
    q->arrival = d->at;
    q->len = d->len;
    memcpy(q->buf, d->buf, d->len);
    w->stats.delivered++;
    if (w->tap)
        w->tap(w->tap_arg, &d->from, &d->to, d->at);
    vio_source_ready(t->proc->loop, &t->base.readable);
}

/* ---- the fake transport ---------------------------------------------------- */

static int st_recv(struct vio_transport *vt, struct vio_dgram *d, size_t n)
{
    struct sim_transport *t = (struct sim_transport *)vt;
    size_t got = 0;
    while (got < n && t->len > 0) {
        struct sim_queued *q = &t->q[t->head];
        t->head = (t->head + 1) % SIM_QUEUE_MAX;
        t->len--;
        d[got].from = q->from;
        d[got].arrival = q->arrival;
        d[got].stamped = true;
        d[got].dropped = t->overflow;
        t->overflow = 0;
        d[got].len = q->len > d[got].cap ? d[got].cap + 1 : q->len;
        memcpy(d[got].buf, q->buf, q->len > d[got].cap ? d[got].cap : q->len);
        got++;
    }
    return (int)got;
}

static int st_send(struct vio_transport *vt, const struct vigil_addr *to, const uint8_t *buf,
                   size_t len)
{
    struct sim_transport *t = (struct sim_transport *)vt;
    struct sim_world *w = t->proc->w;
    if (len > VIGIL_WIRE_MAX + 1)
        return -EMSGSIZE;
    if (t->proc->send_error)
        return -t->proc->send_error;
    w->stats.sent++;
    if (t->proc->cut) {
        w->stats.cut++;
        return 0;
    }
    if (sim_unit(w) < w->model.loss) {
        w->stats.lost++;
        return 0;
    }
    int copies = sim_unit(w) < w->model.dup ? 2 : 1;
    if (copies == 2)
        w->stats.duplicated++;
    for (int c = 0; c < copies; c++) {
        struct sim_dgram *d = malloc(sizeof(*d));
        if (!d)
            return -ENOMEM;
        vigil_time_t delay = w->model.delay + rand_below(w, w->model.jitter);
        if (w->model.spike_p > 0 && sim_unit(w) < w->model.spike_p)
            delay += rand_below(w, w->model.spike);
        d->at = w->clock + delay;
        d->order = w->order++;
        d->from = t->local;
        d->to = *to;
        d->len = (uint16_t)len;
        memcpy(d->buf, buf, len);
        if (heap_push(w, d)) {
            free(d);
            return -ENOMEM;
        }
    }
    return 0;
}

static void st_local(const struct vio_transport *vt, struct vigil_addr *out)
{
    *out = ((const struct sim_transport *)vt)->local;
}

static void st_close(struct vio_transport *vt)
{
    struct sim_transport *t = (struct sim_transport *)vt;
    struct sim_world *w = t->proc->w;
    vio_source_cancel(t->proc->loop, &vt->readable);
    for (struct sim_transport **pp = &w->transports; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    free(t->q);
    free(t);
}

static const struct vio_transport_ops st_ops = {
    .recv = st_recv, .send = st_send, .local = st_local, .close = st_close};

static int sn_open(struct vio_net *n, struct vio_loop *l, const struct vigil_addr *bind_to,
                   int family, struct vio_transport **out)
{
    struct sim_proc *p = (struct sim_proc *)((char *)n - offsetof(struct sim_proc, net));
    (void)l;
    if (family != AF_INET && (!bind_to || bind_to->family != AF_INET))
        return -EAFNOSUPPORT;
    struct vigil_addr a = p->ip;
    if (bind_to) {
        /* A listener on "0.0.0.0" or on the process's own address takes its port. */
        static const uint8_t any[4] = {0, 0, 0, 0};
        if (memcmp(bind_to->addr, any, 4) && memcmp(bind_to->addr, p->ip.addr, 4))
            return -EADDRNOTAVAIL;
        a.port = bind_to->port;
    } else {
        a.port = p->next_port++;
    }
    if (find_transport(p->w, &a))
        return -EADDRINUSE;
    struct sim_transport *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->base.ops = &st_ops;
    t->proc = p;
    t->local = a;
    vio_source_init(&t->base.readable, NULL, NULL);
    t->next = p->w->transports;
    p->w->transports = t;
    *out = &t->base;
    return 0;
}

static int sn_resolve(struct vio_net *n, const char *spec, uint16_t default_port,
                      struct vigil_addr *out, const char **why)
{
    (void)n;
    if (vigil_addr_parse(spec, default_port, out)) {
        if (why)
            *why = "not a numeric address (the simulation has no names)";
        return -VIGIL_EINVAL;
    }
    return 0;
}

/* ---- the fake file system ---------------------------------------------------- */

static struct sim_proc *fs_proc(struct vio_fs *fs)
{
    return (struct sim_proc *)((char *)fs - offsetof(struct sim_proc, fs));
}

static struct sim_file *file_find(struct sim_proc *p, const char *path)
{
    for (size_t i = 0; i < p->n_files; i++)
        if (!strcmp(p->files[i].path, path))
            return &p->files[i];
    return NULL;
}

static int file_put(struct sim_proc *p, const char *path, const void *data, size_t len,
                    uint32_t mode, bool append)
{
    struct sim_file *f = file_find(p, path);
    if (!f) {
        if (p->n_files == SIM_FILES_MAX)
            return -ENOSPC;
        f = &p->files[p->n_files];
        memset(f, 0, sizeof(*f));
        if (!(f->path = strdup(path)))
            return -ENOMEM;
        f->mode = mode;
        p->n_files++;
    }
    size_t base = append ? f->len : 0;
    char *nd = malloc(base + len + 1);
    if (!nd)
        return -ENOMEM;
    if (base)
        memcpy(nd, f->data, base);
    memcpy(nd + base, data, len);
    nd[base + len] = '\0';
    free(f->data);
    f->data = nd;
    f->len = base + len;
    f->mode = mode;
    /* A replacement is a new inode, as rename() makes one. */
    if (!append || !f->ino)
        f->ino = ++p->w->ino;
    f->mtime = p->w->clock;
    return 0;
}

static int sf_read(struct vio_fs *fs, const char *path, size_t cap, char **out, size_t *len)
{
    struct sim_file *f = file_find(fs_proc(fs), path);
    *out = NULL;
    *len = 0;
    if (!f)
        return -ENOENT;
    if (f->len > cap)
        return -EFBIG;
    if (!(*out = malloc(f->len + 1)))
        return -ENOMEM;
    memcpy(*out, f->data, f->len);
    (*out)[f->len] = '\0';
    *len = f->len;
    return 0;
}

static int sf_replace(struct vio_fs *fs, const char *path, const void *data, size_t len,
                      uint32_t mode)
{
    return file_put(fs_proc(fs), path, data, len, mode, false);
}

static int sf_append(struct vio_fs *fs, const char *path, const void *data, size_t len,
                     uint32_t mode, bool sync)
{
    (void)sync;
    return file_put(fs_proc(fs), path, data, len, mode, true);
}

static int sf_stat(struct vio_fs *fs, const char *path, struct vio_stat *st)
{
    struct sim_file *f = file_find(fs_proc(fs), path);
    if (!f)
        return -ENOENT;
    st->ino = f->ino;
    st->size = f->len;
    st->mtime_ns = f->mtime;
    st->mode = S_IFREG | (f->mode & 07777); /* every simulated file is a regular one */
    return 0;
}

static int sf_create(struct vio_fs *fs, const char *path, const void *data, size_t len,
                     uint32_t mode)
{
    if (file_find(fs_proc(fs), path))
        return -EEXIST;
    return file_put(fs_proc(fs), path, data, len, mode, false);
}

static const struct vio_fs_ops sf_ops = {.read = sf_read,
                                         .replace = sf_replace,
                                         .append = sf_append,
                                         .stat = sf_stat,
                                         .create = sf_create};

/* ---- the log ------------------------------------------------------------------ */

static void sl_write(struct vio_log *g, const char *line)
{
    struct sim_proc *p = ((struct sim_log *)g)->proc;
    size_t n = strlen(line);
    p->log_lines++;
    if (p->log_len + n + 2 > SIM_LOG_MAX)
        return; /* counted, not kept */
    if (!p->log && !(p->log = malloc(SIM_LOG_MAX)))
        return;
    memcpy(p->log + p->log_len, line, n);
    p->log_len += n;
    p->log[p->log_len++] = '\n';
    p->log[p->log_len] = '\0';
}

static uint64_t sl_dropped(struct vio_log *g)
{
    (void)g;
    return 0;
}

static int sl_close(struct vio_log *g, int timeout_ms)
{
    (void)timeout_ms;
    free(g);
    return 0;
}

static const struct vio_log_ops sl_ops = {
    .write = sl_write, .dropped = sl_dropped, .close = sl_close};

static int se_log_open(struct vio_env *env, const char *path, struct vio_log **out, char *err,
                       size_t cap)
{
    (void)path;
    (void)err;
    (void)cap;
    struct sim_log *g = calloc(1, sizeof(*g));
    if (!g)
        return -1;
    g->base.ops = &sl_ops;
    g->proc = env->impl;
    *out = &g->base;
    return 0;
}

static int se_httpd_open(struct vio_env *env, const struct vio_httpd_opts *opts,
                         vio_http_handler handler, void *arg, struct vio_httpd **out, char *err,
                         size_t cap)
{
    struct sim_proc *p = env->impl;
    /* The simulated world has no TLS: a test that asks for it has a bug. */
    if (opts->tls_cert || opts->tls_key) {
        snprintf(err, cap, "the simulator serves no HTTPS");
        return -VIGIL_EINVAL;
    }
    int rc = fake_httpd_open(p->loop, opts->addr, handler, arg, out, err, cap);
    if (rc == 0)
        p->httpd = *out;
    return rc;
}

/* Nothing answers HTTP in the simulated world unless a test says so: connection refused. */
static void no_http(void *arg, const struct vio_http_call *call, struct fake_http_answer *ans)
{
    (void)arg;
    (void)call;
    ans->error = -ECONNREFUSED;
}

static int se_http_open(struct vio_env *env, struct vio_http **out)
{
    struct sim_proc *p = env->impl;
    *out = fake_http_new(p->loop, no_http, p);
    return *out ? 0 : -ENOMEM;
}

static int se_sample(struct vio_env *env, struct vigil_status *st)
{
    memset(st, 0, sizeof(*st));
    struct sim_proc *p = env->impl;
    st->load1_milli = 250;
    st->load5_milli = 500;
    st->load15_milli = 750;
    st->mem_total_kib = 4 << 20;
    st->mem_avail_kib = 3 << 20;
    st->uptime_s = (uint64_t)(p->w->clock / VIGIL_NSEC_PER_SEC);
    return 0;
}

static void se_random(struct vio_env *env, void *buf, size_t len)
{
    struct sim_proc *p = env->impl;
    uint8_t *b = buf;
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(sim_rand(p->w) >> 56);
}

/* Records the state (the service manager's side of sd_notify); what does not fit is dropped. */
static void se_notify(struct vio_env *env, const char *state)
{
    struct sim_proc *p = env->impl;
    size_t used = strlen(p->notified);
    snprintf(p->notified + used, sizeof(p->notified) - used, "%s\n", state);
}

const char *sim_proc_notified(const struct sim_proc *p)
{
    return p->notified;
}

/* ---- signals ------------------------------------------------------------------ */

static void on_sig_src(void *arg, vigil_time_t now)
{
    struct sim_proc *p = arg;
    (void)now;
    size_t n = p->n_sig;
    int sigs[8];
    memcpy(sigs, p->pending_sig, n * sizeof(int));
    p->n_sig = 0;
    for (size_t i = 0; i < n; i++)
        vio_loop_signal(p->loop, sigs[i]);
}

void sim_proc_signal(struct sim_proc *p, int signo)
{
    if (signo == SIGKILL) {
        sim_proc_kill(p);
        return;
    }
    if (signo == SIGSTOP || signo == SIGCONT) {
        sim_proc_pause(p, signo == SIGSTOP);
        return;
    }
    if (p->n_sig < 8)
        p->pending_sig[p->n_sig++] = signo;
    vio_source_ready(p->loop, &p->sig_src);
}

/* ---- processes ------------------------------------------------------------------ */

struct sim_proc *sim_proc_new(struct sim_world *w, const char *name, const char *ip)
{
    struct sim_proc *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->w = w;
    snprintf(p->name, sizeof(p->name), "%s", name);
    if (vigil_addr_parse(ip, 0, &p->ip) || p->ip.family != AF_INET || p->ip.addr[0] != 127 ||
        !(p->loop = fake_loop_new(&w->clock)) || !(p->procs = fake_procs_new(p->loop))) {
        vio_loop_free(p->loop);
        free(p);
        return NULL;
    }
    p->next_port = SIM_EPHEMERAL_PORT;
    static const struct vio_net_ops net_ops = {.open = sn_open, .resolve = sn_resolve};
    p->net.ops = &net_ops;
    p->fs.ops = &sf_ops;
    p->env.loop = p->loop;
    p->env.net = &p->net;
    p->env.fs = &p->fs;
    p->env.procs = p->procs;
    p->env.httpd_open = se_httpd_open;
    p->env.log_open = se_log_open;
    p->env.http_open = se_http_open;
    p->env.sample_status = se_sample;
    p->env.random = se_random;
    p->env.notify = se_notify;
    p->env.impl = p;
    vio_source_init(&p->sig_src, on_sig_src, p);
    p->next = w->procs;
    w->procs = p;
    return p;
}

struct vio_env *sim_proc_env(struct sim_proc *p)
{
    return &p->env;
}

const char *sim_proc_name(const struct sim_proc *p)
{
    return p->name;
}

void sim_proc_pause(struct sim_proc *p, bool paused)
{
    fake_loop_pause(p->loop, paused);
}

void sim_proc_kill(struct sim_proc *p)
{
    p->killed = true;
    fake_loop_pause(p->loop, true);
}

bool sim_proc_killed(const struct sim_proc *p)
{
    return p->killed;
}

void sim_proc_send_error(struct sim_proc *p, int err)
{
    p->send_error = err;
}

void sim_proc_cut(struct sim_proc *p, bool cut)
{
    p->cut = cut;
}

size_t sim_proc_log_count(const struct sim_proc *p, const char *needle)
{
    size_t n = 0;
    for (const char *s = p->log; s && (s = strstr(s, needle)); s += strlen(needle))
        n++;
    return n;
}

const char *sim_proc_log_text(const struct sim_proc *p)
{
    return p->log ? p->log : "";
}

int sim_proc_put_file(struct sim_proc *p, const char *path, const char *data, uint32_t mode)
{
    return file_put(p, path, data, strlen(data), mode, false);
}

void sim_proc_free(struct sim_proc *p)
{
    if (!p)
        return;
    struct sim_world *w = p->w;
    for (struct sim_proc **pp = &w->procs; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    for (size_t i = 0; i < p->n_files; i++) {
        free(p->files[i].path);
        free(p->files[i].data);
    }
    free(p->log);
    fake_procs_free(p->procs);
    vio_loop_free(p->loop);
    free(p);
}

struct vio_procs *sim_proc_procs(struct sim_proc *p)
{
    return p->procs;
}

struct vio_httpd *sim_proc_httpd(struct sim_proc *p)
{
    return p->httpd;
}

struct vio_log *sim_proc_log(struct sim_proc *p)
{
    struct vio_log *g = NULL;
    char err[64];
    se_log_open(&p->env, NULL, &g, err, sizeof(err));
    return g;
}

/* ---- the world ------------------------------------------------------------------ */

struct sim_world *sim_world_new(uint64_t seed)
{
    struct sim_world *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->rng = seed ? seed : 1;
    /* A clock far from 0, so that nothing depends on time starting at zero. */
    w->clock = 1000 * VIGIL_NSEC_PER_SEC;
    w->model.delay = VIGIL_NSEC_PER_MSEC / 4;
    return w;
}

void sim_world_free(struct sim_world *w)
{
    if (!w)
        return;
    while (w->procs)
        sim_proc_free(w->procs);
    for (size_t i = 0; i < w->n; i++)
        free(w->heap[i]);
    free(w->heap);
    free(w);
}

vigil_time_t sim_now(const struct sim_world *w)
{
    return w->clock;
}

void sim_world_set_model(struct sim_world *w, const struct sim_net_model *m)
{
    w->model = *m;
}

void sim_world_set_tap(struct sim_world *w, sim_tap_fn fn, void *arg)
{
    w->tap = fn;
    w->tap_arg = arg;
}

const struct sim_net_stats *sim_world_stats(const struct sim_world *w)
{
    return &w->stats;
}

bool sim_world_run_until(struct sim_world *w, vigil_time_t t)
{
    for (long step = 0; step < SIM_MAX_STEPS; step++) {
        /* The earliest of the next delivery and every process's next turn; deliveries first. */
        vigil_time_t next = w->n ? w->heap[0]->at : VIGIL_TIME_NEVER;
        struct sim_proc *who = NULL;
        for (struct sim_proc *p = w->procs; p; p = p->next) {
            vigil_time_t pn = fake_loop_next(p->loop);
            if (pn < next || (pn == next && who == NULL && pn != VIGIL_TIME_NEVER &&
                              (!w->n || w->heap[0]->at > pn))) {
                next = pn;
                who = p;
            }
        }
        if (next > t) {
            w->clock = t;
            return true;
        }
        if (next > w->clock)
            w->clock = next;
        if (!who) {
            struct sim_dgram *d = heap_pop(w);
            deliver(w, d);
            free(d);
        } else {
            fake_loop_step(who->loop);
        }
    }
    return false;
}
