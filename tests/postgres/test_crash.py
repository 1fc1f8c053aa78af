"""A writer process killed with SIGKILL in the middle of large appends leaves no partial batch,
and numbering continues without a gap."""

from __future__ import annotations

import random
import time

from factstr import NewEvent
from tests.postgres_server import PostgresServer, postgres_store
from tests.processes import Spawn
from tests.support import seqs_of, wait_for

BATCH = 5000
PAD = 200  # characters of filler per payload: about 1 MB per batch
ROUNDS = 3

#: How long the durable replay may take to hand over one batch of BATCH events.
REPLAY_DEADLINE = 15.0


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]


def _kill_during_appends(url: str, server: PostgresServer, spawn: Spawn, start: int, delay: float) -> list[list[int]]:
    child = spawn("bigappend", url, BATCH, PAD)
    reported: list[list[int]] = [child.read(timeout=60)]
    time.sleep(delay)
    child.sigkill()
    while True:
        try:
            reported.append(child.read(timeout=0.2))
        except AssertionError:
            break
    expected = [[start + 1 + BATCH * k, start + BATCH * (k + 1), BATCH] for k in range(len(reported))]
    assert reported == expected, f"delay {delay:.3f}s"
    # The server ends the dead client's sessions (rolling back an open transaction) once it sees
    # the closed socket; wait for that, so that a COMMIT the child sent just before it died has
    # either happened or not before the log is examined.
    name = _database(url)
    wait_for(
        lambda: server.sql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'") == "0",
        timeout=30,
        what="the killed writer's sessions to end",
    )
    return reported


def test_sigkill_during_large_appends_leaves_whole_batches(url: str, server: PostgresServer, spawn: Spawn) -> None:
    postgres_store(url).close()
    rng = random.Random()
    total = 0
    for round_ in range(ROUNDS):
        delay = rng.uniform(0.02, 0.4)
        reported = _kill_during_appends(url, server, spawn, total, delay)
        where = f"round {round_}, kill {delay:.3f}s after the first commit"
        with postgres_store(url) as store:
            result = store.query()
            count = len(result.event_records)
            assert count % BATCH == 0, f"{count} events after {where}"
            new_batches = (count - total) // BATCH
            assert new_batches in (len(reported), len(reported) + 1), (where, new_batches, reported)
            assert seqs_of(result.event_records) == list(range(1, count + 1))
            assert result.current_context_version == count
            for k in range(count // BATCH):
                chunk = result.event_records[k * BATCH : (k + 1) * BATCH]
                assert [r.payload["i"] for r in chunk] == list(range(BATCH)), where
                assert len({r.payload["batch"] for r in chunk}) == 1, where
                assert len({r.occurred_at for r in chunk}) == 1, where
            shapes: list[tuple[int, int]] = []
            with store.subscribe(durable=f"check{round_}") as sub:
                for _ in range(count // BATCH):
                    batch = sub.next_batch(timeout=REPLAY_DEADLINE)
                    assert batch is not None, f"replay stopped after {shapes}, {where}"
                    assert len(batch) == BATCH, where
                    shapes.append((batch[0].sequence_number, batch[-1].sequence_number))
                assert sub.next_batch(timeout=0.2) is None
            assert shapes == [(1 + BATCH * k, BATCH * (k + 1)) for k in range(count // BATCH)], where
            total = count
    with postgres_store(url) as store:
        after = store.append([NewEvent("after", {}), NewEvent("after", {})])
        assert (after.first_sequence_number, after.last_sequence_number) == (total + 1, total + 2)
        assert seqs_of(store.query().event_records)[-3:] == [total, total + 1, total + 2]
