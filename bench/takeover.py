#!/usr/bin/env python3
"""Takeover time of redundant monitors after a leader crash, through a real etcd.

A benchmark, not a test: it prints figures and never fails on them.

    python3 bench/takeover.py [--ttl 5[,3]] [--rounds 20] [--monitors 2]
            [--sigterm-rounds 10] [--no-acts] [--restart-delay random|S]
            [--seed N] [--vigil build/vigil] [--keep]

It starts one etcd (a single member on loopback ports, its data in a
temporary directory removed at the end; Debian's etcd-server, which
scripts/install-deps.sh installs) and two or three `vigil monitor`
processes with a `monitor.etcd` block, so that they elect a leader
(src/vigil/leader.h). For each lease TTL given:

- Crash (SIGKILL), --rounds times. Wait until the election has settled
  (exactly one monitor says role "leader" in GET /v1/leader, every other
  one says "follower" of it at the same epoch). Start one agent sending to
  every monitor and wait until every monitor has it alive. SIGKILL the
  leader and, right after, the agent. The takeover time is the time from
  the kill until another monitor's GET /v1/leader says role "leader" (each
  survivor polled every 10 ms). The acts time is the time from the kill
  until the new leader's hook has run for the agent's death: the node died
  with the leader, the followers saw it die, and the new leader acts on it
  once it leads, after claiming the action in etcd (actgate.h). The hook
  appends a line with the wall-clock time it ran. Then the killed monitor
  is started again (same configuration and ports) and the next round waits
  for the election to settle again.
- Resignation (SIGTERM), --sigterm-rounds times: the leader revokes its
  lease on the way out, so a follower takes over at its next poll, without
  waiting for the TTL. Timed the same way; the old leader's exit status is
  checked to be 0.

The detector is the fixed one at 250 ms heartbeats, dead after 1 s, so the
agent's death is known to every follower long before the lease expires:
the acts time is the takeover plus the claim in etcd and the hook's start.

What to expect. The leader keeps its lease alive every TTL/3 and a killed
leader's lease ends TTL after the last keepalive etcd received, so between
TTL - TTL/3 and TTL after the kill; etcd looks for expired leases every
500 ms; each follower reads the leader key every TTL/3 and campaigns when
it is gone. The takeover therefore lies between about TTL - TTL/3 and the
bound TTL + 0.5 s + TTL/3 (plus round trips on loopback): on average about
TTL + 0.25 s with one follower, less with two (the earlier of their polls
wins), when the followers' poll cycles are at random points of the
leader's keepalive cycle.

The kill. Once the election has settled, each round waits a random time
of up to one TTL before the signal. Without it every kill would fall at
the same point of the survivors' poll cycle: a monitor started again
begins its cycle when it starts, and the round would kill right after it
has settled, which is right after its first poll. Likewise the killed
monitor is started again a random time of up to one TTL after the
takeover (--restart-delay): started at once, its poll cycle would begin
right after the new leader's poll (the one that won it the key), and so
run a few milliseconds behind the new leader's keepalives for the whole
next round. The lease of a leader killed in that round expires just after
one of its keepalive ticks, etcd notices within 500 ms, and the follower
has polled a few milliseconds after that tick, before etcd did: it waits
almost a whole extra period. `--restart-delay 0` measures that case.

Every wait is bounded; every process started here is killed by its pid on
exit (also on Ctrl-C), and the temporary directory removed unless --keep.
"""
import argparse
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from test_leader import Etcd  # noqa: E402  (a single-member etcd on loopback)
from vigil_harness import free_port  # noqa: E402

POLL = 0.010  # seconds between two reads of /v1/leader during a takeover
ETCD_CHECK = 0.5  # etcd looks for expired leases every 500 ms
HB_INTERVAL = "250ms"

CONF = """
monitor = {
  listen = [ "127.0.0.1:%(port)d" ];
  api = "127.0.0.1:%(api)d";
  insecure = true;
  heartbeat_interval = "%(hb)s";
  detector = { type = "fixed"; dead_after = "1s"; };
  name = "%(name)s";
  etcd = { endpoints = [ "%(etcd)s" ]; ttl = "%(ttl)ds"; prefix = "%(prefix)s"; };
  hooks = ( { command = [ "%(hook)s", "%(name)s" ]; on = [ "dead" ]; timeout = "5s"; } );
};
"""

# Appends "NODE STATE EPOCH MONITOR WALLTIME" to the file of actions.
HOOK = """#!/bin/sh
echo "$VIGIL_NODE $VIGIL_NEW_STATE $VIGIL_EPOCH $1 $(date +%s.%N)" >> "$(dirname "$0")/actions"
"""

_procs = []  # every process started here, killed by pid at exit


def spawn(args, log):
    out = open(log, "ab")
    try:
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
    finally:
        out.close()
    _procs.append(p)
    return p


def kill_all():
    for p in _procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    _procs.clear()


def wait_for(cond, timeout, what, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise RuntimeError("timed out after %.1f s waiting for %s" % (timeout, what))


class Mon:
    """One `vigil monitor`: fixed ports and configuration, so that it can be started again."""

    def __init__(self, vigil, tmp, name, etcd_url, ttl, prefix, hook):
        self.vigil, self.name = vigil, name
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port(socket.SOCK_DGRAM)
        self.api = free_port(socket.SOCK_STREAM)
        self.conf = os.path.join(self.dir, "monitor.conf")
        with open(self.conf, "w") as f:
            f.write(CONF % {"port": self.port, "api": self.api, "hb": HB_INTERVAL, "name": name,
                            "etcd": etcd_url, "ttl": ttl, "prefix": prefix, "hook": hook})
        self.log = os.path.join(self.dir, "monitor.log")
        self.proc = None

    def start(self):
        self.proc = spawn([self.vigil, "monitor", "-c", self.conf], self.log)
        wait_for(lambda: self.alive_api(), 15, "%s's API" % self.name)

    def alive_api(self):
        if self.proc.poll() is not None:
            raise RuntimeError("%s exited with %s; its log:\n%s" %
                               (self.name, self.proc.returncode, tail(self.log)))
        return self.leader(timeout=1) is not None

    def get(self, path, timeout=2):
        url = "http://127.0.0.1:%d%s" % (self.api, path)
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read().decode())

    def leader(self, timeout=2):
        """GET /v1/leader, or None when the monitor does not answer."""
        try:
            return self.get("/v1/leader", timeout)
        except (OSError, ValueError):
            return None

    def state(self, node):
        try:
            return self.get("/v1/nodes/%s" % node)["state"]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise
        except (OSError, ValueError):
            return None

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port


def tail(path, n=3000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def settled(mons):
    """The leading Mon once every other one follows it at its epoch; None otherwise."""
    views = {}
    for m in mons:
        v = m.leader(timeout=1)
        if v is None:
            return None
        views[m] = v
    leaders = [m for m, v in views.items() if v.get("role") == "leader"]
    if len(leaders) != 1:
        return None
    e = views[leaders[0]]["epoch"]
    for m, v in views.items():
        if m is not leaders[0] and (v.get("role") != "follower" or
                                    v.get("leader") != leaders[0].name or v.get("epoch") != e):
            return None
    return leaders[0]


def actions(tmp):
    try:
        with open(os.path.join(tmp, "actions")) as f:
            return [l.split() for l in f if l.strip()]
    except FileNotFoundError:
        return []


def watch_takeover(rest, t0, limit):
    """Polls every survivor every POLL s; (seconds after t0, Mon, epoch) of the first leader."""
    deadline = t0 + limit
    while time.monotonic() < deadline:
        for m in rest:
            v = m.leader(timeout=1)
            if v and v.get("role") == "leader":
                return time.monotonic() - t0, m, v.get("epoch")
        time.sleep(POLL)
    raise RuntimeError("no monitor took over within %.1f s" % limit)


def nearest_rank(xs, q):
    s = sorted(xs)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def summary(label, xs):
    if not xs:
        return "%-28s no samples" % label
    return ("%-28s n=%d  median %.2f s  p90 %.2f s  worst %.2f s  best %.2f s" %
            (label, len(xs), statistics.median(xs), nearest_rank(xs, 0.9), max(xs), min(xs)))


def run_ttl(args, etcd, tmp, ttl):
    d = os.path.join(tmp, "ttl%d" % ttl)
    os.makedirs(d)
    hook = os.path.join(d, "hook.sh")
    with open(hook, "w") as f:
        f.write(HOOK)
    os.chmod(hook, 0o755)
    names = ["mon-%s" % c for c in "abc"[:args.monitors]]
    mons = [Mon(args.vigil, d, n, etcd.url, ttl, "/vigil-bench-ttl%d" % ttl, hook) for n in names]
    for m in mons:
        m.start()
    period = ttl / 3.0
    limit = ttl + ETCD_CHECK + period + 10  # far past the bound: a hung takeover is an error
    print("\n== TTL %d s: %d monitors, %d crash rounds, %d SIGTERM rounds, restart delay %s" %
          (ttl, len(mons), args.rounds, args.sigterm_rounds,
           "random up to TTL" if args.restart_delay is None else "%g s" % args.restart_delay),
          flush=True)
    takeovers, acts = [], []
    for r in range(args.rounds):
        lead = wait_for(lambda: settled(mons), 30, "the election to settle")
        e1 = lead.leader()["epoch"]
        rest = [m for m in mons if m is not lead]
        agent = None
        node = "node-t%d-%d" % (ttl, r)
        if args.acts:
            extra = []
            for m in mons:
                extra += ["--monitor", m.addr]
            agent = spawn([args.vigil, "agent", "--id", node, "--interval", HB_INTERVAL] + extra,
                          os.path.join(d, "agent.log"))
            wait_for(lambda: all(m.state(node) == "alive" for m in mons), 15,
                     "every monitor to see %s alive" % node)
        n_acts = len(actions(d))
        # At a random point of the keepalive and poll cycles (see the top).
        time.sleep(random.uniform(0, ttl))
        if settled(mons) is not lead:
            raise RuntimeError("the election changed while waiting to kill the leader")
        t0 = time.monotonic()
        wall0 = time.time()
        os.kill(lead.proc.pid, signal.SIGKILL)
        if agent:
            os.kill(agent.pid, signal.SIGKILL)
        took, new, e2 = watch_takeover(rest, t0, limit)
        takeovers.append(took)
        line = "  crash %2d: %s killed, %s leads at epoch %s after %.3f s" % (
            r + 1, lead.name, new.name, e2, took)
        if args.acts:
            def acted():
                for a in actions(d)[n_acts:]:
                    if a[0] == node and a[1] == "dead":
                        return a
                return None
            a = wait_for(acted, 15, "the new leader's action for %s" % node)
            a_took = float(a[4]) - wall0
            acts.append(a_took)
            line += "; acted on %s after %.3f s (by %s, epoch %s)" % (node, a_took, a[3], a[2])
            if a[3] != new.name:
                line += "  <- not the new leader"
            agent.wait(timeout=5)
        if e2 is not None and e2 <= e1:
            line += "  <- epoch did not grow (%s -> %s)" % (e1, e2)
        print(line, flush=True)
        lead.proc.wait(timeout=5)
        if args.restart_delay is None:
            time.sleep(random.uniform(0, ttl))
        else:
            time.sleep(args.restart_delay)
        lead.start()

    handovers, statuses = [], []
    for r in range(args.sigterm_rounds):
        lead = wait_for(lambda: settled(mons), 30, "the election to settle")
        rest = [m for m in mons if m is not lead]
        time.sleep(random.uniform(0, ttl))
        if settled(mons) is not lead:
            raise RuntimeError("the election changed while waiting to stop the leader")
        t0 = time.monotonic()
        os.kill(lead.proc.pid, signal.SIGTERM)
        took, new, e2 = watch_takeover(rest, t0, limit)
        handovers.append(took)
        try:
            rc = lead.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = "still running after 10 s"
        statuses.append(rc)
        print("  SIGTERM %2d: %s resigned (exit %s), %s leads at epoch %s after %.3f s" %
              (r + 1, lead.name, rc, new.name, e2, took), flush=True)
        if lead.proc.poll() is None:
            os.kill(lead.proc.pid, signal.SIGKILL)
            lead.proc.wait(timeout=5)
        lead.start()

    for m in mons:
        log = tail(m.log, 1 << 20)
        if "Sanitizer" in log or "runtime error" in log:
            print("  %s reported a sanitizer error; see %s" % (m.name, m.log))
    for m in mons:
        os.kill(m.proc.pid, signal.SIGKILL)
        m.proc.wait(timeout=5)

    print("\n-- TTL %d s (keepalive and poll period TTL/3 = %.2f s, etcd's expiry check %.1f s,"
          " poll here %d ms)" % (ttl, period, ETCD_CHECK, POLL * 1000))
    print(summary("takeover after SIGKILL", takeovers))
    if args.acts:
        print(summary("first action of new leader", acts))
        gap = [a - t for a, t in zip(acts, takeovers)]
        if gap:
            print("%-28s median %.3f s, worst %.3f s" % ("  action after takeover",
                                                          statistics.median(gap), max(gap)))
    # The lease ends TTL - U(0, P) after the kill, etcd sees it U(0, 0.5 s) later, and the
    # first of k followers polls min(U(0, P)) after that: P / (k + 1) on average.
    k = len(mons) - 1
    mean = ttl - period / 2 + ETCD_CHECK / 2 + period / (k + 1)
    print("%-28s earliest TTL - TTL/3 = %.2f s; bound TTL + %.1f + TTL/3 = %.2f s; mean "
          "with random phases about %.2f s" % ("expected takeover", ttl - period, ETCD_CHECK,
                                                ttl + ETCD_CHECK + period, mean))
    over = [t for t in takeovers if t > ttl + ETCD_CHECK + period]
    under = [t for t in takeovers if t < ttl - period]
    print("%-28s %d over the bound, %d under the earliest" % ("", len(over), len(under)))
    print(summary("handover after SIGTERM", handovers))
    print("%-28s bound one poll period TTL/3 = %.2f s; exit statuses %s" %
          ("", period, sorted(set(map(str, statuses)))))
    return takeovers, acts, handovers


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        ev = subprocess.run(["etcd", "--version"], capture_output=True, text=True,
                            timeout=10).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        ev = "etcd version unknown"
    try:
        vv = subprocess.run([ARGS.vigil, "--version"], capture_output=True, text=True,
                            timeout=10).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        vv = "vigil version unknown"
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print("machine: %s; nproc %d; %s %s; %s; %s; load average %s" %
          (model, os.cpu_count(), platform.system(), platform.release(), ev, vv, load))


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ttl", default="5",
                    help="lease TTLs in whole seconds, comma separated (default 5, the "
                         "product's default; e.g. 5,3)")
    ap.add_argument("--rounds", type=int, default=20, help="SIGKILL rounds per TTL (default 20)")
    ap.add_argument("--sigterm-rounds", type=int, default=10,
                    help="SIGTERM rounds per TTL (default 10)")
    ap.add_argument("--monitors", type=int, default=2, choices=(2, 3))
    ap.add_argument("--no-acts", dest="acts", action="store_false",
                    help="no agent: time the takeover only, not the new leader's first action")
    ap.add_argument("--restart-delay", default="random",
                    help="seconds between a takeover and the restart of the killed monitor: "
                         "a number, or 'random' (default: uniform up to one TTL)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the random kill times")
    ap.add_argument("--vigil", default="build/vigil")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = ap.parse_args()
    ARGS = args
    random.seed(args.seed)
    if args.restart_delay == "random":
        args.restart_delay = None
    else:
        try:
            args.restart_delay = float(args.restart_delay)
        except ValueError:
            sys.exit("takeover.py: --restart-delay wants seconds or 'random'")
        if not 0 <= args.restart_delay <= 60:
            sys.exit("takeover.py: --restart-delay 0..60 s")
    args.vigil = os.path.abspath(args.vigil)
    if not os.access(args.vigil, os.X_OK):
        sys.exit("takeover.py: %s not found: build first" % args.vigil)
    if not shutil.which("etcd"):
        sys.exit("takeover.py: etcd not found: scripts/install-deps.sh installs it (etcd-server)")
    ttls = [int(x) for x in args.ttl.split(",") if x]
    if any(t < 2 or t > 60 for t in ttls) or args.rounds < 0 or args.sigterm_rounds < 0 or \
            args.rounds > 1000 or args.sigterm_rounds > 1000:
        sys.exit("takeover.py: TTLs 2..60 s, rounds 0..1000")

    def on_signal(signo, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    print("== vigil takeover benchmark, %s" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    machine()
    tmp = tempfile.mkdtemp(prefix="vigil-takeover-")
    etcd = None
    results = {}
    try:
        etcd = Etcd()
        for ttl in ttls:
            results[ttl] = run_ttl(args, etcd, tmp, ttl)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        kill_all()
        if etcd:
            etcd.stop()
        if args.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if len(ttls) > 1:
        print("\n== summary")
        for ttl, (tk, ac, ho) in results.items():
            print("TTL %d s:" % ttl)
            print("  " + summary("takeover after SIGKILL", tk))
            if ac:
                print("  " + summary("first action", ac))
            print("  " + summary("handover after SIGTERM", ho))
    return 0


if __name__ == "__main__":
    sys.exit(main())
