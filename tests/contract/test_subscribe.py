"""SPEC §5 for the iterator form: store.subscribe() without a durable name."""

from __future__ import annotations

import _thread
import gc
import threading
import time

import factstr
import pytest
from factstr import EventQuery

from tests.support import DEADLINE, Store, ev, events, run_in_thread, seqs_of, wait_for


def test_subscribe_returns_a_subscription(store: Store) -> None:
    sub = store.subscribe()
    assert isinstance(sub, factstr.Subscription)
    assert sub.closed is False
    sub.close()
    assert sub.closed is True


def test_next_batch_returns_none_on_timeout(store: Store) -> None:
    with store.subscribe() as sub:
        assert sub.next_batch(timeout=0.05) is None
        assert sub.next_batch(0.0) is None


def test_no_replay(store: Store) -> None:
    store.append(events("old", 3))
    with store.subscribe() as sub:
        assert sub.next_batch(timeout=0.05) is None
        store.append([ev("new")])
        batch = sub.next_batch(timeout=DEADLINE)
        assert batch is not None
        assert seqs_of(batch) == [4]


def test_batches_in_commit_order_whole(store: Store) -> None:
    with store.subscribe() as sub:
        store.append(events("a", 2))
        store.append([ev("b")])
        store.append(events("c", 3))
        got = [sub.next_batch(timeout=DEADLINE) for _ in range(3)]
        assert [seqs_of(b) for b in got if b is not None] == [[1, 2], [3], [4, 5, 6]]
        assert all(isinstance(r, factstr.EventRecord) for b in got if b is not None for r in b)
        assert isinstance(got[0], list)
        assert sub.next_batch(timeout=0.05) is None


def test_subscribe_with_query_filters_batches(store: Store) -> None:
    with store.subscribe(EventQuery.for_event_types(["keep"])) as sub:
        store.append([ev("keep"), ev("drop"), ev("keep")])
        store.append([ev("drop")])
        store.append([ev("drop"), ev("keep")])
        first = sub.next_batch(timeout=DEADLINE)
        second = sub.next_batch(timeout=DEADLINE)
        assert first is not None and second is not None
        assert seqs_of(first) == [1, 3]
        assert seqs_of(second) == [6]
        assert sub.next_batch(timeout=0.05) is None


def test_subscribe_query_keyword(store: Store) -> None:
    with store.subscribe(query=EventQuery.for_event_types(["x"])) as sub:
        store.append([ev("y"), ev("x")])
        batch = sub.next_batch(timeout=DEADLINE)
        assert batch is not None and seqs_of(batch) == [2]


def test_iteration(store: Store) -> None:
    with store.subscribe() as sub:
        store.append(events("a", 2))
        store.append([ev("b")])
        store.append([ev("stop")])
        received: list[list[int]] = []
        for batch in sub:
            received.append(seqs_of(batch))
            if batch[-1].event_type == "stop":
                break
        assert received == [[1, 2], [3], [4]]


def test_next_batch_without_timeout_waits_for_a_batch(store: Store) -> None:
    with store.subscribe() as sub:
        thread, errors, _ = run_in_thread(lambda: store.append([ev("late")]))
        batch = sub.next_batch()
        thread.join(DEADLINE)
        assert errors == []
        assert batch is not None and seqs_of(batch) == [1]


def test_ack_on_live_subscription_is_harmless(store: Store) -> None:
    with store.subscribe() as sub:
        sub.ack()
        store.append([ev("a")])
        batch = sub.next_batch(timeout=DEADLINE)
        assert batch is not None
        sub.ack()
        store.append([ev("b")])
        batch = sub.next_batch(timeout=DEADLINE)
        assert batch is not None and seqs_of(batch) == [2]


def test_close_from_another_thread_ends_blocked_iteration(store: Store) -> None:
    sub = store.subscribe()
    received: list[list[factstr.EventRecord]] = []

    def consume() -> None:
        for batch in sub:
            received.append(batch)

    thread, errors, _ = run_in_thread(consume)
    store.append([ev("a")])
    wait_for(lambda: len(received) == 1, what="the first batch")
    sub.close()
    thread.join(DEADLINE)
    assert not thread.is_alive(), "closing the subscription did not end the iteration"
    assert errors == []
    assert sub.closed is True


def test_close_from_another_thread_ends_blocked_next_batch(store: Store) -> None:
    sub = store.subscribe()
    thread, _, results = run_in_thread(lambda: sub.next_batch())
    # The consumer may or may not be waiting yet: either way it must end.
    sub.close()
    thread.join(DEADLINE)
    assert not thread.is_alive(), "closing the subscription did not end next_batch()"
    # Ending with None or with an error are both endings; a batch is not possible.
    assert results in ([], [None])


def test_with_block_closes(store: Store) -> None:
    with store.subscribe() as sub:
        assert not sub.closed
    assert sub.closed


def test_closing_the_store_ends_iteration(store: Store) -> None:
    sub = store.subscribe()

    def consume() -> None:
        for _ in sub:
            pass

    thread, errors, _ = run_in_thread(consume)
    store.close()
    thread.join(DEADLINE)
    assert not thread.is_alive(), "closing the store did not end the iteration"
    assert all(isinstance(e, factstr.StoreClosedError) for e in errors), errors


def test_closing_the_store_ends_next_batch(store: Store) -> None:
    sub = store.subscribe()
    thread, errors, results = run_in_thread(lambda: sub.next_batch(timeout=60))
    store.close()
    thread.join(DEADLINE)
    assert not thread.is_alive(), "closing the store did not end next_batch()"
    assert all(isinstance(e, factstr.StoreClosedError) for e in errors), errors
    assert results in ([], [None])


def test_several_subscriptions_each_get_every_batch(store: Store) -> None:
    with store.subscribe() as a, store.subscribe() as b:
        store.append(events("x", 2))
        store.append([ev("y")])
        for sub in (a, b):
            first = sub.next_batch(timeout=DEADLINE)
            second = sub.next_batch(timeout=DEADLINE)
            assert first is not None and second is not None
            assert (seqs_of(first), seqs_of(second)) == ([1, 2], [3])


def test_garbage_collected_subscription_does_not_disturb_the_store(store: Store) -> None:
    sub = store.subscribe()
    store.append([ev("a")])
    del sub
    gc.collect()
    assert store.append([ev("b")]).first_sequence_number == 2
    with store.subscribe() as again:
        store.append([ev("c")])
        batch = again.next_batch(timeout=DEADLINE)
        assert batch is not None and seqs_of(batch) == [3]


@pytest.mark.parametrize("batches", [1, 5])
def test_subscription_sees_a_store_closed_later_as_ended(store: Store, batches: int) -> None:
    sub = store.subscribe()
    for _ in range(batches):
        store.append([ev("a")])
    store.close()
    # Batches committed before the close may still come out; then the iteration ends.
    received = 0
    try:
        for _ in sub:
            received += 1
            assert received <= batches
    except factstr.StoreClosedError:
        pass


def test_blocked_next_batch_answers_ctrl_c(store: Store) -> None:
    """SPEC §11: a blocked iteration answers Ctrl-C (here simulated with interrupt_main)."""
    assert threading.current_thread() is threading.main_thread()
    with store.subscribe() as sub:
        timer = threading.Timer(0.2, _thread.interrupt_main)
        started = time.monotonic()
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                sub.next_batch(timeout=30)
        finally:
            timer.cancel()
        # Not a speed test: the call must end because of the interrupt, not its 30 s timeout.
        assert time.monotonic() - started < 15
