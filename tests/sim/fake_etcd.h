/*
 * A small etcd v3 for the simulator, answering the gateway's JSON calls a
 * vigil monitor makes (leader.c and actgate.c) through the fake HTTP
 * client (fake_http.h):
 *
 *   /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke
 *   /v3/kv/range (one key), /v3/kv/put
 *   /v3/kv/txn, with compares on CREATE, MOD, VERSION and VALUE (EQUAL),
 *   and request_put / request_range ops
 *
 * as etcd 3.4's gateway answers them: 64-bit integers as strings, keys and
 * values in base64, false and zero fields left out. Keys have a create and
 * a mod revision and may be attached to a lease; a lease expires on the
 * virtual clock (checked before every call, exactly at its expiry) and
 * takes its keys with it. A call takes effect when it is made; how long
 * its answer takes, or whether it arrives, is the caller's to decide.
 */
#ifndef VIGIL_SIM_FAKE_ETCD_H
#define VIGIL_SIM_FAKE_ETCD_H

#include "fake_http.h"

struct fake_etcd;

struct fake_etcd *fake_etcd_new(vigil_time_t *clock);
void fake_etcd_free(struct fake_etcd *e);

/*
 * Answers call (its URL's path from "/v3/" on) into ans: the status and
 * the body (ans->delay is left alone). An unknown path or a body that is
 * not JSON gets a 400, as the gateway answers.
 */
void fake_etcd_answer(struct fake_etcd *e, const struct vio_http_call *call,
                      struct fake_http_answer *ans);

/* Drops the leases whose time has come (with their keys); calls do it themselves. */
void fake_etcd_expire(struct fake_etcd *e);
/*
 * The value of key now (leases expired first), or NULL when absent; its
 * create revision in *create_rev (may be NULL). Valid until the next call.
 */
const char *fake_etcd_get(struct fake_etcd *e, const char *key, int64_t *create_rev);
/* The store's revision: it grows with every change. */
int64_t fake_etcd_revision(const struct fake_etcd *e);

#endif
