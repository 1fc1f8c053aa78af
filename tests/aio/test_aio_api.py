"""``factstr.aio`` itself (SPEC §12): what the contract cases run through the sync facade cannot
show: lazy opening, the activation of subscriptions, ack off the loop, coroutine handlers on
their loop, cancellation, bounded threads, a loop that is never blocked, uvloop."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import factstr
import pytest
import uvloop
from factstr import EventQuery, EventRecord, NewEvent, aio


def ev(event_type: str, **payload: Any) -> NewEvent:
    return NewEvent(event_type, payload)


def numbers(batch: list[EventRecord]) -> list[int]:
    return [r.sequence_number for r in batch]


async def cursor_of(store: aio.EventStore, name: str) -> int:
    (info,) = [s for s in await store.durable_streams() if s.name == name]
    return info.last_processed_sequence_number


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


# --- constructors and opening ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_constructors_do_no_io_and_the_first_await_opens(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "events.db"
    store = aio.SqliteStore(missing)  # no I/O yet: no error
    assert not missing.parent.exists()
    with pytest.raises(factstr.BackendError, match="no-such-folder"):
        await store.query()
    # Opening is tried again on the next call, not cached as a failure.
    missing.parent.mkdir()
    assert (await store.query()).head_sequence_number is None
    await store.aclose()


@pytest.mark.asyncio
async def test_an_unreachable_server_raises_at_the_first_await() -> None:
    store = aio.PostgresStore("postgresql://nobody@127.0.0.1:9/none", connect_timeout=0.5)
    with pytest.raises(factstr.BackendError):
        await store.append([ev("a")])
    await store.aclose()


def test_bad_arguments_raise_at_once(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        aio.SqliteStore(tmp_path / "a.db", synchronous="sometimes")
    with pytest.raises(ValueError, match="poll_interval"):
        aio.SqliteStore(tmp_path / "a.db", poll_interval=-1)
    with pytest.raises(ValueError, match="pool_size"):
        aio.PostgresStore("postgresql://h/db", pool_size=0)
    with pytest.raises(ValueError, match="PostgreSQL URL"):
        aio.PostgresStore("mysql://h/db")
    with pytest.raises(ValueError):
        aio.connect("sqlite:///a.db?colour=blue")
    with pytest.raises(ValueError):
        aio.connect("nothing")
    store = aio.MemoryStore()
    with pytest.raises(TypeError):
        store.subscribe("not a query")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.subscribe(durable="")
    with pytest.raises(ValueError):
        store.iter_query(page_size=0)


@pytest.mark.asyncio
async def test_connect_gives_each_store_kind(aio_url: str) -> None:
    store = aio.connect(aio_url)
    assert isinstance(store, aio.EventStore)
    async with store:
        result = await store.append([ev("a", n=1)])
        assert result.first_sequence_number == 1
        assert [r.payload for r in await store.query()] == [{"n": 1}]
    assert store.closed
    assert "[closed]" in repr(store)
    with pytest.raises(factstr.StoreClosedError):
        await store.query()


@pytest.mark.asyncio
async def test_sync_and_async_stores_see_each_other(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with factstr.SqliteStore(path) as sync_store:
        async with aio.SqliteStore(path) as store:
            sync_store.append([ev("from-sync")])
            await store.append([ev("from-aio")])
            assert [r.event_type for r in sync_store.query()] == ["from-sync", "from-aio"]
            assert [r.event_type async for r in store.iter_query(page_size=1)] == [
                "from-sync",
                "from-aio",
            ]


# --- subscriptions ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_subscription_activates_on_entering_or_on_the_first_wait(aio_url: str) -> None:
    async with aio.connect(aio_url) as store:
        sub = store.subscribe()
        await store.append([ev("before-activation")])
        async with sub:
            await store.append([ev("after")])
            batch = await sub.next_batch(timeout=5)
            assert batch is not None and [r.event_type for r in batch] == ["after"]
        other = store.subscribe()
        await store.append([ev("not-seen")])
        assert await other.next_batch(timeout=0) is None  # activated here, from the head
        await store.append([ev("seen")])
        batch = await other.next_batch(timeout=5)
        assert batch is not None and [r.event_type for r in batch] == ["seen"]
        await other.aclose()


@pytest.mark.asyncio
async def test_durable_claims_happen_on_activation(aio_url: str) -> None:
    async with aio.connect(aio_url) as store:
        first = store.subscribe(durable="d")
        second = store.subscribe(durable="d")  # a plain call: nothing claimed yet
        async with first:
            with pytest.raises(factstr.DurableStreamActive):
                await second.__aenter__()
        mismatch = store.subscribe(EventQuery.for_event_types(["x"]), durable="d")
        with pytest.raises(factstr.DurableStreamQueryMismatch):
            await mismatch.next_batch(timeout=0)
        async with store.subscribe(durable="d"):  # free again after leaving `async with`
            pass
        late = store.subscribe(durable="d")
    with pytest.raises(factstr.StoreClosedError):
        await late.__aenter__()


@pytest.mark.asyncio
async def test_ack_is_plain_and_the_cursor_write_happens_off_the_loop(aio_url: str) -> None:
    async with aio.connect(aio_url) as store:
        for i in range(3):
            await store.append([ev("a", i=i)])
        async with store.subscribe(durable="d") as sub:
            first = await sub.next_batch(timeout=5)
            assert first is not None and numbers(first) == [1]
            sub.ack()  # a plain call
            await sub._acknowledged()
            assert await cursor_of(store, "d") == 1
            second = await sub.next_batch(timeout=5)
            assert second is not None and numbers(second) == [2]
            sub.ack()
        # aclose wrote the acknowledged cursor at the latest.
        assert await cursor_of(store, "d") == 2
        async with store.subscribe(durable="d") as sub:
            batch = await sub.next_batch(timeout=5)
            assert batch is not None and numbers(batch) == [3]
        assert await cursor_of(store, "d") == 2  # received, not acknowledged: comes again


@pytest.mark.asyncio
async def test_async_for_ends_when_the_subscription_or_the_store_closes(aio_url: str) -> None:
    store = aio.connect(aio_url)
    sub = store.subscribe()
    assert await sub.next_batch(timeout=0) is None  # active from here
    got: list[list[int]] = []

    async def consume() -> None:
        async for batch in sub:
            got.append(numbers(batch))

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0.05)
    await store.append([ev("a")])
    for _ in range(500):
        if got:
            break
        await asyncio.sleep(0.01)
    await sub.aclose()
    await asyncio.wait_for(consumer, 5)
    assert got == [[1]]
    second = store.subscribe()
    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0.05)
    del second
    sub = store.subscribe()
    consumer2 = asyncio.ensure_future(consume())
    await asyncio.sleep(0.05)
    await store.aclose()
    await asyncio.wait_for(asyncio.gather(consumer, consumer2), 5)


@pytest.mark.asyncio
async def test_cancelling_next_batch_loses_no_batch(aio_url: str) -> None:
    """Cancel waits at random points while batches commit; every batch arrives once, in order
    (the batch received last may come again only after a re-registration, not here)."""
    rng = random.Random(1234)
    async with aio.connect(aio_url) as store:
        total = 60
        async with store.subscribe(durable="d") as sub:

            async def append_all() -> None:
                for i in range(total):
                    await store.append([ev("a", i=i), ev("a", i=i)])
                    if i % 7 == 0:
                        await asyncio.sleep(0.002)

            appender = asyncio.ensure_future(append_all())
            received: list[list[int]] = []
            cancelled = 0
            while len(received) < total:
                task = asyncio.ensure_future(sub.next_batch(timeout=5))
                for _ in range(rng.randrange(4)):
                    await asyncio.sleep(0)
                if rng.random() < 0.5:
                    await asyncio.sleep(rng.random() / 1000)
                if not task.done():
                    task.cancel()
                try:
                    batch = await task
                except asyncio.CancelledError:
                    cancelled += 1
                    continue
                assert batch is not None
                received.append(numbers(batch))
            await appender
            assert received == [[2 * i + 1, 2 * i + 2] for i in range(total)]
            assert cancelled > 0
            sub.ack()
        assert await cursor_of(store, "d") == 2 * total


@pytest.mark.asyncio
async def test_cancelling_async_for_loses_no_batch(tmp_path: Path) -> None:
    async with aio.SqliteStore(tmp_path / "events.db") as store:
        for i in range(20):
            await store.append([ev("a", i=i)])
        got: list[int] = []
        async with store.subscribe(durable="d") as sub:
            iterator = aiter(sub)
            while len(got) < 20:
                try:
                    batch = await asyncio.wait_for(anext(iterator), timeout=0.0005)
                except TimeoutError:
                    continue
                got.extend(numbers(batch))
        assert got == list(range(1, 21))


@pytest.mark.asyncio
async def test_only_one_task_waits_on_a_subscription(aio_url: str) -> None:
    async with aio.connect(aio_url) as store:
        async with store.subscribe() as sub:
            waiting = asyncio.ensure_future(sub.next_batch(timeout=5))
            await asyncio.sleep(0.01)
            with pytest.raises(RuntimeError, match="already waiting"):
                await sub.next_batch(timeout=0)
            waiting.cancel()


# --- appends under cancellation ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_cancelled_appends_commit_their_whole_batch_or_nothing(aio_url: str) -> None:
    rng = random.Random(99)
    told: dict[int, factstr.AppendResult | None] = {}
    async with aio.connect(aio_url) as store:
        for call in range(150):
            task = asyncio.ensure_future(
                store.append([ev("part", call=call, j=j) for j in range(3)])
            )
            for _ in range(rng.randrange(5)):
                await asyncio.sleep(0)
            if rng.random() < 0.3:
                await asyncio.sleep(rng.random() / 200)
            if rng.random() < 0.8:  # the others are awaited to the end
                task.cancel()
            try:
                told[call] = await task
            except asyncio.CancelledError:
                told[call] = None
        await asyncio.sleep(0.2)  # let cancelled engine calls finish
        records = (await store.query()).event_records
    by_call: dict[int, list[EventRecord]] = {}
    for record in records:
        by_call.setdefault(record.payload["call"], []).append(record)
    numbers_seen = [r.sequence_number for r in records]
    assert numbers_seen == list(range(1, len(records) + 1)), "no gaps, no duplicates"
    for call, result in told.items():
        parts = by_call.get(call, [])
        if result is not None:
            assert [r.sequence_number for r in parts] == list(
                range(result.first_sequence_number, result.last_sequence_number + 1)
            )
        assert len(parts) in (0, 3), f"call {call}: half a batch"
        if parts:
            assert [r.payload["j"] for r in parts] == [0, 1, 2]
            assert len({r.occurred_at for r in parts}) == 1
    assert any(r is None for r in told.values()), "some calls were cancelled"
    assert any(r is not None for r in told.values()), "some calls completed"


# --- threads and the loop ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_thousand_awaited_appends_use_a_bounded_number_of_threads(tmp_path: Path) -> None:
    async with aio.SqliteStore(tmp_path / "events.db", synchronous="normal") as store:
        await store.append([ev("warm-up")])
        before = os_threads()
        most = before
        calls = [asyncio.ensure_future(store.append([ev("a", i=i)])) for i in range(1000)]
        while not all(c.done() for c in calls):
            most = max(most, os_threads())
            await asyncio.sleep(0.001)
        results = [c.result() for c in calls]
        _, engine_limit = factstr._factstr._aio_engine_threads()
    assert sorted(r.first_sequence_number for r in results) == list(range(2, 1002))
    assert most - before <= engine_limit, (before, most)
    assert factstr._factstr._aio_engine_threads()[0] <= engine_limit
    # Python's default executor was never started.
    assert getattr(asyncio.get_running_loop(), "_default_executor", None) is None


@pytest.mark.asyncio
async def test_the_loop_is_not_blocked_while_the_engine_waits(tmp_path: Path) -> None:
    """Another connection holds SQLite's write lock for 0.6 s while 100 tasks append, query and
    stream: a blocked loop would make the 1 ms heartbeat that late (generous bound: 0.3 s)."""
    path = tmp_path / "events.db"
    async with aio.SqliteStore(path) as store:
        await store.append([ev("a")])
        locked = threading.Event()

        def hold_write_lock() -> None:
            other = sqlite3.connect(path, timeout=10)
            other.execute("BEGIN IMMEDIATE")
            locked.set()
            time.sleep(0.6)
            other.rollback()
            other.close()

        holder = threading.Thread(target=hold_write_lock)
        holder.start()
        while not locked.is_set():
            await asyncio.sleep(0.001)
        lateness: list[float] = []
        stop = asyncio.Event()

        async def heartbeat() -> None:
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                start = loop.time()
                await asyncio.sleep(0.001)
                lateness.append(loop.time() - start - 0.001)

        async def worker(i: int) -> None:
            if i % 3 == 0:
                await store.append([ev("w", i=i)])
            elif i % 3 == 1:
                await store.query(EventQuery.for_event_types(["w"]))
            else:
                async with store.subscribe() as sub:
                    await sub.next_batch(timeout=0.2)

        beat = asyncio.ensure_future(heartbeat())
        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(100)))
        waited = time.monotonic() - started
        stop.set()
        await beat
        holder.join()
    assert waited >= 0.3, "the appends did wait for the lock"
    assert len(lateness) > 50
    assert max(lateness) < 0.3, f"loop blocked for {max(lateness):.3f}s"


# --- handlers ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_coroutine_handlers_run_on_their_loop_one_batch_at_a_time(aio_url: str) -> None:
    loop = asyncio.get_running_loop()
    seen: list[list[int]] = []
    running = 0
    most_at_once = 0
    on_loop: set[bool] = set()

    async def handler(batch: list[EventRecord]) -> None:
        nonlocal running, most_at_once
        on_loop.add(asyncio.get_running_loop() is loop)
        running += 1
        most_at_once = max(most_at_once, running)
        await asyncio.sleep(0.005)
        seen.append(numbers(batch))
        running -= 1

    async with aio.connect(aio_url) as store:
        stream = await store.stream_all(handler)
        assert isinstance(stream, factstr.EventStream)
        for i in range(10):
            await store.append([ev("a", i=i)])
        for _ in range(500):
            if len(seen) == 10:
                break
            await asyncio.sleep(0.01)
        stream.unsubscribe()
    assert seen == [[i] for i in range(1, 11)]
    assert most_at_once == 1
    assert on_loop == {True}


@pytest.mark.asyncio
async def test_a_slow_coroutine_handler_delays_only_its_own_stream(aio_url: str) -> None:
    release = asyncio.Event()
    slow_seen: list[int] = []
    fast_seen: list[int] = []

    async def slow(batch: list[EventRecord]) -> None:
        await release.wait()
        slow_seen.extend(numbers(batch))

    async def fast(batch: list[EventRecord]) -> None:
        fast_seen.extend(numbers(batch))

    async with aio.connect(aio_url) as store:
        with await store.stream_all(slow), await store.stream_all(fast):
            for i in range(5):
                await store.append([ev("a", i=i)])
            for _ in range(500):
                if len(fast_seen) == 5:
                    break
                await asyncio.sleep(0.01)
            assert fast_seen == [1, 2, 3, 4, 5]
            assert slow_seen == []
            release.set()
            for _ in range(500):
                if len(slow_seen) == 5:
                    break
                await asyncio.sleep(0.01)
            assert slow_seen == [1, 2, 3, 4, 5]


@pytest.mark.asyncio
async def test_durable_coroutine_handler_replays_before_returning(aio_url: str) -> None:
    seen: list[int] = []

    async def handler(batch: list[EventRecord]) -> None:
        await asyncio.sleep(0)
        seen.extend(numbers(batch))

    async with aio.connect(aio_url) as store:
        for i in range(4):
            await store.append([ev("a", i=i)])
        with await store.stream_all_durable("d", handler) as stream:
            assert seen == [1, 2, 3, 4]
            assert await cursor_of(store, "d") == 4
            assert stream.active


@pytest.mark.asyncio
async def test_a_plain_handler_runs_off_the_loop(aio_url: str) -> None:
    loop_thread = threading.get_ident()
    threads: set[int] = set()
    done = threading.Event()

    def handler(batch: list[EventRecord]) -> None:
        threads.add(threading.get_ident())
        done.set()

    async with aio.connect(aio_url) as store:
        with await store.stream_to(EventQuery.for_event_types(["a"]), handler):
            await store.append([ev("a")])
            for _ in range(500):
                if done.is_set():
                    break
                await asyncio.sleep(0.01)
    assert threads and loop_thread not in threads


@pytest.mark.asyncio
async def test_a_failing_durable_coroutine_handler_stops_its_stream(aio_url: str) -> None:
    async def handler(batch: list[EventRecord]) -> None:
        if batch[0].payload["i"] == 2:
            raise RuntimeError("boom")

    async with aio.connect(aio_url) as store:
        await store.append([ev("a", i=0)])
        stream = await store.stream_all_durable("d", handler)
        await store.append([ev("a", i=1)])
        await store.append([ev("a", i=2)])
        for _ in range(500):
            if not stream.active:
                break
            await asyncio.sleep(0.01)
        assert not stream.active
        assert isinstance(stream.error, RuntimeError)
        assert await cursor_of(store, "d") == 2


@pytest.mark.asyncio
async def test_cancelling_a_durable_registration_during_replay(aio_url: str) -> None:
    at_third = asyncio.Event()
    never = asyncio.Event()
    handled: list[int] = []

    async def handler(batch: list[EventRecord]) -> None:
        if batch[0].payload["i"] == 2:
            at_third.set()
            await never.wait()
        handled.extend(numbers(batch))

    async with aio.connect(aio_url) as store:
        for i in range(5):
            await store.append([ev("a", i=i)])
        registering = asyncio.ensure_future(store.stream_all_durable("d", handler))
        await asyncio.wait_for(at_third.wait(), 5)
        registering.cancel()
        with pytest.raises(asyncio.CancelledError):
            await registering
        assert handled == [1, 2]
        assert await cursor_of(store, "d") == 2
        async with store.subscribe(durable="d") as sub:  # the name is free again
            batch = await sub.next_batch(timeout=5)
            assert batch is not None and numbers(batch) == [3]


def test_a_coroutine_handler_stream_stops_when_its_loop_closes(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    seen: list[int] = []

    async def handler(batch: list[EventRecord]) -> None:
        seen.extend(numbers(batch))

    async def register() -> tuple[factstr.EventStream, factstr.EventStream]:
        store = aio.SqliteStore(path)
        live = await store.stream_all(handler)
        durable = await store.stream_all_durable("d", handler)
        await store.append([ev("a")])
        # Handled means acknowledged: the cursor moves once the delivery thread has seen the
        # coroutine return, a moment after `seen` grows. A batch whose acknowledgement the loop's
        # shutdown overtakes may come again (SPEC §6), which this test is not about.
        for _ in range(500):
            if len(seen) == 2 and (await store.durable_streams())[0].last_processed_sequence_number:
                break
            await asyncio.sleep(0.01)
        return live, durable

    live, durable = asyncio.run(register())
    assert seen == [1, 1]
    assert not live.active
    assert not durable.active
    with factstr.SqliteStore(path) as store:
        store.append([ev("b")])
        time.sleep(0.1)
        assert seen == [1, 1]
        # The durable name is free again, its cursor after the handled batch.
        assert store.durable_streams()[0].last_processed_sequence_number == 1
        with store.subscribe(durable="d") as sub:
            batch = sub.next_batch(timeout=5)
            assert batch is not None and numbers(batch) == [2]


# --- uvloop -----------------------------------------------------------------------------------


def test_the_api_under_uvloop(tmp_path: Path) -> None:
    async def scenario() -> list[Any]:
        seen: list[int] = []

        async def handler(batch: list[EventRecord]) -> None:
            seen.extend(numbers(batch))

        async with aio.SqliteStore(tmp_path / "events.db") as store:
            with await store.stream_all(handler):
                async with store.subscribe(durable="d") as sub:
                    results = await asyncio.gather(
                        *(store.append([ev("a", i=i)]) for i in range(50))
                    )
                    got: list[int] = []
                    async for batch in sub:
                        got.extend(numbers(batch))
                        if len(got) == 50:
                            break
                for _ in range(500):
                    if len(seen) == 50:
                        break
                    await asyncio.sleep(0.01)
            return [type(asyncio.get_running_loop()).__module__, len(results), got, sorted(seen)]

    loop = uvloop.new_event_loop()  # (asyncio.Runner is 3.11+; the package supports 3.10)
    try:
        module, appended, got, seen = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert module.startswith("uvloop")
    assert appended == 50
    assert got == list(range(1, 51))
    assert seen == list(range(1, 51))


@pytest.mark.asyncio
async def test_bootstrap_is_awaitable_and_opens_off_the_loop(
    postgres_server: Any,
) -> None:
    name = f"aio_boot_{uuid.uuid4().hex}"
    try:
        store = await aio.PostgresStore.bootstrap(postgres_server.url, name, pool_size=2)
        assert isinstance(store, aio.PostgresStore)
        assert postgres_server.database_exists(name)
        assert store.url is not None and name in store.url
        async with store:
            assert (await store.append([ev("a")])).first_sequence_number == 1
        again = await aio.PostgresStore.bootstrap(postgres_server.url, name)
        async with again:
            assert len(await again.query()) == 1
    finally:
        postgres_server.drop_database(name)


def test_a_forked_child_has_engine_threads_of_its_own(tmp_path: Path) -> None:
    """The parent's engine threads do not exist in a forked child: the child's calls run on
    a pool of its own; an inherited SQLite store raises StoreClosedError there (SPEC §7)."""
    path = tmp_path / "events.db"

    async def in_parent() -> aio.SqliteStore:
        store = aio.SqliteStore(path)
        await asyncio.gather(*(store.append([ev("parent")]) for _ in range(20)))
        return store

    inherited = asyncio.run(in_parent())

    async def in_child() -> int:
        memory = aio.MemoryStore()
        results = await asyncio.gather(*(memory.append([ev("child")]) for _ in range(20)))
        assert sorted(r.first_sequence_number for r in results) == list(range(1, 21))
        try:
            await inherited.append([ev("child")])
        except factstr.StoreClosedError:
            return 0
        return 3

    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            import signal

            signal.alarm(20)  # a hang ends the child, and the test fails
            code = asyncio.run(in_child())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    asyncio.run(_closed(inherited))
    with factstr.SqliteStore(path) as store:
        assert len(store.query()) == 20


async def _closed(store: aio.EventStore) -> None:
    await store.aclose()
