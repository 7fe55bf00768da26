#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Poison pills in bulk (issue 13): among CHAOS_TASKS tasks (2,000 here;
# `ops/chaos.sh --scenario oversized` runs 100,000), 1 % are echo tasks
# whose output (400 kB) cannot fit in a result record under the
# instance's kafka.message.max.bytes=300000, spread at random through the
# topic's 12 partitions. The instance stays up; every task gets exactly one
# terminal result: the oversized ones DEAD_LETTERED naming the size and
# the limit, every other SUCCEEDED; the counters agree; the group commits
# to the end of the topic.
source "$(dirname "$0")/lib.sh"
source "$src/tests/chaos/lib.sh"

n=${CHAOS_TASKS:-2000}
start_consumer c1 --embedded-broker -X kafka.message.max.bytes=300000 \
        -X executor.threads=4
wait_ready "$c1_http"

# The tasks, ids ov-000001..: every 100th-ish (seeded) is oversized.
python3 - "$n" "$work/tasks.jsonl" "$work/tasks.ids" "$work/big.ids" <<'PY'
import json, random, sys
n = int(sys.argv[1])
rnd = random.Random(13)
big = set(rnd.sample(range(n), max(1, n // 100)))
with open(sys.argv[2], "w") as tasks, open(sys.argv[3], "w") as ids, \
        open(sys.argv[4], "w") as bigs:
    for i in range(n):
        tid = f"ov-{i + 1:06d}"
        payload = "x" * 400000 if i in big else f"small {i}"
        tasks.write(json.dumps({"id": tid, "type": "echo", "payload": payload}) + "\n")
        ids.write(tid + "\n")
        if i in big:
            bigs.write(tid + "\n")
PY
n_big=$(wc -l <"$work/big.ids")
producer -X message.max.bytes=10000000 -q submit --file "$work/tasks.jsonl" ||
        fail "submit failed"
log "submitted $n tasks, $n_big of them with a 400 kB output"

# One terminal result each (check_results: none missing, duplicates 0).
check_results "$work/tasks.ids" 0 300000
producer wait --ids-file "$work/tasks.ids" --timeout-ms 60000 --print --json \
        >"$work/results.jsonl" || fail "wait --print failed"
python3 - "$work/results.jsonl" "$work/big.ids" <<'PY' || fail "results are wrong (see above)"
import json, re, sys
big = set(open(sys.argv[2]).read().split())
seen, bad = {}, []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "task_id" in r:
        seen[r["task_id"]] = r
for tid, r in seen.items():
    if tid in big:
        if r["status"] != "DEAD_LETTERED" or \
                not re.search(r"output of 400000 bytes does not fit", r.get("error") or "") or \
                "kafka.message.max.bytes=300000" not in r["error"]:
            bad.append((tid, r["status"], r.get("error")))
    elif r["status"] != "SUCCEEDED":
        bad.append((tid, r["status"], r.get("error")))
print(f"{len(seen)} results: {sum(t in big for t in seen)} oversized, "
      f"{len(bad)} wrong", bad[:3])
sys.exit(0 if not bad and big <= set(seen) else 1)
PY
log "ok: every oversized task DEAD_LETTERED with the size and the limit, every other SUCCEEDED"

kill -0 "$c1_pid" 2>/dev/null || fail "the consumer died"
assert_eq "healthz" "$(sq_http_status "$c1_http/healthz")" 200
assert_eq "metric: dead letters OUTPUT_TOO_LARGE" \
        "$(metric_sum "$c1_http" 'swarmq_dead_letters_total\{reason="OUTPUT_TOO_LARGE"')" "$n_big"
assert_eq "/status dead_lettered" \
        "$(sq_http_get "$c1_http/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tasks"]["dead_lettered"])')" "$n_big"
took=$(wait_drained 60 swarmq swarmq-tasks "$c1_http")
log "healthy, lag 0 and offsets committed to the end ${took}s after the last result"
stop_consumers c1
log "passed"
