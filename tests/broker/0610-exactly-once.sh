#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# processing.guarantee=exactly_once on real Kafka: kill -9 an instance
# mid-run, twice, restarting it under the same instance.id (so the same
# transactional.id fences the dead one and aborts its open transaction).
# A read_committed reader (swarmq-producer wait: librdkafka's default
# isolation.level) sees every task's result exactly once: no task lost, no
# duplicate, although the killed instance had produced results it never
# committed (a read_uncommitted kcat sees them).
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

common=(-b "$bootstrap" "${consumer_topic_args[@]}" -X topics.partitions=3
        -X processing.guarantee=exactly_once -X commit.interval.ms=2000
        -X executor.threads=4 -X kafka.session.timeout.ms=6000)
start_consumer c1 "${common[@]}"
wait_ready "$c1_http"

producer "${producer_topic_args[@]}" -q submit --count 3000 --type sleep \
        --payload 3 --ids-out "$work/all.ids" || fail "submit failed"
for round in 1 2; do
        producer "${producer_topic_args[@]}" wait --count $((round * 800)) \
                --timeout-ms 120000 >/dev/null || fail "no progress before kill $round"
        # Results just became visible, so a transaction just committed:
        # let the open one take in 200 more finished tasks first.
        base=$(metric_sum "$c1_http" '^swarmq_tasks_total')
        for ((i = 0; i < 200; i++)); do
                (($(metric_sum "$c1_http" '^swarmq_tasks_total') >= base + 200)) && break
                sleep 0.01
        done
        log "kill -9 c1 (round $round)"
        kill -KILL "$c1_pid"
        wait "$c1_pid" 2>/dev/null || true
        mv "$work/c1.log" "$work/c1-killed-$round.log"
        start_consumer c1 "${common[@]}"
done
producer "${producer_topic_args[@]}" wait --ids-file "$work/all.ids" \
        --timeout-ms 180000 --json >"$work/summary.json" ||
        fail "tasks missing after kill -9 and restart"
assert_eq "distinct task ids with a committed result" \
        "$(json_get "$work/summary.json" 'j["distinct"]')" 3000
assert_eq "committed results in all (exactly once)" \
        "$(json_get "$work/summary.json" 'j["total"]')" 3000
# The whole topic, to its end, both ways: read_committed holds each task
# once; read_uncommitted also shows what the dead instances produced in
# transactions that were aborted.
command -v kcat >/dev/null || fail "kcat is needed (bash ops/deps.sh --test)"
count_results() {
        kcat -b "$bootstrap" -C -t "$t_results" -X "isolation.level=$1" -e -q \
                -f '%k\n' 2>/dev/null
}
count_results read_committed | sort >"$work/committed.keys"
assert_eq "committed results in the topic" "$(wc -l <"$work/committed.keys")" 3000
assert_eq "task ids with more than one committed result" \
        "$(uniq -d "$work/committed.keys" | wc -l)" 0
raw=$(count_results read_uncommitted | wc -l)
log "results in the topic including aborted transactions: $raw"
# A transaction stays open for 2 s of results: each kill leaves one.
((raw > 3000)) || fail "no aborted result in the topic: the kills proved nothing"
assert_eq "transaction commits that failed" \
        "$(metric_sum "$c1_http" '^swarmq_commits_total\{result="error"')" 0
stop_consumers c1
log "passed"
