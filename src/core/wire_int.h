/*
 * What libvigil's own code shares about the wire format beyond the public
 * <vigil/wire.h>: a decode that trusts a header already checked, so that
 * the monitor, which peeks at every datagram's header to find the node's
 * key, does not check the same header again.
 */
#ifndef VIGIL_CORE_WIRE_INT_H
#define VIGIL_CORE_WIRE_INT_H

#include <vigil/wire.h>

/*
 * vigil_wire_decode_keys(buf, len, k, hb) for a datagram whose header
 * vigil_wire_peek(buf, len, pk) has accepted, without checking it again:
 * the same result, the same errors. pk must come from this very buf and
 * len.
 */
int vigil__wire_decode_peeked(const uint8_t *buf, size_t len, const struct vigil_wire_peek *pk,
                              const struct vigil_wire_keys *k, struct vigil_heartbeat *hb);

#endif
