"""The keep-alive WSGI server under the mock (cheroot, read strictly), checked at the
socket level."""
import json
import logging
import socket
import struct
import time
from email.utils import parsedate_to_datetime

import pytest

from byoklib.mock.http.framing import MAX_CHUNK_LINE, MAX_HEADER_BLOCK
from byoklib.mock.http.exchange import MAX_BODY_BYTES

HEADERS = "Authorization: Bearer t\r\nbluemix-instance: i\r\nHost: x\r\n"


def exchange(sock: socket.socket, request: str | bytes) -> tuple[int, dict, bytes]:
    """Send one request; read exactly one response (status, headers, body)."""
    sock.sendall(request.encode() if isinstance(request, str) else request)
    reader = sock.makefile("rb")
    status = int(reader.readline().split()[1])
    headers = {}
    while (line := reader.readline().decode().strip()):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", 0)))
    return status, headers, body


@pytest.fixture
def conn(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        yield sock


def test_one_connection_serves_many_requests(conn):
    body = b'{"maxAllowedRetrievals": 1}'
    status, headers, _ = exchange(conn, f"POST /api/v2/import_token HTTP/1.1\r\n{HEADERS}"
                                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert status == 200 and headers.get("connection") != "close"
    # The same socket: a token with one retrieval, so the second GET is refused.
    for expected in (200, 409):
        status, headers, answer = exchange(conn, f"GET /api/v2/import_token HTTP/1.1\r\n{HEADERS}\r\n")
        assert status == expected and headers.get("connection") != "close"
        json.loads(answer)


def test_chunked_request_body_is_read(conn):
    body = b'{"expiration": 300}'
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    status, _, answer = exchange(conn, f"POST /api/v2/import_token HTTP/1.1\r\n{HEADERS}"
                                 "Transfer-Encoding: chunked\r\n\r\n".encode() + chunked)
    assert status == 200 and json.loads(answer)["maxAllowedRetrievals"] == 1


def test_oversized_declared_body_is_refused_unread_and_the_connection_closed(conn):
    status, headers, answer = exchange(
        conn, f"POST /api/v2/keys HTTP/1.1\r\n{HEADERS}Content-Length: {10 * 1024 * 1024}\r\n\r\n")
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(answer)["resources"][0]["reasons"][0]["code"] == "BODY_TOO_LARGE_ERR"


def test_every_answer_carries_the_current_date_in_gmt(conn):
    for _ in range(2):   # the second answer takes the Date formatted for the first
        _, headers, _ = exchange(conn, f"GET /api/v2/keys HTTP/1.1\r\n{HEADERS}\r\n")
        assert headers["date"].endswith(" GMT")
        assert abs(parsedate_to_datetime(headers["date"]).timestamp() - time.time()) < 5


def test_client_asking_to_close_gets_close(conn):
    status, headers, _ = exchange(conn, f"GET /api/v2/keys HTTP/1.1\r\n{HEADERS}Connection: close\r\n\r\n")
    assert status == 200 and headers["connection"] == "close"


def test_head_answers_headers_only(conn):
    status, headers, body = exchange(conn, f"HEAD /api/v2/keys HTTP/1.1\r\n{HEADERS}\r\n")
    assert status == 200 and headers["key-total"] == "0"
    conn.settimeout(0.2)
    with pytest.raises(socket.timeout):   # no body follows a HEAD answer
        conn.recv(1)


# --- the request line and header block (read by byoklib.mock.http.strict) ----------------

def status_of(sock: socket.socket, request: bytes) -> int:
    return exchange(sock, request)[0]


@pytest.mark.parametrize("request_line, expected", [
    (b"GET /api/v2/keys\r\n", 400),                 # HTTP/0.9 style: not served
    (b"GET /api/v2/keys HTTP/1.1 extra\r\n", 400),
    (b"GET /api/v2/keys HTTX/1.1\r\n", 400),
    (b"GET /api/v2/keys HTTP/1\r\n", 400),
    (b"GET /api/v2/keys HTTP/1.x\r\n", 400),
    (b"GET /api/v2/keys HTTP/1.\xb2\r\n", 400),     # a superscript two is a digit to isdigit()
    (b"GET /api/v2/keys HTTP/2.0\r\n", 505),
])
def test_a_bad_request_line_is_refused(conn, request_line, expected):
    assert status_of(conn, request_line + HEADERS.encode() + b"\r\n") == expected


@pytest.mark.parametrize("bad_header", [
    b"No-Colon-Here\r\n",
    b": no name\r\n",
    b"Spaced Name : x\r\n",
    b" folded: continuation\r\n",            # obsolete line folding (RFC 9112 5.2)
])
def test_a_malformed_header_line_is_refused(conn, bad_header):
    request = b"GET /api/v2/keys HTTP/1.1\r\n" + HEADERS.encode() + bad_header + b"\r\n"
    assert status_of(conn, request) == 400


def test_too_many_or_too_long_header_lines_are_refused(server):
    many = "".join(f"X-Filler-{i}: {i}\r\n" for i in range(101))
    long = "X-Long: " + "a" * 70000 + "\r\n"
    for extra in (many, long):
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            request = f"GET /api/v2/keys HTTP/1.1\r\n{HEADERS}{extra}\r\n".encode()
            assert status_of(sock, request) == 431


def test_a_header_block_of_max_size_is_read_and_one_byte_more_is_431(server):
    for size, expected in ((MAX_HEADER_BLOCK, 200), (MAX_HEADER_BLOCK + 1, 431)):
        # the block: HEADERS, one long line and the empty line that ends it
        filler = size - len(HEADERS) - len("X-Long: \r\n") - len("\r\n")
        line = "X-Long: " + "a" * filler + "\r\n"
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            request = f"GET /api/v2/keys HTTP/1.1\r\n{HEADERS}{line}\r\n".encode()
            assert status_of(sock, request) == expected, size


def test_100_header_lines_are_read_and_101_are_431(server):
    for count, expected in ((100, 200), (101, 431)):
        fillers = "".join(f"X-Filler-{i}: {i}\r\n" for i in range(count - 3))   # HEADERS has 3
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            request = f"GET /api/v2/keys HTTP/1.1\r\n{HEADERS}{fillers}\r\n".encode()
            assert status_of(sock, request) == expected, count


def test_header_names_are_case_insensitive_and_values_trimmed(conn):
    request = (b"GET /api/v2/keys HTTP/1.1\r\nAUTHORIZATION:   Bearer t  \r\n"
               b"Bluemix-Instance:\ti\r\nHost: x\r\n\r\n")
    status, headers, body = exchange(conn, request)
    assert status == 200 and json.loads(body)["metadata"]["collectionTotal"] == 0


def test_http_1_0_is_answered_and_closed(conn):
    status, headers, _ = exchange(conn, f"GET /api/v2/keys HTTP/1.0\r\n{HEADERS}\r\n")
    assert status == 200 and headers["connection"] == "close"


def test_expect_100_continue_gets_an_interim_answer(conn):
    body = b'{"expiration": 300}'
    conn.sendall(f"POST /api/v2/import_token HTTP/1.1\r\n{HEADERS}Expect: 100-continue\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode())
    reader = conn.makefile("rb")
    assert reader.readline().split()[1] == b"100"
    while reader.readline().strip():
        pass
    status, _, answer = exchange(conn, body)
    assert status == 200 and json.loads(answer)["maxAllowedRetrievals"] == 1


def test_a_path_starting_with_two_slashes_is_not_read_as_a_host(conn):
    status, _, body = exchange(conn, f"GET //api/v2/keys HTTP/1.1\r\n{HEADERS}\r\n")
    assert status == 200


def test_conflicting_content_lengths_are_refused(conn):
    body = b'{"expiration": 300}'
    request = (f"POST /api/v2/import_token HTTP/1.1\r\n{HEADERS}Content-Length: {len(body)}\r\n"
               f"Content-Length: {len(body) + 1}\r\n\r\n").encode() + body
    status, headers, _ = exchange(conn, request)
    assert status == 400 and headers["connection"] == "close"


# --- what this layer refuses itself: a Key Protect error body, the connection closed -------

ERROR_TYPE = "application/vnd.ibm.kms.error+json"


def assert_http_layer_error(sock, request: bytes, expected: int) -> dict:
    status, headers, body = exchange(sock, request)
    assert status == expected and headers["connection"] == "close"
    assert headers["content-type"] == ERROR_TYPE
    reason = json.loads(body)["resources"][0]["reasons"][0]
    assert reason["code"] == "INVALID_HTTP_REQUEST_ERR" and reason["status"] == expected
    return reason


def test_an_unreadable_request_gets_a_key_protect_error_that_echoes_nothing(conn):
    reason = assert_http_layer_error(
        conn, b"\x1b[31mEVIL\x1b[0m /api/v2/keys HTTP/1.1 x\r\n" + HEADERS.encode() + b"\r\n", 400)
    assert "EVIL" not in reason["message"]


def test_an_unknown_method_is_501_as_json(conn):
    assert_http_layer_error(conn, f"TRACE /api/v2/keys HTTP/1.1\r\n{HEADERS}\r\n".encode(), 501)


def test_a_request_line_over_64_kib_is_answered_414(conn):
    assert_http_layer_error(conn, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414)


# --- broken framing is never carried out (each would otherwise create an import token) ----

def token_exists(server) -> bool:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        return status_of(sock, f"GET /api/v2/import_token HTTP/1.1\r\n{HEADERS}\r\n".encode()) != 404


def send_and_half_close(server, request: bytes) -> bytes:
    """Send, end our side, and read whatever comes back until the server closes."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


TOKEN_POST = f"POST /api/v2/import_token HTTP/1.1\r\n{HEADERS}".encode()


@pytest.mark.parametrize("request_bytes", [
    TOKEN_POST + b"Content-Length: 500\r\n\r\n" + b'{"expiration": 300}',   # body cut short
    TOKEN_POST,                                                         # headers never end
], ids=["short-body", "unfinished-headers"])
def test_a_request_cut_short_by_the_end_of_the_connection_is_not_carried_out(server,
                                                                              request_bytes):
    answer = send_and_half_close(server, request_bytes)
    assert not answer.startswith(b"HTTP/1.1 200")
    assert not token_exists(server)


def test_a_chunk_size_line_cut_short_is_answered_400(server, caplog):
    caplog.set_level(logging.DEBUG, logger="byoklib.mock.http")
    answer = send_and_half_close(server, TOKEN_POST + b"Transfer-Encoding: chunked\r\n\r\n14")
    assert answer.startswith(b"HTTP/1.1 400")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not token_exists(server)


@pytest.mark.parametrize("framing, body, expected", [
    (b"Transfer-Encoding: gzip, chunked\r\n", b"14\r\n" + b"x" * 20 + b"\r\n0\r\n\r\n", 501),
    (b"Transfer-Encoding: chunked\r\n", b"-1\r\n" + b"x" * 100, 400),     # no negative sizes
    (b"Transfer-Encoding: chunked\r\n", b"+5\r\nabcde\r\n0\r\n\r\n", 400),
    (b"Transfer-Encoding: chunked\r\n", b"5\r\nabcdeXX0\r\n\r\n", 400),   # no CRLF after data
    (b"Content-Length: +2\r\n", b"{}", 400),
    (b"Content-Length:\r\n", b"{}", 400),                                # empty, not "none"
    (b"Content-Length: 2_0\r\n", b"{}" + b" " * 18, 400),
    (b"Content-Length: " + b"9" * 19 + b"\r\n", b"{}", 400),      # beyond a 64-bit length
    (b"Transfer-Encoding: chunked\r\n", b"2\r\n{}\r\n0\r\nNo-Colon\r\n\r\n", 400),  # bad trailer
], ids=["gzip-chunked", "negative-chunk", "signed-chunk", "chunk-without-crlf",
        "signed-length", "empty-length", "underscored-length", "19-digit-length",
        "malformed-trailer"])
def test_framing_that_is_not_plain_http_1_1_is_refused(conn, server, framing, body, expected):
    assert_http_layer_error(conn, TOKEN_POST + framing + b"\r\n" + body, expected)
    assert not token_exists(server)


def test_the_access_log_escapes_control_characters(conn, caplog):
    caplog.set_level(logging.INFO, logger="byoklib.mock.http")
    # percent-encoded: raw control characters in a request line are refused before the log
    status_of(conn, f"GET /api/v2/keys/%1b[2J%1b[31mFAKE%7f~\\x0a HTTP/1.1\r\n{HEADERS}\r\n"
              .encode())
    deadline = time.monotonic() + 5   # the answer leaves before its log line is written
    while not (lines := [r.getMessage() for r in caplog.records if "FAKE" in r.getMessage()]):
        assert time.monotonic() < deadline, "no log line for the request"
        time.sleep(0.01)
    assert all("\x1b" not in line and "\\x1b[2J" in line for line in lines)
    # DEL (0x7f) is a control character too; "~" (0x7e) just below it is printable
    assert all("\x7f" not in line and "FAKE\\x7f~" in line for line in lines)
    # a backslash is doubled: the path's own "\x0a" cannot pass for an escaped newline
    assert all(line.endswith("FAKE\\x7f~\\\\x0a 404") for line in lines), lines


def test_a_client_resetting_mid_body_leaves_one_log_line_not_a_traceback(server, caplog, capfd):
    caplog.set_level(logging.DEBUG, logger="byoklib.mock.http")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(TOKEN_POST + b"Content-Length: 100\r\n\r\n" + b"{")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    deadline = time.monotonic() + 5
    while not any("ended" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the server never noticed the reset"
        time.sleep(0.01)
    assert "Traceback" not in capfd.readouterr().err
    assert not token_exists(server)


def test_chunk_extensions_and_trailers_of_any_sane_length_are_read(conn):
    body = b'{"expiration": 300}'
    chunked = (f"{len(body):x};name={'v' * 200}\r\n".encode() + body + b"\r\n0\r\n"
               + b"X-Trailer: " + b"t" * 2000 + b"\r\n\r\n")
    status, headers, answer = exchange(conn, TOKEN_POST + b"Transfer-Encoding: chunked\r\n\r\n"
                                       + chunked)
    assert status == 200 and json.loads(answer)["maxAllowedRetrievals"] == 1
    assert headers.get("connection") != "close"   # and the next request on it is answered
    assert status_of(conn, f"GET /api/v2/import_token HTTP/1.1\r\n{HEADERS}\r\n".encode()) == 200


def test_a_chunked_body_of_max_body_is_read_and_one_byte_more_is_413_unread(server):
    body = b'{"expiration": 300}'
    body += b" " * (MAX_BODY_BYTES - len(body))
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        status, headers, _ = exchange(sock, TOKEN_POST + b"Transfer-Encoding: chunked\r\n\r\n"
                                      + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        assert status == 200 and headers.get("connection") != "close"
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        # one more byte is announced but not sent: the answer must not wait for it
        status, headers, _ = exchange(sock, TOKEN_POST + b"Transfer-Encoding: chunked\r\n\r\n"
                                      + f"{len(body):x}\r\n".encode() + body + b"\r\n1\r\n")
        assert status == 413 and headers["connection"] == "close"


def test_a_chunk_size_line_is_bounded(server):
    body = b'{"expiration": 300}'
    for line_length, expected in ((MAX_CHUNK_LINE, 200), (MAX_CHUNK_LINE + 1, 400)):  # CRLF in
        size_line = f"{len(body):x};x=".encode()
        size_line += b"v" * (line_length - len(size_line) - 2) + b"\r\n"
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            status, _, _ = exchange(sock, TOKEN_POST + b"Transfer-Encoding: chunked\r\n\r\n"
                                    + size_line + body + b"\r\n0\r\n\r\n")
            assert status == expected, line_length


def test_a_204_carries_no_content_length_and_keeps_the_connection(conn):
    """RFC 9110 section 8.6: a server must not send Content-Length in a 204."""
    ring = f"/api/v2/key_rings/no-content HTTP/1.1\r\n{HEADERS}"
    assert status_of(conn, f"POST {ring}\r\n".encode()) == 201
    status, headers, body = exchange(conn, f"DELETE {ring}\r\n")
    assert (status, body) == (204, b"") and "content-length" not in headers
    assert headers.get("connection") != "close"
    assert status_of(conn, f"GET /api/v2/key_rings HTTP/1.1\r\n{HEADERS}\r\n".encode()) == 200


def test_a_declared_body_of_exactly_max_body_is_read_and_the_connection_kept(conn):
    body = b'{"expiration": 300}'
    body += b" " * (MAX_BODY_BYTES - len(body))
    status, headers, _ = exchange(conn, TOKEN_POST + f"Content-Length: {len(body)}\r\n\r\n"
                                  .encode() + body)
    assert status == 200 and headers.get("connection") != "close"


def test_after_a_505_the_connection_carries_out_nothing(server, conn, caplog):
    caplog.set_level(logging.DEBUG, logger="byoklib.mock.http")
    assert status_of(conn, f"GET /api/v2/keys HTTP/1.1\r\n{HEADERS}\r\n".encode()) == 200
    status, headers, _ = exchange(conn, f"POST /api/v2/import_token HTTP/2.0\r\n{HEADERS}"
                                  "Content-Length: 2\r\n\r\n{}".encode())
    assert status == 505 and headers["connection"] == "close"
    conn.settimeout(2)
    assert conn.recv(65536) == b""   # closed, and no second answer
    assert not token_exists(server)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]   # an orderly refusal


def test_chunked_with_a_content_length_too_is_read_as_chunked_then_closed(conn):
    body = b'{"expiration": 300}'
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    status, headers, _ = exchange(conn, TOKEN_POST + b"Transfer-Encoding: chunked\r\n"
                                  b"Content-Length: 5\r\n\r\n" + chunked)
    assert status == 200 and headers["connection"] == "close"   # RFC 9112 6.3


def test_pipelined_requests_are_answered_in_order(conn):
    get = f"GET /api/v2/import_token HTTP/1.1\r\n{HEADERS}\r\n".encode()
    post = TOKEN_POST + b'Content-Length: 2\r\n\r\n{}'
    conn.sendall(get + post + get)   # one write: the later requests wait in the buffer
    reader = conn.makefile("rb")
    assert [read_one(reader)[0] for _ in range(3)] == [404, 200, 200]


def read_one(reader) -> tuple[int, dict]:
    status = int(reader.readline().split()[1])
    headers = {}
    while (line := reader.readline().decode().strip()):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    reader.read(int(headers.get("content-length", 0)))
    return status, headers


def test_an_http_1_1_request_without_host_is_400_and_1_0_needs_none(server):
    no_host = "Authorization: Bearer t\r\nbluemix-instance: i\r\n"
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        assert_http_layer_error(sock, f"GET /api/v2/keys HTTP/1.1\r\n{no_host}\r\n".encode(),
                                400)
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        assert status_of(sock, f"GET /api/v2/keys HTTP/1.0\r\n{no_host}\r\n".encode()) == 200
