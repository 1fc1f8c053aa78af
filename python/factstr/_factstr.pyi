"""The native engine of factstr. Import from `factstr`, not from here."""

from asyncio import AbstractEventLoop, Future
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import datetime
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Literal, TypeAlias, TypeVar, final, overload

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
    "_AioOpener",
    "_AioSubscriptionCore",
    "_Completions",
    "_Ready",
    "_Restorer",
    "_after_fork_in_child",
    "_after_fork_in_parent",
    "_aio_append",
    "_aio_append_if",
    "_aio_append_unless",
    "_aio_close",
    "_aio_delete_durable_stream",
    "_aio_durable_streams",
    "_aio_engine_threads",
    "_aio_query",
    "_aio_query_page",
    "_aio_reset_durable_stream",
    "_before_fork",
    "_exit_streams",
    "_set_idempotency_retention",
]

# A JSON value as factstr takes it: dict[str, JSON], list/tuple of JSON, str, int, float, bool
# (an int) or None. Covariant (Mapping, Sequence) so that a `dict[str, int]` or `list[str]` fits.
_JSON: TypeAlias = Mapping[str, _JSON] | Sequence[_JSON] | str | int | float | None
# A payload (or predicate) argument: a JSON value, or any `Mapping[str, object]`, because neither
# mypy nor pyright lets a TypedDict or a `dict[str, object]` fit `Mapping[str, _JSON]`; the
# values of such a mapping are checked at run time only. Non-JSON payloads (datetime, dataclass,
# set, object, int keys) are flagged, unless `NewEvent(..., default=...)` converts them.
_Payload: TypeAlias = _JSON | Mapping[str, object]
# A payload read back. `Any`, not the union: a union would make every `payload["key"]` an error
# until narrowed by isinstance (typeshed types `json.loads` as Any for the same reason).
_JSONOut: TypeAlias = Any
# A list or tuple of str (what the run time takes): unlike `Sequence[str]`, a bare `str` (a
# common slip, `EventFilter("X")`, refused at run time) does not fit.
_Names: TypeAlias = list[str] | tuple[str, ...]
_Handler = Callable[[list[EventRecord]], object]

@final
class NewEvent:
    """An event to append: its type and its JSON payload, validated (and copied) at construction.
    `default`, like `json.dumps`'s, turns a non-JSON value into one that is converted in turn
    (`factstr.json_default` handles datetimes, UUIDs, decimals, enums, dataclasses, pydantic)."""

    @overload
    def __new__(cls, event_type: str, payload: _Payload, *, default: None = None) -> Self: ...
    @overload
    def __new__(
        cls, event_type: str, payload: object, *, default: Callable[[Any], object]
    ) -> Self: ...
    __match_args__ = ("event_type", "payload")
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[Self], tuple[Any, ...]]: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: object, /) -> Self: ...
    @property
    def event_type(self) -> str:
        """The event type (a non-empty str)."""
    @property
    def payload(self) -> _JSONOut:
        """The JSON payload; each access returns a fresh copy."""

@final
class EventFilter:
    """Facts whose type is one of `event_types` AND whose payload contains one of
    `payload_predicates`. `None` means any; `[]` means nothing."""

    def __new__(
        cls,
        event_types: _Names | None = None,
        payload_predicates: Sequence[_Payload] | None = None,
    ) -> Self: ...
    __match_args__ = ("event_types", "payload_predicates")
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[Self], tuple[Any, ...]]: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: object, /) -> Self: ...
    @property
    def event_types(self) -> list[str] | None:
        """The accepted event types (any of them), or `None` for any type."""
    @property
    def payload_predicates(self) -> list[_JSONOut] | None:
        """The payload predicates (a payload must contain one of them), or `None` for any payload."""

@final
class EventQuery:
    """Facts matching any of `filters` (all facts when `None` or empty), after
    `min_sequence_number` when given."""

    def __new__(
        cls,
        filters: Sequence[EventFilter] | None = None,
        min_sequence_number: int | None = None,
    ) -> Self: ...
    __match_args__ = ("filters", "min_sequence_number")
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[Self], tuple[Any, ...]]: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: object, /) -> Self: ...
    @staticmethod
    def all() -> EventQuery:
        """The query that matches every fact."""
    @staticmethod
    def for_event_types(types: _Names) -> EventQuery:
        """One filter matching any of `types`."""
    def with_filters(self, filters: Sequence[EventFilter] | None) -> EventQuery:
        """A copy of this query with other filters."""
    def with_min_sequence_number(self, min_sequence_number: int | None) -> EventQuery:
        """A copy of this query with another lower bound (`None`: from the start)."""
    @property
    def filters(self) -> list[EventFilter] | None:
        """The filters (a fact matches if it matches any), or `None` for every fact."""
    @property
    def min_sequence_number(self) -> int | None:
        """Only facts with a greater sequence number are returned; `None` for all."""

@final
class EventRecord:
    """A committed fact."""

    def __new__(
        cls, sequence_number: int, occurred_at: datetime, event_type: str, payload: _Payload
    ) -> Self: ...
    __match_args__ = ("sequence_number", "occurred_at", "event_type", "payload")
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[Self], tuple[Any, ...]]: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: object, /) -> Self: ...
    @property
    def sequence_number(self) -> int:
        """The fact's position in the log (1, 2, ...)."""
    @property
    def occurred_at(self) -> datetime:
        """The commit time of the fact's batch, a timezone-aware UTC `datetime`."""
    @property
    def event_type(self) -> str:
        """The event type."""
    @property
    def payload(self) -> _JSONOut:
        """The JSON payload; each access returns a fresh copy."""

@final
class QueryResult:
    """What `query` returns: the matching records and the two figures of the same snapshot.
    `len()` is the number of records; iterating yields them in order.
    """

    def __new__(
        cls,
        event_records: Sequence[EventRecord],
        last_returned_sequence_number: int | None,
        current_context_version: int | None,
        head_sequence_number: int | None = None,
    ) -> Self: ...
    __match_args__ = (
        "event_records",
        "last_returned_sequence_number",
        "current_context_version",
        "head_sequence_number",
    )
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[Self], tuple[Any, ...]]: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: object, /) -> Self: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[EventRecord]: ...
    @property
    def event_records(self) -> list[EventRecord]:
        """The matching records in ascending sequence order (a new list on each access)."""
    @property
    def last_returned_sequence_number(self) -> int | None:
        """The sequence number of the last returned record, or `None` when none was returned."""
    @property
    def current_context_version(self) -> int | None:
        """The highest sequence number of all matching facts (ignoring `min_sequence_number` and
        `limit`), or `None`: the version `append_if` expects.
        """
    @property
    def head_sequence_number(self) -> int | None:
        """The last sequence number of the whole store in the query's snapshot (`None`: empty)."""

@final
class AppendResult:
    """What an append returns: the first and last sequence numbers given and how many facts."""

    def __new__(
        cls, first_sequence_number: int, last_sequence_number: int, committed_count: int
    ) -> Self: ...
    __match_args__ = ("first_sequence_number", "last_sequence_number", "committed_count")
    def __reduce__(self) -> tuple[type[Self], tuple[Any, ...]]: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: object, /) -> Self: ...
    @property
    def first_sequence_number(self) -> int:
        """The sequence number of the batch's first fact."""
    @property
    def last_sequence_number(self) -> int:
        """The sequence number of the batch's last fact."""
    @property
    def committed_count(self) -> int:
        """How many facts the batch committed."""
    def __hash__(self) -> int: ...

@final
class DurableStream:
    """The identity of a durable stream; a plain `str` name works wherever one is taken."""

    def __new__(cls, name: str) -> Self: ...
    __match_args__ = ("name",)
    def __reduce__(self) -> tuple[type[Self], tuple[Any, ...]]: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: object, /) -> Self: ...
    @property
    def name(self) -> str:
        """The durable stream's name (its cursor's key in the store)."""
    def __hash__(self) -> int: ...

@final
class DurableStreamInfo:
    """A durable stream's stored cursor: its name, its query and the last sequence number it processed."""

    def __new__(cls, name: str, query: EventQuery, last_processed_sequence_number: int) -> Self: ...
    __match_args__ = ("name", "query", "last_processed_sequence_number")
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[Self], tuple[Any, ...]]: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: object, /) -> Self: ...
    @property
    def name(self) -> str:
        """The durable stream's name."""
    @property
    def query(self) -> EventQuery:
        """The query the durable stream was registered with."""
    @property
    def last_processed_sequence_number(self) -> int:
        """The last sequence number its handler finished (0: nothing yet)."""

@final
class EventStream:
    """A running handler registration."""

    @property
    def id(self) -> int:
        """The registration's id, unique within the process."""
    @property
    def active(self) -> bool:
        """Whether the registration still takes new batches (false after `unsubscribe()`, a
        durable handler's failure, or the store's close).
        """
    @property
    def error(self) -> BaseException | None:
        """The exception that stopped a durable stream, if any."""
    def unsubscribe(self) -> None:
        """Stops the deliveries of batches committed after this call. Batches committed before it
        are still delivered (after it returns, when the handler is busy). A durable stream stops
        at once and frees its name; its cursor stays.
        """
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
    def next_batch(self, timeout: float | None = None) -> list[EventRecord] | None:
        """The next batch, waiting at most `timeout` seconds (forever when None); None on timeout
        or when the subscription is closed.
        """
    def ack(self) -> None:
        """Marks the last batch handed out as processed: a durable cursor moves past it."""
    def close(self) -> None:
        """Ends the subscription (from any thread); a durable name is released, its cursor stays."""
    @property
    def closed(self) -> bool:
        """Whether `close()` was called (or the store closed)."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        *_args: type[BaseException] | BaseException | TracebackType | None,
    ) -> None: ...

@disjoint_base
class EventStore:
    """The operations every store offers (SPEC §11)."""

    def append(
        self, events: Sequence[NewEvent], *, idempotency_key: str | None = None
    ) -> AppendResult:
        """Commits `events` as one batch with consecutive sequence numbers.

        `idempotency_key` (SPEC §2.8): a later call with a key that already committed returns
        the first call's `AppendResult` and writes nothing, whatever its events, even after a
        restart or from another process (keys are kept at least 24 hours or the last 1,000,000
        keys, whichever is more). So after `CommitOutcomeUnknown` the call can be retried with
        the same key without writing the batch twice. A key is a non-empty `str` of at most 512
        bytes of UTF-8 without U+0000 (`ValueError` otherwise).
        """
    def append_if(
        self,
        events: Sequence[NewEvent],
        context_query: EventQuery,
        expected_context_version: int | None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Commits `events` only if the context version of `context_query` is
        `expected_context_version`; raises `ConditionalAppendConflict` otherwise.

        With an `idempotency_key` that already committed, returns that commit's result without
        checking the condition (see `append`).
        """
    def append_unless(
        self,
        events: Sequence[NewEvent],
        fail_if_events_match: EventQuery,
        after: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Commits `events` unless a fact matching `fail_if_events_match` has a sequence number
        above `after` (`None`: any matching fact); raises `ConditionalAppendConflict` otherwise.

        With an `idempotency_key` that already committed, returns that commit's result without
        checking the condition (see `append`).
        """
    def query(self, query: EventQuery | None = None, *, limit: int | None = None) -> QueryResult:
        """The matching facts in sequence order (at most `limit`), with the context version."""
    def iter_query(
        self, query: EventQuery | None = None, *, page_size: int = 10000
    ) -> Iterator[EventRecord]:
        """The matching records one by one in ascending order, read `page_size` at a time (each
        page a snapshot of its own: a record committed meanwhile may appear; none is skipped or
        repeated). Holds about `page_size` records, however many match."""
    def stream_all(self, handler: _Handler) -> EventStream:
        """Calls `handler` with every batch committed from now on."""
    def stream_to(self, query: EventQuery, handler: _Handler) -> EventStream:
        """Calls `handler` with the matching events of every batch committed from now on."""
    def stream_all_durable(self, durable: str | DurableStream, handler: _Handler) -> EventStream:
        """Replays every batch after the stored cursor of `durable`, then goes on live."""
    def stream_to_durable(
        self, durable: str | DurableStream, query: EventQuery, handler: _Handler
    ) -> EventStream:
        """Like `stream_to`, delivering from the durable stream's saved cursor and saving it after
        each handled batch, so a restart resumes where it stopped.
        """
    def subscribe(
        self, query: EventQuery | None = None, *, durable: str | DurableStream | None = None
    ) -> Subscription:
        """An iterator of batches: live, or durable (replaying from the stored cursor) when
        `durable` names a stream.
        """
    def durable_streams(self) -> list[DurableStreamInfo]:
        """The stored durable cursors (name, query, last processed sequence number)."""
    def reset_durable_stream(
        self, name: str | DurableStream, sequence_number: int | None = None
    ) -> None:
        """Sets the cursor of an inactive durable stream (0: replay everything again)."""
    def delete_durable_stream(self, name: str | DurableStream) -> None:
        """Deletes a durable stream's cursor (refused while it is running)."""
    # Internal, for the `factstr` command only (factstr.cli.transfer); not part of the API.
    def _export_page(
        self, after: int, max_events: int, lines: bool
    ) -> tuple[bytes | None, int, int, int, int]: ...
    def _checksum_page(self, after: int, limit: int) -> tuple[int, int, int]: ...
    def _restorer(self, write_events: int = 20_000) -> _Restorer: ...
    def _storage_size(self) -> int | None: ...
    def _restore_durable_stream(
        self, name: str | DurableStream, query: EventQuery, cursor: int
    ) -> None: ...
    def close(self) -> None:
        """Closes the store: later calls raise `StoreClosedError`, streams and iterations end."""
    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
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
    def path(self) -> Path:
        """The database file."""

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
    ) -> PostgresStore:
        """Creates the database `database_name` on the server `server_url` names when it is
        missing, and returns a store on it.
        """
    @property
    def url(self) -> str:
        """The URL of the database, without its password."""

@final
class _Restorer:
    """Internal (factstr.cli.transfer): writes export lines back into a store."""

    def feed(self, data: bytes) -> list[bytes]: ...
    def facts_fed(self) -> int: ...
    def finish(self) -> tuple[int, int, int]: ...

def _exit_streams(grace: float) -> None: ...
def _after_fork_in_child() -> None: ...
def _after_fork_in_parent() -> None: ...
def _before_fork() -> None: ...
def _set_idempotency_retention(min_keys: int, min_age: float) -> None:
    """Tests only: shortens the idempotency key retention of every store in this process."""

# The engine side of `factstr.aio` (private; see rust/factstr-python/src/aio/).
@final
class _Completions:
    def __new__(cls, event_loop: AbstractEventLoop) -> Self: ...
    def fileno(self) -> int: ...
    def drain(self) -> None: ...
    def in_flight(self) -> int: ...
    @property
    def loop(self) -> AbstractEventLoop: ...

_T = TypeVar("_T")

# An answer the engine gave at once (the fast path, rust/factstr-python/src/aio/ready.rs).
@final
class _Ready(Generic[_T]):
    def __await__(self) -> Generator[None, None, _T]: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> None: ...

@final
class _AioOpener:
    @staticmethod
    def sqlite(
        path: str | PathLike[str],
        *,
        synchronous: str = "full",
        poll_interval: float | None = None,
        busy_timeout: float | None = None,
    ) -> _AioOpener: ...
    @staticmethod
    def postgres(
        url: str,
        *,
        pool_size: int | None = None,
        connect_timeout: float | None = None,
        reconnect_timeout: float | None = None,
        statement_timeout: float | None = None,
    ) -> _AioOpener: ...
    @staticmethod
    def bootstrap(
        server_url: str,
        database_name: str,
        *,
        pool_size: int | None = None,
        connect_timeout: float | None = None,
        reconnect_timeout: float | None = None,
        statement_timeout: float | None = None,
    ) -> _AioOpener: ...
    def open(self, completions: _Completions) -> Future[EventStore]: ...

@final
class _AioSubscriptionCore:
    def __new__(
        cls, query: EventQuery | None = None, durable: DurableStream | str | None = None
    ) -> Self: ...
    def activate(self, completions: _Completions, store: EventStore) -> Future[None]: ...
    def poll(self, completions: _Completions) -> Future[list[EventRecord] | int | None]: ...
    def wait(
        self, completions: _Completions, seen: int
    ) -> tuple[Future[None], tuple[int, int] | None]: ...
    def forget(self, completions: _Completions, handle: tuple[int, int]) -> None: ...
    def ack(self, completions: _Completions) -> Future[None]: ...
    def unreceive(self) -> None: ...
    def close(self, completions: _Completions) -> Future[None]: ...
    @property
    def closed(self) -> bool: ...
    @property
    def durable_name(self) -> str | None: ...

def _aio_append(
    completions: _Completions,
    store: EventStore,
    events: Sequence[NewEvent],
    idempotency_key: str | None = None,
) -> Future[AppendResult] | _Ready[AppendResult]: ...
def _aio_append_if(
    completions: _Completions,
    store: EventStore,
    events: Sequence[NewEvent],
    context_query: EventQuery,
    expected_context_version: int | None,
    idempotency_key: str | None = None,
) -> Future[AppendResult]: ...
def _aio_append_unless(
    completions: _Completions,
    store: EventStore,
    events: Sequence[NewEvent],
    fail_if_events_match: EventQuery,
    after: int | None = None,
    idempotency_key: str | None = None,
) -> Future[AppendResult]: ...
def _aio_query(
    completions: _Completions,
    store: EventStore,
    query: EventQuery | None = None,
    limit: int | None = None,
) -> Future[QueryResult]: ...
def _aio_query_page(
    completions: _Completions, store: EventStore, query: EventQuery, after: int, limit: int
) -> Future[list[EventRecord]]: ...
def _aio_durable_streams(
    completions: _Completions, store: EventStore
) -> Future[list[DurableStreamInfo]]: ...
def _aio_reset_durable_stream(
    completions: _Completions,
    store: EventStore,
    name: DurableStream | str,
    sequence_number: int | None = None,
) -> Future[None]: ...
def _aio_delete_durable_stream(
    completions: _Completions, store: EventStore, name: DurableStream | str
) -> Future[None]: ...
def _aio_close(completions: _Completions, store: EventStore) -> Future[None]: ...
def _aio_engine_threads() -> tuple[int, int]: ...
