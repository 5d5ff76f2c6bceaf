#!/usr/bin/env python3
"""Key rotation and sealed statuses, with real processes.

- Three agents send sealed full statuses (--encrypt) to a monitor that
  requires them; one agent also sends to a socket the test reads. No
  datagram on the wire shows the custom status, yet the monitor shows it.
- The master key is rotated on the running cluster: a second master key
  (key id 1) is added to the monitor's configuration file (SIGHUP), each
  agent gets its new node key (file replaced, SIGHUP), and the old key is
  retired (SIGHUP). Throughout, no datagram fails verification, no node
  is suspected, and the captured datagrams switch from key id 0 to 1.
- After the retirement a heartbeat made with the old node key is refused
  (auth_failed, unknown_key), and a bad key file on SIGHUP changes nothing.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import time

from vigil_harness import VIGIL, Monitor, agent, check, free_port, keygen, run_tests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "wire"))
from vectors import mac_key, siphash128  # noqa: E402

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  key_file = @KEYS@;
  encrypt = true;
  heartbeat_interval = "200ms";
  detector = { type = "fixed"; suspect_after = "1s"; dead_after = "2s"; };
};
"""

NODES = ["web1", "web2", "db1"]
SECRET = "s3cret-replica-of-db7"
HDR = struct.Struct(">2sBBBBBBQQqIIIIQQQ")  # protocol v1 fixed header, 72 bytes


def read_key(path):
    with open(path) as f:
        return bytes.fromhex(f.read().split()[-1])



def config(keys):
    return CONFIG.replace("@KEYS@", "[" + ", ".join('"%s"' % k for k in keys) + "]")


def rewrite_config(m, keys):
    """The monitor's configuration file, now naming keys (written whole, then renamed)."""
    text = config(keys).replace("@PORT@", str(m.port)).replace("@API@", str(m.api_port))
    with open(m.conf + ".new", "w") as f:
        f.write(text)
    os.replace(m.conf + ".new", m.conf)


def wait_log(read, needle, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if needle in read():
            return
        time.sleep(0.05)
    raise AssertionError("%r not in the log:\n%s" % (needle, read()[-3000:]))


def agent_log(tmp, node):
    with open(os.path.join(tmp, "agent-%s.log" % node), errors="replace") as f:
        return f.read()


def test_rotation_sealed(tmp):
    keygen(tmp, "-o", "master-0.key")
    for n in NODES:
        keygen(tmp, "--node", n, "--master", "master-0.key", "-o", n + ".key")
    m = Monitor(tmp, config(["master-0.key"]))
    # The sniffer: web1 sends every datagram to it as well.
    sniff = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sport = free_port()
    sniff.bind(("127.0.0.1", sport))
    sniff.settimeout(0.2)
    agents = {}
    for n in NODES:
        extra = ["--key-file", os.path.join(tmp, n + ".key"), "--encrypt", "--set", "role=" + SECRET,
                 "--status-every", "5"]
        if n == "web1":
            extra += ["--monitor", "127.0.0.1:%d" % sport]
        agents[n] = agent(m.addr, n, tmp, interval="200ms", extra=extra)
    for n in NODES:
        m.wait_state(n, "alive", 10)
    ev0 = m.events()[-1]["seq"]
    before = m.get("/v1/health")["counters"]

    captured = []

    def drain():
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:
            try:
                captured.append(sniff.recv(2048))
            except socket.timeout:
                return
            except BlockingIOError:
                return

    # The monitor reads the sealed status; the wire never shows it.
    t0 = time.monotonic()
    while m.nodes()["web1"].get("custom", {}).get("role") != SECRET:
        check(time.monotonic() - t0 < 10, "web1's status never arrived: %r" % m.nodes()["web1"])
        time.sleep(0.05)
    drain()

    # The rotation. 1: the monitor holds both keys.
    keygen(tmp, "--key-id", "1", "-o", "master-1.key")
    rewrite_config(m, ["master-0.key", "master-1.key"])
    m.proc.send_signal(signal.SIGHUP)
    wait_log(m.read_log, "keys (key ids 0, 1)")
    h = m.get("/v1/health")
    check(h["keys"] == [{"id": 0, "nodes": 3}, {"id": 1, "nodes": 0}], "keys %r" % h["keys"])
    r = subprocess.run([VIGIL, "status", "--api", "127.0.0.1:%d" % m.api_port],
                       capture_output=True, text=True, timeout=30)
    check("keys held (a rotation in progress): key id 0 used by 3 nodes, key id 1 used by 0 "
          "nodes" in r.stdout, "vigil status: %r" % r.stdout)
    # 2: each agent moves to its new node key.
    for n in NODES:
        keygen(tmp, "--node", n, "--master", "master-1.key", "-o", n + ".key.new")
        os.replace(os.path.join(tmp, n + ".key.new"), os.path.join(tmp, n + ".key"))
        agents[n].send_signal(signal.SIGHUP)
        wait_log(lambda: agent_log(tmp, n), "configuration reloaded: applied key (key id 1)")
        time.sleep(0.3)
        drain()
    t0 = time.monotonic()
    while m.get("/v1/health")["keys"] != [{"id": 0, "nodes": 0}, {"id": 1, "nodes": 3}]:
        check(time.monotonic() - t0 < 10, "keys %r" % m.get("/v1/health")["keys"])
        time.sleep(0.05)
    # 3: the old key is retired.
    rewrite_config(m, ["master-1.key"])
    m.proc.send_signal(signal.SIGHUP)
    wait_log(m.read_log, "keys (key ids 1)")
    time.sleep(2.5)  # longer than dead_after: a refused heartbeat would show
    drain()

    c = m.get("/v1/health")["counters"]
    for k in ("auth_failed", "unknown_key", "unsealed", "malformed"):
        check(c[k] == before[k], "%s went from %d to %d" % (k, before[k], c[k]))
    evs = [e for e in m.events(ev0) if e["type"] == "state"]
    check(evs == [], "state changes during the rotation: %r" % evs)
    check(all(n["state"] == "alive" for n in m.nodes().values()), "nodes %r" % m.nodes())
    check(m.nodes()["web1"]["custom"]["role"] == SECRET, "status lost")

    # What the wire showed: sealed statuses, small beats, key id 0 then 1, never the secret.
    check(len(captured) > 20, "only %d datagrams captured" % len(captured))
    kids = [d[4] >> 4 for d in captured]
    switch = kids.index(1)
    check(set(kids[:switch]) == {0} and set(kids[switch:]) == {1}, "key ids %r" % kids)
    statuses = [d for d in captured if d[3] == 2]
    check(statuses and all(d[4] & 0x04 for d in statuses), "a full status in clear")
    check(all(len(d) == 24 + 4 + 8 for d in captured if d[3] == 1), "beat sizes %r" %
          sorted(set(len(d) for d in captured if d[3] == 1)))
    check(not any(SECRET.encode() in d or b"role" in d for d in captured),
          "the custom status is visible on the wire")

    # The retired key is refused, even with a fresh sequence and a valid tag.
    keygen(tmp, "--node", "web2", "--master", "master-0.key", "-o", "web2.key.old")
    old = read_key(os.path.join(tmp, "web2.key.old"))
    body = HDR.pack(b"VG", 1, 1, 0x02, 4, 0, 0, int(time.time() * 1e6), 1,
                    int(time.time() * 1e6), 200, 0, 0, 0, 0, 0, 0) + b"web2"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(body + siphash128(mac_key(old), body), ("127.0.0.1", m.port))
    t0 = time.monotonic()
    while m.get("/v1/health")["counters"]["unknown_key"] == before["unknown_key"]:
        check(time.monotonic() - t0 < 5, "the old key was not refused")
        time.sleep(0.05)

    # A key file that cannot be used changes nothing.
    rewrite_config(m, ["missing.key"])
    m.proc.send_signal(signal.SIGHUP)
    wait_log(m.read_log, "configuration not reloaded, the running one stays")
    time.sleep(1)
    check(all(n["state"] == "alive" for n in m.nodes().values()), "nodes %r" % m.nodes())
    for a in agents.values():
        a.terminate()


if __name__ == "__main__":
    run_tests([test_rotation_sealed])
