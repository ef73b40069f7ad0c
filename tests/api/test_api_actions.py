"""Secure import failures, wrap/unwrap/rewrap, rotate, disable/enable over real HTTP."""
import json

import pytest
from conftest import KEY_TYPE, Api, reason, secure_fields

from byoklib import primitives
from byoklib.mock import running_server
from byoklib.mock.hsm import HSM
from byoklib.mock.keypairs import fixed_key_pairs
from byoklib.mock.service import KeyProtectService

KEYS = "/api/v2/keys"


def key_count(api) -> int:
    return int(api.call("HEAD", KEYS, params={"state": "0,1,2,3,5"}).headers["Key-Total"])


def refused_import(api, fields) -> tuple[int, str]:
    result = reason(api.create_key({"type": KEY_TYPE, "name": "refused", "extractable": False,
                                    **fields}))
    assert key_count(api) == 0
    return result


# --- secure import refusals --------------------------------------------------------------

def test_tampered_encrypted_nonce_is_incorrect_nonce_iv(api):
    api.new_token()
    fields = secure_fields(primitives.generate_key_material(), api.token())
    sealed = bytearray(primitives.b64decode(fields["encryptedNonce"]))
    sealed[-1] ^= 1   # flip a bit of the GCM tag
    fields["encryptedNonce"] = primitives.b64encode(bytes(sealed))
    assert refused_import(api, fields) == (400, "INCORRECT_NONCE_IV_ERR")


def test_other_nonce_is_incorrect_nonce(api):
    api.new_token()
    token = dict(api.token(), nonce=primitives.b64encode(b"another nonc"))
    assert refused_import(api, secure_fields(primitives.generate_key_material(), token)) == \
        (400, "INCORRECT_NONCE_ERR")


def test_replaced_token_nonce_is_incorrect_nonce(clock, token_key_pairs):
    """One fixed key pair: the replaced token's payload still RSA-decrypts, the nonce differs."""
    service = KeyProtectService(clock=clock, hsm=HSM(fixed_key_pairs(token_key_pairs[:1])))
    with running_server(service) as server:
        api = Api(server.url)
        api.new_token()
        old = api.token()
        api.new_token()
        fields = secure_fields(primitives.generate_key_material(), old)
        assert refused_import(api, fields) == (400, "INCORRECT_NONCE_ERR")


def test_replaced_token_key_pair_is_unprocessable_payload(api):
    api.new_token()
    old = api.token()
    api.new_token()   # fixed_key_pairs moves to the next test key
    fields = secure_fields(primitives.generate_key_material(), old)
    assert refused_import(api, fields) == (400, "UNPROCESSABLE_PAYLOAD_ERR")


@pytest.mark.parametrize("change,code,target", [
    ({"encryptionAlgorithm": "RSAES_OAEP_SHA_1"}, "INVALID_FIELD_ERR", "encryptionAlgorithm"),
    ({"encryptionAlgorithm": None}, "INVALID_FIELD_ERR", "encryptionAlgorithm"),
    ({"iv": primitives.b64encode(bytes(16))}, "INVALID_FIELD_ERR", "iv"),
    ({"iv": None}, "INVALID_FIELD_ERR", "iv"),
    ({"encryptedNonce": "%%%"}, "INVALID_FIELD_ERR", "encryptedNonce"),
    ({"encryptedNonce": None}, "INVALID_FIELD_ERR", "encryptedNonce"),
    ({"payload": None}, "INVALID_FIELD_ERR", "payload"),
    ({"payload": primitives.b64encode(b"garbage" * 10)}, "UNPROCESSABLE_PAYLOAD_ERR", "payload"),
])
def test_secure_import_field_refusals(api, change, code, target):
    api.new_token()
    fields = {**secure_fields(primitives.generate_key_material(), api.token()), **change}
    fields = {k: v for k, v in fields.items() if v is not None}
    response = api.create_key({"name": "refused", "extractable": False, **fields})
    assert reason(response) == (400, code)
    assert response.json()["resources"][0]["reasons"][0]["target"]["name"] == target
    assert key_count(api) == 0


def test_secure_import_fields_are_checked_before_the_token_is_looked_up(api):
    api.new_token()
    fields = dict(secure_fields(primitives.generate_key_material(), api.token()),
                  encryptionAlgorithm="RSAES_OAEP_SHA_1")
    other = Api(api.url, instance="instance-without-token")
    response = other.create_key({"name": "refused", "extractable": False, **fields})
    assert reason(response) == (400, "INVALID_FIELD_ERR")   # not 404: no token there
    assert response.json()["resources"][0]["reasons"][0]["target"]["name"] == \
        "encryptionAlgorithm"


def test_secure_import_of_wrong_sized_material(api):
    api.new_token()
    token = api.token()
    fields = secure_fields(primitives.generate_key_material(), token)
    fields["payload"] = primitives.b64encode(primitives.wrap_key_material(
        b"k" * 20, primitives.b64decode(token["payload"])))   # AES-GCM cannot use 20 bytes
    assert refused_import(api, fields) == (400, "INVALID_FIELD_ERR")


def test_secure_import_without_token_and_after_expiry(api, clock):
    fields = secure_fields(primitives.generate_key_material(),
                           {"nonce": primitives.b64encode(bytes(12)),
                            "payload": primitives.token_payload_from_public_key(
                                primitives.generate_rsa_private_key(1024))})
    assert refused_import(api, fields) == (404, "IMPORT_TOKEN_NOT_FOUND_ERR")
    api.new_token(expiration=300)
    fields = secure_fields(primitives.generate_key_material(), api.token())
    clock.advance(300)
    assert refused_import(api, fields) == (409, "IMPORT_TOKEN_EXPIRED_ERR")


def test_token_imports_several_keys_after_retrievals_are_used_up(api, clock):
    api.new_token(maxAllowedRetrievals=1)
    token = api.token()
    for n in range(3):
        api.secure_root_key(primitives.generate_key_material(), token, name=f"byok-{n}")
        clock.advance(60)
    assert key_count(api) == 3


# --- wrap / unwrap / rewrap ----------------------------------------------------------------

def test_wrap_generates_a_32_byte_dek(api):
    key = api.root_key()
    response = api.action(key["id"], "wrap", {})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.ibm.kms.key_action+json"
    body = response.json()
    assert len(primitives.b64decode(body["plaintext"])) == 32
    assert body["keyVersion"]["id"] == key["keyVersion"]["id"]
    blob = json.loads(primitives.b64decode(body["ciphertext"]))
    assert set(blob) == {"ciphertext", "iv", "version", "handle"}
    assert len(primitives.b64decode(blob["iv"])) == 12


@pytest.mark.parametrize("body", [None, "null"])
def test_wrap_accepts_no_body_or_null(api, body):
    key = api.root_key()
    response = api.post(f"{KEYS}/{key['id']}/actions/wrap", data=body)
    assert response.status_code == 200 and "plaintext" in response.json()


def test_wrap_unwrap_with_aad(api):
    key = api.root_key()
    dek = primitives.b64encode(b"eighteen-byte-dek!")
    wrapped = api.action(key["id"], "wrap", {"plaintext": dek, "aad": ["a", "b"]}).json()
    assert "plaintext" not in wrapped
    body = {"ciphertext": wrapped["ciphertext"], "aad": ["a", "b"]}
    unwrapped = api.action(key["id"], "unwrap", body).json()
    assert unwrapped["plaintext"] == dek and "rewrappedKeyVersion" not in unwrapped
    for aad in (None, ["a"], ["b", "a"], ["a", "c"], ["a,b"], ["ab"], ["a", "b", ""]):
        response = api.action(key["id"], "unwrap", {"ciphertext": wrapped["ciphertext"],
                                                     "aad": aad})
        assert reason(response) == (422, "UNPROCESSABLE_CIPHERTEXT_ERR"), aad
    joined = api.action(key["id"], "wrap", {"plaintext": dek, "aad": ["a,b"]}).json()
    assert reason(api.action(key["id"], "unwrap", {"ciphertext": joined["ciphertext"],
                                                   "aad": ["a", "b"]})) == \
        (422, "UNPROCESSABLE_CIPHERTEXT_ERR")   # the list is bound, not its joined text


def test_foreign_or_corrupted_ciphertext_is_422(api):
    one, two = api.root_key("one"), api.root_key("two")
    wrapped = api.action(one["id"], "wrap", {}).json()["ciphertext"]
    assert reason(api.action(two["id"], "unwrap", {"ciphertext": wrapped})) == \
        (422, "UNPROCESSABLE_CIPHERTEXT_ERR")
    blob = json.loads(primitives.b64decode(wrapped))
    sealed = bytearray(primitives.b64decode(blob["ciphertext"]))
    sealed[0] ^= 1
    blob["ciphertext"] = primitives.b64encode(bytes(sealed))
    corrupted = primitives.b64encode(json.dumps(blob).encode())
    for ciphertext in (corrupted, primitives.b64encode(b"not json"),
                       primitives.b64encode(b'{"handle": 1}'), primitives.b64encode(b"[]")):
        assert reason(api.action(one["id"], "unwrap", {"ciphertext": ciphertext})) == \
            (422, "UNPROCESSABLE_CIPHERTEXT_ERR")


@pytest.mark.parametrize("action,body,code", [
    ("unwrap", None, "NO_BODY_ERR"), ("unwrap", {}, "NO_BODY_ERR"),
    ("rewrap", None, "NO_BODY_ERR"),
    ("unwrap", {"ciphertext": "not base64"}, "INVALID_FIELD_ERR"),
    ("unwrap", {"ciphertext": 5}, "INVALID_FIELD_ERR"),
    ("wrap", {"plaintext": "not base64"}, "INVALID_FIELD_ERR"),
    ("wrap", {"plaintext": ""}, "INVALID_FIELD_ERR"),
    ("wrap", {"plaintext": "QUFB" * 1025}, "INVALID_FIELD_ERR"),
    ("wrap", {"aad": "a"}, "INVALID_FIELD_ERR"),
    ("wrap", {"aad": ["x" * 256]}, "INVALID_FIELD_ERR"),
    ("wrap", [], "BAD_BODY_ERR"),
])
def test_action_body_refusals(api, action, body, code):
    key = api.root_key()
    assert reason(api.action(key["id"], action, body)) == (400, code)


def test_unwrap_after_rotation_rewraps_to_latest(api):
    key = api.root_key()
    wrapped = api.action(key["id"], "wrap", {"aad": ["ctx"]}).json()
    assert api.action(key["id"], "rotate", {}).status_code == 204
    latest = api.key(key["id"])["keyVersion"]["id"]
    body = {"ciphertext": wrapped["ciphertext"], "aad": ["ctx"]}
    unwrapped = api.action(key["id"], "unwrap", body).json()
    assert unwrapped["plaintext"] == wrapped["plaintext"]
    assert unwrapped["keyVersion"]["id"] == key["keyVersion"]["id"]
    assert unwrapped["rewrappedKeyVersion"]["id"] == latest
    again = api.action(key["id"], "unwrap", {"ciphertext": unwrapped["ciphertext"],
                                              "aad": ["ctx"]}).json()
    assert again["keyVersion"]["id"] == latest and "rewrappedKeyVersion" not in again
    rewrapped = api.action(key["id"], "rewrap", body).json()
    assert rewrapped["rewrappedKeyVersion"]["id"] == latest
    final = api.action(key["id"], "unwrap", {"ciphertext": rewrapped["ciphertext"],
                                              "aad": ["ctx"]}).json()
    assert final["plaintext"] == wrapped["plaintext"]


def test_older_query_form_of_actions(api):
    key = api.root_key()
    wrapped = api.post(f"{KEYS}/{key['id']}", json={}, params={"action": "wrap"})
    assert wrapped.status_code == 200
    assert api.post(f"{KEYS}/{key['id']}", params={"action": "disable"}).status_code == 204
    assert api.key(key["id"])["state"] == 2
    assert reason(api.post(f"{KEYS}/{key['id']}", params={"action": "explode"})) == \
        (400, "INVALID_QUERY_PARAM_ERR")
    assert reason(api.post(f"{KEYS}/{key['id']}")) == (400, "INVALID_QUERY_PARAM_ERR")


def test_unknown_action_path_is_400(api):
    key = api.root_key()
    assert reason(api.action(key["id"], "explode", {})) == (400, "INVALID_QUERY_PARAM_ERR")


@pytest.mark.parametrize("action,body", [("wrap", {}), ("unwrap", {"ciphertext": "QUFB"}),
                                         ("rewrap", {"ciphertext": "QUFB"}), ("rotate", {}),
                                         ("disable", None), ("enable", None)])
def test_standard_keys_refuse_root_actions(api, action, body):
    key = api.create_key({"name": "standard", "extractable": True}).json()["resources"][0]
    assert reason(api.action(key["id"], action, body)) == (400, "KEY_ROOT_REQ_ERR")


# --- rotate -----------------------------------------------------------------------------

def test_rotate_generated_key_refuses_payload(api):
    key = api.root_key()
    response = api.action(key["id"], "rotate", {"payload": primitives.b64encode(bytes(32))})
    assert reason(response) == (400, "INVALID_QUERY_PARAM_ERR")
    assert response.json()["resources"][0]["reasons"][0]["target"] == \
        {"type": "query_param", "name": "payload"}
    assert api.key(key["id"])["keyVersion"] == key["keyVersion"]


@pytest.mark.parametrize("body", [None, {}, "null"])
def test_rotate_imported_key_needs_payload(api, body):
    key = api.root_key(payload=primitives.b64encode(bytes(16)))
    response = (api.post(f"{KEYS}/{key['id']}/actions/rotate", data=body) if body == "null"
                else api.action(key["id"], "rotate", body))
    assert reason(response) == (400, "KEY_PAYLOAD_REQ_ERR")


def test_rotate_imported_key_plain_and_with_token(api, clock):
    key = api.root_key(payload=primitives.b64encode(bytes(16)))
    wrapped = api.action(key["id"], "wrap", {}).json()
    response = api.action(key["id"], "rotate", {"payload": primitives.b64encode(bytes(32))})
    assert response.status_code == 204 and response.content == b""
    rotated = api.key(key["id"])
    assert rotated["algorithmBitSize"] == 256 and rotated["lastRotateDate"]
    clock.advance(hours=1)
    api.new_token()
    fields = secure_fields(primitives.generate_key_material(192), api.token())
    assert api.action(key["id"], "rotate", fields).status_code == 204
    assert api.key(key["id"])["algorithmBitSize"] == 192
    unwrapped = api.action(key["id"], "unwrap", {"ciphertext": wrapped["ciphertext"]}).json()
    assert unwrapped["plaintext"] == wrapped["plaintext"]


def test_rotate_imported_key_refuses_bad_material(api):
    key = api.root_key(payload=primitives.b64encode(bytes(16)))
    response = api.action(key["id"], "rotate", {"payload": primitives.b64encode(bytes(20))})
    assert reason(response) == (400, "INVALID_FIELD_ERR")
    api.new_token()
    fields = secure_fields(primitives.generate_key_material(), api.token())
    fields["iv"] = primitives.b64encode(bytes(12))
    assert reason(api.action(key["id"], "rotate", fields)) == (400, "INCORRECT_NONCE_IV_ERR")
    versions = api.get(f"{KEYS}/{key['id']}/versions").json()["resources"]
    assert len(versions) == 1


def test_one_rotation_per_hour_after_the_first(api, clock):
    key = api.root_key()
    assert api.action(key["id"], "rotate", {}).status_code == 204
    clock.advance(minutes=59, seconds=59)
    assert reason(api.action(key["id"], "rotate", {})) == (409, "KEY_ROTATION_NOT_PERMITTED")
    clock.advance(1)
    assert api.action(key["id"], "rotate", {}).status_code == 204


# --- disable / enable and the state matrix ------------------------------------------------

def test_disable_enable_cycle_and_30_second_rule(api, clock):
    key = api.root_key()
    wrapped = api.action(key["id"], "wrap", {}).json()
    # IBM's Go client sends the JSON literal null as the disable body
    assert api.post(f"{KEYS}/{key['id']}/actions/disable", data="null").status_code == 204
    assert api.key(key["id"])["state"] == 2
    assert reason(api.action(key["id"], "disable")) == (409, "KEY_ACTION_INVALID_STATE_ERR")
    for action, body in (("wrap", {}), ("unwrap", {"ciphertext": wrapped["ciphertext"]}),
                         ("rewrap", {"ciphertext": wrapped["ciphertext"]}), ("rotate", {})):
        assert reason(api.action(key["id"], action, body)) == (409,
                                                               "KEY_ACTION_INVALID_STATE_ERR")
    clock.advance(29)
    assert reason(api.post(f"{KEYS}/{key['id']}/actions/enable", data="{}")) == \
        (409, "REQ_TOO_EARLY_ERR")
    clock.advance(1)
    assert api.post(f"{KEYS}/{key['id']}/actions/enable", data="null").status_code == 204
    assert api.key(key["id"])["state"] == 1
    assert reason(api.action(key["id"], "enable")) == (409, "KEY_ACTION_INVALID_STATE_ERR")


def test_expired_key_cannot_be_enabled_or_disabled(api, clock):
    key = api.root_key(expirationDate="2026-01-01T12:01:00Z")
    api.action(key["id"], "disable")
    clock.advance(minutes=2)
    assert api.key(key["id"])["state"] == 3
    assert reason(api.action(key["id"], "enable")) == (409, "KEY_ACTION_INVALID_STATE_ERR")
    assert reason(api.action(key["id"], "disable")) == (409, "KEY_ACTION_INVALID_STATE_ERR")
