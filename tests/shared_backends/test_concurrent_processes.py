"""Several processes on one SQL store at once: gapless numbering with whole batches, an
``append_if`` invariant that holds across processes, and no false conflicts between disjoint
contexts."""

from __future__ import annotations

from typing import Any

from factstr import EventFilter, EventQuery, NewEvent

from tests.processes import Spawn
from tests.shared_backends.backends import Backend
from tests.support import seqs_of

PROCESSES = 4


def test_four_processes_appending_at_once(backend: Backend, spawn: Spawn) -> None:
    backend.open().close()  # the schema exists; the children only append
    _race_appends(backend, spawn, backend.tuning.batches_per_process)


def test_four_processes_creating_the_store_at_once(backend: Backend, spawn: Spawn) -> None:
    """The children open a store on a new file (SQLite) or an empty database (PostgreSQL)
    together: creating the schema is safe under concurrency."""
    _race_appends(backend, spawn, 20)


def _race_appends(backend: Backend, spawn: Spawn, batches_per_process: int) -> None:
    tuning = backend.tuning
    children = [
        spawn("append", backend.locator, 1000 + n, batches_per_process, f"p{n}")
        for n in range(PROCESSES)
    ]
    # Each child opens the store, says "ready" and waits, so that all start appending together.
    for child in children:
        child.expect("ready")
    for child in children:
        child.send()
    results: dict[str, list[tuple[int, int, int]]] = {}
    for n, child in enumerate(children):
        raw = child.read(timeout=tuning.child_deadline)
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
        assert first == expected_first, "reported ranges overlap or leave a gap"
        expected_first = last + 1
    assert expected_first == total + 1

    with backend.open() as store:
        everything = store.query()
        assert seqs_of(everything.event_records) == list(range(1, total + 1))
        assert everything.current_context_version == total
        # Every fact is where its process's result said, in the order that process gave it.
        by_seq = {r.sequence_number: r for r in everything.event_records}
        for first, last, tag, batch in ranges:
            payloads = [by_seq[s].payload for s in range(first, last + 1)]
            assert payloads == [
                {"proc": tag, "batch": batch, "i": i} for i in range(last - first + 1)
            ]
            assert len({by_seq[s].occurred_at for s in range(first, last + 1)}) == 1
        # A durable replay reproduces exactly the batch shapes the processes reported.
        replayed: list[tuple[int, int]] = []
        with store.subscribe(durable="check") as sub:
            for _ in ranges:
                batch_records = sub.next_batch(timeout=tuning.replay_deadline)
                assert batch_records is not None, (
                    f"replay stopped after {len(replayed)} of {len(ranges)} batches"
                )
                seqs = seqs_of(batch_records)
                assert seqs == list(range(seqs[0], seqs[-1] + 1))
                replayed.append((seqs[0], seqs[-1]))
            assert sub.next_batch(timeout=tuning.replay_quiet) is None
        assert replayed == [(first, last) for first, last, _, _ in ranges]
        # And the next append continues the numbering.
        assert store.append([NewEvent("after", {})]).first_sequence_number == total + 1


COURSES = ["c1", "c2", "c3", "c4", "c5"]
SEATS = 10


def test_append_if_invariant_holds_across_racing_processes(backend: Backend, spawn: Spawn) -> None:
    backend.open().close()
    children = [
        spawn("seats", backend.locator, f"p{n}", ",".join(COURSES), SEATS) for n in range(PROCESSES)
    ]
    for child in children:
        child.expect("ready")
    for child in children:
        child.send()
    taken: dict[str, int] = {course: 0 for course in COURSES}
    for child in children:
        report: dict[str, Any] = child.read(timeout=backend.tuning.child_deadline)
        child.finish()
        per_course: dict[str, int] = report["taken"]
        assert sorted(per_course) == COURSES
        for course, count in per_course.items():
            taken[course] += count
    # What the processes believe they took is exactly the limit per course...
    assert taken == {course: SEATS for course in COURSES}
    with backend.open() as store:
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
                mine = [
                    r.payload["seat"]
                    for r in all_records
                    if r.payload["course"] == course and r.payload["by"] == f"p{n}"
                ]
                assert mine == list(range(len(mine)))


OWN_APPENDS = 50


def test_no_false_conflicts_between_disjoint_contexts(backend: Backend, spawn: Spawn) -> None:
    """Each process decides on its own course only, expecting the version its own last append
    reported: another course's appends must never make it conflict (SPEC §4: the version is
    that of the context query, not of the whole log)."""
    backend.open().close()
    children = [
        spawn("own", backend.locator, f"p{n}", f"own{n}", OWN_APPENDS) for n in range(PROCESSES)
    ]
    for child in children:
        child.expect("ready")
    for child in children:
        child.send()
    reports: list[dict[str, Any]] = []
    for child in children:
        reports.append(child.read(timeout=backend.tuning.child_deadline))
        child.finish()
    assert [r["conflicts"] for r in reports] == [0] * PROCESSES
    assert [len(r["results"]) for r in reports] == [OWN_APPENDS] * PROCESSES
    with backend.open() as store:
        assert seqs_of(store.query().event_records) == list(range(1, PROCESSES * OWN_APPENDS + 1))
        for n, report in enumerate(reports):
            context = EventQuery([EventFilter(["SeatTaken"], [{"course": f"own{n}"}])])
            records = store.query(context).event_records
            assert [r.payload["seat"] for r in records] == list(range(OWN_APPENDS))
            assert seqs_of(records) == [first for first, _, _ in report["results"]]


UNLESS_ATTEMPTS = 40


def test_append_unless_condition_holds_across_racing_processes(
    backend: Backend, spawn: Spawn
) -> None:
    """Four processes repeatedly read one shared context and append to it with
    ``append_unless(after=the head they saw)`` (SPEC §4, the DCB condition), beside look-alike
    facts that must not conflict. Atomic check-and-append means every successful append saw the
    previous successful one: the shared facts form one chain, no two of them saw the same
    context version, and the numbering has no gap."""
    backend.open().close()
    children = [
        spawn("unless", backend.locator, f"p{n}", UNLESS_ATTEMPTS) for n in range(PROCESSES)
    ]
    for child in children:
        child.expect("ready")
    for child in children:
        child.send()
    reports: list[dict[str, Any]] = []
    for child in children:
        reports.append(child.read(timeout=backend.tuning.child_deadline))
        child.finish()
    assert [r["wins"] + r["conflicts"] for r in reports] == [UNLESS_ATTEMPTS] * PROCESSES
    wins = sum(r["wins"] for r in reports)
    lookalikes = PROCESSES * len(range(0, UNLESS_ATTEMPTS, 3))
    with backend.open() as store:
        everything = store.query()
        assert seqs_of(everything.event_records) == list(range(1, wins + lookalikes + 1))
        shared = store.query(
            EventQuery([EventFilter(["Counted"], [{"ctx": "shared"}])])
        ).event_records
        assert len(shared) == wins
        seen = [r.payload["seen"] for r in shared]
        assert len(set(seen)) == len(seen), "two successful appends saw the same context version"
        assert seen == [None] + [r.sequence_number for r in shared[:-1]]
