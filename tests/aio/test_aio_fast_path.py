"""The fast path of ``factstr.aio`` (rust/factstr-python/src/aio/ready.rs): an append the
engine can do at once (a Memory store whose log nobody holds) is done on the loop thread, with
no engine thread and no wake-up, and awaiting it still gives the loop one turn. Each test runs
on the default loop and on uvloop. That the engine never waits for a held log on this path is
tested in the engine (``memory::tests::an_append_at_once_never_waits_for_the_log``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import factstr
import pytest
import uvloop
from factstr import AppendResult, EventFilter, EventQuery, NewEvent, StoreClosedError, _factstr, aio
from factstr.aio._engine import completions

T = TypeVar("T")

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=list(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Callable[[], Coroutine[Any, Any, T]]], T]:
    """Runs a coroutine function to its end on a new loop of the kind (asyncio.Runner is 3.11+;
    the package supports 3.10)."""

    def run_on_loop(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
        loop = LOOPS[request.param]()
        try:
            return loop.run_until_complete(main())
        finally:
            loop.close()

    return run_on_loop


def ev(i: int) -> NewEvent:
    return NewEvent("e", {"i": i})


def test_memory_appends_are_answered_on_the_loop_sql_ones_on_engine_threads(
    run: Any, tmp_path: Path
) -> None:
    async def main() -> tuple[type, type, AppendResult, AppendResult]:
        memory = factstr.MemoryStore()
        sqlite = factstr.SqliteStore(tmp_path / "events.db")
        try:
            at_once = _factstr._aio_append(completions(), memory, [ev(1)])
            on_a_thread = _factstr._aio_append(completions(), sqlite, [ev(1), ev(2)])
            kinds = (type(at_once), type(on_a_thread))
            return (*kinds, await at_once, await on_a_thread)
        finally:
            sqlite.close()

    ready, future, from_memory, from_sqlite = run(main)
    assert ready is _factstr._Ready
    assert issubclass(future, asyncio.Future)
    assert (from_memory.first_sequence_number, from_memory.last_sequence_number) == (1, 1)
    assert (from_sqlite.first_sequence_number, from_sqlite.last_sequence_number) == (1, 2)


def test_an_append_answered_at_once_gives_every_other_task_a_turn(run: Any) -> None:
    """A task appending in a loop does not starve the others: each awaited append yields once,
    as it would if it went to an engine thread."""

    async def main() -> tuple[int, int]:
        store = aio.MemoryStore()
        turns = 0
        done = False

        async def other() -> None:
            nonlocal turns
            while not done:
                turns += 1
                await asyncio.sleep(0)

        watcher = asyncio.ensure_future(other())
        await asyncio.sleep(0)
        turns_before = turns
        for i in range(300):
            await store.append([ev(i)])
        done = True
        await watcher
        return turns - turns_before, (await store.query()).head_sequence_number or 0

    turns, head = run(main)
    assert head == 300
    assert turns >= 300, f"the other task ran only {turns} times during 300 appends"


def test_an_append_answered_at_once_commits_its_whole_batch_or_nothing_when_cancelled(
    run: Any,
) -> None:
    async def main() -> tuple[list[int], bool, bool]:
        store = aio.MemoryStore()
        # Cancelled before it ran: nothing is committed.
        never_ran = asyncio.ensure_future(store.append([ev(1), ev(2)]))
        never_ran.cancel()
        with pytest.raises(asyncio.CancelledError):
            await never_ran
        # Cancelled during the turn it gives the loop: its batch is committed, whole.
        committed = asyncio.ensure_future(store.append([ev(3), ev(4), ev(5)]))
        await asyncio.sleep(0)  # the task ran up to its yield
        committed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await committed
        records = (await store.query()).event_records
        return [r.payload["i"] for r in records], never_ran.cancelled(), committed.cancelled()

    payloads, first_cancelled, second_cancelled = run(main)
    assert first_cancelled and second_cancelled
    assert payloads == [3, 4, 5]


def test_fast_path_errors_are_the_sync_ones(run: Any) -> None:
    async def main() -> None:
        sync_error = None
        try:
            factstr.MemoryStore().append([])
        except Exception as error:
            sync_error = type(error)
        assert sync_error is not None
        store = aio.MemoryStore()
        with pytest.raises(sync_error):
            await store.append([])
        await store.aclose()
        with pytest.raises(StoreClosedError):
            await store.append([ev(1)])

    run(main)


def test_appends_meeting_a_held_log_go_to_an_engine_thread_and_number_without_gaps(
    run: Any,
) -> None:
    """Queries on engine threads hold the Memory log now and then: an append that meets it held
    goes to an engine thread (a future) instead of waiting on the loop; the others are done at
    once (`_Ready`). Every caller is told its own batch, whichever way it went."""

    async def main() -> tuple[dict[str, int], list[AppendResult], list[int]]:
        store = aio.MemoryStore()
        sync = store._sync
        assert sync is not None
        # Queries that hold the log for a while and return nothing: both payload keys are
        # indexed, no payload has both values.
        for _ in range(20):
            sync.append([NewEvent("other", {"x": k % 2, "y": (k + 1) % 2}) for k in range(1000)])
        slow_and_empty = EventQuery([EventFilter(None, [{"x": 1, "y": 1}])])
        reading = True

        async def reader() -> None:
            while reading:
                assert not (await store.query(slow_and_empty)).event_records

        readers = [asyncio.ensure_future(reader()) for _ in range(3)]
        kinds: dict[str, int] = {}
        results: list[AppendResult] = []
        for i in range(3000):
            answer = _factstr._aio_append(completions(), sync, [ev(i)] * 3)
            kind = "at once" if isinstance(answer, _factstr._Ready) else "engine thread"
            kinds[kind] = kinds.get(kind, 0) + 1
            results.append(await answer)
            if kinds.get("engine thread", 0) >= 3 and kinds.get("at once", 0) >= 3:
                break
        reading = False
        await asyncio.gather(*readers)
        records = (await store.query(EventQuery.for_event_types(["e"]))).event_records
        return kinds, results, [r.sequence_number for r in records]

    kinds, results, numbers = run(main)
    assert kinds.get("engine thread", 0) >= 1, kinds
    assert kinds.get("at once", 0) >= 1, kinds
    told = [n for r in results for n in range(r.first_sequence_number, r.last_sequence_number + 1)]
    assert numbers == told == list(range(20_001, 20_001 + 3 * len(results)))
