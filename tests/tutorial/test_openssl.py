"""Cross-checks between byoklib.primitives and the real `openssl` command.

Each test runs bytes one way through byoklib and the other way through `openssl`, so a
mistake on either side (hash, MGF1 hash, counter start, key wrap IV) shows up as a
mismatch, not as a silent round trip through the same code.
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
import textwrap

import pytest
from cryptography.hazmat.primitives.keywrap import (
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from byoklib import data_path
from byoklib.primitives import (
    RSAES_OAEP_SHA_1,
    UnwrapError,
    encrypt_nonce,
    load_public_key,
    public_key_fingerprint,
    unwrap_key_material,
    wrap_key_material,
)
from byoklib.tutorial.openssl import (
    HEX_KEY_MASK,
    OpenSSL,
    OpenSSLError,
    OpenSSLUnavailable,
)
from byoklib.tutorial.openssl_speed import parse_speed_cipher, parse_speed_rsa

PUBLIC = data_path("test-only", "token-key-1.pub.pem")
PRIVATE = data_path("test-only", "token-key-1.pem")
OTHER_PUBLIC = data_path("test-only", "token-key-2.pub.pem")


@pytest.fixture(scope="module")
def openssl():
    try:
        return OpenSSL()
    except OpenSSLUnavailable as exc:  # make test needs OpenSSL 3; say why if it is absent
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def public_pem():
    return PUBLIC.read_bytes()


@pytest.fixture(scope="module")
def private_pem():
    return PRIVATE.read_bytes()


# --- finding and refusing the command -------------------------------------------------

def test_version_is_openssl_1_1_1_or_newer(openssl):
    assert openssl.version().startswith("OpenSSL ")
    assert openssl.version_info >= (1, 1, 1)
    assert openssl.last_command == ["openssl", "version"]


def test_missing_command_is_unavailable(tmp_path):
    with pytest.raises(OpenSSLUnavailable, match="install|Install"):
        OpenSSL(path=tmp_path / "no-such-openssl")


def _fake_openssl(tmp_path, version_line: str):
    script = tmp_path / "openssl"
    script.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("line, reason", [
    ("LibreSSL 3.8.2", "LibreSSL"),
    ("OpenSSL 1.0.2u  20 Dec 2019", "1.1.1 or newer"),
    ("hello, I am not a crypto tool", "does not look like OpenSSL"),
])
def test_unsuitable_command_is_unavailable(tmp_path, line, reason):
    with pytest.raises(OpenSSLUnavailable, match=reason):
        OpenSSL(path=_fake_openssl(tmp_path, line))


def test_a_fake_that_claims_openssl_3_is_accepted(tmp_path):
    """The version check accepts what it should, so the refusals above are not vacuous."""
    assert OpenSSL(path=_fake_openssl(tmp_path, "OpenSSL 3.2.1 30 Jan 2024")).version_info == (3, 2, 1)


def test_rand_gives_n_fresh_bytes(openssl):
    first, second = openssl.rand(32), openssl.rand(32)
    assert len(first) == len(second) == 32
    assert first != second


# --- RSA-OAEP both ways -----------------------------------------------------------------

def test_openssl_encrypts_byoklib_decrypts(openssl, public_pem, private_pem):
    material = bytes(range(32))
    ciphertext = openssl.oaep_encrypt(public_pem, material)
    assert len(ciphertext) == 512
    assert "rsa_oaep_md:sha256" in openssl.last_command
    assert unwrap_key_material(ciphertext, private_pem) == material


def test_byoklib_encrypts_openssl_decrypts(openssl, public_pem, private_pem):
    material = bytes(range(100, 124))
    ciphertext = wrap_key_material(material, public_pem)
    assert openssl.oaep_decrypt(private_pem, ciphertext) == material
    # with MGF1 named explicitly, as the Key Protect tutorial does
    assert openssl.oaep_decrypt(PRIVATE, ciphertext, md="sha256", mgf1_md="sha256") == material


def test_openssl_default_sha1_does_not_decrypt_as_sha256(openssl, public_pem, private_pem):
    """The classic mistake: `pkeyutl -pkeyopt rsa_padding_mode:oaep` alone means SHA-1."""
    material = bytes(32)
    ciphertext = openssl.oaep_encrypt(public_pem, material, md=None)
    assert not any(arg.startswith("rsa_oaep_md") for arg in openssl.last_command)
    with pytest.raises(UnwrapError):
        unwrap_key_material(ciphertext, private_pem)
    # ...and it is indeed SHA-1: that is what it decrypts as.
    assert unwrap_key_material(ciphertext, private_pem, RSAES_OAEP_SHA_1) == material


def test_sha256_ciphertext_does_not_decrypt_with_openssl_default(openssl, public_pem, private_pem):
    ciphertext = wrap_key_material(bytes(16), public_pem)
    with pytest.raises(OpenSSLError):
        openssl.oaep_decrypt(private_pem, ciphertext, md=None)


def test_mgf1_mismatch_fails_both_ways(openssl, public_pem, private_pem):
    material = bytes(range(16))
    mixed = openssl.oaep_encrypt(public_pem, material, md="sha256", mgf1_md="sha1")
    assert "rsa_mgf1_md:sha1" in openssl.last_command
    with pytest.raises(UnwrapError):
        unwrap_key_material(mixed, private_pem)
    with pytest.raises(OpenSSLError):
        openssl.oaep_decrypt(private_pem, wrap_key_material(material, public_pem),
                             md="sha256", mgf1_md="sha1")


def test_private_key_never_shown(openssl, public_pem, private_pem):
    openssl.oaep_decrypt(private_pem, wrap_key_material(bytes(16), public_pem))
    shown = " ".join(openssl.last_command)
    assert "$TMP/private.pem" in shown
    assert "PRIVATE KEY" not in shown and tempfile.gettempdir() not in shown


def test_private_key_file_is_0600_and_never_reused(tmp_path):
    path = OpenSSL._write_private(str(tmp_path), "k.pem", b"secret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(FileExistsError):
        OpenSSL._write_private(str(tmp_path), "k.pem", b"other")


# --- public key facts --------------------------------------------------------------------

def test_modulus_bits_and_hex_match_cryptography(openssl, public_pem):
    key = load_public_key(public_pem)
    assert openssl.modulus_bits(public_pem) == key.key_size == 4096
    assert int(openssl.modulus_hex(public_pem), 16) == key.public_numbers().n


def test_pkey_text_names_the_parts(openssl, public_pem):
    text = openssl.pkey_text(public_pem)
    assert "Public-Key: (4096 bit)" in text
    assert "65537" in text


def test_fingerprint_matches_primitives(openssl, public_pem):
    assert openssl.public_key_fingerprint(public_pem) == public_key_fingerprint(public_pem)
    assert "|" in openssl.last_command and openssl.last_command[-2:] == ["dgst", "-sha256"]
    assert openssl.public_key_fingerprint(OTHER_PUBLIC) != public_key_fingerprint(public_pem)


# --- AES: GCM's keystream and key wrap ----------------------------------------------------

@pytest.mark.parametrize("key_len", [16, 24, 32])
def test_gcm_ciphertext_is_openssl_ctr_from_counter_two(openssl, key_len):
    key = bytes(range(key_len))
    nonce = bytes.fromhex("00112233445566778899aabb")
    sealed, iv = encrypt_nonce(key, nonce)
    body, tag = sealed[:-16], sealed[-16:]
    assert openssl.aes_ctr(key, iv + (2).to_bytes(4, "big"), nonce) == body
    assert openssl.aes_ctr(key, iv + (1).to_bytes(4, "big"), nonce) != body
    assert len(tag) == 16


def test_openssl_ctr_reproduces_a_published_gcm_body(openssl):
    """Tie the `openssl enc` check to bytes neither side produced: McGrew-Viega case 3."""
    with open(data_path("vectors", "aes_gcm.json"), encoding="utf-8") as fh:
        case = next(c for c in json.load(fh)["tests"] if c["id"] == "gcm-spec test case 3")
    key, iv = bytes.fromhex(case["key"]), bytes.fromhex(case["iv"])
    got = openssl.aes_ctr(key, iv + b"\x00\x00\x00\x02", bytes.fromhex(case["pt"]))
    assert got == bytes.fromhex(case["ct"])


def test_hex_key_is_masked(openssl):
    key = bytes.fromhex("0f" * 32)
    openssl.aes_ctr(key, bytes(16), b"data")
    assert HEX_KEY_MASK in openssl.last_command
    assert key.hex() not in " ".join(openssl.last_command)
    openssl.aes_key_wrap_pad(key, b"data")
    assert key.hex() not in " ".join(openssl.last_command)


@pytest.mark.parametrize("kek_len", [16, 24, 32])
@pytest.mark.parametrize("data_len", [1, 7, 8, 20, 32])
def test_aes_key_wrap_pad_matches_cryptography(openssl, kek_len, data_len):
    kek, data = os.urandom(kek_len), os.urandom(data_len)
    wrapped = openssl.aes_key_wrap_pad(kek, data)
    assert wrapped == aes_key_wrap_with_padding(kek, data)
    assert openssl.aes_key_unwrap_pad(kek, wrapped) == data
    assert aes_key_unwrap_with_padding(kek, wrapped) == data


def test_aes_key_wrap_pad_rfc5649_examples(openssl):
    """RFC 5649 section 6: the two published wraps under one 192-bit KEK."""
    kek = bytes.fromhex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
    assert openssl.aes_key_wrap_pad(kek, bytes.fromhex(
        "c37b7e6492584340bed12207808941155068f738")) == bytes.fromhex(
        "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a")
    assert openssl.aes_key_wrap_pad(kek, bytes.fromhex("466f7250617369")) == bytes.fromhex(
        "afbeb0f07dfbf5419200f2ccb50bb24f")


def test_tampered_wrap_is_refused(openssl):
    kek = os.urandom(32)
    wrapped = bytearray(openssl.aes_key_wrap_pad(kek, os.urandom(32)))
    wrapped[-1] ^= 1
    with pytest.raises(OpenSSLError):
        openssl.aes_key_unwrap_pad(kek, bytes(wrapped))


# --- openssl speed ---------------------------------------------------------------------

def test_speed_rsa_gives_positive_numbers(openssl):
    result = openssl.speed_rsa()  # 4096 bits, 1 second per operation
    assert result["bits"] == 4096
    for key in ("sign_seconds", "verify_seconds", "sign_per_second", "verify_per_second"):
        assert result[key] > 0
    assert result["verify_per_second"] > result["sign_per_second"]  # e = 65537 is cheap
    assert openssl.last_command == ["openssl", "speed", "-seconds", "1", "rsa4096"]


def test_speed_aes_gcm_gives_positive_numbers(openssl):
    result = openssl.speed_aes_gcm(block_size=256)
    assert result["algorithm"].upper() == "AES-256-GCM"
    assert list(result["bytes_per_second"]) == [256]
    assert result["bytes_per_second"][256] > 0 and result["ops_per_second"][256] > 0


def test_speed_arguments_are_checked(openssl):
    with pytest.raises(ValueError):
        openssl.speed_rsa(seconds=0.5)
    with pytest.raises(ValueError):
        openssl.speed_aes_gcm(key_bits=512)


def test_speed_parsers_follow_the_headers():
    """OpenSSL 3.2+ adds encrypt/decrypt columns; the parser reads the header, not positions."""
    newer = textwrap.dedent("""\
                          sign    verify    encrypt   decrypt   sign/s verify/s  encr./s  decr./s
        rsa  4096 bits 0.004000s 0.000100s 0.000200s 0.004100s    250.0  10000.0   5000.0    243.9
    """)
    parsed = parse_speed_rsa(newer, 4096)
    assert parsed["decrypt_per_second"] == 243.9 and parsed["sign_seconds"] == 0.004
    table = "type             16 bytes     64 bytes\nAES-256-GCM      1000.00k     4000.50k\n"
    assert parse_speed_cipher(table)["bytes_per_second"] == {16: 1_000_000.0, 64: 4_000_500.0}
    with pytest.raises(ValueError):
        parse_speed_rsa("nothing here", 4096)
    with pytest.raises(ValueError):
        parse_speed_cipher("nothing here")


def test_failure_reports_the_masked_command(openssl):
    with pytest.raises(OpenSSLError) as info:
        openssl.aes_key_unwrap_pad(bytes(16), b"not a wrapped key")
    assert info.value.returncode != 0
    assert "<hex key>" in str(info.value)


def test_key_text_that_is_not_pem_is_refused_without_echoing_it():
    from byoklib.tutorial.openssl import OpenSSL, OpenSSLUnavailable
    try:
        ossl = OpenSSL()
    except OpenSSLUnavailable as exc:
        pytest.skip(str(exc))
    secret_like = "QUJD" * 300  # base64 text, e.g. a key someone forgot to decode
    with pytest.raises(ValueError) as info:
        ossl.modulus_bits(secret_like)
    assert secret_like[:40] not in str(info.value)


def test_openssl_errors_mask_temporary_paths():
    from byoklib.tutorial.openssl import OpenSSL, OpenSSLError, OpenSSLUnavailable
    try:
        ossl = OpenSSL()
    except OpenSSLUnavailable as exc:
        pytest.skip(str(exc))
    private = data_path("test-only", "token-key-1.pem").read_bytes()
    with pytest.raises(OpenSSLError) as info:
        ossl.oaep_decrypt(private, b"\x00" * 512)
    assert tempfile.gettempdir() + "/byoklib" not in info.value.stderr
