#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Throughput benchmark on the mock cluster: the raw librdkafka ceiling
# (tests/bench/raw_pipe.c: read a record, produce K records, no swarmq
# code) and swarmq with noop tasks, side by side in one run on one broker,
# so the ratio is meaningful on a shared, noisy machine.
#
#   tests/bench/run.sh [--count N] [--threads T] [--write]
#
# --write appends the figures to docs/benchmarks.md. Builds Release into
# ./build-bench first.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/ops/lib.sh"

count=100000
threads=4
write=0
while (($#)); do
        case $1 in
        --count) count=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --write) write=1; shift ;;
        -h | --help)
                sed -n '3,14p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        esac
done

"$root/ops/deps.sh"
"$root/ops/build.sh" "$root/build-bench" -DCMAKE_BUILD_TYPE=Release -DSWARMQ_TESTS=ON
b=$root/build-bench
work=$(mktemp -d /tmp/swarmq-bench.XXXXXX)
pids=()
# Stop in reverse order: consumers before the broker they need to close.
cleanup() {
        local i
        for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
                kill -TERM "${pids[i]}" 2>/dev/null || true
                wait "${pids[i]}" 2>/dev/null || true
        done
}
trap cleanup EXIT

"$b/tests/swarmq-mock-broker" --partitions 12 \
        --topic swarmq-tasks --topic swarmq-tasks-critical --topic swarmq-tasks-retry \
        --topic swarmq-tasks-dlt --topic swarmq-results --topic swarmq-events \
        --topic raw1 --topic raw1-out --topic raw4 --topic raw4-out \
        >"$work/broker.out" 2>"$work/broker.log" &
pids+=($!)
bootstrap=$(sq_wait_line "$work/broker.out" bootstrap.servers 30)
echo "bench: mock broker at $bootstrap, $count records, 12 partitions"

raw1=$("$b/tests/bench/raw_pipe" -b "$bootstrap" -n "$count" -k 1 -s 100 -t raw1)
echo "bench: $raw1"
raw4=$("$b/tests/bench/raw_pipe" -b "$bootstrap" -n "$count" -k 4 -s 100 -t raw4)
echo "bench: $raw4"

echo "bench: submitting $count noop tasks"
"$b/producer/swarmq-producer" -b "$bootstrap" -q submit --count "$count" \
        --type noop --priority NORMAL --id-prefix bench

"$b/consumer/swarmq-consumer" -b "$bootstrap" --http-port auto -i bench \
        -X executor.threads="$threads" -l warning \
        >"$work/consumer.out" 2>"$work/consumer.log" &
pids+=($!)
http=$(sq_wait_line "$work/consumer.out" http.url 30)

# Sample the finished-task counter: time from the first finished task to
# the last acknowledged one, the span raw_pipe measures (from the first
# record consumed to the last output acknowledged; group join excluded).
# A task counts once its result and terminal event are acknowledged by the
# broker: finished, and no longer in the in-flight window.
finished() {
        sq_http_get "$http/metrics" | awk '
                $1 ~ /^swarmq_tasks_total/ { s += $2 }
                $1 ~ /^swarmq_tasks_in_flight/ { f += $2 }
                END { printf "%d\n", (f > 0 ? s - f : s) }'
}
t_first=
deadline=$(($(date +%s) + 600))
while :; do
        n=$(finished)
        now=$(date +%s.%N)
        if [[ -z "$t_first" ]] && ((n > 0)); then
                t_first=$now
                n_first=$n
        fi
        if ((n >= count)); then
                t_last=$now
                break
        fi
        if (($(date +%s) > deadline)); then
                echo "bench: swarmq did not finish $count tasks in 600 s ($n done)" >&2
                exit 1
        fi
        sleep 0.02
done
swarmq=$(awk -v n="$count" -v f="$n_first" -v a="$t_first" -v z="$t_last" \
        'BEGIN { printf "%.0f", (n - f) / (z - a) }')
rss=$(awk '/VmHWM/ { print $2 }' "/proc/${pids[1]}/status")
raw1_rate=$(sed 's/.*in_per_sec=\([0-9]*\).*/\1/' <<<"$raw1")
raw4_rate=$(sed 's/.*in_per_sec=\([0-9]*\).*/\1/' <<<"$raw4")
ratio1=$(awk -v s="$swarmq" -v r="$raw1_rate" 'BEGIN { printf "%.2f", s / r }')
ratio4=$(awk -v s="$swarmq" -v r="$raw4_rate" 'BEGIN { printf "%.2f", s / r }')
echo "bench: swarmq noop tasks/s: $swarmq (peak RSS ${rss} kB)"
echo "bench: ratio vs raw pipe 1 out/in: $ratio1; vs 4 out/in (what swarmq writes per task): $ratio4"

if ((write)); then
        cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
        {
                echo
                echo "### $(date -u +%Y-%m-%dT%H:%MZ) — mock cluster, $count noop tasks, $threads executors"
                echo
                echo "Machine: $(nproc) cores ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)."
                echo "Command: \`tests/bench/run.sh --count $count --threads $threads --write\`"
                echo
                echo "| pipeline | records in/s | swarmq ratio |"
                echo "|---|---|---|"
                echo "| raw librdkafka, 1 record out per record in | $raw1_rate | $ratio1 |"
                echo "| raw librdkafka, 4 records out per record in | $raw4_rate | $ratio4 |"
                echo "| swarmq, noop tasks (result + 3 events per task) | $swarmq | — |"
                echo
                echo "swarmq peak RSS: ${rss} kB."
        } >>"$root/docs/benchmarks.md"
        echo "bench: figures appended to docs/benchmarks.md"
fi
