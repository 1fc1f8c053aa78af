"""`iter_query` against `query()` on the same store, in the same run (SPEC §3, issue 16): the
growth of peak resident memory while reading every record, and records/s.

    python bench/iter_query.py                                 # 100,000 records, SQLite + PostgreSQL
    python bench/iter_query.py --records 1000000 --keep DIR    # fill once, reuse in later runs
    python bench/iter_query.py --smoke                         # 2,000 records: proves it runs

Every reading runs in a fresh child process: it opens the store, notes its resident memory
(resetting its peak: `reset_peak_rss`), reads every record and its payload (as S4 does: "into Python objects"), and
reports the growth of the peak and the time. The two ways alternate (iter_query, query(),
iter_query, query(), ...) so that the load of a shared machine falls on both alike; the best
rate of each counts, and the largest peak growth.

`--keep DIR` keeps the SQLite file in DIR and, when FACTSTR_TEST_POSTGRES_URL names a server
that outlives the run, the database `factstr_iter_<records>` on it: a 1,000,000-record fill
takes minutes here, so later runs reuse them. Without it the files go to a temporary folder
and the test suite's throwaway PostgreSQL cluster is started, filled and removed.

`bench/run.py` runs the same comparison as its scenario S8 on the stores S3/S6 filled.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the harness as the `bench` package
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import factstr

from bench.subject import ENROLLED, fill_payload

HERE = Path(__file__).resolve()
FILL_BATCH = 50_000  # events per append while filling: few round trips, bounded memory


def open_store(kind: str, location: str) -> factstr.EventStore:
    if kind == "sqlite":
        return factstr.SqliteStore(location)
    if kind == "postgres":
        return factstr.PostgresStore(location)
    raise ValueError(f"unknown store kind {kind!r}")


def fill(store: factstr.EventStore, records: int) -> None:
    """Makes `store` hold `records` facts (S3's fill payloads), filling an empty one in big
    batches; a store that already holds exactly that many is reused as it is."""
    head = store.query(limit=0).head_sequence_number or 0
    if head == records:
        return
    if head != 0:
        raise SystemExit(f"the kept store holds {head:,} facts, not {records:,}: remove it")
    courses = max(1, records // 100)
    for start in range(0, records, FILL_BATCH):
        stop = min(records, start + FILL_BATCH)
        store.append(
            [factstr.NewEvent(ENROLLED, fill_payload(i, courses)) for i in range(start, stop)]
        )


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


def reset_peak_rss() -> int:
    """The resident memory now, in bytes, after resetting the peak (`VmHWM`) to it.

    Not `ru_maxrss`: Linux carries it over `exec` from the forked parent (the benchmark, which
    may hold far more than the reader), so a child's starting peak would be the parent's.
    `VmHWM` is the peak of this process's own memory, and writing 5 to `clear_refs` resets it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return _status_bytes("VmRSS")
    except OSError:  # not Linux: ru_maxrss, the best there is
        return peak_rss()


def peak_rss() -> int:
    try:
        return _status_bytes("VmHWM")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak * (1 if sys.platform == "darwin" else 1024)


def read(kind: str, location: str, how: str, page_size: int) -> dict[str, float]:
    """In this (fresh) process: reads every record of the store; peak RSS growth in bytes."""
    store = open_store(kind, location)
    before = reset_peak_rss()
    started, cpu_started = time.perf_counter(), time.process_time()
    count = 0
    records = store.iter_query(page_size=page_size) if how == "iter" else store.query()
    for record in records:
        if record.payload is not None:  # decoded, like every subject of S4
            count += 1
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    growth = peak_rss() - before
    store.close()
    return {"count": count, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_growth": growth}


def read_in_child(kind: str, location: str, how: str, page_size: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(HERE), "--child", kind, location, how, str(page_size)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {how} reader failed on {kind}:\n{done.stderr}")
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


@dataclass
class Comparison:
    kind: str
    records: int
    page_size: int
    iter_rate: float  # records/s of wall time, best of the repeats
    query_rate: float
    iter_cpu_rate: float  # records/s of the reader's CPU time (all its threads), best
    query_cpu_rate: float
    iter_growth: float  # bytes of peak RSS growth, largest of the repeats
    query_growth: float

    @property
    def rate_ratio(self) -> float:
        """iter_query's records/s over query()'s (1.0: as fast)."""
        return self.iter_rate / self.query_rate

    def line(self) -> str:
        mib = 2**20
        return (
            f"{self.kind:<8} {self.records:>9,} records, page_size={self.page_size:,}: "
            f"iter_query +{self.iter_growth / mib:.1f} MiB peak, {self.iter_rate:,.0f} records/s; "
            f"query() +{self.query_growth / mib:.1f} MiB peak, {self.query_rate:,.0f} records/s; "
            f"rate iter/query {self.rate_ratio:.2f}x "
            f"(per CPU second of the reader: {self.iter_cpu_rate / self.query_cpu_rate:.2f}x)"
        )


def compare(
    kind: str, location: str, records: int, repeats: int, page_size: int = 10_000
) -> Comparison:
    """Reads the store `repeats` times each way, alternated, each in a fresh process. `records`
    is at least what the store was filled with; a store other scenarios also appended to (S8
    reads the large store S3 and S6 share) holds more, and every reading must see that many."""
    readings: dict[str, list[dict[str, float]]] = {"iter": [], "query": []}
    for _ in range(repeats):
        for how, got in readings.items():
            reading = read_in_child(kind, location, how, page_size)
            count = int(reading["count"])
            if count < records or (readings["iter"] and count != readings["iter"][0]["count"]):
                raise AssertionError(f"{how} read {count:,} records, expected {records:,}")
            records = count
            got.append(reading)

    def best(how: str, seconds: str) -> float:
        return max(records / r[seconds] for r in readings[how])

    def peak(how: str) -> float:
        return max(r["peak_growth"] for r in readings[how])

    return Comparison(
        kind,
        records,
        page_size,
        best("iter", "seconds"),
        best("query", "seconds"),
        best("iter", "cpu_seconds"),
        best("query", "cpu_seconds"),
        peak("iter"),
        peak("query"),
    )


def _postgres_location(records: int, keep: bool, cleanup: list[Any]) -> str:
    sys.path.insert(0, str(HERE.parent.parent))
    from tests.postgres_server import URL_ENV, start_server

    server = start_server()
    if not (keep and os.environ.get(URL_ENV)):
        cleanup.append(server.close)  # a throwaway cluster: filled anew each run
    name = f"factstr_iter_{records}"
    factstr.PostgresStore.bootstrap(server.url, name).close()
    return str(server.url_for(name))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2, help="readings of each way")
    parser.add_argument("--page-size", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the filled stores here")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--smoke", action="store_true", help="2,000 records, one reading each")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "LOCATION", "HOW", "PAGE_SIZE"))
    args = parser.parse_args()
    if args.child:
        kind, location, how, page_size = args.child
        print(json.dumps(read(kind, location, how, int(page_size))))
        return 0
    if args.smoke:
        args.records, args.repeats = 2_000, 1
    cleanup: list[Any] = []
    folder = args.keep or Path(tempfile.mkdtemp(prefix="factstr-iter-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for kind in [k.strip() for k in args.stores.split(",") if k.strip()]:
            if kind == "sqlite":
                location = str(folder / f"iter-{args.records}.db")
            else:
                location = _postgres_location(args.records, args.keep is not None, cleanup)
            began = time.perf_counter()
            with open_store(kind, location) as store:
                fill(store, args.records)
            print(f"[{kind}: store ready in {time.perf_counter() - began:.0f} s]", file=sys.stderr)
            result = compare(kind, location, args.records, args.repeats, args.page_size)
            print(result.line(), flush=True)
    finally:
        for close in cleanup:
            close()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
