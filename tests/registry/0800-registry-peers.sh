#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# swarmq with a real Schema Registry (Apicurio, the ctest fixture
# "registry"), fed and read by confluent-kafka's own AvroSerializer and
# AvroDeserializer, which know nothing of swarmq's framing: the serializer
# registers its writer schema under swarmq-tasks-value and frames tasks
# with the registry's id. One consumer on its embedded broker, with
# schema.registry.url set, registers its schemas at start-up, runs 40
# tasks written with schemas/task.avsc and 40 written with an older,
# reordered Task shape carrying a field swarmq does not know (both ids it
# has never seen: it fetches and resolves them), and dead-letters a record
# framed with an id the registry does not have, naming the id. The
# deserializer then reads every result and event, framed with the ids
# registered under swarmq-results-value and swarmq-events-value.
source "$(dirname "$0")/../integration/lib.sh"
url=$(sed -n 's/^schema.registry.url=//p' "$SQ_TEST_REGISTRY_STATE/url") ||
        fail "no registry URL in $SQ_TEST_REGISTRY_STATE/url"
[[ -n "$url" ]] || fail "no registry URL in $SQ_TEST_REGISTRY_STATE/url"
python=$(bash "$src/ops/venv.sh" | tail -n 1) || fail "ops/venv.sh failed"
# The consumer reads SWARMQ_* variables as keys: not this one.
unset SWARMQ_VENV

start_consumer c1 --embedded-broker -X executor.threads=2 \
        -X retry.max.attempts=1 -X "schema.registry.url=$url"
wait_ready "$c1_http"
grep -q "registered in the schema registry $url: swarmq-tasks-value id=" \
        "$work/c1.log" || fail "c1 did not log its registered schema ids"
peer=("$python" "$src/tests/registry/registry_peer.py" --bootstrap "$bootstrap"
        --registry "$url")

"${peer[@]}" produce --topic swarmq-tasks --count 40 --id-prefix cur \
        --schema "$src/schemas/task.avsc" --ids-out "$work/ids" >"$work/cur.out" ||
        fail "the AvroSerializer producer (task.avsc) failed"
"${peer[@]}" produce --topic swarmq-tasks --count 40 --id-prefix lag \
        --lagging --ids-out "$work/ids" >"$work/lag.out" ||
        fail "the AvroSerializer producer (older Task shape) failed"
cur_id=$(sed -n 's/^schema.id=//p' "$work/cur.out")
lag_id=$(sed -n 's/^schema.id=//p' "$work/lag.out")
log "the serializer wrote with schema ids $cur_id (task.avsc) and $lag_id (older)"
[[ "$cur_id" != "$lag_id" ]] || fail "both shapes got id $cur_id"
"${peer[@]}" raw --topic swarmq-tasks --schema-id 987654321 ||
        fail "could not write the record of an unknown id"

"${peer[@]}" check --results swarmq-results --events swarmq-events \
        --ids "$work/ids" --timeout 90 ||
        fail "the AvroDeserializer did not read the right results and events"

wait_until 30 "the unknown id is dead-lettered" -- value_is -eq 1 \
        metric_sum "$c1_http" '^swarmq_dead_letters_total\{reason="DECODE_ERROR"'
grep -q "schema id 987654321 is unknown to the schema registry" "$work/c1.log" ||
        fail "the dead letter's reason does not name schema id 987654321"
assert_eq "finished tasks" "$(metric_sum "$c1_http" '^swarmq_tasks_total')" 80

kill -TERM "$c1_pid"
status=0
sq_wait_exit "$c1_pid" 60 || status=$?
assert_eq "c1 exit status after SIGTERM" "$status" 0
log "passed"
