"""eventsourcing's DCB recorder on a factstr store.

DCB positions are sequence numbers. A DCB query item (types, tags) is a factstr filter: the
types as event types, the tags as the payload predicate ``{"tags": [...]}`` (array containment is
DCB's "all item tags are among the event's tags"). An append condition (``fail_if_events_match``,
``after``) is exactly factstr's ``append_unless``: one atomic step in one round trip.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from eventsourcing.dcb.api import (
    DCBAppendCondition,
    DCBEvent,
    DCBQuery,
    DCBReadResponse,
    DCBRecorder,
    DCBSequencedEvent,
)
from eventsourcing.dcb.persistence import DCBListenNotifySubscription
from eventsourcing.persistence import IntegrityError, ProgrammingError

from factstr import (
    ConditionalAppendConflict,
    EventFilter,
    EventQuery,
    EventRecord,
    EventStore,
    EventStream,
    NewEvent,
)
from factstr.eventsourcing._facts import pack_bytes, unpack_bytes
from factstr.eventsourcing._waking import start_waking


class FactstrDCBRecorder(DCBRecorder):
    """DCB events as facts: type = the DCB type, payload ``{"recorder", "tags", "data"}``."""

    def __init__(self, store: EventStore, recorder_name: str = "stored_dcb") -> None:
        self.store = store
        self.recorder_name = recorder_name

    def _filters(self, query: DCBQuery | None) -> list[EventFilter]:
        items = query.items if query is not None else []
        if not items:
            return [EventFilter(payload_predicates=[{"recorder": self.recorder_name}])]
        return [
            EventFilter(
                event_types=list(item.types) or None,
                payload_predicates=[{"recorder": self.recorder_name, "tags": list(item.tags)}],
            )
            for item in items
        ]

    def read(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> DCBReadResponse:
        factstr_query = EventQuery(self._filters(query), min_sequence_number=after or None)
        result = self.store.query(factstr_query, limit=limit)
        events = [self._sequenced(record) for record in result.event_records]
        if limit is None:
            # The head of the log, like eventsourcing's own recorders: a position at or after
            # every event the read could have seen, fit for a following append's `after`.
            head = result.head_sequence_number
        else:
            head = events[-1].position if events else None
        return FactstrDCBReadResponse(iter(events), head)

    def _sequenced(self, record: EventRecord) -> DCBSequencedEvent:
        payload: Any = record.payload
        return DCBSequencedEvent(
            event=DCBEvent(
                type=record.event_type, data=unpack_bytes(payload, "data"), tags=payload["tags"]
            ),
            position=record.sequence_number,
        )

    def append(
        self, events: Sequence[DCBEvent], condition: DCBAppendCondition | None = None
    ) -> int:
        if len(events) == 0:
            msg = "Should be at least one event. Avoid this elsewhere"
            raise ProgrammingError(msg)
        new_events = [
            NewEvent(
                event.type,
                pack_bytes(
                    {"recorder": self.recorder_name, "tags": list(event.tags)}, "data", event.data
                ),
            )
            for event in events
        ]
        if condition is None:
            return self.store.append(new_events).last_sequence_number
        fail_if = EventQuery(self._filters(condition.fail_if_events_match))
        try:
            result = self.store.append_unless(new_events, fail_if, after=condition.after)
        except ConditionalAppendConflict:
            raise IntegrityError(condition) from None
        return result.last_sequence_number

    def subscribe(
        self, query: DCBQuery | None = None, *, after: int | None = None
    ) -> FactstrDCBSubscription:
        return FactstrDCBSubscription(self, query=query, after=after)


class FactstrDCBReadResponse(DCBReadResponse):
    """The events of one read, and its head."""

    def __init__(self, events: Iterator[DCBSequencedEvent], head: int | None) -> None:
        self._events = events
        self._head = head

    @property
    def head(self) -> int | None:
        return self._head

    def __next__(self) -> DCBSequencedEvent:
        return next(self._events)


class FactstrDCBSubscription(DCBListenNotifySubscription[FactstrDCBRecorder]):
    """DCB events after ``after``, then new ones as they commit in any process: a factstr live
    stream on the same query wakes the puller."""

    def __init__(
        self, recorder: FactstrDCBRecorder, query: DCBQuery | None = None, after: int | None = None
    ) -> None:
        super().__init__(recorder=recorder, query=query, after=after)
        wake = EventQuery(recorder._filters(query))
        self._stream: EventStream | None = None
        self._stream = start_waking(recorder.store, wake, self._has_been_notified, self.stop)

    def stop(self) -> None:
        stream, self._stream = getattr(self, "_stream", None), None
        if stream is not None:
            stream.unsubscribe()
        super().stop()
