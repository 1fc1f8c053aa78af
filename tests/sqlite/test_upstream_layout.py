"""A database in exactly the layout of ``factstr-sqlite`` 0.5.2, written with Python's ``sqlite3``,
opens and reads correctly; rows a foreign writer adds later are found too (SPEC §9)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import factstr
import pytest
from factstr import EventFilter, EventQuery, NewEvent

from tests.support import Collector, cursor_of, replay_shapes, seqs_of

UPSTREAM_SCHEMA = """
CREATE TABLE events (
    sequence_number INTEGER PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE append_batches (
    first_sequence_number INTEGER PRIMARY KEY,
    last_sequence_number INTEGER NOT NULL
);
CREATE TABLE store_metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE subscriber_cursors (
    subscriber_id TEXT PRIMARY KEY,
    event_query TEXT NOT NULL,
    last_processed_sequence_number INTEGER NOT NULL
);
CREATE INDEX idx_events_type ON events(event_type);
CREATE INDEX idx_events_occurred_at ON events(occurred_at);
INSERT INTO store_metadata (key, value) VALUES ('store_format_version', '1');
INSERT INTO store_metadata (key, value) VALUES ('append_batch_boundary_format', 'sparse_v1');
"""

# The Rust crates write nanoseconds; Python datetimes hold microseconds, so the extra digits
# are cut off (not rounded), as datetime and chrono's subsecond accessors do.
BATCH_TIME = "2026-11-26T13:47:05.123456789Z"
BATCH_DATETIME = datetime(2026, 11, 26, 13, 47, 5, 123456, tzinfo=timezone.utc)

#: (sequence_number, occurred_at, event_type, payload): a 3-event batch, then two single events.
UPSTREAM_ROWS: list[tuple[int, str, str, object]] = [
    (1, BATCH_TIME, "CourseOpened", {"course": "rust-101", "seats": 3}),
    (
        2,
        BATCH_TIME,
        "StudentEnrolled",
        {"course": "rust-101", "student": "ada", "tags": ["x", 1.5]},
    ),
    (3, BATCH_TIME, "StudentEnrolled", {"course": "rust-101", "student": "bob"}),
    (4, "2026-11-26T13:47:06.000000001Z", "CourseOpened", {"course": "go-201", "seats": 1}),
    (5, "2026-11-27T08:00:00Z", "StudentEnrolled", {"course": "go-201", "student": "cy", "n": 7}),
]


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


@pytest.fixture
def upstream_db(tmp_path: Path) -> Path:
    path = tmp_path / "upstream.db"
    connection = sqlite3.connect(path)
    try:
        connection.executescript(UPSTREAM_SCHEMA)
        connection.executemany(
            "INSERT INTO events (sequence_number, occurred_at, event_type, payload) VALUES (?, ?, ?, ?)",
            [(seq, at, kind, _compact(payload)) for seq, at, kind, payload in UPSTREAM_ROWS],
        )
        connection.execute(
            "INSERT INTO append_batches (first_sequence_number, last_sequence_number) VALUES (1, 3)"
        )
        connection.execute(
            "INSERT INTO subscriber_cursors (subscriber_id, event_query, last_processed_sequence_number) VALUES (?, ?, ?)",
            ("proj", '{"filters":null,"min_sequence_number":null}', 3),
        )
        connection.commit()
    finally:
        connection.close()
    return path


@contextmanager
def _foreign(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain ``sqlite3`` connection: a writer that knows nothing of factstr's additions."""
    connection = sqlite3.connect(path, timeout=5.0)
    try:
        yield connection
    finally:
        connection.close()


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with _foreign(path) as connection:
        return list(connection.execute(sql))


def test_upstream_database_reads_the_same_facts(upstream_db: Path) -> None:
    with factstr.SqliteStore(upstream_db) as store:
        result = store.query()
        assert [(r.sequence_number, r.event_type, r.payload) for r in result.event_records] == [
            (seq, kind, payload) for seq, _, kind, payload in UPSTREAM_ROWS
        ]
        assert [r.occurred_at for r in result.event_records] == [
            BATCH_DATETIME,
            BATCH_DATETIME,
            BATCH_DATETIME,
            datetime(2026, 11, 26, 13, 47, 6, 0, tzinfo=timezone.utc),
            datetime(2026, 11, 27, 8, 0, 0, tzinfo=timezone.utc),
        ]
        assert result.current_context_version == 5
        assert replay_shapes(store, "shapes") == [[1, 2, 3], [4], [5]]
        assert replay_shapes(
            store, "enrolled", EventQuery.for_event_types(["StudentEnrolled"])
        ) == [[2, 3], [5]]


def test_upstream_database_payload_queries(upstream_db: Path) -> None:
    with factstr.SqliteStore(upstream_db) as store:
        rust = EventQuery([EventFilter(None, [{"course": "rust-101"}])])
        assert seqs_of(store.query(rust).event_records) == [1, 2, 3]
        enrolled_go = EventQuery([EventFilter(["StudentEnrolled"], [{"course": "go-201"}])])
        result = store.query(enrolled_go)
        assert (seqs_of(result.event_records), result.current_context_version) == ([5], 5)
        assert seqs_of(
            store.query(EventQuery([EventFilter(None, [{"tags": [1.5]}])])).event_records
        ) == [2]
        assert seqs_of(
            store.query(EventQuery([EventFilter(None, [{"n": 7.0}])])).event_records
        ) == [5]
        assert seqs_of(
            store.query(
                EventQuery([EventFilter(None, [{"seats": 3}, {"student": "bob"}])])
            ).event_records
        ) == [1, 3]


def test_upstream_cursor_resumes(upstream_db: Path) -> None:
    with factstr.SqliteStore(upstream_db) as store:
        [info] = store.durable_streams()
        assert (info.name, info.query, info.last_processed_sequence_number) == (
            "proj",
            EventQuery.all(),
            3,
        )
        seen = Collector()
        with store.stream_all_durable("proj", seen):
            assert seen.batch_seqs() == [[4], [5]]
        assert cursor_of(store, "proj") == 5
    assert _rows(
        upstream_db, "SELECT subscriber_id, last_processed_sequence_number FROM subscriber_cursors"
    ) == [("proj", 5)]


def test_upstream_cursor_resumes_with_subscribe(upstream_db: Path) -> None:
    with factstr.SqliteStore(upstream_db) as store:
        assert replay_shapes(store, "proj") == [[4], [5]]
        assert cursor_of(store, "proj") == 5


def test_our_appends_keep_the_upstream_layout(upstream_db: Path) -> None:
    with factstr.SqliteStore(upstream_db) as store:
        assert (
            store.append([NewEvent("X", {"k": 1}), NewEvent("X", {"k": 2})]).first_sequence_number
            == 6
        )  # 6..7
        assert store.append([NewEvent("X", {"k": 3})]).first_sequence_number == 8
    assert _rows(
        upstream_db,
        "SELECT first_sequence_number, last_sequence_number FROM append_batches ORDER BY 1",
    ) == [
        (1, 3),
        (6, 7),
    ]
    rows = _rows(
        upstream_db,
        "SELECT sequence_number, event_type, payload, occurred_at FROM events WHERE sequence_number > 5",
    )
    assert [(seq, kind, json.loads(str(payload))) for seq, kind, payload, _ in rows] == [
        (6, "X", {"k": 1}),
        (7, "X", {"k": 2}),
        (8, "X", {"k": 3}),
    ]
    for *_, occurred_at in rows:
        assert isinstance(occurred_at, str) and occurred_at.endswith("Z")
        # (Python 3.10's fromisoformat does not take the `Z` suffix; 3.11+ does.)
        datetime.fromisoformat(occurred_at.removesuffix("Z") + "+00:00")
    assert sorted(_rows(upstream_db, "SELECT key, value FROM store_metadata")) == [
        ("append_batch_boundary_format", "sparse_v1"),
        ("store_format_version", "1"),
    ]


def test_rows_of_a_foreign_writer_after_open_are_found(upstream_db: Path) -> None:
    with factstr.SqliteStore(upstream_db) as store:
        # Our own append brings our payload index up to date with everything so far.
        assert store.append([NewEvent("Ours", {"course": "rust-101"})]).first_sequence_number == 6
        only_foreign = EventQuery([EventFilter(None, [{"course": "foreign-only"}])])
        assert store.query(only_foreign).event_records == []
        # A writer that knows nothing of our index adds a row at MAX + 1 while we are open.
        with _foreign(upstream_db) as connection:
            (top,) = connection.execute("SELECT MAX(sequence_number) FROM events").fetchone()
            assert top == 6
            connection.execute(
                "INSERT INTO events (sequence_number, occurred_at, event_type, payload) VALUES (?, ?, ?, ?)",
                (
                    7,
                    "2026-11-28T10:00:00.5Z",
                    "ForeignEvent",
                    _compact({"course": "foreign-only", "seat": 1}),
                ),
            )
            connection.commit()
        result = store.query(only_foreign)
        assert [(r.sequence_number, r.event_type, r.payload) for r in result.event_records] == [
            (7, "ForeignEvent", {"course": "foreign-only", "seat": 1})
        ]
        assert result.event_records[0].occurred_at == datetime(
            2026, 11, 28, 10, 0, 0, 500000, tzinfo=timezone.utc
        )
        assert result.current_context_version == 7
        # With a type filter too, and in an append_if context.
        typed = EventQuery([EventFilter(["ForeignEvent"], [{"seat": 1}])])
        assert seqs_of(store.query(typed).event_records) == [7]
        with pytest.raises(factstr.ConditionalAppendConflict) as conflict:
            store.append_if([NewEvent("Ours", {})], only_foreign, None)
        assert (conflict.value.expected_context_version, conflict.value.actual_context_version) == (
            None,
            7,
        )
        assert (
            store.append_if(
                [NewEvent("Ours", {"course": "foreign-only"})], only_foreign, 7
            ).first_sequence_number
            == 8
        )
        assert seqs_of(store.query(only_foreign).event_records) == [7, 8]
        # After our append has indexed the foreign row, it is still found exactly once.
        assert seqs_of(
            store.query(EventQuery([EventFilter(None, [{"seat": 1}])])).event_records
        ) == [7]
    with factstr.SqliteStore(upstream_db) as store:
        assert seqs_of(
            store.query(EventQuery([EventFilter(None, [{"course": "foreign-only"}])])).event_records
        ) == [7, 8]
        assert replay_shapes(store, "all") == [[1, 2, 3], [4], [5], [6], [7], [8]]
