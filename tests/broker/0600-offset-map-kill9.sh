#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The completed-offset map survives a crash: one partition, a slow task at
# its head and 2000 quick ones behind it. The committed offset cannot pass
# the slow one, but the commit's metadata carries the 2000 finished offsets.
# kill -9 the instance once that map is committed, start another: it skips
# the 2000 (counted on /metrics), runs only the slow one again, and every
# task has exactly one result except the slow one. On real Kafka 3.9, with
# 2,000 completions behind the head (tests/integration/0010 is the same on
# the mock cluster, with 300).
source "$(dirname "$0")/../integration/lib.sh"

use_real_kafka
common=(-b "$bootstrap" "${consumer_topic_args[@]}" -X topics.partitions=1
        -X executor.threads=4 -X commit.interval.ms=200
        -X kafka.session.timeout.ms=6000)
start_consumer c1 "${common[@]}"
wait_ready "$c1_http"

producer "${producer_topic_args[@]}" -q submit --type sleep --payload 60000 --id-prefix head \
        --ids-out "$work/head.ids" || fail "submit of the head task failed"
producer "${producer_topic_args[@]}" -q submit --count 2000 --type noop --id-prefix quick \
        --ids-out "$work/quick.ids" || fail "submit failed"
producer "${producer_topic_args[@]}" wait --ids-file "$work/quick.ids" --timeout-ms 60000 >/dev/null ||
        fail "the quick tasks did not finish behind the slow head"

# The map in the last commit marks all 2000 done (the head is still running).
for ((i = 0; i < 300; i++)); do
        done_cnt=$(metric_sum "$c1_http" '^swarmq_offset_map_done')
        ((done_cnt == 2000)) && break
        sleep 0.1
done
assert_eq "offsets the committed map marks done" "$done_cnt" 2000
bytes=$(metric_sum "$c1_http" '^swarmq_offset_map_bytes')
log "committed map: $bytes bytes for 2000 completions above the head"

log "kill -9 c1"
kill -KILL "$c1_pid"
wait "$c1_pid" 2>/dev/null || true

start_consumer c2 "${common[@]}" -X shutdown.drain.timeout.ms=1000
wait_ready "$c2_http"
for ((i = 0; i < 300; i++)); do
        skipped=$(metric_sum "$c2_http" '^swarmq_completed_skipped_total')
        ((skipped >= 2000)) && break
        sleep 0.1
done
assert_eq "records c2 skipped as already completed" "$skipped" 2000
grep -q "inherited completed-offset map" "$work/c2.log" ||
        fail "c2 did not log the map it inherited"

# c2 runs the head again (it never finished); a task submitted now also runs.
producer "${producer_topic_args[@]}" -q submit --type noop --id-prefix after --ids-out "$work/after.ids" ||
        fail "submit failed"
producer "${producer_topic_args[@]}" wait --ids-file "$work/after.ids" --timeout-ms 60000 >/dev/null ||
        fail "a task submitted after the restart did not run"
# One results partition: reading up to the last task's result sees every
# result written before it, duplicates included.
cat "$work/quick.ids" "$work/after.ids" >"$work/expect.ids"
producer "${producer_topic_args[@]}" wait --ids-file "$work/expect.ids" --timeout-ms 10000 --json \
        >"$work/summary.json" || fail "results missing"
assert_eq "distinct tasks with a result" "$(json_get "$work/summary.json" 'j["distinct"]')" 2001
assert_eq "tasks run twice" "$(json_get "$work/summary.json" 'j["duplicates"]')" 0
ran=$(metric_sum "$c2_http" '^swarmq_tasks_total')
assert_eq "tasks c2 finished (only the one submitted after the restart)" "$ran" 1
stop_consumers c2
log "passed"
