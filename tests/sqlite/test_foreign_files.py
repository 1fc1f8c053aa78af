"""Opening refuses files that are not factstr databases, clearly, and leaves them untouched."""

from __future__ import annotations

import random
import sqlite3
import string
from pathlib import Path

import factstr
import pytest


def _sqlite_file(path: Path, script: str) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.executescript(script)
        connection.commit()
    finally:
        connection.close()


def _refused(path: Path, message: str) -> None:
    """Opening ``path`` fails with a BackendError naming the file and ``message``, and neither
    the file nor its folder is changed."""
    before = path.read_bytes()
    folder_before = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(factstr.BackendError) as caught:
        factstr.SqliteStore(path)
    text = str(caught.value)
    assert str(path) in text
    assert message in text, text
    with pytest.raises(factstr.BackendError):
        factstr.connect(f"sqlite:///{path}")
    after = path.read_bytes()
    changes: list[str] = []
    if after != before:
        at = next(
            (i for i, (x, y) in enumerate(zip(before, after, strict=False)) if x != y),
            min(len(before), len(after)),
        )
        changes.append(
            f"file bytes changed (first at offset {at}: {before[at : at + 2]!r} -> {after[at : at + 2]!r})"
        )
    folder_after = sorted(p.name for p in path.parent.iterdir())
    if folder_after != folder_before:
        changes.append(f"folder changed: {folder_before} -> {folder_after}")
    assert not changes, "; ".join(changes)


def test_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    rng = random.Random(7)
    path.write_text("".join(rng.choice(string.printable) for _ in range(5000)))
    _refused(path, "is not a SQLite database")


def test_random_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blob.db"
    path.write_bytes(random.Random(11).randbytes(8192))
    _refused(path, "is not a SQLite database")


def test_sqlite_database_with_unrelated_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    _sqlite_file(
        path,
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        INSERT INTO customers (name) VALUES ('ada'), ('grace');
        """,
    )
    _refused(path, "not a factstr store")
    connection = sqlite3.connect(path)
    try:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        assert tables == ["customers"]
    finally:
        connection.close()


def test_events_table_with_other_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other-events.db"
    _sqlite_file(
        path,
        """
        CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, body BLOB);
        INSERT INTO events (kind, body) VALUES ('x', x'00ff');
        """,
    )
    _refused(path, "not a factstr store")
    with pytest.raises(factstr.BackendError, match="events"):
        factstr.SqliteStore(path)
