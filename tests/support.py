"""Helpers shared by the contract tests: waiting with a deadline, collecting deliveries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import factstr
import pytest

#: The store kinds every contract test runs against (``store_kind`` in ``tests/conftest.py``,
#: which also says how to add one).
STORE_KINDS: list[str] = ["memory", "sqlite", "postgres"]

#: Store kinds where every store object is its own world: a second object cannot see the first
#: one's data, so tests about several store objects sharing one backend are skipped there.
UNSHARED_KINDS: frozenset[str] = frozenset({"memory"})

#: The store kinds whose database other store objects and processes share: the multi-process,
#: crash and torture tests run on each of these.
SHARED_KINDS: list[str] = [kind for kind in STORE_KINDS if kind not in UNSHARED_KINDS]

#: The common base class of every store (MemoryStore, SqliteStore, PostgresStore).
Store: TypeAlias = factstr.EventStore

#: What the ``make_store`` fixture returns: opens another store object on the same backend.
StoreFactory: TypeAlias = Callable[[], Store]

#: How long any wait for an asynchronous delivery may take before the test fails.
DEADLINE = 5.0


def wait_for(
    condition: Callable[[], bool], timeout: float = DEADLINE, what: str = "condition"
) -> None:
    """Polls ``condition`` until it holds; fails the test when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def ev(event_type: str, payload: Any = None) -> factstr.NewEvent:
    """A NewEvent with an empty object payload unless one is given."""
    return factstr.NewEvent(event_type, {} if payload is None else payload)


def events(event_type: str, count: int) -> list[factstr.NewEvent]:
    """``count`` events of one type whose payloads number them ``{"i": 0}``, ``{"i": 1}``, ..."""
    return [factstr.NewEvent(event_type, {"i": i}) for i in range(count)]


class Collector:
    """A thread-safe stream handler that records every delivered batch."""

    def __init__(self, fail_on: Callable[[list[factstr.EventRecord]], bool] | None = None) -> None:
        self._lock = threading.Lock()
        self._batches: list[list[factstr.EventRecord]] = []
        self._fail_on = fail_on
        self.calls = 0

    def __call__(self, batch: list[factstr.EventRecord]) -> None:
        with self._lock:
            self.calls += 1
            if self._fail_on is not None and self._fail_on(batch):
                raise RuntimeError(f"handler refuses batch starting at {batch[0].sequence_number}")
            self._batches.append(list(batch))

    @property
    def batches(self) -> list[list[factstr.EventRecord]]:
        with self._lock:
            return [list(b) for b in self._batches]

    @property
    def records(self) -> list[factstr.EventRecord]:
        return [r for b in self.batches for r in b]

    @property
    def seqs(self) -> list[int]:
        return [r.sequence_number for r in self.records]

    def batch_seqs(self) -> list[list[int]]:
        return [[r.sequence_number for r in b] for b in self.batches]

    def wait_records(self, n: int, timeout: float = DEADLINE) -> list[factstr.EventRecord]:
        """Waits until at least ``n`` records have arrived and returns all records."""
        wait_for(
            lambda: len(self.records) >= n,
            timeout,
            f"{n} delivered records (have {len(self.records)})",
        )
        return self.records

    def wait_batches(self, n: int, timeout: float = DEADLINE) -> list[list[factstr.EventRecord]]:
        wait_for(
            lambda: len(self.batches) >= n,
            timeout,
            f"{n} delivered batches (have {len(self.batches)})",
        )
        return self.batches


def seqs_of(records: Sequence[factstr.EventRecord]) -> list[int]:
    return [r.sequence_number for r in records]


def cursor_of(store: Store, name: str) -> int | None:
    """The stored cursor of a durable name, or None when the name is unknown."""
    for info in store.durable_streams():
        if info.name == name:
            return info.last_processed_sequence_number
    return None


def replay_shapes(
    store: Store, name: str, query: factstr.EventQuery | None = None
) -> list[list[int]]:
    """The batch shapes a durable subscription ``name`` replays (acknowledging all of them);
    the replay counts as finished once no batch comes for 0.3 s."""
    shapes: list[list[int]] = []
    with store.subscribe(query, durable=name) as sub:
        while (batch := sub.next_batch(timeout=0.3)) is not None:
            shapes.append(seqs_of(batch))
    return shapes


def assert_name_held(store: Store, name: str, *, subscribe: bool = False) -> None:
    """Registering the durable ``name`` (``stream_all_durable``; also ``subscribe`` when
    ``subscribe`` is true), resetting it and deleting it all raise ``DurableStreamActive``."""
    with pytest.raises(factstr.DurableStreamActive):
        store.stream_all_durable(name, Collector())
    if subscribe:
        with pytest.raises(factstr.DurableStreamActive):
            store.subscribe(durable=name)
    with pytest.raises(factstr.DurableStreamActive):
        store.reset_durable_stream(name)
    with pytest.raises(factstr.DurableStreamActive):
        store.delete_durable_stream(name)


def wait_cursor(store: Store, name: str, expected: int) -> None:
    wait_for(
        lambda: cursor_of(store, name) == expected,
        what=f"cursor of {name!r} at {expected} (is {cursor_of(store, name)})",
    )


def run_in_thread(
    target: Callable[[], object],
) -> tuple[threading.Thread, list[BaseException], list[object]]:
    """Starts ``target`` in a daemon thread; returns the thread, its raised errors, its result."""
    errors: list[BaseException] = []
    results: list[object] = []

    def run() -> None:
        try:
            results.append(target())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors, results


def assert_one_key_held_once(
    outcomes: Sequence[tuple[object, BaseException | None]], pairs: Sequence[tuple[int, int]]
) -> None:
    """For each (holds, conflicts) pair of calls sharing one idempotency key in one group: the
    one that holds wrote its batch, and the other got that batch's result or its own conflict."""
    for holds, conflicts in pairs:
        written, error = outcomes[holds]
        assert error is None and isinstance(written, factstr.AppendResult), outcomes
        other, other_error = outcomes[conflicts]
        assert other == written or (
            other is None and isinstance(other_error, factstr.ConditionalAppendConflict)
        ), outcomes
