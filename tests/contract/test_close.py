"""SPEC §5, §11: closing a store."""

from __future__ import annotations

from collections.abc import Callable

import factstr
import pytest
from factstr import EventQuery

from tests.support import DEADLINE, Collector, Store, ev, run_in_thread, wait_for


def test_closed_property(store: Store) -> None:
    assert store.closed is False
    store.close()
    assert store.closed is True


CALLS: list[tuple[str, Callable[[Store], object]]] = [
    ("append", lambda s: s.append([ev("a")])),
    ("append_if", lambda s: s.append_if([ev("a")], EventQuery.all(), None)),
    ("query", lambda s: s.query()),
    ("query limit", lambda s: s.query(EventQuery.all(), limit=1)),
    ("stream_all", lambda s: s.stream_all(Collector())),
    ("stream_to", lambda s: s.stream_to(EventQuery.all(), Collector())),
    ("stream_all_durable", lambda s: s.stream_all_durable("d", Collector())),
    ("stream_to_durable", lambda s: s.stream_to_durable("d", EventQuery.all(), Collector())),
    ("subscribe", lambda s: s.subscribe().next_batch(timeout=0.5)),
    ("subscribe durable", lambda s: s.subscribe(durable="d").next_batch(timeout=0.5)),
    ("durable_streams", lambda s: s.durable_streams()),
    ("reset_durable_stream", lambda s: s.reset_durable_stream("d")),
    ("delete_durable_stream", lambda s: s.delete_durable_stream("d")),
]


@pytest.mark.parametrize("call", [c[1] for c in CALLS], ids=[c[0] for c in CALLS])
def test_calls_after_close_raise_store_closed(
    store: Store, call: Callable[[Store], object]
) -> None:
    store.append([ev("a")])
    with store.stream_all_durable("d", Collector()):
        pass
    store.close()
    with pytest.raises(factstr.StoreClosedError):
        call(store)


def test_close_ends_live_streams(store: Store) -> None:
    stream = store.stream_all(Collector())
    durable = store.stream_all_durable("d", Collector())
    store.close()
    wait_for(lambda: not stream.active and not durable.active, what="streams to end on close")
    assert stream.error is None or isinstance(stream.error, factstr.StoreClosedError)


def test_close_ends_blocked_iterations(store: Store) -> None:
    live = store.subscribe()
    durable = store.subscribe(durable="d")
    threads = []
    for sub in (live, durable):

        def consume(sub: factstr.Subscription = sub) -> None:
            for _ in sub:
                pass

        threads.append(run_in_thread(consume))
    store.close()
    for thread, errors, _ in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive(), "an iteration did not end when the store closed"
        assert all(isinstance(e, factstr.StoreClosedError) for e in errors), errors


def test_close_while_handler_runs(store: Store) -> None:
    import threading

    entered = threading.Event()
    release = threading.Event()

    def slow(batch: list[factstr.EventRecord]) -> None:
        entered.set()
        release.wait(DEADLINE)

    stream = store.stream_all(slow)
    store.append([ev("a")])
    assert entered.wait(DEADLINE)
    closer, errors, _ = run_in_thread(store.close)
    release.set()
    closer.join(DEADLINE)
    assert not closer.is_alive()
    assert errors == []
    wait_for(lambda: not stream.active, what="the stream to end")


def test_with_store_closes(store: Store) -> None:
    with store as same:
        assert same is store
    assert store.closed
    with pytest.raises(factstr.StoreClosedError):
        store.query()


def test_unsubscribe_after_close_is_harmless(store: Store) -> None:
    stream = store.stream_all(Collector())
    sub = store.subscribe()
    store.close()
    stream.unsubscribe()
    sub.close()
    assert sub.closed


def test_close_from_inside_a_handler(store: Store) -> None:
    import threading

    closed = threading.Event()

    def handler(batch: list[factstr.EventRecord]) -> None:
        store.close()
        closed.set()

    store.stream_all(handler)
    store.append([ev("a")])
    assert closed.wait(DEADLINE), "closing the store from inside a handler deadlocked"
    assert store.closed
