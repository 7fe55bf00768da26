#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# swarmq-producer and libswarmq with -X schema.registry.url agree with the
# consumer on ids (the real registry of the ctest fixture): submit frames
# tasks with the registered Task id, wait reads every result, replay reads
# the events (and, without the URL, refuses them naming the id it cannot
# find in the embedded catalog: registry ids are not catalog ids), and a
# task of a failing type dead-lettered with its one attempt is listed by
# dlt and redriven (re-encoded with attempt 1) to run again.
source "$(dirname "$0")/../integration/lib.sh"
url=$(sed -n 's/^schema.registry.url=//p' "$SQ_TEST_REGISTRY_STATE/url")
[[ -n "$url" ]] || fail "no registry URL in $SQ_TEST_REGISTRY_STATE/url"
sr=(-X "schema.registry.url=$url")
unset SWARMQ_VENV # the consumer would read it as a key (see 0800)

start_consumer c1 --embedded-broker -X executor.threads=2 \
        -X retry.max.attempts=1 "${sr[@]}"
wait_ready "$c1_http"

producer "${sr[@]}" -q submit --count 30 --type echo --payload "hi there" \
        --id-prefix cli --ids-out "$work/ids" || fail "submit failed"
producer "${sr[@]}" -q submit --count 1 --type fail --payload "no" \
        --id-prefix dead --ids-out "$work/dead.ids" || fail "submit failed"
cat "$work/ids" "$work/dead.ids" >"$work/all.ids"
producer "${sr[@]}" wait --ids-file "$work/all.ids" --timeout-ms 60000 \
        --print --json >"$work/wait.out" || fail "not every task got a result"
tail -n 1 "$work/wait.out" >"$work/summary.json"
assert_eq "distinct results" "$(json_get "$work/summary.json" 'j["distinct"]')" 31
assert_eq "SUCCEEDED" "$(json_get "$work/summary.json" 'j["status"].get("SUCCEEDED",0)')" 30
assert_eq "DEAD_LETTERED" "$(json_get "$work/summary.json" 'j["status"].get("DEAD_LETTERED",0)')" 1
assert_eq "echo outputs" "$(grep -c '"output": *"hi there"' "$work/wait.out")" 30

producer "${sr[@]}" replay --events >"$work/events.jsonl" || fail "replay failed"
assert_eq "succeeded events" "$(grep -c '"type": *"succeeded"' "$work/events.jsonl")" 30
status=0
producer replay --events >"$work/events-catalog.out" 2>"$work/events-catalog.err" ||
        status=$?
grep -q "schema id [0-9]* is not an\{0,1\} Event schema in the local catalog" \
        "$work/events-catalog.err" ||
        fail "replay without the registry did not name the id it cannot read (status $status): $(head -c 300 "$work/events-catalog.err")"

dead=$(cat "$work/dead.ids")
producer "${sr[@]}" dlt list --task-id "$dead" >"$work/dlt.out" ||
        fail "dlt list failed"
grep -q "$dead" "$work/dlt.out" || fail "dlt list does not show $dead"
producer "${sr[@]}" dlt redrive --task-id "$dead" --yes >"$work/redrive.out" ||
        fail "dlt redrive failed: $(cat "$work/redrive.out")"
wait_until 30 "the redriven task ran again" -- value_is -eq 2 \
        metric_sum "$c1_http" '^swarmq_dead_letters_total\{reason="FAILED"'

kill -TERM "$c1_pid"
status=0
sq_wait_exit "$c1_pid" 60 || status=$?
assert_eq "c1 exit status after SIGTERM" "$status" 0
log "passed"
