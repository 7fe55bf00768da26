# SPDX-License-Identifier: Apache-2.0
#
# Shared by the integration tests: paths, process bookkeeping (everything
# started is killed on exit, pass or fail), consumer and broker launchers,
# and assertions that print what a user would see when they fail.
#
# A test script is called as: bash NNNN-name.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
# shellcheck source=../../ops/lib.sh
source "$src/ops/lib.sh"

consumer_bin=$build/consumer/swarmq-consumer
producer_bin=$build/producer/swarmq-producer
mock_broker_bin=$build/tests/swarmq-mock-broker
# SQ_TEST_VARIANT names a second registration of the same script (the
# broker tests run again on Kafka 3.9.1 as broker39.NNNN): its own work
# folder and topics. SQ_TEST_NAME replaces the script's name: a test that
# runs ops/chaos.sh (which uses this library too) gives it a name of its
# own, or two such tests at once would share build/tests/out/chaos.
test_name=${SQ_TEST_NAME:-$(basename "$0" .sh)}${SQ_TEST_VARIANT:+.$SQ_TEST_VARIANT}
work=$build/tests/out/$test_name
rm -rf "$work"
mkdir -p "$work"

sq_pids=()
sq_consumer_names=() # start_consumer's NAMEs, for fail()
sq_cleanup() {
        local pid
        for pid in "${sq_pids[@]}"; do
                # Only our own: a pid reaped earlier may be another's now.
                sq_our_child "$pid" && kill -KILL "$pid" 2>/dev/null || true
        done
        wait 2>/dev/null || true
}
trap sq_cleanup EXIT

fail() {
        echo "FAIL [$test_name]: $*" >&2
        local f name pid url stacks
        # What the consumers still running saw at the failure (a flake
        # under load is seldom reproduced): kept in the work directory,
        # which ops/stress-tests.sh copies.
        for name in "${sq_consumer_names[@]}"; do
                pid=${name}_pid url=${name}_http
                [[ -n "${!url:-}" ]] && kill -0 "${!pid}" 2>/dev/null ||
                        continue
                curl -s -m 3 -o "$work/$name.status.json" "${!url}/status" || true
                curl -s -m 3 -o "$work/$name.metrics" "${!url}/metrics" || true
                # Every thread's stack: where a stalled instance waits.
                stacks=""
                if command -v gdb >/dev/null; then
                        stacks=", $work/$name.stacks"
                        timeout 30 gdb -p "${!pid}" -batch -nx \
                                -ex 'thread apply all bt 12' \
                                >"$work/$name.stacks" 2>&1 || true
                fi
                echo "---- $name at the failure: $work/$name.status.json," \
                        "$work/$name.metrics$stacks" >&2
        done
        for f in "$work"/*.log; do
                [[ -f "$f" ]] || continue
                echo "---- last lines of $f" >&2
                tail -n 30 "$f" >&2
        done
        exit 1
}

log() {
        echo "[$test_name] $*"
}

# start_broker: starts swarmq-mock-broker; sets $bootstrap and $broker_pid.
start_broker() {
        "$mock_broker_bin" "$@" >"$work/broker.out" 2>"$work/broker.log" &
        broker_pid=$!
        sq_pids+=("$broker_pid")
        bootstrap=$(sq_wait_line "$work/broker.out" bootstrap.servers 30) ||
                fail "mock broker did not start"
}

# start_consumer NAME [args...]: starts swarmq-consumer with an ephemeral
# HTTP port; sets ${NAME}_pid, ${NAME}_http and (embedded) $bootstrap.
start_consumer() {
        local name=$1
        shift
        "$consumer_bin" --http-port auto -i "$name" "$@" \
                >"$work/$name.out" 2>"$work/$name.log" &
        local pid=$!
        sq_pids+=("$pid")
        sq_consumer_names+=("$name")
        printf -v "${name}_pid" '%s' "$pid"
        local b h
        b=$(sq_wait_line "$work/$name.out" bootstrap.servers 30) ||
                fail "consumer $name did not start"
        h=$(sq_wait_line "$work/$name.out" http.url 10) ||
                fail "consumer $name printed no http.url"
        printf -v "${name}_http" '%s' "$h"
        bootstrap=$b
}

# wait_ready URL: waits until /readyz answers 200 (the group assigned us).
wait_ready() {
        wait_until 30 "$1/readyz answers 200" -- \
                value_is == 200 sq_http_status "$1/readyz"
}

producer() {
        "$producer_bin" -b "$bootstrap" "$@"
}

# json_get FILE EXPR: evaluates a Python expression on the JSON in FILE
# (bound to j) and prints the result.
json_get() {
        python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

assert_eq() {
        local what=$1 got=$2 want=$3
        [[ "$got" == "$want" ]] || fail "$what: got '$got', expected '$want'"
        log "ok: $what = $want"
}

# metric URL NAME_AND_LABELS: sums the samples of /metrics matching a
# regex on the series (name{labels}).
metric_sum() {
        local url=$1 pattern=$2
        sq_http_get "$url/metrics" | awk -v p="$pattern" \
                '$0 !~ /^#/ && $1 ~ p { s += $2 } END { printf "%d\n", s }'
}

# use_real_kafka: for tests under tests/broker/ (ctest label "broker"):
# sets $bootstrap to the real Apache Kafka broker that the ctest fixture
# started (ops/kafka.sh, state in $SQ_KAFKA_STATE, by default
# $build/tests/kafka: Kafka 4.4.0; the broker39 fixture's is
# $build/tests/kafka39: Kafka 3.9.1), and makes every
# topic and the group unique to this test, so tests sharing the broker
# never see each other's records. Consumers take "${consumer_topic_args[@]}",
# the producer CLI takes "${producer_topic_args[@]}"; topic names are in
# $t_tasks $t_critical $t_results $t_events $t_dlt $t_retry $t_control
# (cancel takes --topic-control "$t_control").
use_real_kafka() {
        local state=${SQ_KAFKA_STATE:-$build/tests/kafka}
        bootstrap=$(bash "$src/ops/kafka.sh" env --state-dir "$state" |
                sed -n 's/^bootstrap.servers=//p')
        [[ -n "$bootstrap" ]] || fail "no real Kafka broker running (ops/kafka.sh status --state-dir $state)"
        test_topics
        kafka_state=$state
        log "real Kafka $(cat "$state/kafka-version" 2>/dev/null) at $bootstrap, topics $prefix-*"
}

# test_topics: topic and group names unique to this test run on a shared
# broker: $prefix (the test's name and pid), $t_tasks $t_critical
# $t_results $t_events $t_dlt $t_retry $t_control $t_schedules, $group,
# and the options that name them: "${consumer_topic_args[@]}" (the group
# too) and "${producer_topic_args[@]}".
test_topics() {
        prefix="${test_name//[^A-Za-z0-9]/-}-$$"
        t_tasks=$prefix-tasks
        t_critical=$prefix-critical
        t_results=$prefix-results
        t_events=$prefix-events
        t_dlt=$prefix-dlt
        t_retry=$prefix-retry
        t_control=$prefix-control
        t_schedules=$prefix-schedules
        group=$prefix-group
        consumer_topic_args=(-g "$group" -X "topic.tasks=$t_tasks"
                -X "topic.critical=$t_critical" -X "topic.results=$t_results"
                -X "topic.events=$t_events" -X "topic.dlt=$t_dlt"
                -X "topic.retry=$t_retry" -X "topic.control=$t_control"
                -X "topic.schedules=$t_schedules")
        producer_topic_args=(--topic-tasks "$t_tasks" --topic-critical "$t_critical"
                --topic-results "$t_results" --topic-events "$t_events")
}

# use_python_peer: the independent Python peer (confluent-kafka + fastavro in
# the venv that ops/venv.sh keeps outside the repo); sets $python and the
# command array "${peer[@]}" (tests/peers/swarmq_peer.py on $bootstrap).
use_python_peer() {
        local t0=$SECONDS
        python=$(bash "$src/ops/venv.sh" | tail -n 1) || fail "ops/venv.sh failed"
        peer=("$python" "$src/tests/peers/swarmq_peer.py" --bootstrap "$bootstrap"
                --schemas "$src/schemas")
        log "venv ready in $((SECONDS - t0)) s: $python"
}

# stop_consumers NAME...: SIGTERM to every named consumer at once, then each
# must exit 0 (stop intake, drain, commit, close) within 60 s.
stop_consumers() {
        local name pid_var
        for name in "$@"; do
                pid_var=${name}_pid
                kill -TERM "${!pid_var}"
        done
        for name in "$@"; do
                pid_var=${name}_pid
                sq_wait_exit "${!pid_var}" 60 || fail "$name did not exit 0 after SIGTERM"
        done
}
