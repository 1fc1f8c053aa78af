"""The torture report: what every torture test counted, printed at the end of the run (and
written as JSON to ``$FACTSTR_TORTURE_REPORT`` when set), so a CI log shows the figures."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import pytest

from tests.postgres_server import URL_ENV, PostgresServer, ThrowawayCluster


@dataclass
class Tally:
    """One torture scenario's counts; the tests assert that the last four stay 0."""

    rounds: int = 0
    acknowledged_batches: int = 0
    lost: int = 0
    duplicated: int = 0
    partial: int = 0
    gaps: int = 0


REPORT: dict[str, Tally] = {}


def tally(scenario: str) -> Tally:
    return REPORT.setdefault(scenario, Tally())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORT:
        return
    terminalreporter.section("torture report")
    terminalreporter.write_line(
        f"{'scenario':44} {'rounds':>6} {'acked':>7} {'lost':>5} {'dup':>5} {'part':>5} {'gaps':>5}"
    )
    for name, t in REPORT.items():
        terminalreporter.write_line(
            f"{name:44} {t.rounds:>6} {t.acknowledged_batches:>7} {t.lost:>5} {t.duplicated:>5} {t.partial:>5} {t.gaps:>5}"
        )
    target = os.environ.get("FACTSTR_TORTURE_REPORT")
    if target:
        with open(target, "w") as out:
            json.dump({name: asdict(t) for name, t in REPORT.items()}, out, indent=2)


@pytest.fixture(scope="module")
def durable_server() -> Iterator[PostgresServer]:
    """A cluster of the module's own with fsync, synchronous_commit and full_page_writes on, as
    users run PostgreSQL, so that crashing it (``pg_ctl -m immediate``) is a fair test."""
    if os.environ.get(URL_ENV):
        pytest.skip("crashing the server needs a throwaway cluster, not FACTSTR_TEST_POSTGRES_URL")
    server = ThrowawayCluster(durable=True)
    try:
        yield server
    finally:
        server.close()
