"""Every known difference between our stores and the FACTSTR 0.5.2 Rust crates: the one list.

``docs/parity.md`` describes the same list for readers. Each entry names the stores where it
shows, what upstream does, what we do, how the differential tests (``test_differential.py``)
keep clear of it, and the test in ``test_differences.py`` that shows it exactly as described.
Everything not listed here must give equal answers (``occurred_at`` values aside: they are
taken from the clock, so they are never compared by value).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The upstream store kinds.
ALL_KINDS: frozenset[str] = frozenset({"memory", "sqlite", "postgres"})


@dataclass(frozen=True)
class Difference:
    #: A short identifier, used by tests and docs.
    key: str
    #: Where our contract says so (SPEC section).
    spec: str
    #: The upstream stores that behave differently from ours.
    kinds: frozenset[str]
    upstream: str
    ours: str
    #: How the generated operation sequences avoid it.
    steering: str
    #: The test (in tests/parity/test_differences.py) that shows the difference.
    test: str


DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        key="number-equality",
        spec="SPEC §10 (1st item), §3",
        kinds=ALL_KINDS,
        upstream=(
            "memory and SQLite match numbers with serde_json's Number ==, so a predicate {'a': 1} "
            "does not match a payload {'a': 1.0}; PostgreSQL's query/append_if use jsonb @> and do "
            "match, but its stream_to and durable replay use the Rust matcher and do not"
        ),
        ours="numbers match by numeric value everywhere: {'a': 1} matches {'a': 1.0}",
        steering="generated floats are never integral (0.5, -1.5, 2.25), so no int equals a float",
        test="test_number_equality",
    ),
    Difference(
        key="scalar-in-array",
        spec="SPEC §10 (1st item), §3",
        kinds=frozenset({"postgres"}),
        upstream="PostgreSQL query/append_if (jsonb @>): a top-level scalar predicate 'x' matches a payload ['x', 'y']",
        ours="a scalar never matches an array",
        steering="on PostgreSQL, generated payloads are JSON objects at the top level",
        test="test_scalar_predicate_against_array_payload",
    ),
    Difference(
        key="empty-append-if-order",
        spec="SPEC §10 (2nd item), §4",
        kinds=frozenset({"memory"}),
        upstream="memory: append_if([], context, stale_version) raises ConditionalAppendConflict (context checked first)",
        ours="EmptyAppendError in every store, before any check",
        steering="on memory, an empty append_if is generated only with the fresh context version",
        test="test_empty_append_if_with_a_stale_version",
    ),
    Difference(
        key="occurred-at-per-batch",
        spec="SPEC §10 (3rd item), §2.5",
        kinds=ALL_KINDS,
        upstream="every event of a batch takes its own now_utc(), with nanoseconds (microseconds when re-read from PostgreSQL)",
        ours="one occurred_at per batch, microsecond precision",
        steering="occurred_at is never compared by value (comparable() drops it)",
        test="test_one_occurred_at_per_batch",
    ),
    Difference(
        key="cross-process-streams",
        spec="SPEC §10 (3rd item), §5",
        kinds=frozenset({"sqlite", "postgres"}),
        upstream="live and durable streams only see batches committed through the same store object",
        ours="streams also see batches committed by other processes and store objects on the same database",
        steering="each differential run has one writer",
        test="test_streams_see_other_writers",
    ),
    Difference(
        key="dropped-stream-handle",
        spec="SPEC §10 (3rd item), §5",
        kinds=ALL_KINDS,
        upstream="dropping the EventStream unsubscribes",
        ours="a registration stays active until unsubscribe() or close(), even when the EventStream is garbage-collected",
        steering="the differential runs keep every EventStream until they unsubscribe it",
        test="test_dropped_stream_handle",
    ),
    Difference(
        key="durable-skip-after-failure",
        spec="SPEC §10 (3rd item), §6",
        kinds=ALL_KINDS,
        upstream=(
            "a durable handler that fails on a live batch is unsubscribed, but batches already queued "
            "for it are still delivered and move the cursor past the failed batch, which is never re-delivered"
        ),
        ours="the stream stops at the failed batch; the cursor stays before it; registering again re-delivers it",
        steering="generated handlers never fail",
        test="test_durable_failure_does_not_skip",
    ),
    Difference(
        key="query-limit",
        spec="SPEC §10 (3rd item), §3",
        kinds=ALL_KINDS,
        upstream="query has no limit",
        ours="query(q, limit=n) returns the first n of the records upstream returns, with the same context version",
        steering="the differential runs never pass limit",
        test="test_query_limit",
    ),
    Difference(
        key="durable-cursor-management",
        spec="SPEC §10 (3rd item), §6",
        kinds=ALL_KINDS,
        upstream="no API to list, reset or delete durable cursors (the parity binary answers 'Unsupported')",
        ours="durable_streams(), reset_durable_stream(), delete_durable_stream(); on SQLite/PostgreSQL they read and write upstream's cursor table",
        steering="the differential runs compare our durable_streams() with upstream's cursor table (SQLite, PostgreSQL)",
        test="test_durable_cursor_listing",
    ),
    Difference(
        key="nul-in-strings",
        spec="SPEC §7 (not listed in §10)",
        kinds=frozenset({"memory", "sqlite"}),
        upstream="memory and SQLite store strings containing U+0000 (PostgreSQL refuses them with a backend failure)",
        ours="refused with ValueError in every store, before anything is written",
        steering="generated strings have no U+0000",
        test="test_nul_in_strings",
    ),
    Difference(
        key="empty-names",
        spec="SPEC §7 (not listed in §10)",
        kinds=ALL_KINDS,
        upstream="an empty event type and an empty durable stream name are accepted",
        ours="refused with ValueError",
        steering="generated event types and names are non-empty",
        test="test_empty_event_type_and_durable_name",
    ),
)

BY_KEY: dict[str, Difference] = {d.key: d for d in DIFFERENCES}
