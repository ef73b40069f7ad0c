"""The emulator's endpoints beyond the BYOK core, driven by IBM's own Python client
(`keyprotect` 3.0.1) against running_server(), plus direct HTTP tests of the refusals.

Key rings and the X-Kms-Key-Ring scope (byoklib.mock.service.rings).
"""

import pytest
from conftest import KEY_TYPE, envelope, reason, stream

ibm = pytest.importorskip("keyprotect.ibm_key_protect_api_v2")
from ibm_cloud_sdk_core import ApiException  # noqa: E402  (after the skip check)

INSTANCE = "instance-1"   # the same instance as conftest's Api, so both views agree


def create(kp, name="root", ring=None) -> dict:
    response = kp.create_key(bluemix_instance=INSTANCE, prefer="return=representation",
                             x_kms_key_ring=ring, key_create_body=stream(envelope(
                                 {"type": KEY_TYPE, "name": name, "extractable": False})))
    assert response.get_status_code() == 201
    return response.get_result().json()["resources"][0]


def code_of(info) -> tuple[int, str]:
    body = info.value.http_response.json()
    return info.value.status_code, body["resources"][0]["reasons"][0]["code"]


# --- key rings with IBM's client ---------------------------------------------------------

def test_key_ring_lifecycle_with_ibm_client(kp, clock):
    listed = kp.list_key_rings(bluemix_instance=INSTANCE, total_count=True)
    assert listed.get_status_code() == 200
    body = listed.get_result().json()
    assert [r["id"] for r in body["resources"]] == ["default"]
    assert body["metadata"]["totalCount"] == 1
    model = ibm.ListKeyRingsWithTotalCount.from_dict(body)   # IBM's model reads it
    assert model.resources[0].id == "default"

    assert kp.create_key_ring(key_ring_id="test-keyring",
                              bluemix_instance=INSTANCE).get_status_code() == 201
    key = create(kp)
    assert key["keyRingID"] == "default"

    # move it, as IBM's integration test does (test_patch_key)
    patched = kp.patch_key(id=key["id"], bluemix_instance=INSTANCE,
                           key_patch_body=stream({"keyRingID": "test-keyring"}))
    assert patched.get_status_code() == 200
    assert patched.get_result().json()["resources"][0]["keyRingID"] == "test-keyring"

    # the header scopes lookups: right ring, no ring -> found; wrong ring -> 404
    got = kp.get_key(id=key["id"], bluemix_instance=INSTANCE, x_kms_key_ring="test-keyring")
    assert got.get_result().json()["resources"][0]["keyRingID"] == "test-keyring"
    assert kp.get_key(id=key["id"], bluemix_instance=INSTANCE).get_status_code() == 200
    with pytest.raises(ApiException) as info:
        kp.get_key(id=key["id"], bluemix_instance=INSTANCE, x_kms_key_ring="default")
    assert code_of(info) == (404, "KEY_NOT_FOUND_ERR")

    # a ring with keys is not deleted
    with pytest.raises(ApiException) as info:
        kp.delete_key_ring(key_ring_id="test-keyring", bluemix_instance=INSTANCE)
    assert code_of(info) == (409, "KEY_RING_NOT_EMPTY_ERR")

    # lists and HEAD count the scoped ring only
    in_ring = kp.get_keys(bluemix_instance=INSTANCE, x_kms_key_ring="test-keyring")
    assert [k["id"] for k in in_ring.get_result().json()["resources"]] == [key["id"]]
    head = kp.get_key_collection_metadata(bluemix_instance=INSTANCE, x_kms_key_ring="default")
    assert head.get_headers()["Key-Total"] == "0"

    # delete inside the ring (IBM's test_delete_key), then patch back and delete the ring
    deleted = kp.delete_key(id=key["id"], bluemix_instance=INSTANCE,
                            x_kms_key_ring="test-keyring", prefer="return=representation")
    assert deleted.get_status_code() == 200
    clock.advance(31)
    assert kp.restore_key(id=key["id"], bluemix_instance=INSTANCE,
                          x_kms_key_ring="test-keyring").get_status_code() == 201
    kp.patch_key(id=key["id"], bluemix_instance=INSTANCE, x_kms_key_ring="test-keyring",
                 key_patch_body=stream({"keyRingID": "default"}))
    assert kp.delete_key_ring(key_ring_id="test-keyring",
                              bluemix_instance=INSTANCE).get_status_code() == 204
    rings = kp.list_key_rings(bluemix_instance=INSTANCE).get_result().json()["resources"]
    assert [r["id"] for r in rings] == ["default"]


def test_key_created_in_a_ring_stays_there(kp):
    kp.create_key_ring(key_ring_id="ring-a", bluemix_instance=INSTANCE)
    key = create(kp, ring="ring-a")
    assert key["keyRingID"] == "ring-a"
    wrapped = kp.wrap_key(id=key["id"], bluemix_instance=INSTANCE, x_kms_key_ring="ring-a")
    assert wrapped.get_status_code() == 200
    with pytest.raises(ApiException) as info:
        kp.wrap_key(id=key["id"], bluemix_instance=INSTANCE, x_kms_key_ring="default")
    assert code_of(info) == (404, "KEY_NOT_FOUND_ERR")


# --- refusals over plain HTTP --------------------------------------------------------------

@pytest.mark.parametrize("ring_id", ["a", "x" * 101, "has_underscore", "sp ace", "dot.ted"])
def test_bad_ring_ids_refused(api, ring_id):
    response = api.post(f"/api/v2/key_rings/{ring_id}")
    assert reason(response) == (400, "INVALID_PATH_PARAM_ERR")
    rings = api.get("/api/v2/key_rings").json()["resources"]
    assert [r["id"] for r in rings] == ["default"]


def test_ring_refusals(api, clock):
    assert reason(api.post("/api/v2/key_rings/default")) == (409, "KEY_RING_EXISTS_ERR")
    assert reason(api.call("DELETE", "/api/v2/key_rings/default")) == \
        (400, "KEY_RING_RESERVED_ERR")
    assert reason(api.call("DELETE", "/api/v2/key_rings/nope")) == \
        (404, "KEY_RING_NOT_FOUND_ERR")
    assert api.post("/api/v2/key_rings/ring-1").status_code == 201
    assert reason(api.post("/api/v2/key_rings/ring-1")) == (409, "KEY_RING_EXISTS_ERR")
    assert reason(api.call("DELETE", "/api/v2/key_rings/ring-1?force=maybe")) == \
        (400, "INVALID_QUERY_PARAM_ERR")

    # a header naming an unknown ring: 404 on create, nothing created
    response = api.post("/api/v2/keys", json=envelope(
        {"type": KEY_TYPE, "name": "ring-key", "extractable": False}),
        headers={"X-Kms-Key-Ring": "ghost"})
    assert reason(response) == (404, "KEY_RING_NOT_FOUND_ERR")
    assert api.get("/api/v2/keys").json()["resources"] == []

    # force deletes a ring whose keys are all deleted, moving them to default
    key = api.post("/api/v2/keys", json=envelope(
        {"type": KEY_TYPE, "name": "ring-key", "extractable": False}),
        headers={"X-Kms-Key-Ring": "ring-1"}).json()["resources"][0]
    assert api.call("DELETE", f"/api/v2/keys/{key['id']}").status_code == 204
    assert reason(api.call("DELETE", "/api/v2/key_rings/ring-1")) == \
        (409, "KEY_RING_NOT_EMPTY_ERR")
    assert api.call("DELETE", "/api/v2/key_rings/ring-1?force=true").status_code == 204
    assert api.key(key["id"])["keyRingID"] == "default"


def test_patch_refusals_change_nothing(api):
    key = api.root_key()
    path = f"/api/v2/keys/{key['id']}"
    for body in ({}, {"keyRingID": 3}, {"keyRingID": ""}, {"keyRingID": "default", "name": "x"},
                 [1]):
        assert reason(api.call("PATCH", path, json=body)) == (400, "BAD_BODY_ERR"), body
    assert reason(api.call("PATCH", path, json={"keyRingID": "ghost"})) == \
        (404, "KEY_RING_NOT_FOUND_ERR")
    assert reason(api.call("PATCH", path, json={"keyRingID": "default"},
                           headers={"X-Kms-Key-Ring": "ghost"})) == \
        (404, "KEY_RING_NOT_FOUND_ERR")
    assert api.key(key["id"])["keyRingID"] == "default"
    assert api.call("DELETE", path).status_code == 204
    assert reason(api.call("PATCH", path, json={"keyRingID": "default"})) == \
        (410, "KEY_DELETED_ERR")


# --- aliases ---------------------------------------------------------------------------------

def test_aliases_with_ibm_client(kp):
    key = create(kp, "aliased")
    made = kp.create_key_alias(id=key["id"], alias="my-alias", bluemix_instance=INSTANCE)
    assert made.get_status_code() == 201
    body = made.get_result().json()
    model = ibm.KeyAlias.from_dict(body)   # IBM's model reads it
    assert model.resources[0].alias == "my-alias" and model.resources[0].key_id == key["id"]

    # every {id} takes the alias: get, metadata, wrap/unwrap, policies, another alias
    got = kp.get_key(id="my-alias", bluemix_instance=INSTANCE).get_result().json()
    assert got["resources"][0]["id"] == key["id"] and got["resources"][0]["aliases"] == \
        ["my-alias"]
    assert kp.get_key_metadata(id="my-alias", bluemix_instance=INSTANCE).get_status_code() == 200
    wrapped = kp.wrap_key(id="my-alias", bluemix_instance=INSTANCE).get_result().json()
    unwrapped = kp.unwrap_key(id="my-alias", bluemix_instance=INSTANCE,
                              key_action_unwrap_body=stream({"ciphertext": wrapped["ciphertext"]}))
    assert unwrapped.get_result().json()["plaintext"] == wrapped["plaintext"]
    assert kp.create_key_alias(id="my-alias", alias="second_alias",
                               bluemix_instance=INSTANCE).get_status_code() == 201
    assert kp.get_key_versions(id="second_alias",
                               bluemix_instance=INSTANCE).get_status_code() == 200

    assert kp.delete_key_alias(id=key["id"], alias="my-alias",
                               bluemix_instance=INSTANCE).get_status_code() == 204
    with pytest.raises(ApiException) as info:
        kp.get_key(id="my-alias", bluemix_instance=INSTANCE)
    assert code_of(info) == (404, "KEY_NOT_FOUND_ERR")


@pytest.mark.parametrize("alias", ["a", "x" * 91, "has space", "dot.ted", "keys", "Rotate",
                                   "registrations", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"])
def test_bad_aliases_refused(api, alias):
    key = api.root_key()
    response = api.post(f"/api/v2/keys/{key['id']}/aliases/{alias}")
    assert reason(response) == (400, "INVALID_PATH_PARAM_ERR")
    response = api.create_key({"type": KEY_TYPE, "name": "with-alias", "extractable": False,
                               "aliases": [alias]})
    assert reason(response) == (400, "INVALID_FIELD_ERR")
    assert api.key(key["id"])["aliases"] == []
    assert len(api.get("/api/v2/keys").json()["resources"]) == 1


def test_alias_quota_uniqueness_and_refusals(api):
    first = api.root_key("first", aliases=["a1", "a2", "a3", "a4", "a5"])
    second = api.root_key("second")
    path = f"/api/v2/keys/{second['id']}/aliases"
    # unique in the instance, also at creation; a refused create leaves nothing
    assert reason(api.post(f"{path}/a1")) == (409, "KEY_ALIAS_NOT_UNIQUE_ERR")
    assert reason(api.create_key({"type": KEY_TYPE, "name": "third", "extractable": False,
                                  "aliases": ["fresh", "a2"]})) == \
        (409, "KEY_ALIAS_NOT_UNIQUE_ERR")
    assert reason(api.create_key({"type": KEY_TYPE, "name": "third", "extractable": False,
                                  "aliases": ["dup", "dup"]})) == (400, "INVALID_FIELD_ERR")
    assert len(api.get("/api/v2/keys").json()["resources"]) == 2
    assert api.post(f"{path}/fresh").status_code == 201
    # at most five per key; re-adding one the key has is a no-op
    assert reason(api.post(f"/api/v2/keys/{first['id']}/aliases/a6")) == \
        (400, "KEY_ALIAS_QUOTA_ERR")
    assert api.post(f"/api/v2/keys/{first['id']}/aliases/a5").status_code == 201
    assert api.key(first["id"])["aliases"] == ["a1", "a2", "a3", "a4", "a5"]
    # deleting an alias the key lacks; aliases of a deleted key stay reserved
    assert reason(api.call("DELETE", f"{path}/a1")) == (404, "KEY_ALIAS_NOT_FOUND_ERR")
    assert api.call("DELETE", f"/api/v2/keys/{first['id']}").status_code == 204
    assert reason(api.post(f"/api/v2/keys/{first['id']}/aliases/b1")) == (410, "KEY_DELETED_ERR")
    assert reason(api.post(f"{path}/a1")) == (409, "KEY_ALIAS_NOT_UNIQUE_ERR")
    assert reason(api.post("/api/v2/keys/no-such-key/aliases/b1")) == (404, "KEY_NOT_FOUND_ERR")


# --- policies ----------------------------------------------------------------------------------

POLICY = "application/vnd.ibm.kms.policy+json"


def policy_body(resource: dict) -> dict:
    return {"metadata": {"collectionType": POLICY, "collectionTotal": 1},
            "resources": [{"type": POLICY, **resource}]}


def instance_body(policy_type: str, **policy_data) -> dict:
    return {"metadata": {"collectionType": POLICY, "collectionTotal": 1},
            "resources": [{"policy_type": policy_type, "policy_data": policy_data}]}


def test_key_and_instance_policies_with_ibm_client(kp):
    key = create(kp, "policied")
    put = kp.put_policy(id=key["id"], bluemix_instance=INSTANCE, policy="dualAuthDelete",
                        key_policy_put_body=policy_body({"dualAuthDelete": {"enabled": True}}))
    assert put.get_status_code() == 200
    assert put.get_result().json()["resources"][0]["dualAuthDelete"] == {"enabled": True}
    kp.put_policy(id=key["id"], bluemix_instance=INSTANCE, policy="rotation",
                  key_policy_put_body=policy_body({"rotation": {"interval_month": 2}}))
    both = kp.get_policy(id=key["id"], bluemix_instance=INSTANCE).get_result().json()
    assert [sorted(set(p) & {"rotation", "dualAuthDelete"}) for p in both["resources"]] == \
        [["rotation"], ["dualAuthDelete"]]
    one = kp.get_policy(id=key["id"], bluemix_instance=INSTANCE, policy="dualAuthDelete")
    assert len(one.get_result().json()["resources"]) == 1
    rotation = kp.get_policy(id=key["id"], bluemix_instance=INSTANCE, policy="rotation")
    parsed = ibm.GetKeyPoliciesOneOfGetKeyPolicyRotation.from_dict(rotation.get_result().json())
    assert parsed.resources[0].rotation.interval_month == 2   # IBM's model needs `type`
    got = kp.get_key(id=key["id"], bluemix_instance=INSTANCE).get_result().json()
    assert got["resources"][0]["dualAuthDelete"] == {"enabled": True, "keySetForDeletion": False}
    with pytest.raises(ApiException) as info:   # cannot be reverted
        kp.put_policy(id=key["id"], bluemix_instance=INSTANCE, policy="dualAuthDelete",
                      key_policy_put_body=policy_body({"dualAuthDelete": {"enabled": False}}))
    assert code_of(info) == (400, "INVALID_FIELD_ERR")

    for policy_type, data in [
            ("dualAuthDelete", {"enabled": True}),
            ("rotation", {"enabled": True, "attributes": {"interval_month": 4}}),
            ("allowedNetwork", {"enabled": True,
                                "attributes": {"allowed_network": "public-and-private"}}),
            ("metrics", {"enabled": False})]:
        response = kp.put_instance_policy(bluemix_instance=INSTANCE, policy=policy_type,
                                          instance_policy_put_body=instance_body(policy_type,
                                                                                 **data))
        assert response.get_status_code() == 204, policy_type
        stored = kp.get_instance_policy(bluemix_instance=INSTANCE, policy=policy_type)
        assert stored.get_result().json()["resources"][0]["policy_data"] == data
    every = kp.get_instance_policy(bluemix_instance=INSTANCE).get_result().json()
    assert {p["policy_type"] for p in every["resources"]} == \
        {"dualAuthDelete", "rotation", "allowedNetwork", "metrics"}

    # the instance policies apply to keys created afterwards
    later = create(kp, "later")
    assert later["dualAuthDelete"]["enabled"] is True
    assert later["rotation"] == {"enabled": True, "interval_month": 4}


@pytest.mark.parametrize("policy_type,data", [
    ("rotation", {"enabled": True}),
    ("rotation", {"enabled": False, "attributes": {"interval_month": 3}}),
    ("allowedNetwork", {"enabled": True, "attributes": {"allowed_network": "everywhere"}}),
    ("dualAuthDelete", {"enabled": True, "attributes": {}}),
    ("metrics", {"enabled": "yes"}),
    ("rotation", {"enabled": True, "attributes": {"interval_month": 13}}),
])
def test_instance_policy_refusals(api, policy_type, data):
    response = api.call("PUT", "/api/v2/instance/policies",
                        json=instance_body(policy_type, **data))
    assert response.status_code == 400
    assert api.get("/api/v2/instance/policies").json()["resources"] == []


def test_key_policy_refusals(api):
    key = api.root_key()
    path = f"/api/v2/keys/{key['id']}/policies"
    typo = policy_body({"rotation": {"interval_month": 2}, "dualAuthDelet": {"enabled": True}})
    assert reason(api.call("PUT", path, json=typo)) == (400, "BAD_BODY_ERR")
    dual = policy_body({"dualAuthDelete": {"enabled": True}})
    assert reason(api.call("PUT", path, json=dual, params={"policy": "rotation"})) == \
        (400, "BODY_QUERY_PARAM_MISMATCH_ERR")
    assert reason(api.call("PUT", path, json=policy_body({"dualAuthDelete": {}}))) == \
        (400, "INVALID_FIELD_ERR")
    assert api.get(path).json()["resources"] == []
    assert api.key(key["id"])["dualAuthDelete"] == {"enabled": False}


# --- lifecycle: dual-auth delete, purge, sync, registrations -----------------------------------

def test_dual_auth_delete_with_ibm_client(kp, clock):
    key = create(kp, "dual")
    kp.put_policy(id=key["id"], bluemix_instance=INSTANCE, policy="dualAuthDelete",
                  key_policy_put_body=policy_body({"dualAuthDelete": {"enabled": True}}))
    with pytest.raises(ApiException) as info:
        kp.delete_key(id=key["id"], bluemix_instance=INSTANCE)
    assert code_of(info) == (409, "AUTHORIZATIONS_NOT_MET")

    assert kp.set_key_for_deletion(id=key["id"],
                                   bluemix_instance=INSTANCE).get_status_code() == 204
    shown = kp.get_key(id=key["id"], bluemix_instance=INSTANCE).get_result().json()
    assert shown["resources"][0]["dualAuthDelete"]["keySetForDeletion"] is True
    assert kp.unset_key_for_deletion(id=key["id"],
                                     bluemix_instance=INSTANCE).get_status_code() == 204
    with pytest.raises(ApiException) as info:
        kp.delete_key(id=key["id"], bluemix_instance=INSTANCE)
    assert code_of(info) == (409, "AUTHORIZATIONS_NOT_MET")

    kp.set_key_for_deletion(id=key["id"], bluemix_instance=INSTANCE)
    clock.advance(7 * 86400)   # the first authorisation lapses after 7 days
    with pytest.raises(ApiException) as info:
        kp.delete_key(id=key["id"], bluemix_instance=INSTANCE)
    assert code_of(info) == (409, "AUTHORIZATIONS_NOT_MET")
    kp.set_key_for_deletion(id=key["id"], bluemix_instance=INSTANCE)
    assert kp.delete_key(id=key["id"], bluemix_instance=INSTANCE).get_status_code() == 204


def test_purge_sync_and_registrations_with_ibm_client(kp, clock):
    key = create(kp, "purged")
    kp.create_key_alias(id=key["id"], alias="gone-soon", bluemix_instance=INSTANCE)
    regs = kp.get_registrations(id=key["id"], bluemix_instance=INSTANCE, total_count=True)
    assert regs.get_status_code() == 200
    assert regs.get_result().json() == {"metadata": {
        "collectionType": "application/vnd.ibm.kms.registration+json", "collectionTotal": 0,
        "totalCount": 0}, "resources": []}
    every = kp.get_registrations_all_keys(bluemix_instance=INSTANCE)
    assert every.get_status_code() == 200 and every.get_result().json()["resources"] == []

    assert kp.sync_associated_resources(id=key["id"],
                                        bluemix_instance=INSTANCE).get_status_code() == 204
    with pytest.raises(ApiException) as info:
        kp.sync_associated_resources(id=key["id"], bluemix_instance=INSTANCE)
    assert code_of(info) == (409, "REQ_TOO_EARLY_ERR")
    clock.advance(3600)
    assert kp.sync_associated_resources(id=key["id"],
                                        bluemix_instance=INSTANCE).get_status_code() == 204

    with pytest.raises(ApiException) as info:   # not deleted yet
        kp.purge_key(id=key["id"], bluemix_instance=INSTANCE)
    assert code_of(info) == (409, "KEY_ACTION_INVALID_STATE_ERR")
    kp.delete_key(id=key["id"], bluemix_instance=INSTANCE)
    clock.advance(4 * 3600 - 1)
    with pytest.raises(ApiException) as info:
        kp.purge_key(id=key["id"], bluemix_instance=INSTANCE)
    assert code_of(info) == (409, "REQ_TOO_EARLY_ERR")
    deleted = kp.get_key(id=key["id"], bluemix_instance=INSTANCE).get_result().json()
    assert deleted["resources"][0]["purgeAllowed"] is False
    clock.advance(1)
    assert kp.purge_key(id=key["id"], bluemix_instance=INSTANCE).get_status_code() == 204
    with pytest.raises(ApiException) as info:
        kp.get_key(id=key["id"], bluemix_instance=INSTANCE)
    assert code_of(info) == (404, "KEY_NOT_FOUND_ERR")
    with pytest.raises(ApiException) as info:
        kp.get_registrations(id=key["id"], bluemix_instance=INSTANCE)
    assert code_of(info) == (404, "KEY_NOT_FOUND_ERR")
    # its alias is free again
    other = create(kp, "other")
    assert kp.create_key_alias(id=other["id"], alias="gone-soon",
                               bluemix_instance=INSTANCE).get_status_code() == 201


def test_lifecycle_refusals(api, clock):
    key = api.root_key()
    kid = key["id"]
    assert reason(api.action(kid, "setKeyForDeletion")) == (409, "NOT_DUAL_AUTH_ERR")
    assert reason(api.action(kid, "unsetKeyForDeletion")) == (409, "NOT_DUAL_AUTH_ERR")
    assert reason(api.action(kid, "sync", body=[1])) == (400, "BAD_BODY_ERR")
    assert reason(api.get("/api/v2/keys/registrations", params={"limit": "0"})) == \
        (400, "INVALID_QUERY_PARAM_ERR")
    assert reason(api.get(f"/api/v2/keys/{kid}/registrations",
                          params={"preventKeyDeletion": "perhaps"})) == \
        (400, "INVALID_QUERY_PARAM_ERR")
    assert reason(api.call("DELETE", "/api/v2/keys/no-such-key/purge")) == \
        (404, "KEY_NOT_FOUND_ERR")
    # purge with representation answers the key as it was purged
    assert api.call("DELETE", f"/api/v2/keys/{kid}").status_code == 204
    assert reason(api.action(kid, "setKeyForDeletion")) == (410, "KEY_DELETED_ERR")
    assert api.action(kid, "sync").status_code == 204   # deleted keys may sync
    clock.advance(4 * 3600)
    purged = api.call("DELETE", f"/api/v2/keys/{kid}/purge",
                      headers={"Prefer": "return=representation"})
    assert purged.status_code == 200 and purged.json()["resources"][0]["purgeAllowed"] is True
    assert reason(api.call("DELETE", f"/api/v2/keys/{kid}/purge")) == (404, "KEY_NOT_FOUND_ERR")
    assert api.get("/api/v2/keys", params={"state": "5"}).json()["resources"] == []


# --- GET/HEAD /keys filter ----------------------------------------------------------------------

def test_key_filter_with_ibm_client(kp, clock):
    first = create(kp, "first")
    clock.advance(86400)
    second = create(kp, "second")
    kp.rotate_key(id=second["id"], bluemix_instance=INSTANCE, key_action_rotate_body=stream({}))
    kp.delete_key(id=first["id"], bluemix_instance=INSTANCE)

    def ids(filter_text, **kw):
        got = kp.get_keys(bluemix_instance=INSTANCE, filter=filter_text, **kw)
        return [k["id"] for k in got.get_result().json()["resources"]]

    assert ids("state=1,5 extractable=false") == sorted([first["id"], second["id"]])
    assert ids("state=5") == [first["id"]]
    assert ids("lastRotateDate=none state=0,1,2,3,5") == [first["id"]]
    assert ids('creationDate=gt:"2026-01-01T12:00:00Z"') == [second["id"]]
    assert ids('creationDate="2026-01-01T00:00:00Z" state=1,5') == [first["id"]]
    assert ids('creationDate=gte:"2026-01-01T12:00:00Z" creationDate=lt:"2026-01-02T00:00:00Z"'
               ' state=5') == [first["id"]]
    assert ids("extractable=TRUE") == []
    head = kp.get_key_collection_metadata(bluemix_instance=INSTANCE, filter="state=1,5")
    assert head.get_headers()["Key-Total"] == "2"
    with pytest.raises(ApiException) as info:   # state both ways -> 400
        kp.get_keys(bluemix_instance=INSTANCE, filter="state=1", state=[1])
    assert code_of(info) == (400, "INVALID_QUERY_PARAM_ERR")
    found = kp.get_keys(bluemix_instance=INSTANCE, search="exact:SECOND", sort="-creationDate",
                        state=[0, 1, 2, 3, 5]).get_result().json()
    assert [k["id"] for k in found["resources"]] == [second["id"]]
    assert ibm.CollectionMetadataListKeys.from_dict(found["metadata"]).search_query.exact is True
    newest_first = kp.get_keys(bluemix_instance=INSTANCE, sort="-creationDate",
                               state=[1, 5]).get_result().json()["resources"]
    assert [k["id"] for k in newest_first] == [second["id"], first["id"]]


@pytest.mark.parametrize("text", ["state", "colour=red", "state=1 state=2", "state=9",
                                  "extractable=maybe", "creationDate=yesterday",
                                  'creationDate=gt:"2026-01-01T00:00:00"',
                                  'lastUpdateDate=none ' * 4])
def test_bad_filters_refused(api, text):
    api.root_key()
    assert reason(api.get("/api/v2/keys", params={"filter": text})) == \
        (400, "INVALID_QUERY_PARAM_ERR")
    response = api.call("HEAD", "/api/v2/keys", params={"filter": text})
    assert response.status_code == 400


# --- never a 500, and the ring scope stays per request under threads -----------------------------

def test_new_endpoints_never_answer_500(api, server):
    kid = api.root_key()["id"]
    bodies = [None, "null", "[]", "{}", '"x"', "1", "{bad", '{"keyRingID": null}',
              '{"resources": 5}', '{"metadata": {}, "resources": [{}]}']
    paths = [f"/api/v2/keys/{kid}", f"/api/v2/keys/{kid}/policies", "/api/v2/instance/policies",
             "/api/v2/key_rings/ab", "/api/v2/key_rings/%00", f"/api/v2/keys/{kid}/aliases/%2F",
             f"/api/v2/keys/{kid}/aliases/" + "é" * 5, f"/api/v2/keys/{kid}/purge",
             f"/api/v2/keys/{kid}/actions/sync", f"/api/v2/keys/{kid}/actions/setKeyForDeletion",
             "/api/v2/keys/registrations", "/api/v2/keys?filter=%00",
             "/api/v2/keys?filter=creationDate=gt:", "/api/v2/key_rings?limit=x"]
    for path in paths:
        for body in bodies:
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                response = api.call(method, path, data=body,
                                    headers={"Content-Type": "application/json",
                                             "X-Kms-Key-Ring": "ghost" if len(path) % 2 else ""})
                assert response.status_code < 500, (method, path, body)
    assert server.app.internal_errors == 0


def test_ring_scope_is_per_request_under_threads(api, make_api):
    from concurrent.futures import ThreadPoolExecutor
    api.post("/api/v2/key_rings/ring-b")
    in_default = api.root_key("in-default")["id"]
    in_b = api.post("/api/v2/keys", json=envelope(
        {"type": KEY_TYPE, "name": "in-b", "extractable": False}),
        headers={"X-Kms-Key-Ring": "ring-b"}).json()["resources"][0]["id"]

    def check(n):
        caller = make_api()
        ring, mine, other = (("default", in_default, in_b) if n % 2 else
                             ("ring-b", in_b, in_default))
        headers = {"X-Kms-Key-Ring": ring}
        return (caller.get(f"/api/v2/keys/{mine}", headers=headers).status_code,
                caller.get(f"/api/v2/keys/{other}", headers=headers).status_code)

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(check, range(64))) == {(200, 404)}
