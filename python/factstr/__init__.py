"""factstr: an event store for Python.

One ordered, append-only log of facts; atomic batch appends; queries by event type and JSON
payload; conditional appends that check their context atomically; live and durable streams.
The engine is written in Rust (`factstr._factstr`); this package is its public, typed face.
"""

from __future__ import annotations

import atexit

from factstr import _factstr
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
]

# Stream threads wait outside the interpreter; stop them before it finalises.
atexit.register(_factstr._shutdown)
