#!/usr/bin/env python3
"""The grid detector across a real (virtual) network: the monitor in one
network namespace, six agents at 100 ms heartbeats in another, and 5 %
datagram loss made by nftables in the monitor's namespace.

Agents are killed with SIGKILL one after another and restarted (a new boot
generation) once they are declared dead. Over the run: no live agent is
ever suspected or declared dead, and the median time from the SIGKILL to
the dead event (the monitor's own decision time, mapped to the wall clock)
is at most 0.6 s. Needs root (namespaces); the test creates and removes
everything it uses, namespaces by name and processes by pid.
"""
import os
import signal
import time

from netns_harness import NetPair, median, stop_all, usable
from vigil_harness import _procs, check, run_tests

AGENTS = ["g%d" % i for i in range(6)]
INTERVAL = "100ms"
LOSS_PERCENT = 5
KILLS = 12
WARMUP_S = 30  # the loss estimate leaves its prior behind


def test_grid_loss_and_kills(tmp):
    net = NetPair("vgg%d" % os.getpid(), subnet="10.213.11")
    try:
        net.setup()
        net.start_monitor(os.path.join(tmp, "monitor.log"),
                          ["--detector", "grid", "--interval", INTERVAL])
        agents = {n: net.start_agent(n, INTERVAL, os.path.join(tmp, n + ".log")) for n in AGENTS}
        net.wait_all("alive", AGENTS, 15)
        net.set_loss(LOSS_PERCENT)
        time.sleep(WARMUP_S)

        kills = []  # (node, wall time of the SIGKILL, wall time of the restart)
        for i in range(KILLS):
            node = AGENTS[i % len(AGENTS)]
            t_kill = time.time()
            agents[node].send_signal(signal.SIGKILL)
            agents[node].wait(timeout=5)
            net.wait_all("dead", [node], 10, poll=0.05)
            t_restart = time.time()
            kills.append((node, t_kill, t_restart))
            agents[node] = net.start_agent(node, INTERVAL, os.path.join(tmp, node + ".log"))
            net.wait_all("alive", [node], 10, poll=0.05)
            time.sleep(3)
        net.set_loss(0)

        evs = net.events()
        took, false = [], []
        for e in evs:
            if e["new_state"] not in ("suspect", "dead"):
                continue
            t = e["time_us"] / 1e6
            hit = [k for k in kills if k[0] == e["node"] and k[1] <= t <= k[2] + 1]
            if not hit:
                false.append(e)
            elif e["new_state"] == "dead":
                took.append(t - hit[0][1])
        n = net.nodes()
        loss = {k: v.get("loss") for k, v in n.items()}
        print("  %d%% loss, %d SIGKILLs: dead after %s s" % (
            LOSS_PERCENT, len(kills), " ".join("%.3f" % x for x in took)), flush=True)
        print("  median %.3f s, max %.3f s; loss estimates %r" % (
            median(took), max(took), loss), flush=True)
        check(false == [], "false alarms: %r" % false)
        check(len(took) == KILLS, "%d dead events for %d kills" % (len(took), KILLS))
        check(median(took) <= 0.6, "median detection %.3f s > 0.6 s" % median(took))
        check(max(took) < 1.5, "a detection took %.3f s" % max(took))
        check(all(0.02 <= v <= 0.2 for v in loss.values() if v is not None),
              "loss estimates %r, want about 0.05" % loss)
    finally:
        stop_all(_procs)
        net.teardown()


if __name__ == "__main__":
    if not usable():
        print("test_netns_grid needs root, ip and nft")
        print("0 passed, 1 failed")
        raise SystemExit(1)
    run_tests([test_grid_loss_and_kills])
