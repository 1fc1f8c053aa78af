"""Findings: places where our engine once disagreed with upstream beyond SPEC §10, fixed in the
engine to match upstream (docs/parity.md, "Findings"). Each test asserts parity.
"""

from __future__ import annotations

import time
from pathlib import Path

import factstr

from tests.parity.conftest import StartUpstream
from tests.parity.driver import Ours, comparable
from tests.parity.tables import sqlite_cursors


def test_f1_live_stream_ignores_min_sequence_number(start_upstream: StartUpstream) -> None:
    upstream, ours = start_upstream({"open": "memory"}), Ours(factstr.MemoryStore())
    ops: list[dict[str, object]] = [
        {"op": "append", "events": [{"type": "A", "payload": {}}]},
        {"op": "stream", "id": "s", "query": {"filters": [], "min": 5}},
        {"op": "append", "events": [{"type": "A", "payload": {}}] * 5},
        {"op": "deliveries", "id": "s"},
    ]
    try:
        for op in ops:
            theirs, mine = comparable(upstream.run(op)), comparable(ours.run(op))
            # both deliver the whole batch [2..6]: a live stream's lower bound is its position
            assert theirs == mine, (op, theirs, mine)
    finally:
        ours.close()
        upstream.close()


def test_f2_durable_cursor_passes_non_matching_live_batches(
    start_upstream: StartUpstream, tmp_path: Path
) -> None:
    upstream = start_upstream({"open": "sqlite", "path": str(tmp_path / "u.db")})
    ours = Ours(factstr.SqliteStore(tmp_path / "o.db"))
    query = {"filters": [{"event_types": ["B"], "payload_predicates": None}], "min": None}
    try:
        for side in (upstream, ours):
            side.run({"op": "durable", "id": "d", "name": "d", "query": query})
            side.run(
                {
                    "op": "append",
                    "events": [{"type": "A", "payload": {}}, {"type": "A", "payload": {}}],
                }
            )
            side.run({"op": "deliveries", "id": "d"})
        time.sleep(0.3)
        theirs = sqlite_cursors(tmp_path / "u.db")
        mine = ours.run({"op": "cursors"})["ok"]
        assert [c["cursor"] for c in theirs] == [2]
        assert mine == theirs
    finally:
        ours.close()
        upstream.close()


def test_f3_active_name_with_other_query(start_upstream: StartUpstream, tmp_path: Path) -> None:
    upstream = start_upstream({"open": "sqlite", "path": str(tmp_path / "u.db")})
    ours = Ours(factstr.SqliteStore(tmp_path / "o.db"))
    try:
        for side in (upstream, ours):
            side.run({"op": "durable", "id": "a", "name": "d", "query": None})
        op = {
            "op": "durable",
            "id": "b",
            "name": "d",
            "query": {"filters": [{"event_types": ["A"]}]},
        }
        theirs, mine = comparable(upstream.run(op)), comparable(ours.run(op))
        assert theirs == mine, (theirs, mine)
    finally:
        ours.close()
        upstream.close()
