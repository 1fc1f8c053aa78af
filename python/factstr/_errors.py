"""The exception tree of factstr (SPEC §8). The engine raises these classes."""

from __future__ import annotations

__all__ = [
    "BackendError",
    "CommitOutcomeUnknown",
    "ConditionalAppendConflict",
    "DurableReplayError",
    "DurableStreamActive",
    "DurableStreamError",
    "DurableStreamQueryMismatch",
    "EmptyAppendError",
    "FactstrError",
    "StoreClosedError",
]


class FactstrError(Exception):
    """Base class of every error factstr raises on purpose."""


class EmptyAppendError(FactstrError, ValueError):
    """`append` or `append_if` got no events; nothing was written."""


class ConditionalAppendConflict(FactstrError):
    """`append_if` found another context version than expected; nothing was written."""

    expected_context_version: int | None
    actual_context_version: int | None

    def __init__(
        self, expected_context_version: int | None, actual_context_version: int | None
    ) -> None:
        self.expected_context_version = expected_context_version
        self.actual_context_version = actual_context_version
        super().__init__(
            f"conditional append conflict: expected context version {expected_context_version}, "
            f"actual {actual_context_version}"
        )

    def __reduce__(self) -> tuple[type[ConditionalAppendConflict], tuple[int | None, int | None]]:
        return (type(self), (self.expected_context_version, self.actual_context_version))


class BackendError(FactstrError):
    """The database failed (connection lost, disk full, locked too long, damaged file)."""


class CommitOutcomeUnknown(BackendError):
    """The connection to the database broke (or timed out) after an append's commit was sent: the
    batch may or may not have been written (SPEC §2.7). Query to find out, or retry with an
    idempotency key."""


class StoreClosedError(FactstrError):
    """The store was closed; open a new one."""


class DurableStreamError(FactstrError):
    """A durable stream cannot be used as asked (for example, an unknown name)."""


class DurableStreamActive(DurableStreamError):
    """Another registration, in this or another process, holds this durable name."""


class DurableStreamQueryMismatch(DurableStreamError):
    """The durable name is stored with a different query."""


class DurableReplayError(DurableStreamError):
    """The handler raised while a durable stream replayed; the cause is the handler's exception."""
