"""The client's transport (byoklib.client.transport) against a scripted or a dripping
server on 127.0.0.1: proxies, the CA bundle and ~/.netrc from the environment, retries
through urllib3, what an answer may cost in time and size, cookies, plain http elsewhere."""
import json
import threading
import time

import pytest
import requests
import scripted_server
from scripted_server import KEY, SECRET, kp_error

from byoklib import KeyProtectError
from byoklib.client import KeyProtectClient, iam_token, new_session
from byoklib.client import transport

scripted, client = scripted_server.scripted, scripted_server.client   # fixtures


# --- what the environment brings ------------------------------------------------------

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

# --- retries (opt-in) -----------------------------------------------------------------

@pytest.fixture
def retrying(scripted, monkeypatch):
    waits = []
    monkeypatch.setattr(transport, "pause", waits.append)   # record the waits, not sleep
    with KeyProtectClient(scripted.url, "inst-1", "abc.def", retries=2,
                          max_retry_wait=5) as c:
        c.waits = waits
        yield c


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

# --- what an answer may cost ----------------------------------------------------------

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

# --- plain http elsewhere -------------------------------------------------------------

@pytest.mark.parametrize("url,says", [
    ("http://user:pw-secret@127.0.0.1:8080", "holds credentials"),
    ("http://user:pw-secret@host:99999", "is not a URL"),
    ("https://kp.example/?token=pw-secret", "query or a fragment"),
    ("https://kp.example/#pw-secret", "query or a fragment"),
    ("ftp://kp.example", "must be https://HOST"), ("https://", "must be https://HOST")])
def test_a_url_requests_should_not_go_to_is_refused_without_its_secret(url, says):
    for make in (lambda: KeyProtectClient(url, "inst-1", "abc.def"),
                 lambda: iam_token(SECRET, url=url)):
        with pytest.raises(ValueError, match=says) as info:
            make()
        assert "pw-secret" not in str(info.value)


def test_a_url_is_shown_without_credentials_query_or_fragment():
    assert transport.shown_url("http://u:p@h:1/a@b?q=1#f") == "http://h:1/a@b"
    assert transport.shown_url("u:p@h:1") == "h:1"


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

def test_a_connect_and_read_timeout_pair_is_taken_as_requests_takes_it(scripted):
    scripted.reply(200, {"resources": [{"id": "k1"}]})
    with KeyProtectClient(scripted.url, "inst-1", "abc.def", timeout=(5, 10)) as client:
        assert client.get_key("k1")["id"] == "k1"
