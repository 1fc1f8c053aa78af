"""SPEC §6 for the iterator form: store.subscribe(durable=...) and its acknowledgement rules."""

from __future__ import annotations

import gc
import threading

import factstr
import pytest
from factstr import DurableStream, EventQuery

from tests.support import (
    DEADLINE,
    Collector,
    Store,
    assert_name_held,
    cursor_of,
    ev,
    events,
    run_in_thread,
    seqs_of,
    wait_for,
)


def _next(sub: factstr.Subscription, timeout: float = DEADLINE) -> list[int]:
    batch = sub.next_batch(timeout=timeout)
    assert batch is not None, "no batch came in time"
    return seqs_of(batch)


def test_new_name_replays_history_then_live(store: Store) -> None:
    store.append(events("a", 2))
    store.append([ev("b")])
    with store.subscribe(durable="s") as sub:
        assert _next(sub) == [1, 2]
        assert _next(sub) == [3]
        assert sub.next_batch(timeout=0.05) is None
        store.append(events("c", 2))
        assert _next(sub) == [4, 5]


def test_cursor_moves_when_the_next_batch_is_asked_for(store: Store) -> None:
    store.append(events("a", 2))  # 1..2
    store.append([ev("b")])  # 3
    with store.subscribe(durable="s") as sub:
        assert _next(sub) == [1, 2]
        # Handed out, not yet handled: the cursor has not moved.
        assert (cursor_of(store, "s") or 0) == 0
        assert _next(sub) == [3]
        # Asking for the next batch acknowledged the previous one.
        assert cursor_of(store, "s") == 2
        # Even a call that times out acknowledges.
        assert sub.next_batch(timeout=0.05) is None
        assert cursor_of(store, "s") == 3


def test_ack_moves_the_cursor(store: Store) -> None:
    with store.subscribe(durable="s") as sub:
        store.append([ev("a")])  # 1
        store.append(events("b", 3))  # 2..4
        assert _next(sub) == [1]
        sub.ack()
        assert cursor_of(store, "s") == 1
        assert _next(sub) == [2, 3, 4]
        assert cursor_of(store, "s") == 1
        sub.ack()
        assert cursor_of(store, "s") == 4
        sub.ack()  # a second ack changes nothing
        assert cursor_of(store, "s") == 4


def test_iteration_acknowledges_on_next(store: Store) -> None:
    store.append([ev("a")])
    store.append([ev("b")])
    store.append([ev("c")])
    with store.subscribe(durable="s") as sub:
        iterator = iter(sub)
        assert seqs_of(next(iterator)) == [1]
        assert (cursor_of(store, "s") or 0) == 0
        assert seqs_of(next(iterator)) == [2]
        assert cursor_of(store, "s") == 1
        received: list[int] = []
        for batch in sub:
            received.extend(seqs_of(batch))
            break
        assert received == [3]
        assert cursor_of(store, "s") == 2


def test_unacknowledged_batch_is_delivered_again(store: Store) -> None:
    store.append([ev("a")])
    store.append([ev("b")])
    with store.subscribe(durable="s") as sub:
        assert _next(sub) == [1]
        assert _next(sub) == [2]  # acknowledges 1, not 2
    assert cursor_of(store, "s") == 1
    with store.subscribe(durable="s") as sub:
        assert _next(sub) == [2]  # at-least-once
        sub.ack()
    with store.subscribe(durable="s") as sub:
        assert sub.next_batch(timeout=0.05) is None
    assert cursor_of(store, "s") == 2


def test_durable_subscription_with_query(store: Store) -> None:
    store.append([ev("keep"), ev("drop"), ev("keep")])  # 1..3
    store.append([ev("drop")])  # 4
    store.append([ev("keep")])  # 5
    query = EventQuery.for_event_types(["keep"])
    with store.subscribe(query, durable="s") as sub:
        assert _next(sub) == [1, 3]
        assert _next(sub) == [5]
        assert cursor_of(store, "s") == 3
        assert sub.next_batch(timeout=0.05) is None
        assert cursor_of(store, "s") == 5
        store.append([ev("drop")])  # 6
        store.append([ev("keep")])  # 7
        assert _next(sub) == [7]
    [info] = store.durable_streams()
    assert info.query == query


def test_durable_stream_object_as_name(store: Store) -> None:
    store.append([ev("a")])
    with store.subscribe(durable=DurableStream("s")) as sub:
        assert _next(sub) == [1]
        sub.ack()
    store.append([ev("b")])
    with store.subscribe(durable="s") as sub:
        assert _next(sub) == [2]


def test_name_is_free_after_close(store: Store) -> None:
    sub = store.subscribe(durable="s")
    sub.close()
    with store.subscribe(durable="s"):
        pass
    with store.stream_all_durable("s", Collector()):
        pass


def test_name_is_held_while_open(store: Store) -> None:
    with store.subscribe(durable="s"):
        assert_name_held(store, "s")


def test_name_is_free_after_garbage_collection(store: Store) -> None:
    sub = store.subscribe(durable="s")
    del sub
    gc.collect()

    def free() -> bool:
        try:
            store.stream_all_durable("s", Collector()).unsubscribe()
        except factstr.DurableStreamActive:
            gc.collect()
            return False
        return True

    wait_for(free, what="the durable name to be released after garbage collection")


def test_close_from_another_thread_ends_blocked_durable_iteration(store: Store) -> None:
    sub = store.subscribe(durable="s")
    received: list[list[int]] = []

    def consume() -> None:
        for batch in sub:
            received.append(seqs_of(batch))

    thread, errors, _ = run_in_thread(consume)
    store.append([ev("a")])
    wait_for(lambda: received == [[1]], what="the first batch")
    # Asking for the next batch acknowledges batch 1: once the cursor shows it, the consumer is
    # (about to be) blocked in the iteration that close() must end.
    wait_for(lambda: cursor_of(store, "s") == 1, what="the consumer asking for the next batch")
    sub.close()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    assert errors == []
    # The consumer asked for the next batch after handling batch 1: it is acknowledged.
    assert cursor_of(store, "s") == 1
    with store.stream_all_durable("s", Collector()):
        pass


def test_replay_to_live_boundary_under_concurrent_appends(store: Store) -> None:
    started = threading.Event()
    total_appends = 300

    def writer() -> None:
        for i in range(total_appends):
            store.append([factstr.NewEvent("w", {"i": i, "k": k}) for k in range(1 + i % 3)])
            if i == 30:
                started.set()

    thread, errors, _ = run_in_thread(writer)
    assert started.wait(10)
    total = sum(1 + i % 3 for i in range(total_appends))
    received: list[list[int]] = []
    with store.subscribe(durable="s") as sub:
        while sum(len(b) for b in received) < total:
            batch = sub.next_batch(timeout=DEADLINE)
            assert batch is not None, f"stalled after {sum(len(b) for b in received)} of {total}"
            received.append(seqs_of(batch))
        assert sub.next_batch(timeout=0.05) is None
    thread.join(10)
    assert errors == []
    flat = [n for b in received for n in b]
    assert flat == list(range(1, total + 1)), "gap or duplicate at the replay/live boundary"
    assert [len(b) for b in received] == [1 + i % 3 for i in range(total_appends)]
    assert cursor_of(store, "s") == total


def test_ack_before_any_batch_is_harmless(store: Store) -> None:
    with store.subscribe(durable="s") as sub:
        sub.ack()
        store.append([ev("a")])
        assert _next(sub) == [1]
    assert (cursor_of(store, "s") or 0) == 0


def test_negative_timeout_is_a_value_error(store: Store) -> None:
    with store.subscribe() as sub:
        with pytest.raises(ValueError):
            sub.next_batch(timeout=-1)
