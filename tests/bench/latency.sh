#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Latency (issue 14, goal 4): submit -> result visible, p50 / p99 / p99.9,
# at 10 %, 50 % and 90 % of the maximum throughput, on real Kafka, one
# instance. Usually run by ops/bench.sh (latency).
#
#   tests/bench/latency.sh --bootstrap B --build DIR [--count N]
#                          [--levels 10,50,90] [--max-rate R]
#                          [--threads T] [-X KEY=VALUE]...
#
# Every results topic is created with message.timestamp.type=LogAppendTime,
# so each result record carries the time the broker appended it: the moment
# a reader can see it. A task's latency is that time minus its created_at,
# set by swarmq-producer when it writes the task; both are this machine's
# wall clock, in milliseconds.
#
# The maximum throughput is measured first (unless --max-rate gives it): a
# backlog of N noop tasks, one instance started after it, tasks over the
# span of their results' append times. Then, per level, a fresh instance
# on topics of its own, ready (/readyz) before the first task, and N tasks
# submitted at that share of the maximum (swarmq-producer submit --rate).
# Prints the markdown table on stdout, progress on stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/ops/lib.sh"
source "$root/tests/bench/lib.sh"

bootstrap= b= count=20000 levels=10,50,90 max_rate= threads=4 partitions=12
extra=()
die() { echo "bench latency: $*" >&2; exit 2; }
while (($#)); do
        case $1 in
        --bootstrap) bootstrap=${2:?}; shift 2 ;;
        --build) b=${2:?}; shift 2 ;;
        --count) count=${2:?}; shift 2 ;;
        --levels) levels=${2:?}; shift 2 ;;
        --max-rate) max_rate=${2:?}; shift 2 ;;
        --threads) threads=${2:?}; shift 2 ;;
        -X) extra+=(-X "${2:?}"); shift 2 ;;
        -h | --help) sed -n '3,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
        esac
done
[[ -n "$bootstrap" ]] || die "--bootstrap is required (a real Kafka broker)"
[[ -x "$b/consumer/swarmq-consumer" && -x "$b/tests/bench/sweep_gen" ]] ||
        die "no swarmq-consumer or tests/bench/sweep_gen in '$b' (build with -DSWARMQ_TESTS=ON)"
[[ "$count" =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer, not '$count'"
[[ "$levels" =~ ^[1-9][0-9]?(,[1-9][0-9]?)*$ ]] || die "--levels must list percentages 1-99, not '$levels'"
[[ -z "$max_rate" || "$max_rate" =~ ^[1-9][0-9]*$ ]] || die "--max-rate must be a positive integer"
command -v kcat >/dev/null || die "kcat not found (apt-get install -y kcat)"

bench_workdir latency

run_id=$(date +%s)-$$
# make_topics PREFIX: the six topics, results with the broker's append time.
make_topics() {
        bench_make_topics "$b" "$1" "$partitions" -c message.timestamp.type=LogAppendTime
}
start_consumer() { # PREFIX
        bench_start_swarmq "$b" "$1" "$1" "$1" "$work/$1" \
                -X executor.threads="$threads" "${extra[@]}"
        http=$bench_http
}
stop_consumer() { bench_stop_pids; }
wait_results() { # PREFIX COUNT
        "$b/producer/swarmq-producer" -b "$bootstrap" --topic-results "$1-results" \
                -q wait --count "$2" --timeout-ms 600000 >/dev/null ||
                { tail -5 "$work/$1.log" >&2; die "not every result of $1 arrived"; }
}
# append_times PREFIX: "task_id append_ms" per result record.
append_times() {
        kcat -C -b "$bootstrap" -t "$1-results" -e -q -f '%k %T\n' 2>/dev/null
}
# created_times PREFIX: "task_id created_at" per result.
created_times() {
        "$b/producer/swarmq-producer" -b "$bootstrap" --topic-results "$1-results" \
                -q replay --results |
                sed -n 's/.*"task_id":"\([^"]*\)".*"created_at":\([0-9]*\).*/\1 \2/p'
}

if [[ -z "$max_rate" ]]; then
        p=lat-$run_id-max
        make_topics "$p"
        echo "bench latency: maximum throughput: a backlog of $count noop tasks" >&2
        bench_submit "$b" "$p" "$count" 0
        start_consumer "$p"
        wait_results "$p" "$count"
        stop_consumer
        max_rate=$(append_times "$p" | awk -v n="$count" '
                NR == 1 || $2 < lo { lo = $2 } $2 > hi { hi = $2 }
                END { printf "%.0f", (hi > lo ? n * 1000 / (hi - lo) : 0) }')
        ((max_rate > 0)) || die "could not measure the maximum throughput"
fi
echo "bench latency: maximum $max_rate tasks/s" >&2

echo "| load | target tasks/s | achieved tasks/s | tasks | p50 ms | p99 ms | p99.9 ms |"
echo "|---|---|---|---|---|---|---|"
IFS=, read -r -a pcts <<<"$levels"
for pct in "${pcts[@]}"; do
        rate=$((max_rate * pct / 100))
        ((rate > 0)) || rate=1
        # At least 5 s of load, at most the backlog count (or 5 s of it).
        n=$((rate * 5 > count ? rate * 5 : count))
        p=lat-$run_id-$pct
        make_topics "$p"
        start_consumer "$p"
        wait_until 120 "bench latency: instance $p ready" --every 0.1 -- \
                value_is == 200 sq_http_status "$http/readyz"
        echo "bench latency: $pct% of the maximum: $n tasks at $rate tasks/s" >&2
        bench_submit "$b" "$p" "$n" "$rate"
        wait_results "$p" "$n"
        stop_consumer
        created_times "$p" | sort >"$work/created"
        append_times "$p" | sort >"$work/appended"
        join "$work/created" "$work/appended" | awk '{ print $3 - $2, $3 }' |
                sort -n >"$work/lat"
        awk -v pct="$pct" -v rate="$rate" '
                { v[NR] = $1; if (NR == 1 || $2 < lo) lo = $2; if ($2 > hi) hi = $2 }
                function q(f,  i) { i = int(f * NR + 0.999999); if (i < 1) i = 1; return v[i] }
                END {
                        printf "| %d %% | %d | %.0f | %d | %d | %d | %d |\n", pct, rate,
                                (hi > lo ? NR * 1000 / (hi - lo) : 0), NR,
                                q(0.50), q(0.99), q(0.999)
                }' "$work/lat"
done
echo
echo "real broker, $partitions partitions, one instance, $threads executors; latency = the result's broker append time (LogAppendTime) − the task's created_at, both this machine's wall clock (ms)."
