"""Group commit on PostgreSQL: when the connection of a group's transaction dies in the round trip
that carries its COMMIT, every call of the group raises ``CommitOutcomeUnknown`` (SPEC §2.7),
never a plain ``BackendError``.

The transaction is made to wait at its last round trip by a row lock another session holds on
the payload index's state row (which every append updates just before its commit), and its
backend is then ended with ``pg_terminate_backend``.
"""

from __future__ import annotations

import functools
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import factstr
import pytest
from factstr import EventQuery, NewEvent

from tests.postgres.conftest import MakeDatabase
from tests.postgres_server import PostgresServer
from tests.support import assert_one_key_held_once, run_in_thread, wait_for

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


def _tables(server: PostgresServer, database: str) -> dict[str, str]:
    """Everything an append writes, as text, except the times (which differ between runs)."""
    queries = {
        "events": "SELECT sequence_number, event_type, payload::text FROM events ORDER BY 1",
        "append_batches": "SELECT * FROM append_batches ORDER BY 1",
        "payload_index": "SELECT key_hash, first_sequence_number, encode(members, 'hex') "
        "FROM factstr_payload_index ORDER BY 1, 2",
        "exact_payloads": "SELECT * FROM factstr_exact_payloads ORDER BY 1",
        "index_state": "SELECT key_format, indexed_through FROM factstr_payload_index_state",
        "keys": "SELECT idempotency_key, key_number, first_sequence_number, last_sequence_number "
        "FROM factstr_idempotency_keys ORDER BY key_number",
    }
    return {name: server.sql(sql, database) for name, sql in queries.items()}


def _queue_behind_a_held_commit(
    server: PostgresServer, url: str, store: factstr.PostgresStore, calls: list[Any]
) -> list[tuple[object, BaseException | None]]:
    """Runs ``calls`` (each taking the store) as one group: a first append waits at its commit
    for a row lock while they queue behind it; then the lock goes. Each call's result or error."""
    row_lock = RowLock(server, url)
    try:
        return _queue_behind(server, store, row_lock, calls)
    finally:
        if row_lock.process.poll() is None:
            row_lock.release()


def _queue_behind(
    server: PostgresServer, store: factstr.PostgresStore, row_lock: RowLock, calls: list[Any]
) -> list[tuple[object, BaseException | None]]:
    first = run_in_thread(lambda: store.append([NewEvent("blocker", {"n": 0})]))
    wait_for(lambda: len(_waiting_backends(server)) == 1, what="the first append to wait")
    queued = [run_in_thread(functools.partial(call, store)) for call in calls]
    time.sleep(1.0)  # let them queue behind the first
    row_lock.release()
    return _joined(first, queued)


def _joined(first: Any, queued: list[Any]) -> list[tuple[object, BaseException | None]]:
    """Joins the first (blocking) call's thread and the queued ones; the first must have
    succeeded. The queued calls' (result, error), in order."""
    outcomes: list[tuple[object, BaseException | None]] = []
    for thread, errors, results in [first, *queued]:
        thread.join(60)
        assert not thread.is_alive()
        outcomes.append((results[0] if results else None, errors[0] if errors else None))
    assert outcomes[0][1] is None
    return outcomes[1:]


def test_a_group_writes_exactly_what_single_appends_write(
    server: PostgresServer, url: str, make_database: MakeDatabase
) -> None:
    """Readers and writers that do not know group commit (factstr-postgres 0.5.2, older
    factstr) see the same rows: events, batch rows, payload index postings, exact payloads, the
    index state and the keys, as when each call runs alone in the same order."""
    base = EventQuery.for_event_types(["base"])
    never = EventQuery.for_event_types(["never-written"])
    keyed = [NewEvent("k", {"id": "k1", "tag": "x"}), NewEvent("k", {"id": "k1"})]
    # Each call's outcome does not depend on its place in the group (no call writes a context
    # another checks), so the same calls alone in commit order must give the same log.
    calls: dict[str, Any] = {
        "one": lambda s: s.append([NewEvent("t", {"id": "a1", "n": 1})]),
        "many": lambda s: s.append(
            [
                NewEvent("t", {"id": "a2", "tag": "x"}),
                NewEvent("u", {"id": "a2", "tag": "x", "list": [1, 2]}),
                NewEvent("t", {"id": "a3"}),
            ]
        ),
        "exact": lambda s: s.append(
            [NewEvent("f", {"z": -0.0, "id": "a4"}), NewEvent("f", {"z": 1.5, "tag": "x"})]
        ),
        "keyed": lambda s: s.append(keyed, idempotency_key="key-1"),
        "keyed-again": lambda s: s.append(keyed, idempotency_key="key-1"),
        "if-holds": lambda s: s.append_if([NewEvent("c", {"tag": "x"})], base, 1),
        "if-conflicts": lambda s: s.append_if([NewEvent("bad", {})], base, None),
        "unless-holds": lambda s: s.append_unless(
            [NewEvent("c", {"id": "a5"}), NewEvent("c", {"id": "a5"})], never
        ),
        "keyed-if": lambda s: s.append_if(
            [NewEvent("c", {"id": "a6"})], base, 1, idempotency_key="key-2"
        ),
        "keyed-conflicts": lambda s: s.append_unless(
            [NewEvent("bad", {})], base, None, idempotency_key="key-3"
        ),
        "exact-keyed": lambda s: s.append(
            [NewEvent("f", {"z": -0.0}), NewEvent("f", {"z": -0.0})], idempotency_key="key-4"
        ),
    }
    grouped_db = url.rsplit("/", 1)[1].split("?")[0]
    with factstr.PostgresStore(f"{url}?application_name={APP}") as store:
        store.append([NewEvent("base", {"id": "b"})])
        outcomes = dict(
            zip(
                calls,
                _queue_behind_a_held_commit(server, url, store, list(calls.values())),
                strict=True,
            )
        )
    for name in ("if-conflicts", "keyed-conflicts"):
        assert isinstance(outcomes[name][1], factstr.ConditionalAppendConflict), outcomes
    done = {name: result for name, (result, error) in outcomes.items() if error is None}
    assert len(done) == len(calls) - 2, outcomes
    assert done["keyed"] == done["keyed-again"]
    del done["keyed-again"]
    # The same calls alone, in the order the group committed them, on a database of their own.
    alone_db = make_database()
    with factstr.PostgresStore(server.url_for(alone_db)) as alone:
        alone.append([NewEvent("base", {"id": "b"})])
        alone.append([NewEvent("blocker", {"n": 0})])
        in_order = sorted(done, key=lambda name: done[name].first_sequence_number)  # type: ignore[attr-defined]
        for name in in_order:
            assert calls[name](alone) == done[name], name
    assert _tables(server, grouped_db) == _tables(server, alone_db)
    # One occurred_at per batch, as alone.
    for name, result in done.items():
        stamps = server.sql(
            "SELECT count(DISTINCT occurred_at) FROM events WHERE sequence_number "
            f"BETWEEN {result.first_sequence_number} AND {result.last_sequence_number}",  # type: ignore[attr-defined]
            grouped_db,
        )
        assert stamps == "1", name


def test_a_group_whose_commit_is_refused_fails_every_call_and_nobody_sees_any_of_it(
    server: PostgresServer, url: str
) -> None:
    """A deferred constraint refuses the COMMIT of a group: every call fails with the server's
    error (not ``CommitOutcomeUnknown``: the server answered), no key is recorded, no number is
    used, and neither a live stream (woken by NOTIFY, in another store object) nor a durable
    replay sees any batch of it."""
    database = url.rsplit("/", 1)[1].split("?")[0]
    with factstr.PostgresStore(f"{url}?application_name={APP}") as store:
        store.append([NewEvent("base", {})])
        server.sql(
            "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.event_type = 'poison' THEN RAISE EXCEPTION 'refused at commit'; END IF; "
            "RETURN NULL; END $$; "
            "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON events "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()",
            database,
        )
        with factstr.PostgresStore(url) as watcher, watcher.subscribe() as live:
            calls: list[Any] = [
                lambda s: s.append([NewEvent("t", {"n": 1}), NewEvent("t", {"n": 1})]),
                lambda s: s.append([NewEvent("poison", {})]),
                lambda s: s.append([NewEvent("t", {"n": 2})], idempotency_key="key-1"),
                lambda s: s.append_if([NewEvent("t", {"n": 3})], EventQuery.all(), 2),
            ]
            outcomes = _queue_behind_a_held_commit(server, url, store, calls)
            for _, error in outcomes:
                assert isinstance(error, factstr.BackendError), outcomes
                assert not isinstance(error, factstr.CommitOutcomeUnknown), outcomes
                assert "refused at commit" in str(error)
            assert [r.event_type for r in store.query().event_records] == ["base", "blocker"]
            # The key was not recorded: the retry writes, right after the blocker.
            retried = store.append([NewEvent("t", {"n": 2})], idempotency_key="key-1")
            assert retried.first_sequence_number == 3
            # The live stream got the blocker's batch, then the retry's: nothing between.
            first = live.next_batch(timeout=10)
            second = live.next_batch(timeout=10)
            assert first is not None and second is not None
            assert [[r.sequence_number for r in b] for b in (first, second)] == [[2], [3]]
        with store.subscribe(durable="after-refused-group") as replay:
            batches = [replay.next_batch(timeout=10) for _ in range(3)]
            assert [[r.event_type for r in b or []] for b in batches] == [
                ["base"],
                ["blocker"],
                ["t"],
            ]


def test_a_group_indexes_a_foreign_writers_rows_before_it_checks_its_conditions(
    server: PostgresServer, url: str
) -> None:
    """A writer that keeps no payload index (factstr-postgres 0.5.2, here its statements in
    ``psql``) commits between a lone append and the group queued behind it: the group's
    transaction indexes the foreign row first, so conditions on it conflict."""
    database = url.rsplit("/", 1)[1].split("?")[0]
    foreign = EventQuery([factstr.EventFilter(payload_predicates=[{"ctx": "f"}])])
    mine = EventQuery([factstr.EventFilter(payload_predicates=[{"ctx": "h"}])])
    calls: list[Any] = [
        lambda s: s.append_if([NewEvent("t", {"ctx": "f"})], foreign, None),
        lambda s: s.append_unless([NewEvent("t", {"ctx": "f"})], foreign, 1),
        lambda s: s.append([NewEvent("t", {"ctx": "g"}), NewEvent("t", {"ctx": "g"})]),
        lambda s: s.append_if([NewEvent("t", {"ctx": "h"})], mine, None),
    ]
    with factstr.PostgresStore(f"{url}?application_name={APP}") as store:
        row_lock = RowLock(server, url)
        first = run_in_thread(lambda: store.append([NewEvent("blocker", {})]))
        wait_for(lambda: len(_waiting_backends(server)) == 1, what="the first append to wait")
        # The foreign writer's lock request queues behind the lone append, before the group's.
        writer = subprocess.Popen(
            [str(server.psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
            stdin=subprocess.PIPE,
            text=True,
            env={**os.environ, "PGAPPNAME": "foreign-writer"},
        )
        try:
            assert writer.stdin is not None
            writer.stdin.write(
                "BEGIN; LOCK TABLE events, append_batches IN EXCLUSIVE MODE; "
                "INSERT INTO events (sequence_number, event_type, payload) "
                "SELECT COALESCE(MAX(sequence_number), 0) + 1, 'foreign', '{\"ctx\": \"f\"}' "
                "FROM events; COMMIT;\n"
            )
            writer.stdin.close()
            wait_for(
                lambda: (
                    server.sql(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                        "'foreign-writer' AND wait_event_type = 'Lock'",
                    )
                    == "1"
                ),
                what="the foreign writer to wait",
            )
            queued = [run_in_thread(functools.partial(call, store)) for call in calls]
            time.sleep(1.0)  # let them queue behind the first
            row_lock.release()
            assert writer.wait(60) == 0
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
        outcomes = _joined(first, queued)
        assert server.sql("SELECT event_type FROM events WHERE sequence_number = 2", database) == (
            "foreign"
        )
        for _, error in outcomes[:2]:
            assert isinstance(error, factstr.ConditionalAppendConflict), outcomes
            assert error.actual_context_version == 2
        for result, error in outcomes[2:]:
            assert error is None and isinstance(result, factstr.AppendResult), outcomes
        assert [r.sequence_number for r in store.query(foreign).event_records] == [2]
        mine_written = outcomes[3][0]
        assert isinstance(mine_written, factstr.AppendResult)
        assert store.query(mine).current_context_version == mine_written.first_sequence_number


def test_one_key_twice_in_a_group_where_one_call_conflicts_writes_once(
    server: PostgresServer, url: str
) -> None:
    """Two calls with one key in a group, one of them conflicting: whichever the group takes
    first, the key ends up with the batch of the one that holds, written once, and the other
    call gets that batch's result or its own conflict (never a second batch, never a key for a
    conflict)."""
    database = url.rsplit("/", 1)[1].split("?")[0]
    base = EventQuery.for_event_types(["base"])
    calls: list[Any] = [
        lambda s: s.append_if([NewEvent("never", {})], base, None, idempotency_key="k1"),
        lambda s: s.append([NewEvent("k1", {}), NewEvent("k1", {})], idempotency_key="k1"),
        lambda s: s.append([NewEvent("plain", {})]),
        lambda s: s.append([NewEvent("k2", {})], idempotency_key="k2"),
        lambda s: s.append_unless([NewEvent("never", {})], base, None, idempotency_key="k2"),
    ]
    with factstr.PostgresStore(f"{url}?application_name={APP}") as store:
        store.append([NewEvent("base", {})])
        outcomes = _queue_behind_a_held_commit(server, url, store, calls)
        assert_one_key_held_once(outcomes, ((1, 0), (3, 4)))
        types = [r.event_type for r in store.query().event_records]
        assert sorted(types) == ["base", "blocker", "k1", "k1", "k2", "plain"]
    keys = server.sql(
        "SELECT idempotency_key, first_sequence_number, last_sequence_number "
        "FROM factstr_idempotency_keys ORDER BY 1",
        database,
    )
    k1, k2 = outcomes[1][0], outcomes[3][0]
    assert isinstance(k1, factstr.AppendResult) and isinstance(k2, factstr.AppendResult)
    assert keys.splitlines() == [
        f"k1|{k1.first_sequence_number}|{k1.last_sequence_number}",
        f"k2|{k2.first_sequence_number}|{k2.last_sequence_number}",
    ]
