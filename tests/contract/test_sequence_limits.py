"""SPEC §7: sequence numbers and cursors range up to 2**64-1 in the memory store and up to 2**63-1
in the SQL stores (their columns are signed 64-bit, as in the Rust crates). A larger number given
to a SQL store raises ValueError before anything is written; it is never changed into another
number (a cursor of 2**64-1 must not silently become 2**63-1). A conditional append's context
ignores its ``min_sequence_number`` (SPEC §4), so there it is not checked."""

from __future__ import annotations

import factstr
import pytest
from factstr import EventFilter, EventQuery

from tests.support import Collector, Store, cursor_of, ev

SQL_LARGEST = 2**63 - 1
TOO_LARGE_FOR_SQL = [2**63, 2**64 - 1]


def _largest(store_kind: str) -> int:
    return 2**64 - 1 if store_kind == "memory" else SQL_LARGEST


def _register(store: Store, name: str) -> None:
    store.stream_all_durable(name, Collector()).unsubscribe()


def test_the_largest_sequence_numbers_are_accepted(store: Store, store_kind: str) -> None:
    largest = _largest(store_kind)
    store.append([ev("a")])
    assert store.query(EventQuery(min_sequence_number=largest)).event_records == []
    # The context version ignores the lower bound (SPEC §3).
    assert store.query(EventQuery(min_sequence_number=largest)).current_context_version == 1
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([ev("b")], EventQuery.all(), largest)
    assert info.value.expected_context_version == largest
    _register(store, "d")
    store.reset_durable_stream("d", largest)
    assert cursor_of(store, "d") == largest


@pytest.mark.parametrize("too_large", TOO_LARGE_FOR_SQL)
def test_sql_stores_refuse_larger_numbers_instead_of_changing_them(
    store: Store, store_kind: str, too_large: int
) -> None:
    if store_kind == "memory":
        pytest.skip("the memory store holds numbers up to 2**64-1")
    store.append([ev("a")])
    _register(store, "d")
    store.reset_durable_stream("d", 1)

    with pytest.raises(ValueError, match="sequence_number"):
        store.reset_durable_stream("d", too_large)
    assert cursor_of(store, "d") == 1

    with pytest.raises(ValueError, match="expected_context_version"):
        store.append_if([ev("b")], EventQuery.all(), too_large)
    with pytest.raises(ValueError, match="expected_context_version"):
        store.append_if([ev("b")], EventQuery([EventFilter(["a"])]), too_large)
    assert [r.sequence_number for r in store.query().event_records] == [1]

    with pytest.raises(ValueError, match="min_sequence_number"):
        store.query(EventQuery(min_sequence_number=too_large))
    with pytest.raises(ValueError, match="min_sequence_number"):
        store.query(EventQuery([EventFilter(["a"], [{"k": 1}])], too_large), limit=1)

    # Nothing was written, and the store goes on as before.
    assert store.append([ev("c")]).first_sequence_number == 2
    assert cursor_of(store, "d") == 1


def test_memory_keeps_cursors_up_to_2_64_minus_1(store: Store, store_kind: str) -> None:
    if store_kind != "memory":
        pytest.skip("the SQL stores hold numbers up to 2**63-1")
    _register(store, "d")
    store.reset_durable_stream("d", 2**63)
    assert cursor_of(store, "d") == 2**63
    store.reset_durable_stream("d", 2**64 - 1)
    assert cursor_of(store, "d") == 2**64 - 1
