"""The `eventsourcing` library (9.5.x), at the level of its recorders, the part that stores:

- `SQLiteApplicationRecorder` and `PostgresApplicationRecorder`: aggregate event stores. Their
  conditional write is per aggregate (a (originator_id, version) primary key), so a decision's
  context maps to one aggregate per course; S3/S7 check its version, not a query's.
- `PostgresDCBRecorderTT` (PostgreSQL, "dynamic consistency boundary": tagged events, conditional
  append on a query of types and tags) and `InMemoryDCBRecorder`. The course becomes a tag.
  eventsourcing 9.5 has no SQLite DCB recorder.

Payloads are JSON-encoded to bytes going in and decoded coming out, as factstr's are."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bench.servers import env
from bench.subject import ENROLLED, Payload, Session, Subject, fill_payload
from bench.subjects.factstr_stores import drop_sqlite_files

TOPIC = "bench:StudentEnrolled"
COURSES = uuid.UUID("6a1f3c1e-7d1b-4f0e-9a57-2d9a3c1b0e11")


def encode(item: Payload) -> bytes:
    return json.dumps(item, separators=(",", ":")).encode()


def pg_params(url: str) -> dict[str, Any]:
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(url)
    return {
        "dbname": info["dbname"],
        "host": info.get("host", "127.0.0.1"),
        "port": info.get("port", 5432),
        "user": info.get("user", "postgres"),
        "password": info.get("password", ""),
    }


# -- aggregate recorders -----------------------------------------------------------------------


class AggregateSession(Session):
    def __init__(self, recorder: Any, datastore: Any) -> None:
        from eventsourcing.persistence import IntegrityError, StoredEvent

        self.recorder = recorder
        self.datastore = datastore
        self.StoredEvent = StoredEvent
        self.IntegrityError = IntegrityError

    def _event(self, aggregate: uuid.UUID, version: int, item: Payload) -> Any:
        return self.StoredEvent(
            originator_id=aggregate, originator_version=version, topic=TOPIC, state=encode(item)
        )

    def append_batch(self, payloads: Sequence[Payload]) -> None:
        aggregate = uuid.uuid4()
        self.recorder.insert_events(
            [self._event(aggregate, v, p) for v, p in enumerate(payloads, 1)]
        )

    def fill(self, total: int, courses: int, prefix: str = "c") -> None:
        for start in range(0, total, 1000):
            self.recorder.insert_events(
                [
                    self._event(
                        uuid.uuid5(COURSES, f"{prefix}{i % courses}"),
                        i // courses + 1,
                        fill_payload(i, courses, prefix),
                    )
                    for i in range(start, min(total, start + 1000))
                ]
            )

    def decide(self, course: str) -> int | None:
        events = self.recorder.select_events(uuid.uuid5(COURSES, course))
        facts = [(e.originator_version, json.loads(e.state)) for e in events]
        return facts[-1][0] if facts else None

    def append_if(self, course: str, item: Payload, version: int | None) -> bool:
        try:
            self.recorder.insert_events(
                [self._event(uuid.uuid5(COURSES, course), (version or 0) + 1, item)]
            )
        except self.IntegrityError:
            return False
        return True

    def read(self, limit: int) -> int:
        notifications = self.recorder.select_notifications(start=None, limit=limit)
        return len([(n.id, json.loads(n.state)) for n in notifications])

    def replay(self, name: str) -> int:
        """Pages of 1,000 notifications, decoded (the cursor is not stored: that takes a
        process recorder, which this comparison leaves out)."""
        position, handled = 0, 0
        while True:
            page = self.recorder.select_notifications(
                start=position, limit=1000, inclusive_of_start=False
            )
            if not page:
                return handled
            handled += len([json.loads(n.state) for n in page])
            position = page[-1].id

    def close(self) -> None:
        self.datastore.close()


@dataclass(frozen=True)
class SqliteAggregateSubject(Subject):
    def create(self) -> str:
        path = str(env().new_path("es-sqlite"))
        self.open(path).close()
        return path

    def open(self, location: str) -> Session:
        from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

        datastore = SQLiteDatastore(location)
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        return AggregateSession(recorder, datastore)

    def drop(self, location: str) -> None:
        drop_sqlite_files(location)


@dataclass(frozen=True)
class PostgresAggregateSubject(Subject):
    def create(self) -> str:
        url = env().pg_create()
        session = self.open(url)
        assert isinstance(session, AggregateSession)
        session.recorder.create_table()
        session.close()
        return url

    def open(self, location: str) -> Session:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        datastore = PostgresDatastore(**pg_params(location))
        return AggregateSession(PostgresApplicationRecorder(datastore), datastore)

    def drop(self, location: str) -> None:
        env().pg_drop(location)


# -- DCB recorders -----------------------------------------------------------------------------


class DcbSession(Session):
    def __init__(self, recorder: Any, datastore: Any = None) -> None:
        from eventsourcing.dcb.api import DCBAppendCondition, DCBEvent, DCBQuery, DCBQueryItem
        from eventsourcing.persistence import IntegrityError

        self.recorder = recorder
        self.datastore = datastore
        self.DCBEvent, self.DCBQuery, self.DCBQueryItem = DCBEvent, DCBQuery, DCBQueryItem
        self.DCBAppendCondition, self.IntegrityError = DCBAppendCondition, IntegrityError

    def _event(self, item: Payload) -> Any:
        course = item.get("course")
        return self.DCBEvent(
            type=ENROLLED, data=encode(item), tags=[f"course:{course}"] if course else []
        )

    def _context(self, course: str) -> Any:
        return self.DCBQuery(items=[self.DCBQueryItem(types=[ENROLLED], tags=[f"course:{course}"])])

    def append_batch(self, payloads: Sequence[Payload]) -> None:
        self.recorder.append([self._event(p) for p in payloads])

    def decide(self, course: str) -> int | None:
        facts = [
            (e.position, json.loads(e.event.data))
            for e in self.recorder.read(self._context(course))
        ]
        return facts[-1][0] if facts else None

    def append_if(self, course: str, item: Payload, version: int | None) -> bool:
        try:
            self.recorder.append(
                [self._event(item)], self.DCBAppendCondition(self._context(course), after=version)
            )
        except self.IntegrityError:
            return False
        return True

    def read(self, limit: int) -> int:
        return len([json.loads(e.event.data) for e in self.recorder.read(limit=limit)])

    @contextlib.contextmanager
    def listen(self, deliver: Callable[[list[float]], None]) -> Iterator[object]:
        subscription = self.recorder.subscribe(after=self.recorder.read().head)

        def run() -> None:
            with contextlib.suppress(Exception):
                for event in subscription:
                    deliver([json.loads(event.event.data)["sent"]])

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield subscription
        finally:
            subscription.stop()
            thread.join(5)

    def close(self) -> None:
        if self.datastore is not None:
            self.datastore.close()


_memory: dict[str, Any] = {}


@dataclass(frozen=True)
class MemoryDcbSubject(Subject):
    def create(self) -> str:
        from eventsourcing.dcb.popo import InMemoryDCBRecorder

        key = uuid.uuid4().hex
        _memory[key] = InMemoryDCBRecorder()
        return key

    def open(self, location: str) -> Session:
        return DcbSession(_memory[location])

    def drop(self, location: str) -> None:
        _memory.pop(location, None)


class PostgresDcbSession(DcbSession):
    def __init__(self, recorder: Any, datastore: Any, url: str) -> None:
        super().__init__(recorder, datastore)
        self.url = url

    def fill(self, total: int, courses: int, prefix: str = "c") -> None:
        """Bulk, for a 1,000,000-fact store in reasonable time: the rows `append` would write
        (the event with its tag, and the tag-table row), by COPY in one transaction into the
        recorder's own tables; then the id sequence moved past them, and ANALYZE."""
        import psycopg

        main, tags = self.recorder.events_table_name, self.recorder.tags_table_name
        with psycopg.connect(self.url) as db:
            with contextlib.suppress(psycopg.Error), db.transaction():
                # skips the tag rows' foreign-key checks for this fill (needs a superuser, as
                # the run's own cluster has; elsewhere they are checked, only slower)
                db.execute("SET session_replication_role = replica")
            head = db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {main}").fetchone()[0]  # type: ignore[index]
            with db.cursor().copy(f"COPY {main} (id, type, data, tags) FROM STDIN") as copy:
                for i in range(total):
                    item = fill_payload(i, courses, prefix)
                    copy.write_row(
                        (head + 1 + i, ENROLLED, encode(item), [f"course:{item['course']}"])
                    )
            with db.cursor().copy(f"COPY {tags} (tag, main_id) FROM STDIN") as copy:
                for i in range(total):
                    copy.write_row((f"course:{prefix}{i % courses}", head + 1 + i))
            db.execute(
                f"SELECT setval(pg_get_serial_sequence('{main}', 'id'), %s)", (head + total,)
            )
            db.commit()
            db.autocommit = True
            db.execute(f"ANALYZE {main}")
            db.execute(f"ANALYZE {tags}")


@dataclass(frozen=True)
class PostgresDcbSubject(Subject):
    def create(self) -> str:
        from eventsourcing.dcb.postgres_tt import PostgresDCBRecorderTT
        from eventsourcing.postgres import PostgresDatastore

        url = env().pg_create()
        datastore = PostgresDatastore(**pg_params(url))
        PostgresDCBRecorderTT(datastore).create_table()
        datastore.close()
        return url

    def open(self, location: str) -> Session:
        from eventsourcing.dcb.postgres_tt import PostgresDCBRecorderTT
        from eventsourcing.postgres import PostgresDatastore

        datastore = PostgresDatastore(**pg_params(location), pool_size=2)
        return PostgresDcbSession(PostgresDCBRecorderTT(datastore), datastore, location)

    def drop(self, location: str) -> None:
        env().pg_drop(location)


# -- the subjects ------------------------------------------------------------------------------


def _available(notes: list[str]) -> bool:
    try:
        import eventsourcing  # noqa: F401
    except ImportError:
        notes.append(
            "eventsourcing is not installed (pip install -r bench/requirements.txt): its rows are missing"
        )
        return False
    return True


def _sqlite_default_synchronous() -> str:
    """What an SQLite connection that sets nothing uses on a WAL file (eventsourcing sets nothing)."""
    path = env().new_path("probe")
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    level = db.execute("PRAGMA synchronous").fetchone()[0]
    db.close()
    drop_sqlite_files(str(path))
    return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(level, str(level))


def memory_subjects(notes: list[str]) -> list[Subject]:
    if not _available(notes):
        return []
    return [
        MemoryDcbSubject(
            "eventsourcing InMemoryDCBRecorder",
            "Memory",
            "peer",
            frozenset({"s1", "s2", "s3", "s4"}),
            "none (process memory)",
        )
    ]


def sqlite_subjects(notes: list[str]) -> list[Subject]:
    if not _available(notes):
        return []
    return [
        SqliteAggregateSubject(
            "eventsourcing SQLiteApplicationRecorder",
            "SQLite",
            "peer",
            frozenset({"s1", "s2", "s3", "s4", "s6", "s7"}),
            f"SQLite WAL, synchronous={_sqlite_default_synchronous()} (SQLite's default; "
            "eventsourcing sets none)",
        )
    ]


def postgres_subjects(notes: list[str]) -> list[Subject]:
    if not _available(notes):
        return []
    durability = env().pg_durability()
    return [
        PostgresAggregateSubject(
            "eventsourcing PostgresApplicationRecorder",
            "Server",
            "peer",
            frozenset({"s1", "s2", "s3", "s4", "s6", "s7"}),
            durability,
        ),
        PostgresDcbSubject(
            "eventsourcing PostgresDCBRecorderTT",
            "Server",
            "peer",
            frozenset({"s1", "s2", "s3", "s4", "s5", "s5x", "s7"}),
            durability,
        ),
    ]
