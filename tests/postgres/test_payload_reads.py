"""Reading payloads from PostgreSQL's ``jsonb``: what once panicked is an error of that one call,
and no read leaves its pooled connection inside its READ ONLY transaction (an append on that
connection then failed with "cannot execute INSERT in a read-only transaction")."""

from __future__ import annotations

import factstr
import pytest
from factstr import EventQuery, NewEvent

from tests.postgres.conftest import MakeDatabase
from tests.postgres_server import PostgresServer
from tests.support import seqs_of


def test_the_largest_float_reads_back_and_the_connection_stays_usable(url: str) -> None:
    # One connection: whatever a read leaves behind, the next call gets.
    with factstr.PostgresStore(url, pool_size=1) as store:
        store.append([NewEvent("f", {"x": 1.7976931348623157e308, "y": [-1.7976931348623157e308]})])
        payload = store.query().event_records[0].payload
        assert payload == {"x": 1.7976931348623157e308, "y": [-1.7976931348623157e308]}
        assert type(payload["x"]) is float
        assert store.append([NewEvent("g", {})]).first_sequence_number == 2
        assert seqs_of(store.query().event_records) == [1, 2]


def test_an_unreadable_foreign_payload_is_an_error_and_the_connection_stays_usable(
    server: PostgresServer, make_database: MakeDatabase
) -> None:
    """A number beyond a double (``1e400``, which ``jsonb`` holds as ``numeric``), written by a
    writer that is not factstr: reading it raises ``BackendError`` (never ``PanicException``),
    and the store goes on working on the same connection."""
    name = make_database()
    with factstr.PostgresStore(server.url_for(name), pool_size=1) as store:
        store.append([NewEvent("ok", {})])
        # As a foreign writer, then marked as indexed so that our next append does not read it.
        server.sql(
            "INSERT INTO events (sequence_number, event_type, payload) VALUES (2, 'huge', '{\"x\": 1e400}'); "
            "UPDATE factstr_payload_index_state SET indexed_through = 2",
            database=name,
        )
        for _ in range(2):
            with pytest.raises(factstr.BackendError, match="event 2"):
                store.query()
        assert seqs_of(store.query(EventQuery.for_event_types(["ok"])).event_records) == [1]
        assert store.append([NewEvent("ok", {})]).first_sequence_number == 3
        assert seqs_of(store.query(EventQuery.for_event_types(["ok"])).event_records) == [1, 3]
