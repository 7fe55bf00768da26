# SPDX-License-Identifier: Apache-2.0
"""The client against swarmq on its embedded broker, with the embedded
catalog's ids (the default) and with JSON output (``output.format=json``).

Expectations are computed here (hashlib, the payloads), never read back
from swarmq.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition

import swarmq
from swarmq import Client, Priority, Status, Task

from conftest import BUILD, SRC, Swarmq, swarmq_fixture, task_events


@pytest.fixture(scope="module")
def sq(workdir: Path) -> Iterator[Swarmq]:
    yield from swarmq_fixture("py-embedded", tmp=workdir,
                              extra={"retry.max.attempts": "1"})


@pytest.fixture(scope="module")
def sq_json(workdir: Path) -> Iterator[Swarmq]:
    yield from swarmq_fixture("py-json", tmp=workdir,
                              extra={"output.format": "json"})


@pytest.fixture(scope="module")
def sq_wf(workdir: Path) -> Iterator[Swarmq]:
    yield from swarmq_fixture("py-workflows", tmp=workdir,
                              extra={"workflows.enable": "true"})


@pytest.fixture
def client(sq: Swarmq) -> Iterator[Client]:
    with Client(sq.bootstrap) as c:
        yield c


def test_run_blocks_until_the_result(client: Client) -> None:
    result = client.run(type="sha256", payload=b"hello", timeout=60)
    assert result.status is Status.SUCCEEDED and result.ok
    assert result.output == hashlib.sha256(b"hello").hexdigest().encode()
    assert result.error is None
    assert result.instance == "py-embedded"
    assert result.attempts == 1
    assert result.source.topic == "swarmq-tasks"
    assert 0 < result.created_at_ms <= result.started_at_ms \
        <= result.finished_at_ms
    assert result.finished_at.tzinfo is not None
    # The complaint: results must serialize to JSON as they are.
    round_trip = json.loads(json.dumps(result.to_dict()))
    assert swarmq.Result.from_dict(round_trip) == result


def test_submit_many_then_wait_all(client: Client) -> None:
    tasks = [Task(type="echo", payload=f"payload {i}", id=f"many-{i}",
                  priority=[Priority.LOW, Priority.NORMAL, Priority.HIGH][i % 3])
             for i in range(60)]
    ids = client.submit_many(tasks)
    assert ids == [t.id for t in tasks]
    results = client.wait_all(ids, timeout=90)
    assert sorted(results) == sorted(ids)
    for t in tasks:
        r = results[t.id]
        assert r.status is Status.SUCCEEDED, r
        assert r.output == t.payload_bytes()
    # wait() after the results arrived still finds them (kept by task id).
    assert client.wait("many-7", timeout=1).output == b"payload 7"


def test_futures(client: Client) -> None:
    futs = {client.submit_async(type="echo", payload=f"f{i}".encode()): i
            for i in range(20)}
    got = {}
    for fut in concurrent.futures.as_completed(futs, timeout=90):
        got[futs[fut]] = fut.result()
    assert sorted(got) == list(range(20))
    assert all(got[i].output == f"f{i}".encode() for i in got)


def test_critical_goes_to_the_fast_lane(client: Client) -> None:
    r = client.run(type="echo", payload=b"now", priority=Priority.CRITICAL,
                   timeout=60)
    assert r.status is Status.SUCCEEDED
    assert r.source.topic == "swarmq-tasks-critical"


def test_failure_is_dead_lettered(client: Client) -> None:
    r = client.run(Task(type="fail", payload=b"boom", max_attempts=1),
                   timeout=60)
    assert r.status is Status.DEAD_LETTERED
    assert r.error  # the handler's failure, named
    assert not r.ok


def test_delayed_task_cancelled(client: Client) -> None:
    # Not before 3 s from now: it waits in the retry topic, where the
    # cancel finds it; when it comes due its one result is CANCELLED and
    # it never ran.
    task = Task(type="echo", payload=b"later",
                not_before_ms=int(time.time() * 1000) + 3_000)
    fut = client.submit_async(task)
    delayed = next(client.events(follow=True, task_id=task.id,
                                 types=["delayed"], idle_timeout=30), None)
    assert delayed is not None, "no delayed event"
    client.cancel(task.id)
    r = fut.result(timeout=60)
    assert r.status is Status.CANCELLED
    assert r.started_at is None


def test_wait_times_out_naming_the_task(client: Client) -> None:
    with pytest.raises(TimeoutError, match="no-such-task"):
        client.wait("no-such-task", timeout=0.5)


def test_refused_before_sending(client: Client) -> None:
    with pytest.raises(ValueError, match="type must be a non-empty"):
        client.submit(type="")
    with pytest.raises(ValueError, match="max_attempts"):
        client.submit(type="echo", max_attempts=0)
    with pytest.raises(ValueError, match="priority 'URGENT'"):
        client.submit(type="echo", priority="URGENT")


def test_events_and_replay(client: Client) -> None:
    tid = client.submit(type="echo", payload=b"replayed")
    r = client.wait(tid, timeout=60)
    events = task_events(client, tid)
    types = [e.type for e in events]
    assert types[:2] == ["received", "started"] and types[-1] == "succeeded"
    assert all(json.loads(json.dumps(e.to_dict()))["task_id"] == tid
               for e in events)
    # Replay from the beginning finds the result, with its coordinates...
    replayed = list(client.results(task_id=tid))
    assert replayed == [r]
    rec = replayed[0].record
    assert rec is not None and rec.topic == "swarmq-results"
    # ...and replay by offset starts exactly there.
    from_there = [x for x in client.results(start={rec.partition: rec.offset})
                  if x.record.partition == rec.partition]
    assert from_there[0] == r
    # From the end: nothing older.
    assert list(client.results(start="end")) == []


def test_workflow_results_and_events_read(sq_wf: Swarmq,
                                          workdir: Path) -> None:
    """A chain submitted with swarmq-producer: its steps' results and
    events (result-v3.avsc, event-v2.avsc: catalog ids 8 and 9) read like
    any other, and the chain's output is the last step's."""
    doc = workdir / "chain.json"
    doc.write_text(json.dumps({"id": "py-chain", "workflow": {"chain": [
        {"type": "echo", "payload": "step one"}, {"type": "sha256"}]}}))
    sub = subprocess.run([str(BUILD / "producer" / "swarmq-producer"), "-b",
                          sq_wf.bootstrap, "workflow", str(doc)],
                         capture_output=True, text=True, timeout=60)
    assert sub.returncode == 0, sub.stderr
    assert sub.stdout.strip() == "py-chain"
    with Client(sq_wf.bootstrap) as client:
        whole = client.wait("py-chain", timeout=60)
        assert whole.status is Status.SUCCEEDED
        assert whole.output == hashlib.sha256(b"step one").hexdigest() \
            .encode()
        first = next(iter(client.results(task_id="py-chain.0")))
        assert first.status is Status.SUCCEEDED
        assert first.output == b"step one"
        # The workflow fields: a step's workflow and the step before it.
        assert (first.workflow_id, first.parent_id) == ("py-chain", None)
        second = next(iter(client.results(task_id="py-chain.1")))
        assert (second.workflow_id, second.parent_id) == \
            ("py-chain", "py-chain.0")
        assert (whole.workflow_id, whole.parent_id) == ("py-chain", None)
        events = task_events(client, "py-chain.1")
        assert events[-1].type == "succeeded"
        assert {(e.workflow_id, e.parent_id) for e in events} == \
            {("py-chain", "py-chain.0")}
        # ...and they survive the JSON form.
        assert swarmq.Result.from_dict(second.to_dict()) == second
        assert swarmq.Event.from_dict(events[-1].to_dict()) == events[-1]
        # A task outside a workflow has none.
        plain = client.run(type="echo", payload=b"alone", timeout=60)
        assert (plain.workflow_id, plain.parent_id) == (None, None)
        assert "workflow_id" not in plain.to_dict()
        assert {(e.workflow_id, e.parent_id)
                for e in task_events(client, plain.task_id)} == \
            {(None, None)}


def test_workflow_fields_of_each_schema_id() -> None:
    """Without a broker: a result and an event framed with each catalog
    id (written here with fastavro from the repository's schemas) read
    with their workflow fields, None where the schema has none."""
    import io
    import struct

    import fastavro

    def framed(name: str, schema_id: int, rec: dict) -> bytes:
        schema = fastavro.parse_schema(json.loads(
            (SRC / "schemas" / name).read_text()))
        buf = io.BytesIO()
        buf.write(struct.pack(">bI", 0, schema_id))
        fastavro.schemaless_writer(buf, schema, rec)
        return buf.getvalue()

    res = {"task_id": "wf-1.1", "status": "SUCCEEDED", "output": b"o",
           "error": None, "agent": "echo", "instance": "c1", "attempts": 1,
           "source": {"topic": "swarmq-tasks", "partition": 0, "offset": 3},
           "created_at": 1, "started_at": 2, "finished_at": 3}
    ev = {"event_id": "e1", "task_id": "wf-1.1", "type": "succeeded",
          "at": 3, "instance": "c1", "agent": None, "detail": None}
    codec = swarmq.Codec()
    wf = {"workflow_id": "wf-1", "parent_id": "wf-1.0"}
    r = codec.decode_result(framed("result-v3.avsc", 8, {**res, **wf}))
    assert (r.workflow_id, r.parent_id, r.output) == ("wf-1", "wf-1.0", b"o")
    e = codec.decode_event(framed("event-v2.avsc", 9, {**ev, **wf}))
    assert (e.workflow_id, e.parent_id, e.type) == \
        ("wf-1", "wf-1.0", "succeeded")
    for name, schema_id in (("result.avsc", 2), ("result-v2.avsc", 6)):
        r = codec.decode_result(framed(name, schema_id, res))
        assert (r.task_id, r.workflow_id, r.parent_id) == \
            ("wf-1.1", None, None), name
    e = codec.decode_event(framed("event.avsc", 3, ev))
    assert (e.task_id, e.workflow_id, e.parent_id) == ("wf-1.1", None, None)


def test_shipped_schemas_are_the_repositorys() -> None:
    pkg = Path(swarmq.__file__).parent / "schemas"
    for f in sorted(pkg.glob("*.avsc")):
        assert f.read_bytes() == (SRC / "schemas" / f.name).read_bytes(), \
            f"{f} differs from schemas/{f.name}: copy it (clients/python)"


def test_json_output_reads_the_same(sq_json: Swarmq) -> None:
    with Client(sq_json.bootstrap) as client:
        ids = client.submit_many(Task(type="echo", payload=f"j{i}")
                                 for i in range(10))
        results = client.wait_all(ids, timeout=60)
        assert [results[i].output for i in ids] == \
            [f"j{i}".encode() for i in range(10)]
        # The records really are JSON, not Avro.
        rec = results[ids[0]].record
        assert rec is not None
        c = Consumer({"bootstrap.servers": sq_json.bootstrap,
                      "group.id": "raw-check"})
        c.assign([TopicPartition(rec.topic, rec.partition, rec.offset)])
        msg = c.consume(1, timeout=10)[0]
        c.close()
        assert json.loads(msg.value())["task_id"] == ids[0]
        events = task_events(client, ids[0])
        assert events[-1].type == "succeeded"
        assert events[-1].at_ms >= results[ids[0]].started_at_ms


def readme_example(language: str) -> str:
    """The README's example block for a language ("From your language")."""
    text = (SRC / "README.md").read_text()
    marker = f"<!-- example: {language} "
    start = text.index(marker)
    start = text.index("```", start)
    start = text.index("\n", start) + 1
    return text[start:text.index("```", start)]


def test_readme_example_runs(sq: Swarmq,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code = readme_example("python")
    assert '"127.0.0.1:9092"' in code
    exec(compile(code.replace('"127.0.0.1:9092"', repr(sq.bootstrap)),
                 "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "SUCCEEDED " + hashlib.sha256(b"hello").hexdigest()
    assert [l.split(" ", 1)[1] for l in lines[1:4]] == \
        ["SUCCEEDED b'#0'", "SUCCEEDED b'#1'", "SUCCEEDED b'#2'"]
    assert [l.split(" ")[0] for l in lines[4:]][:2] == ["received", "started"]
    assert lines[-1].startswith("succeeded ")
