#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Records that cannot be decoded go to the dead-letter topic with their
# original bytes and the reason in Spring-Kafka-style headers; the tasks
# around them are processed; the instance stays healthy.
source "$(dirname "$0")/lib.sh"

start_consumer c1 --embedded-broker
wait_ready "$c1_http"

producer -q submit --count 100 --type noop --id-prefix before --ids-out "$work/before.ids" ||
        fail "submit failed"
producer -q submit --raw-value 'plain text, not a task' || fail "raw submit failed"
producer -q submit --raw-value '{"id":"t-no-type"}' || fail "raw submit failed"
producer -q submit --raw-value '{"id":"t1","type":"noop","colour":"red"}' || fail "raw submit failed"
producer -q submit --count 100 --type noop --id-prefix after --ids-out "$work/after.ids" ||
        fail "submit failed"
cat "$work/before.ids" "$work/after.ids" >"$work/all.ids"

producer wait --ids-file "$work/all.ids" --timeout-ms 60000 --json >"$work/summary.json" ||
        fail "tasks around the bad records did not all finish"
assert_eq "results for good tasks" "$(json_get "$work/summary.json" 'j["arrived"]')" 200

# A refused record whose id can still be read gets a DEAD_LETTERED result
# saying why, so a client waiting for that id gets an answer (issue 13).
printf 't-no-type\nt1\n' >"$work/bad.ids"
producer wait --ids-file "$work/bad.ids" --timeout-ms 60000 --print --json \
        >"$work/bad.json" || fail "no result for the refused tasks whose id parses"
python3 - "$work/bad.json" <<'PY' || fail "results of refused records are wrong"
import json, sys
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "task_id" in r:
        seen[r["task_id"]] = r
want = {"t-no-type": "type", "t1": "colour"}
ok = True
for tid, word in want.items():
    r = seen.get(tid, {})
    print(tid, r.get("status"), r.get("error"))
    ok = ok and r.get("status") == "DEAD_LETTERED" and word in (r.get("error") or "") \
        and "dead-letter topic" in r["error"]
sys.exit(0 if ok else 1)
PY
log "ok: t-no-type and t1 have DEAD_LETTERED results naming what is wrong"

# Wait for the three dead letters to be visible (they are produced and
# acknowledged before their offsets commit).
dlt_count() { kcat -b "$bootstrap" -C -t swarmq-tasks-dlt -e -q -f 'x\n' 2>/dev/null | wc -l; }
wait_until 20 "3 records in the DLT" -- value_is -ge 3 dlt_count
kcat -b "$bootstrap" -C -t swarmq-tasks-dlt -e -q -J \
        >"$work/dlt.txt" 2>"$work/kcat.log" || fail "kcat failed"
assert_eq "records in the DLT" "$(wc -l <"$work/dlt.txt")" 3

python3 - "$work/dlt.txt" <<'PY' || fail "dead letters are wrong"
import json, sys
want = {
    "plain text, not a task": "magic byte",
    '{"id":"t-no-type"}': "type",
    '{"id":"t1","type":"noop","colour":"red"}': "colour",
}
ok = True
for line in open(sys.argv[1]):
    rec = json.loads(line)
    value = rec["payload"]
    hl = rec.get("headers") or []
    h = dict(zip(hl[0::2], hl[1::2]))
    if value not in want:
        print("unexpected DLT value", repr(value)); ok = False; continue
    reason = h.get("kafka_dlt-exception-message", "")
    print(f"{value!r}: {reason}")
    if want[value] not in reason:
        print(f"  reason does not name {want[value]!r}"); ok = False
    for k, v in (("kafka_dlt-original-topic", "swarmq-tasks"),
                 ("swarmq-reason", "DECODE_ERROR"),
                 ("kafka_dlt-original-consumer-group", "swarmq"),
                 ("swarmq-instance", "c1")):
        if h.get(k) != v:
            print(f"  header {k}={h.get(k)!r}, expected {v!r}"); ok = False
    for k in ("kafka_dlt-original-partition", "kafka_dlt-original-offset"):
        if not h.get(k, "").isdigit():
            print(f"  header {k}={h.get(k)!r} is not a number"); ok = False
sys.exit(0 if ok else 1)
PY

assert_eq "metric: dead letters" \
        "$(metric_sum "$c1_http" '^swarmq_dead_letters_total\{reason="DECODE_ERROR"')" 3
assert_eq "healthz after bad input" "$(sq_http_status "$c1_http/healthz")" 200
kill -TERM "$c1_pid"
sq_wait_exit "$c1_pid" 60 || fail "consumer did not exit 0 after SIGTERM"
log "passed"
