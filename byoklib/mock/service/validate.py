"""Checks of request values. Each raises a 400 KeyProtectError naming the field at fault.

The service validates a whole request with these before it changes anything, so a
refused request leaves no trace. "errors #N" cites example N of
https://cloud.ibm.com/docs/key-protect?topic=key-protect-error-messages.
"""
from __future__ import annotations

from datetime import datetime

from byoklib.errors import KeyProtectError
from byoklib.primitives import b64decode
from byoklib.protocol import parse_rfc3339


def field_error(name: str, must_be: str, code: str = "INVALID_FIELD_ERR",
                kind: str = "field") -> KeyProtectError:
    noun = "query_param" if kind == "query_param" else "field"
    return KeyProtectError.of(code, f"The {noun} '{name}' must be: {must_be}", target=(kind, name))


def bad_body(message: str, target: str | None = None) -> KeyProtectError:
    return KeyProtectError.of("BAD_BODY_ERR", message,
                              target=("field", target) if target else None)


def obj(body, what: str = "body") -> dict:
    """A JSON object; `None` (no body, or `null`) becomes `{}`."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_body(f"The {what} must be a JSON object")
    return body


def integer(body: dict, name: str, low: int, high: int, default: int | None = None,
            kind: str = "field") -> int | None:
    """An integer in [low, high]; JSON numbers like 600.0 count, booleans do not."""
    value = body.get(name)
    if value is None:
        return default
    if not _is_integral(value) or not low <= value <= high:
        raise field_error(name, f"an integer from {low} to {high}", kind=kind)
    return int(value)


def _is_integral(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False   # bool is an int subclass in Python, not a number in JSON
    return value == value and abs(value) != float("inf") and value == int(value)


def boolean(body: dict, name: str, default: bool | None = None) -> bool | None:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise field_error(name, "a boolean (true or false)")
    return value


def text(body: dict, name: str, low: int, high: int, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise field_error(name, f"a string of {low} to {high} characters")
        return None
    if not isinstance(value, str) or not low <= len(value) <= high \
            or any(ord(c) < 32 for c in value):
        raise field_error(name, f"a string of {low} to {high} characters")
    return value


def base64_field(body: dict, name: str, required: bool = False) -> bytes | None:
    value = body.get(name)
    if value is None:
        if required:
            raise field_error(name, "a base64 encoded value")
        return None
    if not isinstance(value, str) or not value:
        raise field_error(name, "a base64 encoded value")
    try:
        return b64decode(value)
    except ValueError:
        raise field_error(name, "a base64 encoded value") from None


def string_list(body: dict, name: str, max_items: int, max_len: int) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > max_items or not all(
            isinstance(v, str) and len(v) <= max_len for v in value):
        raise field_error(name, f"a list of at most {max_items} strings of at most "
                                f"{max_len} characters")
    return list(value)


def tags(body: dict) -> list[str]:
    """Up to 30 tags of up to 30 characters, without the characters IBM's models forbid
    ("angled brackets, comma, colon, ampersand, and vertical pipe")."""
    given = string_list(body, "tags", 30, 30) or []
    if any(set(tag) & set("<>,:&|") for tag in given):
        raise field_error("tags", "tags without < > , : & |")
    return given


def future_date(body: dict, name: str, now: datetime) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        moment = parse_rfc3339(value, name).replace(microsecond=0)   # as it will be stored
    except ValueError:
        moment = None
    if moment is None or moment <= now:
        raise field_error(name, "an RFC 3339 date in the future")
    return moment


def envelope(body, collection_type: str, resources_code: str = "BAD_BODY_ERR") -> dict:
    """The one resource of a `{metadata, resources}` request body."""
    return envelope_resources(body, collection_type, resources_code, most=1)[0]


def envelope_resources(body, collection_type: str, resources_code: str = "BAD_BODY_ERR",
                       most: int | None = None) -> list[dict]:
    """The resources of a `{metadata, resources}` request body: at least one, as many as
    `collectionTotal` says, and no more than `most` (else `resources_code`)."""
    body = obj(body)
    metadata, resources = body.get("metadata"), body.get("resources")
    if not isinstance(metadata, dict) or not metadata:
        raise bad_body("CollectionMetadata is empty or missing", "metadata")
    if metadata.get("collectionType") != collection_type:
        raise bad_body(f"The collectionType must be {collection_type}", "collectionType")
    total = metadata.get("collectionTotal")
    if isinstance(total, bool) or not isinstance(total, int):
        raise bad_body("The collectionTotal must be an integer", "collectionTotal")
    if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
        raise bad_body("The resources must be a list of JSON objects", "resources")
    # too many resources is said before a wrong total (errors #4: two keys under
    # collectionTotal 1 -> BAD_BODY_ERR "Only creation of one key per request is supported")
    if most is not None and len(resources) > most:
        raise KeyProtectError.of(resources_code, "Only one resource per request is supported"
                                 if most == 1 else f"At most {most} resources per request "
                                 "are supported", target=("field", "resources"))
    if total != len(resources):
        raise KeyProtectError.of("COLLECTION_TOTAL_MISMATCH_ERR",
                                 target=("field", "collectionTotal"))
    if not resources:
        raise bad_body("The request must hold a resource", "resources")
    return resources


def only_fields(value: dict, allowed: tuple[str, ...], what: str) -> None:
    """Unknown fields are refused, as the service does (errors #4: `json: unknown
    field "extra_field"` -> BAD_BODY_ERR), so a typo cannot pass silently."""
    unknown = sorted(set(value) - set(allowed))
    if unknown:   # named as sent, cut as the filter's terms are: it is the client's own text
        name = unknown[0][:40]
        raise bad_body(f"Unknown field {name!r} in {what}", name)


# --- query parameters (strings from a URL, or values from a Python caller) -------------

def query_int(value, name: str, low: int, high: int, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        value = _digits(value)   # "-1", "1.5", "x", "²" all fail below
    if not _is_integral(value) or not low <= value <= high:
        raise field_error(name, f"an integer from {low} to {high}",
                          code="INVALID_QUERY_PARAM_ERR", kind="query_param")
    return int(value)


def query_bool(value, name: str, default: bool | None = None) -> bool | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise field_error(name, "true or false", code="INVALID_QUERY_PARAM_ERR", kind="query_param")


def query_states(value, allowed: tuple[int, ...], default: tuple[int, ...]) -> set[int]:
    """`state=1,2` (or a list) -> {1, 2}; every item must be a known state."""
    if value is None or value == "" or value == []:
        return set(default)
    items = value.split(",") if isinstance(value, str) else list(value)
    states = set()
    for item in items:
        item = item.strip() if isinstance(item, str) else item
        number = _digits(item) if isinstance(item, str) else item
        if not _is_integral(number) or int(number) not in allowed:
            raise field_error("state", f"a comma-separated list of {allowed}",
                              code="INVALID_QUERY_PARAM_ERR", kind="query_param")
        states.add(int(number))
    return states


def _digits(text: str) -> int:
    """ASCII digits only (str.isdigit accepts "²", which int() refuses); -1 otherwise."""
    return int(text) if text and len(text) <= 12 and all("0" <= c <= "9" for c in text) else -1
