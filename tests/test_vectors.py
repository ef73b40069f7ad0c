"""Published known-answer tests run through byoklib.primitives, unchanged.

The vectors live in byoklib/data/vectors/ (see data/README.md for where each was copied from).
A primitive that passes its own round-trip tests can still be wrong in a way that
round-trips (wrong counter start, wrong hash in OAEP); only someone else's numbers catch
that. So every case here compares with bytes we did not produce.
"""
from __future__ import annotations

import json

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from byoklib import data_path
from byoklib.primitives import (
    RSAES_OAEP_SHA_1,
    RSAES_OAEP_SHA_256,
    NonceAuthenticationError,
    UnwrapError,
    decrypt_nonce,
    encrypt_nonce,
    unwrap_key_material,
)

VECTORS = data_path("vectors")


def _load(name: str) -> dict:
    with open(VECTORS / name, encoding="utf-8") as fh:
        return json.load(fh)


def _hex(case: dict, field: str) -> bytes:
    return bytes.fromhex(case[field])


# --- AES-GCM ------------------------------------------------------------------------

GCM = _load("aes_gcm.json")["tests"]
GCM_VALID = [c for c in GCM if c["result"] == "valid"]
GCM_INVALID = [c for c in GCM if c["result"] == "invalid"]
# decrypt_nonce/encrypt_nonce take no AAD (the protocol has none), so only vectors
# without AAD can go through them; the AAD ones are checked with AESGCM below.
GCM_NO_AAD = [c for c in GCM if not c["aad"]]
GCM_WITH_AAD = [c for c in GCM if c["aad"]]


def _ids(cases):
    return [c["id"] for c in cases]


def test_gcm_selection_covers_what_the_protocol_uses():
    """Guard the selection itself: if someone trims the file, these properties must stay."""
    key_bits = {len(_hex(c, "key")) * 8 for c in GCM}
    assert key_bits == {128, 192, 256}
    assert any(len(_hex(c, "iv")) == 12 and not c["aad"] and c["pt"] for c in GCM_VALID)
    assert any(len(_hex(c, "iv")) != 12 for c in GCM)
    assert GCM_WITH_AAD and GCM_INVALID
    assert len(GCM) >= 12


@pytest.mark.parametrize("case", [c for c in GCM_VALID if not c["aad"]],
                         ids=_ids([c for c in GCM_VALID if not c["aad"]]))
def test_encrypt_nonce_reproduces_ciphertext_and_tag(case):
    sealed, iv = encrypt_nonce(_hex(case, "key"), _hex(case, "pt"), iv=_hex(case, "iv"))
    assert iv == _hex(case, "iv")
    assert sealed == _hex(case, "ct") + _hex(case, "tag")


@pytest.mark.parametrize("case", GCM_NO_AAD, ids=_ids(GCM_NO_AAD))
def test_decrypt_nonce_accepts_or_refuses_as_the_vector_says(case):
    sealed = _hex(case, "ct") + _hex(case, "tag")
    if case["result"] == "valid":
        assert decrypt_nonce(_hex(case, "key"), sealed, _hex(case, "iv")) == _hex(case, "pt")
    else:
        with pytest.raises(NonceAuthenticationError):
            decrypt_nonce(_hex(case, "key"), sealed, _hex(case, "iv"))


@pytest.mark.parametrize("case", [c for c in GCM_VALID if not c["aad"]],
                         ids=_ids([c for c in GCM_VALID if not c["aad"]]))
def test_decrypt_nonce_refuses_a_flipped_bit(case):
    """The vector's own bytes with one bit changed: tag, then (if any) ciphertext."""
    key, iv = _hex(case, "key"), _hex(case, "iv")
    sealed = bytearray(_hex(case, "ct") + _hex(case, "tag"))
    positions = [len(sealed) - 1] + ([0] if case["ct"] else [])
    for pos in positions:
        altered = bytearray(sealed)
        altered[pos] ^= 0x01
        with pytest.raises(NonceAuthenticationError):
            decrypt_nonce(key, bytes(altered), iv)


@pytest.mark.parametrize("case", GCM_WITH_AAD, ids=_ids(GCM_WITH_AAD))
def test_gcm_vectors_with_aad_through_aesgcm(case):
    """The protocol never uses AAD, so byoklib has no AAD parameter; these vectors still
    check that the library we build on handles them, with cryptography's AESGCM."""
    aead = AESGCM(_hex(case, "key"))
    iv, aad = _hex(case, "iv"), _hex(case, "aad")
    sealed = _hex(case, "ct") + _hex(case, "tag")
    if case["result"] == "valid":
        assert aead.encrypt(iv, _hex(case, "pt"), aad) == sealed
        assert aead.decrypt(iv, sealed, aad) == _hex(case, "pt")
        with pytest.raises(InvalidTag):  # the same bytes without their AAD must fail
            aead.decrypt(iv, sealed, None)
    else:
        with pytest.raises(InvalidTag):
            aead.decrypt(iv, sealed, aad)


KEYSTREAM_CASES = [c for c in GCM_VALID if len(_hex(c, "iv")) == 12 and c["pt"]]


@pytest.mark.parametrize("case", KEYSTREAM_CASES, ids=_ids(KEYSTREAM_CASES))
def test_gcm_body_is_aes_ctr_from_counter_two(case):
    """With a 96-bit IV, J0 = IV || 00000001 masks the tag and the body is AES-CTR
    starting at IV || 00000002 (NIST SP 800-38D, 7.1). This is what lets `openssl enc
    -aes-*-ctr`, which has no GCM, check the ciphertext of an encrypted nonce."""
    counter_block = _hex(case, "iv") + (2).to_bytes(4, "big")
    ctr = Cipher(algorithms.AES(_hex(case, "key")), modes.CTR(counter_block)).encryptor()
    assert ctr.update(_hex(case, "pt")) + ctr.finalize() == _hex(case, "ct")


def test_keystream_identity_fails_from_the_wrong_counter():
    """The same check from counter 1 must not match, or the test above proves nothing."""
    case = KEYSTREAM_CASES[0]
    counter_block = _hex(case, "iv") + (1).to_bytes(4, "big")
    ctr = Cipher(algorithms.AES(_hex(case, "key")), modes.CTR(counter_block)).encryptor()
    assert ctr.update(_hex(case, "pt")) + ctr.finalize() != _hex(case, "ct")


# --- RSA-OAEP, SHA-256 / MGF1-SHA-256 (Wycheproof) ------------------------------------

OAEP256 = _load("rsa_oaep_sha256_mgf1sha256.json")


def _wycheproof_private_key(numbers: dict) -> rsa.RSAPrivateKey:
    h = {k: int(v, 16) for k, v in numbers.items()}
    public = rsa.RSAPublicNumbers(h["publicExponent"], h["modulus"])
    return rsa.RSAPrivateNumbers(
        p=h["prime1"], q=h["prime2"], d=h["privateExponent"], dmp1=h["exponent1"],
        dmq1=h["exponent2"], iqmp=h["coefficient"], public_numbers=public).private_key()


@pytest.fixture(scope="module")
def oaep256_key():
    return _wycheproof_private_key(OAEP256["privateKey"])


def test_oaep256_vector_parameters_match_key_protect():
    """Key Protect's RSAES_OAEP_SHA_256 is SHA-256 with MGF1-SHA-256 and no label."""
    assert (OAEP256["sha"], OAEP256["mgf"], OAEP256["mgfSha"]) == ("SHA-256", "MGF1", "SHA-256")
    assert all(t["label"] == "" for t in OAEP256["tests"])
    assert {t["result"] for t in OAEP256["tests"]} == {"valid", "invalid"}


@pytest.mark.parametrize("case", OAEP256["tests"], ids=[f"tcId{t['tcId']}" for t in OAEP256["tests"]])
def test_unwrap_key_material_wycheproof(case, oaep256_key):
    ct = _hex(case, "ct")
    if case["result"] == "valid":
        assert unwrap_key_material(ct, oaep256_key, RSAES_OAEP_SHA_256) == _hex(case, "msg")
    else:
        with pytest.raises(UnwrapError):
            unwrap_key_material(ct, oaep256_key, RSAES_OAEP_SHA_256)


def test_sha256_ciphertext_does_not_unwrap_as_sha1(oaep256_key):
    """The classic mistake (OpenSSL's default OAEP digest is SHA-1) must fail loudly."""
    valid = next(t for t in OAEP256["tests"] if t["result"] == "valid" and t["msg"])
    with pytest.raises(UnwrapError):
        unwrap_key_material(_hex(valid, "ct"), oaep256_key, RSAES_OAEP_SHA_1)


# --- RSA-OAEP, SHA-1 (PKCS #1 v2.1 oaep-vect.txt) -------------------------------------

OAEP1 = _load("rsa_oaep_sha1_pkcs1_examples.json")


def _private_key_from_n_e_d(case: dict) -> rsa.RSAPrivateKey:
    """The examples give n, e, d; recover p and q so cryptography can build the key."""
    n, e, d = (int(case[x], 16) for x in ("n", "e", "d"))
    p, q = rsa.rsa_recover_prime_factors(n, e, d)
    return rsa.RSAPrivateNumbers(
        p=p, q=q, d=d, dmp1=rsa.rsa_crt_dmp1(d, p), dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q), public_numbers=rsa.RSAPublicNumbers(e, n)).private_key()


@pytest.mark.parametrize("case", OAEP1["tests"], ids=[t["id"] for t in OAEP1["tests"]])
def test_unwrap_key_material_pkcs1_sha1_examples(case):
    key = _private_key_from_n_e_d(case)
    assert unwrap_key_material(_hex(case, "ct"), key, RSAES_OAEP_SHA_1) == _hex(case, "msg")
    with pytest.raises(UnwrapError):  # and not under Key Protect's SHA-256
        unwrap_key_material(_hex(case, "ct"), key, RSAES_OAEP_SHA_256)


def test_vector_files_stay_small():
    total = sum(p.stat().st_size for p in VECTORS.iterdir() if p.is_file())
    assert total < 200_000
