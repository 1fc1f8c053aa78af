"""Group commit (issue 12, item 3): many writers of one process against the single-writer floor.

Measured by `bench/group_commit.py` (its own script, owned by the group-commit work); this hook
runs it as a child process when it exists and takes its rows. The contract: the script accepts
`--json PATH` (and `--smoke` in smoke mode) and writes `{"results": [row, ...]}`, each row with
the fields of `bench.report.Result` (scenario, case, group, subject, role, value, unit, and
optionally higher_is_better, extra, note). Anything else it writes is kept under the run's
`group_commit_raw`; a missing script is a note, not a failure."""

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
FIELDS = ("scenario", "case", "group", "subject", "role", "value", "unit")

#: What the script wrote, for the JSON document (filled by `group_commit`).
raw: dict[str, Any] = {}
notes: list[str] = []


def group_commit(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    if not SCRIPT.exists():
        notes.append(f"group commit: {SCRIPT.name} is not in this checkout: not measured")
        return []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "group_commit.json"
        command = [sys.executable, str(SCRIPT), "--json", str(out)]
        if sizes.mode == "smoke":
            command.append("--smoke")
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        raw["stdout_tail"] = done.stdout[-4000:]
        raw["returncode"] = done.returncode
        if done.returncode != 0 or not out.exists():
            notes.append(
                f"group commit: {SCRIPT.name} failed (exit {done.returncode}): "
                f"{done.stderr.strip()[-300:]}"
            )
            return []
        document = json.loads(out.read_text())
    raw["document"] = document
    rows = document.get("results") if isinstance(document, dict) else None
    results: list[Result] = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and all(k in row for k in FIELDS):
            results.append(
                Result(
                    *(row[k] for k in FIELDS),
                    higher_is_better=bool(row.get("higher_is_better", True)),
                    extra=dict(row.get("extra") or {}),
                    note=str(row.get("note", "")),
                )
            )
    if not results:
        notes.append(f"group commit: {SCRIPT.name} wrote no rows in the expected form (see JSON)")
    return results
