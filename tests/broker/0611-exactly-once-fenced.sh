#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# processing.guarantee=exactly_once, the failed-transaction path, on real
# Kafka: a second instance started by mistake with the running one's
# instance.id takes over its transactional.id and fences it. The fenced
# instance's open transaction cannot commit: it aborts, names the cause in
# its log, stops with exit status 1 at once (no drain: nothing it
# finishes can be committed), and leaves the group; the newcomer
# runs the rest. A read_committed reader still sees every task's result
# exactly once.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

common=(-b "$bootstrap" "${consumer_topic_args[@]}" -X topics.partitions=3
        -X processing.guarantee=exactly_once -X commit.interval.ms=1000
        -X executor.threads=4 -X kafka.session.timeout.ms=6000)
start_consumer c1 "${common[@]}"
wait_ready "$c1_http"

producer "${producer_topic_args[@]}" -q submit --count 3000 --type sleep \
        --payload 3 --ids-out "$work/all.ids" || fail "submit failed"
producer "${producer_topic_args[@]}" wait --count 500 --timeout-ms 120000 \
        >/dev/null || fail "no progress before the second instance"

# The same instance.id (-i), so the same transactional.id.
log "starting c2 with c1's instance.id"
start_consumer c2 "${common[@]}" -i c1

# Within 30 s: it must not wait out the drain deadline (30 s) for tasks
# whose results it can no longer commit.
rc=0
for ((i = 0; i < 300; i++)); do
        kill -0 "$c1_pid" 2>/dev/null || break
        sleep 0.1
done
kill -0 "$c1_pid" 2>/dev/null && fail "c1 kept running after it was fenced"
wait "$c1_pid" || rc=$?
assert_eq "fenced instance's exit status" "$rc" 1
grep -q 'CRIT.*TXN.*failed' "$work/c1.log" ||
        fail "c1's log does not say its transaction failed"
grep -qi 'fenced' "$work/c1.log" ||
        fail "c1's log does not name the cause (fenced)"

producer "${producer_topic_args[@]}" wait --ids-file "$work/all.ids" \
        --timeout-ms 180000 --json >"$work/summary.json" ||
        fail "tasks missing after the fenced instance stopped"
assert_eq "distinct task ids with a committed result" \
        "$(json_get "$work/summary.json" 'j["distinct"]')" 3000
assert_eq "committed results in all (exactly once)" \
        "$(json_get "$work/summary.json" 'j["total"]')" 3000
stop_consumers c2
log "passed"
