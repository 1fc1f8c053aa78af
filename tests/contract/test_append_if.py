"""SPEC §4: conditional append."""

from __future__ import annotations

import threading

import factstr
import pytest
from factstr import EventQuery

from tests.support import Collector, Store, ev, events, run_in_thread, seqs_of

ORDERS = EventQuery.for_event_types(["order"])


def test_none_succeeds_on_empty_context(store: Store) -> None:
    store.append([ev("other")])
    result = store.append_if([ev("order")], ORDERS, None)
    assert (result.first_sequence_number, result.last_sequence_number, result.committed_count) == (
        2,
        2,
        1,
    )


def test_none_fails_on_non_empty_context(store: Store) -> None:
    store.append([ev("order")])
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([ev("order")], ORDERS, None)
    assert info.value.expected_context_version is None
    assert info.value.actual_context_version == 1


def test_zero_never_matches_empty_context(store: Store) -> None:
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([ev("order")], ORDERS, 0)
    assert info.value.expected_context_version == 0
    assert info.value.actual_context_version is None
    store.append([ev("other")])
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([ev("order")], ORDERS, 0)
    assert info.value.actual_context_version is None
    assert store.query().current_context_version == 1


def test_zero_never_matches_non_empty_context(store: Store) -> None:
    store.append([ev("order")])
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([ev("order")], ORDERS, 0)
    assert info.value.expected_context_version == 0
    assert info.value.actual_context_version == 1


def test_fresh_version_succeeds_stale_fails(store: Store) -> None:
    store.append([ev("order"), ev("other")])
    result = store.append_if([ev("order"), ev("order")], ORDERS, 1)
    assert (result.first_sequence_number, result.last_sequence_number, result.committed_count) == (
        3,
        4,
        2,
    )
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([ev("order")], ORDERS, 1)
    assert info.value.expected_context_version == 1
    assert info.value.actual_context_version == 4
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([ev("order")], ORDERS, 5)
    assert info.value.actual_context_version == 4
    assert store.append_if([ev("order")], ORDERS, 4).first_sequence_number == 5


def test_other_facts_do_not_change_the_context(store: Store) -> None:
    store.append([ev("order")])
    store.append(events("other", 3))
    result = store.append_if([ev("order")], ORDERS, 1)
    assert result.first_sequence_number == 5


def test_context_ignores_min_sequence_number(store: Store) -> None:
    store.append(events("order", 3))
    context = ORDERS.with_min_sequence_number(100)
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([ev("order")], context, None)
    assert info.value.actual_context_version == 3
    assert store.append_if([ev("order")], context, 3).first_sequence_number == 4


def test_context_with_payload_predicate(store: Store) -> None:
    context = EventQuery(filters=[factstr.EventFilter(payload_predicates=[{"account": "a1"}])])
    store.append([factstr.NewEvent("deposit", {"account": "a1", "amount": 1})])
    store.append([factstr.NewEvent("deposit", {"account": "a2", "amount": 1})])
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([factstr.NewEvent("withdraw", {"account": "a1"})], context, 2)
    assert info.value.actual_context_version == 1
    result = store.append_if([factstr.NewEvent("withdraw", {"account": "a1"})], context, 1)
    assert result.first_sequence_number == 3


@pytest.mark.parametrize("facts", [1, 255, 256, 257, 600])
def test_context_version_is_exact_for_rare_and_common_keys(store: Store, facts: int) -> None:
    """Stores read a rare key's index entries whole and count a common one's: either way the
    version is the newest matching fact, and a stale version conflicts."""
    for i in range(facts):
        store.append([factstr.NewEvent("deposit", {"account": "busy", "n": i})])  # one batch each
        if i % 100 == 0:
            store.append([factstr.NewEvent("deposit", {"account": "other", "n": i})])
    newest = store.append(
        [factstr.NewEvent("deposit", {"account": "busy", "n": -1})]
    ).last_sequence_number
    store.append([factstr.NewEvent("deposit", {"account": "other", "n": -1})])
    busy = EventQuery(filters=[factstr.EventFilter(["deposit"], [{"account": "busy"}])])
    both = EventQuery(
        filters=[factstr.EventFilter(payload_predicates=[{"account": "busy", "n": -1}, {"n": 0}])]
    )
    assert store.query(busy, limit=0).current_context_version == newest
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([ev("withdraw")], busy, newest - 1)
    assert info.value.actual_context_version == newest
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([ev("withdraw")], both, newest - 1)
    assert info.value.actual_context_version == newest
    assert store.append_if([ev("withdraw")], both, newest).first_sequence_number == newest + 2
    assert len(store.query(busy).event_records) == facts + 1


def test_any_text_round_trips_through_append_if(store: Store) -> None:
    """Quotes, backslashes, escape-like sequences and SQL fragments are stored as given (a
    PostgreSQL store sends a conditional append's values inside its commit's query)."""
    tricky = [
        "it's",
        "back\\slash",
        "\\x00",
        "E'\\'",
        "$$",
        "$f$",
        "é🙂",
        "line\nbreak",
        "\\u0000",
        "'); DROP TABLE events; --",
    ]
    payload = {"k": tricky, "it's": {"\\": '"', "n": [1.5, -2, None, True]}}
    new = [
        factstr.NewEvent("type 'q' \\b\\", payload),
        factstr.NewEvent("$$E'\\'", {"t": tricky[0]}),
    ]
    result = store.append_if(new, EventQuery.for_event_types(["x"]), None)
    assert (result.first_sequence_number, result.last_sequence_number) == (1, 2)
    records = store.query().event_records
    assert [(r.event_type, r.payload) for r in records] == [(e.event_type, e.payload) for e in new]
    found = store.query(
        EventQuery(
            filters=[factstr.EventFilter(payload_predicates=[{"k": ["'); DROP TABLE events; --"]}])]
        )
    )
    assert seqs_of(found.event_records) == [1]


def test_new_events_need_not_match_the_context(store: Store) -> None:
    result = store.append_if([ev("unrelated")], ORDERS, None)
    assert result.first_sequence_number == 1
    assert store.append_if([ev("unrelated")], ORDERS, None).first_sequence_number == 2


def test_empty_events_raise_empty_append_before_any_check(store: Store) -> None:
    store.append([ev("order")])
    with pytest.raises(factstr.EmptyAppendError):
        store.append_if([], ORDERS, 1)  # would succeed
    with pytest.raises(factstr.EmptyAppendError):
        store.append_if([], ORDERS, None)  # would conflict
    with pytest.raises(factstr.EmptyAppendError):
        store.append_if([], ORDERS, 0)
    assert seqs_of(store.query().event_records) == [1]


def test_conflict_writes_nothing_and_burns_nothing_and_delivers_nothing(store: Store) -> None:
    seen = Collector()
    store.stream_all(seen)
    store.append([ev("order")])
    for expected in (None, 0, 2, 99):
        with pytest.raises(factstr.ConditionalAppendConflict):
            store.append_if([ev("order"), ev("order")], ORDERS, expected)
    assert seqs_of(store.query().event_records) == [1]
    assert store.append_if([ev("order")], ORDERS, 1).first_sequence_number == 2
    seen.wait_records(2)
    assert seen.batch_seqs() == [[1], [2]]


def test_conflict_is_a_factstr_error(store: Store) -> None:
    store.append([ev("order")])
    with pytest.raises(factstr.FactstrError):
        store.append_if([ev("order")], ORDERS, None)


def _race_append_if(store: Store, threads: int) -> list[object]:
    """``threads`` threads call ``append_if`` with the same expected version at once; returns
    what each got (an ``AppendResult`` or the ``ConditionalAppendConflict`` it raised)."""
    barrier = threading.Barrier(threads)
    expected = store.query(ORDERS).current_context_version
    outcomes: list[object] = []
    lock = threading.Lock()

    def attempt(index: int) -> None:
        barrier.wait()
        try:
            result: object = store.append_if(
                [factstr.NewEvent("order", {"i": index})], ORDERS, expected
            )
        except factstr.ConditionalAppendConflict as conflict:
            result = conflict
        with lock:
            outcomes.append(result)

    workers = [run_in_thread(lambda i=i: attempt(i)) for i in range(threads)]  # type: ignore[misc]
    for thread, errors, _ in workers:
        thread.join(30)
        assert errors == []
    return outcomes


def test_append_if_is_atomic_across_threads(store: Store) -> None:
    threads = 6
    rounds = 5
    for round_ in range(rounds):
        outcomes = _race_append_if(store, threads)
        wins = [o for o in outcomes if isinstance(o, factstr.AppendResult)]
        conflicts = [o for o in outcomes if isinstance(o, factstr.ConditionalAppendConflict)]
        assert len(wins) == 1, f"round {round_}: {outcomes!r}"
        assert len(conflicts) == threads - 1
        winner = wins[0].first_sequence_number
        assert winner == round_ + 1
        assert all(c.actual_context_version == winner for c in conflicts)
    assert seqs_of(store.query().event_records) == list(range(1, rounds + 1))
