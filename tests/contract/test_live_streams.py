"""SPEC §5: live streams with handlers (stream_all, stream_to)."""

from __future__ import annotations

import gc
import logging
import threading
import traceback

import factstr
import pytest
from factstr import EventFilter, EventQuery

from tests.support import (
    DEADLINE,
    Collector,
    Store,
    StoreFactory,
    ev,
    events,
    run_in_thread,
    seqs_of,
    wait_for,
)


def test_stream_all_returns_an_event_stream(store: Store) -> None:
    stream = store.stream_all(Collector())
    assert isinstance(stream, factstr.EventStream)
    assert isinstance(stream.id, int)
    assert stream.active is True
    assert stream.error is None
    stream.unsubscribe()
    wait_for(lambda: not stream.active, what="stream inactive after unsubscribe")


def test_stream_ids_differ(store: Store) -> None:
    a = store.stream_all(Collector())
    b = store.stream_all(Collector())
    assert a.id != b.id


def test_no_replay_only_batches_after_registration(store: Store) -> None:
    store.append(events("a", 3))
    seen = Collector()
    store.stream_all(seen)
    store.append(events("b", 2))
    seen.wait_records(2)
    assert seen.batch_seqs() == [[4, 5]]


def test_stream_all_one_delivery_per_batch_in_order(store: Store) -> None:
    seen = Collector()
    store.stream_all(seen)
    store.append(events("a", 3))
    store.append([ev("b")])
    store.append([factstr.NewEvent("c", {"x": 1}), factstr.NewEvent("d", {"x": 2})])
    seen.wait_records(6)
    assert seen.batch_seqs() == [[1, 2, 3], [4], [5, 6]]
    assert [r.event_type for r in seen.records] == ["a", "a", "a", "b", "c", "d"]
    assert [r.payload for r in seen.records][4:] == [{"x": 1}, {"x": 2}]
    assert seen.records == store.query().event_records


def test_stream_to_delivers_matching_part_of_each_batch(store: Store) -> None:
    seen = Collector()
    store.stream_to(EventQuery.for_event_types(["keep"]), seen)
    store.append([ev("keep"), ev("drop"), ev("keep")])  # 1..3
    store.append([ev("drop")])  # 4: not delivered at all
    store.append([ev("drop"), ev("keep")])  # 5..6
    store.append([ev("keep")])  # 7
    seen.wait_records(4)
    assert seen.batch_seqs() == [[1, 3], [6], [7]]
    assert all(r.event_type == "keep" for r in seen.records)


def test_stream_to_with_payload_predicates(store: Store) -> None:
    seen = Collector()
    query = EventQuery(
        filters=[EventFilter(payload_predicates=[{"tags": ["x"]}]), EventFilter(event_types=["t"])]
    )
    store.stream_to(query, seen)
    store.append(
        [factstr.NewEvent("a", {"tags": ["y", "x"]}), factstr.NewEvent("a", {"tags": "x"})]
    )
    store.append([factstr.NewEvent("t", {}), factstr.NewEvent("a", {})])
    store.append([factstr.NewEvent("marker", {"tags": ["x"]})])
    seen.wait_records(3)
    assert seen.batch_seqs() == [[1], [3], [5]]


def test_stream_to_with_empty_sets_delivers_nothing(store: Store) -> None:
    nothing = Collector()
    nothing_either = Collector()
    everything = Collector()
    store.stream_to(EventQuery(filters=[EventFilter(event_types=[])]), nothing)
    store.stream_to(EventQuery(filters=[EventFilter(payload_predicates=[])]), nothing_either)
    store.stream_to(EventQuery(filters=[]), everything)
    store.append(events("a", 2))
    store.append([ev("b")])
    everything.wait_records(3)
    # Once a later stream has both batches, the empty ones had their chance; give the
    # deliveries a moment through another registration to be sure nothing is in flight.
    marker = Collector()
    store.stream_to(EventQuery.for_event_types(["marker"]), marker)
    store.append([ev("marker")])
    marker.wait_records(1)
    everything.wait_records(4)
    assert nothing.batches == []
    assert nothing_either.batches == []
    assert everything.batch_seqs() == [[1, 2], [3], [4]]


def test_unsubscribe_stops_future_deliveries(store: Store) -> None:
    seen = Collector()
    stream = store.stream_all(seen)
    store.append([ev("a")])
    seen.wait_records(1)
    stream.unsubscribe()
    _assert_stopped(store, stream, seen)


def test_with_block_unsubscribes(store: Store) -> None:
    seen = Collector()
    with store.stream_all(seen) as stream:
        assert stream.active
        store.append([ev("a")])
        seen.wait_records(1)
    _assert_stopped(store, stream, seen)


def _assert_stopped(store: Store, stream: factstr.EventStream, seen: Collector) -> None:
    """``stream``, which delivered fact 1 to ``seen``, turns inactive and gets nothing more,
    while a new stream still gets the next fact."""
    wait_for(lambda: not stream.active, what="inactive")
    other = Collector()
    store.stream_all(other)
    store.append([ev("b")])
    other.wait_records(1)
    assert seen.seqs == [1]


def test_registration_survives_garbage_collection(store: Store) -> None:
    seen = Collector()
    stream_to_seen = Collector()
    store.stream_all(seen)
    stream = store.stream_to(EventQuery.for_event_types(["a"]), stream_to_seen)
    del stream
    gc.collect()
    store.append([ev("a")])
    store.append([ev("b")])
    seen.wait_records(2)
    stream_to_seen.wait_records(1)
    assert seen.seqs == [1, 2]
    assert stream_to_seen.seqs == [1]


def test_handler_exception_does_not_stop_the_stream_and_is_logged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="factstr")
    failing = Collector(fail_on=lambda batch: batch[0].event_type == "boom")
    other = Collector()
    stream = store.stream_all(failing)
    store.stream_all(other)
    store.append([ev("ok")])
    result = store.append([ev("boom")])  # the handler raising does not undo the append
    assert result.first_sequence_number == 2
    store.append([ev("ok")])
    failing.wait_records(2)
    other.wait_records(3)
    assert failing.seqs == [1, 3]
    assert failing.calls == 3
    assert other.seqs == [1, 2, 3]
    assert stream.active is True
    assert seqs_of(store.query().event_records) == [1, 2, 3]

    def logged() -> bool:
        return any(_reports_refusal(r) for r in caplog.records)

    wait_for(
        logged, what="a WARNING+ record on the 'factstr' logger reporting the handler's exception"
    )


def _reports_refusal(record: logging.LogRecord) -> bool:
    """A WARNING+ record of the ``factstr`` logger that carries the handler's exception."""
    if record.name.split(".")[0] != "factstr" or record.levelno < logging.WARNING:
        return False
    text = record.getMessage()
    if record.exc_info:
        text += "".join(traceback.format_exception(*record.exc_info))
    return "refuses batch starting at 2" in text


def test_unsubscribe_from_inside_the_handler(store: Store) -> None:
    holder: list[factstr.EventStream] = []
    seen = Collector()
    ready = threading.Event()

    def handler(batch: list[factstr.EventRecord]) -> None:
        ready.wait(DEADLINE)
        seen(batch)
        holder[0].unsubscribe()

    holder.append(store.stream_all(handler))
    ready.set()
    store.append([ev("a")])
    seen.wait_records(1)
    wait_for(lambda: not holder[0].active, what="the stream to end")
    marker = Collector()
    store.stream_all(marker)
    store.append([ev("b")])
    marker.wait_records(1)
    assert seen.seqs == [1]


def test_unsubscribe_twice_is_harmless(store: Store) -> None:
    stream = store.stream_all(Collector())
    stream.unsubscribe()
    stream.unsubscribe()
    with stream:
        pass
    assert not stream.active


def test_one_big_batch_is_one_delivery(store: Store) -> None:
    seen = Collector()
    filtered = Collector()
    store.stream_all(seen)
    store.stream_to(
        EventQuery(filters=[EventFilter(payload_predicates=[{"even": True}])]), filtered
    )
    store.append([factstr.NewEvent("big", {"i": i, "even": i % 2 == 0}) for i in range(3000)])
    store.append([ev("after")])
    seen.wait_records(3001)
    assert [len(b) for b in seen.batches] == [3000, 1]
    filtered.wait_records(1500)
    assert [len(b) for b in filtered.batches] == [1500]
    assert filtered.seqs == list(range(1, 3001, 2))


def test_handler_may_query_and_append(store: Store) -> None:
    answers: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    def handler(batch: list[factstr.EventRecord]) -> None:
        for record in batch:
            if record.event_type == "ping":
                seen_version = store.query(
                    EventQuery.for_event_types(["ping"])
                ).current_context_version
                result = store.append([factstr.NewEvent("pong", {"for": record.sequence_number})])
                with lock:
                    answers.append((result.first_sequence_number, seen_version))

    store.stream_to(EventQuery.for_event_types(["ping"]), handler)
    store.append([ev("ping")])
    wait_for(lambda: len(answers) == 1, what="the handler's append")
    store.append([ev("ping")])
    wait_for(lambda: len(answers) == 2, what="the handler's second append")
    pongs = store.query(EventQuery.for_event_types(["pong"])).event_records
    assert [r.payload for r in pongs] == [{"for": 1}, {"for": 3}]
    assert answers[0] == (2, 1)
    assert answers[1][0] == 4


def test_handler_may_append_if(store: Store) -> None:
    done = threading.Event()

    def handler(batch: list[factstr.EventRecord]) -> None:
        version = store.query(EventQuery.for_event_types(["reply"])).current_context_version
        store.append_if([ev("reply")], EventQuery.for_event_types(["reply"]), version)
        done.set()

    store.stream_to(EventQuery.for_event_types(["request"]), handler)
    store.append([ev("request")])
    assert done.wait(5)
    wait_for(lambda: len(store.query(EventQuery.for_event_types(["reply"])).event_records) == 1)


def test_slow_handler_blocks_neither_appends_nor_other_streams(store: Store) -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow(batch: list[factstr.EventRecord]) -> None:
        entered.set()
        release.wait(30)

    fast = Collector()
    store.stream_all(slow)
    store.stream_all(fast)
    try:
        store.append([ev("a")])
        assert entered.wait(5), "the slow handler was never called"

        def more() -> None:
            for i in range(20):
                store.append([factstr.NewEvent("b", {"i": i})])
                store.query()

        thread, errors, _ = run_in_thread(more)
        thread.join(10)
        assert not thread.is_alive(), "appends are blocked by a slow handler"
        assert errors == []
        fast.wait_records(21)
        assert fast.seqs == list(range(1, 22))
    finally:
        release.set()


def test_slow_handler_gets_every_batch_in_order_later(store: Store) -> None:
    release = threading.Event()
    got = Collector()

    def slow(batch: list[factstr.EventRecord]) -> None:
        release.wait(30)
        got(batch)

    store.stream_all(slow)
    for i in range(10):
        store.append(events(f"e{i}", 1 + i % 2))
    release.set()
    total = sum(1 + i % 2 for i in range(10))
    got.wait_records(total)
    assert got.seqs == list(range(1, total + 1))
    assert [len(b) for b in got.batches] == [1 + i % 2 for i in range(10)]


def test_concurrent_appenders_delivery_order_is_sequence_order(store: Store) -> None:
    seen = Collector()
    filtered = Collector()
    store.stream_all(seen)
    store.stream_to(EventQuery.for_event_types(["t1"]), filtered)
    barrier = threading.Barrier(3)

    def worker(index: int) -> None:
        barrier.wait()
        for j in range(30):
            store.append(
                [factstr.NewEvent(f"t{index}", {"j": j, "k": k}) for k in range(1 + j % 2)]
            )

    workers = [run_in_thread(lambda i=i: worker(i)) for i in range(3)]  # type: ignore[misc]
    for thread, errors, _ in workers:
        thread.join(30)
        assert errors == []
    total = 3 * sum(1 + j % 2 for j in range(30))
    seen.wait_records(total)
    assert seen.seqs == list(range(1, total + 1))
    expected_t1 = [
        r.sequence_number for r in store.query(EventQuery.for_event_types(["t1"])).event_records
    ]
    filtered.wait_records(len(expected_t1))
    assert filtered.seqs == expected_t1
    for batch in seen.batch_seqs():
        assert batch == list(range(batch[0], batch[0] + len(batch)))


def test_live_stream_registered_during_appends_gets_a_gapless_suffix(store: Store) -> None:
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            store.append([ev("w")])

    thread, errors, _ = run_in_thread(writer)
    seen = Collector()
    try:
        wait_for(lambda: (store.query().current_context_version or 0) >= 20, what="some appends")
        store.stream_all(seen)
        seen.wait_records(50)
    finally:
        stop.set()
        thread.join(10)
    assert errors == []
    head = store.query().current_context_version
    assert head is not None
    # The unbounded writer can leave a backlog of many thousands on a loaded machine: what is
    # checked is that the suffix arrives whole, not how fast (5 s was exceeded at load 30).
    wait_for(lambda: bool(seen.seqs) and seen.seqs[-1] == head, timeout=60, what="the last append")
    received = seen.seqs
    assert received == list(range(received[0], head + 1))
    assert received[0] > 1


def test_stream_sees_commits_of_another_store_object(
    shared_backend: None, make_store: StoreFactory, store: Store
) -> None:
    other = make_store()
    assert other is not store
    seen = Collector()
    store.stream_all(seen)
    other.append(events("x", 2))
    other.append([ev("y")])
    seen.wait_records(3)
    assert seen.batch_seqs() == [[1, 2], [3]]


def test_handler_may_register_other_streams(store: Store) -> None:
    inner = Collector()
    done = threading.Event()
    errors: list[BaseException] = []

    def handler(batch: list[factstr.EventRecord]) -> None:
        try:
            store.stream_all(inner)
            with store.subscribe() as sub:
                sub.next_batch(timeout=0)
            with store.stream_to_durable("d", EventQuery.for_event_types(["none"]), Collector()):
                pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    store.stream_to(EventQuery.for_event_types(["go"]), handler)
    store.append([ev("go")])
    assert done.wait(DEADLINE), "registering from inside a handler deadlocked"
    assert errors == []
    store.append([ev("after")])
    inner.wait_records(1)
    assert inner.seqs == [2]


def _thread_ended(stream: factstr.EventStream) -> bool:
    """Whether the registration's delivery thread has ended."""
    return not any(t.name == f"factstr-stream-{stream.id}" for t in threading.enumerate())


def test_batches_committed_before_unsubscribe_are_delivered_after_it(store: Store) -> None:
    """SPEC §5, as the Rust crates: a busy handler still gets what was committed before
    ``unsubscribe()``, after it returns; nothing committed after it."""
    entered = threading.Event()
    release = threading.Event()
    seen = Collector()

    def handler(batch: list[factstr.EventRecord]) -> None:
        seen(batch)
        entered.set()
        assert release.wait(DEADLINE)

    stream = store.stream_all(handler)
    store.append([ev("a")])  # 1: the handler blocks in it
    assert entered.wait(DEADLINE)
    store.append([ev("b")])  # 2
    store.append(events("c", 2))  # 3..4
    stream.unsubscribe()
    assert not stream.active
    store.append([ev("after")])  # 5: committed after unsubscribe
    release.set()
    seen.wait_records(4)
    wait_for(lambda: _thread_ended(stream), what="the registration's thread to end")
    assert seen.batch_seqs() == [[1], [2], [3, 4]]


def test_unsubscribe_of_an_idle_stream_still_delivers_what_was_committed(store: Store) -> None:
    seen = Collector()
    stream = store.stream_to(EventQuery.for_event_types(["keep"]), seen)
    store.append([ev("keep"), ev("drop")])  # 1..2, possibly not read yet by the thread
    stream.unsubscribe()
    store.append([ev("keep")])  # 3: after
    wait_for(lambda: _thread_ended(stream), what="the registration's thread to end")
    assert seen.batch_seqs() == [[1]]


def handler_that_raises_lookup_error(batch: list[factstr.EventRecord]) -> None:
    raise LookupError(f"no course for {batch[0].sequence_number}")


def test_handler_exception_is_logged_with_its_traceback(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """SPEC §5: the handler's exception goes to the ``factstr`` logger with ``exc_info``."""
    caplog.set_level(logging.WARNING, logger="factstr")
    store.stream_all(handler_that_raises_lookup_error)
    store.append([ev("a")])

    def record() -> logging.LogRecord | None:
        return next((r for r in caplog.records if r.name == "factstr" and r.exc_info), None)

    wait_for(lambda: record() is not None, what="a record with exc_info on the 'factstr' logger")
    found = record()
    assert found is not None and found.exc_info is not None
    kind, error, tb = found.exc_info
    assert (
        kind is LookupError and isinstance(error, LookupError) and str(error) == "no course for 1"
    )
    assert tb is not None
    text = "".join(traceback.format_exception(kind, error, tb))
    assert "handler_that_raises_lookup_error" in text
    assert 'raise LookupError(f"no course for' in text
    assert found.levelno >= logging.WARNING
