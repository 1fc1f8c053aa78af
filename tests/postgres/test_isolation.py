"""Stores in different databases, or in different schemas of one database, share nothing:
facts, numbering, live deliveries, durable cursors and durable names are their own."""

from __future__ import annotations

import time

import factstr
import pytest
from factstr import NewEvent

from tests.postgres.conftest import MakeDatabase
from tests.postgres_server import PostgresServer
from tests.support import Collector, Store, cursor_of, seqs_of


def _assert_separate(a: Store, b: Store) -> None:
    seen_b = Collector()
    b.stream_all(seen_b)
    seen_a = Collector()
    a.stream_all(seen_a)
    a.append([NewEvent("in_a", {"n": 1}), NewEvent("in_a", {"n": 2})])
    a.append([NewEvent("in_a", {"n": 3})])
    with a.stream_all_durable("d", Collector()):  # held in a while b uses the same name
        assert cursor_of(a, "d") == 3
        assert b.query().event_records == []
        assert b.query().current_context_version is None
        assert b.durable_streams() == []
        first_b = b.append([NewEvent("in_b", {})])
        assert first_b.first_sequence_number == 1  # b numbers from 1 on its own
        replayed = Collector()
        with b.stream_all_durable("d", replayed):
            assert replayed.batch_seqs() == [[1]]
            assert [r.event_type for r in replayed.records] == ["in_b"]
    seen_a.wait_batches(2)
    seen_b.wait_batches(1)
    time.sleep(0.3)  # a stray delivery from the other store would arrive by now
    assert seen_a.batch_seqs() == [[1, 2], [3]]
    assert [r.event_type for r in seen_a.records] == ["in_a"] * 3
    assert seen_b.batch_seqs() == [[1]]
    assert [r.event_type for r in seen_b.records] == ["in_b"]
    assert seqs_of(a.query().event_records) == [1, 2, 3]
    assert {i.name: i.last_processed_sequence_number for i in a.durable_streams()} == {"d": 3}
    assert {i.name: i.last_processed_sequence_number for i in b.durable_streams()} == {"d": 1}


def test_stores_in_different_databases_are_separate(
    server: PostgresServer, make_database: MakeDatabase
) -> None:
    with (
        factstr.PostgresStore(server.url_for(make_database())) as a,
        factstr.PostgresStore(server.url_for(make_database())) as b,
    ):
        _assert_separate(a, b)


@pytest.fixture
def schema_database(server: PostgresServer, make_database: MakeDatabase) -> str:
    name = make_database()
    server.sql("CREATE SCHEMA schema_a; CREATE SCHEMA schema_b", database=name)
    return name


def _tables_in(server: PostgresServer, database: str, schema: str) -> int:
    return int(
        server.sql(
            f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{schema}'",
            database=database,
        )
    )


def test_stores_in_different_schemas_of_one_database_are_separate(
    server: PostgresServer, schema_database: str
) -> None:
    url_a = server.url_for(schema_database, query="options=-csearch_path%3Dschema_a")
    url_b = server.url_for(schema_database, query="options=-csearch_path%3Dschema_b")
    with factstr.PostgresStore(url_a) as a, factstr.PostgresStore(url_b) as b:
        _assert_separate(a, b)
    # The tables went into the schemas the URLs named, none into public.
    assert _tables_in(server, schema_database, "schema_a") > 0
    assert _tables_in(server, schema_database, "schema_b") == _tables_in(
        server, schema_database, "schema_a"
    )
    assert _tables_in(server, schema_database, "public") == 0
    # Reopened, each schema still has its own log; the default schema is a third, empty one.
    with (
        factstr.PostgresStore(url_a) as a,
        factstr.PostgresStore(url_b) as b,
        factstr.PostgresStore(server.url_for(schema_database)) as public,
    ):
        assert [r.event_type for r in a.query().event_records] == ["in_a"] * 3
        assert [r.event_type for r in b.query().event_records] == ["in_b"]
        assert public.query().event_records == []
        assert public.durable_streams() == []


def test_schema_store_streams_see_other_processes_in_the_same_schema_only(
    server: PostgresServer, schema_database: str
) -> None:
    """Two store objects on schema_a see each other's batches; one on schema_b sees none."""
    url_a = server.url_for(schema_database, query="options=-csearch_path%3Dschema_a")
    url_b = server.url_for(schema_database, query="options=-csearch_path%3Dschema_b")
    with (
        factstr.PostgresStore(url_a) as a1,
        factstr.PostgresStore(url_a) as a2,
        factstr.PostgresStore(url_b) as b,
    ):
        seen_a2 = Collector()
        seen_b = Collector()
        a2.stream_all(seen_a2)
        b.stream_all(seen_b)
        a1.append([NewEvent("x", {}), NewEvent("x", {})])
        seen_a2.wait_batches(1)
        time.sleep(0.3)
        assert seen_a2.batch_seqs() == [[1, 2]]
        assert seen_b.batches == []
