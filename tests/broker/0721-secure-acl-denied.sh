#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The secured cluster of 0720 with one ACL taken away at a time (every
# entry of ops/kafka/acls.py's list, then given back): what swarmq says
# names the operation and the resource, and a per-record write that is
# denied decides the task's outcome instead of stopping the instance:
#   Read on a task topic, the group, the control topic: an error line
#     naming it (the instance keeps running; granting it later is enough);
#   Write on the control topic: POST /admin/cancel answered, then an
#     error line naming the task and the ACL, under at_least_once and
#     exactly_once (where the instance then still commits a task's
#     result: the refused cancel is not in its transaction);
#     swarmq-producer cancel says it and exits 1;
#   Write on results: the task goes to the dead-letter topic (redrive it
#     once granted); on retry: the task is dead-lettered, its DEAD_LETTERED
#     result naming the ACL; on events or the dead-letter topic: that
#     record is dropped with an error line, the result is written;
#   Write on the transactional id: an exactly_once instance does not
#     start, and says why;
#   swarmq-producer: submit and wait fail at once, naming the ACL (exit
#     1); replay, dlt list and dlt redrive without Read on their topic or
#     redrive's group too (exit 3); dlt redrive without Write on the task
#     topic reports each dead letter failed, naming it (exit 1).
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/secure_lib.sh"
use_secure_kafka

acl grant --exactly-once 2>"$work/acl.txt" ||
        fail "granting the ACLs failed: $(cat "$work/acl.txt")"
fast=(-X retry.backoff.initial.ms=100 -X retry.backoff.max.ms=200)
token=tok-0721-$$
k=0

# log_has NAME TEXT: consumer NAME's log has a line with TEXT.
log_has() {
        grep -F -- "$2" "$work/$1.log"
}

# instance NAME [args]: starts consumer NAME (logged in as User:swarmq);
# its URL in $url, its pid in $pid.
instance() {
        local name=$1
        shift
        start_consumer "$name" "${consumer_secure_args[@]}" "${fast[@]}" "$@"
        local u=${name}_http p=${name}_pid
        url=${!u}
        pid=${!p}
}

# expect_line NAME LEVEL TEXT: waits for consumer NAME's LEVEL line with
# TEXT, then checks it still runs.
expect_line() {
        wait_until 30 "$1 logs '$3'" -- log_has "$1" "$3"
        grep -qE " $2 .*$(sed 's/[][\.*^$/]/\\&/g' <<<"$3")" "$work/$1.log" ||
                fail "$1 said '$3' at another level than $2: $wait_seen"
        local pid_var=${1}_pid
        kill -0 "${!pid_var}" 2>/dev/null || fail "$1 stopped after: $3"
        log "ok: $1: $(grep -F -- "$3" "$work/$1.log" | head -n 1 | cut -d' ' -f2-)"
}

# submit_one TYPE [submit options]: one task as User:producer; its id in
# $id.
submit_one() {
        local type=$1
        shift
        "${psec[@]}" -q submit --count 1 --type "$type" --ids-out "$work/one.id" "$@" ||
                fail "submit of a $type task failed"
        id=$(<"$work/one.id")
}

# result_of ID: the task's result as JSON (swarmq-producer wait --print).
result_of() {
        "${psec[@]}" -q wait --id "$1" --print --timeout-ms 30000 >"$work/result.json" ||
                fail "no result for $1"
        cat "$work/result.json"
}

# cli_denied TEXT CMD...: the swarmq-producer command fails (exit 1, or
# $want) within 30 s and says TEXT.
cli_denied() {
        local text=$1 rc=0 want=${want:-1}
        shift
        timeout 30 "$@" >"$work/cli.out" 2>&1 || rc=$?
        [[ $rc == "$want" ]] || fail "swarmq-producer $*: exit $rc, expected $want: $(tail -n 3 "$work/cli.out")"
        grep -qF -- "$text" "$work/cli.out" ||
                fail "swarmq-producer did not say '$text': $(tail -n 3 "$work/cli.out")"
        log "ok: swarmq-producer: $(grep -F -- "$text" "$work/cli.out" | head -n 1)"
}

n=$(acl count --exactly-once)
for ((i = 1; i <= n; i++)); do
        what=$(acl list --exactly-once --only "$i" | cut -f2)
        acl revoke --exactly-once --only "$i" 2>>"$work/acl.txt" ||
                fail "cannot revoke: $what"
        log "without: $what"
        k=$((k + 1))
        c=c$k
        case "$what" in
        "User:swarmq Read on topic $t_tasks" | "User:swarmq Read on topic $t_critical" | \
                "User:swarmq Read on topic $t_retry")
                instance $c
                expect_line $c ERR "Read on topic ${what##* } denied"
                stop_consumers $c
                ;;
        "User:swarmq Read on group $group")
                instance $c
                expect_line $c ERR "Read on group $group denied"
                stop_consumers $c
                ;;
        "User:swarmq Read on topic $t_control")
                instance $c
                # Write on it (kept) implies Describe: the control
                # reader gets as far as fetching.
                expect_line $c ERR "consumer: Read on topic $t_control denied"
                stop_consumers $c
                ;;
        "User:swarmq Write on topic $t_control")
                # POST /admin/cancel answers once the record is queued:
                # the denied delivery is an error line naming the task.
                instance $c -X http.admin.token="$token"
                wait_ready "$url"
                code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
                        -H "Authorization: Bearer $token" "$url/admin/cancel?id=denied-$k")
                assert_eq "POST /admin/cancel without Write on $t_control" "$code" 202
                expect_line $c ERR "cancel task_id=denied-$k not delivered to topic.control=$t_control: Write on topic $t_control denied"
                stop_consumers $c
                # exactly_once: the cancel goes out of a producer of its
                # own, so its refusal cannot fail (nor, when it is alone
                # in it, make fatal) the instance's transaction.
                instance ${c}x -X http.admin.token="$token" \
                        -X processing.guarantee=exactly_once
                wait_ready "$url"
                code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
                        -H "Authorization: Bearer $token" "$url/admin/cancel?id=denied-${k}x")
                assert_eq "exactly_once: POST /admin/cancel without Write on $t_control" "$code" 202
                expect_line ${c}x ERR "cancel task_id=denied-${k}x not delivered to topic.control=$t_control: Write on topic $t_control denied"
                submit_one sha256
                result_of "$id" | grep -q '"status": *"SUCCEEDED"' ||
                        fail "exactly_once: no SUCCEEDED result for $id after the refused cancel: $(cat "$work/result.json")"
                log "ok: exactly_once: $id SUCCEEDED after the refused cancel"
                stop_consumers ${c}x
                ;;
        "User:swarmq Write on topic $t_results")
                instance $c
                wait_ready "$url"
                submit_one sha256
                expect_line $c ERR "task_id=$id: its result was not written: Write on topic $t_results denied"
                wait_until 30 "the task in the dead-letter topic" -- value_is == 1 \
                        metric_sum "$url" 'swarmq_dead_letters_total\{reason="RECORD_REFUSED"'
                stop_consumers $c
                ;;
        "User:swarmq Write on topic $t_events")
                instance $c
                wait_ready "$url"
                submit_one sha256
                result_of "$id" | grep -q '"status": *"SUCCEEDED"' ||
                        fail "no SUCCEEDED result for $id: $(cat "$work/result.json")"
                expect_line $c ERR "task_id=$id: event dropped: Write on topic $t_events denied"
                stop_consumers $c
                ;;
        "User:swarmq Write on topic $t_retry")
                instance $c
                wait_ready "$url"
                submit_one fail --max-attempts 3
                result_of "$id" | grep -q '"status": *"DEAD_LETTERED"' ||
                        fail "no DEAD_LETTERED result for $id: $(cat "$work/result.json")"
                grep -qF "Write on topic $t_retry denied" "$work/result.json" ||
                        fail "the result does not name the ACL: $(cat "$work/result.json")"
                log "ok: the task's result: $(cut -c1-300 "$work/result.json")"
                expect_line $c ERR "task_id=$id: Write on topic $t_retry denied"
                stop_consumers $c
                ;;
        "User:swarmq Write on topic $t_dlt")
                instance $c
                wait_ready "$url"
                submit_one fail --max-attempts 1
                result_of "$id" | grep -q '"status": *"DEAD_LETTERED"' ||
                        fail "no DEAD_LETTERED result for $id: $(cat "$work/result.json")"
                expect_line $c ERR "task_id=$id: dead letter dropped: Write on topic $t_dlt denied"
                stop_consumers $c
                ;;
        "User:swarmq Write on transactional id swarmq-$group-*")
                # It stops before it prints its address (start_consumer
                # would wait for that).
                "$consumer_bin" --http-port auto -i $c "${consumer_secure_args[@]}" \
                        -X processing.guarantee=exactly_once \
                        >"$work/$c.out" 2>"$work/$c.log" &
                pid=$!
                sq_pids+=("$pid")
                rc=0
                sq_wait_exit "$pid" 90 || rc=$?
                [[ $rc != 0 && $rc != 124 ]] ||
                        fail "exactly_once without its ACL: exit $rc, expected a failure"
                grep -qF "Write on transactional id swarmq-$group-$c denied" "$work/$c.log" ||
                        fail "$c did not name the transactional id: $(tail -n 3 "$work/$c.log")"
                log "ok: $c exit $rc: $(grep -F 'transactional id' "$work/$c.log" | head -n 1 | cut -d' ' -f2-)"
                ;;
        "User:producer Write on topic $t_tasks")
                cli_denied "Write on topic $t_tasks denied" "${psec[@]}" submit --count 1
                # The dead letters of the Write on results and retry
                # cases, back to the task topic: each one fails.
                cli_denied "Write on topic $t_tasks denied" "${psec[@]}" dlt redrive \
                        --topic "$t_dlt" --yes
                grep -q '^failed dlt=.* error="Write on topic '"$t_tasks"' denied' "$work/cli.out" ||
                        fail "dlt redrive did not name the ACL for each dead letter: $(tail -n 3 "$work/cli.out")"
                ;;
        "User:producer Write on topic $t_critical")
                cli_denied "Write on topic $t_critical denied" "${psec[@]}" submit --count 1 \
                        --priority CRITICAL
                ;;
        "User:producer Write on topic $t_control")
                cli_denied "Write on topic $t_control denied" \
                        "${psec[@]}" cancel --topic-control "$t_control" "denied-$k"
                ;;
        "User:producer Read on topic $t_results")
                cli_denied "Read on topic $t_results denied" "${psec[@]}" wait --count 1
                want=3 cli_denied "Read on topic $t_results denied" "${psec[@]}" replay --results
                ;;
        "User:producer Read on group swarmq-producer-wait-*")
                cli_denied "Read on group swarmq-producer-wait-* (a prefixed ACL) denied" \
                        "${psec[@]}" wait --count 1
                ;;
        "User:producer Read on topic $t_events")
                want=3 cli_denied "Read on topic $t_events denied" "${psec[@]}" replay
                ;;
        "User:producer Read on topic $t_dlt")
                want=3 cli_denied "Read on topic $t_dlt denied" "${psec[@]}" dlt list \
                        --topic "$t_dlt"
                want=3 cli_denied "Read on topic $t_dlt denied" "${psec[@]}" dlt redrive \
                        --topic "$t_dlt" --yes
                ;;
        "User:producer Read on group swarmq-redrive-$t_dlt")
                want=3 cli_denied "Read on group swarmq-redrive-$t_dlt denied" \
                        "${psec[@]}" dlt redrive --topic "$t_dlt" --yes
                ;;
        *)
                fail "no check for the ACL '$what': add one"
                ;;
        esac
        acl grant --exactly-once --only "$i" 2>>"$work/acl.txt" ||
                fail "cannot grant again: $what"
done
assert_eq "ACLs taken away one at a time" "$k" "$n"
no_secret_in "the logs" "$work"/*.log "$work"/*.out
log "passed"
