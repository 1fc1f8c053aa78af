"""Group commit on PostgreSQL: when the connection of a group's transaction dies in the round trip
that carries its COMMIT, every call of the group raises ``CommitOutcomeUnknown`` (SPEC §2.7),
never a plain ``BackendError``.

The transaction is made to wait at its last round trip by a row lock another session holds on
the payload index's state row (which every append updates just before its commit), and its
backend is then ended with ``pg_terminate_backend``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import factstr
import pytest
from factstr import NewEvent

from tests.postgres_server import PostgresServer
from tests.support import run_in_thread, wait_for

APP = "factstr-group-commit-test"


class RowLock:
    """A ``psql`` session holding ``FOR UPDATE`` on ``factstr_payload_index_state`` until
    ``release``."""

    def __init__(self, server: PostgresServer, url: str) -> None:
        self.server = server
        self.process = subprocess.Popen(
            [str(server.psql), "-X", "-q", "-d", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(
            "SET application_name = 'row-lock-holder'; BEGIN; "
            "SELECT 1 FROM factstr_payload_index_state WHERE id = 1 FOR UPDATE;\n"
        )
        self.process.stdin.flush()
        wait_for(
            lambda: (
                server.sql(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'row-lock-holder' AND state = 'idle in transaction'"
                )
                == "1"
            ),
            what="the row lock",
        )

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("ROLLBACK;\n\\q\n")
        self.process.stdin.close()
        self.process.wait(30)


@pytest.fixture
def row_lock(server: PostgresServer, url: str) -> Iterator[RowLock]:
    # The schema exists once a store opened the database.
    factstr.PostgresStore(url).close()
    lock = RowLock(server, url)
    try:
        yield lock
    finally:
        if lock.process.poll() is None:
            lock.release()


def _waiting_backends(server: PostgresServer) -> list[str]:
    """The store's backends waiting for a lock."""
    found = server.sql(
        "SELECT pid FROM pg_stat_activity "
        f"WHERE application_name = '{APP}' AND wait_event_type = 'Lock'"
    )
    return found.split() if found else []


def test_a_group_killed_at_its_commit_gets_commit_outcome_unknown_in_every_call(
    server: PostgresServer, url: str, row_lock: RowLock
) -> None:
    with factstr.PostgresStore(f"{url}?application_name={APP}") as store:
        # The first append runs alone and waits for the row lock at its commit; three more
        # arrive meanwhile and queue: they will be one group.
        first = run_in_thread(lambda: store.append([NewEvent("t", {"n": 0})]))
        wait_for(lambda: len(_waiting_backends(server)) == 1, what="the first append to wait")
        queued = [
            run_in_thread(lambda n=n: store.append([NewEvent("t", {"n": n})]))  # type: ignore[misc]
            for n in range(1, 4)
        ]
        time.sleep(1.0)  # let the three queue behind the first
        calls = [first, *queued]
        kills = 0
        deadline = time.monotonic() + 60
        while any(thread.is_alive() for thread, _, _ in calls):
            assert time.monotonic() < deadline, "the appends never ended"
            for pid in _waiting_backends(server):
                server.sql(f"SELECT pg_terminate_backend({pid})")
                kills += 1
            time.sleep(0.05)
        errors = [errors[0] if errors else None for _, errors, _ in calls]
        for error in errors:
            assert isinstance(error, factstr.CommitOutcomeUnknown), errors
        # Fewer kills than calls: a kill ended a transaction that held several calls.
        assert kills < len(calls), (kills, errors)
        row_lock.release()
        # Nothing was committed (each transaction died waiting), and the store goes on.
        assert store.query().event_records == []
        assert store.append([NewEvent("t", {"n": 9})]).first_sequence_number == 1


def test_a_batch_the_server_refuses_fails_alone_in_its_group(
    server: PostgresServer, url: str, row_lock: RowLock
) -> None:
    """The group's batches are written together; when the server refuses one (here a trigger),
    they are written again one at a time, and only the refused call fails."""
    database = url.rsplit("/", 1)[1].split("?")[0]
    server.sql(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.event_type = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$; "
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON events FOR EACH ROW "
        "EXECUTE FUNCTION refuse_poison()",
        database,
    )
    with factstr.PostgresStore(f"{url}?application_name={APP}") as store:
        # The first append waits for the row lock; the others queue behind it as one group.
        first = run_in_thread(lambda: store.append([NewEvent("t", {"n": 0})]))
        wait_for(lambda: len(_waiting_backends(server)) == 1, what="the first append to wait")
        batches = [
            [NewEvent("t", {"n": 1})],
            [NewEvent("t", {"n": 2}), NewEvent("poison", {"n": 2})],
            [NewEvent("t", {"n": 3}), NewEvent("t", {"n": 3})],
        ]
        queued = [run_in_thread(lambda b=b: store.append(b)) for b in batches]  # type: ignore[misc]
        time.sleep(1.0)  # let them queue behind the first
        row_lock.release()
        for thread, _, _ in [first, *queued]:
            thread.join(60)
            assert not thread.is_alive()
        assert first[1] == []
        assert queued[0][1] == [] and queued[2][1] == []
        assert len(queued[1][1]) == 1
        assert isinstance(queued[1][1][0], factstr.BackendError)
        assert "poisoned" in str(queued[1][1][0])
        records = store.query().event_records
        # The queued calls commit in the order they reached the queue, which their threads'
        # start order does not fix: each call's own range holds its own batch.
        n_at = {r.sequence_number: r.payload["n"] for r in records}
        assert list(n_at) == [1, 2, 3, 4] and n_at[1] == 0
        assert sorted(n_at.values()) == [0, 1, 3, 3]
        for index in (0, 2):
            result = queued[index][2][0]
            assert isinstance(result, factstr.AppendResult)
            numbers = range(result.first_sequence_number, result.last_sequence_number + 1)
            assert [n_at[number] for number in numbers] == [e.payload["n"] for e in batches[index]]
