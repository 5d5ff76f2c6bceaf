/*
 * The real environment without its heavy parts: the epoll loop, UDP
 * sockets, files, child processes, status sampling, stream exchanges and
 * the service manager's notifications, but no HTTP client, no HTTP server,
 * no state store and no log thread. This is all `vigil agent` needs for
 * heartbeats, pings and its tcp and exec checks, and all the small agent
 * program (vigil-agent) links: it uses neither libcurl, libmicrohttpd nor
 * SQLite, so that an idle agent maps none of them. vio_env_real_new
 * (env_real.c) adds the rest for the other commands.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include <vigil/sender.h>

#include "io/real.h"

static int base_exchange(struct vio_env *env, const char *target, const char *req, size_t len,
                         size_t max, vigil_time_t timeout, vio_exchange_done done, void *arg,
                         struct vio_exchange **out)
{
    return vio_exchange_start(env->loop, target, req, len, max, timeout, done, arg, out);
}

static int base_exchange_opts(struct vio_env *env, const struct vio_exchange_opts *o,
                              vio_exchange_done done, void *arg, struct vio_exchange **out)
{
    return vio_exchange_start_opts(env->loop, o, done, arg, out);
}

static void base_exchange_cancel(struct vio_env *env, struct vio_exchange *x)
{
    (void)env;
    vio_exchange_cancel(x);
}

static int base_sample_status(struct vio_env *env, struct vigil_status *st)
{
    (void)env;
    return vigil_status_sample(st);
}

static void base_random(struct vio_env *env, void *buf, size_t len)
{
    (void)env;
    randombytes_buf(buf, len);
}

/* impl is the notifier (systemd's readiness protocol and watchdog). */
static void base_notify(struct vio_env *env, const char *state)
{
    vio_notifier_send(env->impl, state);
}

int vio_env_base_new(struct vio_env **out, bool with_procs)
{
    struct vio_env *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    int rc = vio_loop_epoll_new(&e->loop);
    if (!rc && with_procs)
        rc = vio_procs_real_new(e->loop, &e->procs);
    struct vio_notifier *notifier = NULL;
    if (!rc)
        rc = vio_notifier_new(e->loop, &notifier);
    if (rc) {
        if (e->procs)
            vio_procs_real_free(e->procs);
        vio_loop_free(e->loop);
        free(e);
        return rc;
    }
    e->net = &vio_net_udp;
    e->fs = &vio_fs_real;
    e->sample_status = base_sample_status;
    e->random = base_random;
    e->notify = base_notify;
    e->exchange = base_exchange;
    e->exchange_cancel = base_exchange_cancel;
    e->exchange_opts = base_exchange_opts;
    e->impl = notifier;
    *out = e;
    return 0;
}

void vio_env_real_free(struct vio_env *env)
{
    if (!env)
        return;
    vio_notifier_free(env->impl);
    if (env->procs)
        vio_procs_real_free(env->procs);
    vio_loop_free(env->loop);
    free(env);
}

int vio_hostname(char *buf, size_t cap)
{
    if (cap == 0)
        return -EINVAL;
    if (gethostname(buf, cap) != 0)
        return -errno;
    buf[cap - 1] = '\0';
    return 0;
}

void vio_raise_default(int signo)
{
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    signal(signo, SIG_DFL);
    raise(signo);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
}

int vio_exec_beside(const char *name, char *const argv[])
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        return -errno;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    size_t dir = slash ? (size_t)(slash - self) + 1 : 0;
    size_t len = strlen(name);
    if (dir + len + 1 > sizeof(self))
        return -ENAMETOOLONG;
    memcpy(self + dir, name, len + 1);
    execv(self, argv);
    return -errno;
}

void vio_trim_heap(void)
{
    (void)malloc_trim(0);
}
