"""The asyncio example (``examples/aio_service.py``) runs and keeps its promises (its own
asserts), on Memory and SQLite."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aio_service.py"


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_the_service_example_runs(kind: str, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("aio_service_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        url = "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'service.db'}"
        asyncio.run(module.main(url))
    finally:
        del sys.modules[spec.name]
