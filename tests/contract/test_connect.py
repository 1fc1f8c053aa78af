"""SPEC §11: connect(url) and the store constructors (not parametrised by store kind)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import factstr
import pytest

from tests.postgres_server import PostgresServer
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
        assert [(r.sequence_number, r.event_type) for r in records] == [
            (1, "a"),
            (2, "b"),
            (3, "c"),
        ]
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


# -- URL parameters are the store's keyword options (SPEC §11) --------------------------------


def test_connect_sqlite_parameters_are_options_not_part_of_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    url = f"sqlite:///{path}?synchronous=normal&busy_timeout=2&poll_interval=0.05"
    with factstr.connect(url) as store:
        assert isinstance(store, factstr.SqliteStore)
        assert store.path == path
        store.append([ev("a")])
    # percent-encoded names and values are decoded like any URL's
    with factstr.connect(f"sqlite:///{path}?busy%5Ftimeout=2%2E5&synchronous=NORMAL") as store:
        assert seqs_of(store.query().event_records) == [1]
    assert sorted(p.name for p in tmp_path.iterdir() if "app.db" in p.name and "?" in p.name) == []
    assert path.exists()


def test_connect_sqlite_busy_timeout_parameter_is_applied(tmp_path: Path) -> None:
    """Another process holds the write lock: with ``?busy_timeout=0.2`` an append gives up
    long before the default 5 s."""
    path = tmp_path / "locked.db"
    with factstr.connect(f"sqlite:///{path}?busy_timeout=0.2") as store:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_WRITE_LOCK, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            started = time.monotonic()
            with pytest.raises(factstr.BackendError, match="locked"):
                store.append([ev("a")])
            assert time.monotonic() - started < 4.0
        finally:
            holder.communicate("", timeout=30)
        assert store.append([ev("a")]).first_sequence_number == 1


#: Takes SQLite's write lock on the file argv[1] and keeps it until stdin closes.
HOLD_WRITE_LOCK = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
c.execute("ROLLBACK")
"""


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("bogus=1", "bogus"),
        ("synchronous=normal&mode=ro", "mode"),
        ("busy_timeout=abc", "busy_timeout"),
        ("busy_timeout=1e300", "busy_timeout"),
        ("busy_timeout=inf", "busy_timeout"),
        ("busy_timeout=nan", "busy_timeout"),
        ("busy_timeout=-1", "busy_timeout"),
        ("busy_timeout=", "busy_timeout"),
        ("busy_timeout", "busy_timeout"),
        ("busy_timeout=1&busy_timeout=2", "busy_timeout"),
        ("poll_interval=0", "poll_interval"),
        ("poll_interval=1e400", "poll_interval"),
        ("synchronous=sometimes", "synchronous"),
    ],
)
def test_connect_sqlite_bad_parameters_are_value_errors_naming_them(
    tmp_path: Path, query: str, named: str
) -> None:
    with pytest.raises(ValueError) as info:
        factstr.connect(f"sqlite:///{tmp_path / 'app.db'}?{query}")
    assert named in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["sqlite:///?synchronous=normal", "sqlite:///", "sqlite://"])
def test_connect_sqlite_without_a_path_is_a_value_error(url: str) -> None:
    with pytest.raises(ValueError):
        factstr.connect(url)


@pytest.mark.parametrize("url", ["memory://?pool_size=1", "memory://?", "memory://x"])
def test_connect_memory_takes_no_parameters(url: str) -> None:
    with pytest.raises(ValueError):
        factstr.connect(url)


def test_connect_sqlite_in_a_missing_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(factstr.BackendError) as info:
        factstr.connect(f"sqlite:///{tmp_path / 'typo' / 'app.db'}?synchronous=normal")
    assert str(tmp_path / "typo") in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_connect_postgres_parameters_are_options_and_libpq_ones_stay(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    name = f"factstr_{uuid.uuid4().hex[:8]}"
    url = f"{postgres_url}?pool_size=1&application_name={name}&connect_timeout=3&sslmode=prefer&reconnect_timeout=2&statement_timeout=20"
    with factstr.connect(url) as store:
        assert isinstance(store, factstr.PostgresStore)
        store.append([ev("a")])
        # application_name reached the server; the store's options are not in its URL.
        seen = postgres_server.sql(
            f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{name}'"
        )
        assert int(seen) >= 1
        assert "pool_size" not in store.url and "connect_timeout" not in store.url
        assert "sslmode=prefer" in store.url


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("bogus=1", "bogus"),
        ("pool_size=abc", "pool_size"),
        ("pool_size=0", "pool_size"),
        ("pool_size=1.5", "pool_size"),
        ("connect_timeout=1e300", "connect_timeout"),
        ("connect_timeout=nan", "connect_timeout"),
        ("reconnect_timeout=-1", "reconnect_timeout"),
        ("reconnect_timeout=soon", "reconnect_timeout"),
        ("statement_timeout=0", "statement_timeout"),
        ("pool_size=2&pool_size=3", "pool_size"),
    ],
)
def test_connect_postgres_bad_parameters_are_value_errors_naming_them(
    postgres_url: str, query: str, named: str
) -> None:
    with pytest.raises(ValueError) as info:
        factstr.connect(f"{postgres_url}?{query}")
    assert named in str(info.value)
