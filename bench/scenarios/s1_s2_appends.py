"""S1: batches of 100 events (events/s). S2: single-event appends (appends/s, p50/p99 latency).
Each repeat is a fresh, empty store (after WARM_UP untimed appends); the best repeat's throughput counts (the least disturbed
one), latency percentiles pool every repeat."""

from __future__ import annotations

from bench.report import Result
from bench.scenarios.common import for_each, fresh
from bench.sizes import Sizes
from bench.subject import Payload, Subject, payload
from bench.timing import call_latencies, percentile

WARM_UP = 3


def append_rows(
    subjects: list[Subject],
    sizes: Sizes,
    scenario: str,
    case: str,
    capability: str,
    batch: list[Payload],
    calls: int,
) -> list[Result]:
    def measure(subject: Subject) -> list[Result]:
        best = 0.0
        pooled: list[float] = []
        for _ in range(sizes.repeats):
            with fresh(subject) as (session, _location):
                for _ in range(WARM_UP):  # connections, caches, prepared statements
                    session.append_batch(batch)
                latencies, seconds = call_latencies(lambda: session.append_batch(batch), calls)
            best = max(best, calls * len(batch) / seconds)
            pooled += latencies
        unit = "events/s" if len(batch) > 1 else "appends/s"
        return [
            Result(
                scenario,
                case,
                subject.group,
                subject.name,
                subject.role,
                best,
                unit,
                extra={
                    "p50_ms": 1000 * percentile(pooled, 0.50),
                    "p99_ms": 1000 * percentile(pooled, 0.99),
                },
            )
        ]

    return for_each(subjects, capability, measure, scenario, case)


def s1(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    return append_rows(
        subjects,
        sizes,
        "S1",
        "append, batch of 100",
        "s1",
        [payload(i) for i in range(100)],
        sizes.batches,
    )


def s2(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    return append_rows(
        subjects, sizes, "S2", "append, single event", "s2", [payload(1)], sizes.singles
    )
