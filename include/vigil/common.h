/*
 * Common definitions of libvigil: error codes, time, node ids, addresses.
 *
 * Time inside libvigil is always an int64_t count of nanoseconds handed in
 * by the caller. Monotonic times (arrivals, deadlines) come from the
 * caller's monotonic clock; wall-clock times (a sender's timestamp) are only
 * carried for display and never used for decisions.
 */
#ifndef VIGIL_COMMON_H
#define VIGIL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Nanoseconds. */
typedef int64_t vigil_time_t;

#define VIGIL_NSEC_PER_MSEC INT64_C(1000000)
#define VIGIL_NSEC_PER_SEC  INT64_C(1000000000)
/* "No deadline": later than any real time. */
#define VIGIL_TIME_NEVER INT64_MAX

/* Error codes. Functions return 0 on success or one of these, negated. */
enum vigil_error {
    VIGIL_OK = 0,
    VIGIL_EINVAL = 1,    /* invalid argument */
    VIGIL_ENOMEM = 2,    /* out of memory */
    VIGIL_ETRUNC = 3,    /* datagram shorter than its fields say */
    VIGIL_ETOOBIG = 4,   /* datagram or field longer than allowed */
    VIGIL_EMAGIC = 5,    /* not a vigil datagram */
    VIGIL_EVERSION = 6,  /* unsupported protocol version */
    VIGIL_ETYPE = 7,     /* unknown message type */
    VIGIL_EBADID = 8,    /* node id not 1..64 of [A-Za-z0-9._-] */
    VIGIL_EBADFIELD = 9, /* a field holds a value outside its range */
    VIGIL_EAUTH = 10,    /* authentication tag missing or wrong */
    VIGIL_ESTALE = 11,   /* (generation, sequence) not newer than seen */
    VIGIL_EFULL = 12,    /* node table full */
    VIGIL_EUNKNOWN = 13, /* node not known and auto-registration off */
    VIGIL_EEXIST = 14,   /* already exists */
    VIGIL_ENOENT = 15,   /* no such node */
    VIGIL_ESYS = 16,     /* a system call failed; see errno */
    VIGIL_ERROR_COUNT_ = 17
};

/* A static English description of an error code (positive or negative). */
const char *vigil_strerror(int err);

/* Node ids: 1 to 64 characters of [A-Za-z0-9._-]. */
#define VIGIL_ID_MAX 64

/* True if the first len bytes of id form a valid node id. */
bool vigil_id_valid(const char *id, size_t len);

/*
 * A compact network address (IPv4 or IPv6 and a port), kept small because
 * every node record holds one. family is AF_INET or AF_INET6 (or 0: none);
 * for AF_INET only the first 4 bytes of addr are used. port is in host
 * byte order.
 */
struct vigil_addr {
    uint8_t addr[16];
    uint16_t port;
    uint8_t family;
};

/* Formats an address as "1.2.3.4:5" or "[::1]:5" into buf (at least 56 bytes). */
void vigil_addr_format(const struct vigil_addr *a, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
