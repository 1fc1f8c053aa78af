"""The asyncio API's figures (issue 14, SPEC §12), every baseline measured in the same run,
subjects alternated (A, B, A, B) and the best repeat of each kept:

- heartbeat: the p50/p99 lateness of a 1 ms heartbeat task while 100 tasks append, query and
  stream on one `aio.SqliteStore`, in windows alternated with windows of the idle loop (on a
  shared machine the OS schedules even an idle loop late: that is the scale);
- PostgreSQL: 100 tasks doing single-event appends, `aio.PostgresStore(pool_size=4)` against
  psycopg's `AsyncConnectionPool` with the same pool size doing the floor's append (BEGIN and
  an advisory lock, one INSERT numbering with MAX+1, the batch row, NOTIFY, COMMIT; see
  `bench/subjects/floor_postgres.py`);
- SQLite: the same 100 tasks on `aio.SqliteStore` against the sync `SqliteStore` driven by one
  thread;
- overhead: `await store.append(...)` against the sync call, one task, Memory store (µs/call),
  the fastest of many short windows of each, alternated.

PostgreSQL should be durable (fsync, synchronous_commit on: the run prints what it got): point
FACTSTR_TEST_POSTGRES_URL at e.g. `tests.postgres_server.ThrowawayCluster(durable=True)`.

    nice -n 10 .venv/bin/python bench/aio.py [--quick | --smoke]

Prints the figures and writes bench/results/aio.json. CI runs ``--quick`` (checks no figure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the harness as the `bench` package
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import factstr
from factstr import NewEvent, aio

from bench.servers import close_env, env
from bench.timing import percentile

RESULTS = Path(__file__).resolve().parent / "results"
TASKS = 100
PAYLOAD = {"course": "rust-101", "student": "ada", "note": "x" * 120}


def event() -> NewEvent:
    return NewEvent("StudentEnrolled", PAYLOAD)


def best_alternated(subjects: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Runs each subject `repeats` times, alternating, and keeps each one's best figure
    (higher is better)."""
    best: dict[str, float] = {}
    for _ in range(repeats):
        for name, run in subjects.items():
            figure = run()
            best[name] = max(best.get(name, 0.0), figure)
    return best


# --- heartbeat ---------------------------------------------------------------------------------


async def heartbeat_lateness(
    load: Callable[[asyncio.Event], Awaitable[None]] | None, seconds: float
) -> list[float]:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    lateness: list[float] = []

    async def beat() -> None:
        while not stop.is_set():
            start = loop.time()
            await asyncio.sleep(0.001)
            lateness.append(loop.time() - start - 0.001)

    beating = asyncio.ensure_future(beat())
    loading = asyncio.ensure_future(load(stop)) if load is not None else None
    await asyncio.sleep(seconds)
    stop.set()
    await beating
    if loading is not None:
        await loading
    return lateness


def heartbeat(folder: Path, seconds: float, rounds: int) -> dict[str, float]:
    """Idle and loaded windows alternated (`rounds` of each, `seconds` each): on a shared
    machine the idle loop's own lateness (the OS scheduling it late) is the scale for the
    loaded one."""

    async def run() -> dict[str, float]:
        idle: list[float] = []
        loaded: list[float] = []
        async with aio.SqliteStore(folder / "heartbeat.db") as store:
            await store.append([event()])

            async def load(stop: asyncio.Event) -> None:
                async def appender() -> None:
                    while not stop.is_set():
                        await store.append([event()])

                async def querier() -> None:
                    while not stop.is_set():
                        await store.query(factstr.EventQuery.for_event_types(["none"]))

                async def streamer() -> None:
                    async with store.subscribe() as sub:
                        while not stop.is_set():
                            await sub.next_batch(timeout=0.05)

                kinds = [appender, querier, streamer]
                await asyncio.gather(*(kinds[i % 3]() for i in range(TASKS)))

            for _ in range(rounds):
                idle += await heartbeat_lateness(None, seconds)
                loaded += await heartbeat_lateness(load, seconds)
        return {
            "idle_p50_ms": percentile(idle, 0.5) * 1e3,
            "idle_p99_ms": percentile(idle, 0.99) * 1e3,
            "loaded_p50_ms": percentile(loaded, 0.5) * 1e3,
            "loaded_p99_ms": percentile(loaded, 0.99) * 1e3,
            "loaded_max_ms": max(loaded) * 1e3,
            "beats": len(loaded),
        }

    return asyncio.run(run())


# --- 100 tasks of single appends ---------------------------------------------------------------


async def many_tasks(append: Callable[[], Awaitable[object]], total: int) -> float:
    """Appends per second of TASKS tasks sharing `total` single-event appends."""
    per_task = max(1, total // TASKS)

    async def worker() -> None:
        for _ in range(per_task):
            await append()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(TASKS)))
    return per_task * TASKS / (time.perf_counter() - start)


# The floor's writers' lock, as bench/subjects/floor_postgres.py's sync floor takes it: one
# simple-protocol round trip for the transaction and a transaction-scoped advisory lock (writers
# serialised, MAX+1 numbering gap-free).
BEGIN_AND_LOCK = "BEGIN; SELECT pg_advisory_xact_lock(7215)"


def postgres(total: int, repeats: int) -> dict[str, float]:
    import psycopg_pool

    from bench.subjects.floor_postgres import UNCONDITIONAL, UPSTREAM_PG_SCHEMA, dumps

    ours_url = env().pg_create()
    floor_url = env().pg_create()
    import psycopg

    with psycopg.connect(floor_url, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS events, append_batches CASCADE")
        db.execute(UPSTREAM_PG_SCHEMA)
    params = {"type": "StudentEnrolled", "payloads": [dumps(PAYLOAD)]}

    def ours() -> float:
        async def run() -> float:
            async with aio.PostgresStore(ours_url, pool_size=4) as store:
                await store.append([event()])
                return await many_tasks(lambda: store.append([event()]), total)

        return asyncio.run(run())

    def floor() -> float:
        async def run() -> float:
            async with psycopg_pool.AsyncConnectionPool(
                floor_url, min_size=4, max_size=4, kwargs={"autocommit": True}, open=False
            ) as pool:

                async def append() -> None:
                    async with pool.connection() as conn:
                        await conn.execute(BEGIN_AND_LOCK)
                        try:
                            await conn.execute(UNCONDITIONAL, params)
                            await conn.execute("COMMIT")
                        except BaseException:
                            await conn.execute("ROLLBACK")
                            raise

                await append()
                return await many_tasks(append, total)

        return asyncio.run(run())

    try:
        return best_alternated(
            {"aio.PostgresStore": ours, "psycopg AsyncConnectionPool": floor}, repeats
        )
    finally:
        env().pg_drop(ours_url)
        env().pg_drop(floor_url)


def sqlite(folder: Path, total: int, repeats: int) -> dict[str, float]:
    def ours() -> float:
        async def run() -> float:
            async with aio.SqliteStore(folder / "aio.db") as store:
                await store.append([event()])
                return await many_tasks(lambda: store.append([event()]), total)

        return asyncio.run(run())

    def sync_one_thread() -> float:
        with factstr.SqliteStore(folder / "sync.db") as store:
            store.append([event()])
            start = time.perf_counter()
            for _ in range(total):
                store.append([event()])
            return total / (time.perf_counter() - start)

    return best_alternated(
        {"aio.SqliteStore": ours, "sync SqliteStore, 1 thread": sync_one_thread}, repeats
    )


# --- overhead of await over the sync call -------------------------------------------------------


def overhead(calls: int, window: int = 200) -> dict[str, float]:
    """Short windows of `window` calls, sync and awaited alternated, the fastest window of each
    kept: on a shared machine most windows include time the OS gave to other processes."""
    events = [event()]

    async def run() -> tuple[float, float]:
        sync_store = factstr.MemoryStore()
        store = aio.MemoryStore()
        await store.append(events)
        best_sync = best_await = float("inf")
        for _ in range(max(1, calls // window)):
            start = time.perf_counter()
            for _ in range(window):
                sync_store.append(events)
            best_sync = min(best_sync, (time.perf_counter() - start) / window)
            start = time.perf_counter()
            for _ in range(window):
                await store.append(events)
            best_await = min(best_await, (time.perf_counter() - start) / window)
        return best_sync, best_await

    sync_s, await_s = asyncio.run(run())
    return {
        "sync_us": sync_s * 1e6,
        "await_us": await_s * 1e6,
        "overhead_us": (await_s - sync_s) * 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick", action="store_true", help="smaller counts (about 10 s; what CI runs)"
    )
    mode.add_argument("--smoke", action="store_true", help="tiny counts: only proves it runs")
    parser.add_argument("--output", type=Path, default=RESULTS, help="folder for aio.json")
    args = parser.parse_args()
    repeats = 1 if args.smoke else 2 if args.quick else 3
    scale = 0.1 if args.smoke else 1 if args.quick else 4
    folder = env().new_path("aio", suffix="")
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    try:
        results["heartbeat"] = heartbeat(folder, 0.5 * scale, rounds=2)
        results["postgres_100_tasks_appends_per_s"] = postgres(int(500 * scale), repeats)
        results["sqlite_100_tasks_appends_per_s"] = sqlite(folder, int(300 * scale), repeats)
        results["await_overhead"] = overhead(int(10_000 * scale))
        results["postgres_durability"] = env().pg_durability()
    finally:
        close_env()
    hb = results["heartbeat"]
    pg = results["postgres_100_tasks_appends_per_s"]
    sq = results["sqlite_100_tasks_appends_per_s"]
    ov = results["await_overhead"]
    print(
        f"heartbeat lateness, 100 tasks appending/querying/streaming (SQLite): p50 {hb['loaded_p50_ms']:.3f} ms, p99 {hb['loaded_p99_ms']:.3f} ms, max {hb['loaded_max_ms']:.1f} ms; idle loop p99 {hb['idle_p99_ms']:.3f} ms"
    )
    print(
        f"PostgreSQL ({results['postgres_durability']}), 100 tasks single appends: aio {pg['aio.PostgresStore']:.0f}/s, psycopg AsyncConnectionPool {pg['psycopg AsyncConnectionPool']:.0f}/s, factstr x {pg['aio.PostgresStore'] / pg['psycopg AsyncConnectionPool']:.2f}"
    )
    print(
        f"SQLite, 100 tasks single appends: aio {sq['aio.SqliteStore']:.0f}/s, sync 1 thread {sq['sync SqliteStore, 1 thread']:.0f}/s, factstr x {sq['aio.SqliteStore'] / sq['sync SqliteStore, 1 thread']:.2f}"
    )
    print(
        f"await store.append overhead (Memory, one task): sync {ov['sync_us']:.1f} µs, await {ov['await_us']:.1f} µs, overhead {ov['overhead_us']:.1f} µs"
    )
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "aio.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
