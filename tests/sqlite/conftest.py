"""Fixtures of the SQLite tests: a database path and a spawner of child processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeAlias

import pytest

from tests.sqlite.procs import Child

#: What the ``spawn`` fixture returns: starts ``child.py`` with these arguments.
Spawn: TypeAlias = Callable[..., Child]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where the test's database file lives (not created yet)."""
    return tmp_path / "events.db"


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Starts child processes; every one still running at teardown is killed."""
    started: list[Child] = []

    def start(*args: str | Path, cwd: Path | None = None) -> Child:
        child = Child([str(a) for a in args], cwd=cwd)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()
