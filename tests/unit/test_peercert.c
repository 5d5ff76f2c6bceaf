/*
 * Tests of vigil peer-cert and its readers (src/vigil/peercert.c): the CA
 * and member files it writes (in a fresh mkdtemp directory) read back into
 * a SWIM configuration that vigil_swim_new takes, and every way a file can
 * be wrong refused with a message that names it: permissions, header,
 * names, hex, a certificate for another id or key or of another CA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include <vigil/swim.h>

#include "vigil/cmds.h"
#include "vigil/peercert.h"

static char dir[64];
static char err[512];

static const char *path_of(const char *name)
{
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static char *slurp(const char *name)
{
    FILE *f = fopen(path_of(name), "rb");
    assert_non_null(f);
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void put(const char *name, const char *text, mode_t mode)
{
    const char *p = path_of(name);
    unlink(p);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(p, mode);
}

static int run_cli(int argc, const char **argv)
{
    return cmd_peer_cert(argc, (char **)argv);
}

static int setup(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    snprintf(dir, sizeof dir, "/tmp/vigil-peercert-XXXXXX");
    assert_non_null(mkdtemp(dir));
    const char *ca[] = {"peer-cert", "ca", "--out", path_of("ca.key")};
    assert_int_equal(run_cli(4, ca), 0);
    const char *issue[] = {"peer-cert", "issue", "--ca",  path_of("ca.key"),
                           "--id",      "web1",  "--out", path_of("web1.peer")};
    assert_int_equal(run_cli(8, issue), 0);
    const char *other[] = {"peer-cert", "ca", "--out", path_of("other.key")};
    assert_int_equal(run_cli(4, other), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_files_made(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(path_of("ca.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(path_of("ca.key.pub"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(stat(path_of("web1.peer"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(strncmp(slurp("ca.key"), "vigil-peer-ca\nsecret-key=", 25), 0);
    assert_int_equal(strncmp(slurp("ca.key.pub"), "vigil-peer-ca-public\npublic-key=", 32), 0);
    assert_int_equal(strlen(slurp("ca.key.pub")), 21 + 11 + 64 + 1);
    assert_int_equal(strncmp(slurp("web1.peer"), "vigil-peer-member web1\nsecret-key=", 34), 0);
    /* Never over an existing file; usage errors are 2. */
    const char *again[] = {"peer-cert", "ca", "--out", path_of("ca.key")};
    assert_int_equal(run_cli(4, again), 1);
    const char *noid[] = {"peer-cert", "issue", "--ca", path_of("ca.key")};
    assert_int_equal(run_cli(4, noid), 2);
    const char *badid[] = {"peer-cert", "issue", "--ca", path_of("ca.key"), "--id", "a b"};
    assert_int_equal(run_cli(6, badid), 2);
    const char *what[] = {"peer-cert", "revoke"};
    assert_int_equal(run_cli(2, what), 2);
}

/* What the files hold makes a member that signs its leave, and one that checks it. */
static void test_read_into_swim(void **state)
{
    (void)state;
    struct vigil_swim_config c;
    vigil_swim_config_default(&c);
    uint8_t pk[VIGIL_SWIM_SIGN_PK_LEN], pk2[VIGIL_SWIM_SIGN_PK_LEN];
    assert_int_equal(peercert_read_ca_pk(&vio_fs_real, path_of("ca.key.pub"), pk, err, sizeof err),
                     0);
    /* The CA file itself gives the same public key. */
    assert_int_equal(peercert_read_ca_pk(&vio_fs_real, path_of("ca.key"), pk2, err, sizeof err), 0);
    assert_memory_equal(pk, pk2, sizeof pk);
    char id[VIGIL_ID_MAX + 1];
    assert_int_equal(peercert_read_member(&vio_fs_real, path_of("web1.peer"), id, c.sign_sk, c.cert,
                                          &c.cert_len, pk, err, sizeof err),
                     0);
    assert_string_equal(id, "web1");
    assert_int_equal(c.cert_len, 98 + 4);
    c.id = id;
    c.has_sign_key = true;
    c.has_leave_ca = true;
    memcpy(c.leave_ca_pk, pk, sizeof pk);
    c.require_signed_leave = true;
    struct vigil_swim *s = NULL;
    assert_int_equal(vigil_swim_new(&c, 1, &s), 0);
    vigil_swim_free(s);
    /* Under another CA's key the certificate does not verify. */
    uint8_t other[VIGIL_SWIM_SIGN_PK_LEN];
    assert_int_equal(
        peercert_read_ca_pk(&vio_fs_real, path_of("other.key.pub"), other, err, sizeof err), 0);
    assert_int_equal(peercert_read_member(&vio_fs_real, path_of("web1.peer"), id, c.sign_sk, c.cert,
                                          &c.cert_len, other, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "not signed by this cluster's CA"));
}

/* A member file changed in one way each; every one refused with its reason. */
static void test_bad_files(void **state)
{
    (void)state;
    char good[2048];
    snprintf(good, sizeof good, "%s", slurp("web1.peer"));
    char *sk_line = strstr(good, "secret-key=");
    char *cert_line = strstr(good, "certificate=");
    assert_non_null(sk_line);
    assert_non_null(cert_line);
    char text[4096];
    uint8_t sk[VIGIL_SWIM_SIGN_SK_LEN], cert[VIGIL_SWIM_CERT_MAX];
    size_t cl;
    char id[VIGIL_ID_MAX + 1];
    const char *p = path_of("bad.peer");
    struct {
        const char *what, *expect;
    } cases[] = {
        {"header for web2", "the certificate is for 'web1', the file for 'web2'"},
        {"no header id", "the first line is not"},
        {"short secret", "secret-key must be 128 hex digits"},
        {"certificate cut", "certificate is not"},
        {"twice", "given twice"},
        {"unknown", "unknown name"},
        {"missing", "no certificate"},
        {"other key", "another key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *w = cases[i].what;
        if (!strcmp(w, "header for web2")) {
            snprintf(text, sizeof text, "vigil-peer-member web2\n%s", sk_line);
        } else if (!strcmp(w, "no header id")) {
            snprintf(text, sizeof text, "vigil-peer-member\n%s", sk_line);
        } else if (!strcmp(w, "short secret")) {
            snprintf(text, sizeof text, "vigil-peer-member web1\nsecret-key=00\n%s", cert_line);
        } else if (!strcmp(w, "certificate cut")) {
            snprintf(text, sizeof text, "vigil-peer-member web1\n%.*s%.40s\n",
                     (int)(cert_line - sk_line), sk_line, cert_line);
        } else if (!strcmp(w, "twice")) {
            snprintf(text, sizeof text, "vigil-peer-member web1\n%s%s", sk_line, cert_line);
        } else if (!strcmp(w, "unknown")) {
            snprintf(text, sizeof text, "vigil-peer-member web1\n%sexpiry=1\n", sk_line);
        } else if (!strcmp(w, "missing")) {
            snprintf(text, sizeof text, "vigil-peer-member web1\n%.*s", (int)(cert_line - sk_line),
                     sk_line);
        } else {
            /* Another secret key than the certificate's. */
            uint8_t opk[32], osk[64];
            char hex[129];
            crypto_sign_keypair(opk, osk);
            sodium_bin2hex(hex, sizeof hex, osk, sizeof osk);
            snprintf(text, sizeof text, "vigil-peer-member web1\nsecret-key=%s\n%s", hex,
                     cert_line);
        }
        put("bad.peer", text, 0600);
        assert_int_equal(
            peercert_read_member(&vio_fs_real, p, id, sk, cert, &cl, NULL, err, sizeof err), -1);
        if (!strstr(err, cases[i].expect))
            fail_msg("%s: %s", w, err);
        assert_non_null(strstr(err, p));
    }
    /* Comments and blank lines are fine. */
    snprintf(text, sizeof text, "# web1's signing key\n\n%s", good);
    put("ok.peer", text, 0600);
    assert_int_equal(peercert_read_member(&vio_fs_real, path_of("ok.peer"), id, sk, cert, &cl, NULL,
                                          err, sizeof err),
                     0);
    /* Readable by others: refused, as key files are. */
    put("open.peer", good, 0644);
    assert_int_equal(peercert_read_member(&vio_fs_real, path_of("open.peer"), id, sk, cert, &cl,
                                          NULL, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "too open"));
    /* A public key file with the wrong header or length. */
    put("bad.pub", "vigil-peer-ca\npublic-key=00\n", 0644);
    uint8_t pk[32];
    assert_int_equal(peercert_read_ca_pk(&vio_fs_real, path_of("bad.pub"), pk, err, sizeof err),
                     -1);
    put("bad.pub", "vigil-peer-ca-public\npublic-key=0011\n", 0644);
    assert_int_equal(peercert_read_ca_pk(&vio_fs_real, path_of("bad.pub"), pk, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "64 hex digits"));
    assert_int_equal(peercert_read_ca_pk(&vio_fs_real, path_of("none.pub"), pk, err, sizeof err),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_made),
        cmocka_unit_test(test_read_into_swim),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
