/*
 * Common helpers of libvigil: error strings, node id validation and address
 * formatting.
 *
 * These are the small pieces every other module leans on. Error codes are
 * plain integers so that every function can return "0 or a negative code",
 * and vigil_strerror() turns either sign back into a sentence for logs and
 * API answers. Node ids arrive from the network, so vigil_id_valid() is the
 * single definition of what a node id may contain: 1 to VIGIL_ID_MAX bytes
 * of [A-Za-z0-9._-]. That alphabet is safe to print, to put into a file
 * name, a URL path, an environment variable or a JSON string without any
 * escaping, which is why nothing wider is allowed.
 *
 * vigil_addr_format() only formats bytes that the caller already holds; it
 * uses inet_ntop() for IPv6 because the canonical text form (RFC 5952, with
 * "::" compression) is fiddly, and inet_ntop() is pure formatting: no system
 * call, no global state. Everything here is pure code.
 */
#include "vigil/common.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <sys/socket.h>

const char *vigil_strerror(int err)
{
    /* Indexed by enum vigil_error; the static assert below keeps them in step. */
    static const char *const messages[] = {
        [VIGIL_OK] = "success",
        [VIGIL_EINVAL] = "invalid argument",
        [VIGIL_ENOMEM] = "out of memory",
        [VIGIL_ETRUNC] = "datagram shorter than its fields say",
        [VIGIL_ETOOBIG] = "datagram or field longer than allowed",
        [VIGIL_EMAGIC] = "not a vigil datagram",
        [VIGIL_EVERSION] = "unsupported protocol version",
        [VIGIL_ETYPE] = "unknown message type",
        [VIGIL_EBADID] = "invalid node id",
        [VIGIL_EBADFIELD] = "field value out of range",
        [VIGIL_EAUTH] = "authentication tag missing or wrong",
        [VIGIL_ESTALE] = "generation and sequence not newer than seen",
        [VIGIL_EFULL] = "node table full",
        [VIGIL_EUNKNOWN] = "unknown node",
        [VIGIL_EEXIST] = "already exists",
        [VIGIL_ENOENT] = "no such node",
        [VIGIL_ESYS] = "system call failed",
    };
    _Static_assert(sizeof messages / sizeof messages[0] == VIGIL_ERROR_COUNT_,
                   "one message per error code");

    /* INT_MIN has no positive counterpart; it is not one of ours anyway. */
    if (err == INT_MIN)
        return "unknown error";
    if (err < 0)
        err = -err;
    if (err >= VIGIL_ERROR_COUNT_)
        return "unknown error";
    return messages[err];
}

bool vigil_id_valid(const char *id, size_t len)
{
    if (id == NULL || len == 0 || len > VIGIL_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        /*
         * Range comparisons rather than isalnum(): the ctype functions
         * depend on the process locale, and the id alphabet must not.
         */
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

void vigil_addr_format(const struct vigil_addr *a, char *buf, size_t cap)
{
    if (buf == NULL || cap == 0)
        return;
    if (a == NULL || a->family == 0) {
        snprintf(buf, cap, "-");
        return;
    }
    if (a->family == AF_INET) {
        snprintf(buf, cap, "%u.%u.%u.%u:%u", a->addr[0], a->addr[1], a->addr[2], a->addr[3],
                 (unsigned)a->port);
        return;
    }
    if (a->family == AF_INET6) {
        char text[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, a->addr, text, sizeof text) == NULL) {
            /* Cannot happen with a buffer of INET6_ADDRSTRLEN; stay defined anyway. */
            snprintf(buf, cap, "?");
            return;
        }
        snprintf(buf, cap, "[%s]:%u", text, (unsigned)a->port);
        return;
    }
    /* A family this library never creates: say so rather than guess. */
    snprintf(buf, cap, "?");
}
