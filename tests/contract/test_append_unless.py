"""SPEC §4: ``append_unless(events, fail_if_events_match, after=None)``, the Dynamic Consistency
Boundary condition: the batch is appended unless a fact matching the query has a sequence
number above ``after`` (``after=None``: any matching fact at all). Facts at or below ``after``
never conflict; a conflict reports ``expected_context_version=after`` and the context's current
version, and writes, numbers and delivers nothing."""

from __future__ import annotations

import factstr
import pytest
from factstr import EventFilter, EventQuery, NewEvent

from tests.support import Collector, Store, ev, events, seqs_of

ORDERS = EventQuery.for_event_types(["order"])
SQL_LARGEST = 2**63 - 1


def _conflict(
    store: Store, query: EventQuery, after: int | None
) -> factstr.ConditionalAppendConflict:
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_unless([ev("order")], query, after)
    return info.value


def test_after_none_on_an_empty_store_appends(store: Store) -> None:
    result = store.append_unless([ev("order"), ev("order")], ORDERS)
    assert (result.first_sequence_number, result.last_sequence_number, result.committed_count) == (
        1,
        2,
        2,
    )


def test_after_none_on_a_non_empty_store(store: Store) -> None:
    store.append([ev("other")])
    assert store.append_unless([ev("order")], ORDERS, None).first_sequence_number == 2
    conflict = _conflict(store, ORDERS, None)
    assert (conflict.expected_context_version, conflict.actual_context_version) == (None, 2)


def test_after_zero(store: Store) -> None:
    """``0`` is a real bound: it passes while no fact matches, and any matching fact is above it
    (unlike ``append_if``, where ``0`` never matches)."""
    assert store.append_unless([ev("other")], ORDERS, 0).first_sequence_number == 1
    assert store.append_unless([ev("order")], ORDERS, 0).first_sequence_number == 2
    conflict = _conflict(store, ORDERS, 0)
    assert (conflict.expected_context_version, conflict.actual_context_version) == (0, 2)


def test_facts_at_or_below_after_never_conflict(store: Store) -> None:
    store.append([ev("order"), ev("other"), ev("order")])
    # The newest order is 3: a bound at it, or anywhere above, lets the append through.
    assert store.append_unless([ev("order")], ORDERS, 3).first_sequence_number == 4
    assert store.append_unless([ev("order")], ORDERS, 4).first_sequence_number == 5
    conflict = _conflict(store, ORDERS, 2)
    assert (conflict.expected_context_version, conflict.actual_context_version) == (2, 5)
    # The conflict reports the newest matching fact, not the first one above the bound.
    conflict = _conflict(store, ORDERS, 0)
    assert conflict.actual_context_version == 5


def test_after_beyond_the_head(store: Store, store_kind: str) -> None:
    store.append([ev("order")])
    assert store.append_unless([ev("order")], ORDERS, 100).first_sequence_number == 2
    largest = 2**64 - 1 if store_kind == "memory" else SQL_LARGEST
    assert store.append_unless([ev("order")], ORDERS, largest).first_sequence_number == 3


def test_non_matching_facts_above_after_do_not_conflict(store: Store) -> None:
    account = EventQuery([EventFilter(["deposit"], [{"account": "a1"}])])
    store.append([NewEvent("deposit", {"account": "a1", "amount": 1})])
    # Above the bound: the same type with another payload, another type with the same payload.
    store.append([NewEvent("deposit", {"account": "a2", "amount": 1})])
    store.append([NewEvent("withdraw", {"account": "a1"})])
    store.append(events("other", 3))
    result = store.append_unless([NewEvent("deposit", {"account": "a1", "amount": 2})], account, 1)
    assert result.first_sequence_number == 7
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_unless([ev("x")], account, 6)
    assert (info.value.expected_context_version, info.value.actual_context_version) == (6, 7)


def test_many_lookalike_facts_above_after(store: Store) -> None:
    """More facts above the bound that look like matches (same type) than a store reads at once,
    with the one real match below all of them, or among them."""
    account = EventQuery([EventFilter(["deposit"], [{"account": "a1"}])])
    store.append([NewEvent("deposit", {"account": "a1"})])
    store.append([NewEvent("deposit", {"account": f"b{i}"}) for i in range(300)])
    assert store.append_unless([ev("x")], account, 1).first_sequence_number == 302
    store.append([NewEvent("deposit", {"account": "a1"})])  # 303
    store.append([NewEvent("deposit", {"account": f"c{i}"}) for i in range(300)])
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_unless([ev("x")], account, 1)
    assert info.value.actual_context_version == 303
    assert store.append_unless([ev("x")], account, 303).first_sequence_number == 604


def test_queries_with_several_filters_and_edge_shapes(store: Store) -> None:
    store.append([ev("a"), NewEvent("b", {"k": 1}), ev("c")])
    either = EventQuery([EventFilter(["a"]), EventFilter(payload_predicates=[{"k": 1}])])
    assert _conflict(store, either, 1).actual_context_version == 2
    assert store.append_unless([ev("z")], either, 2).first_sequence_number == 4
    everything = EventQuery.all()
    assert _conflict(store, everything, 3).actual_context_version == 4
    nothing = EventQuery([EventFilter(event_types=[])])
    assert store.append_unless([ev("z")], nothing, None).first_sequence_number == 5
    no_payload = EventQuery([EventFilter(["a"], [])])
    assert store.append_unless([ev("z")], no_payload, 0).first_sequence_number == 6


def test_events_need_not_match_the_query(store: Store) -> None:
    assert store.append_unless([ev("unrelated")], ORDERS).first_sequence_number == 1
    assert store.append_unless([ev("unrelated")], ORDERS).first_sequence_number == 2
    assert store.query(ORDERS).current_context_version is None


def test_min_sequence_number_of_the_query_is_ignored(store: Store) -> None:
    store.append(events("order", 3))
    bounded = ORDERS.with_min_sequence_number(100)
    conflict = _conflict(store, bounded, None)
    assert conflict.actual_context_version == 3
    assert _conflict(store, ORDERS.with_min_sequence_number(0), 2).actual_context_version == 3
    assert store.append_unless([ev("order")], bounded, 3).first_sequence_number == 4


def test_empty_events_raise_empty_append_before_any_check(store: Store, store_kind: str) -> None:
    store.append([ev("order")])
    for after in (None, 0, 1, 99):
        with pytest.raises(factstr.EmptyAppendError):
            store.append_unless([], ORDERS, after)
    if store_kind != "memory":
        with pytest.raises(factstr.EmptyAppendError):
            store.append_unless([], ORDERS, 2**63)
    assert seqs_of(store.query().event_records) == [1]


def test_conflict_writes_nothing_burns_nothing_delivers_nothing(store: Store) -> None:
    seen = Collector()
    store.stream_all(seen)
    store.append([ev("order")])
    for after in (None, 0):
        with pytest.raises(factstr.ConditionalAppendConflict):
            store.append_unless([ev("order"), ev("order")], ORDERS, after)
    assert seqs_of(store.query().event_records) == [1]
    assert store.append_unless([ev("order")], ORDERS, 1).first_sequence_number == 2
    seen.wait_records(2)
    assert seen.batch_seqs() == [[1], [2]]


def test_a_conflict_is_a_factstr_error(store: Store) -> None:
    store.append([ev("order")])
    with pytest.raises(factstr.FactstrError):
        store.append_unless([ev("order")], ORDERS)


@pytest.mark.parametrize("too_large", [2**63, 2**64 - 1])
def test_sql_stores_refuse_after_above_their_largest(
    store: Store, store_kind: str, too_large: int
) -> None:
    store.append([ev("order")])
    if store_kind == "memory":
        assert store.append_unless([ev("order")], ORDERS, too_large).first_sequence_number == 2
        return
    with pytest.raises(ValueError, match="after"):
        store.append_unless([ev("order")], ORDERS, too_large)
    assert seqs_of(store.query().event_records) == [1]


@pytest.mark.parametrize("bad", [-1, True, 1.0, "1"])
def test_after_must_be_a_sequence_number(store: Store, bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        store.append_unless([ev("order")], ORDERS, bad)  # type: ignore[arg-type]
    assert store.query().event_records == []


def test_keywords_and_text_that_needs_quoting(store: Store) -> None:
    """The query's types and the events' texts reach a PostgreSQL store inside its one-round-trip
    query: quotes and backslashes are kept as given."""
    tricky = "it's \\ E'\\'' $$ '); DROP TABLE events; --"
    store.append([ev(tricky)])
    query = EventQuery.for_event_types([tricky])
    with pytest.raises(factstr.ConditionalAppendConflict):
        store.append_unless(events=[ev(tricky)], fail_if_events_match=query)
    result = store.append_unless(
        events=[NewEvent(tricky, {"k": tricky})], fail_if_events_match=query, after=1
    )
    assert result.first_sequence_number == 2
    assert [(r.event_type, r.payload) for r in store.query(query).event_records] == [
        (tricky, {}),
        (tricky, {"k": tricky}),
    ]
