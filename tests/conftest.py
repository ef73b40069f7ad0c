"""Shared fixtures. Others may add theirs below; keep each one small and documented.

The service-wing fixtures run the mock on a ManualClock (time moves only by
`clock.advance`, never by sleeping) and feed its HSM the committed TEST-ONLY RSA-4096
key pairs, so the suite never generates RSA-4096 keys it does not need.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from byoklib import data_path, primitives
from byoklib.mock import keypairs, running_server
from byoklib.mock.hsm import HSM
from byoklib.mock.keypairs import fixed_key_pairs
from byoklib.mock.service import KeyProtectService, ManualClock

TOKEN_KEY_FILES = [data_path("test-only", name) for name in keypairs.TEST_ONLY_KEY_FILES]
# The notebooks' own mock (tutorial.notebook.connect) takes its tokens from those TEST-ONLY
# pairs too: nbval's, papermill's and JupyterLab's kernels inherit this. Set before any
# worker starts a kernel; a learner's run never has it.
os.environ.setdefault("BYOKLIB_TEST_ONLY_TOKEN_KEYS", "1")
KEY_TYPE = "application/vnd.ibm.kms.key+json"
START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def no_rsa4096_generation_unless_marked(request, monkeypatch):
    """A test that makes an RSA-4096 key in this process fails unless it is marked
    `generates_rsa4096`: where a key's freshness is not what is tested, a TEST-ONLY pair
    serves (each generation is seconds of CPU, at random, in a suite that must stay fast)."""
    if request.node.get_closest_marker("generates_rsa4096"):
        yield
        return
    made = []
    generate = rsa.generate_private_key

    def recorded(public_exponent, key_size, *args, **kwargs):
        if key_size >= 4096:
            made.append(key_size)
        return generate(public_exponent, key_size, *args, **kwargs)

    monkeypatch.setattr(rsa, "generate_private_key", recorded)
    yield
    assert not made, (f"{len(made)} RSA-4096 key(s) generated: give the mock "
                      "keypairs.test_only_key_pairs(), or mark the test generates_rsa4096")


@pytest.fixture(scope="session")
def token_key_pairs():
    """The test-only private keys, loaded once, as the notebooks' mock loads them
    (tests/mock/test_keypairs.py checks each in full)."""
    source = keypairs.test_only_key_pairs()
    return [source() for _ in TOKEN_KEY_FILES]


@pytest.fixture
def clock():
    return ManualClock(START)


@pytest.fixture
def service(clock, token_key_pairs):
    return KeyProtectService(clock=clock, hsm=HSM(fixed_key_pairs(token_key_pairs)))


@pytest.fixture
def server(service):
    with running_server(service) as running:
        yield running


class Api:
    """A thin `requests` wrapper for the API tests (not byoklib.client, on purpose:
    these tests pin the wire format themselves)."""

    def __init__(self, url: str, instance: str = "instance-1", token: str = "test-token"):
        self.url = url
        self.session = requests.Session()
        self.headers = {"Authorization": f"Bearer {token}", "bluemix-instance": instance}

    def call(self, method: str, path: str, *, json=None, data=None, headers=None, **kw):
        merged = {**self.headers, **(headers or {})}
        return self.session.request(method, self.url + path, json=json, data=data,
                                    headers=merged, timeout=30, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.call("POST", path, json=json, **kw)

    # --- protocol helpers ---

    def new_token(self, **body) -> dict:
        response = self.post("/api/v2/import_token", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def token(self) -> dict:
        response = self.get("/api/v2/import_token")
        assert response.status_code == 200, response.text
        return response.json()

    def create_key(self, resource: dict, prefer: str | None = "return=representation"):
        headers = {"Prefer": prefer} if prefer else {}
        return self.post("/api/v2/keys", json=envelope(resource), headers=headers)

    def root_key(self, name="root-key", **fields) -> dict:
        response = self.create_key({"type": KEY_TYPE, "name": name, "extractable": False,
                                    **fields})
        assert response.status_code == 201, response.text
        return response.json()["resources"][0]

    def secure_root_key(self, material: bytes, token: dict | None = None, name="byok") -> dict:
        fields = secure_fields(material, token or self.token())
        return self.root_key(name, **fields)

    def key(self, key_id: str) -> dict:
        response = self.get(f"/api/v2/keys/{key_id}")
        assert response.status_code == 200, response.text
        return response.json()["resources"][0]

    def action(self, key_id: str, name: str, body=None, **kw):
        return self.post(f"/api/v2/keys/{key_id}/actions/{name}", json=body, **kw)


def envelope(resource: dict, total: int = 1, kind: str = KEY_TYPE) -> dict:
    return {"metadata": {"collectionType": kind, "collectionTotal": total},
            "resources": [resource]}


def secure_fields(material: bytes, token: dict, iv: bytes | None = None) -> dict:
    """The four secure-import fields, built with the primitives directly."""
    encrypted_nonce, iv = primitives.encrypt_nonce(material, primitives.b64decode(token["nonce"]),
                                                   iv)
    payload = primitives.wrap_key_material(material, primitives.b64decode(token["payload"]))
    return {"payload": primitives.b64encode(payload),
            "encryptedNonce": primitives.b64encode(encrypted_nonce),
            "iv": primitives.b64encode(iv), "encryptionAlgorithm": "RSAES_OAEP_SHA_256"}


UNAUTHORIZED_BODY = {"errorMsg": "Unauthorized: The user does not have access to the "
                                 "specified resource"}


def reason(response) -> tuple[int, str]:
    """(status, reason code) of a Key Protect error response. A 401 names no code: its
    body is that errorMsg alone (DOC:errors #34), the UNAUTHORIZED_ERR answer."""
    resource = response.json()["resources"][0]
    if response.status_code == 401 and resource == UNAUTHORIZED_BODY:
        return 401, "UNAUTHORIZED_ERR"
    return response.status_code, resource["reasons"][0]["code"]


@pytest.fixture
def api(server):
    return Api(server.url)


@pytest.fixture
def make_api(server):
    """Another caller of the same server: `make_api(instance=..., token=...)`."""
    return lambda **kw: Api(server.url, **kw)


# --- the order units of work are handed out in -----------------------------------------------

def run_order(nodeid: str) -> int:
    """0 for the longest units of work, 2 for the many short ones.

    `make test` runs `--dist loadscope --no-loadscope-reorder`: each test module, class and
    notebook (nbval's cells) is one unit, handed out in collection order to whichever worker
    is free. Started last, one long unit would leave the other worker idle at the end;
    started first, the short modules fill in around it. The browser test (every notebook opened
    in one JupyterLab) and the timing notebook are the longest, then the other notebook runs
    and the modules that start servers, kernels or the openssl command many times.
    """
    if nodeid.startswith("tests/test_browser.py") or "07_timing" in nodeid:
        return 0
    if nodeid.startswith(("notebooks/", "tests/test_notebooks.py::Test_",
                          "tests/test_package.py", "tests/api/test_openapi.py",
                          "tests/tutorial/test_broken_library.py", "tests/tutorial/test_bench.py",
                          "tests/api/test_api_server.py", "tests/test_pytest_plugin.py",
                          "tests/tutorial/test_openssl.py")):
        return 1   # the wheel in a fresh venv and the fuzzer too
    return 2


def pytest_collection_modifyitems(config, items):
    # A stable sort: nbval's cells of one notebook keep their order.
    items.sort(key=lambda item: run_order(item.nodeid))
    # The committed outputs of the SoftHSM2 notebook come from a machine with a token: where
    # SoftHSM2 or python-pkcs11 cannot be had, nbval skips it with the reason (papermill
    # still runs it: it ends cleanly, saying what to install).
    from byoklib.tutorial.pkcs11 import missing
    reason = missing()
    if reason:
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if item.nodeid.startswith("notebooks/10_your_own_hsm.ipynb"):
                item.add_marker(skip)


# --- the browser test's screenshots, listed on the controller (also under pytest-xdist) ------

_SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "lab-screenshots"


def pytest_sessionstart(session):
    session.config._byok_started = time.time()


def pytest_terminal_summary(terminalreporter, config):
    started = getattr(config, "_byok_started", None)
    if started is None or not _SCREENSHOTS.is_dir():
        return
    fresh = sorted(p for p in _SCREENSHOTS.glob("*.png") if p.stat().st_mtime >= started)
    if fresh:
        terminalreporter.section("JupyterLab screenshots (one per notebook, at its end)")
        for path in fresh:
            terminalreporter.write_line(str(path))


# --- IBM's own Python client against the running mock (the interop tests) -------------------

def stream(body):
    """A JSON body as IBM's client takes it (a binary stream)."""
    import io
    import json
    return io.BytesIO(json.dumps(body).encode("utf-8"))


@pytest.fixture
def kp(server):
    """`keyprotect` 3.0.1's IbmKeyProtectApiV2 pointed at the mock with a bearer token."""
    ibm = pytest.importorskip("keyprotect.ibm_key_protect_api_v2")
    from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator
    client = ibm.IbmKeyProtectApiV2(BearerTokenAuthenticator("mock-token"))
    client.set_service_url(server.url)
    return client
