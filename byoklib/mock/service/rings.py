"""Key rings: list, create, delete; moving a key between rings; the `X-Kms-Key-Ring` scope.

Every instance has the ring `default`, which cannot be created or deleted. A key belongs
to exactly one ring: the ring named when it was created, else `default`.

The ring a request names (the `X-Kms-Key-Ring` header) is a per-call scope
(`ServiceCore.key_ring_scope`). Without one, keys are looked up in every ring and created
in `default`, as IBM's client docstrings describe ("When the header is not specified, Key
Protect will perform a key ring lookup").

Mock's choices (IBM's docs are silent on these for key rings):
- Ring ids: 2..100 characters of letters, digits and `-` (IBM's console rules), else
  400 INVALID_PATH_PARAM_ERR naming `key_ring_id`. Creating an existing ring (`default`
  included) -> 409 KEY_RING_EXISTS_ERR; deleting `default` -> 400 KEY_RING_RESERVED_ERR;
  an unknown ring -> 404 KEY_RING_NOT_FOUND_ERR (also when a request's header names one).
- At most 50 rings, `default` included ("The maximum amount of key rings is 50 per
  service instance", https://cloud.ibm.com/docs/key-protect?topic=key-protect-grouping-keys);
  a 51st -> 400 KEY_RING_QUOTA_ERR (the code is the mock's).
- Deleting a ring that holds keys -> 409 KEY_RING_NOT_EMPTY_ERR. With `force=true` a ring
  whose keys are all deleted (state 5) is deleted and those keys move to `default`, as
  IBM's delete_key_ring docstring says; live keys still refuse it.
- A key looked up with a header naming another (existing) ring answers 404
  KEY_NOT_FOUND_ERR, exactly as a key that does not exist: the ring is a scope, and a key
  outside it is not visible. GET /keys and HEAD /keys with the header count only that ring.
- GET /key_rings: `{metadata: {collectionType: application/vnd.ibm.kms.key_ring+json,
  collectionTotal[, totalCount]}, resources: [{id, creationDate, createdBy}]}`, oldest
  first (`default` first, dated at the instance's first use); limit 1..5000 (default 100).
- PATCH /keys/{id}: body `{"keyRingID": ring}` (or the same object as the one resource of
  a `{metadata, resources}` envelope); any other field or a missing/non-string keyRingID
  -> 400 BAD_BODY_ERR; a deleted key -> 410 KEY_DELETED_ERR; answers the key's full
  representation.
"""
from __future__ import annotations

import re

from byoklib import protocol
from byoklib.errors import KeyProtectError
from byoklib.protocol import rfc3339

from . import validate
from .core import DEFAULT_RING, ServiceCore, paging
from .model import CREATED_BY, DESTROYED, collection

RING_ID = re.compile(r"[A-Za-z0-9-]{2,100}")
RING_LIST_LIMIT = (1, 5000, 100)
MAX_KEY_RINGS = 50


class Rings(ServiceCore):

    # --- the API ---

    def list_key_rings(self, instance_id: str, limit=None, offset=None,
                       total_count=None) -> dict:
        page = paging(limit, offset, RING_LIST_LIMIT)
        total_count = validate.query_bool(total_count, "totalCount", False)
        with self._reading(instance_id) as instance:
            resources = [{"id": ring, "creationDate": rfc3339(created), "createdBy": CREATED_BY}
                         for ring, created in instance.rings.items()]
            extra = {"totalCount": len(resources)} if total_count else {}
            return collection(protocol.KEY_RING, resources[page], **extra)

    def create_key_ring(self, instance_id: str, ring_id: str) -> None:
        _check_ring_id(ring_id)
        with self._changing(instance_id) as instance:
            rings = instance.rings
            if ring_id in rings:
                raise KeyProtectError.of("KEY_RING_EXISTS_ERR")
            if len(rings) >= MAX_KEY_RINGS:
                raise KeyProtectError.of("KEY_RING_QUOTA_ERR")
            rings[ring_id] = self._now()

    def delete_key_ring(self, instance_id: str, ring_id: str, force=None) -> None:
        _check_ring_id(ring_id)
        if ring_id == DEFAULT_RING:
            raise KeyProtectError.of("KEY_RING_RESERVED_ERR")
        force = validate.query_bool(force, "force", False)
        with self._changing(instance_id) as instance:
            if ring_id not in instance.rings:
                raise KeyProtectError.of("KEY_RING_NOT_FOUND_ERR")
            now = self.clock.now()
            members = [k for k in instance.keys.values() if k.key_ring == ring_id]
            if members and not (force and all(k.state(now) == DESTROYED for k in members)):
                raise KeyProtectError.of("KEY_RING_NOT_EMPTY_ERR")
            for key in members:
                key.key_ring = DEFAULT_RING
            del instance.rings[ring_id]

    def patch_key(self, instance_id: str, key_id: str, body) -> dict:
        target = _patch_target(body)
        with self._changing(instance_id) as instance:
            key = self._live_key(instance, key_id)
            if target not in instance.rings:
                raise KeyProtectError.of("KEY_RING_NOT_FOUND_ERR", target=("field", "keyRingID"))
            now = self._now()
            if key.key_ring != target:
                key.key_ring = target
                key.last_update_date = now
            return key.representation(now)


def _check_ring_id(ring_id) -> None:
    if not isinstance(ring_id, str) or not RING_ID.fullmatch(ring_id):
        raise KeyProtectError.of(
            "INVALID_PATH_PARAM_ERR",
            "The path parameter 'key_ring_id' must be: 2 to 100 letters, digits or '-'",
            target=("path_param", "key_ring_id"))


def _patch_target(body) -> str:
    if isinstance(body, dict) and "resources" in body:
        body = validate.envelope(body, protocol.KEY)
    if not isinstance(body, dict) or set(body) - {"keyRingID", "type"}:
        raise validate.bad_body("Only keyRingID can be patched")
    target = body.get("keyRingID")
    if not isinstance(target, str) or not target:
        raise validate.bad_body("keyRingID must be a key ring id", "keyRingID")
    return target
