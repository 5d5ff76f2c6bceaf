#!/usr/bin/env bash
# The demo: a monitor and three agents on this machine, on the embedded
# defaults (phi accrual detector, 1 s heartbeats). Kills one agent, shows the
# failure event and what the hook did, brings the agent back, shows the
# recovery, and stops everything it started.
#
#   scripts/demo.sh [VIGIL]      VIGIL: the program (default build/vigil;
#                                a name without a slash is looked up in PATH)
#
# Safe to run anywhere: it listens on loopback only, on ports it finds free
# (or VIGIL_DEMO_PORT and VIGIL_DEMO_API_PORT, refused if taken), talks only
# to the monitor it started, and removes its temporary directory when it
# ends, Ctrl-C included (VIGIL_DEMO_KEEP=1 keeps it, for the logs).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
prog="${1:-$here/../build/vigil}"
case "$prog" in
*/*) VIGIL="$(cd "$(dirname "$prog")" && pwd)/$(basename "$prog")" ;;
*) VIGIL="$(command -v "$prog" || true)" ;;
esac
if [ ! -x "$VIGIL" ]; then
    echo "demo: no vigil program at '$prog' (build it with make build, or give its path)" >&2
    exit 2
fi
HOOK="$here/demo-hook.sh"
DIR="$(mktemp -d "${TMPDIR:-/tmp}/vigil-demo.XXXXXX")"
export VIGIL_DEMO_DIR="$DIR"
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
finish() {
    local rc=$?
    cleanup
    if [ "$rc" -ne 0 ] && [ -z "$interrupted" ] && [ -s "$DIR/monitor.log" ]; then
        echo "demo: failed; the monitor's log ends with:" >&2
        tail -n 20 "$DIR/monitor.log" >&2
    fi
    if [ "${VIGIL_DEMO_KEEP:-0}" = 1 ]; then
        echo "demo: logs kept in $DIR"
    else
        rm -rf "$DIR"
    fi
    exit "$rc"
}
interrupted=
trap finish EXIT
trap 'interrupted=1; exit 130' INT
trap 'interrupted=1; exit 143' TERM

command -v python3 >/dev/null || { echo "demo: needs python3 (scripts/install-deps.sh installs it)" >&2; exit 2; }

# Is port $1 free on 127.0.0.1 for UDP and TCP both (the heartbeats and the API)?
port_free() {
    python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
PY
}

# A port the kernel hands out as free (port 0), free for UDP and TCP alike.
pick_port() {
    local i p
    for ((i = 0; i < 50; i++)); do
        p=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        if port_free "$p" && [ "$p" != "${udp_port:-}" ]; then
            echo "$p"
            return 0
        fi
    done
    echo "demo: found no free port on 127.0.0.1" >&2
    return 1
}

if [ -n "${VIGIL_DEMO_PORT:-}" ]; then
    udp_port=$VIGIL_DEMO_PORT
    port_free "$udp_port" || { echo "demo: port $udp_port (VIGIL_DEMO_PORT) is taken on 127.0.0.1; choose another, or leave VIGIL_DEMO_PORT unset" >&2; exit 1; }
else
    udp_port=$(pick_port)
fi
if [ -n "${VIGIL_DEMO_API_PORT:-}" ]; then
    api_port=$VIGIL_DEMO_API_PORT
    port_free "$api_port" || { echo "demo: port $api_port (VIGIL_DEMO_API_PORT) is taken on 127.0.0.1; choose another, or leave VIGIL_DEMO_API_PORT unset" >&2; exit 1; }
else
    api_port=$(pick_port)
fi
UDP="127.0.0.1:$udp_port"
API="127.0.0.1:$api_port"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Waits (at most $3 seconds) until node $1 is in state $2.
wait_state() {
    local i
    for ((i = 0; i < $3 * 5; i++)); do
        if "$VIGIL" status --api "$API" --json "$1" 2>/dev/null | grep -q "\"state\": *\"$2\""; then
            return 0
        fi
        sleep 0.2
    done
    echo "demo: $1 did not become $2 within $3 s" >&2
    return 1
}

say "making keys: a master key for the monitor, a node key for each agent"
"$VIGIL" keygen -o "$DIR/master.key"
for n in web1 web2 web3; do
    "$VIGIL" keygen --node "$n" --master "$DIR/master.key" -o "$DIR/$n.key"
done
ls "$DIR"/*.key

say "starting a monitor (log: $DIR/monitor.log)"
"$VIGIL" monitor --listen "$UDP" --api "$API" --key-file "$DIR/master.key" --hook "$HOOK" \
    >"$DIR/monitor.log" 2>&1 &
monitor_pid=$!
pids+=($!)
# Up when its start-up line is out: both ports are bound by then, so the
# API on $API is this monitor's and no other's.
for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$monitor_pid" 2>/dev/null; then
        echo "demo: the monitor did not start (another program may have taken its port):" >&2
        cat "$DIR/monitor.log" >&2
        exit 1
    fi
    grep -q 'listening on' "$DIR/monitor.log" && break
    sleep 0.1
done
"$VIGIL" status --api "$API" >/dev/null
head -n 1 "$DIR/monitor.log"

say "starting three agents: web1 web2 web3 (heartbeat every 1 s)"
declare -A agent
for n in web1 web2 web3; do
    "$VIGIL" agent --id "$n" --monitor "$UDP" --key-file "$DIR/$n.key" --set role=web \
        >"$DIR/agent-$n.log" 2>&1 &
    agent[$n]=$!
    pids+=($!)
done
for n in web1 web2 web3; do wait_state "$n" alive 15; done
sleep 3 # let the detector learn a few intervals
"$VIGIL" status --api "$API"
echo "rotation: $(tr '\n' ' ' <"$DIR/rotation")"

say "killing web2 (SIGKILL): no goodbye, heartbeats just stop"
{
    kill -KILL "${agent[web2]}"
    wait "${agent[web2]}"
} 2>/dev/null || true
t0=$(date +%s%N)
wait_state web2 dead 30
t1=$(date +%s%N)
echo "web2 declared dead $(((t1 - t0) / 1000000)) ms after the kill"
"$VIGIL" status --api "$API"

say "the failure event, with its evidence"
"$VIGIL" events --api "$API" | grep web2

say "what the hook did (from the monitor's output)"
sleep 0.5
grep '\[hook\]' "$DIR/monitor.log" | grep web2 || true
echo "rotation: $(tr '\n' ' ' <"$DIR/rotation")"

say "bringing web2 back (a new boot generation)"
"$VIGIL" agent --id web2 --monitor "$UDP" --key-file "$DIR/web2.key" --set role=web \
    >>"$DIR/agent-web2.log" 2>&1 &
pids+=($!)
wait_state web2 alive 15
"$VIGIL" events --api "$API" | grep web2 | tail -n 1
sleep 0.5
grep '\[hook\]' "$DIR/monitor.log" | grep web2 | tail -n 1 || true
echo "rotation: $(tr '\n' ' ' <"$DIR/rotation")"
"$VIGIL" status --api "$API"

say "stopping: agents say goodbye (left, not dead), then the monitor stops"
for p in "${pids[@]}"; do
    [ "$p" = "$monitor_pid" ] || kill -TERM "$p" 2>/dev/null || true
done
sleep 1
kill -TERM "$monitor_pid"
cleanup
pids=()
grep -E 'left|stopping' "$DIR/monitor.log" || true
echo
echo "demo finished"
