"""How the client reads Key Protect responses: the one error parser, and the readers of
successful bodies (enveloped `resources`, bare objects, base64 fields).

Imports only the foundation; knows nothing of the mock.
"""
from __future__ import annotations

import json
import re
from http import HTTPStatus

import requests

from byoklib import primitives
from byoklib.errors import KeyProtectError
from byoklib.protocol import DIAGNOSIS_HEADER

UNEXPECTED_RESPONSE = "UNEXPECTED_RESPONSE"  # a 2xx whose body is not what the API promises
MAX_ERROR_BODY_BYTES = 64 * 1024
_CODE_IN_ERROR_MSG = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*$")


# --- the one error parser -------------------------------------------------------------------

def error_from_response(response: requests.Response, withhold=()) -> KeyProtectError:
    """A `KeyProtectError` for any non-2xx response.

    Key Protect bodies give `resources[0].errorMsg` and `reasons[0]` (code, message,
    target); keys are matched case-insensitively, as IBM's Go client does. Without reasons
    the code comes from the "(CODE)" that ends errorMsg, then IAM's `errorCode`, then
    UNAUTHORIZED_ERR for a 401 with only an errorMsg (IBM's error-message page), then
    `HTTP_<status>`. A body that is not JSON is described, never quoted. byoklib's mock
    adds a `Byoklib-Diagnosis: CODE: sentence` header to some refusals (the import
    doctor); it is kept as `diagnosis` (None when absent, as from the real service).
    An answer that repeats a secret of `withhold` (the bearer token, an API key, key
    material the request carried) anywhere in its body or headers, whole or any
    SECRET_PIECE characters of it in any case, keeps only its status and a code that does
    not hold one: nothing of its text. (Secrets of fewer than 8 characters are test values,
    which any text may hold by chance: "t" would withhold every answer.)
    """
    status = response.status_code
    # a Key Protect error body is a few hundred bytes: a larger one is described, not
    # parsed (nor walked for nesting deep enough to exhaust Python's recursion)
    body = read_json(response) if len(response.content) <= MAX_ERROR_BODY_BYTES else None
    body = body if isinstance(body, dict) else {}
    resource = _first(_field(body, "resources"))
    error_msg = _text(_field(resource, "errorMsg"))
    reason = _first(_field(resource, "reasons"))
    code = (_text(_field(reason, "code")) or _code_in(error_msg)
            or _text(_field(body, "errorCode")) or _bare_401(status, error_msg)
            or f"HTTP_{status}")
    message = (_text(_field(reason, "message")) or error_msg
               or _text(_field(body, "errorMessage")) or _text(_field(body, "message"))
               or _describe(response))
    secrets = [secret for secret in withhold if secret and len(secret) >= 8]
    if secrets and _repeats(response, body, secrets):
        if _holds_a_piece([code], secrets):
            code = f"HTTP_{status}"
        said = f"{code} (the answer repeated a credential: its text is withheld)"
        return KeyProtectError(status, code, said, None, said)
    error = KeyProtectError(status, code, message, _target(_field(reason, "target")),
                            error_msg or message)
    error.diagnosis = _text(response.headers.get(DIAGNOSIS_HEADER))
    return error


def _repeats(response: requests.Response, body: dict, secrets: list[str]) -> bool:
    """Whether the body, as sent or as parsed (JSON may write a character as a \\u
    escape), or a header value holds one of `secrets`: looked for before any field is cut
    to length, so no part of one can slip through a cut."""
    texts = [response.content.decode("utf-8", "replace"), json.dumps(body, ensure_ascii=False)]
    texts += [str(value) for value in response.headers.values()]
    return _holds_a_piece(texts, secrets)


SECRET_PIECE = 16   # an echo cut short, or upper-cased, still gives a secret away


def _holds_a_piece(texts: list[str], secrets: list[str]) -> bool:
    texts = [text.lower() for text in texts]
    for secret in secrets:
        secret = secret.lower()
        size = min(len(secret), SECRET_PIECE)
        pieces = {secret[i:i + size] for i in range(len(secret) - size + 1)}
        if any(piece in text for text in texts for piece in pieces):
            return True
    return False


def _bare_401(status: int, error_msg: str | None) -> str | None:
    """Key Protect answers 401 with `errorMsg` alone (IBM's error-message page): that is
    UNAUTHORIZED_ERR."""
    return "UNAUTHORIZED_ERR" if status == 401 and error_msg else None


def _first(items) -> dict:
    """The first object of a JSON list, or {} when there is none."""
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}


def _field(mapping: dict, name: str):
    if name in mapping:
        return mapping[name]
    lowered = name.lower()
    return next((v for k, v in mapping.items() if str(k).lower() == lowered), None)


def _text(value, limit: int = 500) -> str | None:
    return value[:limit] if isinstance(value, str) and value.strip() else None


def _code_in(error_msg: str | None) -> str | None:
    match = _CODE_IN_ERROR_MSG.search(error_msg or "")
    return match.group(1) if match else None


def _target(target) -> tuple[str, str] | None:
    if isinstance(target, dict) and _field(target, "type") and _field(target, "name"):
        return str(_field(target, "type")), str(_field(target, "name"))
    return None


def _describe(response: requests.Response) -> str:
    try:
        phrase = HTTPStatus(response.status_code).phrase
    except ValueError:
        phrase = "Error"
    kind = response.headers.get("Content-Type", "no content type").split(";")[0]
    return (f"{phrase}: the response is not a Key Protect error body "
            f"({kind}, {len(response.content)} bytes)")


# --- successful bodies -------------------------------------------------------------------------

def read_json(response: requests.Response):
    if not response.content:
        return None
    try:
        return response.json()
    except (ValueError, RecursionError):   # not JSON, or nested deeper than Python reads
        return None


def read_resource(response: requests.Response) -> dict | None:
    """`resources[0]` of an enveloped body, the body itself when it is a bare object
    (import tokens, wrap), None when there is no body (204)."""
    if not response.content or response.status_code == 204:
        return None
    body = read_json(response)
    if isinstance(body, dict) and isinstance(body.get("resources"), list):
        resources = _objects(response, body["resources"])
        return resources[0] if resources else None
    if isinstance(body, dict):
        return body
    raise KeyProtectError(response.status_code, UNEXPECTED_RESPONSE,
                          "the response body is not a JSON object")


def read_resources(response: requests.Response) -> list[dict]:
    body = read_json(response)
    if not isinstance(body, dict):
        raise KeyProtectError(response.status_code, UNEXPECTED_RESPONSE,
                              "the response body is not a JSON object")
    return _objects(response, body.get("resources") or [])


def _objects(response: requests.Response, resources) -> list[dict]:
    if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
        raise KeyProtectError(response.status_code, UNEXPECTED_RESPONSE,
                              "the response's resources are not a list of JSON objects")
    return list(resources)


def decode_fields(response: requests.Response, result: dict) -> dict:
    decoded = dict(result)
    for name in ("plaintext", "ciphertext"):
        if isinstance(decoded.get(name), str):
            try:
                decoded[name] = primitives.b64decode(decoded[name])
            except ValueError:
                raise KeyProtectError(response.status_code, UNEXPECTED_RESPONSE,
                                      f"the response field {name} is not base64") from None
    return decoded
