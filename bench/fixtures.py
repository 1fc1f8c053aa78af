"""Filled stores shared between scenarios, so that each is filled once per subject: the small
store serves S3 and S4, the large one S3 and S6; S1/S2 append to a store of their own filled
with `Sizes.history` facts (purpose "appends"), and S9 to one of `Sizes.vacuum_store` facts.
Filled through each subject's bulk path (not timed). Dropped at the end of the run."""

from __future__ import annotations

import sys
import time

from bench.subject import Subject

_filled: dict[tuple[str, int, str], tuple[Subject, str]] = {}


def filled(subject: Subject, total: int, purpose: str = "") -> str:
    """A store of `subject` holding `total` fill_payload facts over total/100 courses (contexts
    of ~100 facts each), one per (subject, size, purpose)."""
    key = (subject.name, total, purpose)
    if key not in _filled:
        began = time.perf_counter()
        location = subject.create()
        _filled[key] = (subject, location)
        if total:
            with subject.session(location) as session:
                session.fill(total, max(1, total // 100))
        print(
            f"  [filled {subject.name} with {total:,} facts in {time.perf_counter() - began:.1f} s]",
            file=sys.stderr,
            flush=True,
        )
    return _filled[key][1]


def drop_all() -> None:
    while _filled:
        _, (subject, location) = _filled.popitem()
        subject.drop(location)
