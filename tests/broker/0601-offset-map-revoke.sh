#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Revocation commits the completed-offset map: one partition, a slow task
# at its head and 200 quick ones behind it, periodic commits off (a very
# long commit.interval.ms), so the only commit is the one the revocation
# makes when a second instance joins. Whichever instance gets the
# partition next skips the 200 (counted on /metrics) and none runs twice.
# Real Kafka only: the mock cluster refuses every commit made while a
# rebalance is in progress (REBALANCE_IN_PROGRESS), revocation's included.
source "$(dirname "$0")/../integration/lib.sh"

use_real_kafka
common=(-b "$bootstrap" "${consumer_topic_args[@]}" -X topics.partitions=1
        -X executor.threads=4 -X commit.interval.ms=3600000
        -X shutdown.drain.timeout.ms=1000)
start_consumer c1 "${common[@]}"
wait_ready "$c1_http"

producer "${producer_topic_args[@]}" -q submit --type sleep --payload 60000 --id-prefix head ||
        fail "submit of the head task failed"
producer "${producer_topic_args[@]}" -q submit --count 200 --type noop --id-prefix quick \
        --ids-out "$work/quick.ids" || fail "submit failed"
producer "${producer_topic_args[@]}" wait --ids-file "$work/quick.ids" --timeout-ms 60000 >/dev/null ||
        fail "the quick tasks did not finish behind the slow head"
# Acknowledged: only the head is left in c1's window.
for ((i = 0; i < 300; i++)); do
        window=$(metric_sum "$c1_http" '^swarmq_tasks_in_flight')
        ((window == 1)) && break
        sleep 0.1
done
assert_eq "tasks in c1's window before the rebalance" "$window" 1
assert_eq "commits before the rebalance" \
        "$(metric_sum "$c1_http" '^swarmq_commits_total')" 0

log "c2 joins: c1 revokes, drains for 1 s, commits synchronously"
start_consumer c2 "${common[@]}"
for ((i = 0; i < 600; i++)); do
        revoked=$(metric_sum "$c1_http" '^swarmq_partitions_revoked_total')
        a1=$(metric_sum "$c1_http" '^swarmq_partitions_assigned\{lane="tasks"')
        a2=$(metric_sum "$c2_http" '^swarmq_partitions_assigned\{lane="tasks"')
        ((revoked >= 1 && a1 + a2 == 1)) && break
        sleep 0.1
done
((revoked >= 1)) || fail "c1 never revoked its partitions"
((a1 + a2 == 1)) || fail "the tasks partition was not reassigned (c1=$a1 c2=$a2)"
grep -q "inherited completed-offset map" "$work/c1.log" "$work/c2.log" ||
        fail "no instance inherited the map the revocation committed"
for ((i = 0; i < 300; i++)); do
        skipped=$(($(metric_sum "$c1_http" '^swarmq_completed_skipped_total') +
                $(metric_sum "$c2_http" '^swarmq_completed_skipped_total')))
        ((skipped >= 200)) && break
        sleep 0.1
done
assert_eq "records skipped as completed by the new owner" "$skipped" 200

# One results partition: reading up to a task submitted now sees every
# result written before it, duplicates included.
producer "${producer_topic_args[@]}" -q submit --type noop --id-prefix after --ids-out "$work/after.ids" ||
        fail "submit failed"
cat "$work/quick.ids" "$work/after.ids" >"$work/expect.ids"
producer "${producer_topic_args[@]}" wait --ids-file "$work/expect.ids" --timeout-ms 60000 --json \
        >"$work/summary.json" || fail "results missing"
assert_eq "distinct tasks with a result" "$(json_get "$work/summary.json" 'j["distinct"]')" 201
assert_eq "tasks run twice" "$(json_get "$work/summary.json" 'j["duplicates"]')" 0
stop_consumers c1 c2
log "passed"
