#!/usr/bin/env python3
"""A bad configuration stops start-up with the file, the line and the reason."""
import os
import subprocess

from vigil_harness import VIGIL, check, run_tests

CASES = [
    # (config text, line of the mistake, words the message must contain)
    ("monitor = {\n  heartbeat_interval = \"1s\";\n  detector = { type = \"fixed\";\n"
     "    suspect_after = \"1200ms\";\n    dead_after = \"1500ms\"; };\n};\n", 5, "dead_after"),
    ("monitor = {\n  rise = 2;\n  bogus_setting = 1;\n};\n", 3, "bogus_setting"),
    ("monitor = {\n  rise = 2;\n  api = = 1;\n};\n", 3, "syntax"),
    ("monitor = {\n  rise = 2;\n  api = 1;\n};\n", 3, "api"),
    ("monitor = {\n  nodes = [ \"web1\", \"bad id!\" ];\n};\n", 2, "bad id!"),
    ("monitor = {\n  detector = { type = \"magic\"; };\n};\n", 2, "magic"),
]


def test_bad_configs_refused(tmp):
    for i, (text, line, words) in enumerate(CASES):
        path = os.path.join(tmp, "bad%d.conf" % i)
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([VIGIL, "monitor", "-c", path, "--listen", "127.0.0.1:0",
                            "--api", "off"], capture_output=True, timeout=10)
        err = r.stderr.decode(errors="replace")
        check(r.returncode == 2, "case %d: exit %d, stderr %r" % (i, r.returncode, err))
        check(path in err, "case %d: file not named: %r" % (i, err))
        if line is not None:
            check("%s:%d:" % (path, line) in err, "case %d: line %d not named: %r" % (i, line, err))
        check(words in err, "case %d: %r not in %r" % (i, words, err))


def test_bad_flags_refused(tmp):
    r = subprocess.run([VIGIL, "agent", "--monitor", "127.0.0.1:1", "--id", "no spaces"],
                       capture_output=True, timeout=10)
    check(r.returncode == 2, "agent with a bad id: exit %d" % r.returncode)
    r = subprocess.run([VIGIL, "monitor", "--detector", "nope"], capture_output=True, timeout=10)
    check(r.returncode == 2, "monitor with a bad detector: exit %d" % r.returncode)


# Every subcommand that reads a configuration file, as it is given one.
READERS = [
    ["monitor", "-c", "{}", "--listen", "127.0.0.1:0", "--api", "off"],
    ["agent", "-c", "{}"],
    ["status", "-c", "{}"],
    ["events", "-c", "{}"],
    ["tune", "-c", "{}"],
    ["explain", "-c", "{}", "web1"],
    ["keys", "reload", "-c", "{}"],
    ["set", "-c", "{}", "k=v"],
    ["sim", "-c", "{}", "--nodes", "2", "--duration", "10s"],
]


def test_same_exit_code_everywhere(tmp):
    """The same bad file: exit 2 and FILE:LINE on standard error, whichever command reads it."""
    key = os.path.join(tmp, "loose.key")
    r = subprocess.run([VIGIL, "keygen", "-o", key], capture_output=True, timeout=10)
    check(r.returncode == 0, "keygen: %r" % r.stderr)
    os.chmod(key, 0o644)  # readable by others: refused
    # A key file is read only by the role it belongs to (one file can serve
    # both roles on hosts that hold only their own key): the monitor's bad
    # key stops the monitor, and the agent's bad key the agent.
    bad = [
        ("syntax", 'monitor = {\n  rise = 2;\n  api = = 1;\n};\n', 3, READERS),
        ("unknown", 'monitor = {\n  rise = 2;\n  bogus_setting = 1;\n};\n', 3, READERS),
        ("key", 'monitor = {\n  key_file = "%s";\n};\n' % key, 2,
         [READERS[0], ["monitor", "--check", "-c", "{}"]]),
        ("agentkey", 'agent = {\n  id = "a";\n  key_file = "%s";\n};\n' % key, 3,
         [READERS[1]]),
    ]
    for name, text, line, readers in bad:
        path = os.path.join(tmp, "%s.conf" % name)
        with open(path, "w") as f:
            f.write(text)
        for args in readers:
            argv = [VIGIL] + [a.replace("{}", path) for a in args]
            r = subprocess.run(argv, capture_output=True, timeout=20)
            err = r.stderr.decode(errors="replace")
            what = "%s with the %s file" % (" ".join(args[:2]), name)
            check(r.returncode == 2, "%s: exit %d, stderr %r" % (what, r.returncode, err))
            check("%s:%d:" % (path, line) in err, "%s: %s:%d not named: %r" % (what, path, line, err))
    # A runtime failure is 1: a good file whose monitor is not there.
    path = os.path.join(tmp, "good.conf")
    with open(path, "w") as f:
        f.write('monitor = {\n  api = "127.0.0.1:1";\n};\n')
    for args in (["status", "-c", path], ["events", "-c", path], ["explain", "-c", path, "web1"]):
        r = subprocess.run([VIGIL] + args, capture_output=True, timeout=20)
        check(r.returncode == 1, "%s with no monitor: exit %d" % (args[0], r.returncode))


def test_one_file_both_roles(tmp):
    """One file with both sections: each role reads only its own key, so a node
    without the master key and a monitor without a node key both start."""
    path = os.path.join(tmp, "both.conf")
    with open(path, "w") as f:
        f.write('monitor = {\n  key_file = "%s/absent-master.key";\n};\n'
                'agent = {\n  id = "a";\n  monitors = [ "127.0.0.1:9" ];\n'
                '  key_file = "%s/absent-node.key";\n  interval = "1s";\n};\n' % (tmp, tmp))
    r = subprocess.run([VIGIL, "agent", "-c", path], capture_output=True, timeout=20)
    err = r.stderr.decode(errors="replace")
    check(r.returncode == 2 and "absent-node.key" in err and "absent-master" not in err,
          "agent: %d %r" % (r.returncode, err))
    r = subprocess.run([VIGIL, "monitor", "--check", "-c", path], capture_output=True, timeout=20)
    err = r.stderr.decode(errors="replace")
    check(r.returncode == 2 and "absent-master.key" in err and "absent-node" not in err,
          "monitor: %d %r" % (r.returncode, err))


def test_long_arguments_bounded(tmp):
    """A 10 kB argument, or one with a terminal escape, is shown cut and escaped, never whole."""
    big = "x" * 10240
    evil = "\x1b[2J\x1b[31mred\nforged line"
    path = os.path.join(tmp, "long.conf")
    with open(path, "w") as f:
        f.write('monitor = {\n  nodes = [ "%s" ];\n};\n' % (big + "!"))
    for arg in (big, evil):
        cases = [
            [arg],
            ["status", arg],
            ["explain", arg],
            ["events", "--since", arg],
            ["events", "--limit", arg],
            ["agent", "--interval", arg],
            ["monitor", "--interval", arg],
            ["keygen", "--node", arg, "--master", "/nonexistent"],
            ["set", "--status-file", os.path.join(tmp, "s"), arg],
            ["sim", "--loss", arg],
            ["monitor", "-c", path],
        ]
        for args in cases:
            r = subprocess.run([VIGIL] + args, capture_output=True, timeout=20)
            err = r.stderr.decode(errors="replace")
            what = " ".join(a[:12] for a in args)
            check(r.returncode == 2, "%s: exit %d" % (what, r.returncode))
            first = err.split("\n")[0]
            check(len(first) < 400, "%s: a line of %d bytes: %r" % (what, len(first), first[:200]))
            check("\x1b" not in err, "%s: a control character printed: %r" % (what, err))
            check("forged line" not in err or "\\nforged line" in err,
                  "%s: the newline was not escaped: %r" % (what, err))


if __name__ == "__main__":
    run_tests([test_one_file_both_roles, test_bad_configs_refused, test_bad_flags_refused,
               test_same_exit_code_everywhere, test_long_arguments_bounded])
