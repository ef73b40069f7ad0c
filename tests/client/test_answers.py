"""The client against a scripted HTTP server on 127.0.0.1: the headers it sends, how it
turns every kind of failure body into a KeyProtectError, IAM, from_env, and its imports.

A scripted server (not the mock) lets these tests send bodies the mock never would —
a proxy's HTML page, a 401 without reasons, a 2xx that is not JSON — over real HTTP.
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from byoklib import KeyProtectError, primitives
from byoklib.client import KeyProtectClient, error_from_response, iam_token, new_session
from byoklib.client import transport

SECRET = "sUp3r-s3cret-api-key"


class Scripted:
    """Answers each request with the next scripted (status, headers, body) and records
    what came in."""

    def __init__(self):
        self.replies, self.requests = [], []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                scripted.requests.append({
                    "method": self.command, "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": self.rfile.read(length) if length else b""})
                status, headers, body = (scripted.replies.pop(0) if scripted.replies
                                         else (204, {}, b""))
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                    headers = {"Content-Type": "application/json", **headers}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def reply(self, status, body=b"", headers=None):
        self.replies.append((status, headers or {}, body))

    @property
    def last(self):
        return self.requests[-1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    server = Scripted()
    yield server
    server.close()


@pytest.fixture
def client(scripted):
    with KeyProtectClient(scripted.url, "inst-1", "abc.def") as c:
        yield c


def kp_error(status, code, message, target=None, error_msg=None):
    reason = {"code": code, "message": message, "status": status,
              "moreInfo": "https://cloud.ibm.com/apidocs/key-protect"}
    if target:
        reason["target"] = target
    return {"metadata": {"collectionType": "application/vnd.ibm.kms.error+json",
                         "collectionTotal": 1},
            "resources": [{"errorMsg": error_msg or f"Conflict: x ({code})", "reasons": [reason]}]}


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


def test_netrc_credentials_never_replace_the_bearer_token(scripted, client, tmp_path,
                                                         monkeypatch):
    # requests adds Basic credentials from ~/.netrc (or $NETRC) for the host to any request
    # that brings no auth of its own, over an Authorization header set by hand.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1\nlogin alice\npassword netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    scripted.reply(200, {"resources": [{"id": "k1"}]})
    client.get_key("k1")
    assert scripted.last["headers"]["authorization"] == "Bearer abc.def"
    scripted.reply(200, {"access_token": "eyJ.token"})
    iam_token(SECRET, url=scripted.url + "/identity/token")
    assert "authorization" not in scripted.last["headers"]


def test_proxies_from_the_environment_are_used(scripted, monkeypatch):
    # The scripted server plays an HTTP proxy: requests sends it the absolute URL.
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", scripted.url)
    with pytest.warns(UserWarning, match="plain http"), \
            KeyProtectClient("http://kp.invalid", "inst-1", "abc.def") as client:
        scripted.reply(200, {"resources": [{"id": "k1"}]})
        client.get_key("k1")
    assert scripted.last["path"] == "http://kp.invalid/api/v2/keys/k1"
    assert scripted.last["headers"]["authorization"] == "Bearer abc.def"


class Recording(requests.adapters.BaseAdapter):
    """Answers 200 without a network; keeps the settings each request was sent with."""

    def __init__(self):
        super().__init__()
        self.sent = []

    def send(self, request, **settings):
        self.sent.append(settings)
        response = requests.Response()
        response.status_code, response.request, response._content = 200, request, b"{}"
        return response

    def close(self):
        pass


def test_a_ca_bundle_from_the_environment_is_used_and_verify_false_is_kept(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/company-ca.pem")
    with KeyProtectClient("https://kp.invalid", "inst-1", "tok") as client:
        client.session.mount("https://", recording := Recording())
        client.request("GET", "keys")
    assert recording.sent[-1]["verify"] == "/etc/company-ca.pem"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with KeyProtectClient("https://kp.invalid", "inst-1", "tok") as client:
        client.session.mount("https://", recording := Recording())
        client.session.verify = False          # e.g. a local mock behind a self-signed cert
        client.request("GET", "keys")
    assert recording.sent[-1]["verify"] is False


# --- IAM --------------------------------------------------------------------------------------

def test_iam_token_posts_the_apikey_grant(scripted):
    scripted.reply(200, {"access_token": "eyJ.token", "token_type": "Bearer", "expires_in": 3600})
    assert iam_token(SECRET, url=scripted.url + "/identity/token") == "eyJ.token"
    request = scripted.last
    assert request["method"] == "POST" and request["path"] == "/identity/token"
    assert request["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert request["body"] == (b"grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey"
                               b"&apikey=" + SECRET.encode())


def test_iam_failure_is_a_key_protect_error_without_the_key(scripted):
    scripted.reply(400, {"errorCode": "BXNIM0415E",
                         "errorMessage": f"Provided API key could not be found: {SECRET}"})
    with pytest.raises(KeyProtectError) as info:
        iam_token(SECRET, url=scripted.url)
    assert (info.value.status, info.value.code) == (400, "BXNIM0415E")
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert SECRET not in info.value.error_msg
    scripted.reply(200, {"token_type": "Bearer"})
    with pytest.raises(KeyProtectError, match="access_token"):
        iam_token(SECRET, url=scripted.url)


def test_from_api_key_and_from_env(scripted):
    scripted.reply(200, {"access_token": "from-iam"})
    scripted.reply(200, {"resources": [{"id": "k"}]})
    env = {"KP_URL": scripted.url, "KP_INSTANCE_ID": "inst-env", "IBMCLOUD_API_KEY": SECRET,
           "KP_IAM_URL": scripted.url + "/identity/token", "KP_KEY_RING": "ring-e"}
    with KeyProtectClient.from_env(env) as client:
        client.get_key("k")
    assert scripted.requests[0]["path"] == "/identity/token"
    assert scripted.last["headers"]["authorization"] == "Bearer from-iam"
    assert scripted.last["headers"]["bluemix-instance"] == "inst-env"
    assert scripted.last["headers"]["x-kms-key-ring"] == "ring-e"
    assert SECRET not in repr(client)


def test_from_env_prefers_a_bearer_token_and_explains_what_is_missing(scripted):
    scripted.reply(200, {"resources": [{"id": "k"}]})
    env = {"KP_URL": scripted.url, "KP_INSTANCE_ID": "i", "KP_TOKEN": "tok", "KP_API_KEY": SECRET}
    with KeyProtectClient.from_env(env) as client:
        client.get_key("k")
    assert len(scripted.requests) == 1  # no IAM call
    assert scripted.last["headers"]["authorization"] == "Bearer tok"
    with pytest.raises(ValueError, match="KP_INSTANCE_ID"):
        KeyProtectClient.from_env({"KP_TOKEN": "tok"})


def test_constructor_refuses_empty_credentials():
    for args in (("", "i", "t"), ("https://x", "", "t"), ("https://x", "i", " ")):
        with pytest.raises(ValueError):
            KeyProtectClient(*args)


# --- retries (opt-in) ----------------------------------------------------------------------

@pytest.fixture
def retrying(scripted, monkeypatch):
    waits = []
    monkeypatch.setattr(transport, "pause", waits.append)   # record the waits, not sleep
    with KeyProtectClient(scripted.url, "inst-1", "abc.def", retries=2,
                          max_retry_wait=5) as c:
        c.waits = waits
        yield c


KEY = {"metadata": {"collectionTotal": 1}, "resources": [{"id": "k1", "name": "n"}]}


def test_no_retries_unless_asked(scripted, client):
    scripted.reply(429, kp_error(429, "TOO_MANY_REQUESTS", "slow down"))
    scripted.reply(200, KEY)
    with pytest.raises(KeyProtectError) as info:
        client.get_key("k1")
    assert info.value.status == 429 and len(scripted.requests) == 1


def test_a_429_is_retried_after_its_retry_after(scripted, retrying):
    scripted.reply(429, kp_error(429, "TOO_MANY_REQUESTS", "slow down"), {"Retry-After": "3"})
    scripted.reply(201, KEY)
    assert retrying.create_key("n")["id"] == "k1"   # a POST too: a 429 was not carried out
    assert retrying.waits == [3.0] and len(scripted.requests) == 2
    assert scripted.requests[0]["body"] == scripted.requests[1]["body"]


def test_retry_after_as_a_date_and_the_wait_cap(scripted, retrying):
    scripted.reply(503, b"", {"Retry-After": "Fri, 31 Dec 2100 23:59:59 GMT"})
    scripted.reply(503, b"", {"Retry-After": "soon"})          # unreadable: backoff
    scripted.reply(200, KEY)
    assert retrying.get_key("k1")["id"] == "k1"
    assert retrying.waits[0] == 5                               # capped at max_retry_wait
    assert 1.0 <= retrying.waits[1] <= 1.2                      # 0.5 s * 2 ** 1, jittered


def test_a_5xx_is_not_retried_for_a_post(scripted, retrying):
    scripted.reply(503, b"")
    scripted.reply(201, KEY)
    with pytest.raises(KeyProtectError) as info:
        retrying.create_key("n")
    assert info.value.status == 503 and len(scripted.requests) == 1 and retrying.waits == []


def test_retries_run_out_with_the_last_error(scripted, retrying):
    for _ in range(3):
        scripted.reply(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"})
    with pytest.raises(KeyProtectError) as info:
        retrying.list_keys()
    assert info.value.status == 502 and len(scripted.requests) == 3
    assert len(retrying.waits) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 409, 501])
def test_other_failures_are_never_retried(scripted, retrying, status):
    scripted.reply(status, kp_error(status, "SOME_ERR", "no"))
    with pytest.raises(KeyProtectError):
        retrying.get_key("k1")
    assert len(scripted.requests) == 1


def test_retries_from_the_environment_and_bad_values():
    env = {"KP_URL": "http://127.0.0.1:9", "KP_INSTANCE_ID": "i", "KP_TOKEN": "t",
           "KP_RETRIES": "3"}
    with KeyProtectClient.from_env(env) as client:
        assert client.retries == 3
    for bad in (-1, 1.5, "2"):
        with pytest.raises(ValueError):
            KeyProtectClient("http://127.0.0.1:9", "i", "t", retries=bad)


def test_an_api_key_client_gets_a_new_iam_token_once_on_401(scripted):
    scripted.reply(200, {"access_token": "first"})
    scripted.reply(401, kp_error(401, "UNAUTHORIZED_ERR", "token expired"))
    scripted.reply(200, {"access_token": "second"})
    scripted.reply(200, KEY)
    with KeyProtectClient.from_api_key(scripted.url, "i", SECRET,
                                       iam_url=scripted.url + "/identity/token") as client:
        assert client.get_key("k1")["id"] == "k1"
        paths = [r["path"] for r in scripted.requests]
        assert paths == ["/identity/token", "/api/v2/keys/k1", "/identity/token",
                         "/api/v2/keys/k1"]
        assert scripted.last["headers"]["authorization"] == "Bearer second"
        # A second 401 right after a fresh token is the answer: no loop.
        scripted.reply(401, kp_error(401, "UNAUTHORIZED_ERR", "no access"))
        scripted.reply(200, {"access_token": "third"})
        scripted.reply(401, kp_error(401, "UNAUTHORIZED_ERR", "no access"))
        with pytest.raises(KeyProtectError) as info:
            client.get_key("k1")
        assert info.value.status == 401 and len(scripted.requests) == 7
        assert SECRET not in repr(client) and SECRET not in str(vars(client))


def test_a_bearer_token_client_does_not_retry_a_401(scripted, client):
    scripted.reply(401, kp_error(401, "UNAUTHORIZED_ERR", "token expired"))
    with pytest.raises(KeyProtectError):
        client.get_key("k1")
    assert len(scripted.requests) == 1


def test_a_5xx_is_retried_for_put_and_delete_and_a_429_for_any_method(scripted, retrying):
    scripted.reply(503, b"")
    scripted.reply(204)
    retrying.set_instance_policy_key_create_import_access(enforce_token=True)   # a PUT
    scripted.reply(500, b"")
    scripted.reply(204)
    retrying.delete_key("k1")
    assert [r["method"] for r in scripted.requests] == ["PUT", "PUT", "DELETE", "DELETE"]
    scripted.reply(429, b"")                  # POST /actions/disable, no Retry-After
    scripted.reply(204)
    retrying.disable_key("k1")
    assert len(scripted.requests) == 6
    assert retrying.waits == [0, 0, 0]        # urllib3's backoff: the first retry at once


def test_a_503_with_retry_after_is_still_not_retried_for_a_post(scripted, retrying):
    # urllib3's own rule would retry it (503 is in its Retry-After list).
    scripted.reply(503, b"", {"Retry-After": "1"})
    with pytest.raises(KeyProtectError):
        retrying.create_key("n")
    assert len(scripted.requests) == 1


def test_a_session_of_the_callers_gets_retries_for_the_service_only(scripted, monkeypatch):
    monkeypatch.setattr(transport, "pause", lambda seconds: None)
    session = requests.Session()
    with KeyProtectClient(scripted.url, "i", "t", session=session, retries=1) as client:
        scripted.reply(429, b"")
        scripted.reply(200, KEY)
        assert client.get_key("k1")["id"] == "k1"
    assert len(scripted.requests) == 2
    scripted.reply(429, b"")                  # elsewhere on the same session: not retried
    assert session.get(scripted.url + "/elsewhere").status_code == 429
    assert len(scripted.requests) == 3


def test_new_session_has_the_retry_policy_and_refuses_bad_counts():
    with new_session(retries=3, max_retry_wait=7) as session:
        policy = session.get_adapter("https://kp.example").max_retries
    assert isinstance(policy, transport.KeyProtectRetry)
    assert (policy.total, policy.backoff_max, policy.retry_after_max) == (3, 7, 7)
    for bad in (-1, True, 2.0):
        with pytest.raises(ValueError):
            new_session(retries=bad)


def test_a_network_failure_is_not_retried_and_stays_a_requests_exception(monkeypatch):
    import socket
    with socket.socket() as probe:            # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with KeyProtectClient(f"http://127.0.0.1:{port}", "i", "t", retries=3) as client:
        with pytest.raises(requests.ConnectionError):
            client.get_key("k1")


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


# --- what an answer may cost, and what it may repeat -------------------------------------------

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


@pytest.mark.parametrize("body", [
    {"errorCode": SECRET, "errorMessage": "no such key"},                  # the key as the code
    {"errorCode": "BXNIM0415E", "errorMessage": "x" * 490 + SECRET},       # across the cut
    {"errorCode": "BXNIM0415E", "errorMessage": "no", "context": {"apikey": SECRET}},
])
def test_an_iam_error_that_repeats_the_api_key_keeps_none_of_its_text(scripted, body):
    scripted.reply(400, body)
    with pytest.raises(KeyProtectError) as info:
        iam_token(SECRET, url=scripted.url + "/identity/token")
    shown = str(info.value) + repr(info.value) + repr(vars(info.value))
    assert SECRET not in shown and SECRET[:8] not in shown
    assert info.value.code in ("BXNIM0415E", "HTTP_400")


def dripping_server(head: bytes, body: bytes, every: float):
    """A server that sends `head` at once, then `body` a byte every `every` seconds."""
    import socket
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(head)
            for byte in body:
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(every)

    threading.Thread(target=serve, daemon=True).start()
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_body_dripped_a_byte_at_a_time_ends_the_call_at_its_timeout():
    body = json.dumps({"resources": [{"id": "k" * 200}]}).encode()
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n")
    listener, url = dripping_server(head, body, every=0.05)   # ~11 s in all
    try:
        with KeyProtectClient(url, "inst-1", "abc.def", timeout=1) as client:
            started = time.monotonic()
            # Timeout past the deadline; under a heavy load one gap between two bytes may
            # itself pass 1 s, which requests answers ConnectionError
            with pytest.raises((requests.Timeout, requests.ConnectionError)):
                client.get_key("k")
            assert time.monotonic() - started < 8   # the whole body takes ~11 s
    finally:
        listener.close()


@pytest.mark.parametrize("call", ["service", "iam"])
def test_headers_dripped_a_byte_at_a_time_end_the_call_at_its_timeout(call):
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 20) for i in range(8))
            + b"Content-Length: 2\r\n\r\n{}")
    listener, url = dripping_server(b"", head, every=0.05)   # ~13 s in all
    try:
        started = time.monotonic()
        with pytest.raises(requests.Timeout):
            if call == "service":
                with KeyProtectClient(url, "inst-1", "abc.def", timeout=1) as client:
                    client.get_key("k")
            else:
                iam_token(SECRET, url=url + "/identity/token", timeout=1)
        assert time.monotonic() - started < 8
    finally:
        listener.close()


def test_headers_that_come_within_the_timeout_are_read_and_the_connection_kept():
    body = b'{"resources": [{"id": "k1"}]}'
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n")
    listener, url = dripping_server(b"", head + body, every=0.002)   # ~0.2 s
    try:
        with KeyProtectClient(url, "inst-1", "abc.def", timeout=5) as client:
            assert client.get_key("k")["id"] == "k1"
            (pool,) = client.session.get_adapter(url).poolmanager.pools._container.values()
            (kept,) = [c for c in pool.pool.queue if c is not None]
            assert kept.sock.gettimeout() == 5   # the head's shorter waits are undone
    finally:
        listener.close()


def test_a_streamed_answer_still_offers_its_socket_for_select():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
    listener, url = dripping_server(head, b"{}", every=0)
    try:
        with new_session() as session:
            raw = session.get(url, stream=True, timeout=5).raw
            assert raw.fileno() >= 0   # io.RawIOBase's own would raise UnsupportedOperation
            assert raw.read() == b"{}"
    finally:
        listener.close()


def test_the_bound_on_the_head_holds_through_an_http_proxy_too():
    adapter = transport.KeyProtectAdapter()
    manager = adapter.proxy_manager_for("http://proxy.invalid:3128")
    assert manager.connection_from_url("https://kp.invalid").ConnectionCls \
        is transport._TLSConnection


def test_a_chunked_answer_is_read_whole():
    body = json.dumps({"resources": [{"id": "k1"}, {"id": "k2"}]}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:]))
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    listener, url = dripping_server(head + chunked + b"0\r\n\r\n", b"", every=0)
    try:
        with KeyProtectClient(url, "inst-1", "abc.def") as client:
            assert [k["id"] for k in client.list_keys()] == ["k1", "k2"]
    finally:
        listener.close()


def test_an_answer_past_the_size_bound_is_refused_decompressed_too(scripted, monkeypatch):
    import gzip
    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 10_000)
    with KeyProtectClient(scripted.url, "inst-1", "abc.def") as client:
        scripted.reply(200, b"[" + b" " * 20_000 + b"]", {"Content-Type": "application/json"})
        with pytest.raises(requests.exceptions.ContentDecodingError):
            client.list_keys()
        bomb = gzip.compress(b" " * 100_000)   # ~130 bytes on the wire
        scripted.reply(200, bomb, {"Content-Type": "application/json",
                                   "Content-Encoding": "gzip"})
        with pytest.raises(requests.exceptions.ContentDecodingError):
            client.list_keys()
        scripted.reply(200, {"resources": []})
        assert client.list_keys() == []   # and the client goes on


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


@pytest.mark.parametrize("wait", [float("inf"), -1, float("nan"), True])
def test_a_retry_wait_that_is_no_number_of_seconds_is_refused(wait):
    with pytest.raises(ValueError, match="max_retry_wait"):
        KeyProtectClient("https://kp.invalid", "inst-1", "abc.def", retries=1,
                         max_retry_wait=wait)


def test_the_client_keeps_no_cookie(client, scripted):
    scripted.reply(200, {"resources": []}, {"Set-Cookie": "session=abc; Domain=127.0.0.1"})
    scripted.reply(200, {"resources": []})
    client.list_keys()
    client.list_keys()
    assert "cookie" not in scripted.last["headers"]


def test_a_body_read_by_its_length_leaves_the_connection_to_the_next_request(monkeypatch):
    """Against the mock (keep-alive; the scripted server closes every connection)."""
    import urllib3.connection

    from byoklib.mock import running_server
    from byoklib.mock.keypairs import test_only_key_pairs
    made = []
    real = urllib3.connection.connection.create_connection
    monkeypatch.setattr(urllib3.connection.connection, "create_connection",
                        lambda *a, **k: made.append(1) or real(*a, **k))
    with running_server(key_pair_source=test_only_key_pairs()) as server, \
            KeyProtectClient(server.url, "inst-1", "abc.def") as client:
        key = client.create_root_key("kept")
        for _ in range(5):
            assert client.get_key(key["id"])["id"] == key["id"]
            with pytest.raises(KeyProtectError):
                client.get_key("gone")
    assert len(made) == 1


def test_an_escaped_echo_of_the_token_is_withheld_too(scripted):
    escaped = BEARER.replace(".", "\\u002e")
    scripted.reply(401, json.dumps({"errorCode": "BXNIM0415E",
                                    "errorMessage": f"bad token {escaped}"}).replace(
                                        "\\\\u002e", "\\u002e").encode(),
                   {"Content-Type": "application/json"})
    with KeyProtectClient(scripted.url, "inst-1", BEARER) as client:
        with pytest.raises(KeyProtectError) as info:
            client.get_key("k")
    assert BEARER not in str(info.value) + repr(vars(info.value))


@pytest.mark.parametrize("url,in_clear", [
    ("http://127.0.0.1:8080", False), ("http://[::1]:8080", False), ("http://localhost", False),
    ("http://127.5.5.5", False), ("https://us-south.kms.cloud.ibm.com", False),
    ("http://us-south.kms.cloud.ibm.com", True), ("http://10.0.0.7:8080", True),
    ("HTTP://mock:8080", True), ("http://0.0.0.0:8080", False),
    ("http://[::ffff:127.0.0.1]:1", False),
    ("http://kp.invalid\\@127.0.0.1:8080", True)])   # urllib3 connects to kp.invalid
def test_what_travels_in_clear_over_the_network(url, in_clear, monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert transport.in_clear_over_the_network(url) is in_clear


def test_a_proxy_elsewhere_makes_a_local_url_travel_in_clear(monkeypatch):
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://192.0.2.1:3128")
    assert transport.in_clear_over_the_network("http://127.0.0.1:8080")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert not transport.in_clear_over_the_network("http://127.0.0.1:8080")


def test_plain_http_elsewhere_warns_for_the_service_and_is_refused_for_iam():
    with pytest.warns(UserWarning, match="plain http to another machine"):
        KeyProtectClient("http://us-south.kms.cloud.ibm.com", "inst-1", "abc.def").close()
    with pytest.raises(ValueError, match="the API key would cross the network in clear"):
        iam_token(SECRET, url="http://iam.cloud.ibm.com/identity/token")


def test_a_connect_and_read_timeout_pair_is_taken_as_requests_takes_it(scripted):
    scripted.reply(200, {"resources": [{"id": "k1"}]})
    with KeyProtectClient(scripted.url, "inst-1", "abc.def", timeout=(5, 10)) as client:
        assert client.get_key("k1")["id"] == "k1"
