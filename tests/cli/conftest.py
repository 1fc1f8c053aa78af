"""Running the ``factstr`` command as a real process, on a SQLite file or a PostgreSQL database.

``cli(*args, stdin=b"")`` runs ``python -m factstr ARGS`` (the interpreter of this test run, so
the package under test) and returns the finished process; ``store_url`` is a URL of each kind,
with URL options (SPEC §11) so that they are exercised too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeAlias

import pytest

from tests.parity.conftest import parity_binary, start_upstream  # noqa: F401  (the upstream view)
from tests.postgres_server import PostgresServer

Cli: TypeAlias = Callable[..., "subprocess.CompletedProcess[bytes]"]

#: How long one command may take before the test fails.
DEADLINE = 120.0


def cli_env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    return env


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "factstr", *args],
        input=stdin,
        capture_output=True,
        timeout=DEADLINE,
        env=cli_env(),
        check=False,
    )


@pytest.fixture
def cli() -> Cli:
    return run_cli


@pytest.fixture
def make_pg_url(postgres_server: PostgresServer) -> Iterator[Callable[[], str]]:
    """New empty PostgreSQL databases (dropped at teardown), as URLs with store options."""
    if not postgres_server.running:
        postgres_server.start()
    names: list[str] = []

    def make() -> str:
        names.append(postgres_server.create_database("cli"))
        return postgres_server.url_for(names[-1]) + "?pool_size=2&connect_timeout=5"

    yield make
    for name in names:
        postgres_server.drop_database(name)


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:////absolute/path.db?...`` URL."""
    return Path("/" + url.split("?")[0].removeprefix("sqlite://").lstrip("/"))


@pytest.fixture
def make_sqlite_url(tmp_path: Path) -> Callable[[], str]:
    counter = iter(range(1_000_000))

    def make() -> str:
        return f"sqlite:///{tmp_path}/s{next(counter)}.db?busy_timeout=5"

    return make


@pytest.fixture(params=["sqlite", "postgres"])
def make_url(request: pytest.FixtureRequest) -> Callable[[], str]:
    """New empty stores of each kind, as URLs."""
    fixture = "make_sqlite_url" if request.param == "sqlite" else "make_pg_url"
    factory: Callable[[], str] = request.getfixturevalue(fixture)
    return factory
