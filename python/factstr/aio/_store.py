"""The asyncio stores: the sync stores' contract, awaitable (SPEC §12).

An asyncio store wraps a sync store object (``factstr.SqliteStore`` ...) that it opens on an
engine thread at its first awaited call; every call converts its arguments on the loop, runs
the engine work on an engine thread (``factstr.aio._engine``) and converts the result on the
loop. Value types, errors and matching are the sync ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from os import PathLike
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typing.Self is 3.11+; the package supports 3.10
    from typing_extensions import Self

from factstr import _factstr
from factstr._errors import StoreClosedError
from factstr._factstr import (
    AppendResult,
    DurableStream,
    DurableStreamInfo,
    EventQuery,
    EventRecord,
    EventStream,
    NewEvent,
    QueryResult,
    _AioOpener,
    _AioSubscriptionCore,
)
from factstr._factstr import EventStore as SyncStore
from factstr.aio._engine import completions
from factstr.aio._handlers import Handler, register
from factstr.aio._subscription import Subscription


class EventStore:
    """The operations every asyncio store offers (SPEC §12): the sync store's, awaitable."""

    __slots__ = ("_closed", "_label", "_opener", "_opening", "_sync")

    def __init__(self, label: str, opener: _AioOpener | None, sync: SyncStore | None) -> None:
        self._label = label
        self._opener = opener
        self._sync = sync
        self._opening: asyncio.Task[SyncStore] | None = None
        self._closed = False

    async def _open(self) -> SyncStore:
        assert self._opener is not None
        opened: SyncStore = await self._opener.open(completions())
        if self._closed:  # closed while opening: the caller gets StoreClosedError
            await _factstr._aio_close(completions(), opened)
        self._sync = opened
        return opened

    async def _opened(self) -> SyncStore:
        """The sync store, opened off the loop on first use (raises what opening raises)."""
        if self._sync is not None:
            return self._sync
        if self._closed:
            raise StoreClosedError("the store is closed")
        if self._opening is None or (self._opening.done() and self._opening.exception()):
            self._opening = asyncio.ensure_future(self._open())
        # Shielded: one caller's cancellation does not abandon an open that others await.
        return await asyncio.shield(self._opening)

    async def append(
        self, events: Sequence[NewEvent], *, idempotency_key: str | None = None
    ) -> AppendResult:
        """Commits ``events`` as one batch with consecutive sequence numbers. Cancelled, it
        committed its whole batch or nothing; to learn which, retry with the same
        ``idempotency_key``: a key that committed returns that commit's result and writes
        nothing (SPEC §2.8, §12)."""
        store = self._sync or await self._opened()
        result: AppendResult = await _factstr._aio_append(
            completions(), store, events, idempotency_key
        )
        return result

    async def append_if(
        self,
        events: Sequence[NewEvent],
        context_query: EventQuery,
        expected_context_version: int | None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Commits ``events`` only if the context version of ``context_query`` is
        ``expected_context_version``; raises ``ConditionalAppendConflict`` otherwise. With an
        ``idempotency_key`` that committed before, returns that commit's result."""
        store = self._sync or await self._opened()
        result: AppendResult = await _factstr._aio_append_if(
            completions(), store, events, context_query, expected_context_version, idempotency_key
        )
        return result

    async def append_unless(
        self,
        events: Sequence[NewEvent],
        fail_if_events_match: EventQuery,
        after: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Commits ``events`` unless a fact matching ``fail_if_events_match`` has a sequence
        number above ``after`` (None: any matching fact); raises ``ConditionalAppendConflict``
        otherwise. With an ``idempotency_key`` that committed before, returns that commit's
        result."""
        store = self._sync or await self._opened()
        result: AppendResult = await _factstr._aio_append_unless(
            completions(), store, events, fail_if_events_match, after, idempotency_key
        )
        return result

    async def query(
        self, query: EventQuery | None = None, *, limit: int | None = None
    ) -> QueryResult:
        """The matching facts in sequence order (at most ``limit``), with the context version."""
        store = self._sync or await self._opened()
        result: QueryResult = await _factstr._aio_query(completions(), store, query, limit)
        return result

    def iter_query(
        self, query: EventQuery | None = None, *, page_size: int = 10_000
    ) -> AsyncIterator[EventRecord]:
        """The matching records one by one in ascending order (``async for``), read
        ``page_size`` at a time, each page a snapshot of its own (SPEC §3)."""
        if query is None:
            query = EventQuery.all()
        elif not isinstance(query, EventQuery):
            raise TypeError(f"query must be an EventQuery or None, not {type(query).__name__}")
        if isinstance(page_size, bool) or not isinstance(page_size, int):
            raise TypeError(f"page_size must be an int, not {type(page_size).__name__}")
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        return self._pages(query, page_size)

    async def _pages(self, query: EventQuery, page_size: int) -> AsyncIterator[EventRecord]:
        store = self._sync or await self._opened()
        after = query.min_sequence_number or 0
        while True:
            page: list[EventRecord] = await _factstr._aio_query_page(
                completions(), store, query, after, page_size
            )
            for record in page:
                yield record
            if len(page) < page_size:
                return
            after = page[-1].sequence_number

    async def stream_all(self, handler: Handler) -> EventStream:
        """Calls ``handler`` with every batch committed from now on (a plain function runs off
        the loop; a coroutine function runs on this loop, one batch at a time)."""
        store = self._sync or await self._opened()
        return await register(store, lambda s, h: s.stream_all(h), handler, durable=False)

    async def stream_to(self, query: EventQuery, handler: Handler) -> EventStream:
        """Calls ``handler`` with the matching events of every batch committed from now on."""
        store = self._sync or await self._opened()
        return await register(store, lambda s, h: s.stream_to(query, h), handler, durable=False)

    async def stream_all_durable(
        self, durable: DurableStream | str, handler: Handler
    ) -> EventStream:
        """Replays every batch after the stored cursor of ``durable``, then goes on live;
        returns after the replay. Cancelled during the replay, the registration ends: the
        cursor stays after the last handled batch and the name is free again."""
        store = self._sync or await self._opened()
        return await register(
            store, lambda s, h: s.stream_all_durable(durable, h), handler, durable=True
        )

    async def stream_to_durable(
        self, durable: DurableStream | str, query: EventQuery, handler: Handler
    ) -> EventStream:
        """Like ``stream_to``, from the durable stream's saved cursor, saving it after each
        handled batch."""
        store = self._sync or await self._opened()
        return await register(
            store, lambda s, h: s.stream_to_durable(durable, query, h), handler, durable=True
        )

    def subscribe(
        self, query: EventQuery | None = None, *, durable: DurableStream | str | None = None
    ) -> Subscription:
        """An asynchronous iterator of batches: live, or durable (from the stored cursor) when
        ``durable`` names a stream. A plain call; it becomes active on ``async with`` or at the
        first ``next_batch``/iteration."""
        return Subscription(self, _AioSubscriptionCore(query, durable))

    async def durable_streams(self) -> list[DurableStreamInfo]:
        """The stored durable cursors (name, query, last processed sequence number)."""
        store = self._sync or await self._opened()
        result: list[DurableStreamInfo] = await _factstr._aio_durable_streams(completions(), store)
        return result

    async def reset_durable_stream(
        self, name: DurableStream | str, sequence_number: int | None = None
    ) -> None:
        """Sets the cursor of an inactive durable stream (None or 0: replay everything)."""
        store = self._sync or await self._opened()
        await _factstr._aio_reset_durable_stream(completions(), store, name, sequence_number)

    async def delete_durable_stream(self, name: DurableStream | str) -> None:
        """Deletes a durable stream's cursor (refused while it is running)."""
        store = self._sync or await self._opened()
        await _factstr._aio_delete_durable_stream(completions(), store, name)

    async def aclose(self) -> None:
        """Closes the store (off the loop): later calls raise ``StoreClosedError``, streams and
        iterations end. Closing a store that never opened opens nothing."""
        self._closed = True
        if self._sync is None and self._opening is not None:
            try:
                await asyncio.shield(self._opening)
            except Exception:
                return  # it never opened
        if self._sync is not None:
            await _factstr._aio_close(completions(), self._sync)

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` was called (or the underlying store was closed)."""
        return self._closed or (self._sync is not None and self._sync.closed)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"aio.{self._label}{' [closed]' if self.closed else ''}"


class MemoryStore(EventStore):
    """The whole contract in process memory, awaitable; facts live as long as the store."""

    __slots__ = ()

    def __init__(self) -> None:
        # Nothing to open: the engine store is made at once (no I/O).
        super().__init__("MemoryStore()", None, _factstr.MemoryStore())


class SqliteStore(EventStore):
    """The whole contract in one SQLite file, awaitable; the file is opened off the loop at
    the first awaited call (a bad path raises there). Options as ``factstr.SqliteStore``."""

    __slots__ = ("_path",)

    def __init__(self, path: str | PathLike[str], **options: Any) -> None:
        opener = _AioOpener.sqlite(path, **options)
        self._path = path
        super().__init__(f"SqliteStore({str(path)!r})", opener, None)

    @property
    def path(self) -> str | PathLike[str]:
        """The database file, as given."""
        return self._path


class PostgresStore(EventStore):
    """The whole contract on a PostgreSQL database, awaitable; it connects off the loop at the
    first awaited call (an unreachable server raises there). Options as
    ``factstr.PostgresStore``; a malformed URL raises at once."""

    __slots__ = ()

    def __init__(self, url: str, **options: Any) -> None:
        opener = _AioOpener.postgres(url, **options)
        super().__init__("PostgresStore(...)", opener, None)

    @property
    def url(self) -> str | None:
        """The URL without its password (None until the store has opened)."""
        return self._sync.url if isinstance(self._sync, _factstr.PostgresStore) else None

    @classmethod
    async def bootstrap(cls, server_url: str, database_name: str, **options: Any) -> PostgresStore:
        """Creates the database ``database_name`` on the server ``server_url`` names when it is
        missing (off the loop), and returns an opened store on it."""
        opener = _AioOpener.bootstrap(server_url, database_name, **options)
        store = cls.__new__(cls)
        EventStore.__init__(store, "PostgresStore(...)", opener, None)
        await store._opened()
        return store
