"""SPEC §7: passwords never appear in error messages or ``repr``."""

from __future__ import annotations

import subprocess
import time
import traceback
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import factstr
import pytest
from factstr import NewEvent

from tests.postgres.conftest import MakeDatabase
from tests.postgres_server import PostgresServer, ThrowawayCluster, free_port
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
            factstr.PostgresStore.bootstrap(url, "never_created").close()
            return
        store: Store = factstr.PostgresStore(url)
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
def role(server: PostgresServer) -> Iterator[str]:
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
    with factstr.PostgresStore(server.url_for(database, password=PASSWORD)) as store:
        store.append([NewEvent("a", {})])
        assert PASSWORD not in repr(store)
        assert PASSWORD not in str(store)
    with pytest.raises(factstr.StoreClosedError) as info:
        store.query()
    assert PASSWORD not in _everything_said(info.value)


# -- every form of URL and connection string (issue 10, item 6) ------------------------------

#: A password with every character that has a meaning in a URL or a key=value string.
ODD_PASSWORD = "S3cret a'b@c/d?e&f=g%h\\i"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _key_value_literal(text: str) -> str:
    """libpq's quoting of a key=value connection string value."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _forms(user: str, password: str, port: int, database: str, extra: str = "") -> dict[str, str]:
    """The same connection written in each form a user may try."""
    encoded = quote(password, safe="")
    query = f"?{extra}" if extra else ""
    amp = f"&{extra}" if extra else ""
    spaced = f" {extra.replace('&', ' ')}" if extra else ""
    return {
        "userinfo": f"postgresql://{user}:{encoded}@127.0.0.1:{port}/{database}{query}",
        "query": f"postgres://{user}@127.0.0.1:{port}/{database}?password={encoded}{amp}",
        "encoded-key": f"postgresql://{user}@127.0.0.1:{port}/{database}?pass%77ord={encoded}{amp}",
        "unencoded-userinfo": f"postgresql://{user}:{password}@127.0.0.1:{port}/{database}{query}",
        "key-value": f"host=127.0.0.1 port={port} user={user} password={encoded} dbname={database}{spaced}",
        "key-value-quoted": f"host=127.0.0.1 port={port} user={user} password = {_key_value_literal(password)} dbname={database}{spaced}",
    }


FORMS = ["userinfo", "query", "encoded-key", "unencoded-userinfo", "key-value", "key-value-quoted"]


def _assert_silent(exc: BaseException, *secrets: str) -> None:
    said = _everything_said(exc)
    for secret in secrets:
        assert secret not in said, said
        assert quote(secret, safe="") not in said, said


def _attempt(action: str, url: str) -> BaseException:
    """The error of ``PostgresStore(url)``/``connect(url)``/``bootstrap(url, ...)``, run in a
    thread so that a hang fails the test."""
    reprs: list[str] = []

    def attempt() -> None:
        if action == "bootstrap":
            factstr.PostgresStore.bootstrap(url, "never_created").close()
            return
        store = factstr.connect(url) if action == "connect" else factstr.PostgresStore(url)
        try:
            reprs.append(repr(store))
            store.query()
        finally:
            store.close()

    thread, errors, _ = run_in_thread(attempt)
    thread.join(CONNECT_DEADLINE)
    assert not thread.is_alive(), f"the attempt hung for {CONNECT_DEADLINE}s"
    assert len(errors) == 1, f"expected a failure, the store opened: {reprs}"
    return errors[0]


@pytest.fixture
def checked_role(server: PostgresServer) -> Iterator[str]:
    """A login role with ``ODD_PASSWORD`` whose password the server checks: a ``pg_hba.conf``
    line for this role only, ahead of the cluster's trust lines (taken out again at the end)."""
    if not isinstance(server, ThrowawayCluster):
        pytest.skip(
            "pg_hba.conf of an external server (FACTSTR_TEST_POSTGRES_URL) is not ours to change"
        )
    name = f"u_{uuid.uuid4().hex[:12]}"
    server.sql(f"CREATE ROLE {name} LOGIN PASSWORD {_sql_literal(ODD_PASSWORD)}")
    hba = server.data / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text(f"host all {name} 127.0.0.1/32 scram-sha-256\n{original}")
    try:
        server.sql("SELECT pg_reload_conf()")
        _wait_until_checked(server, name)
        yield name
    finally:
        hba.write_text(original)
        server.sql("SELECT pg_reload_conf()")
        server.sql(f"DROP ROLE IF EXISTS {name}")


def _wait_until_checked(server: PostgresServer, role: str) -> None:
    """Waits until the server has loaded the new pg_hba.conf (a reload is asynchronous)."""
    deadline = time.monotonic() + 30
    url = f"postgresql://{role}:wrong@127.0.0.1:{server.port}/postgres"
    while True:
        done = subprocess.run(
            [str(server.psql), "-X", "-w", "-d", url, "-c", "SELECT 1"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0 and "password authentication failed" in done.stderr:
            return
        assert time.monotonic() < deadline, (
            f"the server does not check {role}'s password: {done.stderr}"
        )
        time.sleep(0.1)


@pytest.mark.parametrize("action", ["open", "connect", "bootstrap"])
@pytest.mark.parametrize("form", FORMS)
def test_password_not_in_error_for_a_bad_url(action: str, form: str) -> None:
    url = _forms("someone", ODD_PASSWORD, free_port(), "db", extra="sslmode=bogus")[form]
    exc = _attempt(action, url)
    assert isinstance(exc, ValueError), repr(exc)
    _assert_silent(exc, ODD_PASSWORD, "S3cret", "e&f=g%h")


@pytest.mark.parametrize("action", ["open", "connect", "bootstrap"])
@pytest.mark.parametrize("form", FORMS)
def test_password_not_in_error_for_an_unreachable_server(action: str, form: str) -> None:
    url = _forms("someone", ODD_PASSWORD, free_port(), "db")[form]
    exc = _attempt(action, url)
    assert isinstance(exc, (ValueError, factstr.BackendError)), repr(exc)
    _assert_silent(exc, ODD_PASSWORD, "S3cret", "e&f=g%h")


@pytest.mark.parametrize("action", ["open", "connect", "bootstrap"])
@pytest.mark.parametrize("form", FORMS)
def test_password_not_in_error_for_a_wrong_password(
    checked_role: str, server: PostgresServer, action: str, form: str
) -> None:
    wrong = ODD_PASSWORD.replace("S3cret", "Wr0ng")
    exc = _attempt(action, _forms(checked_role, wrong, server.port, "postgres")[form])
    assert isinstance(exc, (ValueError, factstr.BackendError)), repr(exc)
    if form in ("userinfo", "query", "encoded-key"):
        assert isinstance(exc, factstr.BackendError) and "28P01" in str(exc), repr(exc)
    _assert_silent(exc, wrong, "Wr0ng", ODD_PASSWORD, "S3cret", "e&f=g%h")


@pytest.mark.parametrize("form", ["userinfo", "query", "encoded-key"])
def test_the_right_odd_password_opens_the_store(
    checked_role: str, server: PostgresServer, make_database: MakeDatabase, form: str
) -> None:
    """The forms above are right apart from the password: with the right one the store opens
    (so the failures above are the password's, not the URL's)."""
    database = make_database()
    server.sql(f'GRANT ALL ON DATABASE "{database}" TO {checked_role}')
    server.sql(f"GRANT ALL ON SCHEMA public TO {checked_role}", database)
    url = _forms(checked_role, ODD_PASSWORD, server.port, database)[form]
    with factstr.connect(url) as store:
        store.append([NewEvent("a", {})])
        assert ODD_PASSWORD not in repr(store) and quote(ODD_PASSWORD, safe="") not in repr(store)


def test_connect_takes_no_option_from_a_url_with_an_ambiguous_password() -> None:
    """``?`` unencoded in a password looks like the start of the parameters: nothing of it may
    be read as a store option (whose bad value would be quoted)."""
    url = f"postgresql://someone:S3cret?pool_size=Wr0ng@127.0.0.1:{free_port()}/db"
    exc = _attempt("connect", url)
    assert isinstance(exc, ValueError), repr(exc)
    _assert_silent(exc, "S3cret", "Wr0ng")
