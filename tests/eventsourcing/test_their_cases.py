"""eventsourcing's own test cases, from its wheel and unchanged, on factstr's three stores.

Each case class of ``eventsourcing.tests.persistence``, ``eventsourcing.dcb.tests`` and
``eventsourcing.tests.application`` is subclassed once per store kind; the subclass only says how
to make the recorder (or sets ``PERSISTENCE_MODULE``/``FACTSTR_URL`` for the application cases),
as eventsourcing's own POPO, SQLite and PostgreSQL test modules do for their recorders.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import factstr
from eventsourcing.dcb import tests as their_dcb
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.tests import application as their_application
from eventsourcing.tests import persistence as their
from eventsourcing.utils import Environment, get_topic
from factstr.eventsourcing import (
    FactstrAggregateRecorder,
    FactstrApplicationRecorder,
    FactstrDCBRecorder,
    FactstrFactory,
    FactstrProcessRecorder,
    FactstrTrackingRecorder,
)

KINDS = ("memory", "sqlite", "postgres")


class OnFactstrStore:
    """Opens the test's store (``factstr_url`` comes from conftest's fixture); closes it after."""

    store_kind: ClassVar[str]
    factstr_url: str
    # Only the concrete classes made at the end of this module are collected.
    __test__ = False

    def open_store(self) -> factstr.EventStore:
        store = factstr.connect(self.factstr_url)
        self.addCleanup(store.close)  # type: ignore[attr-defined]
        return store


class AggregateRecorderCase(OnFactstrStore, their.AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return FactstrAggregateRecorder(self.open_store(), "stored_events")


class ApplicationRecorderCase(
    OnFactstrStore, their.ApplicationRecorderTestCase[FactstrApplicationRecorder]
):
    def create_recorder(self) -> FactstrApplicationRecorder:
        return FactstrApplicationRecorder(self.open_store(), "stored_events")

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()

    def close_db_connection(self, *args: Any) -> None:
        pass


class TrackingRecorderCase(OnFactstrStore, their.TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return FactstrTrackingRecorder(self.open_store())


class ProcessRecorderCase(OnFactstrStore, their.ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return FactstrProcessRecorder(self.open_store())


class NonInterleavingCase(OnFactstrStore, their.NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> ApplicationRecorder:
        return FactstrApplicationRecorder(self.open_store())


class DCBRecorderCase(OnFactstrStore, their_dcb.DCBRecorderTestCase):
    def test_append_read(self) -> None:
        self._test_append_read(FactstrDCBRecorder(self.open_store()))

    def test_append_subscribe(self) -> None:
        self._test_append_subscribe(FactstrDCBRecorder(self.open_store()))


class InfrastructureFactoryCase(
    OnFactstrStore, their.InfrastructureFactoryTestCase[FactstrFactory]
):
    def expected_factory_class(self) -> type[FactstrFactory]:
        return FactstrFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return FactstrAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return FactstrApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return FactstrTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return FactstrProcessRecorder

    def setUp(self) -> None:
        self.env = Environment(
            "TestCase",
            {
                InfrastructureFactory.PERSISTENCE_MODULE: "factstr.eventsourcing",
                FactstrFactory.FACTSTR_URL: self.factstr_url,
            },
        )
        super().setUp()


class CustomTrackingRecorder(FactstrTrackingRecorder):
    pass


class WithPersistenceModule(OnFactstrStore):
    """Sets the two environment variables of docs/eventsourcing.md for the test's duration."""

    def setUp(self) -> None:
        saved = {key: os.environ.get(key) for key in ("PERSISTENCE_MODULE", "FACTSTR_URL")}
        os.environ["PERSISTENCE_MODULE"] = "factstr.eventsourcing"
        os.environ["FACTSTR_URL"] = self.factstr_url
        self.addCleanup(_restore, saved)  # type: ignore[attr-defined]
        super().setUp()  # type: ignore[misc]


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class ExampleApplicationCase(WithPersistenceModule, their_application.ExampleApplicationTestCase):
    expected_factory_topic = get_topic(FactstrFactory)


class ApplicationCase(WithPersistenceModule, their_application.ApplicationTestCase):
    pass


CASES: list[type[Any]] = [
    AggregateRecorderCase,
    ApplicationRecorderCase,
    TrackingRecorderCase,
    ProcessRecorderCase,
    NonInterleavingCase,
    DCBRecorderCase,
    InfrastructureFactoryCase,
    ExampleApplicationCase,
    ApplicationCase,
]

# One concrete class per case and store kind, named like `TestSqliteProcessRecorderCase`.
for _case in CASES:
    for _kind in KINDS:
        _name = f"Test{_kind.capitalize()}{_case.__name__}"
        globals()[_name] = type(
            _name, (_case,), {"store_kind": _kind, "__module__": __name__, "__test__": True}
        )
del _case, _kind, _name
