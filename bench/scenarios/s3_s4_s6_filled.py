"""The scenarios on filled stores (see bench/fixtures.py):

S3: a decision: read the context (~100 facts of one course) and append_if on its version, in a
    store of `small_store` and of `large_store` facts (ops/s; the large row also shows
    large/small, 1.0 = no slow-down with size).
S4: a query returning `read_records` records into Python objects (records/s).
S6: durable replay of the large store from the start (events/s)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from bench import fixtures
from bench.report import Result
from bench.scenarios.common import for_each, measure_alternated
from bench.sizes import Sizes
from bench.subject import Subject
from bench.timing import rate_for, timed


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

    def measure(subject: Subject) -> list[Result]:
        location = fixtures.filled(subject, sizes.small_store)
        with subject.session(location) as session:

            def read() -> int:
                got = session.read(sizes.read_records)
                if got != sizes.read_records:
                    raise AssertionError(f"read {got} records, expected {sizes.read_records}")
                return got

            rate, _ = rate_for(read, sizes.budget)
        return [Result("S4", case, subject.group, subject.name, subject.role, rate, "records/s")]

    return for_each(subjects, "s4", measure, "S4", case)


def s6(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    case = f"durable replay of {sizes.large_store:,} facts"

    def measure(subject: Subject) -> list[Result]:
        location = fixtures.filled(subject, sizes.large_store)
        with subject.session(location) as session:
            handled, seconds = timed(lambda: session.replay(f"replay-{time.monotonic_ns()}"))
        failed = (
            ""
            if handled >= sizes.large_store
            else f"replayed {handled} of {sizes.large_store}+ events"
        )
        return [
            Result(
                "S6",
                case,
                subject.group,
                subject.name,
                subject.role,
                handled / seconds,
                "events/s",
                failed=failed,
                note="no stored cursor" if subject.role == "peer" else "",
            )
        ]

    return for_each(subjects, "s6", measure, "S6", case)
