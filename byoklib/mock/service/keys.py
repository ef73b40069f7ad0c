"""Keys: create (generate, plain import, secure import), read, list, delete, restore, versions."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from byoklib import protocol
from byoklib.errors import KeyProtectError
from byoklib.mock.hsm import check_root_material

from . import validate
from .aliases import check_body_aliases
from .filters import KeyFilter
from .model import (
    ACTIVE,
    DESTROYED,
    RESTORE_WINDOW,
    STATES,
    WAIT_AFTER_UPDATE,
    KeyRecord,
    Version,
    collection,
    whole_seconds,
)
from .policies import (
    check_rotation_policy_allowed,
    dual_auth_settings,
    rotation_settings,
    set_dual_auth_policy,
    set_rotation_policy,
)
from .search import Search, searched, sort_terms, sorted_keys
from .tokens import secure_fields

STANDARD_MAX_BYTES = 7500
GENERATED_BYTES = 32
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


class KeysMixin:

    # --- create ---

    def create_key(self, instance_id: str, body, representation: bool = False,
                   policy_overrides: bool = False) -> dict:
        """POST /keys: one key from a `{metadata, resources: [key]}` body.

        With `policy_overrides` (POST /keys_with_policy_overrides) a `rotation` object in
        the resource sets the key's rotation policy at creation.
        """
        resource = validate.envelope(body, protocol.KEY)
        spec, rotation = self._validated_spec(resource, policy_overrides)
        unwrapped = None
        if spec.secure:
            # The RSA-4096 unwrap takes milliseconds, and cryptography releases the GIL
            # while it runs: do it outside the service's lock so concurrent imports run
            # in parallel. The state checks run first here and again under the lock
            # below; the token is the one current when the request arrived.
            with self._lock:
                self._check_create_allowed(instance_id, spec)
                fields = secure_fields(resource, self.flavor)
                token = self._usable_token(instance_id)
            unwrapped = self._unwrap_secure_import(token, fields)
        with self._lock:
            now = whole_seconds(self.clock.now())
            self._check_create_allowed(instance_id, spec)
            material = self._key_material(spec, unwrapped)
            key = self._store_key(instance_id, spec, material, now)
            self._apply_policies(instance_id, key, resource, rotation, policy_overrides, now)
            return key.representation(now) if representation else key.minimal(now)

    def _apply_policies(self, instance_id, key, resource, rotation, policy_overrides, now):
        """Overrides first, else the instance's enabled dualAuthDelete / rotation policies."""
        if rotation is None and not key.extractable and not key.imported:
            data = self._instance_policy_enabled(instance_id, "rotation")
            if data is not None:
                rotation = {"enabled": True, **data["attributes"]}
        if rotation is not None:
            set_rotation_policy(key, rotation, now)
        dual = self._instance_policy_enabled(instance_id, "dualAuthDelete") is not None
        if policy_overrides and resource.get("dualAuthDelete") is not None:
            dual = dual_auth_settings(resource["dualAuthDelete"])["enabled"]
        if dual:
            set_dual_auth_policy(key, True, now)

    def _validated_spec(self, resource: dict, policy_overrides: bool):
        """The key spec and rotation override of a create request: its fields checked,
        no state looked at (safe outside the lock)."""
        spec = self._key_spec(resource, whole_seconds(self.clock.now()))
        rotation = self._rotation_override(resource, spec) if policy_overrides else None
        if policy_overrides and resource.get("dualAuthDelete") is not None:
            dual_auth_settings(resource["dualAuthDelete"])   # checked before anything changes
        return spec, rotation

    def _check_create_allowed(self, instance_id: str, spec: KeySpec) -> None:
        """The instance's state allows this key: access policy, key ring, free aliases."""
        self._check_create_access(instance_id, spec)
        self._check_scope(instance_id)
        self._check_aliases_free(instance_id, spec.aliases)

    @staticmethod
    def _rotation_override(resource: dict, spec: KeySpec) -> dict | None:
        if resource.get("rotation") is None:
            return None
        rotation = rotation_settings(resource["rotation"])
        check_rotation_policy_allowed(spec.extractable, spec.payload is not None or spec.secure)
        return rotation

    def _key_spec(self, resource: dict, now) -> KeySpec:
        kind = resource.get("type")
        if kind is not None and kind != protocol.KEY:
            raise validate.field_error("type", protocol.KEY)
        extractable = validate.boolean(resource, "extractable", default=True)
        secure = any(resource.get(f) is not None for f in TOKEN_FIELDS)
        if extractable and secure:
            raise validate.bad_body("Standard keys cannot be imported with an import token",
                                    "encryptedNonce")
        return KeySpec(
            name=validate.text(resource, "name", 2, 90, required=True),
            extractable=extractable,
            description=validate.text(resource, "description", 2, 240),
            expiration_date=validate.future_date(resource, "expirationDate", now),
            aliases=check_body_aliases(validate.string_list(resource, "aliases", 5, 90) or []),
            tags=validate.tags(resource),
            payload=None if secure else validate.base64_field(resource, "payload"),
            secure=secure)

    def _key_material(self, spec: KeySpec, unwrapped: bytes | None):
        """(material handle or None, standard payload or None, bits, imported);
        `unwrapped` is the material of a secure import."""
        if spec.extractable:
            payload = spec.payload
            if payload is not None and len(payload) > STANDARD_MAX_BYTES:
                raise validate.field_error("payload", "at most 7,500 bytes of key material")
            imported = payload is not None
            payload = payload if imported else self.hsm.random_bytes(GENERATED_BYTES)
            return None, payload, len(payload) * 8, imported
        if spec.secure:
            material = unwrapped
        elif spec.payload is not None:
            material = spec.payload
            check_root_material(material)
        else:
            handle = self.hsm.generate_material(GENERATED_BYTES)
            return handle, None, handle.bits, False
        return self.hsm.store_material(material), None, len(material) * 8, True

    def _store_key(self, instance_id: str, spec: KeySpec, material, now) -> KeyRecord:
        handle, payload, bits, imported = material
        key_id = str(uuid.uuid4())
        key = KeyRecord(
            id=key_id, crn=self._crn(instance_id, key_id), name=spec.name,
            extractable=spec.extractable, imported=imported, creation_date=now,
            versions=[Version(str(uuid.uuid4()), now, handle)], bit_length=bits,
            description=spec.description, expiration_date=spec.expiration_date,
            aliases=spec.aliases, tags=spec.tags, payload=payload,
            key_ring=self._check_scope(instance_id) or "default",
            alias_dates={alias: now for alias in spec.aliases})
        self._instance(instance_id).keys[key_id] = key
        return key

    def _crn(self, instance_id: str, key_id: str) -> str:
        return (f"crn:v1:bluemix:public:{self.flavor.crn_service}:{self.region}:a/{self.account_id}:"
                f"{instance_id}:key:{key_id}")

    # --- read ---

    def get_key(self, instance_id: str, key_id: str) -> dict:
        with self._lock:
            return self._key(instance_id, key_id).representation(self.clock.now())

    def get_key_metadata(self, instance_id: str, key_id: str) -> dict:
        with self._lock:
            return self._key(instance_id, key_id).metadata(self.clock.now())

    def list_keys(self, instance_id: str, limit=None, offset=None, state=None,
                  extractable=None, key_filter=None, search=None, sort=None) -> dict:
        """GET /keys: the collection, sorted (by id unless `sort` says otherwise) and
        searched (search.py) before `offset` and `limit` cut a page from it."""
        limit = validate.query_int(limit, "limit", *LIST_LIMIT)
        offset = validate.query_int(offset, "offset", 0, 10**9, 0)
        query, terms = Search.parse(search), sort_terms(sort)
        with self._lock:
            now = self.clock.now()
            keys = self._matching(instance_id, state, extractable, now, key_filter)
            keys = searched(sorted_keys(keys, terms, now), query)
            extra = {"searchQuery": query.metadata()} if query else {}
            return collection(protocol.KEY, [k.metadata(now) for k in keys[offset:offset + limit]],
                              **extra)

    def key_total(self, instance_id: str, state=None, extractable=None, key_filter=None) -> int:
        with self._lock:
            return len(self._matching(instance_id, state, extractable, self.clock.now(),
                                      key_filter))

    def _matching(self, instance_id, state, extractable, now, key_filter=None
                  ) -> list[KeyRecord]:
        """Keys passing the state/extractable queries, the `filter` query (filters.py)
        and the key-ring scope."""
        terms = KeyFilter(key_filter)
        for name, value in (("state", state), ("extractable", extractable)):
            if getattr(terms, name) is not None and value not in (None, ""):
                raise KeyProtectError.of(
                    "INVALID_QUERY_PARAM_ERR", f"The query_param '{name}' cannot be given "
                    "both on its own and in 'filter'", target=("query_param", name))
        state = state if terms.state is None else terms.state
        extractable = extractable if terms.extractable is None else terms.extractable.lower()
        states = validate.query_states(state, STATES, DEFAULT_LIST_STATES)
        extractable = validate.query_bool(extractable, "extractable")
        ring = self._check_scope(instance_id)
        return [k for k in self._instance(instance_id).keys.values()
                if k.state(now) in states and (ring is None or k.key_ring == ring)
                and terms.matches(k)
                and (extractable is None or k.extractable == extractable)]

    def list_key_versions(self, instance_id: str, key_id: str, limit=None, offset=None,
                          total_count=None, all_key_states=None) -> dict:
        limit = validate.query_int(limit, "limit", *LIST_LIMIT)
        offset = validate.query_int(offset, "offset", 0, 10**9, 0)
        total_count = validate.query_bool(total_count, "totalCount", False)
        all_key_states = validate.query_bool(all_key_states, "allKeyStates", False)
        with self._lock:
            key = self._key(instance_id, key_id)
            if not all_key_states and key.state(self.clock.now()) != ACTIVE:
                raise KeyProtectError.of(
                    "KEY_ACTION_INVALID_STATE_ERR",
                    "Key is not in a valid state: use allKeyStates=true for non-active keys")
            newest_first = [v.ref() for v in reversed(key.versions)]
            extra = {"totalCount": len(newest_first)} if total_count else {}
            return collection(protocol.KEY_VERSION, newest_first[offset:offset + limit], **extra)

    # --- delete and restore ---

    def delete_key(self, instance_id: str, key_id: str, force=None) -> dict:
        validate.query_bool(force, "force")   # no registrations in the mock: only checked
        with self._lock:
            now = whole_seconds(self.clock.now())
            key = self._live_key(instance_id, key_id)
            self._check_dual_auth(key, now)
            key.set_for_deletion_until = None
            key.stored_state = DESTROYED
            key.deletion_date = key.state_changed = key.last_update_date = now
            return key.representation(now)

    def restore_key(self, instance_id: str, key_id: str) -> dict:
        with self._lock:
            now = whole_seconds(self.clock.now())
            key = self._key(instance_id, key_id)
            self._check_restorable(key, now)
            key.stored_state = ACTIVE
            key.deletion_date = None
            key.state_changed = key.last_update_date = now
            return key.representation(now)

    @staticmethod
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

    # --- lookup ---

    def _key(self, instance_id: str, key_id: str) -> KeyRecord:
        """A key by id or alias, deleted or not, in the scoped key ring (if any);
        404 KEY_NOT_FOUND_ERR otherwise (KEY_RING_NOT_FOUND_ERR for an unknown ring)."""
        ring = self._check_scope(instance_id)
        keys = self._instance(instance_id).keys
        key = keys.get(key_id) if isinstance(key_id, str) else None
        if key is None:
            key = next((k for k in keys.values() if key_id in k.aliases), None)
        if key is None or (ring is not None and key.key_ring != ring):
            raise KeyProtectError.of("KEY_NOT_FOUND_ERR")
        return key

    def _live_key(self, instance_id: str, key_id: str) -> KeyRecord:
        """A key that is not deleted; 410 KEY_DELETED_ERR for a deleted one."""
        key = self._key(instance_id, key_id)
        if key.stored_state == DESTROYED:
            raise KeyProtectError.of("KEY_DELETED_ERR")
        return key
