"""Group commit (issue 12, item 3): many writers of one process against the single-writer floor.

Measured by `bench/group_commit.py` (a script of its own, owned by the group-commit work); this
hook runs it as a child process when it exists and turns what it writes with `--json PATH`
(`{"backends": {"sqlite"|"postgres": {subject: {"commits_per_second", "ratio_to_floor",
"p50_ms", "p99_ms", ...}}}}`) into rows. The ratio is the script's own (each round's rate over
the floor's in the same round, median over rounds). Its whole output is kept under the run's
`group_commit_raw`. A missing script is a note; a script that is there and crashes (or writes
nothing usable) gives a failed factstr row, so the run's exit status, and CI, show it."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.report import Result
from bench.sizes import Sizes
from bench.subject import Subject

SCRIPT = Path(__file__).resolve().parent.parent / "group_commit.py"
SCENARIO = "GC"
GROUPS = {"sqlite": "SQLite", "postgres": "Server"}
#: (--seconds, --rounds) per mode: the script's own defaults (3 s, 3 rounds) for full runs.
TIMES = {"smoke": ("0.3", "1"), "quick": ("1", "2"), "full": ("3", "3"), "reference": ("3", "3")}

#: What the script wrote, for the JSON document, and notes for the run (filled by the hook).
raw: dict[str, Any] = {}
notes: list[str] = []


def is_goal_row(row: Result) -> bool:
    """The rows issue 12's goal is about (>= 5x the floor): many writers, not one."""
    return (
        row.scenario == SCENARIO
        and row.role == "factstr"
        and not row.subject.endswith(" x1")
        and not row.failed
    )


def group_commit(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    if not SCRIPT.exists():
        notes.append(f"group commit: bench/{SCRIPT.name} is not in this checkout: not measured")
        return []
    seconds, rounds = TIMES.get(sizes.mode, TIMES["full"])
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "group_commit.json"
        command = [sys.executable, str(SCRIPT), "--json", str(out)]
        command += ["--seconds", seconds, "--rounds", rounds]
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        raw["command"] = " ".join(command[1:])
        raw["stdout"] = done.stdout[-6000:]
        raw["returncode"] = done.returncode
        if done.returncode != 0 or not out.exists():
            return [
                _failed(
                    f"bench/{SCRIPT.name} failed (exit {done.returncode}): "
                    f"{done.stderr.strip()[-300:]}"
                )
            ]
        document = json.loads(out.read_text())
    raw["document"] = document
    results: list[Result] = []
    backends = document.get("backends") if isinstance(document, dict) else None
    for backend, rows in (backends or {}).items():
        for name, row in rows.items():
            floor = name.startswith("floor")
            result = Result(
                SCENARIO,
                f"single-event appends, many writers, {seconds} s x {rounds} rounds",
                GROUPS.get(backend, backend),
                name if floor else f"factstr {name.removeprefix('factstr ')}",
                "floor" if floor else "factstr",
                float(row["commits_per_second"]),
                "commits/s",
                extra={k: float(row[k]) for k in ("p50_ms", "p99_ms") if k in row},
                note="ratio: the script's, against the floor of the same round",
            )
            # The script's ratio is factstr's rate over the floor's; report.fill_ratios leaves
            # these rows alone only if they carry it (several factstr rows share a case).
            result.ratio = float(row.get("ratio_to_floor", float("nan")))
            results.append(result)
    if not results:
        return [_failed(f"bench/{SCRIPT.name} wrote no rows in the expected form")]
    return results


def _failed(why: str) -> Result:
    """The row that says the script broke: role factstr, so the run exits with 1."""
    return Result(
        SCENARIO,
        "single-event appends, many writers",
        "SQLite, Server",
        "factstr (bench/group_commit.py)",
        "factstr",
        float("nan"),
        "commits/s",
        failed=why,
    )
