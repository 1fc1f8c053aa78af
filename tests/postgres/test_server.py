"""The throwaway server itself (needs no PostgresStore): it answers SQL and TLS, makes and drops
databases, and restarts on the same port."""

from __future__ import annotations

import subprocess

import pytest

from tests.postgres_server import PostgresServer


def _psql(server: PostgresServer, url: str, statement: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(server.psql), "-X", "-A", "-t", "-d", url, "-c", statement],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_server_answers(server: PostgresServer) -> None:
    assert server.sql("SELECT 1") == "1"
    assert server.sql("SHOW server_encoding") == "UTF8"


def test_databases_are_created_and_dropped(server: PostgresServer) -> None:
    name = server.create_database()
    try:
        assert server.database_exists(name)
        assert server.sql("SELECT current_database()", database=name) == name
    finally:
        server.drop_database(name)
    assert not server.database_exists(name)


def test_ssl_is_on_and_verifiable(server: PostgresServer) -> None:
    if server.cert_path is None:
        pytest.skip("TLS of an external server is not known to the tests")
    done = _psql(server, server.url_for("postgres", query="sslmode=require"), "SHOW ssl")
    assert (done.returncode, done.stdout.strip()) == (0, "on"), done.stderr
    verified = server.url_for(
        "postgres", host="localhost", query=f"sslmode=verify-full&sslrootcert={server.cert_path}"
    )
    done = _psql(server, verified, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert (done.returncode, done.stdout.strip()) == (0, "t"), done.stderr
    mismatch = server.url_for(
        "postgres", query=f"sslmode=verify-full&sslrootcert={server.cert_path}"
    )
    assert _psql(server, mismatch, "SELECT 1").returncode != 0  # the certificate names localhost


def test_restart_on_the_same_port(restartable: PostgresServer) -> None:
    port = restartable.port
    restartable.stop()
    assert not restartable.running
    assert _psql(restartable, restartable.url, "SELECT 1").returncode != 0
    restartable.start()
    assert restartable.port == port
    assert restartable.sql("SELECT 1") == "1"
