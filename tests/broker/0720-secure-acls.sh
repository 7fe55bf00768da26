#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A secured cluster (SASL_SSL with SCRAM-SHA-512, TLS, ACLs on: the
# fixture kafka-secure, see secure_lib.sh): swarmq-consumer logged in as
# User:swarmq and swarmq-producer as User:producer, granted exactly the
# ACLs of ops/kafka/acls.py (the list README.md shows), run every kind of
# task: normal, CRITICAL, failing ones that are retried and dead-lettered,
# then the same group under processing.guarantee=exactly_once (its
# transactional id ACL); swarmq-producer's operator commands run with the
# same ACLs: replay of the results and of the events, dlt list, and dlt
# redrive twice (the second sends only the dead letters the first did
# not, from what the first recorded in its group). Every task has its
# result; no instance or command logs an error; no password appears in
# the logs, --dump-config, /status, /metrics or /events. 0721 takes the
# ACLs away one at a time.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/secure_lib.sh"
use_secure_kafka

# README.md's ACL list is this list (with the default names).
diff <(sed -n '/^<!-- acls:/,/^<!-- \/acls -->/p' "$src/README.md" | sed '1d;$d') \
        <("$python" "$src/ops/kafka/acls.py" table --exactly-once --workflows --schedules) >"$work/readme.diff" ||
        fail "README.md's ACL list differs from ops/kafka/acls.py table --exactly-once --workflows --schedules: $(cat "$work/readme.diff")"
all=(--exactly-once --workflows --schedules)
acl grant "${all[@]}" 2>"$work/acl.txt" ||
        fail "granting the ACLs failed: $(cat "$work/acl.txt")"
log "granted $(acl count "${all[@]}") ACLs: $(acl list "${all[@]}" | cut -f2 | paste -sd';')"

token=tok-0720-$$
start_consumer c1 "${consumer_secure_args[@]}" -X retry.backoff.initial.ms=100 \
        -X retry.backoff.max.ms=200 -X http.admin.token="$token"
wait_ready "$c1_http"

"${psec[@]}" -q submit --count 40 --type sha256 --payload hi --ids-out "$work/ids" ||
        fail "submit as User:producer failed"
"${psec[@]}" -q submit --count 5 --type echo --priority CRITICAL --ids-out "$work/ids.crit" ||
        fail "submit --priority CRITICAL as User:producer failed"
"${psec[@]}" -q submit --count 3 --type fail --max-attempts 2 --ids-out "$work/ids.fail" ||
        fail "submit of failing tasks failed"
cat "$work/ids.crit" "$work/ids.fail" >>"$work/ids"
"${psec[@]}" wait --ids-file "$work/ids" --timeout-ms 60000 >"$work/wait.out" ||
        fail "not every task has its result: $(tail -n 5 "$work/wait.out")"
grep -E '^status:' "$work/wait.out"
assert_eq "results" "$(sed -n 's/^results: \([0-9]*\) total.*/\1/p' "$work/wait.out")" 48
assert_eq "dead-lettered (retried once through the retry topic)" \
        "$(sed -n 's/.*DEAD_LETTERED=\([0-9]*\).*/\1/p' "$work/wait.out")" 3
assert_eq "retries" "$(metric_sum "$c1_http" '^swarmq_retries_total')" 3

# cli NAME CMD...: a swarmq-producer command as User:producer; its
# output in $work/NAME.out, its stderr in $work/NAME.log (no error line).
cli() {
        local name=$1
        shift
        "${psec[@]}" "$@" >"$work/$name.out" 2>"$work/$name.log" ||
                fail "swarmq-producer $* as User:producer failed: $(tail -n 3 "$work/$name.log")"
        if grep -E ' (WARN|ERR|CRIT) ' "$work/$name.log"; then
                fail "swarmq-producer $* logged an error with every ACL it needs granted"
        fi
}
cli replay-results replay --results
assert_eq "tasks in replay --results" \
        "$(grep -o '"task_id":"[^"]*"' "$work/replay-results.out" | sort -u | wc -l)" 48
cli replay-events replay --type dead_lettered
assert_eq "dead_lettered events in replay" "$(wc -l <"$work/replay-events.out")" 3
cli dlt-list dlt list --topic "$t_dlt"
assert_eq "dead letters in dlt list" "$(grep -c '^dlt=' "$work/dlt-list.out")" 3
cli redrive1 dlt redrive --topic "$t_dlt" --yes
assert_eq "dead letters redriven" "$(grep -c '^redriven ' "$work/redrive1.out")" 3
# dlt_count: the dead letters in the topic (dlt list).
dlt_count() {
        "${psec[@]}" dlt list --topic "$t_dlt" 2>/dev/null | grep -c '^dlt='
}
# They fail again (the fail type): three more dead letters.
wait_until 60 "the redriven tasks dead-lettered again" -- value_is == 6 dlt_count
cli redrive2 dlt redrive --topic "$t_dlt" --yes
assert_eq "second redrive: sent" "$(grep -c '^redriven ' "$work/redrive2.out")" 3
assert_eq "second redrive: already sent by the first" \
        "$(grep -c '^already-redriven ' "$work/redrive2.out")" 3
wait_until 60 "the second redrive's tasks dead-lettered again" -- value_is == 9 dlt_count
log "ok: replay --results (48 tasks), replay (3 dead_lettered events), dlt list (3), dlt redrive (3, then 3 new and 3 already sent) as User:producer"

# Cancellation as each principal: swarmq-producer cancel (User:producer's
# Write on the control topic) and POST /admin/cancel (User:swarmq's).
# Cancelled first and submitted once c1 has read both cancels: the tasks
# end CANCELLED without running.
cli cancel cancel --topic-control "$t_control" cancel-cli-000001
assert_eq "POST /admin/cancel" "$(curl -s -o "$work/cancel-http.out" -w '%{http_code}' \
        -X POST -H "Authorization: Bearer $token" \
        "$c1_http/admin/cancel?id=cancel-http-000001")" 202
for id in cancel-cli-000001 cancel-http-000001; do
        wait_until 30 "c1 read the cancel of $id" -- grep -qF "task_id=$id cancelled" "$work/c1.log"
done
for how in cli http; do
        "${psec[@]}" -q submit --id-prefix "cancel-$how" --type echo --payload x ||
                fail "submit failed"
done
"${psec[@]}" -q wait --id cancel-cli-000001 --id cancel-http-000001 --print \
        --timeout-ms 60000 >"$work/cancelled.json" ||
        fail "no result for the cancelled tasks: $(tail -n 3 "$work/cancelled.json")"
assert_eq "tasks cancelled by swarmq-producer cancel and POST /admin/cancel" \
        "$(grep -c '"status": *"CANCELLED"' "$work/cancelled.json")" 2

# What an operator may show: none of it holds a password.
sq_http_get "$c1_http/status" >"$work/status.json"
sq_http_get "$c1_http/metrics" >"$work/metrics.txt"
# /events is a live stream: two seconds of it (the ring's backlog).
curl -s -m 2 "$c1_http/events" >"$work/events.txt" || true
[[ -s "$work/events.txt" ]] || fail "/events sent nothing"
"$consumer_bin" "${consumer_secure_args[@]}" --dump-config >"$work/dump-config.txt" ||
        fail "--dump-config failed"
grep -q '^kafka.sasl.password=\*\*\*$' "$work/dump-config.txt" ||
        fail "--dump-config does not show kafka.sasl.password masked"
stop_consumers c1

# The same group under exactly-once: its transactional id
# swarmq-<group>-c2 is covered by the prefixed ACL; with workflows (their
# owner's swarmq-workflows-<group>-<partition>) and a schedule (fired in
# swarmq-schedules-<group>'s transactions).
t_workflows=$prefix-workflows
start_consumer c2 "${consumer_secure_args[@]}" -X processing.guarantee=exactly_once \
        -X commit.interval.ms=200 -X kafka.transaction.timeout.ms=10000 \
        -X workflows.enable=true -X topic.workflows="$t_workflows" \
        -X schedule.tick.every.ms=1000 -X schedule.tick.type=echo \
        -X schedule.tick.payload=tick
wait_ready "$c2_http"
"${psec[@]}" -q submit --count 20 --type sha256 --payload eos --ids-out "$work/ids.eos" ||
        fail "submit failed"
"${psec[@]}" wait --ids-file "$work/ids.eos" --timeout-ms 60000 >"$work/wait-eos.out" ||
        fail "exactly_once: not every task has its result: $(tail -n 5 "$work/wait-eos.out")"
assert_eq "exactly_once results (read_committed)" \
        "$(sed -n 's/^results: \([0-9]*\) total.*/\1/p' "$work/wait-eos.out")" 20
cat >"$work/chord.json" <<EOF
{"id": "chord-$$",
 "workflow": {"group": [{"type": "sha256", "payload": "a"},
                        {"type": "sha256", "payload": "b"}],
              "join": {"type": "echo"}}}
EOF
cli workflow --topic-workflows "$t_workflows" workflow "$work/chord.json"
"${psec[@]}" -q wait --id "chord-$$" --print --timeout-ms 60000 >"$work/chord.out" ||
        fail "the workflow has no result: $(tail -n 3 "$work/chord.out")"
grep -q '"status": *"SUCCEEDED"' "$work/chord.out" ||
        fail "the workflow did not succeed: $(cat "$work/chord.out")"
cli replay-workflow --topic-workflows "$t_workflows" replay --workflow "chord-$$"
grep -q "^workflow chord-$$: SUCCEEDED, 3 tasks" "$work/replay-workflow.out" ||
        fail "replay --workflow: $(head -n 3 "$work/replay-workflow.out")"
log "ok: a chord as User:producer (workflow, wait, replay --workflow), its steps in c2's transactions"
# schedule_results: results of the schedule's tasks (schedule-tick-T).
schedule_results() {
        "${psec[@]}" replay --results 2>/dev/null | grep '"task_id":"schedule-tick-' |
                grep -c '"SUCCEEDED"'
}
wait_until 60 "a task of the schedule succeeded" -- value_is -ge 1 schedule_results
log "ok: the schedule's ticks fired and ran ($(schedule_results) results)"
sq_http_get "$c2_http/status" >"$work/status-eos.json"
sq_http_get "$c2_http/metrics" >"$work/metrics-eos.txt"
stop_consumers c2

for c in c1 c2; do
        if grep -E ' (ERR|CRIT|ALERT|EMERG) ' "$work/$c.log"; then
                fail "$c logged an error with every ACL it needs granted"
        fi
done
log "ok: no error logged by c1 (at least once) or c2 (exactly once)"
no_secret_in "logs, --dump-config, /status, /metrics, /events" "$work"/*.log \
        "$work"/*.out "$work"/*.json "$work"/*.txt
log "passed"
