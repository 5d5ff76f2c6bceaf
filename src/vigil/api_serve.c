/*
 * Opening the monitor's API as its settings say: the token that guards
 * changes (monitor.api_token_file) and HTTPS (monitor.api_tls_cert and
 * monitor.api_tls_key), every file read through the program's vio_fs.
 *
 * The TLS private key is read like a key file (owner-only, or refused),
 * handed to the server, which copies it while it opens, and wiped at once.
 * Every error names the setting at fault.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api.h"

/*
 * Most bytes of a certificate file (a chain of a few certificates takes a
 * few KiB) and of a private key file (an RSA 8192 key in PEM is under 7 KiB).
 */
#define API_TLS_CERT_MAX (256u << 10)
#define API_TLS_KEY_MAX  (64u << 10)

int api_open(struct api_ctx *c, struct vio_env *env, const struct vcfg_monitor *mc,
             struct vio_httpd **out, char *err, size_t cap)
{
    char msg[512];
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    int rc = -1;
    *out = NULL;
    if (mc->api_token_file &&
        api_token_load(env->fs, mc->api_token_file, &c->token, msg, sizeof(msg)) != 0) {
        snprintf(err, cap, "monitor.api_token_file: %s", msg);
        return -1;
    }
    if (mc->api_tls_cert || mc->api_tls_key) {
        if (!mc->api_tls_cert || !mc->api_tls_key) {
            snprintf(err, cap, "monitor.api_tls_cert and monitor.api_tls_key go together");
            goto out;
        }
        int e = env->fs->ops->read(env->fs, mc->api_tls_cert, API_TLS_CERT_MAX, &cert, &cert_len);
        if (e) {
            snprintf(err, cap, "monitor.api_tls_cert: %s: %s", mc->api_tls_cert,
                     e == -EFBIG ? "longer than 256 KiB" : strerror(-e));
            goto out;
        }
        if (vcfg_read_secret(env->fs, mc->api_tls_key, API_TLS_KEY_MAX, "a TLS key file", NULL,
                             &key, &key_len, msg, sizeof(msg)) != 0) {
            snprintf(err, cap, "monitor.api_tls_key: %s", msg);
            goto out;
        }
    }
    struct vio_httpd_opts opts = {.addr = mc->api, .tls_cert = cert, .tls_key = key};
    if (env->httpd_open(env, &opts, api_handle_cb, c, out, err, cap) != 0)
        goto out;
    c->server = *out;
    c->tls = cert != NULL;
    rc = 0;
out:
    if (key) {
        sodium_memzero(key, key_len);
        free(key);
    }
    free(cert);
    if (rc) {
        api_token_free(c->token);
        c->token = NULL;
    }
    return rc;
}
