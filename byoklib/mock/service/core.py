"""The service's core: the instance table and its locks, instance and key lookup, the
key-ring scope, the clock, paging, and the export/import pair that persistence uses.

Every resource module (tokens, keys, actions, policies, rings, aliases, lifecycle) is a
class built on `ServiceCore` and reaches the state only through it:

- `self._reading(instance_id)` gives the instance under its own lock, or, for an id the
  service has never seen, an empty instance that is never stored: a lookup creates
  nothing, and a GET on an unknown instance answers as an empty instance would.
- `self._changing(instance_id)` gives the instance under its own lock; an unknown id gets
  a new instance that joins the table only when the request succeeds. A refused request
  leaves nothing behind.

Locks: a short table lock guards the instance table; each instance has its own lock, so
requests on one instance never wait for another's. An instance lock is never taken while
the table lock is held (the table lock may be taken inside an instance lock).
"""
from __future__ import annotations

import contextvars
import re
import threading
from contextlib import contextmanager

from byoklib import protocol
from byoklib.errors import KeyProtectError
from byoklib.mock.flavors import flavor_of

from . import validate
from .model import DESTROYED, Instance, KeyRecord, whole_seconds

DEFAULT_RING = "default"

# The mock's choice for the instance id (the `bluemix-instance` header). The real
# service expects a GUID there; the mock accepts a GUID and also a learner's friendly id
# such as `my-instance`: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter
# or digit (a GUID is one of these). Anything else is 400 INVALID_HEADER_ERR naming the
# header, so a probe cannot make the service hold ids of any size or content.
INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

_scope: contextvars.ContextVar[str | None] = contextvars.ContextVar("key_ring", default=None)


def check_instance_id(instance_id) -> str:
    header = protocol.INSTANCE_HEADER.lower()
    if not isinstance(instance_id, str) or not INSTANCE_ID.fullmatch(instance_id):
        raise KeyProtectError.of(
            "INVALID_HEADER_ERR",
            f"The header '{header}' must be: a service instance id (a GUID, "
            "or 1 to 64 letters, digits, '.', '_' or '-' starting with a letter or digit)",
            target=("header", header))
    return instance_id


def paging(limit, offset, bounds: tuple[int, int, int]) -> slice:
    """The page the `limit` (bounds: min, max, default) and `offset` queries ask for."""
    limit = validate.query_int(limit, "limit", *bounds)
    offset = validate.query_int(offset, "offset", 0, 10**9, 0)
    return slice(offset, offset + limit)


class ServiceCore:
    """State, locks and lookups shared by every resource of the service."""

    def __init__(self, clock, hsm, region: str, account_id: str, flavor=None):
        self.clock = clock
        self.hsm = hsm
        self.flavor = flavor_of(flavor)   # Key Protect, or HPCS: byoklib.mock.flavors
        self.region = region
        self.account_id = account_id
        self._table_lock = threading.Lock()
        self._instances: dict[str, Instance] = {}
        # instances that changing requests are working on, not yet in the table:
        # id -> [instance, number of requests using it]
        self._pending: dict[str, list] = {}

    # --- the clock ---

    def _now(self):
        """Now, in whole seconds: times are stored as the API shows them."""
        return whole_seconds(self.clock.now())

    # --- instances ---

    def _new_instance(self, instance_id: str) -> Instance:
        instance = Instance(instance_id)
        instance.rings[DEFAULT_RING] = self._now()
        return instance

    @contextmanager
    def _reading(self, instance_id: str):
        """The instance under its lock; an unknown one as an empty, unstored instance."""
        check_instance_id(instance_id)
        with self._table_lock:
            instance = self._instances.get(instance_id)
        if instance is None:
            yield self._new_instance(instance_id)
            return
        with instance.lock:
            yield instance

    @contextmanager
    def _changing(self, instance_id: str):
        """The instance under its lock; a new one is stored only if the block succeeds."""
        check_instance_id(instance_id)
        with self._table_lock:
            instance = self._instances.get(instance_id)
            pending = instance is None
            if pending:
                entry = self._pending.get(instance_id)
                if entry is None:
                    entry = self._pending[instance_id] = [self._new_instance(instance_id), 0]
                entry[1] += 1
                instance = entry[0]
        try:
            with instance.lock:
                yield instance
                if pending:
                    with self._table_lock:
                        self._instances.setdefault(instance_id, instance)
        finally:
            if pending:
                with self._table_lock:
                    entry = self._pending[instance_id]
                    entry[1] -= 1
                    if entry[1] == 0:
                        del self._pending[instance_id]

    def instance_ids(self) -> list[str]:
        with self._table_lock:
            return list(self._instances)

    # --- persistence (state.py) ---

    def export_instances(self, serialise) -> list:
        """`serialise(instance)` of every instance, each under its own lock."""
        with self._table_lock:
            instances = list(self._instances.values())
        result = []
        for instance in instances:
            with instance.lock:
                result.append(serialise(instance))
        return result

    def import_instances(self, instances: list[Instance]) -> None:
        """Put loaded instances into a service that holds none (ValueError otherwise, or
        when an instance's id is not one the service accepts)."""
        for instance in instances:
            try:
                check_instance_id(instance.id)
            except KeyProtectError:
                raise ValueError("the state holds an instance id the mock does not accept: "
                                 "start with a new state file") from None
        with self._table_lock:
            if self._instances or self._pending:
                raise ValueError("state can only be loaded into an empty service")
            for instance in instances:
                self._instances[instance.id] = instance

    # --- the key-ring scope (the `X-Kms-Key-Ring` header; see rings.py) ---

    @contextmanager
    def key_ring_scope(self, ring_id: str | None):
        """Calls inside see only keys of `ring_id` (None: every ring). A ContextVar, so
        requests on other threads never see each other's scope and no method has to carry
        it; the HTTP face enters it around each call."""
        token = _scope.set(ring_id or None)
        try:
            yield
        finally:
            _scope.reset(token)

    @staticmethod
    def _check_scope(instance: Instance) -> str | None:
        """The scoped ring after checking it exists (404 KEY_RING_NOT_FOUND_ERR)."""
        ring = _scope.get()
        if ring is not None and ring not in instance.rings:
            raise KeyProtectError.of("KEY_RING_NOT_FOUND_ERR",
                                     target=("header", protocol.KEY_RING_HEADER))
        return ring

    # --- keys ---

    def _key(self, instance: Instance, key_id: str) -> KeyRecord:
        """A key by id or alias, deleted or not, in the scoped key ring (if any);
        404 KEY_NOT_FOUND_ERR otherwise (KEY_RING_NOT_FOUND_ERR for an unknown ring)."""
        ring = self._check_scope(instance)
        keys = instance.keys
        key = keys.get(key_id) if isinstance(key_id, str) else None
        if key is None:
            key = next((k for k in keys.values() if key_id in k.aliases), None)
        if key is None or (ring is not None and key.key_ring != ring):
            raise KeyProtectError.of("KEY_NOT_FOUND_ERR")
        return key

    def _live_key(self, instance: Instance, key_id: str) -> KeyRecord:
        """A key that is not deleted; 410 KEY_DELETED_ERR for a deleted one (the mock's
        answer to every action on a deleted key but restore, purge and sync)."""
        key = self._key(instance, key_id)
        if key.stored_state == DESTROYED:
            raise KeyProtectError.of("KEY_DELETED_ERR")
        return key

    def _crn(self, instance_id: str, key_id: str) -> str:
        return (f"crn:v1:bluemix:public:{self.flavor.crn_service}:{self.region}:"
                f"a/{self.account_id}:"
                f"{instance_id}:key:{key_id}")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(region={self.region!r}, "
                f"instances={len(self._instances)}, clock={self.clock!r})")
