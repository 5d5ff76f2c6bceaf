#!/usr/bin/env python3
"""The built-in web page in a real browser: headless Chromium through Selenium.

A monitor with a master key and three agents with their node keys at 250 ms
heartbeats. The page at / shows the three nodes alive; when one agent is
killed (SIGKILL) the page shows that node dead, with the event; when the
agent is started again, alive again. The page runs under its own
Content-Security-Policy (the browser reports no violation), and a custom
status value that looks like markup is shown as text, not turned into
elements.

Needs Debian's chromium, chromium-driver and python3-selenium (installed by
scripts/install-deps.sh). Anything missing, or a browser that cannot start,
is a failure with the reason, never a silent skip. chromedriver is started
here in a process group of its own, so that it and every browser process
it started are killed by that group's id at the end, whatever happened.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SYSTEM_PYTHON = "/usr/bin/python3"
try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
except ImportError:
    # python3-selenium is installed for Debian's python3; run under it if this one lacks it.
    if (os.path.exists(SYSTEM_PYTHON) and os.path.realpath(sys.executable)
            != os.path.realpath(SYSTEM_PYTHON) and not os.environ.get("VIGIL_UI_REEXEC")):
        os.environ["VIGIL_UI_REEXEC"] = "1"
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    print("FAIL test_ui: python3-selenium is not importable by %s: run scripts/install-deps.sh"
          % sys.executable, flush=True)
    sys.exit(1)

from vigil_harness import VIGIL, Monitor, agent, check, free_port, run_tests  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Bounds of every wait: a node dies 1.5 s after its last heartbeat, the page polls every second.
PAGE_WAIT = 20
START_WAIT = 30

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  key_file = "@TMP@/master.key";
  heartbeat_interval = "250ms";
  detector = { type = "fixed"; suspect_after = "750ms"; dead_after = "1500ms"; };
  # A service check of web1 that fails (nothing listens on port 1): its event on the page.
  checks = ( { node = "web1"; name = "port"; type = "tcp"; target = "127.0.0.1:1";
               interval = "500ms"; timeout = "200ms"; } );
};
"""

NODES = ["web1", "web2", "db.1"]
MARKUP = '<b id="injected">x</b>'


class Browser:
    """chromedriver in a process group of its own, and a headless Chromium session on it."""

    def __init__(self, tmp):
        self.proc = self.driver = None
        try:
            self._start(tmp)
        except BaseException:
            self.close()
            raise

    def _start(self, tmp):
        for path in (CHROMIUM, CHROMEDRIVER):
            check(os.access(path, os.X_OK),
                  "%s missing: run scripts/install-deps.sh (chromium, chromium-driver)" % path)
        self.log = os.path.join(tmp, "chromedriver.log")
        self.port = free_port(socket.SOCK_STREAM)
        self.proc = subprocess.Popen(
            [CHROMEDRIVER, "--port=%d" % self.port, "--log-path=" + self.log],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.pgid = self.proc.pid  # a new session: its group id is its pid
        deadline = time.monotonic() + START_WAIT
        url = "http://127.0.0.1:%d/status" % self.port
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("chromedriver exited with %s:\n%s"
                                     % (self.proc.returncode, self.read_log()))
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("chromedriver did not come up in %ds:\n%s"
                                         % (START_WAIT, self.read_log()))
                time.sleep(0.1)
        o = webdriver.ChromeOptions()
        o.binary_location = CHROMIUM
        o.add_argument("--headless=new")
        o.add_argument("--disable-dev-shm-usage")
        o.add_argument("--disable-gpu")
        o.add_argument("--no-first-run")
        o.add_argument("--user-data-dir=" + os.path.join(tmp, "chromium-profile"))
        if os.geteuid() == 0:
            o.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            self.driver = webdriver.Remote(command_executor="http://127.0.0.1:%d" % self.port,
                                           options=o)
        except WebDriverException as e:
            raise AssertionError("headless Chromium did not start: %s\n%s"
                                 % (e.msg if hasattr(e, "msg") else e, self.read_log()[-4000:]))
        self.driver.set_page_load_timeout(PAGE_WAIT)
        self.driver.set_script_timeout(PAGE_WAIT)

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        """Ends the session, then kills whatever is left of the group chromedriver leads."""
        if self.driver is not None:
            try:
                self.driver.quit()
            except Exception:
                pass
            self.driver = None
        if self.proc is None:
            return
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def page_nodes(d):
    """{node id: state text} as the page shows it."""
    rows = d.execute_script(
        "return Array.from(document.querySelectorAll('#nodes tbody tr'))"
        ".map(function (r) { return [r.dataset.node, r.querySelector('.c-state').textContent,"
        " r.className]; });")
    return {r[0]: r[1] for r in rows}


def wait_page(d, what, cond, timeout=PAGE_WAIT):
    """Waits (bounded) until cond(page_nodes) holds; returns the seconds it took."""
    t0 = time.monotonic()
    seen = None
    while time.monotonic() - t0 < timeout:
        seen = page_nodes(d)
        if cond(seen):
            return time.monotonic() - t0
        time.sleep(0.2)
    raise AssertionError("the page did not show %s within %ds; it shows %r, status %r"
                         % (what, timeout, seen, d.execute_script(
                             "return document.getElementById('conn').textContent;")))


def events_text(d):
    return d.execute_script("return document.getElementById('events').textContent;")


def make_keys(tmp):
    master = os.path.join(tmp, "master.key")
    subprocess.run([VIGIL, "keygen", "-o", master], check=True, timeout=10)
    for n in NODES:
        subprocess.run([VIGIL, "keygen", "--node", n, "--master", master, "-o",
                        os.path.join(tmp, n + ".key")], check=True, timeout=10)


def start_agent(m, tmp, n):
    extra = ["--key-file", os.path.join(tmp, n + ".key")]
    if n == "web1":
        extra += ["--set", "note=" + MARKUP]
    return agent(m.addr, n, tmp, interval="250ms", extra=extra)


def test_page_follows_the_cluster(tmp):
    make_keys(tmp)
    m = Monitor(tmp, CONFIG)
    agents = {n: start_agent(m, tmp, n) for n in NODES}
    for n in NODES:
        m.wait_state(n, "alive", 10)

    # The page's own headers, from the real server.
    with urllib.request.urlopen("http://127.0.0.1:%d/" % m.api_port, timeout=5) as r:
        check(r.headers.get("Content-Type") == "text/html; charset=utf-8",
              "content type %r" % r.headers.get("Content-Type"))
        csp = r.headers.get("Content-Security-Policy") or ""
        check("default-src 'none'" in csp and "'sha256-" in csp, "policy %r" % csp)

    b = Browser(tmp)
    try:
        d = b.driver
        d.get("http://127.0.0.1:%d/" % m.api_port)
        took = wait_page(d, "three nodes alive",
                         lambda s: all(s.get(n) == "alive" for n in NODES))
        print("page shows %s alive after %.1fs" % (", ".join(NODES), took), flush=True)
        check(d.title == "vigil", "title %r" % d.title)

        # Data is text: the markup in web1's custom status shows as written and makes no element.
        custom = d.execute_script(
            "return document.querySelector('#nodes tr[data-node=\"web1\"] .c-custom')"
            ".textContent;")
        check(MARKUP in custom, "custom cell %r" % custom)
        check(d.execute_script("return document.getElementById('injected') === null;"),
              "markup from a custom status became an element")

        agents["web2"].send_signal(signal.SIGKILL)
        agents["web2"].wait(timeout=5)
        took = wait_page(d, "web2 dead", lambda s: s.get("web2") == "dead")
        print("page shows web2 dead %.1fs after SIGKILL" % took, flush=True)
        s = page_nodes(d)
        check(s.get("web1") == "alive" and s.get("db.1") == "alive", "others: %r" % s)
        t0 = time.monotonic()
        while "dead" not in events_text(d) and time.monotonic() - t0 < PAGE_WAIT:
            time.sleep(0.2)
        check("web2" in events_text(d) and "dead" in events_text(d),
              "events list: %r" % events_text(d))
        # The failing service check of web1, with its statuses and evidence; web1 stays alive.
        t0 = time.monotonic()
        while "check port" not in events_text(d) and time.monotonic() - t0 < PAGE_WAIT:
            time.sleep(0.2)
        text = events_text(d)
        check("web1 check port" in text and "critical" in text and "refused" in text,
              "events list: %r" % text)
        check(page_nodes(d).get("web1") == "alive", "web1 with a failing check: %r" % page_nodes(d))
        row = d.execute_script(
            "var r = document.querySelector('#nodes tr[data-node=\"web2\"]');"
            "return [r.className, r.querySelector('.fill').style.width];")
        # Its level bar reaches past the dead mark (at 80 % of the scale), in red.
        check(row[0] == "st-dead" and float(row[1].rstrip("%")) >= 80, "web2's row %r" % row)

        agents["web2"] = start_agent(m, tmp, "web2")
        took = wait_page(d, "web2 alive again", lambda s: s.get("web2") == "alive")
        print("page shows web2 alive %.1fs after the restart" % took, flush=True)

        # The page ran under its policy without tripping it, and its script raised nothing.
        logs = d.get_log("browser")
        bad = [e for e in logs if e.get("level") == "SEVERE" and "favicon" not in e["message"]]
        check(not bad, "browser console errors: %r" % bad)
    finally:
        b.close()
    for p in agents.values():
        p.terminate()


if __name__ == "__main__":
    run_tests([test_page_follows_the_cluster])
