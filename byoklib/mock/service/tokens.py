"""Import tokens: POST/GET /api/v2/import_token, and opening a secure import with one."""
from __future__ import annotations

from datetime import timedelta

from byoklib.errors import KeyProtectError
from byoklib.mock.hsm import check_algorithm
from byoklib.primitives import b64encode

from . import validate
from .model import TokenRecord, whole_seconds

EXPIRATION = (300, 86400, 600)             # min, max, default (seconds)
MAX_RETRIEVALS = (1, 500, 1)               # min, max, default
NONCE_BYTES = 12


class TokensMixin:

    def create_import_token(self, instance_id: str, expiration=None,
                            max_allowed_retrievals=None) -> dict:
        """Make (or replace) the instance's import token; returns its metadata."""
        values = {"expiration": expiration, "maxAllowedRetrievals": max_allowed_retrievals}
        seconds = validate.integer(values, "expiration", *EXPIRATION)
        retrievals = validate.integer(values, "maxAllowedRetrievals", *MAX_RETRIEVALS)
        # RSA-4096 generation may take a second: do it outside the service lock.
        transport_key = self.hsm.new_transport_key()
        public_pem = self.hsm.public_key_pem(transport_key)
        with self._lock:
            now = whole_seconds(self.clock.now())
            token = TokenRecord(now, now + timedelta(seconds=seconds), retrievals, retrievals,
                                transport_key, self.hsm.random_bytes(NONCE_BYTES), public_pem)
            instance = self._instance(instance_id)
            old, instance.token = instance.token, token
            if old is not None:
                self.hsm.discard_transport_key(old.transport_key)
            return token.metadata()

    def get_import_token(self, instance_id: str) -> dict:
        """Retrieve the token (public key and nonce); counts one retrieval."""
        with self._lock:
            token = self._usable_token(instance_id)
            if token.remaining_retrievals < 1:
                raise KeyProtectError.of("IMPORT_TOKEN_RETRIEVALS_EXCEEDED_ERR")
            token.remaining_retrievals -= 1
            return {**token.metadata(), "payload": b64encode(token.public_key_pem),
                    "nonce": b64encode(token.nonce)}

    def _usable_token(self, instance_id: str) -> TokenRecord:
        token = self._instance(instance_id).token
        if token is None:
            raise KeyProtectError.of("IMPORT_TOKEN_NOT_FOUND_ERR")
        if token.expired(self.clock.now()):
            raise KeyProtectError.of("IMPORT_TOKEN_EXPIRED_ERR")
        return token

    def _open_secure_import(self, instance_id: str, fields: dict) -> bytes:
        """Key material from the four secure-import fields; caller holds the lock.

        Imports are allowed until the token expires, even when its retrievals are used
        up (the mock's choice; see the package docstring).
        """
        checked = secure_fields(fields, self.flavor)   # refuse bad fields before looking at the token
        return self._unwrap_secure_import(self._usable_token(instance_id), checked)

    def _unwrap_secure_import(self, token: TokenRecord, checked: tuple) -> bytes:
        """Key material from fields `secure_fields` checked, with a token already looked
        up: callers may run this (the RSA unwrap) without holding the lock."""
        payload, encrypted_nonce, iv, algorithm = checked
        return self.hsm.open_secure_import(token.transport_key, payload, encrypted_nonce, iv,
                                           token.nonce, algorithm, flavor=self.flavor)


def secure_fields(fields: dict, flavor=None) -> tuple[bytes, bytes, bytes, str]:
    """(payload, encryptedNonce, iv, encryptionAlgorithm), validated, no state touched."""
    payload = validate.base64_field(fields, "payload", required=True)
    encrypted_nonce = validate.base64_field(fields, "encryptedNonce", required=True)
    iv = validate.base64_field(fields, "iv", required=True)
    if len(iv) != NONCE_BYTES:
        raise validate.field_error("iv", "a base64 encoded 12-byte IV")
    algorithm = fields.get("encryptionAlgorithm")
    check_algorithm(algorithm, flavor)
    return payload, encrypted_nonce, iv, algorithm
