"""The hand-written floor on PostgreSQL: `psycopg` doing factstr's writes and reads on the
upstream table layout (FACTSTR 0.5.2's `events` and `append_batches`).

Written as a competent engineer would for this workload: a B-tree expression index on the
context key (`payload->>'course'`, then `event_type` and `sequence_number`: a context is one
index range in order, its version one backward seek); no GIN index (nothing here queries by
containment, and it would slow every insert). A decision is one SELECT of the context; the
conditional append is BEGIN plus a transaction-scoped advisory lock (writers serialised, numbers
gap-free, and no conflict with autovacuum, unlike `LOCK TABLE ... IN EXCLUSIVE MODE`), then one
INSERT statement that re-checks the version through the index, numbers with MAX+1, writes the
batch row and notifies listeners, then COMMIT. Filling (not timed) is one COPY in one
transaction. Live streams: LISTEN/NOTIFY, then read by position."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.servers import env
from bench.subject import ENROLLED, Payload, Session, Subject, fill_payload

UPSTREAM_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (sequence_number BIGINT PRIMARY KEY, occurred_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
                     event_type TEXT NOT NULL, payload JSONB NOT NULL);
CREATE TABLE IF NOT EXISTS append_batches (first_sequence_number BIGINT PRIMARY KEY, last_sequence_number BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_events_type ON events(event_type);
CREATE INDEX IF NOT EXISTS idx_events_occurred_at ON events(occurred_at);
CREATE INDEX IF NOT EXISTS idx_events_course ON events ((payload->>'course'), event_type, sequence_number);
CREATE TABLE IF NOT EXISTS bench_cursors (name TEXT PRIMARY KEY, position BIGINT NOT NULL);
"""

CHANNEL = "bench_commits"

INSERT = """
WITH head AS (SELECT COALESCE(MAX(sequence_number), 0) AS h FROM events),
ok AS (SELECT 1 FROM head WHERE {condition}),
ins AS (INSERT INTO events (sequence_number, occurred_at, event_type, payload)
        SELECT head.h + u.ord, now(), %(type)s, u.p::jsonb
        FROM head, ok, unnest(%(payloads)s::text[]) WITH ORDINALITY AS u(p, ord)
        RETURNING sequence_number)
INSERT INTO append_batches
SELECT min(sequence_number), max(sequence_number) FROM ins, (SELECT pg_notify('bench_commits', '')) AS n
HAVING count(*) > 0
"""
UNCONDITIONAL = INSERT.format(condition="TRUE")
CONDITIONAL = INSERT.format(
    condition=(
        "(SELECT MAX(sequence_number) FROM events WHERE payload->>'course' = %(course)s AND event_type = %(type)s) "
        "IS NOT DISTINCT FROM %(version)s::bigint"
    )
)
# One simple-protocol round trip: the transaction and the writers' lock (the INSERT that follows
# takes its snapshot after the lock is held, so MAX+1 and the version check see every commit).
BEGIN_AND_LOCK = "BEGIN; SELECT pg_advisory_xact_lock(7215)"
CONTEXT = (
    "SELECT sequence_number, payload FROM events WHERE payload->>'course' = %s AND event_type = %s "
    "ORDER BY sequence_number"
)


def dumps(item: Payload) -> str:
    return json.dumps(item, separators=(",", ":"))


class PgFloorSession(Session):
    def __init__(self, url: str) -> None:
        self.url = url
        self.db: psycopg.Connection[Any] = psycopg.connect(url, autocommit=True)

    def _write(self, statement: str, params: dict[str, Any]) -> int:
        self.db.execute(BEGIN_AND_LOCK)
        try:
            cursor = self.db.execute(statement, params)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return cursor.rowcount

    def append_batch(self, payloads: Sequence[Payload]) -> None:
        self._write(UNCONDITIONAL, {"type": ENROLLED, "payloads": [dumps(p) for p in payloads]})

    def fill(self, total: int, courses: int, prefix: str = "c") -> None:
        """One COPY in one transaction (batch rows of 1,000, as the default fill writes)."""
        with self.db.transaction():
            self.db.execute(BEGIN_AND_LOCK.split("; ", 1)[1])
            head = self.db.execute(
                "SELECT COALESCE(MAX(sequence_number), 0) FROM events"
            ).fetchone()[0]  # type: ignore[index]
            with self.db.cursor().copy(
                "COPY events (sequence_number, occurred_at, event_type, payload) FROM STDIN"
            ) as copy:
                for i in range(total):
                    copy.write_row(
                        (head + 1 + i, "now", ENROLLED, dumps(fill_payload(i, courses, prefix)))
                    )
            self.db.cursor().executemany(
                "INSERT INTO append_batches VALUES (%s, %s)",
                [(head + 1 + s, head + min(total, s + 1000)) for s in range(0, total, 1000)],
            )
        self.db.execute("ANALYZE events")

    def decide(self, course: str) -> int | None:
        rows = self.db.execute(CONTEXT, (course, ENROLLED)).fetchall()
        decoded = [(n, p) for n, p in rows]  # psycopg decodes jsonb into Python objects
        return decoded[-1][0] if decoded else None

    def append_if(self, course: str, item: Payload, version: int | None) -> bool:
        params = {
            "type": ENROLLED,
            "payloads": [dumps(item)],
            "course": course,
            "version": version,
        }
        return self._write(CONDITIONAL, params) == 1

    def read(self, limit: int) -> int:
        rows = self.db.execute(
            "SELECT sequence_number, occurred_at, event_type, payload FROM events "
            "ORDER BY sequence_number LIMIT %s",
            (limit,),
        ).fetchall()
        return len(rows)

    def replay(self, name: str) -> int:
        row = self.db.execute(
            "SELECT position FROM bench_cursors WHERE name = %s", (name,)
        ).fetchone()
        position = row[0] if row else 0
        handled = 0
        while True:
            rows = self.db.execute(
                "SELECT sequence_number, occurred_at, event_type, payload FROM events "
                "WHERE sequence_number > %s ORDER BY sequence_number LIMIT 1000",
                (position,),
            ).fetchall()
            if not rows:
                return handled
            handled += len(rows)
            position = rows[-1][0]
            self.db.execute(
                "INSERT INTO bench_cursors VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET position = %s",
                (name, position, position),
            )

    @contextlib.contextmanager
    def listen(self, deliver: Callable[[list[float]], None]) -> Iterator[object]:
        listener: psycopg.Connection[Any] = psycopg.connect(self.url, autocommit=True)
        reader: psycopg.Connection[Any] = psycopg.connect(self.url, autocommit=True)
        listener.execute(f"LISTEN {CHANNEL}")
        position = reader.execute(
            "SELECT COALESCE(MAX(sequence_number), 0) FROM events"
        ).fetchone()[0]  # type: ignore[index]
        stop = threading.Event()

        def run() -> None:
            nonlocal position
            while not stop.is_set():
                notified = any(True for _ in listener.notifies(timeout=0.1, stop_after=1))
                if not notified:
                    continue
                rows = reader.execute(
                    "SELECT sequence_number, payload FROM events WHERE sequence_number > %s "
                    "ORDER BY sequence_number",
                    (position,),
                ).fetchall()
                if rows:
                    position = rows[-1][0]
                    deliver([r[1]["sent"] for r in rows])

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield thread
        finally:
            stop.set()
            thread.join(5)
            listener.close()
            reader.close()

    def close(self) -> None:
        self.db.close()


@dataclass(frozen=True)
class PgFloorSubject(Subject):
    def create(self) -> str:
        url = env().pg_create()
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(UPSTREAM_PG_SCHEMA)
        return url

    def open(self, location: str) -> Session:
        return PgFloorSession(location)

    def drop(self, location: str) -> None:
        env().pg_drop(location)


def subject() -> Subject:
    return PgFloorSubject(
        "floor: psycopg",
        "Server",
        "floor",
        frozenset({"s1", "s2", "s3", "s4", "s5", "s5x", "s6", "s7", "s9"}),
        env().pg_durability(),
    )
