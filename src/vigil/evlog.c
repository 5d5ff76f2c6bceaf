/*
 * The monitor program's event history and the renderings of an event.
 *
 * The history is a ring of the last cap events. The API and the CLI ask for
 * "the recent events" and an operator asks "why is web3 dead?" long after the
 * decision was made, so the program keeps the events themselves, not lines of
 * text. A push copies the record into the next slot and overwrites the oldest
 * one when the ring is full: O(1), and no allocation after evlog_new(), since
 * the monitor's loop pushes every event it drains.
 *
 * The same event is rendered in two ways, here and only here, so that the log,
 * the hooks and the API always agree on what an event says:
 *
 * - JSON (jansson) for the API, the JSON log and the standard input of hooks.
 *   Durations are seconds as numbers, so that a consumer never has to know
 *   that the core counts nanoseconds.
 * - One readable line for the text log.
 *
 * A pause event is not about a node: the monitor found that it had not run
 * for a while (a stopped process, a VM pause). Its node is "" and its
 * since_last is the length of the pause; the text line says so in words.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evlog.h"

struct evlog {
    struct evrec *ring; /* cap slots */
    uint32_t cap;
    uint32_t head;     /* slot of the oldest event held */
    uint32_t count;    /* events held, at most cap */
    uint64_t last_seq; /* kept apart so that it is right even with cap 0 */
};

struct evlog *evlog_new(uint32_t cap)
{
    struct evlog *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    if (cap > 0) {
        l->ring = calloc(cap, sizeof(*l->ring));
        if (!l->ring) {
            free(l);
            return NULL;
        }
    }
    l->cap = cap;
    return l;
}

void evlog_free(struct evlog *l)
{
    if (!l)
        return;
    free(l->ring);
    free(l);
}

void evlog_push(struct evlog *l, const struct evrec *r)
{
    if (!l || !r)
        return;
    l->last_seq = r->ev.seq;
    if (l->cap == 0)
        return;
    if (l->count < l->cap) {
        l->ring[(l->head + l->count) % l->cap] = *r;
        l->count++;
    } else {
        /* Full: the oldest slot becomes the newest. */
        l->ring[l->head] = *r;
        l->head = (l->head + 1) % l->cap;
    }
}

size_t evlog_count(const struct evlog *l)
{
    return l ? l->count : 0;
}

const struct evrec *evlog_at(const struct evlog *l, size_t i)
{
    if (!l || i >= l->count)
        return NULL;
    return &l->ring[(l->head + i) % l->cap];
}

uint64_t evlog_last_seq(const struct evlog *l)
{
    return l ? l->last_seq : 0;
}

void vigil_format_wall(int64_t wall_us, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    /* Floor division, so that times before 1970 still get a ms field in 0..999. */
    int64_t sec = wall_us / 1000000;
    int64_t us = wall_us % 1000000;
    if (us < 0) {
        us += 1000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, cap, "invalid-time");
        return;
    }
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us / 1000));
}

/* Nanoseconds as seconds, for JSON. */
static double ns_to_s(vigil_time_t ns)
{
    return (double)ns / (double)VIGIL_NSEC_PER_SEC;
}

/*
 * A number for JSON. JSON has no infinity or NaN (jansson refuses them), and
 * a detector level can be infinite when a node has been silent for very
 * long: such values become null rather than making the whole event fail.
 */
static json_t *json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Adds value under key, taking the reference; false if either failed. */
static bool put(json_t *obj, const char *key, json_t *value)
{
    return value && json_object_set_new(obj, key, value) == 0;
}

static const char *evrec_type_name(const struct evrec *r)
{
    return r->ev.type == VIGIL_EVENT_PAUSE ? "pause" : "state";
}

/* The event's address, or "" when the event carries none. */
static void evrec_addr(const struct evrec *r, char *buf, size_t cap)
{
    if (r->ev.addr.family == 0)
        buf[0] = '\0';
    else
        vigil_addr_format(&r->ev.addr, buf, cap);
}

json_t *evrec_to_json(const struct evrec *r)
{
    if (!r)
        return NULL;
    const struct vigil_event *ev = &r->ev;
    char when[64];
    char addr[64]; /* vigil_addr_format asks for at least 56 bytes */
    vigil_format_wall(r->wall_us, when, sizeof(when));
    evrec_addr(r, addr, sizeof(addr));

    json_t *o = json_object();
    json_t *e = json_object();
    if (!o || !e)
        goto fail;
    /* e is ours until it is set into o; jansson releases it if that fails. */
    bool ok = put(e, "since_last_s",
                  ev->since_last < 0 ? json_null() : json_real(ns_to_s(ev->since_last))) &&
              put(e, "level", json_num(ev->level)) &&
              put(e, "threshold", json_num(ev->threshold)) &&
              put(e, "mean_s", json_real(ns_to_s(ev->mean))) &&
              put(e, "std_dev_s", json_real(ns_to_s(ev->std_dev))) &&
              put(e, "loss", json_num(ev->loss)) &&
              put(e, "missed", json_integer((json_int_t)ev->missed));
    ok = ok && put(o, "seq", json_integer((json_int_t)ev->seq)) &&
         put(o, "type", json_string(evrec_type_name(r))) && put(o, "time", json_string(when)) &&
         put(o, "time_us", json_integer((json_int_t)r->wall_us)) &&
         put(o, "node", json_string(ev->type == VIGIL_EVENT_PAUSE ? "" : ev->node)) &&
         put(o, "old_state", json_string(vigil_state_name(ev->old_state))) &&
         put(o, "new_state", json_string(vigil_state_name(ev->new_state))) &&
         put(o, "reason", json_string(ev->reason ? ev->reason : ""));
    if (!ok)
        goto fail;
    if (json_object_set_new(o, "evidence", e) != 0) {
        e = NULL; /* json_object_set_new released it */
        goto fail;
    }
    e = NULL;
    if (!put(o, "generation", json_integer((json_int_t)ev->generation)) ||
        !put(o, "sequence", json_integer((json_int_t)ev->sequence)) ||
        !put(o, "addr", json_string(addr)))
        goto fail;
    return o;
fail:
    json_decref(e);
    json_decref(o);
    return NULL;
}

/* Appends nanoseconds as seconds with 3 decimals ("5.012"), rounded to the ms. */
static void fmt_secs(vigil_time_t ns, char *buf, size_t cap)
{
    const char *sign = "";
    uint64_t u;
    if (ns < 0) {
        sign = "-";
        u = (uint64_t)0 - (uint64_t)ns;
    } else {
        u = (uint64_t)ns;
    }
    /* Half a millisecond, for rounding to the nearest millisecond. */
    uint64_t ms = (u + 500000) / 1000000;
    snprintf(buf, cap, "%s%" PRIu64 ".%03" PRIu64, sign, ms / 1000, ms % 1000);
}

void evrec_format_text(const struct evrec *r, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    if (!r) {
        buf[0] = '\0';
        return;
    }
    const struct vigil_event *ev = &r->ev;
    char when[64], since[32], mean[32], sd[32];
    char addr[64]; /* vigil_addr_format asks for at least 56 bytes */
    vigil_format_wall(r->wall_us, when, sizeof(when));

    if (ev->type == VIGIL_EVENT_PAUSE) {
        fmt_secs(ev->since_last, since, sizeof(since));
        snprintf(buf, cap,
                 "%s event %" PRIu64 ": monitor paused for %ss: no node convicted for "
                 "heartbeats it could not read",
                 when, ev->seq, since);
        return;
    }
    if (ev->since_last < 0)
        snprintf(since, sizeof(since), "never");
    else {
        fmt_secs(ev->since_last, since, sizeof(since) - 1);
        strcat(since, "s");
    }
    fmt_secs(ev->mean, mean, sizeof(mean));
    fmt_secs(ev->std_dev, sd, sizeof(sd));
    evrec_addr(r, addr, sizeof(addr));
    int len = snprintf(buf, cap,
                       "%s event %" PRIu64 ": %s %s -> %s (%s) since_last=%s level=%.2f "
                       "threshold=%.2f mean=%ss sd=%ss addr=%s",
                       when, ev->seq, ev->node, vigil_state_name(ev->old_state),
                       vigil_state_name(ev->new_state), ev->reason ? ev->reason : "", since,
                       ev->level, ev->threshold, mean, sd, addr[0] ? addr : "-");
    /* The grid detector's evidence (the only kind that sets a loss rate). */
    if (ev->loss > 0 && len > 0 && (size_t)len < cap)
        snprintf(buf + len, cap - (size_t)len, " loss=%.4f missed=%" PRIu64, ev->loss, ev->missed);
}
