#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `swarmq-producer dlt list` and `dlt redrive` on the mock cluster:
# - three `fail` tasks, one task past its timeout and one undecodable
#   record are dead-lettered (retry.max.attempts=1);
# - list (text and --json) shows each with its DLT coordinates, task id
#   (<undecodable> for the bad record), the original topic/partition/offset
#   (checked against where kcat finds the record upstream wrote), attempts,
#   reason, agent, exception message; the filters --reason, --task-id,
#   --partition, --from-offset and --limit select what they say;
# - redrive --dry-run produces nothing; redrive of the undecodable record
#   skips it and says so;
# - after the failing agent is fixed (its handler becomes echo, SIGHUP
#   reload), redrive --yes --reason FAILED re-produces the
#   three tasks (same id, attempt 1, provenance headers) and each ends
#   with a SUCCEEDED result; the same redrive again sends nothing (each is
#   "already redriven"), and with --force sends the three again;
# - a task whose value says attempt 3 is re-encoded with attempt 1 (same
#   id and fields), to the topic --to names;
# - bad arguments (topic name, --since, missing --yes, a partition that
#   does not exist) give an error naming them and a non-zero exit.
# The scenario is in dlt_redrive.sh, shared with tests/broker/0603.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dlt_redrive.sh"

# Besides the `fail` tasks: one task past its timeout (the sleeper agent).
dlt_more_dead() {
        producer -q submit --id-prefix slow --type sleep --payload 3000 \
                --timeout-ms 100 --ids-out "$work/slow.ids" || fail "submit failed"
        cat "$work/slow.ids" >>"$work/dead.ids"
}
start_broker --partitions 3
dlt_dead_letters 3 $'agent.sleeper.kind=builtin\nagent.sleeper.handler=sleep\nagent.sleeper.capabilities=sleep\n' \
        -b "$bootstrap" -X retry.max.attempts=1

# Where upstream's records are: task id -> partition/offset in swarmq-tasks.
kcat -b "$bootstrap" -C -t swarmq-tasks -e -q -f '%k %p %o\n' \
        >"$work/tasks.txt" 2>"$work/kcat.log" || fail "kcat could not read swarmq-tasks"

producer dlt list >"$work/list.txt" 2>"$work/list.log" ||
        fail "dlt list (text) failed: $(cat "$work/list.log")"
cat "$work/list.txt"
python3 - "$work/list.txt" "$work/list.jsonl" "$work/tasks.txt" <<'PY' || fail "dlt list output is wrong"
import json, re, sys
text = [l.rstrip("\n") for l in open(sys.argv[1])]
js = [json.loads(l) for l in open(sys.argv[2])]
upstream = {}
for line in open(sys.argv[3]):
    f = line.split()
    if len(f) == 3:  # the raw record has no key
        upstream[f[0]] = (f[1], f[2])
errors = 0
def check(cond, what):
    global errors
    if not cond:
        errors += 1
        print("FAIL:", what)
check(len(text) == 5, f"{len(text)} text lines, expected 5")
by_id = {}
for l in text:
    m = re.match(r'dlt=swarmq-tasks-dlt/(\d+)/(\d+) task=(\S+) original=(\S+) '
                 r'attempts=(\S+) reason=(\S+) agent=(\S+) at=(\S+) error=(.*)$', l)
    check(m, f"line does not parse: {l}")
    if m:
        by_id[m.group(3)] = m
for i in (1, 2, 3):
    tid = f"boom-00000{i}"
    m = by_id.get(tid)
    check(m, f"{tid} not listed")
    if not m:
        continue
    p, o = upstream[tid]
    check(m.group(4) == f"swarmq-tasks/{p}/{o}", f"{tid} original={m.group(4)}, upstream has it at {p}/{o}")
    check(m.group(5) == "1" and m.group(6) == "FAILED" and m.group(7) == "worker",
          f"{tid}: attempts={m.group(5)} reason={m.group(6)} agent={m.group(7)}")
    check(m.group(9) == '"boom"', f"{tid}: error={m.group(9)}")
    check(re.match(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$', m.group(8)), f"{tid}: at={m.group(8)}")
m = by_id.get("slow-000001")
check(m and m.group(6) == "TIMED_OUT" and "timed out" in m.group(9), f"slow: {m and m.group(0)}")
m = by_id.get("<undecodable>")
check(m and m.group(6) == "DECODE_ERROR" and m.group(7) == "-" and "magic" in m.group(9),
      f"undecodable: {m and m.group(0)}")
# --json: every field and every header, the same records as the text.
seen = set()
for j in js:
    h = j["headers"]
    seen.add((j["dlt_partition"], j["dlt_offset"]))
    check(h.get("kafka_dlt-original-consumer-group") == "swarmq" and j["consumer_group"] == "swarmq",
          f"group: {j}")
    check(h.get("swarmq-instance") == "c1" and j["instance"] == "c1", f"instance: {j}")
    check(j["original_topic"] == "swarmq-tasks", f"original_topic: {j}")
    check(str(j["original_offset"]) == h.get("kafka_dlt-original-offset"), f"offset: {j}")
    if j["task_id"] and j["task_id"].startswith("boom"):
        p, o = upstream[j["task_id"]]
        check((str(j["original_partition"]), str(j["original_offset"])) == (p, o), f"coords: {j}")
        check(j["attempts"] == 1 and j["reason"] == "FAILED" and j["exception_message"] == "boom"
              and j["agent"] == "worker" and j["decodable"] is True and j["key"] == j["task_id"]
              and h.get("retry_topic-attempts") == "1", f"boom json: {j}")
    if not j["decodable"]:
        check(j["task_id"] is None and j["reason"] == "DECODE_ERROR" and "magic" in j["decode_error"],
              f"undecodable json: {j}")
for l in text:
    m = re.match(r'dlt=swarmq-tasks-dlt/(\d+)/(\d+)', l)
    check(m and (int(m.group(1)), int(m.group(2))) in seen, f"text line not in --json: {l}")
print(f"ok: {len(text)} text lines, {len(js)} JSON lines")
sys.exit(1 if errors else 0)
PY
log "ok: dlt list shows every dead letter with the right fields"

# Filters.
assert_eq "--reason FAILED" "$(producer dlt list --reason FAILED | wc -l)" 3
assert_eq "--reason DECODE_ERROR --reason TIMED_OUT" \
        "$(producer dlt list --reason DECODE_ERROR --reason TIMED_OUT | wc -l)" 2
assert_eq "--task-id boom-000002" \
        "$(producer dlt list --task-id boom-000002 | grep -c 'task=boom-000002 ')" 1
assert_eq "--limit 2" "$(producer dlt list --limit 2 | wc -l)" 2
p=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["dlt_partition"])' "$work/list.jsonl")
want=$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["dlt_partition"] == int(sys.argv[2])))' "$work/list.jsonl" "$p")
assert_eq "--partition $p" "$(producer dlt list --partition "$p" | grep -c "dlt=swarmq-tasks-dlt/$p/")" "$want"
last=$(producer dlt list --partition "$p" --json | tail -n 1 |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["dlt_offset"])')
assert_eq "--partition $p --from-offset $last" \
        "$(producer dlt list --partition "$p" --from-offset "$last")" \
        "$(producer dlt list --partition "$p" | tail -n 1)"

# Bad arguments: named, exit 2 (usage) or 3 (no such topic).
status=0
producer dlt list --topic 'no such/topic' 2>"$work/bad.err" || status=$?
assert_eq "exit status for a bad topic name" "$status" 2
grep -q '"no such/topic" is not a Kafka topic name' "$work/bad.err" || fail "bad topic not named: $(cat "$work/bad.err")"
status=0
producer dlt redrive --since yesterday --yes 2>"$work/bad.err" || status=$?
assert_eq "exit status for a bad --since" "$status" 2
grep -q -- '--since .*got "yesterday"' "$work/bad.err" || fail "bad --since not named: $(cat "$work/bad.err")"
status=0
producer dlt redrive --reason FAILED 2>"$work/bad.err" || status=$?
assert_eq "exit status for redrive without --yes" "$status" 2
grep -q -- '--yes' "$work/bad.err" || fail "missing --yes not explained: $(cat "$work/bad.err")"
# (A topic that does not exist is checked on real Kafka, tests/broker/0603:
# the mock cluster creates every topic a metadata request names.)
producer dlt list --partition 7 2>"$work/bad.err" && fail "--partition 7 of 3 accepted"
grep -q 'has no partition 7' "$work/bad.err" || fail "bad partition not named: $(cat "$work/bad.err")"

count_tasks() {
        kcat -b "$bootstrap" -C -t swarmq-tasks -e -q -f 'x\n' 2>/dev/null | wc -l
}
before=$(count_tasks)

# --dry-run: says what it would do, produces nothing.
producer dlt redrive --reason FAILED --dry-run >"$work/dry.txt" 2>"$work/dry.err" ||
        fail "dry run failed: $(cat "$work/dry.err")"
cat "$work/dry.txt" "$work/dry.err"
assert_eq "dry run lines" "$(grep -c '^would-redrive dlt=swarmq-tasks-dlt/.* task=boom-00000[123] to=swarmq-tasks$' "$work/dry.txt")" 3
grep -q 'selected 3, would redrive 3, skipped 0 (undecodable), failed 0' "$work/dry.err" ||
        fail "dry-run summary: $(cat "$work/dry.err")"

# The undecodable record is skipped, named on stderr, nothing produced.
producer dlt redrive --reason DECODE_ERROR --yes >"$work/undec.txt" 2>"$work/undec.err" ||
        fail "redrive of the undecodable record failed: $(cat "$work/undec.err")"
grep -q 'skipped dlt=swarmq-tasks-dlt/.*not a task' "$work/undec.err" || fail "skip not said: $(cat "$work/undec.err")"
grep -q 'selected 1, redriven 0, skipped 1' "$work/undec.err" || fail "summary: $(cat "$work/undec.err")"
assert_eq "records in swarmq-tasks after dry run and skip" "$(count_tasks)" "$before"

# The agent is fixed: `fail` tasks now run on echo (SIGHUP reload).
dlt_fix_agent

producer dlt redrive --reason FAILED --yes --json >"$work/redrive.jsonl" 2>"$work/redrive.err" ||
        fail "redrive failed: $(cat "$work/redrive.err")"
cat "$work/redrive.jsonl"
python3 - "$work/redrive.jsonl" <<'PY' || fail "redrive output is wrong"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
done = sorted(l["task_id"] for l in lines if l.get("action") == "redriven")
summary = [l for l in lines if l.get("summary")]
ok = done == ["boom-000001", "boom-000002", "boom-000003"] and all(
    l["topic"] == "swarmq-tasks" and l["offset"] >= 0 for l in lines if l.get("action"))
ok = ok and len(summary) == 1 and summary[0]["selected"] == 3 and summary[0]["redriven"] == 3 \
    and summary[0]["skipped"] == 0 and summary[0]["failed"] == 0
print("redriven:", done, "summary:", summary)
sys.exit(0 if ok else 1)
PY
assert_eq "records in swarmq-tasks after redrive" "$(count_tasks)" "$((before + 3))"

# The re-driven records: same key and value, provenance in headers, no
# kafka_dlt-* header the consumer would misread.
kcat -b "$bootstrap" -C -t swarmq-tasks -e -q -J >"$work/tasks.jsonl" 2>>"$work/kcat.log" ||
        fail "kcat could not read swarmq-tasks"
kcat -b "$bootstrap" -C -t swarmq-tasks-dlt -e -q -J >"$work/dlt.jsonl" 2>>"$work/kcat.log" ||
        fail "kcat could not read swarmq-tasks-dlt"
python3 - "$work/tasks.jsonl" "$work/dlt.jsonl" <<'PY' || fail "re-driven records are wrong"
import json, sys
# Avro values are binary: keep their bytes as they are.
def rd(f):
    return [json.loads(l) for l in open(f, encoding="utf-8", errors="surrogateescape")]
recs = rd(sys.argv[1])
dlt = {(r["partition"], r["offset"]): r for r in rd(sys.argv[2])}
def hdrs(r):
    hl = r.get("headers") or []
    return dict(zip(hl[0::2], hl[1::2]))
red = [r for r in recs if "swarmq-redriven-from" in hdrs(r)]
ok = len(red) == 3
for r in red:
    h = hdrs(r)
    t, p, o = h["swarmq-redriven-from"].split("/")
    d = dlt[(int(p), int(o))]
    dh = hdrs(d)
    good = (t == "swarmq-tasks-dlt" and r["key"] == d["key"] and r["payload"] == d["payload"]
            and not any(k.startswith("kafka_dlt-") or k.startswith("retry_topic-") for k in h)
            and h.get("swarmq-dlt-kafka_dlt-original-offset") == dh["kafka_dlt-original-offset"]
            and h.get("swarmq-dlt-kafka_dlt-exception-message") == "boom"
            and h.get("swarmq-dlt-swarmq-reason") == "FAILED"
            and int(h["swarmq-redriven-at"]) > 0)
    print(r["key"], "from", h["swarmq-redriven-from"], "ok" if good else f"WRONG {h}")
    ok = ok and good
sys.exit(0 if ok else 1)
PY

# Each re-driven task ends SUCCEEDED (after its earlier DEAD_LETTERED).
boom_succeeded() { # replays the boom results, prints how many SUCCEEDED
        producer replay --results --task-id boom-000001 --task-id boom-000002 \
                --task-id boom-000003 >"$work/results.jsonl" 2>/dev/null || true
        grep -c '"status":"SUCCEEDED"' "$work/results.jsonl"
}
wait_until 60 "3 re-driven tasks SUCCEEDED" -- value_is -ge 3 boom_succeeded
python3 - "$work/results.jsonl" <<'PY' || fail "re-driven tasks did not succeed"
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
ok = True
for i in (1, 2, 3):
    tid = f"boom-00000{i}"
    st = [r["status"] for r in rs if r["task_id"] == tid]
    s = [r for r in rs if r["task_id"] == tid and r["status"] == "SUCCEEDED"]
    good = st[0] == "DEAD_LETTERED" and len(s) == 1 and s[0]["attempts"] == 1 \
        and s[0]["agent"] == "worker" and s[0]["instance"] == "c1" \
        and s[0]["output"] == "boom"
    print(tid, st, "ok" if good else "WRONG")
    ok = ok and good
sys.exit(0 if ok else 1)
PY

# The same redrive twice more sends nothing (recorded in the group
# swarmq-redrive-swarmq-tasks-dlt after the first one's delivery reports);
# --force sends the three again: 3 records in all, not 9.
tasks_before_again=$(count_tasks)
dlt_redrive_twice 3 --reason FAILED
assert_eq "records in swarmq-tasks after two more redrives and --force" \
        "$(count_tasks)" "$((tasks_before_again + 3))"

# A value that says another attempt (a JSON task written with attempt 3)
# is re-encoded with attempt 1, same id and payload; --to picks the topic.
producer -q submit --raw-value \
        '{"id":"again-1","type":"sleep","payload":"3000","timeout_ms":100,"attempt":3,"max_attempts":3}' ||
        fail "raw submit failed"
producer wait --id again-1 --timeout-ms 30000 >/dev/null || fail "again-1 got no result"
wait_until 20 "again-1 in the DLT" -- \
        value_is -ge 1 eval 'producer dlt list --task-id again-1 | wc -l'
producer dlt list --task-id again-1 | grep -q 'task=again-1 .* attempts=3 reason=TIMED_OUT' ||
        fail "again-1 not dead-lettered with attempts=3: $(producer dlt list --task-id again-1)"
producer dlt redrive --task-id again-1 --to swarmq-redrive-check --yes >"$work/again.txt" 2>"$work/again.err" ||
        fail "redrive --to failed: $(cat "$work/again.err")"
grep -q '^redriven dlt=swarmq-tasks-dlt/.* task=again-1 to=swarmq-redrive-check/' "$work/again.txt" ||
        fail "redrive --to: $(cat "$work/again.txt" "$work/again.err")"
producer replay --topic swarmq-redrive-check >"$work/again.jsonl" 2>"$work/again-replay.err" ||
        fail "replay of swarmq-redrive-check failed: $(cat "$work/again-replay.err")"
python3 - "$work/again.jsonl" <<'PY' || fail "the re-encoded task is wrong"
import json, sys
ts = [json.loads(l) for l in open(sys.argv[1])]
print(ts)
ok = len(ts) == 1 and ts[0]["id"] == "again-1" and ts[0]["attempt"] == 1 \
    and ts[0]["max_attempts"] == 3 and ts[0]["timeout_ms"] == 100 and ts[0]["type"] == "sleep" \
    and ts[0]["payload"] == "3000"
sys.exit(0 if ok else 1)
PY
stop_consumers c1
log "passed"
