"""The notebook helpers this project's witnesses rely on: `Checks.agree`, the row that names
its witnesses and fails when one disagrees, and `source_of`, a reason code's source."""
from __future__ import annotations

import pytest

from byoklib.errors import CATALOGUE
from byoklib.tutorial.notebook import ERROR_MESSAGES_PAGE, Checks, source_of


def test_agree_passes_only_when_every_witness_gives_the_same(capsys):
    checks = Checks()
    checks.agree("same", {"byoklib": b"x", "first principles": b"x", "PyCryptodome": b"x"})
    checks.agree("one disagrees", {"byoklib": b"x", "PyCryptodome": b"y"})
    checks.agree("alone", {"byoklib": b"x"})
    checks.agree("all wrong alike", {"a": False, "b": False}, expected=True)
    assert [passed for _, passed, _ in checks.rows] == [True, False, False, False]
    out = capsys.readouterr().out
    assert "PyCryptodome ✘ DISAGREES" in out and "b'x'" not in out
    table = checks.table()
    assert next(iter(table["witnesses"])) == "byoklib, first principles, PyCryptodome"
    with pytest.raises(AssertionError):
        checks.assert_all()


def test_a_table_without_witnessed_rows_keeps_its_three_columns():
    checks = Checks()
    checks.check("plain", True)
    assert list(checks.table().columns) == ["what you verified", "passed", "how"]


def test_source_of_names_ibm_for_a_confirmed_code_and_the_mock_for_the_rest():
    confirmed = next(code for code, entry in CATALOGUE.items() if entry.confirmed)
    chosen = next(code for code, entry in CATALOGUE.items() if not entry.confirmed)
    assert ERROR_MESSAGES_PAGE in source_of(confirmed)
    assert source_of(chosen) == "the mock's choice"
    with pytest.raises(KeyError):
        source_of("NO_SUCH_CODE_ERR")
