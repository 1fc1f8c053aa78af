"""The commands of ``factstr`` (SPEC §14), one function each, called with the parsed arguments.
Each returns the exit status; errors are raised and turned into one line by ``factstr.cli``."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from factstr import EventFilter, EventQuery, EventRecord, EventStore, NewEvent, connect
from factstr._connect import parse_url
from factstr.cli import transfer
from factstr.cli.output import (
    FACT_HEADERS,
    FACT_STYLES,
    Paint,
    Table,
    describe_query,
    fact_object,
    fact_row,
    mask,
    query_object,
    use_colour,
    write_json_line,
)


class UsageError(Exception):
    """Bad arguments found after parsing (exit status 2)."""


def open_store(url: str) -> EventStore:
    try:
        return connect(url)
    except ValueError as error:
        raise UsageError(str(error)) from None


def build_query(args: argparse.Namespace) -> EventQuery:
    """``--type`` values are alternatives, ``--where`` predicates are alternatives, and a fact
    must satisfy both (one filter, as in the API); ``--after`` is the lower bound."""
    types: list[str] | None = args.type or None
    predicates: list[Any] | None = None
    if args.where:
        predicates = []
        for text in args.where:
            try:
                predicates.append(json.loads(text))
            except ValueError:
                raise UsageError(f"--where takes a JSON value, got {text!r}") from None
    filters = None if types is None and predicates is None else [EventFilter(types, predicates)]
    return EventQuery(filters=filters, min_sequence_number=getattr(args, "after", None))


def _head(store: EventStore) -> int:
    return store.query(None, limit=0).head_sequence_number or 0


def _print_facts(args: argparse.Namespace, records: Iterator[EventRecord]) -> None:
    out = sys.stdout
    if args.json:
        for record in records:
            write_json_line(out, fact_object(record))
        return
    table = Table(out, FACT_HEADERS, Paint(use_colour(out)))
    # Aligned a page at a time, so a long listing starts at once and holds little.
    while page := list(itertools.islice(records, 1000)):
        table.write(map(fact_row, page), FACT_STYLES)
    if not table.header_written:
        print("no matching facts", file=sys.stderr)


# ---- info -------------------------------------------------------------------------------------


def _sqlite_details(path: str) -> tuple[int | None, int]:
    """Multi-event batches' extra facts (sparse boundaries, SPEC §9) and the files' size, read
    with Python's own ``sqlite3`` read-only (SPEC §7: safe beside the store)."""
    size = sum(
        os.path.getsize(p) for p in (path, path + "-wal", path + "-shm") if os.path.exists(p)
    )
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute(
                "SELECT COALESCE(SUM(last_sequence_number - first_sequence_number), 0) "
                "FROM append_batches"
            ).fetchone()
        return int(row[0]), size
    except sqlite3.Error:
        return None, size


def _count_batches(store: EventStore, head: int) -> int:
    """Batches, by reading the log's boundaries page by page (nothing kept)."""
    position = batches = 0
    while position < head:
        _lines, scanned_to, _facts, page_batches, _checksum = store._export_page(
            position, transfer.PAGE_FACTS, False
        )
        if scanned_to <= position:
            break
        position, batches = scanned_to, batches + page_batches
    return batches


def info(args: argparse.Namespace) -> int:
    store = open_store(args.url)
    parsed = parse_url(args.url)  # valid: the store opened
    with store:
        head = _head(store)
        size: int | None = None
        batches: int | None = None
        if parsed.kind == "sqlite":
            extra, size = _sqlite_details(parsed.target)
            batches = None if extra is None else head - extra
        else:
            # PostgreSQL: the store's tables with their indexes (None: the role may not read
            # sizes); a memory store has no size.
            size = store._storage_size()
        if batches is None:
            batches = _count_batches(store, head)
        infos = store.durable_streams()
        streams: list[dict[str, Any]] = [
            {
                "name": s.name,
                "query": query_object(s.query),
                "last_processed_sequence_number": s.last_processed_sequence_number,
                "lag": max(head - s.last_processed_sequence_number, 0),
            }
            for s in infos
        ]
    summary: dict[str, Any] = {
        "store": parsed.kind,
        "url": mask(args.url),
        "facts": head,
        "head_sequence_number": head,
        "batches": batches,
        "size_bytes": size,
        "durable_streams": streams,
    }
    if args.json:
        write_json_line(sys.stdout, summary)
        return 0
    paint = Paint(use_colour(sys.stdout))
    out = sys.stdout
    for key, value in (
        ("store", summary["store"]),
        ("url", summary["url"]),
        ("facts", f"{head:,}"),
        ("head", str(head)),
        ("batches", f"{batches:,}"),
        ("size", "unknown" if size is None else _bytes(size)),
        ("durable streams", str(len(streams))),
    ):
        out.write(f"{paint.bold(key + ':'):<{18 + (len(paint.bold('')))}} {value}\n")
    if streams:
        out.write("\n")
        table = Table(out, ("NAME", "CURSOR", "LAG", "QUERY"), paint)
        table.write(
            [
                s["name"],
                str(s["last_processed_sequence_number"]),
                str(s["lag"]),
                describe_query(i.query),
            ]
            for s, i in zip(streams, infos, strict=True)
        )
    return 0


def _bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{size} B"


# ---- query and tail ---------------------------------------------------------------------------


def query(args: argparse.Namespace) -> int:
    event_query = build_query(args)
    with open_store(args.url) as store:
        records: Iterator[EventRecord] = store.iter_query(event_query)
        if args.limit is not None:
            records = itertools.islice(records, args.limit)
        _print_facts(args, records)
    return 0


def _last_facts(store: EventStore, event_query: EventQuery, count: int) -> list[EventRecord]:
    """The last ``count`` matching facts, looking back in growing windows from the head, so a
    short tail of a long log reads little."""
    head = _head(store)
    window = max(count, 1) * 4
    while True:
        low = max(head - window, 0)
        found = list(
            store.iter_query(event_query.with_min_sequence_number(low), page_size=max(count, 1))
        )
        if len(found) >= count or low == 0:
            return found[-count:] if count else []
        window *= 8


def tail(args: argparse.Namespace) -> int:
    event_query = build_query(args)
    out = sys.stdout
    with open_store(args.url) as store:
        # Subscribe first, then read the last facts: no batch committed in between is lost, and
        # the ones already shown are skipped.
        subscription = store.subscribe(event_query) if args.follow else None
        last = _last_facts(store, event_query, args.lines)
        shown = last[-1].sequence_number if last else 0
        table = None
        if args.json:
            for record in last:
                write_json_line(out, fact_object(record))
        else:
            table = Table(out, FACT_HEADERS, Paint(use_colour(out)))
            table.write(map(fact_row, last), FACT_STYLES)
        out.flush()
        if subscription is None:
            return 0
        paint = Paint(use_colour(out))
        try:
            with subscription:
                for batch in subscription:
                    batch = [r for r in batch if r.sequence_number > shown]
                    if not batch:
                        continue
                    first = batch[0].sequence_number
                    if table is None:
                        for record in batch:
                            write_json_line(out, {**fact_object(record), "batch": first})
                    else:
                        span = (
                            f"{first}"
                            if len(batch) == 1
                            else f"{first}..{batch[-1].sequence_number}"
                        )
                        out.write(paint.dim(f"-- batch {span} ({len(batch)} facts)") + "\n")
                        table.write(map(fact_row, batch), FACT_STYLES)
                    out.flush()
        except KeyboardInterrupt:
            # Ctrl-C is how a follow ends: no traceback, a normal exit.
            return 0
    return 0


# ---- append -----------------------------------------------------------------------------------


def _input(path: str | None) -> IO[bytes]:
    if path is None or path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # closed when the process ends
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None


def _new_events(source: IO[bytes]) -> Iterator[NewEvent]:
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise transfer.TransferError(f"line {number}: not JSON") from None
        if not isinstance(item, dict) or "event_type" not in item or "payload" not in item:
            raise transfer.TransferError(
                f'line {number}: expected {{"event_type": ..., "payload": ...}}'
            )
        try:
            yield NewEvent(item["event_type"], item["payload"])
        except (TypeError, ValueError) as error:
            raise transfer.TransferError(f"line {number}: {error}") from None


def append(args: argparse.Namespace) -> int:
    source = _input(args.file)
    with open_store(args.url) as store:
        events = _new_events(source)
        results = []
        if args.batch_size is None:
            batch = list(events)
            if not batch:
                raise transfer.TransferError("no events to append (the input is empty)")
            results.append(store.append(batch))
        else:
            while batch := list(itertools.islice(events, args.batch_size)):
                results.append(store.append(batch))
            if not results:
                raise transfer.TransferError("no events to append (the input is empty)")
    summary = {
        "first_sequence_number": results[0].first_sequence_number,
        "last_sequence_number": results[-1].last_sequence_number,
        "committed_count": sum(r.committed_count for r in results),
        "batches": len(results),
    }
    if args.json:
        write_json_line(sys.stdout, summary)
    else:
        print(
            f"appended {summary['committed_count']} facts in {len(results)} batch(es): "
            f"{summary['first_sequence_number']}..{summary['last_sequence_number']}"
        )
    return 0


# ---- export, import, copy ---------------------------------------------------------------------


def export(args: argparse.Namespace) -> int:
    with open_store(args.url) as store:
        if args.file is None or args.file == "-":
            facts, checksum = transfer.export(store, sys.stdout.buffer)
        else:
            # Written beside and renamed at the end: a failed export leaves no partial file.
            target = Path(args.file)
            partial = target.with_name(target.name + ".partial")
            with open(partial, "wb") as out:
                facts, checksum = transfer.export(store, out)
            partial.replace(target)
    print(
        f"exported {facts:,} facts (checksum {transfer.checksum_text(checksum)})",
        file=sys.stderr,
    )
    return 0


def import_(args: argparse.Namespace) -> int:
    source = _input(args.file)
    with open_store(args.url) as store:
        facts, checksum, durables = transfer.import_(store, source)
    print(
        f"imported {facts:,} facts and {durables} durable streams "
        f"(checksum {transfer.checksum_text(checksum)}, verified against the export's end line)",
        file=sys.stderr,
    )
    return 0


def copy(args: argparse.Namespace) -> int:
    with open_store(args.source) as source, open_store(args.target) as target:
        result = transfer.copy(source, target, args.resume)
    if args.json:
        write_json_line(sys.stdout, result)
    else:
        resumed = f" (resumed after {result['resumed_after']:,})" if result["resumed_after"] else ""
        print(
            f"copied {result['facts']:,} facts{resumed} and {result['durable_streams']} durable "
            f"streams; verified: counts equal, checksum {result['checksum']} equal"
        )
    return 0


# ---- durable ----------------------------------------------------------------------------------


def durable_list(args: argparse.Namespace) -> int:
    with open_store(args.url) as store:
        head = _head(store)
        streams = store.durable_streams()
    if args.json:
        for s in streams:
            write_json_line(
                sys.stdout,
                {
                    "name": s.name,
                    "query": query_object(s.query),
                    "last_processed_sequence_number": s.last_processed_sequence_number,
                    "lag": max(head - s.last_processed_sequence_number, 0),
                },
            )
        return 0
    if not streams:
        print("no durable streams", file=sys.stderr)
        return 0
    table = Table(sys.stdout, ("NAME", "CURSOR", "LAG", "QUERY"), Paint(use_colour(sys.stdout)))
    table.write(
        [
            s.name,
            str(s.last_processed_sequence_number),
            str(max(head - s.last_processed_sequence_number, 0)),
            describe_query(s.query),
        ]
        for s in streams
    )
    return 0


def durable_reset(args: argparse.Namespace) -> int:
    with open_store(args.url) as store:
        store.reset_durable_stream(args.name, args.to)
    print(f"durable stream {args.name!r} reset to {args.to}", file=sys.stderr)
    return 0


def durable_delete(args: argparse.Namespace) -> int:
    with open_store(args.url) as store:
        store.delete_durable_stream(args.name)
    print(f"durable stream {args.name!r} deleted", file=sys.stderr)
    return 0
