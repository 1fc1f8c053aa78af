"""S7: `workers` processes, each making decisions (read the context, append_if) on contexts of
its own. Throughput is all decisions over the wall time from the common start to the last
finish. No worker touches another's contexts, so every conflict is a false conflict: they are
counted, and any at all fails the scenario loudly."""

from __future__ import annotations

from typing import Any

from bench.report import Result
from bench.scenarios import processes
from bench.scenarios.common import for_each, fresh
from bench.sizes import Sizes
from bench.subject import Subject

COURSES = 10  # per worker
FACTS = 20  # per course before the run


def s7(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    case = f"{sizes.workers} processes, append_if on disjoint contexts"

    def measure(subject: Subject) -> list[Result]:
        with fresh(subject) as (session, location):
            for worker in range(sizes.workers):
                session.fill(COURSES * FACTS, COURSES, prefix=f"w{worker}-c")
            barrier = processes.context.Barrier(sizes.workers)
            pipes, workers = [], []
            for worker in range(sizes.workers):
                parent, child = processes.context.Pipe()
                process = processes.context.Process(
                    target=processes.decider,
                    args=(subject, location, worker, COURSES, sizes.worker_ops, barrier, child),
                )
                process.start()
                pipes.append(parent)
                workers.append(process)
            reports: list[dict[str, Any]] = [
                pipe.recv() if pipe.poll(600) else {"error": "no report within 600 s"}
                for pipe in pipes
            ]
            for process in workers:
                process.join(30)
        broken = [r["error"] for r in reports if "end" not in r]
        if broken:
            raise RuntimeError(f"a worker failed:\n{broken[0]}")
        ok = sum(r["ok"] for r in reports)
        false_conflicts = sum(r["false_conflicts"] for r in reports)
        errors = sum(r["errors"] for r in reports)
        seconds = max(r["end"] for r in reports) - min(r["start"] for r in reports)
        failed = []
        if false_conflicts:
            failed.append(f"{false_conflicts} FALSE CONFLICTS")
        if errors:
            failed.append(
                f"{errors} errors, first: {next(r['error'] for r in reports if r['error']).strip().splitlines()[-1]}"
            )
        return [
            Result(
                "S7",
                case,
                subject.group,
                subject.name,
                subject.role,
                ok / seconds,
                "ops/s",
                extra={"false_conflicts": false_conflicts, "errors": errors},
                failed="; ".join(failed),
            )
        ]

    return for_each(subjects, "s7", measure, "S7", case)
