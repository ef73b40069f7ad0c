"""What the mock's HTTP face reads from a request and what it answers: `ApiRequest` (method,
path, headers, query and body straight from the WSGI environ), `Call` (what a handler
needs: the service, the instance, path arguments, query, parsed body) and `Reply` (status,
JSON body and headers, itself a WSGI app), made by `reply`. The mock's choices of body
limits, accepted content types and response types sit here, with the code that makes them.
"""
from __future__ import annotations

import json
import re
from http import HTTPStatus
from urllib.parse import parse_qs

from byoklib.errors import KeyProtectError
from byoklib.mock.service import KeyProtectService
from byoklib.protocol import (
    COLLECTION,
    ERROR,
    JSON,
    PREFER_HEADER,
    PREFER_REPRESENTATION,
    VENDOR_PREFIX,
)

MAX_BODY_BYTES = 1024 * 1024


# --- one request's view -------------------------------------------------------------------

class ApiRequest:
    """What the mock reads from a WSGI request, straight from the environ: method, path,
    headers, query parameters and body."""

    __slots__ = ("environ", "method", "path", "_query")

    def __init__(self, environ: dict):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        # PEP 3333 hands the path over as latin-1 text of the raw bytes; URLs mean UTF-8
        raw = environ.get("PATH_INFO") or ""
        self.path = "/" + raw.encode("latin-1").decode("utf-8", "replace").lstrip("/")
        self._query: dict | None = None

    def header(self, name: str, default: str = "") -> str:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        return self.environ.get(key, default)

    def query(self, name: str) -> str | None:
        """The first value of a query parameter (blank values kept), or None."""
        if self._query is None:
            self._query = parse_qs(self.environ.get("QUERY_STRING", ""),
                                   keep_blank_values=True)
        values = self._query.get(name)
        return values[0] if values else None

    @property
    def mimetype(self) -> str:
        """The Content-Type without parameters, lower-cased."""
        return self.header("Content-Type").split(";", 1)[0].strip().lower()

    def read_body(self) -> bytes:
        """The body, at most MAX_BODY_BYTES (mock's choice: 413 BODY_TOO_LARGE_ERR beyond,
        1 MiB being far above any Key Protect request). Without a
        usable Content-Length only a server that marks its input as terminated is read,
        (PEP 3333), so a read never waits on an open socket."""
        try:
            length = max(0, int(self.header("Content-Length")))
        except ValueError:
            length = None
        if length is not None and length > MAX_BODY_BYTES:
            raise KeyProtectError.of("BODY_TOO_LARGE_ERR")
        if length is None and not self.environ.get("wsgi.input_terminated"):
            return b""
        stream = self.environ["wsgi.input"]
        data = stream.read(MAX_BODY_BYTES + 1 if length is None else length)
        if len(data) > MAX_BODY_BYTES:
            raise KeyProtectError.of("BODY_TOO_LARGE_ERR")
        return data


class Call:
    """What a handler needs from a request: the service, the instance, query, body."""

    def __init__(self, service: KeyProtectService, request: ApiRequest, instance: str,
                 args: dict):
        self.service = service
        self.request = request
        self.instance = instance
        self.args = args
        self._raw = request.read_body()

    def query(self, name: str):
        return self.request.query(name)

    def body(self):
        """Parsed JSON, or None for an empty body or `null`. Mock's choice: `{}` and `null`
        are accepted where IBM's Go client sends them (disable, enable, rotate, restore);
        malformed JSON (NaN and Infinity too) -> 400 BAD_BODY_ERR; so is a string with a
        lone surrogate escape such as "\\ud800", which RFC 8259 (section 8.2) lets a
        reader treat as it likes and no UTF-8 output can carry (Go's reader, for one,
        would store U+FFFD in its place)."""
        if not self._raw.strip():
            return None
        check_content_type(self.request)
        try:
            text = self._raw.decode("utf-8")
            value = _DECODER.decode(text)
        except (ValueError, RecursionError):
            raise KeyProtectError.of("BAD_BODY_ERR") from None
        if _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(value):
            raise KeyProtectError.of("BAD_BODY_ERR", "The body must be Unicode text: a "
                                     "string holds a lone surrogate escape")
        return value

    def representation(self) -> bool:
        """Mock's choice: `Prefer: return=representation` selects the full form; anything
        else (or none) the minimal form, as in IBM's tutorial."""
        prefer = self.request.header(PREFER_HEADER)
        return PREFER_REPRESENTATION in prefer.replace(" ", "").lower()


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)   # one, not one per body
# A surrogate can reach a parsed string only through a \u escape (UTF-8 cannot encode
# one), and an escaped pair is joined into one character: whatever surrogate is left is
# lone. The body is walked only when the text has such an escape.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _holds_lone_surrogate(value) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def check_content_type(request: ApiRequest) -> None:
    """Mock's choice: a body may come as no type, `application/json` or any
    `application/vnd.ibm.*+json` (what IBM's clients send); others -> 415
    UNSUPPORTED_MEDIA_TYPE_ERR."""
    mimetype = request.mimetype
    if mimetype in ("", JSON) or (mimetype.startswith(VENDOR_PREFIX)
                                  and mimetype.endswith("+json")):
        return
    raise KeyProtectError.of("UNSUPPORTED_MEDIA_TYPE_ERR",
                             target=("header", "Content-Type"))


_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class Reply:
    """One answer: status, JSON body (or none) and headers, callable as a WSGI app."""

    __slots__ = ("status_code", "body", "headers")

    def __init__(self, status_code: int, body: bytes, headers: list[tuple[str, str]]):
        self.status_code = status_code
        self.body = body
        self.headers = headers

    @property
    def status(self) -> str:
        return _STATUS_LINES[self.status_code]

    def __call__(self, environ, start_response):
        start_response(self.status, self.headers)
        return [self.body]

    def __repr__(self) -> str:
        return f"<Reply {self.status}, {len(self.body)} bytes>"


def reply(status: int, body=None, content_type: str = COLLECTION, headers=None) -> Reply:
    """Mock's choice of response types. IBM's Python client (ibm-cloud-sdk-core) parses a
    body into a dict only when Content-Type matches `^application/json`, else hands back
    the raw `requests.Response`; IBM's own integration tests call `.json()` on what
    create_key and wrap_key return, so those must not be `application/json`. Hence: the
    import token -> `application/json` (a dict, as its GetImportToken model expects);
    every `{metadata, resources}` envelope -> `application/vnd.ibm.collection+json` (the
    default); wrap/unwrap/rewrap -> `application/vnd.ibm.kms.key_action+json`; errors ->
    `application/vnd.ibm.kms.error+json`. `requests`' `.json()` reads all of them."""
    data = b"" if body is None else json.dumps(body).encode("utf-8")
    fields = [("Content-Type", content_type)] if body is not None else []
    fields += list((headers or {}).items())
    fields.append(("Content-Length", str(len(data))))
    return Reply(status, data, fields)


def error_reply(error: KeyProtectError) -> Reply:
    return reply(error.status, error.to_body(), ERROR)
