#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Children from a task's result (docs/workflows.md, "Children from a
# task's result"), on the mock cluster: agents with agent.<name>.spawn=true
# whose output is {"spawn": NODE, "output": ...} declare a workflow
# <task id>.spawn, whose tasks inherit the parent's priority and headers:
#   - exec agent fan (a Python script): payload "5" -> a chord of 5 sha256
#     children (payloads c0..c4) and an echo join; the parent's result
#     keeps "spawned 5"; the children's workflow ends with the join's
#     output, the 5 children's results in order, each sha256(c<i>)
#     computed here; a child's task record has the parent's priority
#     (HIGH) and traceparent;
#   - pool agent pyfan (the reference Python worker's "echo"): a chain
#     echo "x" -> sha256, ending with sha256("x");
#   - builtin agent bfan (echo, spawn=true) given a bad node: the parent
#     is dead-lettered at once (one attempt of 3) with an error naming the
#     bad field, and no workflow is declared;
#   - the same output from the echo agent (spawn off) is only an output.
source "$(dirname "$0")/lib.sh"

cat >"$work/fan.py" <<'EOF'
import json, sys
n = int(sys.stdin.read())
print(json.dumps({
    "spawn": {"group": [{"type": "sha256", "payload": f"c{i}"} for i in range(n)],
              "join": {"type": "echo"}},
    "output": f"spawned {n}"}))
EOF
start_broker --partitions 3
start_consumer c1 -b "$bootstrap" -X workflows.enable=true -X commit.interval.ms=200 \
        -X kafka.fetch.wait.max.ms=100 -X executor.threads=4 -X retry.max.attempts=3 \
        -X agent.echo.kind=builtin -X agent.sha256.kind=builtin \
        -X agent.fan.kind=exec -X "agent.fan.command=[\"python3\", \"$work/fan.py\"]" \
        -X agent.fan.spawn=true \
        -X agent.pyfan.kind=pool -X agent.pyfan.pool.min=1 \
        -X "agent.pyfan.command=[\"python3\", \"-u\", \"$src/consumer/workers/swarmq_worker.py\"]" \
        -X agent.pyfan.spawn=true \
        -X agent.bfan.kind=builtin -X agent.bfan.handler=echo -X agent.bfan.capabilities=bfan \
        -X agent.bfan.spawn=true
wait_ready "$c1_http"

envelope='{"spawn": {"group": [{"type": "echo", "payload": "never"}]}, "output": "o"}'
python3 - "$work/tasks.jsonl" "$envelope" <<'PY'
import json, sys
env = sys.argv[2]
tasks = [
    {"id": "p-exec", "type": "fan", "capabilities": ["fan"], "payload": "5",
     "priority": "HIGH", "headers": {"traceparent": "00-abc-01"}},
    {"id": "p-pool", "type": "pyfan", "capabilities": ["pyfan"],
     "payload": "echo " + json.dumps({"spawn": {"chain": [
         {"type": "echo", "payload": "x"}, {"type": "sha256"}]}})},
    {"id": "p-bad", "type": "bfan", "capabilities": ["bfan"],
     "payload": json.dumps({"spawn": {"group": [{"type": "echo", "paylod": "x"}]}})},
    {"id": "p-plain", "type": "echo", "payload": env},
]
with open(sys.argv[1], "w") as f:
    for t in tasks:
        f.write(json.dumps(t) + "\n")
PY
producer -q submit --file "$work/tasks.jsonl" >/dev/null || fail "cannot submit the parents"
producer wait --id p-exec --id p-pool --id p-bad --id p-plain --id p-exec.spawn \
        --id p-pool.spawn --timeout-ms 60000 >/dev/null 2>&1 ||
        fail "a parent or a spawned workflow did not end"
producer replay --results >"$work/results.jsonl" 2>/dev/null || fail "cannot replay the results"
producer replay --topic swarmq-tasks >"$work/tasks.out" 2>/dev/null || fail "cannot replay the tasks"
python3 - "$work/results.jsonl" "$work/tasks.out" "$envelope" <<'PY' || fail "the spawned children are wrong"
import collections, hashlib, json, sys
res = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    res[r["task_id"]].append(r)
tasks = {t["id"]: t for t in map(json.loads, open(sys.argv[2]))}
bad = 0
def check(cond, msg):
    global bad
    print("ok:" if cond else "FAIL:", msg)
    bad += not cond
def one(tid):
    got = res.get(tid, [])
    return got[0] if len(got) == 1 else {"status": f"{len(got)} results", "output": None}

p = one("p-exec")
check(p["status"] == "SUCCEEDED" and p.get("output") == "spawned 5",
      f"p-exec keeps its own output: {p['status']} {p.get('output')!r}")
w = one("p-exec.spawn")
kids = json.loads(w.get("output") or "[]")
want = [{"id": f"p-exec.spawn.{i}", "status": "SUCCEEDED",
         "output": hashlib.sha256(f"c{i}".encode()).hexdigest()} for i in range(5)]
check(w["status"] == "SUCCEEDED" and
      [{k: c[k] for k in ("id", "status", "output")} for c in kids] == want,
      f"p-exec.spawn: {w['status']}, the join's input: {[c.get('id') for c in kids]}")
c0 = tasks.get("p-exec.spawn.0", {})
check(c0.get("priority") == "HIGH" and c0.get("headers", {}).get("traceparent") == "00-abc-01"
      and c0.get("workflow_id") == "p-exec.spawn",
      f"a child inherits: priority {c0.get('priority')}, headers {c0.get('headers')}")

p = one("p-pool")
w = one("p-pool.spawn")
check(p["status"] == "SUCCEEDED" and not p.get("output"), f"p-pool: {p['status']} {p.get('output')!r}")
check(w["status"] == "SUCCEEDED" and w.get("output") == hashlib.sha256(b"x").hexdigest(),
      f"p-pool.spawn (a chain from a pool worker): {w['status']} {w.get('output')}")

p = one("p-bad")
check(p["status"] == "DEAD_LETTERED" and p.get("attempts") == 1 and
      'spawn: workflow.group[0]: task: unknown field "paylod"' in (p.get("error") or ""),
      f"p-bad: {p['status']} after {p.get('attempts')} attempt(s): {p.get('error')}")
check(not any(t.startswith("p-bad.spawn") for t in res), "p-bad spawned nothing")

p = one("p-plain")
check(p["status"] == "SUCCEEDED" and p.get("output") == sys.argv[3],
      "p-plain (echo, spawn off): its output is the envelope, as it is")
check(not any(t.startswith("p-plain.spawn") for t in list(res) + list(tasks)),
      "p-plain spawned nothing")
sys.exit(1 if bad else 0)
PY
log "ok: exec, pool and builtin outputs spawned (or refused) their children as declared"
stop_consumers c1
