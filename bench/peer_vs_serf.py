#!/usr/bin/env python3
"""vigil peer against Serf: peer-to-peer failure detection side by side.

A benchmark, not a test: it prints figures and never fails on them.

    sudo python3 bench/peer_vs_serf.py [--nodes 5] [--loss 0,5,20] [--kills 5]
         [--duration 180] [--calibrate 60] [--intervals 1s,500ms,450ms,400ms]
         [--vigil build/vigil] [--seed N] [--keep]

Needs root, ip, nft and Serf (Debian: `apt-get install serf`;
scripts/install-deps.sh installs it).

The network. One namespace holds a bridge; N node namespaces are joined to
it by a veth pair each. Every node namespace runs one `serf agent` (LAN
profile, joined to the others) and one `vigil peer` per vigil cluster
measured (--intervals: one cluster per probe interval, each on its own
port, each member seeded with the other members; `400ms:no-lifeguard`
runs a cluster with --no-lifeguard). Both systems authenticate every
message: Serf with its -encrypt key (AES-GCM, so it also encrypts), vigil
with its cluster key (a tag on every datagram).
Addresses are 10.78.0.0/24 inside these namespaces only; the namespaces
are named after this process's pid.

Loss. Each node namespace has an nftables input chain that drops P % of
every packet arriving from outside it (`numgen random mod 100 < P drop`;
loopback is spared). A packet crosses exactly one such chain, at its
receiver, so every datagram and TCP segment of either system is lost with
probability P.

Bytes. Each node namespace counts what it sends in an nftables output
chain: one counter per vigil cluster (UDP from or to its port) and one for
Serf (UDP and TCP from or to its port). Layer 2 adds the 14-byte Ethernet
header per packet to the IP bytes. Bytes/s per member is the sum over the
node namespaces divided by the members and the seconds: once at 0 % loss
without kills (--calibrate seconds, the steady cost), and again over each
loss level, kills and rejoins included.

Detection. Each kill picks a random node and SIGKILLs its serf agent and
its vigil members back to back (microseconds apart, in random order).
Every line either program writes is stamped by this script as it arrives
through a pipe. A survivor declares the node dead at its first `serf:
EventMemberFailed` line (Serf) or its first `vigil peer: event N: ID ... ->
dead` line (vigil) after the kill. Detection time is the earliest such
line among the survivors; the median over the survivors is printed too (a
survivor that never declared it counts as infinitely late). Once every
survivor of every system has declared the node dead (or after 60 s), its
programs start again, and the next kill waits until every system has the
node alive at every survivor and the node has every survivor alive.

False failures. A suspicion or a death of a live member: any about a node
outside its window from kill to recovery (plus 2 s). vigil logs a
suspicion at every member that learns of it (`alive -> suspect`); Serf
logs one only at the member whose probe failed ("Suspect X has failed, no
acks received"), so suspicions are also counted as episodes per node
(lines about one node less than 10 s apart are one episode), which reads
the same for both. Deaths are counted per member that declared one, and as
episodes.

Why. Every 2 s the script reads each vigil member's GET /v1/members (on
127.0.0.1 inside its namespace): Lifeguard's awareness score (the member's
probe interval is multiplied by score + 1) and its probe counters, printed
per level as probes per second per member and the share that failed. For
Serf it counts the probes its TCP fallback rescued ("Was able to connect to
X but other probes failed").
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nsbench import NsCaller, log, nearest_rank, preflight, run  # noqa: E402

TAG = "pvs%d" % os.getpid()
NS_BR = TAG + "b"
SUBNET = "10.78.0"
SPORT = 7950  # Serf
VPORT0 = 7960  # vigil cluster c listens on VPORT0 + c
APIPORT0 = 7970  # and serves its API on 127.0.0.1:APIPORT0 + c in each namespace
ETH_HEADER = 14
TABLE = "pvs"
SAMPLE_EVERY = 2.0

# Bounds on every wait, in seconds.
JOIN_LIMIT = 60
DETECT_LIMIT = 60
RECOVER_LIMIT = 60
EPISODE_GAP = 10.0
GRACE = 2.0
INF = float("inf")


def node_name(i):
    return "n%d" % i


def node_ns(i):
    return "%sn%d" % (TAG, i)


def node_ip(i):
    return "%s.%d" % (SUBNET, 10 + i)


def parse_duration(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)", s.strip())
    if not m:
        raise ValueError("a duration like 1s or 500ms: %r" % s)
    v = float(m.group(1))
    return v / 1000.0 if m.group(2) == "ms" else v


def fmt_s(x):
    return "-" if x is None or x == INF else "%.2f s" % x


def fmt_n(x):
    return "-" if x is None or x == INF else "%.2f" % x


def median(xs):
    return statistics.median(xs) if xs else None


class Reader:
    """Reads one program's output, stamps each line on arrival, writes all
    lines to a file and hands the ones about members to a callback."""

    def __init__(self, stream, path, on_line):
        self.stream = stream
        self.out = open(path, "a")
        self.on_line = on_line
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for raw in iter(self.stream.readline, b""):
                t = time.time()
                line = raw.decode(errors="replace").rstrip("\n")
                self.out.write("%.6f %s\n" % (t, line))
                self.on_line(t, line)
        except (OSError, ValueError):
            pass
        finally:
            self.out.close()


SERF_RX = (
    ("dead", re.compile(r"serf: EventMemberFailed: (\S+)")),
    ("alive", re.compile(r"serf: EventMemberJoin: (\S+)")),
    ("left", re.compile(r"serf: EventMemberLeave: (\S+)")),
    ("suspect", re.compile(r"memberlist: Suspect (\S+) has failed")),
    ("tcp", re.compile(r"memberlist: Was able to connect to (\S+) but other probes failed")),
)
VIGIL_RX = re.compile(r"vigil peer: event \d+: (\S+) (\w+) -> (\w+)")


class Bench:
    def __init__(self, args):
        self.args = args
        self.n = args.nodes
        self.tmp = tempfile.mkdtemp(prefix="vigil-peer-serf-")
        self.procs = []  # every Popen started, for cleanup by pid
        self.namespaces = []
        # Systems: "serf" and one vigil cluster per interval.
        self.vnames = ["vigil %s%s" % (s, "" if lg else " no-lg")
                       for s, lg in zip(args.interval_names, args.lifeguard)]
        self.systems = ["serf"] + self.vnames
        self.running = {s: {} for s in self.systems}  # system -> node -> Popen
        self.lock = threading.Lock()
        self.records = []  # (t, system, observer, node, kind)
        self.state = {s: {} for s in self.systems}  # system -> observer -> node -> kind
        self.serf_key = None
        self.vigil_key = None
        self.callers = {}  # node -> NsCaller
        self.sampling = None  # the level's bucket while a level runs
        self.stop_sampler = threading.Event()
        self.sampler = None
        self.last_stats = {}  # pid -> (probes, probes_failed)
        self.sample_lock = threading.Lock()

    # ---- network -----------------------------------------------------------

    def setup_net(self):
        run(["ip", "netns", "add", NS_BR])
        self.namespaces.append(NS_BR)
        run(["ip", "-n", NS_BR, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", NS_BR, "link", "set", "lo", "up"])
        run(["ip", "-n", NS_BR, "link", "set", "br0", "up"])
        vrules = "\n".join(
            '    udp sport %d counter name "v%d_out" accept\n'
            '    udp dport %d counter name "v%d_out" accept' % (VPORT0 + c, c, VPORT0 + c, c)
            for c in range(len(self.vnames)))
        vcounters = "\n".join('  counter v%d_out { }' % c for c in range(len(self.vnames)))
        for i in range(self.n):
            ns = node_ns(i)
            run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
            port = "p%d" % i
            run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
                 "netns", NS_BR])
            run(["ip", "-n", NS_BR, "link", "set", port, "master", "br0"])
            run(["ip", "-n", NS_BR, "link", "set", port, "up"])
            run(["ip", "-n", ns, "addr", "add", node_ip(i) + "/24", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            rules = """table inet %s {
  counter serf_out { }
%s
  chain input {
    type filter hook input priority 0; policy accept;
  }
  chain output {
    type filter hook output priority 0; policy accept;
    oifname "lo" accept
    meta l4proto { tcp, udp } th sport %d counter name "serf_out" accept
    meta l4proto { tcp, udp } th dport %d counter name "serf_out" accept
%s
  }
}
""" % (TABLE, vcounters, SPORT, SPORT, vrules)
            run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input_text=rules)
            self.callers[i] = NsCaller(ns)

    def set_loss(self, percent):
        for i in range(self.n):
            ns = node_ns(i)
            run(["ip", "netns", "exec", ns, "nft", "flush", "chain", "inet", TABLE, "input"])
            if percent > 0:
                run(["ip", "netns", "exec", ns, "nft", "add", "rule", "inet", TABLE, "input",
                     "iifname", "!=", "lo", "numgen", "random", "mod", "100", "<", str(percent),
                     "drop"])

    def counter_name(self, system):
        return "serf_out" if system == "serf" else "v%d_out" % self.vnames.index(system)

    def counters(self):
        """Sum over the node namespaces: {counter: (bytes, packets)}."""
        tot = {}
        for i in range(self.n):
            r = run(["ip", "netns", "exec", node_ns(i), "nft", "-j", "list", "counters", "table",
                     "inet", TABLE])
            for item in json.loads(r.stdout)["nftables"]:
                c = item.get("counter")
                if c:
                    b, p = tot.get(c["name"], (0, 0))
                    tot[c["name"]] = (b + c["bytes"], p + c["packets"])
        return tot

    def rates(self, c0, c1, seconds):
        """{system: (layer-2 bytes/s per member, packets/s per member)}."""
        out = {}
        for s in self.systems:
            name = self.counter_name(s)
            b = c1.get(name, (0, 0))[0] - c0.get(name, (0, 0))[0]
            p = c1.get(name, (0, 0))[1] - c0.get(name, (0, 0))[1]
            out[s] = ((b + ETH_HEADER * p) / seconds / self.n, p / seconds / self.n)
        return out

    # ---- processes ---------------------------------------------------------

    def spawn(self, system, i, argv):
        p = subprocess.Popen(["ip", "netns", "exec", node_ns(i)] + argv,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        self.running[system][i] = p
        obs = node_name(i)
        with self.lock:
            self.state[system][obs] = {}  # a new process knows nothing yet
        path = os.path.join(self.tmp, "%s-%s.log" % (system.replace(" ", "-"), obs))
        if system == "serf":
            Reader(p.stdout, path, lambda t, line: self.on_serf(t, obs, line))
        else:
            Reader(p.stdout, path, lambda t, line: self.on_vigil(t, system, obs, line))
        return p

    def note(self, t, system, obs, node, kind):
        with self.lock:
            self.records.append((t, system, obs, node, kind))
            if system == "serf" and kind in ("suspect", "tcp"):
                return  # a log line, not a state: Serf logs no refutation
            self.state[system].setdefault(obs, {})[node] = kind

    def on_serf(self, t, obs, line):
        for kind, rx in SERF_RX:
            m = rx.search(line)
            if m:
                self.note(t, "serf", obs, m.group(1), kind)
                return

    def on_vigil(self, t, system, obs, line):
        m = VIGIL_RX.search(line)
        if m:
            self.note(t, system, obs, m.group(1), m.group(3))

    def start_serf(self, i, join):
        argv = ["serf", "agent", "-node=" + node_name(i), "-bind=%s:%d" % (node_ip(i), SPORT),
                "-rpc-addr=127.0.0.1:7373", "-profile=lan", "-log-level=info",
                "-encrypt=" + self.serf_key]
        argv += ["-join=%s:%d" % (node_ip(j), SPORT) for j in join]
        self.spawn("serf", i, argv)

    def start_vigil(self, c, i):
        port = VPORT0 + c
        argv = [self.args.vigil, "peer", "--id", node_name(i),
                "--listen", "%s:%d" % (node_ip(i), port), "--key-file", self.vigil_key,
                "--interval", self.args.interval_names[c],
                "--api", "127.0.0.1:%d" % (APIPORT0 + c)]
        if not self.args.lifeguard[c]:
            argv.append("--no-lifeguard")
        for j in range(self.n):
            if j != i:
                argv += ["--seed", "%s:%d" % (node_ip(j), port)]
        self.spawn(self.vnames[c], i, argv)

    def start_node(self, i, serf_join):
        for c in range(len(self.vnames)):
            self.start_vigil(c, i)
        self.start_serf(i, serf_join)

    def kill_node(self, i):
        procs = [self.running[s][i] for s in self.systems]
        random.shuffle(procs)
        t = time.time()
        for p in procs:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        return t

    def serf_alive_via(self, i):
        """The members a serf agent lists alive (RPC inside its namespace)."""
        try:
            r = run(["ip", "netns", "exec", node_ns(i), "serf", "members",
                     "-rpc-addr=127.0.0.1:7373", "-format=json"], check=False, timeout=10)
        except subprocess.TimeoutExpired:
            return set()
        if r.returncode != 0:
            return set()
        try:
            return {m["name"] for m in json.loads(r.stdout)["members"] if m["status"] == "alive"}
        except (ValueError, KeyError):
            return set()

    # ---- waits -------------------------------------------------------------

    def view(self, system, obs, node):
        with self.lock:
            return self.state[system].get(obs, {}).get(node)

    def all_alive(self, system, nodes):
        """Every member in nodes has every other alive, by its lines."""
        names = [node_name(i) for i in nodes]
        return all(self.view(system, a, b) == "alive" for a in names for b in names if a != b)

    def wait_until(self, cond, limit, step=0.1):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(step)
        return cond()

    def dead_at(self, system, node, t0):
        """{observer: time of its first death of node after t0}."""
        out = {}
        with self.lock:
            for t, s, obs, nd, kind in self.records:
                if s == system and nd == node and kind == "dead" and t >= t0 and obs != node:
                    if obs not in out or t < out[obs]:
                        out[obs] = t
        return out

    def sample_once(self):
        """Every running vigil member's awareness and probe counters, into
        the level's bucket (counters as deltas per process)."""
        with self.sample_lock:
            self._sample(self.sampling)

    def _sample(self, bucket):
        for c, system in enumerate(self.vnames):
            for i, p in list(self.running[system].items()):
                if p.poll() is not None:
                    continue
                try:
                    d = self.callers[i].get_json("127.0.0.1:%d" % (APIPORT0 + c), "/v1/members")
                except Exception:  # a member just killed or not up yet
                    continue
                st = d.get("stats", {})
                probes, failed = st.get("probes", 0), st.get("probes_failed", 0)
                p0, f0 = self.last_stats.get(p.pid, (0, 0))
                self.last_stats[p.pid] = (probes, failed)
                if bucket is None:
                    continue
                b = bucket.setdefault(system, {"aw": [], "probes": 0, "failed": 0})
                b["aw"].append(d.get("awareness", 0))
                b["probes"] += max(0, probes - p0)
                b["failed"] += max(0, failed - f0)

    def sample_loop(self):
        while not self.stop_sampler.wait(SAMPLE_EVERY):
            try:
                self.sample_once()
            except Exception as e:  # diagnostics only: never stop the run for them
                log("   (sampling: %s)" % e)

    def first_suspect(self, system, node, t0, t1):
        """The earliest suspicion of node between t0 and t1, by any member."""
        with self.lock:
            ts = [t for t, s, obs, nd, kind in self.records
                  if s == system and nd == node and kind == "suspect" and t0 <= t <= t1
                  and obs != node]
        return min(ts) if ts else None

    def start_all(self):
        log("== starting %d members of each system: Serf (LAN profile, -encrypt), %s" % (
            self.n, ", ".join("vigil peer --interval %s%s" % (s, "" if lg else " --no-lifeguard")
                              for s, lg in zip(self.args.interval_names, self.args.lifeguard))))
        self.start_node(0, [])
        time.sleep(0.5)
        for i in range(1, self.n):
            self.start_node(i, [0])
        everyone = list(range(self.n))
        for s in self.systems:
            if not self.wait_until(lambda: self.all_alive(s, everyone), JOIN_LIMIT, 0.2):
                raise RuntimeError("%s: members not all alive at every member within %d s"
                                   % (s, JOIN_LIMIT))
        log("   every member of every system sees every other alive")

    # ---- phases ------------------------------------------------------------

    def calibrate(self):
        log("== steady state: 0 %% loss, no kills, %.0f s" % self.args.calibrate)
        self.set_loss(0)
        time.sleep(5)
        c0, m0 = self.counters(), time.monotonic()
        time.sleep(self.args.calibrate)
        c1, m1 = self.counters(), time.monotonic()
        self.steady = self.rates(c0, c1, m1 - m0)
        for s in self.systems:
            log("   %-17s %7.1f B/s per member at layer 2 (%.2f packets/s)" % (
                s, self.steady[s][0], self.steady[s][1]))

    def one_kill(self, victim):
        name = node_name(victim)
        others = [j for j in range(self.n) if j != victim]
        onames = {node_name(j) for j in others}
        kill_t = self.kill_node(victim)

        def all_declared():
            return all(set(self.dead_at(s, name, kill_t)) >= onames for s in self.systems)

        self.wait_until(all_declared, DETECT_LIMIT)
        rec = {"victim": name, "kill": kill_t}
        for s in self.systems:
            d = self.dead_at(s, name, kill_t)
            times = [d[o] - kill_t if o in d else INF for o in sorted(onames)]
            first = min(times) if times and min(times) < INF else None
            until = kill_t + (first if first is not None else DETECT_LIMIT)
            susp = self.first_suspect(s, name, kill_t, until)
            rec[s] = {"first": first,
                      "median": statistics.median(times) if times else None,
                      "declared": sum(1 for x in times if x < INF),
                      "suspect": None if susp is None else susp - kill_t}
        log("   kill %-3s  " % name + "  ".join(
            "%s first %s median %s (%d/%d)" % (
                s, fmt_s(rec[s]["first"]), fmt_s(rec[s]["median"]), rec[s]["declared"],
                len(others)) for s in self.systems))
        # Back up; wait until every system has the node alive everywhere.
        self.start_node(victim, others)
        nodes = list(range(self.n))
        ok = self.wait_until(lambda: all(self.all_alive(s, nodes) for s in self.systems),
                             RECOVER_LIMIT, 0.2)
        if not ok:
            # A failure a survivor never declared has no join line: ask Serf itself.
            want = {node_name(j) for j in nodes}
            lagging = [s for s in self.systems if not self.all_alive(s, nodes)]
            if lagging == ["serf"] and all(self.serf_alive_via(j) == want for j in nodes):
                ok = True
            else:
                log("   %s not back everywhere within %d s (%s)" % (
                    name, RECOVER_LIMIT, ", ".join(lagging)))
        rec["recovered"] = time.time()
        return rec

    def run_level(self, loss):
        args = self.args
        log("== loss %d %%: %.0f s, up to %d kills" % (loss, args.duration, args.kills))
        self.set_loss(loss)
        self.sampling = None
        self.sample_once()  # the counters to start from
        self.sampling = {}
        c0 = self.counters()
        t_start, m_start = time.time(), time.monotonic()
        slot = args.duration / max(1, args.kills)
        kills = []
        prev_end = m_start
        for j in range(args.kills):
            at = max(m_start + j * slot + random.uniform(0.2, 0.5) * slot, prev_end + 5.0)
            if at > m_start + 1.5 * args.duration:
                log("   out of time: %d of %d kills done" % (j, args.kills))
                break
            while time.monotonic() < at:
                time.sleep(min(0.5, max(0.0, at - time.monotonic())))
            kills.append(self.one_kill(random.randrange(self.n)))
            prev_end = time.monotonic()
        end = m_start + args.duration
        while time.monotonic() < end:
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))
        c1 = self.counters()
        t_end, m_end = time.time(), time.monotonic()
        self.sample_once()
        with self.sample_lock:
            bucket, self.sampling = self.sampling, None
        self.set_loss(0)
        r = self.summarise(loss, kills, t_start, t_end, m_end - m_start, c0, c1)
        r["samples"] = bucket
        return r

    def summarise(self, loss, kills, t_start, t_end, secs, c0, c1):
        windows = {}
        for k in kills:
            windows.setdefault(k["victim"], []).append((k["kill"], k["recovered"] + GRACE))

        def excused(node, t):
            return any(a <= t <= b for a, b in windows.get(node, []))

        with self.lock:
            false = [(t, s, obs, nd, kind) for t, s, obs, nd, kind in self.records
                     if t_start <= t <= t_end and kind in ("suspect", "dead") and nd != obs
                     and not excused(nd, t)]

        def episodes(rows):
            count, last = 0, {}
            for t, nd in sorted((t, nd) for t, nd in rows):
                if nd not in last or t - last[nd] > EPISODE_GAP:
                    count += 1
                last[nd] = t
            return count

        rates = self.rates(c0, c1, secs)
        per = {}
        for s in self.systems:
            first = [k[s]["first"] for k in kills if k[s]["first"] is not None]
            meds = [k[s]["median"] for k in kills if k[s]["median"] is not None]
            susps = [k[s]["suspect"] for k in kills if k[s]["suspect"] is not None]
            susp = [(t, nd) for t, ss, _, nd, kind in false if ss == s and kind == "suspect"]
            dead = [(t, nd) for t, ss, _, nd, kind in false if ss == s and kind == "dead"]
            per[s] = {
                "detected": len(first),
                "first_med": median(first), "first_max": max(first) if first else None,
                "surv_med": median(meds), "susp_med": median(susps),
                "susp": len(susp), "susp_ep": episodes(susp),
                "dead": len(dead), "dead_ep": episodes(dead),
                "bps": rates[s][0], "pps": rates[s][1],
            }
        with self.lock:
            tcp = sum(1 for t, s, _, _, kind in self.records
                      if s == "serf" and kind == "tcp" and t_start <= t <= t_end)
        return {"loss": loss, "secs": secs, "kills": kills, "per": per, "serf_tcp": tcp}

    # ---- report ------------------------------------------------------------

    def report(self, results):
        a = self.args
        log("")
        log("== vigil peer against Serf: %d members each, both authenticated (Serf -encrypt, "
            "vigil --key-file), side by side on the same nodes and network" % self.n)
        log("   detection: from SIGKILL to the earliest survivor's declaration (median and max "
            "over kills), and the median over survivors (median over kills)")
        log("   bytes/s: layer 2 (IP + 14 B a packet) sent per member")
        log("")
        hdr = "%-16s" % "steady, 0 %, no kills"
        log(hdr)
        for s in self.systems:
            log("   %-17s %7.1f B/s per member (%.2f packets/s)" % (
                s, self.steady[s][0], self.steady[s][1]))
        for r in results:
            n_k = len(r["kills"])
            log("")
            log("-- loss %d %% (%.0f s, %d kills)" % (r["loss"], r["secs"], n_k))
            log("   %-17s %9s %9s %9s %9s %9s %12s %12s %9s" % (
                "system", "detected", "first", "first", "survivors", "suspected", "false susp",
                "false dead", "B/s"))
            log("   %-17s %9s %9s %9s %9s %9s %12s %12s %9s" % (
                "", "", "median", "max", "median", "median", "(episodes)", "(episodes)",
                "/member"))
            for s in self.systems:
                p = r["per"][s]
                log("   %-17s %9s %9s %9s %9s %9s %12s %12s %9.1f" % (
                    s, "%d/%d" % (p["detected"], n_k), fmt_n(p["first_med"]),
                    fmt_n(p["first_max"]), fmt_n(p["surv_med"]), fmt_n(p["susp_med"]),
                    "%d (%d)" % (p["susp"], p["susp_ep"]), "%d (%d)" % (p["dead"], p["dead_ep"]),
                    p["bps"]))
            log("   Serf: %d probes rescued by its TCP fallback (\"Was able to connect to X but "
                "other probes failed\")" % r["serf_tcp"])
            for s in self.vnames:
                b = (r.get("samples") or {}).get(s)
                if not b or not b["aw"]:
                    continue
                log("   %-17s probes %.2f/s per member (%.2f at awareness 0), %.1f %% failed; "
                    "awareness mean %.2f, max %d, above 0 in %.0f %% of samples" % (
                        s, b["probes"] / r["secs"] / self.n,
                        1.0 / self.args.interval_secs[self.vnames.index(s)],
                        100.0 * b["failed"] / max(1, b["probes"]),
                        statistics.mean(b["aw"]), max(b["aw"]),
                        100.0 * sum(1 for x in b["aw"] if x > 0) / len(b["aw"])))
            serf = r["per"]["serf"]
            for s in self.vnames:
                p = r["per"][s]
                if p["first_med"] is None or serf["first_med"] is None:
                    continue
                ratio = p["first_med"] / serf["first_med"]
                log("   %-17s median / Serf's %.2f (goal <= 0.5: %s); bytes/s %s Serf's steady, "
                    "%s Serf's over this level; false death episodes %d against Serf's %d" % (
                        s, ratio, "met" if ratio <= 0.5 else "missed",
                        "under" if self.steady[s][0] <= self.steady["serf"][0] else "OVER",
                        "under" if p["bps"] <= serf["bps"] else "OVER",
                        p["dead_ep"], serf["dead_ep"]))
        log("")
        log("per kill (s from SIGKILL, earliest survivor): " + "; ".join(
            "%d%% %s %s" % (r["loss"], k["victim"], " ".join(
                "%s=%s" % (s.replace("vigil ", "").replace(" ", "-"), fmt_n(k[s]["first"]))
                for s in self.systems))
            for r in results for k in r["kills"]))

    # ---- cleanup -----------------------------------------------------------

    def cleanup(self):
        self.stop_sampler.set()
        if self.sampler:
            self.sampler.join(timeout=10)
        for c in self.callers.values():
            c.close()
        for p in self.procs:
            try:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired, OSError):
                pass
        if self.args.keep:
            log("kept: namespaces %s; logs in %s" % (" ".join(self.namespaces), self.tmp))
            log("remove with: for n in %s; do ip netns del $n; done; rm -rf %s" % (
                " ".join(self.namespaces), self.tmp))
            return
        for ns in reversed(self.namespaces):
            try:
                run(["ip", "netns", "del", ns], check=False)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--loss", default="0,5,20", help="loss levels in %% (default 0,5,20)")
    ap.add_argument("--kills", type=int, default=5, help="kills per loss level (default 5)")
    ap.add_argument("--duration", type=float, default=180,
                    help="seconds per loss level (default 180)")
    ap.add_argument("--calibrate", type=float, default=60,
                    help="seconds at 0 %% loss without kills for the steady bytes/s (default 60)")
    ap.add_argument("--intervals", default="1s,500ms,450ms,400ms",
                    help="vigil probe intervals, one vigil cluster each, run side by side "
                         "(default 1s,500ms,450ms,400ms); INTERVAL:no-lifeguard runs that "
                         "cluster with --no-lifeguard")
    ap.add_argument("--vigil", default="build/vigil")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true",
                    help="leave the namespaces and logs for inspection")
    a = ap.parse_args()
    try:
        a.loss = [int(x) for x in a.loss.split(",") if x.strip()]
        specs = [x.strip() for x in a.intervals.split(",") if x.strip()]
        a.interval_names = [x.split(":")[0] for x in specs]
        a.lifeguard = []
        for x in specs:
            opt = x.split(":", 1)[1] if ":" in x else ""
            if opt not in ("", "no-lifeguard"):
                raise ValueError("--intervals: %r: INTERVAL or INTERVAL:no-lifeguard" % x)
            a.lifeguard.append(opt == "")
        a.interval_secs = [parse_duration(x) for x in a.interval_names]
        if len(set(specs)) != len(specs):
            raise ValueError("--intervals: each cluster once")
    except ValueError as e:
        ap.error(str(e))
    if (not 3 <= a.nodes <= 9 or any(not 0 <= x < 100 for x in a.loss) or a.kills < 0
            or not 1 <= len(a.interval_names) <= 6 or a.duration <= 0 or a.calibrate <= 0):
        ap.error("need 3..9 nodes, loss levels in 0..99, kills >= 0, 1 to 6 intervals, "
                 "positive durations")
    return a


def main():
    a = parse_args()
    a.vigil = preflight("peer_vs_serf", a.vigil)
    random.seed(a.seed)
    ver = run(["serf", "version"]).stdout.decode().splitlines()[0]
    log("== vigil peer against Serf, %s; Serf %s; %d CPUs; %s" % (
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), ver, os.cpu_count() or 0,
        "load average before: " + " ".join(open("/proc/loadavg").read().split()[:3])))

    b = Bench(a)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = 0
    try:
        b.vigil_key = os.path.join(b.tmp, "cluster.key")
        run([a.vigil, "keygen", "-o", b.vigil_key])
        b.serf_key = run(["serf", "keygen"]).stdout.decode().strip()
        b.setup_net()
        b.start_all()
        b.sampler = threading.Thread(target=b.sample_loop, daemon=True)
        b.sampler.start()
        b.calibrate()
        results = [b.run_level(loss) for loss in a.loss]
        b.report(results)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        status = 130
    except Exception as e:  # report, clean up, fail
        log("peer_vs_serf: %s" % e)
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        b.cleanup()
    sys.exit(status)


if __name__ == "__main__":
    main()
