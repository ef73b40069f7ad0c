"""End of a key's life: dual-authorisation delete, purge, sync, registrations.

- `setKeyForDeletion` / `unsetKeyForDeletion` (POST /keys/{id}/actions/...): the first
  authorisation of a dual-auth delete, and its withdrawal; 204.
- DELETE /keys/{id} of a key with a dualAuthDelete policy needs that first authorisation
  (`check_dual_auth`, which keys.py calls).
- DELETE /keys/{id}/purge: 4 hours after deletion (REQ_TOO_EARLY_ERR before, with the
  service's "Purge operation is allowed 4h0m0s after key is deleted"), then the key is gone
  (404 KEY_NOT_FOUND_ERR) and its material leaves the HSM's table.
- POST /keys/{id}/actions/sync: 204; registrations: empty lists (the mock has no other
  IBM Cloud services that could register a resource).

Mock's choices (IBM's docs are silent):
- A first authorisation lasts 7 days (IBM docs: "the authorization expires after seven
  days"); the mock has one user, so the same caller may give both authorisations.
  setKeyForDeletion/unsetKeyForDeletion on a key without the policy -> 409
  NOT_DUAL_AUTH_ERR; a delete without a live authorisation -> 409 AUTHORIZATIONS_NOT_MET;
  unset when nothing is set answers 204 and changes nothing; both need a live key (410).
- Purge of a key that is not deleted -> 409 KEY_ACTION_INVALID_STATE_ERR. A purged key's
  aliases are free again. `Prefer: return=representation` answers 200 with the key as it
  was purged, otherwise 204. Deleted keys show purgeAllowed, purgeAllowedFrom (deletion +
  4 h) and purgeScheduledOn (deletion + 90 days; the mock does not purge on its own).
- Sync: once per hour per key, counted from the last sync (409 REQ_TOO_EARLY_ERR before);
  allowed for deleted keys too (the case it exists for).
- Registrations: GET /keys/{id}/registrations (the key must exist in scope) and
  GET /keys/registrations answer `{metadata: {collectionType:
  application/vnd.ibm.kms.registration+json, collectionTotal: 0[, totalCount: 0]},
  resources: []}`; limit/offset/totalCount/preventKeyDeletion are checked like other
  queries, urlEncodedResourceCRNQuery is accepted.
"""
from __future__ import annotations

from datetime import timedelta

from byoklib import protocol
from byoklib.errors import KeyProtectError

from . import validate
from .core import ServiceCore, paging
from .model import DESTROYED, PURGE_AFTER, Instance, KeyRecord, collection

DUAL_AUTH_WINDOW = timedelta(days=7)
SYNC_INTERVAL = timedelta(hours=1)


class Lifecycle(ServiceCore):

    # --- dual authorisation ---

    def set_key_for_deletion(self, instance_id: str, key_id: str, body=None) -> None:
        validate.obj(body)
        with self._changing(instance_id) as instance:
            now = self._now()
            key = self._dual_auth_key(instance, key_id)
            key.set_for_deletion_until = now + DUAL_AUTH_WINDOW

    def unset_key_for_deletion(self, instance_id: str, key_id: str, body=None) -> None:
        validate.obj(body)
        with self._changing(instance_id) as instance:
            key = self._dual_auth_key(instance, key_id)
            key.set_for_deletion_until = None

    def _dual_auth_key(self, instance: Instance, key_id: str) -> KeyRecord:
        key = self._live_key(instance, key_id)
        if not key.dual_auth:
            raise KeyProtectError.of("NOT_DUAL_AUTH_ERR")
        return key

    # --- purge ---

    def purge_key(self, instance_id: str, key_id: str) -> dict:
        with self._changing(instance_id) as instance:
            now = self._now()
            key = self._key(instance, key_id)
            if key.stored_state != DESTROYED:
                raise KeyProtectError.of("KEY_ACTION_INVALID_STATE_ERR",
                                         "Only a deleted key can be purged")
            if now < key.deletion_date + PURGE_AFTER:
                raise KeyProtectError.of(
                    "REQ_TOO_EARLY_ERR", "Purge operation is allowed 4h0m0s after key is deleted")
            body = key.representation(now)
            del instance.keys[key.id]
            for version in key.versions:
                self.hsm.forget_material(version.material)
            return body

    # --- sync and registrations ---

    def sync(self, instance_id: str, key_id: str, body=None) -> None:
        validate.obj(body)
        with self._changing(instance_id) as instance:
            now = self._now()
            key = self._key(instance, key_id)
            if key.last_sync is not None and now - key.last_sync < SYNC_INTERVAL:
                raise KeyProtectError.of(
                    "REQ_TOO_EARLY_ERR", "A sync of this key is allowed once per hour")
            key.last_sync = now

    def list_registrations(self, instance_id: str, key_id: str | None = None, limit=None,
                           offset=None, total_count=None, prevent_key_deletion=None) -> dict:
        paging(limit, offset, (1, 5000, 200))   # checked; there is never a page to cut
        total_count = validate.query_bool(total_count, "totalCount", False)
        validate.query_bool(prevent_key_deletion, "preventKeyDeletion")
        with self._reading(instance_id) as instance:
            if key_id is not None:
                self._key(instance, key_id)
            else:
                self._check_scope(instance)   # an unknown key ring is 404, as everywhere
            extra = {"totalCount": 0} if total_count else {}
            return collection(protocol.REGISTRATION, [], **extra)


def check_dual_auth(key: KeyRecord, now) -> None:
    """A key with a dualAuthDelete policy is deleted only after a first authorisation."""
    if key.dual_auth and not key.set_for_deletion(now):
        raise KeyProtectError.of("AUTHORIZATIONS_NOT_MET")
