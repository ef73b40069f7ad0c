"""Injectable clocks, so expiry and waiting rules are testable without sleeping."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone


def _delta(seconds=0, minutes=0, hours=0, days=0) -> timedelta:
    delta = timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
    if delta < timedelta(0):
        raise ValueError("a clock only moves forward")
    return delta


class SystemClock:
    """Real UTC time plus an offset that `advance()` grows (for notebooks on a live mock)."""

    def __init__(self):
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(timezone.utc) + self._offset

    def advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0,
                days: float = 0) -> None:
        with self._lock:
            self._offset += _delta(seconds, minutes, hours, days)

    def __repr__(self) -> str:
        return f"SystemClock(offset={self._offset})"


class ManualClock:
    """Frozen time that moves only when told to (tests)."""

    def __init__(self, start: datetime | None = None):
        start = start or datetime.now(timezone.utc).replace(microsecond=0)
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = start.astimezone(timezone.utc)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0,
                days: float = 0) -> None:
        with self._lock:
            self._now += _delta(seconds, minutes, hours, days)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now.isoformat()})"
