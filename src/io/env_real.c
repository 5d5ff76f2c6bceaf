/*
 * The real environment: one of each real implementation of the vio
 * interfaces, for the program's main.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include <vigil/sender.h>

#include "io/real.h"

static int real_httpd_open(struct vio_env *env, const struct vio_httpd_opts *opts,
                           vio_http_handler handler, void *arg, struct vio_httpd **out, char *err,
                           size_t cap)
{
    return vio_httpd_mhd_open(env->loop, opts, handler, arg, out, err, cap);
}

static int real_log_open(struct vio_env *env, const char *path, struct vio_log **out, char *err,
                         size_t cap)
{
    (void)env;
    return vio_log_real_open(path, out, err, cap);
}

static int real_store_open(struct vio_env *env, const char *dir, struct vio_store **out, char *err,
                           size_t cap)
{
    (void)env;
    return vio_store_sqlite_open(dir, out, err, cap);
}

static int real_exchange(struct vio_env *env, const char *target, const char *req, size_t len,
                         size_t max, vigil_time_t timeout, vio_exchange_done done, void *arg,
                         struct vio_exchange **out)
{
    return vio_exchange_start(env->loop, target, req, len, max, timeout, done, arg, out);
}

static int real_exchange_opts(struct vio_env *env, const struct vio_exchange_opts *o,
                              vio_exchange_done done, void *arg, struct vio_exchange **out)
{
    return vio_exchange_start_opts(env->loop, o, done, arg, out);
}

static void real_exchange_cancel(struct vio_env *env, struct vio_exchange *x)
{
    (void)env;
    vio_exchange_cancel(x);
}

static int real_http_open(struct vio_env *env, struct vio_http **out)
{
    return vio_http_curl_new(env->loop, out);
}

static int real_sample_status(struct vio_env *env, struct vigil_status *st)
{
    (void)env;
    return vigil_status_sample(st);
}

static void real_random(struct vio_env *env, void *buf, size_t len)
{
    (void)env;
    randombytes_buf(buf, len);
}

/* impl is the notifier (systemd's readiness protocol and watchdog). */
static void real_notify(struct vio_env *env, const char *state)
{
    vio_notifier_send(env->impl, state);
}

int vio_env_real_new(struct vio_env **out, bool with_procs)
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
    e->httpd_open = real_httpd_open;
    e->log_open = real_log_open;
    e->http_open = real_http_open;
    e->sample_status = real_sample_status;
    e->random = real_random;
    e->notify = real_notify;
    e->store_open = real_store_open;
    e->exchange = real_exchange;
    e->exchange_cancel = real_exchange_cancel;
    e->exchange_opts = real_exchange_opts;
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
