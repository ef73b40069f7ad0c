"""The first-principles witnesses against published answers and against two AES
implementations that are not pyca/cryptography's: the `openssl` command's ECB blocks and
PyCryptodome's. A witness that agreed with byoklib only on byoklib's own bytes would prove
nothing, so every test here compares with someone else's numbers."""
from __future__ import annotations

import json
import os

import pytest
from Crypto.Cipher import AES, PKCS1_OAEP
from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA

from byoklib import data_path, encrypt_nonce, unwrap_key_material, wrap_key_material
from byoklib.tutorial import witnesses as w
from byoklib.tutorial.openssl import OpenSSL

GCM = json.loads(data_path("vectors", "aes_gcm.json").read_text())["tests"]
WYCHEPROOF = json.loads(data_path("vectors", "rsa_oaep_sha256_mgf1sha256.json").read_text())
PKCS1 = json.loads(data_path("vectors", "rsa_oaep_sha1_pkcs1_examples.json").read_text())["tests"]
PRIVATE = data_path("test-only", "token-key-1.pem").read_bytes()
PUBLIC = data_path("test-only", "token-key-1.pub.pem").read_bytes()


@pytest.fixture(scope="module")
def ossl():
    return OpenSSL()


def pycryptodome_blocks(key, blocks):
    ecb = AES.new(key, AES.MODE_ECB)
    return [ecb.encrypt(b) for b in blocks]


# --- GF(2^128) and GHASH ---------------------------------------------------------------------

def test_one_is_the_leftmost_bit():
    x = int.from_bytes(os.urandom(16), "big")
    assert w.gf_mult(x, 1 << 127) == x == w.gf_mult(1 << 127, x)
    assert w.gf_mult(x, 0) == 0


def test_multiplication_commutes_and_distributes():
    a, b, c = (int.from_bytes(os.urandom(16), "big") for _ in range(3))
    assert w.gf_mult(a, b) == w.gf_mult(b, a)
    assert w.gf_mult(a, b ^ c) == w.gf_mult(a, b) ^ w.gf_mult(a, c)


def test_ghash_of_mcgrew_viega_test_case_2():
    # GCM spec test case 2: K = 0^128, P = 0^128; H and GHASH(H, {}, C) as published
    h = bytes.fromhex("66e94bd4ef8a2c3b884cfa59ca342b2e")
    c = bytes.fromhex("0388dace60b6a392f328c2b971b2fe78")
    lengths = (0).to_bytes(8, "big") + (128).to_bytes(8, "big")
    assert w.ghash(h, c + lengths).hex() == "f38cbb1ad69223dcc3457ae5b6b0f885"


def test_aes_ecb_through_openssl_is_fips_197(ossl):
    key = bytes(range(32))
    block = bytes.fromhex("00112233445566778899aabbccddeeff")
    assert ossl.aes_ecb(key, block).hex() == "8ea2b7ca516745bfeafc49904b496089"
    assert "<hex key>" in ossl.last_command and key.hex() not in " ".join(ossl.last_command)


def test_aes_ecb_refuses_a_partial_block(ossl):
    with pytest.raises(ValueError):
        ossl.aes_ecb(bytes(32), bytes(15))


# --- AES-GCM from first principles -----------------------------------------------------------

@pytest.mark.parametrize("case", [c for c in GCM if c["result"] == "valid"], ids=lambda c: c["id"])
def test_gcm_seal_reproduces_every_valid_vector_on_pycryptodome_blocks(case):
    key, iv, pt, aad = (bytes.fromhex(case[f]) for f in ("key", "iv", "pt", "aad"))
    assert w.gcm_seal(pycryptodome_blocks, key, iv, pt, aad).hex() == case["ct"] + case["tag"]


@pytest.mark.parametrize("case", [c for c in GCM if c["result"] == "invalid"], ids=lambda c: c["id"])
def test_gcm_tag_of_every_invalid_vector_differs(case):
    # a decrypt FAIL case lists a ciphertext whose published tag is wrong: recompute it
    key, iv, ct, aad = (bytes.fromhex(case[f]) for f in ("key", "iv", "ct", "aad"))
    (h,) = pycryptodome_blocks(key, [bytes(16)])
    (ek_j0,) = pycryptodome_blocks(key, [w.gcm_j0(h, iv)])
    assert w.gcm_tag(h, ek_j0, ct, aad).hex() != case["tag"]


def test_gcm_seal_on_openssl_blocks_equals_byoklib_and_pycryptodome(ossl):
    for key_bytes in (16, 24, 32):
        key, nonce = os.urandom(key_bytes), os.urandom(12)
        sealed, iv = encrypt_nonce(key, nonce)
        ours = w.gcm_seal(w.aes_blocks_openssl(ossl), key, iv, nonce)
        theirs = AES.new(key, AES.MODE_GCM, nonce=iv, mac_len=16).encrypt_and_digest(nonce)
        assert ours == sealed == b"".join(theirs)


def test_gcm_seal_notices_a_wrong_block():
    key, nonce, iv = os.urandom(32), os.urandom(12), os.urandom(12)
    sealed, _ = encrypt_nonce(key, nonce, iv)

    def one_bit_off(k, blocks):
        out = pycryptodome_blocks(k, blocks)
        out[0] = bytes([out[0][0] ^ 1]) + out[0][1:]
        return out
    assert w.gcm_seal(one_bit_off, key, iv, nonce) != sealed


# --- RSA numbers and OAEP --------------------------------------------------------------------

def test_rsa_numbers_from_openssl_text_are_a_working_pair(ossl):
    numbers = w.rsa_numbers(ossl.private_key_text(PRIVATE))
    n, e, d = numbers["modulus"], numbers["publicExponent"], numbers["privateExponent"]
    assert n.bit_length() == 4096 and e == 65537
    assert format(n, "x") == ossl.modulus_hex(PUBLIC).lstrip("0")
    assert pow(pow(12345, e, n), d, n) == 12345
    public = w.rsa_numbers(ossl.pkey_text(PUBLIC))
    assert public == {"modulus": n, "publicExponent": e}


def test_mgf1_is_the_counter_construction():
    import hashlib
    seed = b"seed"
    expected = (hashlib.sha256(seed + bytes(4)).digest()
                + hashlib.sha256(seed + (1).to_bytes(4, "big")).digest())[:40]
    assert w.mgf1(seed, 40) == expected


@pytest.mark.parametrize("case", PKCS1, ids=lambda c: c["id"])
def test_oaep_encoding_with_the_published_seed_gives_the_published_ciphertext(case):
    n, e, d = (int(case[f], 16) for f in ("n", "e", "d"))
    msg, seed, ct = (bytes.fromhex(case[f]) for f in ("msg", "seed", "ct"))
    assert w.rsa_oaep_encrypt(msg, n, e, seed, "sha1") == ct
    block = w.rsa_oaep_decrypt(ct, n, d, "sha1")
    assert block.ok and block.message == msg and block.seed == seed


WYCHEPROOF_FAILURES = {   # Wycheproof's comment -> where first-principles decoding stops
    "first byte of l_hash modified": "lHash mismatch",
    "last byte of l_hash modified": "lHash mismatch",
    "l_hash changed to all 0": "lHash mismatch",
    "first byte of ps modified": "no 0x01 separator",
    "First byte is 1": "first byte Y is 0x01",
}


@pytest.mark.parametrize("case", WYCHEPROOF["tests"], ids=lambda c: f"tcId {c['tcId']}")
def test_wycheproof_through_first_principles(case):
    key = WYCHEPROOF["privateKey"]
    n, d = int(key["modulus"], 16), int(key["privateExponent"], 16)
    ct = bytes.fromhex(case["ct"])
    if case["result"] == "valid":
        block = w.rsa_oaep_decrypt(ct, n, d)
        assert block.ok and block.message == bytes.fromhex(case["msg"])
    elif "InvalidCiphertext" in case["flags"]:
        with pytest.raises(ValueError, match="out of range"):
            w.rsa_oaep_decrypt(ct, n, d)
    else:
        block = w.rsa_oaep_decrypt(ct, n, d)
        assert not block.ok and block.message is None
        if case["comment"] in WYCHEPROOF_FAILURES:
            assert block.failure.startswith(WYCHEPROOF_FAILURES[case["comment"]])


def test_byoklib_wrap_decodes_from_first_principles_and_pycryptodome(ossl):
    numbers = w.rsa_numbers(ossl.private_key_text(PRIVATE))
    material = os.urandom(32)
    block = w.rsa_oaep_decrypt(wrap_key_material(material, PUBLIC), numbers["modulus"],
                               numbers["privateExponent"])
    assert block.ok and block.message == material
    assert (block.ps_length, block.separator_at) == (512 - 2 * 32 - 2 - 32, 32 + 414)
    cipher = PKCS1_OAEP.new(RSA.import_key(_pem_only(PRIVATE)), hashAlgo=SHA256)
    assert cipher.decrypt(wrap_key_material(material, PUBLIC)) == material
    assert unwrap_key_material(cipher.encrypt(material), PRIVATE) == material


def _pem_only(pem: bytes) -> bytes:
    # the TEST-ONLY files start with two warning lines that PEM readers skip
    return pem[pem.index(b"-----BEGIN"):]


def test_a_fixed_seed_encoding_is_decrypted_by_openssl(ossl):
    numbers = w.rsa_numbers(ossl.private_key_text(PRIVATE))
    material = os.urandom(32)
    ct = w.rsa_oaep_encrypt(material, numbers["modulus"], numbers["publicExponent"], bytes(32))
    assert ossl.oaep_decrypt(PRIVATE, ct) == material


@pytest.mark.parametrize("md, mgf1_md, failure", [
    (None, None, "lHash mismatch"),             # SHA-1 throughout
    ("sha256", "sha1", "lHash mismatch"),       # MGF1-SHA-1 under SHA-256
])
def test_classic_oaep_mistakes_break_at_lhash(ossl, md, mgf1_md, failure):
    numbers = w.rsa_numbers(ossl.private_key_text(PRIVATE))
    ct = ossl.oaep_encrypt(PUBLIC, os.urandom(32), md=md, mgf1_md=mgf1_md)
    block = w.rsa_oaep_decrypt(ct, numbers["modulus"], numbers["privateExponent"])
    assert block.y == 0 and block.failure.startswith(failure)
    right = w.rsa_oaep_decrypt(ct, numbers["modulus"], numbers["privateExponent"],
                               md or "sha1", mgf1_md)
    assert right.ok


def test_pkcs1_v15_from_the_openssl_command(ossl):
    numbers = w.rsa_numbers(ossl.private_key_text(PRIVATE))
    material = os.urandom(32)
    ct = ossl.pkcs1_v15_encrypt(PUBLIC, material)
    assert "rsa_padding_mode" not in " ".join(ossl.last_command)
    n, d = numbers["modulus"], numbers["privateExponent"]
    em = w.i2osp(pow(w.os2ip(ct), d, n), 512)
    assert w.pkcs1_v15_decode(em) == material
    assert w.oaep_decode(em).failure.startswith("lHash mismatch")
    assert w.pkcs1_v15_decode(bytes(512)) is None
