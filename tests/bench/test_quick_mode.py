"""The benchmarks' quick mode, what CI runs (issue 12): its sizes and durable PostgreSQL stay what
bench/README.md says, scripts/check.sh runs it, a crashing group-commit script fails the run,
and the closing table shows factstr against each floor. No benchmark runs here."""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from bench import servers
from bench.report import Result, fill_ratios, floor_table
from bench.run import exit_status
from bench.scenarios import SCENARIOS, group_commit_hook
from bench.sizes import QUICK
from tests.postgres_server import URL_ENV

REPO = Path(__file__).resolve().parents[2]


def _quick_section() -> str:
    text = (REPO / "bench" / "README.md").read_text()
    section = text.split("## The quick mode (what CI runs)", 1)[1]
    return section.split("\n## ", 1)[0]


def test_quick_sizes_are_the_ones_bench_readme_states() -> None:
    section = " ".join(_quick_section().split())  # the Markdown's line breaks do not matter
    stated = {
        f"**{QUICK.history:,}** facts",
        f"**{QUICK.small_store:,} and {QUICK.large_store:,}** facts",
        "contexts of ~100 facts",
        f"reads {QUICK.read_records:,} records",
        f"S5 makes {QUICK.stream_rounds} round trips",
        f"S7 runs {QUICK.workers} processes of {QUICK.worker_ops} decisions",
        f"**{QUICK.repeats} rounds**",
        f"{QUICK.append_budget:g} s per subject for S1 and S2 and per store size for S3",
        f"{QUICK.vacuum_seconds:g} s per subject and setting",
        "group commit {} s x {} rounds".format(*group_commit_hook.TIMES["quick"]),
    }
    missing = [s for s in stated if s not in section]
    assert not missing, f"bench/README.md's quick-mode section does not say: {missing}"
    assert QUICK.budget == QUICK.append_budget  # the README states one window for S1-S3
    # S1/S2 append to a store in use, and S3's stores are ones where contexts hold ~100 facts
    # (fixtures.filled: total / 100 courses) and the large one is larger
    assert QUICK.history >= 10_000 and QUICK.small_store >= 10_000
    assert QUICK.large_store > QUICK.small_store
    assert QUICK.repeats >= 2  # subjects in turns: A, B, A, B at least


def test_bench_postgres_is_a_durable_cluster_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []

    class Recorded:
        def __init__(self, **options: Any) -> None:
            made.append(options)

        def sql(self, statement: str) -> str:
            return "1"

        def close(self) -> None:
            pass

    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.setattr(servers, "ThrowawayCluster", Recorded)
    environment = servers.Environment()
    try:
        assert isinstance(environment.postgres, Recorded)
    finally:
        environment.close()
    assert made == [{"durable": True}]  # fsync, synchronous_commit, full_page_writes on
    # the group-commit script starts its own cluster: durable too
    assert "ThrowawayCluster(durable=True)" in (REPO / "bench" / "group_commit.py").read_text()


def _bench_commands(script: Path) -> list[list[str]]:
    """The uncommented lines of `script` that run something under bench/, as words."""
    lines = [line.split("#", 1)[0].strip() for line in script.read_text().splitlines()]
    return [shlex.split(line) for line in lines if "bench/" in line and ".py" in line]


def test_ci_runs_the_quick_mode_of_every_scenario_into_bench_results_ci() -> None:
    commands = _bench_commands(REPO / "scripts" / "check.sh")
    runs = [c for c in commands if "bench/run.py" in c]
    assert runs == [
        ["nice", "-n", "10", "$PY", "bench/run.py", "--quick", "--output", "$ROOT/bench/results/ci"]
    ]  # every scenario (no --only), every group (no --groups), nothing under docs/
    aio = [c for c in commands if "bench/aio.py" in c]
    assert len(aio) == 1 and "--quick" in aio[0] and "$ROOT/bench/results/ci" in aio[0]
    assert not any("--smoke" in c for c in commands)
    assert re.search(r"^exec bash scripts/check\.sh$", (REPO / ".ci" / "run").read_text(), re.M)
    assert {"s1", "s2", "s3", "s9", "group"} <= set(SCENARIOS)


def test_a_crashing_group_commit_script_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(group_commit_hook, "raw", {})
    monkeypatch.setattr(group_commit_hook, "notes", [])
    script = tmp_path / "group_commit.py"
    script.write_text("import sys\nsys.exit('boom')\n")
    monkeypatch.setattr(group_commit_hook, "SCRIPT", script)
    rows = group_commit_hook.group_commit([], QUICK)
    assert len(rows) == 1 and rows[0].role == "factstr" and "boom" in rows[0].failed
    assert not group_commit_hook.is_goal_row(rows[0])  # the reference run says "not measured"
    assert exit_status(rows) == 1
    assert floor_table(rows).splitlines()[1].split()[-3:] == ["FAILED"] * 3
    # a baseline's failure does not fail the run, and a checkout without the script only notes it
    floor = Result("S2", "single", "Server", "floor: psycopg", "floor", math.nan, "", failed="x")
    assert exit_status([floor]) == 0
    monkeypatch.setattr(group_commit_hook, "SCRIPT", tmp_path / "absent.py")
    assert group_commit_hook.group_commit([], QUICK) == []
    assert "not measured" in group_commit_hook.notes[0]


def _row(case: str, group: str, subject: str, role: str, value: float) -> Result:
    return Result("S3", case, group, subject, role, value, "ops/s")


def test_the_closing_table_shows_factstr_over_each_floor_per_group() -> None:
    results = [
        _row("10k", "SQLite", "factstr SqliteStore", "factstr", 300.0),
        _row("10k", "SQLite", "floor: python sqlite3", "floor", 200.0),
        _row("10k", "SQLite", "some peer", "peer", 100.0),
        _row("10k", "Server", "factstr PostgresStore", "factstr", 100.0),
        _row("10k", "Server", "floor: psycopg", "floor", 125.0),
        _row("50k", "Server", "factstr PostgresStore", "factstr", math.nan),
        _row("50k", "Server", "floor: psycopg", "floor", 125.0),
    ]
    results[5].failed = "conflicts with no other writer"
    gc = Result("GC", "many writers", "Server", "factstr x16", "factstr", 900.0, "commits/s")
    gc.ratio = 7.5
    gc_floor = Result("GC", "many writers", "Server", "floor (psycopg)", "floor", 120.0, "c/s")
    gc_floor.ratio = 1.0
    fill_ratios(results)
    lines = floor_table([*results, gc, gc_floor]).splitlines()
    assert lines[0].split() == ["case", "Memory", "SQLite", "Server"]
    assert lines[1].split() == ["S3", "10k", "-", "1.50", "0.80"]  # peers are not floors
    assert lines[2].split() == ["S3", "50k", "-", "-", "FAILED"]
    assert lines[3].split()[-3:] == ["-", "-", "7.50"] and "factstr x16" in lines[3]
    assert len(lines) == 4  # the group-commit floor's own 1.00 is not a line
