"""factstr benchmarks: each scenario measures factstr and its baseline in the same run and
reports the ratio, because these machines are shared and noisy.

    python bench/run.py            # quick mode (a couple of minutes)
    python bench/run.py --full     # larger stores, more repetitions
    python bench/run.py --only s3  # one scenario

Results are printed as a table and written to bench/results/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import factstr
from factstr import EventFilter, EventQuery, NewEvent

RESULTS = Path(__file__).resolve().parent / "results"

UPSTREAM_SCHEMA = """
CREATE TABLE events (sequence_number INTEGER PRIMARY KEY, occurred_at TEXT NOT NULL,
                     event_type TEXT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE append_batches (first_sequence_number INTEGER PRIMARY KEY,
                             last_sequence_number INTEGER NOT NULL);
CREATE INDEX idx_events_type ON events(event_type);
CREATE INDEX idx_events_occurred_at ON events(occurred_at);
"""


@dataclass
class Result:
    scenario: str
    subject: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float = 0.0
    ratio: float = 0.0
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def payload(i: int) -> dict[str, object]:
    """A realistic ~180-byte event payload."""
    return {
        "course": f"course-{i % 1000}",
        "student": f"student-{i}",
        "amount": i % 97,
        "tags": ["enrolled", "2026"],
        "meta": {"source": "bench", "ok": True},
    }


def fresh_path(folder: Path, name: str) -> Path:
    path = folder / name
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def raw_sqlite(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """The hand-written floor: Python's sqlite3 on the upstream table layout."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {synchronous}")
    connection.executescript(UPSTREAM_SCHEMA)
    return connection


def now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def best_rate(setup: Callable[[], object], run: Callable[[object], int], repeats: int) -> float:
    """Items per second of the fastest of `repeats` runs (the least disturbed one). `setup`
    (opening a fresh store, creating tables) is not timed; `run` returns how many items it did."""
    rates = []
    for _ in range(repeats):
        subject = setup()
        start = time.perf_counter()
        items = run(subject)
        rates.append(items / (time.perf_counter() - start))
        close = getattr(subject, "close", None)
        if close is not None:
            close()
    return max(rates)


# S1: batches of 100 events, synchronous=FULL.
def s1_batch_appends(folder: Path, quick: bool) -> list[Result]:
    batches = 30 if quick else 200
    repeats = 3 if quick else 5
    payloads = [payload(i) for i in range(100)]

    # Both sides start from the same Python dicts: factstr builds NewEvents, the floor JSON text.
    def ours(store: factstr.EventStore) -> int:
        for _ in range(batches):
            store.append([NewEvent("StudentEnrolled", p) for p in payloads])
        return batches * 100

    def floor(connection: sqlite3.Connection) -> int:
        next_seq = 1
        for _ in range(batches):
            connection.execute("BEGIN IMMEDIATE")
            stamp = now_text()
            rows = [(next_seq + i, stamp, "StudentEnrolled", json.dumps(p, separators=(",", ":")))
                    for i, p in enumerate(payloads)]
            connection.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
            connection.execute("INSERT INTO append_batches VALUES (?, ?)", (next_seq, next_seq + 99))
            connection.execute("COMMIT")
            next_seq += 100
        return batches * 100

    base = best_rate(lambda: raw_sqlite(fresh_path(folder, "s1-raw.db")), floor, repeats)  # type: ignore[arg-type]
    mine = best_rate(lambda: factstr.SqliteStore(fresh_path(folder, "s1.db")), ours, repeats)  # type: ignore[arg-type]
    return [Result("S1 batch of 100 (sync FULL)", "factstr SqliteStore", mine, "events/s",
                   "python sqlite3 executemany", base, mine / base)]


# S2: single-event appends, synchronous=FULL.
def s2_single_appends(folder: Path, quick: bool) -> list[Result]:
    count = 100 if quick else 500
    repeats = 3 if quick else 5
    single = payload(1)
    latencies: list[float] = []

    def ours(store: factstr.EventStore) -> int:
        for _ in range(count):
            start = time.perf_counter()
            store.append([NewEvent("StudentEnrolled", single)])
            latencies.append(time.perf_counter() - start)
        return count

    def floor(connection: sqlite3.Connection) -> int:
        for seq in range(1, count + 1):
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (seq, now_text(), "StudentEnrolled",
                                                                        json.dumps(single, separators=(",", ":"))))
            connection.execute("COMMIT")
        return count

    base = best_rate(lambda: raw_sqlite(fresh_path(folder, "s2-raw.db")), floor, repeats)  # type: ignore[arg-type]
    mine = best_rate(lambda: factstr.SqliteStore(fresh_path(folder, "s2.db")), ours, repeats)  # type: ignore[arg-type]
    latencies.sort()
    return [Result("S2 single-event append (sync FULL)", "factstr SqliteStore", mine, "appends/s",
                   "python sqlite3 insert+commit", base, mine / base,
                   note="cost ratio = 1/ratio",
                   extra={"p50_ms": 1000 * latencies[len(latencies) // 2],
                          "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)]})]


# S3: append_if on a context of ~100 facts, store of 10,000 vs 1,000,000 facts.
def fill(store: factstr.EventStore, total: int, courses: int) -> None:
    """`total` facts spread over `courses` courses, so each course has total/courses facts."""
    batch = 1000
    for start in range(0, total, batch):
        store.append([NewEvent("StudentEnrolled", {"course": f"c{(start + i) % courses}", "student": f"s{start + i}",
                                                   "amount": (start + i) % 97})
                      for i in range(batch)])


def append_if_rate(store: factstr.EventStore, courses: int, rounds: int) -> float:
    def run(_: object) -> int:
        for r in range(rounds):
            course = f"c{(r * 7919) % courses}"
            context = EventQuery([EventFilter(["StudentEnrolled"], [{"course": course}])])
            version = store.query(context, limit=0).current_context_version
            store.append_if([NewEvent("StudentEnrolled", {"course": course, "student": f"x{r}"})], context, version)
        return rounds
    return best_rate(lambda: None, run, 3)


def s3_append_if_scaling(folder: Path, quick: bool) -> list[Result]:
    large = 200_000 if quick else 1_000_000
    small = 10_000
    rounds = 100
    results = []
    rates = {}
    for total in (small, large):
        courses = total // 100
        with factstr.SqliteStore(fresh_path(folder, f"s3-{total}.db"), synchronous="normal") as store:
            fill(store, total, courses)
            rates[total] = append_if_rate(store, courses, rounds)
    results.append(Result(f"S3 append_if, context ~100 facts, {large:,} facts", "factstr SqliteStore",
                          rates[large], "ops/s", f"same on {small:,} facts", rates[small],
                          rates[large] / rates[small], note="cost ratio = 1/ratio; target <= 2x"))
    return results


# --- PostgreSQL -------------------------------------------------------------------------

UPSTREAM_PG_SCHEMA = """
CREATE TABLE events (sequence_number BIGINT PRIMARY KEY, occurred_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
                     event_type TEXT NOT NULL, payload JSONB NOT NULL);
CREATE TABLE append_batches (first_sequence_number BIGINT PRIMARY KEY, last_sequence_number BIGINT NOT NULL);
CREATE INDEX idx_events_type ON events(event_type);
CREATE INDEX idx_events_occurred_at ON events(occurred_at);
CREATE INDEX idx_events_payload_gin ON events USING gin(payload);
"""

UNNEST_INSERT = (
    "INSERT INTO events (sequence_number, occurred_at, event_type, payload) "
    "SELECT n, now(), t, p::jsonb FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS u(n, t, p)"
)


class PgServer:
    """The PostgreSQL server the benchmarks use: FACTSTR_TEST_POSTGRES_URL, or a throwaway cluster
    started like the test suite's (synchronous_commit and fsync as that cluster sets them)."""

    def __init__(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.postgres_server import start_server
        self.server = start_server()

    def fresh_url(self) -> str:
        return self.server.url_for(self.server.create_database("bench"))

    def close(self) -> None:
        self.server.close()


_pg: PgServer | None = None


def pg() -> PgServer:
    global _pg
    if _pg is None:
        _pg = PgServer()
    return _pg


def psycopg_floor(url: str) -> object:
    import psycopg
    connection = psycopg.connect(url)
    connection.execute(UPSTREAM_PG_SCHEMA)  # type: ignore[arg-type]
    connection.commit()
    return connection


def p1_batch_appends(folder: Path, quick: bool) -> list[Result]:
    batches = 30 if quick else 200
    repeats = 3 if quick else 5
    payloads = [payload(i) for i in range(100)]

    def ours(store: factstr.EventStore) -> int:
        for _ in range(batches):
            store.append([NewEvent("StudentEnrolled", p) for p in payloads])
        return batches * 100

    def floor(connection: "psycopg.Connection[object]") -> int:  # type: ignore[name-defined]  # noqa: F821
        next_seq = 1
        for _ in range(batches):
            with connection.transaction():
                numbers = list(range(next_seq, next_seq + 100))
                texts = [json.dumps(p, separators=(",", ":")) for p in payloads]
                connection.execute(UNNEST_INSERT, (numbers, ["StudentEnrolled"] * 100, texts))
                connection.execute("INSERT INTO append_batches VALUES (%s, %s)", (next_seq, next_seq + 99))
            next_seq += 100
        return batches * 100

    base = best_rate(lambda: psycopg_floor(pg().fresh_url()), floor, repeats)  # type: ignore[arg-type]
    mine = best_rate(lambda: factstr.PostgresStore(pg().fresh_url()), ours, repeats)  # type: ignore[arg-type]
    return [Result("P1 batch of 100 (PostgreSQL)", "factstr PostgresStore", mine, "events/s",
                   "psycopg INSERT..unnest", base, mine / base, note="target >= 0.7")]


def p2_single_appends(folder: Path, quick: bool) -> list[Result]:
    count = 200 if quick else 1000
    repeats = 3 if quick else 5
    single = payload(1)
    latencies: list[float] = []

    def ours(store: factstr.EventStore) -> int:
        for _ in range(count):
            start = time.perf_counter()
            store.append([NewEvent("StudentEnrolled", single)])
            latencies.append(time.perf_counter() - start)
        return count

    def floor(connection: "psycopg.Connection[object]") -> int:  # type: ignore[name-defined]  # noqa: F821
        for seq in range(1, count + 1):
            with connection.transaction():
                connection.execute(UNNEST_INSERT, ([seq], ["StudentEnrolled"], [json.dumps(single, separators=(",", ":"))]))
        return count

    base = best_rate(lambda: psycopg_floor(pg().fresh_url()), floor, repeats)  # type: ignore[arg-type]
    mine = best_rate(lambda: factstr.PostgresStore(pg().fresh_url()), ours, repeats)  # type: ignore[arg-type]
    latencies.sort()
    return [Result("P2 single-event append (PostgreSQL)", "factstr PostgresStore", mine, "appends/s",
                   "psycopg INSERT..unnest, one row", base, mine / base, note="target >= 0.8",
                   extra={"p50_ms": 1000 * latencies[len(latencies) // 2],
                          "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)]})]


def p3_append_if_scaling(folder: Path, quick: bool) -> list[Result]:
    large = 200_000 if quick else 1_000_000
    small = 10_000
    rates = {}
    for total in (small, large):
        courses = total // 100
        with factstr.PostgresStore(pg().fresh_url()) as store:
            fill(store, total, courses)
            rates[total] = append_if_rate(store, courses, 100)
    return [Result(f"P3 append_if, context ~100 facts, {large:,} facts", "factstr PostgresStore",
                   rates[large], "ops/s", f"same on {small:,} facts", rates[small],
                   rates[large] / rates[small], note="cost ratio = 1/ratio; target <= 2x")]


LATENCY_CHILD = """
import sys, time, factstr
store = factstr.connect(sys.argv[1])
for line in sys.stdin:
    store.append([factstr.NewEvent("Ping", {"sent": time.time()})])
    print("ok", flush=True)
"""


def stream_latency(url: str, rounds: int, cross_process: bool) -> tuple[float, float]:
    """p50 and p99 (ms) from append (wall clock in the appender) to delivery (in a stream)."""
    import subprocess
    import threading
    delays: list[float] = []
    arrived = threading.Event()
    with factstr.connect(url) as store:
        def handler(batch: list[factstr.EventRecord]) -> None:
            now = time.time()
            delays.extend(now - r.payload["sent"] for r in batch)
            arrived.set()
        with store.stream_all(handler):
            if cross_process:
                child = subprocess.Popen([sys.executable, "-c", LATENCY_CHILD, url], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
                assert child.stdin is not None and child.stdout is not None
                for _ in range(rounds):
                    arrived.clear()
                    child.stdin.write("go\n")
                    child.stdin.flush()
                    child.stdout.readline()
                    arrived.wait(5)
                child.stdin.close()
                child.wait(10)
            else:
                for _ in range(rounds):
                    arrived.clear()
                    store.append([NewEvent("Ping", {"sent": time.time()})])
                    arrived.wait(5)
    delays.sort()
    return 1000 * delays[len(delays) // 2], 1000 * delays[int(len(delays) * 0.99)]


def s5_stream_latency(folder: Path, quick: bool) -> list[Result]:
    rounds = 100 if quick else 500
    results = []
    urls = {"SQLite": f"sqlite:///{fresh_path(folder, 's5.db')}", "PostgreSQL": pg().fresh_url()}
    for name, url in urls.items():
        for cross in (False, True):
            p50, p99 = stream_latency(url, rounds, cross)
            where = "other process" if cross else "same process"
            results.append(Result(f"S5 stream latency, {name}, {where}", f"factstr {name}", p50, "ms p50",
                                  note=f"p99 {p99:.2f} ms", extra={"p99_ms": p99}))
    return results


SCENARIOS: dict[str, Callable[[Path, bool], list[Result]]] = {
    "s1": s1_batch_appends,
    "s2": s2_single_appends,
    "s3": s3_append_if_scaling,
    "s5": s5_stream_latency,
    "p1": p1_batch_appends,
    "p2": p2_single_appends,
    "p3": p3_append_if_scaling,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="larger stores and more repetitions")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run only these scenarios")
    args = parser.parse_args()
    quick = not args.full
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="factstr-bench-", dir=os.environ.get("FACTSTR_BENCH_DIR")) as tmp:
        for name in args.only or sorted(SCENARIOS):
            started = time.perf_counter()
            results.extend(SCENARIOS[name](Path(tmp), quick))
            print(f"[{name} took {time.perf_counter() - started:.1f} s]", file=sys.stderr)
        if _pg is not None:
            _pg.close()
    print(f"{'scenario':<48} {'factstr':>14} {'baseline':>14} {'ratio':>7}  baseline is")
    for r in results:
        extra = " ".join(f"{k}={v:.3f}" for k, v in r.extra.items())
        print(f"{r.scenario:<48} {r.value:>10,.0f} {r.unit:<3} {r.baseline_value:>14,.0f} {r.ratio:>7.2f}  "
              f"{r.baseline} {r.note} {extra}".rstrip())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "results.json").write_text(json.dumps(
        {"mode": "quick" if quick else "full", "python": sys.version, "results": [asdict(r) for r in results]},
        indent=2))


if __name__ == "__main__":
    main()
