/*
 * Leader election through etcd v3, for redundant monitors.
 *
 * Several monitors may watch the same nodes; only one of them should act
 * (run failover actions) at a time. They elect that one through etcd, over
 * its v3 HTTP/JSON gateway, with the recipe etcd's own election package
 * uses:
 *
 *   - each candidate holds a lease (POST /v3/lease/grant, TTL seconds) and
 *     keeps it alive (POST /v3/lease/keepalive, every TTL/3);
 *   - it campaigns with one transaction (POST /v3/kv/txn): if the leader key
 *     does not exist (its create_revision is 0), put our id there attached
 *     to our lease, else read it. Exactly one candidate wins;
 *   - the winner is leader as long as the key it created stays, i.e. as long
 *     as its lease lives. The key's create_revision grows with every new
 *     leader: it is the fencing epoch. An action made conditional on it
 *     (leader_fence_check) is refused by etcd once another leader exists,
 *     whatever the old one believes;
 *   - everyone polls the key (POST /v3/kv/range, every TTL/3): a follower
 *     campaigns as soon as the key is gone, a leader steps down if the key
 *     is no longer its own. Polling rather than a watch: a watch over the
 *     gateway is a streaming response, which the vio_http client (whole
 *     responses only) does not offer. Polling bounds the takeover to the
 *     lease's expiry plus one period (TTL/3), which is what a watch would
 *     add to the expiry anyway in order of magnitude.
 *
 * A lease outlives a holder that stopped refreshing it by up to its TTL, and
 * a holder that was paused (SIGSTOP, a VM migration) cannot know how long.
 * So the leader keeps a local deadline: the send time of the last keepalive
 * etcd acknowledged, plus the TTL, minus a margin. etcd refreshed the lease
 * after that send, so its lease ends later than the deadline; at the
 * deadline, checked by a timer on the loop and again whenever the role is
 * asked for, the leader stops considering itself leader, before anyone else
 * can have been elected. It then revokes the old lease (best effort) and
 * starts again with a new one.
 *
 * Everything runs on a vio_loop through a vio_http client: no system call
 * here, so tests drive it in virtual time with the fake client
 * (tests/unit/test_leader.c scripts a small etcd).
 *
 * The monitor runs one candidate when monitor.etcd is set (monitord.c), and
 * its actions go through the gate of actgate.h. `vigil leader-probe`
 * (leader_probe.c) runs one alone, for the integration test and for
 * operators trying etcd out.
 */
#ifndef VIGIL_LEADER_H
#define VIGIL_LEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "io/vio.h"

/* The key candidates compete for when none is named. */
#define LEADER_KEY_DEFAULT "/vigil/leader"
/*
 * The lease's TTL when none is named: a crashed leader is replaced within
 * 5 s, plus etcd's check of expiries (every 500 ms), plus one poll period
 * (1.7 s): 7.2 s at worst, 5.5 s in the median measured (docs/
 * performance.md). A keepalive every 1.7 s is nothing
 * to etcd. etcd refuses TTLs below its minimum (1.5 s with its default
 * election timeout), hence LEADER_TTL_MIN.
 */
#define LEADER_TTL_DEFAULT (5 * VIGIL_NSEC_PER_SEC)
#define LEADER_TTL_MIN     (2 * VIGIL_NSEC_PER_SEC)
#define LEADER_TTL_MAX     (3600 * VIGIL_NSEC_PER_SEC)
/* Longest candidate id: a node id's length. */
#define LEADER_ID_MAX 64

enum leader_role {
    LEADER_ROLE_NONE,     /* no lease yet, or no leader known */
    LEADER_ROLE_FOLLOWER, /* another candidate holds the key */
    LEADER_ROLE_LEADER,   /* we hold the key, and our local deadline has not passed */
};

/* What a candidate knows; leader_id "" when no leader is known. */
struct leader_view {
    enum leader_role role;
    int64_t epoch; /* the leader key's create_revision; 0 when unknown */
    char leader_id[LEADER_ID_MAX + 1];
};

/* Called on the loop whenever the view changes (role, epoch or leader). */
typedef void (*leader_change_fn)(void *arg, const struct leader_view *v);

struct leader_opts {
    const char *endpoint; /* "http://127.0.0.1:2379" (a trailing '/' is ignored) */
    /*
     * Or several: the members of an etcd cluster. Requests go to one of
     * them; one that fails to answer (a transport error or a 5xx) moves
     * every later request to the next. Used when n_endpoints > 0.
     */
    const char *const *endpoints;
    size_t n_endpoints;
    const char *key;  /* NULL: LEADER_KEY_DEFAULT */
    const char *id;   /* this candidate, 1..LEADER_ID_MAX bytes; the key's value */
    vigil_time_t ttl; /* whole seconds, LEADER_TTL_MIN..MAX; 0: LEADER_TTL_DEFAULT */
    /*
     * Taken off the local deadline; 0: a fifth of the TTL (1 s of 5 s),
     * room for the keepalive's way to etcd and for clocks that run at
     * slightly different rates. Must be below TTL/2, so that the deadline
     * stays after the next keepalive (TTL/3 later).
     */
    vigil_time_t margin;
    leader_change_fn on_change; /* may be NULL */
    /*
     * The first tick (keepalive and poll) after leader_start, then one
     * every period: 0 for one period. Give each candidate a random share
     * of the period, so that candidates started together, or one
     * restarted right after a takeover, do not poll in step (a follower
     * whose poll always comes just before the lease's expiry waits almost
     * a whole period more to take over). Must be below the period.
     */
    vigil_time_t first_tick;
    /* Called on the loop each time etcd acknowledges a renewal of the lease (may be NULL). */
    void (*on_renewed)(void *arg);
    void *arg;
};

/* Counters, for logs and tests. */
struct leader_stats {
    uint64_t grants, keepalives, keepalive_failures, campaigns, polls, lease_losses;
};

struct leader;

/*
 * Makes a candidate on loop, taking over http (leader_free closes it: its
 * requests in flight point at the candidate). Does not start. Returns 0,
 * -VIGIL_EINVAL (an option out of range) or -VIGIL_ENOMEM; on error http is
 * left to the caller.
 */
int leader_new(struct vio_loop *loop, struct vio_http *http, const struct leader_opts *opts,
               struct leader **out);
/* Starts: grants a lease and campaigns. 0, or -errno if no request could start. */
int leader_start(struct leader *ld);
/*
 * Revokes the lease (best effort: the request is started, not waited for;
 * with a loop that keeps turning it ends the leadership at once rather
 * than after the TTL) and reports role NONE. The candidate stays idle
 * until leader_start.
 */
void leader_resign(struct leader *ld);
/* Frees ld and its HTTP client (requests in flight are abandoned). */
void leader_free(struct leader *ld);

/* The endpoint requests go to now, e.g. for other requests to etcd (actgate.c). */
const char *leader_endpoint(const struct leader *ld);
/* Tells that a request to endpoint failed to get an answer: the next one is used from now on. */
void leader_endpoint_failed(struct leader *ld, const char *endpoint);
/* The lease's TTL. */
vigil_time_t leader_ttl(const struct leader *ld);
/* The leader key, and this candidate's id. */
const char *leader_key(const struct leader *ld);
const char *leader_id(const struct leader *ld);

/* The current view. The role is LEADER only before the local deadline (checked now). */
void leader_view(struct leader *ld, struct leader_view *out);
bool leader_is_leader(struct leader *ld);
/* The local deadline of the lease (VIGIL_TIME_NEVER when none is held). */
vigil_time_t leader_deadline(const struct leader *ld);
const struct leader_stats *leader_stats(const struct leader *ld);
const char *leader_role_name(enum leader_role r);

/*
 * The body of a transaction (POST ENDPOINT/v3/kv/txn) that runs `success`
 * (a JSON array of etcd request ops, taken over even on failure) only if
 * the leader key `key` still has create_revision == epoch and value == id:
 * only while the leader of that epoch still holds the key. Returns a new
 * JSON object, or NULL when out of memory. etcd answers "succeeded": true
 * when the ops ran (leader_txn_succeeded).
 */
json_t *leader_fence_check(const char *key, const char *id, int64_t epoch, json_t *success);
/* A request_put op (key and value as bytes) to put in a fenced transaction's array. */
json_t *leader_put_op(const char *key, const char *value);
/* Parses a txn answer: 1 succeeded, 0 refused (compare failed), -VIGIL_EINVAL not an answer. */
int leader_txn_succeeded(const char *body, size_t len);

/*
 * POSTs the JSON o (taken over, freed whatever the outcome) to
 * endpoint + path ("/v3/kv/txn") on http, answering through done(arg);
 * body_max bounds the answer. Returns 0, or -errno if the request could not
 * start (done is then never called).
 */
int leader_post(struct vio_http *http, const char *endpoint, const char *path, json_t *o,
                vigil_time_t timeout, size_t body_max, vio_http_done done, void *arg);

/* A 64-bit integer the gateway sends as a string (or as a number); def if absent. */
int64_t leader_jint64(const json_t *o, const char *name, int64_t def);
/* A 64-bit integer as the gateway wants it: a JSON string. */
json_t *leader_jstr_int64(int64_t x);
/* A JSON string holding the base64 of s (NULL when out of memory). */
json_t *leader_jb64(const char *s);

/* Base64 (the standard alphabet, padded), as the gateway wants keys and values. */
char *leader_b64(const void *data, size_t len);
/* Decodes into out (cap bytes, NUL terminated). Returns the length, or -VIGIL_EINVAL. */
long leader_unb64(const char *b64, char *out, size_t cap);

#endif
