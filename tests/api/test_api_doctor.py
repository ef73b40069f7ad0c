"""The import doctor over HTTP: each mistake, sent as a learner sends it, gets the real
service's answer plus a Byoklib-Diagnosis header naming it; `faithful` leaves the header out
and the body is the same."""
import base64

import pytest
import requests
from conftest import KEY_TYPE, Api, envelope, reason
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from byoklib import primitives
from byoklib.mock import running_server
from byoklib.mock.keypairs import fixed_key_pairs

MATERIAL = bytes(range(32))          # TEST-ONLY fixed material
IV = bytes(range(12))
SHA256 = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def body(token: dict, *, wrapped=None, pad=SHA256, sealed=None, iv=IV, iv_text=None,
         nonce=None, material=MATERIAL) -> dict:
    public = primitives.load_public_key(primitives.b64decode(token["payload"]))
    nonce = primitives.b64decode(token["nonce"]) if nonce is None else nonce
    payload = public.encrypt(MATERIAL if wrapped is None else wrapped, pad)
    sealed = AESGCM(material).encrypt(iv, nonce, None) if sealed is None else sealed
    return {"type": KEY_TYPE, "name": "byok", "extractable": False,
            "payload": b64(payload), "encryptedNonce": b64(sealed),
            "iv": b64(iv) if iv_text is None else iv_text,
            "encryptionAlgorithm": "RSAES_OAEP_SHA_256"}


@pytest.fixture
def api(api):
    """conftest's API, with an import token that allows a few retrievals."""
    api.new_token(maxAllowedRetrievals=5)
    return api


def diagnosis(response) -> str:
    return response.headers.get("Byoklib-Diagnosis", "").partition(":")[0]


def test_a_good_import_carries_no_diagnosis(api):
    response = api.post("/api/v2/keys", json=envelope(body(api.token())))
    assert response.status_code == 201 and "Byoklib-Diagnosis" not in response.headers


def cbc(nonce: bytes, iv: bytes) -> bytes:
    padder = symmetric_padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(MATERIAL), modes.CBC(iv)).encryptor()
    return encryptor.update(padder.update(nonce) + padder.finalize()) + encryptor.finalize()


MISTAKES = {
    "OAEP_SHA1": (400, "UNPROCESSABLE_PAYLOAD_ERR", lambda t, n: body(
        t, pad=padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))),
    "OAEP_MGF1_SHA1": (400, "UNPROCESSABLE_PAYLOAD_ERR", lambda t, n: body(
        t, pad=padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA256(), None))),
    "PKCS1_V15": (400, "UNPROCESSABLE_PAYLOAD_ERR", lambda t, n: body(t, pad=padding.PKCS1v15())),
    "MATERIAL_NOT_RAW": (400, "INVALID_FIELD_ERR",
                         lambda t, n: body(t, wrapped=b64(MATERIAL).encode() + b"\n")),
    "NONCE_AS_TEXT": (400, "INCORRECT_NONCE_ERR",
                      lambda t, n: body(t, nonce=t["nonce"].encode())),
    "TAG_MISSING": (400, "INCORRECT_NONCE_IV_ERR", lambda t, n: body(
        t, sealed=AESGCM(MATERIAL).encrypt(IV, n, None)[:12])),
    "IV_NOT_BASE64": (400, "INVALID_FIELD_ERR", lambda t, n: body(
        t, sealed=AESGCM(MATERIAL).encrypt(b"puQrzDX7gU1T", n, None), iv_text="puQrzDX7gU1T")),
    "NONCE_CBC": (400, "INVALID_FIELD_ERR", lambda t, n: body(
        t, sealed=cbc(n, bytes(16)), iv=bytes(16))),
    "NONCE_WITH_AAD": (400, "INCORRECT_NONCE_IV_ERR", lambda t, n: body(
        t, sealed=AESGCM(MATERIAL).encrypt(IV, n, b"byok"))),
    "NONCE_OTHER_KEY": (400, "INCORRECT_NONCE_IV_ERR",
                        lambda t, n: body(t, material=bytes(32))),
}


@pytest.mark.parametrize("code", MISTAKES)
def test_each_mistake_is_named_beside_the_real_answer(api, code):
    status, reason_code, make = MISTAKES[code]
    token = api.token()
    response = api.post("/api/v2/keys", json=envelope(make(token, primitives.b64decode(
        token["nonce"]))))
    assert reason(response) == (status, reason_code)
    assert diagnosis(response) == code
    assert api.get("/api/v2/keys").json()["resources"] == []     # nothing created


def test_a_replaced_tokens_nonce_and_key_are_named(api):
    api.new_token()
    first = api.token()
    api.new_token()
    second = api.token()
    old_nonce = primitives.b64decode(first["nonce"])
    response = api.post("/api/v2/keys", json=envelope(body(second, nonce=old_nonce)))
    assert reason(response) == (400, "INCORRECT_NONCE_ERR")
    assert diagnosis(response) == "NONCE_FROM_OLD_TOKEN"
    response = api.post("/api/v2/keys", json=envelope(body(first)))
    assert diagnosis(response) == "PAYLOAD_FOR_OLD_TOKEN"


def test_a_rotation_is_diagnosed_too(api):
    key = api.secure_root_key(MATERIAL)
    token = api.token()
    fields = body(token, pad=padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))
    rotate = {k: fields[k] for k in ("payload", "encryptedNonce", "iv", "encryptionAlgorithm")}
    response = api.action(key["id"], "rotate", rotate)
    assert reason(response) == (400, "UNPROCESSABLE_PAYLOAD_ERR")
    assert diagnosis(response) == "OAEP_SHA1"


def test_faithful_leaves_the_header_out_and_the_body_as_it_is(token_key_pairs):
    answers = []
    for faithful in (False, True):
        with running_server(key_pair_source=fixed_key_pairs(token_key_pairs),
                            faithful=faithful) as server:
            api = Api(server.url)
            api.new_token()
            fields = body(api.token(), pad=padding.PKCS1v15())
            response = api.post("/api/v2/keys", json=envelope(fields))
            answers.append((response.status_code, response.json(),
                            response.headers.get("Byoklib-Diagnosis")))
    (status, doctored, header), (status_f, faithful_body, header_f) = answers
    assert status == status_f == 400 and doctored == faithful_body
    assert header.startswith("PKCS1_V15: ") and header_f is None


def test_the_diagnosis_is_shown_by_curl_like_clients_as_a_plain_header(server):
    api = Api(server.url)
    api.new_token()
    fields = body(api.token(), wrapped=MATERIAL.hex().encode())
    response = requests.post(server.url + "/api/v2/keys", json=envelope(fields),
                             headers=api.headers, timeout=30)
    header = response.headers["Byoklib-Diagnosis"]
    assert header.isascii() and "\r" not in header and "\n" not in header
    assert MATERIAL.hex() not in header and b64(MATERIAL) not in header
