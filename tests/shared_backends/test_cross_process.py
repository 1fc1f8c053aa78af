"""SPEC §2.6, §5 (across processes) and §6 (exclusivity across processes): a second process on
the same backend. Skipped for the memory store, which no other process can open."""

from __future__ import annotations

import json
import threading

import factstr
import pytest

from tests.processes import Spawn, python_child
from tests.support import (
    Collector,
    Store,
    assert_name_held,
    cursor_of,
    ev,
    seqs_of,
    wait_for,
)

CHILD_TIMEOUT = 60.0


def test_other_process_commits_are_streamed_with_their_batch_shape(
    open_code: str, store: Store, spawn: Spawn
) -> None:
    seen = Collector()
    filtered = Collector()
    store.stream_all(seen)
    store.stream_to(factstr.EventQuery.for_event_types(["keep"]), filtered)
    sub = store.subscribe()
    child = python_child(
        spawn,
        """
        for size in (1, 3, 2):
            store.append([factstr.NewEvent("keep" if i % 2 == 0 else "drop", {"i": i}) for i in range(size)])
        store.close()
        """,
        open_code,
    )
    child.finish(CHILD_TIMEOUT)
    seen.wait_records(6)
    assert seen.batch_seqs() == [[1], [2, 3, 4], [5, 6]]
    filtered.wait_records(4)
    assert filtered.batch_seqs() == [[1], [2, 4], [5]]
    got = [sub.next_batch(timeout=5) for _ in range(3)]
    assert [seqs_of(b) for b in got if b is not None] == [[1], [2, 3, 4], [5, 6]]
    assert seen.records == store.query().event_records
    sub.close()


def test_appends_from_two_processes_are_gapless_and_contiguous(
    open_code: str, store: Store, spawn: Spawn
) -> None:
    seen = Collector()
    store.stream_all(seen)
    child = python_child(
        spawn,
        """
        sys.stdin.readline()
        results = []
        for j in range(100):
            size = 1 + j % 3
            r = store.append([factstr.NewEvent("child", {"j": j, "k": k}) for k in range(size)])
            results.append([r.first_sequence_number, r.last_sequence_number, r.committed_count, j])
        print(json.dumps(results))
        store.close()
        """,
        open_code,
    )
    parent_results: list[tuple[int, int, int, int]] = []

    def parent() -> None:
        for j in range(100):
            size = 1 + j % 2
            r = store.append([factstr.NewEvent("parent", {"j": j, "k": k}) for k in range(size)])
            parent_results.append(
                (r.first_sequence_number, r.last_sequence_number, r.committed_count, j)
            )

    child.send("go")
    thread = threading.Thread(target=parent, daemon=True)
    thread.start()
    child_results = [tuple(x) for x in child.read(CHILD_TIMEOUT)]
    child.finish(CHILD_TIMEOUT)
    thread.join(CHILD_TIMEOUT)
    ranges = [(int(first), int(last)) for first, last, _, _ in child_results] + [
        (first, last) for first, last, _, _ in parent_results
    ]
    for first, last, count, j in child_results:
        assert last - first + 1 == count == 1 + int(j) % 3
    for first, last, count, j in parent_results:
        assert last - first + 1 == count == 1 + j % 2
    total = sum(last - first + 1 for first, last in ranges)
    assert sorted(n for first, last in ranges for n in range(first, last + 1)) == list(
        range(1, total + 1)
    )
    records = store.query().event_records
    assert seqs_of(records) == list(range(1, total + 1))
    by_seq = {r.sequence_number: r for r in records}
    for first, last, _, j in child_results:
        assert [by_seq[n].payload for n in range(int(first), int(last) + 1)] == [
            {"j": j, "k": k} for k in range(int(last) - int(first) + 1)
        ]
        assert all(by_seq[n].event_type == "child" for n in range(int(first), int(last) + 1))
    seen.wait_records(total)
    assert seen.seqs == list(range(1, total + 1))
    assert [(b[0], b[-1]) for b in seen.batch_seqs()] == sorted(ranges)


def test_durable_name_is_exclusive_across_processes(
    open_code: str, store: Store, spawn: Spawn
) -> None:
    probe = """
        try:
            stream = store.stream_all_durable("d", lambda batch: None)
        except factstr.DurableStreamActive:
            print("active")
        else:
            stream.unsubscribe()
            print("registered")
        store.close()
        """
    with store.stream_all_durable("d", Collector()):
        prober = python_child(spawn, probe, open_code)
        assert prober.read_text(CHILD_TIMEOUT) == "active"
        prober.finish(CHILD_TIMEOUT)
    prober = python_child(spawn, probe, open_code)
    assert prober.read_text(CHILD_TIMEOUT) == "registered"
    prober.finish(CHILD_TIMEOUT)


def test_subscription_name_is_exclusive_across_processes(
    open_code: str, store: Store, spawn: Spawn
) -> None:
    probe = """
        try:
            with store.subscribe(durable="d") as sub:
                sub.next_batch(timeout=0.2)
        except factstr.DurableStreamActive:
            print("active")
        else:
            print("registered")
        store.close()
        """
    with store.subscribe(durable="d") as sub:
        sub.next_batch(timeout=0.05)
        prober = python_child(spawn, probe, open_code)
        assert prober.read_text(CHILD_TIMEOUT) == "active"
        prober.finish(CHILD_TIMEOUT)
    prober = python_child(spawn, probe, open_code)
    assert prober.read_text(CHILD_TIMEOUT) == "registered"
    prober.finish(CHILD_TIMEOUT)


def test_parent_sees_name_held_by_child(open_code: str, store: Store, spawn: Spawn) -> None:
    child = python_child(
        spawn,
        """
        stream = store.stream_all_durable("d", lambda batch: None)
        print("holding", flush=True)
        sys.stdin.readline()
        stream.unsubscribe()
        print("released", flush=True)
        store.close()
        """,
        open_code,
    )
    try:
        assert child.read_text() == "holding"
        assert_name_held(store, "d")
        child.send("go")
        assert child.read_text() == "released"
        with store.stream_all_durable("d", Collector()):
            pass
    finally:
        child.finish(CHILD_TIMEOUT)


def test_name_is_freed_after_holder_process_dies(
    open_code: str, store: Store, spawn: Spawn
) -> None:
    child = python_child(
        spawn,
        """
        stream = store.stream_all_durable("d", lambda batch: None)
        print("holding", flush=True)
        time.sleep(600)
        """,
        open_code,
    )
    try:
        assert child.read_text() == "holding"
        with pytest.raises(factstr.DurableStreamActive):
            store.stream_all_durable("d", Collector())
    finally:
        child.sigkill()

    def free() -> bool:
        try:
            store.stream_all_durable("d", Collector()).unsubscribe()
        except factstr.DurableStreamActive:
            return False
        return True

    # SPEC §6: within 30 s after the holder's process dies.
    wait_for(free, timeout=35, what="the dead process's durable name to be freed")


def test_cursor_written_by_another_process(open_code: str, store: Store, spawn: Spawn) -> None:
    store.append([ev("a"), ev("a")])
    store.append([ev("b")])
    child = python_child(
        spawn,
        """
        got = []
        stream = store.stream_all_durable("d", lambda batch: got.append([r.sequence_number for r in batch]))
        stream.unsubscribe()
        print(json.dumps(got))
        store.close()
        """,
        open_code,
    )
    assert child.read(CHILD_TIMEOUT) == [[1, 2], [3]]
    child.finish(CHILD_TIMEOUT)
    assert cursor_of(store, "d") == 3
    store.append([ev("c")])
    seen = Collector()
    with store.stream_all_durable("d", seen):
        assert seen.batch_seqs() == [[4]]


def test_durable_live_stream_gets_other_process_batches(
    open_code: str, store: Store, spawn: Spawn
) -> None:
    seen = Collector()
    store.stream_all_durable("d", seen)
    child = python_child(
        spawn,
        """
        for size in (2, 1):
            store.append([factstr.NewEvent("x", {}) for _ in range(size)])
        store.close()
        """,
        open_code,
    )
    child.finish(CHILD_TIMEOUT)
    seen.wait_records(3)
    assert seen.batch_seqs() == [[1, 2], [3]]
    wait_for(lambda: cursor_of(store, "d") == 3, what="the cursor to follow")


def test_append_if_is_atomic_across_processes(open_code: str, store: Store, spawn: Spawn) -> None:
    """Two processes race on append_if with the same expected version: one wins each round."""
    child = python_child(
        spawn,
        """
        q = factstr.EventQuery.for_event_types(["slot"])
        wins = 0
        conflicts = 0
        for line in sys.stdin:
            expected = json.loads(line)
            if expected == "stop":
                break
            try:
                store.append_if([factstr.NewEvent("slot", {"by": "child"})], q, expected)
                wins += 1
            except factstr.ConditionalAppendConflict:
                conflicts += 1
            print("done", flush=True)
        print(json.dumps([wins, conflicts]), flush=True)
        store.close()
        """,
        open_code,
    )
    query = factstr.EventQuery.for_event_types(["slot"])
    parent_wins = 0
    rounds = 30
    for _ in range(rounds):
        expected = store.query(query).current_context_version
        child.send(json.dumps(expected))
        try:
            store.append_if([factstr.NewEvent("slot", {"by": "parent"})], query, expected)
            parent_wins += 1
        except factstr.ConditionalAppendConflict:
            pass
        assert child.read_text() == "done"
    child.send('"stop"')
    child_wins, _ = child.read(CHILD_TIMEOUT)
    child.finish(CHILD_TIMEOUT)
    assert parent_wins + child_wins == rounds
    assert seqs_of(store.query().event_records) == list(range(1, rounds + 1))


def test_readers_see_prefixes_while_another_process_appends(
    open_code: str, store: Store, spawn: Spawn
) -> None:
    """SPEC §2.6: a reader that has seen n has seen every fact below n, across processes."""
    child = python_child(
        spawn,
        """
        for j in range(200):
            store.append([factstr.NewEvent("w", {"j": j, "k": k}) for k in range(1 + j % 3)])
        store.close()
        """,
        open_code,
    )
    try:
        while child.running():
            records = store.query().event_records
            assert seqs_of(records) == list(range(1, len(records) + 1))
            limited = store.query(factstr.EventQuery.for_event_types(["w"]), limit=7)
            if limited.last_returned_sequence_number is not None:
                assert limited.current_context_version is not None
                assert limited.last_returned_sequence_number <= limited.current_context_version
    finally:
        child.finish(CHILD_TIMEOUT)
    total = sum(1 + j % 3 for j in range(200))
    assert seqs_of(store.query().event_records) == list(range(1, total + 1))


def _register_when_free(store: Store, name: str, seen: Collector) -> factstr.EventStream:
    streams: list[factstr.EventStream] = []

    def attempt() -> bool:
        try:
            streams.append(store.stream_all_durable(name, seen))
        except factstr.DurableStreamActive:
            return False
        return True

    wait_for(attempt, timeout=35, what=f"the durable name {name!r} to be free")
    return streams[0]


def test_crash_inside_handler_redelivers_the_batch(
    open_code: str, store: Store, spawn: Spawn
) -> None:
    """SPEC §6: at-least-once; a crash before the handler returns re-delivers that batch."""
    store.append([ev("a")])  # 1
    store.append([ev("crash"), ev("b")])  # 2..3
    store.append([ev("c")])  # 4
    child = python_child(
        spawn,
        """
        import os
        def handler(batch):
            if batch[0].event_type == "crash":
                os._exit(3)
        store.stream_all_durable("d", handler)
        print("not reached")
        """,
        open_code,
    )
    assert child.exit_code(CHILD_TIMEOUT) == 3
    assert cursor_of(store, "d") == 1
    seen = Collector()
    with _register_when_free(store, "d", seen):
        assert seen.batch_seqs() == [[2, 3], [4]]
        assert cursor_of(store, "d") == 4


def test_crash_of_subscriber_redelivers_unacknowledged_batch(
    open_code: str, store: Store, spawn: Spawn
) -> None:
    store.append([ev("a")])  # 1
    store.append([ev("b")])  # 2
    child = python_child(
        spawn,
        """
        import os
        sub = store.subscribe(durable="s")
        first = sub.next_batch(timeout=5)
        second = sub.next_batch(timeout=5)  # acknowledges the first
        print([r.sequence_number for r in first], [r.sequence_number for r in second], flush=True)
        os._exit(0)
        """,
        open_code,
    )
    assert child.read_text(CHILD_TIMEOUT) == "[1] [2]"
    child.finish(CHILD_TIMEOUT)
    assert cursor_of(store, "s") == 1

    received: list[list[int]] = []

    def attempt() -> bool:
        try:
            with store.subscribe(durable="s") as sub:
                batch = sub.next_batch(timeout=5)
        except factstr.DurableStreamActive:
            return False
        assert batch is not None
        received.append(seqs_of(batch))
        return True

    wait_for(attempt, timeout=35, what="the durable name 's' to be free")
    assert received == [[2]]
