"""IBM's other Python client, `redstone` (PyPI; its `redstone.client.KeyProtect`), drives
the mock: import token, import, wrap/unwrap/rewrap, rotate, disable/enable, delete/restore,
aliases, key rings, registrations and policies.

What redstone cannot do: its `create_key` has no `encryptedNonce`, `iv` or
`encryptionAlgorithm` (it sends `payload` alone, a plain import over TLS), and its
`rotate_key` sends `payload` alone too. So the secure import itself goes through
redstone's own authenticated session (`kp.session`, which adds its Bearer token and
`Bluemix-Instance` header), and everything after it through redstone's methods.
"""
import pytest
from conftest import KEY_TYPE, secure_fields

from byoklib import primitives

redstone = pytest.importorskip("redstone.client")

INSTANCE = "redstone-instance"


class StaticToken:
    """redstone's credentials: anything with get_token() (its TokenManager asks IAM)."""

    def get_token(self) -> str:
        return "redstone-token"


@pytest.fixture
def kp(server):
    client = redstone.KeyProtect(service_instance_id=INSTANCE, endpoint_url=server.url,
                                 credentials=StaticToken())
    yield client
    client.session.close()


def secure_import(kp, name: str, material: bytes, token: dict) -> dict:
    """POST /keys with the four secure-import fields, over redstone's session."""
    body = {"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1},
            "resources": [{"type": KEY_TYPE, "name": name, "extractable": False,
                           **secure_fields(material, token)}]}
    answer = kp.session.post(f"{kp.endpoint_url}/api/v2/keys", json=body,
                             headers={"Prefer": "return=representation"})
    kp._validate_resp(answer)
    assert answer.status_code == 201
    return answer.json()["resources"][0]


def test_secure_import_lifecycle_with_redstone(kp, clock):
    # 1. import token through redstone: POST, then GET (twice allowed)
    created = kp.create_import_token(expiration=600, max_allowed_retrievals=2)
    assert created["remainingRetrievals"] == 2 and "payload" not in created
    token = kp.get_import_token()
    assert token["remainingRetrievals"] == 1
    assert primitives.b64decode(token["payload"]).startswith(b"-----BEGIN PUBLIC KEY-----")
    assert len(primitives.b64decode(token["nonce"])) == 12

    # 2. the secure import (redstone's create_key cannot send the nonce fields)
    material = primitives.generate_key_material()
    key = secure_import(kp, "redstone-byok", material, token)
    assert key["imported"] is True and key["extractable"] is False

    # 3. read it back through redstone
    assert kp.get_key(key["id"])["id"] == key["id"]
    assert [k["id"] for k in kp.list_keys()] == [key["id"]]

    # 4. envelope encryption: wrap, unwrap, rewrap
    dek = b"a data-encryption key of 32 b.."
    wrapped = kp.wrap(key["id"], dek, aad=["redstone"])
    assert kp.unwrap(key["id"], wrapped["ciphertext"], aad=["redstone"]) == dek
    with pytest.raises(redstone.KeyProtect.KeyProtectError) as wrong_aad:
        kp.unwrap(key["id"], wrapped["ciphertext"], aad=["another"])
    assert wrong_aad.value.http_error.response.status_code == 422

    # 5. rotate an imported key with new material: redstone sends `payload` alone; the
    # mock accepts a plain rotation (no keyCreateImportAccess policy asks for a token)
    assert kp.rotate_key(key["id"], payload=primitives.generate_key_material()) is None
    rewrapped = kp.rewrap(key["id"], wrapped["ciphertext"], aad=["redstone"])
    assert rewrapped["rewrappedKeyVersion"]["id"] != wrapped["keyVersion"]["id"]
    assert kp.unwrap(key["id"], rewrapped["ciphertext"], aad=["redstone"]) == dek

    # 6. disable and enable (30 s apart), aliases
    kp.disable_key(key["id"])
    clock.advance(31)
    kp.enable_key(key["id"])
    kp.create_key_alias(key["id"], "redstone-alias")
    assert kp.get_key("redstone-alias")["id"] == key["id"]
    kp.delete_key_alias(key["id"], "redstone-alias")

    # 7. delete, restore after 30 s, delete again
    clock.advance(31)
    kp.delete_key(key["id"])
    assert kp.list_keys() == []
    clock.advance(31)
    kp.restore_key(key["id"])
    assert kp.get_key(key["id"])["state"] == 1
    clock.advance(31)
    kp.delete_key(key["id"])
    assert kp.get_key(key["id"])["state"] == 5


def test_a_wrong_nonce_is_refused_and_redstone_reports_it(kp):
    kp.create_import_token(expiration=600, max_allowed_retrievals=1)
    token = kp.get_import_token()
    other = dict(token, nonce=primitives.b64encode(bytes(12)))   # not the token's nonce
    with pytest.raises(redstone.KeyProtect.KeyProtectError) as refused:
        secure_import(kp, "wrong-nonce", primitives.generate_key_material(), other)
    response = refused.value.http_error.response
    assert response.status_code == 400
    assert response.json()["resources"][0]["reasons"][0]["code"] == "INCORRECT_NONCE_ERR"
    assert kp.list_keys() == []   # nothing was created


def test_plain_import_root_and_standard_keys_and_the_rest_with_redstone(kp):
    root = kp.create_key("redstone-root", payload=bytes(range(32)), root=True)
    assert root["imported"] is True
    standard = kp.create_key("redstone-standard", payload=b"a standard secret")
    assert primitives.b64decode(kp.get_key(standard["id"])["payload"]) == b"a standard secret"
    generated = kp.create_key("redstone-generated", root=True, alias_list=["gen-alias"])
    assert generated["imported"] is False
    assert kp.get_key("gen-alias")["id"] == generated["id"]
    # a generated key rotates with no payload; wrap with no plaintext makes a DEK
    assert kp.rotate_key(generated["id"]) is None
    made = kp.wrap(generated["id"], None)
    assert len(primitives.b64decode(made["plaintext"])) == 32

    kp.create_key_ring("redstone-ring")
    rings = [r["id"] for r in kp.get_key_rings()["resources"]]
    assert "redstone-ring" in rings and "default" in rings
    kp.delete_key_ring("redstone-ring")
    assert kp.get_registrations()["resources"] == []
    assert kp.get_registrations(key_id=root["id"])["resources"] == []

    kp.set_key_rotation_policy(generated["id"], 3)
    policies = kp.get_key_policies(generated["id"])["resources"]   # the whole envelope
    assert [p["rotation"]["interval_month"] for p in policies if "rotation" in p] == [3]
    # dual-authorisation delete: redstone sets it, initiates and cancels it
    kp.set_key_dual_auth_policy(root["id"], True)
    kp.initiate_dual_auth_delete(root["id"])
    kp.cancel_dual_auth_delete(root["id"])
    kp.sync_associated_resources(root["id"])
