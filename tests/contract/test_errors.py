"""SPEC §8: the exception tree, and the errors that carry data."""

from __future__ import annotations

import factstr
import pytest
from factstr import EventQuery

from tests.support import Store, ev

ALL_ERRORS = [
    "FactstrError",
    "EmptyAppendError",
    "ConditionalAppendConflict",
    "BackendError",
    "CommitOutcomeUnknown",
    "StoreClosedError",
    "DurableStreamError",
    "DurableStreamActive",
    "DurableStreamQueryMismatch",
    "DurableReplayError",
]


@pytest.mark.parametrize("name", ALL_ERRORS)
def test_every_error_is_importable_and_a_factstr_error(name: str) -> None:
    cls = getattr(factstr, name)
    assert isinstance(cls, type)
    assert issubclass(cls, factstr.FactstrError)
    assert issubclass(cls, Exception)


def test_hierarchy() -> None:
    assert issubclass(factstr.EmptyAppendError, ValueError)
    for name in ("DurableStreamActive", "DurableStreamQueryMismatch", "DurableReplayError"):
        assert issubclass(getattr(factstr, name), factstr.DurableStreamError)
    for name in (
        "EmptyAppendError",
        "ConditionalAppendConflict",
        "BackendError",
        "StoreClosedError",
    ):
        assert not issubclass(getattr(factstr, name), factstr.DurableStreamError), name
    assert not issubclass(factstr.ConditionalAppendConflict, ValueError)
    # SPEC §2.7: whoever handles BackendError handles an unknown commit outcome too.
    assert issubclass(factstr.CommitOutcomeUnknown, factstr.BackendError)


def test_public_names_of_section_11() -> None:
    for name in (
        "MemoryStore",
        "connect",
        "NewEvent",
        "EventFilter",
        "EventQuery",
        "EventRecord",
        "QueryResult",
        "AppendResult",
        "DurableStream",
        "DurableStreamInfo",
        "EventStream",
        "Subscription",
    ):
        assert hasattr(factstr, name), name


def test_conflict_carries_both_versions(store: Store) -> None:
    store.append([ev("a"), ev("a")])
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([ev("a")], EventQuery.for_event_types(["a"]), 1)
    conflict = info.value
    assert conflict.expected_context_version == 1
    assert conflict.actual_context_version == 2
    assert "1" in str(conflict) and "2" in str(conflict)


def test_conflict_with_none_versions(store: Store) -> None:
    with pytest.raises(factstr.ConditionalAppendConflict) as info:
        store.append_if([ev("a")], EventQuery.all(), 3)
    assert info.value.expected_context_version == 3
    assert info.value.actual_context_version is None


def test_empty_append_is_caught_as_value_error_and_factstr_error(store: Store) -> None:
    with pytest.raises(factstr.FactstrError):
        store.append([])
    with pytest.raises(ValueError):
        store.append_if([], EventQuery.all(), None)
