#!/usr/bin/env python3
"""The /metrics answer of a real monitor, linted by Prometheus' own promtool.

- A monitor with a master key and three agents with their node keys; one
  agent is killed and its node dies. `promtool check metrics` (Debian's
  `prometheus` package, installed by scripts/install-deps.sh) finds nothing
  to say about the scrape, and the per-node samples agree with /v1/nodes.
- A monitor with 4000 declared nodes renders its metrics a slice per loop
  turn: four scrapes at once are each a valid exposition covering every
  node, while a live agent's heartbeats keep being judged (it never leaves
  alive).
- With 100,000 nodes (registered by one heartbeat each) two concurrent
  scrapes of about 65 MB each do not stall the loop: the monitor records
  no pause of its own (it would, for a turn of more than 200 ms: two
  intervals of the live agent at 100 ms), the live agent stays alive, and
  /v1/health keeps answering quickly meanwhile.

promtool missing is a failure, not a skip: the test says how to install it.
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request

from vigil_harness import VIGIL, Monitor, agent, check, run_tests

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  key_file = "@TMP@/master.key";
  heartbeat_interval = "250ms";
  detector = { type = "fixed"; suspect_after = "750ms"; dead_after = "1500ms"; };
};
"""

STATES = ("unknown", "alive", "suspect", "dead", "left")


def promtool():
    path = shutil.which("promtool")
    if not path:
        raise AssertionError("promtool not found: run scripts/install-deps.sh "
                             "(Debian package prometheus)")
    return path


def scrape(m, query=""):
    url = "http://127.0.0.1:%d/metrics%s" % (m.api_port, query)
    with urllib.request.urlopen(url, timeout=30) as r:
        ctype = r.headers.get("Content-Type")
        return ctype, r.read().decode()


def lint(text):
    """promtool's verdict on text: it must exit 0 and say nothing."""
    r = subprocess.run([promtool(), "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    out = (r.stdout + r.stderr).decode(errors="replace").strip()
    check(r.returncode == 0 and out == "",
          "promtool check metrics: exit %d\n%s" % (r.returncode, out[:3000]))


def samples(text):
    """{(name, frozenset(labels)): value} of the samples in text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        check(m is not None, "not a sample line: %r" % line)
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def node_sample(s, name, node, **labels):
    key = (name, frozenset([("node", node)] + list(labels.items())))
    check(key in s, "no sample %s{node=%r,%r}" % (name, node, labels))
    return s[key]


def make_keys(tmp, nodes):
    master = os.path.join(tmp, "master.key")
    subprocess.run([VIGIL, "keygen", "-o", master], check=True, timeout=10)
    for n in nodes:
        subprocess.run([VIGIL, "keygen", "--node", n, "--master", master, "-o",
                        os.path.join(tmp, n + ".key")], check=True, timeout=10)


def test_promtool_accepts_the_scrape(tmp):
    nodes = ["web1", "web2", "db.1"]
    make_keys(tmp, nodes)
    m = Monitor(tmp, CONFIG)
    agents = {n: agent(m.addr, n, tmp, extra=["--key-file", os.path.join(tmp, n + ".key")])
              for n in nodes}
    for n in nodes:
        m.wait_state(n, "alive", 10)
    agents["db.1"].send_signal(signal.SIGKILL)
    agents["db.1"].wait(timeout=5)
    m.wait_state("db.1", "dead", 10)

    ctype, text = scrape(m)
    check(ctype == "text/plain; version=0.0.4; charset=utf-8", "content type %r" % ctype)
    lint(text)
    s = samples(text)
    by_id = m.nodes()
    for n in nodes:
        want = "dead" if n == "db.1" else "alive"
        for st in STATES:
            check(node_sample(s, "vigil_node_state", n, state=st) == (1 if st == want else 0),
                  "%s state %s in %s" % (n, st, text))
        j = by_id[n]
        check(node_sample(s, "vigil_node_generation", n) == j["generation"],
              "%s generation" % n)
        check(node_sample(s, "vigil_node_suspect_threshold", n) == j["suspect_threshold"],
              "%s suspect threshold" % n)
        check(node_sample(s, "vigil_node_dead_threshold", n) == j["dead_threshold"],
              "%s dead threshold" % n)
        check(node_sample(s, "vigil_node_heartbeats_accepted_total", n) > 0, "%s beats" % n)
        # The statistics are those of /v1/nodes (a dead node's start over: it has none).
        mean = node_sample(s, "vigil_node_interval_mean_seconds", n)
        check(abs(mean - j["mean_interval_s"]) < 0.01, "%s interval mean %r" % (n, mean))
        if n != "db.1":
            check(0.2 < mean < 0.35, "%s interval mean %r" % (n, mean))
        check(node_sample(s, "vigil_node_interval_stddev_seconds", n) >= 0, "%s sd" % n)
        age = node_sample(s, "vigil_node_heartbeat_age_seconds", n)
        level = node_sample(s, "vigil_node_detector_level", n)
        if n == "db.1":
            check(age >= 1.5 and level >= 1.5, "dead %s: age %r level %r" % (n, age, level))
        else:
            check(age < 1.0, "alive %s: age %r" % (n, age))
    # The monitor-wide metrics are still there.
    check(s[("vigil_nodes", frozenset([("state", "dead")]))] == 1, "vigil_nodes dead")

    _, small = scrape(m, "?nodes=0")
    lint(small)
    check("vigil_node_" not in small and "vigil_nodes{" in small, "nodes=0 scrape")


def node_state(m, node):
    """The state of node by name (None while the monitor does not know it)."""
    try:
        return m.get("/v1/nodes/" + node)["state"]
    except urllib.error.HTTPError:
        return None


BIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  insecure = true;
  heartbeat_interval = "100ms";
  detector = { type = "fixed"; suspect_after = "500ms"; dead_after = "1s"; };
  startup_grace = "1h";
  nodes = [ @NODES@ ];
};
"""


def test_large_table_in_slices(tmp):
    ids = ["n%04d" % i for i in range(4000)]
    m = Monitor(tmp, BIG.replace("@NODES@", ", ".join('"%s"' % i for i in ids)))
    live = agent(m.addr, "live", tmp, interval="100ms")
    # The 4001st node: beyond the first page of /v1/nodes, so asked for by name.
    deadline = time.monotonic() + 10
    while node_state(m, "live") != "alive":
        check(time.monotonic() < deadline, "live not alive:\n" + m.read_log()[-2000:])
        time.sleep(0.05)
    seq0 = m.get("/v1/events?since=0&limit=1")["newest_seq"]

    results, errors = [], []

    def one():
        try:
            ctype, text = scrape(m)
            check(ctype == "text/plain; version=0.0.4; charset=utf-8", "type %r" % ctype)
            results.append(text)
        except Exception as e:  # reported below
            errors.append(repr(e))

    t0 = time.monotonic()
    for _ in range(3):
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    took = time.monotonic() - t0
    check(not errors and len(results) == 12, "scrapes failed: %r" % errors)
    print("12 scrapes of 4001 nodes, 4 at a time: %.2fs, %d bytes each"
          % (took, len(results[0])), flush=True)
    lint(results[0])
    for text in results:
        s = samples(text)
        states = [k for k in s if k[0] == "vigil_node_state"]
        check(len(states) == 5 * 4001, "%d state samples" % len(states))
        check(node_sample(s, "vigil_node_state", "n3999", state="unknown") == 1, "n3999")
        check(node_sample(s, "vigil_node_state", "live", state="alive") == 1, "live")
    # Heartbeats were read and judged throughout: the live node never left alive.
    evs = [e for e in m.get("/v1/events?since=%d&limit=1000" % seq0)["events"]
           if e.get("node") == "live"]
    check(evs == [], "live node changed state during the scrapes: %r" % evs)
    live.terminate()


HDR = struct.Struct(">2sBBBBBBQQqIIIIQQQ")  # protocol v1 fixed header, 72 bytes


def heartbeat(node, gen, interval_ms):
    """An unauthenticated v1 heartbeat of node, which says it sends every interval_ms."""
    return HDR.pack(b"VG", 1, 1, 0, len(node), 0, 0, gen, 1, int(time.time() * 1e6),
                    interval_ms, 100, 100, 100, 1 << 20, 1 << 19, 1000) + node.encode()


HUGE = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  insecure = true;
  heartbeat_interval = "100ms";
  detector = { type = "fixed"; suspect_after = "400ms"; dead_after = "800ms"; };
  max_nodes = 200000;
};
"""


def test_100k_nodes_do_not_stall(tmp):
    n = 100000
    m = Monitor(tmp, HUGE)
    live = agent(m.addr, "live", tmp, interval="100ms")
    # The others send one heartbeat that says "every hour": alive for the whole test.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    gen = int(time.time() * 1e6)
    for i in range(n):
        s.sendto(heartbeat("n%06d" % i, gen, 3600 * 1000), ("127.0.0.1", m.port))
        if i % 2000 == 1999:
            time.sleep(0.01)  # no faster than the monitor reads
    s.close()
    deadline = time.monotonic() + 60
    while m.get("/v1/health")["nodes"]["alive"] < n + 1:
        check(time.monotonic() < deadline, "nodes: %r" % m.get("/v1/health")["nodes"])
        time.sleep(0.2)
    seq0 = m.get("/v1/events?since=0&limit=1")["newest_seq"]

    got, errors = [], []

    def one():
        try:
            t0 = time.monotonic()
            url = "http://127.0.0.1:%d/metrics" % m.api_port
            with urllib.request.urlopen(url, timeout=120) as r:
                body = r.read()
            got.append((body.count(b"\nvigil_node_state{"), len(body), time.monotonic() - t0))
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    # Meanwhile, how long a small answer takes.
    waits = []
    while any(t.is_alive() for t in threads):
        t0 = time.monotonic()
        m.get("/v1/health")
        waits.append(time.monotonic() - t0)
        time.sleep(0.01)
    for t in threads:
        t.join(timeout=150)
    check(not errors and len(got) == 2, "scrapes: %r %r" % (errors, got))
    for states, size, took in got:
        print("scrape of %d nodes: %d bytes in %.2fs" % (n + 1, size, took), flush=True)
        check(states == 5 * (n + 1), "%d state samples" % states)
    print("/v1/health meanwhile: %d answers, slowest %.3fs" % (len(waits), max(waits or [0])),
          flush=True)
    evs = [e for e in m.get("/v1/events?since=%d&limit=1000" % seq0)["events"]
           if e.get("node") == "live" or e["type"] == "pause"]
    check(evs == [], "the monitor paused, or the live node changed state: %r" % evs)
    check(m.get("/v1/health")["counters"]["pauses"] == 0, "the monitor paused")
    live.terminate()


if __name__ == "__main__":
    run_tests([test_promtool_accepts_the_scrape, test_large_table_in_slices,
               test_100k_nodes_do_not_stall])
