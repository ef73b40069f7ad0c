"""Every wire fact of Key Protect's import-token protocol, once.

Sizes, algorithm names, media types, header names, the bounds of the token policy and the
RFC 3339 form of dates. Both wings read them from here; the primitives stay general and do
not enforce them. This module imports nothing of byoklib.
Sources: https://cloud.ibm.com/docs/key-protect?topic=key-protect-importing-keys and
https://cloud.ibm.com/apidocs/key-protect.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

API_PREFIX = "/api/v2/"

# --- sizes ---------------------------------------------------------------------------------
NONCE_BYTES = 12                  # the token's nonce
IV_BYTES = 12                     # the AES-GCM IV of the sealed nonce
TAG_BYTES = 16                    # the GCM tag appended to the sealed nonce
SEALED_NONCE_BYTES = NONCE_BYTES + TAG_BYTES
KEY_MATERIAL_BYTES = (16, 24, 32)                 # AES-128/192/256 root key material
KEY_MATERIAL_BITS = tuple(8 * size for size in KEY_MATERIAL_BYTES)
CBC_IV_BYTES = 16                 # Hyper Protect Crypto Services' AES-CBC seal: one block
TOKEN_KEY_BITS = 4096             # the import token's RSA key
TOKEN_PUBLIC_EXPONENT = 65537
WRAPPED_KEY_BYTES = TOKEN_KEY_BITS // 8

# --- algorithms ----------------------------------------------------------------------------
RSAES_OAEP_SHA_256 = "RSAES_OAEP_SHA_256"
RSAES_OAEP_SHA_1 = "RSAES_OAEP_SHA_1"   # Hyper Protect Crypto Services only, not Key Protect
WRAP_ALGORITHMS = (RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1)
PEM_PUBLIC_KEY_HEADER = b"-----BEGIN PUBLIC KEY-----"


@dataclass(frozen=True)
class Bounds:
    """An inclusive integer range with the service's default."""
    low: int
    high: int
    default: int

    def __contains__(self, value) -> bool:
        return self.low <= value <= self.high


TOKEN_EXPIRATION = Bounds(300, 86400, 600)        # seconds
TOKEN_RETRIEVALS = Bounds(1, 500, 1)              # maxAllowedRetrievals

# --- rules of root keys --------------------------------------------------------------------
GENERATED_DEK_BYTES = 32          # wrap without a plaintext: the DEK the service makes
GENERATED_KEY_BYTES = 32          # a key the service generates (no payload): AES-256
ROTATION_INTERVAL_SECONDS = 3600  # at most one rotation of a key per hour

# --- media types and headers ---------------------------------------------------------------
JSON = "application/json"
COLLECTION = "application/vnd.ibm.collection+json"
KEY = "application/vnd.ibm.kms.key+json"
KEY_VERSION = "application/vnd.ibm.kms.key.version+json"
POLICY = "application/vnd.ibm.kms.policy+json"
ALIAS = "application/vnd.ibm.kms.alias+json"
KEY_ACTION = "application/vnd.ibm.kms.key_action+json"
ERROR = "application/vnd.ibm.kms.error+json"
KEY_RING = "application/vnd.ibm.kms.key_ring+json"
REGISTRATION = "application/vnd.ibm.kms.registration+json"
VENDOR_PREFIX = "application/vnd.ibm."


def action_type(action: str) -> str:
    """The request media type IBM's clients send for a key action, e.g. wrap."""
    return f"application/vnd.ibm.kms.key_action_{action}+json"


AUTHORIZATION_HEADER = "Authorization"
INSTANCE_HEADER = "Bluemix-Instance"
KEY_RING_HEADER = "X-Kms-Key-Ring"
PREFER_HEADER = "Prefer"
PREFER_REPRESENTATION = "return=representation"
DIAGNOSIS_HEADER = "Byoklib-Diagnosis"     # byoklib's own: the import doctor's answer


def bearer_token(value: str) -> str:
    """The token of an Authorization value, with or without its `Bearer ` scheme."""
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else value


def authorization(token: str) -> str:
    """The Authorization value for a bearer token given with or without its scheme."""
    return f"Bearer {bearer_token(token)}"


# --- dates: RFC 3339 -----------------------------------------------------------------------

def rfc3339(moment: datetime | None) -> str | None:
    """RFC 3339 with second precision and `Z`, as Key Protect prints dates."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# RFC 3339's date-time only, narrower than `datetime.fromisoformat` (week dates, no
# separators, a space, `+0000`): those would pass here and fail at Key Protect.
_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                      r"(\.[0-9]+)?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))")


def parse_rfc3339(value, name: str = "date") -> datetime:
    """An aware datetime from an RFC 3339 date-time such as `2030-01-31T12:00:00Z` or
    `2030-01-31T14:00:00.5+02:00`; raises `ValueError` naming `name` for anything else,
    including a leap second (`23:59:60`, which `datetime` cannot hold) and a date that has
    no UTC value before year 10000."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an RFC 3339 string, not {type(value).__name__}")
    match = _RFC3339.fullmatch(value)
    if match is None and _RFC3339.fullmatch(value + "Z"):
        raise ValueError(f"{name} has no time zone (RFC 3339 needs Z or an offset): {value!r}")
    if match is None:
        raise ValueError(f"{name} is not an RFC 3339 date-time like 2030-01-31T12:00:00Z: "
                         f"{value!r}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        offset = timedelta(hours=int(off_h), minutes=int(off_m)) if not zulu else timedelta(0)
        zone = timezone(-offset if sign == "-" else offset)
        micro = int((fraction[1:] + "00000")[:6]) if fraction else 0
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute),
                          int(second), micro, zone)
        moment.astimezone(timezone.utc)   # 9999-12-31T23:59:59-01:00 has no UTC here
        return moment
    except (ValueError, OverflowError):   # month 13, 25 o'clock, a day's offset, year 10000
        raise ValueError(f"{name} is not a valid date: {value!r}") from None
