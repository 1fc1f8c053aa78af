"""``export``, ``import`` and ``copy``: a whole log with its sequence numbers, batch boundaries,
``occurred_at`` times and durable cursors, moved in bounded memory.

The export format (JSON lines, version 1), in this order:

1. a header: ``{"factstr_export": 1, "head_sequence_number": H}``;
2. every fact 1..H in order: ``{"sequence_number", "occurred_at", "event_type", "payload",
   "batch_last_sequence_number"}`` (the last sequence number of the batch the fact was committed
   in: a batch is the run of facts that share it; ``occurred_at`` is RFC 3339 UTC, microseconds);
3. every durable stream: ``{"durable_stream": name, "query": {...},
   "last_processed_sequence_number": n}`` (the query as the upstream crates store it);
4. an end line: ``{"factstr_export_end": {"facts": H, "durable_streams": k, "checksum": "..."}}``.

An import without the end line (a cut pipe, a crashed export) fails, and so does one whose facts
do not add up to the end line's count and checksum. The checksum (16 hex digits) is the sum mod
2**64 of FNV-1a over (sequence number, event type, canonical payload) of every fact; it is
computed in the engine (``rust/factstr-python/src/transfer.rs``).

Facts travel as bytes through the engine's private paths (``_export_page``, ``_restorer``): they
are never Python objects on the way, and a page (about ``PAGE_FACTS`` facts) is all that is held.

An interrupted import or copy leaves the target holding a prefix of the log made of whole
batches (each write is one transaction), and no durable streams (they are written last). Such a
target is refused by a plain ``import``/``copy`` (it is not empty); ``copy --resume`` checks that
the prefix equals the source's (count and checksum) and continues after it.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any, TypeVar

from factstr import EventStore
from factstr.cli.output import query_from_object, query_object
from factstr.cli.progress import Progress

FORMAT_VERSION = 1
#: Facts per export page (held in memory at once, as bytes).
PAGE_FACTS = 10_000
#: Facts per write of an import (one transaction each).
WRITE_FACTS = 20_000
#: Bytes of input read at once by an import.
READ_BYTES = 1 << 20

_MASK = (1 << 64) - 1

_Item = TypeVar("_Item")


def _read_ahead(pages: Iterator[_Item], depth: int = 2) -> Iterator[_Item]:
    """``pages``, produced by a thread of their own up to ``depth`` pages ahead of the consumer.

    The engine's page reads and writes release the GIL, so reading the source overlaps with
    writing the target (a ``copy`` otherwise waits for one while doing the other); at most
    ``depth + 1`` pages are held, so memory stays bounded. An error of the reader is raised to
    the consumer; a consumer that stops early stops the reader (a daemon thread: it never holds
    the process open).
    """
    slots: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        slots.put((True, page), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((False, None))
        except BaseException as error:  # handed to the consumer, raised there
            slots.put((False, error))

    reader = threading.Thread(target=produce, name="factstr-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            more, item = slots.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()


class TransferError(Exception):
    """A refused or failed export, import or copy (exit status 1)."""


def checksum_text(checksum: int) -> str:
    return f"{checksum & _MASK:016x}"


def _head(store: EventStore) -> int:
    return store.query(None, limit=0).head_sequence_number or 0


def _export_lines(store: EventStore, after: int, head: int) -> Iterator[tuple[bytes, int, int]]:
    """``(lines, facts, checksum)`` pages of the facts after ``after`` up to ``head``."""
    position = after
    while position < head:
        lines, scanned_to, facts, _batches, checksum = store._export_page(
            position, PAGE_FACTS, True
        )
        if scanned_to <= position:
            raise TransferError(f"the log could not be read past sequence number {position}")
        position = scanned_to
        assert lines is not None
        yield lines, facts, checksum


def _durable_lines(store: EventStore) -> list[dict[str, Any]]:
    return [
        {
            "durable_stream": info.name,
            "query": query_object(info.query),
            "last_processed_sequence_number": info.last_processed_sequence_number,
        }
        for info in store.durable_streams()
    ]


def export(store: EventStore, out: IO[bytes]) -> tuple[int, int]:
    """Writes the whole log and its cursors; returns ``(facts, checksum)``."""
    head = _head(store)
    out.write(_json_line({"factstr_export": FORMAT_VERSION, "head_sequence_number": head}))
    progress = Progress("export", head)
    total = checksum = 0
    try:
        for lines, facts, page_checksum in _export_lines(store, 0, head):
            out.write(lines)
            total += facts
            checksum = (checksum + page_checksum) & _MASK
            progress.update(total)
    finally:
        progress.close()
    durables = _durable_lines(store)
    for line in durables:
        out.write(_json_line(line))
    out.write(
        _json_line(
            {
                "factstr_export_end": {
                    "facts": total,
                    "durable_streams": len(durables),
                    "checksum": checksum_text(checksum),
                }
            }
        )
    )
    out.flush()
    return total, checksum


def _json_line(value: Any) -> bytes:
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def refuse_unless_empty(store: EventStore, what: str) -> None:
    head = _head(store)
    durables = store.durable_streams()
    if head or durables:
        raise TransferError(
            f"the {what} is not empty ({head:,} facts, {len(durables)} durable streams): "
            "import only into an empty store (an interrupted copy continues with copy --resume)"
        )


def import_(store: EventStore, source: IO[bytes]) -> tuple[int, int, int]:
    """Reads an export into an empty store; returns ``(facts, checksum, durable streams)``."""
    refuse_unless_empty(store, "target")
    header_line = source.readline()
    try:
        header = json.loads(header_line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("factstr_export") != FORMAT_VERSION:
        raise TransferError("the input is not a factstr export (its first line is no header)")
    head = header.get("head_sequence_number")
    restorer = store._restorer(WRITE_FACTS)
    durables: list[dict[str, Any]] = []
    end: dict[str, Any] | None = None
    progress = Progress("import", head if isinstance(head, int) else None)
    try:
        while chunk := source.readlines(READ_BYTES):
            if end is not None:
                raise TransferError("the input goes on after its end line")
            for line in restorer.feed(b"".join(chunk)):
                other = json.loads(line)
                if "durable_stream" in other:
                    durables.append(other)
                elif "factstr_export_end" in other:
                    end = other["factstr_export_end"]
                else:
                    raise TransferError(f"unknown line in the export: {line[:80]!r}")
            progress.update(restorer.facts_fed())
        facts, checksum, _last = restorer.finish()
    finally:
        progress.close()
    if end is None:
        raise TransferError(
            f"the input ends before the export's end line: it is incomplete "
            f"(the target now holds facts 1..{facts:,} and no durable streams)"
        )
    if end.get("facts") != facts or end.get("checksum") != checksum_text(checksum):
        raise TransferError(
            f"the facts read ({facts:,}, checksum {checksum_text(checksum)}) differ from the "
            f"export's end line ({end.get('facts')}, checksum {end.get('checksum')})"
        )
    _restore_durables(store, durables, facts)
    return facts, checksum, len(durables)


def _restore_durables(store: EventStore, durables: list[dict[str, Any]], head: int) -> None:
    for line in durables:
        name = line.get("durable_stream")
        cursor = line.get("last_processed_sequence_number")
        if not isinstance(name, str) or not isinstance(cursor, int):
            raise TransferError(f"a durable stream line is malformed: {line}")
        if cursor > head:
            print(
                f"factstr: warning: durable stream {name!r} has cursor {cursor}, beyond the "
                f"log's head {head}",
                file=sys.stderr,
            )
        store._restore_durable_stream(name, query_from_object(line.get("query")), cursor)


def log_checksum(store: EventStore, through: int, what: str) -> tuple[int, int]:
    """``(facts, checksum)`` of facts 1..``through`` (query pages: bounded memory)."""
    position = facts = checksum = 0
    progress = Progress(f"verify {what}", through)
    try:
        while position < through:
            last, count, page = store._checksum_page(position, min(PAGE_FACTS, through - position))
            if count == 0:
                break
            position, facts, checksum = last, facts + count, (checksum + page) & _MASK
            progress.update(facts)
    finally:
        progress.close()
    return facts, checksum


class _TargetChecksum:
    """``(facts, checksum)`` of the target's log, read back in a thread of its own while the copy
    goes on: each page of committed facts is read once it is committed (facts are only ever
    appended, so a committed page never changes), overlapping the reading back with the writing.
    ``result()`` reads what is left once the copy has finished."""

    #: Seconds between looks at the target's head while the reader has caught up.
    POLL = 0.05

    def __init__(self, target: EventStore) -> None:
        self.target = target
        self.finished = threading.Event()
        self.facts = self.checksum = self.position = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="factstr-verify", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                # Looked at before the head is read: once set, that head is the final one.
                last_round = self.finished.is_set()
                head = _head(self.target)
                while self.position < head:
                    last, count, page = self.target._checksum_page(
                        self.position, min(PAGE_FACTS, head - self.position)
                    )
                    if count == 0:
                        break
                    self.position, self.facts = last, self.facts + count
                    self.checksum = (self.checksum + page) & _MASK
                if last_round:
                    return
                self.finished.wait(self.POLL)
        except BaseException as error:  # raised by result()
            self.error = error

    def result(self) -> tuple[int, int]:
        self.finished.set()
        progress = Progress("verify target", None)
        try:
            while self.thread.is_alive():
                self.thread.join(0.2)
                progress.update(self.facts)
        finally:
            progress.close()
        if self.error is not None:
            raise self.error
        return self.facts, self.checksum


def copy(source: EventStore, target: EventStore, resume: bool) -> dict[str, Any]:
    """Copies the log and its cursors, then verifies the target against the source."""
    head = _head(source)
    start = 0
    checksum = 0
    if resume:
        start = _head(target)
        if target.durable_streams():
            raise TransferError(
                "the target has durable streams already: that copy finished; nothing to resume"
            )
        if start > head:
            raise TransferError(f"the target ({start:,} facts) is ahead of the source ({head:,})")
        source_prefix = log_checksum(source, start, "source prefix")
        if source_prefix != log_checksum(target, start, "target prefix"):
            raise TransferError(
                f"the target's facts 1..{start:,} differ from the source's: cannot resume"
            )
        checksum = source_prefix[1]
    else:
        refuse_unless_empty(target, "target")
    restorer = target._restorer(WRITE_FACTS)
    target_checksum = _TargetChecksum(target)
    progress = Progress("copy", head)
    try:
        progress.update(start)
        for lines, _facts, page_checksum in _read_ahead(_export_lines(source, start, head)):
            restorer.feed(lines)
            checksum = (checksum + page_checksum) & _MASK
            progress.update(start + restorer.facts_fed())
        copied = start + restorer.finish()[0]
    finally:
        # Every fact is written (or the copy failed): the reader's next look is its last.
        target_checksum.finished.set()
        progress.close()
    durables = _durable_lines(source)
    _restore_durables(target, durables, copied)
    # Against what was copied: facts a writer added to the source meanwhile may be in the last
    # page read (stop the source's writers for a move).
    facts, read_back = target_checksum.result()
    if facts != copied or read_back != checksum:
        raise TransferError(
            f"verification failed: the source has {copied:,} facts (checksum "
            f"{checksum_text(checksum)}), the target {facts:,} (checksum "
            f"{checksum_text(read_back)})"
        )
    return {
        "facts": facts,
        "resumed_after": start,
        "durable_streams": len(durables),
        "checksum": checksum_text(checksum),
        "verified": True,
    }
