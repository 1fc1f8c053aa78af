"""The other process of the multi-process tests: ``python child.py MODE STORE [ARGS...]``.

``STORE`` is a SQLite file path, or a ``postgresql://`` URL (opened with
``factstr.PostgresStore``). It imports ``factstr`` from the same virtual environment as the tests and talks to the parent by
lines: it prints JSON lines (flushed at once) and, where a mode waits for the parent, reads one
line from stdin per step. Modes:

- ``append DB SEED BATCHES TAG``: prints ``"ready"``, waits for a line, appends ``BATCHES``
  batches of random sizes 1..5 (pausing up to 2 ms between them), then prints the list of ``[first, last, count]`` results.
- ``seats DB TAG COURSES LIMIT``: prints ``"ready"``, waits for a line, then takes seats with
  ``append_if`` (retrying on conflicts) until every course holds ``LIMIT`` seats; prints
  ``{"taken": {course: seats taken}, "conflicts": n}``.
- ``bigappend DB SIZE PAD``: appends batches of ``SIZE`` events with ``PAD``-character payloads
  forever, printing each result as ``[first, last, count]`` after its commit.
- ``live DB SIZES``: prints ``"ready"``, waits for a line, appends one batch per comma-separated
  size (event types alternate ``a``/``b`` inside a batch), prints the results, exits.
- ``own DB TAG COURSE COUNT``: prints ``"ready"``, waits for a line, then makes ``COUNT``
  ``append_if`` calls on the context of its own course only, each expecting the version its own
  previous result reported (``None`` first); prints ``{"conflicts": n, "results": [...]}``.
- ``unless DB TAG ATTEMPTS``: prints ``"ready"``, waits for a line, then ``ATTEMPTS`` times
  queries the shared context (type ``Counted``, payload ``{"ctx": "shared"}``) and calls
  ``append_unless`` with ``after`` = the head of the store the query saw, writing the context
  version it saw into the event; every third attempt it also appends a look-alike (same type,
  its own ``ctx``); prints ``{"wins": n, "conflicts": n}``.
- ``lines DB``: prints ``"ready"``; then for every line from the parent (comma-separated batch
  sizes, or ``stop``) appends those batches, retrying an append that raises ``BackendError``
  for up to 30 s (the server may be restarting), and prints
  ``{"results": [[first, last, count], ...], "retries": n}``.
- ``bootstrap SERVER_URL DBNAME TAG``: prints ``"ready"``, waits for a line, calls
  ``PostgresStore.bootstrap(SERVER_URL, DBNAME)``, appends one event ``{"proc": TAG}`` and
  prints its result.
- ``hold DB NAME KIND``: registers the durable name (``KIND`` ``stream`` for
  ``stream_all_durable``, ``subscribe`` for ``subscribe(durable=...)``), prints ``"ready"``,
  waits for a line, closes the registration, prints ``"released"``, waits for a line, exits.
"""

from __future__ import annotations

import json
import random
import sys
import time

import factstr
from factstr import EventFilter, EventQuery, NewEvent


def say(value: object) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def wait_for_parent() -> None:
    if not sys.stdin.readline():
        raise SystemExit("parent closed stdin")


def result_triple(result: factstr.AppendResult) -> list[int]:
    return [result.first_sequence_number, result.last_sequence_number, result.committed_count]


def append_mode(store: factstr.EventStore, seed: int, batches: int, tag: str) -> None:
    rng = random.Random(seed)
    say("ready")
    wait_for_parent()
    results: list[list[int]] = []
    for batch in range(batches):
        size = rng.randint(1, 5)
        new = [NewEvent("Appended", {"proc": tag, "batch": batch, "i": i}) for i in range(size)]
        results.append(result_triple(store.append(new)))
        # A pause of up to 2 ms lets the other processes in: without it, a process that has
        # just committed takes the write lock again before a waiting one wakes up.
        time.sleep(rng.random() * 0.002)
    say(results)


def seats_mode(store: factstr.EventStore, tag: str, courses: list[str], limit: int) -> None:
    rng = random.Random(tag)
    say("ready")
    wait_for_parent()
    taken = {course: 0 for course in courses}
    conflicts = 0
    for course in courses:
        context = EventQuery([EventFilter(["SeatTaken"], [{"course": course}])])
        while True:
            seen = store.query(context)
            if len(seen.event_records) >= limit:
                break
            # Deciding takes a moment, in which another process may take the seat.
            time.sleep(rng.random() * 0.002)
            try:
                store.append_if(
                    [NewEvent("SeatTaken", {"course": course, "by": tag, "seat": taken[course]})],
                    context,
                    seen.current_context_version,
                )
            except factstr.ConditionalAppendConflict:
                conflicts += 1
                continue
            taken[course] += 1
    say({"taken": taken, "conflicts": conflicts})


def bigappend_mode(store: factstr.EventStore, size: int, pad: int) -> None:
    filler = "x" * pad
    batch = 0
    while True:
        new = [NewEvent("Big", {"batch": batch, "i": i, "pad": filler}) for i in range(size)]
        say(result_triple(store.append(new)))
        batch += 1


def live_mode(store: factstr.EventStore, sizes: list[int]) -> None:
    say("ready")
    wait_for_parent()
    results: list[list[int]] = []
    for batch, size in enumerate(sizes):
        new = [NewEvent("a" if i % 2 == 0 else "b", {"batch": batch, "i": i}) for i in range(size)]
        results.append(result_triple(store.append(new)))
    say(results)


def hold_mode(store: factstr.EventStore, name: str, kind: str) -> None:
    if kind == "stream":
        stream = store.stream_all_durable(name, lambda batch: None)
        say("ready")
        wait_for_parent()
        stream.unsubscribe()
    elif kind == "subscribe":
        subscription = store.subscribe(durable=name)
        say("ready")
        wait_for_parent()
        subscription.close()
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    say("released")
    wait_for_parent()


def own_mode(store: factstr.EventStore, tag: str, course: str, count: int) -> None:
    context = EventQuery([EventFilter(["SeatTaken"], [{"course": course}])])
    say("ready")
    wait_for_parent()
    expected: int | None = None
    conflicts = 0
    results: list[list[int]] = []
    for seat in range(count):
        try:
            result = store.append_if(
                [NewEvent("SeatTaken", {"course": course, "by": tag, "seat": seat})],
                context,
                expected,
            )
        except factstr.ConditionalAppendConflict as conflict:
            conflicts += 1
            expected = conflict.actual_context_version
            continue
        results.append(result_triple(result))
        expected = result.last_sequence_number
    say({"conflicts": conflicts, "results": results})


SHARED = EventQuery([EventFilter(["Counted"], [{"ctx": "shared"}])])


def unless_mode(store: factstr.EventStore, tag: str, attempts: int) -> None:
    rng = random.Random(tag)
    say("ready")
    wait_for_parent()
    wins = conflicts = 0
    for attempt in range(attempts):
        if attempt % 3 == 0:
            store.append([NewEvent("Counted", {"ctx": tag})])
        seen = store.query(SHARED, limit=0)
        # Deciding takes a moment, in which another process may append.
        time.sleep(rng.random() * 0.002)
        new = NewEvent(
            "Counted", {"ctx": "shared", "by": tag, "seen": seen.current_context_version}
        )
        try:
            store.append_unless([new], SHARED, seen.head_sequence_number)
        except factstr.ConditionalAppendConflict:
            conflicts += 1
            continue
        wins += 1
    say({"wins": wins, "conflicts": conflicts})


def lines_mode(store: factstr.EventStore) -> None:
    say("ready")
    retries = 0
    batch = 0
    while True:
        line = sys.stdin.readline().strip()
        if not line or line == "stop":
            return
        results: list[list[int]] = []
        for size in (int(s) for s in line.split(",")):
            new = [
                NewEvent("a" if i % 2 == 0 else "b", {"batch": batch, "i": i}) for i in range(size)
            ]
            deadline = time.monotonic() + 30.0
            while True:
                try:
                    results.append(result_triple(store.append(new)))
                    break
                except factstr.BackendError:
                    if time.monotonic() > deadline:
                        raise
                    retries += 1
                    time.sleep(0.1)
            batch += 1
        say({"results": results, "retries": retries})


def bootstrap_mode(server_url: str, database: str, tag: str) -> None:
    say("ready")
    wait_for_parent()
    with factstr.PostgresStore.bootstrap(server_url, database) as store:
        say(result_triple(store.append([NewEvent("Booted", {"proc": tag})])))


def open_store(target: str) -> factstr.EventStore:
    if target.startswith(("postgresql://", "postgres://")):
        store: factstr.EventStore = factstr.PostgresStore(target)
        return store
    return factstr.SqliteStore(target)


def main(argv: list[str]) -> None:
    mode, database, *args = argv
    if mode == "bootstrap":
        bootstrap_mode(database, args[0], args[1])
        return
    with open_store(database) as store:
        if mode == "append":
            append_mode(store, int(args[0]), int(args[1]), args[2])
        elif mode == "seats":
            seats_mode(store, args[0], args[1].split(","), int(args[2]))
        elif mode == "bigappend":
            bigappend_mode(store, int(args[0]), int(args[1]))
        elif mode == "live":
            live_mode(store, [int(size) for size in args[0].split(",")])
        elif mode == "own":
            own_mode(store, args[0], args[1], int(args[2]))
        elif mode == "unless":
            unless_mode(store, args[0], int(args[1]))
        elif mode == "lines":
            lines_mode(store)
        elif mode == "hold":
            hold_mode(store, args[0], args[1])
        else:
            raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
