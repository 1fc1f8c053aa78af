"""SPEC §3: `iter_query(query=None, *, page_size=10_000)` yields the matching records one by one
in ascending order, page by page, without skips or repeats while writers append, holding about
`page_size` records."""

from __future__ import annotations

import threading

import pytest
from factstr import EventFilter, EventQuery, NewEvent

from tests.support import Store, ev


def _fill(store: Store, count: int) -> None:
    store.append(
        [
            ev("even" if i % 2 == 0 else "odd", {"i": i, "tag": "x" if i % 3 == 0 else "y"})
            for i in range(count)
        ]
    )


@pytest.mark.parametrize("page_size", [1, 2, 3, 7, 10_000])
def test_yields_what_query_returns_in_order(store: Store, page_size: int) -> None:
    _fill(store, 20)
    queries = [
        None,
        EventQuery.for_event_types(["odd"]),
        EventQuery([EventFilter(None, [{"tag": "x"}]), EventFilter(["even"])], 4),
        EventQuery([EventFilter([])]),
        EventQuery(None, 20),
    ]
    for query in queries:
        expected = store.query(query).event_records
        assert list(store.iter_query(query, page_size=page_size)) == expected
    assert list(store.iter_query()) == store.query().event_records


def test_an_empty_store_yields_nothing(store: Store) -> None:
    assert list(store.iter_query()) == []
    assert list(store.iter_query(page_size=1)) == []


@pytest.mark.parametrize("bad", [0, -1])
def test_a_page_size_below_one_is_a_value_error(store: Store, bad: int) -> None:
    with pytest.raises(ValueError, match="page_size"):
        store.iter_query(page_size=bad)


@pytest.mark.parametrize("bad", [True, 1.5, "3"])
def test_a_page_size_that_is_not_an_int_is_a_type_error(store: Store, bad: object) -> None:
    with pytest.raises(TypeError, match="page_size"):
        store.iter_query(page_size=bad)  # type: ignore[arg-type]


def test_no_skips_or_repeats_while_a_writer_appends(store: Store) -> None:
    _fill(store, 50)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            while not stop.is_set():
                store.append([NewEvent("even", {"i": -1}), NewEvent("odd", {"i": -1})])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        seen = []
        for record in store.iter_query(page_size=3):
            seen.append(record.sequence_number)
            if len(seen) % 10 == 0:  # also append from this thread, so some surely land mid-way
                store.append([NewEvent("odd", {"i": -2})])
            if len(seen) >= 400:
                break
    finally:
        stop.set()
        writer.join()
    assert errors == []
    # Every fact matches: the yielded numbers are exactly 1, 2, 3, ... with none left out.
    assert seen == list(range(1, len(seen) + 1))
    assert len(seen) > 50  # some committed while iterating were seen too


def test_a_filtered_iteration_while_a_writer_appends_matches_query_afterwards(store: Store) -> None:
    _fill(store, 30)
    done = threading.Event()

    def write() -> None:
        for i in range(40):
            store.append([ev("odd", {"i": 100 + i}), ev("even", {"i": 100 + i})])
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    query = EventQuery.for_event_types(["odd"])
    seen = [r.sequence_number for r in store.iter_query(query, page_size=4)]
    writer.join()
    assert seen == sorted(set(seen))
    everything = [r.sequence_number for r in store.query(query).event_records]
    # What was yielded is a prefix of what the store holds now: nothing skipped, nothing repeated.
    assert seen == everything[: len(seen)]
