"""SPEC §2.7 and §2.8 together, for real: a keyed append whose connection breaks after its
commit was sent raises ``CommitOutcomeUnknown``, and the retry with the same key settles it,
with the batch in the log exactly once.

Two real breaks: (a) the appending backend is terminated (``pg_terminate_backend``) while its
committing round trip waits on a lock another session holds, so the batch is *not* committed;
(b) a TCP proxy forwards the commit and drops the server's answer, so the batch *is* committed
and the client cannot know. Either way the retry returns the one batch's result.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator

import factstr
import pytest
from factstr import EventQuery, NewEvent

from tests.postgres.conftest import MakeDatabase
from tests.postgres.test_network_faults import HANG, CuttingProxy, _backend_pids, proxied
from tests.postgres_server import PostgresServer
from tests.support import run_in_thread, wait_for

__all__ = ["proxied"]  # a fixture, used by name


class LockHolder:
    """A ``psql`` session that holds ``lock`` (a ``LOCK TABLE ...`` statement) in an open
    transaction until ``release()``."""

    def __init__(self, server: PostgresServer, database: str, lock: str) -> None:
        self.proc = subprocess.Popen(
            [str(server.psql), "-X", "-q", "-A", "-t", "-d", server.url_for(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"BEGIN; {lock}; SELECT 'held';\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("ROLLBACK;\n\\q\n")
            self.proc.stdin.flush()
            self.proc.wait(HANG)


@pytest.fixture
def lock_holders() -> Iterator[list[LockHolder]]:
    holders: list[LockHolder] = []
    yield holders
    for holder in holders:
        holder.release()


def _batches(server: PostgresServer, database: str) -> str:
    return server.sql(
        "SELECT event_type, count(*) FROM events GROUP BY event_type ORDER BY 1", database
    )


def test_a_keyed_append_terminated_while_its_commit_waits_on_a_lock_is_retried_once(
    server: PostgresServer, make_database: MakeDatabase, lock_holders: list[LockHolder]
) -> None:
    if not server.restartable:
        pytest.skip("the backends of an external server are not ours to terminate")
    database = make_database()
    name = f"factstr_idem_{uuid.uuid4().hex[:12]}"
    url = server.url_for(database, query=f"application_name={name}")
    with factstr.PostgresStore(url, pool_size=1) as store:
        store.append([NewEvent("Warm", {})], idempotency_key="warm")
        [pid] = _backend_pids(server, name)
        # Another session holds a lock the key's row must wait for: the append gets as far as
        # its last round trip (key row and COMMIT) and waits there.
        lock_holders.append(
            LockHolder(server, database, "LOCK TABLE factstr_idempotency_keys IN SHARE MODE")
        )
        batch = [NewEvent("Order", {"n": 1}), NewEvent("Order", {"n": 2})]
        thread, errors, results = run_in_thread(
            lambda: store.append(batch, idempotency_key="order-1")
        )
        wait_for(
            lambda: (
                server.sql(
                    f"SELECT wait_event_type FROM pg_stat_activity WHERE pid = {pid}"
                ).strip()
                == "Lock"
            ),
            timeout=HANG,
            what="the append waiting on the held lock",
        )
        assert server.sql(f"SELECT pg_terminate_backend({pid})") == "t"
        thread.join(HANG)
        assert not thread.is_alive() and not results
        assert len(errors) == 1 and isinstance(errors[0], factstr.CommitOutcomeUnknown), errors
        lock_holders[0].release()
        # Here the batch was not committed: the retry writes it, once.
        retried = store.append(batch, idempotency_key="order-1")
        assert (retried.first_sequence_number, retried.last_sequence_number) == (2, 3)
        assert store.append(batch, idempotency_key="order-1") == retried
    assert _batches(server, database) == "Order|2\nWarm|1"


def test_a_keyed_append_whose_commit_answer_is_lost_is_answered_by_the_retry(
    server: PostgresServer, proxied: tuple[CuttingProxy, Callable[[], str], str]
) -> None:
    proxy, through, direct = proxied
    database = direct.rsplit("/", 1)[1]
    with factstr.PostgresStore(through(), pool_size=1) as store:
        store.append([NewEvent("Warm", {})])
        batch = [NewEvent("Order", {"n": 1}), NewEvent("Order", {"n": 2})]
        # The server commits; its answer to the round trip that writes the key and commits never
        # reaches the store.
        proxy.cut_after(b"INSERT INTO factstr_idempotency_keys")
        with pytest.raises(factstr.CommitOutcomeUnknown):
            store.append(batch, idempotency_key="order-1")
        assert proxy.cuts == 1
        # Committed indeed; the retry (a new connection) learns so and writes nothing.
        retried = store.append(batch, idempotency_key="order-1")
        assert (retried.first_sequence_number, retried.last_sequence_number) == (2, 3)
        assert retried.committed_count == 2
    assert _batches(server, database) == "Order|2\nWarm|1"


@pytest.mark.parametrize("operation", ["append_if", "append_unless"])
def test_a_conditional_keyed_append_whose_commit_answer_is_lost_is_answered_by_the_retry(
    server: PostgresServer,
    proxied: tuple[CuttingProxy, Callable[[], str], str],
    operation: str,
) -> None:
    """The retry's condition no longer holds (the batch is in the context now): the key answers
    before any check, with the first call's result instead of a conflict."""
    proxy, through, direct = proxied
    database = direct.rsplit("/", 1)[1]
    context = EventQuery.for_event_types(["Order"])
    with factstr.PostgresStore(through(), pool_size=1) as store:
        store.append([NewEvent("Warm", {})])

        def call() -> factstr.AppendResult:
            events = [NewEvent("Order", {"n": 1})]
            if operation == "append_if":
                return store.append_if(events, context, None, idempotency_key="order-1")
            return store.append_unless(events, context, idempotency_key="order-1")

        proxy.cut_after(b"INSERT INTO factstr_idempotency_keys")
        with pytest.raises(factstr.CommitOutcomeUnknown):
            call()
        assert proxy.cuts == 1
        retried = call()
        assert (retried.first_sequence_number, retried.committed_count) == (2, 1)
    assert _batches(server, database) == "Order|1\nWarm|1"


def test_the_key_table_is_beside_the_upstream_layout(
    server: PostgresServer, make_database: MakeDatabase
) -> None:
    """The keys and their batches are committed together; nothing of them is in an upstream
    table."""
    database = make_database()
    with factstr.PostgresStore(server.url_for(database)) as store:
        store.append([NewEvent("a", {}), NewEvent("a", {})], idempotency_key="k")
    assert (
        server.sql(
            "SELECT idempotency_key, key_number, first_sequence_number, last_sequence_number "
            "FROM factstr_idempotency_keys",
            database,
        )
        == "k|1|1|2"
    )


def test_a_keyed_append_after_a_foreign_writer_indexes_its_rows_first(
    server: PostgresServer, make_database: MakeDatabase
) -> None:
    """The one-round-trip keyed append declines past rows our index does not cover (written by
    another writer, e.g. the upstream crates), writing nothing; the general path indexes them
    and appends, with the key."""
    database = make_database()
    with factstr.PostgresStore(server.url_for(database)) as store:
        store.append([NewEvent("a", {"account": "x"})], idempotency_key="first")
        server.sql(
            "BEGIN; LOCK TABLE events, append_batches IN EXCLUSIVE MODE; "
            "INSERT INTO events VALUES (2, now(), 'a', '{\"account\": \"x\"}'); COMMIT;",
            database,
        )
        result = store.append([NewEvent("a", {"account": "x"})], idempotency_key="second")
        assert (result.first_sequence_number, result.committed_count) == (3, 1)
        assert store.append([NewEvent("b", {})], idempotency_key="second") == result
        by_account = EventQuery([factstr.EventFilter(["a"], [{"account": "x"}])])
        assert [r.sequence_number for r in store.query(by_account).event_records] == [1, 2, 3]
    assert (
        server.sql(
            "SELECT idempotency_key, key_number, first_sequence_number FROM "
            "factstr_idempotency_keys ORDER BY key_number",
            database,
        )
        == "first|1|1\nsecond|2|3"
    )
