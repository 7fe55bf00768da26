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
#                      [-X KEY=VALUE]...
#
# --broker mock (default) starts a swarmq-mock-broker, real starts Apache
# Kafka 3.9 (ops/kafka.sh, state in DIR/kafka-bench) unless --bootstrap
# names a running broker of that kind. --build uses that build as it is;
# without it, a Release build is made in ./build-bench. -X passes a
# configuration key to swarmq-consumer. Prints the markdown table on
# stdout, progress on stderr.
#
# Rates: raw pipe, N / (last output acknowledged - first record consumed);
# swarmq, tasks / (last task acknowledged - first task finished), read from
# its /metrics every 20 ms. CPU: user + system seconds of the pipe process
# (getrusage) and of swarmq-consumer (/proc/PID/stat) over the same spans,
# scaled to 100,000 records in. The group join is excluded from all.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/ops/lib.sh"

broker=mock bootstrap= b= count=100000 threads=4 partitions=12
extra=()
die() { echo "bench pipe: $*" >&2; exit 2; }
while (($#)); do
        case $1 in
        --broker) broker=${2:?}; shift 2 ;;
        --bootstrap) bootstrap=${2:?}; shift 2 ;;
        --build) b=${2:?}; shift 2 ;;
        --count) count=${2:?}; shift 2 ;;
        --threads) threads=${2:?}; shift 2 ;;
        --partitions) partitions=${2:?}; shift 2 ;;
        -X) extra+=(-X "${2:?}"); shift 2 ;;
        -h | --help) sed -n '3,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
        esac
done
[[ "$broker" == mock || "$broker" == real ]] || die "--broker must be mock or real, not '$broker'"
[[ "$count" =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer, not '$count'"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, not '$threads'"
[[ "$partitions" =~ ^[1-9][0-9]*$ ]] || die "--partitions must be a positive integer"
if [[ "$broker" == mock ]] && ((count > 100000)); then
        die "--count above 100000 on the mock: its partitions drop records (docs/benchmarks.md)"
fi

if [[ -z "$b" ]]; then
        "$root/ops/deps.sh" >&2
        "$root/ops/build.sh" "$root/build-bench" -DCMAKE_BUILD_TYPE=Release -DSWARMQ_TESTS=ON >&2
        b=$root/build-bench
fi
[[ -x "$b/consumer/swarmq-consumer" && -x "$b/tests/bench/raw_pipe" ]] ||
        die "no swarmq-consumer or raw_pipe in '$b' (build with -DSWARMQ_TESTS=ON)"

work=$(mktemp -d /tmp/swarmq-bench.XXXXXX)
pids=()
started_kafka=
# Stop in reverse order: consumers before the broker they need to close.
cleanup() {
        local i
        for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
                kill -TERM "${pids[i]}" 2>/dev/null || true
                wait "${pids[i]}" 2>/dev/null || true
        done
        [[ -n "$started_kafka" ]] &&
                bash "$root/ops/kafka.sh" stop --state-dir "$started_kafka" >/dev/null 2>&1
        rm -rf "$work"
}
trap cleanup EXIT

run_id=$(date +%s)-$$
p=bench-$run_id
swarmq_topics=("$p-tasks" "$p-critical" "$p-retry" "$p-dlt" "$p-results" "$p-events")
if [[ -z "$bootstrap" && "$broker" == mock ]]; then
        topic_args=()
        for t in "${swarmq_topics[@]}" raw1-$run_id raw1-$run_id-out raw4-$run_id raw4-$run_id-out; do
                topic_args+=(--topic "$t")
        done
        "$b/tests/swarmq-mock-broker" --partitions "$partitions" "${topic_args[@]}" \
                >"$work/broker.out" 2>"$work/broker.log" &
        pids+=($!)
        bootstrap=$(sq_wait_line "$work/broker.out" bootstrap.servers 30)
elif [[ -z "$bootstrap" ]]; then
        started_kafka=$b/kafka-bench
        bootstrap=$(bash "$root/ops/kafka.sh" start --state-dir "$started_kafka" \
                --partitions "$partitions" | sed -n 's/^bootstrap.servers=//p')
fi
if [[ "$broker" == real ]]; then
        # CreateTopics (the mock does not answer it): every topic exists,
        # with its partitions and a leader, before anyone subscribes.
        for t in "${swarmq_topics[@]}" raw1-$run_id raw1-$run_id-out raw4-$run_id raw4-$run_id-out; do
                "$b/tests/bench/sweep_gen" -b "$bootstrap" -t "$t" -n 0 \
                        -p "$partitions" >/dev/null
        done
fi
echo "bench pipe: $broker broker at $bootstrap, $count records, $partitions partitions" >&2

field() { sed "s/.* $1=\([0-9.]*\).*/\1/" <<<"$2"; }
raw1=$("$b/tests/bench/raw_pipe" -b "$bootstrap" -n "$count" -k 1 -s 100 -t "raw1-$run_id")
echo "bench pipe: $raw1" >&2
raw4=$("$b/tests/bench/raw_pipe" -b "$bootstrap" -n "$count" -k 4 -s 100 -t "raw4-$run_id")
echo "bench pipe: $raw4" >&2

echo "bench pipe: submitting $count noop tasks" >&2
"$b/producer/swarmq-producer" -b "$bootstrap" --topic-tasks "$p-tasks" \
        --topic-critical "$p-critical" -q submit --count "$count" \
        --type noop --priority NORMAL --id-prefix "$p"

"$b/consumer/swarmq-consumer" -b "$bootstrap" --http-port auto -i "$p" -g "$p" \
        -X "topic.tasks=$p-tasks" -X "topic.critical=$p-critical" \
        -X "topic.retry=$p-retry" -X "topic.dlt=$p-dlt" \
        -X "topic.results=$p-results" -X "topic.events=$p-events" \
        -X executor.threads="$threads" -l warning "${extra[@]}" \
        >"$work/consumer.out" 2>"$work/consumer.log" &
consumer_pid=$!
pids+=($consumer_pid)
http=$(sq_wait_line "$work/consumer.out" http.url 60)

# CPU seconds (user + system) of a process so far, from /proc/PID/stat.
cpu_of() {
        awk -v hz="$(getconf CLK_TCK)" '{
                sub(/^.*\) /, "")   # past "pid (comm) "
                printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}
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
# sample: notes the time and CPU of the first and the last finished task.
sample() {
        n=$(finished)
        now=$(date +%s.%N)
        echo "$n done"
        if [[ -z "$t_first" ]] && ((n > 0)); then
                t_first=$now
                n_first=$n
                cpu_first=$(cpu_of "$consumer_pid")
        fi
        ((n >= count)) || return 1
        t_last=$now
        cpu_last=$(cpu_of "$consumer_pid")
}
t_first=
if ! wait_until 600 "bench pipe: swarmq finished $count tasks" --every 0.02 -- sample; then
        tail -5 "$work/consumer.log" >&2
        exit 1
fi
rss=$(awk '/VmHWM/ { print $2 }' "/proc/$consumer_pid/status")
swarmq=$(awk -v n="$count" -v f="$n_first" -v a="$t_first" -v z="$t_last" \
        'BEGIN { printf "%.0f", (n - f) / (z - a) }')
swarmq_cpu=$(awk -v n="$count" -v f="$n_first" -v a="$cpu_first" -v z="$cpu_last" \
        'BEGIN { printf "%.2f", (z - a) * 100000 / (n - f) }')
raw1_rate=$(field in_per_sec "$raw1")
raw4_rate=$(field in_per_sec "$raw4")
raw1_cpu=$(awk -v c="$(field cpu_seconds "$raw1")" -v n="$count" 'BEGIN { printf "%.2f", c * 100000 / n }')
raw4_cpu=$(awk -v c="$(field cpu_seconds "$raw4")" -v n="$count" 'BEGIN { printf "%.2f", c * 100000 / n }')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
echo "bench pipe: swarmq noop tasks/s: $swarmq, CPU s per 100k: $swarmq_cpu (peak RSS ${rss} kB)" >&2

echo "| pipeline | records in/s | CPU s per 100,000 in | swarmq ÷ this, throughput | swarmq ÷ this, CPU per task |"
echo "|---|---|---|---|---|"
echo "| raw librdkafka, 1 record out per record in | $raw1_rate | $raw1_cpu | $(ratio "$swarmq" "$raw1_rate") | $(ratio "$swarmq_cpu" "$raw1_cpu") |"
echo "| raw librdkafka, 4 records out per record in | $raw4_rate | $raw4_cpu | $(ratio "$swarmq" "$raw4_rate") | $(ratio "$swarmq_cpu" "$raw4_cpu") |"
echo "| swarmq, noop tasks (result + 3 events per task), $threads executors | $swarmq | $swarmq_cpu | — | — |"
echo
echo "$broker broker, $count records, $partitions partitions; swarmq peak RSS ${rss} kB."
