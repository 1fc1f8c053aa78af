"""The hand-written floor for the Memory store: a Python list of (sequence, time, type, payload)
tuples under a lock, with a dict from course to that course's sequence numbers for decisions.
No validation, no matching engine, no streams: the least a Python program can do."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from bench.subject import ENROLLED, Payload, Session, Subject

Row = tuple[int, float, str, Payload]


class ListLog:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.by_course: dict[str, list[int]] = {}
        self.cursors: dict[str, int] = {}
        self.lock = threading.Lock()

    def _append(self, payloads: Sequence[Payload]) -> None:
        stamp = time.time()
        first = len(self.rows) + 1
        for offset, item in enumerate(payloads):
            self.rows.append((first + offset, stamp, ENROLLED, dict(item)))
            course = item.get("course")
            if isinstance(course, str):
                self.by_course.setdefault(course, []).append(first + offset)


class ListSession(Session):
    def __init__(self, log: ListLog) -> None:
        self.log = log

    def append_batch(self, payloads: Sequence[Payload]) -> None:
        with self.log.lock:
            self.log._append(payloads)

    def decide(self, course: str) -> int | None:
        with self.log.lock:
            numbers = list(self.log.by_course.get(course, ()))
            facts = [self.log.rows[n - 1] for n in numbers]
        return facts[-1][0] if facts else None

    def append_if(self, course: str, item: Payload, version: int | None) -> bool:
        with self.log.lock:
            numbers = self.log.by_course.get(course)
            if (numbers[-1] if numbers else None) != version:
                return False
            self.log._append([item])
        return True

    def read(self, limit: int) -> int:
        with self.log.lock:
            rows = self.log.rows[:limit]
        return sum(1 for r in rows if r[3] is not None)

    def replay(self, name: str) -> int:
        handled = 0
        position = self.log.cursors.get(name, 0)
        while True:
            with self.log.lock:
                page = self.log.rows[position : position + 1000]
            if not page:
                return handled
            handled += len(page)
            position = page[-1][0]
            self.log.cursors[name] = position


_logs: dict[str, ListLog] = {}


@dataclass(frozen=True)
class ListSubject(Subject):
    def create(self) -> str:
        key = uuid.uuid4().hex
        _logs[key] = ListLog()
        return key

    def open(self, location: str) -> Session:
        return ListSession(_logs[location])

    def drop(self, location: str) -> None:
        _logs.pop(location, None)


def subject() -> Subject:
    return ListSubject(
        "floor: python list + lock",
        "Memory",
        "floor",
        frozenset({"s1", "s2", "s3", "s4", "s6"}),
        "none (process memory)",
    )
