#!/usr/bin/env python3
"""Detection time of vigil against Serf's, side by side, at the same bytes/s.

A benchmark, not a test: it prints figures and never fails on them.

    sudo python3 bench/detect_vs_serf.py [--nodes 5] [--loss 0,5,20]
         [--kills 5] [--duration 180] [--detector phi|fixed|grid]
         [--vigil build/vigil] [--keep]

(`make bench-serf` runs it with its defaults.) Needs root, ip, nft and Serf
(Debian: `apt-get install serf`; scripts/install-deps.sh installs it).

The network. One "monitor" namespace holds a bridge and `vigil monitor`;
N node namespaces are joined to the bridge by a veth pair each. Every node
namespace runs one `vigil agent` (heartbeats to the monitor) and one
`serf agent` (LAN profile, joined to the other members). Addresses are
10.77.0.0/24 inside these namespaces only; interface names live inside the
namespaces, and the namespaces are named after this process's pid.

Loss. Each namespace has an nftables input chain that drops P % of every
packet arriving from outside the namespace (`numgen random mod 100 < P
drop`; loopback is spared). A packet crosses exactly one input hook, at its
receiver, so every datagram and segment of either system, vigil's
heartbeats to the monitor, Serf's probes, acks, gossip and TCP push-pull
alike, is lost with probability P. Bridged traffic does not pass the
monitor namespace's input hook.

Bytes. Each node namespace counts what it sends in an nftables output
chain: one counter for UDP to the monitor's heartbeat port (vigil), one for
UDP and TCP from or to Serf's port (Serf; each packet counted once). The
counters give bytes of IP packets and a packet count; layer 2 adds the
14-byte Ethernet header per packet (no preamble, FCS or inter-frame gap).
Bytes/s per node is the sum over the node namespaces divided by the nodes
and the seconds. Before the loss levels, with no loss and no kills, Serf's
bytes are counted for --calibrate seconds (60 by default: two of its 30 s
push-pull periods) while the vigil agents send at 1 s to measure their
frame size; vigil's heartbeat interval h is then set so that its bytes/s
per node equal Serf's measured figure. Both are measured again over each
loss level, where they differ from the calibration: a killed node sends
nothing until it is back, and Serf spends more on rejoins and under loss.

Detection. Each kill picks a random node and SIGKILLs its vigil agent and
its serf agent back to back (microseconds apart). vigil's time is the dead
event's time in the monitor's `GET /v1/events` minus the kill time. Serf's
time is taken two ways: its decision, the earliest `serf: EventMemberFailed`
log line among the other members (each line stamped by this script as it
arrives through a pipe), and its event handler, the earliest timestamp an
event handler for `member-failed` wrote. The serf agent holds member events
for 1 to 3 s before it runs handlers (coalescing), so the handler time is
what a Serf user's script sees and the decision time is the fairer
comparison with vigil's event time; the ratio is against the decision.
Then, once every other member has logged the failure (or 15 s have
passed), the node's agents start again, and the next kill waits until the
monitor has it alive and every member that logged it failed has logged it
joined.

False alarms. A suspect or dead event of vigil, and a Serf failure
(EventMemberFailed) or suspicion ("Suspect X has failed, no acks
received"), about a node outside its window from kill to recovery, is
false. Serf's lines are counted as episodes per node (lines about one node
less than 10 s apart are one episode), since several members log the
same failure.

The limit. With heartbeats every h and each lost with probability p, a
detector that convicts after k consecutive missing heartbeats convicts a
live node falsely about G·p^k times over G gaps (G = nodes × seconds / h).
Keeping that under a budget e needs k = ceil(log(e/G) / log p), so no
detector at that h and p can do better than k·h on average without
spending more than e false deaths. At 0 % loss p is floored (--p-floor).
"""
import argparse
import json
import math
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
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nsbench import NsCaller, log, nearest_rank, preflight, run  # noqa: E402

TAG = "vsf%d" % os.getpid()
NS_MON = TAG + "m"
SUBNET = "10.77.0"
MON_IP = SUBNET + ".1"
VPORT = 7946  # vigil heartbeats (monitor namespace)
SPORT = 7950  # Serf, in every node namespace
API = "127.0.0.1:7947"
ETH_HEADER = 14
TABLE = "vsf"

# Bounds on every wait, in seconds.
DETECT_LIMIT = 90
RECOVER_LIMIT = 60
EPISODE_GAP = 10.0


def node_name(i):
    return "n%d" % i


def node_ns(i):
    return "%sn%d" % (TAG, i)


def node_ip(i):
    return "%s.%d" % (SUBNET, 10 + i)


def fmt_s(x):
    return "-" if x is None else "%.2f s" % x


class SerfLog:
    """Reads one serf agent's output, stamps each line on arrival, keeps the
    lines about members (failed, joined, suspected) and writes all to a file."""

    PATTERNS = (
        ("failed", re.compile(r"serf: EventMemberFailed: (\S+)")),
        ("join", re.compile(r"serf: EventMemberJoin: (\S+)")),
        ("suspect", re.compile(r"memberlist: Suspect (\S+) has failed")),
    )

    def __init__(self, observer, stream, path, sink, lock):
        self.observer = observer
        self.stream = stream
        self.out = open(path, "a")
        self.sink = sink
        self.lock = lock
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for raw in iter(self.stream.readline, b""):
                t = time.time()
                line = raw.decode(errors="replace").rstrip("\n")
                self.out.write("%.6f %s\n" % (t, line))
                for kind, rx in self.PATTERNS:
                    m = rx.search(line)
                    if m:
                        with self.lock:
                            self.sink.append((t, kind, m.group(1), self.observer))
        except (OSError, ValueError):
            pass
        finally:
            self.out.close()


HANDLER = """#!/bin/sh
# Serf event handler: one line per member in the event, stamped now.
t=$(date +%%s.%%N)
while read -r name rest; do
    echo "$t $SERF_EVENT $SERF_SELF_NAME $name" >> "%s/handler.$SERF_SELF_NAME"
done
"""


class Bench:
    def __init__(self, args):
        self.args = args
        self.n = args.nodes
        self.tmp = tempfile.mkdtemp(prefix="vigil-serf-")
        self.procs = []  # every Popen started, for cleanup by pid
        self.vagents = {}
        self.sagents = {}
        self.monitor = None
        self.api = None
        self.namespaces = []
        self.serf_lines = []
        self.serf_lock = threading.Lock()
        self.serf_readers = []
        self.handler = os.path.join(self.tmp, "serf-handler.sh")
        with open(self.handler, "w") as f:
            f.write(HANDLER % self.tmp)
        os.chmod(self.handler, 0o755)
        self.detector_used = "unknown"
        self.monitor_starts = 0
        self.monitor_log = None
        self.interval = None
        self.events_seen = 0
        self.vigil_events = []  # (time, node, new_state)

    # ---- network -----------------------------------------------------------

    def setup_net(self):
        run(["ip", "netns", "add", NS_MON])
        self.namespaces.append(NS_MON)
        run(["ip", "-n", NS_MON, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", NS_MON, "addr", "add", MON_IP + "/24", "dev", "br0"])
        run(["ip", "-n", NS_MON, "link", "set", "lo", "up"])
        run(["ip", "-n", NS_MON, "link", "set", "br0", "up"])
        for i in range(self.n):
            ns = node_ns(i)
            run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
            port = "p%d" % i
            run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
                 "netns", NS_MON])
            run(["ip", "-n", NS_MON, "link", "set", port, "master", "br0"])
            run(["ip", "-n", NS_MON, "link", "set", port, "up"])
            run(["ip", "-n", ns, "addr", "add", node_ip(i) + "/24", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        for ns in self.namespaces:
            counters = ""
            if ns != NS_MON:
                counters = """
  counter vigil_out { }
  counter serf_out { }
  chain output {
    type filter hook output priority 0; policy accept;
    oifname "lo" accept
    ip daddr %s udp dport %d counter name "vigil_out" accept
    meta l4proto { tcp, udp } th sport %d counter name "serf_out" accept
    meta l4proto { tcp, udp } th dport %d counter name "serf_out" accept
  }""" % (MON_IP, VPORT, SPORT, SPORT)
            rules = """table inet %s {
  chain input {
    type filter hook input priority 0; policy accept;
  }%s
}
""" % (TABLE, counters)
            run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input_text=rules)
        self.api = NsCaller(NS_MON)

    def set_loss(self, percent):
        for ns in self.namespaces:
            run(["ip", "netns", "exec", ns, "nft", "flush", "chain", "inet", TABLE, "input"])
            if percent > 0:
                run(["ip", "netns", "exec", ns, "nft", "add", "rule", "inet", TABLE, "input",
                     "iifname", "!=", "lo", "numgen", "random", "mod", "100", "<", str(percent),
                     "drop"])

    def counters(self):
        """Sum over the node namespaces: {name: (bytes, packets)}."""
        tot = {"vigil_out": [0, 0], "serf_out": [0, 0]}
        for i in range(self.n):
            r = run(["ip", "netns", "exec", node_ns(i), "nft", "-j", "list", "counters", "table",
                     "inet", TABLE])
            for item in json.loads(r.stdout)["nftables"]:
                c = item.get("counter")
                if c and c["name"] in tot:
                    tot[c["name"]][0] += c["bytes"]
                    tot[c["name"]][1] += c["packets"]
        return {k: tuple(v) for k, v in tot.items()}

    def l2_rate(self, c0, c1, name, seconds):
        """Layer-2 bytes per second per node between two counter readings."""
        b = c1[name][0] - c0[name][0]
        p = c1[name][1] - c0[name][1]
        return (b + ETH_HEADER * p) / seconds / self.n, p

    # ---- processes ---------------------------------------------------------

    def spawn(self, ns, argv, logpath, pipe=False):
        p = subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE if pipe else open(logpath, "ab"),
                             stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def start_monitor(self, interval, detector):
        argv = [self.args.vigil, "monitor", "--listen", "%s:%d" % (MON_IP, VPORT), "--api", API,
                "--key-file", self.keyfile, "--interval", interval]
        if detector:
            argv += ["--detector", detector]
        self.monitor_starts += 1
        logpath = os.path.join(self.tmp, "monitor-%d.log" % self.monitor_starts)
        self.monitor_log = logpath
        p = self.spawn(NS_MON, argv, logpath)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if p.poll() is not None:
                with open(logpath, errors="replace") as f:
                    return None, f.read().strip()
            try:
                self.api.get_json(API, "/v1/health", timeout=1)
                return p, ""
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.1)
        raise RuntimeError("the monitor's API did not come up; see %s" % logpath)

    def monitor_detector(self):
        """The detector the monitor says it runs, from its first log line."""
        try:
            with open(self.monitor_log, errors="replace") as f:
                found = re.findall(r"detector (\w+)", f.read())
            return found[-1] if found else "unknown"
        except OSError:
            return "unknown"

    def stop(self, p, sig=signal.SIGKILL):
        if p is not None and p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=5)

    def start_vagent(self, i, interval):
        self.vagents[i] = self.spawn(node_ns(i), [
            self.args.vigil, "agent", "--id", node_name(i), "--monitor",
            "%s:%d" % (MON_IP, VPORT), "--interval", interval, "--key-file",
            os.path.join(self.tmp, "%s.key" % node_name(i))],
            os.path.join(self.tmp, "vigil-%s.log" % node_name(i)))

    def start_sagent(self, i, join):
        argv = ["serf", "agent", "-node=" + node_name(i), "-bind=%s:%d" % (node_ip(i), SPORT),
                "-rpc-addr=127.0.0.1:7373", "-profile=lan", "-log-level=info",
                "-event-handler=" + self.handler]
        argv += ["-join=%s:%d" % (node_ip(j), SPORT) for j in join]
        p = self.spawn(node_ns(i), argv, None, pipe=True)
        self.sagents[i] = p
        self.serf_readers.append(SerfLog(node_name(i), p.stdout,
                                         os.path.join(self.tmp, "serf-%s.log" % node_name(i)),
                                         self.serf_lines, self.serf_lock))

    def serf_members_alive(self, via):
        r = run(["ip", "netns", "exec", node_ns(via), "serf", "members", "-rpc-addr=127.0.0.1:7373",
                 "-format=json"], check=False, timeout=10)
        if r.returncode != 0:
            return set()
        return {m["name"] for m in json.loads(r.stdout)["members"] if m["status"] == "alive"}

    # ---- vigil events ------------------------------------------------------

    def poll_events(self):
        while True:
            r = self.api.get_json(API, "/v1/events?since=%d&limit=10000" % self.events_seen, timeout=5)
            for e in r["events"]:
                self.events_seen = max(self.events_seen, e["seq"])
                if e.get("type") == "state":
                    self.vigil_events.append((e["time_us"] / 1e6, e["node"], e["new_state"]))
            if not r.get("more"):
                return

    def vigil_state_after(self, node, state, t0):
        for t, nd, st in self.vigil_events:
            if nd == node and st == state and t >= t0:
                return t
        return None

    def serf_after(self, kind, node, t0, observer_not=None):
        with self.serf_lock:
            hits = [(t, obs) for t, k, nd, obs in self.serf_lines
                    if k == kind and nd == node and t >= t0 and obs != observer_not]
        return hits

    def handler_failed_after(self, node, t0):
        best = None
        for i in range(self.n):
            path = os.path.join(self.tmp, "handler." + node_name(i))
            try:
                with open(path) as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) == 4 and parts[1] == "member-failed" and parts[3] == node:
                            t = float(parts[0])
                            if t >= t0 and (best is None or t < best):
                                best = t
            except OSError:
                continue
        return best

    # ---- phases ------------------------------------------------------------

    def calibrate(self):
        """Serf's bytes/s at 0 % loss, no kills; vigil agents at 1 s for their frame size."""
        log("== starting %d Serf members (LAN profile) and vigil agents at 1 s to calibrate"
            % self.n)
        self.start_sagent(0, [])
        time.sleep(1.0)
        for i in range(1, self.n):
            self.start_sagent(i, [0])
        want = {node_name(i) for i in range(self.n)}
        deadline = time.monotonic() + 60
        while self.serf_members_alive(0) != want:
            if time.monotonic() > deadline:
                raise RuntimeError("Serf members did not all join within 60 s")
            time.sleep(0.5)
        mon, err = self.start_monitor("1s", None)
        if mon is None:
            raise RuntimeError("vigil monitor did not start: " + err)
        self.monitor = mon
        for i in range(self.n):
            self.start_vagent(i, "1s")
        time.sleep(5)  # joins and first push-pulls settle
        c0, t0 = self.counters(), time.monotonic()
        time.sleep(self.args.calibrate)
        c1, t1 = self.counters(), time.monotonic()
        serf_bps, _ = self.l2_rate(c0, c1, "serf_out", t1 - t0)
        vb = c1["vigil_out"][0] - c0["vigil_out"][0]
        vp = c1["vigil_out"][1] - c0["vigil_out"][1]
        if vp == 0 or serf_bps <= 0:
            raise RuntimeError("calibration saw no traffic (vigil %d packets, Serf %.1f B/s)"
                               % (vp, serf_bps))
        frame = vb / vp + ETH_HEADER
        h = frame / serf_bps
        h_ms = max(10, int(round(h * 1000)))
        log("   Serf: %.1f B/s per node at layer 2 over %.0f s" % (serf_bps, t1 - t0))
        log("   vigil: %.1f bytes per heartbeat frame (%d heartbeats)" % (frame, vp))
        if self.args.interval:
            log("   -> vigil heartbeat interval %d ms as asked (--interval), not Serf's "
                "bytes/s (%d ms would match them)" % (self.args.interval, h_ms))
            h_ms = self.args.interval
        log("   -> vigil heartbeat interval %d ms (%.1f B/s per node)" % (
            h_ms, frame / (h_ms / 1000.0)))
        self.serf_calibrated = serf_bps
        self.frame = frame
        self.interval = h_ms / 1000.0
        # The real run: monitor and agents at h, with the chosen detector.
        for i in range(self.n):
            self.stop(self.vagents[i])
        self.stop(self.monitor)
        self.events_seen, self.vigil_events = 0, []  # a new monitor numbers events anew
        ival = "%dms" % h_ms
        fallback = ""
        mon, err = self.start_monitor(ival, self.args.detector)
        if mon is None:
            why = err.splitlines()[-1] if err else "no message"
            log("   vigil monitor refused --detector %s (%s): using the default detector"
                % (self.args.detector, why))
            fallback = ", as --detector %s was refused" % self.args.detector
            self.args.detector = None
            mon, err = self.start_monitor(ival, None)
            if mon is None:
                raise RuntimeError("vigil monitor did not start: " + err)
        self.monitor = mon
        self.detector_used = self.monitor_detector() + (
            "" if self.args.detector else " (the default)") + fallback
        for i in range(self.n):
            self.start_vagent(i, ival)
        deadline = time.monotonic() + 30
        while True:
            self.poll_events()
            alive = {nd for _, nd, st in self.vigil_events if st == "alive"}
            if alive >= want:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("vigil agents not all alive within 30 s")
            time.sleep(0.2)
        time.sleep(max(3.0, 40 * self.interval))  # the detectors learn the intervals

    def wait_until(self, cond, limit, step=0.1):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.poll_events()
            v = cond()
            if v:
                return v
            time.sleep(step)
        return None

    def one_kill(self, victim):
        name = node_name(victim)
        others = [j for j in range(self.n) if j != victim]
        kill_t = time.time()
        procs = [self.vagents[victim], self.sagents[victim]]
        random.shuffle(procs)
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
        for p in procs:
            p.wait(timeout=10)

        def detected():
            v = self.vigil_state_after(name, "dead", kill_t)
            s = self.serf_after("failed", name, kill_t, observer_not=name)
            return (v, min(t for t, _ in s)) if v is not None and s else None

        self.wait_until(detected, DETECT_LIMIT)
        v_dead = self.vigil_state_after(name, "dead", kill_t)
        s_hits = self.serf_after("failed", name, kill_t, observer_not=name)
        s_dead = min(t for t, _ in s_hits) if s_hits else None
        # Every other member must have the node failed before it comes back,
        # or a member the news had not reached yet never sees it go and come.
        if s_dead is not None:
            self.wait_until(lambda: {o for _, o in self.serf_after(
                "failed", name, kill_t, observer_not=name)} >= {node_name(j) for j in others},
                15)
        failed_at = {o for _, o in self.serf_after("failed", name, kill_t, observer_not=name)}
        # The handler runs after the agent's coalescing; give it a moment.
        h_dead = None
        if s_dead is not None:
            deadline = time.monotonic() + 6
            while h_dead is None and time.monotonic() < deadline:
                h_dead = self.handler_failed_after(name, kill_t)
                if h_dead is None:
                    time.sleep(0.2)
        rec = {
            "victim": name,
            "kill": kill_t,
            "vigil": None if v_dead is None else v_dead - kill_t,
            "serf": None if s_dead is None else s_dead - kill_t,
            "handler": None if h_dead is None else h_dead - kill_t,
        }
        log("   kill %-3s  vigil %-9s  Serf %-9s  (Serf's handler %s)" % (
            name, fmt_s(rec["vigil"]), fmt_s(rec["serf"]), fmt_s(rec["handler"])))
        # Back up: both agents again; wait until both systems see the node alive.
        restart_t = time.time()
        self.start_vagent(victim, "%dms" % round(self.interval * 1000))
        self.start_sagent(victim, others)

        def recovered():
            v = self.vigil_state_after(name, "alive", restart_t)
            joined = {obs for _, obs in self.serf_after("join", name, restart_t, observer_not=name)}
            return v is not None and joined >= failed_at

        ok = self.wait_until(recovered, RECOVER_LIMIT, step=0.2)
        if ok and len(failed_at) < len(others):
            # Members that never had it failed log no join: ask one of them.
            ok = self.wait_until(lambda: name in self.serf_members_alive(others[0]), 10,
                                 step=0.5)
        if not ok:
            # A failure Serf missed has no join to log: ask a member.
            alive = self.serf_members_alive(others[0])
            v = self.vigil_state_after(name, "alive", restart_t)
            log("   %s not seen back by both within %d s (vigil alive: %s; Serf members "
                "alive per %s: %s)" % (name, RECOVER_LIMIT, v is not None,
                                       node_name(others[0]), sorted(alive)))
        rec["recovered"] = time.time()
        return rec

    def run_level(self, loss):
        args = self.args
        log("== loss %d %%: %d s, up to %d kills" % (loss, args.duration, args.kills))
        self.set_loss(loss)
        self.poll_events()
        c0 = self.counters()
        t_start, m_start = time.time(), time.monotonic()
        slot = args.duration / max(1, args.kills)
        kills = []
        prev_end = m_start
        for j in range(args.kills):
            at = max(m_start + j * slot + random.uniform(0.2, 0.5) * slot, prev_end + 3.0)
            # A kill needs time to be detected and recovered within the level's hard limit.
            if at > m_start + 2 * args.duration:
                log("   out of time: %d of %d kills done" % (j, args.kills))
                break
            while time.monotonic() < at:
                self.poll_events()
                time.sleep(min(0.5, max(0.0, at - time.monotonic())))
            kills.append(self.one_kill(random.randrange(self.n)))
            prev_end = time.monotonic()
        end = m_start + args.duration
        while time.monotonic() < end:
            self.poll_events()
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))
        self.poll_events()
        c1 = self.counters()
        t_end, m_end = time.time(), time.monotonic()
        self.set_loss(0)
        secs = m_end - m_start
        return self.summarise(loss, kills, t_start, t_end, secs, c0, c1)

    def summarise(self, loss, kills, t_start, t_end, secs, c0, c1):
        windows = {}
        for k in kills:
            windows.setdefault(k["victim"], []).append((k["kill"], k["recovered"] + 2.0))

        def excused(node, t):
            return any(a <= t <= b for a, b in windows.get(node, []))

        v_susp = sum(1 for t, nd, st in self.vigil_events
                     if st == "suspect" and t_start <= t <= t_end and not excused(nd, t))
        v_dead = sum(1 for t, nd, st in self.vigil_events
                     if st == "dead" and t_start <= t <= t_end and not excused(nd, t))

        def episodes(kind):
            with self.serf_lock:
                hits = sorted((nd, t) for t, k, nd, obs in self.serf_lines
                              if k == kind and t_start <= t <= t_end and nd != obs
                              and not excused(nd, t))
            count, last = 0, {}
            for nd, t in hits:
                if nd not in last or t - last[nd] > EPISODE_GAP:
                    count += 1
                last[nd] = t
            return count

        s_susp, s_fail = episodes("suspect"), episodes("failed")
        vig_bps, _ = self.l2_rate(c0, c1, "vigil_out", secs)
        serf_bps, _ = self.l2_rate(c0, c1, "serf_out", secs)
        h = self.interval
        p = loss / 100.0
        floored = p < self.args.p_floor
        if floored:
            p = self.args.p_floor
        gaps = self.n * secs / h
        k = max(1, math.ceil(math.log(self.args.budget / gaps) / math.log(p)))
        return {
            "loss": loss, "secs": secs, "kills": kills,
            "v_susp": v_susp, "v_dead": v_dead, "s_susp": s_susp, "s_fail": s_fail,
            "vig_bps": vig_bps, "serf_bps": serf_bps,
            "p": p, "floored": floored, "gaps": gaps, "k": k, "limit": k * h,
        }

    # ---- report ------------------------------------------------------------

    def report(self, results):
        a = self.args
        log("")
        log("== vigil against Serf: %d nodes, detector %s, heartbeat interval %d ms, "
            "budget e = %g" % (self.n, self.detector_used, round(self.interval * 1000),
                               a.budget))
        log("   calibration at 0 %% loss: Serf %.1f B/s per node; vigil frame %.1f B, "
            "so %.1f B/s per node at this interval" % (
                self.serf_calibrated, self.frame, self.frame / self.interval))
        log("")
        for r in results:
            def col(key):
                return [k[key] for k in r["kills"] if k[key] is not None]
            v, s, hd = col("vigil"), col("serf"), col("handler")
            n_k = len(r["kills"])
            log("-- loss %d %% (%.0f s, %d kills)" % (r["loss"], r["secs"], n_k))
            log("   detection        vigil: median %s, p95 %s (%d of %d detected)" % (
                fmt_s(statistics.median(v) if v else None),
                fmt_s(nearest_rank(v, 0.95) if v else None), len(v), n_k))
            log("                    Serf:  median %s, p95 %s (%d of %d detected; "
                "decision, first EventMemberFailed)" % (
                    fmt_s(statistics.median(s) if s else None),
                    fmt_s(nearest_rank(s, 0.95) if s else None), len(s), n_k))
            log("                    Serf's handler: median %s, p95 %s (after the agent's "
                "event coalescing)" % (fmt_s(statistics.median(hd) if hd else None),
                                       fmt_s(nearest_rank(hd, 0.95) if hd else None)))
            if v and s:
                ratio = statistics.median(v) / statistics.median(s)
                log("   ratio            vigil/Serf medians: %.2f (goal <= 0.25: %s)" % (
                    ratio, "met" if ratio <= 0.25 else "missed"))
            log("   false alarms     vigil: %d suspicions, %d deaths; Serf: %d suspicion "
                "episodes, %d failure episodes" % (r["v_susp"], r["v_dead"], r["s_susp"],
                                                   r["s_fail"]))
            log("   bytes/s per node vigil %.1f, Serf %.1f (layer 2, sent, measured over the "
                "level)" % (r["vig_bps"], r["serf_bps"]))
            log("   limit            k*h = %d x %d ms = %.2f s (p = %g%s, G = %.0f gaps, "
                "e = %g)" % (r["k"], round(self.interval * 1000), r["limit"], r["p"],
                             ", floored: no loss set" if r["floored"] else "", r["gaps"],
                             a.budget))
        log("")
        log("per kill (seconds from SIGKILL): " + "; ".join(
            "%d%% %s v=%s s=%s" % (r["loss"], k["victim"],
                                   "-" if k["vigil"] is None else "%.2f" % k["vigil"],
                                   "-" if k["serf"] is None else "%.2f" % k["serf"])
            for r in results for k in r["kills"]))

    # ---- cleanup -----------------------------------------------------------

    def cleanup(self):
        for p in self.procs:
            try:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired, OSError):
                pass
        if self.api:
            self.api.close()
        if self.args.keep:
            log("kept: namespaces %s; logs in %s" % (" ".join(self.namespaces), self.tmp))
            log("remove with: for n in %s; do ip netns del $n; done; rm -rf %s" % (
                " ".join(self.namespaces), self.tmp))
            return
        for ns in reversed(self.namespaces):
            run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--loss", default="0,5,20", help="loss levels in %% (default 0,5,20)")
    ap.add_argument("--kills", type=int, default=5, help="kills per loss level (default 5)")
    ap.add_argument("--duration", type=float, default=180,
                    help="seconds per loss level (default 180; the goal is 1800)")
    ap.add_argument("--calibrate", type=float, default=60,
                    help="seconds at 0 %% loss to measure Serf's bytes/s (default 60)")
    ap.add_argument("--detector", default=None,
                    help="vigil's detector: phi, fixed or grid (default: the monitor's default)")
    ap.add_argument("--vigil", default="build/vigil")
    ap.add_argument("--interval", type=int, default=None,
                    help="vigil's heartbeat interval in ms instead of the one that matches "
                         "Serf's bytes/s (for example 100, the detection goal's setting)")
    ap.add_argument("--budget", type=float, default=0.01,
                    help="false deaths allowed over the run, for the limit (default 0.01)")
    ap.add_argument("--p-floor", type=float, default=1e-3,
                    help="loss probability assumed at 0 %% for the limit (default 1e-3)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true",
                    help="leave the namespaces and logs for inspection")
    a = ap.parse_args()
    a.loss = [int(x) for x in a.loss.split(",") if x.strip()]
    if not 2 <= a.nodes <= 200 or any(not 0 <= x < 100 for x in a.loss) or a.kills < 0:
        ap.error("need 2..200 nodes, loss levels in 0..99, kills >= 0")
    return a


def main():
    a = parse_args()
    a.vigil = preflight("detect_vs_serf", a.vigil)
    random.seed(a.seed)
    ver = run(["serf", "version"]).stdout.decode().splitlines()[0]
    log("== vigil against Serf, %s; %s; %s" % (
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), ver,
        "load average before: " + " ".join(open("/proc/loadavg").read().split()[:3])))

    b = Bench(a)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = 0
    try:
        # A master key for the monitor and a key of its own for each node, as deployed.
        b.keyfile = os.path.join(b.tmp, "master.key")
        run([a.vigil, "keygen", "-o", b.keyfile])
        for i in range(a.nodes):
            run([a.vigil, "keygen", "--node", node_name(i), "--master", b.keyfile,
                 "-o", os.path.join(b.tmp, "%s.key" % node_name(i))])
        b.setup_net()
        b.calibrate()
        results = [b.run_level(loss) for loss in a.loss]
        b.report(results)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        status = 130
    except Exception as e:  # report, clean up, fail
        log("detect_vs_serf: %s" % e)
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        b.cleanup()
    sys.exit(status)


if __name__ == "__main__":
    main()
