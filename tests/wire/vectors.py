#!/usr/bin/env python3
"""The test vectors of docs/protocol.md, computed independently of vigil.

Usage: vectors.py [PROTOCOL_MD]

Builds the datagrams of the test vectors byte by byte from the layout in
docs/protocol.md, with Python's hashlib.blake2b for the tag key (as
libsodium's crypto_kdf_derive_from_key defines it) and the SipHash-2-4-128
below (written from the SipHash reference implementation, checked here
against its first vectors_sip128 entry and against the version 1 vector).
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


def mac_key(cluster_key):
    return hashlib.blake2b(b"", key=cluster_key, salt=(1).to_bytes(8, "little") + bytes(8),
                           person=b"vigilmac" + bytes(8), digest_size=16).digest()


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


def v2_beat(key, node_id=b"web-1"):
    body = v2_header(1, 0x02, node_id)
    return body + siphash128(key, body)[:8]


def v2_status(key):
    body = (v2_header(2, 0x02, b"web-1") + struct.pack(">q", 0x2122232425262728) +
            status_bytes() + bytes([len(CUSTOM)]) + pairs(CUSTOM))
    return body + siphash128(key, body)[:8]


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

    nkey = node_key(bytes(range(32)), b"web-1")
    vectors = {"v2 beat": v2_beat(key), "v2 full status": v2_status(key),
               "node key of web-1": nkey, "tag key of web-1": mac_key(nkey),
               "v2 beat, web-1's node key": v2_beat(mac_key(nkey))}
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
