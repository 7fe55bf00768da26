# SPDX-License-Identifier: Apache-2.0
"""The client against swarmq on real Apache Kafka (the ctest fixture's
broker), with the embedded catalog and with a Schema Registry; replay by
time needs Kafka's offsets-for-times, which only a real broker answers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from pathlib import Path
from typing import Iterator

import pytest

from swarmq import Client, Status, Task

from conftest import Swarmq, swarmq_fixture, task_events


@pytest.fixture(scope="module")
def sq(workdir: Path, kafka: str) -> Iterator[Swarmq]:
    yield from swarmq_fixture("py-kafka", tmp=workdir, kafka=kafka)


@pytest.fixture(scope="module")
def sq_registry(workdir: Path, kafka: str,
                registry: str) -> Iterator[Swarmq]:
    yield from swarmq_fixture("py-kafka-reg", tmp=workdir, kafka=kafka,
                              registry=registry)


def test_submit_wait_and_replay_by_time(sq: Swarmq) -> None:
    with Client(sq.bootstrap, topics=sq.topics) as client:
        before = client.run(type="echo", payload=b"early", timeout=60)
        time.sleep(0.05)
        cut = dt.datetime.now(dt.timezone.utc)
        time.sleep(0.05)
        tasks = [Task(type="sha256", payload=f"late {i}") for i in range(20)]
        results = client.wait_all(client.submit_many(tasks), timeout=90)
        for t in tasks:
            assert results[t.id].status is Status.SUCCEEDED
            assert results[t.id].output == \
                hashlib.sha256(t.payload_bytes()).hexdigest().encode()
        # Replay by time: everything at or after the cut, nothing before.
        replayed = {r.task_id for r in client.results(start=cut)}
        assert replayed == {t.id for t in tasks}
        everything = {r.task_id for r in client.results()}
        assert before.task_id in everything and replayed <= everything
        events = [e.type for e in task_events(client, tasks[0].id,
                                                start=cut)]
        assert events[0] == "received" and events[-1] == "succeeded"


def test_with_registry(sq_registry: Swarmq) -> None:
    with Client(sq_registry.bootstrap, topics=sq_registry.topics,
                schema_registry_url=sq_registry.registry) as client:
        futs = [client.submit_async(type="echo", payload=f"r{i}")
                for i in range(10)]
        outs = sorted(f.result(timeout=90).output for f in futs)
        assert outs == sorted(f"r{i}".encode() for i in range(10))
