"""A stateful property test: random operations on a MemoryStore and on a small pure-Python model
of the contract (SPEC §2-§4, §6) must give the same observable results."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, TypeAlias

import factstr
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.postgres_server import PostgresServer
from tests.support import DEADLINE, Collector, cursor_of

# --- the model ----------------------------------------------------------------------------------

ModelFilter: TypeAlias = tuple[list[str] | None, list[Any] | None]


@dataclass(frozen=True)
class ModelQuery:
    filters: list[ModelFilter] | None
    min_sequence_number: int | None = None

    def build(self) -> factstr.EventQuery:
        filters = None
        if self.filters is not None:
            filters = [factstr.EventFilter(types, preds) for types, preds in self.filters]
        return factstr.EventQuery(filters, self.min_sequence_number)


def contains(payload: Any, pattern: Any) -> bool:
    """SPEC §3 containment, written independently of the engine."""
    if isinstance(pattern, dict):
        return isinstance(payload, dict) and all(
            k in payload and contains(payload[k], v) for k, v in pattern.items()
        )
    if isinstance(pattern, list):
        return isinstance(payload, list) and all(
            any(contains(have, want) for have in payload) for want in pattern
        )
    if isinstance(pattern, bool) or isinstance(payload, bool):
        return isinstance(pattern, bool) and isinstance(payload, bool) and pattern == payload
    if isinstance(pattern, (int, float)):
        # Python compares int and float by exact numeric value.
        return isinstance(payload, (int, float)) and payload == pattern
    if pattern is None:
        return payload is None
    return isinstance(payload, str) and isinstance(pattern, str) and payload == pattern


def matches(query: ModelQuery, event_type: str, payload: Any) -> bool:
    if not query.filters:
        return True
    for types, preds in query.filters:
        type_ok = types is None or event_type in types
        payload_ok = preds is None or any(contains(payload, p) for p in preds)
        if type_ok and payload_ok:
            return True
    return False


def strict_equal(a: Any, b: Any) -> bool:
    """``==`` that also tells bool from int and int from float, at every level."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@dataclass
class Model:
    events: list[tuple[str, Any]]
    batches: list[tuple[int, int]]
    durable: dict[str, tuple[ModelQuery, int]]

    @property
    def head(self) -> int:
        return len(self.events)

    def context_version(self, query: ModelQuery) -> int | None:
        version = None
        for index, (event_type, payload) in enumerate(self.events):
            if matches(query, event_type, payload):
                version = index + 1
        return version

    def query(
        self, query: ModelQuery, limit: int | None
    ) -> tuple[list[tuple[int, str, Any]], int | None, int | None]:
        after = query.min_sequence_number or 0
        records = [
            (index + 1, event_type, payload)
            for index, (event_type, payload) in enumerate(self.events)
            if index + 1 > after and matches(query, event_type, payload)
        ]
        if limit is not None:
            records = records[:limit]
        last = records[-1][0] if records else None
        return records, last, self.context_version(query)

    def commit(self, batch: list[tuple[str, Any]]) -> tuple[int, int, int]:
        first = self.head + 1
        self.events.extend(batch)
        self.batches.append((first, self.head))
        return first, self.head, len(batch)

    def deliveries_after(self, cursor: int, query: ModelQuery) -> list[list[int]]:
        """The batches a durable stream at ``cursor`` is due, filtered, empty ones skipped."""
        out = []
        for first, last in self.batches:
            if first <= cursor:
                continue
            matching = [n for n in range(first, last + 1) if matches(query, *self.events[n - 1])]
            if matching:
                out.append(matching)
        return out


# --- strategies ---------------------------------------------------------------------------------

TYPES = ["a", "b", "c"]
KEYS = ["k", "m", "n"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.sampled_from([1.0, 2.0, 0.5, -1.0, 0.0]),
    st.sampled_from(["x", "y", ""]),
    st.sampled_from([2**64 - 1, -(2**63), 2**53, 2**53 + 1, float(2**53), -0.0, 1e300]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=3),
    ),
    max_leaves=8,
)
payloads = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=3),
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=3),
    json_values,
)
new_events = st.tuples(st.sampled_from(TYPES), payloads)


def sub_pattern(data: st.DataObject, value: Any) -> Any:
    """A pattern that ``value`` contains: keys and elements dropped, ints turned into floats."""
    if isinstance(value, dict):
        return {k: sub_pattern(data, v) for k, v in value.items() if data.draw(st.booleans())}
    if isinstance(value, list):
        return [sub_pattern(data, v) for v in value if data.draw(st.booleans())]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        if data.draw(st.booleans()):
            return float(value)
    if (
        isinstance(value, float)
        and value.is_integer()
        and abs(value) < 2**53
        and data.draw(st.booleans())
    ):
        return int(value)
    return value


def draw_predicate(data: st.DataObject, model: Model) -> Any:
    if len(model.events) > 0 and data.draw(st.booleans()):
        index = data.draw(st.integers(0, model.head - 1))
        return sub_pattern(data, model.events[index][1])
    return data.draw(json_values)


def draw_filter(data: st.DataObject, model: Model) -> ModelFilter:
    types = data.draw(st.one_of(st.none(), st.lists(st.sampled_from([*TYPES, "zz"]), max_size=2)))
    preds: list[Any] | None = None
    if data.draw(st.booleans()):
        preds = [draw_predicate(data, model) for _ in range(data.draw(st.integers(0, 2)))]
    return types, preds


def draw_query(data: st.DataObject, model: Model, with_min: bool = True) -> ModelQuery:
    filters: list[ModelFilter] | None = None
    if data.draw(st.integers(0, 4)) > 0:
        filters = [draw_filter(data, model) for _ in range(data.draw(st.integers(0, 3)))]
    min_sequence_number = None
    if with_min and data.draw(st.booleans()):
        min_sequence_number = data.draw(st.integers(0, model.head + 2))
    return ModelQuery(filters, min_sequence_number)


def to_new_events(batch: list[tuple[str, Any]]) -> list[factstr.NewEvent]:
    return [factstr.NewEvent(t, p) for t, p in batch]


# --- the machine --------------------------------------------------------------------------------

NAMES = ["d1", "d2"]
OTHER_QUERY = ModelQuery([(["not-the-stored-query"], None)])


class StoreVersusModel(RuleBasedStateMachine):
    """Drives a MemoryStore; subclasses drive other stores through ``open_store``."""

    def __init__(self) -> None:
        super().__init__()
        self.store = self.open_store()
        self.model = Model(events=[], batches=[], durable={})
        # Live deliveries, checked against the model by `live_streams_caught_up`.
        self.live = Collector()
        self.store.stream_all(self.live)
        self.live_query = ModelQuery([(["a"], None), (None, [{"k": 1}])])
        self.subscription = self.store.subscribe(self.live_query.build())
        self.subscription_batches: list[list[int]] = []

    def open_store(self) -> factstr.EventStore:
        return factstr.MemoryStore()

    def teardown(self) -> None:
        self.store.close()

    def check_records(
        self, got: list[factstr.EventRecord], expected: list[tuple[int, str, Any]]
    ) -> None:
        assert [r.sequence_number for r in got] == [e[0] for e in expected]
        for record, (seq, event_type, payload) in zip(got, expected, strict=True):
            assert record.event_type == event_type, seq
            assert strict_equal(record.payload, payload), (seq, record.payload, payload)

    @rule(batch=st.lists(new_events, max_size=4))
    def append(self, batch: list[tuple[str, Any]]) -> None:
        if not batch:
            try:
                self.store.append([])
            except factstr.EmptyAppendError:
                return
            raise AssertionError("an empty append did not raise EmptyAppendError")
        result = self.store.append(to_new_events(batch))
        expected = self.model.commit(batch)
        assert (
            result.first_sequence_number,
            result.last_sequence_number,
            result.committed_count,
        ) == expected

    @rule(
        data=st.data(),
        batch=st.lists(new_events, max_size=3),
        choice=st.sampled_from(["fresh", "fresh", "stale", "none", "zero", "random"]),
    )
    def append_if(self, data: st.DataObject, batch: list[tuple[str, Any]], choice: str) -> None:
        context = draw_query(data, self.model)
        actual = self.model.context_version(context)
        expected_version: int | None
        if choice == "fresh":
            expected_version = actual
        elif choice == "stale":
            expected_version = actual - 1 if actual else 1
        elif choice == "none":
            expected_version = None
        elif choice == "zero":
            expected_version = 0
        else:
            expected_version = data.draw(st.integers(0, self.model.head + 2))
        try:
            result = self.store.append_if(to_new_events(batch), context.build(), expected_version)
        except factstr.EmptyAppendError:
            assert not batch
            return
        except factstr.ConditionalAppendConflict as conflict:
            assert batch, "an empty append_if must raise EmptyAppendError first"
            assert expected_version != actual, (
                f"conflict although {expected_version} is the version"
            )
            assert conflict.expected_context_version == expected_version
            assert conflict.actual_context_version == actual
            return
        assert batch, "an empty append_if succeeded"
        assert expected_version == actual, (
            f"append_if succeeded with {expected_version}, version is {actual}"
        )
        expected = self.model.commit(batch)
        assert (
            result.first_sequence_number,
            result.last_sequence_number,
            result.committed_count,
        ) == expected

    @rule(data=st.data(), limit=st.one_of(st.none(), st.integers(0, 5)))
    def query(self, data: st.DataObject, limit: int | None) -> None:
        query = draw_query(data, self.model)
        result = self.store.query(query.build(), limit=limit)
        records, last, version = self.model.query(query, limit)
        self.check_records(result.event_records, records)
        assert result.last_returned_sequence_number == last
        assert result.current_context_version == version

    def _durable_query(self, data: st.DataObject, name: str) -> tuple[ModelQuery, bool]:
        """The query to register ``name`` with, and whether the store must refuse it."""
        stored = self.model.durable.get(name)
        if stored is None:
            return draw_query(data, self.model, with_min=False), False
        if data.draw(st.integers(0, 5)) == 0:
            return OTHER_QUERY, True
        return stored[0], False

    def _check_cursor_after(
        self, name: str, query: ModelQuery, old: int, delivered: list[list[int]]
    ) -> None:
        cursor = cursor_of(self.store, name)
        assert cursor is not None
        low = old
        if delivered:
            last_seq = delivered[-1][-1]
            low = next(last for first, last in self.model.batches if first <= last_seq <= last)
        assert low <= cursor <= self.model.head, (low, cursor, self.model.head)
        self.model.durable[name] = (query, cursor)

    @rule(data=st.data(), name=st.sampled_from(NAMES))
    def durable_handler(self, data: st.DataObject, name: str) -> None:
        query, refused = self._durable_query(data, name)
        seen = Collector()
        if refused:
            try:
                self.store.stream_to_durable(name, query.build(), seen)
            except factstr.DurableStreamQueryMismatch:
                return
            raise AssertionError("a different query was accepted for a stored durable name")
        old = self.model.durable.get(name, (query, 0))[1]
        stream = self.store.stream_to_durable(name, query.build(), seen)
        try:
            expected = self.model.deliveries_after(old, query)
            assert seen.batch_seqs() == expected
            expected_records = [(n, *self.model.events[n - 1]) for b in expected for n in b]
            self.check_records(seen.records, expected_records)
        finally:
            stream.unsubscribe()
        self._check_cursor_after(name, query, old, expected)

    @rule(data=st.data(), name=st.sampled_from(NAMES))
    def durable_subscribe(self, data: st.DataObject, name: str) -> None:
        query, refused = self._durable_query(data, name)
        if refused:
            try:
                with self.store.subscribe(query.build(), durable=name) as sub:
                    sub.next_batch(timeout=0)
            except factstr.DurableStreamQueryMismatch:
                return
            raise AssertionError("a different query was accepted for a stored durable name")
        old = self.model.durable.get(name, (query, 0))[1]
        expected = self.model.deliveries_after(old, query)
        got: list[list[int]] = []
        with self.store.subscribe(query.build(), durable=name) as sub:
            for _ in expected:
                batch = sub.next_batch(timeout=DEADLINE)
                assert batch is not None
                got.append([r.sequence_number for r in batch])
            assert got == expected
            if got:
                # Handed out, not yet acknowledged: the cursor has not passed the last batch.
                cursor = cursor_of(self.store, name)
                assert cursor is not None and cursor < got[-1][0]
            assert sub.next_batch(timeout=0) is None
        self._check_cursor_after(name, query, old, expected)

    @rule(data=st.data(), name=st.sampled_from(NAMES))
    def durable_reset(self, data: st.DataObject, name: str) -> None:
        to = data.draw(st.sampled_from([0] + [last for _, last in self.model.batches]))
        if name not in self.model.durable:
            try:
                self.store.reset_durable_stream(name, to)
            except factstr.DurableStreamError:
                return
            raise AssertionError("resetting an unknown durable name did not raise")
        self.store.reset_durable_stream(name, to)
        query = self.model.durable[name][0]
        self.model.durable[name] = (query, to)

    @rule(name=st.sampled_from(NAMES))
    def durable_delete(self, name: str) -> None:
        self.store.delete_durable_stream(name)
        self.model.durable.pop(name, None)

    @rule()
    def live_streams_caught_up(self) -> None:
        expected_all = [list(range(first, last + 1)) for first, last in self.model.batches]
        total = self.model.head
        self.live.wait_records(total)
        assert self.live.batch_seqs() == expected_all
        self.check_records(
            self.live.records, [(n, *self.model.events[n - 1]) for n in range(1, total + 1)]
        )
        expected_sub = self.model.deliveries_after(0, self.live_query)
        while len(self.subscription_batches) < len(expected_sub):
            batch = self.subscription.next_batch(timeout=DEADLINE)
            assert batch is not None, "the live subscription stalled"
            self.subscription_batches.append([r.sequence_number for r in batch])
        assert self.subscription_batches == expected_sub
        assert self.subscription.next_batch(timeout=0) is None

    @invariant()
    def durable_listing_matches(self) -> None:
        listing = {
            i.name: (i.query, i.last_processed_sequence_number)
            for i in self.store.durable_streams()
        }
        expected = {name: (q.build(), cursor) for name, (q, cursor) in self.model.durable.items()}
        assert listing == expected

    @invariant()
    def head_matches(self) -> None:
        result = self.store.query(limit=0)
        assert result.event_records == []
        assert result.current_context_version == (self.model.head or None)


class SqliteStoreVersusModel(StoreVersusModel):
    """The same machine on a fresh SQLite file per example."""

    def open_store(self) -> factstr.EventStore:
        self.directory = tempfile.mkdtemp(prefix="factstr-model-")
        return factstr.SqliteStore(os.path.join(self.directory, "events.db"))

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self.directory, ignore_errors=True)


class PostgresStoreVersusModel(StoreVersusModel):
    """The same machine on a fresh PostgreSQL database per example (fewer examples: each one
    creates a database)."""

    server: PostgresServer | None = None

    def open_store(self) -> factstr.EventStore:
        assert self.server is not None, "the postgres_server fixture sets the server"
        self.database = self.server.create_database("model")
        return factstr.PostgresStore(self.server.url_for(self.database))

    def teardown(self) -> None:
        super().teardown()
        if self.server is not None:
            self.server.drop_database(self.database)


@pytest.fixture(autouse=True)
def _postgres_for_model(request: pytest.FixtureRequest) -> None:
    if "Postgres" in request.node.nodeid:
        PostgresStoreVersusModel.server = request.getfixturevalue("postgres_server")


_SETTINGS = dict(
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
StoreVersusModel.TestCase.settings = settings(max_examples=50, **_SETTINGS)  # type: ignore[arg-type]
TestStoreVersusModel = StoreVersusModel.TestCase
SqliteStoreVersusModel.TestCase.settings = settings(max_examples=30, **_SETTINGS)  # type: ignore[arg-type]
TestSqliteStoreVersusModel = SqliteStoreVersusModel.TestCase
PostgresStoreVersusModel.TestCase.settings = settings(max_examples=15, **_SETTINGS)  # type: ignore[arg-type]
TestPostgresStoreVersusModel = PostgresStoreVersusModel.TestCase
