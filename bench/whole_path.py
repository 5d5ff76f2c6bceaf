#!/usr/bin/env python3
"""The whole path at scale: the real `vigil monitor` and a fleet of a million nodes.

A benchmark, not a test: it prints figures and never fails on them.

    python3 bench/whole_path.py [--nodes 1000000] [--interval-ms 1000]
            [--seconds 240] [--threads 2] [--buffer-mb 256] [--stop 5]
            [--stop-at S] [--no-gso] [--vigil build/vigil]
            [--sender build/fleet_sender] [--keep]

It starts `vigil monitor` (a master key, so every node is checked with
its own key; max_nodes above --nodes; heartbeat_interval = --interval-ms;
receive_threads = --threads; receive_buffer_mb = --buffer-mb; the event
log to a file; everything else default) and `fleet_sender`
(bench/fleet_sender.c): --nodes simulated agents, each sending one
authenticated heartbeat every --interval-ms from one process, paced,
with a full status in 30 as `vigil agent` sends. At --stop-at seconds
(default: --seconds minus 60) the sender stops --stop nodes, as if they
were killed, and keeps the others going.

Every second it reads the monitor's CPU time (all its threads,
/proc/PID/stat), its resident memory (VmRSS) and GET /v1/health. At the end
it reads the monitor's event log. It prints:

- the registration: how long until every node was alive, and what the
  kernel dropped meanwhile (every node's first heartbeat is an event);
- the steady state, from the first full interval after registration to
  the stop: heartbeats accepted per second, the monitor's CPU in cores,
  kernel drops (counters.recv_drops, from SO_RXQ_OVFL), RSS, and the
  sender's CPU and lateness;
- false suspicions: "-> suspect" or "-> dead" events of nodes that were
  never stopped, after registration (must be 0);
- the detection time of each stopped node: from its last heartbeat to its
  suspect and dead events (the monitor's own since_last).

The machine has to carry the sender too: on loopback the sender's
sendmsg also runs the kernel's receive path up to the monitor's socket.
The sender's CPU is printed beside the monitor's. Every process started is
killed by its pid at the end (also on Ctrl-C), and the temporary directory
removed unless --keep.
"""
import argparse
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from vigil_harness import free_port, kill_procs  # noqa: E402
from nsbench import cpu_s, log, loopback_get as get  # noqa: E402

CONF = """
monitor = {
  listen = [ "127.0.0.1:%(port)d" ];
  api = "127.0.0.1:%(api)d";
  key_file = "%(key)s";
  max_nodes = %(max)d;
  heartbeat_interval = "%(hb)dms";
  receive_threads = %(threads)d;
  receive_buffer_mb = %(buf)d;
  log = { file = "%(log)s"; };
};
"""

_procs = []
EVENT = re.compile(r"event \d+: (\S+) (\w+) -> (\w+) \(([^)]*)\) since_last=([-\d.]+)(ns|us|ms|s)\b")
UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def proc_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def read_events(path):
    """Suspect and dead events: (node, to, since_last seconds), in log order."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = EVENT.search(line)
            if not m:
                continue
            node, frm, to = m.group(1), m.group(2), m.group(3)
            if to in ("suspect", "dead"):
                out.append((node, frm, to, float(m.group(5)) * UNIT[m.group(6)]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=1000000)
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--buffer-mb", type=int, default=256)
    ap.add_argument("--stop", type=int, default=5)
    ap.add_argument("--stop-at", type=float, default=None)
    ap.add_argument("--no-gso", action="store_true")
    ap.add_argument("--vigil", default=os.path.join(HERE, "..", "build", "vigil"))
    ap.add_argument("--sender", default=os.path.join(HERE, "..", "build", "fleet_sender"))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not (1000 <= a.nodes <= 10000000 and 30 <= a.seconds <= 1800):
        ap.error("--nodes 1000..10000000 and --seconds 30..1800")
    stop_at = a.stop_at if a.stop_at is not None else a.seconds - 60
    if a.stop and not (0 < stop_at < a.seconds - 5):
        ap.error("--stop-at must leave time to detect")
    for path in (a.vigil, a.sender):
        if not os.access(path, os.X_OK):
            sys.exit("whole_path: %s not found; build first (make build)" % path)

    tmp = tempfile.mkdtemp(prefix="vigil-whole-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        run(a, tmp, stop_at)
    finally:
        kill_procs(_procs)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log("kept %s" % tmp)


def run(a, tmp, stop_at):
    key = os.path.join(tmp, "master.key")
    with open(key, "w") as f:
        f.write("vigil-master-key\n%s\n" % secrets.token_hex(32))
    os.chmod(key, 0o600)
    port, api = free_port(), free_port()
    evlog = os.path.join(tmp, "events.log")
    conf = os.path.join(tmp, "vigil.conf")
    with open(conf, "w") as f:
        f.write(CONF % {"port": port, "api": api, "key": key, "max": a.nodes + 1000,
                        "hb": a.interval_ms, "threads": a.threads, "buf": a.buffer_mb,
                        "log": evlog})
    log("machine: %s, %d CPUs, %s" % (platform.processor() or platform.machine(),
                                      os.cpu_count(), platform.release()))
    log("fleet: %d nodes, one heartbeat each every %d ms (%.0f/s), per-node keys, wire v2; "
        "sender with%s GSO; monitor receive_threads=%d, receive_buffer_mb=%d"
        % (a.nodes, a.interval_ms, a.nodes * 1000.0 / a.interval_ms, "out" if a.no_gso else "",
           a.threads, a.buffer_mb))
    mlog = open(os.path.join(tmp, "monitor.out"), "w")
    mon = subprocess.Popen([a.vigil, "monitor", "-c", conf], stdout=mlog, stderr=subprocess.STDOUT)
    _procs.append(mon)
    for _ in range(200):
        try:
            get(api, "/v1/health", timeout=2)
            break
        except OSError:
            if mon.poll() is not None:
                sys.exit("whole_path: the monitor exited; see %s" % mlog.name)
            time.sleep(0.1)
    else:
        sys.exit("whole_path: the monitor's API did not answer")
    scmd = [a.sender, "--target", "127.0.0.1:%d" % port, "--key", key,
            "--seconds", str(a.seconds), "--nodes", str(a.nodes),
            "--interval-ms", str(a.interval_ms)]
    if not a.no_gso:
        scmd.append("--gso")
    if a.stop:
        scmd += ["--stop", str(a.stop), "--stop-at", str(stop_at)]
    sout = open(os.path.join(tmp, "sender.out"), "w")
    t0 = time.monotonic()
    snd = subprocess.Popen(scmd, stdout=sout, stderr=subprocess.STDOUT)
    _procs.append(snd)

    samples = []  # (t, cpu, rss, counters, nodes)
    registered_at = None
    deadline = t0 + a.seconds + 30
    while time.monotonic() < deadline:
        time.sleep(1.0)
        t = time.monotonic() - t0
        try:
            h = get(api, "/v1/health", timeout=10)
        except OSError as e:
            log("  %.0f s: the API did not answer (%s)" % (t, e))
            continue
        s = (t, cpu_s(mon.pid), proc_rss_mb(mon.pid), h["counters"], h["nodes"])
        samples.append(s)
        if registered_at is None and h["nodes"]["alive"] >= a.nodes - a.stop:
            registered_at = t
        if len(samples) % 10 == 0:
            c0 = samples[-11] if len(samples) > 10 else samples[0]
            dt = s[0] - c0[0]
            log("  %4.0f s: accepted %8.0f/s, CPU %.2f cores, RSS %4.0f MB, drops %d, "
                "alive %d suspect %d dead %d"
                % (t, (s[3]["accepted"] - c0[3]["accepted"]) / dt, (s[1] - c0[1]) / dt, s[2],
                   s[3]["recv_drops"], s[4]["alive"], s[4]["suspect"], s[4]["dead"]))
        if snd.poll() is not None and t > a.seconds + 1:
            break
    snd.wait(timeout=30)
    sout.close()
    with open(sout.name) as f:
        stext = f.read()
    stops = {}
    for line in stext.splitlines():
        m = re.match(r"stopped (\S+) at ([\d.]+) ([\d.]+)", line)
        if m:
            stops[m.group(1)] = float(m.group(2))
    summary = [l for l in stext.splitlines() if l.startswith("sent ")]
    mon.send_signal(signal.SIGTERM)
    try:
        mon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        mon.kill()
    events = read_events(evlog)

    log("results:")
    if registered_at is None:
        log("  registration: not every node was alive at any sample")
        reg_i = 0
    else:
        reg_i = next(i for i, s in enumerate(samples) if s[0] >= registered_at)
        log("  registration: every node alive %.0f s after the sender started; kernel drops "
            "by then %d" % (registered_at, samples[reg_i][3]["recv_drops"]))
    # The steady window: one interval after registration, to the stop.
    t_from = (registered_at or 0) + a.interval_ms / 1000.0 + 2
    t_to = stop_at if a.stop else a.seconds
    win = [s for s in samples if t_from <= s[0] <= t_to]
    if len(win) >= 2:
        w0, w1 = win[0], win[-1]
        dt = w1[0] - w0[0]
        acc = (w1[3]["accepted"] - w0[3]["accepted"]) / dt
        cores = (w1[1] - w0[1]) / dt
        log("  steady state, %.0f s (from %.0f s to %.0f s):" % (dt, w0[0], w1[0]))
        log("    heartbeats accepted: %.0f/s (the fleet sends %.0f/s)"
            % (acc, a.nodes * 1000.0 / a.interval_ms))
        log("    monitor CPU: %.2f cores (%.0f ns per heartbeat)"
            % (cores, cores / acc * 1e9 if acc else 0))
        log("    kernel drops in the window: %d (%d in all)"
            % (w1[3]["recv_drops"] - w0[3]["recv_drops"], samples[-1][3]["recv_drops"]))
        log("    monitor RSS: %.0f MB at the end of the window (%.0f bytes per node)"
            % (w1[2], w1[2] * 1048576 / a.nodes))
        log("    pauses the monitor noted: %d in the window"
            % (w1[3]["pauses"] - w0[3]["pauses"]))
    else:
        log("  steady state: too short a window (registration took too long)")
    if summary:
        log("  sender: %s" % summary[-1])
    false = [e for e in events if e[0] not in stops]
    log("  false suspicions (suspect or dead events of nodes never stopped): %d" % len(false))
    for e in false[:5]:
        log("    %s %s -> %s since_last %.3f s" % e)
    for node in sorted(stops):
        sus = next((e for e in events if e[0] == node and e[2] == "suspect"), None)
        dead = next((e for e in events if e[0] == node and e[2] == "dead"), None)
        log("  stopped %s: suspect %s, dead %s after its last heartbeat"
            % (node, "%.2f s" % sus[3] if sus else "never",
               "%.2f s" % dead[3] if dead else "never"))
    c = samples[-1][3] if samples else {}
    log("  totals: %d datagrams, %d accepted, %d kernel drops, %d events, %d log lines dropped"
        % (c.get("datagrams", 0), c.get("accepted", 0), c.get("recv_drops", 0),
           c.get("events", 0), c.get("dropped_log", 0)))


if __name__ == "__main__":
    main()
