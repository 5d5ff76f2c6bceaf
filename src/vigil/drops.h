/*
 * Why datagrams were dropped, and from where: the monitor's diagnosis of
 * agents that cannot get through ("12 datagrams from 10.0.0.5 claiming
 * web1 failed authentication: wrong key?").
 *
 * Every dropped datagram is noted with its source host, the node id it
 * claims (or none, when it does not even decode that far) and the reason.
 * The notes are counted in a small fixed table for one window (a minute);
 * at the end of the window the monitor logs one line per (host, id,
 * reason), the largest first, and starts over. The table is bounded: it
 * holds the first DROPS_USED (host, id, reason) of the window, and what
 * comes after a flood of many hosts or ids has filled it is counted as
 * "other" and summed by reason, so that a flood costs a bounded amount of
 * memory and log (a source that first appears after the flood is then
 * seen only in those sums). Pure: no clock and no I/O; the monitor calls
 * it.
 */
#ifndef VIGIL_DROPS_H
#define VIGIL_DROPS_H

#include <stddef.h>
#include <stdint.h>

#include <vigil/monitor.h>

enum drop_reason {
    DROP_MALFORMED = 0,
    DROP_AUTH,
    DROP_UNKNOWN_KEY,
    DROP_UNSEALED,
    DROP_STALE,
    DROP_FUTURE,
    DROP_UNKNOWN_NODE,
    DROP_TABLE_FULL,
    DROP_REASONS
};

/*
 * Slots of the table, and entries a window holds (three quarters, so that
 * a lookup always meets a free slot soon); beyond them drops count as
 * "other".
 */
#define DROPS_ENTRIES 128
#define DROPS_USED    96
/* Lines a summary gives at most; the rest are summed in one more line. */
#define DROPS_LINES 10

struct drop_entry {
    struct vigil_addr host;    /* the source address, port 0 */
    char id[VIGIL_ID_MAX + 1]; /* the claimed id, "" when none */
    uint8_t reason;
    uint64_t count;
};

struct drops {
    struct drop_entry e[DROPS_ENTRIES];
    size_t n;
    uint64_t other; /* drops that found no room in the table */
    uint64_t total; /* every drop of the window */
    uint64_t per_reason[DROP_REASONS];
};

/* The reason of a rejected datagram from the result of vigil_monitor_on_datagram. */
int drops_reason(int rc, bool unknown_key, bool unsealed);
/* A short name ("auth_failed") and what it usually means, for people. */
const char *drops_reason_name(enum drop_reason r);
const char *drops_reason_hint(enum drop_reason r);

void drops_reset(struct drops *t);
/* Notes one drop: from (may be NULL), the claimed id (id_len 0: none), why. */
void drops_note(struct drops *t, const struct vigil_addr *from, const char *id, size_t id_len,
                enum drop_reason r);
/*
 * Writes the window's summary, one line per call of line(arg, text), the
 * largest counts first (at most DROPS_LINES, then one line for the rest),
 * and resets the window. window_s: its length, for the text. Returns the
 * lines written (0 when nothing was dropped).
 */
size_t drops_flush(struct drops *t, double window_s, void (*line)(void *arg, const char *text),
                   void *arg);

#endif
