"""The SQLite payload index on a real file: query answers stay exact while the index folds its
commit-ordered level 0 into runs and merges runs into higher levels (large merges in slices, one
per append, across a SIGKILL too), after reopening, and after a rebuild of an index written in
an older format."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import factstr
from factstr import EventFilter, EventQuery, NewEvent

from tests.processes import Spawn, python_child
from tests.support import seqs_of

COURSES = 37
#: Events per batch of the killed writer: ~40,000 index entries, a run of level 2 each, so that
#: every 8th batch starts a merge in slices (above MERGE_AT_ONCE_NUMBERS) that the next batches
#: carry on.
BIG_BATCH = 10_000


def _payload(n: int) -> dict[str, object]:
    return {"student": f"s{n}", "course": f"c{n % COURSES}", "amount": n % 11, "tags": ["t"]}


def _event(n: int) -> NewEvent:
    return NewEvent("enrolled" if n % 3 else "dropped", _payload(n))


def _fill(store: factstr.EventStore, events: int) -> None:
    """Batches of varied sizes (single events and large batches), so level 0 folds on both limits."""
    n = 1
    sizes = [1, 250, 7, 1000, 2]
    step = 0
    while n <= events:
        size = min(sizes[step % len(sizes)], events - n + 1)
        store.append([_event(i) for i in range(n, n + size)])
        n += size
        step += 1


def _check_answers(store: factstr.EventStore, events: int) -> None:
    def query(predicate: dict[str, object], types: list[str] | None = None) -> list[int]:
        found = store.query(EventQuery([EventFilter(types, [predicate])]))
        return seqs_of(found.event_records)

    assert query({"student": "s1"}) == [1]
    assert query({"student": f"s{events}"}) == [events]
    assert query({"student": "s0"}) == []
    assert query({"course": "c5"}) == [n for n in range(1, events + 1) if n % COURSES == 5]
    assert query({"course": "c5", "amount": 3}) == [
        n for n in range(1, events + 1) if n % COURSES == 5 and n % 11 == 3
    ]
    assert query({"course": "c6"}, ["dropped"]) == [
        n for n in range(1, events + 1) if n % COURSES == 6 and n % 3 == 0
    ]
    assert len(query({"tags": ["t"]})) == events


def test_answers_stay_exact_through_index_merges_and_reopen(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    events = 100_000  # 400,000 index entries: level 0 folds ~80 times, runs reach level 3
    with factstr.SqliteStore(db) as store:
        _fill(store, events)
        _check_answers(store, events)
    with sqlite3.connect(db) as raw:
        levels = {
            level for (level,) in raw.execute("SELECT DISTINCT level FROM factstr_payload_runs")
        }
    assert max(levels) >= 3, levels
    with factstr.SqliteStore(db) as store:
        _check_answers(store, events)
        store.append([_event(events + 1)])
        _check_answers(store, events + 1)


def test_an_index_in_an_older_format_is_rebuilt_from_the_events(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    events = 5_000
    with factstr.SqliteStore(db) as store:
        _fill(store, events)
    with sqlite3.connect(db) as raw:
        # What an older factstr leaves: another key format, and index rows in tables this one
        # does not read.
        raw.execute("UPDATE factstr_payload_index_state SET key_format = 1")
        raw.execute(
            "CREATE TABLE factstr_payload_index (key_hash INTEGER, first_sequence_number INTEGER, members BLOB)"
        )
        raw.execute("INSERT INTO factstr_payload_index VALUES (1, 1, NULL)")
    with factstr.SqliteStore(db) as store:
        _check_answers(store, events)  # from the unindexed tail
        store.append([_event(events + 1)])  # indexes the whole log again
        _check_answers(store, events + 1)
    with sqlite3.connect(db) as raw:
        tables = {
            name for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        (through,) = raw.execute(
            "SELECT indexed_through FROM factstr_payload_index_state"
        ).fetchone()
    assert "factstr_payload_index" not in tables
    assert through == events + 1


def _head(store: factstr.EventStore) -> int:
    return store.query(EventQuery.all(), limit=1).head_sequence_number or 0


def _merging(db: Path) -> bool:
    """Whether a merge in slices is under way in the file's payload index."""
    with sqlite3.connect(db) as raw:
        (count,) = raw.execute("SELECT count(*) FROM factstr_payload_merge").fetchone()
    return bool(count)


def test_a_process_killed_during_a_merge_in_slices_leaves_exact_answers(
    db: Path, spawn: Spawn
) -> None:
    """A large merge of the payload index moves a slice per append (in the append's
    transaction). A writer is SIGKILLed at random moments of a stream of large batches (half of
    which carry a slice): every kill leaves the index exact, and, once a kill left a merge under
    way, the next process resumes it and ends it."""
    with factstr.SqliteStore(db):
        pass
    body = f"""
        from tests.sqlite.test_payload_index import _event, _head
        while True:
            head = _head(store)
            store.append([_event(n) for n in range(head + 1, head + {BIG_BATCH} + 1)])
            print(head + {BIG_BATCH}, flush=True)
    """
    rng = random.Random()
    killed_mid_merge = False
    for _ in range(12):
        writer = python_child(spawn, body, f"factstr.SqliteStore({str(db)!r})")
        writer.read()  # one batch committed: the writer is busy appending now
        time.sleep(rng.uniform(0.0, 0.6))
        writer.sigkill()
        with factstr.SqliteStore(db) as store:
            head = _head(store)
            assert head % BIG_BATCH == 0  # whole batches only
            _check_answers(store, head)
        if _merging(db):
            killed_mid_merge = True
            break
    assert killed_mid_merge, "no kill left a merge in slices under way"
    with factstr.SqliteStore(db) as store:
        while _merging(db):
            head = _head(store)
            store.append([_event(head + 1)])
        _check_answers(store, _head(store))
