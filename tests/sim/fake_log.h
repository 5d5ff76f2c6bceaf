/*
 * A fake log, for tests and the simulator: a struct vio_log that keeps its
 * lines in memory, up to a bound past which it drops and counts them as
 * the real one does when its buffer is full.
 *
 * Closing it through the interface frees it. A test that wants to look at
 * the lines after the program is done keeps it open and frees it with
 * fake_log_free instead.
 */
#ifndef VIGIL_SIM_FAKE_LOG_H
#define VIGIL_SIM_FAKE_LOG_H

#include "io/vio.h"

/* Keeps at most max_lines lines (0: no bound). NULL when out of memory. */
struct vio_log *fake_log_new(size_t max_lines);
void fake_log_free(struct vio_log *g);

size_t fake_log_count(const struct vio_log *g);
/* Line i (without its newline), or NULL. */
const char *fake_log_line(const struct vio_log *g, size_t i);
/* How many lines contain needle. */
size_t fake_log_grep(const struct vio_log *g, const char *needle);
/* The first line at or after from that contains needle, or -1. */
long fake_log_find(const struct vio_log *g, size_t from, const char *needle);
/* Forgets the lines (not the drop count). */
void fake_log_clear(struct vio_log *g);

#endif
