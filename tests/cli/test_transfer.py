"""``export``, ``import`` and ``copy`` through real processes: numbers, batch boundaries,
``occurred_at`` and durable cursors (with their queries) survive exactly; import refuses a
non-empty target and an incomplete export; copy verifies and says so; an interrupted copy leaves
a prefix of whole batches that plain copy refuses and ``copy --resume`` completes; a round trip
SQLite -> PostgreSQL -> SQLite is identical, also as the upstream Rust crates read it."""

from __future__ import annotations

import json
import math
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import factstr
import pytest
from factstr import EventFilter, EventQuery, NewEvent

from tests.cli.conftest import Cli, cli_env, sqlite_path
from tests.cli.test_commands import lines, one_line_error
from tests.parity.conftest import StartUpstream
from tests.parity.driver import canonical
from tests.parity.tables import sqlite_batches, sqlite_raw_cursors
from tests.postgres_server import PostgresServer

QUERY_A = EventQuery.for_event_types(["A"])
QUERY_WHERE = EventQuery([EventFilter(None, [{"k": 1}]), EventFilter(["B"], None)])


def fill(url: str) -> None:
    """A log with batches of several sizes, tricky payloads and two durable cursors."""
    with factstr.connect(url) as store:
        store.append([NewEvent("A", {"k": 1, "f": 1.0, "big": 2**64 - 1})])
        store.append([NewEvent("B", {"i": i, "s": 'é\n"x"'}) for i in range(5)])
        store.append([NewEvent("A", [1, 2.5, None, True, {"k": 1}])])
        time.sleep(0.002)  # distinct times
        store.append([NewEvent("C", -0.0), NewEvent("C", 1e300), NewEvent("C", "text")])
        for name, query in (("alpha", QUERY_A), ("where", QUERY_WHERE)):
            with store.subscribe(query, durable=name) as sub:
                sub.next_batch(timeout=10)
                sub.ack()


def snapshot(url: str) -> dict[str, Any]:
    """Everything that must survive: facts with times, batch shapes (by a durable replay from 0
    with a fresh name, which delivers one list per original batch) and cursors with queries."""
    with factstr.connect(url) as store:
        facts = [
            (r.sequence_number, r.occurred_at, r.event_type, canonical(r.payload))
            for r in store.iter_query()
        ]
        cursors = sorted(
            (s.name, s.query, s.last_processed_sequence_number) for s in store.durable_streams()
        )
        batches: list[list[int]] = []
        with store.subscribe(durable="snapshot-probe") as sub:
            while sum(map(len, batches)) < len(facts):
                batch = sub.next_batch(timeout=10)
                assert batch is not None
                batches.append([r.sequence_number for r in batch])
        store.delete_durable_stream("snapshot-probe")
    return {"facts": facts, "batches": batches, "cursors": cursors}


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_keys(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


def test_export_is_the_same_whatever_payload_text_sqlite_keeps(
    cli: Cli, make_sqlite_url: Callable[[], str]
) -> None:
    """An export copies a stored payload text that is already canonical and rewrites any other:
    the same values written as other text (spaces, key order, escapes, exponents, as another
    writer might) export to the very same bytes and checksum."""
    source = make_sqlite_url()
    fill(source)
    before = cli("export", source)
    assert before.returncode == 0, before.stderr
    with sqlite3.connect(sqlite_path(source)) as db:
        for number, text in db.execute("SELECT sequence_number, payload FROM events").fetchall():
            other = json.dumps(_reversed_keys(json.loads(text)), indent=1, ensure_ascii=True)
            db.execute("UPDATE events SET payload = ? WHERE sequence_number = ?", (other, number))
    after = cli("export", source)
    assert after.returncode == 0, after.stderr
    assert after.stdout == before.stdout


def test_export_import_keeps_everything(
    cli: Cli, make_url: Callable[[], str], make_sqlite_url: Callable[[], str], tmp_path: Path
) -> None:
    source, target = make_sqlite_url(), make_url()
    fill(source)
    done = cli("export", source)
    assert done.returncode == 0, done.stderr
    exported = lines(done.stdout)
    assert exported[0] == {"factstr_export": 1, "head_sequence_number": 10}
    assert exported[2] == {
        "sequence_number": 2,
        "occurred_at": exported[2]["occurred_at"],
        "event_type": "B",
        "payload": {"i": 0, "s": 'é\n"x"'},
        "batch_last_sequence_number": 6,
    }
    assert exported[-3]["durable_stream"] == "alpha"
    assert exported[-1]["factstr_export_end"]["facts"] == 10

    done = cli("import", target, stdin=done.stdout)
    assert done.returncode == 0, done.stderr
    assert b"imported 10 facts and 2 durable streams" in done.stderr
    assert snapshot(target) == snapshot(source)

    # A file export is atomic and imports the same.
    file = tmp_path / "log.jsonl"
    assert cli("export", source, "--file", str(file)).returncode == 0
    other = make_sqlite_url()
    assert cli("import", other, "--file", str(file)).returncode == 0
    assert snapshot(other) == snapshot(source)

    # A non-empty target is refused, and left as it was.
    done = cli("import", target, "--file", str(file))
    assert done.returncode == 1
    assert "not empty" in one_line_error(done)
    assert snapshot(target) == snapshot(source)


def test_import_refuses_incomplete_or_altered_input(
    cli: Cli, make_sqlite_url: Callable[[], str]
) -> None:
    source = make_sqlite_url()
    fill(source)
    exported = cli("export", source).stdout.splitlines(keepends=True)

    cut = b"".join(exported[:-1])  # no end line: a cut pipe
    target = make_sqlite_url()
    done = cli("import", target, stdin=cut)
    assert done.returncode == 1
    assert "incomplete" in one_line_error(done)

    inside = b"".join(exported[:4])  # ends inside the batch 2..6
    done = cli("import", make_sqlite_url(), stdin=inside)
    assert done.returncode == 1
    assert "ends inside the batch ending at 6" in one_line_error(done)

    altered = b"".join(exported).replace(b'"text"', b'"texT"')
    done = cli("import", make_sqlite_url(), stdin=altered)
    assert done.returncode == 1
    assert "differ from the export's end line" in one_line_error(done)

    done = cli("import", make_sqlite_url(), stdin=b'{"hello": 1}\n')
    assert done.returncode == 1
    assert "not a factstr export" in one_line_error(done)


def test_restore_continues_only_directly_after_the_head(make_url: Callable[[], str]) -> None:
    """The engine operation under import: batches with given numbers and times, only right
    after the head (a clear error otherwise, nothing written)."""
    url = make_url()
    at = "2020-02-03T04:05:06.123456Z"
    line = {"occurred_at": at, "event_type": "T", "payload": {}}
    with factstr.connect(url) as store:
        restorer = store._restorer()
        facts = [
            {**line, "sequence_number": n, "batch_last_sequence_number": last}
            for n, last in ((1, 2), (2, 2), (3, 3))
        ]
        restorer.feed(b"".join(json.dumps(f).encode() + b"\n" for f in facts))
        assert restorer.finish()[0] == 3
        [first, second, third] = store.iter_query()
        assert first.occurred_at.isoformat() == "2020-02-03T04:05:06.123456+00:00"
        assert (first.occurred_at, second.occurred_at) == (third.occurred_at, third.occurred_at)
        gap = store._restorer()
        gap.feed(
            json.dumps({**line, "sequence_number": 5, "batch_last_sequence_number": 5}).encode()
        )
        with pytest.raises(ValueError, match="head is 3, so the next batch must start at 4, not 5"):
            gap.finish()
        assert store.query(limit=0).head_sequence_number == 3


def test_copy_round_trip_sqlite_postgres_sqlite_is_identical(
    cli: Cli,
    make_sqlite_url: Callable[[], str],
    make_pg_url: Callable[[], str],
    start_upstream: StartUpstream,
) -> None:
    first, middle, last = make_sqlite_url(), make_pg_url(), make_sqlite_url()
    fill(first)
    for source, target in ((first, middle), (middle, last)):
        done = cli("copy", source, target)
        assert done.returncode == 0, done.stderr
        text = done.stdout.decode()
        assert "copied 10 facts and 2 durable streams; verified: counts equal, checksum" in text
    original = snapshot(first)
    assert snapshot(middle) == original
    assert snapshot(last) == original

    # The same tables as the source, so the upstream crates read the same log.
    first_path = sqlite_path(first)
    last_path = sqlite_path(last)
    assert sqlite_batches(last_path) == sqlite_batches(first_path) == [(2, 6), (8, 10)]
    assert sqlite_raw_cursors(last_path) == sqlite_raw_cursors(first_path)

    views = []
    for path in (first_path, last_path):
        upstream = start_upstream({"open": "sqlite", "path": str(path)})
        records = upstream.run({"op": "query", "query": {"filters": None, "min": None}})["ok"]
        replay = upstream.run({"op": "durable", "id": "u", "name": "upstream-view", "query": None})
        upstream.close()
        views.append((canonical(records), canonical(replay["ok"]["replay"])))
    assert views[0] == views[1]
    assert [len(batch) for batch in json.loads(views[1][1])] == [1, 5, 1, 3]


def _sqlite_head(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return int(
                db.execute("SELECT COALESCE(MAX(sequence_number), 0) FROM events").fetchone()[0]
            )
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_copy_is_refused_and_resumable(
    cli: Cli, make_sqlite_url: Callable[[], str], tmp_path: Path, stop: signal.Signals
) -> None:
    source = make_sqlite_url()
    total = 120_000
    with factstr.connect(source) as store:
        for start in range(0, total, 10_000):
            store.append([NewEvent("T", {"n": start + i}) for i in range(7)])
            store.append([NewEvent("T", {"n": start + i}) for i in range(7, 10_000)])
        with store.subscribe(durable="d") as sub:
            sub.next_batch(timeout=10)
            sub.ack()
    target = make_sqlite_url()
    target_path = sqlite_path(target)
    process = subprocess.Popen(
        [sys.executable, "-m", "factstr", "copy", source, target],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    deadline = time.monotonic() + 60
    while _sqlite_head(target_path) == 0 and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(stop)
    _out, err = process.communicate(timeout=60)
    assert process.returncode != 0, "the copy finished before it could be interrupted"
    assert b"Traceback" not in err
    with factstr.connect(target) as store:
        head = store.query(limit=0).head_sequence_number or 0
        assert 0 < head < total
        assert store.durable_streams() == []
        # A prefix of whole batches, as in the source.
        assert head % 10_000 == 0 or head % 10_000 == 7

    done = cli("copy", source, target)
    assert done.returncode == 1
    assert "not empty" in one_line_error(done)
    done = cli("copy", source, target, "--resume", "--json")
    assert done.returncode == 0, done.stderr
    [result] = lines(done.stdout)
    assert result["resumed_after"] == head
    assert (result["facts"], result["durable_streams"], result["verified"]) == (total, 1, True)
    assert snapshot_small(target) == snapshot_small(source)
    done = cli("copy", source, target, "--resume")
    assert done.returncode == 1
    assert "nothing to resume" in one_line_error(done)


def snapshot_small(url: str) -> tuple[Any, ...]:
    """Batch boundaries, cursors and a checksum, without holding a large log."""
    with factstr.connect(url) as store:
        path = sqlite_path(url)
        head = store.query(limit=0).head_sequence_number or 0
        checksum = store._checksum_page(0, head)[2] if head else 0
        return (
            head,
            checksum,
            sqlite_batches(path),
            sqlite_raw_cursors(path),
        )


def fnv1a(data: bytes) -> int:
    hash_ = 0xCBF29CE484222325
    for byte in data:
        hash_ = ((hash_ ^ byte) * 0x100000001B3) & (2**64 - 1)
    return hash_


def test_the_checksum_is_the_documented_one() -> None:
    """The sum (mod 2**64) of FNV-1a over ``number \\x1f type \\x1f payload``, the payload as
    compact JSON with sorted keys, whatever key order it was appended with."""
    store = factstr.MemoryStore()
    payloads: list[Any] = [{"b": 1, "a": [2.5, "é"]}, [1, {"z": None, "y": True}], "s"]
    store.append([NewEvent("T", p) for p in payloads])
    expected = 0
    for number, payload in enumerate(payloads, 1):
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        expected += fnv1a(f"{number}\x1fT\x1f{canonical}".encode())
    assert store._checksum_page(0, 10) == (3, 3, expected % 2**64)
    assert store._export_page(0, 10, False)[2:] == (3, 1, expected % 2**64)


def test_a_copy_into_postgres_writes_the_rows_an_append_writes(
    cli: Cli, make_pg_url: Callable[[], str], postgres_server: PostgresServer
) -> None:
    """A restore into PostgreSQL goes in with COPY (``postgres/bulk.rs``), not through the append
    function: every table must hold what the appends wrote (events, batch rows, payload index
    postings, exact payloads, the index state), including texts COPY escapes (tab, newline,
    backslash), and the index must answer payload queries and take further appends."""
    source, target = make_pg_url(), make_pg_url()
    with factstr.connect(source) as store:
        store.append([NewEvent("A\tB\\C", {"k": 1, "s": "tab\there\\back\nline\r"})])
        store.append([NewEvent("A", {"k": i % 3, "tag": "t"}) for i in range(7)])
        store.append([NewEvent("C", -0.0), NewEvent("C", {"z": -0.0, "k": 1})])
        store.append([NewEvent("D", {"k": 1})])
    done = cli("copy", source, target)
    assert done.returncode == 0, done.stderr

    def tables(url: str) -> list[str]:
        database = url.split("?")[0].rsplit("/", 1)[1]
        return [
            postgres_server.sql(sql, database)
            for sql in (
                "SELECT sequence_number, occurred_at, event_type, payload::text FROM events "
                "ORDER BY 1",
                "SELECT * FROM append_batches ORDER BY 1",
                "SELECT key_hash, first_sequence_number, encode(members, 'hex') "
                "FROM factstr_payload_index ORDER BY 1, 2",
                "SELECT * FROM factstr_exact_payloads ORDER BY 1",
                "SELECT key_format, indexed_through FROM factstr_payload_index_state",
            )
        ]

    copied = tables(target)
    assert copied == tables(source)
    assert "tab\\there\\\\back" in copied[0] and "A\tB\\C" in copied[0]
    assert copied[2].count("\n") > 5 and copied[4].endswith("|11")

    query = EventQuery([EventFilter(None, [{"k": 1}])])
    with factstr.connect(source) as before, factstr.connect(target) as after:
        expected = [(r.sequence_number, r.payload) for r in before.query(query).event_records]
        assert [
            (r.sequence_number, r.payload) for r in after.query(query).event_records
        ] == expected
        assert len(expected) == 5
        assert after.append([NewEvent("D", {"k": 1})]).first_sequence_number == 12
        assert after.query(query).event_records[-1].sequence_number == 12
        # The float -0.0 keeps its sign through the exact-payload table.
        minus_zero = after.query(EventQuery.for_event_types(["C"])).event_records[0].payload
        assert math.copysign(1.0, minus_zero) == -1.0
