#!/usr/bin/env python3
"""The daemons speak systemd's readiness protocol (Type=notify units).

The test plays the service manager: it binds the datagram socket systemd
would name in NOTIFY_SOCKET (a path, then an abstract one) and reads what
the monitor and the agent send: READY=1 once they serve, WATCHDOG=1 at half
the WATCHDOG_USEC interval, STOPPING=1 on SIGTERM. Without NOTIFY_SOCKET
they send nothing and run as before (every other test).
"""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from vigil_harness import check, free_port, run_tests, start  # noqa: E402


class Manager:
    """The service manager's end of NOTIFY_SOCKET: collects what arrives."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.name = address if address[0] == "/" else "@" + address[1:]
        self.messages = []

    def env(self, watchdog_usec=None):
        e = dict(os.environ, NOTIFY_SOCKET=self.name)
        e.pop("WATCHDOG_USEC", None)
        e.pop("WATCHDOG_PID", None)
        if watchdog_usec:
            e["WATCHDOG_USEC"] = str(watchdog_usec)
        return e

    def wait_for(self, text, timeout=10):
        """Waits for a message holding text; returns the seconds it took."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if any(text in m for m in self.messages):
                return time.monotonic() - t0
            self.sock.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                break
        raise AssertionError("no %r from the daemon within %ss; got %r" % (text, timeout,
                                                                           self.messages))

    def drain(self):
        """Takes every message waiting now."""
        self.sock.setblocking(False)
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            pass
        self.sock.setblocking(True)

    def close(self):
        self.sock.close()


def test_monitor_ready_watchdog_stopping(tmp):
    mgr = Manager(os.path.join(tmp, "notify.sock"))
    port, api = free_port(), free_port(socket.SOCK_STREAM)
    # WatchdogSec=0.4s: a keep-alive every 0.2 s.
    p = start(["monitor", "--insecure", "-l", "127.0.0.1:%d" % port, "-a", "127.0.0.1:%d" % api],
              os.path.join(tmp, "monitor.log"), env=mgr.env(watchdog_usec=400000))
    mgr.wait_for("READY=1")
    # Ready means served: the API answers at once.
    with socket.create_connection(("127.0.0.1", api), timeout=2):
        pass
    time.sleep(1.1)
    mgr.drain()
    n = sum(m == "WATCHDOG=1" for m in mgr.messages)
    # About five in 1.1 s; a slow machine may send fewer, never none.
    check(2 <= n <= 8, "%d keep-alives in 1.1 s at WATCHDOG_USEC=400000: %r" % (n, mgr.messages))
    p.send_signal(signal.SIGTERM)
    mgr.wait_for("STOPPING=1")
    check(p.wait(timeout=10) == 0, "the monitor did not exit cleanly")
    check(mgr.messages[0] == "READY=1", "READY=1 came first: %r" % mgr.messages)
    mgr.close()


def test_agent_ready_stopping_abstract_socket(tmp):
    # An abstract socket (NOTIFY_SOCKET=@name), as systemd in a container may use.
    mgr = Manager("\0vigil-test-notify-%d" % os.getpid())
    port = free_port()
    p = start(["agent", "--id", "n1", "--monitor", "127.0.0.1:%d" % port, "--interval", "100ms"],
              os.path.join(tmp, "agent.log"), env=mgr.env())
    mgr.wait_for("READY=1")
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    mgr.wait_for("STOPPING=1")
    check(p.wait(timeout=10) == 0, "the agent did not exit cleanly")
    check(mgr.messages == ["READY=1", "STOPPING=1"],
          "no watchdog asked for, so nothing but ready and stopping: %r" % mgr.messages)
    mgr.close()


def test_watchdog_of_another_process(tmp):
    # WATCHDOG_PID names another process (a hook that inherited the variables): no keep-alives.
    mgr = Manager(os.path.join(tmp, "notify.sock"))
    env = mgr.env(watchdog_usec=100000)
    env["WATCHDOG_PID"] = "1"
    p = start(["agent", "--id", "n2", "--monitor", "127.0.0.1:%d" % free_port(), "--interval",
               "100ms"], os.path.join(tmp, "agent.log"), env=env)
    mgr.wait_for("READY=1")
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    mgr.wait_for("STOPPING=1")
    p.wait(timeout=10)
    check("WATCHDOG=1" not in mgr.messages, "keep-alives for another pid: %r" % mgr.messages)
    mgr.close()


if __name__ == "__main__":
    run_tests([test_monitor_ready_watchdog_stopping, test_agent_ready_stopping_abstract_socket,
               test_watchdog_of_another_process])
