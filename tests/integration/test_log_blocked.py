#!/usr/bin/env python3
"""The monitor's log goes to a pipe that nobody reads. Detection, the API and
SIGTERM must not wait for it: the log is written by a thread of its own."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

from vigil_harness import VIGIL, _procs, check, free_port, run_tests


def test_blocked_log_blocks_nothing(tmp):
    port, api = free_port(), free_port(socket.SOCK_STREAM)
    conf = os.path.join(tmp, "m.conf")
    with open(conf, "w") as f:
        f.write('monitor = {\n  startup_grace = "1s";\n  heartbeat_interval = "100ms";\n};\n')
    args = [VIGIL, "monitor", "-c", conf, "--insecure", "--listen", "127.0.0.1:%d" % port,
            "--api", "127.0.0.1:%d" % api]
    for i in range(3000):
        args += ["-n", "n%d" % i]
    r, w = os.pipe()  # never read: the pipe fills after some 400 event lines
    p = subprocess.Popen(args, stdout=w, stderr=w, stdin=subprocess.DEVNULL)
    _procs.append(p)
    os.close(w)
    try:
        health = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 15:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v1/health" % api, timeout=2) as h:
                    health = json.loads(h.read())
                if health["nodes"]["dead"] == 3000:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        check(health and health["nodes"]["dead"] == 3000, "health %r" % (health and health["nodes"]))
        check(health["counters"]["events"] == 3000, "events %r" % health["counters"]["events"])
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=10)
        took = time.monotonic() - t0
        check(rc == 0, "exit status %d" % rc)
        # At most the 2 s the writer is given to finish, plus slack.
        check(took < 5, "stopping took %.1fs" % took)
    finally:
        os.close(r)


if __name__ == "__main__":
    run_tests([test_blocked_log_blocks_nothing])
