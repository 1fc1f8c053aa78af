"""SPEC §11: `NewEvent(event_type, payload, *, default=None)` and `factstr.json_default`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import uuid
from typing import Any

import pytest
from factstr import NewEvent, json_default

from tests.support import Store


class Colour(enum.Enum):
    RED = "red"
    GREEN = 2


@dataclasses.dataclass(frozen=True)
class Seat:
    number: int
    booked_at: dt.datetime
    colour: Colour


class Model:
    """Duck-typed like a pydantic model: `model_dump()` returns a dict (with non-JSON values)."""

    def __init__(self, id: uuid.UUID) -> None:
        self.id = id

    def model_dump(self) -> dict[str, Any]:
        return {"id": self.id, "price": decimal.Decimal("9.90")}


UID = uuid.UUID("12345678-1234-5678-1234-567812345678")
AWARE = dt.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=dt.timezone(dt.timedelta(hours=1)))
NAIVE = dt.datetime(2026, 1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (AWARE, "2026-01-02T03:04:05.600000+01:00"),
        (NAIVE, "2026-01-02T03:04:05"),
        (dt.date(2026, 1, 2), "2026-01-02"),
        (dt.time(3, 4, 5), "03:04:05"),
        (dt.time(3, 4, tzinfo=dt.timezone.utc), "03:04:00+00:00"),
        (UID, "12345678-1234-5678-1234-567812345678"),
        (decimal.Decimal("1.10"), "1.10"),
        (Colour.RED, "red"),
        (Colour.GREEN, 2),
        (
            Seat(3, NAIVE, Colour.RED),
            {"number": 3, "booked_at": "2026-01-02T03:04:05", "colour": "red"},
        ),
        (Model(UID), {"id": "12345678-1234-5678-1234-567812345678", "price": "9.90"}),
    ],
)
def test_json_default_converts_every_listed_type(value: object, expected: object) -> None:
    assert NewEvent("t", value, default=json_default).payload == expected
    assert NewEvent("t", {"v": [value]}, default=json_default).payload == {"v": [expected]}


def test_nested_values_are_converted_and_stored(store: Store) -> None:
    payload = {
        "seats": [Seat(1, AWARE, Colour.GREEN)],
        "by": Model(UID),
        "on": (dt.date(2026, 5, 1),),
    }
    store.append([NewEvent("Booked", payload, default=json_default)])
    assert store.query().event_records[0].payload == {
        "seats": [{"number": 1, "booked_at": "2026-01-02T03:04:05.600000+01:00", "colour": 2}],
        "by": {"id": "12345678-1234-5678-1234-567812345678", "price": "9.90"},
        "on": ["2026-05-01"],
    }


def test_without_default_non_json_values_are_refused_as_before() -> None:
    with pytest.raises(TypeError, match=r"payload\['at'\]: datetime is not a JSON value"):
        NewEvent("t", {"at": NAIVE})
    assert NewEvent("t", {"a": 1}, default=None) == NewEvent("t", {"a": 1})


def test_a_default_returning_something_non_json_names_the_path() -> None:
    with pytest.raises(
        TypeError, match=r"payload\['a'\]\[1\]: default could not convert object"
    ) as caught:
        NewEvent("t", {"a": [1, object()]}, default=json_default)
    assert isinstance(caught.value.__cause__, TypeError)

    def to_set(value: object) -> object:
        return {1, 2} if not isinstance(value, set) else json_default(value)

    with pytest.raises(TypeError, match=r"payload\['x'\]: default could not convert set"):
        NewEvent("t", {"x": UID}, default=to_set)


def test_a_default_that_never_reaches_json_ends_with_an_error() -> None:
    with pytest.raises(
        ValueError, match=r"payload\['x'\]: default returned the object it was given unchanged"
    ):
        NewEvent("t", {"x": object()}, default=lambda v: v)

    class Box:
        pass

    with pytest.raises(ValueError, match="default kept returning non-JSON values"):
        NewEvent("t", Box(), default=lambda v: Box())


def test_a_default_result_is_checked_like_any_payload() -> None:
    with pytest.raises(ValueError, match=r"payload\['x'\]: .*not a finite number"):
        NewEvent("t", {"x": UID}, default=lambda v: float("nan"))
    with pytest.raises(TypeError, match="object keys must be str"):
        NewEvent("t", {"x": UID}, default=lambda v: {1: 2})


@pytest.mark.parametrize("payload", [{"x": 1}, {"x": UID}])
def test_a_default_that_is_not_callable_is_a_type_error_even_when_unused(payload: object) -> None:
    with pytest.raises(TypeError, match="default must be a callable"):
        NewEvent("t", payload, default=3)  # type: ignore[call-overload]
    assert NewEvent("t", {"x": 1}, default=None) == NewEvent("t", {"x": 1})
