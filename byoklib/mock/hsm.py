"""The mock's HSM: import-token key pairs and the envelope crypto of root keys.

Everything secret lives here and nowhere else in the service wing:

- the RSA-4096 private half of each import token ("transport key"), kept in a closure
  of `HSM.__init__`, so no public attribute or method returns it; callers hold an
  opaque `TransportKey` handle whose repr shows only the public key's fingerprint;
- the key material of root-key versions, kept the same way behind `MaterialHandle`s;
  the service asks the HSM to seal/open data-encryption keys (AES-GCM) with them.

Key-pair sources are plain callables `() -> RSAPrivateKey`: the default generates
RSA-4096 on demand; `KeyPairPool` keeps a bounded few ready (one by default), made in
a background thread (the RSA key generation of `cryptography` releases the GIL, so the
pool really runs beside the server); `fixed_key_pairs` cycles through given keys for
tests and notebooks.

Mock's choices (UNCONFIRMED behaviours of the real service):
- A `payload` that does not RSA-OAEP-decrypt with the token's private key is
  400 `UNPROCESSABLE_PAYLOAD_ERR` (target field `payload`).
- Decrypted key material that is not 16, 24 or 32 bytes is 400 `INVALID_FIELD_ERR`
  (target field `payload`), checked before the nonce.
- The GCM tag failing is 400 `INCORRECT_NONCE_IV_ERR`; a nonce that decrypts but differs
  from the token's (compared in constant time) is 400 `INCORRECT_NONCE_ERR`.
- Only `RSAES_OAEP_SHA_256` is accepted; `RSAES_OAEP_SHA_1` (Hyper Protect Crypto
  Services only) is refused with 400 `INVALID_FIELD_ERR` (target `encryptionAlgorithm`).
  The HPCS flavour (byoklib.mock.flavors) turns this round.
"""
from __future__ import annotations

import collections
import hmac
import itertools
import os
import threading
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from byoklib import primitives
from byoklib.errors import KeyProtectError
from byoklib.mock.flavors import flavor_of
from byoklib.protocol import (
    IV_BYTES,
    KEY_MATERIAL_BYTES,
    RSAES_OAEP_SHA_256,
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

    For tests and learning only: tokens made from it share private keys.
    """
    loaded = [_load_key(k) for k in keys]
    if not loaded:
        raise ValueError("fixed_key_pairs needs at least one key")
    cycle = itertools.cycle(loaded)
    lock = threading.Lock()  # itertools.cycle is not safe across threads

    def source() -> rsa.RSAPrivateKey:
        with lock:
            return next(cycle)
    return source


def _load_key(key) -> rsa.RSAPrivateKey:
    if isinstance(key, Path):
        key = key.read_bytes()
    return primitives.load_private_key(key)


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
    used is an RSA-4096 generation wasted.
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
        if self._thread is None:
            self._thread = threading.Thread(target=self._refill, name="key-pair-pool",
                                            daemon=True)
            self._thread.start()
        return self

    def _refill(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._stop or len(self._ready) < self.size)
                if self._stop:
                    return
                self._making = True
            key = None
            try:
                key = self._source()        # 0.1-1.5 s for RSA-4096: outside the lock
            finally:                        # (if it raises, a waiting taker makes its own)
                with self._changed:
                    if key is not None:
                        self._ready.append(key)
                    self._making = False
                    self._changed.notify_all()

    def take(self) -> rsa.RSAPrivateKey:
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
    """Holds secrets in closures and exposes only operations on them."""

    def __init__(self, key_pair_source=None):
        source = key_pair_source or generate_key_pairs()
        private_keys: dict[int, rsa.RSAPrivateKey] = {}   # id(handle) -> private key
        materials: dict[int, bytes] = {}                   # id(handle) -> material
        handles: dict[int, object] = {}                    # keep handles alive (ids unique)
        lock = threading.Lock()

        def new_transport_key() -> TransportKey:
            private = source()
            handle = TransportKey(primitives.public_key_fingerprint(private))
            with lock:
                private_keys[id(handle)] = private
                handles[id(handle)] = handle
            return handle

        def private_of(handle) -> rsa.RSAPrivateKey:
            with lock:
                key = private_keys.get(id(handle))
            if key is None or handles.get(id(handle)) is not handle:
                raise KeyError("unknown transport key")
            return key

        def discard_transport_key(handle) -> None:
            with lock:
                private_keys.pop(id(handle), None)
                handles.pop(id(handle), None)

        def store_material(material: bytes) -> MaterialHandle:
            handle = MaterialHandle(len(material) * 8)
            with lock:
                materials[id(handle)] = bytes(material)
                handles[id(handle)] = handle
            return handle

        def material_of(handle) -> bytes:
            with lock:
                if handles.get(id(handle)) is not handle:
                    raise KeyError("unknown key material")
                return materials[id(handle)]

        def forget_material(handle) -> None:
            """Drop a purged key's material (None, a standard key's, is ignored)."""
            if handle is None:
                return
            with lock:
                if handles.get(id(handle)) is handle:
                    materials.pop(id(handle), None)
                    handles.pop(id(handle), None)

        self.forget_material = forget_material
        self.new_transport_key = new_transport_key
        self.discard_transport_key = discard_transport_key
        self.store_material = store_material
        self.__private_of = private_of
        self.__material_of = material_of

    def __repr__(self) -> str:
        return "HSM()"

    # --- import tokens ---

    def public_key_pem(self, handle: TransportKey) -> bytes:
        return primitives.public_key_pem(self.__private_of(handle).public_key())

    def open_secure_import(self, handle: TransportKey, payload: bytes, encrypted_nonce: bytes,
                           iv: bytes, expected_nonce: bytes,
                           algorithm: str = RSAES_OAEP_SHA_256, flavor=None) -> bytes:
        """Unwrap the key material and check it sealed the token's nonce.

        Returns the key material; raises KeyProtectError (see the module docstring).
        `flavor` (byoklib.mock.flavors) names the one algorithm accepted: Key Protect's
        by default.
        """
        check_algorithm(algorithm, flavor)
        try:
            material = primitives.unwrap_key_material(payload, self.__private_of(handle),
                                                      algorithm)
        # KeyError: the token was replaced while this request waited, and its private key
        # is gone, exactly as for a request that arrives after the replacement
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
        check = hmac.new(self.__material_of(handle), b"byoklib wrapped-DEK handle",
                         "sha256").digest()[:16]
        return str(uuid.UUID(bytes=check))

    def seal(self, handle: MaterialHandle, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """AES-GCM under the version's material: returns (ciphertext || tag, 12-byte iv)."""
        iv = os.urandom(IV_BYTES)
        return AESGCM(self.__material_of(handle)).encrypt(iv, plaintext, aad), iv

    def open(self, handle: MaterialHandle, sealed: bytes, iv: bytes, aad: bytes) -> bytes:
        """Inverse of `seal`; any failure is 422 UNPROCESSABLE_CIPHERTEXT_ERR."""
        try:
            return AESGCM(self.__material_of(handle)).decrypt(iv, sealed, aad)
        except (InvalidTag, ValueError):
            raise KeyProtectError.of("UNPROCESSABLE_CIPHERTEXT_ERR",
                                     target=("field", "ciphertext")) from None


    # --- persistence (serve --state): material leaves only sealed under the state key ---

    def export_sealed(self, handle: MaterialHandle, state_key: bytes) -> bytes:
        """iv || AES-GCM(state_key, material): what a state file stores for a version."""
        iv = os.urandom(IV_BYTES)
        return iv + AESGCM(state_key).encrypt(iv, self.__material_of(handle), STATE_AAD)

    def import_sealed(self, blob: bytes, state_key: bytes) -> MaterialHandle:
        """Inverse of `export_sealed`; ValueError when the key or the blob is wrong."""
        try:
            material = AESGCM(state_key).decrypt(blob[:IV_BYTES], blob[IV_BYTES:],
                                                 STATE_AAD)
        except InvalidTag:
            raise ValueError("the state key does not open this state") from None
        return self.store_material(material)


STATE_AAD = b"byoklib state: key material"


def check_algorithm(algorithm, flavor=None) -> None:
    flavor_of(flavor).check_algorithm(algorithm)


def check_root_material(material: bytes) -> None:
    if len(material) not in KEY_MATERIAL_BYTES:
        raise KeyProtectError.of(
            "INVALID_FIELD_ERR",
            "The field 'payload' must be: key material of 16, 24 or 32 bytes "
            "(128, 192 or 256 bits)",
            target=("field", "payload"))
