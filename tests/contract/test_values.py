"""SPEC §7 and §11: value types and input validation."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import factstr
import pytest
from factstr import AppendResult, DurableStream, EventFilter, EventQuery, EventRecord, NewEvent

from tests.support import Collector, Store, ev, seqs_of

BAD = (TypeError, ValueError)


# --- immutability, equality, repr -------------------------------------------------------------


def _values(store: Store) -> list[tuple[object, list[str]]]:
    result = store.append([NewEvent("t", {"a": 1})])
    query_result = store.query()
    record = query_result.event_records[0]
    with store.stream_all_durable("d", Collector()):
        pass
    info = store.durable_streams()[0]
    return [
        (NewEvent("t", {"a": 1}), ["event_type", "payload"]),
        (EventFilter(["t"], [{"a": 1}]), ["event_types", "payload_predicates"]),
        (EventQuery([EventFilter(["t"])], 3), ["filters", "min_sequence_number"]),
        (record, ["sequence_number", "occurred_at", "event_type", "payload"]),
        (
            query_result,
            ["event_records", "last_returned_sequence_number", "current_context_version"],
        ),
        (result, ["first_sequence_number", "last_sequence_number", "committed_count"]),
        (DurableStream("d"), ["name"]),
        (info, ["name", "query", "last_processed_sequence_number"]),
    ]


def test_value_types_are_immutable(store: Store) -> None:
    for value, fields in _values(store):
        for field in fields:
            original = getattr(value, field)
            with pytest.raises(AttributeError):
                setattr(value, field, original)
        with pytest.raises(AttributeError):
            setattr(value, "some_new_attribute", 1)


def test_value_types_have_a_readable_repr(store: Store) -> None:
    for value, _ in _values(store):
        text = repr(value)
        assert type(value).__name__ in text
        assert "object at 0x" not in text
    assert "'t'" in repr(NewEvent("t", {"a": 1})) or '"t"' in repr(NewEvent("t", {"a": 1}))
    assert "'d'" in repr(DurableStream("d")) or '"d"' in repr(DurableStream("d"))


def test_value_types_compare_by_value(store: Store) -> None:
    assert NewEvent("t", {"a": 1, "b": [1, 2]}) == NewEvent("t", {"b": [1, 2], "a": 1})
    assert NewEvent("t", {"a": 1}) != NewEvent("t", {"a": 2})
    assert NewEvent("t", {"a": 1}) != NewEvent("u", {"a": 1})
    assert EventFilter(["a"], [{"x": 1}]) == EventFilter(["a"], [{"x": 1}])
    assert EventFilter(["a"]) != EventFilter(["b"])
    assert EventFilter() == EventFilter(None, None)
    assert EventFilter(event_types=None) != EventFilter(event_types=[])
    assert EventFilter(payload_predicates=None) != EventFilter(payload_predicates=[])
    assert EventQuery() == EventQuery.all()
    assert EventQuery(filters=None) != EventQuery(filters=[EventFilter(event_types=[])])
    assert EventQuery([EventFilter(["a"])], 2) == EventQuery([EventFilter(["a"])], 2)
    assert EventQuery([EventFilter(["a"])], 2) != EventQuery([EventFilter(["a"])], 3)
    assert EventQuery([EventFilter(["a"])]) != EventQuery([EventFilter(["a"])], 0)
    assert DurableStream("d") == DurableStream("d")
    assert DurableStream("d") != DurableStream("e")
    at = dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)
    assert EventRecord(1, at, "t", {"a": 1}) == EventRecord(1, at, "t", {"a": 1})
    assert EventRecord(1, at, "t", {"a": 1}) != EventRecord(2, at, "t", {"a": 1})
    assert EventRecord(1, at, "t", {"a": 1}) != EventRecord(1, at, "t", {"a": 2})
    first = store.append([ev("a"), ev("b")])
    second = store.append([ev("a"), ev("b")])
    assert first != second
    assert store.query() == store.query()
    assert store.query().event_records[0] == store.query().event_records[0]
    assert store.query().event_records[0] != store.query().event_records[1]


def test_event_record_can_be_constructed() -> None:
    at = dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)
    record = EventRecord(7, at, "t", {"a": [1, 2]})
    assert record.sequence_number == 7
    assert record.occurred_at == at
    assert record.event_type == "t"
    assert record.payload == {"a": [1, 2]}


def test_records_from_the_store_equal_constructed_ones(store: Store) -> None:
    store.append([NewEvent("t", {"a": [1, 2]})])
    stored = store.query().event_records[0]
    assert stored == EventRecord(1, stored.occurred_at, "t", {"a": [1, 2]})


def test_filter_lists_are_copies() -> None:
    types = ["a"]
    predicates: list[Any] = [{"x": 1}]
    f = EventFilter(types, predicates)
    types.append("b")
    predicates.append({"y": 2})
    assert f.event_types == ["a"]
    assert f.payload_predicates == [{"x": 1}]
    got = f.event_types
    assert isinstance(got, list)
    got.append("c")
    assert f.event_types == ["a"]
    got_predicates = f.payload_predicates
    assert got_predicates is not None
    got_predicates.clear()
    assert f.payload_predicates == [{"x": 1}]
    assert EventFilter().event_types is None
    assert EventFilter().payload_predicates is None
    assert EventFilter([], []).event_types == []
    assert EventFilter([], []).payload_predicates == []


def test_query_filters_are_copies() -> None:
    filters = [EventFilter(["a"])]
    q = EventQuery(filters)
    filters.append(EventFilter(["b"]))
    assert q.filters == [EventFilter(["a"])]
    got = q.filters
    assert got is not None
    got.append(EventFilter(["c"]))
    assert q.filters == [EventFilter(["a"])]
    assert EventQuery().filters is None
    assert EventQuery([]).filters == []
    assert EventQuery().min_sequence_number is None


def test_query_builders() -> None:
    assert EventQuery.all() == EventQuery(None, None)
    assert EventQuery.for_event_types(["a", "b"]) == EventQuery(
        [EventFilter(event_types=["a", "b"])]
    )
    base = EventQuery.for_event_types(["a"])
    with_min = base.with_min_sequence_number(5)
    assert with_min.min_sequence_number == 5
    assert with_min.filters == base.filters
    assert base.min_sequence_number is None  # unchanged
    replaced = with_min.with_filters([EventFilter(payload_predicates=[{"k": 1}])])
    assert replaced.filters == [EventFilter(payload_predicates=[{"k": 1}])]
    assert replaced.min_sequence_number == 5
    assert with_min.with_min_sequence_number(None).min_sequence_number is None
    assert base.with_filters(None).filters is None


def test_keyword_arguments() -> None:
    assert NewEvent(event_type="t", payload={}) == NewEvent("t", {})
    f = EventFilter(event_types=["t"], payload_predicates=[{}])
    assert EventQuery(filters=[f], min_sequence_number=1) == EventQuery([f], 1)
    assert DurableStream(name="d").name == "d"


def test_new_event_fields() -> None:
    e = NewEvent("type", {"k": [1, 2.5, "s", None, True]})
    assert e.event_type == "type"
    assert e.payload == {"k": [1, 2.5, "s", None, True]}


# --- payload round trips ----------------------------------------------------------------------

ROUND_TRIPS: list[Any] = [
    {},
    {"a": 1},
    {"nested": {"deep": {"list": [1, [2, [3, {"x": None}]]]}}},
    {"ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1]},
    {"floats": [0.1, -2.5, 1e300, -1e-300, 5e-324, 1.0]},
    {"bools": [True, False], "none": None},
    {"unicode": "zoë 🙂 \u2028 \ud7ff", "": "empty key", 'quote"s': "back\\slash"},
    {"big": "x" * 10_000},
    [1, "two", {"three": 3}],
    "just a string",
    42,
    2.5,
    True,
    None,
    [],
]


@pytest.mark.parametrize(
    "payload", ROUND_TRIPS, ids=[f"payload{i}" for i in range(len(ROUND_TRIPS))]
)
def test_payload_round_trip(store: Store, payload: Any) -> None:
    assert NewEvent("t", payload).payload == payload
    store.append([NewEvent("t", payload)])
    got = store.query().event_records[0].payload
    assert got == payload
    assert type(got) is type(payload)


def test_ints_and_floats_keep_their_kind(store: Store) -> None:
    store.append([NewEvent("t", {"i": 1, "f": 1.0, "b": True, "big": 2**64 - 1})])
    payload = store.query().event_records[0].payload
    assert type(payload["i"]) is int
    assert type(payload["f"]) is float
    assert payload["b"] is True
    assert payload["big"] == 2**64 - 1


def test_tuples_are_read_back_as_lists(store: Store) -> None:
    store.append([NewEvent("t", {"t": (1, (2, 3)), "l": [(4,)]})])
    assert store.query().event_records[0].payload == {"t": [1, [2, 3]], "l": [[4]]}


def test_payload_is_a_snapshot_of_the_input(store: Store) -> None:
    payload: dict[str, Any] = {"a": [1]}
    event = NewEvent("t", payload)
    payload["a"].append(2)
    payload["b"] = 3
    store.append([event])
    assert store.query().event_records[0].payload == {"a": [1]}
    returned = store.query().event_records[0].payload
    returned["mutated"] = True
    assert store.query().event_records[0].payload == {"a": [1]}


# --- invalid payloads name their path ---------------------------------------------------------


class Custom:
    pass


BAD_PAYLOADS: list[tuple[str, Any, str]] = [
    ("set in list", {"items": [1, 2, {1, 2}]}, "payload['items'][2]"),
    ("frozenset", {"a": frozenset()}, "payload['a']"),
    ("bytes", {"a": {"b": b"raw"}}, "payload['a']['b']"),
    ("bytearray", {"a": bytearray(b"x")}, "payload['a']"),
    ("nan", {"x": [0.0, math.nan]}, "payload['x'][1]"),
    ("inf", {"x": math.inf}, "payload['x']"),
    ("-inf", {"x": {"y": -math.inf}}, "payload['x']['y']"),
    ("int too big", {"n": [2**64]}, "payload['n'][0]"),
    ("int too small", {"n": -(2**63) - 1}, "payload['n']"),
    ("non-str key", {"a": {1: "x"}}, "payload['a']"),
    ("tuple key", {"a": {(1,): "x"}}, "payload['a']"),
    ("nul in string", {"s": ["ok", "a\x00b"]}, "payload['s'][1]"),
    ("object", {"o": Custom()}, "payload['o']"),
    ("datetime", {"when": dt.datetime(2024, 1, 1)}, "payload['when']"),
    ("top-level set", {1, 2}, "payload"),
    ("top-level bytes", b"x", "payload"),
    ("top-level nan", math.nan, "payload"),
]


@pytest.mark.parametrize(
    ("payload", "path"), [(c[1], c[2]) for c in BAD_PAYLOADS], ids=[c[0] for c in BAD_PAYLOADS]
)
def test_bad_payload_is_rejected_naming_the_path(payload: Any, path: str) -> None:
    with pytest.raises(BAD) as info:
        NewEvent("t", payload)
    assert path in str(info.value)


def test_nul_in_key_is_rejected() -> None:
    with pytest.raises(BAD) as info:
        NewEvent("t", {"ok": {"a\x00": 1}})
    assert "payload['ok']" in str(info.value)


def test_extreme_ints_are_accepted() -> None:
    NewEvent("t", {"n": [2**64 - 1, -(2**63)]})


def test_bad_predicates_are_rejected() -> None:
    with pytest.raises(BAD):
        EventFilter(payload_predicates=[{"a": {1, 2}}])
    with pytest.raises(BAD):
        EventFilter(payload_predicates=[{"a": math.nan}])
    with pytest.raises(BAD):
        EventFilter(payload_predicates=[{"a": 2**64}])


def test_bad_payload_writes_nothing(store: Store) -> None:
    store.append([ev("a")])
    with pytest.raises(BAD):
        store.append([ev("b"), NewEvent("c", {"items": [1, 2, {3}]})])
    assert seqs_of(store.query().event_records) == [1]
    assert store.append([ev("d")]).first_sequence_number == 2


# --- event types, names, sequence numbers -----------------------------------------------------


@pytest.mark.parametrize("bad", ["", None, 5, b"t", ["t"]])
def test_bad_event_type(bad: object) -> None:
    with pytest.raises(BAD):
        NewEvent(bad, {})  # type: ignore[call-overload]


def test_empty_event_type_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        NewEvent("", {})


def test_event_type_with_spaces_and_unicode_is_fine(store: Store) -> None:
    store.append([NewEvent("Order placed ✓", {})])
    assert (
        store.query(EventQuery.for_event_types(["Order placed ✓"])).event_records[0].event_type
        == "Order placed ✓"
    )


@pytest.mark.parametrize("bad", ["", None, 5, b"d"])
def test_bad_durable_names(store: Store, bad: object) -> None:
    with pytest.raises(BAD):
        DurableStream(bad)  # type: ignore[arg-type]
    with pytest.raises(BAD):
        store.stream_all_durable(bad, Collector())  # type: ignore[arg-type]
    with pytest.raises(BAD):
        store.stream_to_durable(bad, EventQuery.all(), Collector())  # type: ignore[arg-type]
    with pytest.raises(BAD):
        store.reset_durable_stream(bad)  # type: ignore[arg-type]
    with pytest.raises(BAD):
        store.delete_durable_stream(bad)  # type: ignore[arg-type]
    if bad is not None:  # durable=None is a plain live subscription, not an error
        with pytest.raises(BAD):
            store.subscribe(durable=bad)  # type: ignore[arg-type]
    assert store.durable_streams() == []


@pytest.mark.parametrize("bad", [True, False, -1, 2**64, 1.0, "1"])
def test_bad_sequence_numbers(store: Store, bad: object) -> None:
    with pytest.raises(BAD):
        EventQuery(min_sequence_number=bad)  # type: ignore[arg-type]
    with pytest.raises(BAD):
        EventQuery.all().with_min_sequence_number(bad)  # type: ignore[arg-type]
    with pytest.raises(BAD):
        store.append_if([ev("a")], EventQuery.all(), bad)  # type: ignore[arg-type]
    assert store.query().event_records == []


def test_largest_sequence_numbers_are_accepted() -> None:
    # What each store then does with them (the SQL stores hold at most 2**63-1):
    # test_sequence_limits.py.
    assert EventQuery(min_sequence_number=2**64 - 1).min_sequence_number == 2**64 - 1


def test_bad_limits(store: Store) -> None:
    with pytest.raises(ValueError):
        store.query(limit=-1)
    with pytest.raises(BAD):
        store.query(limit="3")  # type: ignore[arg-type]


def test_bad_filter_arguments() -> None:
    with pytest.raises(TypeError):
        EventQuery(filters=["not a filter"])  # type: ignore[list-item]
    with pytest.raises(BAD):
        EventFilter(event_types=[5])  # type: ignore[list-item]


def test_bad_handler_is_rejected(store: Store) -> None:
    with pytest.raises(TypeError):
        store.stream_all("not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.stream_all_durable("d", 5)  # type: ignore[arg-type]


def test_append_result_fields(store: Store) -> None:
    result = store.append([ev("a"), ev("b")])
    assert isinstance(result, AppendResult)
    assert (result.first_sequence_number, result.last_sequence_number, result.committed_count) == (
        1,
        2,
        2,
    )


def test_store_as_context_manager() -> None:
    with factstr.MemoryStore() as store:
        store.append([ev("a")])
        assert not store.closed
    assert store.closed


def test_lone_surrogates_are_rejected_naming_the_path() -> None:
    with pytest.raises(BAD) as info:
        NewEvent("t", {"a": ["ok", "\ud800"]})
    assert "payload['a'][1]" in str(info.value)
    with pytest.raises(BAD):
        NewEvent("t", {"\udc00": 1})
    with pytest.raises(BAD):
        NewEvent("\ud800", {})


def test_moderate_nesting_round_trips(store: Store) -> None:
    payload: Any = {"leaf": 1}
    for depth in range(64):
        payload = {"d": [payload]} if depth % 2 else [payload]
    store.append([NewEvent("t", payload)])
    assert store.query().event_records[0].payload == payload


def test_absurd_nesting_does_not_crash(store: Store) -> None:
    payload: Any = []
    for _ in range(100_000):
        payload = [payload]
    try:
        store.append([NewEvent("t", {"p": payload})])
    except (TypeError, ValueError, RecursionError):
        assert store.query().event_records == []
    else:
        assert len(store.query().event_records) == 1


def test_subclasses_of_json_types_are_accepted(store: Store) -> None:
    import collections
    import enum

    class Color(enum.IntEnum):
        RED = 1

    class Name(str):
        pass

    store.append([NewEvent("t", collections.OrderedDict(c=Color.RED, n=Name("x"), f=1.5))])
    payload = store.query().event_records[0].payload
    assert payload == {"c": 1, "n": "x", "f": 1.5}
