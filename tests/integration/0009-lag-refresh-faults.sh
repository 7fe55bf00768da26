#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The lag refresher's outage path, on a separate mock broker with faults:
# partitions paused by POST /admin/pause, the broker then refuses every
# ListOffsets request (the refresher's query) while 30 tasks are
# produced. The instance logs one warning for the failing streak, stays
# healthy and keeps the last figures (the lag reads 0, not nothing); once
# the broker answers again the lag catches up to the 30 records without a
# restart, a notice says so, and after resume they run and the lag is 0.
source "$(dirname "$0")/lib.sh"
source "$src/tests/chaos/lib.sh"
source "$(dirname "$0")/lag_lib.sh"

# wait_log FILE PATTERN WHAT: waits (30 s) for a line matching PATTERN.
wait_log() {
        wait_until 30 "$3: a line matching '$2' in $1" -- grep -qE "$2" "$1"
        log "ok: $3"
}

start_fault_broker
token=tok-$RANDOM$RANDOM
printf '%s\n' "$token" >"$work/token"
lag_topic=swarmq-tasks
start_consumer c1 -b "$bootstrap" -X http.admin.token.file="$work/token" \
        -X commit.interval.ms=200 -X lag.refresh.interval.ms=300 \
        -X kafka.fetch.wait.max.ms=50
wait_ready "$c1_http"
assert_eq "pause" "$(post /admin/pause)" 202
wait_for "tasks partitions paused" \
        "[[ \$(status_get '$all_paused') == True ]] && echo 1 || echo 0" -eq 1
wait_for "/status lag before the fault" "status_get '$lag_none'" -eq 0

fault errors ListOffsets NOT_LEADER_FOR_PARTITION 1000
wait_log "$work/c1.log" "WARN .*LAG.*cannot query the high watermarks" \
        "the failing queries are logged"
lag_producer -q submit --count 30 --type noop --id-prefix f --ids-out "$work/f.ids" ||
        fail "submit failed"
# Several refresh intervals with every query refused.
for ((i = 0; i < 20; i++)); do
        assert_eq "/status lag while the queries fail" "$(status_get "$lag_sum")" 0
        sleep 0.1
done
assert_eq "partitions with a lag figure while the queries fail" \
        "$(status_get "$lag_none")" 0
assert_eq "/healthz while the queries fail" "$(sq_http_status "$c1_http/healthz")" 200
n=$(grep -cE "LAG.*cannot query the high watermarks" "$work/c1.log")
assert_eq "warnings for one failing streak" "$n" 1

fault clear ListOffsets
wait_for "/status lag once the broker answers" "status_get '$lag_sum'" -eq 30
wait_for "/metrics lag once the broker answers" metric_lag -eq 30
wait_log "$work/c1.log" "NOTICE.*LAG.*high watermark queries succeed again" \
        "the recovery is logged"
assert_eq "resume" "$(post /admin/resume)" 202
lag_ran "$work/f.ids" 30 "after resume"
stop_consumers c1
log "passed"
