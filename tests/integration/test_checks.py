#!/usr/bin/env python3
"""Health checks (monitor.checks, agent.checks) against real servers on loopback.

- tcp: a listener up and closed; a send/expect server answering PONG, and
  one answering something else.
- http: answers 200 "ok" (with the configured header seen by the server),
  500, 429, too slowly, and 200 with the wrong body; the statuses in
  /v1/checks, /metrics and the check events.
- https with a self-signed certificate: refused by default, passing with
  tls_verify = false and with ca_file naming the certificate.
- exec: exit 0, 1 and 2, a command that hangs (TERM at the timeout; the
  process is gone afterwards), and one that ignores TERM (KILL 2 s later);
  no command is left once the monitor stops.
- rise and fall counted in runs (vigil_check_runs_total) against a service
  that is killed and started again.
- A poll_only node whose state its tcp check decides.
- A node with heartbeats and a check with critical_means_dead = true: dead
  while the check fails, alive again once it passes.
- An agent's own check: reported in the heartbeats, the node stays alive,
  and an exec action on the check runs its do and its undo; with
  critical_means_dead = true the node goes dead and comes back.
- Configuration mistakes named with FILE:LINE: and the reason.
- A critical_means_dead check already critical when the node's first
  heartbeat comes; an http check with the most headers allowed (16); a
  reload that removes the check holding a node dead.
"""
import http.server
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import vigil_harness
from vigil_harness import VIGIL, Monitor, agent, check, free_port, run_tests, start, stop

CONF = """
monitor: {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  insecure = true;
  heartbeat_interval = "100ms";
  detector = { type = "fixed"; suspect_after = "300ms"; dead_after = "600ms"; };
  flap_damping = { enabled = false; };
  %s
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


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def checks_of(m):
    """The monitor's checks by (node, check, source)."""
    return {(c["node"], c["check"], c["source"]): c for c in m.get("/v1/checks")["checks"]}


def wait_check(m, node, name, status, timeout, source="poll"):
    """Waits until the check has status; returns its object from /v1/checks."""
    last = {}

    def ok():
        c = checks_of(m).get((node, name, source))
        last["c"] = c
        return c if c and c["status"] == status else None

    try:
        return wait_for(ok, timeout, "%s/%s %s" % (node, name, status), step=0.03)
    except AssertionError as e:
        raise AssertionError("%s (is %s)\n%s" % (e, last.get("c"), m.read_log()[-2000:]))


def check_events(m, node=None, name=None):
    return [e for e in m.events() if e["type"] == "check" and (node is None or e["node"] == node)
            and (name is None or e["check"] == name)]


def metrics(m):
    url = "http://127.0.0.1:%d/metrics" % m.api_port
    with urllib.request.urlopen(url, timeout=15) as r:
        return r.read().decode()


def metric(text, name, **labels):
    """The value of one series (labels in any order), or None."""
    for line in text.splitlines():
        mt = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
        if not mt or mt.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', mt.group(2)))
        if got == {k: str(v) for k, v in labels.items()}:
            return float(mt.group(3))
    return None


# ---- servers ----

class TcpServer:
    """A TCP listener in a thread. reply None: accepts and closes; else reads a line, answers."""

    def __init__(self, port=0, reply=None):
        self.reply = reply
        self.got = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                if self.reply is not None:
                    c.settimeout(1.0)
                    data = b""
                    while b"\n" not in data and len(data) < 4096:
                        b = c.recv(4096)
                        if not b:
                            break
                        data += b
                    self.got.append(data)
                    c.sendall(self.reply)
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()


class Handler(http.server.BaseHTTPRequestHandler):
    """/ok: 200 "ok"; /err: 500; /busy: 429; /slow: 200 "ok" after 1 s; /wrong: 200 "nope"."""

    def do_GET(self):
        self.server.seen.append((self.path, dict(self.headers)))
        code, body = 200, b"ok"
        if self.path.startswith("/err"):
            code, body = 500, b"broken database"
        elif self.path.startswith("/busy"):
            code, body = 429, b"slow down"
        elif self.path.startswith("/wrong"):
            body = b"nope"
        elif self.path.startswith("/slow"):
            time.sleep(1.0)
        try:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the slow path)

    def log_message(self, *a):
        pass


class HttpServer:
    """An HTTP (or, with certfile, HTTPS) server in a thread."""

    def __init__(self, port=0, certfile=None):
        class Srv(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.srv = Srv(("127.0.0.1", port), Handler)
        self.srv.seen = []
        if certfile:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile)
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def seen(self):
        return self.srv.seen

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(5)


def server_process(port, kind):
    """A server in a child process of its own (so that it can be SIGKILLed): "tcp" accepts and
    closes, "http" answers 200 "ok" to every GET."""
    if kind == "tcp":
        code = ("import socket\n"
                "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                "s.bind(('127.0.0.1',%d));s.listen(64)\n"
                "while True:\n"
                "    c,_=s.accept();c.close()\n" % port)
    else:
        code = ("import http.server\n"
                "class H(http.server.BaseHTTPRequestHandler):\n"
                "    def do_GET(self):\n"
                "        self.send_response(200);self.send_header('Content-Length','2')\n"
                "        self.end_headers();self.wfile.write(b'ok')\n"
                "    def log_message(self,*a): pass\n"
                "http.server.ThreadingHTTPServer.allow_reuse_address=True\n"
                "http.server.ThreadingHTTPServer(('127.0.0.1',%d),H).serve_forever()\n" % port)
    p = subprocess.Popen(["python3", "-c", code], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    vigil_harness._procs.append(p)
    wait_for(lambda: _connects(port) or p.poll() is not None, 10, "server on %d" % port)
    check(p.poll() is None, "the server on %d exited" % port)
    return p


def pid_alive(pid):
    """True while pid is a process that has not ended (a zombie counts as ended)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def kill_listed(path):
    """SIGKILLs the processes whose pids the test's commands wrote to path (those left)."""
    try:
        pids = [int(p) for p in open(path).read().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


# ---- tests ----

def test_tcp(tmp):
    up = TcpServer()
    closed_port = free_port(socket.SOCK_STREAM)
    pong = TcpServer(reply=b"+PONG\r\n")
    junk = TcpServer(reply=b"-ERR unknown command\r\n")
    try:
        m = Monitor(tmp, CONF % """checks = (
          { node = "db1"; name = "up"; type = "tcp"; target = "127.0.0.1:%d";
            interval = "200ms"; timeout = "150ms"; },
          { node = "db1"; name = "closed"; type = "tcp"; target = "127.0.0.1:%d";
            interval = "200ms"; timeout = "150ms"; },
          { node = "db1"; name = "pong"; type = "tcp"; target = "127.0.0.1:%d";
            send = "PING\\r\\n"; expect = "PONG"; interval = "200ms"; timeout = "150ms"; },
          { node = "db1"; name = "junk"; type = "tcp"; target = "127.0.0.1:%d";
            send = "PING\\r\\n"; expect = "PONG"; interval = "200ms"; timeout = "150ms"; }
        );""" % (up.port, closed_port, pong.port, junk.port))
        c = wait_check(m, "db1", "up", "passing", 10)
        check(c["type"] == "tcp" and c["source"] == "poll", "up: %s" % c)
        c = wait_check(m, "db1", "closed", "critical", 10)
        check("refused" in c["last"]["detail"], "closed: %s" % c)
        c = wait_check(m, "db1", "pong", "passing", 10)
        check("PONG" in c["last"]["detail"], "pong: %s" % c)
        check(any(g.startswith(b"PING\r\n") for g in pong.got), "sent: %r" % pong.got)
        c = wait_check(m, "db1", "junk", "critical", 10)
        check("ERR unknown command" in c["last"]["detail"] and "PONG" in c["last"]["detail"],
              "junk: %s" % c)
        evs = {e["check"]: e for e in check_events(m, "db1")}
        for name, st in (("up", "passing"), ("closed", "critical"), ("pong", "passing"),
                         ("junk", "critical")):
            e = evs.get(name)
            check(e and e["old_status"] == "unknown" and e["new_status"] == st
                  and e["reason"] == "polled", "event of %s: %s" % (name, e))
        check("refused" in evs["closed"]["evidence"]["detail"], "evidence: %s" % evs["closed"])
        # The listener goes away: connections are refused, the check turns critical.
        up.close()
        c = wait_check(m, "db1", "up", "critical", 10)
        check("refused" in c["last"]["detail"], "up after close: %s" % c)
        check(m.proc.poll() is None, "the monitor died")
    finally:
        for s in (up, pong, junk):
            if s.running:
                s.close()


def test_http(tmp):
    srv = HttpServer()
    base = "http://127.0.0.1:%d" % srv.port
    try:
        m = Monitor(tmp, CONF % """checks = (
          { node = "web1"; name = "ok"; type = "http"; url = "%s/ok"; status = [ 200 ];
            body = "ok"; method = "GET"; headers = [ "X-A: b" ]; interval = "300ms";
            timeout = "200ms"; critical_means_dead = false; },
          { node = "web1"; name = "err"; type = "http"; url = "%s/err";
            interval = "300ms"; timeout = "200ms"; },
          { node = "web1"; name = "busy"; type = "http"; url = "%s/busy";
            interval = "300ms"; timeout = "200ms"; },
          { node = "web1"; name = "slow"; type = "http"; url = "%s/slow";
            interval = "300ms"; timeout = "200ms"; },
          { node = "web1"; name = "wrong"; type = "http"; url = "%s/wrong"; body = "ok";
            interval = "300ms"; timeout = "200ms"; }
        );""" % ((base,) * 5))
        c = wait_check(m, "web1", "ok", "passing", 10)
        check(c["type"] == "http" and c["last"]["code"] == 200
              and c["critical_means_dead"] is False, "ok: %s" % c)
        seen = [h for p, h in srv.seen if p == "/ok"]
        check(seen and seen[0].get("X-A") == "b", "header not sent: %s" % seen[:1])
        c = wait_check(m, "web1", "err", "critical", 10)
        check(c["last"]["code"] == 500 and "500" in c["last"]["detail"], "err: %s" % c)
        c = wait_check(m, "web1", "busy", "warning", 10)
        check(c["last"]["code"] == 429, "busy: %s" % c)
        c = wait_check(m, "web1", "slow", "critical", 10)
        check("timed out" in c["last"]["detail"].lower() and c["last"]["latency_s"] < 0.9,
              "slow: %s" % c)
        c = wait_check(m, "web1", "wrong", "critical", 10)
        check(c["last"]["code"] == 200 and "nope" in c["last"]["detail"], "wrong: %s" % c)
        evs = {e["check"]: e for e in check_events(m, "web1")}
        for name, st, code in (("ok", "passing", 200), ("err", "critical", 500),
                               ("busy", "warning", 429), ("wrong", "critical", 200)):
            e = evs.get(name)
            check(e and (e["old_status"], e["new_status"], e["reason"]) ==
                  ("unknown", st, "polled") and e["evidence"]["code"] == code,
                  "event of %s: %s" % (name, e))
        check("timed out" in evs["slow"]["evidence"]["detail"].lower(), "slow: %s" % evs["slow"])
        text = metrics(m)
        for name, val in (("ok", 1), ("err", 3), ("busy", 2), ("slow", 3), ("wrong", 3)):
            got = metric(text, "vigil_check_status", node="web1", check=name, source="poll")
            check(got == val, "vigil_check_status of %s: %s" % (name, got))
        check(metric(text, "vigil_check_runs_total", node="web1", check="ok",
                     result="passing") >= 1, "runs of ok")
        check(metric(text, "vigil_check_latency_seconds", node="web1", check="ok",
                     source="poll") is not None, "latency of ok")
        check(m.proc.poll() is None, "the monitor died")
    finally:
        srv.close()


def test_https(tmp):
    cert = os.path.join(tmp, "cert.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-days", "2", "-keyout", cert, "-out", cert + ".crt"],
                       capture_output=True, timeout=60)
    check(r.returncode == 0, "openssl: %s" % r.stderr.decode(errors="replace"))
    with open(cert, "a") as f:  # key and certificate in one file for the server
        f.write(open(cert + ".crt").read())
    srv = HttpServer(certfile=cert)
    url = "https://127.0.0.1:%d/ok" % srv.port
    try:
        m = Monitor(tmp, CONF % """checks = (
          { node = "web1"; name = "tls"; type = "https"; url = "%s";
            interval = "300ms"; timeout = "250ms"; },
          { node = "web1"; name = "noverify"; type = "https"; url = "%s"; tls_verify = false;
            interval = "300ms"; timeout = "250ms"; },
          { node = "web1"; name = "ca"; type = "https"; url = "%s"; ca_file = "%s";
            interval = "300ms"; timeout = "250ms"; }
        );""" % (url, url, url, cert + ".crt"))
        c = wait_check(m, "web1", "tls", "critical", 10)
        check("certificate" in c["last"]["detail"].lower(), "tls: %s" % c)
        c = wait_check(m, "web1", "noverify", "passing", 10)
        check(c["last"]["code"] == 200, "noverify: %s" % c)
        c = wait_check(m, "web1", "ca", "passing", 10)
        check(c["last"]["code"] == 200, "ca: %s" % c)
        # The default stays critical: not a first failure that later passes.
        time.sleep(0.7)
        c = checks_of(m)[("web1", "tls", "poll")]
        check(c["status"] == "critical" and c["changes"] == 1, "tls later: %s" % c)
    finally:
        srv.close()


def test_exec(tmp):
    pids = os.path.join(tmp, "pids")
    m = Monitor(tmp, CONF % """checks = (
      { node = "app1"; name = "zero"; type = "exec"; command = [ "sh", "-c", "echo all good" ];
        interval = "300ms"; timeout = "250ms"; },
      { node = "app1"; name = "one"; type = "exec";
        command = [ "sh", "-c", "echo degraded; exit 1" ];
        interval = "300ms"; timeout = "250ms"; },
      { node = "app1"; name = "two"; type = "exec"; command = [ "sh", "-c", "exit 2" ];
        interval = "300ms"; timeout = "250ms"; },
      { node = "app1"; name = "hang"; type = "exec";
        command = [ "sh", "-c", "echo $$ >> %s; exec sleep 60" ];
        interval = "2s"; timeout = "300ms"; }
    );""" % pids)
    try:
        c = wait_check(m, "app1", "zero", "passing", 10)
        check(c["type"] == "exec" and c["last"]["code"] == 0 and c["last"]["detail"] == "all good",
              "zero: %s" % c)
        c = wait_check(m, "app1", "one", "warning", 10)
        check(c["last"]["code"] == 1 and "degraded" in c["last"]["detail"], "one: %s" % c)
        c = wait_check(m, "app1", "two", "critical", 10)
        check(c["last"]["code"] == 2, "two: %s" % c)
        c = wait_check(m, "app1", "hang", "critical", 10)
        check("timed out" in c["last"]["detail"] and 0.25 < c["last"]["latency_s"] < 2.0,
              "hang: %s" % c)
        first = int(open(pids).read().split()[0])
        wait_for(lambda: not pid_alive(first), 5, "the hung command (pid %d) gone" % first)
        e = [e for e in check_events(m, "app1", "hang")]
        check(e and e[0]["new_status"] == "critical" and "timed out" in e[0]["evidence"]["detail"],
              "hang events: %s" % e)
        stop_and_none_left(m, pids)
    finally:
        kill_listed(pids)


def stop_and_none_left(m, pids):
    """The monitor stopping (SIGTERM) ends a run in flight too: no command is left behind."""
    code = stop(m.proc)
    check(code == 0, "monitor exit %s" % code)
    listed = [int(p) for p in open(pids).read().split()]
    try:
        wait_for(lambda: not [p for p in listed if pid_alive(p)], 5, "the commands gone")
    except AssertionError:
        raise AssertionError("commands left after the monitor stopped: %s of %s"
                             % ([p for p in listed if pid_alive(p)], listed))


def test_rise_fall_counted(tmp):
    port = free_port(socket.SOCK_STREAM)
    svc = server_process(port, "tcp")
    m = Monitor(tmp, CONF % """checks = (
      { node = "db1"; name = "svc"; type = "tcp"; target = "127.0.0.1:%d";
        interval = "100ms"; timeout = "80ms"; rise = 2; fall = 3; }
    );""" % port)
    wait_check(m, "db1", "svc", "passing", 10)

    def sample():
        t = metrics(m)
        lab = dict(node="db1", check="svc")
        return (metric(t, "vigil_check_status", source="poll", **lab),
                metric(t, "vigil_check_runs_total", result="passing", **lab),
                metric(t, "vigil_check_runs_total", result="critical", **lab))

    st, p0, c0 = sample()
    check(st == 1 and c0 == 0, "before the kill: %s" % ((st, p0, c0),))
    svc.kill()
    svc.wait(5)
    samples = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15:
        samples.append(sample())
        if samples[-1][0] == 3:
            break
        time.sleep(0.01)
    check(samples[-1][0] == 3, "not critical within 15 s: %s" % samples[-5:])
    # While still passing, at most fall - 1 critical results; the change after the third.
    for st, p, c in samples[:-1]:
        check(st == 1 and c - c0 <= 2, "passing with %d critical results: %s" % (c - c0, samples))
    check(samples[-1][2] - c0 >= 3, "critical after %d critical results" % (samples[-1][2] - c0))
    down = samples[-1]
    # Back: rise = 2 passing results in a row (counted from before the service starts).
    p1 = sample()[1]
    svc = server_process(port, "tcp")
    samples = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15:
        samples.append(sample())
        if samples[-1][0] == 1:
            break
        time.sleep(0.01)
    check(samples[-1][0] == 1, "not passing within 15 s: %s" % samples[-5:])
    for st, p, c in samples[:-1]:
        check(st == 3 and p - p1 <= 1, "critical with %d passing results: %s" % (p - p1, samples))
    check(samples[-1][1] - p1 >= 2, "passing after %d passing results" % (samples[-1][1] - p1))
    evs = [(e["old_status"], e["new_status"]) for e in check_events(m, "db1", "svc")]
    check(evs == [("unknown", "passing"), ("passing", "critical"), ("critical", "passing")],
          "events: %s" % evs)
    print("rise/fall: critical after %d critical runs, passing again after %d passing runs"
          % (down[2] - c0, samples[-1][1] - p1), flush=True)


def test_poll_only_node(tmp):
    port = free_port(socket.SOCK_STREAM)
    m = Monitor(tmp, CONF % """poll_only = [ "db1" ];
    checks = (
      { node = "db1"; name = "pg"; type = "tcp"; target = "127.0.0.1:%d";
        interval = "200ms"; timeout = "100ms"; rise = 2; fall = 2; fastinter = "50ms";
        downinter = "300ms"; }
    );""" % port)
    check(m.state("db1") in ("unknown", "dead"), "db1 at the start: %s" % m.state("db1"))
    m.wait_state("db1", "dead", 10)
    n = m.get("/v1/nodes/db1")
    check(n["polled"] is True and n["heartbeats"] == 0, "db1: polled %s heartbeats %s"
          % (n.get("polled"), n.get("heartbeats")))
    check([c["check"] for c in n["checks"]] == ["pg"] and n["checks"][0]["status"] == "critical"
          and n["checks"][0]["critical_means_dead"] is True, "db1's checks: %s" % n["checks"])
    srv = TcpServer(port)
    try:
        m.wait_state("db1", "alive", 10)
        time.sleep(0.5)
        check(m.state("db1") == "alive", "db1 did not stay alive: %s" % m.state("db1"))
    finally:
        srv.close()
    m.wait_state("db1", "dead", 10)
    states = [e for e in m.events() if e["type"] == "state" and e["node"] == "db1"]
    check([e["new_state"] for e in states] == ["dead", "alive", "dead"],
          "db1's states: %s" % [(e["new_state"], e["reason"]) for e in states])
    check(all(e["reason"].startswith("check") for e in states),
          "reasons: %s" % [e["reason"] for e in states])
    check(states[0]["reason"] == "check pg critical" and states[2]["reason"] == "check pg critical",
          "reasons: %s" % [e["reason"] for e in states])
    # A check's event comes before the node's event it causes.
    cev = check_events(m, "db1", "pg")
    check(len(cev) == 3 and all(c["seq"] < s["seq"] for c, s in zip(cev, states)),
          "order: %s / %s" % ([c["seq"] for c in cev], [s["seq"] for s in states]))


def test_heartbeats_and_critical_check(tmp):
    srv = HttpServer()
    port = srv.port
    m = Monitor(tmp, CONF % """checks = (
      { node = "web1"; name = "http"; type = "http"; url = "http://127.0.0.1:%d/ok";
        interval = "200ms"; timeout = "150ms"; rise = 2; fall = 2; critical_means_dead = true; }
    );""" % port)
    a = agent(m.addr, "web1", tmp, interval="100ms")
    try:
        m.wait_state("web1", "alive", 10)
        wait_check(m, "web1", "http", "passing", 10)
        check(m.state("web1") == "alive", "web1: %s" % m.state("web1"))
        srv.close()
        m.wait_state("web1", "dead", 10)
        hb0 = m.get("/v1/nodes/web1")["heartbeats"]
        dead = [e for e in m.events() if e["type"] == "state" and e["node"] == "web1"][-1]
        check(dead["new_state"] == "dead" and dead["reason"] == "check http critical",
              "the death: %s" % dead)
        # The agent goes on sending: the node stays dead while the check fails.
        time.sleep(0.8)
        n = m.get("/v1/nodes/web1")
        check(a.poll() is None and n["heartbeats"] > hb0,
              "heartbeats %d -> %d" % (hb0, n["heartbeats"]))
        check(n["state"] == "dead", "web1 while the check fails: %s" % n["state"])
        srv = HttpServer(port)
        m.wait_state("web1", "alive", 10)
        back = [e for e in m.events() if e["type"] == "state" and e["node"] == "web1"][-1]
        check(back["new_state"] == "alive" and back["reason"].startswith("check"),
              "the return: %s" % back)
        c = checks_of(m)[("web1", "http", "poll")]
        check(c["status"] == "passing", "check: %s" % c)
    finally:
        srv.close()


def test_agent_check_and_action(tmp):
    sport = free_port(socket.SOCK_STREAM)
    svc = server_process(sport, "http")
    runs = os.path.join(tmp, "runs.txt")
    script = os.path.join(tmp, "svc.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nenv > %s/env.$VIGIL_ACTION\n"
                "echo \"$VIGIL_ACTION $VIGIL_CHECK $VIGIL_NODE\" >> %s\n" % (tmp, runs))
    os.chmod(script, 0o755)
    m = Monitor(tmp, CONF % """actions = ( { kind = "exec"; name = "svc"; command = [ "%s" ];
        checks = [ "http" ]; on = [ "critical" ]; undo = true; } );""" % script)
    aconf = os.path.join(tmp, "agent.conf")
    with open(aconf, "w") as f:
        f.write("""agent: {
  id = "web1";
  monitors = [ "%s" ];
  interval = "200ms";
  checks = ( { name = "http"; type = "http"; url = "http://127.0.0.1:%d/health";
               interval = "100ms"; timeout = "80ms"; rise = 2; fall = 1; } );
};
""" % (m.addr, sport))
    a = start(["agent", "-c", aconf], os.path.join(tmp, "agent.log"))
    m.wait_state("web1", "alive", 10)
    c = wait_check(m, "web1", "http", "passing", 10, source="agent")
    check(c["type"] == "agent" and c["critical_means_dead"] is False and c["last"]["code"] == 200,
          "agent check: %s" % c)
    svc.kill()
    t_kill = time.monotonic()
    svc.wait(5)
    c = wait_check(m, "web1", "http", "critical", 10, source="agent")
    took = time.monotonic() - t_kill
    print("agent check: critical at the monitor %.3fs after the kill" % took, flush=True)
    check(took < 1.0, "the agent's check took %.3fs to reach the monitor" % took)
    check("refused" in c["last"]["detail"], "agent check: %s" % c)
    check(m.state("web1") == "alive", "web1 with its check critical: %s" % m.state("web1"))
    check(metric(metrics(m), "vigil_check_status", node="web1", check="http", source="agent") == 3,
          "metrics of the agent check")
    wait_for(lambda: os.path.exists(runs) and open(runs).read().split("\n")[0], 10, "the do")
    svc = server_process(sport, "http")
    wait_check(m, "web1", "http", "passing", 10, source="agent")
    wait_for(lambda: len(open(runs).read().splitlines()) >= 2, 10, "the undo")
    time.sleep(0.5)
    lines = open(runs).read().splitlines()
    check(lines == ["do http web1", "undo http web1"], "runs: %s" % lines)
    env = dict(l.split("=", 1) for l in open(os.path.join(tmp, "env.do")).read().splitlines()
               if "=" in l)
    check(env.get("VIGIL_CHECK") == "http" and env.get("VIGIL_ACTION") == "do"
          and env.get("VIGIL_EVENT_TYPE") == "check", "do's environment: %s" %
          {k: v for k, v in env.items() if k.startswith("VIGIL_")})
    states = [e["new_state"] for e in m.events() if e["type"] == "state" and e["node"] == "web1"]
    check(states == ["alive"], "web1's states: %s" % states)
    evs = [(e["old_status"], e["new_status"], e["reason"]) for e in check_events(m, "web1", "http")]
    check(evs == [("unknown", "passing", "agent"), ("passing", "critical", "agent"),
                  ("critical", "passing", "agent")], "check events: %s" % evs)
    check(a.poll() is None and m.proc.poll() is None, "a process died")


def test_exec_ignoring_term(tmp):
    """A command that ignores SIGTERM at its timeout gets SIGKILL 2 s later."""
    pids = os.path.join(tmp, "pids")
    m = Monitor(tmp, CONF % """checks = (
      { node = "app1"; name = "stubborn"; type = "exec";
        command = [ "sh", "-c", "trap '' TERM; echo $$ >> %s; while :; do sleep 0.1; done" ];
        interval = "500ms"; timeout = "300ms"; }
    );""" % pids)
    try:
        c = wait_check(m, "app1", "stubborn", "critical", 15)
        check(c["last"]["detail"] == "timed out after 300 ms (killed)" and c["last"]["code"] == 137
              and 2.0 < c["last"]["latency_s"] < 4.0, "stubborn: %s" % c)
        first = int(open(pids).read().split()[0])
        wait_for(lambda: not pid_alive(first), 5, "the stubborn command (pid %d) gone" % first)
        stop_and_none_left(m, pids)
    finally:
        kill_listed(pids)


def test_agent_check_critical_means_dead(tmp):
    """An agent's check with critical_means_dead = true ("!" in its pair) makes its node dead."""
    sport = free_port(socket.SOCK_STREAM)
    svc = server_process(sport, "http")
    m = Monitor(tmp, CONF % "")
    aconf = os.path.join(tmp, "agent.conf")
    with open(aconf, "w") as f:
        f.write("""agent: {
  id = "web1";
  monitors = [ "%s" ];
  interval = "100ms";
  checks = ( { name = "http"; type = "http"; url = "http://127.0.0.1:%d/health";
               interval = "100ms"; timeout = "80ms"; rise = 2; fall = 1;
               critical_means_dead = true; } );
};
""" % (m.addr, sport))
    a = start(["agent", "-c", aconf], os.path.join(tmp, "agent.log"))
    m.wait_state("web1", "alive", 10)
    c = wait_check(m, "web1", "http", "passing", 10, source="agent")
    check(c["critical_means_dead"] is True, "agent check: %s" % c)
    svc.kill()
    svc.wait(5)
    m.wait_state("web1", "dead", 10)
    svc = server_process(sport, "http")
    m.wait_state("web1", "alive", 10)
    states = [(e["new_state"], e["reason"]) for e in m.events()
              if e["type"] == "state" and e["node"] == "web1"]
    check(states == [("alive", "first heartbeat"), ("dead", "check http critical"),
                     ("alive", "checks passing")], "web1's states: %s" % states)
    check(a.poll() is None, "the agent died")


def test_critical_before_first_heartbeat(tmp):
    """A check with critical_means_dead = true that is critical before the node's first
    heartbeat: the node is not alive once its heartbeats come (the check still fails)."""
    port = free_port(socket.SOCK_STREAM)
    m = Monitor(tmp, CONF % """checks = (
      { node = "web1"; name = "http"; type = "http"; url = "http://127.0.0.1:%d/ok";
        interval = "200ms"; timeout = "150ms"; rise = 2; fall = 2; critical_means_dead = true; }
    );""" % port)
    wait_check(m, "web1", "http", "critical", 10)
    agent(m.addr, "web1", tmp, interval="100ms")
    wait_for(lambda: m.state("web1") is not None, 10, "web1's first heartbeat")
    time.sleep(1.0)
    states = [(e["new_state"], e["reason"]) for e in m.events()
              if e["type"] == "state" and e["node"] == "web1"]
    st = m.state("web1")
    check(st == "dead", "web1 is %s with its critical_means_dead check critical (states: %s, "
          "check: %s)" % (st, states, checks_of(m).get(("web1", "http", "poll"))))


def test_http_most_headers(tmp):
    """An http check with as many headers as the configuration accepts (16) sends them all."""
    srv = HttpServer()
    hs = ", ".join('"X-H%d: v%d"' % (i, i) for i in range(16))
    try:
        m = Monitor(tmp, CONF % """checks = (
          { node = "web1"; name = "ok"; type = "http"; url = "http://127.0.0.1:%d/ok";
            headers = [ %s ]; interval = "300ms"; timeout = "200ms"; }
        );""" % (srv.port, hs))
        try:
            wait_check(m, "web1", "ok", "passing", 10)
        except (AssertionError, OSError) as e:
            try:
                code = m.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
            raise AssertionError("no passing check with 16 headers; the monitor's exit status: %s "
                                 "(-11: SIGSEGV): %s" % (code, e))
        h = [h for p, h in srv.seen if p == "/ok"][0]
        check(all(h.get("X-H%d" % i) == "v%d" % i for i in range(16)), "headers: %s" % h)
    finally:
        srv.close()


def test_reload_removes_check(tmp):
    """A node held dead by a check: once a reload removes the check, its heartbeats (which
    never stopped) make it alive again."""
    srv = HttpServer()
    chk = """checks = (
      { node = "web1"; name = "http"; type = "http"; url = "http://127.0.0.1:%d/ok";
        interval = "200ms"; timeout = "150ms"; fall = 2; critical_means_dead = true; }
    );""" % srv.port
    m = Monitor(tmp, CONF % chk)
    a = agent(m.addr, "web1", tmp, interval="100ms")
    m.wait_state("web1", "alive", 10)
    wait_check(m, "web1", "http", "passing", 10)
    srv.close()
    m.wait_state("web1", "dead", 10)
    with open(m.conf, "w") as f:
        f.write((CONF % "").replace("@PORT@", str(m.port)).replace("@API@", str(m.api_port)))
    m.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: not checks_of(m), 10, "the check removed by the reload")
    try:
        m.wait_state("web1", "alive", 3)
    except AssertionError:
        states = [(e["new_state"], e["reason"]) for e in m.events()
                  if e["type"] == "state" and e["node"] == "web1"]
        raise AssertionError("web1 still %s 3 s after its only check was removed, with heartbeats "
                             "all along (agent running: %s; states: %s)"
                             % (m.state("web1"), a.poll() is None, states))


CHECK_CASES = [
    # (name, text, line of the mistake, words the message must contain)
    ("unknown type",
     'monitor = {\n  checks = (\n    { node = "db1"; name = "pg";\n      type = "ftp"; }\n'
     '  );\n};\n',
     4, "\"ftp\" is not a check type"),
    ("tcp with url",
     'monitor = {\n  checks = (\n    { node = "db1"; name = "pg"; type = "tcp";\n'
     '      target = "127.0.0.1:5432";\n      url = "http://127.0.0.1/"; }\n  );\n};\n',
     5, "checks[0].url is not a setting of tcp checks"),
    ("no node",
     'monitor = {\n  rise = 2;\n  checks = (\n    { name = "pg"; type = "tcp";\n'
     '      target = "127.0.0.1:5432"; }\n  );\n};\n',
     4, "has no node"),
    ("tcp target by name",
     'monitor = {\n  checks = (\n    { node = "db1"; name = "pg"; type = "tcp";\n'
     '      interval = "1s";\n      target = "db1.example:5432"; }\n'
     '  );\n};\n',
     5, "must be a numeric address and port"),
    ("duplicate name",
     'monitor = {\n  checks = (\n    { node = "db1"; name = "pg"; type = "tcp";\n'
     '      target = "127.0.0.1:5432"; },\n    { node = "db2"; name = "pg"; type = "tcp";\n'
     '      target = "127.0.0.1:5433"; },\n    { node = "db1";\n      name = "pg"; type = "tcp";\n'
     '      target = "127.0.0.1:5434"; }\n  );\n};\n',
     8, "\"pg\" names another check of this node already"),
]


def test_config_errors(tmp):
    for i, (what, text, line, words) in enumerate(CHECK_CASES):
        path = os.path.join(tmp, "bad%d.conf" % i)
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([VIGIL, "monitor", "--check", "-c", path], capture_output=True,
                           timeout=20)
        err = r.stderr.decode(errors="replace")
        check(r.returncode == 2, "%s: exit %d, stderr %r" % (what, r.returncode, err))
        check("%s:%d:" % (path, line) in err, "%s: %s:%d not named: %r" % (what, path, line, err))
        check(words in err, "%s: %r not in %r" % (what, words, err))
    # The same checks, right: accepted.
    good = os.path.join(tmp, "good.conf")
    with open(good, "w") as f:
        f.write('monitor = {\n  poll_only = [ "db1" ];\n  checks = (\n'
                '    { node = "db1"; name = "pg"; type = "tcp"; target = "127.0.0.1:5432";\n'
                '      send = "PING\\r\\n"; expect = "PONG";\n'
                '      interval = "200ms"; timeout = "100ms";\n'
                '      rise = 2; fall = 2; fastinter = "50ms"; downinter = "1s"; },\n'
                '    { node = "db2"; name = "pg"; type = "tcp"; target = "127.0.0.1:5433"; }\n'
                '  );\n};\n')
    r = subprocess.run([VIGIL, "monitor", "--check", "-c", good], capture_output=True, timeout=20)
    check(r.returncode == 0, "good file: exit %d %r" % (r.returncode, r.stderr))
    # An agent's check names no node: the agent checks its own host.
    path = os.path.join(tmp, "agent.conf")
    with open(path, "w") as f:
        f.write('agent = {\n  id = "a";\n  monitors = [ "127.0.0.1:9" ];\n  checks = (\n'
                '    { name = "http"; type = "http"; url = "http://127.0.0.1:1/";\n'
                '      node = "b"; }\n  );\n};\n')
    r = subprocess.run([VIGIL, "agent", "-c", path], capture_output=True, timeout=20)
    err = r.stderr.decode(errors="replace")
    check(r.returncode == 2 and "%s:6:" % path in err and "not an agent setting" in err,
          "agent: exit %d %r" % (r.returncode, err))


if __name__ == "__main__":
    run_tests([test_tcp, test_http, test_https, test_exec, test_exec_ignoring_term,
               test_rise_fall_counted, test_poll_only_node, test_heartbeats_and_critical_check,
               test_agent_check_and_action, test_agent_check_critical_means_dead,
               test_config_errors, test_critical_before_first_heartbeat, test_http_most_headers,
               test_reload_removes_check])
