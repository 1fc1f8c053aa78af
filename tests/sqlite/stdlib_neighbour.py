"""A process that uses a ``SqliteStore`` and Python's own ``sqlite3`` module on the same file.

``python stdlib_neighbour.py SCENARIO DB [SECONDS]``; it prints JSON lines (flushed at once):
every acknowledged append as ``["ack", first, last, tag]``, ``"ready"`` when a scenario waits for the
parent (one line on stdin), and ``"done"`` at the end. The tests kill it with SIGKILL, then check
that every acknowledged batch is still in the file. Scenarios (SPEC §7: another SQLite library
in the same process loses nothing and breaks nothing):

- ``look``: append one event; open, read and close a stdlib connection; append five more; wait for
  the parent (which appends from another process); append one more; wait to be killed.
- ``immediate``: a stdlib ``BEGIN IMMEDIATE`` writes its own table while a store append waits
  in another thread; then appends more; wait to be killed.
- ``random``: for SECONDS, two threads append to the store while the main thread opens stdlib
  connections, reads, sometimes writes its own table, and closes them; then wait to be killed.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import sys
import threading
import time

import factstr
from factstr import NewEvent

_print_lock = threading.Lock()


def say(value: object) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()


def append(store: factstr.SqliteStore, tag: str, size: int = 1) -> None:
    tag = f"{os.getpid()}:{tag}"  # unique across the runs of a test
    result = store.append(
        [NewEvent("Neighbour", {"tag": tag, "n": size, "i": i}) for i in range(size)]
    )
    say(["ack", result.first_sequence_number, result.last_sequence_number, tag])


def stdlib_look(path: str) -> None:
    connection = sqlite3.connect(path)
    connection.execute("select count(*) from events").fetchone()
    connection.close()


def wait_for_parent() -> None:
    say("ready")
    if not sys.stdin.readline():
        raise SystemExit("parent closed stdin")


def look(store: factstr.SqliteStore, path: str) -> None:
    append(store, "first")
    stdlib_look(path)
    for i in range(5):
        append(store, f"after-look-{i}")
    wait_for_parent()
    append(store, "last")


def immediate(store: factstr.SqliteStore, path: str) -> None:
    append(store, "first")
    connection = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    connection.execute("create table if not exists neighbour_side (x integer)")
    connection.execute("begin immediate")
    connection.execute("insert into neighbour_side values (1)")
    waiting = threading.Thread(target=append, args=(store, "while-immediate", 3))
    waiting.start()
    time.sleep(0.3)
    connection.execute("commit")
    waiting.join()
    connection.close()
    for i in range(3):
        append(store, f"after-immediate-{i}", 2)


def random_neighbour(store: factstr.SqliteStore, path: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    rng = random.Random(seconds)

    def appender(tag: str) -> None:
        local = random.Random(tag)
        n = 0
        while time.monotonic() < deadline:
            append(store, f"{tag}-{n}", local.randint(1, 4))
            n += 1

    threads = [threading.Thread(target=appender, args=(f"thread{t}",)) for t in range(2)]
    for thread in threads:
        thread.start()
    while time.monotonic() < deadline:
        connection = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        connection.execute("select count(*), max(sequence_number) from events").fetchone()
        if rng.random() < 0.5:
            connection.execute("create table if not exists neighbour_side (x integer)")
            connection.execute("begin immediate")
            connection.execute("insert into neighbour_side values (?)", (rng.randint(0, 1000),))
            connection.execute("commit")
        connection.close()
        time.sleep(rng.random() * 0.01)
    for thread in threads:
        thread.join()


def main(argv: list[str]) -> None:
    scenario, path, *rest = argv
    store = factstr.SqliteStore(path)
    if scenario == "look":
        look(store, path)
    elif scenario == "immediate":
        immediate(store, path)
    elif scenario == "random":
        random_neighbour(store, path, float(rest[0]))
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    say("done")
    # Stay alive (store open, nothing checkpointed at exit) until the parent kills us.
    sys.stdin.readline()
    time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1:])
