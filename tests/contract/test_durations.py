"""SPEC §7: timeouts and intervals are finite, non-negative numbers of seconds. A bad one raises
``ValueError`` (``TypeError`` for a value that is not a number, ``bool`` included), and a valid
one, however large, never ends in a Rust panic (``PanicException`` is not an ``Exception``, so
no ``except Exception`` would catch it)."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, TypedDict

import factstr
import pytest

from tests.support import Store, ev, seqs_of

#: Values no duration argument accepts, and the exception each must raise.
BAD_SECONDS: list[tuple[object, type[Exception]]] = [
    (1e300, ValueError),  # finite, but beyond any duration the engine can hold
    (math.inf, ValueError),
    (-math.inf, ValueError),
    (math.nan, ValueError),
    (-1, ValueError),
    (-0.5, ValueError),
    (10**400, ValueError),  # an int too large for a float
    (True, TypeError),  # bool is an int in Python, never a duration here
    (False, TypeError),
    ("1", TypeError),
]
BAD_IDS = ["1e300", "inf", "-inf", "nan", "-1", "-0.5", "10**400", "True", "False", "str"]


def _raises(expected: type[Exception], call: Any, *args: Any, **kwargs: Any) -> BaseException:
    """Runs the call and returns what it raised; a ``BaseException`` that is not an
    ``Exception`` (a Rust panic) fails the test instead of propagating."""
    try:
        result = call(*args, **kwargs)
    except Exception as exc:
        assert isinstance(exc, expected), f"expected {expected.__name__}, got {exc!r}"
        return exc
    except BaseException as exc:  # PanicException
        pytest.fail(f"{type(exc).__name__} reached Python: {exc}")
    if hasattr(result, "close"):
        result.close()
    pytest.fail(f"accepted: {result!r}")


@pytest.mark.parametrize(("value", "expected"), BAD_SECONDS, ids=BAD_IDS)
def test_next_batch_refuses_a_bad_timeout(
    store: Store, value: object, expected: type[Exception]
) -> None:
    with store.subscribe() as sub:
        exc = _raises(expected, sub.next_batch, timeout=value)
        assert "timeout" in str(exc)
        # The subscription is unharmed.
        store.append([ev("a")])
        batch = sub.next_batch(timeout=10)
        assert batch is not None and seqs_of(batch) == [1]


@pytest.mark.parametrize("huge", [1e9, 1e18, 1e19])
def test_next_batch_with_a_huge_valid_timeout_returns_a_batch(store: Store, huge: float) -> None:
    """A timeout that means "practically forever" waits like ``None`` does (the deadline
    saturates instead of overflowing the clock)."""
    with store.subscribe() as sub:
        timer = threading.Timer(0.2, lambda: store.append([ev("a")]))
        timer.start()
        try:
            batch = sub.next_batch(timeout=huge)
        finally:
            timer.join()
        assert batch is not None and seqs_of(batch) == [1]


@pytest.mark.parametrize("huge", [1e9, 1e18, 1e19])
def test_next_batch_with_a_huge_timeout_on_a_closed_subscription_returns_none(
    store: Store, huge: float
) -> None:
    sub = store.subscribe()
    sub.close()
    assert sub.next_batch(timeout=huge) is None
    # and closing from another thread ends a wait with a huge timeout
    with store.subscribe() as waiting:
        timer = threading.Timer(0.2, waiting.close)
        timer.start()
        try:
            assert waiting.next_batch(timeout=huge) is None
        finally:
            timer.join()


# -- store options --------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["poll_interval", "busy_timeout"])
@pytest.mark.parametrize(("value", "expected"), BAD_SECONDS, ids=BAD_IDS)
def test_sqlite_duration_options_refuse_bad_values(
    tmp_path: Path, option: str, value: object, expected: type[Exception]
) -> None:
    exc = _raises(expected, factstr.SqliteStore, tmp_path / "events.db", **{option: value})
    assert option in str(exc)


def test_sqlite_busy_timeout_beyond_sqlite_limit_is_a_value_error(tmp_path: Path) -> None:
    """SQLite keeps its busy timeout in milliseconds in a C int (about 24.8 days)."""
    exc = _raises(ValueError, factstr.SqliteStore, tmp_path / "events.db", busy_timeout=1e9)
    assert "busy_timeout" in str(exc)


@pytest.mark.parametrize(
    "options",
    [
        {"busy_timeout": 0},
        {"busy_timeout": 2_000_000},
        {"busy_timeout": 2},
        {"poll_interval": 1e9},
        {"poll_interval": 1e18},
    ],
)
def test_sqlite_large_or_zero_valid_durations_work(
    tmp_path: Path, options: dict[str, float]
) -> None:
    with factstr.SqliteStore(tmp_path / "events.db", **options) as store:  # type: ignore[arg-type]
        with store.subscribe() as sub:
            store.append([ev("a")])
            batch = sub.next_batch(timeout=10)
            assert batch is not None and seqs_of(batch) == [1]


@pytest.mark.parametrize("option", ["connect_timeout", "reconnect_timeout", "statement_timeout"])
@pytest.mark.parametrize(("value", "expected"), BAD_SECONDS, ids=BAD_IDS)
def test_postgres_duration_options_refuse_bad_values(
    postgres_url: str, option: str, value: object, expected: type[Exception]
) -> None:
    exc = _raises(expected, factstr.PostgresStore, postgres_url, **{option: value})
    assert option in str(exc)
    database = postgres_url.rsplit("/", 1)[0]
    exc = _raises(
        expected, factstr.PostgresStore.bootstrap, database, "never_created", **{option: value}
    )
    assert option in str(exc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, ValueError),
        (-1, ValueError),
        (10**400, ValueError),
        (True, TypeError),
        (1.5, TypeError),
        ("4", TypeError),
    ],
    ids=["0", "-1", "10**400", "True", "float", "str"],
)
def test_postgres_pool_size_refuses_bad_values(
    postgres_url: str, value: object, expected: type[Exception]
) -> None:
    exc = _raises(expected, factstr.PostgresStore, postgres_url, pool_size=value)
    assert "pool_size" in str(exc)


class DurationOptions(TypedDict, total=False):
    """The duration options of ``PostgresStore(...)``."""

    connect_timeout: float
    reconnect_timeout: float
    statement_timeout: float


@pytest.mark.parametrize(
    "options",
    [
        {"connect_timeout": 1e9},
        {"connect_timeout": 1e18},
        {"reconnect_timeout": 0},
        {"reconnect_timeout": 1e18},
        {"statement_timeout": 1e18},
    ],
)
def test_postgres_large_or_zero_valid_durations_work(
    postgres_url: str, options: DurationOptions
) -> None:
    with factstr.PostgresStore(postgres_url, **options) as store:
        with store.subscribe() as sub:
            store.append([ev("a")])
            batch = sub.next_batch(timeout=10)
            assert batch is not None and seqs_of(batch) == [1]
