#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# SIGTERM mid-run, then a restart: the first instance stops intake, drains,
# commits and exits 0; the second picks up from the committed offsets; every
# task has a result (duplicates allowed, none missing). The broker is a
# process of its own so it outlives the consumers.
source "$(dirname "$0")/lib.sh"

start_broker
# A small admission window, so that the SIGTERM leaves most of the backlog
# unadmitted (a drain finishes what was admitted): c2 must run the rest.
# A short session, so the mock cluster does not hold the next rebalance
# for the default 45 s.
window=(-X admission.high.mark=200 -X admission.low.mark=100
        -X kafka.session.timeout.ms=6000)
start_consumer c1 -b "$bootstrap" -X executor.threads=4 \
        -X shutdown.drain.timeout.ms=20000 "${window[@]}"
wait_ready "$c1_http"

# 4,000 tasks of 6 ms on 3 ordinary executor slots: about 8 s of work,
# well past the few seconds the result reader below takes to start (its
# group join), so the stop comes mid-run. (At 2 ms, about 3 s, c1 once
# finished them all first: since fetch.wait.max.ms=100 a resumed
# partition no longer waits up to 500 ms for its records.)
producer -q submit --count 4000 --type sleep --payload 6 --ids-out "$work/all.ids" ||
        fail "submit failed"
producer wait --count 500 --timeout-ms 60000 >/dev/null || fail "no progress before the stop"

log "SIGTERM to c1 mid-run"
kill -TERM "$c1_pid"
status=0
sq_wait_exit "$c1_pid" 60 || status=$?
assert_eq "c1 exit status after SIGTERM" "$status" 0
grep -q "instance stopped" "$work/c1.log" || fail "c1 did not log a clean stop"

# Every result c1 wrote is acknowledged (it exited 0): read them all.
partial=$(kcat -b "$bootstrap" -C -t swarmq-results -e -q -f 'x\n' 2>"$work/kcat.log" | wc -l)
log "results before the restart: $partial of 4000"
((partial >= 500 && partial < 4000)) ||
        fail "c1 wrote $partial results before the stop: the restart is not tested"

start_consumer c2 -b "$bootstrap" -X executor.threads=4 "${window[@]}"
producer wait --ids-file "$work/all.ids" --timeout-ms 120000 --json >"$work/summary.json" ||
        fail "tasks missing after the restart"
assert_eq "distinct task ids with a result" "$(json_get "$work/summary.json" 'j["distinct"]')" 4000
dups=$(json_get "$work/summary.json" 'j["duplicates"]')
log "duplicates after the restart: $dups (allowed: at-least-once)"
ran=$(metric_sum "$c2_http" '^swarmq_tasks_total')
((ran >= 4000 - partial)) || fail "c2 ran $ran tasks, $((4000 - partial)) were left after c1"
log "ok: c2 ran $ran tasks (c1 left $((4000 - partial)))"
kill -TERM "$c2_pid"
sq_wait_exit "$c2_pid" 60 || fail "c2 did not exit 0 after SIGTERM"
log "passed"
