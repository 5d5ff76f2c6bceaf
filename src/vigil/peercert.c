/*
 * vigil peer-cert: the signing keys of peer-to-peer mode (docs/peer.md,
 * "Signed leaves"). `ca` makes the cluster's certificate authority, an
 * Ed25519 key pair; `issue` makes a member's key pair and its certificate,
 * signed by the CA. The file formats are in peercert.h; `vigil peer` reads
 * them with the readers below.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include <vigil/swim.h>

#include "cmds.h"
#include "config.h"
#include "fmt.h"
#include "peercert.h"

/* The largest file read: the member file's header, secret key and certificate, with room. */
#define PEERCERT_FILE_MAX 4096

static int errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- reading ---- */

/* The fields of a file: each line's name and value (pointers into the buffer). */
struct pc_field {
    const char *name;
    char *value; /* NULL: not seen */
};

/*
 * Splits buf (NUL terminated, modified) into its header line (*hdr) and
 * "name=value" lines, one per field in f (each exactly once; any other
 * name is an error). Blank lines and lines starting with '#' are skipped.
 */
static int pc_parse(const char *path, char *buf, char **hdr, struct pc_field *f, size_t nf,
                    char *err, size_t cap)
{
    *hdr = NULL;
    for (char *line = buf, *next; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
            line[--n] = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '\0' || *line == '#')
            continue;
        if (*hdr == NULL) {
            *hdr = line;
            continue;
        }
        char *eq = strchr(line, '=');
        if (eq == NULL)
            return errf(err, cap, "%s: a line that is not name=value", path);
        *eq = '\0';
        size_t i = 0;
        while (i < nf && strcmp(f[i].name, line) != 0)
            i++;
        if (i == nf)
            return errf(err, cap, "%s: unknown name '%s'", path, vigil_quote(line).s);
        if (f[i].value != NULL)
            return errf(err, cap, "%s: '%s' given twice", path, f[i].name);
        f[i].value = eq + 1;
    }
    if (*hdr == NULL)
        return errf(err, cap, "%s: empty", path);
    for (size_t i = 0; i < nf; i++)
        if (f[i].value == NULL)
            return errf(err, cap, "%s: no %s", path, f[i].name);
    return 0;
}

/* Exactly n bytes from hex digits (no separators). */
static int pc_hex(const char *path, const char *name, const char *hex, uint8_t *out, size_t n,
                  char *err, size_t cap)
{
    size_t got = 0;
    const char *end = NULL;
    if (strlen(hex) != 2 * n || sodium_hex2bin(out, n, hex, strlen(hex), NULL, &got, &end) != 0 ||
        got != n || *end != '\0') {
        sodium_memzero(out, n);
        return errf(err, cap, "%s: %s must be %zu hex digits", path, name, 2 * n);
    }
    return 0;
}

/* Reads a file into a new NUL-terminated buffer: a secret (owner-only) one or any. */
static int pc_read(struct vio_fs *fs, const char *path, bool secret, char **buf, size_t *len,
                   char *err, size_t cap)
{
    if (secret)
        return vcfg_read_secret(fs, path, PEERCERT_FILE_MAX, "a file with a secret key", NULL, buf,
                                len, err, cap);
    int e = fs->ops->read(fs, path, PEERCERT_FILE_MAX, buf, len);
    if (e == -EFBIG)
        return errf(err, cap, "%s: longer than %d bytes", path, PEERCERT_FILE_MAX);
    if (e)
        return errf(err, cap, "%s: cannot read: %s", path, strerror(-e));
    return 0;
}

static void pc_free(char *buf, size_t len)
{
    if (buf) {
        sodium_memzero(buf, len);
        free(buf);
    }
}

int peercert_read_ca_pk(struct vio_fs *fs, const char *path, uint8_t pk[VIGIL_SWIM_SIGN_PK_LEN],
                        char *err, size_t cap)
{
    char *buf = NULL, *hdr;
    size_t len = 0;
    if (pc_read(fs, path, false, &buf, &len, err, cap) != 0)
        return -1;
    int rc = -1;
    size_t hl = strcspn(buf, "\r\n");
    if (hl == strlen(PEERCERT_HDR_CA) && !strncmp(buf, PEERCERT_HDR_CA, hl)) {
        /* The CA file itself: a secret, so kept as one. */
        pc_free(buf, len);
        uint8_t sk[VIGIL_SWIM_SIGN_SK_LEN];
        rc = peercert_read_ca(fs, path, sk, pk, err, cap);
        sodium_memzero(sk, sizeof sk);
        return rc;
    }
    struct pc_field f[] = {{"public-key", NULL}};
    if (pc_parse(path, buf, &hdr, f, 1, err, cap) != 0)
        goto out;
    if (strcmp(hdr, PEERCERT_HDR_PUBLIC) != 0) {
        errf(err, cap, "%s: the first line is not \"" PEERCERT_HDR_PUBLIC "\"", path);
        goto out;
    }
    rc = pc_hex(path, "public-key", f[0].value, pk, VIGIL_SWIM_SIGN_PK_LEN, err, cap);
out:
    pc_free(buf, len);
    return rc;
}

int peercert_read_ca(struct vio_fs *fs, const char *path, uint8_t sk[VIGIL_SWIM_SIGN_SK_LEN],
                     uint8_t pk[VIGIL_SWIM_SIGN_PK_LEN], char *err, size_t cap)
{
    char *buf = NULL, *hdr;
    size_t len = 0;
    int rc = -1;
    if (pc_read(fs, path, true, &buf, &len, err, cap) != 0)
        return -1;
    struct pc_field f[] = {{"secret-key", NULL}, {"public-key", NULL}};
    uint8_t derived[VIGIL_SWIM_SIGN_PK_LEN];
    if (pc_parse(path, buf, &hdr, f, 2, err, cap) != 0)
        goto out;
    if (strcmp(hdr, PEERCERT_HDR_CA) != 0) {
        errf(err, cap, "%s: the first line is not \"" PEERCERT_HDR_CA "\"", path);
        goto out;
    }
    if (pc_hex(path, "secret-key", f[0].value, sk, VIGIL_SWIM_SIGN_SK_LEN, err, cap) != 0 ||
        pc_hex(path, "public-key", f[1].value, pk, VIGIL_SWIM_SIGN_PK_LEN, err, cap) != 0)
        goto out;
    crypto_sign_ed25519_sk_to_pk(derived, sk);
    if (sodium_memcmp(derived, pk, sizeof derived) != 0) {
        errf(err, cap, "%s: the public key is not the secret key's", path);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        sodium_memzero(sk, VIGIL_SWIM_SIGN_SK_LEN);
    pc_free(buf, len);
    return rc;
}

int peercert_read_member(struct vio_fs *fs, const char *path, char id[VIGIL_ID_MAX + 1],
                         uint8_t sk[VIGIL_SWIM_SIGN_SK_LEN], uint8_t cert[VIGIL_SWIM_CERT_MAX],
                         size_t *cert_len, const uint8_t *ca_pk, char *err, size_t cap)
{
    char *buf = NULL, *hdr;
    size_t len = 0;
    int rc = -1;
    id[0] = '\0';
    *cert_len = 0;
    if (pc_read(fs, path, true, &buf, &len, err, cap) != 0)
        return -1;
    struct pc_field f[] = {{"secret-key", NULL}, {"certificate", NULL}};
    if (pc_parse(path, buf, &hdr, f, 2, err, cap) != 0)
        goto out;
    size_t pl = strlen(PEERCERT_HDR_MEMBER);
    if (strncmp(hdr, PEERCERT_HDR_MEMBER, pl) != 0 || hdr[pl] != ' ' ||
        !vigil_id_valid(hdr + pl + 1, strlen(hdr + pl + 1))) {
        errf(err, cap, "%s: the first line is not \"" PEERCERT_HDR_MEMBER " ID\"", path);
        goto out;
    }
    const char *hid = hdr + pl + 1;
    if (pc_hex(path, "secret-key", f[0].value, sk, VIGIL_SWIM_SIGN_SK_LEN, err, cap) != 0)
        goto out;
    size_t hexlen = strlen(f[1].value);
    if (hexlen % 2 != 0 || hexlen / 2 > VIGIL_SWIM_CERT_MAX ||
        pc_hex(path, "certificate", f[1].value, cert, hexlen / 2, err, cap) != 0) {
        errf(err, cap, "%s: the certificate is not hex digits of a certificate", path);
        goto out;
    }
    struct vigil_swim_cert c;
    if (vigil_swim_cert_parse(cert, hexlen / 2, &c) != 0) {
        errf(err, cap, "%s: the certificate is not one (wrong version or length)", path);
        goto out;
    }
    if (strcmp(c.id, hid) != 0) {
        errf(err, cap, "%s: the certificate is for '%s', the file for '%s'", path, c.id, hid);
        goto out;
    }
    uint8_t pk[VIGIL_SWIM_SIGN_PK_LEN];
    crypto_sign_ed25519_sk_to_pk(pk, sk);
    if (sodium_memcmp(pk, c.pk, sizeof pk) != 0) {
        errf(err, cap, "%s: the certificate is for another key than the secret key", path);
        goto out;
    }
    if (ca_pk != NULL && vigil_swim_cert_verify(ca_pk, cert, hexlen / 2, NULL) != 0) {
        errf(err, cap, "%s: the certificate was not signed by this cluster's CA", path);
        goto out;
    }
    memcpy(id, hid, strlen(hid) + 1);
    *cert_len = hexlen / 2;
    rc = 0;
out:
    if (rc != 0)
        sodium_memzero(sk, VIGIL_SWIM_SIGN_SK_LEN);
    pc_free(buf, len);
    return rc;
}

/* ---- vigil peer-cert ---- */

static int usage(FILE *f, int status)
{
    fprintf(f, "usage: vigil peer-cert ca --out CA_FILE\n"
               "       vigil peer-cert issue --ca CA_FILE --id ID [--out FILE]\n"
               "The first form makes a peer-to-peer cluster's signing authority: CA_FILE\n"
               "(its secret key: keep it off the members) and CA_FILE.pub (its public key,\n"
               "for every member); it prints the public key. The second makes member ID's\n"
               "signing key and its certificate, signed by the CA, into FILE (for member\n"
               "ID only), or prints them. New files are readable by their owner only\n"
               "(CA_FILE.pub by everyone); an existing file is never replaced.\n");
    return status;
}

/* Writes text to a new file (never an existing one), or to stdout without a path. */
static int emit(const char *path, const char *text, size_t len, uint32_t mode)
{
    if (path == NULL) {
        if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
            fprintf(stderr, "vigil peer-cert: %s\n", strerror(errno));
            return CLI_EXIT_FAILURE;
        }
        return 0;
    }
    int e = vio_fs_real.ops->create(&vio_fs_real, path, text, len, mode);
    if (e) {
        fprintf(stderr, "vigil peer-cert: %s: %s\n", path, strerror(-e));
        return CLI_EXIT_FAILURE;
    }
    return 0;
}

static int cmd_ca(const char *out)
{
    if (out == NULL) {
        fprintf(stderr, "vigil peer-cert ca: --out CA_FILE is needed\n");
        return CLI_EXIT_USAGE;
    }
    uint8_t pk[VIGIL_SWIM_SIGN_PK_LEN], sk[VIGIL_SWIM_SIGN_SK_LEN];
    crypto_sign_keypair(pk, sk);
    char skh[2 * VIGIL_SWIM_SIGN_SK_LEN + 1], pkh[2 * VIGIL_SWIM_SIGN_PK_LEN + 1];
    sodium_bin2hex(skh, sizeof skh, sk, sizeof sk);
    sodium_bin2hex(pkh, sizeof pkh, pk, sizeof pk);
    sodium_memzero(sk, sizeof sk);
    char text[64 + sizeof skh + sizeof pkh];
    int n =
        snprintf(text, sizeof text, PEERCERT_HDR_CA "\nsecret-key=%s\npublic-key=%s\n", skh, pkh);
    sodium_memzero(skh, sizeof skh);
    int status = emit(out, text, (size_t)n, 0600);
    sodium_memzero(text, sizeof text);
    if (status != 0)
        return status;
    char pub[64 + sizeof pkh], pubpath[4096];
    n = snprintf(pub, sizeof pub, PEERCERT_HDR_PUBLIC "\npublic-key=%s\n", pkh);
    if (snprintf(pubpath, sizeof pubpath, "%s.pub", out) >= (int)sizeof pubpath) {
        fprintf(stderr, "vigil peer-cert: %s.pub: path too long\n", out);
        return CLI_EXIT_FAILURE;
    }
    status = emit(pubpath, pub, (size_t)n, 0644);
    printf("public-key=%s\n", pkh);
    return status;
}

static int cmd_issue(const char *ca, const char *id, const char *out)
{
    if (ca == NULL || id == NULL) {
        fprintf(stderr, "vigil peer-cert issue: --ca CA_FILE and --id ID are needed\n");
        return CLI_EXIT_USAGE;
    }
    if (!vigil_id_valid(id, strlen(id))) {
        fprintf(stderr, "vigil peer-cert: invalid member id '%s' (1 to %d of A-Z a-z 0-9 . _ -)\n",
                vigil_quote(id).s, VIGIL_ID_MAX);
        return CLI_EXIT_USAGE;
    }
    uint8_t ca_sk[VIGIL_SWIM_SIGN_SK_LEN], ca_pk[VIGIL_SWIM_SIGN_PK_LEN];
    char err[512];
    if (peercert_read_ca(&vio_fs_real, ca, ca_sk, ca_pk, err, sizeof err) != 0) {
        fprintf(stderr, "vigil peer-cert: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    uint8_t pk[VIGIL_SWIM_SIGN_PK_LEN], sk[VIGIL_SWIM_SIGN_SK_LEN], cert[VIGIL_SWIM_CERT_MAX];
    crypto_sign_keypair(pk, sk);
    int cl = vigil_swim_cert_issue(ca_sk, id, pk, cert, sizeof cert);
    sodium_memzero(ca_sk, sizeof ca_sk);
    if (cl < 0) {
        sodium_memzero(sk, sizeof sk);
        fprintf(stderr, "vigil peer-cert: cannot issue: %s\n", vigil_strerror(cl));
        return CLI_EXIT_FAILURE;
    }
    char skh[2 * VIGIL_SWIM_SIGN_SK_LEN + 1], certh[2 * VIGIL_SWIM_CERT_MAX + 1];
    sodium_bin2hex(skh, sizeof skh, sk, sizeof sk);
    sodium_memzero(sk, sizeof sk);
    sodium_bin2hex(certh, sizeof certh, cert, (size_t)cl);
    char text[64 + VIGIL_ID_MAX + sizeof skh + sizeof certh];
    int n = snprintf(text, sizeof text, PEERCERT_HDR_MEMBER " %s\nsecret-key=%s\ncertificate=%s\n",
                     id, skh, certh);
    sodium_memzero(skh, sizeof skh);
    int status = emit(out, text, (size_t)n, 0600);
    sodium_memzero(text, sizeof text);
    return status;
}

int cmd_peer_cert(int argc, char **argv)
{
    enum { OPT_CA = 256, OPT_ID, OPT_OUT };
    static const struct option opts[] = {
        {"ca", required_argument, 0, OPT_CA},
        {"id", required_argument, 0, OPT_ID},
        {"out", required_argument, 0, OPT_OUT},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    if (argc < 2)
        return usage(stderr, CLI_EXIT_USAGE);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
        return usage(stdout, 0);
    const char *what = argv[1], *ca = NULL, *id = NULL, *out = NULL;
    if (strcmp(what, "ca") != 0 && strcmp(what, "issue") != 0) {
        fprintf(stderr, "vigil peer-cert: unknown command '%s' (ca or issue)\n",
                vigil_quote(what).s);
        return CLI_EXIT_USAGE;
    }
    optind = 0;
    for (int o; (o = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1;) {
        if (o == OPT_CA)
            ca = optarg;
        else if (o == OPT_ID)
            id = optarg;
        else if (o == OPT_OUT)
            out = optarg;
        else
            return usage(o == 'h' ? stdout : stderr, o == 'h' ? 0 : CLI_EXIT_USAGE);
    }
    if (optind < argc - 1) {
        fprintf(stderr, "vigil peer-cert: unexpected argument '%s'\n",
                vigil_quote(argv[optind + 1]).s);
        return CLI_EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "vigil peer-cert: libsodium failed to initialize\n");
        return CLI_EXIT_FAILURE;
    }
    if (!strcmp(what, "ca")) {
        if (ca || id) {
            fprintf(stderr, "vigil peer-cert ca: takes only --out\n");
            return CLI_EXIT_USAGE;
        }
        return cmd_ca(out);
    }
    return cmd_issue(ca, id, out);
}
