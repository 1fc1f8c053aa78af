"""Reads run on the store's writer connection when no write is using it (its page cache then
survives the store's own appends; a second connection's cache is thrown away after every
commit), and on a reader connection while a write runs. These tests pin what that must not
change: a read sees other processes' commits, a read never waits for a write (not even one
stuck behind another process's write lock), and forking while threads read and write leaves
both processes working.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import factstr
from factstr import EventFilter, EventQuery, NewEvent

from tests.contract.test_fork import _in_child
from tests.processes import Spawn
from tests.support import DEADLINE, seqs_of


def course(name: str) -> EventQuery:
    return EventQuery([EventFilter(["Enrolled"], [{"course": name}])])


def enrolled(name: str, student: str) -> NewEvent:
    return NewEvent("Enrolled", {"course": name, "student": student})


def test_reads_between_own_appends_see_another_process_commits(db: Path, spawn: Spawn) -> None:
    with factstr.SqliteStore(db) as store:
        store.append([enrolled("c1", "a"), enrolled("c2", "b")])  # 1-2
        assert seqs_of(store.query(course("c1")).event_records) == [1]
        child = spawn("live", db, "1,2")  # appends batches of 1 and 2 events of type a/b
        child.expect("ready")
        store.append([enrolled("c1", "c")])  # 3
        assert store.query(course("c1")).current_context_version == 3
        child.send()
        child.expect([[4, 4, 1], [5, 6, 2]])
        child.finish()
        # The read right after the other process's commits: a snapshot that includes them.
        result = store.query()
        assert result.head_sequence_number == 6
        assert [r.event_type for r in result.event_records[3:]] == ["a", "a", "b"]
        assert store.query(course("c1")).current_context_version == 3
        # And a condition checked against the same context sees them too.
        other = spawn("live", db, "1")
        other.expect("ready")
        other.send()
        other.expect([[7, 7, 1]])
        other.finish()
        written = store.append_if([enrolled("c1", "d")], course("c1"), 3)
        assert written.first_sequence_number == 8
        assert store.query(course("c1")).current_context_version == 8


LOCK_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("COMMIT")
connection.close()
print("released", flush=True)
"""


def test_a_query_answers_while_an_append_waits_for_the_write_lock(db: Path, spawn: Spawn) -> None:
    with factstr.SqliteStore(db, busy_timeout=60) as store:
        store.append([enrolled("c1", "a")])  # 1
        store.query(course("c1"))
        holder = spawn(db, code=LOCK_HOLDER)
        assert holder.read_text() == "locked"
        appended: list[factstr.AppendResult] = []
        append = threading.Thread(
            target=lambda: appended.append(store.append([enrolled("c1", "b")]))
        )
        append.start()
        # Give the append time to take the store's writer connection and wait for the other
        # process's lock there. (Should it not have got that far, the query below still has
        # to answer; the test then only proves less.)
        time.sleep(0.3)
        answers: list[factstr.QueryResult] = []
        query = threading.Thread(target=lambda: answers.append(store.query(course("c1"))))
        query.start()
        query.join(DEADLINE)
        assert answers, "the query waited for the blocked append"
        assert append.is_alive(), "the append did not wait for the other process's lock"
        assert seqs_of(answers[0].event_records) == [1]
        assert answers[0].head_sequence_number == 1
        holder.send()
        assert holder.read_text() == "released"
        holder.finish()
        append.join(DEADLINE)
        assert [r.first_sequence_number for r in appended] == [2]
        assert seqs_of(store.query(course("c1")).event_records) == [1, 2]


def test_a_failed_read_leaves_the_writer_usable(db: Path) -> None:
    """A read that fails inside its transaction (here: a payload that is not JSON, planted by
    another program) must not leave the writer connection inside that transaction."""
    with factstr.SqliteStore(db) as store:
        store.append([enrolled("c1", "a")])
    connection = sqlite3.connect(db)
    connection.execute("UPDATE events SET payload = 'not json' WHERE sequence_number = 1")
    connection.commit()
    connection.close()
    with factstr.SqliteStore(db) as store:
        for _ in range(3):
            try:
                store.query()
            except factstr.BackendError as error:
                assert "not JSON" in str(error)
            else:
                raise AssertionError("a damaged payload was read without an error")
        assert store.append([enrolled("c2", "b")]).first_sequence_number == 2
        assert store.query(course("c2")).current_context_version == 2


def test_fork_while_threads_read_and_write(db: Path) -> None:
    """The fork waits until no thread is inside SQLite (reads on the writer connection
    included); the child's own store then works on the file, and so does the parent's."""
    store = factstr.SqliteStore(db)
    store.append([enrolled("c1", "first")])
    stop = threading.Event()
    errors: list[BaseException] = []

    def reads() -> None:
        try:
            while not stop.is_set():
                store.query(course("c1"))
        except BaseException as error:
            errors.append(error)

    def writes() -> None:
        try:
            while not stop.is_set():
                version = store.query(course("c1")).current_context_version
                try:
                    store.append_if([enrolled("c1", "parent")], course("c1"), version)
                except factstr.ConditionalAppendConflict:
                    pass
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=reads) for _ in range(2)]
    threads.append(threading.Thread(target=writes))
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):
            time.sleep(0.05)

            def child() -> dict[str, object]:
                # A context of its own: the parent's writer thread keeps moving "c1".
                with factstr.SqliteStore(db) as own:
                    own.query(course("c1"))
                    before = own.query(course("c2")).current_context_version
                    written = own.append_if([enrolled("c2", "child")], course("c2"), before)
                    after = own.query(course("c2")).current_context_version
                return {"appended at the version read": after == written.last_sequence_number}

            assert _in_child(child) == {"appended at the version read": True}
    finally:
        stop.set()
        for thread in threads:
            thread.join(DEADLINE)
    assert not errors, errors
    assert [r.payload["student"] for r in store.query(course("c2")).event_records] == ["child"] * 3
    assert "parent" in [r.payload["student"] for r in store.query(course("c1")).event_records]
    numbers = seqs_of(store.query().event_records)
    assert numbers == list(range(1, len(numbers) + 1))
    store.close()
