"""How big each scenario is in each mode: one place for every count, so modes stay comparable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    mode: str
    repeats: int  # rounds of turns (A, B, A, B) in S1, S2, S3
    append_budget: float  # S1/S2: seconds of appends per subject, over all its turns
    history: int  # S1/S2: facts already in the store they append to
    small_store: int  # S3: facts in the small store (~100 per context)
    large_store: int  # S3 large store (~100 per context too), and S6's replay size
    budget: float  # seconds one measured loop may run (S3 per subject and size; S4)
    read_records: int  # S4: records per query
    stream_rounds: int  # S5: append-to-delivery round trips per subject and setting
    workers: int  # S7: processes
    worker_ops: int  # S7: append_if calls per process
    vacuum_store: int  # S9: facts in the store appended to while autovacuum visits it
    vacuum_seconds: float  # S9: seconds of single appends per subject and setting


# The default, and what CI runs (scripts/check.sh): stores big enough that contexts hold ~100
# facts and S1/S2 append to a store in use, measuring windows short enough for a CI budget of a
# few minutes (about 5 on the shared 2-core machine, fills included); bench/README.md says what it
# leaves out. tests/bench/test_quick_mode.py keeps these figures and the README together.
QUICK = Sizes(
    "quick",
    repeats=3,
    append_budget=1.5,
    history=10_000,
    small_store=10_000,
    large_store=50_000,
    budget=1.5,
    read_records=10_000,
    stream_rounds=40,
    workers=4,
    worker_ops=40,
    vacuum_store=10_000,
    vacuum_seconds=4.0,
)
FULL = Sizes(
    "full",
    repeats=5,
    append_budget=5.0,
    history=100_000,
    small_store=10_000,
    large_store=1_000_000,
    budget=5.0,
    read_records=10_000,
    stream_rounds=300,
    workers=4,
    worker_ops=300,
    vacuum_store=100_000,
    vacuum_seconds=15.0,
)
# The reference run (docs/benchmarks.md): full sizes, the scenarios the goals are about.
REFERENCE = Sizes(
    "reference",
    repeats=6,
    append_budget=6.0,
    history=100_000,
    small_store=10_000,
    large_store=1_000_000,
    budget=12.0,
    read_records=10_000,
    stream_rounds=300,
    workers=4,
    worker_ops=300,
    vacuum_store=100_000,
    vacuum_seconds=20.0,
)
# Proves the harness runs end to end on every subject in about a minute; the figures mean little.
SMOKE = Sizes(
    "smoke",
    repeats=1,
    append_budget=0.2,
    history=1_000,
    small_store=2_000,
    large_store=5_000,
    budget=0.2,
    read_records=2_000,
    stream_rounds=10,
    workers=4,
    worker_ops=10,
    vacuum_store=1_000,
    vacuum_seconds=1.0,
)
