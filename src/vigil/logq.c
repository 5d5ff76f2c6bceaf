/*
 * A bounded log buffer drained by a writer thread (see logq.h for why).
 *
 * The event loop only ever takes the mutex to copy a line in. The writer
 * swaps the filled buffer for its own empty one under the mutex and writes
 * outside it, so a slow write holds up nothing but the writer.
 */
#include "logq.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct logq {
    FILE *out;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *buf, *spare; /* the loop fills buf; the writer writes spare */
    size_t len, cap;
    uint64_t dropped;
    bool stop;
    bool writing; /* the writer holds a batch that is not out yet */
};

static void *writer(void *arg)
{
    struct logq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (q->len == 0 && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->len == 0 && q->stop)
            break;
        char *batch = q->buf;
        size_t n = q->len;
        q->buf = q->spare;
        q->spare = batch;
        q->len = 0;
        q->writing = true;
        pthread_mutex_unlock(&q->mu);
        fwrite(batch, 1, n, q->out);
        fflush(q->out);
        pthread_mutex_lock(&q->mu);
        q->writing = false;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

struct logq *logq_new(FILE *out, size_t cap)
{
    struct logq *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->out = out;
    q->cap = cap;
    q->buf = malloc(cap);
    q->spare = malloc(cap);
    if (!q->buf || !q->spare || pthread_mutex_init(&q->mu, NULL) != 0) {
        free(q->buf);
        free(q->spare);
        free(q);
        return NULL;
    }
    pthread_cond_init(&q->cv, NULL);
    if (pthread_create(&q->thread, NULL, writer, q) != 0) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        free(q->buf);
        free(q->spare);
        free(q);
        return NULL;
    }
    return q;
}

void logq_write(struct logq *q, const char *line)
{
    size_t n = strlen(line);
    pthread_mutex_lock(&q->mu);
    if (q->cap - q->len < n + 1) {
        q->dropped++;
    } else {
        memcpy(q->buf + q->len, line, n);
        q->buf[q->len + n] = '\n';
        q->len += n + 1;
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
}

uint64_t logq_dropped(struct logq *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t d = q->dropped;
    pthread_mutex_unlock(&q->mu);
    return d;
}

int logq_free(struct logq *q, int timeout_ms)
{
    if (!q)
        return 0;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    if (pthread_timedjoin_np(q->thread, NULL, &until) != 0) {
        /* The writer is stuck in write(): leave it (and its buffers) to the exit. */
        pthread_detach(q->thread);
        return -1;
    }
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q->buf);
    free(q->spare);
    free(q);
    return 0;
}
