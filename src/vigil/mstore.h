/*
 * The monitor's use of its state store (monitor.state_dir; the store
 * itself is vio_store, src/io/vio.h): what is loaded at start and what is
 * written, when.
 *
 * At start: the largest event sequence number ever handed out (the core
 * continues after it), the newest event_history events into the history
 * (so `vigil events --since SEQ` resumes where a reader stopped, across
 * restarts), and every node's mark and state. Marks are raised by
 * hwm_slack, as the state file's are (hwm.h, docs/security.md). A node
 * known before the restart and not gone (any state but left) is declared:
 * it gets startup_grace to be heard, as a configured node does, so the
 * downtime kills nobody, and a node that died meanwhile is declared dead
 * when the grace ends. A node that left is restored with its mark only
 * (unknown, no deadline), as the state file does for every node.
 *
 * While running: events are queued as the loop drains them from the core
 * and written in one transaction per loop turn (mstore_commit), before
 * the API can serve them; the marks and states of all nodes every
 * state_flush, in slices of a few milliseconds (mstore_save_slice), and at
 * exit whole (mstore_save). Nothing is written per heartbeat.
 */
#ifndef VIGIL_MSTORE_H
#define VIGIL_MSTORE_H

#include <vigil/vigil.h>

#include "config.h"
#include "evlog.h"
#include "io/vio.h"

struct mstore;

/* What was found in the store at start, for the start-up line. */
struct mstore_loaded {
    size_t nodes;    /* marks restored */
    size_t declared; /* of them, declared for a fresh detection period */
    size_t events;   /* events put back into the history */
    uint64_t last_seq;
};

/*
 * Opens the store in mc->state_dir through env and loads it into m and
 * history (see above). Returns 0, or -1 with the reason in err.
 */
int mstore_open(struct vio_env *env, const struct vcfg_monitor *mc, struct vigil_monitor *m,
                struct evlog *history, vigil_time_t now, struct mstore **out,
                struct mstore_loaded *loaded, char *err, size_t cap);

/* Queues an event (json: its rendering, copied) for the next commit. */
void mstore_add_event(struct mstore *s, const struct evrec *r, const char *json);

/*
 * Writes the queued events in one transaction. 0, or -errno (they stay
 * queued, and go with the next commit; at most MSTORE_QUEUE_MAX are kept).
 */
int mstore_commit(struct mstore *s);

/* Writes the queued events and every node's mark and state, in one transaction. */
int mstore_save(struct mstore *s, const struct vigil_monitor *m);

/*
 * Writes the queued events and the marks and states of at most max nodes
 * of the table, from index *from on, in one transaction, and moves *from
 * past them: a save in slices, so that a table of a million nodes never
 * holds the loop for the time of one huge transaction. Returns 0 (*from
 * is then the table's size when the sweep is complete), or -errno.
 */
int mstore_save_slice(struct mstore *s, const struct vigil_monitor *m, size_t *from, size_t max);

/* Events dropped from a full queue that the store kept refusing. */
uint64_t mstore_lost(const struct mstore *s);

/* What went wrong last. */
const char *mstore_error(const struct mstore *s);
/* The SQLite store behind s (for its outbox), or NULL (a state_file, or no store). */
struct vio_store *mstore_store(struct mstore *s);

void mstore_free(struct mstore *s);

/* Events kept queued while the store refuses writes (a full disk): then the oldest go. */
#define MSTORE_QUEUE_MAX 65536

#endif
