"""factstr for asyncio: the same stores and contract, awaitable (SPEC §12).

``from factstr import aio``; ``aio.MemoryStore()``, ``aio.SqliteStore(path, **options)``,
``aio.PostgresStore(url, **options)``, ``await aio.PostgresStore.bootstrap(...)`` and
``aio.connect(url)`` take the sync stores' arguments and do no I/O: a store opens off the loop
at its first awaited call. Every call's engine work (locks, I/O, fsync, JSON) runs on a small,
bounded pool of engine threads, never on the loop and never in Python's default executor; the
loop only converts results to Python objects. Value types and errors are the sync ones.
"""

from __future__ import annotations

from factstr._connect import open_url
from factstr._factstr import EventStream
from factstr.aio._store import EventStore, MemoryStore, PostgresStore, SqliteStore
from factstr.aio._subscription import Subscription


def connect(url: str) -> EventStore:
    """An asyncio store for a URL, as ``factstr.connect`` (``memory://``,
    ``sqlite:///relative.db``, ``sqlite:////absolute/path.db``, ``postgresql://...``; query
    parameters are the store's options). A plain call: bad URLs raise at once, the store opens
    at its first awaited call."""
    return open_url(url, MemoryStore, SqliteStore, PostgresStore)


__all__ = [
    "EventStore",
    "EventStream",
    "MemoryStore",
    "PostgresStore",
    "SqliteStore",
    "Subscription",
    "connect",
]
