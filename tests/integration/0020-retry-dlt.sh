#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Retries and dead letters on the embedded broker, one consumer:
# - a `fail` task with max_attempts=3: exactly 2 retry records (attempts 2
#   and 3, due times increasing, each within the configured backoff), then
#   exactly 1 dead letter holding the original record's bytes with every
#   Spring Kafka and swarmq header, and a DEAD_LETTERED result with
#   attempts=3; events: 2 retry_scheduled, 1 dead_lettered;
# - a flaky task (fail with header succeed_on_attempt=3) that succeeds on
#   its third attempt;
# - a task past its timeout_ms (sleep 5000 ms, timeout 100 ms,
#   max_attempts=2): retried as TIMED_OUT, then dead-lettered;
# - retry.max.attempts caps a task's own max_attempts.
# Prints the measured lateness of each retry (start of the attempt minus
# its due time) next to the configured backoff.
source "$(dirname "$0")/lib.sh"

initial=400
start_consumer c1 --embedded-broker -X embedded.partitions=3 \
        -X retry.backoff.initial.ms=$initial -X retry.backoff.multiplier=2 \
        -X retry.backoff.max.ms=5000 -X retry.backoff.jitter=equal \
        -X retry.max.attempts=4
wait_ready "$c1_http"

producer -q submit --id-prefix boom --type fail --payload boom \
        --max-attempts 3 --ids-out "$work/boom.ids" || fail "submit failed"
producer -q submit --id-prefix flaky --type fail --payload flaky \
        --max-attempts 5 --header succeed_on_attempt=3 --ids-out "$work/flaky.ids" ||
        fail "submit failed"
producer -q submit --id-prefix slow --type sleep --payload 5000 \
        --timeout-ms 100 --max-attempts 2 --ids-out "$work/slow.ids" ||
        fail "submit failed"
producer -q submit --id-prefix capped --type fail --payload capped \
        --max-attempts 50 --ids-out "$work/capped.ids" || fail "submit failed"
# --ids-out rewrites its file: one per submit, then every id in one.
cat "$work"/{boom,flaky,slow,capped}.ids >"$work/ids"
producer wait --ids-file "$work/ids" --timeout-ms 40000 --print --json \
        >"$work/wait.out" || fail "not every task got a result"

python3 - "$work/wait.out" <<'PY' || fail "results are wrong"
import json, sys
rs = {}
for line in open(sys.argv[1]):
    j = json.loads(line)
    if "task_id" in j:
        rs[j["task_id"]] = j
errors = 0
def check(cond, what):
    global errors
    if not cond:
        errors += 1
        print("FAIL:", what)
b, f, s = rs["boom-000001"], rs["flaky-000001"], rs["slow-000001"]
c = rs["capped-000001"]
check(c["status"] == "DEAD_LETTERED" and c["attempts"] == 4,
      f"capped: {c['status']} attempts={c['attempts']}")
check(b["status"] == "DEAD_LETTERED" and b["attempts"] == 3 and b["error"] == "boom",
      f"boom: {b['status']} attempts={b['attempts']} error={b.get('error')!r}")
check(f["status"] == "SUCCEEDED" and f["attempts"] == 3
      and f.get("output") == "succeeded on attempt 3",
      f"flaky: {f['status']} attempts={f['attempts']} output={f.get('output')!r}")
check(s["status"] == "DEAD_LETTERED" and s["attempts"] == 2
      and "timed out" in (s.get("error") or ""),
      f"slow: {s['status']} attempts={s['attempts']} error={s.get('error')!r}")
# started_at is the first attempt's start (result.avsc): between it and
# the end lie at least the two backoffs (equal jitter: 200 + 400 ms), where
# the last attempt itself takes a few ms.
for r in (b, f):
    span = r["finished_at"] - r["started_at"]
    check(r["created_at"] <= r["started_at"] and span >= 600,
          f"{r['task_id']}: started_at {r['started_at']} is not the first attempt's "
          f"start (finished {span} ms later, the backoffs alone take 600)")
print(f"ok: started_at of boom and flaky is their first attempt's: "
      f"{b['finished_at'] - b['started_at']} and {f['finished_at'] - f['started_at']} ms before the end")
print(f"ok: results boom={b['status']}/{b['attempts']} flaky={f['status']}/"
      f"{f['attempts']} slow={s['status']}/{s['attempts']}")
sys.exit(1 if errors else 0)
PY

# The records themselves, read with kcat: coordinates, timestamps,
# headers; values byte for byte.
for t in swarmq-tasks swarmq-tasks-retry swarmq-tasks-dlt; do
        kcat -b "$bootstrap" -C -t "$t" -e -q \
                -f '{"key":"%k","partition":%p,"offset":%o,"ts":%T,"headers":"%h","value_len":%S}\n' \
                >"$work/$t.jsonl" 2>"$work/kcat.log" || fail "kcat could not read $t"
done
# value FILE TOPIC KEY: the raw value of KEY's first record in TOPIC.
value() {
        local line p o
        line=$(grep -m1 "\"key\":\"$3\"" "$work/$2.jsonl") || fail "no record of $3 in $2"
        p=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["partition"])' "$line")
        o=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["offset"])' "$line")
        kcat -b "$bootstrap" -C -t "$2" -p "$p" -o "$o" -c 1 -e -q -f '%s' >"$work/$1" ||
                fail "kcat could not read $2 [$p] @$o"
}
value boom.orig swarmq-tasks boom-000001
value boom.dlt swarmq-tasks-dlt boom-000001
cmp -s "$work/boom.orig" "$work/boom.dlt" ||
        fail "the dead letter's value is not the original record's bytes"
log "ok: dead letter value = original record ($(wc -c <"$work/boom.orig") bytes)"

python3 - "$work" "$initial" <<'PY' || fail "retry or dead-letter records are wrong"
import json, subprocess, sys
work, initial = sys.argv[1], int(sys.argv[2])
def load(t):
    out = []
    for line in open(f"{work}/{t}.jsonl"):
        j = json.loads(line)
        h = {}
        for kv in j["headers"].split(","):
            if "=" in kv:
                k, v = kv.split("=", 1)
                h[k] = v
        j["h"] = h
        out.append(j)
    return out
tasks, retries, dlt = load("swarmq-tasks"), load("swarmq-tasks-retry"), load("swarmq-tasks-dlt")
errors = 0
def check(cond, what):
    global errors
    if not cond:
        errors += 1
        print("FAIL:", what)
orig = {t["key"]: t for t in tasks}
rb = sorted((r for r in retries if r["key"] == "boom-000001"),
            key=lambda r: int(r["h"]["retry_topic-attempts"]))
check(len(rb) == 2, f"boom: {len(rb)} retry records, expected 2")
check([r["h"].get("retry_topic-attempts") for r in rb] == ["2", "3"],
      f"boom: retry attempts {[r['h'].get('retry_topic-attempts') for r in rb]}")
due = [int(r["h"]["retry_topic-backoff-timestamp"]) for r in rb]
check(due == sorted(due) and len(set(due)) == len(due), f"boom: due times not increasing {due}")
o = orig["boom-000001"]
for i, r in enumerate(rb):
    backoff = initial * 2 ** i
    wait = due[i] - r["ts"]
    # equal jitter: [backoff/2, backoff] after the failure (the record's
    # CreateTime is stamped a few ms after the due time was computed).
    check(backoff // 2 - 50 <= wait <= backoff, f"boom: retry {i+1} waits {wait} ms, backoff {backoff}")
    print(f"figure: retry {i+1} due {wait} ms after it was produced (backoff {backoff} ms, equal jitter)")
    for k, v in (("kafka_dlt-original-topic", "swarmq-tasks"),
                 ("kafka_dlt-original-partition", str(o["partition"])),
                 ("kafka_dlt-original-offset", str(o["offset"])),
                 ("retry_topic-original-timestamp", str(o["ts"])),
                 ("swarmq-reason", "FAILED"), ("swarmq-agent", "fail"),
                 ("swarmq-instance", "c1"), ("kafka_dlt-exception-message", "boom")):
        check(r["h"].get(k) == v, f"boom retry {i+1}: header {k}={r['h'].get(k)!r}, expected {v!r}")
    check(r["value_len"] == o["value_len"], "boom retry: value is not the original's length")
db = [d for d in dlt if d["key"] == "boom-000001"]
check(len(db) == 1, f"boom: {len(db)} dead letters, expected 1")
d = db[0]
want = {"kafka_dlt-original-topic": "swarmq-tasks",
        "kafka_dlt-original-partition": str(o["partition"]),
        "kafka_dlt-original-offset": str(o["offset"]),
        "kafka_dlt-original-consumer-group": "swarmq",
        "kafka_dlt-exception-message": "boom",
        "retry_topic-attempts": "3",
        "retry_topic-original-timestamp": str(o["ts"]),
        "swarmq-reason": "FAILED", "swarmq-agent": "fail",
        "swarmq-instance": "c1", "swarmq-task-id": "boom-000001"}
for k, v in want.items():
    check(d["h"].get(k) == v, f"boom dead letter: header {k}={d['h'].get(k)!r}, expected {v!r}")
check("retry_topic-backoff-timestamp" not in d["h"], "dead letter has a backoff timestamp")
check(list(d["headers"].split(",")).count("retry_topic-attempts=3") == 1,
      "dead letter: retry_topic-attempts not exactly once")
# flaky: two retries, no dead letter; slow: one retry as TIMED_OUT, then DLT.
rf = [r for r in retries if r["key"] == "flaky-000001"]
check(len(rf) == 2 and not [x for x in dlt if x["key"] == "flaky-000001"],
      f"flaky: {len(rf)} retries and a dead letter?")
rs = [r for r in retries if r["key"] == "slow-000001"]
ds = [x for x in dlt if x["key"] == "slow-000001"]
check(len(rs) == 1 and rs[0]["h"].get("swarmq-reason") == "TIMED_OUT",
      f"slow: retries {[r['h'].get('swarmq-reason') for r in rs]}")
check(len(ds) == 1 and ds[0]["h"].get("swarmq-reason") == "TIMED_OUT"
      and ds[0]["h"].get("retry_topic-attempts") == "2",
      f"slow: dead letters {[x['h'] for x in ds]}")
rc = [r for r in retries if r["key"] == "capped-000001"]
dc = [x for x in dlt if x["key"] == "capped-000001"]
check(len(rc) == 3 and len(dc) == 1 and dc[0]["h"].get("retry_topic-attempts") == "4",
      f"capped (max_attempts 50, retry.max.attempts=4): {len(rc)} retries, {len(dc)} dead letters")
print(f"ok: {len(retries)} retry records, {len(dlt)} dead letters checked")
sys.exit(1 if errors else 0)
PY

# Events: every failed attempt but the last is a retry_scheduled, the last
# a dead_lettered; the lateness of each retry is measured from them.
producer -q replay --events --task-id boom-000001 --task-id flaky-000001 \
        --task-id capped-000001 >"$work/events.jsonl" || fail "replay failed"
python3 - "$work/events.jsonl" <<'PY' || fail "events are wrong"
import collections, json, re, sys
ev = collections.defaultdict(list)
for line in open(sys.argv[1]):
    j = json.loads(line)
    ev[j["task_id"]].append(j)
errors = 0
def types(tid):
    return collections.Counter(e["type"] for e in ev[tid])
b = types("boom-000001")
if b["retry_scheduled"] != 2 or b["dead_lettered"] != 1 or b["started"] != 3:
    print("FAIL: boom events", dict(b)); errors += 1
late = []
for tid, es in ev.items():
    es.sort(key=lambda e: e["at"])
    due = None
    for e in es:
        if e["type"] == "retry_scheduled":
            due = int(re.search(r"due at (\d+)", e["detail"]).group(1))
        elif e["type"] == "started" and due is not None:
            late.append(e["at"] - due)
            due = None
late.sort()
print(f"figure: {len(late)} retries started {late[0]}..{late[-1]} ms after their due time "
      f"(median {late[len(late)//2]} ms)")
if late[0] < 0:
    print("FAIL: a retry started before it was due"); errors += 1
sys.exit(1 if errors else 0)
PY
assert_eq "metric: retries" "$(metric_sum "$c1_http" '^swarmq_retries_total')" 8
assert_eq "metric: dead letters out of attempts" \
        "$(metric_sum "$c1_http" 'swarmq_dead_letters_total\{reason="(FAILED|TIMED_OUT)"')" 3
assert_eq "metric: tasks dead-lettered" \
        "$(metric_sum "$c1_http" 'swarmq_tasks_total\{status="DEAD_LETTERED"')" 3
assert_eq "/status: dead-lettered" \
        "$(sq_http_get "$c1_http/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tasks"]["dead_lettered"])')" 3
