/* Fake child processes: see fake_procs.h. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "fake_procs.h"

/* First fake pid: far from 0 and 1, which mean something to waitpid and kill. */
#define FAKE_PID_BASE 1000

struct fake_program {
    char *name;
    fake_program_fn fn;
    void *arg;
};

struct fake_procs;

struct vio_child {
    struct fake_procs *owner;
    size_t idx; /* its record */
    struct fake_outcome outcome;
    struct vio_timer end; /* when its exit is reported */
    int status;           /* the status it will report */
    bool ended;           /* its exit was reported */
    vio_exit_fn on_exit;
    void *arg;
    struct vio_child *prev, *next; /* the children not released */
    bool disowned;                 /* forgotten when it ends */
    char out[4096];                /* its output, up to output_max */
};

struct fake_procs {
    struct vio_procs base;
    struct vio_loop *loop;
    struct fake_program *progs;
    size_t n_progs;
    struct fake_spawn *spawns;
    size_t n_spawns, cap_spawns;
    struct vio_child *children;
    size_t running, max_running;
};

static char **copy_strv(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **c = calloc(n + 1, sizeof(*c));
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(c[i] = strdup(v[i]))) {
            for (size_t j = 0; j < i; j++)
                free(c[j]);
            free(c);
            return NULL;
        }
    return c;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static const struct fake_program *find_program(const struct fake_procs *fp, const char *name)
{
    for (size_t i = 0; i < fp->n_progs; i++)
        if (strcmp(fp->progs[i].name, name) == 0)
            return &fp->progs[i];
    return NULL;
}

/* The child's end: reported from the loop. */
static void fp_release_child(struct fake_procs *fp, struct vio_child *c);

static void child_end(void *arg, vigil_time_t now)
{
    struct vio_child *c = arg;
    struct fake_procs *fp = c->owner;
    struct fake_spawn *sp = &fp->spawns[c->idx];
    c->ended = true;
    sp->end = now;
    sp->status = c->status;
    fp->running--;
    if (c->disowned)
        fp_release_child(fp, c);
    else if (c->on_exit)
        c->on_exit(c->arg, c, c->status);
}

static int fp_spawn(struct vio_procs *p, const struct vio_spawn *req, struct vio_child **out)
{
    struct fake_procs *fp = (struct fake_procs *)p;
    if (!req || !req->argv || !req->argv[0] || !out)
        return -EINVAL;
    const struct fake_program *prog = find_program(fp, req->argv[0]);
    if (!prog)
        return -ENOENT;
    if (fp->n_spawns == fp->cap_spawns) {
        size_t cap = fp->cap_spawns ? fp->cap_spawns * 2 : 16;
        struct fake_spawn *s = realloc(fp->spawns, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        fp->spawns = s;
        fp->cap_spawns = cap;
    }
    struct vio_child *c = calloc(1, sizeof(*c));
    struct fake_spawn *sp = &fp->spawns[fp->n_spawns];
    memset(sp, 0, sizeof(*sp));
    sp->argv = copy_strv(req->argv);
    sp->envp = copy_strv(req->envp);
    sp->stdin_data = malloc(req->stdin_len + 1);
    if (!c || !sp->argv || !sp->envp || !sp->stdin_data) {
        free(c);
        free_strv(sp->argv);
        free_strv(sp->envp);
        free(sp->stdin_data);
        return -ENOMEM;
    }
    if (req->stdin_len)
        memcpy(sp->stdin_data, req->stdin_data, req->stdin_len);
    sp->stdin_data[req->stdin_len] = '\0';
    sp->stdin_len = req->stdin_len;
    sp->pid = FAKE_PID_BASE + (long)fp->n_spawns;
    vigil_time_t now = vio_now(fp->loop);
    sp->start = now;
    sp->end = sp->term_at = sp->kill_at = VIGIL_TIME_NEVER;

    c->owner = fp;
    c->idx = fp->n_spawns;
    c->on_exit = req->on_exit;
    c->arg = req->arg;
    vio_timer_init(&c->end, child_end, c);
    prog->fn(prog->arg, sp, &c->outcome);
    c->status = (c->outcome.exit_code & 0xff) << 8;
    if (c->outcome.output && req->output_max > 0) {
        size_t n = strlen(c->outcome.output),
               cap = req->output_max < sizeof(c->out) - 1 ? req->output_max : sizeof(c->out) - 1;
        memcpy(c->out, c->outcome.output, n < cap ? n : cap);
        c->out[n < cap ? n : cap] = '\0';
    }
    if (c->outcome.runs_for != FAKE_PROC_FOREVER) {
        vigil_time_t d = c->outcome.runs_for > 0 ? c->outcome.runs_for : 0;
        if (vio_timer_arm(fp->loop, &c->end, now > VIGIL_TIME_NEVER - d ? now : now + d) != 0) {
            free_strv(sp->argv);
            free_strv(sp->envp);
            free(sp->stdin_data);
            free(c);
            return -ENOMEM;
        }
    }
    fp->n_spawns++;
    c->next = fp->children;
    if (fp->children)
        fp->children->prev = c;
    fp->children = c;
    if (++fp->running > fp->max_running)
        fp->max_running = fp->running;
    *out = c;
    return 0;
}

static void fp_signal(struct vio_procs *p, struct vio_child *c, int sig)
{
    struct fake_procs *fp = (struct fake_procs *)p;
    if (!c || c->ended)
        return;
    struct fake_spawn *sp = &fp->spawns[c->idx];
    vigil_time_t now = vio_now(fp->loop);
    sp->n_signals++;
    if (sig == SIGTERM && sp->term_at == VIGIL_TIME_NEVER)
        sp->term_at = now;
    if (sig == SIGKILL && sp->kill_at == VIGIL_TIME_NEVER)
        sp->kill_at = now;
    if (sig == 0 || (sig == SIGTERM && c->outcome.ignore_term))
        return;
    /* Killed by sig: the exit is reported on the loop's next turn at this time. */
    c->status = sig & 0x7f;
    vio_timer_arm(fp->loop, &c->end, now);
}

static void fp_release(struct vio_procs *p, struct vio_child *c)
{
    if (c)
        fp_release_child((struct fake_procs *)p, c);
}

static void fp_disown(struct vio_procs *p, struct vio_child *c)
{
    if (!c)
        return;
    if (c->ended) {
        fp_release(p, c);
        return;
    }
    c->disowned = true;
    c->on_exit = NULL;
}

static void fp_release_child(struct fake_procs *fp, struct vio_child *c)
{
    vio_timer_disarm(fp->loop, &c->end);
    if (!c->ended)
        fp->running--; /* unwatched from now on: it no longer counts */
    if (c->prev)
        c->prev->next = c->next;
    else
        fp->children = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

static const char *fp_output(const struct vio_child *c, size_t *len)
{
    *len = c ? strlen(c->out) : 0;
    return c ? c->out : "";
}

static long fp_pid(const struct vio_child *c)
{
    return c ? c->owner->spawns[c->idx].pid : 0;
}

/*
 * The fake does not own the clock, so it cannot let time pass: every
 * child whose end is due by now + timeout (it exits by then, or a signal
 * already ended it) ends now, in start order; the rest keep running.
 */
static size_t fp_wait_all(struct vio_procs *p, vigil_time_t timeout)
{
    struct fake_procs *fp = (struct fake_procs *)p;
    vigil_time_t now = vio_now(fp->loop);
    vigil_time_t by = now > VIGIL_TIME_NEVER - timeout ? VIGIL_TIME_NEVER : now + timeout;
    for (;;) {
        struct vio_child *due = NULL;
        for (struct vio_child *c = fp->children; c; c = c->next)
            if (!c->ended && vio_timer_armed(&c->end) && c->end.at <= by &&
                (!due || c->idx < due->idx))
                due = c;
        if (!due)
            break;
        vio_timer_disarm(fp->loop, &due->end);
        child_end(due, now);
    }
    size_t running = 0;
    for (struct vio_child *c = fp->children; c; c = c->next)
        running += !c->ended;
    return running;
}

static const struct vio_procs_ops fake_procs_ops = {
    .spawn = fp_spawn,
    .signal = fp_signal,
    .release = fp_release,
    .pid = fp_pid,
    .output = fp_output,
    .disown = fp_disown,
    .wait_all = fp_wait_all,
};

struct vio_procs *fake_procs_new(struct vio_loop *loop)
{
    struct fake_procs *fp = calloc(1, sizeof(*fp));
    if (!fp)
        return NULL;
    fp->base.ops = &fake_procs_ops;
    fp->loop = loop;
    return &fp->base;
}

void fake_procs_free(struct vio_procs *p)
{
    struct fake_procs *fp = (struct fake_procs *)p;
    if (!fp)
        return;
    while (fp->children)
        fp_release(p, fp->children);
    for (size_t i = 0; i < fp->n_spawns; i++) {
        free_strv(fp->spawns[i].argv);
        free_strv(fp->spawns[i].envp);
        free(fp->spawns[i].stdin_data);
    }
    free(fp->spawns);
    for (size_t i = 0; i < fp->n_progs; i++)
        free(fp->progs[i].name);
    free(fp->progs);
    free(fp);
}

int fake_procs_register(struct vio_procs *p, const char *name, fake_program_fn fn, void *arg)
{
    struct fake_procs *fp = (struct fake_procs *)p;
    for (size_t i = 0; i < fp->n_progs; i++)
        if (strcmp(fp->progs[i].name, name) == 0) {
            fp->progs[i].fn = fn;
            fp->progs[i].arg = arg;
            return 0;
        }
    struct fake_program *np = realloc(fp->progs, (fp->n_progs + 1) * sizeof(*np));
    if (!np)
        return -VIGIL_ENOMEM;
    fp->progs = np;
    char *copy = strdup(name);
    if (!copy)
        return -VIGIL_ENOMEM;
    fp->progs[fp->n_progs++] = (struct fake_program){.name = copy, .fn = fn, .arg = arg};
    return 0;
}

size_t fake_procs_count(const struct vio_procs *p)
{
    return ((const struct fake_procs *)p)->n_spawns;
}

const struct fake_spawn *fake_procs_spawn_at(const struct vio_procs *p, size_t i)
{
    const struct fake_procs *fp = (const struct fake_procs *)p;
    return i < fp->n_spawns ? &fp->spawns[i] : NULL;
}

size_t fake_procs_running(const struct vio_procs *p)
{
    return ((const struct fake_procs *)p)->running;
}

size_t fake_procs_max_running(const struct vio_procs *p)
{
    return ((const struct fake_procs *)p)->max_running;
}

const char *fake_spawn_env(const struct fake_spawn *sp, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; sp->envp && sp->envp[i]; i++)
        if (strncmp(sp->envp[i], name, n) == 0 && sp->envp[i][n] == '=')
            return sp->envp[i] + n + 1;
    return NULL;
}
