#!/usr/bin/env python3
"""Long polls of the events, and `vigil events --follow` on them.

- GET /v1/events?since=N&wait=S with nothing after N waits: it is answered
  when the next event happens (an agent killed while the request waits),
  not at the end of the wait, and with that event.
- With no event at all it is answered, empty, after S seconds.
- wait above 60 is refused with 400.
- `vigil events --follow` prints the death of a killed agent within a
  second of the monitor's decision, and its recovery.
"""
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

from vigil_harness import VIGIL, Monitor, agent, check, run_tests

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  insecure = true;
  heartbeat_interval = "100ms";
  detector = { type = "fixed"; suspect_after = "400ms"; dead_after = "800ms"; };
};
"""


def get(m, path, timeout=30):
    url = "http://127.0.0.1:%d%s" % (m.api_port, path)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_long_poll(tmp):
    m = Monitor(tmp, CONFIG)
    a1 = agent(m.addr, "web1", tmp, interval="100ms")
    a2 = agent(m.addr, "web2", tmp, interval="100ms")
    m.wait_state("web1", "alive", 10)
    m.wait_state("web2", "alive", 10)
    time.sleep(0.5)
    last = m.events()[-1]["seq"]

    # Nothing happens: answered empty after the wait, not before.
    t0 = time.monotonic()
    st, doc = get(m, "/v1/events?since=%d&wait=2" % last)
    took = time.monotonic() - t0
    check(st == 200 and doc["events"] == [], "empty long poll: %d %r" % (st, doc))
    check(1.8 < took < 6, "an empty long poll of 2 s took %.2f s" % took)

    # An agent dies while the request waits: answered with its event at once.
    result = {}

    def poll():
        t = time.monotonic()
        try:
            result["answer"] = get(m, "/v1/events?since=%d&wait=30" % last, timeout=60)
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            result["error"] = repr(e)
        result["took"] = time.monotonic() - t

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.5)
    a1.send_signal(signal.SIGKILL)
    th.join(40)
    check("answer" in result, "the long poll never came back")
    st, doc = result["answer"]
    check(st == 200 and doc["events"] and doc["events"][0]["node"] == "web1",
          "long poll answer: %d %r" % (st, doc))
    # web1 is suspect 0.4 s after its last heartbeat: well before the 30 s wait.
    check(result["took"] < 5, "the long poll took %.2f s" % result["took"])

    st, doc = get(m, "/v1/events?since=0&wait=61")
    check(st == 400 and "wait" in doc["error"], "wait=61: %d %r" % (st, doc))

    # vigil events --follow: the death of web2, printed as it happens.
    follow = subprocess.Popen([VIGIL, "events", "--follow", "--api", "127.0.0.1:%d" % m.api_port],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        time.sleep(1)
        a2.send_signal(signal.SIGKILL)
        m.wait_state("web2", "dead", 10)
        t_dead = time.monotonic()
        lines = []
        deadline = time.monotonic() + 10
        os.set_blocking(follow.stdout.fileno(), False)
        while time.monotonic() < deadline:
            chunk = follow.stdout.readline()
            if chunk:
                lines.append(chunk)
                if "web2 suspect -> dead" in chunk:
                    break
            else:
                time.sleep(0.02)
        check(any("web2 suspect -> dead" in x for x in lines), "--follow printed %r" % lines)
        check(time.monotonic() - t_dead < 2, "--follow was %.2f s late" %
              (time.monotonic() - t_dead))
    finally:
        os.killpg(follow.pid, signal.SIGTERM)
        follow.wait(10)
    check(follow.returncode == 0, "--follow exit %s" % follow.returncode)

    # A monitor that stops answers its waiting long polls, and stops promptly.
    result.clear()
    last = m.events()[-1]["seq"]
    th = threading.Thread(target=poll)
    th.start()
    time.sleep(1)
    check("took" not in result, "the long poll did not wait: %r" % result)
    t0 = time.monotonic()
    m.proc.send_signal(signal.SIGTERM)
    m.proc.wait(10)
    th.join(20)
    check(time.monotonic() - t0 < 5, "the monitor took %.1f s to stop" % (time.monotonic() - t0))
    check("took" in result and result["took"] < 8, "the long poll hung: %r" % result)


if __name__ == "__main__":
    run_tests([test_long_poll])
