"""Hostile requests over raw sockets: what the HTTP layer refuses, and valid but unusual
requests it must still serve. Loopback only, short timeouts."""
import json
import logging
import socket
import threading
import time

import pytest

from byoklib.mock import running_server

HEADERS = "Authorization: Bearer t\r\nbluemix-instance: i\r\nHost: x\r\n"
ERROR_TYPE = "application/vnd.ibm.kms.error+json"


@pytest.fixture(autouse=True)
def no_internal_errors(caplog):
    """Every refusal here is an orderly one: nothing reaches the HTTP layer's catch-all."""
    caplog.set_level(logging.DEBUG, logger="byoklib.mock.http")
    yield
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def exchange(sock: socket.socket, request: str | bytes) -> tuple[int, dict, bytes]:
    """Send one request; read exactly one response (status, headers, body)."""
    sock.sendall(request.encode("latin-1") if isinstance(request, str) else request)
    return read_response(sock.makefile("rb"))


def read_response(reader) -> tuple[int, dict, bytes]:
    status = int(reader.readline().split()[1])
    headers = {}
    while (line := reader.readline().decode("latin-1").strip()):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, reader.read(int(headers.get("content-length", 0)))


def connect(server, timeout: float = 5) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=timeout)


def answer(server, request: bytes) -> tuple[int, dict, bytes]:
    with connect(server) as sock:
        return exchange(sock, request)


def refused_by_the_http_layer(server, request: bytes, *statuses: int) -> None:
    status, headers, body = answer(server, request)
    assert status in statuses and headers["connection"] == "close"
    assert headers["content-type"] == ERROR_TYPE
    assert json.loads(body)["resources"][0]["reasons"][0]["code"] == "INVALID_HTTP_REQUEST_ERR"


def keys_of(server, instance: str = "i") -> int:
    request = f"GET /api/v2/keys HTTP/1.1\r\nAuthorization: Bearer t\r\nbluemix-instance: " \
              f"{instance}\r\nHost: x\r\n\r\n"
    status, _, body = answer(server, request.encode())
    assert status == 200
    return json.loads(body)["metadata"]["collectionTotal"]


def create_key_request(instance_line: bytes) -> bytes:
    body = json.dumps({"metadata": {"collectionType": "application/vnd.ibm.kms.key+json",
                                    "collectionTotal": 1},
                       "resources": [{"type": "application/vnd.ibm.kms.key+json",
                                      "name": "k", "extractable": False}]}).encode()
    return (b"POST /api/v2/keys HTTP/1.1\r\nAuthorization: Bearer t\r\nHost: x\r\n"
            + instance_line + b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


# --- item 2: control characters in header values ---------------------------------------

@pytest.mark.parametrize("value", [b"i\rj", b"i\x00j", b"i\x01j", b"i\x0bj", b"i\x1bj",
                                   b"i\x7fj"],
                         ids=["CR", "NUL", "SOH", "VT", "ESC", "DEL"])
def test_a_control_character_in_a_header_value_is_400_and_creates_nothing(server, value):
    refused_by_the_http_layer(server, create_key_request(b"bluemix-instance: " + value
                                                         + b"\r\n"), 400)
    assert server.service.instance_ids() == []   # no instance, so no key, no CRN


def test_a_tab_and_obs_text_in_a_header_value_are_still_read(server):
    status, _, _ = answer(server, b"GET /api/v2/keys HTTP/1.1\r\n" + HEADERS.encode()
                          + b"X-Note: a\tb \xe9\r\n\r\n")
    assert status == 200


# --- item 3: header names do not alias, single-valued fields are single ----------------

def test_an_underscored_name_is_not_its_hyphenated_twin_it_is_refused(server):
    refused_by_the_http_layer(server, create_key_request(b"bluemix_instance: under\r\n"), 400)
    refused_by_the_http_layer(server, create_key_request(
        b"bluemix-instance: i\r\nbluemix_instance: under\r\n"), 400)
    assert server.service.instance_ids() == []


@pytest.mark.parametrize("field", ["bluemix-instance: dupB", "Authorization: Bearer u",
                                   "Content-Length: 0", "Host: y",
                                   "Content-Type: application/json", "X-Kms-Key-Ring: r",
                                   "Prefer: return=minimal"])
def test_a_single_valued_header_sent_twice_is_400(server, field):
    first = {"bluemix-instance": "bluemix-instance: i", "Authorization": "Authorization: Bearer t",
             "Host": "Host: x"}
    name = field.split(":")[0]
    head = "".join(line + "\r\n" for key, line in first.items() if key != name)
    doubled = f"{first.get(name, field)}\r\n{field}\r\n"
    request = f"GET /api/v2/keys HTTP/1.1\r\n{head}{doubled}\r\n".encode()
    refused_by_the_http_layer(server, request, 400)


def test_a_list_valued_header_may_come_twice(server):
    status, _, _ = answer(server, f"GET /api/v2/keys HTTP/1.1\r\n{HEADERS}Accept: a/b\r\n"
                                  "Accept: application/json\r\n\r\n".encode())
    assert status == 200


# --- item 4: Host and Upgrade do not change the route -----------------------------------

@pytest.mark.parametrize("extra", ["Host: a..b", f"Host: {'a' * 64}.example",
                                   "Host: [::1", "Upgrade: websocket\r\nConnection: Upgrade"],
                         ids=["empty-label", "64-char-label", "bad-ipv6", "upgrade"])
def test_an_odd_host_or_an_upgrade_does_not_turn_a_key_into_404(server, api, extra):
    key_id = api.root_key()["id"]
    head = "Authorization: Bearer test-token\r\nbluemix-instance: instance-1\r\n"
    head += "" if extra.startswith("Host") else "Host: x\r\n"
    status, _, body = answer(server, f"GET /api/v2/keys/{key_id} HTTP/1.1\r\n{head}{extra}"
                                     "\r\n\r\n".encode())
    assert status == 200 and json.loads(body)["resources"][0]["id"] == key_id


# --- item 5: framing a proxy could read differently ------------------------------------

TOKEN_POST = f"POST /api/v2/import_token HTTP/1.1\r\n{HEADERS}".encode()
TOKEN_BODY = b'{"expiration": 300}'
CHUNKED = f"{len(TOKEN_BODY):x}\r\n".encode() + TOKEN_BODY + b"\r\n0\r\n\r\n"


def token_exists(server) -> bool:
    status, _, _ = answer(server, f"GET /api/v2/import_token HTTP/1.1\r\n{HEADERS}\r\n".encode())
    return status != 404


@pytest.mark.parametrize("coding", [b"chunked\x0b", b"\x0bchunked", b"chunked\xa0",
                                    b"\xa0chunked", b"chunked\x0c"],
                         ids=["VT-after", "VT-before", "NBSP-after", "NBSP-before", "FF"])
def test_a_padded_transfer_encoding_is_not_chunked(server, coding):
    refused_by_the_http_layer(server, TOKEN_POST + b"Transfer-Encoding: " + coding
                              + b"\r\n\r\n" + CHUNKED, 400, 501)
    assert not token_exists(server)


@pytest.mark.parametrize("line", [b"GET\x0b/api/v2/keys\x0bHTTP/1.1\r\n",
                                  b"GET /api/v2/keys\x0bHTTP/1.1\r\n",
                                  b"GET\x0c/api/v2/keys HTTP/1.1\r\n",
                                  b"GET  /api/v2/keys HTTP/1.1\r\n",
                                  b"GET /api/v2/keys HTTP/1.1 \r\n"],
                         ids=["VT", "VT-before-version", "FF", "two-spaces", "trailing-space"])
def test_a_request_line_split_by_anything_but_one_space_is_400(server, line):
    refused_by_the_http_layer(server, line + HEADERS.encode() + b"\r\n", 400)


@pytest.mark.parametrize("size_line", [b"13 \r\n", b" 13\r\n", b"13\t\r\n", b"13 ;x=y\r\n",
                                       b"0x13\r\n", b"13\n"],
                         ids=["space-after", "space-before", "tab", "space-before-ext",
                              "0x-prefix", "bare-LF"])
def test_a_chunk_size_line_with_stray_bytes_is_400(server, size_line):
    assert len(TOKEN_BODY) == 0x13
    refused_by_the_http_layer(server, TOKEN_POST + b"Transfer-Encoding: chunked\r\n\r\n"
                              + size_line + TOKEN_BODY + b"\r\n0\r\n\r\n", 400)
    assert not token_exists(server)


def test_the_header_block_as_a_whole_is_bounded(server):
    from byoklib.mock.http.framing import MAX_HEADER_BLOCK, MAX_HEADERS

    # fewer lines than MAX_HEADERS, each under 1 KB, more than MAX_HEADER_BLOCK together
    fillers = "".join(f"X-F{i:02}: {'v' * 990}\r\n" for i in range(MAX_HEADERS - 20))
    assert len(fillers) > MAX_HEADER_BLOCK
    refused_by_the_http_layer(server, f"GET /api/v2/keys HTTP/1.1\r\n{HEADERS}{fillers}\r\n"
                              .encode(), 431)


# --- item 6: Connection is a list; absolute-form targets are served ----------------------

@pytest.mark.parametrize("options", ["keep-alive, close", "close, keep-alive", "Keep-Alive,CLOSE",
                                     "upgrade , close"])
def test_close_among_the_connection_options_closes(server, options):
    with connect(server) as sock:
        status, headers, _ = exchange(sock, f"GET /api/v2/keys HTTP/1.1\r\n{HEADERS}"
                                            f"Connection: {options}\r\n\r\n")
        assert status == 200 and headers["connection"] == "close"
        sock.settimeout(2)
        assert sock.recv(1) == b""   # closed by the server


def test_an_absolute_form_target_is_served_like_its_path(server, api):
    key_id = api.root_key()["id"]
    head = "Authorization: Bearer test-token\r\nbluemix-instance: instance-1\r\nHost: x\r\n"
    for target in (f"http://127.0.0.1:{server.port}/api/v2/keys/{key_id}",
                   f"HTTP://127.0.0.1:{server.port}/api/v2/keys/{key_id}?x=1"):
        status, _, body = answer(server, f"GET {target} HTTP/1.1\r\n{head}\r\n".encode())
        assert status == 200 and json.loads(body)["resources"][0]["id"] == key_id
    for bad in (f"http://127.0.0.1:{server.port}/api/v2/keys#frag", "http://[::1/api/v2/keys"):
        refused_by_the_http_layer(server, f"GET {bad} HTTP/1.1\r\n{head}\r\n".encode(), 400)


# --- item 7: bounded connections, bounded time per request ----------------------------

@pytest.fixture
def tight_server(service):
    """Two worker threads, one queued connection, a request must arrive within 1 s."""
    from byoklib.mock.http.strict import Limits

    with running_server(service, limits=Limits(threads=2, queue=1, request_timeout=1.0,
                                               idle_timeout=5.0)) as running:
        yield running


def drip(sock: socket.socket, data: bytes, every: float, stop: threading.Event) -> None:
    """Send one byte every `every` seconds until done, the server closes, or `stop`."""
    for byte in data:
        if stop.wait(every):
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return


def test_a_client_sending_a_byte_at_a_time_is_cut_off_while_others_are_served(tight_server):
    server, stop = tight_server, threading.Event()
    with connect(server) as slow:
        request = f"GET /api/v2/keys HTTP/1.1\r\n{HEADERS}\r\n".encode()
        dripper = threading.Thread(target=drip, args=(slow, request, 0.2, stop))
        started = time.monotonic()
        dripper.start()
        try:
            time.sleep(0.3)
            assert keys_of(server) == 0          # a normal client meanwhile
            status, headers, body = read_response(slow.makefile("rb"))
            assert time.monotonic() - started < 3   # cut off at the 1 s bound, not after
            assert status == 408 and headers["connection"] == "close"
            assert json.loads(body)["resources"][0]["reasons"][0]["status"] == 408
        finally:
            stop.set()
            dripper.join()
        assert keys_of(server) == 0


def test_a_body_trickling_in_is_cut_off_with_408_and_not_carried_out(tight_server):
    server, stop = tight_server, threading.Event()
    with connect(server) as slow:
        slow.sendall(f"POST /api/v2/import_token HTTP/1.1\r\n{HEADERS}Content-Length: 19\r\n"
                     "\r\n".encode())
        dripper = threading.Thread(target=drip, args=(slow, b'{"expiration": 300}', 0.2, stop))
        started = time.monotonic()
        dripper.start()
        try:
            status, headers, _ = read_response(slow.makefile("rb"))
            assert status == 408 and time.monotonic() - started < 3
        finally:
            stop.set()
            dripper.join()
    status, _, _ = answer(server, f"GET /api/v2/import_token HTTP/1.1\r\n{HEADERS}\r\n"
                                  .encode())
    assert status == 404   # no token was created


def test_a_silent_client_gets_408_after_the_bound(tight_server):
    with connect(tight_server) as silent:
        started = time.monotonic()
        status, headers, _ = read_response(silent.makefile("rb"))
        assert status == 408 and 0.8 < time.monotonic() - started < 3


def test_connections_beyond_the_threads_and_queue_get_503_at_once(tight_server):
    server = tight_server
    holders = []
    try:
        for _ in range(3):            # two take the workers, the third waits in the queue
            holders.append(connect(server))
            time.sleep(0.1)
        with connect(server) as extra:
            started = time.monotonic()
            status, headers, body = read_response(extra.makefile("rb"))
            assert status == 503 and time.monotonic() - started < 0.9
            assert headers["content-type"] == ERROR_TYPE and json.loads(body)
    finally:
        for sock in holders:
            sock.close()
    deadline = time.monotonic() + 5   # the held workers are freed: normal service again
    while True:
        try:
            assert keys_of(server) == 0
            break
        except (AssertionError, OSError, IndexError, ValueError):
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_idle_kept_alive_connections_are_capped(service):
    from byoklib.mock.http.strict import Limits

    request = f"GET /api/v2/keys HTTP/1.1\r\n{HEADERS}\r\n"
    with running_server(service, limits=Limits(keep_alive=1)) as server, \
            connect(server) as first, connect(server) as second:
        status, headers, _ = exchange(first, request)
        assert status == 200 and "connection" not in headers   # kept, now idle
        time.sleep(0.2)
        status, headers, _ = exchange(second, request)
        assert status == 200 and headers["connection"] == "close"   # over the cap
        assert exchange(first, request)[0] == 200   # the idle one still serves


def test_a_burst_of_new_connections_is_held_until_accepted_not_reset():
    """listen()'s backlog is Limits.backlog, not cheroot's 5: clients that arrive together
    while every worker is busy wait for the server (and beyond its queue get a 503), where
    a short backlog would drop them before any answer."""
    from byoklib.mock.http.strict import Limits, StrictServer

    server = StrictServer(("127.0.0.1", 0), lambda environ, start_response: [], max_body=1024,
                          error_page=lambda status: ("application/json", b"{}"),
                          limits=Limits())
    server.prepare()   # bound and listening; nothing accepts until serve()
    held = []
    try:
        for _ in range(40):
            held.append(socket.create_connection(("127.0.0.1", server.port), timeout=0.5))
    finally:
        for sock in held:
            sock.close()
        server.stop()
    assert len(held) == 40
