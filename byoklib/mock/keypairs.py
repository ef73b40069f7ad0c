"""Import-token key-pair sources: where the mock's HSM gets the RSA-4096 private half of
each token.

A source is a plain callable `() -> RSAPrivateKey`: `generate_key_pairs` makes a fresh pair on
every call; `KeyPairPool` keeps a bounded few ready (one by default), made in a background
thread (the RSA key generation of `cryptography` releases the GIL, so the pool really runs
beside the server); `fixed_key_pairs` cycles through given keys and `test_only_key_pairs`
through byoklib's own TEST-ONLY ones, for tests and notebooks.
"""
from __future__ import annotations

import collections
import hashlib
import itertools
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from byoklib import primitives
from byoklib.protocol import TOKEN_KEY_BITS


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
    return _Cycle(entries, load_token_key)


# byoklib's own TEST-ONLY token key pairs (byoklib/data/test-only/; the repository's
# data/README.md says how they were made), and the SHA-256 of each PEM file as made: the
# bytes that may skip cryptography's RSA key check (tests/mock/test_keypairs.py checks each key
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

    return _Cycle([data_path("test-only", name).read_bytes() for name in TEST_ONLY_KEY_FILES],
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


class _Cycle:
    """A thread-safe source cycling through `entries`, each made a key by `load` when first
    handed out. Its repr names how many keys it holds, never a key."""

    def __init__(self, entries: list, load):
        if not entries:
            raise ValueError("fixed_key_pairs needs at least one key")
        self._entries = entries
        self._load = load
        self._position = itertools.cycle(range(len(entries)))
        self._lock = threading.Lock()   # the cycle and the parsed list are shared

    def __call__(self) -> rsa.RSAPrivateKey:
        with self._lock:
            index = next(self._position)
            if not isinstance(self._entries[index], rsa.RSAPrivateKey):
                self._entries[index] = self._load(self._entries[index])
            return self._entries[index]

    def __repr__(self) -> str:
        return f"<key-pair source: {len(self._entries)} fixed keys, cycled>"


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
