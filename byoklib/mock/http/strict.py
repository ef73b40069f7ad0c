"""cheroot's WSGI server, reading each request as strictly as a production server should.

cheroot keeps connections alive (an idle one waits in its selector, not in a thread), runs
a bounded pool of worker threads and answers 503 when its queue is full. It is lenient
where a mock that learners probe must not be: it strips vertical tabs around
Transfer-Encoding, takes `int()` of Content-Length and chunk sizes ("+5", "0x5", " 5"),
folds continuation lines, lets `a_b` alias `a-b` and a repeated header win silently, and
answers its own errors in text/plain. So `StrictRequest` reads the request line, the header
block and the body itself, by RFC 9112 (the grammar and readers are in `framing`), before
anything reaches the app:

- request line `METHOD SP target SP HTTP/1.x CRLF`, visible ASCII only (400; 505 for
  another major version; 501 for a method no route has); origin-form or absolute-form;
- header lines `token ":" OWS value OWS CRLF`: no control characters in a value, no
  underscore in a name (refused, not dropped: a learner who sends `bluemix_instance`
  learns why), no folded lines, each single-valued field at most once, a Host in HTTP/1.1
  (400); at most MAX_HEADERS fields and MAX_HEADER_BLOCK bytes (431);
- Content-Length plain ASCII digits; Transfer-Encoding exactly `chunked` (501 otherwise),
  its chunk-size lines `HEX [;ext] CRLF` with no stray whitespace (400);
- the whole request within `Limits.request_timeout` of its first read (408), however
  slowly its bytes arrive; the body is read in full before the app runs, so a request cut
  short by the end of the connection is never carried out.

Every refusal of this layer carries the body of the server's `error_page` (the app's
error format) and closes the connection. The access log has method, path and status only.
"""
from __future__ import annotations

import io
import logging
import queue
import re
import select
import sys
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import unquote_to_bytes, urlsplit

from cheroot import server as cheroot_server
from cheroot import wsgi
from cheroot.workers import threadpool

from byoklib.mock.http.framing import (
    ABSOLUTE_FORM,
    CHUNK_LINE,
    MAX_CHUNK_LINE,
    MAX_HEADER_BLOCK,
    MAX_REQUEST_LINE,
    METHODS,
    REQUEST_LINE,
    DeadlineReader,
    DeadlineSocketIO,
    Refusal,
    read_fields,
)

log = logging.getLogger("byoklib.mock.http")

# A path goes to the access log with control characters escaped, so a client cannot move
# the cursor or clear the terminal of a learner running `serve`; and a backslash as \\, so
# no path can pass for an escaped one.
_CONTROL = str.maketrans({"\\": "\\\\",
                          **{c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}})


@dataclass(frozen=True)
class Limits:
    """Bounds on what clients may hold: worker threads, connections waiting for one,
    idle kept-alive connections, and time; `backlog`, the connections the kernel holds
    until the server accepts them (listen()'s backlog: beyond it a new connection is
    dropped or reset before any answer, where beyond `queue` it gets a 503)."""
    threads: int = 8
    queue: int = 32
    keep_alive: int = 64
    backlog: int = 128
    request_timeout: float = 10.0    # to receive one whole request, from its first read
    idle_timeout: float = 60.0       # between requests on a kept-alive connection
    linger: float = 0.01             # a worker waits this long for the next request


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The Date header value, formatted at most once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode())
    return _date_cache[1]


_ENVIRON_NAMES: dict[bytes, str] = {}


def _environ_name(name: bytes) -> str:
    """`HTTP_` + the field name upper-cased, "-" as "_" (PEP 3333), remembered for the
    names clients send every time (a bounded few: names are not a client's to grow)."""
    key = _ENVIRON_NAMES.get(name)
    if key is None:
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        if len(_ENVIRON_NAMES) < 256:
            _ENVIRON_NAMES[name] = key
    return key


class StrictRequest(cheroot_server.HTTPRequest):
    """One request on a connection: read strictly, answered in one write."""

    method = path = None   # what a refusal before the request line is known logs

    def parse_request(self) -> None:
        self.rfile = self.conn.rfile
        self.conn.raw.deadline = time.monotonic() + self.server.limits.request_timeout
        self.method = self.path = None
        try:
            if not self.read_request_line():
                return
            self.read_request_headers()
        except Refusal as refusal:
            self.simple_response(refusal.status)
            return
        self.ready = True

    def read_request_line(self) -> bool:
        line = self.rfile.readline(MAX_REQUEST_LINE + 1)
        if line == b"\r\n":   # RFC 9112 2.2: one empty line before a request is ignored
            line = self.rfile.readline(MAX_REQUEST_LINE + 1)
        self.started_request = True
        if not line:
            return False   # the client closed between requests
        if len(line) > MAX_REQUEST_LINE:
            raise Refusal(414)
        match = REQUEST_LINE.fullmatch(line)
        if not match:
            raise Refusal(400)
        method, target, major, minor = match.groups()
        if major != b"1":
            raise Refusal(505)
        self.request_protocol = b"HTTP/1." + minor
        self.response_protocol = "HTTP/1.1" if minor != b"0" else "HTTP/1.0"
        self.close_connection = minor == b"0"   # HTTP/1.0: one request per connection
        if method not in METHODS:
            raise Refusal(501)
        self.method, self.uri = method, target
        if ABSOLUTE_FORM.match(target):   # RFC 9112 3.2.2: served as its path
            try:
                parts = urlsplit(target)
            except ValueError:   # e.g. "http://[::1/": an authority urllib cannot read
                raise Refusal(400) from None
            if parts.fragment:
                raise Refusal(400)
            path, query = parts.path or b"/", parts.query
        elif target.startswith(b"/"):
            path, _, query = target.partition(b"?")
            if b"#" in target:
                raise Refusal(400)
        else:
            raise Refusal(400)
        self.path, self.qs = unquote_to_bytes(path), query
        return True

    def read_request_headers(self) -> None:
        self.inheaders = read_fields(self.rfile, MAX_HEADER_BLOCK, 431)
        headers = self.inheaders
        if b"host" not in headers and self.response_protocol == "HTTP/1.1":
            raise Refusal(400)   # RFC 9112 3.2: an HTTP/1.1 request names its host
        length = headers.get(b"content-length")
        if length is not None and not re.fullmatch(rb"[0-9]{1,18}", length):
            raise Refusal(400)
        codings = headers.get(b"transfer-encoding")
        self.chunked_read = codings is not None
        if self.chunked_read:
            if self.response_protocol == "HTTP/1.0":   # RFC 9112 6.1: a 1.0 client has none
                raise Refusal(400)
            names = [c.strip(b" \t").lower() for c in codings.split(b",")]
            if [name for name in names if name] != [b"chunked"]:
                raise Refusal(501)
            if length is not None:   # both framings: chunked wins, then close (RFC 9112 6.3)
                del headers[b"content-length"]
                self.close_connection = True
        options = {option.strip(b" \t").lower()
                   for option in headers.get(b"connection", b"").split(b",")}
        if b"close" in options:   # Connection is a list of options (RFC 9110 7.6.1)
            self.close_connection = True
        expect = headers.get(b"expect", b"").lower()
        too_large = length is not None and int(length) > self.server.max_request_body_size
        if expect == b"100-continue" and self.response_protocol == "HTTP/1.1" and not too_large:
            self.conn.socket.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def read_body(self) -> bytes | None:
        """The whole body, or None when it is too large (the app answers 413 from the
        declared length, and the connection closes unread)."""
        limit = self.server.max_request_body_size
        if self.chunked_read:
            body = bytearray()
            while True:
                line = self.rfile.readline(MAX_CHUNK_LINE + 1)
                match = len(line) <= MAX_CHUNK_LINE and CHUNK_LINE.fullmatch(line)
                if not match:
                    raise Refusal(400)
                size = int(match.group(1), 16)
                if size == 0:
                    read_fields(self.rfile, MAX_HEADER_BLOCK, 400)   # trailers, discarded
                    return bytes(body)
                if len(body) + size > limit:
                    return None
                chunk = self.rfile.read(size)
                if len(chunk) < size or self.rfile.read(2) != b"\r\n":
                    raise Refusal(400)
                body += chunk
        length = int(self.inheaders.get(b"content-length", b"0"))
        if length > limit:
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise Refusal(400)
        return body

    def respond(self) -> None:
        try:
            body = self.read_body()
        except Refusal as refusal:
            self.simple_response(refusal.status)
            return
        except TimeoutError:   # the body did not arrive within the request's time
            self.simple_response(408)
            return
        except OSError as error:   # the client went away mid-body: carry nothing out
            log.debug("connection from %s ended: %s", self.conn.remote_addr,
                      type(error).__name__)
            self.close_connection = True
            return
        self.conn.raw.deadline = None
        headers = self.inheaders
        if body is None:   # too large: the app sees the declared length and refuses
            self.close_connection = True
            headers[b"content-length"] = str(self.server.max_request_body_size + 1).encode()
            body = b""
        elif self.chunked_read:
            headers.pop(b"transfer-encoding")
            headers[b"content-length"] = str(len(body)).encode()
        environ = self.environ(body)
        answer: list = []

        def start_response(status, response_headers, exc_info=None):
            answer[:] = [status, response_headers]
            return lambda data: None   # the app returns its body; it never calls write()

        result = self.server.wsgi_app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, response_headers = answer
        self.send(status, response_headers, content)

    def environ(self, body: bytes) -> dict:
        """The WSGI environ (PEP 3333), built here rather than by cheroot's gateway: the
        header names are already checked, and the app reads its body from memory."""
        environ = {_environ_name(name): value.decode("latin-1")
                   for name, value in self.inheaders.items()}
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if "HTTP_" + name in environ:
                environ[name] = environ.pop("HTTP_" + name)
        environ.update({
            "REQUEST_METHOD": self.method.decode("latin-1"), "SCRIPT_NAME": "",
            "PATH_INFO": self.path.decode("latin-1"), "QUERY_STRING": self.qs.decode("latin-1"),
            "SERVER_NAME": self.server.server_name, "SERVER_PORT": str(self.server.port),
            "SERVER_PROTOCOL": self.request_protocol.decode("latin-1"),
            "REMOTE_ADDR": self.conn.remote_addr or "", "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True, "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False})
        return environ

    def send(self, status: str, headers: list, body: bytes) -> None:
        code = int(status[:3])
        if code == 204 or code == 304:   # RFC 9110 8.6: no Content-Length, no body
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            body = b""
        elif not any(k.lower() == "content-length" for k, _ in headers):
            headers = [*headers, ("Content-Length", str(len(body)))]
        if not self.close_connection and not self.server.can_add_keepalive_connection:
            self.close_connection = True
        head = [f"HTTP/1.1 {status}\r\nServer: byoklib-mock\r\nDate: ".encode(), http_date()]
        head += [f"\r\n{name}: {value}".encode("latin-1") for name, value in headers]
        if self.close_connection:
            head.append(b"\r\nConnection: close")
        head.append(b"\r\n\r\n")
        if self.method != b"HEAD":
            head.append(body)
        self.sent_headers = True
        self.conn.socket.settimeout(self.server.limits.idle_timeout)   # not the deadline's rest
        self.conn.socket.sendall(b"".join(head))   # one write: headers and body together
        self.log_request(code)

    def simple_response(self, status, msg="") -> None:
        """What this layer answers itself: the server's error page, then close."""
        code = int(str(status)[:3])
        content_type, body = self.server.error_page(code)
        self.close_connection = True
        try:
            self.send(f"{code} {HTTPStatus(code).phrase}", [("Content-Type", content_type)],
                      body)
        except OSError:
            pass   # the client has gone: nothing to tell it

    def log_request(self, code: int) -> None:
        # Method, path without query, status: never headers, bodies or key material.
        method = (self.method or b"-").decode("latin-1")
        path = (self.path or b"-").decode("latin-1")
        log.info("%s %s %s", method.translate(_CONTROL), path.translate(_CONTROL), code)


class StrictConnection(cheroot_server.HTTPConnection):
    RequestHandlerClass = StrictRequest

    def __init__(self, server, sock, makefile=None):
        super().__init__(server, sock)
        self.raw = DeadlineSocketIO(sock, "rb")
        self.raw.idle = server.limits.idle_timeout
        self.rfile = DeadlineReader(self.raw)

    def communicate(self) -> bool:
        """Requests while they come: the next one within `linger` is served by this
        thread, without a trip through the selector and the queue (unless other
        connections are waiting for a thread)."""
        while True:
            if not super().communicate():
                return False
            if self.rfile.has_data():
                continue
            if self.server.requests.qsize or not self._readable(self.server.limits.linger):
                return True

    def _readable(self, seconds: float) -> bool:
        try:
            return bool(select.select([self.socket], [], [], seconds)[0])
        except (OSError, ValueError):
            return False


class StrictServer(wsgi.Server):
    """cheroot's WSGI server with StrictConnection, `limits` and a JSON `error_page`."""

    ConnectionClass = StrictConnection

    def __init__(self, address, app, *, max_body: int, error_page, limits: Limits,
                 poll_interval: float = 0.5):
        super().__init__(address, app, numthreads=limits.threads, timeout=limits.idle_timeout,
                         request_queue_size=limits.backlog,
                         accepted_queue_size=limits.queue, accepted_queue_timeout=0,
                         shutdown_timeout=1)
        self.requests = _Pool(self, min=limits.threads, max=limits.threads,
                              accepted_queue_size=limits.queue, accepted_queue_timeout=0)
        self.limits = limits
        self.max_request_body_size = max_body
        self.error_page = error_page
        self.keep_alive_conn_limit = limits.keep_alive
        self.expiration_interval = poll_interval
        self.server_name = "byoklib-mock"

    @property
    def port(self) -> int:
        return self.bind_addr[1]

    def process_conn(self, conn) -> None:
        """Queue the connection for a worker; with every worker busy and the queue full,
        answer 503 at once (cheroot's own 503 is text/plain, from another thread)."""
        try:
            self.requests.put(conn)
        except queue.Full:
            StrictRequest(self, conn).simple_response(503)
            conn.close()

    def error_log(self, msg="", level=logging.INFO, traceback=False) -> None:
        """One log line, never a traceback: a client that goes away is ordinary;
        anything else is logged by its type only (a message could quote the request)."""
        error = sys.exc_info()[1] if traceback else None
        if error is None:
            log.debug("cheroot: %s", msg)
        elif isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("connection ended: %s", type(error).__name__)
        else:
            log.error("internal error %s in the HTTP layer", type(error).__name__)


class _Pool(threadpool.ThreadPool):
    """cheroot's pool, started without its 0.1 s naps (tests start hundreds of servers)."""

    def grow(self, amount: int) -> None:
        workers = [self._spawn_worker() for _ in range(amount)]
        for worker in workers:
            while not worker.ready:
                time.sleep(0.001)
        self._threads.extend(workers)
