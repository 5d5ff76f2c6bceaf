#!/usr/bin/env python3
"""vigil explain, vigil tune, vigil sim and the QoS of the API, with real processes.

A monitor (fixed detector: suspect after 750 ms, dead after 2 s, heartbeats
every 250 ms) and one agent on loopback:
- the node JSON carries qos.predicted, qos.observed and warnings;
- `vigil explain` says why the node is alive, with the numbers, and what
  would change the verdict;
- a short SIGSTOP of the agent makes a wrong suspicion: the monitor counts
  one mistake, `vigil status NODE` shows it beside the prediction;
- a longer one makes it dead: `vigil explain` says it comes back after 2
  timely heartbeats (rise);
- `vigil tune` reads the measurements and recommends settings;
- `vigil tune -c FILE` prints warnings and refusals without a monitor;
- `vigil sim` is deterministic with --seed and detects every crash;
- the grid detector: the node's qos in slots, explain in missed heartbeats
  and their deadlines, tune's thresholds from the budget, sim with grid.
"""
import json
import os
import re
import signal
import subprocess
import time

from vigil_harness import VIGIL, Monitor, agent, check, run_tests

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  heartbeat_interval = "250ms";
  rise = 2;
  pause_tolerance = "500ms";
  startup_grace = "5s";
  detector = { type = "fixed"; suspect_after = "750ms"; dead_after = "2s"; };
  goals = { detection = "2s"; false_alarms = "1/month"; };
};
"""


def run(args, timeout=60):
    p = subprocess.run([VIGIL] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


def api_arg(m):
    return "127.0.0.1:%d" % m.api_port


UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def number_after(text, phrase):
    """The duration after phrase, as vigil prints one ("750ms", "1.5s"), in seconds."""
    mt = re.search(re.escape(phrase) + r" ([0-9.]+)(ns|us|ms|s)\b", text)
    check(mt, "no '%s DURATION' in:\n%s" % (phrase, text))
    return float(mt.group(1)) * UNITS[mt.group(2)]


def test_qos_explain_status(tmp):
    m = Monitor(tmp, CONFIG)
    a = agent(m.addr, "a1", tmp)
    m.wait_state("a1", "alive", 10)
    time.sleep(2.5)
    n = m.get("/v1/nodes/a1")
    q = n["qos"]
    check(q["silence_to_suspect_s"] == 0.75 and q["silence_to_dead_s"] == 2.0, q)
    for k in ("detection_s", "detection_max_s", "mistake_rate_per_h", "false_death_rate_per_h",
              "mistake_duration_s", "query_accuracy"):
        check(k in q["predicted"], "predicted lacks %s: %s" % (k, q))
    check(abs(q["predicted"]["detection_max_s"] - 2.0) < 1e-9, q)
    # E(T_D) = 2 - h/2 with no loss.
    check(abs(q["predicted"]["detection_s"] - 1.875) < 0.01, q)
    check(q["observed"]["mistakes"] == 0 and q["observed"]["loss"] == 0.0, q)
    check(isinstance(n["warnings"], list), n)

    rc, out = run(["explain", "--api", api_arg(m), "a1"])
    check(rc == 0, out)
    check("a1 is alive" in out, out)
    check("Detector: fixed timeout" in out and "Suspect after 750ms, dead after 2s" in out,
          out)
    check(re.search(r"Heartbeats: \d+ received", out), out)
    check("Loss: 0.00%" in out, out)
    to_suspect = number_after(out, "It would become suspect if no heartbeat arrives for another")
    to_dead = number_after(out, "declared dead if none arrives for another")
    check(0 < to_suspect <= 0.75 and abs((to_dead - to_suspect) - 1.25) < 0.002, out)
    check("unknown -> alive (first heartbeat)" in out, out)

    # Tune from the running monitor's measurements (before the stops below widen them).
    rc, out = run(["tune", "--api", api_arg(m), "--detection", "800ms", "--false-alarms",
                   "1/month", "--detector", "fixed"])
    check(rc == 0, out)
    check("a1: jitter" in out and "budget" in out and "k = 1" in out, out)
    check("recommended settings" in out and 'dead_after = "800ms"' in out, out)
    check(re.search(r'heartbeat_interval = "\d+m?s"', out), out)

    # A wrong suspicion: stop the agent for 1.2 s (suspect after 0.75 s, dead after 2 s).
    a.send_signal(signal.SIGSTOP)
    m.wait_state("a1", "suspect", 3)
    time.sleep(0.3)
    a.send_signal(signal.SIGCONT)
    m.wait_state("a1", "alive", 3)
    time.sleep(0.3)
    obs = m.get("/v1/nodes/a1")["qos"]["observed"]
    check(obs["mistakes"] == 1 and obs["false_deaths"] == 0, obs)
    check(0.1 < obs["mistake_duration_s"] < 1.5, obs)
    rc, out = run(["status", "--api", api_arg(m), "a1"])
    check(rc == 0, out)
    check(re.search(r"mistakes +predicted: .*; observed: 1 in ", out), out)
    check("false deaths  predicted:" in out and "accuracy      predicted:" in out, out)

    # A real silence: dead, then explain says how it comes back.
    a.send_signal(signal.SIGSTOP)
    m.wait_state("a1", "dead", 5)
    rc, out = run(["explain", "--api", api_arg(m), "a1"])
    check(rc == 0 and "a1 is dead" in out, out)
    check("It comes back after 2 timely heartbeats (rise); 0 so far" in out, out)
    check("alive -> suspect (timeout)" in out and "suspect -> dead (timeout)" in out, out)
    check("reached the threshold 2.00" in out, out)
    a.send_signal(signal.SIGCONT)
    m.wait_state("a1", "alive", 5)
    obs = m.get("/v1/nodes/a1")["qos"]["observed"]
    check(obs["mistakes"] == 2 and obs["false_deaths"] == 1, obs)

    rc, out = run(["explain", "--api", api_arg(m), "nosuch"])
    check(rc == 1 and "no such node" in out, out)


def test_tune_config_without_monitor(tmp):
    path = os.path.join(tmp, "bad.conf")
    with open(path, "w") as f:
        f.write('monitor = {\n  heartbeat_interval = "1s";\n  pause_tolerance = "500ms";\n'
                '  detector = { type = "phi"; suspect_threshold = 0.5; acceptable_pause = 0; };\n'
                '  goals = { detection = "800ms"; false_alarms = "1/month"; };\n};\n')
    rc, out = run(["tune", "-c", path, "--api", "127.0.0.1:1"])
    check("warning: %s:3: monitor.pause_tolerance (500ms) is shorter than "
          "monitor.heartbeat_interval (1s)" % path in out, out)
    check("warning: %s:4: monitor.detector.suspect_threshold (0.5) is so low" % path in out, out)
    check("one lost heartbeat convicts" in out, out)
    check("warning: %s:5: the settings miss monitor.goals.detection (800ms)" % path in out, out)
    check("no measurements" in out and "recommended settings" in out, out)
    # A refusal: names the file and the line.
    with open(path, "w") as f:
        f.write('monitor = {\n  pause_tolerance = "5ms";\n};\n')
    rc, out = run(["tune", "-c", path])
    check(rc == 2 and "refused: %s:2: monitor.pause_tolerance (5ms) must be at least 10ms"
          % path in out, out)
    # The monitor logs the warnings at start-up too.
    with open(path, "w") as f:
        f.write('monitor = {\n  listen = [ "127.0.0.1:@PORT@" ];\n  api = "127.0.0.1:@API@";\n'
                '  pause_tolerance = "500ms";\n};\n')
    text = open(path).read()
    m = Monitor(tmp, text)
    time.sleep(0.3)
    check("vigil monitor: warning: " in m.read_log() and "pause_tolerance (500ms)" in
          m.read_log(), m.read_log())


def test_sim(tmp):
    path = os.path.join(tmp, "fixed.conf")
    with open(path, "w") as f:
        f.write('monitor = {\n  heartbeat_interval = "100ms";\n'
                '  detector = { type = "fixed"; suspect_after = "250ms"; dead_after = "500ms"; };\n'
                '};\n')
    args = ["sim", "-c", path, "--nodes", "50", "--duration", "10m", "--loss", "5%",
            "--jitter", "1ms", "--crashes", "20", "--seed", "3", "--json"]
    rc, out = run(args)
    check(rc == 0, out)
    rc2, out2 = run(args)
    check(out == out2, "not deterministic")
    r = json.loads(out)
    check(r["crashes"] == 20 and r["undetected"] == 0 and r["detection"]["count"] == 20, r)
    d = r["detection"]
    check(0.3 < d["min_s"] <= d["median_s"] <= d["p95_s"] <= d["p99_s"] <= d["max_s"] < 0.51, d)
    pred = r["predicted"]["false_suspicions"]
    check(abs(r["false_suspicions"] - pred) < 0.15 * pred, r)
    check(r["limit"]["k"] == 6 and abs(r["limit"]["k_h_s"] - 0.6) < 1e-9, r)
    rc, out = run(args[:-1])
    check(rc == 0 and "detection time: min" in out and "information limit" in out, out)
    rc, out = run(["sim", "--spikes", "nonsense"])
    check(rc == 2 and "--spikes" in out, out)


GRID_CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  heartbeat_interval = "100ms";
  detector = { type = "grid"; };
};
"""


def test_grid(tmp):
    m = Monitor(tmp, GRID_CONFIG)
    a = agent(m.addr, "g1", tmp, interval="100ms")
    m.wait_state("g1", "alive", 10)
    time.sleep(1.5)
    n = m.get("/v1/nodes/g1")
    q, g = n["qos"], n["qos"]["grid"]
    h = n["interval_s"]
    # A fresh node: the prior (about 14 % assumed) takes 8 slots to convict at dead 6.5.
    check(g["dead_after_slots"] >= 4 and g["suspect_after_slots"] <= g["dead_after_slots"], g)
    check(abs(q["silence_to_dead_s"] - (g["dead_after_slots"] * h + g["margin_s"])) < 1e-6, q)
    check(abs(q["predicted"]["detection_max_s"] - q["silence_to_dead_s"]) < 1e-9, q)
    rc, out = run(["explain", "--api", api_arg(m), "g1"])
    check(rc == 0 and "g1 is alive" in out and "Detector: grid" in out, out)
    check(re.search(r"be declared dead if the next %d heartbeats \(deadlines \+[0-9.]+m?s"
                    % g["dead_after_slots"], out), out)
    check("the detector's estimate, raised by one standard error" in out, out)
    rc, out = run(["status", "--api", api_arg(m), "g1"])
    check(rc == 0 and re.search(r"verdicts +suspect after \d+ missed heartbeats", out), out)
    rc, out = run(["tune", "--api", api_arg(m), "--detection", "800ms", "--false-alarms",
                   "1/month", "--detector", "grid"])
    check(rc == 0 and 'type = "grid"; suspect_threshold = ' in out, out)
    mt = re.search(r"suspect_threshold = ([0-9.]+); dead_threshold = ([0-9.]+);", out)
    check(mt and abs(float(mt.group(2)) - float(mt.group(1)) - 0.5) < 1e-9, out)
    # Dead at log10(G / e): 5 % loss at 100 ms, 1/month: G / e = 9.5 x 2592000 -> 7.39, rounded up.
    rc, out = run(["tune", "--detection", "800ms", "--false-alarms", "1/month", "--detector",
                   "grid", "--jitter", "1ms", "--loss", "5%"])
    check(rc == 0 and "dead_threshold = 7.40;" in out and 'heartbeat_interval = "100ms"' in out,
          out)
    a.send_signal(signal.SIGKILL)
    m.wait_state("g1", "dead", 5)
    rc, out = run(["explain", "--api", api_arg(m), "g1"])
    check(rc == 0 and "heartbeats in a row had missed their deadlines" in out, out)
    rc, out = run(["sim", "--detector", "grid", "--interval", "100ms", "--nodes", "20",
                   "--duration", "5m", "--loss", "5%", "--crashes", "10", "--json"])
    check(rc == 0, out)
    r = json.loads(out)
    check(r["detector"] == "grid" and r["undetected"] == 0 and r["false_deaths"] == 0, r)
    check(r["predicted"]["grid"]["dead_after_slots"] == 6, r)
    check(0.4 < r["detection"]["median_s"] < 0.65, r)


run_tests([test_qos_explain_status, test_tune_config_without_monitor, test_sim, test_grid])
