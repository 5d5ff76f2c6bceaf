/*
 * Peer-to-peer mode's signing keys (docs/peer.md, "Signed leaves"): the
 * files `vigil peer-cert` writes, and their readers, for `vigil peer`.
 *
 *   CA file (vigil peer-cert ca --out CA_FILE; mode 0600, keep it off the members):
 *     vigil-peer-ca
 *     secret-key=<128 hex digits: libsodium's Ed25519 secret key>
 *     public-key=<64 hex digits>
 *   CA public key file (CA_FILE.pub; every member gets a copy):
 *     vigil-peer-ca-public
 *     public-key=<64 hex digits>
 *   member file (vigil peer-cert issue ...; mode 0600, member ID only):
 *     vigil-peer-member ID
 *     secret-key=<128 hex digits: the member's Ed25519 secret key>
 *     certificate=<hex digits: the certificate, 98 + length of ID bytes>
 *
 * Lines are "name=value" after the header line; blank lines and lines
 * starting with '#' are skipped; every name appears exactly once. Files
 * holding a secret key must be readable by their owner only.
 *
 * Each reader returns 0, or -1 with a message naming the file in err.
 */
#ifndef VIGIL_PEERCERT_H
#define VIGIL_PEERCERT_H

#include <stddef.h>
#include <stdint.h>

#include <vigil/swim.h>

#include "io/vio.h"

#define PEERCERT_HDR_CA     "vigil-peer-ca"
#define PEERCERT_HDR_PUBLIC "vigil-peer-ca-public"
#define PEERCERT_HDR_MEMBER "vigil-peer-member"

/*
 * The CA's public key, from a CA public key file or from the CA file
 * itself (which must then be readable by its owner only): for
 * leave_ca_pk.
 */
int peercert_read_ca_pk(struct vio_fs *fs, const char *path, uint8_t pk[VIGIL_SWIM_SIGN_PK_LEN],
                        char *err, size_t cap);

/* The CA's key pair from the CA file (vigil peer-cert issue); the public half must match. */
int peercert_read_ca(struct vio_fs *fs, const char *path, uint8_t sk[VIGIL_SWIM_SIGN_SK_LEN],
                     uint8_t pk[VIGIL_SWIM_SIGN_PK_LEN], char *err, size_t cap);

/*
 * A member file: its id (the header's, which the certificate must name),
 * secret key and certificate (its public key must be the secret key's),
 * for sign_sk, cert and cert_len. With ca_pk non-NULL, the certificate
 * must also verify under it. The secret key is wiped on failure.
 */
int peercert_read_member(struct vio_fs *fs, const char *path, char id[VIGIL_ID_MAX + 1],
                         uint8_t sk[VIGIL_SWIM_SIGN_SK_LEN], uint8_t cert[VIGIL_SWIM_CERT_MAX],
                         size_t *cert_len, const uint8_t *ca_pk, char *err, size_t cap);

#endif
