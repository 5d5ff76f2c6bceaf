#!/usr/bin/env python3
"""Per-node keys, safe defaults and replays across a restart, with real processes.

- A holder of web2's node key forges a goodbye for web1 (generation 2^64 - 1,
  and a plausible one): refused and counted as auth_failed; web1 stays alive.
  web1's key does not work for another id; an agent with it and another id
  refuses to start.
- Without a key the monitor refuses to start unless told insecure; key files
  others can read are refused.
- Heartbeats recorded before a monitor restart (graceful or a crash) and
  replayed after it change nothing; the node's next real generation does.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import time

from vigil_harness import VIGIL, Monitor, agent, check, run_tests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "wire"))
from vectors import mac_key, node_key, siphash128  # noqa: E402

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  key_file = "@TMP@/master.key";
  heartbeat_interval = "250ms";
  detector = { type = "fixed"; suspect_after = "750ms"; dead_after = "1500ms"; };
  startup_grace = "30s";
  state_file = "@TMP@/hwm";
  state_flush = "500ms";
};
"""

HDR = struct.Struct(">2sBBBBBBQQqIIIIQQQ")  # protocol v1 fixed header, 72 bytes


def read_key(path):
    with open(path) as f:
        return bytes.fromhex(f.read().split()[-1])


def heartbeat(node, gen, seq, key, flags=0x02):
    """A version 1 heartbeat, tagged with the tag key derived from key (a node key)."""
    body = HDR.pack(b"VG", 1, 1, flags | 0x02, len(node), 0, 0, gen, seq,
                    int(time.time() * 1e6), 250, 0, 0, 0, 0, 0, 0) + node.encode()
    return body + siphash128(mac_key(key), body)


def make_keys(tmp, nodes):
    master = os.path.join(tmp, "master.key")
    subprocess.run([VIGIL, "keygen", "-o", master], check=True)
    for n in nodes:
        subprocess.run([VIGIL, "keygen", "--node", n, "--master", master, "-o",
                        os.path.join(tmp, n + ".key")], check=True)
    # The derivation of docs/protocol.md, computed here independently, is what keygen wrote.
    for n in nodes:
        check(read_key(os.path.join(tmp, n + ".key")) == node_key(read_key(master), n.encode()),
              "node key of %s differs from docs/protocol.md's derivation" % n)
    return master


def wait_counter(m, name, want, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if m.get("/v1/health")["counters"][name] >= want:
            return
        time.sleep(0.05)
    raise AssertionError("%s did not reach %d: %r" % (name, want, m.get("/v1/health")))


def test_forged_goodbye_refused(tmp):
    make_keys(tmp, ["web1", "web2"])
    m = Monitor(tmp, CONFIG)
    h = m.get("/v1/health")
    check(h["authentication"] == "per-node" and h["insecure"] is False, "health %r" % h)
    a1 = agent(m.addr, "web1", tmp, extra=["--key-file", os.path.join(tmp, "web1.key")])
    a2 = agent(m.addr, "web2", tmp, extra=["--key-file", os.path.join(tmp, "web2.key")])
    m.wait_state("web1", "alive", 10)
    m.wait_state("web2", "alive", 10)
    before = m.get("/v1/health")["counters"]
    ev0 = m.events()[-1]["seq"]

    web2 = read_key(os.path.join(tmp, "web2.key"))
    web1 = read_key(os.path.join(tmp, "web1.key"))
    gen1 = m.nodes()["web1"]["generation"]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    forged = [heartbeat("web1", (1 << 64) - 1, 1, web2, flags=0x01),
              heartbeat("web1", gen1, 1 << 40, web2, flags=0x01),
              heartbeat("web1", gen1 + 1, 1, web2, flags=0x01),
              heartbeat("web3", int(time.time() * 1e6), 1, web1)]
    for d in forged:
        s.sendto(d, ("127.0.0.1", m.port))
    wait_counter(m, "auth_failed", before["auth_failed"] + len(forged))
    time.sleep(1)
    c = m.get("/v1/health")["counters"]
    check(c["auth_failed"] - before["auth_failed"] == len(forged), "counters %r" % c)
    nodes = m.nodes()
    check(sorted(nodes) == ["web1", "web2"], "nodes %r" % list(nodes))
    check(nodes["web1"]["state"] == "alive", "web1 is %s" % nodes["web1"]["state"])
    check(nodes["web1"]["generation"] == gen1, "web1's generation changed")
    evs = [e for e in m.events(ev0) if e["type"] == "state"]
    check(evs == [], "state changes %r" % evs)

    # web1's key speaks for web1 only: an agent given it with another id refuses to start.
    r = subprocess.run([VIGIL, "agent", "--id", "web3", "--monitor", m.addr, "--key-file",
                        os.path.join(tmp, "web1.key")], capture_output=True, timeout=10)
    check(r.returncode != 0 and b"node key of web1, not of web3" in r.stderr,
          "agent with another node's key: %d %r" % (r.returncode, r.stderr))
    a1.terminate()
    a2.terminate()


def test_safe_defaults(tmp):
    # No key, no "insecure": refused.
    r = subprocess.run([VIGIL, "monitor", "--listen", "127.0.0.1:0", "--api", "off"],
                       capture_output=True, timeout=10)
    check(r.returncode != 0 and b"insecure" in r.stderr, "keyless monitor: %r" % r.stderr)
    # Said explicitly: it runs, and says so in its log and its health.
    m = Monitor(tmp, 'monitor = { listen = [ "127.0.0.1:@PORT@" ]; api = "127.0.0.1:@API@"; '
                     'insecure = true; };\n')
    h = m.get("/v1/health")
    check(h["insecure"] is True and h["authentication"] == "none", "health %r" % h)
    check("running insecure" in m.read_log(), "log %r" % m.read_log())
    st = subprocess.run([VIGIL, "status", "--api", "127.0.0.1:%d" % m.api_port],
                        capture_output=True, timeout=10)
    check(b"insecure" in st.stdout, "vigil status: %r" % st.stdout)
    m.proc.terminate()
    m.proc.wait(10)
    # A key file others can read: refused, naming the permissions.
    master = os.path.join(tmp, "open.key")
    subprocess.run([VIGIL, "keygen", "-o", master], check=True)
    os.chmod(master, 0o644)
    r = subprocess.run([VIGIL, "monitor", "--listen", "127.0.0.1:0", "--api", "off",
                        "--key-file", master], capture_output=True, timeout=10)
    check(r.returncode != 0 and b"permissions 0644 for '%s' are too open" % master.encode()
          in r.stderr, "open key file: %r" % r.stderr)


def test_replay_after_restart(tmp):
    make_keys(tmp, ["py1"])
    key = read_key(os.path.join(tmp, "py1.key"))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gen = int(time.time() * 1e6)
    recorded = []

    def send(m, d, keep=True):
        s.sendto(d, ("127.0.0.1", m.port))
        if keep:
            recorded.append(d)

    # One run, stopped gracefully after a goodbye; one run killed (no final write).
    for crash in (False, True):
        m = Monitor(tmp, CONFIG)
        port = m.port
        base = len(recorded)
        for i in range(12):
            send(m, heartbeat("py1", gen, base + i + 1, key))
            time.sleep(0.25)
        if not crash:
            send(m, heartbeat("py1", gen, base + 13, key, flags=0x01))
            m.wait_state("py1", "left", 5)
        else:
            m.wait_state("py1", "alive", 5)
            time.sleep(1.2)  # a flush, then heartbeats the file never sees
            for i in range(4):
                send(m, heartbeat("py1", gen, base + 13 + i, key))
            wait_counter(m, "accepted", 16)
        m.proc.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
        m.proc.wait(10)

        # The same port, the same state file: replay everything recorded so far.
        m = Monitor(tmp, CONFIG.replace("@PORT@", str(port)))
        m.port = port
        check("high-water marks restored" in m.read_log(), m.read_log())
        ev0 = m.events()[-1]["seq"] if m.events() else 0
        for d in recorded:
            send(m, d, keep=False)
        wait_counter(m, "stale", len(recorded))
        time.sleep(0.5)
        c = m.get("/v1/health")["counters"]
        check(c["accepted"] == 0, "replays accepted after a restart (crash=%s): %r" % (crash, c))
        check(m.state("py1") == "unknown", "py1 is %s after replays" % m.state("py1"))
        evs = [e for e in m.events(ev0) if e["type"] == "state"]
        check(evs == [], "state changes from replays %r" % evs)
        # The node's next boot is taken at once, even after its goodbye.
        gen += 1000
        send(m, heartbeat("py1", gen, 1, key), keep=False)
        m.wait_state("py1", "alive", 5)
        if not crash:
            # A goodbye, then a new generation: alive at once, with one heartbeat.
            send(m, heartbeat("py1", gen, 2, key, flags=0x01), keep=False)
            m.wait_state("py1", "left", 5)
            gen += 1000
            send(m, heartbeat("py1", gen, 1, key), keep=False)
            m.wait_state("py1", "alive", 5)
            gen += 1000
        m.proc.terminate()
        m.proc.wait(10)


if __name__ == "__main__":
    run_tests([test_forged_goodbye_refused, test_safe_defaults, test_replay_after_restart])
