"""A writer process killed with SIGKILL in the middle of large appends to a SQL store leaves no
partial batch, and numbering continues without a gap."""

from __future__ import annotations

import random
import time

from factstr import NewEvent

from tests.processes import Spawn
from tests.shared_backends.backends import Backend
from tests.support import seqs_of

BATCH = 5000
ROUNDS = 3


def _kill_during_appends(
    backend: Backend, spawn: Spawn, start: int, delay: float
) -> list[list[int]]:
    """Runs a child that appends big batches, SIGKILLs it ``delay`` seconds after its first
    commit, and returns the results it printed (``[first, last, count]``, each after its commit)."""
    child = spawn("bigappend", backend.locator, BATCH, backend.tuning.crash_pad)
    reported: list[list[int]] = [child.read(timeout=backend.tuning.child_deadline)]
    time.sleep(delay)
    child.sigkill()  # most likely inside a later batch's transaction
    while True:
        try:
            reported.append(child.read(timeout=0.2))
        except AssertionError:
            break
    expected = [
        [start + 1 + BATCH * k, start + BATCH * (k + 1), BATCH] for k in range(len(reported))
    ]
    assert reported == expected, f"delay {delay:.3f}s"
    backend.settle_after_kill()
    return reported


def test_sigkill_during_large_appends_leaves_whole_batches(backend: Backend, spawn: Spawn) -> None:
    tuning = backend.tuning
    if tuning.crash_creates_store_first:
        backend.open().close()
    rng = random.Random()
    total = 0
    for round_ in range(ROUNDS):
        delay = rng.uniform(0.02, 0.4)
        reported = _kill_during_appends(backend, spawn, total, delay)
        where = f"round {round_}, kill {delay:.3f}s after the first commit"
        with backend.open() as store:
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
                assert all(
                    len(r.payload["pad"]) == tuning.crash_pad and r.event_type == "Big"
                    for r in chunk
                ), where
            # A durable replay sees whole batches only.
            shapes: list[tuple[int, int]] = []
            with store.subscribe(durable=f"check{round_}") as sub:
                for _ in range(count // BATCH):
                    batch = sub.next_batch(timeout=tuning.crash_replay_deadline)
                    assert batch is not None, f"replay stopped after {shapes}, {where}"
                    assert len(batch) == BATCH, where
                    shapes.append((batch[0].sequence_number, batch[-1].sequence_number))
                assert sub.next_batch(timeout=tuning.crash_replay_quiet) is None
            assert shapes == [(1 + BATCH * k, BATCH * (k + 1)) for k in range(count // BATCH)], (
                where
            )
            total = count
    with backend.open() as store:
        # Numbering continues with no gap after the crashes.
        after = store.append([NewEvent("after", {}), NewEvent("after", {})])
        assert (after.first_sequence_number, after.last_sequence_number) == (total + 1, total + 2)
        assert seqs_of(store.query().event_records)[-3:] == [total, total + 1, total + 2]
