"""Persisting the service's state (`python -m byoklib serve --state FILE`).

`save_state(service, path, state_key)` writes every instance (key rings, instance
policies, keys with their versions, aliases, policies and dates) as JSON to a temporary
file beside `path`, fsyncs it and `os.replace`s it over `path`, so a crash leaves either the
old file or the new one, never half of one. `load_state(service, path, state_key)` reads it
back into an empty service. Both go through the service's own pair,
`export_instances` and `import_instances` (core.py).

Key material never appears in clear: each root-key version's material is sealed inside the
HSM (`HSM.export_sealed`, AES-256-GCM under the state key) and a standard key's payload is
sealed the same way (`seal_at_rest`). `state_key` is 32 bytes (the CLI reads it, base64, from
BYOKLIB_STATE_KEY).

The file is authenticated as a whole: an HMAC-SHA-256 over everything in it, under a key
derived from the state key (HKDF, so the MAC key and the sealing key are never the same).
Sealing alone would let someone who can write the file but does not know the state key
edit what is in clear (a key's state or expiry, a dual-authorisation policy, which key a
sealed material belongs to); a MAC that no longer matches refuses all of it. A wrong state
key, a changed file or an unreadable one fails the load with ValueError before anything is
changed.

Mock's choices:
- Import tokens are not persisted: a token's private key never leaves the HSM, so after a
  restart GET /import_token answers 404 until a new token is made.
- The file holds names, ids, dates and policies in clear (they are metadata, not secrets),
  so an operator can read it; changing it by hand makes it unloadable.
- Files of the first format (`byoklib-state-1`, sealed but without the MAC) are refused,
  not upgraded: reading them would let anyone downgrade a changed file to that format.
"""
from __future__ import annotations

import errno
import hmac
import json
import os
import tempfile
import threading
from dataclasses import fields
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from byoklib.mock.hsm import open_at_rest, seal_at_rest

from .model import Instance, KeyRecord, Version

FORMAT = "byoklib-state-2"
OLD_FORMATS = {"byoklib-state-1": "sealed, without a MAC"}
_SAVING = threading.Lock()
PAYLOAD_AAD = b"byoklib state: standard key payload"
CHECK = b"byoklib state: check value"   # sealed in every file: a wrong key fails at once
MAC_KEY_INFO = b"byoklib state: file MAC key"


def save_state(service, path, state_key: bytes) -> None:
    _check_key(state_key)
    # through a symlink: replace the file it points to, not the link (which os.replace
    # would swap for a file, leaving the target stale)
    try:
        path = Path(path).resolve()
    except RuntimeError:   # Python 3.11's answer to a loop of links
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path)) from None
    with _SAVING:   # snapshots are written in the order they are taken: the newest wins
        instances = service.export_instances(
            lambda instance: _instance_json(service, instance, state_key))
        document = {"format": FORMAT, "check": seal_at_rest(state_key, CHECK, CHECK).hex(),
                    "instances": instances}
        # the MAC covers the values as a load reads them back (JSON has no tuples, and
        # its object keys are strings)
        document = json.loads(json.dumps(document))
        document["mac"] = _mac(document, state_key)
        _write_atomically(path, json.dumps(document, separators=(",", ":")).encode("utf-8"))


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def load_state(service, path, state_key: bytes) -> int:
    """Load `path` into `service` (which must hold no instances); returns the key count."""
    _check_key(state_key)
    try:
        document = json.loads(Path(path).read_bytes())
    except (ValueError, RecursionError):   # not JSON, or nested deeper than Python parses
        raise ValueError("the state file is not a byoklib state") from None
    if not isinstance(document, dict) or not isinstance(document.get("format"), str):
        raise ValueError("the state file is not a byoklib state")
    if document.get("format") in OLD_FORMATS:
        raise ValueError(f"the state file has the old format {document['format']} "
                         f"({OLD_FORMATS[document['format']]}), which this byoklib does not "
                         "read: start with a new state file")
    if document.get("format") != FORMAT:
        raise ValueError("the state file is not a byoklib state")
    try:
        check = bytes.fromhex(document["check"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the state file is not a byoklib state") from None
    if open_at_rest(state_key, check, CHECK) != CHECK:
        raise ValueError("the state key does not open this state")
    mac = document.pop("mac", None)
    if not isinstance(mac, str) or not hmac.compare_digest(   # bytes: any text compares
            mac.encode("utf-8", "replace"), _mac(document, state_key).encode("ascii")):
        raise ValueError("the state file was changed after byoklib wrote it (its MAC does "
                         "not match): it is not loaded")
    instances = [_instance_from(service, item, state_key) for item in document["instances"]]
    service.import_instances(instances)
    return sum(len(i.keys) for i in instances)


def _mac(document: dict, state_key: bytes) -> str:
    """HMAC-SHA-256 of the document (without "mac") in one canonical JSON form: the MAC
    vouches for the values loaded, whatever spacing or key order the file has."""
    mac_key = HKDF(hashes.SHA256(), 32, salt=None, info=MAC_KEY_INFO).derive(state_key)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(mac_key, canonical.encode("ascii"), "sha256").hexdigest()


def _check_key(state_key) -> None:
    if not isinstance(state_key, bytes) or len(state_key) != 32:
        raise ValueError("the state key must be 32 bytes")


# --- records <-> JSON ---------------------------------------------------------------------

def _instance_json(service, instance: Instance, state_key: bytes) -> dict:
    return {"id": instance.id, "rings": _plain(instance.rings),
            "instance_policies": _plain(instance.instance_policies),
            "keys": [_key_json(service, key, state_key) for key in instance.keys.values()]}


def _key_json(service, key: KeyRecord, state_key: bytes) -> dict:
    body = {}
    for f in fields(KeyRecord):
        value = getattr(key, f.name)
        if f.name == "versions":
            value = [{"id": v.id, "creation_date": _plain(v.creation_date),
                      "material": None if v.material is None else
                      service.hsm.export_sealed(v.material, state_key).hex()}
                     for v in value]
        elif f.name == "payload":
            value = None if value is None else seal_at_rest(state_key, value, PAYLOAD_AAD).hex()
        else:
            value = _plain(value)
        body[f.name] = value
    return body


def _instance_from(service, item: dict, state_key: bytes) -> Instance:
    instance = Instance(item["id"], rings=_revive(item["rings"]),
                        instance_policies=_revive(item["instance_policies"]))
    for key_item in item["keys"]:
        values = {}
        for f in fields(KeyRecord):
            value = key_item.get(f.name)
            if f.name == "versions":
                value = [Version(v["id"], _revive(v["creation_date"]),
                                 None if v["material"] is None else
                                 service.hsm.import_sealed(bytes.fromhex(v["material"]),
                                                           state_key))
                         for v in value]
            elif f.name == "payload":
                value = None if value is None else open_at_rest(
                    state_key, bytes.fromhex(value), PAYLOAD_AAD)
            else:
                value = _revive(value)
            values[f.name] = value
        key = KeyRecord(**values)
        instance.keys[key.id] = key
    return instance


def _plain(value):
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _revive(value):
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return datetime.fromisoformat(value["$datetime"])
        return {k: _revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revive(v) for v in value]
    return value
