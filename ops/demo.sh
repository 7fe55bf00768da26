#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The swarmq demo, on the embedded broker (librdkafka's mock cluster inside
# the consumer process): installs the build dependencies, builds, starts
# swarmq-consumer --embedded-broker, submits a few thousand mixed tasks
# (all four priorities, several capabilities, some that fail, some no
# agent can run, one undecodable record), waits for every result and
# prints a summary. Exits 0 only if every submitted task got its result.
#
#   ops/demo.sh [--keep] [--real-kafka]
#
#   --keep        leave the consumer running at the end
#   --real-kafka  run on a real Apache Kafka 3.9 broker started by
#                 ops/kafka.sh (Java 17 and Maven needed; jars are fetched
#                 from Maven Central once and cached) instead of the
#                 embedded mock cluster
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=ops/lib.sh
source "$root/ops/lib.sh"

keep=0
real_kafka=0
for arg in "$@"; do
        case $arg in
        --keep) keep=1 ;;
        --real-kafka) real_kafka=1 ;;
        -h | --help) sed -n '3,18p' "$0"; exit 0 ;;
        *) echo "demo: unknown option $arg (see --help)" >&2; exit 2 ;;
        esac
done

"$root/ops/deps.sh"
echo "demo: building (this takes a minute the first time)"
"$root/ops/build.sh" "$root/build"

consumer=$root/build/consumer/swarmq-consumer
producer=$root/build/producer/swarmq-producer
work=$(mktemp -d /tmp/swarmq-demo.XXXXXX)
consumer_pid=

kafka_state=/tmp/swarmq-demo-kafka

cleanup() {
        if [[ -n "$consumer_pid" ]] && kill -0 "$consumer_pid" 2>/dev/null &&
                ((keep == 0)); then
                kill -TERM "$consumer_pid" 2>/dev/null || true
                wait "$consumer_pid" 2>/dev/null || true
        fi
        if ((real_kafka && keep == 0)); then
                bash "$root/ops/kafka.sh" stop --state-dir "$kafka_state" >/dev/null || true
        fi
}
trap cleanup EXIT

if ((real_kafka)); then
        "$root/ops/deps.sh" --test
        echo "demo: starting Apache Kafka 3.9 (ops/kafka.sh, state in $kafka_state)"
        kafka=$(bash "$root/ops/kafka.sh" start --state-dir "$kafka_state" |
                sed -n 's/^bootstrap.servers=//p')
        echo "demo: starting swarmq-consumer -b $kafka (log: $work/consumer.log)"
        broker_args=(-b "$kafka")
else
        echo "demo: starting swarmq-consumer --embedded-broker (log: $work/consumer.log)"
        broker_args=(--embedded-broker)
fi
"$consumer" "${broker_args[@]}" --http-port auto -X executor.threads=4 \
        >"$work/consumer.out" 2>"$work/consumer.log" &
consumer_pid=$!
bootstrap=$(sq_wait_line "$work/consumer.out" bootstrap.servers 30)
http=$(sq_wait_line "$work/consumer.out" http.url 30)
echo "demo: broker $bootstrap, HTTP $http"

submit() {
        local name=$1
        shift
        "$producer" -b "$bootstrap" -q submit --ids-out "$work/ids.$name" "$@"
}

start=$(date +%s.%N)
echo "demo: submitting tasks"
submit noop   --count 3000 --type noop \
        --priority-mix LOW:2,NORMAL:5,HIGH:2,CRITICAL:1
submit sha256 --count 600 --type sha256 --payload "hello, swarmq" \
        --priority-mix NORMAL:3,HIGH:1
submit echo   --count 300 --type echo --payload-size 256 --priority LOW
submit sleep  --count 80 --type sleep --payload 20 --priority HIGH
submit cpu    --count 20 --type cpu --header rounds=20000
submit fail   --count 25 --type fail --payload "demo: this task fails on purpose"
submit nogpu  --count 5 --type render --capability gpu
"$producer" -b "$bootstrap" -q submit --raw-value 'this record is not a task'
cat "$work"/ids.* >"$work/all.ids"
total=$(wc -l <"$work/all.ids")
echo "demo: submitted $total tasks and 1 undecodable record; waiting for results"

status=0
"$producer" -b "$bootstrap" wait --ids-file "$work/all.ids" \
        --timeout-ms 120000 >"$work/summary.txt" || status=$?
end=$(date +%s.%N)
cat "$work/summary.txt"

echo
echo "demo: metrics excerpt ($http/metrics):"
sq_http_get "$http/metrics" | grep -E '^swarmq_(tasks_total|dead_letters_total|records_received_total)' |
        grep -v ' 0$' | sort | head -40 || true
echo
awk -v n="$total" -v s="$start" -v e="$end" \
        'BEGIN { printf "demo: %d tasks in %.2f s end to end (%.0f tasks/s from first submit to last result, including the first group join)\n", n, e - s, n / (e - s) }'
echo "demo: topics: swarmq-tasks, swarmq-tasks-critical (in); swarmq-results, swarmq-events, swarmq-tasks-dlt (out)"
echo "demo: look at $http/metrics, $http/healthz, $http/readyz; consumer log $work/consumer.log"
if ((keep)); then
        echo "demo: consumer left running (pid $consumer_pid, broker $bootstrap)"
        trap - EXIT
fi
if ((status != 0)); then
        echo "demo: FAILED: not every task got its result (wait exit $status)" >&2
        exit 1
fi
echo "demo: OK: every task has its result"
