/*
 * Sending heartbeats from inside an application (and from vigil agent).
 *
 * A vigil_sender owns one UDP socket per address family, the node's
 * identity (id, boot generation, sequence) and its custom status. It does
 * not run a thread or a timer: the caller calls vigil_sender_beat() at its
 * interval (vigil_sender_next() says when, on absolute deadlines that never
 * drift and never burst after a stall).
 *
 * By default it speaks wire version 2 (docs/protocol.md): each heartbeat is
 * a small beat (64 bytes with a key for an id of up to 32 bytes) that
 * names the sender's status version, and the full status (load, memory,
 * uptime, custom pairs) goes out in place of a beat when it is due: in the
 * first VIGIL_SENDER_STATUS_REPEAT heartbeats of a generation, in the
 * VIGIL_SENDER_STATUS_REPEAT heartbeats after the status changed (the
 * repeats stand in for the acknowledgement UDP does not give), and at
 * least once every status_every heartbeats. The status "changes" when the
 * custom pairs change or, once the application sets it, when
 * vigil_sender_set_status() gives other numbers; load, memory and uptime
 * sampled from /proc drift all the time and travel with the periodic full
 * status only. wire_version 1 sends every heartbeat in version 1, with the
 * full status, for monitors that predate version 2.
 *
 *   struct vigil_sender_config c;
 *   vigil_sender_config_default(&c);
 *   c.id = "app1"; c.monitors[0] = "127.0.0.1:7946"; c.n_monitors = 1;
 *   vigil_sender_new(&c, &s);
 *   vigil_sender_set_custom(s, "queue", "17");
 *   for (;;) { vigil_sender_beat(s); sleep until vigil_sender_next(s); }
 */
#ifndef VIGIL_SENDER_H
#define VIGIL_SENDER_H

#include "common.h"
#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VIGIL_SENDER_MAX_MONITORS 8
#define VIGIL_DEFAULT_PORT        7946

/*
 * The heartbeat intervals a sender accepts. The wire carries the interval
 * in whole milliseconds, from 1 ms up to VIGIL_WIRE_INTERVAL_MAX_MS (the
 * decoder refuses more: receivers derive timeouts from it), so the sender
 * accepts exactly that range. The default, one heartbeat a second, is the
 * interval most detectors are tuned for.
 */
#define VIGIL_SENDER_INTERVAL_MIN     VIGIL_NSEC_PER_MSEC
#define VIGIL_SENDER_INTERVAL_MAX     ((vigil_time_t)VIGIL_WIRE_INTERVAL_MAX_MS * VIGIL_NSEC_PER_MSEC)
#define VIGIL_SENDER_INTERVAL_DEFAULT VIGIL_NSEC_PER_SEC

/*
 * How often the full status travels at the least: once every 30 heartbeats
 * by default (every 30 s at the default interval, so the load and memory a
 * monitor shows are at most that old), and at most once every 3600.
 */
#define VIGIL_SENDER_STATUS_EVERY_DEFAULT 30
#define VIGIL_SENDER_STATUS_EVERY_MAX     3600
/*
 * Full statuses sent in a row after a change and at the start of a
 * generation: a monitor misses the change only if all three are lost
 * (at 1 % independent loss, one time in a million), and otherwise learns
 * of it at the next periodic full status.
 */
#define VIGIL_SENDER_STATUS_REPEAT 3

struct vigil_sender_config {
    const char *id;                                  /* node id */
    const char *monitors[VIGIL_SENDER_MAX_MONITORS]; /* "host:port", "[v6]:port", "host" */
    size_t n_monitors;
    vigil_time_t interval; /* default 1 s */
    const uint8_t *key;    /* VIGIL_WIRE_KEY_LEN bytes, or NULL */
    uint8_t key_id;        /* the key's id (0..VIGIL_WIRE_KEY_ID_MAX), sent in every datagram */
    /*
     * Seal (encrypt) the full statuses: the status and the custom pairs
     * travel under XChaCha20-Poly1305 (docs/protocol.md, "Encryption").
     * Needs a key and wire version 2. Beats are never sealed: they carry
     * nothing but liveness.
     */
    bool seal;
    uint64_t generation; /* 0: derived from the wall clock at start */
    bool sample_proc;    /* fill load/memory/uptime from /proc */
    /*
     * The full status goes out at least once every status_every heartbeats
     * (version 2): 1 to VIGIL_SENDER_STATUS_EVERY_MAX, 0 for the default
     * (VIGIL_SENDER_STATUS_EVERY_DEFAULT). 1 sends it every time.
     */
    uint32_t status_every;
    /*
     * The wire version to send: 2 (the default; 0 means 2) or 1, every
     * heartbeat with the full status, for monitors older than version 2.
     */
    uint8_t wire_version;
};

VIGIL_EXPORT void vigil_sender_config_default(struct vigil_sender_config *c);

struct vigil_sender;

/* Resolves the monitors and opens the sockets. Returns 0 or a negative error. */
VIGIL_EXPORT int vigil_sender_new(const struct vigil_sender_config *c, struct vigil_sender **out);
VIGIL_EXPORT void vigil_sender_free(struct vigil_sender *s);

/*
 * Switches to another key (a rotation: the node key under a new master
 * key) from the next heartbeat on. key: VIGIL_WIRE_KEY_LEN bytes; the
 * sender keeps only what it derives from it. A sender made without a key
 * cannot be given one (-VIGIL_EINVAL), nor can key_id exceed
 * VIGIL_WIRE_KEY_ID_MAX.
 */
VIGIL_EXPORT int vigil_sender_set_key(struct vigil_sender *s, const uint8_t *key, uint8_t key_id);

/*
 * Sets (value non-NULL) or removes (value NULL) a custom status pair. A
 * change is announced at the next heartbeat (a new status version, and
 * the full status), however many calls made it; setting the pairs a
 * sender already has changes nothing.
 */
VIGIL_EXPORT int vigil_sender_set_custom(struct vigil_sender *s, const char *key,
                                         const char *value);
/* Removes every custom pair. */
VIGIL_EXPORT void vigil_sender_clear_custom(struct vigil_sender *s);
/*
 * Overrides the sampled status (sample_proc false) for the next
 * heartbeats. From then on, other numbers count as a status change.
 */
VIGIL_EXPORT void vigil_sender_set_status(struct vigil_sender *s, const struct vigil_status *st);

/*
 * Sends one heartbeat now to every monitor (with leaving, the goodbye) and
 * moves the next deadline to the first slot of the fixed schedule that lies
 * in the future. In version 2 the heartbeat is a beat or, when one is due
 * (see the top of this file), the full status; /proc is sampled only for
 * a full status. Each heartbeat takes the next sequence number; a version
 * 2 sender whose sequence reaches UINT32_MAX (the wire's limit, 136 years
 * of beats a second, 50 days at 1 ms) starts the next generation
 * (generation + 1, sequence 1). Returns 0 or a negative error if no
 * monitor could be sent to.
 */
VIGIL_EXPORT int vigil_sender_beat(struct vigil_sender *s, bool leaving);

/* Monotonic time (CLOCK_MONOTONIC, ns) of the next scheduled heartbeat. */
VIGIL_EXPORT vigil_time_t vigil_sender_next(const struct vigil_sender *s);

/* Datagrams sent, and send errors, so far (a beat to three monitors counts three). */
VIGIL_EXPORT uint64_t vigil_sender_sent(const struct vigil_sender *s);
VIGIL_EXPORT uint64_t vigil_sender_errors(const struct vigil_sender *s);
VIGIL_EXPORT uint64_t vigil_sender_generation(const struct vigil_sender *s);
/* The status version the next version 2 heartbeat names (starts at 0 in every generation). */
VIGIL_EXPORT uint16_t vigil_sender_status_version(const struct vigil_sender *s);

/* The monotonic clock libvigil uses, in ns. */
VIGIL_EXPORT vigil_time_t vigil_clock_mono(void);
/* The wall clock in microseconds since the epoch. */
VIGIL_EXPORT int64_t vigil_clock_wall_us(void);

/* Samples load averages, memory and uptime from /proc. Returns 0 or -VIGIL_ESYS. */
VIGIL_EXPORT int vigil_status_sample(struct vigil_status *st);

/* Parses "host:port", "[v6]:port", "v4" or "v6" (numeric only) into a; default port if none. */
VIGIL_EXPORT int vigil_addr_parse(const char *s, uint16_t default_port, struct vigil_addr *a);

#ifdef __cplusplus
}
#endif

#endif
