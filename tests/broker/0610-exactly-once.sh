#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# processing.guarantee=exactly_once on real Kafka: kill -9 an instance
# mid-run, twice, restarting it under the same instance.id (so the same
# transactional.id fences the dead one and aborts its open transaction).
# A read_committed reader (swarmq-producer wait: librdkafka's default
# isolation.level) sees every task's result exactly once: no task lost, no
# duplicate, although the killed instance had produced results it never
# committed (a read_uncommitted kcat sees them). The scenario is in
# exactly_once.sh, shared with 0611.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/exactly_once.sh"
use_real_kafka

# Two rounds: once results show progress, kill -9 c1 while it has a
# transaction open, and start it again under the same instance.id.
kill_twice() {
        local round base
        for round in 1 2; do
                producer "${producer_topic_args[@]}" wait --count $((round * 800)) \
                        --timeout-ms 120000 >/dev/null || fail "no progress before kill $round"
                # Results just became visible, so a transaction just
                # committed: let the open one take in 200 more finished
                # tasks first.
                base=$(metric_sum "$c1_http" '^swarmq_tasks_total')
                wait_until 5 "200 more tasks finished" --every 0.01 --no-fail -- \
                        value_is -ge $((base + 200)) metric_sum "$c1_http" '^swarmq_tasks_total' || true
                log "kill -9 c1 (round $round)"
                kill -KILL "$c1_pid"
                wait "$c1_pid" 2>/dev/null || true
                mv "$work/c1.log" "$work/c1-killed-$round.log"
                start_consumer c1 "${common[@]}"
        done
}
# A transaction stays open for 2 s of results: each kill leaves one.
exactly_once_scenario 2000 kill_twice "after kill -9 and restart"
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
((raw > 3000)) || fail "no aborted result in the topic: the kills proved nothing"
assert_eq "transaction commits that failed" \
        "$(metric_sum "$c1_http" '^swarmq_commits_total\{result="error"')" 0
stop_consumers c1
log "passed"
