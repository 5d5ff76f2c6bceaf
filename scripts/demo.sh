#!/usr/bin/env bash
# The demo (scripts/demo.py): HAProxy in front of three web servers, each
# watched by a vigil agent; a node is killed, taken out of HAProxy, brought
# back and put in again, with the times and failed requests printed.
#
#   scripts/demo.sh [VIGIL]      VIGIL: the program (default build/vigil)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec python3 "$here/demo.py" "${1:-$here/../build/vigil}"
