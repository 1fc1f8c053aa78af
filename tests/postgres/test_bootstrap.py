"""``PostgresStore.bootstrap(server_url, database_name)``: creates the database when it is
missing, returns a store on it, and is safe to call again and from several processes at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import factstr
import pytest
from factstr import NewEvent

from tests.postgres_server import PostgresServer
from tests.processes import Spawn
from tests.support import seqs_of


@pytest.fixture
def new_name(server: PostgresServer) -> Iterator[str]:
    """A database name that does not exist yet (dropped at teardown if a test created it)."""
    name = f"boot_{uuid.uuid4().hex}"
    assert not server.database_exists(name)
    yield name
    server.drop_database(name)


def test_bootstrap_creates_the_database_and_can_be_called_again(
    server: PostgresServer, new_name: str
) -> None:
    with factstr.PostgresStore.bootstrap(server.url, new_name) as store:
        assert isinstance(store, factstr.PostgresStore)
        assert server.database_exists(new_name)
        store.append([NewEvent("a", {"n": 1}), NewEvent("a", {"n": 2})])
    with factstr.PostgresStore.bootstrap(server.url, new_name) as again:
        assert [r.payload for r in again.query().event_records] == [{"n": 1}, {"n": 2}]
        assert again.append([NewEvent("b", {})]).first_sequence_number == 3
    with factstr.PostgresStore(server.url_for(new_name)) as plain:
        assert seqs_of(plain.query().event_records) == [1, 2, 3]
    # Nothing was created in the server's own database.
    assert (
        server.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        == "0"
    )


def test_bootstrap_on_an_existing_database_keeps_its_facts(
    server: PostgresServer, new_name: str
) -> None:
    server.sql(f'CREATE DATABASE "{new_name}"')
    with factstr.PostgresStore(server.url_for(new_name)) as store:
        store.append([NewEvent("kept", {})])
    with factstr.PostgresStore.bootstrap(server.url, new_name) as store:
        assert [r.event_type for r in store.query().event_records] == ["kept"]


def test_bootstrap_keeps_the_exact_name(server: PostgresServer) -> None:
    """A name with capitals is created as given (quoted), not folded to lower case."""
    name = f"Boot_Mixed_{uuid.uuid4().hex[:12]}"
    try:
        with factstr.PostgresStore.bootstrap(server.url, name) as store:
            store.append([NewEvent("a", {})])
        assert server.database_exists(name)
        assert not server.database_exists(name.lower())
        with factstr.PostgresStore(server.url_for(name)) as store:
            assert seqs_of(store.query().event_records) == [1]
    finally:
        server.drop_database(name)


@pytest.mark.parametrize(
    "name", ["", "bad-name", 'x"; DROP DATABASE postgres; --', "1abc", "a" * 64]
)
def test_bootstrap_refuses_names_that_are_not_plain_identifiers(
    server: PostgresServer, name: str
) -> None:
    """The engine's decision: database names are ``[A-Za-z_][A-Za-z0-9_]*``, at most 63
    characters; anything else is a ValueError and creates nothing."""
    before = server.sql("SELECT count(*) FROM pg_database")
    with pytest.raises(ValueError):
        factstr.PostgresStore.bootstrap(server.url, name).close()
    assert server.sql("SELECT count(*) FROM pg_database") == before


def test_bootstrap_from_several_processes_at_once(
    server: PostgresServer, new_name: str, spawn: Spawn
) -> None:
    children = [spawn("bootstrap", server.url, new_name, f"p{n}") for n in range(4)]
    for child in children:
        child.expect("ready")
    for child in children:
        child.send()
    results = []
    for child in children:
        results.append(child.read(timeout=60))
        child.finish()
    assert sorted(first for first, _, _ in results) == [1, 2, 3, 4]
    assert all(first == last and count == 1 for first, last, count in results)
    with factstr.PostgresStore(server.url_for(new_name)) as store:
        records = store.query().event_records
        assert seqs_of(records) == [1, 2, 3, 4]
        assert sorted(r.payload["proc"] for r in records) == ["p0", "p1", "p2", "p3"]


def test_bootstrap_on_an_unreachable_server_raises_backend_error() -> None:
    from tests.postgres_server import free_port

    with pytest.raises(factstr.BackendError):
        store = factstr.PostgresStore.bootstrap(
            f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", "nowhere"
        )
        store.close()
