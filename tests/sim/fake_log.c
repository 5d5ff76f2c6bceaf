/* The fake log: see fake_log.h. */
#include <stdlib.h>
#include <string.h>

#include "fake_log.h"

struct fake_log {
    struct vio_log base;
    char **lines;
    size_t n, cap, max;
    uint64_t dropped;
};

static void fg_write(struct vio_log *lg, const char *line)
{
    struct fake_log *g = (struct fake_log *)lg;
    if (g->max && g->n >= g->max) {
        g->dropped++;
        return;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        char **l = realloc(g->lines, cap * sizeof(*l));
        if (!l) {
            g->dropped++;
            return;
        }
        g->lines = l;
        g->cap = cap;
    }
    char *copy = strdup(line);
    if (!copy) {
        g->dropped++;
        return;
    }
    g->lines[g->n++] = copy;
}

static uint64_t fg_dropped(struct vio_log *lg)
{
    return ((struct fake_log *)lg)->dropped;
}

static int fg_close(struct vio_log *lg, int timeout_ms)
{
    (void)timeout_ms;
    fake_log_free(lg);
    return 0;
}

static const struct vio_log_ops fake_log_ops = {
    .write = fg_write,
    .dropped = fg_dropped,
    .close = fg_close,
};

struct vio_log *fake_log_new(size_t max_lines)
{
    struct fake_log *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->base.ops = &fake_log_ops;
    g->max = max_lines;
    return &g->base;
}

void fake_log_clear(struct vio_log *lg)
{
    struct fake_log *g = (struct fake_log *)lg;
    for (size_t i = 0; i < g->n; i++)
        free(g->lines[i]);
    g->n = 0;
}

void fake_log_free(struct vio_log *lg)
{
    if (!lg)
        return;
    fake_log_clear(lg);
    free(((struct fake_log *)lg)->lines);
    free(lg);
}

size_t fake_log_count(const struct vio_log *lg)
{
    return ((const struct fake_log *)lg)->n;
}

const char *fake_log_line(const struct vio_log *lg, size_t i)
{
    const struct fake_log *g = (const struct fake_log *)lg;
    return i < g->n ? g->lines[i] : NULL;
}

size_t fake_log_grep(const struct vio_log *lg, const char *needle)
{
    const struct fake_log *g = (const struct fake_log *)lg;
    size_t k = 0;
    for (size_t i = 0; i < g->n; i++)
        k += strstr(g->lines[i], needle) != NULL;
    return k;
}

long fake_log_find(const struct vio_log *lg, size_t from, const char *needle)
{
    const struct fake_log *g = (const struct fake_log *)lg;
    for (size_t i = from; i < g->n; i++)
        if (strstr(g->lines[i], needle))
            return (long)i;
    return -1;
}
