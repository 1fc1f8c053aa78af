"""What the command prints: facts and rows as aligned tables (colour only on a terminal, and
never with ``NO_COLOR`` set) or as JSON lines (``--json``), and how values become text.

Only data goes to stdout; messages, progress and errors go to stderr, so that
``factstr export a | factstr import b`` and ``factstr query ... --json | jq`` work.

JSON lines (stable keys, documented in the README):

- a fact: ``{"sequence_number", "occurred_at", "event_type", "payload"}``; ``tail --follow`` adds
  ``"batch"``: the sequence number of the first fact of the delivery it came in;
- a durable stream: ``{"name", "query", "last_processed_sequence_number", "lag"}``;
- ``info``: one object (see ``commands.info``); ``append``: ``{"first_sequence_number",
  "last_sequence_number", "committed_count"}``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from factstr import EventFilter, EventQuery, EventRecord

_PASSWORD_IN_URL = re.compile(r"(://[^:/?#@\s]*:)[^@/\s]*@")
_PASSWORD_PARAMETER = re.compile(r"(password=)[^&\s]*", re.IGNORECASE)


def mask(text: str) -> str:
    """``text`` with every password of a URL or connection string replaced by ``***``."""
    return _PASSWORD_PARAMETER.sub(r"\1***", _PASSWORD_IN_URL.sub(r"\1***@", text))


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and not when ``NO_COLOR`` is set (https://no-color.org) or the
    terminal is dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


class Paint:
    """ANSI colours, or nothing when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def type(self, text: str) -> str:
        return self._wrap("36", text)


def timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with six fraction digits and ``Z`` (the form of the export format)."""
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def fact_object(record: EventRecord) -> dict[str, Any]:
    return {
        "sequence_number": record.sequence_number,
        "occurred_at": timestamp(record.occurred_at),
        "event_type": record.event_type,
        "payload": record.payload,
    }


def query_object(query: EventQuery) -> dict[str, Any]:
    """A query as JSON, in the form the upstream crates store it in their cursor tables."""
    filters = query.filters
    return {
        "filters": None
        if filters is None
        else [
            {"event_types": f.event_types, "payload_predicates": f.payload_predicates}
            for f in filters
        ],
        "min_sequence_number": query.min_sequence_number,
    }


def query_from_object(value: Any) -> EventQuery:
    """The inverse of ``query_object``; ``ValueError`` for anything else."""
    if not isinstance(value, dict):
        raise ValueError("a durable stream's query must be a JSON object")
    raw_filters = value.get("filters")
    filters: list[EventFilter] | None = None
    if raw_filters is not None:
        if not isinstance(raw_filters, list) or not all(isinstance(f, dict) for f in raw_filters):
            raise ValueError("a query's filters must be a list of objects")
        filters = [
            EventFilter(
                event_types=f.get("event_types"), payload_predicates=f.get("payload_predicates")
            )
            for f in raw_filters
        ]
    return EventQuery(filters=filters, min_sequence_number=value.get("min_sequence_number"))


def describe_query(query: EventQuery) -> str:
    """A short, readable form of a query for tables."""
    if not query.filters:
        return "all" if query.filters is None else "nothing"
    parts = []
    for f in query.filters:
        types = "any type" if f.event_types is None else "|".join(f.event_types) or "no type"
        if f.payload_predicates is None:
            parts.append(types)
        else:
            parts.append(f"{types} where {' or '.join(map(compact_json, f.payload_predicates))}")
    return " or ".join(parts)


def write_json_line(out: TextIO, value: Any) -> None:
    out.write(compact_json(value))
    out.write("\n")


class Table:
    """Rows printed with aligned columns; the last column is cut to the terminal's width (on a
    terminal only: in a pipe every value is whole)."""

    def __init__(self, out: TextIO, headers: Sequence[str], paint: Paint) -> None:
        self.out = out
        self.headers = list(headers)
        self.paint = paint
        self.widths = [len(h) for h in headers]
        self.header_written = False
        self.terminal_width = shutil.get_terminal_size().columns if out.isatty() else 0

    def write(self, rows: Iterable[Sequence[str]], styles: Sequence[str] = ()) -> None:
        """Writes ``rows``, aligned among themselves and with the rows written before."""
        rows = [list(r) for r in rows]
        for row in rows:
            for i, cell in enumerate(row[:-1]):
                self.widths[i] = max(self.widths[i], len(cell))
        if not self.header_written:
            self.header_written = True
            self.out.write(self.paint.bold(self._line(self.headers)) + "\n")
        for row in rows:
            self.out.write(self._styled(self._line(row), row, styles) + "\n")

    def _line(self, row: Sequence[str]) -> str:
        cells = [cell.ljust(self.widths[i]) for i, cell in enumerate(row[:-1])]
        line = "  ".join([*cells, row[-1]]) if row else ""
        if self.terminal_width and len(line) > self.terminal_width:
            line = line[: max(self.terminal_width - 1, 0)] + "…"
        return line.rstrip()

    def _styled(self, line: str, row: Sequence[str], styles: Sequence[str]) -> str:
        if not self.paint.enabled or "type" not in styles:
            return line
        column = styles.index("type")
        start = sum(self.widths[i] + 2 for i in range(column))
        end = start + len(row[column])
        return line[:start] + self.paint.type(line[start:end]) + line[end:]


FACT_HEADERS = ("SEQ", "OCCURRED_AT", "TYPE", "PAYLOAD")
FACT_STYLES = ("", "", "type", "")


def fact_row(record: EventRecord) -> list[str]:
    return [
        str(record.sequence_number),
        timestamp(record.occurred_at),
        record.event_type,
        compact_json(record.payload),
    ]


def stdout() -> TextIO:
    return sys.stdout


def stderr() -> TextIO:
    return sys.stderr
