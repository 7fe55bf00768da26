#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Scaling out (issue 14, goal 3): the same backlog of `sleep` tasks run by
# 1, 2 and 3 swarmq-consumer instances in one group on a topic of 12
# partitions, on real Kafka; tasks/s at each size and the speed-up over one
# instance. With the work dominating (each task sleeps --sleep-ms, the
# executors mostly wait), three instances should come near 3x. Usually run
# by ops/bench.sh (scaling).
#
#   tests/bench/scaling.sh [--bootstrap B] [--build DIR] [--count N]
#                          [--sleep-ms MS] [--threads T] [--sizes LIST]
#
# DESIGN: for each size, fresh topics and a fresh group; the instances are
# started on the empty topic and the run waits until every one is ready
# (the group settled with all of them: no rebalance during the
# measurement), then the backlog is submitted at once. The rate spans the
# first to the last task finished, summed over the instances' /metrics
# (sampled every 50 ms), so joins and the submit are outside it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/ops/lib.sh"
source "$root/tests/bench/lib.sh"

bootstrap= b= count=6000 sleep_ms=20 threads=4 sizes=1,2,3
die() { echo "bench scaling: $*" >&2; exit 2; }
while (($#)); do
        case $1 in
        --bootstrap) bootstrap=${2:?}; shift 2 ;;
        --build) b=${2:?}; shift 2 ;;
        --count) count=${2:?}; shift 2 ;;
        --sleep-ms) sleep_ms=${2:?}; shift 2 ;;
        --threads) threads=${2:?}; shift 2 ;;
        --sizes) sizes=${2:?}; shift 2 ;;
        -h | --help) sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
        esac
done
for v in "$count" "$sleep_ms" "$threads"; do
        [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "--count, --sleep-ms and --threads take positive integers, not '$v'"
done
[[ "$sizes" =~ ^[1-9](,[1-9])*$ ]] || die "--sizes takes a list of instance counts from 1 to 9, like 1,2,3, not '$sizes'"
bench_default_build
[[ -x "$b/consumer/swarmq-consumer" && -x "$b/tests/bench/sweep_gen" ]] ||
        die "no swarmq-consumer or sweep_gen in '$b' (build with -DSWARMQ_TESTS=ON)"

bench_workdir scaling
# stop_instances: SIGTERM to every instance at once, then waits for them
# all: they close in parallel (bench_stop_pids would close one at a time).
stop_instances() {
        local i
        for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
                kill -TERM "${pids[i]}" 2>/dev/null || true
        done
        for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
                wait "${pids[i]}" 2>/dev/null || true
        done
        pids=()
}
trap 'stop_instances; bench_cleanup' EXIT
[[ -n "$bootstrap" ]] || bench_start_kafka "$work/kafka"

urls=()
# finished: tasks finished so far, summed over the running instances.
finished() {
        local url sum=0 n
        for url in "${urls[@]}"; do
                n=$(sq_http_get "$url/metrics" | awk '
                        $1 ~ /^swarmq_tasks_total/ { s += $2 }
                        END { printf "%d\n", s }') || n=0
                sum=$((sum + n))
        done
        echo "$sum"
}
all_ready() {
        local url
        for url in "${urls[@]}"; do
                [[ "$(sq_http_status "$url/readyz")" == 200 ]] || { echo "$url not ready"; return 1; }
        done
}

declare -A rate
for k in ${sizes//,/ }; do
        p=scale-$k-$(date +%s)-$$
        bench_make_topics "$b" "$p" 12
        urls=()
        for ((i = 1; i <= k; i++)); do
                bench_start_swarmq "$b" "$p-c$i" "$p" "$p" "$work/$p-c$i" \
                        -X executor.threads="$threads" -X executor.critical.reserved=0
                urls+=("$bench_http")
        done
        # Every instance ready and each with a share of the 12 partitions:
        # the group has settled with all of them.
        wait_until 120 "bench scaling: $k instances ready" -- all_ready >/dev/null ||
                { tail -5 "$work/$p-c1.log" >&2; exit 1; }
        echo "bench scaling: $k instance(s) ready; submitting $count sleep tasks of $sleep_ms ms" >&2
        "$b/producer/swarmq-producer" -b "$bootstrap" --topic-tasks "$p-tasks" \
                --topic-critical "$p-critical" -q submit --count "$count" \
                --type sleep --payload "$sleep_ms" --priority NORMAL --id-prefix "$p"
        t_first= n_first=0 t_last=
        sample() {
                local n now
                n=$(finished)
                now=$EPOCHREALTIME
                echo "$n done"
                if [[ -z "$t_first" ]] && ((n > 0)); then t_first=$now n_first=$n; fi
                ((n >= count)) || return 1
                t_last=$now
        }
        wait_until 900 "bench scaling: $k instance(s) finished $count tasks" --every 0.05 -- sample ||
                { tail -5 "$work/$p-c1.log" >&2; exit 1; }
        rate[$k]=$(awk -v n="$count" -v f="$n_first" -v a="$t_first" -v z="$t_last" \
                'BEGIN { printf "%.0f", (n - f) / (z - a) }')
        echo "bench scaling: $k instance(s): ${rate[$k]} tasks/s" >&2
        stop_instances
done

floor1=$(awk -v t="$threads" -v s="$sleep_ms" 'BEGIN { printf "%.0f", t * 1000 / s }')
echo "$count \`sleep\` tasks of $sleep_ms ms, 12 partitions, $threads executors per instance (the work's ceiling: $floor1 tasks/s per instance)."
echo
echo "| instances | tasks/s | speed-up over 1 | of the work's ceiling |"
echo "|---|---|---|---|"
for k in ${sizes//,/ }; do
        up="—"
        [[ -n "${rate[1]:-}" ]] && up=$(awk -v a="${rate[$k]}" -v b="${rate[1]}" 'BEGIN { printf "%.2fx", a / b }')
        echo "| $k | ${rate[$k]} | $up | $(awk -v r="${rate[$k]}" -v c="$floor1" -v k="$k" 'BEGIN { printf "%.0f %%", 100 * r / (c * k) }') |"
done
