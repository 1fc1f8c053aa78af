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


def percentiles_ms(latencies: Sequence[float]) -> dict[str, float]:
    """p50, p99 and p99.9 of `latencies` (seconds), in milliseconds."""
    return {
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "p99.9_ms": 1000 * percentile(latencies, 0.999),
    }


def alternated(
    ops: dict[str, Callable[[], object]],
    rounds: int,
    budget: float,
    on_error: Callable[[str, Exception], None],
    *,
    min_ops: int = 3,
) -> dict[str, tuple[float, list[float]]]:
    """Runs each subject's `op` in turn (A, B, A, B, ...) for `rounds` rounds of `budget / rounds`
    seconds each (at least `min_ops` calls per turn), so that a disturbance of the machine hits
    every subject alike. A subject whose op raises is reported to `on_error` (which may re-raise)
    and leaves the rotation. Returns per remaining subject (calls per second over its turns,
    each call's seconds)."""
    spent = dict.fromkeys(ops, 0.0)
    calls: dict[str, list[float]] = {name: [] for name in ops}
    broken: set[str] = set()
    share = budget / max(1, rounds)
    for _ in range(rounds):
        for name, op in ops.items():
            if name in broken:
                continue
            start = time.perf_counter()
            done = 0
            try:
                while done < min_ops or time.perf_counter() - start < share:
                    began = time.perf_counter()
                    op()
                    calls[name].append(time.perf_counter() - began)
                    done += 1
            except Exception as exc:
                broken.add(name)
                on_error(name, exc)
            spent[name] += time.perf_counter() - start
    return {
        name: (len(calls[name]) / spent[name], calls[name]) for name in ops if name not in broken
    }
