#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# events.publish (issue 14: fewer records per task): with `terminal` only
# each task's last event (succeeded, retry_scheduled, dead_lettered) goes
# to topic.events, with `none` no task event does; results, retries and
# dead letters are the same as with `all`, and every offset still becomes
# committable (a job whose event is not produced waits for one record
# less: were that count wrong, its offset would never complete, or the job
# would be freed twice, which the ASan run of this suite would show).
source "$(dirname "$0")/lib.sh"

for mode in terminal none; do
        start_consumer "c_$mode" --embedded-broker -X events.publish=$mode \
                -X retry.backoff.initial.ms=100 -X retry.backoff.max.ms=200
        http_var=c_${mode}_http
        http=${!http_var}
        wait_ready "$http"
        producer -q submit --count 20 --type noop --id-prefix ok \
                --ids-out "$work/$mode.ok.ids" || fail "submit failed"
        producer -q submit --count 3 --type fail --max-attempts 2 \
                --id-prefix bad --ids-out "$work/$mode.bad.ids" || fail "submit failed"
        cat "$work/$mode.ok.ids" "$work/$mode.bad.ids" >"$work/$mode.ids"
        producer wait --ids-file "$work/$mode.ids" --timeout-ms 60000 --json \
                >"$work/$mode.json" || fail "$mode: results missing"
        assert_eq "$mode: succeeded" "$(json_get "$work/$mode.json" 'j["status"].get("SUCCEEDED", 0)')" 20
        assert_eq "$mode: dead-lettered" "$(json_get "$work/$mode.json" 'j["status"].get("DEAD_LETTERED", 0)')" 3
        assert_eq "$mode: results in all" "$(json_get "$work/$mode.json" 'j["total"]')" 23

        # Every offset completes: the lag of the tasks and retry topics
        # comes to 0 once the records are acknowledged and committed.
        wait_until 20 "$mode: consumer lag once committed = 0" -- \
                value_is -eq 0 metric_sum "$http" '^swarmq_consumer_lag\{'
        assert_eq "$mode: consumer lag once committed" "$wait_seen" 0

        kcat -b "$bootstrap" -C -t swarmq-events -e -q -f '%s\n' >"$work/$mode.events" \
                2>"$work/kcat.log" || fail "kcat failed"
        python3 - "$work/$mode.events" "$mode" <<'PY' || fail "$mode: events topic is wrong"
import collections, sys
types = collections.Counter()
for line in open(sys.argv[1], "rb"):
    for t in (b"succeeded", b"retry_scheduled", b"dead_lettered", b"received",
              b"started"):
        if t in line:
            types[t.decode()] += 1
            break
print(sys.argv[2], dict(types))
want = {"succeeded": 20, "retry_scheduled": 3, "dead_lettered": 3} \
    if sys.argv[2] == "terminal" else {}
sys.exit(0 if dict(types) == want else 1)
PY
        log "ok: $mode: only the events it names are in swarmq-events"
        stop_consumers "c_$mode"
done
log "passed"
