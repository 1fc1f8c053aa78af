"""How big each scenario is in each mode: one place for every count, so modes stay comparable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    mode: str
    repeats: int  # S1/S2: fresh stores per subject; the best run counts (the least disturbed one)
    batches: int  # S1: batches of 100 per run
    singles: int  # S2: single-event appends per run
    small_store: int  # S3: facts in the small store (~100 per context)
    large_store: int  # S3 large store, and S6's replay size (the same filled stores serve both)
    budget: float  # seconds one measured loop may run (S3, S4): at least 3 operations regardless
    read_records: int  # S4: records per query
    stream_rounds: int  # S5: append-to-delivery round trips per subject and setting
    workers: int  # S7: processes
    worker_ops: int  # S7: append_if calls per process


QUICK = Sizes(
    "quick",
    repeats=2,
    batches=20,
    singles=100,
    small_store=10_000,
    large_store=50_000,
    budget=0.6,
    read_records=10_000,
    stream_rounds=40,
    workers=4,
    worker_ops=40,
)
FULL = Sizes(
    "full",
    repeats=5,
    batches=200,
    singles=1000,
    small_store=10_000,
    large_store=1_000_000,
    budget=3.0,
    read_records=10_000,
    stream_rounds=300,
    workers=4,
    worker_ops=300,
)
# CI: proves the harness runs end to end on every subject; the figures mean little.
SMOKE = Sizes(
    "smoke",
    repeats=1,
    batches=5,
    singles=20,
    small_store=2_000,
    large_store=5_000,
    budget=0.2,
    read_records=2_000,
    stream_rounds=10,
    workers=4,
    worker_ops=10,
)
