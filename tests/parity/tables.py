"""Reading upstream's tables directly (SQLite with ``sqlite3``, PostgreSQL with ``psql``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.postgres_server import PostgresServer


def _cursor_rows(rows: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    out = []
    for name, query_text, cursor in sorted(rows):
        query = json.loads(query_text)
        out.append(
            {
                "name": name,
                "query": {"filters": query["filters"], "min": query["min_sequence_number"]},
                "cursor": int(cursor),
            }
        )
    return out


def sqlite_cursors(path: Path) -> list[dict[str, Any]]:
    """The rows of ``subscriber_cursors`` as the protocol's ``cursors`` answer."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT subscriber_id, event_query, last_processed_sequence_number FROM subscriber_cursors"
        ).fetchall()
    return _cursor_rows(rows)


def sqlite_raw_cursors(path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(path) as db:
        return sorted(
            db.execute(
                "SELECT subscriber_id, event_query, last_processed_sequence_number FROM subscriber_cursors"
            ).fetchall()
        )


def sqlite_batches(path: Path) -> list[tuple[int, int]]:
    with sqlite3.connect(path) as db:
        return sorted(
            db.execute(
                "SELECT first_sequence_number, last_sequence_number FROM append_batches"
            ).fetchall()
        )


def sqlite_metadata(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT key, value FROM store_metadata").fetchall())


def _psql_rows(server: PostgresServer, database: str, statement: str) -> list[list[str]]:
    text = server.sql(f"SELECT json_agg(t) FROM ({statement}) t", database)
    rows = json.loads(text) if text else None
    return [list(r.values()) for r in rows] if rows else []


def pg_cursors(server: PostgresServer, database: str) -> list[dict[str, Any]]:
    """The rows of ``durable_stream_cursors`` as the protocol's ``cursors`` answer."""
    rows = _psql_rows(
        server,
        database,
        "SELECT durable_stream_id, event_query, last_processed_sequence_number FROM durable_stream_cursors",
    )
    return _cursor_rows([(str(a), str(b), int(c)) for a, b, c in rows])


def pg_raw_cursors(server: PostgresServer, database: str) -> list[tuple[str, str, int]]:
    rows = _psql_rows(
        server,
        database,
        "SELECT durable_stream_id, event_query, last_processed_sequence_number FROM durable_stream_cursors",
    )
    return sorted((str(a), str(b), int(c)) for a, b, c in rows)


def pg_batches(server: PostgresServer, database: str) -> list[tuple[int, int]]:
    rows = _psql_rows(
        server, database, "SELECT first_sequence_number, last_sequence_number FROM append_batches"
    )
    return sorted((int(a), int(b)) for a, b in rows)


def pg_metadata(server: PostgresServer, database: str) -> dict[str, str]:
    rows = _psql_rows(server, database, "SELECT key, value FROM store_metadata")
    return {str(k): str(v) for k, v in rows}
