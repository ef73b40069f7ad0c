"""The client's side of Key Protect's import-token protocol, without HTTP.

Two steps sit between "GET /api/v2/import_token" and "POST /api/v2/keys":

1. `ImportToken.from_response(body)` checks and parses the retrieved token: RFC 3339
   dates, the RSA public key (base64 of a `-----BEGIN PUBLIC KEY-----` PEM), and the
   12-byte nonce. Anything else is refused with a `ValueError` that says what was wrong,
   because a client that quietly accepted a malformed token would encrypt key material
   under a key nobody checked.
2. `prepare_secure_import(key_material, token)` seals the nonce with AES-GCM under the
   key material and wraps the material with RSAES-OAEP-SHA-256 under the token's key,
   giving the four request fields.

The primitives are deliberately general (any size in, any size out); the protocol's
sizes — 16/24/32-byte material, 12-byte nonce and IV, 4096-bit token key — are enforced
here, on the client's side, and separately by the service.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric import rsa

from byoklib import primitives
from byoklib.protocol import (
    IV_BYTES,
    KEY_MATERIAL_BYTES,
    NONCE_BYTES,
    PEM_PUBLIC_KEY_HEADER,
    RSAES_OAEP_SHA_256,
    parse_rfc3339,
)

REQUIRED_FIELDS = ("creationDate", "expirationDate", "payload", "nonce")


@dataclass(frozen=True)
class ImportToken:
    """A retrieved import token: when it was made and expires, how many retrievals
    are left, the token's RSA public key (PEM) and its raw 12-byte nonce.

    The repr shows sizes and the key's fingerprint, never the nonce or key bytes, so a
    token printed in a notebook or a log line gives nothing away and stays stable.
    """

    creation_date: datetime
    expiration_date: datetime
    max_allowed_retrievals: int | None
    remaining_retrievals: int | None
    public_key_pem: bytes = field(repr=False)
    nonce: bytes = field(repr=False)

    @classmethod
    def from_response(cls, body: dict) -> "ImportToken":
        """Parse the body of `GET /api/v2/import_token`; `ValueError` if it is not a token."""
        if not isinstance(body, dict):
            raise ValueError(f"an import token must be a JSON object, not {type(body).__name__}")
        missing = [name for name in REQUIRED_FIELDS if body.get(name) in (None, "")]
        if missing:
            raise ValueError(f"import token is missing {', '.join(missing)} "
                             "(was this the POST response? only GET carries payload and nonce)")
        pem = _parse_payload(body["payload"])
        return cls(
            creation_date=parse_rfc3339(body["creationDate"], "creationDate"),
            expiration_date=parse_rfc3339(body["expirationDate"], "expirationDate"),
            max_allowed_retrievals=_optional_int(body, "maxAllowedRetrievals"),
            remaining_retrievals=_optional_int(body, "remainingRetrievals"),
            public_key_pem=pem,
            nonce=_parse_nonce(body["nonce"]),
        )

    @functools.cached_property
    def public_key(self) -> rsa.RSAPublicKey:
        """The token's RSA public key as a `cryptography` object (parsed once)."""
        return primitives.load_public_key(self.public_key_pem)

    @property
    def key_size(self) -> int:
        return self.public_key.key_size

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the key's DER SubjectPublicKeyInfo, hex (same as openssl's)."""
        return primitives.public_key_fingerprint(self.public_key)

    def is_expired(self, now: datetime | None = None) -> bool:
        """True from the expiration instant on; `now` must be timezone-aware."""
        now = datetime.now(timezone.utc) if now is None else now
        if now.tzinfo is None:
            raise ValueError("now must be a timezone-aware datetime")
        return now >= self.expiration_date

    def __repr__(self) -> str:
        return (f"ImportToken(expires={self.expiration_date.isoformat()}, "
                f"remaining_retrievals={self.remaining_retrievals}/"
                f"{self.max_allowed_retrievals}, key=RSA-{self.key_size}, "
                f"fingerprint={self.fingerprint[:16]}…, nonce={len(self.nonce)} bytes)")


def prepare_secure_import(key_material: bytes, token: ImportToken | dict, *,
                          iv: bytes | None = None) -> dict[str, str]:
    """The four request fields of a secure import of `key_material` under `token`.

    Returns `{"payload", "encryptedNonce", "iv", "encryptionAlgorithm"}` as base64 strings
    ready for `POST /api/v2/keys` or `/actions/rotate`. `token` may also be a raw GET body.
    `iv` exists so test vectors can be reproduced; leave it None otherwise, since
    reusing an IV under the same key breaks GCM.
    """
    if isinstance(token, dict):
        token = ImportToken.from_response(token)
    material = _check_key_material(key_material)
    primitives.check_token_key_size(token.public_key, "the import token's key")
    if iv is not None and len(iv) != IV_BYTES:
        raise ValueError(f"iv must be {IV_BYTES} bytes, got {len(iv)}")
    encrypted_nonce, iv = primitives.encrypt_nonce(material, token.nonce, iv)
    payload = primitives.wrap_key_material(material, token.public_key, RSAES_OAEP_SHA_256)
    return {
        "payload": primitives.b64encode(payload),
        "encryptedNonce": primitives.b64encode(encrypted_nonce),
        "iv": primitives.b64encode(iv),
        "encryptionAlgorithm": RSAES_OAEP_SHA_256,
    }


def _check_key_material(key_material) -> bytes:
    if not isinstance(key_material, (bytes, bytearray, memoryview)):
        raise TypeError(f"key material must be bytes, not {type(key_material).__name__}")
    material = bytes(key_material)
    if len(material) not in KEY_MATERIAL_BYTES:
        raise ValueError(f"key material must be 16, 24 or 32 bytes (AES-128/192/256), "
                         f"got {len(material)}")
    return material


def _parse_payload(payload) -> bytes:
    """base64 → PEM; must be a PKIX `PUBLIC KEY` block holding an RSA key, like Go's
    `x509.ParsePKIXPublicKey` requires. The error never echoes the payload."""
    try:
        pem = primitives.b64decode(payload)
    except (ValueError, TypeError):
        raise ValueError("import token payload is not valid base64") from None
    if not pem.lstrip().startswith(PEM_PUBLIC_KEY_HEADER):
        if pem.lstrip().startswith(b"-----BEGIN RSA PUBLIC KEY-----"):
            raise ValueError("import token payload is a PKCS#1 'RSA PUBLIC KEY' PEM; "
                             "Key Protect sends a PKIX '-----BEGIN PUBLIC KEY-----' PEM")
        raise ValueError("import token payload is not a PEM '-----BEGIN PUBLIC KEY-----' "
                         "block (DER or other data?)")
    try:
        primitives.load_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"import token payload is not an RSA public key: {exc}") from None
    return pem


def _parse_nonce(nonce) -> bytes:
    try:
        raw = primitives.b64decode(nonce)
    except (ValueError, TypeError):
        raise ValueError("import token nonce is not valid base64") from None
    if len(raw) != NONCE_BYTES:
        raise ValueError(f"import token nonce must be {NONCE_BYTES} bytes, got {len(raw)}")
    return raw


def _optional_int(body: dict, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)
