"""Fixtures of the PostgreSQL tests: the session's server, fresh databases.

The server comes from ``tests/conftest.py`` (``postgres_server``, a throwaway cluster built by
``tests/postgres_server.py``), and so does ``spawn``; these fixtures add what the
PostgreSQL-specific tests need. The multi-process tests shared with SQLite are in
``tests/shared_backends/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeAlias

import pytest

from tests.postgres_server import PostgresServer

#: What the ``make_database`` fixture returns: creates a database and returns its name.
MakeDatabase: TypeAlias = Callable[[], str]


@pytest.fixture
def server(postgres_server: PostgresServer) -> PostgresServer:
    """The session's server, running."""
    if not postgres_server.running:
        postgres_server.start()
    return postgres_server


@pytest.fixture
def restartable(server: PostgresServer) -> Iterator[PostgresServer]:
    """The session's server, which this test may stop and start; running again afterwards."""
    if not server.restartable:
        pytest.skip("an external server (FACTSTR_TEST_POSTGRES_URL) is not restarted by the tests")
    try:
        yield server
    finally:
        if not server.running:
            server.start()


@pytest.fixture
def url(postgres_url: str) -> str:
    """The URL of a fresh database of this test's own."""
    return postgres_url


@pytest.fixture
def make_database(server: PostgresServer) -> Iterator[MakeDatabase]:
    """Creates more databases for the test; all are dropped at teardown."""
    names: list[str] = []

    def make() -> str:
        names.append(server.create_database())
        return names[-1]

    yield make
    if not server.running:
        server.start()
    for name in names:
        server.drop_database(name)
