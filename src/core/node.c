/*
 * Reading a node record from outside the monitor.
 *
 * struct vigil_node is private to the core (core/monitor_int.h): its
 * layout is tuned for the heartbeat path and changes with it (bookkeeping
 * such as the heap deadline and the lazy re-keying flags has no meaning
 * outside), and a caller that could write to it could break the monitor's
 * invariants. So callers hold const pointers to an opaque type and read
 * what a node means, not how it is stored, through these accessors. Each
 * is a plain load; none of them is on the heartbeat path.
 */
#include "core/monitor_int.h"

const char *vigil_node_id(const struct vigil_node *n)
{
    return vigil__node_id(n);
}

enum vigil_state vigil_node_state(const struct vigil_node *n)
{
    return (enum vigil_state)n->state;
}

vigil_time_t vigil_node_state_since(const struct vigil_node *n)
{
    return n->state_since;
}

vigil_time_t vigil_node_last_heard(const struct vigil_node *n)
{
    return n->last_heard;
}

uint64_t vigil_node_generation(const struct vigil_node *n)
{
    return n->generation;
}

uint64_t vigil_node_sequence(const struct vigil_node *n)
{
    return n->sequence;
}

uint64_t vigil_node_heartbeats(const struct vigil_node *n)
{
    return n->heartbeats;
}

vigil_time_t vigil_node_interval(const struct vigil_node *n)
{
    return (vigil_time_t)n->interval_ms * VIGIL_NSEC_PER_MSEC;
}

int64_t vigil_node_send_time_us(const struct vigil_node *n)
{
    return n->send_time_us;
}

bool vigil_node_declared(const struct vigil_node *n)
{
    return n->declared != 0;
}

bool vigil_node_polled(const struct vigil_node *n)
{
    return n->polled != 0;
}

bool vigil_node_member(const struct vigil_node *n)
{
    return n->member != 0;
}

bool vigil_node_check_down(const struct vigil_node *n)
{
    return n->check_down != 0;
}

uint32_t vigil_node_rise_count(const struct vigil_node *n)
{
    return n->rise_count;
}

const struct vigil_addr *vigil_node_addr(const struct vigil_node *n)
{
    return &n->addr;
}

bool vigil_node_status_stale(const struct vigil_node *n)
{
    return n->status_stale != 0;
}

struct vigil_status vigil_node_status(const struct vigil_node *n)
{
    if (n->status_wide)
        return *n->status.wide;
    struct vigil_status s = {
        .load1_milli = n->status.narrow.load1_milli,
        .load5_milli = n->status.narrow.load5_milli,
        .load15_milli = n->status.narrow.load15_milli,
        .mem_total_kib = n->status.narrow.mem_total_kib,
        .mem_avail_kib = n->status.narrow.mem_avail_kib,
        .uptime_s = n->status.narrow.uptime_s,
    };
    return s;
}

size_t vigil_node_custom_count(const struct vigil_node *n)
{
    return n->n_custom;
}

const struct vigil_custom *vigil_node_custom(const struct vigil_node *n, size_t i)
{
    return n->custom && i < n->n_custom ? &n->custom[i] : NULL;
}

const struct vigil_detector *vigil_node_detector_state(const struct vigil_node *n)
{
    return &n->det;
}

void vigil_monitor_node_qos(const struct vigil_monitor *m, const struct vigil_node *n,
                            struct vigil_node_qos *out)
{
    const struct vigil__susp *s = vigil__node_susp(m, n);
    out->mistakes = s ? s->mistakes : 0;
    out->false_deaths = s ? s->false_deaths : 0;
    out->mistake_time = s ? s->mistake_time : 0;
    out->first_heard = n->first_heard;
    out->received = n->heartbeats - n->gen_hb0;
    out->expected = n->heartbeats > 0 ? out->received + n->gen_missing : 0;
}

unsigned vigil_node_key_id(const struct vigil_node *n)
{
    return n->key_id;
}
