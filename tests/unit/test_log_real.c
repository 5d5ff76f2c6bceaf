/*
 * Tests of the real log (src/io/log_real.c): lines reach the file whole
 * and in order; a file that cannot be opened is refused with a reason; a
 * log on a pipe nobody reads never blocks the writer's caller, drops and
 * counts lines instead, and closing it returns -1 within its timeout
 * while the stuck writer is left alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vigil/sender.h>

#include "io/real.h"

/*
 * The drop test: a buffer of 128 KB, and a first line of 100 KB that no
 * pipe of 64 KB (the default) takes whole while nobody reads, so that the
 * writer, once it has taken that line, can never finish.
 */
#define STUCK_CAP  (128 * 1024)
#define BIG_LINE   (100 * 1024)
#define SMALL_LINE 100

static void test_lines_written(void **state)
{
    (void)state;
    char path[] = "/tmp/vigil-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct vio_log *g = NULL;
    char err[256] = "";
    assert_int_equal(vio_log_real_open(path, &g, err, sizeof(err)), 0);
    g->ops->write(g, "first line");
    g->ops->write(g, "second line");
    g->ops->write(g, "");
    g->ops->write(g, "last");
    assert_int_equal(g->ops->dropped(g), 0);
    assert_int_equal(g->ops->close(g, 2000), 0);

    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char buf[256];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_string_equal(buf, "first line\nsecond line\n\nlast\n");

    /* Appended, not truncated, when opened again. */
    assert_int_equal(vio_log_real_open(path, &g, err, sizeof(err)), 0);
    g->ops->write(g, "more");
    assert_int_equal(g->ops->close(g, 2000), 0);
    fp = fopen(path, "r");
    assert_non_null(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_string_equal(buf, "first line\nsecond line\n\nlast\nmore\n");
    unlink(path);
}

static void test_open_fails(void **state)
{
    (void)state;
    struct vio_log *g = NULL;
    char err[256] = "";
    assert_int_equal(vio_log_real_open("/nonexistent/dir/vigil.log", &g, err, sizeof(err)),
                     -ENOENT);
    assert_null(g);
    assert_non_null(strstr(err, "cannot open log file /nonexistent/dir/vigil.log"));
}

/* A pipe nobody reads: writes never block, lines are dropped and counted, close gives up. */
static void test_stuck_pipe(void **state)
{
    (void)state;
    /* The writer meets EPIPE once the read end goes, at the end of the test. */
    struct sigaction ign, saved;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &saved);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    FILE *w = fdopen(fds[1], "w");
    assert_non_null(w);
    /* No stdio buffer in between: what the writer takes goes straight to write(). */
    setvbuf(w, NULL, _IONBF, 0);
    struct vio_log *g = NULL;
    assert_int_equal(vio_log_real_stream(w, true, STUCK_CAP, &g), 0);

    char *big = malloc(BIG_LINE + 1);
    assert_non_null(big);
    memset(big, 'b', BIG_LINE);
    big[BIG_LINE] = '\0';
    char line[SMALL_LINE];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';

    vigil_time_t t0 = vigil_clock_mono();
    g->ops->write(g, big);
    free(big);
    assert_int_equal(g->ops->dropped(g), 0);
    /*
     * The writer takes one batch, the big line in it, and stays in write()
     * for good; the buffer then fills and lines are dropped. Bounded: two
     * buffers' worth of lines always gets there.
     */
    size_t n = 0;
    while (g->ops->dropped(g) == 0 && n < 2 * STUCK_CAP / SMALL_LINE) {
        g->ops->write(g, line);
        n++;
    }
    assert_true(g->ops->dropped(g) > 0);
    uint64_t before = g->ops->dropped(g);
    for (int k = 0; k < 3000; k++)
        g->ops->write(g, line);
    /*
     * The writer may empty the buffer once more (if it had not yet taken
     * its first batch), never again: of these, at most a buffer's worth
     * got in.
     */
    assert_true(g->ops->dropped(g) >= before + 3000 - STUCK_CAP / SMALL_LINE);
    /* No write waited for the reader. */
    assert_true(vigil_clock_mono() - t0 < 5 * VIGIL_NSEC_PER_SEC);

    t0 = vigil_clock_mono();
    assert_int_equal(g->ops->close(g, 200), -1);
    vigil_time_t took = vigil_clock_mono() - t0;
    assert_true(took >= 150 * VIGIL_NSEC_PER_MSEC);
    assert_true(took < 2 * VIGIL_NSEC_PER_SEC);

    /* The reader goes: the stuck writer returns (EPIPE) and frees what it had. */
    close(fds[0]);
    const struct timespec settle = {0, 100 * 1000 * 1000};
    nanosleep(&settle, NULL);
    sigaction(SIGPIPE, &saved, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_written),
        cmocka_unit_test(test_open_fails),
        cmocka_unit_test(test_stuck_pipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
