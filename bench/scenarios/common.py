"""What every scenario shares: which subjects take part, fresh stores, and turning a subject's
failure into a loud row (factstr's failures propagate and end the run)."""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Callable, Iterator

from bench.report import Result
from bench.subject import Session, Subject, Unsupported
from bench.timing import alternated, percentiles_ms


@contextlib.contextmanager
def fresh(subject: Subject) -> Iterator[tuple[Session, str]]:
    """A new, empty store of `subject` with a session on it; both are removed afterwards."""
    location = subject.create()
    try:
        with subject.session(location) as session:
            yield session, location
    finally:
        subject.drop(location)


def for_each(
    subjects: list[Subject],
    capability: str,
    measure: Callable[[Subject], list[Result]],
    scenario: str,
    case: str = "",
) -> list[Result]:
    """`measure(subject)` for each subject that has `capability`. A baseline that breaks gives a
    failed row and the run goes on; factstr breaking ends the run (that is a bug to see)."""
    results: list[Result] = []
    for subject in subjects:
        if not subject.supports(capability):
            continue
        try:
            results.extend(measure(subject))
        except Unsupported:
            continue
        except Exception as exc:
            if subject.role == "factstr":
                raise
            traceback.print_exc(file=sys.stderr)
            results.append(
                Result(
                    scenario,
                    case or "(all)",
                    subject.group,
                    subject.name,
                    subject.role,
                    float("nan"),
                    "",
                    failed=f"{type(exc).__name__}: {exc}"[:200],
                )
            )
    return results


def failed_row(subject: Subject, scenario: str, case: str, exc: BaseException) -> Result:
    return Result(
        scenario,
        case or "(all)",
        subject.group,
        subject.name,
        subject.role,
        float("nan"),
        "",
        failed=f"{type(exc).__name__}: {exc}"[:200],
    )


def measure_alternated(
    subjects: list[Subject],
    capability: str,
    scenario: str,
    case: str,
    prepare: Callable[[Subject, contextlib.ExitStack], Callable[[], object]],
    *,
    rounds: int,
    budget: float,
    unit: str,
    items_per_call: int = 1,
    min_ops: int = 3,
) -> list[Result]:
    """Every subject with `capability` measured in turns (A, B, A, B, ...; see
    `timing.alternated`): `prepare(subject, stack)` opens its store (closing through `stack`) and
    returns the operation to time. Throughput is calls/s x `items_per_call` over all its turns;
    p50/p99/p99.9 per call beside it (at least `min_ops` calls per turn). A baseline that breaks
    gives a failed row."""
    results: list[Result] = []
    by_name = {s.name: s for s in subjects if s.supports(capability)}

    def on_error(name: str, exc: Exception) -> None:
        subject = by_name[name]
        if subject.role == "factstr":
            raise exc
        traceback.print_exc(file=sys.stderr)
        results.append(failed_row(subject, scenario, case, exc))

    with contextlib.ExitStack() as stack:
        ops: dict[str, Callable[[], object]] = {}
        for name, subject in by_name.items():
            try:
                ops[name] = prepare(subject, stack)
            except Unsupported:
                continue
            except Exception as exc:
                on_error(name, exc)
        measured = alternated(ops, rounds, budget, on_error, min_ops=min_ops)
    for name, (rate, latencies) in measured.items():
        subject = by_name[name]
        results.append(
            Result(
                scenario,
                case,
                subject.group,
                subject.name,
                subject.role,
                rate * items_per_call,
                unit,
                extra={"calls": len(latencies), **percentiles_ms(latencies)},
            )
        )
    return results
