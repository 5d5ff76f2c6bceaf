#!/usr/bin/env python3
"""Actions across a real network: HAProxy and the monitor in one namespace,
three web servers and their agents in another, joined by a veth pair.

- A server and its agent are killed in the agents' namespace: the monitor
  puts the server into maint through HAProxy's runtime API, and requests
  through HAProxy (made in the monitor's namespace) are answered by the
  others; brought back, the server is made ready and answers again.
- A partition (nftables drops the heartbeat port in the monitor's
  namespace): every node is declared dead and every server goes into
  maint; the partition lifted, every node is alive and every server ready.

Needs root, ip, nft and haproxy (the suite runs as root; install-deps.sh
installs haproxy). Namespaces and processes are removed at the end.
"""
import os
import shutil
import socket
import subprocess
import sys
import time

import vigil_harness
from netns_harness import NetPair, sh, usable
from vigil_harness import check, free_port, run_tests

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
http.server.ThreadingHTTPServer((sys.argv[2], int(sys.argv[3])), H).serve_forever()
"""


def wait_for(cond, timeout, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


def admin_states(sock):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(b"show servers state web\n")
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    st = {}
    for line in out.decode().splitlines():
        f = line.split()
        if len(f) > 6 and not line.startswith("#"):
            st[f[3]] = int(f[6])
    return st


def test_haproxy_across_namespaces(tmp):
    if not usable():
        raise AssertionError("needs root, ip and nft (the test suite runs as root)")
    exe = shutil.which("haproxy")
    if not exe:
        raise AssertionError("haproxy not found: run scripts/install-deps.sh")
    tag = "va%d" % (os.getpid() % 10000)
    net = NetPair(tag, subnet="10.214.%d" % (os.getpid() % 200 + 20))
    net.setup()
    try:
        ports = {"web1": 8081, "web2": 8082, "web3": 8083}
        servers = {}

        def serve(n):
            p = subprocess.Popen(["ip", "netns", "exec", net.ag, sys.executable, "-c", SERVER, n,
                                  net.ag_ip, str(ports[n])], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            vigil_harness._procs.append(p)
            servers[n] = p

        for n in ports:
            serve(n)
        sock = os.path.join(tmp, "haproxy.sock")
        cfg = os.path.join(tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("global\n    stats socket %s mode 600 level admin\n"
                    "defaults\n    mode http\n    timeout connect 500ms\n    timeout client 5s\n"
                    "    timeout server 5s\n    retries 0\n"
                    "frontend fe\n    bind 127.0.0.1:8080\n    default_backend web\n"
                    "backend web\n    balance roundrobin\n" % sock)
            for n, p in sorted(ports.items()):
                f.write("    server %s %s:%d\n" % (n, net.ag_ip, p))
        hap = subprocess.Popen(["ip", "netns", "exec", net.mon, exe, "-db", "-f", cfg],
                               stdout=open(os.path.join(tmp, "haproxy.log"), "w"),
                               stderr=subprocess.STDOUT)
        vigil_harness._procs.append(hap)
        wait_for(lambda: os.path.exists(sock), 10, "HAProxy's socket")
        conf = os.path.join(tmp, "monitor.conf")
        with open(conf, "w") as f:
            f.write("""monitor: {
  heartbeat_interval = "200ms";
  detector = { type = "fixed"; suspect_after = "600ms"; dead_after = "1200ms"; };
  flap_damping = { enabled = false; };
  actions = ( { name = "lb"; kind = "haproxy"; socket = "%s"; servers = [ "web/%%n" ]; } );
};
""" % sock)
        net.start_monitor(os.path.join(tmp, "monitor.log"), ["-c", conf])
        time.sleep(0.5)
        agents = {n: net.start_agent(n, "200ms", os.path.join(tmp, "agent-%s.log" % n))
                  for n in ports}
        net.wait_all("alive", list(ports), 15)

        def get():
            r = net.in_ns(net.mon, "curl", "-s", "-m", "2", "http://127.0.0.1:8080/",
                          check_rc=False)
            return r.stdout.decode() if r.returncode == 0 else None

        check(sorted(get() for _ in range(6)) == ["web1", "web1", "web2", "web2", "web3", "web3"],
              "round robin before")
        # A crash in the agents' namespace.
        servers["web2"].kill()
        agents["web2"].kill()
        net.wait_all("dead", ["web2"], 15)
        wait_for(lambda: admin_states(sock).get("web2") == 1, 10, "web2 in maint")
        answers = [get() for _ in range(9)]
        check(all(a in ("web1", "web3") for a in answers), "after the action: %s" % answers)
        serve("web2")
        agents["web2"] = net.start_agent("web2", "200ms", os.path.join(tmp, "agent-web2.log"))
        net.wait_all("alive", ["web2"], 15)
        wait_for(lambda: admin_states(sock).get("web2") == 0, 10, "web2 ready")
        wait_for(lambda: "web2" in [get() for _ in range(3)], 10, "web2 answering")
        # A partition: every heartbeat dropped in the monitor's namespace.
        net.set_loss(100)
        net.wait_all("dead", list(ports), 15)
        wait_for(lambda: set(admin_states(sock).values()) == {1}, 10, "every server in maint")
        net.set_loss(0)
        net.wait_all("alive", list(ports), 15)
        wait_for(lambda: set(admin_states(sock).values()) == {0}, 10, "every server ready")
        # Every request answered. (Which servers take them right after all three left
        # maintenance at once is HAProxy's round robin's business: it may favour some a while.)
        answers = [get() for _ in range(12)]
        check(None not in answers and len(set(answers)) >= 2, "after the partition: %s" % answers)
    finally:
        vigil_harness._cleanup()
        net.teardown()


if __name__ == "__main__":
    run_tests([test_haproxy_across_namespaces])
