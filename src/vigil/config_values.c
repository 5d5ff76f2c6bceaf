/*
 * The syntax of values, apart from libconfig's: integers, durations
 * ("1500ms"), key files (64 hex digits), and the small helpers every part of the layer
 * uses for messages (errors, durations in text) and for the fingerprints
 * of the values read.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "fmt.h"
#include "config_int.h"
#include "io/vio.h"

/*
 * The largest key file read: 64 hex digits and white space. 4 KiB is far
 * more than any sane formatting needs and stops at once on a wrong file.
 */
#define KEY_FILE_MAX 4096

/* --- messages and fingerprints -------------------------------------------- */

static void put_err(char *err, size_t cap, const char *fmt, va_list ap)
{
    if (err != NULL && cap > 0)
        vsnprintf(err, cap, fmt, ap);
}

int vcfg__errf(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put_err(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* 64-bit FNV-1a of a string: the fingerprint of a string setting. */
uint64_t vcfg__print_str(const char *s)
{
    /* FNV-1a's offset basis and prime, as published; NULL and "" differ. */
    uint64_t h = UINT64_C(14695981039346656037);
    if (s == NULL)
        return 0;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* A duration for a message, as fmt.c writes every duration: "2s", "1.5s", "250ms", "40us". */
const char *vcfg__fmt_dur(vigil_time_t ns, char *buf, size_t cap)
{
    vigil_format_duration(ns, buf, cap);
    return buf;
}

/* Seconds (a fixed detector's threshold) to ns, clamped to the duration range. */
vigil_time_t vcfg__secs_to_ns(double s)
{
    if (!(s > 0))
        return 0;
    if (s * 1e9 >= (double)VCFG_DURATION_MAX)
        return VCFG_DURATION_MAX;
    return (vigil_time_t)llround(s * 1e9);
}

/* --- integers and durations ----------------------------------------------- */

int vcfg_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || out == NULL || *s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (d > max || v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int vcfg_parse_duration(const char *s, vigil_time_t *out)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"ms", VIGIL_NSEC_PER_MSEC},
        {"s", VIGIL_NSEC_PER_SEC},
        {"m", 60 * VIGIL_NSEC_PER_SEC},
        {"h", 3600 * VIGIL_NSEC_PER_SEC},
    };
    if (s == NULL || out == NULL)
        return -1;
    /* Digits, an optional fraction, an optional unit; nothing else. */
    const char *p = s;
    int64_t whole = 0;
    bool overflow = false;
    size_t nd = 0;
    for (; *p >= '0' && *p <= '9'; p++, nd++) {
        if (whole > (INT64_MAX - 9) / 10)
            overflow = true;
        else
            whole = whole * 10 + (*p - '0');
    }
    const char *frac = NULL;
    size_t nf = 0;
    if (*p == '.') {
        frac = ++p;
        for (; *p >= '0' && *p <= '9'; p++)
            nf++;
        if (nf == 0)
            return -1; /* "1." */
    }
    if (nd == 0 && nf == 0)
        return -1;
    int64_t unit = VIGIL_NSEC_PER_SEC; /* a bare number is seconds */
    if (*p != '\0') {
        size_t u = 0;
        for (; u < sizeof(units) / sizeof(units[0]); u++)
            if (!strcmp(p, units[u].name))
                break;
        if (u == sizeof(units) / sizeof(units[0]))
            return -1;
        unit = units[u].ns;
    }
    if (overflow || whole > VCFG_DURATION_MAX / unit)
        return -1;
    /*
     * The fraction times the unit, exactly, by Horner's rule from the last
     * digit: q + t = (digit * unit + q' + t') / 10, where q is the integer
     * part and t in [0, 1) the rest. The remainder of the first step alone
     * decides rounding: t >= 0.5 exactly when that remainder is 5 or more.
     * Every intermediate is below 10 * unit, far inside int64_t.
     */
    int64_t q = 0, r = 0;
    for (size_t i = nf; i > 0; i--) {
        int64_t num = (frac[i - 1] - '0') * unit + q;
        q = num / 10;
        r = num % 10;
    }
    int64_t ns = whole * unit;
    if (q + (r >= 5) > VCFG_DURATION_MAX - ns)
        return -1;
    *out = ns + q + (r >= 5);
    return 0;
}

int vcfg_parse_rate(const char *s, double *per_s)
{
    static const struct {
        const char *name;
        double secs;
    } units[] = {
        {"s", 1},
        {"m", 60},
        {"min", 60},
        {"h", 3600},
        {"hour", 3600},
        {"d", 86400},
        {"day", 86400},
        {"w", 7 * 86400.0},
        {"week", 7 * 86400.0},
        {"month", 30 * 86400.0},
        {"y", 365 * 86400.0},
        {"year", 365 * 86400.0},
    };
    if (s == NULL || per_s == NULL)
        return -1;
    const char *slash = strchr(s, '/');
    if (slash == NULL || slash == s || slash - s > 32)
        return -1;
    char num[40];
    memcpy(num, s, (size_t)(slash - s));
    num[slash - s] = '\0';
    /* Digits and one optional fraction: no sign, exponent, space or hex. */
    size_t dots = 0, digits = 0;
    for (const char *p = num; *p; p++) {
        if (*p == '.')
            dots++;
        else if (*p >= '0' && *p <= '9')
            digits++;
        else
            return -1;
    }
    if (dots > 1 || digits == 0)
        return -1;
    double n = strtod(num, NULL);
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++)
        if (!strcmp(slash + 1, units[u].name)) {
            *per_s = n / units[u].secs;
            return 0;
        }
    return -1;
}

/* --- key files ------------------------------------------------------------ */

int vcfg__hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The header lines of key files (docs/protocol.md, "Key files"). */
#define KEY_HDR_MASTER "vigil-master-key"
#define KEY_HDR_NODE   "vigil-node-key "

int vcfg_read_secret(struct vio_fs *fs, const char *path, size_t max, const char *what,
                     const char *too_long, char **out, size_t *len, char *err, size_t cap)
{
    *out = NULL;
    *len = 0;
    /* A FIFO or a device named by mistake must not hang us: regular files only. */
    struct vio_stat st;
    int e = fs->ops->stat(fs, path, &st);
    if (e)
        return vcfg__errf(err, cap, "%s: cannot open: %s", path, strerror(-e));
    if (!S_ISREG(st.mode))
        return vcfg__errf(err, cap, "%s: not a regular file", path);
    /* As ssh does with private keys: a secret others can read is no longer one. */
    if (st.mode & 077)
        return vcfg__errf(err, cap,
                          "permissions %04o for '%s' are too open: %s must be readable "
                          "by its owner only (chmod 600 '%s')",
                          (unsigned)(st.mode & 07777), path, what, path);
    e = fs->ops->read(fs, path, max, out, len);
    if (e == -EFBIG)
        return vcfg__errf(err, cap, "%s: longer than %zu bytes%s", path, max,
                          too_long ? too_long : "");
    if (e)
        return vcfg__errf(err, cap, "%s: cannot read: %s", path, strerror(-e));
    return 0;
}

/* The optional last word of a header line: "key-id=N", N from 0 to VIGIL_WIRE_KEY_ID_MAX. */
#define KEY_HDR_ID "key-id="

/*
 * Takes a trailing " key-id=N" off the header line buf[b, b + *hl): sets
 * *key_id and shortens *hl. Returns 0, or -1 if the word is there but N is
 * not a valid key id.
 */
static int header_key_id(const char *buf, size_t b, size_t *hl, uint8_t *key_id)
{
    size_t w = *hl;
    while (w > 0 && buf[b + w - 1] != ' ')
        w--;
    size_t wl = *hl - w;
    if (wl <= strlen(KEY_HDR_ID) || memcmp(buf + b + w, KEY_HDR_ID, strlen(KEY_HDR_ID)) != 0)
        return 0;
    unsigned v = 0;
    for (size_t i = w + strlen(KEY_HDR_ID); i < *hl; i++) {
        if (buf[b + i] < '0' || buf[b + i] > '9')
            return -1;
        v = v * 10 + (unsigned)(buf[b + i] - '0');
        if (v > VIGIL_WIRE_KEY_ID_MAX)
            return -1;
    }
    *key_id = (uint8_t)v;
    *hl = w;
    while (*hl > 0 && buf[b + *hl - 1] == ' ')
        (*hl)--;
    return 0;
}

int vcfg_read_key(const char *path, uint8_t key[VIGIL_WIRE_KEY_LEN], enum vcfg_key_kind *kind,
                  char *node_id, char *err, size_t cap)
{
    return vcfg_read_key_fs(&vio_fs_real, path, key, kind, node_id, NULL, err, cap);
}

int vcfg_read_key_fs(struct vio_fs *fs, const char *path, uint8_t key[VIGIL_WIRE_KEY_LEN],
                     enum vcfg_key_kind *kind, char *node_id, uint8_t *key_id, char *err,
                     size_t cap)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = -1;
    uint8_t kid = 0;

    memset(key, 0, VIGIL_WIRE_KEY_LEN);
    *kind = VCFG_KEY_CLUSTER;
    if (node_id)
        node_id[0] = '\0';
    if (key_id)
        *key_id = 0;
    if (path == NULL || *path == '\0')
        return vcfg__errf(err, cap, "no key file named");
    if (vcfg_read_secret(fs, path, KEY_FILE_MAX, "a key file", "; a key file holds 64 hex digits",
                         &buf, &len, err, cap) != 0)
        return -1;
    size_t b = 0, end = len;
    while (b < end && isspace((unsigned char)buf[b]))
        b++;
    /* The header line, if any, says what the key is. */
    size_t hdr_end = b;
    while (hdr_end < end && buf[hdr_end] != '\n')
        hdr_end++;
    size_t hl = hdr_end - b;
    while (hl > 0 && isspace((unsigned char)buf[b + hl - 1]))
        hl--;
    if (hl > 0 && !isxdigit((unsigned char)buf[b]) && header_key_id(buf, b, &hl, &kid) != 0) {
        vcfg__errf(err, cap, "%s: the header's key-id is not a number from 0 to %d", path,
                   VIGIL_WIRE_KEY_ID_MAX);
        goto out;
    }
    if (hl == strlen(KEY_HDR_MASTER) && !memcmp(buf + b, KEY_HDR_MASTER, hl)) {
        *kind = VCFG_KEY_MASTER;
        b = hdr_end;
    } else if (hl > strlen(KEY_HDR_NODE) && !memcmp(buf + b, KEY_HDR_NODE, strlen(KEY_HDR_NODE))) {
        size_t il = hl - strlen(KEY_HDR_NODE);
        const char *id = buf + b + strlen(KEY_HDR_NODE);
        if (!vigil_id_valid(id, il)) {
            vcfg__errf(err, cap, "%s: the header names no valid node id", path);
            goto out;
        }
        *kind = VCFG_KEY_NODE;
        if (node_id) {
            memcpy(node_id, id, il);
            node_id[il] = '\0';
        }
        b = hdr_end;
    } else if (hl > 0 && !isxdigit((unsigned char)buf[b])) {
        vcfg__errf(err, cap,
                   "%s: the first line is neither \"vigil-master-key [key-id=N]\" nor "
                   "\"vigil-node-key ID [key-id=N]\"",
                   path);
        goto out;
    }
    while (b < end && isspace((unsigned char)buf[b]))
        b++;
    while (end > b && isspace((unsigned char)buf[end - 1]))
        end--;
    if (b == end) {
        vcfg__errf(err, cap, "%s: empty; a key file holds 64 hex digits (vigil keygen writes one)",
                   path);
        goto out;
    }
    for (size_t i = b; i < end; i++) {
        if (vcfg__hexval((unsigned char)buf[i]) < 0) {
            /* The offending byte is not shown: the file holds a secret. */
            vcfg__errf(err, cap, "%s: byte %zu is not a hex digit; a key file holds 64 hex digits",
                       path, i + 1);
            goto out;
        }
    }
    if (end - b != 2 * VIGIL_WIRE_KEY_LEN) {
        vcfg__errf(err, cap, "%s: %zu hex digits; a key file holds 64 (a %d-byte key)", path,
                   end - b, VIGIL_WIRE_KEY_LEN);
        goto out;
    }
    for (size_t i = 0; i < VIGIL_WIRE_KEY_LEN; i++)
        key[i] = (uint8_t)(vcfg__hexval((unsigned char)buf[b + 2 * i]) << 4 |
                           vcfg__hexval((unsigned char)buf[b + 2 * i + 1]));
    if (key_id)
        *key_id = kid;
    rc = 0;
out:
    if (rc)
        sodium_memzero(key, VIGIL_WIRE_KEY_LEN);
    sodium_memzero(buf, len);
    free(buf);
    return rc;
}

int vcfg_monitor_key(struct vcfg_monitor *m, const char *path, char *err, size_t cap)
{
    /* A key given again (a flag after the file) replaces the list. */
    vcfg_monitor_keys_clear(m);
    return vcfg__monitor_key_add(m, &vio_fs_real, path, err, cap);
}

void vcfg_monitor_keys_clear(struct vcfg_monitor *m)
{
    for (size_t i = 0; i < m->n_key_files; i++) {
        free(m->key_files[i]);
        m->key_files[i] = NULL;
    }
    m->n_key_files = 0;
    sodium_memzero(m->keys, sizeof(m->keys));
    m->n_keys = 0;
    sodium_memzero(m->core.key, sizeof(m->core.key));
    m->core.has_key = false;
    m->core.key_is_master = false;
    m->core.key_id = 0;
}

int vcfg_monitor_read_keys(struct vio_fs *fs, char *const *paths, size_t n,
                           struct vigil_key keys[VIGIL_KEYS_MAX], char *err, size_t cap)
{
    if (n == 0 || n > VIGIL_KEYS_MAX)
        return vcfg__errf(err, cap, "a monitor holds 1 to %d keys, not %zu", VIGIL_KEYS_MAX, n);
    for (size_t i = 0; i < n; i++) {
        enum vcfg_key_kind kind;
        char id[VIGIL_ID_MAX + 1];
        if (vcfg_read_key_fs(fs, paths[i], keys[i].key, &kind, id, &keys[i].id, err, cap) != 0)
            goto fail;
        if (kind == VCFG_KEY_NODE) {
            vcfg__errf(err, cap,
                       "%s: a node key (of %s); a monitor needs the master key "
                       "(\"vigil-master-key\")",
                       paths[i], id);
            goto fail;
        }
        keys[i].master = kind == VCFG_KEY_MASTER;
        for (size_t j = 0; j < i; j++) {
            if (keys[j].id == keys[i].id) {
                vcfg__errf(err, cap,
                           "%s: key id %u again (also %s): keys held together need distinct ids "
                           "(the key-id=N of the header line)",
                           paths[i], (unsigned)keys[i].id, paths[j]);
                goto fail;
            }
        }
    }
    return 0;
fail:
    sodium_memzero(keys, VIGIL_KEYS_MAX * sizeof(*keys));
    return -1;
}

int vcfg__monitor_key_add(struct vcfg_monitor *m, struct vio_fs *fs, const char *path, char *err,
                          size_t cap)
{
    if (m->n_key_files >= VIGIL_KEYS_MAX)
        return vcfg__errf(err, cap, "%s: more than %d key files", path, VIGIL_KEYS_MAX);
    char *copy = strdup(path);
    if (!copy)
        return vcfg__errf(err, cap, "out of memory");
    m->key_files[m->n_key_files] = copy;
    struct vigil_key keys[VIGIL_KEYS_MAX];
    if (vcfg_monitor_read_keys(fs, m->key_files, m->n_key_files + 1, keys, err, cap)) {
        free(copy);
        m->key_files[m->n_key_files] = NULL;
        return -1;
    }
    m->n_key_files++;
    memcpy(m->keys, keys, sizeof(keys));
    sodium_memzero(keys, sizeof(keys));
    m->n_keys = m->n_key_files;
    /* The first key is the core's own; vigil_monitor_set_keys adds the rest. */
    m->core.has_key = true;
    m->core.key_is_master = m->keys[0].master;
    m->core.key_id = m->keys[0].id;
    memcpy(m->core.key, m->keys[0].key, sizeof(m->core.key));
    return 0;
}

int vcfg_agent_key(struct vcfg_agent *a, const char *path, char *err, size_t cap)
{
    return vcfg__agent_key(a, &vio_fs_real, path, err, cap);
}

int vcfg__agent_key(struct vcfg_agent *a, struct vio_fs *fs, const char *path, char *err,
                    size_t cap)
{
    enum vcfg_key_kind kind;
    if (vcfg_read_key_fs(fs, path, a->key, &kind, a->key_node, &a->key_id, err, cap) != 0)
        return -1;
    if (kind == VCFG_KEY_MASTER) {
        sodium_memzero(a->key, sizeof(a->key));
        return vcfg__errf(err, cap,
                          "%s: the master key; an agent needs its own node key "
                          "(vigil keygen --node ID --master %s -o FILE)",
                          path, path);
    }
    char *copy = strdup(path);
    if (!copy) {
        sodium_memzero(a->key, sizeof(a->key));
        return vcfg__errf(err, cap, "out of memory");
    }
    free(a->key_file);
    a->key_file = copy;
    a->has_key = true;
    return 0;
}
