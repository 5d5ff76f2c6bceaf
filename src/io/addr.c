/*
 * Network addresses: parsing "host:port" strings, converting between the
 * compact struct vigil_addr and the socket API's sockaddr, and resolving
 * monitor names.
 *
 * struct vigil_addr is what node records and events hold: 19 bytes, no
 * pointers, comparable with memcmp once zero-filled. The socket API wants a
 * sockaddr_in or sockaddr_in6, so every socket call goes through the two
 * conversions here. A dual-stack IPv6 socket reports IPv4 peers as
 * ::ffff:a.b.c.d; those are folded back to AF_INET so a peer seen on an
 * IPv4 socket and on a dual-stack one is the same address.
 *
 * Syntax: "1.2.3.4:5", "[::1]:5", "1.2.3.4", "::1", "[::1]", and for
 * resolution "name:5" or "name". A bare IPv6 address never carries a port
 * (in "::1:5" the 5 is part of the address); brackets are how an IPv6
 * address gets one. vigil_addr_parse takes numeric addresses only
 * (inet_pton, no lookup, no scope ids); vigil__addr_resolve also accepts
 * names, through getaddrinfo.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

#include <vigil/sender.h>

#include "io/netaddr.h"

/*
 * Longest "host:port" accepted: a DNS name is at most 253 characters,
 * plus brackets, a colon and five port digits; 300 leaves slack and keeps
 * the host buffers on the stack small.
 */
#define ADDR_STR_MAX 300

/* Parses 1 to 5 decimal digits holding 0..65535; anything else is -1. */
static int parse_port(const char *s, uint16_t *port)
{
    uint32_t v = 0;
    size_t n = 0;
    /* Five digits are enough for 65535; a sixth is always out of range. */
    for (; s[n] != '\0'; n++) {
        if (n >= 5 || s[n] < '0' || s[n] > '9')
            return -1;
        v = v * 10 + (uint32_t)(s[n] - '0');
    }
    if (n == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

int vigil__addr_split(const char *s, uint16_t default_port, char *host, size_t cap, uint16_t *port)
{
    if (s == NULL || host == NULL || port == NULL || cap == 0)
        return -VIGIL_EINVAL;
    size_t len = strnlen(s, ADDR_STR_MAX + 1);
    if (len == 0 || len > ADDR_STR_MAX)
        return -VIGIL_EINVAL;

    const char *h = s; /* start of the host part */
    size_t hlen;       /* its length */
    const char *p;     /* the port digits, or NULL */
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return -VIGIL_EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        /* Brackets are for IPv6 addresses only, which always hold a colon. */
        if (memchr(h, ':', hlen) == NULL)
            return -VIGIL_EINVAL;
        if (close[1] == '\0')
            p = NULL;
        else if (close[1] == ':')
            p = close + 2;
        else
            return -VIGIL_EINVAL;
    } else {
        const char *colon = strchr(s, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL) {
            /* No colon: a host alone. Two or more: a bare IPv6 address. */
            hlen = len;
            p = NULL;
        } else {
            hlen = (size_t)(colon - s);
            p = colon + 1;
        }
    }
    if (hlen == 0 || hlen >= cap)
        return -VIGIL_EINVAL;
    uint16_t pv = default_port;
    if (p != NULL && parse_port(p, &pv) < 0)
        return -VIGIL_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = pv;
    return 0;
}

/* Fills a from a numeric host; -1 if host is not a numeric address. */
static int parse_numeric(const char *host, uint16_t port, struct vigil_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (inet_pton(AF_INET, host, a->addr) == 1) {
        a->family = AF_INET;
    } else if (inet_pton(AF_INET6, host, a->addr) == 1) {
        a->family = AF_INET6;
    } else {
        memset(a, 0, sizeof(*a));
        return -1;
    }
    a->port = port;
    return 0;
}

/* Public (<vigil/sender.h>); marked here as that header does not mark it. */
int vigil_addr_parse(const char *s, uint16_t default_port, struct vigil_addr *a)
{
    char host[ADDR_STR_MAX + 1];
    uint16_t port;
    if (a == NULL)
        return -VIGIL_EINVAL;
    int rc = vigil__addr_split(s, default_port, host, sizeof(host), &port);
    if (rc < 0)
        return rc;
    if (parse_numeric(host, port, a) < 0)
        return -VIGIL_EINVAL;
    /* "[1.2.3.4]" was refused by the split (no colon inside brackets). */
    return 0;
}

int vigil__addr_to_sockaddr(const struct vigil_addr *a, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a->port);
        memcpy(&sin->sin_addr, a->addr, 4);
        *len = sizeof(*sin);
        return 0;
    }
    if (a->family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a->port);
        memcpy(&sin6->sin6_addr, a->addr, 16);
        *len = sizeof(*sin6);
        return 0;
    }
    *len = 0;
    return -VIGIL_EINVAL;
}

void vigil__addr_from_sockaddr(const struct sockaddr *sa, struct vigil_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        a->family = AF_INET;
        a->port = ntohs(sin->sin_port);
        memcpy(a->addr, &sin->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        a->port = ntohs(sin6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            /* The IPv4 address is the last 4 of the 16 bytes. */
            a->family = AF_INET;
            memcpy(a->addr, sin6->sin6_addr.s6_addr + 12, 4);
        } else {
            a->family = AF_INET6;
            memcpy(a->addr, &sin6->sin6_addr, 16);
        }
    }
}

int vigil__addr_resolve(const char *s, uint16_t default_port, struct sockaddr_storage *ss,
                        socklen_t *len, const char **why)
{
    char host[ADDR_STR_MAX + 1];
    uint16_t port;
    struct vigil_addr a;
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = "bad address syntax";
    if (vigil__addr_split(s, default_port, host, sizeof(host), &port) < 0)
        return -VIGIL_EINVAL;
    if (port == 0) {
        /* Nothing can be sent to port 0. */
        *why = "port 0";
        return -VIGIL_EINVAL;
    }
    if (parse_numeric(host, port, &a) == 0) {
        *why = "";
        return vigil__addr_to_sockaddr(&a, ss, len);
    }
    if (s[0] == '[') {
        *why = "not an IPv6 address inside brackets";
        return -VIGIL_EINVAL;
    }

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        *why = gai_strerror(rc);
        if (rc == EAI_NONAME || rc == EAI_FAIL || rc == EAI_FAMILY
#ifdef EAI_NODATA
            || rc == EAI_NODATA
#endif
#ifdef EAI_ADDRFAMILY
            || rc == EAI_ADDRFAMILY
#endif
        )
            return -VIGIL_EINVAL;
        return -VIGIL_ESYS;
    }
    /* The first answer is the system's preferred one (RFC 6724 order). */
    int out = -VIGIL_EINVAL;
    *why = "no IPv4 or IPv6 address for this name";
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        vigil__addr_from_sockaddr(ai->ai_addr, &a);
        a.port = port;
        out = vigil__addr_to_sockaddr(&a, ss, len);
        break;
    }
    freeaddrinfo(res);
    if (out == 0)
        *why = "";
    return out;
}
