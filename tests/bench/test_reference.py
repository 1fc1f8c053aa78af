"""The reference run's document (bench/reference.py): goals judged from same-run ratios, and
the chart and Markdown written from them, without running a benchmark."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from bench.reference import Goal, goals, svg
from bench.report import Result, fill_ratios
from bench.sizes import SMOKE


def _row(scenario: str, case: str, group: str, subject: str, role: str, value: float) -> Result:
    unit = "ms p99.9" if scenario == "S9" else "ops/s"
    return Result(scenario, case, group, subject, role, value, unit, scenario != "S9")


def test_goals_come_from_same_run_ratios_and_the_chart_is_valid_svg() -> None:
    small = f"append_if ~100-fact context, {SMOKE.small_store:,} facts"
    results = [
        _row("S3", small, "SQLite", "factstr SqliteStore", "factstr", 300.0),
        _row("S3", small, "SQLite", "floor: python sqlite3", "floor", 200.0),
        _row("S3", small, "Server", "factstr PostgresStore", "factstr", 100.0),
        _row("S3", small, "Server", "floor: psycopg", "floor", 125.0),
        _row("S3", small, "Server", "UmaDB (gRPC server)", "peer", 50.0),
        _row("S9", "single appends, autovacuum forced", "Server", "factstr PostgresStore",
             "factstr", 1000.0),
    ]  # fmt: skip
    fill_ratios(results)
    found = {g.what: g for g in goals(SMOKE, results)}
    assert found[f"S3 SQLite, {SMOKE.small_store:,} facts: vs the floor"].met is True
    postgres_floor = found[f"S3 PostgreSQL, {SMOKE.small_store:,} facts: vs the floor"]
    assert postgres_floor.measured == 0.8 and postgres_floor.met is False
    assert found[f"S3 PostgreSQL, {SMOKE.small_store:,} facts: vs UmaDB"].met is True  # 2.0x
    dcb = found[f"S3 PostgreSQL, {SMOKE.small_store:,} facts: vs eventsourcing DCB"]
    assert dcb.measured is None and dcb.met is None  # not in this run: said, not guessed
    assert found["group commit: 16 threads vs the single-writer floor"].met is None
    stall = found["S9 PostgreSQL: p99.9 append latency under autovacuum"]
    assert stall.met is False and stall.score == 0.05
    drawn = ElementTree.fromstring(svg(list(found.values()), "t"))
    texts = [t.text or "" for t in drawn.iter("{http://www.w3.org/2000/svg}text")]
    assert "0.80x (goal ≥ 1x)" in texts and "not measured" in texts
    assert Goal("x", 50.0, 10.0, "ms", True).met is True
