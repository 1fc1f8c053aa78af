"""The scenarios, in run order (S3 fills the stores that S4 and S6 reuse)."""

from __future__ import annotations

from collections.abc import Callable

from bench.report import Result
from bench.scenarios.group_commit_hook import group_commit
from bench.scenarios.s1_s2_appends import s1, s2
from bench.scenarios.s3_s4_s6_filled import s3, s4, s6
from bench.scenarios.s5_streams import s5
from bench.scenarios.s7_concurrent import s7
from bench.scenarios.s8_iter_query import s8
from bench.scenarios.s9_vacuum import s9
from bench.sizes import Sizes
from bench.subject import Subject

Scenario = Callable[[list[Subject], Sizes], list[Result]]

SCENARIOS: dict[str, Scenario] = {
    "s1": s1,
    "s2": s2,
    "s3": s3,
    "s4": s4,
    "s5": s5,
    "s6": s6,
    "s7": s7,
    "s8": s8,
    "s9": s9,
    "group": group_commit,
}

#: What the reference run (docs/benchmarks.md) measures: the scenarios the goals are about.
REFERENCE_SCENARIOS = ("s1", "s2", "s3", "s9", "group")
