"""What factstr.eventsourcing adds or promises beyond eventsourcing's own test cases: the optional
import, facts that factstr queries can read, opaque state, streams across processes, a process
application's events and tracking record in one batch, and the two-variable switch."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import factstr
import pytest
from eventsourcing.application import Application
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking
from eventsourcing.system import ProcessApplication, SingleThreadedRunner, System
from factstr.eventsourcing import (
    OPAQUE,
    TRACKING_TYPE,
    FactstrApplicationRecorder,
    FactstrFactory,
    FactstrProcessRecorder,
)

from tests.support import Store

REPO = Path(__file__).resolve().parents[2]


def test_importing_factstr_never_imports_eventsourcing() -> None:
    code = "import sys, factstr; print('eventsourcing' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"


def test_json_state_is_the_queryable_payload(store: Store) -> None:
    recorder = FactstrApplicationRecorder(store, "bank_events")
    account = uuid4()
    state = b'{"amount":{"_type_":"decimal_str","_data_":"10.00"},"note":"caf\xc3\xa9"}'
    recorder.insert_events([StoredEvent(account, 1, "bank:Credited", state)])

    found = store.query(
        factstr.EventQuery(
            [
                factstr.EventFilter(
                    event_types=["bank:Credited"],
                    payload_predicates=[{"state": {"note": "café"}}],
                )
            ]
        )
    )
    assert [r.payload for r in found] == [
        {
            "recorder": "bank_events",
            "originator_id": str(account),
            "originator_version": 1,
            "state": {"amount": {"_type_": "decimal_str", "_data_": "10.00"}, "note": "café"},
        }
    ]
    (back,) = recorder.select_events(account)
    assert back.state == state or _same_json(back.state, state)


def _same_json(a: bytes, b: bytes) -> bool:
    import json

    return bool(json.loads(a) == json.loads(b))


@pytest.mark.parametrize(
    "state",
    [
        zlib.compress(b'{"secret":"x"}'),  # compressed
        b"\x00\xff not json",
        b'{"a": 1}',  # JSON, but not in eventsourcing's compact form: kept byte for byte
        b'{"n":NaN}',
    ],
)
def test_non_json_state_is_opaque_and_comes_back_exactly(store: Store, state: bytes) -> None:
    recorder = FactstrApplicationRecorder(store, "app_events")
    account = uuid4()
    recorder.insert_events([StoredEvent(account, 1, "t", state)])
    (record,) = store.query().event_records
    payload: Any = record.payload
    assert "state" not in payload
    assert payload[OPAQUE] == {"state": base64.b64encode(state).decode()}
    assert recorder.select_events(account)[0].state == state
    assert recorder.select_notifications(None, 10)[0].state == state
    # Never indexed, still matched: a predicate on the opaque text finds it (by a scan).
    by_opaque = factstr.EventQuery(
        [factstr.EventFilter(payload_predicates=[{OPAQUE: payload[OPAQUE]}])]
    )
    assert [r.sequence_number for r in store.query(by_opaque)] == [record.sequence_number]


# -- the two environment variables, a system of applications, other processes ------------------


class Dog(Aggregate):
    class TrickAdded(Aggregate.Event):
        trick: str

    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.tricks: list[str] = []

    @event(TrickAdded)
    def add_trick(self, trick: str) -> None:
        self.tricks.append(trick)


class DogSchool(Application[Any]):
    def register(self, name: str) -> Any:
        dog = Dog(name)
        self.save(dog)
        return dog.id

    def add_trick(self, dog_id: Any, trick: str) -> None:
        dog: Dog = self.repository.get(dog_id)
        dog.add_trick(trick)
        self.save(dog)


class Counter(Aggregate):
    def __init__(self, name: str) -> None:
        self.count = 0

    @staticmethod
    def create_id(name: str) -> Any:
        from uuid import NAMESPACE_URL, uuid5

        return uuid5(NAMESPACE_URL, f"/counters/{name}")

    @event("Incremented")
    def increment(self) -> None:
        self.count += 1


class TrickCounters(ProcessApplication[Any]):
    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: Any) -> None:
        pass

    @policy.register(Dog.TrickAdded)
    def _(self, domain_event: Any, processing_event: Any) -> None:
        name = domain_event.trick
        try:
            counter: Counter = self.repository.get(Counter.create_id(name))
        except Exception:
            counter = Counter(name)
            counter._id = Counter.create_id(name)
        counter.increment()
        processing_event.collect_events(counter)


@pytest.fixture
def factstr_env(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    if store_kind == "memory":
        url = "memory://"
    elif store_kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    return {"PERSISTENCE_MODULE": "factstr.eventsourcing", "FACTSTR_URL": url}


def test_process_application_writes_events_and_tracking_in_one_batch(
    factstr_env: dict[str, str],
) -> None:
    system = System(pipes=[[DogSchool, TrickCounters]])
    runner: SingleThreadedRunner[Any] = SingleThreadedRunner(system, env=factstr_env)
    runner.start()
    try:
        school = runner.get(DogSchool)
        counters = runner.get(TrickCounters)
        assert isinstance(counters.factory, FactstrFactory)
        dog = school.register("Fido")
        school.add_trick(dog, "roll over")
        school.add_trick(dog, "roll over")
        counter: Counter = counters.repository.get(Counter.create_id("roll over"))
        assert counter.count == 2
        # Notification ids are sequence numbers of the one log (both applications share it on
        # SQLite and PostgreSQL), so the leader's ids skip the follower's facts.
        leader_ids = [n.id for n in school.recorder.select_notifications(None, 10)]
        assert len(leader_ids) == 3
        assert counters.recorder.max_tracking_id("DogSchool") == leader_ids[-1]

        # Each tracking record is the last fact of the batch that holds the counter's events.
        store = counters.factory.store
        facts = list(
            store.query(
                factstr.EventQuery(
                    [factstr.EventFilter(payload_predicates=[{"recorder": "trickcounters_events"}])]
                )
            )
        )
        tracking = list(store.query(factstr.EventQuery.for_event_types([TRACKING_TYPE])))
        assert [t.payload for t in tracking] == [
            {
                "recorder": "trickcounters_tracking",
                "application_name": "DogSchool",
                "notification_id": n,
            }
            for n in leader_ids
        ]
        # Notification 1 (Registered) made no events: its tracking record is a batch of its own.
        by_number = {fact.sequence_number: fact for fact in facts}
        for mark in tracking[1:]:
            fact = by_number[mark.sequence_number - 1]
            assert mark.occurred_at == fact.occurred_at  # one batch, one commit time
    finally:
        runner.stop()


def _run_child(env: dict[str, str], code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_an_unchanged_application_switches_with_two_variables(
    factstr_env: dict[str, str], shared_backend: None
) -> None:
    # Another process runs eventsourcing's own example application (BankAccounts), configured
    # only through the environment; this process reads its account back.
    account = _run_child(
        factstr_env,
        """
        from decimal import Decimal
        from eventsourcing.tests.application import BankAccounts
        app = BankAccounts()
        account = app.open_account("Alice", "alice@example.com")
        app.credit_account(account, Decimal("12.50"))
        print(account)
        app.close()
        """,
    )
    from decimal import Decimal
    from uuid import UUID

    from eventsourcing.tests.application import BankAccounts

    app = BankAccounts(env=factstr_env)
    try:
        assert type(app.factory) is FactstrFactory
        assert app.get_balance(UUID(account)) == Decimal("12.50")
    finally:
        app.close()


def test_subscribe_receives_notifications_from_another_process(
    factstr_env: dict[str, str], shared_backend: None
) -> None:
    app = DogSchool(env=factstr_env)
    try:
        first = app.register("Rex")
        recorder = app.recorder
        with recorder.subscribe(gt=None) as subscription:
            assert next(subscription).originator_id == first
            _run_child(
                factstr_env,
                """
                from tests.eventsourcing.test_factstr_eventsourcing import DogSchool
                app = DogSchool()
                app.register("Bella")
                app.close()
                """,
            )
            # Blocks until the other process's notification arrives (the stream wakes it).
            second = next(subscription)
        assert second.id == 2
        assert app.repository.get(second.originator_id).name == "Bella"
    finally:
        app.close()


def test_opaque_members_are_never_indexed(postgres_server: Any, postgres_url: str) -> None:
    # PostgreSQL's payload index has one row per (key, batch): the opaque text adds none.
    database = postgres_url.rsplit("/", 1)[1].split("?", 1)[0]
    with factstr.PostgresStore(postgres_url) as store:
        store.append([factstr.NewEvent("t", {"a": "x", OPAQUE: {"state": "c2VjcmV0", "n": 7}})])
        rows = postgres_server.sql("SELECT count(*) FROM factstr_payload_index", database)
        assert rows == "1"
        # Still matched, by a scan: the matcher sees the whole payload.
        found = store.query(
            factstr.EventQuery([factstr.EventFilter(payload_predicates=[{OPAQUE: {"n": 7}}])])
        )
        assert len(found) == 1


def test_tracking_recorders_sharing_a_store_never_trust_a_stale_memory(
    make_store: Callable[[], Store],
) -> None:
    # Two recorder objects (two store objects on the SQL stores), one upstream application: each
    # remembers the last tracking record it saw, and the other's insert makes that memory stale.
    one = FactstrProcessRecorder(make_store())
    two = FactstrProcessRecorder(make_store())
    one.insert_events([], tracking=Tracking("up", 1))
    two.insert_events([], tracking=Tracking("up", 2))
    # `one` still remembers 1: its insert of 3 conflicts, re-reads, and succeeds.
    one.insert_events([StoredEvent(uuid4(), 1, "t", b"x")], tracking=Tracking("up", 3))
    # ... and its insert of 3 again is refused, as is 2 by `two`, whose memory is stale too.
    with pytest.raises(IntegrityError):
        one.insert_events([StoredEvent(uuid4(), 1, "t", b"y")], tracking=Tracking("up", 3))
    with pytest.raises(IntegrityError):
        two.insert_tracking(Tracking("up", 2))
    assert one.max_tracking_id("up") == two.max_tracking_id("up") == 3
    tracked = make_store().query(factstr.EventQuery.for_event_types([TRACKING_TYPE]))
    assert [r.payload["notification_id"] for r in tracked] == [1, 2, 3]
    assert len(make_store().query()) == 4  # the three tracking records and one event


def test_subscribe_on_a_closed_store_raises_and_leaves_no_thread(store: Store) -> None:
    import threading
    import time

    from factstr.eventsourcing import FactstrDCBRecorder

    recorder = FactstrApplicationRecorder(store)
    dcb = FactstrDCBRecorder(store)
    store.close()
    before = threading.active_count()
    with pytest.raises(factstr.StoreClosedError):
        recorder.subscribe()
    with pytest.raises(factstr.StoreClosedError):
        dcb.subscribe()
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before
