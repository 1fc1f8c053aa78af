"""At most one active registration per durable name across processes sharing a PostgreSQL
database; the name is free again when the holder lets go, and soon after it is killed."""

from __future__ import annotations

import time

import pytest

import factstr
from factstr import NewEvent
from tests.postgres_server import postgres_store
from tests.processes import Spawn
from tests.support import Collector, Store, cursor_of

#: How long after the holder's death the name must be free (SPEC: 30 s; the server sees the
#: killed client's socket close at once, so a few seconds is generous).
FREED_WITHIN = 10.0


def _assert_held(store: Store, name: str) -> None:
    with pytest.raises(factstr.DurableStreamActive):
        store.stream_all_durable(name, Collector())
    with pytest.raises(factstr.DurableStreamActive):
        store.subscribe(durable=name)
    with pytest.raises(factstr.DurableStreamActive):
        store.reset_durable_stream(name)
    with pytest.raises(factstr.DurableStreamActive):
        store.delete_durable_stream(name)


@pytest.mark.parametrize("kind", ["stream", "subscribe"])
def test_name_held_by_another_process_until_it_lets_go(url: str, spawn: Spawn, kind: str) -> None:
    with postgres_store(url) as store:
        store.append([NewEvent("a", {}), NewEvent("a", {})])
        child = spawn("hold", url, "d", kind)
        child.expect("ready")
        _assert_held(store, "d")
        with store.subscribe(durable="other"):
            pass
        child.send()
        child.expect("released")
        seen = Collector()
        with store.stream_all_durable("d", seen):
            assert seen.batch_seqs() == ([] if kind == "stream" else [[1, 2]])
            assert cursor_of(store, "d") == 2
        child.send()
        child.finish()


@pytest.mark.parametrize("kind", ["stream", "subscribe"])
def test_name_is_free_soon_after_the_holder_is_killed(url: str, spawn: Spawn, kind: str) -> None:
    with postgres_store(url) as store:
        store.append([NewEvent("a", {})])
        child = spawn("hold", url, "d", kind)
        child.expect("ready")
        _assert_held(store, "d")
        child.sigkill()
        killed = time.monotonic()
        while True:
            try:
                stream = store.stream_all_durable("d", Collector())
                break
            except factstr.DurableStreamActive:
                assert time.monotonic() - killed < FREED_WITHIN, f"name still held {FREED_WITHIN}s after SIGKILL"
                time.sleep(0.05)
        with stream:
            assert stream.active
            assert cursor_of(store, "d") == 1  # replayed here if the child never acknowledged it
            _assert_held(store, "d")  # now held by this store, also against itself
        store.reset_durable_stream("d", 0)
        assert cursor_of(store, "d") == 0


def test_parent_holding_a_name_refuses_a_child(url: str, spawn: Spawn) -> None:
    with postgres_store(url) as store:
        with store.subscribe(durable="d"):
            child = spawn("hold", url, "d", "stream")
            with pytest.raises(AssertionError, match="DurableStreamActive"):
                child.read()
            assert child.proc.returncode == 1
        child = spawn("hold", url, "d", "subscribe")
        child.expect("ready")
        child.send()
        child.expect("released")
        child.send()
        child.finish()
