"""At most one active registration per durable name across processes sharing one SQL store;
the name is free again when the holder lets go, and soon after it is killed."""

from __future__ import annotations

import time

import factstr
import pytest
from factstr import NewEvent

from tests.processes import Spawn
from tests.shared_backends.backends import Backend
from tests.support import Collector, Store, assert_name_held, cursor_of


def _assert_held(store: Store, name: str) -> None:
    assert_name_held(store, name, subscribe=True)


@pytest.mark.parametrize("kind", ["stream", "subscribe"])
def test_name_held_by_another_process_until_it_lets_go(
    backend: Backend, spawn: Spawn, kind: str
) -> None:
    with backend.open() as store:
        store.append([NewEvent("a", {}), NewEvent("a", {})])
        child = spawn("hold", backend.locator, "d", kind)
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
def test_name_is_free_soon_after_the_holder_is_killed(
    backend: Backend, spawn: Spawn, kind: str
) -> None:
    freed_within = backend.tuning.freed_within
    with backend.open() as store:
        store.append([NewEvent("a", {})])
        child = spawn("hold", backend.locator, "d", kind)
        child.expect("ready")
        _assert_held(store, "d")
        child.sigkill()
        killed = time.monotonic()
        while True:
            try:
                stream = store.stream_all_durable("d", Collector())
                break
            except factstr.DurableStreamActive:
                assert time.monotonic() - killed < freed_within, (
                    f"name still held {freed_within}s after SIGKILL"
                )
                time.sleep(0.05)
        with stream:
            assert stream.active
            assert cursor_of(store, "d") == 1  # replayed here if the child never acknowledged it
            _assert_held(store, "d")  # now held by this store, also against itself
        store.reset_durable_stream("d", 0)
        assert cursor_of(store, "d") == 0


def test_parent_holding_a_name_refuses_a_child(backend: Backend, spawn: Spawn) -> None:
    with backend.open() as store:
        with store.subscribe(durable="d"):
            child = spawn("hold", backend.locator, "d", "stream")
            # The child's registration fails; it exits with the error on stderr.
            with pytest.raises(AssertionError, match="DurableStreamActive"):
                child.read()
            assert child.proc.returncode == 1
        child = spawn("hold", backend.locator, "d", "subscribe")
        child.expect("ready")
        child.send()
        child.expect("released")
        child.send()
        child.finish()
