/*
 * Fuzz target: SWIM datagrams (src/core/swim.c) into a member that knows a
 * few others, in four configurations: without a key (so that the input
 * reaches the decoder past the tag), with one (so that the tag check
 * itself is exercised), without a key but requiring signed leaves (so
 * that the input reaches the certificate and signature checks), and
 * sealing (the AEAD's opening). The member then runs its timers for a
 * while; every datagram it sends in answer must decode at a peer of the
 * same configuration without error. Nothing may crash, leak or read out
 * of bounds.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "vigil/swim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int vigil_fuzz_seed(size_t index, uint8_t *buf, size_t cap);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static struct vigil_addr addr(uint8_t last)
{
    struct vigil_addr a;
    memset(&a, 0, sizeof(a));
    a.family = 2;
    a.addr[0] = 10;
    a.addr[3] = last;
    a.port = 7946;
    return a;
}

enum mode { PLAIN, KEYED, SIGNED, SEALED, MODES };

/*
 * A member's signing key and certificate, and the CA's public key, from
 * fixed seeds (the CA's is 0xca..., a member's its id's first byte...).
 */
static void sign_config(struct vigil_swim_config *c, const char *id)
{
    uint8_t seed[crypto_sign_SEEDBYTES], ca_sk[crypto_sign_SECRETKEYBYTES];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    memset(seed, 0xca, sizeof seed);
    crypto_sign_seed_keypair(c->leave_ca_pk, ca_sk, seed);
    memset(seed, id[0], sizeof seed);
    crypto_sign_seed_keypair(pk, c->sign_sk, seed);
    int n = vigil_swim_cert_issue(ca_sk, id, pk, c->cert, sizeof c->cert);
    check(n > 0);
    c->cert_len = (size_t)n;
    c->has_sign_key = c->has_leave_ca = c->require_signed_leave = c->require_signed_alive = true;
}

static struct vigil_swim *member(const char *id, uint8_t last, enum mode mode)
{
    struct vigil_swim_config c;
    vigil_swim_config_default(&c);
    c.id = id;
    c.addr = addr(last);
    c.seed = 1;
    c.has_key = mode == KEYED || mode == SEALED;
    memset(c.key, 9, sizeof(c.key));
    c.encrypt = mode == SEALED;
    memset(c.nonce_prefix, last, sizeof c.nonce_prefix);
    if (mode == SIGNED)
        sign_config(&c, id);
    struct vigil_swim *s = NULL;
    check(vigil_swim_new(&c, 1000000000, &s) == 0);
    static const char *const others[] = {"a", "b", "c"};
    for (uint8_t i = 0; i < 3; i++) {
        struct vigil_addr a = addr((uint8_t)(i + 1));
        if (strcmp(others[i], id) != 0)
            check(vigil_swim_add(s, 1000000000, others[i], &a) == 0);
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int mode = 0; mode < MODES; mode++) {
        struct vigil_swim *s = member("a", 1, (enum mode)mode);
        struct vigil_swim *peer = member("b", 2, (enum mode)mode);
        struct vigil_addr from = addr(2);
        vigil_time_t now = 1000000000;
        (void)vigil_swim_on_datagram(s, now, data, size, &from);
        for (int step = 0; step < 50; step++) {
            vigil_time_t at = vigil_swim_next_deadline(s);
            if (at > now + 100000000000LL)
                break;
            now = at > now ? at : now;
            vigil_swim_on_expiry(s, now);
            struct vigil_swim_send out;
            while (vigil_swim_poll_send(s, &out)) {
                /* What a member sends, a member of the same cluster reads whole. */
                check(out.len <= 1200);
                struct vigil_addr me = addr(1);
                check(vigil_swim_on_datagram(peer, now, out.buf, out.len, &me) == 0);
            }
            struct vigil_swim_event ev;
            while (vigil_swim_poll_event(s, &ev))
                check(ev.id[0] != '\0');
        }
        vigil_swim_free(s);
        vigil_swim_free(peer);
    }
    return 0;
}

/*
 * Valid datagrams: what member b sends a in its first seconds (pings,
 * gossip, a sync), seeds 0 to 15; from 16 on, what b sends after its
 * signed leave (the leave in gossip, then in syncs).
 */
int vigil_fuzz_seed(size_t index, uint8_t *buf, size_t cap)
{
    bool leave = index >= 16;
    if (leave)
        index -= 16;
    struct vigil_swim *b = member("b", 2, leave ? SIGNED : PLAIN);
    uint8_t meta[3] = {1, 2, 3};
    check(vigil_swim_set_meta(b, 1000000000, meta, sizeof meta) == 0);
    struct vigil_addr seed = addr(1);
    vigil_swim_join(b, 1000000000, &seed, 1);
    if (leave)
        vigil_swim_leave(b, 1000000000);
    vigil_time_t now = 1000000000;
    size_t k = 0;
    int len = -1;
    for (int step = 0; step < 200 && len < 0; step++) {
        struct vigil_swim_send out;
        while (len < 0 && vigil_swim_poll_send(b, &out)) {
            if (k++ == index && out.len <= cap) {
                memcpy(buf, out.buf, out.len);
                len = (int)out.len;
            }
        }
        vigil_time_t at = vigil_swim_next_deadline(b);
        now = at > now ? at : now + 1;
        vigil_swim_on_expiry(b, now);
    }
    vigil_swim_free(b);
    return index < 16 ? len : -1;
}
