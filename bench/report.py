"""Results: one row per (scenario case, subject), ratios against factstr in the same run and
group, printed as a table and written as JSON and a PNG chart."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.sizes import Sizes


@dataclass
class Result:
    scenario: str  # "S1"
    case: str  # "batch of 100", "1,000,000 facts", "other process", ...
    group: str  # "Memory", "SQLite", "Server"
    subject: str
    role: str  # "factstr", "floor", "peer"
    value: float
    unit: str  # "events/s", "ms p50", ...
    higher_is_better: bool = True
    extra: dict[str, float] = field(default_factory=dict)
    note: str = ""
    failed: str = ""  # set: the scenario failed for this subject (printed loudly)
    ratio: float | None = None  # factstr's speed relative to this subject (>1: factstr is faster)


def fill_ratios(results: list[Result]) -> None:
    """ratio = how many times faster factstr is than the row's subject, same case and group.
    Rows that come with a ratio of their own (the group-commit script's) keep it."""
    for r in results:
        if r.ratio is not None:
            continue
        ours = next(
            (
                o
                for o in results
                if o.role == "factstr"
                and o.group == r.group
                and o.scenario == r.scenario
                and o.case == r.case
                and not o.failed
            ),
            None,
        )
        if ours is None or r.failed or not r.value or not ours.value or math.isnan(r.value):
            continue
        r.ratio = ours.value / r.value if r.higher_is_better else r.value / ours.value


def _number(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value == int(value) and abs(value) < 100:
        return str(int(value))
    if abs(value) < 0.1:
        return f"{value:.2g}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def table(results: list[Result]) -> str:
    """One block per scenario case; inside it one line per subject, grouped by store."""
    lines: list[str] = []
    previous = ""
    for r in results:
        label = f"{r.scenario} {r.case}"
        if label != previous:
            lines += [
                "",
                label,
                f"  {'group':<7} {'subject':<42} {'value':>12} {'unit':<10} {'factstr x':>9}  details",
            ]
            previous = label
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}" if r.ratio >= 0.1 else f"{r.ratio:.3g}"
        details = " ".join(f"{k}={_number(v)}" for k, v in r.extra.items())
        if r.note:
            details = f"{details} {r.note}".strip()
        if r.failed:
            details = f"*** FAILED: {r.failed} *** {details}"
        lines.append(
            f"  {r.group:<7} {r.subject:<42} {_number(r.value):>12} {r.unit:<10} {ratio:>9}  {details}"
        )
    return "\n".join(lines)


GROUP_ORDER = ("Memory", "SQLite", "Server")


def floor_table(results: list[Result]) -> str:
    """The short table a CI log shows: per scenario case, factstr's speed over the floor's in
    each store group (the `factstr x` of the floor's row, so same case, same run). Cases whose
    floor ratio comes from elsewhere (the group-commit script gives one per factstr row) show
    one line per factstr row."""
    lines: dict[str, dict[str, str]] = {}
    for r in results:
        if r.role == "floor" and r.ratio is not None:
            # group commit: the floor row is the script's baseline (ratio 1.00); its factstr
            # rows carry the ratio to it
            if r.scenario == "GC":
                continue
            shown = f"{r.ratio:.2f}"
            label = f"{r.scenario} {r.case}"
        elif r.scenario == "GC" and r.role == "factstr" and r.ratio is not None:
            shown = f"{r.ratio:.2f}"
            label = f"{r.scenario} {r.subject}: {r.case}"
        elif r.role in ("factstr", "floor") and r.failed:
            shown = "FAILED"
            label = f"{r.scenario} {r.case}" if r.scenario != "GC" else f"GC {r.subject}"
        else:
            continue
        # a row of several groups (the group-commit script's failure) fills every column
        for group in GROUP_ORDER if r.group not in GROUP_ORDER else (r.group,):
            lines.setdefault(label, {})[group] = shown
    if not lines:
        return "  (no floor measured)"
    width = max(len(label) for label in lines)
    out = [f"  {'case':<{width}} " + " ".join(f"{g:>7}" for g in GROUP_ORDER)]
    for label, by_group in lines.items():
        out.append(
            f"  {label:<{width}} " + " ".join(f"{by_group.get(g, '-'):>7}" for g in GROUP_ORDER)
        )
    return "\n".join(out)


def write_json(
    path: Path, sizes: Sizes, results: list[Result], durability: dict[str, str], notes: list[str]
) -> None:
    document: dict[str, Any] = {
        "mode": sizes.mode,
        "sizes": asdict(sizes),
        "python": sys.version,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "ratio": "factstr's speed relative to the subject, same scenario case and group, same run (>1: factstr faster)",
        "durability": durability,
        "notes": notes,
        "results": [asdict(r) for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))


ROLE_COLOURS = {"factstr": "#1f77b4", "floor": "#7f7f7f", "peer": "#ff7f0e", "rust": "#2ca02c"}


def write_chart(path: Path, sizes: Sizes, results: list[Result]) -> str | None:
    """One panel per scenario case, one bar per subject (log scale); returns a note when
    matplotlib is missing instead of failing the run."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart (pip install -r bench/requirements.txt)"
    cases: dict[str, list[Result]] = {}
    for r in results:
        if not r.failed and r.value > 0 and not math.isnan(r.value):
            cases.setdefault(f"{r.scenario} {r.case} ({r.unit}, log scale)", []).append(r)
    if not cases:
        return None
    columns = 3
    rows = math.ceil(len(cases) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(22, 3.6 * rows), squeeze=False)
    for ax, (title, rows_of_case) in zip(
        axes.flat, cases.items(), strict=False
    ):  # spare axes: below
        labels = [
            f"{r.subject} ({r.group})" if r.group not in r.subject else r.subject
            for r in rows_of_case
        ]
        ax.barh(
            range(len(rows_of_case)),
            [r.value for r in rows_of_case],
            color=[ROLE_COLOURS.get(r.role, "#999999") for r in rows_of_case],
        )
        ax.set_yticks(range(len(rows_of_case)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        better = "higher is better" if rows_of_case[0].higher_is_better else "lower is better"
        ax.set_title(f"{title}\n{better}", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(cases) :]:
        ax.axis("off")
    figure.suptitle(
        f"factstr benchmarks ({sizes.mode} mode; blue factstr, grey hand-written floor, orange peers)"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return None
