"""The FACTSTR 0.5.2 Rust crates (`factstr-memory`, `factstr-sqlite`, `factstr-postgres`) in the
same run, so that what the Python binding adds shows as a ratio.

They are driven through `rust/factstr-parity`, the dev-only JSON-lines binary of the parity
tests (built here with `cargo build --release` when missing). Each operation is one line to the
binary and one line back: the Rust rows include that pipe round trip (about 20-50 µs), which
matters for single appends and small decisions and not for batches. Durable replay (S6) is
timed inside the binary (`count_only`), without pipe or JSON per event.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.servers import REPO, env
from bench.subject import ENROLLED, Payload, Session, Subject, Unsupported
from bench.subjects.factstr_stores import drop_sqlite_files

MANIFEST = REPO / "rust" / "factstr-parity" / "Cargo.toml"
CAPABILITIES = frozenset({"s1", "s2", "s3", "s4", "s6"})


def binary() -> Path | None:
    """The parity binary, built when missing; None when it cannot be built."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "factstr-target")
    path = target / "release" / "factstr-parity"
    if not path.exists():
        cargo = shutil.which("cargo")
        if cargo is None:
            return None
        built = subprocess.run(
            [cargo, "build", "--release", "--locked", "--manifest-path", str(MANIFEST)],
            env={**os.environ, "CARGO_TARGET_DIR": str(target)},
            capture_output=True,
        )
        if built.returncode != 0:
            return None
    return path if path.exists() else None


def context(course: str) -> dict[str, Any]:
    return {
        "filters": [{"event_types": [ENROLLED], "payload_predicates": [{"course": course}]}],
        "min": None,
    }


class RustSession(Session):
    def __init__(self, program: Path, open_line: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [str(program)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.request(open_line)

    def request(self, line: dict[str, Any]) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(line) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(f"upstream: {reply['error']}")
        return reply["ok"]

    def append_batch(self, payloads: Sequence[Payload]) -> None:
        self.request(
            {"op": "append", "events": [{"type": ENROLLED, "payload": p} for p in payloads]}
        )

    def decide(self, course: str) -> int | None:
        version: int | None = self.request({"op": "query", "query": context(course)})["version"]
        return version

    def append_if(self, course: str, item: Payload, version: int | None) -> bool:
        line = {
            "op": "append_if",
            "events": [{"type": ENROLLED, "payload": item}],
            "query": context(course),
            "expected": version,
        }
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(line) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            if reply["error"].get("kind") == "Conflict":
                return False
            raise RuntimeError(f"upstream: {reply['error']}")
        return True

    def read(self, limit: int) -> int:
        # Upstream's query has no limit: ask for exactly the first `limit` events by type and
        # lower bound is not possible either, so this reads the whole store (S4's stores hold
        # exactly the records it reads).
        records = self.request({"op": "query", "query": {"filters": None, "min": None}})["records"]
        return sum(1 for r in records[:limit] if r["payload"] is not None)

    def replay(self, name: str) -> int:
        events: int = self.request({"op": "durable", "name": name, "count_only": True})["events"]
        return events

    def listen(self, deliver: Any) -> Any:
        raise Unsupported

    def close(self) -> None:
        try:
            self.request({"op": "close"})
        except (RuntimeError, ValueError, OSError):
            pass
        self.proc.wait(timeout=30)


@dataclass(frozen=True)
class RustSubject(Subject):
    kind: str = "memory"

    def create(self) -> str:
        if self.kind == "memory":
            return "memory"
        if self.kind == "sqlite":
            return str(env().new_path("rust-sqlite"))
        return env().pg_create()

    def open(self, location: str) -> Session:
        program = binary()
        assert program is not None
        if self.kind == "memory":
            raise Unsupported  # an upstream memory store lives in one process: see subjects()
        line = (
            {"open": "sqlite", "path": location}
            if self.kind == "sqlite"
            else {"open": "postgres", "url": location}
        )
        return RustSession(program, line)

    def drop(self, location: str) -> None:
        if self.kind == "sqlite":
            drop_sqlite_files(location)
        elif self.kind == "postgres":
            env().pg_drop(location)


def subjects(groups: set[str], notes: list[str]) -> list[Subject]:
    if binary() is None:
        notes.append(
            "FACTSTR Rust 0.5.2 crates: not measured (rust/factstr-parity could not be built)"
        )
        return []
    notes.append(
        "FACTSTR Rust 0.5.2 crates: driven through rust/factstr-parity, one pipe round trip per "
        "operation (replay timed in-process); memory store not measured (it lives in one process, "
        "and every scenario opens stores more than once)"
    )
    chosen: list[Subject] = []
    if "SQLite" in groups:
        chosen.append(
            RustSubject(
                "Rust factstr-sqlite 0.5.2",
                "SQLite",
                "rust",
                CAPABILITIES,
                "SQLite WAL, synchronous=FULL (upstream's setting)",
                "sqlite",
            )
        )
    if "Server" in groups:
        chosen.append(
            RustSubject(
                "Rust factstr-postgres 0.5.2",
                "Server",
                "rust",
                CAPABILITIES,
                env().pg_durability(),
                "postgres",
            )
        )
    return chosen
