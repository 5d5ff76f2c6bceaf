#!/usr/bin/env python3
"""Actions under a flow of failures: a real `vigil monitor` delivering webhooks, in one run.

A benchmark, not a test: it prints figures and never fails on them.

    python3 bench/actions.py [--nodes 2000] [--churn-rate 100] [--seconds 20]
            [--vigil build/vigil] [--sender build/ingest_sender] [--keep]

ingest_sender (bench/ingest_sender.c) sends authenticated heartbeats from
--nodes ids every 200 ms and silences --churn-rate ids a second for 3 s
each: about that many nodes die a second, and as many come back. The
monitor's one action is a webhook on "dead" to a receiver in this process
(a threaded HTTP server on loopback), which records each document's
arrival. Two phases, each with a fresh monitor:

  plain   no state store: the document is kept in memory until delivered;
  store   with --state-dir: each document is written to the outbox (an
          SQLite transaction, fdatasync'ed) before its first try, and
          marked done after.

For each phase, over --seconds after a warm-up: the deaths the monitor
declared, the documents the receiver got (deliveries a second), the
latency from the death's verdict (the event's time in the document) to
the receiver, median / p99 / max, what is still undelivered at the end,
and the monitor's own pauses and dropped datagrams (a loop held up by the
actions would show there). Beside them, the machine's limit measured in
the same run: how many POSTs a second the receiver takes from one client
thread here (the "sink").

Every wait is bounded; every process started is killed by its pid at the
end (also on Ctrl-C), and the temporary directory removed.
"""
import argparse
import http.client
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from vigil_harness import free_port  # noqa: E402

CONF = """
monitor = {
  listen = [ "127.0.0.1:%(port)d" ];
  api = "127.0.0.1:%(api)d";
  key_file = "%(key)s";
  max_nodes = %(max)d;
  heartbeat_interval = "200ms";
  flap_damping = { enabled = false; };
  %(store)s
  actions = ( { name = "hook"; kind = "webhook"; url = "http://127.0.0.1:%(rx)d/";
                on = [ "dead" ]; } );
};
"""

_procs = []


def spawn(args, log):
    p = subprocess.Popen(args, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    _procs.append(p)
    return p


def kill_all():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    _procs.clear()


class Receiver:
    def __init__(self):
        self.got = []  # (arrival wall s, event time wall s, key)
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                now = time.time()
                try:
                    doc = json.loads(body)
                    rec = (now, doc["event"]["time_us"] / 1e6, doc["key"])
                except (ValueError, KeyError):
                    rec = (now, now, "")
                with outer.lock:
                    outer.got.append(rec)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def sink_rate(port, seconds=3.0):
    """POSTs a second one client thread gets through the receiver: the limit beside the figures."""
    body = json.dumps({"key": "sink", "event": {"time_us": 0}}).encode()
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", "/", body, {"Content-Type": "application/json"})
        c.getresponse().read()
        c.close()
        n += 1
    return n / (time.monotonic() - t0)


def health(api):
    with urllib.request.urlopen("http://127.0.0.1:%d/v1/health" % api, timeout=10) as r:
        return json.loads(r.read())


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))] if v else float("nan")


def phase(args, tmp, name, use_store, key):
    rx = Receiver()
    port, api = free_port(), free_port(socket.SOCK_STREAM)
    conf = os.path.join(tmp, name + ".conf")
    store = 'state_dir = "%s";' % os.path.join(tmp, name + "-state") if use_store else ""
    with open(conf, "w") as f:
        f.write(CONF % {"port": port, "api": api, "key": key, "max": args.nodes * 2,
                        "store": store, "rx": rx.port})
    mon = spawn([args.vigil, "monitor", "-c", conf], os.path.join(tmp, name + "-monitor.log"))
    for _ in range(200):
        try:
            health(api)
            break
        except OSError:
            time.sleep(0.05)
    total = args.warmup + args.seconds + 8
    snd = spawn([args.sender, "--target", "127.0.0.1:%d" % port, "--key", key, "--seconds",
                 str(total), "--nodes", str(args.nodes), "--interval-ms", "200",
                 "--churn-rate", str(args.churn_rate), "--churn-silence", "3"],
                os.path.join(tmp, name + "-sender.log"))
    time.sleep(args.warmup)
    h0, t0 = health(api), time.time()
    with rx.lock:
        n0 = len(rx.got)
    time.sleep(args.seconds)
    h1, t1 = health(api), time.time()
    with rx.lock:
        window = [g for g in rx.got[n0:] if t0 <= g[1] <= t1]
    # Deaths declared in the window that the receiver has not had by the end (a few s later).
    time.sleep(3)
    deaths = h1["counters"]["events"] - h0["counters"]["events"]
    lat = [g[0] - g[1] for g in window]
    pauses = h1["counters"].get("pauses", 0) - h0["counters"].get("pauses", 0)
    drops = h1["counters"].get("recv_drops", 0) - h0["counters"].get("recv_drops", 0)
    acts = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/v1/actions?limit=0" % api,
                                             timeout=10).read())
    tot = acts["totals"]["webhook"]
    stop_all = [snd, mon]
    for p in stop_all:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in stop_all:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
    rx.close()
    print("%-6s events %5.0f/s  delivered %5.0f/s  latency median %6.1f ms  p99 %6.1f ms  "
          "max %6.1f ms  attempts %d ok %d failed %d  pauses %d  recv_drops %d"
          % (name, deaths / (t1 - t0), len(window) / (t1 - t0), 1e3 * pct(lat, 0.5),
             1e3 * pct(lat, 0.99), 1e3 * max(lat) if lat else float("nan"), tot["started"],
             tot["succeeded"], tot["failed"], pauses, drops), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--churn-rate", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=8)
    ap.add_argument("--vigil", default="build/vigil")
    ap.add_argument("--sender", default="build/ingest_sender")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    for exe in (args.vigil, args.sender):
        if not os.access(exe, os.X_OK):
            sys.exit("actions.py: %s not found (make build)" % exe)
    tmp = tempfile.mkdtemp(prefix="vigil-bench-actions-")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    try:
        key = os.path.join(tmp, "cluster.key")
        with open(key, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        os.chmod(key, 0o600)
        rx = Receiver()
        limit = sink_rate(rx.port)
        rx.close()
        print("machine: %d cores; the receiver takes %.0f POSTs/s from one client thread "
              "(the limit beside the figures)" % (os.cpu_count(), limit), flush=True)
        print("nodes %d, %d die a second (and as many come back), heartbeats every 200 ms, "
              "a webhook on every death" % (args.nodes, args.churn_rate), flush=True)
        phase(args, tmp, "plain", False, key)
        phase(args, tmp, "store", True, key)
    finally:
        kill_all()
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
