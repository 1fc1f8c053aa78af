"""``docs/parity.md``'s table of deliberate differences says what ``differences.py`` says: the
same keys in the same order, the same upstream stores, and the same test for each. The table's
prose is shorter than the data's, so only these columns are checked."""

from __future__ import annotations

from pathlib import Path

from tests.parity import test_differences
from tests.parity.differences import ALL_KINDS, DIFFERENCES

DOC = Path(__file__).resolve().parents[2] / "docs" / "parity.md"
SECTION = "## Deliberate differences"


def _table_rows() -> list[list[str]]:
    """The cells of each row of the table under ``SECTION`` (header and rule left out)."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(SECTION)
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert rows[0][0] == "key" and set(rows[1][0]) == {"-"}, rows[:2]
    return rows[2:]


def _kinds_cell(kinds: frozenset[str]) -> frozenset[str]:
    return frozenset({"all"}) if kinds == ALL_KINDS else kinds


def test_the_doc_table_lists_every_difference_in_order() -> None:
    rows = _table_rows()
    assert [row[0] for row in rows] == [d.key for d in DIFFERENCES]


def test_the_doc_table_names_the_same_stores_and_tests() -> None:
    for row, difference in zip(_table_rows(), DIFFERENCES, strict=True):
        stores = frozenset(kind.strip() for kind in row[1].split(","))
        assert stores == _kinds_cell(difference.kinds), difference.key
        assert row[-1] == f"`{difference.test}`", difference.key


def test_every_named_test_exists() -> None:
    for difference in DIFFERENCES:
        assert callable(getattr(test_differences, difference.test, None)), difference.test
