"""Key aliases: POST/DELETE /keys/{id}/aliases/{alias}, and the rules every alias obeys.

Every `{id}` in a key path also accepts an alias (`ServiceCore._key` resolves both), so
`GET /keys/my-alias`, `/keys/my-alias/actions/wrap`, `/keys/my-alias/policies` and
`/keys/my-alias/aliases/other` all work, within the call's key-ring scope.

Rules (https://cloud.ibm.com/docs/key-protect?topic=key-protect-create-root-keys and
IBM's create_key_alias docstring): 2..90 characters of letters, digits, `-` and `_`;
case-sensitive; not a UUID; not a reserved word (allowed_ip, key, keys, metadata, policy,
policies, registration, registrations, ring, rings, rotate, wrap, unwrap, rewrap,
version, versions); at most 5 per key; unique in the instance.

Mock's choices (codes IBM's docs do not give):
- An alias breaking the rules -> 400 INVALID_PATH_PARAM_ERR (path) or INVALID_FIELD_ERR
  naming `aliases` (POST /keys body). A sixth alias -> 400 KEY_ALIAS_QUOTA_ERR. An alias
  held by another key of the instance (deleted keys included: they may be restored) ->
  409 KEY_ALIAS_NOT_UNIQUE_ERR; a body listing the same alias twice -> INVALID_FIELD_ERR.
- Adding an alias the key already has answers 201 again and changes nothing; deleting an
  alias the key does not have -> 404 KEY_ALIAS_NOT_FOUND_ERR. Both need a live key (410
  KEY_DELETED_ERR for a deleted one).
- The reserved words are compared case-insensitively (`Keys` is refused too).
- POST answers `{metadata: {collectionType: application/vnd.ibm.kms.alias+json,
  collectionTotal: 1}, resources: [{keyId, alias, creationDate, createdBy}]}`; DELETE
  answers 204 with no body.
"""
from __future__ import annotations

import re
import uuid

from byoklib import protocol
from byoklib.errors import KeyProtectError
from byoklib.protocol import rfc3339

from .core import ServiceCore
from .model import CREATED_BY, Instance, collection

MAX_ALIASES = 5
ALIAS_NAME = re.compile(r"[A-Za-z0-9_-]{2,90}")
RESERVED = frozenset({"allowed_ip", "key", "keys", "metadata", "policy", "policies",
                      "registration", "registrations", "ring", "rings", "rotate", "wrap",
                      "unwrap", "rewrap", "version", "versions"})


def alias_problem(alias) -> str | None:
    """Why `alias` breaks the rules, or None when it is a valid alias."""
    if not isinstance(alias, str) or not ALIAS_NAME.fullmatch(alias):
        return "2 to 90 letters, digits, '-' or '_'"
    if alias.lower() in RESERVED:
        return "not a reserved word"
    try:
        uuid.UUID(alias)
    except ValueError:
        return None
    return "not a UUID"


class Aliases(ServiceCore):

    def create_key_alias(self, instance_id: str, key_id: str, alias: str) -> dict:
        _check_path_alias(alias)
        with self._changing(instance_id) as instance:
            key = self._live_key(instance, key_id)
            now = self._now()
            if alias not in key.aliases:
                check_aliases_free(instance, [alias])
                if len(key.aliases) >= MAX_ALIASES:
                    raise KeyProtectError.of("KEY_ALIAS_QUOTA_ERR")
                key.aliases.append(alias)
                key.alias_dates[alias] = now
            created = key.alias_dates.get(alias, key.creation_date)
            return collection(protocol.ALIAS, [{"keyId": key.id, "alias": alias,
                                            "creationDate": rfc3339(created),
                                            "createdBy": CREATED_BY}])

    def delete_key_alias(self, instance_id: str, key_id: str, alias: str) -> None:
        _check_path_alias(alias)
        with self._changing(instance_id) as instance:
            key = self._live_key(instance, key_id)
            if alias not in key.aliases:
                raise KeyProtectError.of("KEY_ALIAS_NOT_FOUND_ERR")
            key.aliases.remove(alias)
            key.alias_dates.pop(alias, None)


def check_aliases_free(instance: Instance, aliases: list[str]) -> None:
    """409 KEY_ALIAS_NOT_UNIQUE_ERR when a key of the instance holds one of them."""
    if not aliases:   # most creates: their cost must not grow with the instance's keys
        return
    wanted = set(aliases)
    for key in instance.keys.values():
        if key.aliases and not wanted.isdisjoint(key.aliases):
            raise KeyProtectError.of("KEY_ALIAS_NOT_UNIQUE_ERR")


def check_body_aliases(aliases: list[str]) -> list[str]:
    """The aliases of a POST /keys body, checked against the rules (not uniqueness)."""
    for alias in aliases:
        problem = alias_problem(alias)
        if problem:
            raise KeyProtectError.of("INVALID_FIELD_ERR",
                                     f"The field 'aliases' must be: {problem}",
                                     target=("field", "aliases"))
    if len(set(aliases)) != len(aliases):
        raise KeyProtectError.of("INVALID_FIELD_ERR",
                                 "The field 'aliases' must be: without duplicates",
                                 target=("field", "aliases"))
    return aliases


def _check_path_alias(alias) -> None:
    problem = alias_problem(alias)
    if problem:
        raise KeyProtectError.of("INVALID_PATH_PARAM_ERR",
                                 f"The path parameter 'alias' must be: {problem}",
                                 target=("path_param", "alias"))
