"""SPEC §11: the value types behave like Python values (hash, pickle, copy, match, len/iter,
repr), and a record's payload cannot be changed through the record or its source dict."""

from __future__ import annotations

import copy
import datetime as dt
import importlib.metadata
import pickle
import subprocess
import sys
from typing import Any

import factstr
import pytest
from factstr import (
    AppendResult,
    DurableStream,
    DurableStreamInfo,
    EventFilter,
    EventQuery,
    EventRecord,
    MemoryStore,
    NewEvent,
    QueryResult,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import Collector, Store

AT = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)

# Every value type, built from plain literals (also evaluated in a child process below).
VALUES_SOURCE = """[
    NewEvent("t", {"a": 1, "b": [1.5, None, True, "x"], "c": {}}),
    EventFilter(["t", "u"], [{"a": 1}, [2]]),
    EventFilter(None, None),
    EventQuery([EventFilter(["t"]), EventFilter(None, [{"k": "v"}])], 3),
    EventQuery(),
    EventRecord(7, AT, "t", {"a": [1, {"b": 2}]}),
    QueryResult([EventRecord(1, AT, "t", {}), EventRecord(2, AT, "u", [1])], 2, 5),
    QueryResult([], None, None),
    QueryResult([EventRecord(3, AT, "t", {})], 3, 3, 9),
    AppendResult(1, 3, 3),
    DurableStream("d"),
    DurableStreamInfo("d", EventQuery([EventFilter(["t"])]), 4),
]"""


def _values() -> list[Any]:
    namespace: dict[str, Any] = {name: getattr(factstr, name) for name in factstr.__all__}
    namespace["AT"] = AT
    values: list[Any] = eval(VALUES_SOURCE, namespace)
    return values


MATCH_ARGS = {
    NewEvent: ("event_type", "payload"),
    EventFilter: ("event_types", "payload_predicates"),
    EventQuery: ("filters", "min_sequence_number"),
    EventRecord: ("sequence_number", "occurred_at", "event_type", "payload"),
    QueryResult: (
        "event_records",
        "last_returned_sequence_number",
        "current_context_version",
        "head_sequence_number",
    ),
    AppendResult: ("first_sequence_number", "last_sequence_number", "committed_count"),
    DurableStream: ("name",),
    DurableStreamInfo: ("name", "query", "last_processed_sequence_number"),
}


def _store_values(store: Store) -> list[Any]:
    """The value types as a store returns them."""
    result = store.append([NewEvent("t", {"a": 1, "n": [1, 2.5]})])
    query_result = store.query()
    with store.stream_all_durable("d", Collector()):
        pass
    return [result, query_result, query_result.event_records[0], store.durable_streams()[0]]


def test_version_is_the_package_metadata_version() -> None:
    assert factstr.__version__ == importlib.metadata.version("factstr")
    assert factstr.__version__[0].isdigit()


def test_every_value_type_is_covered() -> None:
    assert {type(v) for v in _values()} == set(MATCH_ARGS)


@pytest.mark.parametrize("index", range(11))
def test_equal_values_hash_equal_pickle_and_copy(index: int) -> None:
    value, twin = _values()[index], _values()[index]
    assert value == twin and value is not twin
    assert hash(value) == hash(twin)
    assert {value: 1}[twin] == 1
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(value, protocol))
        assert type(again) is type(value)
        assert again == value and hash(again) == hash(value)
        assert repr(again) == repr(value)
    assert copy.copy(value) == value
    assert copy.deepcopy(value) == value


def test_values_from_every_store_hash_pickle_and_copy(store: Store) -> None:
    for value in _store_values(store):
        again = pickle.loads(pickle.dumps(value))
        assert again == value and hash(again) == hash(value)
        assert copy.deepcopy(value) == value and hash(copy.copy(value)) == hash(value)


def test_values_pickled_in_another_process_are_equal() -> None:
    script = (
        "import datetime as dt, pickle, sys, factstr\n"
        "from factstr import *\n"
        "AT = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)\n"
        f"sys.stdout.buffer.write(pickle.dumps({VALUES_SOURCE}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=60, check=True
    )
    theirs = pickle.loads(done.stdout)
    ours = _values()
    assert theirs == ours
    assert [hash(v) for v in theirs] == [hash(v) for v in ours]


def test_numbers_and_key_order_hash_as_they_compare() -> None:
    assert NewEvent("t", {"a": 1, "b": 2.0}) == NewEvent("t", {"b": 2, "a": 1.0})
    assert hash(NewEvent("t", {"a": 1, "b": 2.0})) == hash(NewEvent("t", {"b": 2, "a": 1.0}))
    assert hash(EventFilter(None, [{"x": 0}])) == hash(EventFilter(None, [{"x": -0.0}]))
    assert NewEvent("t", {"a": 1}) != NewEvent("t", {"a": 2})
    assert EventFilter(None, None) != EventFilter([], None)
    assert EventFilter(None, None) != EventFilter(None, [])


_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=5)
_json: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(payload=_json, seq=st.integers(0, 2**64 - 1))
def test_any_payload_round_trips_and_hashes_consistently(payload: Any, seq: int) -> None:
    event = NewEvent("t", payload)
    record = EventRecord(seq, AT, "t", payload)
    for value in (
        event,
        record,
        EventFilter(["t"], [payload]),
        EventQuery([EventFilter(None, [payload])], seq),
    ):
        again = pickle.loads(pickle.dumps(value))
        assert again == value and hash(again) == hash(value)
    assert record.payload == payload
    # An equal payload built another way (ints as floats where exact, keys reversed) hashes the same.
    twin = NewEvent("t", _reshaped(payload))
    if twin == event:
        assert hash(twin) == hash(event)


def _reshaped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reshaped(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, list):
        return [_reshaped(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        return float(value)
    return value


def test_match_by_position_in_the_order_of_the_spec() -> None:
    for value in _values():
        assert type(value).__match_args__ == MATCH_ARGS[type(value)]
    record = EventRecord(7, AT, "CourseOpened", {"id": 1})
    match record:
        case EventRecord(seq, at, "CourseOpened", payload):
            assert (seq, at, payload) == (7, AT, {"id": 1})
        case _:
            pytest.fail("no match")
    match AppendResult(1, 3, 3):
        case AppendResult(first, last, count):
            assert (first, last, count) == (1, 3, 3)
    match DurableStreamInfo("d", EventQuery(), 4):
        case DurableStreamInfo("d", EventQuery(None, None), cursor):
            assert cursor == 4
        case _:
            pytest.fail("no match")


def test_query_result_has_len_and_iterates_over_its_records() -> None:
    store = MemoryStore()
    store.append([NewEvent("t", {"i": i}) for i in range(5)])
    result = store.query()
    assert len(result) == 5
    assert list(result) == result.event_records
    assert [r.sequence_number for r in result] == [1, 2, 3, 4, 5]
    assert len(store.query(limit=0)) == 0 and list(store.query(limit=0)) == []
    # The records list handed out is a copy: changing it does not change the result.
    result.event_records.clear()
    assert len(result) == 5 and len(result.event_records) == 5


def test_a_record_payload_cannot_be_changed_through_the_record(store: Store) -> None:
    store.append([NewEvent("t", {"k": 1, "items": [1]})])
    record = store.query().event_records[0]
    record.payload["k"] = 2
    record.payload["items"].append(2)
    assert record.payload == {"k": 1, "items": [1]}
    assert record.payload is not record.payload


def test_a_record_payload_cannot_be_changed_through_the_dict_it_was_built_from() -> None:
    source: dict[str, Any] = {"k": 1, "items": [1]}
    record = EventRecord(1, AT, "t", source)
    before = hash(record)
    source["k"] = 2
    source["items"].append(2)
    assert record.payload == {"k": 1, "items": [1]}
    assert hash(record) == before


def test_reprs_are_python_style(store: Store) -> None:
    for value in _values() + _store_values(store):
        text = repr(value)
        assert text.startswith(type(value).__name__ + "(")
        assert "true" not in text and "false" not in text
    assert repr(EventRecord(1, AT, "t", {"a": True, "b": None})) == (
        f"EventRecord(sequence_number=1, occurred_at={AT!r}, event_type='t', payload={{'a': True, 'b': None}})"
    )
    assert repr(store).startswith(type(store).__name__ + "(")
    with store.stream_all(Collector()) as stream:
        assert repr(stream) == f"EventStream(id={stream.id}, active=True)"
    assert repr(stream) == f"EventStream(id={stream.id}, active=False)"
    with store.stream_all_durable("it's", Collector()) as durable:
        assert repr(durable) == f'EventStream(id={durable.id}, active=True, durable="it\'s")'
    with store.subscribe(durable="d2") as subscription:
        assert repr(subscription) == "Subscription(closed=False, durable='d2')"
    assert repr(subscription).startswith("Subscription(closed=True")
