"""What a benchmark measures: a *subject* (factstr on one store, a hand-written floor, a peer
library) and the *session* it opens on one store. Scenarios are written once against this
interface and run for every subject that supports them.

A `Subject` is a small picklable description (so that child processes can open the same store);
`create()` makes a fresh, empty store and returns its location (a path or URL), `open(location)`
connects to it, `drop(location)` removes it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

Payload = dict[str, Any]

#: The event type of every benchmark event, and the one a decision's context selects.
ENROLLED = "StudentEnrolled"

#: Scenario capabilities a subject can declare (S5 is split: same process / across processes).
ALL_CAPABILITIES = frozenset({"s1", "s2", "s3", "s4", "s5", "s5x", "s6", "s7"})


class Unsupported(Exception):
    """This subject has no equivalent of the operation."""


def payload(i: int) -> Payload:
    """A realistic ~180-byte event payload (S1, S2)."""
    return {
        "course": f"course-{i % 1000}",
        "student": f"student-{i}",
        "amount": i % 97,
        "tags": ["enrolled", "2026"],
        "meta": {"source": "bench", "ok": True},
    }


def fill_payload(i: int, courses: int, prefix: str = "c") -> Payload:
    """Event i of a filled store: course `prefix{i % courses}`, so each course (a decision's
    context) gets total/courses facts."""
    return {"course": f"{prefix}{i % courses}", "student": f"s{i}", "amount": i % 97}


def ping() -> Payload:
    """A live-stream probe: carries its wall-clock send time."""
    return {"sent": time.time()}


class Session:
    """One connection of a subject to one store. Methods a subject cannot do raise Unsupported."""

    def append_batch(self, payloads: Sequence[Payload]) -> None:
        """Commits the payloads as one atomic batch of ENROLLED events."""
        raise Unsupported

    def append_one(self, item: Payload) -> None:
        self.append_batch([item])

    def fill(self, total: int, courses: int, prefix: str = "c") -> None:
        """Appends `total` fill_payload events, in batches of 1,000 (not timed)."""
        for start in range(0, total, 1000):
            self.append_batch(
                [fill_payload(i, courses, prefix) for i in range(start, min(total, start + 1000))]
            )

    def decide(self, course: str) -> int | None:
        """Reads a decision's context (the ENROLLED facts of `course`) into Python objects and
        returns its version (whatever the subject's conditional append expects)."""
        raise Unsupported

    def append_if(self, course: str, item: Payload, version: int | None) -> bool:
        """Appends `item` only if the context of `course` is still at `version`; False on conflict."""
        raise Unsupported

    def read(self, limit: int) -> int:
        """Reads the first `limit` events of the log into Python objects (payloads decoded)."""
        raise Unsupported

    def replay(self, name: str) -> int:
        """Replays the whole log through a durable consumer `name` (cursor kept by the store
        where the subject has one); returns how many events were handled."""
        raise Unsupported

    def listen(
        self, deliver: Callable[[list[float]], None]
    ) -> contextlib.AbstractContextManager[object]:
        """A live stream while the context is open: `deliver` gets the `sent` values of each
        delivered batch (see `ping`). Active when `__enter__` returns."""
        raise Unsupported

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Subject:
    """A description of something to measure. Subclasses implement create/open/drop."""

    name: str  # e.g. "factstr SqliteStore"
    group: str  # "Memory", "SQLite" or "Server": rows compare within a group
    role: str  # "factstr", "floor", "peer" or "rust"
    capabilities: frozenset[str]
    durability: str

    def create(self) -> str:
        """A fresh, empty store; returns its location."""
        raise NotImplementedError

    def open(self, location: str) -> Session:
        raise NotImplementedError

    def drop(self, location: str) -> None:
        """Removes a store made by create() (files, databases, servers)."""

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    @contextlib.contextmanager
    def session(self, location: str) -> Iterator[Session]:
        opened = self.open(location)
        try:
            yield opened
        finally:
            opened.close()
