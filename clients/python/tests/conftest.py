# SPDX-License-Identifier: Apache-2.0
"""Fixtures: real swarmq-consumer processes for the client to talk to.

DESIGN: every test talks to a real ``swarmq-consumer`` (from SWARMQ_BUILD,
the CMake build folder) through Kafka, as a user would. One consumer per
test module and configuration (module-scoped fixtures), so the 3 s group
join is paid once per module. Where the broker comes from is chosen by
the pytest mark each test module carries:

  embedded  the consumer's own ``--embedded-broker`` (librdkafka's mock
            cluster; it prints ``bootstrap.servers=``).
  kafka     the real Apache Kafka broker of the ctest fixture (ops/kafka.sh,
            state in SQ_KAFKA_STATE); each consumer gets topics and a group
            of its own, so runs sharing the broker never meet.
  registry  a Schema Registry too (ops/registry.sh, state in
            SQ_TEST_REGISTRY_STATE), the consumer's schema.registry.url.

A module whose broker or registry is not running is skipped with the
reason, never failed: ctest's fixtures start them (tests/CMakeLists.txt).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from swarmq import Client, Event, Topics

SRC = Path(__file__).resolve().parents[3]
BUILD = Path(os.environ.get("SWARMQ_BUILD", SRC / "build"))


@dataclass
class Swarmq:
    """A running consumer: where to reach it and the topics it uses."""

    bootstrap: str
    http: str
    topics: Topics
    registry: Optional[str]
    proc: subprocess.Popen
    log: Path


def _wait_line(path: Path, key: str, proc: subprocess.Popen,
               timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text().splitlines():
            if line.startswith(key + "="):
                return line.split("=", 1)[1]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"swarmq-consumer printed no {key}= within "
                       f"{timeout} s (exit {proc.poll()})")


def _ready(http: str, proc: subprocess.Popen, log: Path,
           timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(http + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"swarmq-consumer not ready within {timeout} s; "
                       f"log:\n{log.read_text()[-3000:]}")


def registry_url() -> Optional[str]:
    """The test registry's URL, or None when none runs."""
    state = os.environ.get("SQ_TEST_REGISTRY_STATE")
    if not state or not (Path(state) / "url").exists():
        return None
    m = re.search(r"^schema\.registry\.url=(.+)$",
                  (Path(state) / "url").read_text(), re.M)
    return m.group(1).strip() if m else None


def kafka_bootstrap() -> Optional[str]:
    """The real Kafka broker of the ctest fixture, or None."""
    state = os.environ.get("SQ_KAFKA_STATE", str(BUILD / "tests" / "kafka"))
    try:
        out = subprocess.run(["bash", str(SRC / "ops" / "kafka.sh"), "env",
                              "--state-dir", state], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"^bootstrap\.servers=(.+)$", out, re.M)
    return m.group(1).strip() if m else None


def start_swarmq(name: str, tmp: Path, *, kafka: Optional[str] = None,
                 registry: Optional[str] = None,
                 extra: Optional[Dict[str, str]] = None) -> Swarmq:
    """Starts swarmq-consumer (embedded broker unless ``kafka``) and waits
    until it is ready (its group has its partitions)."""
    binary = BUILD / "consumer" / "swarmq-consumer"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build swarmq first "
                    f"(bash ops/build.sh build) or set SWARMQ_BUILD")
    args: List[str] = [str(binary), "--http-port", "auto", "-i", name,
                       "-X", "executor.threads=2"]
    topics = Topics()
    if kafka is None:
        args.append("--embedded-broker")
    else:
        prefix = f"pyclient-{name}-{uuid.uuid4().hex[:8]}"
        topics = Topics(tasks=prefix + "-tasks",
                        critical=prefix + "-critical",
                        results=prefix + "-results",
                        events=prefix + "-events",
                        control=prefix + "-control")
        args += ["-b", kafka, "-g", prefix + "-group",
                 "-X", f"topic.tasks={topics.tasks}",
                 "-X", f"topic.critical={topics.critical}",
                 "-X", f"topic.results={topics.results}",
                 "-X", f"topic.events={topics.events}",
                 "-X", f"topic.control={topics.control}",
                 "-X", f"topic.retry={prefix}-retry",
                 "-X", f"topic.dlt={prefix}-dlt"]
    if registry is not None:
        args += ["-X", f"schema.registry.url={registry}"]
    for k, v in (extra or {}).items():
        args += ["-X", f"{k}={v}"]
    out, log = tmp / f"{name}.out", tmp / f"{name}.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SWARMQ_")}  # the consumer reads SWARMQ_*
    proc = subprocess.Popen(args, stdout=open(out, "w"),
                            stderr=open(log, "w"), env=env)
    try:
        bootstrap = _wait_line(out, "bootstrap.servers", proc, 30) \
            if kafka is None else kafka
        http = _wait_line(out, "http.url", proc, 30)
        _ready(http, proc, log)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return Swarmq(bootstrap, http, topics, registry, proc, log)


def stop_swarmq(sq: Swarmq) -> None:
    """SIGTERM, and the consumer must exit 0 (drain, commit, close)."""
    sq.proc.send_signal(signal.SIGTERM)
    try:
        rc = sq.proc.wait(60)
    except subprocess.TimeoutExpired:
        sq.proc.kill()
        sq.proc.wait()
        pytest.fail(f"swarmq-consumer did not stop within 60 s of SIGTERM")
    assert rc == 0, f"swarmq-consumer exited {rc}; log:\n" \
        f"{sq.log.read_text()[-3000:]}"


# A task's last event: after it the instance writes none for that task id.
TERMINAL_EVENTS = {"succeeded", "dead_lettered", "cancelled",
                   "duplicate_dropped", "failed", "timed_out"}


def task_events(client: Client, task_id: str, start="beginning",
                timeout: float = 30.0) -> List[Event]:
    """The events of one task id, up to and including its terminal one.

    The terminal event is written beside the result, not before it, so a
    reader that has just seen the result may not see the event yet
    (docs/wire.md): follow the topic until it comes. Gives what was read
    when ``timeout`` seconds pass with no record, so the caller's assert
    names what is missing."""
    events: List[Event] = []
    for e in client.events(start=start, follow=True, task_id=task_id,
                           idle_timeout=timeout):
        events.append(e)
        if e.type in TERMINAL_EVENTS:
            break
    return events


@pytest.fixture(scope="module")
def registry() -> str:
    url = registry_url()
    if url is None:
        pytest.skip("no schema registry (ctest fixture registry.start, or "
                    "bash ops/registry.sh start --state-dir DIR and "
                    "SQ_TEST_REGISTRY_STATE=DIR)")
    return url


@pytest.fixture(scope="module")
def kafka() -> str:
    bootstrap = kafka_bootstrap()
    if bootstrap is None:
        pytest.skip("no real Kafka broker (ctest fixture broker.start, or "
                    "bash ops/kafka.sh start --state-dir DIR and "
                    "SQ_KAFKA_STATE=DIR)")
    return bootstrap


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("swarmq")


def swarmq_fixture(name: str, **kw: object) -> Iterator[Swarmq]:
    """Starts one consumer for a module and stops it after the module."""
    sq = start_swarmq(name, **kw)  # type: ignore[arg-type]
    try:
        yield sq
    finally:
        stop_swarmq(sq)
