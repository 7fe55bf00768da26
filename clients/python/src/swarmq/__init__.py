# SPDX-License-Identifier: Apache-2.0
"""swarmq: submit tasks to swarmq and read their results, from Python.

    from swarmq import Client

    with Client("127.0.0.1:9092") as client:
        result = client.run(type="sha256", payload=b"hello", timeout=30)
        print(result.status, result.output.hex())

The wire contract this implements is docs/wire.md of the swarmq
repository; ``Client`` is in client.py, the records in records.py, the
framing (embedded catalog, Schema Registry, JSON) in wire.py.
"""

from .client import Client, Start, SubmitError, Topics
from .records import (Coordinates, Event, Priority, Result, Source, Status,
                      Task, ms_to_datetime, to_ms)
from .wire import Codec, DecodeError, RegistryError, SchemaRegistry

__version__ = "0.1.0"

__all__ = ["Client", "Topics", "Start", "SubmitError", "Task", "Result",
           "Event", "Source", "Coordinates", "Priority", "Status", "Codec",
           "DecodeError", "RegistryError", "SchemaRegistry", "ms_to_datetime",
           "to_ms", "__version__"]
