"""An unclosed store with live registrations (SPEC §5 keeps them running when the store object
is dropped) costs threads, descriptors and PostgreSQL connections until the process ends, so
dropping it warns like an unclosed file: a ``ResourceWarning`` naming ``close()``."""

from __future__ import annotations

import gc
import threading
import warnings
from pathlib import Path

import factstr
import pytest

from tests.conftest import _location, _open_code
from tests.support import Collector, ev


@pytest.fixture
def open_store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Source of an expression opening a store of this kind that no fixture holds."""
    return (
        _open_code(store_kind, _location(store_kind, tmp_path, request)) or "factstr.MemoryStore()"
    )


def _open(code: str) -> factstr.EventStore:
    store: factstr.EventStore = eval(code, {"factstr": factstr})
    return store


def test_dropping_an_unclosed_store_with_a_live_registration_warns(open_store: str) -> None:
    store = _open(open_store)
    seen = Collector()
    stream = store.stream_all(seen)
    store.append([ev("a")])
    seen.wait_records(1)
    shown = repr(store)
    with pytest.warns(ResourceWarning, match=r"close\(\)") as caught:
        del store
        gc.collect()
    assert shown in str(caught[0].message)
    stream.unsubscribe()  # ends the registration, which frees the store


def test_dropping_a_closed_store_or_one_without_registrations_does_not_warn(
    open_store: str,
) -> None:
    closed = _open(open_store)
    closed.stream_all(Collector())
    closed.close()
    idle = _open(open_store)
    idle.append([ev("a")])
    unsubscribed = _open(open_store)
    unsubscribed.stream_all(Collector()).unsubscribe()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del closed, idle
        gc.collect()
    unsubscribed.close()


def test_an_unclosed_postgres_store_lets_its_idle_connections_go_when_dropped(
    store_kind: str, request: pytest.FixtureRequest
) -> None:
    if store_kind != "postgres":
        pytest.skip("connections are PostgreSQL's")
    from tests.postgres_server import PostgresServer

    url: str = request.getfixturevalue("postgres_url")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    database = url.rsplit("/", 1)[1].split("?", 1)[0]

    def connections() -> int:
        return int(
            server.sql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'")
        )

    store = factstr.PostgresStore(url, pool_size=4)
    seen = Collector()
    stream = store.stream_all(seen)

    def query_repeatedly(store: factstr.EventStore) -> None:
        for _ in range(30):
            store.query()

    # Four threads at once open four pooled connections (plus the stream's listener). The store
    # is their argument, not a closure variable: the test deletes its own reference below.
    threads = [threading.Thread(target=query_repeatedly, args=(store,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.append([ev("a")])
    seen.wait_records(1)
    before = connections()
    assert before >= 4
    with pytest.warns(ResourceWarning):
        del store
        gc.collect()
    # The registration still works, on the listener and at most one connection it reads with.
    after = connections()
    assert after <= 2 < before
    stream.unsubscribe()
