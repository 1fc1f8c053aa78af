"""SPEC §11: every public class, method and property has a docstring, at runtime (`help()`)
and in the stub (what editors show)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import factstr

STUB = Path(factstr.__file__).with_name("_factstr.pyi")


def _public_members(cls: type) -> list[tuple[str, object]]:
    members = []
    for klass in cls.__mro__:
        if klass is object or klass.__module__ == "builtins":
            continue
        for name, member in vars(klass).items():
            if not name.startswith("_"):
                members.append((f"{cls.__name__}.{name}", member))
    return members


def _missing_runtime_docstrings() -> list[str]:
    missing = []
    for name in factstr.__all__:
        obj = getattr(factstr, name)
        if not isinstance(obj, str) and not (inspect.getdoc(obj) or "").strip():
            missing.append(name)
        if isinstance(obj, type):
            for qualified, member in _public_members(obj):
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if (
                    not callable(member)
                    and not isinstance(member, (property,))
                    and not hasattr(member, "__get__")
                ):
                    continue  # a plain class attribute (a constant) carries no docstring
                doc = getattr(member, "__doc__", None)
                if not (doc or "").strip():
                    missing.append(qualified)
    return sorted(set(missing))


def test_every_public_class_method_and_property_has_a_runtime_docstring() -> None:
    assert _missing_runtime_docstrings() == []


def test_the_stub_carries_a_docstring_for_every_public_class_and_member() -> None:
    missing = []
    for node in ast.parse(STUB.read_text()).body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            if ast.get_docstring(node) is None:
                missing.append(node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                    if ast.get_docstring(item) is None:
                        missing.append(f"{node.name}.{item.name}")
    assert sorted(set(missing)) == []


def test_help_describes_the_main_operations() -> None:
    assert "fresh copy" in (factstr.EventRecord.payload.__doc__ or "")
    assert (factstr.MemoryStore.query.__doc__ or "").strip()
    assert (factstr.EventStore.append.__doc__ or "").strip()
