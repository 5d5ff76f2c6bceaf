#!/usr/bin/env python3
"""vigil peer: five real members on loopback (SWIM with Lifeguard, docs/peer.md).

- They join through one seed and every member sees the four others alive.
- SIGKILL of one and a SIGSTOP of another (0.5 s, shorter than the
  suspicion timeout): every survivor sees the killed one dead and the stopped one
  alive; nobody else is ever declared dead.
- SIGTERM of one: the others see it left, not dead.
- Datagrams without the cluster's key (a member started with another key,
  and garbage) change nothing.

Each member is its own address (127.0.0.1 to 127.0.0.5) with one port, as
members on separate hosts would be.
"""
import json
import os
import signal
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vigil_harness import VIGIL, check, free_port, keygen, run_tests, start, stop  # noqa: E402

N = 5
WAIT = 30.0


def members(api):
    with urllib.request.urlopen("http://%s/v1/members" % api, timeout=5) as r:
        d = json.load(r)
    return {m["id"]: m["state"] for m in d["members"]}, d


def events(api):
    with urllib.request.urlopen("http://%s/v1/events" % api, timeout=5) as r:
        return json.load(r)["events"]


def wait_for(what, cond, timeout=WAIT):
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        try:
            last = cond()
            if last is True:
                return time.monotonic() - t0
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError("%s: not within %.0fs (last: %r)" % (what, timeout, last))


def start_cluster(tmp, key="cluster.key"):
    port, api_port = free_port(), free_port(socket.SOCK_STREAM)
    procs, apis = {}, {}
    for i in range(1, N + 1):
        pid = "p%d" % i
        ip = "127.0.0.%d" % i
        apis[pid] = "%s:%d" % (ip, api_port)
        procs[pid] = start(["peer", "--id", pid, "--listen", "%s:%d" % (ip, port),
                            "--seed", "127.0.0.1:%d" % port, "--key-file",
                            os.path.join(tmp, key), "--api", apis[pid], "--interval", "500ms"],
                           os.path.join(tmp, "%s.log" % pid))
    return procs, apis, port


def all_see(apis, who, state_of):
    """True when every member in who sees every other as state_of(other) says."""
    for p in who:
        seen, _ = members(apis[p])
        for q, want in state_of.items():
            if q != p and seen.get(q) != want:
                return "%s sees %s %s, not %s" % (p, q, seen.get(q), want)
    return True


def test_kill_pause_leave(tmp):
    keygen(tmp, "-o", "cluster.key")
    procs, apis, port = start_cluster(tmp)
    every = {p: "alive" for p in procs}
    took = wait_for("all members alive everywhere", lambda: all_see(apis, procs, every))
    print("five members see each other alive %.1fs after start" % took, flush=True)

    # SIGKILL p5; SIGSTOP p4 for 0.5 s, a short stall (the suspicion timeout of five members
    # is 4 protocol periods and more: 2 s here).
    procs["p5"].send_signal(signal.SIGKILL)
    procs["p5"].wait(timeout=5)
    t_kill = time.monotonic()
    procs["p4"].send_signal(signal.SIGSTOP)
    time.sleep(0.5)
    procs["p4"].send_signal(signal.SIGCONT)
    survivors = ["p1", "p2", "p3", "p4"]
    want = {"p1": "alive", "p2": "alive", "p3": "alive", "p4": "alive", "p5": "dead"}
    wait_for("every survivor sees p5 dead and the others alive",
             lambda: all_see(apis, survivors, want))
    print("every survivor saw p5 dead %.1fs after SIGKILL" % (time.monotonic() - t_kill),
          flush=True)
    # Nobody but p5 was ever declared dead by anyone.
    for p in survivors:
        dead = [e["node"] for e in events(apis[p]) if e.get("new_state") == "dead"]
        check(dead == ["p5"], "%s declared dead: %r" % (p, dead))

    # Datagrams not made with the cluster's key change nothing: garbage, and a member of
    # another key that names itself p6 and seeds itself through p1.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(50):
        s.sendto(os.urandom(60), ("127.0.0.1", port))
        s.sendto(b"VG\x03\x05\x00\x02\x00\x00\x00\x00\x00\x00p6\x00", ("127.0.0.1", port))
    s.close()
    keygen(tmp, "-o", "other.key")
    rogue = start(["peer", "--id", "p6", "--listen", "127.0.0.6:%d" % port, "--seed",
                   "127.0.0.1:%d" % port, "--key-file", os.path.join(tmp, "other.key"),
                   "--interval", "200ms"], os.path.join(tmp, "p6.log"))
    time.sleep(2.0)
    seen, _ = members(apis["p1"])
    check("p6" not in seen, "a member of another key joined: %r" % seen)
    stop(rogue)

    # SIGTERM of p3: it leaves; the others see it left, never dead.
    stop(procs["p3"])
    want = {"p1": "alive", "p2": "alive", "p3": "left", "p4": "alive", "p5": "dead"}
    wait_for("p3 left everywhere", lambda: all_see(apis, ["p1", "p2", "p4"], want), 10)
    for p in ["p1", "p2", "p4"]:
        st = [e.get("new_state") for e in events(apis[p]) if e["node"] == "p3"]
        check("dead" not in st, "%s saw p3 dead: %r" % (p, st))
    for p in ["p1", "p2", "p4"]:
        stop(procs[p])


if __name__ == "__main__":
    run_tests([test_kill_pause_leave])
