"""SPEC §2.8: idempotency keys on ``append``, ``append_if`` and ``append_unless``. A key that
committed returns the first call's result and writes nothing, whatever the later call's events or
condition, across store objects, reopening and processes; a failed call records no key."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import factstr
import pytest
from factstr import EventQuery

from tests.processes import Spawn, python_child
from tests.support import Store, StoreFactory, ev, events, seqs_of

CHILD_TIMEOUT = 60.0


def _range(result: factstr.AppendResult) -> tuple[int, int, int]:
    return (result.first_sequence_number, result.last_sequence_number, result.committed_count)


def test_a_repeated_key_returns_the_first_result_and_writes_nothing(store: Store) -> None:
    store.append([ev("before")])
    first = store.append(events("order", 3), idempotency_key="order-1")
    assert _range(first) == (2, 4, 3)
    again = store.append(events("order", 3), idempotency_key="order-1")
    assert again == first
    assert seqs_of(store.query().event_records) == [1, 2, 3, 4]
    # The next append without a key numbers on from the head.
    assert store.append([ev("after")]).first_sequence_number == 5


def test_a_key_reused_with_other_events_returns_the_first_result(store: Store) -> None:
    first = store.append([ev("a", {"n": 1})], idempotency_key="k")
    other = store.append(events("b", 5), idempotency_key="k")
    assert other == first
    records = store.query().event_records
    assert [(r.event_type, r.payload) for r in records] == [("a", {"n": 1})]


def test_distinct_keys_append_separately(store: Store) -> None:
    one = store.append([ev("a")], idempotency_key="one")
    two = store.append([ev("a")], idempotency_key="two")
    assert (one.first_sequence_number, two.first_sequence_number) == (1, 2)
    assert store.append([ev("a")], idempotency_key="one") == one


def test_append_if_with_a_committed_key_returns_its_result_without_checking(store: Store) -> None:
    context = EventQuery.for_event_types(["course"])
    first = store.append_if([ev("course")], context, None, idempotency_key="open-course")
    # The retry's expected version is stale now; the key answers before any check.
    again = store.append_if([ev("course")], context, None, idempotency_key="open-course")
    assert again == first
    assert seqs_of(store.query().event_records) == [1]


def test_append_unless_with_a_committed_key_returns_its_result_without_checking(
    store: Store,
) -> None:
    context = EventQuery.for_event_types(["seat"])
    first = store.append_unless([ev("seat")], context, idempotency_key="seat-7")
    again = store.append_unless([ev("seat")], context, idempotency_key="seat-7")
    assert again == first
    assert seqs_of(store.query().event_records) == [1]


def test_one_key_space_for_all_three_operations(store: Store) -> None:
    first = store.append([ev("a")], idempotency_key="shared")
    context = EventQuery.for_event_types(["a"])
    assert store.append_if([ev("a")], context, None, idempotency_key="shared") == first
    assert store.append_unless([ev("a")], context, None, idempotency_key="shared") == first
    assert len(store.query().event_records) == 1


def test_a_conflicting_call_records_no_key(store: Store) -> None:
    store.append([ev("a")])
    context = EventQuery.for_event_types(["a"])
    with pytest.raises(factstr.ConditionalAppendConflict):
        store.append_if([ev("b")], context, None, idempotency_key="retry-me")
    with pytest.raises(factstr.ConditionalAppendConflict):
        store.append_unless([ev("b")], context, None, idempotency_key="retry-me")
    # The key is still free: the next call with it commits.
    result = store.append_if([ev("b")], context, 1, idempotency_key="retry-me")
    assert _range(result) == (2, 2, 1)
    assert store.append([ev("c")], idempotency_key="retry-me") == result


def test_an_empty_append_with_a_key_fails_and_records_nothing(store: Store) -> None:
    with pytest.raises(factstr.EmptyAppendError):
        store.append([], idempotency_key="empty")
    assert _range(store.append([ev("a")], idempotency_key="empty")) == (1, 1, 1)


@pytest.mark.parametrize(
    ("key", "error", "message"),
    [
        ("", ValueError, "idempotency_key must not be empty"),
        ("a\0b", ValueError, "idempotency_key must not contain U\\+0000"),
        ("x" * 513, ValueError, "idempotency_key is too long: 513 bytes"),
        (7, TypeError, "idempotency_key must be a str or None, not int"),
        (b"bytes", TypeError, "idempotency_key must be a str or None, not bytes"),
    ],
    ids=["empty", "nul", "too-long", "int", "bytes"],
)
def test_a_bad_key_is_refused_by_name_and_writes_nothing(
    store: Store, key: object, error: type[Exception], message: str
) -> None:
    context = EventQuery.for_event_types(["a"])
    bad: Any = key
    calls: list[Callable[[], object]] = [
        lambda: store.append([ev("a")], idempotency_key=bad),
        lambda: store.append_if([ev("a")], context, None, idempotency_key=bad),
        lambda: store.append_unless([ev("a")], context, idempotency_key=bad),
    ]
    for call in calls:
        with pytest.raises(error, match=message):
            call()
    assert store.query().event_records == []


def test_the_longest_key_is_accepted(store: Store) -> None:
    key = "é" * 256  # 512 bytes of UTF-8
    first = store.append([ev("a")], idempotency_key=key)
    assert store.append([ev("a")], idempotency_key=key) == first


def test_the_key_is_keyword_only(store: Store) -> None:
    with pytest.raises(TypeError):
        store.append([ev("a")], "positional")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        store.append_unless([ev("a")], EventQuery.all(), None, "positional")  # type: ignore[call-arg]
    assert store.query().event_records == []


def test_concurrent_calls_with_one_key_commit_once_and_share_the_result(store: Store) -> None:
    """Threads racing with the same keys (as retries from several workers would): each key
    commits one batch, and every caller with that key gets that batch's result."""
    results: dict[int, factstr.AppendResult] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(i: int) -> None:
        try:
            start.wait()
            results[i] = store.append(events(f"k{i % 4}", 2), idempotency_key=f"k{i % 4}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(store.query().event_records) == 8  # four keys, two events each
    for i in range(4):
        assert results[i] == results[i + 4]
    assert len({results[i].first_sequence_number for i in range(4)}) == 4


def test_another_store_object_sees_the_key_and_it_survives_reopening(
    shared_backend: None, make_store: StoreFactory
) -> None:
    first_store = make_store()
    first = first_store.append(events("a", 2), idempotency_key="k")
    other = make_store()
    assert other.append([ev("b")], idempotency_key="k") == first
    first_store.close()
    other.close()
    reopened = make_store()
    assert reopened.append([ev("c")], idempotency_key="k") == first
    assert seqs_of(reopened.query().event_records) == [1, 2]


def test_another_process_with_the_same_key_gets_the_first_result(
    open_code: str, store: Store, spawn: Spawn
) -> None:
    first = store.append(events("a", 3), idempotency_key="cross-process")
    child = python_child(
        spawn,
        """
        r = store.append([factstr.NewEvent("b", {})], idempotency_key="cross-process")
        print(json.dumps([r.first_sequence_number, r.last_sequence_number, r.committed_count]))
        r = store.append([factstr.NewEvent("c", {})], idempotency_key="child-only")
        print(json.dumps([r.first_sequence_number, r.last_sequence_number, r.committed_count]))
        store.close()
        """,
        open_code,
    )
    assert tuple(child.read(CHILD_TIMEOUT)) == _range(first)
    assert tuple(child.read(CHILD_TIMEOUT)) == (4, 4, 1)
    child.finish(CHILD_TIMEOUT)
    # And the child's key answers here.
    assert _range(store.append([ev("d")], idempotency_key="child-only")) == (4, 4, 1)
    assert seqs_of(store.query().event_records) == [1, 2, 3, 4]


@pytest.fixture
def short_retention() -> Iterator[None]:
    """Keys are kept only while among the newest three (and no time at all): pruning shows."""
    factstr._factstr._set_idempotency_retention(3, 0.0)
    try:
        yield
    finally:
        factstr._factstr._set_idempotency_retention(1_000_000, 24 * 60 * 60.0)


def test_keys_beyond_the_retention_are_forgotten_and_the_newest_kept(
    short_retention: None, store: Store
) -> None:
    # 128 keys: the SQL stores prune every 64th key (a bounded amount), the memory store at
    # once; with the newest three kept, every store forgot the first key and kept the last three.
    results = [store.append([ev("a")], idempotency_key=f"k{n}") for n in range(1, 129)]
    for n in (126, 127, 128):
        assert store.append([ev("again")], idempotency_key=f"k{n}") == results[n - 1]
    assert len(store.query().event_records) == 128
    # A forgotten key is a new key: the append commits again.
    assert store.append([ev("again")], idempotency_key="k1").first_sequence_number == 129
