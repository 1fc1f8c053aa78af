"""Filled stores shared between scenarios, so that each is filled once per subject: the small
store serves S3 and S4, the large one S3 and S6. Dropped at the end of the run."""

from __future__ import annotations

from bench.subject import Subject

_filled: dict[tuple[str, int], tuple[Subject, str]] = {}


def filled(subject: Subject, total: int) -> str:
    """A store of `subject` holding `total` fill_payload facts over total/100 courses."""
    key = (subject.name, total)
    if key not in _filled:
        location = subject.create()
        with subject.session(location) as session:
            session.fill(total, max(1, total // 100))
        _filled[key] = (subject, location)
    return _filled[key][1]


def drop_all() -> None:
    while _filled:
        _, (subject, location) = _filled.popitem()
        subject.drop(location)
