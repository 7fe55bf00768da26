# SPDX-License-Identifier: Apache-2.0
"""An independent peer for swarmq's wire format: confluent-kafka + fastavro.

DESIGN: nothing here shares code with swarmq. Tasks are encoded with
fastavro's schemaless_writer from the .avsc files in schemas/ and framed by
hand (0x00, 4-byte big-endian schema id, body); results and events are read
back with a plain confluent-kafka consumer (assigned partitions, from the
beginning, no group commits) and decoded with fastavro. Expectations are
computed here, in Python, from the task each result belongs to (hashlib for
sha256 and cpu, the payload for echo, the payload text for fail), so a bug
shared by swarmq's encoder and decoder cannot hide.

Subcommands (run with the venv of ops/venv.sh):
  produce --plan-out PLAN --mix {peer,evolution} ...
      builds the task mix, produces it, and writes PLAN: one JSON object per
      task with where its delivery report put it and what its result must be.
  check --plan PLAN --instance ID ...
      reads the results and events topics until every task of PLAN has a
      result and its terminal event (or the timeout), asserts every field,
      prints one line per problem (first 30) and a summary; exit 0 only when
      there is none.
"""

import argparse
import datetime
import hashlib
import io
import json
import os
import random
import struct
import sys
import time

import fastavro
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

SCHEMA_IDS = {"task": 1, "result": 2, "event": 3, "task-v0": 4}
LIFECYCLE = {"received", "started", "succeeded", "failed", "timed_out",
             "dead_lettered", "retried"}
TERMINAL = {"SUCCEEDED": "succeeded", "FAILED": "failed",
            "TIMED_OUT": "timed_out", "DEAD_LETTERED": "dead_lettered"}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
FAIL_DEFAULT = "task failed on purpose (builtin fail handler)"


def load_schema(schemas, name):
    with open(os.path.join(schemas, name + ".avsc")) as f:
        return fastavro.parse_schema(json.load(f))


def frame(schema_id, schema, record):
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


def unframe(value, want_id, schema):
    """Decodes a framed value; raises ValueError naming what is wrong."""
    if len(value) < 5:
        raise ValueError(f"{len(value)}-byte value is shorter than the frame")
    magic, schema_id = struct.unpack(">bI", value[:5])
    if magic != 0:
        raise ValueError(f"magic byte {magic}, expected 0")
    if schema_id != want_id:
        raise ValueError(f"schema id {schema_id}, expected {want_id}")
    buf = io.BytesIO(value[5:])
    rec = fastavro.schemaless_reader(buf, schema)
    if buf.tell() != len(value) - 5:
        raise ValueError(f"{len(value) - 5 - buf.tell()} bytes after the "
                         "Avro body")
    return rec


def ms(v):
    """timestamp-millis as fastavro returns it (datetime) -> int ms."""
    if isinstance(v, datetime.datetime):
        return (v - EPOCH) // datetime.timedelta(milliseconds=1)
    return v


def cpu_hex(payload, rounds):
    md = hashlib.sha256(payload).digest()
    for _ in range(1, rounds):
        md = hashlib.sha256(md).digest()
    return md.hex()


# ---------------------------------------------------------------- the mixes

def task_record(tid, ttype, payload=b"", priority="NORMAL", caps=(),
                key=None, timeout_ms=0, attempt=1, headers=None):
    return {"id": tid, "type": ttype, "priority": priority,
            "capabilities": list(caps), "payload": payload, "key": key,
            "created_at": int(time.time() * 1000), "timeout_ms": timeout_ms,
            "max_attempts": 3, "attempt": attempt, "headers": headers or {}}


def expect(rec, v0=False):
    """What the result of task @rec must say: status, output, error, agent
    (None: no agent ran it), and an error prefix when the text varies."""
    ttype, payload = rec["type"], rec["payload"]
    caps = [] if v0 else rec["capabilities"]
    headers = {} if v0 else rec["headers"]
    handler = caps[0] if caps else ttype
    # The tests run the consumer with retry.max.attempts=1, so a task that
    # fails, times out or finds no agent is dead-lettered after one attempt.
    if handler not in ("noop", "echo", "sleep", "sha256", "fail", "cpu"):
        return {"status": "DEAD_LETTERED", "output": "",
                "error_contains": handler,
                "agent": None}
    e = {"status": "SUCCEEDED", "output": "", "error": None,
         "agent": handler}
    if handler == "echo":
        e["output"] = payload.hex()
    elif handler == "sha256":
        e["output"] = hashlib.sha256(payload).hexdigest().encode().hex()
    elif handler == "cpu":
        rounds = int(headers.get("rounds", "1000"))
        e["output"] = cpu_hex(payload, rounds).encode().hex()
    elif handler == "fail":
        e["status"] = "DEAD_LETTERED"
        e["error"] = payload.decode() if payload else FAIL_DEFAULT
    elif handler == "sleep":
        timeout = rec.get("timeout_ms", 0) or rec.get("default_timeout_ms", 0)
        if timeout and int(payload or b"100") > timeout:
            e["status"] = "DEAD_LETTERED"
            e["error"] = None
            e["error_prefix"] = "sleep: timed out after"
    return e


def peer_mix(n, rng):
    """The 0200 mix: every builtin, binary and empty payloads, UTF-8 ids,
    headers, capabilities, timeouts, attempts, and some CRITICAL tasks."""
    tasks = []
    for i in range(n):
        kind = i % 10
        tid = f"peer-{i:04d}" if i % 7 else f"peer-{i:04d}-tâche-✓"
        prio = rng.choice(["LOW", "NORMAL", "NORMAL", "HIGH"])
        key = None if i % 3 else f"k{i % 17}"
        attempt = 2 if i % 11 == 0 else 1
        if kind in (0, 1):
            size = rng.choice([0, 1, 31, 200, 4096])
            rec = task_record(tid, "sha256", rng.randbytes(size), prio,
                              key=key, attempt=attempt)
        elif kind == 2:
            rec = task_record(tid, "echo", rng.randbytes(rng.randint(0, 300)),
                              prio, key=key, attempt=attempt)
        elif kind == 3:
            rec = task_record(tid, "fail",
                              f"échec n°{i} on purpose".encode()
                              if i % 20 else b"", prio, attempt=attempt)
        elif kind == 4:
            rec = task_record(tid, "cpu", rng.randbytes(16), prio,
                              headers={"rounds": str(rng.randint(1, 50)),
                                       "note": "ünïcode ok"})
        elif kind == 5:
            rec = task_record(tid, "noop", b"", prio, key=key,
                              headers={"a": "1", "b": ""})
        elif kind == 6:
            # capabilities, not the type, select the agent
            rec = task_record(tid, "hash-it", rng.randbytes(64), prio,
                              caps=["sha256"])
        elif kind == 7:
            if i % 20 == 7:
                rec = task_record(tid, "render", b"scene", prio,
                                  caps=["gpu"])
            else:
                rec = task_record(tid, "sleep", b"2", prio, timeout_ms=5000)
        elif kind == 8:
            # times out: 3 s of sleep with a 50 ms deadline
            rec = task_record(tid, "sleep", b"3000", prio, timeout_ms=50)
        else:
            rec = task_record(tid, "echo", f"critical {i}".encode(),
                              "CRITICAL")
        tasks.append(rec)
    return tasks


def evolution_mix(rng):
    """The 0220 mix: v0 tasks (schema id 4, without capabilities,
    timeout_ms, max_attempts, attempt, headers) next to current ones."""
    out = []
    for i, (ttype, payload, prio) in enumerate([
            ("sha256", b"written by an older producer", "NORMAL"),
            ("echo", rng.randbytes(40), "HIGH"),
            ("cpu", b"default rounds", "LOW"),        # headers {} -> 1000
            ("sleep", b"2000", "NORMAL"),             # timeout_ms 0 -> default
            ("fail", b"v0 failure", "NORMAL"),
            ("noop", b"", "CRITICAL")]):
        rec = {"id": f"v0-{i}-{ttype}", "type": ttype, "priority": prio,
               "payload": payload, "created_at": int(time.time() * 1000)}
        out.append(("task-v0", rec))
    # current-schema neighbours in the same topics
    out.append(("task", task_record("v1-0-sha256", "sha256", b"current")))
    out.append(("task", task_record("v1-1-sleep", "sleep", b"500",
                                    timeout_ms=5000)))
    out.append(("task", task_record("v1-2-cpu", "cpu", b"x",
                                    headers={"rounds": "3"}, attempt=2)))
    return out


# ---------------------------------------------------------------- produce

def cmd_produce(args):
    rng = random.Random(args.seed)
    schemas = {k: load_schema(args.schemas, k) for k in ("task", "task-v0")}
    if args.mix == "peer":
        items = [("task", t) for t in peer_mix(args.count, rng)]
    else:
        items = evolution_mix(rng)
    producer = Producer({"bootstrap.servers": args.bootstrap,
                         "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5})
    plan, errors = [], []

    def on_delivery(err, msg, entry):
        if err:
            errors.append(f"{entry['id']}: {err}")
            return
        entry.update(topic=msg.topic(), partition=msg.partition(),
                     offset=msg.offset())

    for kind, rec in items:
        v0 = kind == "task-v0"
        topic = args.critical if rec["priority"] == "CRITICAL" else args.tasks
        value = frame(SCHEMA_IDS[kind], schemas[kind], rec)
        src = dict(rec, default_timeout_ms=args.default_timeout_ms)
        entry = {"id": rec["id"], "schema": kind, "type": rec["type"],
                 "created_at": rec["created_at"],
                 "attempt": 1 if v0 else rec["attempt"],
                 "expect": expect(src, v0)}
        plan.append(entry)
        producer.produce(topic, value=value, key=rec["id"].encode(),
                         on_delivery=lambda e, m, entry=entry:
                         on_delivery(e, m, entry))
        producer.poll(0)
    left = producer.flush(60)
    if left or errors:
        print(f"produce: {left} undelivered, {len(errors)} failed: "
              f"{errors[:5]}", file=sys.stderr)
        return 1
    with open(args.plan_out, "w") as f:
        for entry in plan:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    by_topic = {}
    for e in plan:
        by_topic[e["topic"]] = by_topic.get(e["topic"], 0) + 1
    print(f"produced {len(plan)} tasks: " +
          ", ".join(f"{t}={c}" for t, c in sorted(by_topic.items())))
    return 0


# ---------------------------------------------------------------- check

def read_all(consumer, topics, done, timeout_s):
    """Reads @topics from the beginning, calling done(records) after each
    batch until it returns True or @timeout_s passes; returns the records
    as (topic, partition, offset, key, value) tuples."""
    assignment = []
    for t in topics:
        md = consumer.list_topics(t, timeout=10).topics[t]
        if md.error:
            raise RuntimeError(f"topic {t}: {md.error}")
        assignment += [TopicPartition(t, p, -2) for p in md.partitions]
    consumer.assign(assignment)
    records = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for msg in consumer.consume(1000, 0.5):
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"consume: {msg.error()}")
                continue
            records.append((msg.topic(), msg.partition(), msg.offset(),
                            msg.key(), msg.value()))
        if done(records):
            return records, True
    return records, False


def cmd_check(args):
    plan = {}
    with open(args.plan) as f:
        for line in f:
            e = json.loads(line)
            plan[e["id"]] = e
    result_schema = load_schema(args.schemas, "result")
    event_schema = load_schema(args.schemas, "event")
    problems = []

    def bad(msg):
        problems.append(msg)

    def want_events(e):
        return 2 if e["expect"]["agent"] is None else 3

    def done(records):
        res = {r[3] for r in records if r[0] == args.results}
        ev = {}
        for r in records:
            if r[0] == args.events and r[3] is not None:
                ev[r[3]] = ev.get(r[3], 0) + 1
        return all(tid.encode() in res and
                   ev.get(tid.encode(), 0) >= want_events(e)
                   for tid, e in plan.items())

    consumer = Consumer({"bootstrap.servers": args.bootstrap,
                         "group.id": f"swarmq-peer-check-{os.getpid()}",
                         "enable.auto.commit": False,
                         "enable.partition.eof": False})
    t0 = time.monotonic()
    records, complete = read_all(consumer, [args.results, args.events], done,
                                 args.timeout)
    consumer.close()
    print(f"read {len(records)} records in {time.monotonic() - t0:.1f} s")
    if not complete:
        bad("timed out before every task had a result and its events")

    results, events = {}, {}
    event_ids = set()
    for topic, part, off, key, value in records:
        if topic == args.results:
            try:
                r = unframe(value, SCHEMA_IDS["result"], result_schema)
            except Exception as ex:
                bad(f"result at {topic}[{part}]@{off}: {ex}")
                continue
            if key != r["task_id"].encode():
                bad(f"result {r['task_id']!r}: record key {key!r}")
            results.setdefault(r["task_id"], []).append(r)
        else:
            try:
                ev = unframe(value, SCHEMA_IDS["event"], event_schema)
            except Exception as ex:
                bad(f"event at {topic}[{part}]@{off}: {ex}")
                continue
            if ev["event_id"] in event_ids:
                bad(f"event id {ev['event_id']} appears twice")
            event_ids.add(ev["event_id"])
            if ev["type"] not in LIFECYCLE:
                bad(f"event {ev['event_id']}: type {ev['type']!r}")
            if ev["instance"] != args.instance:
                bad(f"event {ev['event_id']}: instance {ev['instance']!r}")
            if ev["task_id"] is None:
                bad(f"event {ev['event_id']} ({ev['type']}) has no task id")
                continue
            if key != ev["task_id"].encode():
                bad(f"event of {ev['task_id']!r}: record key {key!r}")
            events.setdefault(ev["task_id"], []).append((part, off, ev))

    for tid in results.keys() - plan.keys():
        bad(f"result for a task that was never produced: {tid!r}")
    for tid in events.keys() - plan.keys():
        bad(f"events for a task that was never produced: {tid!r}")

    statuses = {}
    for tid, e in plan.items():
        x = e["expect"]
        rs = results.get(tid, [])
        if len(rs) != 1:
            bad(f"{tid}: {len(rs)} results, expected 1")
            if not rs:
                continue
        r = rs[0]
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        if r["status"] != x["status"]:
            bad(f"{tid}: status {r['status']}, expected {x['status']} "
                f"(error {r['error']!r})")
        if r["output"].hex() != x["output"]:
            bad(f"{tid}: output {r['output'][:40]!r}, expected "
                f"{bytes.fromhex(x['output'])[:40]!r}")
        if "error_contains" in x:
            if not r["error"] or x["error_contains"] not in r["error"]:
                bad(f"{tid}: error {r['error']!r} does not name "
                    f"{x['error_contains']!r}")
        elif "error_prefix" in x:
            if not (r["error"] or "").startswith(x["error_prefix"]):
                bad(f"{tid}: error {r['error']!r}, expected "
                    f"{x['error_prefix']!r}...")
        elif r["error"] != x["error"]:
            bad(f"{tid}: error {r['error']!r}, expected {x['error']!r}")
        if r["agent"] != x["agent"]:
            bad(f"{tid}: agent {r['agent']!r}, expected {x['agent']!r}")
        if r["instance"] != args.instance:
            bad(f"{tid}: instance {r['instance']!r}")
        if r["attempts"] != e["attempt"]:
            bad(f"{tid}: attempts {r['attempts']}, expected {e['attempt']}")
        src = r["source"]
        if (src["topic"], src["partition"], src["offset"]) != \
                (e["topic"], e["partition"], e["offset"]):
            bad(f"{tid}: source {src}, but the delivery report said "
                f"{e['topic']}[{e['partition']}]@{e['offset']}")
        created, started, finished = (ms(r["created_at"]),
                                      ms(r["started_at"]),
                                      ms(r["finished_at"]))
        if created != e["created_at"]:
            bad(f"{tid}: created_at {created}, produced {e['created_at']}")
        if x["agent"] is None:
            if started != 0 or not created <= finished:
                bad(f"{tid}: never started, yet started_at={started} "
                    f"(created {created}, finished {finished})")
        elif not created <= started <= finished:
            bad(f"{tid}: timestamps out of order: created {created}, "
                f"started {started}, finished {finished}")

        evs = sorted(events.get(tid, []), key=lambda pe: pe[1])
        types = [ev["type"] for _, _, ev in evs]
        want = ["received"] + (["started"] if x["agent"] else []) + \
            [TERMINAL[x["status"]]]
        if types != want:
            bad(f"{tid}: events {types} in partition order, expected {want}")
            continue
        if len({p for p, _, _ in evs}) != 1:
            bad(f"{tid}: events spread over partitions "
                f"{sorted({p for p, _, _ in evs})}")
        ats = [ms(ev["at"]) for _, _, ev in evs]
        if ats != sorted(ats):
            bad(f"{tid}: event times {ats} not in order")
        agents = [ev["agent"] for _, _, ev in evs]
        want_agents = [None] + [x["agent"]] * (len(evs) - 1)
        if agents != want_agents:
            bad(f"{tid}: event agents {agents}, expected {want_agents}")
        term = evs[-1][2]
        # A dead-lettered task's terminal event says why and after how many
        # attempts, then the last error, which is the result's error.
        detail_ok = (term["detail"] == r["error"] or
                     (term["type"] == "dead_lettered" and r["error"] and
                      term["detail"].endswith(": " + r["error"])))
        if not detail_ok:
            bad(f"{tid}: terminal event detail {term['detail']!r}, result "
                f"error {r['error']!r}")
        if x["agent"] and not started <= ms(evs[1][2]["at"]):
            bad(f"{tid}: started event at {ms(evs[1][2]['at'])} before "
                f"started_at {started}")

    for p in problems[:30]:
        print("  " + p)
    counts = ", ".join(f"{k}={v}" for k, v in sorted(statuses.items()))
    print(f"checked {len(plan)} tasks ({counts}), {len(event_ids)} events: "
          f"{len(problems)} problems")
    return 1 if problems else 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--schemas",
                    default=os.path.join(here, "..", "..", "schemas"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--tasks", required=True)
    p.add_argument("--critical", required=True)
    p.add_argument("--mix", choices=["peer", "evolution"], default="peer")
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--default-timeout-ms", type=int, default=60000,
                   help="the consumer's task.default.timeout.ms")
    p.add_argument("--plan-out", required=True)
    c = sub.add_parser("check")
    c.add_argument("--results", required=True)
    c.add_argument("--events", required=True)
    c.add_argument("--plan", required=True)
    c.add_argument("--instance", required=True)
    c.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    return cmd_produce(args) if args.cmd == "produce" else cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())
