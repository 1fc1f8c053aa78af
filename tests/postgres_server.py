"""A throwaway PostgreSQL server for the test suite and the benchmarks (``bench/servers.py``).

It imports neither pytest nor factstr, so that every dev tool can use it.

Unless ``FACTSTR_TEST_POSTGRES_URL`` names a server to use instead, :func:`start_server` builds a
new cluster for the test session:

- ``initdb``/``pg_ctl``/``psql`` come from Debian's ``/usr/lib/postgresql/<version>/bin/`` (the
  highest version installed; ``PATH`` as a fallback);
- the cluster lives in a new temporary directory; PostgreSQL refuses to run as root, so when the
  tests run as root every server command runs as the ``postgres`` user through
  ``runuser -u postgres --`` (the directory is handed to that user);
- ``initdb -U postgres --auth=trust -E UTF8``: no passwords, superuser ``postgres``;
- the server listens on a free port of 127.0.0.1 only (its Unix socket sits in the temporary
  directory, so it never collides with a system cluster), with ``max_connections=200``;
- ``fsync=off``, ``synchronous_commit=off`` and ``full_page_writes=off`` are for test speed only:
  with ``synchronous_commit=off`` a crash of the *server* (``pg_ctl -m immediate stop``) loses
  the commits of its last few hundred milliseconds, so the server-restart tests stop it with
  ``-m fast`` (sessions ended, everything written); a killed *client* process loses nothing
  committed;
- SSL is always on, with a self-signed certificate for ``localhost`` (``openssl req -x509``, with
  ``subjectAltName=DNS:localhost`` and ``basicConstraints=CA:FALSE`` added so that strict TLS
  stacks such as rustls/webpki accept it as a leaf certificate that is its own trust anchor);
  :attr:`PostgresServer.cert_path` is the file to pass as ``sslrootcert=``;
- at the end of the session it is stopped with ``pg_ctl -m immediate stop`` and the directory is
  removed.

When the server cannot be built or started this raises :class:`PostgresUnavailable` with the
server's log: a CI run must never skip the PostgreSQL tests silently because PostgreSQL is
missing.

Databases: every test gets a database of its own (:meth:`PostgresServer.create_database`,
``CREATE DATABASE t_<uuid>``, about 20-60 ms here with fsync off), dropped again at the end of
the test (``DROP DATABASE ... WITH (FORCE)``, which also ends connections that killed child
processes may have left). A database per test rather than a schema per test keeps everything
that PostgreSQL scopes per database (``LISTEN``/``NOTIFY`` channels, advisory locks) apart
between tests as well, so the contract suite tests each store as it would be used.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote, unquote

#: Set to a ``postgresql://`` URL (of a superuser, on any database) to test against that server
#: instead of building a throwaway cluster. Restart and TLS tests are skipped then.
URL_ENV = "FACTSTR_TEST_POSTGRES_URL"

#: How long starting or stopping the server may take.
SERVER_DEADLINE = 60.0

#: How long one ``psql`` statement may take.
PSQL_DEADLINE = 60.0


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be found, initialised or started (the message has the details)."""


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def find_bin_dir() -> Path:
    """The directory of ``initdb``/``pg_ctl``/``psql``: the highest Debian version, else ``PATH``."""
    candidates = [
        d
        for d in glob.glob("/usr/lib/postgresql/*/bin/")
        if os.path.exists(os.path.join(d, "initdb"))
    ]
    if candidates:
        return Path(max(candidates, key=lambda d: _version_key(d.rstrip("/"))))
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).parent
    raise PostgresUnavailable(
        "no PostgreSQL server binaries: neither /usr/lib/postgresql/*/bin/initdb nor initdb on PATH "
        f"(install PostgreSQL, or set {URL_ENV} to a server to use)"
    )


def find_psql() -> Path:
    try:
        candidate = find_bin_dir() / "psql"
        if candidate.exists():
            return candidate
    except PostgresUnavailable:
        pass
    psql = shutil.which("psql")
    if psql is None:
        raise PostgresUnavailable("psql not found")
    return Path(psql)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(cmd: list[str], what: str, timeout: float = SERVER_DEADLINE) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostgresUnavailable(f"{what} failed: {' '.join(cmd)}: {exc}") from exc
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"{what} failed ({done.returncode}): {' '.join(cmd)}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done.stdout


def make_self_signed_cert(
    directory: Path, name: str = "server", common_name: str = "localhost"
) -> tuple[Path, Path]:
    """Writes ``<name>.crt`` and ``<name>.key`` (mode 0600) into ``directory``; returns both paths."""
    cert = directory / f"{name}.crt"
    key = directory / f"{name}.key"
    _run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-subj", f"/CN={common_name}", "-days", "1",
            "-addext", f"subjectAltName=DNS:{common_name}",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-keyout", str(key), "-out", str(cert),
        ],
        "openssl req",
    )  # fmt: skip
    key.chmod(0o600)
    cert.chmod(0o644)
    return cert, key


class PostgresServer:
    """A PostgreSQL server the tests may use: its URLs, databases and (when it is ours) its life."""

    def __init__(self, url: str, *, host: str, port: int, user: str) -> None:
        #: The server URL: the ``postgres`` maintenance database, as superuser.
        self.url = url
        self.host = host
        self.port = port
        self.user = user
        self.psql = find_psql()
        #: The root certificate to pass as ``sslrootcert=`` (None when TLS is not ours to know).
        self.cert_path: Path | None = None

    # -- URLs and SQL -------------------------------------------------------------------------

    def url_for(
        self,
        database: str,
        *,
        host: str | None = None,
        password: str | None = None,
        query: str = "",
    ) -> str:
        """``postgresql://user[:password]@host:port/database[?query]``."""
        auth = quote(self.user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        url = f"postgresql://{auth}@{host or self.host}:{self.port}/{quote(database, safe='')}"
        return f"{url}?{query}" if query else url

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Runs one statement with ``psql`` and returns its unaligned, tuples-only output."""
        cmd = [
            str(self.psql),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            self.url_for(database),
            "-c",
            statement,
        ]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=PSQL_DEADLINE, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed on {statement!r} in {database!r}:\n{done.stderr}")
        return done.stdout.strip()

    def create_database(self, prefix: str = "t") -> str:
        """Creates a new, empty database and returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex}"
        self.sql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drops a database, ending any connection still open on it."""
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def database_exists(self, name: str) -> bool:
        escaped = name.replace("'", "''")
        return self.sql(f"SELECT count(*) FROM pg_database WHERE datname = '{escaped}'") == "1"

    # -- life (only for a cluster of our own) ------------------------------------------------

    @property
    def restartable(self) -> bool:
        return False

    def stop(self, mode: str = "immediate") -> None:
        raise NotImplementedError("an external server cannot be stopped by the tests")

    def start(self) -> None:
        raise NotImplementedError("an external server cannot be started by the tests")

    @property
    def running(self) -> bool:
        return True

    def close(self) -> None:
        """Ends the session's use of the server."""


class ThrowawayCluster(PostgresServer):
    """A cluster of our own in a temporary directory (see the module docstring)."""

    def __init__(self, *, durable: bool = False) -> None:
        #: fsync, synchronous_commit and full_page_writes on, as users run PostgreSQL (the
        #: torture tests crash such a server); off otherwise, for test speed.
        self.durable = durable
        self.bin_dir = find_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="factstr-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self._running = False
        self._as_postgres: list[str] = []
        try:
            if os.geteuid() == 0:
                try:
                    owner = pwd.getpwnam("postgres")
                except KeyError:
                    raise PostgresUnavailable(
                        "running as root, but there is no 'postgres' user to run the server"
                    ) from None
                self._as_postgres = ["runuser", "-u", "postgres", "--"]
                os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.sockets.mkdir()
            self._chown(self.sockets)
            _run(
                [*self._as_postgres, str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
                 "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"],
                "initdb",
            )  # fmt: skip
            cert, key = make_self_signed_cert(self.data)
            self._chown(cert)
            self._chown(key)
            super().__init__("", host="127.0.0.1", port=free_port(), user="postgres")
            self.url = self.url_for("postgres")
            self.cert_path = cert
            self._key_path = key
            self.start()
        except BaseException:
            self.close()
            raise

    def _chown(self, path: Path) -> None:
        if self._as_postgres:
            owner = pwd.getpwnam("postgres")
            os.chown(path, owner.pw_uid, owner.pw_gid)

    @property
    def restartable(self) -> bool:
        return True

    @property
    def running(self) -> bool:
        return self._running

    def _server_options(self) -> str:
        assert self.cert_path is not None
        return " ".join(
            [
                f"-p {self.port}",
                f"-k {self.sockets}",
                "-c listen_addresses=127.0.0.1",
                *(
                    ()
                    if self.durable
                    else ("-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off")
                ),
                "-c max_connections=200",
                "-c ssl=on",
                f"-c ssl_cert_file={self.cert_path}",
                f"-c ssl_key_file={self._key_path}",
            ]
        )

    def start(self) -> None:
        """Starts the cluster on its port (again, after :meth:`stop`); raises when it cannot."""
        cmd = [*self._as_postgres, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
               "-o", self._server_options(), "-w", "-t", str(int(SERVER_DEADLINE)), "start"]  # fmt: skip
        try:
            _run(cmd, "pg_ctl start", timeout=SERVER_DEADLINE + 10)
        except PostgresUnavailable as exc:
            log = self.log.read_text(errors="replace") if self.log.exists() else "(no server log)"
            raise PostgresUnavailable(f"{exc}\nserver log:\n{log}") from exc
        self._running = True
        deadline = time.monotonic() + SERVER_DEADLINE
        while True:  # pg_ctl -w waited for the socket; make sure TCP answers too
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(
                        f"the server does not accept TCP connections on port {self.port}"
                    ) from None
                time.sleep(0.05)

    def stop(self, mode: str = "immediate") -> None:
        """Stops the cluster (``pg_ctl -m <mode> stop``); :meth:`start` brings it back."""
        if not self._running:
            return
        _run(
            [
                *self._as_postgres,
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                mode,
                "-w",
                "stop",
            ],
            "pg_ctl stop",
        )
        self._running = False

    def close(self) -> None:
        try:
            if self._running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class ExternalServer(PostgresServer):
    """A server named by ``FACTSTR_TEST_POSTGRES_URL``: used, never started or stopped."""

    def __init__(self, url: str) -> None:
        match = re.match(
            r"^postgres(?:ql)?://(?:([^:@/]*)(?::([^@/]*))?@)?([^:/?]*)(?::(\d+))?", url
        )
        if match is None:
            raise PostgresUnavailable(f"{URL_ENV} is not a postgresql:// URL")
        user, host, port = (
            unquote(match.group(1) or "postgres"),
            match.group(3) or "127.0.0.1",
            int(match.group(4) or 5432),
        )
        super().__init__(url, host=host, port=port, user=user)
        self._given = url
        self._password = unquote(match.group(2)) if match.group(2) is not None else None

    def url_for(
        self,
        database: str,
        *,
        host: str | None = None,
        password: str | None = None,
        query: str = "",
    ) -> str:
        if database == "postgres" and host is None and password is None and not query:
            return self._given
        if password is None:
            password = self._password
        return super().url_for(database, host=host, password=password, query=query)


def start_server() -> PostgresServer:
    """The session's server: the external one from the environment, else a new cluster."""
    url = os.environ.get(URL_ENV)
    server: PostgresServer = ExternalServer(url) if url else ThrowawayCluster()
    try:
        server.sql("SELECT 1")
    except Exception:
        server.close()
        raise
    return server
