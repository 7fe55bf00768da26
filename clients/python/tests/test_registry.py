# SPDX-License-Identifier: Apache-2.0
"""The client with a real Schema Registry (the ctest fixture's Apicurio),
against swarmq on its embedded broker with the same schema.registry.url,
and cross-checked with confluent-kafka's own registry serializers, which
know nothing of this package: AvroSerializer writes tasks swarmq runs and
this client waits for; AvroDeserializer reads the results of tasks this
client submitted.
"""

from __future__ import annotations

import json
import struct
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, \
    AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from swarmq import Client, Status, Task

from conftest import SRC, Swarmq, swarmq_fixture, task_events


@pytest.fixture(scope="module")
def sq(workdir: Path, registry: str) -> Iterator[Swarmq]:
    yield from swarmq_fixture("py-registry", tmp=workdir, registry=registry)


def registered_id(registry: str, subject: str, schema_file: str) -> int:
    """The id of a schema of schemas/ under a subject (the registry's
    lookup: POST /subjects/{subject}); other tests sharing the registry
    may have registered other versions there."""
    body = json.dumps({"schema": (SRC / "schemas" / schema_file)
                       .read_text()}).encode()
    req = urllib.request.Request(
        f"{registry}/subjects/{subject}", data=body, method="POST",
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return int(json.loads(r.read())["id"])


def raw_value(bootstrap: str, topic: str, partition: int,
              offset: int) -> bytes:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "raw-read"})
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        msgs = c.consume(1, timeout=15)
        assert msgs and msgs[0].error() is None, msgs
        return msgs[0].value()
    finally:
        c.close()


def test_client_uses_the_registry_ids(sq: Swarmq) -> None:
    assert sq.registry is not None
    with Client(sq.bootstrap, schema_registry_url=sq.registry) as client:
        r = client.run(type="echo", payload=b"via the registry", timeout=60)
        assert r.status is Status.SUCCEEDED
        assert r.output == b"via the registry"
        # The task was framed with the id of task-v2.avsc under
        # swarmq-tasks-value, the result with the consumer's current
        # result-v3.avsc's under swarmq-results-value.
        task_id = registered_id(sq.registry, "swarmq-tasks-value",
                                "task-v2.avsc")
        value = raw_value(sq.bootstrap, r.source.topic, r.source.partition,
                          r.source.offset)
        assert value[0] == 0
        assert struct.unpack(">I", value[1:5])[0] == task_id
        assert r.record is not None
        value = raw_value(sq.bootstrap, r.record.topic, r.record.partition,
                          r.record.offset)
        assert struct.unpack(">I", value[1:5])[0] == \
            registered_id(sq.registry, "swarmq-results-value",
                          "result-v3.avsc")
        events = task_events(client, r.task_id)
        assert [e.type for e in events][-1] == "succeeded"


def test_avro_serializer_tasks_run(sq: Swarmq) -> None:
    """A producer that only knows confluent-kafka's AvroSerializer and its
    own copy of task.avsc feeds swarmq; this client waits for the
    results."""
    assert sq.registry is not None
    schema = (SRC / "schemas" / "task.avsc").read_text()
    ser = AvroSerializer(SchemaRegistryClient({"url": sq.registry}), schema,
                         conf={"auto.register.schemas": True})
    ctx = SerializationContext("swarmq-tasks", MessageField.VALUE)
    with Client(sq.bootstrap, schema_registry_url=sq.registry) as client:
        client.watch()
        prod = Producer({"bootstrap.servers": sq.bootstrap})
        ids = [f"serializer-{i}" for i in range(10)]
        for tid in ids:
            prod.produce("swarmq-tasks", key=tid, value=ser(
                {"id": tid, "type": "echo", "priority": "HIGH",
                 "capabilities": [], "payload": tid.encode(), "key": None,
                 "created_at": int(time.time() * 1000), "timeout_ms": 0,
                 "max_attempts": 1, "attempt": 1, "headers": {}}, ctx))
        assert prod.flush(30) == 0
        results = client.wait_all(ids, timeout=60)
        assert {tid: r.output for tid, r in results.items()} == \
            {tid: tid.encode() for tid in ids}


def test_avro_deserializer_reads_results(sq: Swarmq) -> None:
    """Results of tasks this client submitted, read by AvroDeserializer
    (which fetches the writer schema by the id in the framing)."""
    assert sq.registry is not None
    with Client(sq.bootstrap, schema_registry_url=sq.registry) as client:
        tasks = [Task(type="echo", payload=f"d{i}") for i in range(5)]
        results = client.wait_all(client.submit_many(tasks), timeout=60)
    de = AvroDeserializer(SchemaRegistryClient({"url": sq.registry}))
    ctx = SerializationContext("swarmq-results", MessageField.VALUE)
    for t in tasks:
        rec = results[t.id].record
        assert rec is not None
        got = de(raw_value(sq.bootstrap, rec.topic, rec.partition,
                           rec.offset), ctx)
        assert got["task_id"] == t.id
        assert got["status"] == "SUCCEEDED"
        assert got["output"] == t.payload_bytes()
