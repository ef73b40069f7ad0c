"""Keys: create (generate, plain import, secure import), read, list, delete, restore, versions.

The mock's choices (IBM's docs are silent on these: https://cloud.ibm.com/apidocs/key-protect):
- POST /keys: `extractable` defaults to true (IBM's API reference, 2019 spec); `type` may
  be omitted; names 2..90 characters, descriptions 2..240, no control characters;
  `expirationDate` must be RFC 3339 (not other ISO 8601 forms) with a zone and in the
  future; up to 30 tags of up to 30 characters without `<>,:&|`; unknown fields are
  ignored; more than one resource -> BAD_BODY_ERR, said before a collectionTotal that does
  not match the resources -> COLLECTION_TOTAL_MISMATCH_ERR (example 4 of
  https://cloud.ibm.com/docs/key-protect?topic=key-protect-error-messages). Any token field
  on a standard key -> 400 BAD_BODY_ERR. Material: root keys 16/24/32 bytes, standard keys
  1..7,500 bytes, else 400 INVALID_FIELD_ERR naming `payload`.
- Without a Prefer header a create answers the minimal form (type, id, name, state, crn,
  extractable, imported, deleted, plus description/expirationDate when set), as IBM's
  import tutorial shows; `Prefer: return=representation` gives every field (model.py).
- A key past its expirationDate is Deactivated (3) at once, evaluated lazily against the
  clock (the real service takes up to an hour).
- Deleted keys: GET and /metadata answer 200 with state 5; DELETE with
  `Prefer: return=representation` -> 200 with the key, otherwise 204. Restore (no body
  needed; an older-style body is ignored) -> 201 with the key, Active again: 30 s after
  deletion (REQ_TOO_EARLY_ERR), within 30 days (KEY_RESTORE_EXPIRED), not past its
  expirationDate (KEY_EXPIRED_ERR).
- GET /keys lists states 0-3 unless `state` asks for 5, sorted by id (IBM's default);
  limit 1..5000 (default 200); `filter` (filters.py), `search` and `sort` (search.py) and
  the X-Kms-Key-Ring scope apply. Bad query values -> 400 INVALID_QUERY_PARAM_ERR.
- /versions of a non-active key without allKeyStates=true -> 409
  KEY_ACTION_INVALID_STATE_ERR. Standard keys have one version.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from byoklib import protocol
from byoklib.errors import KeyProtectError
from byoklib.mock.hsm import check_root_material

from . import validate
from .aliases import check_aliases_free, check_body_aliases
from .core import DEFAULT_RING, ServiceCore, paging
from .filters import KeyFilter
from .lifecycle import check_dual_auth
from .model import (
    ACTIVE,
    DESTROYED,
    RESTORE_WINDOW,
    STATES,
    WAIT_AFTER_UPDATE,
    Instance,
    KeyRecord,
    Version,
    collection,
)
from .policies import (
    check_create_access,
    check_rotation_policy_allowed,
    dual_auth_settings,
    instance_policy_enabled,
    rotation_settings,
    set_dual_auth_policy,
    set_rotation_policy,
)
from .search import Search, searched, sort_terms, sorted_keys
from .tokens import replaced_token, secure_fields, unwrap_secure_import, usable_token

STANDARD_MAX_BYTES = 7500
TOKEN_FIELDS = ("encryptedNonce", "iv", "encryptionAlgorithm")
LIST_LIMIT = (1, 5000, 200)
DEFAULT_LIST_STATES = (0, 1, 2, 3)   # deleted keys are listed only when asked for


@dataclass
class KeySpec:
    """A validated create request."""
    name: str
    extractable: bool
    description: str | None
    expiration_date: object
    aliases: list
    tags: list
    payload: bytes | None = field(repr=False)   # plain import material (or None)
    secure: bool               # the four secure-import fields are present


class Keys(ServiceCore):

    # --- create ---

    def create_key(self, instance_id: str, body, representation: bool = False,
                   policy_overrides: bool = False) -> dict:
        """POST /keys: one key from a `{metadata, resources: [key]}` body; with
        `policy_overrides` (POST /keys_with_policy_overrides) its `rotation` and
        `dualAuthDelete` objects set the key's policies over the instance's."""
        resource = validate.envelope(body, protocol.KEY)
        spec, rotation, dual = parse_create(resource, policy_overrides, self._now())
        unwrapped = None
        if spec.secure:
            fields = secure_fields(resource, self.flavor)
            # The RSA-4096 unwrap is the slow part, and cryptography releases the GIL while
            # it runs: it runs outside the instance's lock so concurrent imports run in
            # parallel. The state checks run here and again under the lock below.
            with self._reading(instance_id) as instance:
                self._check_create_allowed(instance, spec)
                token = usable_token(instance, self.clock.now())
                replaced = replaced_token(instance, self.clock.now())
            unwrapped = unwrap_secure_import(self.hsm, token, fields, replaced, self.flavor)
        with self._changing(instance_id) as instance:
            now = self._now()
            self._check_create_allowed(instance, spec)
            if spec.secure and instance.token is not token:
                # replaced while this request was opened: judged under the new token, as a
                # request that comes after the replacement is, doctor or not (the doctor
                # keeps the old key pair, so the first unwrap may have worked). A rare race:
                # this once the RSA runs under the lock.
                unwrapped = unwrap_secure_import(self.hsm, usable_token(instance, now), fields,
                                                 replaced_token(instance, now), self.flavor)
            material = self._key_material(spec, unwrapped)
            key = self._store_key(instance, spec, material, now)
            _apply_policies(instance, key, rotation, dual, now)
            return key.representation(now) if representation else key.minimal(now)

    def _check_create_allowed(self, instance: Instance, spec: KeySpec) -> None:
        """The instance's state allows this key: access policy, key ring, free aliases."""
        check_create_access(instance, spec)
        self._check_scope(instance)
        check_aliases_free(instance, spec.aliases)

    def _key_material(self, spec: KeySpec, unwrapped: bytes | None):
        """(material handle or None, standard payload or None, bits, imported);
        `unwrapped` is the material of a secure import."""
        if spec.extractable:
            payload = spec.payload
            imported = payload is not None
            payload = payload if imported else self.hsm.random_bytes(protocol.GENERATED_KEY_BYTES)
            return None, payload, len(payload) * 8, imported
        if spec.secure:
            material = unwrapped
        elif spec.payload is not None:
            material = spec.payload
        else:
            handle = self.hsm.generate_material(protocol.GENERATED_KEY_BYTES)
            return handle, None, handle.bits, False
        return self.hsm.store_material(material), None, len(material) * 8, True

    def _store_key(self, instance: Instance, spec: KeySpec, material, now) -> KeyRecord:
        handle, payload, bits, imported = material
        key_id = str(uuid.uuid4())
        # the first version has an id of its own, not the key's (the mock's choice)
        key = KeyRecord(
            id=key_id, crn=self._crn(instance.id, key_id), name=spec.name,
            extractable=spec.extractable, imported=imported, creation_date=now,
            versions=[Version(str(uuid.uuid4()), now, handle)], bit_length=bits,
            description=spec.description, expiration_date=spec.expiration_date,
            aliases=spec.aliases, tags=spec.tags, payload=payload,
            key_ring=self._check_scope(instance) or DEFAULT_RING,
            alias_dates={alias: now for alias in spec.aliases})
        instance.keys[key_id] = key
        return key

    # --- read ---

    def get_key(self, instance_id: str, key_id: str) -> dict:
        with self._reading(instance_id) as instance:
            return self._key(instance, key_id).representation(self.clock.now())

    def get_key_metadata(self, instance_id: str, key_id: str) -> dict:
        with self._reading(instance_id) as instance:
            return self._key(instance, key_id).metadata(self.clock.now())

    def list_keys(self, instance_id: str, limit=None, offset=None, state=None,
                  extractable=None, key_filter=None, search=None, sort=None) -> dict:
        """GET /keys: the collection, sorted (by id unless `sort` says otherwise) and
        searched (search.py) before `offset` and `limit` cut a page from it."""
        page = paging(limit, offset, LIST_LIMIT)
        query, terms = Search.parse(search), sort_terms(sort)
        wanted = parse_list_query(state, extractable, key_filter)
        with self._reading(instance_id) as instance:
            now = self.clock.now()
            keys = searched(sorted_keys(self._matching(instance, wanted, now), terms, now),
                            query)
            extra = {"searchQuery": query.metadata()} if query else {}
            return collection(protocol.KEY, [k.metadata(now) for k in keys[page]], **extra)

    def key_total(self, instance_id: str, state=None, extractable=None, key_filter=None) -> int:
        wanted = parse_list_query(state, extractable, key_filter)
        with self._reading(instance_id) as instance:
            return len(self._matching(instance, wanted, self.clock.now()))

    def _matching(self, instance: Instance, wanted: tuple, now) -> list[KeyRecord]:
        """Keys passing the parsed list query and the key-ring scope."""
        states, extractable, terms = wanted
        ring = self._check_scope(instance)
        return [k for k in instance.keys.values()
                if k.state(now) in states and (ring is None or k.key_ring == ring)
                and terms.matches(k)
                and (extractable is None or k.extractable == extractable)]

    def list_key_versions(self, instance_id: str, key_id: str, limit=None, offset=None,
                          total_count=None, all_key_states=None) -> dict:
        page = paging(limit, offset, LIST_LIMIT)
        total_count = validate.query_bool(total_count, "totalCount", False)
        all_key_states = validate.query_bool(all_key_states, "allKeyStates", False)
        with self._reading(instance_id) as instance:
            key = self._key(instance, key_id)
            if not all_key_states and key.state(self.clock.now()) != ACTIVE:
                raise KeyProtectError.of(
                    "KEY_ACTION_INVALID_STATE_ERR",
                    "Key is not in a valid state: use allKeyStates=true for non-active keys")
            newest_first = [v.ref() for v in reversed(key.versions)]
            extra = {"totalCount": len(newest_first)} if total_count else {}
            return collection(protocol.KEY_VERSION, newest_first[page], **extra)

    # --- delete and restore ---

    def delete_key(self, instance_id: str, key_id: str, force=None) -> dict:
        validate.query_bool(force, "force")   # no registrations in the mock: only checked
        with self._changing(instance_id) as instance:
            now = self._now()
            key = self._live_key(instance, key_id)
            check_dual_auth(key, now)
            key.set_for_deletion_until = None
            key.stored_state = DESTROYED
            key.deletion_date = key.state_changed = key.last_update_date = now
            return key.representation(now)

    def restore_key(self, instance_id: str, key_id: str) -> dict:
        with self._changing(instance_id) as instance:
            now = self._now()
            key = self._key(instance, key_id)
            _check_restorable(key, now)
            key.stored_state = ACTIVE
            key.deletion_date = None
            key.state_changed = key.last_update_date = now
            return key.representation(now)


# --- parsing (pure: validation only, no state) -------------------------------------------

def parse_create(resource: dict, policy_overrides: bool, now):
    """(spec, rotation override, dualAuthDelete override) of a create request. The
    overrides count only with `policy_overrides`; in plain POST /keys they are ignored
    like any unknown field (the mock's choice)."""
    spec = _key_spec(resource, now)
    rotation = dual = None
    if policy_overrides and resource.get("rotation") is not None:
        rotation = rotation_settings(resource["rotation"])
        check_rotation_policy_allowed(spec.extractable, spec.payload is not None or spec.secure)
    if policy_overrides and resource.get("dualAuthDelete") is not None:
        dual = dual_auth_settings(resource["dualAuthDelete"])["enabled"]
    return spec, rotation, dual


def _key_spec(resource: dict, now) -> KeySpec:
    kind = resource.get("type")
    if kind is not None and kind != protocol.KEY:
        raise validate.field_error("type", protocol.KEY)
    extractable = validate.boolean(resource, "extractable", default=True)
    secure = any(resource.get(f) is not None for f in TOKEN_FIELDS)
    if extractable and secure:
        raise validate.bad_body("Standard keys cannot be imported with an import token",
                                "encryptedNonce")
    spec = KeySpec(
        name=validate.text(resource, "name", 2, 90, required=True),
        extractable=extractable,
        description=validate.text(resource, "description", 2, 240),
        expiration_date=validate.future_date(resource, "expirationDate", now),
        aliases=check_body_aliases(validate.string_list(resource, "aliases", 5, 90) or []),
        tags=validate.tags(resource),
        payload=None if secure else validate.base64_field(resource, "payload"),
        secure=secure)
    if spec.payload is not None and extractable and len(spec.payload) > STANDARD_MAX_BYTES:
        raise validate.field_error("payload",
                                   f"at most {STANDARD_MAX_BYTES:,} bytes of key material")
    if spec.payload is not None and not extractable:
        check_root_material(spec.payload)
    return spec


def parse_list_query(state, extractable, key_filter) -> tuple:
    """(states, extractable, KeyFilter) from the `state`, `extractable` and `filter`
    queries of GET and HEAD /keys."""
    terms = KeyFilter(key_filter)
    for name, value in (("state", state), ("extractable", extractable)):
        if getattr(terms, name) is not None and value not in (None, ""):
            raise KeyProtectError.of(
                "INVALID_QUERY_PARAM_ERR", f"The query_param '{name}' cannot be given "
                "both on its own and in 'filter'", target=("query_param", name))
    state = state if terms.state is None else terms.state
    extractable = extractable if terms.extractable is None else terms.extractable.lower()
    return (validate.query_states(state, STATES, DEFAULT_LIST_STATES),
            validate.query_bool(extractable, "extractable"), terms)


# --- rules over one key --------------------------------------------------------------------

def _apply_policies(instance: Instance, key: KeyRecord, rotation, dual, now) -> None:
    """The overrides, else the instance's enabled policies: a generated root key gets the
    rotation policy, every key the dualAuthDelete one (the mock enforces these two)."""
    if rotation is None and not key.extractable and not key.imported:
        data = instance_policy_enabled(instance, "rotation")
        if data is not None:
            rotation = {"enabled": True, **data["attributes"]}
    if rotation is not None:
        set_rotation_policy(key, rotation, now)
    if dual is None:
        dual = instance_policy_enabled(instance, "dualAuthDelete") is not None
    if dual:
        set_dual_auth_policy(key, True, now)


def _check_restorable(key: KeyRecord, now) -> None:
    if key.stored_state != DESTROYED:
        raise KeyProtectError.of("KEY_ACTION_INVALID_STATE_ERR",
                                 "Only a deleted key can be restored")
    if now - key.deletion_date >= RESTORE_WINDOW:
        raise KeyProtectError.of("KEY_RESTORE_EXPIRED")
    if key.expired(now):
        raise KeyProtectError.of("KEY_EXPIRED_ERR",
                                 "The key has expired: a key past its expirationDate "
                                 "cannot be restored")
    if now - key.state_changed < WAIT_AFTER_UPDATE:
        raise KeyProtectError.of("REQ_TOO_EARLY_ERR")
