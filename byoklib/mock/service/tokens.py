"""Import tokens: POST/GET /api/v2/import_token, and opening a secure import with one.

The mock's choices (IBM's docs are silent on these: https://cloud.ibm.com/apidocs/key-protect):
- POST answers 200 with creationDate, expirationDate, maxAllowedRetrievals and
  remainingRetrievals only (no `id`, no `expiration`). An out-of-range or non-integer
  `expiration` / `maxAllowedRetrievals` (booleans and strings included; 600.0 counts as
  600) -> 400 INVALID_FIELD_ERR naming the field.
- GET with no token -> 404 IMPORT_TOKEN_NOT_FOUND_ERR; expiry is checked first (409
  IMPORT_TOKEN_EXPIRED_ERR), then retrievals used up (409
  IMPORT_TOKEN_RETRIEVALS_EXCEEDED_ERR). A refused GET counts nothing.
- A token imports keys until it expires, even after its retrievals are used up (the
  docs' reading). A POST that replaces the token replaces its nonce and key pair:
  material sealed for the old token then fails with INCORRECT_NONCE_ERR (if it
  RSA-decrypts, as with fixed test keys) or UNPROCESSABLE_PAYLOAD_ERR (a new key pair).
- A secure import needs all four fields; a missing or non-SHA-256 `encryptionAlgorithm`
  -> 400 INVALID_FIELD_ERR; the IV's size, the RSA and the nonce failures are the HSM's
  (`HSM.open_secure_import`).
- For the import doctor (byoklib.mock.doctor) a replaced token's key pair and nonce are
  kept, while the HSM diagnoses, until that token would have expired or is replaced in
  turn; then they are discarded.
"""
from __future__ import annotations

from datetime import timedelta

from byoklib.errors import KeyProtectError
from byoklib.mock.hsm import check_algorithm
from byoklib.primitives import b64encode
from byoklib.protocol import NONCE_BYTES, TOKEN_EXPIRATION, TOKEN_RETRIEVALS

from . import validate
from .core import ServiceCore, check_instance_id
from .model import Instance, TokenRecord


class Tokens(ServiceCore):

    def create_import_token(self, instance_id: str, expiration=None,
                            max_allowed_retrievals=None) -> dict:
        """Make (or replace) the instance's import token; returns its metadata."""
        values = {"expiration": expiration, "maxAllowedRetrievals": max_allowed_retrievals}
        seconds = validate.integer(values, "expiration", TOKEN_EXPIRATION.low,
                                   TOKEN_EXPIRATION.high, TOKEN_EXPIRATION.default)
        retrievals = validate.integer(values, "maxAllowedRetrievals", TOKEN_RETRIEVALS.low,
                                      TOKEN_RETRIEVALS.high, TOKEN_RETRIEVALS.default)
        # RSA-4096 generation is slow: done before the instance's lock is taken, and only
        # for a request that the lock's own check of the instance id would not refuse.
        check_instance_id(instance_id)
        transport_key = self.hsm.new_transport_key()
        public_pem = self.hsm.public_key_pem(transport_key)
        with self._changing(instance_id) as instance:
            now = self._now()
            token = TokenRecord(now, now + timedelta(seconds=seconds), retrievals, retrievals,
                                transport_key, self.hsm.random_bytes(NONCE_BYTES), public_pem)
            old, instance.token = instance.token, token
            self._forget_replaced(instance)
            if old is not None and self.hsm.doctor and not old.expired(now):
                instance.replaced_token = old
            elif old is not None:
                self.hsm.discard_transport_key(old.transport_key)
            return token.metadata()

    def _forget_replaced(self, instance: Instance, now=None) -> None:
        """Discard the replaced token's secrets (all of them, or once it has expired)."""
        old = instance.replaced_token
        if old is not None and (now is None or old.expired(now)):
            instance.replaced_token = None
            self.hsm.discard_transport_key(old.transport_key)

    def get_import_token(self, instance_id: str) -> dict:
        """Retrieve the token (public key and nonce); counts one retrieval."""
        with self._changing(instance_id) as instance:
            self._forget_replaced(instance, self.clock.now())
            token = usable_token(instance, self.clock.now())
            if token.remaining_retrievals < 1:
                raise KeyProtectError.of("IMPORT_TOKEN_RETRIEVALS_EXCEEDED_ERR")
            token.remaining_retrievals -= 1
            return {**token.metadata(), "payload": b64encode(token.public_key_pem),
                    "nonce": b64encode(token.nonce)}


def usable_token(instance: Instance, now) -> TokenRecord:
    """The instance's token: 404 without one, 409 when it has expired."""
    token = instance.token
    if token is None:
        raise KeyProtectError.of("IMPORT_TOKEN_NOT_FOUND_ERR")
    if token.expired(now):
        raise KeyProtectError.of("IMPORT_TOKEN_EXPIRED_ERR")
    return token


def replaced_token(instance: Instance, now) -> TokenRecord | None:
    """The token the current one replaced, while it would still be valid (for the doctor)."""
    replaced = instance.replaced_token
    return None if replaced is None or replaced.expired(now) else replaced


def unwrap_secure_import(hsm, token: TokenRecord, checked: tuple,
                         replaced: TokenRecord | None = None, flavor=None) -> bytes:
    """Key material from the fields `secure_fields` checked and a token already looked
    up; may run outside the instance's lock (the RSA unwrap is the slow part)."""
    payload, encrypted_nonce, iv, algorithm, iv_text = checked
    return hsm.open_secure_import(
        token.transport_key, payload, encrypted_nonce, iv, token.nonce, algorithm,
        iv_text=iv_text,
        replaced=None if replaced is None else (replaced.transport_key, replaced.nonce),
        flavor=flavor)


def secure_fields(fields: dict, flavor=None) -> tuple[bytes, bytes, bytes, str, str]:
    """(payload, encryptedNonce, iv, encryptionAlgorithm, the iv as sent), validated, no
    state touched."""
    payload = validate.base64_field(fields, "payload", required=True)
    encrypted_nonce = validate.base64_field(fields, "encryptedNonce", required=True)
    iv = validate.base64_field(fields, "iv", required=True)
    algorithm = fields.get("encryptionAlgorithm")
    check_algorithm(algorithm, flavor)
    return payload, encrypted_nonce, iv, algorithm, fields["iv"]
