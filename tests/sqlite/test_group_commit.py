"""Group commit on SQLite, with the database's write lock held by another process while the
group forms (a ``BEGIN IMMEDIATE`` of Python's own ``sqlite3`` in a child): the first append
waits for the lock, the others queue behind it and commit together once it goes.

- What a group writes equals what the same calls write alone in commit order, row for row
  (events, batch rows, the payload index's tables, the index state, the keys).
- A lock that outlasts ``busy_timeout`` fails every call of the group with a ``BackendError``,
  and leaves nothing behind: no row, no number used, no key.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import factstr
from factstr import EventQuery, NewEvent, aio

from tests.processes import Child, Spawn
from tests.support import assert_one_key_held_once, run_in_thread

LOCKER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("ROLLBACK")
connection.close()
print("released", flush=True)
"""

Outcome = tuple[object, BaseException | None]


def _lock(spawn: Spawn, db: Path) -> Child:
    """Another process holding the database's write lock until ``_unlock``."""
    child = spawn(str(db), code=LOCKER)
    assert child.read_text() == "locked"
    return child


def _unlock(child: Child) -> None:
    child.send()
    assert child.read_text() == "released"
    child.finish()


def _behind_the_lock(
    spawn: Spawn,
    db: Path,
    store: factstr.SqliteStore,
    calls: list[Callable[[factstr.SqliteStore], object]],
    release: bool = True,
) -> list[Outcome]:
    """Runs ``calls`` while another process holds the write lock: the first waits for it, the
    rest queue behind (a group). ``release``: the lock goes once they are queued; otherwise only
    after every call ended. Each call's result or error, in the order of ``calls``."""
    locker = _lock(spawn, db)
    started = [run_in_thread(functools.partial(calls[0], store))]
    time.sleep(0.3)  # the first call waits for the lock (it is right whatever the timing)
    started += [run_in_thread(functools.partial(call, store)) for call in calls[1:]]
    time.sleep(0.3)  # the others queue behind it
    if release:
        _unlock(locker)
    outcomes: list[Outcome] = []
    for thread, errors, results in started:
        thread.join(60)
        assert not thread.is_alive()
        outcomes.append((results[0] if results else None, errors[0] if errors else None))
    if not release:
        _unlock(locker)
    return outcomes


def _tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the store writes for appends, but the times (which differ between runs)."""
    queries = {
        "events": "SELECT sequence_number, event_type, payload FROM events ORDER BY 1",
        "append_batches": "SELECT * FROM append_batches ORDER BY 1",
        "level_0": "SELECT * FROM factstr_payload_level_0 ORDER BY 1",
        "runs": "SELECT * FROM factstr_payload_runs ORDER BY 1",
        "blocks": "SELECT * FROM factstr_payload_blocks ORDER BY 1",
        "index_state": "SELECT * FROM factstr_payload_index_state",
        "keys": "SELECT idempotency_key, key_number, first_sequence_number, last_sequence_number "
        "FROM factstr_idempotency_keys ORDER BY key_number",
    }
    # Read with Python's own sqlite3 (SPEC §7 allows it), once the stores on the file are closed.
    connection = sqlite3.connect(db)
    try:
        return {name: connection.execute(sql).fetchall() for name, sql in queries.items()}
    finally:
        connection.close()


def test_a_group_writes_exactly_what_the_calls_write_alone(spawn: Spawn, tmp_path: Path) -> None:
    base = EventQuery.for_event_types(["base"])
    never = EventQuery.for_event_types(["never-written"])
    keyed = [NewEvent("k", {"id": "k1", "tag": "x"}), NewEvent("k", {"id": "k1"})]
    # Larger than a group's bound of events (16,384), and enough postings to write runs of the
    # payload index rather than rows of its level 0.
    huge = [NewEvent("h", {"id": f"h{i}", "tag": "x"}) for i in range(20_000)]
    # No call writes a context another checks: each outcome is the same in any order, so the
    # same calls alone in commit order must give the same file.
    calls: dict[str, Callable[[factstr.SqliteStore], object]] = {
        "blocker": lambda s: s.append([NewEvent("blocker", {})]),
        "one": lambda s: s.append([NewEvent("t", {"id": "a1", "n": 1})]),
        "many": lambda s: s.append(
            [NewEvent("t", {"id": "a2", "tag": "x"}), NewEvent("u", {"id": "a3", "f": -0.0})]
        ),
        "huge": lambda s: s.append(huge),
        "keyed": lambda s: s.append(keyed, idempotency_key="key-1"),
        "keyed-again": lambda s: s.append(keyed, idempotency_key="key-1"),
        "if-holds": lambda s: s.append_if([NewEvent("c", {"tag": "x"})], base, 1),
        "if-conflicts": lambda s: s.append_if([NewEvent("bad", {})], base, None),
        "unless-holds": lambda s: s.append_unless([NewEvent("c", {"id": "a5"})] * 2, never),
        "keyed-if": lambda s: s.append_if(
            [NewEvent("c", {"id": "a6"})], base, 1, idempotency_key="key-2"
        ),
        "keyed-conflicts": lambda s: s.append_unless(
            [NewEvent("bad", {})], base, None, idempotency_key="key-3"
        ),
        "empty": lambda s: s.append([]),
    }
    grouped_db = tmp_path / "grouped.db"
    with factstr.SqliteStore(grouped_db, busy_timeout=30) as store:
        store.append([NewEvent("base", {"id": "b"})])
        outcomes = dict(
            zip(
                calls, _behind_the_lock(spawn, grouped_db, store, list(calls.values())), strict=True
            )
        )
    for name in ("if-conflicts", "keyed-conflicts"):
        assert isinstance(outcomes[name][1], factstr.ConditionalAppendConflict), outcomes
    assert isinstance(outcomes["empty"][1], factstr.EmptyAppendError)
    done = {name: result for name, (result, error) in outcomes.items() if error is None}
    assert len(done) == len(calls) - 3, outcomes
    assert done["keyed"] == done["keyed-again"]
    del done["keyed-again"]
    alone_db = tmp_path / "alone.db"
    with factstr.SqliteStore(alone_db) as alone:
        alone.append([NewEvent("base", {"id": "b"})])
        for name in sorted(done, key=lambda name: done[name].first_sequence_number):  # type: ignore[attr-defined]
            assert calls[name](alone) == done[name], name
    assert _tables(grouped_db) == _tables(alone_db)


def test_a_lock_held_past_busy_timeout_fails_the_whole_group_and_leaves_nothing(
    spawn: Spawn, db: Path
) -> None:
    with factstr.SqliteStore(db, busy_timeout=0.2) as store:
        store.append([NewEvent("base", {})])
        calls: list[Callable[[factstr.SqliteStore], object]] = [
            lambda s: s.append([NewEvent("t", {"n": 1}), NewEvent("t", {"n": 1})]),
            lambda s: s.append([NewEvent("t", {"n": 2})], idempotency_key="key-1"),
            lambda s: s.append_if([NewEvent("t", {"n": 3})], EventQuery.all(), 1),
            lambda s: s.append_unless([NewEvent("t", {"n": 4})], EventQuery.all(), 1),
            lambda s: s.append([NewEvent("t", {"n": 5})]),
        ]
        outcomes = _behind_the_lock(spawn, db, store, calls, release=False)
        for _, error in outcomes:
            assert isinstance(error, factstr.BackendError), outcomes
            assert "locked" in str(error)
        assert [r.event_type for r in store.query().event_records] == ["base"]
        # No key was recorded and no number used: the retry writes right after the head.
        retried = store.append([NewEvent("t", {"n": 2})], idempotency_key="key-1")
        assert retried.first_sequence_number == 2
        assert store.append_if([NewEvent("t", {})], EventQuery.all(), 2).first_sequence_number == 3


def test_a_stream_sees_nothing_of_a_failed_group_and_then_each_batch_once(
    spawn: Spawn, db: Path
) -> None:
    """A live stream (and one in another store object, woken across objects) gets the batches
    committed after a failed group, once each and in order, and nothing of the group."""
    delivered: list[list[int]] = []
    lock = threading.Lock()

    def handler(batch: list[factstr.EventRecord]) -> None:
        with lock:
            delivered.append([r.sequence_number for r in batch])

    with (
        factstr.SqliteStore(db, busy_timeout=0.2) as store,
        factstr.SqliteStore(db) as other,
        other.subscribe() as live,
    ):
        store.stream_all(handler)
        calls: list[Callable[[factstr.SqliteStore], object]] = [
            lambda s, n=n: s.append([NewEvent("t", {"n": n}), NewEvent("t", {})])  # type: ignore[misc]
            for n in range(4)
        ]
        outcomes = _behind_the_lock(spawn, db, store, calls, release=False)
        assert all(isinstance(error, factstr.BackendError) for _, error in outcomes)
        store.append([NewEvent("after", {})])
        batch = live.next_batch(timeout=10)
        assert batch is not None and [r.sequence_number for r in batch] == [1]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                if delivered:
                    break
            time.sleep(0.01)
        time.sleep(0.1)  # a wrong extra delivery would arrive meanwhile
        with lock:
            assert delivered == [[1]]


def test_one_key_twice_in_a_group_where_one_call_conflicts_writes_once(
    spawn: Spawn, db: Path
) -> None:
    """Two calls with one key in a group, one of them conflicting: whichever the group takes
    first, the key ends up with the batch of the one that holds, written once, and the other
    call gets that batch's result or its own conflict."""
    base = EventQuery.for_event_types(["base"])
    calls: list[Callable[[factstr.SqliteStore], object]] = [
        lambda s: s.append([NewEvent("blocker", {})]),
        lambda s: s.append_if([NewEvent("never", {})], base, None, idempotency_key="k1"),
        lambda s: s.append([NewEvent("k1", {}), NewEvent("k1", {})], idempotency_key="k1"),
        lambda s: s.append([NewEvent("plain", {})]),
        lambda s: s.append([NewEvent("k2", {})], idempotency_key="k2"),
        lambda s: s.append_unless([NewEvent("never", {})], base, None, idempotency_key="k2"),
    ]
    with factstr.SqliteStore(db, busy_timeout=30) as store:
        store.append([NewEvent("base", {})])
        outcomes = _behind_the_lock(spawn, db, store, calls)
        assert_one_key_held_once(outcomes, ((2, 1), (4, 5)))
        types = [r.event_type for r in store.query().event_records]
        assert sorted(types) == ["base", "blocker", "k1", "k1", "k2", "plain"]
    keys = _tables(db)["keys"]
    k1, k2 = outcomes[2][0], outcomes[4][0]
    assert isinstance(k1, factstr.AppendResult) and isinstance(k2, factstr.AppendResult)
    assert sorted((key, first, last) for key, _, first, last in keys) == [
        ("k1", k1.first_sequence_number, k1.last_sequence_number),
        ("k2", k2.first_sequence_number, k2.last_sequence_number),
    ]


def test_a_cancelled_keyed_append_and_its_retry_waiting_together_write_once(
    spawn: Spawn, db: Path
) -> None:
    """SPEC §12: a cancelled append still runs to its end on its engine thread, and the caller
    learns its outcome by retrying with the same key. Here the retry is made while the cancelled
    call still waits for the write lock, so both may land in one group: one batch is written, and
    the retry answers with it. (`asyncio.run`, not an async test: the installed-wheel suite runs
    tests/sqlite without pytest-asyncio.)"""
    asyncio.run(_cancelled_keyed_append_and_its_retry(spawn, db))


async def _cancelled_keyed_append_and_its_retry(spawn: Spawn, db: Path) -> None:
    async with aio.SqliteStore(db, busy_timeout=30) as store:
        await store.append([NewEvent("base", {})])
        locker = _lock(spawn, db)
        first = asyncio.ensure_future(
            store.append([NewEvent("order", {"attempt": 1})], idempotency_key="order-1")
        )
        await asyncio.sleep(0.2)  # it waits for the lock (the outcome is right whatever the timing)
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        retry = asyncio.ensure_future(
            store.append([NewEvent("order", {"attempt": 2})], idempotency_key="order-1")
        )
        await asyncio.sleep(0.2)
        await asyncio.get_running_loop().run_in_executor(None, _unlock, locker)
        result = await retry
        records = (await store.query(EventQuery.for_event_types(["order"]))).event_records
        assert len(records) == 1
        assert result == factstr.AppendResult(2, 2, 1)
        assert records[0].sequence_number == 2
        # Whatever ran later finds the key: nothing more is ever written for it.
        again = await store.append([NewEvent("order", {"attempt": 3})], idempotency_key="order-1")
        assert again == result
        assert (await store.query()).head_sequence_number == 2
