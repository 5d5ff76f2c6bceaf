/*
 * The monitor's log writer. Detection must never wait for the log: a log
 * on a pipe that nobody reads, a slow disk or a stalled journal would
 * otherwise stop the event loop in write(), with heartbeats unread and
 * SIGTERM unanswered. The loop appends lines to a bounded buffer (a mutex,
 * no I/O); a thread of its own writes them out. When the buffer is full a
 * line is dropped and counted, never waited for.
 */
#ifndef VIGIL_LOGQ_H
#define VIGIL_LOGQ_H

#include <stdint.h>
#include <stdio.h>

struct logq;

/*
 * Starts the writer for out (which it flushes after each batch), buffering
 * at most cap bytes. Create it with the signals the program handles
 * blocked, so that the thread inherits the mask. NULL on failure.
 */
struct logq *logq_new(FILE *out, size_t cap);

/* Appends line and a newline. Never blocks on I/O; drops (and counts) when full. */
void logq_write(struct logq *q, const char *line);

/* Lines dropped so far. */
uint64_t logq_dropped(struct logq *q);

/*
 * Writes what is buffered, waiting at most timeout_ms for the writer, then
 * stops it and frees q. Returns 0, or -1 if the writer is stuck in write():
 * it is then left to the exit, and the caller must not close out.
 */
int logq_free(struct logq *q, int timeout_ms);

#endif
