#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Memory and scrape figures of one consumer under load: idle RSS, peak RSS
# (sampled from its own /metrics every 0.2 s), the time of a /metrics
# scrape (curl, connection included) while it works, and the wall time to
# finish N noop tasks (from the start of the submit, which runs alongside);
# once without memory.limit.bytes and once with it.
# The broker is a separate swarmq-mock-broker process, so the RSS is the
# consumer's own.
#
#   tests/bench/memory.sh [--build DIR] [--count N] [--limit BYTES]
#
# Defaults: --build build, --count 100000, --limit 50331648 (48 MiB).
# Prints a Markdown table (docs/operations.md, "Measured figures").
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/ops/lib.sh"
source "$root/tests/bench/lib.sh"

build=$root/build
count=100000
limit=50331648
while (($#)); do
        case $1 in
        --build) build=$(cd "$2" && pwd); shift 2 ;;
        --count) count=$2; shift 2 ;;
        --limit) limit=$2; shift 2 ;;
        -h | --help) sed -n '3,15p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        esac
done
command -v curl >/dev/null || { echo "memory.sh: needs curl" >&2; exit 2; }
bench_workdir membench

# scrape: one timed scrape of $url/metrics into times, rss into peak;
# succeeds once $count tasks finished.
scrape() {
        times+=("$(curl -s -o "$work/m.txt" -w '%{time_total}' "$url/metrics")")
        rss=$(awk '$1 == "process_resident_memory_bytes" { print $2 }' "$work/m.txt")
        ((rss > peak)) && peak=$rss
        done_cnt=$(awk '$1 ~ /^swarmq_tasks_total/ { s += $2 } END { printf "%d", s }' "$work/m.txt")
        echo "$done_cnt finished"
        ((done_cnt >= count))
}

# run LABEL [consumer args...]: prints one table row.
run() {
        local label=$1 bs url idle peak=0 rss done_cnt t0 t1 times=() n sorted
        shift
        rm -f "$work"/*.out
        "$build/tests/swarmq-mock-broker" --partitions 12 >"$work/mb.out" 2>"$work/mb.log" &
        pids+=($!)
        bs=$(sq_wait_line "$work/mb.out" bootstrap.servers 30)
        "$build/consumer/swarmq-consumer" -b "$bs" --http-port auto -i bench "$@" \
                >"$work/c.out" 2>"$work/c.log" &
        pids+=($!)
        url=$(sq_wait_line "$work/c.out" http.url 30)
        wait_until 60 "$url/readyz answers 200" --every 0.2 -- \
                value_is == 200 sq_http_status "$url/readyz"
        idle=$(curl -s "$url/metrics" | awk '$1 == "process_resident_memory_bytes" { print $2 }')
        "$build/producer/swarmq-producer" -b "$bs" -q submit --count "$count" --type noop \
                --payload-size 100 &
        local sub=$!
        t0=$(date +%s.%N)
        wait_until 600 "$count tasks finished" --every 0.2 -- scrape
        t1=$(date +%s.%N)
        wait "$sub"
        n=${#times[@]}
        sorted=$(printf '%s\n' "${times[@]}" | sort -n)
        printf '| %s | %.1f | %.1f | %.1f | %.0f | %.1f | %.1f | %s |\n' "$label" \
                "$(echo "$idle / 1048576" | bc -l)" "$(echo "$peak / 1048576" | bc -l)" \
                "$(echo "$t1 - $t0" | bc -l)" "$(echo "$count / ($t1 - $t0)" | bc -l)" \
                "$(echo "$(echo "$sorted" | sed -n "$((n / 2 + 1))p") * 1000" | bc -l)" \
                "$(echo "$(echo "$sorted" | tail -n 1) * 1000" | bc -l)" \
                "$(awk '$1 == "swarmq_memory_pauses_total" { print $2 }' "$work/m.txt")"
        bench_stop_pids # the consumer, then its broker
}

echo "$count noop tasks (100-byte payloads), 1 consumer, 4 executors, $(nproc) cores; build $build"
echo
echo "| memory.limit.bytes | idle RSS MiB | peak RSS MiB | seconds | tasks/s | /metrics median ms | /metrics max ms | memory pauses |"
echo "|---|---|---|---|---|---|---|---|"
run "none"
run "$limit" -X "memory.limit.bytes=$limit"
