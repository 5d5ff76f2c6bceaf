#!/usr/bin/env python3
"""A monitor and three agents, real processes on loopback.

SIGKILL an agent: dead within the bound, and the hook ran with the event.
SIGSTOP/SIGCONT an agent: suspect or dead, then recovered.
SIGTERM an agent: left, never dead.
SIGSTOP the monitor past the dead timeout: nobody declared dead.
"""
import glob
import json
import os
import signal
import time

from vigil_harness import Monitor, agent, check, run_tests

INTERVAL = 0.25
DEAD_AFTER = 1.5

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  heartbeat_interval = "250ms";
  rise = 2;
  pause_tolerance = "500ms";
  startup_grace = "5s";
  detector = { type = "fixed"; suspect_after = "750ms"; dead_after = "1500ms"; };
  hooks = ( { command = [ "@TMP@/hook.sh" ]; timeout = "5s"; } );
};
"""

HOOK = """#!/bin/sh
d="$(dirname "$0")/hooks"
mkdir -p "$d"
env | grep '^VIGIL_' > "$d/$VIGIL_EVENT_SEQ.env.tmp" && mv "$d/$VIGIL_EVENT_SEQ.env.tmp" "$d/$VIGIL_EVENT_SEQ.env"
cat > "$d/$VIGIL_EVENT_SEQ.json.tmp" && mv "$d/$VIGIL_EVENT_SEQ.json.tmp" "$d/$VIGIL_EVENT_SEQ.json"
echo "hook: $VIGIL_NODE $VIGIL_OLD_STATE -> $VIGIL_NEW_STATE"
"""


def cluster(tmp):
    hook = os.path.join(tmp, "hook.sh")
    with open(hook, "w") as f:
        f.write(HOOK)
    os.chmod(hook, 0o755)
    m = Monitor(tmp, CONFIG)
    agents = {name: agent(m.addr, name, tmp) for name in ("a1", "a2", "a3")}
    for name in agents:
        m.wait_state(name, "alive", 10)
    return m, agents


def hook_records(tmp):
    """Every hook invocation: (env dict, stdin JSON)."""
    out = []
    for envf in sorted(glob.glob(os.path.join(tmp, "hooks", "*.env"))):
        jf = envf[:-4] + ".json"
        if not os.path.exists(jf):
            continue
        env = dict(line.rstrip("\n").split("=", 1) for line in open(envf) if "=" in line)
        with open(jf) as f:
            out.append((env, json.load(f)))
    return out


def wait_hook(tmp, node, state, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        for env, js in hook_records(tmp):
            if env.get("VIGIL_NODE") == node and env.get("VIGIL_NEW_STATE") == state:
                return env, js
        time.sleep(0.05)
    raise AssertionError("no hook record for %s -> %s" % (node, state))


def test_sigkill_detected_and_hook_runs(tmp):
    m, agents = cluster(tmp)
    t_kill = time.monotonic()
    agents["a2"].send_signal(signal.SIGKILL)
    agents["a2"].wait(timeout=5)
    m.wait_state("a2", "dead", DEAD_AFTER + INTERVAL + 3.0)
    took = time.monotonic() - t_kill
    # Never before the dead timeout since the last heartbeat (at most one interval before the kill).
    check(took >= DEAD_AFTER - INTERVAL - 0.05, "dead too early: %.3fs" % took)
    check(took <= DEAD_AFTER + INTERVAL + 3.0, "dead too late: %.3fs" % took)
    for other in ("a1", "a3"):
        check(m.state(other) == "alive", "%s should be alive" % other)
    env, js = wait_hook(tmp, "a2", "dead")
    check(env["VIGIL_OLD_STATE"] == "suspect", "old state %r" % env["VIGIL_OLD_STATE"])
    check(env["VIGIL_REASON"] == "timeout", "reason %r" % env["VIGIL_REASON"])
    check(float(env["VIGIL_SINCE_LAST"]) >= DEAD_AFTER, "since_last %s" % env["VIGIL_SINCE_LAST"])
    check(float(env["VIGIL_THRESHOLD"]) == DEAD_AFTER, "threshold %s" % env["VIGIL_THRESHOLD"])
    check(env["VIGIL_ADDR"].startswith("127.0.0.1:"), "addr %s" % env["VIGIL_ADDR"])
    check(js["node"] == "a2" and js["new_state"] == "dead", "stdin json %r" % js)
    check(js["evidence"]["since_last_s"] >= DEAD_AFTER, "json evidence %r" % js["evidence"])
    check(int(env["VIGIL_EVENT_SEQ"]) == js["seq"], "seq differs")
    # The API tells why.
    node = m.get("/v1/nodes/a2")
    check(node["state"] == "dead", "api state %r" % node["state"])
    check(any(e["new_state"] == "dead" for e in node["events"]), "api events %r" % node["events"])
    check("hook: a2 suspect -> dead" in m.read_log(), "hook output not in the monitor log")


def test_sigstop_then_recovers(tmp):
    m, agents = cluster(tmp)
    ev0 = m.events()[-1]["seq"]
    agents["a1"].send_signal(signal.SIGSTOP)
    m.wait_state("a1", "dead", DEAD_AFTER + 4)
    agents["a1"].send_signal(signal.SIGCONT)
    m.wait_state("a1", "alive", 5)
    seen = [(e["old_state"], e["new_state"], e["reason"]) for e in m.events(ev0)
            if e["type"] == "state" and e["node"] == "a1"]
    check(seen == [("alive", "suspect", "timeout"), ("suspect", "dead", "timeout"),
                   ("dead", "alive", "recovered")], "events %r" % seen)
    wait_hook(tmp, "a1", "alive")


def test_sigterm_is_left_not_dead(tmp):
    m, agents = cluster(tmp)
    ev0 = m.events()[-1]["seq"]
    agents["a3"].send_signal(signal.SIGTERM)
    check(agents["a3"].wait(timeout=5) == 0, "agent exit status")
    m.wait_state("a3", "left", 3)
    time.sleep(DEAD_AFTER * 2)
    check(m.state("a3") == "left", "a3 is %s" % m.state("a3"))
    seen = [(e["old_state"], e["new_state"]) for e in m.events(ev0)
            if e["type"] == "state" and e["node"] == "a3"]
    check(seen == [("alive", "left")], "events %r" % seen)


def test_monitor_pause_convicts_nobody(tmp):
    m, agents = cluster(tmp)
    ev0 = m.events()[-1]["seq"]
    stop = DEAD_AFTER * 2.5
    m.proc.send_signal(signal.SIGSTOP)
    time.sleep(stop)
    m.proc.send_signal(signal.SIGCONT)
    time.sleep(DEAD_AFTER)
    states = {n: m.state(n) for n in agents}
    check(all(s == "alive" for s in states.values()), "states after pause %r" % states)
    evs = m.events(ev0)
    check(not any(e.get("new_state") in ("dead", "suspect") for e in evs), "events %r" % evs)
    pauses = [e for e in evs if e["type"] == "pause"]
    check(pauses, "no pause event in %r" % evs)
    # Its length is the stop's, within a heartbeat interval or so (not unknown states).
    check(stop - 1.5 <= pauses[0]["pause_s"] <= stop + 0.5, "pause %r for a %.1fs stop" %
          (pauses[0], stop))
    check("node" not in pauses[0] and "new_state" not in pauses[0], "shape %r" % pauses[0])
    health = m.get("/v1/health")
    check(health["counters"]["pauses"] >= 1, "pauses %r" % health["counters"])
    # Detection still works after the pause.
    agents["a1"].send_signal(signal.SIGKILL)
    m.wait_state("a1", "dead", DEAD_AFTER + 4)


if __name__ == "__main__":
    run_tests([test_sigkill_detected_and_hook_runs, test_sigstop_then_recovers,
               test_sigterm_is_left_not_dead, test_monitor_pause_convicts_nobody])
