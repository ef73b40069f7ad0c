"""The HPCS flavour of the mock: SHA-1 OAEP accepted there, SHA-256 refused; Key Protect
unchanged. Over real HTTP (running_server and `serve --flavor hpcs`) and on the service."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from byoklib import data_path, primitives
from byoklib.errors import KeyProtectError
from byoklib.mock import running_server
from byoklib.mock.flavors import FLAVORS, HPCS, KEY_PROTECT, flavor_of
from byoklib.mock.hsm import HSM
from byoklib.mock.keypairs import fixed_key_pairs
from byoklib.mock.service import KeyProtectService
from byoklib.protocol import RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256
from conftest import Api, reason, secure_fields


def fields_with(material: bytes, token: dict, algorithm: str) -> dict:
    """The secure-import fields with the material wrapped under `algorithm`."""
    fields = secure_fields(material, token)
    wrapped = primitives.wrap_key_material(material, primitives.b64decode(token["payload"]),
                                           algorithm)
    return dict(fields, payload=primitives.b64encode(wrapped), encryptionAlgorithm=algorithm)


@pytest.fixture
def hpcs(clock, token_key_pairs):
    service = KeyProtectService(clock=clock, hsm=HSM(fixed_key_pairs(token_key_pairs)),
                                flavor="hpcs")
    with running_server(service) as running:
        yield Api(running.url)


def key_count(api) -> int:
    return int(api.call("HEAD", "/api/v2/keys").headers["Key-Total"])


def test_flavor_names():
    assert flavor_of(None) is KEY_PROTECT and flavor_of("keyprotect") is KEY_PROTECT
    assert flavor_of("hpcs") is HPCS and flavor_of(HPCS) is HPCS
    assert sorted(FLAVORS) == ["hpcs", "keyprotect"]
    with pytest.raises(ValueError, match="unknown flavor"):
        flavor_of("aws")
    with pytest.raises(ValueError):
        KeyProtectService(flavor="Key Protect")


def test_hpcs_imports_sha1_material_and_uses_it(hpcs):
    hpcs.new_token()
    material = primitives.generate_key_material()
    key = hpcs.root_key("hpcs-key", **fields_with(material, hpcs.token(), RSAES_OAEP_SHA_1))
    assert key["imported"] is True and key["extractable"] is False
    assert key["crn"].startswith("crn:v1:bluemix:public:hs-crypto:us-south:a/")
    wrapped = hpcs.action(key["id"], "wrap", {"plaintext": primitives.b64encode(b"d" * 32)})
    assert wrapped.status_code == 200
    unwrapped = hpcs.action(key["id"], "unwrap", {"ciphertext": wrapped.json()["ciphertext"]})
    assert primitives.b64decode(unwrapped.json()["plaintext"]) == b"d" * 32


@pytest.mark.parametrize("algorithm", [RSAES_OAEP_SHA_256, None, "RSAES_OAEP_SHA_512"])
def test_hpcs_refuses_other_algorithms_and_keeps_nothing(hpcs, algorithm):
    hpcs.new_token()
    token = hpcs.token()
    material = primitives.generate_key_material()
    fields = fields_with(material, token, RSAES_OAEP_SHA_1)
    fields["encryptionAlgorithm"] = algorithm
    fields = {k: v for k, v in fields.items() if v is not None}
    response = hpcs.create_key({"name": "refused", "extractable": False, **fields})
    assert reason(response) == (400, "INVALID_FIELD_ERR")
    refusal = response.json()["resources"][0]["reasons"][0]
    assert refusal["target"]["name"] == "encryptionAlgorithm"
    assert "RSAES_OAEP_SHA_1" in refusal["message"]
    assert key_count(hpcs) == 0


def test_hpcs_sha1_label_on_sha256_material_is_unprocessable(hpcs):
    """The label must say how the payload was really wrapped: OAEP's hash is checked."""
    hpcs.new_token()
    token = hpcs.token()
    fields = dict(secure_fields(primitives.generate_key_material(), token),
                  encryptionAlgorithm=RSAES_OAEP_SHA_1)   # payload wrapped with SHA-256
    response = hpcs.create_key({"name": "mislabelled", "extractable": False, **fields})
    assert reason(response) == (400, "UNPROCESSABLE_PAYLOAD_ERR")


def test_hpcs_takes_a_gcm_nonce_only(hpcs):
    """The mock's choice: a 16-byte (AES-CBC) IV is refused in the HPCS flavour too."""
    hpcs.new_token()
    fields = fields_with(primitives.generate_key_material(), hpcs.token(), RSAES_OAEP_SHA_1)
    fields["iv"] = primitives.b64encode(bytes(16))
    response = hpcs.create_key({"name": "cbc", "extractable": False, **fields})
    assert reason(response) == (400, "INVALID_FIELD_ERR")
    assert response.json()["resources"][0]["reasons"][0]["target"]["name"] == "iv"


def test_hpcs_rotation_with_new_sha1_material(hpcs, clock):
    hpcs.new_token(maxAllowedRetrievals=2)
    key = hpcs.root_key("rotated", **fields_with(primitives.generate_key_material(),
                                                 hpcs.token(), RSAES_OAEP_SHA_1))
    new = fields_with(primitives.generate_key_material(), hpcs.token(), RSAES_OAEP_SHA_1)
    refused = hpcs.action(key["id"], "rotate", dict(new, encryptionAlgorithm=RSAES_OAEP_SHA_256))
    assert reason(refused) == (400, "INVALID_FIELD_ERR")
    assert hpcs.action(key["id"], "rotate", new).status_code in (200, 204)
    assert len(hpcs.get(f"/api/v2/keys/{key['id']}/versions").json()["resources"]) == 2


def test_key_protect_still_refuses_sha1(api):
    api.new_token()
    fields = fields_with(primitives.generate_key_material(), api.token(), RSAES_OAEP_SHA_1)
    response = api.create_key({"name": "sha1", "extractable": False, **fields})
    assert reason(response) == (400, "INVALID_FIELD_ERR")
    message = response.json()["resources"][0]["reasons"][0]["message"]
    assert message == ("The field 'encryptionAlgorithm' must be: RSAES_OAEP_SHA_256 "
                       "(RSAES_OAEP_SHA_1 is for Hyper Protect Crypto Services only)")


def test_key_protect_crn_still_names_kms(api):
    assert api.root_key()["crn"].startswith("crn:v1:bluemix:public:kms:")


def test_hsm_takes_the_flavor(token_key_pairs):
    hsm = HSM(fixed_key_pairs(token_key_pairs))
    handle = hsm.new_transport_key()
    material, nonce = primitives.generate_key_material(), bytes(range(12))
    encrypted_nonce, iv = primitives.encrypt_nonce(material, nonce)
    payload = primitives.wrap_key_material(material, hsm.public_key_pem(handle),
                                           RSAES_OAEP_SHA_1)
    assert hsm.open_secure_import(handle, payload, encrypted_nonce, iv, nonce,
                                  RSAES_OAEP_SHA_1, flavor=HPCS) == material
    with pytest.raises(KeyProtectError) as info:
        hsm.open_secure_import(handle, payload, encrypted_nonce, iv, nonce, RSAES_OAEP_SHA_1)
    assert info.value.code == "INVALID_FIELD_ERR"


def test_serve_flavor_hpcs_subprocess():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    path = data_path("test-only", "token-key-1.pem")
    process = subprocess.Popen([sys.executable, "-m", "byoklib", "serve", "--port", "0",
                                "--flavor", "hpcs", "--token-key", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline().rstrip("\n")
        assert line.startswith("Key Protect mock listening on http://127.0.0.1:")
        api = Api(line.rsplit(" ", 1)[1])
        api.new_token()
        key = api.root_key("cli", **fields_with(primitives.generate_key_material(),
                                                api.token(), RSAES_OAEP_SHA_1))
        assert ":hs-crypto:" in key["crn"]
    finally:
        process.kill()
        process.wait(10)


def test_serve_refuses_an_unknown_flavor():
    process = subprocess.run([sys.executable, "-m", "byoklib", "serve", "--flavor", "aws"],
                             capture_output=True, text=True, timeout=30)
    assert process.returncode != 0 and "invalid choice" in process.stderr
