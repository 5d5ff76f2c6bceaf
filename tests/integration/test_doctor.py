#!/usr/bin/env python3
"""vigil doctor against a real monitor: a healthy agent, a wrong key, a key id
the monitor does not hold, an unreachable API, and the probe that shows the
UDP path works. The doctor sends no heartbeat: the monitor's view of the
nodes does not change while it runs.
"""
import os
import subprocess
import time

from vigil_harness import VIGIL, Monitor, agent, check, keygen, run_tests

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  key_file = "@TMP@/master.key";
  heartbeat_interval = "200ms";
};
"""

AGENT = """
agent = {
  id = "%s";
  monitors = [ "%s" ];
  interval = "200ms";
  key_file = "%s";
};
"""


def doctor(tmp, m, node, key, api=None):
    conf = os.path.join(tmp, "agent-%s.conf" % node)
    with open(conf, "w") as f:
        f.write(AGENT % (node, m.addr, os.path.join(tmp, key)))
    r = subprocess.run([VIGIL, "doctor", "-c", conf, "--api",
                        api or "127.0.0.1:%d" % m.api_port],
                       capture_output=True, text=True, timeout=30)
    return r


def test_doctor(tmp):
    keygen(tmp, "-o", "master.key")
    keygen(tmp, "-o", "other.key")
    keygen(tmp, "--node", "web1", "--master", "master.key", "-o", "web1.key")
    keygen(tmp, "--node", "web2", "--master", "other.key", "-o", "web2.key")
    keygen(tmp, "--key-id", "3", "-o", "master3.key")
    keygen(tmp, "--node", "web3", "--master", "master3.key", "-o", "web3.key")
    m = Monitor(tmp, CONFIG)
    a1 = agent(m.addr, "web1", tmp, interval="200ms",
               extra=["--key-file", os.path.join(tmp, "web1.key")])
    a2 = agent(m.addr, "web2", tmp, interval="200ms",
               extra=["--key-file", os.path.join(tmp, "web2.key")])
    m.wait_state("web1", "alive", 10)
    time.sleep(0.5)
    nodes_before = {n: v["state"] for n, v in m.nodes().items()}
    hb_before = m.nodes()["web1"]["heartbeats"] if "heartbeats" in m.nodes()["web1"] else None

    # A healthy agent: everything ok, exit 0.
    r = doctor(tmp, m, "web1", "web1.key")
    check(r.returncode == 0, "doctor web1: %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
    for want in ("the monitor expects exactly this key of web1 (key id 0)",
                 "the monitor has web1 alive", "clocks agree",
                 "the monitor dropped nothing claiming web1",
                 "probe datagrams reach the monitor's UDP port"):
        check(want in r.stdout, "%r not in:\n%s" % (want, r.stdout))

    # A node key of another master key: wrong key, and the drops say so too.
    r = doctor(tmp, m, "web2", "web2.key")
    check(r.returncode == 1, "doctor web2: %d\n%s" % (r.returncode, r.stdout))
    check("wrong key: the monitor expects another key of web2 under key id 0" in r.stdout,
          r.stdout)
    check("datagram(s) claiming web2 this minute: failed authentication: wrong key?" in r.stdout,
          r.stdout)

    # A key id the monitor does not hold.
    r = doctor(tmp, m, "web3", "web3.key")
    check(r.returncode == 1 and "the monitor holds no key with key id 3" in r.stdout, r.stdout)

    # No API there.
    r = doctor(tmp, m, "web1", "web1.key", api="127.0.0.1:1")
    check(r.returncode == 1 and "does not answer" in r.stdout, r.stdout)

    # The doctor changed nothing: same nodes, same states, web2 never accepted.
    after = {n: v["state"] for n, v in m.nodes().items()}
    check(after == nodes_before and "web2" not in after and
          not any(n.startswith("vigil-doctor-") for n in after),
          "nodes changed: %r -> %r" % (nodes_before, after))
    del hb_before
    a1.terminate()
    a2.terminate()


if __name__ == "__main__":
    run_tests([test_doctor])
