"""SPEC §6 additions: durable_streams(), reset_durable_stream(), delete_durable_stream()."""

from __future__ import annotations

import factstr
import pytest
from factstr import DurableStream, EventQuery

from tests.support import Collector, Store, cursor_of, ev, events

KEEP = EventQuery.for_event_types(["keep"])


def _register_and_catch_up(
    store: Store, name: str, query: EventQuery | None = None
) -> list[list[int]]:
    seen = Collector()
    if query is None:
        stream = store.stream_all_durable(name, seen)
    else:
        stream = store.stream_to_durable(name, query, seen)
    stream.unsubscribe()
    return seen.batch_seqs()


def test_durable_streams_empty(store: Store) -> None:
    assert store.durable_streams() == []


def test_reset_to_zero_replays_everything(store: Store) -> None:
    store.append(events("a", 2))
    store.append([ev("b")])
    assert _register_and_catch_up(store, "d") == [[1, 2], [3]]
    assert cursor_of(store, "d") == 3
    store.reset_durable_stream("d", 0)
    assert cursor_of(store, "d") == 0
    assert _register_and_catch_up(store, "d") == [[1, 2], [3]]


def test_reset_default_is_zero(store: Store) -> None:
    store.append([ev("a")])
    _register_and_catch_up(store, "d")
    store.reset_durable_stream("d")
    assert cursor_of(store, "d") == 0


def test_reset_to_a_batch_boundary(store: Store) -> None:
    store.append(events("a", 2))  # 1..2
    store.append([ev("b")])  # 3
    store.append([ev("c")])  # 4
    _register_and_catch_up(store, "d")
    store.reset_durable_stream("d", 2)
    assert cursor_of(store, "d") == 2
    assert _register_and_catch_up(store, "d") == [[3], [4]]
    assert cursor_of(store, "d") == 4


def test_reset_accepts_durable_stream(store: Store) -> None:
    store.append([ev("a")])
    _register_and_catch_up(store, "d")
    store.reset_durable_stream(DurableStream("d"), 0)
    assert cursor_of(store, "d") == 0


def test_reset_keeps_the_query(store: Store) -> None:
    store.append([ev("keep")])
    _register_and_catch_up(store, "d", KEEP)
    store.reset_durable_stream("d")
    [info] = store.durable_streams()
    assert info.query == KEEP
    with pytest.raises(factstr.DurableStreamQueryMismatch):
        store.stream_all_durable("d", Collector())


def test_reset_unknown_name_raises(store: Store) -> None:
    with pytest.raises(factstr.DurableStreamError):
        store.reset_durable_stream("nope")
    with pytest.raises(factstr.DurableStreamError):
        store.reset_durable_stream("nope", 3)
    assert store.durable_streams() == []


def test_reset_active_name_raises(store: Store) -> None:
    store.append([ev("a")])
    with store.stream_all_durable("d", Collector()):
        with pytest.raises(factstr.DurableStreamActive):
            store.reset_durable_stream("d")
    assert cursor_of(store, "d") == 1


def test_delete_active_name_raises(store: Store) -> None:
    with store.stream_all_durable("d", Collector()):
        with pytest.raises(factstr.DurableStreamActive):
            store.delete_durable_stream("d")
    assert [i.name for i in store.durable_streams()] == ["d"]


def test_delete_unknown_name_does_nothing(store: Store) -> None:
    store.delete_durable_stream("nope")
    store.delete_durable_stream(DurableStream("nope"))
    assert store.durable_streams() == []


def test_delete_forgets_cursor_and_query(store: Store) -> None:
    store.append([ev("keep"), ev("x")])
    _register_and_catch_up(store, "d", KEEP)
    _register_and_catch_up(store, "other")
    store.delete_durable_stream("d")
    assert [i.name for i in store.durable_streams()] == ["other"]
    # A new registration under the name may use another query and starts at 0.
    assert _register_and_catch_up(store, "d") == [[1, 2]]
    [info] = [i for i in store.durable_streams() if i.name == "d"]
    assert info.query == EventQuery.all()
    assert info.last_processed_sequence_number == 2


def test_delete_accepts_durable_stream(store: Store) -> None:
    _register_and_catch_up(store, "d")
    store.delete_durable_stream(DurableStream("d"))
    assert store.durable_streams() == []


def test_durable_streams_after_registration_shows_cursor(store: Store) -> None:
    store.append(events("a", 3))
    store.append([ev("keep")])
    with (
        store.stream_all_durable("all", Collector()),
        store.stream_to_durable("keep", KEEP, Collector()),
    ):
        infos = {i.name: i for i in store.durable_streams()}
        assert infos["all"].last_processed_sequence_number == 4
        assert infos["keep"].last_processed_sequence_number == 4
        assert infos["keep"].query == KEEP
        assert infos["all"].query == EventQuery.all()


@pytest.mark.parametrize("bad", [True, False, -1, 2**64, 1.0, "1"])
def test_reset_rejects_bad_sequence_numbers(store: Store, bad: object) -> None:
    _register_and_catch_up(store, "d")
    with pytest.raises((TypeError, ValueError)):
        store.reset_durable_stream("d", bad)  # type: ignore[arg-type]
    assert cursor_of(store, "d") == 0
