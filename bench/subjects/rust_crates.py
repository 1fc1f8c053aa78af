"""HOOK (TODO): the FACTSTR 0.5.2 Rust crates (`factstr-memory`, `factstr-sqlite`,
`factstr-postgres`) measured in the same run, so that the binding's overhead shows as a ratio.

Not built here: another engineer is writing `rust/factstr-parity` (a dev-only crate on the
upstream crates with a JSON-lines binary) and will add a bench binary to it. When it exists,
point FACTSTR_RUST_BENCH_BIN at it (or build it to one of DEFAULT_PATHS) and implement
`RustSubject.open` below. The intended protocol, one JSON object per line on stdin/stdout:

    -> {"op": "open", "store": "memory" | "sqlite" | "postgres", "location": "<path or url>"}
    -> {"op": "append_batch", "count": 100, "repeat": 30}      <- {"ok": true, "seconds": 0.41}
    -> {"op": "append_one", "repeat": 100}                     <- {"ok": true, "latencies": [...]}
    -> {"op": "append_if", "courses": 100, "repeat": 200}      <- {"ok": true, "seconds": ..., "conflicts": 0}
    -> {"op": "read", "limit": 10000}                          <- {"ok": true, "seconds": ..., "records": 10000}

Timing inside the binary leaves process and pipe overhead out of the Rust figures; the rows
then say "Rust crate, timed in-process". Until then the run lists the Rust subjects as not
measured, with the reason."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.servers import REPO
from bench.subject import Session, Subject

ENV_VAR = "FACTSTR_RUST_BENCH_BIN"
DEFAULT_PATHS = [REPO / "target" / "release" / "factstr-parity-bench"]


def binary() -> Path | None:
    given = os.environ.get(ENV_VAR)
    candidates = [Path(given)] if given else DEFAULT_PATHS
    return next((path for path in candidates if path.exists()), None)


@dataclass(frozen=True)
class RustSubject(Subject):
    def open(self, location: str) -> Session:  # TODO(rust baseline): drive the JSON-lines binary
        raise NotImplementedError("the Rust bench binary protocol is not implemented yet")


def subjects(groups: set[str], notes: list[str]) -> list[Subject]:
    if binary() is None:
        notes.append("FACTSTR Rust 0.5.2 crates: not measured yet (TODO: rust/factstr-parity bench binary; "
                     f"set {ENV_VAR} once it exists, see bench/subjects/rust_crates.py)")
    else:
        notes.append(f"FACTSTR Rust crates: binary found at {binary()}, but the harness side of the hook is "
                     "still a TODO (bench/subjects/rust_crates.py)")
    return []
