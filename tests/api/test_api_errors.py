"""Bad requests of every kind get Key Protect error bodies (4xx), never a 500 or a trace;
access control in open and strict mode; what the access log may contain."""
import json
import logging
import uuid

import pytest
import requests
from conftest import KEY_TYPE, Api, envelope, reason

from byoklib import primitives
from byoklib.mock import running_server
from byoklib.mock.service.keys import KeySpec

ERROR_TYPE = "application/vnd.ibm.kms.error+json"


def assert_error(response, status, code):
    assert response.headers["Content-Type"] == ERROR_TYPE
    assert reason(response) == (status, code)
    body = response.json()
    assert body["metadata"] == {"collectionType": ERROR_TYPE, "collectionTotal": 1}
    if status != 401:   # a 401's errorMsg is the whole message (see conftest.reason)
        assert body["resources"][0]["errorMsg"].endswith(f"({code})")


# --- headers ----------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"bluemix-instance": ""}])
def test_missing_instance_header_is_400(server, headers):
    response = requests.get(server.url + "/api/v2/keys",
                            headers={"Authorization": "Bearer t", **headers})
    assert_error(response, 400, "INVALID_HEADER_ERR")


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer   "])
def test_missing_bearer_token_is_401_even_in_open_mode(server, authorization):
    headers = {"bluemix-instance": "i"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = requests.get(server.url + "/api/v2/keys", headers=headers)
    assert_error(response, 401, "UNAUTHORIZED_ERR")


@pytest.mark.parametrize("authorization", ["t", "Basic dTpw", "Token t", "bearer-t"])
def test_authorization_without_the_bearer_scheme_is_400(server, authorization):
    response = requests.post(server.url + "/api/v2/import_token", json={},
                             headers={"Authorization": authorization, "bluemix-instance": "i"})
    assert_error(response, 400, "BEARER_SUB_EXTRACTION_ERR")
    assert response.json()["resources"][0]["reasons"][0]["target"] == {
        "type": "header", "name": "authorization"}


def test_header_names_in_any_case(server):
    response = requests.post(server.url + "/api/v2/import_token", json={},
                             headers={"AUTHORIZATION": "bearer t", "BLUEMIX-INSTANCE": "i"})
    assert response.status_code == 200
    response = requests.get(server.url + "/api/v2/import_token",
                            headers={"authorization": "Bearer t", "Bluemix-Instance": "i"})
    assert response.status_code == 200


# --- bodies and content types -----------------------------------------------------------

@pytest.mark.parametrize("content_type", [None, "application/json",
                                          "application/json; charset=utf-8",
                                          "application/vnd.ibm.kms.key+json",
                                          "APPLICATION/VND.IBM.KMS.KEY+JSON"])
def test_accepted_request_content_types(api, content_type):
    data = json.dumps(envelope({"type": KEY_TYPE, "name": "typed", "extractable": False}))
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.call("POST", "/api/v2/keys", data=data, headers=headers)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml",
                                          "application/x-www-form-urlencoded"])
def test_other_content_types_are_415(api, content_type):
    response = api.call("POST", "/api/v2/import_token", data="{}",
                        headers={"Content-Type": content_type})
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE_ERR")
    assert reason(api.get("/api/v2/import_token"))[0] == 404


def test_oversized_body_is_413_and_the_server_keeps_serving(api):
    big = json.dumps({"plaintext": "A" * (1024 * 1024)})
    key = api.root_key()
    response = api.action(key["id"], "wrap", data=big,
                          headers={"Content-Type": "application/json"})
    assert_error(response, 413, "BODY_TOO_LARGE_ERR")
    assert api.key(key["id"])["state"] == 1


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe", b'{"a": Infinity}', b"[1,",
                                  b"[" * 100000 + b"]" * 100000])
def test_malformed_json_is_400(api, body):
    response = api.call("POST", "/api/v2/keys", data=body,
                        headers={"Content-Type": "application/json"})
    assert_error(response, 400, "BAD_BODY_ERR")


# The bodies are raw JSON text, so each test says exactly which escapes go on the wire.
@pytest.mark.parametrize("name", [r"lone \ud800 high", r"lone \uDC00 low",
                                  r"reversed \udc00\ud800 pair"])
def test_a_lone_surrogate_escape_is_400_and_makes_no_key(api, name):
    body = ('{"metadata": {"collectionType": "%s", "collectionTotal": 1}, "resources": '
            '[{"type": "%s", "name": "%s", "extractable": false}]}' % (KEY_TYPE, KEY_TYPE, name))
    response = api.call("POST", "/api/v2/keys", data=body.encode(),
                        headers={"Content-Type": "application/json"})
    assert_error(response, 400, "BAD_BODY_ERR")
    assert "lone surrogate" in response.json()["resources"][0]["reasons"][0]["message"]
    assert api.get("/api/v2/keys").json()["metadata"]["collectionTotal"] == 0


def test_a_lone_surrogate_in_a_field_name_or_a_list_is_refused_too(api):
    key = api.root_key()
    for body in (r'{"plaintext": "AAAAAAAAAAAAAAAAAAAAAA==", "aad": ["ok", "\ud834"]}',
                 r'{"plaintext": "AAAAAAAAAAAAAAAAAAAAAA==", "\udfff": 1}'):
        response = api.action(key["id"], "wrap", data=body,
                              headers={"Content-Type": "application/json"})
        assert_error(response, 400, "BAD_BODY_ERR")


def test_an_escaped_surrogate_pair_is_one_character_and_accepted(api):
    body = ('{"metadata": {"collectionType": "%s", "collectionTotal": 1}, "resources": '
            '[{"type": "%s", "name": "clef \\ud83d\\udd11", "extractable": false}]}'
            % (KEY_TYPE, KEY_TYPE))
    response = api.call("POST", "/api/v2/keys", data=body.encode(),
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert response.json()["resources"][0]["name"] == "clef \N{KEY}"
    # so is a backslash that only looks like the start of one
    response = api.action(response.json()["resources"][0]["id"], "wrap",
                          data=r'{"plaintext": "AAAAAAAAAAAAAAAAAAAAAA==", "aad": ["\\ud800"]}',
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text


# --- paths and methods --------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/api/v2", "/api/v2/key", "/api/v3/keys",
                                  "/api/v2/keys/a/b", "/api/v2/keys/a/actions/wrap/x"])
def test_unknown_paths_are_404(api, path):
    assert_error(api.get(path), 404, "NOT_FOUND_ERR")


@pytest.mark.parametrize("method,path", [("PUT", "/api/v2/keys"), ("DELETE", "/api/v2/keys"),
                                         ("PATCH", "/api/v2/import_token"),
                                         ("GET", "/api/v2/keys/x/actions/wrap"),
                                         ("DELETE", "/api/v2/instance/policies")])
def test_wrong_methods_are_405(api, method, path):
    assert_error(api.call(method, path), 405, "METHOD_NOT_ALLOWED_ERR")


# --- the catch-all --------------------------------------------------------------------

def test_unexpected_exception_is_a_bare_500(server, api, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret-detail-that-must-not-leak")
    monkeypatch.setattr(server.service, "get_import_token", explode)
    response = api.get("/api/v2/import_token")
    assert_error(response, 500, "INTERNAL_ERR")
    assert "secret-detail" not in response.text and "Traceback" not in response.text
    assert server.app.internal_errors == 1


BAD_REQUESTS = [
    ("POST", "/api/v2/import_token", {"expiration": {"a": 1}}),
    ("POST", "/api/v2/import_token", [1, 2]),
    ("POST", "/api/v2/import_token", "text"),
    ("POST", "/api/v2/import_token", {"maxAllowedRetrievals": 1e308}),
    ("POST", "/api/v2/import_token", {"maxAllowedRetrievals": -1e308}),
    ("POST", "/api/v2/keys", {"metadata": [], "resources": {}}),
    ("POST", "/api/v2/keys", {"metadata": {"collectionType": KEY_TYPE, "collectionTotal": "1"},
                              "resources": [{}]}),
    ("POST", "/api/v2/keys", envelope({"name": ["list"], "extractable": None})),
    ("POST", "/api/v2/keys", envelope({"name": "ok", "payload": {"x": 1}})),
    ("POST", "/api/v2/keys", envelope({"name": "ok", "expirationDate": 12})),
    ("POST", "/api/v2/keys", envelope({"name": "ok", "expirationDate": "9999-99-99"})),
    ("POST", "/api/v2/keys", envelope({"name": "ok", "extractable": False, "iv": 1,
                                       "encryptedNonce": [], "payload": None,
                                       "encryptionAlgorithm": 5})),
    ("POST", "/api/v2/keys", envelope({"name": "ok", "tags": [1]})),
    ("POST", "/api/v2/keys", envelope({"name": "\u0000bad"})),
    ("GET", "/api/v2/keys?limit=1e3", None),
    ("GET", "/api/v2/keys?limit=%C2%B2", None),
    ("GET", "/api/v2/keys?state=%C2%B2", None),
    ("GET", "/api/v2/keys?offset=99999999999999999999", None),
    ("GET", "/api/v2/keys/%00", None),
    ("GET", "/api/v2/keys/" + "x" * 5000, None),
    ("POST", "/api/v2/keys/KEY/actions/wrap", {"plaintext": 5}),
    ("POST", "/api/v2/keys/KEY/actions/wrap", {"aad": [None]}),
    ("POST", "/api/v2/keys/KEY/actions/unwrap", {"ciphertext": "QUFB", "aad": {}}),
    ("POST", "/api/v2/keys/KEY/actions/unwrap", {"ciphertext": primitives.b64encode(
        json.dumps({"ciphertext": "!", "iv": "", "handle": ""}).encode())}),
    ("POST", "/api/v2/keys/KEY/actions/unwrap", {"ciphertext": primitives.b64encode(
        json.dumps({"ciphertext": "QUFB", "iv": "", "handle": "VERSION"}).encode())}),
    ("POST", "/api/v2/keys/KEY/actions/rotate", {"payload": 5}),
    ("POST", "/api/v2/keys/KEY/actions/rotate", "null-ish"),
    ("POST", "/api/v2/keys/KEY/actions/disable", [1]),
    ("POST", "/api/v2/keys/KEY?action=%00", None),
    ("PUT", "/api/v2/keys/KEY/policies", {"metadata": None}),
    ("PUT", "/api/v2/keys/KEY/policies", envelope({"rotation": {"interval_month": 1e400}},
                                                  kind="application/vnd.ibm.kms.policy+json")),
    ("PUT", "/api/v2/instance/policies", envelope({"policy_type": "keyCreateImportAccess",
                                                   "policy_data": []},
                                                  kind="application/vnd.ibm.kms.policy+json")),
    ("GET", "/api/v2/keys/KEY/versions?limit=-5&totalCount=maybe", None),
    ("DELETE", "/api/v2/keys/KEY?force=2", None),
]


def test_no_bad_input_reaches_the_catch_all(server, api):
    key = api.root_key()
    version = key["keyVersion"]["id"]
    for method, path, body in BAD_REQUESTS:
        path = path.replace("KEY", key["id"])
        kwargs = {}
        if body is not None:
            text = json.dumps(body).replace("VERSION", version).replace("1e+400", "1e400")
            kwargs = {"data": text, "headers": {"Content-Type": "application/json"}}
        response = api.call(method, path, **kwargs)
        assert 400 <= response.status_code < 500, (method, path, response.text)
        assert response.headers["Content-Type"] == ERROR_TYPE
    assert server.app.internal_errors == 0
    assert api.key(key["id"])["state"] == 1
    assert api.get(f"/api/v2/keys/{key['id']}/versions").json()["metadata"]["collectionTotal"] == 1


# --- strict mode ----------------------------------------------------------------------

@pytest.mark.parametrize("token", ["", "Bearer", "bearer ", "  "])
def test_a_grant_without_a_token_is_refused_at_start(service, token):
    from byoklib.__main__ import parse_grants
    with pytest.raises(ValueError, match="a grant needs a token"):
        with running_server(service, grants={token: "inst-a"}):
            pass
    with pytest.raises(SystemExit, match="--grant needs TOKEN=INSTANCE"):
        parse_grants([f"{token}=inst-a"])


def test_strict_mode_isolates_tokens_and_instances(service):
    grants = {"token-a": "inst-a", "Bearer token-b": {"inst-b", "inst-c"}}
    with running_server(service, grants=grants) as server:
        a, b = Api(server.url, "inst-a", "token-a"), Api(server.url, "inst-b", "token-b")
        key = a.root_key()
        assert b.root_key()["id"] != key["id"]
        assert Api(server.url, "inst-c", "token-b").get("/api/v2/keys").status_code == 200
        # a known token on another instance: 403 (strict mode's contract, README)
        assert_error(Api(server.url, "inst-a", "token-b").get(f"/api/v2/keys/{key['id']}"),
                     403, "FORBIDDEN_ERR")
        assert_error(Api(server.url, "inst-b", "token-a").get("/api/v2/keys"),
                     403, "FORBIDDEN_ERR")
        assert_error(Api(server.url, "inst-a", "token-x").get("/api/v2/keys"),
                     401, "UNAUTHORIZED_ERR")
        assert_error(requests.get(server.url + "/api/v2/keys",
                                  headers={"bluemix-instance": "inst-a"}),
                     401, "UNAUTHORIZED_ERR")
        assert [k["id"] for k in a.get("/api/v2/keys").json()["resources"]] == [key["id"]]
        # inst-c was only read: a lookup creates no instance
        assert service.instance_ids() == ["inst-a", "inst-b"]


# --- the access log -------------------------------------------------------------------

def test_access_log_has_method_path_status_only(api, caplog):
    caplog.set_level(logging.INFO, logger="byoklib.mock.http")
    material = bytes(range(32))
    payload = primitives.b64encode(material)
    key = api.root_key(payload=payload)
    wrapped = api.action(key["id"], "wrap", {"plaintext": payload}).json()
    api.get("/api/v2/keys", params={"state": "1"})
    api.action(key["id"], "unwrap", {"ciphertext": wrapped["ciphertext"]})
    lines = [r.getMessage() for r in caplog.records if r.name == "byoklib.mock.http"]
    assert f"POST /api/v2/keys/{key['id']}/actions/wrap 200" in lines
    assert "GET /api/v2/keys 200" in lines
    everything = "\n".join(lines)
    for secret in (payload, wrapped["ciphertext"], material.hex(), "state=", "Bearer"):
        assert secret not in everything


def test_reprs_redact_secrets(server, api, token_key_pairs):
    api.new_token()
    token = api.token()
    material = bytes(range(32))
    key = api.create_key({"name": "std", "extractable": True,
                          "payload": primitives.b64encode(material)}).json()["resources"][0]
    instance = server.service._instances["instance-1"]
    texts = [repr(server.service), repr(server.service.hsm), repr(instance),
             repr(instance.token), repr(instance.keys[key["id"]]), repr(server.app)]
    joined = "\n".join(texts)
    assert primitives.b64encode(material) not in joined and repr(material) not in joined
    assert token["nonce"] not in joined and "BEGIN" not in joined
    assert str(uuid.UUID(key["id"])) in repr(instance.keys[key["id"]])
    # the validated request a plain import travels in (a traceback with locals shows it)
    spec = KeySpec("k", False, None, None, [], [], material, False)
    assert repr(material) not in repr(spec) and material.hex() not in repr(spec)


# --- errorMsg names what could not be done, as Key Protect's does ----------------------------

def test_error_msg_names_the_operation(api):
    def error_msg(response):
        return response.json()["resources"][0]["errorMsg"]

    assert error_msg(api.post("/api/v2/keys", json=[])) == (
        "Bad Request: Key could not be created: Please see `reasons` for more details "
        "(BAD_BODY_ERR)")
    assert error_msg(api.get("/api/v2/import_token")).startswith(
        "Not Found: Import Token could not be retrieved: ")
    key = api.root_key()
    assert error_msg(api.action(key["id"], "wrap", {"plaintext": "not base64!"})).startswith(
        "Bad Request: Wrap with key could not be performed: ")
    assert error_msg(api.action(key["id"], "setKeyForDeletion")).startswith(
        "Conflict: Action could not be performed on key: ")
    assert error_msg(api.get("/api/v2/nothing-here")).startswith(
        "Not Found: The request could not be completed: ")
