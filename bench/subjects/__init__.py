"""Every subject of the benchmarks: factstr on each store, the hand-written floors, the peers
(eventsourcing, UmaDB) and the hook for the FACTSTR Rust crates."""

from __future__ import annotations

from bench.subject import Subject

#: The reference run's subjects (docs/benchmarks.md): factstr, the floors, and the DCB peers.
REFERENCE = (
    "factstr SqliteStore",
    "floor: python sqlite3",
    "factstr PostgresStore",
    "floor: psycopg",
    "eventsourcing PostgresDCBRecorderTT",
    "UmaDB (gRPC server)",
)


def all_subjects(groups: set[str], *, rust: bool = True) -> tuple[list[Subject], list[str]]:
    """The subjects of the given groups ("Memory", "SQLite", "Server"), and notes on any that
    cannot run here (missing package, missing binary); `rust=False` leaves out the Rust crates
    (building their driver can take minutes)."""
    from bench.subjects import (
        eventsourcing_recorders,
        factstr_stores,
        floor_memory,
        floor_postgres,
        floor_sqlite,
        rust_crates,
        umadb_server,
    )

    subjects: list[Subject] = []
    notes: list[str] = []
    if "Memory" in groups:
        subjects += [factstr_stores.memory(), floor_memory.subject()]
        subjects += eventsourcing_recorders.memory_subjects(notes)
    if "SQLite" in groups:
        subjects += [factstr_stores.sqlite(), floor_sqlite.subject()]
        subjects += eventsourcing_recorders.sqlite_subjects(notes)
    if "Server" in groups:
        subjects += [factstr_stores.postgres(), floor_postgres.subject()]
        subjects += eventsourcing_recorders.postgres_subjects(notes)
        subjects += umadb_server.subjects(notes)
    if rust:
        subjects += rust_crates.subjects(groups, notes)
    return subjects, notes
