#!/usr/bin/env python3
"""The demo: HAProxy in front of three web servers, each watched by a vigil agent.

A monitor on the embedded defaults (phi accrual, 1 s heartbeats) has one
action: take a dead node's server out of HAProxy (maint, through HAProxy's
runtime API) and put it back when the node returns. A load generator sends
requests through HAProxy all along. The demo kills web2 (the server and its
agent), then prints the detection time, the time until HAProxy stopped
routing to it and the number of failed requests, checks that no request
failed after the action, brings web2 back and checks that it serves again.

    scripts/demo.py VIGIL      VIGIL: the program (build/vigil)

Everything listens on 127.0.0.1, on free ports; everything started is
stopped by pid at the end (Ctrl-C included), and the temporary directory is
removed (VIGIL_DEMO_KEEP=1 keeps it, with the logs). Exit status 0 when
every check passed.
"""
import calendar
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

VIGIL = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/vigil")
DIR = tempfile.mkdtemp(prefix="vigil-demo.")
procs = []


def say(text):
    print("\n\033[1m== %s\033[0m" % text, flush=True)


def free_port():
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
    raise SystemExit("demo: no free port on 127.0.0.1")


def start(args, log):
    p = subprocess.Popen(args, stdout=open(os.path.join(DIR, log), "ab"),
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(p)
    return p


def wait_for(cond, timeout, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise SystemExit("demo: %s did not happen within %d s" % (what, timeout))


def connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


SERVER = """
import http.server, sys
name = sys.argv[1].encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
"""


def web_server(name, port):
    p = start([sys.executable, "-c", SERVER, name, str(port)], "server-%s.log" % name)
    wait_for(lambda: connects(port), 10, "server %s" % name)
    return p


def haproxy(cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(os.path.join(DIR, "haproxy.sock"))
    s.sendall(cmd.encode() + b"\n")
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out.decode()


def admin_state(srv):
    for line in haproxy("show servers state web").splitlines():
        f = line.split()
        if len(f) > 6 and not line.startswith("#") and f[3] == srv:
            return int(f[6])
    return None


class Load(threading.Thread):
    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.results, self.stop = url, [], False

    def run(self):
        while not self.stop:
            t = time.time()
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    self.results.append((t, r.read().decode()))
            except (urllib.error.URLError, OSError):
                self.results.append((t, None))
            time.sleep(0.01)


def api(path):
    with urllib.request.urlopen("http://%s%s" % (API, path), timeout=10) as r:
        return json.loads(r.read())


def vigil(*args):
    return subprocess.run([VIGIL] + list(args) + ["--api", API], capture_output=True, text=True,
                          timeout=30).stdout


def iso_s(t):
    base, frac = t.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + frac)


def state(node):
    try:
        return api("/v1/nodes/" + node)["state"]
    except (urllib.error.URLError, OSError):
        return None


def main():
    global API
    if not os.access(VIGIL, os.X_OK):
        raise SystemExit("demo: no vigil program at %s (make build)" % VIGIL)
    exe = shutil.which("haproxy")
    if not exe:
        raise SystemExit("demo: haproxy not found: scripts/install-deps.sh installs it")
    udp, api_port, front = free_port(), free_port(), free_port()
    API = "127.0.0.1:%d" % api_port
    ports = {n: free_port() for n in ("web1", "web2", "web3")}

    say("keys: a master key for the monitor, a node key for each agent")
    subprocess.run([VIGIL, "keygen", "-o", os.path.join(DIR, "master.key")], check=True)
    for n in ports:
        subprocess.run([VIGIL, "keygen", "--node", n, "--master", os.path.join(DIR, "master.key"),
                        "-o", os.path.join(DIR, n + ".key")], check=True)

    say("three web servers, and HAProxy in front of them on 127.0.0.1:%d" % front)
    servers = {n: web_server(n, p) for n, p in ports.items()}
    with open(os.path.join(DIR, "haproxy.cfg"), "w") as f:
        f.write("global\n    stats socket %s/haproxy.sock mode 600 level admin\n"
                "defaults\n    mode http\n    timeout connect 500ms\n    timeout client 5s\n"
                "    timeout server 5s\n    retries 0\n"
                "frontend fe\n    bind 127.0.0.1:%d\n    default_backend web\n"
                "backend web\n    balance roundrobin\n" % (DIR, front))
        for n, p in sorted(ports.items()):
            f.write("    server %s 127.0.0.1:%d\n" % (n, p))
    start([exe, "-db", "-f", os.path.join(DIR, "haproxy.cfg")], "haproxy.log")
    wait_for(lambda: connects(front), 10, "HAProxy")

    say("a monitor with one action: a dead node's server goes into maint, and back on return")
    conf = """monitor: {
  listen = [ "127.0.0.1:%d" ];
  api = "127.0.0.1:%d";
  key_file = "master.key";
  actions = ( {
    name = "lb";
    kind = "haproxy";
    socket = "%s/haproxy.sock";
    servers = [ "web/%%n" ];
  } );
};
""" % (udp, api_port, DIR)
    with open(os.path.join(DIR, "vigil.conf"), "w") as f:
        f.write(conf)
    print(conf)
    start([VIGIL, "monitor", "-c", os.path.join(DIR, "vigil.conf")], "monitor.log")
    wait_for(lambda: state("none") is None and connects(api_port), 10, "the monitor's API")
    agents = {}
    for n in ports:
        agents[n] = start([VIGIL, "agent", "--id", n, "--monitor", "127.0.0.1:%d" % udp,
                           "--key-file", os.path.join(DIR, n + ".key"), "--set", "role=web"],
                          "agent-%s.log" % n)
    for n in ports:
        wait_for(lambda: state(n) == "alive", 15, "%s alive" % n)
    load = Load("http://127.0.0.1:%d/" % front)
    load.start()
    time.sleep(3)  # the detector learns a few intervals
    print(vigil("status"))

    say("killing web2: the server and its agent (SIGKILL), while requests keep coming")
    t_kill = time.time()
    servers["web2"].kill()
    agents["web2"].kill()
    wait_for(lambda: state("web2") == "dead", 60, "web2 dead")
    wait_for(lambda: admin_state("web2") == 1, 30, "web2 in maint")
    dead = [e for e in api("/v1/events?limit=1000")["events"]
            if e["type"] == "state" and e["node"] == "web2" and e["new_state"] == "dead"][-1]
    done = [r for r in api("/v1/actions")["recent"]
            if r["node"] == "web2" and r["outcome"] == "succeeded"][0]
    t_dead, t_out = dead["time_us"] / 1e6, iso_s(done["time"])
    time.sleep(3)
    wait_for(lambda: sum(1 for r in load.results if r[0] > t_out + 0.01) >= 50, 30,
             "50 requests after the action")
    since = [r for r in load.results if r[0] >= t_kill]
    failed = [r for r in since if r[1] is None]
    after = [r for r in load.results if r[0] > t_out + 0.01]
    print("detection:                 %.2f s after the kill" % (t_dead - t_kill))
    print("out of HAProxy:            %.2f s after the kill (the action took %.1f ms)"
          % (t_out - t_kill, done["took_s"] * 1000))
    print("failed requests:           %d of %d since the kill" % (len(failed), len(since)))
    print("requests after the action: %d, failed %d, answered by web2 %d"
          % (len(after), sum(1 for r in after if r[1] is None),
             sum(1 for r in after if r[1] == "web2")))
    ok = after and all(r[1] in ("web1", "web3") for r in after)
    print(vigil("status"))
    print(vigil("actions", "--limit", "3"))

    say("bringing web2 back: the server, then its agent")
    servers["web2"] = web_server("web2", ports["web2"])
    t_back = time.time()
    agents["web2"] = start([VIGIL, "agent", "--id", "web2", "--monitor", "127.0.0.1:%d" % udp,
                            "--key-file", os.path.join(DIR, "web2.key"), "--set", "role=web"],
                           "agent-web2.log")
    wait_for(lambda: state("web2") == "alive", 30, "web2 alive")
    wait_for(lambda: admin_state("web2") == 0, 30, "web2 ready in HAProxy")
    wait_for(lambda: any(r[1] == "web2" for r in load.results if r[0] > t_back), 30,
             "a request answered by web2")
    print("web2 is in HAProxy again and answers requests (%.2f s after its agent started)"
          % (time.time() - t_back))
    print(vigil("actions", "--limit", "4"))
    load.stop = True
    load.join(5)
    if not ok:
        print("demo: FAILED: a request failed or reached web2 after the action")
        return 1
    print("demo finished: every check passed")
    return 0


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    if os.environ.get("VIGIL_DEMO_KEEP") == "1":
        print("demo: logs kept in %s" % DIR)
    else:
        shutil.rmtree(DIR, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    rc = 1
    try:
        rc = main()
    except KeyboardInterrupt:
        rc = 130
    except SystemExit as e:
        print(e, file=sys.stderr)
        rc = e.code if isinstance(e.code, int) else 1
        log = os.path.join(DIR, "monitor.log")
        if os.path.exists(log):
            print("the monitor's log ends with:\n" + open(log).read()[-2000:], file=sys.stderr)
    finally:
        cleanup()
    sys.exit(rc)
