"""The writer process of the torture tests: ``python writer.py MODE STORE [ARGS...]``.

``STORE`` is a SQLite file path or a ``postgresql://`` URL. Every batch carries a unique tag
and its size in each payload (``{"tag": ..., "n": size, "i": index, "pad": ...}``), so the
parent can tell lost, duplicated and partial batches apart. The writer prints one JSON line
``["ack", first, last, tag, size]`` after each acknowledged append. Modes:

- ``kill SIZE PAD``: appends batches of ``SIZE`` events forever (the parent kills it).
- ``restart SECONDS``: appends batches of 1..5 events for ``SECONDS``, surviving a server that
  goes away: an append that raises ``BackendError`` is retried only after a query shows that its
  batch is not in the log (an append whose commit outcome is unknown may have committed), as a
  careful user would; then prints ``"done"``.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid

import factstr
from factstr import EventFilter, EventQuery, NewEvent


def say(value: object) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def open_store(target: str) -> factstr.EventStore:
    if target.startswith(("postgresql://", "postgres://")):
        store: factstr.EventStore = factstr.PostgresStore(target, reconnect_timeout=60.0)
        return store
    return factstr.SqliteStore(target)


def batch(size: int, pad: int = 0) -> tuple[str, list[NewEvent]]:
    tag = uuid.uuid4().hex
    return tag, [
        NewEvent("Tortured", {"tag": tag, "n": size, "i": i, "pad": "x" * pad}) for i in range(size)
    ]


def ack(result: factstr.AppendResult, tag: str, size: int) -> None:
    say(["ack", result.first_sequence_number, result.last_sequence_number, tag, size])


def kill_mode(store: factstr.EventStore, size: int, pad: int) -> None:
    while True:
        tag, events = batch(size, pad)
        ack(store.append(events), tag, size)


def committed_range(store: factstr.EventStore, tag: str) -> tuple[int, int] | None:
    """Where the batch tagged ``tag`` is in the log, if it is (retrying while the server is away)."""
    query = EventQuery([EventFilter(["Tortured"], [{"tag": tag}])])
    deadline = time.monotonic() + 60.0
    while True:
        try:
            records = store.query(query).event_records
            return (records[0].sequence_number, records[-1].sequence_number) if records else None
        except factstr.BackendError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def restart_mode(store: factstr.EventStore, seconds: float) -> None:
    rng = random.Random()
    end = time.monotonic() + seconds
    unknown = 0
    while time.monotonic() < end:
        size = rng.randint(1, 5)
        tag, events = batch(size)
        while True:
            try:
                ack(store.append(events), tag, size)
                break
            except factstr.BackendError:
                found = committed_range(store, tag)
                if found is not None:
                    unknown += 1
                    say(["ack", found[0], found[1], tag, size])
                    break
                time.sleep(0.1)
        time.sleep(rng.random() * 0.01)
    say({"done": True, "committed_despite_error": unknown})


def main(argv: list[str]) -> None:
    mode, target, *args = argv
    store = open_store(target)
    if mode == "kill":
        kill_mode(store, int(args[0]), int(args[1]))
    elif mode == "restart":
        restart_mode(store, float(args[0]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
