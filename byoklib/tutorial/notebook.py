"""What every notebook needs and none should re-implement.

- `connect(url, instance_id, api_key, token)`: the mock on 127.0.0.1 by default; the real
  Key Protect (or any server that speaks its API) when a URL, an instance id and an API key
  or a bearer token are given, as papermill parameters or the environment variables
  KP_URL, KP_INSTANCE_ID, KP_API_KEY, KP_TOKEN.
- `Checks`: the "what you verified" table each notebook ends with; `checks.check(...)`
  records a fact and says it; `checks.agree(...)` records one that several independent
  witnesses must compute alike (the table then names them).
- `refused(call, rule=None)`: run a call that must fail and say how the service refused
  it; with a rule's name (`byoklib.rules.RULES`), also what that rule expects and its source.
- `source_of(code)`: where a reason code is documented, from byoklib's catalogue.
- `cite(*names)`: print rules of the service with their sources (an IBM page, or "the
  mock's choice"), so no notebook types a bound or a reason code of its own.
- `as_expected(error, name, on_mock)`: whether a refusal is the one a rule names (on the
  mock, status and code; on another service, where the mock's choices need not hold, the
  status of a documented rule, or any 4xx).
- `draw_flow()`: the import-token flow as a sequence diagram (`pictures.draw_sequence`).
- `environment_report()`: Python, byoklib, cryptography and OpenSSL versions.

This module sits at the top, beside `timing` and `__main__`: it may use the client and the
server; nothing in byoklib imports it.
"""
from __future__ import annotations

import contextlib
import os
import platform
import threading
from dataclasses import dataclass, field

from byoklib.errors import KeyProtectError
from byoklib.rules import rule as _rule

ENV_URL, ENV_INSTANCE, ENV_API_KEY, ENV_TOKEN = "KP_URL", "KP_INSTANCE_ID", "KP_API_KEY", "KP_TOKEN"
# Set by the test suite (tests/conftest.py): the notebook's mock makes its tokens from the
# TEST-ONLY key pairs instead of generating RSA-4096 pairs (slow, and not what the suite
# checks); a learner's run never sets it.
ENV_TEST_ONLY_KEYS = "BYOKLIB_TEST_ONLY_TOKEN_KEYS"


# --- connecting ---------------------------------------------------------------------------

@dataclass
class Connection:
    """A client plus, on the mock, the running server (for its clock)."""
    client: object
    server: object | None = None

    @property
    def on_mock(self) -> bool:
        return self.server is not None

    @property
    def target(self) -> str:
        """Where requests go: the notebook's own mock, or the service at the URL given
        (which may be the real Key Protect or a mock started elsewhere)."""
        if self.on_mock:
            return "the local mock (127.0.0.1)"
        return f"the service at {self.client.url}"

    def advance_clock(self, **delta) -> None:
        """Move the mock's clock forward (e.g. `minutes=11`); the real service's time
        cannot be moved, so this refuses there rather than pretending."""
        if not self.on_mock:
            raise RuntimeError("the real service's clock cannot be moved")
        self.server.clock.advance(**delta)


def settings(url: str = "", instance_id: str = "", api_key: str = "",
             token: str = "") -> tuple[str, str, str, str]:
    """Parameters win; the environment fills what they leave empty."""
    return (url or os.environ.get(ENV_URL, ""),
            instance_id or os.environ.get(ENV_INSTANCE, ""),
            api_key or os.environ.get(ENV_API_KEY, ""),
            token or os.environ.get(ENV_TOKEN, ""))


@contextlib.contextmanager
def connect(url: str = "", instance_id: str = "", api_key: str = "", token: str = "", *,
            instance_for_mock: str = "learner-instance", **server_options):
    """Yield a `Connection` to the given service when a URL, an instance id and an API key
    (exchanged at IAM) or a bearer token are given; else to a fresh mock started for this
    notebook and stopped at the end."""
    from byoklib.client import KeyProtectClient

    url, instance_id, api_key, token = settings(url, instance_id, api_key, token)
    if url and instance_id and (api_key or token):
        if token:
            yield Connection(KeyProtectClient(url, instance_id, token))
        else:
            yield Connection(KeyProtectClient.from_api_key(url, instance_id, api_key))
        return
    if url or instance_id or api_key or token:
        raise ValueError("to use a service of your own, give a URL, an instance id and an "
                         "API key or a bearer token; give none of them for the local mock")
    with local_mock(**server_options) as server:
        client = KeyProtectClient(server.url, instance_for_mock, "learner-token")
        yield Connection(client, server)


@contextlib.contextmanager
def local_mock(**server_options):
    """A notebook's own mock, `byoklib.mock.running_server(**server_options)`: its HSM
    generates each token's RSA-4096 pair in a pool started with the mock, so the learner's
    first token finds one ready; under test (ENV_TEST_ONLY_KEYS set) the TEST-ONLY pairs
    serve."""
    from byoklib.mock import running_server
    from byoklib.mock.keypairs import KeyPairPool, test_only_key_pairs

    pool = None
    if "key_pair_source" not in server_options:
        if os.environ.get(ENV_TEST_ONLY_KEYS):
            server_options["key_pair_source"] = test_only_key_pairs()
        else:
            pool = server_options["key_pair_source"] = KeyPairPool().start()
    try:
        with running_server(**server_options) as server:
            yield server
    finally:
        if pool is not None:
            pool.close()


def start(url: str = "", instance_id: str = "", api_key: str = "", token: str = "",
          **options) -> Connection:
    """`connect` for notebooks, whose cells cannot sit inside one `with` block: the mock
    is stopped when the kernel (or the script) ends."""
    stack = contextlib.ExitStack()
    connection = stack.enter_context(connect(url, instance_id, api_key, token, **options))
    # Not atexit: Python joins the server's worker threads (not daemons) before it runs
    # atexit handlers, so the process would wait forever, and a kernel until it is killed.
    threading.Thread(target=_close_when_the_main_thread_ends, args=(stack,), daemon=True,
                     name="byoklib-stop-the-mock").start()
    return connection


def _close_when_the_main_thread_ends(stack: contextlib.ExitStack) -> None:
    threading.main_thread().join()
    stack.close()


# --- the "what you verified" table ------------------------------------------------------------

@dataclass
class Checks:
    """Collects named facts the notebook proved; `table()` shows them, `assert_all()` makes
    papermill and CI fail when one is false."""
    rows: list[tuple[str, bool, str]] = field(default_factory=list)
    # row index -> the witnesses that had to agree for it (rows made by `agree`)
    witnesses: dict[int, str] = field(default_factory=dict)

    def add(self, what: str, passed, how: str = "") -> bool:
        passed = bool(passed)
        self.rows.append((what, passed, how))
        return passed

    def check(self, what: str, passed, how: str = "") -> None:
        """Record a proven fact, and say it here: ✔ or ✘, then what. Returns nothing, so a
        check that ends a cell shows no bare `True`."""
        print("✔" if self.add(what, passed, how) else "✘", what)

    def agree(self, what: str, values: dict, how: str = "", expected=None) -> None:
        """Record a fact that several witnesses must give alike: `values` maps each
        witness's name to what it computed (the first is usually byoklib's). It passes only
        if there are two or more and all are equal (and equal `expected`, when given). Says
        each witness's verdict, never the values (they may be key material)."""
        items = list(values.items())
        reference = items[0][1] if expected is None else expected
        verdicts = {name: value == reference for name, value in items}
        passed = len(items) >= 2 and all(verdicts.values())
        self.witnesses[len(self.rows)] = ", ".join(name for name, _ in items)
        print("✔" if self.add(what, passed, how) else "✘", what)
        print("   " + " | ".join(f"{name} {'✔' if ok else '✘ DISAGREES'}"
                                 for name, ok in verdicts.items()))

    def table(self):
        import pandas as pd

        table = pd.DataFrame(self.rows, columns=["what you verified", "passed", "how"])
        if self.witnesses:
            table["witnesses"] = [self.witnesses.get(i, "") for i in range(len(self.rows))]
        return table

    @property
    def all_passed(self) -> bool:
        return bool(self.rows) and all(passed for _, passed, _ in self.rows)

    def assert_all(self) -> str:
        failed = [what for what, passed, _ in self.rows if not passed]
        if not self.rows:
            raise AssertionError("no checks were recorded")
        if failed:
            raise AssertionError(f"checks failed: {failed}")
        return f"ALL {len(self.rows)} CHECKS PASSED"


def source_of(code: str) -> str:
    """Where a reason code is documented, from byoklib's catalogue (`errors.source_of`)."""
    from byoklib.errors import source_of as catalogued

    return str(catalogued(code))


def refused(call, rule: str | None = None):
    """Run a call that should fail; return its KeyProtectError, or None when it succeeded.
    With `rule`, also print the answer that rule expects and where it comes from."""
    error = None
    try:
        call()
    except KeyProtectError as e:
        print(f"refused: {type(e).__name__} status={e.status} code={e.code}")
        error = e
    else:
        print("accepted (not refused!)")
    if rule is not None:
        known = _rule(rule)
        status, code = known.expect
        print(f"  expected: {status} {code or ''} ({known.text})".replace("  (", " ("))
        print(f"  source: {known.source}")
    return error


def cite(*names: str) -> None:
    """Print each named rule of the service and its source."""
    for name in names:
        print("•", _rule(name))


def as_expected(error, name: str, on_mock: bool = True) -> bool:
    """Whether `error` (a KeyProtectError or None) is the refusal rule `name` describes.
    On the mock the status and the code must be the rule's. Elsewhere the mock's choices
    need not hold: a fully documented rule must match its status and code; one IBM
    documents in part, its status; one that is the mock's choice, any 4xx."""
    if error is None:
        return False
    known = _rule(name)
    status, code = known.expect
    if on_mock or known.documented:
        return (error.status, error.code) == (status, code) if code else error.status == status
    if known.source.url is not None:
        return error.status == status
    return 400 <= error.status < 500


# --- environment ---------------------------------------------------------------------------

def environment_report() -> dict[str, str]:
    import cryptography

    import byoklib
    from byoklib.tutorial.openssl import OpenSSL, OpenSSLUnavailable

    report = {"python": platform.python_version(), "byoklib": byoklib.__version__,
              "cryptography": cryptography.__version__}
    try:
        report["openssl"] = OpenSSL().version()
    except OpenSSLUnavailable as exc:
        report["openssl"] = f"UNAVAILABLE: {exc}"
    return report


# --- the flow, drawn -------------------------------------------------------------------------

def draw_flow(ax=None):
    """The import-token flow as a sequence diagram (you, your key store, Key Protect, its HSM)."""
    from byoklib.tutorial.pictures import draw_sequence

    return draw_sequence(ax)
