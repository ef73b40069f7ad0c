"""tutorial.notebook's helpers: `Checks.agree` (a row that names its witnesses and fails when
one disagrees), and the helpers that print sources: source_of, refused(rule=), cite,
as_expected; `start`, whose mock must not keep its process alive; and `local_mock`, whose
HSM generates token key pairs except under test."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from byoklib import data_path, primitives
from byoklib.client import KeyProtectClient
from byoklib.errors import CATALOGUE, KeyProtectError
from byoklib.mock.keypairs import KeyPairPool
from byoklib.rules import rule
from byoklib.tutorial.notebook import (ENV_TEST_ONLY_KEYS, Checks, as_expected, cite,
                                       local_mock, refused, source_of)


def fail(code, status=None):
    def call():
        if status is None:
            raise KeyProtectError.of(code)
        raise KeyProtectError(status, code)
    return call


def test_refused_without_a_rule_prints_as_before(capsys):
    error = refused(fail("INCORRECT_NONCE_ERR"))
    assert error.code == "INCORRECT_NONCE_ERR"
    assert capsys.readouterr().out == "refused: KeyProtectError status=400 code=INCORRECT_NONCE_ERR\n"


def test_refused_with_a_rule_prints_what_it_expects_and_its_source(capsys):
    refused(fail("INCORRECT_NONCE_ERR"), rule="import.nonce_mismatch")
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("  expected: 400 INCORRECT_NONCE_ERR (")
    assert out[2].startswith("  source: IBM, in part: ") and "#error-messages-incorrect-nonce-err" in out[2]


def test_refused_says_when_a_call_was_accepted(capsys):
    assert refused(lambda: None, rule="token.expired") is None
    out = capsys.readouterr().out
    assert out.startswith("accepted (not refused!)") and "source:" in out


def test_cite_prints_the_rule_with_numbers_from_protocol(capsys):
    cite("token.expiration")
    out = capsys.readouterr().out
    assert out.startswith("• expiration: 300 to 86400 seconds, 600 by default")
    with pytest.raises(KeyError):
        cite("no.such.rule")


def error(code, status=None):
    try:
        fail(code, status)()
    except KeyProtectError as e:
        return e


@pytest.mark.parametrize("name, got, on_mock, expected", [
    # on the mock: status and code must be the rule's
    ("import.payload_undecryptable", error("UNPROCESSABLE_PAYLOAD_ERR"), True, True),
    ("import.payload_undecryptable", error("INVALID_FIELD_ERR"), True, False),
    # elsewhere, the mock's choice: any 4xx
    ("import.payload_undecryptable", error("INVALID_FIELD_ERR"), False, True),
    ("import.payload_undecryptable", error("INTERNAL_ERR"), False, False),
    # elsewhere, IBM in part: the status
    ("token.retrievals_exceeded", error("SOMETHING_ELSE", 409), False, True),
    ("token.retrievals_exceeded", error("SOMETHING_ELSE", 400), False, False),
    # elsewhere, documented by IBM: status and code
    ("token.expired", error("IMPORT_TOKEN_EXPIRED_ERR"), False, True),
    ("token.expired", error("SOMETHING_ELSE", 409), False, False),
    ("token.expired", None, True, False),
])
def test_as_expected(name, got, on_mock, expected):
    assert as_expected(got, name, on_mock) is expected
    assert rule(name).expect is not None


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


def test_source_of_prints_the_catalogues_source():
    assert source_of("INCORRECT_NONCE_IV_ERR") == str(CATALOGUE["INCORRECT_NONCE_IV_ERR"].source)
    assert "key-protect-error-messages" in source_of("INCORRECT_NONCE_IV_ERR")
    assert source_of("FORBIDDEN_ERR").startswith("the mock's choice")
    with pytest.raises(KeyError):
        source_of("NO_SUCH_CODE_ERR")


def test_a_script_that_starts_the_mock_and_ends_exits():
    # The mock's worker threads are not daemons: without its stop at the end of the main
    # thread, this process would never exit (and a kernel would wait to be killed).
    script = ("from byoklib.tutorial.notebook import start\n"
              "kp = start()\n"
              "kp.client.create_import_token()\n"
              "print(kp.client.get_import_token().nonce and 'token')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env={**os.environ,
                                           "BYOKLIB_TEST_ONLY_TOKEN_KEYS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "token"


def test_under_test_a_notebooks_own_mock_hands_out_the_test_only_pairs(monkeypatch):
    monkeypatch.setenv(ENV_TEST_ONLY_KEYS, "1")
    monkeypatch.setattr(primitives, "generate_rsa_private_key",
                        lambda *a, **kw: pytest.fail("a TEST-ONLY pair serves here"))
    test_only = primitives.load_public_key(data_path("test-only", "token-key-1.pub.pem").read_bytes())
    with local_mock(flavor="hpcs") as server:
        client = KeyProtectClient(server.url, "hpcs-instance", "learner-token")
        client.create_import_token()
        token = client.get_import_token()
        assert server.service.flavor.name == "hpcs"   # the options reach running_server
    assert primitives.load_public_key(token.public_key_pem).public_numbers() \
        == test_only.public_numbers()


def test_a_learners_own_mock_generates_its_token_key_pairs(monkeypatch):
    monkeypatch.delenv(ENV_TEST_ONLY_KEYS, raising=False)
    made = []
    monkeypatch.setattr(KeyPairPool, "start", lambda pool: made.append(pool) or pool)
    with local_mock():   # its pool is never started here: no key is generated
        pass
    assert len(made) == 1 and made[0].bits == 4096
