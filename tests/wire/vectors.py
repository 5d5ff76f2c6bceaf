#!/usr/bin/env python3
"""The test vectors of docs/protocol.md, computed independently of vigil.

Usage: vectors.py [PROTOCOL_MD]

Builds the datagrams of the test vectors byte by byte from the layout in
docs/protocol.md, with Python's hashlib.blake2b for the tag key (as
libsodium's crypto_kdf_derive_from_key defines it), the SipHash-2-4-128
below (written from the SipHash reference implementation, checked here
against its first vectors_sip128 entry and against the version 1 vector)
and the XChaCha20-Poly1305 below (written from RFC 8439 and
draft-irtf-cfrg-xchacha, checked here against the draft's AEAD test
vector) for the sealed full status.
Prints each vector in hex; with PROTOCOL_MD, fails unless every vector
appears in that file exactly as computed. tests/unit/test_wire.c checks
the C encoder against the same bytes.
"""
import hashlib
import re
import struct
import sys

MASK = (1 << 64) - 1


def rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK


def siphash128(key, msg):
    """SipHash-2-4 with 128-bit output; key 16 bytes."""
    k0, k1 = struct.unpack("<QQ", key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D ^ 0xEE
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rounds(n):
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & MASK
            v1 = rotl(v1, 13) ^ v0
            v0 = rotl(v0, 32)
            v2 = (v2 + v3) & MASK
            v3 = rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & MASK
            v3 = rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & MASK
            v1 = rotl(v1, 17) ^ v2
            v2 = rotl(v2, 32)

    full = len(msg) // 8 * 8
    for i in range(0, full, 8):
        (m,) = struct.unpack("<Q", msg[i:i + 8])
        v3 ^= m
        rounds(2)
        v0 ^= m
    last = (len(msg) & 0xFF) << 56
    for i, b in enumerate(msg[full:]):
        last |= b << (8 * i)
    v3 ^= last
    rounds(2)
    v0 ^= last
    v2 ^= 0xEE
    rounds(4)
    out = struct.pack("<Q", v0 ^ v1 ^ v2 ^ v3)
    v1 ^= 0xDD
    rounds(4)
    return out + struct.pack("<Q", v0 ^ v1 ^ v2 ^ v3)


M32 = (1 << 32) - 1


def rotl32(x, b):
    return ((x << b) | (x >> (32 - b))) & M32


def chacha_rounds(state):
    """The 20 rounds (10 double rounds) of ChaCha on 16 words; returns the new words."""
    x = list(state)

    def qr(a, b, c, d):
        x[a] = (x[a] + x[b]) & M32
        x[d] = rotl32(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & M32
        x[b] = rotl32(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & M32
        x[d] = rotl32(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & M32
        x[b] = rotl32(x[b] ^ x[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12)
        qr(1, 5, 9, 13)
        qr(2, 6, 10, 14)
        qr(3, 7, 11, 15)
        qr(0, 5, 10, 15)
        qr(1, 6, 11, 12)
        qr(2, 7, 8, 13)
        qr(3, 4, 9, 14)
    return x


SIGMA = struct.unpack("<4I", b"expand 32-byte k")


def hchacha20(key, nonce16):
    """HChaCha20 (draft-irtf-cfrg-xchacha 2.2): a 32-byte subkey from key and 16 nonce bytes."""
    state = list(SIGMA) + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    x = chacha_rounds(state)
    return struct.pack("<8I", *(x[0:4] + x[12:16]))


def chacha20_block(key, counter, nonce12):
    """The ChaCha20 block function of RFC 8439 (2.3): 64 bytes of keystream."""
    state = (list(SIGMA) + list(struct.unpack("<8I", key)) + [counter] +
             list(struct.unpack("<3I", nonce12)))
    x = chacha_rounds(state)
    return struct.pack("<16I", *((a + b) & M32 for a, b in zip(x, state)))


def chacha20_xor(key, counter, nonce12, data):
    """ChaCha20 encryption (RFC 8439 2.4), the 32-bit block counter starting at counter."""
    out = bytearray()
    for i in range(0, len(data), 64):
        block = chacha20_block(key, counter + i // 64, nonce12)
        out += bytes(a ^ b for a, b in zip(data[i:i + 64], block))
    return bytes(out)


def poly1305(key, msg):
    """Poly1305 (RFC 8439 2.5): a 16-byte tag under a one-time 32-byte key."""
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:], "little")
    p = (1 << 130) - 5
    acc = 0
    for i in range(0, len(msg), 16):
        n = int.from_bytes(msg[i:i + 16] + b"\x01", "little")
        acc = (acc + n) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def pad16(b):
    return bytes(-len(b) % 16)


def xchacha20poly1305_encrypt(key, nonce24, plain, ad):
    """AEAD_XChaCha20_Poly1305 (draft-irtf-cfrg-xchacha 2.3, RFC 8439 2.8).

    The subkey is HChaCha20 of the key and the first 16 nonce bytes; the
    ChaCha20 nonce is 4 zero bytes and the last 8 nonce bytes. Block 0 of
    the keystream gives the Poly1305 key, the message is encrypted from
    block 1 on, and the tag covers AD, padding, ciphertext, padding and
    both lengths (64-bit little-endian). Returns ciphertext and tag.
    """
    subkey = hchacha20(key, nonce24[:16])
    nonce12 = bytes(4) + nonce24[16:]
    otk = chacha20_block(subkey, 0, nonce12)[:32]
    cipher = chacha20_xor(subkey, 1, nonce12, plain)
    mac_data = (ad + pad16(ad) + cipher + pad16(cipher) +
                struct.pack("<QQ", len(ad), len(cipher)))
    return cipher, poly1305(otk, mac_data)


def mac_key(cluster_key):
    return hashlib.blake2b(b"", key=cluster_key, salt=(1).to_bytes(8, "little") + bytes(8),
                           person=b"vigilmac" + bytes(8), digest_size=16).digest()


def seal_key(cluster_key):
    """The seal key of sealed full statuses: subkey 2, context "vigilenc"."""
    return hashlib.blake2b(b"", key=cluster_key, salt=(2).to_bytes(8, "little") + bytes(8),
                           person=b"vigilenc" + bytes(8), digest_size=32).digest()


def node_key(master_key, node_id):
    """A node's own key (docs/protocol.md, "Per-node keys")."""
    return hashlib.blake2b(node_id, key=master_key, person=b"vigil-node-key", digest_size=32).digest()


def pairs(custom):
    out = b""
    for k, v in custom:
        out += bytes([len(k)]) + k + bytes([len(v)]) + v
    return out


STATUS = dict(load=(0x31323334, 0x35363738, 0x393A3B3C), mem_total=0x4142434445464748,
              mem_avail=0x5152535455565758, uptime=0x6162636465666768)
CUSTOM = [(b"role", b"db"), (b"zone", b"")]


def status_bytes():
    return (struct.pack(">III", *STATUS["load"]) +
            struct.pack(">QQQ", STATUS["mem_total"], STATUS["mem_avail"], STATUS["uptime"]))


def v1_vector(key):
    body = (b"VG" + bytes([1, 1, 0x03, 5, len(CUSTOM), 0]) +
            struct.pack(">QQqI", 0x0102030405060708, 0x1112131415161718, 0x2122232425262728,
                        1000) + status_bytes() + b"web-1" + pairs(CUSTOM))
    return body + siphash128(key, body)


def v2_header(typ, flags, node_id):
    return (b"VG" + bytes([2, typ, flags, len(node_id)]) +
            struct.pack(">HQII", 0x0A0B, 0x0102030405060708, 0x11121314, 1000) + node_id)


def v2_beat(key, node_id=b"web-1", key_id=0):
    body = v2_header(1, 0x02 | key_id << 4, node_id)
    return body + siphash128(key, body)[:8]


def v2_status_block():
    return (struct.pack(">q", 0x2122232425262728) + status_bytes() + bytes([len(CUSTOM)]) +
            pairs(CUSTOM))


def v2_status(key):
    body = v2_header(2, 0x02, b"web-1") + v2_status_block()
    return body + siphash128(key, body)[:8]


def v2_sealed_status(skey, nonce8, key_id):
    """The v2 full status sealed (flags AUTH | SEALED, the key id in the upper four bits)."""
    ad = v2_header(2, 0x02 | 0x04 | key_id << 4, b"web-1") + nonce8
    npub = struct.pack(">QI", 0x0102030405060708, 0x11121314) + bytes(4) + nonce8
    cipher, tag = xchacha20poly1305_encrypt(skey, npub, v2_status_block(), ad)
    return ad + cipher + tag


def hexdump(b):
    lines = []
    for off in range(0, len(b), 16):
        lines.append("%04x  %s" % (off, " ".join("%02x" % x for x in b[off:off + 16])))
    return "\n".join(lines)


def main():
    # The reference implementation's vectors_sip128[0]: key 00..0f, empty message.
    ref = siphash128(bytes(range(16)), b"")
    assert ref.hex() == "a3817f04ba25a8e66df67214c7550293", ref.hex()
    key = mac_key(bytes(range(32)))
    assert key.hex() == "5d6232c628463307a25bde2d902cd3d1", key.hex()
    v1 = v1_vector(key)
    assert v1[-16:].hex() == "c95379b566fa97a6bccafc03e8dc064d", v1[-16:].hex()

    # draft-irtf-cfrg-xchacha, A.3.1: the AEAD_XChaCha20_Poly1305 test vector.
    plain = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip "
             b"for the future, sunscreen would be it.")
    cipher, tag = xchacha20poly1305_encrypt(bytes(range(0x80, 0xA0)), bytes(range(0x40, 0x58)),
                                            plain, bytes.fromhex("50515253c0c1c2c3c4c5c6c7"))
    assert cipher.hex() == (
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
        "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
        "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
        "21f9664c97637da9768812f615c68b13b52e"), cipher.hex()
    assert tag.hex() == "c0875924c1c7987947deafd8780acf49", tag.hex()

    skey = seal_key(bytes(range(32)))
    sealed = v2_sealed_status(skey, bytes(range(0xA0, 0xA8)), 3)
    # 16 bytes longer than the clear status, 5 longer than the version 1 heartbeat.
    assert len(sealed) == len(v2_status(key)) + 16 == len(v1) + 5, len(sealed)
    nkey = node_key(bytes(range(32)), b"web-1")
    vectors = {"v2 beat": v2_beat(key), "v2 full status": v2_status(key),
               "node key of web-1": nkey, "tag key of web-1": mac_key(nkey),
               "v2 beat, web-1's node key": v2_beat(mac_key(nkey)),
               "v2 beat, key id 3": v2_beat(key, key_id=3),
               "seal key": skey, "v2 full status, sealed, key id 3": sealed}
    for name, b in vectors.items():
        print("%s (%d bytes):\n%s\n" % (name, len(b), hexdump(b)))
    if len(sys.argv) > 1:
        doc = open(sys.argv[1]).read()
        for name, b in vectors.items():
            if hexdump(b) not in doc:
                print("%s: not in %s as computed" % (name, sys.argv[1]))
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
