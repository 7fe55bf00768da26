#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# 10,000 mixed tasks through one consumer on the embedded broker: exactly
# one result per task id, the right status for each kind, the right output
# bytes, lifecycle events for every task, and /metrics agreeing. A small
# admission window forces the pause/resume path on the way. With
# retry.max.attempts=1 a failing task gets no retry: it is dead-lettered
# after its one attempt (retries have their own test, 0020).
source "$(dirname "$0")/lib.sh"

start_consumer c1 --embedded-broker -X executor.threads=4 -X retry.max.attempts=1 \
        -X admission.high.mark=400 -X admission.low.mark=200
wait_ready "$c1_http"

sub() {
        local name=$1
        shift
        producer -q submit --ids-out "$work/ids.$name" --id-prefix "$name" "$@" ||
                fail "submit $name failed"
}
sub noop   --count 6000 --type noop --priority-mix LOW:1,NORMAL:4,HIGH:2,CRITICAL:1
sub sha    --count 2000 --type sha256 --payload abc
sub echo   --count 1000 --type echo --payload "echo me"
sub fail   --count 500  --type fail --payload "failing on purpose"
sub sleep  --count 400  --type sleep --payload 1 --priority HIGH
sub nogpu  --count 100  --type render --capability gpu
cat "$work"/ids.* >"$work/all.ids"
assert_eq "ids submitted" "$(sort -u "$work/all.ids" | wc -l)" 10000

producer wait --ids-file "$work/all.ids" --timeout-ms 180000 --print --json \
        >"$work/wait.out" || fail "not every task got a result"
tail -n 1 "$work/wait.out" >"$work/summary.json"
head -n -1 "$work/wait.out" >"$work/results.jsonl"

assert_eq "distinct task ids with a result" "$(json_get "$work/summary.json" 'j["distinct"]')" 10000
assert_eq "duplicate results" "$(json_get "$work/summary.json" 'j["duplicates"]')" 0
assert_eq "SUCCEEDED" "$(json_get "$work/summary.json" 'j["status"].get("SUCCEEDED",0)')" 9400
assert_eq "DEAD_LETTERED" "$(json_get "$work/summary.json" 'j["status"].get("DEAD_LETTERED",0)')" 600

# Per-kind checks on the results themselves.
python3 - "$work/results.jsonl" <<'PY' || fail "result contents are wrong (see above)"
import hashlib, json, sys
want_sha = hashlib.sha256(b"abc").hexdigest()
errors = 0
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    seen[r["task_id"]] = r
def check(cond, msg):
    global errors
    if not cond:
        errors += 1
        if errors < 10:
            print("  " + msg)
for tid, r in seen.items():
    kind = tid.split("-")[0]
    if kind == "sha":
        check(r["status"] == "SUCCEEDED" and r.get("output") == want_sha,
              f"{tid}: sha256 output {r.get('output')!r}")
        check(r["agent"] == "sha256", f"{tid}: agent {r['agent']}")
    elif kind == "echo":
        check(r.get("output") == "echo me", f"{tid}: echo output {r.get('output')!r}")
    elif kind == "fail":
        check(r["status"] == "DEAD_LETTERED" and r.get("error") == "failing on purpose"
              and r["attempts"] == 1,
              f"{tid}: fail result {r['status']} {r.get('error')!r}")
    elif kind == "nogpu":
        check(r["status"] == "DEAD_LETTERED" and "gpu" in (r.get("error") or "")
              and r.get("agent") is None,
              f"{tid}: no-agent result {r['status']} {r.get('error')!r}")
    elif kind in ("noop", "sleep"):
        check(r["status"] == "SUCCEEDED", f"{tid}: status {r['status']}")
    check(r["instance"] == "c1", f"{tid}: instance {r['instance']}")
    check(r["source"]["topic"] in ("swarmq-tasks", "swarmq-tasks-critical"),
          f"{tid}: source {r['source']}")
    if r["status"] == "SUCCEEDED":
        check(r["created_at"] <= r["started_at"] <= r["finished_at"],
              f"{tid}: timings {r['created_at']} {r['started_at']} {r['finished_at']}")
print(f"checked {len(seen)} results, {errors} errors")
sys.exit(1 if errors else 0)
PY

# Lifecycle events: every task has received + terminal, and ran tasks
# have started too (the events topic is keyed by task id).
kcat -b "$bootstrap" -C -t swarmq-events -e -q -f '%k\n' >"$work/event-keys.txt" 2>"$work/kcat.log" ||
        fail "kcat could not read swarmq-events"
python3 - "$work/event-keys.txt" "$work/all.ids" <<'PY' || fail "events missing"
import collections, sys
counts = collections.Counter(l.strip() for l in open(sys.argv[1]))
ids = [l.strip() for l in open(sys.argv[2])]
bad = [i for i in ids if counts[i] < (2 if i.startswith("nogpu") else 3)]
print(f"{len(ids)} tasks, {sum(counts[i] for i in ids)} events, {len(bad)} with too few")
sys.exit(1 if bad else 0)
PY

# /metrics agrees with what the topics say.
assert_eq "metric: DEAD_LETTERED tasks on agent fail" \
        "$(metric_sum "$c1_http" 'swarmq_tasks_total\{status="DEAD_LETTERED",agent="fail"')" 500
assert_eq "metric: DEAD_LETTERED tasks with no agent" \
        "$(metric_sum "$c1_http" 'swarmq_tasks_total\{status="DEAD_LETTERED",agent="none"')" 100
assert_eq "metric: dead letters for no agent" \
        "$(metric_sum "$c1_http" 'swarmq_dead_letters_total\{reason="NO_AGENT"')" 100
assert_eq "metric: dead letters for a failed attempt" \
        "$(metric_sum "$c1_http" 'swarmq_dead_letters_total\{reason="FAILED"')" 500
assert_eq "/status: dead-lettered" \
        "$(sq_http_get "$c1_http/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tasks"]["dead_lettered"])')" 600
assert_eq "metric: all finished tasks" \
        "$(metric_sum "$c1_http" '^swarmq_tasks_total')" 10000

# At the high mark intake first holds (records wait in the consumer's
# prefetch), and pauses the partitions only when a hold lasts 500 ms.
holds=$(metric_sum "$c1_http" '^swarmq_admission_holds_total')
pauses=$(metric_sum "$c1_http" '^swarmq_admission_pauses_total')
log "intake held $holds times and paused $pauses times at the 400-task high mark"
((holds > 0)) || fail "10,000 tasks never filled a 400-task admission window"

# A clean stop exits 0.
kill -TERM "$c1_pid"
sq_wait_exit "$c1_pid" 60 || fail "consumer did not exit 0 after SIGTERM (status $?)"
log "passed"
