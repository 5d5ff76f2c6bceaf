#!/usr/bin/env python3
"""Redundant monitors led through a real etcd: only the leader acts, once.

Two (or three) `vigil monitor` processes with monitor.etcd set, a real etcd
on loopback (Debian's etcd-server, as test_leader.py starts it), and agents
that send to every monitor. Every monitor detects; only the leader runs the
hook, after claiming the action in etcd under its epoch (actgate.h). The
hook appends "NODE STATE EPOCH MONITOR" to one file shared by the monitors,
so the file is the list of actions that happened. Lease TTL 3 s.

- One leader, the other follows at the same epoch; a node killed gives
  exactly one "dead" action, by the leader, and its return one "alive".
  SIGKILL the leader and a node together: the follower takes over within
  TTL + 2.5 s, then acts on the node's death (held while nobody led), once.
- SIGSTOP the leader while its hook waits for a retry; the follower takes
  over, finds the claim unfinished and acts itself. SIGCONT the old leader:
  its retry is put off (it no longer leads). Exactly one successful action,
  by the new leader.
- SIGSTOP the leader in the middle of a claim (a proxy between it and etcd
  holds the answer to its read of the claim); the follower takes over and
  acts. SIGCONT the old leader: the held answer arrives, it goes on with the
  claim under its old epoch, and etcd refuses it (the fence). Exactly one
  action, by the new leader.
- SIGTERM the leader: it revokes its lease, the follower leads within a poll
  period, and the old leader exits 0.
- A three-member etcd: SIGKILL the member that leads etcd's own cluster,
  which the monitors talk to first: the monitors' leader and epoch stay
  (default TTL), and the next action happens once, through the others.

etcd missing is a failure, not a skip (scripts/install-deps.sh installs it).
"""
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import vigil_harness
from vigil_harness import Monitor, agent, check, free_port, run_tests, stop
from test_leader import Etcd, b64, wait_for

TTL = 3
TAKEOVER_MAX = TTL + 2.5
PREFIX = "/vigil-test"

CONF = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  insecure = true;
  heartbeat_interval = "250ms";
  detector = { type = "fixed"; dead_after = "1s"; };
  name = "%(name)s";
  etcd = { endpoints = [ %(endpoints)s ]; ttl = "%(ttl)ds"; prefix = "%(prefix)s"; };
  peers = [ %(peers)s ];
  hooks = ( { command = [ "%(hook)s", "%(name)s" ]; on = [ "dead", "alive" ];
              retries = 1; retry_delay = "%(retry)s"; timeout = "5s"; } );
};
"""

# For a web node, fails while the file "fail" exists; else appends the action to the shared file.
HOOK = """#!/bin/sh
d="$(dirname "$0")"
if [ -e "$d/fail" ] && [ "${VIGIL_NODE#web}" != "$VIGIL_NODE" ]; then
  echo "$VIGIL_NODE $VIGIL_NEW_STATE $VIGIL_EPOCH $1 failed" >> "$d/attempts"
  exit 1
fi
echo "$VIGIL_NODE $VIGIL_NEW_STATE $VIGIL_EPOCH $1" >> "$d/actions"
"""


def setup(tmp, etcd_urls, names, retry="1s", ttl=TTL):
    hook = os.path.join(tmp, "hook.sh")
    with open(hook, "w") as f:
        f.write(HOOK)
    os.chmod(hook, 0o755)
    mons = {}
    ports = {name: free_port() for name in names}
    for name in names:
        d = os.path.join(tmp, name)
        os.mkdir(d)
        peers = ", ".join('"127.0.0.1:%d"' % p for n, p in ports.items() if n != name)
        conf = CONF % {"name": name, "endpoints": ", ".join('"%s"' % u for u in etcd_urls),
                       "ttl": ttl, "prefix": PREFIX, "hook": hook, "retry": retry,
                       "peers": peers}
        mons[name] = Monitor(d, conf, port=ports[name])
    return mons


def actions(tmp, name="actions", all_nodes=False):
    """The actions that happened, of the web nodes (all_nodes: of the monitors and etcd too)."""
    try:
        with open(os.path.join(tmp, name)) as f:
            acts = [l.split() for l in f if l.strip()]
    except FileNotFoundError:
        return []
    return acts if all_nodes else [a for a in acts if a[0].startswith("web")]


def leader_of(mons):
    """The name of the one monitor that leads, once every other follows it at its epoch."""
    views = {}
    for n, m in mons.items():
        try:
            views[n] = m.get("/v1/leader", timeout=2)
        except OSError:
            return None
    leaders = [n for n, v in views.items() if v["role"] == "leader"]
    if len(leaders) != 1:
        return None
    e = views[leaders[0]]["epoch"]
    for n, v in views.items():
        if n != leaders[0] and (v["role"] != "follower" or v["leader"] != leaders[0] or
                                v["epoch"] != e):
            return None
    return leaders[0]


def agents_to(mons, tmp, node):
    extra = []
    for m in mons.values():
        extra += ["--monitor", m.addr]
    first = list(mons.values())[0]
    return agent(first.addr, node, tmp, extra=extra[2:])


def both_see(mons, node, state, timeout):
    for m in mons.values():
        m.wait_state(node, [state], timeout)


def check_clean(mons):
    for n, m in mons.items():
        log = m.read_log()
        check("Sanitizer" not in log and "runtime error" not in log,
              "%s reported:\n%s" % (n, log[-3000:]))


def claim(etcd, node):
    v = etcd.get(PREFIX + "/actions/" + node)
    return json.loads(v) if v else None


def test_leader_acts_once_and_follower_takes_over(tmp):
    etcd = Etcd()
    try:
        mons = setup(tmp, [etcd.url], ["mon-a", "mon-b"])
        lead = wait_for(lambda: leader_of(mons), 15, "one leader among two")
        epoch = mons[lead].get("/v1/leader")["epoch"]
        other = "mon-b" if lead == "mon-a" else "mon-a"
        # The monitoring layer is watched like any node: each monitor sees the other, and etcd.
        for n, m in mons.items():
            o = "mon-b" if n == "mon-a" else "mon-a"
            m.wait_state(o, ["alive"], 10)
            m.wait_state("etcd", ["alive"], 10)
        # Each monitor says who leads in its event history too.
        for n, m in mons.items():
            lev = [e for e in m.events() if e["type"] == "leader"]
            check(lev and lev[-1]["leader"] == lead and lev[-1]["epoch"] == epoch,
                  "%s's leader events: %s" % (n, lev))
        web1 = agents_to(mons, tmp, "web1")
        web2 = agents_to(mons, tmp, "web2")
        both_see(mons, "web1", "alive", 10)
        both_see(mons, "web2", "alive", 10)
        wait_for(lambda: len(actions(tmp)) >= 2, 5, "the two 'alive' actions")

        web1.kill()
        both_see(mons, "web1", "dead", 10)
        wait_for(lambda: ["web1", "dead", str(epoch), lead] in actions(tmp), 5,
                 "the leader's 'dead' action")
        time.sleep(1.5)  # the follower would have acted by now, if it were to
        acts = actions(tmp)
        check(acts.count(["web1", "dead", str(epoch), lead]) == 1 and
              len([a for a in acts if a[:2] == ["web1", "dead"]]) == 1,
              "one 'dead' action for web1, by %s: %s" % (lead, acts))
        check(all(a[3] == lead for a in acts), "only the leader acted: %s" % acts)
        c = claim(etcd, "web1")
        check(c and c["state"] == "dead" and c["done"] and c["by"] == lead and c["epoch"] == epoch,
              "the claim in etcd: %s" % c)

        # The leader and a node die together: the follower holds the node's
        # death until it leads, then acts on it.
        n_before = len(actions(tmp))
        t_kill = time.monotonic()
        mons[lead].proc.kill()
        web2.kill()
        wait_for(lambda: mons[other].get("/v1/leader")["role"] == "leader", TAKEOVER_MAX + 2,
                 "%s to take over" % other)
        takeover = time.monotonic() - t_kill
        epoch2 = mons[other].get("/v1/leader")["epoch"]
        print("  SIGKILL of %s: %s leads at epoch %d after %.2f s (TTL %d s)" %
              (lead, other, epoch2, takeover, TTL), flush=True)
        check(takeover <= TAKEOVER_MAX, "takeover took %.2f s" % takeover)
        check(epoch2 > epoch, "the epoch grew: %d -> %d" % (epoch, epoch2))
        wait_for(lambda: ["web2", "dead", str(epoch2), other] in actions(tmp), 5,
                 "the new leader's 'dead' action for web2")
        time.sleep(1)
        new = actions(tmp)[n_before:]
        check(new == [["web2", "dead", str(epoch2), other]], "actions after the takeover: %s" % new)
        # The dead monitor is a dead node on the survivor, with its event and its action.
        mons[other].wait_state(lead, ["dead"], 10)
        wait_for(lambda: [lead, "dead", str(epoch2), other] in actions(tmp, all_nodes=True), 5,
                 "the action for the dead monitor")
        lev = [e for e in mons[other].events() if e["type"] == "leader"]
        check(lev[-1]["leader"] == other and lev[-1]["epoch"] == epoch2 and
              "no leader" in lev[-2]["reason"], "%s's leader events: %s" % (other, lev[-3:]))
        check_clean({other: mons[other]})
    finally:
        etcd.stop()


def test_stopped_leader_puts_off_its_retry(tmp):
    etcd = Etcd()
    try:
        # The hook's retry waits 6 s: the leader is stopped during that wait.
        mons = setup(tmp, [etcd.url], ["mon-a", "mon-b"], retry="6s")
        lead = wait_for(lambda: leader_of(mons), 15, "one leader among two")
        e1 = mons[lead].get("/v1/leader")["epoch"]
        other = "mon-b" if lead == "mon-a" else "mon-a"
        web1 = agents_to(mons, tmp, "web1")
        both_see(mons, "web1", "alive", 10)
        wait_for(lambda: ["web1", "alive", str(e1), lead] in actions(tmp), 5, "'alive' action")

        open(os.path.join(tmp, "fail"), "w").close()
        web1.kill()
        wait_for(lambda: re.search(r"\(web1\): exit 1 .*retry 1 of 1", mons[lead].read_log()), 10,
                 "the leader's first run for web1 to fail")
        mons[lead].proc.send_signal(signal.SIGSTOP)
        t_stop = time.monotonic()
        os.unlink(os.path.join(tmp, "fail"))
        wait_for(lambda: mons[other].get("/v1/leader")["role"] == "leader", TAKEOVER_MAX + 2,
                 "%s to take over" % other)
        e2 = mons[other].get("/v1/leader")["epoch"]
        print("  SIGSTOP of %s: %s leads at epoch %d after %.2f s" %
              (lead, other, e2, time.monotonic() - t_stop), flush=True)
        wait_for(lambda: ["web1", "dead", str(e2), other] in actions(tmp), 5,
                 "the new leader to act on the unfinished claim")
        check("not finished: acting again" in mons[other].read_log(),
              "the new leader's log:\n" + mons[other].read_log()[-2000:])
        wait_for(lambda: (claim(etcd, "web1") or {}).get("done"), 5, "the claim marked done")

        t_cont = time.monotonic()
        mons[lead].proc.send_signal(signal.SIGCONT)
        wait_for(lambda: "retry put off" in mons[lead].read_log(), 8,
                 "the old leader to put its retry off")
        print("  SIGCONT: %s put its retry off after %.2f s" %
              (lead, time.monotonic() - t_cont), flush=True)
        time.sleep(1)
        acts = [a for a in actions(tmp) if a[:2] == ["web1", "dead"]]
        check(acts == [["web1", "dead", str(e2), other]], "successful 'dead' actions: %s" % acts)
        c = claim(etcd, "web1")
        check(c["by"] == other and c["epoch"] == e2 and c["done"] and c["ok"],
              "the claim after the old leader came back: %s" % c)
        wait_for(lambda: leader_of(mons) == other, TTL + 3, "the old leader to follow")
        check_clean(mons)
    finally:
        etcd.stop()


class HoldingProxy:
    """An HTTP proxy to etcd for one monitor, that can hold the answers to its claims' reads.

    Each connection is served by a thread: a request is read whole (headers
    and Content-Length body), sent to etcd, and etcd's answer passed back,
    unless it is the read of a claim (a range of a key under PREFIX/actions/)
    while hold is set: that answer waits until release().
    """

    def __init__(self, target):
        self.target = target  # "http://127.0.0.1:PORT"
        self.hold = threading.Event()
        self.released = threading.Event()
        self.held = threading.Event()  # an answer is being held
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        f = c.makefile("rb")
        try:
            for _ in range(100000):
                line = f.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                length = 0
                while True:
                    h = f.readline().decode()
                    if h in ("\r\n", "\n", ""):
                        break
                    if h.lower().startswith("content-length:"):
                        length = int(h.split(":", 1)[1])
                body = f.read(length) if length else b""
                req = urllib.request.Request(self.target + path, data=body, method=method,
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    answer = r.read()
                    status = r.status
                if path == "/v3/kv/range" and self.hold.is_set():
                    key = base64.b64decode(json.loads(body)["key"]).decode()
                    if key.startswith(PREFIX + "/actions/"):
                        self.held.set()
                        self.released.wait(60)
                c.sendall(b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % (status, len(answer)) + answer)
        except (OSError, ValueError):
            return
        finally:
            c.close()

    def release(self):
        self.released.set()

    def stop(self):
        self.stopped = True
        self.released.set()
        self.sock.close()


def test_stopped_leader_is_fenced(tmp):
    """The leader stops with a claim under way; after the takeover, etcd refuses its write."""
    etcd = Etcd()
    proxy = HoldingProxy(etcd.url)
    try:
        hook = os.path.join(tmp, "hook.sh")
        with open(hook, "w") as f:
            f.write(HOOK)
        os.chmod(hook, 0o755)
        mons = {}
        # mon-a talks to etcd through the proxy; mon-b directly. mon-a starts first, to lead.
        for name, url in (("mon-a", proxy.url), ("mon-b", etcd.url)):
            d = os.path.join(tmp, name)
            os.mkdir(d)
            mons[name] = Monitor(d, CONF % {"name": name, "endpoints": '"%s"' % url, "ttl": TTL,
                                            "prefix": PREFIX, "hook": hook, "retry": "1s",
                                            "peers": ""})
            if name == "mon-a":
                wait_for(lambda: mons["mon-a"].get("/v1/leader")["role"] == "leader", 15,
                         "mon-a to lead")
        wait_for(lambda: leader_of(mons) == "mon-a", 15, "mon-b to follow mon-a")
        e1 = mons["mon-a"].get("/v1/leader")["epoch"]
        web1 = agents_to(mons, tmp, "web1")
        both_see(mons, "web1", "alive", 10)
        wait_for(lambda: ["web1", "alive", str(e1), "mon-a"] in actions(tmp), 5, "'alive' action")

        # web1 dies; mon-a reads its claim, and the answer is held while mon-a is stopped.
        proxy.hold.set()
        web1.kill()
        wait_for(lambda: proxy.held.is_set(), 10, "mon-a to read web1's claim")
        mons["mon-a"].proc.send_signal(signal.SIGSTOP)
        t_stop = time.monotonic()
        wait_for(lambda: mons["mon-b"].get("/v1/leader")["role"] == "leader", TAKEOVER_MAX + 2,
                 "mon-b to take over")
        e2 = mons["mon-b"].get("/v1/leader")["epoch"]
        print("  SIGSTOP of mon-a with a claim under way: mon-b leads at epoch %d after %.2f s" %
              (e2, time.monotonic() - t_stop), flush=True)
        # The held answer reaches mon-a as it runs again, within the time it waits for it (two
        # leases): it goes on with its claim under its old epoch, and etcd refuses it.
        proxy.hold.clear()
        proxy.release()
        time.sleep(0.3)  # the answer is in mon-a's socket before it runs again
        mons["mon-a"].proc.send_signal(signal.SIGCONT)
        wait_for(lambda: "refused by etcd: epoch %d no longer leads" % e1 in
                 mons["mon-a"].read_log(), 8, "etcd to refuse mon-a's claim")
        print("  SIGCONT: etcd refused mon-a's claim under epoch %d" % e1, flush=True)
        wait_for(lambda: ["web1", "dead", str(e2), "mon-b"] in actions(tmp), 5,
                 "mon-b to act on web1's death")
        wait_for(lambda: (claim(etcd, "web1") or {}).get("done"), 5, "the claim marked done")
        time.sleep(1.5)
        acts = [a for a in actions(tmp) if a[:2] == ["web1", "dead"]]
        check(acts == [["web1", "dead", str(e2), "mon-b"]], "'dead' actions: %s" % acts)
        c = claim(etcd, "web1")
        check(c["by"] == "mon-b" and c["epoch"] == e2 and c["done"],
              "the claim after mon-a came back: %s" % c)
        check(mons["mon-a"].get("/v1/leader")["actions"]["fenced"] >= 1, "mon-a's fenced count")
        wait_for(lambda: leader_of(mons) == "mon-b", TTL + 3, "mon-a to follow mon-b")
        check_clean(mons)
    finally:
        proxy.stop()
        etcd.stop()


def test_sigterm_hands_over(tmp):
    etcd = Etcd()
    try:
        mons = setup(tmp, [etcd.url], ["mon-a", "mon-b"])
        lead = wait_for(lambda: leader_of(mons), 15, "one leader among two")
        other = "mon-b" if lead == "mon-a" else "mon-a"
        t = time.monotonic()
        mons[lead].proc.send_signal(signal.SIGTERM)
        wait_for(lambda: mons[other].get("/v1/leader")["role"] == "leader", TTL + 2,
                 "%s to take over" % other)
        took = time.monotonic() - t
        print("  SIGTERM of %s: %s leads after %.2f s" % (lead, other, took), flush=True)
        check(took < TTL / 3 + 1.5, "takeover after SIGTERM took %.2f s" % took)
        check(mons[lead].proc.wait(timeout=5) == 0, "exit status of the old leader")
        check_clean(mons)
    finally:
        etcd.stop()


class EtcdCluster:
    """Three etcd members on loopback; stop() kills them by pid and removes their data."""

    def __init__(self, n=3):
        exe = shutil.which("etcd")
        if not exe:
            raise AssertionError("etcd not found: run scripts/install-deps.sh (package etcd-server)")
        self.dir = tempfile.mkdtemp(prefix="vigil-etcd3-")
        names = ["m%d" % i for i in range(n)]
        clients = ["http://127.0.0.1:%d" % free_port(socket.SOCK_STREAM) for _ in names]
        peers = ["http://127.0.0.1:%d" % free_port(socket.SOCK_STREAM) for _ in names]
        cluster = ",".join("%s=%s" % (nm, p) for nm, p in zip(names, peers))
        self.urls = clients
        self.procs = []
        self.log = open(os.path.join(self.dir, "etcd.log"), "wb")
        for nm, c, p in zip(names, clients, peers):
            self.procs.append(subprocess.Popen(
                [exe, "--name", nm, "--data-dir", os.path.join(self.dir, nm),
                 "--listen-client-urls", c, "--advertise-client-urls", c,
                 "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
                 "--initial-cluster", cluster, "--initial-cluster-state", "new"],
                stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        deadline = time.monotonic() + 30
        for u in clients:
            while True:
                try:
                    self.call(u, "/v3/kv/put", {"key": b64("ready"), "value": b64("1")})
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise AssertionError("the etcd cluster did not start")
                    time.sleep(0.2)

    def call(self, url, path, body):
        req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def raft_leader(self):
        """The index of the member that leads etcd's own (raft) cluster."""
        for i, u in enumerate(self.urls):
            st = self.call(u, "/v3/maintenance/status", {})
            if st.get("leader") and st["leader"] == st["header"]["member_id"]:
                return i
        raise AssertionError("no etcd member leads")

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_three_member_etcd_loses_one(tmp):
    cl = EtcdCluster(3)
    try:
        # The member the monitors talk to first is the one that leads etcd's
        # own cluster: losing it costs an election inside etcd (about its
        # election timeout, 1 s) on top of the move to another member. The
        # default TTL.
        k = wait_for(lambda: cl.raft_leader() + 1, 10, "etcd to elect a leader") - 1
        urls = [cl.urls[k]] + [u for i, u in enumerate(cl.urls) if i != k]
        mons = setup(tmp, urls, ["mon-a", "mon-b"], ttl=5)
        lead = wait_for(lambda: leader_of(mons), 20, "one leader among two")
        epoch = mons[lead].get("/v1/leader")["epoch"]
        web1 = agents_to(mons, tmp, "web1")
        both_see(mons, "web1", "alive", 10)
        wait_for(lambda: ["web1", "alive", str(epoch), lead] in actions(tmp), 5, "'alive' action")

        # The member both monitors talk to first goes: they move to the next.
        cl.procs[k].kill()
        cl.procs[k].wait(timeout=10)
        t_end = time.monotonic() + 2 * 5
        while time.monotonic() < t_end:
            check(leader_of(mons) == lead, "the election changed after losing one member of "
                  "three: %s" % {n: m.get("/v1/leader") for n, m in mons.items()})
            time.sleep(0.2)
        check(mons[lead].get("/v1/leader")["epoch"] == epoch, "the epoch changed")
        web1.kill()
        both_see(mons, "web1", "dead", 10)
        wait_for(lambda: ["web1", "dead", str(epoch), lead] in actions(tmp), 8,
                 "the leader's 'dead' action through the remaining members")
        time.sleep(1)
        acts = [a for a in actions(tmp) if a[:2] == ["web1", "dead"]]
        check(len(acts) == 1, "one 'dead' action: %s" % acts)
        for n, m in mons.items():
            ep = m.get("/v1/leader")["endpoint"]
            check(ep != cl.urls[k], "%s still talks to the dead member %s" % (n, ep))
        check_clean(mons)
    finally:
        cl.stop()


if __name__ == "__main__":
    run_tests([test_leader_acts_once_and_follower_takes_over,
               test_stopped_leader_puts_off_its_retry, test_stopped_leader_is_fenced,
               test_sigterm_hands_over, test_three_member_etcd_loses_one])
