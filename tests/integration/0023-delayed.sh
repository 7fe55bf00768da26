#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Delayed tasks (not_before) on the mock cluster, the broker a separate
# process so the state outlives the consumer. 12 tasks are submitted to run
# 20 s later (10 with --not-before, one as a JSON line with "not_before",
# one with --delay-ms), with 5 ordinary tasks among them. c1 runs the
# ordinary ones at once and moves the delayed ones to swarmq-tasks-retry
# (a `delayed` event each), where they wait: no result, nothing running.
# Once their original offsets are committed c1 is killed with SIGKILL.
# c2 starts in the same group with delay.hold.max.ms=3000, so each
# waiting record is moved to the end of the retry topic once more than
# 3 s old (swarmq_delay_hops_total). Every delayed task then gets exactly
# one SUCCEEDED result on c2, started no earlier than its not_before and
# within the documented bound after it (delay.hold.max.ms plus the fetch
# wait, with slack for a loaded machine); the figure is logged.
source "$(dirname "$0")/lib.sh"

start_broker --partitions 3
common=(-b "$bootstrap" -X commit.interval.ms=200 -X kafka.session.timeout.ms=6000
        -X kafka.fetch.wait.max.ms=100)
start_consumer c1 "${common[@]}"
wait_ready "$c1_http"

delay_ms=20000
not_before=$(($(date +%s%3N) + delay_ms))
producer -q submit --count 10 --id-prefix later --type echo --payload later \
        --not-before "$not_before" --ids-out "$work/later.ids" || fail "submit failed"
printf '{"id": "json-later", "type": "echo", "payload": "j", "not_before": %s}\n' \
        "$not_before" | producer -q submit --stdin || fail "JSON submit failed"
producer -q submit --id-prefix delay-ms --type echo --payload d \
        --delay-ms "$delay_ms" --ids-out "$work/delay.ids" || fail "submit failed"
producer -q submit --count 5 --id-prefix now --type echo --payload now \
        --ids-out "$work/now.ids" || fail "submit failed"
{ cat "$work/later.ids" "$work/delay.ids"; echo json-later; } >"$work/delayed.ids"
assert_eq "delayed task ids" "$(sort -u "$work/delayed.ids" | wc -l)" 12

# The ordinary tasks run now; the delayed ones are moved to wait.
moved() {
        delayed=$(metric_sum "$c1_http" '^swarmq_tasks_delayed_total')
        ok=$(metric_sum "$c1_http" '^swarmq_tasks_total\{status="SUCCEEDED"')
        echo "delayed $delayed, succeeded $ok"
        ((delayed == 12 && ok == 5))
}
wait_until 30 "12 tasks delayed and 5 run" -- moved
# Their original offsets are committed (the retry records are in Kafka):
# nothing of swarmq-tasks is left for c2.
tasks_committed() {
        curl -fsS "$c1_http/status" | python3 -c '
import json, sys
parts = [p for p in json.load(sys.stdin)["partitions"] if p["lane"] == "tasks"]
left = sum((p["high_watermark"] or 0) - (p["committed"] or 0) for p in parts)
print(f"{len(parts)} task partitions, {left} records not committed")
sys.exit(0 if parts and left == 0 else 1)'
}
wait_until 30 "swarmq-tasks committed" -- tasks_committed
((now_ms = $(date +%s%3N), now_ms < not_before)) ||
        fail "the machine is too slow for this test: the delay passed before the kill"
assert_eq "tasks succeeded on c1 while the delayed ones wait" \
        "$(metric_sum "$c1_http" '^swarmq_tasks_total\{status="SUCCEEDED"')" 5
log "kill -9 c1 with 12 delayed tasks waiting, $((not_before - now_ms)) ms before they are due"
kill -KILL "$c1_pid"
wait "$c1_pid" 2>/dev/null || true

start_consumer c2 "${common[@]}" -X delay.hold.max.ms=3000
producer wait --ids-file "$work/delayed.ids" --timeout-ms 60000 --print --json \
        >"$work/wait.out" || fail "not every delayed task reached a result after the kill"
python3 - "$work/wait.out" "$not_before" "$delay_ms" "$work/delayed.ids" <<'PY' || fail "delayed results are wrong"
import json, sys
not_before, delay = int(sys.argv[2]), int(sys.argv[3])
ids = set(open(sys.argv[4]).read().split())
results = {}
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j.get("task_id") in ids:  # wait prints every result it reads
        results.setdefault(j["task_id"], []).append(j)
bad, late = 0, []
for tid, rs in results.items():
    r = rs[0]
    # --delay-ms sets not_before to the submit time plus the delay, which
    # is at or after created_at plus the delay.
    nb = r["created_at"] + delay if tid.startswith("delay-ms") else not_before
    if len(rs) != 1 or r["status"] != "SUCCEEDED":
        print("FAIL:", tid, [(x["status"], x["instance"]) for x in rs]); bad += 1
    elif r["started_at"] < nb:
        print(f"FAIL: {tid} started {nb - r['started_at']} ms before its not_before"); bad += 1
    elif r["instance"] != "c2":
        print(f"FAIL: {tid} ran on {r['instance']}"); bad += 1
    else:
        late.append(r["started_at"] - nb)
print(f"{len(results)} delayed tasks with a result, {bad} wrong; started "
      f"{min(late, default=-1)} to {max(late, default=-1)} ms after not_before")
# The bound (docs/delayed-and-cancel.md): delay.hold.max.ms (3000 here)
# plus kafka.fetch.wait.max.ms (100), and 5 s for a loaded machine.
if late and max(late) > 3000 + 100 + 5000:
    print("FAIL: a task started later than the documented bound"); bad += 1
sys.exit(1 if bad or len(results) != 12 else 0)
PY
hops=$(metric_sum "$c2_http" '^swarmq_delay_hops_total')
((hops >= 1)) || fail "c2 moved no waiting record to the end (hops $hops)"
log "c2 moved waiting records to the end $hops times"
assert_eq "tasks c2 ran" "$(metric_sum "$c2_http" '^swarmq_tasks_total\{status="SUCCEEDED"')" 12
stop_consumers c2
log "ok: 12 delayed tasks survived kill -9 and ran once each, not before their time"
