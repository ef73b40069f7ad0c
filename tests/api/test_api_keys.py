"""POST/GET/HEAD/DELETE /api/v2/keys…, /metadata, /restore, /versions over real HTTP."""
import uuid

import pytest
from conftest import KEY_TYPE, reason, secure_fields

from byoklib import primitives
from byoklib.mock.service.search import sort_terms

KEYS = "/api/v2/keys"


def total(api, **params) -> int:
    response = api.call("HEAD", KEYS, params=params)
    assert response.status_code == 200 and response.content == b""
    return int(response.headers["Key-Total"])


# --- create -----------------------------------------------------------------------------

def test_generated_root_key_full_representation(api, server):
    response = api.create_key({"type": KEY_TYPE, "name": "generated", "extractable": False,
                               "description": "a root key"})
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/vnd.ibm.collection+json"
    body = response.json()
    assert body["metadata"] == {"collectionType": KEY_TYPE, "collectionTotal": 1}
    key = body["resources"][0]
    assert uuid.UUID(key["id"]).version == 4
    assert key["crn"] == (f"crn:v1:bluemix:public:kms:us-south:a/{server.service.account_id}"
                          f":instance-1:key:{key['id']}")
    assert key["state"] == 1 and key["extractable"] is False and key["imported"] is False
    assert key["keyRingID"] == "default" and key["createdBy"]
    assert key["creationDate"] == key["lastUpdateDate"] == "2026-01-01T12:00:00Z"
    assert set(key["keyVersion"]) == {"id", "creationDate"}
    assert key["algorithmBitSize"] == 256 and key["description"] == "a root key"
    assert "payload" not in key


def test_minimal_is_the_default(api):
    response = api.create_key({"type": KEY_TYPE, "name": "short", "extractable": False},
                              prefer=None)
    key = response.json()["resources"][0]
    assert set(key) == {"type", "id", "name", "state", "crn", "extractable", "imported",
                        "deleted"}
    assert key["deleted"] is False
    explicit = api.create_key({"name": "short2", "extractable": False},
                              prefer="return=minimal").json()["resources"][0]
    assert set(explicit) == set(key)


def test_secure_import_creates_imported_root_key(api):
    api.new_token()
    key = api.secure_root_key(primitives.generate_key_material(128))
    assert key["imported"] is True and key["algorithmBitSize"] == 128
    assert "payload" not in api.key(key["id"])


@pytest.mark.parametrize("size", [16, 24, 32])
def test_plain_import_of_root_key(api, size):
    key = api.root_key(payload=primitives.b64encode(bytes(range(size))))
    assert key["imported"] is True and key["algorithmBitSize"] == size * 8
    assert "payload" not in key


def test_standard_keys_return_their_payload(api):
    material = b"s" * 7500
    key = api.create_key({"name": "std", "extractable": True,
                          "payload": primitives.b64encode(material)}).json()["resources"][0]
    assert primitives.b64decode(key["payload"]) == material and key["imported"] is True
    assert primitives.b64decode(api.key(key["id"])["payload"]) == material
    assert "payload" not in api.get(f"{KEYS}/{key['id']}/metadata").json()["resources"][0]
    generated = api.create_key({"name": "std2", "extractable": True}).json()["resources"][0]
    assert len(primitives.b64decode(generated["payload"])) == 32


def test_extractable_defaults_to_true(api):
    key = api.create_key({"name": "no-extractable"}).json()["resources"][0]
    assert key["extractable"] is True


def test_name_and_description_at_their_length_limits_are_accepted(api):
    for name, description in [("ab", "cd"), ("n" * 90, "d" * 240)]:
        key = api.root_key(name, description=description)
        assert key["name"] == name and key["description"] == description


def test_tags_are_kept_up_to_30_of_30_characters(api):
    tags = [f"tag-{i:02d}".ljust(30, "x") for i in range(30)]
    key = api.root_key(tags=tags)
    assert key["tags"] == tags and api.key(key["id"])["tags"] == tags


@pytest.mark.parametrize("resource,code,target", [
    ({"name": "k", "extractable": False}, "INVALID_FIELD_ERR", "name"),
    ({"name": "x" * 91, "extractable": False}, "INVALID_FIELD_ERR", "name"),
    ({"extractable": False}, "INVALID_FIELD_ERR", "name"),
    ({"name": 42, "extractable": False}, "INVALID_FIELD_ERR", "name"),
    ({"name": "ok", "extractable": "no"}, "INVALID_FIELD_ERR", "extractable"),
    ({"name": "ok", "description": "d"}, "INVALID_FIELD_ERR", "description"),
    ({"name": "ok", "type": "application/json"}, "INVALID_FIELD_ERR", "type"),
    ({"name": "ok", "expirationDate": "2025-01-01T00:00:00Z"}, "INVALID_FIELD_ERR",
     "expirationDate"),
    ({"name": "ok", "expirationDate": "2027-01-01T00:00:00"}, "INVALID_FIELD_ERR",
     "expirationDate"),
    ({"name": "ok", "expirationDate": "tomorrow"}, "INVALID_FIELD_ERR", "expirationDate"),
    # a date Python cannot express in UTC must be refused, not stored and then fail every
    # listing of the instance with a 500
    ({"name": "ok", "expirationDate": "9999-12-31T23:59:59-01:00"}, "INVALID_FIELD_ERR",
     "expirationDate"),
    # less than a second ahead: stored without its fraction, it would be expired at birth
    ({"name": "ok", "expirationDate": "2026-01-01T12:00:00.999Z"}, "INVALID_FIELD_ERR",
     "expirationDate"),
    # ISO 8601 but not RFC 3339: basic format, week date (DOC:errors shows only RFC 3339)
    ({"name": "ok", "expirationDate": "20300101T000000Z"}, "INVALID_FIELD_ERR",
     "expirationDate"),
    ({"name": "ok", "expirationDate": "2030-W01-1T00:00:00Z"}, "INVALID_FIELD_ERR",
     "expirationDate"),
    ({"name": "ok", "extractable": False, "payload": "AAAA"}, "INVALID_FIELD_ERR", "payload"),
    ({"name": "ok", "extractable": False, "payload": "not base64!"}, "INVALID_FIELD_ERR",
     "payload"),
    ({"name": "ok", "extractable": True, "payload": primitives.b64encode(b"x" * 7501)},
     "INVALID_FIELD_ERR", "payload"),
    ({"name": "ok", "extractable": True, "payload": "QUFB", "iv": "QUFB"}, "BAD_BODY_ERR",
     "encryptedNonce"),
    ({"name": "ok", "aliases": "one"}, "INVALID_FIELD_ERR", "aliases"),
    # up to 30 tags of up to 30 characters, none of < > , : & | (IBM's models)
    ({"name": "ok", "tags": ["t"] * 31}, "INVALID_FIELD_ERR", "tags"),
    ({"name": "ok", "tags": ["t" * 31]}, "INVALID_FIELD_ERR", "tags"),
    *[({"name": "ok", "tags": ["ok", f"a{c}b"]}, "INVALID_FIELD_ERR", "tags") for c in "<>,:&|"],
])
def test_create_refusals_name_the_field_and_create_nothing(api, resource, code, target):
    response = api.create_key(resource)
    assert reason(response) == (400, code)
    assert response.json()["resources"][0]["reasons"][0]["target"]["name"] == target
    assert total(api) == 0


@pytest.mark.parametrize("body,code", [
    ({"resources": [{"name": "k1"}]}, "BAD_BODY_ERR"),
    ({"metadata": {}, "resources": [{"name": "k1"}]}, "BAD_BODY_ERR"),
    ({"metadata": {"collectionType": "x", "collectionTotal": 1},
      "resources": [{"name": "k1"}]}, "BAD_BODY_ERR"),
    ({"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 2},
      "resources": [{"name": "k1"}]}, "COLLECTION_TOTAL_MISMATCH_ERR"),
    ({"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 2},
      "resources": [{"name": "k1"}, {"name": "k2"}]}, "BAD_BODY_ERR"),
    # DOC:errors #4 example 2: two keys under collectionTotal 1 is BAD_BODY_ERR ("Only
    # creation of one key per request is supported"), not a total mismatch
    ({"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1},
      "resources": [{"name": "k1"}, {"name": "k2"}]}, "BAD_BODY_ERR"),
    ({"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 0}, "resources": []},
     "BAD_BODY_ERR"),
    # a total that is not a JSON integer is refused, even where Python would equal it
    ({"metadata": {"collectionType": KEY_TYPE, "collectionTotal": True},
      "resources": [{"name": "k1"}]}, "BAD_BODY_ERR"),
    ({"metadata": {"collectionType": KEY_TYPE, "collectionTotal": "1"},
      "resources": [{"name": "k1"}]}, "BAD_BODY_ERR"),
    ({"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1}, "resources": ["k"]},
     "BAD_BODY_ERR"),
    ([], "BAD_BODY_ERR"),
    (None, "BAD_BODY_ERR"),
])
def test_envelope_checks(api, body, code):
    assert reason(api.post(KEYS, json=body)) == (400, code)
    assert total(api) == 0


def test_future_expiration_date_is_kept_and_deactivates(api, clock):
    key = api.root_key(expirationDate="2026-01-01T13:00:00Z")
    assert key["expirationDate"] == "2026-01-01T13:00:00Z" and key["state"] == 1
    clock.advance(hours=1)
    assert api.key(key["id"])["state"] == 3
    assert reason(api.action(key["id"], "wrap", {})) == (409, "KEY_ACTION_INVALID_STATE_ERR")
    assert api.action(key["id"], "rotate", {}).status_code == 204   # Deactivated may rotate
    # a deactivated key is still listed by default (states 0-3; only deleted ones are not)
    assert [k["id"] for k in api.get(KEYS).json()["resources"]] == [key["id"]]


# --- read and list --------------------------------------------------------------------

def test_unknown_key_is_404(api):
    for path in ("", "/metadata", "/versions"):
        assert reason(api.get(f"{KEYS}/{uuid.uuid4()}{path}")) == (404, "KEY_NOT_FOUND_ERR")


def test_keys_are_private_to_their_instance(api, make_api):
    key = api.root_key()
    other = make_api(instance="instance-2")
    assert reason(other.get(f"{KEYS}/{key['id']}")) == (404, "KEY_NOT_FOUND_ERR")
    assert total(other) == 0


def test_list_paging_and_filters(api):
    ids = sorted(api.root_key(f"root-{n}")["id"] for n in range(3))
    std = api.create_key({"name": "std", "extractable": True}).json()["resources"][0]
    listed = api.get(KEYS).json()
    # sorted by id unless `sort` says otherwise (IBM's get_keys docstring)
    assert [k["id"] for k in listed["resources"]] == sorted(ids + [std["id"]])
    assert listed["metadata"]["collectionTotal"] == 4
    assert all("payload" not in k for k in listed["resources"])
    page = api.get(KEYS, params={"limit": 2, "offset": 1}).json()["resources"]
    assert [k["id"] for k in page] == sorted(ids + [std["id"]])[1:3]
    roots = api.get(KEYS, params={"extractable": "false"}).json()["resources"]
    assert [k["id"] for k in roots] == ids
    assert total(api) == 4 and total(api, extractable="true") == 1
    api.call("DELETE", f"{KEYS}/{ids[0]}")
    assert total(api) == 3 and total(api, state="5") == 1 and total(api, state="1,5") == 4


def test_list_pages_200_keys_by_default_and_takes_limits_up_to_5000(api, service):
    for n in range(201):   # through the service: 201 HTTP round trips would be slow
        service.create_key("instance-1", {"metadata": {"collectionType": KEY_TYPE,
                                                       "collectionTotal": 1},
                                          "resources": [{"name": f"k-{n}"}]})
    assert len(api.get(KEYS).json()["resources"]) == 200
    assert len(api.get(KEYS, params={"limit": 5000}).json()["resources"]) == 201
    assert len(api.get(KEYS, params={"limit": 1}).json()["resources"]) == 1
    assert len(api.get(KEYS, params={"offset": 0}).json()["resources"]) == 200
    key_id = api.get(KEYS).json()["resources"][0]["id"]
    versions = api.get(f"{KEYS}/{key_id}/versions", params={"offset": 0})
    assert versions.status_code == 200 and len(versions.json()["resources"]) == 1


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 5001}, {"limit": "x"},
                                    {"offset": -1}, {"state": "4"}, {"state": "1,x"},
                                    {"extractable": "maybe"}])
def test_list_bad_query_is_400(api, params):
    assert reason(api.get(KEYS, params=params)) == (400, "INVALID_QUERY_PARAM_ERR")


def test_key_by_alias(api):
    key = api.root_key(aliases=["my-alias"])
    assert api.key("my-alias")["id"] == key["id"]


# --- delete and restore -----------------------------------------------------------------

def test_delete_minimal_then_second_delete_is_410(api):
    key = api.root_key()
    response = api.call("DELETE", f"{KEYS}/{key['id']}")
    assert response.status_code == 204 and response.content == b""
    assert reason(api.call("DELETE", f"{KEYS}/{key['id']}")) == (410, "KEY_DELETED_ERR")
    deleted = api.key(key["id"])
    assert deleted["state"] == 5 and deleted["deleted"] is True


def test_delete_with_representation(api):
    key = api.root_key()
    response = api.call("DELETE", f"{KEYS}/{key['id']}",
                        headers={"Prefer": "return=representation"})
    assert response.status_code == 200
    body = response.json()["resources"][0]
    assert body["state"] == 5 and body["deletionDate"] == "2026-01-01T12:00:00Z"
    assert body["restoreExpirationDate"] == "2026-01-31T12:00:00Z"


def test_delete_bad_force_is_400(api):
    key = api.root_key()
    response = api.call("DELETE", f"{KEYS}/{key['id']}", params={"force": "perhaps"})
    assert reason(response) == (400, "INVALID_QUERY_PARAM_ERR")
    assert api.key(key["id"])["state"] == 1


def test_actions_on_a_deleted_key_are_410(api):
    key = api.root_key()
    api.call("DELETE", f"{KEYS}/{key['id']}")
    for action in ("wrap", "rotate", "disable", "enable"):
        assert reason(api.action(key["id"], action, {})) == (410, "KEY_DELETED_ERR")


def test_restore_waits_30_seconds(api, clock):
    key = api.root_key()
    wrapped = api.action(key["id"], "wrap", {}).json()
    api.call("DELETE", f"{KEYS}/{key['id']}")
    clock.advance(29)
    assert reason(api.post(f"{KEYS}/{key['id']}/restore")) == (409, "REQ_TOO_EARLY_ERR")
    clock.advance(1)
    response = api.post(f"{KEYS}/{key['id']}/restore", data="null")
    assert response.status_code == 201
    assert response.json()["resources"][0]["state"] == 1
    unwrapped = api.action(key["id"], "unwrap", {"ciphertext": wrapped["ciphertext"]})
    assert unwrapped.json()["plaintext"] == wrapped["plaintext"]


def test_restore_window_is_30_days(api, clock):
    key = api.root_key()
    api.call("DELETE", f"{KEYS}/{key['id']}")
    clock.advance(days=30)
    assert reason(api.post(f"{KEYS}/{key['id']}/restore")) == (400, "KEY_RESTORE_EXPIRED")
    assert api.key(key["id"])["state"] == 5


def test_restore_of_expired_key_is_refused(api, clock):
    key = api.root_key(expirationDate="2026-01-01T12:05:00Z")
    api.call("DELETE", f"{KEYS}/{key['id']}")
    clock.advance(minutes=10)
    assert reason(api.post(f"{KEYS}/{key['id']}/restore")) == (400, "KEY_EXPIRED_ERR")


def test_restore_of_live_key_is_409(api):
    key = api.root_key()
    assert reason(api.post(f"{KEYS}/{key['id']}/restore")) == (409,
                                                                 "KEY_ACTION_INVALID_STATE_ERR")


# --- versions ---------------------------------------------------------------------------

def test_versions_newest_first(api, clock):
    key = api.root_key()
    api.action(key["id"], "rotate", {})
    clock.advance(hours=1)
    api.action(key["id"], "rotate", {})
    response = api.get(f"{KEYS}/{key['id']}/versions", params={"totalCount": "true"})
    body = response.json()
    assert body["metadata"]["collectionType"] == "application/vnd.ibm.kms.key.version+json"
    assert body["metadata"]["totalCount"] == 3
    versions = body["resources"]
    assert versions[0]["id"] == api.key(key["id"])["keyVersion"]["id"]
    assert versions[-1]["id"] == key["keyVersion"]["id"]
    assert [v["creationDate"] for v in versions] == sorted(
        (v["creationDate"] for v in versions), reverse=True)
    limited = api.get(f"{KEYS}/{key['id']}/versions", params={"limit": 1, "offset": 1})
    assert [v["id"] for v in limited.json()["resources"]] == [versions[1]["id"]]


def test_versions_of_non_active_key_need_all_key_states(api):
    key = api.root_key()
    api.action(key["id"], "disable")
    path = f"{KEYS}/{key['id']}/versions"
    assert reason(api.get(path)) == (409, "KEY_ACTION_INVALID_STATE_ERR")
    assert api.get(path, params={"allKeyStates": "true"}).status_code == 200


def test_secure_import_with_token_of_another_instance_fails(api, make_api):
    api.new_token()
    token = api.token()
    other = make_api(instance="instance-2")
    response = other.create_key({"name": "elsewhere", "extractable": False,
                                 **secure_fields(primitives.generate_key_material(), token)})
    assert reason(response) == (404, "IMPORT_TOKEN_NOT_FOUND_ERR")


# --- search and sort (IBM's get_keys docstring) ----------------------------------------------

def names(api, **params) -> list[str]:
    return [k["name"] for k in api.get(KEYS, params=params).json()["resources"]]


@pytest.fixture
def named_keys(api, clock):
    made = {}
    for name, aliases in [("zeta", ["prod-db"]), ("alpha", []), ("mid-FooBar", ["x-foobar"]),
                          ("foobar", [])]:
        made[name] = api.root_key(name, aliases=aliases)
        clock.advance(60)
    return made


@pytest.mark.parametrize("search, found", [
    ("foobar", ["foobar", "mid-FooBar"]),            # name or alias contains, any case
    ("FOOBAR", ["foobar", "mid-FooBar"]),
    ("exact:foobar", ["foobar"]),                     # the whole name or alias
    ("alias:foobar", ["mid-FooBar"]),
    ("name:exact:FooBar", ["foobar"]),
    ("not:foobar", ["alpha", "zeta"]),
    ("alias:prod-db", ["zeta"]),
    ("escape:not:", []),                              # "not:" taken literally
    ("nothing-like-it", []),
])
def test_search_finds_by_name_and_alias(api, named_keys, search, found):
    body = api.get(KEYS, params={"search": search}).json()
    assert sorted(k["name"] for k in body["resources"]) == sorted(found)
    assert body["metadata"]["searchQuery"]["query"] in search


def test_search_by_id_lists_that_key_first_and_says_how_it_read_the_query(api, named_keys):
    key = named_keys["alpha"]
    body = api.get(KEYS, params={"search": f"exact:{key['id']}"}).json()
    assert [k["id"] for k in body["resources"]] == [key["id"]]
    assert body["metadata"]["searchQuery"] == {"query": key["id"], "scopes": ["name", "alias"],
                                               "not": False, "exact": True}
    assert "searchQuery" not in api.get(KEYS).json()["metadata"]


def test_sort_by_properties_and_direction(api, named_keys):
    created = ["zeta", "alpha", "mid-FooBar", "foobar"]   # a minute apart
    assert names(api, sort="creationDate") == created
    assert names(api, sort="-creationDate") == created[::-1]
    by_id = sorted(named_keys.values(), key=lambda k: k["id"])
    assert names(api) == [k["name"] for k in by_id]      # by id when sort is absent
    api.call("POST", f"{KEYS}/{named_keys['alpha']['id']}/actions/disable")
    assert names(api, sort="-state,creationDate") == ["alpha", "zeta", "mid-FooBar", "foobar"]
    assert names(api, sort="creationDate", limit=2, offset=1) == created[1:3]


@pytest.mark.parametrize("params", [{"sort": "name"}, {"sort": "id,"}, {"sort": "--id"},
                                    {"search": "not:"}, {"search": "x" * 1001}])
def test_bad_search_or_sort_is_400(api, named_keys, params):
    response = api.get(KEYS, params=params)
    assert reason(response) == (400, "INVALID_QUERY_PARAM_ERR")
    assert response.json()["resources"][0]["reasons"][0]["target"]["name"] == \
        next(iter(params))


def test_a_filter_date_means_the_utc_day_whatever_offset_the_dates_carry(api):
    key = api.root_key(expirationDate="2030-01-01T00:30:00+01:00")   # 2029-12-31T23:30Z
    assert key["expirationDate"] == "2029-12-31T23:30:00Z"
    assert [k["id"] for k in api.get(KEYS, params={
        "filter": 'expirationDate="2029-12-31T00:00:00Z"'}).json()["resources"]] == [key["id"]]
    assert api.get(KEYS, params={
        "filter": 'expirationDate="2030-01-01T00:00:00Z"'}).json()["resources"] == []


def test_a_property_named_again_in_sort_is_dropped(api, named_keys):
    """A repeat decides nothing, and each term would sort every key under the lock."""
    text = "-creationDate," + "state,creationDate," * 50 + "id"
    assert sort_terms(text) == [("creationDate", True), ("state", False), ("id", False)]
    assert names(api, sort=text) == names(api, sort="-creationDate,state")
