"""``aio.Subscription``: batches of a live or durable stream, awaited without blocking the loop.

The engine half (``_AioSubscriptionCore``, ``rust/factstr-python/src/aio/subscription.rs``)
reads on an engine thread and never waits there: a read that finds nothing returns the commit
generation it started from, and this side awaits a future that the store's commit signal
resolves when that generation moves (a waker; no thread waits). A read whose caller was
cancelled leaves its batch in the engine's stash, to be handed out next, and so does a batch
whose task was cancelled after the batch arrived but before the task resumed (``unreceive``):
cancelling ``next_batch`` or an ``async for`` loses no batch (SPEC §12).
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType
from typing import TYPE_CHECKING

from factstr._errors import StoreClosedError
from factstr._factstr import EventRecord, _AioSubscriptionCore
from factstr.aio._engine import completions

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is 3.11+; the package supports 3.10

    from factstr.aio._store import EventStore

#: A wait for new batches reads again after this long even without a wake-up (in case one was
#: lost, and so that a PostgreSQL read that failed is retried), like the sync subscriber.
SAFETY_READ = 2.0


def _timeout_seconds(timeout: object) -> float | None:
    """``timeout`` checked like the sync API's: None, or a finite number of seconds >= 0."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(
            f"timeout must be a number of seconds or None, not {type(timeout).__name__}"
        )
    seconds = float(timeout)
    if math.isnan(seconds) or seconds < 0 or math.isinf(seconds):
        raise ValueError(f"timeout must be a finite number of seconds >= 0, got {timeout!r}")
    return seconds


def _retrieved(future: asyncio.Future[None]) -> None:
    # A failed cursor write is reported by the next read, which writes the cursor again.
    if not future.cancelled():
        future.exception()


def _resolve_none(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Subscription:
    """An asynchronous iterator of committed batches (``list[EventRecord]``); durable when
    subscribed with a name. Made by ``store.subscribe(...)``, a plain call: it becomes active on
    ``async with`` or at the first ``next_batch``/iteration, whichever comes first."""

    __slots__ = ("_ack_written", "_activating", "_busy", "_core", "_store", "_waiting")

    def __init__(self, store: EventStore, core: _AioSubscriptionCore) -> None:
        self._store = store
        self._core = core
        self._activating: asyncio.Task[None] | None = None
        self._busy = False
        #: The future a waiting ``next_batch`` awaits, so that ``aclose`` can wake it.
        self._waiting: asyncio.Future[None] | None = None
        self._ack_written: asyncio.Future[None] | None = None

    async def _activate(self) -> None:
        sync_store = await self._store._opened()
        await self._core.activate(completions(), sync_store)

    async def _ensure_active(self) -> None:
        if self._activating is None:
            self._activating = asyncio.ensure_future(self._activate())
        # Shielded: a cancelled caller does not leave a half-claimed durable name behind.
        await asyncio.shield(self._activating)

    async def next_batch(self, timeout: float | None = None) -> list[EventRecord] | None:
        """The next batch, waiting at most ``timeout`` seconds (forever when None); None on
        timeout or when the subscription is closed. Asking for it acknowledges the batch
        received before (SPEC §6), even when it then times out."""
        seconds = _timeout_seconds(timeout)
        if self._busy:
            raise RuntimeError("another task is already waiting on this subscription")
        if self._core.closed:
            return None
        self._busy = True
        try:
            await self._ensure_active()
            return await self._next(seconds)
        finally:
            self._busy = False

    async def _next(self, seconds: float | None) -> list[EventRecord] | None:
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        queue = completions()
        while True:
            polled = self._core.poll(queue)
            try:
                got = await polled
            except asyncio.CancelledError:
                # Cancelled after the batch arrived but before this task resumed: not received.
                if polled.done() and not polled.cancelled() and isinstance(polled.result(), list):
                    self._core.unreceive()
                raise
            if got is None or isinstance(got, list):
                return got
            # Nothing new since generation `got`: wait for a commit, the deadline or a close.
            remaining = (
                SAFETY_READ if deadline is None else min(SAFETY_READ, deadline - loop.time())
            )
            if remaining <= 0:
                return None
            if self._core.closed:
                return None
            woken, handle = self._core.wait(queue, got)
            timer = loop.call_later(remaining, _resolve_none, woken)
            self._waiting = woken
            try:
                await woken
            finally:
                self._waiting = None
                timer.cancel()
                if handle is not None:
                    self._core.forget(queue, handle)

    def ack(self) -> None:
        """Marks the batch received last as processed. A plain call: the durable cursor is
        written off the loop, before the next batch is handed out or at ``aclose()`` (a write
        that fails raises from the next ``next_batch``, which writes it again)."""
        written = self._core.ack(completions())
        written.add_done_callback(_retrieved)
        self._ack_written = written

    async def _acknowledged(self) -> None:
        """Waits until the cursor write of the last ``ack()`` is done (for the sync facade of
        the tests, whose ``ack()`` returns after the write, like the sync API's)."""
        if self._ack_written is not None:
            await self._ack_written

    async def aclose(self) -> None:
        """Ends the subscription; a durable name is released, its cursor stays. A task waiting
        in ``next_batch`` gets None, one in ``async for`` stops."""
        if self._waiting is not None:
            _resolve_none(self._waiting)
        await self._core.close(completions())

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` was called."""
        return self._core.closed

    @property
    def durable_name(self) -> str | None:
        """The durable stream's name, or None for a live subscription."""
        return self._core.durable_name

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> list[EventRecord]:
        try:
            batch = await self.next_batch()
        except StoreClosedError:
            batch = None
        if batch is None:
            raise StopAsyncIteration
        return batch

    async def __aenter__(self) -> Self:
        if not self._core.closed:
            await self._ensure_active()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        durable = "" if self.durable_name is None else f", durable={self.durable_name!r}"
        return f"aio.Subscription(closed={self.closed}{durable})"
