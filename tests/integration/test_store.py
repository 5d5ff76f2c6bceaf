#!/usr/bin/env python3
"""The state store (monitor.state_dir) across crashes, with real processes.

A monitor with a state directory, four agents that live throughout, two
agents killed and restarted again and again (so events flow), and a sender
of hand-made heartbeats whose recording is replayed. The monitor is
SIGKILLed at a random moment under that load, ROUNDS times, and restarted
on the same directory each time. Checked:

- event sequence numbers are continuous across all the runs, with no
  number used twice (the same number always means the same event);
- every event `vigil events` (the API) showed before a kill is served,
  unchanged, by the restarted monitor: nothing shown was lost;
- everything recorded from the hand-made sender, replayed after a restart,
  is refused as stale and changes nothing;
- no agent that lived throughout is ever declared dead (or suspected):
  the downtime and the raised marks kill nobody.
"""
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time

from vigil_harness import VIGIL, Monitor, check, run_tests, start, stop

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "wire"))
from vectors import mac_key, siphash128  # noqa: E402

ROUNDS = int(os.environ.get("VIGIL_STORE_ROUNDS", "8"))
LIVE = ["live1", "live2", "live3", "live4"]
FLAP = ["flap1", "flap2"]

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  key_file = "@TMP@/master.key";
  heartbeat_interval = "100ms";
  detector = { type = "fixed"; suspect_after = "400ms"; dead_after = "800ms"; };
  startup_grace = "5s";
  state_dir = "@TMP@/state";
  state_flush = "500ms";
};
"""

HDR = struct.Struct(">2sBBBBBBQQqIIIIQQQ")  # protocol v1 fixed header, 72 bytes


def heartbeat(node, gen, seq, key):
    body = HDR.pack(b"VG", 1, 1, 0x02, len(node), 0, 0, gen, seq,
                    int(time.time() * 1e6), 100, 0, 0, 0, 0, 0, 0) + node.encode()
    return body + siphash128(mac_key(key), body)


def keygen(tmp, nodes):
    master = os.path.join(tmp, "master.key")
    subprocess.run([VIGIL, "keygen", "-o", master], check=True)
    for n in nodes:
        subprocess.run([VIGIL, "keygen", "--node", n, "--master", master, "-o",
                        os.path.join(tmp, n + ".key")], check=True)


def run_agent(tmp, addr, node):
    return start(["agent", "--id", node, "--monitor", addr, "--interval", "100ms",
                  "-k", os.path.join(tmp, node + ".key")],
                 os.path.join(tmp, "agent-%s.log" % node))


def key_of(e):
    # A pause of the monitor (under load) has no node and no states.
    return (e["seq"], e["type"], e.get("node"), e.get("old_state"), e.get("new_state"),
            e["time_us"])


def test_state_directory_by_default(tmp):
    """Under systemd (STATE_DIRECTORY set) the store is on without state_dir in the file."""
    conf = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  insecure = true;
  heartbeat_interval = "100ms";
};
"""
    state = os.path.join(tmp, "var-lib-vigil")
    os.mkdir(state, 0o700)
    os.environ["STATE_DIRECTORY"] = state
    try:
        m = Monitor(tmp, conf)
        ag = start(["agent", "--id", "web1", "--monitor", m.addr, "--interval", "100ms"],
                   os.path.join(tmp, "agent.log"))
        m.wait_state("web1", ["alive"], 10)
        stop(ag, signal.SIGKILL)
        m.wait_state("web1", ["dead"], 10)
        last = m.events()[-1]["seq"]
        stop(m.proc)
        check(os.path.exists(os.path.join(state, "vigil.db")), "no vigil.db in STATE_DIRECTORY")
        check("state store %s" % state in m.read_log(), "the log:\n" + m.read_log()[-1500:])
        # A state_file in the configuration keeps its own, and no store.
        os.mkdir(os.path.join(tmp, "m2"))
        m2 = Monitor(os.path.join(tmp, "m2"), conf.replace(
            "insecure = true;", 'insecure = true; state_file = "@TMP@/hwm";'))
        check(m2.events() == [] and "state store" not in m2.read_log(),
              "a state_file configuration opened the store: %s\n%s" % (m2.events(), m2.read_log()[-1500:]))
        stop(m2.proc)
        # Started again with STATE_DIRECTORY: the history and its numbering come back.
        os.mkdir(os.path.join(tmp, "m3"))
        m3 = Monitor(os.path.join(tmp, "m3"), conf)
        ev = m3.events()
        check(ev and ev[-1]["seq"] == last, "the history after a restart: %s" % ev[-3:])
        stop(m3.proc)
    finally:
        del os.environ["STATE_DIRECTORY"]


def test_crashes_under_load(tmp):
    rng = random.Random(int(os.environ.get("VIGIL_STORE_SEED", str(int(time.time())))))
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    print("seed %d (VIGIL_STORE_SEED replays the schedule, not the timing)" % seed, flush=True)
    keygen(tmp, LIVE + FLAP + ["py1"])
    with open(os.path.join(tmp, "py1.key")) as f:
        py_key = bytes.fromhex(f.read().split()[-1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    recorded = []
    py_gen = int(time.time() * 1e6)

    m = Monitor(tmp, CONFIG)
    port = m.port
    live = {n: run_agent(tmp, m.addr, n) for n in LIVE}
    flap = {n: run_agent(tmp, m.addr, n) for n in FLAP}
    for n in LIVE:
        m.wait_state(n, "alive", 10)

    all_events = {}  # seq -> identity, over every run
    shown_total = replayed_total = 0
    for rnd in range(ROUNDS):
        # A new generation of the hand-made sender, recorded; then a flush writes its mark.
        py_gen += 1000
        for i in range(5):
            d = heartbeat("py1", py_gen, i + 1, py_key)
            sock.sendto(d, ("127.0.0.1", port))
            recorded.append(d)
            time.sleep(0.1)
        time.sleep(1.2)
        # Load: the flapping agents killed and started again at random.
        t_end = time.monotonic() + rng.uniform(0.5, 3.0)
        while time.monotonic() < t_end:
            n = rng.choice(FLAP)
            if flap[n].poll() is None:
                flap[n].send_signal(signal.SIGKILL)
                flap[n].wait(5)
            else:
                flap[n] = run_agent(tmp, m.addr, n)
            time.sleep(rng.uniform(0.05, 1.2))
        shown = m.events()
        shown_total += len(shown)
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(10)

        # The same configuration file, ports and state directory.
        m.proc = start(["monitor", "-c", m.conf], m.log)
        m.wait_api()
        check(m.read_log().count("state store") == rnd + 2, m.read_log())
        served = m.events()
        by_seq = {e["seq"]: key_of(e) for e in served}
        lost = [key_of(e) for e in shown if by_seq.get(e["seq"]) != key_of(e)]
        check(not lost, "round %d: events shown before the kill and lost or changed: %r"
              % (rnd, lost[:5]))
        seqs = [e["seq"] for e in served]
        check(seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True,
              "round %d: sequence numbers not continuous: %r" % (rnd, seqs))
        for e in served:
            k = key_of(e)
            check(all_events.setdefault(e["seq"], k) == k,
                  "round %d: number %d used twice: %r and %r"
                  % (rnd, e["seq"], all_events[e["seq"]], k))
        restart_seq = seqs[-1] if seqs else 0
        # Every recording of the hand-made sender, replayed: refused, changes nothing.
        for d in recorded:
            sock.sendto(d, ("127.0.0.1", port))
        t0 = time.monotonic()
        while m.get("/v1/health")["counters"]["stale"] < len(recorded):
            check(time.monotonic() - t0 < 10, "round %d: replays not all refused: %r"
                  % (rnd, m.get("/v1/health")["counters"]))
            time.sleep(0.05)
        replayed_total += len(recorded)
        st = m.state("py1")
        check(st != "alive", "round %d: py1 is %s after the replays" % (rnd, st))
        py_ev = [e for e in m.events(restart_seq) if e.get("node") == "py1" and
                 e["new_state"] == "alive"]
        check(not py_ev, "round %d: replays made py1 alive: %r" % (rnd, py_ev))
        # The agents that never stopped are back, with nobody declared dead.
        for n in LIVE:
            m.wait_state(n, "alive", 5)
        print("round %d: %d events shown before the kill, all served after it; next %d; "
              "%d replays refused" % (rnd, len(shown), restart_seq + 1, len(recorded)),
              flush=True)

    time.sleep(1.0)
    final = m.events()
    for e in final:
        all_events.setdefault(e["seq"], key_of(e))
    seqs = sorted(all_events)
    check(seqs == list(range(1, seqs[-1] + 1)),
          "numbers missing across the runs: %r" % sorted(set(range(1, seqs[-1] + 1)) - set(seqs)))
    false = [e for e in final if e.get("node") in LIVE and e.get("new_state") in ("dead", "suspect")]
    check(not false, "agents that lived throughout were suspected or declared dead: %r" % false)
    flap_events = sum(1 for e in final if e.get("node") in FLAP)
    print("%d rounds: events 1..%d continuous, none reused, none lost of %d shown before kills; "
          "%d flapping-agent events; %d replayed heartbeats refused; 0 false deaths of %d live "
          "agents" % (ROUNDS, seqs[-1], shown_total, flap_events, replayed_total, len(LIVE)),
          flush=True)
    for p in list(live.values()) + list(flap.values()):
        stop(p, signal.SIGKILL)
    stop(m.proc)


if __name__ == "__main__":
    run_tests([test_crashes_under_load, test_state_directory_by_default])
