"""SPEC §3: ``QueryResult.head_sequence_number`` is the last sequence number of the whole store
(any type, any payload) in the query's own snapshot, ``None`` for an empty store."""

from __future__ import annotations

import threading

from factstr import EventFilter, EventQuery, NewEvent

from tests.support import Store, StoreFactory, ev, events

ORDERS = EventQuery.for_event_types(["order"])


def test_empty_store_has_no_head(store: Store) -> None:
    assert store.query().head_sequence_number is None
    assert store.query(ORDERS, limit=0).head_sequence_number is None


def test_head_is_the_whole_store_whatever_the_query(store: Store) -> None:
    store.append([ev("order"), ev("other")])
    store.append(events("other", 3))
    for query in (
        None,
        ORDERS,
        EventQuery.for_event_types(["missing"]),
        EventQuery([EventFilter(event_types=[])]),
        EventQuery([EventFilter(payload_predicates=[{"i": 2}])]),
        ORDERS.with_min_sequence_number(4),
    ):
        for limit in (None, 0, 1):
            result = store.query(query, limit=limit)
            assert result.head_sequence_number == 5, (query, limit)
    result = store.query(ORDERS)
    assert (result.current_context_version, result.head_sequence_number) == (1, 5)


def test_head_follows_appends_and_is_part_of_equality(store: Store) -> None:
    store.append([ev("a")])
    first = store.query(ORDERS)
    assert first == store.query(ORDERS)
    store.append([ev("b")])
    second = store.query(ORDERS)
    assert second.head_sequence_number == 2
    # Same records and context version, another head: another result.
    assert second != first
    assert "head_sequence_number=2" in repr(second)


def test_head_is_from_the_query_snapshot_under_a_concurrent_writer(
    make_store: StoreFactory,
) -> None:
    """While another store object appends, every result's head is at least its context version
    and its last returned number, and never beyond what was committed when the query returned."""
    reader = make_store()
    writer = make_store()
    done = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(150):
                writer.append([NewEvent("order" if i % 3 == 0 else "other", {"i": i}), ev("other")])
        except BaseException as error:  # reported below
            failures.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    checked = 0
    while not done.is_set() or checked < 5:
        for query, limit in (
            (ORDERS, None),
            (ORDERS, 2),
            (EventQuery.all(), 1),
            (EventQuery([EventFilter(payload_predicates=[{"i": 3}])]), None),
        ):
            result = reader.query(query, limit=limit)
            after = (
                reader.query(EventQuery.for_event_types(["none"]), limit=0).head_sequence_number
                or 0
            )
            head = result.head_sequence_number
            if result.current_context_version is not None:
                assert head is not None and head >= result.current_context_version
            if result.last_returned_sequence_number is not None:
                assert head is not None and head >= result.last_returned_sequence_number
            assert (head or 0) <= after
            assert (head or 0) % 2 == 0  # whole batches of two
            checked += 1
    thread.join(30)
    assert failures == []
    assert reader.query().head_sequence_number == 300
