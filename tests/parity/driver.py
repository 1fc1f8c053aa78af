"""Running one operation against an upstream store (the ``factstr-parity`` binary) or ours.

Both runners take the same operations (JSON-shaped dicts, the protocol documented in
``rust/factstr-parity/src/main.rs``) and answer in the same shape: ``{"ok": value}`` or
``{"error": {"kind": ..., ...}}``. :func:`comparable` then drops what is allowed to differ
(``occurred_at`` values, error messages) so that two answers can be compared with ``==``.

Numbers: an answer is compared through :func:`canonical`, which keeps ``1``, ``1.0`` and
``True`` apart (Python's ``==`` does not).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any, TypeAlias

import factstr
from factstr import EventFilter, EventQuery, NewEvent

from tests.processes import end_process
from tests.support import Store

#: One operation or one answer: a JSON object.
Op: TypeAlias = dict[str, Any]
Reply: TypeAlias = dict[str, Any]

#: How long one operation may take before the test fails.
OP_DEADLINE = 60.0

#: How long ``deliveries`` waits for our streams to receive what they should.
DELIVERY_DEADLINE = 10.0


# ---- values ---------------------------------------------------------------------------------


def to_query(query: Any) -> EventQuery:
    """An :class:`EventQuery` from the protocol's query object."""
    filters = query.get("filters")
    return EventQuery(
        None
        if filters is None
        else [EventFilter(f.get("event_types"), f.get("payload_predicates")) for f in filters],
        query.get("min"),
    )


def from_query(query: EventQuery) -> dict[str, Any]:
    """The protocol's query object for an :class:`EventQuery`."""
    filters = query.filters
    return {
        "filters": None
        if filters is None
        else [
            {"event_types": f.event_types, "payload_predicates": f.payload_predicates}
            for f in filters
        ],
        "min": query.min_sequence_number,
    }


def record_json(record: factstr.EventRecord) -> dict[str, Any]:
    return {
        "seq": record.sequence_number,
        "type": record.event_type,
        "payload": record.payload,
        "at": record.occurred_at.isoformat(),
    }


def batch_json(batch: list[factstr.EventRecord]) -> list[dict[str, Any]]:
    return [record_json(r) for r in batch]


def new_events(events: list[dict[str, Any]]) -> list[NewEvent]:
    return [NewEvent(e["type"], e["payload"]) for e in events]


def canonical(value: Any) -> str:
    """A text that differs whenever two JSON values differ, including ``1`` vs ``1.0`` vs ``True``."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def comparable(reply: Reply) -> Reply:
    """``reply`` without the parts allowed to differ: ``at`` of records and error messages.

    Error kinds of durable streams are unified: upstream reports a query mismatch and a name
    already active as ``BackendFailure`` with a message, ours raises dedicated exceptions.
    """
    if "error" in reply:
        error = dict(reply["error"])
        message = str(error.pop("message", ""))
        if error["kind"] == "BackendFailure":
            if "resumed with a different query" in message:
                error["kind"] = "DurableQueryMismatch"
            elif "is already active" in message:
                error["kind"] = "DurableActive"
        return {"error": error}
    return {"ok": _strip_at(reply["ok"])}


def _strip_at(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_at(v) for k, v in value.items() if not (k == "at" and "seq" in value)}
    if isinstance(value, list):
        return [_strip_at(v) for v in value]
    return value


def error_reply(exc: BaseException) -> Reply:
    """Our exception as the protocol's error object."""
    if isinstance(exc, factstr.EmptyAppendError):
        return {"error": {"kind": "EmptyAppend"}}
    if isinstance(exc, factstr.ConditionalAppendConflict):
        return {
            "error": {
                "kind": "Conflict",
                "expected": exc.expected_context_version,
                "actual": exc.actual_context_version,
            }
        }
    if isinstance(exc, factstr.DurableStreamQueryMismatch):
        return {"error": {"kind": "DurableQueryMismatch", "message": str(exc)}}
    if isinstance(exc, factstr.DurableStreamActive):
        return {"error": {"kind": "DurableActive", "message": str(exc)}}
    if isinstance(exc, factstr.FactstrError):
        return {"error": {"kind": "BackendFailure", "message": f"{type(exc).__name__}: {exc}"}}
    raise exc


# ---- upstream -------------------------------------------------------------------------------


def _pump(stream: IO[str], sink: queue.Queue[str | None]) -> None:
    try:
        for line in stream:
            sink.put(line.rstrip("\n"))
    except (OSError, ValueError):
        pass
    finally:
        sink.put(None)


class Upstream:
    """One ``factstr-parity`` process with one open upstream store."""

    def __init__(self, binary: Path, open_line: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [str(binary)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "RUST_BACKTRACE": "1"},
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._errors: queue.Queue[str | None] = queue.Queue()
        self._pumps = [
            threading.Thread(target=_pump, args=(self.proc.stdout, self._lines), daemon=True),
            threading.Thread(target=_pump, args=(self.proc.stderr, self._errors), daemon=True),
        ]
        for pump in self._pumps:
            pump.start()
        opened = self.request(open_line)
        if "ok" not in opened:
            self.kill()
            raise AssertionError(f"upstream could not open {open_line}: {opened}")

    def stderr_text(self) -> str:
        lines: list[str] = []
        while True:
            try:
                line = self._errors.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                lines.append(line)
        return "\n".join(lines)

    def send(self, line: dict[str, Any]) -> None:
        """Sends one line without waiting for its answer (see :meth:`receive`)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(line) + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float = OP_DEADLINE) -> Reply:
        try:
            text = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"upstream did not answer within {timeout}s\n{self.stderr_text()}"
            ) from None
        if text is None:
            self.proc.wait(timeout=10)
            time.sleep(0.1)
            raise AssertionError(f"upstream exited ({self.proc.returncode}):\n{self.stderr_text()}")
        reply: Reply = json.loads(text)
        return reply

    def request(self, line: dict[str, Any], timeout: float = OP_DEADLINE) -> Reply:
        self.send(line)
        return self.receive(timeout)

    def run(self, op: Op) -> Reply:
        return self.request(op)

    def close(self) -> None:
        """Closes the store (``close``) and waits for the process to end."""
        if self.proc.poll() is None:
            reply = self.request({"op": "close"})
            assert reply == {"ok": None}, reply
            self.proc.wait(timeout=OP_DEADLINE)
            assert self.proc.returncode == 0, (
                f"upstream exited with {self.proc.returncode}:\n{self.stderr_text()}"
            )
        self.kill()

    def kill(self) -> None:
        end_process(self.proc, self._pumps, OP_DEADLINE)


# ---- ours -----------------------------------------------------------------------------------


class _Inbox:
    """A handler that keeps every batch it receives."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[list[factstr.EventRecord]] = []

    def __call__(self, batch: list[factstr.EventRecord]) -> None:
        with self.lock:
            self.batches.append(list(batch))

    def take(self) -> list[list[factstr.EventRecord]]:
        with self.lock:
            taken, self.batches = self.batches, []
            return taken

    def highest(self) -> int:
        with self.lock:
            return max((b[-1].sequence_number for b in self.batches if b), default=0)


class _Registration:
    def __init__(
        self, stream: factstr.EventStream, inbox: _Inbox, query: EventQuery | None, since: int
    ) -> None:
        self.stream = stream
        self.inbox = inbox
        self.query = query
        #: The last sequence number committed when the registration (and its replay) was done.
        self.since = since
        #: The highest sequence number ``deliveries`` has already handed out.
        self.taken = since


class Ours:
    """One of our stores, driven with the same operations as :class:`Upstream`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.streams: dict[str, _Registration] = {}

    def _last_committed(self) -> int:
        version = self.store.query().current_context_version
        return 0 if version is None else version

    def run(self, op: Op) -> Reply:
        try:
            return {"ok": self._run(op)}
        except factstr.FactstrError as exc:
            return error_reply(exc)

    def _run(self, op: Op) -> Any:
        name = op["op"]
        if name == "append":
            result = self.store.append(new_events(op["events"]))
            return {
                "first": result.first_sequence_number,
                "last": result.last_sequence_number,
                "count": result.committed_count,
            }
        if name == "append_if":
            result = self.store.append_if(
                new_events(op["events"]), to_query(op["query"]), op.get("expected")
            )
            return {
                "first": result.first_sequence_number,
                "last": result.last_sequence_number,
                "count": result.committed_count,
            }
        if name == "query":
            answer = self.store.query(to_query(op["query"]))
            return {
                "records": batch_json(answer.event_records),
                "last": answer.last_returned_sequence_number,
                "version": answer.current_context_version,
            }
        if name in ("stream", "durable"):
            sid: str = op["id"]
            assert sid not in self.streams, f"stream id {sid} reused"
            query = None if op.get("query") is None else to_query(op["query"])
            inbox = _Inbox()
            if name == "stream":
                stream = (
                    self.store.stream_all(inbox)
                    if query is None
                    else self.store.stream_to(query, inbox)
                )
                self.streams[sid] = _Registration(stream, inbox, query, self._last_committed())
                return {"id": sid}
            durable = op["name"]
            if query is None:
                stream = self.store.stream_all_durable(durable, inbox)
            else:
                stream = self.store.stream_to_durable(durable, query, inbox)
            replay = inbox.take()
            self.streams[sid] = _Registration(stream, inbox, query, self._last_committed())
            return {"id": sid, "replay": [batch_json(b) for b in replay]}
        if name == "deliveries":
            registration = self.streams[op["id"]]
            target = self._delivery_target(registration)
            deadline = time.monotonic() + DELIVERY_DEADLINE
            while registration.inbox.highest() < target and time.monotonic() < deadline:
                time.sleep(0.002)
            registration.taken = max(registration.taken, target)
            return {"batches": [batch_json(b) for b in registration.inbox.take()]}
        if name == "unsubscribe":
            self.streams.pop(op["id"]).stream.unsubscribe()
            return None
        if name == "cursors":
            return [
                {
                    "name": info.name,
                    "query": from_query(info.query),
                    "cursor": info.last_processed_sequence_number,
                }
                for info in sorted(self.store.durable_streams(), key=lambda i: i.name)
            ]
        raise AssertionError(f"unknown op {name}")

    def _delivery_target(self, registration: _Registration) -> int:
        """The highest sequence number the stream must have received: the last fact matching its
        filters committed after what it has received so far (our own matching decides which;
        if our stream then delivers something else, the answers differ and the test says so)."""
        filters = None if registration.query is None else registration.query.filters
        matching = self.store.query(EventQuery(filters, registration.taken))
        return matching.last_returned_sequence_number or 0

    def close(self) -> None:
        for registration in self.streams.values():
            registration.stream.unsubscribe()
        self.streams.clear()
        if not self.store.closed:
            self.store.close()
