/*
 * The real log: struct vio_log on a file or standard output, written by a
 * thread of its own.
 *
 * Detection must never wait for the log: a log on a pipe that nobody reads,
 * a slow disk or a stalled journal would otherwise stop the event loop in
 * write(), with heartbeats unread and SIGTERM unanswered. The loop appends
 * lines to a bounded buffer (a mutex, no I/O); the writer thread swaps the
 * filled buffer for its own empty one under the mutex and writes outside
 * it, so a slow write holds up nothing but the writer. When the buffer is
 * full a line is dropped and counted, never waited for.
 *
 * Closing waits a bounded time for the writer to finish. A writer stuck in
 * write() is left alone with its stream (closing it under the writer, or
 * exit() flushing it, would block on the stream's lock): close returns -1,
 * and should the writer come back later it frees everything itself.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/real.h"

/* The buffer of vio_log_real_open: some 20,000 event lines before any is dropped. */
#define LOG_REAL_BUFFER_BYTES (4 << 20)

struct log_real {
    struct vio_log base;
    FILE *out;
    bool own; /* out is ours to close */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *buf, *spare; /* the loop fills buf; the writer writes spare */
    size_t len, cap;
    uint64_t dropped;
    bool stop;
    bool done;      /* the writer has finished */
    bool abandoned; /* close gave up on the writer, which frees all when it ends */
};

static void lr_destroy(struct log_real *g)
{
    if (g->own && g->out)
        fclose(g->out);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g->buf);
    free(g->spare);
    free(g);
}

static void *writer(void *arg)
{
    struct log_real *g = arg;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (g->len == 0 && !g->stop)
            pthread_cond_wait(&g->cv, &g->mu);
        if (g->len == 0 && g->stop)
            break;
        char *batch = g->buf;
        size_t n = g->len;
        g->buf = g->spare;
        g->spare = batch;
        g->len = 0;
        pthread_mutex_unlock(&g->mu);
        fwrite(batch, 1, n, g->out);
        fflush(g->out);
        pthread_mutex_lock(&g->mu);
    }
    g->done = true;
    bool abandoned = g->abandoned;
    pthread_mutex_unlock(&g->mu);
    if (abandoned)
        lr_destroy(g);
    return NULL;
}

static void lr_write(struct vio_log *lg, const char *line)
{
    struct log_real *g = (struct log_real *)lg;
    size_t n = strlen(line);
    pthread_mutex_lock(&g->mu);
    if (g->cap - g->len < n + 1) {
        g->dropped++;
    } else {
        memcpy(g->buf + g->len, line, n);
        g->buf[g->len + n] = '\n';
        g->len += n + 1;
        pthread_cond_signal(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
}

static uint64_t lr_dropped(struct vio_log *lg)
{
    struct log_real *g = (struct log_real *)lg;
    pthread_mutex_lock(&g->mu);
    uint64_t d = g->dropped;
    pthread_mutex_unlock(&g->mu);
    return d;
}

static int lr_close(struct vio_log *lg, int timeout_ms)
{
    struct log_real *g = (struct log_real *)lg;
    if (!g)
        return 0;
    if (timeout_ms < 0)
        timeout_ms = 0;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (pthread_timedjoin_np(g->thread, NULL, &until) != 0) {
        pthread_mutex_lock(&g->mu);
        bool done = g->done;
        if (!done)
            g->abandoned = true;
        pthread_mutex_unlock(&g->mu);
        if (!done) {
            /* Stuck in write(): the writer keeps its stream and frees all if it returns. */
            pthread_detach(g->thread);
            return -1;
        }
        /* It finished just after the deadline. */
        pthread_join(g->thread, NULL);
    }
    lr_destroy(g);
    return 0;
}

static const struct vio_log_ops real_log_ops = {
    .write = lr_write,
    .dropped = lr_dropped,
    .close = lr_close,
};

int vio_log_real_stream(FILE *out, bool own, size_t cap, struct vio_log **lg)
{
    if (!out || !lg || cap == 0)
        return -VIGIL_EINVAL;
    struct log_real *g = calloc(1, sizeof(*g));
    if (!g)
        return -VIGIL_ENOMEM;
    g->base.ops = &real_log_ops;
    g->out = out;
    g->cap = cap;
    g->buf = malloc(cap);
    g->spare = malloc(cap);
    if (!g->buf || !g->spare || pthread_mutex_init(&g->mu, NULL) != 0) {
        free(g->buf);
        free(g->spare);
        free(g);
        return -VIGIL_ENOMEM;
    }
    pthread_cond_init(&g->cv, NULL);
    int err = pthread_create(&g->thread, NULL, writer, g);
    if (err != 0) {
        g->own = false; /* on failure the caller keeps out */
        lr_destroy(g);
        return -err;
    }
    g->own = own;
    *lg = &g->base;
    return 0;
}

int vio_log_real_open(const char *path, struct vio_log **out, char *err, size_t cap)
{
    FILE *f = stdout;
    if (path) {
        f = fopen(path, "ae"); /* close-on-exec: not for children */
        if (!f) {
            int e = errno;
            if (err && cap)
                snprintf(err, cap, "cannot open log file %s: %s", path, strerror(e));
            return -e;
        }
    }
    int rc = vio_log_real_stream(f, path != NULL, LOG_REAL_BUFFER_BYTES, out);
    if (rc != 0) {
        if (path)
            fclose(f);
        if (err && cap)
            snprintf(err, cap, "cannot start the log writer: %s",
                     rc == -VIGIL_ENOMEM ? "out of memory" : strerror(-rc));
    }
    return rc;
}
