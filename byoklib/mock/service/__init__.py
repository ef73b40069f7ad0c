"""The in-memory Key Protect: instances, import tokens, keys, versions, states, policies.

`KeyProtectService` knows nothing of HTTP: its methods take the instance id first,
plain values or parsed JSON bodies, return JSON-ready dicts, and raise `KeyProtectError`.
One re-entrant lock guards all state, so a threaded server may call it from any thread;
every method validates its whole request before it changes anything, so a refused
request leaves no trace (no half-created key, no retrieval counted). Time comes from an
injectable clock (`SystemClock`, `ManualClock`); secrets stay in the `HSM`.

The code is split by resource: `tokens.py`, `keys.py`, `actions.py`, `policies.py`,
`rings.py`, `aliases.py`, `lifecycle.py`, over `model.py` (records and their JSON) and `validate.py` (field checks).

Mock's choices (behaviours the reference marks UNCONFIRMED; the mock picks one):
- Import tokens: POST answers 200 with creationDate, expirationDate, maxAllowedRetrievals,
  remainingRetrievals only (no `id`, no `expiration`). Out-of-range or non-integer
  `expiration` / `maxAllowedRetrievals` (booleans and strings included; 600.0 counts as 600)
  -> 400 INVALID_FIELD_ERR naming the field. GET with no token -> 404
  IMPORT_TOKEN_NOT_FOUND_ERR; retrievals used up -> 409 IMPORT_TOKEN_RETRIEVALS_EXCEEDED_ERR;
  expiry is checked first (409 IMPORT_TOKEN_EXPIRED_ERR). A refused GET counts nothing.
- Imports with a token are accepted until the token expires, even after its retrievals
  are used up (the docs' reading). Importing with no token -> 404 IMPORT_TOKEN_NOT_FOUND_ERR,
  with an expired one -> 409 IMPORT_TOKEN_EXPIRED_ERR. A POST that replaces the token
  replaces its nonce and key pair: material sealed for the old token then fails with
  INCORRECT_NONCE_ERR (if it RSA-decrypts, as with fixed test keys) or
  UNPROCESSABLE_PAYLOAD_ERR (with a new key pair).
- Secure import needs all four fields; a missing or non-SHA-256 `encryptionAlgorithm`
  (RSAES_OAEP_SHA_1 included: HPCS only) -> 400 INVALID_FIELD_ERR; an `iv` that is not
  12 bytes -> 400 INVALID_FIELD_ERR; see byoklib.mock.hsm for the RSA and nonce failures.
  Any token field on a standard key (extractable true) -> 400 BAD_BODY_ERR.
- Wrong-sized material: root keys 16/24/32 bytes, standard keys 1..7,500 bytes, else
  400 INVALID_FIELD_ERR with target field `payload`.
- POST /keys: `extractable` defaults to true (SPEC2019); `type` may be omitted; names
  2..90 characters, descriptions 2..240, no control characters; `expirationDate` must be
  RFC 3339 (not other ISO 8601 forms) with a zone and in the future; up to 30 tags of up
  to 30 characters without `<>,:&|`; unknown fields are ignored; more than one resource ->
  BAD_BODY_ERR, said before a collectionTotal that does not match the resources ->
  COLLECTION_TOTAL_MISMATCH_ERR (DOC:errors #4). Without a Prefer header the answer is the
  minimal form (type, id, name, state, crn, extractable, imported, deleted, plus
  description/expirationDate when set), as the tutorial shows (`deleted` as in DOC:errors'
  create answers); `Prefer: return=representation` gives every field.
- Representation: algorithmType/algorithmMode "Deprecated" (current docs), keyRingID
  "default", createdBy/deletedBy a fixed "IBMid-mock-user", first version id differs from
  the key id, nonactiveStateReason 2 for a key deactivated by its expirationDate.
- A key past its expirationDate is Deactivated (3) at once, evaluated lazily against the
  clock (the real service takes up to an hour).
- Deleted keys: GET and /metadata answer 200 with state 5; every action other than
  restore answers 410 KEY_DELETED_ERR. DELETE with `Prefer: return=representation` -> 200
  with the key, otherwise 204. Restore (no body needed; an older-style body is ignored)
  -> 201 with the key, Active again: 30 s after deletion (REQ_TOO_EARLY_ERR), within 30
  days (KEY_RESTORE_EXPIRED), not past expirationDate (KEY_EXPIRED_ERR).
- GET /keys lists states 0-3 unless `state` asks for 5, sorted by id (IBM's default);
  limit 1..5000 (default 200). GET and HEAD /keys also take `filter` (filters.py) and the
  X-Kms-Key-Ring scope; GET takes `search` and `sort` too (search.py).
  Bad query values -> 400 INVALID_QUERY_PARAM_ERR.
- /versions of a non-active key without allKeyStates=true -> 409
  KEY_ACTION_INVALID_STATE_ERR. Standard keys have one version.
- Wrap: plaintext optional (32 random bytes generated and returned when absent), at most
  4096 base64 characters; aad up to 126 strings of up to 255 characters. The WDEK names
  its material (an HMAC check value), not its key, and the GCM AAD binds that name and the
  aad, so any root key holding the same material unwraps it, as the real service
  documents (see actions.py). Wrong AAD, a foreign or corrupted WDEK -> 422
  UNPROCESSABLE_CIPHERTEXT_ERR; a ciphertext that is not base64 -> 400 INVALID_FIELD_ERR;
  unwrap/rewrap without a body (or `{}`) -> 400 NO_BODY_ERR. Rewrap answers keyVersion =
  the version that had wrapped, rewrappedKeyVersion = the latest.
- Rotate: the first rotation is free, then one per hour (KEY_ROTATION_NOT_PERMITTED); any
  material (even the same as before, any of 16/24/32 bytes) is accepted for imported keys;
  token fields on a generated key count as a payload (INVALID_QUERY_PARAM_ERR).
- Disable needs Active; enable needs Suspended and 30 s since the disable
  (REQ_TOO_EARLY_ERR); wrong state -> 409 KEY_ACTION_INVALID_STATE_ERR.
- Rotation policy on an imported key -> 400 ROTATION_POLICY_NOT_ALLOWED_ERR; on a
  standard key -> 400 KEY_ROOT_REQ_ERR. The mock records the policy but never rotates on
  its own.
- keyCreateImportAccess: attributes default to true (enforce_token false); a disabled
  policy permits everything; unknown attributes -> BAD_BODY_ERR; a policy_type other than
  the `policy` query -> BODY_QUERY_PARAM_MISMATCH_ERR. `enforce_token` refuses root-key
  material without a token on create and rotate (409 KEY_CREATE_IMPORT_ACCESS_ERR);
  standard-key imports are governed by `import_standard_key` only.
- POST /keys_with_policy_overrides: a `rotation` object sets the new key's rotation policy
  (same rules as PUT /policies) and a `dualAuthDelete` object its dual-auth policy, over
  the instance policies. In plain POST /keys both are ignored like any unknown field.
- Key and instance policies beyond rotation/keyCreateImportAccess: see policies.py.
- Key rings and the X-Kms-Key-Ring scope: see rings.py.
- Key aliases (rules, codes, lookup by alias anywhere an id goes): see aliases.py.
- Dual-authorisation delete, purge, sync and registrations: see lifecycle.py.
- `flavor="hpcs"` makes it Hyper Protect Crypto Services' import (RSAES_OAEP_SHA_1,
  `hs-crypto` CRNs): see byoklib.mock.flavors for what IBM documents and what is chosen.
- Saving and loading the state (serve --state; import tokens are not kept): state.py. KMIP and
  allowed-IP ports are not modelled.
"""
from __future__ import annotations

import threading

from byoklib.mock.flavors import flavor_of
from byoklib.mock.hsm import HSM

from .actions import ActionsMixin
from .aliases import AliasesMixin
from .clock import ManualClock, SystemClock
from .keys import KeysMixin
from .lifecycle import LifecycleMixin
from .model import Instance, whole_seconds
from .policies import PoliciesMixin
from .rings import DEFAULT_RING, RingsMixin
from .tokens import TokensMixin

__all__ = ["KeyProtectService", "SystemClock", "ManualClock"]

MOCK_ACCOUNT_ID = "0000000000000000000000000000mock"


class KeyProtectService(TokensMixin, KeysMixin, ActionsMixin, PoliciesMixin, RingsMixin,
                        AliasesMixin, LifecycleMixin):
    """The in-memory Key Protect. Thread-safe; see the package docstring."""

    def __init__(self, clock=None, hsm: HSM | None = None, region: str = "us-south",
                 account_id: str = MOCK_ACCOUNT_ID, flavor=None):
        self.clock = clock or SystemClock()
        self.flavor = flavor_of(flavor)   # Key Protect, or HPCS: byoklib.mock.flavors
        self.hsm = hsm or HSM()
        self.region = region
        self.account_id = account_id
        self._lock = threading.RLock()
        self._instances: dict[str, Instance] = {}

    def _instance(self, instance_id: str) -> Instance:
        """The instance, created on first use (the mock's open mode)."""
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None:
                instance = self._instances[instance_id] = Instance(instance_id)
                instance.rings[DEFAULT_RING] = whole_seconds(self.clock.now())
            return instance

    def instance_ids(self) -> list[str]:
        with self._lock:
            return list(self._instances)

    def __repr__(self) -> str:
        return (f"KeyProtectService(region={self.region!r}, instances={len(self._instances)}, "
                f"clock={self.clock!r})")
