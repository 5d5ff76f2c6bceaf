#!/usr/bin/env bash
# Installs the Debian packages that building, running, testing, packaging and
# benchmarking vigil need (libsqlite3-dev for the monitor's state store,
# libsystemd-dev for the daemons' readiness notification to systemd, liburing-dev for
# bench_drain's io_uring receiver, dpkg-dev and file for `make deb`, groff-base and
# man-db to check the manual pages, serf only for bench/detect_vs_serf.py and
# bench/peer_vs_serf.py;
# prometheus for promtool, which lints the /metrics answer; chromium,
# chromium-driver and python3-selenium for the web page's browser test;
# etcd-server for the leader election test, test_leader.py; haproxy and
# prometheus-alertmanager for the action tests, test_actions.py).
# Idempotent: packages already present are not touched, and apt is only
# called when something is missing.
set -euo pipefail

pkgs=(
    build-essential make cmake pkg-config
    libsodium-dev libconfig-dev libjansson-dev libmicrohttpd-dev
    libcurl4-openssl-dev libcmocka-dev libsystemd-dev libsqlite3-dev liburing-dev
    dpkg-dev file groff-base man-db
    python3 procps iproute2 nftables curl clang-format util-linux openssl
    serf prometheus chromium chromium-driver python3-selenium
    etcd-server haproxy prometheus-alertmanager
)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
