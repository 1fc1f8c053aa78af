"""Where an awaited call's result comes back: one completion queue per event loop.

Engine threads (a bounded pool in the native module, never Python's executor) push finished
calls into the running loop's queue without the GIL and write one wake-up byte to a socket pair
whose reading end the loop watches with ``loop.add_reader``. The loop then converts the results
to Python objects and resolves the futures (``_Completions.drain``). See
``rust/factstr-python/src/aio/mod.rs`` for the whole path and why it was chosen.
"""

from __future__ import annotations

import asyncio
import os
import threading

from factstr._factstr import _Completions


class _PerThread(threading.local):
    def __init__(self) -> None:
        # A thread runs one loop at a time; the few it ran before are kept until they close.
        self.by_loop: dict[asyncio.AbstractEventLoop, _Completions] = {}
        self.last: _Completions | None = None


_local = _PerThread()


def completions() -> _Completions:
    """The completion queue of the running loop (created, and watched by it, on first use)."""
    loop = asyncio.get_running_loop()
    last = _local.last
    if last is not None and last.loop is loop:
        return last
    by_loop = _local.by_loop
    found = by_loop.get(loop)
    if found is None:
        for closed in [known for known in by_loop if known.is_closed()]:
            del by_loop[closed]
        found = _Completions(loop)
        loop.add_reader(found.fileno(), found.drain)
        by_loop[loop] = found
    _local.last = found
    return found


def _forget_after_fork() -> None:
    # A forked child shares the parent's socket pairs: it makes its own queues (its engine
    # threads are new too: the native pool starts over in a child).
    global _local
    _local = _PerThread()


os.register_at_fork(after_in_child=_forget_after_fork)
