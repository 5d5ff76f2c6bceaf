/*
 * Conversions between struct vigil_addr and the socket API's addresses, and
 * name resolution for "host:port" strings. Internal to libvigil (shared by
 * the sender and the monitor program); not part of the public API.
 */
#ifndef VIGIL_IO_NETADDR_H
#define VIGIL_IO_NETADDR_H

#include <sys/socket.h>

#include <vigil/common.h>

/*
 * Fills ss and *len from a (AF_INET or AF_INET6). Returns 0, or
 * -VIGIL_EINVAL if a has no usable family.
 */
int vigil__addr_to_sockaddr(const struct vigil_addr *a, struct sockaddr_storage *ss,
                            socklen_t *len);

/*
 * Fills a from sa. An IPv4-mapped IPv6 address (::ffff:1.2.3.4, as a
 * dual-stack socket reports IPv4 peers) becomes plain AF_INET, so that one
 * peer always has one representation. Any other family gives family 0.
 */
void vigil__addr_from_sockaddr(const struct sockaddr *sa, struct vigil_addr *a);

/*
 * Splits "host:port", "[v6]:port", "host", "[v6]" or a bare IPv6 address
 * into host (cap bytes, NUL terminated, without brackets) and port
 * (default_port when absent). Returns 0 or -VIGIL_EINVAL.
 */
int vigil__addr_split(const char *s, uint16_t default_port, char *host, size_t cap, uint16_t *port);

/*
 * Resolves "host:port" (host a name or a numeric address) to one socket
 * address: a numeric host without a lookup, a name with getaddrinfo
 * (AF_UNSPEC, SOCK_DGRAM), keeping its first, most preferred answer.
 * Returns 0; -VIGIL_EINVAL for bad syntax, port 0 or a name that does not
 * exist; -VIGIL_ESYS if the lookup itself failed (try again later). With
 * why non-NULL, *why is set to a static description of the failure.
 */
int vigil__addr_resolve(const char *s, uint16_t default_port, struct sockaddr_storage *ss,
                        socklen_t *len, const char **why);

#endif
