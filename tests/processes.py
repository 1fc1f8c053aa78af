"""Every extra process the tests start, with a deadline on every wait and a kill at teardown.

Every child is a ``Child``, started through the ``spawn`` fixture (which kills whatever still
runs at teardown), in one of two forms:

- ``spawn(MODE, STORE, ...)``: ``tests/child.py`` (or another ``script=``) in one of its modes,
  talking JSON lines; ``STORE`` is a file path (SQLite) or a ``postgresql://`` URL;
- ``python_child(spawn, body, open_code)``: a few lines of Python run with ``store`` opened on
  the test's backend, for the contract's cross-process tests (every store kind another process
  can open).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeAlias

#: The script every child process runs.
CHILD_SCRIPT = Path(__file__).with_name("child.py")

#: How long any wait for a child (a line, its exit) may take before the test fails.
CHILD_DEADLINE = 30.0


def _pump(stream: IO[str], sink: queue.Queue[str | None]) -> None:
    try:
        for line in stream:
            sink.put(line.rstrip("\n"))
    except (OSError, ValueError):  # the pipe was closed at teardown
        pass
    finally:
        sink.put(None)


class Child:
    """One running child process: send lines to its stdin, read lines from its stdout."""

    def __init__(
        self,
        args: list[str],
        cwd: Path | None = None,
        script: Path = CHILD_SCRIPT,
        code: str | None = None,
    ) -> None:
        #: How the child is named in failures.
        self.args = args if code is None else ["python", "-c", "...", *args]
        program = [str(script)] if code is None else ["-c", code]
        self.proc = subprocess.Popen(
            [sys.executable, *program, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._errors: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._stderr_closed = False
        self._pumps = [
            threading.Thread(target=_pump, args=(self.proc.stdout, self._lines), daemon=True),
            threading.Thread(target=_pump, args=(self.proc.stderr, self._errors), daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def stderr_text(self, until_closed: bool = False) -> str:
        """What the child wrote to stderr so far (``until_closed``: wait for all of it)."""
        deadline = time.monotonic() + CHILD_DEADLINE
        while not self._stderr_closed:
            try:
                if until_closed:
                    line = self._errors.get(timeout=max(0.0, deadline - time.monotonic()))
                else:
                    line = self._errors.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._stderr_closed = True
            else:
                self._stderr.append(line)
        return "\n".join(self._stderr)

    def read(self, timeout: float = CHILD_DEADLINE) -> Any:
        """The next JSON line the child printed; fails the test on timeout or early exit."""
        return json.loads(self.read_text(timeout))

    def read_text(self, timeout: float = CHILD_DEADLINE) -> str:
        """The next line the child printed, as text; fails the test on timeout or early exit."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"child {self.args} printed nothing within {timeout}s") from None
        if line is None:
            self.proc.wait(timeout=CHILD_DEADLINE)
            raise AssertionError(
                f"child {self.args} exited ({self.proc.returncode}) without output:\n{self.stderr_text(until_closed=True)}"
            )
        return line

    def expect(self, value: object, timeout: float = CHILD_DEADLINE) -> None:
        got = self.read(timeout)
        assert got == value, f"child {self.args} said {got!r}, expected {value!r}"

    def send(self, line: str = "go") -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = CHILD_DEADLINE) -> None:
        """Waits for a clean exit (status 0)."""
        code = self.exit_code(timeout)
        assert code == 0, (
            f"child {self.args} exited with {code}:\n{self.stderr_text(until_closed=True)}"
        )

    def exit_code(self, timeout: float = CHILD_DEADLINE) -> int:
        """Waits for the child to exit and returns its status."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"child {self.args} did not exit within {timeout}s") from None

    def running(self) -> bool:
        return self.proc.poll() is None

    def sigkill(self) -> None:
        """Kills the child with SIGKILL and reaps it."""
        assert self.proc.poll() is None, (
            f"child {self.args} had already exited ({self.proc.returncode})"
        )
        os.kill(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait(timeout=CHILD_DEADLINE)
        assert code == -signal.SIGKILL

    def kill(self) -> None:
        """Teardown: ends the child by its pid if it still runs."""
        end_process(self.proc, self._pumps)


def end_process(
    proc: subprocess.Popen[str], pumps: list[threading.Thread], deadline: float = CHILD_DEADLINE
) -> None:
    """Kills a process if it still runs, reaps it, stops the threads reading its output and
    closes its pipes (teardown of every child process the tests start)."""
    if proc.poll() is None:
        proc.kill()
        try:
            proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            pass
    for pump in pumps:
        pump.join(timeout=5.0)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass


#: What the ``spawn`` fixtures return: starts ``child.py`` with these arguments.
Spawn: TypeAlias = Callable[..., Child]


@contextmanager
def spawner() -> Iterator[Spawn]:
    """Starts child processes; every one still running at the end is killed."""
    started: list[Child] = []

    def start(
        *args: str | Path | int,
        cwd: Path | None = None,
        script: Path = CHILD_SCRIPT,
        code: str | None = None,
    ) -> Child:
        child = Child([str(a) for a in args], cwd=cwd, script=script, code=code)
        started.append(child)
        return child

    try:
        yield start
    finally:
        for child in started:
            child.kill()


def python_child(spawn: Spawn, body: str, open_code: str) -> Child:
    """Starts another Python process running ``body`` with ``store`` opened on the test's backend
    (``json``, ``sys``, ``time`` and ``factstr`` imported). ``body`` is dedented; the lines it
    prints are read with ``read_text`` (or ``read`` for JSON)."""
    source = (
        "import json, sys, time\nimport factstr\nstore = "
        + open_code
        + "\n"
        + textwrap.dedent(body)
    )
    child = spawn(code=source)
    child.args = ["python_child", textwrap.dedent(body).strip().splitlines()[0]]
    return child
