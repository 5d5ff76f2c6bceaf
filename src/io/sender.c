/*
 * Sending heartbeats: the vigil_sender of include/vigil/sender.h, used by
 * vigil agent and by applications that embed libvigil.
 *
 * A sender is the identity of one node (id, boot generation, sequence),
 * its status (sampled from /proc or set by the application, plus up to
 * VIGIL_CUSTOM_MAX custom key=value pairs) and where to send it. It owns no
 * thread and no timer: the caller calls vigil_sender_beat() when
 * vigil_sender_next() says, so it fits any event loop.
 *
 * Monitors are resolved once, when the sender is created: a heartbeat path
 * that may block on DNS is a heartbeat path that may miss its deadline, and
 * a monitor that moves is a configuration change. Sockets (one
 * non-blocking UDP socket per address family in use) are opened at the
 * first beat that needs them. Each beat encodes one datagram, stamped with
 * the next sequence number, and hands the same bytes to every monitor with
 * one sendmmsg() per family; the beat path allocates nothing. With a
 * cluster key, the tag key is derived from it once, at creation, and only
 * the derived key is kept.
 *
 * A failed send is counted, not fatal: EAGAIN from a full socket buffer, or
 * a network that is briefly unreachable, costs one heartbeat to one
 * monitor, and the next beat tries again. vigil_sender_beat() fails only
 * when not a single monitor could be sent to, and then leaves errno set to
 * the last send error so the caller can log it.
 *
 * The schedule is the fixed grid of core/schedule.c: the first beat is due
 * at creation, then every interval after it; a sender that wakes up late
 * sends one heartbeat, not the ones it owes, and stays on its grid.
 *
 * In wire version 2 each heartbeat is a small beat or the full status
 * (include/vigil/sender.h says when which). Whether the status changed is
 * decided at each beat, by comparing the custom pairs (and a status the
 * application set) with a copy of what the current status version stood
 * for, not at each vigil_sender_set_custom() call: the agent rebuilds its
 * pairs from scratch when its status file changes, and rewriting the same
 * pairs must not count as a change. A change takes the next status
 * version (a 16-bit counter; the monitor only compares it for equality)
 * and owes VIGIL_SENDER_STATUS_REPEAT full statuses.
 *
 * vigil_sender_sent() and vigil_sender_errors() count datagrams: a beat to
 * three monitors adds three to one or the other.
 *
 * Not thread safe: one thread owns a sender.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include <vigil/sender.h>

#include "core/schedule.h"
#include "io/netaddr.h"
#include "io/sender_io.h"

/* Where one monitor is. */
struct sender_dest {
    struct sockaddr_storage ss;
    socklen_t len;
    struct vigil_addr addr;
};

struct vigil_sender {
    /* The heartbeat being sent: id, generation, sequence, status, custom pairs. */
    struct vigil_heartbeat hb;
    bool has_key;
    bool seal; /* seal the full statuses */
    /*
     * The tag and seal keys, derived once from the key in the config (or
     * set_key), in locked, guarded memory (sodium_malloc) wiped when freed.
     */
    struct sender_keys {
        uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN];
        uint8_t seal[VIGIL_WIRE_SEAL_KEY_LEN];
    } * keys;
    bool sample_proc;
    vigil_time_t interval;
    vigil_time_t start; /* monotonic time of the grid's first slot */
    vigil_time_t next;  /* monotonic time of the next beat */
    struct sender_dest dests[VIGIL_SENDER_MAX_MONITORS];
    size_t n_dests;
    int fd4, fd6; /* -1 until a beat needs them */
    uint64_t sent, errors;
    bool has_io; /* the caller's clock and transport instead of the OS's */
    struct vigil__sender_io io;

    /* Wire version 2: when the full status is due. */
    uint8_t wire_version;
    uint32_t status_every;
    uint32_t since_status; /* heartbeats sent since the last full status */
    uint32_t repeat_left;  /* full statuses still owed for the current version */
    /* What the current status version stands for. */
    uint8_t n_announced;
    struct vigil_custom announced[VIGIL_CUSTOM_MAX];
    bool announced_set; /* announced_status is the application's (sample_proc off) */
    struct vigil_status announced_status;
};

/*
 * EINTR retries of one sendmmsg() call. The sockets are non-blocking, so a
 * signal can only interrupt the call in its first instants; a few retries
 * are plenty, and a bound keeps a signal storm from holding the beat.
 */
#define SEND_EINTR_RETRIES 3

void vigil_sender_config_default(struct vigil_sender_config *c)
{
    memset(c, 0, sizeof(*c));
    c->interval = VIGIL_SENDER_INTERVAL_DEFAULT;
    c->sample_proc = true;
    c->status_every = VIGIL_SENDER_STATUS_EVERY_DEFAULT;
    c->wire_version = VIGIL_WIRE_V2;
}

/* The checks and the set-up both constructors share; dests filled by the caller. */
static int sender_alloc(const struct vigil_sender_config *c, struct vigil_sender **out)
{
    if (out == NULL)
        return -VIGIL_EINVAL;
    *out = NULL;
    if (c == NULL || c->id == NULL)
        return -VIGIL_EINVAL;
    size_t id_len = strnlen(c->id, VIGIL_ID_MAX + 1);
    if (id_len > VIGIL_ID_MAX || !vigil_id_valid(c->id, id_len))
        return -VIGIL_EBADID;
    if (c->interval < VIGIL_SENDER_INTERVAL_MIN || c->interval > VIGIL_SENDER_INTERVAL_MAX)
        return -VIGIL_EINVAL;
    if (c->status_every > VIGIL_SENDER_STATUS_EVERY_MAX)
        return -VIGIL_EINVAL;
    if (c->wire_version != 0 && c->wire_version != VIGIL_WIRE_V1 &&
        c->wire_version != VIGIL_WIRE_V2)
        return -VIGIL_EINVAL;
    if (c->key_id > VIGIL_WIRE_KEY_ID_MAX ||
        (c->seal && (c->key == NULL || c->wire_version == VIGIL_WIRE_V1)))
        return -VIGIL_EINVAL;
    struct vigil_sender *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -VIGIL_ENOMEM;
    s->fd4 = -1;
    s->fd6 = -1;
    memcpy(s->hb.id, c->id, id_len);
    s->hb.id[id_len] = '\0';
    s->hb.generation = c->generation;
    s->hb.sequence = 0;
    s->hb.interval_ms = (uint32_t)(c->interval / VIGIL_NSEC_PER_MSEC);
    if (c->key != NULL) {
        s->keys = sodium_init() < 0 ? NULL : sodium_malloc(sizeof(*s->keys));
        if (s->keys == NULL) {
            free(s);
            return -VIGIL_ENOMEM;
        }
        s->has_key = true;
        s->seal = c->seal;
        s->hb.key_id = c->key_id;
        vigil_wire_mac_key(s->keys->mac, c->key);
        vigil_wire_seal_key(s->keys->seal, c->key);
    }
    s->sample_proc = c->sample_proc;
    s->interval = c->interval;
    s->wire_version = c->wire_version == VIGIL_WIRE_V1 ? VIGIL_WIRE_V1 : VIGIL_WIRE_V2;
    s->status_every = c->status_every ? c->status_every : VIGIL_SENDER_STATUS_EVERY_DEFAULT;
    /* The first heartbeats of a generation carry the full status. */
    s->repeat_left = VIGIL_SENDER_STATUS_REPEAT;
    *out = s;
    return 0;
}

static vigil_time_t sender_now(const struct vigil_sender *s)
{
    return s->has_io ? s->io.now(s->io.arg) : vigil_clock_mono();
}

static int64_t sender_wall_us(const struct vigil_sender *s)
{
    return s->has_io ? s->io.wall_us(s->io.arg) : vigil_clock_wall_us();
}

/* Starts the grid now, and derives the generation from the wall clock if none was given. */
static void sender_start(struct vigil_sender *s)
{
    if (s->hb.generation == 0) {
        /*
         * Microseconds of wall-clock time: larger after every restart (unless
         * the clock is set back), with no state kept on disk.
         */
        int64_t now_us = sender_wall_us(s);
        s->hb.generation = now_us > 0 ? (uint64_t)now_us : 1;
    }
    s->start = sender_now(s);
    s->next = s->start;
}

int vigil_sender_new(const struct vigil_sender_config *c, struct vigil_sender **out)
{
    if (out != NULL)
        *out = NULL;
    if (c != NULL && (c->n_monitors == 0 || c->n_monitors > VIGIL_SENDER_MAX_MONITORS))
        return -VIGIL_EINVAL;
    struct vigil_sender *s;
    int rc = sender_alloc(c, &s);
    if (rc)
        return rc;
    for (size_t i = 0; i < c->n_monitors; i++) {
        rc = -VIGIL_EINVAL;
        if (c->monitors[i] != NULL)
            rc = vigil__addr_resolve(c->monitors[i], VIGIL_DEFAULT_PORT, &s->dests[i].ss,
                                     &s->dests[i].len, NULL);
        if (rc < 0) {
            vigil_sender_free(s);
            return rc;
        }
    }
    s->n_dests = c->n_monitors;
    sender_start(s);
    *out = s;
    return 0;
}

int vigil__sender_new_io(const struct vigil_sender_config *c, const struct vigil_addr *dests,
                         size_t n, const struct vigil__sender_io *io, struct vigil_sender **out)
{
    if (n == 0 || n > VIGIL_SENDER_MAX_MONITORS || dests == NULL || io == NULL)
        return -VIGIL_EINVAL;
    struct vigil_sender *s;
    int rc = sender_alloc(c, &s);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        s->dests[i].addr = dests[i];
    s->n_dests = n;
    s->has_io = true;
    s->io = *io;
    sender_start(s);
    *out = s;
    return 0;
}

void vigil_sender_free(struct vigil_sender *s)
{
    if (s == NULL)
        return;
    if (s->fd4 >= 0)
        close(s->fd4);
    if (s->fd6 >= 0)
        close(s->fd6);
    sodium_free(s->keys);
    free(s);
}

/*
 * True unless the heartbeat, with every numeric field at its largest, would
 * not fit in a datagram. Checked when a pair is set so that a beat never
 * fails for size, whatever the counters and the status become.
 */
static bool fits(const struct vigil_sender *s)
{
    struct vigil_heartbeat worst = s->hb;
    uint8_t buf[VIGIL_WIRE_MAX];
    /* Version 1 is the larger encoding of a status: what fits there fits in both. */
    worst.version = VIGIL_WIRE_V1;
    worst.type = VIGIL_MSG_HEARTBEAT;
    worst.flags = VIGIL_FLAG_LEAVING;
    worst.generation = UINT64_MAX;
    worst.sequence = UINT64_MAX;
    worst.send_time_us = INT64_MAX;
    worst.status.load1_milli = worst.status.load5_milli = worst.status.load15_milli = UINT32_MAX;
    worst.status.mem_total_kib = worst.status.mem_avail_kib = UINT64_MAX;
    worst.status.uptime_s = UINT64_MAX;
    int rc = vigil_wire_encode(&worst, s->has_key ? s->keys->mac : NULL, buf, sizeof(buf));
    if (rc == -VIGIL_ETOOBIG || !s->seal)
        return rc != -VIGIL_ETOOBIG;
    /* A sealed full status is 5 bytes longer than version 1 (docs/protocol.md). */
    static const uint8_t nonce[VIGIL_WIRE_SEAL_NONCE_LEN];
    const struct vigil_wire_keys k = {.mac = s->keys->mac, .seal = s->keys->seal, .nonce = nonce};
    worst.version = VIGIL_WIRE_V2;
    worst.type = VIGIL_MSG_STATUS;
    worst.sequence = UINT32_MAX;
    return vigil_wire_encode_keys(&worst, &k, buf, sizeof(buf)) != -VIGIL_ETOOBIG;
}

static int find_custom(const struct vigil_sender *s, const char *key)
{
    for (int i = 0; i < s->hb.n_custom; i++)
        if (strcmp(s->hb.custom[i].key, key) == 0)
            return i;
    return -1;
}

static void remove_custom(struct vigil_sender *s, int i)
{
    /* Keep the order of the others: the monitor shows them as sent. */
    memmove(&s->hb.custom[i], &s->hb.custom[i + 1],
            (size_t)(s->hb.n_custom - i - 1) * sizeof(s->hb.custom[0]));
    s->hb.n_custom--;
    memset(&s->hb.custom[s->hb.n_custom], 0, sizeof(s->hb.custom[0]));
}

int vigil_sender_set_key(struct vigil_sender *s, const uint8_t *key, uint8_t key_id)
{
    if (s == NULL || key == NULL || !s->has_key || key_id > VIGIL_WIRE_KEY_ID_MAX)
        return -VIGIL_EINVAL;
    vigil_wire_mac_key(s->keys->mac, key);
    vigil_wire_seal_key(s->keys->seal, key);
    s->hb.key_id = key_id;
    return 0;
}

int vigil_sender_set_custom(struct vigil_sender *s, const char *key, const char *value)
{
    if (s == NULL || key == NULL || !vigil_custom_key_valid(key))
        return -VIGIL_EINVAL;
    int i = find_custom(s, key);
    if (value == NULL) {
        if (i >= 0)
            remove_custom(s, i);
        return 0;
    }
    if (!vigil_custom_value_valid(value))
        return -VIGIL_EINVAL;
    struct vigil_custom old;
    if (i >= 0) {
        old = s->hb.custom[i];
    } else {
        if (s->hb.n_custom >= VIGIL_CUSTOM_MAX)
            return -VIGIL_EFULL;
        i = s->hb.n_custom++;
        memset(&old, 0, sizeof(old));
        /* Validated above: the key fits in VIGIL_CUSTOM_KEY_MAX bytes. */
        strcpy(s->hb.custom[i].key, key);
    }
    strcpy(s->hb.custom[i].value, value);
    if (!fits(s)) {
        if (old.key[0] != '\0')
            s->hb.custom[i] = old;
        else
            remove_custom(s, i);
        return -VIGIL_ETOOBIG;
    }
    return 0;
}

void vigil_sender_clear_custom(struct vigil_sender *s)
{
    if (s == NULL)
        return;
    memset(s->hb.custom, 0, sizeof(s->hb.custom));
    s->hb.n_custom = 0;
}

void vigil_sender_set_status(struct vigil_sender *s, const struct vigil_status *st)
{
    if (s == NULL || st == NULL)
        return;
    /* The application's numbers replace sampling from now on. */
    s->hb.status = *st;
    s->sample_proc = false;
}

/* The socket for family, opened on first use; -1 with errno set if it cannot be. */
static int family_socket(struct vigil_sender *s, int family)
{
    int *fd = family == AF_INET ? &s->fd4 : &s->fd6;
    if (*fd < 0)
        *fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return *fd;
}

/*
 * Sends len bytes of buf to every monitor of family, in one sendmmsg() if
 * all goes well. Returns the datagrams sent; counts the failures and keeps
 * the last errno in *last_err.
 */
static size_t send_family(struct vigil_sender *s, int family, uint8_t *buf, size_t len,
                          int *last_err)
{
    struct mmsghdr msgs[VIGIL_SENDER_MAX_MONITORS];
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    unsigned n = 0;
    memset(msgs, 0, sizeof(msgs));
    for (size_t i = 0; i < s->n_dests; i++) {
        if (s->dests[i].ss.ss_family != family)
            continue;
        msgs[n].msg_hdr.msg_name = &s->dests[i].ss;
        msgs[n].msg_hdr.msg_namelen = s->dests[i].len;
        msgs[n].msg_hdr.msg_iov = &iov;
        msgs[n].msg_hdr.msg_iovlen = 1;
        n++;
    }
    if (n == 0)
        return 0;
    int fd = family_socket(s, family);
    if (fd < 0) {
        *last_err = errno;
        s->errors += n;
        return 0;
    }
    size_t ok = 0;
    unsigned i = 0;
    int eintr = 0;
    /*
     * sendmmsg() stops at the first datagram that fails and reports the ones
     * before it; the failed one is then counted and skipped. Every pass but
     * a bounded number of EINTR retries moves i forward.
     */
    while (i < n) {
        int r = sendmmsg(fd, msgs + i, n - i, MSG_DONTWAIT);
        if (r > 0) {
            i += (unsigned)r;
            ok += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR && eintr++ < SEND_EINTR_RETRIES)
            continue;
        *last_err = r < 0 ? errno : EIO;
        s->errors++;
        i++;
    }
    s->sent += ok;
    return ok;
}

/* True if the status differs from what the current status version stands for. */
static bool status_changed(const struct vigil_sender *s)
{
    if (s->hb.n_custom != s->n_announced || s->announced_set != !s->sample_proc)
        return true;
    for (unsigned i = 0; i < s->hb.n_custom; i++)
        if (strcmp(s->hb.custom[i].key, s->announced[i].key) != 0 ||
            strcmp(s->hb.custom[i].value, s->announced[i].value) != 0)
            return true;
    if (s->sample_proc)
        return false; /* sampled gauges are not changes */
    const struct vigil_status *a = &s->hb.status, *b = &s->announced_status;
    return a->load1_milli != b->load1_milli || a->load5_milli != b->load5_milli ||
           a->load15_milli != b->load15_milli || a->mem_total_kib != b->mem_total_kib ||
           a->mem_avail_kib != b->mem_avail_kib || a->uptime_s != b->uptime_s;
}

/* Makes the current status the next status version, owed REPEAT times. */
static void status_announce(struct vigil_sender *s)
{
    s->hb.status_version++;
    s->n_announced = s->hb.n_custom;
    memcpy(s->announced, s->hb.custom, sizeof(s->announced));
    s->announced_set = !s->sample_proc;
    s->announced_status = s->hb.status;
    s->repeat_left = VIGIL_SENDER_STATUS_REPEAT;
}

/* Chooses what this heartbeat is (version 2: beat or full status) and stamps it. */
static void beat_prepare(struct vigil_sender *s)
{
    bool full = true;
    if (s->wire_version == VIGIL_WIRE_V2) {
        if (s->hb.sequence >= UINT32_MAX) {
            /* The wire's sequence is 32 bits: go on in the next generation. */
            s->hb.generation++;
            s->hb.sequence = 0;
            s->hb.status_version = 0;
            s->repeat_left = VIGIL_SENDER_STATUS_REPEAT;
        }
        if (status_changed(s))
            status_announce(s);
        full = s->repeat_left > 0 || s->since_status + 1 >= s->status_every;
    }
    if (full && s->sample_proc) {
        /* Unknown fields stay 0. */
        if (s->has_io)
            (void)s->io.sample(s->io.arg, &s->hb.status);
        else
            (void)vigil_status_sample(&s->hb.status);
    }
    s->hb.version = s->wire_version;
    s->hb.type = s->wire_version == VIGIL_WIRE_V1 ? VIGIL_MSG_HEARTBEAT
                 : full                           ? VIGIL_MSG_STATUS
                                                  : VIGIL_MSG_BEAT;
    if (full)
        s->hb.send_time_us = sender_wall_us(s);
}

/* Counts a heartbeat that went out to at least one monitor. */
static void beat_sent(struct vigil_sender *s)
{
    if (s->hb.type == VIGIL_MSG_STATUS) {
        s->since_status = 0;
        if (s->repeat_left > 0)
            s->repeat_left--;
    } else {
        s->since_status++;
    }
}

int vigil_sender_beat(struct vigil_sender *s, bool leaving)
{
    if (s == NULL)
        return -VIGIL_EINVAL;
    vigil_time_t now = sender_now(s);
    s->next = vigil__sched_next(s->start, s->interval, now);
    beat_prepare(s);
    s->hb.sequence++;
    s->hb.flags = leaving ? VIGIL_FLAG_LEAVING : 0;

    uint8_t buf[VIGIL_WIRE_MAX];
    uint8_t nonce[VIGIL_WIRE_SEAL_NONCE_LEN];
    struct vigil_wire_keys k = {0};
    if (s->has_key) {
        k.mac = s->keys->mac;
        if (s->seal && s->hb.type == VIGIL_MSG_STATUS) {
            /* Fresh random bytes for every sealed datagram (docs/protocol.md). */
            randombytes_buf(nonce, sizeof nonce);
            k.seal = s->keys->seal;
            k.nonce = nonce;
        }
    }
    int n = vigil_wire_encode_keys(&s->hb, &k, buf, sizeof(buf));
    if (n < 0) {
        /* Nothing went out: the sequence number stays unused. */
        s->hb.sequence--;
        return n;
    }
    int last_err = 0;
    size_t ok = 0;
    if (s->has_io) {
        for (size_t i = 0; i < s->n_dests; i++) {
            int rc = s->io.send(s->io.arg, &s->dests[i].addr, buf, (size_t)n);
            if (rc == 0) {
                ok++;
            } else {
                last_err = -rc;
                s->errors++;
            }
        }
        s->sent += ok;
    } else {
        ok = send_family(s, AF_INET, buf, (size_t)n, &last_err);
        ok += send_family(s, AF_INET6, buf, (size_t)n, &last_err);
    }
    if (last_err != 0)
        errno = last_err;
    if (ok == 0)
        return -VIGIL_ESYS;
    /* A full status no monitor got is still owed. */
    beat_sent(s);
    return 0;
}

vigil_time_t vigil_sender_next(const struct vigil_sender *s)
{
    return s->next;
}

uint64_t vigil_sender_sent(const struct vigil_sender *s)
{
    return s->sent;
}

uint64_t vigil_sender_errors(const struct vigil_sender *s)
{
    return s->errors;
}

uint64_t vigil_sender_generation(const struct vigil_sender *s)
{
    return s->hb.generation;
}

uint16_t vigil_sender_status_version(const struct vigil_sender *s)
{
    return s->hb.status_version;
}
