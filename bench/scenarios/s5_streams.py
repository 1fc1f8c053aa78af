"""S5: live-stream latency from append to delivery (wall clock in the appender to wall clock in
the handler), one ping at a time, with the appender in the same process or in another one."""

from __future__ import annotations

import threading
import time

from bench.report import Result
from bench.scenarios import processes
from bench.scenarios.common import for_each, fresh
from bench.sizes import Sizes
from bench.subject import Subject, ping
from bench.timing import percentile

DELIVERY_TIMEOUT = 5.0


def s5(subjects: list[Subject], sizes: Sizes) -> list[Result]:
    results: list[Result] = []
    for cross in (False, True):
        case = "stream latency, " + ("other process" if cross else "same process")

        def measure(subject: Subject, cross: bool = cross, case: str = case) -> list[Result]:
            delays: list[float] = []
            arrived = threading.Event()
            lost = 0

            def deliver(sent: list[float]) -> None:
                now = time.time()
                delays.extend(now - s for s in sent)
                arrived.set()

            with fresh(subject) as (session, location), session.listen(deliver):
                if cross:
                    parent, child = processes.context.Pipe()
                    worker = processes.context.Process(
                        target=processes.appender, args=(subject, location, child)
                    )
                    worker.start()
                    if not parent.poll(60):
                        raise RuntimeError("the appender process did not start")
                    parent.recv()

                    def append() -> None:
                        parent.send("go")
                        parent.recv()
                else:

                    def append() -> None:
                        session.append_one(ping())

                try:
                    for _ in range(sizes.stream_rounds):
                        arrived.clear()
                        append()
                        if not arrived.wait(DELIVERY_TIMEOUT):
                            lost += 1
                finally:
                    if cross:
                        parent.send(None)
                        worker.join(30)
            failed = (
                f"{lost} of {sizes.stream_rounds} pings not delivered within {DELIVERY_TIMEOUT:.0f} s"
                if lost
                else ""
            )
            return [
                Result(
                    "S5",
                    case,
                    subject.group,
                    subject.name,
                    subject.role,
                    1000 * percentile(delays, 0.5),
                    "ms p50",
                    higher_is_better=False,
                    extra={"p99_ms": 1000 * percentile(delays, 0.99)},
                    failed=failed,
                )
            ]

        results += for_each(subjects, "s5x" if cross else "s5", measure, "S5", case)
    return results
