#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# swarmq-producer replay on the mock cluster: events and results of a
# finished run come back as JSON lines and replay terminates on its own;
# coordinates, --offset, --until, --max, --task-id, --type and --topic;
# an undecodable record is warned about (and printed on request) without
# stopping the replay; --since fails clearly because the mock cluster has no
# timestamp lookup (tests/broker/0300-replay.sh covers --since on Kafka).
# The steps both share are in replay_lib.sh.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/replay_lib.sh"

start_consumer c1 --embedded-broker
wait_ready "$c1_http"

producer -q submit --count 30 --type echo --payload hi --id-prefix rp \
        --ids-out "$work/ids.txt" || fail "submit failed"
producer -q wait --ids-file "$work/ids.txt" --timeout-ms 60000 >/dev/null ||
        fail "results missing"

replay_cli=(producer)
wait_events events 90
assert_eq "events replayed" "$(wc -l <"$work/events.jsonl")" 90

python3 - "$work/events.jsonl" "$work/ids.txt" <<'PY' || fail "events are wrong"
import json, sys
ids = [l.strip() for l in open(sys.argv[2]) if l.strip()]
seen = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    seen.setdefault(e["task_id"], []).append(e["type"])
bad = [i for i in ids if sorted(seen.get(i, [])) != ["received", "started", "succeeded"]]
print(f"{len(seen)} tasks with events; wrong: {bad[:5]}")
sys.exit(1 if bad or len(seen) != len(ids) else 0)
PY

replay_to results --results
assert_eq "results exit code" "$rc" 0
assert_eq "results replayed" "$(wc -l <"$work/results.jsonl")" 30
assert_eq "results that SUCCEEDED" \
        "$(grep -c '"status":"SUCCEEDED"' "$work/results.jsonl")" 30

# Coordinates: the right topic, offsets increasing within each partition;
# --offset N (every partition) and P:N (one partition) from offset N.
replay_check_coordinates swarmq-events
replay_check_offsets 2 1
replay_check_max 7

replay_to taskid --task-id "$(sed -n 3p "$work/ids.txt")" \
        --task-id "$(sed -n 5p "$work/ids.txt")"
assert_eq "--task-id lines" "$(wc -l <"$work/taskid.jsonl")" 6
replay_to started --type started
assert_eq "--type started lines" "$(wc -l <"$work/started.jsonl")" 30
assert_eq "--type started, other types" \
        "$(grep -vc '"type":"started"' "$work/started.jsonl" || true)" 0

# --until: nothing is stamped before 2000, everything before 2999.
replay_to until_old --until 2000-01-01T00:00:00Z
assert_eq "--until 2000 lines" "$(wc -l <"$work/until_old.jsonl")" 0
replay_to until_new --until 2999-01-01T00:00:00.000+02:00
assert_eq "--until 2999 lines" "$(wc -l <"$work/until_new.jsonl")" 90
replay_to until_now --until "$(($(date +%s) * 1000 + 3600000))"
assert_eq "--until epoch millis lines" "$(wc -l <"$work/until_now.jsonl")" 90
# --follow --until: ends on its own once TIME has passed and every
# partition has caught up.
start_ms=$(date +%s%3N)
replay_to follow_until --follow --until "$((start_ms + 1500))"
log "--follow --until now+1.5s returned after $(($(date +%s%3N) - start_ms)) ms"
assert_eq "--follow --until lines" "$(wc -l <"$work/follow_until.jsonl")" 90

# --topic on the tasks topic: the tasks themselves.
replay_to tasks --topic swarmq-tasks
assert_eq "--topic tasks lines" "$(wc -l <"$work/tasks.jsonl")" 30
assert_eq "--topic tasks of type echo" \
        "$(grep -c '"type":"echo"' "$work/tasks.jsonl")" 30

# An undecodable record in the events topic: warned about, skipped.
echo 'not an event' | kcat -b "$bootstrap" -P -t swarmq-events -p 0 ||
        fail "kcat produce failed"
replay_to bad
assert_eq "exit code with an undecodable record" "$rc" 0
assert_eq "events around the undecodable record" "$(wc -l <"$work/bad.jsonl")" 90
grep -Eq 'undecodable record topic=swarmq-events partition=0 offset=[0-9]+: byte 0' \
        "$work/bad.err" || fail "no warning naming the record: $(cat "$work/bad.err")"
log "ok: warning: $(head -1 "$work/bad.err")"
replay_to badinc --include-undecodable
assert_eq "lines with --include-undecodable" "$(wc -l <"$work/badinc.jsonl")" 91
python3 - "$work/badinc.jsonl" <<'PY' || fail "undecodable record object is wrong"
import json, sys
bad = [j for j in map(json.loads, open(sys.argv[1])) if "error" in j and "type" not in j]
assert len(bad) == 1, bad
b = bad[0]
assert b["topic"] == "swarmq-events" and b["partition"] == 0 and b["offset"] >= 0, b
assert "magic byte" in b["error"], b
print("undecodable:", b)
PY

# The mock cluster has no timestamp lookup: a clear error, exit 3.
replay_rc since --since 2026-01-01T00:00:00Z
assert_eq "--since on the mock: exit code" "$rc" 3
grep -q 'timestamp lookup is not supported by this broker' "$work/since.err" ||
        fail "--since on the mock: unclear error: $(cat "$work/since.err")"
log "ok: $(cat "$work/since.err")"

# Usage errors name the bad value.
replay_check_bad_since yesterday
replay_rc usage --until 2026-13-01T00:00:00Z
assert_eq "bad --until (month 13) exit code" "$rc" 2
replay_rc usage --since 2026-11-24T10:00:00
assert_eq "--since without a zone exit code" "$rc" 2
replay_rc usage --offset 99:0
assert_eq "--offset on a partition that does not exist" "$rc" 2
grep -q 'no partition 99' "$work/usage.err" || fail "partition 99 not named: $(cat "$work/usage.err")"
replay_rc usage --results --type started
assert_eq "--type with --results exit code" "$rc" 2
replay_rc usage --offset 3 --since 2026-01-01T00:00:00Z
assert_eq "two starts exit code" "$rc" 2

# --follow: prints what exists, then what arrives, until SIGINT (exit 0).
# (The binary itself in the background, so that $! is its pid.)
"$producer_bin" -b "$bootstrap" replay --follow --type succeeded \
        >"$work/follow.jsonl" 2>"$work/follow.err" &
follow_pid=$!
sq_pids+=("$follow_pid")
producer -q submit --count 5 --type echo --payload hi --id-prefix late \
        --ids-out "$work/late.ids" || fail "submit failed"
wait_until 30 "--follow saw 5 late tasks" -- \
        value_is -eq 5 grep -c '"task_id":"late' "$work/follow.jsonl"
assert_eq "--follow saw the late tasks" "$(grep -c '"task_id":"late' "$work/follow.jsonl")" 5
kill -INT "$follow_pid"
status=0
sq_wait_exit "$follow_pid" 30 || status=$?
assert_eq "--follow exit code after SIGINT" "$status" 0
assert_eq "--follow lines" "$(wc -l <"$work/follow.jsonl")" 35
log "passed"
