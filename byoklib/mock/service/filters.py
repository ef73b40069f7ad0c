"""The `filter` query of GET /keys and HEAD /keys (IBM's get_keys docstring).

`filter` is space-separated `property=value` terms. Properties: `state` (comma-separated
integers), `extractable` (true/false, any case), and the dates `creationDate`,
`deletionDate`, `expirationDate`, `lastRotateDate`, `lastUpdateDate`, each either
`"RFC3339"`, `OP:"RFC3339"` with OP one of lt, lte, gt, gte, or `none` (keys without
that date); up to three terms per date property, all of which must hold.

Mock's choices (the docstring leaves them open):
- A date without operator matches keys whose date falls on the same UTC day (the
  docstring reads `lastRotateDate="2022-02-15T00:00:00Z"` as "rotated on February 15").
- Quotes around dates are optional; typographic quotes are accepted too.
- Any malformed term, unknown property, repeated state/extractable, more than three
  terms for one date, or state/extractable given both here and as their own query
  parameters -> 400 INVALID_QUERY_PARAM_ERR naming `filter`.
"""
from __future__ import annotations

from datetime import datetime, timezone

from byoklib.errors import KeyProtectError
from byoklib.protocol import parse_rfc3339

DATE_PROPERTIES = {"creationDate": "creation_date", "deletionDate": "deletion_date",
                   "expirationDate": "expiration_date", "lastRotateDate": "last_rotate_date",
                   "lastUpdateDate": "last_update_date"}
OPERATORS = {"lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
             "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b}
QUOTES = "\"“”"


class KeyFilter:
    """Parsed terms: `state` / `extractable` text (or None) and date predicates."""

    def __init__(self, text: str | None):
        self.state: str | None = None
        self.extractable: str | None = None
        self.dates: list[tuple[str, str | None, datetime | None]] = []
        counts: dict[str, int] = {}
        for term in (text or "").split():
            name, sep, value = term.partition("=")
            if not sep or not value:
                raise _bad(f"'{term[:40]}' is not property=value")
            if name in ("state", "extractable"):
                if getattr(self, name) is not None:
                    raise _bad(f"{name} is given twice")
                setattr(self, name, value)
            elif name in DATE_PROPERTIES:
                counts[name] = counts.get(name, 0) + 1
                if counts[name] > 3:
                    raise _bad(f"at most three {name} terms")
                self.dates.append((DATE_PROPERTIES[name], *_date_term(value)))
            else:
                raise _bad(f"unknown property '{name[:40]}'")

    def matches(self, key) -> bool:
        for attribute, op, moment in self.dates:
            value = getattr(key, attribute)
            if op == "none":
                if value is not None:
                    return False
            elif value is None:
                return False
            elif op is None:
                if _utc_day(value) != _utc_day(moment):
                    return False
            elif not OPERATORS[op](value, moment):
                return False
        return True


def _utc_day(moment: datetime):
    return moment.astimezone(timezone.utc).date()


def _date_term(value: str):
    if value.lower() == "none":
        return "none", None
    op, sep, rest = value.partition(":")
    if sep and op in OPERATORS:
        value = rest
    else:
        op = None
    text = value.strip(QUOTES)
    try:
        return op, parse_rfc3339(text)
    except ValueError:
        raise _bad("dates must be RFC 3339 date-times with a zone") from None


def _bad(why: str) -> KeyProtectError:
    return KeyProtectError.of("INVALID_QUERY_PARAM_ERR", f"The query_param 'filter' is "
                              f"invalid: {why}", target=("query_param", "filter"))
