"""The native engine of factstr. Import from `factstr`, not from here."""

from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from os import PathLike
from pathlib import Path
from typing import Any, Literal, final

from typing_extensions import Self, disjoint_base

__all__ = [
    "AppendResult",
    "DurableStream",
    "DurableStreamInfo",
    "EventFilter",
    "EventQuery",
    "EventRecord",
    "EventStore",
    "EventStream",
    "MemoryStore",
    "NewEvent",
    "PostgresStore",
    "QueryResult",
    "SqliteStore",
    "Subscription",
    "_after_fork_in_child",
    "_exit_streams",
]

# A JSON value: dict[str, JSON], list/tuple of JSON, str, int, float, bool or None.
_JSON = Any
_Handler = Callable[[list[EventRecord]], object]

@final
class NewEvent:
    """An event to append: its type and its JSON payload (validated at construction)."""

    def __new__(cls, event_type: str, payload: _JSON) -> Self: ...
    @property
    def event_type(self) -> str: ...
    @property
    def payload(self) -> _JSON: ...

@final
class EventFilter:
    """Facts whose type is one of `event_types` AND whose payload contains one of
    `payload_predicates`. `None` means any; `[]` means nothing."""

    def __new__(
        cls,
        event_types: Sequence[str] | None = None,
        payload_predicates: Sequence[_JSON] | None = None,
    ) -> Self: ...
    @property
    def event_types(self) -> list[str] | None: ...
    @property
    def payload_predicates(self) -> list[_JSON] | None: ...

@final
class EventQuery:
    """Facts matching any of `filters` (all facts when `None` or empty), after
    `min_sequence_number` when given."""

    def __new__(
        cls,
        filters: Sequence[EventFilter] | None = None,
        min_sequence_number: int | None = None,
    ) -> Self: ...
    @staticmethod
    def all() -> EventQuery: ...
    @staticmethod
    def for_event_types(types: Sequence[str]) -> EventQuery: ...
    def with_filters(self, filters: Sequence[EventFilter] | None) -> EventQuery: ...
    def with_min_sequence_number(self, min_sequence_number: int | None) -> EventQuery: ...
    @property
    def filters(self) -> list[EventFilter] | None: ...
    @property
    def min_sequence_number(self) -> int | None: ...

@final
class EventRecord:
    """A committed fact."""

    def __new__(cls, sequence_number: int, occurred_at: datetime, event_type: str, payload: _JSON) -> Self: ...
    @property
    def sequence_number(self) -> int: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def event_type(self) -> str: ...
    @property
    def payload(self) -> _JSON: ...

@final
class QueryResult:
    @property
    def event_records(self) -> list[EventRecord]: ...
    @property
    def last_returned_sequence_number(self) -> int | None: ...
    @property
    def current_context_version(self) -> int | None: ...
    @property
    def head_sequence_number(self) -> int | None: ...

@final
class AppendResult:
    @property
    def first_sequence_number(self) -> int: ...
    @property
    def last_sequence_number(self) -> int: ...
    @property
    def committed_count(self) -> int: ...
    def __hash__(self) -> int: ...

@final
class DurableStream:
    """The identity of a durable stream; a plain `str` name works wherever one is taken."""

    def __new__(cls, name: str) -> Self: ...
    @property
    def name(self) -> str: ...
    def __hash__(self) -> int: ...

@final
class DurableStreamInfo:
    @property
    def name(self) -> str: ...
    @property
    def query(self) -> EventQuery: ...
    @property
    def last_processed_sequence_number(self) -> int: ...

@final
class EventStream:
    """A running handler registration."""

    @property
    def id(self) -> int: ...
    @property
    def active(self) -> bool: ...
    @property
    def error(self) -> BaseException | None: ...
    def unsubscribe(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        *_args: type[BaseException] | BaseException | TracebackType | None,
    ) -> None: ...

@final
class Subscription:
    """A blocking iterator of committed batches."""

    def __iter__(self) -> Self: ...
    def __next__(self) -> list[EventRecord]: ...
    def next_batch(self, timeout: float | None = None) -> list[EventRecord] | None: ...
    def ack(self) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        *_args: type[BaseException] | BaseException | TracebackType | None,
    ) -> None: ...

@disjoint_base
class EventStore:
    """The operations every store offers (SPEC §11)."""

    def append(self, events: Sequence[NewEvent]) -> AppendResult: ...
    def append_if(
        self,
        events: Sequence[NewEvent],
        context_query: EventQuery,
        expected_context_version: int | None,
    ) -> AppendResult: ...
    def append_unless(
        self,
        events: Sequence[NewEvent],
        fail_if_events_match: EventQuery,
        after: int | None = None,
    ) -> AppendResult: ...
    def query(self, query: EventQuery | None = None, *, limit: int | None = None) -> QueryResult: ...
    def stream_all(self, handler: _Handler) -> EventStream: ...
    def stream_to(self, query: EventQuery, handler: _Handler) -> EventStream: ...
    def stream_all_durable(self, durable: str | DurableStream, handler: _Handler) -> EventStream: ...
    def stream_to_durable(self, durable: str | DurableStream, query: EventQuery, handler: _Handler) -> EventStream: ...
    def subscribe(self, query: EventQuery | None = None, *, durable: str | DurableStream | None = None) -> Subscription: ...
    def durable_streams(self) -> list[DurableStreamInfo]: ...
    def reset_durable_stream(self, name: str | DurableStream, sequence_number: int | None = None) -> None: ...
    def delete_durable_stream(self, name: str | DurableStream) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        *_args: type[BaseException] | BaseException | TracebackType | None,
    ) -> None: ...

@final
class MemoryStore(EventStore):
    """The whole contract in process memory; facts live as long as the store object."""

    def __new__(cls) -> Self: ...

@final
class SqliteStore(EventStore):
    """The whole contract in one SQLite file (WAL), shared by threads and processes."""

    def __new__(
        cls,
        path: str | PathLike[str],
        *,
        synchronous: Literal["full", "normal"] = "full",
        poll_interval: float = 0.01,
        busy_timeout: float = 5.0,
    ) -> Self: ...
    @property
    def path(self) -> Path: ...

@final
class PostgresStore(EventStore):
    """The whole contract on a PostgreSQL database, shared by processes and machines."""

    def __new__(
        cls,
        url: str,
        *,
        pool_size: int = 4,
        connect_timeout: float = 5.0,
        reconnect_timeout: float = 30.0,
        statement_timeout: float = 30.0,
    ) -> Self: ...
    @staticmethod
    def bootstrap(
        server_url: str,
        database_name: str,
        *,
        pool_size: int = 4,
        connect_timeout: float = 5.0,
        reconnect_timeout: float = 30.0,
        statement_timeout: float = 30.0,
    ) -> PostgresStore: ...
    @property
    def url(self) -> str: ...

def _exit_streams(grace: float) -> None: ...
def _after_fork_in_child() -> None: ...
