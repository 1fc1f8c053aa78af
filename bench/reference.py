"""The reference run (`bench/run.py --reference`): what docs/benchmarks.md shows. Writes
docs/benchmarks.json (every row, the machine, the settings), docs/benchmarks.svg (the goals as
bars, written by hand: no plotting library needed) and docs/benchmarks.md (the figures beside
the goals of issue 12, the machine and load during the run, the settings, how to rerun).

Every goal is a ratio measured in the same run (subjects in turns), except S9's, which is a
latency bound."""

from __future__ import annotations

import json
import math
import os
import platform
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.report import Result
from bench.scenarios import group_commit_hook
from bench.servers import env
from bench.sizes import Sizes

DOCS = Path(__file__).resolve().parent.parent / "docs"
COMMAND = "nice -n 10 .venv/bin/python bench/run.py --reference"


class LoadSampler:
    """The 1-minute load average every 10 s while the run goes (a thread; `stop()` ends it)."""

    def __init__(self, every: float = 10.0) -> None:
        self.samples: list[float] = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> None:
        self._stop.set()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        return {
            "min": min(self.samples),
            "mean": sum(self.samples) / len(self.samples),
            "max": max(self.samples),
            "samples": len(self.samples),
        }


def machine() -> dict[str, Any]:
    model = ""
    memory_gib = float("nan")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 1024**2
                break
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gib": round(memory_gib, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def settings() -> dict[str, Any]:
    """The stores' settings as the servers report them (call while the run's server is up)."""
    pg: dict[str, str] = {}
    for name in (
        "server_version",
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_level",
        "shared_buffers",
        "deadlock_timeout",
        "autovacuum",
        "autovacuum_naptime",
    ):
        try:
            pg[name] = env().postgres.sql(f"SHOW {name}")
        except Exception as exc:  # the run goes on; the document says what was not found
            pg[name] = f"unknown ({type(exc).__name__})"
    pg["server"] = "the run's own throwaway cluster" if env().pg_throwaway else "external"
    return {
        "postgresql": pg,
        "sqlite": {
            "version": sqlite3.sqlite_version,
            "journal_mode": "WAL",
            "synchronous": "FULL (factstr's default, and the floor's)",
        },
        "packages": {p: _version(p) for p in ("factstr", "psycopg", "eventsourcing", "umadb")},
        "umadb_log": env().uma_sync_line,
    }


# -- goals ---------------------------------------------------------------------------------------


@dataclass
class Goal:
    what: str
    target: float
    measured: float | None  # None: not measured in this run
    unit: str  # "x" (factstr's speed / the subject's) or "ms"
    lower_is_better: bool = False

    @property
    def met(self) -> bool | None:
        if self.measured is None or math.isnan(self.measured):
            return None
        if self.lower_is_better:
            return self.measured < self.target
        return self.measured >= self.target

    @property
    def score(self) -> float | None:
        """How far along the goal the measurement is: 1.0 = exactly met, higher = better."""
        if self.measured is None or math.isnan(self.measured) or self.measured <= 0:
            return None
        return self.target / self.measured if self.lower_is_better else self.measured / self.target


def _ratio(results: list[Result], scenario: str, case: str, subject: str) -> float | None:
    for r in results:
        if r.scenario == scenario and r.case.startswith(case) and r.subject == subject:
            return r.ratio
    return None


def goals(sizes: Sizes, results: list[Result]) -> list[Goal]:
    found: list[Goal] = []
    for total in (sizes.small_store, sizes.large_store):
        case = f"append_if ~100-fact context, {total:,} facts"
        label = f"{total:,}" if total < 1_000_000 else f"{total // 1_000_000}M"
        for store, floor in (("SQLite", "floor: python sqlite3"), ("PostgreSQL", "floor: psycopg")):
            found.append(
                Goal(
                    f"S3 {store}, {label} facts: vs the floor",
                    1.0,
                    _ratio(results, "S3", case, floor),
                    "x",
                )
            )
        for peer in ("UmaDB (gRPC server)", "eventsourcing PostgresDCBRecorderTT"):
            short = "UmaDB" if peer.startswith("UmaDB") else "eventsourcing DCB"
            found.append(
                Goal(
                    f"S3 PostgreSQL, {label} facts: vs {short}",
                    1.5,
                    _ratio(results, "S3", case, peer),
                    "x",
                )
            )
    group_rows = [r for r in results if group_commit_hook.is_goal_row(r)]
    for r in group_rows:
        store = "SQLite" if r.group == "SQLite" else "PostgreSQL"
        found.append(
            Goal(f"group commit {store}, {r.subject}: vs 1-writer floor", 5.0, r.ratio, "x")
        )
    if not group_rows:
        found.append(Goal("group commit: 16 threads vs the single-writer floor", 5.0, None, "x"))
    for r in results:
        if r.scenario == "S9" and "forced" in r.case and r.role == "factstr":
            found.append(
                Goal(
                    "S9 PostgreSQL: p99.9 append latency under autovacuum",
                    50.0,
                    r.value,
                    "ms",
                    True,
                )
            )
    return found


# -- chart ---------------------------------------------------------------------------------------


def svg(found: list[Goal], title: str) -> str:
    """Horizontal bars, one per goal: the measurement as a fraction of its goal on a log scale
    (the goal line at 1; green met, red missed, grey not measured)."""
    row, left, width, top = 26, 390, 420, 48
    low, high = 0.1, 10.0
    height = top + row * len(found) + 40

    def x(score: float) -> float:
        clamped = min(max(score, low), high)
        return left + width * (math.log10(clamped) - math.log10(low)) / (
            math.log10(high) - math.log10(low)
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 190}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
        '<text x="10" y="38" fill="#555">bar: measured / goal, log scale (right of the line: '
        "goal met)</text>",
    ]
    for tick in (0.1, 0.25, 0.5, 1, 2, 4, 10):
        tx = x(tick)
        colour = "#000" if tick == 1 else "#ddd"
        parts.append(
            f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{top + row * len(found)}" '
            f'stroke="{colour}"/>'
        )
        parts.append(
            f'<text x="{tx:.1f}" y="{top + row * len(found) + 14}" text-anchor="middle" '
            f'fill="#555">{tick:g}</text>'
        )
    for i, goal in enumerate(found):
        y = top + i * row
        parts.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{escape(goal.what)}</text>'
        )
        score = goal.score
        if score is None:
            parts.append(f'<text x="{left + 4}" y="{y + 16}" fill="#888">not measured</text>')
            continue
        colour = "#2ca02c" if goal.met else "#d62728"
        parts.append(
            f'<rect x="{left}" y="{y + 5}" width="{x(score) - left:.1f}" height="15" fill="{colour}"/>'
        )
        target = f"&lt; {goal.target:g} ms" if goal.lower_is_better else f"&#8805; {goal.target:g}x"
        shown = f"{goal.measured:.1f} ms" if goal.unit == "ms" else f"{goal.measured:.2f}x"
        parts.append(f'<text x="{left + width + 8}" y="{y + 16}">{shown} (goal {target})</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# -- document ------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _figures(results: list[Result]) -> list[str]:
    lines: list[str] = []
    previous = ""
    for r in results:
        label = f"{r.scenario} {r.case}"
        if label != previous:
            lines += [
                "",
                f"**{label}**",
                "",
                "| store | subject | value | factstr x | p50 ms | p99 ms | p99.9 ms | other |",
                "|---|---|---:|---:|---:|---:|---:|---|",
            ]
            previous = label
        extra = dict(r.extra)
        p = [extra.pop(k, float("nan")) for k in ("p50_ms", "p99_ms", "p99.9_ms")]
        other = ", ".join(f"{k} {_fmt(v)}" for k, v in extra.items())
        if r.note:
            other = f"{other}; {r.note}" if other else r.note
        if r.failed:
            other = f"**FAILED: {r.failed}** {other}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        lines.append(
            f"| {r.group} | {r.subject} | {_fmt(r.value)} {r.unit} | {ratio} | "
            f"{_fmt(p[0])} | {_fmt(p[1])} | {_fmt(p[2])} | {other} |"
        )
    return lines


def markdown(document: dict[str, Any], found: list[Goal], note: str) -> str:
    m, s, sizes, load = (
        document["machine"],
        document["settings"],
        document["sizes"],
        document["load_average"],
    )
    pg = s.get("postgresql", {})
    lines = ["# Benchmarks: the reference run", ""]
    if note:
        lines += [f"> **{note}**", ""]
    lines += [
        f"Run {document['finished_utc']} in {document['seconds'] / 60:.1f} min by `{COMMAND}` "
        "(see [How to rerun](#how-to-rerun)). Every ratio is factstr's speed divided by the "
        "subject's, both measured in this run with subjects taking turns (A, B, A, B), so a "
        "busy moment of the shared machine hits both alike: `2.00` means factstr twice as fast.",
        "",
        "![goals of issue 12, measured](benchmarks.svg)",
        "",
        "## Goals (issue 12)",
        "",
        "| goal | target | measured | met |",
        "|---|---:|---:|:---:|",
    ]
    for g in found:
        target = f"< {g.target:g} ms" if g.lower_is_better else f">= {g.target:g}x"
        measured = (
            "not measured"
            if g.measured is None
            else f"{g.measured:.1f} ms"
            if g.unit == "ms"
            else f"{g.measured:.2f}x"
        )
        met = {True: "yes", False: "**no**", None: "-"}[g.met]
        lines.append(f"| {g.what} | {target} | {measured} | {met} |")
    lines += [
        "",
        "## Machine and settings",
        "",
        f"- Machine: {m['nproc']} CPUs (`nproc`), {m['cpu']}, {m['memory_gib']} GiB memory; "
        f"{m['platform']}; Python {m['python']}.",
        f"- Load average (1 min) during the run: min {load['min']:.1f}, mean {load['mean']:.1f}, "
        f"max {load['max']:.1f} ({load['samples']} samples). The machine is shared: above "
        f"{m['nproc']} other work competed for the CPUs, which is why only same-run ratios are "
        "reported.",
        f"- PostgreSQL {pg.get('server_version', '?')} ({pg.get('server', '?')}): "
        f"fsync={pg.get('fsync')}, synchronous_commit={pg.get('synchronous_commit')}, "
        f"full_page_writes={pg.get('full_page_writes')}, wal_level={pg.get('wal_level')}, "
        f"shared_buffers={pg.get('shared_buffers')}, deadlock_timeout={pg.get('deadlock_timeout')}; "
        "every commit waits for its WAL flush (durable, as users run it). Client and server on "
        "the same machine (TCP on 127.0.0.1).",
        f"- SQLite {s['sqlite']['version']}: WAL, synchronous=FULL for factstr and the floor "
        "(fsync at every commit).",
        f"- UmaDB: server defaults; its log says: `{s.get('umadb_log') or 'not reported'}`.",
        "- Packages: " + ", ".join(f"{k} {v}" for k, v in s["packages"].items()) + ".",
        "",
        "## Sizes and payloads",
        "",
        f"- S1/S2 append to a store already holding {sizes['history']:,} facts: batches of 100 "
        "(S1) and single events (S2), about 130-byte JSON payloads with a unique value "
        "(`student`), a repeated one (`course`, 1,000 values) and a small nested object.",
        f"- S3, a decision: read the context (the facts of one course, event type and payload "
        f"key `course`) into Python objects, then a conditional append on its version. Stores of "
        f"{sizes['small_store']:,} and {sizes['large_store']:,} facts, contexts of ~100 facts in "
        f"both ({sizes['small_store'] // 100:,} and {sizes['large_store'] // 100:,} courses); "
        "fill payloads `{course, student (unique), amount (97 values)}`; courses visited in a "
        "scattered order. Each subject gets "
        f"{sizes['budget']:g} s per store size in {sizes['repeats']} turns.",
        f"- S9: single appends to a store of {sizes['vacuum_store']:,} facts for "
        f"{sizes['vacuum_seconds']:g} s per subject and setting, with autovacuum forced onto "
        "`events` (the run's cluster at `autovacuum_naptime = 1s`, the table at thresholds of "
        "100 rows) and with autovacuum off for the table; `autovacuum_cancelled` counts the "
        "server log's 'canceling autovacuum task' lines (a writer waited `deadlock_timeout` "
        "for it).",
        "- Stores are filled (not timed) through each subject's bulk path: factstr's import "
        "path, one executemany (SQLite) or COPY (PostgreSQL) transaction for the floors, "
        "batches of 1,000 for the peers.",
        "",
        "## The floors",
        "",
        "- SQLite: Python's `sqlite3`, WAL, synchronous=FULL, an expression index on "
        "`json_extract(payload, '$.course'), event_type`; a decision is one SELECT of the "
        "context, then BEGIN IMMEDIATE, the version re-read by the index, INSERT, COMMIT "
        "(`bench/subjects/floor_sqlite.py`).",
        "- PostgreSQL: psycopg, a B-tree expression index on "
        "`(payload->>'course'), event_type, sequence_number` (no GIN index); a decision is one "
        "SELECT of the context, then BEGIN with a transaction-scoped advisory lock (writers "
        "serialised), one INSERT that re-checks the version, numbers and writes the batch row, "
        "COMMIT (`bench/subjects/floor_postgres.py`).",
        "",
        "## How to rerun",
        "",
        "```sh",
        "bash scripts/setup.sh && .venv/bin/pip install -r bench/requirements.txt",
        COMMAND,
        "```",
        "",
        "It starts its own durable PostgreSQL cluster (or uses `FACTSTR_TEST_POSTGRES_URL`), "
        "UmaDB servers and temporary files, removes them afterwards, and rewrites "
        "`docs/benchmarks.md`, `docs/benchmarks.json` and `docs/benchmarks.svg`. "
        "`--only s3` (or s1, s2, s9, group) runs part of it. CI runs `bench/run.py --quick`: "
        "every scenario on every subject at smaller sizes (stores of 10,000 and 50,000 facts), "
        "figures printed, not asserted. See bench/README.md for the scenarios and subjects.",
        "",
        "## All figures",
    ]
    results = [Result(**r) for r in document["results"]]
    lines += _figures(results)
    lines += ["", "## Notes", ""]
    lines += [f"- {n}" for n in document["notes"]] or ["- none"]
    lines += ["", "Durability of each subject:", ""]
    lines += [f"- {k}: {v}" for k, v in document["durability"].items()]
    return "\n".join(lines) + "\n"


def write(
    output: Path,
    sizes: Sizes,
    results: list[Result],
    durability: dict[str, str],
    notes: list[str],
    found_settings: dict[str, Any],
    load: LoadSampler,
    seconds: float,
    note: str,
) -> list[Path]:
    found = goals(sizes, results)
    document: dict[str, Any] = {
        "command": COMMAND,
        "finished_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": seconds,
        "note": note,
        "mode": sizes.mode,
        "sizes": asdict(sizes),
        "machine": machine(),
        "load_average": load.summary(),
        "settings": found_settings,
        "ratio": "factstr's speed relative to the subject, same scenario case and store, "
        "same run (>1: factstr faster)",
        "goals": [{**asdict(g), "met": g.met} for g in found],
        "durability": durability,
        "notes": notes,
        "results": [asdict(r) for r in results],
        "group_commit_raw": group_commit_hook.raw,
    }
    output.mkdir(parents=True, exist_ok=True)
    paths = [output / "benchmarks.json", output / "benchmarks.svg", output / "benchmarks.md"]
    paths[0].write_text(json.dumps(document, indent=2, default=str) + "\n")
    paths[1].write_text(svg(found, f"factstr: issue 12's goals ({document['finished_utc']})"))
    paths[2].write_text(markdown(document, found, note))
    return paths
