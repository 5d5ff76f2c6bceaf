#!/usr/bin/env python3
"""A monitor with receive threads (monitor.receive_threads), with real processes.

- Four receive threads, named vigil-recv, and sixteen agents with their
  own keys: every agent alive; a forged heartbeat (another node's key) and
  garbage are refused and counted; stops of the monitor of 0.3 s (ten of
  them) and of 3 s convict nobody, and the 3 s stop is reported as a pause
  of about its length; a killed agent is dead within the bound it has with
  one thread.
- Changing receive_threads on SIGHUP is reported as needing a restart, and
  the monitor keeps running with its threads.
"""
import os
import signal
import socket
import subprocess
import time

from test_security import heartbeat, read_key
from vigil_harness import VIGIL, Monitor, agent, check, run_tests

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  key_file = "@TMP@/master.key";
  heartbeat_interval = "100ms";
  receive_threads = @THREADS@;
  receive_buffer_mb = 16;
};
"""
AGENTS = 16


def keys(tmp, nodes):
    master = os.path.join(tmp, "master.key")
    subprocess.run([VIGIL, "keygen", "-o", master], check=True, capture_output=True)
    for n in nodes:
        subprocess.run([VIGIL, "keygen", "--node", n, "--master", master, "-o",
                        os.path.join(tmp, n + ".key")], check=True, capture_output=True)


def threads_named(pid, name):
    out = 0
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
            out += f.read().strip() == name
    return out


def test_threads_keep_the_guarantees(tmp):
    names = ["n%02d" % i for i in range(AGENTS)]
    keys(tmp, names + ["intruder"])
    m = Monitor(tmp, CONFIG.replace("@THREADS@", "4"))
    check(threads_named(m.proc.pid, "vigil-recv") == 4,
          "receive threads: %d" % threads_named(m.proc.pid, "vigil-recv"))
    procs = {n: agent(m.addr, n, tmp, interval="100ms",
                      extra=["--key-file", os.path.join(tmp, n + ".key")]) for n in names}
    for n in names:
        m.wait_state(n, "alive", 10)
    time.sleep(3)  # a few seconds of history for every detector
    c0 = m.get("/v1/health")["counters"]
    # An insider with its own key cannot speak for n00 (a goodbye with the
    # largest generation, tagged with the insider's key); garbage is garbage.
    intruder = read_key(os.path.join(tmp, "intruder.key"))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(5):
        s.sendto(heartbeat("n00", (1 << 64) - 1, i + 1, intruder, flags=0x01),
                 ("127.0.0.1", m.port))
    for _ in range(20):
        s.sendto(b"VG\x01garbage" * 3, ("127.0.0.1", m.port))
    s.close()
    ev0 = m.events()[-1]["seq"]
    for _ in range(10):
        m.proc.send_signal(signal.SIGSTOP)
        time.sleep(0.3)
        m.proc.send_signal(signal.SIGCONT)
        time.sleep(0.7)
    m.proc.send_signal(signal.SIGSTOP)
    time.sleep(3)
    m.proc.send_signal(signal.SIGCONT)
    time.sleep(3)
    bad = [e for e in m.events(ev0) if e["type"] == "state" and e["new_state"] != "alive"]
    check(not bad, "convicted across stops of the monitor: %r" % bad[:3])
    pauses = [e["pause_s"] for e in m.events(ev0) if e["type"] == "pause"]
    check(any(2.0 <= p <= 3.5 for p in pauses), "no pause of about 3 s among %r" % pauses)
    c1 = m.get("/v1/health")["counters"]
    check(c1["malformed"] - c0["malformed"] >= 20, "garbage not counted: %r" % c1)
    check(c1["auth_failed"] - c0["auth_failed"] >= 5, "forgeries not refused: %r" % c1)
    check(m.state("n00") == "alive", "n00 is %s after the forged goodbye" % m.state("n00"))
    check(c1["recv_errors"] == 0, "receive errors: %r" % c1)
    check(c1["accepted"] - c0["accepted"] > AGENTS * 100, "too few accepted: %r" % c1)
    # Every live agent's heartbeats came through, in order: none was stale.
    check(c1["stale"] == c0["stale"], "stale heartbeats: %r" % c1)
    ev1 = m.events()[-1]["seq"]
    procs["n05"].send_signal(signal.SIGKILL)
    took = m.wait_state("n05", "dead", 5)
    check(took <= 1.5, "n05 dead after %.2fs" % took)
    others = [e for e in m.events(ev1) if e["type"] == "state" and e["node"] != "n05" and
              e["new_state"] != "alive"]
    check(not others, "others convicted: %r" % others[:3])


def test_reload_keeps_threads(tmp):
    keys(tmp, ["a1"])
    m = Monitor(tmp, CONFIG.replace("@THREADS@", "2"))
    a = agent(m.addr, "a1", tmp, interval="100ms",
              extra=["--key-file", os.path.join(tmp, "a1.key")])
    m.wait_state("a1", "alive", 10)
    with open(m.conf) as f:
        text = f.read()
    with open(m.conf, "w") as f:
        f.write(text.replace("receive_threads = 2;", "receive_threads = 3;"))
    m.proc.send_signal(signal.SIGHUP)
    t0 = time.monotonic()
    while "receive_threads" not in m.read_log() and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    check("receive_threads" in m.read_log(), "no restart note:\n" + m.read_log()[-2000:])
    check(threads_named(m.proc.pid, "vigil-recv") == 2, "threads changed without a restart")
    time.sleep(1)
    check(m.state("a1") == "alive", "a1 is %s" % m.state("a1"))
    a.send_signal(signal.SIGTERM)
    m.wait_state("a1", "left", 5)


if __name__ == "__main__":
    run_tests([test_threads_keep_the_guarantees, test_reload_keeps_threads])
