"""Each documented difference (``differences.py``) shows exactly as described."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

import factstr
import pytest
from factstr import EventFilter, EventQuery, NewEvent

from tests.parity.conftest import MakeDatabase, StartUpstream
from tests.parity.differences import ALL_KINDS, BY_KEY, DIFFERENCES
from tests.parity.driver import Ours, Upstream, comparable
from tests.parity.tables import pg_cursors, sqlite_cursors
from tests.postgres_server import PostgresServer
from tests.support import Collector, cursor_of, wait_cursor

#: (upstream, ours, reader of upstream's cursor table or None) on fresh, separate databases.
Pair: TypeAlias = tuple[Upstream, Ours, Callable[[], list[dict[str, Any]]] | None]


@pytest.fixture(params=sorted(ALL_KINDS))
def pair(
    request: pytest.FixtureRequest, start_upstream: StartUpstream, tmp_path: Path
) -> Iterator[Pair]:
    kind: str = request.param
    reader: Callable[[], list[dict[str, Any]]] | None = None
    if kind == "memory":
        upstream, ours = start_upstream({"open": "memory"}), Ours(factstr.MemoryStore())
    elif kind == "sqlite":
        upstream = start_upstream({"open": "sqlite", "path": str(tmp_path / "upstream.db")})
        ours = Ours(factstr.SqliteStore(tmp_path / "ours.db"))
        reader = lambda: sqlite_cursors(tmp_path / "upstream.db")  # noqa: E731
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        make: MakeDatabase = request.getfixturevalue("make_database")
        upstream_db = make()
        upstream = start_upstream({"open": "postgres", "url": server.url_for(upstream_db)})
        ours = Ours(factstr.PostgresStore(server.url_for(make())))
        reader = lambda: pg_cursors(server, upstream_db)  # noqa: E731
    try:
        yield upstream, ours, reader
    finally:
        ours.close()
        upstream.kill()


def kind_of(request: pytest.FixtureRequest) -> str:
    kind: str = request.node.callspec.params["pair"]
    return kind


def both(pair: Pair, op: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    upstream, ours, _ = pair
    return comparable(upstream.run(op)), comparable(ours.run(op))


def ev(event_type: str, payload: Any) -> dict[str, Any]:
    return {"type": event_type, "payload": payload}


def matching(predicate: Any) -> dict[str, Any]:
    return {"filters": [{"event_types": None, "payload_predicates": [predicate]}], "min": None}


def seqs(reply: dict[str, Any]) -> list[int]:
    return [r["seq"] for r in reply["ok"]["records"]]


def test_every_difference_has_its_test() -> None:
    names = set(globals())
    assert [d.test for d in DIFFERENCES if d.test not in names] == []
    assert len(BY_KEY) == len(DIFFERENCES)


def test_number_equality(pair: Pair, request: pytest.FixtureRequest) -> None:
    kind = kind_of(request)
    both(pair, {"op": "append", "events": [ev("A", {"a": 1.0}), ev("A", {"a": 1})]})
    theirs, mine = both(pair, {"op": "query", "query": matching({"a": 1})})
    assert seqs(mine) == [1, 2]
    # PostgreSQL's query uses jsonb @> (numeric equality); memory/SQLite compare Number variants.
    assert seqs(theirs) == ([1, 2] if kind == "postgres" else [2])
    theirs, mine = both(pair, {"op": "query", "query": matching({"a": 1.0})})
    assert (seqs(theirs), seqs(mine)) == (([1, 2] if kind == "postgres" else [1]), [1, 2])
    # Live streams use the Rust matcher in every upstream store, PostgreSQL included.
    both(pair, {"op": "stream", "id": "s", "query": matching({"a": 1})})
    both(pair, {"op": "append", "events": [ev("A", {"a": 1.0})]})
    theirs, mine = both(pair, {"op": "deliveries", "id": "s"})
    assert theirs == {"ok": {"batches": []}}
    assert [[r["seq"] for r in b] for b in mine["ok"]["batches"]] == [[3]]


def test_scalar_predicate_against_array_payload(pair: Pair, request: pytest.FixtureRequest) -> None:
    kind = kind_of(request)
    both(pair, {"op": "append", "events": [ev("A", ["x", "y"]), ev("A", {"a": ["x"]})]})
    theirs, mine = both(pair, {"op": "query", "query": matching("x")})
    assert seqs(mine) == []
    assert seqs(theirs) == ([1] if kind == "postgres" else [])
    # Nested, jsonb does not make the exception either.
    theirs, mine = both(pair, {"op": "query", "query": matching({"a": "x"})})
    assert seqs(theirs) == seqs(mine) == []


def test_empty_append_if_with_a_stale_version(pair: Pair, request: pytest.FixtureRequest) -> None:
    kind = kind_of(request)
    both(pair, {"op": "append", "events": [ev("A", {})]})
    theirs, mine = both(
        pair, {"op": "append_if", "events": [], "query": {"filters": None}, "expected": None}
    )
    assert mine == {"error": {"kind": "EmptyAppend"}}
    if kind == "memory":
        assert theirs == {"error": {"kind": "Conflict", "expected": None, "actual": 1}}
    else:
        assert theirs == mine
    # With the fresh version both stores refuse the empty list.
    assert both(
        pair, {"op": "append_if", "events": [], "query": {"filters": None}, "expected": 1}
    ) == (mine, mine)


def _at(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(record["at"]).replace("Z", "+00:00"))


def test_one_occurred_at_per_batch(pair: Pair) -> None:
    upstream, ours, _ = pair
    batch = [ev("A", {"i": i}) for i in range(40)]
    upstream.run({"op": "append", "events": batch})
    ours.run({"op": "append", "events": batch})
    theirs = upstream.run({"op": "query", "query": {}})["ok"]["records"]
    mine = ours.run({"op": "query", "query": {}})["ok"]["records"]
    assert len({r["at"] for r in mine}) == 1
    assert len({r["at"] for r in theirs}) > 1
    assert all(_at(r).microsecond == _at(mine[0]).microsecond for r in mine)
    assert [_at(r) for r in theirs] == sorted(_at(r) for r in theirs)


def test_streams_see_other_writers(start_upstream: StartUpstream, tmp_path: Path) -> None:
    """On one SQLite file: our stream sees upstream's commit, upstream's does not see ours."""
    db = tmp_path / "shared.db"
    with factstr.SqliteStore(db) as store:
        upstream = start_upstream({"open": "sqlite", "path": str(db)})
        assert "ok" in upstream.run({"op": "stream", "id": "s", "query": None})
        mine = Collector()
        with store.stream_all(mine):
            upstream.run({"op": "append", "events": [ev("A", {"by": "upstream"})]})
            store.append([NewEvent("A", {"by": "ours"})])
            mine.wait_records(2)
            theirs = upstream.run({"op": "deliveries", "id": "s"})["ok"]["batches"]
        assert [r.payload["by"] for r in mine.records] == ["upstream", "ours"]
        assert [[r["payload"]["by"] for r in b] for b in theirs] == [["upstream"]]
        upstream.close()


def test_dropped_stream_handle(pair: Pair) -> None:
    upstream, ours, _ = pair
    upstream.run({"op": "stream", "id": "s", "query": None})
    upstream.run({"op": "forget", "id": "s"})
    upstream.run({"op": "append", "events": [ev("A", {})]})
    assert upstream.run({"op": "deliveries", "id": "s"}) == {"ok": {"batches": []}}

    got = Collector()
    ours.store.stream_all(got)  # the EventStream is dropped at once
    gc.collect()
    ours.store.append([NewEvent("A", {})])
    assert [r.sequence_number for r in got.wait_records(1)] == [1]


def test_durable_failure_does_not_skip(pair: Pair, request: pytest.FixtureRequest) -> None:
    """A durable handler fails on batch 1 while batch 2 is already queued for it."""
    upstream, ours, reader = pair
    upstream.run(
        {
            "op": "durable",
            "id": "d",
            "name": "d",
            "query": None,
            "fail_on": {"seq": 1, "delay_ms": 300},
        }
    )
    upstream.run({"op": "append", "events": [ev("A", {})]})
    upstream.run({"op": "append", "events": [ev("A", {})]})
    delivered = upstream.run({"op": "deliveries", "id": "d"})["ok"]["batches"]
    # Upstream: batch 2, snapshotted before the failure, is delivered anyway...
    assert [[r["seq"] for r in b] for b in delivered] == [[2]]
    upstream.run({"op": "unsubscribe", "id": "d"})
    if reader is not None:  # ...and moved the cursor past the failed batch 1
        assert [c["cursor"] for c in reader()] == [2]
    upstream.run({"op": "append", "events": [ev("A", {})]})
    replay = upstream.run({"op": "durable", "id": "d2", "name": "d", "query": None})["ok"]["replay"]
    assert [[r["seq"] for r in b] for b in replay] == [[3]]  # batch 1 is never delivered again

    store = ours.store
    gate = [True]

    def handler(batch: list[factstr.EventRecord]) -> None:
        if gate[0] and batch[0].sequence_number == 1:
            time.sleep(0.3)
            raise RuntimeError("refusing 1")

    stream = store.stream_all_durable("d", handler)
    store.append([NewEvent("A", {})])
    store.append([NewEvent("A", {})])
    deadline = time.monotonic() + 5
    while stream.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.error is not None
    time.sleep(0.2)
    assert cursor_of(store, "d") == 0
    stream.unsubscribe()
    gate[0] = False
    again = Collector()
    with store.stream_all_durable("d", again):
        assert again.batch_seqs() == [[1], [2]]


def test_query_limit(pair: Pair) -> None:
    upstream, ours, _ = pair
    both(pair, {"op": "append", "events": [ev("A", {"i": i}) for i in range(5)]})
    everything = comparable(upstream.run({"op": "query", "query": {"min": 1}}))["ok"]
    limited = ours.store.query(EventQuery(None, 1), limit=2)
    assert [r.sequence_number for r in limited.event_records] == [
        r["seq"] for r in everything["records"][:2]
    ]
    assert limited.current_context_version == everything["version"]


def test_durable_cursor_listing(pair: Pair) -> None:
    upstream, ours, reader = pair
    assert upstream.run({"op": "cursors"})["error"]["kind"] == "Unsupported"
    query = {"filters": [{"event_types": ["A"], "payload_predicates": [{"k": "x"}]}], "min": None}
    for side in (upstream, ours):
        side.run({"op": "append", "events": [ev("A", {"k": "x"}), ev("A", {"k": "y"})]})
        side.run({"op": "durable", "id": "d", "name": "d", "query": query})
        side.run({"op": "deliveries", "id": "d"})
    wait_cursor(ours.store, "d", 2)
    mine = ours.run({"op": "cursors"})["ok"]
    assert mine == [{"name": "d", "query": query, "cursor": 2}]
    if reader is not None:
        assert reader() == mine


def test_nul_in_strings(pair: Pair, request: pytest.FixtureRequest) -> None:
    kind = kind_of(request)
    upstream, ours, _ = pair
    theirs = upstream.run({"op": "append", "events": [ev("A", {"s": "a\u0000b"})]})
    if kind == "postgres":
        assert theirs["error"]["kind"] == "BackendFailure"
    else:
        assert theirs == {"ok": {"first": 1, "last": 1, "count": 1}}
    with pytest.raises(ValueError):
        NewEvent("A", {"s": "a\u0000b"})
    assert ours.store.query().event_records == []


def test_empty_event_type_and_durable_name(pair: Pair) -> None:
    upstream, ours, _ = pair
    assert upstream.run({"op": "append", "events": [ev("", {})]}) == {
        "ok": {"first": 1, "last": 1, "count": 1}
    }
    assert "ok" in upstream.run({"op": "durable", "id": "d", "name": "", "query": None})
    with pytest.raises(ValueError):
        NewEvent("", {})
    with pytest.raises(ValueError):
        ours.store.stream_all_durable("", lambda batch: None)
    assert ours.store.query().event_records == []
    assert EventFilter is not None
