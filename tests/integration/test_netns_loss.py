#!/usr/bin/env python3
"""Across a real (virtual) network: two network namespaces joined by a veth
pair, the monitor in one, five agents in the other, and datagram loss made
by nftables in the monitor's namespace.

At 3 % random loss for a minute of 100 ms heartbeats nobody is suspected or
convicted; a killed agent is still declared dead within the bound; a
partition convicts every agent behind it, and when it heals they all come
back. Needs root (namespaces); the test creates and removes everything it
uses, namespaces by name and processes by pid.
"""
import json
import os
import shutil
import signal
import subprocess
import time

from vigil_harness import VIGIL, _procs, check, run_tests

TAG = "vgl%d" % os.getpid()
NS_MON, NS_AG = TAG + "m", TAG + "a"
MON_IP, AG_IP = "10.213.7.1", "10.213.7.2"
PORT, API = 7946, "127.0.0.1:7947"
AGENTS = ["n%d" % i for i in range(5)]
INTERVAL = "100ms"
LOSS_PERCENT = 3


def sh(*args, check_rc=True):
    r = subprocess.run(list(args), capture_output=True, timeout=20)
    if check_rc and r.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
    return r


def in_ns(ns, *args, **kw):
    return sh("ip", "netns", "exec", ns, *args, **kw)


def setup_net():
    sh("ip", "netns", "add", NS_MON)
    sh("ip", "netns", "add", NS_AG)
    sh("ip", "link", "add", TAG + "x", "type", "veth", "peer", "name", TAG + "y")
    sh("ip", "link", "set", TAG + "x", "netns", NS_MON)
    sh("ip", "link", "set", TAG + "y", "netns", NS_AG)
    in_ns(NS_MON, "ip", "addr", "add", MON_IP + "/24", "dev", TAG + "x")
    in_ns(NS_AG, "ip", "addr", "add", AG_IP + "/24", "dev", TAG + "y")
    for ns, dev in ((NS_MON, TAG + "x"), (NS_AG, TAG + "y")):
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, "ip", "link", "set", dev, "up")
    in_ns(NS_MON, "nft", "add", "table", "inet", "vigiltest")
    in_ns(NS_MON, "nft", "add", "chain", "inet", "vigiltest", "input",
          "{ type filter hook input priority 0 ; }")


def teardown_net():
    for ns in (NS_MON, NS_AG):
        sh("ip", "netns", "del", ns, check_rc=False)


def set_loss(percent):
    """Drops this share of the heartbeats that reach the monitor's namespace."""
    in_ns(NS_MON, "nft", "flush", "chain", "inet", "vigiltest", "input")
    if percent >= 100:
        in_ns(NS_MON, "nft", "add", "rule", "inet", "vigiltest", "input", "udp", "dport",
              str(PORT), "drop")
    elif percent > 0:
        in_ns(NS_MON, "nft", "add", "rule", "inet", "vigiltest", "input", "udp", "dport",
              str(PORT), "numgen", "random", "mod", "100", "<", str(percent), "drop")


def start_in(ns, args, log):
    p = subprocess.Popen(["ip", "netns", "exec", ns, VIGIL] + args, stdout=open(log, "ab"),
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    _procs.append(p)
    return p


def nodes():
    r = in_ns(NS_MON, VIGIL, "status", "--api", API, "--json")
    return {n["id"]: n for n in json.loads(r.stdout)["nodes"]}


def events():
    r = in_ns(NS_MON, VIGIL, "events", "--api", API, "--since", "0", "--limit", "10000",
              "--json")
    return json.loads(r.stdout)["events"]


def health():
    r = in_ns(NS_MON, "curl", "-s", "http://%s/v1/health" % API)
    return json.loads(r.stdout)


def wait_all(state, names, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            ns = nodes()
            if all(ns.get(n, {}).get("state") == state for n in names):
                return time.monotonic() - t0
        except (AssertionError, ValueError, subprocess.TimeoutExpired):
            pass
        time.sleep(0.1)
    raise AssertionError("not all %s within %.0fs: %r" % (state, timeout, {
        n: v["state"] for n, v in nodes().items()}))


def test_loss_partition_and_crash(tmp):
    try:
        setup_net()
        start_in(NS_MON, ["monitor", "--insecure", "--listen", "%s:%d" % (MON_IP, PORT),
                          "--api", API],
                 os.path.join(tmp, "monitor.log"))
        agents = {n: start_in(NS_AG, ["agent", "--id", n, "--monitor", "%s:%d" % (MON_IP, PORT),
                                      "--interval", INTERVAL], os.path.join(tmp, n + ".log"))
                  for n in AGENTS}
        wait_all("alive", AGENTS, 15)
        time.sleep(2)  # let the detectors learn the real intervals

        # A minute at 3 % loss: datagrams are lost, nobody is suspected.
        before = health()["counters"]["accepted"]
        seq0 = {n: v["sequence"] for n, v in nodes().items()}
        set_loss(LOSS_PERCENT)
        time.sleep(60)
        set_loss(0)
        sent = sum(v["sequence"] - seq0[n] for n, v in nodes().items())
        got = health()["counters"]["accepted"] - before
        lost = 1 - got / sent
        print("  %d%% loss for 60 s: %d of %d heartbeats lost (%.1f%%)" % (
            LOSS_PERCENT, sent - got, sent, 100 * lost), flush=True)
        check(0.01 <= lost <= 0.06, "lost %.3f of %d heartbeats, want about 0.03" % (lost, sent))
        bad = [e for e in events() if e["new_state"] in ("suspect", "dead")]
        check(bad == [], "false alarms under %d%% loss: %r" % (LOSS_PERCENT, bad))

        # A partition: every agent is convicted, and all come back when it heals.
        set_loss(100)
        wait_all("dead", AGENTS, 10)
        set_loss(0)
        took = wait_all("alive", AGENTS, 10)
        print("  partition healed: all alive again after %.2f s" % took, flush=True)
        check(took < 5, "recovery took %.1fs" % took)

        # A crash on the far side is still detected, within the bound.
        t0 = time.monotonic()
        agents["n3"].send_signal(signal.SIGKILL)
        wait_all("dead", ["n3"], 10)
        took = time.monotonic() - t0
        # 100 ms heartbeats: phi's defaults scaled to them convict about 0.45 s after the last.
        print("  SIGKILL across the veth: dead after %.2f s" % took, flush=True)
        check(0.2 < took < 3.0, "n3 dead after %.2fs" % took)
        alive = [n for n, v in nodes().items() if v["state"] == "alive"]
        check(sorted(alive) == ["n0", "n1", "n2", "n4"], "alive %r" % alive)
    finally:
        for p in list(_procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
        teardown_net()


if __name__ == "__main__":
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        # Not silently green: say so, and fail, since the suite is meant to run as root.
        print("test_netns_loss needs root, ip and nft")
        print("0 passed, 1 failed")
        raise SystemExit(1)
    run_tests([test_loss_partition_and_crash])
