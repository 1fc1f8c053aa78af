"""S8: `iter_query` against `query()` on the large store S3 and S6 share: records/s and the
growth of peak resident memory while reading every record, each reading in a fresh child
process, the two alternated (`bench/iter_query.py`, which also runs on its own, up to
1,000,000 records on kept stores). factstr only, on SQLite and PostgreSQL; the `query()` row is
the baseline, so "factstr x" is iter_query's rate over query()'s."""

from __future__ import annotations

from bench import fixtures
from bench.iter_query import compare
from bench.report import Result
from bench.sizes import Sizes
from bench.subject import Subject

KINDS = {"SQLite": "sqlite", "Server": "postgres"}


def s8(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    case = f"read {sizes.large_store:,} facts"
    results: list[Result] = []
    for subject in subjects:
        if subject.role != "factstr" or subject.group not in KINDS:
            continue
        location = fixtures.filled(subject, sizes.large_store)
        found = compare(KINDS[subject.group], location, sizes.large_store, sizes.repeats)
        for name, role, rate, growth in (
            ("iter_query", "factstr", found.iter_rate, found.iter_growth),
            ("query()", "floor", found.query_rate, found.query_growth),
        ):
            results.append(
                Result(
                    "S8",
                    case,
                    subject.group,
                    f"{subject.name} {name}",
                    role,
                    rate,
                    "records/s",
                    extra={"peak_rss_growth_mib": round(growth / 2**20, 1)},
                )
            )
    return results
