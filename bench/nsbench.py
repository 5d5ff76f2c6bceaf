"""What the benchmarks share (detect_vs_serf.py, peer_vs_serf.py across
network namespaces; store_ingest.py and whole_path.py on the host):
running commands, reaching an API on a namespace's own loopback or the
host's, a process's CPU time, percentiles."""
import ctypes
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

CLONE_NEWNET = 0x40000000


def log(msg):
    print(msg, flush=True)


def cpu_s(pid):
    """User + system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def loopback_get(port, path, timeout=10):
    """GET http://127.0.0.1:PORT/PATH on the host's loopback, as JSON."""
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return json.loads(r.read().decode())


def run(args, check=True, input_text=None, timeout=30):
    r = subprocess.run(list(args), capture_output=True, timeout=timeout,
                       input=input_text.encode() if input_text is not None else None)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stderr.decode(errors="replace").strip()))
    return r


def nearest_rank(xs, q):
    """Nearest-rank percentile q (0..1) of xs, or None for an empty list."""
    s = sorted(xs)
    return s[max(0, math.ceil(q * len(s)) - 1)] if s else None


class NsCaller:
    """Runs calls in a thread that has entered a network namespace, so that
    the script reaches 127.0.0.1 inside it (an API there) without any
    address outside the namespaces."""

    def __init__(self, ns):
        self.pool = ThreadPoolExecutor(max_workers=1, initializer=self._enter, initargs=(ns,))

    @staticmethod
    def _enter(ns):
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open("/run/netns/" + ns, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, "setns %s: %s" % (ns, os.strerror(err)))
        finally:
            os.close(fd)

    def get_json(self, addr, path, timeout=1.0):
        def fetch():
            with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=timeout) as r:
                return json.loads(r.read().decode())
        return self.pool.submit(fetch).result(timeout=timeout + 5)

    def connects(self, host, port):
        """True if a TCP connection to host:port opens (inside the namespace)."""
        def conn():
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        return self.pool.submit(conn).result(timeout=5)

    def close(self):
        self.pool.shutdown(wait=False)


def preflight(name, vigil):
    """Exits with the reason unless this runs as root with ip, nft, serf and an
    executable vigil; returns vigil's absolute path."""
    if os.geteuid() != 0:
        sys.exit("%s: needs root (network namespaces, nftables)" % name)
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            sys.exit("%s: %s not found (apt-get install iproute2 nftables)" % (name, tool))
    if not shutil.which("serf"):
        sys.exit("%s: serf not found; install it with `apt-get install serf` "
                 "(or bash scripts/install-deps.sh)" % name)
    if not os.access(vigil, os.X_OK):
        sys.exit("%s: %s not found; build first (make build)" % (name, vigil))
    return os.path.abspath(vigil)
