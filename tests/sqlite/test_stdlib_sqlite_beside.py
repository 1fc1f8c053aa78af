"""Python's own ``sqlite3`` module on the store's file, in the same process (SPEC §7).

Two copies of SQLite live in such a process: the one inside factstr's extension and the one of
``_sqlite3``. Before factstr took its file locks on a private open file description, closing the
stdlib connection dropped the store's POSIX locks (they belong to the process), and the stdlib
copy, seeing no other user, checkpointed and deleted the WAL under the store: acknowledged
batches vanished and sequence numbers were handed out twice. Each test runs the store and the
stdlib module together in ``stdlib_neighbour.py``, kills that process with SIGKILL, and checks
the file: every acknowledged batch present with its own events, numbering gapless and unique,
``integrity_check`` ok.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import factstr
import pytest
from factstr import NewEvent

from tests.processes import Child, Spawn

NEIGHBOUR = Path(__file__).with_name("stdlib_neighbour.py")


def read_until(child: Child, marker: str) -> list[list[Any]]:
    """The acknowledgements a neighbour printed before ``marker``."""
    acks: list[list[Any]] = []
    while True:
        line = child.read()
        if line == marker:
            return acks
        assert isinstance(line, list) and line[0] == "ack", line
        acks.append(line)


def assert_intact(db: Path, acks: list[list[Any]], others: Sequence[list[int]] = ()) -> None:
    """Every acknowledged batch is in the file with its own events; numbering is gapless."""
    with factstr.SqliteStore(db) as store:
        records = store.query().event_records
    numbers = [r.sequence_number for r in records]
    assert numbers == list(range(1, len(numbers) + 1)), "gaps or duplicates in the numbering"
    by_number = {r.sequence_number: r for r in records}
    for _, first, last, tag in acks:
        for n in range(first, last + 1):
            assert n in by_number, f"acknowledged batch {first}..{last} ({tag}) lost"
            assert by_number[n].payload["tag"] == tag, f"sequence number {n} given twice"
    for first, last, _ in others:
        for n in range(first, last + 1):
            assert n in by_number and by_number[n].event_type in ("a", "b", "Appended")
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("pragma integrity_check").fetchone() == ("ok",)
    finally:
        connection.close()


def test_a_stdlib_look_loses_nothing(db: Path, spawn: Spawn) -> None:
    neighbour = spawn("look", db, script=NEIGHBOUR)
    acks = read_until(neighbour, "ready")
    assert [a[1] for a in acks] == [1, 2, 3, 4, 5, 6]
    # Another process sees all six, and appends after them.
    other = spawn("live", db, "1")
    other.expect("ready")
    other.send()
    other.expect([[7, 7, 1]])
    other.finish()
    neighbour.send()
    acks += read_until(neighbour, "done")
    assert acks[-1][1] == 8
    neighbour.sigkill()
    assert_intact(db, acks, [[7, 7, 1]])


def test_a_stdlib_write_transaction_waits_for_the_store_and_the_store_for_it(
    db: Path, spawn: Spawn
) -> None:
    neighbour = spawn("immediate", db, script=NEIGHBOUR)
    acks = read_until(neighbour, "done")
    neighbour.sigkill()
    assert len(acks) == 5
    assert_intact(db, acks)
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("select count(*) from neighbour_side").fetchone() == (1,)
    finally:
        connection.close()


def test_stdlib_connections_opening_writing_and_closing_beside_appends_lose_nothing(
    db: Path, spawn: Spawn
) -> None:
    factstr.SqliteStore(db).close()
    neighbour = spawn("random", db, "3", script=NEIGHBOUR)
    other = spawn("append", db, 7, 150, "other")
    other.expect("ready")
    other.send()
    acks = read_until(neighbour, "done")
    results = other.read()
    other.finish()
    neighbour.sigkill()
    assert len(acks) > 20
    assert_intact(db, acks, results)


def posix_locks_of_this_process(db: Path) -> list[str]:
    """The POSIX record locks this process holds on ``db`` (Python's ``sqlite3`` takes those;
    factstr's own are open-file-description locks), from ``/proc/locks``."""
    inode = db.stat().st_ino
    return [
        line
        for line in Path("/proc/locks").read_text().splitlines()
        if " POSIX " in line
        and f" {os.getpid()} " in line
        and line.split()[5].endswith(f":{inode}")
    ]


@pytest.mark.skipif(sys.platform != "linux", reason="open-file-description locks are Linux only")
def test_closing_the_store_keeps_the_stdlib_connections_locks_and_leaks_no_descriptor(
    db: Path,
) -> None:
    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    factstr.SqliteStore(db).close()
    before = descriptors()
    connection = sqlite3.connect(db)
    connection.execute("select count(*) from events").fetchone()
    held = posix_locks_of_this_process(db)
    assert held, "the stdlib connection holds a shared lock on the database file"
    for _ in range(20):
        with factstr.SqliteStore(db) as store:
            store.append([NewEvent("a", {})])
        # Closing our descriptors would have released the stdlib connection's POSIX locks.
        assert posix_locks_of_this_process(db) == held
    assert connection.execute("select count(*) from events").fetchone() == (20,)
    connection.close()
    factstr.SqliteStore(db).close()
    assert descriptors() == before
