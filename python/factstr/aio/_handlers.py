"""Handler registrations of the asyncio stores (``await store.stream_*``; SPEC §12).

A registration is the sync API's: its own daemon thread waits for batches in the engine
(without the GIL) and calls the handler, one batch at a time, and the call returns the sync
``factstr.EventStream``. So a plain handler runs off the loop exactly as in the sync API.

A coroutine handler is called through a bridge on that thread: the bridge runs the coroutine on
the loop that registered it (``run_coroutine_threadsafe``) and waits for it, so batches reach the
coroutine one at a time and in order, a slow coroutine delays only its own stream, and a
durable cursor moves only once the coroutine returned. When that loop closes, the stream stops
(``active`` false): at the loop's shutdown (``asyncio.run`` cancels its tasks, including a small
watcher task per registration) or, for a loop closed without that, at the next batch.

The registration itself (claiming a durable name, replaying its history) runs on a short-lived
thread of its own, so that neither the loop nor the engine's call pool waits for handlers.
Cancelling the awaited registration stops a replay after the batch being handled: the cursor
stays after the last handled batch, and the name is free again when the cancellation arrives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from factstr._factstr import EventRecord, EventStream
from factstr._factstr import EventStore as SyncStore

#: How often a bridge waiting for a coroutine handler checks that its loop still runs.
LOOP_CHECK = 0.25

Handler = Callable[[list[EventRecord]], object]


class _Stopped(Exception):
    """Raised into the engine's delivery when a registration ends under a handler: the batch is
    not counted as handled (a durable cursor stays before it)."""


def is_coroutine_handler(handler: object) -> bool:
    """Whether calling ``handler`` gives a coroutine (an ``async def`` function or method, or an
    object whose ``__call__`` is one)."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 (the method, not callability)
    )


class _Registration:
    """What the registering coroutine and the delivery thread share."""

    def __init__(self, loop: asyncio.AbstractEventLoop, durable: bool) -> None:
        self.loop = loop
        self.durable = durable
        #: Set when the awaited registration was cancelled, or the loop went away.
        self.stopped = threading.Event()
        self.stream: EventStream | None = None
        self.current: concurrent.futures.Future[Any] | None = None

    def stop(self) -> None:
        self.stopped.set()
        current = self.current
        if current is not None:
            current.cancel()
        if self.stream is not None:
            self.stream.unsubscribe()

    def end_under_handler(self) -> None:
        """The registration ended while a batch was being delivered."""
        self.stop()
        if self.durable:
            raise _Stopped("the stream's event loop closed or its registration was cancelled")

    def plain(self, handler: Handler) -> Handler:
        if not self.durable:
            return handler

        def checked(batch: list[EventRecord]) -> object:
            # Only the replay can be cancelled; live batches go to the handler as they come.
            if self.stopped.is_set():
                raise _Stopped("the registration was cancelled during its replay")
            return handler(batch)

        return checked

    def bridge(self, handler: Callable[[list[EventRecord]], Awaitable[object]]) -> Handler:
        loop = self.loop

        async def run(batch: list[EventRecord]) -> object:
            return await handler(batch)

        def deliver(batch: list[EventRecord]) -> object:
            if self.stopped.is_set() or loop.is_closed():
                self.end_under_handler()
                return None
            try:
                future = asyncio.run_coroutine_threadsafe(run(batch), loop)
            except RuntimeError:  # the loop closed just now
                self.end_under_handler()
                return None
            self.current = future
            try:
                while True:
                    try:
                        return future.result(timeout=LOOP_CHECK)
                    except concurrent.futures.TimeoutError:
                        # Also catches a stop that came before `current` was set.
                        if loop.is_closed() or self.stopped.is_set():
                            future.cancel()
                            self.end_under_handler()
                            return None
                    except concurrent.futures.CancelledError:
                        # The loop's shutdown cancelled the handler, or the registration did.
                        self.end_under_handler()
                        return None
            finally:
                self.current = None

        return deliver


#: The watcher tasks: a loop keeps only weak references to its tasks.
_watchers: set[asyncio.Task[None]] = set()


async def _watch_loop_end(registration: _Registration) -> None:
    """Lives as long as the loop runs: ``asyncio.run``'s shutdown cancels it."""
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:
        registration.stop()
        raise


async def register(
    sync_store: SyncStore,
    start: Callable[[SyncStore, Handler], EventStream],
    handler: object,
    *,
    durable: bool,
) -> EventStream:
    """Runs ``start(sync_store, handler)`` (a sync ``stream_*`` call) on a thread of its own and
    returns its ``EventStream``; a coroutine handler goes through the bridge."""
    if not callable(handler):
        raise TypeError("handler must be callable with one argument, a list of EventRecord")
    loop = asyncio.get_running_loop()
    registration = _Registration(loop, durable)
    coroutine = is_coroutine_handler(handler)
    delivered = registration.bridge(handler) if coroutine else registration.plain(handler)
    done: concurrent.futures.Future[EventStream] = concurrent.futures.Future()

    def run() -> None:
        try:
            done.set_result(start(sync_store, delivered))
        except BaseException as error:
            done.set_exception(error)

    threading.Thread(target=run, name="factstr-aio-register", daemon=True).start()
    waiting = asyncio.wrap_future(done)
    try:
        stream = await asyncio.shield(waiting)
    except asyncio.CancelledError:
        registration.stop()
        # Wait for the thread to let go (replays stop after the batch being handled), so that
        # the name is free when the cancellation reaches the caller.
        try:
            late = await asyncio.shield(waiting)
        except BaseException:
            late = None
        if late is not None:
            late.unsubscribe()
        raise
    registration.stream = stream
    if coroutine:
        if registration.stopped.is_set():
            stream.unsubscribe()
        else:
            watcher = loop.create_task(
                _watch_loop_end(registration), name=f"factstr-stream-{stream.id}-loop-watch"
            )
            _watchers.add(watcher)
            watcher.add_done_callback(_watchers.discard)
    return stream
