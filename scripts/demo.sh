#!/usr/bin/env bash
# The demo: a monitor and three agents on this machine, on the embedded
# defaults (phi accrual detector, 1 s heartbeats). Kills one agent, shows the
# failure event and what the hook did, brings the agent back, shows the
# recovery, and stops everything it started.
set -euo pipefail

VIGIL="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
HOOK="$(cd "$(dirname "$0")" && pwd)/demo-hook.sh"
DIR="$(mktemp -d /tmp/vigil-demo.XXXXXX)"
export VIGIL_DEMO_DIR="$DIR"
UDP="127.0.0.1:${VIGIL_DEMO_PORT:-7946}"
API="127.0.0.1:${VIGIL_DEMO_API_PORT:-7947}"
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

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
for ((i = 0; i < 50; i++)); do
    "$VIGIL" status --api "$API" >/dev/null 2>&1 && break
    sleep 0.1
done
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
echo "demo finished; logs are in $DIR"
