#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Smoke test on a real Apache Kafka broker (ops/kafka.sh): 1,000
# mixed tasks through one swarmq-consumer get exactly the results a user
# expects; SIGTERM stops it with exit 0; the group's committed offsets,
# read back from __consumer_offsets with kcat, equal the end offsets of both
# task topics; and a second instance of the same group starts from them:
# it receives none of the old records, then exactly the new ones.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

# A real broker does not create a topic that a librdkafka 2.0.2 consumer
# subscribes to (the mock does): the consumer would wait, unassigned and
# never ready, for the topic to appear. A metadata request naming the
# topic (what a producer sends) creates it with num.partitions (12).
create_topic() {
        wait_until 60 "topic $1 auto-created with 12 partitions" --every 0.2 -- \
                topic_has_12 "$1"
}
topic_has_12() { # topic_has_12 TOPIC: kcat's metadata for TOPIC, if it has 12 partitions
        local out
        out=$(kcat -b "$bootstrap" -L -t "$1" -m 2 2>&1) || true
        echo "$out"
        [[ "$out" == *"\"$1\" with 12 partitions"* ]]
}
t0=$SECONDS
create_topic "$t_tasks"
create_topic "$t_critical"
log "task topics created in $((SECONDS - t0)) s"

t0=$SECONDS
start_consumer c1 -b "$bootstrap" "${consumer_topic_args[@]}" \
        -X executor.threads=4 -X retry.max.attempts=1
wait_ready "$c1_http"
log "c1 joined the group and got partitions in $((SECONDS - t0)) s"

sub() {
        local name=$1
        shift
        producer "${producer_topic_args[@]}" -q submit \
                --ids-out "$work/ids.$name" --id-prefix "$name" "$@" ||
                fail "submit $name failed"
}
sub noop  --count 500 --type noop --priority-mix LOW:1,NORMAL:4,HIGH:2,CRITICAL:1
sub sha   --count 200 --type sha256 --payload abc --priority HIGH
sub echo  --count 100 --type echo --payload "echo me" --priority LOW
sub fail  --count 100 --type fail --payload "failing on purpose"
sub sleep --count 60  --type sleep --payload 2 --priority CRITICAL
sub nogpu --count 40  --type render --capability gpu
cat "$work"/ids.* >"$work/all.ids"
assert_eq "ids submitted" "$(sort -u "$work/all.ids" | wc -l)" 1000

producer "${producer_topic_args[@]}" wait --ids-file "$work/all.ids" \
        --timeout-ms 120000 --print --json >"$work/wait.out" ||
        fail "not every task got a result"
tail -n 1 "$work/wait.out" >"$work/summary.json"
head -n -1 "$work/wait.out" >"$work/results.jsonl"
assert_eq "distinct task ids with a result" \
        "$(json_get "$work/summary.json" 'j["distinct"]')" 1000
assert_eq "duplicate results" \
        "$(json_get "$work/summary.json" 'j["duplicates"]')" 0
assert_eq "SUCCEEDED" \
        "$(json_get "$work/summary.json" 'j["status"].get("SUCCEEDED",0)')" 860
assert_eq "DEAD_LETTERED" \
        "$(json_get "$work/summary.json" 'j["status"].get("DEAD_LETTERED",0)')" 140

python3 - "$work/results.jsonl" "$t_tasks" "$t_critical" <<'PY' ||
import hashlib, json, sys
want_sha = hashlib.sha256(b"abc").hexdigest()
tasks, critical = sys.argv[2], sys.argv[3]
errors = 0
def check(cond, msg):
    global errors
    if not cond:
        errors += 1
        if errors <= 10:
            print("  " + msg)
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    seen[r["task_id"]] = r
for tid, r in seen.items():
    kind = tid.split("-")[0]
    if kind == "sha":
        check(r["status"] == "SUCCEEDED" and r.get("output") == want_sha,
              f"{tid}: sha256 output {r.get('output')!r}")
    elif kind == "echo":
        check(r.get("output") == "echo me", f"{tid}: echo output {r.get('output')!r}")
    elif kind == "fail":
        check(r["status"] == "DEAD_LETTERED" and r.get("error") == "failing on purpose",
              f"{tid}: fail result {r['status']} {r.get('error')!r}")
    elif kind == "nogpu":
        check(r["status"] == "DEAD_LETTERED" and "gpu" in (r.get("error") or ""),
              f"{tid}: no-agent result {r['status']} {r.get('error')!r}")
    else:
        check(r["status"] == "SUCCEEDED", f"{tid}: status {r['status']}")
    want_topic = critical if kind == "sleep" else None
    check(r["source"]["topic"] in ((want_topic,) if want_topic else (tasks, critical)),
          f"{tid}: source {r['source']}")
    check(r["instance"] == "c1", f"{tid}: instance {r['instance']}")
print(f"checked {len(seen)} results, {errors} errors")
sys.exit(1 if errors else 0)
PY
        fail "result contents are wrong (see above)"
assert_eq "metric: finished tasks" \
        "$(metric_sum "$c1_http" '^swarmq_tasks_total')" 1000
assert_eq "metric: records received" \
        "$(metric_sum "$c1_http" '^swarmq_records_received_total')" 1000

log "SIGTERM to c1"
kill -TERM "$c1_pid"
status=0
sq_wait_exit "$c1_pid" 60 || status=$?
assert_eq "c1 exit status after SIGTERM" "$status" 0

# End offsets of the task topics (kcat -Q, -1 = the end) and the group's
# last commit per partition, decoded from __consumer_offsets (key v1:
# group, topic, partition; value v1-v3: offset first). A partition that
# holds records must have a commit at its end offset.
for t in "$t_tasks" "$t_critical"; do
        args=()
        for ((p = 0; p < 12; p++)); do
                args+=(-t "$t:$p:-1")
        done
        kcat -b "$bootstrap" -Q "${args[@]}" 2>>"$work/kcat.log" ||
                fail "kcat -Q on $t failed"
done >"$work/end-offsets.txt"
kcat -b "$bootstrap" -C -t __consumer_offsets -o beginning -e -q \
        -f '%K\n%k%S\n%s' >"$work/consumer-offsets.bin" 2>>"$work/kcat.log" ||
        fail "kcat could not read __consumer_offsets"
python3 - "$work/end-offsets.txt" "$work/consumer-offsets.bin" "$group" <<'PY' ||
import re, struct, sys
ends = {}
for line in open(sys.argv[1]):
    m = re.match(r"^(\S+) \[(\d+)\] offset (-?\d+)", line)
    if m:
        ends[(m[1], int(m[2]))] = int(m[3])
data = open(sys.argv[2], "rb").read()
group = sys.argv[3].encode()
pos = 0
def field():
    global pos
    nl = data.index(b"\n", pos)
    n = int(data[pos:nl])
    pos = nl + 1
    if n < 0:
        return None
    b = data[pos:pos + n]
    pos += n
    return b
def string(b, i):
    n = struct.unpack_from(">h", b, i)[0]
    return b[i + 2:i + 2 + n], i + 2 + n
committed = {}
while pos < len(data):
    key = field()
    value = field()
    if key is None or struct.unpack_from(">h", key, 0)[0] > 1:
        continue  # version 2 keys are group metadata, not offsets
    g, i = string(key, 2)
    topic, i = string(key, i)
    part = struct.unpack_from(">i", key, i)[0]
    if g != group:
        continue
    tp = (topic.decode(), part)
    if value is None:
        committed.pop(tp, None)
    else:
        committed[tp] = struct.unpack_from(">q", value, 2)[0]
records = sum(ends.values())
print(f"{len(ends)} partitions hold {records} records; the group "
      f"committed on {len(committed)}, {sum(committed.values())} in all")
bad = [(tp, end, committed.get(tp)) for tp, end in sorted(ends.items())
       if end > 0 and committed.get(tp) != end]
for tp, end, c in bad:
    print(f"  {tp[0]} [{tp[1]}]: end offset {end}, committed {c}")
if records != 1000:
    print(f"  the task topics hold {records} records, not 1000")
sys.exit(1 if bad or records != 1000 or len(ends) != 24 else 0)
PY
        fail "the group's committed offsets do not cover every task record"
log "ok: committed offsets = end offsets on all 24 task partitions"

# The same group again: c2 starts at the committed offsets. Once it has
# run 10 new tasks it has fetched to the end of every partition, so it
# received exactly those 10 records (without commits, auto.offset.reset
# earliest would hand it all 1,010).
start_consumer c2 -b "$bootstrap" "${consumer_topic_args[@]}"
wait_ready "$c2_http"
sub late --count 10 --type noop
producer "${producer_topic_args[@]}" wait --ids-file "$work/ids.late" \
        --timeout-ms 60000 >/dev/null || fail "c2 did not run the new tasks"
assert_eq "records received by c2 after 10 new tasks" \
        "$(metric_sum "$c2_http" '^swarmq_records_received_total')" 10
kill -TERM "$c2_pid"
sq_wait_exit "$c2_pid" 60 || fail "c2 did not exit 0 after SIGTERM"
log "passed in $((SECONDS - t0)) s"
