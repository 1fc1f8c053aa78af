"""The scenarios on filled stores (see bench/fixtures.py):

S3: a decision: read the context (~100 facts of one course) and append_if on its version, in a
    store of `small_store` and of `large_store` facts (ops/s; the large row also shows
    large/small, 1.0 = no slow-down with size).
S4: a query returning `read_records` records into Python objects (records/s).
S6: durable replay of the large store from the start (events/s)."""

from __future__ import annotations

import time

from bench import fixtures
from bench.report import Result
from bench.scenarios.common import for_each
from bench.sizes import Sizes
from bench.subject import Subject
from bench.timing import rate_for, timed


def s3(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    results: list[Result] = []
    small_rates: dict[str, float] = {}
    for total in (sizes.small_store, sizes.large_store):
        courses = max(1, total // 100)
        case = f"append_if ~100-fact context, {total:,} facts"

        def measure(
            subject: Subject, total: int = total, courses: int = courses, case: str = case
        ) -> list[Result]:
            location = fixtures.filled(subject, total)
            conflicts = 0
            counter = 0
            with subject.session(location) as session:

                def decision() -> int:
                    nonlocal conflicts, counter
                    counter += 1
                    course = f"c{(counter * 7919) % courses}"
                    version = session.decide(course)
                    if not session.append_if(
                        course, {"course": course, "student": f"x{counter}", "amount": 1}, version
                    ):
                        conflicts += 1
                    return 1

                rate, _ = rate_for(decision, sizes.budget)
            extra: dict[str, float] = {}
            if total == sizes.small_store:
                small_rates[subject.name] = rate
            elif subject.name in small_rates:
                extra["large/small"] = rate / small_rates[subject.name]
            failed = f"{conflicts} conflicts with no other writer" if conflicts else ""
            return [
                Result(
                    "S3",
                    case,
                    subject.group,
                    subject.name,
                    subject.role,
                    rate,
                    "ops/s",
                    extra=extra,
                    failed=failed,
                )
            ]

        results += for_each(subjects, "s3", measure, "S3", case)
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
