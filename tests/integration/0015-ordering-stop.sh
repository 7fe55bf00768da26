#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# ordering=partition through a stop and a restart: 30 tasks wait in line
# behind each other on one partition; SIGTERM mid-line (1 s drain) exits 0
# promptly with the held tasks abandoned, not run and not lost: the next
# instance runs the rest, still one at a time in offset order, and every
# task has a result.
source "$(dirname "$0")/lib.sh"

start_broker --partitions 1
common=(-b "$bootstrap" -X ordering=partition -X executor.threads=4
        -X kafka.session.timeout.ms=6000)
start_consumer c1 "${common[@]}" -X shutdown.drain.timeout.ms=1000
wait_ready "$c1_http"
producer -q submit --count 30 --type sleep --payload 200 --ids-out "$work/all.ids" ||
        fail "submit failed"
producer wait --count 3 --timeout-ms 60000 >/dev/null || fail "no progress before the stop"
held=$(metric_sum "$c1_http" '^swarmq_ordering_held')
log "tasks held behind the running one: $held"
((held > 0)) || fail "no task was held: ordering=partition is not in effect"

kill -TERM "$c1_pid"
status=0
sq_wait_exit "$c1_pid" 20 || status=$?
assert_eq "c1 exit status after SIGTERM" "$status" 0

start_consumer c2 "${common[@]}"
producer wait --ids-file "$work/all.ids" --timeout-ms 60000 --print \
        >"$work/results" || fail "tasks missing after the restart"
python3 - "$work/results" <<'PY' || fail "tasks overlapped or ran out of offset order"
import json, sys
first = {}
for r in map(json.loads, (l for l in open(sys.argv[1]) if l.startswith("{"))):
    first.setdefault(r["task_id"], r)  # a re-run after the stop counts once
runs = sorted((r["source"]["offset"], r["started_at"], r["finished_at"]) for r in first.values())
assert len(runs) == 30, len(runs)
bad = [(a, b) for a, b in zip(runs, runs[1:]) if b[1] < a[2]]
assert not bad, bad
PY
log "ok: 30 tasks, one at a time in offset order across the restart"
stop_consumers c2
log "passed"
