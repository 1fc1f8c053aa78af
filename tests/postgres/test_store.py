"""The PostgreSQL store's own surface: ``connect`` URLs, ``pool_size``, persistence."""

from __future__ import annotations

import threading
import time
import uuid

import factstr
from factstr import EventFilter, EventQuery, NewEvent

from tests.postgres.conftest import MakeDatabase
from tests.postgres_server import PostgresServer
from tests.support import Collector, cursor_of, seqs_of, wait_for


def test_connect_postgresql_and_postgres_urls(url: str) -> None:
    with (
        factstr.connect(url) as first,
        factstr.connect("postgres://" + url.split("://", 1)[1]) as second,
    ):
        assert isinstance(first, factstr.PostgresStore)
        assert isinstance(second, factstr.PostgresStore)
        first.append([NewEvent("a", {})])
        assert second.append([NewEvent("b", {})]).first_sequence_number == 2
        assert seqs_of(first.query().event_records) == [1, 2]


def test_facts_and_cursors_persist_across_store_objects(url: str) -> None:
    with factstr.PostgresStore(url) as store:
        store.append([NewEvent("a", {"x": [1, 2.5, None, "é"]})])
        store.append([NewEvent("b", {}), NewEvent("c", {})])
        with store.stream_to_durable("proj", EventQuery.for_event_types(["a", "c"]), Collector()):
            pass
    with factstr.PostgresStore(url) as store:
        records = store.query().event_records
        assert [(r.sequence_number, r.event_type) for r in records] == [
            (1, "a"),
            (2, "b"),
            (3, "c"),
        ]
        assert records[0].payload == {"x": [1, 2.5, None, "é"]}
        assert records[1].occurred_at == records[2].occurred_at
        assert cursor_of(store, "proj") == 3
        info = store.durable_streams()[0]
        assert info.query == EventQuery.for_event_types(["a", "c"])
        assert store.append([NewEvent("d", {})]).first_sequence_number == 4


def test_a_pool_of_one_connection_still_streams_and_lets_handlers_use_the_store(url: str) -> None:
    """With ``pool_size=1``, streams, a durable stream, a subscription and a handler that queries
    and appends all work together (no connection is held for good by a stream)."""
    with factstr.PostgresStore(url, pool_size=1) as store:
        reacted = threading.Event()

        def react(batch: list[factstr.EventRecord]) -> None:
            if any(r.event_type == "ping" for r in batch):
                assert (
                    store.query(EventQuery.for_event_types(["ping"])).current_context_version
                    is not None
                )
                store.append([NewEvent("pong", {})])
                reacted.set()

        seen = Collector()
        with store.stream_all(react), store.stream_all_durable("d", seen), store.subscribe() as sub:
            store.append([NewEvent("ping", {})])
            assert reacted.wait(10), "the handler did not get to query and append"
            seen.wait_batches(2, timeout=10)
            assert seen.batch_seqs() == [[1], [2]]
            first = sub.next_batch(timeout=10)
            second = sub.next_batch(timeout=10)
            assert first is not None and second is not None
            assert [seqs_of(first), seqs_of(second)] == [[1], [2]]
            wait_for(lambda: cursor_of(store, "d") == 2, what="the durable cursor")
        assert [r.event_type for r in store.query().event_records] == ["ping", "pong"]


def test_durable_subscription_replay_does_not_stall(url: str) -> None:
    """A durable subscription replays committed history as fast as it is asked for: no wait of
    seconds between batches that are already there (a handler replay of the same history takes
    a fraction of a second)."""
    with factstr.PostgresStore(url) as store:
        for i in range(1100):  # more than two pages of 512 batches
            store.append([NewEvent("a", {"i": i})])
        store.append([NewEvent("big", {"i": i}) for i in range(2000)])
        waits: list[tuple[float, int]] = []
        with store.subscribe(durable="replay") as sub:
            for n in range(1101):
                started = time.monotonic()
                batch = sub.next_batch(timeout=10)
                waits.append((time.monotonic() - started, n))
                assert batch is not None, f"replay stopped after {n} batches"
        slow = [(round(w, 2), n) for w, n in waits if w > 1.0]
        assert slow == [], (
            f"next_batch waited over 1 s for committed batches (seconds, batch index): {slow}"
        )


def test_an_append_after_a_foreign_writer_indexes_its_rows(
    server: PostgresServer, make_database: MakeDatabase
) -> None:
    """A plain append is one statement that refuses to run past rows our index does not cover
    (written by another writer, e.g. the upstream crates): the engine then indexes them first."""
    database = make_database()
    with factstr.PostgresStore(server.url_for(database)) as store:
        store.append([NewEvent("a", {"account": "x"}), NewEvent("a", {"account": "y"})])
        # A writer that keeps no index, in the upstream way.
        server.sql(
            "BEGIN; LOCK TABLE events, append_batches IN EXCLUSIVE MODE; "
            "INSERT INTO events VALUES (3, now(), 'a', '{\"account\": \"x\"}'), (4, now(), 'a', '{\"account\": \"z\"}'); "
            "INSERT INTO append_batches VALUES (3, 4); COMMIT;",
            database,
        )
        by_account = EventQuery([EventFilter(["a"], [{"account": "x"}])])
        assert seqs_of(store.query(by_account).event_records) == [
            1,
            3,
        ]  # the foreign rows are searched too
        result = store.append([NewEvent("a", {"account": "x"})])
        assert (result.first_sequence_number, result.last_sequence_number) == (5, 5)
        assert (
            server.sql("SELECT indexed_through FROM factstr_payload_index_state", database) == "5"
        )
        assert seqs_of(store.query(by_account).event_records) == [1, 3, 5]
        assert seqs_of(
            store.query(EventQuery([EventFilter(None, [{"account": "z"}])])).event_records
        ) == [4]
        assert store.append([NewEvent("b", {}), NewEvent("b", {})]).first_sequence_number == 6
        assert (
            server.sql(
                "SELECT first_sequence_number, last_sequence_number FROM append_batches ORDER BY 1",
                database,
            )
            == "1|2\n3|4\n6|7"
        )


def test_appends_stay_gapless_when_the_database_defaults_to_repeatable_read(
    server: PostgresServer, make_database: MakeDatabase
) -> None:
    """A plain append is one statement that takes the append lock; at REPEATABLE READ the
    statement's snapshot would predate that lock, so the engine appends in an explicit
    transaction instead: concurrent writers still number without duplicates or errors."""
    database = make_database()
    server.sql(
        f"ALTER DATABASE \"{database}\" SET default_transaction_isolation = 'repeatable read'"
    )
    stores = [factstr.PostgresStore(server.url_for(database)) for _ in range(4)]
    errors: list[BaseException] = []
    results: list[tuple[int, int]] = []
    lock = threading.Lock()

    def write(store: factstr.EventStore, writer: int) -> None:
        try:
            for i in range(40):
                result = store.append([NewEvent("w", {"writer": writer, "i": i})] * (1 + i % 3))
                with lock:
                    results.append((result.first_sequence_number, result.last_sequence_number))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(store, n)) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        numbers = sorted(n for first, last in results for n in range(first, last + 1))
        assert numbers == list(range(1, len(numbers) + 1))
        assert seqs_of(stores[0].query().event_records) == numbers
    finally:
        for store in stores:
            store.close()


def test_a_role_granted_the_tables_can_use_a_store_another_role_created(
    server: PostgresServer, make_database: MakeDatabase
) -> None:
    """Opening creates nothing that exists already (creating it again would need its owner), so
    an application role with privileges on the tables works with a store its owner created."""
    database = make_database()
    with factstr.PostgresStore(server.url_for(database)) as owner:
        owner.append([NewEvent("a", {"account": "x"})])
    role = f"app_{uuid.uuid4().hex[:12]}"
    server.sql(f"CREATE ROLE {role} LOGIN")
    try:
        server.sql(
            f"GRANT USAGE ON SCHEMA public TO {role}; GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}",
            database,
        )
        app_url = server.url_for(database).replace(f"//{server.user}@", f"//{role}@")
        with factstr.PostgresStore(app_url) as app, app.subscribe() as sub:
            context = EventQuery([EventFilter(None, [{"account": "x"}])])
            assert (
                app.append_if([NewEvent("a", {"account": "x"})], context, 1).first_sequence_number
                == 2
            )
            assert app.append([NewEvent("b", {})]).first_sequence_number == 3
            assert seqs_of(app.query(context).event_records) == [1, 2]
            seen = Collector()
            with app.stream_all_durable("app-projection", seen):
                seen.wait_batches(3)
            batch = sub.next_batch(timeout=5.0)
            assert batch is not None and seqs_of(batch) == [2]
            assert cursor_of(app, "app-projection") == 3
    finally:
        server.sql(f"DROP OWNED BY {role}", database)
        server.sql(f"DROP ROLE {role}")
