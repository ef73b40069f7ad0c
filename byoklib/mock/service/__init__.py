"""The in-memory Key Protect: instances, import tokens, keys, versions, states, policies.

`KeyProtectService` knows nothing of HTTP: its methods take the instance id first, plain
values or parsed JSON bodies, return JSON-ready dicts, and raise `KeyProtectError`. Every
method validates its whole request before it changes anything, so a refused request
leaves no trace. It is thread-safe, with a lock per instance (core.py).

It is composed of one class per resource, each built on `ServiceCore` (core.py): tokens,
keys, actions, policies, rings, aliases, lifecycle; records and their JSON are in
model.py, field checks in validate.py, saving and loading in state.py. Where IBM's
docs are silent, each module says what the mock chose, next to the code. KMIP and
allowed-IP ports are not modelled. `flavor="hpcs"` makes it Hyper Protect Crypto Services'
import (RSAES_OAEP_SHA_1, `hs-crypto` CRNs): see byoklib.mock.flavors.
"""
from __future__ import annotations

from byoklib.mock.hsm import HSM

from . import validate
from .actions import Actions
from .aliases import Aliases
from .clock import ManualClock, SystemClock
from .keys import Keys
from .lifecycle import Lifecycle
from .policies import Policies
from .rings import Rings
from .tokens import Tokens

__all__ = ["KeyProtectService", "SystemClock", "ManualClock"]

MOCK_ACCOUNT_ID = "0000000000000000000000000000mock"
ACTIONS = {"wrap": "wrap", "unwrap": "unwrap", "rewrap": "rewrap", "rotate": "rotate",
           "disable": "disable", "enable": "enable", "sync": "sync",
           "setKeyForDeletion": "set_key_for_deletion",
           "unsetKeyForDeletion": "unset_key_for_deletion"}


class KeyProtectService(Tokens, Keys, Actions, Policies, Rings, Aliases, Lifecycle):
    """The in-memory Key Protect. Thread-safe; see the package docstring."""

    def __init__(self, clock=None, hsm: HSM | None = None, region: str = "us-south",
                 account_id: str = MOCK_ACCOUNT_ID, flavor=None):
        super().__init__(clock or SystemClock(), hsm or HSM(), region, account_id, flavor)

    def key_action(self, instance_id: str, key_id: str, action: str, body=None):
        """POST /keys/{id}/actions/{action} (or ?action=): dispatch by name."""
        if action not in ACTIONS:
            raise validate.field_error("action", " or ".join(ACTIONS),
                                       code="INVALID_QUERY_PARAM_ERR", kind="query_param")
        return getattr(self, ACTIONS[action])(instance_id, key_id, body)
