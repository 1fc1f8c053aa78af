"""What every scenario shares: which subjects take part, fresh stores, and turning a subject's
failure into a loud row (factstr's failures propagate and end the run)."""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Callable, Iterator

from bench.report import Result
from bench.subject import Session, Subject, Unsupported


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
