"""The routing table of the mock's HTTP face and one handler per API operation.

`API` maps each path of Key Protect's v2 REST API (`<name>` stands for one path segment)
to its methods and handlers; `match` finds a path's entry. A handler reads what it needs
from a `Call` (service, instance, path arguments, query, body), calls
`byoklib.mock.service.KeyProtectService` and answers with `reply`. The WSGI app and the
access checks are in `app`.

No Werkzeug: its Request, Response and routing cost several times what this module's
few lines do on every call (`python -m byoklib bench`: a wrap must stay within 10 % of a
bare round trip), and the mock needs none of their generality. The routing ignores Host
and Upgrade, which have nothing to say about a path.
"""
from __future__ import annotations

import json
from http import HTTPStatus
from urllib.parse import parse_qs

from byoklib import protocol
from byoklib.errors import KeyProtectError
from byoklib.mock.service import KeyProtectService
from byoklib.mock.service.model import collection
from byoklib.protocol import COLLECTION, ERROR, JSON, KEY_ACTION, VENDOR_PREFIX

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
        malformed JSON (NaN and Infinity too) -> 400 BAD_BODY_ERR."""
        if not self._raw.strip():
            return None
        check_content_type(self.request)
        try:
            return json.loads(self._raw.decode("utf-8"), parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise KeyProtectError.of("BAD_BODY_ERR") from None

    def representation(self) -> bool:
        """Mock's choice: `Prefer: return=representation` selects the full form; anything
        else (or none) the minimal form, as in IBM's tutorial."""
        prefer = self.request.header("Prefer")
        return "return=representation" in prefer.replace(" ", "").lower()


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


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


class Reply:
    """One answer: status, JSON body (or none) and headers, callable as a WSGI app."""

    __slots__ = ("status_code", "body", "headers")

    def __init__(self, status_code: int, body: bytes, headers: list[tuple[str, str]]):
        self.status_code = status_code
        self.body = body
        self.headers = headers

    @property
    def status(self) -> str:
        return f"{self.status_code} {HTTPStatus(self.status_code).phrase}"

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


# --- handlers, one per operation of the API reference ------------------------------------

def post_import_token(call: Call) -> Reply:
    body = _object(call.body())
    return reply(200, call.service.create_import_token(
        call.instance, body.get("expiration"), body.get("maxAllowedRetrievals")), JSON)


def get_import_token(call: Call) -> Reply:
    return reply(200, call.service.get_import_token(call.instance), JSON)


def create_key(call: Call) -> Reply:
    key = call.service.create_key(call.instance, call.body(), call.representation())
    return reply(201, _keys([key]))


def create_key_with_policy_overrides(call: Call) -> Reply:
    key = call.service.create_key(call.instance, call.body(), call.representation(),
                                  policy_overrides=True)
    return reply(201, _keys([key]))


def list_keys(call: Call) -> Reply:
    return reply(200, call.service.list_keys(
        call.instance, call.query("limit"), call.query("offset"), call.query("state"),
        call.query("extractable"), call.query("filter"), call.query("search"),
        call.query("sort")))


def key_total(call: Call) -> Reply:
    total = call.service.key_total(call.instance, call.query("state"),
                                   call.query("extractable"), call.query("filter"))
    return reply(200, headers={"Key-Total": str(total)})


def get_key(call: Call) -> Reply:
    return reply(200, _keys([call.service.get_key(call.instance, call.args["key_id"])]))


def get_key_metadata(call: Call) -> Reply:
    key = call.service.get_key_metadata(call.instance, call.args["key_id"])
    return reply(200, _keys([key]))


def delete_key(call: Call) -> Reply:
    key = call.service.delete_key(call.instance, call.args["key_id"], call.query("force"))
    return reply(200, _keys([key])) if call.representation() else reply(204)


def restore_key(call: Call) -> Reply:
    call.body()   # parsed for its syntax only: an older-style restore body is ignored
    return reply(201, _keys([call.service.restore_key(call.instance, call.args["key_id"])]))


def list_key_versions(call: Call) -> Reply:
    return reply(200, call.service.list_key_versions(
        call.instance, call.args["key_id"], call.query("limit"), call.query("offset"),
        call.query("totalCount"), call.query("allKeyStates")))


def key_action(call: Call) -> Reply:
    return _action(call, call.args["action"])


def key_action_by_query(call: Call) -> Reply:
    """The older form POST /keys/{id}?action=NAME."""
    action = call.query("action")
    if not action:
        raise KeyProtectError.of("INVALID_QUERY_PARAM_ERR",
                                 "The query_param 'action' must be: given",
                                 target=("query_param", "action"))
    return _action(call, action)


def _action(call: Call, action: str) -> Reply:
    result = call.service.key_action(call.instance, call.args["key_id"], action, call.body())
    return reply(204) if result is None else reply(200, result, KEY_ACTION)


def put_key_policies(call: Call) -> Reply:
    return reply(200, call.service.put_key_policies(
        call.instance, call.args["key_id"], call.body(), call.query("policy")))


def get_key_policies(call: Call) -> Reply:
    return reply(200, call.service.get_key_policies(
        call.instance, call.args["key_id"], call.query("policy")))


def put_instance_policy(call: Call) -> Reply:
    call.service.put_instance_policy(call.instance, call.body(), call.query("policy"))
    return reply(204)


def get_instance_policies(call: Call) -> Reply:
    return reply(200, call.service.get_instance_policies(call.instance, call.query("policy")))


def patch_key(call: Call) -> Reply:
    key = call.service.patch_key(call.instance, call.args["key_id"], call.body())
    return reply(200, _keys([key]))


def list_key_rings(call: Call) -> Reply:
    return reply(200, call.service.list_key_rings(
        call.instance, call.query("limit"), call.query("offset"), call.query("totalCount")))


def create_key_ring(call: Call) -> Reply:
    call.service.create_key_ring(call.instance, call.args["ring_id"])
    return reply(201)


def delete_key_ring(call: Call) -> Reply:
    call.service.delete_key_ring(call.instance, call.args["ring_id"], call.query("force"))
    return reply(204)


def create_key_alias(call: Call) -> Reply:
    return reply(201, call.service.create_key_alias(call.instance, call.args["key_id"],
                                                    call.args["alias"]))


def delete_key_alias(call: Call) -> Reply:
    call.service.delete_key_alias(call.instance, call.args["key_id"], call.args["alias"])
    return reply(204)


def purge_key(call: Call) -> Reply:
    key = call.service.purge_key(call.instance, call.args["key_id"])
    return reply(200, _keys([key])) if call.representation() else reply(204)


def list_key_registrations(call: Call) -> Reply:
    return _registrations(call, call.args["key_id"])


def list_all_registrations(call: Call) -> Reply:
    return _registrations(call, None)


def _registrations(call: Call, key_id) -> Reply:
    return reply(200, call.service.list_registrations(
        call.instance, key_id, call.query("limit"), call.query("offset"),
        call.query("totalCount"), call.query("preventKeyDeletion")))


def get_openapi(call: Call) -> Reply:
    """This mock's API as an OpenAPI 3 document (openapi.json beside this module), for
    anyone: it needs no token and no instance (`public`)."""
    global _OPENAPI
    if _OPENAPI is None:
        from importlib.resources import files
        _OPENAPI = files("byoklib.mock.http").joinpath("openapi.json").read_bytes()
    return Reply(200, _OPENAPI, [("Content-Type", JSON), ("Content-Length", str(len(_OPENAPI)))])


get_openapi.public = True
_OPENAPI: bytes | None = None


def _keys(resources: list[dict]) -> dict:
    return collection(protocol.KEY, resources)


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
                              "POST": key_action_by_query, "PATCH": patch_key},
    "/api/v2/keys/<key_id>/metadata": {"GET": get_key_metadata},
    "/api/v2/keys/<key_id>/versions": {"GET": list_key_versions},
    "/api/v2/keys/<key_id>/restore": {"POST": restore_key},
    "/api/v2/keys/<key_id>/actions/<action>": {"POST": key_action},
    "/api/v2/keys/<key_id>/policies": {"PUT": put_key_policies, "GET": get_key_policies},
    "/api/v2/instance/policies": {"PUT": put_instance_policy, "GET": get_instance_policies},
    "/api/v2/keys/<key_id>/purge": {"DELETE": purge_key},
    "/api/v2/keys/<key_id>/registrations": {"GET": list_key_registrations},
    "/api/v2/keys/registrations": {"GET": list_all_registrations},
    "/api/v2/keys/<key_id>/aliases/<alias>": {"POST": create_key_alias,
                                              "DELETE": delete_key_alias},
    "/api/v2/key_rings": {"GET": list_key_rings},
    "/api/v2/key_rings/<ring_id>": {"POST": create_key_ring, "DELETE": delete_key_ring},
    "/openapi.json": {"GET": get_openapi},
}

# What a failed call's errorMsg says could not be done ("Bad Request: Key could not be
# created: Please see `reasons` for more details (CODE)"), in the words of IBM's
# error-message page and Go client tests; calls they show no failure of say it alike.
CONTEXTS = {
    post_import_token: "Import Token could not be created",
    get_import_token: "Import Token could not be retrieved",
    create_key: "Key could not be created",
    create_key_with_policy_overrides: "Key could not be created",
    list_keys: "Keys could not be retrieved",
    key_total: "Keys could not be retrieved",
    get_key: "Key could not be retrieved",
    get_key_metadata: "Key could not be retrieved",
    delete_key: "Key could not be deleted",
    patch_key: "Key could not be updated",
    list_key_versions: "KeyVersion(s) could not be retrieved",
    restore_key: "Key could not be restored",
    purge_key: "Key could not be purged",
    put_key_policies: "Key policy could not be created",
    get_key_policies: "Key policies could not be retrieved",
    put_instance_policy: "Instance policy could not be created",
    get_instance_policies: "Instance policies could not be retrieved",
    list_key_registrations: "Registrations could not be retrieved",
    list_all_registrations: "Registrations could not be retrieved",
    create_key_alias: "Key alias could not be created",
    delete_key_alias: "Key alias could not be deleted",
    list_key_rings: "Key rings could not be retrieved",
    create_key_ring: "Key ring could not be created",
    delete_key_ring: "Key ring could not be deleted",
}
ACTION_CONTEXTS = {
    "wrap": "Wrap with key could not be performed",
    "unwrap": "Unwrap with key could not be performed",
    "rewrap": "Rewrap with key could not be performed",
    "rotate": "Key could not be rotated",
    "disable": "Key could not be disabled",
    "enable": "Key could not be enabled",
    "sync": "Could not initiate sync requests to associated resources",
}


def error_context(handler, args: dict, request: ApiRequest) -> str | None:
    """The errorMsg context of a call to `handler` (None: the generic one)."""
    if handler in (key_action, key_action_by_query):
        action = args.get("action") or request.query("action")
        return ACTION_CONTEXTS.get(action, "Action could not be performed on key")
    return CONTEXTS.get(handler)


def _segments(path: str) -> list[str]:
    path = path[1:]
    return (path[:-1] if path.endswith("/") else path).split("/")   # "/keys/" is "/keys"


# By segment count; within one, literal segments before `<name>` at each position, so
# /keys/registrations is not read as the key "registrations".
ROUTES: dict[int, list[tuple[list[str], str]]] = {}
for _path in sorted(API, key=lambda p: [part.startswith("<") for part in _segments(p)]):
    ROUTES.setdefault(len(_segments(_path)), []).append((_segments(_path), _path))


def match(path: str) -> tuple[str, dict] | None:
    """(the API entry, its path arguments) of a request path, or None."""
    parts = _segments(path)
    for pattern, entry in ROUTES.get(len(parts), ()):
        args = {}
        for want, got in zip(pattern, parts):
            if want.startswith("<"):
                if not got:
                    break
                args[want[1:-1]] = got
            elif want != got:
                break
        else:
            return entry, args
    return None
