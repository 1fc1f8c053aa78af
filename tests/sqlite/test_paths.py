"""SPEC §7: ``SqliteStore(path)`` creates the file, never missing folders (a mistyped folder is
an error naming it, not a new empty store), and an empty path is a ``ValueError``."""

from __future__ import annotations

from pathlib import Path

import factstr
import pytest
from factstr import NewEvent


@pytest.mark.parametrize("missing", ["nope", "nope/deeper"])
def test_a_missing_folder_is_an_error_naming_it_and_nothing_is_created(
    tmp_path: Path, missing: str
) -> None:
    folder = tmp_path / missing
    with pytest.raises(factstr.BackendError) as info:
        factstr.SqliteStore(folder / "events.db")
    assert str(folder) in str(info.value)
    assert "does not exist" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_is_a_file_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a folder")
    with pytest.raises(factstr.BackendError) as info:
        factstr.SqliteStore(tmp_path / "plain" / "events.db")
    assert str(tmp_path / "plain") in str(info.value)
    assert (tmp_path / "plain").read_text() == "not a folder"


def test_an_empty_path_is_a_value_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        factstr.SqliteStore("")
    # (``Path("")`` is ``Path(".")``, a folder: a BackendError like any folder.)
    assert list(tmp_path.iterdir()) == []


def test_a_file_in_an_existing_folder_or_the_current_one_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with factstr.SqliteStore(tmp_path / "events.db") as store:
        store.append([NewEvent("a", {})])
    monkeypatch.chdir(tmp_path)
    with factstr.SqliteStore("here.db") as store:
        store.append([NewEvent("a", {})])
    assert (tmp_path / "events.db").exists() and (tmp_path / "here.db").exists()
