"""Fixtures of the multi-process tests shared by the SQL stores: ``backend`` runs every test
once on SQLite and once on PostgreSQL (the PostgreSQL run skips, or fails under
``FACTSTR_REQUIRE_POSTGRES=1``, while the build has no ``PostgresStore``, as in
``tests/postgres/``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.postgres_server import PostgresServer, require_postgres_store
from tests.shared_backends.backends import SQL_BACKENDS, Backend


@pytest.fixture(params=SQL_BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The current SQL store on a fresh database of this test's own (dropped at teardown)."""
    name: str = request.param
    if name == "sqlite":
        return Backend(name, str(tmp_path / "events.db"))
    require_postgres_store()
    url: str = request.getfixturevalue("postgres_url")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return Backend(name, url, server)
