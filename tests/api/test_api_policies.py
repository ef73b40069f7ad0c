"""Rotation policies and the keyCreateImportAccess instance policy over real HTTP."""
import pytest
from conftest import KEY_TYPE, envelope, reason, secure_fields

from byoklib import primitives

POLICY = "application/vnd.ibm.kms.policy+json"
INSTANCE_POLICIES = "/api/v2/instance/policies"


def rotation_body(months=3, enabled=True):
    return envelope({"type": POLICY, "rotation": {"interval_month": months,
                                                  "enabled": enabled}}, kind=POLICY)


def kcia_body(enabled=True, **attributes):
    return envelope({"policy_type": "keyCreateImportAccess",
                     "policy_data": {"enabled": enabled, "attributes": attributes}},
                    kind=POLICY)


def metrics_body(enabled=True):
    return envelope({"policy_type": "metrics", "policy_data": {"enabled": enabled}},
                    kind=POLICY)


def allowed_ip_body(networks):
    return envelope({"policy_type": "allowedIP", "policy_data": {
        "enabled": True, "attributes": {"allowed_ip": networks}}}, kind=POLICY)


def set_kcia(api, **attributes):
    response = api.call("PUT", INSTANCE_POLICIES, json=kcia_body(**attributes),
                        params={"policy": "keyCreateImportAccess"})
    assert response.status_code == 204, response.text


# --- rotation policy ---------------------------------------------------------------------

def test_rotation_policy_put_and_get(api):
    key = api.root_key()
    path = f"/api/v2/keys/{key['id']}/policies"
    assert api.get(path).json()["resources"] == []
    response = api.call("PUT", path, json=rotation_body(6), params={"policy": "rotation"})
    assert response.status_code == 200
    policy = response.json()["resources"][0]
    assert policy["rotation"] == {"enabled": True, "interval_month": 6}
    assert policy["type"] == POLICY   # required by IBM's Python models
    # the policy's own CRN (DOC:errors #14): the key's, ending policy:<policy id>
    assert policy["crn"] == key["crn"].replace(f"key:{key['id']}", f"policy:{policy['id']}")
    assert api.get(path).json()["resources"] == [policy]
    assert api.key(key["id"])["rotation"] == {"enabled": True, "interval_month": 6}


def test_rotation_policy_refused_for_imported_and_standard_keys(api):
    imported = api.root_key(payload=primitives.b64encode(bytes(32)))
    standard = api.create_key({"name": "standard", "extractable": True}).json()["resources"][0]
    assert reason(api.call("PUT", f"/api/v2/keys/{imported['id']}/policies",
                           json=rotation_body())) == (400, "ROTATION_POLICY_NOT_ALLOWED_ERR")
    assert reason(api.call("PUT", f"/api/v2/keys/{standard['id']}/policies",
                           json=rotation_body())) == (400, "KEY_ROOT_REQ_ERR")
    assert api.get(f"/api/v2/keys/{imported['id']}/policies").json()["resources"] == []


@pytest.mark.parametrize("body,code", [
    (rotation_body(0), "INVALID_FIELD_ERR"), (rotation_body(13), "INVALID_FIELD_ERR"),
    (rotation_body("3"), "INVALID_FIELD_ERR"), (rotation_body(3, "yes"), "INVALID_FIELD_ERR"),
    (envelope({"type": POLICY}, kind=POLICY), "INVALID_FIELD_ERR"),
    (envelope({"rotation": []}, kind=POLICY), "BAD_BODY_ERR"),
    (rotation_body() | {"resources": []}, "COLLECTION_TOTAL_MISMATCH_ERR"),
    (None, "BAD_BODY_ERR"),
])
def test_rotation_policy_body_refusals(api, body, code):
    key = api.root_key()
    path = f"/api/v2/keys/{key['id']}/policies"
    assert reason(api.call("PUT", path, json=body)) == (400, code)
    assert api.get(path).json()["resources"] == []


def test_an_unknown_field_is_named_in_the_error_but_cut_short(api):
    key = api.root_key()
    body = envelope({"type": POLICY, "rotation": {"interval_month": 3, "enabled": True,
                                                   "x" * 100_000: 1}}, kind=POLICY)
    answer = api.call("PUT", f"/api/v2/keys/{key['id']}/policies", json=body)
    assert reason(answer) == (400, "BAD_BODY_ERR")
    assert "'" + "x" * 40 + "'" in answer.text and len(answer.content) < 1000


def test_both_key_policies_in_one_put(api):
    """IBM's SDK has SetMultipleKeyPoliciesResource: rotation and dualAuthDelete at once."""
    key = api.root_key()
    path = f"/api/v2/keys/{key['id']}/policies"
    body = envelope({"type": POLICY, "rotation": {"interval_month": 2, "enabled": True},
                     "dualAuthDelete": {"enabled": True}}, kind=POLICY)
    response = api.call("PUT", path, json=body)
    assert response.status_code == 200, response.text
    resources = response.json()["resources"]
    assert [("rotation" in r, "dualAuthDelete" in r) for r in resources] == \
        [(True, False), (False, True)]
    assert api.get(path).json()["resources"] == resources
    assert api.key(key["id"])["dualAuthDelete"]["enabled"] is True
    assert reason(api.call("PUT", path, json=body, params={"policy": "rotation"})) == \
        (400, "BODY_QUERY_PARAM_MISMATCH_ERR")


def test_both_key_policies_as_two_resources_and_a_policy_read_back(api):
    """IBM's Go client (SetPolicies) sends one resource per policy; a policy as GET shows
    it (id, crn, createdBy, ...) can be PUT again."""
    key = api.root_key()
    path = f"/api/v2/keys/{key['id']}/policies"
    body = {"metadata": {"collectionType": POLICY, "collectionTotal": 2},
            "resources": [{"type": POLICY, "rotation": {"interval_month": 2}},
                          {"type": POLICY, "dualAuthDelete": {"enabled": True}}]}
    response = api.call("PUT", path, json=body)
    assert response.status_code == 200, response.text
    read_back = api.get(path, params={"policy": "rotation"}).json()["resources"][0]
    assert api.call("PUT", path, json=envelope(read_back, kind=POLICY)).status_code == 200
    twice = body | {"resources": [body["resources"][0]] * 2}
    assert reason(api.call("PUT", path, json=twice)) == (400, "BAD_BODY_ERR")


def test_a_refused_pair_of_key_policies_sets_neither(api):
    imported = api.root_key(payload=primitives.b64encode(bytes(32)))
    path = f"/api/v2/keys/{imported['id']}/policies"
    body = envelope({"type": POLICY, "rotation": {"interval_month": 2},
                     "dualAuthDelete": {"enabled": True}}, kind=POLICY)
    assert reason(api.call("PUT", path, json=body)) == (400, "ROTATION_POLICY_NOT_ALLOWED_ERR")
    assert api.get(path).json()["resources"] == []
    assert api.key(imported["id"])["dualAuthDelete"]["enabled"] is False


@pytest.mark.parametrize("resource", [
    {"type": POLICY, "rotation": {"interval_month": 2}, "extra_field": "junk data"},
    {"type": POLICY, "rotation": {"interval_month": 2, "bogus": 1}},
    {"type": POLICY, "dualAuthDelete": {"enabled": True, "bogus": True}},
    {"type": "not-a-policy-type", "rotation": {"interval_month": 2}},
    {"type": 5, "rotation": {"interval_month": 2}},
])
def test_unknown_fields_or_types_in_a_key_policy_are_refused(api, resource):
    key = api.root_key()
    path = f"/api/v2/keys/{key['id']}/policies"
    assert reason(api.call("PUT", path, json=envelope(resource, kind=POLICY))) == \
        (400, "BAD_BODY_ERR")
    assert api.get(path).json()["resources"] == []


def test_unknown_key_policy_name_is_400(api):
    key = api.root_key()
    response = api.get(f"/api/v2/keys/{key['id']}/policies", params={"policy": "dualAuth"})
    assert reason(response) == (400, "INVALID_QUERY_PARAM_ERR")


# --- keyCreateImportAccess ------------------------------------------------------------------

def test_instance_policy_put_and_get(api):
    assert api.get(INSTANCE_POLICIES).json()["resources"] == []
    set_kcia(api, enforce_token=True)
    body = api.get(INSTANCE_POLICIES, params={"policy": "keyCreateImportAccess"}).json()
    policy = body["resources"][0]
    assert policy["policy_type"] == "keyCreateImportAccess"
    assert policy["policy_data"] == {"enabled": True, "attributes": {
        "create_root_key": True, "create_standard_key": True, "import_root_key": True,
        "import_standard_key": True, "enforce_token": True}}


def test_several_distinct_instance_policies_in_one_put(api):
    """DOC:errors #15: "You may specify multiple policies in the request as long as each
    policy is unique", e.g. dualAuthDelete and allowedIP."""
    body = {"metadata": {"collectionType": POLICY, "collectionTotal": 2},
            "resources": metrics_body()["resources"]
            + allowed_ip_body(["10.0.0.0/8", "2001:db8::/32"])["resources"]}
    assert api.call("PUT", INSTANCE_POLICIES, json=body).status_code == 204
    policies = {p["policy_type"]: p["policy_data"]
                for p in api.get(INSTANCE_POLICIES).json()["resources"]}
    assert policies == {"metrics": {"enabled": True}, "allowedIP": {
        "enabled": True, "attributes": {"allowed_ip": ["10.0.0.0/8", "2001:db8::/32"]}}}
    # stored, not enforced: this client on 127.0.0.1 is still served
    assert api.key(api.root_key()["id"])["state"] == 1


def test_a_disabled_policy_with_empty_attributes_as_go_sends_it(api):
    body = envelope({"policy_type": "allowedNetwork",
                     "policy_data": {"enabled": False, "attributes": {}}}, kind=POLICY)
    assert api.call("PUT", INSTANCE_POLICIES, json=body).status_code == 204
    assert api.get(INSTANCE_POLICIES).json()["resources"][0]["policy_data"] == \
        {"enabled": False}


def test_instance_rotation_policy_gives_rotation_to_generated_root_keys_only(api):
    body = envelope({"policy_type": "rotation",
                     "policy_data": {"enabled": True, "attributes": {"interval_month": 2}}},
                    kind=POLICY)
    assert api.call("PUT", INSTANCE_POLICIES, json=body).status_code == 204
    root = api.key(api.root_key("generated")["id"])
    assert root["rotation"] == {"enabled": True, "interval_month": 2}
    standard = api.create_key({"name": "std", "extractable": True}).json()["resources"][0]
    imported = api.create_key({"name": "imp", "extractable": False,
                               "payload": primitives.b64encode(bytes(32))})
    assert imported.status_code == 201, imported.text
    for key in (standard, imported.json()["resources"][0]):
        assert "rotation" not in api.key(key["id"])   # these kinds of key cannot rotate


def test_enforce_token_refuses_plain_imports_and_rotations(api, clock):
    plain = api.root_key(payload=primitives.b64encode(bytes(32)))
    set_kcia(api, enforce_token=True)
    response = api.create_key({"type": KEY_TYPE, "name": "plain", "extractable": False,
                               "payload": primitives.b64encode(bytes(32))})
    assert reason(response) == (409, "KEY_CREATE_IMPORT_ACCESS_ERR")
    assert reason(api.action(plain["id"], "rotate",
                             {"payload": primitives.b64encode(bytes(16))})) == \
        (409, "KEY_CREATE_IMPORT_ACCESS_ERR")
    api.new_token(maxAllowedRetrievals=2)
    byok = api.secure_root_key(primitives.generate_key_material())
    fields = secure_fields(primitives.generate_key_material(), api.token())
    assert api.action(byok["id"], "rotate", fields).status_code == 204
    assert api.root_key("generated")["imported"] is False   # generating is still allowed


@pytest.mark.parametrize("attribute,resource", [
    ("create_root_key", {"name": "gen-root", "extractable": False}),
    ("create_standard_key", {"name": "gen-std", "extractable": True}),
    ("import_root_key", {"name": "imp-root", "extractable": False,
                         "payload": primitives.b64encode(bytes(16))}),
    ("import_standard_key", {"name": "imp-std", "extractable": True,
                             "payload": primitives.b64encode(b"secret")}),
])
def test_each_attribute_gates_its_kind_of_key(api, attribute, resource):
    set_kcia(api, **{attribute: False})
    assert reason(api.create_key(resource)) == (409, "KEY_CREATE_IMPORT_ACCESS_ERR")
    set_kcia(api, enabled=False, **{attribute: False})   # a disabled policy permits all
    assert api.create_key(resource).status_code == 201


@pytest.mark.parametrize("body,params,code", [
    (kcia_body(bogus=True), {}, "BAD_BODY_ERR"),
    (kcia_body(enforce_token="yes"), {}, "INVALID_FIELD_ERR"),
    (kcia_body(enabled=None), {}, "INVALID_FIELD_ERR"),
    (envelope({"policy_type": "dualAuthDelete", "policy_data": {"enabled": True}}, kind=POLICY),
     {"policy": "keyCreateImportAccess"}, "BODY_QUERY_PARAM_MISMATCH_ERR"),
    (kcia_body(), {"policy": "allowedNetwork"}, "BODY_QUERY_PARAM_MISMATCH_ERR"),
    (kcia_body(), {"policy": "allowedIP"}, "BODY_QUERY_PARAM_MISMATCH_ERR"),
    (kcia_body(), {"policy": "allowedIPs"}, "INVALID_QUERY_PARAM_ERR"),
    ({"metadata": {"collectionType": POLICY, "collectionTotal": 2},
      "resources": [{}, {}]}, {}, "BAD_BODY_ERR"),
    # the same policy twice (DOC:errors #15), or two under one ?policy=
    ({"metadata": {"collectionType": POLICY, "collectionTotal": 2},
      "resources": kcia_body()["resources"] * 2}, {}, "NUM_COLLECTION_RESOURCE_ERR"),
    ({"metadata": {"collectionType": POLICY, "collectionTotal": 2},
      "resources": kcia_body()["resources"] + metrics_body()["resources"]},
     {"policy": "keyCreateImportAccess"}, "NUM_COLLECTION_RESOURCE_ERR"),
    # a good policy beside a bad one: neither is set
    ({"metadata": {"collectionType": POLICY, "collectionTotal": 2},
      "resources": kcia_body()["resources"] + allowed_ip_body(["10.0.0.1"])["resources"]},
     {}, "INVALID_FIELD_ERR"),
    # DOC:errors #4 example 1: an unknown field -> BAD_BODY_ERR
    (envelope({"policy_type": "dualAuthDelete", "policy_data": {"enabled": True},
               "extra_field": "junk data"}, kind=POLICY), {}, "BAD_BODY_ERR"),
    (envelope({"policy_type": "metrics", "policy_data": {"enabled": True, "extra": 1}},
              kind=POLICY), {}, "BAD_BODY_ERR"),
    (allowed_ip_body([]), {}, "INVALID_FIELD_ERR"),
    (allowed_ip_body(["not-a-subnet/8"]), {}, "INVALID_FIELD_ERR"),
    (allowed_ip_body(["1.2.3.4/255.0.0.0"]), {}, "INVALID_FIELD_ERR"),   # a netmask, not CIDR
    (allowed_ip_body(["fe80::1%eth0/64"]), {}, "INVALID_FIELD_ERR"),
    (allowed_ip_body("10.0.0.0/8"), {}, "INVALID_FIELD_ERR"),
    (kcia_body() | {"resources": []}, {}, "COLLECTION_TOTAL_MISMATCH_ERR"),
])
def test_instance_policy_refusals_change_nothing(api, body, params, code):
    assert reason(api.call("PUT", INSTANCE_POLICIES, json=body, params=params)) == (400, code)
    assert api.get(INSTANCE_POLICIES).json()["resources"] == []


# --- POST /keys_with_policy_overrides ----------------------------------------------------------

def test_create_with_rotation_override(api):
    resource = {"type": KEY_TYPE, "name": "overridden", "extractable": False,
                "rotation": {"enabled": True, "interval_month": 6},
                "dualAuthDelete": {"enabled": False}}
    response = api.post("/api/v2/keys_with_policy_overrides", json=envelope(resource),
                        headers={"Prefer": "return=representation"})
    assert response.status_code == 201
    key = response.json()["resources"][0]
    assert key["rotation"] == {"enabled": True, "interval_month": 6}
    policies = api.get(f"/api/v2/keys/{key['id']}/policies").json()["resources"]
    assert policies[0]["rotation"]["interval_month"] == 6


def test_create_with_rotation_override_alone(api):
    resource = {"type": KEY_TYPE, "name": "rotating", "extractable": False,
                "rotation": {"enabled": True, "interval_month": 3}}
    response = api.post("/api/v2/keys_with_policy_overrides", json=envelope(resource),
                        headers={"Prefer": "return=representation"})
    assert response.status_code == 201, response.text
    key = response.json()["resources"][0]
    assert key["dualAuthDelete"]["enabled"] is False
    assert key["rotation"] == {"enabled": True, "interval_month": 3}


def test_create_with_dual_auth_override_alone(api):
    """An override of dualAuthDelete only: no rotation is implied, so a standard key may
    take it, and the key gets dualAuthDelete though the instance has no such policy."""
    resource = {"type": KEY_TYPE, "name": "dual", "extractable": True,
                "dualAuthDelete": {"enabled": True}}
    response = api.post("/api/v2/keys_with_policy_overrides", json=envelope(resource),
                        headers={"Prefer": "return=representation"})
    assert response.status_code == 201, response.text
    key = response.json()["resources"][0]
    assert key["dualAuthDelete"]["enabled"] is True and "rotation" not in key


@pytest.mark.parametrize("extra,code", [
    ({"rotation": {"interval_month": 13}}, "INVALID_FIELD_ERR"),
    ({"rotation": {"interval_month": 1}, "payload": primitives.b64encode(bytes(32))},
     "ROTATION_POLICY_NOT_ALLOWED_ERR"),
    ({"rotation": {"interval_month": 1}, "extractable": True}, "KEY_ROOT_REQ_ERR"),
    ({"dualAuthDelete": {"enabled": "yes"}}, "INVALID_FIELD_ERR"),
])
def test_create_with_bad_override_creates_nothing(api, extra, code):
    resource = {"type": KEY_TYPE, "name": "overridden", "extractable": False, **extra}
    response = api.post("/api/v2/keys_with_policy_overrides", json=envelope(resource))
    assert reason(response) == (400, code)
    assert api.call("HEAD", "/api/v2/keys").headers["Key-Total"] == "0"
