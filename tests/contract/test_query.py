"""SPEC §3: query results and matching (filters, event types, payload containment)."""

from __future__ import annotations

import threading
from typing import Any

import factstr
import pytest
from factstr import EventFilter, EventQuery

from tests.support import Store, StoreFactory, ev, events, run_in_thread, seqs_of

# Sequence number -> (event type, payload). Appended one event per batch, in this order.
DATASET: list[tuple[str, Any]] = [
    ("A", {"n": 1, "tags": ["x", "y"], "obj": {"k": "v", "m": 2}}),  # 1
    ("B", {"n": 1.0, "tags": [], "items": [{"id": 1, "q": 2}, {"id": 2}]}),  # 2
    ("A", {"n": 2, "s": "x", "b": True, "z": None}),  # 3
    ("C", {"tags": "x", "arr": [[1, 2], [3]]}),  # 4
    ("B", {"n": True, "b": False, "nested": {"deep": {"x": [1, {"y": "z"}]}}}),  # 5
    ("A", {}),  # 6
    ("C", [1, 2, 3]),  # 7
    ("C", "x"),  # 8
]
ALL = list(range(1, len(DATASET) + 1))


def F(
    event_types: list[str] | None = None, payload_predicates: list[Any] | None = None
) -> EventFilter:
    return EventFilter(event_types=event_types, payload_predicates=payload_predicates)


def P(*predicates: Any) -> list[EventFilter]:
    """One filter with the given payload predicates and any type."""
    return [F(payload_predicates=list(predicates))]


MATCHING_CASES: list[tuple[str, list[EventFilter] | None, list[int]]] = [
    # filters: None and [] both mean everything
    ("filters None", None, ALL),
    ("filters []", [], ALL),
    ("one empty filter", [F()], ALL),
    # event_types: None any, [] nothing, list exact OR
    ("event_types []", [F(event_types=[])], []),
    ("event_types [A]", [F(event_types=["A"])], [1, 3, 6]),
    ("event_types [A, B]", [F(event_types=["A", "B"])], [1, 2, 3, 5, 6]),
    ("event_types exact case", [F(event_types=["a"])], []),
    ("event_types no prefix", [F(event_types=["AB"])], []),
    ("event_types unknown", [F(event_types=["Z"])], []),
    # payload_predicates: [] nothing
    ("payload_predicates []", [F(payload_predicates=[])], []),
    ("types and predicates []", [F(event_types=["A"], payload_predicates=[])], []),
    ("types [] and predicates any", [F(event_types=[], payload_predicates=[{}])], []),
    # several filters: OR
    ("two filters OR", [F(event_types=["A"]), F(event_types=["C"])], [1, 3, 4, 6, 7, 8]),
    ("empty filter OR type", [F(event_types=[]), F(event_types=["B"])], [2, 5]),
    ("nothing-filter OR everything-filter", [F(payload_predicates=[]), F()], ALL),
    ("type AND payload", [F(event_types=["B"], payload_predicates=[{"n": 1}])], [2]),
    ("type AND payload 2", [F(event_types=["A"], payload_predicates=[{"n": 1}])], [1]),
    ("mixed filters", [F(payload_predicates=[{"n": 1}]), F(event_types=["C"])], [1, 2, 4, 7, 8]),
    # numbers by value, booleans are not numbers
    ("int matches int and float", P({"n": 1}), [1, 2]),
    ("float matches int and float", P({"n": 1.0}), [1, 2]),
    ("true is not 1", P({"n": True}), [5]),
    ("int 2", P({"n": 2}), [3]),
    ("float 2.0", P({"n": 2.0}), [3]),
    ("no 2.5", P({"n": 2.5}), []),
    # {} and []
    ("{} matches every object", P({}), [1, 2, 3, 4, 5, 6]),
    ("[] matches every array", P([]), [7]),
    ("key with [] needs an array", P({"tags": []}), [1, 2]),
    ("key with {} needs an object", P({"obj": {}}), [1]),
    # arrays: subset, order and duplicates do not matter
    ("array element", P({"tags": ["x"]}), [1]),
    ("array order and duplicates", P({"tags": ["y", "x", "x"]}), [1]),
    ("array missing element", P({"tags": ["x", "z"]}), []),
    ("scalar never inside array", P({"tags": "x"}), [4]),
    ("array pattern against scalar", P({"tags": ["x"], "arr": []}), []),
    ("top-level array subset", P([3, 1]), [7]),
    ("top-level array missing", P([4]), []),
    ("top-level scalar never inside array", P(1), []),
    ("top-level string", P("x"), [8]),
    # nested objects inside arrays
    ("object in array by one key", P({"items": [{"id": 2}]}), [2]),
    ("object in array all keys", P({"items": [{"id": 1, "q": 2}]}), [2]),
    ("object in array keys from two elements", P({"items": [{"id": 2, "q": 2}]}), []),
    ("two objects in array", P({"items": [{"id": 1}, {"id": 2}]}), [2]),
    ("{} in array", P({"items": [{}]}), [2]),
    ("object against array", P({"items": {"id": 1}}), []),
    ("arrays in arrays", P({"arr": [[1]]}), [4]),
    ("arrays in arrays need one element", P({"arr": [[3, 1]]}), []),
    ("scalar against arrays of arrays", P({"arr": [1]}), []),
    ("deep nesting", P({"nested": {"deep": {"x": [{"y": "z"}]}}}), [5]),
    ("deep nesting scalar element", P({"nested": {"deep": {"x": [1]}}}), [5]),
    ("deep nesting wrong value", P({"nested": {"deep": {"x": [{"y": "Z"}]}}}), []),
    # objects: extra payload keys fine, extra pattern keys not
    ("object subset", P({"obj": {"k": "v"}}), [1]),
    ("object superset", P({"obj": {"k": "v", "extra": 1}}), []),
    ("two keys AND", P({"n": 1, "s": "x"}), []),
    ("two predicates OR", P({"n": 1}, {"s": "x"}), [1, 2, 3]),
    # strings, booleans, null
    ("null value", P({"z": None}), [3]),
    ("null is not a missing key", P({"missing": None}), []),
    ("false", P({"b": False}), [5]),
    ("true", P({"b": True}), [3]),
    ("string equal", P({"s": "x"}), [3]),
    ("string case", P({"s": "X"}), []),
    ("null does not match false", P({"b": None}), []),
]


@pytest.fixture
def dataset_store(store: Store) -> Store:
    for event_type, payload in DATASET:
        store.append([factstr.NewEvent(event_type, payload)])
    return store


@pytest.mark.parametrize(
    ("filters", "expected"),
    [(c[1], c[2]) for c in MATCHING_CASES],
    ids=[c[0] for c in MATCHING_CASES],
)
def test_matching(
    dataset_store: Store, filters: list[EventFilter] | None, expected: list[int]
) -> None:
    result = dataset_store.query(EventQuery(filters=filters))
    assert seqs_of(result.event_records) == expected
    assert result.last_returned_sequence_number == (expected[-1] if expected else None)
    assert result.current_context_version == (expected[-1] if expected else None)
    for record in result.event_records:
        assert (record.event_type, record.payload) == DATASET[record.sequence_number - 1]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [(c[1], c[2]) for c in MATCHING_CASES],
    ids=[c[0] for c in MATCHING_CASES],
)
def test_matching_is_the_same_for_append_if_contexts(
    dataset_store: Store, filters: list[EventFilter] | None, expected: list[int]
) -> None:
    context = EventQuery(filters=filters)
    version = expected[-1] if expected else None
    wrong = 1 if version is None else None
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        dataset_store.append_if([ev("new")], context, wrong)
    assert info.value.actual_context_version == version
    result = dataset_store.append_if([ev("new")], context, version)
    assert result.first_sequence_number == len(DATASET) + 1


def test_query_none_is_all(dataset_store: Store) -> None:
    assert dataset_store.query(None) == dataset_store.query(EventQuery.all())
    assert seqs_of(dataset_store.query().event_records) == ALL


def test_big_numbers_match_by_exact_value(store: Store) -> None:
    store.append([factstr.NewEvent("n", {"v": 2**64 - 1})])  # 1
    store.append([factstr.NewEvent("n", {"v": -(2**63)})])  # 2
    store.append([factstr.NewEvent("n", {"v": 2**53})])  # 3
    store.append([factstr.NewEvent("n", {"v": 0})])  # 4
    store.append([factstr.NewEvent("n", {"v": 0.5})])  # 5

    def match(pattern: Any) -> list[int]:
        return seqs_of(store.query(EventQuery(filters=P(pattern))).event_records)

    assert match({"v": 2**64 - 1}) == [1]
    assert match({"v": float(2**64 - 1)}) == []  # 2**64 as a float: another number
    assert match({"v": -(2**63)}) == [2]
    assert match({"v": float(-(2**63))}) == [2]  # exactly representable
    assert match({"v": float(2**53)}) == [3]
    assert match({"v": 2**53 + 1}) == []
    assert match({"v": -0.0}) == [4]
    assert match({"v": 0.0}) == [4]
    assert match({"v": 0.5}) == [5]
    assert match({"v": 1}) == []


def test_min_sequence_number_is_exclusive(dataset_store: Store) -> None:
    result = dataset_store.query(EventQuery(min_sequence_number=3))
    assert seqs_of(result.event_records) == [4, 5, 6, 7, 8]
    assert result.last_returned_sequence_number == 8
    assert result.current_context_version == 8
    zero = dataset_store.query(EventQuery(min_sequence_number=0))
    assert seqs_of(zero.event_records) == ALL


def test_min_sequence_number_does_not_narrow_context_version(dataset_store: Store) -> None:
    query = EventQuery(filters=[F(event_types=["A"])], min_sequence_number=3)
    result = dataset_store.query(query)
    assert seqs_of(result.event_records) == [6]
    assert result.current_context_version == 6

    query = EventQuery(filters=[F(event_types=["B"])], min_sequence_number=5)
    result = dataset_store.query(query)
    assert result.event_records == []
    assert result.last_returned_sequence_number is None
    assert result.current_context_version == 5

    result = dataset_store.query(EventQuery(min_sequence_number=1000))
    assert result.event_records == []
    assert result.last_returned_sequence_number is None
    assert result.current_context_version == 8


def test_min_sequence_number_with_nothing_matching(dataset_store: Store) -> None:
    result = dataset_store.query(EventQuery(filters=[F(event_types=["Z"])], min_sequence_number=2))
    assert result.event_records == []
    assert result.last_returned_sequence_number is None
    assert result.current_context_version is None


def test_with_min_sequence_number_builder(dataset_store: Store) -> None:
    query = EventQuery.for_event_types(["A"]).with_min_sequence_number(1)
    assert seqs_of(dataset_store.query(query).event_records) == [3, 6]
    query = EventQuery.all().with_filters([F(event_types=["C"])]).with_min_sequence_number(7)
    assert seqs_of(dataset_store.query(query).event_records) == [8]


def test_limit(dataset_store: Store) -> None:
    result = dataset_store.query(EventQuery.for_event_types(["A", "C"]), limit=2)
    assert seqs_of(result.event_records) == [1, 3]
    assert result.last_returned_sequence_number == 3
    assert result.current_context_version == 8

    result = dataset_store.query(limit=100)
    assert seqs_of(result.event_records) == ALL
    assert result.last_returned_sequence_number == 8

    result = dataset_store.query(EventQuery(min_sequence_number=4), limit=3)
    assert seqs_of(result.event_records) == [5, 6, 7]
    assert result.current_context_version == 8


def test_limit_zero_returns_nothing_but_the_version(dataset_store: Store) -> None:
    result = dataset_store.query(EventQuery.for_event_types(["B"]), limit=0)
    assert result.event_records == []
    assert result.last_returned_sequence_number is None
    assert result.current_context_version == 5


def test_negative_limit_is_a_value_error(dataset_store: Store) -> None:
    with pytest.raises(ValueError):
        dataset_store.query(limit=-1)
    with pytest.raises(ValueError):
        dataset_store.query(EventQuery.all(), limit=-5)


def test_paging_with_last_returned(dataset_store: Store) -> None:
    base = EventQuery(filters=[F(event_types=["A", "B", "C"])])
    pages: list[list[int]] = []
    after: int | None = None
    while True:
        result = dataset_store.query(base.with_min_sequence_number(after), limit=3)
        assert result.current_context_version == 8
        if not result.event_records:
            assert result.last_returned_sequence_number is None
            break
        pages.append(seqs_of(result.event_records))
        after = result.last_returned_sequence_number
    assert pages == [[1, 2, 3], [4, 5, 6], [7, 8]]


def test_query_result_is_a_list_of_records(dataset_store: Store) -> None:
    result = dataset_store.query()
    assert isinstance(result, factstr.QueryResult)
    assert isinstance(result.event_records, list)
    assert all(isinstance(r, factstr.EventRecord) for r in result.event_records)


def test_snapshot_consistency_under_concurrent_writers(store: Store) -> None:
    stop = threading.Event()

    def writer() -> None:
        # Bounded: when the reader is starved of the GIL (a loaded machine, many handler threads
        # left by earlier tests), an unbounded writer grew the store to gigabytes and each full
        # query with it (seen: > 15 min, 4.4 GB, CPython 3.10).
        i = 0
        while not stop.is_set() and i < 20_000:
            store.append([factstr.NewEvent("w", {"i": i}), factstr.NewEvent("other", {"i": i})])
            i += 1

    thread, errors, _ = run_in_thread(writer)
    try:
        query = EventQuery.for_event_types(["w"])
        for _ in range(200):
            result = store.query(query, limit=5)
            if result.last_returned_sequence_number is not None:
                assert result.current_context_version is not None
                assert result.last_returned_sequence_number <= result.current_context_version
            full = store.query(query)
            if full.event_records:
                assert full.last_returned_sequence_number == full.current_context_version
    finally:
        stop.set()
        thread.join(10)
    assert errors == []


def test_filters_are_not_coerced(store: Store) -> None:
    store.append(events("a", 2))
    assert seqs_of(store.query(EventQuery(filters=[F(event_types=None)])).event_records) == [1, 2]
    assert seqs_of(store.query(EventQuery(filters=[F(event_types=[])])).event_records) == []
    assert seqs_of(store.query(EventQuery(filters=[F(payload_predicates=None)])).event_records) == [
        1,
        2,
    ]
    assert seqs_of(store.query(EventQuery(filters=[F(payload_predicates=[])])).event_records) == []
    assert seqs_of(store.query(EventQuery(filters=None)).event_records) == [1, 2]
    assert seqs_of(store.query(EventQuery(filters=[])).event_records) == [1, 2]


def test_matching_through_another_store_object(
    shared_backend: None, make_store: StoreFactory, store: Store
) -> None:
    """Facts written through one store object match the same way through another (e.g. an index
    that another writer must keep up to date)."""
    other = make_store()
    for event_type, payload in DATASET:
        store.append([factstr.NewEvent(event_type, payload)])
    for name, filters, expected in MATCHING_CASES:
        result = other.query(EventQuery(filters=filters))
        assert seqs_of(result.event_records) == expected, name
        assert result.current_context_version == (expected[-1] if expected else None), name


# Keys and values that a payload index could confuse.
TRICKY: list[tuple[str, Any]] = [
    (
        "T",
        {"": 1, "a.b": 2, "a": {"b": 3}, "[0]": "x", 'quote"key': True, "ünï": "ç", "1": "one"},
    ),  # 1
    ("T", {"a.b": "2", "a": {"b": "3"}, "n": "1"}),  # 2
    ("T", {"n": 1, "s": "1"}),  # 3
    ("T", {"l": [[1, [2]], {"x": [3]}]}),  # 4
    ("T", {"e": "", "z": 0, "f": False, "nul": None}),  # 5
    ("T", {"a": [{"b": 3}]}),  # 6
]

TRICKY_CASES: list[tuple[str, Any, list[int]]] = [
    ("empty key", {"": 1}, [1]),
    ("dotted key", {"a.b": 2}, [1]),
    ("dotted key string value", {"a.b": "2"}, [2]),
    ("nested not dotted", {"a": {"b": 3}}, [1]),
    ("nested string", {"a": {"b": "3"}}, [2]),
    ("bracket key", {"[0]": "x"}, [1]),
    ("quote key", {'quote"key': True}, [1]),
    ("unicode key", {"ünï": "ç"}, [1]),
    ("digit key", {"1": "one"}, [1]),
    ("number is not its string", {"n": 1}, [3]),
    ("string is not its number", {"n": "1"}, [2]),
    ("string value vs number", {"s": 1}, []),
    ("deep array", {"l": [[[2]]]}, [4]),
    ("array in array", {"l": [[1]]}, [4]),
    ("object in array", {"l": [{"x": [3]}]}, [4]),
    ("scalar inside nested array", {"l": [[2]]}, []),
    ("empty string", {"e": ""}, [5]),
    ("zero", {"z": 0}, [5]),
    ("zero float", {"z": 0.0}, [5]),
    ("negative zero", {"z": -0.0}, [5]),
    ("false is not zero", {"z": False}, []),
    ("zero is not false", {"f": 0}, []),
    ("false", {"f": False}, [5]),
    ("null", {"nul": None}, [5]),
    ("null is not false", {"nul": False}, []),
    ("empty string is not null", {"e": None}, []),
    ("object vs array of objects", {"a": {"b": 3}}, [1]),
    ("array of objects", {"a": [{"b": 3}]}, [6]),
    ("array of objects not string", {"a": [{"b": "3"}]}, []),
]


@pytest.mark.parametrize(
    ("pattern", "expected"), [(c[1], c[2]) for c in TRICKY_CASES], ids=[c[0] for c in TRICKY_CASES]
)
def test_tricky_keys_and_values(store: Store, pattern: Any, expected: list[int]) -> None:
    for event_type, payload in TRICKY:
        store.append([factstr.NewEvent(event_type, payload)])
    query = EventQuery(filters=P(pattern))
    result = store.query(query)
    assert seqs_of(result.event_records) == expected
    assert result.current_context_version == (expected[-1] if expected else None)
    assert [r.payload for r in result.event_records] == [TRICKY[n - 1][1] for n in expected]
