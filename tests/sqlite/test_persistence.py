"""Facts, batch boundaries and durable cursors live in the file: they survive close and reopen."""

from __future__ import annotations

from datetime import timezone
from pathlib import Path

import factstr
import pytest
from factstr import EventQuery, NewEvent

from tests.support import Collector, cursor_of, replay_shapes, seqs_of


def _write_history(store: factstr.EventStore) -> None:
    store.append(
        [NewEvent("a", {"n": 1}), NewEvent("b", {"n": 2}), NewEvent("a", {"n": 3})]
    )  # 1..3
    store.append([NewEvent("b", {"n": 4, "nested": {"list": [1, 2.5, "x", None, True]}})])  # 4
    store.append([NewEvent("a", {"n": 5}), NewEvent("a", {"n": 6})])  # 5..6


def test_facts_survive_close_and_reopen(db: Path) -> None:
    with factstr.SqliteStore(db) as store:
        _write_history(store)
        before = store.query()
    assert db.is_file()
    with factstr.SqliteStore(db) as store:
        after = store.query()
        assert after == before
        assert seqs_of(after.event_records) == [1, 2, 3, 4, 5, 6]
        assert [r.event_type for r in after.event_records] == ["a", "b", "a", "b", "a", "a"]
        assert after.event_records[3].payload == {
            "n": 4,
            "nested": {"list": [1, 2.5, "x", None, True]},
        }
        stamps = [r.occurred_at for r in after.event_records]
        assert all(
            s.tzinfo is not None and s.utcoffset() == timezone.utc.utcoffset(None) for s in stamps
        )
        assert stamps[0] == stamps[1] == stamps[2]
        assert stamps[4] == stamps[5]
        assert after.current_context_version == 6
        # Numbering goes on after the reopened end.
        result = store.append([NewEvent("c", {})])
        assert (
            result.first_sequence_number,
            result.last_sequence_number,
            result.committed_count,
        ) == (7, 7, 1)


def test_batch_boundaries_survive_reopen(db: Path) -> None:
    with factstr.SqliteStore(db) as store:
        _write_history(store)
    with factstr.SqliteStore(db) as store:
        assert replay_shapes(store, "shapes") == [[1, 2, 3], [4], [5, 6]]
        assert replay_shapes(store, "only-a", EventQuery.for_event_types(["a"])) == [[1, 3], [5, 6]]


def test_handler_cursor_survives_reopen(db: Path) -> None:
    with factstr.SqliteStore(db) as store:
        _write_history(store)
        seen = Collector()
        with store.stream_all_durable("proj", seen):
            assert seen.batch_seqs() == [[1, 2, 3], [4], [5, 6]]
        assert cursor_of(store, "proj") == 6
    with factstr.SqliteStore(db) as store:
        [info] = store.durable_streams()
        assert (info.name, info.query, info.last_processed_sequence_number) == (
            "proj",
            EventQuery.all(),
            6,
        )
        store.append([NewEvent("c", {}), NewEvent("c", {})])  # 7..8
        seen = Collector()
        with store.stream_all_durable("proj", seen):
            assert seen.batch_seqs() == [[7, 8]]
        assert cursor_of(store, "proj") == 8


def test_subscription_cursor_survives_reopen_and_redelivers_unacknowledged(db: Path) -> None:
    query = EventQuery.for_event_types(["a"])
    with factstr.SqliteStore(db) as store:
        _write_history(store)
        sub = store.subscribe(query, durable="sub")
        first = sub.next_batch(timeout=5.0)
        second = sub.next_batch(timeout=5.0)  # acknowledges [1, 3], not [5, 6]
        assert first is not None and second is not None
        assert (seqs_of(first), seqs_of(second)) == ([1, 3], [5, 6])
    # The store was closed with [5, 6] handed out but not acknowledged.
    with factstr.SqliteStore(db) as store:
        [info] = store.durable_streams()
        assert (info.name, info.query, info.last_processed_sequence_number) == ("sub", query, 3)
        assert replay_shapes(store, "sub", query) == [[5, 6]]
        assert cursor_of(store, "sub") == 6
    with factstr.SqliteStore(db) as store:
        assert replay_shapes(store, "sub", query) == []
        assert cursor_of(store, "sub") == 6


def test_reset_and_delete_persist(db: Path) -> None:
    with factstr.SqliteStore(db) as store:
        _write_history(store)
        assert replay_shapes(store, "x") == [[1, 2, 3], [4], [5, 6]]
        assert replay_shapes(store, "y") == [[1, 2, 3], [4], [5, 6]]
        store.reset_durable_stream("x", 3)
        store.delete_durable_stream("y")
    with factstr.SqliteStore(db) as store:
        assert [(i.name, i.last_processed_sequence_number) for i in store.durable_streams()] == [
            ("x", 3)
        ]
        assert replay_shapes(store, "x") == [[4], [5, 6]]


def test_connect_relative_and_absolute_urls_open_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with factstr.connect("sqlite:///relative.db") as store:
        assert isinstance(store, factstr.SqliteStore)
        store.append([NewEvent("a", {"via": "relative"}), NewEvent("a", {"via": "relative"})])
    assert (tmp_path / "relative.db").is_file()
    absolute = f"sqlite:///{tmp_path / 'relative.db'}"
    assert absolute.startswith("sqlite:////")
    with factstr.connect(absolute) as store:
        assert isinstance(store, factstr.SqliteStore)
        assert [r.payload for r in store.query().event_records] == [
            {"via": "relative"},
            {"via": "relative"},
        ]
        store.append([NewEvent("b", {"via": "absolute"})])
    # Both open at once: each sees the other's commits.
    with factstr.connect("sqlite:///relative.db") as rel, factstr.connect(absolute) as abs_:
        assert seqs_of(rel.query().event_records) == [1, 2, 3]
        assert rel.query().event_records[2].payload == {"via": "absolute"}
        assert abs_.append([NewEvent("c", {})]).first_sequence_number == 4
        assert rel.append([NewEvent("c", {})]).first_sequence_number == 5
        assert rel.query() == abs_.query()
        assert seqs_of(abs_.query().event_records) == [1, 2, 3, 4, 5]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".db")) == ["relative.db"]


def test_poll_interval_and_synchronous_options(db: Path) -> None:
    with factstr.SqliteStore(db, poll_interval=0.005) as store:
        assert store.append([NewEvent("a", {})]).first_sequence_number == 1
    with factstr.SqliteStore(db, synchronous="normal") as store:
        assert store.append([NewEvent("a", {})]).first_sequence_number == 2
        assert seqs_of(store.query().event_records) == [1, 2]
    with pytest.raises(ValueError):
        factstr.SqliteStore(db, poll_interval=0)
    with pytest.raises(ValueError):
        factstr.SqliteStore(db, poll_interval=-0.5)
    with pytest.raises(ValueError):
        factstr.SqliteStore(db, synchronous="bogus")  # type: ignore[arg-type]
    with factstr.SqliteStore(db) as store:
        assert seqs_of(store.query().event_records) == [1, 2]
