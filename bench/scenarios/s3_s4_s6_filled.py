"""The scenarios on filled stores (see bench/fixtures.py):

S3: a decision: read the context (~100 facts of one course) and append_if on its version, in a
    store of `small_store` and of `large_store` facts (ops/s; the large row also shows
    large/small, 1.0 = no slow-down with size).
S4: a query returning `read_records` records into Python objects (records/s), subjects in turns.
S6: durable replay of the large store from the start (events/s), whole replays in turns."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from bench import fixtures
from bench.report import Result
from bench.scenarios.common import measure_alternated
from bench.sizes import Sizes
from bench.subject import Subject


def s3(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    results: list[Result] = []
    small: dict[str, float] = {}
    conflicts: dict[tuple[int, str], int] = {}  # (store size, subject): false conflicts
    for total in (sizes.small_store, sizes.large_store):
        courses = max(1, total // 100)
        case = f"append_if ~100-fact context, {total:,} facts"

        def prepare(
            subject: Subject,
            stack: contextlib.ExitStack,
            total: int = total,
            courses: int = courses,
        ) -> Callable[[], object]:
            location = fixtures.filled(subject, total)
            session = stack.enter_context(subject.session(location))
            conflicts[total, subject.name] = 0
            counter = 0

            def decision() -> None:
                nonlocal counter
                counter += 1
                course = f"c{(counter * 7919) % courses}"
                version = session.decide(course)
                item = {"course": course, "student": f"x{counter}", "amount": 1}
                if not session.append_if(course, item, version):
                    conflicts[total, subject.name] += 1

            decision()  # warm-up: connection, caches, prepared statements
            return decision

        rows = measure_alternated(
            subjects,
            "s3",
            "S3",
            case,
            prepare,
            rounds=sizes.repeats,
            budget=sizes.budget,
            unit="ops/s",
        )
        for row in rows:
            if row.failed:
                continue
            if conflicts.get((total, row.subject)):
                row.failed = f"{conflicts[total, row.subject]} conflicts with no other writer"
            if total == sizes.small_store:
                small[row.subject] = row.value
            elif row.subject in small:
                row.extra["large/small"] = row.value / small[row.subject]
        results += rows
    return results


def s4(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    case = f"query {sizes.read_records:,} records"

    def prepare(subject: Subject, stack: contextlib.ExitStack) -> Callable[[], object]:
        location = fixtures.filled(subject, sizes.small_store)
        session = stack.enter_context(subject.session(location))

        def read() -> None:
            got = session.read(sizes.read_records)
            if got != sizes.read_records:
                raise AssertionError(f"read {got} records, expected {sizes.read_records}")

        read()  # warm-up: connection, caches
        return read

    return measure_alternated(
        subjects,
        "s4",
        "S4",
        case,
        prepare,
        rounds=sizes.repeats,
        budget=sizes.budget,
        unit="records/s",
        items_per_call=sizes.read_records,
    )


def s6(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    case = f"durable replay of {sizes.large_store:,} facts"
    handled: dict[str, int] = {}  # events per replay, per subject (S3 appended to the store)

    def prepare(subject: Subject, stack: contextlib.ExitStack) -> Callable[[], object]:
        location = fixtures.filled(subject, sizes.large_store)
        session = stack.enter_context(subject.session(location))

        def replay() -> None:
            got = session.replay(f"replay-{time.monotonic_ns()}")  # a new consumer: from the start
            handled[subject.name] = min(got, handled.get(subject.name, got))

        return replay

    # whole replays in turns (A, B, A, B): one replay per turn, two rounds (one in smoke mode)
    rows = measure_alternated(
        subjects,
        "s6",
        "S6",
        case,
        prepare,
        rounds=min(2, sizes.repeats),
        budget=0.0,
        unit="events/s",
        min_ops=1,
    )
    for row in rows:
        if row.failed:
            continue
        events = handled[row.subject]
        row.value *= events  # replays/s -> events/s
        row.extra = {"calls": row.extra["calls"], "events": events}
        if events < sizes.large_store:
            row.failed = f"replayed {events} of {sizes.large_store}+ events"
        if row.role == "peer":
            row.note = "no stored cursor"
    return rows
