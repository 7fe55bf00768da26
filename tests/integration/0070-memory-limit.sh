#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# memory.limit.bytes: a consumer whose limit sits a little above its idle
# RSS takes 1,200 tasks of 32 KiB each (about 38 MB in memory once
# fetched and decoded): intake pauses on memory (counted on /metrics,
# logged), resumes, and every task still gets exactly one result. The
# broker runs as its own process so the consumer's RSS is its own.
source "$(dirname "$0")/lib.sh"

start_broker --partitions 12

# The idle RSS of this build (ASan builds are several times larger), from
# a consumer of another group that has no work.
start_consumer c0 -b "$bootstrap" -g probe
wait_ready "$c0_http"
idle=$(metric_sum "$c0_http" '^process_resident_memory_bytes$')
((idle > 1000000)) || fail "process_resident_memory_bytes of an idle consumer: $idle"
stop_consumers c0
limit=$((idle + 16 * 1024 * 1024))
log "idle rss $idle bytes; memory.limit.bytes=$limit (pause at 90%: $((limit / 10 * 9)))"

producer -q submit --count 1200 --type sha256 --payload-size 32768 \
        --id-prefix big --ids-out "$work/ids" || fail "submit failed"

start_consumer c1 -b "$bootstrap" -X memory.limit.bytes=$limit
limit_seen=$(metric_sum "$c1_http" '^swarmq_memory_limit_bytes$')
assert_eq "swarmq_memory_limit_bytes" "$limit_seen" "$limit"

producer wait --ids-file "$work/ids" --timeout-ms 120000 --json \
        >"$work/wait.json" || fail "not every task got a result"
assert_eq "distinct results" "$(json_get "$work/wait.json" 'j["distinct"]')" 1200
assert_eq "duplicate results" "$(json_get "$work/wait.json" 'j["duplicates"]')" 0
assert_eq "SUCCEEDED" "$(json_get "$work/wait.json" 'j["status"].get("SUCCEEDED",0)')" 1200

pauses=$(metric_sum "$c1_http" '^swarmq_memory_pauses_total$')
((pauses >= 1)) || fail "swarmq_memory_pauses_total=$pauses: intake never paused on memory"
log "ok: intake paused on memory $pauses times"
grep -q 'MEMORY.*pausing intake: rss=' "$work/c1.log" ||
        fail "no 'pausing intake' log line"
# Everything finished, so intake must be flowing again.
wait_until 10 "swarmq_memory_paused = 0" -- \
        value_is == 0 metric_sum "$c1_http" '^swarmq_memory_paused$'
assert_eq "swarmq_memory_paused after the work" "$(metric_sum "$c1_http" '^swarmq_memory_paused$')" 0
grep -q 'MEMORY.*resuming intake: rss=' "$work/c1.log" ||
        fail "no 'resuming intake' log line"
assert_eq "tasks succeeded on /metrics" \
        "$(metric_sum "$c1_http" '^swarmq_tasks_total\{status="SUCCEEDED"')" 1200
log "peak: $(grep -m1 'pausing intake' "$work/c1.log" | sed 's/.*pausing/pausing/')"
stop_consumers c1
log "PASS"
