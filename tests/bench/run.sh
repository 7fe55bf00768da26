#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Throughput and CPU per task: the raw librdkafka ceiling
# (tests/bench/raw_pipe.c: read a record, produce K records, no swarmq
# code) and swarmq with noop tasks, side by side in one run on one broker,
# so the ratios are meaningful on a shared, noisy machine. Usually run by
# ops/bench.sh (pipe).
#
#   tests/bench/run.sh [--broker mock|real] [--bootstrap B] [--build DIR]
#                      [--count N] [--threads T] [--partitions P]
#                      [--publish all,terminal] [--rounds R]
#                      [--baseline-build DIR] [-X KEY=VALUE]...
#                      [--pipe-X PROPERTY=VALUE]...
#
# --broker mock (default) starts a swarmq-mock-broker, real starts Apache
# Kafka 3.9 (ops/kafka.sh, state in DIR/kafka-bench) unless --bootstrap
# names a running broker of that kind. --build uses that build as it is;
# without it, a Release build is made in ./build-bench. --publish runs
# swarmq once per events.publish mode (default all,terminal), each
# compared with the pipe writing as many records per input as it writes
# per task (all: result + received, started, terminal events = 4;
# terminal: result + terminal event = 2; none: 1). --rounds repeats the
# whole set and reports each figure's median over the rounds (each ratio
# is taken within its round first). --baseline-build adds the same swarmq
# runs with another build (say, main before a change), in the same
# rounds, the two builds going first in turn. -X passes a configuration key to swarmq-consumer, --pipe-X a
# librdkafka property to the raw pipe's clients. Prints the
# markdown tables on stdout, progress on stderr.
#
# Rates: raw pipe, N / (last output acknowledged - first record consumed);
# swarmq, tasks / (last task acknowledged - last moment none was), read from
# its /metrics every 20 ms (its two counters only). CPU: user + system
# seconds of the pipe process
# (getrusage) and of swarmq-consumer (/proc/PID/stat) over the same spans,
# scaled to 100,000 records in. The group join is excluded from all.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/ops/lib.sh"
source "$root/tests/bench/lib.sh"

broker=mock bootstrap= b= count=100000 threads=4 partitions=12
publish=all,terminal rounds=1 base=
extra=()
pipe_extra=()
die() { echo "bench pipe: $*" >&2; exit 2; }
while (($#)); do
        case $1 in
        --broker) broker=${2:?}; shift 2 ;;
        --bootstrap) bootstrap=${2:?}; shift 2 ;;
        --build) b=${2:?}; shift 2 ;;
        --count) count=${2:?}; shift 2 ;;
        --threads) threads=${2:?}; shift 2 ;;
        --partitions) partitions=${2:?}; shift 2 ;;
        --publish) publish=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --baseline-build) base=${2:?}; shift 2 ;;
        -X) extra+=(-X "${2:?}"); shift 2 ;;
        --pipe-X) pipe_extra+=(-X "${2:?}"); shift 2 ;;
        -h | --help) sed -n '3,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
        esac
done
[[ "$broker" == mock || "$broker" == real ]] || die "--broker must be mock or real, not '$broker'"
[[ "$count" =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer, not '$count'"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, not '$threads'"
[[ "$partitions" =~ ^[1-9][0-9]*$ ]] || die "--partitions must be a positive integer"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, not '$rounds'"
if [[ "$broker" == mock ]] && ((count > 100000)); then
        die "--count above 100000 on the mock: its partitions drop records (docs/benchmarks.md)"
fi
IFS=, read -r -a modes <<<"$publish"
((${#modes[@]})) || die "--publish needs at least one of all, terminal, none"
# Records swarmq writes per noop task, by events.publish mode: the pipe
# it is compared with writes as many per record in.
declare -A out_per_task=([all]=4 [terminal]=2 [none]=1)
declare -A mode_what=([all]="result + 3 events" [terminal]="result + terminal event" [none]="result only")
for m in "${modes[@]}"; do
        [[ -n "${out_per_task[$m]:-}" ]] || die "--publish: '$m' is not all, terminal or none"
done
ks=(1)
for m in "${modes[@]}"; do
        k=${out_per_task[$m]}
        [[ " ${ks[*]} " == *" $k "* ]] || ks+=("$k")
done

bench_default_build
[[ -x "$b/consumer/swarmq-consumer" && -x "$b/tests/bench/raw_pipe" ]] ||
        die "no swarmq-consumer or raw_pipe in '$b' (build with -DSWARMQ_TESTS=ON)"
builds=(new)
declare -A build_dir=([new]=$b)
if [[ -n "$base" ]]; then
        [[ -x "$base/consumer/swarmq-consumer" ]] || die "--baseline-build: no swarmq-consumer in '$base'"
        builds+=(base)
        build_dir[base]=$base
fi

bench_workdir bench

# Every topic of every run, named up front (the mock needs them at start).
run_id=$(date +%s)-$$
topics=()
sq_prefix() { echo "bench-$run_id-$1-$2-r$3"; } # BUILD MODE ROUND
for ((r = 1; r <= rounds; r++)); do
        for k in "${ks[@]}"; do
                topics+=("raw$k-$run_id-r$r" "raw$k-$run_id-r$r-out")
        done
        for tag in "${builds[@]}"; do
                for m in "${modes[@]}"; do
                        p=$(sq_prefix "$tag" "$m" "$r")
                        topics+=("$p-tasks" "$p-critical" "$p-retry" "$p-dlt" "$p-results" "$p-events")
                done
        done
done
if [[ -z "$bootstrap" && "$broker" == mock ]]; then
        topic_args=()
        for t in "${topics[@]}"; do
                topic_args+=(--topic "$t")
        done
        "$b/tests/swarmq-mock-broker" --partitions "$partitions" "${topic_args[@]}" \
                >"$work/broker.out" 2>"$work/broker.log" &
        pids+=($!)
        bootstrap=$(sq_wait_line "$work/broker.out" bootstrap.servers 30)
elif [[ -z "$bootstrap" ]]; then
        bench_start_kafka "$b/kafka-bench" --partitions "$partitions"
fi
if [[ "$broker" == real ]]; then
        # CreateTopics (the mock does not answer it): every topic exists,
        # with its partitions and a leader, before anyone subscribes.
        for t in "${topics[@]}"; do
                "$b/tests/bench/sweep_gen" -b "$bootstrap" -t "$t" -n 0 \
                        -p "$partitions" >/dev/null
        done
fi
echo "bench pipe: $broker broker at $bootstrap, $count records, $partitions partitions, $rounds round(s)" >&2

field() { sed "s/.* $1=\([0-9.]*\).*/\1/" <<<"$2"; }
# CPU seconds (user + system) of a process so far, from /proc/PID/stat.
cpu_of() {
        awk -v hz="$(getconf CLK_TCK)" '{
                sub(/^.*\) /, "")   # past "pid (comm) "
                printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}
# The finished-task counter: a task counts once its result and terminal
# event are acknowledged by the broker: finished, and no longer in the
# in-flight window.
# Only these two families (?name[]=): the whole registry every 20 ms would
# cost swarmq a tenth of a core, counted in its CPU per task.
finished() {
        sq_http_get "$http/metrics?name%5B%5D=swarmq_tasks_total&name%5B%5D=swarmq_tasks_in_flight" | awk '
                $1 ~ /^swarmq_tasks_total/ { s += $2 }
                $1 ~ /^swarmq_tasks_in_flight/ { f += $2 }
                END { printf "%d\n", (f > 0 ? s - f : s) }'
}
# sample: notes the time and CPU of the last sample that saw no task
# finished (the span starts there, at most 20 ms before the first task
# finished, so even a backlog finished within one sample is measured) and
# of the first that saw them all: the span raw_pipe measures (from the
# first record consumed to the last output acknowledged; group join
# excluded).
sample() {
        n=$(finished)
        now=$(date +%s.%N)
        echo "$n done"
        if ((n == 0)); then
                t_first=$now
                cpu_first=$(cpu_of "$consumer_pid")
                return 1
        fi
        ((n >= count)) || return 1
        t_last=$now
        cpu_last=$(cpu_of "$consumer_pid")
}
# run_swarmq BUILD_TAG MODE ROUND: sets sq_rate, sq_cpu, sq_rss.
run_swarmq() {
        local bd=${build_dir[$1]} p
        p=$(sq_prefix "$1" "$2" "$3")
        echo "bench pipe: round $3: submitting $count noop tasks ($1 build, events.publish=$2)" >&2
        bench_submit "$bd" "$p" "$count"
        bench_start_swarmq "$bd" "$p" "$p" "$p" "$work/consumer" \
                -X executor.threads="$threads" -X events.publish="$2" "${extra[@]}"
        consumer_pid=$bench_pid http=$bench_http
        t_first=$(date +%s.%N)
        cpu_first=$(cpu_of "$consumer_pid")
        if ! wait_until 600 "bench pipe: swarmq finished $count tasks" --every 0.02 -- sample; then
                tail -5 "$work/consumer.log" >&2
                exit 1
        fi
        sq_rss=$(awk '/VmHWM/ { print $2 }' "/proc/$consumer_pid/status")
        sq_rate=$(awk -v n="$count" -v a="$t_first" -v z="$t_last" \
                'BEGIN { printf "%.0f", n / (z - a) }')
        sq_cpu=$(awk -v n="$count" -v a="$cpu_first" -v z="$cpu_last" \
                'BEGIN { printf "%.2f", (z - a) * 100000 / n }')
        bench_stop "$consumer_pid"
        unset 'pids[${#pids[@]}-1]'
        echo "bench pipe: round $3: swarmq ($1 build, events.publish=$2): $sq_rate tasks/s, $sq_cpu CPU s per 100k (peak RSS $sq_rss kB)" >&2
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# median of the numbers given (the lower middle one for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Figures per round, keyed "what:round".
declare -A rate cpu
rss_max=0
for ((r = 1; r <= rounds; r++)); do
        for k in "${ks[@]}"; do
                line=$("$b/tests/bench/raw_pipe" -b "$bootstrap" -n "$count" -k "$k" -s 100 -t "raw$k-$run_id-r$r" "${pipe_extra[@]}")
                echo "bench pipe: round $r: $line" >&2
                rate[raw$k:$r]=$(field in_per_sec "$line")
                cpu[raw$k:$r]=$(awk -v c="$(field cpu_seconds "$line")" -v n="$count" 'BEGIN { printf "%.2f", c * 100000 / n }')
        done
        # With --baseline-build the builds take turns going first: in
        # one round order the one run second measured 2-14 % less CPU
        # every time (docs/benchmarks.md, goal 2 at 20:40-20:58Z).
        order=("${builds[@]}")
        ((r % 2 == 0)) && mapfile -t order < <(printf '%s\n' "${builds[@]}" | tac)
        for tag in "${order[@]}"; do
                for m in "${modes[@]}"; do
                        run_swarmq "$tag" "$m" "$r"
                        rate[$tag-$m:$r]=$sq_rate
                        cpu[$tag-$m:$r]=$sq_cpu
                        ((sq_rss > rss_max)) && rss_max=$sq_rss
                done
        done
done

# med KEY MAP: the median over the rounds of MAP[KEY:round].
med() {
        local -n map=$2
        local vals=() r
        for ((r = 1; r <= rounds; r++)); do vals+=("${map[$1:$r]}"); done
        median "${vals[@]}"
}
# medratio A B MAP: the median over the rounds of MAP[A:r] / MAP[B:r].
medratio() {
        local -n map=$3
        local vals=() r
        for ((r = 1; r <= rounds; r++)); do vals+=("$(ratio "${map[$1:$r]}" "${map[$2:$r]}")"); done
        median "${vals[@]}"
}
label() { # TAG MODE
        local l="swarmq, noop tasks (${mode_what[$2]}, events.publish=$2), $threads executors"
        [[ "$1" == base ]] && l="$l, baseline build"
        echo "$l"
}
pipe_label() {
        if (($1 == 1)); then echo "raw librdkafka, 1 record out per record in"
        else echo "raw librdkafka, $1 records out per record in"; fi
}

echo "| pipeline | records in/s | CPU s per 100,000 in | swarmq ÷ this, throughput | swarmq ÷ this, CPU per task |"
echo "|---|---|---|---|---|"
# Ratios against the pipe rows: the first swarmq row (the new build, the
# first mode), as before.
first=new-${modes[0]}
for k in "${ks[@]}"; do
        echo "| $(pipe_label "$k") | $(med "raw$k" rate) | $(med "raw$k" cpu) | $(medratio "$first" "raw$k" rate) | $(medratio "$first" "raw$k" cpu) |"
done
for tag in "${builds[@]}"; do
        for m in "${modes[@]}"; do
                echo "| $(label "$tag" "$m") | $(med "$tag-$m" rate) | $(med "$tag-$m" cpu) | — | — |"
        done
done
echo
echo "Each swarmq run against the pipe writing as many records per record in (goal: throughput ≥ 0.8, CPU per task ≤ 1.5×):"
echo
echo "| swarmq | matching pipe | throughput ÷ pipe | CPU per task ÷ pipe |"
echo "|---|---|---|---|"
for tag in "${builds[@]}"; do
        for m in "${modes[@]}"; do
                k=${out_per_task[$m]}
                echo "| $(label "$tag" "$m") | 1→$k | $(medratio "$tag-$m" "raw$k" rate) | $(medratio "$tag-$m" "raw$k" cpu) |"
        done
done
echo
if ((rounds > 1)); then
        echo "Medians of $rounds rounds (each ratio taken within its round). Per round, records in/s:"
        echo
        for k in "${ks[@]}"; do
                vals=(); for ((r = 1; r <= rounds; r++)); do vals+=("${rate[raw$k:$r]}"); done
                echo "- pipe 1→$k: ${vals[*]}"
        done
        for tag in "${builds[@]}"; do
                for m in "${modes[@]}"; do
                        vals=(); for ((r = 1; r <= rounds; r++)); do vals+=("${rate[$tag-$m:$r]}/${cpu[$tag-$m:$r]}"); done
                        echo "- swarmq $tag build, events.publish=$m (tasks/s / CPU s per 100k): ${vals[*]}"
                done
        done
        echo
fi
echo "$broker broker, $count records, $partitions partitions; swarmq peak RSS ${rss_max} kB."
