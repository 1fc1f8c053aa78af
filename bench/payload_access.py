"""What reading record payloads costs in the query benchmark (S4's query of 10,000 records, S1's
~180-byte nested payloads, a MemoryStore so that only the binding's conversions are timed), and
how a build of factstr compares with another one on it (issue 16: copy-on-access against a
frozen view). Three readings of the same query result:

- `query`: `store.query(limit=n)` alone (records built, no payload read);
- `read 1x`: the query, then every record's `payload` once (S4);
- `read 3x`: the query, then every record's `payload` three times (a loop that reads it again).

    python bench/payload_access.py                    # this build only
    python bench/payload_access.py --other DIR        # also the `factstr` package found in DIR
    python bench/payload_access.py --smoke            # 1,000 records, 1 round: proves it runs

Each build runs in fresh child processes (`--other DIR` goes first on its PYTHONPATH), the
builds alternate (this, other, this, other, ...), and the best rate of each counts. Rates are
per second of the process's CPU time, not wall time: everything here runs on this one thread,
and CPU time does not count the waits for a core of a loaded, shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the harness as the `bench` package
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.subject import ENROLLED, payload

HERE = Path(__file__).resolve()
READINGS = ("query", "read 1x", "read 3x")


def measure(records: int, budget: float) -> dict[str, float]:
    """In this process: records/s of each reading, best of as many as fit in `budget` s each."""
    import factstr

    store = factstr.MemoryStore()
    store.append([factstr.NewEvent(ENROLLED, payload(i)) for i in range(records)])
    rates: dict[str, float] = {}
    for reading in READINGS:
        reads = {"query": 0, "read 1x": 1, "read 3x": 3}[reading]
        best = 0.0
        deadline = time.perf_counter() + budget
        while True:
            started = time.process_time()
            result = store.query(limit=records)
            for record in result:
                for _ in range(reads):
                    record.payload  # noqa: B018 - the access is what is measured
            best = max(best, records / max(time.process_time() - started, 1e-9))
            if time.perf_counter() > deadline:
                break
        rates[reading] = best
    return rates


def measure_in_child(records: int, budget: float, other: Path | None) -> dict[str, float]:
    env = dict(os.environ)
    if other is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(other), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(HERE), "--child", str(records), str(budget)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=600,
    )
    rates: dict[str, float] = json.loads(done.stdout)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternated child processes per build"
    )
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per reading per child")
    parser.add_argument("--other", type=Path, help="a folder holding another build of `factstr`")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("RECORDS", "BUDGET"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.child[0]), float(args.child[1]))))
        return 0
    if args.smoke:
        args.records, args.rounds, args.budget = 1_000, 1, 0.1
    builds: dict[str, Path | None] = {"this build": None}
    if args.other:
        builds[f"other ({args.other})"] = args.other
    best: dict[str, dict[str, float]] = {name: dict.fromkeys(READINGS, 0.0) for name in builds}
    for _ in range(args.rounds):
        for name, other in builds.items():
            for reading, rate in measure_in_child(args.records, args.budget, other).items():
                best[name][reading] = max(best[name][reading], rate)
    print(
        f"{args.records:,} records per query, records/s (best of {args.rounds} alternated rounds)"
    )
    print(f"{'':<40}" + "".join(f"{r:>14}" for r in READINGS))
    for name, rates in best.items():
        print(f"{name:<40}" + "".join(f"{rates[r]:>14,.0f}" for r in READINGS))
    if args.other:
        this, that = best["this build"], best[f"other ({args.other})"]
        print(f"{'this / other':<40}" + "".join(f"{this[r] / that[r]:>13.2f}x" for r in READINGS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
