/*
 * Sampling this node's status from /proc for its heartbeats: load
 * averages (/proc/loadavg), total and available memory (/proc/meminfo) and
 * uptime (/proc/uptime).
 *
 * It runs once per heartbeat, so it is cheap: each file is read with one
 * open and a read or two into a buffer on the stack, parsed by hand (no
 * stdio, no strtod and its locale, no allocation), and closed. A file that
 * cannot be read or parsed leaves its fields at 0, which the wire format
 * defines as "unknown", and the call reports -VIGIL_ESYS; the fields that
 * could be read are still filled.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <vigil/sender.h>

/*
 * Bytes read from each file. /proc/loadavg and /proc/uptime are under 100
 * bytes; /proc/meminfo is about 1.5 KiB and the two lines wanted are among
 * its first three, so 4 KiB holds all of them with room to spare.
 */
#define PROC_BUF 4096

/* Reads up to cap - 1 bytes of path into buf, NUL terminated; returns the length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    /* Each pass reads at least one byte or stops, so cap bounds the loop. */
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Parses an unsigned decimal integer, saturating at UINT64_MAX; NULL if no digit. */
static const char *parse_u64(const char *p, uint64_t *out)
{
    uint64_t v = 0;
    const char *start = p;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    if (p == start)
        return NULL;
    *out = v;
    return p;
}

/*
 * Parses a non-negative decimal "12.34" into thousandths (12340); digits
 * beyond the third decimal are dropped. Saturates at UINT32_MAX.
 */
static const char *parse_milli(const char *p, uint32_t *out)
{
    uint64_t whole;
    p = parse_u64(p, &whole);
    if (p == NULL)
        return NULL;
    uint64_t frac = 0;
    int digits = 0;
    if (*p == '.') {
        p++;
        /* Three decimals are thousandths; the rest is below the resolution. */
        for (; *p >= '0' && *p <= '9'; p++)
            if (digits < 3) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                digits++;
            }
    }
    for (; digits < 3; digits++)
        frac *= 10;
    uint64_t v = whole > UINT32_MAX / 1000 ? UINT32_MAX : whole * 1000 + frac;
    *out = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    return p;
}

static int sample_loadavg(struct vigil_status *st)
{
    char buf[PROC_BUF];
    if (read_small("/proc/loadavg", buf, sizeof(buf)) < 0)
        return -1;
    uint32_t l[3];
    const char *p = buf;
    for (int i = 0; i < 3; i++) {
        p = parse_milli(skip_blanks(p), &l[i]);
        if (p == NULL)
            return -1;
    }
    st->load1_milli = l[0];
    st->load5_milli = l[1];
    st->load15_milli = l[2];
    return 0;
}

/* Finds "name <digits> kB" at the start of a line of buf. */
static int meminfo_field(const char *buf, const char *name, uint64_t *kib)
{
    size_t nlen = strlen(name);
    const char *p = buf;
    while (p != NULL && *p != '\0') {
        if (strncmp(p, name, nlen) == 0)
            return parse_u64(skip_blanks(p + nlen), kib) != NULL ? 0 : -1;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

static int sample_meminfo(struct vigil_status *st)
{
    char buf[PROC_BUF];
    if (read_small("/proc/meminfo", buf, sizeof(buf)) < 0)
        return -1;
    uint64_t total, avail;
    int rc = 0;
    if (meminfo_field(buf, "MemTotal:", &total) == 0)
        st->mem_total_kib = total;
    else
        rc = -1;
    /* MemAvailable exists since Linux 3.14; older kernels leave it unknown. */
    if (meminfo_field(buf, "MemAvailable:", &avail) == 0)
        st->mem_avail_kib = avail;
    else
        rc = -1;
    return rc;
}

static int sample_uptime(struct vigil_status *st)
{
    char buf[PROC_BUF];
    if (read_small("/proc/uptime", buf, sizeof(buf)) < 0)
        return -1;
    uint64_t s;
    if (parse_u64(skip_blanks(buf), &s) == NULL)
        return -1;
    st->uptime_s = s;
    return 0;
}

/* Public (<vigil/sender.h>); marked here as that header does not mark it. */
int vigil_status_sample(struct vigil_status *st)
{
    if (st == NULL)
        return -VIGIL_EINVAL;
    memset(st, 0, sizeof(*st));
    int bad = 0;
    bad |= sample_loadavg(st) < 0;
    bad |= sample_meminfo(st) < 0;
    bad |= sample_uptime(st) < 0;
    return bad ? -VIGIL_ESYS : 0;
}
