#!/usr/bin/env bash
# Runs vigil's benchmarks with their defaults and prints everything they
# print; docs/performance.md explains what each figure means.
#
#   bash bench/run.sh BUILD_DIR        (make bench does this with BUILD_DIR=build)
#
# The benchmarks never fail on speed: they print figures and the targets
# beside them. This script fails only if a benchmark is missing or could
# not run. Every program runs under timeout(1), so the whole run is
# bounded: bench_ingest takes about 50 s (three rounds of two 5 s phases,
# then 2 s of the in-memory phase and five streams of about 2 s with and
# without sealing), bench_memory about 10 s, bench_checks about 50 s (10,000
# health checks a second against local TCP and HTTP servers, then the same
# load on a bare libcurl loop, 3 s of warm-up and 20 s measured each),
# agent_footprint.py about 25 s (the small agent vigil-agent, then `vigil
# agent`, each idle for 10 s after 2 s of warm-up: resident memory, CPU,
# bytes a second), bench_drain about 90 s (five receivers, each filled
# with 4 s of a 100,000-node fleet three times and drained); the limits
# below add up to under eight minutes.
#
# Not run here, because it takes about 15 minutes and needs root and Serf:
# bench/detect_vs_serf.py compares vigil's detection time with Serf's at the
# same bytes per second, in network namespaces with nftables loss
# (make bench-serf, or sudo python3 bench/detect_vs_serf.py --help), and
# bench/peer_vs_serf.py runs `vigil peer` members beside Serf agents the same
# way, at the same loss, for detection times, false failures and bytes/s per
# member (about 11 minutes; make bench-peer-serf, or --help).
#
# Not run here either, because each takes minutes:
# bench/takeover.py times how long redundant monitors go without a leader
# after the leader is SIGKILLed or resigns (needs etcd; about 4 minutes
# with its defaults: python3 bench/takeover.py --help), and
# bench/store_ingest.py measures what a real `vigil monitor` takes in with
# and without its state store, with bench/ingest_sender.c (built here as
# BUILD_DIR/ingest_sender) as the sender (about 6 minutes:
# python3 bench/store_ingest.py --help), bench/whole_path.py runs the
# real monitor against a fleet of a million simulated agents from
# bench/fleet_sender.c for minutes (python3 bench/whole_path.py --help),
# and bench/actions.py measures
# webhooks delivered under a flow of failures, with and without the
# outbox (about 1 minute: python3 bench/actions.py --help).
set -u

build=${1:-}
if [ -z "$build" ]; then
    echo "usage: bash bench/run.sh BUILD_DIR" >&2
    exit 2
fi
for b in bench_ingest bench_drain bench_memory bench_checks vigil vigil-agent; do
    if [ ! -x "$build/$b" ]; then
        echo "run.sh: $build/$b not found; build first (make build)" >&2
        exit 1
    fi
done

# Limits in seconds: about twice each benchmark's usual run time, and
# 90 + 5 + 180 + 5 + 30 + 5 + 90 + 5 + 60 + 5 = 475 s at most in all, kills included.
INGEST_LIMIT=90
DRAIN_LIMIT=180
MEMORY_LIMIT=30
CHECKS_LIMIT=90
AGENT_LIMIT=60

status=0
echo "== vigil benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "== load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "== bench_ingest: monitor ingest over loopback UDP, against the bare receive loop"
timeout --kill-after=5 "$INGEST_LIMIT" "$build/bench_ingest"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "bench_ingest: exit status $rc" >&2
    status=1
fi
echo
echo "== bench_drain: the receive path at the limit of its cores (one core, then two)"
timeout --kill-after=5 "$DRAIN_LIMIT" "$build/bench_drain"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "bench_drain: exit status $rc" >&2
    status=1
fi
echo
echo "== bench_memory: monitor memory per node"
timeout --kill-after=5 "$MEMORY_LIMIT" "$build/bench_memory"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "bench_memory: exit status $rc" >&2
    status=1
fi
echo
echo "== bench_checks: health checks per second on one core, against a bare libcurl loop"
timeout --kill-after=5 "$CHECKS_LIMIT" "$build/bench_checks"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "bench_checks: exit status $rc" >&2
    status=1
fi
echo
echo "== agent_footprint: an idle agent's memory, CPU and bytes, vigil-agent beside vigil agent"
timeout --kill-after=5 "$AGENT_LIMIT" python3 "$(dirname "$0")/agent_footprint.py" \
    --build "$build" --seconds 10
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "agent_footprint: exit status $rc" >&2
    status=1
fi
exit "$status"
