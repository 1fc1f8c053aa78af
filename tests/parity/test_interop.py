"""Storage interop with FACTSTR 0.5.2 (SPEC §9), on SQLite and PostgreSQL, both ways.

- a database written by upstream is read by ours: same facts, same batch shape on durable
  replay, durable cursors resume where upstream left them; and the other way round;
- an upstream writer process and ours append to one database at the same time: each side's
  batches are contiguous, all numbers 1..N appear exactly once, a reader never sees a gap, and
  both replay the same batches.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import factstr
import pytest
from factstr import EventQuery, NewEvent

from tests.parity.conftest import MakeDatabase, StartUpstream
from tests.parity.driver import Ours, Upstream, batch_json, canonical, comparable
from tests.parity.tables import (
    pg_batches,
    pg_metadata,
    pg_raw_cursors,
    sqlite_batches,
    sqlite_metadata,
    sqlite_raw_cursors,
)
from tests.postgres_server import PostgresServer
from tests.support import Collector, Store

QUERY_A = {"filters": [{"event_types": ["A"], "payload_predicates": None}], "min": None}
#: What upstream's serialiser writes for QUERY_A (our stores must write the same text).
QUERY_A_TEXT = (
    '{"filters":[{"event_types":["A"],"payload_predicates":null}],"min_sequence_number":null}'
)


@dataclass
class Backend:
    """One shared database: how each side opens it and how to read its tables."""

    kind: str
    open_line: dict[str, Any]
    open_ours: Callable[[], Store]
    cursors: Callable[[], list[tuple[str, str, int]]]
    batches: Callable[[], list[tuple[int, int]]]
    metadata: Callable[[], dict[str, str]]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        db = tmp_path / "shared.db"
        return Backend(
            "sqlite",
            {"open": "sqlite", "path": str(db)},
            lambda: factstr.SqliteStore(db),
            lambda: sqlite_raw_cursors(db),
            lambda: sqlite_batches(db),
            lambda: sqlite_metadata(db),
        )
    server: PostgresServer = request.getfixturevalue("pg_server")
    make: MakeDatabase = request.getfixturevalue("make_database")
    name = make()
    url = server.url_for(name)
    return Backend(
        "postgres",
        {"open": "postgres", "url": url},
        lambda: factstr.PostgresStore(url),
        lambda: pg_raw_cursors(server, name),
        lambda: pg_batches(server, name),
        lambda: pg_metadata(server, name),
    )


#: The write plan of the one-way tests: batches of (event type, payload).
def plan(seed: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    return [
        [
            {
                "type": rng.choice("AB"),
                "payload": {"i": i, "j": j, "tags": ["x", j * 0.5], "o": {"n": None}},
            }
            for j in range(rng.choice([1, 1, 2, 3]))
        ]
        for i in range(12)
    ]


def expected_replay(
    batches: list[list[dict[str, Any]]], cursor: int, types: list[str] | None
) -> list[list[dict[str, Any]]]:
    """The batches a durable stream with ``cursor`` and these event types replays."""
    out: list[list[dict[str, Any]]] = []
    seq = 0
    for batch in batches:
        records = []
        for event in batch:
            seq += 1
            if seq > cursor and (types is None or event["type"] in types):
                records.append({"seq": seq, "type": event["type"], "payload": event["payload"]})
        if records:
            out.append(records)
    return out


def all_records(batches: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [r for b in expected_replay(batches, 0, None) for r in b]


def strip(batches: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    stripped: list[list[dict[str, Any]]] = comparable({"ok": batches})["ok"]
    return stripped


def write(side: Upstream | Ours, batches: list[list[dict[str, Any]]]) -> list[tuple[int, int]]:
    """Writes the batches; registers durable ``d1`` (types A) after the 4th and unsubscribes
    it after the 8th. Returns the appended ranges."""
    ranges = []
    for index, batch in enumerate(batches):
        if index == 4:
            assert "ok" in side.run({"op": "durable", "id": "d1", "name": "d1", "query": QUERY_A})
        reply = side.run({"op": "append", "events": batch})
        ranges.append((reply["ok"]["first"], reply["ok"]["last"]))
        if index == 8:
            side.run({"op": "deliveries", "id": "d1"})
            side.run({"op": "unsubscribe", "id": "d1"})
    return ranges


def expected_batch_rows(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(first, last) for first, last in ranges if last > first]


def read_back(side: Upstream | Ours, batches: list[list[dict[str, Any]]], d1_cursor: int) -> None:
    """The reader sees the writer's facts, resumes d1 from its cursor, replays a new name whole."""
    everything = comparable(side.run({"op": "query", "query": {}}))["ok"]
    assert canonical(everything["records"]) == canonical(all_records(batches))
    d1 = side.run({"op": "durable", "id": "r1", "name": "d1", "query": QUERY_A})
    assert canonical(strip(d1["ok"]["replay"])) == canonical(
        expected_replay(batches, d1_cursor, ["A"])
    )
    fresh = side.run({"op": "durable", "id": "r2", "name": "fresh", "query": None})
    assert canonical(strip(fresh["ok"]["replay"])) == canonical(expected_replay(batches, 0, None))


def test_upstream_writes_ours_reads(backend: Backend, start_upstream: StartUpstream) -> None:
    batches = plan(1)
    upstream = start_upstream(backend.open_line)
    ranges = write(upstream, batches)
    upstream.close()
    assert backend.batches() == expected_batch_rows(ranges)
    [(name, query_text, cursor)] = backend.cursors()
    assert (name, query_text) == ("d1", QUERY_A_TEXT)
    assert cursor == ranges[8][1]

    ours = Ours(backend.open_ours())
    try:
        assert ours.run({"op": "cursors"})["ok"] == [
            {"name": "d1", "query": QUERY_A, "cursor": cursor}
        ]
        read_back(ours, batches, cursor)
    finally:
        ours.close()


def test_ours_writes_upstream_reads(backend: Backend, start_upstream: StartUpstream) -> None:
    batches = plan(2)
    ours = Ours(backend.open_ours())
    try:
        ranges = write(ours, batches)
    finally:
        ours.close()
    meta = backend.metadata()
    assert meta.get("append_batch_boundary_format") == "sparse_v1"
    assert meta.get("store_format_version") == "1"
    assert backend.batches() == expected_batch_rows(ranges)
    [(name, query_text, cursor)] = backend.cursors()
    assert (name, query_text) == ("d1", QUERY_A_TEXT)
    assert cursor == ranges[8][1]

    upstream = start_upstream(backend.open_line)
    read_back(upstream, batches, cursor)
    upstream.close()


def test_concurrent_writers(backend: Backend, start_upstream: StartUpstream) -> None:
    rounds = 60
    rng = random.Random(3)
    upstream_sizes = [rng.choice([1, 2, 3]) for _ in range(rounds)]
    our_sizes = [rng.choice([1, 2, 3]) for _ in range(rounds)]
    upstream = start_upstream(backend.open_line)
    store = backend.open_ours()
    reader = backend.open_ours()
    seen_by_stream = Collector()
    our_ranges: list[tuple[int, int, int]] = []
    gaps: list[str] = []
    done = threading.Event()

    def our_writer() -> None:
        for i, n in enumerate(our_sizes):
            result = store.append([NewEvent("ours", {"i": i, "j": j}) for j in range(n)])
            our_ranges.append((result.first_sequence_number, result.last_sequence_number, n))

    def gap_reader() -> None:
        while not done.is_set():
            got = [r.sequence_number for r in reader.query().event_records]
            if got != list(range(1, len(got) + 1)):
                gaps.append(f"reader saw {got}")
                return

    try:
        with store.stream_all(seen_by_stream):
            threads = [threading.Thread(target=our_writer), threading.Thread(target=gap_reader)]
            for thread in threads:
                thread.start()
            for i, n in enumerate(upstream_sizes):  # pipelined: upstream appends while ours does
                upstream.send(
                    {
                        "op": "append",
                        "events": [
                            {"type": "upstream", "payload": {"i": i, "j": j}} for j in range(n)
                        ],
                    }
                )
            upstream_ranges = []
            for n in upstream_sizes:
                reply = upstream.receive()
                upstream_ranges.append((reply["ok"]["first"], reply["ok"]["last"], n))
            threads[0].join(timeout=120)
            done.set()
            threads[1].join(timeout=60)
            total = sum(upstream_sizes) + sum(our_sizes)
            seen_by_stream.wait_records(total, timeout=30)
        assert gaps == []
        for first, last, n in upstream_ranges + our_ranges:
            assert last - first + 1 == n
        numbers = sorted(
            s for first, last, _ in upstream_ranges + our_ranges for s in range(first, last + 1)
        )
        assert numbers == list(range(1, total + 1))
        # Each side's batches are contiguous runs of its own events, in its own order.
        records = store.query().event_records
        for first, last, n in upstream_ranges:
            assert [(r.event_type, r.payload["j"]) for r in records[first - 1 : last]] == [
                ("upstream", j) for j in range(n)
            ]
        for first, last, n in our_ranges:
            assert [(r.event_type, r.payload["j"]) for r in records[first - 1 : last]] == [
                ("ours", j) for j in range(n)
            ]
        assert sorted(upstream_ranges + our_ranges) == sorted(
            upstream_ranges + our_ranges, key=lambda r: r[0]
        )
        assert backend.batches() == sorted(
            (first, last) for first, last, n in upstream_ranges + our_ranges if n > 1
        )
        # Our live stream got every batch, with its shape, in commit order.
        shape = sorted((first, last) for first, last, _ in upstream_ranges + our_ranges)
        assert [
            (b[0].sequence_number, b[-1].sequence_number) for b in seen_by_stream.batches
        ] == shape
        # Both engines replay the same batches.
        replay = Collector()
        with store.stream_all_durable("all", replay):
            pass
        theirs = upstream.run(
            {"op": "durable", "id": "all", "name": "all-upstream", "query": None}
        )["ok"]["replay"]
        assert canonical(strip(theirs)) == canonical(strip([batch_json(b) for b in replay.batches]))
        assert [(b[0]["seq"], b[-1]["seq"]) for b in theirs] == shape
    finally:
        done.set()
        store.close()
        reader.close()
        upstream.close()


def test_durable_cursor_handover(backend: Backend, start_upstream: StartUpstream) -> None:
    """One durable name processed alternately by upstream and ours, never twice, never skipped."""
    upstream = start_upstream(backend.open_line)
    upstream.run(
        {
            "op": "append",
            "events": [{"type": "A", "payload": {"n": 1}}, {"type": "A", "payload": {"n": 2}}],
        }
    )
    first = upstream.run({"op": "durable", "id": "h", "name": "h", "query": QUERY_A})["ok"][
        "replay"
    ]
    upstream.run({"op": "append", "events": [{"type": "A", "payload": {"n": 3}}]})
    live = upstream.run({"op": "deliveries", "id": "h"})["ok"]["batches"]
    upstream.close()

    with backend.open_ours() as store:
        store.append([NewEvent("A", {"n": 4}), NewEvent("B", {"n": 5}), NewEvent("A", {"n": 6})])
        mine = Collector()
        with store.stream_to_durable("h", EventQuery.for_event_types(["A"]), mine):
            store.append([NewEvent("A", {"n": 7})])
            mine.wait_records(3)

    upstream = start_upstream(backend.open_line)
    upstream.run({"op": "append", "events": [{"type": "A", "payload": {"n": 8}}]})
    last = upstream.run({"op": "durable", "id": "h", "name": "h", "query": QUERY_A})["ok"]["replay"]
    upstream.close()

    def ns(batches: list[list[dict[str, Any]]]) -> list[list[int]]:
        return [[r["payload"]["n"] for r in b] for b in batches]

    assert ns(first) == [[1, 2]]
    assert ns(live) == [[3]]
    assert [[r.payload["n"] for r in b] for b in mine.batches] == [[4, 6], [7]]
    assert ns(last) == [[8]]
