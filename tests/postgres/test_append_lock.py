"""The append lock against the locks of other sessions (see `postgres/writes.rs`): appends do not
wait for (auto)vacuum's SHARE UPDATE EXCLUSIVE lock on `events`, and still wait for a writer
holding upstream's EXCLUSIVE lock, then number after its rows.

Another session holds its lock in a ``psql`` process of its own (kept open on a pipe)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import factstr
from factstr import EventFilter, EventQuery, NewEvent

from tests.postgres.conftest import MakeDatabase
from tests.postgres_server import PostgresServer

#: Generous: an append that is not blocked finishes in milliseconds even on a loaded machine;
#: one that is blocked by the lock would wait for as long as the other session holds it.
UNBLOCKED_WITHIN = 60.0


@contextmanager
def holding(
    server: PostgresServer, database: str, lock_sql: str
) -> Iterator[Callable[[str], None]]:
    """A session of its own that has begun a transaction and run `lock_sql` (it holds the lock
    until the block ends, then commits); yields a function that runs more SQL in it."""
    session = subprocess.Popen(
        [str(server.psql), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
         server.url_for(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert session.stdin is not None and session.stdout is not None

    def run(sql: str) -> None:
        assert session.stdin is not None and session.stdout is not None
        session.stdin.write(f"{sql}\nSELECT 'done';\n")
        session.stdin.flush()
        assert session.stdout.readline().strip() == "done", f"{sql!r} failed"

    try:
        run(f"BEGIN; {lock_sql};")
        yield run
        run("COMMIT;")
    finally:
        session.stdin.close()
        session.wait(timeout=30)


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Starts `work` in a thread; its result (or exception) lands in the returned list."""
    out: list[object] = []

    def target() -> None:
        try:
            out.append(work())
        except BaseException as error:  # reported by the test
            out.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def test_appends_do_not_wait_for_a_vacuum_lock_on_events(
    server: PostgresServer, make_database: MakeDatabase
) -> None:
    """(Auto)vacuum holds SHARE UPDATE EXCLUSIVE on the table it works on; upstream's EXCLUSIVE
    append lock conflicts with it, ours must not."""
    database = make_database()
    with factstr.PostgresStore(server.url_for(database)) as store:
        store.append([NewEvent("a", {"k": "x"})])
        context = EventQuery([EventFilter(["a"], [{"k": "x"}])])
        with holding(server, database, "LOCK TABLE events IN SHARE UPDATE EXCLUSIVE MODE"):

            def appends() -> list[int]:
                return [
                    store.append([NewEvent("a", {"k": "y"})]).first_sequence_number,
                    store.append_if([NewEvent("a", {"k": "x"})], context, 1).first_sequence_number,
                    store.append_unless(
                        [NewEvent("a", {"k": "x"})], context, 3
                    ).first_sequence_number,
                    store.append(
                        [NewEvent("a", {"k": "z"}), NewEvent("a", {"k": "z"})]
                    ).first_sequence_number,
                ]

            thread, out = in_thread(appends)
            thread.join(UNBLOCKED_WITHIN)
            assert not thread.is_alive(), "an append waited for the vacuum lock"
            assert out == [[2, 3, 4, 5]]


def test_appends_wait_for_an_upstream_writer_and_number_after_its_rows(
    server: PostgresServer, make_database: MakeDatabase
) -> None:
    """A writer holding `LOCK TABLE events, append_batches IN EXCLUSIVE MODE` (factstr-postgres
    0.5.2's append lock) keeps our appends out until it commits; they then number after it."""
    database = make_database()
    with factstr.PostgresStore(server.url_for(database)) as store:
        store.append([NewEvent("a", {"k": "x"})])
        context = EventQuery([EventFilter(["a"], [{"k": "x"}])])
        with holding(
            server, database, "LOCK TABLE events, append_batches IN EXCLUSIVE MODE"
        ) as run:
            run("INSERT INTO events VALUES (2, now(), 'a', '{\"k\": \"x\"}');")
            plain, plain_out = in_thread(lambda: store.append([NewEvent("a", {"k": "y"})]))
            conditional, conditional_out = in_thread(
                lambda: store.append_if([NewEvent("a", {"k": "x"})], context, 1)
            )
            # Blocked while the lock is held: neither may have finished (however slow the
            # machine, a correct store cannot finish before the commit below).
            plain.join(0.5)
            conditional.join(0.5)
            assert plain_out == [] and conditional_out == []
        plain.join(UNBLOCKED_WITHIN)
        conditional.join(UNBLOCKED_WITHIN)
        assert not plain.is_alive() and not conditional.is_alive()
        assert isinstance(plain_out[0], factstr.AppendResult)
        assert plain_out[0].first_sequence_number == 3
        # The upstream row at 2 matches the context: the context version is 2, not 1.
        assert isinstance(conditional_out[0], factstr.ConditionalAppendConflict)
        assert conditional_out[0].actual_context_version == 2
        assert [r.sequence_number for r in store.query(context).event_records] == [1, 2]
