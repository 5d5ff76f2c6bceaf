/*
 * The API's token: what a client must show to change the monitor's state.
 *
 * The API reads freely (on loopback by default) but every call with a
 * method other than GET or HEAD needs "Authorization: Bearer TOKEN", the
 * token being the content of monitor.api_token_file. The file is read like
 * a key file (regular, owner-only, small); the token is kept in
 * sodium_malloc memory (guarded, locked, read-only once filled, wiped when
 * freed), and the copy read from the file is wiped at once.
 *
 * What a client presents is compared without leaking the token through
 * time: both sides are hashed (BLAKE2b, 32 bytes) and the hashes compared
 * with sodium_memcmp. The time taken depends on the length of what the
 * client sent, never on how much of it matches, nor on the token's length.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "api.h"

/* The bytes of a token file read at most: a token and white space. */
#define API_TOKEN_FILE_MAX 4096

struct api_token {
    uint8_t hash[crypto_generichash_BYTES]; /* BLAKE2b of the token */
    size_t len;
    char value[API_TOKEN_MAX + 1];
};

/* A token character: visible ASCII but for what would be ambiguous in a header (none is). */
static bool token_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

int api_token_load(struct vio_fs *fs, const char *path, struct api_token **out, char *err,
                   size_t cap)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, cap, "libsodium failed to initialise");
        return -1;
    }
    char *buf = NULL;
    size_t len = 0;
    if (vcfg_read_secret(fs, path, API_TOKEN_FILE_MAX, "a token file",
                         "; a token file holds one token", &buf, &len, err, cap) != 0)
        return -1;
    size_t b = 0, e = len;
    while (b < e && isspace((unsigned char)buf[b]))
        b++;
    while (e > b && isspace((unsigned char)buf[e - 1]))
        e--;
    int rc = -1;
    bool ok = e - b >= API_TOKEN_MIN && e - b <= API_TOKEN_MAX;
    for (size_t i = b; ok && i < e; i++)
        ok = token_char((unsigned char)buf[i]);
    if (!ok) {
        /* Neither the token nor the offending byte is shown: the file holds a secret. */
        snprintf(err, cap,
                 "%s: a token file holds one token of %d to %d printable characters without "
                 "spaces (openssl rand -hex 32 > FILE)",
                 path, API_TOKEN_MIN, API_TOKEN_MAX);
        goto out;
    }
    struct api_token *t = sodium_malloc(sizeof(*t));
    if (!t) {
        snprintf(err, cap, "out of memory");
        goto out;
    }
    memset(t, 0, sizeof(*t));
    t->len = e - b;
    memcpy(t->value, buf + b, t->len);
    crypto_generichash(t->hash, sizeof(t->hash), (const uint8_t *)t->value, t->len, NULL, 0);
    sodium_mprotect_readonly(t);
    *out = t;
    rc = 0;
out:
    sodium_memzero(buf, len);
    free(buf);
    return rc;
}

void api_token_free(struct api_token *t)
{
    /* sodium_free wipes it. */
    if (t)
        sodium_free(t);
}

const char *api_token_value(const struct api_token *t)
{
    return t->value;
}

bool api_token_check(const struct api_token *t, const char *authorization)
{
    static const char scheme[] = "Bearer";
    if (!t || !authorization)
        return false;
    /* The scheme is case-insensitive (RFC 7235), then one or more spaces. */
    const char *p = authorization;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, scheme, sizeof(scheme) - 1) != 0 || p[sizeof(scheme) - 1] != ' ')
        return false;
    p += sizeof(scheme) - 1;
    while (*p == ' ')
        p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    uint8_t h[crypto_generichash_BYTES];
    crypto_generichash(h, sizeof(h), (const uint8_t *)p, n, NULL, 0);
    bool same = sodium_memcmp(h, t->hash, sizeof(h)) == 0;
    sodium_memzero(h, sizeof(h));
    return same;
}
