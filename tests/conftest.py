"""Fixtures: every contract test runs once per store kind in ``STORE_KINDS`` (``tests/support.py``,
the one list of store kinds; the multi-process tests run on its ``SHARED_KINDS``).

To add a backend, add its name to ``STORE_KINDS``, a branch to ``_open_store`` that opens a store
on one database per test (every call on the same database), and a branch to ``_open_code`` so
that cross-process tests can open that database from a child process.
``support.Store`` is ``factstr.EventStore``, the base class of every store.

PostgreSQL: the session-scoped ``postgres_server`` fixture starts a throwaway cluster (see
``tests/postgres_server.py``; ``FACTSTR_TEST_POSTGRES_URL`` points at a server to use instead)
the first time a test needs it, and fails, never skips, when PostgreSQL cannot start. Every
postgres test gets a fresh database (``postgres_url``), dropped at its end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import factstr
import pytest

from tests.postgres_server import PostgresServer, start_server
from tests.processes import Spawn, spawner
from tests.support import STORE_KINDS, UNSHARED_KINDS, Store, StoreFactory


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "postgres_outage: waits for a PostgreSQL store to give up on a server that stays down "
        "(its deadline follows the engine's reconnect window; tune it there)",
    )


def _open_store(kind: str, location: str, existing: list[Store]) -> Store:
    """A store of ``kind`` on ``location`` (a directory for SQLite, a database URL for PostgreSQL)."""
    if kind == "memory":
        # A memory store is only shared through the object itself.
        if existing and not existing[0].closed:
            return existing[0]
        return factstr.MemoryStore()
    if kind == "sqlite":
        return factstr.SqliteStore(Path(location) / "events.db")
    if kind == "postgres":
        return factstr.PostgresStore(location)
    raise AssertionError(f"unknown store kind {kind!r}")


def _open_code(kind: str, location: str) -> str | None:
    """Python source of an expression that opens a store on the same backend as ``_open_store``
    (with ``factstr`` imported), for tests that run a second process; None where no other process
    can share the store."""
    if kind == "sqlite":
        return f"factstr.SqliteStore({str(Path(location) / 'events.db')!r})"
    if kind == "postgres":
        return f"factstr.PostgresStore({location!r})"
    return None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (started on first use; raises when it cannot start)."""
    server = start_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database of its own for this test (dropped at teardown)."""
    if not postgres_server.running:  # a restart test that failed half-way
        postgres_server.start()
    name = postgres_server.create_database()
    try:
        yield postgres_server.url_for(name)
    finally:
        if not postgres_server.running:
            postgres_server.start()
        postgres_server.drop_database(name)


def _location(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return str(tmp_path)


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_store(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[StoreFactory]:
    """A factory of store objects on the same backend (the same database for SQL stores).

    Every store it opened is closed at teardown.
    """
    opened: list[Store] = []
    location = _location(store_kind, tmp_path, request)

    def factory() -> Store:
        new = _open_store(store_kind, location, opened)
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
def open_code(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Source of an expression opening the test's backend in another process (skips for memory)."""
    code = _open_code(store_kind, _location(store_kind, tmp_path, request))
    if code is None:
        pytest.skip(f"{store_kind} stores cannot be shared with another process")
    return code


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Starts ``tests/child.py`` processes; every one still running at teardown is killed."""
    with spawner() as start:
        yield start
