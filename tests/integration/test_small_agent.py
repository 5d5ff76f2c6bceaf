#!/usr/bin/env python3
"""The small agent program, vigil-agent, against a real monitor.

It sends authenticated heartbeats (sealed statuses, custom pairs from its
file and its status file) that a real `vigil monitor` accepts, runs tcp and
exec checks itself, says goodbye on SIGTERM and takes its key again on
SIGHUP; it maps none of the libraries it does not need (libcurl,
libmicrohttpd, jansson, SQLite, libsystemd) and, idle, keeps at most 2 MB
resident. A configuration with an http check makes it hand over to `vigil
agent` in the same process, which then runs that check.
"""
import os
import signal
import socket
import struct
import subprocess
import time

import vigil_harness
from vigil_harness import VIGIL, Monitor, check, free_port, keygen, run_tests, stop

SMALL = os.environ.get("VIGIL_AGENT_BIN",
                       os.path.join(os.path.dirname(os.path.abspath(VIGIL)), "vigil-agent"))
BUILD = os.path.dirname(os.path.abspath(SMALL))

# The target of docs/performance.md, "A small agent".
RSS_MAX_KIB = 2048
# Libraries the full program links and the small one must not map.
NOT_MAPPED = ["libcurl", "libmicrohttpd", "libjansson", "libsqlite3", "libsystemd", "libgnutls"]

MONITOR = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  key_file = "@TMP@/master.key";
  encrypt = true;
  heartbeat_interval = "200ms";
  detector = { type = "fixed"; suspect_after = "1s"; dead_after = "2s"; };
};
"""


def statically_linked(path):
    """True when the program has no program interpreter (PT_INTERP): linked statically, as
    vigil-agent is unless built with the sanitizers or VIGIL_AGENT_STATIC=OFF. The 2 MB
    target is the static program's; the others are measured, not held to it."""
    with open(path, "rb") as f:
        elf = f.read(1 << 16)
    if elf[:4] != b"\x7fELF" or elf[4] != 2:  # 64-bit ELF only
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    return all(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] != 3
               for i in range(phnum))


def wait_for(cond, timeout, what, step=0.03):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def start_small(tmp, conf_text, name="agent", env=None):
    """vigil-agent -c FILE, its output in tmp/NAME.log."""
    conf = os.path.join(tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    log = os.path.join(tmp, name + ".log")
    out = open(log, "ab")
    p = subprocess.Popen([SMALL, "-c", conf], stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=env)
    vigil_harness._procs.append(p)
    return p, log


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def status_kib(pid):
    """VmRSS, RssAnon and RssFile of pid, in KiB."""
    out = {}
    for line in read("/proc/%d/status" % pid).splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0])
    return out


def mapped_files(pid):
    return {line.split()[5] for line in read("/proc/%d/maps" % pid).splitlines()
            if len(line.split()) >= 6}


def agent_conf(m, node, extra=""):
    return """agent = {
  id = "%s";
  monitors = [ "%s" ];
  key_file = "%s/%s.key";
  encrypt = true;
  interval = "200ms";
  generation_file = "%s/%s.generation";
  custom = { role = "web"; };
%s};
""" % (node, m.addr, m.tmp, node, m.tmp, node, extra)


def test_heartbeats_accepted(tmp):
    keygen(tmp, "-o", "master.key")
    keygen(tmp, "--node", "web1", "--master", "master.key", "-o", "web1.key")
    m = Monitor(tmp, MONITOR)
    sf = os.path.join(tmp, "status")
    with open(sf, "w") as f:
        f.write("queue=7\n")
    a, log = start_small(tmp, agent_conf(m, "web1", '  status_file = "%s";\n' % sf))
    m.wait_state("web1", "alive", 10)
    n = m.nodes()["web1"]
    check(n["custom"] == {"role": "web", "queue": "7"}, "custom %r" % n["custom"])
    st = n["status"]
    check(st["mem_total_kib"] > 0 and st["uptime_s"] > 0, "status %r" % st)
    check(os.path.realpath("/proc/%d/exe" % a.pid) == os.path.realpath(SMALL),
          "the agent is not vigil-agent: %s" % os.path.realpath("/proc/%d/exe" % a.pid))
    # The status file changed while it runs.
    subprocess.run([VIGIL, "set", "--status-file", sf, "queue=8"], check=True)
    wait_for(lambda: m.nodes()["web1"]["custom"].get("queue") == "8", 5, "queue=8")
    # Heartbeats keep coming, every one accepted.
    n0 = m.nodes()["web1"]["heartbeats"]
    time.sleep(1.0)
    n1 = m.nodes()["web1"]["heartbeats"]
    check(n1 - n0 >= 3, "heartbeats in 1 s at 200 ms: %d" % (n1 - n0))

    maps = mapped_files(a.pid)
    bad = [f for f in maps if any(lib in f for lib in NOT_MAPPED)]
    check(not bad, "vigil-agent maps %s" % bad)
    time.sleep(1.0)  # idle, after its start
    k = status_kib(a.pid)
    static = statically_linked(SMALL)
    print("vigil-agent idle (%s): VmRSS %d KiB (RssAnon %d, RssFile %d)" % (
        "static" if static else "dynamic", k["VmRSS"], k["RssAnon"], k["RssFile"]), flush=True)
    if static:
        check(k["VmRSS"] <= RSS_MAX_KIB, "VmRSS %d KiB > %d KiB: %s" % (k["VmRSS"], RSS_MAX_KIB,
                                                                      k))

    # SIGHUP: the key is read again and heartbeats go on.
    a.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in read(log), 5, "the reload")
    h = m.nodes()["web1"]["heartbeats"]
    wait_for(lambda: m.nodes()["web1"]["heartbeats"] >= h + 3, 5, "heartbeats after the reload")

    # SIGTERM: the goodbye, and the node has left.
    check(stop(a) == 0, "vigil-agent exited %s:\n%s" % (a.returncode, read(log)))
    m.wait_state("web1", "left", 5)
    check("goodbye sent" in read(log), read(log))


def test_wrong_key_refused(tmp):
    """The heartbeats are really authenticated: another node's key is refused at start."""
    keygen(tmp, "-o", "master.key")
    keygen(tmp, "--node", "web2", "--master", "master.key", "-o", "web1.key")
    m = Monitor(tmp, MONITOR)
    a, log = start_small(tmp, agent_conf(m, "web1"))
    check(a.wait(timeout=10) == 1, "exit %s" % a.returncode)
    check("the node key of web2, not of web1" in read(log), read(log))


def test_tcp_and_exec_checks(tmp):
    """tcp and exec checks run in the small agent itself."""
    keygen(tmp, "-o", "master.key")
    keygen(tmp, "--node", "db1", "--master", "master.key", "-o", "db1.key")
    m = Monitor(tmp, MONITOR)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    port = srv.getsockname()[1]
    a, log = start_small(tmp, agent_conf(m, "db1", """  checks = (
    { name = "tcp"; type = "tcp"; target = "127.0.0.1:%d"; interval = "100ms"; },
    { name = "cmd"; type = "exec"; command = [ "/bin/true" ]; interval = "100ms"; }
  );
""" % port))
    m.wait_state("db1", "alive", 10)

    def passing():
        cs = {c["check"]: c for c in m.get("/v1/checks")["checks"] if c["node"] == "db1"}
        return all(cs.get(k, {}).get("status") == "passing" for k in ("tcp", "cmd"))
    wait_for(passing, 10, "the tcp and exec checks passing")
    check(os.path.realpath("/proc/%d/exe" % a.pid) == os.path.realpath(SMALL),
          "vigil-agent handed over without an http check:\n%s" % read(log))
    check("handing over" not in read(log), read(log))
    srv.close()
    check(stop(a) == 0, "vigil-agent exited %s:\n%s" % (a.returncode, read(log)))


def test_http_check_hands_over(tmp):
    """An http check needs the HTTP client: vigil agent runs instead, in the same process."""
    keygen(tmp, "-o", "master.key")
    keygen(tmp, "--node", "web3", "--master", "master.key", "-o", "web3.key")
    m = Monitor(tmp, MONITOR)
    hport = free_port(socket.SOCK_STREAM)
    code = ("import http.server\n"
            "class H(http.server.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            "        self.send_response(200);self.send_header('Content-Length','2')\n"
            "        self.end_headers();self.wfile.write(b'ok')\n"
            "    def log_message(self,*a): pass\n"
            "http.server.ThreadingHTTPServer(('127.0.0.1',%d),H).serve_forever()\n" % hport)
    web = subprocess.Popen(["python3", "-c", code], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    vigil_harness._procs.append(web)
    a, log = start_small(tmp, agent_conf(m, "web3", """  checks = (
    { name = "http"; type = "http"; url = "http://127.0.0.1:%d/"; interval = "100ms"; }
  );
""" % hport))
    m.wait_state("web3", "alive", 10)
    wait_for(lambda: any(c["node"] == "web3" and c["check"] == "http" and
                         c["status"] == "passing" for c in m.get("/v1/checks")["checks"]),
             10, "the http check passing")
    exe = os.path.realpath("/proc/%d/exe" % a.pid)
    check(exe == os.path.realpath(VIGIL), "the agent runs %s, not vigil" % exe)
    check("vigil-agent: an http check needs the HTTP client: handing over to vigil agent"
          in read(log), read(log))
    check(stop(a) == 0, "vigil agent exited %s:\n%s" % (a.returncode, read(log)))
    m.wait_state("web3", "left", 5)


def test_shared_file(tmp):
    """One file for both roles (the README's advice): the monitor section, with its hooks,
    actions and checks, is parsed and left alone; its key file is not read."""
    keygen(tmp, "-o", "master.key")
    keygen(tmp, "--node", "app1", "--master", "master.key", "-o", "app1.key")
    m = Monitor(tmp, MONITOR)
    text = """monitor = {
  listen = [ "127.0.0.1:1" ];
  key_file = "/nonexistent/master.key";
  hooks = ( { command = [ "/bin/true" ]; } );
  actions = ( { name = "lb"; kind = "haproxy"; socket = "/run/haproxy/admin.sock";
                servers = [ "web/%%n" ]; } );
  checks = ( { node = "db1"; name = "pg"; type = "tcp"; target = "10.0.0.9:5432"; } );
};
""" + agent_conf(m, "app1")
    a, log = start_small(tmp, text)
    m.wait_state("app1", "alive", 10)
    check(stop(a) == 0, "vigil-agent exited %s:\n%s" % (a.returncode, read(log)))


def notify_messages(sock, until_text, timeout=10):
    """What arrives on the NOTIFY_SOCKET end until a message holds until_text."""
    got = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        sock.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if until_text in got[-1]:
            return got
    raise AssertionError("no %r within %ss; got %r" % (until_text, timeout, got))


def test_systemd_protocol(tmp):
    """The unit is Type=notify with WatchdogSec: the small agent, and the full one it hands
    over to, send READY=1 once, keep the watchdog fed and send STOPPING=1 on SIGTERM."""
    keygen(tmp, "-o", "master.key")
    m = Monitor(tmp, MONITOR)
    for node, extra in (("n1", ""), ("n2", """  checks = (
    { name = "http"; type = "http"; url = "http://127.0.0.1:%d/"; interval = "1s"; }
  );
""" % free_port(socket.SOCK_STREAM))):
        keygen(tmp, "--node", node, "--master", "master.key", "-o", node + ".key")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        path = os.path.join(tmp, node + ".notify")
        sock.bind(path)
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
        env.pop("WATCHDOG_PID", None)
        a, log = start_small(tmp, agent_conf(m, node, extra), name=node, env=env)
        got = notify_messages(sock, "READY=1")
        time.sleep(1.1)
        a.send_signal(signal.SIGTERM)
        got += notify_messages(sock, "STOPPING=1")
        check(a.wait(timeout=10) == 0, "%s exited %s:\n%s" % (node, a.returncode, read(log)))
        n = sum(g == "WATCHDOG=1" for g in got)
        check(got[0] == "READY=1" and got.count("READY=1") == 1 and 2 <= n <= 8,
              "%s: %r\n%s" % (node, got, read(log)))
        check(("handing over" in read(log)) == (node == "n2"), read(log))
        sock.close()


def test_usage(tmp):
    r = subprocess.run([SMALL, "--help"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and r.stdout.startswith("usage: vigil-agent [options]"), r.stdout)
    r = subprocess.run([SMALL, "--version"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and r.stdout.startswith("vigil-agent "), r.stdout)
    r = subprocess.run([SMALL, "--no-such-flag"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and "usage: vigil-agent" in r.stderr, r.stderr)
    conf = os.path.join(tmp, "bad.conf")
    with open(conf, "w") as f:
        f.write('agent = {\n  id = "a";\n  intervall = "1s";\n};\n')
    r = subprocess.run([SMALL, "-c", conf], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and r.stderr.startswith("vigil-agent: %s:3:" % conf), r.stderr)


if __name__ == "__main__":
    run_tests([test_heartbeats_accepted, test_wrong_key_refused, test_tcp_and_exec_checks,
               test_http_check_hands_over, test_shared_file, test_systemd_protocol, test_usage])
