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
log "passed"
