"""How the subscriptions of the application and DCB recorders learn of new records: a factstr
live stream on the subscription's query sets the puller's "notified" event on every commit,
whichever process made it (eventsourcing's own PostgreSQL recorder uses LISTEN/NOTIFY instead)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from factstr import EventQuery, EventStore, EventStream


def start_waking(
    store: EventStore,
    query: EventQuery,
    notified: threading.Event,
    stop_puller: Callable[[], None],
) -> EventStream:
    """Starts the stream that sets ``notified``; if it cannot start, stops the puller thread the
    subscription's base class already started (``stop_puller``) and raises."""
    try:
        stream = store.stream_to(query, lambda _batch: notified.set())
    except BaseException:
        stop_puller()
        raise
    # A batch committed between the first pull and the stream's start woke nobody.
    notified.set()
    return stream
