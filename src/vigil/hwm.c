/*
 * The high-water mark file (hwm.h). One line per node:
 *
 *   ID GENERATION SEQUENCE INTERVAL_MS
 *
 * after a first line "vigil-hwm 1" that names the format. INTERVAL_MS is
 * the node's advertised interval when the mark was written (0 for a node
 * restored and not heard since), for the slack on the next load.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hwm.h"

#define HWM_HEADER "vigil-hwm 1"
/* The largest file read: 65536 nodes at 64 + 3 * 20 + 4 bytes a line is about 8 MB. */
#define HWM_FILE_MAX (64u << 20)

uint64_t hwm_slack(vigil_time_t flush, uint32_t interval_ms)
{
    if (interval_ms == 0)
        return 0;
    vigil_time_t iv = (vigil_time_t)interval_ms * VIGIL_NSEC_PER_MSEC;
    return (uint64_t)((2 * flush + iv - 1) / iv) + 1;
}

int hwm_load(struct vio_fs *fs, const char *path, struct vigil_monitor *m, vigil_time_t flush,
             vigil_time_t now, char *err, size_t cap)
{
    char *buf = NULL;
    size_t len = 0;
    int e = fs->ops->read(fs, path, HWM_FILE_MAX, &buf, &len);
    if (e == -ENOENT)
        return 0;
    if (e) {
        snprintf(err, cap, "%s: cannot read: %s", path, strerror(-e));
        return -1;
    }
    int restored = 0;
    unsigned lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (lineno == 1) {
            if (strcmp(line, HWM_HEADER) != 0) {
                snprintf(err, cap, "%s:1: not a high-water mark file (\"%s\" expected)", path,
                         HWM_HEADER);
                goto bad;
            }
            continue;
        }
        char *f[4], *s2 = NULL;
        int n = 0;
        for (char *t = strtok_r(line, " ", &s2); t && n < 5; t = strtok_r(NULL, " ", &s2))
            f[n < 4 ? n : 3] = t, n++;
        uint64_t gen, seq, iv;
        if (n != 4 || vcfg_parse_u64(f[1], UINT64_MAX, &gen) ||
            vcfg_parse_u64(f[2], UINT64_MAX, &seq) ||
            vcfg_parse_u64(f[3], VIGIL_WIRE_INTERVAL_MAX_MS, &iv)) {
            snprintf(err, cap, "%s:%u: expected ID GENERATION SEQUENCE INTERVAL_MS", path, lineno);
            goto bad;
        }
        uint64_t slack = hwm_slack(flush, (uint32_t)iv);
        seq = seq > UINT64_MAX - slack ? UINT64_MAX : seq + slack;
        int rc = vigil_monitor_restore(m, f[0], gen, seq, now);
        if (rc == -VIGIL_EBADID) {
            snprintf(err, cap, "%s:%u: invalid node id", path, lineno);
            goto bad;
        }
        /* A node no longer accepted (auto-registration off) or no room: nothing to guard. */
        if (rc == 0)
            restored++;
    }
    free(buf);
    return restored;
bad:
    free(buf);
    return -1;
}

int hwm_save(struct vio_fs *fs, const char *path, const struct vigil_monitor *m)
{
    size_t n = vigil_monitor_node_count(m);
    /* An id, three numbers of at most 20 digits, separators: 128 bytes a line. */
    size_t cap = 32 + n * 128, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    len += (size_t)snprintf(buf, cap, "%s\n", HWM_HEADER);
    for (size_t i = 0; i < n; i++) {
        const struct vigil_node *node = vigil_monitor_node_at(m, i);
        uint64_t gen = vigil_node_generation(node), seq = vigil_node_sequence(node);
        if (gen == 0 && seq == 0)
            continue; /* never heard: no mark */
        len +=
            (size_t)snprintf(buf + len, cap - len, "%s %llu %llu %llu\n", vigil_node_id(node),
                             (unsigned long long)gen, (unsigned long long)seq,
                             (unsigned long long)(vigil_node_interval(node) / VIGIL_NSEC_PER_MSEC));
    }
    int rc = fs->ops->replace(fs, path, buf, len, 0600);
    free(buf);
    return rc;
}
