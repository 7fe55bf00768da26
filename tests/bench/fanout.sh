#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Fan-out / fan-in (docs/workflows.md): one workflow, a chain of a parent
# task and a chord: the parent (echo W) outputs W, which is the payload of
# each of the N children (sleep W ms each), and the join (noop) runs once
# every child ended, with their N results as its payload:
#
#   {"chain": [{"type": "echo", "payload": "W"},
#              {"group": [{"type": "sleep"} x N], "join": {"type": "noop"}}]}
#
# One swarmq instance with workflows.enable=true and T executor threads,
# on the embedded broker, or on the broker at $BOOTSTRAP (its own topics,
# named after this run). From the results (every time is the instances'
# wall clock on this machine) it prints:
#   - the children's work floor: N * W / (T - R) (the children's sleeps
#     packed perfectly on the executors that run NORMAL tasks: T threads
#     less the R kept for CRITICAL ones, executor.critical.reserved,
#     default 1), and the children's span (first child started to last
#     child finished) against it;
#   - fan-out: the parent's finish to the first child's start (the owner
#     read the parent's ending and submitted the N children);
#   - time to join: the last child's finish to the join's start (the
#     ending of the last child read by the owner, the join submitted and
#     picked up);
#   - the whole: the parent's start to the join's finish, and the
#     workflow's result written after it.
# Repeated R times (fresh ids). Extra arguments go to swarmq-consumer.
#
# With SPAWN=1 the children come from the parent's own result instead
# (docs/workflows.md, "Children from a task's result"): the parent runs
# on a builtin echo agent with agent.fan.spawn=true, its payload (and so
# its output) {"spawn": {"group": [N sleeps of W], "join": noop}}; the
# children's workflow is <parent id>.spawn. The builtin agents are then
# declared (sleep with executor.threads of concurrency, as the default
# agents have).
#
#   [SPAWN=1] [BOOTSTRAP=host:port] tests/bench/fanout.sh BUILD_DIR [N] [W_MS] [THREADS] [R] [consumer args...]
set -euo pipefail
build=$(cd "$1" && pwd)
n=${2:-1000}
w=${3:-20}
threads=${4:-8}
runs=${5:-3}
shift $(($# < 5 ? $# : 5))
reserved=1
for a in "$@"; do
        [[ $a != executor.critical.reserved=* ]] || reserved=${a#*=}
done
src=$(cd "$(dirname "$0")/../.." && pwd)
source "$src/ops/lib.sh"
work=$(mktemp -d /tmp/swarmq-bench-fanout.XXXXXX)
pid=
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

args=(--http-port auto -X workflows.enable=true -X "executor.threads=$threads"
      -X kafka.fetch.wait.max.ms=100)
topics=()
if [[ -n "${BOOTSTRAP:-}" ]]; then
        p=bench-fanout-$$
        args+=(-b "$BOOTSTRAP" -g "$p-group")
        for t in tasks critical results events dlt retry control workflows; do
                args+=(-X "topic.$t=$p-$t")
        done
        topics=(--topic-tasks "$p-tasks" --topic-critical "$p-critical"
                --topic-results "$p-results" --topic-events "$p-events")
        wf_topic=(--topic-workflows "$p-workflows")
else
        args+=(--embedded-broker)
        wf_topic=()
fi
spawn=${SPAWN:-0}
if ((spawn)); then
        for a in echo sleep noop; do
                args+=(-X "agent.$a.kind=builtin" -X "agent.$a.concurrency=$threads")
        done
        args+=(-X agent.fan.kind=builtin -X agent.fan.handler=echo
               -X agent.fan.capabilities=fan -X agent.fan.spawn=true)
fi
"$build/consumer/swarmq-consumer" "${args[@]}" "$@" >"$work/c.out" 2>"$work/c.log" &
pid=$!
bootstrap=$(sq_wait_line "$work/c.out" bootstrap.servers 60)
http=$(sq_wait_line "$work/c.out" http.url 10)
wait_until 60 "consumer ready" -- value_is == 200 sq_http_status "$http/readyz" >/dev/null
producer() { "$build/producer/swarmq-producer" -b "$bootstrap" "$@"; }

for ((r = 1; r <= runs; r++)); do
        id=fan-$$-$r
        python3 - "$id" "$n" "$w" "$spawn" >"$work/$id.json" <<'PY'
import json, sys
wid, n, w, spawn = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
kids = {"group": [{"type": "sleep"} for _ in range(n)], "join": {"type": "noop"}}
if spawn:  # a task whose output spawns the children (one JSON line)
    for k in kids["group"]:
        k["payload"] = w
    print(json.dumps({"id": wid, "type": "fan", "capabilities": ["fan"],
                      "payload": json.dumps({"spawn": kids, "output": "spawned"})}))
else:
    print(json.dumps({"id": wid, "workflow": {"chain": [
        {"type": "echo", "payload": w}, kids]}}))
PY
        if ((spawn)); then
                producer -q "${topics[@]}" submit --file "$work/$id.json" >/dev/null
                whole=$id.spawn
        else
                producer -q "${wf_topic[@]}" workflow "$work/$id.json" >/dev/null
                whole=$id
        fi
        producer -q "${topics[@]}" wait --id "$whole" --timeout-ms $((n * w + 300000)) >/dev/null ||
                { echo "bench fanout: workflow $id did not end; log:" >&2; tail -20 "$work/c.log" >&2; exit 1; }
done
producer -q "${topics[@]}" replay --results >"$work/results.jsonl"
python3 - "$work/results.jsonl" "$$" "$n" "$w" "$threads" "$runs" "$reserved" "$spawn" <<'PY'
import json, sys
path, pid, n, w, threads, runs, reserved, spawn = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
res = {}
for line in open(path):
    r = json.loads(line)
    res.setdefault(r["task_id"], r)  # the first result of each task
floor = n * w / (threads - reserved)
print(f"fan-out 1 -> {n} -> 1 ({'spawned by the parent' if spawn else 'declared'}): "
      f"children sleep {w} ms each, {threads} executor threads, "
      f"{reserved} kept for CRITICAL; work floor N*W/(T-R) = {floor:.0f} ms")
print("run | children span ms (vs floor) | fan-out ms | time to join ms | parent start to join end ms | workflow result after join ms | all SUCCEEDED")
for r in range(1, runs + 1):
    wid = f"fan-{pid}-{r}"
    if spawn:  # the parent, then its workflow <id>.spawn: a chord
        parent, base = res[wid], f"{wid}.spawn"
        join, whole = res[f"{base}.join"], res[base]
        kids = [res.get(f"{base}.{i}") for i in range(n)]
    else:      # a chain: the parent, then the chord
        parent, join, whole = res[f"{wid}.0"], res[f"{wid}.1.join"], res[wid]
        kids = [res.get(f"{wid}.1.{i}") for i in range(n)]
    ok = all(k and k["status"] == "SUCCEEDED" for k in kids) and \
        join["status"] == whole["status"] == "SUCCEEDED"
    first = min(k["started_at"] for k in kids)
    last = max(k["finished_at"] for k in kids)
    print(f"{r} | {last - first} ({(last - first) / floor:.2f}x) | "
          f"{first - parent['finished_at']} | {join['started_at'] - last} | "
          f"{join['finished_at'] - parent['started_at']} | "
          f"{whole['finished_at'] - join['finished_at']} | {ok}")
PY
