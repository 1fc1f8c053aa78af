"""What changes on a terminal: colour (never with ``NO_COLOR``) and progress on stderr, with the
command's stdout or stderr on a real pseudo-terminal; and password masking."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Callable

import factstr
from factstr import NewEvent
from factstr.cli.output import mask

from tests.cli.conftest import DEADLINE, cli_env


def run_on_terminal(args: list[str], *, stream: str, env: dict[str, str]) -> tuple[bytes, bytes]:
    """Runs the command with ``stream`` ("stdout" or "stderr") on a pseudo-terminal; returns
    (what the terminal got, what the other stream got)."""
    leader, follower = pty.openpty()
    on_stdout = stream == "stdout"
    other = "stderr" if on_stdout else "stdout"
    process = subprocess.Popen(
        [sys.executable, "-m", "factstr", *args],
        stdin=subprocess.DEVNULL,
        stdout=follower if on_stdout else subprocess.PIPE,
        stderr=subprocess.PIPE if on_stdout else follower,
        env=env,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process ended
            break
        if not data:
            break
        seen += data
    pipe = process.stdout if other == "stdout" else process.stderr
    assert pipe is not None
    rest = pipe.read()
    process.wait(timeout=DEADLINE)
    os.close(leader)
    assert process.returncode == 0, (seen, rest)
    return seen, rest


def test_colour_only_on_a_terminal_and_never_with_no_color(
    make_sqlite_url: Callable[[], str],
) -> None:
    url = make_sqlite_url()
    with factstr.connect(url) as store:
        store.append([NewEvent("Coloured", {"i": 1})])
    env = {k: v for k, v in cli_env().items() if k != "NO_COLOR"}
    env["TERM"] = "xterm"
    shown, _ = run_on_terminal(["query", url], stream="stdout", env=env)
    assert b"\x1b[" in shown and b"Coloured" in shown
    shown, _ = run_on_terminal(["query", url], stream="stdout", env={**env, "NO_COLOR": "1"})
    assert b"\x1b[" not in shown and b"Coloured" in shown


def test_progress_goes_to_a_terminal_stderr_and_never_to_stdout(
    make_sqlite_url: Callable[[], str],
) -> None:
    url = make_sqlite_url()
    with factstr.connect(url) as store:
        store.append([NewEvent("T", {"i": i}) for i in range(50)])
    progress, data = run_on_terminal(["export", url], stream="stderr", env=cli_env())
    assert b"export: 50 / 50 facts (100%)" in progress and b"facts/s" in progress
    assert data.count(b"\n") == 52 and b"facts/s" not in data  # header, 50 facts, end line


def test_passwords_are_masked() -> None:
    assert mask("cannot reach postgresql://ann:pw%40x@host/db?x=1") == (
        "cannot reach postgresql://ann:***@host/db?x=1"
    )
    assert mask("host=h password=secret user=u") == "host=h password=*** user=u"
    assert mask("sqlite:///a.db") == "sqlite:///a.db"
