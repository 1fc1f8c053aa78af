"""S1: batches of 100 events (events/s). S2: single-event appends (appends/s). Both append to a
store already holding `Sizes.history` facts (not an empty one: indexes and pages as a store in
use has them), after WARM_UP untimed appends; subjects take turns (A, B, A, B) for
`Sizes.repeats` rounds; p50/p99/p99.9 per call beside the throughput."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from bench import fixtures
from bench.report import Result
from bench.scenarios.common import measure_alternated
from bench.sizes import Sizes
from bench.subject import Subject, payload

WARM_UP = 3


def append_rows(
    subjects: list[Subject],
    sizes: Sizes,
    scenario: str,
    case: str,
    capability: str,
    batch_size: int,
    budget: float,
) -> list[Result]:
    counter = 0

    def prepare(subject: Subject, stack: contextlib.ExitStack) -> Callable[[], object]:
        location = fixtures.filled(subject, sizes.history, "appends")
        session = stack.enter_context(subject.session(location))

        def op() -> None:
            nonlocal counter
            # unique student and amount per event, a course shared by many (a repeated value)
            session.append_batch([payload(counter + i) for i in range(batch_size)])
            counter += batch_size

        for _ in range(WARM_UP):  # connections, caches, prepared statements
            op()
        return op

    return measure_alternated(
        subjects,
        capability,
        scenario,
        case,
        prepare,
        rounds=sizes.repeats,
        budget=budget,
        unit="events/s" if batch_size > 1 else "appends/s",
        items_per_call=batch_size,
    )


def s1(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    case = f"append, batch of 100, store of {sizes.history:,} facts"
    return append_rows(subjects, sizes, "S1", case, "s1", 100, sizes.append_budget)


def s2(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    case = f"append, single event, store of {sizes.history:,} facts"
    return append_rows(subjects, sizes, "S2", case, "s2", 1, sizes.append_budget)
