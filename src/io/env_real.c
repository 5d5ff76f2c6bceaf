/*
 * The real environment: one of each real implementation of the vio
 * interfaces, for the program's main: the base environment (env_base.c)
 * with the HTTP server and client, the log and the state store.
 */
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

static int real_http_open(struct vio_env *env, struct vio_http **out)
{
    return vio_http_curl_new(env->loop, out);
}

int vio_env_real_new(struct vio_env **out, bool with_procs)
{
    struct vio_env *e;
    int rc = vio_env_base_new(&e, with_procs);
    if (rc)
        return rc;
    e->httpd_open = real_httpd_open;
    e->log_open = real_log_open;
    e->http_open = real_http_open;
    e->store_open = real_store_open;
    *out = e;
    return 0;
}
