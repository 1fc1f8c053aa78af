"""Differential tests: the same generated operations on an upstream store and on ours give the
same answers (appends, conflicts, queries, live deliveries, durable replays and deliveries, and
on SQLite/PostgreSQL the durable cursors), apart from the differences in ``differences.py``,
which generation steers around."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import factstr
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.parity.conftest import MakeDatabase, StartUpstream
from tests.parity.driver import Ours, canonical
from tests.parity.program import Program, Steering
from tests.parity.tables import pg_cursors, sqlite_cursors
from tests.postgres_server import PostgresServer

#: Examples per store kind; each one starts an upstream process and opens two stores.
#: ``FACTSTR_PARITY_EXAMPLES`` raises it for a longer local search.
EXAMPLES = int(os.environ.get("FACTSTR_PARITY_EXAMPLES", "25"))
#: Operations per example.
STEPS = 14

PARITY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # No shrinking: a failure prints every operation of the run, and shrinking runs that wait
    # for deliveries takes minutes.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def run_program(program: Program, data: st.DataObject, steps: int) -> None:
    try:
        for _ in range(steps):
            program.step(data.draw)
        program.finish()
    finally:
        program.ours.close()
        program.upstream.close()


def compare_cursors(program: Program, upstream_cursors: list[dict[str, Any]]) -> None:
    """Our ``durable_streams()`` matches upstream's cursor table: same names, queries and cursors
    (ours moves after the handler returned and after each read, so allow it a moment)."""
    deadline = time.monotonic() + 1.0
    while True:
        mine: list[dict[str, Any]] = program.ours.run({"op": "cursors"})["ok"]
        if canonical(mine) == canonical(upstream_cursors) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    context = f"\n{program.script()}\nupstream: {upstream_cursors}\nours:     {mine}"
    assert canonical(mine) == canonical(upstream_cursors), "durable streams differ" + context


@PARITY_SETTINGS
@given(data=st.data())
def test_memory(start_upstream: StartUpstream, data: st.DataObject) -> None:
    program = Program(
        start_upstream({"open": "memory"}), Ours(factstr.MemoryStore()), Steering("memory")
    )
    run_program(program, data, STEPS)


@PARITY_SETTINGS
@given(data=st.data())
def test_sqlite(start_upstream: StartUpstream, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory(prefix="parity-") as directory:
        upstream_db, our_db = Path(directory) / "upstream.db", Path(directory) / "ours.db"
        program = Program(
            start_upstream({"open": "sqlite", "path": str(upstream_db)}),
            Ours(factstr.SqliteStore(our_db)),
            Steering("sqlite"),
        )
        try:
            for _ in range(STEPS):
                program.step(data.draw)
            program.finish()
            compare_cursors(program, sqlite_cursors(upstream_db))
        finally:
            program.ours.close()
            program.upstream.close()


@PARITY_SETTINGS
@given(data=st.data())
def test_postgres(
    start_upstream: StartUpstream,
    make_database: MakeDatabase,
    pg_server: PostgresServer,
    data: st.DataObject,
) -> None:
    upstream_db, our_db = make_database(), make_database()
    program = Program(
        start_upstream({"open": "postgres", "url": pg_server.url_for(upstream_db)}),
        Ours(factstr.PostgresStore(pg_server.url_for(our_db))),
        Steering("postgres"),
    )
    try:
        for _ in range(STEPS):
            program.step(data.draw)
        program.finish()
        compare_cursors(program, pg_cursors(pg_server, upstream_db))
    finally:
        program.ours.close()
        program.upstream.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_numbers_and_text_round_trip(
    kind: str, start_upstream: StartUpstream, tmp_path: Path
) -> None:
    """Edge values of the generated vocabulary come back the same from both (a fixed example)."""
    if kind == "memory":
        upstream = start_upstream({"open": "memory"})
        ours = Ours(factstr.MemoryStore())
    else:
        upstream = start_upstream({"open": "sqlite", "path": str(tmp_path / "u.db")})
        ours = Ours(factstr.SqliteStore(tmp_path / "o.db"))
    program = Program(upstream, ours, Steering(kind))
    payload = {
        "big": 2**64 - 1,
        "neg": -(2**63),
        "tiny": 1e-7,
        "huge": 3.5e20,
        "s": 'q"\\\n日本',
        "b": [True, 0, 1, None],
    }
    program.run({"op": "append", "events": [{"type": "A", "payload": payload}]})
    program.run({"op": "query", "query": {"filters": [{"payload_predicates": [{"b": [True]}]}]}})
    program.run({"op": "query", "query": {"filters": [{"payload_predicates": [{"b": [1]}]}]}})
    program.run(
        {
            "op": "query",
            "query": {"filters": [{"payload_predicates": [{"big": 2**64 - 1, "tiny": 1e-7}]}]},
        }
    )
    program.ours.close()
    program.upstream.close()
