#!/usr/bin/env python3
"""What an idle agent costs its node: resident memory, CPU, and bytes on the wire.

A benchmark, not a test: it prints figures and the target beside them, and
never fails on them.

    python3 bench/agent_footprint.py [--build build] [--seconds 20] [--warmup 2]
            [--interval 1s] [--encrypt] [--keep]

It starts the real agents, one after the other, each with the same
configuration file (an agent section as the README's quick start writes
it: an id, one monitor, a node key, a generation file; heartbeats with the
node's load, memory and uptime, the defaults otherwise):

  vigil-agent     the small agent program (docs/performance.md, "A small agent");
  vigil agent     the agent inside the full vigil program, for comparison.

The monitor is a UDP socket on loopback that this script reads: it counts
the datagrams and their bytes and does nothing else. After --warmup
seconds (the start, the first full status), --seconds are measured:

  - VmRSS, RssAnon and RssFile (/proc/PID/status) at the end of the
    window, and the mappings that hold most of it (/proc/PID/smaps);
  - CPU: the time the agent ran over the window (/proc/PID/schedstat, in
    nanoseconds; /proc/PID/stat's ticks where schedstat is missing), as a
    share of one core, and per heartbeat;
  - datagrams and bytes a second received (UDP payload; on the wire, with
    the IPv4, UDP and Ethernet headers as bench_bytes counts them, 42 bytes
    more per datagram, beside it).

Then SIGTERM: the agent must send its goodbye (two datagrams) and exit 0;
the datagrams of the next 0.2 s are counted. Every wait is
bounded; every process started is killed by its pid at the end (also on
Ctrl-C), and the temporary directory removed (kept with --keep).
"""
import argparse
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from vigil_harness import kill_procs  # noqa: E402

TARGET_RSS_KIB = 2048
# "Wire" as bench_bytes counts it: IPv4 (20), UDP (8) and Ethernet (14) headers per datagram.
WIRE_HEADERS = 42

CONF = """agent = {
  id = "bench1";
  monitors = [ "127.0.0.1:%(port)d" ];
  key_file = "%(tmp)s/bench1.key";
  generation_file = "%(tmp)s/generation";
  interval = "%(interval)s";
%(extra)s};
"""

procs = []


def read(path):
    with open(path) as f:
        return f.read()


def cpu_ns(pid):
    """The time pid has run, in nanoseconds, and where it came from."""
    try:
        return int(read("/proc/%d/schedstat" % pid).split()[0]), "schedstat"
    except (OSError, ValueError, IndexError):
        fields = read("/proc/%d/stat" % pid).rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK"), "stat"


def rss(pid):
    out = {}
    for line in read("/proc/%d/status" % pid).splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0])
    return out


def top_mappings(pid, n=6):
    """The n mappings (by file, or [heap], [stack], anonymous) with the most resident KiB."""
    by = {}
    name = None
    for line in read("/proc/%d/smaps" % pid).splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            name = head[5] if len(head) >= 6 else "[anonymous]"
            if name.startswith("/"):
                name = os.path.basename(name)
        elif line.startswith("Rss:"):
            by[name] = by.get(name, 0) + int(line.split()[1])
    return sorted(((k, v) for k, v in by.items() if v > 0), key=lambda kv: -kv[1])[:n]


def drain(sock, until, counts):
    """Reads sock until the monotonic time until, counting datagrams and bytes."""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            continue
        while True:
            try:
                d = sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            counts[0] += 1
            counts[1] += len(d)


def run_one(label, argv, sock, args, tmp):
    counts = [0, 0]
    log = open(os.path.join(tmp, label.replace(" ", "-") + ".log"), "wb")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(p)
    drain(sock, time.monotonic() + args.warmup, counts)
    if p.poll() is not None:
        print("%s exited with %s during the warm-up:\n%s" % (
            label, p.returncode, read(log.name)), file=sys.stderr)
        return None
    counts = [0, 0]
    c0, src = cpu_ns(p.pid)
    t0 = time.monotonic()
    drain(sock, t0 + args.seconds, counts)
    c1, _ = cpu_ns(p.pid)
    wall = time.monotonic() - t0
    mem = rss(p.pid)
    top = top_mappings(p.pid)
    exe = os.path.realpath("/proc/%d/exe" % p.pid)
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait(timeout=5)
    bye = [0, 0]
    drain(sock, time.monotonic() + 0.2, bye)
    cpu = (c1 - c0) / 1e9
    return {
        "label": label, "exe": exe, "mem": mem, "top": top, "cpu_s": cpu, "cpu_src": src,
        "cpu_pct": 100.0 * cpu / wall, "wall": wall, "dgrams": counts[0], "bytes": counts[1],
        "rc": rc, "goodbyes": bye[0],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="the build directory (default: build)")
    ap.add_argument("--seconds", type=float, default=20.0, help="the measured window (default 20)")
    ap.add_argument("--warmup", type=float, default=2.0, help="before the window (default 2)")
    ap.add_argument("--interval", default="1s", help="the heartbeat interval (default 1s)")
    ap.add_argument("--encrypt", action="store_true", help="sealed statuses (encrypt = true)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    vigil = os.path.join(args.build, "vigil")
    small = os.path.join(args.build, "vigil-agent")
    for prog in (vigil, small):
        if not os.access(prog, os.X_OK):
            print("agent_footprint: %s not found; build first (make build)" % prog,
                  file=sys.stderr)
            return 1
    tmp = tempfile.mkdtemp(prefix="vigil-agent-footprint-")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        for a in (["-o", "master.key"], ["--node", "bench1", "--master", "master.key", "-o",
                                         "bench1.key"]):
            subprocess.run([os.path.abspath(vigil), "keygen"] + a, cwd=tmp, check=True,
                           capture_output=True, timeout=30)
        conf = os.path.join(tmp, "vigil.conf")
        with open(conf, "w") as f:
            f.write(CONF % {"port": sock.getsockname()[1], "tmp": tmp, "interval": args.interval,
                            "extra": "  encrypt = true;\n" if args.encrypt else ""})
        print("agent_footprint: %.0f s idle after %.0f s of warm-up, heartbeats every %s%s, "
              "one monitor on loopback; load average %s" % (
                  args.seconds, args.warmup, args.interval,
                  ", sealed statuses" if args.encrypt else "",
                  " ".join(read("/proc/loadavg").split()[:3])))
        results = []
        for label, argv in (("vigil-agent", [small, "-c", conf]),
                            ("vigil agent", [vigil, "agent", "-c", conf])):
            r = run_one(label, argv, sock, args, tmp)
            if r is None:
                return 1
            results.append(r)
    finally:
        kill_procs(procs)
        sock.close()
        if args.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("%-12s %9s %9s %9s %11s %11s %10s %11s %9s %9s" % (
        "agent", "VmRSS", "RssAnon", "RssFile", "target", "CPU", "CPU/beat", "datagrams/s",
        "bytes/s", "wire B/s"))
    for r in results:
        m = r["mem"]
        rate = r["dgrams"] / r["wall"]
        print("%-12s %5d KiB %5d KiB %5d KiB %11s %10.4f%% %7.1f us %11.2f %9.1f %9.1f" % (
            r["label"], m["VmRSS"], m["RssAnon"], m["RssFile"],
            "<= 2048 KiB" if r is results[0] else "",
            r["cpu_pct"], 1e6 * r["cpu_s"] / max(r["dgrams"], 1), rate, r["bytes"] / r["wall"],
            (r["bytes"] + WIRE_HEADERS * r["dgrams"]) / r["wall"]))
    print()
    for r in results:
        m = r["mem"]["VmRSS"]
        verdict = ("met" if m <= TARGET_RSS_KIB else "NOT met") if r is results[0] else "for comparison"
        print("%s (%s): VmRSS %d KiB, %s; exit %d after SIGTERM, %d datagram(s) in the 0.2 s "
              "after it (the goodbye is two); CPU from %s" % (
                  r["label"], r["exe"], m, verdict, r["rc"], r["goodbyes"], r["cpu_src"]))
        print("  resident: " + ", ".join("%s %d KiB" % kv for kv in r["top"]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        kill_procs(procs)
        sys.exit(130)
