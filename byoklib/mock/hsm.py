"""The mock's HSM: import-token key pairs and the envelope crypto of root keys.

The secrets of import tokens and root keys live here and nowhere else:

- the RSA-4096 private half of each import token ("transport key"), in a private table
  of the `HSM`: no public attribute or method returns it; callers hold an opaque
  `TransportKey` handle whose repr shows only the public key's fingerprint;
- the key material of root-key versions, kept the same way behind `MaterialHandle`s;
  the service asks the HSM to seal/open data-encryption keys (AES-GCM) with them.

Key-pair sources are plain callables `() -> RSAPrivateKey`: the default generates
RSA-4096 on demand; `KeyPairPool` keeps a bounded few ready (one by default), made in
a background thread (the RSA key generation of `cryptography` releases the GIL, so the
pool really runs beside the server); `fixed_key_pairs` cycles through given keys for
tests and notebooks.
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import itertools
import os
import threading
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from byoklib import primitives
from byoklib.errors import KeyProtectError
from byoklib.mock import doctor
from byoklib.mock.flavors import flavor_of
from byoklib.protocol import (
    IV_BYTES,
    KEY_MATERIAL_BYTES,
    RSAES_OAEP_SHA_256,
    TAG_BYTES,
    TOKEN_KEY_BITS,
)

# --- key-pair sources ---------------------------------------------------------------

def generate_key_pairs(bits: int = TOKEN_KEY_BITS):
    """The default source: a fresh RSA key pair of `bits` on every call."""
    def source() -> rsa.RSAPrivateKey:
        return primitives.generate_rsa_private_key(bits)
    return source


def fixed_key_pairs(keys):
    """A source cycling through the given keys (PEM bytes/str, paths, or key objects).

    For tests and learning only: tokens made from it share private keys. Files are read at
    once; each PEM is parsed (`load_token_key`) when first handed out, since parsing checks
    the RSA key in full and most users of three keys make one token; give key objects to
    parse them sooner.
    """
    entries = [key.read_bytes() if isinstance(key, Path) else key for key in keys]
    return _cycling(entries, load_token_key)


# byoklib's own TEST-ONLY token key pairs (byoklib/data/test-only/; the repository's
# data/README.md says how they were made), and the SHA-256 of each PEM file as made: the
# bytes that may skip cryptography's RSA key check (tests/mock/test_hsm.py checks each key
# in full, and these digests against the files).
TEST_ONLY_KEY_FILES = tuple(f"token-key-{n}.pem" for n in (1, 2, 3))
TEST_ONLY_KEY_SHA256 = frozenset({
    "1d9c38434c837f60b7f94c9c8bf308ec194b61d24a7f59893bfddf4b27c11cd5",
    "45f082e0d8e3e53a6f094a6afb3d494d1d58fbb3d4a17adb572674c9fa1a373e",
    "3529d47635ee070c6e1f5c1e0a1f10d88f6ed6e2ffd73fca8c947b59ea1125e5",
})


def test_only_key_pairs():
    """A source cycling through byoklib's packaged TEST-ONLY token key pairs, parsed as
    `load_token_key` parses them (without the RSA check, which costs more than everything
    else a notebook's mock does to start). Never for a key someone else gave."""
    from byoklib import data_path

    return _cycling([data_path("test-only", name).read_bytes() for name in TEST_ONLY_KEY_FILES],
                    load_token_key)


def load_token_key(key) -> rsa.RSAPrivateKey:
    """A token's private key from PEM (bytes or str) or a key object, checked in full, as
    any key someone gives must be, unless its PEM is byte for byte one of byoklib's own
    TEST-ONLY keys (TEST_ONLY_KEY_SHA256), as `serve --token-key` reads them from
    byoklib/data/test-only/."""
    if isinstance(key, str):
        key = key.encode("ascii")
    if isinstance(key, (bytes, bytearray)) and \
            hashlib.sha256(key).hexdigest() in TEST_ONLY_KEY_SHA256:
        return serialization.load_pem_private_key(bytes(key), password=None,
                                                  unsafe_skip_rsa_key_validation=True)
    return primitives.load_private_key(key)


def _cycling(entries: list, load):
    """A thread-safe source cycling through `entries`, each made a key by `load` when first
    handed out."""
    if not entries:
        raise ValueError("fixed_key_pairs needs at least one key")
    position = itertools.cycle(range(len(entries)))
    lock = threading.Lock()  # the cycle and the parsed list are shared across threads

    def source() -> rsa.RSAPrivateKey:
        with lock:
            index = next(position)
            if not isinstance(entries[index], rsa.RSAPrivateKey):
                entries[index] = load(entries[index])
            return entries[index]
    return source


class KeyPairPool:
    """A bounded pool of pre-generated key pairs, refilled by a daemon thread.

    `take()` returns a pair from the pool. When the pool is empty but the refill thread is
    making a pair that nobody waits for yet, it waits for that one: no longer, on average,
    than making another (the search for primes has no memory), and nothing is made twice.
    Otherwise it makes one inline (so takers that come together generate in parallel, on
    as many cores as there are). Each pair goes into the pool once and leaves it once, so
    none is handed out twice (unless the `source` itself repeats, as `fixed_key_pairs`
    does). The refill thread makes a pair only when there is room, so the pool never
    holds, nor makes, more than `size` pairs ahead of what was taken. The default keeps
    one pair ready: tokens are made minutes apart, and every pair made ahead and never
    used is an RSA-4096 generation wasted. The refill starts with `start()` or, for a pool
    not started, with the first `take()`.
    """

    def __init__(self, size: int = 1, bits: int = TOKEN_KEY_BITS, source=None):
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self.bits = bits
        self._source = source or generate_key_pairs(bits)
        self._ready: collections.deque = collections.deque()
        self._making = False       # the refill thread is making a pair
        self._awaited = False      # a taker waits for that pair
        self._stop = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> "KeyPairPool":
        """Start making pairs ahead; `take()` starts a pool that was not started."""
        with self._changed:
            if self._thread is None and not self._stop:
                # the first pair is the thread's from now on: a taker that comes before
                # the thread runs waits for it rather than making a second one
                self._making = True
                self._thread = threading.Thread(target=self._refill, name="key-pair-pool",
                                                daemon=True)
                self._thread.start()
        return self

    def _refill(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._stop or len(self._ready) < self.size)
                if self._stop:
                    self._making = False
                    self._changed.notify_all()
                    return
                self._making = True
            key = None
            try:
                key = self._source()        # slow for RSA-4096: outside the lock
            finally:                        # (if it raises, a waiting taker makes its own)
                with self._changed:
                    if key is not None:
                        self._ready.append(key)
                    self._making = False
                    self._changed.notify_all()

    def take(self) -> rsa.RSAPrivateKey:
        self.start()
        with self._changed:
            if not self._ready and self._making and not self._awaited:
                self._awaited = True
                self._changed.wait_for(lambda: self._ready or not self._making)
                self._awaited = False
            if self._ready:
                key = self._ready.popleft()
                self._changed.notify_all()  # room: the refill thread makes the next one
                return key
        return self._source()

    __call__ = take

    def available(self) -> int:
        with self._changed:
            return len(self._ready)

    def close(self, timeout: float = 30) -> None:
        with self._changed:
            self._stop = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"KeyPairPool(size={self.size}, bits={self.bits}, available={self.available()})"


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
        the request also under the replaced token's `(handle, nonce)` when given.
        `flavor` (byoklib.mock.flavors) names the one algorithm accepted: Key Protect's
        by default; the HPCS flavour takes RSAES_OAEP_SHA_1 instead.
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
                                     "The field 'iv' must be: a base64 encoded 12-byte IV",
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

    def generate_material(self, nbytes: int = 32) -> MaterialHandle:
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


def check_root_material(material: bytes) -> None:
    if len(material) not in KEY_MATERIAL_BYTES:
        raise KeyProtectError.of(
            "INVALID_FIELD_ERR",
            "The field 'payload' must be: key material of 16, 24 or 32 bytes "
            "(128, 192 or 256 bits)",
            target=("field", "payload"))
