"""The hand-written floor on SQLite: Python's `sqlite3` doing factstr's writes and reads on the
upstream table layout (FACTSTR 0.5.2's `events` and `append_batches`), WAL, synchronous=FULL
(fsync at every commit, as factstr's default).

Written as a competent engineer would for this workload: an expression index on the context key
(`json_extract(payload, '$.course')`, then `event_type`; the rowid is the sequence number, so a
context is one index range in order and its version one seek); appends number with
MAX(sequence_number)+1 inside BEGIN IMMEDIATE; a decision is one SELECT of the context, then
BEGIN IMMEDIATE, the version re-read through the index, the INSERT, COMMIT. Filling (not timed)
is one transaction of executemany."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.servers import env
from bench.subject import ENROLLED, Payload, Session, Subject, fill_payload
from bench.subjects.factstr_stores import drop_sqlite_files

UPSTREAM_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (sequence_number INTEGER PRIMARY KEY, occurred_at TEXT NOT NULL,
                     event_type TEXT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS append_batches (first_sequence_number INTEGER PRIMARY KEY,
                             last_sequence_number INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS idx_events_type ON events(event_type);
CREATE INDEX IF NOT EXISTS idx_events_occurred_at ON events(occurred_at);
CREATE TABLE IF NOT EXISTS bench_cursors (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
"""

# The same expression as the index's, so the planner uses it (EXPLAIN: SEARCH ... USING INDEX).
CONTEXT_INDEX = (
    "CREATE INDEX IF NOT EXISTS idx_events_course "
    "ON events(json_extract(payload, '$.course'), event_type)"
)
CONTEXT_WHERE = "json_extract(payload, '$.course') = ? AND event_type = ?"


def now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def dumps(item: Payload) -> str:
    return json.dumps(item, separators=(",", ":"))


class SqliteFloorSession(Session):
    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.executescript(UPSTREAM_SCHEMA)
        self.db.execute(CONTEXT_INDEX)

    def _insert(self, payloads: Sequence[Payload]) -> None:
        """Inside a write transaction: numbers and inserts one batch."""
        head = self.db.execute("SELECT COALESCE(MAX(sequence_number), 0) FROM events").fetchone()[0]
        stamp = now_text()
        self.db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?)",
            [(head + 1 + i, stamp, ENROLLED, dumps(p)) for i, p in enumerate(payloads)],
        )
        self.db.execute(
            "INSERT INTO append_batches VALUES (?, ?)", (head + 1, head + len(payloads))
        )

    def append_batch(self, payloads: Sequence[Payload]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._insert(payloads)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def fill(self, total: int, courses: int, prefix: str = "c") -> None:
        """One transaction of executemany (batch rows of 1,000, as the default fill writes),
        the context index built after the rows (faster than maintaining it row by row)."""
        head = self.db.execute("SELECT COALESCE(MAX(sequence_number), 0) FROM events").fetchone()[0]
        stamp = now_text()
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("DROP INDEX idx_events_course")
        self.db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?)",
            (
                (head + 1 + i, stamp, ENROLLED, dumps(fill_payload(i, courses, prefix)))
                for i in range(total)
            ),
        )
        self.db.executemany(
            "INSERT INTO append_batches VALUES (?, ?)",
            ((head + 1 + s, head + min(total, s + 1000)) for s in range(0, total, 1000)),
        )
        self.db.execute(CONTEXT_INDEX)
        self.db.execute("COMMIT")

    def decide(self, course: str) -> int | None:
        rows = self.db.execute(
            f"SELECT sequence_number, payload FROM events WHERE {CONTEXT_WHERE} "
            "ORDER BY sequence_number",
            (course, ENROLLED),
        ).fetchall()
        facts = [(n, json.loads(p)) for n, p in rows]
        return facts[-1][0] if facts else None

    def append_if(self, course: str, item: Payload, version: int | None) -> bool:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            actual = self.db.execute(
                f"SELECT MAX(sequence_number) FROM events WHERE {CONTEXT_WHERE}", (course, ENROLLED)
            ).fetchone()[0]
            if actual != version:
                self.db.execute("ROLLBACK")
                return False
            self._insert([item])
            self.db.execute("COMMIT")
            return True
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def read(self, limit: int) -> int:
        rows = self.db.execute(
            "SELECT sequence_number, occurred_at, event_type, payload FROM events "
            "ORDER BY sequence_number LIMIT ?",
            (limit,),
        ).fetchall()
        return len([(n, t, e, json.loads(p)) for n, t, e, p in rows])

    def replay(self, name: str) -> int:
        """Pages of 1,000 events, decoded, then the cursor saved (one small commit per page)."""
        row = self.db.execute(
            "SELECT position FROM bench_cursors WHERE name = ?", (name,)
        ).fetchone()
        position = row[0] if row else 0
        handled = 0
        while True:
            rows = self.db.execute(
                "SELECT sequence_number, occurred_at, event_type, payload FROM events "
                "WHERE sequence_number > ? ORDER BY sequence_number LIMIT 1000",
                (position,),
            ).fetchall()
            if not rows:
                return handled
            handled += len([(n, t, e, json.loads(p)) for n, t, e, p in rows])
            position = rows[-1][0]
            self.db.execute(
                "INSERT INTO bench_cursors VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET position = ?",
                (name, position, position),
            )

    def close(self) -> None:
        self.db.close()


@dataclass(frozen=True)
class SqliteFloorSubject(Subject):
    def create(self) -> str:
        path = str(env().new_path("floor-sqlite"))
        SqliteFloorSession(path).close()
        return path

    def open(self, location: str) -> Session:
        return SqliteFloorSession(location)

    def drop(self, location: str) -> None:
        drop_sqlite_files(location)


def subject() -> Subject:
    return SqliteFloorSubject(
        "floor: python sqlite3",
        "SQLite",
        "floor",
        frozenset({"s1", "s2", "s3", "s4", "s6", "s7"}),
        "SQLite WAL, synchronous=FULL (fsync at every commit)",
    )
