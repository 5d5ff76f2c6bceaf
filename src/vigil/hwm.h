/*
 * The monitor's high-water marks across restarts: the newest (generation,
 * sequence) accepted from every node, kept in a small text file of its own
 * (monitor.state_file) until the durable state store exists.
 *
 * The file is replaced atomically (vio_fs replace) every state_flush and
 * at exit, never on the heartbeat path. Heartbeats accepted after the last
 * write are not in it; so that a crash does not let them be replayed, a
 * mark loaded from the file is raised by the heartbeats the node could
 * have sent in two flush intervals (hwm_slack). docs/security.md gives the
 * window that remains.
 */
#ifndef VIGIL_HWM_H
#define VIGIL_HWM_H

#include <vigil/vigil.h>

#include "io/vio.h"

/*
 * The sequence numbers a node sending every interval_ms can use in two
 * flush intervals, plus one: what a mark read from the file is raised by.
 * interval_ms 0 (a mark restored and never heard since: already raised)
 * gives 0.
 */
uint64_t hwm_slack(vigil_time_t flush, uint32_t interval_ms);

/*
 * Reads path (a missing file is an empty one) and restores every mark in
 * it into m, raised by hwm_slack. Returns the number of marks restored, or
 * -1 with "PATH:LINE: what is wrong" in err.
 */
int hwm_load(struct vio_fs *fs, const char *path, struct vigil_monitor *m, vigil_time_t flush,
             vigil_time_t now, char *err, size_t cap);

/* Writes the marks of every node heard (or restored) to path, atomically. 0 or -errno. */
int hwm_save(struct vio_fs *fs, const char *path, const struct vigil_monitor *m);

#endif
