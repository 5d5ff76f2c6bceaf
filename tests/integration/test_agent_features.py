#!/usr/bin/env python3
"""Agent features against a real monitor: IPv6, custom status changed while
the agent runs, the embedding example, and /proc status reaching the API."""
import json
import os
import subprocess
import time

from vigil_harness import VIGIL, Monitor, agent, check, run_tests

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@", "[::1]:@PORT@" ];
  api = "127.0.0.1:@API@";
  heartbeat_interval = "250ms";
  detector = { type = "fixed"; suspect_after = "750ms"; dead_after = "1500ms"; };
  startup_grace = "5s";
};
"""


def wait_for(fn, timeout, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_ipv6_and_proc_status(tmp):
    m = Monitor(tmp, CONFIG)
    agent("[::1]:%d" % m.port, "six", tmp)
    m.wait_state("six", "alive", 10)
    n = m.nodes()["six"]
    check(n["addr"].startswith("[::1]:"), "addr %r" % n["addr"])
    st = n["status"]
    check(st["mem_total_kib"] > 0 and st["mem_avail_kib"] > 0, "memory %r" % st)
    check(st["uptime_s"] > 0, "uptime %r" % st)
    check(n["generation"] > 0 and n["sequence"] >= 1, "generation/sequence %r" % n)


def test_custom_status_while_running(tmp):
    m = Monitor(tmp, CONFIG)
    sf = os.path.join(tmp, "status")
    agent(m.addr, "cust", tmp, extra=["--status-file", sf, "--set", "role=web"])
    m.wait_state("cust", "alive", 10)
    check(m.nodes()["cust"]["custom"] == {"role": "web"}, "custom %r" % m.nodes()["cust"]["custom"])
    subprocess.run([VIGIL, "set", "--status-file", sf, "queue=17", "ready=yes"], check=True)
    wait_for(lambda: m.nodes()["cust"]["custom"].get("queue") == "17", 5, "queue=17")
    c = m.nodes()["cust"]["custom"]
    check(c == {"role": "web", "queue": "17", "ready": "yes"}, "custom %r" % c)
    subprocess.run([VIGIL, "set", "--status-file", sf, "ready="], check=True)
    wait_for(lambda: "ready" not in m.nodes()["cust"]["custom"], 5, "ready removed")
    bad = subprocess.run([VIGIL, "set", "--status-file", sf, "bad key=1"], capture_output=True)
    check(bad.returncode != 0, "a bad key was accepted")


def test_embedded_library(tmp):
    m = Monitor(tmp, CONFIG)
    embed = os.path.join(os.path.dirname(os.path.abspath(VIGIL)), "embed_heartbeat")
    p = subprocess.Popen([embed, "app1", m.addr, "3"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    out, _ = p.communicate(timeout=30)
    check(p.returncode == 0, "embed_heartbeat failed: %s" % out.decode(errors="replace"))
    n = m.nodes().get("app1")
    check(n is not None, "app1 never reached the monitor")
    check(n["state"] == "left", "app1 is %s after its goodbye" % n["state"])
    check(n["heartbeats"] >= 4, "heartbeats %r" % n["heartbeats"])
    check(len(n["custom"]) >= 1, "custom %r" % n["custom"])


def test_json_log(tmp):
    """With log.format = "json" every line of the log is one JSON object."""
    m = Monitor(tmp, CONFIG.replace("startup_grace", 'log = { format = "json"; };\n  startup_grace'))
    a = agent(m.addr, "js", tmp)
    m.wait_state("js", "alive", 10)
    a.terminate()
    a.wait(timeout=5)
    m.wait_state("js", "left", 5)
    # The API shows the node's state at once; the log's writer thread may be a moment behind.
    deadline = time.monotonic() + 5
    while '"new_state":"left"' not in m.read_log() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [l for l in m.read_log().splitlines() if l.strip()]
    objs = [json.loads(l) for l in lines]
    states = [(o["node"], o["old_state"], o["new_state"]) for o in objs if o.get("type") == "state"]
    check(states == [("js", "unknown", "alive"), ("js", "alive", "left")], "events %r" % states)
    check(any(o.get("type") == "log" for o in objs), "no log line in %r" % objs[:3])


if __name__ == "__main__":
    run_tests([test_ipv6_and_proc_status, test_custom_status_while_running, test_embedded_library,
               test_json_log])
