#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Tasks running 2.5 times kafka.max.poll.interval.ms do not get the
# instance evicted from its group: the poll thread keeps polling while the
# task runs (and while intake is paused by a tiny admission window), so
# there is no rebalance (no revocation, the assignment count does not
# move), no "maximum poll interval exceeded" from librdkafka, and the
# tasks' single results arrive, along with the tasks queued behind them.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

start_consumer c1 -b "$bootstrap" "${consumer_topic_args[@]}" \
        -X kafka.max.poll.interval.ms=10000 -X kafka.session.timeout.ms=6000 \
        -X executor.threads=4 -X admission.high.mark=2 -X admission.low.mark=1
wait_ready "$c1_http"
assigned=$(metric_sum "$c1_http" '^swarmq_partitions_assigned_total')

# Two long tasks fill the window of 2: intake holds, and after 500 ms
# pauses (the short tasks wait in Kafka until a long one is done).
producer "${producer_topic_args[@]}" -q submit --count 2 --type sleep --payload 25000 \
        --id-prefix long --ids-out "$work/long.ids" || fail "submit failed"
producer "${producer_topic_args[@]}" -q submit --count 20 --type noop \
        --id-prefix short --ids-out "$work/short.ids" || fail "submit failed"
cat "$work/long.ids" "$work/short.ids" >"$work/all.ids"
producer "${producer_topic_args[@]}" wait --ids-file "$work/all.ids" \
        --timeout-ms 90000 --json >"$work/summary.json" ||
        fail "results missing"
assert_eq "distinct tasks with a result" "$(json_get "$work/summary.json" 'j["distinct"]')" 22
assert_eq "results in all (no task ran twice)" "$(json_get "$work/summary.json" 'j["total"]')" 22
assert_eq "succeeded" "$(json_get "$work/summary.json" 'j["status"]["SUCCEEDED"]')" 22
assert_eq "partitions revoked while the long task ran" \
        "$(metric_sum "$c1_http" '^swarmq_partitions_revoked_total')" 0
assert_eq "partition assignments (unchanged since start)" \
        "$(metric_sum "$c1_http" '^swarmq_partitions_assigned_total')" "$assigned"
pauses=$(metric_sum "$c1_http" '^swarmq_admission_pauses_total')
((pauses >= 1)) || fail "intake never paused: the window did not fill behind the long task"
log "intake paused $pauses times while the long task ran"
if grep -qi "maximum poll interval" "$work/c1.log"; then
        fail "librdkafka reports the poll interval exceeded"
fi
log "ok: no poll-interval eviction"
stop_consumers c1
log "passed"
