"""The timing loops, written once: every scenario measures every subject through these."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank; values need not be sorted)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def timed(run: Callable[[], int]) -> tuple[int, float]:
    """Runs `run` once; returns (items it reports, seconds)."""
    start = time.perf_counter()
    items = run()
    return items, time.perf_counter() - start


def rate_for(
    op: Callable[[], int], budget: float, *, min_ops: int = 3, max_ops: int = 1_000_000
) -> tuple[float, int]:
    """Items per second over repeated calls of `op` (which returns how many items it did): at
    least `min_ops` calls, then more until `budget` seconds or `max_ops` calls. Returns (rate, calls)."""
    items = calls = 0
    start = time.perf_counter()
    elapsed = 0.0
    while calls < max_ops and (calls < min_ops or elapsed < budget):
        items += op()
        calls += 1
        elapsed = time.perf_counter() - start
    return items / elapsed, calls


def call_latencies(op: Callable[[], object], count: int) -> tuple[list[float], float]:
    """Calls `op` `count` times; returns each call's seconds and the total seconds."""
    latencies = []
    start = time.perf_counter()
    for _ in range(count):
        began = time.perf_counter()
        op()
        latencies.append(time.perf_counter() - began)
    return latencies, time.perf_counter() - start
