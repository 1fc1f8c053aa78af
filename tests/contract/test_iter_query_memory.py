"""SPEC §3: `iter_query` holds about `page_size` records, however many match.

Two measures, each against `query()` on the same store:
- the Python objects alive at the peak (`tracemalloc`, in this process; every store);
- the peak resident memory of a fresh process that reads a real SQLite file or PostgreSQL
  database (the engine's own buffers too: a page read whole from the database would show here).
`bench/iter_query.py` measures the same at 1,000,000 records (figures in docs/values.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterable

from factstr import EventRecord, NewEvent

from tests.support import Store

RECORDS = 50_000
PAGE = 500


def _fill(store: Store, count: int) -> None:
    for start in range(0, count, 25_000):
        store.append(
            [
                NewEvent("Tick", {"i": i, "name": "course", "tags": ["a", "b"]})
                for i in range(start, min(count, start + 25_000))
            ]
        )


def _peak_python_memory(read: Callable[[], Iterable[EventRecord]]) -> tuple[int, int]:
    """(records read, bytes of Python objects alive at the peak) while reading every payload."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        count = sum(1 for record in read() if record.payload is not None)
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_iter_query_keeps_about_a_page_of_python_objects(store: Store) -> None:
    _fill(store, 20_000)
    iterated, iter_peak = _peak_python_memory(lambda: store.iter_query(page_size=PAGE))
    queried, query_peak = _peak_python_memory(store.query)
    assert iterated == queried == 20_000
    # A page of 500 records is a few hundred KiB; the whole result is 40 times that.
    assert iter_peak * 10 < query_peak, (iter_peak, query_peak)


_READER = """
import json, sys
import factstr

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)

store = OPEN
with open("/proc/self/clear_refs", "w") as clear:  # the peak (VmHWM) starts from here
    clear.write("5")
before = status("VmRSS")
if sys.argv[1] == "iter":
    count = sum(1 for r in store.iter_query(page_size=int(sys.argv[2])) if r.payload is not None)
else:
    count = sum(1 for r in store.query() if r.payload is not None)
print(json.dumps({"count": count, "peak_growth": status("VmHWM") - before}))
"""


def _read_in_child(open_code: str, how: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _READER.replace("OPEN", open_code), how, str(PAGE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, int] = json.loads(done.stdout)
    return result


def test_iter_query_resident_memory_stays_bounded_in_another_process(
    store: Store, open_code: str
) -> None:
    _fill(store, RECORDS)
    iterated = _read_in_child(open_code, "iter")
    queried = _read_in_child(open_code, "query")
    assert iterated["count"] == queried["count"] == RECORDS
    print(  # pytest -s shows the figures
        f"\niter_query(page_size={PAGE}): +{iterated['peak_growth'] / 2**20:.1f} MiB peak;"
        f" query(): +{queried['peak_growth'] / 2**20:.1f} MiB peak"
    )
    assert iterated["peak_growth"] < 24 * 2**20
    assert iterated["peak_growth"] * 3 < queried["peak_growth"]
