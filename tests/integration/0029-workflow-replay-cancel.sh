#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A workflow's tree and cancelling a workflow, on the mock cluster
# (docs/workflows.md, "Looking at one workflow" and "Cancelling one"):
#   - tree-1, a chain: echo "a" -> a chord (sha256, echo; join echo) ->
#     echo, runs to its end; `replay --workflow tree-1` prints its tree
#     (text and --json): every node in document order, each task
#     SUCCEEDED with one result, the chord's children's outputs
#     computed here (sha256("a"), "a");
#   - cancel-chain, a chain: sleep 20 s -> echo: `cancel --workflow` while
#     the sleep runs stops it (CANCELLED, well before 20 s), the chain
#     ends CANCELLED naming the step, and its echo never runs;
#   - cancel-chord, a chord of 3 sleeps of 20 s and an echo join:
#     `cancel cancel-chord` (a plain id) ends the 3 children CANCELLED
#     (running, or waiting for an executor),
#     the join, submitted after them, ends CANCELLED without starting,
#     and so does the workflow;
#   - a workflow the topic has no record of: exit 1 naming it; --workflow
#     with --results: exit 2.
source "$(dirname "$0")/lib.sh"

start_broker --partitions 3
start_consumer c1 -b "$bootstrap" -X workflows.enable=true -X commit.interval.ms=200 \
        -X kafka.fetch.wait.max.ms=100 -X executor.threads=4
wait_ready "$c1_http"

cat >"$work/tree.json" <<'EOF'
{"id": "tree-1",
 "workflow": {"chain": [
   {"type": "echo", "payload": "a"},
   {"group": [{"type": "sha256"}, {"type": "echo"}], "join": {"type": "echo"}},
   {"type": "echo"}]}}
EOF
producer workflow "$work/tree.json" >/dev/null || fail "cannot submit tree-1"
producer wait --id tree-1 --timeout-ms 60000 >/dev/null || fail "tree-1 did not end"
producer replay --workflow tree-1 >"$work/tree.txt" 2>"$work/tree.err" ||
        fail "replay --workflow failed: $(cat "$work/tree.err")"
cat "$work/tree.txt"
producer replay --workflow tree-1 --json >"$work/tree.json.out" 2>>"$work/tree.err" ||
        fail "replay --workflow --json failed: $(cat "$work/tree.err")"
python3 - "$work/tree.txt" "$work/tree.json.out" <<'PY' || fail "the tree of tree-1 is wrong"
import hashlib, json, sys
text = open(sys.argv[1]).read().splitlines()
tree = json.load(open(sys.argv[2]))
bad = 0
def check(cond, msg):
    global bad
    if not cond:
        print("FAIL:", msg); bad += 1
check(tree["workflow_id"] == "tree-1" and tree["status"] == "SUCCEEDED",
      f"header: {tree['workflow_id']} {tree['status']}")
check(tree["tasks"] == 5 and tree["started"] == 5 and tree["results"] == 1,
      f"counts: {tree['tasks']} tasks, {tree['started']} started, {tree['results']} results")
root = tree["root"]
check(root["kind"] == "chain" and [n["kind"] for n in root["chain"]] == ["task", "chord", "task"],
      f"shape: {root['kind']} {[n['kind'] for n in root.get('chain', [])]}")
chord = root["chain"][1]
tasks = [root["chain"][0]] + chord["group"] + [chord["join"], root["chain"][2]]
want_ids = ["tree-1.0", "tree-1.1.0", "tree-1.1.1", "tree-1.1.join", "tree-1.2"]
check([t["id"] for t in tasks] == want_ids, f"ids: {[t['id'] for t in tasks]}")
for t in tasks:
    check(t["state"] == "SUCCEEDED" and t["results"] == 1 and
          t["result"]["status"] == "SUCCEEDED" and t["result"]["attempts"] == 1,
          f"{t['id']}: {t['state']}, {t['results']} results")
outs = [k["result"]["output"] for k in chord["group"]]
check(outs == [hashlib.sha256(b"a").hexdigest(), "a"], f"the chord's outputs: {outs}")
# The text form: the header, then one line per node, in the same order.
check(text[0].startswith("workflow tree-1: SUCCEEDED, 5 tasks, 5 started"), f"text header: {text[0]}")
ids_in_text = [w for line in text[1:] for w in line.split() if w.startswith("tree-1")]
check(ids_in_text == ["tree-1", "tree-1.0", "tree-1.1", "tree-1.1.0", "tree-1.1.1",
                      "tree-1.1.join", "tree-1.2"], f"text ids: {ids_in_text}")
check(sum("SUCCEEDED, 1 attempt on c1" in line for line in text) == 5,
      "not five task lines 'SUCCEEDED, 1 attempt on c1'")
sys.exit(1 if bad else 0)
PY
log "ok: replay --workflow tree-1 shows its 7 nodes and 5 tasks as they ended"

# Cancelling workflows: a chain while its first step runs, a chord while
# its children run.
cat >"$work/cancel-chain.json" <<'EOF'
{"id": "cancel-chain",
 "workflow": {"chain": [{"type": "sleep", "payload": "20000"}, {"type": "echo"}]}}
EOF
cat >"$work/cancel-chord.json" <<'EOF'
{"id": "cancel-chord",
 "workflow": {"group": [{"type": "sleep", "payload": "20000"},
                        {"type": "sleep", "payload": "20000"},
                        {"type": "sleep", "payload": "20000"}],
              "join": {"type": "echo"}}}
EOF
producer workflow "$work/cancel-chain.json" >/dev/null || fail "cannot submit cancel-chain"
producer workflow "$work/cancel-chord.json" >/dev/null || fail "cannot submit cancel-chord"
started_sleeps() {
        metric_sum "$c1_http" '^swarmq_agent_in_flight'
}
# 3 of the 4 sleeps run (one executor is kept for CRITICAL tasks), the
# 4th waits for an executor.
wait_until 30 "3 sleeps run" -- value_is -ge 3 started_sleeps
t0=$(date +%s%3N)
producer cancel --workflow cancel-chain cancel-chord 2>"$work/cancel.err" ||
        fail "cancel failed: $(cat "$work/cancel.err")"
producer wait --id cancel-chain --id cancel-chord --timeout-ms 15000 >/dev/null 2>&1 ||
        fail "the cancelled workflows did not end within 15 s"
log "the cancelled workflows ended $(($(date +%s%3N) - t0)) ms after the cancel"
producer replay --results >"$work/results.jsonl" 2>/dev/null || fail "cannot replay the results"
python3 - "$work/results.jsonl" <<'PY' || fail "the cancelled workflows' results are wrong"
import collections, json, sys
res = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    res[r["task_id"]].append(r)
bad = 0
def check(cond, msg):
    global bad
    print("ok:" if cond else "FAIL:", msg)
    bad += not cond
def one(tid):
    got = res.get(tid, [])
    return got[0] if len(got) == 1 else {"status": f"{len(got)} results"}
check(one("cancel-chain.0")["status"] == "CANCELLED",
      f"cancel-chain.0 (the sleep): {one('cancel-chain.0')['status']}")
check(not res.get("cancel-chain.1"), "cancel-chain.1 (after the cancelled step) never ran")
w = one("cancel-chain")
check(w["status"] == "CANCELLED" and "step cancel-chain.0 ended CANCELLED" in (w.get("error") or ""),
      f"cancel-chain: {w['status']}, {w.get('error')}")
for i in range(3):
    check(one(f"cancel-chord.{i}")["status"] == "CANCELLED",
          f"cancel-chord.{i}: {one(f'cancel-chord.{i}')['status']}")
j = one("cancel-chord.join")
check(j["status"] == "CANCELLED" and j.get("started_at", 0) == 0,
      f"cancel-chord.join: {j['status']}, started_at {j.get('started_at')}")
check(one("cancel-chord")["status"] == "CANCELLED", f"cancel-chord: {one('cancel-chord')['status']}")
sys.exit(1 if bad else 0)
PY

# A workflow the topic has no record of, and --workflow with a topic.
set +e
producer replay --workflow no-such-wf >/dev/null 2>"$work/none.err"
rc=$?
producer replay --workflow tree-1 --results >/dev/null 2>"$work/usage.err"
rc2=$?
set -e
assert_eq "exit code of replay --workflow no-such-wf" "$rc" 1
grep -q 'workflow no-such-wf: topic swarmq-workflows (partition [0-9]* of 3) has no record of it' \
        "$work/none.err" || fail "no-such-wf: $(cat "$work/none.err")"
assert_eq "exit code of replay --workflow with --results" "$rc2" 2
log "ok: the cancelled workflows ended CANCELLED, none of their later tasks ran"
stop_consumers c1
