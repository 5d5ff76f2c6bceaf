#!/usr/bin/env python3
"""vigil peer as a user runs it: members from configuration files, seen with
vigil status and vigil events, acting through hooks, and acting once through
a real etcd (docs/peer.md).

- test_cli_hooks_status: three members, each from its own file (a peer
  section with custom status pairs, a monitor section with the API and a
  hook). `vigil peer -c FILE --check` accepts the file; a wrong setting
  stops start-up with FILE:LINE. `vigil status` and `vigil events` work
  against any member and show every member, the others' custom pairs
  included. SIGKILL of one: each survivor's hook runs once for it (no
  leadership: every member acts), and `vigil events` shows it dead; all
  the while m1's API is hammered by four clients, and no live member is
  ever suspected;
  /metrics passes promtool's lint, with the protocol's counters.
  SIGHUP keeps a member running. SIGTERM of one: left at the others.
- test_actions_once_through_etcd: three members with monitor.etcd: one
  leads; SIGKILL of a follower makes exactly one action happen (the
  leader's, under its epoch); then SIGKILL of the leader: a survivor takes
  over the leadership and acts once on the old leader's death.
- test_sealed_signed_members: members that seal their datagrams and sign
  their leaves and alives (vigil peer-cert): an insider with the cluster
  key but no certificate is never taken in (its alives are refused and
  counted); SIGTERM is left; the member started again under the same id is
  alive again everywhere.

etcd missing is a failure, not a skip (scripts/install-deps.sh installs it).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vigil_harness import VIGIL, check, free_port, keygen, run_tests, start, stop  # noqa: E402
from test_leader import Etcd  # noqa: E402
from test_metrics import lint  # noqa: E402
from test_peer import wait_for  # noqa: E402

HOOK = """#!/bin/sh
echo "$VIGIL_NODE $VIGIL_NEW_STATE ${VIGIL_EPOCH:-0} $1" >> "$(dirname "$0")/actions"
"""

CONF = """
peer = {
  id = "%(id)s";
  listen = "%(listen)s";
  seeds = [ "%(seed)s" ];
  key_file = "cluster.key";
  interval = "500ms";
  custom = { role = "%(role)s"; zone = "z1"; };
};
monitor = {
  api = "%(api)s";
  hooks = ( { command = [ "%(hook)s", "%(id)s" ]; on = [ "dead", "left" ]; timeout = "5s"; } );
  %(extra)s
};
"""


def get(api, path):
    with urllib.request.urlopen("http://%s%s" % (api, path), timeout=5) as r:
        return json.load(r)


def cli(*args):
    r = subprocess.run([VIGIL] + list(args), capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def actions(tmp):
    try:
        with open(os.path.join(tmp, "actions")) as f:
            return [l.split() for l in f if l.strip()]
    except FileNotFoundError:
        return []


def setup(tmp, n, extra=""):
    keygen(tmp, "-o", "cluster.key")
    hook = os.path.join(tmp, "hook.sh")
    with open(hook, "w") as f:
        f.write(HOOK)
    os.chmod(hook, 0o755)
    port, api_port = free_port(), free_port(socket.SOCK_STREAM)
    ms = {}
    for i in range(1, n + 1):
        mid = "m%d" % i
        ip = "127.0.0.%d" % i
        conf = os.path.join(tmp, "%s.conf" % mid)
        with open(conf, "w") as f:
            f.write(CONF % {"id": mid, "listen": "%s:%d" % (ip, port),
                            "seed": "127.0.0.1:%d" % port, "role": "db-" + mid,
                            "api": "%s:%d" % (ip, api_port), "hook": hook, "extra": extra})
        ms[mid] = {"conf": conf, "api": "%s:%d" % (ip, api_port)}
    return ms


def launch(tmp, ms, mid):
    ms[mid]["proc"] = start(["peer", "-c", ms[mid]["conf"]], os.path.join(tmp, mid + ".log"))


def views(ms, who):
    """{member: {node: state}} from each member's /v1/nodes."""
    out = {}
    for m in who:
        out[m] = {n["id"]: n["state"] for n in get(ms[m]["api"], "/v1/nodes")["nodes"]}
    return out


def all_see(ms, who, want):
    v = views(ms, who)
    for m in who:
        for node, st in want.items():
            if v[m].get(node) != st:
                return "%s sees %s %s, not %s" % (m, node, v[m].get(node), st)
    return True


def check_clean(tmp, ms):
    for m in ms:
        with open(os.path.join(tmp, m + ".log"), errors="replace") as f:
            log = f.read()
        check("Sanitizer" not in log and "runtime error" not in log,
              "%s reported:\n%s" % (m, log[-3000:]))


def test_cli_hooks_status(tmp):
    ms = setup(tmp, 3)
    rc, out = cli("peer", "-c", ms["m1"]["conf"], "--check")
    check(rc == 0 and "valid" in out, "--check: %d %s" % (rc, out))
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write('peer = {\n  id = "x";\n  listen = "nowhere";\n};\n')
    rc, out = cli("peer", "-c", bad)
    check(rc == 2 and "bad.conf:3" in out and "peer.listen" in out and "ADDRESS:PORT" in out,
          "a bad listen address: %d %s" % (rc, out))
    try:
        for m in ms:
            launch(tmp, ms, m)
        took = wait_for("three members alive everywhere",
                        lambda: all_see(ms, ms, {m: "alive" for m in ms}))
        print("three members see each other alive %.1fs after start" % took)

        # vigil status against a member: every member, the others' status pairs included.
        rc, out = cli("status", "--api", ms["m2"]["api"])
        check(rc == 0 and out.count("alive") >= 3 and "3 nodes: 3 alive" in out,
              "vigil status: %s" % out)
        check("member m2" in out, "vigil status names the member: %s" % out)
        wait_for("m3's custom pairs at m1",
                 lambda: "role=db-m3 zone=z1" in cli("status", "--api", ms["m1"]["api"], "m3")[1]
                 or cli("status", "--api", ms["m1"]["api"], "m3")[1])
        rc, out = cli("status", "--api", ms["m1"]["api"], "m3")
        check(rc == 0 and "a member" in out and "memory" in out, "vigil status m3: %s" % out)
        health = get(ms["m1"]["api"], "/v1/health")
        check(health["authentication"] == "cluster" and not health["insecure"] and
              health["peer"]["alive"] == 2, "health: %s" % health)

        # SIGHUP: the file is read again, the member keeps running.
        os.kill(ms["m2"]["proc"].pid, signal.SIGHUP)
        time.sleep(1.0)
        check(ms["m2"]["proc"].poll() is None, "m2 exited on SIGHUP")

        # SIGKILL of m3 while m1's API is hammered (its loop also runs m1's probes and acks).
        stop_hammer = threading.Event()
        served = [0]

        def hammer():
            for _ in range(100000):
                if stop_hammer.is_set():
                    return
                for path in ("/v1/nodes", "/metrics", "/v1/events?limit=1000"):
                    try:
                        with urllib.request.urlopen("http://%s%s" % (ms["m1"]["api"], path),
                                                    timeout=5) as r:
                            r.read()
                        served[0] += 1
                    except OSError:
                        pass

        hammers = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
        for t in hammers:
            t.start()
        kill_at = time.monotonic()
        ms["m3"]["proc"].send_signal(signal.SIGKILL)
        ms["m3"]["proc"].wait(timeout=10)
        try:
            took = wait_for("m3 dead at the survivors",
                            lambda: all_see(ms, ["m1", "m2"], {"m3": "dead", "m1": "alive",
                                                               "m2": "alive"}))
            time.sleep(3.0)
        finally:
            stop_hammer.set()
            for t in hammers:
                t.join(timeout=10)
        print("both survivors see m3 dead %.1fs after SIGKILL, m1's API answering %d requests "
              "meanwhile" % (took, served[0]))
        check(served[0] > 50, "the API was hardly hammered: %d answers" % served[0])
        for m in ("m1", "m2"):
            evs = get(ms[m]["api"], "/v1/events?limit=1000")["events"]
            bad = [e for e in evs if e.get("node") in ("m1", "m2") and
                   e.get("new_state") in ("suspect", "dead")]
            check(not bad, "%s suspected a live member while m1's API was busy: %s" % (m, bad))
        wait_for("each survivor's hook ran for m3",
                 lambda: sorted(a[3] for a in actions(tmp) if a[:2] == ["m3", "dead"])
                 == ["m1", "m2"] or actions(tmp))
        time.sleep(2.0)
        acts = actions(tmp)
        check(sorted(a[3] for a in acts) == ["m1", "m2"] and all(a[:2] == ["m3", "dead"]
                                                                 for a in acts),
              "one action per survivor, for m3 only: %s" % acts)
        rc, out = cli("events", "--api", ms["m1"]["api"])
        check(rc == 0 and "m3 alive -> suspect" in out and "-> dead" in out,
              "vigil events: %s" % out)

        # /metrics: promtool's lint, the protocol's counters, members by state.
        with urllib.request.urlopen("http://%s/metrics" % ms["m1"]["api"], timeout=10) as r:
            text = r.read().decode()
        lint(text)
        for want in ('vigil_peer_members{state="alive"} 1', 'vigil_peer_members{state="dead"} 1',
                     "vigil_peer_probes_failed_total", 'vigil_nodes{state="dead"} 1'):
            check(want in text, "%s not in /metrics:\n%s" % (want, text[:4000]))

        # SIGTERM: left, never dead.
        stop(ms["m2"]["proc"])
        wait_for("m2 left at m1", lambda: all_see(ms, ["m1"], {"m2": "left"}))
        evs = get(ms["m1"]["api"], "/v1/events")["events"]
        check(not any(e.get("node") == "m2" and e.get("new_state") in ("dead", "suspect")
                      for e in evs), "m2 was suspected or dead at m1: %s" % evs)
        check_clean(tmp, ms)
    finally:
        for m in ms.values():
            if m.get("proc"):
                stop(m["proc"])


def leader(ms, who):
    """The member that leads, once every other in who follows it under one epoch; else None."""
    vs = {m: get(ms[m]["api"], "/v1/leader") for m in who}
    leads = [m for m, v in vs.items() if v.get("role") == "leader"]
    if len(leads) != 1:
        return None
    e = vs[leads[0]].get("epoch")
    for m, v in vs.items():
        if m != leads[0] and (v.get("role") != "follower" or v.get("leader") != leads[0] or
                              v.get("epoch") != e):
            return None
    return leads[0]


def test_actions_once_through_etcd(tmp):
    etcd = Etcd()
    extra = 'etcd = { endpoints = [ "%s" ]; ttl = "3s"; prefix = "/vigil-peer-test"; };' % etcd.url
    ms = setup(tmp, 4, extra)
    try:
        for m in ms:
            launch(tmp, ms, m)
        wait_for("four members alive everywhere", lambda: all_see(ms, ms, {m: "alive" for m in ms}))
        wait_for("one leader", lambda: leader(ms, ms) is not None)
        first = leader(ms, ms)
        follower = [m for m in ms if m != first][0]
        print("leader %s; killing follower %s" % (first, follower))
        ms[follower]["proc"].send_signal(signal.SIGKILL)
        ms[follower]["proc"].wait(timeout=10)
        alive = [m for m in ms if m != follower]
        wait_for("the follower dead everywhere", lambda: all_see(ms, alive, {follower: "dead"}))
        wait_for("an action for it", lambda: len(actions(tmp)) > 0 or "none yet")
        time.sleep(3.0)
        acts = [a for a in actions(tmp) if a[0] == follower]
        check(len(acts) == 1 and acts[0][1] == "dead" and acts[0][3] == first,
              "exactly one action, by the leader %s: %s" % (first, actions(tmp)))
        epoch1 = int(acts[0][2])

        print("killing the leader %s" % first)
        ms[first]["proc"].send_signal(signal.SIGKILL)
        ms[first]["proc"].wait(timeout=10)
        rest = [m for m in alive if m != first]
        wait_for("the old leader dead at the rest", lambda: all_see(ms, rest, {first: "dead"}))
        wait_for("a new leader", lambda: leader(ms, rest) is not None, timeout=30)
        second = leader(ms, rest)
        wait_for("an action for the old leader",
                 lambda: any(a[0] == first for a in actions(tmp)) or actions(tmp), timeout=30)
        time.sleep(3.0)
        acts = [a for a in actions(tmp) if a[0] == first]
        check(len(acts) == 1 and acts[0][1] == "dead" and acts[0][3] == second and
              int(acts[0][2]) > epoch1,
              "exactly one action for %s, by the new leader %s under a later epoch: %s" %
              (first, second, actions(tmp)))
        check(len(actions(tmp)) == 2, "two actions in all: %s" % actions(tmp))
        check_clean(tmp, ms)
    finally:
        for m in ms.values():
            if m.get("proc") and m["proc"].poll() is None:
                stop(m["proc"])
        etcd.stop()


def test_sealed_signed_members(tmp):
    """Sealed datagrams, signed leaves and alives: an insider holding the cluster key but no
    certificate of its own is never taken in; a leave is left; a member that left and starts
    again under the same id is alive again everywhere."""
    keygen(tmp, "-o", "cluster.key")
    ca = os.path.join(tmp, "ca")
    rc, out = cli("peer-cert", "ca", "--out", ca)
    check(rc == 0, "peer-cert ca: %s" % out)
    port, api_port = free_port(), free_port(socket.SOCK_STREAM)
    procs = {}

    def launch_member(mid, signed=True):
        ip = "127.0.0.%d" % (int(mid[1:]))
        args = ["peer", "--id", mid, "--listen", "%s:%d" % (ip, port), "--seed",
                "127.0.0.1:%d" % port, "--key-file", os.path.join(tmp, "cluster.key"),
                "--encrypt", "--api", "%s:%d" % (ip, api_port), "--interval", "500ms"]
        if signed:
            member = os.path.join(tmp, mid + ".member")
            if not os.path.exists(member):
                rc, out = cli("peer-cert", "issue", "--ca", ca, "--id", mid, "--out", member)
                check(rc == 0, "peer-cert issue: %s" % out)
            args += ["--member-file", member, "--ca", ca + ".pub"]
        procs[mid] = start(args, os.path.join(tmp, "%s-%d.log" % (mid, time.monotonic_ns())))

    def seen(by):
        d = get("127.0.0.%d:%d" % (int(by[1:]), api_port), "/v1/members")
        return {m["id"]: m["state"] for m in d["members"]}

    def all_alive(who):
        for a in who:
            v = seen(a)
            for b in who:
                if b != a and v.get(b) != "alive":
                    return "%s sees %s %s" % (a, b, v.get(b))
        return True

    try:
        for m in ("m1", "m2", "m3"):
            launch_member(m)
        wait_for("three signed members alive everywhere", lambda: all_alive(["m1", "m2", "m3"]))
        health = get("127.0.0.1:%d" % api_port, "/v1/health")
        check(health["authentication"] == "cluster, sealed", "health: %s" % health)

        # The insider: the cluster's key, no certificate. It hears the others; they never take it.
        launch_member("m9", signed=False)
        wait_for("the insider hears the members",
                 lambda: sum(1 for st in seen("m9").values() if st == "alive") >= 3 or seen("m9"))
        time.sleep(3.0)
        for m in ("m1", "m2", "m3"):
            check(seen(m).get("m9") in (None,), "%s took the insider in: %s" % (m, seen(m)))
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % api_port, timeout=10) as r:
            text = r.read().decode()
        refused = [l for l in text.splitlines() if l.startswith("vigil_peer_alives_refused_total")]
        check(refused and int(refused[0].split()[1]) > 0, "no alive refused: %s" % refused)

        # A leave, then the same member again.
        stop(procs["m3"])
        wait_for("m3 left at m1 and m2", lambda: seen("m1").get("m3") == "left" and
                 seen("m2").get("m3") == "left" or (seen("m1"), seen("m2")))
        launch_member("m3")
        took = wait_for("m3 alive again everywhere", lambda: all_alive(["m1", "m2", "m3"]),
                        timeout=30)
        print("a member that left and started again is alive everywhere %.1fs later" % took)
    finally:
        for p in procs.values():
            if p.poll() is None:
                stop(p)


if __name__ == "__main__":
    run_tests([test_cli_hooks_status, test_actions_once_through_etcd, test_sealed_signed_members])
