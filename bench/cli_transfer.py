"""The ``factstr`` command's bulk paths against hand-written floors (issue 17), in one run, subjects
alternated (A, B, A, B), each a process of its own so that its peak RSS is its own:

- ``copy``: ``factstr copy sqlite:///src.db postgresql://...`` against a script that reads the
  same rows with Python's ``sqlite3`` and writes them with psycopg ``COPY events (...) FROM
  STDIN`` into a fresh factstr database (same tables and indexes; no batch boundaries, payload
  index or cursors: the floor). PostgreSQL runs with fsync, synchronous_commit and
  full_page_writes on.
- ``export``: ``factstr export sqlite:///src.db --file out`` against a script that reads the rows
  with ``sqlite3`` and writes the same JSON lines, the stored payload text spliced in unparsed
  (the cheapest way to write them).

    .venv/bin/python bench/cli_transfer.py [--facts 1000000] [--batch 100] [--rounds 2]

Prints seconds, facts/s, the ratio factstr/floor (speed: above 1 is faster) and peak RSS (MB).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import factstr  # noqa: E402
from factstr import NewEvent  # noqa: E402

from tests.postgres_server import ThrowawayCluster  # noqa: E402

EXPORT_FLOOR = """
import sqlite3, sys, json
db = sqlite3.connect(sys.argv[1])
dumps = json.dumps
with open(sys.argv[2], "w") as out:
    rows = db.execute("SELECT sequence_number, occurred_at, event_type, payload FROM events ORDER BY sequence_number")
    while chunk := rows.fetchmany(10000):
        out.write("".join(
            f'{{"sequence_number":{s},"occurred_at":"{t}","event_type":{dumps(e)},"payload":{p}}}\\n'
            for s, t, e, p in chunk))
"""

COPY_FLOOR = """
import sqlite3, sys, psycopg
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT sequence_number, occurred_at, event_type, payload FROM events ORDER BY sequence_number")
with psycopg.connect(sys.argv[2]) as pg, pg.cursor() as cur:
    with cur.copy("COPY events (sequence_number, occurred_at, event_type, payload) FROM STDIN") as copy:
        while chunk := rows.fetchmany(10000):
            for row in chunk:
                copy.write_row(row)
"""


def run_measured(args: list[str]) -> tuple[float, float]:
    """Runs a process; returns (seconds, peak RSS in MB)."""
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        assert process.stderr is not None
        raise SystemExit(f"{args[:4]} failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def fill(path: Path, facts: int, batch: int) -> None:
    payload = {"course": "c-0000", "student": "s-000000", "seats": 30, "note": "x" * 100}
    with factstr.SqliteStore(path, synchronous="normal") as store:
        for start in range(0, facts, batch):
            store.append(
                [
                    NewEvent("Enrolled", {**payload, "student": f"s-{n:06}", "n": n})
                    for n in range(start, min(start + batch, facts))
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--facts", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100, help="events per batch of the source")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--source", type=Path, help="reuse this source.db of an earlier run (--facts must match)"
    )
    parser.add_argument("--python", default=sys.executable, help="the Python that runs factstr")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="factstr-cli-bench-"))
    source = options.source or folder / "source.db"
    started = time.perf_counter()
    if options.source is None:
        fill(source, options.facts, options.batch)
    print(
        f"source: {options.facts:,} facts in batches of {options.batch} "
        f"({time.perf_counter() - started:.0f} s to write)",
        flush=True,
    )
    python = options.python
    results: dict[str, list[tuple[float, float]]] = {}
    server = ThrowawayCluster(durable=True)
    try:
        fsync = server.sql("SHOW fsync").strip()
        for _round in range(options.rounds):
            for name, make in (
                ("export factstr", lambda: [python, "-m", "factstr", "export", f"sqlite:///{source}", "--file", str(folder / "a.jsonl")]),
                ("export floor", lambda: [python, "-c", EXPORT_FLOOR, str(source), str(folder / "b.jsonl")]),
                ("copy factstr", lambda: [python, "-m", "factstr", "copy", f"sqlite:///{source}", new_database(server)]),
                ("copy floor", lambda: [python, "-c", COPY_FLOOR, str(source), new_database(server)]),
            ):  # fmt: skip
                args = make()
                results.setdefault(name, []).append(run_measured(args))
                print(f"  {name}: {results[name][-1][0]:.1f} s", flush=True)
                if args[-1].startswith("postgresql://"):
                    server.drop_database(args[-1].rsplit("/", 1)[1])
    finally:
        server.close()
    print(f"\n{options.facts:,} facts, PostgreSQL fsync={fsync}, {options.rounds} rounds (median)")
    for name, runs in results.items():
        seconds = statistics.median(s for s, _ in runs)
        rss = max(r for _, r in runs)
        print(
            f"{name:16} {seconds:7.1f} s  {options.facts / seconds:10,.0f} facts/s  peak RSS {rss:6.0f} MB"
        )
    for what in ("export", "copy"):
        ours = statistics.median(s for s, _ in results[f"{what} factstr"])
        floor = statistics.median(s for s, _ in results[f"{what} floor"])
        print(f"{what}: factstr speed / floor speed = {floor / ours:.2f}")


def new_database(server: ThrowawayCluster) -> str:
    """A fresh database with factstr's tables (created by opening a store on it)."""
    url = server.url_for(server.create_database("clibench"))
    factstr.PostgresStore(url).close()
    return url


if __name__ == "__main__":
    main()
