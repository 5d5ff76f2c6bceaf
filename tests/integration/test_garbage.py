#!/usr/bin/env python3
"""10,000 garbage and forged datagrams at a monitor with a master key.

No crash, no state change, no node registered from a forged id, and every
datagram is counted as dropped with its reason.
"""
import os
import random
import socket
import struct
import subprocess
import time

from vigil_harness import VIGIL, Monitor, agent, check, run_tests

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  key_file = "@TMP@/cluster.key";
  heartbeat_interval = "250ms";
  detector = { type = "fixed"; suspect_after = "750ms"; dead_after = "1500ms"; };
  startup_grace = "5s";
};
"""

HDR = struct.Struct(">2sBBBBBBQQqIIIIQQQ")  # protocol v1 fixed header, 72 bytes


def heartbeat(node, gen, seq, flags=0x02, tag=None):
    """A well-formed heartbeat; with flags AUTH and a tag that is not the real one: forged."""
    body = HDR.pack(b"VG", 1, 1, flags, len(node), 0, 0, gen, seq, int(time.time() * 1e6),
                    250, 100, 100, 100, 1 << 20, 1 << 19, 1000) + node.encode()
    if flags & 0x02:
        body += tag if tag is not None else os.urandom(16)
    return body


def test_garbage_and_forgeries(tmp):
    master = os.path.join(tmp, "cluster.key")
    subprocess.run([VIGIL, "keygen", "-o", master], check=True)
    node = os.path.join(tmp, "real1.key")
    subprocess.run([VIGIL, "keygen", "--node", "real1", "--master", master, "-o", node],
                   check=True)
    m = Monitor(tmp, CONFIG)
    a = agent(m.addr, "real1", tmp, extra=["--key-file", node])
    m.wait_state("real1", "alive", 10)
    before = m.get("/v1/health")["counters"]
    ev0 = m.events()[-1]["seq"]

    rng = random.Random(20261125)
    dgrams = []
    for i in range(5000):
        kind = i % 5
        if kind == 0:
            d = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 1300)))
        elif kind == 1:  # right magic and version, garbage after
            d = b"VG\x01\x01" + bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 200)))
        elif kind == 2:  # truncated real-looking header
            d = heartbeat("real1", 1, 1)[: rng.randrange(0, 72)]
        elif kind == 3:  # oversized
            d = b"VG\x01\x01" + b"\0" * 1300
        else:  # wrong version
            d = b"VG\x09\x01" + bytes(100)
        dgrams.append(d)
    big = (1 << 63) + 5
    for i in range(5000):
        kind = i % 4
        if kind == 0:  # forged heartbeat from the real node, far-future generation
            d = heartbeat("real1", big, i + 1)
        elif kind == 1:  # forged goodbye
            d = heartbeat("real1", big, i + 1, flags=0x03)
        elif kind == 2:  # forged new ids: must not fill the table
            d = heartbeat("forged%d" % i, 1, 1)
        else:  # unauthenticated, to a monitor that requires a key
            d = heartbeat("real1", big, i + 1, flags=0)
        dgrams.append(d)
    check(len(dgrams) == 10000, "count")

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i, d in enumerate(dgrams):
        s.sendto(d, ("127.0.0.1", m.port))
        if i % 500 == 499:
            time.sleep(0.02)  # stay inside the receive buffer: count exactly
    s.close()

    t0 = time.monotonic()
    while time.monotonic() - t0 < 15:
        c = m.get("/v1/health")["counters"]
        dropped = (c["malformed"] - before["malformed"]) + (c["auth_failed"] - before["auth_failed"])
        if dropped >= 10000:
            break
        time.sleep(0.1)
    c = m.get("/v1/health")["counters"]
    mal = c["malformed"] - before["malformed"]
    auth = c["auth_failed"] - before["auth_failed"]
    check(mal + auth == 10000, "dropped %d malformed + %d auth_failed, want 10000" % (mal, auth))
    check(auth == 5000, "auth_failed %d, want 5000" % auth)
    check(m.proc.poll() is None, "monitor died")
    nodes = m.nodes()
    check(list(nodes) == ["real1"], "nodes %r" % list(nodes))
    check(nodes["real1"]["state"] == "alive", "real1 is %s" % nodes["real1"]["state"])
    check(nodes["real1"]["generation"] < big, "forged generation accepted")
    evs = [e for e in m.events(ev0) if e["type"] == "state"]
    check(evs == [], "state changes %r" % evs)
    a.terminate()


if __name__ == "__main__":
    run_tests([test_garbage_and_forgeries])
