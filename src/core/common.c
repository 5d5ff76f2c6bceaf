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
        [VIGIL_EFUTURE] = "generation or send time too far in the future",
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

/*
 * The id alphabet as a table: one load per character on the heartbeat path
 * instead of six comparisons. Written out rather than built from ctype
 * functions, which depend on the process locale; the id alphabet must not.
 */
static const uint8_t id_char[256] = {
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1,
    ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1,
    ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['.'] = 1, ['_'] = 1,
    ['-'] = 1};

bool vigil_id_valid(const char *id, size_t len)
{
    if (id == NULL || len == 0 || len > VIGIL_ID_MAX)
        return false;
    unsigned bad = 0;
    for (size_t i = 0; i < len; i++)
        bad |= id_char[(unsigned char)id[i]] ^ 1u;
    return bad == 0;
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
