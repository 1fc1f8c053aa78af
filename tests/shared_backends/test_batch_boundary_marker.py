"""SPEC §9: like the Rust crates, a durable replay on a database whose
``append_batch_boundary_format`` marker (in ``store_metadata``) is missing is refused with
``BackendError`` naming the marker; plain appends, queries and live streams go on working, as
they do with the crates (which check the marker only before a durable replay)."""

from __future__ import annotations

import sqlite3

import factstr
import pytest
from factstr import EventQuery, NewEvent

from tests.shared_backends.backends import Backend
from tests.support import Collector, Store, seqs_of

MARKER = "append_batch_boundary_format"


def _change_marker(backend: Backend, value: str | None) -> None:
    """Deletes the marker (``None``) or sets it to ``value``, from outside the store."""
    if value is None:
        statement = f"DELETE FROM store_metadata WHERE key = '{MARKER}'"
    else:
        statement = f"UPDATE store_metadata SET value = '{value}' WHERE key = '{MARKER}'"
    if backend.server is None:
        # With no store of ours open on the file (see SPEC §7 on other SQLite libraries).
        with sqlite3.connect(backend.locator) as connection:
            connection.execute(statement)
        connection.close()
    else:
        database = backend.locator.rsplit("/", 1)[1].split("?", 1)[0]
        backend.server.sql(statement, database=database)


def _store_without_marker(backend: Backend) -> Store:
    with backend.open() as store:
        store.append([NewEvent("a", {"i": 1}), NewEvent("a", {"i": 2})])
        store.append([NewEvent("b", {})])
    _change_marker(backend, None)
    return backend.open()


def test_durable_replay_without_the_marker_is_refused_naming_it(backend: Backend) -> None:
    with _store_without_marker(backend) as store:
        with pytest.raises(factstr.BackendError, match=MARKER):
            store.stream_all_durable("all", Collector())
        with pytest.raises(factstr.BackendError, match=MARKER):
            store.stream_to_durable("a", EventQuery.for_event_types(["a"]), Collector())
        with pytest.raises(factstr.BackendError, match=MARKER):
            store.subscribe(durable="sub")
        # Refused before the cursor is created.
        assert store.durable_streams() == []

        # Everything that needs no replay works as before.
        assert store.append([NewEvent("c", {})]).first_sequence_number == 4
        assert seqs_of(store.query().event_records) == [1, 2, 3, 4]
        assert seqs_of(store.query(EventQuery.for_event_types(["a"])).event_records) == [1, 2]
        seen = Collector()
        with store.stream_all(seen):
            store.append([NewEvent("d", {}), NewEvent("d", {})])
            seen.wait_batches(1)
        assert seen.batch_seqs() == [[5, 6]]


def test_an_existing_cursor_is_not_replayed_without_the_marker(backend: Backend) -> None:
    with backend.open() as store:
        store.append([NewEvent("a", {})])
        store.stream_all_durable("d", Collector()).unsubscribe()
        store.append([NewEvent("a", {}), NewEvent("a", {})])
    _change_marker(backend, None)
    with backend.open() as store:
        with pytest.raises(factstr.BackendError, match=MARKER):
            store.stream_all_durable("d", Collector())
        assert [(i.name, i.last_processed_sequence_number) for i in store.durable_streams()] == [
            ("d", 1)
        ]
    # Put back, replay works again from the stored cursor.
    if backend.server is None:
        with sqlite3.connect(backend.locator) as connection:
            connection.execute(
                f"INSERT INTO store_metadata (key, value) VALUES ('{MARKER}', 'sparse_v1')"
            )
        connection.close()
    else:
        database = backend.locator.rsplit("/", 1)[1].split("?", 1)[0]
        backend.server.sql(
            f"INSERT INTO store_metadata (key, value) VALUES ('{MARKER}', 'sparse_v1')",
            database=database,
        )
    with backend.open() as store:
        seen = Collector()
        store.stream_all_durable("d", seen).unsubscribe()
        assert seen.batch_seqs() == [[2, 3]]


def test_a_different_marker_value_is_refused_too(backend: Backend) -> None:
    """The crates accept only ``sparse_v1``; a SQLite store already refuses to open such a file."""
    with backend.open() as store:
        store.append([NewEvent("a", {})])
    _change_marker(backend, "dense_v9")
    if backend.server is None:
        with pytest.raises(factstr.BackendError, match="sparse_v1"):
            backend.open()
        return
    with backend.open() as store:
        with pytest.raises(factstr.BackendError, match=MARKER):
            store.stream_all_durable("d", Collector())
        assert seqs_of(store.query().event_records) == [1]
