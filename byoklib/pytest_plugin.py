"""pytest fixtures for people who use the Key Protect mock in their own tests.

Installed with byoklib (a `pytest11` entry point), so a project needs no conftest:

    def test_my_app(key_protect):
        key = key_protect.client.create_root_key("app-root")
        key_protect.clock.advance(3600)            # time moves only when told to
        assert my_app.unwrap(key_protect.url, key_protect.instance_id, key_protect.token, ...)

- `key_protect`: a fresh mock per test on 127.0.0.1 (an ephemeral port) with `.url`,
  `.instance_id`, `.token`, `.headers` (for a client of your own), `.clock` (a
  `ManualClock`), `.service`, and `.client` (a `byoklib.KeyProtectClient` already
  pointed at it); `.new_client(instance_id=..., token=...)` makes another caller.
- `key_protect_session`: one mock for the whole session (for each worker, under
  pytest-xdist), for speed: no mock started and stopped per test; its state and clock
  carry over from test to test.

Options, per test with the marker `@pytest.mark.key_protect(strict=True, test_keys=True,
instance_id=..., token=...)` (on a test, its class or its module: each option from the
closest marker that gives it), or for the whole run (the session fixture too, which no
marker changes: it warns) with `--key-protect-strict` / `--key-protect-test-keys` or the
ini keys `key_protect_strict` / `key_protect_test_keys`:
- strict: only `.token` is granted, for `.instance_id` alone (`serve --grant`): another
  token gets 401, another instance 403;
- test_keys: import tokens are made from byoklib's packaged TEST-ONLY RSA-4096 key pairs,
  so a token POST is instant (otherwise an RSA-4096 key pair is generated for each token,
  in a background pool shared by the session). Never for anything real: those private
  keys are public.

Nothing of the mock is imported until a fixture is used, so the plugin costs a test run
that does not use it nothing measurable; its names (`key_protect*`) leave others free.
"""
from __future__ import annotations

import uuid

import pytest

DEFAULT_TOKEN = "key-protect-test-token"
MARKER = "key_protect"


def pytest_addoption(parser):
    group = parser.getgroup("byoklib", "Key Protect mock (byoklib)")
    group.addoption("--key-protect-strict", action="store_true", default=None,
                    help="key_protect fixtures: grant only their own token and instance")
    group.addoption("--key-protect-test-keys", action="store_true", default=None,
                    help="key_protect fixtures: make import tokens from byoklib's TEST-ONLY "
                         "key pairs (instant; never for anything real)")
    parser.addini("key_protect_strict", type="bool", default=False,
                  help="key_protect fixtures: strict mode (grants) by default")
    parser.addini("key_protect_test_keys", type="bool", default=False,
                  help="key_protect fixtures: TEST-ONLY key pairs for import tokens by default")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", f"{MARKER}(strict=None, test_keys=None, instance_id=None, token=None): "
                   "options of byoklib's key_protect fixture for this test")


class KeyProtectMock:
    """One running mock and the credentials its tests use. The token is a test value,
    shown in repr; the mock accepts any non-empty one unless strict."""

    def __init__(self, running, instance_id: str, token: str, strict: bool):
        self.url = running.url
        self.port = running.port
        self.service = running.service
        self.clock = running.clock
        self.instance_id = instance_id
        self.token = token
        self.strict = strict
        self._clients = []
        self.client = self.new_client()

    @property
    def headers(self) -> dict:
        """The two headers every Key Protect call needs, for a client of your own."""
        from byoklib import protocol   # here: the plugin loads before a run's coverage starts
        return {protocol.AUTHORIZATION_HEADER: protocol.authorization(self.token),
                protocol.INSTANCE_HEADER: self.instance_id}

    def new_client(self, instance_id: str | None = None, token: str | None = None, **options):
        """Another `KeyProtectClient` on this mock (closed when the fixture ends)."""
        from byoklib.client.keyprotect import KeyProtectClient
        client = KeyProtectClient(self.url, instance_id or self.instance_id,
                                  token or self.token, **options)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def __repr__(self) -> str:
        mode = "strict" if self.strict else "open"
        return f"KeyProtectMock({self.url}, instance_id={self.instance_id!r}, {mode})"


OPTIONS = ("strict", "test_keys", "instance_id", "token")


def _marked(node) -> dict:
    """The options the `key_protect` markers over `node` give, each from the closest marker
    that gives it: a test's own over its class's over its module's."""
    given = {}
    for marker in node.iter_markers(MARKER):   # closest first
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes options by name: "
                                    f"{', '.join(OPTIONS)}")
        unknown = set(marker.kwargs) - set(OPTIONS)
        if unknown:
            raise pytest.UsageError(f"@pytest.mark.{MARKER}: unknown options {sorted(unknown)}")
        for name, value in marker.kwargs.items():
            if value is None:
                continue
            if name in ("strict", "test_keys") and not isinstance(value, bool):
                raise pytest.UsageError(f"@pytest.mark.{MARKER}: {name} is True or False")
            if name in ("instance_id", "token") and not (isinstance(value, str) and value):
                raise pytest.UsageError(f"@pytest.mark.{MARKER}: {name} is a non-empty string")
            given.setdefault(name, value)
    return given


def _options(config, given=None) -> dict:
    """The fixture's options: the markers', else the command line's, else the ini's."""
    given = given or {}
    options = {}
    for name in ("strict", "test_keys"):
        value = given.get(name)
        if value is None:
            value = config.getoption(f"--key-protect-{name.replace('_', '-')}")
        if value is None:
            value = config.getini(f"key_protect_{name}")
        options[name] = bool(value)
    options["instance_id"] = given.get("instance_id") or str(uuid.uuid4())
    options["token"] = given.get("token") or DEFAULT_TOKEN
    return options


class _KeyPairs:
    """The session's key-pair sources, made on first use: the packaged TEST-ONLY pairs
    (parsed once), and a pool of fresh ones (started only when a token is first made)."""

    def __init__(self):
        self._test_only = None
        self._pool = None

    def test_only(self):
        if self._test_only is None:
            from byoklib.mock.keypairs import test_only_key_pairs
            self._test_only = test_only_key_pairs()
        return self._test_only

    def fresh(self):
        def source():
            if self._pool is None:
                from byoklib.mock.keypairs import KeyPairPool
                self._pool = KeyPairPool().start()
            return self._pool.take()
        return source

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


@pytest.fixture(scope="session")
def _byoklib_key_pairs():
    pairs = _KeyPairs()
    yield pairs
    pairs.close()


def _serve(options: dict, key_pairs: _KeyPairs):
    """A context manager serving one mock with `options`; yields a KeyProtectMock."""
    from contextlib import contextmanager

    from byoklib.mock import running_server
    from byoklib.mock.hsm import HSM
    from byoklib.mock.service import KeyProtectService, ManualClock

    @contextmanager
    def serving():
        source = key_pairs.test_only() if options["test_keys"] else key_pairs.fresh()
        service = KeyProtectService(clock=ManualClock(), hsm=HSM(source))
        grants = {options["token"]: {options["instance_id"]}} if options["strict"] else None
        with running_server(service, grants=grants) as running:
            mock = KeyProtectMock(running, options["instance_id"], options["token"],
                                  options["strict"])
            try:
                yield mock
            finally:
                mock.close()
    return serving()


@pytest.fixture
def key_protect(request, _byoklib_key_pairs):
    """A fresh Key Protect mock for this test (see byoklib.pytest_plugin)."""
    options = _options(request.config, _marked(request.node))
    with _serve(options, _byoklib_key_pairs) as mock:
        yield mock


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = getattr(item, "fixturenames", ())
        if ("key_protect_session" in names and "key_protect" not in names
                and item.get_closest_marker(MARKER) is not None):
            item.warn(pytest.PytestWarning(
                f"@pytest.mark.{MARKER} sets the key_protect fixture's options; "
                "key_protect_session, one mock for all, takes only the command line's "
                "(--key-protect-strict, --key-protect-test-keys) and the ini's"))


@pytest.fixture(scope="session")
def key_protect_session(request, _byoklib_key_pairs):
    """One Key Protect mock for the whole session: state and clock carry over."""
    with _serve(_options(request.config), _byoklib_key_pairs) as mock:
        yield mock
