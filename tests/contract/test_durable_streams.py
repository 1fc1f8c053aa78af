"""SPEC §6: durable streams with handlers (stream_all_durable, stream_to_durable)."""

from __future__ import annotations

import gc
import threading

import factstr
import pytest
from factstr import DurableStream, EventQuery

from tests.support import (
    DEADLINE,
    Collector,
    Store,
    StoreFactory,
    cursor_of,
    ev,
    events,
    run_in_thread,
    seqs_of,
    wait_cursor,
    wait_for,
)

KEEP = EventQuery.for_event_types(["keep"])


def test_new_name_replays_whole_history_per_batch_then_goes_live(store: Store) -> None:
    store.append(events("a", 2))
    store.append([ev("b")])
    store.append(events("c", 3))
    seen = Collector()
    stream = store.stream_all_durable("d", seen)
    assert isinstance(stream, factstr.EventStream)
    # Registration returns after the replay.
    assert seen.batch_seqs() == [[1, 2], [3], [4, 5, 6]]
    assert seen.records == store.query().event_records
    assert cursor_of(store, "d") == 6
    store.append(events("d", 2))
    seen.wait_records(8)
    assert seen.batch_seqs() == [[1, 2], [3], [4, 5, 6], [7, 8]]
    wait_cursor(store, "d", 8)
    assert stream.active


def test_new_name_on_empty_store(store: Store) -> None:
    seen = Collector()
    store.stream_all_durable("d", seen)
    assert seen.batches == []
    assert cursor_of(store, "d") == 0
    store.append([ev("a")])
    seen.wait_records(1)
    wait_cursor(store, "d", 1)


def test_stream_to_durable_replays_matching_part_of_each_batch(store: Store) -> None:
    store.append([ev("keep"), ev("drop"), ev("keep")])  # 1..3
    store.append([ev("drop")])  # 4
    store.append([ev("keep")])  # 5
    seen = Collector()
    store.stream_to_durable("d", KEEP, seen)
    assert seen.batch_seqs() == [[1, 3], [5]]
    assert cursor_of(store, "d") == 5
    store.append([ev("drop")])  # 6
    store.append([ev("drop"), ev("keep")])  # 7..8
    seen.wait_records(4)
    assert seen.batch_seqs() == [[1, 3], [5], [8]]
    wait_cursor(store, "d", 8)


def test_skipped_batches_at_the_end_of_replay(store: Store) -> None:
    store.append([ev("keep")])  # 1
    store.append([ev("drop"), ev("drop")])  # 2..3
    seen = Collector()
    store.stream_to_durable("d", KEEP, seen)
    assert seen.batch_seqs() == [[1]]
    cursor = cursor_of(store, "d")
    assert cursor is not None and 1 <= cursor <= 3
    # The skipped batches are passed over: a later match is the next delivery.
    store.append([ev("keep")])  # 4
    seen.wait_records(2)
    assert seen.batch_seqs() == [[1], [4]]
    wait_cursor(store, "d", 4)


def test_resume_from_cursor_after_unsubscribe(store: Store) -> None:
    store.append(events("a", 2))
    first = Collector()
    stream = store.stream_all_durable("d", first)
    store.append([ev("b")])
    first.wait_records(3)
    wait_cursor(store, "d", 3)
    stream.unsubscribe()
    wait_for(lambda: not stream.active, what="inactive")
    assert cursor_of(store, "d") == 3  # unsubscribing keeps the cursor
    store.append(events("c", 2))
    second = Collector()
    store.stream_all_durable("d", second)
    assert second.batch_seqs() == [[4, 5]]
    assert cursor_of(store, "d") == 5


def test_durable_stream_object_and_str_name_are_the_same(store: Store) -> None:
    store.append([ev("a")])
    first = Collector()
    with store.stream_all_durable(DurableStream("d"), first):
        assert first.seqs == [1]
    store.append([ev("b")])
    second = Collector()
    with store.stream_all_durable("d", second):
        assert second.seqs == [2]
    assert [i.name for i in store.durable_streams()] == ["d"]


def test_durable_streams_lists_name_query_cursor(store: Store) -> None:
    store.append([ev("keep"), ev("x")])
    query = EventQuery(filters=[factstr.EventFilter(event_types=["keep"], payload_predicates=[{}])])
    with (
        store.stream_all_durable("all", Collector()),
        store.stream_to_durable("some", query, Collector()),
    ):
        infos = sorted(store.durable_streams(), key=lambda i: i.name)
        assert all(isinstance(i, factstr.DurableStreamInfo) for i in infos)
        assert [i.name for i in infos] == ["all", "some"]
        assert infos[0].query == EventQuery.all()
        assert infos[1].query == query
        assert [i.last_processed_sequence_number for i in infos] == [2, 2]


def test_second_registration_of_an_active_name_raises(store: Store) -> None:
    with store.stream_all_durable("d", Collector()):
        with pytest.raises(factstr.DurableStreamActive):
            store.stream_all_durable("d", Collector())
        with pytest.raises(factstr.DurableStreamActive):
            store.stream_all_durable(DurableStream("d"), Collector())
        with pytest.raises(factstr.DurableStreamActive):
            sub = store.subscribe(durable="d")
            sub.next_batch(timeout=0.5)
        # Other names are independent.
        with store.stream_all_durable("e", Collector()):
            pass


def test_active_is_a_durable_stream_error(store: Store) -> None:
    with store.stream_all_durable("d", Collector()):
        with pytest.raises(factstr.DurableStreamError):
            store.stream_all_durable("d", Collector())
        with pytest.raises(factstr.FactstrError):
            store.stream_all_durable("d", Collector())


def test_concurrent_registrations_of_one_name_admit_exactly_one(store: Store) -> None:
    store.append(events("a", 3))
    threads = 6
    barrier = threading.Barrier(threads)
    outcomes: list[object] = []
    lock = threading.Lock()

    def register() -> None:
        barrier.wait()
        try:
            result: object = store.stream_all_durable("d", Collector())
        except factstr.DurableStreamActive as exc:
            result = exc
        with lock:
            outcomes.append(result)

    workers = [run_in_thread(register) for _ in range(threads)]
    for thread, errors, _ in workers:
        thread.join(10)
        assert errors == []
    streams = [o for o in outcomes if isinstance(o, factstr.EventStream)]
    assert len(streams) == 1, outcomes
    assert sum(isinstance(o, factstr.DurableStreamActive) for o in outcomes) == threads - 1
    assert cursor_of(store, "d") == 3
    streams[0].unsubscribe()


def test_name_is_free_after_unsubscribe(store: Store) -> None:
    stream = store.stream_all_durable("d", Collector())
    stream.unsubscribe()
    again = store.stream_all_durable("d", Collector())
    again.unsubscribe()


def test_name_is_free_after_with_block(store: Store) -> None:
    with store.stream_all_durable("d", Collector()):
        pass
    with store.stream_all_durable("d", Collector()):
        pass


def test_registration_survives_garbage_collection(store: Store) -> None:
    seen = Collector()
    stream = store.stream_all_durable("d", seen)
    del stream
    gc.collect()
    with pytest.raises(factstr.DurableStreamActive):
        store.stream_all_durable("d", Collector())
    store.append([ev("a")])
    seen.wait_records(1)
    wait_cursor(store, "d", 1)


def test_query_mismatch(store: Store) -> None:
    with store.stream_to_durable("d", KEEP, Collector()):
        pass
    with pytest.raises(factstr.DurableStreamQueryMismatch):
        store.stream_to_durable("d", EventQuery.for_event_types(["other"]), Collector())
    with pytest.raises(factstr.DurableStreamQueryMismatch):
        store.stream_all_durable("d", Collector())
    with pytest.raises(factstr.DurableStreamQueryMismatch):
        store.subscribe(EventQuery.for_event_types(["other"]), durable="d").next_batch(timeout=0.5)
    with pytest.raises(factstr.DurableStreamError):
        store.stream_to_durable("d", EventQuery.all(), Collector())
    # The same query is fine.
    with store.stream_to_durable("d", EventQuery.for_event_types(["keep"]), Collector()):
        pass


def test_query_identity_is_the_filters_not_the_lower_bound(store: Store) -> None:
    # A durable stream's lower bound is its cursor: like the upstream crates, the query's
    # min_sequence_number is dropped when it is stored, and does not narrow the replay.
    store.append([ev("keep")])
    store.append([ev("keep")])
    with store.stream_to_durable("d", KEEP, Collector()):
        pass
    store.reset_durable_stream("d")
    seen = Collector()
    with store.stream_to_durable("d", KEEP.with_min_sequence_number(1), seen):
        assert seen.batch_seqs() == [[1], [2]]
    [info] = store.durable_streams()
    assert info.query == KEEP
    assert info.query.min_sequence_number is None


def test_stream_all_durable_query_is_event_query_all(store: Store) -> None:
    with store.stream_all_durable("d", Collector()):
        pass
    with store.stream_to_durable("d", EventQuery.all(), Collector()):
        pass
    with store.subscribe(durable="d") as sub:
        assert sub.next_batch(timeout=0.05) is None
    [info] = store.durable_streams()
    assert info.query == EventQuery.all()


def test_replay_failure_raises_durable_replay_error_and_keeps_cursor(store: Store) -> None:
    store.append([ev("ok")])  # 1
    store.append([ev("boom"), ev("ok")])  # 2..3
    store.append([ev("ok")])  # 4
    failing = Collector(fail_on=lambda batch: batch[0].event_type == "boom")
    with pytest.raises(factstr.DurableReplayError) as info:
        store.stream_all_durable("d", failing)
    cause = info.value.__cause__
    assert isinstance(cause, RuntimeError)
    assert "refuses batch starting at 2" in str(cause)
    assert isinstance(info.value, factstr.DurableStreamError)
    assert failing.batch_seqs() == [[1]]
    assert cursor_of(store, "d") == 1
    # The name is free again and resumes at the failed batch.
    seen = Collector()
    with store.stream_all_durable("d", seen):
        assert seen.batch_seqs() == [[2, 3], [4]]
        assert cursor_of(store, "d") == 4


def test_replay_failure_on_first_batch_keeps_cursor_at_zero(store: Store) -> None:
    store.append([ev("boom")])
    with pytest.raises(factstr.DurableReplayError) as info:
        store.stream_all_durable("d", Collector(fail_on=lambda batch: True))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert (cursor_of(store, "d") or 0) == 0


def test_live_failure_stops_the_stream_keeps_cursor_sets_error(store: Store) -> None:
    failing = Collector(fail_on=lambda batch: batch[0].event_type == "boom")
    stream = store.stream_all_durable("d", failing)
    other = Collector()
    store.stream_all(other)
    store.append([ev("ok")])  # 1
    failing.wait_records(1)
    wait_cursor(store, "d", 1)
    result = store.append([ev("boom")])  # 2: the append itself succeeds
    assert result.first_sequence_number == 2
    wait_for(lambda: stream.error is not None, what="EventStream.error")
    assert isinstance(stream.error, RuntimeError)
    assert "refuses batch starting at 2" in str(stream.error)
    wait_for(lambda: not stream.active, what="the failed stream to stop")
    store.append([ev("ok")])  # 3: not delivered to the stopped stream, cursor stays
    other.wait_records(3)
    assert failing.seqs == [1]
    assert failing.calls == 2
    assert cursor_of(store, "d") == 1
    # Registering again resumes from the cursor: the failed batch comes again.
    seen = Collector()
    with store.stream_all_durable("d", seen):
        assert seen.batch_seqs() == [[2], [3]]
        assert cursor_of(store, "d") == 3


def test_live_failure_skips_no_queued_batch(store: Store) -> None:
    """Batches committed while the failing handler runs must not move the cursor past it."""
    entered = threading.Event()
    release = threading.Event()
    calls: list[list[int]] = []

    def handler(batch: list[factstr.EventRecord]) -> None:
        calls.append(seqs_of(batch))
        entered.set()
        release.wait(DEADLINE)
        raise RuntimeError("first live batch fails")

    stream = store.stream_all_durable("d", handler)
    store.append([ev("a")])  # 1: fails
    assert entered.wait(DEADLINE)
    for _ in range(5):
        store.append(events("b", 2))  # 2..11: queued behind the failing batch
    release.set()
    wait_for(lambda: stream.error is not None, what="EventStream.error")
    wait_for(lambda: not stream.active, what="the failed stream to stop")
    marker = Collector()
    store.stream_all(marker)
    store.append([ev("c")])  # 12
    marker.wait_records(1)
    assert calls == [[1]]
    assert cursor_of(store, "d") == 0
    seen = Collector()
    with store.stream_all_durable("d", seen):
        assert seen.seqs == list(range(1, 13))


def test_replay_of_a_long_history_keeps_batches(store: Store) -> None:
    store.append([factstr.NewEvent("big", {"i": i}) for i in range(1500)])  # 1..1500
    for i in range(1200):
        store.append([factstr.NewEvent("small", {"i": i})])  # 1501..2700
    store.append([factstr.NewEvent("big", {"i": i}) for i in range(1100)])  # 2701..3800
    seen = Collector()
    with store.stream_all_durable("d", seen):
        assert [len(b) for b in seen.batches] == [1500] + [1] * 1200 + [1100]
        assert seen.seqs == list(range(1, 3801))
        assert cursor_of(store, "d") == 3800
    filtered = Collector()
    with store.stream_to_durable("f", EventQuery.for_event_types(["big"]), filtered):
        assert [len(b) for b in filtered.batches] == [1500, 1100]
        assert cursor_of(store, "f") == 3800


def test_live_failure_does_not_stop_other_streams(store: Store) -> None:
    store.stream_all_durable("bad", Collector(fail_on=lambda batch: True))
    good_durable = Collector()
    store.stream_all_durable("good", good_durable)
    store.append([ev("a")])
    store.append([ev("b")])
    good_durable.wait_records(2)
    wait_cursor(store, "good", 2)
    assert cursor_of(store, "bad") == 0


def test_handler_may_query_and_append_during_replay_and_live(store: Store) -> None:
    store.append([ev("src")])
    store.append([ev("src")])
    lock = threading.Lock()
    versions: list[int | None] = []

    def handler(batch: list[factstr.EventRecord]) -> None:
        version = store.query(EventQuery.for_event_types(["echo"])).current_context_version
        store.append([factstr.NewEvent("echo", {"for": batch[0].sequence_number})])
        with lock:
            versions.append(version)

    thread, errors, _ = run_in_thread(
        lambda: store.stream_to_durable("d", EventQuery.for_event_types(["src"]), handler)
    )
    thread.join(10)
    assert not thread.is_alive(), "registration deadlocked with a handler that appends"
    assert errors == []
    echoes = store.query(EventQuery.for_event_types(["echo"])).event_records
    assert [r.payload for r in echoes] == [{"for": 1}, {"for": 2}]
    assert versions == [None, 3]
    store.append([ev("src")])  # 5
    wait_for(lambda: len(store.query(EventQuery.for_event_types(["echo"])).event_records) == 3)
    assert store.query(EventQuery.for_event_types(["echo"])).event_records[-1].payload == {"for": 5}


def test_replay_to_live_boundary_under_concurrent_appends(store: Store) -> None:
    total_appends = 300
    written = threading.Event()
    started = threading.Event()

    def writer() -> None:
        for i in range(total_appends):
            store.append([factstr.NewEvent("w", {"i": i, "k": k}) for k in range(1 + i % 2)])
            if i == 30:
                started.set()
        written.set()

    thread, errors, _ = run_in_thread(writer)
    assert started.wait(10)
    seen = Collector()
    store.stream_all_durable("d", seen)
    assert written.wait(30)
    thread.join(10)
    assert errors == []
    total = sum(1 + i % 2 for i in range(total_appends))
    seen.wait_records(total)
    wait_cursor(store, "d", total)
    assert seen.seqs == list(range(1, total + 1)), "gap or duplicate at the replay/live boundary"
    assert [len(b) for b in seen.batches] == [1 + i % 2 for i in range(total_appends)]


def test_replay_to_live_boundary_with_filter_under_concurrent_appends(store: Store) -> None:
    started = threading.Event()

    def writer() -> None:
        for i in range(300):
            store.append([factstr.NewEvent("keep" if i % 3 else "drop", {"i": i})])
            if i == 30:
                started.set()

    thread, errors, _ = run_in_thread(writer)
    assert started.wait(10)
    seen = Collector()
    store.stream_to_durable("d", KEEP, seen)
    thread.join(30)
    assert errors == []
    expected = seqs_of(store.query(KEEP).event_records)
    seen.wait_records(len(expected))
    assert seen.seqs == expected


def test_several_durable_streams_progress_independently(store: Store) -> None:
    store.append(events("a", 3))
    first = Collector()
    with store.stream_all_durable("one", first):
        store.append([ev("b")])
        first.wait_records(4)
        wait_cursor(store, "one", 4)
    second = Collector()
    with store.stream_all_durable("two", second):
        assert second.seqs == [1, 2, 3, 4]
    store.append([ev("c")])
    third = Collector()
    with store.stream_all_durable("one", third):
        assert third.seqs == [5]


def test_cursors_persist_across_store_objects(
    shared_backend: None, make_store: StoreFactory, store: Store
) -> None:
    store.append(events("a", 2))
    with store.stream_all_durable("d", Collector()):
        assert cursor_of(store, "d") == 2
    store.close()
    reopened = make_store()
    assert cursor_of(reopened, "d") == 2
    reopened.append([ev("b")])
    seen = Collector()
    with reopened.stream_all_durable("d", seen):
        assert seen.seqs == [3]


def test_active_across_store_objects(
    shared_backend: None, make_store: StoreFactory, store: Store
) -> None:
    other = make_store()
    with store.stream_all_durable("d", Collector()):
        with pytest.raises(factstr.DurableStreamActive):
            other.stream_all_durable("d", Collector())
    # Free again once the holder unsubscribed.
    wait_for(
        lambda: _can_register(other, "d"), what="the name to be free in the other store object"
    )


def _can_register(store: Store, name: str) -> bool:
    try:
        stream = store.stream_all_durable(name, Collector())
    except factstr.DurableStreamActive:
        return False
    stream.unsubscribe()
    return True


ODD_QUERIES = [
    EventQuery.all(),
    EventQuery(filters=[]),
    EventQuery(filters=[factstr.EventFilter()]),
    EventQuery(filters=[factstr.EventFilter(event_types=[])]),
    EventQuery(filters=[factstr.EventFilter(payload_predicates=[])]),
    EventQuery(filters=[factstr.EventFilter(event_types=[], payload_predicates=[])]),
    EventQuery(
        filters=[
            factstr.EventFilter(
                ["a", "b"], [{"n": 1.0, "s": "x", "l": [{"z": None}], "e": {}}, [], 2**64 - 1]
            ),
            factstr.EventFilter(None, [{"t": True}, "str", -0.5]),
        ]
    ),
    # (No min_sequence_number here: the engine drops it from durable identity, see
    # test_query_identity_is_the_filters_not_the_lower_bound.)
]


@pytest.mark.parametrize("query", ODD_QUERIES, ids=[f"query{i}" for i in range(len(ODD_QUERIES))])
def test_durable_query_is_listed_and_matched_exactly(store: Store, query: EventQuery) -> None:
    with store.stream_to_durable("d", query, Collector()):
        pass
    [info] = store.durable_streams()
    assert info.query == query
    with store.stream_to_durable("d", query, Collector()):
        pass


@pytest.mark.parametrize("query", ODD_QUERIES, ids=[f"query{i}" for i in range(len(ODD_QUERIES))])
def test_durable_query_survives_reopening(
    shared_backend: None, make_store: StoreFactory, store: Store, query: EventQuery
) -> None:
    with store.stream_to_durable("d", query, Collector()):
        pass
    store.close()
    reopened = make_store()
    [info] = reopened.durable_streams()
    assert info.query == query
    with reopened.stream_to_durable("d", query, Collector()):
        pass


def test_name_is_free_after_holder_store_closes(
    shared_backend: None, make_store: StoreFactory, store: Store
) -> None:
    other = make_store()
    store.stream_all_durable("d", Collector())
    sub_store = make_store()
    sub = sub_store.subscribe(durable="s")
    sub.next_batch(timeout=0.05)
    with pytest.raises(factstr.DurableStreamActive):
        other.stream_all_durable("d", Collector())
    store.close()
    sub_store.close()
    with other.stream_all_durable("d", Collector()):
        pass
    with other.subscribe(durable="s") as again:
        again.next_batch(timeout=0.05)


def test_other_store_object_sees_cursor_moves(
    shared_backend: None, make_store: StoreFactory, store: Store
) -> None:
    other = make_store()
    seen = Collector()
    store.stream_all_durable("d", seen)
    other.append(events("x", 2))
    seen.wait_records(2)
    wait_for(lambda: cursor_of(other, "d") == 2, what="the cursor seen from the other store object")


def test_cursor_never_moves_backwards_nor_past_a_handled_batch(store: Store) -> None:
    handled: list[int] = []
    lock = threading.Lock()

    def handler(batch: list[factstr.EventRecord]) -> None:
        with lock:
            handled.append(batch[-1].sequence_number)

    store.stream_all_durable("d", handler)
    stop = threading.Event()

    def writer() -> None:
        for i in range(200):
            store.append(events("w", 1 + i % 2))
        stop.set()

    thread, errors, _ = run_in_thread(writer)
    observed: list[int] = []
    while not stop.is_set():
        cursor = cursor_of(store, "d")
        assert cursor is not None
        with lock:
            top = handled[-1] if handled else 0
        assert cursor <= top, f"cursor {cursor} passed the last handled batch {top}"
        observed.append(cursor)
    thread.join(10)
    assert errors == []
    assert observed == sorted(observed), "the cursor moved backwards"
    total = sum(1 + i % 2 for i in range(200))
    wait_cursor(store, "d", total)
