/*
 * Tests of the SWIM core's security (src/core/swim.c, docs/peer.md
 * "Security"): sealed datagrams and signed leaves, on a handful of members
 * in virtual time over a small simulated network (1 ms per datagram,
 * members that can be stopped or cut off).
 *
 *   - encrypted members join, converge and detect a death; nothing they
 *     send shows a member id; a sync of a large table stays within the MTU;
 *   - a member that seals refuses datagrams in clear and one that does not
 *     refuses sealed ones (auth_failed), a sealed datagram with any byte
 *     changed is refused, and the configuration is checked;
 *   - leaves forged by an insider (the cluster key, its own certificate)
 *     are refused and the member stays alive: unsigned, signed with another
 *     member's certificate, with a certificate of another CA; an unsigned
 *     leave that a lax member took is refused when it comes by
 *     anti-entropy; the member itself refutes a leave it did not make;
 *   - a real leave is taken everywhere, also by a member that was stopped
 *     while it was gossiped and learns of it only by anti-entropy;
 *   - every byte flipped in a datagram carrying a signed leave is refused;
 *   - signed alives: members that require them join, converge, refute and
 *     detect a death; an insider cannot refute for a crashed member, nor
 *     push a member's incarnation up, nor bring a left member back; every
 *     byte flipped in a signed alive is refused;
 *   - certificates: made, read and checked; one for another id refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include <vigil/swim.h>

#define S  VIGIL_NSEC_PER_SEC
#define MS VIGIL_NSEC_PER_MSEC

#define N_MAX 8

/* ---- keys: a cluster key, a CA, a key pair and certificate per member ---- */

static uint8_t cluster_key[VIGIL_WIRE_KEY_LEN];
static uint8_t ca_pk[VIGIL_SWIM_SIGN_PK_LEN], ca_sk[VIGIL_SWIM_SIGN_SK_LEN];
static uint8_t member_pk[N_MAX][VIGIL_SWIM_SIGN_PK_LEN], member_sk[N_MAX][VIGIL_SWIM_SIGN_SK_LEN];
static uint8_t member_cert[N_MAX][VIGIL_SWIM_CERT_MAX];
static size_t member_cert_len[N_MAX];

static const char *id_of(uint32_t i)
{
    static const char *const ids[N_MAX] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"};
    return ids[i];
}

/* Fixed seeds, so that every run makes the same keys. */
static int keys_setup(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    memset(cluster_key, 0x42, sizeof cluster_key);
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, 0xca, sizeof seed);
    crypto_sign_seed_keypair(ca_pk, ca_sk, seed);
    for (uint32_t i = 0; i < N_MAX; i++) {
        memset(seed, (int)(0x10 + i), sizeof seed);
        crypto_sign_seed_keypair(member_pk[i], member_sk[i], seed);
        int n = vigil_swim_cert_issue(ca_sk, id_of(i), member_pk[i], member_cert[i],
                                      sizeof member_cert[i]);
        assert_true(n > 0);
        member_cert_len[i] = (size_t)n;
    }
    return 0;
}

/* ---- the network ---- */

struct opts {
    bool key, encrypt, sign, ca, require, alive;
};

struct pkt {
    vigil_time_t at;
    uint32_t to, from;
    size_t len;
    uint8_t buf[1280];
};

struct net {
    uint32_t n;
    struct vigil_swim *m[N_MAX];
    bool down[N_MAX]; /* stopped: runs no timers, sends and hears nothing */
    struct pkt *q;
    size_t nq, capq;
    vigil_time_t now;
    uint64_t delivered;
    size_t biggest; /* the longest datagram sent */
    /* Called with every datagram sent (the tests look at them). */
    void (*tap)(struct net *nt, uint32_t from, uint32_t to, const uint8_t *buf, size_t len);
    void *tap_ud;
};

static struct vigil_addr addr_of(uint32_t i)
{
    struct vigil_addr a;
    memset(&a, 0, sizeof(a));
    a.family = 2;
    a.addr[0] = 10;
    a.addr[3] = (uint8_t)(i + 1);
    a.port = 7946;
    return a;
}

static uint32_t index_of(const struct vigil_addr *a)
{
    return (uint32_t)a->addr[3] - 1;
}

static void config(struct vigil_swim_config *c, uint32_t i, struct opts o)
{
    vigil_swim_config_default(c);
    c->id = id_of(i);
    c->addr = addr_of(i);
    c->seed = 7 + i;
    c->has_key = o.key;
    memcpy(c->key, cluster_key, sizeof c->key);
    c->encrypt = o.encrypt;
    memset(c->nonce_prefix, (int)(0xa0 + i), sizeof c->nonce_prefix);
    if (o.sign) {
        c->has_sign_key = true;
        memcpy(c->sign_sk, member_sk[i], sizeof c->sign_sk);
        memcpy(c->cert, member_cert[i], member_cert_len[i]);
        c->cert_len = member_cert_len[i];
    }
    c->has_leave_ca = o.ca;
    memcpy(c->leave_ca_pk, ca_pk, sizeof c->leave_ca_pk);
    c->require_signed_leave = o.require;
    c->require_signed_alive = o.alive;
}

static struct vigil_swim *member(uint32_t i, struct opts o, vigil_time_t now)
{
    struct vigil_swim_config c;
    config(&c, i, o);
    struct vigil_swim *s = NULL;
    assert_int_equal(vigil_swim_new(&c, now, &s), 0);
    return s;
}

/* n members with options o[i]; static: each knows every other (joined: they join through m0). */
static void net_init(struct net *nt, uint32_t n, const struct opts *o, bool joined)
{
    memset(nt, 0, sizeof(*nt));
    nt->n = n;
    nt->now = S;
    for (uint32_t i = 0; i < n; i++)
        nt->m[i] = member(i, o[i], nt->now);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n && !joined; j++) {
            struct vigil_addr a = addr_of(j);
            if (i != j)
                assert_int_equal(vigil_swim_add(nt->m[i], nt->now, id_of(j), &a), 0);
        }
}

static void net_free(struct net *nt)
{
    for (uint32_t i = 0; i < nt->n; i++)
        vigil_swim_free(nt->m[i]);
    free(nt->q);
}

/* Takes what member i wants sent into the network (nothing leaves a stopped member). */
static void flush(struct net *nt, uint32_t i)
{
    struct vigil_swim_send out;
    while (vigil_swim_poll_send(nt->m[i], &out)) {
        uint32_t to = index_of(&out.to);
        if (out.len > nt->biggest)
            nt->biggest = out.len;
        if (nt->tap)
            nt->tap(nt, i, to, out.buf, out.len);
        if (nt->down[i] || to >= nt->n)
            continue;
        if (nt->nq == nt->capq) {
            nt->capq = nt->capq ? nt->capq * 2 : 256;
            nt->q = realloc(nt->q, nt->capq * sizeof(*nt->q));
            assert_non_null(nt->q);
        }
        struct pkt *p = &nt->q[nt->nq++];
        p->at = nt->now + MS;
        p->to = to;
        p->from = i;
        p->len = out.len;
        memcpy(p->buf, out.buf, out.len);
    }
    struct vigil_swim_event ev;
    while (vigil_swim_poll_event(nt->m[i], &ev))
        ;
}

/* Runs every member until `until`: datagrams first at equal times, then timers. */
static void run(struct net *nt, vigil_time_t until)
{
    for (;;) {
        vigil_time_t t = until;
        size_t pi = SIZE_MAX;
        for (size_t k = 0; k < nt->nq; k++)
            if (nt->q[k].at <= t && (pi == SIZE_MAX || nt->q[k].at < nt->q[pi].at)) {
                t = nt->q[k].at;
                pi = k;
            }
        uint32_t mi = UINT32_MAX;
        for (uint32_t i = 0; i < nt->n; i++) {
            vigil_time_t d = vigil_swim_next_deadline(nt->m[i]);
            if (nt->down[i] || d >= t || (pi != SIZE_MAX && d >= t))
                continue;
            t = d < nt->now ? nt->now : d;
            mi = i;
            pi = SIZE_MAX;
        }
        if (pi == SIZE_MAX && mi == UINT32_MAX) {
            nt->now = until;
            return;
        }
        nt->now = t;
        if (mi != UINT32_MAX) {
            vigil_swim_on_expiry(nt->m[mi], nt->now);
            flush(nt, mi);
            continue;
        }
        struct pkt p = nt->q[pi];
        nt->q[pi] = nt->q[--nt->nq];
        if (nt->down[p.to])
            continue;
        struct vigil_addr from = addr_of(p.from);
        (void)vigil_swim_on_datagram(nt->m[p.to], nt->now, p.buf, p.len, &from);
        nt->delivered++;
        flush(nt, p.to);
    }
}

/* Member i's view of member j (0: unknown). */
static enum vigil_state view(const struct net *nt, uint32_t i, uint32_t j)
{
    struct vigil_swim_member m;
    if (!vigil_swim_find(nt->m[i], id_of(j), &m))
        return (enum vigil_state)0;
    return m.state;
}

static uint64_t auth_failed(const struct net *nt)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < nt->n; i++)
        n += vigil_swim_stats(nt->m[i])->auth_failed;
    return n;
}

/* Every member of nt sees every other alive. */
static void assert_all_alive(const struct net *nt)
{
    for (uint32_t i = 0; i < nt->n; i++)
        for (uint32_t j = 0; j < nt->n; j++)
            if (i != j)
                assert_int_equal(view(nt, i, j), VIGIL_STATE_ALIVE);
}

/* Members 1..n-1 join through m0, and after 40 s every member sees every other alive. */
static void join_all(struct net *nt)
{
    struct vigil_addr seed = addr_of(0);
    for (uint32_t i = 1; i < nt->n; i++) {
        vigil_swim_join(nt->m[i], nt->now, &seed, 1);
        flush(nt, i);
    }
    run(nt, nt->now + 40 * S);
    assert_all_alive(nt);
}

/* Five members that seal, sign and require signed leaves and alives, joined: all alive. */
static void strict_net(struct net *nt)
{
    struct opts strict = {
        .key = true, .encrypt = true, .sign = true, .ca = true, .require = true, .alive = true};
    struct opts o[5] = {strict, strict, strict, strict, strict};
    net_init(nt, 5, o, true);
    join_all(nt);
}

/* ---- hand-made datagrams: what an insider holding the cluster key can send ---- */

struct forge {
    uint8_t buf[1280];
    size_t len;
};

static void f_u8(struct forge *f, uint8_t v)
{
    f->buf[f->len++] = v;
}

static void f_id(struct forge *f, const char *id)
{
    f_u8(f, (uint8_t)strlen(id));
    memcpy(f->buf + f->len, id, strlen(id));
    f->len += strlen(id);
}

/*
 * A gossip datagram from sender with one left of id at incarnation inc
 * (proof: certificate then signature, or NULL), tagged with the cluster key
 * when key (docs/peer.md, "Messages").
 */
static void forge_left(struct forge *f, const char *sender, const char *id, uint32_t inc,
                       const uint8_t *proof, size_t plen, bool key)
{
    f->len = 0;
    f_u8(f, 'V');
    f_u8(f, 'G');
    f_u8(f, 3);
    f_u8(f, 5); /* gossip */
    f_u8(f, key ? 0x02 : 0);
    f_u8(f, (uint8_t)strlen(sender));
    f_u8(f, 0);
    f_u8(f, 0);
    for (int i = 0; i < 4; i++)
        f_u8(f, 0); /* seq */
    memcpy(f->buf + f->len, sender, strlen(sender));
    f->len += strlen(sender);
    f_u8(f, 1);
    f_u8(f, proof ? 5 : 4);
    for (int i = 3; i >= 0; i--)
        f_u8(f, (uint8_t)(inc >> (8 * i)));
    f_id(f, id);
    if (proof) {
        memcpy(f->buf + f->len, proof, plen);
        f->len += plen;
    }
    if (key) {
        uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN];
        vigil_wire_mac_key(mac, cluster_key);
        crypto_shorthash_siphashx24(f->buf + f->len, f->buf, f->len, mac);
        f->len += 16;
    }
}

/*
 * Seals a tagged hand-made datagram as docs/peer.md says (what an insider
 * holding the cluster key can do): the tag off, flags 0x04, a nonce of 16
 * bytes 0x77 and a counter, the rest sealed with the header and the nonce
 * as associated data, under the key derived with context "vigilswm".
 */
static void seal_forge(struct forge *f)
{
    static uint64_t counter;
    uint8_t key[32], out[1280];
    crypto_kdf_derive_from_key(key, sizeof key, 1, "vigilswm", cluster_key);
    size_t len = f->len - 16;
    memcpy(out, f->buf, 8);
    out[4] = 0x04;
    memset(out + 8, 0x77, 16);
    counter++;
    for (int i = 0; i < 8; i++)
        out[24 + i] = (uint8_t)(counter >> (56 - 8 * i));
    unsigned long long clen;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + 32, &clen, f->buf + 8, len - 8, out, 32, NULL,
                                               out + 8, key);
    f->len = 32 + (size_t)clen;
    memcpy(f->buf, out, f->len);
}

/*
 * A leave's proof for id at inc, computed as docs/peer.md says: cert, then
 * the Ed25519 signature with sk over "vigil swim leave v1" || the cluster
 * key's fingerprint || id length || id || incarnation (big-endian).
 */
static size_t make_proof(uint8_t *proof, const uint8_t *cert, size_t cert_len, const uint8_t *sk,
                         const char *id, uint32_t inc)
{
    uint8_t msg[256];
    size_t n = 0;
    memcpy(msg, "vigil swim leave v1", 19);
    n = 19;
    vigil_wire_key_fingerprint(msg + n, cluster_key);
    n += VIGIL_WIRE_FINGERPRINT_LEN;
    msg[n++] = (uint8_t)strlen(id);
    memcpy(msg + n, id, strlen(id));
    n += strlen(id);
    for (int i = 3; i >= 0; i--)
        msg[n++] = (uint8_t)(inc >> (8 * i));
    memcpy(proof, cert, cert_len);
    crypto_sign_detached(proof + cert_len, NULL, msg, n, sk);
    return cert_len + VIGIL_SWIM_SIG_LEN;
}

static int deliver(struct net *nt, uint32_t to, uint32_t from, const struct forge *f)
{
    struct vigil_addr a = addr_of(from);
    int rc = vigil_swim_on_datagram(nt->m[to], nt->now, f->buf, f->len, &a);
    flush(nt, to);
    return rc;
}

/* ---- encryption ---- */

/* The metadata every member gossips in the encryption test: never to be seen on the wire. */
#define SECRET_META "status:db-primary-in-rack-7"

/* Counts the datagrams that show SECRET_META in clear. */
static void tap_meta(struct net *nt, uint32_t from, uint32_t to, const uint8_t *buf, size_t len)
{
    (void)from;
    (void)to;
    size_t *seen = nt->tap_ud, ml = strlen(SECRET_META);
    for (size_t k = 0; k + ml <= len; k++)
        if (!memcmp(buf + k, SECRET_META, ml))
            (*seen)++;
}

static void test_encrypted_converge_and_detect(void **state)
{
    (void)state;
    struct opts o[5];
    for (int i = 0; i < 5; i++)
        o[i] = (struct opts){.key = true, .encrypt = true};
    struct net nt;
    net_init(&nt, 5, o, true);
    size_t seen = 0;
    nt.tap = tap_meta;
    nt.tap_ud = &seen;
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(
            vigil_swim_set_meta(nt.m[i], nt.now, (const uint8_t *)SECRET_META, strlen(SECRET_META)),
            0);
    join_all(&nt);
    assert_int_equal(auth_failed(&nt), 0);
    assert_true(nt.delivered > 100);
    /* Sealed: the metadata is in no datagram (only the header is clear)... */
    assert_int_equal(seen, 0);
    struct vigil_swim_member m;
    assert_true(vigil_swim_find(nt.m[2], "m3", &m));
    assert_memory_equal(m.meta, SECRET_META, strlen(SECRET_META)); /* ...and every member read it */
    /* A crash is detected as before. */
    nt.down[4] = true;
    run(&nt, nt.now + 60 * S);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(view(&nt, i, 4), VIGIL_STATE_DEAD);
        for (uint32_t j = 0; j < 4; j++)
            if (i != j)
                assert_int_equal(view(&nt, i, j), VIGIL_STATE_ALIVE);
    }
    assert_int_equal(auth_failed(&nt), 0);
    assert_true(nt.biggest <= 1200);
    net_free(&nt);
}

static void test_plain_and_sealed_refused(void **state)
{
    (void)state;
    struct opts sealed = {.key = true, .encrypt = true}, plain = {.key = true};
    struct vigil_swim *a = member(0, sealed, S), *b = member(1, plain, S);
    struct vigil_swim *a2 = member(2, sealed, S), *nokey = member(3, (struct opts){0}, S);
    struct vigil_addr aa = addr_of(0), ab = addr_of(1);
    assert_int_equal(vigil_swim_add(b, S, "m0", &aa), 0);
    assert_int_equal(vigil_swim_add(a, S, "m1", &ab), 0);
    vigil_swim_join(b, S, &aa, 1);
    vigil_swim_join(a, S, &ab, 1);
    struct vigil_swim_send from_b, from_a;
    assert_true(vigil_swim_poll_send(b, &from_b));
    assert_true(vigil_swim_poll_send(a, &from_a));
    /* Sealed: the flags say so, and the datagram is 24 bytes longer than tagged. */
    assert_int_equal(from_a.buf[4], 0x04);
    assert_int_equal(from_b.buf[4], 0x02);
    /* Clear to a sealing member, sealed to a tagging one: refused, counted as auth_failed. */
    assert_int_equal(vigil_swim_on_datagram(a, S, from_b.buf, from_b.len, &ab), -VIGIL_EAUTH);
    assert_int_equal(vigil_swim_stats(a)->auth_failed, 1);
    assert_int_equal(vigil_swim_on_datagram(b, S, from_a.buf, from_a.len, &aa), -VIGIL_EAUTH);
    assert_int_equal(vigil_swim_stats(b)->auth_failed, 1);
    assert_int_equal(vigil_swim_on_datagram(nokey, S, from_a.buf, from_a.len, &aa), -VIGIL_EAUTH);
    /* Clear without the AUTH flag (no tag at all) to a sealing member: refused too. */
    uint8_t untagged[1280];
    memcpy(untagged, from_b.buf, from_b.len - 16);
    untagged[4] = 0;
    assert_int_equal(vigil_swim_on_datagram(a, S, untagged, from_b.len - 16, &ab), -VIGIL_EAUTH);
    /* A member of the same cluster opens it; any byte changed, and it does not. */
    struct vigil_addr a0 = addr_of(0);
    assert_int_equal(vigil_swim_on_datagram(a2, S, from_a.buf, from_a.len, &a0), 0);
    uint64_t failed = vigil_swim_stats(a2)->auth_failed;
    for (size_t k = 0; k < from_a.len; k++) {
        uint8_t c[1280];
        memcpy(c, from_a.buf, from_a.len);
        c[k] ^= 0x20;
        int rc = vigil_swim_on_datagram(a2, S, c, from_a.len, &a0);
        assert_true(rc == -VIGIL_EAUTH || rc == -VIGIL_EMAGIC);
    }
    assert_true(vigil_swim_stats(a2)->auth_failed >= failed + from_a.len - 3);
    /* Truncated by one byte, or only its header: refused. */
    assert_int_equal(vigil_swim_on_datagram(a2, S, from_a.buf, from_a.len - 1, &a0), -VIGIL_EAUTH);
    assert_int_equal(vigil_swim_on_datagram(a2, S, from_a.buf, 12, &a0), -VIGIL_EAUTH);
    vigil_swim_free(a);
    vigil_swim_free(b);
    vigil_swim_free(a2);
    vigil_swim_free(nokey);

    /* The configuration: sealing needs the key and a non-zero nonce prefix. */
    struct vigil_swim_config c;
    struct vigil_swim *s = NULL;
    config(&c, 0, (struct opts){.encrypt = true});
    assert_int_equal(vigil_swim_new(&c, S, &s), -VIGIL_EINVAL);
    config(&c, 0, sealed);
    memset(c.nonce_prefix, 0, sizeof c.nonce_prefix);
    assert_int_equal(vigil_swim_new(&c, S, &s), -VIGIL_EINVAL);
    assert_null(s);
}

/* Two members sealing with the same prefix (but different counters) never show the same nonce. */
static void test_sealed_nonces_unique(void **state)
{
    (void)state;
    struct vigil_swim *a = member(0, (struct opts){.key = true, .encrypt = true}, S);
    struct vigil_addr to = addr_of(1);
    uint8_t seen[64][24];
    for (int k = 0; k < 64; k++) {
        vigil_swim_join(a, S, &to, 1);
        struct vigil_swim_send out;
        assert_true(vigil_swim_poll_send(a, &out));
        memcpy(seen[k], out.buf + 8, 24);
        /* The caller's prefix, then the counter from 1, big-endian. */
        uint8_t prefix[16];
        memset(prefix, 0xa0, sizeof prefix);
        assert_memory_equal(out.buf + 8, prefix, 16);
        assert_int_equal(out.buf[31], k + 1);
        for (int j = 0; j < k; j++)
            assert_memory_not_equal(seen[j], seen[k], 24);
    }
    vigil_swim_free(a);
}

/* A full-state sync of 300 members with the most metadata: every datagram within the MTU. */
static void test_sealed_sync_within_mtu(void **state)
{
    (void)state;
    struct opts o = {.key = true, .encrypt = true};
    struct vigil_swim *a = member(0, o, S), *b = member(1, o, S);
    uint8_t meta[VIGIL_SWIM_META_MAX];
    memset(meta, 'x', sizeof meta);
    assert_int_equal(vigil_swim_set_meta(a, S, meta, sizeof meta), 0);
    /* Members with long ids, learned through their alives with metadata (a sync from c). */
    for (int i = 0; i < 300; i++) {
        char id[VIGIL_ID_MAX + 1];
        snprintf(id, sizeof id, "member-with-a-rather-long-name-for-the-mtu-test-%05d", i);
        struct vigil_addr ad = addr_of(2);
        ad.addr[1] = (uint8_t)(i >> 8);
        ad.addr[2] = (uint8_t)i;
        assert_int_equal(vigil_swim_add(a, S, id, &ad), 0);
    }
    struct vigil_addr tb = addr_of(1), ta = addr_of(0);
    vigil_swim_join(a, S, &tb, 1);
    struct vigil_swim_send out;
    int n = 0;
    while (vigil_swim_poll_send(a, &out)) {
        assert_true(out.len <= 1200);
        assert_int_equal(vigil_swim_on_datagram(b, S, out.buf, out.len, &ta), 0);
        n++;
    }
    assert_true(n > 10);
    assert_int_equal(vigil_swim_member_count(b), 301);
    struct vigil_swim_member m;
    assert_true(vigil_swim_find(b, "m0", &m));
    assert_int_equal(m.meta_len, VIGIL_SWIM_META_MAX);
    vigil_swim_free(a);
    vigil_swim_free(b);
}

/* ---- signed leaves ---- */

static void test_forged_leaves_refused(void **state)
{
    (void)state;
    /* m0..m3 require signed leaves; m4 takes any leave (no CA): the lax one. */
    struct opts strict = {.key = true, .sign = true, .ca = true, .require = true};
    struct opts o[5] = {strict, strict, strict, strict, {.key = true, .sign = true}};
    struct net nt;
    net_init(&nt, 5, o, false);
    run(&nt, nt.now + 5 * S);
    uint8_t proof[VIGIL_SWIM_CERT_MAX + VIGIL_SWIM_SIG_LEN];
    struct forge f;

    /* m3, an insider with the cluster key and a certificate of its own, says m1 left. */
    /* 1. Unsigned. */
    forge_left(&f, "m3", "m1", 0, NULL, 0, true);
    assert_int_equal(deliver(&nt, 0, 3, &f), 0);
    assert_int_equal(deliver(&nt, 2, 3, &f), 0);
    assert_int_equal(view(&nt, 0, 1), VIGIL_STATE_ALIVE);
    assert_int_equal(view(&nt, 2, 1), VIGIL_STATE_ALIVE);
    assert_int_equal(vigil_swim_stats(nt.m[0])->leaves_refused, 1);
    /* 2. Signed by m3 with its own certificate: a certificate for another id. */
    size_t pl = make_proof(proof, member_cert[3], member_cert_len[3], member_sk[3], "m1", 0);
    forge_left(&f, "m3", "m1", 0, proof, pl, true);
    assert_int_equal(deliver(&nt, 0, 3, &f), 0);
    assert_int_equal(view(&nt, 0, 1), VIGIL_STATE_ALIVE);
    assert_int_equal(vigil_swim_stats(nt.m[0])->leaves_refused, 2);
    /* 3. m1's real certificate, signed with m3's key. */
    pl = make_proof(proof, member_cert[1], member_cert_len[1], member_sk[3], "m1", 0);
    forge_left(&f, "m3", "m1", 0, proof, pl, true);
    assert_int_equal(deliver(&nt, 0, 3, &f), 0);
    assert_int_equal(view(&nt, 0, 1), VIGIL_STATE_ALIVE);
    /* 4. A certificate for m1 with m3's key, from a CA of m3's own. */
    uint8_t rogue_pk[32], rogue_sk[64], cert[VIGIL_SWIM_CERT_MAX];
    crypto_sign_keypair(rogue_pk, rogue_sk);
    int cl = vigil_swim_cert_issue(rogue_sk, "m1", member_pk[3], cert, sizeof cert);
    assert_true(cl > 0);
    pl = make_proof(proof, cert, (size_t)cl, member_sk[3], "m1", 0);
    forge_left(&f, "m3", "m1", 0, proof, pl, true);
    assert_int_equal(deliver(&nt, 0, 3, &f), 0);
    assert_int_equal(view(&nt, 0, 1), VIGIL_STATE_ALIVE);
    assert_int_equal(vigil_swim_stats(nt.m[0])->leaves_refused, 4);
    /* 5. A real proof of m1 for another incarnation (1: m1 is at 0 and never signed 1). */
    pl = make_proof(proof, member_cert[1], member_cert_len[1], member_sk[1], "m1", 1);
    proof[pl - 1] ^= 1;
    forge_left(&f, "m3", "m1", 1, proof, pl, true);
    assert_int_equal(deliver(&nt, 0, 3, &f), 0);
    assert_int_equal(view(&nt, 0, 1), VIGIL_STATE_ALIVE);

    /* The lax member m4 takes the unsigned one... */
    forge_left(&f, "m3", "m2", 0, NULL, 0, true);
    assert_int_equal(deliver(&nt, 4, 3, &f), 0);
    assert_int_equal(view(&nt, 4, 2), VIGIL_STATE_LEFT);
    /* ...and its anti-entropy hands it on: refused by the strict member m0. */
    uint64_t refused = vigil_swim_stats(nt.m[0])->leaves_refused;
    struct vigil_addr a0 = addr_of(0);
    vigil_swim_join(nt.m[4], nt.now, &a0, 1);
    struct vigil_swim_send out;
    while (vigil_swim_poll_send(nt.m[4], &out)) {
        struct vigil_addr a4 = addr_of(4);
        assert_int_equal(vigil_swim_on_datagram(nt.m[0], nt.now, out.buf, out.len, &a4), 0);
    }
    flush(&nt, 0);
    assert_int_equal(view(&nt, 0, 2), VIGIL_STATE_ALIVE);
    assert_int_equal(vigil_swim_stats(nt.m[0])->leaves_refused, refused + 1);

    /* m4 itself, told it left (a leave it did not make, taken as it takes any), refutes. */
    forge_left(&f, "m3", "m4", vigil_swim_incarnation(nt.m[4]), NULL, 0, true);
    assert_int_equal(deliver(&nt, 4, 3, &f), 0);
    assert_int_equal(vigil_swim_incarnation(nt.m[4]), 1);
    run(&nt, nt.now + 30 * S);
    struct vigil_swim_member m;
    assert_true(vigil_swim_find(nt.m[0], "m4", &m));
    assert_int_equal(m.state, VIGIL_STATE_ALIVE);
    assert_int_equal(m.incarnation, 1);

    /* Through all this, nobody took m1 for left, and gossip spread no such thing. */
    run(&nt, nt.now + 60 * S);
    for (uint32_t i = 0; i < 5; i++)
        if (i != 1)
            assert_int_equal(view(&nt, i, 1), VIGIL_STATE_ALIVE);
    net_free(&nt);
}

static void test_real_leave_everywhere_and_by_sync(void **state)
{
    (void)state;
    struct opts strict = {
        .key = true, .encrypt = true, .sign = true, .ca = true, .require = true, .alive = true};
    struct opts o[5] = {strict, strict, strict, strict, strict};
    struct net nt;
    net_init(&nt, 5, o, false);
    run(&nt, nt.now + 5 * S);
    /* m4 stops for 3 s (shorter than any suspicion); m1 leaves meanwhile. */
    nt.down[4] = true;
    run(&nt, nt.now + 100 * MS);
    vigil_swim_leave(nt.m[1], nt.now);
    flush(&nt, 1);
    run(&nt, nt.now + 500 * MS);
    nt.down[1] = true; /* the leaver sends, then stops */
    run(&nt, nt.now + 2400 * MS);
    for (uint32_t i = 0; i < 4; i++)
        if (i != 1)
            assert_int_equal(view(&nt, i, 1), VIGIL_STATE_LEFT);
    assert_int_equal(view(&nt, 4, 1), VIGIL_STATE_ALIVE);
    nt.down[4] = false;
    /* The gossip of the leave is over: m4 can only learn of it by anti-entropy. */
    run(&nt, nt.now + 1 * S);
    assert_int_not_equal(view(&nt, 4, 1), VIGIL_STATE_LEFT);
    uint64_t syncs = 0;
    for (uint32_t i = 0; i < 5; i++)
        syncs += vigil_swim_stats(nt.m[i])->syncs;
    run(&nt, nt.now + 120 * S);
    uint64_t syncs_after = 0;
    for (uint32_t i = 0; i < 5; i++)
        syncs_after += vigil_swim_stats(nt.m[i])->syncs;
    assert_true(syncs_after > syncs);
    for (uint32_t i = 0; i < 5; i++) {
        if (i == 1)
            continue;
        assert_int_equal(view(&nt, i, 1), VIGIL_STATE_LEFT);
        assert_int_equal(vigil_swim_stats(nt.m[i])->leaves_refused, 0);
        for (uint32_t j = 0; j < 5; j++)
            if (j != i && j != 1)
                assert_int_equal(view(&nt, i, j), VIGIL_STATE_ALIVE);
    }
    assert_int_equal(auth_failed(&nt), 0);
    net_free(&nt);
}

/*
 * The first datagram a leaving member sends, in clear without a key (so
 * that every byte reaches the decoder and the signature check), each byte
 * of its signed leave (the update: kind, incarnation, id, certificate,
 * signature) flipped in turn, into a member that requires signed leaves:
 * never left. (The envelope, the datagram's type, seq and sender, is not
 * part of the leave: a real leave in another envelope is still real, and
 * with a cluster key the tag or the seal covers the envelope.)
 */
static void test_signed_leave_every_byte_flipped(void **state)
{
    (void)state;
    struct opts o = {.sign = true, .ca = true, .require = true};
    struct vigil_swim *l = member(1, o, S);
    struct vigil_addr a0 = addr_of(0), a1 = addr_of(1);
    assert_int_equal(vigil_swim_add(l, S, "m0", &a0), 0);
    vigil_swim_leave(l, S);
    struct vigil_swim_send out;
    assert_true(vigil_swim_poll_send(l, &out));
    vigil_swim_free(l);
    /* update count 1, kind 5 (signed left), incarnation 0, "m1", the proof */
    size_t hdr = 8 + 4 + 2;
    assert_int_equal(out.buf[hdr], 1);
    assert_int_equal(out.buf[hdr + 1], 5);
    assert_int_equal(out.len, hdr + 1 + 1 + 4 + 3 + member_cert_len[1] + 64);

    /* As sent: taken. */
    struct vigil_swim *r = member(0, o, S);
    assert_int_equal(vigil_swim_add(r, S, "m1", &a1), 0);
    assert_int_equal(vigil_swim_on_datagram(r, S, out.buf, out.len, &a1), 0);
    struct vigil_swim_member m;
    assert_true(vigil_swim_find(r, "m1", &m));
    assert_int_equal(m.state, VIGIL_STATE_LEFT);
    vigil_swim_free(r);

    for (size_t k = hdr; k < out.len; k++) {
        for (int bit = 0; bit < 8; bit += 7) {
            uint8_t c[1280];
            memcpy(c, out.buf, out.len);
            c[k] ^= (uint8_t)(1u << bit);
            r = member(0, o, S);
            assert_int_equal(vigil_swim_add(r, S, "m1", &a1), 0);
            (void)vigil_swim_on_datagram(r, S, c, out.len, &a1);
            assert_true(vigil_swim_find(r, "m1", &m));
            if (m.state != VIGIL_STATE_ALIVE)
                fail_msg("byte %zu bit %d flipped: m1 is %d", k, bit, (int)m.state);
            vigil_swim_free(r);
        }
    }
}

/*
 * A gossip datagram from sender with one alive of id at inc (address 10.0.0.9:7946,
 * no metadata; proof: certificate then signature, or NULL), tagged with the cluster key.
 */
static void forge_alive(struct forge *f, const char *sender, const char *id, uint32_t inc,
                        const uint8_t *proof, size_t plen)
{
    f->len = 0;
    const uint8_t hdr[] = {'V', 'G', 3, 5, 0x02, (uint8_t)strlen(sender), 0, 0, 0, 0, 0, 0};
    memcpy(f->buf, hdr, sizeof hdr);
    f->len = sizeof hdr;
    memcpy(f->buf + f->len, sender, strlen(sender));
    f->len += strlen(sender);
    f_u8(f, 1);
    f_u8(f, proof ? 6 : 1);
    for (int i = 3; i >= 0; i--)
        f_u8(f, (uint8_t)(inc >> (8 * i)));
    f_id(f, id);
    const uint8_t addr[] = {4, 0x1f, 0x0a, 10, 0, 0, 9, 0};
    memcpy(f->buf + f->len, addr, sizeof addr);
    f->len += sizeof addr;
    if (proof) {
        memcpy(f->buf + f->len, proof, plen);
        f->len += plen;
    }
    uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN];
    vigil_wire_mac_key(mac, cluster_key);
    crypto_shorthash_siphashx24(f->buf + f->len, f->buf, f->len, mac);
    f->len += 16;
}

/* An alive's proof as docs/peer.md says: the signature over the domain, fingerprint and fields. */
static size_t make_alive_proof(uint8_t *proof, const uint8_t *cert, size_t cert_len,
                               const uint8_t *sk, const char *id, uint32_t inc)
{
    uint8_t msg[256];
    size_t n = 19;
    memcpy(msg, "vigil swim alive v1", 19);
    vigil_wire_key_fingerprint(msg + n, cluster_key);
    n += VIGIL_WIRE_FINGERPRINT_LEN;
    for (int i = 3; i >= 0; i--)
        msg[n++] = (uint8_t)(inc >> (8 * i));
    msg[n++] = (uint8_t)strlen(id);
    memcpy(msg + n, id, strlen(id));
    n += strlen(id);
    const uint8_t addr[] = {4, 0x1f, 0x0a, 10, 0, 0, 9, 0};
    memcpy(msg + n, addr, sizeof addr);
    n += sizeof addr;
    memcpy(proof, cert, cert_len);
    crypto_sign_detached(proof + cert_len, NULL, msg, n, sk);
    return cert_len + VIGIL_SWIM_SIG_LEN;
}

static uint64_t alives_refused(const struct net *nt)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < nt->n; i++)
        n += vigil_swim_stats(nt->m[i])->alives_refused;
    return n;
}

static void test_signed_alives(void **state)
{
    (void)state;
    struct net nt;
    strict_net(&nt);
    assert_int_equal(alives_refused(&nt), 0);
    /* A member stopped long enough to be suspected refutes, signed: alive everywhere. */
    nt.down[2] = true;
    run(&nt, nt.now + 4 * S);
    nt.down[2] = false;
    run(&nt, nt.now + 30 * S);
    assert_true(vigil_swim_stats(nt.m[2])->refutations > 0);
    for (uint32_t i = 0; i < 5; i++)
        if (i != 2)
            assert_int_equal(view(&nt, i, 2), VIGIL_STATE_ALIVE);
    assert_int_equal(alives_refused(&nt), 0);

    /*
     * m4 crashes; the insider m3 (the cluster key, its own certificate)
     * refutes for it every 500 ms, unsigned and signed with its own
     * certificate, and pushes m1 to the highest incarnation: all refused,
     * and m4 is dead everywhere.
     */
    nt.down[4] = true;
    uint8_t proof[VIGIL_SWIM_CERT_MAX + VIGIL_SWIM_SIG_LEN];
    struct forge f;
    vigil_time_t end = nt.now + 90 * S;
    uint32_t inc4 = 1000;
    uint64_t refused = alives_refused(&nt);
    while (nt.now < end) {
        run(&nt, nt.now + 500 * MS);
        for (uint32_t i = 0; i < 3; i++) {
            forge_alive(&f, "m3", "m4", inc4, NULL, 0);
            seal_forge(&f);
            assert_int_equal(deliver(&nt, i, 3, &f), 0);
            size_t pl = make_alive_proof(proof, member_cert[3], member_cert_len[3], member_sk[3],
                                         "m4", inc4 + 1);
            forge_alive(&f, "m3", "m4", inc4 + 1, proof, pl);
            seal_forge(&f);
            assert_int_equal(deliver(&nt, i, 3, &f), 0);
            forge_alive(&f, "m3", "m1", UINT32_MAX, NULL, 0);
            seal_forge(&f);
            assert_int_equal(deliver(&nt, i, 3, &f), 0);
        }
        inc4 += 2;
    }
    print_message("# %" PRIu64 " alives refused\n", alives_refused(&nt) - refused);
    assert_true(alives_refused(&nt) >= refused + 3 * 3 * 180);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(view(&nt, i, 4), VIGIL_STATE_DEAD);
        struct vigil_swim_member m;
        if (i != 1) {
            assert_true(vigil_swim_find(nt.m[i], "m1", &m));
            assert_int_equal(m.state, VIGIL_STATE_ALIVE);
            assert_true(m.incarnation < 10);
        }
    }
    assert_int_equal(auth_failed(&nt), 0);

    /* m1 leaves; the insider's alive of m1 at a higher incarnation does not bring it back. */
    vigil_swim_leave(nt.m[1], nt.now);
    flush(&nt, 1);
    run(&nt, nt.now + 2 * S);
    nt.down[1] = true;
    forge_alive(&f, "m3", "m1", 500, NULL, 0);
    seal_forge(&f);
    assert_int_equal(deliver(&nt, 0, 3, &f), 0);
    run(&nt, nt.now + 60 * S);
    for (uint32_t i = 0; i < 4; i++)
        if (i != 1)
            assert_int_equal(view(&nt, i, 1), VIGIL_STATE_LEFT);
    net_free(&nt);
}

/*
 * A member's join (its full state: its signed alive first) in clear
 * without a key, each byte of its alive flipped in turn, into a member
 * that requires signed alives: never taken. As sent: taken.
 */
static void test_signed_alive_every_byte_flipped(void **state)
{
    (void)state;
    struct opts o = {.sign = true, .ca = true, .alive = true};
    struct vigil_swim *l = member(1, o, S);
    uint8_t meta[] = "role=db";
    assert_int_equal(vigil_swim_set_meta(l, S, meta, sizeof meta - 1), 0);
    struct vigil_addr a0 = addr_of(0), a1 = addr_of(1);
    vigil_swim_join(l, S, &a0, 1);
    struct vigil_swim_send out;
    assert_true(vigil_swim_poll_send(l, &out));
    vigil_swim_free(l);
    size_t hdr = 8 + 4 + 2;
    assert_int_equal(out.buf[hdr], 1);     /* one update */
    assert_int_equal(out.buf[hdr + 1], 6); /* alive, signed */
    struct vigil_swim *r = member(0, o, S);
    assert_int_equal(vigil_swim_on_datagram(r, S, out.buf, out.len, &a1), 0);
    struct vigil_swim_member m;
    assert_true(vigil_swim_find(r, "m1", &m));
    assert_int_equal(m.incarnation, 1);
    assert_int_equal(m.meta_len, sizeof meta - 1);
    vigil_swim_free(r);
    for (size_t k = hdr; k < out.len; k++) {
        for (int bit = 0; bit < 8; bit += 3) {
            uint8_t c[1280];
            memcpy(c, out.buf, out.len);
            c[k] ^= (uint8_t)(1u << bit);
            r = member(0, o, S);
            (void)vigil_swim_on_datagram(r, S, c, out.len, &a1);
            if (vigil_swim_member_count(r) != 0)
                fail_msg("byte %zu bit %d flipped: a member was taken", k, bit);
            vigil_swim_free(r);
        }
    }
}

/*
 * A gossip datagram from sender with accusations about id: each (kind 2
 * suspect or 3 dead, incarnation, accuser) in turn, sealed as the members
 * seal (what an insider holding the cluster key can send).
 */
static void forge_accuse(struct forge *f, const char *sender, const char *id, size_t n,
                         const uint8_t *kinds, const uint32_t *incs, const char *const *accusers)
{
    f->len = 0;
    f_u8(f, 'V');
    f_u8(f, 'G');
    f_u8(f, 3);
    f_u8(f, 5); /* gossip */
    f_u8(f, 0x02);
    f_u8(f, (uint8_t)strlen(sender));
    f_u8(f, 0);
    f_u8(f, 0);
    for (int i = 0; i < 4; i++)
        f_u8(f, 0); /* seq */
    memcpy(f->buf + f->len, sender, strlen(sender));
    f->len += strlen(sender);
    f_u8(f, (uint8_t)n);
    for (size_t k = 0; k < n; k++) {
        f_u8(f, kinds[k]);
        for (int i = 3; i >= 0; i--)
            f_u8(f, (uint8_t)(incs[k] >> (8 * i)));
        f_id(f, id);
        f_id(f, accusers[k]);
    }
    uint8_t mac[VIGIL_WIRE_MAC_KEY_LEN];
    vigil_wire_mac_key(mac, cluster_key);
    crypto_shorthash_siphashx24(f->buf + f->len, f->buf, f->len, mac);
    f->len += 16;
    seal_forge(f);
}

/*
 * An insider (the cluster key, its own certificate) cannot have a live
 * member declared dead by its word: a suspicion and a death of m1 in one
 * datagram, with made-up accusers to look confirmed, repeated every
 * 500 ms, leave m1 alive everywhere (a death is taken only for a suspicion
 * that has run its shortest timeout here, which m1 refutes long before);
 * accusations at incarnations m1 never signed (pushing it to the top,
 * where it could not refute) are refused.
 */
static void test_insider_cannot_kill(void **state)
{
    (void)state;
    struct net nt;
    strict_net(&nt);
    uint64_t deaths0 = 0;
    for (uint32_t i = 0; i < 5; i++)
        deaths0 += vigil_swim_stats(nt.m[i])->deaths;
    struct forge f;
    vigil_time_t end = nt.now + 60 * S;
    uint32_t dead_seen = 0;
    while (nt.now < end) {
        struct vigil_swim_member m;
        assert_true(vigil_swim_find(nt.m[0], id_of(1), &m));
        static const char *const accusers[] = {"m3", "m7", "ghost1", "ghost2"};
        /* At m1's incarnation: a suspicion, confirmations, then a death. */
        uint8_t k1[] = {2, 2, 2, 3};
        uint32_t i1[] = {m.incarnation, m.incarnation, m.incarnation, m.incarnation};
        forge_accuse(&f, id_of(3), id_of(1), 4, k1, i1, accusers);
        for (uint32_t to = 0; to < 5; to++)
            if (to != 1 && to != 3)
                deliver(&nt, to, 3, &f);
        /* At incarnations m1 never reached: the top, where it could not refute. */
        uint8_t k2[] = {2, 3};
        uint32_t i2[] = {UINT32_MAX - 1, UINT32_MAX - 1};
        forge_accuse(&f, id_of(3), id_of(1), 2, k2, i2, accusers);
        for (uint32_t to = 0; to < 5; to++)
            if (to != 3) /* m1 itself too: it must not jump to the top */
                deliver(&nt, to, 3, &f);
        run(&nt, nt.now + 500 * MS);
        for (uint32_t i = 0; i < 5; i++)
            if (i != 1 && view(&nt, i, 1) == VIGIL_STATE_DEAD)
                dead_seen++;
    }
    uint64_t deaths = 0;
    for (uint32_t i = 0; i < 5; i++)
        deaths += vigil_swim_stats(nt.m[i])->deaths;
    printf("# 120 forged accusations of m1: seen dead %u times, deaths %llu, m1 refuted %llu "
           "times, incarnation %u\n",
           dead_seen, (unsigned long long)(deaths - deaths0),
           (unsigned long long)vigil_swim_stats(nt.m[1])->refutations,
           vigil_swim_incarnation(nt.m[1]));
    assert_int_equal(dead_seen, 0);
    assert_int_equal(deaths, deaths0);
    assert_true(vigil_swim_incarnation(nt.m[1]) < 1000000);
    uint64_t refused = 0;
    for (uint32_t i = 0; i < 5; i++)
        refused += vigil_swim_stats(nt.m[i])->accusations_refused;
    assert_true(refused >= 4 * 120);
    run(&nt, nt.now + 20 * S);
    assert_all_alive(&nt);
    net_free(&nt);
}

static void test_certificates(void **state)
{
    (void)state;
    struct vigil_swim_cert c;
    /* 98 + id length bytes: version, id length, id, public key, signature. */
    assert_int_equal(member_cert_len[1], 98 + 2);
    assert_int_equal(member_cert[1][0], VIGIL_SWIM_CERT_VERSION);
    assert_int_equal(vigil_swim_cert_verify(ca_pk, member_cert[1], member_cert_len[1], &c), 0);
    assert_string_equal(c.id, "m1");
    assert_memory_equal(c.pk, member_pk[1], 32);
    /* Another CA's key: refused; any byte changed: refused. */
    assert_int_equal(vigil_swim_cert_verify(member_pk[0], member_cert[1], member_cert_len[1], &c),
                     -VIGIL_EAUTH);
    for (size_t k = 0; k < member_cert_len[1]; k++) {
        uint8_t x[VIGIL_SWIM_CERT_MAX];
        memcpy(x, member_cert[1], member_cert_len[1]);
        x[k] ^= 4;
        assert_int_not_equal(vigil_swim_cert_verify(ca_pk, x, member_cert_len[1], NULL), 0);
    }
    assert_int_equal(vigil_swim_cert_parse(member_cert[1], member_cert_len[1] - 1, NULL),
                     -VIGIL_EBADFIELD);
    uint8_t small[50];
    assert_int_equal(vigil_swim_cert_issue(ca_sk, "m1", member_pk[1], small, sizeof small),
                     -VIGIL_ETOOBIG);
    assert_int_equal(vigil_swim_cert_issue(ca_sk, "no/slash", member_pk[1], member_cert[7], 200),
                     -VIGIL_EBADID);

    /* A member configured with a certificate for another id, or for another key: refused. */
    struct vigil_swim_config cfg;
    struct vigil_swim *s = NULL;
    config(&cfg, 0, (struct opts){.sign = true, .ca = true, .require = true});
    memcpy(cfg.cert, member_cert[1], member_cert_len[1]);
    cfg.cert_len = member_cert_len[1];
    assert_int_equal(vigil_swim_new(&cfg, S, &s), -VIGIL_EINVAL);
    config(&cfg, 0, (struct opts){.sign = true});
    memcpy(cfg.sign_sk, member_sk[1], sizeof cfg.sign_sk);
    assert_int_equal(vigil_swim_new(&cfg, S, &s), -VIGIL_EINVAL);
    /* A certificate of another CA, for a member that knows the CA. */
    uint8_t rogue_pk[32], rogue_sk[64];
    crypto_sign_keypair(rogue_pk, rogue_sk);
    config(&cfg, 0, (struct opts){.sign = true, .ca = true});
    int n = vigil_swim_cert_issue(rogue_sk, "m0", member_pk[0], cfg.cert, sizeof cfg.cert);
    cfg.cert_len = (size_t)n;
    assert_int_equal(vigil_swim_new(&cfg, S, &s), -VIGIL_EINVAL);
    /* Signatures required without the CA's key to check them with. */
    config(&cfg, 0, (struct opts){.require = true});
    assert_int_equal(vigil_swim_new(&cfg, S, &s), -VIGIL_EINVAL);
    assert_null(s);

    /* A leave signed by m1's key, under m0's certificate (its id on the leave is m1): refused. */
    struct opts o = {.sign = true, .ca = true, .require = true};
    struct vigil_swim *r = member(2, o, S);
    struct vigil_addr a1 = addr_of(1);
    assert_int_equal(vigil_swim_add(r, S, "m1", &a1), 0);
    uint8_t proof[VIGIL_SWIM_CERT_MAX + VIGIL_SWIM_SIG_LEN];
    struct forge f;
    /* Without a cluster key the fingerprint in the signature is zeros: made here by hand. */
    uint8_t msg[64];
    memcpy(msg, "vigil swim leave v1", 19);
    memset(msg + 19, 0, 16);
    msg[35] = 2;
    memcpy(msg + 36, "m1", 2);
    memset(msg + 38, 0, 4);
    memcpy(proof, member_cert[0], member_cert_len[0]);
    crypto_sign_detached(proof + member_cert_len[0], NULL, msg, 42, member_sk[1]);
    forge_left(&f, "m1", "m1", 0, proof, member_cert_len[0] + 64, false);
    assert_int_equal(vigil_swim_on_datagram(r, S, f.buf, f.len, &a1), 0);
    struct vigil_swim_member m;
    assert_true(vigil_swim_find(r, "m1", &m));
    assert_int_equal(m.state, VIGIL_STATE_ALIVE);
    assert_int_equal(vigil_swim_stats(r)->leaves_refused, 1);
    /* The same, with m1's own certificate: taken (the hand-made signature is the real thing). */
    memcpy(proof, member_cert[1], member_cert_len[1]);
    crypto_sign_detached(proof + member_cert_len[1], NULL, msg, 42, member_sk[1]);
    forge_left(&f, "m1", "m1", 0, proof, member_cert_len[1] + 64, false);
    assert_int_equal(vigil_swim_on_datagram(r, S, f.buf, f.len, &a1), 0);
    assert_true(vigil_swim_find(r, "m1", &m));
    assert_int_equal(m.state, VIGIL_STATE_LEFT);
    vigil_swim_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encrypted_converge_and_detect),
        cmocka_unit_test(test_plain_and_sealed_refused),
        cmocka_unit_test(test_sealed_nonces_unique),
        cmocka_unit_test(test_sealed_sync_within_mtu),
        cmocka_unit_test(test_forged_leaves_refused),
        cmocka_unit_test(test_real_leave_everywhere_and_by_sync),
        cmocka_unit_test(test_signed_leave_every_byte_flipped),
        cmocka_unit_test(test_signed_alives),
        cmocka_unit_test(test_signed_alive_every_byte_flipped),
        cmocka_unit_test(test_insider_cannot_kill),
        cmocka_unit_test(test_certificates),
    };
    return cmocka_run_group_tests(tests, keys_setup, NULL);
}
