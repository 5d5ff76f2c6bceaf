#!/usr/bin/env python3
"""Actions against the real programs they drive (docs/actions.md).

- HAProxy (Debian's `haproxy`, started here with a runtime API socket) in
  front of three small HTTP servers, each with a vigil agent. A load
  generator sends requests through HAProxy all along. One server and its
  agent are killed: the monitor declares the node dead and its haproxy
  action puts the server into maint. Printed: the detection time, the time
  until HAProxy stopped routing to it, the failed requests. Checked: after
  the action no request failed (none reached the dead server), HAProxy's
  own `show servers state` says maint, and on the server's return it is
  made ready again and serves requests.
- A webhook receiver that answers 503 twice and then 200, with the monitor
  SIGKILLed and restarted between the attempts: the document is delivered
  from the outbox after the restart, every attempt carries the same
  idempotency key, and its HMAC-SHA256 signature is right.
- Alertmanager (Debian's `prometheus-alertmanager`): the alert fires on the
  node's death (seen through Alertmanager's own API), and is resolved when
  the node comes back.
- Undo runs in reverse order, only for what was done; a 4xx is not retried.

Programs missing are failures, not skips: scripts/install-deps.sh installs them.
"""
import hashlib
import hmac
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import vigil_harness
from vigil_harness import Monitor, agent, check, free_port, run_tests, start, stop

CONF = """
monitor: {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  heartbeat_interval = "100ms";
  detector = { type = "fixed"; suspect_after = "300ms"; dead_after = "600ms"; };
  %s
  actions = ( %s );
};
"""


def wait_for(cond, timeout, what, step=0.02):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def start_server(port, name):
    """An HTTP server (a child process, so that it can be killed like a real one)."""
    code = ("import http.server,sys\n"
            "class H(http.server.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            "        b=b'%s'\n"
            "        self.send_response(200);self.send_header('Content-Length',str(len(b)))\n"
            "        self.end_headers();self.wfile.write(b)\n"
            "    def log_message(self,*a): pass\n"
            "http.server.ThreadingHTTPServer.allow_reuse_address=True\n"
            "http.server.ThreadingHTTPServer(('127.0.0.1',%d),H).serve_forever()\n" % (name, port))
    p = subprocess.Popen(["python3", "-c", code], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    vigil_harness._procs.append(p)
    wait_for(lambda: _connects(port), 10, "server %s on %d" % (name, port))
    return p


def iso_s(t):
    """Seconds since the epoch of an RFC 3339 UTC time with milliseconds ("...T19:42:30.150Z")."""
    import calendar
    base, frac = t.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + frac)


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def haproxy_cmd(sock, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(cmd.encode() + b"\n")
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out.decode()


def admin_state(sock, be, srv):
    for line in haproxy_cmd(sock, "show servers state %s" % be).splitlines():
        f = line.split()
        if len(f) > 6 and not line.startswith("#") and f[1] == be and f[3] == srv:
            return int(f[6])
    return None


def start_haproxy(tmp, front, servers):
    exe = shutil.which("haproxy")
    if not exe:
        raise AssertionError("haproxy not found: run scripts/install-deps.sh (package haproxy)")
    sock = os.path.join(tmp, "haproxy.sock")
    cfg = os.path.join(tmp, "haproxy.cfg")
    lines = ["global", "    stats socket %s mode 600 level admin" % sock,
             "defaults", "    mode http", "    timeout connect 200ms", "    timeout client 5s",
             "    timeout server 5s", "    retries 0",
             "frontend fe", "    bind 127.0.0.1:%d" % front, "    default_backend web",
             "backend web", "    balance roundrobin"]
    for name, port in servers:
        lines.append("    server %s 127.0.0.1:%d" % (name, port))
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = subprocess.Popen([exe, "-db", "-f", cfg], stdout=open(os.path.join(tmp, "haproxy.log"), "w"),
                         stderr=subprocess.STDOUT)
    vigil_harness._procs.append(p)
    wait_for(lambda: os.path.exists(sock) and _connects(front), 10, "haproxy")
    return p, sock


class Load(threading.Thread):
    """Requests through HAProxy, one after another: (time, answer or None) each."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.results = []
        self.stop = False

    def run(self):
        while not self.stop:
            t = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    self.results.append((t, r.read().decode()))
            except (urllib.error.URLError, OSError, ConnectionError):
                self.results.append((t, None))
            time.sleep(0.005)


def test_haproxy(tmp):
    front = free_port(socket.SOCK_STREAM)
    ports = {n: free_port(socket.SOCK_STREAM) for n in ("web1", "web2", "web3")}
    servers = {n: start_server(p, n) for n, p in ports.items()}
    hap, sock = start_haproxy(tmp, front, sorted(ports.items()))
    # A webhook whose receiver is down comes first: its retries must not hold the lb back.
    m = Monitor(tmp, CONF % ("", """{ name = "notify"; kind = "webhook";
        url = "http://127.0.0.1:1/"; },
        { name = "lb"; kind = "haproxy"; socket = "%s";
        servers = [ "web/%%n" ]; on = [ "dead" ]; }""" % sock))
    agents = {n: agent(m.addr, n, tmp, interval="100ms") for n in ports}
    for n in ports:
        m.wait_state(n, "alive", 10)
    load = Load("http://127.0.0.1:%d/" % front)
    load.start()
    time.sleep(1.0)
    check(all(r[1] for r in load.results), "requests failed before any failure")
    # The crash: the server and its agent, at once.
    t_kill = time.monotonic()
    t_kill_wall = time.time()
    servers["web2"].kill()
    agents["web2"].kill()
    m.wait_state("web2", "dead", 10)
    wait_for(lambda: admin_state(sock, "web", "web2") == 1, 10, "web2 in maint")
    n_before = len(load.results)
    # At least 1.5 s and 50 requests after the action (a loaded machine makes fewer a second).
    time.sleep(1.5)
    wait_for(lambda: len(load.results) - n_before >= 50, 20, "50 requests after the action")
    after = load.results[n_before:]
    failed = [r for r in load.results if r[0] >= t_kill and r[1] is None]
    dead = [e for e in m.events() if e.get("node") == "web2" and e.get("new_state") == "dead"][-1]
    done = [r for r in m.get("/v1/actions")["recent"]
            if r["node"] == "web2" and r["action"] == "lb" and r["outcome"] == "succeeded"][0]
    detect = dead["time_us"] / 1e6 - t_kill_wall
    t_out = iso_s(done["time"]) - t_kill_wall
    print("haproxy: detection %.3fs after the kill, out of HAProxy %.3fs after the kill (the "
          "action took %.1fms), %d requests failed (of %d since the kill), %d requests after the "
          "action, all answered by web1 and web3"
          % (detect, t_out, done["took_s"] * 1e3, len(failed),
             len([r for r in load.results if r[0] >= t_kill]), len(after)), flush=True)
    # The record's time has milliseconds: the action ends within a few of the verdict, the
    # failing webhook before it notwithstanding.
    check(0 < detect < 2.0 and detect - 0.002 <= t_out < detect + 0.3,
          "times %.3f %.3f" % (detect, t_out))
    # Every attempt and outcome is an event too.
    acted = [e for e in m.events() if e["type"] == "action" and e["node"] == "web2"
             and e["reason"].startswith("lb ")]
    check([e["reason"] for e in acted] == ["lb do started", "lb do succeeded"]
          and acted[0]["about"] == dead["seq"], "action events: %s" % acted)
    check(after and all(r[1] in ("web1", "web3") for r in after),
          "a request failed or reached web2 after the action: %s" %
          [r for r in after if r[1] not in ("web1", "web3")][:5])
    acts = m.get("/v1/actions")
    rec = [r for r in acts["recent"] if r["node"] == "web2" and r["action"] == "lb"
           and r["outcome"] == "succeeded"]
    check(rec and rec[0]["op"] == "do" and rec[0]["kind"] == "haproxy", "no record: %s" % acts)
    # The return: the server, then its agent; the server is made ready and serves again.
    servers["web2"] = start_server(ports["web2"], "web2")
    agents["web2"] = agent(m.addr, "web2", tmp, interval="100ms")
    m.wait_state("web2", "alive", 10)
    wait_for(lambda: admin_state(sock, "web", "web2") == 0, 10, "web2 ready")
    n_back = len(load.results)
    wait_for(lambda: any(r[1] == "web2" for r in load.results[n_back:]), 10,
             "a request answered by web2 again")
    load.stop = True
    load.join(5)
    check(all(r[1] for r in load.results[n_before:]), "a request failed after the action")
    acts = m.get("/v1/actions")
    undo = [r for r in acts["recent"] if r["node"] == "web2" and r["op"] == "undo"
            and r["action"] == "lb" and r["outcome"] == "succeeded"]
    check(undo, "no undo recorded: %s" % acts["recent"][:5])
    metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % m.api_port).read().decode()
    check('vigil_actions_total{kind="haproxy",outcome="succeeded"} 2' in metrics,
          "metrics: %s" % [l for l in metrics.splitlines() if "actions" in l])
    stop(hap)


def test_haproxy_restarting(tmp):
    """HAProxy away when the node dies: the action is retried until it comes back."""
    front = free_port(socket.SOCK_STREAM)
    port = free_port(socket.SOCK_STREAM)
    start_server(port, "web1")
    hap, sock = start_haproxy(tmp, front, [("web1", port)])
    m = Monitor(tmp, CONF % ("", """{ name = "lb"; kind = "haproxy"; socket = "%s";
        servers = [ "web/%%n" ]; retry_delay = "500ms"; retries = 8; }""" % sock))
    a = agent(m.addr, "web1", tmp, interval="100ms")
    m.wait_state("web1", "alive", 10)
    stop(hap)
    a.kill()
    m.wait_state("web1", "dead", 10)
    wait_for(lambda: any(r["outcome"] == "retrying" for r in m.get("/v1/actions")["recent"]), 10,
             "a failed attempt")
    hap, sock2 = start_haproxy(tmp, front, [("web1", port)])
    wait_for(lambda: admin_state(sock, "web", "web1") == 1, 15, "web1 in maint after the restart")
    stop(hap)


class Receiver:
    """A webhook receiver: answers the codes given in turn (then 200), records every request."""

    def __init__(self, codes, secret):
        self.codes = list(codes)
        self.got = []
        self.secret = secret
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                code = outer.codes.pop(0) if outer.codes else 200
                outer.got.append((dict(self.headers), body, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_webhook_outbox(tmp):
    secret = "s3cret-for-the-test"
    with open(os.path.join(tmp, "hook.secret"), "w") as f:
        f.write(secret + "\n")
    os.chmod(os.path.join(tmp, "hook.secret"), 0o600)
    rx = Receiver([503, 503], secret)
    conf = CONF % ('state_dir = "@TMP@/state";', """{ name = "page"; kind = "webhook";
        url = "http://127.0.0.1:%d/hook"; secret_file = "hook.secret"; on = [ "dead" ];
        retry_delay = "4s"; }""" % rx.port)
    m = Monitor(tmp, conf)
    a = agent(m.addr, "db1", tmp, interval="100ms")
    m.wait_state("db1", "alive", 10)
    a.kill()
    m.wait_state("db1", "dead", 10)
    wait_for(lambda: len(rx.got) >= 1, 10, "the first attempt")
    # Killed between the attempts (the next one is 4 s away), then started again.
    m.proc.kill()
    m.proc.wait(5)
    port = m.port
    m2 = Monitor(tmp, conf, port=port)
    wait_for(lambda: any(g[2] == 200 for g in rx.got), 30, "the delivery after the restart")
    time.sleep(1.5)
    rx.close()
    keys = {g[0].get("X-Vigil-Idempotency-Key") for g in rx.got}
    check(len(keys) == 1, "one document, one key: %s" % keys)
    check([g[2] for g in rx.got] == [503, 503, 200], "answers: %s" % [g[2] for g in rx.got])
    for h, body, _ in rx.got:
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        check(h.get("X-Vigil-Signature") == want, "signature %s, want %s" %
              (h.get("X-Vigil-Signature"), want))
        doc = json.loads(body)
        check(doc["node"] == "db1" and doc["op"] == "do" and doc["event"]["new_state"] == "dead",
              "document: %s" % doc)
        check(doc["key"] == h.get("X-Vigil-Idempotency-Key"), "key in the document")
    check("left pending by the last run" in m2.read_log(), "resume not logged")


def test_webhook_4xx_not_retried(tmp):
    rx = Receiver([404], "")
    m = Monitor(tmp, CONF % ("", """{ kind = "webhook"; url = "http://127.0.0.1:%d/";
        on = [ "dead" ]; retry_delay = "200ms"; }""" % rx.port))
    a = agent(m.addr, "n1", tmp, interval="100ms")
    m.wait_state("n1", "alive", 10)
    a.kill()
    m.wait_state("n1", "dead", 10)
    wait_for(lambda: any(r["outcome"] == "failed" for r in m.get("/v1/actions")["recent"]), 10,
             "the refusal recorded")
    time.sleep(1.0)
    rx.close()
    check(len(rx.got) == 1, "a 404 was retried: %d requests" % len(rx.got))


def test_alertmanager(tmp):
    exe = shutil.which("prometheus-alertmanager")
    if not exe:
        raise AssertionError("prometheus-alertmanager not found: run scripts/install-deps.sh")
    amport = free_port(socket.SOCK_STREAM)
    cfg = os.path.join(tmp, "am.yml")
    with open(cfg, "w") as f:
        f.write("route:\n  receiver: none\n  group_wait: 1s\nreceivers:\n  - name: none\n")
    am = subprocess.Popen([exe, "--config.file=" + cfg, "--storage.path=" + os.path.join(tmp, "am"),
                           "--web.listen-address=127.0.0.1:%d" % amport,
                           "--cluster.listen-address="],
                          stdout=open(os.path.join(tmp, "am.log"), "w"), stderr=subprocess.STDOUT)
    vigil_harness._procs.append(am)
    base = "http://127.0.0.1:%d" % amport

    def alerts():
        q = urllib.parse.quote('node="n1"')
        with urllib.request.urlopen(base + "/api/v2/alerts?filter=" + q, timeout=5) as r:
            return json.loads(r.read())

    wait_for(lambda: _connects(amport), 20, "alertmanager")
    wait_for(lambda: alerts() == [], 20, "alertmanager's API")
    m = Monitor(tmp, CONF % ("", """{ name = "pager"; kind = "alertmanager"; url = "%s";
        labels = [ "team=db", "severity=page" ]; repeat = "1s"; }""" % base))
    a = agent(m.addr, "n1", tmp, interval="100ms")
    m.wait_state("n1", "alive", 10)
    a.kill()
    m.wait_state("n1", "dead", 10)
    fired = wait_for(lambda: [x for x in alerts() if x["status"]["state"] == "active"], 15,
                     "the alert firing")
    lab = fired[0]["labels"]
    check(lab["alertname"] == "VigilNodeDown" and lab["node"] == "n1" and lab["team"] == "db"
          and lab["severity"] == "page" and lab["state"] == "dead", "labels: %s" % lab)
    check("n1 is dead" in fired[0]["annotations"]["summary"], "annotations: %s" % fired[0])
    # Re-posted while it fires: Alertmanager's endsAt moves on.
    ends = fired[0]["endsAt"]
    wait_for(lambda: [x for x in alerts() if x["endsAt"] > ends], 10, "the alert re-posted")
    a = agent(m.addr, "n1", tmp, interval="100ms")
    m.wait_state("n1", "alive", 10)
    wait_for(lambda: not [x for x in alerts() if x["status"]["state"] == "active"], 15,
             "the alert resolved")
    stop(am)


def test_undo_reverse_order(tmp):
    """Two exec actions that undo: done in the list's order, undone in reverse."""
    out = os.path.join(tmp, "order.txt")
    script = os.path.join(tmp, "rec.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho \"$1 $VIGIL_ACTION $VIGIL_NEW_STATE\" >> %s\nsleep 0.2\n" % out)
    os.chmod(script, 0o755)
    m = Monitor(tmp, CONF % ("", """{ name = "first"; command = [ "%s", "first" ]; on = [ "dead" ];
        undo = true; }, { name = "second"; command = [ "%s", "second" ]; on = [ "dead" ];
        undo = true; }""" % (script, script)))
    a = agent(m.addr, "n1", tmp, interval="100ms")
    m.wait_state("n1", "alive", 10)
    a.kill()
    m.wait_state("n1", "dead", 10)
    a = agent(m.addr, "n1", tmp, interval="100ms")
    m.wait_state("n1", "alive", 10)
    wait_for(lambda: os.path.exists(out) and len(open(out).read().splitlines()) >= 4, 10,
             "four runs")
    lines = open(out).read().splitlines()
    check(lines == ["first do dead", "second do dead", "second undo alive", "first undo alive"],
          "order: %s" % lines)


def recorder(tmp):
    """An exec action's program that appends "NODE ACTION STATE" to a file; the file's path."""
    out = os.path.join(tmp, "runs.txt")
    script = os.path.join(tmp, "runs.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho \"$VIGIL_NODE $VIGIL_ACTION $VIGIL_NEW_STATE\" >> %s\n" % out)
    os.chmod(script, 0o755)
    return script, out


def runs(out):
    return open(out).read().splitlines() if os.path.exists(out) else []


def vigil_cli(*args):
    return subprocess.run([vigil_harness.VIGIL] + list(args), capture_output=True, text=True,
                          timeout=20)


def test_maintenance(tmp):
    """Maintenance holds a node's actions while it is watched; kept across a restart."""
    script, out = recorder(tmp)
    tok = os.path.join(tmp, "api.token")
    with open(tok, "w") as f:
        f.write("maint-token-0123456789\n")
    os.chmod(tok, 0o600)
    conf = CONF % ('state_dir = "@TMP@/state"; api_token_file = "api.token";\n'
                   '  flap_damping = { enabled = false; };',
                   """{ name = "lb"; command = [ "%s" ]; on = [ "dead" ]; undo = true; }""" % script)
    m = Monitor(tmp, conf)
    api = "127.0.0.1:%d" % m.api_port
    a = agent(m.addr, "n1", tmp, interval="100ms")
    m.wait_state("n1", "alive", 10)
    r = vigil_cli("maint", "n1", "--for", "1h", "--api", api, "--token-file", tok)
    check(r.returncode == 0 and "in maintenance" in r.stdout, "maint: %s %s" % (r.stdout, r.stderr))
    r = vigil_cli("maint", "n1", "--api", api)
    check(r.returncode == 2 and "token" in r.stderr, "maint without a token: %s" % r.stderr)
    # Kept across two restarts in a row (each restart writes it anew).
    for _ in range(2):
        m.proc.kill()
        m.proc.wait(5)
        m = Monitor(tmp, conf, port=m.port)
        api = "127.0.0.1:%d" % m.api_port
        check([h["node"] for h in m.get("/v1/maint")["held"]] == ["n1"], "maintenance lost")
        m.wait_state("n1", "alive", 15)
    # Down and back during maintenance: watched, not acted on, even after maintenance ends.
    a.kill()
    m.wait_state("n1", "dead", 10)
    st = vigil_cli("status", "--api", api)
    check("held: n1, maintenance until" in st.stdout, "status: %s" % st.stdout)
    acts = vigil_cli("actions", "--api", api)
    check("held: maintenance" in acts.stdout, "actions: %s" % acts.stdout)
    a = agent(m.addr, "n1", tmp, interval="100ms")
    m.wait_state("n1", "alive", 10)
    r = vigil_cli("maint", "n1", "--off", "--api", api, "--token-file", tok)
    check(r.returncode == 0, "maint --off: %s" % r.stderr)
    time.sleep(0.5)
    check(runs(out) == [], "acted during maintenance: %s" % runs(out))
    # Down during maintenance, which survives a restart of the monitor; acted on at its end.
    vigil_cli("maint", "n1", "--api", api, "--token-file", tok)
    m.proc.kill()
    m.proc.wait(5)
    m = Monitor(tmp, conf, port=m.port)
    api = "127.0.0.1:%d" % m.api_port
    check([h["node"] for h in m.get("/v1/maint")["held"]] == ["n1"], "maintenance lost")
    m.wait_state("n1", "alive", 15)
    a.kill()
    m.wait_state("n1", "dead", 10)
    time.sleep(0.5)
    check(runs(out) == [], "acted during maintenance: %s" % runs(out))
    vigil_cli("maint", "n1", "--off", "--api", api, "--token-file", tok)
    wait_for(lambda: runs(out) == ["n1 do dead"], 10, "the action once maintenance ended")
    evs = [e["reason"] for e in m.events() if e["type"] == "action" and e["node"] == "n1"]
    check("maintenance on" in evs and "maintenance off" in evs, "events: %s" % evs)


def test_flap_damping(tmp):
    """A node that dies and comes back again and again: held while it flaps, settled after."""
    script, out = recorder(tmp)
    conf = CONF % ('flap_damping = { half_life = "2s"; suppress = 3000.0; reuse = 750.0; };',
                   """{ name = "lb"; command = [ "%s" ]; on = [ "dead" ]; undo = true; }""" % script)
    m = Monitor(tmp, conf)
    a = None
    for i in range(4):
        a = agent(m.addr, "n1", tmp, interval="100ms")
        m.wait_state("n1", "alive", 10)
        a.kill()
        m.wait_state("n1", "dead", 10)
    evs = [e["reason"] for e in m.events() if e["type"] == "action" and e["node"] == "n1"
           and e["attempt"] == 0]
    check(evs.count("flapping") == 1, "flapping events: %s" % evs)
    n_runs = len(runs(out))
    check(n_runs <= 4, "acted while flapping: %s" % runs(out))
    check(m.get("/v1/maint")["held"][0]["reason"] == "flapping", "not held")
    # Back for good while held: it settles within a few half-lives, and only then is its
    # latest state acted on, once.
    a = agent(m.addr, "n1", tmp, interval="100ms")
    m.wait_state("n1", "alive", 10)
    check(len(runs(out)) == n_runs, "acted while flapping: %s" % runs(out))
    wait_for(lambda: "settled" in [e["reason"] for e in m.events() if e["type"] == "action"], 30,
             "settled")
    wait_for(lambda: len(runs(out)) > n_runs, 10, "acted on once settled")
    time.sleep(0.5)
    check(runs(out)[n_runs:] == ["n1 undo alive"], "after settling: %s" % runs(out)[n_runs:])
    print("flap damping: %d runs before the hold, %s after it" % (n_runs, runs(out)[n_runs:]))



def test_failover_group(tmp):
    """Primary killed: exactly one promotion (the replica of least lag), epoch + 1; the old
    primary comes back as a replica; a planned switchover demotes first; no replica alive:
    said, nothing promoted; the record survives a restart."""
    out = os.path.join(tmp, "group.txt")
    script = os.path.join(tmp, "group.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho \"$VIGIL_ACTION $VIGIL_NODE $VIGIL_EPOCH\" >> %s\n" % out)
    os.chmod(script, 0o755)
    tok = os.path.join(tmp, "api.token")
    with open(tok, "w") as f:
        f.write("group-token-0123456789\n")
    os.chmod(tok, 0o600)
    conf = ("""
monitor: {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  api_token_file = "api.token";
  state_dir = "@TMP@/state";
  heartbeat_interval = "100ms";
  detector = { type = "fixed"; suspect_after = "300ms"; dead_after = "600ms"; };
  groups = ( { name = "db"; nodes = [ "db1", "db2", "db3" ]; priority = [ 1, 0, 0 ];
               rank_key = "lag"; promote = [ "%s" ]; demote = [ "%s" ]; } );
};
""" % (script, script))
    m = Monitor(tmp, conf)
    api = "127.0.0.1:%d" % m.api_port
    lag = {"db1": "0", "db2": "30", "db3": "5"}
    ag = {n: agent(m.addr, n, tmp, interval="100ms", extra=["--set", "lag=" + lag[n]])
          for n in lag}
    for n in lag:
        m.wait_state(n, "alive", 10)
    g = m.get("/v1/groups")["groups"][0]
    check(g["primary"] == "db1" and g["epoch"] == 1, "start: %s" % g)
    ag["db1"].kill()
    m.wait_state("db1", "dead", 10)
    wait_for(lambda: runs(out), 10, "a promotion")
    time.sleep(0.5)
    check(runs(out) == ["promote db3 2"], "failover: %s" % runs(out))
    g = m.get("/v1/groups")["groups"][0]
    check(g["primary"] == "db3" and g["epoch"] == 2 and g["promoted"], "after failover: %s" % g)
    # The old primary returns: demoted under the current epoch, and stays a replica.
    ag["db1"] = agent(m.addr, "db1", tmp, interval="100ms", extra=["--set", "lag=0"])
    m.wait_state("db1", "alive", 10)
    wait_for(lambda: len(runs(out)) >= 2, 10, "the demotion")
    time.sleep(0.5)
    check(runs(out) == ["promote db3 2", "demote db1 2"], "return: %s" % runs(out))
    check(m.get("/v1/groups")["groups"][0]["primary"] == "db3", "preempted without preempt")
    # A planned switchover: the current primary demoted first, then the target promoted.
    r = vigil_cli("failover", "db", "--to", "db2", "--api", api, "--token-file", tok)
    check(r.returncode == 0 and "db2 is the primary under epoch 3" in r.stdout,
          "failover: %s %s" % (r.stdout, r.stderr))
    wait_for(lambda: len(runs(out)) >= 4, 10, "the switchover")
    check(runs(out)[2:] == ["demote db3 3", "promote db2 3"], "switchover: %s" % runs(out))
    r = vigil_cli("failover", "db", "--to", "nosuch", "--api", api, "--token-file", tok)
    check(r.returncode != 0 and "not in group" in r.stderr, "bad target: %s" % r.stderr)
    # Every replica down, then the primary: said loudly, nothing promoted.
    ag["db1"].kill()
    ag["db3"].kill()
    m.wait_state("db1", "dead", 10)
    m.wait_state("db3", "dead", 10)
    ag["db2"].kill()
    m.wait_state("db2", "dead", 10)
    wait_for(lambda: m.get("/v1/groups")["groups"][0]["no_replica"], 10, "no replica said")
    check(len(runs(out)) == 4, "promoted with no replica alive: %s" % runs(out))
    evs = [e["reason"] for e in m.events() if e["type"] == "action"]
    check("group db: no replica alive" in evs, "events: %s" % evs)
    st = vigil_cli("status", "--api", api)
    check("no replica is alive" in st.stdout, "status: %s" % st.stdout)
    # A restart keeps the record; a replica's return is then promoted under epoch 4.
    m.proc.kill()
    m.proc.wait(5)
    m = Monitor(tmp, conf, port=m.port)
    g = m.get("/v1/groups")["groups"][0]
    check(g["primary"] == "db2" and g["epoch"] == 3, "after restart: %s" % g)
    ag["db3"] = agent(m.addr, "db3", tmp, interval="100ms", extra=["--set", "lag=1"])
    m.wait_state("db3", "alive", 15)
    wait_for(lambda: len(runs(out)) >= 5, 20, "the promotion after the restart")
    check(runs(out)[4] == "promote db3 4", "after restart: %s" % runs(out))
    epochs = [int(r.split()[2]) for r in runs(out) if r.startswith("promote")]
    check(epochs == sorted(set(epochs)), "one promotion per epoch: %s" % runs(out))


def test_restart(tmp):
    """restart: the command brings the node back; a command that does not escalates, once."""
    log = os.path.join(tmp, "restarts.txt")
    script = os.path.join(tmp, "restart.sh")
    # Starts the node's agent again, as `ssh HOST systemctl restart ...` would start its service.
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho \"$VIGIL_NODE $VIGIL_ATTEMPT\" >> %s\n"
                "[ \"$VIGIL_NODE\" = svc1 ] || exit 0\n"
                "setsid %s agent --id svc1 --monitor \"$MON\" --interval 100ms "
                ">/dev/null 2>&1 < /dev/null &\necho $! > %s/svc1.pid\n"
                % (log, os.path.abspath(vigil_harness.VIGIL), tmp))
    os.chmod(script, 0o755)
    rx = Receiver([], "")
    port = free_port()
    os.environ["MON"] = "127.0.0.1:%d" % port
    m = Monitor(tmp, CONF % ("flap_damping = { enabled = false; };",
                             """{ name = "restart"; kind = "restart"; command = [ "%s" ];
        restart_wait = "2s"; retry_delay = "300ms"; retries = 2; escalate = "page"; },
        { name = "page"; kind = "webhook"; url = "http://127.0.0.1:%d/";
          nodes = [ "nobody" ]; }""" % (script, rx.port)), port=port)
    try:
        a = agent(m.addr, "svc1", tmp, interval="100ms")
        b = agent(m.addr, "svc2", tmp, interval="100ms")
        m.wait_state("svc1", "alive", 10)
        m.wait_state("svc2", "alive", 10)
        a.kill()
        m.wait_state("svc1", "dead", 10)
        m.wait_state("svc1", "alive", 15)
        ok = wait_for(lambda: [r for r in m.get("/v1/actions")["recent"]
                               if r["node"] == "svc1" and r["outcome"] == "succeeded"], 10,
                      "the restart recorded")
        check("alive again" in ok[0]["detail"], "restart: %s" % ok[0])
        # svc2's restart command does nothing: three restarts, then one escalation.
        b.kill()
        m.wait_state("svc2", "dead", 10)
        wait_for(lambda: rx.got, 30, "the escalation")
        time.sleep(1)
        tries = [l for l in open(log).read().splitlines() if l.startswith("svc2")]
        check(tries == ["svc2 1", "svc2 2", "svc2 3"], "restarts: %s" % tries)
        check(len(rx.got) == 1, "escalations: %d" % len(rx.got))
        doc = json.loads(rx.got[0][1])
        check(doc["node"] == "svc2" and "gave up" in doc.get("escalated", ""), "doc: %s" % doc)
    finally:
        rx.close()
        pidf = os.path.join(tmp, "svc1.pid")
        if os.path.exists(pidf):
            try:
                os.kill(int(open(pidf).read()), signal.SIGKILL)
            except (OSError, ValueError):
                pass


def test_notifications_while_receivers_are_down(tmp):
    """Alertmanager down: resolutions wait in the background; a webhook of another node's death
    meanwhile is delivered, and nothing else waits for them."""
    rx = Receiver([], "")
    m = Monitor(tmp, CONF % ("flap_damping = { enabled = false; };", """
        { name = "pager"; kind = "alertmanager"; url = "http://127.0.0.1:1";
          retry_delay = "500ms"; },
        { name = "chat"; kind = "webhook"; url = "http://127.0.0.1:%d/"; on = [ "dead" ]; }"""
                             % rx.port))
    try:
        a = agent(m.addr, "n1", tmp, interval="100ms")
        b = agent(m.addr, "n2", tmp, interval="100ms")
        m.wait_state("n1", "alive", 10)
        m.wait_state("n2", "alive", 10)
        a.kill()
        m.wait_state("n1", "dead", 10)
        a = agent(m.addr, "n1", tmp, interval="100ms")
        m.wait_state("n1", "alive", 10)  # its resolution now retries against a closed port
        b.kill()
        m.wait_state("n2", "dead", 10)
        wait_for(lambda: [g for g in rx.got if json.loads(g[1])["node"] == "n2"], 10,
                 "n2's webhook")
        check(m.proc.poll() is None, "the monitor died")
        recent = m.get("/v1/actions")["recent"]
        check(any(r["action"] == "pager" and r["outcome"] == "retrying" for r in recent),
              "no resolution retried: %s" % recent[:6])
        check(m.get("/v1/actions")["pending"] == [], "work left behind the receivers")
    finally:
        rx.close()


def test_reload_actions_and_groups(tmp):
    """SIGHUP: a new list of actions applies once the running ones end, the events waiting
    carry over to it; groups are made anew with their epoch kept."""
    out = os.path.join(tmp, "runs.txt")
    script = os.path.join(tmp, "rec.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho \"$1 $VIGIL_NODE $VIGIL_NEW_STATE\" >> %s\n"
                "[ \"$VIGIL_NEW_STATE\" = dead ] && sleep \"$2\"\nexit 0\n" % out)
    os.chmod(script, 0o755)
    gscript = os.path.join(tmp, "group.sh")
    with open(gscript, "w") as f:
        f.write("#!/bin/sh\necho \"$VIGIL_ACTION $VIGIL_NODE $VIGIL_EPOCH\" >> %s/group.txt\n" % tmp)
    os.chmod(gscript, 0o755)

    def conf(action, members):
        return ("""
monitor: {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  heartbeat_interval = "100ms";
  detector = { type = "fixed"; suspect_after = "300ms"; dead_after = "600ms"; };
  flap_damping = { enabled = false; };
  actions = ( %s );
  groups = ( { name = "db"; nodes = [ %s ]; promote = [ "%s" ]; } );
};
""" % (action, ", ".join('"%s"' % n for n in members), gscript))

    m = Monitor(tmp, conf('{ name = "old"; command = [ "%s", "old", "3" ]; on = [ "dead", "alive" ]; }'
                          % script, ["db1", "db2"]))
    ag = {n: agent(m.addr, n, tmp, interval="100ms") for n in ("db1", "db2")}
    for n in ag:
        m.wait_state(n, "alive", 10)
    ag["db1"].kill()
    m.wait_state("db1", "dead", 10)
    wait_for(lambda: os.path.exists(os.path.join(tmp, "group.txt")), 10, "the promotion")
    check(open(os.path.join(tmp, "group.txt")).read().split() == ["promote", "db2", "2"],
          "promotion: %s" % open(os.path.join(tmp, "group.txt")).read())
    wait_for(lambda: runs(out)[-1:] == ["old db1 dead"], 5, "the old action running")
    n0 = len(runs(out))
    # While it runs (3 s), db1 comes back (its event waits behind it), and the new list arrives.
    ag["db1"] = agent(m.addr, "db1", tmp, interval="100ms")
    m.wait_state("db1", "alive", 10)
    with open(m.conf, "w") as f:
        f.write(conf('{ name = "new"; command = [ "%s", "new", "0" ]; on = [ "dead", "alive" ]; }'
                     % script, ["db1", "db2", "db3"]).replace("@PORT@", str(m.port))
                .replace("@API@", str(m.api_port)))
    m.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "the new list of 1 actions applies" in m.read_log(), 10, "the new list")
    log = m.read_log()
    check("once the running ones end" in log, "not deferred: %s" % log[-2000:])
    wait_for(lambda: len(runs(out)) > n0, 10, "db1's return under the new list")
    check(runs(out)[n0 - 1:] == ["old db1 dead", "new db1 alive"], "runs: %s" % runs(out))
    g = m.get("/v1/groups")["groups"][0]
    check(g["epoch"] == 2 and g["primary"] == "db2" and len(g["nodes"]) == 3,
          "group after the reload: %s" % g)
    check(m.proc.poll() is None, "the monitor died")

if __name__ == "__main__":
    run_tests([test_haproxy, test_haproxy_restarting, test_webhook_outbox,
               test_webhook_4xx_not_retried, test_alertmanager, test_undo_reverse_order,
               test_maintenance, test_flap_damping, test_failover_group, test_restart,
               test_notifications_while_receivers_are_down, test_reload_actions_and_groups])
