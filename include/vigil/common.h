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

/*
 * Marks the functions of the public API. libvigil is built with
 * -fvisibility=hidden, so that only what these headers declare is exported
 * from the shared library; functions shared between its own files (the
 * vigil__ prefix) stay internal.
 */
#if defined(__GNUC__) || defined(__clang__)
#define VIGIL_EXPORT __attribute__((visibility("default")))
#else
#define VIGIL_EXPORT
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
    VIGIL_EFUTURE = 17,  /* generation or send time too far ahead of the receiver's clock */
    VIGIL_ERROR_COUNT_ = 18
};

/* A static English description of an error code (positive or negative). */
VIGIL_EXPORT const char *vigil_strerror(int err);

/*
 * Where libvigil gets its memory. calloc returns nmemb * size bytes, zeroed
 * and suitably aligned for any type, or NULL (libvigil never asks for more
 * than SIZE_MAX bytes in all); free releases what calloc returned and is
 * never called with NULL. ud is handed to both unchanged. Zeroed memory,
 * not malloc(), because the monitor allocates its node table once for
 * max_nodes and relies on calloc() leaving the pages it never uses
 * untouched, where a memset would touch them all.
 *
 * A structure of all NULL means the C library's calloc() and free().
 * libvigil handles every failed allocation: a call that needs memory
 * returns -VIGIL_ENOMEM and leaves everything as it was, and work that has
 * no error to return (an event, a node's new custom status) is dropped and
 * counted.
 */
struct vigil_allocator {
    void *(*calloc)(void *ud, size_t nmemb, size_t size);
    void (*free)(void *ud, void *ptr);
    void *ud;
};

/* Node ids: 1 to 64 characters of [A-Za-z0-9._-]. */
#define VIGIL_ID_MAX 64

/* True if the first len bytes of id form a valid node id. */
VIGIL_EXPORT bool vigil_id_valid(const char *id, size_t len);

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
VIGIL_EXPORT void vigil_addr_format(const struct vigil_addr *a, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
