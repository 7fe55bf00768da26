#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs what swarmq needs to build and test on Debian bookworm (run as
# root). Idempotent and quick when everything is present: apt-get runs only
# when a package is missing.
#
#   ops/deps.sh          build dependencies (the demo needs only these)
#   ops/deps.sh --test   plus what the test suite uses (kcat, valgrind,
#                        promtool from the prometheus package, python3 with
#                        venv, clang-format, chromium + chromium-driver
#                        for the status page test, clang with libFuzzer,
#                        systemd-analyze, Java 17 (JDK) + Maven for the
#                        real Apache Kafka broker of tests/broker/ and
#                        clients/java, and the
#                        peers of ops/bench.sh jobqueues: redis-server,
#                        Celery and Sidekiq, and the Apicurio Registry that
#                        ops/registry.sh runs for the schema registry
#                        tests, fetched into its cache; the Python venv
#                        of ops/venv.sh with the peers and the Python
#                        client's test tools from PyPI; Go for clients/go,
#                        ops/go.sh, and its modules), and the Kafka
#                        broker's jars of every version the suite runs
#                        (4.4.0 and 3.9.1, ops/kafka.sh fetch; cached in
#                        ~/.cache/swarmq, quick once there)
#   ops/deps.sh --bench  what --test installs, plus gnuplot-nox for the
#                        PNG plots of ops/bench.sh (tests/bench/plot.sh;
#                        without it the suite writes its tables only).
#                        Not part of --test, so CI installs no plotting.
set -euo pipefail

mode=${1:-}
case $mode in
"" | --test | --bench) ;;
-h | --help) sed -n '3,/^set -e/{/^set -e/d;p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*)
        echo "deps: unknown option '$mode' (none, --test or --bench; see ops/deps.sh --help)" >&2
        exit 2
        ;;
esac

build_pkgs=(build-essential cmake pkg-config librdkafka-dev libavro-dev
            libmicrohttpd-dev libjansson-dev libssl-dev libcmocka-dev
            libcurl4-openssl-dev libjemalloc-dev)
test_pkgs=(kcat valgrind prometheus python3 python3-venv curl clang-format
           chromium chromium-driver clang libclang-rt-14-dev systemd
           redis-server python3-celery python3-redis ruby-sidekiq)
# A JDK or Maven that is already there (from any source) is used as is.
# A JDK, not only a JRE: Maven compiles clients/java.
command -v javac >/dev/null 2>&1 || test_pkgs+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || test_pkgs+=(maven)

# The benchmarks' plots (Debian's gnuplot without X).
bench_pkgs=(gnuplot-nox)

pkgs=("${build_pkgs[@]}")
if [[ "$mode" == --test || "$mode" == --bench ]]; then
        pkgs+=("${test_pkgs[@]}")
fi
if [[ "$mode" == --bench ]]; then
        pkgs+=("${bench_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
                grep -q "install ok installed"; then
                missing+=("$p")
        fi
done

# fetch_registry: the Schema Registry of the tests (label registry), once;
# and the jars of the real Kafka broker (label broker), every version.
fetch_registry() {
        [[ "$mode" == --test || "$mode" == --bench ]] || return 0
        bash "$(dirname "${BASH_SOURCE[0]}")/registry.sh" fetch
        bash "$(dirname "${BASH_SOURCE[0]}")/kafka.sh" fetch --kafka-version all
        # The clients' test tools: the venv (pip) of the Python client and
        # the peers; a Go new enough for clients/go (ops/go.sh) and its
        # modules from the Go module proxy.
        local here go
        here=$(dirname "${BASH_SOURCE[0]}")
        bash "$here/venv.sh" >/dev/null
        go=$(bash "$here/go.sh" | tail -n 1)
        (cd "$here/../clients/go" && "$go" mod download)
}

if ((${#missing[@]} == 0)); then
        echo "deps: all ${#pkgs[@]} packages present"
        fetch_registry
        exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
        SUDO=sudo
else
        SUDO=
fi
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
fetch_registry
