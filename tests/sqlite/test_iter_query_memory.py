"""SPEC §3: `iter_query` holds about `page_size` records, however many match. Measured as the
peak resident memory of a fresh process reading 200 000 records of a real SQLite file, once with
`iter_query(page_size=1000)` and once with `query()`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from factstr import NewEvent, SqliteStore

RECORDS = 200_000

_READER = """
import json, sys, time
import factstr

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)

store = factstr.SqliteStore(sys.argv[1])
before = status("VmRSS")
start = time.perf_counter()
if sys.argv[2] == "iter":
    count = sum(1 for _ in store.iter_query(page_size=1000))
else:
    count = len(store.query().event_records)
seconds = time.perf_counter() - start
print(json.dumps({"count": count, "peak_growth": status("VmHWM") - before, "seconds": seconds}))
"""


def _read(path: Path, how: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _READER, str(path), how],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def test_iter_query_memory_stays_bounded_where_query_grows(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    with SqliteStore(path, synchronous="normal") as store:
        for start in range(0, RECORDS, 20_000):
            store.append(
                [
                    NewEvent("Tick", {"i": i, "name": "course", "tags": ["a", "b"]})
                    for i in range(start, start + 20_000)
                ]
            )
    iterated = _read(path, "iter")
    queried = _read(path, "query")
    assert iterated["count"] == queried["count"] == RECORDS
    # The figures the README quotes (pytest -s shows them).
    print(
        f"\niter_query(page_size=1000): +{iterated['peak_growth'] / 2**20:.1f} MiB peak, {iterated['seconds']:.2f} s;"
        f" query(): +{queried['peak_growth'] / 2**20:.1f} MiB peak, {queried['seconds']:.2f} s"
    )
    assert iterated["peak_growth"] < 64 * 2**20
    assert iterated["peak_growth"] * 4 < queried["peak_growth"]
