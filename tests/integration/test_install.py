#!/usr/bin/env python3
"""What `cmake --install` puts on a machine, and that it works there.

Installs the build (the directory of VIGIL_BIN) under a temporary prefix and
checks: every file is there (vigil and the small agent program vigil-agent
among them); libvigil.so has its SONAME and exports exactly
the installed headers' functions; `pkg-config --cflags --libs vigil` builds
examples/embed_heartbeat.c against the installed library, shared and
static, and the program sends its heartbeats; the systemd units name the
prefix's program and are what systemd accepts; the manual pages render
without a warning. Then the same with DESTDIR, which stages the files
without changing the paths they name.
"""
import glob
import os
import re
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from vigil_harness import VIGIL, check, run_tests, sanitized  # noqa: E402

SRC = os.environ.get("VIGIL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.path.abspath(VIGIL))

# An application linked with a sanitized libvigil is built with the same sanitizers.
CC = ["cc", "-std=gnu11"] + (["-fsanitize=address,undefined"] if sanitized() else [])
HEADERS = sorted(os.path.basename(h) for h in glob.glob(os.path.join(SRC, "include/vigil/*.h")))


def run(args, env=None, cwd=None, timeout=120):
    """Runs args; fails the test with its output unless it exits 0. Returns stdout."""
    r = subprocess.run(args, env=env, cwd=cwd, timeout=timeout, capture_output=True, text=True)
    check(r.returncode == 0, "%s exited %d:\n%s%s" % (" ".join(args), r.returncode, r.stdout,
                                                      r.stderr))
    return r.stdout


def install(prefix, destdir=None):
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir:
        env["DESTDIR"] = destdir
    run(["cmake", "--install", BUILD, "--prefix", prefix], env=env)


def libdir_of(root):
    """The directory that holds libvigil.so (lib, or lib/<multiarch>)."""
    found = glob.glob(os.path.join(root, "lib*", "libvigil.so")) + \
        glob.glob(os.path.join(root, "lib*", "*", "libvigil.so"))
    check(len(found) == 1, "libvigil.so installed once under %s: %s" % (root, found))
    return os.path.dirname(found[0])


def check_files(root, prefix):
    """The installed tree under root (which is prefix, or DESTDIR + prefix)."""
    lib = libdir_of(root)
    for f in ["bin/vigil", "bin/vigil-agent", "share/man/man1/vigil.1", "share/man/man5/vigil.conf.5",
              "lib/systemd/system/vigil-monitor.service",
              "lib/systemd/system/vigil-agent.service",
              "lib/systemd/system/vigil-peer.service",
              "share/doc/vigil/examples/vigil.conf"] + ["include/vigil/" + h for h in HEADERS]:
        check(os.path.isfile(os.path.join(root, f)), "missing: %s" % f)
    for prog in ["bin/vigil", "bin/vigil-agent"]:
        check(os.access(os.path.join(root, prog), os.X_OK), "%s is not executable" % prog)
    for f in ["libvigil.a", "libvigil.so", "libvigil.so.0", "pkgconfig/vigil.pc"]:
        check(os.path.exists(os.path.join(lib, f)), "missing: %s/%s" % (lib, f))
    check(os.path.realpath(os.path.join(lib, "libvigil.so")) ==
          os.path.realpath(os.path.join(lib, "libvigil.so.0")),
          "libvigil.so and libvigil.so.0 are not the same library")
    # The paths the files name are the prefix's, never the staging directory's.
    pc = open(os.path.join(lib, "pkgconfig/vigil.pc")).read()
    check(re.search(r"^prefix=%s$" % re.escape(prefix), pc, re.M), "vigil.pc:\n" + pc)
    # The agent's unit runs the small agent program (it hands over to `vigil agent` itself).
    for unit, cmd in [("vigil-monitor", "vigil monitor"), ("vigil-agent", "vigil-agent"),
                      ("vigil-peer", "vigil peer")]:
        text = open(os.path.join(root, "lib/systemd/system/%s.service" % unit)).read()
        want = "ExecStart=%s/bin/%s -c /etc/vigil/vigil.conf" % (prefix, cmd)
        check(want in text.splitlines(), "%s.service has no line '%s'" % (unit, want))
        for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=vigil",
                     "LogsDirectory=vigil", "ConfigurationDirectory=vigil", "User=vigil",
                     "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                     "PrivateTmp=yes", "WatchdogSec=30s"]:
            check(line in text.splitlines(), "%s.service has no line '%s'" % (unit, line))
        check(not re.search(r"@[A-Z_]+@", text), "%s.service has an unfilled @VAR@" % unit)
    return lib


def test_install_prefix(tmp):
    prefix = os.path.join(tmp, "prefix")
    install(prefix)
    lib = check_files(prefix, prefix)

    out = run([os.path.join(prefix, "bin/vigil"), "--version"])
    check(out.startswith("vigil "), "vigil --version: %r" % out)
    out = run([os.path.join(prefix, "bin/vigil-agent"), "--version"])
    check(out.startswith("vigil-agent "), "vigil-agent --version: %r" % out)
    # The small agent maps none of the full program's HTTP, TLS, JSON or SQLite libraries.
    ldd = subprocess.run(["ldd", os.path.join(prefix, "bin/vigil-agent")], capture_output=True,
                         text=True).stdout
    for name in ["libcurl", "libmicrohttpd", "libjansson", "libsqlite3", "libgnutls"]:
        check(name not in ldd, "vigil-agent links %s:\n%s" % (name, ldd))

    # The shared library: its SONAME, and exactly the public API exported.
    so = os.path.join(lib, "libvigil.so")
    dyn = run(["objdump", "-p", so])
    check(re.search(r"SONAME\s+libvigil\.so\.0\b", dyn), "no SONAME libvigil.so.0:\n" + dyn)
    run([sys.executable, os.path.join(SRC, "tests/abi/check_exports.py"), "nm", so,
         os.path.join(prefix, "include/vigil")])

    # An application built with pkg-config against the installed library.
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(lib, "pkgconfig"))
    env.pop("PKG_CONFIG_LIBDIR", None)
    flags = run(["pkg-config", "--cflags", "--libs", "vigil"], env=env).split()
    check("-lvigil" in flags, "pkg-config --libs vigil: %s" % flags)
    example = os.path.join(prefix, "share/doc/vigil/examples/embed_heartbeat.c")
    shared = os.path.join(tmp, "embed_shared")
    run(CC + ["-Wall", "-Wextra", "-Werror", "-o", shared, example] + flags, env=env)
    # Static: libvigil.a and what it needs, from Libs.private and Requires.private.
    static_flags = run(["pkg-config", "--static", "--cflags", "--libs", "vigil"], env=env).split()
    static_flags = ["-l:libvigil.a" if f == "-lvigil" else f for f in static_flags]
    static = os.path.join(tmp, "embed_static")
    run(CC + ["-o", static, example] + static_flags, env=env)

    run_env = dict(os.environ, LD_LIBRARY_PATH=lib)
    ldd = run(["ldd", shared], env=run_env)
    check(re.search(r"libvigil\.so\.0 => %s/" % re.escape(lib), ldd),
          "the example does not load the installed libvigil:\n" + ldd)
    check("libvigil" not in run(["ldd", static]), "the static example loads libvigil.so")
    for prog in (shared, static):
        # Its heartbeats reach a socket standing in for a monitor: two heartbeats, then the goodbye.
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(10)
        out = run([prog, "app1", "127.0.0.1:%d" % rx.getsockname()[1], "2"], env=run_env,
                  timeout=30)
        check("goodbye sent" in out, "%s:\n%s" % (prog, out))
        got = [rx.recv(2048) for _ in range(3)]
        rx.close()
        check(all(b"app1" in d for d in got), "datagrams without the id: %r" % got)

    # systemd's own check of the units, where systemd is installed.
    if shutil.which("systemd-analyze"):
        units = glob.glob(os.path.join(prefix, "lib/systemd/system/*.service"))
        # Documentation=man:... is looked up in the installed pages.
        r = subprocess.run(["systemd-analyze", "verify"] + units, capture_output=True, text=True,
                           timeout=60,
                           env=dict(os.environ, MANPATH=os.path.join(prefix, "share/man")))
        # Only complaints about the units themselves count (not the host's other units).
        bad = [line for line in (r.stdout + r.stderr).splitlines() if "vigil-" in line]
        check(r.returncode == 0 and not bad, "systemd-analyze verify:\n" + r.stdout + r.stderr)

    # The manual pages render without a warning.
    for page in ["share/man/man1/vigil.1", "share/man/man5/vigil.conf.5"]:
        path = os.path.join(prefix, page)
        r = subprocess.run(["groff", "-man", "-ww", "-z", path], capture_output=True, text=True)
        check(r.returncode == 0 and not r.stderr, "groff %s:\n%s" % (page, r.stderr))
        if shutil.which("man"):
            r = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                               env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0"))
            check(r.returncode == 0 and not r.stderr and "vigil" in r.stdout,
                  "man -l %s:\n%s" % (page, r.stderr))


def test_install_destdir(tmp):
    # make install PREFIX=/usr DESTDIR=...: staged under DESTDIR, naming /usr.
    stage = os.path.join(tmp, "stage")
    install("/usr", destdir=stage)
    check_files(os.path.join(stage, "usr"), "/usr")
    check(os.listdir(stage) == ["usr"], "outside DESTDIR/usr: %s" % os.listdir(stage))


if __name__ == "__main__":
    run_tests([test_install_prefix, test_install_destdir])
