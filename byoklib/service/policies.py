"""Policies: a key's rotation policy, and the instance's keyCreateImportAccess policy."""
from __future__ import annotations

import uuid

from byoklib.errors import KeyProtectError

from . import validate
from .model import CREATED_BY, POLICY_TYPE, KeyRecord, collection, rfc3339, whole_seconds

KCIA = "keyCreateImportAccess"
KCIA_ATTRIBUTES = ("create_root_key", "create_standard_key", "import_root_key",
                   "import_standard_key", "enforce_token")
KCIA_DEFAULTS = {"create_root_key": True, "create_standard_key": True, "import_root_key": True,
                 "import_standard_key": True, "enforce_token": False}


class PoliciesMixin:

    # --- key rotation policy ---

    def put_key_policies(self, instance_id: str, key_id: str, body, policy=None) -> dict:
        if policy not in (None, "", "rotation"):
            raise _unknown_policy(policy)
        resource = validate.envelope(body, POLICY_TYPE)
        rotation = rotation_settings(resource.get("rotation"))
        with self._lock:
            now = whole_seconds(self.clock.now())
            key = self._live_key(instance_id, key_id)
            check_rotation_policy_allowed(key.extractable, key.imported)
            set_rotation_policy(key, rotation, now)
            return collection(POLICY_TYPE, [dict(key.rotation_policy)])

    def get_key_policies(self, instance_id: str, key_id: str, policy=None) -> dict:
        if policy not in (None, "", "rotation"):
            raise _unknown_policy(policy)
        with self._lock:
            key = self._live_key(instance_id, key_id)
            policies = [dict(key.rotation_policy)] if key.rotation_policy else []
            return collection(POLICY_TYPE, policies)


    # --- instance policy keyCreateImportAccess ---

    def put_instance_policy(self, instance_id: str, body, policy=None) -> None:
        if policy not in (None, "", KCIA):
            raise _unknown_policy(policy)
        resource = validate.envelope(body, POLICY_TYPE, "NUM_COLLECTION_RESOURCE_ERR")
        if resource.get("policy_type") != KCIA:
            raise KeyProtectError.of("BODY_QUERY_PARAM_MISMATCH_ERR" if policy else
                                     "BAD_BODY_ERR", target=("field", "policy_type"))
        data = validate.obj(resource.get("policy_data"), "policy_data")
        enabled = validate.boolean(data, "enabled")
        if enabled is None:
            raise validate.field_error("enabled", "a boolean (true or false)")
        attributes = _kcia_attributes(validate.obj(data.get("attributes"), "attributes"))
        with self._lock:
            now = rfc3339(whole_seconds(self.clock.now()))
            self._instance(instance_id).instance_policies[KCIA] = {
                "policy_type": KCIA,
                "policy_data": {"enabled": enabled, "attributes": attributes},
                "createdBy": CREATED_BY, "creationDate": now, "updatedBy": CREATED_BY,
                "lastUpdated": now}

    def get_instance_policies(self, instance_id: str, policy=None) -> dict:
        if policy not in (None, "", KCIA):
            raise _unknown_policy(policy)
        with self._lock:
            policies = self._instance(instance_id).instance_policies
            return collection(POLICY_TYPE, [dict(p) for p in policies.values()])

    def _kcia(self, instance_id: str) -> dict:
        """The effective attributes: all permissive unless an enabled policy says otherwise."""
        policy = self._instance(instance_id).instance_policies.get(KCIA)
        if policy is None or not policy["policy_data"]["enabled"]:
            return dict(KCIA_DEFAULTS)
        return policy["policy_data"]["attributes"]

    def _check_create_access(self, instance_id: str, spec) -> None:
        attributes = self._kcia(instance_id)
        imported = spec.payload is not None or spec.secure
        kind = ("import_" if imported else "create_") + \
               ("standard_key" if spec.extractable else "root_key")
        if not attributes[kind]:
            raise KeyProtectError.of("KEY_CREATE_IMPORT_ACCESS_ERR",
                                     f"The keyCreateImportAccess policy forbids {kind}")
        if imported and not spec.extractable and not spec.secure:
            self._check_token_not_enforced(instance_id, "import")

    def _check_token_not_enforced(self, instance_id: str, what: str) -> None:
        """enforce_token: root-key material may only arrive under an import token."""
        if self._kcia(instance_id)["enforce_token"]:
            raise KeyProtectError.of(
                "KEY_CREATE_IMPORT_ACCESS_ERR",
                f"The keyCreateImportAccess policy requires an import token to {what} "
                "key material")


def rotation_settings(rotation) -> dict:
    """A validated `{"enabled", "interval_month"}` rotation object."""
    rotation = validate.obj(rotation, "rotation")
    interval = validate.integer(rotation, "interval_month", 1, 12)
    if interval is None:
        raise validate.field_error("interval_month", "an integer from 1 to 12")
    return {"enabled": validate.boolean(rotation, "enabled", default=True),
            "interval_month": interval}


def check_rotation_policy_allowed(extractable: bool, imported: bool) -> None:
    """Only generated root keys rotate on a schedule."""
    if extractable:
        raise KeyProtectError.of("KEY_ROOT_REQ_ERR",
                                 "Rotation policy cannot be set on a standard key")
    if imported:
        raise KeyProtectError.of("ROTATION_POLICY_NOT_ALLOWED_ERR")


def set_rotation_policy(key: KeyRecord, rotation: dict, now) -> None:
    previous = key.rotation_policy or {}
    key.rotation_policy = {
        "id": previous.get("id", str(uuid.uuid4())), "crn": key.crn, "rotation": rotation,
        "createdBy": CREATED_BY, "creationDate": previous.get("creationDate", rfc3339(now)),
        "updatedBy": CREATED_BY, "lastUpdateDate": rfc3339(now)}


def _kcia_attributes(given: dict) -> dict:
    unknown = sorted(set(given) - set(KCIA_ATTRIBUTES))
    if unknown:
        raise validate.bad_body(f"Unknown keyCreateImportAccess attribute {unknown[0]}",
                                unknown[0])
    attributes = dict(KCIA_DEFAULTS)
    for name in KCIA_ATTRIBUTES:
        attributes[name] = validate.boolean(given, name, default=KCIA_DEFAULTS[name])
    return attributes


def _unknown_policy(policy) -> KeyProtectError:
    return validate.field_error("policy", "a supported policy name",
                                code="INVALID_QUERY_PARAM_ERR", kind="query_param")
