"""The service's records (instances, tokens, keys, versions) and their JSON shapes.

Records hold no key material of root keys (that stays in the HSM behind handles);
a standard key's payload is held here because the API returns it, and every repr
redacts it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from byoklib import protocol
from byoklib.primitives import b64encode
from byoklib.protocol import rfc3339

ACTIVE, SUSPENDED, DEACTIVATED, DESTROYED = 1, 2, 3, 5
STATES = (0, ACTIVE, SUSPENDED, DEACTIVATED, DESTROYED)

CREATED_BY = "IBMid-mock-user"       # the mock has no IAM: one fixed subject
WAIT_AFTER_UPDATE = timedelta(seconds=30)
ROTATION_INTERVAL = timedelta(hours=1)
RESTORE_WINDOW = timedelta(days=30)
PURGE_AFTER = timedelta(hours=4)
PURGE_SCHEDULED = timedelta(days=90)


def whole_seconds(moment: datetime) -> datetime:
    """Times are stored as the API shows them, so what a client sees is what counts."""
    return moment.replace(microsecond=0)


@dataclass(eq=False)
class TokenRecord:
    creation_date: datetime
    expiration_date: datetime
    max_allowed_retrievals: int
    remaining_retrievals: int
    transport_key: object          # hsm.TransportKey handle
    nonce: bytes = field(repr=False)
    public_key_pem: bytes = field(repr=False)

    def expired(self, now: datetime) -> bool:
        return now >= self.expiration_date

    def metadata(self) -> dict:
        return {
            "creationDate": rfc3339(self.creation_date),
            "expirationDate": rfc3339(self.expiration_date),
            "maxAllowedRetrievals": self.max_allowed_retrievals,
            "remainingRetrievals": self.remaining_retrievals,
        }


@dataclass(eq=False)
class Version:
    id: str
    creation_date: datetime
    material: object = field(repr=False)   # hsm.MaterialHandle (root) or None (standard)

    def ref(self) -> dict:
        return {"id": self.id, "creationDate": self.created}

    @cached_property
    def created(self) -> str:   # the date never changes; every wrap answers it
        return rfc3339(self.creation_date)


@dataclass(eq=False)
class KeyRecord:
    id: str
    crn: str
    name: str
    extractable: bool
    imported: bool
    creation_date: datetime
    versions: list[Version]                # oldest first
    bit_length: int
    description: str | None = None
    expiration_date: datetime | None = None
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    payload: bytes | None = field(default=None, repr=False)   # standard keys only
    stored_state: int = ACTIVE
    last_update_date: datetime | None = None
    last_rotate_date: datetime | None = None
    state_changed: datetime | None = None  # last disable/enable/delete/restore (30 s rule)
    deletion_date: datetime | None = None
    rotation_policy: dict | None = None
    key_ring: str = "default"
    alias_dates: dict = field(default_factory=dict)   # alias -> creation date
    dual_auth: bool = False
    dual_auth_policy: dict | None = None
    set_for_deletion_until: datetime | None = None   # dual-auth first authorisation
    last_sync: datetime | None = None

    def __post_init__(self):
        self.last_update_date = self.last_update_date or self.creation_date

    @property
    def latest(self) -> Version:
        return self.versions[-1]

    def state(self, now: datetime) -> int:
        """Stored state, except that a key past its expirationDate is Deactivated.

        Evaluated lazily on every read, so the clock alone moves keys into state 3.
        """
        if self.stored_state == DESTROYED:
            return DESTROYED
        if self.expired(now):
            return DEACTIVATED
        return self.stored_state

    def expired(self, now: datetime) -> bool:
        return self.expiration_date is not None and now >= self.expiration_date

    # --- representations ---

    def minimal(self, now: datetime) -> dict:
        state = self.state(now)
        body = {"type": protocol.KEY, "id": self.id, "name": self.name, "state": state,
                "crn": self.crn, "extractable": self.extractable, "imported": self.imported,
                "deleted": state == DESTROYED}
        _put(body, "description", self.description)
        _put(body, "expirationDate", rfc3339(self.expiration_date))
        return body

    def metadata(self, now: datetime) -> dict:
        """Every field of the full representation except the payload. The mock's choices:
        algorithmType and algorithmMode "Deprecated" (as IBM's current docs show), one
        fixed createdBy/deletedBy (CREATED_BY), nonactiveStateReason 2 for a key its
        expirationDate deactivated."""
        state = self.state(now)
        body = {
            "type": protocol.KEY, "id": self.id, "name": self.name, "aliases": list(self.aliases),
            "tags": list(self.tags), "state": state, "extractable": self.extractable,
            "crn": self.crn, "imported": self.imported, "keyRingID": self.key_ring,
            "creationDate": rfc3339(self.creation_date), "createdBy": CREATED_BY,
            "algorithmType": "Deprecated",
            "algorithmMetadata": {"bitLength": str(self.bit_length), "mode": "Deprecated"},
            "algorithmBitSize": self.bit_length, "algorithmMode": "Deprecated",
            "lastUpdateDate": rfc3339(self.last_update_date),
            "keyVersion": self.latest.ref(),
            "dualAuthDelete": self._dual_auth_fields(now),
            "deleted": state == DESTROYED,
        }
        _put(body, "description", self.description)
        _put(body, "expirationDate", rfc3339(self.expiration_date))
        _put(body, "lastRotateDate", rfc3339(self.last_rotate_date))
        if self.rotation_policy is not None:
            body["rotation"] = dict(self.rotation_policy["rotation"])
        if state == DEACTIVATED and self.expired(now):
            body["nonactiveStateReason"] = 2   # the mock's code for "expired"
        if state == DESTROYED:
            body.update(self._deletion_fields(now))
        return body

    def set_for_deletion(self, now: datetime) -> bool:
        until = self.set_for_deletion_until
        return until is not None and now < until

    def _dual_auth_fields(self, now: datetime) -> dict:
        fields = {"enabled": self.dual_auth}
        if self.dual_auth:
            fields["keySetForDeletion"] = self.set_for_deletion(now)
            if fields["keySetForDeletion"]:
                fields["authExpiration"] = rfc3339(self.set_for_deletion_until)
        return fields

    def _deletion_fields(self, now: datetime) -> dict:
        restore_until = self.deletion_date + RESTORE_WINDOW
        return {"deletionDate": rfc3339(self.deletion_date), "deletedBy": CREATED_BY,
                "restoreExpirationDate": rfc3339(restore_until),
                "restoreAllowed": now < restore_until and not self.expired(now),
                "purgeAllowed": now >= self.deletion_date + PURGE_AFTER,
                "purgeAllowedFrom": rfc3339(self.deletion_date + PURGE_AFTER),
                "purgeScheduledOn": rfc3339(self.deletion_date + PURGE_SCHEDULED)}

    def representation(self, now: datetime) -> dict:
        body = self.metadata(now)
        if self.extractable and self.payload is not None and body["state"] != DESTROYED:
            body["payload"] = b64encode(self.payload)
        return body


@dataclass(eq=False)
class Instance:
    id: str
    token: TokenRecord | None = None
    replaced_token: TokenRecord | None = None   # kept for the import doctor (tokens.py)
    keys: dict[str, KeyRecord] = field(default_factory=dict)   # insertion = creation order
    instance_policies: dict[str, dict] = field(default_factory=dict)
    rings: dict[str, datetime] = field(default_factory=dict)   # ring id -> creation date
    # guards this instance's records (see core.py); re-entrant, as a call may nest another
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __repr__(self) -> str:
        return f"Instance(id={self.id!r}, keys={len(self.keys)}, token={self.token is not None})"


def collection(collection_type: str, resources: list, **extra) -> dict:
    return {"metadata": {"collectionType": collection_type,
                         "collectionTotal": len(resources), **extra},
            "resources": resources}


def _put(body: dict, name: str, value) -> None:
    if value is not None:
        body[name] = value
