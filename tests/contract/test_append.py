"""SPEC §2: append, sequence numbers, batches, occurred_at."""

from __future__ import annotations

import datetime as dt
import threading

import factstr
import pytest

from tests.support import Collector, Store, ev, events, run_in_thread, seqs_of


def test_empty_store_query_is_empty(store: Store) -> None:
    result = store.query()
    assert result.event_records == []
    assert result.last_returned_sequence_number is None
    assert result.current_context_version is None


def test_first_append_starts_at_one(store: Store) -> None:
    result = store.append([ev("a")])
    assert isinstance(result, factstr.AppendResult)
    assert result.first_sequence_number == 1
    assert result.last_sequence_number == 1
    assert result.committed_count == 1


def test_batches_get_consecutive_ranges(store: Store) -> None:
    r1 = store.append(events("a", 3))
    r2 = store.append(events("b", 1))
    r3 = store.append(events("c", 5))
    assert (r1.first_sequence_number, r1.last_sequence_number, r1.committed_count) == (1, 3, 3)
    assert (r2.first_sequence_number, r2.last_sequence_number, r2.committed_count) == (4, 4, 1)
    assert (r3.first_sequence_number, r3.last_sequence_number, r3.committed_count) == (5, 9, 5)
    assert seqs_of(store.query().event_records) == list(range(1, 10))


def test_events_keep_their_order_and_content(store: Store) -> None:
    batch = [
        factstr.NewEvent("first", {"n": 1}),
        factstr.NewEvent("second", {"n": 2, "nested": {"list": [1, "x", None, True, 2.5]}}),
        factstr.NewEvent("first", {"n": 3}),
    ]
    store.append(batch)
    records = store.query().event_records
    assert [(r.sequence_number, r.event_type, r.payload) for r in records] == [
        (1, "first", {"n": 1}),
        (2, "second", {"n": 2, "nested": {"list": [1, "x", None, True, 2.5]}}),
        (3, "first", {"n": 3}),
    ]


def test_append_accepts_any_sequence_of_new_events(store: Store) -> None:
    result = store.append((ev("a"), ev("b")))
    assert (result.first_sequence_number, result.last_sequence_number) == (1, 2)
    assert [r.event_type for r in store.query().event_records] == ["a", "b"]


def test_empty_append_raises_and_writes_nothing(store: Store) -> None:
    with pytest.raises(factstr.EmptyAppendError):
        store.append([])
    assert store.query().event_records == []
    assert store.append([ev("a")]).first_sequence_number == 1


def test_empty_append_error_is_a_value_error(store: Store) -> None:
    with pytest.raises(ValueError):
        store.append([])


def test_non_new_event_in_batch_raises_type_error_and_writes_nothing(store: Store) -> None:
    store.append([ev("a")])
    bad: list[object] = [ev("b"), {"event_type": "c", "payload": {}}]
    with pytest.raises(TypeError):
        store.append(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.append([ev("b"), "c"])  # type: ignore[list-item]
    result = store.query()
    assert seqs_of(result.event_records) == [1]
    assert store.append([ev("d")]).first_sequence_number == 2


def test_failed_appends_burn_no_sequence_number(store: Store) -> None:
    store.append([ev("a"), ev("a")])
    with pytest.raises(factstr.EmptyAppendError):
        store.append([])
    with pytest.raises(factstr.ConditionalAppendConflict):
        store.append_if([ev("x")], factstr.EventQuery.all(), None)
    with pytest.raises(factstr.ConditionalAppendConflict):
        store.append_if([ev("x")], factstr.EventQuery.all(), 1)
    with pytest.raises((TypeError, ValueError)):
        store.append([ev("x"), factstr.NewEvent("x", {"bad": {1, 2}})])
    with pytest.raises(TypeError):
        store.append([ev("x"), None])  # type: ignore[list-item]
    result = store.append([ev("b"), ev("b"), ev("b")])
    assert (result.first_sequence_number, result.last_sequence_number) == (3, 5)
    assert seqs_of(store.query().event_records) == [1, 2, 3, 4, 5]
    assert [r.event_type for r in store.query().event_records] == ["a", "a", "b", "b", "b"]


def test_failed_appends_deliver_nothing(store: Store) -> None:
    seen = Collector()
    store.stream_all(seen)
    with pytest.raises(factstr.EmptyAppendError):
        store.append([])
    with pytest.raises(factstr.ConditionalAppendConflict):
        store.append_if([ev("x")], factstr.EventQuery.all(), 7)
    with pytest.raises(TypeError):
        store.append([ev("x"), 3])  # type: ignore[list-item]
    store.append([ev("ok")])
    # Delivery is in commit order: once the later batch is in, nothing else can precede it.
    assert seen.wait_batches(1) == seen.batches
    assert seen.batch_seqs() == [[1]]
    assert [r.event_type for r in seen.records] == ["ok"]


def test_occurred_at_is_utc_aware_and_one_per_batch(store: Store) -> None:
    before = dt.datetime.now(dt.timezone.utc)
    store.append(events("a", 4))
    store.append(events("b", 2))
    after = dt.datetime.now(dt.timezone.utc)
    records = store.query().event_records
    for record in records:
        assert isinstance(record.occurred_at, dt.datetime)
        assert record.occurred_at.tzinfo is not None
        assert record.occurred_at.utcoffset() == dt.timedelta(0)
        # A sanity window, generous: the clock of the store is the clock of this machine.
        assert (
            before - dt.timedelta(minutes=5)
            <= record.occurred_at
            <= after + dt.timedelta(minutes=5)
        )
    assert len({r.occurred_at for r in records[:4]}) == 1
    assert len({r.occurred_at for r in records[4:]}) == 1


def test_occurred_at_is_the_same_for_a_batch_in_streams(store: Store) -> None:
    seen = Collector()
    store.stream_all(seen)
    store.append(events("a", 3))
    batch = seen.wait_batches(1)[0]
    assert len({r.occurred_at for r in batch}) == 1
    assert [r.occurred_at for r in batch] == [r.occurred_at for r in store.query().event_records]


def test_concurrent_appends_are_gapless_and_contiguous(store: Store) -> None:
    threads = 4
    appends_per_thread = 40
    seen = Collector()
    store.stream_all(seen)
    barrier = threading.Barrier(threads)
    results: list[list[tuple[factstr.AppendResult, int, int]]] = [[] for _ in range(threads)]

    def worker(index: int) -> None:
        barrier.wait()
        for j in range(appends_per_thread):
            size = 1 + (index + j) % 3
            batch = [
                factstr.NewEvent(f"t{index}", {"w": index, "j": j, "k": k}) for k in range(size)
            ]
            results[index].append((store.append(batch), j, size))

    workers = [run_in_thread(lambda i=i: worker(i)) for i in range(threads)]  # type: ignore[misc]
    for thread, errors, _ in workers:
        thread.join(30)
        assert not thread.is_alive()
        assert errors == []

    ranges: list[tuple[int, int]] = []
    expected_payloads: dict[int, dict[str, int]] = {}
    for index, per_thread in enumerate(results):
        previous_last = 0
        for result, j, size in per_thread:
            assert result.committed_count == size
            assert result.last_sequence_number - result.first_sequence_number + 1 == size
            # One thread's appends happen one after another, so their numbers increase.
            assert result.first_sequence_number > previous_last
            previous_last = result.last_sequence_number
            ranges.append((result.first_sequence_number, result.last_sequence_number))
            for k in range(size):
                expected_payloads[result.first_sequence_number + k] = {"w": index, "j": j, "k": k}
    total = sum(last - first + 1 for first, last in ranges)
    covered = sorted(n for first, last in ranges for n in range(first, last + 1))
    assert covered == list(range(1, total + 1))

    records = store.query().event_records
    assert seqs_of(records) == list(range(1, total + 1))
    assert {r.sequence_number: r.payload for r in records} == expected_payloads

    # The stream got one delivery per batch, whole, in sequence order.
    seen.wait_records(total)
    assert seen.seqs == list(range(1, total + 1))
    assert sorted((b[0], b[-1]) for b in seen.batch_seqs()) == sorted(ranges)
    assert [(b[0], b[-1]) for b in seen.batch_seqs()] == sorted(ranges)


def test_reader_that_saw_n_saw_everything_below(store: Store) -> None:
    stop = threading.Event()

    def writer() -> None:
        # Bounded: on a fast store and a loaded machine, an unbounded writer grows the log
        # faster than 200 whole-log reads can take it in (quadratic time and memory).
        for _ in range(5000):
            if stop.is_set():
                return
            store.append(events("w", 2))

    thread, errors, _ = run_in_thread(writer)
    try:
        for _ in range(200):
            records = store.query().event_records
            assert seqs_of(records) == list(range(1, len(records) + 1))
    finally:
        stop.set()
        thread.join(10)
    assert errors == []
