"""A small threaded WSGI server with HTTP/1.1 keep-alive, on the standard library.

Why not Werkzeug's development server: it closes the connection after every response
(it sends `Connection: close` on purpose), so every request of a client pays a new TCP
handshake and a new thread. IBM's clients and `requests` keep connections alive, and the
real service allows it; measured with `make bench`, the reconnects alone cost more than
the 10 % the mock may add to an import on top of its cryptography. This server keeps the
connection, answers each request with one write (headers and body together) on a socket
with TCP_NODELAY, so neither Nagle's algorithm nor delayed ACKs stall it.

Each request costs as little Python as it can (measured with `make bench`, where every
0.1 ms is over 1 % of an import): the header block is split by hand instead of through the
`email` package http.server uses (a third of the server's own time per request), and the
Date header is formatted once a second.

The WSGI application is `byoklib.mock.http.app` (routed with Werkzeug); this module knows nothing
of Key Protect. It reads a request body only up to `max_body` bytes: a larger declared
body is handed to the app unread (the app answers 413) and the connection is closed. A
request whose framing is broken (headers or a body cut short by the end of the connection, a
Content-Length that is not plain digits, a Transfer-Encoding other than chunked, a malformed
chunk) never reaches the app: 400 or 501, with the body the server's `error_page` gives, and
the connection is closed.
"""
from __future__ import annotations

import io
import logging
import re
import socketserver
import sys
import time
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_to_bytes

log = logging.getLogger("byoklib.mock.http")

IDLE_TIMEOUT_SECONDS = 120
MAX_HEADER_LINE = 65536      # the limits of http.client.parse_headers
MAX_HEADERS = 100
CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")   # int(x, 16) alone also takes "-1", "+a", "1_0"
# A request's method and path go to the access log with control characters escaped, as
# http.server does, so a client cannot move the cursor or clear the terminal of a learner
# running `serve`.
_CONTROL = str.maketrans({c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))})


def plain_error_page(status: int) -> tuple[str, bytes]:
    """The body of an error the HTTP layer answers itself, when the app gives none."""
    return "text/plain; charset=utf-8", HTTPStatus(status).phrase.encode()


class RequestHeaders:
    """The request's header fields: `get` is case-insensitive and gives the first value
    of a repeated field (as email.message.Message does); `items` gives them all."""

    def __init__(self, fields: list[tuple[str, str]]):
        self._fields = fields
        self._first: dict[str, str] = {}
        for name, value in fields:
            self._first.setdefault(name.lower(), value)

    def get(self, name: str, default=None):
        return self._first.get(name.lower(), default)

    def __getitem__(self, name: str):
        return self._first.get(name.lower())

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for field, value in self._fields if field.lower() == name]


class HeaderError(ValueError):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


def read_header_fields(rfile) -> list[tuple[str, str]]:
    """The `name: value` lines up to the empty line; HeaderError for a line that is too
    long, too many lines, a line without a name, or an obsolete folded line (RFC 9112
    5.2 lets a server refuse those, and a mock should not guess)."""
    fields = []
    while True:
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if len(line) > MAX_HEADER_LINE:
            raise HeaderError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
        if line in (b"\r\n", b"\n"):
            return fields
        if not line:   # the connection ended inside the header block: not a request
            raise HeaderError(HTTPStatus.BAD_REQUEST, "Incomplete header block")
        if len(fields) >= MAX_HEADERS:
            raise HeaderError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
        text = line.decode("iso-8859-1").rstrip("\r\n")
        name, colon, value = text.partition(":")
        if not colon or not name or name != name.strip() or text[0] in " \t":
            raise HeaderError(HTTPStatus.BAD_REQUEST, "Bad header line")
        fields.append((name, value.strip(" \t")))


_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header value, formatted at most once a second."""
    global _date_cache
    now = int(time.time())
    second, text = _date_cache
    if second != now:
        text = formatdate(now, usegmt=True)
        _date_cache = (now, text)
    return text


class WSGIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_SECONDS       # an idle keep-alive connection frees its thread
    server_version = "byoklib-mock"
    default_request_version = "HTTP/1.0"   # an error before the version is known gets a status line
    sys_version = ""

    def do_request(self) -> None:
        environ, complete = self._environ()
        if environ is None:
            return
        status_headers: list = []

        def start_response(status, headers, exc_info=None):
            status_headers[:] = [status, headers]
            return lambda data: None   # the app returns its body; no write() callers

        result = self.server.app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, headers = status_headers
        self._send(status, headers, body, keep=complete)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_request

    def parse_request(self) -> bool:
        """http.server's parse_request without the `email` package: the request line
        (HTTP/1.x only), then the header fields; answers 400, 431 or 505 itself."""
        self.command, self.path = None, ""   # what an error answer logs
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if not words:
            return False
        if len(words) != 3:
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad request syntax")
            return False
        command, path, version = words
        major, dot, minor = version[5:].partition(".")
        if (not version.startswith("HTTP/") or not dot or not major.isdecimal()
                or not minor.isdecimal() or len(major) > 10 or len(minor) > 10):
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad request version")
            return False
        if int(major) != 1:
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "Invalid HTTP version")
            return False
        self.request_version = version
        self.close_connection = int(minor) < 1
        self.command = command
        # as http.server does (gh-87389): "//host/..." must not read as an absolute URI
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        try:
            self.headers = RequestHeaders(read_header_fields(self.rfile))
        except HeaderError as error:
            self.send_error(error.status, str(error))
            return False
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if self.headers.get("Expect", "").lower() == "100-continue" and int(minor) >= 1:
            return self.handle_expect_100()
        return True

    def _environ(self):
        """The WSGI environ, and whether the whole body was read (else: close after)."""
        path, _, query = self.path.partition("?")
        length_text = self.headers.get("Content-Length")
        if len(set(self.headers.get_all("Content-Length"))) > 1:   # RFC 9112 6.3: refuse
            self.send_error(HTTPStatus.BAD_REQUEST)
            return None, False
        codings = [coding.strip().lower() for value in self.headers.get_all("Transfer-Encoding")
                   for coding in value.split(",") if coding.strip()]
        body, complete = b"", True
        if codings and codings != ["chunked"]:   # RFC 9112 6.1: a coding we cannot decode
            self.send_error(HTTPStatus.NOT_IMPLEMENTED)
            return None, False
        if codings:
            if length_text is not None:   # both framings: chunked wins, then close (RFC 9112 6.3)
                self.close_connection = True
            body, complete = self._read_chunked()
            if body is None:
                self.send_error(HTTPStatus.BAD_REQUEST)
                return None, False
            length_text = str(len(body)) if complete else str(self.server.max_body + 1)
        elif length_text is not None:
            # ASCII digits only: int() also takes "+2", " 2" and "2_0"
            if not (length_text.isascii() and length_text.isdigit() and len(length_text) < 19):
                self.send_error(HTTPStatus.BAD_REQUEST)
                return None, False
            length = int(length_text)
            if length <= self.server.max_body:
                body = self.rfile.read(length)
                if len(body) < length:   # the client went away mid-body: carry nothing out
                    self.close_connection = True
                    return None, False
            else:
                complete = False
        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if self.headers.get("Content-Type"):
            environ["CONTENT_TYPE"] = self.headers["Content-Type"]
        if length_text:
            environ["CONTENT_LENGTH"] = length_text
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ, complete

    def _read_chunked(self) -> tuple[bytes | None, bool]:
        """(body, complete). The body is None when the chunked framing is broken (answer
        400); `complete` is False when it would pass `max_body` (the app answers 413). No
        more than `max_body` bytes are ever held (in one buffer: a list of many small
        chunks would cost tens of times their size)."""
        body = bytearray()
        while True:
            line = self.rfile.readline(MAX_HEADER_LINE + 1)
            if len(line) > MAX_HEADER_LINE or not line.endswith(b"\n"):   # as a header line
                return None, False
            size_text = line.split(b";")[0].strip()
            if not CHUNK_SIZE.fullmatch(size_text):
                return None, False
            size = int(size_text, 16)
            if size == 0:
                try:
                    read_header_fields(self.rfile)   # trailer fields, bounded as headers are
                except HeaderError:
                    return None, False
                return bytes(body), True
            if len(body) + size > self.server.max_body:
                return b"", False
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                return None, False
            body += chunk

    def _send(self, status: str, headers: list, body: bytes, keep: bool) -> None:
        code = int(status.split(" ", 1)[0])
        if code == 204:   # RFC 9110 8.6: a 204 carries no Content-Length, even the app's 0
            headers = [(name, value) for name, value in headers
                       if name.lower() != "content-length"]
        names = {name.lower() for name, _ in headers}
        if "content-length" not in names and code not in (204, 304) and code >= 200:
            headers = [*headers, ("Content-Length", str(len(body)))]
        headers_in = getattr(self, "headers", None)   # unset when the request line was bad
        wants_close = (not isinstance(headers_in, RequestHeaders)
                       or headers_in.get("Connection", "").lower() == "close"
                       or self.request_version == "HTTP/1.0")
        if wants_close or not keep or self.close_connection:
            headers = [*headers, ("Connection", "close")]
            self.close_connection = True
        head = [f"{self.protocol_version} {status}\r\n",
                f"Server: {self.server_version}\r\n",
                f"Date: {http_date()}\r\n"]
        head += [f"{name}: {value}\r\n" for name, value in headers]
        data = "".join(head).encode("latin-1") + b"\r\n"
        if self.command != "HEAD" and code not in (204, 304):
            data += body
        self.wfile.write(data)   # one write: headers and body leave together
        self.log_request(code)

    def send_error(self, code, message=None, explain=None) -> None:
        """What this layer answers itself (a request it cannot read): the server's
        `error_page` gives the body, so the app's error format holds here too; the
        connection is closed, since what follows cannot be trusted to be a request."""
        status = HTTPStatus(int(code))
        content_type, body = self.server.error_page(status.value)
        self._send(f"{status.value} {status.phrase}", [("Content-Type", content_type)], body,
                   keep=False)

    def log_request(self, code="-", size="-") -> None:
        # Method, path without query, status: never headers, bodies or key material.
        command = getattr(self, "command", None) or "-"
        path = (getattr(self, "path", None) or "").partition("?")[0]
        log.info("%s %s %s", command.translate(_CONTROL), path.translate(_CONTROL), code)

    def log_message(self, format, *args) -> None:
        log.debug("HTTP: %s", (format % args).translate(_CONTROL))


class KeepAliveWSGIServer(ThreadingHTTPServer):
    daemon_threads = True          # idle keep-alive connections must not hold up shutdown
    block_on_close = False
    request_queue_size = 64

    def __init__(self, address, app, max_body: int, error_page=plain_error_page):
        self.app = app
        self.max_body = max_body
        self.error_page = error_page   # status -> (content type, body) for send_error
        super().__init__(address, WSGIHandler)

    def handle_error(self, request, client_address) -> None:
        """One log line, never a traceback: a client that goes away mid-request is
        ordinary; anything else is logged by type."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("connection from %s ended: %s", client_address[0], type(error).__name__)
        else:
            log.error("internal error %s in the HTTP layer", type(error).__name__)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look up the host's FQDN, which can stall for
        # seconds on a machine without DNS; the address is all we need.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
