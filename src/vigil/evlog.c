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
 * An event is rendered here and only here, so that the log, the hooks, the
 * API and the CLI always agree on what an event says:
 *
 * - JSON (jansson) for the API, the JSON log and the standard input of hooks.
 *   Durations are seconds as numbers, so that a consumer never has to know
 *   that the core counts nanoseconds.
 * - One readable line for the text log and the CLI.
 * - Its fields as text (seconds, address, type) for the line and for the
 *   hooks' environment variables.
 *
 * The CLI only has the API's JSON, so evrec_from_json turns that back into
 * the event and the CLI prints it with evrec_format_text: the line a
 * terminal shows is the log's line by construction, not by a second copy of
 * its format. The way back is strict (a field missing or of the wrong type
 * is an error, not a default), since a guess would print a line the monitor
 * never wrote.
 *
 * A pause event is not about a node: the monitor found that it had not run
 * for a while (a stopped process, a VM pause). In memory its node is "" and
 * its since_last is the length of the pause; its JSON has neither node nor
 * states nor evidence, only pause_s and paused_since; the text line says
 * so in words.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fmt.h"
#include "evlog.h"
#include "vigil/sender.h" /* vigil_addr_parse */

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

json_t *vigil_json_level(double v)
{
    if (!isfinite(v))
        return json_null();
    return json_real(fabs(v) < 1e-6 ? 0 : v);
}

/* Adds value under key, taking the reference; false if either failed. */
static bool put(json_t *obj, const char *key, json_t *value)
{
    return value && json_object_set_new(obj, key, value) == 0;
}

/* A check's status by the state that stands for it (VIGIL_EVENT_CHECK). */
static const char *check_status_text(enum vigil_state s)
{
    return s == VIGIL_STATE_ALIVE     ? "passing"
           : s == VIGIL_STATE_SUSPECT ? "warning"
           : s == VIGIL_STATE_DEAD    ? "critical"
                                      : "unknown";
}

static int check_status_from_text(const char *s)
{
    static const char *const names[] = {"unknown", "passing", "warning", "critical"};
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

const char *evrec_type_name(const struct evrec *r)
{
    return r->ev.type == VIGIL_EVENT_PAUSE    ? "pause"
           : r->ev.type == VIGIL_EVENT_LEADER ? "leader"
           : r->ev.type == VIGIL_EVENT_ACTION ? "action"
           : r->ev.type == VIGIL_EVENT_CHECK  ? "check"
                                              : "state";
}

const char *evrec_node(const struct evrec *r)
{
    return evrec_is_own(r) && r->ev.type != VIGIL_EVENT_ACTION ? "" : r->ev.node;
}

void evrec_format_addr(const struct evrec *r, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
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
    evrec_format_addr(r, addr, sizeof(addr));

    json_t *o = json_object();
    json_t *e = NULL;
    if (!o)
        goto fail;
    if (ev->type == VIGIL_EVENT_PAUSE) {
        /*
         * The monitor's own stall: when it began, how long it lasted. No
         * node, no states, no detector evidence: it is about none of them.
         */
        char since[64];
        vigil_format_wall(r->wall_us - ev->since_last / 1000, since, sizeof(since));
        if (!put(o, "seq", json_integer((json_int_t)ev->seq)) ||
            !put(o, "type", json_string(evrec_type_name(r))) ||
            !put(o, "time", json_string(when)) ||
            !put(o, "time_us", json_integer((json_int_t)r->wall_us)) ||
            !put(o, "reason", json_string(ev->reason ? ev->reason : "")) ||
            !put(o, "pause_s", json_real(ns_to_s(ev->since_last))) ||
            !put(o, "paused_since", json_string(since)))
            goto fail;
        return o;
    }
    if (ev->type == VIGIL_EVENT_LEADER) {
        /* Who leads the redundant monitors now, as this one sees it (null: nobody known). */
        if (!put(o, "seq", json_integer((json_int_t)ev->seq)) ||
            !put(o, "type", json_string(evrec_type_name(r))) ||
            !put(o, "time", json_string(when)) ||
            !put(o, "time_us", json_integer((json_int_t)r->wall_us)) ||
            !put(o, "reason", json_string(ev->reason ? ev->reason : "")) ||
            !put(o, "leader", ev->node[0] ? json_string(ev->node) : json_null()) ||
            !put(o, "epoch", json_integer((json_int_t)ev->generation)))
            goto fail;
        return o;
    }
    if (ev->type == VIGIL_EVENT_ACTION) {
        /* Acting on a node: what was done or decided, about which event, which attempt. */
        if (!put(o, "seq", json_integer((json_int_t)ev->seq)) ||
            !put(o, "type", json_string(evrec_type_name(r))) ||
            !put(o, "time", json_string(when)) ||
            !put(o, "time_us", json_integer((json_int_t)r->wall_us)) ||
            !put(o, "node", json_string(ev->node)) ||
            !put(o, "reason", json_string(ev->reason ? ev->reason : "")) ||
            !put(o, "about", json_integer((json_int_t)ev->generation)) ||
            !put(o, "attempt", json_integer((json_int_t)ev->sequence)))
            goto fail;
        return o;
    }
    if (ev->type == VIGIL_EVENT_CHECK) {
        /* A check's status changed: which check, from what to what, and its evidence. */
        e = json_object();
        if (!e)
            goto fail;
        bool cok = put(e, "latency_s", json_real(ns_to_s(ev->latency))) &&
                   put(e, "code", json_integer((json_int_t)ev->code)) &&
                   put(e, "detail", json_string(ev->detail));
        if (!cok)
            goto fail;
        bool in = put(o, "evidence", e);
        e = NULL; /* o's now, or released */
        if (!in || !put(o, "seq", json_integer((json_int_t)ev->seq)) ||
            !put(o, "type", json_string(evrec_type_name(r))) ||
            !put(o, "time", json_string(when)) ||
            !put(o, "time_us", json_integer((json_int_t)r->wall_us)) ||
            !put(o, "node", json_string(ev->node)) ||
            !put(o, "check", json_string(ev->check ? ev->check : "")) ||
            !put(o, "old_status", json_string(check_status_text(ev->old_state))) ||
            !put(o, "new_status", json_string(check_status_text(ev->new_state))) ||
            !put(o, "reason", json_string(ev->reason ? ev->reason : "")) ||
            !put(o, "generation", json_integer((json_int_t)ev->generation)))
            goto fail;
        return o;
    }
    e = json_object();
    if (!e)
        goto fail;
    /* e is ours until it is set into o; jansson releases it if that fails. */
    bool ok = put(e, "since_last_s",
                  ev->since_last < 0 ? json_null() : json_real(ns_to_s(ev->since_last))) &&
              put(e, "level", vigil_json_level(ev->level)) &&
              put(e, "threshold", vigil_json_level(ev->threshold)) &&
              put(e, "mean_s", json_real(ns_to_s(ev->mean))) &&
              put(e, "std_dev_s", json_real(ns_to_s(ev->std_dev))) &&
              put(e, "loss", json_num(ev->loss)) &&
              put(e, "missed", json_integer((json_int_t)ev->missed));
    ok = ok && put(o, "seq", json_integer((json_int_t)ev->seq)) &&
         put(o, "type", json_string(evrec_type_name(r))) && put(o, "time", json_string(when)) &&
         put(o, "time_us", json_integer((json_int_t)r->wall_us)) &&
         put(o, "node", json_string(evrec_node(r))) &&
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

/* ---- back from JSON ---- */

/* A string member; NULL when absent or not a string. */
static const char *get_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* An integer member as evrec_to_json wrote it (a uint64 cast to json_int_t). */
static bool get_u64(const json_t *o, const char *key, uint64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/*
 * Seconds as nanoseconds. Finite, not negative and within the range of
 * vigil_time_t; null is null_ns when null_ok. The product is rounded, so
 * that ns / 1e9 * 1e9 comes back to ns.
 */
static bool get_secs(const json_t *o, const char *key, bool null_ok, vigil_time_t null_ns,
                     vigil_time_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (null_ok && json_is_null(v)) {
        *out = null_ns;
        return true;
    }
    if (!json_is_number(v))
        return false;
    double s = json_number_value(v);
    /* 9.2e9 s is the largest vigil_time_t; the bound leaves room for the rounding. */
    if (!(s >= 0) || !(s < 9.2e9))
        return false;
    *out = (vigil_time_t)llround(s * (double)VIGIL_NSEC_PER_SEC);
    return true;
}

/* A level or threshold: a number, or null for what JSON could not carry (infinity). */
static bool get_level(const json_t *o, const char *key, double *out)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_null(v)) {
        *out = INFINITY;
        return true;
    }
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

static bool get_state(const json_t *o, const char *key, enum vigil_state *out)
{
    const char *name = get_str(o, key);
    int s = name ? vigil_state_parse(name) : -1;
    if (s < 0)
        return false;
    *out = (enum vigil_state)s;
    return true;
}

int evrec_from_json(const json_t *o, struct evrec *r)
{
    if (!json_is_object(o) || !r)
        return -VIGIL_EINVAL;
    memset(r, 0, sizeof(*r));
    struct vigil_event *ev = &r->ev;
    const json_t *e = json_object_get(o, "evidence");
    const char *type = get_str(o, "type");
    const char *node = get_str(o, "node");
    const char *addr = get_str(o, "addr");
    uint64_t wall;
    if (!type || !get_str(o, "time") || !json_is_string(json_object_get(o, "reason")))
        return -VIGIL_EINVAL;
    if (!strcmp(type, "pause")) {
        /* The monitor's own: no node, no states, no evidence; its length. */
        ev->type = VIGIL_EVENT_PAUSE;
        ev->reason = get_str(o, "reason");
        if (node || e || !get_u64(o, "seq", &ev->seq) || !get_u64(o, "time_us", &wall) ||
            !get_secs(o, "pause_s", false, 0, &ev->since_last) || !get_str(o, "paused_since"))
            return -VIGIL_EINVAL;
        r->wall_us = (int64_t)wall;
        return 0;
    }
    if (!strcmp(type, "leader")) {
        ev->type = VIGIL_EVENT_LEADER;
        ev->reason = get_str(o, "reason");
        ev->since_last = -1;
        const json_t *l = json_object_get(o, "leader");
        if (node || e || !get_u64(o, "seq", &ev->seq) || !get_u64(o, "time_us", &wall) ||
            !get_u64(o, "epoch", &ev->generation) || !(json_is_null(l) || json_is_string(l)))
            return -VIGIL_EINVAL;
        if (json_is_string(l)) {
            const char *id = json_string_value(l);
            size_t len = strlen(id);
            if (!vigil_id_valid(id, len))
                return -VIGIL_EINVAL;
            memcpy(ev->node, id, len + 1);
        }
        r->wall_us = (int64_t)wall;
        return 0;
    }
    if (!strcmp(type, "action")) {
        ev->type = VIGIL_EVENT_ACTION;
        ev->reason = get_str(o, "reason");
        ev->since_last = -1;
        if (!node || e || !ev->reason || !get_u64(o, "seq", &ev->seq) ||
            !get_u64(o, "time_us", &wall) || !get_u64(o, "about", &ev->generation) ||
            !get_u64(o, "attempt", &ev->sequence))
            return -VIGIL_EINVAL;
        size_t len = strlen(node);
        if (len && !vigil_id_valid(node, len))
            return -VIGIL_EINVAL;
        memcpy(ev->node, node, len + 1);
        r->wall_us = (int64_t)wall;
        return 0;
    }
    if (!strcmp(type, "check")) {
        ev->type = VIGIL_EVENT_CHECK;
        ev->reason = get_str(o, "reason");
        ev->check = get_str(o, "check");
        ev->since_last = -1;
        int os = check_status_from_text(get_str(o, "old_status"));
        int ns = check_status_from_text(get_str(o, "new_status"));
        const char *detail = json_is_object(e) ? get_str(e, "detail") : NULL;
        const json_t *code = json_is_object(e) ? json_object_get(e, "code") : NULL;
        if (!node || !ev->check || !ev->reason || os < 0 || ns < 0 || !detail ||
            !json_is_integer(code) || !get_u64(o, "seq", &ev->seq) ||
            !get_u64(o, "time_us", &wall) || !get_u64(o, "generation", &ev->generation) ||
            !get_secs(e, "latency_s", false, 0, &ev->latency))
            return -VIGIL_EINVAL;
        size_t len = strlen(node);
        if (!vigil_id_valid(node, len))
            return -VIGIL_EINVAL;
        memcpy(ev->node, node, len + 1);
        ev->old_state = (enum vigil_state)os;
        ev->new_state = (enum vigil_state)ns;
        ev->code = (int64_t)json_integer_value(code);
        snprintf(ev->detail, sizeof(ev->detail), "%s", detail);
        r->wall_us = (int64_t)wall;
        return 0;
    }
    if (strcmp(type, "state") != 0)
        return -VIGIL_EINVAL;
    ev->type = VIGIL_EVENT_STATE;
    if (!json_is_object(e) || !node || !addr)
        return -VIGIL_EINVAL;
    size_t len = strlen(node);
    if (!vigil_id_valid(node, len))
        return -VIGIL_EINVAL;
    memcpy(ev->node, node, len + 1);
    ev->reason = get_str(o, "reason");
    if (!get_u64(o, "seq", &ev->seq) || !get_u64(o, "time_us", &wall) ||
        !get_u64(o, "generation", &ev->generation) || !get_u64(o, "sequence", &ev->sequence) ||
        !get_state(o, "old_state", &ev->old_state) || !get_state(o, "new_state", &ev->new_state) ||
        !get_secs(e, "since_last_s", true, -1, &ev->since_last) ||
        !get_secs(e, "mean_s", false, 0, &ev->mean) ||
        !get_secs(e, "std_dev_s", false, 0, &ev->std_dev) || !get_level(e, "level", &ev->level) ||
        !get_level(e, "threshold", &ev->threshold))
        return -VIGIL_EINVAL;
    /* The grid detector's evidence: absent from older monitors' events, 0 then. */
    const json_t *loss = json_object_get(e, "loss"), *missed = json_object_get(e, "missed");
    if ((loss && !json_is_number(loss)) || (missed && !json_is_integer(missed)))
        return -VIGIL_EINVAL;
    ev->loss = loss ? json_number_value(loss) : 0;
    ev->missed = missed ? (uint64_t)json_integer_value(missed) : 0;
    r->wall_us = (int64_t)wall;
    /* The address as vigil_addr_format wrote it: numeric, with its port. */
    if (addr[0] && vigil_addr_parse(addr, 0, &ev->addr) != 0)
        return -VIGIL_EINVAL;
    return 0;
}

/* ---- the readable line ---- */

void vigil_format_secs(vigil_time_t ns, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
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
        vigil_format_duration(ev->since_last, since, sizeof(since));
        snprintf(buf, cap,
                 "%s event %" PRIu64 ": monitor paused for %s: no node convicted for "
                 "heartbeats it could not read",
                 when, ev->seq, since);
        return;
    }
    if (ev->type == VIGIL_EVENT_ACTION) {
        char extra[64] = "";
        if (ev->generation && ev->sequence)
            snprintf(extra, sizeof(extra), " (event %" PRIu64 ", attempt %" PRIu64 ")",
                     ev->generation, ev->sequence);
        else if (ev->generation)
            snprintf(extra, sizeof(extra), " (event %" PRIu64 ")", ev->generation);
        snprintf(buf, cap, "%s event %" PRIu64 ": action: %s%s%s%s", when, ev->seq, ev->node,
                 ev->node[0] ? " " : "", ev->reason ? ev->reason : "", extra);
        return;
    }
    if (ev->type == VIGIL_EVENT_CHECK) {
        char lat[32];
        vigil_format_duration(ev->latency, lat, sizeof(lat));
        snprintf(buf, cap,
                 "%s event %" PRIu64 ": check %s/%s %s -> %s (%s) latency=%s code=%" PRId64
                 " detail=%s",
                 when, ev->seq, ev->node, ev->check ? ev->check : "",
                 check_status_text(ev->old_state), check_status_text(ev->new_state),
                 ev->reason ? ev->reason : "", lat, ev->code, ev->detail[0] ? ev->detail : "-");
        return;
    }
    if (ev->type == VIGIL_EVENT_LEADER) {
        if (ev->node[0])
            snprintf(buf, cap,
                     "%s event %" PRIu64 ": leadership: %s leads under epoch %" PRIu64 " (%s)",
                     when, ev->seq, ev->node, ev->generation, ev->reason ? ev->reason : "");
        else
            snprintf(buf, cap, "%s event %" PRIu64 ": leadership: no leader known (%s)", when,
                     ev->seq, ev->reason ? ev->reason : "");
        return;
    }
    if (ev->since_last < 0)
        snprintf(since, sizeof(since), "never");
    else
        vigil_format_duration(ev->since_last, since, sizeof(since));
    vigil_format_duration(ev->mean, mean, sizeof(mean));
    vigil_format_duration(ev->std_dev, sd, sizeof(sd));
    evrec_format_addr(r, addr, sizeof(addr));
    int len = snprintf(buf, cap,
                       "%s event %" PRIu64 ": %s %s -> %s (%s) since_last=%s level=%.2f "
                       "threshold=%.2f mean=%s sd=%s addr=%s",
                       when, ev->seq, ev->node, vigil_state_name(ev->old_state),
                       vigil_state_name(ev->new_state), ev->reason ? ev->reason : "", since,
                       ev->level, ev->threshold, mean, sd, addr[0] ? addr : "-");
    /* The grid detector's evidence (the only kind that sets a loss rate). */
    if (ev->loss > 0 && len > 0 && (size_t)len < cap)
        snprintf(buf + len, cap - (size_t)len, " loss=%.4f missed=%" PRIu64, ev->loss, ev->missed);
}
