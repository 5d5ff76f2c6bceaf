#!/usr/bin/env python3
"""Ingest of a real `vigil monitor` with and without its state store, in one run.

A benchmark, not a test: it prints figures and never fails on them.

    python3 bench/store_ingest.py [--nodes 100000] [--seconds 20] [--warmup 10]
            [--rounds 2] [--churn-rate 1000] [--churn-silence 3] [--no-churn]
            [--phases LIST] [--trace-fsync] [--vigil build/vigil]
            [--sender build/ingest_sender] [--keep]

bench_ingest measures the core (the library) in a receive loop of its own;
the state store lives in the daemon (monitor.state_dir, src/vigil/mstore.c,
src/io/store_sqlite.c), so this drives the daemon itself. Each phase starts
a fresh `vigil monitor` (a legacy cluster key, max_nodes = --nodes,
heartbeat_interval = --interval-ms, everything else default) pinned to
CPU 0, and `ingest_sender` (bench/ingest_sender.c) pinned to CPU 1, which
sends authenticated heartbeats from --nodes ids over loopback UDP as fast
as it can, each advertising --interval-ms (default nodes / 400 ms, about
the time a round through the ids takes on a machine where one core sends
400,000 datagrams a second). The first round through the ids registers
every node: one "unknown -> alive" event each. After --warmup seconds it
reads GET /v1/health, again --seconds later, and reports for that window:

- sent/s: what the sender sent (from its progress lines), and its CPU;
- accepted/s: the monitor's counters.accepted, the heartbeats it took in,
  and the monitor's CPU (all its threads, /proc/PID/stat);
- drops: counters.recv_drops (the socket buffer overflowed) and what was
  sent but never read (sent - counters.datagrams);
- pauses: counters.pauses, stalls of the monitor's loop longer than
  pause_tolerance (2 heartbeat intervals, at least 100 ms);
- events: counters.events, and the nodes' states at the end;
- an API probe: GET /v1/nodes/node-0000000 every 50 ms through the window.
  The API is answered on the monitor's loop thread (src/io/httpd_mhd.c),
  so a slow answer means a loop that was busy meanwhile (a commit, a
  flush of every node's mark, or simply no CPU);
- from the monitor's log: how long the registration of all nodes took, and
  the "-> dead" events in the warm-up and in the window. Without churn
  every death is false.
- other load: the CPU time of the whole machine (/proc/stat) beyond the two
  processes, not counting niced processes (a background job at nice 19
  only takes what is left idle). A phase with more than OTHER_MAX cores of
  it is flagged: read it with care, or run again.

The phases, in this order, every round:

  sink          the sender to a UDP socket nobody reads: the sender's own
                ceiling on this machine (the kernel drops at the full
                socket, which costs it less than a delivery);
  plain         the monitor without a store;
  store         the same with --state-dir (a new directory in the temporary
                directory; SQLite in WAL mode, synchronous FULL: every
                commit waits for fdatasync);
  plain+churn   without a store, the sender silencing --churn-rate nodes a
  store+churn   second for --churn-silence s each, so that a steady flow
                of events (suspect, dead, alive: about 3 x --churn-rate a
                second) goes through the monitor and, with the store, a
                commit for every loop turn that has events.

With --trace-fsync, one more store phase (and one with churn) runs with
`perf trace -s -e fdatasync,fsync` attached to the monitor, for the number
of commits (one fdatasync each) and their latency over the whole phase;
these traced phases are reported apart. `--phases none --trace-fsync` runs
only them.

Every wait is bounded; every process started is killed by its pid at the
end of its phase (also on Ctrl-C), and the temporary directory removed.
"""
import argparse
import datetime
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from vigil_harness import free_port  # noqa: E402
from nsbench import cpu_s, loopback_get as get  # noqa: E402

CONF = """
monitor = {
  listen = [ "127.0.0.1:%(port)d" ];
  api = "127.0.0.1:%(api)d";
  key_file = "%(key)s";
  max_nodes = %(max)d;
  heartbeat_interval = "%(hb)dms";
};
"""

_procs = []
PROBE_EVERY = 0.05  # seconds between two probes of the API
# A phase is flagged when the rest of the machine took more than this many cores, not
# counting niced processes (which only get what is left idle) but counting the kernel's
# softirq time, which on loopback is about 0.1 to 0.2 of a core here.
OTHER_MAX = 0.35


def pin(cpu):
    def f():
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass
    return f


def spawn(args, log, cpu=None, stdout=None):
    out = open(log, "ab")
    try:
        p = subprocess.Popen(args, stdout=stdout or out, stderr=out, stdin=subprocess.DEVNULL,
                             preexec_fn=pin(cpu) if cpu is not None and os.cpu_count() > 1
                             else None, text=stdout is not None)
    finally:
        out.close()
    _procs.append(p)
    return p


def kill_all():
    for p in _procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    _procs.clear()


def stop(p, sig=signal.SIGTERM, timeout=20):
    if p.poll() is None:
        os.kill(p.pid, sig)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        return p.wait(timeout=5)


class Sender:
    """ingest_sender; its progress lines (monotonic time, sent) read by a thread."""

    def __init__(self, args, port, key, seconds, log, churn):
        cmd = [args.sender, "--target", "127.0.0.1:%d" % port, "--key", key,
               "--seconds", "%.1f" % seconds, "--nodes", str(args.nodes),
               "--interval-ms", str(args.interval_ms)]
        if churn:
            cmd += ["--churn-rate", str(args.churn_rate),
                    "--churn-silence", str(args.churn_silence)]
        self.points = []
        self.summary = None
        self.lock = threading.Lock()
        self.proc = spawn(cmd, log, cpu=1, stdout=subprocess.PIPE)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            m = re.match(r"at ([0-9.]+) sent (\d+)", line)
            with self.lock:
                if m:
                    self.points.append((float(m.group(1)), int(m.group(2))))
                elif line.startswith("sent "):
                    self.summary = line.strip()

    def sent_at(self, t):
        """Datagrams sent by monotonic time t, interpolated between progress lines."""
        with self.lock:
            pts = list(self.points)
        for (t0, s0), (t1, s1) in zip(pts, pts[1:]):
            if t0 <= t <= t1:
                return s0 + (s1 - s0) * (t - t0) / (t1 - t0) if t1 > t0 else s1
        return None

    def wait(self, timeout):
        self.proc.wait(timeout=timeout)
        self.thread.join(timeout=5)


def cpus_busy_s():
    """(busy, niced): CPU seconds of all CPUs together from /proc/stat: busy is all but idle
    and iowait; niced is the part spent in processes of positive nice (a background job)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(v) - v[3] - v[4]) / hz, v[1] / hz


def wait_api(proc, api, log, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the monitor exited with %s:\n%s" % (proc.returncode, tail(log)))
        try:
            return get(api, "/v1/health", timeout=2)
        except (OSError, ValueError):
            time.sleep(0.05)
    raise RuntimeError("the monitor's API did not come up:\n" + tail(log))


def tail(path, n=3000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


class Probe:
    """GET /v1/nodes/node-0000000 every PROBE_EVERY s: the API is answered on the monitor's
    loop thread, so a slow answer is a loop that was busy (a commit, a flush) meanwhile."""

    def __init__(self, api):
        self.api, self.lat, self.stop_ev = api, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_ev.is_set():
            t = time.monotonic()
            try:
                get(self.api, "/v1/nodes/node-0000000", timeout=10)
            except urllib.error.HTTPError:
                pass  # a 404 is an answer too
            except (OSError, ValueError):
                pass
            self.lat.append(time.monotonic() - t)
            self.stop_ev.wait(PROBE_EVERY)

    def stop(self):
        self.stop_ev.set()
        self.thread.join(timeout=15)
        return list(self.lat)


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ")


def log_figures(path, wall0, wall1):
    """From the monitor's log: registrations and deaths, before and in the window."""
    out = {"reg_first": None, "reg_last": None, "reg_n": 0, "dead_warmup": 0, "dead_window": 0,
           "pauses_logged": 0}
    try:
        f = open(path, errors="replace")
    except OSError:
        return out
    with f:
        for line in f:
            m = LOG_TIME.match(line)
            if not m:
                continue
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            if "unknown -> alive" in line:
                out["reg_n"] += 1
                if out["reg_first"] is None:
                    out["reg_first"] = t
                out["reg_last"] = t
            elif "-> dead" in line:
                if t < wall0:
                    out["dead_warmup"] += 1
                elif t <= wall1:
                    out["dead_window"] += 1
            elif "monitor paused" in line:
                out["pauses_logged"] += 1
    return out


def sleep_until(t):
    while True:
        d = t - time.monotonic()
        if d <= 0:
            return
        time.sleep(min(d, 0.2))


def run_phase(args, tmp, key, kind, churn, trace=False):
    """One phase; a dict of its figures."""
    d = tempfile.mkdtemp(prefix="phase-", dir=tmp)
    log = os.path.join(d, "monitor.log")
    total = args.warmup + args.seconds + 1.0
    res = {"kind": kind + ("+churn" if churn else "") + (" traced" if trace else "")}
    mon = sink = tracer = None
    try:
        if kind == "sink":
            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sink.bind(("127.0.0.1", 0))
            port = sink.getsockname()[1]
        else:
            port, api = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
            conf = os.path.join(d, "monitor.conf")
            with open(conf, "w") as f:
                f.write(CONF % {"port": port, "api": api, "key": key,
                                "max": max(args.nodes, 1024), "hb": args.interval_ms})
            cmd = [args.vigil, "monitor", "-c", conf]
            if kind == "store":
                res["state_dir"] = os.path.join(d, "state")
                cmd += ["--state-dir", res["state_dir"]]
            mon = spawn(cmd, log, cpu=0)
            wait_api(mon, api, log)
            if trace:
                res["trace_file"] = os.path.join(d, "perf-trace.txt")
                tracer = spawn(["perf", "trace", "-s", "-e", "fdatasync,fsync", "-p",
                                str(mon.pid), "-o", res["trace_file"]],
                               os.path.join(d, "perf.log"))
                time.sleep(1.0)  # perf attaches
        # It runs past the window (answers may be slow) and is stopped after it.
        snd = Sender(args, port, key, total + 10, os.path.join(d, "sender.log"), churn)
        t_start = time.monotonic()
        t0, t1 = t_start + args.warmup, t_start + args.warmup + args.seconds
        sleep_until(t0)
        h0 = get(api, "/v1/health") if mon else None
        m0, wall0 = time.monotonic(), time.time()
        probe = Probe(api) if mon else None
        mc0, sc0, b0 = cpu_s(mon.pid) if mon else None, cpu_s(snd.proc.pid), cpus_busy_s()
        sleep_until(t1)
        lat = probe.stop() if probe else []
        h1 = get(api, "/v1/health") if mon else None
        m1, wall1 = time.monotonic(), time.time()
        mc1, sc1, b1 = cpu_s(mon.pid) if mon else None, cpu_s(snd.proc.pid), cpus_busy_s()
        s0, s1 = snd.sent_at(m0), snd.sent_at(m1)
        if s1 is None:  # the progress line after m1 may not be read yet
            time.sleep(1.0)
            s0, s1 = snd.sent_at(m0), snd.sent_at(m1)
        stop(snd.proc, signal.SIGKILL, timeout=10)
        if s0 is None or s1 is None:
            raise RuntimeError("the sender's progress does not cover the window: %s" %
                               tail(os.path.join(d, "sender.log")))
        w = m1 - m0
        res["window_s"] = w
        res["sent_per_s"] = (s1 - s0) / w
        res["sender"] = snd.summary
        if sc0 is not None and sc1 is not None:
            res["sender_cpu"] = (sc1 - sc0) / w
        if mc0 is not None and mc1 is not None:
            res["monitor_cpu"] = (mc1 - mc0) / w
        # Cores taken by everything else at nice 0 or below (the kernel's softirq work
        # included), and by niced processes, which only take what is left idle.
        res["niced_cpu"] = (b1[1] - b0[1]) / w
        res["other_cpu"] = ((b1[0] - b0[0]) / w - res["niced_cpu"] - res.get("sender_cpu", 0) -
                            res.get("monitor_cpu", 0))
        if mon:
            c0, c1 = h0["counters"], h1["counters"]
            dc = {k: c1[k] - c0[k] for k in c0 if isinstance(c0[k], (int, float))}
            res["accepted_per_s"] = dc["accepted"] / w
            res["datagrams_per_s"] = dc["datagrams"] / w
            res["recv_drops"] = dc["recv_drops"]
            res["unread"] = max(0, (s1 - s0) - dc["datagrams"])
            res["pauses"] = dc["pauses"]
            res["paused_s"] = dc["paused_total_s"]
            res["events"] = dc["events"]
            res["events_lost"] = dc["events_lost"]
            res["stale"] = dc["stale"]
            res["nodes"] = {k: v for k, v in h1["nodes"].items() if v and k != "total"}
            if lat:
                lat.sort()
                res["probe"] = (len(lat), statistics.median(lat), lat[int(0.99 * (len(lat) - 1))],
                                lat[-1], sum(1 for x in lat if x > 0.1))
        if tracer:
            stop(tracer, signal.SIGINT, timeout=20)
        if mon:
            res["exit"] = stop(mon)
            res["log"] = log_figures(log, wall0, wall1)
            if kind == "store":
                db = os.path.join(res["state_dir"], "vigil.db")
                con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
                res["db_events"] = con.execute("SELECT count(*) FROM events").fetchone()[0]
                res["db_nodes"] = con.execute("SELECT count(*) FROM nodes").fetchone()[0]
                con.close()
                res["db_bytes"] = sum(os.path.getsize(os.path.join(res["state_dir"], f))
                                      for f in os.listdir(res["state_dir"]))
        if tracer and os.path.exists(res["trace_file"]):
            res["trace"] = parse_trace(res["trace_file"])
    finally:
        if sink:
            sink.close()
        kill_all()
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)
    return res


def parse_trace(path):
    """perf trace -s: {syscall: (calls, total ms, min, avg, max)}, summed over threads."""
    out = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"\s+(fdatasync|fsync)\s+(\d+)\s+\d+\s+([0-9.]+)\s+([0-9.]+)\s+"
                         r"([0-9.]+)\s+([0-9.]+)", line)
            if m:
                name = m.group(1)
                calls, tot, mn, avg, mx = (int(m.group(2)), float(m.group(3)),
                                           float(m.group(4)), float(m.group(5)),
                                           float(m.group(6)))
                if name in out:
                    c0, t0, mn0, _, mx0 = out[name]
                    calls, tot, mn, mx = c0 + calls, t0 + tot, min(mn0, mn), max(mx0, mx)
                    avg = tot / calls if calls else 0
                out[name] = (calls, tot, mn, avg, mx)
    return out


def fmt(v):
    return "{:,.0f}".format(v)


def show(res):
    s = "  %-20s sent/s %10s (sender CPU %3.0f %%)" % (res["kind"], fmt(res["sent_per_s"]),
                                                     100 * res.get("sender_cpu", 0))
    other = res.get("other_cpu", 0)
    flag = "  <- other load: %.2f cores besides the two processes" % other if other > OTHER_MAX \
        else "  (other %.2f, niced %.2f cores)" % (other, res.get("niced_cpu", 0))
    if "accepted_per_s" in res:
        s += ("   accepted/s %10s   recv_drops %9s  unread %9s  pauses %d (%.2f s)  "
              "events %s" % (fmt(res["accepted_per_s"]), fmt(res["recv_drops"]),
                             fmt(res["unread"]), res["pauses"], res["paused_s"],
                             fmt(res["events"])))
    print(s + flag, flush=True)
    if "monitor_cpu" in res:
        print("    monitor CPU %.0f %% of a core: %s accepted per CPU-second" %
              (100 * res["monitor_cpu"], fmt(res["accepted_per_s"] / res["monitor_cpu"])
               if res["monitor_cpu"] > 0 else "-"), flush=True)
    if "probe" in res:
        n, med, p99, mx, slow = res["probe"]
        print("    API probe (%d answers): median %.1f ms, p99 %.1f ms, max %.1f ms, %d over 100 ms"
              % (n, med * 1e3, p99 * 1e3, mx * 1e3, slow), flush=True)
    if "log" in res:
        lg = res["log"]
        reg = ("%d registered in %.2f s" % (lg["reg_n"], lg["reg_last"] - lg["reg_first"])
               if lg["reg_n"] else "none registered")
        print("    start: %s; '-> dead' events: %d in the warm-up, %d in the window; pause "
              "events logged %d" % (reg, lg["dead_warmup"], lg["dead_window"],
                                    lg["pauses_logged"]), flush=True)
    if "nodes" in res:
        extra = "    nodes at the end: %s" % res["nodes"]
        if "db_events" in res:
            extra += "; store: %s events, %s nodes, %.1f MB" % (
                fmt(res["db_events"]), fmt(res["db_nodes"]), res["db_bytes"] / 1e6)
        if res.get("events_lost"):
            extra += "; events_lost %d" % res["events_lost"]
        print(extra, flush=True)
    if "trace" in res:
        for name, (calls, tot, mn, avg, mx) in res["trace"].items():
            print("    %s over the whole phase: %d calls, %.1f ms in all, min %.2f / avg %.2f "
                  "/ max %.2f ms" % (name, calls, tot, mn, avg, mx), flush=True)


def machine(args):
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        vv = subprocess.run([args.vigil, "--version"], capture_output=True, text=True,
                            timeout=10).stdout.strip()
    except OSError:
        vv = "?"
    fs = "?"
    try:
        fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", tempfile.gettempdir()],
                            capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print("machine: %s; nproc %d; %s %s; %s; SQLite %s (Python's); store on %s (%s); "
          "load average %s" % (model, os.cpu_count(), platform.system(), platform.release(), vv,
                               sqlite3.sqlite_version, tempfile.gettempdir(), fs, load))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=100000)
    ap.add_argument("--seconds", type=float, default=20, help="measured window per phase")
    ap.add_argument("--warmup", type=float, default=10, help="seconds before the window")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--interval-ms", type=int, default=None,
                    help="the interval heartbeats advertise and the monitor's "
                         "heartbeat_interval (default nodes / 400 ms: a round through "
                         "the ids at 400,000 datagrams a second)")
    ap.add_argument("--churn-rate", type=int, default=1000, help="nodes silenced per second")
    ap.add_argument("--churn-silence", type=float, default=3.0, help="seconds each stays silent")
    ap.add_argument("--no-churn", dest="churn", action="store_false")
    ap.add_argument("--no-sink", dest="sink", action="store_false")
    ap.add_argument("--phases", default=None,
                    help="run only these of sink,plain,store,plain+churn,store+churn "
                         "(none: only the traced phases of --trace-fsync)")
    ap.add_argument("--trace-fsync", action="store_true")
    ap.add_argument("--vigil", default="build/vigil")
    ap.add_argument("--sender", default=None, help="default: ingest_sender beside --vigil")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.vigil = os.path.abspath(args.vigil)
    args.sender = os.path.abspath(args.sender or os.path.join(os.path.dirname(args.vigil),
                                                              "ingest_sender"))
    for exe in (args.vigil, args.sender):
        if not os.access(exe, os.X_OK):
            sys.exit("store_ingest.py: %s not found: build first" % exe)
    if not (1000 <= args.nodes <= 10000000 and 1 <= args.seconds <= 120 and
            0.5 <= args.warmup <= 60 and 1 <= args.rounds <= 20):
        sys.exit("store_ingest.py: --nodes 1000..10^7, --seconds 1..120, --warmup 0.5..60, "
                 "--rounds 1..20")
    if args.interval_ms is None:
        args.interval_ms = max(10, args.nodes // 400)
    if args.trace_fsync and not shutil.which("perf"):
        sys.exit("store_ingest.py: --trace-fsync needs perf")

    def on_signal(signo, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    print("== vigil ingest with and without the state store, %s" %
          time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    machine(args)
    print("nodes %d, heartbeat interval %d ms, warm-up %.0f s, window %.0f s, rounds %d, churn "
          "%s" % (args.nodes, args.interval_ms, args.warmup, args.seconds, args.rounds,
                  "%d nodes/s silent for %.1f s" % (args.churn_rate, args.churn_silence)
                  if args.churn else "off"), flush=True)
    tmp = tempfile.mkdtemp(prefix="vigil-store-ingest-")
    key = os.path.join(tmp, "cluster.key")
    with open(key, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    os.chmod(key, 0o600)
    phases = []
    if args.sink:
        phases.append(("sink", False))
    phases += [("plain", False), ("store", False)]
    if args.churn:
        phases += [("plain", True), ("store", True)]
    if args.phases is not None:
        want = [x for x in args.phases.split(",") if x]
        phases = [ph for ph in phases if ph[0] + ("+churn" if ph[1] else "") in want]
    results = {}
    try:
        for r in range(args.rounds):
            print("-- round %d" % (r + 1), flush=True)
            for kind, churn in phases:
                res = run_phase(args, tmp, key, kind, churn)
                results.setdefault(res["kind"], []).append(res)
                show(res)
        if args.trace_fsync:
            print("-- traced (perf trace attached to the monitor)", flush=True)
            for churn in ([False, True] if args.churn else [False]):
                res = run_phase(args, tmp, key, "store", churn, trace=True)
                results.setdefault(res["kind"], []).append(res)
                show(res)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        kill_all()
        if args.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print("\n== medians over %d rounds (per second of the window)" % args.rounds)
    med = {}
    for kind, rs in results.items():
        if "traced" in kind:
            continue
        sent = statistics.median(r["sent_per_s"] for r in rs)
        acc = None
        if "accepted_per_s" in rs[0]:
            acc = statistics.median(r["accepted_per_s"] for r in rs)
        med[kind] = (sent, acc)
        line = "  %-12s sent/s %10s" % (kind, fmt(sent))
        if acc is not None:
            line += "   accepted/s %10s   drops %s   pauses %s" % (
                fmt(acc), "/".join(fmt(r["recv_drops"]) for r in rs),
                "/".join(str(r["pauses"]) for r in rs))
        flagged = sum(1 for r in rs if r.get("other_cpu", 0) > OTHER_MAX)
        if flagged:
            line += "   (%d of %d flagged: other load)" % (flagged, len(rs))
        print(line)
    for base, other in (("plain", "store"), ("plain+churn", "store+churn")):
        if base in med and other in med and med[base][1]:
            print("  %s / %s accepted: %.1f %%" %
                  (other, base, 100.0 * med[other][1] / med[base][1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
