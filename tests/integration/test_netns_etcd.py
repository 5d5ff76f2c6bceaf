#!/usr/bin/env python3
"""Redundant monitors across a real (virtual) network, the leader cut off
from etcd by a firewall: it stops acting on its own, and the other takes over.

Four network namespaces joined by a bridge: etcd in one (the bridge's
address), each of two `vigil monitor` processes with monitor.etcd set in its
own, and the agents in the fourth. The monitors' APIs listen on loopback in
their namespaces and are read there. The hook appends "NODE STATE EPOCH
MONITOR" to one shared file, the list of actions that happened (as in
test_redundant.py). Lease TTL 3 s, heartbeats every 250 ms, dead after 1 s.

- One leader, the other follows at the same epoch; web1 comes up and the
  leader acts on it ('alive') once.
- nftables in the leader's namespace drops etcd's port both ways (the
  heartbeat port stays open). Within TTL (+ a margin) the leader's role is
  no longer "leader": it gives the lease up at its local deadline, before
  etcd could expire it, so before the other can take over. The other leads,
  at a higher epoch, within TTL + 2.5 s. Both times are printed.
- web1's agent is killed: both monitors convict it (the cut-off one goes on
  detecting), exactly one 'dead' action happens, by the new leader, none by
  the cut-off monitor, whose log says it knows no leader and its actions
  wait; its held event is counted in /v1/leader.
- The firewall is lifted: the old leader follows the new one at its epoch,
  and no action is added.

Needs root, ip, nft and etcd (a failure, not a skip, without them);
everything created is removed, namespaces by name and processes by pid.
"""
import base64
import json
import os
import shutil
import subprocess
import time

from netns_harness import sh, stop_all, usable
from vigil_harness import VIGIL, _procs, check, run_tests

TAG = "vge%d" % (os.getpid() % 100000)
NS_ETCD, NS_AG = TAG + "e", TAG + "g"
SUBNET = "10.213.15"
ETCD_IP, AG_IP = SUBNET + ".1", SUBNET + ".4"
ETCD_PORT = 2379
ETCD_URL = "http://%s:%d" % (ETCD_IP, ETCD_PORT)
MONS = {"mon-a": (TAG + "a", SUBNET + ".2"), "mon-b": (TAG + "b", SUBNET + ".3")}
PORT, API = 7946, "127.0.0.1:7947"
TTL = 3
STEPDOWN_MAX = TTL + 0.5
TAKEOVER_MAX = TTL + 2.5
PREFIX = "/vigil-test"

CONF = """
monitor = {
  listen = [ "%(ip)s:%(port)d" ];
  api = "%(api)s";
  insecure = true;
  heartbeat_interval = "250ms";
  detector = { type = "fixed"; dead_after = "1s"; };
  name = "%(name)s";
  etcd = { endpoints = [ "%(etcd)s" ]; ttl = "%(ttl)ds"; prefix = "%(prefix)s"; };
  hooks = ( { command = [ "%(hook)s", "%(name)s" ]; on = [ "dead", "alive" ];
              retries = 1; retry_delay = "1s"; timeout = "5s"; } );
};
"""

HOOK = """#!/bin/sh
echo "$VIGIL_NODE $VIGIL_NEW_STATE $VIGIL_EPOCH $1" >> "$(dirname "$0")/actions"
"""


def in_ns(ns, *args, **kw):
    return sh("ip", "netns", "exec", ns, *args, **kw)


def setup_net():
    """A bridge in etcd's namespace; one veth from it to each other namespace."""
    sh("ip", "netns", "add", NS_ETCD)
    in_ns(NS_ETCD, "ip", "link", "set", "lo", "up")
    in_ns(NS_ETCD, "ip", "link", "add", "br0", "type", "bridge")
    in_ns(NS_ETCD, "ip", "addr", "add", ETCD_IP + "/24", "dev", "br0")
    in_ns(NS_ETCD, "ip", "link", "set", "br0", "up")
    for i, (ns, ip) in enumerate([(NS_AG, AG_IP)] + list(MONS.values())):
        near, far = "%sx%d" % (TAG, i), "%sy%d" % (TAG, i)
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", near, "type", "veth", "peer", "name", far)
        sh("ip", "link", "set", near, "netns", NS_ETCD)
        sh("ip", "link", "set", far, "netns", ns)
        in_ns(NS_ETCD, "ip", "link", "set", near, "master", "br0")
        in_ns(NS_ETCD, "ip", "link", "set", near, "up")
        in_ns(ns, "ip", "addr", "add", ip + "/24", "dev", far)
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, "ip", "link", "set", far, "up")
    for ns, _ in MONS.values():
        in_ns(ns, "nft", "add", "table", "inet", "vigiltest")
        for chain, hook in (("input", "input"), ("output", "output")):
            in_ns(ns, "nft", "add", "chain", "inet", "vigiltest", chain,
                  "{ type filter hook %s priority 0 ; }" % hook)


def teardown_net():
    for ns in [NS_AG, NS_ETCD] + [ns for ns, _ in MONS.values()]:
        sh("ip", "netns", "del", ns, check_rc=False)


def cut_from_etcd(ns, cut):
    """Drops (or lets through again) the TCP traffic between ns and etcd's client port."""
    for chain in ("input", "output"):
        in_ns(ns, "nft", "flush", "chain", "inet", "vigiltest", chain)
    if cut:
        in_ns(ns, "nft", "add", "rule", "inet", "vigiltest", "output", "ip", "daddr", ETCD_IP,
              "tcp", "dport", str(ETCD_PORT), "drop")
        in_ns(ns, "nft", "add", "rule", "inet", "vigiltest", "input", "ip", "saddr", ETCD_IP,
              "tcp", "sport", str(ETCD_PORT), "drop")


def start_in(ns, argv, log):
    p = subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdout=open(log, "ab"),
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    _procs.append(p)
    return p


def etcd_call(path, body):
    r = in_ns(NS_ETCD, "curl", "-sf", "-m", "3", "-H", "Content-Type: application/json",
              "-d", json.dumps(body), ETCD_URL + path, check_rc=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def b64(s):
    return base64.b64encode(s.encode()).decode()


def start_etcd(tmp):
    exe = shutil.which("etcd")
    if not exe:
        raise AssertionError("etcd not found: run scripts/install-deps.sh (package etcd-server)")
    peer = "http://127.0.0.1:2380"
    p = start_in(NS_ETCD, [exe, "--name", "n1", "--data-dir", os.path.join(tmp, "etcd-data"),
                           "--listen-client-urls", ETCD_URL, "--advertise-client-urls", ETCD_URL,
                           "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                           "--initial-cluster", "n1=" + peer], os.path.join(tmp, "etcd.log"))
    wait_for(lambda: p.poll() is not None or etcd_call("/v3/kv/range", {"key": b64("x")}),
             20, "etcd to answer")
    check(p.poll() is None, "etcd exited:\n" + open(os.path.join(tmp, "etcd.log")).read()[-2000:])
    return p


def claim(node):
    r = etcd_call("/v3/kv/range", {"key": b64(PREFIX + "/actions/" + node)})
    kvs = (r or {}).get("kvs", [])
    return json.loads(base64.b64decode(kvs[0]["value"])) if kvs else None


class NsMonitor:
    """A vigil monitor in its own namespace; its API read with curl there."""

    def __init__(self, tmp, name, hook):
        self.name = name
        self.ns, self.ip = MONS[name]
        d = os.path.join(tmp, name)
        os.mkdir(d)
        self.conf = os.path.join(d, "monitor.conf")
        with open(self.conf, "w") as f:
            f.write(CONF % {"ip": self.ip, "port": PORT, "api": API, "name": name,
                            "etcd": ETCD_URL, "ttl": TTL, "prefix": PREFIX, "hook": hook})
        self.log = os.path.join(d, "monitor.log")
        self.proc = start_in(self.ns, [VIGIL, "monitor", "-c", self.conf], self.log)
        wait_for(lambda: self.proc.poll() is not None or self.get("/v1/health"), 15,
                 "%s's API" % name)
        check(self.proc.poll() is None, "%s exited:\n%s" % (name, self.read_log()))

    @property
    def addr(self):
        return "%s:%d" % (self.ip, PORT)

    def get(self, path):
        """The API's JSON answer, or None (no answer, or an error status)."""
        r = in_ns(self.ns, "curl", "-sf", "-m", "2", "http://%s%s" % (API, path), check_rc=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def leader(self):
        return self.get("/v1/leader") or {}

    def state(self, node):
        return (self.get("/v1/nodes/" + node) or {}).get("state")

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def wait_for(cond, timeout, what, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def leader_of(mons):
    """The name of the one monitor that leads, once every other follows it at its epoch."""
    views = {n: m.leader() for n, m in mons.items()}
    leaders = [n for n, v in views.items() if v.get("role") == "leader"]
    if len(leaders) != 1:
        return None
    e = views[leaders[0]]["epoch"]
    for n, v in views.items():
        if n != leaders[0] and (v.get("role") != "follower" or v.get("leader") != leaders[0] or
                                v.get("epoch") != e):
            return None
    return leaders[0]


def actions(tmp):
    """The actions that happened for the web nodes (each monitor also acts on its own "etcd")."""
    try:
        with open(os.path.join(tmp, "actions")) as f:
            return [a for a in (l.split() for l in f if l.strip()) if a[0].startswith("web")]
    except FileNotFoundError:
        return []


def both_see(mons, node, state, timeout):
    for m in mons.values():
        wait_for(lambda: m.state(node) == state, timeout, "%s to see %s %s" % (m.name, node, state))


def test_leader_cut_from_etcd(tmp):
    if not usable():
        raise AssertionError("needs root, ip and nft (the test suite runs as root)")
    procs, etcd = [], None
    try:
        setup_net()
        etcd = start_etcd(tmp)
        hook = os.path.join(tmp, "hook.sh")
        with open(hook, "w") as f:
            f.write(HOOK)
        os.chmod(hook, 0o755)
        mons = {n: NsMonitor(tmp, n, hook) for n in MONS}
        procs += [m.proc for m in mons.values()]
        lead = wait_for(lambda: leader_of(mons), 15, "one leader among two")
        other = "mon-b" if lead == "mon-a" else "mon-a"
        e1 = mons[lead].leader()["epoch"]
        argv = [VIGIL, "agent", "--id", "web1", "--interval", "250ms"]
        for m in mons.values():
            argv += ["--monitor", m.addr]
        web1 = start_in(NS_AG, argv, os.path.join(tmp, "agent-web1.log"))
        procs.append(web1)
        both_see(mons, "web1", "alive", 10)
        wait_for(lambda: ["web1", "alive", str(e1), lead] in actions(tmp), 5,
                 "the leader's 'alive' action")
        time.sleep(1)
        check(actions(tmp) == [["web1", "alive", str(e1), lead]], "actions: %s" % actions(tmp))

        # The firewall: the leader no longer reaches etcd; heartbeats still arrive.
        log_at = len(mons[lead].read_log())
        t_cut = time.monotonic()
        cut_from_etcd(mons[lead].ns, True)
        wait_for(lambda: mons[lead].leader().get("role") not in (None, "leader"),
                 STEPDOWN_MAX + 1, "%s to stop leading" % lead)
        stepdown = time.monotonic() - t_cut
        # Its lease is still alive at etcd: nobody else can lead yet.
        check(mons[other].leader().get("role") != "leader",
              "%s led before %s stepped down" % (other, lead))
        wait_for(lambda: mons[other].leader().get("role") == "leader", TAKEOVER_MAX + 2,
                 "%s to take over" % other)
        takeover = time.monotonic() - t_cut
        e2 = mons[other].leader()["epoch"]
        view = mons[lead].leader()
        print("  %s cut from etcd: it stepped down after %.2f s (role %s), %s leads at epoch %d "
              "after %.2f s (TTL %d s)" % (lead, stepdown, view.get("role"), other, e2, takeover,
                                           TTL), flush=True)
        check(stepdown <= STEPDOWN_MAX, "step-down took %.2f s" % stepdown)
        check(takeover <= TAKEOVER_MAX, "takeover took %.2f s" % takeover)
        check(e2 > e1, "the epoch grew: %d -> %d" % (e1, e2))
        check(mons[lead].state("web1") == "alive", "web1 at the cut-off monitor: %s" %
              mons[lead].state("web1"))

        # A node dies: both detect it, only the new leader acts.
        web1.kill()
        both_see(mons, "web1", "dead", 10)
        wait_for(lambda: ["web1", "dead", str(e2), other] in actions(tmp), 5,
                 "the new leader's 'dead' action")
        time.sleep(2)  # the cut-off monitor would have acted by now, if it were to
        acts = actions(tmp)
        check(acts == [["web1", "alive", str(e1), lead], ["web1", "dead", str(e2), other]],
              "actions while %s is cut off: %s" % (lead, acts))
        c = claim("web1")
        check(c and c["state"] == "dead" and c["done"] and c["by"] == other and c["epoch"] == e2,
              "the claim in etcd: %s" % c)
        view = mons[lead].leader()
        check(view.get("role") == "none", "the cut-off monitor's view: %s" % view)
        check(view.get("actions", {}).get("held", 0) >= 1,
              "the cut-off monitor holds no event: %s" % view)
        log = mons[lead].read_log()[log_at:]
        check("leadership: %s knows no leader" % lead in log and
              "actions wait for a leader" in log, "%s's log:\n%s" % (lead, log[-3000:]))
        check("leadership: %s leads" % other in mons[other].read_log(),
              "%s's log:\n%s" % (other, mons[other].read_log()[-3000:]))

        # The firewall is lifted: the old leader follows the new one, and does not act.
        t_heal = time.monotonic()
        cut_from_etcd(mons[lead].ns, False)
        wait_for(lambda: leader_of(mons) == other, TTL + 5, "%s to follow %s" % (lead, other))
        print("  partition healed: %s follows %s at epoch %d after %.2f s; held: %d" % (
            lead, other, mons[lead].leader()["epoch"], time.monotonic() - t_heal,
            mons[lead].leader()["actions"]["held"]), flush=True)
        time.sleep(2)
        check(leader_of(mons) == other, "the election changed after the heal: %s" %
              {n: m.leader() for n, m in mons.items()})
        acts = actions(tmp)
        check(acts == [["web1", "alive", str(e1), lead], ["web1", "dead", str(e2), other]],
              "actions after the heal: %s" % acts)
        for n, m in mons.items():
            log = m.read_log()
            check("Sanitizer" not in log and "runtime error" not in log,
                  "%s reported:\n%s" % (n, log[-3000:]))
    finally:
        stop_all(procs)  # the monitors before etcd: they do not lose it on the way out
        if etcd:
            stop_all([etcd])
        teardown_net()


if __name__ == "__main__":
    run_tests([test_leader_cut_from_etcd])
