"""Helpers for tests (and benchmarks) across a real virtual network: two
network namespaces joined by a veth pair, one for the monitor and one for
the agents, with datagram loss made by nftables in the monitor's namespace.

Needs root, ip and nft. Every name carries a tag made from the pid, so runs
side by side do not collide; everything created is removed by teardown().
"""
import json
import os
import shutil
import subprocess
import time

from vigil_harness import VIGIL, _procs


def sh(*args, check_rc=True, timeout=20):
    r = subprocess.run(list(args), capture_output=True, timeout=timeout)
    if check_rc and r.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
    return r


def usable():
    """True if this process can make namespaces and nftables rules."""
    return os.geteuid() == 0 and shutil.which("nft") and shutil.which("ip")


class NetPair:
    """The monitor's namespace (mon) and the agents' (ag), joined by a veth pair."""

    def __init__(self, tag, subnet="10.213.9", port=7946, api="127.0.0.1:7947"):
        self.tag = tag
        self.mon, self.ag = tag + "m", tag + "a"
        self.mon_ip, self.ag_ip = subnet + ".1", subnet + ".2"
        self.port, self.api = port, api

    def in_ns(self, ns, *args, **kw):
        return sh("ip", "netns", "exec", ns, *args, **kw)

    def setup(self):
        t = self.tag
        sh("ip", "netns", "add", self.mon)
        sh("ip", "netns", "add", self.ag)
        sh("ip", "link", "add", t + "x", "type", "veth", "peer", "name", t + "y")
        sh("ip", "link", "set", t + "x", "netns", self.mon)
        sh("ip", "link", "set", t + "y", "netns", self.ag)
        self.in_ns(self.mon, "ip", "addr", "add", self.mon_ip + "/24", "dev", t + "x")
        self.in_ns(self.ag, "ip", "addr", "add", self.ag_ip + "/24", "dev", t + "y")
        for ns, dev in ((self.mon, t + "x"), (self.ag, t + "y")):
            self.in_ns(ns, "ip", "link", "set", "lo", "up")
            self.in_ns(ns, "ip", "link", "set", dev, "up")
        self.in_ns(self.mon, "nft", "add", "table", "inet", "vigiltest")
        self.in_ns(self.mon, "nft", "add", "chain", "inet", "vigiltest", "input",
                   "{ type filter hook input priority 0 ; }")

    def teardown(self):
        for ns in (self.mon, self.ag):
            sh("ip", "netns", "del", ns, check_rc=False)

    def set_loss(self, percent):
        """Drops this share of the heartbeats that reach the monitor's namespace."""
        self.in_ns(self.mon, "nft", "flush", "chain", "inet", "vigiltest", "input")
        if percent >= 100:
            self.in_ns(self.mon, "nft", "add", "rule", "inet", "vigiltest", "input", "udp",
                       "dport", str(self.port), "drop")
        elif percent > 0:
            self.in_ns(self.mon, "nft", "add", "rule", "inet", "vigiltest", "input", "udp",
                       "dport", str(self.port), "numgen", "random", "mod", "100", "<",
                       str(percent), "drop")

    def start_in(self, ns, args, log):
        p = subprocess.Popen(["ip", "netns", "exec", ns, VIGIL] + args, stdout=open(log, "ab"),
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _procs.append(p)
        return p

    def start_monitor(self, log, extra=()):
        return self.start_in(self.mon, ["monitor", "--insecure",
                                        "--listen", "%s:%d" % (self.mon_ip, self.port),
                                        "--api", self.api] + list(extra), log)

    def start_agent(self, node, interval, log, extra=()):
        return self.start_in(self.ag, ["agent", "--id", node, "--monitor",
                                       "%s:%d" % (self.mon_ip, self.port), "--interval",
                                       interval] + list(extra), log)

    def nodes(self):
        r = self.in_ns(self.mon, VIGIL, "status", "--api", self.api, "--json")
        return {n["id"]: n for n in json.loads(r.stdout)["nodes"]}

    def events(self):
        r = self.in_ns(self.mon, VIGIL, "events", "--api", self.api, "--since", "0", "--limit",
                       "10000", "--json")
        return json.loads(r.stdout)["events"]

    def health(self):
        r = self.in_ns(self.mon, "curl", "-s", "http://%s/v1/health" % self.api)
        return json.loads(r.stdout)

    def wait_all(self, state, names, timeout, poll=0.1):
        """Waits until every node of names is in state; returns the seconds it took."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                ns = self.nodes()
                if all(ns.get(n, {}).get("state") == state for n in names):
                    return time.monotonic() - t0
            except (AssertionError, ValueError, subprocess.TimeoutExpired):
                pass
            time.sleep(poll)
        raise AssertionError("not all %s within %.0fs: %r" % (state, timeout, {
            n: v["state"] for n, v in self.nodes().items()}))


def stop_all(procs):
    """Stops the given processes: TERM, then KILL after 5 s."""
    for p in list(procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def median(xs):
    s = sorted(xs)
    n = len(s)
    return (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2) if n else float("nan")


class NetBridge:
    """n member namespaces (tag + "1" to tag + "n") on one bridge, which lives in a namespace
    of its own (tag + "b"), each joined to it by a veth pair. Member i has subnet + ".i" (/24)
    on its end, named tag + "e" + i; the addresses exist inside the namespaces only. Each
    member namespace has an nftables input chain for cutting the network (cut(), heal())."""

    def __init__(self, tag, n, subnet="10.213.20"):
        self.tag, self.n = tag, n
        self.br = tag + "b"
        self.names = [tag + str(i) for i in range(1, n + 1)]
        self.ips = ["%s.%d" % (subnet, i) for i in range(1, n + 1)]

    def in_ns(self, ns, *args, **kw):
        return sh("ip", "netns", "exec", ns, *args, **kw)

    def setup(self):
        t = self.tag
        sh("ip", "netns", "add", self.br)
        self.in_ns(self.br, "ip", "link", "set", "lo", "up")
        self.in_ns(self.br, "ip", "link", "add", t + "br", "type", "bridge")
        self.in_ns(self.br, "ip", "link", "set", t + "br", "up")
        for i, (ns, ip) in enumerate(zip(self.names, self.ips), 1):
            dev, port = "%se%d" % (t, i), "%sp%d" % (t, i)
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", dev, "netns", ns, "type", "veth", "peer", "name", port,
               "netns", self.br)
            self.in_ns(self.br, "ip", "link", "set", port, "master", t + "br")
            self.in_ns(self.br, "ip", "link", "set", port, "up")
            self.in_ns(ns, "ip", "addr", "add", ip + "/24", "dev", dev)
            self.in_ns(ns, "ip", "link", "set", "lo", "up")
            self.in_ns(ns, "ip", "link", "set", dev, "up")
            self.in_ns(ns, "nft", "add", "table", "inet", "vigiltest")
            self.in_ns(ns, "nft", "add", "chain", "inet", "vigiltest", "input",
                       "{ type filter hook input priority 0 ; }")

    def teardown(self):
        for ns in self.names + [self.br]:
            sh("ip", "netns", "del", ns, check_rc=False)

    def cut(self, *sides):
        """A partition: members (indexes from 0) of different sides exchange no packets.
        Each member drops, in its input chain, whatever comes from the other sides."""
        for side in sides:
            others = [self.ips[j] for s in sides if s is not side for j in s]
            for i in side:
                self.in_ns(self.names[i], "nft", "add", "rule", "inet", "vigiltest", "input",
                           "ip", "saddr", "{ %s }" % ", ".join(others), "drop")

    def heal(self):
        for ns in self.names:
            self.in_ns(ns, "nft", "flush", "chain", "inet", "vigiltest", "input")

    def start_in(self, i, args, log):
        """`vigil ARGS` in member i's namespace (ip netns exec execs it: the pid is vigil's)."""
        p = subprocess.Popen(["ip", "netns", "exec", self.names[i], VIGIL] + args,
                             stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        _procs.append(p)
        return p

    def get(self, i, url, timeout=5):
        """GET url from inside member i's namespace (its own loopback), as JSON."""
        r = self.in_ns(self.names[i], "curl", "-sS", "--max-time", str(timeout), url,
                       timeout=timeout + 5)
        return json.loads(r.stdout)
