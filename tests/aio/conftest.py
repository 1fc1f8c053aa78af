"""The asyncio API (``factstr.aio``) under the contract suite: the tests in
``tests/aio/contract/`` are the contract suite's own cases (imported, not copied), run with the
``store`` fixture giving a sync facade over an asyncio store (``tests/aio/facade.py``) for each
kind here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: ``aio-<backend>``: the default asyncio loop; ``aio-uvloop-<backend>``: uvloop's.
AIO_KINDS: list[str] = ["aio-memory", "aio-sqlite", "aio-postgres", "aio-uvloop-memory"]


class AioKind(str):
    """A store kind that compares equal to its backend's name too, so that a contract case
    asking ``store_kind == "memory"`` (for the memory store's larger number range) gets the
    answer of the store under the facade."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other) or (
            isinstance(other, str) and self.rsplit("-", 1)[-1] == other
        )

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__


@pytest.fixture(params=AIO_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return AioKind(request.param)


#: Contract cases that check the sync classes themselves, which the facade cannot be (the
#: asyncio API has its own ``aio.Subscription``), with the reason.
NOT_FOR_THE_FACADE: dict[str, str] = {
    "test_subscribe_returns_a_subscription": "checks isinstance(sub, factstr.Subscription)",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/aio/contract/" not in item.nodeid:
            continue
        reason = NOT_FOR_THE_FACADE.get(getattr(item, "originalname", item.name))
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"sync facade: {reason}"))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def aio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def aio_url(aio_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A ``connect()`` URL of a fresh store of the backend (for the asyncio tests)."""
    if aio_backend == "memory":
        return "memory://"
    if aio_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
