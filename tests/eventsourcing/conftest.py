"""Gives eventsourcing's own test cases (``unittest.TestCase`` classes) a factstr store URL.

A test class here names its store kind in ``store_kind``; before each test this fixture sets
``factstr_url`` on the instance: ``memory://``, a SQLite file in the test's temporary directory,
or a fresh PostgreSQL database of its own (the session's throwaway server, dropped afterwards).
"""

from __future__ import annotations

from pathlib import Path

# Fails (never skips) when the eventsourcing extra is missing: CI installs it (requirements-dev.txt).
import eventsourcing  # noqa: F401
import pytest


@pytest.fixture(autouse=True)
def _factstr_url(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    instance = request.instance
    kind = getattr(instance, "store_kind", None)
    if instance is None or kind is None:
        return
    if kind == "memory":
        url = "memory://"
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    instance.factstr_url = url
