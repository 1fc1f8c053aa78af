"""At most one active registration per durable name across processes; the name is free again
when the holder lets go or dies."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import factstr
from factstr import NewEvent
from tests.processes import Spawn
from tests.support import Collector, cursor_of

#: How long after the holder's death the name must be free (SPEC: within 30 s; the lock-file
#: design frees it at once, so a few seconds is generous).
FREED_WITHIN = 5.0


def _assert_held(store: factstr.EventStore, name: str) -> None:
    with pytest.raises(factstr.DurableStreamActive):
        store.stream_all_durable(name, Collector())
    with pytest.raises(factstr.DurableStreamActive):
        store.subscribe(durable=name)
    with pytest.raises(factstr.DurableStreamActive):
        store.reset_durable_stream(name)
    with pytest.raises(factstr.DurableStreamActive):
        store.delete_durable_stream(name)


@pytest.mark.parametrize("kind", ["stream", "subscribe"])
def test_name_held_by_another_process_until_it_lets_go(db: Path, spawn: Spawn, kind: str) -> None:
    with factstr.SqliteStore(db) as store:
        store.append([NewEvent("a", {}), NewEvent("a", {})])
        child = spawn("hold", db, "d", kind)
        child.expect("ready")
        _assert_held(store, "d")
        # Another name is not affected.
        with store.subscribe(durable="other"):
            pass
        child.send()  # close the registration, keep the process and its store
        child.expect("released")
        seen = Collector()
        with store.stream_all_durable("d", seen):
            # The child's handler ran the replay (cursor 2); its subscription never acknowledged.
            assert seen.batch_seqs() == ([] if kind == "stream" else [[1, 2]])
            assert cursor_of(store, "d") == 2
        child.send()
        child.finish()


@pytest.mark.parametrize("kind", ["stream", "subscribe"])
def test_name_is_free_soon_after_the_holder_is_killed(db: Path, spawn: Spawn, kind: str) -> None:
    with factstr.SqliteStore(db) as store:
        store.append([NewEvent("a", {})])
        child = spawn("hold", db, "d", kind)
        child.expect("ready")
        _assert_held(store, "d")
        child.sigkill()
        deadline = time.monotonic() + FREED_WITHIN
        while True:
            try:
                stream = store.stream_all_durable("d", Collector())
                break
            except factstr.DurableStreamActive:
                assert time.monotonic() < deadline, f"name still held {FREED_WITHIN}s after SIGKILL"
                time.sleep(0.05)
        with stream:
            assert stream.active
            assert cursor_of(store, "d") == 1
        store.reset_durable_stream("d", 0)
        assert cursor_of(store, "d") == 0


def test_parent_holding_a_name_refuses_a_child(db: Path, spawn: Spawn) -> None:
    with factstr.SqliteStore(db) as store:
        with store.subscribe(durable="d"):
            child = spawn("hold", db, "d", "stream")
            # The child's registration fails; it exits with the error on stderr.
            with pytest.raises(AssertionError, match="DurableStreamActive"):
                child.read()
            assert child.proc.returncode == 1
        child = spawn("hold", db, "d", "subscribe")
        child.expect("ready")
        child.send()
        child.expect("released")
        child.send()
        child.finish()
