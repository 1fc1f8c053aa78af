"""eventsourcing's aggregate, application, tracking and process recorders on one factstr store.

The rules of eventsourcing's recorders, and how each is kept here:

- unique (originator id, version) per recorder, with ``IntegrityError`` for the whole call and
  nothing written: one ``append_unless`` whose condition matches any existing fact with one of
  the new (recorder, originator id, version) triples, so check and write are one atomic step;
- notification ids are sequence numbers: commit order, no interleaving of concurrent batches
  (the engine serialises appends), no gaps inside a batch; facts of other recorders sharing the
  log (snapshots, other applications, tracking records) leave gaps between batches;
- tracking records: strictly increasing per upstream application, written in the same batch as
  the process's new events (one factstr append), so both commit or neither does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    IntegrityError,
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from factstr import (
    ConditionalAppendConflict,
    EventFilter,
    EventQuery,
    EventRecord,
    EventStore,
    EventStream,
    NewEvent,
)
from factstr.eventsourcing._facts import (
    belongs_to,
    event_payload,
    originator_key,
    tracking_event,
    tracking_filter,
    unpack_bytes,
)
from factstr.eventsourcing._waking import start_waking

OriginatorIdType = Literal["uuid", "text"]


class FactstrRecorder:
    """What every recorder here shares: the store, and the name that marks its facts."""

    def __init__(self, store: EventStore, recorder_name: str) -> None:
        self.store = store
        self.recorder_name = recorder_name


class FactstrAggregateRecorder(FactstrRecorder, AggregateRecorder):
    """Stored events of aggregates (also snapshots, with ``purpose="snapshots"``)."""

    def __init__(
        self,
        store: EventStore,
        recorder_name: str = "stored_events",
        *,
        originator_id_type: OriginatorIdType = "uuid",
    ) -> None:
        super().__init__(store, recorder_name)
        self.originator_id_type = originator_id_type

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._insert(stored_events, kwargs.get("tracking"))
        return None

    def _insert(self, stored_events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        """Appends the events (and a tracking record) as one batch; their notification ids."""
        if not stored_events:
            return []
        events, duplicates = self._new_events(stored_events)
        try:
            result = self.store.append_unless(events, duplicates)
        except ConditionalAppendConflict:
            raise IntegrityError(self._conflict_message(stored_events)) from None
        return list(range(result.first_sequence_number, result.last_sequence_number + 1))

    def _new_events(
        self, stored_events: Sequence[StoredEvent]
    ) -> tuple[list[NewEvent], EventQuery]:
        """The facts to append, and the query that matches any fact they would duplicate."""
        events = []
        keys = []
        seen = set()
        for stored in stored_events:
            key = (originator_key(stored.originator_id), stored.originator_version)
            if key in seen:
                raise IntegrityError(self._conflict_message(stored_events))
            seen.add(key)
            keys.append(
                {
                    "recorder": self.recorder_name,
                    "originator_id": key[0],
                    "originator_version": key[1],
                }
            )
            payload = event_payload(
                self.recorder_name, stored.originator_id, stored.originator_version, stored.state
            )
            events.append(NewEvent(stored.topic, payload))
        return events, EventQuery([EventFilter(payload_predicates=keys)])

    @staticmethod
    def _conflict_message(stored_events: Sequence[StoredEvent]) -> str:
        versions = ", ".join(f"({s.originator_id}, {s.originator_version})" for s in stored_events)
        return f"Stored events already recorded or not unique: {versions}"

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        predicate = {"recorder": self.recorder_name, "originator_id": originator_key(originator_id)}
        result = self.store.query(EventQuery([EventFilter(payload_predicates=[predicate])]))
        selected = []
        for record in result.event_records:
            payload: Any = record.payload
            version = payload["originator_version"]
            if (gt is not None and version <= gt) or (lte is not None and version > lte):
                continue
            selected.append((version, record, payload))
        selected.sort(key=lambda item: item[0], reverse=desc)
        if limit is not None:
            selected = selected[:limit]
        return [self._stored_event(record, payload) for _, record, payload in selected]

    def _originator_id(self, text: str) -> UUID | str:
        return UUID(text) if self.originator_id_type == "uuid" else text

    def _stored_event(self, record: EventRecord, payload: Any) -> StoredEvent:
        return StoredEvent(
            originator_id=self._originator_id(payload["originator_id"]),
            originator_version=payload["originator_version"],
            topic=record.event_type,
            state=unpack_bytes(payload, "state"),
        )


class FactstrApplicationRecorder(FactstrAggregateRecorder, ApplicationRecorder):
    """Stored events with notification ids: the store's sequence numbers."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._insert(stored_events, kwargs.get("tracking"))

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        after = 0 if start is None else max(start - 1 if inclusive_of_start else start, 0)
        # The whole log (or the topics' facts) from `after`, filtered here by recorder: a scan of
        # the log is cheaper than the payload index for a key that nearly every fact has.
        filters = [EventFilter(event_types=list(topics))] if topics else None
        notifications: list[Notification] = []
        while len(notifications) < limit:
            wanted = limit - len(notifications)
            query = EventQuery(filters, min_sequence_number=after)
            records = self.store.query(query, limit=wanted).event_records
            for record in records:
                if stop is not None and record.sequence_number > stop:
                    return notifications
                payload: Any = record.payload  # a copy per access: taken once
                if belongs_to(record.event_type, payload, self.recorder_name):
                    notifications.append(self._notification(record, payload))
            if len(records) < wanted:
                break
            after = records[-1].sequence_number
        return notifications

    def _notification(self, record: EventRecord, payload: Any) -> Notification:
        return Notification(
            id=record.sequence_number,
            originator_id=self._originator_id(payload["originator_id"]),
            originator_version=payload["originator_version"],
            topic=record.event_type,
            state=unpack_bytes(payload, "state"),
        )

    def max_notification_id(self) -> int | None:
        predicate = {"recorder": self.recorder_name}
        query = EventQuery([EventFilter(payload_predicates=[predicate])])
        # Tracking records carry the name of their own recorder, never this one.
        return self.store.query(query, limit=0).current_context_version

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return FactstrSubscription(self, gt=gt, topics=topics)


class FactstrSubscription(ListenNotifySubscription[FactstrApplicationRecorder]):
    """Notifications after ``gt``, then new ones as they commit, in this or any other process:
    a factstr live stream wakes the puller, which reads the new notifications from the store."""

    def __init__(
        self,
        recorder: FactstrApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        query = EventQuery.for_event_types(list(topics)) if topics else EventQuery.all()
        self._stream: EventStream | None = None
        self._stream = start_waking(recorder.store, query, self._has_been_notified, self.stop)

    def stop(self) -> None:
        stream, self._stream = getattr(self, "_stream", None), None
        if stream is not None:
            stream.unsubscribe()
        super().stop()


class FactstrTrackingRecorder(FactstrRecorder, TrackingRecorder):
    """Tracking records: per upstream application, strictly increasing notification ids."""

    def __init__(
        self, store: EventStore, tracking_recorder_name: str = "notification_tracking"
    ) -> None:
        FactstrRecorder.__init__(self, store, tracking_recorder_name)
        self.tracking_recorder_name = tracking_recorder_name
        self._last_known: dict[str, tuple[int, int]] = {}

    def insert_tracking(self, tracking: Tracking) -> None:
        self._insert_tracked([], tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        last = self._last_tracking(application_name)
        return None if last is None else last[1]

    def _last_tracking(self, application_name: str) -> tuple[int, int] | None:
        """(sequence number, notification id) of the application's last tracking record."""
        query = EventQuery([tracking_filter(self.tracking_recorder_name, application_name)])
        version = self.store.query(query, limit=0).current_context_version
        if version is None:
            return None
        record = self.store.query(
            query.with_min_sequence_number(version - 1), limit=1
        ).event_records[0]
        payload: Any = record.payload
        last = (record.sequence_number, payload["notification_id"])
        self._last_known[application_name] = last
        return last

    #: How often an insert re-reads the last tracking record after a conflict that may only have
    #: come from a stale memory of it (another recorder object recorded meanwhile).
    _ATTEMPTS = 3

    def _insert_tracked(
        self, events: list[NewEvent], tracking: Tracking, duplicates: EventQuery | None = None
    ) -> list[int]:
        """Appends ``events`` and the tracking record as one batch, unless the tracking record is
        not newer than the last one, or an event duplicates a recorded one (``IntegrityError``).

        The condition has two bounds: a duplicate event anywhere in the log, and a tracking record
        after the last one. ``append_unless`` takes one bound, so duplicates up to that point
        are looked for first: facts never change, so what the look finds stays found, and anything
        committed after the look is above the bound and caught by the append itself.

        The last tracking record is remembered from this recorder's own reads and inserts (reading
        it costs a look at every tracking record of the application). A memory that went stale
        can only cause a conflict, never a wrong write: then it is read afresh and decided again."""
        application = tracking.application_name
        filters = [tracking_filter(self.tracking_recorder_name, application)]
        if duplicates is not None:
            filters.extend(duplicates.filters or [])
        batch = [*events, tracking_event(self.tracking_recorder_name, tracking)]
        last = self._last_known.get(application)
        for attempt in range(self._ATTEMPTS):
            if last is None or attempt > 0:
                last = self._last_tracking(application)
            if last is not None and last[1] >= tracking.notification_id:
                msg = (
                    f"Tracking notification ID {tracking.notification_id} not greater than "
                    f"current max tracking ID {last[1]} for {application!r}"
                )
                raise IntegrityError(msg)
            if duplicates is not None and self.store.query(duplicates, limit=1).event_records:
                raise IntegrityError("Stored events already recorded")
            try:
                result = self.store.append_unless(
                    batch, EventQuery(filters), after=None if last is None else last[0]
                )
            except ConditionalAppendConflict:
                self._last_known.pop(application, None)
                continue
            self._last_known[application] = (result.last_sequence_number, tracking.notification_id)
            return list(range(result.first_sequence_number, result.last_sequence_number))
        msg = f"Conflict recording {tracking}: concurrent tracking records for {application!r}"
        raise IntegrityError(msg)


class FactstrProcessRecorder(FactstrTrackingRecorder, FactstrApplicationRecorder, ProcessRecorder):
    """An application recorder whose inserts may carry a tracking record, committed with them."""

    def __init__(
        self,
        store: EventStore,
        recorder_name: str = "stored_events",
        tracking_recorder_name: str = "notification_tracking",
        *,
        originator_id_type: OriginatorIdType = "uuid",
    ) -> None:
        FactstrApplicationRecorder.__init__(
            self, store, recorder_name, originator_id_type=originator_id_type
        )
        # The tracking half's state (its __init__ would rename the recorder).
        self.tracking_recorder_name = tracking_recorder_name
        self._last_known = {}

    def _insert(self, stored_events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        if tracking is None:
            return super()._insert(stored_events, None)
        if not stored_events:
            self._insert_tracked([], tracking)
            return []
        events, duplicates = self._new_events(stored_events)
        return self._insert_tracked(events, tracking, duplicates)
