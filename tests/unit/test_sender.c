/*
 * Tests of the sending side of libvigil: address parsing and conversion
 * (src/io/addr.c), the heartbeat grid (src/core/schedule.c), /proc sampling
 * (src/io/procstat.c) and the sender itself (src/io/sender.c), which sends
 * real datagrams to sockets this test binds on the loopback interface and
 * decodes them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cmocka.h>

#include <vigil/vigil.h>

#include "core/schedule.h"
#include "io/netaddr.h"
#include "io/sender_io.h"

/* How long a test waits for a datagram on loopback before it fails. */
#define RECV_TIMEOUT_MS 2000

static const uint8_t KEY[VIGIL_WIRE_KEY_LEN] = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};

/* ---- addresses ---------------------------------------------------------- */

struct addr_case {
    const char *in;
    int family;          /* AF_INET, AF_INET6, or 0: must be refused */
    const char *numeric; /* the address as inet_pton reads it */
    uint16_t port;
};

static const struct addr_case addr_cases[] = {
    {"1.2.3.4:5", AF_INET, "1.2.3.4", 5},
    {"1.2.3.4", AF_INET, "1.2.3.4", 7946},
    {"255.255.255.255:65535", AF_INET, "255.255.255.255", 65535},
    {"0.0.0.0:0", AF_INET, "0.0.0.0", 0},
    {"127.0.0.1:00080", AF_INET, "127.0.0.1", 80},
    {"[::1]:5", AF_INET6, "::1", 5},
    {"::1", AF_INET6, "::1", 7946},
    {"[::1]", AF_INET6, "::1", 7946},
    {"[::]:7946", AF_INET6, "::", 7946},
    {"2001:db8::17", AF_INET6, "2001:db8::17", 7946},
    /* Without brackets every colon belongs to the IPv6 address. */
    {"::1:5", AF_INET6, "::1:5", 7946},
    {"[2001:db8::1]:65535", AF_INET6, "2001:db8::1", 65535},
    /* As written: parsing does not fold mapped addresses. */
    {"[::ffff:1.2.3.4]:9", AF_INET6, "::ffff:1.2.3.4", 9},
    {"", 0, NULL, 0},
    {":5", 0, NULL, 0},
    {"1.2.3.4:", 0, NULL, 0},
    {"1.2.3.4:65536", 0, NULL, 0},
    {"1.2.3.4:123456", 0, NULL, 0},
    {"1.2.3.4:-1", 0, NULL, 0},
    {"1.2.3.4:+5", 0, NULL, 0},
    {"1.2.3.4:5x", 0, NULL, 0},
    {"1.2.3.4: 5", 0, NULL, 0},
    {"1.2.3.4 :5", 0, NULL, 0},
    {" 1.2.3.4", 0, NULL, 0},
    {"1.2.3:5", 0, NULL, 0},
    {"256.1.1.1", 0, NULL, 0},
    {"localhost:5", 0, NULL, 0},
    {"localhost", 0, NULL, 0},
    {"[::1", 0, NULL, 0},
    {"[::1]x", 0, NULL, 0},
    {"[::1]:", 0, NULL, 0},
    {"[::1]:5:6", 0, NULL, 0},
    {"[]:5", 0, NULL, 0},
    {"[1.2.3.4]:5", 0, NULL, 0},
    {"[1.2.3.4]", 0, NULL, 0},
    {"fe80::1%lo", 0, NULL, 0},
    {"::g", 0, NULL, 0},
};

static void test_addr_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
        const struct addr_case *c = &addr_cases[i];
        struct vigil_addr a;
        memset(&a, 0xaa, sizeof(a));
        int rc = vigil_addr_parse(c->in, 7946, &a);
        if (c->family == 0) {
            if (rc != -VIGIL_EINVAL)
                fail_msg("\"%s\" accepted (rc %d)", c->in, rc);
            continue;
        }
        if (rc != 0)
            fail_msg("\"%s\" refused (rc %d)", c->in, rc);
        uint8_t want[16] = {0};
        assert_int_equal(inet_pton(c->family, c->numeric, want), 1);
        assert_int_equal(a.family, c->family);
        assert_int_equal(a.port, c->port);
        assert_memory_equal(a.addr, want, c->family == AF_INET ? 4 : 16);
        if (c->family == AF_INET) {
            /* The unused bytes are zero, so addresses compare with memcmp. */
            static const uint8_t zero[12];
            assert_memory_equal(a.addr + 4, zero, 12);
        }
    }
}

static void test_addr_parse_edges(void **state)
{
    (void)state;
    struct vigil_addr a;
    assert_int_equal(vigil_addr_parse(NULL, 1, &a), -VIGIL_EINVAL);
    assert_int_equal(vigil_addr_parse("1.2.3.4", 1, NULL), -VIGIL_EINVAL);
    /* The default port is used only when none is written. */
    assert_int_equal(vigil_addr_parse("1.2.3.4", 0, &a), 0);
    assert_int_equal(a.port, 0);
    assert_int_equal(vigil_addr_parse("1.2.3.4:1", 0, &a), 0);
    assert_int_equal(a.port, 1);
    /* An over-long string is refused, not truncated. */
    char longs[400];
    memset(longs, '1', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    assert_int_equal(vigil_addr_parse(longs, 1, &a), -VIGIL_EINVAL);
}

static void test_addr_split(void **state)
{
    (void)state;
    char host[16];
    uint16_t port = 0;
    assert_int_equal(vigil__addr_split("web1:80", 9, host, sizeof(host), &port), 0);
    assert_string_equal(host, "web1");
    assert_int_equal(port, 80);
    assert_int_equal(vigil__addr_split("web1.example", 9, host, sizeof(host), &port), 0);
    assert_string_equal(host, "web1.example");
    assert_int_equal(port, 9);
    /* A host of exactly cap - 1 bytes fits; one more does not. */
    assert_int_equal(vigil__addr_split("abcdefghijklmno:1", 9, host, sizeof(host), &port), 0);
    assert_string_equal(host, "abcdefghijklmno");
    assert_int_equal(vigil__addr_split("abcdefghijklmnop:1", 9, host, sizeof(host), &port),
                     -VIGIL_EINVAL);
}

static void test_sockaddr_conversion(void **state)
{
    (void)state;
    struct vigil_addr a, b;
    struct sockaddr_storage ss;
    socklen_t len;

    assert_int_equal(vigil_addr_parse("10.1.2.3:4567", 0, &a), 0);
    assert_int_equal(vigil__addr_to_sockaddr(&a, &ss, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 4567);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x0a010203);
    vigil__addr_from_sockaddr((const struct sockaddr *)&ss, &b);
    assert_memory_equal(&a, &b, sizeof(a));

    assert_int_equal(vigil_addr_parse("[2001:db8::5]:80", 0, &a), 0);
    assert_int_equal(vigil__addr_to_sockaddr(&a, &ss, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 80);
    assert_int_equal(sin6->sin6_addr.s6_addr[15], 5);
    vigil__addr_from_sockaddr((const struct sockaddr *)&ss, &b);
    assert_memory_equal(&a, &b, sizeof(a));

    /* A v4-mapped IPv6 peer becomes plain IPv4. */
    assert_int_equal(vigil_addr_parse("[::ffff:192.0.2.7]:99", 0, &a), 0);
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(vigil__addr_to_sockaddr(&a, &ss, &len), 0);
    vigil__addr_from_sockaddr((const struct sockaddr *)&ss, &b);
    struct vigil_addr want;
    assert_int_equal(vigil_addr_parse("192.0.2.7:99", 0, &want), 0);
    assert_memory_equal(&b, &want, sizeof(b));

    /* No family: refused one way, family 0 the other. */
    memset(&a, 0, sizeof(a));
    assert_int_equal(vigil__addr_to_sockaddr(&a, &ss, &len), -VIGIL_EINVAL);
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    memset(&b, 0x55, sizeof(b));
    vigil__addr_from_sockaddr((const struct sockaddr *)&ss, &b);
    assert_int_equal(b.family, 0);
    assert_int_equal(b.port, 0);
}

static void test_addr_resolve(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    const char *why = NULL;
    struct vigil_addr a;

    assert_int_equal(vigil__addr_resolve("127.0.0.1:99", 7946, &ss, &len, &why), 0);
    vigil__addr_from_sockaddr((const struct sockaddr *)&ss, &a);
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(a.port, 99);
    assert_int_equal(vigil__addr_resolve("[::1]", 7946, &ss, &len, NULL), 0);
    vigil__addr_from_sockaddr((const struct sockaddr *)&ss, &a);
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(a.port, 7946);

    /* A name (from /etc/hosts): a loopback address with the given port. */
    assert_int_equal(vigil__addr_resolve("localhost:4242", 7946, &ss, &len, &why), 0);
    vigil__addr_from_sockaddr((const struct sockaddr *)&ss, &a);
    assert_int_equal(a.port, 4242);
    if (a.family == AF_INET)
        assert_int_equal(a.addr[0], 127);
    else
        assert_true(a.family == AF_INET6 && a.addr[15] == 1);

    /* Nothing can be sent to port 0, and brackets hold addresses, not names. */
    assert_int_equal(vigil__addr_resolve("127.0.0.1:0", 7946, &ss, &len, &why), -VIGIL_EINVAL);
    assert_string_equal(why, "port 0");
    assert_int_equal(vigil__addr_resolve("[foo:bar]:5", 7946, &ss, &len, &why), -VIGIL_EINVAL);
    assert_int_equal(vigil__addr_resolve("host:99999", 7946, &ss, &len, &why), -VIGIL_EINVAL);
}

/* ---- the schedule, in virtual time --------------------------------------- */

static void test_schedule_grid(void **state)
{
    (void)state;
    const vigil_time_t start = 1000, iv = 100;
    /* Before the first slot: the first slot. */
    assert_int_equal(vigil__sched_next(start, iv, 0), 1000);
    assert_int_equal(vigil__sched_next(start, iv, 999), 1000);
    /* On a slot: the next one, strictly after now. */
    assert_int_equal(vigil__sched_next(start, iv, 1000), 1100);
    assert_int_equal(vigil__sched_next(start, iv, 1099), 1100);
    assert_int_equal(vigil__sched_next(start, iv, 1100), 1200);
    assert_int_equal(vigil__sched_next(start, iv, 1101), 1200);

    /* A beat due at 1100 that runs 3.5 intervals late. */
    vigil_time_t due = 1100, now = due + 350;
    assert_int_equal(vigil__sched_missed(due, iv, now), 3);
    vigil_time_t next = vigil__sched_next(start, iv, now);
    assert_int_equal(next, 1500);
    /* One beat at now, then the grid resumes: no burst, no phase shift. */
    assert_int_equal((next - start) % iv, 0);
    assert_true(next > now && next - now <= iv);
    assert_int_equal(vigil__sched_missed(next, iv, next), 0);

    /* Both sides of the missed-slot boundaries. */
    assert_int_equal(vigil__sched_missed(due, iv, due - 1), 0);
    assert_int_equal(vigil__sched_missed(due, iv, due + 99), 0);
    assert_int_equal(vigil__sched_missed(due, iv, due + 100), 1);
    assert_int_equal(vigil__sched_missed(due, iv, due + 199), 1);
    assert_int_equal(vigil__sched_missed(due, iv, due + 200), 2);

    /* Stepping beat by beat on time visits every slot once. */
    vigil_time_t t = start;
    for (int k = 1; k <= 50; k++) {
        t = vigil__sched_next(start, iv, t);
        assert_int_equal(t, start + k * iv);
    }
}

static void test_schedule_limits(void **state)
{
    (void)state;
    assert_int_equal(vigil__sched_next(0, 0, 5), VIGIL_TIME_NEVER);
    assert_int_equal(vigil__sched_next(0, -1, 5), VIGIL_TIME_NEVER);
    assert_int_equal(vigil__sched_missed(0, 0, 5), 0);
    /* The last representable slot, and the one after it. */
    const vigil_time_t iv = VIGIL_NSEC_PER_SEC;
    const vigil_time_t last = (VIGIL_TIME_NEVER / iv) * iv;
    assert_int_equal(vigil__sched_next(0, iv, last - 1), last);
    assert_int_equal(vigil__sched_next(0, iv, last), VIGIL_TIME_NEVER);
    /* A negative start works the same way. */
    assert_int_equal(vigil__sched_next(-250, 100, -250), -150);
    assert_int_equal(vigil__sched_next(-250, 100, 0), 50);
}

/* ---- /proc sampling ------------------------------------------------------ */

static void test_status_sample(void **state)
{
    (void)state;
    struct vigil_status st;
    struct sysinfo si;
    assert_int_equal(vigil_status_sample(&st), 0);
    assert_int_equal(sysinfo(&si), 0);
    /* The kernel's two views of total memory agree exactly. */
    assert_true(st.mem_total_kib > 0);
    assert_int_equal(st.mem_total_kib, (uint64_t)si.totalram * si.mem_unit / 1024);
    assert_true(st.mem_avail_kib <= st.mem_total_kib);
    assert_true(st.uptime_s > 0);
    uint64_t up = (uint64_t)si.uptime;
    assert_true(st.uptime_s + 2 >= up && st.uptime_s <= up + 2);
    /* Loads are thousandths; a million would be a parsing error, not a load. */
    assert_true(st.load1_milli < 1000000 && st.load5_milli < 1000000 && st.load15_milli < 1000000);
    assert_int_equal(vigil_status_sample(NULL), -VIGIL_EINVAL);
}

/* ---- the sender on loopback ---------------------------------------------- */

/* Binds a UDP socket on the loopback address of family; returns it and its port. */
static int bind_loopback(int family, uint16_t *port)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = in6addr_loopback;
        len = sizeof(*sin6);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        close(fd);
        return -1;
    }
    struct vigil_addr a;
    vigil__addr_from_sockaddr((struct sockaddr *)&ss, &a);
    *port = a.port;
    return fd;
}

/*
 * Receives one datagram (waiting at most RECV_TIMEOUT_MS) and decodes it,
 * as a monitor does: with the tag key derived from the cluster key, when
 * cluster_key is not NULL.
 */
static int recv_hb(int fd, const uint8_t *cluster_key, struct vigil_heartbeat *hb)
{
    uint8_t mac_key[VIGIL_WIRE_MAC_KEY_LEN];
    if (cluster_key != NULL)
        vigil_wire_mac_key(mac_key, cluster_key);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, RECV_TIMEOUT_MS) != 1)
        return -1000;
    uint8_t buf[2048];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0)
        return -1001;
    return vigil_wire_decode(buf, (size_t)n, cluster_key != NULL ? mac_key : NULL, hb);
}

/* True if a datagram is waiting on fd right now. */
static bool pending(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

static void test_sender_new_checks(void **state)
{
    (void)state;
    struct vigil_sender_config c;
    struct vigil_sender *s = (struct vigil_sender *)&c; /* must be reset to NULL */
    vigil_sender_config_default(&c);
    assert_int_equal(c.interval, VIGIL_NSEC_PER_SEC);
    assert_int_equal(c.n_monitors, 0);
    assert_null(c.key);

    c.id = "n1";
    assert_int_equal(vigil_sender_new(&c, &s), -VIGIL_EINVAL); /* no monitor */
    assert_null(s);
    c.monitors[0] = "127.0.0.1:9";
    c.n_monitors = 1;
    c.id = "bad id";
    assert_int_equal(vigil_sender_new(&c, &s), -VIGIL_EBADID);
    c.id = NULL;
    assert_int_equal(vigil_sender_new(&c, &s), -VIGIL_EINVAL);
    char longid[VIGIL_ID_MAX + 2];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    c.id = longid;
    assert_int_equal(vigil_sender_new(&c, &s), -VIGIL_EBADID);
    longid[VIGIL_ID_MAX] = '\0'; /* exactly 64: fine */
    assert_int_equal(vigil_sender_new(&c, &s), 0);
    vigil_sender_free(s);

    c.id = "n1";
    c.interval = VIGIL_NSEC_PER_MSEC - 1;
    assert_int_equal(vigil_sender_new(&c, &s), -VIGIL_EINVAL);
    c.interval = VIGIL_NSEC_PER_MSEC;
    assert_int_equal(vigil_sender_new(&c, &s), 0);
    vigil_sender_free(s);
    c.interval = 3600 * VIGIL_NSEC_PER_SEC;
    assert_int_equal(vigil_sender_new(&c, &s), 0);
    vigil_sender_free(s);
    c.interval = 3600 * VIGIL_NSEC_PER_SEC + 1;
    assert_int_equal(vigil_sender_new(&c, &s), -VIGIL_EINVAL);
    c.interval = VIGIL_NSEC_PER_SEC;

    c.monitors[0] = "127.0.0.1:0";
    assert_int_equal(vigil_sender_new(&c, &s), -VIGIL_EINVAL);
    c.monitors[0] = "[::1";
    assert_int_equal(vigil_sender_new(&c, &s), -VIGIL_EINVAL);
    c.monitors[0] = NULL;
    assert_int_equal(vigil_sender_new(&c, &s), -VIGIL_EINVAL);
    c.monitors[0] = "127.0.0.1";
    c.n_monitors = VIGIL_SENDER_MAX_MONITORS + 1;
    assert_int_equal(vigil_sender_new(&c, &s), -VIGIL_EINVAL);
    assert_int_equal(vigil_sender_new(NULL, &s), -VIGIL_EINVAL);
    assert_int_equal(vigil_sender_new(&c, NULL), -VIGIL_EINVAL);
    vigil_sender_free(NULL);
}

static void test_sender_heartbeats(void **state)
{
    (void)state;
    uint16_t port = 0;
    int fd = bind_loopback(AF_INET, &port);
    assert_true(fd >= 0);
    char mon[32];
    snprintf(mon, sizeof(mon), "127.0.0.1:%u", (unsigned)port);

    struct vigil_sender_config c;
    vigil_sender_config_default(&c);
    c.id = "web-1.example";
    c.monitors[0] = mon;
    c.n_monitors = 1;
    c.interval = 250 * VIGIL_NSEC_PER_MSEC;
    c.key = KEY;
    struct vigil_sender *s;
    int64_t before_us = vigil_clock_wall_us();
    assert_int_equal(vigil_sender_new(&c, &s), 0);
    int64_t after_us = vigil_clock_wall_us();

    /* Generation 0 becomes the wall clock at creation, in microseconds. */
    uint64_t gen = vigil_sender_generation(s);
    assert_true((int64_t)gen >= before_us && (int64_t)gen <= after_us);
    /* The first beat is due at once. */
    assert_true(vigil_sender_next(s) <= vigil_clock_mono());

    assert_int_equal(vigil_sender_set_custom(s, "requests", "10"), 0);
    assert_int_equal(vigil_sender_set_custom(s, "queue_depth", "3"), 0);

    struct vigil_heartbeat hb;
    for (uint64_t seq = 1; seq <= 3; seq++) {
        vigil_time_t t0 = vigil_clock_mono();
        assert_int_equal(vigil_sender_beat(s, false), 0);
        vigil_time_t t1 = vigil_clock_mono();
        vigil_time_t next = vigil_sender_next(s);
        /* The next slot is in the future and at most one interval away. */
        assert_true(next > t0 && next <= t1 + c.interval);

        memset(&hb, 0, sizeof(hb));
        assert_int_equal(recv_hb(fd, KEY, &hb), 0);
        assert_string_equal(hb.id, "web-1.example");
        assert_int_equal(hb.sequence, seq);
        assert_int_equal(hb.generation, gen);
        assert_int_equal(hb.flags & VIGIL_FLAG_LEAVING, 0);
        assert_int_equal(hb.flags & VIGIL_FLAG_AUTH, VIGIL_FLAG_AUTH);
        assert_int_equal(hb.interval_ms, 250);
        assert_true(hb.send_time_us >= before_us && hb.send_time_us <= vigil_clock_wall_us());
        /* sample_proc is on by default. */
        assert_true(hb.status.mem_total_kib > 0);
        assert_true(hb.status.uptime_s > 0);
        assert_int_equal(hb.n_custom, 2);
        assert_string_equal(hb.custom[0].key, "requests");
        assert_string_equal(hb.custom[0].value, "10");
        assert_string_equal(hb.custom[1].key, "queue_depth");
        assert_string_equal(hb.custom[1].value, "3");
    }
    assert_false(pending(fd)); /* one datagram per beat, not more */

    /* Replace one pair (it keeps its place), remove the other, add a third. */
    assert_int_equal(vigil_sender_set_custom(s, "requests", "11"), 0);
    assert_int_equal(vigil_sender_set_custom(s, "queue_depth", NULL), 0);
    assert_int_equal(vigil_sender_set_custom(s, "queue_depth", NULL), 0); /* already gone */
    assert_int_equal(vigil_sender_set_custom(s, "role", "primary db"), 0);
    assert_int_equal(vigil_sender_beat(s, false), 0);
    assert_int_equal(recv_hb(fd, KEY, &hb), 0);
    assert_int_equal(hb.sequence, 4);
    assert_int_equal(hb.n_custom, 2);
    assert_string_equal(hb.custom[0].key, "requests");
    assert_string_equal(hb.custom[0].value, "11");
    assert_string_equal(hb.custom[1].key, "role");
    assert_string_equal(hb.custom[1].value, "primary db");

    /*
     * With another cluster key the datagram does not verify, nor with the
     * cluster key itself: the tag is made with the key derived from it.
     */
    assert_int_equal(vigil_sender_beat(s, false), 0);
    uint8_t buf[2048];
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, RECV_TIMEOUT_MS), 1);
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    assert_true(n > 0);
    uint8_t other[VIGIL_WIRE_KEY_LEN], mac_key[VIGIL_WIRE_MAC_KEY_LEN];
    memcpy(other, KEY, sizeof(other));
    other[VIGIL_WIRE_KEY_LEN - 1] ^= 1;
    vigil_wire_mac_key(mac_key, other);
    assert_int_equal(vigil_wire_decode(buf, (size_t)n, mac_key, &hb), -VIGIL_EAUTH);
    assert_int_equal(vigil_wire_decode(buf, (size_t)n, KEY, &hb), -VIGIL_EAUTH);
    vigil_wire_mac_key(mac_key, KEY);
    assert_int_equal(vigil_wire_decode(buf, (size_t)n, mac_key, &hb), 0);
    assert_int_equal(hb.sequence, 5);

    /* Status set by the application replaces sampling. */
    struct vigil_status st = {.load1_milli = 1250,
                              .load5_milli = 7,
                              .load15_milli = 0,
                              .mem_total_kib = 1024,
                              .mem_avail_kib = 512,
                              .uptime_s = 99};
    vigil_sender_set_status(s, &st);
    vigil_sender_clear_custom(s);
    assert_int_equal(vigil_sender_beat(s, false), 0);
    assert_int_equal(recv_hb(fd, KEY, &hb), 0);
    assert_int_equal(hb.sequence, 6);
    assert_int_equal(hb.n_custom, 0);
    /* Field by field: the struct has padding, which neither side clears. */
    assert_int_equal(hb.status.load1_milli, st.load1_milli);
    assert_int_equal(hb.status.load5_milli, st.load5_milli);
    assert_int_equal(hb.status.load15_milli, st.load15_milli);
    assert_int_equal(hb.status.mem_total_kib, st.mem_total_kib);
    assert_int_equal(hb.status.mem_avail_kib, st.mem_avail_kib);
    assert_int_equal(hb.status.uptime_s, st.uptime_s);

    /* The goodbye is the next sequence number with the LEAVING flag. */
    assert_int_equal(vigil_sender_beat(s, true), 0);
    assert_int_equal(recv_hb(fd, KEY, &hb), 0);
    assert_int_equal(hb.sequence, 7);
    assert_int_equal(hb.flags & VIGIL_FLAG_LEAVING, VIGIL_FLAG_LEAVING);
    assert_false(pending(fd));

    assert_int_equal(vigil_sender_sent(s), 7);
    assert_int_equal(vigil_sender_errors(s), 0);
    vigil_sender_free(s);
    close(fd);
}

static void test_sender_grid(void **state)
{
    (void)state;
    struct vigil_sender_config c;
    vigil_sender_config_default(&c);
    c.id = "grid";
    c.monitors[0] = "127.0.0.1:9"; /* the discard port: nobody needs to read */
    c.n_monitors = 1;
    /* Long enough that the beats below all fall within one or two slots. */
    c.interval = 10 * VIGIL_NSEC_PER_SEC;
    c.sample_proc = false;
    struct vigil_sender *s;
    vigil_time_t t0 = vigil_clock_mono();
    assert_int_equal(vigil_sender_new(&c, &s), 0);
    vigil_time_t first = vigil_sender_next(s);
    assert_true(first >= t0 && first <= vigil_clock_mono());
    assert_int_equal(vigil_sender_beat(s, false), 0);
    vigil_time_t n1 = vigil_sender_next(s);
    assert_int_equal(n1 - first, c.interval);
    /* An early extra beat does not move the grid. */
    assert_int_equal(vigil_sender_beat(s, false), 0);
    vigil_time_t n2 = vigil_sender_next(s);
    assert_true(n2 >= n1);
    assert_int_equal((n2 - first) % c.interval, 0);
    vigil_sender_free(s);
}

static void test_sender_two_families(void **state)
{
    (void)state;
    uint16_t p4, p6;
    int fd4 = bind_loopback(AF_INET, &p4);
    int fd6 = bind_loopback(AF_INET6, &p6);
    assert_true(fd4 >= 0);
    if (fd6 < 0) {
        close(fd4);
        skip(); /* no IPv6 loopback here */
    }
    char m4[32], m6[32];
    snprintf(m4, sizeof(m4), "127.0.0.1:%u", (unsigned)p4);
    snprintf(m6, sizeof(m6), "[::1]:%u", (unsigned)p6);
    struct vigil_sender_config c;
    vigil_sender_config_default(&c);
    c.id = "dual";
    c.monitors[0] = m6;
    c.monitors[1] = m4;
    c.n_monitors = 2;
    struct vigil_sender *s;
    assert_int_equal(vigil_sender_new(&c, &s), 0);
    for (uint64_t seq = 1; seq <= 2; seq++) {
        assert_int_equal(vigil_sender_beat(s, seq == 2), 0);
        struct vigil_heartbeat h4, h6;
        /* No key configured: the datagrams carry no tag. */
        assert_int_equal(recv_hb(fd4, NULL, &h4), 0);
        assert_int_equal(recv_hb(fd6, NULL, &h6), 0);
        assert_int_equal(h4.flags & VIGIL_FLAG_AUTH, 0);
        assert_int_equal(h4.sequence, seq);
        assert_int_equal(h6.sequence, seq);
        /* The same heartbeat went to both. */
        assert_int_equal(h4.send_time_us, h6.send_time_us);
        assert_int_equal(h6.flags & VIGIL_FLAG_LEAVING, seq == 2 ? VIGIL_FLAG_LEAVING : 0);
    }
    assert_int_equal(vigil_sender_sent(s), 4);
    assert_int_equal(vigil_sender_errors(s), 0);
    vigil_sender_free(s);
    close(fd4);
    close(fd6);
}

static void test_sender_send_errors(void **state)
{
    (void)state;
    uint16_t port = 0;
    int fd = bind_loopback(AF_INET, &port);
    assert_true(fd >= 0);
    char mon[32];
    snprintf(mon, sizeof(mon), "127.0.0.1:%u", (unsigned)port);
    /*
     * The kernel refuses a datagram to the limited broadcast address from a
     * socket without SO_BROADCAST (EACCES), before anything leaves the host:
     * a send that fails every time.
     */
    struct vigil_sender_config c;
    vigil_sender_config_default(&c);
    c.id = "errs";
    c.monitors[0] = "255.255.255.255:9";
    c.monitors[1] = mon;
    c.n_monitors = 2;
    c.sample_proc = false;
    struct vigil_sender *s;
    assert_int_equal(vigil_sender_new(&c, &s), 0);
    /* One monitor reached is success; the other is counted. */
    assert_int_equal(vigil_sender_beat(s, false), 0);
    assert_int_equal(vigil_sender_sent(s), 1);
    assert_int_equal(vigil_sender_errors(s), 1);
    struct vigil_heartbeat hb;
    assert_int_equal(recv_hb(fd, NULL, &hb), 0);
    assert_int_equal(hb.sequence, 1);
    vigil_sender_free(s);

    /* With every monitor failing the beat fails, and errno says why. */
    c.n_monitors = 1;
    assert_int_equal(vigil_sender_new(&c, &s), 0);
    errno = 0;
    assert_int_equal(vigil_sender_beat(s, false), -VIGIL_ESYS);
    assert_true(errno == EACCES || errno == ENETUNREACH);
    assert_int_equal(vigil_sender_errors(s), 1);
    assert_int_equal(vigil_sender_beat(s, false), -VIGIL_ESYS);
    assert_int_equal(vigil_sender_errors(s), 2);
    assert_int_equal(vigil_sender_sent(s), 0);
    vigil_sender_free(s);
    close(fd);
}

static void test_sender_custom_limits(void **state)
{
    (void)state;
    struct vigil_sender_config c;
    vigil_sender_config_default(&c);
    c.id = "lim";
    c.monitors[0] = "127.0.0.1:9";
    c.n_monitors = 1;
    struct vigil_sender *s;
    assert_int_equal(vigil_sender_new(&c, &s), 0);

    assert_int_equal(vigil_sender_set_custom(s, "bad key", "1"), -VIGIL_EINVAL);
    assert_int_equal(vigil_sender_set_custom(s, "", "1"), -VIGIL_EINVAL);
    assert_int_equal(vigil_sender_set_custom(s, NULL, "1"), -VIGIL_EINVAL);
    assert_int_equal(vigil_sender_set_custom(s, "k", "tab\there"), -VIGIL_EINVAL);
    char v48[VIGIL_CUSTOM_VAL_MAX + 2];
    memset(v48, 'v', sizeof(v48) - 1);
    v48[sizeof(v48) - 1] = '\0';
    assert_int_equal(vigil_sender_set_custom(s, "k", v48), -VIGIL_EINVAL); /* 49 bytes */
    v48[VIGIL_CUSTOM_VAL_MAX] = '\0';
    assert_int_equal(vigil_sender_set_custom(s, "k", v48), 0); /* 48 bytes */
    assert_int_equal(vigil_sender_set_custom(s, "k", ""), 0);  /* empty is a value */
    vigil_sender_clear_custom(s);

    /* Sixteen pairs fit; a seventeenth key does not, a replacement does. */
    char key[16];
    for (int i = 0; i < VIGIL_CUSTOM_MAX; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(vigil_sender_set_custom(s, key, "1"), 0);
    }
    assert_int_equal(vigil_sender_set_custom(s, "k16", "1"), -VIGIL_EFULL);
    assert_int_equal(vigil_sender_set_custom(s, "k3", "2"), 0);
    assert_int_equal(vigil_sender_set_custom(s, "k3", NULL), 0);
    assert_int_equal(vigil_sender_set_custom(s, "k16", "1"), 0);
    assert_int_equal(vigil_sender_beat(s, false), 0);
    vigil_sender_free(s);

    /*
     * Longest id, a key, and pairs of the longest key and value: 72 header
     * + 64 id + 16 tag leaves 1048 of 1200 bytes, room for 12 pairs of 82
     * bytes (2 length bytes + 32 + 48) and 64 bytes more.
     */
    uint16_t port = 0;
    int fd = bind_loopback(AF_INET, &port);
    assert_true(fd >= 0);
    char mon[32];
    snprintf(mon, sizeof(mon), "127.0.0.1:%u", (unsigned)port);
    char id[VIGIL_ID_MAX + 1];
    memset(id, 'i', VIGIL_ID_MAX);
    id[VIGIL_ID_MAX] = '\0';
    c.id = id;
    c.key = KEY;
    c.monitors[0] = mon;
    assert_int_equal(vigil_sender_new(&c, &s), 0);
    char k32[VIGIL_CUSTOM_KEY_MAX + 1];
    memset(k32, 'k', VIGIL_CUSTOM_KEY_MAX);
    k32[VIGIL_CUSTOM_KEY_MAX] = '\0';
    for (int i = 0; i < 12; i++) {
        k32[0] = (char)('a' + i);
        assert_int_equal(vigil_sender_set_custom(s, k32, v48), 0);
    }
    k32[0] = 'z';
    assert_int_equal(vigil_sender_set_custom(s, k32, v48), -VIGIL_ETOOBIG);
    /* A 13th pair of 2 + 14 + 48 = 64 bytes fills the datagram exactly. */
    assert_int_equal(vigil_sender_set_custom(s, "zzzzzzzzzzzzzz", v48), 0);
    assert_int_equal(vigil_sender_set_custom(s, "zzzzzzzzzzzzzz", NULL), 0);
    /* One byte more does not fit; a refused new value leaves the old one. */
    assert_int_equal(vigil_sender_set_custom(s, "zzzzzzzzzzzzzzz", "1"), 0);
    assert_int_equal(vigil_sender_set_custom(s, "zzzzzzzzzzzzzzz", v48), -VIGIL_ETOOBIG);
    assert_int_equal(vigil_sender_beat(s, false), 0);
    struct vigil_heartbeat hb;
    assert_int_equal(recv_hb(fd, KEY, &hb), 0);
    assert_int_equal(hb.n_custom, 13);
    assert_string_equal(hb.custom[12].key, "zzzzzzzzzzzzzzz");
    assert_string_equal(hb.custom[12].value, "1");
    assert_string_equal(hb.custom[11].value, v48);
    vigil_sender_free(s);
    close(fd);
}

/* ---- wire version 2: beats, full statuses, through a fake transport ------ */

/* The fake clock and transport: what the sender sent last, and counts. */
struct fake_io {
    vigil_time_t now;
    uint8_t last[VIGIL_WIRE_MAX];
    size_t last_len;
    unsigned sent, samples;
    struct vigil_monitor *monitor; /* every datagram is also handed to it */
};

static vigil_time_t fake_now(void *arg)
{
    return ((struct fake_io *)arg)->now;
}

static int64_t fake_wall_us(void *arg)
{
    return INT64_C(1700000000000000) + ((struct fake_io *)arg)->now / 1000;
}

static int fake_send(void *arg, const struct vigil_addr *to, const uint8_t *buf, size_t len)
{
    struct fake_io *f = arg;
    (void)to;
    memcpy(f->last, buf, len);
    f->last_len = len;
    f->sent++;
    if (f->monitor)
        assert_int_equal(vigil_monitor_on_datagram(f->monitor, f->now, buf, len, NULL), 0);
    return 0;
}

static int fake_sample(void *arg, struct vigil_status *st)
{
    struct fake_io *f = arg;
    /* Gauges that move every time: not a status change. */
    st->load1_milli = ++f->samples;
    st->uptime_s = (uint64_t)(f->now / VIGIL_NSEC_PER_SEC);
    return 0;
}

static struct vigil_sender *fake_sender(struct fake_io *f, uint32_t status_every,
                                        uint8_t wire_version)
{
    struct vigil_sender_config c;
    vigil_sender_config_default(&c);
    c.id = "web-1";
    c.key = KEY;
    c.generation = 77;
    c.status_every = status_every;
    c.wire_version = wire_version;
    struct vigil_addr dest = {.family = AF_INET, .port = 7946, .addr = {127, 0, 0, 1}};
    struct vigil__sender_io io = {.now = fake_now,
                                  .wall_us = fake_wall_us,
                                  .send = fake_send,
                                  .sample = fake_sample,
                                  .arg = f};
    struct vigil_sender *s = NULL;
    assert_int_equal(vigil__sender_new_io(&c, &dest, 1, &io, &s), 0);
    return s;
}

/* Beats once, a second later than the last time, and decodes what went out. */
static struct vigil_heartbeat beat_once(struct vigil_sender *s, struct fake_io *f)
{
    f->now += VIGIL_NSEC_PER_SEC;
    assert_int_equal(vigil_sender_beat(s, false), 0);
    uint8_t mk[VIGIL_WIRE_MAC_KEY_LEN];
    vigil_wire_mac_key(mk, KEY);
    struct vigil_heartbeat hb;
    assert_int_equal(vigil_wire_decode(f->last, f->last_len, mk, &hb), 0);
    if (hb.version == VIGIL_WIRE_V2 && hb.type == VIGIL_MSG_BEAT)
        assert_int_equal(f->last_len, 24 + 5 + 8);
    return hb;
}

static void test_sender_v2_schedule(void **state)
{
    (void)state;
    struct fake_io f = {0};
    struct vigil_monitor_config mc;
    vigil_monitor_config_default(&mc);
    mc.has_key = true;
    memcpy(mc.key, KEY, sizeof(mc.key));
    assert_int_equal(vigil_monitor_new(&mc, 0, &f.monitor), 0);
    struct vigil_sender *s = fake_sender(&f, 5, 0);
    assert_int_equal(vigil_sender_set_custom(s, "role", "db"), 0);

    /* The first three heartbeats of a generation carry the full status. */
    char pattern[64] = "";
    struct vigil_heartbeat hb;
    for (int i = 0; i < 13; i++) {
        hb = beat_once(s, &f);
        assert_int_equal(hb.version, VIGIL_WIRE_V2);
        assert_int_equal(hb.sequence, (uint64_t)i + 1);
        assert_int_equal(hb.status_version, 1);
        strcat(pattern, hb.type == VIGIL_MSG_STATUS ? "S" : "b");
        if (hb.type == VIGIL_MSG_STATUS) {
            assert_int_equal(hb.n_custom, 1);
            assert_string_equal(hb.custom[0].value, "db");
            assert_int_equal(hb.status.load1_milli, f.samples);
        }
        const struct vigil_node *n = vigil_monitor_find(f.monitor, "web-1");
        assert_false(vigil_node_status_stale(n));
        assert_string_equal(vigil_node_custom(n, 0)->value, "db");
    }
    /* At least one full status in every 5 heartbeats; /proc read only for them. */
    assert_string_equal(pattern, "SSSbbbbSbbbbS");
    assert_int_equal(f.samples, 5);

    /* A change: a new status version, sent three times, then beats again. */
    assert_int_equal(vigil_sender_set_custom(s, "role", "replica"), 0);
    pattern[0] = '\0';
    for (int i = 0; i < 5; i++) {
        hb = beat_once(s, &f);
        assert_int_equal(hb.status_version, 2);
        strcat(pattern, hb.type == VIGIL_MSG_STATUS ? "S" : "b");
    }
    assert_string_equal(pattern, "SSSbb");
    assert_int_equal(vigil_sender_status_version(s), 2);
    const struct vigil_node *n = vigil_monitor_find(f.monitor, "web-1");
    assert_string_equal(vigil_node_custom(n, 0)->value, "replica");

    /* Rewriting the same pairs (as the agent does) is no change. */
    vigil_sender_clear_custom(s);
    assert_int_equal(vigil_sender_set_custom(s, "role", "replica"), 0);
    hb = beat_once(s, &f);
    assert_int_equal(hb.type, VIGIL_MSG_BEAT);
    assert_int_equal(hb.status_version, 2);
    /* Several changes between two beats are one new version. */
    assert_int_equal(vigil_sender_set_custom(s, "a", "1"), 0);
    assert_int_equal(vigil_sender_set_custom(s, "a", "2"), 0);
    hb = beat_once(s, &f);
    assert_int_equal(hb.type, VIGIL_MSG_STATUS);
    assert_int_equal(hb.status_version, 3);
    assert_int_equal(hb.n_custom, 2);

    /* A status set by the application counts when its numbers change. */
    for (int i = 0; i < 3; i++)
        beat_once(s, &f);
    struct vigil_status st = {.load1_milli = 1, .mem_total_kib = 2};
    vigil_sender_set_status(s, &st);
    hb = beat_once(s, &f);
    assert_int_equal(hb.type, VIGIL_MSG_STATUS);
    assert_int_equal(hb.status_version, 4);
    assert_int_equal(hb.status.mem_total_kib, 2);
    for (int i = 0; i < 3; i++)
        beat_once(s, &f);
    vigil_sender_set_status(s, &st);
    hb = beat_once(s, &f);
    assert_int_equal(hb.type, VIGIL_MSG_BEAT);
    st.load1_milli = 5;
    vigil_sender_set_status(s, &st);
    hb = beat_once(s, &f);
    assert_int_equal(hb.type, VIGIL_MSG_STATUS);
    assert_int_equal(hb.status_version, 5);

    /* The goodbye is a beat with LEAVING when no full status is due. */
    for (int i = 0; i < 3; i++)
        beat_once(s, &f);
    f.now += VIGIL_NSEC_PER_SEC;
    assert_int_equal(vigil_sender_beat(s, true), 0);
    assert_int_equal(f.last_len, 24 + 5 + 8);
    assert_int_equal(vigil_node_state(n), VIGIL_STATE_LEFT);
    assert_false(vigil_node_status_stale(n));
    vigil_sender_free(s);
    vigil_monitor_free(f.monitor);
}

static void test_sender_v1_and_limits(void **state)
{
    (void)state;
    struct fake_io f = {0};
    struct vigil_sender *s = fake_sender(&f, 0, VIGIL_WIRE_V1);
    for (int i = 0; i < 40; i++) {
        struct vigil_heartbeat hb = beat_once(s, &f);
        assert_int_equal(hb.version, VIGIL_WIRE_V1);
        assert_int_equal(hb.status.load1_milli, f.samples);
    }
    assert_int_equal(f.samples, 40);
    vigil_sender_free(s);

    /* status_every 0 is the default, 30; 1 sends the full status every time. */
    s = fake_sender(&f, 0, 0);
    unsigned full = 0;
    for (int i = 0; i < 63; i++)
        full += beat_once(s, &f).type == VIGIL_MSG_STATUS;
    assert_int_equal(full, 3 + 2); /* the first three, then at 33 and 63 */
    vigil_sender_free(s);
    s = fake_sender(&f, 1, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(beat_once(s, &f).type, VIGIL_MSG_STATUS);
    vigil_sender_free(s);

    struct vigil_sender_config c;
    vigil_sender_config_default(&c);
    assert_int_equal(c.status_every, VIGIL_SENDER_STATUS_EVERY_DEFAULT);
    c.id = "x";
    struct vigil_addr dest = {.family = AF_INET, .port = 1, .addr = {127, 0, 0, 1}};
    struct vigil__sender_io io = {fake_now, fake_wall_us, fake_send, fake_sample, &f};
    c.status_every = VIGIL_SENDER_STATUS_EVERY_MAX + 1;
    assert_int_equal(vigil__sender_new_io(&c, &dest, 1, &io, &s), -VIGIL_EINVAL);
    c.status_every = VIGIL_SENDER_STATUS_EVERY_MAX;
    c.wire_version = 3;
    assert_int_equal(vigil__sender_new_io(&c, &dest, 1, &io, &s), -VIGIL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse_table),   cmocka_unit_test(test_addr_parse_edges),
        cmocka_unit_test(test_addr_split),         cmocka_unit_test(test_sockaddr_conversion),
        cmocka_unit_test(test_addr_resolve),       cmocka_unit_test(test_schedule_grid),
        cmocka_unit_test(test_schedule_limits),    cmocka_unit_test(test_status_sample),
        cmocka_unit_test(test_sender_new_checks),  cmocka_unit_test(test_sender_heartbeats),
        cmocka_unit_test(test_sender_grid),        cmocka_unit_test(test_sender_two_families),
        cmocka_unit_test(test_sender_send_errors), cmocka_unit_test(test_sender_custom_limits),
        cmocka_unit_test(test_sender_v2_schedule), cmocka_unit_test(test_sender_v1_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
