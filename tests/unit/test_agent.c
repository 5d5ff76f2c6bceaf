/*
 * Tests of src/vigil/agent.c: the status file format, vigil set's atomic
 * merge, vigil keygen, and vigil agent itself, run in a child process that
 * sends heartbeats to a socket this test binds on 127.0.0.1 until it is
 * sent SIGTERM.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include <vigil/vigil.h>

#include "vigil/agent.h"
#include "vigil/cmds.h"

/* How long the test waits for one datagram before it fails. */
#define RECV_TIMEOUT_MS 3000
/* Heartbeats the test waits through for the agent to pick up a change. */
#define MAX_BEATS_FOR_CHANGE 40

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vigil-test-agent-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in_dir(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

/* Replaces path with content atomically, so a running agent never sees half of it. */
static void write_file(const char *path, const char *content)
{
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    assert_int_equal(fputs(content, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* Reads a whole (small) file into buf; returns its length. */
static size_t read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return n;
}

static size_t count_substr(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- the status file format ----------------------------------------------- */

static void test_status_line(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        enum agent_line want;
        const char *key, *value;
    } cases[] = {
        {"a=1", AGENT_LINE_PAIR, "a", "1"},
        {"  role = primary db  ", AGENT_LINE_PAIR, "role", "primary db"},
        {"k=", AGENT_LINE_PAIR, "k", ""},
        {"k=v=w", AGENT_LINE_PAIR, "k", "v=w"},
        {"k=x # not a comment", AGENT_LINE_PAIR, "k", "x # not a comment"},
        {"k=1\r", AGENT_LINE_PAIR, "k", "1"},
        {"a.b_c-D9=~!", AGENT_LINE_PAIR, "a.b_c-D9", "~!"},
        {"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=1", AGENT_LINE_PAIR, "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
         "1"},
        {"k=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv", AGENT_LINE_PAIR, "k",
         "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"},
        {"", AGENT_LINE_SKIP, NULL, NULL},
        {"   \t", AGENT_LINE_SKIP, NULL, NULL},
        {"# a=1", AGENT_LINE_SKIP, NULL, NULL},
        {"   #x", AGENT_LINE_SKIP, NULL, NULL},
        {"novalue", AGENT_LINE_BAD, NULL, NULL},
        {"=1", AGENT_LINE_BAD, NULL, NULL},
        {"bad key=1", AGENT_LINE_BAD, NULL, NULL},
        {"k/x=1", AGENT_LINE_BAD, NULL, NULL},
        {"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=1", AGENT_LINE_BAD, NULL, NULL}, /* 33 */
        {"k=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv", AGENT_LINE_BAD, NULL, NULL},
        {"k=tab\there", AGENT_LINE_BAD, NULL, NULL},
        {"k=caf\xc3\xa9", AGENT_LINE_BAD, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        char *k = NULL, *v = NULL;
        const char *why = NULL;
        enum agent_line r = agent_status_line(buf, strlen(buf), &k, &v, &why);
        if (r != cases[i].want)
            fail_msg("\"%s\": got %d, want %d", cases[i].in, (int)r, (int)cases[i].want);
        if (r == AGENT_LINE_PAIR) {
            assert_string_equal(k, cases[i].key);
            assert_string_equal(v, cases[i].value);
        } else if (r == AGENT_LINE_BAD) {
            assert_non_null(why);
        }
    }
    /* A NUL inside the line is refused, not silently cut. */
    char nul[] = "k=a\0b";
    char *k, *v;
    const char *why;
    assert_int_equal(agent_status_line(nul, sizeof(nul) - 1, &k, &v, &why), AGENT_LINE_BAD);
}

static void test_pairs_set(void **state)
{
    (void)state;
    struct agent_pairs l = {.n = 0};
    assert_int_equal(agent_pairs_set(&l, "a", "1"), 0);
    assert_int_equal(agent_pairs_set(&l, "b", "2"), 0);
    assert_int_equal(agent_pairs_set(&l, "a", "3"), 0); /* replaced in place */
    assert_int_equal(l.n, 2);
    assert_string_equal(l.p[0].key, "a");
    assert_string_equal(l.p[0].value, "3");
    assert_int_equal(agent_pairs_set(&l, "a", NULL), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.p[0].key, "b");
    assert_int_equal(agent_pairs_set(&l, "zz", NULL), 0); /* absent: nothing to do */
    assert_int_equal(agent_pairs_set(&l, "bad key", "1"), -VIGIL_EINVAL);
    assert_int_equal(agent_pairs_set(&l, "k", "\x01"), -VIGIL_EINVAL);
    for (int i = 1; i < VIGIL_CUSTOM_MAX; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(agent_pairs_set(&l, key, "x"), 0);
    }
    assert_int_equal(l.n, VIGIL_CUSTOM_MAX);
    assert_int_equal(agent_pairs_set(&l, "one-more", "x"), -VIGIL_EFULL);
    assert_int_equal(agent_pairs_set(&l, "b", "still fine"), 0);
}

static void test_status_read(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "read.status");
    write_file(path, "# maintained by deploy\n"
                     "version = 1.4.2\n"
                     "bad line\n"
                     "\n"
                     "base=from-file\r\n"
                     "version=1.4.3\n"
                     "t=caf\xc3\xa9\n"
                     "last=no-newline");
    struct agent_pairs base = {.n = 0}, out;
    assert_int_equal(agent_pairs_set(&base, "base", "static"), 0);
    assert_int_equal(agent_pairs_set(&base, "zone", "a"), 0);

    char *msgs = NULL;
    size_t msgs_len = 0;
    FILE *errf = open_memstream(&msgs, &msgs_len);
    assert_non_null(errf);
    assert_int_equal(agent_status_read(path, &base, &out, errf), 0);
    fclose(errf);

    /* The base first, overridden by the file; a later line wins. */
    assert_int_equal(out.n, 4);
    assert_string_equal(out.p[0].key, "base");
    assert_string_equal(out.p[0].value, "from-file");
    assert_string_equal(out.p[1].key, "zone");
    assert_string_equal(out.p[2].key, "version");
    assert_string_equal(out.p[2].value, "1.4.3");
    assert_string_equal(out.p[3].key, "last");
    assert_string_equal(out.p[3].value, "no-newline");
    /* Each bad line is named with its file and line number. */
    char want[192];
    snprintf(want, sizeof(want), "%s:3: expected key=value", path);
    assert_non_null(strstr(msgs, want));
    snprintf(want, sizeof(want), "%s:7: invalid value", path);
    assert_non_null(strstr(msgs, want));
    assert_int_equal(count_substr(msgs, "\n"), 2);
    free(msgs);

    /* A missing file is no pairs and no complaint. */
    path_in_dir(path, sizeof(path), "absent.status");
    msgs = NULL;
    errf = open_memstream(&msgs, &msgs_len);
    assert_int_equal(agent_status_read(path, &base, &out, errf), 0);
    fclose(errf);
    assert_int_equal(out.n, 2);
    assert_int_equal(msgs_len, 0);
    free(msgs);

    /* Seventeen pairs: the 17th is reported and skipped. */
    path_in_dir(path, sizeof(path), "many.status");
    char many[1024] = "";
    for (int i = 0; i < VIGIL_CUSTOM_MAX + 1; i++) {
        size_t used = strlen(many);
        snprintf(many + used, sizeof(many) - used, "k%d=%d\n", i, i);
    }
    write_file(path, many);
    struct agent_pairs none = {.n = 0};
    msgs = NULL;
    errf = open_memstream(&msgs, &msgs_len);
    assert_int_equal(agent_status_read(path, &none, &out, errf), 0);
    fclose(errf);
    assert_int_equal(out.n, VIGIL_CUSTOM_MAX);
    assert_string_equal(out.p[VIGIL_CUSTOM_MAX - 1].key, "k15");
    snprintf(want, sizeof(want), "%s:17: more than 16 custom pairs; 'k16' skipped", path);
    assert_non_null(strstr(msgs, want));
    free(msgs);

    /* A file over the size limit is refused whole. */
    path_in_dir(path, sizeof(path), "huge.status");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < AGENT_STATUS_FILE_MAX / 8 + 1; i++)
        fputs("# pad..\n", f);
    fclose(f);
    msgs = NULL;
    errf = open_memstream(&msgs, &msgs_len);
    assert_int_equal(agent_status_read(path, &base, &out, errf), -1);
    fclose(errf);
    assert_int_equal(out.n, 2);
    assert_non_null(strstr(msgs, "larger than"));
    free(msgs);
}

/* ---- vigil set ------------------------------------------------------------ */

static int run_set(const char *path, const char *a1, const char *a2, const char *a3)
{
    char *argv[8];
    int argc = 0;
    argv[argc++] = (char *)"set";
    argv[argc++] = (char *)"--status-file";
    argv[argc++] = (char *)path;
    if (a1)
        argv[argc++] = (char *)a1;
    if (a2)
        argv[argc++] = (char *)a2;
    if (a3)
        argv[argc++] = (char *)a3;
    argv[argc] = NULL;
    return cmd_set(argc, argv);
}

static void test_set_command(void **state)
{
    (void)state;
    char path[128], buf[4096];
    path_in_dir(path, sizeof(path), "set.status");

    /* Creates the file (mode 0644: an agent running as another user reads it). */
    assert_int_equal(run_set(path, "role=primary", "version=1.0", NULL), 0);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "role=primary\nversion=1.0\n");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);

    /* Comments, order and unknown lines stay; assigned keys change in place. */
    write_file(path, "# deploy state\nrole=primary\nbad line\nversion = 1.0\nx=1\nversion=0.9\n");
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(run_set(path, "version=1.1", "x=", "new=yes"), 0);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "# deploy state\nrole=primary\nbad line\nversion=1.1\nnew=yes\n");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);

    /* The same key twice: the last wins. Removing an absent key is fine. */
    assert_int_equal(run_set(path, "role=a", "role=b", "gone="), 0);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "# deploy state\nrole=b\nbad line\nversion=1.1\nnew=yes\n");

    /* Refused before the file is touched: bad key, bad value, no '='. */
    const char *bad[] = {"bad key=1", "k=\x01", "novalue", "=1", "# c"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(run_set(path, "ok=1", bad[i], NULL), 2);
        char now[4096];
        read_file(path, now, sizeof(now));
        assert_string_equal(now, buf);
    }
    assert_int_equal(run_set(path, NULL, NULL, NULL), 2); /* nothing to set */
    char *argv[] = {(char *)"set", (char *)"a=1", NULL};
    assert_int_equal(cmd_set(2, argv), 2); /* no file named */

    /* Sixteen pairs fit, a seventeenth does not. */
    path_in_dir(path, sizeof(path), "full.status");
    char many[1024] = "";
    for (int i = 0; i < VIGIL_CUSTOM_MAX - 1; i++) {
        size_t used = strlen(many);
        snprintf(many + used, sizeof(many) - used, "k%d=%d\n", i, i);
    }
    write_file(path, many);
    assert_int_equal(run_set(path, "k16=x", NULL, NULL), 0);
    assert_int_equal(run_set(path, "k17=x", NULL, NULL), 2);
    assert_int_equal(run_set(path, "k17=x", "k16=", NULL), 0); /* one out, one in */
    read_file(path, buf, sizeof(buf));
    assert_null(strstr(buf, "k16="));
    assert_non_null(strstr(buf, "k17=x\n"));

    /* No temporary file ("NAME.status.XXXXXX") is left behind. */
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
        if (strstr(e->d_name, ".status.") != NULL)
            fail_msg("left behind: %s", e->d_name);
    closedir(d);
}

/* ---- vigil keygen ----------------------------------------------------------- */

/* The generation grows across restarts even when the clock goes back. */
static void test_generation_file(void **state)
{
    (void)state;
    char path[160], buf[64];
    path_in_dir(path, sizeof(path), "generation");
    uint64_t g = 0;
    /* No file yet: the wall clock. */
    assert_int_equal(agent_next_generation(path, 5000, &g), 0);
    assert_int_equal(g, 5000);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "5000\n");
    /* The clock went back: one more than the stored generation. */
    assert_int_equal(agent_next_generation(path, 100, &g), 0);
    assert_int_equal(g, 5001);
    /* The clock is ahead again: the clock wins. */
    assert_int_equal(agent_next_generation(path, 9000, &g), 0);
    assert_int_equal(g, 9000);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "9000\n");
    /* A damaged file is warned about and started over from the clock, never fatal. */
    write_file(path, "garbage\n");
    assert_int_equal(agent_next_generation(path, 7000, &g), 0);
    assert_int_equal(g, 7000);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "7000\n");
    assert_int_equal(unlink(path), 0);
}

/* A file system of one file for agent_generation_next: what reads give, what was written. */
struct one_file_fs {
    struct vio_fs fs;
    int read_rc;         /* what read returns; 0: the content below */
    const char *content; /* the file's content when read_rc is 0 */
    int replace_rc;      /* what replace returns */
    char written[64];    /* the last content replace was given */
    int replaced;        /* how many times */
};

static int off_read(struct vio_fs *fs, const char *path, size_t cap, char **out, size_t *len)
{
    struct one_file_fs *f = (struct one_file_fs *)fs;
    (void)path;
    if (f->read_rc)
        return f->read_rc;
    if (strlen(f->content) > cap)
        return -EFBIG;
    *out = strdup(f->content);
    *len = strlen(f->content);
    return *out ? 0 : -ENOMEM;
}

static int off_replace(struct vio_fs *fs, const char *path, const void *data, size_t len,
                       uint32_t mode)
{
    struct one_file_fs *f = (struct one_file_fs *)fs;
    (void)path;
    (void)mode;
    f->replaced++;
    if (f->replace_rc)
        return f->replace_rc;
    snprintf(f->written, sizeof(f->written), "%.*s", (int)len, (const char *)data);
    return 0;
}

static const struct vio_fs_ops off_ops = {.read = off_read, .replace = off_replace};

/*
 * A generation file that cannot serve (empty, garbage, a number too large,
 * a directory, unreadable, unwritable) must not stop the agent: a clear
 * warning, the clock's generation (what a valid file gives at the least),
 * and the file written anew where it can be.
 */
static void test_generation_file_damaged(void **state)
{
    (void)state;
    static const struct {
        int read_rc;
        const char *content;
        int replace_rc;
        const char *says;
    } cases[] = {
        {0, "", 0, "is empty"},
        {0, " \n\n", 0, "is empty"},
        {0, "garbage\n", 0, "does not hold a generation number"},
        {0, "12ab\n", 0, "does not hold a generation number"},
        {0, "-5\n", 0, "does not hold a generation number"},
        {0, "99999999999999999999999\n", 0, "does not hold a generation number"},
        {0, "18446744073709551615\n", 0, "cannot grow any more"},
        {0, "000000000000000000000000000000000000000000000000000000000000000000001\n", 0,
         "too large"},
        {-EISDIR, NULL, -EISDIR, "Is a directory"},
        {-EACCES, NULL, 0, "Permission denied"},
        {-ENOENT, NULL, -EROFS, "Read-only file system"},
        {0, "4000\n", -ENOSPC, "No space left"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct one_file_fs f = {.fs = {&off_ops},
                                .read_rc = cases[i].read_rc,
                                .content = cases[i].content,
                                .replace_rc = cases[i].replace_rc};
        char err[512] = "";
        uint64_t g = 0;
        int rc =
            agent_generation_next(&f.fs, "/var/lib/vigil/generation", 5000, &g, err, sizeof(err));
        if (rc != 1 || g != 5000 || !strstr(err, cases[i].says))
            fail_msg("case %zu: rc %d, generation %llu, says '%s'", i, rc, (unsigned long long)g,
                     err);
        assert_int_equal(f.replaced, 1);
        if (!cases[i].replace_rc)
            assert_string_equal(f.written, "5000\n");
    }
    /* A valid file that is ahead of the clock still wins, and is no warning. */
    struct one_file_fs f = {.fs = {&off_ops}, .content = " 9000\n"};
    char err[512] = "";
    uint64_t g = 0;
    assert_int_equal(agent_generation_next(&f.fs, "gen", 5000, &g, err, sizeof(err)), 0);
    assert_int_equal(g, 9001);
    assert_string_equal(f.written, "9001\n");
}

static void test_keygen(void **state)
{
    (void)state;
    char path[128], key1[256], key2[256];
    path_in_dir(path, sizeof(path), "cluster.key");
    char *argv[] = {(char *)"keygen", (char *)"-o", path, NULL};
    assert_int_equal(cmd_keygen(3, argv), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* A master key: its header line, 64 hex digits. */
    assert_int_equal(read_file(path, key1, sizeof(key1)), 17 + 65);
    assert_memory_equal(key1, "vigil-master-key\n", 17);
    assert_int_equal(key1[17 + 64], '\n');
    for (int i = 17; i < 17 + 64; i++)
        assert_non_null(strchr("0123456789abcdef", key1[i]));

    /* A node key, derived from it as docs/protocol.md says. */
    char npath[128], nkey[256];
    path_in_dir(npath, sizeof(npath), "web1.key");
    char *nargv[] = {(char *)"keygen",
                     (char *)"--node",
                     (char *)"web1",
                     (char *)"--master",
                     path,
                     (char *)"-o",
                     npath,
                     NULL};
    assert_int_equal(cmd_keygen(7, nargv), 0);
    assert_int_equal(stat(npath, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(read_file(npath, nkey, sizeof(nkey)), 20 + 65);
    assert_memory_equal(nkey, "vigil-node-key web1\n", 20);
    uint8_t master[VIGIL_WIRE_KEY_LEN], want[VIGIL_WIRE_KEY_LEN], derived[VIGIL_WIRE_KEY_LEN];
    assert_int_equal(sodium_hex2bin(master, sizeof(master), key1 + 17, 64, NULL, NULL, NULL), 0);
    assert_int_equal(sodium_hex2bin(derived, sizeof(derived), nkey + 20, 64, NULL, NULL, NULL), 0);
    assert_int_equal(vigil_wire_node_key(want, master, "web1"), 0);
    assert_memory_equal(derived, want, sizeof(derived));
    assert_int_equal(unlink(npath), 0);
    /* Derived from a node key, or without both options: refused. */
    assert_int_equal(cmd_keygen(7, nargv), 0);
    char *n2argv[] = {
        (char *)"keygen", (char *)"--node", (char *)"web2", (char *)"--master", npath, NULL};
    assert_int_equal(cmd_keygen(5, n2argv), 1);
    char *n3argv[] = {(char *)"keygen", (char *)"--node", (char *)"web2", NULL};
    assert_int_equal(cmd_keygen(3, n3argv), 2);
    assert_int_equal(unlink(npath), 0);

    /* An existing key is never overwritten. */
    assert_int_equal(cmd_keygen(3, argv), 1);
    read_file(path, key2, sizeof(key2));
    assert_string_equal(key1, key2);

    /* To standard output, in a child: a different key each time. */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        char *a[] = {(char *)"keygen", NULL};
        _exit(cmd_keygen(1, a));
    }
    close(pfd[1]);
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(key2) - 1 && (n = read(pfd[0], key2 + got, sizeof(key2) - 1 - got)) > 0)
        got += (size_t)n;
    key2[got] = '\0';
    close(pfd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(got, 17 + 65);
    assert_string_not_equal(key1, key2);

    char *bad[] = {(char *)"keygen", (char *)"extra", NULL};
    assert_int_equal(cmd_keygen(2, bad), 2);
}

/* ---- vigil agent ------------------------------------------------------------ */

static void test_agent_usage_errors(void **state)
{
    (void)state;
    char *a1[] = {(char *)"agent", (char *)"--interval", (char *)"soon", NULL};
    assert_int_equal(cmd_agent(3, a1), 2);
    char *a2[] = {(char *)"agent", (char *)"--id",      (char *)"n1",
                  (char *)"--set", (char *)"bad key=1", NULL};
    assert_int_equal(cmd_agent(5, a2), 2);
    char *a3[] = {(char *)"agent", (char *)"--id", (char *)"bad id", NULL};
    assert_int_equal(cmd_agent(3, a3), 2);
    char *a4[] = {(char *)"agent", (char *)"--id", (char *)"n1", (char *)"stray", NULL};
    assert_int_equal(cmd_agent(4, a4), 2);
    char *a5[] = {(char *)"agent", (char *)"--interval", (char *)"5ms", NULL};
    assert_int_equal(cmd_agent(3, a5), 2); /* below the 10 ms minimum */
    char *a6[] = {(char *)"agent", (char *)"--key-file", (char *)"/nonexistent/key", NULL};
    assert_int_equal(cmd_agent(3, a6), 2);
    char *a7[20] = {(char *)"agent"};
    int n = 1;
    for (int i = 0; i < VIGIL_SENDER_MAX_MONITORS + 1; i++) {
        a7[n++] = (char *)"--monitor";
        a7[n++] = (char *)"127.0.0.1:9";
    }
    assert_int_equal(cmd_agent(n, a7), 2);
    /* Valid syntax for the config, but not an address: fails at start, status 1. */
    char *a8[] = {(char *)"agent",     (char *)"--id", (char *)"n1",
                  (char *)"--monitor", (char *)"[::1", NULL};
    assert_int_equal(cmd_agent(5, a8), 1);
}

static int bind_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sin);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, len) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
        return -1;
    *port = ntohs(sin.sin_port);
    return fd;
}

static int recv_hb(int fd, const uint8_t *key, struct vigil_heartbeat *hb)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, RECV_TIMEOUT_MS) != 1)
        return -1000;
    uint8_t buf[2048];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0)
        return -1001;
    return vigil_wire_decode(buf, (size_t)n, key, hb);
}

static const char *custom_get(const struct vigil_heartbeat *hb, const char *key)
{
    for (int i = 0; i < hb->n_custom; i++)
        if (strcmp(hb->custom[i].key, key) == 0)
            return hb->custom[i].value;
    return NULL;
}

static bool custom_is(const struct vigil_heartbeat *hb, const char *key, const char *want)
{
    const char *v = custom_get(hb, key);
    return v != NULL && strcmp(v, want) == 0;
}

/* Receives heartbeats in sequence until one has key=want (or the limit). */
static bool wait_for_pair(int fd, const uint8_t *key, uint64_t *seq, const char *k,
                          const char *want, struct vigil_heartbeat *hb)
{
    for (int i = 0; i < MAX_BEATS_FOR_CHANGE; i++) {
        assert_int_equal(recv_hb(fd, key, hb), 0);
        assert_int_equal(hb->sequence, *seq + 1);
        *seq = hb->sequence;
        /* Only a full status says what the pairs are: a beat between them carries none. */
        if (hb->version != VIGIL_WIRE_V1 && hb->type != VIGIL_MSG_STATUS)
            continue;
        bool ok = want != NULL ? custom_is(hb, k, want) : custom_get(hb, k) == NULL;
        if (ok)
            return true;
    }
    return false;
}

static void test_agent_runs(void **state)
{
    (void)state;
    char master[128], keyfile[128], status[128], logfile[128], mon[32], khex[128];
    path_in_dir(master, sizeof(master), "master.key");
    path_in_dir(keyfile, sizeof(keyfile), "agent.key");
    path_in_dir(status, sizeof(status), "agent.status");
    path_in_dir(logfile, sizeof(logfile), "agent.log");
    char *kargv[] = {(char *)"keygen", (char *)"-o", master, NULL};
    assert_int_equal(cmd_keygen(3, kargv), 0);
    char *nargv[] = {(char *)"keygen",
                     (char *)"--node",
                     (char *)"e2e-node",
                     (char *)"--master",
                     master,
                     (char *)"-o",
                     keyfile,
                     NULL};
    assert_int_equal(cmd_keygen(7, nargv), 0);
    read_file(keyfile, khex, sizeof(khex));
    uint8_t node_key[VIGIL_WIRE_KEY_LEN], key[VIGIL_WIRE_MAC_KEY_LEN];
    /* After the header line "vigil-node-key e2e-node". */
    assert_int_equal(sodium_hex2bin(node_key, sizeof(node_key), khex + 24, 64, NULL, NULL, NULL),
                     0);
    /* Heartbeats are tagged with the key derived from the node key. */
    vigil_wire_mac_key(key, node_key);

    uint16_t port = 0;
    int fd = bind_loopback(&port);
    assert_true(fd >= 0);
    snprintf(mon, sizeof(mon), "127.0.0.1:%u", (unsigned)port);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* If the test fails and its process ends, the agent ends with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int lfd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(lfd, 2);
        char *argv[] = {(char *)"agent",
                        (char *)"--id",
                        (char *)"e2e-node",
                        (char *)"--monitor",
                        mon,
                        (char *)"--interval",
                        (char *)"50ms",
                        (char *)"-k",
                        keyfile,
                        (char *)"--status-file",
                        status,
                        (char *)"--set",
                        (char *)"static=1",
                        (char *)"--set",
                        (char *)"tier=web",
                        NULL};
        _exit(cmd_agent(15, argv));
    }

    /* The first heartbeat: sequence 1, the static pairs, the node's status. */
    struct vigil_heartbeat hb;
    assert_int_equal(recv_hb(fd, key, &hb), 0);
    assert_string_equal(hb.id, "e2e-node");
    assert_int_equal(hb.sequence, 1);
    assert_int_equal(hb.interval_ms, 50);
    assert_int_equal(hb.flags, VIGIL_FLAG_AUTH);
    assert_true(hb.status.mem_total_kib > 0);
    assert_int_equal(hb.n_custom, 2);
    assert_true(custom_is(&hb, "static", "1"));
    assert_true(custom_is(&hb, "tier", "web"));
    uint64_t gen = hb.generation, seq = 1;

    /* vigil set: the running agent picks the change up; the file overrides --set. */
    assert_int_equal(run_set(status, "dyn=7", "static=2", NULL), 0);
    assert_true(wait_for_pair(fd, key, &seq, "dyn", "7", &hb));
    assert_true(custom_is(&hb, "static", "2"));
    assert_true(custom_is(&hb, "tier", "web"));
    assert_int_equal(hb.generation, gen);

    /* A bad line is reported once and skipped; the good lines apply. */
    write_file(status, "oops\nok=1\n");
    assert_true(wait_for_pair(fd, key, &seq, "ok", "1", &hb));
    assert_true(custom_is(&hb, "static", "1")); /* back to the --set value */
    assert_null(custom_get(&hb, "dyn"));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(recv_hb(fd, key, &hb), 0);
        assert_int_equal(hb.sequence, ++seq);
    }
    /* Removing the file removes its pairs. */
    assert_int_equal(unlink(status), 0);
    assert_true(wait_for_pair(fd, key, &seq, "ok", NULL, &hb));
    assert_int_equal(hb.n_custom, 2);

    /* SIGTERM: the goodbye (sent twice, in case one is lost), then exit 0. */
    assert_int_equal(kill(pid, SIGTERM), 0);
    bool left = false;
    for (int i = 0; i < MAX_BEATS_FOR_CHANGE && !left; i++) {
        assert_int_equal(recv_hb(fd, key, &hb), 0);
        assert_int_equal(hb.sequence, ++seq);
        left = (hb.flags & VIGIL_FLAG_LEAVING) != 0;
    }
    assert_true(left);
    assert_int_equal(recv_hb(fd, key, &hb), 0);
    assert_int_equal(hb.sequence, ++seq);
    assert_true(hb.flags & VIGIL_FLAG_LEAVING);
    int wstatus;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    assert_true(WIFEXITED(wstatus));
    assert_int_equal(WEXITSTATUS(wstatus), 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0); /* nothing after the goodbye */
    close(fd);

    char log[8192], want[256];
    read_file(logfile, log, sizeof(log));
    snprintf(want, sizeof(want),
             "vigil agent: id=e2e-node generation=%llu monitors=%s interval=50ms\n",
             (unsigned long long)gen, mon);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof(want), "%s:1: expected key=value", status);
    assert_int_equal(count_substr(log, want), 1);
    assert_non_null(strstr(log, "goodbye sent"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_line),     cmocka_unit_test(test_pairs_set),
        cmocka_unit_test(test_status_read),     cmocka_unit_test(test_set_command),
        cmocka_unit_test(test_generation_file), cmocka_unit_test(test_generation_file_damaged),
        cmocka_unit_test(test_keygen),          cmocka_unit_test(test_agent_usage_errors),
        cmocka_unit_test(test_agent_runs),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
