"""Fixtures of the multi-process tests (every test that runs a second process lives in this
directory): ``backend`` runs a test once on SQLite and once on PostgreSQL; ``db`` is a SQLite
file path for the SQLite-only ones. The contract's cross-process tests (``test_cross_process.py``)
take ``store`` and ``open_code`` from ``tests/conftest.py`` instead, on every store kind that
another process can open."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.postgres_server import PostgresServer
from tests.shared_backends.backends import SQL_BACKENDS, Backend


@pytest.fixture(params=SQL_BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The current SQL store on a fresh database of this test's own (dropped at teardown)."""
    name: str = request.param
    if name == "sqlite":
        return Backend(name, str(tmp_path / "events.db"))
    url: str = request.getfixturevalue("postgres_url")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return Backend(name, url, server)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where a SQLite-only test's database file lives (not created yet)."""
    return tmp_path / "events.db"
