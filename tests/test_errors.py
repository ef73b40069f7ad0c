"""The catalogue: reason codes and rules, each with a source; the README's table from it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import reason, secure_fields

from byoklib import errors, protocol
from byoklib.errors import CATALOGUE, Source
from byoklib.rules import RULES, mock_choices_table, rule

IBM = ("https://cloud.ibm.com/docs/key-protect?topic=key-protect-",
       "https://github.com/IBM/")


def test_every_source_is_an_ibm_page_or_the_mocks_choice():
    for r in RULES.values():
        assert r.source.url is None or r.source.url.startswith(IBM), r.name
        assert r.source.url is not None or r.source.kind == "the mock's choice"
    for code in CATALOGUE.values():
        url = code.source.url
        assert url is None or url.startswith(IBM), code.code


def test_a_documented_code_points_at_its_section_of_ibms_error_page():
    assert source_url("INCORRECT_NONCE_IV_ERR") == (
        errors.IBM_ERRORS_PAGE + "#error-messages-incorrect-nonce-iv-err")
    assert CATALOGUE["UNPROCESSABLE_PAYLOAD_ERR"].source.url is None
    assert not CATALOGUE["FORBIDDEN_ERR"].source.documented


def source_url(code):
    return CATALOGUE[code].source.url


def test_a_rule_names_a_known_code_and_a_protocol_constant():
    for r in RULES.values():
        if r.code:
            assert r.code in CATALOGUE, r.name
        if r.value:
            assert hasattr(protocol, r.value), r.name
        if r.situation:
            assert r.answer or r.expect, r.name


def test_no_rule_types_a_number_its_protocol_constant_holds():
    for r in RULES.values():
        if r.value is None:
            continue
        bound = r.bound
        numbers = ((bound.low, bound.high, bound.default) if isinstance(bound, protocol.Bounds)
                   else bound if isinstance(bound, tuple) else (bound,))
        for n in numbers:
            for words in (r.says, r.situation or "", r.answer or ""):
                assert not re.search(rf"(?<![\w-]){n}(?!\w)", words), (r.name, n)


def test_a_rules_text_takes_its_numbers_from_protocol(monkeypatch):
    assert "300 to 86400 seconds, 600 by default" in rule("token.expiration").text
    monkeypatch.setattr(protocol, "TOKEN_EXPIRATION", protocol.Bounds(1, 2, 1))
    assert "1 to 2 seconds, 1 by default" in rule("token.expiration").text


def test_the_reviewed_claims_hold():
    # IBM documents INCORRECT_NONCE_ERR for restore and rotate only, and calls
    # INCORRECT_NONCE_IV_ERR an internal error: for an import both are the mock's reading
    assert not rule("import.nonce_mismatch").documented
    assert "rotate and restore" in rule("import.nonce_mismatch").source.note
    assert not rule("import.gcm_fails").documented
    assert "internal error" in rule("import.gcm_fails").source.note
    assert not rule("import.constant_time").documented
    assert rule("token.expiration").documented and rule("key.rotation_hourly").documented


def test_unknown_rule_says_which_exist():
    with pytest.raises(KeyError, match="token.expiration"):
        rule("no.such.rule")


def test_source_prints_kind_note_and_url():
    assert str(Source(None, "x")) == "the mock's choice: x"
    assert str(Source("https://a", partly=True)) == "IBM, in part <https://a>"


def test_the_readmes_table_of_the_mocks_choices_is_the_catalogues():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert mock_choices_table() in readme


def test_wrap_without_plaintext_makes_a_dek_of_the_protocols_size(api):
    from byoklib.primitives import b64decode
    key = api.root_key("dek-maker")
    answer = api.action(key["id"], "wrap", {})
    assert answer.status_code == 200, answer.text
    assert len(b64decode(answer.json()["plaintext"])) == protocol.GENERATED_DEK_BYTES


def test_rotation_interval_is_the_protocols(api, clock):
    key = api.root_key("rotated")
    assert api.action(key["id"], "rotate", {}).status_code == 204      # the first is free
    clock.advance(protocol.ROTATION_INTERVAL_SECONDS - 1)
    assert reason(api.action(key["id"], "rotate", {})) == rule("key.rotation_hourly").expect
    clock.advance(1)
    assert api.action(key["id"], "rotate", {}).status_code == 204


# --- the mock answers as each rule says -------------------------------------------------------

def test_rules_of_the_token_hold_on_the_mock(api, clock):
    assert reason(api.get("/api/v2/import_token")) == rule("token.not_found").expect
    low, high = protocol.TOKEN_RETRIEVALS.low, protocol.TOKEN_RETRIEVALS.high
    assert api.post("/api/v2/import_token", json={"maxAllowedRetrievals": high}).status_code \
        == rule("token.created").expect[0]
    api.new_token(maxAllowedRetrievals=low)
    api.token()
    assert reason(api.get("/api/v2/import_token")) == rule("token.retrievals_exceeded").expect
    api.new_token(expiration=protocol.TOKEN_EXPIRATION.low)
    clock.advance(protocol.TOKEN_EXPIRATION.low + 1)
    assert reason(api.get("/api/v2/import_token")) == rule("token.expired").expect


def test_rules_of_the_import_hold_on_the_mock(api):
    api.new_token(expiration=600, maxAllowedRetrievals=1)
    token = api.token()
    good = secure_fields(bytes(range(32)), token)
    key = {"type": "application/vnd.ibm.kms.key+json", "name": "replayed-key", "extractable": False}
    first = api.create_key({**key, **good})
    again = api.create_key({**key, **good})          # the replay, retrievals used up
    assert (first.status_code, again.status_code) == (201, rule("import.replay").expect[0])
    assert first.json()["resources"][0]["id"] != again.json()["resources"][0]["id"]
    other = secure_fields(bytes(range(32)), {**token, "nonce": "AAAAAAAAAAAAAAAA"})
    assert reason(api.create_key({**key, **good, "encryptedNonce": other["encryptedNonce"],
                                  "iv": other["iv"]})) == rule("import.nonce_mismatch").expect
    tag = bytearray(errors_b64(good["encryptedNonce"]))
    tag[-1] ^= 1
    assert reason(api.create_key({**key, **good, "encryptedNonce": b64(bytes(tag))})) \
        == rule("import.gcm_fails").expect
    payload = bytearray(errors_b64(good["payload"]))
    payload[100] ^= 1
    assert reason(api.create_key({**key, **good, "payload": b64(bytes(payload))})) \
        == rule("import.payload_undecryptable").expect
    assert reason(api.create_key({**key, **good, "iv": b64(bytes(16))})) \
        == rule("import.iv_size").expect
    assert reason(api.create_key({**key, **good, "payload": "not base64!"})) \
        == rule("import.not_base64").expect


def errors_b64(text):
    from byoklib.primitives import b64decode
    return b64decode(text)


def b64(raw):
    from byoklib.primitives import b64encode
    return b64encode(raw)
