"""The run's environment: its temporary folder, the PostgreSQL server (the throwaway cluster of
`tests/postgres_server.py`, shared with the test suite, or FACTSTR_TEST_POSTGRES_URL) and UmaDB
servers (one per store, from the `umadb` wheel). Everything is started lazily, on first use, and
stopped by `close()` at the end of the run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.postgres_server import (
    URL_ENV,
    ExternalServer,
    PostgresServer,
    ThrowawayCluster,
    free_port,
)

REPO = Path(__file__).resolve().parent.parent


class UmaServer:
    """`umadb --listen 127.0.0.1:<free port> --db-path <temp dir>/uma.db`, stopped with SIGINT."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "server.log"
        executable = Path(sys.executable).parent / "umadb"
        command = (
            [str(executable)]
            if executable.exists()
            else [sys.executable, "-c", "from umadb.umadb_server_cli import main; main()"]
        )
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    *command,
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--db-path",
                    str(folder / "uma.db"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=folder,
            )
        import umadb

        deadline = time.monotonic() + 30
        while True:
            try:
                umadb.Client(self.url).head()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"UmaDB did not start:\n{self.log_path.read_text(errors='replace')}"
                    ) from None
                time.sleep(0.05)

    def log_line(self, needle: str) -> str:
        for line in self.log_path.read_text(errors="replace").splitlines():
            if needle in line:
                return line.strip()
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


class Environment:
    def __init__(self) -> None:
        self.folder = Path(
            tempfile.mkdtemp(prefix="factstr-bench-", dir=os.environ.get("FACTSTR_BENCH_DIR"))
        )
        self._postgres: PostgresServer | None = None
        self._pg_settings: dict[str, str] = {}
        self.uma: dict[str, UmaServer] = {}
        self.uma_sync_line = ""

    # -- files ---------------------------------------------------------------------------------

    def new_path(self, stem: str, suffix: str = ".db") -> Path:
        return self.folder / f"{stem}-{uuid.uuid4().hex[:8]}{suffix}"

    # -- PostgreSQL ----------------------------------------------------------------------------

    @property
    def postgres(self) -> PostgresServer:
        """The server named by FACTSTR_TEST_POSTGRES_URL, else a throwaway cluster of our own
        that is *durable* (fsync, synchronous_commit and full_page_writes on, as users run
        PostgreSQL): the test suite's fast, non-durable cluster would flatter every commit."""
        if self._postgres is None:
            url = os.environ.get(URL_ENV)
            server: PostgresServer = ExternalServer(url) if url else ThrowawayCluster(durable=True)
            try:
                server.sql("SELECT 1")
            except Exception:
                server.close()
                raise
            self._postgres = server
        return self._postgres

    @property
    def pg_throwaway(self) -> bool:
        """True when the server is the run's own cluster (its settings may be changed)."""
        return isinstance(self.postgres, ThrowawayCluster)

    def pg_create(self) -> str:
        return self.postgres.url_for(self.postgres.create_database("bench"))

    def pg_drop(self, url: str) -> None:
        self.postgres.drop_database(url.rsplit("/", 1)[1].split("?")[0])

    def pg_setting(self, name: str) -> str:
        if name not in self._pg_settings:
            self._pg_settings[name] = self.postgres.sql(f"SHOW {name}")
        return self._pg_settings[name]

    def pg_durability(self) -> str:
        note = ""
        if "off" in (self.pg_setting("fsync"), self.pg_setting("synchronous_commit")):
            note = " (NOT crash-safe: figures flatter every PostgreSQL subject alike)"
        return (
            f"PostgreSQL fsync={self.pg_setting('fsync')}, "
            f"synchronous_commit={self.pg_setting('synchronous_commit')}, "
            f"full_page_writes={self.pg_setting('full_page_writes')}{note}"
        )

    # -- UmaDB ---------------------------------------------------------------------------------

    def uma_create(self) -> str:
        server = UmaServer(self.folder / f"uma-{uuid.uuid4().hex[:8]}")
        self.uma[server.url] = server
        self.uma_sync_line = self.uma_sync_line or server.log_line("writing with")
        return server.url

    def uma_drop(self, url: str) -> None:
        server = self.uma.pop(url, None)
        if server is not None:
            server.stop()

    # -- end -----------------------------------------------------------------------------------

    def close(self) -> None:
        for url in list(self.uma):
            self.uma_drop(url)
        if self._postgres is not None:
            self._postgres.close()
            self._postgres = None
        shutil.rmtree(self.folder, ignore_errors=True)


_env: Environment | None = None


def env() -> Environment:
    """The run's environment (created on first use, in the parent process only)."""
    global _env
    if _env is None:
        _env = Environment()
    return _env


def close_env() -> None:
    global _env
    if _env is not None:
        _env.close()
        _env = None
