"""Fixtures of the SQLite tests: a database path and a spawner of child processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import Spawn, spawner


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where the test's database file lives (not created yet)."""
    return tmp_path / "events.db"


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Starts child processes; every one still running at teardown is killed."""
    with spawner() as start:
        yield start
