"""The `search` and `sort` queries of GET /keys (IBM's get_keys docstring).

`search` finds keys whose name or any alias contains the query, case-insensitively, or
whose id is the query. Options may come first, in any order: `not:` inverts the match,
`exact:` asks for the whole name or alias (still case-insensitive), `escape:` takes the
rest literally (`escape:not:` searches for "not:"); the scopes `name:` and `alias:` narrow
where to look (both when neither is given). The key the query names outright (its id, or
in the alias scope its alias) is listed first. More than 5000 keys to search -> 400
KEY_SEARCH_TOO_BROAD. The list's metadata then carries `searchQuery: {query, scopes,
not, exact}`.

`sort` is comma-separated key properties (id, state, extractable, imported, creationDate,
lastUpdateDate, lastRotateDate, deletionDate, expirationDate), each descending with a
leading `-`, the first deciding first. Without `sort`, keys are sorted by id.

Mock's choices (the docstring leaves them open):
- `not:` inverts the whole match: a key is found when none of the names and aliases in
  scope match; the outright lookup applies only without `not:`.
- A word before a colon that is not an option or scope is part of the query.
- Keys without the date a sort names come first in ascending order, last in descending;
  ties are broken by id, so every order is repeatable.
- An empty query after the options, an unknown sort property, or a query over 1000
  characters -> 400 INVALID_QUERY_PARAM_ERR naming `search` or `sort`.
"""
from __future__ import annotations

from dataclasses import dataclass

from byoklib.errors import KeyProtectError

from .filters import DATE_PROPERTIES
from .model import KeyRecord

SCOPES = ("name", "alias")
MAX_SEARCHABLE = 5000
MAX_QUERY = 1000
SORT_PROPERTIES = ("id", "state", "extractable", "imported", *DATE_PROPERTIES)


@dataclass(frozen=True)
class Search:
    query: str
    scopes: tuple[str, ...] = SCOPES
    invert: bool = False
    exact: bool = False

    @classmethod
    def parse(cls, text) -> "Search | None":
        if text is None or text == "":
            return None
        if not isinstance(text, str) or len(text) > MAX_QUERY:
            raise _bad("search", f"a query of at most {MAX_QUERY} characters")
        invert = exact = False
        scopes: list[str] = []
        rest = text
        while True:
            word, colon, after = rest.partition(":")
            if not colon or word not in ("not", "exact", "escape", *SCOPES):
                break
            rest = after
            if word == "escape":
                break
            if word == "not":
                invert = True
            elif word == "exact":
                exact = True
            elif word not in scopes:
                scopes.append(word)
        if not rest:
            raise _bad("search", "a query after its options")
        return cls(rest, tuple(scopes) or SCOPES, invert, exact)

    def finds(self, key: KeyRecord) -> bool:
        wanted = self.query.casefold()
        texts = ([key.name] if "name" in self.scopes else []) + \
                (list(key.aliases) if "alias" in self.scopes else [])
        hit = key.id == self.query or any(
            text.casefold() == wanted if self.exact else wanted in text.casefold()
            for text in texts)
        return hit != self.invert

    def names_outright(self, key: KeyRecord) -> bool:
        """The key this query is a lookup of: its id, or (alias scope) one of its aliases."""
        return not self.invert and (key.id == self.query or (
            "alias" in self.scopes and self.query.casefold() in
            (alias.casefold() for alias in key.aliases)))

    def metadata(self) -> dict:
        return {"query": self.query, "scopes": list(self.scopes), "not": self.invert,
                "exact": self.exact}


def searched(keys: list[KeyRecord], search: Search | None) -> list[KeyRecord]:
    """The keys the search finds, the one it names outright first."""
    if search is None:
        return keys
    if len(keys) > MAX_SEARCHABLE:
        raise KeyProtectError.of("KEY_SEARCH_TOO_BROAD", target=("query_param", "search"))
    found = [key for key in keys if search.finds(key)]
    return sorted(found, key=lambda key: not search.names_outright(key))   # stable


def sort_terms(text) -> list[tuple[str, bool]]:
    """[(property, descending)] from `sort`; by id when it is absent. A property named
    again is dropped: it decides nothing, and each term costs a sort under the lock."""
    if text is None or text == "":
        return [("id", False)]
    first: dict[str, bool] = {}
    for term in text.split(",") if isinstance(text, str) else [None]:
        term = (term or "").strip()
        name = term[1:] if term.startswith("-") else term
        if name not in SORT_PROPERTIES:
            raise _bad("sort", "comma-separated key properties from " +
                       ", ".join(SORT_PROPERTIES) + ", each optionally prefixed with -")
        first.setdefault(name, term.startswith("-"))
    terms = list(first.items())
    if "id" not in (name for name, _ in terms):
        terms.append(("id", False))   # a repeatable order for ties
    return terms


def sorted_keys(keys: list[KeyRecord], terms: list[tuple[str, bool]], now) -> list[KeyRecord]:
    for name, descending in reversed(terms):   # stable sorts, the last term first
        keys = sorted(keys, key=lambda key: _sortable(key, name, now), reverse=descending)
    return keys


def _sortable(key: KeyRecord, name: str, now):
    if name == "state":
        return key.state(now)
    value = getattr(key, DATE_PROPERTIES.get(name, name))
    return (value is not None, value) if name in DATE_PROPERTIES else value


def _bad(name: str, expected: str) -> KeyProtectError:
    return KeyProtectError.of("INVALID_QUERY_PARAM_ERR",
                              f"The query_param '{name}' must be: {expected}",
                              target=("query_param", name))
