"""Round trips and failure modes of the primitives (vectors live in test_vectors.py)."""
import pytest
from cryptography.hazmat.primitives import serialization

from byoklib import (
    RSAES_OAEP_SHA_1,
    NonceAuthenticationError,
    UnwrapError,
    b64decode,
    data_path,
    decrypt_nonce,
    encrypt_nonce,
    generate_key_material,
    generate_rsa_private_key,
    load_private_key,
    primitives,
    public_key_from_token_payload,
    token_payload_from_public_key,
    unwrap_key_material,
    wrap_key_material,
)


@pytest.fixture(scope="module")
def test_key():
    return load_private_key(data_path("test-only", "token-key-1.pem").read_bytes())


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_key_material_sizes(bits):
    assert len(generate_key_material(bits)) == bits // 8


@pytest.mark.parametrize("bits", [0, 64, 255, 512, "256"])
def test_key_material_refuses_other_sizes(bits):
    with pytest.raises(ValueError):
        generate_key_material(bits)


def test_nonce_round_trip_and_layout():
    key, nonce = generate_key_material(), bytes(range(12))
    sealed, iv = encrypt_nonce(key, nonce)
    assert len(iv) == 12 and len(sealed) == 12 + 16
    assert decrypt_nonce(key, sealed, iv) == nonce


@pytest.mark.parametrize("part", ["key", "iv", "ciphertext", "tag"])
def test_nonce_tamper_fails(part):
    key, nonce = generate_key_material(), bytes(12)
    sealed, iv = encrypt_nonce(key, nonce)
    if part == "key":
        key = bytes([key[0] ^ 1]) + key[1:]
    elif part == "iv":
        iv = bytes([iv[0] ^ 1]) + iv[1:]
    elif part == "ciphertext":
        sealed = bytes([sealed[0] ^ 1]) + sealed[1:]
    else:
        sealed = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(ValueError) as info:
        decrypt_nonce(key, sealed, iv)
    assert isinstance(info.value, NonceAuthenticationError)


def test_wrap_round_trip_pem_and_object(test_key):
    material = generate_key_material(256)
    pem = test_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for public in (pem, pem.decode(), test_key.public_key()):
        ciphertext = wrap_key_material(material, public)
        assert len(ciphertext) == 512
        assert unwrap_key_material(ciphertext, test_key) == material


def test_unwrap_with_wrong_hash_fails(test_key):
    ciphertext = wrap_key_material(b"k" * 32, test_key.public_key())
    with pytest.raises(UnwrapError):
        unwrap_key_material(ciphertext, test_key, RSAES_OAEP_SHA_1)


def test_unknown_algorithm_refused(test_key):
    with pytest.raises(ValueError):
        wrap_key_material(b"k" * 32, test_key.public_key(), "RSAES_PKCS1_V1_5")


@pytest.mark.parametrize("bad", ["not base64!", "QUJD=", "QU JD", "é",
                                 "QU!D", "QU=D", "QUJD\n===", "QUJD!!!!", b"QU D"])
def test_b64decode_is_strict(bad):
    with pytest.raises(ValueError):
        b64decode(bad)


def test_load_private_key_refuses_a_non_rsa_key():
    from cryptography.hazmat.primitives.asymmetric import ec
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(ValueError, match="not an RSA private key"):
        load_private_key(pem)


def test_token_payload_round_trip(test_key):
    payload = token_payload_from_public_key(test_key)
    assert b64decode(payload).startswith(b"-----BEGIN PUBLIC KEY-----")
    key = public_key_from_token_payload(payload)
    assert key.public_numbers() == test_key.public_key().public_numbers()


def test_generate_rsa_private_key_defaults_to_the_token_key_size(monkeypatch):
    """RSA-4096 with e = 65537 is what Key Protect's tokens use (not generated here: slow)."""
    asked = {}
    monkeypatch.setattr(primitives.rsa, "generate_private_key", lambda **kw: asked.update(kw))
    generate_rsa_private_key()
    assert asked == {"public_exponent": 65537, "key_size": 4096}
