#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Schema evolution on a real Apache Kafka broker: tasks that fastavro
# writes with the OLDER schema schemas/task-v0.avsc (schema id 4: no
# capabilities, timeout_ms, max_attempts, attempt or headers) run next to
# current ones (schema id 1) in one swarmq-consumer, which reads them with
# the current schema's defaults. What a user sees proves each default:
#   capabilities []  the agent is chosen by type (agent == type);
#   headers {}       cpu runs its default 1000 rounds (output = 1000-fold
#                    sha256, computed here);
#   timeout_ms 0     the instance's task.default.timeout.ms (set to 200)
#                    applies: a 2 s v0 sleep is TIMED_OUT, while a current
#                    task with timeout_ms 5000 sleeping 0.5 s succeeds;
#   attempt 1        the result says attempts 1 (a current task with
#                    attempt 2 says 2);
# and every result and event, decoded with fastavro, is otherwise as
# complete and correct as in 0200-fastavro-peer (same checker).
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

use_python_peer

t0=$SECONDS
start_consumer c1 -b "$bootstrap" "${consumer_topic_args[@]}" \
        -X executor.threads=4 -X task.default.timeout.ms=200 \
        -X retry.max.attempts=1
wait_ready "$c1_http"
log "c1 joined the group and got partitions in $((SECONDS - t0)) s"

t0=$SECONDS
"${peer[@]}" produce --mix evolution --default-timeout-ms 200 \
        --tasks "$t_tasks" --critical "$t_critical" \
        --plan-out "$work/plan.jsonl" ||
        fail "the Python producer could not produce the tasks"
# What is in the topics, as kcat reads it: the schema id of each frame.
for t in "$t_tasks" "$t_critical"; do
        kcat -b "$bootstrap" -C -t "$t" -o beginning -e -q -J ||
                fail "kcat could not read $t"
done >"$work/tasks.jsonl" 2>>"$work/kcat.log"
assert_eq "task records by schema id (kcat)" "$(python3 -c '
import json, sys
ids = {}
for line in open(sys.argv[1], "rb"):
    p = json.loads(line.decode("utf-8", "surrogateescape"))["payload"]
    p = p.encode("utf-8", "surrogateescape")
    k = "id%d" % int.from_bytes(p[1:5], "big") if p[:1] == b"\0" else "other"
    ids[k] = ids.get(k, 0) + 1
print(" ".join(f"{k}={v}" for k, v in sorted(ids.items())))
' "$work/tasks.jsonl")" "id1=3 id4=6"
"${peer[@]}" check --results "$t_results" --events "$t_events" \
        --plan "$work/plan.jsonl" --instance c1 --timeout 60 ||
        fail "v0 tasks were not read with the defaults (see above)"
log "produced and checked in $((SECONDS - t0)) s"

# The plan's expectations that carry the defaults, spelled out, so a
# change to the checker's mix cannot quietly drop them.
python3 - "$work/plan.jsonl" <<'PY' || fail "the plan lacks a default check"
import json, sys
plan = {e["id"]: e for e in map(json.loads, open(sys.argv[1]))}
want = {"v0-2-cpu": ("SUCCEEDED", "cpu"), "v0-3-sleep": ("DEAD_LETTERED", "sleep"),
        "v1-1-sleep": ("SUCCEEDED", "sleep"), "v0-0-sha256": ("SUCCEEDED", "sha256")}
bad = [(k, plan.get(k, {}).get("expect")) for k, (s, a) in want.items()
       if plan.get(k, {}).get("expect", {}).get("status") != s
       or plan[k]["expect"].get("agent") != a]
print("plan expectations:", "ok" if not bad else bad)
sys.exit(1 if bad else 0)
PY
# With retry.max.attempts=1 every failed or timed-out task is dead-lettered.
assert_eq "metric: dead letters" \
        "$(metric_sum "$c1_http" '^swarmq_dead_letters_total')" \
        "$(python3 -c 'import json,sys; print(sum(json.loads(l)["expect"]["status"] == "DEAD_LETTERED" for l in open(sys.argv[1])))' "$work/plan.jsonl")"
assert_eq "metric: finished tasks" \
        "$(metric_sum "$c1_http" '^swarmq_tasks_total')" 9

kill -TERM "$c1_pid"
status=0
sq_wait_exit "$c1_pid" 60 || status=$?
assert_eq "c1 exit status after SIGTERM" "$status" 0
log "passed"
