#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""An independent client of swarmq with a Schema Registry: confluent-kafka's
own AvroSerializer and AvroDeserializer (confluent_kafka.schema_registry),
the way a Python service that already uses a registry writes and reads
Avro. Nothing here knows swarmq's framing or ids: the serializers register
or look up schemas under "<topic>-value" and frame records themselves.

  produce  write COUNT echo tasks with a writer schema (schemas/task.avsc,
           or --lagging: an older Task shape, reordered, with a field swarmq
           does not know), registered by the serializer itself; prints the
           schema id it wrote with.
  raw      write one record framed with an id the registry does not have.
  check    read the results and events topics with AvroDeserializer until
           every task id of --ids has a result; assert each result's
           status and output (the payload, echoed), that the results' and
           events' schema ids are those registered under their subjects,
           and that each task has received, started and succeeded events.
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

# An older Task: no capabilities, key, timeout_ms, attempt or headers,
# fields in another order, and a field swarmq's schema does not have.
LAGGING = {
    "type": "record",
    "name": "Task",
    "namespace": "dev.swarmq",
    "fields": [
        {"name": "type", "type": "string"},
        {"name": "id", "type": "string"},
        {"name": "origin", "type": "string", "default": "registry_peer"},
        {"name": "payload", "type": "bytes"},
        {"name": "priority",
         "type": {"type": "enum", "name": "Priority",
                  "symbols": ["LOW", "NORMAL", "HIGH", "CRITICAL"]}},
        {"name": "created_at",
         "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "max_attempts", "type": "int", "default": 3},
    ],
}


def registry(url):
    return SchemaRegistryClient({"url": url})


def delivered(err, msg):
    if err is not None:
        sys.exit(f"delivery failed: {err}")


def cmd_produce(args):
    if args.lagging:
        schema_str = json.dumps(LAGGING)
    else:
        with open(args.schema) as f:
            schema_str = f.read()
    ser = AvroSerializer(registry(args.registry), schema_str,
                         conf={"auto.register.schemas": True})
    prod = Producer({"bootstrap.servers": args.bootstrap})
    ctx = SerializationContext(args.topic, MessageField.VALUE)
    now = int(time.time() * 1000)
    ids = []
    schema_id = None
    for i in range(args.count):
        tid = f"{args.id_prefix}-{i}"
        task = {"id": tid, "type": "echo", "priority": "NORMAL",
                "payload": f"payload of {tid}".encode(), "created_at": now,
                "max_attempts": 1}
        if not args.lagging:
            task.update({"capabilities": [], "key": None, "timeout_ms": 0,
                         "attempt": 1, "headers": {}})
        value = ser(task, ctx)
        schema_id = int.from_bytes(value[1:5], "big")
        prod.produce(args.topic, key=tid.encode(), value=value,
                     on_delivery=delivered)
        ids.append(tid)
    if prod.flush(30) != 0:
        sys.exit("not every task was delivered within 30 s")
    with open(args.ids_out, "a") as f:
        for tid in ids:
            f.write(tid + "\n")
    print(f"schema.id={schema_id}")


def cmd_raw(args):
    prod = Producer({"bootstrap.servers": args.bootstrap})
    value = b"\x00" + args.schema_id.to_bytes(4, "big") + b"\x02x"
    prod.produce(args.topic, value=value, on_delivery=delivered)
    if prod.flush(30) != 0:
        sys.exit("the record was not delivered within 30 s")


def cmd_check(args):
    client = registry(args.registry)
    want_ids = {}
    for subject in (f"{args.results}-value", f"{args.events}-value"):
        want_ids[subject] = client.get_latest_version(subject).schema_id
    des = AvroDeserializer(client)
    ids = [line.strip() for line in open(args.ids) if line.strip()]
    want = set(ids)
    cons = Consumer({"bootstrap.servers": args.bootstrap,
                     "group.id": f"registry-peer-{time.time()}",
                     "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
    cons.subscribe([args.results, args.events])
    results, events = {}, {}
    errors = []
    deadline = time.time() + args.timeout

    def done():
        return want <= set(results) and all(
            {"received", "started", "succeeded"} <= events.get(t, set())
            for t in want)

    while time.time() < deadline and not done():
        msg = cons.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            sys.exit(f"consumer error: {msg.error()}")
        topic, value = msg.topic(), msg.value()
        subject = f"{topic}-value"
        sid = int.from_bytes(value[1:5], "big")
        if value[0] != 0 or sid != want_ids[subject]:
            errors.append(f"{topic} record framed with id {sid}, "
                          f"{subject} has {want_ids[subject]}")
        rec = des(value, SerializationContext(topic, MessageField.VALUE))
        if topic == args.results:
            if rec["task_id"] in results:
                errors.append(f"two results for {rec['task_id']}")
            results[rec["task_id"]] = rec
        elif rec.get("task_id"):
            events.setdefault(rec["task_id"], set()).add(rec["type"])
    cons.close()
    missing = want - set(results)
    if missing:
        errors.append(f"{len(missing)} tasks have no result, e.g. "
                      f"{sorted(missing)[:3]}")
    for tid in sorted(want & set(results)):
        rec = results[tid]
        if rec["status"] != "SUCCEEDED":
            errors.append(f"{tid}: status {rec['status']} ({rec['error']})")
        elif rec["output"] != f"payload of {tid}".encode():
            errors.append(f"{tid}: output {rec['output']!r}")
        lacking = {"received", "started", "succeeded"} - events.get(tid, set())
        if lacking:
            errors.append(f"{tid}: no {sorted(lacking)} events")
    for e in errors[:10]:
        print("  " + e, file=sys.stderr)
    if errors:
        sys.exit(f"{len(errors)} problems")
    print(f"checked {len(want)} results and their events, ids "
          f"{want_ids[args.results + '-value']} and "
          f"{want_ids[args.events + '-value']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--registry", required=True)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--id-prefix", required=True)
    p.add_argument("--ids-out", required=True)
    p.add_argument("--schema", help="task.avsc")
    p.add_argument("--lagging", action="store_true")
    p = sub.add_parser("raw")
    p.add_argument("--topic", required=True)
    p.add_argument("--schema-id", type=int, required=True)
    p = sub.add_parser("check")
    p.add_argument("--results", required=True)
    p.add_argument("--events", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    {"produce": cmd_produce, "raw": cmd_raw, "check": cmd_check}[args.cmd](args)


if __name__ == "__main__":
    main()
