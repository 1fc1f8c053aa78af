"""Fixtures: every contract test runs once per store kind in ``STORE_KINDS``.

To add a backend (e.g. PostgreSQL), add its name to ``STORE_KINDS``, a branch to ``_open_store``
that opens a store on one database per test (every call on the same database), and a branch to
``_open_code`` so that cross-process tests can open that database from a child process.
``support.Store`` is ``factstr.EventStore``, the base class of every store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import factstr
from tests.support import Store, StoreFactory

#: The store kinds every contract test runs against.
STORE_KINDS: list[str] = ["memory", "sqlite"]

#: Store kinds where every store object is its own world: a second object cannot see the first
#: one's data, so tests about several store objects sharing one backend are skipped there.
UNSHARED_KINDS: frozenset[str] = frozenset({"memory"})


def _open_store(kind: str, tmp_path: Path, existing: list[Store]) -> Store:
    if kind == "memory":
        # A memory store is only shared through the object itself.
        if existing and not existing[0].closed:
            return existing[0]
        return factstr.MemoryStore()
    if kind == "sqlite":
        return factstr.SqliteStore(tmp_path / "events.db")
    raise AssertionError(f"unknown store kind {kind!r}")


def _open_code(kind: str, tmp_path: Path) -> str | None:
    """Python source of an expression that opens a store on the same backend as ``_open_store``
    (with ``factstr`` imported), for tests that run a second process; None where no other process
    can share the store."""
    if kind == "sqlite":
        return f"factstr.SqliteStore({str(tmp_path / 'events.db')!r})"
    return None


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_store(store_kind: str, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of store objects on the same backend (the same database for SQL stores).

    Every store it opened is closed at teardown.
    """
    opened: list[Store] = []

    def factory() -> Store:
        new = _open_store(store_kind, tmp_path, opened)
        if not any(s is new for s in opened):
            opened.append(new)
        return new

    yield factory
    for s in reversed(opened):
        if not s.closed:
            s.close()


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    """A fresh, empty store of the current kind (closed at teardown)."""
    return make_store()


@pytest.fixture
def shared_backend(store_kind: str) -> None:
    """Skips a test that needs two distinct store objects sharing one backend."""
    if store_kind in UNSHARED_KINDS:
        pytest.skip(f"{store_kind} store objects do not share data with each other")


@pytest.fixture
def open_code(store_kind: str, tmp_path: Path) -> str:
    """Source of an expression opening the test's backend in another process (skips for memory)."""
    code = _open_code(store_kind, tmp_path)
    if code is None:
        pytest.skip(f"{store_kind} stores cannot be shared with another process")
    return code
