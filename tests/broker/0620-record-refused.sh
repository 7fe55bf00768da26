#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A result the broker refuses (issue 13, "poison pill", the asynchronous
# path): the results topic is created with max.message.bytes=20000, under
# the consumer's producer limit (1,000,000), so librdkafka accepts an echo
# task's 100 kB result and the broker refuses it in the delivery report.
# Before the fix the record was produced again for ever. Now the task is
# dead-lettered: a DEAD_LETTERED result without the output, naming the
# refusal; its own record (whole) in the dead-letter topic with reason
# RECORD_REFUSED; the instance stays up and the next task runs.
#
# The broker refuses a whole batch: results batched with the big one would
# be dead-lettered with it (a topic limit under the producer's is a
# misconfiguration; docs/operations.md says so). kafka.batch.num.messages=1
# keeps each record in a batch of its own, so this test sees exactly one.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka
use_python_peer

"$python" - "$bootstrap" "$t_results" <<'PY' || fail "cannot create the results topic"
import sys
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
fut = admin.create_topics([NewTopic(sys.argv[2], 3, 1,
                           config={"max.message.bytes": "20000"})])
fut[sys.argv[2]].result(30)
PY
log "created $t_results with max.message.bytes=20000"

start_consumer c1 -b "$bootstrap" "${consumer_topic_args[@]}" \
        -X kafka.batch.num.messages=1
wait_ready "$c1_http"

python3 -c 'import json; print(json.dumps({"id": "big-1", "type": "echo",
        "payload": "y" * 100000}))' >"$work/big.json"
producer "${producer_topic_args[@]}" -q submit --file "$work/big.json" ||
        fail "big submit failed"
producer "${producer_topic_args[@]}" -q submit --count 3 --type noop \
        --id-prefix after --ids-out "$work/after.ids" || fail "submit failed"
{ echo big-1; cat "$work/after.ids"; } >"$work/all.ids"
producer "${producer_topic_args[@]}" wait --ids-file "$work/all.ids" \
        --timeout-ms 90000 --print --json >"$work/results.json" ||
        fail "not every task got a terminal result"
kill -0 "$c1_pid" 2>/dev/null || fail "the consumer died"
python3 - "$work/results.json" <<'PY' || fail "results are wrong"
import json, sys
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "task_id" in r:
        seen[r["task_id"]] = r
big = seen.get("big-1") or {}
print("big-1:", big.get("status"), big.get("error"))
ok = big.get("status") == "DEAD_LETTERED" and \
    "was refused (Broker: Message size too large by the broker" in (big.get("error") or "") and \
    not big.get("output")
for tid in seen:
    if tid != "big-1" and seen[tid]["status"] != "SUCCEEDED":
        print(tid, seen[tid]["status"]); ok = False
ok = ok and len(seen) == 4
sys.exit(0 if ok else 1)
PY
log "ok: big-1 DEAD_LETTERED naming the broker's refusal, the others SUCCEEDED"

kcat -b "$bootstrap" -C -t "$t_dlt" -e -q -J >"$work/dlt.txt" 2>"$work/kcat.log" ||
        fail "kcat failed"
python3 - "$work/dlt.txt" <<'PY' || fail "the dead letter is wrong"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], errors="replace")]
ok = len(recs) == 1
for rec in recs:
    hl = rec.get("headers") or []
    h = dict(zip(hl[0::2], hl[1::2]))
    value = rec.get("payload") or ""
    print(h.get("swarmq-reason"), h.get("swarmq-task-id"), "value bytes:",
          len(rec.get("payload") or ""))
    ok = ok and h.get("swarmq-reason") == "RECORD_REFUSED" and \
        h.get("swarmq-task-id") == "big-1" and "big-1" in value and \
        "y" * 100000 in value
sys.exit(0 if ok else 1)
PY
log "ok: the task's whole record is in the dead-letter topic, reason RECORD_REFUSED"
assert_eq "metric: dead letters RECORD_REFUSED" \
        "$(metric_sum "$c1_http" 'swarmq_dead_letters_total\{reason="RECORD_REFUSED"')" 1
assert_eq "metric: records refused" \
        "$(metric_sum "$c1_http" '^swarmq_records_refused_total$')" 1
stop_consumers c1
log "passed"
