"""Several processes appending to one file at once: gapless numbering, atomic batches, and an
``append_if`` invariant that holds across processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import factstr
from factstr import EventFilter, EventQuery, NewEvent
from tests.processes import Spawn
from tests.support import seqs_of

PROCESSES = 4
BATCHES_PER_PROCESS = 200


def test_four_processes_appending_at_once(db: Path, spawn: Spawn) -> None:
    factstr.SqliteStore(db).close()  # the schema exists; the children only append
    _race_appends(db, spawn, BATCHES_PER_PROCESS)


def test_four_processes_creating_a_new_file_at_once(db: Path, spawn: Spawn) -> None:
    _race_appends(db, spawn, 20)


def _race_appends(db: Path, spawn: Spawn, batches_per_process: int) -> None:
    children = [spawn("append", db, 1000 + n, batches_per_process, f"p{n}") for n in range(PROCESSES)]
    # Each child opens the store, says "ready" and waits, so that all start appending together.
    for child in children:
        child.expect("ready")
    for child in children:
        child.send()
    results: dict[str, list[tuple[int, int, int]]] = {}
    for n, child in enumerate(children):
        raw = child.read()
        child.finish()
        results[f"p{n}"] = [(first, last, count) for first, last, count in raw]

    ranges: list[tuple[int, int, str, int]] = []
    for tag, triples in results.items():
        assert len(triples) == batches_per_process
        for batch, (first, last, count) in enumerate(triples):
            assert 1 <= count <= 5
            assert last - first + 1 == count
            ranges.append((first, last, tag, batch))
        # One process's appends are numbered in the order it made them.
        assert [t[0] for t in triples] == sorted(t[0] for t in triples)
    ranges.sort()
    total = sum(count for triples in results.values() for _, _, count in triples)
    # The reported ranges tile 1..N exactly: no overlap, no gap.
    expected_first = 1
    for first, last, _, _ in ranges:
        assert first == expected_first
        expected_first = last + 1
    assert expected_first == total + 1

    with factstr.SqliteStore(db) as store:
        everything = store.query()
        assert seqs_of(everything.event_records) == list(range(1, total + 1))
        assert everything.current_context_version == total
        # Every fact is where its process's result said, in the order that process gave it.
        by_seq = {r.sequence_number: r for r in everything.event_records}
        for first, last, tag, batch in ranges:
            payloads = [by_seq[s].payload for s in range(first, last + 1)]
            assert payloads == [{"proc": tag, "batch": batch, "i": i} for i in range(last - first + 1)]
            assert len({by_seq[s].occurred_at for s in range(first, last + 1)}) == 1
        # A durable replay reproduces exactly the batch shapes the processes reported.
        replayed: list[tuple[int, int]] = []
        with store.subscribe(durable="check") as sub:
            while (batch_records := sub.next_batch(timeout=0.5)) is not None:
                seqs = seqs_of(batch_records)
                assert seqs == list(range(seqs[0], seqs[-1] + 1))
                replayed.append((seqs[0], seqs[-1]))
        assert replayed == [(first, last) for first, last, _, _ in ranges]
        # And the next append continues the numbering.
        assert store.append([NewEvent("after", {})]).first_sequence_number == total + 1


COURSES = ["c1", "c2", "c3", "c4", "c5"]
SEATS = 10


def test_append_if_invariant_holds_across_racing_processes(db: Path, spawn: Spawn) -> None:
    factstr.SqliteStore(db).close()
    children = [spawn("seats", db, f"p{n}", ",".join(COURSES), SEATS) for n in range(PROCESSES)]
    for child in children:
        child.expect("ready")
    for child in children:
        child.send()
    taken: dict[str, int] = {course: 0 for course in COURSES}
    for child in children:
        report: dict[str, Any] = child.read()
        child.finish()
        per_course: dict[str, int] = report["taken"]
        assert sorted(per_course) == COURSES
        for course, count in per_course.items():
            taken[course] += count
    # What the processes believe they took is exactly the limit per course...
    assert taken == {course: SEATS for course in COURSES}
    with factstr.SqliteStore(db) as store:
        # ... and so is what the log holds.
        for course in COURSES:
            context = EventQuery([EventFilter(["SeatTaken"], [{"course": course}])])
            records = store.query(context).event_records
            assert len(records) == SEATS
            assert all(r.payload["course"] == course for r in records)
        all_records = store.query().event_records
        assert seqs_of(all_records) == list(range(1, SEATS * len(COURSES) + 1))
        # Seat numbers a process wrote for one course count up from 0 without gaps.
        for course in COURSES:
            for n in range(PROCESSES):
                mine = [r.payload["seat"] for r in all_records if r.payload["course"] == course and r.payload["by"] == f"p{n}"]
                assert mine == list(range(len(mine)))
