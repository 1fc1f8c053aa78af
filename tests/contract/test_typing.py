"""Issue 16, item 5: what the stubs let type checkers catch. A small program of calls a user
writes is checked with mypy --strict (and pyright, when it is installed); the lines marked
`# E` must be flagged, every other line must pass: payloads typed as JSON (TypedDicts and
`dict[str, object]` still fit, anything goes with `default=`), a bare `str` where a list of
event types is taken flagged as it is refused at run time, and payloads read back usable
without narrowing."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The project's mypy cache (the stdlib's and factstr's entries are shared with `mypy --strict
# python tests examples`), so that the check takes seconds, not a cold start.
MYPY_CACHE = Path(__file__).resolve().parents[2] / ".mypy_cache"

CASES = """\
import dataclasses
import datetime
from typing import TypedDict

from factstr import EventFilter, EventQuery, EventRecord, NewEvent, json_default


class Opened(TypedDict):
    course: str
    seats: int


@dataclasses.dataclass
class Moved:
    at: datetime.datetime


counts: dict[str, int] = {"a": 1}
names: list[str] = ["CourseOpened"]
loose: dict[str, object] = {"a": 1}
now = datetime.datetime.now(datetime.timezone.utc)
NewEvent("CourseOpened", {"course": "c1", "tags": ["a"], "n": 3, "r": 0.5, "ok": True, "x": None})
NewEvent("CourseOpened", counts)
NewEvent("CourseOpened", loose)
NewEvent("CourseOpened", Opened(course="c1", seats=3))
NewEvent("CourseOpened", [1, "x", (2, 3.5), {"k": [None]}])
NewEvent("CourseOpened", "text")
NewEvent("CourseOpened", Moved(now), default=json_default)
NewEvent("CourseOpened", {"at": now}, default=json_default)
NewEvent("CourseOpened", {1, 2}, default=list)
EventFilter(["CourseOpened"], [{"course": "c1"}])
EventFilter(("CourseOpened", "CourseClosed"))
EventFilter(names, None)
EventFilter(None, [counts, Opened(course="c1", seats=3)])
EventQuery([EventFilter(names)]).with_filters([EventFilter()])
EventQuery.for_event_types(["CourseOpened"])
record = EventRecord(1, now, "CourseOpened", {"seats": 3})
seats: int = record.payload["seats"]
first: str = NewEvent("CourseOpened", ["a"]).payload[0]
NewEvent("CourseOpened", Moved(now))  # E
NewEvent("CourseOpened", now)  # E
NewEvent("CourseOpened", {1: "x"})  # E
NewEvent("CourseOpened", {"a", "b"})  # E
NewEvent("CourseOpened", object())  # E
NewEvent("CourseOpened", [object()])  # E
NewEvent("CourseOpened", {"a": 1}, default=3)  # E
EventRecord(1, now, "CourseOpened", now)  # E
EventFilter("CourseOpened")  # E
EventFilter(event_types="CourseOpened")  # E
EventFilter(None, {"course": "c1"})  # E
EventFilter(None, [now])  # E
EventQuery.for_event_types("CourseOpened")  # E
"""


def _expected_lines() -> set[int]:
    return {n for n, line in enumerate(CASES.splitlines(), 1) if line.endswith("# E")}


def _write_cases(tmp_path: Path) -> Path:
    path = tmp_path / "typing_cases.py"
    path.write_text(CASES)
    return path


def test_the_cases_run_as_marked() -> None:
    """The marked lines really fail at run time too (except the ones that only a checker can
    see: a payload that `default` would have handled), and the others really run."""
    namespace: dict[str, object] = {}
    lines = CASES.splitlines()
    expected = _expected_lines()
    header_end = next(i for i, line in enumerate(lines) if line.startswith("NewEvent("))
    exec("\n".join(lines[:header_end]), namespace)
    for number, line in enumerate(lines[header_end:], header_end + 1):
        if number in expected:
            with pytest.raises((TypeError, ValueError)):
                exec(line, namespace)
        else:
            exec(line, namespace)


def test_mypy_flags_exactly_the_marked_lines(tmp_path: Path) -> None:
    path = _write_cases(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--show-column-numbers",
         "--cache-dir", str(MYPY_CACHE), str(path)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    flagged = {
        int(m.group(1))
        for m in re.finditer(r"^[^:\n]*typing_cases\.py:(\d+):\d+: error:", done.stdout, re.M)
    }
    assert flagged == _expected_lines(), done.stdout + done.stderr


def _pyright_runs() -> bool:
    return importlib.util.find_spec("pyright") is not None and shutil.which("node") is not None


@pytest.mark.skipif(not _pyright_runs(), reason="pyright (pip install pyright) or node missing")
def test_pyright_flags_exactly_the_marked_lines(tmp_path: Path) -> None:
    path = _write_cases(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable, str(path)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    report = json.loads(done.stdout)
    flagged = {
        d["range"]["start"]["line"] + 1
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    }
    assert flagged == _expected_lines(), json.dumps(report["generalDiagnostics"], indent=1)
