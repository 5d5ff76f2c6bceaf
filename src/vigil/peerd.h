/*
 * A member of a peer-to-peer cluster inside the daemon (docs/peer.md):
 * the SWIM core (src/core/swim.c) on a vio transport and timers, feeding
 * the monitor core what the membership decides (vigil_monitor_set_member),
 * so that the daemon's events, API, log, hooks and actions serve a member
 * as they serve a monitor. This member's status (load, memory, uptime,
 * custom pairs) travels as its metadata.
 */
#ifndef VIGIL_PEERD_H
#define VIGIL_PEERD_H

#include <jansson.h>

#include "config.h"
#include "io/vio.h"
#include <vigil/monitor.h>

struct peerd;

struct peerd_opts {
    struct vio_env *env;
    const struct vcfg_peer *cfg;
    struct vigil_monitor *mon;
    /* The membership changed the monitor core: its events are waiting (called in the loop). */
    void (*changed)(void *arg, vigil_time_t now);
    void (*log)(void *arg, const char *line);
    void *arg;
};

/* Reads the key, opens the socket, starts joining. 0, or -1 with err set. */
int peerd_new(const struct peerd_opts *o, struct peerd **out, char *err, size_t cap);
/* Tells the others this member leaves (they mark it left); the caller then stops. */
void peerd_leave(struct peerd *p);
void peerd_free(struct peerd *p);

/* GET /v1/members: the members as this one sees them, with the protocol's counters. */
json_t *peerd_members_json(void *p, vigil_time_t now);
/* The "peer" member of /v1/health. */
json_t *peerd_health_json(void *p, vigil_time_t now);
/* The protocol's counters and gauges as Prometheus text (malloc'd), for /metrics. */
char *peerd_metrics_text(void *p);
/* "cluster" or "none". */
const char *peerd_auth(const struct peerd *p);

/*
 * A member's status as metadata (docs/peer.md, "Status"): encodes st and
 * the custom pairs that fit into buf (VIGIL_SWIM_META_MAX bytes); returns
 * the length and sets *kept to the pairs that fit. Decoding fills hb's
 * status and custom pairs; 0, or -1 for metadata not in this format.
 */
size_t peerd_meta_encode(const struct vigil_status *st, const struct vigil_custom *custom,
                         size_t n_custom, uint8_t *buf, size_t *kept);
int peerd_meta_decode(const uint8_t *buf, size_t len, struct vigil_heartbeat *hb);

#endif
