#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Dead letters on real Kafka 3.9, read by an independent peer (Python
# confluent-kafka + fastavro), then re-driven:
# - four `fail` tasks (two attempts each, through the retry topic) and one
#   undecodable record are dead-lettered by the service;
# - the peer reads the DLT and checks the Spring Kafka headers' names and
#   values: kafka_dlt-original-topic/-partition/-offset name the record
#   upstream wrote (found by the peer in the tasks topic, not the retry
#   topic's copy), kafka_dlt-original-consumer-group the service's group,
#   kafka_dlt-exception-message the error, retry_topic-attempts 2 (absent
#   for the undecodable record), swarmq-reason/-agent/-instance;
# - `dlt list --json` shows the same records as the peer; --since works on
#   a broker with timestamp lookup; a topic that does not exist is exit 3;
# - the failing agent is fixed (SIGHUP), `dlt redrive --reason FAILED --yes`
#   re-produces the four tasks; the peer finds them in the tasks topic
#   (same key, value that decodes to the same id with attempt 1,
#   swarmq-redriven-from naming the dead letter) and a SUCCEEDED result
#   for each after its DEAD_LETTERED one.
# The scenario is in tests/integration/dlt_redrive.sh, shared with 0022.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/../integration/dlt_redrive.sh"
use_real_kafka
use_python_peer

# Two attempts each, the second through the retry topic.
dlt_args=(--topic "$t_dlt")
dlt_dead_letters 4 "" -b "$bootstrap" "${consumer_topic_args[@]}" \
        -X retry.max.attempts=2 -X retry.backoff.initial.ms=200 -X retry.backoff.max.ms=500
p=(producer "${producer_topic_args[@]}")

cat >"$work/peer.py" <<'PY'
"""The independent reader: confluent-kafka (assign, no commits) + fastavro."""
import json, sys, time, uuid
sys.path.insert(0, sys.argv[2] + "/tests/peers")
import swarmq_peer as sp
from confluent_kafka import Consumer, TopicPartition

bootstrap, src, cmd = sys.argv[1], sys.argv[2], sys.argv[3]
task_schema = sp.load_schema(src + "/schemas", "task")
result_schema = sp.load_schema(src + "/schemas", "result")


def read(topic):
    """Every record of topic up to its high watermarks now."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "peer-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    md = c.list_topics(topic, timeout=10)
    parts = sorted(md.topics[topic].partitions)
    ends = {}
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if hi > lo:
            ends[p] = hi
    c.assign([TopicPartition(topic, p, 0) for p in ends])
    out, deadline = [], time.time() + 60
    while ends and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        out.append(m)
        if m.offset() + 1 >= ends.get(m.partition(), 0):
            ends.pop(m.partition(), None)
    c.close()
    if ends:
        sys.exit(f"peer: could not read {topic} to its end: {ends}")
    return out


def hdrs(m):
    return {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}


def task_id(m):
    try:
        return sp.unframe(m.value(), sp.SCHEMA_IDS["task"], task_schema)["id"]
    except Exception:
        return None


errors = 0
def check(cond, what):
    global errors
    if not cond:
        errors += 1
        print("FAIL:", what)


if cmd == "dlt":
    # argv: dlt TASKS DLT GROUP OUT
    tasks, dlt, group, out = sys.argv[4:8]
    upstream = {m.key().decode(): (m.partition(), m.offset()) for m in read(tasks) if m.key()}
    raw = [m for m in read(tasks) if m.value() == b"not a task at all"]
    check(len(raw) == 1, f"{len(raw)} raw records upstream")
    seen = []
    for m in read(dlt):
        h, tid = hdrs(m), task_id(m)
        seen.append({"dlt_partition": m.partition(), "dlt_offset": m.offset(), "task_id": tid})
        for name in ("kafka_dlt-original-topic", "kafka_dlt-original-partition",
                     "kafka_dlt-original-offset", "kafka_dlt-original-consumer-group",
                     "kafka_dlt-exception-message", "swarmq-reason", "swarmq-instance"):
            check(name in h, f"{m.partition()}/{m.offset()}: no header {name}: {h}")
        check(h.get("kafka_dlt-original-topic") == tasks, f"original topic {h}")
        check(h.get("kafka_dlt-original-consumer-group") == group, f"group {h}")
        check(h.get("swarmq-instance") == "c1", f"instance {h}")
        if tid:
            p, o = upstream[tid]
            check((h.get("kafka_dlt-original-partition"), h.get("kafka_dlt-original-offset"))
                  == (str(p), str(o)), f"{tid}: original {h} but upstream wrote it at {p}/{o}")
            check(h.get("kafka_dlt-exception-message") == "boom", f"{tid}: exception {h}")
            check(h.get("retry_topic-attempts") == "2", f"{tid}: attempts {h}")
            check(h.get("swarmq-reason") == "FAILED" and h.get("swarmq-agent") == "worker",
                  f"{tid}: reason/agent {h}")
        else:
            p, o = raw[0].partition(), raw[0].offset()
            check((h.get("kafka_dlt-original-partition"), h.get("kafka_dlt-original-offset"))
                  == (str(p), str(o)), f"undecodable: original {h}, upstream {p}/{o}")
            check(h.get("swarmq-reason") == "DECODE_ERROR" and "magic" in h["kafka_dlt-exception-message"]
                  and "retry_topic-attempts" not in h, f"undecodable {h}")
    ids = sorted(s["task_id"] for s in seen if s["task_id"])
    check(ids == [f"boom-00000{i}" for i in (1, 2, 3, 4)] and len(seen) == 5, f"DLT holds {seen}")
    json.dump(seen, open(out, "w"))
    print(f"peer: {len(seen)} dead letters, headers checked")
elif cmd == "redriven":
    # argv: redriven TASKS DLT RESULTS
    tasks, dlt, results = sys.argv[4:7]
    dl = {(m.partition(), m.offset()): m for m in read(dlt)}
    red = [m for m in read(tasks) if "swarmq-redriven-from" in hdrs(m)]
    check(len(red) == 4, f"{len(red)} re-driven records in {tasks}")
    for m in red:
        h = hdrs(m)
        t, p, o = h["swarmq-redriven-from"].split("/")
        d = dl[(int(p), int(o))]
        task = sp.unframe(m.value(), sp.SCHEMA_IDS["task"], task_schema)
        check(t == dlt and m.key() == d.key() and task["id"] == task_id(d) and task["attempt"] == 1,
              f"re-driven {h}")
        check(not any(k.startswith(("kafka_dlt-", "retry_topic-")) for k in h)
              and h.get("swarmq-dlt-kafka_dlt-original-offset") == hdrs(d)["kafka_dlt-original-offset"]
              and h.get("swarmq-dlt-retry_topic-attempts") == "2", f"provenance {h}")
    # Results: DEAD_LETTERED, then SUCCEEDED on the fixed agent.
    deadline = time.time() + 60
    while True:
        rs = {}
        for m in read(results):
            r = sp.unframe(m.value(), sp.SCHEMA_IDS["result"], result_schema)
            rs.setdefault(r["task_id"], []).append(r)
        ok = all([x["status"] for x in rs.get(f"boom-00000{i}", [])] == ["DEAD_LETTERED", "SUCCEEDED"]
                 for i in (1, 2, 3, 4))
        if ok or time.time() > deadline:
            break
        time.sleep(0.2)
    for i in (1, 2, 3, 4):
        st = rs.get(f"boom-00000{i}", [])
        check([x["status"] for x in st] == ["DEAD_LETTERED", "SUCCEEDED"]
              and st[1]["attempts"] == 1 and st[1]["agent"] == "worker",
              f"boom-00000{i}: {[(x['status'], x['attempts'], x['agent']) for x in st]}")
    print(f"peer: {len(red)} re-driven records and their SUCCEEDED results checked")
sys.exit(1 if errors else 0)
PY

# The dead letters as the peer and dlt list see them.
"$python" "$work/peer.py" "$bootstrap" "$src" dlt "$t_tasks" "$t_dlt" "$group" "$work/peer.json" ||
        fail "the peer found the dead letters wrong"
"${p[@]}" dlt list --topic "$t_dlt" --since "$before" --json >"$work/since.jsonl" 2>"$work/since.err" ||
        fail "dlt list --since failed: $(cat "$work/since.err")"
python3 - "$work/peer.json" "$work/list.jsonl" "$work/since.jsonl" <<'PY' || fail "dlt list disagrees with the peer"
import json, sys
peer = sorted((s["dlt_partition"], s["dlt_offset"], s["task_id"]) for s in json.load(open(sys.argv[1])))
for f in sys.argv[2:]:
    ours = sorted((j["dlt_partition"], j["dlt_offset"], j["task_id"]) for j in map(json.loads, open(f)))
    print(f, "ok" if ours == peer else f"WRONG: {ours} vs peer {peer}")
    if ours != peer:
        sys.exit(1)
PY
assert_eq "dlt list --since (in the future)" \
        "$("${p[@]}" dlt list --topic "$t_dlt" --since 2099-01-01T00:00:00Z | wc -l)" 0
rc=0
"${p[@]}" dlt list --topic "$t_dlt-does-not-exist" 2>"$work/missing.err" || rc=$?
assert_eq "exit code for a topic that does not exist" "$rc" 3
grep -q "topic $t_dlt-does-not-exist: no such topic" "$work/missing.err" ||
        fail "missing topic not named: $(cat "$work/missing.err")"

# Fix the agent, re-drive.
dlt_fix_agent
"${p[@]}" dlt redrive --topic "$t_dlt" --reason FAILED --yes >"$work/redrive.txt" 2>"$work/redrive.err" ||
        fail "dlt redrive failed: $(cat "$work/redrive.err")"
cat "$work/redrive.txt" "$work/redrive.err"
assert_eq "redriven lines" "$(grep -c "^redriven dlt=$t_dlt/.* to=$t_tasks/" "$work/redrive.txt")" 4
grep -q 'selected 4, redriven 4, skipped 0 (undecodable), failed 0' "$work/redrive.err" ||
        fail "redrive summary: $(cat "$work/redrive.err")"
"$python" "$work/peer.py" "$bootstrap" "$src" redriven "$t_tasks" "$t_dlt" "$t_results" ||
        fail "the peer found the re-driven tasks wrong"
# The same redrive again sends nothing (recorded in the group
# swarmq-redrive-<DLT> on this broker); --force sends the four again.
dlt_redrive_twice 4 --reason FAILED
stop_consumers c1
log "passed"
