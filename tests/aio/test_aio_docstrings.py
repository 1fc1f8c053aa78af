"""SPEC §11 for ``factstr.aio``: every public class, method and property has a docstring."""

from __future__ import annotations

import inspect

from factstr import aio

from tests.contract.test_docstrings import _public_members


def test_every_public_aio_name_and_member_has_a_docstring() -> None:
    missing = []
    for name in aio.__all__:
        obj = getattr(aio, name)
        if not (inspect.getdoc(obj) or "").strip():
            missing.append(name)
        if isinstance(obj, type):
            for qualified, member in _public_members(obj):
                if isinstance(member, staticmethod | classmethod):
                    member = member.__func__
                if not callable(member) and not hasattr(member, "__get__"):
                    continue
                if not (getattr(member, "__doc__", None) or "").strip():
                    missing.append(qualified)
    assert sorted(set(missing)) == []
