"""Generated operation sequences, run side by side on an upstream store and ours.

Operations are drawn one at a time (``st.data()``), so predicates can be cut out of payloads
that were appended before and ``append_if`` can use the context version both stores just
reported. Generation keeps clear of the documented differences (``differences.py``): see
:class:`Steering`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from hypothesis import strategies as st

from tests.parity.driver import Op, Ours, Reply, Upstream, canonical, comparable

#: ``data.draw`` of ``st.data()``.
Draw: TypeAlias = Callable[[st.SearchStrategy[Any]], Any]

TYPES = ["A", "B", "C"]
KEYS = ["k", "n", "tags", "obj", "é"]
# Ints and floats never share a value (difference "number-equality"); 0/1 stand beside
# True/False on purpose.
INTS = [0, 1, 2, -1, 7, 2**62, -(2**62), 2**64 - 1]
FLOATS = [0.5, -1.5, 2.25, 1e-7, 3.5e20]
STRINGS = ["x", "y", "", "日本", 'q"\\', "line\nbreak"]

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(INTS),
    st.sampled_from(FLOATS),
    st.sampled_from(STRINGS),
)


def json_values(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.sampled_from(KEYS), children, max_size=3),
        ),
        max_leaves=max_leaves,
    )


def object_payloads() -> st.SearchStrategy[Any]:
    return st.dictionaries(st.sampled_from(KEYS), json_values(4), max_size=4)


@st.composite
def sub_value(draw: st.DrawFn, value: Any) -> Any:
    """A value contained in ``value`` (a predicate that matches it), sometimes altered."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values(3))
    if isinstance(value, dict):
        keys = draw(st.lists(st.sampled_from(sorted(value)), unique=True)) if value else []
        return {k: draw(sub_value(value[k])) for k in keys}
    if isinstance(value, list):
        items = draw(st.lists(st.sampled_from(value), max_size=2)) if value else []
        return [draw(sub_value(v)) for v in items]
    return value


@dataclass
class Steering:
    """What generation must avoid on one upstream store kind (see ``differences.py``)."""

    kind: str

    @property
    def object_payloads_only(self) -> bool:  # difference "scalar-in-array"
        return self.kind == "postgres"

    @property
    def empty_append_if_needs_fresh_version(self) -> bool:  # difference "empty-append-if-order"
        return self.kind == "memory"


@dataclass
class Program:
    """The state of one generated run: both stores, what was appended, the log of operations."""

    upstream: Upstream
    ours: Ours
    steering: Steering
    payloads: list[Any] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)
    #: Active durable registrations: stream id -> (name, query).
    durables: dict[str, tuple[str, Any]] = field(default_factory=dict)
    log: list[Op] = field(default_factory=list)
    next_id: int = 0

    def run(self, op: Op) -> Reply:
        """Runs ``op`` on both stores and fails unless the answers agree."""
        self.log.append(op)
        theirs = self.upstream.run(op)
        mine = self.ours.run(op)
        if canonical(comparable(theirs)) != canonical(comparable(mine)):
            raise AssertionError(
                "upstream and ours disagree\n"
                f"operations so far (the last one differs):\n{self.script()}\n"
                f"upstream: {json.dumps(theirs, ensure_ascii=False)}\n"
                f"ours:     {json.dumps(mine, ensure_ascii=False)}"
            )
        return theirs

    def script(self) -> str:
        return "\n".join(json.dumps(op, ensure_ascii=False) for op in self.log)

    # -- drawing -------------------------------------------------------------------------

    def draw_payload(self, draw: Draw) -> Any:
        if self.steering.object_payloads_only or draw(st.integers(0, 5)) > 0:
            return draw(object_payloads())
        return draw(json_values())

    def draw_events(self, draw: Draw, min_size: int, max_size: int) -> list[dict[str, Any]]:
        n = draw(st.integers(min_size, max_size))
        return [
            {"type": draw(st.sampled_from(TYPES)), "payload": self.draw_payload(draw)}
            for _ in range(n)
        ]

    def draw_predicate(self, draw: Draw) -> Any:
        if self.payloads and draw(st.booleans()):
            return draw(sub_value(draw(st.sampled_from(self.payloads))))
        if self.steering.object_payloads_only:
            return draw(st.dictionaries(st.sampled_from(KEYS), json_values(3), max_size=2))
        return draw(json_values(3))

    def draw_filter(self, draw: Draw) -> dict[str, Any]:
        types = draw(st.one_of(st.none(), st.lists(st.sampled_from([*TYPES, "Z"]), max_size=2)))
        predicates: list[Any] | None = None
        if draw(st.booleans()):
            predicates = [self.draw_predicate(draw) for _ in range(draw(st.integers(0, 2)))]
        return {"event_types": types, "payload_predicates": predicates}

    def draw_query(self, draw: Draw) -> dict[str, Any]:
        filters: list[dict[str, Any]] | None = None
        shape = draw(st.integers(0, 5))
        if shape == 1:
            filters = []
        elif shape >= 2:
            filters = [self.draw_filter(draw) for _ in range(draw(st.integers(1, 2)))]
        minimum = draw(st.one_of(st.none(), st.integers(0, 8)))
        return {"filters": filters, "min": minimum}

    def new_id(self) -> str:
        self.next_id += 1
        return f"s{self.next_id}"

    # -- steps ---------------------------------------------------------------------------

    def step(self, draw: Draw) -> None:
        kind = draw(
            st.sampled_from(
                [
                    "append",
                    "append",
                    "append_if",
                    "query",
                    "stream",
                    "durable",
                    "deliveries",
                    "unsubscribe",
                ]
            )
        )
        if kind == "append":
            events = self.draw_events(draw, 0 if draw(st.integers(0, 9)) == 0 else 1, 3)
            reply = self.run({"op": "append", "events": events})
            if "ok" in reply:
                self.payloads.extend(e["payload"] for e in events)
        elif kind == "append_if":
            self.step_append_if(draw)
        elif kind == "query":
            self.run({"op": "query", "query": self.draw_query(draw)})
        elif kind == "stream":
            query = None if draw(st.integers(0, 3)) == 0 else self.draw_query(draw)
            sid = self.new_id()
            self.run({"op": "stream", "id": sid, "query": query})
            self.streams.append(sid)
        elif kind == "durable":
            query = None if draw(st.integers(0, 3)) == 0 else self.draw_query(draw)
            name = draw(st.sampled_from(["d1", "d2"]))
            sid = self.new_id()
            reply = self.run({"op": "durable", "id": sid, "name": name, "query": query})
            if "ok" in reply:
                self.streams.append(sid)
                self.durables[sid] = (name, query)
        elif kind == "deliveries" and self.streams:
            self.run({"op": "deliveries", "id": draw(st.sampled_from(self.streams))})
        elif kind == "unsubscribe" and self.streams:
            sid = draw(st.sampled_from(self.streams))
            self.run({"op": "deliveries", "id": sid})
            self.run({"op": "unsubscribe", "id": sid})
            self.streams.remove(sid)
            self.durables.pop(sid, None)

    def step_append_if(self, draw: Draw) -> None:
        context = self.draw_query(draw)
        seen = self.run({"op": "query", "query": context})
        fresh: int | None = seen["ok"]["version"]
        choice = draw(st.sampled_from(["fresh", "fresh", "stale", "none", "zero", "ahead"]))
        expected = {
            "fresh": fresh,
            "stale": None if fresh is None else fresh - 1 or None,
            "none": None,
            "zero": 0,
            "ahead": (fresh or 0) + 1,
        }[choice]
        empty = draw(st.integers(0, 7)) == 0
        if empty and self.steering.empty_append_if_needs_fresh_version:
            expected = fresh
        events = [] if empty else self.draw_events(draw, 1, 2)
        reply = self.run(
            {"op": "append_if", "events": events, "query": context, "expected": expected}
        )
        if "ok" in reply:
            self.payloads.extend(e["payload"] for e in events)

    def finish(self) -> None:
        """Collects every stream's last deliveries."""
        for sid in self.streams:
            self.run({"op": "deliveries", "id": sid})
