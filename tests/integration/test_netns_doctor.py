#!/usr/bin/env python3
"""vigil doctor and a reload across a real (virtual) network, as an operator
meets them: the monitor in one network namespace, an agent in another,
joined by a veth pair, a firewall (nftables) in the monitor's namespace.

- All well: the doctor, run in the agent's namespace against the monitor's
  API across the link, passes every check, the probe included.
- The firewall drops the heartbeat port: the node dies, and the doctor
  fails, naming the firewall (the probe never arrives) while the API, on
  another port, still answers.
- The firewall is lifted: the node comes back; the doctor passes again.
- The monitor reloads (SIGHUP) a configuration with a longer dead timeout
  while the agent runs: nothing happens to the node.

Needs root (namespaces); everything created is removed, namespaces by name
and processes by pid.
"""
import os
import signal
import subprocess
import time

from netns_harness import NetPair, stop_all, usable
from vigil_harness import VIGIL, check, run_tests

TAG = "vgd%d" % (os.getpid() % 100000)


def doctor(pair, conf, api):
    return pair.in_ns(pair.ag, VIGIL, "doctor", "-c", conf, "--api", api, check_rc=False,
                      timeout=60)


def test_doctor_across_namespaces(tmp):
    if not usable():
        raise AssertionError("needs root, ip and nft (the test suite runs as root)")
    pair = NetPair(TAG, subnet="10.213.11")
    api = "%s:7947" % pair.mon_ip
    pair.api = api
    procs = []
    try:
        pair.setup()
        vigil = os.path.abspath(VIGIL)
        subprocess.run([vigil, "keygen", "-o", "master.key"], check=True, cwd=tmp)
        subprocess.run([vigil, "keygen", "--node", "web1", "--master", "master.key", "-o",
                        "web1.key"], check=True, cwd=tmp)
        mconf = os.path.join(tmp, "monitor.conf")

        def write_monitor_conf(dead):
            with open(mconf + ".new", "w") as f:
                f.write('monitor = {\n  listen = [ "%s:%d" ];\n  api = "%s";\n'
                        '  key_file = "%s/master.key";\n  heartbeat_interval = "100ms";\n'
                        '  detector = { type = "fixed"; suspect_after = "500ms"; '
                        'dead_after = "%s"; };\n};\n' % (pair.mon_ip, pair.port, api, tmp, dead))
            os.replace(mconf + ".new", mconf)

        write_monitor_conf("1s")
        mon = pair.start_in(pair.mon, ["monitor", "-c", mconf], os.path.join(tmp, "mon.log"))
        procs.append(mon)
        aconf = os.path.join(tmp, "agent.conf")
        with open(aconf, "w") as f:
            f.write('agent = {\n  id = "web1";\n  monitors = [ "%s:%d" ];\n  interval = "100ms";\n'
                    '  key_file = "%s/web1.key";\n};\n' % (pair.mon_ip, pair.port, tmp))
        procs.append(pair.start_in(pair.ag, ["agent", "-c", aconf], os.path.join(tmp, "ag.log")))
        pair.wait_all("alive", ["web1"], 20)

        r = doctor(pair, aconf, api)
        out = r.stdout.decode(errors="replace")
        check(r.returncode == 0 and "probe datagrams reach the monitor's UDP port" in out and
              "the monitor expects exactly this key of web1" in out, "doctor, all well:\n" + out)

        # The firewall: heartbeats (and the probe) are dropped; the API still answers.
        pair.set_loss(100)
        pair.wait_all("dead", ["web1"], 20)
        r = doctor(pair, aconf, api)
        out = r.stdout.decode(errors="replace")
        check(r.returncode == 1 and "did not reach the monitor's UDP port, and the node is not "
              "alive: a firewall" in out and "answers" in out, "doctor, firewalled:\n" + out)

        pair.set_loss(0)
        pair.wait_all("alive", ["web1"], 20)
        # The minute's drop table may hold nothing from this host yet: the probe is new.
        r = doctor(pair, aconf, api)
        out = r.stdout.decode(errors="replace")
        check(r.returncode == 0, "doctor, firewall lifted:\n" + out)

        # A reload across the link while the agent runs: the node stays alive.
        write_monitor_conf("3s")
        mon.send_signal(signal.SIGHUP)
        t0 = time.monotonic()
        log = os.path.join(tmp, "mon.log")
        while "configuration reloaded" not in open(log, errors="replace").read():
            check(time.monotonic() - t0 < 10, "no reload line:\n" + open(log).read()[-2000:])
            time.sleep(0.05)
        time.sleep(2)
        check(mon.poll() is None, "the monitor exited on SIGHUP")
        states = {n: v["state"] for n, v in pair.nodes().items()}
        check(states == {"web1": "alive"}, "after the reload: %r" % states)
    finally:
        stop_all(procs)
        pair.teardown()


if __name__ == "__main__":
    run_tests([test_doctor_across_namespaces])
