"""SPEC §11: connect(url) and the store constructors (not parametrised by store kind)."""

from __future__ import annotations

from pathlib import Path

import pytest

import factstr
from tests.support import ev, seqs_of


def test_connect_memory_gives_a_new_store_each_time() -> None:
    first = factstr.connect("memory://")
    second = factstr.connect("memory://")
    try:
        assert isinstance(first, factstr.MemoryStore)
        first.append([ev("a")])
        assert second.query().event_records == []
    finally:
        first.close()
        second.close()


def test_connect_sqlite_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "abs.db"
    store = factstr.connect(f"sqlite:///{path}")  # sqlite:////tmp/... : four slashes
    try:
        assert isinstance(store, factstr.SqliteStore)
        store.append([ev("a")])
    finally:
        store.close()
    assert path.exists()
    again = factstr.SqliteStore(path)
    try:
        assert seqs_of(again.query().event_records) == [1]
    finally:
        again.close()


def test_connect_sqlite_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = factstr.connect("sqlite:///relative.db")
    try:
        store.append([ev("a")])
    finally:
        store.close()
    assert (tmp_path / "relative.db").exists()


def test_sqlite_store_accepts_str_and_path(tmp_path: Path) -> None:
    a = factstr.SqliteStore(str(tmp_path / "events.db"))
    b = factstr.SqliteStore(tmp_path / "events.db")
    try:
        a.append([ev("a")])
        assert seqs_of(b.query().event_records) == [1]
        assert b.append([ev("b")]).first_sequence_number == 2
        assert seqs_of(a.query().event_records) == [1, 2]
    finally:
        a.close()
        b.close()


def test_sqlite_data_survives_reopening(tmp_path: Path) -> None:
    with factstr.SqliteStore(tmp_path / "events.db") as store:
        store.append([factstr.NewEvent("a", {"x": [1, 2.5, None]})])
        store.append([ev("b"), ev("c")])
    with factstr.SqliteStore(tmp_path / "events.db") as store:
        records = store.query().event_records
        assert [(r.sequence_number, r.event_type) for r in records] == [(1, "a"), (2, "b"), (3, "c")]
        assert records[0].payload == {"x": [1, 2.5, None]}
        assert records[1].occurred_at == records[2].occurred_at
        assert store.append([ev("d")]).first_sequence_number == 4


@pytest.mark.parametrize("url", ["nosuch://x", "not a url", "", "memory:/"])
def test_connect_rejects_unknown_urls(url: str) -> None:
    with pytest.raises((ValueError, factstr.FactstrError)):
        factstr.connect(url)


def test_sqlite_on_a_file_that_is_not_a_database_raises_backend_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(factstr.BackendError):
        store = factstr.SqliteStore(path)
        store.query()
    assert path.read_bytes() == bytes(range(256)) * 20  # left untouched


def test_sqlite_on_a_directory_raises_backend_error(tmp_path: Path) -> None:
    with pytest.raises(factstr.BackendError):
        store = factstr.SqliteStore(tmp_path)
        store.query()
