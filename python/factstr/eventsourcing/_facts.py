"""How eventsourcing's records become factstr facts, and back.

Every record is one fact in the store's single log, so factstr queries and streams see it:

- a stored event: type = its topic; payload ``{"recorder": ..., "originator_id": ...,
  "originator_version": ..., "state": <JSON state>}``;
- a tracking record: type = ``TRACKING_TYPE``; payload ``{"recorder": ...,
  "application_name": ..., "notification_id": ...}``;
- a DCB event: type = its type; payload ``{"recorder": ..., "tags": [...], "data": <JSON data>}``.

``recorder`` names the recorder the fact belongs to (like a table name in eventsourcing's SQL
recorders: ``<app>_events``, ``<app>_snapshots``, ``<app>_tracking``, ``<app>_dcb``), so that
several applications, their snapshots and their tracking records share one log without mixing.

State that is not JSON (compressed or encrypted by eventsourcing's mapper, or any other bytes)
goes under ``"$opaque"`` as base64 text: the engine keeps and returns what sits under a
``$opaque`` member but never indexes it (``payload_keys.rs``), so ciphertext costs no index rows
and is never mistaken for a queryable value.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking

from factstr import EventFilter, NewEvent

#: The event type of a tracking record: the topic of eventsourcing's ``Tracking`` class.
TRACKING_TYPE = "eventsourcing.persistence:Tracking"

#: The payload member whose contents the engine stores but never indexes.
OPAQUE = "$opaque"

# What eventsourcing's JSONTranscoder writes: compact separators, non-ASCII as is.
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_decoder = json.JSONDecoder()


def pack_bytes(payload: dict[str, Any], name: str, data: bytes) -> dict[str, Any]:
    """Puts ``data`` into ``payload`` under ``name``: as a JSON value when the bytes are a JSON
    object that re-encodes to exactly the same bytes (so nothing is lost but key order), else as
    opaque base64 text under ``$opaque``."""
    if data[:1] == b"{":
        try:
            value = _decoder.decode(data.decode("utf-8"))
            if _encoder.encode(value).encode("utf-8") == data:
                payload[name] = value
                return payload
        except (UnicodeDecodeError, ValueError):
            pass
    payload[OPAQUE] = {name: base64.b64encode(data).decode("ascii")}
    return payload


def unpack_bytes(payload: Any, name: str) -> bytes:
    """The bytes that ``pack_bytes`` put under ``name``."""
    if name in payload:
        return _encoder.encode(payload[name]).encode("utf-8")
    return base64.b64decode(payload[OPAQUE][name])


def originator_key(originator_id: UUID | str) -> str:
    """How an originator id is written into a payload: a UUID in its canonical text form."""
    return str(originator_id) if isinstance(originator_id, UUID) else originator_id


def event_payload(recorder: str, originator_id: UUID | str, version: int, state: bytes) -> Any:
    """The payload of a stored event."""
    payload = {
        "recorder": recorder,
        "originator_id": originator_key(originator_id),
        "originator_version": version,
    }
    return pack_bytes(payload, "state", state)


def tracking_event(recorder: str, tracking: Tracking) -> NewEvent:
    """The fact that records a tracking object."""
    return NewEvent(
        TRACKING_TYPE,
        {
            "recorder": recorder,
            "application_name": tracking.application_name,
            "notification_id": tracking.notification_id,
        },
    )


def tracking_filter(recorder: str, application_name: str) -> EventFilter:
    """The tracking records of one upstream application in one tracking recorder."""
    return EventFilter(
        event_types=[TRACKING_TYPE],
        payload_predicates=[{"recorder": recorder, "application_name": application_name}],
    )


def belongs_to(event_type: str, payload: Any, recorder: str) -> bool:
    """Whether a fact is a stored event of ``recorder`` (not a tracking record or a foreign fact)."""
    return (
        isinstance(payload, dict)
        and payload.get("recorder") == recorder
        and event_type != TRACKING_TYPE
        and "originator_version" in payload
    )
