"""A secure import built the way IBM's tutorial builds it — `openssl rand`, `openssl
pkeyutl` OAEP-SHA-256, `openssl enc -base64 -A` — and posted with plain `requests` (and
once with `curl`), is accepted by the mock. This checks the mock against an independent
implementation of the client side, not just against byoklib's own client.

`openssl enc` has no GCM mode, so the nonce is still sealed in Python
(`primitives.encrypt_nonce`), as the tutorial seals it with a separate tool.
"""
import json
import shutil
import subprocess
import uuid

import pytest
import requests

from byoklib import primitives
from byoklib.client import KeyProtectClient
from byoklib.mock import running_server
from byoklib.mock.keypairs import fixed_key_pairs

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")


@pytest.fixture(scope="module")
def server(token_key_pairs):
    # token_key_pairs (conftest): the TEST-ONLY private keys, parsed once per session.
    with running_server(key_pair_source=fixed_key_pairs(token_key_pairs)) as running:
        yield running


def openssl(*args, cwd):
    """Run openssl in the work folder; key material only ever goes through files there."""
    result = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def headers(instance):
    return {"authorization": "Bearer tutorial-token", "bluemix-instance": instance,
            "content-type": "application/json", "accept": "application/json"}


def tutorial_import_body(server, instance, work):
    """Steps 1-8 of the tutorial; returns (request body, the raw key material)."""
    created = requests.post(f"{server.url}/api/v2/import_token", headers=headers(instance),
                            json={"expiration": 1200, "maxAllowedRetrievals": 1}, timeout=30)
    assert created.status_code == 200, created.text
    token = requests.get(f"{server.url}/api/v2/import_token", headers=headers(instance), timeout=30)
    assert token.status_code == 200, token.text
    token = token.json()
    (work / "PublicKey.pem").write_bytes(primitives.b64decode(token["payload"]))

    openssl("rand", "-out", "PlainTextKey.bin", "32", cwd=work)
    openssl("pkeyutl", "-encrypt", "-pubin", "-keyform", "PEM", "-inkey", "PublicKey.pem",
            "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
            "-in", "PlainTextKey.bin", "-out", "EncryptedKey.bin", cwd=work)
    payload = openssl("enc", "-base64", "-A", "-in", "EncryptedKey.bin", cwd=work).decode().strip()
    material = (work / "PlainTextKey.bin").read_bytes()
    assert len(material) == 32 and len(primitives.b64decode(payload)) == 512

    sealed, iv = primitives.encrypt_nonce(material, primitives.b64decode(token["nonce"]))
    body = {"metadata": {"collectionType": "application/vnd.ibm.kms.key+json",
                         "collectionTotal": 1},
            "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": "tutorial-key",
                           "extractable": False, "payload": payload,
                           "encryptionAlgorithm": "RSAES_OAEP_SHA_256",
                           "encryptedNonce": primitives.b64encode(sealed),
                           "iv": primitives.b64encode(iv)}]}
    return body, material


def assert_usable_root_key(server, instance, key_id):
    """The imported key now does envelope encryption. (That the service holds exactly the
    openssl-made bytes follows from the 201: it opened the GCM-sealed nonce with them.)"""
    with KeyProtectClient(server.url, instance, "tutorial-token") as client:
        wrapped = client.wrap(key_id, b"a DEK for the openssl-made key")
        assert client.unwrap(key_id, wrapped["ciphertext"])["plaintext"] == \
            b"a DEK for the openssl-made key"


def test_openssl_built_import_posted_with_requests(server, tmp_path):
    instance = f"openssl-{uuid.uuid4()}"
    body, _ = tutorial_import_body(server, instance, tmp_path)
    response = requests.post(f"{server.url}/api/v2/keys", headers=headers(instance),
                             data=json.dumps(body), timeout=30)
    assert response.status_code == 201, response.text
    key = response.json()["resources"][0]
    assert key["imported"] is True and key["extractable"] is False
    assert_usable_root_key(server, instance, key["id"])


def test_openssl_pkeyutl_ciphertext_opens_with_the_token_private_key(server, tmp_path,
                                                                   token_key_pairs):
    # Which test key the server handed out is found by fingerprint; OpenSSL's OAEP
    # ciphertext must then open with SHA-256/MGF1-SHA-256 in Python, byte for byte.
    instance = f"openssl-{uuid.uuid4()}"
    body, material = tutorial_import_body(server, instance, tmp_path)
    public = (tmp_path / "PublicKey.pem").read_bytes()
    fingerprint = primitives.public_key_fingerprint(public)
    private = next(k for k in token_key_pairs if primitives.public_key_fingerprint(k) == fingerprint)
    wrapped = primitives.b64decode(body["resources"][0]["payload"])
    assert primitives.unwrap_key_material(wrapped, private) == material


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_openssl_built_import_posted_with_curl(server, tmp_path):
    instance = f"curl-{uuid.uuid4()}"
    body, _ = tutorial_import_body(server, instance, tmp_path)
    (tmp_path / "body.json").write_text(json.dumps(body))
    command = [CURL, "-sS", "-X", "POST", f"{server.url}/api/v2/keys",
               "-o", "response.json", "-w", "%{http_code}", "-d", "@body.json"]
    for name, value in headers(instance).items():
        command += ["-H", f"{name}: {value}"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "201", (tmp_path / "response.json").read_text()
    key = json.loads((tmp_path / "response.json").read_text())["resources"][0]
    assert key["imported"] is True
    assert_usable_root_key(server, instance, key["id"])
