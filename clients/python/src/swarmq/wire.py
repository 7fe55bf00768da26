# SPDX-License-Identifier: Apache-2.0
"""Encoding tasks and decoding results and events, as docs/wire.md says.

DESIGN: a ``Codec`` knows where schema ids come from. Without a registry
they are swarmq's embedded catalog (task 1 or 5, result 2, 6 or 8, event 3
or 9); with one (``schema_registry_url``) the task schema is registered
under ``<topic>-value`` (Confluent's TopicNameStrategy, as swarmq does) and
results and events are decoded by fetching their writer schema by id
(cached: an id's schema never changes) and resolving it against this
package's copy of the current schema, so a newer swarmq's records still
read. A value whose first byte is ``{`` is swarmq's JSON output and needs
no schema. Logical types are stripped before fastavro sees a schema:
times stay integer milliseconds (records.py), never datetimes.

The registry is spoken to with the standard library (urllib): two calls of
the Confluent REST API, ``POST /subjects/{subject}/versions`` and
``GET /schemas/ids/{id}``, with optional basic auth and CA file.
"""

from __future__ import annotations

import base64
import io
import json
import ssl
import struct
import threading
import urllib.error
import urllib.parse
import urllib.request
from importlib import resources
from typing import Any, Dict, Optional, Tuple

import fastavro

from .records import Coordinates, Event, Result, Task

__all__ = ["Codec", "DecodeError", "RegistryError", "SchemaRegistry",
           "CATALOG_IDS"]

#: The embedded catalog's ids (schemas/README.md), used without a registry.
CATALOG_IDS = {"task.avsc": 1, "result.avsc": 2, "event.avsc": 3,
               "task-v2.avsc": 5, "result-v2.avsc": 6,
               "result-v3.avsc": 8, "event-v2.avsc": 9}


class DecodeError(ValueError):
    """A record that is not a swarmq result or event (the message says
    which byte or schema id)."""


class RegistryError(RuntimeError):
    """The schema registry refused a request or did not answer."""


def _strip_logical(node: Any) -> Any:
    """The schema without logicalType annotations (times stay longs)."""
    if isinstance(node, dict):
        return {k: _strip_logical(v) for k, v in node.items()
                if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical(v) for v in node]
    return node


def _load(name: str) -> Tuple[str, Any]:
    """A schema shipped with the package: its text and parsed form."""
    text = resources.files("swarmq").joinpath("schemas", name).read_text(
        encoding="utf-8")
    return text, fastavro.parse_schema(_strip_logical(json.loads(text)))


class SchemaRegistry:
    """A minimal Confluent-REST Schema Registry client (register, fetch).

    ``url`` is the API root (Confluent's, or Apicurio's
    ``.../apis/ccompat/v7``); ``basic_auth`` is ``"user:password"``;
    ``ca_location`` a PEM file for an https registry.
    """

    def __init__(self, url: str, basic_auth: Optional[str] = None,
                 ca_location: Optional[str] = None,
                 timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._headers = {
            "Content-Type": "application/vnd.schemaregistry.v1+json",
            "Accept": "application/vnd.schemaregistry.v1+json, "
                      "application/json"}
        if basic_auth:
            self._headers["Authorization"] = "Basic " + base64.b64encode(
                basic_auth.encode("utf-8")).decode("ascii")
        self._ssl = ssl.create_default_context(cafile=ca_location) \
            if ca_location else None
        self._by_id: Dict[int, str] = {}
        self._lock = threading.Lock()

    def _call(self, method: str, path: str,
              body: Optional[Dict[str, Any]] = None) -> Any:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(self.url + path, data=data,
                                     method=method, headers=self._headers)
        try:
            with urllib.request.urlopen(req, timeout=self._timeout,
                                        context=self._ssl) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:300]
            raise RegistryError(f"schema registry {self.url}: {method} "
                                f"{path} answered HTTP {e.code}: "
                                f"{detail}") from None
        except (urllib.error.URLError, OSError) as e:
            raise RegistryError(f"schema registry {self.url}: {method} "
                                f"{path} failed: {e}") from None

    def register(self, subject: str, schema: str) -> int:
        """Registers (or finds) ``schema`` under ``subject``; its id."""
        got = self._call("POST", "/subjects/" + urllib.parse.quote(
            subject, safe="") + "/versions", {"schema": schema})
        schema_id = int(got["id"])
        with self._lock:
            self._by_id[schema_id] = schema
        return schema_id

    def schema(self, schema_id: int) -> str:
        """The schema text of an id (cached)."""
        with self._lock:
            hit = self._by_id.get(schema_id)
        if hit is not None:
            return hit
        got = self._call("GET", f"/schemas/ids/{schema_id}")
        text = got["schema"]
        with self._lock:
            self._by_id[schema_id] = text
        return text


class Codec:
    """Frames tasks and reads results and events, with catalog or registry
    ids. Thread-safe."""

    def __init__(self, registry: Optional[SchemaRegistry] = None) -> None:
        self.registry = registry
        self._task_v1 = _load("task.avsc")
        self._task_v2 = _load("task-v2.avsc")
        # The readers are the current schemas: a workflow's tasks'
        # results and events (ids 8 and 9) give their workflow_id and
        # parent_id; older records read them as null (their default).
        self._result = _load("result-v3.avsc")
        self._event = _load("event-v2.avsc")
        # Catalog id -> parsed writer schema.
        self._catalog = {
            1: self._task_v1[1],
            2: _load("result.avsc")[1],
            3: _load("event.avsc")[1],
            6: _load("result-v2.avsc")[1],
            8: self._result[1],
            9: self._event[1],
        }
        self._task_ids: Dict[str, int] = {}
        self._writers: Dict[int, Any] = {}
        self._lock = threading.Lock()

    # --- tasks -----------------------------------------------------------

    def task_schema_id(self, topic: str) -> int:
        """The registry id of the current Task schema under
        ``<topic>-value``, registered on first use."""
        assert self.registry is not None
        with self._lock:
            hit = self._task_ids.get(topic)
        if hit is None:
            hit = self.registry.register(topic + "-value", self._task_v2[0])
            with self._lock:
                self._task_ids[topic] = hit
        return hit

    def encode_task(self, task: Task, topic: str) -> bytes:
        """The framed Avro value of a task for ``topic``."""
        task.validate()
        rec = task.to_avro()
        if self.registry is not None:
            schema_id, schema = self.task_schema_id(topic), self._task_v2[1]
        elif task.not_before_ms is None:
            # Catalog id 1 (task.avsc): the bytes swarmq's own tools write
            # when not_before is unused, readable a version back.
            schema_id, schema = 1, self._task_v1[1]
            del rec["not_before"]
        else:
            schema_id, schema = 5, self._task_v2[1]
        buf = io.BytesIO()
        buf.write(struct.pack(">bI", 0, schema_id))
        fastavro.schemaless_writer(buf, schema, rec)
        return buf.getvalue()

    # --- results and events ----------------------------------------------

    def _writer(self, schema_id: int) -> Any:
        assert self.registry is not None
        with self._lock:
            hit = self._writers.get(schema_id)
        if hit is None:
            try:
                text = self.registry.schema(schema_id)
            except RegistryError as e:
                raise DecodeError(f"schema id {schema_id}: {e}") from None
            hit = fastavro.parse_schema(_strip_logical(json.loads(text)))
            with self._lock:
                self._writers[schema_id] = hit
        return hit

    def _decode_avro(self, value: bytes, kind: str) -> Dict[str, Any]:
        if len(value) < 5 or value[0] != 0:
            raise DecodeError(f"not a swarmq {kind}: byte 0 is "
                              f"{value[:1].hex() or 'missing'}, expected 00 "
                              f"(Avro framing) or '{{' (JSON)")
        schema_id = struct.unpack(">I", value[1:5])[0]
        reader = self._result[1] if kind == "result" else self._event[1]
        if self.registry is not None:
            writer = self._writer(schema_id)
        else:
            want = (2, 6, 8) if kind == "result" else (3, 9)
            if schema_id not in want:
                raise DecodeError(
                    f"schema id {schema_id} is not a catalog {kind} id "
                    f"({', '.join(map(str, want))}); was it written with a "
                    f"schema registry (schema_registry_url)?")
            writer = self._catalog[schema_id]
        buf = io.BytesIO(value[5:])
        try:
            rec = fastavro.schemaless_reader(buf, writer, reader)
        except Exception as e:  # fastavro raises several types
            raise DecodeError(f"{kind} with schema id {schema_id} does not "
                              f"decode: {e}") from None
        if buf.tell() != len(value) - 5:
            raise DecodeError(f"{kind} with schema id {schema_id}: "
                              f"{len(value) - 5 - buf.tell()} bytes left "
                              f"after the record")
        return rec

    def decode_result(self, value: bytes,
                      record: Optional[Coordinates] = None) -> Result:
        """A Result from a record value (Avro, or swarmq's JSON)."""
        if value[:1] == b"{":
            try:
                return Result.from_dict(json.loads(value), record)
            except (ValueError, KeyError, TypeError) as e:
                raise DecodeError(f"JSON result does not read: {e!r}") \
                    from None
        return Result.from_avro(self._decode_avro(value, "result"), record)

    def decode_event(self, value: bytes,
                     record: Optional[Coordinates] = None) -> Event:
        """An Event from a record value (Avro, or swarmq's JSON)."""
        if value[:1] == b"{":
            try:
                return Event.from_dict(json.loads(value), record)
            except (ValueError, KeyError, TypeError) as e:
                raise DecodeError(f"JSON event does not read: {e!r}") \
                    from None
        return Event.from_avro(self._decode_avro(value, "event"), record)

