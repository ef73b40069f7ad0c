"""The client's HTTP transport: a `requests.Session` with urllib3's `Retry` mounted.

Retries are opt-in (`retries=N`), as in IBM's Python SDK (`enable_retries`): a 429 (rate
limited, so not carried out) is retried for any method; a 500, 502, 503 or 504 only for
GET, HEAD, PUT and DELETE, because retrying a POST the service may have carried out could
create a second key. The wait is the answer's Retry-After (seconds or an HTTP date) when
it has a readable one, else urllib3's backoff (at once, then 1 s, 2 s, ... with a little
jitter); never more than `max_retry_wait` seconds. Network failures are not retried and
stay `requests` exceptions; redirects are never followed.

`receive` bounds what an answer may cost: requests' `timeout` is per socket read, so a
server dripping a byte a second would hold a call for ever, and a small gzip body may
inflate to gigabytes. A body still coming `timeout` seconds after the headers is cut off,
and one past MAX_ANSWER_BYTES once decoded (a list of 5,000 keys is a few MB). The
headers are read inside urllib3: the session's adapter (`KeyProtectAdapter`) gives them the
same bound, counted from the request's end.
"""
from __future__ import annotations

import http.client
import http.cookiejar
import io
import ipaddress
import math
import time
from time import sleep as pause  # module-level, so tests can record the waits

import requests
from requests.adapters import HTTPAdapter
from urllib3 import connection, connectionpool, poolmanager
from urllib3 import exceptions as urllib3_errors
from urllib3.exceptions import InvalidHeader, LocationParseError
from urllib3.util import parse_url
from urllib3.util.retry import Retry

MAX_ANSWER_BYTES = 32 * 1024 * 1024
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
    if isinstance(max_retry_wait, bool) or not isinstance(max_retry_wait, (int, float)) \
            or not 0 <= max_retry_wait < math.inf:
        raise ValueError("max_retry_wait must be a number of seconds, 0 or more")
    return KeyProtectRetry(
        total=retries, connect=0, read=False, other=0, redirect=False, status=retries,
        allowed_methods=None, raise_on_status=False, respect_retry_after_header=True,
        backoff_factor=0.5, backoff_jitter=0.2, backoff_max=max_retry_wait,
        retry_after_max=max_retry_wait)


class _HeadersByDeadline(io.RawIOBase):
    """The socket as an answer's head is read from it: each read waits at most what is left
    of the read timeout, counted from the first, so the status line and headers must arrive
    whole within it. `stop()` once they have: the body's time is `receive`'s to bound."""

    def __init__(self, sock):
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)   # keeps the socket open while read
        self._per_read = sock.gettimeout()   # what urllib3 set: the read timeout
        self._deadline = None if self._per_read is None else time.monotonic() + self._per_read
        self._first = True

    def stop(self) -> None:
        self._deadline = None

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:   # a caller may select() on response.raw, as on any socket's
        return self._raw.fileno()

    def readinto(self, buffer) -> int | None:
        if self._deadline is None:
            return self._raw.readinto(buffer)
        if self._first:   # its wait, begun now, is within the deadline: the usual one read
            self._first = False
            return self._raw.readinto(buffer)
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the answer's headers took longer than the read timeout")
        self._sock.settimeout(min(left, self._per_read))
        try:
            return self._raw.readinto(buffer)
        finally:
            self._sock.settimeout(self._per_read)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Head:
    """What http.client's response is built on: it only calls makefile()."""

    def __init__(self, sock):
        self.reader = _HeadersByDeadline(sock)

    def makefile(self, mode: str):
        return io.BufferedReader(self.reader)


class _AnswerWithBoundedHead(http.client.HTTPResponse):
    def __init__(self, sock, *args, **kwargs):
        self._head = _Head(sock)
        super().__init__(self._head, *args, **kwargs)

    def begin(self) -> None:
        super().begin()
        self._head.reader.stop()


class _Connection(connection.HTTPConnection):
    response_class = _AnswerWithBoundedHead


class _TLSConnection(connection.HTTPSConnection):
    response_class = _AnswerWithBoundedHead


class _Pool(connectionpool.HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(connectionpool.HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


_POOLS = {"http": _Pool, "https": _TLSPool}


class KeyProtectAdapter(HTTPAdapter):
    """requests' adapter with the answer's head bounded in time (`_HeadersByDeadline`),
    directly and through an http(s) proxy (a SOCKS proxy keeps urllib3's own pools)."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if manager.pool_classes_by_scheme is poolmanager.pool_classes_by_scheme:
            manager.pool_classes_by_scheme = _POOLS
        return manager


def mount_retries(session: requests.Session, prefix: str, retries: int,
                  max_retry_wait: float = 30) -> None:
    """Retry requests to URLs under `prefix` (e.g. "https://" or the service's URL)."""
    session.mount(prefix, KeyProtectAdapter(max_retries=retry_policy(retries, max_retry_wait)))


def new_session(retries: int = 0, max_retry_wait: float = 30) -> requests.Session:
    """A keep-alive session with the retry policy on http:// and https://. Proxies and a CA
    bundle come from the usual environment variables, as for any requests session; the
    client's `auth` hook keeps ~/.netrc credentials from ever being sent."""
    session = requests.Session()
    for prefix in ("http://", "https://"):
        mount_retries(session, prefix, retries, max_retry_wait)
    # Key Protect and IAM need no cookies: none is kept, so none set by one (for a domain
    # such as cloud.ibm.com) travels to the other
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


def receive(session, method: str, url: str, *, timeout, **options) -> requests.Response:
    """`session.request(...)` with its body cut off once it has taken longer than the read
    `timeout` after the headers (checked between reads, each of which may itself wait that
    long), and at most MAX_ANSWER_BYTES; requests.Timeout past the one,
    ContentDecodingError past the other (the connection is closed either way)."""
    response = session.request(method, url, timeout=timeout, stream=True, **options)
    if response.raw is None:   # an adapter that made its answer whole (a test's, a cache's)
        return response
    read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout   # (connect, read)
    deadline = time.monotonic() + read_timeout
    # unencoded, the body is as long as its Content-Length says: the read that finds its
    # end can be spared (the connection goes back to the pool all the same)
    plain = response.headers.get("Content-Encoding", "identity").lower() in ("", "identity")
    chunks, size = [], 0
    try:
        while True:
            # read1: what one read of the socket brings (decoded, chunked or not), where
            # iter_content waits for a whole chunk, however slowly it comes
            chunk = _read1(response.raw)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise requests.exceptions.ContentDecodingError(
                    f"the answer is larger than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB",
                    request=response.request, response=response)
            if time.monotonic() > deadline:
                raise requests.Timeout(f"the answer took more than {read_timeout} s to arrive",
                                       request=response.request, response=response)
            chunks.append(chunk)
            if plain and response.raw.length_remaining == 0:
                break
    except BaseException:
        response.close()
        raise
    response._content = b"".join(chunks)   # what requests itself sets when it reads a body
    response._content_consumed = True
    return response


def checked_url(url: str, what: str = "the service URL") -> str:
    """`url` if requests can be sent to it; else ValueError, showing it as `shown_url`
    does: a URL urllib3 cannot read (a port past 65535), no http(s) scheme or no host,
    credentials in it (`user:password@`, which would travel in every request's URL and
    show in its errors: Key Protect and IAM take a token), a query or a fragment."""
    try:
        parts = parse_url(url)
    except LocationParseError:
        raise ValueError(f"{what} is not a URL: {shown_url(url)}") from None
    if (parts.scheme or "").lower() not in ("http", "https") or not parts.host:
        raise ValueError(f"{what} must be https://HOST (http:// for a mock on this "
                         f"machine): {shown_url(url)}")
    if parts.auth:
        raise ValueError(f"{what} holds credentials (user:password@): give the token or "
                         f"API key as such, not in the URL: {shown_url(url)}")
    if parts.query is not None or parts.fragment is not None:
        raise ValueError(f"{what} has a query or a fragment: give the base URL alone: "
                         f"{shown_url(url)}")
    return url


def shown_url(url: str) -> str:
    """`url` as a message may show it: no `user:password@`, no query, no fragment."""
    url = url.split("#")[0].split("?")[0]
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.rpartition("@")[2]
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


def in_clear_over_the_network(url: str) -> bool:
    """Whether a request to `url` travels unencrypted beyond this machine: plain http to a
    host that is not this machine's (IBM's endpoints are all https), or through a proxy the
    environment names that is. The host is read as urllib3 reads it to connect (urllib's
    reading of `http://a\\@127.0.0.1` is another)."""
    parts = parse_url(url)
    if (parts.scheme or "").lower() != "http":
        return False
    proxy = requests.utils.get_environ_proxies(url).get("http")
    return not _this_machine(parts.host) or (proxy is not None and _in_clear_to(proxy))


def _in_clear_to(proxy: str) -> bool:
    parts = parse_url(proxy if "://" in proxy else "http://" + proxy)
    return (parts.scheme or "http").lower() == "http" and not _this_machine(parts.host)


def _this_machine(host: str | None) -> bool:
    host = (host or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])   # an IPv6 zone id
    except ValueError:   # a name: it may be anywhere
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback or (mapped or address).is_unspecified


def _read1(raw) -> bytes:
    """One read of the body, with urllib3's errors as requests' (as iter_content has them)."""
    try:
        return raw.read1(64 * 1024, decode_content=True)
    except urllib3_errors.ProtocolError as error:
        raise requests.exceptions.ChunkedEncodingError(error) from None
    except urllib3_errors.DecodeError as error:
        raise requests.exceptions.ContentDecodingError(error) from None
    except urllib3_errors.ReadTimeoutError as error:
        raise requests.exceptions.ConnectionError(error) from None
    except urllib3_errors.SSLError as error:
        raise requests.exceptions.SSLError(error) from None
