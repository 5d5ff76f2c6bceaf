#!/usr/bin/env python3
"""SIGHUP reloads the configuration of a running monitor and agent; --check validates one.

- SIGHUP with the same file: the monitor and the agents keep running (no
  exit 129, no goodbye), every node stays alive, nothing happens.
- A changed file: a longer dead timeout and a newly declared node apply at
  once (the node appears, unknown; a killed agent is declared dead after
  the new timeout, not the old one); a changed listen address is named as
  kept until a restart.
- A broken file (a syntax error, then a bad value): the reload is refused
  with FILE:LINE and the reason, the running configuration stays.
- An agent's SIGHUP applies its new static custom status.
- vigil monitor --check -c FILE: 0 and a summary for a good file; 2 and
  FILE:LINE for a bad one, without starting anything.
"""
import os
import signal
import subprocess
import time

from vigil_harness import VIGIL, Monitor, agent, check, keygen, run_tests

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  key_file = "@TMP@/master.key";
  heartbeat_interval = "200ms";
  detector = { type = "fixed"; suspect_after = "600ms"; dead_after = "@DEAD@"; };
  startup_grace = "60s";
  @NODES@
};
"""


def text(dead="1s", nodes=""):
    return CONFIG.replace("@DEAD@", dead).replace("@NODES@", nodes)


def rewrite(m, body):
    body = body.replace("@PORT@", str(m.port)).replace("@API@", str(m.api_port))
    body = body.replace("@TMP@", m.tmp)
    with open(m.conf + ".new", "w") as f:
        f.write(body)
    os.replace(m.conf + ".new", m.conf)


def wait_for(cond, what, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError("%s within %.0f s" % (what, timeout))


def hup_and_wait(m, needle):
    n0 = m.read_log().count(needle)
    m.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: m.read_log().count(needle) > n0, "log line %r" % needle)
    check(m.proc.poll() is None, "the monitor exited on SIGHUP: %s" % m.proc.returncode)


def test_reload(tmp):
    keygen(tmp, "-o", "master.key")
    for n in ("web1", "web2"):
        keygen(tmp, "--node", n, "--master", "master.key", "-o", n + ".key")
    m = Monitor(tmp, text())
    agents = {}
    for n in ("web1", "web2"):
        agents[n] = agent(m.addr, n, tmp, interval="200ms",
                          extra=["--key-file", os.path.join(tmp, n + ".key"),
                                 "--set", "role=web"])
    for n in agents:
        m.wait_state(n, "alive", 10)
    ev0 = m.events()[-1]["seq"]

    # The same file: nothing changes, nobody exits.
    hup_and_wait(m, "configuration reloaded from")
    agents["web1"].send_signal(signal.SIGHUP)
    alog = os.path.join(tmp, "agent-web1.log")
    wait_for(lambda: "configuration reloaded" in open(alog).read(), "the agent's reload")
    time.sleep(1)
    check(agents["web1"].poll() is None, "the agent exited on SIGHUP")
    check([e for e in m.events(ev0) if e["type"] == "state"] == [], "events after a reload")

    # A longer dead timeout, a new declared node, a new listen port (kept until a restart).
    body = text(dead="3s", nodes='nodes = [ "db9" ];').replace(
        '"127.0.0.1:@PORT@"', '"127.0.0.1:@PORT@", "127.0.0.1:1"')
    rewrite(m, body)
    hup_and_wait(m, "1 more declared nodes")
    line = [x for x in m.read_log().splitlines() if "1 more declared nodes" in x][-1]
    check("kept until a restart: listen" in line, "reload line %r" % line)
    check(m.state("db9") == "unknown", "db9 is %s" % m.state("db9"))
    t_kill = time.monotonic()
    agents["web2"].send_signal(signal.SIGKILL)
    agents["web2"].wait(10)
    took = m.wait_state("web2", "dead", 15) + (time.monotonic() - t_kill) * 0
    # Dead after the new 3 s timeout (from its last heartbeat), not the old 1 s.
    check(took > 2.4 and took < 8, "web2 dead %.2f s after SIGKILL" % took)
    check(m.state("web1") == "alive", "web1 is %s" % m.state("web1"))

    # A broken file: refused with FILE:LINE, and the running configuration stays.
    rewrite(m, text(dead="3s") + "monitor = {\n")
    hup_and_wait(m, "configuration not reloaded, the running one stays")
    check("monitor.conf:" in m.read_log().splitlines()[-1], m.read_log().splitlines()[-1])
    rewrite(m, text(dead="-1s"))
    hup_and_wait(m, "configuration not reloaded, the running one stays")
    check("dead_after" in m.read_log().splitlines()[-1], m.read_log().splitlines()[-1])
    check(m.state("db9") == "unknown" and m.state("web1") == "alive", "states changed")

    # The agent picks up a new static status on SIGHUP.
    agents["web1"].send_signal(signal.SIGHUP)  # its flags are read again: role=web stays
    wait_for(lambda: open(alog).read().count("configuration reloaded") >= 2, "agent reload")
    check(m.nodes()["web1"].get("custom", {}).get("role") == "web", "custom status lost")
    agents["web1"].terminate()


def test_check(tmp):
    keygen(tmp, "-o", "master.key")
    good = os.path.join(tmp, "good.conf")
    with open(good, "w") as f:
        f.write(text().replace("@PORT@", "7946").replace("@API@", "7947").replace("@TMP@", tmp))
    r = subprocess.run([VIGIL, "monitor", "--check", "-c", good], capture_output=True,
                       text=True, timeout=10)
    check(r.returncode == 0 and "configuration is valid" in r.stdout, "check good: %r" % (r,))
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("monitor = {\n  detector = { type = \"nope\"; };\n};\n")
    r = subprocess.run([VIGIL, "monitor", "--check", "-c", bad], capture_output=True,
                       text=True, timeout=10)
    check(r.returncode == 2 and "bad.conf:2" in r.stderr, "check bad: %r" % (r,))


if __name__ == "__main__":
    run_tests([test_reload, test_check])
