"""Child processes for the multi-process scenarios (S5 across processes, S7). Spawned, not
forked: each child imports factstr and opens the store afresh, as a separate program would."""

from __future__ import annotations

import multiprocessing
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from bench.subject import Subject, fill_payload, ping

context = multiprocessing.get_context("spawn")


def appender(subject: Subject, location: str, pipe: Connection) -> None:
    """S5: appends one ping per request until it receives None."""
    with subject.session(location) as session:
        pipe.send("ready")
        while pipe.recv() is not None:
            session.append_one(ping())
            pipe.send("done")


def decider(
    subject: Subject,
    location: str,
    worker: int,
    courses: int,
    ops: int,
    barrier: Any,
    pipe: Connection,
) -> None:
    """S7: `ops` decisions (read the context, append_if) on this worker's own courses, which no
    other worker touches: every conflict is a false conflict."""
    report: dict[str, Any] = {"ok": 0, "false_conflicts": 0, "errors": 0, "error": ""}
    try:
        with subject.session(location) as session:
            barrier.wait(60)
            report["start"] = time.monotonic()
            for i in range(ops):
                course = f"w{worker}-c{i % courses}"
                try:
                    version = session.decide(course)
                    if session.append_if(course, fill_payload(i, courses, f"w{worker}-c"), version):
                        report["ok"] += 1
                    else:
                        report["false_conflicts"] += 1
                except Exception:
                    report["errors"] += 1
                    report["error"] = report["error"] or traceback.format_exc(limit=3)
            report["end"] = time.monotonic()
    except Exception:
        report["error"] = traceback.format_exc()
    pipe.send(report)
