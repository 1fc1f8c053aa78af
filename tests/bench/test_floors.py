"""The benchmark floors are honest (issue 12): each reads a decision's context through an index
on the context key, its conditional append refuses a stale version, and its bulk fill writes the
same facts as appending would. PostgreSQL through the suite's server; SQLite in a temporary file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from bench.subject import ENROLLED
from bench.subjects.floor_postgres import CONTEXT, UPSTREAM_PG_SCHEMA, PgFloorSession
from bench.subjects.floor_sqlite import CONTEXT_WHERE, SqliteFloorSession


def test_sqlite_floor_reads_the_context_through_its_expression_index(tmp_path: Path) -> None:
    path = str(tmp_path / "floor.db")
    floor = SqliteFloorSession(path)
    try:
        floor.fill(2_000, 20)
        plan = " ".join(
            str(row[-1])
            for row in floor.db.execute(
                f"EXPLAIN QUERY PLAN SELECT sequence_number, payload FROM events "
                f"WHERE {CONTEXT_WHERE} ORDER BY sequence_number",
                ("c3", ENROLLED),
            )
        )
        assert "idx_events_course" in plan and "TEMP B-TREE" not in plan, plan
        version = floor.decide("c3")
        assert version == 1_984  # facts 4, 24, ..., 1984 (sequence numbers from 1)
        assert floor.append_if("c3", {"course": "c3"}, version)
        assert not floor.append_if("c3", {"course": "c3"}, version)  # stale now
        assert floor.append_if("c4", {"course": "c4"}, floor.decide("c4"))
    finally:
        floor.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*), MAX(sequence_number) FROM events").fetchone() == (
            2_002,
            2_002,
        )
        assert db.execute("SELECT COUNT(*) FROM append_batches").fetchone() == (4,)


def test_postgres_floor_reads_the_context_through_a_btree_index(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(UPSTREAM_PG_SCHEMA)
    floor = PgFloorSession(postgres_url)
    try:
        floor.fill(2_000, 20)
        floor.db.execute("SET enable_seqscan = off")  # a tiny table: ask which index serves it
        plan = " ".join(
            str(row[0]) for row in floor.db.execute(f"EXPLAIN {CONTEXT}", ("c3", ENROLLED))
        )
        assert "idx_events_course" in plan, plan  # (the planner may still sort ~100 rows)
        version = floor.decide("c3")
        assert version == 1_984
        assert floor.append_if("c3", {"course": "c3"}, version)
        assert not floor.append_if("c3", {"course": "c3"}, version)  # stale now
        assert floor.db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        indexes = {
            row[0]
            for row in floor.db.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'events'"
            )
        }
        assert not any("gin" in d.lower() for d in indexes), indexes
    finally:
        floor.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_factstr_bulk_fill_equals_appending(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import factstr

    from bench.subjects.factstr_stores import FactstrSession

    def open_store(name: str) -> factstr.EventStore:
        if kind == "sqlite":
            return factstr.SqliteStore(str(tmp_path / f"{name}.db"))
        server = request.getfixturevalue("postgres_server")
        return factstr.PostgresStore(server.url_for(server.create_database(name)))

    bulk, appended = FactstrSession(open_store("bulk")), FactstrSession(open_store("appended"))
    try:
        bulk.fill(2_500, 25)
        super(FactstrSession, appended).fill(2_500, 25)  # the default: batches of 1,000
        everything = factstr.EventQuery.all()
        left = bulk.store.query(everything).event_records
        right = appended.store.query(everything).event_records
        assert [(r.sequence_number, r.event_type, r.payload) for r in left] == [
            (r.sequence_number, r.event_type, r.payload) for r in right
        ]
        assert bulk.decide("c7") == appended.decide("c7") == 2_483
    finally:
        bulk.close()
        appended.close()
