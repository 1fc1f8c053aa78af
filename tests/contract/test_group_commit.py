"""Group commit: concurrent appends from threads of one process share one transaction, yet each
call keeps its own all-or-nothing batch, its own consecutive range, and its condition checked in
commit order as if it ran alone; a conflict or a bad batch fails only its own call (SPEC §2, §4).

The grouping itself (who leads, bounds, one commit for a queue) is tested in the engine
(``group_commit.rs``, ``sqlite/group.rs``); here every store is held to what a caller can see.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import factstr
import pytest
from factstr import EventFilter, EventQuery

from tests.support import Store, run_in_thread

THREADS = 16


def _run_together(calls: list[Callable[[], object]]) -> list[tuple[object, BaseException | None]]:
    """Runs every call in a thread of its own, released together; each call's result or error."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            barrier.wait()
            return call()

        return run

    workers = [run_in_thread(released(call)) for call in calls]
    outcomes: list[tuple[object, BaseException | None]] = []
    for thread, errors, results in workers:
        thread.join(60)
        assert not thread.is_alive()
        outcomes.append((results[0] if results else None, errors[0] if errors else None))
    return outcomes


def _context(thread: int) -> EventQuery:
    return EventQuery([EventFilter(payload_predicates=[{"thread": thread}])])


def test_concurrent_appends_get_disjoint_consecutive_ranges_matching_their_batches(
    store: Store,
) -> None:
    appends = 12

    def worker(thread: int) -> list[tuple[factstr.AppendResult, list[dict[str, Any]]]]:
        made = []
        version: int | None = None
        for i in range(appends):
            batch = [{"thread": thread, "i": i, "k": k} for k in range(1 + (thread + i) % 3)]
            events = [factstr.NewEvent("t", payload) for payload in batch]
            # Plain, append_if and append_unless interleave: each thread's own context, so every
            # condition holds when checked in commit order, whoever shares its transaction.
            if i % 3 == 0:
                result = store.append(events)
            elif i % 3 == 1:
                result = store.append_if(events, _context(thread), version)
            else:
                result = store.append_unless(events, _context(thread), version)
            version = result.last_sequence_number
            made.append((result, batch))
        return made

    outcomes = _run_together([lambda t=t: worker(t) for t in range(THREADS)])  # type: ignore[misc]
    expected: dict[int, dict[str, Any]] = {}
    ranges = []
    for made, error in outcomes:
        assert error is None
        assert isinstance(made, list)
        for result, batch in made:
            assert result.committed_count == len(batch)
            assert result.last_sequence_number - result.first_sequence_number + 1 == len(batch)
            ranges.append((result.first_sequence_number, result.last_sequence_number))
            for offset, payload in enumerate(batch):
                expected[result.first_sequence_number + offset] = payload
    total = len(expected)
    assert sorted(n for first, last in ranges for n in range(first, last + 1)) == list(
        range(1, total + 1)
    )
    records = store.query().event_records
    assert {r.sequence_number: r.payload for r in records} == expected
    # Each call's batch is one batch in the log (read back per batch, in order).
    assert [
        (b.first_sequence_number, b.last_sequence_number) for b in _batches(store, total)
    ] == sorted(ranges)


def _batches(store: Store, head: int) -> list[factstr.AppendResult]:
    """The log's batches up to ``head`` as ranges, through a durable replay."""
    seen: list[factstr.AppendResult] = []
    with store.subscribe(durable="group-commit-batches") as subscription:
        while not seen or seen[-1].last_sequence_number < head:
            batch = subscription.next_batch(timeout=10)
            assert batch is not None
            numbers = [r.sequence_number for r in batch]
            seen.append(factstr.AppendResult(numbers[0], numbers[-1], len(numbers)))
    return seen


def _append_if(
    store: Store, context: EventQuery, version: int | None, payload: dict[str, int]
) -> Callable[[], object]:
    return lambda: store.append_if([factstr.NewEvent("order", payload)], context, version)


def test_racing_append_ifs_on_one_context_exactly_one_wins(store: Store) -> None:
    orders = EventQuery.for_event_types(["order"])
    store.append([factstr.NewEvent("order", {"n": 0})])
    for round_ in range(5):
        version = store.query(orders).current_context_version
        calls = [
            _append_if(store, orders, version, {"round": round_, "thread": t}) for t in range(8)
        ]
        outcomes = _run_together(calls)
        won = [result for result, error in outcomes if error is None]
        lost = [error for _, error in outcomes if error is not None]
        assert len(won) == 1, outcomes
        assert isinstance(won[0], factstr.AppendResult)
        winner = won[0].last_sequence_number
        for error in lost:
            assert isinstance(error, factstr.ConditionalAppendConflict)
            assert error.expected_context_version == version
            assert error.actual_context_version == winner
        assert store.query(orders).current_context_version == winner


def test_a_conflict_or_bad_batch_fails_alone_while_the_others_commit(store: Store) -> None:
    orders = EventQuery.for_event_types(["order"])
    store.append([factstr.NewEvent("order", {})])
    too_large = 2**63

    def good(t: int) -> Callable[[], object]:
        return lambda: store.append(
            [factstr.NewEvent("good", {"t": t}), factstr.NewEvent("good", {})]
        )

    calls: list[Callable[[], object]] = [good(t) for t in range(8)]
    calls += [
        lambda: store.append([]),
        lambda: store.append_if([factstr.NewEvent("bad", {})], orders, 99),
        lambda: store.append_unless([factstr.NewEvent("bad", {})], orders, None),
        lambda: store.append_if([factstr.NewEvent("bad", {})], orders, too_large),
    ]
    outcomes = _run_together(calls)
    for result, error in outcomes[:8]:
        assert error is None
        assert isinstance(result, factstr.AppendResult)
        assert result.committed_count == 2
    errors = [error for _, error in outcomes[8:]]
    assert isinstance(errors[0], factstr.EmptyAppendError)
    assert isinstance(errors[1], factstr.ConditionalAppendConflict)
    assert isinstance(errors[2], factstr.ConditionalAppendConflict)
    assert isinstance(errors[3], (ValueError, OverflowError, factstr.FactstrError))
    records = store.query().event_records
    assert [r.event_type for r in records].count("good") == 16
    assert "bad" not in {r.event_type for r in records}
    assert [r.sequence_number for r in records] == list(range(1, 18))


@pytest.mark.parametrize("writers", [THREADS])
def test_a_stream_sees_each_grouped_batch_once_in_order(store: Store, writers: int) -> None:
    delivered: list[list[int]] = []
    lock = threading.Lock()

    def handler(batch: list[factstr.EventRecord]) -> None:
        with lock:
            delivered.append([r.sequence_number for r in batch])

    store.stream_all(handler)
    outcomes = _run_together(
        [
            lambda t=t: [  # type: ignore[misc]
                store.append([factstr.NewEvent("t", {"t": t}), factstr.NewEvent("t", {})])
                for _ in range(5)
            ]
            for t in range(writers)
        ]
    )
    assert all(error is None for _, error in outcomes)
    total = writers * 5 * 2
    deadline = threading.Event()
    for _ in range(200):
        with lock:
            if sum(len(b) for b in delivered) >= total:
                break
        deadline.wait(0.05)
    with lock:
        assert [n for batch in delivered for n in batch] == list(range(1, total + 1))
        assert all(len(batch) == 2 for batch in delivered)
