#!/usr/bin/env python3
"""examples/embed_heartbeat against a real monitor that holds a master key.

- With its node key (--key-file), the example's heartbeats are accepted: the
  node becomes alive with the example's custom status, and its goodbye makes
  it left; the monitor counts no authentication failure.
- Without a key, its heartbeats are refused (auth_failed) and the node is
  never registered.
- A key file of another node, one others can read, or one that is not a key
  file stops the example before it sends anything (exit 2).

Every run is bounded: the example sends COUNT heartbeats and its goodbye.
"""
import os
import subprocess
import time

from vigil_harness import VIGIL, Monitor, check, run_tests

EMBED = os.environ.get("VIGIL_EMBED", "build/embed_heartbeat")

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  key_file = "@TMP@/master.key";
  heartbeat_interval = "1s";
  startup_grace = "30s";
};
"""


def keygen(tmp):
    master = os.path.join(tmp, "master.key")
    subprocess.run([VIGIL, "keygen", "-o", master], check=True)
    for n in ("app1", "app2"):
        subprocess.run([VIGIL, "keygen", "--node", n, "--master", master, "-o",
                        os.path.join(tmp, n + ".key")], check=True)


def counters(m):
    return m.get("/v1/health")["counters"]


def test_authenticated(tmp):
    keygen(tmp)
    m = Monitor(tmp, CONFIG)
    r = subprocess.run([EMBED, "--key-file", os.path.join(tmp, "app1.key"), "app1", m.addr, "2"],
                       capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace")
    check(r.returncode == 0, "embed_heartbeat: exit %d\n%s%s" % (r.returncode, out, r.stderr))
    check("authenticated" in out and "goodbye sent" in out, out)
    m.wait_state("app1", "left", 10)
    n = m.get("/v1/nodes/app1")
    check(n["custom"].get("phase") == "draining", n)
    check(counters(m)["auth_failed"] == 0, counters(m))
    check(counters(m)["accepted"] >= 2, counters(m))


def test_unauthenticated_refused(tmp):
    keygen(tmp)
    m = Monitor(tmp, CONFIG)
    r = subprocess.run([EMBED, "app2", m.addr, "1"], capture_output=True, timeout=30)
    check(r.returncode == 0, "embed_heartbeat: exit %d" % r.returncode)
    deadline = time.monotonic() + 10
    while counters(m)["auth_failed"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    check(counters(m)["auth_failed"] >= 2, counters(m))
    check("app2" not in m.nodes(), m.nodes())


def test_bad_key_files(tmp):
    keygen(tmp)
    loose = os.path.join(tmp, "loose.key")
    with open(os.path.join(tmp, "app1.key")) as f:
        text = f.read()
    with open(loose, "w") as f:
        f.write(text)
    os.chmod(loose, 0o644)
    garbage = os.path.join(tmp, "garbage.key")
    with open(garbage, "w") as f:
        f.write("vigil-node-key app1\nnot hex at all\n")
    os.chmod(garbage, 0o600)
    cases = [
        (os.path.join(tmp, "app2.key"), "another node"),
        (loose, "owner only"),
        (garbage, "64 hex digits"),
        (os.path.join(tmp, "master.key"), "not a node key"),
        (os.path.join(tmp, "missing.key"), "No such file"),
    ]
    for path, words in cases:
        r = subprocess.run([EMBED, "--key-file", path, "app1", "127.0.0.1:9", "1"],
                           capture_output=True, timeout=10)
        err = r.stderr.decode(errors="replace")
        check(r.returncode == 2 and words in err, "%s: exit %d, %r" % (path, r.returncode, err))
        check(r.stdout == b"", "%s: it sent something: %r" % (path, r.stdout))


if __name__ == "__main__":
    run_tests([test_authenticated, test_unauthenticated_refused, test_bad_key_files])
