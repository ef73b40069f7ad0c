"""The HTTP face of the mock: a Werkzeug WSGI app mapping Key Protect's v2 REST API onto
`byoklib.service.KeyProtectService`, plus `running_server()` (a background thread on an
ephemeral port) and `serve()` (blocking, for `python -m byoklib serve`).

This module does no crypto of its own: it parses requests, checks access, calls the
service, and writes JSON. Every failure is a Key Protect error body
(`application/vnd.ibm.kms.error+json`); an unexpected exception becomes a 500 body
without details, and the tests prove no bad input gets that far.

Access: a non-empty `Authorization` header is always required (401 UNAUTHORIZED_ERR),
as is a non-empty `bluemix-instance` header (400 INVALID_HEADER_ERR). In open mode
(no grants) any bearer token may use any instance, created on first use. With grants
(`{token: instance or set of instances}`) only granted tokens pass (401), each only for
its own instances (403 FORBIDDEN_ERR).

Mock's choices (UNCONFIRMED behaviours of the real service):
- Response content types. IBM's Python client (ibm-cloud-sdk-core) parses a body into a
  dict only when Content-Type matches `^application/json`, and otherwise hands back the
  raw `requests.Response`; IBM's own integration tests call `.json()` on the results of
  create_key and wrap_key, so those must not be `application/json`. The mock therefore
  answers: import token -> `application/json` (the client returns a dict, as its
  GetImportToken model expects); every `{metadata, resources}` envelope (keys, versions,
  policies) -> `application/vnd.ibm.collection+json`; wrap/unwrap/rewrap ->
  `application/vnd.ibm.kms.key_action+json`; errors -> `application/vnd.ibm.kms.error+json`.
  `requests`' `.json()` reads all of them.
- Request content types accepted: none, `application/json`, or any
  `application/vnd.ibm.*+json`; others -> 415 UNSUPPORTED_MEDIA_TYPE_ERR. Bodies of `{}`
  and `null` are accepted where IBM's Go client sends them (disable, enable, rotate,
  restore). Malformed JSON (including NaN/Infinity) -> 400 BAD_BODY_ERR.
- Bodies over 1 MiB -> 413 BODY_TOO_LARGE_ERR. Unknown paths -> 404 NOT_FOUND_ERR; a
  known path with another method -> 405 METHOD_NOT_ALLOWED_ERR (its message lists the
  methods allowed).
- `Prefer: return=representation` selects the full form; anything else (or none) the
  minimal form. `x-kms-key-ring` and `correlation-id` are accepted and ignored.
- Access log lines carry the method, the path (without query) and the status, nothing
  else: never headers, bodies or key material.
"""
from __future__ import annotations

import json
import logging
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from byoklib.errors import KeyProtectError
from byoklib.hsm import HSM, KeyPairPool
from byoklib.httpd import KeepAliveWSGIServer
from byoklib.service import KeyProtectService

log = logging.getLogger("byoklib.server")

MAX_BODY_BYTES = 1024 * 1024
JSON = "application/json"
COLLECTION = "application/vnd.ibm.collection+json"
KEY_ACTION = "application/vnd.ibm.kms.key_action+json"
ERROR = "application/vnd.ibm.kms.error+json"


# --- one request's view -------------------------------------------------------------------

class Call:
    """What a handler needs from a request: the service, the instance, query, body."""

    def __init__(self, service: KeyProtectService, request: Request, instance: str,
                 args: dict):
        self.service = service
        self.request = request
        self.instance = instance
        self.args = args
        self._raw = read_body(request)

    def query(self, name: str):
        return self.request.args.get(name)

    def body(self):
        """Parsed JSON, or None for an empty body or `null`."""
        if not self._raw.strip():
            return None
        check_content_type(self.request)
        try:
            return json.loads(self._raw.decode("utf-8"), parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise KeyProtectError.of("BAD_BODY_ERR") from None

    def representation(self) -> bool:
        prefer = self.request.headers.get("Prefer", "")
        return "return=representation" in prefer.replace(" ", "").lower()


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def read_body(request: Request) -> bytes:
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise KeyProtectError.of("BODY_TOO_LARGE_ERR")
    data = request.stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise KeyProtectError.of("BODY_TOO_LARGE_ERR")
    return data


def check_content_type(request: Request) -> None:
    mimetype = request.mimetype   # lower-cased, parameters stripped
    if mimetype in ("", JSON) or (mimetype.startswith("application/vnd.ibm.")
                                  and mimetype.endswith("+json")):
        return
    raise KeyProtectError.of("UNSUPPORTED_MEDIA_TYPE_ERR",
                             target=("header", "Content-Type"))


def reply(status: int, body=None, content_type: str = COLLECTION, headers=None) -> Response:
    data = "" if body is None else json.dumps(body)
    return Response(data, status=status, headers=headers,
                    content_type=content_type if body is not None else None)


def error_reply(error: KeyProtectError) -> Response:
    return reply(error.status, error.to_body(), ERROR)


# --- handlers, one per operation of the API reference ------------------------------------

def post_import_token(call: Call) -> Response:
    body = _object(call.body())
    return reply(200, call.service.create_import_token(
        call.instance, body.get("expiration"), body.get("maxAllowedRetrievals")), JSON)


def get_import_token(call: Call) -> Response:
    return reply(200, call.service.get_import_token(call.instance), JSON)


def create_key(call: Call) -> Response:
    key = call.service.create_key(call.instance, call.body(), call.representation())
    return reply(201, _keys([key]))


def create_key_with_policy_overrides(call: Call) -> Response:
    key = call.service.create_key(call.instance, call.body(), call.representation(),
                                  policy_overrides=True)
    return reply(201, _keys([key]))


def list_keys(call: Call) -> Response:
    keys = call.service.list_keys(call.instance, call.query("limit"), call.query("offset"),
                                  call.query("state"), call.query("extractable"))
    return reply(200, _keys(keys))


def key_total(call: Call) -> Response:
    total = call.service.key_total(call.instance, call.query("state"),
                                   call.query("extractable"))
    return reply(200, headers={"Key-Total": str(total)})


def get_key(call: Call) -> Response:
    return reply(200, _keys([call.service.get_key(call.instance, call.args["key_id"])]))


def get_key_metadata(call: Call) -> Response:
    key = call.service.get_key_metadata(call.instance, call.args["key_id"])
    return reply(200, _keys([key]))


def delete_key(call: Call) -> Response:
    key = call.service.delete_key(call.instance, call.args["key_id"], call.query("force"))
    return reply(200, _keys([key])) if call.representation() else reply(204)


def restore_key(call: Call) -> Response:
    call.body()   # parsed for its syntax only: an older-style restore body is ignored
    return reply(201, _keys([call.service.restore_key(call.instance, call.args["key_id"])]))


def list_key_versions(call: Call) -> Response:
    return reply(200, call.service.list_key_versions(
        call.instance, call.args["key_id"], call.query("limit"), call.query("offset"),
        call.query("totalCount"), call.query("allKeyStates")))


def key_action(call: Call) -> Response:
    return _action(call, call.args["action"])


def key_action_by_query(call: Call) -> Response:
    """The older form POST /keys/{id}?action=NAME."""
    action = call.query("action")
    if not action:
        raise KeyProtectError.of("INVALID_QUERY_PARAM_ERR",
                                 "The query_param 'action' must be: given",
                                 target=("query_param", "action"))
    return _action(call, action)


def _action(call: Call, action: str) -> Response:
    result = call.service.key_action(call.instance, call.args["key_id"], action, call.body())
    return reply(204) if result is None else reply(200, result, KEY_ACTION)


def put_key_policies(call: Call) -> Response:
    return reply(200, call.service.put_key_policies(
        call.instance, call.args["key_id"], call.body(), call.query("policy")))


def get_key_policies(call: Call) -> Response:
    return reply(200, call.service.get_key_policies(
        call.instance, call.args["key_id"], call.query("policy")))


def put_instance_policy(call: Call) -> Response:
    call.service.put_instance_policy(call.instance, call.body(), call.query("policy"))
    return reply(204)


def get_instance_policies(call: Call) -> Response:
    return reply(200, call.service.get_instance_policies(call.instance, call.query("policy")))


def _keys(resources: list[dict]) -> dict:
    return {"metadata": {"collectionType": "application/vnd.ibm.kms.key+json",
                         "collectionTotal": len(resources)}, "resources": resources}


def _object(body) -> dict:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise KeyProtectError.of("BAD_BODY_ERR", "The body must be a JSON object")
    return body


# --- the routing table: reads like the API reference -------------------------------------

API = {
    "/api/v2/import_token": {"POST": post_import_token, "GET": get_import_token},
    "/api/v2/keys": {"POST": create_key, "GET": list_keys, "HEAD": key_total},
    "/api/v2/keys_with_policy_overrides": {"POST": create_key_with_policy_overrides},
    "/api/v2/keys/<key_id>": {"GET": get_key, "DELETE": delete_key,
                              "POST": key_action_by_query},
    "/api/v2/keys/<key_id>/metadata": {"GET": get_key_metadata},
    "/api/v2/keys/<key_id>/versions": {"GET": list_key_versions},
    "/api/v2/keys/<key_id>/restore": {"POST": restore_key},
    "/api/v2/keys/<key_id>/actions/<action>": {"POST": key_action},
    "/api/v2/keys/<key_id>/policies": {"PUT": put_key_policies, "GET": get_key_policies},
    "/api/v2/instance/policies": {"PUT": put_instance_policy, "GET": get_instance_policies},
}
ROUTES = Map([Rule(path, endpoint=path) for path in API],
             strict_slashes=False, merge_slashes=False)


# --- the WSGI application -----------------------------------------------------------------

class KeyProtectApp:
    """WSGI callable. `internal_errors` counts requests that reached the catch-all."""

    def __init__(self, service: KeyProtectService, grants=None):
        self.service = service
        self.grants = normalise_grants(grants)
        self.internal_errors = 0
        self._count_lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self.handle(request)
        except KeyProtectError as error:
            response = error_reply(error)
        except Exception as exc:   # never a traceback or a detail on the wire
            with self._count_lock:
                self.internal_errors += 1
            log.error("internal error %s on %s %s", type(exc).__name__, request.method,
                      request.path)
            response = error_reply(KeyProtectError.of("INTERNAL_ERR"))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        handler, args = route(request)
        token = bearer_token(request)
        instance = instance_id(request)
        self.check_grant(token, instance)
        return handler(Call(self.service, request, instance, args))

    def check_grant(self, token: str, instance: str) -> None:
        if self.grants is None:
            return
        if token not in self.grants:
            raise KeyProtectError.of("UNAUTHORIZED_ERR")
        if instance not in self.grants[token]:
            raise KeyProtectError.of("FORBIDDEN_ERR")

    def __repr__(self) -> str:
        mode = "open" if self.grants is None else f"strict({len(self.grants)} tokens)"
        return f"KeyProtectApp({mode})"


def create_app(service: KeyProtectService, grants=None) -> KeyProtectApp:
    return KeyProtectApp(service, grants)


def route(request: Request):
    try:
        path, args = ROUTES.bind_to_environ(request.environ).match(method="GET")
    except HTTPException:
        raise KeyProtectError.of("NOT_FOUND_ERR") from None
    handlers = API[path]
    if request.method not in handlers:
        raise KeyProtectError.of(
            "METHOD_NOT_ALLOWED_ERR",
            f"The method {request.method} is not allowed here: use {', '.join(handlers)}")
    return handlers[request.method], args


def bearer_token(request: Request) -> str:
    value = strip_bearer(request.headers.get("Authorization", ""))
    if not value:
        raise KeyProtectError.of("UNAUTHORIZED_ERR")
    return value


def strip_bearer(value: str) -> str:
    """The token of `Bearer <token>` (the prefix is optional; "Bearer" alone is empty)."""
    parts = value.strip().split(None, 1)
    if parts and parts[0].lower() == "bearer":
        parts = parts[1:]
    return parts[0].strip() if parts else ""


def instance_id(request: Request) -> str:
    value = request.headers.get("Bluemix-Instance", "").strip()
    if not value:
        raise KeyProtectError.of("INVALID_HEADER_ERR",
                                 "The header 'bluemix-instance' must be: a service instance id",
                                 target=("header", "bluemix-instance"))
    return value


def normalise_grants(grants) -> dict[str, frozenset] | None:
    if grants is None:
        return None
    normalised = {}
    for token, instances in grants.items():
        normalised[strip_bearer(token)] = frozenset([instances] if isinstance(instances, str) else instances)
    return normalised


# --- serving ------------------------------------------------------------------------------

def _stop_on_signals() -> None:
    """SIGINT and SIGTERM end `serve()` even when the shell started us with SIGINT
    ignored (as background jobs are)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), _interrupt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@dataclass
class RunningServer:
    url: str
    host: str
    port: int
    service: KeyProtectService
    clock: object
    app: KeyProtectApp


def build_server(service=None, *, host="127.0.0.1", port=0, grants=None, clock=None,
                 key_pair_source=None):
    """(HTTP server, app, pool or None): the pool is ours to close."""
    pool = None
    if service is None:
        if key_pair_source is None:
            pool = key_pair_source = KeyPairPool().start()
        service = KeyProtectService(clock=clock, hsm=HSM(key_pair_source))
    app = create_app(service, grants)
    server = KeepAliveWSGIServer((host, port), app, max_body=MAX_BODY_BYTES)
    return server, app, pool


@contextmanager
def running_server(service=None, *, host="127.0.0.1", port=0, grants=None, clock=None,
                   key_pair_source=None):
    """Serve the mock from a background thread; yields a `RunningServer`."""
    server, app, pool = build_server(service, host=host, port=port, grants=grants,
                                     clock=clock, key_pair_source=key_pair_source)
    # shutdown() waits for the serve loop's next poll: a short poll makes each
    # `with running_server()` end in ~10 ms instead of 0.5 s (tests start hundreds).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              name="key-protect-mock", daemon=True)
    thread.start()
    try:
        yield RunningServer(f"http://{host}:{server.port}", host, server.port, app.service,
                            app.service.clock, app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        if pool is not None:
            pool.close()


def serve(host: str = "127.0.0.1", port: int = 8080, grants=None, *, clock=None,
          key_pair_source=None, announce=print) -> None:
    """Serve until interrupted (Ctrl-C / SIGINT); announces the URL first."""
    server, app, pool = build_server(host=host, port=port, grants=grants, clock=clock,
                                     key_pair_source=key_pair_source)
    _stop_on_signals()
    announce(f"Key Protect mock listening on http://{host}:{server.port}")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if pool is not None:
            pool.close()
