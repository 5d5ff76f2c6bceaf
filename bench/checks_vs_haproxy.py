#!/usr/bin/env python3
"""Service checks by vigil agents against HAProxy's own health checks.

A benchmark, not a test: it prints figures and never fails on them.

    sudo python3 bench/checks_vs_haproxy.py [--vigil build/vigil] [--rate 200]
         [--runs A,B,C] [--background 10] [--repeat 1] [--keep]

Needs root (network namespaces), ip and haproxy (scripts/install-deps.sh
installs it). Takes about a minute and a half (--repeat N: N times that).

The network. Two namespaces joined by one veth pair: LB (the load
balancer's host) and SRV (the web servers' host). LB runs HAProxy (its
frontend on 127.0.0.1, backend "web" with three servers in SRV), the load
generator and, in run B, `vigil monitor`. SRV runs three web servers
(Python's http.server, "ok" on / and /health, a new connection per request)
and, in run B, one `vigil agent` per web server (web1..web3, node keys
derived from a master key) with an HTTP check of its own server over
127.0.0.1 every 50 ms (timeout 40 ms, fall 1, rise 2; --check-interval,
--check-timeout, --check-fall change them). Its heartbeats go
to the monitor every second, and a check's change is sent at once.

The runs:

  A   HAProxy checks each server: `check inter 200ms fall 2 rise 2`, with
      `option httpchk GET /health`. No vigil.
  B   HAProxy without `check`; the agents check their own servers, and the
      monitor's haproxy action, on the agents' "http" checks, puts a server
      whose check turned critical into maint (and back to ready when it
      passes again).
  C   HAProxy's default `check` (inter 2s fall 3 rise 2), `option httpchk`.

Each run starts its processes, waits until every server is up in HAProxy
(and, in B, every agent's check passes at the monitor), then:

  1. Background traffic: bytes on the veth pair with no client load, rx
     plus tx of the LB side (`ip -s link`, the kernel's counters of
     /sys/class/net/DEV/statistics), over --background seconds (10). For A
     the same is measured once more with plain TCP checks (no httpchk,
     HAProxy's cheapest check), as "A/tcp".
  2. The kill: the load generator, in LB, sends --rate requests a second
     (200) through HAProxy on a fixed schedule, each on a new connection
     (HTTP/1.0, Connection: close); after --warmup s (3) web server 2 gets
     SIGKILL (its host, namespace and agent stay up), and the load goes on
     for --after s (8). HAProxy has `retries 0` and no `option redispatch`,
     so a request sent to the dead server fails (503) instead of being
     retried elsewhere: every request routed to web2 before it is out of
     rotation shows as a failure.

Figures per run: failed requests after the kill (those that finished after
it; any before it are reported apart), and of those, how many HAProxy's log
(`option httplog` to its stdout) has sent to web2 and how many found no
server in rotation (<NOSRV>); the time from the kill to the start of the
last failed request; when HAProxy had web2 out of rotation (its runtime API
polled every 20 ms through the unix socket, which adds nothing to the
veth); the healthy servers taken out from the background window on (A, C:
HAProxy's "is DOWN" lines; B: checks of healthy servers that turned
critical at the monitor, each putting its server into maint until it
passed again); and the background bytes/s. Then the ratios of B to A
(medians with --repeat).

Everything is named after this process's pid; every process started is
killed by pid and both namespaces deleted by name at the end, Ctrl-C
included (--keep leaves the logs).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nsbench import NsCaller  # noqa: E402

TAG = "hpb%d" % (os.getpid() % 100000)
NS_LB, NS_SRV = TAG + "l", TAG + "s"
DEV_LB, DEV_SRV = TAG + "x", TAG + "y"
SUBNET = "10.217.%d" % (os.getpid() % 200 + 20)
LB_IP, SRV_IP = SUBNET + ".1", SUBNET + ".2"
FRONT = 8080                      # HAProxy's frontend, 127.0.0.1 in LB
VPORT = 7946                      # the monitor's heartbeats, LB_IP
API = "127.0.0.1:7947"            # the monitor's API, in LB
PORTS = {"web1": 8081, "web2": 8082, "web3": 8083}
VICTIM = "web2"


def log(msg=""):
    print(msg, flush=True)


def run(args, check=True, timeout=30):
    r = subprocess.run(list(args), capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stderr.decode(errors="replace").strip()))
    return r


SERVER = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path in ("/", "/health")
        body = b"ok\n" if ok else b"not found\n"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer.request_queue_size = 256
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""

# The load generator: a request every 1/rate s from the start time on, each on a
# new connection, by a pool of threads (so a slow answer does not delay the
# schedule); writes [start, seconds, status, error] per request as JSON.
LOADGEN = r"""
import json, socket, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
host, port, rate, secs, start, out = (sys.argv[1], int(sys.argv[2]), float(sys.argv[3]),
                                      float(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
req = b"GET / HTTP/1.0\r\nHost: bench\r\nConnection: close\r\n\r\n"
res, lock = [], threading.Lock()
def one():
    t0 = time.time()
    status, err = 0, ""
    try:
        s = socket.create_connection((host, port), timeout=2)
        try:
            s.settimeout(2)
            s.sendall(req)
            data = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
        finally:
            s.close()
        if data.startswith(b"HTTP/"):
            status = int(data.split(b" ", 2)[1])
        else:
            err = "no answer"
    except (OSError, ValueError, IndexError) as e:
        err = type(e).__name__
    with lock:
        res.append([t0, time.time() - t0, status, err])
pool = ThreadPoolExecutor(64)
n = int(rate * secs)
for i in range(n):
    d = start + i / rate - time.time()
    if d > 0:
        time.sleep(d)
    pool.submit(one)
pool.shutdown(wait=True)
with open(out, "w") as f:
    json.dump(res, f)
"""


class Bench:
    def __init__(self, args):
        self.a = args
        self.tmp = tempfile.mkdtemp(prefix="vigil-hapb-")
        self.procs = []        # every Popen started, for cleanup by pid
        self.namespaces = []   # every namespace made, for cleanup by name
        self.api = None
        self.sock = os.path.join(self.tmp, "admin.sock")
        self.master = os.path.join(self.tmp, "master.key")
        self.run_name = "setup"

    # ---- network and processes --------------------------------------------

    def setup_net(self):
        for ns in (NS_LB, NS_SRV):
            run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
        run(["ip", "-n", NS_LB, "link", "add", DEV_LB, "type", "veth", "peer", "name", DEV_SRV,
             "netns", NS_SRV])
        run(["ip", "-n", NS_LB, "addr", "add", LB_IP + "/24", "dev", DEV_LB])
        run(["ip", "-n", NS_SRV, "addr", "add", SRV_IP + "/24", "dev", DEV_SRV])
        for ns, dev in ((NS_LB, DEV_LB), (NS_SRV, DEV_SRV)):
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        self.api = NsCaller(NS_LB)

    def spawn(self, ns, argv, logname):
        with open(os.path.join(self.tmp, "%s-%s" % (self.run_name, logname)), "ab") as out:
            p = subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def kill(self, p):
        if p is not None and p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if p is not None:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill(p)
        self.procs = []

    def wait_until(self, cond, limit, what, step=0.05):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                v = cond()
                if v:
                    return v
            except (OSError, ValueError, KeyError, RuntimeError, urllib.error.URLError):
                pass
            time.sleep(step)
        raise RuntimeError("%s did not happen within %d s (logs: %s)" % (what, limit, self.tmp))

    def veth_bytes(self):
        r = run(["ip", "-n", NS_LB, "-s", "-j", "link", "show", "dev", DEV_LB])
        st = json.loads(r.stdout)[0]["stats64"]
        return st["rx"]["bytes"] + st["tx"]["bytes"], st["rx"]["packets"] + st["tx"]["packets"]

    # ---- HAProxy ------------------------------------------------------------

    def haproxy_cmd(self, cmd):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(self.sock)
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        finally:
            s.close()
        return out.decode()

    def servers_state(self):
        """{server: (op_state, admin_state)} from `show servers state web`."""
        st = {}
        for line in self.haproxy_cmd("show servers state web").splitlines():
            f = line.split()
            if len(f) > 6 and not line.startswith("#"):
                st[f[3]] = (int(f[5]), int(f[6]))
        return st

    @staticmethod
    def in_rotation(state):
        op, admin = state
        return op == 2 and not admin & 0x29  # running; not in maint (forced, by conf) or drain

    def start_haproxy(self, check):
        cfg = os.path.join(self.tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("global\n    stats socket %s mode 600 level admin\n"
                    "    log stdout format raw local0 info\n"
                    "defaults\n    mode http\n    log global\n    option httplog\n"
                    "    timeout connect 500ms\n    timeout client 5s\n    timeout server 5s\n"
                    "    timeout check 1s\n    retries 0\n"
                    "frontend fe\n    bind 127.0.0.1:%d\n    default_backend web\n"
                    "backend web\n    balance roundrobin\n" % (self.sock, FRONT))
            if check and "httpchk" in check:
                f.write("    option httpchk GET /health\n")
            for n, p in sorted(PORTS.items()):
                f.write("    server %s %s:%d%s\n" % (n, SRV_IP, p, check and " " + check["line"]
                                                        or ""))
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        exe = shutil.which("haproxy")
        self.spawn(NS_LB, [exe, "-db", "-f", cfg], "haproxy.log")
        self.wait_until(lambda: os.path.exists(self.sock) and self.servers_state(), 10,
                        "HAProxy's runtime API")

    @staticmethod
    def read_haproxy_log(path, offset, since):
        """From HAProxy's log from offset on: {server: requests not answered 200
        that finished at or after since} (<NOSRV>: no server was in rotation),
        and the servers other than the victim that HAProxy took out (its checks
        said DOWN, or maint)."""
        by, outs = {}, []
        with open(path, "rb") as f:
            f.seek(offset)
            for raw in f:
                line = raw.decode(errors="replace")
                # [accept date, local time] fe web/SERVER TR/Tw/Tc/Tr/Ta STATUS
                m = re.search(r"\[(\d+/\w+/\d+:\d+:\d+:\d+)\.(\d+)\] fe web/(\S+) "
                              r"\S+/(-?\d+) (\d{3}) ", line)
                if m and m.group(5) != "200":
                    t = (time.mktime(time.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S")) +
                         int(m.group(2)) / 1000 + max(0, int(m.group(4))) / 1000)
                    if t >= since - 0.002:  # the log's milliseconds, truncated
                        by[m.group(3)] = by.get(m.group(3), 0) + 1
                m = re.match(r"\[WARNING\].*Server web/(\S+) is (?:DOWN|going DOWN)", line)
                if m and m.group(1) != VICTIM:
                    outs.append(m.group(1))
        return by, outs

    # ---- vigil --------------------------------------------------------------

    def start_vigil(self):
        conf = os.path.join(self.tmp, "monitor.conf")
        with open(conf, "w") as f:
            f.write("""monitor: {
  listen = [ "%s:%d" ];
  api = "%s";
  key_file = "%s";
  heartbeat_interval = "1s";
  actions = ( {
    kind = "haproxy"; name = "lb"; socket = "%s"; servers = [ "web/%%n" ];
    checks = [ "http" ]; on = [ "critical" ]; undo = true;
  } );
};
""" % (LB_IP, VPORT, API, self.master, self.sock))
        self.spawn(NS_LB, [self.a.vigil, "monitor", "-c", conf], "monitor.log")
        self.wait_until(lambda: self.api.get_json(API, "/v1/health", timeout=1), 10,
                        "the monitor's API")
        for n, port in sorted(PORTS.items()):
            c = os.path.join(self.tmp, "agent-%s.conf" % n)
            with open(c, "w") as f:
                f.write("""agent: {
  id = "%s";
  monitors = [ "%s:%d" ];
  interval = "1s";
  key_file = "%s";
  checks = ( { name = "http"; type = "http"; url = "http://127.0.0.1:%d/health";
               interval = "%s"; timeout = "%s"; rise = 2; fall = %d; } );
};
""" % (n, LB_IP, VPORT, os.path.join(self.tmp, n + ".key"), port, self.a.check_interval,
       self.a.check_timeout, self.a.check_fall))
            self.spawn(NS_SRV, [self.a.vigil, "agent", "-c", c], "agent-%s.log" % n)

    def agent_checks_passing(self):
        cs = self.api.get_json(API, "/v1/checks", timeout=2)
        cs = cs.get("checks", cs) if isinstance(cs, dict) else cs
        ok = {c["node"] for c in cs if c.get("check") == "http" and c.get("status") == "passing"}
        return ok >= set(PORTS)

    def vigil_events(self):
        out, since = [], 0
        while True:
            r = self.api.get_json(API, "/v1/events?since=%d&limit=10000" % since, timeout=5)
            for e in r["events"]:
                since = max(since, e["seq"])
                out.append(e)
            if not r.get("more") or not r["events"]:
                return out

    # ---- one run ------------------------------------------------------------

    def run_one(self, name, check, with_vigil, kill=True):
        self.run_name = name.replace("/", "-")
        log("== run %s: %s" % (name, check["title"] if check else
                                 "HAProxy without checks; vigil agents' checks (interval %s, "
                                 "timeout %s, fall %d, rise 2) + monitor action"
                                 % (self.a.check_interval, self.a.check_timeout,
                                    self.a.check_fall)))
        servers = {n: self.spawn(NS_SRV, [sys.executable, "-c", SERVER, str(p)],
                                 "server-%s.log" % n) for n, p in PORTS.items()}
        for p in PORTS.values():
            self.wait_until(lambda: self.api.connects(SRV_IP, p), 10, "web server on %d" % p)
        self.start_haproxy(check)
        if with_vigil:
            self.start_vigil()
            self.wait_until(self.agent_checks_passing, 20, "every agent's check passing")
        self.wait_until(lambda: all(self.in_rotation(s) for s in self.servers_state().values())
                        and len(self.servers_state()) == len(PORTS), 20,
                        "every server up in HAProxy")
        time.sleep(self.a.settle)
        res = {"name": name}
        hlog = os.path.join(self.tmp, "%s-haproxy.log" % self.run_name)
        hlog_from = os.path.getsize(hlog)
        b0, p0 = self.veth_bytes()
        t0, t_bg = time.monotonic(), time.time()
        time.sleep(self.a.background)
        b1, p1 = self.veth_bytes()
        secs = time.monotonic() - t0
        res["bg_bps"], res["bg_pps"] = (b1 - b0) / secs, (p1 - p0) / secs
        log("   background, no client load: %.0f bytes/s (%.1f packets/s) over %.1f s"
            % (res["bg_bps"], res["bg_pps"], secs))
        if not kill:
            self.stop_all()
            return res

        # The load, the kill, and HAProxy's view of the victim polled meanwhile.
        out = os.path.join(self.tmp, "load-%s.json" % name)
        start = time.time() + 0.5
        secs = self.a.warmup + self.a.after
        gen = self.spawn(NS_LB, [sys.executable, "-c", LOADGEN, "127.0.0.1", str(FRONT),
                                 str(self.a.rate), str(secs), repr(start), out], "load.log")
        seen, stop = [], threading.Event()

        def poll():
            while not stop.is_set():
                try:
                    seen.append((time.time(), self.in_rotation(self.servers_state()[VICTIM])))
                except (OSError, KeyError, ValueError):
                    pass
                time.sleep(0.02)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        time.sleep(max(0.0, start + self.a.warmup - time.time()))
        t_kill = time.time()
        self.kill(servers[VICTIM])
        try:
            gen.wait(timeout=secs + 20)
        except subprocess.TimeoutExpired:
            raise RuntimeError("the load generator did not finish (logs: %s)" % self.tmp)
        stop.set()
        poller.join(2)
        with open(out) as f:
            reqs = json.load(f)
        failed = [r for r in reqs if r[2] != 200]
        after = [r for r in reqs if r[0] + r[1] >= t_kill]
        fa = [r for r in failed if r[0] + r[1] >= t_kill]
        res["requests"], res["after"] = len(reqs), len(after)
        res["failed"], res["failed_before"] = len(fa), len(failed) - len(fa)
        res["last_failed"] = max(r[0] for r in fa) - t_kill if fa else None
        out_at = next((t for t, inrot in seen if t >= t_kill and not inrot), None)
        res["out"] = out_at - t_kill if out_at else None
        res["back_in"] = seen and seen[-1][1]
        lat = sorted(r[1] for r in reqs if r[2] == 200)
        res["p99_ms"] = lat[int(len(lat) * 0.99) - 1] * 1000 if lat else float("nan")
        kinds = {}
        for r in fa:
            k = str(r[2]) if r[2] else r[3]
            kinds[k] = kinds.get(k, 0) + 1
        log("   load: %d requests at %.0f/s (p99 %.1f ms), SIGKILL of %s after %.1f s"
            % (len(reqs), self.a.rate, res["p99_ms"], VICTIM, self.a.warmup))
        log("   failed requests after the kill: %d of %d (%s)%s"
            % (res["failed"], len(after), ", ".join("%s: %d" % kv for kv in sorted(kinds.items()))
               or "none", "; %d failed before it" % res["failed_before"]
               if res["failed_before"] else ""))
        by, outs = self.read_haproxy_log(hlog, hlog_from, t_kill)
        res["to_victim"], res["no_server"] = by.get(VICTIM, 0), by.get("<NOSRV>", 0)
        log("   of those, by server, from HAProxy's log: %s"
            % (", ".join("%s: %d" % kv for kv in sorted(by.items())) or "none"))
        if not with_vigil:
            res["healthy_out"] = len(outs)
            log("   healthy servers HAProxy took out, from the background window on: %d%s"
                % (len(outs), " (%s)" % ", ".join(outs) if outs else ""))
        log("   kill to the last failed request: %s"
            % ("%.3f s" % res["last_failed"] if res["last_failed"] is not None else "-"))
        log("   %s out of rotation in HAProxy: %s" % (
            VICTIM, "%.3f s after the kill (polled every 20 ms)" % res["out"]
            if res["out"] is not None else "never"))
        if with_vigil:
            evs = self.vigil_events()
            ck = [e for e in evs if e.get("type") == "check" and e.get("node") == VICTIM
                  and e.get("new_status") == "critical" and e["time_us"] / 1e6 >= t_kill - 0.1]
            if ck:
                res["check_at"] = ck[0]["time_us"] / 1e6 - t_kill
                log("   the monitor heard web2's check critical %.3f s after the kill"
                    % res["check_at"])
            # A check of a healthy server that turned critical took it out of HAProxy
            # until it passed again: from the start of the background window on.
            false = [e for e in evs if e.get("type") == "check" and e.get("new_status") ==
                     "critical" and e["time_us"] / 1e6 >= t_bg and
                     (e.get("node") != VICTIM or e["time_us"] / 1e6 < t_kill - 0.1)]
            res["healthy_out"] = len(false)
            log("   checks of healthy servers turned critical (each took its server out until "
                "it passed again): %d%s" % (len(false), "".join(
                    "\n      %+.3f s from the kill: %s: %s" % (
                        e["time_us"] / 1e6 - t_kill, e["node"],
                        e.get("evidence", {}).get("detail", "")) for e in false)))
            try:
                acts = [x for x in self.api.get_json(API, "/v1/actions", timeout=5)["recent"]
                        if x.get("node") == VICTIM and x.get("outcome") == "succeeded"]
                if acts:
                    log("   the haproxy action took %.1f ms" % (acts[0]["took_s"] * 1000))
            except (OSError, ValueError, KeyError, urllib.error.URLError):
                pass
        self.stop_all()
        return res

    def cleanup(self):
        for p in self.procs:
            self.kill(p)
        self.procs = []
        if self.api:
            self.api.close()
        if self.a.keep:
            log("kept: logs in %s (namespaces removed)" % self.tmp)
        for ns in reversed(self.namespaces):
            run(["ip", "netns", "del", ns], check=False)
        if not self.a.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


CHECKS = {
    "A": {"line": "check inter 200ms fall 2 rise 2", "httpchk": True,
          "title": "HAProxy checks, option httpchk, check inter 200ms fall 2 rise 2"},
    "A/tcp": {"line": "check inter 200ms fall 2 rise 2",
              "title": "HAProxy TCP checks (no httpchk), check inter 200ms fall 2 rise 2"},
    "C": {"line": "check", "httpchk": True,
          "title": "HAProxy default checks, option httpchk, check (inter 2s fall 3 rise 2)"},
}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vigil", default="build/vigil")
    ap.add_argument("--runs", default="A,B,C", help="which runs, of A, B and C (default all)")
    ap.add_argument("--rate", type=float, default=200, help="requests per second (200)")
    ap.add_argument("--warmup", type=float, default=3, help="seconds of load before the kill")
    ap.add_argument("--after", type=float, default=8, help="seconds of load after the kill")
    ap.add_argument("--background", type=float, default=10,
                    help="seconds of background traffic measured with no load (10)")
    ap.add_argument("--settle", type=float, default=2,
                    help="seconds after everything is up before measuring (2)")
    ap.add_argument("--check-interval", default="50ms", help="the agents' check interval (50ms)")
    ap.add_argument("--check-timeout", default="40ms", help="the agents' check timeout (40ms)")
    ap.add_argument("--check-fall", type=int, default=1,
                    help="the agents' check fall: criticals in a row (1)")
    ap.add_argument("--repeat", type=int, default=1, help="run the list this many times (1)")
    ap.add_argument("--keep", action="store_true", help="keep the logs")
    a = ap.parse_args()
    a.runs = [r.strip().upper() for r in a.runs.split(",") if r.strip()]
    if not a.runs or any(r not in ("A", "B", "C") for r in a.runs):
        ap.error("--runs takes A, B and C")
    if not (1 <= a.rate <= 2000 and 0.5 <= a.warmup <= 30 and 1 <= a.after <= 60
            and 1 <= a.background <= 120 and 0 <= a.settle <= 30 and 1 <= a.repeat <= 20):
        ap.error("a setting is out of its range")
    return a


def fmt(x, f="%.3f s"):
    return "-" if x is None else f % x


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    n = len(xs)
    return None if not n else xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def summarise(a, res):
    log()
    log("== summary: %.0f req/s, SIGKILL of web2 after %.0f s of load, counted for %.0f s; "
        "background over %.0f s with no load; load average now %s"
        % (a.rate, a.warmup, a.after, a.background,
           " ".join(open("/proc/loadavg").read().split()[:3])))
    log("failed: requests that failed after the kill; to web2: of those, sent to web2; "
        "no server: of those, none in rotation (healthy servers out)")
    log("%-7s %7s %7s %10s %13s %10s %12s %15s" % (
        "run", "failed", "to web2", "no server", "last failure", "web2 out", "healthy out",
        "background B/s"))
    for k in ("A", "A/tcp", "B", "C"):
        for i, r in enumerate(res.get(k, [])):
            name = k if len(res[k]) == 1 else "%s#%d" % (k, i + 1)
            if "failed" not in r:
                log("%-7s %7s %7s %10s %13s %10s %12s %15.0f" % (
                    name, "-", "-", "-", "-", "-", "-", r["bg_bps"]))
                continue
            log("%-7s %7d %7d %10d %13s %10s %12s %15.0f" % (
                name, r["failed"], r["to_victim"], r["no_server"], fmt(r["last_failed"]),
                fmt(r["out"]), r.get("healthy_out", "-"), r["bg_bps"]))
    if "A" in res and "B" in res:
        m = {k: {f: median([r.get(f) for r in v]) for f in ("bg_bps", "failed", "to_victim")}
             for k, v in res.items()}
        ma, mb = m["A"], m["B"]
        word = "" if a.repeat == 1 else "medians, "
        log("B/A background traffic: %.3f (%s%.0f / %.0f bytes/s)"
            % (mb["bg_bps"] / ma["bg_bps"], word, mb["bg_bps"], ma["bg_bps"]))
        if "A/tcp" in m:
            log("B/A background traffic against HAProxy's TCP checks: %.3f (%s%.0f / %.0f "
                "bytes/s)" % (mb["bg_bps"] / m["A/tcp"]["bg_bps"], word, mb["bg_bps"],
                              m["A/tcp"]["bg_bps"]))
        for f, what in (("failed", "failed requests"), ("to_victim", "requests failed on web2")):
            log("B/A %s: %s (%s%g / %g)" % (
                what, "%.2f" % (mb[f] / ma[f]) if ma[f] else "-", word, mb[f], ma[f]))


def main():
    a = parse_args()
    if os.geteuid() != 0:
        sys.exit("checks_vs_haproxy: needs root (network namespaces)")
    if not shutil.which("ip"):
        sys.exit("checks_vs_haproxy: ip not found (apt-get install iproute2)")
    if not shutil.which("haproxy"):
        sys.exit("checks_vs_haproxy: haproxy not found (bash scripts/install-deps.sh)")
    if not os.access(a.vigil, os.X_OK):
        sys.exit("checks_vs_haproxy: %s not found; build first (make build)" % a.vigil)
    a.vigil = os.path.abspath(a.vigil)
    ver = run(["haproxy", "-v"]).stdout.decode().splitlines()[0]
    log("== vigil's agent checks against HAProxy's checks; %s; %s; load average %s"
        % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), ver,
           " ".join(open("/proc/loadavg").read().split()[:3])))
    b = Bench(a)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, on_signal)
    status, t_start = 0, time.monotonic()
    try:
        run([a.vigil, "keygen", "-o", b.master])
        for n in PORTS:
            run([a.vigil, "keygen", "--node", n, "--master", b.master,
                 "-o", os.path.join(b.tmp, n + ".key")])
        b.setup_net()
        res = {}  # run -> [figures of each repetition]
        for i in range(a.repeat):
            for r in a.runs:
                tag = r if a.repeat == 1 else "%s#%d" % (r, i + 1)
                if r == "B":
                    res.setdefault("B", []).append(b.run_one(tag, None, True))
                else:
                    res.setdefault(r, []).append(b.run_one(tag, CHECKS[r], False))
                    if r == "A":
                        res.setdefault("A/tcp", []).append(
                            b.run_one(tag.replace("A", "A/tcp"), CHECKS["A/tcp"], False,
                                      kill=False))
        summarise(a, res)
        log("run time: %.0f s" % (time.monotonic() - t_start))
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        status = 130
    except Exception as e:  # report, clean up, fail
        log("checks_vs_haproxy: %s" % e)
        status = 1
    finally:
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(s, signal.SIG_IGN)
        b.cleanup()
    sys.exit(status)


if __name__ == "__main__":
    main()
