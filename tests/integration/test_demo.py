#!/usr/bin/env python3
"""The README's first command: the demo (scripts/demo.sh) runs to its end and its checks pass.

It starts a real HAProxy in front of three web servers with a vigil agent
each, kills one, and checks that after the action no request failed or
reached it, and that it serves again once back (scripts/demo.py).
"""
import os
import subprocess
import sys

from vigil_harness import VIGIL, check, run_tests


def test_demo(tmp):
    here = os.path.dirname(os.path.abspath(__file__))
    demo = os.path.join(here, "..", "..", "scripts", "demo.sh")
    r = subprocess.run(["bash", demo, os.path.abspath(VIGIL)], capture_output=True, text=True,
                       timeout=240, cwd=tmp)
    sys.stdout.write("".join(l + "\n" for l in r.stdout.splitlines()
                             if l.startswith(("detection", "out of", "failed", "requests after"))))
    check(r.returncode == 0 and "every check passed" in r.stdout,
          "demo exited %d:\n%s\n%s" % (r.returncode, r.stdout[-3000:], r.stderr[-3000:]))


if __name__ == "__main__":
    run_tests([test_demo])
