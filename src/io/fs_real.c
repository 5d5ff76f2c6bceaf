/*
 * Files on the real file system, for the vio_fs interface: whole-file
 * reads with a size bound, atomic and durable replacement, appends, stat,
 * and exclusive creation (keys).
 *
 * Replacement writes a temporary file in the same directory (mkostemp),
 * sets its mode, writes, fsyncs, renames it over the target and fsyncs the
 * directory, so that after a crash the file holds the old content or the
 * new, never a mix, and a reader never sees half of either.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/real.h"

/* Writes all of data to fd; 0 or -errno. Every pass writes a byte or fails. */
static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fs_read(struct vio_fs *fs, const char *path, size_t cap, char **out, size_t *len)
{
    (void)fs;
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* One byte more than allowed, to notice a file that is too large, and the NUL. */
    char *buf = malloc(cap + 2);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    /* Every pass reads at least one byte or ends the loop. */
    while (got < cap + 1) {
        ssize_t n = read(fd, buf + got, cap + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = -errno;
            close(fd);
            free(buf);
            return err;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got > cap) {
        free(buf);
        return -EFBIG;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

/* Makes a rename in path's directory durable; a failure here loses nothing already visible. */
static void sync_dir(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return;
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(dir);
}

static int fs_replace(struct vio_fs *fs, const char *path, const void *data, size_t len,
                      uint32_t mode)
{
    (void)fs;
    size_t plen = strlen(path);
    /* The path, ".XXXXXX" for mkostemp() and the NUL: 8 bytes more. */
    char *tmp = malloc(plen + 8);
    if (!tmp)
        return -ENOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".XXXXXX", 8);
    int err = 0;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        err = -errno;
        free(tmp);
        return err;
    }
    if (fchmod(fd, (mode_t)mode) != 0)
        err = -errno;
    if (!err)
        err = write_all(fd, data, len);
    if (!err && fsync(fd) != 0)
        err = -errno;
    if (close(fd) != 0 && !err)
        err = -errno;
    if (!err && rename(tmp, path) != 0)
        err = -errno;
    if (err)
        unlink(tmp);
    else
        sync_dir(path);
    free(tmp);
    return err;
}

static int fs_append(struct vio_fs *fs, const char *path, const void *data, size_t len,
                     uint32_t mode, bool sync)
{
    (void)fs;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return -errno;
    int err = write_all(fd, data, len);
    if (!err && sync && fsync(fd) != 0)
        err = -errno;
    if (close(fd) != 0 && !err)
        err = -errno;
    return err;
}

static int fs_stat(struct vio_fs *fs, const char *path, struct vio_stat *st)
{
    (void)fs;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -errno;
    st->ino = (uint64_t)sb.st_ino;
    st->size = (uint64_t)sb.st_size;
    st->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    st->mode = (uint32_t)sb.st_mode;
    return 0;
}

static int fs_create(struct vio_fs *fs, const char *path, const void *data, size_t len,
                     uint32_t mode)
{
    (void)fs;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return -errno;
    int err = write_all(fd, data, len);
    /* The umask can only narrow the mode; make sure nothing else widened it. */
    if (!err && fchmod(fd, (mode_t)mode) != 0)
        err = -errno;
    if (!err && fsync(fd) != 0)
        err = -errno;
    if (close(fd) != 0 && !err)
        err = -errno;
    if (err)
        unlink(path);
    else
        sync_dir(path);
    return err;
}

struct vio_fs vio_fs_real = {.ops = &(const struct vio_fs_ops){
                                 .read = fs_read,
                                 .replace = fs_replace,
                                 .append = fs_append,
                                 .stat = fs_stat,
                                 .create = fs_create,
                             }};
