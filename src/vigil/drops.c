/*
 * The window of dropped datagrams (drops.h): a fixed table searched by a
 * hash of (host, id, reason), open addressing over DROPS_ENTRIES slots
 * kept in insertion order in e[] with a small index beside them. A flood
 * of distinct hosts or ids fills the table once and is then only counted
 * ("other"), so that the cost per dropped datagram stays a hash and a few
 * comparisons.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drops.h"

int drops_reason(int rc, bool unknown_key, bool unsealed)
{
    switch (-rc) {
    case VIGIL_EAUTH:
        return unsealed ? DROP_UNSEALED : unknown_key ? DROP_UNKNOWN_KEY : DROP_AUTH;
    case VIGIL_ESTALE:
        return DROP_STALE;
    case VIGIL_EFUTURE:
        return DROP_FUTURE;
    case VIGIL_EUNKNOWN:
        return DROP_UNKNOWN_NODE;
    case VIGIL_EFULL:
        return DROP_TABLE_FULL;
    case 0:
        return -1;
    default:
        return DROP_MALFORMED;
    }
}

const char *drops_reason_name(enum drop_reason r)
{
    static const char *const names[DROP_REASONS] = {
        [DROP_MALFORMED] = "malformed",
        [DROP_AUTH] = "auth_failed",
        [DROP_UNKNOWN_KEY] = "unknown_key",
        [DROP_UNSEALED] = "unsealed",
        [DROP_STALE] = "stale",
        [DROP_FUTURE] = "future",
        [DROP_UNKNOWN_NODE] = "unknown_node",
        [DROP_TABLE_FULL] = "table_full",
    };
    return (unsigned)r < DROP_REASONS ? names[r] : "?";
}

const char *drops_reason_hint(enum drop_reason r)
{
    static const char *const hints[DROP_REASONS] = {
        [DROP_MALFORMED] = "were malformed: not a vigil agent, or a damaged datagram?",
        [DROP_AUTH] = "failed authentication: wrong key?",
        [DROP_UNKNOWN_KEY] = "were made with a key id the monitor does not hold: an agent on a "
                             "retired key, or a monitor not yet given the new one?",
        [DROP_UNSEALED] = "carried a status in clear to a monitor that wants it sealed: set "
                          "encrypt = true on the agent?",
        [DROP_STALE] = "were stale (not newer than what the node sent before): a replay, two "
                       "agents with one id, or an agent restarted without its generation file?",
        [DROP_FUTURE] = "came from the future (generation or send time ahead of the monitor's "
                        "clock): clock skew?",
        [DROP_UNKNOWN_NODE] = "came from a node that is not declared (auto_register is off)",
        [DROP_TABLE_FULL] = "came from a new node with the node table full (max_nodes)",
    };
    return (unsigned)r < DROP_REASONS ? hints[r] : "?";
}

void drops_reset(struct drops *t)
{
    memset(t, 0, sizeof(*t));
}

static uint32_t hash_of(const struct vigil_addr *h, const char *id, size_t id_len, unsigned r)
{
    /* FNV-1a: the table only spreads entries; nothing hostile can do worse than fill it. */
    uint32_t x = 2166136261u;
    const uint8_t *p = (const uint8_t *)h;
    for (size_t i = 0; i < sizeof(*h); i++)
        x = (x ^ p[i]) * 16777619u;
    for (size_t i = 0; i < id_len; i++)
        x = (x ^ (uint8_t)id[i]) * 16777619u;
    return (x ^ r) * 16777619u;
}

void drops_note(struct drops *t, const struct vigil_addr *from, const char *id, size_t id_len,
                enum drop_reason r)
{
    struct vigil_addr host;
    memset(&host, 0, sizeof(host));
    if (from) {
        host = *from;
        host.port = 0;
    }
    if (id_len > VIGIL_ID_MAX || id == NULL)
        id_len = 0;
    if (id == NULL)
        id = "";
    t->total++;
    if ((unsigned)r < DROP_REASONS)
        t->per_reason[r]++;
    uint32_t h = hash_of(&host, id, id_len, (unsigned)r);
    /* Linear probing over the slots in use; stops at the first free one. */
    for (size_t k = 0; k < DROPS_ENTRIES; k++) {
        struct drop_entry *e = &t->e[(h + k) % DROPS_ENTRIES];
        if (e->count == 0) {
            if (t->n == DROPS_USED)
                break;
            e->host = host;
            memcpy(e->id, id, id_len);
            e->id[id_len] = '\0';
            e->reason = (uint8_t)r;
            e->count = 1;
            t->n++;
            return;
        }
        if (e->reason == r && !memcmp(&e->host, &host, sizeof(host)) && strlen(e->id) == id_len &&
            !memcmp(e->id, id, id_len)) {
            e->count++;
            return;
        }
    }
    t->other++;
}

static int by_count_desc(const void *a, const void *b)
{
    const struct drop_entry *x = *(const struct drop_entry *const *)a;
    const struct drop_entry *y = *(const struct drop_entry *const *)b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

size_t drops_flush(struct drops *t, double window_s, void (*line)(void *arg, const char *text),
                   void *arg)
{
    if (t->total == 0)
        return 0;
    const struct drop_entry *sorted[DROPS_ENTRIES];
    size_t n = 0;
    for (size_t i = 0; i < DROPS_ENTRIES; i++)
        if (t->e[i].count)
            sorted[n++] = &t->e[i];
    qsort(sorted, n, sizeof(sorted[0]), by_count_desc);
    size_t lines = 0;
    uint64_t rest = t->other;
    char buf[512], host[64];
    for (size_t i = 0; i < n; i++) {
        const struct drop_entry *e = sorted[i];
        if (lines == DROPS_LINES) {
            rest += e->count;
            continue;
        }
        if (e->host.family)
            vigil_addr_format(&e->host, host, sizeof(host));
        else
            snprintf(host, sizeof(host), "an unknown address");
        /* The port is always 0 here: show the host alone. */
        size_t hl = strlen(host);
        if (hl > 2 && !strcmp(host + hl - 2, ":0"))
            host[hl - 2] = '\0';
        char claim[VIGIL_ID_MAX + 16];
        if (e->id[0])
            snprintf(claim, sizeof(claim), " claiming %s", e->id);
        else
            claim[0] = '\0';
        snprintf(buf, sizeof(buf), "dropped in the last %.0fs: %llu datagram%s from %s%s %s (%s)",
                 window_s, (unsigned long long)e->count, e->count == 1 ? "" : "s", host, claim,
                 drops_reason_hint((enum drop_reason)e->reason),
                 drops_reason_name((enum drop_reason)e->reason));
        line(arg, buf);
        lines++;
    }
    if (rest) {
        int off = snprintf(buf, sizeof(buf),
                           "dropped in the last %.0fs: %llu more datagrams from other sources, "
                           "ids or reasons (%llu in all:",
                           window_s, (unsigned long long)rest, (unsigned long long)t->total);
        for (int r = 0; r < DROP_REASONS && off > 0 && (size_t)off < sizeof(buf); r++)
            if (t->per_reason[r])
                off += snprintf(buf + off, sizeof(buf) - (size_t)off, " %s %llu",
                                drops_reason_name((enum drop_reason)r),
                                (unsigned long long)t->per_reason[r]);
        if (off > 0 && (size_t)off < sizeof(buf) - 1)
            snprintf(buf + off, sizeof(buf) - (size_t)off, ")");
        line(arg, buf);
        lines++;
    }
    drops_reset(t);
    return lines;
}
