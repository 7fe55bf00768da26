#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Children from a task's result (docs/workflows.md, "Children from a
# task's result") on a real Apache Kafka broker, under
# processing.guarantee=exactly_once (integration/0053 runs the agent kinds
# on the mock cluster): an exec agent with agent.fan.spawn=true whose
# output is {"spawn": a chord of 5 sha256 children and an echo join,
# "output": "spawned 5"}. Its parent task, HIGH with a traceparent
# header, ends SUCCEEDED keeping "spawned 5"; the children's workflow
# <parent id>.spawn (declared in the parent's transaction) ends SUCCEEDED
# with the join's output, the 5 children's results in order, each
# sha256(c<i>) computed here; a child's
# task record carries the parent's priority and traceparent and its
# workflow id; and, read_committed, the join was submitted once and ran
# once, and the workflow has one result.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

cat >"$work/fan.py" <<'PY'
import json, sys
n = int(sys.stdin.read())
print(json.dumps({
    "spawn": {"group": [{"type": "sha256", "payload": f"c{i}"} for i in range(n)],
              "join": {"type": "echo"}},
    "output": f"spawned {n}"}))
PY
t_workflows=$prefix-workflows
start_consumer c1 -b "$bootstrap" "${consumer_topic_args[@]}" -X "topic.workflows=$t_workflows" \
        -X workflows.enable=true -X topics.partitions=3 -X commit.interval.ms=200 \
        -X kafka.fetch.wait.max.ms=100 -X executor.threads=4 \
        -X processing.guarantee=exactly_once -X kafka.transaction.timeout.ms=10000 \
        -X agent.echo.kind=builtin -X agent.sha256.kind=builtin \
        -X agent.fan.kind=exec -X "agent.fan.command=[\"python3\", \"$work/fan.py\"]" \
        -X agent.fan.spawn=true
wait_ready "$c1_http"
trace=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
producer "${producer_topic_args[@]}" submit --type fan --payload 5 --priority HIGH \
        --header "traceparent=$trace" --id-prefix fan >/dev/null 2>&1 || fail "cannot submit the parent"
parent=fan-000001
producer "${producer_topic_args[@]}" wait --id "$parent" --id "$parent.spawn" --print --json \
        --timeout-ms 60000 >"$work/wait.jsonl" 2>"$work/wait.err" ||
        fail "the parent or its children's workflow did not end: $(cat "$work/wait.err")"
producer "${producer_topic_args[@]}" replay --results >"$work/results.jsonl" 2>/dev/null ||
        fail "cannot replay the results"
producer replay --topic "$t_tasks" --task-id "$parent.spawn.0" --task-id "$parent.spawn.join" \
        >"$work/tasks.jsonl" 2>/dev/null || fail "cannot replay $t_tasks"
python3 - "$parent" "$trace" "$work/results.jsonl" "$work/tasks.jsonl" <<'PY' || fail "the spawned workflow is wrong"
import collections, hashlib, json, sys
parent, trace = sys.argv[1], sys.argv[2]
res = collections.defaultdict(list)
for line in open(sys.argv[3]):
    r = json.loads(line)
    res[r["task_id"]].append(r)
tasks = collections.defaultdict(list)
for line in open(sys.argv[4]):
    t = json.loads(line)
    tasks[t["id"]].append(t)
bad = []
def check(ok, msg):
    if not ok:
        bad.append(msg)
wf = f"{parent}.spawn"
p = res[parent]
check(len(p) == 1 and p[0]["status"] == "SUCCEEDED" and p[0].get("output") == "spawned 5",
      f"the parent: {p}, expected one SUCCEEDED keeping 'spawned 5'")
w = res[wf]
check(len(w) == 1 and w[0]["status"] == "SUCCEEDED", f"{wf}: {[r['status'] for r in w]}, expected one SUCCEEDED")
j = res[f"{wf}.join"]
check(len(j) == 1, f"the join ran {len(j)} times")
check(len(tasks[f"{wf}.join"]) == 1, f"the join was submitted {len(tasks[f'{wf}.join'])} times")
if w and j:
    kids = json.loads(j[0]["output"])
    check(w[0].get("output") == j[0]["output"], "the workflow's output is not its join's")
    check([k["id"] for k in kids] == [f"{wf}.{i}" for i in range(5)],
          f"the join's input lists {[k['id'] for k in kids]}")
    want = [hashlib.sha256(f"c{i}".encode()).hexdigest() for i in range(5)]
    check([k.get("output") for k in kids] == want, "the children's outputs are not sha256(c<i>)")
    check(all(k["status"] == "SUCCEEDED" for k in kids), "a child did not succeed")
child = tasks[f"{wf}.0"]
check(len(child) == 1, f"{wf}.0 was submitted {len(child)} times")
if child:
    c = child[0]
    check(c.get("priority") == "HIGH", f"{wf}.0's priority {c.get('priority')}, expected the parent's HIGH")
    check((c.get("headers") or {}).get("traceparent") == trace, f"{wf}.0's traceparent {c.get('headers')}")
    check(c.get("workflow_id") == wf, f"{wf}.0's workflow_id {c.get('workflow_id')}")
for b in bad:
    print("FAIL:", b)
print(f"{wf}: {w[0]['status'] if w else None}; join ran {len(j)} time(s); child record {child[0] if child else None}")
sys.exit(1 if bad else 0)
PY
stop_consumers c1
log "ok: $parent spawned $parent.spawn on Kafka: its 5 children and join once each, the parent's priority and trace inherited"
