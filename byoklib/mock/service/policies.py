"""Policies: a key's rotation and dualAuthDelete policies, and the instance policies
keyCreateImportAccess, dualAuthDelete, rotation, allowedNetwork, allowedIP and metrics.

From IBM's documentation and clients: a key's PUT may set both policies, in one resource
(Python SDK: SetMultipleKeyPoliciesResource) or one resource each (Go client); an instance
PUT may set several distinct policies, the same one twice -> 400
NUM_COLLECTION_RESOURCE_ERR; unknown fields -> 400 BAD_BODY_ERR; a key policy has its own
CRN, `...:policy:<id>`, and a `type` (examples 15, 4 and 14 of
https://cloud.ibm.com/docs/key-protect?topic=key-protect-error-messages,
cited below as "errors #N").

Mock's choices (IBM's docs are silent on these):
- The fields GET shows beside a policy (id, crn, createdBy, ...) are ignored on PUT, so a
  policy read back can be sent again.
- PUT /keys/{id}/policies (`?policy=` may name one; a body for another -> 400
  BODY_QUERY_PARAM_MISMATCH_ERR; neither -> 400 INVALID_FIELD_ERR) answers 200 with the
  policies it set, one resource each, rotation first. GET lists the key's policies
  (rotation first), or the one `?policy=` names.
- A key's dualAuthDelete cannot be reverted once enabled (IBM's KeyPolicyDualAuthDelete
  docstring): `enabled: false` on such a key -> 400 INVALID_FIELD_ERR. Keys show
  `dualAuthDelete: {enabled[, keySetForDeletion, authExpiration]}`.
- Instance policies: 204; with `?policy=`, one resource (NUM_COLLECTION_RESOURCE_ERR
  otherwise). rotation, allowedNetwork and allowedIP need `attributes` when enabled and
  refuse them when disabled (IBM's model docstrings) -> 400 BAD_BODY_ERR, though
  `attributes: {}` with a disabled policy, as IBM's Go client sends, counts as none;
  interval_month 1..12; allowed_network `public-and-private` or `private-only`; allowedIP's
  `allowed_ip` a non-empty list of CIDR subnets, address/prefix length (host bits
  allowed, as in errors #34's example; no netmasks, no IPv6 zones); dualAuthDelete and
  metrics take no attributes.
- Enforced: an enabled instance dualAuthDelete policy gives every key created afterwards
  dualAuthDelete; an enabled instance rotation policy gives every generated root key
  created afterwards that rotation policy (imported and standard keys cannot have one).
  Stored and returned only: allowedNetwork (the mock has one endpoint, neither public nor
  private), allowedIP (enforcing it could lock a learner out of the one endpoint there is,
  with no way back) and metrics.
"""
from __future__ import annotations

import ipaddress
import re
import uuid

from byoklib import protocol
from byoklib.errors import KeyProtectError
from byoklib.protocol import rfc3339

from . import validate
from .core import ServiceCore
from .model import CREATED_BY, Instance, KeyRecord, collection

KCIA = "keyCreateImportAccess"
KCIA_ATTRIBUTES = ("create_root_key", "create_standard_key", "import_root_key",
                   "import_standard_key", "enforce_token")
KEY_POLICIES = ("rotation", "dualAuthDelete")
INSTANCE_POLICIES = (KCIA, "dualAuthDelete", "rotation", "allowedNetwork", "allowedIP",
                     "metrics")
CIDR = re.compile(r"[0-9A-Fa-f:.]+/[0-9]{1,3}")
ALLOWED_NETWORKS = ("public-and-private", "private-only")
# What GET shows besides the policy itself: a PUT of a policy as read back ignores them.
AS_READ = ("id", "crn", "createdBy", "creationDate", "updatedBy", "lastUpdateDate",
           "lastUpdated")
KCIA_DEFAULTS = {"create_root_key": True, "create_standard_key": True, "import_root_key": True,
                 "import_standard_key": True, "enforce_token": False}


class Policies(ServiceCore):

    # --- key policies: rotation, dualAuthDelete ---

    def put_key_policies(self, instance_id: str, key_id: str, body, policy=None) -> dict:
        given = parse_key_policies(body, policy)
        with self._changing(instance_id) as instance:
            now = self._now()
            key = self._live_key(instance, key_id)
            # every check before any change, so a refused pair leaves both policies as they were
            if "rotation" in given:
                check_rotation_policy_allowed(key.extractable, key.imported)
            if "dualAuthDelete" in given:   # checks that it is not a revert before it sets
                set_dual_auth_policy(key, given["dualAuthDelete"]["enabled"], now)
            if "rotation" in given:
                set_rotation_policy(key, given["rotation"], now)
            chosen = [key.rotation_policy if name == "rotation" else key.dual_auth_policy
                      for name in KEY_POLICIES if name in given]
            return collection(protocol.POLICY, [dict(p) for p in chosen])

    def get_key_policies(self, instance_id: str, key_id: str, policy=None) -> dict:
        if policy not in (None, "", *KEY_POLICIES):
            raise _unknown_policy(policy)
        with self._reading(instance_id) as instance:
            key = self._live_key(instance, key_id)
            found = {"rotation": key.rotation_policy, "dualAuthDelete": key.dual_auth_policy}
            return collection(protocol.POLICY, [dict(p) for name, p in found.items()
                                                if p and policy in (None, "", name)])

    # --- instance policies ---

    def put_instance_policy(self, instance_id: str, body, policy=None) -> None:
        settings = parse_instance_policies(body, policy)
        with self._changing(instance_id) as instance:
            now = rfc3339(self._now())
            policies = instance.instance_policies
            for policy_type, policy_data in settings.items():
                created = policies.get(policy_type, {}).get("creationDate", now)
                policies[policy_type] = {
                    "policy_type": policy_type, "policy_data": policy_data,
                    "createdBy": CREATED_BY, "creationDate": created, "updatedBy": CREATED_BY,
                    "lastUpdated": now}

    def get_instance_policies(self, instance_id: str, policy=None) -> dict:
        if policy not in (None, "", *INSTANCE_POLICIES):
            raise _unknown_policy(policy)
        with self._reading(instance_id) as instance:
            return collection(protocol.POLICY, [dict(p) for name, p in
                                                instance.instance_policies.items()
                                                if policy in (None, "", name)])


# --- what the instance policies decide elsewhere (create, rotate) ----------------------

def instance_policy_enabled(instance: Instance, policy_type: str) -> dict | None:
    """The policy_data of an enabled instance policy, else None."""
    policy = instance.instance_policies.get(policy_type)
    return policy["policy_data"] if policy and policy["policy_data"]["enabled"] else None


def _kcia(instance: Instance) -> dict:
    """The effective attributes: all permissive unless an enabled policy says otherwise."""
    data = instance_policy_enabled(instance, KCIA)
    return dict(KCIA_DEFAULTS) if data is None else data["attributes"]


def check_create_access(instance: Instance, spec) -> None:
    """keyCreateImportAccess allows creating the key `spec` describes, else 409
    KEY_CREATE_IMPORT_ACCESS_ERR. The mock's choices: its attributes default to true
    (enforce_token to false) and a disabled policy permits everything; `enforce_token`
    refuses root-key material without a token on create and rotate, while standard-key
    imports are governed by `import_standard_key` only."""
    attributes = _kcia(instance)
    imported = spec.payload is not None or spec.secure
    kind = ("import_" if imported else "create_") + \
           ("standard_key" if spec.extractable else "root_key")
    if not attributes[kind]:
        raise KeyProtectError.of("KEY_CREATE_IMPORT_ACCESS_ERR",
                                 f"The keyCreateImportAccess policy forbids {kind}")
    if imported and not spec.extractable and not spec.secure:
        check_token_not_enforced(instance, "import")


def check_token_not_enforced(instance: Instance, what: str) -> None:
    """enforce_token: root-key material may only arrive under an import token."""
    if _kcia(instance)["enforce_token"]:
        raise KeyProtectError.of(
            "KEY_CREATE_IMPORT_ACCESS_ERR",
            f"The keyCreateImportAccess policy requires an import token to {what} "
            "key material")


# --- parsing (pure: validation only, no state) -------------------------------------------

def parse_key_policies(body, policy=None) -> dict:
    """{policy name: settings} of a key's PUT, in one resource holding both (IBM's Python
    SDK) or one resource each (IBM's Go client); `?policy=` may name the one expected."""
    if policy not in (None, "", *KEY_POLICIES):
        raise _unknown_policy(policy)
    resource = {}
    for item in validate.envelope_resources(body, protocol.POLICY, most=len(KEY_POLICIES)):
        validate.only_fields(item, ("type", *KEY_POLICIES, *AS_READ), "the policy")
        if item.get("type", protocol.POLICY) != protocol.POLICY:
            raise validate.bad_body(f"The type must be {protocol.POLICY}", "type")
        for name in KEY_POLICIES:
            if item.get(name) is not None:
                if name in resource:
                    raise validate.bad_body(f"The {name} policy is given twice", name)
                resource[name] = item[name]
    given = [name for name in KEY_POLICIES if name in resource]
    if not given:
        raise validate.field_error(policy or "rotation", "a policy object")
    if policy and given != [policy]:
        wrong = next(name for name in given if name != policy)
        raise KeyProtectError.of("BODY_QUERY_PARAM_MISMATCH_ERR", target=("field", wrong))
    parsers = {"rotation": rotation_settings, "dualAuthDelete": dual_auth_settings}
    return {name: parsers[name](resource[name]) for name in given}


def parse_instance_policies(body, policy=None) -> dict:
    """{policy_type: policy_data} of an instance PUT: one policy when `?policy=` names
    it; without it, several distinct ones (errors #15: "as long as each policy is
    unique"), applied all or none."""
    if policy not in (None, "", *INSTANCE_POLICIES):
        raise _unknown_policy(policy)
    resources = validate.envelope_resources(body, protocol.POLICY,
                                            "NUM_COLLECTION_RESOURCE_ERR",
                                            most=1 if policy else None)
    settings = {}
    for resource in resources:
        policy_type, policy_data = _instance_policy(resource, policy)
        if policy_type in settings:
            raise KeyProtectError.of("NUM_COLLECTION_RESOURCE_ERR",
                                     f"The {policy_type} policy is given twice",
                                     target=("field", "policy_type"))
        settings[policy_type] = policy_data
    return settings


def rotation_settings(rotation) -> dict:
    """A validated `{"enabled", "interval_month"}` rotation object."""
    rotation = validate.obj(rotation, "rotation")
    validate.only_fields(rotation, ("enabled", "interval_month"), "rotation")
    interval = validate.integer(rotation, "interval_month", 1, 12)
    if interval is None:
        raise validate.field_error("interval_month", "an integer from 1 to 12")
    return {"enabled": validate.boolean(rotation, "enabled", default=True),
            "interval_month": interval}


def check_rotation_policy_allowed(extractable: bool, imported: bool) -> None:
    """Only generated root keys rotate on a schedule: a standard key -> 400
    KEY_ROOT_REQ_ERR, an imported one -> 400 ROTATION_POLICY_NOT_ALLOWED_ERR (the mock's
    choice of codes). The mock records a rotation policy but never rotates on its own."""
    if extractable:
        raise KeyProtectError.of("KEY_ROOT_REQ_ERR",
                                 "Rotation policy cannot be set on a standard key")
    if imported:
        raise KeyProtectError.of("ROTATION_POLICY_NOT_ALLOWED_ERR")


def set_rotation_policy(key: KeyRecord, rotation: dict, now) -> None:
    key.rotation_policy = _policy_resource(key, key.rotation_policy, "rotation", rotation, now)


def _policy_resource(key: KeyRecord, previous: dict | None, name: str, value: dict,
                     now) -> dict:
    """A key policy as GET shows it: its own id and CRN (`...:policy:<id>`, errors #14),
    the policy's type (required in IBM's models), and when it was made and last changed."""
    previous = previous or {}
    policy_id = previous.get("id") or str(uuid.uuid4())
    return {"type": protocol.POLICY, "id": policy_id, "crn": policy_crn(key.crn, policy_id),
            name: value, "createdBy": CREATED_BY,
            "creationDate": previous.get("creationDate", rfc3339(now)),
            "updatedBy": CREATED_BY, "lastUpdateDate": rfc3339(now)}


def policy_crn(key_crn: str, policy_id: str) -> str:
    """The key's CRN with its last segments, `key:<key id>`, made `policy:<policy id>`."""
    return f"{key_crn.rsplit(':', 2)[0]}:policy:{policy_id}"


def dual_auth_settings(value) -> dict:
    value = validate.obj(value, "dualAuthDelete")
    validate.only_fields(value, ("enabled",), "dualAuthDelete")
    enabled = validate.boolean(value, "enabled")
    if enabled is None:
        raise validate.field_error("enabled", "a boolean (true or false)")
    return {"enabled": enabled}


def set_dual_auth_policy(key: KeyRecord, enabled: bool, now) -> None:
    if key.dual_auth and not enabled:
        raise validate.field_error("enabled", "true: a dualAuthDelete policy cannot be "
                                              "reverted once set")
    key.dual_auth = enabled
    key.dual_auth_policy = _policy_resource(key, key.dual_auth_policy, "dualAuthDelete",
                                            {"enabled": enabled}, now)


def _instance_policy(resource: dict, policy) -> tuple[str, dict]:
    """One validated instance-policy resource -> (policy_type, policy_data)."""
    validate.only_fields(resource, ("policy_type", "policy_data", *AS_READ), "the policy")
    policy_type = resource.get("policy_type")
    if policy_type not in INSTANCE_POLICIES or (policy and policy_type != policy):
        raise KeyProtectError.of("BODY_QUERY_PARAM_MISMATCH_ERR" if policy else
                                 "BAD_BODY_ERR", target=("field", "policy_type"))
    data = validate.obj(resource.get("policy_data"), "policy_data")
    validate.only_fields(data, ("enabled", "attributes"), "policy_data")
    enabled = validate.boolean(data, "enabled")
    if enabled is None:
        raise validate.field_error("enabled", "a boolean (true or false)")
    policy_data = {"enabled": enabled}
    given = data.get("attributes")
    if not enabled and given == {}:   # IBM's Go client sends {} with a disabled policy
        given = None
    attributes = _instance_attributes(policy_type, enabled, given)
    if attributes is not None:
        policy_data["attributes"] = attributes
    return policy_type, policy_data


def _instance_attributes(policy_type: str, enabled: bool, given) -> dict | None:
    if policy_type == KCIA:
        return _kcia_attributes(validate.obj(given, "attributes"))
    if policy_type in ("dualAuthDelete", "metrics"):
        if given is not None:
            raise validate.bad_body(f"A {policy_type} policy takes no attributes", "attributes")
        return None
    if not enabled:
        if given is not None:
            raise validate.bad_body("attributes cannot be given when enabled is false",
                                    "attributes")
        return None
    if not isinstance(given, dict):
        raise validate.bad_body("attributes must be given when enabled is true", "attributes")
    if policy_type == "rotation":
        if set(given) - {"interval_month"}:
            raise validate.bad_body("A rotation policy takes only interval_month", "attributes")
        interval = validate.integer(given, "interval_month", 1, 12)
        if interval is None:
            raise validate.field_error("interval_month", "an integer from 1 to 12")
        return {"interval_month": interval}
    if policy_type == "allowedIP":
        return {"allowed_ip": _cidr_list(given)}
    network = given.get("allowed_network")
    if set(given) - {"allowed_network"} or network not in ALLOWED_NETWORKS:
        raise validate.field_error("allowed_network", " or ".join(ALLOWED_NETWORKS))
    return {"allowed_network": network}


def _cidr_list(given: dict) -> list[str]:
    """allowedIP's `allowed_ip`: IPv4 or IPv6 subnets in CIDR notation (IBM's model)."""
    networks = given.get("allowed_ip")
    if set(given) - {"allowed_ip"} or not isinstance(networks, list) or not networks:
        raise validate.field_error("allowed_ip", "a list of IPv4 or IPv6 CIDR subnets")
    for network in networks:
        try:   # address/prefix length only: not 1.2.3.4/255.0.0.0 or an IPv6 zone
            if not isinstance(network, str) or not CIDR.fullmatch(network):
                raise ValueError(network)
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise validate.field_error("allowed_ip", "a list of IPv4 or IPv6 CIDR subnets "
                                                     "such as 10.0.0.0/8") from None
    return list(networks)


def _kcia_attributes(given: dict) -> dict:
    """keyCreateImportAccess attributes: unknown ones -> BAD_BODY_ERR (the mock's choice),
    the missing ones take their defaults."""
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
