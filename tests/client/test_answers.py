"""The client's requests and answers against a scripted server on 127.0.0.1
(scripted_server): the headers it sends, and how it turns every kind of failure body into
a KeyProtectError without repeating a credential.
"""
import json

import pytest
import requests
import scripted_server
from scripted_server import kp_error

from byoklib import KeyProtectError, primitives
from byoklib.client import KeyProtectClient, error_from_response

scripted, client = scripted_server.scripted, scripted_server.client   # fixtures


# --- headers and URLs ---------------------------------------------------------------------

def test_headers_of_a_plain_request(scripted, client):
    scripted.reply(200, {"resources": [{"id": "k1"}]})
    assert client.get_key("k1") == {"id": "k1"}
    headers = scripted.last["headers"]
    assert headers["authorization"] == "Bearer abc.def"  # prefix added once
    assert headers["bluemix-instance"] == "inst-1"
    assert headers["accept"] == "application/json"
    assert "x-kms-key-ring" not in headers and "correlation-id" not in headers
    assert scripted.last["path"] == "/api/v2/keys/k1"


def test_optional_headers_and_existing_prefix(scripted):
    with KeyProtectClient(scripted.url + "/api/v2/", "inst-2", "Bearer tok", key_ring="ring-a",
                          correlation_id="corr-1") as client:
        scripted.reply(204)
        client.disable_key("k/../x")
    request = scripted.last
    assert request["headers"]["authorization"] == "Bearer tok"
    assert request["headers"]["x-kms-key-ring"] == "ring-a"
    assert request["headers"]["correlation-id"] == "corr-1"
    # A key id is one path segment, never a path: "/" and ".." are escaped.
    assert request["path"] == "/api/v2/keys/k%2F..%2Fx/actions/disable"
    assert request["body"] == b""


def test_create_key_body_and_vendor_content_type(scripted, client):
    scripted.reply(201, {"resources": [{"id": "k1", "imported": True}]})
    result = client.import_root_key("n", bytes(16), description="d", prefer="representation")
    assert result == {"id": "k1", "imported": True}
    request = scripted.last
    assert request["headers"]["content-type"] == "application/vnd.ibm.kms.key+json"
    assert request["headers"]["prefer"] == "return=representation"
    body = json.loads(request["body"])
    assert body["metadata"] == {"collectionType": "application/vnd.ibm.kms.key+json",
                                "collectionTotal": 1}
    assert body["resources"] == [{"type": "application/vnd.ibm.kms.key+json", "name": "n",
                                  "description": "d", "extractable": False,
                                  "payload": "AAAAAAAAAAAAAAAAAAAAAA=="}]


def test_wrap_body_decoding_and_query_encoding(scripted, client):
    scripted.reply(200, {"plaintext": "AAEC", "ciphertext": "eyJ9", "keyVersion": {"id": "v"}})
    result = client.wrap("k1", aad="ctx")
    assert result == {"plaintext": b"\x00\x01\x02", "ciphertext": b'{"}', "keyVersion": {"id": "v"}}
    assert json.loads(scripted.last["body"]) == {"aad": ["ctx"]}
    assert scripted.last["headers"]["content-type"] == "application/vnd.ibm.kms.key_action_wrap+json"
    scripted.reply(200, {"resources": []})
    assert client.list_keys(limit=5, state=[0, 1], extractable=False) == []
    assert scripted.last["path"] == "/api/v2/keys?limit=5&state=0%2C1&extractable=false"


def test_key_total_reads_the_header(scripted, client):
    scripted.reply(200, headers={"Key-Total": "7"})
    assert client.key_total() == 7
    assert scripted.last["method"] == "HEAD"
    for bad in (None, "\u00b2"):   # none, or a digit to str.isdigit() that int() refuses
        scripted.reply(200, headers={"Key-Total": bad} if bad else {})
        with pytest.raises(KeyProtectError) as info:
            client.key_total()
        assert info.value.code == "UNEXPECTED_RESPONSE"


def test_a_redirect_is_not_followed(scripted, client):
    """Key Protect does not redirect; following one would post the key material and the
    instance id to wherever it points."""
    scripted.reply(307, headers={"Location": scripted.url + "/elsewhere"})
    with pytest.raises(KeyProtectError) as info:
        client.import_root_key("k", bytes(32))
    assert info.value.status == 307
    assert [r["path"] for r in scripted.requests] == ["/api/v2/keys"]


def test_repr_hides_the_token(scripted, client):
    text = repr(client)
    assert scripted.url in text and "inst-1" in text
    assert "abc.def" not in text
    assert "abc.def" not in str(dict(client.session.headers))


# --- error bodies -----------------------------------------------------------------------------

def test_key_protect_error_body_is_parsed(scripted, client):
    body = kp_error(400, "INVALID_FIELD_ERR", "The field `plaintext` must be: base64",
                    target={"type": "field", "name": "plaintext"},
                    error_msg="Bad Request: Wrap could not be performed (INVALID_FIELD_ERR)")
    scripted.reply(400, body)
    with pytest.raises(KeyProtectError) as info:
        client.wrap("k1", b"x")
    err = info.value
    assert (err.status, err.code, err.target) == (400, "INVALID_FIELD_ERR", ("field", "plaintext"))
    assert err.message == "The field `plaintext` must be: base64"
    assert err.error_msg == "Bad Request: Wrap could not be performed (INVALID_FIELD_ERR)"
    assert client.last_response.status_code == 400


def test_keys_are_matched_case_insensitively(scripted, client):
    scripted.reply(404, {"Resources": [{"ErrorMsg": "Not Found: (KEY_NOT_FOUND_ERR)",
                                        "Reasons": [{"Code": "KEY_NOT_FOUND_ERR",
                                                     "Message": "key does not exist"}]}]})
    with pytest.raises(KeyProtectError) as info:
        client.get_key("nope")
    assert (info.value.status, info.value.code) == (404, "KEY_NOT_FOUND_ERR")
    assert info.value.message == "key does not exist"


def test_401_without_reasons(scripted, client):
    scripted.reply(401, {"metadata": {"collectionType": "application/vnd.ibm.kms.error+json",
                                      "collectionTotal": 1},
                         "resources": [{"errorMsg": "Unauthorized: The user does not have "
                                                    "access to the specified resource"}]})
    with pytest.raises(KeyProtectError) as info:
        client.list_keys()
    assert (info.value.status, info.value.code) == (401, "UNAUTHORIZED_ERR")
    assert info.value.message.startswith("Unauthorized: The user does not have access")


def test_401_without_any_message_keeps_its_status_as_code(scripted, client):
    scripted.reply(401, {"resources": [{}]})
    with pytest.raises(KeyProtectError) as info:
        client.list_keys()
    assert (info.value.status, info.value.code) == (401, "HTTP_401")


def test_code_is_taken_from_error_msg_when_reasons_are_missing(scripted, client):
    scripted.reply(409, {"resources": [{"errorMsg": "Conflict: Import Token could not be "
                                                    "retrieved (IMPORT_TOKEN_EXPIRED_ERR)"}]})
    with pytest.raises(KeyProtectError) as info:
        client.get_import_token()
    assert info.value.code == "IMPORT_TOKEN_EXPIRED_ERR"


@pytest.mark.parametrize("status, content_type, body", [
    (502, "text/html", b"<html><body>Bad gateway: upstream said " + b"A" * 5000 + b"</body></html>"),
    (503, "text/plain", b""),
    (500, "application/json", b"{not json"),
    (403, "application/json", b"[1, 2]"),
])
def test_bodies_that_are_not_key_protect_errors(scripted, client, status, content_type, body):
    scripted.reply(status, body, {"Content-Type": content_type})
    with pytest.raises(KeyProtectError) as info:
        client.get_key("k1")
    err = info.value
    assert (err.status, err.code) == (status, f"HTTP_{status}")
    assert "not a Key Protect error body" in err.message
    assert "<html>" not in str(err) and len(str(err)) < 300


def test_error_for_a_secure_import_never_echoes_the_request(scripted, client):
    # Even if a proxy echoes the request body back, the message does not quote it.
    material = bytes(range(32))
    scripted.reply(400, b"you sent: " + primitives.b64encode(material).encode(),
                   {"Content-Type": "text/plain"})
    with pytest.raises(KeyProtectError) as info:
        client.import_root_key("n", material)
    assert primitives.b64encode(material) not in str(info.value)
    assert primitives.b64encode(material) not in info.value.error_msg


def test_unexpected_2xx_bodies(scripted, client):
    scripted.reply(200, b"<html>ok</html>", {"Content-Type": "text/html"})
    with pytest.raises(KeyProtectError) as info:
        client.get_key("k1")
    assert (info.value.status, info.value.code) == (200, "UNEXPECTED_RESPONSE")
    scripted.reply(200, {"ciphertext": "not base64!"})
    with pytest.raises(KeyProtectError) as info:
        client.unwrap("k1", b"c")
    assert "ciphertext is not base64" in info.value.message


def test_error_from_response_works_on_any_requests_response():
    response = requests.Response()
    response.status_code, response._content = 418, b""
    err = error_from_response(response)
    assert (err.status, err.code) == (418, "HTTP_418")


# --- construction ---------------------------------------------------------------------------


def test_constructor_refuses_empty_credentials():
    for args in (("", "i", "t"), ("https://x", "", "t"), ("https://x", "i", " ")):
        with pytest.raises(ValueError):
            KeyProtectClient(*args)


# --- the import doctor's header ------------------------------------------------------------


def test_a_diagnosis_header_is_kept_on_the_error(scripted, client):
    scripted.reply(400, kp_error(400, "INCORRECT_NONCE_IV_ERR", "no"),
                   {"Byoklib-Diagnosis": "NONCE_AS_TEXT: the base64 text was sealed"})
    with pytest.raises(KeyProtectError) as info:
        client.create_key("n")
    assert info.value.diagnosis == "NONCE_AS_TEXT: the base64 text was sealed"
    assert info.value.code == "INCORRECT_NONCE_IV_ERR"       # the body's answer, unchanged
    scripted.reply(400, kp_error(400, "INCORRECT_NONCE_IV_ERR", "no"))
    with pytest.raises(KeyProtectError) as info:
        client.create_key("n")
    assert info.value.diagnosis is None                       # the real service sends none


# --- what an error may repeat --------------------------------------------------------------

BEARER = "eyJ.bearer-token-of-the-caller"


def test_an_error_that_repeats_the_bearer_token_keeps_none_of_its_text(scripted):
    scripted.reply(400, kp_error(400, "BAD_BODY_ERR", f"your header was Bearer {BEARER}",
                                 target={"type": "header", "name": BEARER}))
    with KeyProtectClient(scripted.url, "inst-1", BEARER) as client:
        with pytest.raises(KeyProtectError) as info:
            client.get_key("k")
    error = info.value
    shown = str(error) + repr(error) + repr(vars(error))
    assert BEARER not in shown
    assert (error.status, error.code) == (400, "BAD_BODY_ERR") and "withheld" in str(error)


@pytest.mark.parametrize("echo", [BEARER[:-1], BEARER.upper(), "x" + BEARER[3:] + "y"])
def test_an_error_that_repeats_most_of_the_bearer_token_keeps_none_of_its_text(scripted, echo):
    scripted.reply(400, kp_error(400, "BAD_BODY_ERR", f"bad token {echo}"))
    with KeyProtectClient(scripted.url, "inst-1", BEARER) as client:
        with pytest.raises(KeyProtectError) as info:
            client.get_key("k")
    assert echo not in str(info.value) and "withheld" in str(info.value)


def test_an_error_that_repeats_the_key_material_sent_keeps_none_of_its_text(scripted, client):
    material = bytes(range(32))
    sent = primitives.b64encode(material)
    for call in (lambda: client.wrap("k1", material),
                 lambda: client.import_root_key("k", material),
                 lambda: client.create_key("s", payload=sent, extractable=True)):
        scripted.reply(400, kp_error(400, "BAD_BODY_ERR", f"bad request: {sent}"))
        with pytest.raises(KeyProtectError) as info:
            call()
        assert sent not in str(info.value) + repr(vars(info.value))
        assert "withheld" in str(info.value)


def test_an_error_body_far_larger_than_any_error_is_described_not_parsed(client, scripted):
    scripted.reply(400, b"[" * 100_000 + b"]" * 100_000, {"Content-Type": "application/json"})
    with pytest.raises(KeyProtectError) as info:
        client.get_key("k")
    assert info.value.code == "HTTP_400"
    assert "not a Key Protect error body (application/json, 200000 bytes)" in str(info.value)


def test_a_small_body_nested_too_deep_is_no_json():
    import gc

    from byoklib.client.answers import read_json
    response = requests.Response()
    response._content = b"[" * 5_000 + b"]" * 5_000   # past Python's recursion limit
    gc.disable()   # a collection at the limit would run other tests' finalizers there
    try:
        assert read_json(response) is None
    finally:
        gc.enable()


@pytest.mark.parametrize("resources", [{"id": "k"}, "keys", 5, ["k"]])
def test_resources_that_are_not_a_list_of_objects_are_an_unexpected_response(client, scripted,
                                                                           resources):
    scripted.reply(200, {"metadata": {}, "resources": resources})
    with pytest.raises(KeyProtectError) as info:
        client.list_keys()
    assert info.value.code == "UNEXPECTED_RESPONSE"


def test_a_header_that_repeats_the_token_is_withheld_too(scripted):
    scripted.reply(400, kp_error(400, "INCORRECT_NONCE_IV_ERR", "no"),
                   {"Byoklib-Diagnosis": f"NONCE_AS_TEXT: sent with Bearer {BEARER}"})
    with KeyProtectClient(scripted.url, "inst-1", BEARER) as client:
        with pytest.raises(KeyProtectError) as info:
            client.create_key("n")
    assert BEARER not in str(info.value) + repr(vars(info.value))
    assert "withheld" in str(info.value) and info.value.diagnosis is None


def test_an_escaped_echo_of_the_token_is_withheld_too(scripted):
    # every character a \u escape: the body as sent holds no piece of it, the parsed one does
    escaped = "".join(f"\\u{ord(c):04x}" for c in BEARER)
    scripted.reply(401, f'{{"errorCode": "BXNIM0415E", "errorMessage": "bad token {escaped}"}}'
                   .encode(), {"Content-Type": "application/json"})
    with KeyProtectClient(scripted.url, "inst-1", BEARER) as client:
        with pytest.raises(KeyProtectError) as info:
            client.get_key("k")
    assert BEARER not in str(info.value) + repr(vars(info.value))
