#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Work stealing: two agents able to run the same tasks, one slot each.
# One task is long (4 s), five are short (0.3 s). Every task that parked
# behind the long one is taken over by the other agent as soon as it is
# idle: the long task's agent runs only the long task, the other agent
# runs the five short ones, and swarmq_tasks_stolen_total counts the moves.
# One partition, so the tasks arrive in the order submitted.
source "$(dirname "$0")/lib.sh"

cat >"$work/swarmq.properties" <<CONF
executor.threads=7
executor.critical.reserved=1
agent.a.handler=sleep
agent.a.capabilities=w
agent.a.concurrency=1
agent.b.handler=sleep
agent.b.capabilities=w
agent.b.concurrency=1
CONF
start_consumer c1 --embedded-broker -c "$work/swarmq.properties" \
        -X embedded.partitions=1
wait_ready "$c1_http"

python3 - >"$work/tasks.jsonl" <<'PY'
import json
for i, ms in enumerate([300, 4000, 300, 300, 300, 300], 1):
    print(json.dumps({"id": f"st-{i}", "type": "sleep", "capabilities": ["w"],
                      "payload": str(ms)}))
PY
producer -q submit -f "$work/tasks.jsonl" --ids-out "$work/ids" || fail "submit failed"
producer wait --ids-file "$work/ids" --print --json --timeout-ms 60000 \
        >"$work/results.out" || fail "not every task got a result"

python3 - "$work/results.out" <<'PY' || fail "work was not stolen"
import json, sys
res = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("task_id", "").startswith("st-"):
        res[r["task_id"]] = r
assert len(res) == 6, res.keys()
assert all(r["status"] == "SUCCEEDED" for r in res.values()), res
long_agent = res["st-2"]["agent"]
others = {t: r["agent"] for t, r in res.items() if t != "st-2"}
print("long task on", long_agent, "; the others on", others)
sys.exit(0 if all(a != long_agent for a in others.values()) else 1)
PY
stolen=$(metric_sum "$c1_http" '^swarmq_tasks_stolen_total')
((stolen >= 1)) || fail "swarmq_tasks_stolen_total is $stolen"
log "ok: swarmq_tasks_stolen_total = $stolen"
stop_consumers c1
log "passed"
