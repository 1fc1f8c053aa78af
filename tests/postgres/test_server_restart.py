"""The server goes away under a store: a short restart is survived by live streams (every batch
once, in order); a server that stays down ends streams and subscriptions with BackendError."""

from __future__ import annotations

import os
import time

import factstr
import pytest
from factstr import NewEvent

from tests.postgres_server import PostgresServer
from tests.processes import Spawn
from tests.support import Collector, Store, run_in_thread, seqs_of, wait_for

#: ``pg_ctl stop`` mode: "fast" ends the sessions and writes everything out. ("immediate" is a
#: crash, and with the test cluster's synchronous_commit=off it loses the last commits.)
RESTART_MODE = "fast"

#: How long after the restart every batch must have been delivered.
RECOVERY_DEADLINE = 20.0

#: The reconnect window the outage test gives its store (``PostgresStore(...,
#: reconnect_timeout=...)``; the default is 30 s, too long to wait for in every run).
OUTAGE_RECONNECT_TIMEOUT = 5.0

#: How long the outage test waits for streams to fail: the reconnect window plus generous slack
#: (tune with FACTSTR_TEST_OUTAGE_DEADLINE).
OUTAGE_DEADLINE = float(os.environ.get("FACTSTR_TEST_OUTAGE_DEADLINE", "40"))


def _append_retrying(
    store: Store, events: list[NewEvent], timeout: float = RECOVERY_DEADLINE
) -> factstr.AppendResult:
    """Appends, retrying while the store still reports the lost connection (a BackendError
    before the store has reconnected is allowed; the append that raised wrote nothing)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return store.append(events)
        except factstr.BackendError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _ranges(results: list[list[int]]) -> list[list[int]]:
    return [list(range(first, last + 1)) for first, last, _ in results]


def test_live_stream_and_subscription_survive_a_server_restart(
    url: str, restartable: PostgresServer, spawn: Spawn
) -> None:
    with factstr.PostgresStore(url) as store:
        seen = Collector()
        store.stream_all(seen)
        with store.subscribe() as sub:
            child = spawn("lines", url)
            child.expect("ready")
            child.send("2,1,3")
            before = _ranges(child.read()["results"])
            assert before == [[1, 2], [3], [4, 5, 6]]
            pulled: list[list[int]] = []
            for _ in before:
                batch = sub.next_batch(timeout=5)
                assert batch is not None
                pulled.append(seqs_of(batch))
            assert pulled == before
            seen.wait_batches(3)

            restartable.stop(RESTART_MODE)
            time.sleep(1.0)
            restartable.start()

            child.send("1,4,2")
            report = child.read(timeout=60)
            after_child = _ranges(report["results"])
            parent = _append_retrying(store, [NewEvent("parent", {"after": "restart"})])
            after = sorted(
                [
                    *after_child,
                    list(range(parent.first_sequence_number, parent.last_sequence_number + 1)),
                ]
            )
            expected = before + after
            assert [b[0] for b in expected] == [1, 3, 4, 7, 8, 12, 14]
            assert expected[-1][-1] == 14
            child.send("stop")
            child.finish()

            seen.wait_batches(len(expected), timeout=RECOVERY_DEADLINE)
            deadline = time.monotonic() + RECOVERY_DEADLINE
            while len(pulled) < len(expected):
                batch = sub.next_batch(timeout=max(0.1, deadline - time.monotonic()))
                assert batch is not None, f"subscription got {pulled} only, expected {expected}"
                pulled.append(seqs_of(batch))
            assert pulled == expected
            assert sub.next_batch(timeout=0.5) is None
            assert seen.batch_seqs() == expected  # exactly once each, in order
            assert seqs_of(store.query().event_records) == list(range(1, 15))


@pytest.mark.postgres_outage
def test_streams_fail_with_backend_error_when_the_server_stays_down(
    url: str, restartable: PostgresServer
) -> None:
    with factstr.PostgresStore(url, reconnect_timeout=OUTAGE_RECONNECT_TIMEOUT) as store:
        live = Collector()
        durable = Collector()
        live_stream = store.stream_all(live)
        durable_stream = store.stream_all_durable("d", durable)
        polled = store.subscribe()
        iterated = store.subscribe()
        try:
            store.append([NewEvent("a", {})])
            live.wait_batches(1)
            durable.wait_batches(1)
            assert polled.next_batch(timeout=5) is not None
            assert next(iterated) is not None

            def drain() -> None:
                for _ in iterated:
                    pass

            thread, iteration_errors, _ = run_in_thread(drain)
            restartable.stop(RESTART_MODE)
            started = time.monotonic()
            poll_error: BaseException | None = None
            while poll_error is None and time.monotonic() - started < OUTAGE_DEADLINE:
                try:
                    polled.next_batch(timeout=1.0)
                except Exception as exc:
                    poll_error = exc
            assert isinstance(poll_error, factstr.BackendError), (
                f"next_batch gave {poll_error!r} within {OUTAGE_DEADLINE}s"
            )
            # Not long before the reconnect window is over (it is a window, not a first failure).
            assert time.monotonic() - started >= OUTAGE_RECONNECT_TIMEOUT * 0.5
            remaining = max(1.0, OUTAGE_DEADLINE - (time.monotonic() - started))
            thread.join(remaining)
            assert not thread.is_alive(), (
                f"iteration still blocked {OUTAGE_DEADLINE}s into the outage"
            )
            assert len(iteration_errors) == 1 and isinstance(
                iteration_errors[0], factstr.BackendError
            ), iteration_errors
            wait_for(
                lambda: live_stream.error is not None,
                timeout=remaining,
                what="the live stream's error",
            )
            assert isinstance(live_stream.error, factstr.BackendError), repr(live_stream.error)
            wait_for(
                lambda: durable_stream.error is not None,
                timeout=remaining,
                what="the durable stream's error",
            )
            assert isinstance(durable_stream.error, factstr.BackendError), repr(
                durable_stream.error
            )
            assert not live_stream.active and not durable_stream.active
        finally:
            polled.close()
            iterated.close()
            restartable.start()
        # The store itself is usable again once the server is back.
        result = _append_retrying(store, [NewEvent("b", {})])
        assert result.first_sequence_number == 2
        again = Collector()
        with store.stream_all_durable("d", again):
            assert again.batch_seqs() == [[2]]  # the cursor kept batch 1 as handled
