"""Fixtures of the SQLite tests: a database path (``spawn`` comes from ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where the test's database file lives (not created yet)."""
    return tmp_path / "events.db"
