"""The mock's WSGI app: Key Protect's v2 REST API onto `KeyProtectService`.

This module does no crypto of its own: it parses requests, checks access, calls the
service, and writes JSON. The routing table and one handler per operation are in
`routes`. Every failure is a Key Protect error body
(`application/vnd.ibm.kms.error+json`); an unexpected exception becomes a 500 body
without details, and the tests prove no bad input gets that far.

Access: `Authorization: Bearer <token>` is always required (nothing -> 401
UNAUTHORIZED_ERR, another scheme -> 400 BEARER_SUB_EXTRACTION_ERR), as is a non-empty
`bluemix-instance` header (400 INVALID_HEADER_ERR). In open mode (no grants) any bearer
token may use any instance; an instance is created by its first successful change. With
grants (`{token: instance or set of instances}`) only granted tokens pass (401
UNAUTHORIZED_ERR, whose body has an `errorMsg` and no `reasons`, as IBM's error-message
page shows: https://cloud.ibm.com/docs/key-protect?topic=key-protect-error-messages), each
only for its own instances (403 FORBIDDEN_ERR: the mock's code, kept because this suite's
public contract promises a 403; IBM documents only the 401 for a user without access).

Mock's choices (UNCONFIRMED behaviours of the real service) sit with the code that
makes them: content types and bodies in `exchange` (`reply`, `check_content_type`,
`Call`), unknown paths and methods in `route` below; what the HTTP layer refuses before
the app is read in `strict` and answered with `http_error_page`.
"""
from __future__ import annotations

import logging
import threading
from http import HTTPStatus

from byoklib import protocol
from byoklib.errors import KeyProtectError
from byoklib.mock.http.exchange import ApiRequest, Call, Reply, error_reply
from byoklib.mock.http.routes import API, error_context, match
from byoklib.mock.service import KeyProtectService

log = logging.getLogger("byoklib.mock.http")

# --- the WSGI application -----------------------------------------------------------------

class KeyProtectApp:
    """WSGI callable. `internal_errors` counts requests that reached the catch-all."""

    def __init__(self, service: KeyProtectService, grants=None, on_change=None,
                 faithful: bool = False):
        self.service = service
        self.grants = normalise_grants(grants)
        self.faithful = faithful   # leave out the import doctor's header
        self.on_change = on_change   # called after each successful changing request
        self.internal_errors = 0
        self.save_failures = 0     # changes on_change could not save
        self._count_lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = ApiRequest(environ)
        try:
            response = self.handle(request)
        except KeyProtectError as error:
            response = error_reply(error)
            if error.diagnosis and not self.faithful:   # the body stays the real service's
                response.headers.append((protocol.DIAGNOSIS_HEADER, error.diagnosis))
        except Exception as exc:   # never a traceback or a detail on the wire
            with self._count_lock:
                self.internal_errors += 1
            log.error("internal error %s on %s %s", type(exc).__name__, request.method,
                      request.path)
            response = error_reply(KeyProtectError.of("INTERNAL_ERR"))
        if (self.on_change is not None and response.status_code < 400
                and request.method not in ("GET", "HEAD")):
            try:
                self.on_change()
            except Exception as exc:   # e.g. the state file's folder is gone or the disk full
                # The change is made and is what the API now serves; answering 5xx would
                # invite a retry (IBM's Go client retries 5xx, POSTs too) that makes it twice.
                # Only its saving failed: say so loudly where the mock's operator looks.
                with self._count_lock:
                    self.save_failures += 1
                log.error("STATE NOT SAVED after %s %s: %s (the change is kept in memory "
                          "only)", request.method, request.path, type(exc).__name__)
        return response(environ, start_response)

    def handle(self, request: ApiRequest) -> Reply:
        handler, args = route(request)
        if getattr(handler, "public", False):   # /openapi.json: no token or instance needed
            return handler(Call(self.service, request, "", args))
        try:
            token = bearer_token(request)
            instance = instance_id(request)
            self.check_grant(token, instance)
            # X-Kms-Key-Ring scopes the key lookups of this call (byoklib.mock.service.rings);
            # correlation-id is accepted and ignored (mock's choice)
            ring = request.header(protocol.KEY_RING_HEADER).strip() or None
            with self.service.key_ring_scope(ring):
                return handler(Call(self.service, request, instance, args))
        except KeyProtectError as error:
            raise error.in_context(error_context(handler, args, request))

    def check_grant(self, token: str, instance: str) -> None:
        if self.grants is None:
            return
        if token not in self.grants:
            raise KeyProtectError.of("UNAUTHORIZED_ERR")
        if instance not in self.grants[token]:   # 403: the mock's choice (README)
            raise KeyProtectError.of("FORBIDDEN_ERR")

    def __repr__(self) -> str:
        mode = "open" if self.grants is None else f"strict({len(self.grants)} tokens)"
        return f"KeyProtectApp({mode})"


def create_app(service: KeyProtectService, grants=None, on_change=None,
               faithful: bool = False) -> KeyProtectApp:
    return KeyProtectApp(service, grants, on_change, faithful)


def route(request: ApiRequest):
    """The handler and path arguments. Mock's choice: an unknown path -> 404
    NOT_FOUND_ERR; a known path with another method -> 405 METHOD_NOT_ALLOWED_ERR, its
    message listing the methods allowed."""
    found = match(request.path)
    if found is None:
        raise KeyProtectError.of("NOT_FOUND_ERR")
    path, args = found
    handlers = API[path]
    if request.method not in handlers:
        raise KeyProtectError.of(
            "METHOD_NOT_ALLOWED_ERR",
            f"The method {request.method} is not allowed here: use {', '.join(handlers)}")
    return handlers[request.method], args


def bearer_token(request: ApiRequest) -> str:
    """The token of `Authorization: Bearer <token>`. No token at all -> 401
    UNAUTHORIZED_ERR; a value without the `Bearer` scheme -> 400 BEARER_SUB_EXTRACTION_ERR,
    the code IBM gives a token it cannot read ("the authorization header needs to be set
    using this format: -H "authorization: Bearer $ACCESS_TOKEN"", IBM's error-message
    page: https://cloud.ibm.com/docs/key-protect?topic=key-protect-error-messages)."""
    value = request.header(protocol.AUTHORIZATION_HEADER).strip()
    token = protocol.bearer_token(value)
    if value and token == value:   # nothing taken off: no Bearer scheme
        raise KeyProtectError.of("BEARER_SUB_EXTRACTION_ERR",
                                 target=("header", protocol.AUTHORIZATION_HEADER.lower()))
    if not token:
        raise KeyProtectError.of("UNAUTHORIZED_ERR")
    return token


def instance_id(request: ApiRequest) -> str:
    value = request.header(protocol.INSTANCE_HEADER).strip()
    if not value:
        header = protocol.INSTANCE_HEADER.lower()
        raise KeyProtectError.of("INVALID_HEADER_ERR",
                                 f"The header '{header}' must be: a service instance id",
                                 target=("header", header))
    return value


def http_error_page(status: int) -> tuple[str, bytes]:
    """A Key Protect error body for what the HTTP layer refuses itself (a request it cannot
    read), so every failure has the same shape; it names the status, never the request."""
    error = KeyProtectError(status, "INVALID_HTTP_REQUEST_ERR",
                            f"The request could not be read: {HTTPStatus(status).phrase}")
    return protocol.ERROR, error_reply(error).body


def normalise_grants(grants) -> dict[str, frozenset] | None:
    if grants is None:
        return None
    normalised = {}
    for token, instances in grants.items():
        token = protocol.bearer_token(token)
        if not token:
            raise ValueError("a grant needs a token (not empty, not 'Bearer' alone)")
        normalised[token] = frozenset([instances] if isinstance(instances, str)
                                      else instances)
    return normalised
