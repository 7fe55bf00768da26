#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A crash, for real: kill -9 one of three instances mid-run, twice,
# restarting it each time. Nothing is lost (every task id gets a result);
# duplicates are allowed (at-least-once) and must stay within what the
# killed instance had admitted but not committed: its admission window
# plus one commit interval of finished work.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

window=300
common=(-b "$bootstrap" "${consumer_topic_args[@]}" -X executor.threads=3
        -X admission.high.mark=$window -X admission.low.mark=150
        -X kafka.session.timeout.ms=6000)
start_consumer c1 "${common[@]}"
start_consumer c2 "${common[@]}"
start_consumer c3 "${common[@]}"
wait_ready "$c1_http"
wait_ready "$c2_http"
wait_ready "$c3_http"

producer "${producer_topic_args[@]}" -q submit --count 9000 --type sleep \
        --payload 3 --ids-out "$work/all.ids" || fail "submit failed"

for round in 1 2; do
        producer "${producer_topic_args[@]}" wait --count $((round * 2500)) \
                --timeout-ms 120000 >/dev/null || fail "no progress before kill $round"
        log "kill -9 c2 (round $round)"
        kill -KILL "$c2_pid"
        wait "$c2_pid" 2>/dev/null || true
        mv "$work/c2.log" "$work/c2-killed-$round.log"
        start_consumer c2 "${common[@]}"
done

producer "${producer_topic_args[@]}" wait --ids-file "$work/all.ids" \
        --timeout-ms 240000 --json >"$work/summary.json" ||
        fail "tasks missing after kill -9 and restart"
assert_eq "distinct task ids with a result" \
        "$(json_get "$work/summary.json" 'j["distinct"]')" 9000
dups=$(json_get "$work/summary.json" 'j["duplicates"]')
# Bound: per kill, the killed instance's window plus what the three
# instances finish in one commit interval (1 s at ~2,000 tasks/s).
bound=$((2 * (window + 2000)))
log "duplicates after 2 kills: $dups (bound $bound)"
((dups <= bound)) || fail "duplicates $dups exceed the bound $bound"
stop_consumers c1 c2 c3
log "passed"
