#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# What processing.guarantee=exactly_once costs, on a real Kafka 3.9 broker
# (ops/kafka.sh): the same backlog of noop tasks run by one instance with
# at_least_once and with exactly_once, alternating, ROUNDS times each, so
# both see the same noisy machine.
#
#   tests/bench/guarantee.sh [--count N] [--rounds R] [--commit-ms MS] [--write]
#
# Throughput is the backlog over the time from /readyz (group joined) to the
# moment a read_committed reader (swarmq-producer wait) has every result.
# --write appends the figures to docs/benchmarks.md. Builds Release into
# ./build-bench first; the broker's state is in ./build-bench/kafka.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/ops/lib.sh"

count=20000
rounds=2
commit_ms=1000
write=0
while (($#)); do
        case $1 in
        --count) count=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --commit-ms) commit_ms=$2; shift 2 ;;
        --write) write=1; shift ;;
        -h | --help)
                sed -n '3,14p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        esac
done

"$root/ops/deps.sh"
"$root/ops/build.sh" "$root/build-bench" -DCMAKE_BUILD_TYPE=Release -DSWARMQ_TESTS=ON
b=$root/build-bench
state=$b/kafka
work=$(mktemp -d /tmp/swarmq-bench-guarantee.XXXXXX)
consumer_pid=
cleanup() {
        if [[ -n "$consumer_pid" ]]; then
                kill -TERM "$consumer_pid" 2>/dev/null || true
                wait "$consumer_pid" 2>/dev/null || true
        fi
        bash "$root/ops/kafka.sh" stop --state-dir "$state" >/dev/null 2>&1 || true
}
trap cleanup EXIT

bootstrap=$(bash "$root/ops/kafka.sh" start --state-dir "$state" |
        sed -n 's/^bootstrap.servers=//p')
echo "bench: Kafka 3.9 at $bootstrap, $count noop tasks per run, $rounds rounds"

# run MODE ROUND: prints tasks/s for one run on topics of its own.
run() {
        local mode=$1 round=$2 prefix http t0 t1 i
        prefix=bench-$mode-$round-$$
        local topics=(-X "topic.tasks=$prefix-tasks" -X "topic.critical=$prefix-critical"
                -X "topic.results=$prefix-results" -X "topic.events=$prefix-events"
                -X "topic.dlt=$prefix-dlt" -X "topic.retry=$prefix-retry")
        local ptopics=(--topic-tasks "$prefix-tasks" --topic-critical "$prefix-critical"
                --topic-results "$prefix-results" --topic-events "$prefix-events")
        "$b/producer/swarmq-producer" -b "$bootstrap" "${ptopics[@]}" -q submit \
                --count "$count" --type noop --id-prefix "$prefix" \
                --ids-out "$work/$prefix.ids" >&2
        "$b/consumer/swarmq-consumer" -b "$bootstrap" --http-port auto \
                -i "$prefix" -g "$prefix" "${topics[@]}" -l warning \
                -X processing.guarantee="$mode" -X commit.interval.ms="$commit_ms" \
                -X executor.threads=4 \
                >"$work/$prefix.out" 2>"$work/$prefix.log" &
        consumer_pid=$!
        http=$(sq_wait_line "$work/$prefix.out" http.url 60)
        wait_until 30 "$http/readyz answers 200" --every 0.05 -- \
                value_is == 200 sq_http_status "$http/readyz"
        t0=$(date +%s.%N)
        "$b/producer/swarmq-producer" -b "$bootstrap" "${ptopics[@]}" wait \
                --ids-file "$work/$prefix.ids" --timeout-ms 600000 >/dev/null
        t1=$(date +%s.%N)
        kill -TERM "$consumer_pid"
        wait "$consumer_pid" || { echo "bench: consumer ($mode) did not stop cleanly" >&2; exit 1; }
        consumer_pid=
        awk -v n="$count" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.0f\n", n / (z - a) }'
}

declare -A rates
for ((r = 1; r <= rounds; r++)); do
        for mode in at_least_once exactly_once; do
                rate=$(run "$mode" "$r")
                echo "bench: round $r $mode: $rate tasks/s"
                rates[$mode]+="$rate "
        done
done
summary() { # rates...: "min–max (median)"
        printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
                printf "%d–%d (median %d)", v[1], v[NR], v[int((NR + 1) / 2)] }'
}
# shellcheck disable=SC2086
alo=$(summary ${rates[at_least_once]})
# shellcheck disable=SC2086
eos=$(summary ${rates[exactly_once]})
echo "bench: at_least_once tasks/s: $alo"
echo "bench: exactly_once tasks/s: $eos"

if ((write)); then
        cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
        {
                echo
                echo "### $(date -u +%Y-%m-%dT%H:%MZ) — Kafka 3.9, $count noop tasks, $rounds rounds, commit.interval.ms=$commit_ms"
                echo
                echo "Machine: $(nproc) cores ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)."
                echo "Command: \`tests/bench/guarantee.sh --count $count --rounds $rounds --commit-ms $commit_ms --write\`"
                echo
                echo "| processing.guarantee | tasks/s, read_committed reader has every result |"
                echo "|---|---|"
                echo "| at_least_once | $alo |"
                echo "| exactly_once | $eos |"
        } >>"$root/docs/benchmarks.md"
        echo "bench: figures appended to docs/benchmarks.md"
fi
