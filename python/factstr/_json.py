"""`json_default`: the ready `default` hook for `NewEvent(..., default=json_default)` (SPEC §11).

Like a `json.dumps(default=...)` hook it returns a simpler value for one it is given; the
engine converts that in turn, so a dataclass holding a `datetime` needs nothing more.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import uuid


def json_default(value: object) -> object:
    """Turns a common non-JSON value into JSON: `datetime`, `date` and `time` as ISO 8601 text
    (a naive value stays naive, with no offset), `UUID` and `Decimal` as text, an `Enum` member
    as its value, a dataclass instance as a dict of its fields, an object with `model_dump()`
    (pydantic) as what that returns. Anything else raises `TypeError`."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Shallow: nested values go through this hook again.
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump) and not isinstance(value, type):
        return model_dump()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
