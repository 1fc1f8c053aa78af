"""Live streams and subscriptions see the batches another process commits, whole and in order."""

from __future__ import annotations

import sys
from pathlib import Path

import factstr
import pytest
from factstr import EventQuery, NewEvent

from tests.processes import Spawn
from tests.support import DEADLINE, Collector, seqs_of

SIZES = [2, 1, 4, 3, 1, 5]


@pytest.mark.parametrize("poll_interval", [None, 0.005])
def test_live_streams_receive_another_process_batches(
    db: Path, spawn: Spawn, poll_interval: float | None
) -> None:
    store = (
        factstr.SqliteStore(db)
        if poll_interval is None
        else factstr.SqliteStore(db, poll_interval=poll_interval)
    )
    with store:
        store.append([NewEvent("before", {})])  # 1: committed before registration, never delivered
        everything = Collector()
        only_b = Collector()
        with (
            store.stream_all(everything),
            store.stream_to(EventQuery.for_event_types(["b"]), only_b),
            store.subscribe() as sub,
        ):
            child = spawn("live", db, ",".join(map(str, SIZES)))
            child.expect("ready")
            child.send()
            reported = [(first, last) for first, last, _ in child.read()]
            child.finish()
            expected: list[list[int]] = []
            next_seq = 2
            for size in SIZES:
                expected.append(list(range(next_seq, next_seq + size)))
                next_seq += size
            assert reported == [(b[0], b[-1]) for b in expected]

            pulled: list[list[factstr.EventRecord]] = []
            for _ in SIZES:
                batch = sub.next_batch(timeout=DEADLINE)
                assert batch is not None, f"subscription got {[seqs_of(b) for b in pulled]} only"
                pulled.append(batch)
            assert [seqs_of(b) for b in pulled] == expected
            everything.wait_batches(len(SIZES))
            assert everything.batch_seqs() == expected
            # stream_to gets the matching part of each batch (types alternate a, b, a, ...).
            expected_b = [b[1::2] for b in expected if len(b) > 1]
            only_b.wait_batches(len(expected_b))
            assert only_b.batch_seqs() == expected_b
            # Same records, same shape, in every form.
            assert everything.batches == pulled
            for batch_number, batch in enumerate(pulled):
                assert [r.payload for r in batch] == [
                    {"batch": batch_number, "i": i} for i in range(len(batch))
                ]
                assert [r.event_type for r in batch] == [
                    "a" if i % 2 == 0 else "b" for i in range(len(batch))
                ]
                assert len({r.occurred_at for r in batch}) == 1
            # Nothing more arrives.
            assert sub.next_batch(timeout=0.1) is None
            assert len(everything.batches) == len(SIZES)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the commit beacon is watched with inotify (Linux)"
)
def test_another_process_commit_wakes_streams_before_the_poll(db: Path, spawn: Spawn) -> None:
    """Our writers touch a beacon file after each commit; watchers wake on it instead of waiting
    for their next poll. The poll interval is a minute and a subscription also reads again every
    2 s without a wake-up: a batch that arrives within 1.5 s came through the beacon."""
    with factstr.SqliteStore(db, poll_interval=60.0) as store, store.subscribe() as sub:
        child = spawn("live", db, "2,1")
        child.expect("ready")
        child.send()
        first = sub.next_batch(timeout=1.5)
        second = sub.next_batch(timeout=1.5)
        child.finish()
        assert first is not None and second is not None, "no wake-up: the beacon was not seen"
        assert [seqs_of(first), seqs_of(second)] == [[1, 2], [3]]


def test_durable_stream_goes_live_on_another_process_batches(db: Path, spawn: Spawn) -> None:
    with factstr.SqliteStore(db) as store:
        store.append([NewEvent("before", {}), NewEvent("before", {})])  # 1..2: replayed
        seen = Collector()
        with store.stream_all_durable("proj", seen), store.subscribe(durable="pull") as sub:
            first = sub.next_batch(timeout=DEADLINE)
            assert first is not None and seqs_of(first) == [1, 2]
            assert seen.batch_seqs() == [[1, 2]]
            child = spawn("live", db, "3,1")
            child.expect("ready")
            child.send()
            assert [tuple(t) for t in child.read()] == [(3, 5, 3), (6, 6, 1)]
            child.finish()
            seen.wait_batches(3)
            assert seen.batch_seqs() == [[1, 2], [3, 4, 5], [6]]
            second = sub.next_batch(timeout=DEADLINE)
            third = sub.next_batch(timeout=DEADLINE)
            assert second is not None and third is not None
            assert (seqs_of(second), seqs_of(third)) == ([3, 4, 5], [6])
            sub.ack()
        cursors = {i.name: i.last_processed_sequence_number for i in store.durable_streams()}
        assert cursors == {"proj": 6, "pull": 6}
