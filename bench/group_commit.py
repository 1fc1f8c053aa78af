"""Group commit (issue 12, item 3): single-event appends from 16 threads of one process against one
thread on the same kind of store and against a single-writer floor, durable.

Subjects, per backend (a fresh store or table for each measurement):
- ``floor``: one writer, one INSERT per transaction. SQLite: Python's ``sqlite3``, WAL,
  ``synchronous=FULL`` (factstr's default), ``BEGIN IMMEDIATE``/``COMMIT`` around each INSERT.
  PostgreSQL: ``psycopg``, one connection, one INSERT and COMMIT per event.
- ``factstr x1``: one thread appending single events.
- ``factstr x16``: 16 threads of one process appending single events to one store object.
- PostgreSQL only, ``factstr 4p x 4t``: 4 processes with 4 threads each, one store object per
  process.

PostgreSQL is the throwaway cluster of ``tests/postgres_server.py`` with ``durable=True`` (fsync,
synchronous_commit, full_page_writes on). Each subject runs for ``--seconds`` per round; rounds
alternate the subjects (A, B, C, A, B, C, ...). Reported: commits/s (median over rounds), the
ratio to the floor measured in the same round (median of the per-round ratios), and p50/p99 of
the per-call latency over all rounds.

    nice -n 10 .venv/bin/python bench/group_commit.py [--seconds 3] [--rounds 3] [--json out.json]

Needs ``psycopg`` (``bench/requirements.txt``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import factstr  # noqa: E402

from tests.postgres_server import ThrowawayCluster  # noqa: E402

THREADS = 16
PROCESSES = 4
THREADS_PER_PROCESS = 4

#: One measurement: calls made and each call's latency in seconds.
Measured = tuple[int, list[float]]


def _payload(worker: int, n: int) -> dict[str, Any]:
    return {"worker": worker, "n": n, "id": str(uuid.uuid4()), "kind": "order-placed"}


def _run_threads(threads: int, seconds: float, call: Callable[[int, int], None]) -> Measured:
    """Runs ``call(worker, n)`` in a loop on ``threads`` threads for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker(index: int) -> None:
        own = latencies[index]
        start.wait()
        n = 0
        while True:
            began = time.perf_counter()
            if began >= stop_at[0]:
                return
            call(index, n)
            own.append(time.perf_counter() - began)
            n += 1

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    start.wait()
    for thread in workers:
        thread.join()
    every = [x for own in latencies for x in own]
    return len(every), every


# -- SQLite ---------------------------------------------------------------------------------------


def sqlite_floor(folder: Path, seconds: float) -> Measured:
    path = folder / f"floor-{uuid.uuid4().hex}.db"
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute(
        "CREATE TABLE events (sequence_number INTEGER PRIMARY KEY, occurred_at TEXT NOT NULL, "
        "event_type TEXT NOT NULL, payload TEXT NOT NULL)"
    )

    def append(worker: int, n: int) -> None:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO events (occurred_at, event_type, payload) VALUES (?, ?, ?)",
            (time.time(), "t", json.dumps(_payload(worker, n))),
        )
        connection.execute("COMMIT")

    try:
        return _run_threads(1, seconds, append)
    finally:
        connection.close()


def sqlite_factstr(folder: Path, seconds: float, threads: int) -> Measured:
    store = factstr.SqliteStore(folder / f"factstr-{uuid.uuid4().hex}.db")
    try:
        return _run_threads(
            threads,
            seconds,
            lambda worker, n: store.append([factstr.NewEvent("t", _payload(worker, n))]) and None,
        )
    finally:
        store.close()


# -- PostgreSQL -----------------------------------------------------------------------------------


def postgres_floor(cluster: ThrowawayCluster, seconds: float) -> Measured:
    import psycopg

    url = cluster.url_for(cluster.create_database("gcfloor"))
    with psycopg.connect(url) as connection:
        connection.execute(
            "CREATE TABLE events (sequence_number BIGSERIAL PRIMARY KEY, "
            "occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(), event_type TEXT NOT NULL, "
            "payload JSONB NOT NULL)"
        )
        connection.commit()

        def append(worker: int, n: int) -> None:
            connection.execute(
                "INSERT INTO events (event_type, payload) VALUES (%s, %s::jsonb)",
                ("t", json.dumps(_payload(worker, n))),
            )
            connection.commit()

        return _run_threads(1, seconds, append)


def postgres_factstr(cluster: ThrowawayCluster, seconds: float, threads: int) -> Measured:
    url = cluster.url_for(cluster.create_database("gcfactstr"))
    with factstr.PostgresStore(url) as store:
        return _run_threads(
            threads,
            seconds,
            lambda worker, n: store.append([factstr.NewEvent("t", _payload(worker, n))]) and None,
        )


def _process_worker(url: str, seconds: float, threads: int, out: Any) -> None:
    with factstr.PostgresStore(url) as store:
        out.put(
            _run_threads(
                threads,
                seconds,
                lambda worker, n: (
                    store.append([factstr.NewEvent("t", _payload(worker, n))]) and None
                ),
            )
        )


def postgres_processes(cluster: ThrowawayCluster, seconds: float) -> Measured:
    url = cluster.url_for(cluster.create_database("gcprocs"))
    factstr.PostgresStore(url).close()  # the schema, before the processes race to create it
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [
        context.Process(target=_process_worker, args=(url, seconds, THREADS_PER_PROCESS, out))
        for _ in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    calls = 0
    latencies: list[float] = []
    for _ in workers:
        got_calls, got_latencies = out.get(timeout=seconds + 120)
        calls += got_calls
        latencies.extend(got_latencies)
    for process in workers:
        process.join(60)
    # The processes start at slightly different times: the figure is per second of one
    # process's window, summed (each ran `seconds`).
    return calls, latencies


# -- The run --------------------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    seconds: float = args.seconds
    backends = args.backends.split(",")

    subjects: dict[str, dict[str, Callable[[], Measured]]] = {}
    folder = Path(tempfile.mkdtemp(prefix="factstr-group-bench-"))
    cluster: ThrowawayCluster | None = None
    if "sqlite" in backends:
        subjects["sqlite"] = {
            "floor (sqlite3, 1 writer)": lambda: sqlite_floor(folder, seconds),
            "factstr x1": lambda: sqlite_factstr(folder, seconds, 1),
            f"factstr x{THREADS}": lambda: sqlite_factstr(folder, seconds, THREADS),
        }
    if "postgres" in backends:
        cluster = ThrowawayCluster(durable=True)
        pg = cluster
        subjects["postgres"] = {
            "floor (psycopg, 1 writer)": lambda: postgres_floor(pg, seconds),
            "factstr x1": lambda: postgres_factstr(pg, seconds, 1),
            f"factstr x{THREADS}": lambda: postgres_factstr(pg, seconds, THREADS),
            f"factstr {PROCESSES}p x {THREADS_PER_PROCESS}t": lambda: postgres_processes(
                pg, seconds
            ),
        }
    report: dict[str, Any] = {"seconds": seconds, "rounds": args.rounds, "backends": {}}
    try:
        for backend, runs in subjects.items():
            rates: dict[str, list[float]] = {name: [] for name in runs}
            ratios: dict[str, list[float]] = {name: [] for name in runs}
            latencies: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.rounds):
                floor_rate = 0.0
                for name, run in runs.items():  # alternated: every subject once per round
                    calls, took = run()
                    rate = calls / seconds
                    if name.startswith("floor"):
                        floor_rate = rate
                    rates[name].append(rate)
                    ratios[name].append(rate / floor_rate if floor_rate else 0.0)
                    latencies[name].extend(took)
            rows = {}
            print(f"\n{backend} (durable), {args.rounds} rounds of {seconds:g} s")
            print(f"{'subject':28} {'commits/s':>10} {'x floor':>8} {'p50 ms':>8} {'p99 ms':>8}")
            for name in runs:
                row = {
                    "commits_per_second": statistics.median(rates[name]),
                    "ratio_to_floor": statistics.median(ratios[name]),
                    "per_round": rates[name],
                    "p50_ms": _percentile(latencies[name], 0.50) * 1000,
                    "p99_ms": _percentile(latencies[name], 0.99) * 1000,
                }
                rows[name] = row
                print(
                    f"{name:28} {row['commits_per_second']:10.0f} {row['ratio_to_floor']:8.2f} "
                    f"{row['p50_ms']:8.2f} {row['p99_ms']:8.2f}"
                )
            report["backends"][backend] = rows
    finally:
        if cluster is not None:
            cluster.close()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
