"""UmaDB (the `umadb` wheel: a Rust DCB event store server and its Python client). Each store is
a server of its own, started by the run on 127.0.0.1 and a free port, in a temporary folder, and
stopped when the store is dropped or the run ends. The course becomes a tag; a decision's
context is a query of type and tag; the conditional append is `AppendCondition(query, after)`."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bench.servers import env
from bench.subject import ENROLLED, Payload, Session, Subject, fill_payload


class UmaSession(Session):
    def __init__(self, url: str) -> None:
        import umadb

        self.umadb = umadb
        self.url = url
        self.client = umadb.Client(url)

    def _event(self, item: Payload) -> Any:
        course = item.get("course")
        data = json.dumps(item, separators=(",", ":")).encode()
        return self.umadb.Event(ENROLLED, data, tags=[f"course:{course}"] if course else None)

    def _context(self, course: str) -> Any:
        return self.umadb.Query([self.umadb.QueryItem(types=[ENROLLED], tags=[f"course:{course}"])])

    def append_batch(self, payloads: Sequence[Payload]) -> None:
        self.client.append([self._event(p) for p in payloads])

    def fill(self, total: int, courses: int, prefix: str = "c") -> None:
        """Appends of 10,000 events (fewer round trips than the default 1,000)."""
        for start in range(0, total, 10_000):
            self.client.append(
                [
                    self._event(fill_payload(i, courses, prefix))
                    for i in range(start, min(total, start + 10_000))
                ]
            )

    def decide(self, course: str) -> int | None:
        facts = [
            (e.position, json.loads(e.event.data)) for e in self.client.read(self._context(course))
        ]
        return facts[-1][0] if facts else None

    def append_if(self, course: str, item: Payload, version: int | None) -> bool:
        try:
            self.client.append(
                [self._event(item)],
                self.umadb.AppendCondition(self._context(course), after=version),
            )
        except self.umadb.IntegrityError:
            return False
        return True

    def read(self, limit: int) -> int:
        return len([json.loads(e.event.data) for e in self.client.read(limit=limit)])

    def replay(self, name: str) -> int:
        """Reads the whole log, decoded. No cursor is stored: UmaDB records a tracking position
        only together with an append."""
        return len([json.loads(e.event.data) for e in self.client.read()])

    @contextlib.contextmanager
    def listen(self, deliver: Callable[[list[float]], None]) -> Iterator[object]:
        client = self.umadb.Client(self.url)
        subscription = client.subscribe(after=client.head())

        def run() -> None:
            with contextlib.suppress(Exception):
                while True:
                    batch = subscription.next_batch()
                    if batch:
                        deliver([json.loads(e.event.data)["sent"] for e in batch])

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield subscription
        finally:
            subscription.cancel()
            thread.join(5)
            client.close()

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True)
class UmaSubject(Subject):
    def create(self) -> str:
        return env().uma_create()

    def open(self, location: str) -> Session:
        return UmaSession(location)

    def drop(self, location: str) -> None:
        env().uma_drop(location)


def subjects(notes: list[str]) -> list[Subject]:
    try:
        import umadb  # noqa: F401
    except ImportError:
        notes.append(
            "umadb is not installed (pip install -r bench/requirements.txt): its rows are missing"
        )
        return []
    # The server says at start-up how it writes; start one to read it for the durability column.
    probe = env().uma_create()
    line = env().uma_sync_line
    env().uma_drop(probe)
    said = line.split("UmaDB ", 1)[-1] if line else "not reported"
    return [
        UmaSubject(
            "UmaDB (gRPC server)",
            "Server",
            "peer",
            frozenset({"s1", "s2", "s3", "s4", "s5", "s5x", "s6", "s7"}),
            f"UmaDB server defaults; its log says: '{said}'",
        )
    ]
