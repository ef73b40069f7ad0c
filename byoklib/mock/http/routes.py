"""The routing table of the mock's HTTP face and one handler per API operation.

`API` maps each path of Key Protect's v2 REST API (`<name>` stands for one path segment)
to its methods and handlers; `match` finds a path's entry. A handler reads what it needs
from a `Call` (service, instance, path arguments, query, body: `exchange`), calls
`byoklib.mock.service.KeyProtectService` and answers with `reply`. The WSGI app and the
access checks are in `app`.

No Werkzeug: its Request, Response and routing cost more than these few lines and
`exchange`'s on every call (`python -m byoklib bench`: a wrap must stay within 10 % of a
bare round trip), and the mock needs none of their generality. The routing ignores Host
and Upgrade, which have nothing to say about a path.
"""
from __future__ import annotations

from byoklib import protocol
from byoklib.errors import KeyProtectError
from byoklib.mock.http.exchange import ApiRequest, Call, Reply, reply
from byoklib.mock.service.model import collection
from byoklib.protocol import JSON, KEY_ACTION


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
