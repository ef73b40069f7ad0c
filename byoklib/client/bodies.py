"""How the client writes a request: bodies, query strings and paths, as Key Protect reads
them and as IBM's clients send them."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from byoklib import primitives, protocol
from byoklib.protocol import POLICY


def ciphertext_body(ciphertext, aad) -> dict:
    if ciphertext is None:
        raise ValueError("ciphertext is required")
    return without_none({"ciphertext": b64(ciphertext), "aad": aad_list(aad)})


def aad_list(aad) -> list[str] | None:
    if aad is None:
        return None
    items = [aad] if isinstance(aad, str) else list(aad)
    if not all(isinstance(item, str) for item in items):
        raise TypeError("aad must be a string or a list of strings")
    return items


def b64(value) -> str | None:
    """bytes are encoded; strings are assumed to be base64 already (as the API takes them)."""
    if value is None or isinstance(value, str):
        return value
    return primitives.b64encode(bytes(value))


def date(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError("expiration_date must be an RFC 3339 string or an aware datetime")
    return protocol.rfc3339(value)


def query(params: dict | None) -> dict | None:
    """Drop None; booleans as true/false; lists (of states) comma-joined, as IBM's clients do."""
    if not params:
        return None
    query = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple, set)):
            value = ",".join(str(v) for v in value)
        query[name] = value
    return query


def prefer(prefer: str | None) -> dict:
    if not prefer:
        return {}
    return {protocol.PREFER_HEADER: prefer if prefer.startswith("return=")
            else f"return={prefer}"}


def policy_body(resource: dict) -> dict:
    return {"metadata": {"collectionType": POLICY, "collectionTotal": 1},
            "resources": [resource]}


def as_kwargs(fields: dict) -> dict:
    """The four secure-import fields as create_key/rotate keyword arguments."""
    return {"payload": fields["payload"], "encrypted_nonce": fields["encryptedNonce"],
            "iv": fields["iv"], "encryption_algorithm": fields["encryptionAlgorithm"]}


def key_path(key_id: str, *parts: str) -> str:
    if not key_id:
        raise ValueError("a key id (or alias) is required")
    return "/".join(("keys", quote(str(key_id), safe="")) + parts)


def base_url(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/api/v2")] if url.endswith("/api/v2") else url


SECRET_FIELDS = ("payload", "plaintext")   # key material, a DEK (base64)


def secrets_in(body) -> list[str]:
    """The key material a request body carries (a plain import's or rotation's `payload`,
    wrap's `plaintext`), so an error that repeats it can be withheld."""
    resources = body.get("resources") if isinstance(body, dict) else None
    objects = [body, *(resources if isinstance(resources, list) else [])]
    return [value for item in objects if isinstance(item, dict)
            for name in SECRET_FIELDS if isinstance(value := item.get(name), str)]


def without_none(mapping: dict) -> dict:
    return {k: v for k, v in mapping.items() if v is not None}
