"""factstr: an event store for Python.

One ordered, append-only log of facts; atomic batch appends; queries by event type and JSON
payload; conditional appends that check their context atomically; live and durable streams.
The engine is written in Rust (`factstr._factstr`); this package is its public, typed face.
"""

from __future__ import annotations

from factstr import _streams  # noqa: F401  (stops handler threads at exit; see its docstring)
from factstr._connect import connect
from factstr._errors import (
    BackendError,
    CommitOutcomeUnknown,
    ConditionalAppendConflict,
    DurableReplayError,
    DurableStreamActive,
    DurableStreamError,
    DurableStreamQueryMismatch,
    EmptyAppendError,
    FactstrError,
    StoreClosedError,
)
from factstr._factstr import (
    AppendResult,
    DurableStream,
    DurableStreamInfo,
    EventFilter,
    EventQuery,
    EventRecord,
    EventStore,
    EventStream,
    MemoryStore,
    NewEvent,
    PostgresStore,
    QueryResult,
    SqliteStore,
    Subscription,
)
from factstr._json import json_default

# Single-sourced: maturin writes the Cargo workspace version into the package metadata. Read on
# first use (PEP 562): importing importlib.metadata was most of the time `import factstr` took.
__version__: str


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("factstr")
    raise AttributeError(f"module 'factstr' has no attribute {name!r}")


__all__ = [
    "AppendResult",
    "BackendError",
    "CommitOutcomeUnknown",
    "ConditionalAppendConflict",
    "DurableReplayError",
    "DurableStream",
    "DurableStreamActive",
    "DurableStreamError",
    "DurableStreamInfo",
    "DurableStreamQueryMismatch",
    "EmptyAppendError",
    "EventFilter",
    "EventQuery",
    "EventRecord",
    "EventStore",
    "EventStream",
    "FactstrError",
    "MemoryStore",
    "NewEvent",
    "PostgresStore",
    "QueryResult",
    "SqliteStore",
    "StoreClosedError",
    "Subscription",
    "connect",
    "json_default",
]
