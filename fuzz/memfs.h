/*
 * A one-file, in-memory struct vio_fs for the fuzz targets that read a
 * file through src/io/vio.h: read returns the fuzz input (as the real one
 * does: a new NUL-terminated copy, -EFBIG past the reader's cap), replace
 * records what was written (memfs_fini frees it), and the other operations are refused.
 */
#ifndef VIGIL_FUZZ_MEMFS_H
#define VIGIL_FUZZ_MEMFS_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/vio.h"

struct memfs {
    struct vio_fs fs;
    const uint8_t *data; /* the file's content (the input) */
    size_t len;
    bool missing;  /* read answers -ENOENT */
    char *written; /* what the last replace wrote, NUL terminated (malloc'd), or NULL */
    size_t written_len;
    unsigned replaces;
};

static inline int memfs_read(struct vio_fs *fs, const char *path, size_t cap, char **out,
                             size_t *len)
{
    struct memfs *m = (struct memfs *)fs;
    if (m->missing)
        return -ENOENT;
    if (m->len > cap)
        return -EFBIG;
    char *buf = malloc(m->len + 1);
    if (!buf)
        return -ENOMEM;
    if (m->len)
        memcpy(buf, m->data, m->len);
    buf[m->len] = '\0';
    *out = buf;
    *len = m->len;
    return 0;
}

static inline int memfs_replace(struct vio_fs *fs, const char *path, const void *data, size_t len,
                                uint32_t mode)
{
    struct memfs *m = (struct memfs *)fs;
    char *copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    if (len)
        memcpy(copy, data, len);
    free(m->written);
    m->written = copy;
    m->written[len] = '\0';
    m->written_len = len;
    m->replaces++;
    return 0;
}

static inline int memfs_append(struct vio_fs *fs, const char *path, const void *data, size_t len,
                               uint32_t mode, bool sync)
{
    return -EROFS;
}

static inline int memfs_stat(struct vio_fs *fs, const char *path, struct vio_stat *st)
{
    return -ENOSYS;
}

static inline int memfs_create(struct vio_fs *fs, const char *path, const void *data, size_t len,
                               uint32_t mode)
{
    return -EROFS;
}

static const struct vio_fs_ops memfs_ops = {
    .read = memfs_read,
    .replace = memfs_replace,
    .append = memfs_append,
    .stat = memfs_stat,
    .create = memfs_create,
};

/* A file system whose one file holds data (len bytes). */
static inline void memfs_init(struct memfs *m, const uint8_t *data, size_t len)
{
    memset(m, 0, sizeof(*m));
    m->fs.ops = &memfs_ops;
    m->data = data;
    m->len = len;
}

/* Frees what replace recorded. */
static inline void memfs_fini(struct memfs *m)
{
    free(m->written);
    m->written = NULL;
}

#endif
