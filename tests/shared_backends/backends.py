"""The SQL stores the multi-process tests of this directory run against, and what differs
between them: how a test opens its database, and the deadlines and sizes each store is held to.

A test takes the ``backend`` fixture (``conftest.py``): a ``Backend`` on a fresh database of the
test's own, whose ``locator`` is what ``tests/child.py`` takes as its STORE argument (a SQLite
file path, or a ``postgresql://`` URL of a per-test database from ``tests/postgres_server.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import factstr

from tests.postgres_server import PostgresServer
from tests.processes import CHILD_DEADLINE
from tests.support import SHARED_KINDS, Store, wait_for

#: The store kinds of this directory, in the order their tests run.
SQL_BACKENDS: list[str] = SHARED_KINDS


@dataclass(frozen=True)
class Tuning:
    """Sizes and deadlines that differ between the stores (the expectations do not)."""

    #: Batches every appending process makes in the concurrent-append race.
    batches_per_process: int
    #: How long a racing child may take to print its report.
    child_deadline: float
    #: How long a durable replay may take to hand over each batch of the race.
    replay_deadline: float
    #: How long a replay must then stay quiet to count as finished.
    replay_quiet: float
    #: How soon a durable name held by a SIGKILLed process must be free again (SPEC: within
    #: 30 s; SQLite's lock file frees it at once, PostgreSQL sees the socket close at once).
    freed_within: float
    #: Characters of filler per payload of the crash test's batches.
    crash_pad: int
    #: Whether the crash test creates the store before the first writer (PostgreSQL: the schema
    #: exists first) or lets the first writer create it (SQLite: a new file).
    crash_creates_store_first: bool
    #: How long the crash test's replay may take to hand over one batch of ``BATCH`` events.
    crash_replay_deadline: float
    #: How long the crash test's replay must then stay quiet.
    crash_replay_quiet: float


TUNING: dict[str, Tuning] = {
    # SQLite: a crash batch is about 5 MB; the first crash writer creates the file.
    "sqlite": Tuning(
        batches_per_process=200,
        child_deadline=CHILD_DEADLINE,
        replay_deadline=0.5,
        replay_quiet=0.5,
        freed_within=5.0,
        crash_pad=1000,
        crash_creates_store_first=False,
        crash_replay_deadline=0.5,
        crash_replay_quiet=0.5,
    ),
    # PostgreSQL: a crash batch is about 1 MB; the schema exists before the first crash writer.
    "postgres": Tuning(
        batches_per_process=100,
        child_deadline=60.0,
        replay_deadline=10.0,
        replay_quiet=0.2,
        freed_within=10.0,
        crash_pad=200,
        crash_creates_store_first=True,
        crash_replay_deadline=15.0,
        crash_replay_quiet=0.2,
    ),
}


@dataclass(frozen=True)
class Backend:
    """One SQL store on a fresh database of the test's own."""

    #: ``"sqlite"`` or ``"postgres"``.
    name: str
    #: The database: a SQLite file path (not created yet) or a PostgreSQL database URL.
    locator: str
    #: The session's PostgreSQL server (None for SQLite).
    server: PostgresServer | None = None

    @property
    def tuning(self) -> Tuning:
        return TUNING[self.name]

    def open(self) -> Store:
        """A new store object on the test's database."""
        if self.name == "sqlite":
            return factstr.SqliteStore(self.locator)
        return factstr.PostgresStore(self.locator)

    def settle_after_kill(self) -> None:
        """Waits until the store has finished with a writer process that was just SIGKILLed.

        PostgreSQL ends the dead client's sessions (rolling back an open transaction) once it
        sees the closed socket; waiting for that makes a COMMIT the child sent just before it
        died either happen or not before the log is examined. SQLite has nothing to wait for.
        """
        if self.server is None:
            return
        server = self.server
        name = self.locator.rsplit("/", 1)[1].split("?", 1)[0]
        wait_for(
            lambda: (
                server.sql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'") == "0"
            ),
            timeout=30,
            what="the killed writer's sessions to end",
        )
