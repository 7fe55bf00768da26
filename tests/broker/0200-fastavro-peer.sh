#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# swarmq's bytes checked by an Avro implementation and a Kafka client that
# are not ours, on a real Apache Kafka broker. A Python producer
# (confluent-kafka + fastavro, in the venv of ops/venv.sh) encodes 300
# tasks with fastavro from schemas/task.avsc in the Confluent framing
# (schema id 1): every builtin, binary and empty payloads, UTF-8 ids and
# error texts, task headers, capabilities that pick the agent, a missing
# capability, timeouts, attempt numbers, CRITICAL tasks on the fast-lane
# topic. One swarmq-consumer runs them. The Python side then reads the
# results and events topics from the beginning, decodes them with fastavro
# against result.avsc and event.avsc (framing byte, schema ids 2 and 3,
# nothing after the body), and asserts every field against what it
# computes itself: output bytes (hashlib for sha256 and cpu), status,
# error, agent, instance, attempts, source topic/partition/offset equal to
# its own delivery reports, created_at <= started_at <= finished_at; and
# per task exactly received, started, terminal events, in that order in
# one events partition, with unique event ids.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

use_python_peer

t0=$SECONDS
start_consumer c1 -b "$bootstrap" "${consumer_topic_args[@]}" \
        -X executor.threads=4 -X retry.max.attempts=1
wait_ready "$c1_http"
log "c1 joined the group and got partitions in $((SECONDS - t0)) s"

t0=$SECONDS
"${peer[@]}" produce --mix peer --count 300 --tasks "$t_tasks" \
        --critical "$t_critical" --plan-out "$work/plan.jsonl" ||
        fail "the Python producer could not produce the tasks"
assert_eq "tasks in the plan" "$(wc -l <"$work/plan.jsonl")" 300
"${peer[@]}" check --results "$t_results" --events "$t_events" \
        --plan "$work/plan.jsonl" --instance c1 --timeout 120 ||
        fail "results or events decoded by fastavro are wrong (see above)"
log "produced and checked in $((SECONDS - t0)) s"

assert_eq "metric: finished tasks" \
        "$(metric_sum "$c1_http" '^swarmq_tasks_total')" 300
assert_eq "metric: decode dead letters" \
        "$(metric_sum "$c1_http" '^swarmq_dead_letters_total\{reason="DECODE_ERROR"')" 0
assert_eq "metric: dead letters after their one attempt" \
        "$(metric_sum "$c1_http" '^swarmq_dead_letters_total\{reason="(FAILED|TIMED_OUT|NO_AGENT)"')" \
        "$(grep -c '"status": *"DEAD_LETTERED"' "$work/plan.jsonl")"

kill -TERM "$c1_pid"
status=0
sq_wait_exit "$c1_pid" 60 || status=$?
assert_eq "c1 exit status after SIGTERM" "$status" 0
log "passed"
