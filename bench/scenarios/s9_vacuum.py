"""S9 (PostgreSQL): single-event append latency while autovacuum visits `events`, and without it.

Autovacuum takes SHARE UPDATE EXCLUSIVE on the table it works on. An append whose lock conflicts
with that (`LOCK TABLE ... IN EXCLUSIVE MODE` does) waits until the deadlock check, after
`deadlock_timeout` (1 s by default), cancels the autovacuum: a stall of about a second whenever
autovacuum visits. To make it visit often, the run's own cluster gets `autovacuum_naptime = 1s`
(reset afterwards) and the table the lowest thresholds (a visit after every 100 inserted rows);
"off" is the same table with `autovacuum_enabled = false`. Subjects and settings take turns
(A off, A on, B off, B on, twice). Reported: p99.9 (and p50/p99/max) of the appends' latency,
the autovacuum/autoanalyze runs that completed, and how many the server log shows cancelled."""

from __future__ import annotations

import contextlib
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench import fixtures
from bench.report import Result
from bench.scenarios.common import failed_row
from bench.servers import env
from bench.sizes import Sizes
from bench.subject import Session, Subject, payload
from bench.timing import percentiles_ms

EAGER = (
    "autovacuum_enabled = true, autovacuum_vacuum_insert_threshold = 100, "
    "autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_threshold = 0, "
    "autovacuum_vacuum_scale_factor = 0, autovacuum_analyze_threshold = 100, "
    "autovacuum_analyze_scale_factor = 0"
)
SETTINGS = {"autovacuum off": "autovacuum_enabled = false", "autovacuum forced": EAGER}
COUNTS = (
    "SELECT COALESCE(autovacuum_count + autoanalyze_count, 0) FROM pg_stat_user_tables "
    "WHERE relname = 'events'"
)


def _cancelled_in_log() -> int:
    """'canceling autovacuum task' lines in the run's own cluster's log (0 for other servers)."""
    log = getattr(env().postgres, "log", None)
    if not isinstance(log, Path) or not log.exists():
        return 0
    return log.read_text(errors="replace").count("canceling autovacuum task")


@contextlib.contextmanager
def _eager_naptime() -> Any:
    if not env().pg_throwaway:
        yield "the server's own autovacuum_naptime"
        return
    server = env().postgres
    server.sql("ALTER SYSTEM SET autovacuum_naptime = '1s'")
    server.sql("SELECT pg_reload_conf()")
    try:
        yield "autovacuum_naptime = 1s"
    finally:
        server.sql("ALTER SYSTEM RESET autovacuum_naptime")
        server.sql("SELECT pg_reload_conf()")


def _appender(session: Session) -> Callable[[], None]:
    """One single-event append per call, each payload with a unique value."""
    counter = itertools.count()
    return lambda: session.append_one(payload(next(counter)))


def s9(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    chosen = [s for s in subjects if s.supports("s9")]
    if not chosen:
        return []
    results: list[Result] = []
    latencies: dict[tuple[str, str], list[float]] = {}
    spent: dict[tuple[str, str], float] = {}
    runs: dict[tuple[str, str], int] = {}
    cancelled: dict[tuple[str, str], int] = {}
    with contextlib.ExitStack() as stack:
        naptime = stack.enter_context(_eager_naptime())
        ops: dict[str, tuple[Callable[[], None], psycopg.Connection[Any]]] = {}
        for subject in chosen:
            try:
                location = fixtures.filled(subject, sizes.vacuum_store, "vacuum")
                session = stack.enter_context(subject.session(location))
                admin = stack.enter_context(psycopg.connect(location, autocommit=True))
                ops[subject.name] = (_appender(session), admin)
                for _ in range(3):
                    ops[subject.name][0]()
            except Exception as exc:
                if subject.role == "factstr":
                    raise
                results.append(failed_row(subject, "S9", "(all)", exc))
        for _ in range(2):
            for subject in chosen:
                if subject.name not in ops:
                    continue
                op, admin = ops[subject.name]
                for setting, options in SETTINGS.items():
                    key = (subject.name, setting)
                    admin.execute(f"ALTER TABLE events SET ({options})")
                    before = admin.execute(COUNTS).fetchone()
                    logged = _cancelled_in_log()
                    start = time.perf_counter()
                    taken = latencies.setdefault(key, [])
                    while time.perf_counter() - start < sizes.vacuum_seconds / 2:
                        began = time.perf_counter()
                        op()
                        taken.append(time.perf_counter() - began)
                    spent[key] = spent.get(key, 0.0) + time.perf_counter() - start
                    time.sleep(0.5)  # let the statistics of a finishing autovacuum arrive
                    after = admin.execute(COUNTS).fetchone()
                    runs[key] = (
                        runs.get(key, 0) + (after[0] if after else 0) - (before[0] if before else 0)
                    )
                    cancelled[key] = cancelled.get(key, 0) + _cancelled_in_log() - logged
                admin.execute("ALTER TABLE events SET (autovacuum_enabled = false)")
    for setting, name in [(t, s.name) for t in SETTINGS for s in chosen]:
        key = (name, setting)
        if key not in latencies:
            continue
        subject = next(s for s in chosen if s.name == name)
        taken = latencies[key]
        shown = percentiles_ms(taken)
        results.append(
            Result(
                "S9",
                f"single appends, {setting}, store of {sizes.vacuum_store:,} facts",
                subject.group,
                name,
                subject.role,
                shown["p99.9_ms"],
                "ms p99.9",
                higher_is_better=False,
                extra={
                    **shown,
                    "max_ms": 1000 * max(taken),
                    "appends/s": len(taken) / spent[key],
                    "calls": len(taken),
                    "autovacuum_runs": runs[key],
                    "autovacuum_cancelled": cancelled[key],
                },
                note=naptime if setting != "autovacuum off" else "",
            )
        )
    print(f"  [S9: {naptime}]", file=sys.stderr)
    return results
