"""The import doctor: when a secure import or rotation is refused for a cryptographic reason,
name the mistake that was made.

The mock holds the token's private key and nonce, so it can try the refused request under
the readings of the usual mistakes (OAEP with SHA-1, the material as text, the nonce's base64
text sealed, a replaced token, ...) and say which one makes it verify. The error body stays the
real service's; the diagnosis travels beside it (the HTTP face sends it as a
`Byoklib-Diagnosis` header). This is byoklib's own feature: no real service or other mock has it.

Why it is no decryption oracle: a reading is named only when, under it, the request proves
possession of the material (the encrypted nonce opens to the token's nonce), which an attacker
holding someone else's payload cannot do. The one answer without that proof,
NONCE_OTHER_KEY, is given only where the plain answer (INCORRECT_NONCE_IV_ERR after a payload
that decrypted to a right-sized key) already says as much. A diagnosis never contains material,
the nonce or anything derived from the private key, and it costs at most five RSA decryptions
beside the service's own (four readings under the token's key, one under the replaced
token's), each in `cryptography`; the PKCS#1 v1.5 reading only where OpenSSL rejects bad
blocks implicitly (3.2 and later).
"""
from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.backends.openssl.backend import backend
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from byoklib.protocol import CBC_IV_BYTES, IV_BYTES, KEY_MATERIAL_BYTES, NONCE_BYTES, TAG_BYTES


@dataclass(frozen=True)
class Diagnosis:
    code: str
    sentence: str

    def __str__(self) -> str:
        return f"{self.code}: {self.sentence}"


# What each code means, in one sentence a learner can act on.
SENTENCES = {
    "OAEP_SHA1": "the key material was wrapped with RSA-OAEP using SHA-1 (openssl's default); "
                 "Key Protect needs SHA-256 for the digest and MGF1 "
                 "(openssl pkeyutl -pkeyopt rsa_oaep_md:sha256).",
    "OAEP_MGF1_SHA1": "the key material was wrapped with RSA-OAEP-SHA-256 but MGF1 with SHA-1 "
                      "(Java's default for OAEPWithSHA-256AndMGF1Padding); use MGF1-SHA-256 "
                      "(OAEPParameterSpec with MGF1ParameterSpec.SHA256).",
    "PKCS1_V15": "the key material was wrapped with RSA PKCS#1 v1.5 padding; Key Protect needs "
                 "RSAES-OAEP with SHA-256.",
    "MATERIAL_NOT_RAW": "the wrapped key material is text (base64 or hex, or with a trailing "
                        "newline), not the raw 16, 24 or 32 bytes; decode it before wrapping "
                        "(base64 -d, xxd -r -p) and never wrap what echo printed.",
    "NONCE_AS_TEXT": "the nonce's base64 text was sealed instead of the 12 bytes it decodes to; "
                     "base64-decode the token's nonce before encrypting it.",
    "NONCE_FROM_OLD_TOKEN": "the nonce sealed belongs to an import token that has since been "
                            "replaced; retrieve the current token and seal its nonce.",
    "PAYLOAD_FOR_OLD_TOKEN": "the key material was wrapped under the public key of an import "
                             "token that has since been replaced; retrieve the current token "
                             "and wrap under its key.",
    "TAG_MISSING": "the encrypted nonce is the AES-GCM ciphertext without its 16-byte tag; send "
                   "ciphertext and tag together (28 bytes, base64).",
    "IV_NOT_BASE64": "the IV's characters themselves were used as the GCM IV and sent as they "
                     "are (as IBM's Go client does when given an IV string); let the tool make "
                     "the IV and send base64 of its 12 bytes.",
    "NONCE_CBC": "the nonce was encrypted with AES-CBC (the Hyper Protect Crypto Services "
                 "option, -c/--cbc); Key Protect needs AES-GCM.",
    "NONCE_WITH_AAD": "the nonce's GCM ciphertext is right but its tag is not: it was sealed "
                      "with additional authenticated data; seal it with no AAD.",
    "NONCE_OTHER_KEY": "the nonce was not sealed under the key material in the payload (with "
                       "this IV); seal it with the same material you wrap.",
}


@dataclass(frozen=True)
class TokenSecrets:
    """What the HSM knows of one import token: its private key and its nonce."""
    private_key: rsa.RSAPrivateKey
    nonce: bytes

    def __repr__(self) -> str:
        return "TokenSecrets(<redacted>)"


@dataclass(frozen=True)
class Attempt:
    """The refused request's fields: base64-decoded bytes, and the IV as it was sent."""
    payload: bytes
    encrypted_nonce: bytes
    iv: bytes
    iv_text: str = ""

    def __repr__(self) -> str:
        return (f"Attempt(payload={len(self.payload)} bytes, encrypted_nonce="
                f"{len(self.encrypted_nonce)} bytes, iv={len(self.iv)} bytes)")


def diagnose(attempt: Attempt, current: TokenSecrets, previous: TokenSecrets | None = None,
             refused_with: str = "INCORRECT_NONCE_IV_ERR") -> Diagnosis | None:
    """The mistake that explains the refusal of `attempt` under the current token (with the
    reason code `refused_with`), or None when no known mistake does."""
    found = _under(attempt, current, previous)
    if found == "NONCE_OTHER_KEY" and refused_with != "INCORRECT_NONCE_IV_ERR":
        found = None   # named only where the plain answer already says as much
    if found is None and previous is not None:
        material = _unwrap(attempt.payload, previous.private_key, "OAEP_SHA256")
        if material is not None and _proves(material, attempt, current, previous):
            found = "PAYLOAD_FOR_OLD_TOKEN"
    return None if found is None else Diagnosis(found, SENTENCES[found])


def _under(attempt: Attempt, current: TokenSecrets, previous: TokenSecrets | None) -> str | None:
    material = _unwrap(attempt.payload, current.private_key, "OAEP_SHA256")
    if material is None:
        readings = ("OAEP_SHA1", "OAEP_MGF1_SHA1") + (("PKCS1_V15",) if V15_READING else ())
        for name in readings:   # a wrong padding, proven
            other = _unwrap(attempt.payload, current.private_key, name)
            if other is not None and _proves(other, attempt, current, previous):
                return name
        return None
    if len(material) not in KEY_MATERIAL_BYTES:
        raw = _raw_from_text(material)
        return "MATERIAL_NOT_RAW" if raw and _proves(raw, attempt, current, previous) else None
    return _nonce_mistake(material, attempt, current, previous)


def _nonce_mistake(material: bytes, attempt: Attempt, current: TokenSecrets,
                   previous: TokenSecrets | None) -> str | None:
    opened = _gcm_open(material, attempt.iv, attempt.encrypted_nonce)
    if opened is not None:
        if _same(opened, base64.b64encode(current.nonce)):
            return "NONCE_AS_TEXT"
        if previous is not None and _same(opened, previous.nonce):
            return "NONCE_FROM_OLD_TOKEN"
        return None
    if len(attempt.iv) == IV_BYTES:
        expected = AESGCM(material).encrypt(attempt.iv, current.nonce, None)
        body = expected[:NONCE_BYTES]
        if _same(attempt.encrypted_nonce, body):
            return "TAG_MISSING"
        if len(attempt.encrypted_nonce) == len(expected) and _same(attempt.encrypted_nonce[:NONCE_BYTES], body):
            return "NONCE_WITH_AAD"
    if _cbc_open(material, attempt.iv, attempt.encrypted_nonce) == current.nonce:
        return "NONCE_CBC"
    raw_iv = attempt.iv_text.encode("utf-8", "replace")
    if len(raw_iv) == IV_BYTES and raw_iv != attempt.iv and _same(
            _gcm_open(material, raw_iv, attempt.encrypted_nonce) or b"", current.nonce):
        return "IV_NOT_BASE64"
    return "NONCE_OTHER_KEY"


def _proves(material: bytes, attempt: Attempt, current: TokenSecrets,
            previous: TokenSecrets | None) -> bool:
    """Under this material, does the encrypted nonce open to a token's nonce?"""
    if len(material) not in KEY_MATERIAL_BYTES:
        return False
    opened = _gcm_open(material, attempt.iv, attempt.encrypted_nonce)
    nonces = [current.nonce] + ([previous.nonce] if previous is not None else [])
    return opened is not None and any(_same(opened, nonce) for nonce in nonces)


# --- the readings of a payload ----------------------------------------------------------------

_PADDINGS = {
    "OAEP_SHA256": lambda: padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
    "OAEP_SHA1": lambda: padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None),
    "OAEP_MGF1_SHA1": lambda: padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA256(), None),
    # OpenSSL 3.2+ answers a bad v1.5 block with a random message (implicit rejection); the
    # proof under the nonce that every reading must pass tells the two apart.
    "PKCS1_V15": padding.PKCS1v15,
}
# Without implicit rejection a v1.5 decryption of attacker-chosen blocks is Bleichenbacher's
# oracle (in its timing, if nothing else): that reading is tried only where OpenSSL has it.
V15_READING = backend.openssl_version_number() >= 0x30200000


def _unwrap(payload: bytes, private_key: rsa.RSAPrivateKey, reading: str) -> bytes | None:
    """The payload decrypted under one reading of its padding, or None."""
    if len(payload) != private_key.key_size // 8:
        return None
    try:
        return private_key.decrypt(payload, _PADDINGS[reading]())
    except ValueError:
        return None


def _raw_from_text(material: bytes) -> bytes | None:
    """The raw bytes a text form of key material stands for, if it is one."""
    text = material.rstrip(b"\r\n")
    if text != material and len(text) in KEY_MATERIAL_BYTES:
        return text
    for decode in (lambda t: base64.b64decode(t, validate=True), binascii.unhexlify):
        try:
            raw = decode(text)
        except (binascii.Error, ValueError):
            continue
        if len(raw) in KEY_MATERIAL_BYTES:
            return raw
    return None


# --- symmetric trials -------------------------------------------------------------------------

def _gcm_open(material: bytes, iv: bytes, sealed: bytes) -> bytes | None:
    if not iv or len(sealed) < TAG_BYTES:
        return None
    try:
        return AESGCM(material).decrypt(iv, sealed, None)
    except (InvalidTag, ValueError):   # ValueError: an IV length AES-GCM refuses
        return None


_AES_BLOCK_BYTES = algorithms.AES.block_size // 8


def _cbc_open(material: bytes, iv: bytes, sealed: bytes) -> bytes | None:
    if len(iv) != CBC_IV_BYTES or not sealed or len(sealed) % _AES_BLOCK_BYTES:
        return None
    decryptor = Cipher(algorithms.AES(material), modes.CBC(iv)).decryptor()
    padded = decryptor.update(sealed) + decryptor.finalize()
    unpadder = symmetric_padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
