#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# swarmq seen from kcat, on a real Apache Kafka broker. JSON tasks written
# with kcat (one per key, as any shell script would) get the right results:
# payload and payload_base64 (padded and not), task headers, capabilities,
# priorities (CRITICAL on the fast-lane topic), created_at, attempt and
# timeout_ms; checked with swarmq-producer wait --print. Records that are
# not tasks (plain text, broken JSON, JSON with an unknown field or without
# a type, an Avro frame with an unknown schema id, a truncated Avro body)
# go to the dead-letter topic unchanged: read back with kcat -C -J, each
# has its original key, bytes and headers plus the Spring Kafka DLT headers
# (kafka_dlt-original-topic/-partition/-offset/-consumer-group,
# kafka_dlt-exception-message naming the problem), swarmq-reason and
# swarmq-instance; the original coordinates are those kcat reads back from
# the tasks topic.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

t0=$SECONDS
start_consumer c1 -b "$bootstrap" "${consumer_topic_args[@]}" \
        -X executor.threads=4 -X retry.max.attempts=1
wait_ready "$c1_http"
log "c1 joined the group and got partitions in $((SECONDS - t0)) s"
t0=$SECONDS

# kput TOPIC KEY FILE [kcat args...]: one record, the whole file as value.
kput() {
        local topic=$1 key=$2 file=$3
        shift 3
        kcat -b "$bootstrap" -P -t "$topic" -k "$key" "$@" "$file" \
                2>>"$work/kcat.log" || fail "kcat could not produce $key"
}

# ---- good JSON tasks: id, then the JSON value.
tasks=(
        'k-sha|{"id":"k-sha","type":"sha256","payload":"hello"}'
        'k-b64|{"id":"k-b64","type":"echo","payload_base64":"AAEC/w=="}'
        'k-b64-nopad|{"id":"k-b64-nopad","type":"sha256","payload_base64":"3q2+7w"}'
        'k-cpu|{"id":"k-cpu","type":"cpu","payload":"abc","headers":{"rounds":"7","note":"ü"}}'
        'k-caps|{"id":"k-caps","type":"translate","capabilities":["echo"],"payload":"via a capability ✓"}'
        'k-fail|{"id":"k-fail","type":"fail","payload":"json failure ✗"}'
        'k-nogpu|{"id":"k-nogpu","type":"render","capabilities":["gpu"]}'
        'k-attempt|{"id":"k-attempt","type":"noop","attempt":2,"max_attempts":5,"created_at":1700000000000,"timeout_ms":1000,"key":"affinity","priority":"low"}'
        'k-timeout|{"id":"k-timeout","type":"sleep","payload":"3000","timeout_ms":100}'
        'k-crit|{"id":"k-crit","type":"echo","payload":"fast lane","priority":"critical"}'
)
: >"$work/ids"
for t in "${tasks[@]}"; do
        id=${t%%|*}
        printf '%s' "${t#*|}" >"$work/task.json"
        topic=$t_tasks
        [[ "$id" == k-crit ]] && topic=$t_critical
        kput "$topic" "$id" "$work/task.json" -H "origin=kcat"
        echo "$id" >>"$work/ids"
done

# ---- undecodable records: key, expected words in the exception message,
# the bytes (printf format).
bad=(
        'bad-text|magic byte|this is not a task'
        'bad-json|syntax error|{"id":"bad-json","type":'
        'bad-field|colour|{"id":"bad-field","type":"noop","colour":"red"}'
        'bad-notype|type|{"id":"bad-notype","payload":"x"}'
        'bad-schema|99|\x00\x00\x00\x00\x63\x02\xffz'
        'bad-body|past the end|\x00\x00\x00\x00\x01\x0aabc'
)
for b in "${bad[@]}"; do
        IFS='|' read -r key _ bytes <<<"$b"
        printf '%b' "$bytes" >"$work/$key.bin"
        kput "$t_tasks" "$key" "$work/$key.bin" -H "trace=$key" -H "origin=kcat"
done
log "produced ${#tasks[@]} JSON tasks and ${#bad[@]} undecodable records with kcat"

# The two refused records whose id reads get a result too: wait for them
# (wait --print prints only the ids it waits for).
printf '%s\n' bad-field bad-notype >>"$work/ids"
producer "${producer_topic_args[@]}" wait --ids-file "$work/ids" \
        --timeout-ms 60000 --print --json >"$work/wait.out" ||
        fail "not every JSON task got a result"
head -n -1 "$work/wait.out" >"$work/results.jsonl"
# Where kcat's records landed, read back with kcat (-J: topic, partition,
# offset, key, headers, payload), for the results' source and the DLT's
# kafka_dlt-original-* headers.
for t in "$t_tasks" "$t_critical"; do
        kcat -b "$bootstrap" -C -t "$t" -o beginning -e -q -J ||
                fail "kcat could not read $t"
done >"$work/tasks.jsonl" 2>>"$work/kcat.log"
python3 - "$work/results.jsonl" "$t_tasks" "$t_critical" "$work/tasks.jsonl" <<'PY' ||
import hashlib, json, sys
tasks, critical = sys.argv[2], sys.argv[3]
origin = {}
for line in open(sys.argv[4], "rb"):
    o = json.loads(line.decode("utf-8", "surrogateescape"))
    origin[o["key"]] = (o["topic"], o["partition"], o["offset"])
def cpu(payload, rounds):
    md = hashlib.sha256(payload).digest()
    for _ in range(1, rounds):
        md = hashlib.sha256(md).digest()
    return md.hex()
want = {
    "k-sha": ("SUCCEEDED", "sha256", {"output": hashlib.sha256(b"hello").hexdigest()}),
    "k-b64": ("SUCCEEDED", "echo", {"output_base64": "AAEC/w=="}),
    "k-b64-nopad": ("SUCCEEDED", "sha256",
                    {"output": hashlib.sha256(bytes.fromhex("deadbeef")).hexdigest()}),
    "k-cpu": ("SUCCEEDED", "cpu", {"output": cpu(b"abc", 7)}),
    "k-caps": ("SUCCEEDED", "echo", {"output": "via a capability ✓"}),
    "k-fail": ("DEAD_LETTERED", "fail", {"output": "", "error": "json failure ✗"}),
    "k-nogpu": ("DEAD_LETTERED", None, {"output": ""}),
    "k-attempt": ("SUCCEEDED", "noop", {"output": "", "attempts": 2,
                                        "created_at": 1700000000000}),
    "k-timeout": ("DEAD_LETTERED", "sleep", {"output": ""}),
    "k-crit": ("SUCCEEDED", "echo", {"output": "fast lane"}),
    # Refused by the decoder but their id reads: a DEAD_LETTERED result
    # naming what is wrong, so a waiting client gets an answer (issue 13).
    "bad-field": ("DEAD_LETTERED", None, {"output": "", "attempts": 0}),
    "bad-notype": ("DEAD_LETTERED", None, {"output": "", "attempts": 0}),
}
errors = 0
def check(cond, msg):
    global errors
    if not cond:
        errors += 1
        print("  " + msg)
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    check(r["task_id"] not in seen, f"{r['task_id']}: two results")
    seen[r["task_id"]] = r
check(set(seen) == set(want), f"results for {sorted(seen)}")
for tid, (status, agent, fields) in want.items():
    r = seen.get(tid)
    if not r:
        continue
    check(r["status"] == status, f"{tid}: status {r['status']}, want {status}")
    check(r.get("agent") == agent, f"{tid}: agent {r.get('agent')!r}, want {agent!r}")
    for k, v in fields.items():
        check(r.get(k) == v, f"{tid}: {k} {r.get(k)!r}, want {v!r}")
    if status == "SUCCEEDED":
        check(r.get("error") is None, f"{tid}: error {r.get('error')!r}")
    else:
        check(r.get("error"), f"{tid}: no error text")
    if "attempts" not in fields:
        check(r["attempts"] == 1, f"{tid}: attempts {r['attempts']}")
    check(r["instance"] == "c1", f"{tid}: instance {r['instance']!r}")
    want_topic = critical if tid == "k-crit" else tasks
    src = r["source"]
    check(src["topic"] == want_topic and
          (src["topic"], src["partition"], src["offset"]) == origin.get(tid),
          f"{tid}: source {src}, kcat read it at {origin.get(tid)}")
check("gpu" in (seen.get("k-nogpu", {}).get("error") or ""),
      f"k-nogpu: error {seen.get('k-nogpu', {}).get('error')!r} does not name gpu")
for tid, word in (("bad-field", "colour"), ("bad-notype", "type")):
    check(word in (seen.get(tid, {}).get("error") or ""),
          f"{tid}: error {seen.get(tid, {}).get('error')!r} does not name {word}")
check((seen.get("k-timeout", {}).get("error") or "").startswith("sleep: timed out"),
      f"k-timeout: error {seen.get('k-timeout', {}).get('error')!r}")
print(f"checked {len(seen)} results, {errors} errors")
sys.exit(1 if errors else 0)
PY
        fail "JSON task results are wrong (see above)"
log "ok: ${#tasks[@]} JSON tasks from kcat got the right results, and the two refused ones whose id reads"

# ---- the dead-letter topic, read with kcat until it holds them all.
dlt_count() { # reads the DLT into dlt.jsonl, prints its records
        kcat -b "$bootstrap" -C -t "$t_dlt" -o beginning -e -q -J \
                >"$work/dlt.jsonl" 2>>"$work/kcat.log" || true
        wc -l <"$work/dlt.jsonl"
}
wait_until 120 "${#bad[@]} records in the DLT" --every 0.2 -- value_is -ge ${#bad[@]} dlt_count
printf '%s\n' "${bad[@]}" >"$work/bad.txt"
python3 - "$work/dlt.jsonl" "$work/tasks.jsonl" "$work/bad.txt" "$work" \
        "$t_tasks" "$group" <<'PY' ||
import json, sys
dlt_file, tasks_file, bad_file, work, t_tasks, group = sys.argv[1:]
def records(path):
    # kcat -J writes a payload that is not UTF-8 as raw bytes: keep them.
    with open(path, "rb") as f:
        return [json.loads(l.decode("utf-8", "surrogateescape"))
                for l in f if l.strip()]
def raw(s):
    return s.encode("utf-8", "surrogateescape")
errors = 0
def check(cond, msg):
    global errors
    if not cond:
        errors += 1
        print("  " + msg)
origin = {r["key"]: r for r in records(tasks_file)}
dlt = records(dlt_file)
by_key = {}
for r in dlt:
    check(r["key"] not in by_key, f"two dead letters with key {r['key']!r}")
    by_key[r["key"]] = r
bad = [l.rstrip("\n").split("|", 2) for l in open(bad_file, encoding="utf-8")]
# The undecodable records, plus the three JSON tasks that fail, time out or
# find no agent (dead-lettered after their one attempt: retry.max.attempts=1).
failed = {"k-fail", "k-nogpu", "k-timeout"}
check(len(dlt) == len(bad) + len(failed),
      f"{len(dlt)} dead letters, expected {len(bad) + len(failed)}")
for key in failed:
    check(key in by_key, f"{key}: no dead letter for the failed task")
for key, words, _ in bad:
    d, o = by_key.get(key), origin.get(key)
    if not d or not o:
        check(False, f"{key}: dead letter {bool(d)}, original {bool(o)}")
        continue
    sent = open(f"{work}/{key}.bin", "rb").read()
    check(raw(o["payload"]) == sent, f"{key}: the tasks topic holds other bytes")
    check(raw(d["payload"]) == sent,
          f"{key}: dead letter bytes {raw(d['payload'])!r}, sent {sent!r}")
    h = d.get("headers") or []
    pairs = list(zip(h[0::2], h[1::2]))
    hd = dict(pairs)
    want = {"kafka_dlt-original-topic": t_tasks,
            "kafka_dlt-original-partition": str(o["partition"]),
            "kafka_dlt-original-offset": str(o["offset"]),
            "kafka_dlt-original-consumer-group": group,
            "swarmq-reason": "DECODE_ERROR",
            "swarmq-instance": "c1",
            "trace": key, "origin": "kcat"}
    for k, v in want.items():
        check(hd.get(k) == v, f"{key}: header {k}={hd.get(k)!r}, want {v!r}")
    msg = hd.get("kafka_dlt-exception-message") or ""
    check(words.lower() in msg.lower(),
          f"{key}: kafka_dlt-exception-message {msg!r} does not mention {words!r}")
    print(f"  {key}: {msg}")
print(f"checked {len(dlt)} dead letters, {errors} errors")
sys.exit(1 if errors else 0)
PY
        fail "dead letters are wrong (see above)"
assert_eq "metric: dead letters" \
        "$(metric_sum "$c1_http" '^swarmq_dead_letters_total')" "$((${#bad[@]} + 3))"
assert_eq "metric: finished tasks" \
        "$(metric_sum "$c1_http" '^swarmq_tasks_total')" "${#tasks[@]}"
log "produced and checked in $((SECONDS - t0)) s"

kill -TERM "$c1_pid"
status=0
sq_wait_exit "$c1_pid" 60 || status=$?
assert_eq "c1 exit status after SIGTERM" "$status" 0
log "passed"
