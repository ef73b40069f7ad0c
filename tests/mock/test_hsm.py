"""The HSM: secure-import opening, secrecy of private keys, envelope crypto."""
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from byoklib import primitives
from byoklib.errors import KeyProtectError
from byoklib.mock.hsm import HSM
from byoklib.mock.keypairs import fixed_key_pairs


@pytest.fixture
def hsm(token_key_pairs):
    return HSM(fixed_key_pairs(token_key_pairs))


def sealed_import(hsm, handle, material, nonce):
    payload = primitives.wrap_key_material(material, hsm.public_key_pem(handle))
    encrypted_nonce, iv = primitives.encrypt_nonce(material, nonce)
    return payload, encrypted_nonce, iv


# --- secure import -----------------------------------------------------------------------

def test_open_secure_import_returns_material(hsm):
    handle = hsm.new_transport_key()
    material, nonce = primitives.generate_key_material(), bytes(range(12))
    assert hsm.open_secure_import(handle, *sealed_import(hsm, handle, material, nonce),
                                  nonce, "RSAES_OAEP_SHA_256") == material


@pytest.mark.parametrize("damage,code", [
    ("tag", "INCORRECT_NONCE_IV_ERR"), ("iv", "INCORRECT_NONCE_IV_ERR"),
    ("nonce", "INCORRECT_NONCE_ERR"), ("last-nonce-byte", "INCORRECT_NONCE_ERR"),
    ("payload", "UNPROCESSABLE_PAYLOAD_ERR"),
    ("sha1", "INVALID_FIELD_ERR"), ("size", "INVALID_FIELD_ERR"),
])
def test_open_secure_import_failures(hsm, damage, code):
    handle = hsm.new_transport_key()
    material, nonce = primitives.generate_key_material(), bytes(range(12))
    payload, encrypted_nonce, iv = sealed_import(hsm, handle, material, nonce)
    algorithm, expected = "RSAES_OAEP_SHA_256", nonce
    if damage == "tag":
        encrypted_nonce = encrypted_nonce[:-1] + bytes([encrypted_nonce[-1] ^ 1])
    elif damage == "iv":
        iv = bytes(12)
    elif damage == "nonce":
        expected = bytes(12)
    elif damage == "last-nonce-byte":   # the whole nonce is compared, to its last byte
        expected = nonce[:-1] + bytes([nonce[-1] ^ 1])
    elif damage == "payload":
        payload = payload[:-1] + bytes([payload[-1] ^ 1])
    elif damage == "sha1":
        algorithm = "RSAES_OAEP_SHA_1"
    else:
        payload = primitives.wrap_key_material(b"x" * 20, hsm.public_key_pem(handle))
    with pytest.raises(KeyProtectError) as info:
        hsm.open_secure_import(handle, payload, encrypted_nonce, iv, expected, algorithm)
    assert info.value.code == code and info.value.status == 400


def test_the_nonce_is_compared_in_constant_time(hsm, monkeypatch):
    # white-box: what the rule import.constant_time says, the code does
    from byoklib.mock import hsm as hsm_module
    compared, real = [], hsm_module.hmac.compare_digest

    def compare_digest(a, b):
        compared.append((bytes(a), bytes(b)))
        return real(a, b)

    monkeypatch.setattr(hsm_module.hmac, "compare_digest", compare_digest)
    handle = hsm.new_transport_key()
    material, nonce = primitives.generate_key_material(), bytes(range(12))
    hsm.open_secure_import(handle, *sealed_import(hsm, handle, material, nonce), nonce,
                           "RSAES_OAEP_SHA_256")
    assert compared == [(nonce, nonce)]


def test_an_import_whose_token_was_replaced_meanwhile_is_refused_not_crashed(hsm):
    """The service unwraps outside its lock; a token replaced in between discards the key
    pair the request was sealed for: the answer is the one a later request gets."""
    handle = hsm.new_transport_key()
    material, nonce = primitives.generate_key_material(), bytes(range(12))
    sealed = sealed_import(hsm, handle, material, nonce)
    hsm.discard_transport_key(handle)
    with pytest.raises(KeyProtectError) as info:
        hsm.open_secure_import(handle, *sealed, nonce, "RSAES_OAEP_SHA_256")
    assert (info.value.status, info.value.code) == (400, "UNPROCESSABLE_PAYLOAD_ERR")


def test_discarded_transport_key_is_gone(hsm):
    handle = hsm.new_transport_key()
    hsm.discard_transport_key(handle)
    with pytest.raises(KeyError):
        hsm.public_key_pem(handle)


def hsm_tables(hsm) -> list[dict]:
    """The dicts the HSM keeps its secrets in (private state, white-box)."""
    return [value for value in vars(hsm).values() if isinstance(value, dict)]


def test_discard_and_forget_leave_nothing_behind(hsm):
    """A replaced token's private key and a purged key's material leave the HSM."""
    transport, material = hsm.new_transport_key(), hsm.store_material(bytes(32))
    assert any(table for table in hsm_tables(hsm))
    hsm.discard_transport_key(transport)
    hsm.forget_material(material)
    hsm.forget_material(None)             # a standard key has no material: ignored
    assert len(hsm_tables(hsm)) == 2 and not any(table for table in hsm_tables(hsm))


def test_forgotten_material_no_longer_seals(hsm):
    handle = hsm.store_material(bytes(32))
    hsm.forget_material(handle)
    with pytest.raises(KeyError):
        hsm.seal(handle, b"dek", b"aad")


def test_sealed_export_opens_only_with_its_state_key(hsm):
    handle = hsm.store_material(bytes(range(32)))
    blob = hsm.export_sealed(handle, bytes(32))
    copy = hsm.import_sealed(blob, bytes(32))
    assert hsm.material_id(copy) == hsm.material_id(handle)
    with pytest.raises(ValueError, match="state key does not open"):
        hsm.import_sealed(blob, bytes(31) + b"\x01")


def test_private_key_is_not_reachable_from_public_names(hsm):
    handle = hsm.new_transport_key()
    found = []
    for owner in (hsm, handle):
        for name in dir(owner):
            if name.startswith("_"):
                continue
            value = getattr(owner, name)
            if isinstance(value, rsa.RSAPrivateKey):
                found.append(name)
    assert found == []
    assert "fingerprint=" in repr(handle) and "BEGIN" not in repr(handle)
    assert not hasattr(handle, "private_key") and not hasattr(handle, "__dict__")
    assert primitives.public_key_fingerprint(hsm.public_key_pem(handle)).startswith(
        handle.fingerprint)
    assert repr(hsm) == "HSM()"   # the private tables stay out of the repr


def test_a_handle_of_another_hsm_is_unknown(hsm, token_key_pairs):
    """Handles are valid only in the HSM that made them (keyed by identity)."""
    other = HSM(fixed_key_pairs(token_key_pairs))
    transport, material = other.new_transport_key(), other.store_material(bytes(32))
    with pytest.raises(KeyError):
        hsm.public_key_pem(transport)
    with pytest.raises(KeyError):
        hsm.seal(material, b"dek", b"aad")
    twin = type(material)(material.bits)           # same bits, another object
    with pytest.raises(KeyError):
        other.seal(twin, b"dek", b"aad")


# --- envelope crypto ----------------------------------------------------------------------

def test_generated_root_key_material_is_aes_256_by_default(hsm):
    assert hsm.generate_material().bits == 256


def test_seal_and_open_bind_the_aad(hsm):
    handle = hsm.store_material(bytes(32))
    sealed, iv = hsm.seal(handle, b"dek", b"aad")
    assert hsm.open(handle, sealed, iv, b"aad") == b"dek"
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])   # always a change, unlike writing 0
    for args in ((sealed, iv, b"other"), (flipped, iv, b"aad"), (sealed, b"", b"aad")):
        with pytest.raises(KeyProtectError) as info:
            hsm.open(handle, *args)
        assert info.value.code == "UNPROCESSABLE_CIPHERTEXT_ERR"
    assert repr(handle) == "MaterialHandle(bits=256)"
