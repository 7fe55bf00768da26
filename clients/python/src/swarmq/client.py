# SPDX-License-Identifier: Apache-2.0
"""The swarmq client: submit tasks, wait for results, replay what happened.

DESIGN: one ``Client`` holds a confluent-kafka Producer (tasks and cancel
records) and, while anyone may wait, one results watcher: a thread with its
own Consumer, *assigned* (no group, nothing committed) every partition of
the results topic. The watcher fixes its start offsets (each partition's
end) before the first task is produced, so the result of any task this
client submits lies after them and cannot be missed; partitions that
appear later are read from their beginning. Each result read completes the
futures waiting on its task id and is kept in a bounded map (the last
``results_kept``), so ``wait()`` after the result arrived still finds it.
A record the watcher cannot decode is logged and skipped: it is not one of
ours to judge.

``results()`` and ``events()`` are independent replays: a Consumer of
their own, assigned from the beginning, the end, a point in time (Kafka's
offsets-for-times; needs a real broker) or given offsets, stopping at the
end offsets seen when the replay started unless ``follow=True``.

Delivery: ``submit()`` returns once Kafka acknowledged the task (it raises
``SubmitError`` otherwise); ``submit_many()`` produces a batch and waits
once for all acknowledgements. Results are at-least-once, like swarmq: a
crash can repeat one; the first one read completes the future.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import logging
import threading
import time
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as _FutureTimeout
from dataclasses import dataclass
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping,
                    Optional, Sequence, Tuple, TypeVar, Union)

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, \
    TopicPartition

from .records import Coordinates, Event, Priority, Result, Task, to_ms
from .wire import Codec, DecodeError, SchemaRegistry

__all__ = ["Client", "Topics", "SubmitError", "Start"]

log = logging.getLogger("swarmq")

#: Where a replay starts: "beginning", "end", a point in time, or an
#: offset per partition ({partition: offset}).
Start = Union[str, _dt.datetime, Mapping[int, int]]

R = TypeVar("R", Result, Event)


class SubmitError(RuntimeError):
    """Kafka did not accept one or more tasks; ``failed`` maps each task
    id to its error."""

    def __init__(self, failed: Mapping[str, str]) -> None:
        self.failed = dict(failed)
        first = next(iter(self.failed.items()))
        super().__init__(f"{len(self.failed)} task(s) not delivered, "
                         f"first {first[0]}: {first[1]}")


@dataclass(frozen=True)
class Topics:
    """Topic names; they must be the consumer's (``topic.*`` keys)."""

    tasks: str = "swarmq-tasks"
    critical: str = "swarmq-tasks-critical"
    results: str = "swarmq-results"
    events: str = "swarmq-events"
    control: str = "swarmq-control"


def _consumer(kafka: Mapping[str, Any], purpose: str) -> Consumer:
    conf = dict(kafka)
    # Assigned, never subscribed: the group id only names the client.
    conf.setdefault("group.id", f"swarmq-python-{purpose}-{uuid.uuid4()}")
    conf["enable.auto.commit"] = False
    conf.setdefault("allow.auto.create.topics", True)
    return Consumer(conf)


def _partitions(consumer: Consumer, topic: str,
                timeout: float) -> Optional[List[int]]:
    """The topic's partition ids, or None while it does not exist."""
    md = consumer.list_topics(topic, timeout=timeout)
    tmd = md.topics.get(topic)
    if tmd is None or tmd.error is not None or not tmd.partitions:
        return None
    return sorted(tmd.partitions)


# What a partition answers for a moment after its topic was created (its
# leader not elected or not yet known to the broker asked): asked again.
_TRANSIENT = frozenset((KafkaError.NOT_LEADER_FOR_PARTITION,
                        KafkaError.LEADER_NOT_AVAILABLE,
                        KafkaError.UNKNOWN_TOPIC_OR_PART,
                        KafkaError.UNKNOWN))


def _watermarks(consumer: Consumer, tp: TopicPartition,
                timeout: float = 10.0) -> Tuple[int, int]:
    """The partition's (low, high) offsets; errors a freshly created
    topic gives are retried for up to timeout seconds, as the Go client
    does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=timeout)
        except KafkaException as e:
            err = e.args[0] if e.args else None
            if not isinstance(err, KafkaError) or \
                    err.code() not in _TRANSIENT or \
                    time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


class _Watcher(threading.Thread):
    """Reads the results topic and completes the futures of task ids."""

    def __init__(self, client: "Client") -> None:
        super().__init__(name="swarmq-results-watcher", daemon=True)
        self._client = client
        self._consumer = _consumer(client._kafka, "watch")
        self._known: set = set()
        self._stop_evt = threading.Event()
        self._ready = threading.Event()
        self._start_error: Optional[BaseException] = None

    def start_and_wait(self, timeout: float) -> None:
        self.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"results watcher could not read the end "
                               f"offsets of {self._client.topics.results} "
                               f"within {timeout} s")
        if self._start_error is not None:
            raise self._start_error

    def _assign_new(self, from_end: bool) -> None:
        topic = self._client.topics.results
        parts = _partitions(self._consumer, topic, 10.0)
        if parts is None:
            return
        new = [p for p in parts if p not in self._known]
        if not new:
            return
        tps = []
        for p in new:
            offset = 0
            if from_end:
                _, offset = _watermarks(self._consumer,
                                        TopicPartition(topic, p))
            tps.append(TopicPartition(topic, p, offset))
        self._consumer.incremental_assign(tps)
        self._known.update(new)

    def run(self) -> None:
        try:
            self._assign_new(from_end=True)
        except BaseException as e:  # reported to start_and_wait's caller
            self._start_error = e
            self._ready.set()
            self._consumer.close()
            return
        self._ready.set()
        next_refresh = time.monotonic() + 1.0
        try:
            while not self._stop_evt.is_set():
                if time.monotonic() >= next_refresh:
                    # New partitions (or the topic's first appearance) are
                    # read from their beginning: nothing there is older
                    # than this watcher.
                    try:
                        self._assign_new(from_end=False)
                    except KafkaException as e:
                        log.warning("swarmq: results metadata: %s", e)
                    next_refresh = time.monotonic() + (
                        1.0 if not self._known else 5.0)
                for msg in self._consumer.consume(500, timeout=0.2):
                    self._handle(msg)
                # Serves the delivery reports of submit_async's tasks.
                self._client._producer.poll(0)
        finally:
            self._consumer.close()

    def _handle(self, msg: Any) -> None:
        if msg.error() is not None:
            if msg.error().code() != KafkaError._PARTITION_EOF:
                log.warning("swarmq: reading results: %s", msg.error())
            return
        coords = Coordinates(msg.topic(), msg.partition(), msg.offset(),
                             msg.timestamp()[1])
        try:
            result = self._client.codec.decode_result(msg.value() or b"",
                                                      coords)
        except DecodeError as e:
            log.warning("swarmq: skipped %s[%d]@%d: %s", coords.topic,
                        coords.partition, coords.offset, e)
            return
        self._client._deliver(result)

    def stop(self) -> None:
        self._stop_evt.set()


class Client:
    """A swarmq client on one Kafka cluster.

    ``bootstrap_servers``: the cluster (``swarmq-consumer
    --embedded-broker`` prints one). ``schema_registry_url``: the same
    registry as the consumer's ``schema.registry.url`` (its ids are then
    used); None: swarmq's embedded catalog. ``kafka_config``: any further
    librdkafka properties (``security.protocol``, ``sasl.*``, ...) for
    every producer and consumer this client makes. ``results_kept``: how
    many recent results ``wait()`` can still find after they arrived.

    Use it as a context manager, or call ``close()``.
    """

    def __init__(self, bootstrap_servers: str, *,
                 schema_registry_url: Optional[str] = None,
                 schema_registry_basic_auth: Optional[str] = None,
                 schema_registry_ca_location: Optional[str] = None,
                 topics: Topics = Topics(),
                 kafka_config: Optional[Mapping[str, Any]] = None,
                 results_kept: int = 100_000) -> None:
        self.topics = topics
        self._kafka: Dict[str, Any] = dict(kafka_config or {})
        self._kafka["bootstrap.servers"] = bootstrap_servers
        registry = SchemaRegistry(
            schema_registry_url, schema_registry_basic_auth,
            schema_registry_ca_location) if schema_registry_url else None
        self.codec = Codec(registry)
        pconf = dict(self._kafka)
        pconf.setdefault("linger.ms", 5)
        pconf.setdefault("enable.idempotence", True)
        self._producer = Producer(pconf)
        self._lock = threading.Lock()
        self._waiters: Dict[str, List[Future]] = {}
        self._seen: "collections.OrderedDict[str, Result]" = \
            collections.OrderedDict()
        self._kept = results_kept
        self._watcher: Optional[_Watcher] = None
        self._closed = False

    # --- lifecycle -------------------------------------------------------

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self, timeout: float = 30.0) -> None:
        """Flushes what was produced, stops the watcher; pending futures
        fail with RuntimeError."""
        if self._closed:
            return
        self._closed = True
        self._producer.flush(timeout)
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher.join(timeout)
        with self._lock:
            waiters, self._waiters = self._waiters, {}
        for futs in waiters.values():
            for fut in futs:
                if not fut.done():
                    fut.set_exception(RuntimeError("swarmq client closed"))
        # Dropped now, not at garbage collection: an idle producer would
        # keep connecting to a cluster that may be gone.
        del self._producer

    def watch(self, timeout: float = 30.0) -> None:
        """Starts reading results now (``submit`` and ``wait`` do it
        themselves): results written from now on can be waited for."""
        with self._lock:
            if self._closed:
                raise RuntimeError("swarmq client closed")
            if self._watcher is not None:
                return
            self._watcher = _Watcher(self)
            watcher = self._watcher
        watcher.start_and_wait(timeout)

    # --- submitting --------------------------------------------------------

    def _as_task(self, task: Optional[Task], fields: Mapping[str, Any]
                 ) -> Task:
        if task is None:
            return Task(**fields)
        if fields:
            raise TypeError("pass a Task or its fields, not both")
        return task

    def _produce(self, task: Task,
                 on_done: Callable[[Optional[str]], None]) -> None:
        if self._closed:
            raise RuntimeError("swarmq client closed")
        topic = self.topics.critical if \
            Priority(task.priority) is Priority.CRITICAL else self.topics.tasks
        value = self.codec.encode_task(task, topic)

        def report(err: Optional[KafkaError], _msg: Any) -> None:
            on_done(None if err is None else str(err))

        while True:
            try:
                self._producer.produce(topic, value=value,
                                       key=task.key or task.id,
                                       on_delivery=report)
                break
            except BufferError:
                self._producer.poll(0.1)  # queue full: let it drain
        self._producer.poll(0)

    def submit(self, task: Optional[Task] = None, /, *,
               timeout: float = 30.0, **fields: Any) -> str:
        """Submits one task; returns its id once Kafka acknowledged it.

        Pass a ``Task`` or its fields (``submit(type="echo",
        payload=b"hi")``). Raises ValueError for a task swarmq would
        refuse, SubmitError when Kafka did not take it.
        """
        return self.submit_many([self._as_task(task, fields)],
                                timeout=timeout)[0]

    def submit_many(self, tasks: Iterable[Task], *,
                    timeout: float = 60.0) -> List[str]:
        """Submits tasks in one batch; returns their ids in order once all
        are acknowledged, or raises SubmitError naming those that failed."""
        self.watch()
        tasks = list(tasks)
        failed: Dict[str, str] = {}
        # Delivery reports may be served by any thread that polls the
        # producer (the watcher does): list.append is atomic.
        reported: List[str] = []

        def done(tid: str) -> Callable[[Optional[str]], None]:
            def cb(err: Optional[str]) -> None:
                if err is not None:
                    failed[tid] = err
                reported.append(tid)
            return cb

        for task in tasks:
            task.validate()
        for task in tasks:
            self._produce(task, done(task.id))
        deadline = time.monotonic() + timeout
        while len(reported) < len(tasks) and time.monotonic() < deadline:
            self._producer.flush(min(0.5, max(0.0,
                                             deadline - time.monotonic())))
        if len(reported) < len(tasks):
            done_ids = set(reported)
            for task in tasks:
                if task.id not in done_ids:
                    failed.setdefault(task.id, "no delivery report within "
                                      f"{timeout} s")
        if failed:
            raise SubmitError(failed)
        return [t.id for t in tasks]

    def submit_async(self, task: Optional[Task] = None, /,
                     **fields: Any) -> "Future[Result]":
        """Submits a task and returns a Future of its Result; the future
        fails with SubmitError when Kafka does not take the task."""
        task = self._as_task(task, fields)
        task.validate()
        self.watch()
        fut = self.result_future(task.id)

        def done(err: Optional[str]) -> None:
            if err is not None and not fut.done():
                self._forget(task.id, fut)
                fut.set_exception(SubmitError({task.id: err}))

        self._produce(task, done)
        return fut

    def run(self, task: Optional[Task] = None, /, *,
            timeout: Optional[float] = None, **fields: Any) -> Result:
        """Submits a task and blocks until its Result (TimeoutError after
        ``timeout`` seconds)."""
        task = self._as_task(task, fields)
        self.submit(task)
        return self.wait(task.id, timeout=timeout)

    def cancel(self, task_id: str, by: str = "swarmq-python") -> None:
        """Asks every swarmq instance to cancel a task by id (a control
        record, docs/delayed-and-cancel.md); its result will be CANCELLED
        unless it already finished."""
        if self._closed:
            raise RuntimeError("swarmq client closed")
        value = json.dumps({"cancel": task_id, "at": int(time.time() * 1000),
                            "by": by}).encode("utf-8")
        errs: List[str] = []
        self._producer.produce(self.topics.control, value=value, key=task_id,
                               on_delivery=lambda e, _m: e and errs.append(
                                   str(e)))
        self._producer.flush(30.0)
        if errs:
            raise SubmitError({task_id: errs[0]})

    def flush(self, timeout: float = 30.0) -> int:
        """Waits for outstanding deliveries; the number still pending."""
        if self._closed:
            return 0
        return self._producer.flush(timeout)

    # --- waiting -----------------------------------------------------------

    def _deliver(self, result: Result) -> None:
        with self._lock:
            if result.task_id not in self._seen:
                self._seen[result.task_id] = result
                while len(self._seen) > self._kept:
                    self._seen.popitem(last=False)
            futs = self._waiters.pop(result.task_id, [])
        for fut in futs:
            if not fut.done():
                fut.set_result(result)

    def _forget(self, task_id: str, fut: Future) -> None:
        with self._lock:
            futs = self._waiters.get(task_id, [])
            if fut in futs:
                futs.remove(fut)
            if not futs:
                self._waiters.pop(task_id, None)

    def result_future(self, task_id: str) -> "Future[Result]":
        """A Future completed with the task's first result read after this
        client started watching (see ``watch``)."""
        self.watch()
        fut: "Future[Result]" = Future()
        with self._lock:
            hit = self._seen.get(task_id)
            if hit is None:
                self._waiters.setdefault(task_id, []).append(fut)
        if hit is not None:
            fut.set_result(hit)
        return fut

    def wait(self, task_id: str, timeout: Optional[float] = None) -> Result:
        """Blocks until the task's result; TimeoutError after ``timeout``
        seconds (None: forever)."""
        fut = self.result_future(task_id)
        try:
            return fut.result(timeout)
        except (TimeoutError, _FutureTimeout):
            self._forget(task_id, fut)
            raise TimeoutError(f"no result for task {task_id} within "
                               f"{timeout} s") from None

    def wait_all(self, task_ids: Iterable[str],
                 timeout: Optional[float] = None) -> Dict[str, Result]:
        """Blocks until every task has a result; a dict by task id.
        TimeoutError names how many (and the first) are missing."""
        ids = list(dict.fromkeys(task_ids))
        futs = {tid: self.result_future(tid) for tid in ids}
        deadline = None if timeout is None else time.monotonic() + timeout
        out: Dict[str, Result] = {}
        for tid, fut in futs.items():
            left = None if deadline is None else \
                max(0.0, deadline - time.monotonic())
            try:
                out[tid] = fut.result(left)
            except (TimeoutError, _FutureTimeout):
                break
        missing = [tid for tid in ids if tid not in out]
        if missing:
            for tid in missing:
                self._forget(tid, futs[tid])
            raise TimeoutError(f"{len(missing)} of {len(ids)} tasks have no "
                               f"result within {timeout} s (first: "
                               f"{missing[0]})")
        return out

    # --- replay ------------------------------------------------------------

    def results(self, start: Start = "beginning", *, follow: bool = False,
                task_id: Optional[str] = None,
                idle_timeout: Optional[float] = None) -> Iterator[Result]:
        """Reads the results topic from ``start``.

        ``start``: "beginning", "end", a datetime (the first record at or
        after it: offsets-for-times, real Kafka only) or {partition:
        offset}. Stops at the end offsets seen when it began unless
        ``follow``; with ``follow``, stops after ``idle_timeout`` seconds
        without a record (None: never). ``task_id`` filters.
        """
        for rec in self._replay(self.topics.results, "result", start, follow,
                                idle_timeout):
            assert isinstance(rec, Result)
            if task_id is None or rec.task_id == task_id:
                yield rec

    def events(self, start: Start = "beginning", *, follow: bool = False,
               task_id: Optional[str] = None,
               types: Optional[Sequence[str]] = None,
               idle_timeout: Optional[float] = None) -> Iterator[Event]:
        """Reads the events topic like ``results()``; ``types`` keeps only
        those event types (docs/wire.md, "Event types")."""
        for rec in self._replay(self.topics.events, "event", start, follow,
                                idle_timeout):
            assert isinstance(rec, Event)
            if task_id is not None and rec.task_id != task_id:
                continue
            if types is not None and rec.type not in types:
                continue
            yield rec

    def _replay(self, topic: str, kind: str, start: Start, follow: bool,
                idle_timeout: Optional[float]
                ) -> Iterator[Union[Result, Event]]:
        consumer = _consumer(self._kafka, "replay")
        try:
            parts = _partitions(consumer, topic, 10.0)
            if parts is None:
                if not follow:
                    return
                parts = []
            positions = self._start_offsets(consumer, topic, parts, start)
            ends: Dict[int, int] = {}
            for p in parts:
                _, high = _watermarks(consumer, TopicPartition(topic, p))
                if positions[p] < high:
                    ends[p] = high
            if not follow and not ends:
                return
            consumer.assign([TopicPartition(topic, p, positions[p])
                             for p in parts])
            last = time.monotonic()
            while True:
                msgs = consumer.consume(500, timeout=0.2)
                if msgs:
                    last = time.monotonic()
                for msg in msgs:
                    if msg.error() is not None:
                        if msg.error().code() == KafkaError._PARTITION_EOF:
                            continue
                        raise KafkaException(msg.error())
                    p = msg.partition()
                    if not follow and (p not in ends or
                                       msg.offset() >= ends[p]):
                        continue
                    coords = Coordinates(topic, p, msg.offset(),
                                         msg.timestamp()[1])
                    try:
                        yield (self.codec.decode_result if kind == "result"
                               else self.codec.decode_event)(
                                   msg.value() or b"", coords)
                    except DecodeError as e:
                        raise DecodeError(f"{topic}[{p}]@{msg.offset()}: "
                                          f"{e}") from None
                    if not follow and msg.offset() + 1 >= ends[p]:
                        del ends[p]
                if not follow and not ends:
                    return
                if follow and idle_timeout is not None and \
                        time.monotonic() - last >= idle_timeout:
                    return
        finally:
            consumer.close()

    def _start_offsets(self, consumer: Consumer, topic: str,
                       parts: List[int], start: Start) -> Dict[int, int]:
        out: Dict[int, int] = {}
        if isinstance(start, _dt.datetime):
            ms = to_ms(start)
            got = consumer.offsets_for_times(
                [TopicPartition(topic, p, ms) for p in parts], timeout=10.0)
            for tp in got:
                if tp.error is not None:
                    raise KafkaException(tp.error)
                if tp.offset < 0:  # nothing at or after that time
                    _, tp.offset = _watermarks(
                        consumer, TopicPartition(topic, tp.partition))
                out[tp.partition] = tp.offset
            return out
        for p in parts:
            low, high = _watermarks(consumer, TopicPartition(topic, p))
            if start == "beginning":
                out[p] = low
            elif start == "end":
                out[p] = high
            elif isinstance(start, Mapping):
                out[p] = max(low, int(start.get(p, low)))
            else:
                raise ValueError(f"start must be 'beginning', 'end', a "
                                 f"datetime or {{partition: offset}}, not "
                                 f"{start!r}")
        return out
