"""The keep-alive WSGI server under the mock, checked at the socket level."""
import json
import socket

import pytest

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


def test_client_asking_to_close_gets_close(conn):
    status, headers, _ = exchange(conn, f"GET /api/v2/keys HTTP/1.1\r\n{HEADERS}Connection: close\r\n\r\n")
    assert status == 200 and headers["connection"] == "close"


def test_head_answers_headers_only(conn):
    status, headers, body = exchange(conn, f"HEAD /api/v2/keys HTTP/1.1\r\n{HEADERS}\r\n")
    assert status == 200 and headers["key-total"] == "0"
    conn.settimeout(0.2)
    with pytest.raises(socket.timeout):   # no body follows a HEAD answer
        conn.recv(1)
