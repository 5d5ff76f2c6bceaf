"""Helpers for integration tests: real vigil processes on loopback.

Every process a test starts is tracked by pid and killed at exit; every wait
is bounded in time. Tests read the monitor's state through its HTTP API.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

VIGIL = os.environ.get("VIGIL_BIN", "build/vigil")


def sanitized():
    """True when VIGIL is a sanitizer build (VIGIL_SANITIZE in its build's CMakeCache.txt).

    Such a build runs several times slower: timing bounds meant for the real
    program get a wider margin under it, and say so.
    """
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(VIGIL)), "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("VIGIL_SANITIZE:"):
                    return line.strip().split("=", 1)[1].upper() in ("ON", "1", "TRUE", "YES")
    except OSError:
        pass
    return False

_procs = []


def kill_procs(procs):
    """Kills each process still running, by pid (SIGCONT first: a stopped one
    would not die), and waits for it."""
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def _cleanup():
    kill_procs(_procs)


atexit.register(_cleanup)


def free_port(kind=socket.SOCK_DGRAM):
    """A port that was free a moment ago on 127.0.0.1 (both UDP and TCP checked)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        other = socket.socket(socket.AF_INET,
                              socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM)
        try:
            other.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            other.close()
    raise RuntimeError("no free port")


def start(args, log_path=None, env=None):
    """Starts `vigil ARGS`, its output to log_path (or discarded)."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    p = subprocess.Popen([VIGIL] + args, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=env)
    _procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait(timeout=5)


class Monitor:
    """A vigil monitor with a config file written from the given text."""

    def __init__(self, tmp, config_text, extra_args=(), port=None):
        self.tmp = tmp
        self.port = port or free_port()
        self.api_port = free_port(socket.SOCK_STREAM)
        self.conf = os.path.join(tmp, "monitor.conf")
        with open(self.conf, "w") as f:
            f.write(config_text.replace("@PORT@", str(self.port))
                    .replace("@API@", str(self.api_port)).replace("@TMP@", tmp))
        self.log = os.path.join(tmp, "monitor.log")
        # A monitor without a key must say so: tests that need no key run insecure explicitly.
        if "key_file" not in config_text and "insecure" not in config_text:
            extra_args = ["--insecure"] + list(extra_args)
        self.proc = start(["monitor", "-c", self.conf] + list(extra_args), self.log)
        self.wait_api()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def get(self, path, timeout=15):
        url = "http://127.0.0.1:%d%s" % (self.api_port, path)
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read().decode())

    def wait_api(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("monitor exited with %s:\n%s" % (self.proc.returncode,
                                                                      self.read_log()))
            try:
                return self.get("/v1/health")
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        raise AssertionError("monitor API did not come up:\n" + self.read_log())

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def nodes(self):
        return {n["id"]: n for n in self.get("/v1/nodes")["nodes"]}

    def state(self, node):
        """One node's state (None if the monitor does not know it): one node, not a page."""
        try:
            return self.get("/v1/nodes/%s" % node)["state"]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def events(self, since=0):
        return self.get("/v1/events?since=%d&limit=10000" % since)["events"]

    def wait_state(self, node, states, timeout):
        """Waits until node is in one of states; returns the seconds it took."""
        if isinstance(states, str):
            states = (states,)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.state(node) in states:
                return time.monotonic() - t0
            time.sleep(0.02)
        raise AssertionError("%s not %s within %.1fs (is %s)\n%s" % (
            node, states, timeout, self.state(node), self.read_log()[-3000:]))


def agent(monitor_addr, node_id, tmp, interval="250ms", extra=()):
    log = os.path.join(tmp, "agent-%s.log" % node_id)
    return start(["agent", "--id", node_id, "--monitor", monitor_addr,
                  "--interval", interval] + list(extra), log)


def keygen(tmp, *args):
    """vigil keygen in tmp (file names relative to it, as in the configurations there)."""
    subprocess.run([os.path.abspath(VIGIL), "keygen"] + list(args), check=True,
                   capture_output=True, cwd=tmp)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def run_tests(tests):
    """Runs test functions in order; prints a closing 'N passed, N failed' line.

    Each test gets a temporary directory of its own, removed after it passed;
    a failed test's directory is kept (its logs, configurations and keys) and
    its path printed.
    """
    passed = failed = 0
    for t in tests:
        tmp = tempfile.mkdtemp(prefix="vigil-it-")
        t0 = time.monotonic()
        ok = False
        try:
            t(tmp)
            ok = True
            passed += 1
            print("PASS %s (%.1fs)" % (t.__name__, time.monotonic() - t0), flush=True)
        except Exception as e:  # report and go on with the next test
            failed += 1
            print("FAIL %s: %s" % (t.__name__, e), flush=True)
        finally:
            _cleanup()
            _procs.clear()
            if ok:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                print("  kept %s" % tmp, flush=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
