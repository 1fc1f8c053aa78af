"""factstr benchmarks: factstr against the hand-written floor and the peers, every baseline
measured in the same run, results as ratios (these machines are shared and noisy).

    python bench/run.py                 # quick mode (about five minutes here; what CI runs)
    python bench/run.py --full          # 1,000,000-fact stores, more repetitions
    python bench/run.py --smoke         # tiny sizes: proves the harness runs
    python bench/run.py --only s3 --only s4 --groups sqlite,server
    python bench/run.py --reference     # the reference run: docs/benchmarks.{md,json,svg}

Prints a table, writes bench/results/results.json and bench/results/results.png (--smoke:
smoke.json/smoke.png; --reference: docs/). See bench/README.md for how to read it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the harness as the `bench` package
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import fixtures, reference
from bench.report import Result, fill_ratios, floor_table, table, write_chart, write_json
from bench.scenarios import REFERENCE_SCENARIOS, SCENARIOS, group_commit_hook
from bench.servers import close_env
from bench.sizes import FULL, QUICK, REFERENCE, SMOKE, Sizes
from bench.subjects import REFERENCE as REFERENCE_SUBJECTS
from bench.subjects import all_subjects

RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = {"memory": "Memory", "sqlite": "SQLite", "server": "Server"}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="quick mode (the default; what CI runs)")
    mode.add_argument("--full", action="store_true", help="1,000,000-fact stores, more repetitions")
    mode.add_argument(
        "--smoke", action="store_true", help="tiny sizes; only proves that every part runs"
    )
    mode.add_argument(
        "--reference",
        action="store_true",
        help="the reference run: S1, S2, S3 (10k and 1M), S9 and group commit on SQLite and "
        "PostgreSQL; writes docs/benchmarks.md, .json and .svg",
    )
    parser.add_argument(
        "--note", default="", help="--reference: a line shown at the top of docs/benchmarks.md"
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(SCENARIOS), help="run only these scenarios"
    )
    parser.add_argument(
        "--groups",
        default="memory,sqlite,server",
        help="comma-separated store groups: memory, sqlite, server (PostgreSQL and UmaDB)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="folder for the JSON and chart (default: bench/results, or docs/ with --reference)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse()
    if args.reference:
        sizes: Sizes = REFERENCE
        groups = {"SQLite", "Server"}
        chosen = args.only or list(REFERENCE_SCENARIOS)
        output = args.output or reference.DOCS
    else:
        sizes = FULL if args.full else SMOKE if args.smoke else QUICK
        groups = {GROUPS[g.strip().lower()] for g in args.groups.split(",") if g.strip()}
        chosen = args.only or list(SCENARIOS)
        output = args.output or RESULTS
    stem = "smoke" if args.smoke else "results"
    started = time.perf_counter()
    results: list[Result] = []
    load = reference.LoadSampler()
    try:
        subjects, notes = all_subjects(groups, rust=not args.reference)
        if args.reference:
            subjects = [s for s in subjects if s.name in REFERENCE_SUBJECTS]
        for name in chosen:
            began = time.perf_counter()
            results += SCENARIOS[name](subjects, sizes)
            print(f"[{name} took {time.perf_counter() - began:.1f} s]", file=sys.stderr, flush=True)
        notes += group_commit_hook.notes
        settings = reference.settings() if args.reference else {}
    finally:
        load.stop()
        fixtures.drop_all()
        close_env()
    if sizes.large_store < FULL.large_store:
        notes.append(
            f"{sizes.mode} mode: S3's large store and S6's replay use {sizes.large_store:,} facts "
            f"(full mode: {FULL.large_store:,})"
        )
    durability = {s.name: s.durability for s in subjects}

    fill_ratios(results)
    print()
    print(
        f"factstr benchmarks, {sizes.mode} mode, {time.perf_counter() - started:.0f} s. "
        "'factstr x' = factstr's speed / the subject's, same case and group, this run (>1: factstr faster)."
    )
    print(table(results))
    print("\nDurability of each subject:")
    for name, said in durability.items():
        print(f"  {name:<42} {said}")
    print("\nNotes:")
    for note in notes:
        print(f"  - {note}")
    # Last, so that it closes the run's output (the CI log): the figure a reader looks for first.
    print(
        f"\nfactstr against the floor ({sizes.mode} mode, this run, subjects in turns; not "
        "asserted: the machine is shared)\n"
        "  factstr's speed / the floor's (latency: the floor's / factstr's), >1: factstr faster; "
        "S8: iter_query over query(); GC: the script's ratio to its 1-writer floor"
    )
    print(floor_table(results))
    seconds = time.perf_counter() - started
    if args.reference:
        written = reference.write(
            output, sizes, results, durability, notes, settings, load, seconds, args.note
        )
        print("\nWrote " + ", ".join(str(p) for p in written))
    else:
        write_json(output / f"{stem}.json", sizes, results, durability, notes)
        chart_note = write_chart(output / f"{stem}.png", sizes, results)
        if chart_note:
            print(f"  - {chart_note}")
        print(f"\nWrote {output / (stem + '.json')} and {output / (stem + '.png')}")

    for r in results:
        if r.failed:
            print(f"FAILED: {r.scenario} {r.case}: {r.subject}: {r.failed}", file=sys.stderr)
    return exit_status(results)


def exit_status(results: list[Result]) -> int:
    """1 when factstr failed a scenario (false conflicts, lost deliveries, short replays, the
    group-commit script crashing); a baseline's failure is reported and does not count, and no
    figure does (CI runs on a shared machine)."""
    return 1 if any(r.failed and r.role == "factstr" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
