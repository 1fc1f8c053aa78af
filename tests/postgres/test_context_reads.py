"""A PostgreSQL query reads the log's state and the candidates it will most likely need in one
statement (``reads::read_state``): the index rows of its payload keys, and the events of the key
the planner will pick per predicate, decoded on the server. These tests give that statement the
shapes it must get right, each checked against the Memory store holding the same events: index
rows of one event and of many (members with gaps of one byte and of several), predicates whose
rare key comes first or last, several predicates and filters, a bound, a limit, a key too common
to read whole, exact payloads, rows a foreign writer added that the index does not cover yet,
and a writer appending while queries run. And how many round trips that takes."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from functools import partial

import factstr
from factstr import EventFilter, EventQuery, NewEvent

from tests.postgres.conftest import MakeDatabase
from tests.postgres_server import PostgresServer
from tests.round_trips import counted
from tests.support import seqs_of


def fill(stores: Sequence[factstr.EventStore]) -> None:
    """The same batches in every store: keys shared by whole batches, by a few events of a batch
    far apart (gaps above 127: multi-byte members), and by single-event appends."""
    batches: list[list[NewEvent]] = []
    # Batches of 300: `course` c0..c2 on every third event, `tenant` on all, `rare` on two
    # events 250 apart.
    for b in range(3):
        batch = []
        for i in range(300):
            payload: dict[str, object] = {"course": f"c{i % 3}", "tenant": "t", "i": b * 300 + i}
            if i in (10, 260):
                payload["rare"] = f"r{b}"
            batch.append(NewEvent("Enrolled" if i % 2 else "Dropped", payload))
        batches.append(batch)
    # Single-event appends between them, some of another type.
    for i in range(40):
        batches.append(
            [NewEvent("Enrolled" if i % 4 else "Other", {"course": f"c{i % 5}", "solo": i})]
        )
    # A key with more index rows than a read takes whole (300 single-event batches).
    for i in range(300):
        batches.append([NewEvent("Ping", {"common": "yes", "n": i % 7})])
    for store in stores:
        for batch in batches:
            store.append(batch)


QUERIES: list[tuple[EventQuery, int | None]] = [
    (EventQuery([EventFilter(["Enrolled"], [{"course": "c1"}])]), None),
    (EventQuery([EventFilter(None, [{"course": "c4"}])]), None),
    (EventQuery([EventFilter(["Enrolled", "Other"], [{"course": "c0"}])]), None),
    (EventQuery([EventFilter(None, [{"rare": "r1"}])]), None),
    # The rare key after a common one, and before it.
    (EventQuery([EventFilter(None, [{"tenant": "t", "rare": "r2"}])]), None),
    (EventQuery([EventFilter(None, [{"rare": "r0", "tenant": "t"}])]), None),
    # Two keys of few rows each in one predicate, one missing entirely.
    (EventQuery([EventFilter(None, [{"course": "c3", "solo": 3}])]), None),
    (EventQuery([EventFilter(None, [{"course": "c3", "solo": 999}])]), None),
    # Several predicates, several filters, a filter without payload predicates.
    (EventQuery([EventFilter(None, [{"rare": "r0"}, {"course": "c2"}])]), None),
    (
        EventQuery(
            [EventFilter(["Other"], None), EventFilter(["Enrolled"], [{"rare": "r1"}])],
        ),
        None,
    ),
    (EventQuery([EventFilter(None, [{}, {"rare": "r1"}])]), None),
    (EventQuery([EventFilter([], [{"rare": "r1"}]), EventFilter(None, [{"solo": 7}])]), None),
    # Bounds and limits.
    (EventQuery([EventFilter(None, [{"course": "c1"}])], min_sequence_number=500), None),
    (EventQuery([EventFilter(None, [{"course": "c1"}])], min_sequence_number=905), 3),
    (EventQuery([EventFilter(None, [{"course": "c1"}])]), 5),
    (EventQuery([EventFilter(None, [{"course": "c0"}])]), 1),
    # A key too common to read whole, alone and beside a rare one.
    (EventQuery([EventFilter(None, [{"common": "yes"}])]), None),
    (EventQuery([EventFilter(None, [{"common": "yes", "n": 3}])]), 10),
    (EventQuery([EventFilter(["Ping"], [{"common": "yes"}, {"rare": "r2"}])]), None),
    (EventQuery([EventFilter(None, [{"course": "nowhere"}])]), None),
]


def summary(result: factstr.QueryResult) -> tuple[object, ...]:
    return (
        [(r.sequence_number, r.event_type, r.payload) for r in result.event_records],
        result.current_context_version,
        result.last_returned_sequence_number,
        result.head_sequence_number,
    )


def test_queries_read_what_the_memory_store_reads(url: str) -> None:
    memory = factstr.MemoryStore()
    with factstr.PostgresStore(url, pool_size=1) as store:
        fill([memory, store])
        for query, limit in QUERIES:
            assert summary(store.query(query, limit=limit)) == summary(
                memory.query(query, limit=limit)
            ), (query, limit)
            page = 2 if limit is None else limit
            assert seqs_of(list(store.iter_query(query, page_size=page))) == seqs_of(
                memory.query(query).event_records
            ), query
        # The conditional appends read the same state under the lock.
        for query, _ in QUERIES:
            version = memory.query(query).current_context_version
            assert store.query(query).current_context_version == version
            new = [NewEvent("Enrolled", {"course": "c1", "tag": "x"})]
            store.append_if(new, query, version)
            memory.append_if(new, query, version)
        assert summary(store.query()) == summary(memory.query())


def test_an_exact_payload_reads_back_through_the_context_read(url: str) -> None:
    """A float `-0.0` is kept as text beside the `jsonb` (which has no negative zero)."""
    with factstr.PostgresStore(url) as store:
        store.append([NewEvent("m", {"k": "x", "v": -0.0}), NewEvent("m", {"k": "x", "v": 1})])
        store.append([NewEvent("m", {"k": "x", "v": -0.0})])
        records = store.query(EventQuery([EventFilter(["m"], [{"k": "x"}])])).event_records
        assert seqs_of(records) == [1, 2, 3]
        assert [math.copysign(1, r.payload["v"]) for r in records] == [-1, 1, -1]


def test_rows_the_index_does_not_cover_yet_are_read_beside_the_read_ahead(
    server: PostgresServer, make_database: MakeDatabase
) -> None:
    """Rows of a writer that keeps no index (the upstream crates) are candidates of every
    payload search until an append of ours indexes them."""
    database = make_database()
    with factstr.PostgresStore(server.url_for(database), pool_size=1) as store:
        store.append(
            [NewEvent("a", {"k": "x"}), NewEvent("a", {"k": "y"}), NewEvent("a", {"k": "x"})]
        )
        store.append([NewEvent("a", {"k": "x"})])
        server.sql(
            "BEGIN; LOCK TABLE events, append_batches IN EXCLUSIVE MODE; "
            "INSERT INTO events VALUES (5, now(), 'a', '{\"k\": \"x\"}'), (6, now(), 'a', '{\"k\": \"z\"}'), "
            "(7, now(), 'b', '{\"k\": \"x\"}'); INSERT INTO append_batches VALUES (5, 7); COMMIT;",
            database,
        )
        by_key = EventQuery([EventFilter(["a"], [{"k": "x"}])])
        result = store.query(by_key)
        assert seqs_of(result.event_records) == [1, 3, 4, 5]
        assert (result.current_context_version, result.head_sequence_number) == (5, 7)
        assert seqs_of(store.query(by_key, limit=2).event_records) == [1, 3]
        assert seqs_of(store.query(by_key.with_min_sequence_number(3)).event_records) == [4, 5]
        store.append_if([NewEvent("a", {"k": "x"})], by_key, 5)
        assert seqs_of(store.query(by_key).event_records) == [1, 3, 4, 5, 8]


def test_a_query_while_another_writer_appends_sees_whole_batches(url: str) -> None:
    """Each query is one snapshot: a batch written meanwhile is in it whole or not at all, and
    the head and context version are those of the records it returned."""
    context = EventQuery([EventFilter(["pair"], [{"k": "x"}])])
    stop = threading.Event()
    failures: list[BaseException] = []
    with factstr.PostgresStore(url, pool_size=2) as store:
        store.append([NewEvent("pair", {"k": "x", "n": 0}), NewEvent("pair", {"k": "x", "n": 1})])

        def write() -> None:
            try:
                for n in range(2, 400, 2):
                    if stop.is_set():
                        return
                    store.append(
                        [
                            NewEvent("pair", {"k": "x", "n": n}),
                            NewEvent("pair", {"k": "x", "n": n + 1}),
                        ]
                    )
            except BaseException as exc:  # reported by the test thread
                failures.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        try:
            seen = 0
            while writer.is_alive() or seen == 0:
                result = store.query(context)
                numbers = seqs_of(result.event_records)
                assert len(numbers) % 2 == 0, numbers
                assert numbers == list(range(1, len(numbers) + 1))
                assert result.current_context_version == numbers[-1]
                assert result.head_sequence_number is not None
                assert result.head_sequence_number >= numbers[-1]
                seen += 1
        finally:
            stop.set()
            writer.join()
    assert not failures, failures


def test_a_context_query_is_one_round_trip_and_a_conditional_append_two(url: str) -> None:
    with counted(url) as (proxy, through), factstr.PostgresStore(through, pool_size=1) as store:
        fill([store])
        for course in ("c1", "c4"):  # index rows with many members; rows of one event each
            context = EventQuery([EventFilter(["Enrolled"], [{"course": course}])])
            new = [NewEvent("Enrolled", {"course": course})]
            # Statements are prepared once per connection: not counted.
            store.append_if(new, context, store.query(context).current_context_version)
            trips, result = proxy.count(partial(store.query, context))
            assert trips == 1
            assert len(result.event_records) > 5
            version = result.current_context_version
            assert proxy.count(partial(store.append_if, new, context, version))[0] == 2
        # A page of a long context, and a bound: read ahead too.
        context = EventQuery([EventFilter(None, [{"course": "c0"}])])
        store.query(context, limit=3)
        assert proxy.count(partial(store.query, context, limit=3))[0] == 1
        bounded = context.with_min_sequence_number(600)
        store.query(bounded)
        assert proxy.count(partial(store.query, bounded))[0] == 1


def test_a_key_shared_by_large_batches_is_read_in_a_round_trip_of_its_own(url: str) -> None:
    """Its members are decoded by the engine, not read ahead by the server (`MAX_DECODED_BYTES`):
    its rows come in round trips of their own, the same result."""
    memory = factstr.MemoryStore()
    with counted(url) as (proxy, through), factstr.PostgresStore(through, pool_size=1) as store:
        for target in (memory, store):
            target.append([NewEvent("bulk", {"b": "x", "i": i}) for i in range(5000)])
            target.append([NewEvent("bulk", {"b": "x", "i": -1})])
        for limit in (None, 3):
            query = EventQuery([EventFilter(["bulk"], [{"b": "x"}])])
            store.query(query, limit=limit)
            trips, result = proxy.count(partial(store.query, query, limit=limit))
            assert trips > 1
            assert summary(result) == summary(memory.query(query, limit=limit))
