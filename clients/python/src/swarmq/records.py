# SPDX-License-Identifier: Apache-2.0
"""The records of swarmq's wire contract as Python dataclasses.

DESIGN: one class per schema (Task, Result, Event; docs/wire.md), with the
schemas' field names. Times are kept as what is on the wire, integer
milliseconds since the Unix epoch, under ``<field>_ms`` (the names of
swarmq's JSON output), so ``json.dumps(result.to_dict())`` always works;
the ``<field>`` properties give timezone-aware datetimes for those who want
them. ``to_dict()`` writes, and ``from_dict()`` reads, the JSON form of
``output.format=json`` (bytes as base64 under ``<field>_base64``), so a
Result read from Avro and one read from JSON compare equal.
"""

from __future__ import annotations

import base64
import datetime as _dt
import enum
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

__all__ = ["Priority", "Status", "Task", "Result", "Event", "Source",
           "Coordinates", "ms_to_datetime", "to_ms"]


class Priority(str, enum.Enum):
    """A task's scheduling priority (task.avsc ``Priority``)."""

    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class Status(str, enum.Enum):
    """How a task ended (result-v2.avsc ``Status``)."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    DEAD_LETTERED = "DEAD_LETTERED"
    CANCELLED = "CANCELLED"


def ms_to_datetime(ms: int) -> _dt.datetime:
    """Milliseconds since the Unix epoch as an aware UTC datetime."""
    return _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc) + \
        _dt.timedelta(milliseconds=ms)


def to_ms(when: Union[int, float, _dt.datetime]) -> int:
    """A time as integer milliseconds since the Unix epoch.

    An int is taken as milliseconds already, a float as seconds (like
    ``time.time()``), a naive datetime as UTC.
    """
    if isinstance(when, bool):
        raise TypeError("a time must be int milliseconds, float seconds "
                        "or a datetime, not a bool")
    if isinstance(when, int):
        return when
    if isinstance(when, float):
        return int(when * 1000)
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        return int(when.timestamp() * 1000)
    raise TypeError(f"a time must be int milliseconds, float seconds or a "
                    f"datetime, not {type(when).__name__}")


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Task:
    """A task to submit (task-v2.avsc). Only ``type`` is required: the id
    defaults to a random UUID and ``created_at_ms`` to now."""

    type: str
    payload: Union[bytes, str] = b""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    priority: Priority = Priority.NORMAL
    capabilities: List[str] = field(default_factory=list)
    key: Optional[str] = None
    created_at_ms: int = field(default_factory=_now_ms)
    timeout_ms: int = 0
    max_attempts: int = 3
    attempt: int = 1
    headers: Dict[str, str] = field(default_factory=dict)
    not_before_ms: Optional[int] = None

    def validate(self) -> None:
        """Raises ValueError naming the first field swarmq would refuse."""
        if not isinstance(self.id, str) or not self.id:
            raise ValueError("task id must be a non-empty string")
        if not isinstance(self.type, str) or not self.type:
            raise ValueError(f"task {self.id}: type must be a non-empty "
                             f"string")
        if not isinstance(self.payload, (bytes, bytearray, str)):
            raise ValueError(f"task {self.id}: payload must be bytes or str, "
                             f"not {type(self.payload).__name__}")
        try:
            Priority(self.priority)
        except ValueError:
            raise ValueError(f"task {self.id}: priority {self.priority!r} is "
                             f"not one of LOW, NORMAL, HIGH, CRITICAL") \
                from None
        if self.created_at_ms < 0:
            raise ValueError(f"task {self.id}: created_at_ms must be >= 0")
        if self.timeout_ms < 0:
            raise ValueError(f"task {self.id}: timeout_ms must be >= 0")
        if self.max_attempts < 1:
            raise ValueError(f"task {self.id}: max_attempts must be >= 1")
        if self.attempt < 1:
            raise ValueError(f"task {self.id}: attempt must be >= 1")
        for k, v in self.headers.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValueError(f"task {self.id}: headers must map strings "
                                 f"to strings ({k!r})")

    def payload_bytes(self) -> bytes:
        """The payload as bytes (a str payload is UTF-8 encoded)."""
        if isinstance(self.payload, str):
            return self.payload.encode("utf-8")
        return bytes(self.payload)

    def to_avro(self) -> Dict[str, Any]:
        """The record for task-v2.avsc (times as integer milliseconds)."""
        return {
            "id": self.id, "type": self.type,
            "priority": Priority(self.priority).value,
            "capabilities": list(self.capabilities),
            "payload": self.payload_bytes(), "key": self.key,
            "created_at": self.created_at_ms, "timeout_ms": self.timeout_ms,
            "max_attempts": self.max_attempts, "attempt": self.attempt,
            "headers": dict(self.headers), "not_before": self.not_before_ms,
        }

    def to_json(self) -> Dict[str, Any]:
        """The JSON task form (schemas/README.md, "JSON tasks")."""
        return {
            "id": self.id, "type": self.type,
            "priority": Priority(self.priority).value,
            "capabilities": list(self.capabilities),
            "payload_base64": base64.b64encode(
                self.payload_bytes()).decode("ascii"),
            "key": self.key, "created_at": self.created_at_ms,
            "timeout_ms": self.timeout_ms, "max_attempts": self.max_attempts,
            "attempt": self.attempt, "headers": dict(self.headers),
            "not_before": self.not_before_ms,
        }


def _with_workflow(rec: Any, obj: Dict[str, Any]) -> Dict[str, Any]:
    """``obj`` with the workflow fields of ``rec`` where set (swarmq's
    JSON output leaves them out outside a workflow)."""
    if rec.workflow_id is not None:
        obj["workflow_id"] = rec.workflow_id
    if rec.parent_id is not None:
        obj["parent_id"] = rec.parent_id
    return obj


@dataclass(frozen=True)
class Coordinates:
    """Where a record read from Kafka was: for replay by offset."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int


@dataclass(frozen=True)
class Source:
    """The task record's coordinates, as swarmq put them in a Result."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Result:
    """The outcome of one task (result-v3.avsc), one per task id.

    ``workflow_id`` and ``parent_id`` are the task's workflow and the step
    it follows there (docs/workflows.md); None outside a workflow, and for
    a workflow's own result ``workflow_id`` is its ``task_id``."""

    task_id: str
    status: Status
    output: bytes
    error: Optional[str]
    agent: Optional[str]
    instance: str
    attempts: int
    source: Source
    created_at_ms: int
    started_at_ms: int
    finished_at_ms: int
    workflow_id: Optional[str] = None
    parent_id: Optional[str] = None
    #: Where this result record was read (None when built by hand).
    record: Optional[Coordinates] = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        """True when the task succeeded."""
        return self.status is Status.SUCCEEDED

    @property
    def created_at(self) -> _dt.datetime:
        return ms_to_datetime(self.created_at_ms)

    @property
    def started_at(self) -> Optional[_dt.datetime]:
        """None when the task never started (started_at 0 on the wire)."""
        return ms_to_datetime(self.started_at_ms) if self.started_at_ms \
            else None

    @property
    def finished_at(self) -> _dt.datetime:
        return ms_to_datetime(self.finished_at_ms)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form swarmq writes with ``output.format=json`` (the
        workflow fields only when set, as swarmq writes them)."""
        return _with_workflow(self, {
            "task_id": self.task_id, "status": self.status.value,
            "output_base64": base64.b64encode(self.output).decode("ascii"),
            "error": self.error, "agent": self.agent,
            "instance": self.instance, "attempts": self.attempts,
            "source": {"topic": self.source.topic,
                       "partition": self.source.partition,
                       "offset": self.source.offset},
            "created_at_ms": self.created_at_ms,
            "started_at_ms": self.started_at_ms,
            "finished_at_ms": self.finished_at_ms,
        })

    @classmethod
    def from_avro(cls, rec: Mapping[str, Any],
                  record: Optional[Coordinates] = None) -> "Result":
        """From a record decoded with result-v3.avsc (times as longs)."""
        src = rec["source"]
        return cls(task_id=rec["task_id"], status=Status(rec["status"]),
                   output=bytes(rec["output"]), error=rec["error"],
                   agent=rec["agent"], instance=rec["instance"],
                   attempts=rec["attempts"],
                   source=Source(src["topic"], src["partition"],
                                 src["offset"]),
                   created_at_ms=rec["created_at"],
                   started_at_ms=rec["started_at"],
                   finished_at_ms=rec["finished_at"],
                   workflow_id=rec.get("workflow_id"),
                   parent_id=rec.get("parent_id"), record=record)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any],
                  record: Optional[Coordinates] = None) -> "Result":
        """From swarmq's JSON form (``output.format=json``)."""
        src = obj["source"]
        return cls(task_id=obj["task_id"], status=Status(obj["status"]),
                   output=base64.b64decode(obj["output_base64"],
                                           validate=True),
                   error=obj["error"], agent=obj["agent"],
                   instance=obj["instance"], attempts=obj["attempts"],
                   source=Source(src["topic"], src["partition"],
                                 src["offset"]),
                   created_at_ms=obj["created_at_ms"],
                   started_at_ms=obj["started_at_ms"],
                   finished_at_ms=obj["finished_at_ms"],
                   workflow_id=obj.get("workflow_id"),
                   parent_id=obj.get("parent_id"), record=record)


@dataclass(frozen=True)
class Event:
    """One lifecycle event (event-v2.avsc); ``task_id`` is None for
    instance events. The types are listed in docs/wire.md ("Event
    types"); ``workflow_id`` and ``parent_id`` are the task's, as in
    Result."""

    event_id: str
    task_id: Optional[str]
    type: str
    at_ms: int
    instance: str
    agent: Optional[str]
    detail: Optional[str]
    workflow_id: Optional[str] = None
    parent_id: Optional[str] = None
    record: Optional[Coordinates] = field(default=None, compare=False)

    @property
    def at(self) -> _dt.datetime:
        return ms_to_datetime(self.at_ms)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form swarmq writes with ``output.format=json``."""
        return _with_workflow(self, {
            "event_id": self.event_id, "task_id": self.task_id,
            "type": self.type, "at_ms": self.at_ms,
            "instance": self.instance, "agent": self.agent,
            "detail": self.detail})

    @classmethod
    def from_avro(cls, rec: Mapping[str, Any],
                  record: Optional[Coordinates] = None) -> "Event":
        return cls(event_id=rec["event_id"], task_id=rec["task_id"],
                   type=rec["type"], at_ms=rec["at"],
                   instance=rec["instance"], agent=rec["agent"],
                   detail=rec["detail"], workflow_id=rec.get("workflow_id"),
                   parent_id=rec.get("parent_id"), record=record)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any],
                  record: Optional[Coordinates] = None) -> "Event":
        return cls(event_id=obj["event_id"], task_id=obj["task_id"],
                   type=obj["type"], at_ms=obj["at_ms"],
                   instance=obj["instance"], agent=obj["agent"],
                   detail=obj["detail"], workflow_id=obj.get("workflow_id"),
                   parent_id=obj.get("parent_id"), record=record)
