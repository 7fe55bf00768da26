#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Latency (issue 14, goal 4): submit -> result visible, p50 / p99 / p99.9,
# at 10 %, 50 % and 90 % of the maximum throughput, on real Kafka, one
# instance. Usually run by ops/bench.sh (latency).
#
#   tests/bench/latency.sh --bootstrap B --build DIR [--count N]
#                          [--levels 10,50,90] [--max-rate R] [--seconds S]
#                          [--threads T] [--rounds R] [-X KEY=VALUE]...
#
# Every results topic is created with message.timestamp.type=LogAppendTime,
# so each result record carries the time the broker appended it: the moment
# a reader can see it. A task's latency is that time minus its created_at,
# set by swarmq-producer when it writes the task; both are this machine's
# wall clock, in milliseconds.
#
# The maximum throughput is measured first (unless --max-rate gives it):
# an instance, ready (/readyz), takes 5 x N noop tasks submitted as fast
# as swarmq-producer goes; results per second over the span of their
# append times. That is what one instance sustains while a client submits
# on the same machine, as it does at every level (a backlog drained with
# nothing else running goes faster, in bursts: 34,000 to 74,000 tasks/s
# where the same instance kept up with about 30,000 submitted). Then, per
# level, a fresh instance on topics of its own, ready before the first
# task, and N tasks (at least S seconds of them, --seconds, 5 by default;
# ops/bench.sh --quick gives 0: N tasks whatever the rate) submitted at
# that share of the maximum (swarmq-producer submit --rate).
# --rounds R does all of it R times (the maximum measured again in each
# round) and reports the median of each figure, the rounds listed below.
# Prints the markdown table on stdout, progress on stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/ops/lib.sh"
source "$root/tests/bench/lib.sh"

bootstrap= b= count=20000 levels=10,50,90 max_rate= threads=4 partitions=12 rounds=1
seconds=5
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
        --rounds) rounds=${2:?}; shift 2 ;;
        --seconds) seconds=${2:?}; shift 2 ;;
        -X) extra+=(-X "${2:?}"); shift 2 ;;
        -h | --help) sed -n '3,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
        esac
done
[[ -n "$bootstrap" ]] || die "--bootstrap is required (a real Kafka broker)"
[[ -x "$b/consumer/swarmq-consumer" && -x "$b/tests/bench/sweep_gen" ]] ||
        die "no swarmq-consumer or tests/bench/sweep_gen in '$b' (build with -DSWARMQ_TESTS=ON)"
[[ "$count" =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer, not '$count'"
[[ "$levels" =~ ^[1-9][0-9]?(,[1-9][0-9]?)*$ ]] || die "--levels must list percentages 1-99, not '$levels'"
[[ -z "$max_rate" || "$max_rate" =~ ^[1-9][0-9]*$ ]] || die "--max-rate must be a positive integer"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, not '$rounds'"
[[ "$seconds" =~ ^[0-9]+$ ]] || die "--seconds must be a whole number of seconds, not '$seconds'"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, not '$threads'"
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

# measure_max ROUND: sets max_got to the results/s of 5 x N tasks
# submitted as fast as they go to a ready instance (no subshell: the
# instance it starts must stay this shell's to stop).
measure_max() {
        local p=lat-$run_id-r$1-max n=$((count * 5))
        make_topics "$p"
        start_consumer "$p"
        wait_until 120 "bench latency: instance $p ready" --every 0.1 -- \
                value_is == 200 sq_http_status "$http/readyz"
        echo "bench latency: round $1: maximum throughput: $n noop tasks submitted as fast as they go" >&2
        bench_submit "$b" "$p" "$n" 0
        wait_results "$p" "$n"
        stop_consumer
        max_got=$(append_times "$p" | awk -v n="$n" '
                NR == 1 || $2 < lo { lo = $2 } $2 > hi { hi = $2 }
                END { printf "%.0f", (hi > lo ? n * 1000 / (hi - lo) : 0) }')
}

# run_level ROUND PCT RATE: sets level_got to "achieved tasks p50 p99 p99.9".
run_level() {
        local r=$1 pct=$2 rate=$3 n p
        # N tasks, or S seconds of them at this rate when that is more.
        n=$((rate * seconds > count ? rate * seconds : count))
        p=lat-$run_id-r$r-$pct
        make_topics "$p"
        start_consumer "$p"
        wait_until 120 "bench latency: instance $p ready" --every 0.1 -- \
                value_is == 200 sq_http_status "$http/readyz"
        echo "bench latency: round $r: $pct% of the maximum: $n tasks at $rate tasks/s" >&2
        bench_submit "$b" "$p" "$n" "$rate"
        wait_results "$p" "$n"
        stop_consumer
        created_times "$p" | sort >"$work/created"
        append_times "$p" | sort >"$work/appended"
        join "$work/created" "$work/appended" | awk '{ print $3 - $2, $3 }' |
                sort -n >"$work/lat"
        level_got=$(awk '
                { v[NR] = $1; if (NR == 1 || $2 < lo) lo = $2; if ($2 > hi) hi = $2 }
                function q(f,  i) { i = int(f * NR + 0.999999); if (i < 1) i = 1; return v[i] }
                END {
                        printf "%.0f %d %d %d %d\n", (hi > lo ? NR * 1000 / (hi - lo) : 0), NR,
                                q(0.50), q(0.99), q(0.999)
                }' "$work/lat")
}

# median of the numbers given (the lower middle one for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

IFS=, read -r -a pcts <<<"$levels"
declare -A maxr got
for ((r = 1; r <= rounds; r++)); do
        if [[ -n "$max_rate" ]]; then
                maxr[$r]=$max_rate
        else
                measure_max "$r"
                maxr[$r]=$max_got
                ((maxr[$r] > 0)) || die "could not measure the maximum throughput"
        fi
        echo "bench latency: round $r: maximum ${maxr[$r]} tasks/s" >&2
        for pct in "${pcts[@]}"; do
                rate=$((maxr[$r] * pct / 100))
                ((rate > 0)) || rate=1
                run_level "$r" "$pct" "$rate"
                got[$pct:$r]="$rate $level_got"
                echo "bench latency: round $r: $pct%: rate asked, achieved, tasks, p50, p99, p99.9: ${got[$pct:$r]}" >&2
        done
done

# col PCT N: the median over the rounds of field N of got[PCT:r].
col() {
        local vals=() r
        for ((r = 1; r <= rounds; r++)); do vals+=("$(cut -d' ' -f"$2" <<<"${got[$1:$r]}")"); done
        median "${vals[@]}"
}
echo "| load | target tasks/s | achieved tasks/s | tasks | p50 ms | p99 ms | p99.9 ms |"
echo "|---|---|---|---|---|---|---|"
for pct in "${pcts[@]}"; do
        echo "| $pct % | $(col "$pct" 1) | $(col "$pct" 2) | $(col "$pct" 3) | $(col "$pct" 4) | $(col "$pct" 5) | $(col "$pct" 6) |"
done
echo
maxes=()
for ((r = 1; r <= rounds; r++)); do maxes+=("${maxr[$r]}"); done
echo "real broker, $partitions partitions, one instance, $threads executors; latency = the result's broker append time (LogAppendTime) − the task's created_at, both this machine's wall clock (ms); maximum throughput $(median "${maxes[@]}") tasks/s ($((count * 5)) noop tasks submitted as fast as they go to a ready instance$( ((rounds > 1)) && echo ", median of the rounds"))."
if ((rounds > 1)); then
        echo
        echo "Medians of $rounds rounds (each round measures its maximum, then its levels). Per round (rate asked / achieved tasks/s / p50 / p99 / p99.9 ms):"
        echo
        for ((r = 1; r <= rounds; r++)); do
                line="- round $r, maximum ${maxr[$r]} tasks/s:"
                for pct in "${pcts[@]}"; do
                        read -r a g _ p50 p99 p999 <<<"${got[$pct:$r]}"
                        line+=" $pct % $a/$g/$p50/$p99/$p999;"
                done
                echo "${line%;}"
        done
fi
