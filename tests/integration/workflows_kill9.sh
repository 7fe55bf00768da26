# SPDX-License-Identifier: Apache-2.0
#
# Workflows across a kill -9 of the instance that owns a chord
# (docs/workflows.md), written once for the mock cluster (integration/0028,
# at least once) and real Kafka (broker/0650, exactly once). Sourced after
# lib.sh; the caller sets $bootstrap, the arrays common (consumer
# arguments, workflows.enable=true among them), prod_args (swarmq-producer
# topic arguments for wait and replay) and wf_args (the global
# --topic-workflows of workflow, or none),
# $wf_partitions (topic.workflows' partition count) and $exactly_once
# (0 or 1).
#
# Two instances. Submitted with `swarmq-producer workflow`:
#   - chord-1: a group of 60 sleep tasks (400 ms each) and a gate task
#     (an exec agent that ends once the test opens its gate, after the
#     kill: so the owner is killed mid-chord however fast the sleeps run
#     on a busy machine), and an echo join;
#   - chain-ok: echo "x" -> sha256 -> echo (each step's output the next
#     step's payload);
#   - chain-fail: echo -> fail (one attempt) -> echo: stops at the failure.
# Once ten of chord-1's children ended, the instance owning chord-1 (its
# /status lists it) is killed with SIGKILL. The other takes the
# partition of topic.workflows over when the group notices
# (kafka.session.timeout.ms), rebuilds chord-1 from the topic, and goes
# on. Then, from the results topic:
#   - chord-1 has exactly one result, SUCCEEDED, whose output is the
#     join's: the 61 children, each once, each SUCCEEDED, in order;
#   - the join ran at least once (its id is the workflow's, so a second
#     run would be the same task); exactly once under exactly_once;
#   - chain-ok's output is echo(sha256("x")), each step's parent_id the
#     step before; chain-fail ended FAILED naming the failed step (dead-
#     lettered after its one attempt), and its last step never ran;
# and a bad workflow file is refused (exit 2) naming its bad field.

# The builtins the workflows use, and the gate (configured agents replace
# the default set).
gate=(-X agent.sleep.kind=builtin -X agent.echo.kind=builtin
        -X agent.sha256.kind=builtin -X agent.fail.kind=builtin
        -X agent.gate.kind=exec
        -X "agent.gate.command=[\"/bin/sh\", \"-c\", \"i=0; while [ ! -e '$work/release' ] && [ \$i -lt 1200 ]; do /bin/sleep 0.05; i=\$((i + 1)); done\"]")
rm -f "$work/release"
start_consumer c1 "${common[@]}" "${gate[@]}"
start_consumer c2 "${common[@]}" "${gate[@]}"
wait_ready "$c1_http"
wait_ready "$c2_http"

owned() {
        curl -fsS "$1/status" | python3 -c \
                'import json,sys; print(json.load(sys.stdin)["workflows"]["partitions_owned"])'
}
wait_until 60 "the two instances share topic.workflows' $wf_partitions partitions" -- \
        value_is == "$wf_partitions" eval 'echo $(( $(owned "$c1_http") + $(owned "$c2_http") ))'

# A bad file: refused before anything is written, naming the place.
printf '{"workflow": {"group": [{"type": "echo", "paylod": "x"}]}}\n' >"$work/bad.json"
set +e
producer "${wf_args[@]}" workflow --id bad-1 "$work/bad.json" 2>"$work/bad.err"
rc=$?
set -e
assert_eq "exit code of a bad workflow file" "$rc" 2
grep -q 'workflow bad-1: workflow.group\[0\]: task: unknown field "paylod"' "$work/bad.err" ||
        fail "the bad file's error names no field: $(cat "$work/bad.err")"
log "ok: $(cat "$work/bad.err")"

python3 - "$work/chord.json" <<'PY'
import json, sys
kids = [{"type": "sleep", "payload": "400"} for _ in range(60)] + [{"type": "gate"}]
json.dump({"id": "chord-1", "workflow": {"group": kids, "join": {"type": "echo"}}},
          open(sys.argv[1], "w"))
PY
cat >"$work/chain-ok.json" <<'EOF'
{"id": "chain-ok",
 "workflow": {"chain": [{"type": "echo", "payload": "x"}, {"type": "sha256"},
                        {"type": "echo"}]}}
EOF
cat >"$work/chain-fail.json" <<'EOF'
{"id": "chain-fail", "max_attempts": 1,
 "workflow": {"chain": [{"type": "echo", "payload": "y"}, {"type": "fail"},
                        {"type": "echo"}]}}
EOF
for f in chord chain-ok chain-fail; do
        producer "${wf_args[@]}" workflow "$work/$f.json" >"$work/$f.id" || fail "cannot submit $f"
done
assert_eq "the id workflow printed" "$(cat "$work/chord.id")" chord-1

lists() { # URL: does /status list chord-1 as running there?
        curl -fsS "$1/status" | python3 -c \
                'import json,sys; print(any(w["id"] == "chord-1" for w in json.load(sys.stdin)["workflows"]["list"]))'
}
find_owner() {
        if [[ $(lists "$c1_http") == True ]]; then
                owner=c1 owner_pid=$c1_pid other=c2 other_http=$c2_http
        elif [[ $(lists "$c2_http") == True ]]; then
                owner=c2 owner_pid=$c2_pid other=c1 other_http=$c1_http
        else
                return 1
        fi
}
wait_until 60 "an instance owns chord-1" -- find_owner
children_done() {
        metric_sum "$1" '^swarmq_tasks_total\{.*status="SUCCEEDED"'
}
wait_until 60 "ten of chord-1's children ended" -- \
        value_is -ge 10 eval 'echo $(( $(children_done "$c1_http") + $(children_done "$c2_http") ))'
log "kill -9 $owner, the owner of chord-1"
kill -KILL "$owner_pid"
wait "$owner_pid" 2>/dev/null || true
killed_ms=$(date +%s%3N)
touch "$work/release" # the gate task may end now

producer "${prod_args[@]}" wait --id chord-1 --id chain-ok --id chain-fail --timeout-ms 120000 \
        >"$work/wait.out" 2>&1 || fail "the workflows did not end: $(cat "$work/wait.out")"
log "the workflows ended $(($(date +%s%3N) - killed_ms)) ms after the kill"
wait_until 30 "$other ended the workflows" -- \
        value_is -ge 1 metric_sum "$other_http" '^swarmq_workflows_ended_total\{status="SUCCEEDED"'
# Every step's result too, before the replay below reads them: under
# exactly_once the killed owner's open transaction hides what follows it
# on its partitions from read_committed readers (a replay stops at that
# point) until the broker aborts it (kafka.transaction.timeout.ms).
{
        for i in $(seq 0 60); do echo "chord-1.$i"; done
        echo chord-1.join
        echo chain-ok.0; echo chain-ok.1; echo chain-ok.2
        echo chain-fail.0; echo chain-fail.1
} >"$work/steps.ids"
producer "${prod_args[@]}" wait --ids-file "$work/steps.ids" --timeout-ms 120000 \
        >"$work/wait-steps.out" 2>&1 || fail "the steps' results did not all come: $(tail -n 3 "$work/wait-steps.out")"

producer "${prod_args[@]}" replay --results >"$work/results.jsonl" 2>/dev/null || fail "cannot replay the results"
python3 - "$work/results.jsonl" "$exactly_once" <<'PY' || fail "the workflows' results are wrong"
import collections, hashlib, json, sys
res = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    res[r["task_id"]].append(r)
exactly_once = sys.argv[2] == "1"
bad = 0
def fail(msg):
    global bad
    print("FAIL:", msg); bad += 1
def out(r):
    return r.get("output", "")

# chord-1: ended once, its output the join's.
ends = res["chord-1"]
print(f"chord-1: {len(ends)} result(s): {[e['status'] for e in ends]}")
if len(ends) != 1 or ends[0]["status"] != "SUCCEEDED" or ends[0].get("workflow_id") != "chord-1":
    fail(f"chord-1 should end once, SUCCEEDED: {ends}")
joins = res["chord-1.join"]
print(f"chord-1.join ran {len(joins)} time(s)")
if not joins:
    fail("the join never ran")
elif exactly_once and len(joins) != 1:
    fail(f"the join ran {len(joins)} times under exactly_once")
else:
    kids = json.loads(out(joins[0]))
    want = [f"chord-1.{i}" for i in range(61)]
    if [k["id"] for k in kids] != want:
        fail(f"the join's input lists {[k['id'] for k in kids][:5]}..., not the 61 children in order")
    if any(k["status"] != "SUCCEEDED" for k in kids):
        fail(f"children not SUCCEEDED in the join's input: {[k for k in kids if k['status'] != 'SUCCEEDED']}")
    if ends and out(ends[0]) != out(joins[0]):
        fail("chord-1's output is not its join's")
ran = [i for i in range(61) if not res[f"chord-1.{i}"]]
if ran:
    fail(f"children with no result: {ran}")
again = [i for i in range(61) if len(res[f"chord-1.{i}"]) > 1]
print(f"children run again after the kill (at least once): {len(again)}")

# chain-ok: x -> sha256 -> echo.
want = hashlib.sha256(b"x").hexdigest()
ok = res["chain-ok"]
if len(ok) != 1 or ok[0]["status"] != "SUCCEEDED" or out(ok[0]) != want:
    fail(f"chain-ok: {ok}, expected one SUCCEEDED with {want}")
if res["chain-ok.1"] and res["chain-ok.1"][0].get("parent_id") != "chain-ok.0":
    fail(f"chain-ok.1's parent_id: {res['chain-ok.1'][0].get('parent_id')}")
if res["chain-ok.2"] and res["chain-ok.2"][0].get("parent_id") != "chain-ok.1":
    fail(f"chain-ok.2's parent_id: {res['chain-ok.2'][0].get('parent_id')}")
print(f"chain-ok: {out(ok[0]) if ok else None}")

# chain-fail: stops at its failed step.
f = res["chain-fail"]
if len(f) != 1 or f[0]["status"] != "FAILED" or \
        "step chain-fail.1 ended DEAD_LETTERED" not in (f[0].get("error") or ""):
    fail(f"chain-fail: {f}")
if res["chain-fail.2"]:
    fail("chain-fail's step after the failure ran")
print(f"chain-fail: {f[0].get('error') if f else None}")
sys.exit(1 if bad else 0)
PY
stop_consumers "$other"
