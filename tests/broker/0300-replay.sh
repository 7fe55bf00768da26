#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# swarmq-producer replay on real Kafka: two batches of tasks with a time
# gap between them. Replaying events from the beginning gives every task's
# received, started and terminal event; --results gives one line per task
# with the right status; --since <the gap> (ISO 8601 with milliseconds, a
# +hh:mm offset, or epoch millis) gives exactly the second batch, --until
# exactly the first; --offset, --task-id and --max work; a --since after the
# last record is an empty replay, not an error; a bad --since is a usage
# error naming the value; a missing topic is a broker error. The steps
# shared with tests/integration/0006 are in replay_lib.sh.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/../integration/replay_lib.sh"
use_real_kafka

start_consumer c1 -b "$bootstrap" "${consumer_topic_args[@]}" -X retry.max.attempts=1
wait_ready "$c1_http"

p=(producer "${producer_topic_args[@]}" --topic-events "$t_events")
replay_cli=("${p[@]}")

# Batch 1: 30 tasks that succeed and 10 that fail.
"${p[@]}" -q submit --count 30 --type echo --payload one --id-prefix b1 \
        --ids-out "$work/b1-ok.ids" || fail "submit failed"
"${p[@]}" -q submit --count 10 --type fail --id-prefix b1f \
        --ids-out "$work/b1-fail.ids" || fail "submit failed"
cat "$work/b1-ok.ids" "$work/b1-fail.ids" >"$work/b1.ids"
"${p[@]}" -q wait --ids-file "$work/b1.ids" --timeout-ms 60000 >/dev/null ||
        fail "batch 1 results missing"
wait_events all_events 120

sleep 0.3
between=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.3
log "between the batches: $between"

# Batch 2: 25 tasks that succeed and 5 that fail.
"${p[@]}" -q submit --count 25 --type echo --payload two --id-prefix b2 \
        --ids-out "$work/b2-ok.ids" || fail "submit failed"
"${p[@]}" -q submit --count 5 --type fail --id-prefix b2f \
        --ids-out "$work/b2-fail.ids" || fail "submit failed"
cat "$work/b2-ok.ids" "$work/b2-fail.ids" >"$work/b2.ids"
"${p[@]}" -q wait --ids-file "$work/b2.ids" --timeout-ms 60000 >/dev/null ||
        fail "batch 2 results missing"
wait_events all_events 210
cat "$work/b1.ids" "$work/b2.ids" >"$work/all.ids"

# check_events FILE IDS_FILE...: FILE holds exactly the events of the tasks
# in the IDS_FILEs, each task received, started and its terminal event
# (failed for ids with an "f-" prefix part, else succeeded), nothing else.
check_events() {
        python3 - "$@" <<'PY'
import json, sys
ids = [l.strip() for f in sys.argv[2:] for l in open(f) if l.strip()]
seen = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    seen.setdefault(e["task_id"], []).append(e["type"])
bad = []
for i in ids:
    terminal = "dead_lettered" if i.split("-")[0].endswith("f") else "succeeded"
    if sorted(seen.get(i, [])) != sorted(["received", "started", terminal]):
        bad.append((i, seen.get(i)))
extra = sorted(set(seen) - set(ids))
print(f"{len(seen)} tasks with events, {len(ids)} expected; wrong: {bad[:3]}; extra: {extra[:3]}")
sys.exit(1 if bad or extra else 0)
PY
}

# check_results FILE IDS_FILE...: one result per task, statuses right.
check_results() {
        python3 - "$@" <<'PY'
import json, sys, collections
ids = [l.strip() for f in sys.argv[2:] for l in open(f) if l.strip()]
n = collections.Counter()
bad = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    n[r["task_id"]] += 1
    want = "DEAD_LETTERED" if r["task_id"].split("-")[0].endswith("f") else "SUCCEEDED"
    if r["status"] != want:
        bad.append((r["task_id"], r["status"]))
wrong = [i for i in ids if n[i] != 1] + sorted(set(n) - set(ids))
print(f"{sum(n.values())} results, {len(n)} tasks, {len(ids)} expected; "
      f"not exactly once: {wrong[:3]}; wrong status: {bad[:3]}")
sys.exit(1 if bad or wrong else 0)
PY
}

log "events from the beginning"
replay_to events --from-beginning
assert_eq "replay exit code" "$rc" 0
check_events "$work/events.jsonl" "$work/all.ids" || fail "events are wrong"

log "results"
replay_to results --results
assert_eq "replay --results exit code" "$rc" 0
check_results "$work/results.jsonl" "$work/all.ids" || fail "results are wrong"

log "--since $between: the second batch, all of it, and nothing else"
replay_to since --since "$between"
assert_eq "replay --since exit code" "$rc" 0
check_events "$work/since.jsonl" "$work/b2.ids" || fail "--since events are wrong"
replay_to since_results --results --since "$between"
check_results "$work/since_results.jsonl" "$work/b2.ids" ||
        fail "--since results are wrong"
# The same instant written with a +hh:mm offset and as epoch millis.
read -r between_plus between_ms < <(python3 -c '
import sys, datetime
t = datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
print(t.astimezone(tz).isoformat(timespec="milliseconds"), round(t.timestamp() * 1000))' "$between")
replay_to since_plus --since "$between_plus"
assert_eq "--since $between_plus, lines" "$(wc -l <"$work/since_plus.jsonl")" 90
check_events "$work/since_plus.jsonl" "$work/b2.ids" || fail "--since with an offset is wrong"
replay_to since_ms --since "$between_ms"
assert_eq "--since $between_ms, lines" "$(wc -l <"$work/since_ms.jsonl")" 90

log "--until $between: the first batch only"
replay_to until --until "$between"
assert_eq "replay --until exit code" "$rc" 0
check_events "$work/until.jsonl" "$work/b1.ids" || fail "--until events are wrong"

# A time after the last record: nothing to replay, which is not an error
# (Kafka answers the lookup; only a broker without it fails).
replay_to since_future --since 2999-01-01T00:00:00Z
assert_eq "--since in the future: exit code" "$rc" 0
assert_eq "--since in the future: lines" "$(wc -l <"$work/since_future.jsonl")" 0

log "--offset"
replay_check_coordinates "$t_events"
replay_check_offsets 5 2

log "--task-id, --max"
id1=$(sed -n 7p "$work/b1-fail.ids") id2=$(sed -n 3p "$work/b2-ok.ids")
replay_to taskid --task-id "$id1" --task-id "$id2"
printf '%s\n' "$id1" "$id2" >"$work/two.ids"
check_events "$work/taskid.jsonl" "$work/two.ids" || fail "--task-id events are wrong"
replay_to taskid_results --results --task-id "$id1"
assert_eq "--results --task-id $id1" \
        "$(python3 -c 'import json,sys; print(*[(j["task_id"], j["status"]) for j in map(json.loads, open(sys.argv[1]))])' "$work/taskid_results.jsonl")" \
        "('$id1', 'DEAD_LETTERED')"
replay_check_max 17
replay_to max_filtered --type dead_lettered --max 12
assert_eq "replay --type dead_lettered --max 12 lines" \
        "$(grep -c '"type":"dead_lettered"' "$work/max_filtered.jsonl")" 12

log "errors"
replay_check_bad_since 2026-11-24T25:00:00Z
replay_rc no_topic --topic "$t_events-missing"
assert_eq "missing topic exit code" "$rc" 3
grep -q "$t_events-missing: no such topic" "$work/no_topic.err" ||
        fail "missing topic not named: $(cat "$work/no_topic.err")"
log "ok: $(tail -1 "$work/no_topic.err")"

kill -TERM "$c1_pid"
sq_wait_exit "$c1_pid" 60 || fail "c1 did not exit 0 after SIGTERM"
log "passed"
