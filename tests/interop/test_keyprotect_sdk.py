"""IBM's own Python client (`keyprotect` 3.0.1 + ibm-cloud-sdk-core) drives the mock.

It proves the mock's paths, status codes and content types are what IBM's generated
client expects: import-token calls come back as dicts (application/json), while
create_key/wrap/etc. come back as `requests.Response`s whose `.json()` IBM's own
integration tests call (a vendor content type, see byoklib.mock.http.app).
"""

import pytest
from conftest import KEY_TYPE, envelope, secure_fields, stream

from byoklib import primitives

ibm = pytest.importorskip("keyprotect.ibm_key_protect_api_v2")
from ibm_cloud_sdk_core import ApiException  # noqa: E402  (after the skip check)

INSTANCE = "ibm-client-instance"


def create(kp, resource, prefer="return=representation") -> dict:
    response = kp.create_key(bluemix_instance=INSTANCE, key_create_body=stream(envelope(resource)),
                             prefer=prefer)
    assert response.get_status_code() == 201
    return response.get_result().json()["resources"][0]


def test_secure_import_lifecycle_with_ibm_client(kp, clock):
    # 1. import token: POST then GET, both parsed into dicts by the SDK
    posted = kp.post_import_token(bluemix_instance=INSTANCE, expiration=600,
                                  max_allowed_retrievals=2)
    assert posted.get_status_code() == 200 and posted.get_result()["remainingRetrievals"] == 2
    token = kp.get_import_token(bluemix_instance=INSTANCE).get_result()
    model = ibm.GetImportToken.from_dict(token)   # IBM's model decodes payload and nonce
    assert len(model.nonce) == 12 and model.payload.startswith(b"-----BEGIN PUBLIC KEY-----")

    # 2. secure import: the four fields built with byoklib.primitives
    material = primitives.generate_key_material()
    key = create(kp, {"type": KEY_TYPE, "name": "ibm-byok", "extractable": False,
                      **secure_fields(material, token)})
    assert key["imported"] is True and key["state"] == 1
    key_id = key["id"]

    # 3. read it back, in the list and on its own
    got = kp.get_key(id=key_id, bluemix_instance=INSTANCE).get_result().json()["resources"][0]
    assert got["id"] == key_id and "payload" not in got
    listed = kp.get_keys(bluemix_instance=INSTANCE).get_result().json()
    assert [k["id"] for k in listed["resources"]] == [key_id]
    meta = kp.get_key_metadata(id=key_id, bluemix_instance=INSTANCE)
    assert meta.get_status_code() == 200
    head = kp.get_key_collection_metadata(bluemix_instance=INSTANCE, state=[0, 1, 2, 3],
                                          extractable=False)
    assert head.get_status_code() == 200 and head.get_headers()["Key-Total"] == "1"

    # 4. envelope encryption, as IBM's integration test does it (18-byte plaintext)
    wrapped = kp.wrap_key(id=key_id, bluemix_instance=INSTANCE, key_action_wrap_body=stream(
        {"plaintext": "cGxhaW50ZXh0LWRhdGEta2V5"}))
    assert wrapped.get_status_code() == 200
    ciphertext = wrapped.get_result().json()["ciphertext"]
    unwrapped = kp.unwrap_key(id=key_id, bluemix_instance=INSTANCE,
                              key_action_unwrap_body=stream({"ciphertext": ciphertext}))
    assert unwrapped.get_result().json()["plaintext"] == "cGxhaW50ZXh0LWRhdGEta2V5"

    # 5. rotate with new material under the same token (second retrieval)
    token = kp.get_import_token(bluemix_instance=INSTANCE).get_result()
    rotated = kp.rotate_key(id=key_id, bluemix_instance=INSTANCE, key_action_rotate_body=stream(
        secure_fields(primitives.generate_key_material(), token)))
    assert rotated.get_status_code() == 204
    versions = kp.get_key_versions(id=key_id, bluemix_instance=INSTANCE, total_count=True,
                                   all_key_states=False).get_result().json()
    assert versions["metadata"]["totalCount"] == 2
    rewrapped = kp.rewrap_key(id=key_id, bluemix_instance=INSTANCE,
                              key_action_rewrap_body=stream({"ciphertext": ciphertext}))
    assert rewrapped.get_result().json()["rewrappedKeyVersion"]["id"] == \
        versions["resources"][0]["id"]

    # 6. a third retrieval is refused: the SDK raises with the mock's status
    with pytest.raises(ApiException) as info:
        kp.get_import_token(bluemix_instance=INSTANCE)
    assert info.value.status_code == 409
    assert info.value.http_response.json()["resources"][0]["reasons"][0]["code"] == \
        "IMPORT_TOKEN_RETRIEVALS_EXCEEDED_ERR"

    # 7. delete with representation, then restore after 30 s
    deleted = kp.delete_key(id=key_id, bluemix_instance=INSTANCE,
                            prefer="return=representation", force=False)
    assert deleted.get_status_code() == 200
    assert deleted.get_result().json()["resources"][0]["state"] == 5
    clock.advance(31)
    restored = kp.restore_key(id=key_id, bluemix_instance=INSTANCE)
    assert restored.get_status_code() == 201
    assert restored.get_result().json()["resources"][0]["state"] == 1


def test_generated_keys_disable_enable_and_policies_with_ibm_client(kp, clock):
    root = create(kp, {"type": KEY_TYPE, "name": "created-test-root-key",
                       "description": "A Key Protect key used for integration testing",
                       "extractable": False})
    standard = create(kp, {"type": KEY_TYPE, "name": "standard", "extractable": True})
    overridden = kp.create_key_with_policies_overrides(
        bluemix_instance=INSTANCE, prefer="return=representation",
        key_with_policy_overrides_create_body=stream(envelope({
            "type": KEY_TYPE, "name": "policies-test-overriden-key", "extractable": False,
            "dualAuthDelete": {"enabled": False}, "rotation": {"enabled": True,
                                                               "interval_month": 6}})))
    assert overridden.get_status_code() == 201
    assert overridden.get_result().json()["resources"][0]["rotation"]["interval_month"] == 6
    assert len(primitives.b64decode(standard["payload"])) == 32

    generated = kp.wrap_key(id=root["id"], bluemix_instance=INSTANCE).get_result().json()
    assert len(primitives.b64decode(generated["plaintext"])) == 32
    assert kp.rotate_key(id=root["id"], bluemix_instance=INSTANCE,
                         key_action_rotate_body=stream({})).get_status_code() == 204

    assert kp.disable_key(id=root["id"], bluemix_instance=INSTANCE).get_status_code() == 204
    with pytest.raises(ApiException) as info:
        kp.enable_key(id=root["id"], bluemix_instance=INSTANCE)
    assert info.value.status_code == 409
    clock.advance(31)
    assert kp.enable_key(id=root["id"], bluemix_instance=INSTANCE).get_status_code() == 204

    policy = {"metadata": {"collectionType": "application/vnd.ibm.kms.policy+json",
                           "collectionTotal": 1},
              "resources": [{"type": "application/vnd.ibm.kms.policy+json",
                             "rotation": {"interval_month": 3}}]}
    put = kp.put_policy(id=root["id"], bluemix_instance=INSTANCE, key_policy_put_body=policy,
                        policy="rotation")
    assert put.get_status_code() == 200
    got = kp.get_policy(id=root["id"], bluemix_instance=INSTANCE, policy="rotation")
    assert got.get_result().json()["resources"][0]["rotation"]["interval_month"] == 3

    kcia = {"metadata": {"collectionType": "application/vnd.ibm.kms.policy+json",
                         "collectionTotal": 1},
            "resources": [{"policy_type": "keyCreateImportAccess",
                           "policy_data": {"enabled": True,
                                           "attributes": {"enforce_token": True}}}]}
    assert kp.put_instance_policy(bluemix_instance=INSTANCE, instance_policy_put_body=kcia,
                                  policy="keyCreateImportAccess").get_status_code() == 204
    with pytest.raises(ApiException) as info:
        create(kp, {"type": KEY_TYPE, "name": "plain-import", "extractable": False,
                    "payload": primitives.b64encode(bytes(32))})
    assert info.value.status_code == 409

    # the deprecated ?action= form, via IBM's action_on_key
    acted = kp.action_on_key(id=root["id"], bluemix_instance=INSTANCE, action="wrap",
                             key_action_body=stream({}))
    assert acted.get_status_code() == 200
