"""A sync facade over an asyncio store, so that the contract suite's cases run through
``factstr.aio`` unchanged (``tests/aio/contract/``): each call is awaited on an event loop that
runs in a background thread (one per loop kind, shared by the session, like an application's
loop), and the calling test thread waits for it.

Where the sync API and SPEC §12 differ only in *when* something happens, the facade takes the
sync timing: a subscription is entered (activated) inside ``subscribe()``, and a store opens
inside its constructor (``aio`` constructors do no I/O; their laziness is tested in
``tests/aio/test_aio_api.py``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # typing.Self is 3.11+; the package supports 3.10
    from typing_extensions import Self

import factstr
from factstr import aio

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self, kind: str) -> None:
        if kind == "uvloop":
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name=f"aio-facade-{kind}", daemon=True
        )
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Awaits ``coroutine`` on the loop. Waits in short slices so that Ctrl-C reaches a
        waiting main thread, and cancels the coroutine when the wait is interrupted."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            while True:
                try:
                    return future.result(timeout=0.05)
                except TimeoutError:
                    continue
        except BaseException:
            future.cancel()
            raise


_loops: dict[str, LoopThread] = {}
_loops_lock = threading.Lock()


def loop_thread(kind: str) -> LoopThread:
    with _loops_lock:
        if kind not in _loops:
            _loops[kind] = LoopThread(kind)
        return _loops[kind]


class FacadeSubscription:
    """``factstr.Subscription``'s shape over an ``aio.Subscription``."""

    def __init__(self, subscription: aio.Subscription, runner: LoopThread) -> None:
        self._subscription = subscription
        self._runner = runner
        runner.run(subscription.__aenter__())

    def __iter__(self) -> Iterator[list[factstr.EventRecord]]:
        return self

    def __next__(self) -> list[factstr.EventRecord]:
        try:
            return self._runner.run(self._subscription.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def next_batch(self, timeout: float | None = None) -> list[factstr.EventRecord] | None:
        return self._runner.run(self._subscription.next_batch(timeout))

    def ack(self) -> None:
        async def acknowledge() -> None:
            self._subscription.ack()
            await self._subscription._acknowledged()

        self._runner.run(acknowledge())

    def close(self) -> None:
        self._runner.run(self._subscription.aclose())

    @property
    def closed(self) -> bool:
        return self._subscription.closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AioFacade:
    """``factstr.EventStore``'s shape over an ``aio.EventStore``."""

    def __init__(self, store: aio.EventStore, runner: LoopThread) -> None:
        self.aio_store = store
        self._runner = runner
        runner.run(store._opened())

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def append(self, events: Any, *, idempotency_key: Any = None) -> factstr.AppendResult:
        return self._run(self.aio_store.append(events, idempotency_key=idempotency_key))

    def append_if(
        self,
        events: Any,
        context_query: Any,
        expected_context_version: Any,
        *,
        idempotency_key: Any = None,
    ) -> Any:
        return self._run(
            self.aio_store.append_if(
                events, context_query, expected_context_version, idempotency_key=idempotency_key
            )
        )

    def append_unless(
        self,
        events: Any,
        fail_if_events_match: Any,
        after: Any = None,
        *,
        idempotency_key: Any = None,
    ) -> Any:
        return self._run(
            self.aio_store.append_unless(
                events, fail_if_events_match, after, idempotency_key=idempotency_key
            )
        )

    def query(self, query: Any = None, *, limit: Any = None) -> factstr.QueryResult:
        return self._run(self.aio_store.query(query, limit=limit))

    def iter_query(self, query: Any = None, *, page_size: Any = 10_000) -> Iterator[Any]:
        records = self.aio_store.iter_query(query, page_size=page_size)
        return self._pull(records)

    def _pull(self, records: AsyncIterator[factstr.EventRecord]) -> Iterator[Any]:
        while True:
            try:
                yield self._run(anext_of(records))
            except StopAsyncIteration:
                return

    def stream_all(self, handler: Any) -> factstr.EventStream:
        return self._run(self.aio_store.stream_all(handler))

    def stream_to(self, query: Any, handler: Any) -> factstr.EventStream:
        return self._run(self.aio_store.stream_to(query, handler))

    def stream_all_durable(self, durable: Any, handler: Any) -> factstr.EventStream:
        return self._run(self.aio_store.stream_all_durable(durable, handler))

    def stream_to_durable(self, durable: Any, query: Any, handler: Any) -> factstr.EventStream:
        return self._run(self.aio_store.stream_to_durable(durable, query, handler))

    def subscribe(self, query: Any = None, *, durable: Any = None) -> FacadeSubscription:
        return FacadeSubscription(self.aio_store.subscribe(query, durable=durable), self._runner)

    def durable_streams(self) -> list[factstr.DurableStreamInfo]:
        return self._run(self.aio_store.durable_streams())

    def reset_durable_stream(self, name: Any, sequence_number: Any = None) -> None:
        self._run(self.aio_store.reset_durable_stream(name, sequence_number))

    def delete_durable_stream(self, name: Any) -> None:
        self._run(self.aio_store.delete_durable_stream(name))

    def close(self) -> None:
        self._run(self.aio_store.aclose())

    @property
    def closed(self) -> bool:
        return self.aio_store.closed

    @property
    def url(self) -> str | None:
        assert isinstance(self.aio_store, aio.PostgresStore)
        return self.aio_store.url

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


async def anext_of(records: AsyncIterator[T]) -> T:
    return await records.__anext__()


def open_facade(kind: str, location: str, existing: list[Any]) -> Any:
    """A facade store for a store kind ``aio-<backend>`` or ``aio-uvloop-<backend>``."""
    runner = loop_thread("uvloop" if "-uvloop-" in kind else "asyncio")
    backend = kind.rsplit("-", 1)[-1]
    if backend == "memory":
        if existing and not existing[0].closed:
            return existing[0]
        return AioFacade(aio.MemoryStore(), runner)
    if backend == "sqlite":
        return AioFacade(aio.SqliteStore(Path(location) / "events.db"), runner)
    if backend == "postgres":
        return AioFacade(aio.PostgresStore(location), runner)
    raise AssertionError(f"unknown store kind {kind!r}")
