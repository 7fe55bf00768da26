#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A task whose result cannot be produced does not take the instance down
# (issue 13, "poison pill"): an echo task of 2 MB, submitted with a raised
# producer limit, would make a result over the consumer's producer limit
# (kafka.message.max.bytes, 1,000,000 by default). Before the fix the
# instance died on an assertion (exit 134) and, its offset uncommitted,
# died again on every restart. Now the task gets a DEAD_LETTERED result
# naming the size and the limit, its record goes to the dead-letter topic
# (without its value, which the producer refuses too; the headers name
# where the original record is), the counters say so, and the tasks after
# it run. An exec agent whose output.max.bytes cannot fit in a record is
# refused at start-up with a sentence naming both keys.
source "$(dirname "$0")/lib.sh"

# Start-up: output.max.bytes over the record limit.
cat >"$work/big-output.properties" <<PROPS
agent.big.kind=exec
agent.big.command=/bin/cat
agent.big.capabilities=cat
agent.big.output.max.bytes=2000000
PROPS
rc=0
"$consumer_bin" --embedded-broker --http-port 0 -c "$work/big-output.properties" \
        >"$work/refused.out" 2>"$work/refused.err" || rc=$?
((rc != 0)) || fail "an output.max.bytes over message.max.bytes was accepted"
grep -q 'agent.big.output.max.bytes=2000000' "$work/refused.err" &&
        grep -q 'kafka.message.max.bytes' "$work/refused.err" ||
        fail "the start-up error does not name both keys: $(cat "$work/refused.err")"
log "ok: refused at start-up (exit $rc): $(grep -o 'agent.big.output.max.bytes.*' "$work/refused.err" | head -c 160)"

start_consumer c1 --embedded-broker
wait_ready "$c1_http"

producer -q submit --count 3 --type noop --id-prefix before --ids-out "$work/before.ids" ||
        fail "submit failed"
python3 -c 'import json; print(json.dumps({"id": "big-1", "type": "echo",
        "payload": "x" * 2000000}))' >"$work/big.json"
producer -X message.max.bytes=10000000 -q submit --file "$work/big.json" ||
        fail "big submit failed"
producer -q submit --count 3 --type noop --id-prefix after --ids-out "$work/after.ids" ||
        fail "submit failed"
{ cat "$work/before.ids"; echo big-1; cat "$work/after.ids"; } >"$work/all.ids"

producer wait --ids-file "$work/all.ids" --timeout-ms 60000 --print --json \
        >"$work/results.json" || fail "not every task got a terminal result"
kill -0 "$c1_pid" 2>/dev/null || fail "the consumer died"
python3 - "$work/results.json" <<'PY' || fail "results are wrong"
import json, re, sys
ok = True
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "task_id" in r:
        seen[r["task_id"]] = r
big = seen.get("big-1")
print("big-1:", {k: big.get(k) for k in ("status", "error")} if big else None)
if not big or big["status"] != "DEAD_LETTERED":
    ok = False
elif not re.search(r"output of \d{7} bytes does not fit", big.get("error") or "") or \
        "kafka.message.max.bytes=1000000" not in big["error"]:
    print("error does not name the size and the limit"); ok = False
for tid, r in seen.items():
    if tid != "big-1" and r["status"] != "SUCCEEDED":
        print(tid, r["status"]); ok = False
if len(seen) != 7:
    print("results for", len(seen), "tasks, expected 7"); ok = False
sys.exit(0 if ok else 1)
PY
log "ok: big-1 DEAD_LETTERED with the size and the limit, the 6 others SUCCEEDED"

kcat -b "$bootstrap" -C -t swarmq-tasks-dlt -e -q -J >"$work/dlt.txt" 2>"$work/kcat.log" ||
        fail "kcat failed"
python3 - "$work/dlt.txt" <<'PY' || fail "the dead letter is wrong"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ok = len(recs) == 1
for rec in recs:
    hl = rec.get("headers") or []
    h = dict(zip(hl[0::2], hl[1::2]))
    print({k: h.get(k) for k in ("swarmq-reason", "swarmq-task-id",
          "kafka_dlt-original-topic", "swarmq-refused")},
          "value bytes:", len(rec.get("payload") or ""))
    if h.get("swarmq-reason") != "OUTPUT_TOO_LARGE" or \
            h.get("swarmq-task-id") != "big-1" or \
            h.get("kafka_dlt-original-topic") != "swarmq-tasks" or \
            h.get("swarmq-refused") != "VALUE_DROPPED" or \
            "Message size too large" not in h.get("swarmq-value-dropped", "") or \
            rec.get("payload"):
        ok = False
sys.exit(0 if ok else 1)
PY
log "ok: one dead letter, reason OUTPUT_TOO_LARGE, value dropped, original named"

assert_eq "metric: dead letters OUTPUT_TOO_LARGE" \
        "$(metric_sum "$c1_http" 'swarmq_dead_letters_total\{reason="OUTPUT_TOO_LARGE"')" 1
assert_eq "metric: records refused" \
        "$(metric_sum "$c1_http" '^swarmq_records_refused_total$')" 1
assert_eq "healthz" "$(sq_http_status "$c1_http/healthz")" 200
stop_consumers c1
log "passed"
