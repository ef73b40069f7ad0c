"""The mock's HSM: the import tokens' private keys and the envelope crypto of root keys.

Once a token's key pair is made or handed over, its secrets and those of root keys live
here and nowhere else:

- the RSA-4096 private half of each import token ("transport key"), in a private table
  of the `HSM`: no public attribute or method returns it; callers hold an opaque
  `TransportKey` handle whose repr shows only the public key's fingerprint;
- the key material of root-key versions, kept the same way behind `MaterialHandle`s;
  the service asks the HSM to seal/open data-encryption keys (AES-GCM) with them.

The token key pairs come from a key-pair source (`byoklib.mock.keypairs`; a pool or a fixed
source holds its keys until it hands them over); the default generates RSA-4096 on demand.
"""
from __future__ import annotations

import hmac
import os
import threading
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from byoklib import primitives
from byoklib.errors import KeyProtectError
from byoklib.mock import doctor
from byoklib.mock.flavors import flavor_of
from byoklib.mock.keypairs import generate_key_pairs
from byoklib.protocol import (
    GENERATED_KEY_BYTES,
    IV_BYTES,
    KEY_MATERIAL_BITS,
    KEY_MATERIAL_BYTES,
    RSAES_OAEP_SHA_256,
    TAG_BYTES,
)

# --- handles --------------------------------------------------------------------------

class TransportKey:
    """Opaque handle of an import token's key pair inside the HSM."""
    __slots__ = ("fingerprint",)

    def __init__(self, fingerprint: str):
        self.fingerprint = fingerprint

    def __repr__(self) -> str:
        return f"TransportKey(fingerprint={self.fingerprint[:16]}…)"


class MaterialHandle:
    """Opaque handle of a root-key version's material inside the HSM."""
    __slots__ = ("bits",)

    def __init__(self, bits: int):
        self.bits = bits

    def __repr__(self) -> str:
        return f"MaterialHandle(bits={self.bits})"


# --- the HSM --------------------------------------------------------------------------

class HSM:
    """Holds the secrets in private tables and exposes only operations on them.

    The tables are keyed by the handle object itself (handles hash by identity), so a
    handle is valid only while the HSM holds it; one lock guards them.
    """

    def __init__(self, key_pair_source=None, *, doctor: bool = True):
        self._source = key_pair_source or generate_key_pairs()
        self.doctor = doctor   # diagnose refused secure imports (byoklib.mock.doctor)
        self._private_keys: dict[TransportKey, rsa.RSAPrivateKey] = {}
        # material -> [its bytes, its AES-GCM, its check value (made when first asked)]
        self._materials: dict[MaterialHandle, list] = {}
        self._lock = threading.Lock()

    # --- the tables ---

    def new_transport_key(self) -> TransportKey:
        private = self._source()          # outside the lock: generation may take a while
        handle = TransportKey(primitives.public_key_fingerprint(private))
        with self._lock:
            self._private_keys[handle] = private
        return handle

    def discard_transport_key(self, handle: TransportKey) -> None:
        with self._lock:
            self._private_keys.pop(handle, None)

    def _private_of(self, handle: TransportKey) -> rsa.RSAPrivateKey:
        with self._lock:
            key = self._private_keys.get(handle)
        if key is None:
            raise KeyError("unknown transport key")
        return key

    def store_material(self, material: bytes) -> MaterialHandle:
        material = bytes(material)
        handle = MaterialHandle(len(material) * 8)
        entry = [material, AESGCM(material), None]
        with self._lock:
            self._materials[handle] = entry
        return handle

    def forget_material(self, handle: MaterialHandle | None) -> None:
        """Drop a purged key's material (None, a standard key's, is ignored)."""
        if handle is None:
            return
        with self._lock:
            self._materials.pop(handle, None)

    def _material_of(self, handle: MaterialHandle) -> list:
        with self._lock:
            entry = self._materials.get(handle)
        if entry is None:
            raise KeyError("unknown key material")
        return entry

    def __repr__(self) -> str:
        return "HSM()"

    # --- import tokens ---

    def public_key_pem(self, handle: TransportKey) -> bytes:
        return primitives.public_key_pem(self._private_of(handle).public_key())

    def open_secure_import(self, handle: TransportKey, payload: bytes, encrypted_nonce: bytes,
                           iv: bytes, expected_nonce: bytes,
                           algorithm: str = RSAES_OAEP_SHA_256, *, iv_text: str = "",
                           replaced: tuple[TransportKey, bytes] | None = None,
                           flavor=None) -> bytes:
        """Unwrap the key material and check it sealed the token's nonce: the one place
        the secure-import check happens. Returns the key material.

        The mock's choices (the real service's answers here are UNCONFIRMED):
        - only `RSAES_OAEP_SHA_256` is accepted; `RSAES_OAEP_SHA_1` (Hyper Protect Crypto
          Services only) is 400 `INVALID_FIELD_ERR` (target `encryptionAlgorithm`);
        - an `iv` that is not 12 bytes is 400 `INVALID_FIELD_ERR` (target `iv`);
        - a `payload` that does not RSA-OAEP-decrypt with the token's private key is
          400 `UNPROCESSABLE_PAYLOAD_ERR` (target `payload`);
        - material that is not 16, 24 or 32 bytes is 400 `INVALID_FIELD_ERR` (target
          `payload`), checked before the nonce;
        - the GCM tag failing is 400 `INCORRECT_NONCE_IV_ERR`; a nonce that decrypts but
          differs from the token's (compared in constant time) is 400 `INCORRECT_NONCE_ERR`.

        On a refusal the doctor (when on) names the mistake in `error.diagnosis`, trying
        the replaced token's `(handle, nonce)` too when given. `flavor` picks the one
        algorithm accepted (HPCS: RSAES_OAEP_SHA_1).
        """
        try:
            return self._open_secure_import(handle, payload, encrypted_nonce, iv,
                                            expected_nonce, algorithm, flavor)
        except KeyProtectError as error:
            if self.doctor:
                attempt = doctor.Attempt(payload, encrypted_nonce, iv, iv_text)
                error.diagnosis = self._diagnose(attempt, (handle, expected_nonce), replaced,
                                                 error.code)
            raise

    def _diagnose(self, attempt, current, replaced, refused_with: str) -> str | None:
        def secrets(pair):
            with self._lock:
                key = self._private_keys.get(pair[0]) if pair else None
            return None if key is None else doctor.TokenSecrets(key, pair[1])
        now, before = secrets(current), secrets(replaced)
        found = doctor.diagnose(attempt, now, before, refused_with) if now is not None else None
        return None if found is None else str(found)

    def _open_secure_import(self, handle, payload, encrypted_nonce, iv, expected_nonce,
                            algorithm, flavor) -> bytes:
        check_algorithm(algorithm, flavor)
        if len(iv) != IV_BYTES:
            raise KeyProtectError.of("INVALID_FIELD_ERR",
                                     f"The field 'iv' must be: a base64 encoded {IV_BYTES}-byte IV",
                                     target=("field", "iv"))
        try:
            material = primitives.unwrap_key_material(payload, self._private_of(handle),
                                                      algorithm)
        # KeyError: the token was replaced while this request waited, and its private key
        # is gone: the payload opens no more than under the new token's key pair
        except (primitives.UnwrapError, ValueError, KeyError):
            raise KeyProtectError.of("UNPROCESSABLE_PAYLOAD_ERR",
                                     target=("field", "payload")) from None
        check_root_material(material)
        try:
            nonce = primitives.decrypt_nonce(material, encrypted_nonce, iv)
        except ValueError:  # NonceAuthenticationError, or an IV AES-GCM refuses
            raise KeyProtectError.of("INCORRECT_NONCE_IV_ERR",
                                     target=("field", "encryptedNonce")) from None
        if not hmac.compare_digest(nonce, expected_nonce):
            raise KeyProtectError.of("INCORRECT_NONCE_ERR", target=("field", "encryptedNonce"))
        return material

    # --- root-key material and envelope crypto ---

    def generate_material(self, nbytes: int = GENERATED_KEY_BYTES) -> MaterialHandle:
        return self.store_material(os.urandom(nbytes))

    def random_bytes(self, nbytes: int) -> bytes:
        return os.urandom(nbytes)

    def material_id(self, handle: MaterialHandle) -> str:
        """A stable name for the material itself (not for the key that holds it): an HMAC
        check value, which reveals nothing of the material. Wrapped DEKs carry it, so any
        root key holding the same material can unwrap them, as the real service allows."""
        entry = self._material_of(handle)
        if entry[2] is None:   # two threads may both compute it: the same value
            entry[2] = _check_value(entry[0])
        return entry[2]

    def seal(self, handle: MaterialHandle, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """AES-GCM under the version's material: returns (ciphertext || tag, 12-byte iv)."""
        iv = os.urandom(IV_BYTES)
        return self._material_of(handle)[1].encrypt(iv, plaintext, aad), iv

    def open(self, handle: MaterialHandle, sealed: bytes, iv: bytes, aad: bytes) -> bytes:
        """Inverse of `seal`; any failure is 422 UNPROCESSABLE_CIPHERTEXT_ERR."""
        try:
            return self._material_of(handle)[1].decrypt(iv, sealed, aad)
        except (InvalidTag, ValueError):
            raise KeyProtectError.of("UNPROCESSABLE_CIPHERTEXT_ERR",
                                     target=("field", "ciphertext")) from None


    # --- persistence (serve --state): material leaves only sealed under the state key ---

    def export_sealed(self, handle: MaterialHandle, state_key: bytes) -> bytes:
        """What a state file stores for a version: its material sealed (`seal_at_rest`)."""
        return seal_at_rest(state_key, self._material_of(handle)[0], STATE_AAD)

    def import_sealed(self, blob: bytes, state_key: bytes) -> MaterialHandle:
        """Inverse of `export_sealed`; ValueError when the key or the blob is wrong."""
        return self.store_material(open_at_rest(state_key, blob, STATE_AAD))


STATE_AAD = b"byoklib state: key material"


def seal_at_rest(state_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """iv || AES-256-GCM(state_key, plaintext, aad): how a state file holds a secret."""
    iv = os.urandom(IV_BYTES)
    return iv + AESGCM(state_key).encrypt(iv, plaintext, aad)


def open_at_rest(state_key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Inverse of `seal_at_rest`; ValueError in byoklib's words for a blob too short to
    be one and for one the key does not open (or that was changed)."""
    if len(blob) < IV_BYTES + TAG_BYTES:
        raise ValueError("the state file is not a byoklib state (a sealed value is cut short)")
    try:
        return AESGCM(state_key).decrypt(blob[:IV_BYTES], blob[IV_BYTES:], aad)
    except InvalidTag:
        raise ValueError("the state key does not open this state") from None


def _check_value(material: bytes) -> str:
    """The material's name in wrapped DEKs (`HSM.material_id`)."""
    check = hmac.new(material, b"byoklib wrapped-DEK handle", "sha256").digest()[:16]
    return str(uuid.UUID(bytes=check))


def check_algorithm(algorithm, flavor=None) -> None:
    flavor_of(flavor).check_algorithm(algorithm)


def _either(sizes) -> str:
    """(16, 24, 32) -> "16, 24 or 32"."""
    *first, last = map(str, sizes)
    return f"{', '.join(first)} or {last}" if first else last


def check_root_material(material: bytes) -> None:
    if len(material) not in KEY_MATERIAL_BYTES:
        raise KeyProtectError.of(
            "INVALID_FIELD_ERR",
            f"The field 'payload' must be: key material of {_either(KEY_MATERIAL_BYTES)} bytes "
            f"({_either(KEY_MATERIAL_BITS)} bits)",
            target=("field", "payload"))
