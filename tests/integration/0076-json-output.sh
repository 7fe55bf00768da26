#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# output.format=json: results and events are written as one JSON object per
# record, readable without Avro. One consumer on its embedded broker runs
# 20 echo tasks and one failing task; swarmq-producer wait and replay read
# the JSON records as they read Avro ones, and a reader that knows only
# JSON (kcat for the raw values, Python's json and base64) finds the
# schemas' fields with bytes as output_base64 and times as *_ms integers.
source "$(dirname "$0")/lib.sh"

start_consumer c1 --embedded-broker -X executor.threads=2 \
        -X retry.max.attempts=1 -X output.format=json
wait_ready "$c1_http"

producer -q submit --count 20 --type echo --payload "json out" \
        --id-prefix ok --ids-out "$work/ok.ids" || fail "submit failed"
producer -q submit --count 1 --type fail --payload "no" \
        --id-prefix bad --ids-out "$work/bad.ids" || fail "submit failed"
cat "$work/ok.ids" "$work/bad.ids" >"$work/ids"
producer wait --ids-file "$work/ids" --timeout-ms 60000 --print --json \
        >"$work/wait.out" || fail "not every task got a result"
tail -n 1 "$work/wait.out" >"$work/summary.json"
assert_eq "SUCCEEDED" "$(json_get "$work/summary.json" 'j["status"].get("SUCCEEDED",0)')" 20
assert_eq "DEAD_LETTERED" "$(json_get "$work/summary.json" 'j["status"].get("DEAD_LETTERED",0)')" 1
producer replay --events >"$work/events.jsonl" || fail "replay failed"
assert_eq "succeeded events read by replay" \
        "$(grep -c '"type": *"succeeded"' "$work/events.jsonl")" 20

for topic in swarmq-results swarmq-events; do
        kcat -b "$bootstrap" -C -t "$topic" -o beginning -e -q -f '%s\n' \
                >"$work/$topic.raw" || fail "kcat could not read $topic"
done
python3 - "$work/swarmq-results.raw" "$work/swarmq-events.raw" <<'PY' ||
import base64, json, sys
results = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
events = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
errors = []
want = {"task_id", "status", "output_base64", "error", "agent", "instance",
        "attempts", "source", "created_at_ms", "started_at_ms",
        "finished_at_ms"}
for r in results:
    if set(r) != want:
        errors.append(f"result fields {sorted(set(r) ^ want)} differ")
    ok = r["task_id"].startswith("ok")
    if ok and (r["status"] != "SUCCEEDED" or
               base64.b64decode(r["output_base64"]) != b"json out"):
        errors.append(f"{r['task_id']}: {r['status']} {r['output_base64']}")
    if not ok and (r["status"] != "DEAD_LETTERED" or not r["error"]):
        errors.append(f"{r['task_id']}: {r['status']} {r['error']}")
    if not (0 < r["created_at_ms"] <= r["started_at_ms"] <= r["finished_at_ms"]):
        errors.append(f"{r['task_id']}: times out of order")
    if r["source"]["topic"] != "swarmq-tasks":
        errors.append(f"{r['task_id']}: source {r['source']}")
if len(results) != 21:
    errors.append(f"{len(results)} results, not 21")
for e in events:
    if set(e) != {"event_id", "task_id", "type", "at_ms", "instance", "agent",
                  "detail"} or not isinstance(e["at_ms"], int):
        errors.append(f"event {e}")
if sum(e["type"] == "succeeded" for e in events) != 20:
    errors.append("not 20 succeeded events")
for e in errors[:10]:
    print("  " + e)
sys.exit(1 if errors else 0)
PY
        fail "the raw JSON records are not what docs/wire.md says (above)"

kill -TERM "$c1_pid"
status=0
sq_wait_exit "$c1_pid" 60 || status=$?
assert_eq "c1 exit status after SIGTERM" "$status" 0
log "passed"
