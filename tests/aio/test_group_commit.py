"""Group commit through ``factstr.aio``: tasks' appends run on the engine threads, which call the
same core store as threads do, so concurrent tasks share transactions too."""

from __future__ import annotations

import asyncio
from typing import Any

import factstr
import pytest
from factstr import EventQuery, NewEvent, aio


def ev(event_type: str, **payload: Any) -> NewEvent:
    return NewEvent(event_type, payload)


@pytest.mark.asyncio
async def test_concurrent_tasks_appending_get_their_own_consecutive_ranges(aio_url: str) -> None:
    """Tasks' appends share transactions (group commit on the engine threads), yet each gets its
    own batch and range, and the conditions are checked in commit order: of the racing
    ``append_if`` calls on one context exactly one wins."""
    async with aio.connect(aio_url) as store:
        sizes = [1 + i % 3 for i in range(60)]
        results = await asyncio.gather(
            *(
                store.append([ev("t", task=i, k=k) for k in range(size)])
                for i, size in enumerate(sizes)
            )
        )
        covered = sorted(
            n for r in results for n in range(r.first_sequence_number, r.last_sequence_number + 1)
        )
        assert covered == list(range(1, sum(sizes) + 1))
        records = (await store.query()).event_records
        for i, (result, size) in enumerate(zip(results, sizes, strict=True)):
            assert result.committed_count == size
            batch = records[result.first_sequence_number - 1 : result.last_sequence_number]
            assert [r.payload for r in batch] == [{"task": i, "k": k} for k in range(size)]
        orders = EventQuery.for_event_types(["order"])
        version = (await store.query(orders)).current_context_version
        raced = await asyncio.gather(
            *(store.append_if([ev("order", task=i)], orders, version) for i in range(8)),
            return_exceptions=True,
        )
        won = [r for r in raced if isinstance(r, factstr.AppendResult)]
        assert len(won) == 1
        assert all(isinstance(r, factstr.ConditionalAppendConflict) for r in raced if r not in won)
