"""SPEC §7: passwords never appear in error messages or ``repr``."""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Iterator

import pytest

import factstr
from factstr import NewEvent
from tests.postgres_server import PostgresServer, bootstrap, free_port, postgres_store
from tests.support import Store, run_in_thread

PASSWORD = "s3cret-pw"
CONNECT_DEADLINE = 60.0


def _everything_said(exc: BaseException) -> str:
    """str and repr of the exception and of its causes and contexts, and the formatted traceback."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args)]
        current = current.__cause__ or current.__context__
    parts.append("".join(traceback.format_exception(exc)))
    return "\n".join(parts)


def _failure_of(action: str, url: str) -> BaseException:
    """Runs ``PostgresStore(url)`` (and a query, in case opening is lazy), or ``bootstrap``;
    returns the error it raised, checking the repr of a store that did get constructed."""
    reprs: list[str] = []

    def attempt() -> None:
        if action == "bootstrap":
            bootstrap(url, "never_created").close()
            return
        store: Store = postgres_store(url)
        try:
            reprs.append(repr(store))
            reprs.append(str(store))
            store.query()
        finally:
            store.close()

    thread, errors, _ = run_in_thread(attempt)
    thread.join(CONNECT_DEADLINE)
    assert not thread.is_alive(), f"the attempt hung for {CONNECT_DEADLINE}s"
    for text in reprs:
        assert PASSWORD not in text, text
    assert len(errors) == 1, "expected the connection to fail"
    return errors[0]


@pytest.fixture
def role(store_required: None, server: PostgresServer) -> Iterator[str]:
    """A login role with the password (the trust-auth cluster does not check it)."""
    name = f"u_{uuid.uuid4().hex[:12]}"
    server.sql(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
    yield name
    server.sql(f"DROP ROLE IF EXISTS {name}")


@pytest.mark.parametrize("action", ["open", "bootstrap"])
@pytest.mark.parametrize("where", ["userinfo", "query"])
def test_password_not_in_error_for_a_closed_port(role: str, action: str, where: str) -> None:
    port = free_port()
    if where == "userinfo":
        url = f"postgresql://{role}:{PASSWORD}@127.0.0.1:{port}/db"
    else:
        url = f"postgresql://{role}@127.0.0.1:{port}/db?password={PASSWORD}"
    exc = _failure_of(action, url)
    assert isinstance(exc, factstr.BackendError), repr(exc)
    said = _everything_said(exc)
    assert PASSWORD not in said, said


def test_password_not_in_error_for_a_missing_database(role: str, server: PostgresServer) -> None:
    url = f"postgresql://{role}:{PASSWORD}@127.0.0.1:{server.port}/no_such_database_{uuid.uuid4().hex[:8]}"
    exc = _failure_of("open", url)
    assert isinstance(exc, factstr.BackendError), repr(exc)
    said = _everything_said(exc)
    assert PASSWORD not in said, said


def test_password_not_in_repr_of_a_working_store(url: str, server: PostgresServer) -> None:
    database = url.rsplit("/", 1)[1]
    with postgres_store(server.url_for(database, password=PASSWORD)) as store:
        store.append([NewEvent("a", {})])
        assert PASSWORD not in repr(store)
        assert PASSWORD not in str(store)
    with pytest.raises(factstr.StoreClosedError) as info:
        store.query()
    assert PASSWORD not in _everything_said(info.value)
