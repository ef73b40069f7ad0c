"""The cryptographic primitives of a secure import, as pure functions over bytes.

These are general on purpose: they do not enforce the protocol's sizes (12-byte nonce,
16/24/32-byte key material, 4096-bit token key). The layers that speak the protocol
(`secure_import`, `service`) do, so a notebook can wrap a wrong-sized key and watch the
service refuse it, and published test vectors of any size run through here unchanged.

No I/O, no clock, no state: everything random comes from `os.urandom` via `cryptography`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from datetime import datetime, timedelta, timezone

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RSAES_OAEP_SHA_256 = "RSAES_OAEP_SHA_256"
RSAES_OAEP_SHA_1 = "RSAES_OAEP_SHA_1"  # Hyper Protect Crypto Services only, not Key Protect
WRAP_ALGORITHMS = (RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1)
KEY_MATERIAL_BITS = (128, 192, 256)
GCM_IV_BYTES = 12
GCM_TAG_BYTES = 16


class NonceAuthenticationError(ValueError):
    """The GCM tag did not verify: wrong key material, wrong IV, or altered bytes."""


class UnwrapError(ValueError):
    """RSA-OAEP decryption failed: wrong private key, wrong hash, or altered ciphertext."""


# --- key material -------------------------------------------------------------------

def generate_key_material(bits: int = 256) -> bytes:
    """Fresh AES key material from the operating system's CSPRNG (128, 192 or 256 bits)."""
    if bits not in KEY_MATERIAL_BITS:
        raise ValueError(f"bits must be one of {KEY_MATERIAL_BITS}, not {bits!r}")
    return os.urandom(bits // 8)


# --- the nonce: AES-GCM ---------------------------------------------------------------

def encrypt_nonce(key_material: bytes, nonce: bytes, iv: bytes | None = None) -> tuple[bytes, bytes]:
    """Seal the raw nonce bytes with AES-GCM under the key material, no AAD.

    Returns `(ciphertext || 16-byte tag, iv)`; a 12-byte IV is generated when not given.
    """
    if iv is None:
        iv = os.urandom(GCM_IV_BYTES)
    sealed = AESGCM(bytes(key_material)).encrypt(bytes(iv), bytes(nonce), None)
    return sealed, bytes(iv)


def decrypt_nonce(key_material: bytes, encrypted_nonce: bytes, iv: bytes) -> bytes:
    """Open an encrypted nonce; raises `NonceAuthenticationError` when the tag fails."""
    if len(encrypted_nonce) < GCM_TAG_BYTES:
        raise NonceAuthenticationError("encrypted nonce is shorter than a GCM tag")
    try:
        return AESGCM(bytes(key_material)).decrypt(bytes(iv), bytes(encrypted_nonce), None)
    except InvalidTag:
        raise NonceAuthenticationError("GCM tag did not verify") from None


# --- the key material: RSA-OAEP -------------------------------------------------------

def oaep_padding(algorithm: str = RSAES_OAEP_SHA_256) -> padding.OAEP:
    """OAEP with the same hash for the digest and MGF1, and an empty label."""
    if algorithm == RSAES_OAEP_SHA_256:
        digest = hashes.SHA256()
    elif algorithm == RSAES_OAEP_SHA_1:
        digest = hashes.SHA1()
    else:
        raise ValueError(f"unsupported encryption algorithm {algorithm!r}; "
                         f"expected one of {WRAP_ALGORITHMS}")
    return padding.OAEP(mgf=padding.MGF1(algorithm=digest), algorithm=digest, label=None)


def wrap_key_material(key_material: bytes, public_key, algorithm: str = RSAES_OAEP_SHA_256) -> bytes:
    """Encrypt key material with RSAES-OAEP under `public_key` (PEM bytes/str or a key object)."""
    return load_public_key(public_key).encrypt(bytes(key_material), oaep_padding(algorithm))


def unwrap_key_material(ciphertext: bytes, private_key, algorithm: str = RSAES_OAEP_SHA_256) -> bytes:
    """Decrypt RSAES-OAEP ciphertext; raises `UnwrapError` when it does not decrypt."""
    key = load_private_key(private_key)
    pad = oaep_padding(algorithm)
    try:
        return key.decrypt(bytes(ciphertext), pad)
    except ValueError:
        raise UnwrapError("RSA-OAEP decryption failed") from None


# --- keys, PEM and base64 ---------------------------------------------------------------

def generate_rsa_private_key(bits: int = 4096) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def load_public_key(key) -> rsa.RSAPublicKey:
    """An RSA public key from PEM (bytes or str), DER bytes, or a key object."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key
    data = key.encode("ascii") if isinstance(key, str) else bytes(key)
    if data.lstrip().startswith(b"-----BEGIN"):
        loaded = serialization.load_pem_public_key(data)
    else:
        loaded = serialization.load_der_public_key(data)
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return loaded


def load_private_key(key) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (bytes or str, unencrypted) or a key object."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    data = key.encode("ascii") if isinstance(key, str) else bytes(key)
    loaded = serialization.load_pem_private_key(data, password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return loaded


def public_key_pem(key) -> bytes:
    """PEM text of the PKIX (SubjectPublicKeyInfo) public key, `-----BEGIN PUBLIC KEY-----`."""
    return load_public_key(key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_fingerprint(key) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, hex: the same as
    `openssl pkey -pubin -outform DER | openssl dgst -sha256`."""
    der = load_public_key(key).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def b64encode(data: bytes) -> str:
    """Standard base64 with padding, as Key Protect's JSON fields use."""
    return base64.b64encode(bytes(data)).decode("ascii")


def b64decode(text: str | bytes) -> bytes:
    """Strict standard base64: raises `ValueError` on any character outside the alphabet."""
    if isinstance(text, str):
        try:
            text = text.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("base64 text must be ASCII") from None
    if len(text) % 4:
        raise ValueError("invalid base64: length is not a multiple of 4")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64: {exc}") from None


def token_payload_from_public_key(key) -> str:
    """The import token's `payload`: base64 of the PEM text of the public key."""
    return b64encode(public_key_pem(key))


def public_key_from_token_payload(payload: str) -> rsa.RSAPublicKey:
    """Inverse of `token_payload_from_public_key`: base64 → PEM → key."""
    return load_public_key(b64decode(payload))


# --- dates on the wire: RFC 3339 ----------------------------------------------------------

# RFC 3339's date-time only, which is narrower than what `datetime.fromisoformat` takes (week
# dates, no separators, a space, `+0000`): those would pass here and fail at Key Protect.
_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                      r"(\.[0-9]+)?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))")


def parse_rfc3339(value, name: str = "date") -> datetime:
    """An aware datetime from an RFC 3339 date-time such as `2030-01-31T12:00:00Z` or
    `2030-01-31T14:00:00.5+02:00`; raises `ValueError` naming `name` for anything else,
    including a leap second (`23:59:60`, which RFC 3339 allows and `datetime` cannot hold)
    and a date that has no UTC value before year 10000."""
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
