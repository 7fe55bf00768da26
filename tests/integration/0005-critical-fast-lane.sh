#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A CRITICAL task submitted behind a deep NORMAL backlog finishes long
# before the backlog does: it arrives on its own topic and queue and runs on
# the executor slot reserved for the fast lane.
source "$(dirname "$0")/lib.sh"

start_consumer c1 --embedded-broker -X executor.threads=2 \
        -X executor.critical.reserved=1
wait_ready "$c1_http"

# 1,600 NORMAL tasks of 5 ms on the one ordinary slot: about 8 s of work.
producer -q submit --count 1600 --type sleep --payload 5 --priority NORMAL \
        --id-prefix backlog --ids-out "$work/backlog.ids" || fail "submit failed"
producer wait --count 100 --timeout-ms 30000 >/dev/null || fail "backlog not started"
producer -q submit --count 1 --type sleep --payload 5 --priority CRITICAL \
        --id-prefix critical --ids-out "$work/critical.ids" || fail "submit failed"
cat "$work/backlog.ids" "$work/critical.ids" >"$work/all.ids"

producer wait --ids-file "$work/all.ids" --timeout-ms 120000 --print \
        >"$work/results.jsonl" || fail "not every task finished"
python3 - "$work/results.jsonl" <<'PY' || fail "the critical task did not overtake the backlog"
import json, sys
crit, backlog = None, []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r["task_id"].startswith("critical"):
        crit = r
    else:
        backlog.append(r["finished_at"])
assert crit, "no result for the critical task"
latency = crit["finished_at"] - crit["created_at"]
ahead = max(backlog) - crit["finished_at"]
print(f"critical task: {latency} ms from submit to finish; "
      f"backlog finished {ahead} ms after it")
sys.exit(0 if latency < 2000 and ahead > 3000 else 1)
PY

# A CRITICAL priority written to topic.tasks is run as HIGH (the reserved
# slots belong to topic.critical), never silently: counted, logged, and
# said in its received event (issue 13).
producer -q submit --raw-value '{"id":"demoted-1","type":"noop","priority":"CRITICAL"}' ||
        fail "raw submit failed"
echo demoted-1 >"$work/demoted.ids"
producer wait --ids-file "$work/demoted.ids" --timeout-ms 60000 >/dev/null ||
        fail "no result for demoted-1"
assert_eq "metric: priority demoted" \
        "$(metric_sum "$c1_http" '^swarmq_priority_demoted_total')" 1
grep -q 'task_id=demoted-1 .*priority CRITICAL: run as HIGH' "$work/c1.log" ||
        fail "the demotion was not logged"
kcat -b "$bootstrap" -C -t swarmq-events -e -q -D '@@end@@' 2>/dev/null |
        python3 -c '
import sys
recs = sys.stdin.buffer.read().split(b"@@end@@")
sys.exit(0 if any(b"demoted-1" in r and b"received" in r and
                  b"priority CRITICAL run as HIGH" in r for r in recs) else 1)' ||
        fail "the received event of demoted-1 does not say it was run as HIGH"
log "ok: demoted-1 counted, logged and its received event says so"
log "passed"
