"""Key actions: wrap, unwrap, rewrap, rotate, disable, enable (sync, setKeyForDeletion
and unsetKeyForDeletion live in lifecycle.py; the service dispatches them all).

A wrapped DEK looks like the real service's: base64 of a JSON object
`{"ciphertext", "iv", "version", "handle"}`. Here `ciphertext` is AES-GCM (tag appended)
under the key version's material and `handle` names that material (an HMAC check value
from the HSM, not a key or version id); the GCM AAD binds the handle and the caller's `aad`
list. So a WDEK unwraps with the same AAD under any root key, in any instance, that holds
the same material in one of its versions: the real service documents exactly that
("root keys that contain the same key material can unwrap the same DEK").

The mock's choices (IBM's docs are silent on these: https://cloud.ibm.com/apidocs/key-protect):
- Wrap: plaintext optional (32 random bytes generated and returned when absent), at most
  4096 base64 characters; aad up to 126 strings of up to 255 characters. Wrong AAD, a
  foreign or corrupted WDEK -> 422 UNPROCESSABLE_CIPHERTEXT_ERR; a ciphertext that is not
  base64 -> 400 INVALID_FIELD_ERR; unwrap/rewrap without a body (or `{}`) -> 400
  NO_BODY_ERR. Rewrap answers keyVersion = the version that had wrapped,
  rewrappedKeyVersion = the latest.
- Rotate: the first rotation is free, then one per hour (KEY_ROTATION_NOT_PERMITTED); any
  material (even the same as before, any of 16/24/32 bytes) is accepted for imported
  keys; token fields on a generated key count as a payload (INVALID_QUERY_PARAM_ERR).
- Disable needs Active; enable needs Suspended and 30 s since the disable
  (REQ_TOO_EARLY_ERR); a wrong state -> 409 KEY_ACTION_INVALID_STATE_ERR.
"""
from __future__ import annotations

import json
import uuid

from byoklib.errors import KeyProtectError
from byoklib.protocol import GENERATED_DEK_BYTES, GENERATED_KEY_BYTES
from byoklib.mock.hsm import check_root_material
from byoklib.primitives import b64decode, b64encode

from . import validate
from .core import ServiceCore
from .model import (
    ACTIVE,
    DEACTIVATED,
    ROTATION_INTERVAL,
    SUSPENDED,
    WAIT_AFTER_UPDATE,
    Instance,
    KeyRecord,
    Version,
)
from .policies import check_token_not_enforced
from .tokens import replaced_token, secure_fields, unwrap_secure_import, usable_token

WDEK_FORMAT_VERSION = "4.0.0"
PLAINTEXT_MAX_CHARS = 4096
AAD_ITEMS, AAD_CHARS = 126, 255

class Actions(ServiceCore):

    # --- envelope encryption ---

    def wrap(self, instance_id: str, key_id: str, body=None) -> dict:
        body = validate.obj(body)
        plaintext = self._plaintext(body)
        aad = validate.string_list(body, "aad", AAD_ITEMS, AAD_CHARS)
        with self._reading(instance_id) as instance:
            key = self._root_key(instance, key_id, allowed=(ACTIVE,), action="wrap")
            generated = plaintext is None
            if generated:
                plaintext = self.hsm.random_bytes(GENERATED_DEK_BYTES)
            result = {"ciphertext": self._seal(key.latest, plaintext, aad),
                      "keyVersion": key.latest.ref()}
            if generated:
                result["plaintext"] = b64encode(plaintext)
            return result

    def unwrap(self, instance_id: str, key_id: str, body=None) -> dict:
        ciphertext, aad = self._wrapped_request(body)
        with self._reading(instance_id) as instance:
            key = self._root_key(instance, key_id, allowed=(ACTIVE, DEACTIVATED),
                                 action="unwrap")
            version, plaintext = self._open(key, ciphertext, aad)
            result = {"plaintext": b64encode(plaintext), "keyVersion": version.ref()}
            if version is not key.latest:
                result["ciphertext"] = self._seal(key.latest, plaintext, aad)
                result["rewrappedKeyVersion"] = key.latest.ref()
            return result

    def rewrap(self, instance_id: str, key_id: str, body=None) -> dict:
        ciphertext, aad = self._wrapped_request(body)
        with self._reading(instance_id) as instance:
            key = self._root_key(instance, key_id, allowed=(ACTIVE, DEACTIVATED),
                                 action="rewrap")
            version, plaintext = self._open(key, ciphertext, aad)
            return {"ciphertext": self._seal(key.latest, plaintext, aad),
                    "keyVersion": version.ref(), "rewrappedKeyVersion": key.latest.ref()}

    @staticmethod
    def _plaintext(body: dict) -> bytes | None:
        value = body.get("plaintext")
        if value is not None and (not isinstance(value, str) or len(value) > PLAINTEXT_MAX_CHARS):
            raise validate.field_error("plaintext", "a base64 encoded key material of at most "
                                                    f"{PLAINTEXT_MAX_CHARS} characters")
        return validate.base64_field(body, "plaintext")

    @staticmethod
    def _wrapped_request(body) -> tuple[bytes, list | None]:
        """(the WDEK's outer base64 decoded, aad); what is inside is read by `_open`."""
        if body is None or body == {}:
            raise KeyProtectError.of("NO_BODY_ERR")
        body = validate.obj(body)
        ciphertext = validate.base64_field(body, "ciphertext", required=True)
        return ciphertext, validate.string_list(body, "aad", AAD_ITEMS, AAD_CHARS)

    def _seal(self, version: Version, plaintext: bytes, aad) -> str:
        handle = self.hsm.material_id(version.material)
        sealed, iv = self.hsm.seal(version.material, plaintext, _binding(handle, aad))
        blob = {"ciphertext": b64encode(sealed), "iv": b64encode(iv),
                "version": WDEK_FORMAT_VERSION, "handle": handle}
        return b64encode(_compact(blob).encode())

    def _open(self, key: KeyRecord, ciphertext: bytes, aad) -> tuple[Version, bytes]:
        blob = _parse_wdek(ciphertext)
        version = next((v for v in key.versions
                        if self.hsm.material_id(v.material) == blob["handle"]), None)
        if version is None:   # made under material this key has never held
            raise _unprocessable()
        return version, self.hsm.open(version.material, blob["ciphertext"], blob["iv"],
                                      _binding(blob["handle"], aad))

    # --- rotation ---

    def rotate(self, instance_id: str, key_id: str, body=None) -> None:
        secure, payload = parse_rotation(body, self.flavor)
        with self._changing(instance_id) as instance:
            now = self._now()
            key = self._root_key(instance, key_id, allowed=(ACTIVE, DEACTIVATED),
                                 action="rotate")
            _check_rotation(instance, key, secure is not None, payload is not None, now)
            if not key.imported:
                material = self.hsm.generate_material(GENERATED_KEY_BYTES)
            elif secure is not None:
                token = usable_token(instance, self.clock.now())
                replaced = replaced_token(instance, self.clock.now())
                material = self.hsm.store_material(
                    unwrap_secure_import(self.hsm, token, secure, replaced, self.flavor))
            else:   # checked after _check_rotation: "no payload for this key" comes first
                check_root_material(payload)
                material = self.hsm.store_material(payload)
            key.versions.append(Version(str(uuid.uuid4()), now, material))
            key.bit_length = material.bits
            key.last_rotate_date = key.last_update_date = now

    # --- disable / enable ---

    def disable(self, instance_id: str, key_id: str, body=None) -> None:
        validate.obj(body)
        with self._changing(instance_id) as instance:
            now = self._now()
            key = self._root_key(instance, key_id, allowed=(ACTIVE,), action="disable")
            key.stored_state = SUSPENDED
            key.state_changed = key.last_update_date = now

    def enable(self, instance_id: str, key_id: str, body=None) -> None:
        validate.obj(body)
        with self._changing(instance_id) as instance:
            now = self._now()
            key = self._root_key(instance, key_id, allowed=(SUSPENDED,), action="enable")
            if now - key.state_changed < WAIT_AFTER_UPDATE:
                raise KeyProtectError.of("REQ_TOO_EARLY_ERR")
            key.stored_state = ACTIVE
            key.state_changed = key.last_update_date = now

    # --- checks ---

    def _root_key(self, instance: Instance, key_id: str, allowed: tuple,
                  action: str) -> KeyRecord:
        """A live root key whose state permits `action` (the state table of IBM's
        key-states page: https://cloud.ibm.com/docs/key-protect?topic=key-protect-key-states)."""
        key = self._live_key(instance, key_id)
        if key.extractable:
            raise KeyProtectError.of("KEY_ROOT_REQ_ERR")
        if key.state(self.clock.now()) not in allowed:
            raise KeyProtectError.of(
                "KEY_ACTION_INVALID_STATE_ERR",
                f"Key is not in a valid state: a '{action}' action needs state "
                f"{' or '.join(map(str, allowed))}")
        return key


def parse_rotation(body, flavor=None) -> tuple[tuple | None, bytes | None]:
    """(secure-import fields, plain payload) of a rotate body, checked; no state."""
    body = validate.obj(body)
    if any(body.get(f) is not None for f in ("encryptedNonce", "iv", "encryptionAlgorithm")):
        return secure_fields(body, flavor), None
    return None, validate.base64_field(body, "payload")


def _check_rotation(instance: Instance, key: KeyRecord, secure: bool, plain: bool,
                    now) -> None:
    """Material only for an imported key (token fields count as material), a token when
    the instance's policy enforces one, and one rotation per hour after the first."""
    if not key.imported and (secure or plain):
        raise validate.field_error("payload", "provided only if key is imported",
                                   code="INVALID_QUERY_PARAM_ERR", kind="query_param")
    if key.imported and not (secure or plain):
        raise KeyProtectError.of("KEY_PAYLOAD_REQ_ERR", target=("field", "payload"))
    if key.imported and not secure:
        check_token_not_enforced(instance, "rotate")
    if key.last_rotate_date is not None and now - key.last_rotate_date < ROTATION_INTERVAL:
        raise KeyProtectError.of("KEY_ROTATION_NOT_PERMITTED")


_compact = json.JSONEncoder(separators=(",", ":")).encode   # one encoder, not one per call


def _binding(handle: str, aad) -> bytes:
    """GCM additional data: which material, and the caller's aad list."""
    return _compact({"material": handle, "aad": list(aad or [])}).encode()


def _parse_wdek(ciphertext: bytes) -> dict:
    """The WDEK's JSON (its outer base64 already decoded); anything this service did not
    make is 422."""
    try:
        blob = json.loads(ciphertext)
        fields = {name: blob[name] for name in ("ciphertext", "iv", "handle")}
        if not all(isinstance(v, str) for v in fields.values()):
            raise ValueError("fields must be strings")
        return {"handle": fields["handle"], "ciphertext": b64decode(fields["ciphertext"]),
                "iv": b64decode(fields["iv"])}
    except (ValueError, KeyError, TypeError, RecursionError):
        raise _unprocessable() from None


def _unprocessable() -> KeyProtectError:
    return KeyProtectError.of("UNPROCESSABLE_CIPHERTEXT_ERR", target=("field", "ciphertext"))
