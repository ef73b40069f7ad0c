"""The cryptographic primitives of a secure import, as pure functions over bytes.

These are general on purpose: they do not enforce the protocol's sizes (12-byte nonce,
16/24/32-byte key material, 4096-bit token key). The layers that speak the protocol
(the client and the mock) do, so a notebook can wrap a wrong-sized key and watch the
service refuse it, and published test vectors of any size run through here unchanged.

No I/O, no clock, no state: everything random comes from `os.urandom` via `cryptography`.
The protocol's names and default sizes come from `byoklib.protocol`, the one module this
one imports.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .protocol import (
    IV_BYTES,
    KEY_MATERIAL_BITS,
    RSAES_OAEP_SHA_1,
    RSAES_OAEP_SHA_256,
    TAG_BYTES,
    TOKEN_KEY_BITS,
    TOKEN_PUBLIC_EXPONENT,
    WRAP_ALGORITHMS,
)


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
        iv = os.urandom(IV_BYTES)
    sealed = AESGCM(bytes(key_material)).encrypt(bytes(iv), bytes(nonce), None)
    return sealed, bytes(iv)


def decrypt_nonce(key_material: bytes, encrypted_nonce: bytes, iv: bytes) -> bytes:
    """Open an encrypted nonce; raises `NonceAuthenticationError` when the tag fails."""
    if len(encrypted_nonce) < TAG_BYTES:
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

def check_token_key_size(key, what: str) -> None:
    """Key Protect's import tokens are RSA-4096: ValueError naming `what` (an RSA public or
    private key) when it is another size."""
    if key.key_size != TOKEN_KEY_BITS:
        raise ValueError(f"{what} is RSA-{key.key_size}; import tokens are "
                         f"RSA-{TOKEN_KEY_BITS}")


def generate_rsa_private_key(bits: int = TOKEN_KEY_BITS) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=TOKEN_PUBLIC_EXPONENT, key_size=bits)


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
