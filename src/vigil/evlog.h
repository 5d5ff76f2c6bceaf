/*
 * The monitor program's event history: the last N events, in order, for the
 * API and the CLI, and the renderings of an event (a readable line, JSON and
 * its fields as text) shared by the log, the hooks, the API and the CLI,
 * with the way back from JSON to an event for the CLI.
 */
#ifndef VIGIL_EVLOG_H
#define VIGIL_EVLOG_H

#include <jansson.h>
#include <vigil/vigil.h>

/* An event as the program keeps it: the core's event and its wall-clock time. */
struct evrec {
    struct vigil_event ev;
    int64_t wall_us; /* wall clock of ev.time, microseconds since the epoch */
};

struct evlog;

/*
 * Flags for every json_dumps of the program: 12 significant digits, as the
 * API writes (api.c), so that 0.67 prints as 0.67 and not as jansson's
 * default 17 digits (0.67000000000000004). Durations are seconds: 12
 * digits keep microseconds for durations up to about eleven days.
 */
#define VIGIL_JSON_REAL JSON_REAL_PRECISION(12)

/*
 * A detector level (or a threshold) for JSON: null when not finite (JSON
 * has no infinity), 0 when below a millionth (phi's level just after a
 * heartbeat is 1e-137: noise, shown as such), else the value, printed with
 * VIGIL_JSON_REAL's 12 digits. Not rounded further: the CLI prints levels
 * read back from JSON with 2 decimals, as the log prints the level itself,
 * and a coarser rounding first would make the two differ.
 */
json_t *vigil_json_level(double v);

/* A history of at most cap events (older ones are dropped from memory, not from the log). */
struct evlog *evlog_new(uint32_t cap);
void evlog_free(struct evlog *l);
void evlog_push(struct evlog *l, const struct evrec *r);
/* Number of events held, and the i-th oldest held (0 <= i < count). */
size_t evlog_count(const struct evlog *l);
const struct evrec *evlog_at(const struct evlog *l, size_t i);
/* Sequence number of the newest event (0 if none). */
uint64_t evlog_last_seq(const struct evlog *l);

/*
 * JSON of an event: {"seq":..,"type":"state"|"pause","time":"RFC 3339 UTC with ms",
 * "time_us":..,"node":..,"old_state":..,"new_state":..,"reason":..,
 * "evidence":{"since_last_s":..|null,"level":..,"threshold":..,"mean_s":..,"std_dev_s":..},
 * "generation":..,"sequence":..,"addr":".."}. New reference; caller decrefs.
 */
json_t *evrec_to_json(const struct evrec *r);

/*
 * The inverse of evrec_to_json: reads the event in o into *r. Strict: every
 * field evrec_to_json writes must be there with its type, the type and the
 * states must be names it writes, node must be a node id ("" for a pause)
 * and addr an address or "". Returns 0, or -VIGIL_EINVAL (then *r is
 * unspecified). Durations come back in nanoseconds (to the nanosecond for
 * anything shorter than weeks); a null since_last_s is -1 (never heard) and a
 * null level or threshold is infinity (what JSON could not carry); seq,
 * generation and sequence come back modulo 2^64, as evrec_to_json wrote them.
 * ev.time, the monotonic time, is not in the JSON and is 0. r->ev.reason
 * points into o: it stays valid as long as o does.
 */
int evrec_from_json(const json_t *o, struct evrec *r);

/*
 * One readable line (no newline), e.g.
 * "2026-11-25T17:00:00.123Z event 12: web3 alive -> dead (timeout) since_last=5.012s
 *  level=8.31 threshold=8.00 mean=1s sd=10ms addr=127.0.0.1:40012", its durations
 * as fmt.c writes every duration.
 */
void evrec_format_text(const struct evrec *r, char *buf, size_t cap);

/*
 * The fields of an event as text, as the line above and the hooks'
 * environment show them.
 */
/* "state", "pause", "leader" or "action". */
const char *evrec_type_name(const struct evrec *r);
/*
 * Events that are not a node's change of state (a pause, a change of
 * leadership, an action's record): no states, no detector evidence. Only
 * an action's record may name a node.
 */
static inline bool evrec_is_own(const struct evrec *r)
{
    return r->ev.type != VIGIL_EVENT_STATE && r->ev.type != VIGIL_EVENT_CHECK;
}
/* The node of the event; "" for the monitor's own events. */
const char *evrec_node(const struct evrec *r);
/* The event's address ("1.2.3.4:5", "[::1]:5"), or "" when it has none; cap >= 56. */
void evrec_format_addr(const struct evrec *r, char *buf, size_t cap);

/* RFC 3339 UTC time with milliseconds ("2026-11-25T17:00:00.123Z"). */
void vigil_format_wall(int64_t wall_us, char *buf, size_t cap);

/*
 * Nanoseconds as seconds with 3 decimals, rounded to the nearest millisecond
 * ("5.012"): a number, for the hooks' environment (VIGIL_SINCE_LAST, ...),
 * which a program reads. Text for people uses vigil_format_duration (fmt.h).
 */
void vigil_format_secs(vigil_time_t ns, char *buf, size_t cap);

#endif
