"""SPEC §7: the interpreter exits normally while handlers are running: no abort, no hang.

Every run is a real interpreter that returns from its main module while a handler is busy in
Python (a CPU loop, ``time.sleep``, or calls into the store), and sometimes while another thread
waits in ``subscribe().next_batch()``. Before the fix CPython 3.11 ended such a daemon thread
with ``pthread_exit`` when it took the GIL back during finalisation; the forced unwind reached a
Rust ``catch_unwind`` and the process aborted ("FATAL: exception not rethrown", exit 134).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import _location, _open_code

#: Runs per store kind, and how many run at once (the machine may have two cores).
RUNS = 50
AT_ONCE = 10

#: A child run may take this long before the test fails (a hang is a failure too).
RUN_DEADLINE = 60.0

CHILD = textwrap.dedent(
    """
    import sys, threading, time
    import factstr
    from factstr import NewEvent

    variant = sys.argv[1]
    store = {open_code}
    # Keep each run short: how long exit waits for busy handlers (the default is longer).
    if hasattr(factstr, "_streams"):
        factstr._streams.EXIT_GRACE = 0.05

    entered = threading.Event()

    def handler(batch):
        entered.set()
        if variant == "cpu":
            while True:
                sum(range(100))
        elif variant == "sleep":
            while True:
                time.sleep(0.001)
        else:  # the handler keeps calling into the store
            while True:
                store.query(limit=1)
                store.append([NewEvent("from-handler", {{}})])

    if variant in ("sleep", "store"):
        subscription = store.subscribe()
        waiter = threading.Thread(target=lambda: [None for _ in subscription], daemon=True)
        waiter.start()
    store.stream_all(handler)
    store.stream_all(lambda batch: time.sleep(0.01))
    store.append([NewEvent("go", {{}})])
    if not entered.wait(10):
        sys.exit("the handler was never called")
    time.sleep(0.01 * (int(sys.argv[2]) % 3))
    """
)


@pytest.fixture
def child_script(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    open_code = (
        _open_code(store_kind, _location(store_kind, tmp_path, request)) or "factstr.MemoryStore()"
    )
    script = tmp_path / "exit_while_busy.py"
    script.write_text(CHILD.format(open_code=open_code))
    return script


def test_exit_while_handlers_run_python_is_clean_every_time(child_script: Path) -> None:
    variants = ["cpu", "sleep", "store"]
    failures: list[str] = []
    for start in range(0, RUNS, AT_ONCE):
        batch = [
            (
                run,
                subprocess.Popen(
                    [sys.executable, str(child_script), variants[run % len(variants)], str(run)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
            for run in range(start, min(start + AT_ONCE, RUNS))
        ]
        for run, proc in batch:
            try:
                _, stderr = proc.communicate(timeout=RUN_DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, stderr = proc.communicate()
                failures.append(f"run {run} ({variants[run % 3]}): hung at exit")
                continue
            if proc.returncode != 0 or "FATAL" in stderr or "Traceback" in stderr:
                failures.append(
                    f"run {run} ({variants[run % 3]}): exit {proc.returncode}: {stderr.strip()[-300:]}"
                )
    assert not failures, f"{len(failures)} of {RUNS} runs did not exit cleanly:\n" + "\n".join(
        failures
    )
