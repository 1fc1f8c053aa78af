"""factstr as a persistence module of the ``eventsourcing`` library (SPEC §13).

Run an unchanged eventsourcing ``Application``, ``System``, projection or ``DCBApplication`` on a
factstr store with two environment variables::

    PERSISTENCE_MODULE=factstr.eventsourcing
    FACTSTR_URL=sqlite:///app.db          # any factstr.connect() URL

All recorders of an application share one store: one log whose sequence numbers are the
notification ids and DCB positions. ``FACTSTR_URL`` may be given per application
(``<APP NAME>_FACTSTR_URL``), like every eventsourcing setting; ``ORIGINATOR_ID_TYPE`` is
``uuid`` (the default) or ``text``, as in eventsourcing's SQL modules. Needs the optional extra
``factstr[eventsourcing]``; importing ``factstr`` alone never imports eventsourcing. See
docs/eventsourcing.md.
"""

from __future__ import annotations

from typing import cast

from eventsourcing.dcb.api import DCBRecorder
from eventsourcing.dcb.persistence import DCBInfrastructureFactory
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic

import factstr
from factstr.eventsourcing._dcb import (
    FactstrDCBReadResponse,
    FactstrDCBRecorder,
    FactstrDCBSubscription,
)
from factstr.eventsourcing._facts import OPAQUE, TRACKING_TYPE
from factstr.eventsourcing._recorders import (
    FactstrAggregateRecorder,
    FactstrApplicationRecorder,
    FactstrProcessRecorder,
    FactstrSubscription,
    FactstrTrackingRecorder,
    OriginatorIdType,
)

__all__ = [
    "OPAQUE",
    "TRACKING_TYPE",
    "Factory",
    "FactstrAggregateRecorder",
    "FactstrApplicationRecorder",
    "FactstrDCBReadResponse",
    "FactstrDCBRecorder",
    "FactstrDCBSubscription",
    "FactstrFactory",
    "FactstrProcessRecorder",
    "FactstrSubscription",
    "FactstrTrackingRecorder",
]


class FactstrFactory(
    InfrastructureFactory[FactstrTrackingRecorder],
    DCBInfrastructureFactory[FactstrTrackingRecorder],
):
    """eventsourcing's infrastructure factory: every recorder it makes is on one factstr store,
    opened from ``FACTSTR_URL`` and closed by ``close()``."""

    FACTSTR_URL = "FACTSTR_URL"
    ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        url = self.env.get(self.FACTSTR_URL)
        if not url:
            keys = ", ".join(self.env.create_keys(self.FACTSTR_URL))
            msg = f"factstr store URL not found in environment with keys: {keys}"
            raise OSError(msg)
        id_type = self.env.get(self.ORIGINATOR_ID_TYPE, "uuid").lower()
        if id_type not in ("uuid", "text"):
            msg = f"Invalid {self.ORIGINATOR_ID_TYPE} {id_type!r}, must be 'uuid' or 'text'"
            raise OSError(msg)
        self.originator_id_type = cast(OriginatorIdType, id_type)
        self.store: factstr.EventStore = factstr.connect(url)

    def _prefix(self, default: str) -> str:
        # The names eventsourcing's PostgreSQL module gives its tables.
        return self.env.name.lower() or default

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return FactstrAggregateRecorder(
            self.store,
            f"{self._prefix('stored')}_{purpose}",
            originator_id_type=self.originator_id_type,
        )

    def application_recorder(self) -> ApplicationRecorder:
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        cls: type[FactstrApplicationRecorder] = (
            resolve_topic(topic) if topic else FactstrApplicationRecorder
        )
        return cls(
            self.store,
            f"{self._prefix('stored')}_events",
            originator_id_type=self.originator_id_type,
        )

    def tracking_recorder(
        self, tracking_recorder_class: type[FactstrTrackingRecorder] | None = None
    ) -> FactstrTrackingRecorder:
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            tracking_recorder_class = resolve_topic(topic) if topic else FactstrTrackingRecorder
        assert tracking_recorder_class is not None
        return tracking_recorder_class(self.store, f"{self._prefix('notification')}_tracking")

    def process_recorder(self) -> ProcessRecorder:
        topic = self.env.get(self.PROCESS_RECORDER_TOPIC)
        cls: type[FactstrProcessRecorder] = (
            resolve_topic(topic) if topic else FactstrProcessRecorder
        )
        return cls(
            self.store,
            f"{self._prefix('stored')}_events",
            f"{self._prefix('notification')}_tracking",
            originator_id_type=self.originator_id_type,
        )

    def dcb_recorder(self) -> DCBRecorder:
        return FactstrDCBRecorder(self.store, f"{self._prefix('stored')}_dcb")

    def close(self) -> None:
        self.store.close()


Factory = FactstrFactory
