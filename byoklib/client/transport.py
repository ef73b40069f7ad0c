"""The client's HTTP transport: a `requests.Session` with urllib3's `Retry` mounted.

Retries are opt-in (`retries=N`), as in IBM's Python SDK (`enable_retries`): a 429 (rate
limited, so not carried out) is retried for any method; a 500, 502, 503 or 504 only for
GET, HEAD, PUT and DELETE, because retrying a POST the service may have carried out could
create a second key. The wait is the answer's Retry-After (seconds or an HTTP date) when
it has a readable one, else urllib3's backoff (at once, then 1 s, 2 s, ... with a little
jitter); never more than `max_retry_wait` seconds. Network failures are not retried and
stay `requests` exceptions; redirects are never followed.
"""
from __future__ import annotations

from time import sleep as pause  # module-level, so tests can record the waits

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

RETRY_ANY_METHOD = frozenset({429})
RETRY_IDEMPOTENT = frozenset({500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})


class KeyProtectRetry(Retry):
    """urllib3's Retry with Key Protect's rule: 429 for any method, 5xx for idempotent ones.
    (urllib3's own rule applies one method list to every status, and retries a POST's 503
    whenever it carries Retry-After.)"""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if not self.total:
            return False
        return status_code in RETRY_ANY_METHOD or (
            status_code in RETRY_IDEMPOTENT and method.upper() in IDEMPOTENT_METHODS)

    def get_retry_after(self, response) -> float | None:
        try:
            return super().get_retry_after(response)
        except InvalidHeader:     # "Retry-After: soon": back off instead
            return None

    def sleep(self, response=None) -> None:
        wait = self.get_retry_after(response) if response is not None else None
        pause(wait if wait else self.get_backoff_time())


def retry_policy(retries: int = 0, max_retry_wait: float = 30) -> KeyProtectRetry:
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValueError("retries must be a whole number, 0 or more")
    return KeyProtectRetry(
        total=retries, connect=0, read=False, other=0, redirect=False, status=retries,
        allowed_methods=None, raise_on_status=False, respect_retry_after_header=True,
        backoff_factor=0.5, backoff_jitter=0.2, backoff_max=max_retry_wait,
        retry_after_max=max_retry_wait)


def mount_retries(session: requests.Session, prefix: str, retries: int,
                  max_retry_wait: float = 30) -> None:
    """Retry requests to URLs under `prefix` (e.g. "https://" or the service's URL)."""
    session.mount(prefix, HTTPAdapter(max_retries=retry_policy(retries, max_retry_wait)))


def new_session(retries: int = 0, max_retry_wait: float = 30) -> requests.Session:
    """A keep-alive session with the retry policy on http:// and https://. Proxies and a CA
    bundle come from the usual environment variables, as for any requests session; the
    client's `auth` hook keeps ~/.netrc credentials from ever being sent."""
    session = requests.Session()
    for prefix in ("http://", "https://"):
        mount_retries(session, prefix, retries, max_retry_wait)
    return session
