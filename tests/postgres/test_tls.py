"""TLS against the throwaway cluster (SSL on, a self-signed certificate for ``localhost``):
``sslmode=require`` encrypts, ``verify-full`` checks the certificate and the host name."""

from __future__ import annotations

from pathlib import Path

import factstr
import pytest
from factstr import NewEvent

from tests.postgres_server import PostgresServer, make_self_signed_cert
from tests.support import run_in_thread, seqs_of

CONNECT_DEADLINE = 60.0


@pytest.fixture
def cert(server: PostgresServer) -> Path:
    if server.cert_path is None:
        pytest.skip("TLS of an external server is not known to the tests")
    return server.cert_path


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _ssl_of_connections(server: PostgresServer, database: str) -> list[bool]:
    out = server.sql(
        "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
        f"WHERE a.datname = '{database}' AND a.backend_type = 'client backend'"
    )
    return [line == "t" for line in out.splitlines() if line]


def test_sslmode_require_encrypts(url: str, server: PostgresServer, cert: Path) -> None:
    with factstr.PostgresStore(url + "?sslmode=require") as store:
        store.append([NewEvent("a", {})])
        assert seqs_of(store.query().event_records) == [1]
        ssl = _ssl_of_connections(server, _database(url))
        assert ssl and all(ssl), f"connections of the store (ssl flags): {ssl}"


def test_sslmode_disable_does_not_encrypt(url: str, server: PostgresServer, cert: Path) -> None:
    with factstr.PostgresStore(url + "?sslmode=disable") as store:
        store.append([NewEvent("a", {})])
        ssl = _ssl_of_connections(server, _database(url))
        assert ssl and not any(ssl), f"connections of the store (ssl flags): {ssl}"


def test_verify_full_with_the_root_certificate(
    url: str, server: PostgresServer, cert: Path
) -> None:
    database = _database(url)
    verified = server.url_for(
        database, host="localhost", query=f"sslmode=verify-full&sslrootcert={cert}"
    )
    with factstr.PostgresStore(verified) as store:
        store.append([NewEvent("a", {})])
        assert seqs_of(store.query().event_records) == [1]
        ssl = _ssl_of_connections(server, database)
        assert ssl and all(ssl)


def _open_and_use(url: str) -> None:
    store = factstr.PostgresStore(url)
    try:
        store.query()
    finally:
        store.close()


def _expect_backend_error(url: str) -> None:
    thread, errors, _ = run_in_thread(lambda: _open_and_use(url))
    thread.join(CONNECT_DEADLINE)
    assert not thread.is_alive(), f"opening {url} hung for {CONNECT_DEADLINE}s"
    assert len(errors) == 1, "the store connected although the certificate check should fail"
    assert isinstance(errors[0], factstr.BackendError), repr(errors[0])


@pytest.mark.parametrize("case", ["other-root", "missing-root-file", "no-root-given", "wrong-host"])
def test_verify_full_refuses_what_it_cannot_verify(
    url: str,
    server: PostgresServer,
    cert: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    database = _database(url)
    host = "localhost"
    if case == "other-root":
        root: Path | None = make_self_signed_cert(tmp_path, "other")[
            0
        ]  # also CN=localhost, another key
    elif case == "missing-root-file":
        root = tmp_path / "missing.crt"
    elif case == "no-root-given":
        root = None
        monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.postgresql/root.crt either
    else:
        root = cert
        host = "127.0.0.1"  # the certificate names localhost only
    query = "sslmode=verify-full" + (f"&sslrootcert={root}" if root is not None else "")
    _expect_backend_error(server.url_for(database, host=host, query=query))
