#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Workflows on a real Apache Kafka broker with
# processing.guarantee=exactly_once, across a kill -9 of the instance that
# owns a chord (the scenario: integration/workflows_kill9.sh, also run on
# the mock as integration/0028): a chord of 61 children (60 sleeps and a gate opened after the kill) and its join, a
# chain that succeeds and one that stops at its failed step. Every task's
# result and its ending on topic.workflows go in one transaction with its
# offset; the new owner of the chord's partition rebuilds it from the
# topic and ends it once, its join's input the 61 children in order.
# topic.workflows was created by the instances as they create it
# (topics.partitions partitions, compacted), not auto-created by the
# broker with its defaults.
source "$(dirname "$0")/../integration/lib.sh"
use_real_kafka

# The killed instance is not restarted, so nothing fences its open
# transaction: the broker aborts it after transaction.timeout.ms
# (librdkafka's default 60 s, plus up to the broker's 10 s abort check),
# and until then read_committed readers (the results wait below) see
# nothing past it on the partitions it wrote to. 10 s, as Kafka Streams
# uses under exactly-once, keeps that well inside the wait (0640 saw two
# results hidden past a 60 s wait on a loaded machine).

t_workflows=$prefix-workflows
common=(-b "$bootstrap" "${consumer_topic_args[@]}" -X "topic.workflows=$t_workflows"
        -X workflows.enable=true -X topics.partitions=3 -X commit.interval.ms=200
        -X kafka.session.timeout.ms=6000 -X kafka.fetch.wait.max.ms=100
        -X executor.threads=4 -X processing.guarantee=exactly_once
        -X kafka.transaction.timeout.ms=10000)
prod_args=("${producer_topic_args[@]}")
wf_args=(--topic-workflows "$t_workflows")
wf_partitions=3
exactly_once=1
source "$(dirname "$0")/../integration/workflows_kill9.sh"
use_python_peer
"$python" - "$bootstrap" "$t_workflows" <<'PY' || fail "topic.workflows is not as the instances create it"
import sys
from confluent_kafka.admin import AdminClient, ConfigResource
admin, topic = AdminClient({"bootstrap.servers": sys.argv[1]}), sys.argv[2]
parts = len(admin.list_topics(topic, timeout=10).topics[topic].partitions)
res = ConfigResource(ConfigResource.Type.TOPIC, topic)
policy = admin.describe_configs([res])[res].result(timeout=10)["cleanup.policy"].value
print(f"{topic}: {parts} partitions, cleanup.policy={policy}")
sys.exit(0 if parts == 3 and policy == "compact" else 1)
PY
log "ok: chord-1 ended once with its 61 children's results, the chains as declared"

# The owner's own steps are transactions too: kill -9 the owner of chord-2
# the moment its join task shows in topic.tasks to a read_uncommitted
# reader, that is while (or just after) the transaction that submits it
# and records it started commits. Either that transaction committed, and
# the next owner reads that the join started, or the next owner's
# init_transactions aborts it and the next owner submits the join
# itself: a read_committed reader sees the join submitted once, run once,
# and chord-2 ended once (under at_least_once the join could be
# submitted twice, the second dropped by the consumers' dedup).
# chord-2 has a gate child too (workflows_kill9.sh), opened once its
# owner is known: else, on a fast run, chord-2 may end before /status
# was seen listing it.
rm -f "$work/release"
start_consumer c3 "${common[@]}" "${gate[@]}"
start_consumer c4 "${common[@]}" "${gate[@]}"
wait_ready "$c3_http"
wait_ready "$c4_http"
wait_until 60 "c3 and c4 share topic.workflows' 3 partitions" -- \
        value_is == 3 eval 'echo $(( $(owned "$c3_http") + $(owned "$c4_http") ))'
python3 - "$work/chord2.json" <<'PY'
import json, sys
kids = [{"type": "sleep", "payload": "300"} for _ in range(12)] + [{"type": "gate"}]
json.dump({"id": "chord-2", "workflow": {"group": kids, "join": {"type": "echo"}}},
          open(sys.argv[1], "w"))
PY
producer "${wf_args[@]}" workflow "$work/chord2.json" >/dev/null || fail "cannot submit chord-2"
owner_of_chord2() {
        local c http
        for c in c3 c4; do
                http=${c}_http
                if curl -fsS "${!http}/status" | python3 -c \
                        'import json,sys; sys.exit(not any(w["id"] == "chord-2" for w in json.load(sys.stdin)["workflows"]["list"]))'; then
                        owner2=$c
                        return 0
                fi
        done
        return 1
}
wait_until 60 "an instance owns chord-2" -- owner_of_chord2
owner2_pid_var=${owner2}_pid
owner2_pid=${!owner2_pid_var}
touch "$work/release" # chord-2's gate child may end, and its join follow
"$python" - "$bootstrap" "$t_tasks" "$owner2_pid" <<'PY' || fail "chord-2's join never showed in topic.tasks"
import os, signal, sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": f"watch-{os.getpid()}",
              "isolation.level": "read_uncommitted", "auto.offset.reset": "earliest",
              "enable.auto.commit": False})
c.subscribe([sys.argv[2]])
deadline = time.time() + 90
while time.time() < deadline:
    m = c.poll(0.05)
    if m is not None and not m.error() and m.key() == b"chord-2.join":
        os.kill(int(sys.argv[3]), signal.SIGKILL)
        print(f"chord-2.join in topic.tasks (read_uncommitted) at offset {m.offset()}: "
              f"owner pid {sys.argv[3]} killed", flush=True)
        c.close()
        sys.exit(0)
c.close()
sys.exit(1)
PY
wait "$owner2_pid" 2>/dev/null || true
log "kill -9 $owner2, the owner of chord-2, as its join was being submitted"
producer "${prod_args[@]}" wait --id chord-2 --id chord-2.join --timeout-ms 120000 >"$work/wait2.out" 2>&1 ||
        fail "chord-2 did not end: $(cat "$work/wait2.out")"
# read_committed (the CLI's default) and read_uncommitted copies of the
# join's task record.
producer replay --topic "$t_tasks" --task-id chord-2.join >"$work/join2.committed" 2>/dev/null ||
        fail "cannot replay $t_tasks"
producer -X isolation.level=read_uncommitted replay --topic "$t_tasks" \
        --task-id chord-2.join >"$work/join2.all" 2>/dev/null || fail "cannot replay $t_tasks"
producer "${prod_args[@]}" replay --results --task-id chord-2 --task-id chord-2.join \
        >"$work/results2.jsonl" 2>/dev/null || fail "cannot replay the results"
python3 - "$work/join2.committed" "$work/join2.all" "$work/results2.jsonl" <<'PY' || fail "chord-2 did not end exactly once"
import collections, json, sys
committed = [json.loads(l) for l in open(sys.argv[1])]
written = [json.loads(l) for l in open(sys.argv[2])]
res = collections.defaultdict(list)
for line in open(sys.argv[3]):
    r = json.loads(line)
    res[r["task_id"]].append(r)
print(f"chord-2.join task records: {len(committed)} committed, {len(written)} written "
      f"({'the killed owner committed its step' if len(written) == 1 else 'the killed owner aborted, the next one submitted it'})")
print(f"results: chord-2.join {len(res['chord-2.join'])}, chord-2 {len(res['chord-2'])}")
bad = []
if len(committed) != 1:
    bad.append(f"the join was submitted {len(committed)} times (read_committed)")
if len(res["chord-2.join"]) != 1:
    bad.append(f"the join ran {len(res['chord-2.join'])} times")
if len(res["chord-2"]) != 1 or res["chord-2"][0]["status"] != "SUCCEEDED":
    bad.append(f"chord-2 has {[r['status'] for r in res['chord-2']]} as results")
elif len(json.loads(res["chord-2"][0].get("output", "[]"))) != 13:
    bad.append("chord-2's output is not its 13 children's results")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
log "ok: chord-2's join submitted once, run once, chord-2 ended once across the kill of its owner"
