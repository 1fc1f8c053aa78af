"""Fixtures of the parity tests: the upstream driver binary, upstream processes, databases.

``parity_binary`` builds ``rust/factstr-parity`` (the upstream FACTSTR 0.5.2 crates behind a
JSON-lines protocol) once per session with ``cargo build --release``, into the same
``CARGO_TARGET_DIR`` as ``scripts/setup.sh``. A failing build fails the tests; it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeAlias

import pytest

from tests.parity.driver import Upstream
from tests.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "rust" / "factstr-parity" / "Cargo.toml"

#: How long building the binary may take (a cold build of sqlx & co. on two cores is minutes).
BUILD_DEADLINE = 1800.0

#: Starts an upstream process on the store named by an ``open`` line.
StartUpstream: TypeAlias = Callable[[dict[str, Any]], Upstream]

#: Creates a new database on the session's PostgreSQL server and returns its name.
MakeDatabase: TypeAlias = Callable[[], str]


def target_dir() -> Path:
    default = Path.home() / ".cache" / "factstr-target"
    return Path(os.environ.get("CARGO_TARGET_DIR") or default)


@pytest.fixture(scope="session")
def parity_binary() -> Path:
    """The ``factstr-parity`` binary, built for this session (fails the tests if it cannot be)."""
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail("cargo is not on PATH: the parity tests need it to build rust/factstr-parity")
    env = {**os.environ, "CARGO_TARGET_DIR": str(target_dir())}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [cargo, "build", "--release", "--locked", "--manifest-path", str(MANIFEST)],
            capture_output=True,
            text=True,
            env=env,
            timeout=BUILD_DEADLINE,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"building rust/factstr-parity took more than {BUILD_DEADLINE}s")
    if done.returncode != 0:
        pytest.fail(
            f"building rust/factstr-parity failed ({done.returncode}):\n{done.stderr[-6000:]}"
        )
    binary = target_dir() / "release" / "factstr-parity"
    if not binary.exists():
        pytest.fail(f"cargo built rust/factstr-parity but {binary} does not exist")
    print(f"\nfactstr-parity built in {time.monotonic() - started:.1f}s")
    return binary


@pytest.fixture
def start_upstream(parity_binary: Path) -> Iterator[StartUpstream]:
    """Starts upstream processes; all still running at teardown are killed."""
    started: list[Upstream] = []

    def start(open_line: dict[str, Any]) -> Upstream:
        upstream = Upstream(parity_binary, open_line)
        started.append(upstream)
        return upstream

    yield start
    for upstream in started:
        upstream.kill()


@pytest.fixture
def pg_server(postgres_server: PostgresServer) -> PostgresServer:
    """The session's PostgreSQL server, running."""
    if not postgres_server.running:
        postgres_server.start()
    return postgres_server


@pytest.fixture
def make_database(pg_server: PostgresServer) -> Iterator[MakeDatabase]:
    """Creates databases for the test (also inside hypothesis examples); dropped at teardown."""
    names: list[str] = []

    def make() -> str:
        names.append(pg_server.create_database("parity"))
        return names[-1]

    yield make
    for name in names:
        pg_server.drop_database(name)
