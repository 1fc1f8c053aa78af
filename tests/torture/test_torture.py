"""Torture: kills mid-append, a PostgreSQL crash under live streams, Python's ``sqlite3`` beside
the store, a full disk. Each scenario counts what a user would lose (issue 10, SPEC §2, §5, §7):

- lost: an acknowledged batch that is not in the log, whole, at the numbers it was given;
- duplicated: a batch (by its unique tag) in the log more than once, or delivered twice;
- partial: a batch in the log (or delivered) with fewer events than it had;
- gaps: sequence numbers missing between 1 and the head.

All four must be 0; the counts are printed in the "torture report" section at the end of the run.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import factstr
import pytest
from factstr import NewEvent

from tests.postgres_server import PostgresServer
from tests.processes import Child, Spawn
from tests.support import SHARED_KINDS
from tests.torture.conftest import Tally, tally

WRITER = Path(__file__).with_name("writer.py")
NEIGHBOUR = Path(__file__).parent.parent / "sqlite" / "stdlib_neighbour.py"

#: Kills per SQL store, each at a random moment of a stream of appends.
KILLS = 10


def read_acks(child: Child, until: object = None, timeout: float = 30.0) -> list[list[Any]]:
    """Acknowledgements printed by a writer, up to the line ``until`` (or until it is dead)."""
    acks: list[list[Any]] = []
    while True:
        try:
            line = child.read(timeout=timeout)
        except AssertionError:
            if until is None:
                return acks
            raise
        if line == until or (isinstance(until, str) and isinstance(line, dict) and until in line):
            return acks
        assert isinstance(line, list) and line[0] == "ack", line
        acks.append(line)


def count(t: Tally, records: list[factstr.EventRecord], acks: list[list[Any]]) -> None:
    """Adds what ``records`` (the whole log) lost, duplicated or broke of ``acks`` to ``t``."""
    t.acknowledged_batches += len(acks)
    numbers = [r.sequence_number for r in records]
    t.gaps += (numbers[-1] - len(set(numbers))) if numbers else 0
    by_number = {r.sequence_number: r for r in records}
    per_tag: Counter[str] = Counter()
    sizes: dict[str, int] = {}
    for r in records:
        if r.event_type == "Tortured" or "tag" in r.payload:
            per_tag[r.payload["tag"]] += 1
            sizes[r.payload["tag"]] = r.payload.get("n", 1)
    for tag, n in per_tag.items():
        if n > sizes[tag]:
            t.duplicated += 1
        elif n < sizes[tag]:
            t.partial += 1
    for _, first, last, tag, *_ in acks:
        if any(
            n not in by_number or by_number[n].payload.get("tag") != tag
            for n in range(first, last + 1)
        ):
            t.lost += 1


def assert_clean(t: Tally) -> None:
    assert (t.lost, t.duplicated, t.partial, t.gaps) == (0, 0, 0, 0), t


def settle(server: PostgresServer | None, url: str) -> None:
    """Waits until PostgreSQL has ended a killed writer's sessions (its transaction is then
    either committed or rolled back before the log is examined)."""
    if server is None:
        return
    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    deadline = time.monotonic() + 30
    while server.sql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'") != "0":
        assert time.monotonic() < deadline, "the killed writer's sessions did not end"
        time.sleep(0.05)


@pytest.fixture(params=SHARED_KINDS)
def sql_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str, PostgresServer | None]]:
    """(kind, locator, server) of a fresh SQL database; PostgreSQL on the durable cluster."""
    kind: str = request.param
    if kind == "sqlite":
        yield kind, str(tmp_path / "events.db"), None
        return
    server: PostgresServer = request.getfixturevalue("durable_server")
    name = server.create_database("torture")
    try:
        yield kind, server.url_for(name), server
    finally:
        server.drop_database(name)


def open_locator(locator: str) -> factstr.EventStore:
    return (
        factstr.PostgresStore(locator)
        if locator.startswith("postgresql://")
        else factstr.SqliteStore(locator)
    )


def test_sigkill_mid_append(
    sql_store: tuple[str, str, PostgresServer | None], spawn: Spawn
) -> None:
    kind, locator, server = sql_store
    t = tally(f"{kind}: SIGKILL mid-append")
    open_locator(locator).close()
    rng = random.Random()
    acks: list[list[Any]] = []
    for _ in range(KILLS):
        writer = spawn("kill", locator, 500, 100, script=WRITER)
        acks.append(writer.read())  # the first commit: the store is busy appending now
        time.sleep(rng.uniform(0.0, 0.25))
        writer.sigkill()
        acks += read_acks(writer, timeout=0.2)
        settle(server, locator)
        t.rounds += 1
    with open_locator(locator) as store:
        records = store.query().event_records
        # Numbering goes on after the last kill without a gap.
        after = store.append([NewEvent("after", {})])
        assert after.first_sequence_number == (records[-1].sequence_number if records else 0) + 1
    count(t, records, acks)
    assert_clean(t)


def test_postgres_crash_restart_under_live_streams(
    durable_server: PostgresServer, spawn: Spawn
) -> None:
    t = tally("postgres: server crash under live streams")
    name = durable_server.create_database("torture")
    url = durable_server.url_for(name)
    try:
        with factstr.PostgresStore(url, reconnect_timeout=60.0) as store:
            delivered: list[list[factstr.EventRecord]] = []
            lock = threading.Lock()

            def handler(batch: list[factstr.EventRecord]) -> None:
                with lock:
                    delivered.append(batch)

            store.stream_all(handler)
            writer = spawn("restart", url, 6, script=WRITER)
            for _ in range(2):
                time.sleep(1.5)
                durable_server.stop("immediate")  # a crash: only what was fsynced survives
                time.sleep(0.3)
                durable_server.start()
                t.rounds += 1
            acks = read_acks(writer, until="done", timeout=90.0)
            writer.finish()
            records = store.query().event_records
            head = records[-1].sequence_number if records else 0
            deadline = time.monotonic() + 30
            while not delivered or delivered[-1][-1].sequence_number < head:
                assert time.monotonic() < deadline, "the live stream did not catch up"
                time.sleep(0.05)
        count(t, records, acks)
        # The live stream: every committed batch once, whole, in order.
        with lock:
            tags = Counter(r.payload["tag"] for b in delivered for r in b)
            shapes = {b[0].payload["tag"]: len(b) for b in delivered}
            order = [r.sequence_number for b in delivered for r in b]
        t.duplicated += sum(1 for tag, n in tags.items() if n > shapes[tag])
        t.partial += sum(1 for b in delivered if len(b) != b[0].payload["n"])
        t.lost += sum(1 for a in acks if a[3] not in tags)
        assert order == sorted(order)
    finally:
        if not durable_server.running:
            durable_server.start()
        durable_server.drop_database(name)
    assert_clean(t)


def test_stdlib_sqlite3_beside_the_store(tmp_path: Path, spawn: Spawn) -> None:
    t = tally("sqlite: stdlib sqlite3 in the same process")
    db = tmp_path / "events.db"
    factstr.SqliteStore(db).close()
    acks: list[list[Any]] = []
    for _ in range(4):
        neighbour = spawn("random", db, "2", script=NEIGHBOUR)
        other = spawn("kill", db, 3, 0, script=WRITER)
        round_acks = read_acks(neighbour, until="done")
        other.sigkill()
        neighbour.sigkill()
        acks += round_acks + read_acks(other, timeout=0.2)
        t.rounds += 1
    with factstr.SqliteStore(db) as store:
        records = store.query().event_records
    count(t, records, acks)
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("pragma integrity_check").fetchone() == ("ok",)
    finally:
        connection.close()
    assert_clean(t)


@pytest.mark.skipif(
    os.geteuid() != 0 or sys.platform != "linux",
    reason="mounting a small tmpfs needs root on Linux",
)
def test_full_disk_loses_nothing_and_recovers() -> None:
    t = tally("sqlite: full disk (tmpfs of 3 MB)")
    mount = Path(tempfile.mkdtemp(prefix="factstr-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        filler = mount / "filler"
        filler.write_bytes(b"\0" * 512 * 1024)
        db = mount / "events.db"
        acks: list[list[Any]] = []
        failures = 0
        with factstr.SqliteStore(db) as store:
            for i in range(10_000):
                tag = f"batch-{i}"
                events = [
                    NewEvent("Tortured", {"tag": tag, "n": 20, "i": j, "pad": "y" * 500})
                    for j in range(20)
                ]
                try:
                    result = store.append(events)
                except factstr.BackendError as error:
                    assert "full" in str(error).lower() or "disk" in str(error).lower(), error
                    failures += 1
                    if failures == 3:
                        break
                    continue
                acks.append(["ack", result.first_sequence_number, result.last_sequence_number, tag])
            assert failures == 3, "the disk never filled up"
            records = store.query().event_records
            count(t, records, acks)
            # Free some space: the store goes on, numbering without a gap.
            filler.unlink()
            after = store.append([NewEvent("Tortured", {"tag": "after", "n": 1, "i": 0})])
            assert after.first_sequence_number == records[-1].sequence_number + 1
        t.rounds += 1
        with factstr.SqliteStore(db) as store:
            assert len(store.query().event_records) == len(records) + 1
        connection = sqlite3.connect(db)
        try:
            assert connection.execute("pragma integrity_check").fetchone() == ("ok",)
        finally:
            connection.close()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        os.rmdir(mount)
    assert_clean(t)
