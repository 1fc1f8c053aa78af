"""A process killed with SIGKILL in the middle of large appends leaves no partial batch."""

from __future__ import annotations

import random
import time
from pathlib import Path

import factstr
from factstr import NewEvent
from tests.processes import Spawn
from tests.support import seqs_of

BATCH = 5000
PAD = 1000  # characters of filler per payload: about 5 MB per batch
ROUNDS = 3


def _kill_during_appends(db: Path, spawn: Spawn, start: int, delay: float) -> list[list[int]]:
    """Runs a child that appends big batches, SIGKILLs it ``delay`` seconds after its first
    commit, and returns the results it printed (``[first, last, count]``, each after its commit)."""
    child = spawn("bigappend", db, BATCH, PAD)
    reported: list[list[int]] = [child.read()]
    time.sleep(delay)
    child.sigkill()  # most likely inside a later batch's transaction
    while True:
        try:
            reported.append(child.read(timeout=0.2))
        except AssertionError:
            break
    expected = [[start + 1 + BATCH * k, start + BATCH * (k + 1), BATCH] for k in range(len(reported))]
    assert reported == expected, f"delay {delay:.3f}s"
    return reported


def test_sigkill_during_large_appends_leaves_whole_batches(db: Path, spawn: Spawn) -> None:
    rng = random.Random()
    total = 0
    for round_ in range(ROUNDS):
        delay = rng.uniform(0.02, 0.4)
        reported = _kill_during_appends(db, spawn, total, delay)
        where = f"round {round_}, kill {delay:.3f}s after the first commit"
        with factstr.SqliteStore(db) as store:
            result = store.query()
            count = len(result.event_records)
            assert count % BATCH == 0, f"{count} events after {where}"
            new_batches = (count - total) // BATCH
            # Every reported batch is there; at most the one it was about to report is extra.
            assert new_batches in (len(reported), len(reported) + 1), (where, new_batches, reported)
            assert seqs_of(result.event_records) == list(range(1, count + 1))
            assert result.current_context_version == count
            # The facts of each batch are one child's one batch, complete and in order.
            for k in range(count // BATCH):
                chunk = result.event_records[k * BATCH : (k + 1) * BATCH]
                assert [r.payload["i"] for r in chunk] == list(range(BATCH)), where
                assert len({r.payload["batch"] for r in chunk}) == 1, where
                assert len({r.occurred_at for r in chunk}) == 1, where
                assert all(len(r.payload["pad"]) == PAD and r.event_type == "Big" for r in chunk), where
            # A durable replay sees whole batches only.
            shapes: list[tuple[int, int]] = []
            with store.subscribe(durable=f"check{round_}") as sub:
                while (batch := sub.next_batch(timeout=0.5)) is not None:
                    assert len(batch) == BATCH, where
                    shapes.append((batch[0].sequence_number, batch[-1].sequence_number))
            assert shapes == [(1 + BATCH * k, BATCH * (k + 1)) for k in range(count // BATCH)], where
            total = count
    with factstr.SqliteStore(db) as store:
        # Numbering continues with no gap after the crashes.
        after = store.append([NewEvent("after", {}), NewEvent("after", {})])
        assert (after.first_sequence_number, after.last_sequence_number) == (total + 1, total + 2)
        assert seqs_of(store.query().event_records)[-3:] == [total, total + 1, total + 2]
