"""factstr itself: MemoryStore, SqliteStore (synchronous=FULL, the default) and PostgresStore."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import factstr
from factstr import ConditionalAppendConflict, EventFilter, EventQuery, NewEvent

from bench.servers import env
from bench.subject import ALL_CAPABILITIES, ENROLLED, Payload, Session, Subject, fill_payload


def context(course: str) -> EventQuery:
    return EventQuery([EventFilter([ENROLLED], [{"course": course}])])


class FactstrSession(Session):
    def __init__(self, store: factstr.EventStore, owned: bool = True) -> None:
        self.store = store
        self.owned = owned

    def append_batch(self, payloads: Sequence[Payload]) -> None:
        self.store.append([NewEvent(ENROLLED, p) for p in payloads])

    def fill(self, total: int, courses: int, prefix: str = "c") -> None:
        """Through the engine's bulk path (the one `factstr import` uses: export lines, one
        transaction per 20,000 facts), batches of 1,000 as the default fill writes. Stores
        without it (memory) or not empty append batches instead."""
        restorer = getattr(self.store, "_restorer", None)
        head = self.store.query(EventQuery.all(), limit=1).current_context_version
        if restorer is None or head is not None:
            super().fill(total, courses, prefix)
            return
        bulk = restorer(20_000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        for start in range(0, total, 20_000):
            lines = [
                json.dumps(
                    {
                        "sequence_number": i + 1,
                        "occurred_at": stamp,
                        "event_type": ENROLLED,
                        "payload": fill_payload(i, courses, prefix),
                        "batch_last_sequence_number": min(total, (i // 1000 + 1) * 1000),
                    },
                    separators=(",", ":"),
                )
                + "\n"
                for i in range(start, min(total, start + 20_000))
            ]
            bulk.feed("".join(lines).encode())
        facts = bulk.finish()[0]
        if facts != total:
            raise AssertionError(f"the bulk fill wrote {facts} facts, expected {total}")

    def decide(self, course: str) -> int | None:
        result = self.store.query(context(course))
        for record in result.event_records:
            _ = record.payload  # materialised like every other subject's
        return result.current_context_version

    def append_if(self, course: str, item: Payload, version: int | None) -> bool:
        try:
            self.store.append_if([NewEvent(ENROLLED, item)], context(course), version)
        except ConditionalAppendConflict:
            return False
        return True

    def read(self, limit: int) -> int:
        records = self.store.query(EventQuery.all(), limit=limit).event_records
        return sum(1 for r in records if r.payload is not None)

    def replay(self, name: str) -> int:
        handled = 0

        def handler(batch: list[factstr.EventRecord]) -> None:
            nonlocal handled
            handled += len(batch)

        with self.store.stream_all_durable(name, handler):  # returns after the replay
            pass
        return handled

    def listen(
        self, deliver: Callable[[list[float]], None]
    ) -> contextlib.AbstractContextManager[object]:
        def handler(batch: list[factstr.EventRecord]) -> None:
            deliver([r.payload["sent"] for r in batch])

        return self.store.stream_all(handler)

    def close(self) -> None:
        if self.owned:
            self.store.close()


# Memory stores live in this process only: a location is a key into this table.
_memory: dict[str, factstr.MemoryStore] = {}


@dataclass(frozen=True)
class MemorySubject(Subject):
    def create(self) -> str:
        key = uuid.uuid4().hex
        _memory[key] = factstr.MemoryStore()
        return key

    def open(self, location: str) -> Session:
        return FactstrSession(_memory[location], owned=False)

    def drop(self, location: str) -> None:
        store = _memory.pop(location, None)
        if store is not None:
            store.close()


@dataclass(frozen=True)
class SqliteSubject(Subject):
    def create(self) -> str:
        return str(env().new_path("factstr-sqlite"))

    def open(self, location: str) -> Session:
        return FactstrSession(factstr.SqliteStore(location))

    def drop(self, location: str) -> None:
        drop_sqlite_files(location)


def drop_sqlite_files(location: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(location + suffix).unlink(missing_ok=True)
    shutil.rmtree(location + "-factstr-locks", ignore_errors=True)


@dataclass(frozen=True)
class PostgresSubject(Subject):
    def create(self) -> str:
        return env().pg_create()

    def open(self, location: str) -> Session:
        return FactstrSession(factstr.PostgresStore(location))

    def drop(self, location: str) -> None:
        env().pg_drop(location)


def memory() -> Subject:
    return MemorySubject(
        "factstr MemoryStore",
        "Memory",
        "factstr",
        ALL_CAPABILITIES - {"s5x", "s7"},
        "none (process memory)",
    )


def sqlite() -> Subject:
    return SqliteSubject(
        "factstr SqliteStore",
        "SQLite",
        "factstr",
        ALL_CAPABILITIES,
        "SQLite WAL, synchronous=FULL (fsync at every commit)",
    )


def postgres() -> Subject:
    return PostgresSubject(
        "factstr PostgresStore",
        "Server",
        "factstr",
        ALL_CAPABILITIES | {"s9"},
        env().pg_durability(),
    )
