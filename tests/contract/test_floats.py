"""SPEC §7: a float comes back as the same float, bit for bit, in every store, and a predicate on
it finds it; ints at the edges of their range stay ints.

Checked with ``float.hex`` (``==`` alone would let ``-0.0`` pass as ``0.0`` and an int pass as an
integral float), over the extremes and over random finite floats.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from factstr import EventFilter, EventQuery, NewEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import Store

EXTREME_FLOATS: list[float] = [
    0.0,
    -0.0,
    5e-324,  # the smallest subnormal
    -5e-324,
    2.225073858507201e-308,  # the largest subnormal
    2.2250738585072014e-308,  # the smallest normal
    1.7976931348623157e308,  # the largest finite
    -1.7976931348623157e308,
    float(2**53 - 1),
    float(2**53),
    float(2**53 + 2),
    9007199254740993.0,  # 2**53 + 1 rounds to 2**53
    1e15,
    9999999999999998.0,  # the last integral float printed without an exponent
    1e16,
    4.073163081138693e16,
    1e17,
    float(2**63),
    float(2**63 - 1024),
    -float(2**63),
    float(2**64),
    1.8e19,
    1e22,
    1e23,
    1e300,
    123456789.12345679,
    0.1,
    1.0,
    -1.0,
    2.5,
    1e-5,
    1e-7,
    1.5e-10,
    -3.3e-200,
    math.pi,
    math.nextafter(1.0, 2.0),
    math.nextafter(1e16, 0.0),
]

EDGE_INTS: list[int] = [
    0,
    1,
    -1,
    2**53 + 1,
    2**63 - 1,
    -(2**63),
    2**63,
    2**64 - 1,
    10**16,
    40731630811386930,
]


def _bits(x: float) -> int:
    value: int = struct.unpack("<Q", struct.pack("<d", x))[0]
    return value


def _check_floats(store: Store, floats: list[float], conditional: bool = False) -> None:
    """Appends one event per float (alone and inside a list), reads them back and looks each one
    up by a predicate on its value."""
    batch = [NewEvent("float", {"f": x, "l": [x, {"x": x}]}) for x in floats]
    if conditional:
        context = EventQuery.for_event_types(["float"])
        version = store.query(context).current_context_version
        result = store.append_if(batch, context, version)
    else:
        result = store.append(batch)
    first = result.first_sequence_number
    mine = EventQuery(min_sequence_number=first - 1)
    records = store.query(mine).event_records
    assert [r.sequence_number for r in records] == list(range(first, first + len(floats)))
    for x, record in zip(floats, records, strict=True):
        payload: Any = record.payload
        for got in (payload["f"], payload["l"][0], payload["l"][1]["x"]):
            assert type(got) is float, (x, got)
            assert got == x
            assert got.hex() == x.hex(), (x, got)
            assert _bits(got) == _bits(x)
    for x, record in zip(floats, records, strict=True):
        for predicate in ({"f": x}, {"l": [x]}, {"l": [{"x": x}]}):
            query = EventQuery([EventFilter(["float"], [predicate])], first - 1)
            found = [r.sequence_number for r in store.query(query).event_records]
            assert record.sequence_number in found, (x, predicate, found)


def test_extreme_floats_come_back_bit_for_bit_and_are_found(store: Store) -> None:
    _check_floats(store, EXTREME_FLOATS)


def test_conditional_appends_keep_floats_too(store: Store) -> None:
    # A batch without -0.0 and one with it (the SQL stores write these on different paths).
    _check_floats(
        store,
        [x for x in EXTREME_FLOATS if x != 0.0 or math.copysign(1.0, x) > 0],
        conditional=True,
    )
    _check_floats(store, EXTREME_FLOATS, conditional=True)
    _check_floats(store, [-0.0], conditional=True)


def test_integral_floats_and_ints_stay_apart(store: Store) -> None:
    """An integral float reads back as a float and an int as an int, even with equal values; a
    predicate matches both by value (SPEC §10)."""
    pairs = [(float(i), i) for i in (0, 1, 10**16, 2**53, 2**63, 2**64 - 2**11)]
    store.append([NewEvent("pair", {"f": f, "i": i}) for f, i in pairs])
    records = store.query().event_records
    for (f, i), record in zip(pairs, records, strict=True):
        payload: Any = record.payload
        assert type(payload["f"]) is float and payload["f"].hex() == f.hex()
        assert type(payload["i"]) is int and payload["i"] == i
        by_int = store.query(EventQuery([EventFilter(None, [{"f": i}])]))
        assert record.sequence_number in [r.sequence_number for r in by_int.event_records]
        by_float = store.query(EventQuery([EventFilter(None, [{"i": f}])]))
        assert record.sequence_number in [r.sequence_number for r in by_float.event_records]


def test_ints_at_the_edges_stay_ints(store: Store) -> None:
    store.append([NewEvent("int", {"i": i, "l": [i]}) for i in EDGE_INTS])
    records = store.query().event_records
    for i, record in zip(EDGE_INTS, records, strict=True):
        payload: Any = record.payload
        assert type(payload["i"]) is int and payload["i"] == i
        assert type(payload["l"][0]) is int and payload["l"][0] == i
        found = store.query(EventQuery([EventFilter(["int"], [{"i": i}])])).event_records
        assert record.sequence_number in [r.sequence_number for r in found]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    floats=st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False),
            # Integral floats, where jsonb and JSON parsers are most tempted to answer an int.
            st.integers(-(2**70), 2**70).map(float),
            st.floats(min_value=1e15, max_value=2e19),
            # Many significant digits in a common magnitude (the 1-ulp errors of a fast parser).
            st.floats(min_value=-1e9, max_value=1e9),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_random_finite_floats_come_back_bit_for_bit_and_are_found(
    store: Store, floats: list[float]
) -> None:
    _check_floats(store, floats)
